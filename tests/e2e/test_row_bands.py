"""--memory-budget through the generated C: fused chains (line buffers) give the unfused
build's bits on every C target for int8 and match onnxruntime for fp32; the zoo models fit
the issue's arena goals (issue 20, docs/memory.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from edgec.codegen.c.backend import CBackend
from edgec.passes.fuse_row_bands import fuse_chain, maximal_chains
from edgec.passes.memory_plan import check_no_overlap, plan_memory
from helpers import compile_model_proto, make_model, ort_run
from onnx import helper
from onnxruntime import InferenceSession
from row_band_models import mbv2_blocks

from edgec.compiler import CompileOptions, compile_model
from edgec.frontend.onnx import load_onnx
from edgec.interp import run_graph
from edgec.quant import random_calibration_inputs
from edgec.workbench.compare import compare
from edgec.workbench.verify import run_compiled

TFLM_INT8_MOBILENETV2 = 2_615_248  # docs/benchmarks.md, DESIGN.md section 6
TFLM_FP32_MOBILENETV2 = 9_960_064
BUDGET = 7600  # below the unfused arena of mbv2_blocks() on every target below


def run(result, feeds, sanitize=False, cc=None):
    """The generated C's outputs on one sample."""
    with tempfile.TemporaryDirectory(prefix="edgec-bands-") as tmp:
        return run_compiled(result, [feeds], Path(tmp), sanitize=sanitize, cc=cc)[0]


def needs(*tools):
    """Skip unless the cross tools are installed."""
    missing = [t for t in tools if shutil.which(t) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


ARM64 = needs("aarch64-linux-gnu-gcc", "qemu-aarch64")
CORTEXM = needs("arm-none-eabi-gcc", "qemu-system-arm")


VNNI = pytest.mark.skipif("avx512_vnni" not in Path("/proc/cpuinfo").read_text()
                          if Path("/proc/cpuinfo").exists() else True,
                          reason="the host has no avx512_vnni")


@pytest.mark.parametrize("target", [
    "generic-int8", "x86_64-int8", pytest.param("x86_64-int8-vnni", marks=VNNI),
    pytest.param("arm64-int8", marks=ARM64), pytest.param("arm64-int8-base", marks=ARM64),
    pytest.param("arm64-int8-i8mm", marks=ARM64), pytest.param("cortex-m0-int8", marks=CORTEXM),
    pytest.param("cortex-m4-int8", marks=CORTEXM),
    pytest.param("cortex-m55-int8", marks=CORTEXM)])
def test_int8_fused_is_bit_exact_with_unfused_and_interpreter(target):
    model, feed = mbv2_blocks()
    plain = compile_model_proto(model, target)
    fused = compile_model_proto(model, target, memory_budget=BUDGET)
    assert fused.report["row_bands"]["regions"], "nothing was fused"
    assert fused.report["arena_bytes"] < plain.report["arena_bytes"]
    got, want = run(fused, feed)["y"], run(plain, feed)["y"]
    assert np.array_equal(got, want)
    # the int8 interpreter on the unfused graph (numpy reference kernels, not the C)
    ref = run_graph(plain.graph, feed)["y"]
    assert np.array_equal(got, ref)


def test_int8_fused_under_sanitizers():
    model, feed = mbv2_blocks(size=19)
    fused = compile_model_proto(model, "generic-int8", memory_budget=1)
    plain = compile_model_proto(model, "generic-int8")
    assert np.array_equal(run(fused, feed, sanitize=True)["y"], run(plain, feed)["y"])


@pytest.mark.parametrize("target", [
    "generic-fp32", "x86_64-fp32", pytest.param("arm64-fp32", marks=ARM64),
    pytest.param("cortex-m4-fp32", marks=CORTEXM)])
def test_fp32_fused_matches_onnxruntime(target):
    model, feed = mbv2_blocks()
    fused = compile_model_proto(model, target, memory_budget=1)
    rb = fused.report["row_bands"]
    assert len(rb["regions"]) == 2 and rb["arena_after_bytes"] < rb["arena_before_bytes"]
    got = run(fused, feed)["y"]
    c = compare("y", got, ort_run(model, feed)["y"], 1e-4)
    assert c.ok, c.max_rel_err


def fuse_every_chain(model, target, band_rows=1, **opts):
    """(unfused CompileResult, CompileResult with every maximal chain fused): the pass's
    rewrite applied to all chains whatever the budget, then planned and generated."""
    plain = compile_model_proto(model, target, **opts)
    res = compile_model_proto(model, target, **opts)
    for chain in maximal_chains(res.graph):
        fuse_chain(res.graph, chain, band_rows=band_rows)
    res.graph.verify()
    res.plan = plan_memory(res.graph, res.target.alignment)
    check_no_overlap(res.plan)
    res.files.update(CBackend(res.target, "test").generate(res.graph, res.plan,
                                                           model_name="test"))
    return plain, res


def test_fp32_residual_chain_two_rows_per_band():
    """Two output rows per band (so the last band of an odd height has one) through chains
    that end in a Conv with a fused residual."""
    model, feed = mbv2_blocks(size=23)
    _, res = fuse_every_chain(model, "generic-fp32", band_rows=2)
    fused = [n for n in res.graph.nodes if n.op == "RowBands"]
    assert len(fused) == 2 and any(len(st["inputs"]) > 3 and st["inputs"][3] is not None
                                   for n in fused for st in n.attrs["stages"])
    c = compare("y", run(res, feed)["y"], ort_run(model, feed)["y"], 1e-4)
    assert c.ok, c.max_rel_err


def odd_chain(size, layers, seed=0):
    """(model, feed): 3 -> 8 channels, then `layers` of (kernel (kh, kw), stride, dilation,
    pads [t, l, b, r], group) on 8 channels, each with a ReLU."""
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], {}, "x"
    specs = [((3, 3), 1, 1, [1, 1, 1, 1], 1)] + list(layers)
    cin = 3
    for i, (k, s, d, pads, group) in enumerate(specs):
        w = rng.standard_normal((8, cin // group, *k)) / np.sqrt(cin // group * k[0] * k[1])
        inits[f"w{i}"] = w.astype(np.float32)
        inits[f"b{i}"] = (rng.standard_normal(8) * 0.1).astype(np.float32)
        nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"],
                                      kernel_shape=list(k), strides=[s, s], dilations=[d, d],
                                      pads=pads, group=group))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x, cin = f"r{i}", 8
    nodes[-1].output[0] = "y"
    ort = InferenceSession(make_model(nodes, {"x": (np.float32, [1, 3, size, size])},
                                      {"y": (np.float32, None)}, inits).SerializeToString())
    shape = ort.run(None, {"x": np.zeros((1, 3, size, size), np.float32)})[0].shape
    model = make_model(nodes, {"x": (np.float32, [1, 3, size, size])},
                       {"y": (np.float32, list(shape))}, inits)
    feed = {"x": rng.standard_normal((1, 3, size, size)).astype(np.float32)}
    return model, feed


ODD = {
    "dilated-asymmetric": [((3, 3), 1, 2, [2, 1, 1, 2], 8), ((1, 1), 1, 1, [0, 0, 0, 0], 1)],
    "stride3-nopad": [((3, 3), 3, 1, [0, 0, 0, 0], 1), ((3, 3), 1, 1, [1, 1, 1, 1], 8)],
    "tall-kernels": [((5, 1), 2, 1, [2, 0, 2, 0], 1), ((1, 3), 1, 1, [0, 1, 0, 1], 1),
                     ((3, 3), 2, 1, [0, 0, 2, 2], 4)],
}


@pytest.mark.parametrize("name", sorted(ODD))
@pytest.mark.parametrize("band_rows", [1, 3])
def test_odd_geometries_int8_bit_exact_fp32_within_tolerance(name, band_rows):
    model, feed = odd_chain(17, ODD[name])
    plain, fused = fuse_every_chain(model, "generic-int8", band_rows)
    assert any(n.op == "RowBands" for n in fused.graph.nodes)
    assert np.array_equal(run(fused, feed)["y"], run(plain, feed)["y"])
    _, fused32 = fuse_every_chain(model, "x86_64-fp32", band_rows)
    c = compare("y", run(fused32, feed)["y"], ort_run(model, feed)["y"], 1e-4)
    assert c.ok, c.max_rel_err


def _zoo_int8(zoo_dir, model, budget, target="generic-int8"):
    opts = CompileOptions(target=target, memory_budget=budget)
    plain = CompileOptions(target=target)
    g = load_onnx(zoo_dir / f"{model}.onnx")
    opts.calib_samples = plain.calib_samples = random_calibration_inputs(g, 4, seed=0)
    return compile_model(zoo_dir / f"{model}.onnx", plain), \
        compile_model(zoo_dir / f"{model}.onnx", opts)


@pytest.mark.parametrize("model,target", [
    ("dscnn", "generic-int8"), ("resnet8", "generic-int8"),
    pytest.param("dscnn", "cortex-m4-int8", marks=CORTEXM)])
def test_small_zoo_int8_below_current_arena_and_bit_exact(zoo_dir, model, target):
    plain, fused = _zoo_int8(zoo_dir, model, budget=1, target=target)
    assert fused.report["arena_bytes"] < plain.report["arena_bytes"]
    check_no_overlap(fused.plan)
    feeds = random_calibration_inputs(plain.source_graph, 1, seed=3)[0]
    got, want = run(fused, feeds), run(plain, feeds)
    for name in want:
        assert np.array_equal(got[name], want[name]), name


@pytest.mark.parametrize("model", ["dscnn", "resnet8"])
def test_small_zoo_fp32_below_current_arena(zoo_dir, model):
    plain = compile_model(zoo_dir / f"{model}.onnx", CompileOptions(target="generic-fp32"))
    fused = compile_model(zoo_dir / f"{model}.onnx",
                          CompileOptions(target="generic-fp32", memory_budget=1))
    assert fused.report["arena_bytes"] < plain.report["arena_bytes"]
    feeds = random_calibration_inputs(plain.source_graph, 1, seed=4)[0]
    got = run(fused, feeds)
    ref = ort_run(str(zoo_dir / f"{model}.onnx"), feeds)
    for name, r in ref.items():
        assert compare(name, got[name], np.asarray(r), 1e-4).ok, name


@pytest.mark.slow
@pytest.mark.parametrize("target", ["generic-int8", "x86_64-int8",
                                    pytest.param("arm64-int8", marks=ARM64)])
def test_mobilenetv2_int8_quarter_of_tflm_bit_exact(zoo_dir, target):
    budget = TFLM_INT8_MOBILENETV2 // 4  # 653,812 B
    plain, fused = _zoo_int8(zoo_dir, "mobilenetv2", budget=budget, target=target)
    rb = fused.report["row_bands"]
    assert fused.report["arena_bytes"] <= budget
    assert rb["budget_met"] and rb["extra_macs"] == 0
    check_no_overlap(fused.plan)
    feeds = random_calibration_inputs(plain.source_graph, 1, seed=5)[0]
    got, want = run(fused, feeds), run(plain, feeds)
    ref = run_graph(plain.graph, feeds)  # the int8 interpreter's numpy kernels
    for name in want:
        assert np.array_equal(got[name], want[name]), name
        assert np.array_equal(got[name], ref[name]), name


@pytest.mark.slow
def test_mobilenetv2_fp32_under_03_of_tflm(zoo_dir):
    budget = int(0.3 * TFLM_FP32_MOBILENETV2)
    fused = compile_model(zoo_dir / "mobilenetv2.onnx",
                          CompileOptions(target="x86_64-fp32", memory_budget=budget))
    assert fused.report["arena_bytes"] <= budget
    assert fused.report["row_bands"]["extra_macs"] == 0
    feeds = random_calibration_inputs(fused.source_graph, 1, seed=6)[0]
    got = run(fused, feeds)
    ref = ort_run(str(zoo_dir / "mobilenetv2.onnx"), feeds)
    for name, r in ref.items():
        assert compare(name, got[name], np.asarray(r), 1e-4).ok, name


@pytest.mark.parametrize("args,fragment", [
    (["-t", "generic-int8", "--memory-budget", "0"], "positive size"),
    (["-t", "generic-int8", "--memory-budget", "lots"], "--memory-budget"),
    (["-t", "tflite-int8", "--memory-budget", "1M"], "needs a C target"),
])
def test_bad_budget_is_one_line_exit_2(tmp_path, args, fragment):
    model, _ = mbv2_blocks(size=9)
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "compile", str(path), *args,
                           "-o", str(tmp_path / "out")], capture_output=True, text=True, check=False)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and fragment in lines[0], proc.stderr


def test_cli_budget_with_a_unit_and_the_report(tmp_path):
    model, _ = mbv2_blocks()
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "report", str(path), "-t",
                           "generic-int8", "--memory-budget", "8K"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"memory budget 8,192 B \(met\): arena 15,072 B unfused -> ([\d,]+) B; "
                  r"1 fused chain\(s\), 0 extra MACs", proc.stdout)
    assert m and int(m.group(1).replace(",", "")) <= 8192, proc.stdout


def test_per_layer_verify_skips_the_line_buffers(tmp_path):
    """`edgec verify --per-layer` compares each fused chain's output, not its line buffers
    (working memory whose contents no reference defines)."""
    model, _ = mbv2_blocks()
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "verify", str(path), "-t",
                           "generic-int8", "--memory-budget", "1", "--per-layer"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every layer matches its reference" in proc.stdout
    assert proc.stdout.count("RowBands") == 2


def test_int4_weights_in_fused_chains():
    """--weight-bits 4 inside fused chains: the same bits as the unfused int4 build, and
    report.json's weight_bits still lists every int4 layer once."""
    model, feed = mbv2_blocks()
    plain = compile_model_proto(model, "generic-int8", weight_bits=4)
    fused = compile_model_proto(model, "generic-int8", weight_bits=4, memory_budget=1)
    assert fused.report["row_bands"]["regions"]
    assert np.array_equal(run(fused, feed)["y"], run(plain, feed)["y"])
    want, got = plain.report["weight_bits"], fused.report["weight_bits"]
    assert sorted(r["node"] for r in got["int4_layers"]) == \
        sorted(r["node"] for r in want["int4_layers"])
    assert got["int4_bytes"] == want["int4_bytes"]


@pytest.mark.skipif(shutil.which("clang") is None, reason="needs clang")
@pytest.mark.parametrize("target", ["generic-int8", "x86_64-int8", "x86_64-fp32"])
def test_fused_c_is_clang_clean(target):
    """Band variants have inputs shorter than the kernel (a pad supplies the rest): their C
    must stay -Wall -Wextra -Werror clean on clang too (no always-false window tests)."""
    model, feed = mbv2_blocks()
    plain = compile_model_proto(model, target)
    fused = compile_model_proto(model, target, memory_budget=1)
    got, want = run(fused, feed, cc="clang")["y"], run(plain, feed)["y"]
    if target.endswith("int8"):
        assert np.array_equal(got, want)
    else:
        assert compare("y", got, want, 1e-5).ok
