"""`edgec bench` on Cortex-M: instruction counts inside the run function are identical from
run to run, the cycle estimate follows the documented table, flash and RAM add up, and the
row names the core, the QEMU version and the compiler."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgec.compiler import CompileOptions, compile_model
from edgec.cortexm.cycles import COST, classify, estimate_cycles
from edgec.cortexm.measure import bench_cortexm, count_image, static_stack_bound
from edgec.cortexm.report import bench_lines
from edgec.cortexm.runner import build_for_result
from edgec.frontend.onnx import load_onnx
from edgec.interp import run_graph
from edgec.quant import random_calibration_inputs
from edgec.workbench.bench import bench_model
from edgec.workbench.compare import harness_io, random_inputs


@pytest.mark.parametrize("target", ["cortex-m4-int8", "cortex-m55-int8"])
def test_instruction_counts_repeat_exactly(zoo_dir, tmp_path, target):
    path = zoo_dir / "digits_cnn.onnx"
    calib = random_calibration_inputs(load_onnx(path), 4, seed=1)
    result = compile_model(path, CompileOptions(target=target, calib_samples=calib))
    image = build_for_result(result, tmp_path)
    feeds = random_inputs(result.source_graph, 0)
    ins, specs = harness_io(result.graph, feeds)
    first = count_image(image, result.target, result.report["prefix"], ins, specs)
    second = count_image(image, result.target, result.report["prefix"], ins, specs)
    assert first["count"].per_inference == second["count"].per_inference > 0
    assert first["count"].by_function == second["count"].by_function
    assert first["kinds"] == second["kinds"]
    assert sum(first["kinds"].values()) == first["count"].per_inference
    # the counted run computed the model: its output is the int8 reference's
    want = run_graph(result.graph, feeds)
    np.testing.assert_array_equal(first["outputs"][0].reshape(-1),
                                  np.asarray(want[next(iter(want))]).reshape(-1))
    # every layer function was counted, and the stack bound covers the measured use
    layers = [f for f in first["count"].by_function if f.startswith("layer_")]
    assert len(layers) == result.report["kernels"]
    static, _ = static_stack_bound(image.build_dir, result.report["prefix"])
    assert first["stack_bytes"] is not None and 0 < first["stack_bytes"] <= static + 256


def test_bench_row(zoo_dir, tmp_path):
    """The row `edgec bench -t cortex-m4-int8 --json` prints (bench_cortexm), and its text."""
    path = zoo_dir / "dscnn.onnx"
    calib = random_calibration_inputs(load_onnx(path), 4, seed=1)
    result = compile_model(path, CompileOptions(target="cortex-m4-int8", calib_samples=calib))
    row = bench_cortexm(result, random_inputs(result.source_graph, 0), tmp_path)
    json.dumps(row)  # JSON-ready
    assert row["core"] == "cortex-m4" and row["qemu_machine"] == "mps2-an386"
    assert "QEMU emulator version" in row["qemu_version"] and "arm-none-eabi-gcc" in row["compiler"]
    assert row["macs"] == 2_656_792
    assert row["instructions"] > row["macs"]  # portable C kernels: several per MAC
    assert row["cycles_est"] >= row["instructions"]  # every M4 class costs >= 1 cycle
    assert row["ram_bytes"] == row["arena_bytes"] + row["stack_bytes"]
    assert row["flash_bytes"] > row["weights_bytes"] > 0
    # DS-CNN int8's TFLM arena (DESIGN.md, measured with tflite-micro): 24,384 B
    assert row["ram_bytes"] <= 0.7 * 24_384
    assert row["fits_device"]
    text = "\n".join(bench_lines(row))
    assert "cortex-m4" in text and "per MAC" in text and "RAM" in text


def test_edgec_bench_routes_cortexm_to_the_counted_run(zoo_dir, tmp_path):
    """`edgec bench -t cortex-m4-int8` (workbench.bench.bench_model) takes the Cortex-M row
    (bench_cortexm), not the hosted harness, which does not build for bare metal."""
    row = bench_model(zoo_dir / "digits_cnn.onnx", "cortex-m4-int8", runs=1, workdir=tmp_path)
    assert row["cortexm"] and row["core"] == "cortex-m4"
    assert row["instructions"] > 0 and row["ram_bytes"] > 0


def test_cycle_table_classes():
    assert classify("smlad") == ("mul", 0)
    assert classify("ldrsb.w") == ("load", 0)
    assert classify("strb") == ("store", 0)
    assert classify("push/n5") == ("multi", 5)
    assert classify("bne.n") == ("branch", 0)
    assert classify("bl") == ("call", 0)
    assert classify("vmladava.s8/q") == ("vector", 0)
    assert classify("vldrb.s8/q") == ("vector_mem", 0)
    assert classify("vmla.f32") == ("fp_mac", 0)
    assert classify("vdiv.f32") == ("fp_div", 0)
    assert classify("sxtb16") == ("alu", 0)
    assert classify(".byte/hee") == ("vector", 0)  # undecoded, coprocessor space: Helium
    assert classify(".byte/hf0") == ("other", 0)  # undecoded LE/DLS/WLS/VCTP
    assert classify("ldc") == ("vector_mem", 0)  # Helium VLDR as QEMU 7.2 prints it
    cycles, by_class = estimate_cycles({"smlad": 10, "ldr": 4, "push/n3": 1}, "cortex-m4")
    assert by_class == {"mul": 10, "load": 4, "multi": 1}
    assert cycles == 10 * COST["cortex-m4"]["mul"] + 4 * COST["cortex-m4"]["load"] + (1 + 3)
