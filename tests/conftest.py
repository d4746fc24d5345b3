import os

# Keep TensorFlow's C++ logging out of test output; the project sets the rest itself.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


@pytest.fixture(autouse=True)
def isolated_model_registry(monkeypatch):
    """Models a test registers are gone after it: the registry is global state."""
    from edgecnn.nets import list_models, registry

    list_models()  # load the built-in recipes into the real registry first
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.fixture(scope="session")
def digits_small():
    """Digits at 16x16: big enough to learn, small enough to train in seconds."""
    from edgecnn.data import load_dataset

    return load_dataset("digits", image_size=16)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, digits_small):
    """A folder holding model.keras (+ metadata) of a briefly trained xception-pico."""
    from edgecnn.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("trained")
    fit(digits_small, TrainConfig(arch="xception-pico", epochs=4, verbose=0), out)
    return out


@pytest.fixture(scope="session")
def exported_run(tmp_path_factory, trained_run):
    """trained_run exported to float and int8 TFLite in its own folder."""
    import shutil

    from edgecnn.export import ExportOptions, export_model

    out = tmp_path_factory.mktemp("exported")
    for name in ("model.keras", "model.json"):
        shutil.copy(trained_run / name, out / name)
    result = export_model(out / "model.keras", out, ExportOptions(int8=True, calib_size=120))
    return out, result
