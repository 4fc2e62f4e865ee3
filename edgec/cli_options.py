"""The command line's shared arguments: model and target, pass control, resource limits and
int8 calibration flags, and how they become CompileOptions. edgec/cli.py builds the parser of
each command from these groups."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgec.codegen.coreml.options import add_coreml_args, coreml_options
from edgec.console import quote
from edgec.errors import EdgecError
from edgec.limits import FLAGS, HELP, Limits, parse_size


def add_model_args(p: argparse.ArgumentParser, target_default: str | None = "generic-fp32"):
    """The model file, -t/--target and --input-shape."""
    p.add_argument("model", help="ONNX model file")
    p.add_argument("-t", "--target", default=target_default,
                   help="target name (see 'edgec targets'); default %(default)s")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD...",
                   help="fix a dynamic input shape, e.g. input=1x3x224x224 (repeatable)")


def weights_location(value: str) -> str:
    """--weights takes where the constants live; a bit width there points to --weight-bits."""
    if value.lower() in ("int4", "int8", "4", "8"):
        raise argparse.ArgumentTypeError(
            f"'{value}' is a bit width: --weights says where the constants live (rodata or "
            "external); int4 weights are --weight-bits 4 (both combine)")
    return value


def add_pass_args(p: argparse.ArgumentParser):
    """The flags of commands that run the pipeline: prefix, pass control, limits, int8."""
    p.add_argument("--prefix", help="C identifier prefix of the generated API (default: file stem)")
    p.add_argument("--verify-each", action="store_true", help="verify the IR after every pass")
    p.add_argument("--dump-ir", metavar="DIR", help="write the IR text after each pass to DIR")
    p.add_argument("--disable-pass", action="append", default=[], metavar="NAME",
                   help="skip a pass of the target's pipeline (repeatable)")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="C targets with an OS: split the heavy layers over N threads (a pthread "
                        "pool; bit-identical to 1; docs/os-runtime.md); default 1")
    p.add_argument("--weights", type=weights_location, choices=("rodata", "external"),
                   default="rodata",
                   help="C targets with an OS: constants as .rodata arrays (default) or in "
                        "PREFIX.weights, mapped read-only at run time (docs/os-runtime.md)")
    p.add_argument("--partitions", type=int, default=1, metavar="K",
                   help="--weights external: K partitions of consecutive layers, only the "
                        "running one (and the next) resident; default 1")
    p.add_argument("--sparse-weights", choices=("auto", "off", "on"), default="auto",
                   help="fp32 C targets: store mostly-zero Conv/Gemm/MatMul weights as CSR and "
                        "skip the zeros; auto (default): layers with >= 70%% zeros where the "
                        "estimated work is not above dense; on: wherever smaller (docs/pruning.md)")
    p.add_argument("--memory-budget", default=None, metavar="BYTES",
                   help="C targets: fuse chains of conv layers (line buffers, no extra MACs) "
                        "until the arena fits BYTES (K/M/G allowed; docs/memory.md)")
    p.add_argument("--fallback", choices=("int8",), default=None,
                   help="fp32 targets with an OS: build the int8 variant too, behind one API "
                        "that selects it when memory runs low (docs/os-runtime.md)")
    add_limit_args(p)
    add_coreml_args(p)
    add_quant_args(p)


def add_limit_args(p: argparse.ArgumentParser):
    """The resource-limit flags (edgec/limits.py), one per limit."""
    q = p.add_argument_group("resource limits (see docs/robustness.md); sizes take K/M/G")
    defaults = Limits()
    for field, flag in FLAGS.items():
        q.add_argument(flag, dest=field, metavar="N", default=None,
                       help=f"{HELP[field]}; default {getattr(defaults, field):,}")


def limits_from_args(args):
    """The Limits the user asked for (defaults for the flags not given)."""
    given = {field: parse_size(getattr(args, field), flag) for field, flag in FLAGS.items()
             if getattr(args, field, None) is not None}
    return Limits(**given)


def add_quant_args(p: argparse.ArgumentParser):
    """The int8 quantisation and calibration flags."""
    q = p.add_argument_group("int8 quantisation (targets *-int8; see docs/int8.md)")
    q.add_argument("--quant", choices=("static", "dynamic"), default="static",
                   help="static: int8 activations from calibration (default); dynamic: int8 "
                        "weights of Gemm/MatMul, activations quantised at run time")
    q.add_argument("--calib", metavar="PATH",
                   help="calibration data: .npy/.npz batches, or a folder of them or of images "
                        "(without it: seeded random inputs and a warning)")
    q.add_argument("--calib-method", default="minmax",
                   choices=("minmax", "percentile", "entropy", "mse"),
                   help="how ranges are chosen from the statistics; default %(default)s")
    q.add_argument("--calib-percentile", type=float, default=99.99, metavar="P",
                   help="percentile of --calib-method percentile; default %(default)s")
    q.add_argument("--calib-limit", type=int, metavar="N", help="use at most N samples")
    q.add_argument("--calib-size", metavar="HxW",
                   help="images: resize to HxW (default: the model input's size)")
    q.add_argument("--calib-mean", metavar="M[,M,M]", default="0",
                   help="images: per-channel mean subtracted after scaling; default 0")
    q.add_argument("--calib-std", metavar="S[,S,S]", default="1",
                   help="images: per-channel std divided by; default 1")
    q.add_argument("--calib-scale", type=float, default=1.0 / 255.0, metavar="K",
                   help="images: pixel values (0..255) are multiplied by K first; default 1/255")
    q.add_argument("--calib-channels", choices=("rgb", "bgr"), default="rgb",
                   help="images: channel order; default rgb")
    q.add_argument("--calib-layout", choices=("nchw", "nhwc"),
                   help="images: input layout (default: guessed from the input shape)")
    q.add_argument("--calib-resize", choices=("crop", "stretch"), default="crop",
                   help="images: centre-crop to the aspect ratio before resizing (default) or "
                        "stretch")
    q.add_argument("--keep-float", nargs="+", action="extend", default=[],
                   metavar="NODE_OR_OP", help="keep these nodes or op types in float32")
    q.add_argument("--auto-mixed-precision", action="store_true",
                   help="keep the most sensitive layers in float32 until --target-snr is met")
    q.add_argument("--target-snr", type=float, default=30.0, metavar="DB",
                   help="output SNR goal of --auto-mixed-precision; default %(default)s dB")
    q.add_argument("--weight-bits", type=int, default=8, metavar="BITS",
                   help="int8 targets: 4 stores Conv/Gemm/MatMul weights as int4, two per byte "
                        "(W4A8; depthwise stays int8; combines with --weights external); "
                        "default 8 (docs/int8.md)")
    q.add_argument("--weights-budget", type=int, default=None, metavar="BYTES",
                   help="--weight-bits 4 --auto-mixed-precision: give the most sensitive layers "
                        "int8 weights while the weights stay within BYTES")
    q.add_argument("--io", choices=("float", "int8"), default="float",
                   help="int8 C targets: int8 model inputs and outputs (no float quantise / "
                        "dequantise at the edges; scales in the header; docs/cortex-m.md)")
    q.add_argument("--tflite-io", choices=("float", "int8"), default="float",
                   help="tflite-int8: the model's inputs/outputs as float (a QUANTIZE and "
                        "DEQUANTIZE inside; default) or int8 (docs/tflite.md)")
    q.add_argument("--int8-softmax", action=argparse.BooleanOptionalAction, default=True,
                   help="int8 targets: a last-axis Softmax in int8, bit-exact with TFLite's "
                        "int8 SOFTMAX (output scale 1/256; the default); --no-int8-softmax "
                        "or --keep-float Softmax keeps it float")
    q.add_argument("--tflite-activations", action="store_true",
                   help="int8 targets: Sigmoid and Tanh with TFLite's fixed output scales and "
                        "tables, so .tflite files carry LOGISTIC / TANH (docs/int8.md)")


def _floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise EdgecError(f"{flag} takes numbers separated by commas, not {quote(text)}") \
            from None


def image_preprocess(args):
    """The --calib-* image flags as an ImagePreprocess."""
    from edgec.quant.images import ImagePreprocess  # on use: `edgec --help` stays light

    size = None
    if getattr(args, "calib_size", None):
        try:
            h, w = (int(v) for v in args.calib_size.lower().split("x"))
            size = (h, w)
        except ValueError:
            raise EdgecError(f"--calib-size takes HxW, e.g. 224x224, not "
                             f"{quote(args.calib_size)}") \
                from None
    return ImagePreprocess(size=size, mean=_floats(args.calib_mean, "--calib-mean"),
                           std=_floats(args.calib_std, "--calib-std"), scale=args.calib_scale,
                           channels=args.calib_channels, layout=args.calib_layout,
                           resize=args.calib_resize)


def quant_options(args) -> dict:
    """The int8 CompileOptions fields (none for commands without the int8 flags)."""
    if not hasattr(args, "calib"):
        return {}
    return {"quant": args.quant, "calib": args.calib, "calib_method": args.calib_method,
            "calib_percentile": args.calib_percentile, "calib_limit": args.calib_limit,
            "preprocess": image_preprocess(args), "keep_float": tuple(args.keep_float),
            "auto_mixed_precision": args.auto_mixed_precision, "target_snr": args.target_snr,
            "tflite_io": args.tflite_io, "io": args.io, "int8_softmax": args.int8_softmax,
            "tflite_activations": args.tflite_activations, "weight_bits": args.weight_bits,
            "weights_budget": args.weights_budget}


def compile_options(args):
    """The CompileOptions of a compiling command's arguments."""
    # on use: importing the compiler loads every op, pass and back-end (`edgec --help`,
    # `edgec targets` and usage errors never need them)
    from edgec.compiler import CompileOptions
    from edgec.frontend.onnx import parse_input_shapes

    return CompileOptions(
        target=args.target,
        input_shapes=parse_input_shapes(args.input_shape),
        prefix=getattr(args, "prefix", None),
        verify_each=getattr(args, "verify_each", False),
        dump_ir=Path(args.dump_ir) if getattr(args, "dump_ir", None) else None,
        disabled_passes=tuple(getattr(args, "disable_pass", []) or ()),
        limits=limits_from_args(args),
        coreml_target=getattr(args, "coreml_target", None),
        coreml=coreml_options(args),
        threads=getattr(args, "threads", 1),
        weights=getattr(args, "weights", "rodata"),
        partitions=getattr(args, "partitions", 1),
        sparse_weights=getattr(args, "sparse_weights", "auto"),
        fallback=getattr(args, "fallback", None),
        memory_budget=(None if getattr(args, "memory_budget", None) is None
                       else parse_size(args.memory_budget, "--memory-budget")),
        **quant_options(args),
    )
