"""int8 post-training quantisation: calibration, range methods, mixed precision, QDQ export.

See docs/int8.md for the scheme and the user-facing flags, and /passes/quantize.py for the
graph rewrite.
"""

from edgec.quant.calibrate import (
           Calibration,
           calibrate,
           load_calibration_inputs,
           random_calibration_inputs,
)
from edgec.quant.images import ImagePreprocess
from edgec.quant.observers import METHODS, TensorStats

__all__ = [
           "METHODS",
           "Calibration",
           "ImagePreprocess",
           "TensorStats",
           "calibrate",
           "load_calibration_inputs",
           "random_calibration_inputs",
]
