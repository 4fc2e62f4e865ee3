"""Fuzz `edgec compile` with N mutated models and print the outcome counts and the time.

    python3 tools/fuzz.py --cases 100000 --jobs 2 --keep /tmp/fuzz-bad

Cases are those of edgec/fuzz.py (a pure function of --seed and the case index), run in
worker processes (each under a memory limit), in chunks of consecutive indices. Bad cases
(exit 3, tracebacks, several lines, hangs, half-written folders) are listed with their index
and saved under --keep; rerun one with `--start I --cases 1`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHUNK = 200


def _worker(job):
    """Run one chunk of cases in this process; returns (counts, bad cases, seconds)."""
    seed, start, count, timeout, keep, memory_mb = job
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if memory_mb:
        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from edgec.fuzz import run_cases, seed_models

    seeds = seed_models(REPO / "golden" / "models")
    with tempfile.TemporaryDirectory(prefix="edgec-fuzz-") as tmp:
        stats = run_cases(seeds, seed, range(start, start + count), Path(tmp), timeout,
                          Path(keep) if keep else None)
    bad = [(i, o.kind, o.code, o.mutation, o.stderr.strip()[:300]) for i, o in stats.bad]
    return stats.counts, bad, stats.seconds


def main(argv=None) -> int:
    """Parse arguments, run the chunks, print counts and bad cases; exit 1 on any bad case."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=1000)
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--start", type=int, default=0, help="first case index")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per case")
    p.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per worker")
    p.add_argument("--keep", help="save bad models in this folder")
    args = p.parse_args(argv)
    jobs = [(args.seed, s, min(CHUNK, args.start + args.cases - s), args.timeout, args.keep,
             args.memory_mb) for s in range(args.start, args.start + args.cases, CHUNK)]
    counts: dict[str, int] = {}
    bad = []
    done = 0
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.jobs, maxtasksperchild=5) as pool:
        for chunk_counts, chunk_bad, _ in pool.imap_unordered(_worker, jobs):
            for k, v in chunk_counts.items():
                counts[k] = counts.get(k, 0) + v
            bad += chunk_bad
            for i, kind, code, what, err in chunk_bad:  # as they come: a long run may be cut
                print(f"  bad case {i}: {kind} (exit {code}) after [{what}]: {err}",
                      file=sys.stderr, flush=True)
            done += sum(chunk_counts.values())
            elapsed = time.perf_counter() - start
            print(f"{done}/{args.cases} cases, {elapsed:.0f} s, {dict(sorted(counts.items()))}",
                  file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    print(f"fuzz: {done} cases (seed {args.seed}, indices {args.start}.."
          f"{args.start + args.cases - 1}) in {elapsed:.0f} s with {args.jobs} process(es): "
          f"{dict(sorted(counts.items()))}")
    for i, kind, code, what, err in sorted(bad):
        print(f"  case {i}: {kind} (exit {code}) after [{what}]: {err}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
