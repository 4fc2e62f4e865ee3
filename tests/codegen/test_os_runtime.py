"""The OS runtime shipped with the generated C (codegen/c/runtime/edgec_os.[ch]): big-core
detection on fake big.LITTLE sysfs trees, affinity, SCHED_FIFO with EPERM, available memory
from fake /proc and cgroup v2 files. Built warnings-as-errors and under ASan/UBSan."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from edgec.codegen.c.backend import RUNTIME_DIR

pytestmark = pytest.mark.skipif(os.uname().sysname != "Linux", reason="Linux runtime")

DRIVER = r"""
#include "edgec_os.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv)
{
    const char *root = argc > 2 ? argv[2] : NULL;
    if (strcmp(argv[1], "masks") == 0) {
        uint64_t big, little;
        int rc = edgec_os_core_masks(root, &big, &little);
        printf("%d %llx %llx\n", rc, (unsigned long long)big, (unsigned long long)little);
    } else if (strcmp(argv[1], "cores") == 0) {
        uint64_t sel = strcmp(argv[3], "big") == 0 ? EDGEC_CORES_BIG
                     : strcmp(argv[3], "little") == 0 ? EDGEC_CORES_LITTLE
                     : strcmp(argv[3], "all") == 0 ? EDGEC_CORES_ALL
                     : strtoull(argv[3], NULL, 16);
        printf("%d\n", edgec_os_set_cores(sel, root));
    } else if (strcmp(argv[1], "rt") == 0) {
        printf("%d\n", edgec_os_set_realtime(atoi(argv[2])));
    } else if (strcmp(argv[1], "mem") == 0) {
        printf("%lld\n", (long long)edgec_os_available_memory(root, argc > 3 ? argv[3] : NULL));
    }
    return 0;
}
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory) -> Path:
    """The driver program, built with -Werror (gcc) and ASan/UBSan (clang where it links)."""
    out = tmp_path_factory.mktemp("os")
    (out / "driver.c").write_text(DRIVER)
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{RUNTIME_DIR}"]
    sources = [str(out / "driver.c"), str(RUNTIME_DIR / "edgec_os.c")]
    subprocess.run(["gcc", *flags, *sources, "-o", str(out / "gcc")], check=True)
    exe = out / "gcc"
    if shutil.which("clang"):
        san = subprocess.run(["clang", *flags, "-g", "-fsanitize=address,undefined",
                              "-fno-sanitize-recover=all", *sources, "-o", str(out / "san")],
                             capture_output=True, text=True, check=False)
        if san.returncode == 0:
            exe = out / "san"
    return exe


def run(driver: Path, *args: str, user: str | None = None) -> str:
    cmd = [str(driver), *args]
    if user:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    return res.stdout.strip()


def fake_cpus(root: Path, figures: list[int], name: str = "cpu_capacity") -> Path:
    for cpu, figure in enumerate(figures):
        path = root / f"cpu{cpu}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{figure}\n")
    return root


def test_big_little_by_capacity(driver, tmp_path):
    root = fake_cpus(tmp_path, [446, 446, 446, 446, 1024, 1024, 1024, 1024])
    assert run(driver, "masks", str(root)) == "0 f0 f"


def test_three_clusters_by_max_frequency(driver, tmp_path):
    """No cpu_capacity: cpufreq's maximum frequency decides; only the fastest cores are big."""
    root = fake_cpus(tmp_path, [1800000] * 4 + [2400000] * 3 + [3000000],
                     name="cpufreq/cpuinfo_max_freq")
    assert run(driver, "masks", str(root)) == "0 80 7f"


def test_symmetric_host_has_no_little_cores(driver, tmp_path):
    root = fake_cpus(tmp_path, [1024, 1024])
    assert run(driver, "masks", str(root)) == "0 3 0"
    assert run(driver, "cores", str(root), "little") == "-2"  # EDGEC_OS_EINVAL: empty


def test_no_figures_means_all_cores_big(driver, tmp_path):
    for cpu in range(3):
        (tmp_path / f"cpu{cpu}").mkdir()
    assert run(driver, "masks", str(tmp_path)) == "-4 7 0"  # ENOENT, every CPU counted big


def test_pin_to_big_cores_of_this_host(driver):
    """On this host (symmetric or not) the big cores exist and the call succeeds."""
    assert run(driver, "cores", "/sys/devices/system/cpu", "big") == "0"
    assert run(driver, "cores", "/sys/devices/system/cpu", "all") == "0"
    assert run(driver, "cores", "/sys/devices/system/cpu", "0") == "-2"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root to drop to an unprivileged user with setpriv")
def test_realtime_without_permission_is_eperm(driver):
    """An unprivileged user (uid 65534) may not use SCHED_FIFO: a return code, no crash."""
    shared = Path(tempfile.mkdtemp(prefix="edgec-os-"))
    try:
        shared.chmod(0o755)
        exe = shared / "driver"
        shutil.copy(driver, exe)
        exe.chmod(0o755)
        assert run(exe, "rt", "10", user="65534") == "-1"  # EDGEC_OS_EPERM
    finally:
        shutil.rmtree(shared)


def test_realtime_priority_out_of_range(driver):
    assert run(driver, "rt", "100") == "-2"
    assert run(driver, "rt", "-1") == "-2"


def test_available_memory_is_the_tighter_of_meminfo_and_cgroup(driver, tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "meminfo").write_text("MemTotal: 8000000 kB\nMemFree: 100 kB\n"
                                  "MemAvailable: 4000000 kB\n")
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "memory.max").write_text("1073741824\n")
    (cg / "memory.current").write_text("1000000000\n")
    assert run(driver, "mem", str(proc), str(cg)) == str(1073741824 - 1000000000)
    (cg / "memory.max").write_text("max\n")
    assert run(driver, "mem", str(proc), str(cg)) == str(4000000 * 1024)
    (proc / "meminfo").write_text("garbage\n")
    assert run(driver, "mem", str(proc), str(tmp_path / "none")) == "-4"
