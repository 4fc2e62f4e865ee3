"""Peak resident weights of a `--weights external` build, for `edgec bench --weights external`.

The build's test harness is linked with a probe (csrc/weights_rss_probe.c) that sums the Rss of
the weights file's mappings in /proc/self/smaps after every layer and before every partition
change (inside a layer too), and run once in a fresh process: the first run after the file was
mapped, as tests/codegen/test_external_weights.py measures it. The bench row gets the peak with
the requested partitions and with one partition (the whole file ends up resident).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from edgec.compiler import CompileOptions, compile_model, write_output
from edgec.workbench import toolchain
from edgec.workbench.compare import harness_io
from edgec.workbench.csources import c_source

PROBE_FLAGS = ("-DEDGEC_DEBUG_DUMP", "-DEDGEC_WEIGHTS_PROBE")


def weights_rss_peak(result, feeds: dict, workdir: Path) -> int:
    """Peak bytes of the weights file resident during one run of `result` (a
    `--weights external` CompileResult) on `feeds`."""
    out = write_output(result.files, workdir)
    (out / "weights_rss_probe.c").write_text(c_source("weights_rss_probe.c"))
    exe = toolchain.build(out, result.target, extra_cflags=PROBE_FLAGS)
    ins, specs = harness_io(result.graph, feeds)
    peak_file = Path(workdir).parent / f"{Path(workdir).name}.rss-peak"
    toolchain.run(exe, result.target, ins, specs,
                  env={**os.environ, "EDGEC_RSS_PEAK_FILE": str(peak_file)})
    return int(peak_file.read_text().split()[0]) * 1024


def weights_rss_fields(result, model_path: Path, options: CompileOptions, feeds: dict,
                       workdir: Path) -> dict:
    """The bench row's weights fields: file bytes and peak resident bytes of `result` (built
    with `options.partitions`), and the peak of the same model with one partition."""
    prefix = result.report["prefix"]
    file_bytes = len(result.files[f"{prefix}.weights"])
    peak = weights_rss_peak(result, feeds, workdir / "rss-partitions")
    if options.partitions > 1:
        one = compile_model(model_path, dataclasses.replace(options, partitions=1))
        peak_1 = weights_rss_peak(one, feeds,
                                  workdir / "rss-one")
    else:
        peak_1 = peak
    return {"weights": "external", "partitions": options.partitions,
            "weights_file_bytes": file_bytes, "weights_rss_peak_bytes": peak,
            "weights_rss_peak_bytes_1partition": peak_1,
            "weights_rss_share": round(peak / max(file_bytes, 1), 3)}
