"""`--weights external --partitions K` (codegen/c/external_weights.py, docs/os-runtime.md): the
constants go to PREFIX.weights in first-use order, the outputs are bit-identical to the
`.rodata` build, a wrong or truncated file is refused with its error code (never a crash), and
with K partitions only about one partition of the file is resident at any layer (the resident
pages of the mapping are read from /proc/self/smaps after every layer)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from edgec.codegen.c.external_weights import cut_partitions, partition_of

from edgec.compiler import CompileOptions, compile_model, write_output
from edgec.errors import EdgecError
from edgec.frontend.onnx import load_onnx
from edgec.workbench import toolchain
from edgec.workbench.compare import harness_io, random_inputs

pytestmark = pytest.mark.skipif(os.uname().sysname != "Linux", reason="mmap and /proc")

# The debug-dump hook model.c calls after every layer (-DEDGEC_DEBUG_DUMP) and the hook the
# weights table calls before every partition change, inside a layer too (-DEDGEC_WEIGHTS_PROBE):
# the largest Rss of the weights file's mapping seen at any of them, printed at exit.
RSS_PROBE = r"""
#define _POSIX_C_SOURCE 200112L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static long peak_kb = -1;
static void report(void) { fprintf(stderr, "weights-rss-peak-kb %ld\n", peak_kb); }
static void sample(void)
{
    char line[512];
    unsigned long lo, hi;
    int in_file = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
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
void edgec_debug_dump(int layer, const unsigned char *arena);
void edgec_debug_dump(int layer, const unsigned char *arena)
{
    (void)layer; (void)arena;
    sample();
}
void edgec_weights_probe(uint32_t k);
void edgec_weights_probe(uint32_t k)
{
    (void)k;
    sample();
}
"""


def compile_for(zoo_dir, model: str, target: str, weights: str = "rodata", partitions: int = 1,
                threads: int = 1):
    path = zoo_dir / f"{model}.onnx"
    calib = None
    if "int8" in target:
        calib = [random_inputs(load_onnx(path), seed) for seed in range(1, 3)]
    return compile_model(path, CompileOptions(target=target, weights=weights, threads=threads,
                                              partitions=partitions, calib_samples=calib))


def build_and_run(result, outdir, feeds):
    write_output(result.files, outdir)
    exe = toolchain.build(outdir, result.target)
    ins, specs = harness_io(result.graph, feeds)
    return toolchain.run(exe, result.target, ins, specs)[0]


def test_partitions_are_balanced_and_never_split_a_constant():
    assert partition_of([10, 10, 10, 10], 2) == [0, 0, 1, 1]
    # the 100-byte constant bounds the largest partition; the rest get one partition each
    assert partition_of([100, 1, 1, 1], 4) == [0, 1, 2, 3]
    assert partition_of([5], 8) == [0]


def test_a_streamed_constant_is_cut_between_work_items_and_the_largest_part_is_minimal():
    # 10 + 100 + 5 bytes, the 100-byte constant read in items of 10: 4 parts of <= 30 bytes
    parts, inner = cut_partitions([10, 100, 5], [0, 10, 0], 4)
    assert parts == [0, 0, 3] and inner == {1: [(20, 1), (50, 2), (80, 3)]}
    assert cut_partitions([10, 100, 5], [0, 0, 0], 4) == ([0, 1, 2], {})  # never split: 100


@pytest.mark.parametrize("target", ["x86_64-int8", "generic-fp32", "arm64-int8"])
def test_external_weights_are_bit_identical_to_rodata(zoo_dir, tmp_path, target):
    if target.startswith("arm64") and not (shutil.which("aarch64-linux-gnu-gcc")
                                           and shutil.which("qemu-aarch64")):
        pytest.skip("no arm64 cross compiler or qemu-aarch64")
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


def run_with_rss_probe(result, out, feeds) -> tuple[int, list[np.ndarray]]:
    """(peak Rss of the weights mapping, outputs) of one run in a fresh process."""
    write_output(result.files, out)
    (out / "rss_probe.c").write_text(RSS_PROBE)
    exe = toolchain.build(out, result.target,
                          extra_cflags=("-DEDGEC_DEBUG_DUMP", "-DEDGEC_WEIGHTS_PROBE"))
    ins, specs = harness_io(result.graph, feeds)
    paths = [str(out / f"in{i}.bin") for i in range(len(ins))]
    for p, a in zip(paths, ins):
        np.ascontiguousarray(a).tofile(p)
    outp = [str(out / f"out{i}.bin") for i in range(len(specs))]
    run = subprocess.run([str(exe), "1", *paths, *outp], capture_output=True, text=True,
                         check=False, timeout=120)  # the probe prints on stderr
    assert run.returncode == 0, run.stderr
    peak = int(re.search(r"weights-rss-peak-kb (\d+)", run.stderr).group(1)) * 1024
    return peak, [np.fromfile(p, dtype=dt) for p, (_, dt) in zip(outp, specs)]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["x86_64-fp32", "x86_64-int8"])
def test_four_partitions_bound_the_resident_weights(zoo_dir, tmp_path, target):
    """MobileNetV2 (fp32: a 14.1 MB weights file, int8: 6.1 MB): with one partition the whole
    file ends up resident during a run; with four, at most 0.4x of it (measured 0.28x fp32,
    0.34x int8: the classifier's matrix, 5.1 MB in fp32, is entered panel by panel across two
    partitions, and the probe samples inside that layer too). Outputs bit-identical to the
    .rodata build."""
    peaks, outs, sizes = {}, {}, {}
    rodata = compile_for(zoo_dir, "mobilenetv2", target)
    feeds = random_inputs(rodata.source_graph, 2)
    for k in (1, 4):
        result = compile_for(zoo_dir, "mobilenetv2", target, "external", k)
        peaks[k], outs[k] = run_with_rss_probe(result, tmp_path / f"k{k}", feeds)
        sizes[k] = len(result.files["mobilenetv2.weights"])
    want = build_and_run(rodata, tmp_path / "rodata", feeds)
    for k in (1, 4):
        assert all(np.array_equal(a.ravel(), b) for a, b in zip(want, outs[k])), k
    assert peaks[1] >= 0.9 * sizes[1], (peaks, sizes)  # the measure sees the whole file
    assert peaks[4] <= 0.4 * sizes[4], (peaks, sizes)


@pytest.mark.slow
def test_threads_enter_partitions_between_segments_of_the_classifier(zoo_dir, tmp_path):
    """--threads 2 with 4 partitions (fp32: the int8 classifier fits a partition whole): the
    classifier runs its panels over the pool in two segments with the partition entered between
    them; the bits are the .rodata build's for 1 and 2 threads."""
    rodata = compile_for(zoo_dir, "mobilenetv2", "x86_64-fp32")
    both = compile_for(zoo_dir, "mobilenetv2", "x86_64-fp32", "external", 4, threads=2)
    c_text = both.files["mobilenetv2.c"]
    assert re.search(r"args\.first = \d+u;\n *edgec_parallel_for\(layer_\d+_gemm_task", c_text)
    assert re.search(r"mobilenetv2_weights_enter\(\d+u\); /\* partition \d+ of 4, from work "
                     r"item \d+ \*/", c_text)
    feeds = random_inputs(rodata.source_graph, 4)
    want = build_and_run(rodata, tmp_path / "rodata", feeds)
    write_output(both.files, tmp_path / "both")
    exe = toolchain.build(tmp_path / "both", both.target)
    ins, specs = harness_io(both.graph, feeds)
    for threads in ("1", "2"):
        got = toolchain.run(exe, both.target, ins, specs,
                            env={**os.environ, "EDGEC_THREADS": threads})[0]
        assert all(np.array_equal(a, b) for a, b in zip(want, got)), threads
