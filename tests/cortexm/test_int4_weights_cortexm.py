"""int4 weights (W4A8) on Cortex-M: the DSP/Helium kernels are int8-only, so int4 layers run
the portable int4 kernels (ops/q4gemm, ops/q4conv); the firmware under QEMU is bit-exact
with the int8 reference interpreter."""

from __future__ import annotations

import pytest

from edgec.compiler import CompileOptions, compile_model
from edgec.workbench.verify import verify_model


@pytest.mark.parametrize("target", ["cortex-m0-int8", "cortex-m4-int8", "cortex-m55-int8"])
def test_int4_cortexm_is_bit_exact_with_the_reference(zoo_dir, target):
    options = CompileOptions(target=target, weight_bits=4)
    res = verify_model(zoo_dir / "digits_cnn.onnx", options, seed=3)
    assert res.ok and res.exact, [o.as_dict() for o in res.outputs]
    layers = compile_model(zoo_dir / "digits_cnn.onnx", options).report["weight_bits"]
    assert {r["kernel"] for r in layers["int4_layers"]} == {"q4conv", "q4gemm"}
