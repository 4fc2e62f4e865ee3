"""CSR weights (`--sparse-weights on`: every eligible layer) against dense storage (`off`) on
zoo models pruned with `edgec prune --sparsity S` (docs/pruning.md): weights bytes from
report.json, x86_64 wall time of the two libraries timed in turn in one run (ratio of
medians), arm64 and Cortex-M4F instructions per inference (QEMU plugin / board counter), and
the layers `auto` (the default) stores as CSR on each target.

    python3 tools/sparse_bench.py [--models dscnn digits_cnn] [--sparsity 0.9] [--runs 200]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import onnx

from edgec.compiler import CompileOptions, compile_proto
from edgec.cortexm.measure import bench_cortexm
from edgec.errors import EdgecError
from edgec.prune.sparsity import magnitude_prune
from edgec.workbench.bench import alternate, bench_inputs
from edgec.workbench.instr_count import count_model
from edgec.workbench.runners import CompiledModel

ZOO = Path(__file__).resolve().parents[1] / "golden" / "models"  # tools/make_models.py


def measure(model: onnx.ModelProto, name: str, runs: int) -> list[dict]:
    """One row per target: weights bytes, time or instructions, sparse / dense."""
    rows = []
    for target in ("generic-fp32", "x86_64-fp32", "arm64-fp32", "cortex-m4-fp32"):
        res = {mode: compile_proto(model, CompileOptions(target=target, sparse_weights=mode),
                                   name) for mode in ("on", "off")}
        auto = compile_proto(model, CompileOptions(target=target), name).report
        row = {"model": name, "target": target,
               "sparse_layers": len(res["on"].report["sparse_weights"]["layers"]),
               "auto_layers": len(auto.get("sparse_weights", {}).get("layers", [])),
               "weights_sparse": res["on"].report["weights_bytes"],
               "weights_dense": res["off"].report["weights_bytes"]}
        feeds = bench_inputs(res["on"].graph)
        with tempfile.TemporaryDirectory(prefix="edgec-sparse-") as tmp:
            if target.startswith(("arm64", "cortex-m")):
                count = bench_cortexm if target.startswith("cortex-m") else count_model
                try:
                    counts = {m: count(r, feeds, Path(tmp) / m)["instructions"]
                              for m, r in res.items()}
                except EdgecError as e:
                    row["note"] = f"no count: {e}"
                else:
                    row["cost_sparse"], row["cost_dense"] = counts["on"], counts["off"]
                    row["unit"] = "instructions"
            else:
                libs = {m: CompiledModel(r, Path(tmp) / m, feeds) for m, r in res.items()}
                t = alternate(libs, runs)
                row["cost_sparse"], row["cost_dense"] = t["on"].median_ms, t["off"].median_ms
                row["unit"] = "ms (median)"
        rows.append(row)
    return rows


def main() -> None:
    """Print a Markdown table of the measurements."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["dscnn", "digits_cnn"])
    ap.add_argument("--sparsity", type=float, default=0.9)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    print(f"| model (sparsity {args.sparsity}) | target | CSR layers (on / auto) | "
          "weights dense -> CSR | cost CSR / dense |")
    print("|---|---|---|---|---|")
    for name in args.models:
        model, _ = magnitude_prune(onnx.load(ZOO / f"{name}.onnx"), args.sparsity)
        for r in measure(model, name, args.runs):
            ratio = (f"{r['cost_sparse'] / r['cost_dense']:.0%} ({r['unit']}: "
                     f"{r['cost_sparse']:,.4g} / {r['cost_dense']:,.4g})"
                     if "cost_sparse" in r else r.get("note", ""))
            print(f"| {name} | {r['target']} | {r['sparse_layers']} / {r['auto_layers']} | "
                  f"{r['weights_dense']:,} -> {r['weights_sparse']:,} B | {ratio} |")


if __name__ == "__main__":
    main()
