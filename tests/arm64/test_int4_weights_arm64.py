"""int4 weights (W4A8) on arm64: the NEON kernels (SDOT on arm64-int8, SMULL/SADALP on
arm64-int8-base) with nibble weights are bit-exact with the int8 reference interpreter on
ResNet-8 and the digits CNN (cross-built, run under qemu)."""

from __future__ import annotations

import pytest

from edgec.compiler import CompileOptions, compile_model
from edgec.workbench.verify import verify_model

KERNELS = {"arm64-int8": "neon-q4gemm-dot", "arm64-int8-base": "neon-q4gemm-mull",
           "arm64-int8-i8mm": "neon-q4gemm-dot"}  # no SMMLA int4 tile: SDOT


@pytest.mark.parametrize("target", sorted(KERNELS))
@pytest.mark.parametrize("model", ["resnet8", "digits_cnn"])
def test_int4_neon_is_bit_exact_with_the_reference(zoo_dir, model, target):
    options = CompileOptions(target=target, weight_bits=4)
    res = verify_model(zoo_dir / f"{model}.onnx", options, seed=3)
    assert res.ok and res.exact, [o.as_dict() for o in res.outputs]
    layers = compile_model(zoo_dir / f"{model}.onnx", options).report["weight_bits"][
        "int4_layers"]
    assert {r["kernel"] for r in layers} == {KERNELS[target]}, layers
