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
- the two alternate in chunks of a few runs after a warm-up, so that both see the same
  machine load; medians over `runs` runs each;
- GMAC/s = MACs / median latency; the FMA peak is measured (10 independent chains of 256-bit
  FMAs, a short probe after every round of runs, the best probe counts) and converted with the assumption that a core retires 2 FMA
  instructions of 8 fp32 lanes per cycle (Zen 3/4, Haswell and later), which also gives the
  effective clock; share of peak = GMAC/s / peak GMAC/s for fp32. For int8 on AVX2 the
  ceiling is measured the same way with 12 independent vpmaddwd + vpaddd chains (16 int8
  MACs per pair, the inner step of an exact AVX2 int8 GEMM): no AVX2 int8 kernel can
  average more, so MACs / that rate is the least latency an AVX2 build can reach.
Targets with a `runner` (emulated, e.g. qemu-aarch64) report executed guest instructions per
inference (edgec/workbench/instr_count.py) next to the emulated, meaningless, wall time.
"""

from __future__ import annotations

import ctypes
import os
import platform
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgec.workbench.clocks import locked_clocks
from edgec.errors import EdgecError, ToolchainError

DEFAULT_RUNS = 100
WARMUP_RUNS = 10
CHUNK_RUNS = 5
CALIB_SAMPLES = 16
LITERT_NA = "n/a (no TFLite backend yet)"
FMA_LANES = 8  # fp32 lanes of a 256-bit FMA
FMA_PER_CYCLE = 2  # FMA instructions a core retires per cycle (assumption, see docstring)
MADD_MACS = 16  # int8 multiply-accumulates of one 256-bit vpmaddwd (8 lanes x 2 products)

SHIM = r"""/* edgec_bench_shim.c - written by edgec bench: times {prefix}_run in-process. */
#define _POSIX_C_SOURCE 200112L
#include <string.h>
#include <time.h>
#include "{prefix}.h"

static double edgec_bench_now(void)
{{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}}

/* For each of `runs` runs: restore the inputs, time one {prefix}_run, store nanoseconds. */
int edgec_bench_time(void *arena, const void *const *inputs, long runs, double *ns);
int edgec_bench_time(void *arena, const void *const *inputs, long runs, double *ns)
{{
    long r;
    int i;
    for (r = 0; r < runs; ++r) {{
        double t0;
        int status;
        for (i = 0; i < {PREFIX}_NUM_INPUTS; ++i) {{
            memcpy({prefix}_input(arena, i), inputs[i], {prefix}_inputs[i].bytes);
        }}
        t0 = edgec_bench_now();
        status = {prefix}_run(arena);
        ns[r] = edgec_bench_now() - t0;
        if (status != 0) {{
            return status;
        }}
    }}
    return 0;
}}
"""

PEAK_SOURCE = r"""/* 10 independent chains of 256-bit FMAs: the core's FMA throughput; 12 chains of
   vpmaddwd + vpaddd: its exact AVX2 int8 multiply-accumulate throughput. */
#define _POSIX_C_SOURCE 200112L
#include <immintrin.h>
#include <time.h>

volatile float edgec_fma_sink; /* keeps the chains' results alive */

double edgec_fma_per_second(long iterations);
double edgec_fma_per_second(long iterations)
{
    __m256 a0 = _mm256_set1_ps(1.0f), a1 = _mm256_set1_ps(1.1f), a2 = _mm256_set1_ps(1.2f);
    __m256 a3 = _mm256_set1_ps(1.3f), a4 = _mm256_set1_ps(1.4f), a5 = _mm256_set1_ps(1.5f);
    __m256 a6 = _mm256_set1_ps(1.6f), a7 = _mm256_set1_ps(1.7f), a8 = _mm256_set1_ps(1.8f);
    __m256 a9 = _mm256_set1_ps(1.9f);
    const __m256 b = _mm256_set1_ps(0.9999999f), c = _mm256_set1_ps(1e-7f);
    struct timespec t0, t1;
    float out[8];
    long i;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < iterations; ++i) {
        a0 = _mm256_fmadd_ps(a0, b, c); a1 = _mm256_fmadd_ps(a1, b, c);
        a2 = _mm256_fmadd_ps(a2, b, c); a3 = _mm256_fmadd_ps(a3, b, c);
        a4 = _mm256_fmadd_ps(a4, b, c); a5 = _mm256_fmadd_ps(a5, b, c);
        a6 = _mm256_fmadd_ps(a6, b, c); a7 = _mm256_fmadd_ps(a7, b, c);
        a8 = _mm256_fmadd_ps(a8, b, c); a9 = _mm256_fmadd_ps(a9, b, c);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                       _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    a0 = _mm256_add_ps(a0, _mm256_add_ps(a8, a9));
    _mm256_storeu_ps(out, a0);
    edgec_fma_sink = out[0];
    return (double)iterations * 10.0 /
           ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
}

/* vpmaddwd + vpaddd pairs per second (each pair: 16 int16 products into 8 int32 sums),
   written as assembly so that no compiler folds the repeated products. */
double edgec_madd_per_second(long iterations);
double edgec_madd_per_second(long iterations)
{
    struct timespec t0, t1;
    long i;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < iterations; ++i) {
        __asm__ volatile(
            "vpmaddwd %%ymm0, %%ymm1, %%ymm2\n\tvpaddd %%ymm2, %%ymm8, %%ymm8\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm3\n\tvpaddd %%ymm3, %%ymm9, %%ymm9\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm4\n\tvpaddd %%ymm4, %%ymm10, %%ymm10\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm5\n\tvpaddd %%ymm5, %%ymm11, %%ymm11\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm6\n\tvpaddd %%ymm6, %%ymm12, %%ymm12\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm7\n\tvpaddd %%ymm7, %%ymm13, %%ymm13\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm2\n\tvpaddd %%ymm2, %%ymm14, %%ymm14\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm3\n\tvpaddd %%ymm3, %%ymm15, %%ymm15\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm4\n\tvpaddd %%ymm4, %%ymm8, %%ymm8\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm5\n\tvpaddd %%ymm5, %%ymm9, %%ymm9\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm6\n\tvpaddd %%ymm6, %%ymm10, %%ymm10\n\t"
            "vpmaddwd %%ymm0, %%ymm1, %%ymm7\n\tvpaddd %%ymm7, %%ymm11, %%ymm11\n\t"
            ::: "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
                "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)iterations * 12.0 /
           ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
}
"""


# ------------------------------------------------------------------------------ machine
def machine_info() -> dict:
    """CPU model, the SIMD flags that matter here, core count, nominal MHz, OS."""
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "flags": [], "mhz": None, "machine": platform.machine(),
            "os": f"{platform.system()} {platform.release()}"}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and info["cpu"] in ("", platform.machine(), platform.processor()):
            info["cpu"] = value
        elif key == "cpu family":
            info["cpu_family"] = int(value)
        elif key == "model" and "cpu_model" not in info:
            info["cpu_model"] = int(value)
        elif key == "cpu MHz" and info["mhz"] is None:
            info["mhz"] = float(value)
        elif key == "flags" and not info["flags"]:
            have = set(value.split())
            info["flags"] = [f for f in ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f",
                                         "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
                             if f in have]
    return info


def _compile(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        detail = next((ln for ln in lines if "error" in ln), lines[0] if lines else "")
        raise ToolchainError(f"building {what} failed: {detail.strip()}")


class FmaPeak:
    """The FMA and AVX2 int8 (vpmaddwd + vpaddd) throughput of one core, probed repeatedly
    (the best probe is the peak: on a shared machine a probe can only be slowed down, never
    sped up)."""

    def __init__(self, workdir: Path, cc: str = "cc"):
        self.fn = None
        self.madd_fn = None
        self.best = 0.0
        self.best_madd = 0.0
        if not {"avx2", "fma"} <= set(machine_info()["flags"]):
            return
        src, lib = workdir / "edgec_fma_peak.c", workdir / "libedgec_fma_peak.so"
        src.write_text(PEAK_SOURCE)
        try:
            _compile([*shlex.split(cc), "-O2", "-mavx2", "-mfma", "-fPIC", "-shared",
                      str(src), "-o", str(lib)], "the FMA peak probe")
        except (ToolchainError, FileNotFoundError):
            return
        dll = ctypes.CDLL(str(lib))
        self.fn, self.madd_fn = dll.edgec_fma_per_second, dll.edgec_madd_per_second
        for fn in (self.fn, self.madd_fn):
            fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_long]

    def probe(self, iterations: int = 2_000_000) -> None:
        """One short probe of each (~3 ms each)."""
        if self.fn is not None:
            self.best = max(self.best, self.fn(iterations))
            self.best_madd = max(self.best_madd, self.madd_fn(iterations // 2))

    def result(self) -> dict | None:
        """{fma_per_s, peak_gmacs, clock_ghz, int8_avx2_gmacs}, or None without AVX2/FMA or
        a compiler."""
        if self.fn is None or self.best <= 0:
            return None
        return {"fma_per_s": self.best, "peak_gmacs": self.best * FMA_LANES / 1e9,
                "clock_ghz": self.best / FMA_PER_CYCLE / 1e9,
                "int8_avx2_gmacs": self.best_madd * MADD_MACS / 1e9}


def measure_fma_peak(workdir: Path, cc: str = "cc", repeats: int = 20) -> dict | None:
    """Measured FMA throughput of one core: {fma_per_s, peak_gmacs, clock_ghz}; None when
    the host has no AVX2/FMA (or no compiler)."""
    peak = FmaPeak(workdir, cc)
    for _ in range(repeats):
        peak.probe()
    return peak.result()


# ------------------------------------------------------------------------------ runners
class CompiledModel:
    """edgec's generated C as a shared library with the timing shim, loaded in-process."""

    def __init__(self, result, workdir: Path, feeds: dict[str, np.ndarray]):
        from edgec.compiler import write_output
        from edgec.workbench.toolchain import STRICT_FLAGS, compiler_for

        target = result.target
        prefix = result.report["prefix"]
        out = write_output(result.files, workdir / "c")
        (out / "edgec_bench_shim.c").write_text(
            SHIM.format(prefix=prefix, PREFIX=prefix.upper()))
        cc = shlex.split(compiler_for(target))
        flags = [*STRICT_FLAGS, *target.cflags, "-fPIC", f"-I{out}"]
        sources = sorted(p for p in out.glob("*.c") if p.name != "edgec_harness.c")
        # One compiler per source file, in parallel (the weights file is the slow one).
        procs = [(src, subprocess.Popen([*cc, *flags, "-c", str(src), "-o",
                                         str(src.with_suffix(".o"))],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)) for src in sources]
        for src, proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                line = next((ln for ln in err.splitlines() if "error" in ln), err[:200])
                raise ToolchainError(f"the generated C failed to compile: {line.strip()}")
        lib_path = out / "libmodel.so"
        _compile([*cc, "-shared", *(str(s.with_suffix(".o")) for s in sources), "-o",
                  str(lib_path), *target.ldflags], "the model library")
        self.lib = ctypes.CDLL(str(lib_path))
        self.prefix = prefix
        self.fn = self.lib.edgec_bench_time
        self.fn.restype = ctypes.c_int
        self.fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]
        align = int(result.report["arena_alignment"])
        nbytes = max(int(result.report["arena_bytes"]), 1)
        self._block = np.zeros(nbytes + align, np.uint8)
        shift = (-self._block.ctypes.data) % align
        self.arena = self._block[shift:shift + nbytes]
        g = result.graph
        in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
        self.inputs = [np.ascontiguousarray(np.asarray(feeds[n]).astype(v.dtype.np))
                       for n, v in zip(in_names, g.inputs)]
        self.input_ptrs = (ctypes.c_void_p * max(len(self.inputs), 1))(
            *[a.ctypes.data for a in self.inputs])
        self.out_specs = [(n, v.shape, v.dtype.np) for n, v in zip(
            g.meta.get("output_names") or [v.name for v in g.outputs], g.outputs)]

    def time_runs(self, runs: int) -> list[float]:
        """Nanoseconds of each of `runs` runs."""
        ns = np.zeros(runs, np.float64)
        status = self.fn(self.arena.ctypes.data, ctypes.cast(self.input_ptrs, ctypes.c_void_p),
                         runs, ns.ctypes.data)
        if status != 0:
            raise ToolchainError(f"the compiled model returned status {status}")
        return ns.tolist()

    def outputs(self) -> dict[str, np.ndarray]:
        """The outputs of the last run, by public name."""
        get = getattr(self.lib, f"{self.prefix}_output")
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int]
        outs = {}
        for i, (name, shape, dtype) in enumerate(self.out_specs):
            ptr = get(self.arena.ctypes.data, i)
            count = int(np.prod(shape, dtype=np.int64))
            buf = ctypes.string_at(ptr, count * np.dtype(dtype).itemsize)
            outs[name] = np.frombuffer(buf, dtype=dtype).reshape(shape).copy()
        return outs


def ort_session(model, threads: int = 1):
    """An onnxruntime CPU session: 1 intra-op and 1 inter-op thread, all optimisations."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    src = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


class OrtModel:
    """An onnxruntime session called through an IOBinding with preallocated buffers."""

    def __init__(self, model, feeds: dict[str, np.ndarray]):
        import onnxruntime as ort

        self.sess = ort_session(model)
        self.binding = self.sess.io_binding()
        self._values = []
        for inp in self.sess.get_inputs():
            v = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(feeds[inp.name]))
            self._values.append(v)
            self.binding.bind_ortvalue_input(inp.name, v)
        for out in self.sess.get_outputs():
            self.binding.bind_output(out.name)
        self.sess.run_with_iobinding(self.binding)
        for out, v in zip(self.sess.get_outputs(), self.binding.get_outputs()):
            self.binding.bind_ortvalue_output(out.name, v)
            self._values.append(v)

    def time_runs(self, runs: int) -> list[float]:
        """Nanoseconds of each of `runs` calls."""
        run, binding = self.sess.run_with_iobinding, self.binding
        ns = []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            run(binding)
            ns.append(float(time.perf_counter_ns() - t0))
        return ns

    def outputs(self) -> dict[str, np.ndarray]:
        """Outputs of the last run by name."""
        return {o.name: v.numpy() for o, v in zip(self.sess.get_outputs(),
                                                  self.binding.get_outputs())}


def ort_call_overhead_ns(runs: int = 2000) -> float:
    """Median time of an IOBinding call of a 1-element Identity model: the per-call cost
    included in every onnxruntime latency measured here."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    m = OrtModel(model, {"x": np.zeros(1, np.float32)})
    m.time_runs(100)
    return float(np.median(m.time_runs(runs)))


def ort_int8_models(model_path: Path, calib: list[dict], workdir: Path) -> dict[str, Path]:
    """onnxruntime's own static int8 models of `model_path` (per-channel, u8 activations,
    s8 weights), calibrated on `calib`: {"QDQ": path, "QOperator": path}."""
    import logging

    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    logging.getLogger().setLevel(logging.ERROR)  # the quantizer's pre-processing advice

    class Reader:
        def __init__(self):
            self.it = iter(calib)

        def get_next(self):
            return next(self.it, None)

    out = {}
    for name, fmt in (("QDQ", QuantFormat.QDQ), ("QOperator", QuantFormat.QOperator)):
        path = workdir / f"ort_int8_{name}.onnx"
        quantize_static(str(model_path), str(path), Reader(), quant_format=fmt,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
        out[name] = path
    return out


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
              probe=None) -> dict[str, Timing]:
    """Warm every runner up, then run them in turn `chunk` runs at a time until each has
    `runs` timed runs; per-runner Timing. `probe` (optional) is called once per round."""
    for r in runners.values():
        r.time_runs(warmup)
    times: dict[str, list[float]] = {k: [] for k in runners}
    while any(len(t) < runs for t in times.values()):
        for key, r in runners.items():
            n = min(chunk, runs - len(times[key]))
            if n > 0:
                times[key].extend(r.time_runs(n))
        if probe is not None:
            probe()
    return {k: Timing.of(v) for k, v in times.items()}


def bench_inputs(g, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded N(0, 1) inputs (the benchmark's data; latency does not depend on values)."""
    from edgec.workbench.verify import random_inputs

    return random_inputs(g, seed)


def calibration_inputs(g, count: int = CALIB_SAMPLES, seed: int = 1) -> list[dict]:
    """Seeded N(0, 1) calibration samples shared by edgec and onnxruntime's quantizer."""
    from edgec.workbench.verify import random_inputs

    return [random_inputs(g, seed + i) for i in range(count)]


def compile_for_bench(model_path: Path, target_name: str, calib: list[dict] | None = None,
                      input_shapes: dict | None = None):
    """Compile with edgec; returns (CompileResult, compile seconds without calibration)."""
    from edgec.compiler import CompileOptions, compile_model

    options = CompileOptions(target=target_name, input_shapes=dict(input_shapes or {}),
                             calib_samples=calib)
    t0 = time.perf_counter()
    result = compile_model(model_path, options)
    seconds = time.perf_counter() - t0
    cal = (result.report.get("quantization") or {}).get("calibration") or {}
    return result, seconds - float(cal.get("seconds", 0.0))


def bench_model(model_path: str | Path, target_name: str, runs: int = DEFAULT_RUNS,
                compare: bool = True, input_shapes: dict | None = None, seed: int = 0,
                workdir: Path | None = None, lock_clocks: bool = False) -> dict:
    """Benchmark one model on one target; the dict documented in docs/benchmarks.md.
    `lock_clocks` runs the timed part under edgec.workbench.clocks.locked_clocks and, when the lock
    held, times edgec again afterwards without it (row['unlocked'])."""
    from edgec.frontend.onnx import load_onnx
    from edgec.targets import get_target

    model_path = Path(model_path)
    target = get_target(target_name)
    if runs < 1:
        raise EdgecError("--runs must be at least 1")
    g = load_onnx(model_path, input_shapes or {})
    feeds = bench_inputs(g, seed)
    calib = calibration_inputs(g) if target.is_int8 else None
    result, compile_s = compile_for_bench(model_path, target_name, calib, input_shapes)
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
        ort_forms: dict = {}
        if compare:
            if target.is_int8:
                for form, path in ort_int8_models(model_path, calib, tmpd).items():
                    ort_forms[form] = OrtModel(path, feeds)
            else:
                ort_forms["fp32"] = OrtModel(model_path, feeds)
            runners.update({f"ort:{k}": v for k, v in ort_forms.items()})
        peak = FmaPeak(tmpd)
        for _ in range(5):
            peak.probe()
        with locked_clocks(lock_clocks) as clocks:
            timings = alternate(runners, runs, probe=peak.probe)
        row["clocks"] = clocks.summary()
        if lock_clocks and clocks.locked:
            free = alternate({"edgec": edgec_model}, runs)["edgec"]
            row["unlocked"] = {"latency_ms": round(free.median_ms, 4),
                               "latency_p10_ms": round(free.p10_ms, 4),
                               "latency_p90_ms": round(free.p90_ms, 4)}
        row.update(_summarise(row, timings, peak.result(), target))
        if compare:
            row.update(_agreement(edgec_model, ort_forms, target))
            row["onnxruntime_call_overhead_ms"] = round(ort_call_overhead_ns() / 1e6, 4)
    row["litert_ms"] = None
    row["litert"] = LITERT_NA
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
    from edgec.workbench.verify import compare

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
    """Instructions per inference (edgec/workbench/instr_count.py: total, per MAC, per layer type) and
    the emulated, not meaningful, wall time on a target with a runner."""
    from edgec.workbench import toolchain
    from edgec.workbench.verify import build_result, harness_io

    exe = build_result(result, workdir)
    ins, specs = harness_io(result.graph, feeds)
    _, ns = toolchain.run(exe, result.target, ins, specs, runs=max(runs, 2))
    row = {"emulated": True, "latency_ms": round(float(np.median(ns)) / 1e6, 4)}
    try:
        from edgec.workbench.instr_count import count_instructions, instruction_summary

        count, _ = count_instructions(exe, result.target, result.report["prefix"], ins, specs)
        row.update(instruction_summary(result, count))
    except EdgecError as e:  # no QEMU plugin support: the latency row still stands
        row["instructions"] = None
        row["instructions_error"] = str(e)
    return row
