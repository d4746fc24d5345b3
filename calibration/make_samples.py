"""Write the small calibration sample sets kept in this folder.

Each is a class-stratified draw from the *training* split of a built-in data set (the
split `edgecnn train` uses with the same seed), saved as raw uint8 pixels (N, H, W, C):
what `edgecnn export --calib PATH` reads.

    python calibration/make_samples.py
"""

from pathlib import Path

import numpy as np

from edgecnn.calibration import from_dataset
from edgecnn.data import load_dataset

HERE = Path(__file__).resolve().parent
SAMPLES = {
    "digits_32x32x1_100.npy": dict(source="digits", image_size=32, size=100),
    "shapes_64x64x3_120.npy": dict(source="shapes", image_size=64, size=120),
}


def main() -> None:
    for name, spec in SAMPLES.items():
        dataset = load_dataset(spec["source"], image_size=spec["image_size"], seed=0)
        calib = from_dataset(dataset, size=spec["size"], seed=0)
        np.save(HERE / name, calib.images)
        print(f"{name}: {calib.images.shape} from {calib.source}")


if __name__ == "__main__":
    main()
