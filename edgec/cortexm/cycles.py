"""Estimated cycles from executed instruction kinds: a cost table per Cortex-M core.

The counting plugin (plugin.py) reports how many instructions of each kind (mnemonic, "/q"
for Helium vector registers, "/nN" for register lists) ran inside the model. `classify` puts
a kind in a class and each core's table gives the class's cycles. This is an *estimate* from
the processors' published instruction timings, not a pipeline model: it ignores wait states
of the memories (flash accelerators, caches), load-use stalls, dual issue beyond the averages
below, and which branches are taken.

Sources (Arm technical reference manuals, "instruction timings"/"cycle timing" tables):
  Cortex-M0  (DDI 0432C, 3.3): ALU, MUL (fast multiplier) 1; LDR/STR 2; LDM/STM/PUSH/POP 1+N;
             B taken 3, not taken 1 (charged 2); BL 4.
  Cortex-M4  (DDI 0439B, 3.3.1): ALU 1; MUL, MLA, SMLAD, SMULL, SMLAL 1; SDIV/UDIV 2-12
             (charged 7); LDR 2 (1 when pipelined behind another load: not modelled); STR 1;
             LDM/STM/PUSH/POP 1+N; branch 1+P, P = 1-3 (charged 2); SIMD/saturating 1.
             FPU (DDI 0439B, 7.2.3): VADD/VSUB/VMUL/VCVT 1, VMLA/VFMA 3, VDIV/VSQRT 14,
             VLDR 2, VSTR 2.
  Cortex-M7  (DDI 0489, and Arm's M7 software optimisation notes): dual issue of most pairs of
             ALU and load/store instructions, single-cycle loads from TCM, branch prediction;
             charged ALU 0.5, load/store 1, MUL/MAC 1, branch 1, SDIV 7, FP as M4 but VMLA 2.
  Undecoded kinds (plugin.py): ".byte" in the coprocessor encoding space and ldc/stc are
  Helium instructions; other ".byte" kinds (ARMv8.1-M's LE/DLS/WLS loop instructions, VCTP)
  are class "other" at 1 cycle.
  Cortex-M55 (DDI 0553, Helium "beat" model): scalar as M4 with single-cycle loads from TCM;
             a 128-bit Helium instruction is 4 beats on a dual-beat datapath = 2 cycles
             (VMLADAV, VMLA, VADD, VLDRB.S8 ...); overlap of a vector load with the next MAC
             (Arm's "instruction overlapping") is not modelled, so real loops run faster.
"""

from __future__ import annotations

import re

CLASSES = ("alu", "mul", "div", "load", "store", "multi", "branch", "call", "fp", "fp_mac",
           "fp_div", "vector", "vector_mem", "other")

# cycles per instruction of each class; "multi" (LDM/STM/PUSH/POP of N registers) costs
# MULTI_BASE + N * MULTI_PER_REG.
COST: dict[str, dict[str, float]] = {
    "cortex-m0": {"alu": 1, "mul": 1, "div": 1, "load": 2, "store": 2, "multi": 1,
                  "branch": 2, "call": 4, "fp": 1, "fp_mac": 1, "fp_div": 1, "vector": 1,
                  "vector_mem": 1, "other": 1},
    "cortex-m4": {"alu": 1, "mul": 1, "div": 7, "load": 2, "store": 1, "multi": 1,
                  "branch": 2, "call": 2, "fp": 1, "fp_mac": 3, "fp_div": 14, "vector": 1,
                  "vector_mem": 1, "other": 1},
    "cortex-m7": {"alu": 0.5, "mul": 1, "div": 7, "load": 1, "store": 1, "multi": 1,
                  "branch": 1, "call": 1, "fp": 1, "fp_mac": 2, "fp_div": 14, "vector": 1,
                  "vector_mem": 1, "other": 1},
    "cortex-m55": {"alu": 1, "mul": 1, "div": 7, "load": 1, "store": 1, "multi": 1,
                   "branch": 2, "call": 2, "fp": 1, "fp_mac": 2, "fp_div": 14, "vector": 2,
                   "vector_mem": 2, "other": 1},
}
MULTI_PER_REG = 1

_COND = r"(eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al)?"
_BRANCH = re.compile(rf"^(b{_COND}|bx{_COND}|cbn?z|tb[bh])$")
_CALL = re.compile(rf"^(bl{_COND}|blx{_COND})$")
_DIV = re.compile(r"^[su]div")
_MUL = re.compile(r"^(mul|mla|mls|[su]mull|[su]mlal|smul|smla|smls|smmul|smmla|smmls|smua|"
                  r"smus|smlad|smlsd|umaal)")


def classify(kind: str) -> tuple[str, int]:
    """(class, registers in a list) of a plugin instruction kind such as "ldrsb.w",
    "push/n5" or "vmladava.s8/q"."""
    parts = kind.split("/")
    mnemonic = parts[0].lower()
    vector = "q" in parts[1:]
    regs = next((int(p[1:]) for p in parts[1:] if p.startswith("n") and p[1:].isdigit()), 0)
    base = mnemonic.split(".")[0]
    if mnemonic == ".byte":  # not decoded by QEMU's disassembler (plugin.py): by encoding
        high = next((int(p[1:], 16) for p in parts[1:] if p.startswith("h")), 0)
        if 0xEC <= high <= 0xEF or high >= 0xFC:
            return "vector", 0  # coprocessor space: Helium (MVE) data processing
        return "other", 0  # 0xF0-0xF7: LE/DLS/WLS loops, VCTP and other 32-bit control
    if base in ("ldc", "ldcl", "stc", "stcl"):  # no coprocessors on M: Helium VLDR/VSTR
        return "vector_mem", 0
    if base in ("push", "pop", "vpush", "vpop") or re.match(r"^(ldm|stm|vldm|vstm)", base):
        return "multi", regs
    if base.startswith("v"):
        if re.match(r"^v(ld|st)", base):
            return ("vector_mem" if vector else "load" if base.startswith("vld") else "store"), 0
        if vector:
            return "vector", 0
        if re.match(r"^v(div|sqrt)", base):
            return "fp_div", 0
        if re.match(r"^v(f?n?m[la]|fm[as])", base):
            return "fp_mac", 0
        return "fp", 0
    if base.startswith("ldr") or base == "ldrex":
        return "load", 0
    if base.startswith("str") or base == "strex":
        return "store", 0
    if _CALL.match(base):
        return "call", 0
    if _BRANCH.match(base):
        return "branch", 0
    if _DIV.match(base):
        return "div", 0
    if _MUL.match(base):
        return "mul", 0
    if base in ("?", "") or base.startswith("udf"):
        return "other", 0
    return "alu", 0


def estimate_cycles(kinds: dict[str, int], core: str) -> tuple[int, dict[str, int]]:
    """(estimated cycles, executed instructions per class) for instruction kind counts on
    `core` ("cortex-m4" ...)."""
    table = COST[core]
    cycles = 0.0
    by_class = dict.fromkeys(CLASSES, 0)
    for kind, count in kinds.items():
        cls, regs = classify(kind)
        by_class[cls] += count
        cost = table[cls] + (MULTI_PER_REG * max(regs, 1) if cls == "multi" else 0)
        cycles += cost * count
    return round(cycles), {k: v for k, v in by_class.items() if v}
