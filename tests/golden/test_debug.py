"""Per-layer debugging (edgec/workbench/debug.py): provenance through the passes, the dump
hook of the debug build, layout-corrected dumps against onnxruntime's own intermediate tensors, the first
divergent layer, int8 per-layer SNR, and the hook compiled out of normal builds."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import ZOO_DIR, compile_model_proto, have, make_model
from onnx import helper, shape_inference

from edgec.cli import main
from edgec.compiler import CompileOptions, write_output
from edgec.errors import ToolchainError
from edgec.workbench import toolchain
from edgec.workbench.debug import RECORD_HEADER, dump_layers, fp32_reference, read_dump
from edgec.workbench.per_layer import compare_to_source, first_divergent, verify_per_layer
from edgec.workbench.compare import compare

RTOL = 1e-4


def small_cnn() -> onnx.ModelProto:
    """Conv -> BatchNorm -> Relu -> MaxPool -> Conv(1x1) -> Relu -> GAP -> Flatten -> Gemm."""
    rng = np.random.default_rng(3)
    inits = {
        "w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3,
        "b1": rng.standard_normal(8).astype(np.float32) * 0.1,
        "gamma": rng.uniform(0.5, 1.5, 8).astype(np.float32),
        "beta": rng.standard_normal(8).astype(np.float32) * 0.1,
        "mean": rng.standard_normal(8).astype(np.float32) * 0.1,
        "var": rng.uniform(0.5, 1.5, 8).astype(np.float32),
        "w2": rng.standard_normal((6, 8, 1, 1)).astype(np.float32) * 0.3,
        "wfc": rng.standard_normal((6, 5)).astype(np.float32) * 0.3,
        "bfc": rng.standard_normal(5).astype(np.float32) * 0.1,
    }
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "gamma", "beta", "mean", "var"], ["bn1"],
                         name="bn1"),
        helper.make_node("Relu", ["bn1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "wfc", "bfc"], ["y"], name="fc"),
    ]
    return make_model(nodes, {"x": (np.float32, [1, 3, 8, 8])}, {"y": (np.float32, [1, 5])},
                      inits, opset=13)


def feeds() -> dict[str, np.ndarray]:
    """One seeded input."""
    return {"x": np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)}


def ort_intermediates(model: onnx.ModelProto, inputs: dict) -> dict[str, np.ndarray]:
    """Every tensor of `model` as onnxruntime computes it (all values exposed as outputs)."""
    import onnxruntime as ort

    inferred = shape_inference.infer_shapes(model)
    known = {o.name for o in inferred.graph.output}
    inferred.graph.output.extend(vi for vi in inferred.graph.value_info if vi.name not in known)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(inferred.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, inputs)))


@pytest.fixture(scope="module")
def fp32_dumps():
    """The small CNN compiled for generic-fp32, its debug build run once."""
    result = compile_model_proto(small_cnn())
    with tempfile.TemporaryDirectory(prefix="edgec-test-debug-") as tmp:
        entries, dumps, outputs = dump_layers(result, feeds(), Path(tmp))
    return result, entries, dumps, outputs


def test_provenance_names_fused_layers_and_their_layout(fp32_dumps):
    _, entries, _, _ = fp32_dumps
    conv1 = next(e for e in entries if e.source == "r1")
    assert conv1.op == "Conv" and conv1.source_nodes == ["conv1", "bn1", "relu1"]
    assert conv1.layer_name == "conv1"
    assert conv1.shape == (1, 8, 8, 8) and conv1.perm == (0, 3, 1, 2)
    pool = next(e for e in entries if e.op == "MaxPool")
    assert pool.source == "p1" and pool.perm == (0, 3, 1, 2)
    assert next(e for e in entries if e.op == "Gemm").source == "y"


@pytest.mark.parametrize("variant", ["gcc", "clang-sanitize"])
def test_layout_corrected_dumps_match_onnxruntime_tensors(fp32_dumps, variant):
    """Every dumped tensor with a source, mapped back to NCHW, equals onnxruntime's tensor
    of that name; the debug build itself is strict C99 on gcc and clang (+ASan/UBSan)."""
    result, entries, dumps, outputs = fp32_dumps
    if variant != "gcc":
        if not have("clang"):
            pytest.skip("clang is not installed")
        with tempfile.TemporaryDirectory(prefix="edgec-test-debug-") as tmp:
            entries, dumps, outputs = dump_layers(result, feeds(), Path(tmp), sanitize=True,
                                                  cc="clang")
    ort = ort_intermediates(small_cnn(), feeds())
    compared = 0
    for e in entries:
        if e.source is None:
            continue
        got = e.to_source_layout(dumps[e.index])
        c = compare(e.source, got, ort[e.source], RTOL)
        assert c.ok, f"{e.source}: max_rel_err {c.max_rel_err:.3g}"
        compared += 1
    assert compared == len(entries) == 4  # conv1+bn+relu, pool, conv2+relu, gap+gemm
    assert compare("y", outputs["y"], ort["y"], RTOL).ok


def test_first_divergent_layer_is_the_one_whose_weights_changed(fp32_dumps):
    result, entries, dumps, _ = fp32_dumps
    changed = result.source_graph.clone()
    w2 = changed.values["w2"]
    w2.data = (w2.data * 1.5).astype(np.float32)
    rows = compare_to_source(entries, dumps, fp32_reference(changed, feeds()), RTOL)
    first = first_divergent(rows)
    assert first is not None and first.entry.layer_name == "conv2"
    assert all(r.ok for r in rows[:rows.index(first)])
    unchanged = compare_to_source(entries, dumps, fp32_reference(result.source_graph, feeds()),
                                  RTOL)
    assert first_divergent(unchanged) is None


def test_read_dump_parses_records_and_ignores_a_truncated_tail(fp32_dumps, tmp_path):
    _, entries, dumps, _ = fp32_dumps
    e = entries[0]
    payload = np.ascontiguousarray(dumps[e.index]).tobytes()
    data = RECORD_HEADER.pack(e.index, e.layer, len(payload)) + payload
    (tmp_path / "d.bin").write_bytes(data + RECORD_HEADER.pack(1, 1, 4096) + b"\0" * 10)
    got = read_dump(tmp_path / "d.bin", entries)
    assert list(got) == [e.index] and np.array_equal(got[e.index], dumps[e.index])
    assert read_dump(tmp_path / "missing.bin", entries) == {}


def test_dump_hook_is_compiled_out_of_normal_builds(tmp_path):
    result = compile_model_proto(small_cnn())
    assert not any("debug" in name for name in result.files)
    model_c = next(text for name, text in result.files.items() if name == "test.c")
    assert "EDGEC_DUMP(" in model_c
    out = write_output(result.files, tmp_path / "out")
    exe = toolchain.build(out, result.target)
    if have("nm"):
        symbols = subprocess.run(["nm", str(exe)], capture_output=True, text=True,
                                 check=True).stdout
        assert "edgec_debug_dump" not in symbols
    # The hook is only referenced when EDGEC_DEBUG_DUMP is defined: without edgec_debug.c
    # such a build cannot link.
    with pytest.raises(ToolchainError):
        toolchain.build(out, result.target, extra_cflags=("-DEDGEC_DEBUG_DUMP",))


def test_verify_per_layer_cli_json_and_table(tmp_path, capsys):
    path = tmp_path / "small.onnx"
    onnx.save(small_cnn(), path)
    assert main(["verify", str(path), "--per-layer", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["ok"] and d["first_divergent_layer"] is None
    layers = {row["tensor"]: row for row in d["layers"]}
    assert layers["r1"]["layer"] == "conv1" and layers["r1"]["fused"] == ["bn1", "relu1"]
    assert layers["r1"]["shape"] == [1, 8, 8, 8] and all(r["ok"] for r in d["layers"])
    assert main(["verify", str(path), "--per-layer"]) == 0
    text = capsys.readouterr().out
    assert "every layer matches its reference" in text and "conv1 (+2 fused)" in text


def test_int8_per_layer_shows_every_layers_snr_against_fp32(capsys):
    """Acceptance: `edgec verify --per-layer` on an int8 target prints per-layer SNR against
    fp32 for every layer; the C is bit-exact with the int8 interpreter layer by layer."""
    model = ZOO_DIR / "dscnn.onnx"
    assert main(["verify", str(model), "-t", "generic-int8", "--per-layer", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    rows = d["layers"]
    assert d["ok"] and len(rows) >= 12
    assert all(r["compared"] and r["ok"] for r in rows)
    assert all(r["mismatched"] == 0 for r in rows if r["dtype"] == "int8")
    with_source = [r for r in rows if not r["tensor"].startswith("edgec:")]
    assert len(with_source) == len(rows)
    assert all(r["snr_vs_fp32_db"] is not None and r["snr_vs_fp32_db"] > 15 for r in rows)
    convs = [r for r in rows if r["op"] == "QConv"]
    assert len(convs) == 9 and all(r["layer"].endswith("/Conv") for r in convs)
    assert main(["verify", str(model), "-t", "generic-int8", "--per-layer"]) == 0
    text = capsys.readouterr().out
    assert "SNR dB vs fp32" in text and "QConv" in text


@pytest.mark.skipif(not (have("aarch64-linux-gnu-gcc") and have("qemu-aarch64")),
                    reason="needs gcc-aarch64-linux-gnu and qemu-user")
def test_per_layer_dumps_work_under_emulation(tmp_path):
    from edgec.targets import all_targets

    if "arm64-fp32" not in all_targets():
        pytest.skip("no arm64-fp32 target")
    path = tmp_path / "small.onnx"
    onnx.save(small_cnn(), path)
    res = verify_per_layer(path, CompileOptions(target="arm64-fp32"))
    assert res.ok and len(res.layers) == 4
    assert all(r.compared for r in res.layers if r.entry.source is not None)


def test_a_crash_mid_run_names_the_layer_it_stopped_in(tmp_path, monkeypatch, capsys):
    """When the debug build dies (here: simulated after its second layer's records), the
    layers dumped so far are compared and the first missing one is the divergence."""
    import edgec.workbench.toolchain as tc

    real_run = tc.run

    def crashing_run(exe, target, inputs, outputs, **kw):
        real_run(exe, target, inputs, outputs, **kw)
        dump = Path(exe).parent.parent / "edgec_dump.bin"
        data = dump.read_bytes()
        first = RECORD_HEADER.unpack_from(data, 0)[2] + RECORD_HEADER.size
        second = RECORD_HEADER.unpack_from(data, first)[2] + RECORD_HEADER.size
        dump.write_bytes(data[:first + second])
        raise ToolchainError("the compiled model exited with code -11: (simulated)")

    monkeypatch.setattr(tc, "run", crashing_run)
    path = tmp_path / "small.onnx"
    onnx.save(small_cnn(), path)
    assert main(["verify", str(path), "--per-layer", "--json"]) == 1
    d = json.loads(capsys.readouterr().out)
    assert "simulated" in d["crash"] and not d["ok"]
    assert [r["ok"] for r in d["layers"]] == [True, True, False, False]
    assert d["first_divergent_layer"] == "conv2"
