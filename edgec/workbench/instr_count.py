"""Deterministic cost on emulated targets: guest instructions counted by a QEMU TCG plugin.

Emulated wall time means nothing, so `edgec bench` on a target with a `runner` (qemu-aarch64)
counts executed guest instructions instead. The counter is a small TCG plugin (PLUGIN_SOURCE
below) that QEMU loads with `-plugin`. It counts only inside the model: from the first
instruction of `<prefix>_run` until execution is back in the harness's `main`, attributing every
translated block to the layer function (`layer_NNN_Op`) it lies in; blocks outside the model's
functions (memcpy, expf from libc/libm) count for the layer that called them. Function address
ranges come from the symbol table of the (static, unstripped) executable (`nm -S`).

Debian ships QEMU with plugin support but neither plugins nor the plugin API header. The
header is taken from Debian's own qemu source package for the installed QEMU version:
`apt-get source --download-only qemu=<version>` (a deb-src entry is added when missing), then
`include/qemu/qemu-plugin.h` is extracted from the upstream tarball. `build_plugin` compiles
the plugin with the host C compiler into a cache directory (EDGEC_CACHE_DIR, else
~/.cache/edgec). `tools/build_tcg_plugin.py` does the same from the command line.

Counts are identical across runs: the harness runs under an empty environment (`env -i`), the
binary is static (fixed addresses) and nothing inside the run function depends on time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.errors import TargetError, ToolchainError
from edgec.targets import Target

PLUGIN_NAME = "libedgec_icount.so"
DEB_SRC_FILE = Path("/etc/apt/sources.list.d/edgec-deb-src.sources")
# deb-src twin of Debian's default bookworm sources (only added when no deb-src entry exists).
DEB_SRC_ENTRY = """\
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: {codename} {codename}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: {codename}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

PLUGIN_SOURCE = r"""/*
 * edgec instruction counter, a QEMU TCG plugin (user mode, one vCPU).
 * Arguments: map=FILE (lines "START END KIND": hex addresses, KIND r = the model's run
 * function, l = a layer function, s = a function that stops counting, i.e. the harness's
 * main) and out=FILE. Counting starts when a block begins at the run function's entry and
 * stops when a block of a stop function executes; each executed block adds its instruction
 * count to the function it lies in, or, outside every listed function (libc, libm), to the
 * function that was running before. Writes "calls N" and "fn INDEX COUNT" lines at exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_FUNCTIONS 8192
struct function { uint64_t start, end; char kind; };
struct block { int function; int run_entry; uint64_t insns; };

static struct function functions[MAX_FUNCTIONS];
static uint64_t counts[MAX_FUNCTIONS];
static int n_functions, current = -1;
static uint64_t calls;
static const char *out_path = "icount.txt";

static void block_exec(unsigned int vcpu, void *udata)
{
    const struct block *b = udata;
    (void)vcpu;
    if (b->function >= 0) {
        if (functions[b->function].kind == 's') {
            current = -1;
            return;
        }
        if (b->run_entry) {
            calls++;
            current = b->function;
        } else if (current >= 0) {
            current = b->function;
        }
    }
    if (current >= 0) {
        counts[current] += b->insns;
    }
}

static void block_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    const uint64_t pc = qemu_plugin_tb_vaddr(tb);
    struct block *b = calloc(1, sizeof *b);
    int i;
    (void)id;
    if (b == NULL) {
        abort();
    }
    b->function = -1;
    b->insns = qemu_plugin_tb_n_insns(tb);
    for (i = 0; i < n_functions; ++i) {
        if (pc >= functions[i].start && pc < functions[i].end) {
            b->function = i;
            b->run_entry = functions[i].kind == 'r' && pc == functions[i].start;
            break;
        }
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, block_exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    FILE *f = fopen(out_path, "w");
    int i;
    (void)id;
    (void)udata;
    if (f == NULL) {
        return;
    }
    fprintf(f, "calls %llu\n", (unsigned long long)calls);
    for (i = 0; i < n_functions; ++i) {
        fprintf(f, "fn %d %llu\n", i, (unsigned long long)counts[i]);
    }
    fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *map_path = NULL;
    unsigned long long start, end;
    char kind;
    FILE *f;
    int i;
    (void)info;
    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "map=", 4) == 0) {
            map_path = argv[i] + 4;
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            out_path = argv[i] + 4;
        }
    }
    f = map_path ? fopen(map_path, "r") : NULL;
    if (f == NULL) {
        fprintf(stderr, "edgec icount plugin: cannot read map=%s\n", map_path ? map_path : "");
        return 1;
    }
    while (n_functions < MAX_FUNCTIONS && fscanf(f, "%llx %llx %c", &start, &end, &kind) == 3) {
        functions[n_functions].start = start;
        functions[n_functions].end = end;
        functions[n_functions].kind = kind;
        n_functions++;
    }
    fclose(f);
    qemu_plugin_register_vcpu_tb_trans_cb(id, block_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
"""


# --------------------------------------------------------------------------- the plugin
def cache_dir() -> Path:
    """Where edgec keeps built helpers: $EDGEC_CACHE_DIR, else ~/.cache/edgec."""
    env = os.environ.get("EDGEC_CACHE_DIR")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or
                                      Path.home() / ".cache") / "edgec"
    return base


def qemu_debian_version(qemu: str = "qemu-aarch64") -> tuple[str, str]:
    """(upstream version, Debian source version) of the installed QEMU user emulator.

    `qemu-aarch64 --version` prints e.g. "version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)";
    the source version drops the binary-rebuild suffix (+bN).
    """
    exe = shutil.which(qemu)
    if exe is None:
        raise TargetError(f"'{qemu}' is not installed (Debian: apt-get install qemu-user)")
    text = subprocess.run([exe, "--version"], capture_output=True, text=True,
                          check=False).stdout
    m = re.search(r"version (\S+)(?: \(Debian ([^)]+)\))?", text)
    if m is None:
        raise TargetError(f"cannot read the version of {qemu} from: {text.strip()[:80]}")
    upstream, debian = m.group(1), m.group(2) or ""
    return upstream, re.sub(r"\+b\d+$", "", debian)


def plugin_dir() -> Path:
    """Cache directory of the plugin built for the installed QEMU."""
    upstream, debian = qemu_debian_version()
    tag = re.sub(r"[^A-Za-z0-9.+-]", "_", debian or upstream)
    return cache_dir() / f"qemu-plugin-{tag}"


def _codename() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "bookworm"


def _has_deb_src() -> bool:
    roots = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for p in roots:
        try:
            text = p.read_text()
        except OSError:
            continue
        if re.search(r"^\s*(deb-src\s|Types:.*deb-src)", text, re.MULTILINE):
            return True
    return False


def fetch_plugin_header(dest: Path, log=print) -> Path:
    """Extract qemu-plugin.h of the installed QEMU from Debian's qemu source package.

    Needs root (it may add a deb-src entry and runs apt-get update) and Debian's archive.
    """
    upstream, debian = qemu_debian_version()
    if not debian:
        raise TargetError(f"QEMU {upstream} is not Debian's build; put its qemu-plugin.h in "
                          f"{dest} or point EDGEC_QEMU_PLUGIN_H at it")
    if os.geteuid() != 0:
        raise TargetError(
            "the QEMU plugin header comes from Debian's qemu source package; as root run "
            "`python tools/build_tcg_plugin.py` once (or set EDGEC_QEMU_PLUGIN_H to a "
            f"qemu-plugin.h of QEMU {upstream})")
    if not _has_deb_src():
        log(f"build_tcg_plugin: adding a deb-src entry in {DEB_SRC_FILE}")
        DEB_SRC_FILE.write_text(DEB_SRC_ENTRY.format(codename=_codename()))
    subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgec-qemu-src-") as tmp:
        log(f"build_tcg_plugin: apt-get source --download-only qemu={debian}")
        proc = subprocess.run(["apt-get", "source", "--download-only", f"qemu={debian}"],
                              cwd=tmp, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise TargetError(f"apt-get source qemu={debian} failed: "
                              f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        debian_tar = next(Path(tmp).glob("qemu_*.debian.tar.*"), None)
        if debian_tar is not None:
            with tarfile.open(debian_tar) as tf:
                for member in tf.getmembers():  # Debian's patches: none may touch it
                    if not (member.isfile() and "/patches/" in member.name):
                        continue
                    if b"include/qemu/qemu-plugin.h" in tf.extractfile(member).read():
                        raise TargetError(f"Debian's patch {member.name} changes "
                                          "qemu-plugin.h; extract the patched source instead")
        orig = next(Path(tmp).glob("qemu_*.orig.tar.*"), None)
        if orig is None:
            raise TargetError("the qemu source package holds no upstream tarball")
        with tarfile.open(orig) as tf:
            member = next((m for m in tf.getmembers()
                           if m.name.endswith("include/qemu/qemu-plugin.h")), None)
            if member is None:
                raise TargetError(f"{orig.name} holds no include/qemu/qemu-plugin.h")
            (dest / "qemu-plugin.h").write_bytes(tf.extractfile(member).read())
    return dest / "qemu-plugin.h"


def build_plugin(force: bool = False, log=print) -> Path:
    """Build (once) and return the path of the counting plugin for the installed QEMU."""
    out_dir = plugin_dir()
    so = out_dir / PLUGIN_NAME
    src = out_dir / "edgec_icount.c"
    if so.exists() and not force and src.exists() and src.read_text() == PLUGIN_SOURCE:
        return so
    header = os.environ.get("EDGEC_QEMU_PLUGIN_H")
    header_path = Path(header) if header else out_dir / "qemu-plugin.h"
    if not header_path.exists():
        header_path = fetch_plugin_header(out_dir, log)
    out_dir.mkdir(parents=True, exist_ok=True)
    src.write_text(PLUGIN_SOURCE)
    cc = shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    if cc is None:
        raise TargetError("no host C compiler to build the QEMU plugin (apt-get install gcc)")
    tmp_so = out_dir / f".{PLUGIN_NAME}.{os.getpid()}"
    cmd = [cc, "-shared", "-fPIC", "-O2", "-std=gnu99", "-Wall", "-Wextra", "-Werror",
           f"-I{header_path.parent}", str(src), "-o", str(tmp_so)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"building the QEMU plugin failed: "
                             f"{(proc.stderr.strip().splitlines() or ['?'])[0]}")
    os.replace(tmp_so, so)
    log(f"build_tcg_plugin: built {so}")
    return so


# --------------------------------------------------------------------------- symbols
@dataclass
class FunctionRange:
    """One function of the guest executable the plugin tells apart."""

    name: str
    start: int
    end: int
    kind: str  # "r" run, "l" layer, "s" stop


def nm_for(target: Target) -> str:
    """The `nm` that reads the target's executables (aarch64-linux-gnu-nm for its gcc)."""
    cc = target.cc.split()[0]
    if cc.endswith("gcc"):
        cand = cc[:-3] + "nm"
        if shutil.which(cand):
            return cand
    for cand in ("llvm-nm", "nm"):
        if shutil.which(cand):
            return cand
    raise TargetError(f"no nm to read symbols of {target.name} executables "
                      f"(Debian: apt-get install {' '.join(target.apt_packages) or 'binutils'})")


def function_ranges(exe: Path, target: Target, prefix: str) -> list[FunctionRange]:
    """Address ranges of the run function, the layer functions and main, from `nm -S`.

    Compiler clones (`layer_004_QConv.constprop.0`, `.part.0`) keep their base name.
    """
    proc = subprocess.run([nm_for(target), "-S", "--defined-only", str(exe)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"nm failed on {exe.name}: {proc.stderr.strip()[:200]}")
    out: list[FunctionRange] = []
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) != 4 or parts[2] not in "tT":
            continue
        start, size, name = int(parts[0], 16), int(parts[1], 16), parts[3]
        base = name.split(".", 1)[0]
        if base == f"{prefix}_run":
            kind = "r"
        elif base.startswith("layer_"):
            kind = "l"
        elif base == "main":
            kind = "s"
        else:
            continue
        out.append(FunctionRange(base, start, start + size, kind))
    if not any(f.kind == "r" for f in out):
        raise ToolchainError(f"{exe.name} has no symbol {prefix}_run (stripped binary?)")
    return sorted(out, key=lambda f: (f.start, f.name))


# --------------------------------------------------------------------------- counting
@dataclass
class InstructionCount:
    """Instructions per inference, in total and per function (layer_NNN_Op, run)."""

    per_inference: int
    calls: int
    by_function: dict[str, int] = field(default_factory=dict)


def count_instructions(exe: Path, target: Target, prefix: str, inputs: list[np.ndarray],
                       outputs: list[tuple[tuple[int, ...], np.dtype]], runs: int = 1,
                       timeout: float = 1800.0) -> tuple[InstructionCount, list[np.ndarray]]:
    """Run the harness `exe` under the target's emulator with the counting plugin.

    Returns the counts and the outputs (so a counted run can also be checked).
    """
    from edgec.workbench import toolchain

    if not target.runner or "qemu" not in Path(target.runner[0]).name:
        raise TargetError(f"instruction counts need a QEMU-emulated target, not {target.name}")
    plugin = build_plugin()
    ranges = function_ranges(Path(exe), target, prefix)
    with tempfile.TemporaryDirectory(prefix="edgec-icount-") as tmp:
        map_path, out_path = Path(tmp) / "functions.map", Path(tmp) / "counts.txt"
        map_path.write_text("".join(f"{f.start:x} {f.end:x} {f.kind}\n" for f in ranges))
        plugin_arg = f"{plugin},map={map_path},out={out_path}"
        results, _ = toolchain.run(exe, target, inputs, outputs, runs=runs, timeout=timeout,
                                   env={}, runner_args=("-plugin", plugin_arg))
        if not out_path.exists():
            raise ToolchainError("the QEMU counting plugin wrote no counts")
        calls, counts = 0, defaultdict(int)
        for line in out_path.read_text().splitlines():
            parts = line.split()
            if parts[0] == "calls":
                calls = int(parts[1])
            elif parts[0] == "fn":
                counts[ranges[int(parts[1])].name] += int(parts[2])
    if calls < 1:
        raise ToolchainError(f"{prefix}_run was never entered under the counting plugin")
    by_function = {name: n // calls for name, n in sorted(counts.items()) if n}
    total = sum(counts.values()) // calls
    return InstructionCount(total, calls, by_function), results


# --------------------------------------------------------------------------- reports
def layer_type(node) -> str:
    """A layer's type for cost tables: the op, plus the kernel family of convolutions
    ("QConv pointwise", "Conv depthwise", "QConv general")."""
    if node.op not in ("Conv", "QConv"):
        return node.op
    a = node.attrs
    w = node.input(1)
    group = int(a.get("group", 1))
    kernel = list(a.get("kernel_shape") or (w.shape[2:] if w is not None else []))
    strides = list(a.get("strides") or [1] * len(kernel))
    if group > 1 and w is not None and w.shape[1] == 1 and w.shape[0] == group:
        return f"{node.op} depthwise"
    if group == 1 and all(k == 1 for k in kernel + strides) and not any(a.get("pads") or []):
        return f"{node.op} pointwise"
    return f"{node.op} general"


def instruction_summary(result, count: InstructionCount) -> dict:
    """The `edgec bench --json` fields of an emulated run: instructions per inference, MACs,
    instructions per MAC, and per layer type (instructions, MACs, instructions per MAC,
    layers). Instructions in the run function itself (calls between layers) are "(run)"."""
    from edgec.ops import get_op

    nodes = result.graph.nodes
    types: dict[str, dict] = {}
    for fn, n in count.by_function.items():
        m = re.match(r"layer_(\d+)_", fn)
        node = nodes[int(m.group(1))] if m and int(m.group(1)) < len(nodes) else None
        key = layer_type(node) if node is not None else "(run)"
        row = types.setdefault(key, {"instructions": 0, "macs": 0, "layers": 0})
        row["instructions"] += n
        row["macs"] += int(get_op(node.op).macs(node)) if node is not None else 0
        row["layers"] += node is not None
    for row in types.values():
        row["instructions_per_mac"] = (round(row["instructions"] / row["macs"], 4)
                                       if row["macs"] else None)
    macs = int(result.report["macs"])
    return {
        "instructions": int(count.per_inference),
        "macs": macs,
        "instructions_per_mac": round(count.per_inference / macs, 4) if macs else None,
        "instructions_by_layer_type": dict(sorted(types.items(),
                                                  key=lambda kv: -kv[1]["instructions"])),
    }


def portable_twin(target_name: str) -> Target:
    """The target `target_name` with its SIMD kernels switched off: the portable C kernels
    built with the same compiler, flags and emulator (`<name>-portable`, registered on first
    use). Benchmarks compare instruction counts against it ("the portable-C build compiled
    for the same CPU")."""
    from dataclasses import replace

    from edgec.targets import all_targets, get_target, register_target

    name = f"{target_name}-portable"
    if name not in all_targets():
        t = get_target(target_name)
        register_target(replace(t, name=name, isa="generic", features=frozenset(),
                                description=f"{t.description} -- portable C kernels only"))
    return get_target(name)


def count_model(result, feeds: dict[str, np.ndarray], workdir: Path) -> dict:
    """Build a CompileResult for its emulated target, count one inference on `feeds`:
    the `instruction_summary` dict."""
    from edgec.workbench.verify import build_result, harness_io

    exe = build_result(result, Path(workdir))
    ins, specs = harness_io(result.graph, feeds)
    count, _ = count_instructions(exe, result.target, result.report["prefix"], ins, specs)
    return instruction_summary(result, count)
