"""The generated C library: reproducible, strict-clean on gcc and clang, sanitizer-clean,
usable through its public header with a caller-supplied or static arena, and buildable with
the generated CMakeLists.txt and Makefile fragment."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import check_against_ort, compile_model_proto, have, make_model, ort_run
from onnx import helper

from edgec.compiler import write_output


def conv_net():
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3
    b1 = rng.standard_normal(8).astype(np.float32)
    w2 = rng.standard_normal((8, 1, 3, 3)).astype(np.float32) * 0.3
    wf = rng.standard_normal((10, 8 * 8 * 8)).astype(np.float32) * 0.05
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=8),
        helper.make_node("Add", ["c2", "r1"], ["s"]),
        helper.make_node("Flatten", ["s"], ["f"]),
        helper.make_node("Gemm", ["f", "wf"], ["y"], transB=1),
    ]
    return make_model(nodes, {"x": ("float32", (1, 3, 16, 16))}, {"y": ("float32", (1, 10))},
                      {"w1": w1, "b1": b1, "w2": w2, "wf": wf})


FEEDS = {"x": np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)}


@pytest.mark.parametrize("target", ["generic-fp32", "x86_64-fp32"])
def test_conv_net_matches_onnxruntime(target):
    check_against_ort(conv_net(), FEEDS, target=target)


@pytest.mark.skipif(not have("clang"), reason="clang not installed")
def test_clang_strict_and_sanitizers():
    check_against_ort(conv_net(), FEEDS, cc="clang", sanitize=True)


def test_gcc_sanitizers():
    check_against_ort(conv_net(), FEEDS, sanitize=True)


def test_output_is_byte_identical_across_runs():
    a = compile_model_proto(conv_net()).files
    b = compile_model_proto(conv_net()).files
    assert a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], f"{name} differs between two compiles"


def test_weights_are_const_and_no_malloc():
    files = compile_model_proto(conv_net()).files
    weights = files["test_weights.c"]
    assert "const float test_k" in weights
    for name, text in files.items():
        if name.endswith((".c", ".h")) and name != "edgec_harness.c":
            assert "malloc" not in text and "free(" not in text, name


API_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "test.h"
static unsigned char user_arena[TEST_ARENA_BYTES] __attribute__((aligned(TEST_ARENA_ALIGN)));
int main(void)
{
    float x[TEST_INPUT_0_SIZE];
    float y_user[TEST_OUTPUT_0_SIZE];
    float y_static[TEST_OUTPUT_0_SIZE];
    const void *ins[1];
    void *outs[1];
    FILE *f = fopen("x.bin", "rb");
    if (f == NULL || fread(x, sizeof x, 1, f) != 1) return 10;
    fclose(f);
    ins[0] = x;
    outs[0] = y_user;
    if (test_infer(user_arena, ins, outs) != TEST_OK) return 11;
    memcpy(test_input(NULL, 0), x, sizeof x);
    if (test_run(NULL) != TEST_OK) return 12;
    memcpy(y_static, test_output(NULL, 0), sizeof y_static);
    if (memcmp(y_user, y_static, sizeof y_user) != 0) return 13;
    if (test_run(user_arena + 1) != TEST_ERR_ARENA_ALIGN) return 14;
    if (test_input(NULL, 5) != NULL) return 15;
    if (strcmp(test_inputs[0].name, "x") != 0 || test_inputs[0].shape[1] != 3) return 16;
    f = fopen("y.bin", "wb");
    fwrite(y_user, sizeof y_user, 1, f);
    fclose(f);
    return 0;
}
"""


def test_public_api_with_user_and_static_arena(tmp_path):
    out = write_output(compile_model_proto(conv_net()).files, tmp_path / "lib")
    (tmp_path / "main.c").write_text(API_PROGRAM)
    FEEDS["x"].tofile(tmp_path / "x.bin")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{out}",
                    str(tmp_path / "main.c"), str(out / "test.c"), str(out / "test_weights.c"),
                    "-o", str(tmp_path / "app"), "-lm"], check=True)
    subprocess.run([str(tmp_path / "app")], cwd=tmp_path, check=True)
    y = np.fromfile(tmp_path / "y.bin", dtype=np.float32).reshape(1, 10)
    ref = ort_run(conv_net(), FEEDS)["y"]
    assert np.max(np.abs(y - ref)) <= 1e-4 * np.max(np.abs(ref))


@pytest.mark.skipif(not have("cmake"), reason="cmake not installed")
def test_cmake_and_make_fragment_build(tmp_path):
    out = write_output(compile_model_proto(conv_net(), target="x86_64-fp32").files,
                       tmp_path / "lib")
    build = tmp_path / "build"
    subprocess.run(["cmake", "-S", str(out), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
                   check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
    assert list(build.glob("libtest.a"))
    (tmp_path / "Makefile").write_text(
        f"include {out}/test.mk\n"
        "app.o: $(TEST_SRCS)\n"
        "\t$(CC) $(TEST_CFLAGS) -c $(TEST_SRCS)\n"
    )
    if shutil.which("make"):
        subprocess.run(["make", "-C", str(tmp_path), "app.o"], check=True, capture_output=True)
        assert (tmp_path / "test.o").exists()
