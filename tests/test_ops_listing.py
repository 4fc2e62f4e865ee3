"""`edgec ops`: per op, its C kernels (ISA families), the int8 op it becomes and that op's C
kernels, the TFLite builtins and the CoreML mapping, read from the back-ends' registries
(codegen/coverage.py), never from a hand-written table."""

from __future__ import annotations

import json

from edgec.codegen.c.kernel import _CANDIDATES
from edgec.codegen.coreml.registry import LOWERINGS
from edgec.codegen.coverage import tflite_builtins
from edgec.codegen.tflite.lower import TABLE

from edgec import cli


def _listing(capsys, *flags) -> str:
    assert cli.main(["ops", *flags]) == 0
    return capsys.readouterr().out


def test_json_keeps_old_keys_and_adds_coverage(capsys):
    rows = {r["name"]: r for r in json.loads(_listing(capsys, "--json"))}
    conv = rows["Conv"]
    assert {"name", "summary", "fold_only", "int8", "dtypes"} <= conv.keys()
    assert "CONV_2D" in conv["tflite"]
    assert conv["coreml"] is True
    assert conv["c"][0] == "all" and {"x86", "arm64"} <= set(conv["c"])
    qconv = conv["int8_ops"][0]
    assert qconv["op"] == "QConv"
    assert {"all", "x86", "arm64", "cortex-m"} <= set(qconv["c"])
    assert rows["Gemm"]["int8_ops"][0]["op"] == "QGemm"
    assert rows["Add"]["int8_ops"][0]["op"] == "QAdd"
    assert rows["Sigmoid"]["int8_ops"][0]["op"] == "QLookup"
    assert rows["Sigmoid"]["tflite"] == ["LOGISTIC"]
    assert rows["LSTM"]["tflite"] == [] and rows["LSTM"]["int8_ops"][0]["op"] == "QLSTM"
    assert rows["LSTM"]["coreml"] is False
    assert rows["And"]["int8_ops"] == []  # float-only: stays float
    assert rows["Reshape"]["int8_ops"][0]["op"] == "Reshape"  # runs on int8 data as itself
    assert rows["Shape"]["c"] == []  # folds only: no C kernel


def test_coverage_follows_the_registries(capsys):
    rows = {r["name"]: r for r in json.loads(_listing(capsys, "--json"))}
    for name, row in rows.items():
        assert row["coreml"] == (name in LOWERINGS)
        assert bool(row["tflite"]) <= (name in TABLE)
        for family in ("x86", "arm64", "cortex-m"):
            assert (family in row["c"]) == ((name, family) in _CANDIDATES)
    assert tflite_builtins("Clip") == ["RELU6", "RELU_N1_TO_1", "RELU"]  # Clip's branch only
    assert tflite_builtins("LeakyRelu") == ["LEAKY_RELU"]
    assert tflite_builtins("Reshape") == ["RESHAPE"]  # through its helper


def test_table_has_short_cells(capsys):
    lines = _listing(capsys).splitlines()
    assert lines[0].split()[:6] == ["op", "int8", "c", "int8", "op:", "c"]
    by_op = {line.split()[0]: line for line in lines[1:]}
    conv = by_op["Conv"]
    assert "all | x86 arm64" in conv and "QConv: all | x86 arm64 cortex-m" in conv
    assert "CONV_2D" in conv and " yes " in conv
    lstm = by_op["LSTM"].split("  ")
    cells = [c.strip() for c in lstm if c.strip()]
    assert cells[4:6] == ["-", "-"]  # no TFLite builtin, no CoreML mapping
