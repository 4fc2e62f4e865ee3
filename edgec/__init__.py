"""edgec: an ahead-of-time compiler from ONNX to code for edge devices."""

__version__ = "0.1.0"
