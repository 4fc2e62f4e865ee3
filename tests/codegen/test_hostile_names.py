"""Model text never becomes code (issue #12): injection through names, the C token stream
under random and hostile names, reserved file names, any rank and empty tensors.

The property test compiles a two-node model whose every name is drawn by hypothesis and
compares the C token stream (comments and literals removed by tests/codegen/c_lexer.py) with
the stream of the same model under plain names: model text may only ever change comments and
string literals. Examples: 60 by default, EDGEC_FUZZ_EXAMPLES=N for more.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from c_lexer import c_tokens
from helpers import compile_model_proto, make_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper

from edgec.cli import main
from edgec.compiler import CompileOptions, compile_graph
from edgec.frontend.onnx import import_model
from edgec.limits import Limits
from edgec.targets import all_targets

# No `/` in it, so it is also a valid file name; it declares `system`, so if it ever became
# code it would compile cleanly (-Wall -Wextra -Werror -pedantic) and run before main.
PAYLOAD = ('*\\ int system(const char *); __attribute__((constructor)) static void p(void)'
           '{system("touch PWNED");}\\*')
PLAIN = ("x", "w", "mid", "y", "conv", "relu")
FUZZ_EXAMPLES = int(os.environ.get("EDGEC_FUZZ_EXAMPLES", "60"))


def conv_relu(names=PLAIN) -> onnx.ModelProto:
    """Conv (1x1, 2->3 channels, constant weights) then Relu, with the given six names."""
    x, w, mid, y, n1, n2 = names
    weights = np.arange(6, dtype=np.float32).reshape(3, 2, 1, 1) / 6 - 0.4
    return make_model([helper.make_node("Conv", [x, w], [mid], name=n1),
                       helper.make_node("Relu", [mid], [y], name=n2)],
                      {x: ("float32", (1, 2, 4, 4))}, {y: ("float32", (1, 3, 4, 4))},
                      {w: weights})


def run_cli(capfd, *args) -> tuple[int, str, str]:
    """`edgec ARGS` in this process; (exit code, stdout, stderr)."""
    capfd.readouterr()
    code = main([str(a) for a in args])
    out, err = capfd.readouterr()
    return code, out, err


def has_avx2() -> bool:
    """The host can run x86_64-fp32 (AVX2 + FMA) code."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


# ------------------------------------------------------------------------------ injection
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_payload_would_run_if_it_became_code(tmp_path):
    """The payload is live: pasted into C as code, it compiles warning-free and runs."""
    code = PAYLOAD[2:-2]  # without the `*\` `\*` that were to close and reopen a comment
    src = tmp_path / "live.c"
    src.write_text(f"{code}\nint main(void) {{ return 0; }}\n")
    subprocess.run(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", str(src),
                    "-o", str(tmp_path / "live")], check=True)
    subprocess.run([str(tmp_path / "live")], check=True, cwd=tmp_path)
    assert (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("target", ["generic-fp32", "x86_64-fp32", "generic-int8"])
def test_injection_through_names_stays_inert(capfd, tmp_path, monkeypatch, target):
    if target.startswith("x86_64") and not has_avx2():
        pytest.skip("the host has no AVX2/FMA")
    monkeypatch.chdir(tmp_path)  # where the harness runs: PWNED would appear here
    names = tuple(PAYLOAD + s for s in ("in", "w", "mid", "out", "", "2"))
    model = conv_relu(names)
    model.graph.name = PAYLOAD
    model.doc_string = PAYLOAD
    path = tmp_path / f"{PAYLOAD}.onnx"  # the file name too: it becomes the model comment
    onnx.save(model, str(path))
    code, out, err = run_cli(capfd, "verify", "-t", target, path)
    assert code == 0, err
    assert "PASS" in out
    assert not (tmp_path / "PWNED").exists()
    code, _, err = run_cli(capfd, "compile", "-t", target, path, "-o", tmp_path / "out")
    assert code == 0, err
    for f in (tmp_path / "out").iterdir():
        if f.suffix in (".c", ".h"):
            assert "system" not in c_tokens(f.read_text()), f.name


# ------------------------------------------------------------------------------ property
NASTY = ["*/", "/*", "//", "\\", "??/", "??=", "??", "?", '"', "'", "\n", "\r", "\0", "\t",
         "\\\n", "*\\", "\\*", "%s", "Ω", "\u2028", "\U0001F600", "e\u0301", "#include <x>",
         "\x1b[1m", "*", "/", " ", "a", "0"]
NAME = st.text(min_size=1, max_size=24) | st.lists(
    st.sampled_from(NASTY), min_size=1, max_size=8).map("".join)


@functools.lru_cache(maxsize=None)
def plain_tokens(target: str) -> dict[str, list[str]]:
    """Token streams of every generated C file of the plain-named model."""
    files = compile_model_proto(conv_relu(), target).files
    return {k: c_tokens(v) for k, v in files.items() if k.endswith((".c", ".h"))}


@settings(max_examples=FUZZ_EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(NAME, min_size=4, max_size=4, unique=True),
       nodes=st.lists(st.text(max_size=24) | NAME, min_size=2, max_size=2))
def test_names_change_only_comments_and_literals(values, nodes):
    names = (*values, *nodes)
    for target in ("generic-fp32", "generic-int8"):
        files = compile_model_proto(conv_relu(names), target).files
        want = plain_tokens(target)
        got = {k: c_tokens(v) for k, v in files.items() if k.endswith((".c", ".h"))}
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == want[k], f"{target} {k}: model names changed the C tokens"


@pytest.mark.parametrize("target", sorted(all_targets()))
def test_hostile_names_on_every_target(target):
    """Every target's kernels (packed weights, ISA templates) under the nastiest names."""
    names = (PAYLOAD, "*/\n#define x ??/\n", "\\\n\0\"'", "Ω/*//*/", PAYLOAD + "\r", "??=")
    want = plain_tokens(target)
    files = compile_model_proto(conv_relu(names), target).files
    got = {k: c_tokens(v) for k, v in files.items() if k.endswith((".c", ".h"))}
    assert got == want


# ------------------------------------------------------------------------------ file names
@pytest.mark.parametrize("stem", ["stdint", "string", "stddef", "edgec_harness", "math"])
def test_reserved_model_file_names_build(capfd, tmp_path, stem):
    path = tmp_path / f"{stem}.onnx"
    onnx.save(conv_relu(), str(path))
    code, out, err = run_cli(capfd, "verify", path)
    assert code == 0, err
    assert "PASS" in out
    code, _, err = run_cli(capfd, "compile", path, "-o", tmp_path / "out")
    assert code == 0, err
    names = {p.name for p in (tmp_path / "out").iterdir()}
    prefix = json.loads((tmp_path / "out" / "report.json").read_text())["prefix"]
    assert prefix in (f"{stem}_model", f"model_{stem}")
    assert {f"{prefix}.h", f"{prefix}.c", "edgec_harness.c"} <= names
    assert f"{stem}.h" not in names


def test_reserved_explicit_prefix_is_one_error_line(capfd, tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(conv_relu(), str(path))
    code, _, err = run_cli(capfd, "compile", path, "--prefix", "stdint", "-o", tmp_path / "out")
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgec: error: ")
    assert "--prefix" in lines[0] and "stdint" in lines[0]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ rank, empty
@pytest.mark.parametrize("rank", [8, 9, 12])
def test_high_rank_inputs_and_outputs(capfd, tmp_path, rank):
    """Broadcasting Add and Transpose at ranks the old shape[8] table could not hold."""
    shape = [1, 2, 1, 3, 1, 1, 2, 1, 1, 1, 1, 2][:rank]
    bshape = [1] * (rank - 1) + [shape[-1]]
    perm = list(range(rank))[::-1]
    model = make_model([helper.make_node("Add", ["a", "b"], ["s"]),
                        helper.make_node("Transpose", ["s"], ["t"], perm=perm)],
                       {"a": ("float32", shape), "b": ("float32", bshape)},
                       {"t": ("float32", shape[::-1]), "s": ("float32", shape)})
    path = tmp_path / f"rank{rank}.onnx"
    onnx.save(model, str(path))
    code, out, err = run_cli(capfd, "verify", path)  # within the default rank limit (32)
    assert code == 0, err
    assert "PASS" in out


TABLE_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "test.h"
static void show(const edgec_tensor_info *t)
{
    int d;
    printf("%lu:", (unsigned long)strlen(t->name));
    fwrite(t->name, 1, strlen(t->name), stdout);
    printf(" %d %d", t->dtype, t->rank);
    for (d = 0; d < t->rank; ++d) {
        printf(" %ld", (long)t->shape[d]);
    }
    printf("\n");
}
int main(void)
{
    show(&test_inputs[0]);
    show(&test_outputs[0]);
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_tensor_table_holds_exact_names_and_any_rank(tmp_path):
    """The public table, read by C: the names' exact UTF-8 bytes and all 10 dimensions."""
    shape = [1, 2, 1, 3, 1, 1, 2, 1, 1, 2]
    x_name, y_name = PAYLOAD + " Ω\t\"??/\n", "/y//*\u2028*/"
    model = make_model([helper.make_node("Relu", [x_name], [y_name], name=PAYLOAD)],
                       {x_name: ("float32", shape)}, {y_name: ("float32", shape)})
    limits = Limits(max_rank=16)
    g = import_model(model, name="test", limits=limits)
    result = compile_graph(g, CompileOptions(limits=limits), model_name="test")
    out = tmp_path / "lib"
    out.mkdir()
    for name, text in result.files.items():
        (out / name).write_text(text)
    (tmp_path / "main.c").write_text(TABLE_PROGRAM)
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{out}",
                    str(tmp_path / "main.c"), str(out / "test.c"), str(out / "test_weights.c"),
                    "-o", str(tmp_path / "app"), "-lm"], check=True)
    got = subprocess.run([str(tmp_path / "app")], check=True, capture_output=True).stdout
    dims = " ".join(map(str, shape)).encode()
    want = b""
    for name in (x_name, y_name):
        raw = name.encode()
        want += b"%d:%s 1 10 %s\n" % (len(raw), raw, dims)
    assert got == want


@pytest.mark.parametrize("target", ["generic-fp32", "generic-int8"])
@pytest.mark.parametrize("a_shape, b_shape", [((2, 0), (0, 3)), ((0, 4), (4, 3)),
                                              ((2, 4), (4, 0)), ((3, 2, 0), (0, 5))])
def test_zero_size_matmul(capfd, tmp_path, a_shape, b_shape, target):
    """K = 0 gives zeros, M or N = 0 an empty output; both build with -Werror (int8 too:
    calibration's exact products take empty operands)."""
    out_shape = (*a_shape[:-1], b_shape[-1])
    model = make_model([helper.make_node("MatMul", ["a", "b"], ["y"]),
                        helper.make_node("Relu", ["y"], ["z"])],
                       {"a": ("float32", a_shape), "b": ("float32", b_shape)},
                       {"z": ("float32", out_shape)})
    path = tmp_path / "zmm.onnx"
    onnx.save(model, str(path))
    code, out, err = run_cli(capfd, "verify", path, "-t", target)
    assert code == 0, err
    assert "PASS" in out


@pytest.mark.parametrize("b_const", [False, True])
def test_zero_size_gemm(capfd, tmp_path, b_const):
    """Gemm with K = 0: y = beta * C alone, warning-free (computed or constant B)."""
    inputs = {"a": ("float32", (2, 0)), "c": ("float32", (3,))}
    inits = {"b": np.zeros((0, 3), np.float32)} if b_const else {}
    if not b_const:
        inputs["b"] = ("float32", (0, 3))
    model = make_model([helper.make_node("Gemm", ["a", "b", "c"], ["y"], beta=0.5)],
                       inputs, {"y": ("float32", (2, 3))}, inits)
    path = tmp_path / "gemm0.onnx"
    onnx.save(model, str(path))
    code, out, err = run_cli(capfd, "verify", path)
    assert code == 0, err
    assert "PASS" in out
