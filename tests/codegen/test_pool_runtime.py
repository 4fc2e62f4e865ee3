"""The thread pool shipped for multi-threaded layers (codegen/c/runtime/edgec_pool.[ch]):
every chunking of a row range over 1..4 threads gives bit-identical results to one thread, over
many back-to-back calls (spin and sleep paths); the user's parallel-for hook replaces the pool;
clean under ThreadSanitizer and ASan/UBSan."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from edgec.codegen.c.backend import RUNTIME_DIR

pytestmark = pytest.mark.skipif(os.uname().sysname != "Linux", reason="POSIX threads runtime")

DRIVER = r"""
#include "edgec_pool.h"
#include "edgec_os.h"
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#define ROWS 257
#define COLS 64
static float x[ROWS][COLS], y1[ROWS], yt[ROWS];
static void rows(void *ctx, int begin, int end)
{
    float *y = ctx; int r, c;
    for (r = begin; r < end; r++) { float acc = 0; for (c = 0; c < COLS; c++) acc += x[r][c] * x[(r + 1) % ROWS][c]; y[r] = acc; }
}
static int hook_calls;
static void my_hook(void *user, edgec_task_fn fn, void *ctx, int n) { (void)user; hook_calls++; fn(ctx, 0, n / 2); fn(ctx, n / 2, n); }
int main(int argc, char **argv)
{
    int threads = atoi(argv[1]), iters = atoi(argv[2]), r, c, i, bad = 0;
    for (r = 0; r < ROWS; r++) for (c = 0; c < COLS; c++) x[r][c] = (float)((r * 31 + c * 17) % 101) / 7.0f - 6.0f;
    rows(y1, 0, ROWS);
    if (edgec_pool_start(threads, argc > 3 ? EDGEC_CORES_BIG : 0) != EDGEC_POOL_OK) return 1;
    for (i = 0; i < iters; i++) {
        memset(yt, 0, sizeof yt);
        edgec_parallel_for(rows, yt, ROWS - (i % 3));
        bad += memcmp(yt, y1, sizeof(float) * (ROWS - (i % 3))) != 0;
    }
    printf("threads %d mismatches %d\n", edgec_pool_threads(), bad);
    edgec_pool_stop();
    edgec_pool_set_hook(my_hook, 0);
    memset(yt, 0, sizeof yt); edgec_parallel_for(rows, yt, ROWS);
    printf("hook %d %d\n", hook_calls, memcmp(yt, y1, sizeof yt) != 0);
    return 0;
}
"""

SOURCES = [str(RUNTIME_DIR / "edgec_pool.c"), str(RUNTIME_DIR / "edgec_os.c")]
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{RUNTIME_DIR}"]


def build(tmp_path, cc: str, *extra: str):
    (tmp_path / "driver.c").write_text(DRIVER)
    exe = tmp_path / f"driver-{cc}{len(extra)}"
    res = subprocess.run([cc, *FLAGS, *extra, str(tmp_path / "driver.c"), *SOURCES, "-lpthread",
                          "-o", str(exe)], capture_output=True, text=True, check=False)
    return exe if res.returncode == 0 else pytest.fail(res.stderr)


def run(exe, *args: str) -> list[str]:
    res = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120,
                         check=False)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    return res.stdout.split("\n")


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_every_thread_count_is_bit_identical_to_one_thread(tmp_path, threads):
    exe = build(tmp_path, "gcc", "-O2")
    lines = run(exe, str(threads), "300", "big")
    assert lines[0] == f"threads {threads} mismatches 0"
    assert lines[1] == "hook 1 0"  # the hook ran once and gave the same bits


@pytest.mark.skipif(not shutil.which("clang"), reason="clang not installed")
@pytest.mark.parametrize("sanitizer", ["thread", "address,undefined"])
def test_pool_is_sanitizer_clean(tmp_path, sanitizer):
    exe = build(tmp_path, "clang", "-O1", "-g", f"-fsanitize={sanitizer}",
                "-fno-sanitize-recover=all")
    assert run(exe, "3", "200")[0] == "threads 3 mismatches 0"
