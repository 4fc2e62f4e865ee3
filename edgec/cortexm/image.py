"""Build a bare-metal semihosting image of a compiled model for a Cortex-M board.

The image is the model library (every generated .c file but the host harness) compiled with
the target's flags and edgec's strict warnings, plus edgec's own firmware sources (firmware/:
vector table and reset handler, semihosting calls, a main that reads in<i>.bin, runs the model
once and writes out<i>.bin), linked with the board's linker script against newlib-nano (libc
for memcpy/memset, libm for the float steps; the library calls no malloc and no printf).
Objects are compiled one by one with -fcallgraph-info=su (-fstack-usage's frames plus the
call edges) so measure.py can bound the stack. The static arena goes to the linker script's
.edgec_arena section through the library's EDGEC_ARENA_SECTION macro.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgec.cortexm.boards import FIRMWARE_DIR, Board, board_for
from edgec.errors import ToolchainError
from edgec.targets import Target
from edgec.workbench.toolchain import (
    FP_FLAGS,
    STRICT_FLAGS,
    TRAP_SANITIZE_FLAGS,
    compiler_for,
    require_tool,
)

FIRMWARE_SOURCES = ("edgec_cm_startup.c", "edgec_cm_semihost.c", "edgec_cm_main.c")
# Unused functions and data are dropped at link time; each object writes its call graph with
# stack frames (<object>.ci, -fcallgraph-info=su: what -fstack-usage gives, plus the edges).
SECTION_FLAGS = ("-ffunction-sections", "-fdata-sections", "-fcallgraph-info=su")
ARENA_SECTION_DEFINE = '-DEDGEC_ARENA_SECTION=__attribute__((section(".edgec_arena")))'
LINK_FLAGS = ("-nostartfiles", "-Wl,--gc-sections", "--specs=nano.specs", "--specs=nosys.specs")
# Not library sources: the host harness and debug dump (the firmware/ example lives in its own
# folder and is not globbed).
HOST_ONLY_SOURCES = ("edgec_harness.c", "edgec_debug_dump.c")


@dataclass
class Image:
    """A linked firmware image and where its pieces are."""

    elf: Path
    board: Board
    build_dir: Path
    library_objects: list[Path]


class ModelTooLargeError(ToolchainError):
    """The model's weights or arena exceed the board's memory (the link fails)."""


# GNU ld: "region `RAM' overflowed by 123 bytes" / "section `.x' will not fit in region `CODE'"
OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes|will not fit in region `(\w+)'")


def _run(cmd: list[str], what: str, board: Board | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["(no message)"]
        overflow = [m for m in map(OVERFLOW.search, lines) if m]
        if board is not None and overflow:
            parts = sorted({f"region {m.group(1)} overflowed by {int(m.group(2)):,} B"
                            for m in overflow if m.group(1)}) or sorted(
                {f"a section does not fit region {m.group(3)}" for m in overflow})
            raise ModelTooLargeError(
                f"the model does not fit QEMU {board.machine}'s memory ({'; '.join(parts)}); "
                "see `edgec report` for its weights and arena, or pick a target whose board "
                "has more memory (docs/cortex-m.md)")
        detail = next((line for line in lines if "error" in line), lines[0])
        raise ToolchainError(f"{what} failed with {cmd[0]}: {detail.strip()}")


def target_flags(target: Target, sanitize: bool = False) -> list[str]:
    """Compiler flags of every object of an image for `target`; `sanitize` adds UBSan in
    trap mode (no runtime: undefined behaviour traps, the fault handler stops QEMU)."""
    flags = [*FP_FLAGS, *target.cflags, *SECTION_FLAGS]
    if sanitize:
        flags = [f for f in flags if not f.startswith("-O")] + ["-O1", *TRAP_SANITIZE_FLAGS]
    return flags


def build_image(src_dir: Path, target: Target, prefix: str, build_dir: Path | None = None,
                cc: str | None = None, main_source: Path | None = None,
                sanitize: bool = False) -> Image:
    """Compile the generated library in `src_dir` and edgec's firmware into an ELF image.

    `main_source` replaces firmware/edgec_cm_main.c (the docs' example firmware does this).
    """
    src_dir = Path(src_dir)
    board = board_for(target)
    compiler = shlex.split(compiler_for(target, cc))
    require_tool(compiler[0], target)
    build_dir = Path(build_dir) if build_dir else src_dir / "cortexm-build"
    build_dir.mkdir(parents=True, exist_ok=True)
    flags = target_flags(target, sanitize)
    library = sorted(p for p in src_dir.glob("*.c") if p.name not in HOST_ONLY_SOURCES)
    objects: list[Path] = []
    for source in library:
        obj = build_dir / f"{source.stem}.o"
        _run([*compiler, *STRICT_FLAGS, *flags, ARENA_SECTION_DEFINE, f"-I{src_dir}", "-c",
              str(source), "-o", str(obj)], f"compiling {source.name}")
        objects.append(obj)
    firmware = [FIRMWARE_DIR / name for name in FIRMWARE_SOURCES]
    if main_source is not None:
        firmware[-1] = Path(main_source)
    fw_objects = []
    for source in firmware:
        obj = build_dir / f"{source.stem}.o"
        _run([*compiler, "-std=gnu99", "-Wall", "-Wextra", "-Werror", *flags,
              f'-DEDGEC_CM_MODEL_H="{prefix}.h"', f"-DEDGEC_CM_PREFIX={prefix}",
              f"-I{src_dir}", f"-I{FIRMWARE_DIR}", "-c", str(source), "-o", str(obj)],
             f"compiling {source.name}")
        fw_objects.append(obj)
    elf = build_dir / f"{prefix}.elf"
    _run([*compiler, *flags, *LINK_FLAGS, f"-T{board.linker_script_path}",
          f"-Wl,-Map={build_dir / (prefix + '.map')}", *map(str, objects + fw_objects),
          "-lm", "-o", str(elf)], f"linking the {board.machine} image", board)
    return Image(elf, board, build_dir, objects)


def build_program(sources: list[Path], target: Target, elf: Path,
                  include_dirs: tuple[Path, ...] = (), defines: tuple[str, ...] = (),
                  with_firmware: bool = True) -> Image:
    """Compile and link C `sources` (plus edgec's start-up and semihosting code unless
    `with_firmware` is false) into an image for `target`'s board in one compiler call; the
    kernel tests and the firmware example use it."""
    board = board_for(target)
    compiler = shlex.split(compiler_for(target))
    require_tool(compiler[0], target)
    elf = Path(elf)
    elf.parent.mkdir(parents=True, exist_ok=True)
    firmware = [FIRMWARE_DIR / n for n in FIRMWARE_SOURCES[:2]] if with_firmware else []
    incs = [f"-I{d}" for d in (*include_dirs, FIRMWARE_DIR)]
    _run([*compiler, "-std=gnu99", "-Wall", "-Wextra", "-Werror", *FP_FLAGS, *target.cflags,
          "-ffunction-sections", "-fdata-sections", *defines, *incs, *LINK_FLAGS,
          f"-T{board.linker_script_path}", *map(str, [*firmware, *sources]), "-lm",
          "-o", str(elf)], f"building {elf.name}")
    return Image(elf, board, elf.parent, [])
