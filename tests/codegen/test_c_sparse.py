"""CSR weights and zero-skipping kernels (codegen/c/kernels/sparse.py): a model pruned with
`--sparsity 0.9` stores its Conv/Gemm/MatMul weights sparse, reports the flash saved, matches
onnxruntime and the dense kernels bit for bit on generic-fp32 (same summation order), builds
ASan/UBSan-clean with gcc and clang; `auto` follows the work estimate per target; a dense
model compiles exactly as before."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from edgec.codegen.c.kernels.sparse import AUTO_MIN_SPARSITY, csr
from onnx import helper

from edgec.errors import EdgecError
from edgec.prune.sparsity import magnitude_prune
from tests.helpers import check_against_ort, compile_model_proto, have, make_model, run_c

RNG = np.random.default_rng(1616)
F32 = np.float32


def dense_model() -> onnx.ModelProto:
    """Conv 3x3 (pad 1) + Relu -> Conv 1x1 + Relu -> Conv 3x3 stride 2 -> Flatten -> Gemm ->
    MatMul with a constant B: every layer kind the sparse kernels take, 1-8 KiB each."""
    inits = {"w1": RNG.standard_normal((16, 8, 3, 3)).astype(F32) * 0.3,
             "b1": RNG.standard_normal(16).astype(F32),
             "w2": RNG.standard_normal((32, 16, 1, 1)).astype(F32) * 0.3,
             "b2": RNG.standard_normal(32).astype(F32),
             "w3": RNG.standard_normal((16, 32, 3, 3)).astype(F32) * 0.3,
             "gw": RNG.standard_normal((32, 144)).astype(F32) * 0.2,
             "gb": RNG.standard_normal(32).astype(F32),
             "mb": RNG.standard_normal((32, 16)).astype(F32) * 0.3}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1] * 4),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Conv", ["r2", "w3"], ["c3"], name="conv3", strides=[2, 2]),
             helper.make_node("Flatten", ["c3"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "gw", "gb"], ["g"], name="fc", transB=1),
             helper.make_node("MatMul", ["g", "mb"], ["y"], name="proj")]
    return make_model(nodes, {"x": (F32, [1, 8, 8, 8])}, {"y": (F32, [1, 16])}, inits)


def pruned_model(sparsity: float = 0.9) -> onnx.ModelProto:
    return magnitude_prune(dense_model(), sparsity)[0]


FEEDS = {"x": RNG.standard_normal((1, 8, 8, 8)).astype(F32)}


def test_csr_rows_columns_and_values():
    rowptr, cols, vals = csr(np.array([[0, 2, 0, 3], [0, 0, 0, 0], [1, 0, 0, 0]], F32))
    assert rowptr.tolist() == [0, 2, 2, 3] and rowptr.dtype == np.int16
    assert cols.tolist() == [1, 3, 0] and cols.dtype == np.int16
    assert vals.tolist() == [2, 3, 1]


def test_pruned_model_stores_its_layers_sparse_and_reports_the_flash_saved():
    sparse = compile_model_proto(pruned_model(), "generic-fp32", sparse_weights="on")
    dense = compile_model_proto(pruned_model(), "generic-fp32", sparse_weights="off")
    section = sparse.report["sparse_weights"]
    assert [r["op"] for r in section["layers"]] == ["Conv", "Conv", "Conv", "Gemm", "MatMul"]
    for row in section["layers"]:
        assert row["storage"] == "csr" and row["sparsity"] >= AUTO_MIN_SPARSITY
        assert 0 < row["sparse_bytes"] < row["dense_bytes"] * 0.35
    saved = dense.report["weights_bytes"] - sparse.report["weights_bytes"]
    # the dense MatMul also keeps two 4-byte batch offset tables the sparse one has no use for
    assert saved == section["saved_bytes"] + 8 and saved > 0
    assert "sparse_weights" not in dense.report
    assert "rowptr" in sparse.files["test.c"] and "rowptr" not in dense.files["test.c"]


def test_auto_takes_the_layers_whose_estimated_work_is_below_dense():
    def auto_ops(target):
        rows = compile_model_proto(pruned_model(), target).report.get("sparse_weights")
        return [r["op"] for r in rows["layers"]] if rows else []

    assert auto_ops("cortex-m4-fp32") == ["Conv", "Conv", "Conv", "Gemm", "MatMul"]  # scalar FPU
    assert auto_ops("generic-fp32") == ["Conv", "Gemm"]  # 3x3 stride 2 and the FC beat portable
    assert auto_ops("x86_64-fp32") == []  # AVX2 kernels win at 90% zeros: dense, as before


def test_dense_and_half_pruned_models_compile_exactly_as_before():
    for model in (dense_model(), pruned_model(0.5)):
        auto = compile_model_proto(model, "x86_64-fp32")
        off = compile_model_proto(model, "x86_64-fp32", sparse_weights="off")
        assert auto.files == off.files
        assert "sparse_weights" not in auto.report
    on = compile_model_proto(pruned_model(0.5), "generic-fp32", sparse_weights="on")
    assert len(on.report["sparse_weights"]["layers"]) == 5  # CSR is smaller at 50% zeros too


def test_unknown_mode_is_one_line_error():
    with pytest.raises(EdgecError, match="--sparse-weights takes auto, off, on"):
        compile_model_proto(dense_model(), "generic-fp32", sparse_weights="always")


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_sparse_kernels_match_onnxruntime_and_the_dense_kernels_sanitized(cc):
    if not have(cc):
        pytest.skip(f"{cc} is not installed")
    model = pruned_model()
    got = check_against_ort(model, FEEDS, "generic-fp32", sanitize=True, cc=cc,
                            sparse_weights="on")
    dense = run_c(model, FEEDS, "generic-fp32", cc=cc, sparse_weights="off")
    np.testing.assert_array_equal(got["y"], dense["y"])  # same summation order


def test_sparse_kernels_on_x86_target_match_onnxruntime():
    check_against_ort(pruned_model(), FEEDS, "x86_64-fp32", sparse_weights="on")
