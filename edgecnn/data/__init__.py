"""Data sets as raw uint8 arrays: built-in digits and shapes, and image folders.

Only numpy and Pillow are needed here (this runs on the device for calibration and
evaluation sets); scikit-learn is imported only when the digits data set is loaded.
"""

from .dataset import Dataset, Split
from .digits import load_digits
from .folder import load_folder, load_images
from .registry import class_names, dataset_for, list_datasets, load_dataset
from .shapes import LABELS as SHAPE_LABELS
from .shapes import generate_shapes, load_shapes
from .splits import stratified_sample, stratified_split

__all__ = [
    "Dataset",
    "Split",
    "SHAPE_LABELS",
    "class_names",
    "dataset_for",
    "generate_shapes",
    "list_datasets",
    "load_dataset",
    "load_digits",
    "load_folder",
    "load_images",
    "load_shapes",
    "stratified_sample",
    "stratified_split",
]
