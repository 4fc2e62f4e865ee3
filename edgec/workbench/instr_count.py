"""Deterministic cost on emulated targets: guest instructions counted by a QEMU TCG plugin.

Emulated wall time means nothing, so `edgec bench` on a target with a `runner` (qemu-aarch64)
counts executed guest instructions instead. The counter is a small TCG plugin (csrc/
icount_plugin.c) that QEMU loads with `-plugin`. It counts only inside the model: from the first
instruction of `<prefix>_run` until execution is back in the harness's `main`, attributing every
translated block to the layer function (`layer_NNN_Op`) it lies in; blocks outside the model's
functions (memcpy, expf from libc/libm) count for the layer that called them. Function address
ranges come from the symbol table of the (static, unstripped) executable (`nm -S`).

Debian ships QEMU with plugin support but neither plugins nor the plugin API header. The
header comes from Debian's own qemu source package for the installed QEMU version; fetching it
is system set-up, done once by `tools/setup.sh test` (as root), which puts it in the plugin's
cache directory (EDGEC_CACHE_DIR, else ~/.cache/edgec). `build_plugin` compiles the plugin
(edgec/workbench/csrc/icount_plugin.c) with the host C compiler into that directory, and says
what to run when the header is missing. `tools/build_tcg_plugin.py` does the same from the
command line.

Counts are identical across runs: the harness runs under an empty environment (`env -i`), the
binary is static (fixed addresses) and nothing inside the run function depends on time.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgec.errors import TargetError, ToolchainError
from edgec.ops import get_op
from edgec.targets import Target, all_targets, get_target, register_target
from edgec.workbench import toolchain
from edgec.workbench.compare import harness_io
from edgec.workbench.csources import c_source
from edgec.workbench.verify import build_result

PLUGIN_NAME = "libedgec_icount.so"
PLUGIN_SOURCE_FILE = "icount_plugin.c"  # in edgec/workbench/csrc/
SETUP_COMMAND = "tools/setup.sh test"  # as root: fetches qemu-plugin.h, builds the plugin


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


def build_plugin(force: bool = False, log=print, source_file: str = PLUGIN_SOURCE_FILE,
                 plugin_name: str = PLUGIN_NAME) -> Path:
    """Build (once) and return the path of a counting plugin for the installed QEMU: by
    default the arm64 counter; the Cortex-M one names its own source in csrc/ and library."""
    out_dir = plugin_dir()
    so = out_dir / plugin_name
    src = out_dir / source_file
    source = c_source(source_file)
    if so.exists() and not force and src.exists() and src.read_text() == source:
        return so
    header = os.environ.get("EDGEC_QEMU_PLUGIN_H")
    header_path = Path(header) if header else out_dir / "qemu-plugin.h"
    if not header_path.exists():
        upstream, _ = qemu_debian_version()
        raise TargetError(
            f"the QEMU plugin header qemu-plugin.h is missing from {out_dir}; run "
            f"`{SETUP_COMMAND}` once as root (it takes it from Debian's qemu source package), "
            f"or set EDGEC_QEMU_PLUGIN_H to a qemu-plugin.h of QEMU {upstream}")
    out_dir.mkdir(parents=True, exist_ok=True)
    src.write_text(source)
    cc = shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    if cc is None:
        raise TargetError("no host C compiler to build the QEMU plugin (apt-get install gcc)")
    tmp_so = out_dir / f".{plugin_name}.{os.getpid()}"
    cmd = [cc, "-shared", "-fPIC", "-O2", "-std=gnu99", "-Wall", "-Wextra", "-Werror",
           f"-I{header_path.parent}", str(src), "-o", str(tmp_so)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolchainError(f"building the QEMU plugin {source_file} failed: "
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
    name = f"{target_name}-portable"
    if name not in all_targets():
        t = get_target(target_name)
        register_target(replace(t, name=name, isa="generic",
                                description=f"{t.description} -- portable C kernels only"))
    return get_target(name)


def count_model(result, feeds: dict[str, np.ndarray], workdir: Path) -> dict:
    """Build a CompileResult for its emulated target, count one inference on `feeds`:
    the `instruction_summary` dict."""
    exe = build_result(result, Path(workdir))
    ins, specs = harness_io(result.graph, feeds)
    count, _ = count_instructions(exe, result.target, result.report["prefix"], ins, specs)
    return instruction_summary(result, count)
