"""Fixed-point requantisation: numpy definition vs hand-worked values vs the C header."""

import subprocess

import numpy as np
import pytest

from helpers import tflite_mbqm

from edgec import qmath
from edgec.codegen.c.backend import RUNTIME_DIR


def test_quantize_multiplier_round_trips():
    for real in [0.5, 0.25, 1.0, 1.5, 0.0078125, 3.0e-5, 0.72, 1e-9]:
        q, s = qmath.quantize_multiplier(real)
        if q:
            assert (1 << 30) <= q < (1 << 31)
            assert abs(q * 2.0 ** (s - 31) - real) <= real * 2 ** -30
    assert qmath.quantize_multiplier(0.0) == (0, 0)
    assert qmath.quantize_multiplier(1e-12) == (0, 0)


def test_hand_worked_rounding():
    q, s = qmath.quantize_multiplier(0.5)
    assert (q, s) == (1 << 30, 0)
    # shift 0: one rounding (the doubling high multiply), ties upwards: 1.5 -> 2, -1.5 -> -1.
    assert qmath.multiply_by_quantized_multiplier(3, q, s) == 2
    assert qmath.multiply_by_quantized_multiplier(-3, q, s) == -1
    q, s = qmath.quantize_multiplier(0.25)
    # TFLite's double rounding: 5 * 0.5 = 2.5 -> 3 (ties up), then 3 / 2 = 1.5 -> 2 (ties
    # away from zero), although 5 * 0.25 = 1.25; -6 * 0.5 = -3 exactly, then -1.5 -> -2.
    assert qmath.multiply_by_quantized_multiplier(5, q, s) == 2
    assert qmath.multiply_by_quantized_multiplier(-6, q, s) == -2
    assert qmath.multiply_by_quantized_multiplier(4, q, s) == 1
    q, s = qmath.quantize_multiplier(3.0)  # shift > 0: 7 * 3 = 21 exactly
    assert qmath.multiply_by_quantized_multiplier(7, q, s) == 21
    assert qmath.rounding_divide_by_pot(-5, 1) == -3 and qmath.rounding_divide_by_pot(5, 1) == 3


def test_double_rounding_is_tflites_formula():
    rng = np.random.default_rng(3)
    acc = rng.integers(-(1 << 24), 1 << 24, 4000)
    acc[:8] = [0, 1, -1, 5, -6, 3, -3, 1 << 23]
    for real in (0.0123, 0.5, 0.25, 1.75, 3.1e-4, 0.7):
        q, s = qmath.quantize_multiplier(real)
        y = qmath.multiply_by_quantized_multiplier(acc, q, s)
        want = [tflite_mbqm(int(x), q, s) for x in acc]
        assert y.tolist() == want
        exact = acc * (q * 2.0 ** (s - 31))  # within one of the exact product
        assert np.all(np.abs(y - exact) <= 1.0)


def test_requantize_close_to_real_multiplication():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(1 << 20), 1 << 20, 10000)
    real = 0.0123
    q, s = qmath.quantize_multiplier(real)
    y = qmath.multiply_by_quantized_multiplier(acc, q, s)
    assert np.max(np.abs(y - acc * real)) <= 0.5 + 1e-6 * np.max(np.abs(acc * real))


C_PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include "edgec_qmath.h"
int main(void)
{
    long x, m;
    int s;
    while (scanf("%ld %ld %d", &x, &m, &s) == 3) {
        printf("%d\n", (int)edgec_mbqm((int32_t)x, (int32_t)m, s));
    }
    return 0;
}
"""


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_c_header_is_bit_exact_with_numpy(tmp_path, cc):
    import shutil
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} missing")
    src = tmp_path / "t.c"
    src.write_text(C_PROGRAM)
    exe = tmp_path / "t"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                    "-fsanitize=undefined", "-fno-sanitize-recover=all", f"-I{RUNTIME_DIR}",
                    str(src), "-o", str(exe)], check=True)
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(3000):
        real = float(np.exp(rng.uniform(np.log(1e-6), np.log(4.0))))
        q, s = qmath.quantize_multiplier(real)
        limit = min(1 << 31, int((1 << 31) / max(real, 1.0)) - 1)  # the result fits int32
        x = int(rng.integers(-limit + 1, limit))
        rows.append((x, q, s))
    rows += [(qmath.INT32_MIN + 1, (1 << 31) - 1, 0), (-1, 1 << 30, -31), (1, 1 << 30, -31),
             (1 << 20, (1 << 31) - 1, 10)]
    text = "\n".join(f"{x} {q} {s}" for x, q, s in rows)
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
    got = np.array([int(v) for v in out.stdout.split()])
    want = np.array([int(qmath.multiply_by_quantized_multiplier(x, q, s)) for x, q, s in rows])
    assert np.array_equal(got, want)
