import os

# Keep TensorFlow's C++ logging out of test output; the project sets the rest itself.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
