"""`--weights external --partitions K` (codegen/c/external_weights.py, docs/os-runtime.md): the
constants go to PREFIX.weights in first-use order, the outputs are bit-identical to the
`.rodata` build, a wrong or truncated file is refused with its error code (never a crash), and
with K partitions only about one partition of the file is resident at any layer (the resident
pages of the mapping are read from /proc/self/smaps after every layer)."""

from __future__ import annotations

import os
import re
import subprocess

import numpy as np
import pytest
from edgec.codegen.c.external_weights import partition_of

from edgec.compiler import CompileOptions, compile_model, write_output
from edgec.errors import EdgecError
from edgec.frontend.onnx import load_onnx
from edgec.workbench import toolchain
from edgec.workbench.compare import harness_io, random_inputs

pytestmark = pytest.mark.skipif(os.uname().sysname != "Linux", reason="mmap and /proc")

# The debug-dump hook model.c calls after every layer (-DEDGEC_DEBUG_DUMP): the largest Rss of
# the weights file's mapping seen after any layer, printed at exit.
RSS_PROBE = r"""
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static long peak_kb = -1;
static void report(void) { fprintf(stderr, "weights-rss-peak-kb %ld\n", peak_kb); }
void edgec_debug_dump(int layer, const unsigned char *arena);
void edgec_debug_dump(int layer, const unsigned char *arena)
{
    char line[512];
    unsigned long lo, hi;
    int in_file = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    (void)layer; (void)arena;
    if (peak_kb < 0) { peak_kb = 0; atexit(report); }
    if (f == NULL) return;
    while (fgets(line, sizeof line, f) != NULL) {
        long kb;
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2) /* a mapping's first line */
            in_file = strstr(line, ".weights") != NULL;
        if (in_file && sscanf(line, "Rss: %ld kB", &kb) == 1 && kb > peak_kb) peak_kb = kb;
    }
    fclose(f);
}
"""


def compile_for(zoo_dir, model: str, target: str, weights: str = "rodata", partitions: int = 1):
    path = zoo_dir / f"{model}.onnx"
    calib = None
    if "int8" in target:
        calib = [random_inputs(load_onnx(path), seed) for seed in range(1, 3)]
    return compile_model(path, CompileOptions(target=target, weights=weights,
                                              partitions=partitions, calib_samples=calib))


def build_and_run(result, outdir, feeds):
    write_output(result.files, outdir)
    exe = toolchain.build(outdir, result.target)
    ins, specs = harness_io(result.graph, feeds)
    return toolchain.run(exe, result.target, ins, specs)[0]


def test_partitions_are_balanced_and_never_split_a_constant():
    assert partition_of([10, 10, 10, 10], 2) == [0, 0, 1, 1]
    assert partition_of([100, 1, 1, 1], 4) == [0, 3, 3, 3]
    assert partition_of([5], 8) == [0]


@pytest.mark.parametrize("target", ["x86_64-int8"])
def test_external_weights_are_bit_identical_to_rodata(zoo_dir, tmp_path, target):
    rodata = compile_for(zoo_dir, "resnet8", target)
    external = compile_for(zoo_dir, "resnet8", target, "external", 3)
    assert external.report["weights_file"]["partitions"] == 3
    c_text = external.files["resnet8.c"]
    assert [int(k) for k in re.findall(r"resnet8_weights_enter\((\d+)u\)", c_text)] == [0, 1, 2]
    assert len(external.files["resnet8_weights.c"]) < 8000  # a table, not the arrays
    feeds = random_inputs(rodata.source_graph, 7)
    want = build_and_run(rodata, tmp_path / "rodata", feeds)
    got = build_and_run(external, tmp_path / "external", feeds)
    assert all(np.array_equal(a, b) for a, b in zip(want, got))


def test_foreign_or_truncated_weights_file_is_an_error_code(zoo_dir, tmp_path):
    result = compile_for(zoo_dir, "resnet8", "generic-fp32", "external", 2)
    feeds = random_inputs(result.source_graph, 1)
    build_and_run(result, tmp_path / "ok", feeds)
    exe = tmp_path / "ok" / "edgec_harness"
    blob = bytearray(result.files["resnet8.weights"])
    cases = {"truncated": bytes(blob[: len(blob) // 2]), "missing": None}
    foreign = bytearray(blob)
    foreign[40] ^= 0xFF  # inside the model hash
    cases["foreign"] = bytes(foreign)
    codes = {}
    for name, data in cases.items():
        path = tmp_path / f"{name}.weights"
        if data is not None:
            path.write_bytes(data)
        ins, specs = harness_io(result.graph, feeds)
        with pytest.raises(EdgecError) as err:
            toolchain.run(exe, result.target, ins, specs,
                          env={**os.environ, "EDGEC_WEIGHTS": str(path)})
        codes[name] = re.search(r"refused with code (-?\d+)", str(err.value)).group(1)
    # edgec_weights.h: EDGEC_WEIGHTS_ETRUNCATED, _EOPEN, _EMODEL
    assert codes == {"truncated": "-12", "missing": "-10", "foreign": "-13"}


@pytest.mark.slow
def test_four_partitions_bound_the_resident_weights(zoo_dir, tmp_path):
    """MobileNetV2 fp32 (14 MB of weights): with one partition the whole file ends up resident
    during a run; with four, at most ~0.6x (measured 0.59x: the last partition holds the 5 MB
    classifier alone, 0.36x of the file, and this kernel maps file pages in 2 MB folios)."""
    peaks, outs, sizes = {}, {}, {}
    for k in (1, 4):
        result = compile_for(zoo_dir, "mobilenetv2", "x86_64-fp32", "external", k)
        out = tmp_path / f"k{k}"
        write_output(result.files, out)
        (out / "rss_probe.c").write_text(RSS_PROBE)
        exe = toolchain.build(out, result.target, extra_cflags=("-DEDGEC_DEBUG_DUMP",))
        ins, specs = harness_io(result.graph, random_inputs(result.source_graph, 2))
        paths = [str(tmp_path / f"in{i}.bin") for i in range(len(ins))]
        for p, a in zip(paths, ins):
            np.ascontiguousarray(a).tofile(p)
        outp = [str(out / f"out{i}.bin") for i in range(len(specs))]
        run = subprocess.run([str(exe), "1", *paths, *outp], capture_output=True, text=True,
                             check=False, timeout=120)  # the probe prints on stderr
        assert run.returncode == 0, run.stderr
        peaks[k] = int(re.search(r"weights-rss-peak-kb (\d+)", run.stderr).group(1)) * 1024
        outs[k] = [np.fromfile(p, dtype=dt) for p, (_, dt) in zip(outp, specs)]
        sizes[k] = len(result.files["mobilenetv2.weights"])
    assert all(np.array_equal(a, b) for a, b in zip(outs[1], outs[4]))
    assert peaks[1] >= 0.9 * sizes[1], (peaks, sizes)  # the measure sees the whole file
    assert peaks[4] <= 0.65 * sizes[4], (peaks, sizes)
