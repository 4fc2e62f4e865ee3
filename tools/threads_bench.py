"""Multi-threaded latency (`--threads N`): the section of docs/benchmarks.md between
<!-- threads:begin --> and <!-- threads:end -->.

    python tools/threads_bench.py [--threads 2] [--runs 100] [--max-load 0.3]
                                  [--write docs/benchmarks.md]

For each model and x86_64 target, `edgec bench --threads N` (edgec/workbench/bench.py): the
library built with --threads N, timed at N threads and at 1 thread alternately in one process,
beside onnxruntime with N intra-op threads. The load average before and after each row is
printed and recorded: on a shared host the speed-up needs the other cores to be free. Run it
on a quiet host: `--max-load L` waits (up to --wait seconds) for the 1-minute load average to
fall to L before each row and refuses (exit code 2, one line) when it does not, so a table
taken on a busy host is never written. Below the table it checks issue 18's acceptance
figures (speed-up >= 1.7x at 2 threads, latency <= onnxruntime's at as many threads) for
each row, with the load it was measured under.
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
TARGET_SPEEDUP = 1.7  # issue 18: MobileNetV2 fp32 and int8 at 2 threads
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
    lines += ["", *verdicts(rows, threads), END]
    return "\n".join(lines) + "\n"


def verdicts(rows: list[dict], threads: int) -> list[str]:
    """Issue 18's acceptance figures per row, with the load they were measured under."""
    out = []
    for r in rows:
        if "error" in r:
            continue
        speed = "met" if r["speedup"] >= TARGET_SPEEDUP else "not met"
        ort = r.get("onnxruntime_ms")
        parity = ("no onnxruntime" if ort is None else
                  f"{r['latency_ms'] / ort:.2f}x of onnxruntime "
                  f"({'met' if r['latency_ms'] <= ort else 'not met'})")
        out.append(f"- {r['model']} {r['target']}: speed-up {r['speedup']:.2f}x at {threads} "
                   f"threads (>= {TARGET_SPEEDUP}x: {speed}); {parity}; load "
                   f"{r['load'][0]:.1f} -> {r['load'][1]:.1f} on {os.cpu_count()} cores")
    return out


def load_line() -> str:
    """The host's load averages, as `uptime` prints them."""
    one, five, fifteen = os.getloadavg()
    return f"load average: {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


def wait_for_quiet(max_load: float, wait_s: float) -> bool:
    """True once the 1-minute load average is at most `max_load` (polled every 5 s)."""
    deadline = time.monotonic() + wait_s
    while os.getloadavg()[0] > max_load:
        if time.monotonic() >= deadline:
            return False
        time.sleep(5)
    return True


def main(argv=None) -> int:
    """Bench every model x target at N threads and 1; print (and optionally write) the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--write", metavar="MD", help="write the section into this markdown file")
    ap.add_argument("--max-load", type=float, default=None, metavar="L",
                    help="before each row wait for the 1-minute load average to fall to L; "
                         "refuse when it does not (a quiet host: e.g. 0.3)")
    ap.add_argument("--wait", type=float, default=300.0, metavar="S",
                    help="--max-load: seconds to wait per row; default %(default)s")
    args = ap.parse_args(argv)
    print(f"threads_bench: {load_line()}", file=sys.stderr, flush=True)
    sys.path.insert(0, str(REPO))
    from edgec.markdown import replace_section
    from edgec.workbench.bench import bench_model

    rows = []
    for model in args.models.split(","):
        for target in args.targets.split(","):
            if args.max_load is not None and not wait_for_quiet(args.max_load, args.wait):
                print(f"threads_bench: error: {load_line()} stayed above --max-load "
                      f"{args.max_load} for {args.wait:.0f} s: run it on a quiet host",
                      file=sys.stderr)
                return 2
            print(f"threads_bench: {model} {target}: {load_line()}", file=sys.stderr,
                  flush=True)
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
