"""`--fallback int8` (codegen/c/fallback.py, docs/os-runtime.md): one library holding the fp32
and the int8 build of a model; a memory callback reporting plenty selects fp32, one reporting
little selects int8, between two runs of one program; the int8 branch is bit-exact with the
int8 reference interpreter and the fp32 branch matches onnxruntime; firmware and int8 targets
refuse the flag."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from edgec.compiler import CompileOptions, compile_model, write_output
from edgec.errors import EdgecError
from edgec.frontend.onnx import load_onnx
from edgec.workbench import toolchain
from edgec.workbench.compare import compare_outputs, random_inputs

APP = r"""
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include "resnet8.h"
static long long reported;
static long long fake_memory(void *user) { (void)user; return reported; }
static int run_to(const char *in, const char *out, void *arena)
{
    FILE *f = fopen(in, "rb");
    size_t got;
    if (f == NULL) return 1;
    got = fread(resnet8_input(arena, 0), 1, resnet8_inputs[0].bytes, f);
    fclose(f);
    if (got != resnet8_inputs[0].bytes || resnet8_run(arena) != RESNET8_OK) return 2;
    f = fopen(out, "wb");
    if (f == NULL) return 3;
    fwrite(resnet8_output(arena, 0), 1, resnet8_outputs[0].bytes, f);
    fclose(f);
    return 0;
}
int main(int argc, char **argv)
{
    void *arena = NULL;
    int a, b, c;
    if (argc != 4 || posix_memalign(&arena, RESNET8_ARENA_ALIGN, RESNET8_ARENA_BYTES) != 0) return 9;
    resnet8_set_memory_callback(fake_memory, NULL);
    reported = 1LL << 40;
    a = resnet8_select_precision(0);
    if (run_to(argv[1], argv[2], arena) != 0) return 4;
    reported = 1000;
    b = resnet8_select_precision(0);
    if (run_to(argv[1], argv[3], arena) != 0) return 5;
    resnet8_set_memory_callback(NULL, NULL);
    c = resnet8_select_precision(1); /* this machine has more than one byte free */
    printf("%d %d %d\n", a, b, c);
    free(arena);
    return 0;
}
"""


def test_low_memory_switches_to_the_int8_build_between_runs(zoo_dir, tmp_path):
    path = zoo_dir / "resnet8.onnx"
    calib = [random_inputs(load_onnx(path), seed) for seed in range(1, 3)]
    result = compile_model(path, CompileOptions(target="generic-fp32", fallback="int8",
                                                calib_samples=calib))
    assert result.report["fallback"]["int8"]["target"] == "generic-int8"
    out = write_output(result.files, tmp_path / "out")
    (out / "edgec_harness.c").write_text(APP)  # the app in place of the harness
    exe = toolchain.build(out, result.target)
    feeds = random_inputs(result.source_graph, 4)
    (x,) = feeds.values()
    np.ascontiguousarray(x, np.float32).tofile(tmp_path / "in.bin")
    run = subprocess.run([str(exe), str(tmp_path / "in.bin"), str(tmp_path / "fp32.bin"),
                          str(tmp_path / "int8.bin")], capture_output=True, text=True,
                         check=False, timeout=60)
    assert run.returncode == 0 and run.stdout.split() == ["0", "1", "0"], run.stdout
    variants = result.variants
    for tag, file in (("f32", "fp32.bin"), ("i8", "int8.bin")):
        variant = variants[tag]
        y = variant.graph.outputs[0]
        got = np.fromfile(tmp_path / file, dtype=np.float32).reshape(y.shape)
        out_name = (variant.graph.meta.get("output_names") or [y.name])[0]
        res = compare_outputs(variant, path, [feeds], [{out_name: got}])
        assert res.ok, (tag, [(o.name, o.mismatched) for o in res.outputs])


@pytest.mark.parametrize("target", ["generic-int8", "cortex-m7-fp32"])
def test_fallback_needs_an_fp32_target_with_an_os(zoo_dir, target):
    with pytest.raises(EdgecError, match="--fallback int8 needs one of the fp32 targets"):
        compile_model(zoo_dir / "resnet8.onnx", CompileOptions(target=target, fallback="int8"))
