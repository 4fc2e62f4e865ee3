"""What `edgec bench` times: edgec's generated C loaded in-process with a timing shim
(edgec/workbench/csrc/bench_shim.c, CLOCK_MONOTONIC around each `<prefix>_run`), and
onnxruntime sessions called through an IOBinding with preallocated inputs and outputs (each
call timed from Python with perf_counter_ns; the per-call overhead that includes is measured
on an Identity model by `ort_call_overhead_ns`). Both expose `time_runs(n)` and `outputs()`.
"""

from __future__ import annotations

import ctypes
import logging
import shlex
import subprocess
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from edgec.compiler import write_output
from edgec.errors import ToolchainError
from edgec.workbench.csources import c_source
from edgec.workbench.toolchain import STRICT_FLAGS, compile_checked, compiler_for


def shim_defines(prefix: str) -> list[str]:
    """The -D flags that name the model to the timing shim (see bench_shim.c)."""
    return [f'-DEDGEC_BENCH_HEADER="{prefix}.h"', f"-DEDGEC_BENCH_PREFIX={prefix}",
            f"-DEDGEC_BENCH_NUM_INPUTS={prefix.upper()}_NUM_INPUTS"]


class CompiledModel:
    """edgec's generated C as a shared library with the timing shim, loaded in-process."""

    def __init__(self, result, workdir: Path, feeds: dict[str, np.ndarray]):
        target = result.target
        prefix = result.report["prefix"]
        out = write_output(result.files, workdir / "c")
        (out / "edgec_bench_shim.c").write_text(c_source("bench_shim.c"))
        cc = shlex.split(compiler_for(target))
        flags = [*STRICT_FLAGS, *target.cflags, "-fPIC", f"-I{out}", *shim_defines(prefix)]
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
        compile_checked([*cc, "-shared", *(str(s.with_suffix(".o")) for s in sources), "-o",
                  str(lib_path), *target.ldflags], "the model library")
        self.lib = ctypes.CDLL(str(lib_path))
        self.prefix = prefix
        weights_file = out / f"{prefix}.weights"
        if weights_file.exists():  # --weights external: map it before the first run
            open_weights = getattr(self.lib, f"{prefix}_weights_open")
            open_weights.restype = ctypes.c_int
            open_weights.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
            status = open_weights(str(weights_file).encode(), None, 0)
            if status != 0:
                raise ToolchainError(f"{weights_file.name} was refused with code {status}")
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


class WithThreads:
    """A CompiledModel built with --threads, timed at `threads` pool threads: the pool is
    restarted with that count before each batch of runs (outside the timed calls), so one
    library serves the 1-thread and the N-thread columns alternately."""

    def __init__(self, model: CompiledModel, threads: int):
        self.model, self.threads = model, threads
        self.set_threads = getattr(model.lib, f"{model.prefix}_set_threads")
        self.set_threads.restype, self.set_threads.argtypes = ctypes.c_int, [ctypes.c_int]

    def time_runs(self, runs: int) -> list[float]:
        """Nanoseconds of each of `runs` runs at `threads` threads."""
        if self.set_threads(self.threads) != 0:
            raise ToolchainError(f"the model's thread pool did not start {self.threads} threads")
        return self.model.time_runs(runs)

    def outputs(self) -> dict[str, np.ndarray]:
        """The outputs of the last run, by public name."""
        return self.model.outputs()


def ort_session(model, threads: int = 1):
    """An onnxruntime CPU session: `threads` intra-op threads (default 1), 1 inter-op thread,
    all optimisations."""
    import onnxruntime as ort  # on use: ~0.3 s of start-up that emulated runs never pay

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

    def __init__(self, model, feeds: dict[str, np.ndarray], threads: int = 1):
        import onnxruntime as ort  # on use, as in ort_session

        self.sess = ort_session(model, threads)
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
    # onnxruntime is imported on use: ~0.3 s that fp32-only and emulated runs never pay
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
