"""The Cortex-M instruction counter: a QEMU TCG plugin for qemu-system-arm.

Like edgec/workbench/instr_count.py's counter (same map file: "START END KIND" lines, KIND
r = the model's run function, l = a layer function, s = main, which stops counting), but it also
counts every executed instruction by its *kind*, so that cycles.py can price it with a core's
timing table. The kind of an instruction is its mnemonic from QEMU's disassembler (e.g.
`smlad`, `ldrsb.w`, `vmladava.s8`), plus "/q" when it names a vector register q0-q7 (Helium)
and "/nN" for register lists of N registers (push, pop, ldm, stm, vpush ...). QEMU 7.2's
disassembler does not decode most Helium and low-overhead-loop instructions: it prints them
as `.byte` (kind ".byte/hXX", XX = the high byte of the first halfword, which tells the
encoding space apart) or as coprocessor `ldc`/`stc` (Helium's vector loads and stores share
that space). Kinds are interned at translation time, so execution only adds to counters.

Output lines: "calls N", "fn INDEX COUNT" (per map entry) and "kind NAME COUNT".
Built once per installed QEMU next to the arm64 plugin, with the same plugin API header
(tools/setup.sh fetches it). The C source is edgec/workbench/csrc/cm_icount_plugin.c.
"""

from __future__ import annotations

from pathlib import Path

from edgec.workbench.instr_count import build_plugin

PLUGIN_NAME = "libedgec_cm_icount.so"
PLUGIN_SOURCE_FILE = "cm_icount_plugin.c"  # in edgec/workbench/csrc/


def build_cm_plugin(force: bool = False) -> Path:
    """Build (once) and return the Cortex-M counting plugin for the installed QEMU, with the
    plugin API header the arm64 counter uses (EDGEC_QEMU_PLUGIN_H points at another)."""
    return build_plugin(force, log=lambda _line: None, source_file=PLUGIN_SOURCE_FILE,
                        plugin_name=PLUGIN_NAME)
