"""Command-line options of the CoreML targets (parsed by edgec/cli.py; no coremltools here)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

COREML_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18", "macOS12", "macOS13", "macOS14",
                  "macOS15", "watchOS8", "watchOS9", "watchOS10", "watchOS11", "tvOS15",
                  "tvOS16", "tvOS17", "tvOS18")


FORMATS = ("mlprogram", "neuralnetwork")


@dataclass(frozen=True)
class CoreMLOptions:
    """What a coreml-* build makes besides the target: the model format (docs/coreml.md)."""

    format: str = "mlprogram"  # ML Program .mlpackage, or a NeuralNetwork .mlmodel (iOS <= 14)
    image_input: str | None = None  # this input becomes an image (CVPixelBuffer) input
    image_scale: float = 1.0  # tensor = pixel * scale + bias (per channel)
    image_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)  # R, G, B
    color_layout: str = "RGB"  # channel order of the model's input tensor: RGB or BGR
    labels: str | None = None  # a text file, one class label per line: a classifier
    activations: str = "float"  # coreml-int8: "int8" for W8A8 with calibrated scales (iOS17)


def add_coreml_args(p: argparse.ArgumentParser) -> None:
    """--coreml-target and --coreml-format of the coreml-* targets."""
    q = p.add_argument_group("CoreML targets (coreml-*; see docs/coreml.md)")
    q.add_argument("--coreml-target", choices=COREML_TARGETS, metavar="OS",
                   help="minimum deployment target of the .mlpackage, e.g. iOS16 or macOS13 "
                        "(default: the earliest the model's features allow: iOS15, or iOS16 "
                        "for int8 weights)")
    q.add_argument("--coreml-format", choices=FORMATS, default="mlprogram",
                   help="mlprogram: an ML Program .mlpackage (iOS15+, default); neuralnetwork: "
                        "the older NeuralNetwork .mlmodel for iOS 13/14")
    q.add_argument("--coreml-image-input", metavar="NAME",
                   help="make input NAME (1x3xHxW) an image input an app feeds a CVPixelBuffer; "
                        "the tensor is pixel * --scale + --bias")
    q.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="image input: scale applied to the 0..255 pixels (default 1)")
    q.add_argument("--bias", default="0,0,0", metavar="R,G,B",
                   help="image input: per-channel bias added after scaling (default 0,0,0)")
    q.add_argument("--color-layout", choices=("RGB", "BGR"), default="RGB",
                   help="image input: channel order the model expects (default RGB)")
    q.add_argument("--activations", choices=("float", "int8"), default="float",
                   help="coreml-int8: int8 also quantises activations with edgec's calibrated "
                        "scales (W8A8, iOS17; calibration flags as for the int8 C targets)")
    q.add_argument("--labels", metavar="FILE",
                   help="class labels, one per line: the package becomes a classifier of the "
                        "model's single output")


def coreml_options(args) -> CoreMLOptions:
    """CoreMLOptions from parsed arguments (defaults where a command has no CoreML flags)."""
    from edgec.errors import EdgecError

    text = getattr(args, "bias", None) or "0,0,0"
    try:
        bias = tuple(float(b) for b in text.split(","))
    except ValueError:
        bias = ()
    if len(bias) != 3:
        raise EdgecError(f"--bias {text!r}: give three numbers R,G,B")
    return CoreMLOptions(format=getattr(args, "coreml_format", None) or "mlprogram",
                         image_input=getattr(args, "coreml_image_input", None),
                         image_scale=float(getattr(args, "scale", None) or 1.0),
                         image_bias=bias, color_layout=getattr(args, "color_layout", "RGB"),
                         labels=getattr(args, "labels", None),
                         activations=getattr(args, "activations", None) or "float")


def refuse_other_commands(args) -> None:
    """CoreML targets work with `edgec compile`, `edgec verify` and `edgec golden` (the
    package's MIL program evaluated in numpy); any other command given one (report, bench,
    debug, verify --per-layer: they need C) is a one-line error instead of a crash."""
    from edgec.errors import TargetError
    from edgec.targets import all_targets

    command = getattr(args, "command", None)
    if command in ("compile", "golden") or (
            command == "verify" and not getattr(args, "per_layer", False)):
        return
    if command == "verify":
        command = "verify --per-layer"
    given = getattr(args, "target", None)
    values = [given] if isinstance(given, str) else list(given or [])
    targets = all_targets()
    for name in (n.strip() for v in values for n in str(v).split(",")):
        if name in targets and targets[name].backend == "coreml":
            raise TargetError(f"'edgec {command}' does not support the CoreML target {name}; "
                              "use 'edgec compile' or 'edgec verify' (docs/coreml.md)")
