"""edgecnn: compact Xception-style CNNs for small devices.

Importing this package never imports TensorFlow; the training toolchain is loaded
only by the functions that need it.
"""

__version__ = "0.1.0"
