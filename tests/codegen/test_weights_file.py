"""External weights (codegen/c/weights_file.py + runtime/edgec_weights.[ch]): the C runtime
reads back exactly what Python wrote, through mmap and through the read() fallback; a wrong,
truncated or corrupted file is an error code, never a crash (ASan/UBSan); with partitions the
resident file memory stays near two partitions."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import numpy as np
import pytest

from edgec.codegen.c.backend import RUNTIME_DIR
from edgec.codegen.c.weights_file import HEADER_BYTES, PARTITION_ALIGN, build_weights_file

pytestmark = pytest.mark.skipif(os.uname().sysname != "Linux", reason="POSIX mmap runtime")

HASH = hashlib.sha256(b"model").digest()

DRIVER = r"""
#include "edgec_weights.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long rss_file_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssFile: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

int main(int argc, char **argv)
{
    static unsigned char buffer[1 << 20];
    uint8_t hash[32];
    edgec_weights_t w;
    int i, rc, use_mmap = atoi(argv[2]);
    if (argc < 5) return 2;
    for (i = 0; i < 32; i++) hash[i] = (uint8_t)strtol((char[3]){argv[3][2 * i],
                                                       argv[3][2 * i + 1], 0}, 0, 16);
    rc = edgec_weights_open(&w, argv[1], hash, use_mmap, buffer, sizeof buffer);
    printf("open %d\n", rc);
    if (rc) return 0;
    if (strcmp(argv[4], "dump") == 0) {
        for (i = 0; i < (int)w.tensors; i++) {
            unsigned bytes = (unsigned)atoi(argv[5 + i]);
            const unsigned char *t = edgec_weights_tensor(&w, (uint32_t)i, bytes);
            unsigned sum = 0, k;
            for (k = 0; t && k < bytes; k++) sum = sum * 31u + t[k];
            printf("tensor %d %s %u\n", i, t ? "ok" : "null", sum);
        }
        printf("wrong-size %s\n", edgec_weights_tensor(&w, 0, 1) ? "ok" : "null");
        printf("wrong-index %s\n", edgec_weights_tensor(&w, w.tensors, 4) ? "ok" : "null");
        printf("check %d\n", edgec_weights_check_payload(&w));
        printf("enter-out-of-range %d\n", edgec_weights_enter(&w, w.partitions));
    } else { /* "walk": touch every partition in turn, report the peak of RssFile */
        long base = rss_file_kib(), peak = 0, now;
        unsigned p, k, sum = 0;
        for (p = 0; p < w.partitions; p++) {
            edgec_weights_enter(&w, p);
            for (k = 0; k < w.tensors; k++) {
                const unsigned char *t = edgec_weights_tensor(&w, k, (uint32_t)atoi(argv[5]));
                if (t && (unsigned)k / (w.tensors / w.partitions) == p) {
                    size_t b;
                    for (b = 0; b < (size_t)atoi(argv[5]); b += 4096) sum += t[b];
                }
            }
            now = rss_file_kib() - base;
            if (now > peak) peak = now;
        }
        printf("peak_kib %ld sum %u\n", peak, sum);
    }
    edgec_weights_close(&w);
    return 0;
}
"""


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    (out / "driver.c").write_text(DRIVER)
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{RUNTIME_DIR}"]
    sources = [str(out / "driver.c"), str(RUNTIME_DIR / "edgec_weights.c")]
    cc, extra = "gcc", ["-O2"]
    if shutil.which("clang"):
        cc, extra = "clang", ["-O1", "-g", "-fsanitize=address,undefined",
                              "-fno-sanitize-recover=all"]
    subprocess.run([cc, *flags, *extra, *sources, "-o", str(out / "driver")], check=True)
    return out / "driver"


def run(driver, path, *args, use_mmap=1, model_hash=HASH) -> list[str]:
    res = subprocess.run([str(driver), str(path), str(use_mmap), model_hash.hex(), *args],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    return res.stdout.splitlines()


def c_sum(data: bytes) -> int:
    s = 0
    for b in data:
        s = (s * 31 + b) & 0xFFFFFFFF
    return s


def arrays():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
            rng.integers(-128, 128, 100).astype(np.int8),
            rng.integers(-2**31, 2**31, 16).astype(np.int32)]


@pytest.mark.parametrize("use_mmap", [1, 0])
def test_runtime_reads_back_every_tensor(driver, tmp_path, use_mmap):
    data = arrays()
    path = tmp_path / "m.weights"
    path.write_bytes(build_weights_file(data, [0, 1, 1], HASH))
    lines = run(driver, path, "dump", *[str(a.nbytes) for a in data], use_mmap=use_mmap)
    assert lines[0] == "open 0"
    for i, a in enumerate(data):
        assert lines[1 + i] == f"tensor {i} ok {c_sum(a.tobytes())}"
    assert lines[4:] == ["wrong-size null", "wrong-index null", "check 0",
                         "enter-out-of-range -16"]


def test_layout_is_aligned_and_deterministic():
    data = arrays()
    blob = build_weights_file(data, [0, 1, 1], HASH)
    assert blob == build_weights_file([a.copy() for a in data], [0, 1, 1], HASH)
    assert blob[:8] == b"EDGECWT1" and len(blob) > PARTITION_ALIGN
    part1 = int.from_bytes(blob[HEADER_BYTES + 3 * 16 + 16:][:8], "little")
    assert part1 % PARTITION_ALIGN == 0 and part1 > 0


def test_bad_files_give_error_codes(driver, tmp_path):
    good = build_weights_file(arrays(), [0, 0, 1], HASH)
    cases = {
        "truncated": (good[: len(good) - 10], -12),
        "header-only-part": (good[:40], -12),
        "tiny": (b"EDG", -11),
        "not-weights": (b"\x7fELF" + bytes(200), -11),
        "wrong-version": (good[:8] + b"\x02" + good[9:], -11),
        "huge-count": (good[:12] + b"\xff\xff\xff\x7f" + good[16:], -11),
        "offset-outside": (good[:HEADER_BYTES] + (2**62).to_bytes(8, "little")
                           + good[HEADER_BYTES + 8:], -11),
    }
    for name, (blob, code) in cases.items():
        path = tmp_path / f"{name}.weights"
        path.write_bytes(blob)
        assert run(driver, path, "dump")[0] == f"open {code}", name
    path = tmp_path / "other-model.weights"
    path.write_bytes(good)
    assert run(driver, path, "dump", model_hash=hashlib.sha256(b"x").digest())[0] == "open -13"
    assert run(driver, tmp_path / "missing.weights", "dump")[0] == "open -10"
    corrupt = bytearray(good)
    corrupt[-1] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    lines = run(driver, path, "dump", "216", "100", "64")
    assert lines[0] == "open 0" and "check -15" in lines


def test_partitions_bound_resident_memory(driver, tmp_path):
    """8 partitions of 4 MiB: touching them in turn keeps RssFile near two partitions
    (<= 0.4x the file), where one mapping without partitions would end at the whole file."""
    tensor_bytes = 1 << 20
    data = [np.full(tensor_bytes, i, np.uint8) for i in range(32)]
    path = tmp_path / "big.weights"
    path.write_bytes(build_weights_file(data, [i // 4 for i in range(32)], HASH))
    lines = run(driver, path, "walk", str(tensor_bytes))
    assert lines[0] == "open 0"
    peak_kib = int(lines[1].split()[1])
    total_kib = os.path.getsize(path) // 1024
    assert 0 < peak_kib <= 0.4 * total_kib, (peak_kib, total_kib)
    assert int(lines[1].split()[3]) == sum(range(32)) * (tensor_bytes // 4096)
    path.write_bytes(build_weights_file(data, [0] * 32, HASH))  # one partition: no release
    whole = int(run(driver, path, "walk", str(tensor_bytes))[1].split()[1])
    assert whole >= 0.9 * total_kib, (whole, total_kib)  # the measure sees the difference


def test_a_partition_may_start_inside_a_tensor(driver, tmp_path):
    """A layer that streams its weights enters the next partition between two work items: the
    partition table then cuts a tensor at that byte (not on a 64 KiB boundary); the runtime
    accepts it, reads every tensor back and enters both partitions (pages rounded inwards when
    released), clean under ASan/UBSan."""
    data = arrays()
    with pytest.raises(ValueError, match="non-decreasing"):  # tensor 1 is already in 1
        build_weights_file(data, [0, 0, 1], HASH, inner={0: [(256, 1)]})
    blob = build_weights_file(data, [0, 1, 1], HASH, inner={0: [(256, 1)]})
    table = HEADER_BYTES + 3 * 16
    offsets = [int.from_bytes(blob[HEADER_BYTES + 16 * i:][:8], "little") for i in range(3)]
    parts = [(int.from_bytes(blob[table + 16 * k:][:8], "little"),
              int.from_bytes(blob[table + 16 * k + 8:][:8], "little")) for k in range(2)]
    assert parts == [(offsets[0], offsets[0] + 256), (offsets[0] + 256, offsets[2] + 64)]
    assert int.from_bytes(blob[16:20], "little") == 2  # partitions in the header
    path = tmp_path / "inner.weights"
    path.write_bytes(blob)
    lines = run(driver, path, "dump", *[str(a.nbytes) for a in data])
    assert lines[0] == "open 0"
    for i, a in enumerate(data):
        assert lines[1 + i] == f"tensor {i} ok {c_sum(a.tobytes())}"
    assert lines[4:] == ["wrong-size null", "wrong-index null", "check 0",
                         "enter-out-of-range -16"]
    walk = run(driver, path, "walk", str(data[0].nbytes))
    assert walk[0] == "open 0" and walk[1].startswith("peak_kib ")
