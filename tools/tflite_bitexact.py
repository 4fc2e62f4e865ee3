"""Measure edgec's .tflite files on the zoo: structure, fp32 error, int8 bit-exactness.

    python3 tools/tflite_bitexact.py [--seeds 3] [--models resnet8 dscnn ...]

Prints the markdown section of docs/benchmarks.md: per model, operators and TRANSPOSEs in
the tflite-int8 file, its size; tflite-fp32 in LiteRT against onnxruntime (max error relative
to the output's scale); tflite-int8 in LiteRT (reference kernels) against edgec's int8
reference interpreter (int8 output values differing, over all seeds); TFLite Micro against
LiteRT; and per layer (each on LiteRT's own inputs) the share of outputs that differ, by op.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ZOO = ["digits_cnn", "dscnn", "resnet8", "mobilenetv2", "mobilenetv2_trained"]


def litert_tensors(result, feeds) -> dict[str, np.ndarray]:
    """Every tensor of one LiteRT run (reference kernels), by name."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgec.codegen.tflite.runner import _feeds_in_file_order, quantize_input

    data = result.files["model.tflite"]
    g = result.graph
    interp = Interpreter(model_content=data, experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    names = g.meta.get("input_names") or [v.name for v in g.inputs]
    for d, arr in zip(interp.get_input_details(), _feeds_in_file_order(data, feeds, names)):
        interp.set_tensor(d["index"], quantize_input(arr, d["dtype"], *d["quantization"]))
    interp.invoke()
    return {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_tensor_details()
            if d["name"]}


def measure(name: str, seeds: int) -> dict:
    """Every number of one model's row."""
    from edgec.codegen.tflite import builtin_name, read_model
    from edgec.workbench.tflite_layers import layer_differences
    from edgec.codegen.tflite.runner import run_compiled, tflm_available
    from edgec.compiler import CompileOptions, compile_model
    from edgec.interp import run_graph
    from edgec.workbench.compare import compare, onnxruntime_outputs, random_inputs

    path = ROOT / "golden" / "models" / f"{name}.onnx"
    q = compile_model(path, CompileOptions(target="tflite-int8"))
    f = compile_model(path, CompileOptions(target="tflite-fp32"))
    model = read_model(q.files["model.tflite"])
    ops = [builtin_name(model.operatorCodes[o.opcodeIndex].builtinCode)
           for o in model.subgraphs[0].operators]
    row = {"model": name, "ops": len(ops), "transposes": ops.count("TRANSPOSE"),
           "bytes": len(q.files["model.tflite"]), "fp32_rel": 0.0, "int8_diff": 0,
           "int8_total": 0, "int8_max_lsb": 0, "tflm_int8_diff": 0, "tflm_fp32_max": 0.0}
    per_op: dict[str, list] = collections.defaultdict(lambda: [0, 0, 0.0])
    g = q.graph
    for seed in range(seeds):
        feeds = random_inputs(q.source_graph, seed=seed)
        got_f = run_compiled(f, [feeds])[0]
        ref = onnxruntime_outputs(path, feeds)
        for k, v in got_f.items():
            c = compare(k, v, np.asarray(ref[k]).reshape(v.shape))
            row["fp32_rel"] = max(row["fp32_rel"], c.max_rel_err)
        want = run_graph(g, feeds, keep_all=True)
        lit_all = litert_tensors(q, feeds)
        for v in g.outputs:
            node = v.producer  # the int8 value the output's float part starts from
            while node is not None and node.op != "DequantizeLinear" and node.inputs:
                node = node.inputs[0].producer
            if node is None or node.op != "DequantizeLinear":
                continue
            src = node.inputs[0]
            lit = lit_all[src.name].astype(np.int64)
            ours = want[src.name].astype(np.int64).reshape(lit.shape)
            row["int8_diff"] += int(np.count_nonzero(lit != ours))
            row["int8_total"] += lit.size
            row["int8_max_lsb"] = max(row["int8_max_lsb"], int(np.abs(lit - ours).max()))
        for r in layer_differences(q, feeds):
            per_op[r["op"]][0] += r["differing"]
            per_op[r["op"]][1] += r["size"]
            per_op[r["op"]][2] = max(per_op[r["op"]][2], r["max_abs"])
        if tflm_available():
            for res, key in ((q, "tflm_int8_diff"), (f, "tflm_fp32_max")):
                lit = run_compiled(res, [feeds])[0]
                micro = run_compiled(res, [feeds], runtime="tflm")[0]
                for k, v in lit.items():
                    d = np.abs(np.asarray(micro[k], np.float64).reshape(v.shape) - v)
                    row[key] = row[key] + int(np.count_nonzero(d)) if key == "tflm_int8_diff" \
                        else max(row[key], float(d.max()))
    row["per_op"] = {op: v for op, v in per_op.items()
                     if op not in ("Softmax",) and v[1]}
    return row


def markdown(rows: list[dict], seeds: int) -> str:
    """The section of docs/benchmarks.md."""
    lines = ["| model | int8 ops | TRANSPOSE | int8 file | fp32 vs onnxruntime (max rel) | "
             "int8 LiteRT vs edgec: outputs differing | max LSB | TFLM vs LiteRT (int8 "
             "outputs differing / fp32 max abs) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['ops']} | {r['transposes']} | "
                     f"{r['bytes']:,} B | {r['fp32_rel']:.1e} | {r['int8_diff']} of "
                     f"{r['int8_total']} | {r['int8_max_lsb']} | {r['tflm_int8_diff']} / "
                     f"{r['tflm_fp32_max']:.1e} |")
    lines += ["", f"Per layer, each on LiteRT's own inputs ({seeds} seeds; share of int8 "
              "outputs differing from edgec's reference, and the largest difference in LSB):",
              ""]
    for r in rows:
        parts = [f"{op} {100 * d / n:.2f} % ({m:.0f})" if d else f"{op} 0"
                 for op, (d, n, m) in sorted(r["per_op"].items())]
        lines.append(f"- {r['model']}: " + ", ".join(parts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the markdown."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=ZOO)
    ap.add_argument("--write", metavar="MD", help="replace the section in this markdown file")
    args = ap.parse_args(argv)
    rows = []
    for name in args.models:
        print(f"measuring {name} ...", file=sys.stderr)
        rows.append(measure(name, args.seeds))
    text = markdown(rows, args.seeds)
    if args.write:
        write_section(Path(args.write), text)
    print(text)
    return 0


BEGIN, END = "<!-- tflite-bitexact:begin -->", "<!-- tflite-bitexact:end -->"
HEADER = """## TFLite back-end: LiteRT and TFLite Micro against edgec (tools/tflite_bitexact.py)

Written by `python3 tools/tflite_bitexact.py --write docs/benchmarks.md` (LiteRT 2.3.0 with its
reference kernels, tflite-micro's Python interpreter; seeded N(0, 1) inputs; int8 models
calibrated on seeded random inputs). *int8 LiteRT vs edgec* counts the int8 values feeding
each output's DEQUANTIZE that differ from edgec's integer reference (and so from its C);
edgec requantises with TFLite's own arithmetic (docs/int8.md), so every count should be 0.

"""


def write_section(path: Path, text: str) -> None:
    """Replace (or append) the marked section of a markdown file."""
    doc = path.read_text()
    block = f"{BEGIN}\n{HEADER}{text}\n{END}"
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(doc)


if __name__ == "__main__":
    sys.exit(main())
