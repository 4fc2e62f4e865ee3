"""`edgec bench`: latency of edgec's generated C, side by side with onnxruntime.

Method (the numbers in docs/benchmarks.md come from here, through tools/bench.py):
- one process. edgec's C is built for the target into a shared library together with a small
  timing shim (`edgec_bench_time`), loaded with ctypes: the shim restores the inputs (layers
  may reuse their memory), then times each call of `<prefix>_run` with CLOCK_MONOTONIC;
- onnxruntime runs the original model (fp32) or its own int8 model (quantize_static,
  per-channel, u8 activations / s8 weights, calibrated on the same samples as edgec; both the
  QDQ and the QOperator form are timed and the faster is reported) with 1 intra-op and 1
  inter-op thread and every graph optimisation, through an IOBinding with preallocated
  inputs and outputs; each call is timed from Python with perf_counter_ns (the call overhead
  that includes is measured separately on an Identity model and reported, not subtracted);
  with `threads` N > 1, edgec's library is built with --threads N and timed at N threads and
  at 1 thread alternately (the speed-up), onnxruntime with N intra-op threads;
- the two alternate in chunks of a few runs after a warm-up, so that both see the same
  machine load; medians over `runs` runs each;
- GMAC/s = MACs / median latency; the FMA peak is measured (edgec/workbench/machine.py: 10
  independent chains of 256-bit FMAs, a short probe after every round of runs, the best probe
  counts) and converted with the assumption that a core retires 2 FMA instructions of 8 fp32
  lanes per cycle (Zen 3/4, Haswell and later), which also gives the effective clock; share
  of peak = GMAC/s / peak GMAC/s for fp32. For int8 on AVX2 the ceiling is measured the same
  way with 12 independent vpmaddwd + vpaddd chains (16 int8 MACs per pair, the inner step of
  an exact AVX2 int8 GEMM): no AVX2 int8 kernel can average more, so MACs / that rate is the
  least latency an AVX2 build can reach.
Targets with a `runner` (emulated, e.g. qemu-aarch64) report executed guest instructions per
inference (edgec/workbench/instr_count.py) next to the emulated, meaningless, wall time.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgec.compiler import CompileOptions, compile_model
from edgec.cortexm.measure import bench_cortexm
from edgec.errors import EdgecError
from edgec.frontend.onnx import load_onnx
from edgec.targets import get_target
from edgec.workbench import toolchain
from edgec.workbench.clocks import locked_clocks
from edgec.workbench.compare import compare, harness_io, random_inputs
from edgec.workbench.instr_count import count_instructions, instruction_summary
from edgec.workbench.litert_bench import litert_fields, litert_runner
from edgec.workbench.machine import FmaPeak
from edgec.workbench.runners import (
    CompiledModel,
    OrtModel,
    WithThreads,
    ort_call_overhead_ns,
    ort_int8_models,
)
from edgec.workbench.verify import build_result
from edgec.workbench.weights_rss import weights_rss_fields

DEFAULT_RUNS = 100
WARMUP_RUNS = 10
CHUNK_RUNS = 5
CALIB_SAMPLES = 16
SETTLE_S = 0.05  # --threads: pause between batches of different engines (see `alternate`)
LITERT_NA = "n/a (no TFLite backend yet)"


# ------------------------------------------------------------------------------ bench
@dataclass
class Timing:
    """Median and spread of a list of per-run nanoseconds."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int

    @classmethod
    def of(cls, ns: list[float]) -> Timing:
        """Summarise nanoseconds."""
        a = np.asarray(ns) / 1e6
        return cls(float(np.median(a)), float(np.percentile(a, 10)),
                   float(np.percentile(a, 90)), len(ns))


def alternate(runners: dict, runs: int, warmup: int = WARMUP_RUNS, chunk: int = CHUNK_RUNS,
              probe=None, settle_s: float = 0.0) -> dict[str, Timing]:
    """Warm every runner up, then run them in turn `chunk` runs at a time until each has
    `runs` timed runs; per-runner Timing. `probe` (optional) is called once per round.
    `settle_s`: an untimed pause before each batch, so that the previous engine's spinning
    worker threads (onnxruntime's intra-op pool spins after a run) have gone idle."""
    for r in runners.values():
        r.time_runs(warmup)
    times: dict[str, list[float]] = {k: [] for k in runners}
    while any(len(t) < runs for t in times.values()):
        for key, r in runners.items():
            n = min(chunk, runs - len(times[key]))
            if n > 0:
                if settle_s:
                    time.sleep(settle_s)
                times[key].extend(r.time_runs(n))
        if probe is not None:
            probe()
    return {k: Timing.of(v) for k, v in times.items()}


def bench_inputs(g, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded N(0, 1) inputs (the benchmark's data; latency does not depend on values)."""
    return random_inputs(g, seed)


def calibration_inputs(g, count: int = CALIB_SAMPLES, seed: int = 1) -> list[dict]:
    """Seeded N(0, 1) calibration samples shared by edgec and onnxruntime's quantizer."""
    return [random_inputs(g, seed + i) for i in range(count)]


def bench_options(target_name: str, calib: list[dict] | None = None,
                  input_shapes: dict | None = None, threads: int = 1, weights: str = "rodata",
                  partitions: int = 1) -> CompileOptions:
    """The CompileOptions the bench builds with."""
    return CompileOptions(target=target_name, input_shapes=dict(input_shapes or {}),
                          calib_samples=calib, threads=threads, weights=weights,
                          partitions=partitions)


def compile_for_bench(model_path: Path, target_name: str, calib: list[dict] | None = None,
                      input_shapes: dict | None = None, threads: int = 1,
                      weights: str = "rodata", partitions: int = 1):
    """Compile with edgec; returns (CompileResult, compile seconds without calibration)."""
    options = bench_options(target_name, calib, input_shapes, threads, weights, partitions)
    t0 = time.perf_counter()
    result = compile_model(model_path, options)
    seconds = time.perf_counter() - t0
    cal = (result.report.get("quantization") or {}).get("calibration") or {}
    return result, seconds - float(cal.get("seconds", 0.0))


def bench_model(model_path: str | Path, target_name: str, runs: int = DEFAULT_RUNS,
                compare: bool = True, input_shapes: dict | None = None, seed: int = 0,
                workdir: Path | None = None, lock_clocks: bool = False, threads: int = 1,
                weights: str = "rodata", partitions: int = 1) -> dict:
    """Benchmark one model on one target; the dict documented in docs/benchmarks.md.
    `lock_clocks` runs the timed part under edgec.workbench.clocks.locked_clocks and, when the lock
    held, times edgec again afterwards without it (row['unlocked']). `threads` > 1 builds with
    --threads and times the library at that many threads and at 1 thread alternately
    (row['threads'], ['latency_1thread_ms'], ['speedup']); onnxruntime gets as many intra-op
    threads. `weights` "external" times the `--weights external --partitions K` build and adds
    the peak resident weights of one run with K partitions and with one
    (edgec/workbench/weights_rss.py)."""
    model_path = Path(model_path)
    target = get_target(target_name)
    if runs < 1:
        raise EdgecError("--runs must be at least 1")
    g = load_onnx(model_path, input_shapes or {})
    feeds = bench_inputs(g, seed)
    calib = calibration_inputs(g) if target.is_int8 else None
    result, compile_s = compile_for_bench(model_path, target_name, calib, input_shapes, threads,
                                          weights, partitions)
    macs = int(result.report["macs"])
    row = {"model": model_path.stem, "target": target.name, "precision": target.precision,
           "runs": runs, "macs": macs, "compile_s": round(compile_s, 3),
           "kernels": result.report["kernels"], "arena_bytes": result.report["arena_bytes"]}
    with tempfile.TemporaryDirectory(prefix="edgec-bench-") as tmp:
        tmpd = Path(workdir) if workdir else Path(tmp)
        if target.runner or not target.host_runnable:
            row.update(_bench_emulated(result, feeds, runs, tmpd))
            return row
        edgec_model = CompiledModel(result, tmpd, feeds)
        runners: dict = {"edgec": edgec_model}
        if threads > 1:  # the same library at N threads and at 1, alternately
            runners = {"edgec": WithThreads(edgec_model, threads),
                       "edgec:1": WithThreads(edgec_model, 1)}
        ort_forms: dict = {}
        if compare:
            if target.is_int8:
                for form, path in ort_int8_models(model_path, calib, tmpd).items():
                    ort_forms[form] = OrtModel(path, feeds, threads)
            else:
                ort_forms["fp32"] = OrtModel(model_path, feeds, threads)
            runners.update({f"ort:{k}": v for k, v in ort_forms.items()})
            litert, litert_reason = litert_runner(model_path, target, feeds, calib, input_shapes)
            if litert is not None:  # the LiteRT column: edgec's own .tflite (codegen/tflite)
                runners["litert"] = litert
        peak = FmaPeak(tmpd)
        for _ in range(5):
            peak.probe()
        with locked_clocks(lock_clocks) as clocks:
            # threads: the engines' worker threads must not spin into each other's runs
            timings = alternate(runners, runs, probe=peak.probe,
                                settle_s=SETTLE_S if threads > 1 else 0.0)
        row["clocks"] = clocks.summary()
        if lock_clocks and clocks.locked:
            free = alternate({"edgec": runners["edgec"]}, runs)["edgec"]
            row["unlocked"] = {"latency_ms": round(free.median_ms, 4),
                               "latency_p10_ms": round(free.p10_ms, 4),
                               "latency_p90_ms": round(free.p90_ms, 4)}
        row.update(_summarise(row, timings, peak.result(), target))
        if threads > 1:
            one = timings["edgec:1"]
            row.update({"threads": threads, "latency_1thread_ms": round(one.median_ms, 4),
                        "latency_1thread_p10_ms": round(one.p10_ms, 4),
                        "speedup": round(one.median_ms / timings["edgec"].median_ms, 3)})
            runners["edgec:1"].time_runs(1)  # leaves the pool at one thread: no idle workers
        if weights == "external":  # outside the timed part: fresh processes of the harness
            options = bench_options(target_name, calib, input_shapes, threads, weights,
                                    partitions)
            row.update(weights_rss_fields(result, model_path, options, feeds, tmpd))
        if compare:
            row.update(_agreement(edgec_model, ort_forms, target))
            row["onnxruntime_call_overhead_ms"] = round(ort_call_overhead_ns() / 1e6, 4)
            row.update(litert_fields(timings, litert_reason))  # edgec/workbench/litert_bench.py
    row.setdefault("litert_ms", None)
    row.setdefault("litert", LITERT_NA)
    return row


def _summarise(row: dict, timings: dict[str, Timing], peak: dict | None, target) -> dict:
    e = timings["edgec"]
    out = {"latency_ms": round(e.median_ms, 4), "latency_p10_ms": round(e.p10_ms, 4),
           "latency_p90_ms": round(e.p90_ms, 4),
           "gmacs": round(row["macs"] / (e.median_ms * 1e6), 2)}
    if peak is not None:
        out["fma_peak_gmacs"] = round(peak["peak_gmacs"], 2)
        out["clock_ghz_est"] = round(peak["clock_ghz"], 3)
        if not target.is_int8:
            out["peak_share"] = round(out["gmacs"] / peak["peak_gmacs"], 3)
        elif getattr(target, "isa", "") == "x86_64-avx2" and peak.get("int8_avx2_gmacs"):
            # x86_64-int8: AVX2 only, so vpmaddwd + vpaddd bounds every kernel
            out["int8_avx2_peak_gmacs"] = round(peak["int8_avx2_gmacs"], 2)
            out["peak_share"] = round(out["gmacs"] / peak["int8_avx2_gmacs"], 3)
            out["avx2_bound_ms"] = round(row["macs"] / (peak["int8_avx2_gmacs"] * 1e6), 4)
    ort = {k.split(":", 1)[1]: t for k, t in timings.items() if k.startswith("ort:")}
    if ort:
        form, best = min(ort.items(), key=lambda kv: kv[1].median_ms)
        out["onnxruntime_ms"] = round(best.median_ms, 4)
        out["onnxruntime_form"] = form
        out["onnxruntime_forms_ms"] = {k: round(t.median_ms, 4) for k, t in ort.items()}
        out["ratio"] = round(e.median_ms / best.median_ms, 3)
    return out


def _agreement(edgec_model: CompiledModel, ort_forms: dict, target) -> dict:
    """How close edgec's outputs are to onnxruntime's (fp32: max relative error; int8: the
    share of outputs within one quantisation step is not defined here, so the max relative
    error against onnxruntime's int8 model is reported for information)."""
    ours = edgec_model.outputs()
    errs = []
    for ort_model in ort_forms.values():
        theirs = ort_model.outputs()
        for name, got in ours.items():
            if name in theirs:
                ref = np.asarray(theirs[name], np.float64).reshape(got.shape)
                errs.append(compare(name, got, ref).max_rel_err)
    return {"max_rel_err_vs_onnxruntime": float(max(errs)) if errs else None}


def _bench_emulated(result, feeds: dict, runs: int, workdir: Path) -> dict:
    """Instructions per inference (edgec/workbench/instr_count.py: total, per MAC, per layer
    type) and the emulated, not meaningful, wall time on a target with a runner; on a
    bare-metal (Cortex-M) target the row of edgec/cortexm/measure.py instead."""
    if getattr(result.target, "bare_metal", False):  # one counted qemu-system-arm run
        return bench_cortexm(result, feeds, workdir)
    exe = build_result(result, workdir)
    ins, specs = harness_io(result.graph, feeds)
    _, ns = toolchain.run(exe, result.target, ins, specs, runs=max(runs, 2))
    row = {"emulated": True, "latency_ms": round(float(np.median(ns)) / 1e6, 4)}
    try:
        count, _ = count_instructions(exe, result.target, result.report["prefix"], ins, specs)
        row.update(instruction_summary(result, count))
    except EdgecError as e:  # no QEMU plugin support: the latency row still stands
        row["instructions"] = None
        row["instructions_error"] = str(e)
    return row
