"""Which QEMU board runs which Cortex-M target, with which CPU and linker script.

QEMU's MPS2/MPS3 FPGA-image boards boot bare-metal ELF images (`-kernel`) and support
semihosting. There is no Cortex-M0 board; the ARMv6-M build (`-mcpu=cortex-m0`, a subset of
ARMv7-M) runs on the Cortex-M3 board mps2-an385. `device_*` are the memories of a typical
part with that core (the board has more), used to say whether a model fits a real device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgec.errors import TargetError
from edgec.targets import Target

FIRMWARE_DIR = Path(__file__).parent / "firmware"


@dataclass(frozen=True)
class Board:
    """A QEMU machine and the memory of a typical device with the same core."""

    machine: str
    cpu: str  # the core the build is for (-mcpu)
    linker_script: str  # file in firmware/
    device: str
    device_flash_bytes: int
    device_ram_bytes: int

    @property
    def linker_script_path(self) -> Path:
        """Absolute path of the board's linker script."""
        return FIRMWARE_DIR / self.linker_script


KIB = 1024
BOARDS: dict[str, Board] = {
    "cortex-m0": Board("mps2-an385", "cortex-m0", "edgec_cm_mps2_an385.ld",
                       "STM32G071 (Cortex-M0+, 128 KiB flash, 36 KiB SRAM)", 128 * KIB, 36 * KIB),
    "cortex-m4": Board("mps2-an386", "cortex-m4", "edgec_cm_mps2_an386.ld",
                       "STM32L4R5 (Cortex-M4F, 2 MiB flash, 640 KiB SRAM; MLPerf Tiny's board)",
                       2048 * KIB, 640 * KIB),
    "cortex-m7": Board("mps2-an500", "cortex-m7", "edgec_cm_mps2_an500.ld",
                       "STM32F767 (Cortex-M7, 2 MiB flash, 512 KiB SRAM)", 2048 * KIB, 512 * KIB),
    "cortex-m55": Board("mps3-an547", "cortex-m55", "edgec_cm_mps3_an547.ld",
                        "Alif Ensemble E3 class (Cortex-M55, 2 MiB MRAM used, 512 KiB DTCM)",
                        2048 * KIB, 512 * KIB),
}


def is_cortexm(target: Target) -> bool:
    """True for the bare-metal Cortex-M targets (cortex-m*-int8/fp32)."""
    return target.name.startswith("cortex-m") and getattr(target, "bare_metal", False)


def board_for(target: Target) -> Board:
    """The board that runs `target`'s images; TargetError for other targets."""
    core = target.name.split("-")[0] + "-" + target.name.split("-")[1] if "-" in target.name \
        else ""
    if not is_cortexm(target) or core not in BOARDS:
        raise TargetError(f"target {target.name} is not a Cortex-M target")
    return BOARDS[core]
