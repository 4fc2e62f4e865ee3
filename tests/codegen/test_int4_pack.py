"""Two int4 weights per byte (codegen/c/int4_pack.py): the byte layout every int4 kernel
reads, checked value by value against hand-worked bytes."""

from __future__ import annotations

import numpy as np
import pytest
from edgec.codegen.c.int4_pack import pack_int4, pack_rows, unpack_int4

from edgec.ops.int8_scheme import quantize_weights


def test_pairs_low_nibble_first():
    # half = 1 (portable C, TFLite's INT4 order): byte = w0 & 15 | (w1 & 15) << 4
    got = pack_int4(np.array([1, 2, -1, 7, -8, 0, -7, -3]), 1)
    assert got.tolist() == [0x21, 0x7F, 0x08, 0xD9]


def test_halves_of_a_group_share_the_bytes():
    # half = 4: byte j holds value j (low nibble) and value j + 4 (high nibble)
    got = pack_int4(np.array([0, 1, 2, 3, -1, -2, -3, -4]), 4)
    assert got.tolist() == [0xF0, 0xE1, 0xD2, 0xC3]


@pytest.mark.parametrize("half", [1, 8, 16, 32])
def test_round_trip_every_value(half):
    rng = np.random.default_rng(half)
    values = rng.integers(-8, 8, size=4 * 2 * half)
    packed = pack_int4(values, half)
    assert packed.dtype == np.uint8 and packed.size == values.size // 2
    assert unpack_int4(packed, half).tolist() == values.tolist()


def test_rows_start_on_a_byte():
    rows = np.array([[1, -1, 3], [-7, 7, 0]])
    packed, row_bytes = pack_rows(rows)
    assert row_bytes == 2
    assert packed.tolist() == [0xF1, 0x03, 0x79, 0x00]  # odd rows padded with a zero weight


def test_out_of_range_and_ragged_input_are_refused():
    with pytest.raises(ValueError, match=r"\[-8, 7\]"):
        pack_int4(np.array([8, 0]), 1)
    with pytest.raises(ValueError, match="groups of 4"):
        pack_int4(np.zeros(6), 2)


def test_int4_weights_are_symmetric_per_channel():
    w = np.array([[0.7, -0.35, 0.1], [-2.0, 1.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    q, scale = quantize_weights(w, axis=0, bits=4)
    assert scale.tolist() == pytest.approx([0.1, 2.0 / 7, 1.0])
    # 1.0 / float32(2 / 7) is 3.4999999 in float32, hence 3; an all-zero channel gets scale 1
    assert q.tolist() == [[7, -4, 1], [-7, 3, 0], [0, 0, 0]]
    assert q.dtype == np.int8 and np.abs(q).max() <= 7
