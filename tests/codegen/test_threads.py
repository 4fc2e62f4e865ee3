"""`--threads N` (codegen/c/threads.py, docs/os-runtime.md): the heavy layers of the generated
library split their output rows / pixel blocks over the pool, the outputs are bit-identical to
one thread (int8 and fp32) and int8 stays bit-exact with the reference interpreter, clean under
ThreadSanitizer; a build without --threads has no trace of it; firmware targets refuse it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from edgec.codegen.c.threads import WorkSplit, param_name, split_layer

from edgec.cli import main
from edgec.compiler import CompileOptions, compile_model, write_output
from edgec.errors import EdgecError
from edgec.frontend.onnx import load_onnx
from edgec.workbench import toolchain
from edgec.workbench.compare import compare_outputs, harness_io, random_inputs
from edgec.workbench.verify import run_compiled

pytestmark = pytest.mark.skipif(os.uname().sysname != "Linux", reason="POSIX threads runtime")


def compile_resnet8(zoo_dir, target: str, threads: int):
    path = zoo_dir / "resnet8.onnx"
    calib = None
    if "int8" in target:
        g = load_onnx(path)
        calib = [random_inputs(g, seed) for seed in range(1, 4)]
    return path, compile_model(path, CompileOptions(target=target, threads=threads,
                                                    calib_samples=calib))


def test_inactive_split_renders_nothing_and_small_layers_stay_whole():
    off = WorkSplit(False)
    assert (off.work(100), off.skip(), off.when(), off.items) == ("", "", "", 0)
    one = WorkSplit(True)
    assert (one.work(1), one.skip(), one.items) == ("", "", 0)  # one item: nothing to split
    on = WorkSplit(True)
    assert "edgec_work = 0" in on.work(56) and on.items == 56
    assert on.skip().endswith("continue;") and on.when().startswith("if (")


def test_split_layer_passes_every_pointer_through_the_task():
    params = ["const float *restrict x0", "float *restrict y0"]
    assert [param_name(p) for p in params] == ["x0", "y0"]
    before, body = split_layer("layer_001_Conv", params, "y0[0] = x0[0];", "Conv 'c'", 7, "M_LAYER")
    assert "static M_LAYER void layer_001_Conv_part(const float *restrict x0, float *restrict " \
           "y0, size_t work_begin, size_t work_end)" in before
    assert "layer_001_Conv_part(args->x0, args->y0, (size_t)begin, (size_t)end);" in before
    assert body.endswith("edgec_parallel_for(layer_001_Conv_task, &args, 7);")


def test_without_threads_no_pool_is_emitted_and_with_threads_the_convs_split(zoo_dir):
    _, one = compile_resnet8(zoo_dir, "x86_64-fp32", 1)
    assert not any("pool" in name for name in one.files) and "threads" not in one.report
    assert "edgec_parallel_for" not in one.files["resnet8.c"]
    _, four = compile_resnet8(zoo_dir, "x86_64-fp32", 4)
    convs = four.report["ops"].get("Conv", 0)
    assert four.report["threads"] == {"threads": 4, "split_layers": convs} and convs >= 7
    assert {"edgec_pool.c", "edgec_pool.h", "edgec_os.c", "edgec_os.h"} <= set(four.files)
    assert "#define RESNET8_THREADS 4" in four.files["resnet8.h"]
    assert "edgec_pool.c" in four.files["resnet8.mk"] and "-pthread" in four.files["resnet8.mk"]


@pytest.mark.parametrize("target", ["cortex-m4-int8", "cortex-m7-fp32"])
def test_firmware_targets_refuse_threads(zoo_dir, target, capsys):
    with pytest.raises(EdgecError, match="--threads needs a C target with an OS"):
        compile_resnet8(zoo_dir, target, 2)
    code = main(["compile", str(zoo_dir / "resnet8.onnx"), "-t", target, "--threads", "2",
                 "-o", str(zoo_dir / "never-written")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("edgec: error: --threads")


def test_thread_count_out_of_range_is_refused(zoo_dir):
    with pytest.raises(EdgecError, match="--threads takes 1..16"):
        compile_resnet8(zoo_dir, "generic-fp32", 17)


def run_with_threads(exe: Path, result, feeds, threads: int) -> list[np.ndarray]:
    ins, specs = harness_io(result.graph, feeds)
    outs, _ = toolchain.run(exe, result.target, ins, specs, runs=3,
                            env={**os.environ, "EDGEC_THREADS": str(threads)})
    return outs


@pytest.mark.parametrize("target", ["generic-int8", "x86_64-int8", "x86_64-fp32"])
def test_every_thread_count_is_bit_identical_to_one_thread(zoo_dir, tmp_path, target):
    path, result = compile_resnet8(zoo_dir, target, 4)
    write_output(result.files, tmp_path / "out")
    exe = toolchain.build(tmp_path / "out", result.target)
    feeds = random_inputs(result.source_graph, 7)
    one = run_with_threads(exe, result, feeds, 1)
    for threads in (2, 3, 4):
        many = run_with_threads(exe, result, feeds, threads)
        assert all(np.array_equal(a, b) for a, b in zip(one, many)), threads
    compiled = run_compiled(result, [feeds], tmp_path, exe=exe)  # the compiled-in 4 threads
    res = compare_outputs(result, path, [feeds], compiled)  # int8: bit-exact with the interp
    assert res.ok, [(o.name, o.mismatched) for o in res.outputs]


def assert_clean_under_thread_sanitizer(result, tmp_path) -> None:
    """Build `result` with clang -fsanitize=thread, run it 20 times on 4 threads (TSan halts
    with exit code 66 on a race) and check its outputs equal a plain build's on 1 thread."""
    write_output(result.files, tmp_path / "out")
    exe = toolchain.build(tmp_path / "out", result.target, cc="clang",
                          extra_cflags=("-O1", "-g", "-fsanitize=thread",
                                        "-fno-sanitize-recover=all"))
    feeds = random_inputs(result.source_graph, 3)
    ins, specs = harness_io(result.graph, feeds)
    outs, _ = toolchain.run(exe, result.target, ins, specs, runs=20,
                            env={**os.environ, "EDGEC_THREADS": "4", "TSAN_OPTIONS":
                                 "halt_on_error=1 exitcode=66"})
    plain = toolchain.build(tmp_path / "out", result.target, exe=tmp_path / "plain")
    assert all(np.array_equal(a, b) for a, b in zip(
        outs, run_with_threads(plain, result, feeds, 1)))


@pytest.mark.skipif(not shutil.which("clang"), reason="clang not installed")
def test_threaded_model_is_clean_under_thread_sanitizer(zoo_dir, tmp_path):
    _, result = compile_resnet8(zoo_dir, "x86_64-int8", 4)
    assert_clean_under_thread_sanitizer(result, tmp_path)


@pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                    reason="no arm64 cross compiler or qemu-aarch64")
@pytest.mark.parametrize("target", ["arm64-int8", "arm64-int8-i8mm"])
def test_arm64_threads_under_qemu_are_bit_identical(zoo_dir, tmp_path, target):
    _, result = compile_resnet8(zoo_dir, target, 2)
    assert result.report["threads"]["split_layers"] >= 7
    write_output(result.files, tmp_path / "out")
    exe = toolchain.build(tmp_path / "out", result.target)
    feeds = random_inputs(result.source_graph, 5)
    one, two = (run_with_threads(exe, result, feeds, t) for t in (1, 2))
    assert all(np.array_equal(a, b) for a, b in zip(one, two))


APP = r"""
#include <stdio.h>
#include <string.h>
#include "resnet8.h"
#include "edgec_os.h"
#include "edgec_pool.h"
static float first[RESNET8_OUTPUT_0_SIZE];
int main(void)
{
    float *x = (float *)resnet8_input(NULL, 0);
    size_t i;
    for (i = 0; i < RESNET8_INPUT_0_SIZE; ++i) x[i] = (float)(i % 13) / 13.0f - 0.5f;
    if (resnet8_set_threads(1) != 0 || resnet8_run(NULL) != RESNET8_OK) return 1;
    memcpy(first, resnet8_output(NULL, 0), sizeof first);
    for (i = 0; i < RESNET8_INPUT_0_SIZE; ++i) x[i] = (float)(i % 13) / 13.0f - 0.5f;
    if (resnet8_set_threads_on(2, EDGEC_CORES_BIG) != 0 || resnet8_run(NULL) != RESNET8_OK)
        return 2;
    printf("threads %d same %d\n", edgec_pool_threads(),
           memcmp(first, resnet8_output(NULL, 0), sizeof first) == 0);
    edgec_pool_stop();
    return 0;
}
"""


def test_an_app_built_from_the_makefile_pins_its_threads_to_the_big_cores(zoo_dir, tmp_path):
    """PREFIX.mk carries the pool's sources and -pthread; PREFIX_set_threads_on pins the
    workers (a symmetric host: every core is big) and the bits stay one thread's."""
    if not shutil.which("make"):
        pytest.skip("make not installed")
    _, result = compile_resnet8(zoo_dir, "generic-fp32", 2)
    out = write_output(result.files, tmp_path / "out")
    (tmp_path / "app.c").write_text(APP)
    (tmp_path / "Makefile").write_text(
        f"include {out}/resnet8.mk\n"
        "app: $(RESNET8_SRCS) app.c\n"
        "\t$(CC) -Wall -Wextra -Werror $(RESNET8_CFLAGS) $^ -o $@ $(RESNET8_LDLIBS)\n")
    proc = subprocess.run(["make", "-s", "-C", str(tmp_path), "app"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(tmp_path / "app")], capture_output=True, text=True, check=False,
                         timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "threads 2 same 1", run.stdout


def gemm_matmul_models(tmp_path) -> dict[str, Path]:
    """Gemm with 1 row (the classifier's GEMV) and with 13 rows (GEMM tiles), batched MatMul
    with a constant and with a computed B: the x86_64 fp32 templates split by panels."""
    import onnx
    from helpers import make_model
    from onnx import helper

    rng = np.random.default_rng(3)
    w = rng.standard_normal((200, 37)).astype(np.float32)
    bias = rng.standard_normal(200).astype(np.float32)
    bm = rng.standard_normal((37, 50)).astype(np.float32)
    models = {}
    for rows in (1, 13):
        models[f"gemm{rows}"] = make_model(
            [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
            {"x": ("float32", (rows, 37))}, {"y": ("float32", None)}, {"w": w, "b": bias})
    models["matmul_const"] = make_model(
        [helper.make_node("MatMul", ["x", "bm"], ["y"])],
        {"x": ("float32", (2, 13, 37))}, {"y": ("float32", None)}, {"bm": bm})
    models["matmul"] = make_model(
        [helper.make_node("MatMul", ["x", "z"], ["y"])],
        {"x": ("float32", (2, 13, 37)), "z": ("float32", (2, 37, 50))}, {"y": ("float32", None)})
    paths = {}
    for name, model in models.items():
        paths[name] = tmp_path / f"{name}.onnx"
        onnx.save(model, paths[name])
    return paths


@pytest.mark.parametrize("model", ["gemm1", "gemm13", "matmul_const", "matmul"])
def test_x86_gemm_and_matmul_split_by_panels_and_keep_the_bits(tmp_path, model):
    path = gemm_matmul_models(tmp_path)[model]
    one = compile_model(path, CompileOptions(target="x86_64-fp32"))
    assert "edgec_work" not in one.files[f"{model}.c"]  # the default C has no trace of it
    result = compile_model(path, CompileOptions(target="x86_64-fp32", threads=4))
    assert result.report["threads"]["split_layers"] == 1
    write_output(result.files, tmp_path / "out")
    exe = toolchain.build(tmp_path / "out", result.target)
    feeds = random_inputs(result.source_graph, 5)
    want = run_with_threads(exe, result, feeds, 1)
    for threads in (2, 3, 4):
        got = run_with_threads(exe, result, feeds, threads)
        assert all(np.array_equal(a, b) for a, b in zip(want, got)), threads
    res = compare_outputs(result, path, [feeds], run_compiled(result, [feeds], tmp_path, exe=exe))
    assert res.ok, [(o.name, o.max_rel_err) for o in res.outputs]  # against onnxruntime


@pytest.mark.skipif(not shutil.which("clang"), reason="clang not installed")
@pytest.mark.parametrize("model", ["gemm1", "matmul"])
def test_split_gemm_and_matmul_are_clean_under_thread_sanitizer(tmp_path, model):
    path = gemm_matmul_models(tmp_path)[model]
    result = compile_model(path, CompileOptions(target="x86_64-fp32", threads=4))
    assert_clean_under_thread_sanitizer(result, tmp_path)


@pytest.mark.slow
def test_mobilenetv2_int8_splits_every_heavy_layer_and_keeps_the_bits(zoo_dir, tmp_path):
    """MobileNetV2 x86_64-int8 --threads 2: the convolutions, the classifier, the residual
    adds, the input quantisation and the global average pool are split (only the input
    transpose and the output dequantisation are not); 1 and 2 threads give the bits of the
    single-threaded .rodata build."""
    path = zoo_dir / "mobilenetv2.onnx"
    calib = [random_inputs(load_onnx(path), seed) for seed in range(1, 3)]
    plain = compile_model(path, CompileOptions(target="x86_64-int8", calib_samples=calib))
    result = compile_model(path, CompileOptions(target="x86_64-int8", calib_samples=calib,
                                                threads=2))
    kinds = {k: result.report["ops"].get(k, 0) for k in ("Conv", "QConv", "Add", "QAdd")}
    assert result.report["threads"]["split_layers"] >= 52 + 10 + 3, kinds
    feeds = random_inputs(plain.source_graph, 6)
    write_output(plain.files, tmp_path / "plain")
    want = run_with_threads(toolchain.build(tmp_path / "plain", plain.target), plain, feeds, 1)
    write_output(result.files, tmp_path / "out")
    exe = toolchain.build(tmp_path / "out", result.target)
    for threads in (1, 2):
        got = run_with_threads(exe, result, feeds, threads)
        assert all(np.array_equal(a, b) for a, b in zip(want, got)), threads
