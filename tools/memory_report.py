"""Arena sizes of the zoo models beside TensorFlow Lite Micro's, written into
docs/benchmarks.md (between the memory markers; the rest of the file is kept).

For each zoo model and target: edgec's planned arena (inputs, outputs and every activation,
as TFLM's arena holds them), the lower bound of the chosen schedule, the naive total (every
tensor its own buffer, as emx-onnx-cgen does) and the kernel count. TFLM's arena is measured
in the same run: edgec's .tflite of the model (tflite-int8 with the same calibration, or
tflite-fp32) in the tflite-micro interpreter, whose recording allocator reports the whole
arena it used (tools/tflite_compare.py `tflm_arena`).

Usage: python tools/memory_report.py [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "golden" / "models"
BEGIN, END = "<!-- memory:begin -->", "<!-- memory:end -->"
MODELS = [("mobilenetv2", "MobileNetV2 1.0 224"), ("resnet8", "ResNet-8"),
          ("dscnn", "DS-CNN"), ("digits_cnn", "digits CNN")]
TARGETS = ["generic-fp32", "x86_64-fp32", "generic-int8"]
_TFLM: dict[tuple[str, str], int] = {}  # (model, precision) -> TFLM arena bytes


def measure(model: str, target: str) -> dict:
    """Compile `model` for `target` and return the memory figures of its report."""
    from edgec.compiler import CompileOptions, compile_model

    opts = CompileOptions(target=target)
    if target.endswith("int8"):
        import onnx
        proto = onnx.load(str(ZOO / f"{model}.onnx"), load_external_data=False)
        vi = proto.graph.input[0]
        shape = tuple(d.dim_value for d in vi.type.tensor_type.shape.dim)
        rng = np.random.default_rng(1)
        opts.calib_samples = [{vi.name: rng.standard_normal(shape).astype(np.float32)}
                              for _ in range(8)]
    r = compile_model(ZOO / f"{model}.onnx", opts).report
    precision = target.split("-")[-1]
    if (model, precision) not in _TFLM:  # edgec's .tflite in TFLM, same calibration
        sys.path.insert(0, str(REPO / "tools"))
        from tflite_compare import tflm_arena

        opts.target = f"tflite-{precision}"
        data = compile_model(ZOO / f"{model}.onnx", opts).files["model.tflite"]
        _TFLM[model, precision] = tflm_arena(data)["total"]
    return {"tflm_bytes": _TFLM[model, precision],
            **{k: r[k] for k in ("kernels", "arena_bytes", "arena_lower_bound_bytes",
                                 "naive_bytes")}}


def markdown(rows: list[dict]) -> str:
    """The memory section."""
    lines = [
        BEGIN,
        "## Activation arena (edgec vs TensorFlow Lite Micro)",
        "",
        "Written by `python tools/memory_report.py --write docs/benchmarks.md`. *arena* is",
        "edgec's planned arena (inputs, outputs and every intermediate tensor, as TFLM's arena",
        "holds them); *lower bound* is the largest total of bytes that must be live at one",
        "step of the chosen schedule; *naive* gives every tensor its own buffer. *TFLM arena*",
        "is measured in this run: edgec's .tflite of the model (tflite-int8 with the same",
        "calibration, or tflite-fp32) in the tflite-micro interpreter, the whole arena its",
        "recording allocator reports (tensors plus the interpreter's persistent data).",
        "",
        "| model | target | kernels | arena B | lower bound B | arena / bound | naive B | "
        "TFLM arena B | edgec / TFLM |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        tflm = r.get("tflm_bytes")
        lines.append(
            f"| {r['label']} | {r['target']} | {r['kernels']} | {r['arena_bytes']:,} | "
            f"{r['arena_lower_bound_bytes']:,} | "
            f"{r['arena_bytes'] / r['arena_lower_bound_bytes']:.3f} | {r['naive_bytes']:,} | "
            + (f"{tflm:,} | {r['arena_bytes'] / tflm:.2f} |" if tflm else "- | - |"))
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace (or append) this tool's marked section of `path`, keeping everything else."""
    from edgec.markdown import replace_section

    replace_section(path, BEGIN, END, section)


def main(argv=None) -> int:
    """Entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    args = ap.parse_args(argv)
    rows = []
    for model, label in MODELS:
        for target in TARGETS:
            rows.append({"model": model, "label": label, "target": target,
                         **measure(model, target)})
            print(f"{model:12s} {target:13s} arena {rows[-1]['arena_bytes']:>10,} B",
                  file=sys.stderr)
    section = markdown(rows)
    if args.write:
        write_section(Path(args.write), section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
