"""`edgec bench` and tools/bench.py: the documented JSON keys on a tiny model (fp32 and int8,
side by side with onnxruntime), and the markdown section replaced in place. No timing
assertions: the numbers are whatever this machine gives."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from helpers import REPO, make_model
from onnx import helper


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((16, 3, 3, 3)).astype(np.float32),
             "b": rng.standard_normal(16).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    model = make_model(nodes, {"x": ("float32", (1, 3, 8, 8))}, {"y": ("float32", None)}, inits,
                       opset=13)
    path = tmp_path_factory.mktemp("bench") / "tiny.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("target", ["x86_64-fp32", "x86_64-int8"])
def test_bench_json_has_the_documented_keys(tiny_model, target):
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "bench", str(tiny_model), "-t",
                           target, "--runs", "6", "--json"], capture_output=True, text=True,
                          cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("latency_ms", "runs", "macs", "gmacs", "onnxruntime_ms", "onnxruntime_form",
                "ratio", "compile_s", "litert"):
        assert key in row, key
    assert row["runs"] == 6 and row["macs"] == 8 * 8 * 16 * 27 and row["latency_ms"] > 0
    if importlib.util.find_spec("ai_edge_litert") is None:
        assert row["litert_ms"] is None and "n/a" in row["litert"]
    else:  # edgec's .tflite of the same model, timed in LiteRT beside the C
        assert row["litert_ms"] > 0 and row["litert"] == f"{row['litert_ms']:.4f}"
    if target == "x86_64-fp32":
        assert row["max_rel_err_vs_onnxruntime"] <= 1e-4
        assert row["onnxruntime_form"] == "fp32"
    else:
        assert set(row["onnxruntime_forms_ms"]) == {"QDQ", "QOperator"}


def test_bench_tool_keeps_other_sections(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_tool", REPO / "tools" / "bench.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# edgec benchmarks\n\n<!-- other:begin -->\nkeep me\n<!-- other:end -->\n")
    row = {"model": "m", "target": "x86_64-fp32", "precision": "fp32", "runs": 50,
           "macs": 10**6, "latency_ms": 1.0, "onnxruntime_ms": 2.0, "onnxruntime_form": "fp32",
           "ratio": 0.5, "litert": "n/a (no TFLite backend yet)", "gmacs": 1.0,
           "peak_share": 0.02, "compile_s": 0.1}
    machine = {"cpu": "cpu", "cores": 2, "flags": ["avx2"], "mhz": 1000.0}
    for _ in range(2):  # written twice: replaced, not appended
        section = tool.markdown([row], machine, {"peak_gmacs": 50.0, "clock_ghz": 3.1},
                                {"edgec": "0"}, 0.0025)
        tool.write_section(doc, section)
    text = doc.read_text()
    assert "keep me" in text and text.count(tool.BEGIN) == 1
    assert "| m | fp32 (x86_64-fp32) | 1.000 | 2.000 (fp32) | **0.50** |" in text


def test_bench_tool_states_the_avx2_int8_bound(tmp_path):
    """An x86_64-int8 row carries the least latency the measured AVX2 int8 ceiling allows;
    the table states it beside onnxruntime's latency, with the ratio."""
    spec = importlib.util.spec_from_file_location("bench_tool", REPO / "tools" / "bench.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    row = {"model": "m", "target": "x86_64-int8", "precision": "int8", "runs": 50,
           "macs": 300 * 10**6, "latency_ms": 4.5, "onnxruntime_ms": 3.0,
           "onnxruntime_form": "QDQ", "ratio": 1.5, "litert": "n/a", "gmacs": 66.7,
           "peak_share": 0.71, "avx2_bound_ms": 3.2, "compile_s": 1.0}
    machine = {"cpu": "cpu", "cores": 2, "flags": ["avx2", "avx512_vnni"], "mhz": 1000.0}
    peak = {"peak_gmacs": 50.0, "clock_ghz": 3.1, "int8_avx2_gmacs": 93.75}
    text = tool.markdown([row], machine, peak, {"edgec": "0"}, None)
    assert "AVX2 int8 ceiling (measured" in text and "93.8 GMAC/s" in text
    assert "m 3.200 ms vs 3.000 ms (1.07x)" in text
    assert "| m | int8 (x86_64-int8) | 4.500 | 3.000 (QDQ) | **1.50** |" in text
    assert "| 71% |" in text


def test_avx2_int8_probe_builds_and_reports_a_rate(tmp_path):
    """The vpmaddwd + vpaddd probe (inline assembly) builds and reports a rate in the result
    (no bound on its value: tests do not assert timings)."""
    from edgec.workbench.machine import FmaPeak, machine_info
    if not {"avx2", "fma"} <= set(machine_info()["flags"]):
        pytest.skip("host without AVX2/FMA")
    peak = FmaPeak(tmp_path)
    for _ in range(5):
        peak.probe(200_000)
    res = peak.result()
    assert res is not None
    assert res["int8_avx2_gmacs"] > 0 and np.isfinite(res["int8_avx2_gmacs"])


def test_bench_threads_times_the_same_library_at_n_and_at_one_thread(tiny_model):
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "bench", str(tiny_model), "-t",
                           "x86_64-fp32", "--runs", "6", "--threads", "2", "--json"],
                          capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["threads"] == 2 and row["latency_1thread_ms"] > 0 and row["speedup"] > 0
    assert row["speedup"] == pytest.approx(row["latency_1thread_ms"] / row["latency_ms"],
                                           rel=0.1)  # latencies are rounded to 0.1 us
    assert row["max_rel_err_vs_onnxruntime"] <= 1e-4  # the threaded outputs still agree


def test_bench_external_weights_reports_the_peak_resident_weights(zoo_dir):
    """--weights external --partitions K: the row has the weights file's size and the peak of
    its resident pages in one run (fresh process) with K partitions and with one; with one
    partition the whole file is touched, with K the peak is smaller."""
    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "bench",
                           str(zoo_dir / "mobilenetv2.onnx"), "-t", "x86_64-int8", "--runs", "3",
                           "--no-compare", "--weights", "external", "--partitions", "4",
                           "--json"], capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["weights"] == "external" and row["partitions"] == 4 and row["latency_ms"] > 0
    size, peak = row["weights_file_bytes"], row["weights_rss_peak_bytes"]
    assert row["weights_rss_peak_bytes_1partition"] >= 0.9 * size
    assert 0 < peak <= 0.4 * size and row["weights_rss_share"] == pytest.approx(peak / size,
                                                                                abs=1e-3)
