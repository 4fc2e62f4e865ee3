"""Before/Expected IR text of each pass on a small graph built here: the pass's rewrite reads
as the difference of two printouts (edgec/ir/printer.py: constants as content hashes). Beside
the numeric checks of the other pass tests; the float passes are also checked here against
the reference interpreter on random data. A change to a pass that changes its output shows up
as a text diff: update the expected text only when the new IR is the intended one."""

import numpy as np
from helpers import make_model
from numpy.testing import assert_allclose
from onnx import helper

from edgec.frontend.onnx import import_model
from edgec.interp import run_graph
from edgec.ir import print_graph
from edgec.passes import PassManager, PassOptions
from edgec.quant.calibrate import calibrate
from edgec.quant.config import QuantOptions
from edgec.targets import INT8_FLOAT_PIPELINE

INT8_PREPARATION = [p for p in INT8_FLOAT_PIPELINE if p != "import-qdq"]


# ------------------------------------------------------------------------------ graphs
def weights(seed, *shape, scale=0.3):
    """Seeded N(0, scale^2) float32 weights."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def conv_node(x, y, **attrs):
    """A 3x3 Conv with weights "w", bias "b" and one pixel of zero padding."""
    return helper.make_node("Conv", [x, "w", "b"], [y], pads=[1, 1, 1, 1], **attrs)


def graph(nodes, inputs, outputs, inits):
    """The IR of an ONNX graph of `nodes` (imported as edgec imports any model)."""
    return import_model(make_model(nodes, inputs, outputs, inits), name="t")


X = {"x": ("float32", (1, 2, 4, 4))}
Y = {"y": ("float32", (1, 3, 4, 4))}
CONV_INITS = {"w": weights(1, 3, 2, 3, 3), "b": weights(2, 3)}


def conv_batchnorm():
    """Conv -> BatchNormalization."""
    bn = {"gamma": weights(3, 3) + 1, "beta": weights(4, 3), "mean": weights(5, 3),
          "var": np.abs(weights(6, 3)) + 0.5}
    return graph([conv_node("x", "c"),
                  helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"],
                                   ["y"])], X, Y, {**CONV_INITS, **bn})


def pad_conv():
    """Pad (one pixel of zeros) -> Conv without padding."""
    pads = np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)
    return graph([helper.make_node("Pad", ["x", "pads"], ["p"]),
                  helper.make_node("Conv", ["p", "w", "b"], ["y"])], X, Y,
                 {**CONV_INITS, "pads": pads})


def conv_relu():
    """Conv -> Relu."""
    return graph([conv_node("x", "c"), helper.make_node("Relu", ["c"], ["y"])], X, Y,
                 CONV_INITS)


def conv_add_residual():
    """Conv -> Add of the Conv's own input."""
    inits = {"w": weights(1, 2, 2, 3, 3), "b": weights(2, 2)}
    return graph([conv_node("x", "c"), helper.make_node("Add", ["c", "x"], ["y"])], X,
                 {"y": ("float32", (1, 2, 4, 4))}, inits)


def matmul_add():
    """MatMul by a constant -> Add of a bias row."""
    return graph([helper.make_node("MatMul", ["x", "w"], ["m"]),
                  helper.make_node("Add", ["m", "b"], ["y"])],
                 {"x": ("float32", (2, 4))}, {"y": ("float32", (2, 3))},
                 {"w": weights(7, 4, 3), "b": weights(8, 3)})


def views_and_constants():
    """Identity -> Reshape -> Reshape, times a constant folded at import."""
    shape = np.array([1, 8, 4], np.int64)
    flat = np.array([1, 32], np.int64)
    return graph([helper.make_node("Identity", ["x"], ["i"]),
                  helper.make_node("Reshape", ["i", "shape"], ["r"]),
                  helper.make_node("Reshape", ["r", "flat"], ["f"]),
                  helper.make_node("Add", ["two", "two"], ["four"]),
                  helper.make_node("Mul", ["f", "four"], ["y"])],
                 X, {"y": ("float32", (1, 32))},
                 {"shape": shape, "flat": flat, "two": np.float32(2.0)})


def conv_relu_pool():
    """Conv -> Relu -> MaxPool, channels-first."""
    return graph([conv_node("x", "c"), helper.make_node("Relu", ["c"], ["r"]),
                  helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[2, 2],
                                   strides=[2, 2])], X, {"y": ("float32", (1, 3, 2, 2))},
                 CONV_INITS)


def small_cnn():
    """Conv + Relu -> GlobalAveragePool -> Flatten -> Gemm: the int8 path end to end."""
    return graph([conv_node("x", "c"), helper.make_node("Relu", ["c"], ["r"]),
                  helper.make_node("GlobalAveragePool", ["r"], ["p"]),
                  helper.make_node("Flatten", ["p"], ["f"]),
                  helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], transB=1)],
                 X, {"y": ("float32", (1, 2))},
                 {**CONV_INITS, "fc": weights(9, 2, 3), "fb": weights(10, 2)})


def qdq_conv():
    """A QDQ model as onnxruntime's quantize_static writes it: Q/DQ around a Conv."""
    w_q = np.clip(np.rint(weights(1, 3, 2, 3, 3) / 0.01), -127, 127).astype(np.int8)
    b_q = np.rint(weights(2, 3) / (0.02 * 0.01)).astype(np.int32)
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("DequantizeLinear", ["bq", "bs", "bz"], ["bd"], axis=0),
             helper.make_node("Conv", ["xd", "wd", "bd"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "ys", "yz"], ["yq"]),
             helper.make_node("DequantizeLinear", ["yq", "ys", "yz"], ["y"])]
    inits = {"xs": np.float32(0.02), "xz": np.int8(3), "wq": w_q,
             "ws": np.full(3, 0.01, np.float32), "wz": np.zeros(3, np.int8), "bq": b_q,
             "bs": np.full(3, 0.0002, np.float32), "bz": np.zeros(3, np.int32),
             "ys": np.float32(0.05), "yz": np.int8(-10)}
    return graph(nodes, X, Y, inits)


def add_lookup_concat():
    """Sigmoid (a lookup table), Add then Relu (folded into QAdd's clamp), Concat of inputs
    at different scales (a QRequantize)."""
    return graph([helper.make_node("Sigmoid", ["x"], ["a"]),
                  helper.make_node("Add", ["x", "a"], ["s"]),
                  helper.make_node("Relu", ["s"], ["r"]),
                  helper.make_node("Concat", ["r", "x"], ["y"], axis=1)],
                 X, {"y": ("float32", (1, 4, 4, 4))}, {})


# ------------------------------------------------------------------------------ checks
def random_feeds(g, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded N(0, 1) data for every graph input."""
    rng = np.random.default_rng(seed)
    return {v.name: rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs}


def check_rewrite(g, passes, before: str, expected: str, options=None, numeric=True):
    """`g` prints as `before`; after `passes` it prints as `expected` (and, for float
    passes, computes what it computed before)."""
    assert print_graph(g) == before
    feeds = random_feeds(g)
    want = run_graph(g.clone(), feeds) if numeric else None
    PassManager(list(passes), verify_each=True, options=options or PassOptions()).run(g)
    assert print_graph(g) == expected
    if numeric:
        got = run_graph(g, feeds)
        for name in want:
            assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6)


def calibrated(g, seed: int) -> QuantOptions:
    """Static int8 options with a calibration of `g` on two seeded N(0, 1) samples."""
    rng = np.random.default_rng(seed)
    samples = [{v.name: rng.standard_normal(v.shape).astype(np.float32) for v in g.inputs}
               for _ in range(2)]
    return QuantOptions(calibrate(g.clone(), samples, progress=False))


FOLD_BATCHNORM_BEFORE = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %b: float32[3] #f4eac3fc78
  const %beta: float32[3] #3034d8ac52
  const %gamma: float32[3] #07a1aaa42a
  const %mean: float32[3] #561d63bbdf
  const %var: float32[3] #04311e4369
  const %w: float32[3x2x3x3] #11248de1c3
  %c: float32[1x3x4x4] = Conv(%x, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='none', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NCHW', pads=[1,1,1,1], strides=[1,1]}  # conv
  %y: float32[1x3x4x4] = BatchNormalization(%c, %gamma, %beta, %mean, %var) {epsilon=1e-05, layout='NCHW', momentum=0.9, training_mode=0}  # batchnormalization
"""
FOLD_BATCHNORM_EXPECTED = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%conv_1)
  const %batchnormalization_bias: float32[3] #fc7325d7a2
  const %w_bn: float32[3x2x3x3] #59ba89f77e
  %conv_1: float32[1x3x4x4] = Conv(%x, %w_bn, %batchnormalization_bias) {act_alpha=0, act_beta=0, act_slope=[], activation='none', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NCHW', pads=[1,1,1,1], strides=[1,1]}  # conv_1
"""


def test_fold_batchnorm():
    """BatchNormalization after a Conv folds into its weights and bias."""
    check_rewrite(conv_batchnorm(), ["fold-batchnorm"], FOLD_BATCHNORM_BEFORE, FOLD_BATCHNORM_EXPECTED)


FOLD_PAD_BEFORE = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %b: float32[3] #f4eac3fc78
  const %w: float32[3x2x3x3] #11248de1c3
  %p: float32[1x2x6x6] = Pad(%x) {mode='constant', pads=[0,0,1,1,0,0,1,1], value=0}  # pad
  %y: float32[1x3x4x4] = Conv(%p, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='none', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NCHW', pads=[0,0,0,0], strides=[1,1]}  # conv
"""
FOLD_PAD_EXPECTED = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%conv_1)
  const %b: float32[3] #f4eac3fc78
  const %w: float32[3x2x3x3] #11248de1c3
  %conv_1: float32[1x3x4x4] = Conv(%x, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='none', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NCHW', pads=[1,1,1,1], strides=[1,1]}  # conv_1
"""


def test_fold_pad():
    """A zero Pad before a Conv becomes the Conv's pads."""
    check_rewrite(pad_conv(), ["fold-pad"], FOLD_PAD_BEFORE, FOLD_PAD_EXPECTED)


FUSE_ACTIVATION_BEFORE = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %b: float32[3] #f4eac3fc78
  const %w: float32[3x2x3x3] #11248de1c3
  %c: float32[1x3x4x4] = Conv(%x, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='none', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NCHW', pads=[1,1,1,1], strides=[1,1]}  # conv
  %y: float32[1x3x4x4] = Relu(%c)  # relu
"""
FUSE_ACTIVATION_EXPECTED = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%conv_1)
  const %b: float32[3] #f4eac3fc78
  const %w: float32[3x2x3x3] #11248de1c3
  %conv_1: float32[1x3x4x4] = Conv(%x, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='relu', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NCHW', pads=[1,1,1,1], strides=[1,1]}  # conv_1
"""


def test_fuse_activation():
    """Conv -> Relu becomes Conv(activation=relu)."""
    check_rewrite(conv_relu(), ["fuse-activation"], FUSE_ACTIVATION_BEFORE, FUSE_ACTIVATION_EXPECTED)


FUSE_RESIDUAL_BEFORE = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %b: float32[2] #0279cec862
  const %w: float32[2x2x3x3] #97f8ce932c
  %c: float32[1x2x4x4] = Conv(%x, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='none', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NCHW', pads=[1,1,1,1], strides=[1,1]}  # conv
  %y: float32[1x2x4x4] = Add(%c, %x)  # add
"""
FUSE_RESIDUAL_EXPECTED = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%conv_1)
  const %b: float32[2] #0279cec862
  const %w: float32[2x2x3x3] #97f8ce932c
  %conv_1: float32[1x2x4x4] = Conv(%x, %w, %b, %x) {act_alpha=0, act_beta=0, act_slope=[], activation='none', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NCHW', pads=[1,1,1,1], strides=[1,1]}  # conv_1
"""


def test_fuse_residual():
    """Conv -> Add(x) becomes Conv with x as its residual input."""
    check_rewrite(conv_add_residual(), ["fuse-residual"], FUSE_RESIDUAL_BEFORE, FUSE_RESIDUAL_EXPECTED)


MATMUL_TO_GEMM_BEFORE = """\
graph t(
    %x: float32[2x4],
) -> (%y)
  const %b: float32[3] #f3f3e339c7
  const %w: float32[4x3] #af14fa4c45
  %m: float32[2x3] = MatMul(%x, %w) {act_alpha=0, act_beta=0, act_slope=[], activation='none'}  # matmul
  %y: float32[2x3] = Add(%m, %b)  # add
"""
MATMUL_TO_GEMM_EXPECTED = """\
graph t(
    %x: float32[2x4],
) -> (%matmul_1)
  const %b_row: float32[3] #f3f3e339c7
  const %w: float32[4x3] #af14fa4c45
  %matmul_1: float32[2x3] = Gemm(%x, %w, %b_row) {act_alpha=0, act_beta=0, act_slope=[], activation='none', alpha=1, beta=1, input_pool='none', transA=0, transB=0}  # matmul_1
"""


def test_matmul_to_gemm():
    """MatMul -> Add(bias) becomes Gemm."""
    check_rewrite(matmul_add(), ["matmul-to-gemm"], MATMUL_TO_GEMM_BEFORE, MATMUL_TO_GEMM_EXPECTED)


CANONICALIZE_BEFORE = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %four: float32[scalar] #4bebdc72a5
  %i: float32[1x2x4x4] = Identity(%x)  # identity
  %r: float32[1x8x4] = Reshape(%i) {allowzero=0, shape=[1,8,4]}  # reshape
  %f: float32[1x32] = Reshape(%r) {allowzero=0, shape=[1,32]}  # reshape_1
  %y: float32[1x32] = Mul(%f, %four)  # mul
"""
CANONICALIZE_EXPECTED = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %four: float32[scalar] #4bebdc72a5
  %reshape_1_1: float32[1x32] = Reshape(%x) {allowzero=0, shape=[1,32]}  # reshape_1_1
  %y: float32[1x32] = Mul(%reshape_1_1, %four)  # mul
"""


def test_canonicalize():
    """Identity disappears and two Reshapes merge into one."""
    check_rewrite(views_and_constants(), ["canonicalize"], CANONICALIZE_BEFORE, CANONICALIZE_EXPECTED)


LAYOUT_NHWC_BEFORE = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %b: float32[3] #f4eac3fc78
  const %w: float32[3x2x3x3] #11248de1c3
  %c: float32[1x3x4x4] = Conv(%x, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='none', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NCHW', pads=[1,1,1,1], strides=[1,1]}  # conv
  %r: float32[1x3x4x4] = Relu(%c)  # relu
  %y: float32[1x3x2x2] = MaxPool(%r) {auto_pad='NOTSET', ceil_mode=0, dilations=[1,1], kernel_shape=[2,2], layout='NCHW', pads=[0,0,0,0], storage_order=0, strides=[2,2]}  # maxpool
"""
LAYOUT_NHWC_EXPECTED = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%maxpool_to_nchw)
  const %b: float32[3] #f4eac3fc78
  const %w: float32[3x2x3x3] #11248de1c3
  %conv_to_nhwc: float32[1x4x4x2] = Transpose(%x) {perm=[0,2,3,1]}  # conv_to_nhwc
  %c: float32[1x4x4x3] = Conv(%conv_to_nhwc, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='none', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NHWC', pads=[1,1,1,1], strides=[1,1]}  # conv
  %relu_1: float32[1x4x4x3] = Relu(%c)  # relu_1
  %y: float32[1x2x2x3] = MaxPool(%relu_1) {auto_pad='NOTSET', ceil_mode=0, dilations=[1,1], kernel_shape=[2,2], layout='NHWC', pads=[0,0,0,0], storage_order=0, strides=[2,2]}  # maxpool
  %maxpool_to_nchw: float32[1x3x2x2] = Transpose(%y) {perm=[0,3,1,2]}  # maxpool_to_nchw
"""


def test_layout_nhwc():
    """Spatial ops go channels-last; Transposes only at the graph's edges."""
    check_rewrite(conv_relu_pool(), ["layout-nhwc"], LAYOUT_NHWC_BEFORE, LAYOUT_NHWC_EXPECTED)


QUANTIZE_BEFORE = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %b: float32[3] #f4eac3fc78
  const %fb: float32[2] #85bce363f1
  const %fc: float32[2x3] #5262b45b8e
  const %w: float32[3x2x3x3] #11248de1c3
  %conv_1_to_nhwc: float32[1x4x4x2] = Transpose(%x) {perm=[0,2,3,1]}  # conv_1_to_nhwc
  %conv_1: float32[1x4x4x3] = Conv(%conv_1_to_nhwc, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='relu', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NHWC', pads=[1,1,1,1], strides=[1,1]}  # conv_1
  %p: float32[1x1x1x3] = GlobalAveragePool(%conv_1) {layout='NHWC'}  # globalaveragepool
  %flatten_1: float32[1x3] = Reshape(%p) {allowzero=0, shape=[1,3]}  # flatten_1
  %y: float32[1x2] = Gemm(%flatten_1, %fc, %fb) {act_alpha=0, act_beta=0, act_slope=[], activation='none', alpha=1, beta=1, input_pool='none', transA=0, transB=1}  # gemm
"""
QUANTIZE_EXPECTED = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %conv_1_bias_int32: int32[3] #5e0f824e95
  const %conv_1_w_int8: int8[3x2x3x3] #b915f134fa
  const %gemm_bias_int32: int32[2] #d77e1a0b64
  const %gemm_w_int8: int8[2x3] #4dacc97308
  const %x_scale: float32[scalar] #78857d7b66
  const %x_zp: int8[scalar] #4eafd72b2d
  const %y_dq_scale: float32[scalar] #967459e4d9
  const %y_dq_zp: int8[scalar] #ebd5819382
  %x_int8: int8[1x2x4x4] qint8(s=0.0168051, zp=10) = QuantizeLinear(%x, %x_scale, %x_zp) {axis=1, block_size=0, output_dtype=3, precision=0, saturate=1}  # x_quantize
  %conv_1_to_nhwc_int8: int8[1x4x4x2] qint8(s=0.0168051, zp=10) = Transpose(%x_int8) {perm=[0,2,3,1]}  # conv_1_to_nhwc
  %conv_1_int8: int8[1x4x4x3] qint8(s=0.0113034, zp=-128) = QConv(%conv_1_to_nhwc_int8, %conv_1_w_int8, %conv_1_bias_int32) {act_max=127, act_min=-128, dilations=[1,1], group=1, kernel_shape=[3,3], layout='NHWC', multiplier=[1258013521,1308621603,1590982927], pads=[1,1,1,1], shift=[-7,-6,-7], strides=[1,1], w_scale=[0.00307832402,0.00640432118,0.00389309088], weight_bits=8, x_scale=0.0168050565, x_zero_point=10, y_scale=0.0113033932, y_zero_point=-128}  # conv_1
  %p_int8: int8[1x1x1x3] qint8(s=0.00201591, zp=-128) = QGlobalAveragePool(%conv_1_int8) {act_max=127, act_min=-128, layout='NHWC', mode='requantize', multiplier=[1505143824], shift=[-1], x_scale=0.0113033932, x_zero_point=-128, y_scale=0.00201590802, y_zero_point=-128}  # globalaveragepool
  %flatten_1_int8: int8[1x3] qint8(s=0.00201591, zp=-128) = Reshape(%p_int8) {allowzero=0, shape=[1,3]}  # flatten_1
  %y_int8: int8[1x2] qint8(s=0.00215101, zp=127) = QGemm(%flatten_1_int8, %gemm_w_int8, %gemm_bias_int32) {act_max=127, act_min=-128, multiplier=[2015885268,1391660352], shift=[-8,-8], w_scale=[0.00391262677,0.00270107016], weight_bits=8, x_scale=0.00201590802, x_zero_point=-128, y_scale=0.00215101358, y_zero_point=127}  # gemm
  %y: float32[1x2] = DequantizeLinear(%y_int8, %y_dq_scale, %y_dq_zp) {axis=1, block_size=0, output_dtype=0, precision=0, saturate=1}  # y_dequantize
"""


def test_quantize():
    """Static int8: Conv(+relu) -> QConv, GlobalAveragePool -> QGlobalAveragePool, the Reshape and the input Transpose on int8 data, Gemm -> QGemm, QuantizeLinear / DequantizeLinear at the edges."""
    g = small_cnn()
    PassManager(INT8_PREPARATION).run(g)
    options = PassOptions(quant=calibrated(g, seed=0))
    check_rewrite(g, ["quantize"], QUANTIZE_BEFORE, QUANTIZE_EXPECTED, options, numeric=False)
    assert [r["op"] for r in options.quant_record.layers] == ["QConv", "QGlobalAveragePool",
                                                            "QGemm"]


QUANTIZE_ELEMENTWISE_BEFORE = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  %a: float32[1x2x4x4] = Sigmoid(%x)  # sigmoid
  %s: float32[1x2x4x4] = Add(%x, %a)  # add
  %r: float32[1x2x4x4] = Relu(%s)  # relu
  %y: float32[1x4x4x4] = Concat(%r, %x) {axis=1}  # concat
"""
QUANTIZE_ELEMENTWISE_EXPECTED = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %x_scale: float32[scalar] #f4d4946b59
  const %x_zp: int8[scalar] #389ab0cd41
  const %y_dq_scale: float32[scalar] #196409fbae
  const %y_dq_zp: int8[scalar] #29d6943eeb
  %x_int8: int8[1x2x4x4] qint8(s=0.0189373, zp=15) = QuantizeLinear(%x, %x_scale, %x_zp) {axis=1, block_size=0, output_dtype=3, precision=0, saturate=1}  # x_quantize
  %a_int8: int8[1x2x4x4] qint8(s=0.00350049, zp=-128) = QLookup(%x_int8) {function='Sigmoid', table=[-110,-110,-110,-109,-109,-108,-108,-108,-107,-107,-107,-106,-106,-106,-105,-105,-104,-104,-104,-103,-103,-102,-102,-101,-101,-100,-100,-99,-99,-98,-98,-97,-97,-96,-96,-95,-95,-94,-94,-93,-92,-92,-91,-91,-90,-89,-89,-88,-87,-87,-86,-85,-85,-84,-83,-83,-82,-81,-80,-80,-79,-78,-77,-77,-76,-75,-74,-73,-72,-72,-71,-70,-69,-68,-67,-66,-65,-64,-63,-62,-62,-61,-60,-59,-58,-57,-56,-55,-53,-52,-51,-50,-49,-48,-47,-46,-45,-44,-43,-41,-40,-39,-38,-37,-36,-34,-33,-32,-31,-30,-28,-27,-26,-25,-23,-22,-21,-20,-18,-17,-16,-14,-13,-12,-11,-9,-8,-7,-5,-4,-3,-1,0,1,3,4,5,7,8,9,11,12,13,15,16,18,19,20,22,23,24,26,27,28,30,31,32,34,35,36,38,39,40,42,43,44,45,47,48,49,51,52,53,54,56,57,58,59,61,62,63,64,65,66,68,69,70,71,72,73,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,99,100,101,102,103,104,105,105,106,107,108,109,109,110,111,112,112,113,114,114,115,116,116,117,118,118,119,120,120,121,122,122,123,123,124,124,125,125,126,127,127], x_scale=0.0189372599, x_zero_point=15, y_scale=0.00350048975, y_zero_point=-128}  # sigmoid
  %s_int8: int8[1x2x4x4] qint8(s=0.0118057, zp=-128) = QAdd(%x_int8, %a_int8) {a_multiplier=1073741824, a_scale=0.0189372599, a_shift=0, a_zero_point=15, act_max=127, act_min=-128, b_multiplier=1587820949, b_scale=0.00350048975, b_shift=-3, b_zero_point=-128, left_shift=20, multiplier=1722359435, shift=-18, y_scale=0.0118057402, y_zero_point=-128}  # add
  %r_requant: int8[1x2x4x4] qint8(s=0.0224377, zp=-7) = QRequantize(%s_int8) {act_max=127, act_min=-128, multiplier=[1129909846], shift=[0], x_scale=0.0118057402, x_zero_point=-128, y_scale=0.0224377494, y_zero_point=-7}  # r_requant
  %x_requant: int8[1x2x4x4] qint8(s=0.0224377, zp=-7) = QRequantize(%x_int8) {act_max=127, act_min=-128, multiplier=[1812456999], shift=[0], x_scale=0.0189372599, x_zero_point=15, y_scale=0.0224377494, y_zero_point=-7}  # x_requant
  %y_int8: int8[1x4x4x4] qint8(s=0.0224377, zp=-7) = Concat(%r_requant, %x_requant) {axis=1}  # concat
  %y: float32[1x4x4x4] = DequantizeLinear(%y_int8, %y_dq_scale, %y_dq_zp) {axis=1, block_size=0, output_dtype=0, precision=0, saturate=1}  # y_dequantize
"""


def test_quantize_elementwise():
    """Static int8: Sigmoid -> QLookup, Add -> QAdd with the Relu folded into its clamp, Concat with QRequantize for inputs at other scales."""
    g = add_lookup_concat()
    options = PassOptions(quant=calibrated(g, seed=1))
    check_rewrite(g, ["quantize"], QUANTIZE_ELEMENTWISE_BEFORE, QUANTIZE_ELEMENTWISE_EXPECTED,
                  options, numeric=False)


QUANTIZE_DYNAMIC_BEFORE = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %b: float32[3] #f4eac3fc78
  const %fb: float32[2] #85bce363f1
  const %fc: float32[2x3] #5262b45b8e
  const %w: float32[3x2x3x3] #11248de1c3
  %conv_1_to_nhwc: float32[1x4x4x2] = Transpose(%x) {perm=[0,2,3,1]}  # conv_1_to_nhwc
  %conv_1: float32[1x4x4x3] = Conv(%conv_1_to_nhwc, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='relu', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NHWC', pads=[1,1,1,1], strides=[1,1]}  # conv_1
  %p: float32[1x1x1x3] = GlobalAveragePool(%conv_1) {layout='NHWC'}  # globalaveragepool
  %flatten_1: float32[1x3] = Reshape(%p) {allowzero=0, shape=[1,3]}  # flatten_1
  %y: float32[1x2] = Gemm(%flatten_1, %fc, %fb) {act_alpha=0, act_beta=0, act_slope=[], activation='none', alpha=1, beta=1, input_pool='none', transA=0, transB=1}  # gemm
"""
QUANTIZE_DYNAMIC_EXPECTED = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%gemm_1)
  const %b: float32[3] #f4eac3fc78
  const %gemm_bias: float32[2] #85bce363f1
  const %gemm_w_int8: int8[2x3] #4dacc97308
  const %w: float32[3x2x3x3] #11248de1c3
  %conv_1_to_nhwc: float32[1x4x4x2] = Transpose(%x) {perm=[0,2,3,1]}  # conv_1_to_nhwc
  %conv_1: float32[1x4x4x3] = Conv(%conv_1_to_nhwc, %w, %b) {act_alpha=0, act_beta=0, act_slope=[], activation='relu', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NHWC', pads=[1,1,1,1], strides=[1,1]}  # conv_1
  %p: float32[1x1x1x3] = GlobalAveragePool(%conv_1) {layout='NHWC'}  # globalaveragepool
  %flatten_1: float32[1x3] = Reshape(%p) {allowzero=0, shape=[1,3]}  # flatten_1
  %gemm_1: float32[1x2] = DynamicQuantGemm(%flatten_1, %gemm_w_int8, %gemm_bias) {act_alpha=0, act_beta=0, activation='none', w_scale=[0.00391262677,0.00270107016]}  # gemm_1
"""


def test_quantize_dynamic():
    """Dynamic int8: only the Gemm becomes DynamicQuantGemm; no calibration."""
    g = small_cnn()
    PassManager(INT8_PREPARATION).run(g)
    options = PassOptions(quant=QuantOptions(None, (), "dynamic"))
    check_rewrite(g, ["quantize"], QUANTIZE_DYNAMIC_BEFORE, QUANTIZE_DYNAMIC_EXPECTED, options,
                  numeric=False)


IMPORT_QDQ_BEFORE = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %bq: int32[3] #accd8b1af3
  const %bs: float32[3] #470c5a4221
  const %bz: int32[3] #bbd9fc71c6
  const %wq: int8[3x2x3x3] #7782a2225a
  const %ws: float32[3] #7ae81f7019
  const %wz: int8[3] #c065f2436f
  const %xs: float32[scalar] #e1db808979
  const %xz: int8[scalar] #3e55806078
  const %ys: float32[scalar] #14da021c0e
  const %yz: int8[scalar] #22ca85b2ea
  %xq: int8[1x2x4x4] = QuantizeLinear(%x, %xs, %xz) {axis=1, block_size=0, output_dtype=3, precision=0, saturate=1}  # quantizelinear
  %wd: float32[3x2x3x3] = DequantizeLinear(%wq, %ws, %wz) {axis=0, block_size=0, output_dtype=0, precision=0, saturate=1}  # dequantizelinear
  %bd: float32[3] = DequantizeLinear(%bq, %bs, %bz) {axis=0, block_size=0, output_dtype=0, precision=0, saturate=1}  # dequantizelinear_1
  %xd: float32[1x2x4x4] = DequantizeLinear(%xq, %xs, %xz) {axis=1, block_size=0, output_dtype=0, precision=0, saturate=1}  # dequantizelinear_2
  %c: float32[1x3x4x4] = Conv(%xd, %wd, %bd) {act_alpha=0, act_beta=0, act_slope=[], activation='none', auto_pad='NOTSET', dilations=[1,1], group=1, input_layout='', kernel_shape=[3,3], layout='NCHW', pads=[1,1,1,1], strides=[1,1]}  # conv
  %r: float32[1x3x4x4] = Relu(%c)  # relu
  %yq: int8[1x3x4x4] = QuantizeLinear(%r, %ys, %yz) {axis=1, block_size=0, output_dtype=3, precision=0, saturate=1}  # quantizelinear_1
  %y: float32[1x3x4x4] = DequantizeLinear(%yq, %ys, %yz) {axis=1, block_size=0, output_dtype=0, precision=0, saturate=1}  # dequantizelinear_3
"""
IMPORT_QDQ_EXPECTED = """\
graph t(
    %x: float32[1x2x4x4],
) -> (%y)
  const %conv_b: int32[3] #accd8b1af3
  const %conv_w: int8[3x2x3x3] #7782a2225a
  const %xs: float32[scalar] #e1db808979
  const %xz: int8[scalar] #3e55806078
  const %ys: float32[scalar] #14da021c0e
  const %yz: int8[scalar] #22ca85b2ea
  %xq: int8[1x2x4x4] = QuantizeLinear(%x, %xs, %xz) {axis=1, block_size=0, output_dtype=3, precision=0, saturate=1}  # quantizelinear
  %conv_1: int8[1x3x4x4] qint8(s=0.05, zp=-10) = QConv(%xq, %conv_w, %conv_b) {act_max=127, act_min=-10, dilations=[1,1], group=1, kernel_shape=[3,3], layout='NCHW', multiplier=[1099511562,1099511562,1099511562], pads=[1,1,1,1], shift=[-7,-7,-7], strides=[1,1], w_scale=[0.00999999978,0.00999999978,0.00999999978], weight_bits=8, x_scale=0.0199999996, x_zero_point=3, y_scale=0.0500000007, y_zero_point=-10}  # conv_1
  %y: float32[1x3x4x4] = DequantizeLinear(%conv_1, %ys, %yz) {axis=1, block_size=0, output_dtype=0, precision=0, saturate=1}  # dequantizelinear_3
"""


def test_import_qdq():
    """DQ -> Conv -> Relu -> Q becomes QConv with the model's scales, the Relu as its clamp."""
    check_rewrite(qdq_conv(), ["import-qdq"], IMPORT_QDQ_BEFORE, IMPORT_QDQ_EXPECTED,
                  numeric=False)
