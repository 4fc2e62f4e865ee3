"""`PREFIX_set_realtime(prio)` of a `--threads N` library (edgec_pool_set_realtime,
docs/os-runtime.md): where the process may, every thread of the pool and the caller run on
SCHED_FIFO (each thread's policy is read back from inside the program with sched_getscheduler
on every /proc/self/task entry) and 0 puts them back on SCHED_OTHER; without CAP_SYS_NICE and
with RLIMIT_RTPRIO 0 the call returns EDGEC_POOL_EPERM (-1), nothing changes and the model still
runs with the same bits."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from edgec.compiler import CompileOptions, compile_model, write_output

pytestmark = pytest.mark.skipif(os.uname().sysname != "Linux", reason="SCHED_FIFO and /proc")

APP = r"""
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "resnet8.h"
static float first[RESNET8_OUTPUT_0_SIZE];

/* Threads of this process on SCHED_FIFO, out of all of them. */
static void policies(const char *what, int rc)
{
    DIR *dir = opendir("/proc/self/task");
    struct dirent *e;
    int fifo = 0, total = 0;
    while (dir && (e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') continue;
        total++;
        fifo += sched_getscheduler((pid_t)atoi(e->d_name)) == SCHED_FIFO;
    }
    if (dir) closedir(dir);
    printf("%s %d fifo %d of %d\n", what, rc, fifo, total);
}

static int run(void)
{
    float *x = (float *)resnet8_input(NULL, 0);
    size_t i;
    for (i = 0; i < RESNET8_INPUT_0_SIZE; ++i) x[i] = (float)(i % 13) / 13.0f - 0.5f;
    return resnet8_run(NULL);
}

int main(void)
{
    int rc;
    if (resnet8_set_threads(1) != 0 || run() != RESNET8_OK) return 1;
    memcpy(first, resnet8_output(NULL, 0), sizeof first);
    if (resnet8_set_threads(2) != 0) return 2;
    rc = resnet8_set_realtime(5);
    policies("realtime", rc);
    if (run() != RESNET8_OK) return 3;
    printf("same %d\n", memcmp(first, resnet8_output(NULL, 0), sizeof first) == 0);
    policies("after-run", 0);
    rc = resnet8_set_realtime(0);
    policies("other", rc);
    printf("range %d\n", resnet8_set_realtime(100));
    resnet8_set_threads(1);
    return 0;
}
"""

NO_RT_PERMISSION = ["setpriv", "--inh-caps=-sys_nice", "--bounding-set=-sys_nice",
                    "prlimit", "--rtprio=0"]


@pytest.fixture(scope="module")
def app(tmp_path_factory, zoo_dir):
    if not shutil.which("make"):
        pytest.skip("make not installed")
    tmp = tmp_path_factory.mktemp("realtime")
    result = compile_model(zoo_dir / "resnet8.onnx",
                           CompileOptions(target="generic-fp32", threads=2))
    out = write_output(result.files, tmp / "out")
    (tmp / "app.c").write_text(APP)
    (tmp / "Makefile").write_text(
        f"include {out}/resnet8.mk\n"
        "app: $(RESNET8_SRCS) app.c\n"
        "\t$(CC) -Wall -Wextra -Werror $(RESNET8_CFLAGS) $^ -o $@ $(RESNET8_LDLIBS)\n")
    proc = subprocess.run(["make", "-s", "-C", str(tmp), "app"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return tmp / "app"


def run_app(cmd: list[str]) -> list[str]:
    run = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode == 0, (run.returncode, run.stdout, run.stderr)
    return run.stdout.strip().splitlines()


def fifo_permitted(prefix: list[str]) -> bool:
    chrt = shutil.which("chrt")
    return bool(chrt) and subprocess.run([*prefix, chrt, "-f", "1", "true"],
                                         capture_output=True, check=False).returncode == 0


def test_realtime_puts_every_pool_thread_on_sched_fifo_and_back(app):
    if not fifo_permitted([]):
        pytest.skip("this process may not use SCHED_FIFO (no CAP_SYS_NICE, RLIMIT_RTPRIO 0)")
    assert run_app([str(app)]) == [
        "realtime 0 fifo 2 of 2",  # the caller and the one worker of a 2-thread pool
        "same 1", "after-run 0 fifo 2 of 2",
        "other 0 fifo 0 of 2",
        "range -2",  # EDGEC_POOL_EINVAL
    ]


def test_realtime_without_the_permission_is_eperm_and_changes_nothing(app):
    if not all(shutil.which(t) for t in ("setpriv", "prlimit")):
        pytest.skip("setpriv/prlimit (util-linux) not installed")
    if fifo_permitted(NO_RT_PERMISSION):
        pytest.skip("SCHED_FIFO still permitted after dropping CAP_SYS_NICE and RLIMIT_RTPRIO")
    assert run_app([*NO_RT_PERMISSION, str(app)]) == [
        "realtime -1 fifo 0 of 2",  # EDGEC_POOL_EPERM, no thread changed
        "same 1", "after-run 0 fifo 0 of 2",
        "other 0 fifo 0 of 2",  # SCHED_OTHER needs no permission
        "range -2",
    ]
