"""`edgecnn predict` on many images (files, folders, globs; text, CSV, JSON) and on the frames of a
video, with the runtime only."""

import csv
import io
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgecnn import runtime
from edgecnn.cli import main


@pytest.fixture(scope="module")
def photos(exported_run, digits_small, tmp_path_factory):
    """A folder of test digits in class subfolders, as PNG and JPEG."""
    root = tmp_path_factory.mktemp("photos")
    paths = []
    for i, (image, label) in enumerate(zip(digits_small.test.images[:24], digits_small.test.labels[:24])):
        folder = root / str(label)
        folder.mkdir(exist_ok=True)
        paths.append(folder / f"{i:02d}.{'png' if i % 2 else 'jpg'}")
        Image.fromarray(image[..., 0]).save(paths[-1])
    (root / "notes.txt").write_text("not an image")
    return root, sorted(paths)


def _predict(*args):
    return CliRunner().invoke(main, ["predict", *map(str, args)])


def test_a_folder_and_a_glob_give_every_image_once_with_throughput(exported_run, photos):
    out, _ = exported_run
    root, paths = photos
    model = runtime.load(out / "model_int8.tflite")
    result = _predict(out / "model_int8.tflite", root, f"{root}/*/*.png", "--json", "--top-k", "2")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert list(report["predictions"]) == [str(p) for p in paths]  # the glob's PNGs are already in the folder
    for path, top in report["predictions"].items():
        assert [(t["label"], pytest.approx(t["score"])) for t in top] == model.classify(path, top_k=2)
    assert report["throughput"]["images"] == len(paths) and report["throughput"]["images_per_second"] > 0


def test_csv_has_one_row_per_image(exported_run, photos):
    out, _ = exported_run
    root, paths = photos
    result = _predict(out / "model_fp32.tflite", *paths[:5], "--csv", "--top-k", "3")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["image", "label_1", "score_1", "label_2", "score_2", "label_3", "score_3"]
    assert [r[0] for r in rows[1:]] == [str(p) for p in paths[:5]]
    assert "5 images in" in result.stderr and "per second" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope.png"], "does not exist"),
        (["{empty}"], "holds no"),
        (["{root}/*.bmp"], "matches no files"),
        ([], "give IMAGES"),
        (["{root}", "--camera"], "not both"),
        (["{root}", "--frames", "3"], "--frames counts camera frames"),
    ],
)
def test_bad_arguments_are_one_line(exported_run, photos, tmp_path, args, message):
    out, _ = exported_run
    root, _ = photos
    (tmp_path / "empty").mkdir()
    result = _predict(out / "model_int8.tflite", *[a.format(root=root, empty=tmp_path / "empty") for a in args])
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2


def _video(path, images, fps=10):
    cv2 = pytest.importorskip("cv2")
    height, width = images.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width * 4, height * 4))
    assert writer.isOpened()
    for image in images:
        frame = cv2.resize(np.repeat(image, 3, axis=-1), (width * 4, height * 4), interpolation=cv2.INTER_NEAREST)
        writer.write(frame)
    writer.release()
    return path


def test_camera_classifies_every_frame_of_a_video(exported_run, digits_small, tmp_path):
    cv2 = pytest.importorskip("cv2")
    out, _ = exported_run
    video = _video(tmp_path / "clip.avi", digits_small.test.images[:20])
    result = _predict(out / "model_int8.tflite", "--camera", video, "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["frame"] for line in lines] == [f"frame {i}" for i in range(20)]
    model = runtime.load(out / "model_int8.tflite")
    capture = cv2.VideoCapture(str(video))
    for line in lines:  # the frames as OpenCV decodes them, classified by the runtime directly
        ok, frame = capture.read()
        assert ok
        expected = model.classify(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), top_k=1)[0]
        assert line["top"][0]["label"] == expected[0] and line["top"][0]["score"] == pytest.approx(expected[1])
    assert "20 images in" in result.stderr
    limited = _predict(out / "model_int8.tflite", "--camera", video, "--frames", "5")
    assert limited.exit_code == 0 and len(limited.stdout.splitlines()) == 5 and "fps" in limited.stdout
    missing = _predict(out / "model_int8.tflite", "--camera", tmp_path / "none.avi")
    assert missing.exit_code != 0 and "cannot open video" in missing.output


def test_predict_never_imports_tensorflow(exported_run, photos):
    out, _ = exported_run
    root, _ = photos
    code = textwrap.dedent(
        f"""
        import sys
        from edgecnn.cli import main
        try:
            main(["predict", {str(out / "model_int8.tflite")!r}, {str(root)!r}, "--csv"])
        except SystemExit as exit:
            assert not exit.code, exit.code
        heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras", "sklearn")]
        assert not heavy, heavy
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
