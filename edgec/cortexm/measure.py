"""`edgec bench` on Cortex-M targets: instructions, estimated cycles, flash and RAM.

  instructions   executed inside `<prefix>_run` (the model: layers, the calls between them
                 and the library functions they call), counted by plugin.py's TCG plugin in
                 qemu-system-arm; identical from run to run (no interrupts, fixed addresses).
  cycles_est     the instruction kinds priced by the core's table (cycles.py): an estimate.
  flash_bytes    .text + .rodata (+ .data's initial values) of the linked image, from
                 arm-none-eabi-size: the model library, its libc/libm/libgcc pieces and the
                 few hundred bytes of edgec's start-up and semihosting code.
  ram_bytes      arena + worst-case stack of the run (+ .data/.bss of the image). The stack is
                 the larger of the static bound from the call graph (-fcallgraph-info=su:
                 frames of the model's functions, along the deepest path from the run
                 function; library functions have no record and are listed as unknown) and
                 the measured high-water mark (firmware/edgec_cm_main.c paints the stack).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgec.cortexm.boards import board_for
from edgec.cortexm.cycles import estimate_cycles
from edgec.cortexm.image import Image
from edgec.cortexm.plugin import build_cm_plugin
from edgec.cortexm.runner import build_for_result, run_image
from edgec.errors import ToolchainError
from edgec.workbench.instr_count import InstructionCount, function_ranges, instruction_summary


def count_image(image: Image, target, prefix: str, inputs: list[np.ndarray],
                outputs: list[tuple[tuple[int, ...], np.dtype]]) -> dict:
    """Boot the image under the counting plugin: {"count": InstructionCount, "kinds":
    {kind: n}, "outputs": [...], "stack_bytes": measured high-water mark}."""
    plugin = build_cm_plugin()
    ranges = function_ranges(image.elf, target, prefix)
    with tempfile.TemporaryDirectory(prefix="edgec-cm-count-") as tmp:
        map_path, out_path = Path(tmp) / "functions.map", Path(tmp) / "counts.txt"
        map_path.write_text("".join(f"{f.start:x} {f.end:x} {f.kind}\n" for f in ranges))
        files: dict[str, bytes] = {}
        results = run_image(image, inputs, outputs, files=files,
                            extra=("-plugin", f"{plugin},map={map_path},out={out_path}"))
        if not out_path.exists():
            raise ToolchainError("the Cortex-M counting plugin wrote no counts")
        calls, counts, kinds = 0, defaultdict(int), {}
        for line in out_path.read_text().splitlines():
            parts = line.split()
            if parts[0] == "calls":
                calls = int(parts[1])
            elif parts[0] == "fn":
                counts[ranges[int(parts[1])].name] += int(parts[2])
            elif parts[0] == "kind":
                kinds[parts[1]] = int(parts[2])
    if calls != 1:
        raise ToolchainError(f"{prefix}_run ran {calls} times under the counting plugin, not once")
    by_function = {name: n for name, n in sorted(counts.items()) if n}
    count = InstructionCount(sum(counts.values()), calls, by_function)
    stack = int(np.frombuffer(files["stack.bin"], "<u4")[0]) if "stack.bin" in files else None
    return {"count": count, "kinds": kinds, "outputs": results, "stack_bytes": stack}


def section_sizes(elf: Path, target) -> dict[str, int]:
    """{section: bytes} from `arm-none-eabi-size -A`."""
    size = shutil.which(target.cc.replace("gcc", "size")) or shutil.which("size")
    if size is None:
        raise ToolchainError("arm-none-eabi-size is missing "
                             "(apt-get install binutils-arm-none-eabi)")
    text = subprocess.run([size, "-A", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def static_stack_bound(build_dir: Path, prefix: str) -> tuple[int, list[str]]:
    """(bytes, library functions without a record) of the deepest path from `<prefix>_run`
    in the call graphs (.ci files) of the image's objects."""
    frames: dict[str, int] = {}
    names: dict[str, str] = {}
    edges: dict[str, set] = defaultdict(set)
    node_re = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
    edge_re = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
    for ci in build_dir.glob("*.ci"):
        for line in ci.read_text().splitlines():
            m = node_re.match(line)
            if m:
                title, label = m.groups()
                parts = label.split("\\n")
                names[title] = parts[0]
                b = next((int(p.split()[0]) for p in parts[1:] if p.endswith(")") and
                          " bytes " in p), None)
                if b is not None:
                    frames[title] = b
                continue
            m = edge_re.match(line)
            if m:
                edges[m.group(1)].add(m.group(2))
    by_name = {names[t]: t for t in frames}
    root = by_name.get(f"{prefix}_run")
    if root is None:
        raise ToolchainError(f"no call-graph record of {prefix}_run")
    unknown: set[str] = set()
    memo: dict[str, int] = {}

    def depth(title: str, seen: frozenset) -> int:
        if title in memo:
            return memo[title]
        if title not in frames:
            resolved = by_name.get(names.get(title, title))  # an extern seen from another file
            if resolved is None or resolved in seen:
                unknown.add(names.get(title, title))
                return 0
            title = resolved
        deepest = max((depth(t, seen | {title}) for t in edges.get(title, ()) if t not in seen),
                      default=0)
        memo[title] = frames[title] + deepest
        return memo[title]

    return depth(root, frozenset({root})), sorted(unknown)


def tool_versions(target) -> dict[str, str]:
    """{"qemu_version": ..., "compiler": ...}: the first lines of their --version."""
    from edgec.cortexm.runner import QEMU

    out = {}
    for key, tool in (("qemu_version", QEMU), ("compiler", target.cc)):
        exe = shutil.which(tool)
        text = subprocess.run([exe, "--version"], capture_output=True, text=True,
                              check=False).stdout if exe else ""
        out[key] = (text.strip().splitlines() or ["unknown"])[0]
    return out


def bench_cortexm(result, feeds: dict[str, np.ndarray], workdir: Path) -> dict:
    """The `edgec bench` row of a Cortex-M target (module docstring); outputs are checked
    against nothing here: `edgec verify` does that."""
    from edgec.workbench.compare import harness_io

    target = result.target
    board = board_for(target)
    image = build_for_result(result, workdir)
    ins, specs = harness_io(result.graph, feeds)
    prefix = result.report["prefix"]
    counted = count_image(image, target, prefix, ins, specs)
    row = {"emulated": True, "cortexm": True, "core": board.cpu, "qemu_machine": board.machine,
           **tool_versions(target)}
    row.update(instruction_summary(result, counted["count"]))
    cycles, by_class = estimate_cycles(counted["kinds"], board.cpu)
    row["cycles_est"] = cycles
    row["cycles_per_mac_est"] = round(cycles / row["macs"], 3) if row["macs"] else None
    row["instructions_by_class"] = by_class
    sections = section_sizes(image.elf, target)
    flash = sum(sections.get(s, 0) for s in (".text", ".rodata", ".ARM.exidx", ".data"))
    static_stack, unknown = static_stack_bound(image.build_dir, prefix)
    measured = counted["stack_bytes"]
    stack = max(static_stack, measured or 0)
    arena = int(result.report["arena_bytes"])
    row.update({
        "flash_bytes": flash, "weights_bytes": int(result.report["weights_bytes"]),
        "arena_bytes": arena, "stack_bytes": stack, "stack_static_bytes": static_stack,
        "stack_measured_bytes": measured, "stack_unknown_functions": unknown,
        "ram_bytes": arena + stack,
        "image_ram_bytes": sections.get(".data", 0) + sections.get(".bss", 0)
        + sections.get(".edgec_arena", 0) + stack,
        "fits_device": flash <= board.device_flash_bytes
        and arena + stack <= board.device_ram_bytes,
        "device": board.device,
    })
    return row
