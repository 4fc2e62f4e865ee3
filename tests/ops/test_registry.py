"""Every registered op carries every facet; the registry refuses duplicates."""

import re
from pathlib import Path

import pytest

from edgec.codegen.c import kernels
from edgec.codegen.c.backend import TEMPLATE_DIR
from edgec.codegen.c.kernel import has_kernels
from edgec.codegen.c.select import select  # noqa: F401  (registers the kernel families)
from edgec.ops import OpDef, all_ops, register_op
from edgec.ops.base import PruneRule
from edgec.ops.int8_facet import Int8Facet


def _overrides(op, name):
    return getattr(type(op), name) is not getattr(OpDef, name)


@pytest.mark.parametrize("name", sorted(all_ops()))
def test_op_has_every_facet(name):
    op = all_ops()[name]
    assert op.name == name
    assert (type(op).__doc__ or "").strip(), f"{name} lacks a docstring"
    assert isinstance(op.attrs, dict)
    assert _overrides(op, "infer"), f"{name} lacks shape inference"
    assert _overrides(op, "reference"), f"{name} lacks a reference implementation"
    assert has_kernels(name) or op.fold_only, f"{name} lacks C kernels and is not fold-only"
    assert isinstance(op.quant, Int8Facet)
    assert isinstance(op.prune, PruneRule)


def test_templates_of_every_op_exist():
    """Every template a kernel family names (the lowering lives in codegen/c/kernels, not on
    the ops) exists."""
    named = {(path.name, t) for path in Path(kernels.__file__).parent.glob("*.py")
             for t in re.findall(r"[\"'](ops/[\w/]+\.c\.j2)[\"']", path.read_text())}
    assert any(t == "ops/elementwise.c.j2" for _, t in named)
    missing = [f"{family}: {t}" for family, t in sorted(named) if not (TEMPLATE_DIR / t).exists()]
    assert not missing, missing


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        @register_op("Relu")
        class Again(OpDef):
            """dup"""


def test_required_ops_are_registered():
    required = """Conv ConvTranspose Gemm MatMul Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Max Min
    Relu Clip LeakyRelu PRelu Sigmoid Tanh HardSigmoid HardSwish Erf MaxPool AveragePool
    GlobalAveragePool GlobalMaxPool BatchNormalization InstanceNormalization LayerNormalization
    Concat Split Slice Reshape Flatten Squeeze Unsqueeze Transpose Pad Resize Upsample Softmax
    LogSoftmax ReduceMean ReduceMax ReduceSum ArgMax Gather Identity Dropout Shape
    ConstantOfShape Range Cast Equal Where""".split()
    missing = [op for op in required if op not in all_ops()]
    assert not missing, f"not registered yet: {missing}"


def test_every_int8_op_the_passes_emit_exports_as_qdq():
    """export-qdq writes each int8 op through its facet (DQ -> float op -> Q), none as
    itself: ONNX has no QConv."""
    emitted = ("QConv", "QGemm", "QMatMul", "QAdd", "QMul", "QAveragePool",
               "QGlobalAveragePool", "QRequantize", "QLookup", "QPRelu", "QSoftmax")
    for name in emitted:
        facet = all_ops()[name].quant
        assert type(facet).to_qdq is not Int8Facet.to_qdq, f"{name} has no QDQ form"
