"""Build and run generated C: host compilers, cross compilers and emulators.

`build` compiles a generated output directory (library + edgec_harness.c) into an executable
with the target's compiler and flags; `run` executes it (through the target's runner, e.g.
qemu-aarch64) on numpy inputs and returns the outputs.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgec.errors import TargetError, ToolchainError
from edgec.targets import Target

STRICT_FLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
# Every target: no contraction of a*b+c into a fused multiply-add unless a kernel asks for
# it with an intrinsic. Float steps between int8 layers (QuantizeLinear, DequantizeLinear,
# float islands) then round the same on every ISA and in the numpy reference (GCC in ISO
# mode already defaults to this; clang contracts within expressions by default).
FP_FLAGS = ("-ffp-contract=off",)
SANITIZE_FLAGS = (
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-g",
)
# Emulated (cross-compiled, static) targets: no sanitizer runtime exists for them here, so
# undefined behaviour (including out-of-bounds indexing of arrays of known size) traps.
TRAP_SANITIZE_FLAGS = (
    "-fsanitize=undefined",
    "-fsanitize-undefined-trap-on-error",
    "-fno-omit-frame-pointer",
    "-g",
)


def compiler_for(target: Target, cc: str | None = None) -> str:
    """The C compiler command: explicit `cc`, then $CC for host targets, then the target's."""
    if cc:
        return cc
    if target.cc == "cc" and os.environ.get("CC"):
        return os.environ["CC"]
    return target.cc


def require_tool(tool: str, target: Target) -> str:
    """Path of `tool`; TargetError saying what to install when it is missing."""
    exe = shutil.which(tool)
    if exe is None:
        pkgs = " ".join(target.apt_packages) or "a C compiler (gcc or clang)"
        raise TargetError(
            f"'{tool}' is not installed, needed for target {target.name}; "
            f"install it (Debian: apt-get install {pkgs})"
        )
    return exe


def compile_checked(cmd: list[str], what: str) -> None:
    """Run one compiler command; ToolchainError with its first error line when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        detail = next((ln for ln in lines if "error" in ln), lines[0] if lines else "")
        raise ToolchainError(f"building {what} failed: {detail.strip()}")


def build(
    src_dir: Path,
    target: Target,
    exe: Path | None = None,
    cc: str | None = None,
    sanitize: bool = False,
    extra_cflags: tuple[str, ...] = (),
    harness: str = "edgec_harness.c",
) -> Path:
    """Compile every generated .c file in `src_dir` plus the harness into an executable."""
    src_dir = Path(src_dir)
    compiler = compiler_for(target, cc)
    require_tool(shlex.split(compiler)[0], target)
    sources = sorted(p for p in src_dir.glob("*.c") if p.name != "edgec_harness.c")
    sources.append(src_dir / harness)
    exe = Path(exe) if exe else src_dir / "edgec_harness"
    cflags = list(STRICT_FLAGS) + list(FP_FLAGS) + list(target.cflags)
    if sanitize:
        flags = SANITIZE_FLAGS if target.host_runnable else TRAP_SANITIZE_FLAGS
        cflags = [f for f in cflags if not f.startswith("-O")] + ["-O1", *flags]
    cmd = [*shlex.split(compiler), *cflags, *extra_cflags, f"-I{src_dir}",
           *map(str, sources), "-o", str(exe), *target.ldflags]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        first = (proc.stderr or proc.stdout).strip().splitlines()
        detail = next((line for line in first if "error" in line), first[0] if first else "")
        raise ToolchainError(
            f"the generated C failed to compile with {compiler}: {detail.strip()}"
        )
    return exe


def run(
    exe: Path,
    target: Target,
    inputs: list[np.ndarray],
    outputs: list[tuple[tuple[int, ...], np.dtype]],
    runs: int = 1,
    timeout: float = 600.0,
    env: dict | None = None,
    runner_args: tuple[str, ...] = (),
) -> tuple[list[np.ndarray], list[float]]:
    """Run a built harness; returns (outputs, per-run nanoseconds when runs > 1).

    `runner_args` go to the emulator after its own arguments (e.g. a QEMU `-plugin`); `env`
    replaces the environment (`{}` runs it like `env -i`).
    """
    with tempfile.TemporaryDirectory(prefix="edgec-run-") as tmp:
        tmpd = Path(tmp)
        in_paths, out_paths = [], []
        for i, arr in enumerate(inputs):
            p = tmpd / f"in{i}.bin"
            np.ascontiguousarray(arr).tofile(p)
            in_paths.append(str(p))
        for i in range(len(outputs)):
            out_paths.append(str(tmpd / f"out{i}.bin"))
        runner = list(target.runner)
        if runner:
            runner[0] = require_tool(runner[0], target)
        elif runner_args:
            raise TargetError(f"target {target.name} runs natively: no emulator to pass "
                              f"{runner_args[0]} to")
        cmd = [*runner, *runner_args, str(exe), str(runs), *in_paths, *out_paths]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise ToolchainError(
                f"the compiled model did not finish within {timeout:.0f} s") from None
        if proc.returncode != 0:
            msg = (proc.stderr.strip().splitlines() or ["(no message)"])
            raise ToolchainError(
                f"the compiled model exited with code {proc.returncode}: {msg[0]}"
                + (f" ... {msg[-1]}" if len(msg) > 1 else "")
            )
        results = []
        for path, (shape, dtype) in zip(out_paths, outputs):
            results.append(np.fromfile(path, dtype=dtype).reshape(shape))
        times = [float(line.split()[1]) for line in proc.stdout.splitlines()
                 if line.startswith("edgec-run-ns ")]
        return results, times
