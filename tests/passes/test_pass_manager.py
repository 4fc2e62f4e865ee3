"""Pass manager: registration, pipelines, --verify-each, --dump-ir, --disable-pass, errors."""

import numpy as np
import pytest
from helpers import make_model
from onnx import helper

from edgec.cli import main
from edgec.errors import EdgecError
from edgec.frontend.onnx import import_model
from edgec.passes import PassFailure, PassManager, all_passes, register_pass
from edgec.targets import all_targets


def tiny_model():
    w = np.ones((4, 3, 1, 1), np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    return make_model(nodes, {"x": ("float32", (1, 3, 4, 4))}, {"y": ("float32", (1, 4, 4, 4))},
                      {"w": w})


def test_every_pipeline_names_registered_passes():
    known = all_passes()
    for t in all_targets().values():
        for name in t.pipeline:
            assert name in known, f"{t.name}: unknown pass {name}"


def test_duplicate_pass_name_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register_pass("canonicalize")(lambda g: False)


def test_failing_pass_is_named_with_the_passes_before_it():
    @register_pass("test-explodes")
    def explodes(g):
        raise RuntimeError("boom")

    g = import_model(tiny_model())
    with pytest.raises(PassFailure) as err:
        PassManager(["canonicalize", "fuse-activation", "test-explodes"]).run(g)
    msg = str(err.value)
    assert "pass 'test-explodes' failed" in msg and "canonicalize, fuse-activation" in msg


def test_unknown_disabled_pass_is_an_error():
    g = import_model(tiny_model())
    with pytest.raises(EdgecError, match="unknown pass 'no-such-pass'"):
        PassManager(["canonicalize"], disabled={"no-such-pass"}).run(g)


def test_cli_dump_ir_verify_each_and_disable_pass(tmp_path, capsys):
    model = tmp_path / "m.onnx"
    model.write_bytes(tiny_model().SerializeToString())
    dump = tmp_path / "ir"
    rc = main(["compile", str(model), "-o", str(tmp_path / "out"), "--verify-each",
               "--dump-ir", str(dump), "--disable-pass", "fuse-activation"])
    assert rc == 0
    files = sorted(p.name for p in dump.iterdir())
    assert files[0] == "00-input.ir" and any("layout-nhwc" in f for f in files)
    assert not any("fuse-activation" in f for f in files)
    last = (dump / files[-1]).read_text()
    assert "Relu(" in last  # activation fusion was disabled
    rc = main(["compile", str(model), "-o", str(tmp_path / "out2"), "--disable-pass", "bogus"])
    assert rc == 2
    assert "unknown pass 'bogus'" in capsys.readouterr().err


def test_json_output_of_compile_targets_and_ops(tmp_path, capsys):
    import json

    model = tmp_path / "m.onnx"
    model.write_bytes(tiny_model().SerializeToString())
    assert main(["compile", str(model), "-o", str(tmp_path / "o"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # the stem conv reads the NCHW input; its NHWC output is transposed back for the caller
    assert report["kernels"] == 2 and report["ops"] == {"Conv": 1, "Transpose": 1}
    assert main(["targets", "--json"]) == 0
    names = {t["name"] for t in json.loads(capsys.readouterr().out)}
    assert {"generic-fp32", "x86_64-int8", "arm64-int8"} <= names
    assert main(["ops", "--json"]) == 0
    ops = {o["name"]: o for o in json.loads(capsys.readouterr().out)}
    assert ops["Shape"]["fold_only"] and ops["Relu"]["int8"] == "same-as-input"
