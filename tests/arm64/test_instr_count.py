"""The QEMU TCG instruction counter: deterministic counts, per-layer attribution, bench JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import ZOO_DIR, compile_model_proto, make_model

from edgec.errors import TargetError
from edgec.workbench.instr_count import count_model, function_ranges, instruction_summary


@pytest.fixture(scope="module")
def plugin():
    """The counting plugin (built on first use; skipped when its header cannot be had)."""
    from edgec.workbench.instr_count import build_plugin

    try:
        return build_plugin(log=lambda *_: None)
    except TargetError as e:
        pytest.skip(f"QEMU plugin unavailable: {e}")


def _tiny_model():
    from onnx import helper

    rng = np.random.default_rng(5)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["c2"]),
             helper.make_node("Sigmoid", ["c2"], ["y"])]
    inits = {"w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
             "w2": rng.standard_normal((5, 8, 1, 1)).astype(np.float32)}
    model = make_model(nodes, {"x": (np.float32, (1, 3, 6, 7))}, {"y": (np.float32, None)},
                       inits)
    return model, {"x": rng.standard_normal((1, 3, 6, 7)).astype(np.float32)}


def test_counts_are_identical_across_runs_and_attributed_to_layers(plugin, tmp_path):
    model, feeds = _tiny_model()
    result = compile_model_proto(model, "arm64-fp32")
    first = count_model(result, feeds, tmp_path / "a")
    second = count_model(result, feeds, tmp_path / "b")  # a fresh build and run
    assert first == second
    assert first["instructions"] > first["macs"] * 0.05
    by_type = first["instructions_by_layer_type"]
    assert sum(t["instructions"] for t in by_type.values()) == first["instructions"]
    assert {"Conv general", "Conv pointwise"} <= set(by_type)
    # expf of the sigmoid runs in libm but counts for the layer that called it
    assert by_type["Conv pointwise"]["instructions"] > 0


@pytest.mark.parametrize("model", ["resnet8"])
def test_i8mm_counts_are_identical_run_to_run(plugin, tmp_path, model):
    """arm64-int8-i8mm: the same inference counted on two fresh builds gives the same numbers,
    and the SMMLA build executes fewer instructions than the SDOT one."""
    from edgec.frontend.onnx import load_onnx
    from edgec.workbench.bench import bench_inputs, calibration_inputs, compile_for_bench

    path = ZOO_DIR / f"{model}.onnx"
    g = load_onnx(path, {})
    feeds, calib = bench_inputs(g), calibration_inputs(g, count=4)
    counts = {}
    for target in ("arm64-int8-i8mm", "arm64-int8"):
        result, _ = compile_for_bench(path, target, calib)
        # fresh builds in directories of different name lengths: the executable's path moves
        # the stack, which must not change what the layers execute
        counts[target] = count_model(result, feeds, tmp_path / f"{target}-a")
        again = count_model(result, feeds, tmp_path / f"{target}-again-b")
        assert again == counts[target], target
    assert counts["arm64-int8-i8mm"]["instructions"] < counts["arm64-int8"]["instructions"]


def test_function_ranges_name_run_layers_and_main(plugin, tmp_path):
    from edgec.workbench import toolchain
    from edgec.compiler import write_output

    model, _ = _tiny_model()
    result = compile_model_proto(model, "arm64-fp32")
    exe = toolchain.build(write_output(result.files, tmp_path / "c"), result.target)
    ranges = function_ranges(exe, result.target, result.report["prefix"])
    kinds = {f.kind for f in ranges}
    assert kinds == {"r", "l", "s"}
    assert all(f.end > f.start for f in ranges)


def test_count_with_env_i_from_the_shell_matches(plugin, tmp_path):
    """The plugin counts the same inference identically when run by hand under `env -i`."""
    from edgec.workbench import toolchain
    from edgec.compiler import write_output
    from edgec.workbench.instr_count import count_instructions

    model, feeds = _tiny_model()
    result = compile_model_proto(model, "arm64-fp32")
    exe = toolchain.build(write_output(result.files, tmp_path / "c"), result.target)
    ins = [feeds["x"]]
    specs = [(v.shape, v.dtype.np) for v in result.graph.outputs]
    one, _ = count_instructions(exe, result.target, result.report["prefix"], ins, specs)
    two, _ = count_instructions(exe, result.target, result.report["prefix"], ins, specs, runs=3)
    assert one.calls == 1 and two.calls == 3
    assert one.per_inference == two.per_inference  # every run executes the same instructions
    summary = instruction_summary(result, one)
    assert summary["instructions"] == one.per_inference


def test_bench_json_reports_instructions_on_arm64_int8(plugin):
    out = subprocess.run([sys.executable, "-m", "edgec.cli", "bench",
                          str(ZOO_DIR / "digits_cnn.onnx"), "-t", "arm64-int8", "--json",
                          "--runs", "2"], capture_output=True, text=True, check=True).stdout
    row = json.loads(out)
    assert row["target"] == "arm64-int8" and row["emulated"]
    assert row["instructions"] > 0 and row["macs"] > 0
    assert row["instructions_per_mac"] == pytest.approx(row["instructions"] / row["macs"],
                                                        rel=1e-3)
    conv = row["instructions_by_layer_type"]["QConv general"]
    assert conv["macs"] > 0 and conv["instructions_per_mac"] > 0
