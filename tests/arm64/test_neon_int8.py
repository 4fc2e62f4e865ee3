"""arm64 int8 kernels (SMMLA, SDOT and ARMv8.0 NEON): bit-exact with edgec's int8 reference.

One model bundles many QConv/QGemm layers (pointwise with K tails, per-channel shifts,
depthwise with strides and padding, a 3-channel stem and other general convolutions through
im2col, fully connected) as separate outputs, so that one cross-compile and one qemu run per
target check them all against the int8 reference interpreter, exactly. The requantisation
arithmetic itself is checked lane by lane against edgec/qmath.py on edge cases.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from edgec.codegen.c.backend import RUNTIME_DIR
from helpers import compile_model_proto, have, make_model
from onnx import helper

from edgec import qmath
from edgec.errors import ToolchainError
from edgec.interp import run_graph
from edgec.workbench.verify import run_compiled

RNG = np.random.default_rng(11)
INT8_TARGETS = ("arm64-int8", "arm64-int8-i8mm", "arm64-int8-base")
FLAVOURS = {"arm64-int8": "dot", "arm64-int8-i8mm": "mmla", "arm64-int8-base": "mull"}


def _w(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


def layer_zoo():
    """(model, feeds): one input, a pointwise `pre` layer, then many int8 layers."""
    c = 20
    nodes = [helper.make_node("Conv", ["x", "w_pre"], ["pre_c"]),
             helper.make_node("Relu", ["pre_c"], ["pre"])]
    inits = {"w_pre": _w(c, 3, 1, 1)}
    outs = []

    def conv(name, src, cin, cout, k, group=1, act="Relu", scale=None, **attrs):
        w = _w(cout, cin // group, *k)
        if scale is not None:
            w *= scale.reshape(-1, 1, 1, 1).astype(np.float32)
        inits[f"{name}_w"], inits[f"{name}_b"] = w, _w(cout)
        out = name if act is None else f"{name}_c"
        nodes.append(helper.make_node("Conv", [src, f"{name}_w", f"{name}_b"], [out],
                                      group=group, kernel_shape=list(k), **attrs))
        if act == "Clip":
            inits[f"{name}_lo"], inits[f"{name}_hi"] = np.float32(0), np.float32(0.5)
            nodes.append(helper.make_node("Clip", [out, f"{name}_lo", f"{name}_hi"], [name]))
        elif act is not None:
            nodes.append(helper.make_node(act, [out], [name]))
        outs.append(name)

    conv("stem", "x", 3, 16, (3, 3), strides=[2, 2], pads=[1, 1, 1, 1])  # im2col, K = 27
    conv("pw_k20", "pre", c, 24, (1, 1))  # K tail of 4, two channel blocks
    conv("pw_k20_clip", "pre", c, 40, (1, 1), act="Clip")
    # K = 24 and K = 8: with SDOT the last 8 k are a half step reading the rows in place
    conv("pre24", "pre", c, 24, (1, 1))
    conv("pw_k24", "pre24", 24, 40, (1, 1), act="Clip")
    conv("pre8", "pre", c, 8, (1, 1))
    conv("pw_k8", "pre8", 8, 19, (1, 1), act=None)
    # channels whose weight scales are far apart: per-channel shifts (no shared shift)
    conv("pw_mixed", "pre", c, 7, (1, 1), act=None,
         scale=np.array([1, 1e-4, 3, 1, 2e-4, 1, 1]))
    conv("dw", "pre", c, c, (3, 3), group=c, pads=[1, 1, 1, 1])  # 16 + 4 channels
    conv("dw_s2", "pre", c, c, (3, 3), group=c, strides=[2, 2], pads=[0, 0, 1, 1])
    conv("dw_5x5", "pre", c, c, (5, 5), group=c, pads=[2, 2, 2, 2], act=None)
    # 3x3 depthwise over a multiple of 16 channels: the SDOT column kernel with the dot
    # product (stride 1 and 2 along the width, odd widths: every unrolled loop's remainder)
    conv("pre32", "pre", c, 32, (1, 1))
    conv("dw3", "pre32", 32, 32, (3, 3), group=32, pads=[1, 1, 1, 1], act="Clip")
    conv("dw3_s2", "pre32", 32, 32, (3, 3), group=32, strides=[2, 2], pads=[1, 1, 1, 1])
    conv("dw3_s12", "pre32", 32, 32, (3, 3), group=32, strides=[1, 2], pads=[0, 1, 1, 0],
         act=None)
    # a residual add of two tensors of one shape (NEON QAdd, 3900 elements: a scalar tail)
    conv("res", "pre", c, c, (1, 1), act=None)
    nodes.append(helper.make_node("Add", ["res", "pre"], ["add"]))
    outs.append("add")
    conv("k3", "pre", c, 18, (3, 3), pads=[1, 0, 1, 2], dilations=[1, 2])
    conv("k1_s2", "pre", c, 9, (1, 1), strides=[2, 2])  # strided 1x1: im2col
    nodes += [helper.make_node("GlobalAveragePool", ["pre"], ["gap"]),
              helper.make_node("Flatten", ["gap"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["fc"], transB=1)]
    inits["fc_w"], inits["fc_b"] = _w(19, c), _w(19)
    outs.append("fc")
    x_shape = (1, 3, 15, 13)
    model = make_model(nodes, {"x": (np.float32, x_shape)},
                       {name: (np.float32, None) for name in outs}, inits)
    calib = [{"x": RNG.standard_normal(x_shape).astype(np.float32)} for _ in range(4)]
    return model, calib, {"x": RNG.standard_normal(x_shape).astype(np.float32)}


@pytest.fixture(scope="module")
def zoo():
    """The layer zoo and its inputs (built once per test module)."""
    return layer_zoo()


def _check_exact(model, calib, feeds, target, **build):
    result = compile_model_proto(model, target, calib_samples=calib)
    with tempfile.TemporaryDirectory(prefix="edgec-arm64-") as tmp:
        got = run_compiled(result, [feeds], Path(tmp), **build)[0]
    want = run_graph(result.graph, feeds)
    for name, ref in want.items():
        assert np.array_equal(got[name], np.asarray(ref).reshape(got[name].shape)), \
            f"{target}: output {name} differs from the int8 reference"
    return result


@pytest.mark.parametrize("target", INT8_TARGETS)
def test_int8_layers_bit_exact(zoo, target):
    model, calib, feeds = zoo
    result = _check_exact(model, calib, feeds, target)
    text = result.files["test.c"]
    assert f"edgec_q8_{FLAVOURS[target]}_tile(" in text and "edgec_q8_dw_tap2(" in text
    assert ("edgec_q8_dw3_out(" in text) == (target != "arm64-int8-base")
    assert "vaddq_s32(edgec_q8_mbqm(" in text  # the NEON QAdd
    assert ("edgec_q8_dot_tile8(" in text) == (target == "arm64-int8")
    assert "_rq_shift" in text  # the per-channel shift layer
    assert '#include "edgec_neon_q8.h"' in text


def test_int8_layers_bit_exact_with_ubsan_and_clang(zoo):
    model, calib, feeds = zoo
    _check_exact(model, calib, feeds, "arm64-int8", sanitize=True)
    if have("clang"):
        for target in INT8_TARGETS:
            _check_exact(model, calib, feeds, target, cc="clang --target=aarch64-linux-gnu")


def test_base_build_has_no_dot_product_instructions(zoo, tmp_path):
    """The -base build runs on a Cortex-A53 (ARMv8.0: SDOT raises SIGILL there) and its
    code holds no SDOT; the arm64-int8 build does, and faults on that core."""
    from edgec.workbench import toolchain
    from edgec.compiler import write_output
    from edgec.targets import get_target

    model, calib, feeds = zoo
    _check_exact(model, calib, feeds, "arm64-int8-base")  # runner: qemu -cpu cortex-a53
    assert get_target("arm64-int8-base").runner[-1] == "cortex-a53"
    exes = {}
    for target in INT8_TARGETS:
        result = compile_model_proto(model, target, calib_samples=calib)
        exes[target] = toolchain.build(write_output(result.files, tmp_path / target),
                                       result.target)
        dis = subprocess.run(["aarch64-linux-gnu-objdump", "-d", str(exes[target])],
                             capture_output=True, text=True, check=True).stdout
        has_sdot = any("\tsdot\t" in line for line in dis.splitlines())
        has_smmla = any("\tsmmla\t" in line for line in dis.splitlines())
        assert has_sdot == (target != "arm64-int8-base"), target
        assert has_smmla == (target == "arm64-int8-i8mm"), target
    result = compile_model_proto(model, "arm64-int8", calib_samples=calib)
    g = result.graph
    ins = [feeds["x"].astype(np.float32)]
    specs = [(v.shape, v.dtype.np) for v in g.outputs]
    a53 = get_target("arm64-int8-base")
    with pytest.raises(ToolchainError):  # SIGILL: the dot product needs ARMv8.2
        toolchain.run(exes["arm64-int8"], a53, ins, specs)


REQUANT_PROGRAM = r"""
#include <stdio.h>
#include "edgec_neon_q8.h"

/* One lane through a mode: requantise, add the zero point, clamp (lane 5 of 16). */
static int requant(long acc, long mult, long shift, long zp, long lo, long hi, int mode)
{
    const int32_t m[4] = {(int32_t)mult, (int32_t)mult, (int32_t)mult, (int32_t)mult};
    const edgec_q8_rq rq = {NULL, m, NULL};
    const int32x4_t q = edgec_q8_mbqm(vdupq_n_s32((int32_t)acc),
                                      edgec_q8_rq_load(rq, 0, mode, (int32_t)shift), mode);
    const int8x16_t y = edgec_q8_narrow8(q, q, q, q, vdupq_n_s16((int16_t)zp), (int32_t)lo,
                                         (int32_t)hi);
    return (int)vgetq_lane_s8(y, 5);
}

int main(void)
{
    long acc, mult, shift, zp, lo, hi;
    while (scanf("%ld %ld %ld %ld %ld %ld", &acc, &mult, &shift, &zp, &lo, &hi) == 6) {
        const int mode = shift < 0 ? EDGEC_Q8_RQ_RSHR
                                   : (shift == 0 ? EDGEC_Q8_RQ_RDMULH : EDGEC_Q8_RQ_WIDE);
        const int dmulh = shift <= 0 ? EDGEC_Q8_RQ_DMULH : EDGEC_Q8_RQ_WIDE;
        printf("%d %d %d\n", requant(acc, mult, shift, zp, lo, hi, mode),
               requant(acc, mult, shift, zp, lo, hi, dmulh),
               requant(acc, mult, shift, zp, lo, hi, EDGEC_Q8_RQ_WIDE));
    }
    return 0;
}
"""


def test_vector_requantisation_matches_qmath(tmp_path):
    """Lane arithmetic of edgec_neon_q8.h == qmath.requantize on ties (of both roundings),
    extremes and every shift, in the layer's own mode (RSHR / RDMULH / WIDE), in DMULH (shifts
    <= 0) and in the WIDE mode; bounds of -128/127 (the clamp folded away) are among them."""
    rows = []
    for shift in range(-31, 31):
        total = 31 - shift
        for mult in (1 << 30, (1 << 31) - 1, 1518500250, 1 << 30 | 1):
            accs = [0, 1, -1, 2**31 - 1, -2**31, 12345, -12345]
            if total <= 32:  # exact ties: acc * mult == odd multiple of 2^(total - 1)
                tie = (1 << (total - 1)) // np.gcd(mult, 1 << (total - 1))
                accs += [tie, -tie, 3 * tie, -3 * tie]
            if shift < 0 and mult == 1 << 30:  # ties of the second rounding: h = acc / 2
                half = 1 << (-shift - 1)
                accs += [2 * half, -2 * half, 6 * half, -6 * half]
            accs += [int(v) for v in RNG.integers(-2**31, 2**31, 6)]
            for acc in (a for a in accs if -2**31 <= a < 2**31):  # int32 accumulators
                zp = int(RNG.integers(-128, 128))
                lo, hi = sorted(int(v) for v in RNG.integers(-128, 128, 2))
                if RNG.random() < 0.25:
                    lo, hi = -128, 127
                rows.append((acc, mult, shift, zp, lo, hi))
    data = np.array(rows, dtype=np.int64)
    want = qmath.requantize(data[:, 0], data[:, 1], data[:, 2], 0, -2**62, 2**62)
    want = np.clip(want + data[:, 3], data[:, 4], data[:, 5])
    src = tmp_path / "rq.c"
    src.write_text(REQUANT_PROGRAM)
    exe = tmp_path / "rq"
    subprocess.run(["aarch64-linux-gnu-gcc", "-std=c99", "-Wall", "-Wextra", "-Werror",
                    "-pedantic", "-O2", f"-I{RUNTIME_DIR}", str(src), "-o", str(exe), "-static"],
                   check=True)
    text = "\n".join(" ".join(map(str, r)) for r in rows) + "\n"
    out = subprocess.run(["qemu-aarch64", "-cpu", "cortex-a53", str(exe)], input=text,
                         capture_output=True, text=True, check=True).stdout
    got = np.array([int(v) for v in out.split()], dtype=np.int64).reshape(-1, 3)
    bad = np.nonzero((got != want[:, None]).any(axis=1))[0]
    assert bad.size == 0, f"{bad.size} mismatches, first {rows[bad[0]]}: " \
                          f"{got[bad[0]]} != {want[bad[0]]}"


def test_quantize_linear_neon_matches_reference():
    """Vector QuantizeLinear (int8 and uint8): ties to even, NaN, infinities, saturation."""
    scale = np.float32(0.05)
    x = RNG.standard_normal(67).astype(np.float32) * 4
    x[:8] = np.array([np.nan, np.inf, -np.inf, 1e9, -1e9, 0.025, 0.075, -0.025], np.float32)
    x[8:12] = (np.arange(4, dtype=np.float32) + 0.5) * scale  # exact ties
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z8"], ["q8"]),
             helper.make_node("QuantizeLinear", ["x", "s", "zu8"], ["qu8"])]
    inits = {"s": scale, "z8": np.int8(-3), "zu8": np.uint8(131)}
    model = make_model(nodes, {"x": (np.float32, (67,))},
                       {"q8": (np.int8, None), "qu8": (np.uint8, None)}, inits, opset=13)
    result = compile_model_proto(model, "arm64-fp32")
    assert "vrndnq_f32" in result.files["test.c"]
    with tempfile.TemporaryDirectory(prefix="edgec-arm64-") as tmp:
        got = run_compiled(result, [{"x": x}], Path(tmp))[0]
    want = run_graph(result.graph, {"x": x})
    for name in ("q8", "qu8"):
        assert np.array_equal(got[name], want[name]), name
