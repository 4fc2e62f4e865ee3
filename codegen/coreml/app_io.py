"""App-facing inputs and outputs of an ML Program: an image input and classifier labels.

- `--coreml-image-input NAME --scale S --bias R,G,B [--color-layout BGR]`: input NAME (a
  float32 1x3xHxW tensor) becomes an image input, so an app passes a CVPixelBuffer; CoreML
  hands the program the pixels (0..255, channels in the color layout's order) and the program
  starts with tensor = pixel * S + bias (coremltools' ImageType inserts that `mul` and
  `add`). The bias is given in R, G, B order and applied to the matching channel, so with
  BGR the tensor's channel 0 (blue) gets the third number.
- `--labels FILE`: the model's single output (N class scores, 1xN or N) feeds coremltools'
  `classify`: the package outputs the top label and a label -> probability dictionary (the
  scores as they are: put a Softmax in the model for probabilities).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec.codegen.coreml.options import CoreMLOptions
from edgec.errors import DataError, UnsupportedError
from edgec.ir import Graph

LABEL_OUTPUT = "classLabel"
PROBS_OUTPUT = "classLabel_probs"


def channel_bias(options: CoreMLOptions) -> np.ndarray:
    """The per-channel bias in the tensor's channel order (R,G,B given; BGR reverses)."""
    bias = np.asarray(options.image_bias, np.float32)
    return bias[::-1].copy() if options.color_layout == "BGR" else bias


def image_inputs(ct, g: Graph, spec_in: list[str], options: CoreMLOptions) -> list | None:
    """coremltools ImageType for the image input (None without one); errors name the input."""
    if options.image_input is None:
        return None
    if options.format != "mlprogram":
        raise UnsupportedError("--coreml-image-input is built for ML Programs only; drop "
                               "--coreml-format neuralnetwork")
    onnx_names = g.meta.get("input_names") or [v.name for v in g.inputs]
    for onnx_name, spec_name, v in zip(onnx_names, spec_in, g.inputs):
        if options.image_input in (onnx_name, spec_name):
            break
    else:
        raise DataError(f"--coreml-image-input {options.image_input!r}: the model has no such "
                        f"input (inputs: {', '.join(onnx_names)})")
    shape = tuple(int(d) for d in v.shape)
    if len(shape) != 4 or shape[0] != 1 or shape[1] != 3:
        raise UnsupportedError(f"--coreml-image-input {options.image_input!r}: an image input "
                               f"needs shape 1x3xHxW; this one is {'x'.join(map(str, shape))}")
    if not options.image_scale > 0:
        raise DataError(f"--scale {options.image_scale}: the pixel scale must be positive")
    layout = getattr(ct.colorlayout, options.color_layout)
    return [ct.ImageType(name=spec_name, shape=shape, scale=float(options.image_scale),
                         bias=[float(b) for b in channel_bias(options)], color_layout=layout)]


def classifier(ct, g: Graph, options: CoreMLOptions):
    """coremltools ClassifierConfig from --labels (None without); checks the label count."""
    if options.labels is None:
        return None
    if options.format != "mlprogram":
        raise UnsupportedError("--labels is built for ML Programs only; drop --coreml-format "
                               "neuralnetwork")
    path = Path(options.labels)
    try:
        labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError as e:
        raise DataError(f"--labels '{path}': {e.strerror or e}") from None
    if len(g.outputs) != 1:
        raise UnsupportedError(f"--labels: a classifier needs a model with one output; this one "
                               f"has {len(g.outputs)}")
    shape = tuple(int(d) for d in g.outputs[0].shape)
    classes = int(np.prod(shape)) if shape else 1
    if len(shape) > 2 or (len(shape) == 2 and shape[0] != 1) or classes != len(labels):
        raise DataError(f"--labels '{path}' has {len(labels)} labels; the model's output has "
                        f"shape {'x'.join(map(str, shape)) or 'scalar'} (need N or 1xN with N "
                        "labels)")
    if len(set(labels)) != len(labels):
        raise DataError(f"--labels '{path}': labels must be distinct")
    return ct.ClassifierConfig(labels, predicted_feature_name=LABEL_OUTPUT,
                               predicted_probabilities_output=None)


def io_report(options: CoreMLOptions, spec_in: list[str], rep: dict) -> None:
    """Mark the image input and the classifier outputs in report.json's inputs/outputs."""
    for entry in rep["inputs"]:
        if options.image_input in (entry["name"], entry["coreml_name"]):
            entry["image"] = {"color_layout": options.color_layout,
                              "scale": options.image_scale,
                              "bias_rgb": list(options.image_bias),
                              "bias": [float(b) for b in channel_bias(options)]}
    if options.labels is not None:
        out = rep["outputs"][0]
        out["coreml_name"] = PROBS_OUTPUT
        out["classifier"] = {"label_output": LABEL_OUTPUT,
                             "labels": sum(1 for line in Path(options.labels).read_text()
                                           .splitlines() if line.strip())}
