"""LiteRT beside edgec's C in `edgec bench`: the same model as edgec's .tflite, timed in
LiteRT's default CPU path (builtin kernels with the XNNPACK delegate, one thread) and
interleaved with the other runners by edgec.workbench.bench.alternate.

The int8 file is compiled with the calibration samples the C target used, so both run the
same quantised model; fp32 C targets compare with tflite-fp32.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator

import numpy as np

from edgec.errors import EdgecError


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for a moment (LiteRT's C++ logs bypass Python)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class LiteRTModel:
    """A LiteRT interpreter with its inputs set once; `time_runs` times invoke()."""

    def __init__(self, model_bytes: bytes, inputs: list[np.ndarray]) -> None:
        from ai_edge_litert.interpreter import Interpreter

        with _native_stderr_silenced():  # "INFO: Created TensorFlow Lite XNNPACK delegate"
            self.interp = Interpreter(model_content=model_bytes, num_threads=1)
            self.interp.allocate_tensors()
        for detail, arr in zip(self.interp.get_input_details(), inputs):
            self.interp.set_tensor(detail["index"], arr)
        self.interp.invoke()

    def time_runs(self, runs: int) -> list[float]:
        """Nanoseconds of each of `runs` invocations."""
        invoke, ns = self.interp.invoke, []
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            invoke()
            ns.append(float(time.perf_counter_ns() - t0))
        return ns


def litert_runner(model_path, target, feeds: dict, calib, input_shapes
                  ) -> tuple[LiteRTModel | None, str]:
    """(LiteRTModel of a C target's model, "") or (None, why not: LiteRT missing, or edgec
    cannot write this model as TFLite)."""
    from edgec.codegen.tflite.runner import _feeds_in_file_order, quantize_input
    from edgec.compiler import CompileOptions, compile_model

    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return None, "n/a (ai-edge-litert not installed)"
    name = "tflite-int8" if target.is_int8 else "tflite-fp32"
    try:
        result = compile_model(model_path, CompileOptions(
            target=name, calib_samples=calib, input_shapes=dict(input_shapes or {})))
    except EdgecError as e:
        return None, f"n/a ({str(e)[:80]})"
    data = result.files["model.tflite"]
    g = result.graph
    names = list(g.meta.get("input_names") or [v.name for v in g.inputs])
    inputs = [quantize_input(a, v.dtype.np, 1.0, 0) for a, v in
              zip(_feeds_in_file_order(data, feeds, names), g.inputs)]
    return LiteRTModel(data, inputs), ""


def litert_fields(timings: dict, reason: str) -> dict:
    """The bench row's LiteRT columns: the median ms, or why there is none."""
    if "litert" in timings:
        ms = round(timings["litert"].median_ms, 4)
        return {"litert_ms": ms, "litert": f"{ms:.4f}"}
    return {"litert_ms": None, "litert": reason} if reason else {}
