"""Run Cortex-M images in qemu-system-arm: what `edgec verify` does on cortex-m targets.

Inputs and outputs travel through semihosting file I/O: the runner writes in<i>.bin (raw
little-endian arrays in the model's layout) into a fresh directory, starts QEMU there with
`-semihosting-config enable=on,target=native`, and the image's main (firmware/edgec_cm_main.c)
reads them, runs the model once and writes out<i>.bin before it stops QEMU with SYS_EXIT.
One QEMU boot per sample; a boot of a small model takes a fraction of a second.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgec.cortexm.boards import Board
from edgec.cortexm.image import Image, build_image
from edgec.errors import TargetError, ToolchainError

QEMU = "qemu-system-arm"
QEMU_FLAGS = ("-display", "none", "-monitor", "none", "-serial", "none",
              "-semihosting-config", "enable=on,target=native")


def qemu_command(board: Board, elf: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """The qemu-system-arm command line that boots `elf` on `board`."""
    exe = shutil.which(QEMU)
    if exe is None:
        raise TargetError(f"'{QEMU}' is not installed, needed for Cortex-M targets; install it "
                          "(Debian: apt-get install qemu-system-arm)")
    return [exe, "-machine", board.machine, *QEMU_FLAGS, *extra, "-kernel", str(elf)]


def run_image(image: Image, inputs: list[np.ndarray],
              outputs: list[tuple[tuple[int, ...], np.dtype]], extra: tuple[str, ...] = (),
              timeout: float = 600.0, files: dict[str, bytes] | None = None
              ) -> list[np.ndarray]:
    """Boot `image` once on `inputs` (model order); the outputs as arrays. `extra` goes on
    QEMU's command line (a -plugin); `files`, when given, receives every other file the image
    wrote (stack.bin) by name."""
    with tempfile.TemporaryDirectory(prefix="edgec-cm-run-") as tmp:
        tmpd = Path(tmp)
        for i, arr in enumerate(inputs):
            np.ascontiguousarray(arr).tofile(tmpd / f"in{i}.bin")
        cmd = qemu_command(image.board, image.elf, extra)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  cwd=tmpd, env={}, check=False)
        except subprocess.TimeoutExpired:
            raise ToolchainError(f"the {image.board.machine} image did not finish within "
                                 f"{timeout:.0f} s") from None
        if proc.returncode != 0:
            text = (proc.stdout + proc.stderr).strip().splitlines() or ["(no message)"]
            raise ToolchainError(f"the {image.board.machine} image stopped with status "
                                 f"{proc.returncode}: {text[-1]}")
        results = []
        for i, (shape, dtype) in enumerate(outputs):
            path = tmpd / f"out{i}.bin"
            if not path.exists():
                raise ToolchainError(f"the {image.board.machine} image wrote no out{i}.bin")
            results.append(np.fromfile(path, dtype=dtype).reshape(shape))
        if files is not None:
            files.update({p.name: p.read_bytes() for p in tmpd.iterdir()
                          if not p.name.startswith(("in", "out"))})
        return results


def build_for_result(result, workdir: Path, cc: str | None = None,
                     sanitize: bool = False) -> Image:
    """Write a CompileResult's files under `workdir` and build its image."""
    from edgec.compiler import write_output

    out_dir = write_output(result.files, Path(workdir) / "out")
    return build_image(out_dir, result.target, result.report["prefix"],
                       Path(workdir) / "build", cc=cc, sanitize=sanitize)


def run_compiled(result, feeds_list: list[dict[str, np.ndarray]], workdir: Path,
                 sanitize: bool = False, cc: str | None = None) -> list[dict[str, np.ndarray]]:
    """edgec.workbench.verify.run_compiled for Cortex-M targets: build once, boot once per
    sample."""
    from edgec.workbench.compare import harness_io

    image = build_for_result(result, workdir, cc=cc, sanitize=sanitize)
    g = result.graph
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    results = []
    for feeds in feeds_list:
        ins, specs = harness_io(g, feeds)
        results.append(dict(zip(out_names, run_image(image, ins, specs))))
    return results



def per_layer_refusal(target) -> TargetError:
    """The one-line error of `edgec verify --per-layer` (and golden checks) on a Cortex-M
    target: the per-layer dump needs a hosted harness (files, printf)."""
    return TargetError(f"--per-layer needs a hosted build and {target.name} runs bare metal; "
                       "run it with -t generic-int8 (or generic-fp32), whose portable kernels "
                       "the Cortex-M targets use today")
