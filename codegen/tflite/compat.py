"""Delegate compatibility of a .tflite: the report.json sections and the terminal table.

`compat_sections(data)` gives report.json's "nnapi" and "gpu" sections for .tflite bytes:
per operator, whether the NNAPI delegate takes it at each feature level (rules in
codegen/tflite/nnapi.py) and whether the GPU delegate does (codegen/tflite/gpu.py), with
the refusing rules' names and reasons. `compat_text` renders them as a table for
`edgec report --nnapi`; `require_nnapi_level` is `edgec compile --nnapi-level N`'s check.
"""

from __future__ import annotations

from edgec.codegen.tflite.compat_view import OpView, read_ops
from edgec.codegen.tflite.gpu import gpu_refusals, litert_analyzer_verdict
from edgec.codegen.tflite.nnapi import FEATURE_LEVELS, refusals
from edgec.errors import EdgecError, UnsupportedError

NNAPI_SOURCE = ("TensorFlow Lite nnapi_delegate.cc NNAPIDelegateKernel::Validate "
                "(no accelerator name given)")
GPU_SOURCE = "TensorFlow Lite tools/versioning/gpu_compatibility.cc"


def _op_label(op: OpView) -> str:
    where = f"{op.subgraph}:" if op.subgraph else ""
    return f"#{where}{op.index} {op.code}"


def nnapi_section(ops: list[OpView]) -> dict:
    """report.json's "nnapi" section for the operators `ops`."""
    rows, accepted = [], {str(lv): 0 for lv in FEATURE_LEVELS}
    for op in ops:
        row = {"index": op.index, "subgraph": op.subgraph, "op": op.code,
               "version": op.version, "accepted": {}, "refused_by": {}}
        for level in FEATURE_LEVELS:
            rules = refusals(op, level)
            row["accepted"][str(level)] = not rules
            accepted[str(level)] += not rules
            if rules:
                row["refused_by"][str(level)] = [{"rule": r.name, "reason": r.reason}
                                                 for r in rules]
        rows.append(row)
    return {"source": NNAPI_SOURCE, "levels": {str(k): v for k, v in FEATURE_LEVELS.items()},
            "operators": len(ops), "accepted": accepted, "ops": rows}


def gpu_section(ops: list[OpView], data: bytes, analyzer: bool = True) -> dict:
    """report.json's "gpu" section: the delegate's rules per operator and (`analyzer`) what
    LiteRT's analyzer says (a child process, about a second)."""
    rows = []
    for op in ops:
        rules = gpu_refusals(op)
        rows.append({"index": op.index, "subgraph": op.subgraph, "op": op.code,
                     "accepted": not rules,
                     "refused_by": [{"rule": r.name, "reason": r.reason} for r in rules]})
    return {"source": GPU_SOURCE, "operators": len(ops),
            "accepted": sum(r["accepted"] for r in rows), "ops": rows,
            "litert_analyzer": litert_analyzer_verdict(data) if analyzer else
            {"available": False, "compatible": None, "warnings": []}}


def compat_sections(data: bytes, analyzer: bool = True) -> dict:
    """{"nnapi": ..., "gpu": ...} for the .tflite bytes `data`; `analyzer=False` skips
    LiteRT's analyzer (the rules alone take milliseconds)."""
    ops = read_ops(data)
    return {"nnapi": nnapi_section(ops), "gpu": gpu_section(ops, data, analyzer)}


def compat_text(sections: dict) -> str:
    """The per-operator table of `compat_sections`, then one line per refusal."""
    nn, gpu = sections["nnapi"], sections["gpu"]
    levels = list(nn["levels"])
    head = ["#", "op", "v", *[f"API{lv}" for lv in levels], "GPU"]
    rows = [head]
    for n_row, g_row in zip(nn["ops"], gpu["ops"]):
        rows.append([str(n_row["index"]), n_row["op"], str(n_row["version"]),
                     *["yes" if n_row["accepted"][lv] else "no" for lv in levels],
                     "yes" if g_row["accepted"] else "no"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    total = nn["operators"]
    summary = ", ".join(f"API {lv} ({nn['levels'][lv]}) {nn['accepted'][lv]}/{total}"
                        for lv in levels)
    out = [f"NNAPI delegate accepts: {summary}; GPU delegate {gpu['accepted']}/{total}",
           *lines]
    refused, used = [], {}
    for n_row, g_row in zip(nn["ops"], gpu["ops"]):
        by_rules: dict[tuple[str, ...], list[str]] = {}
        for lv, rules in n_row["refused_by"].items():
            by_rules.setdefault(tuple(x["rule"] for x in rules), []).append(lv)
            used.update((x["rule"], x["reason"]) for x in rules)
        parts = [f"API {', '.join(lvs)}: {', '.join(names)}" for names, lvs in by_rules.items()]
        if g_row["refused_by"]:
            parts.append("GPU: " + ", ".join(x["rule"] for x in g_row["refused_by"]))
            used.update((x["rule"], x["reason"]) for x in g_row["refused_by"])
        if parts:
            refused.append(f"  #{n_row['index']} {n_row['op']}: " + "; ".join(parts))
    if refused:
        out += ["refused by:", *refused, "rules:",
                *[f"  {name}: {reason}" for name, reason in used.items()]]
    verdict = gpu["litert_analyzer"]
    if verdict["available"]:
        said = {True: "compatible", False: "not compatible"}.get(verdict["compatible"],
                                                                 verdict.get("error", "?"))
        out.append(f"LiteRT's model analyzer (GPU check) says: {said}")
    return "\n".join(out)


def tflite_bytes(files: dict) -> bytes:
    """The .tflite among a compile result's files; an error naming the fix when none."""
    for name, content in files.items():
        if str(name).endswith(".tflite"):
            return content if isinstance(content, bytes) else content.encode("latin-1")
    raise EdgecError("NNAPI/GPU compatibility needs a TFLite target: use -t tflite-int8 or "
                     "-t tflite-fp32")


def require_nnapi_level(data: bytes, level: int) -> None:
    """Raise an UnsupportedError naming every operator NNAPI at API `level` refuses."""
    if level < min(FEATURE_LEVELS):
        raise EdgecError(f"--nnapi-level {level}: NNAPI starts at API level 27 (1.0); "
                         "use 27, 28, 29, 30 or 31")
    checked = min(level, max(FEATURE_LEVELS))
    bad = [(op, refusals(op, checked)) for op in read_ops(data)]
    bad = [(op, rules) for op, rules in bad if rules]
    if not bad:
        return
    shown = "; ".join(f"{_op_label(op)} ({', '.join(r.name for r in rules)})"
                      for op, rules in bad[:8])
    more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
    raise UnsupportedError(
        f"NNAPI at API level {level} ({FEATURE_LEVELS[checked]}) refuses {len(bad)} of "
        f"{len(read_ops(data))} operators: {shown}{more}; see `edgec report --nnapi` for "
        f"the reasons, or target API level 29+ (NNAPI 1.2) which takes per-channel int8")
