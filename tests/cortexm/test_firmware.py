"""The example firmware `edgec compile -t cortex-m…` writes (firmware/: toolchain file,
CMakeLists.txt, start-up code, linker script, main) builds with CMake and runs in
qemu-system-arm, giving the int8 reference's bits; the library is freestanding (no malloc,
no printf) and keeps its weights in flash and its arena in the section the firmware chose."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from edgec.compiler import CompileOptions, compile_model, write_output
from edgec.cortexm.boards import board_for
from edgec.cortexm.runner import qemu_command
from edgec.frontend.onnx import load_onnx
from edgec.interp import run_graph
from edgec.quant import random_calibration_inputs
from edgec.workbench.compare import harness_io, random_inputs

FORBIDDEN = ("malloc", "calloc", "realloc", "free", "printf", "fprintf", "sprintf", "puts",
             "fopen", "_sbrk")


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake (apt-get install cmake)")
@pytest.mark.parametrize("target", ["cortex-m4-int8", "cortex-m55-int8"])
def test_example_firmware_builds_and_runs(zoo_dir, tmp_path, target):
    path = zoo_dir / "digits_cnn.onnx"
    calib = random_calibration_inputs(load_onnx(path), 4, seed=2)
    result = compile_model(path, CompileOptions(target=target, calib_samples=calib))
    out = write_output(result.files, tmp_path / "out")
    build = tmp_path / "build"
    for cmd in (["cmake", "-S", str(out / "firmware"), "-B", str(build),
                 f"-DCMAKE_TOOLCHAIN_FILE={out / 'firmware' / 'arm-none-eabi.cmake'}"],
                ["cmake", "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    feeds = random_inputs(result.source_graph, 4)
    ins, specs = harness_io(result.graph, feeds)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ins[0].tofile(run_dir / "in0.bin")
    proc = subprocess.run(qemu_command(board_for(result.target), build / "firmware.elf"),
                          cwd=run_dir, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = np.fromfile(run_dir / "out0.bin", dtype=specs[0][1])
    want = np.asarray(next(iter(run_graph(result.graph, feeds).values()))).reshape(-1)
    np.testing.assert_array_equal(got, want)  # logits: the int8 reference's bits
    # freestanding library: nothing from the heap or stdio
    nm = shutil.which("arm-none-eabi-nm")
    objects = [str(p) for p in build.rglob("*.obj") if "digits_cnn" in p.name]
    assert objects
    undefined = subprocess.run([nm, "-u", *objects], capture_output=True, text=True,
                               check=True).stdout.split()
    assert not set(undefined) & set(FORBIDDEN), sorted(set(undefined) & set(FORBIDDEN))
    # weights in flash (.rodata), the arena in .edgec_arena
    sections = subprocess.run([nm.replace("-nm", "-objdump"), "-t", str(build / "firmware.elf")],
                              capture_output=True, text=True, check=True).stdout
    assert any(".edgec_arena" in line and "digits_cnn_static_arena" in line
               for line in sections.splitlines())
    weights = [line for line in sections.splitlines()
               if re.search(r"\bdigits_cnn_(k\d+|l\d+_\w+)$", line)]
    assert weights and all(" .rodata" in line for line in weights), weights[:3]
