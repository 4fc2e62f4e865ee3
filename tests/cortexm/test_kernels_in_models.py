"""The Cortex-M kernels inside whole models (kernel selection routes int8 QConv and QGemm to
them on the DSP and Helium targets: codegen/c/kernels/cortexm.py): every zoo model verifies
bit-exact against the int8 reference interpreter in qemu-system-arm, and the generated C
really calls them (the portable twin of the target does not)."""

from __future__ import annotations

import pytest

from edgec.compiler import CompileOptions, compile_model
from edgec.frontend.onnx import load_onnx
from edgec.quant import random_calibration_inputs
from edgec.workbench.instr_count import portable_twin
from edgec.workbench.verify import verify_model

CASES = [("digits_cnn", "cortex-m4-int8"), ("digits_cnn", "cortex-m55-int8"),
         ("dscnn", "cortex-m4-int8"), ("dscnn", "cortex-m55-int8"),
         pytest.param("dscnn", "cortex-m7-int8", marks=pytest.mark.slow),
         pytest.param("resnet8", "cortex-m4-int8", marks=pytest.mark.slow),
         pytest.param("resnet8", "cortex-m55-int8", marks=pytest.mark.slow)]


@pytest.mark.parametrize("model,target", CASES)
def test_model_with_cortexm_kernels_is_bit_exact(zoo_dir, model, target):
    res = verify_model(zoo_dir / f"{model}.onnx", CompileOptions(target=target), seed=9)
    assert res.ok and res.exact, [(o.name, o.mismatched) for o in res.outputs]
    if model == "digits_cnn":  # int8 logits dequantised: every bit the int8 reference's
        assert all(o.mismatched == 0 for o in res.outputs)


@pytest.mark.parametrize("target,header,calls", [
    ("cortex-m4-int8", "edgec_cm_dsp.h", ("edgec_cm_gemm_s8", "edgec_cm_conv_s8",
                                          "edgec_cm_depthwise_s8", "edgec_cm_avgpool_s8")),
    ("cortex-m55-int8", "edgec_cm_mve.h", ("edgec_cm_mve_gemm_s8", "edgec_cm_mve_conv_s8",
                                           "edgec_cm_mve_depthwise_s8", "edgec_cm_avgpool_s8"))])
def test_generated_c_calls_the_kernels(zoo_dir, target, header, calls):
    path = zoo_dir / "dscnn.onnx"
    calib = random_calibration_inputs(load_onnx(path), 2, seed=1)
    res = compile_model(path, CompileOptions(target=target, calib_samples=calib))
    assert header in res.files
    for call in calls:
        assert call + "(" in res.files["dscnn.c"], call
    plain = compile_model(path, CompileOptions(target=portable_twin(target).name,
                                               calib_samples=calib))
    assert header not in plain.files  # the portable twin: the portable kernels
