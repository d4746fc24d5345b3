"""Classify images with MediaPipe Tasks' ImageClassifier; run by tests/test_mediapipe.py in the
MediaPipe venv (MediaPipe needs absl-py 2, tensorflow-model-optimization absl-py 1).

    python mediapipe_classify.py MODEL IMAGES.npy   ->   one JSON list per image: [[index, name, score], ...]
"""

import json
import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core.base_options import BaseOptions

model, images = sys.argv[1], np.load(sys.argv[2])
options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model))  # every class
results = []
with vision.ImageClassifier.create_from_options(options) as classifier:
    for pixels in images:
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(pixels))
        categories = classifier.classify(image).classifications[0].categories
        results.append([[c.index, c.category_name, c.score] for c in categories])
print(json.dumps(results))
