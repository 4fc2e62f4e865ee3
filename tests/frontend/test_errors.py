"""User errors through the CLI: exactly one `edgec: error:` line on stderr, no traceback, exit
code 2, and no output directory left behind. Also: names from the model never reach the
generated C unsanitised.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import ZOO_DIR, check_against_ort, compile_model_proto, make_model
from onnx import helper

from edgec.cli import main
from edgec.compiler import write_output
from edgec.workbench.toolchain import build


def run_cli(capfd, *args: str) -> tuple[int, str, str]:
    """Run `edgec ARGS` in this process; (exit code, stdout, stderr) at the fd level."""
    capfd.readouterr()
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def assert_one_error_line(code: int, err: str, *fragments: str) -> str:
    """The CLI contract for user errors; returns the message."""
    lines = err.splitlines()
    assert code == 2, f"exit code {code}, stderr: {err!r}"
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert lines[0].startswith("edgec: error: "), lines[0]
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0], f"{frag!r} not in {lines[0]!r}"
    return lines[0]


def relu_add_model(shape=(1, 3, 4, 4), dims=None) -> onnx.ModelProto:
    """y = relu(a) + b; `dims` overrides the declared input shapes (for dynamic dims)."""
    decl = dims or shape
    return make_model(
        [helper.make_node("Relu", ["a"], ["r"], name="relu"),
         helper.make_node("Add", ["r", "b"], ["y"], name="add")],
        {"a": ("float32", decl), "b": ("float32", decl)}, {"y": ("float32", decl)})


@pytest.fixture
def model_file(tmp_path) -> Path:
    """A small valid model on disk."""
    path = tmp_path / "good.onnx"
    onnx.save(relu_add_model(), str(path))
    return path


def compile_fails(capfd, tmp_path, model, *extra: str, fragments=()) -> str:
    """`edgec compile MODEL -o OUT` fails with one error line and leaves no OUT behind."""
    out_dir = tmp_path / "out_dir"
    code, out, err = run_cli(capfd, "compile", model, "-o", out_dir, *extra)
    msg = assert_one_error_line(code, err, *fragments)
    assert out == "", f"a failed compile printed on stdout: {out!r}"
    assert not out_dir.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out_dir")]
    return msg


# ----------------------------------------------------------------------------- bad files
@pytest.mark.parametrize("source", ["small", "resnet8"])
def test_truncated_onnx_file(capfd, tmp_path, source):
    """An interrupted download: the protobuf ends in the middle of a field."""
    if source == "small":
        data = relu_add_model().SerializeToString()
    else:
        data = (ZOO_DIR / "resnet8.onnx").read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) * 7 // 10])
    compile_fails(capfd, tmp_path, path, fragments=("truncated.onnx",))


@pytest.mark.parametrize("kind", ["text", "random", "empty", "directory"])
def test_not_an_onnx_file(capfd, tmp_path, kind):
    path = tmp_path / "model.onnx"
    if kind == "text":
        path.write_text("this is not a model\nbut a text file\n")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    else:
        path.mkdir()
    compile_fails(capfd, tmp_path, path, fragments=("model.onnx",))


def test_missing_model_file(capfd, tmp_path):
    compile_fails(capfd, tmp_path, tmp_path / "nowhere.onnx", fragments=("does not exist",))


# ----------------------------------------------------------------------------- models
def test_unsupported_ops_listed_with_node_names(capfd, tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="fine"),
        helper.make_node("NonZero", ["r"], ["nz"], name="find_nonzero"),
        helper.make_node("FusedThing", ["r"], ["f1"], name="vendor_op_1", domain="com.vendor"),
        helper.make_node("FusedThing", ["f1"], ["f2"], name="vendor_op_2", domain="com.vendor"),
        helper.make_node("StringNormalizer", ["s"], ["s2"], name="strings"),
    ]
    graph = helper.make_graph(
        nodes, "unsupported",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("s", onnx.TensorProto.STRING, [2])],
        [helper.make_tensor_value_info("nz", onnx.TensorProto.INT64, [2, None]),
         helper.make_tensor_value_info("f2", onnx.TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("s2", onnx.TensorProto.STRING, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.vendor", 1)])
    path = tmp_path / "unsupported.onnx"
    onnx.save(model, str(path))
    msg = compile_fails(capfd, tmp_path, path)
    for fragment in ("NonZero", "'find_nonzero'", "com.vendor.FusedThing", "'vendor_op_1'",
                     "'vendor_op_2'", "StringNormalizer", "'strings'"):
        assert fragment in msg, f"{fragment} missing from {msg!r}"


def invalid_model(kind: str) -> onnx.ModelProto:
    """Models that exporters should never write but files on disk sometimes hold."""
    x = {"x": ("float32", (1, 1, 4, 4))}
    y = {"y": ("float32", (1, 1, 4, 4))}
    if kind == "missing-input":
        return make_model([helper.make_node("Conv", ["x"], ["y"], name="conv")], x, y)
    if kind == "cycle":
        return make_model([helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
                           helper.make_node("Relu", ["a"], ["b"], name="n2")], x, {"a": y["y"]})
    if kind == "no-outputs":
        return make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], x, {})
    if kind == "future-opset":
        return make_model([helper.make_node("Relu", ["x"], ["y"], name="r")], x, y, opset=99)
    if kind == "bad-broadcast":
        return make_model([helper.make_node("Add", ["x", "z"], ["y"], name="add_me")],
                          {**x, "z": ("float32", (3,))}, y)
    if kind == "bfloat16-input":  # onnx-graphsurgeon warns about it on stdout
        bf16 = onnx.TensorProto.BFLOAT16
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="r")], "g",
                                  [helper.make_tensor_value_info("x", bf16, [2])],
                                  [helper.make_tensor_value_info("y", bf16, [2])])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert kind == "unnamed-unsupported-dtype"
    half = onnx.TensorProto.FLOAT16
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", half, [2])],
                              [helper.make_tensor_value_info("y", half, [2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("kind,fragments", [
    ("missing-input", ("'conv'", "1 input", "invalid")),
    ("cycle", ("cycle",)),
    ("no-outputs", ("no graph outputs",)),
    ("future-opset", ("opset 99",)),
    ("bad-broadcast", ("Add node 'add_me'", "broadcast")),
    ("unnamed-unsupported-dtype", ("Relu node 'relu' (unnamed in the model) with output 'y'",
                                   "float16")),
    ("bfloat16-input", ("'x'", "bfloat16")),
])
def test_invalid_models(capfd, tmp_path, kind, fragments):
    path = tmp_path / f"{kind}.onnx"
    onnx.save(invalid_model(kind), str(path))
    compile_fails(capfd, tmp_path, path, fragments=fragments)


def test_verify_when_onnxruntime_cannot_run_the_model(capfd, tmp_path):
    """edgec converts opset-1 models; onnxruntime (the reference) no longer runs them."""
    path = tmp_path / "ancient.onnx"
    onnx.save(make_model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                         {"x": ("float32", (4,))}, {"y": ("float32", (4,))}, opset=1), str(path))
    code, _, err = run_cli(capfd, "verify", path)
    assert_one_error_line(code, err, "onnxruntime", "ancient.onnx")


def test_dynamic_shape_needs_input_shape(capfd, tmp_path):
    path = tmp_path / "dynamic.onnx"
    onnx.save(relu_add_model(dims=("N", 3, "H", 4)), str(path))
    msg = compile_fails(capfd, tmp_path, path, fragments=("--input-shape",))
    assert "a [N" in msg and "b [N" in msg, msg
    # One input fixed is not enough: the message names only the other one.
    msg = compile_fails(capfd, tmp_path, path, "--input-shape", "a=1x3x5x4")
    assert "b [N" in msg and "a [N" not in msg, msg
    code, _, err = run_cli(capfd, "compile", path, "-o", tmp_path / "ok",
                             "--input-shape", "a=1x3x5x4,b=1x3x5x4")
    assert code == 0 and err == "" and (tmp_path / "ok" / "report.json").exists()


@pytest.mark.parametrize("spec,fragments", [
    ("a=1x3x4", ("rank 3", "rank 4")),                 # wrong rank
    ("a=1x5x4x4", ("does not match", "1x3x4x4")),      # fixed dim differs
    ("c=1x3x4x4", ("'c'", "not a model input")),       # unknown name
    ("a=1xtwox4x4", ("bad --input-shape",)),            # malformed
    ("a", ("bad --input-shape",)),                      # no sizes
    ("a=1x0x4x4", ("bad --input-shape",)),              # zero size
    ("a=1x-3x4x4", ("bad --input-shape",)),             # negative size
])
def test_bad_input_shape(capfd, tmp_path, model_file, spec, fragments):
    compile_fails(capfd, tmp_path, model_file, "--input-shape", spec, fragments=fragments)


def test_unknown_target(capfd, tmp_path, model_file):
    compile_fails(capfd, tmp_path, model_file, "-t", "pdp11-fp32",
                  fragments=("pdp11-fp32", "generic-fp32"))


def test_usage_errors_are_one_line(capfd, tmp_path, model_file):
    code, _, err = run_cli(capfd, "compile", model_file)  # -o missing
    assert_one_error_line(code, err, "-o")
    code, _, err = run_cli(capfd, "frobnicate")
    assert_one_error_line(code, err)


# ----------------------------------------------------------------------------- --inputs data
def verify_fails(capfd, model_file, *extra: str, fragments=()) -> str:
    """`edgec verify MODEL ...` fails with one error line."""
    code, _, err = run_cli(capfd, "verify", model_file, *extra)
    return assert_one_error_line(code, err, *fragments)


def test_bad_inputs_data(capfd, tmp_path, model_file):
    good = {"a": np.ones((1, 3, 4, 4), np.float32), "b": np.ones((1, 3, 4, 4), np.float32)}
    verify_fails(capfd, model_file, "--inputs", tmp_path / "missing.npz",
                 fragments=("missing.npz", "does not exist"))
    np.savez(tmp_path / "shape.npz", a=good["a"], b=np.ones((1, 3, 5, 4), np.float32))
    verify_fails(capfd, model_file, "--inputs", tmp_path / "shape.npz",
                 fragments=("'b'", "1x3x5x4", "1x3x4x4"))
    np.savez(tmp_path / "key.npz", a=good["a"], c=good["b"])
    verify_fails(capfd, model_file, "--inputs", tmp_path / "key.npz", fragments=("b",))
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    verify_fails(capfd, model_file, "--inputs", tmp_path / "junk.npz", fragments=("junk.npz",))
    np.save(tmp_path / "one.npy", good["a"])
    verify_fails(capfd, model_file, "--inputs", tmp_path / "one.npy",
                 fragments=("2 inputs",))
    np.savez(tmp_path / "good.npz", **good)
    code, out, err = run_cli(capfd, "verify", model_file, "--inputs", tmp_path / "good.npz")
    assert code == 0 and "PASS" in out and err == ""


def test_errors_in_a_real_process(tmp_path):
    """The installed entry point: exit code 2, one line, no traceback, even from a fresh
    interpreter (where import-time warnings would show)."""
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07\x12garbage")
    for args in (["compile", str(path), "-o", str(tmp_path / "o")],
                 ["compile", str(path), "-o", str(tmp_path / "o"), "-t", "nope"]):
        proc = subprocess.run([sys.executable, "-m", "edgec.cli", *args], capture_output=True,
                              text=True, check=False)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith("edgec: error: ")
        assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- hostile names
MARK = "EVILNAME"
HOSTILE = [
    f"{MARK}0 */ int x = 1; /*",
    f'{MARK}1 "quoted" \\" \\',
    f"{MARK}2 line\n#include <stdio.h>\nbreak",
    f"#include \"{MARK}3.h\"",
    f"{MARK}4 Ωμέγα ✓ 名前 \u202e",
    f"{MARK}5 ??/ trigraph ??= //",
    "int", "return", "main", "static",
    f"{MARK}6 a b", f"{MARK}6_a_b",
]


def hostile_model() -> onnx.ModelProto:
    """A chain whose node and tensor names (inputs and outputs too) are all hostile."""
    t = HOSTILE  # tensor names
    nodes = [
        helper.make_node("Relu", [t[0]], [t[1]], name=t[2]),
        helper.make_node("Conv", [t[1], t[3]], [t[4]], name=t[5], pads=[1, 1, 1, 1]),
        helper.make_node("Add", [t[4], t[6]], [t[7]], name=t[8]),
        helper.make_node("Sigmoid", [t[7]], [t[9]], name=t[10]),
        helper.make_node("Mul", [t[9], t[0]], [t[11]], name=t[0]),
    ]
    rng = np.random.default_rng(5)
    inits = {t[3]: rng.standard_normal((2, 2, 3, 3)).astype(np.float32),
             t[6]: rng.standard_normal((1, 2, 1, 1)).astype(np.float32)}
    return make_model(nodes, {t[0]: ("float32", (1, 2, 4, 4))},
                      {t[11]: ("float32", (1, 2, 4, 4)), t[4]: ("float32", (1, 2, 4, 4))},
                      inits, name=f"{MARK} graph */")


def strip_comments_and_strings(code: str) -> str:
    """C source without comments, string and character literals (a small lexer)."""
    out, i, n = [], 0, len(code)
    while i < n:
        two = code[i:i + 2]
        if two == "/*":
            end = code.find("*/", i + 2)
            assert end >= 0, "unterminated comment"
            i = end + 2
            out.append(" ")
        elif two == "//":
            end = code.find("\n", i)
            i = n if end < 0 else end
        elif code[i] in "\"'":
            quote, i = code[i], i + 1
            while code[i] != quote:
                assert code[i] != "\n", "newline inside a literal"
                i += 2 if code[i] == "\\" else 1
            i += 1
            out.append('""')
        else:
            out.append(code[i])
            i += 1
    return "".join(out)


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_hostile_names_never_reach_the_c_unsanitised(tmp_path, cc):
    model = hostile_model()
    result = compile_model_proto(model, prefix='we"ird */ int')
    out = write_output(result.files, tmp_path / "out")
    build(out, result.target, cc=cc)  # -std=c99 -Wall -Wextra -Werror -pedantic
    for path in sorted(out.glob("*.[ch]")):
        text = path.read_text(encoding="utf-8")
        assert text.isascii(), f"{path.name} holds non-ASCII text"
        assert "??" not in text, f"{path.name} holds a trigraph start"
        code = strip_comments_and_strings(text)
        assert MARK not in code, f"{path.name}: a model name reached code outside comments"
        for line in code.splitlines():
            if line.lstrip().startswith("#include"):
                assert re.fullmatch(r'\s*#include\s+(<[a-z0-9_./]+>|"")\s*', line), line
    names = [p.name for p in out.iterdir()]
    assert all(re.fullmatch(r"[A-Za-z0-9_.]+", n) for n in names), names
    x = np.random.default_rng(6).standard_normal((1, 2, 4, 4)).astype(np.float32)
    if cc == "gcc":
        check_against_ort(model, {HOSTILE[0]: x}, sanitize=True)


def test_hostile_model_file_name(capfd, tmp_path):
    path = tmp_path / 'my "quoted*" int Ω ??= #include.onnx'
    onnx.save(relu_add_model(), str(path))
    code, _, err = run_cli(capfd, "compile", path, "-o", tmp_path / "out")
    assert code == 0, err
    out = tmp_path / "out"
    build(out, compile_model_proto(relu_add_model()).target)
    for p in out.iterdir():
        assert re.fullmatch(r"[A-Za-z0-9_.]+", p.name), p.name
        if p.suffix in (".c", ".h"):
            text = p.read_text()
            assert text.isascii() and "??" not in text
            assert "quoted*" not in strip_comments_and_strings(text)
