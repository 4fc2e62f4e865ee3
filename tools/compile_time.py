#!/usr/bin/env python3
"""Compile time of MobileNetV2 per target, in process (issue 13: the kernel choice is made
once per node, so QConv/QGemm weights are packed once instead of three times).

    python tools/compile_time.py [TARGET ...] [--model golden/models/mobilenetv2.onnx]
                                 [--repeat 3] [--calib-samples 1]

For each target the model is loaded afresh and compiled `--repeat` times with
`compile_graph`; the fastest wall time and the fastest CPU time of the process are printed
(this machine is shared: the minimum is the steadiest figure, and CPU time does not count
the time other processes hold the cores). int8 targets get `--calib-samples` seeded random calibration inputs,
so calibration costs little next to quantisation and code generation. Defaults: the
targets x86_64-int8 arm64-int8 generic-int8 x86_64-fp32.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from edgec.compiler import CompileOptions, compile_graph
from edgec.frontend.onnx import load_onnx
from edgec.quant import random_calibration_inputs

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TARGETS = ("x86_64-int8", "arm64-int8", "generic-int8", "x86_64-fp32")


def best_compile_seconds(model: Path, target: str, repeat: int, calib_samples: int
                         ) -> tuple[float, float]:
    """(wall, CPU) seconds, each the fastest of `repeat` compiles of `model` for `target`
    (loading the model and drawing the calibration data are not timed)."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        graph = load_onnx(str(model))
        calibration = random_calibration_inputs(graph, calib_samples, seed=0)
        wall, cpu = time.perf_counter(), time.process_time()
        compile_graph(graph, CompileOptions(target=target, calib_samples=calibration),
                      model_name="m")
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def main(argv: list[str] | None = None) -> None:
    """Print `target  wall s  cpu s` for every target asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=list(DEFAULT_TARGETS))
    parser.add_argument("--model", type=Path, default=REPO / "golden/models/mobilenetv2.onnx")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calib-samples", type=int, default=1)
    args = parser.parse_args(argv)
    for target in args.targets:
        wall, cpu = best_compile_seconds(args.model, target, args.repeat, args.calib_samples)
        print(f"{target} {wall:.3f} s wall {cpu:.3f} s cpu", flush=True)


if __name__ == "__main__":
    main()
