"""One-line errors of the Cortex-M targets: a model larger than the board's memory, a missing
emulator, --per-layer."""

from __future__ import annotations

import shutil
import subprocess
import sys

import onnx
import pytest
from onnx import TensorProto, helper

from edgec.cortexm import runner
from edgec.cortexm.boards import BOARDS
from edgec.errors import TargetError


def big_activation(path, n=150_000):
    """A Relu on 150,000 floats: a 600 KB input in the arena, over mps3-an547's 512 KiB DTCM."""
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "big",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_model_larger_than_the_board_is_one_line(tmp_path):
    big_activation(tmp_path / "big.onnx")
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "verify", str(tmp_path / "big.onnx"),
                           "-t", "cortex-m55-int8"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("edgec: error: the model does not fit QEMU mps3-an547's memory "
                               "(region RAM overflowed by "), lines[0]


def test_missing_qemu_names_the_package(monkeypatch):
    monkeypatch.setattr(runner.shutil, "which", lambda name: None)
    with pytest.raises(TargetError, match=r"'qemu-system-arm' is not installed.*apt-get install "
                                          r"qemu-system-arm"):
        runner.qemu_command(BOARDS["cortex-m4"], "image.elf")
    assert shutil.which is not None


def test_per_layer_is_refused_in_one_line(zoo_dir):
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "verify",
                           str(zoo_dir / "digits_cnn.onnx"), "-t", "cortex-m4-int8",
                           "--per-layer"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "edgec: error: --per-layer needs a hosted build and cortex-m4-int8 runs bare metal; "
        "run it with -t generic-int8 (or generic-fp32), whose portable kernels the Cortex-M "
        "targets use today")
