"""Multi-threaded latency (`--threads N`): the section of docs/benchmarks.md between
<!-- threads:begin --> and <!-- threads:end -->.

    python tools/threads_bench.py [--threads 2] [--runs 100] [--write docs/benchmarks.md]

For each model and x86_64 target, `edgec bench --threads N` (edgec/workbench/bench.py): the
library built with --threads N, timed at N threads and at 1 thread alternately in one process,
beside onnxruntime with N intra-op threads. The load average before and after each row is
recorded: on a shared host the speed-up needs the other cores to be free.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ZOO = REPO / "golden" / "models"
MODELS = ("mobilenetv2",)
TARGETS = ("x86_64-fp32", "x86_64-int8")
BEGIN, END = "<!-- threads:begin -->", "<!-- threads:end -->"


def markdown(rows: list[dict], threads: int) -> str:
    """The section's text."""
    intro = ("Written by `python tools/threads_bench.py --write docs/benchmarks.md`; do not "
             "edit by hand. Medians (p10 in brackets) of the same `--threads` library at 1 and "
             f"at {threads} threads, alternating in one process; onnxruntime with {threads} "
             "intra-op threads in the same run. Load: the host's 1-minute load average before "
             "and after the row (this VM is shared; with the other cores busy no speed-up is "
             f"possible). {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores.")
    header = (f"| model | target | 1 thread ms | {threads} threads ms | speed-up | "
              f"onnxruntime {threads} threads ms | load |")
    lines = [BEGIN, f"## Threads (`--threads {threads}`)", "", intro, "", header,
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['target']} | {r['error']} | | | | |")
            continue
        lines.append(
            f"| {r['model']} | {r['target']} | {r['latency_1thread_ms']:.2f} "
            f"({r['latency_1thread_p10_ms']:.2f}) | {r['latency_ms']:.2f} "
            f"({r['latency_p10_ms']:.2f}) | {r['speedup']:.2f}x | "
            f"{r.get('onnxruntime_ms', float('nan')):.2f} | {r['load'][0]:.1f} -> "
            f"{r['load'][1]:.1f} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """Bench every model x target at N threads and 1; print (and optionally write) the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from edgec.markdown import replace_section
    from edgec.workbench.bench import bench_model

    rows = []
    for model in args.models.split(","):
        for target in args.targets.split(","):
            before = os.getloadavg()[0]
            try:
                row = bench_model(ZOO / f"{model}.onnx", target, runs=args.runs,
                                  threads=args.threads)
            except Exception as e:  # noqa: BLE001 - one failing row must not lose the others
                row = {"model": model, "target": target,
                       "error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}
            row["load"] = (before, os.getloadavg()[0])
            print(json.dumps(row), flush=True)
            rows.append(row)
    section = markdown(rows, args.threads)
    print(section)
    if args.write:
        replace_section(Path(args.write), BEGIN, END, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
