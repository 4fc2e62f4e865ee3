"""Shared test helpers: build ONNX models in memory, compile them with edgec, run the C, and
compare against independent references (onnxruntime, onnx.reference)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.compiler import CompileOptions, compile_graph
from edgec.frontend.onnx import import_model
from edgec.workbench.compare import compare
from edgec.workbench.machine import machine_info
from edgec.workbench.verify import run_compiled

REPO = Path(__file__).resolve().parents[1]
ZOO_DIR = REPO / "golden" / "models"

NP_TO_ONNX = {
    np.dtype("float32"): TensorProto.FLOAT,
    np.dtype("float64"): TensorProto.DOUBLE,
    np.dtype("int64"): TensorProto.INT64,
    np.dtype("int32"): TensorProto.INT32,
    np.dtype("int8"): TensorProto.INT8,
    np.dtype("uint8"): TensorProto.UINT8,
    np.dtype("bool"): TensorProto.BOOL,
}


def make_model(nodes, inputs: dict, outputs: dict, initializers: dict | None = None,
               opset: int = 17, name: str = "test") -> onnx.ModelProto:
    """A model from onnx.helper nodes; inputs/outputs map name -> (dtype, shape)."""
    ins = [helper.make_tensor_value_info(n, NP_TO_ONNX[np.dtype(d)], s)
           for n, (d, s) in inputs.items()]
    outs = [helper.make_tensor_value_info(n, NP_TO_ONNX[np.dtype(d)], s)
            for n, (d, s) in outputs.items()]
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in (initializers or {}).items()]
    graph = helper.make_graph(nodes, name, ins, outs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def ort_run(model: onnx.ModelProto | str | Path, feeds: dict) -> dict:
    """onnxruntime outputs by name (1 thread)."""
    from edgec.workbench.compare import onnxruntime_outputs

    return onnxruntime_outputs(model, feeds)


def compile_model_proto(model: onnx.ModelProto, target: str = "generic-fp32",
                        input_shapes: dict | None = None, **opts):
    """Compile an in-memory model with edgec; returns the CompileResult."""
    g = import_model(model, input_shapes, name="test")
    return compile_graph(g, CompileOptions(target=target, **opts), model_name="test")


def run_c(model: onnx.ModelProto, feeds: dict, target: str = "generic-fp32",
          sanitize: bool = False, cc: str | None = None, input_shapes: dict | None = None,
          **opts) -> dict:
    """Compile, build and run the generated C once; outputs by name."""
    result = compile_model_proto(model, target, input_shapes, **opts)
    with tempfile.TemporaryDirectory(prefix="edgec-test-") as tmp:
        return run_compiled(result, [feeds], Path(tmp), sanitize=sanitize, cc=cc)[0]


def check_against_ort(model: onnx.ModelProto, feeds: dict, target: str = "generic-fp32",
                      rtol: float = 1e-4, sanitize: bool = False, cc: str | None = None,
                      **opts) -> dict:
    """Assert the generated C matches onnxruntime within rtol; returns edgec's outputs."""
    got = run_c(model, feeds, target, sanitize=sanitize, cc=cc, **opts)
    ref = ort_run(model, feeds)
    for name, r in ref.items():
        c = compare(name, got[name], np.asarray(r), rtol)
        assert c.ok, f"{name}: max_rel_err {c.max_rel_err:.3g} (abs {c.max_abs_err:.3g})"
    return got


def have(tool: str) -> bool:
    """True when an executable is on PATH."""
    return shutil.which(tool) is not None


def int8_c_target_params(*arm64_targets: str) -> list:
    """generic-int8, x86_64-int8 (skipped without AVX2) and the given arm64 int8 targets
    (skipped without the cross compiler and qemu-aarch64), as pytest parameters."""
    arm64 = have("aarch64-linux-gnu-gcc") and have("qemu-aarch64")
    return ["generic-int8",
            pytest.param("x86_64-int8", marks=pytest.mark.skipif(
                "avx2" not in machine_info()["flags"], reason="this host has no AVX2")),
            *(pytest.param(t, marks=pytest.mark.skipif(
                not arm64, reason="needs gcc-aarch64-linux-gnu and qemu-user"))
              for t in arm64_targets)]


def ensure_zoo() -> Path:
    """Build the zoo models with tools/make_models.py unless they are already present.

    Only missing models are built (the committed small models are never rewritten here).
    """
    needed = {"mobilenetv2": ["mobilenetv2.onnx"], "resnet8": ["resnet8.onnx"],
              "dscnn": ["dscnn.onnx"],
              "digits_cnn": ["digits_cnn.onnx", "digits_test.npz", "digits_calib.npz"]}
    missing = [m for m, files in needed.items() if not all((ZOO_DIR / f).exists() for f in files)]
    if missing:
        subprocess.run([sys.executable, str(REPO / "tools" / "make_models.py"), "--out",
                        str(ZOO_DIR), "--only", ",".join(missing)], check=True)
    return ZOO_DIR


def tflite_mbqm(v: int, m: int, s: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier written out with Python integers, as its C++
    computes it (SaturatingRoundingDoublingHighMul with the nudge and a division truncating
    toward zero, then RoundingDivideByPOT with mask and threshold): an independent check of
    edgec/qmath.py."""
    ab = v * (1 << max(s, 0)) * m
    num = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    high = abs(num) // (1 << 31) * (1 if num >= 0 else -1)
    right = max(-s, 0)
    mask = (1 << right) - 1
    return (high >> right) + (1 if (high & mask) > (mask >> 1) + (high < 0) else 0)
