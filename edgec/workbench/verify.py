"""`edgec verify`: compile, build with the target's toolchain, run, compare with a reference
(the comparison, its error measures and the fp32 band: edgec/workbench/compare.py). Targets
that do not build C on the host run elsewhere: TFLite in LiteRT (codegen/tflite/runner.py),
CoreML in the numpy MIL evaluator (edgec/workbench/coreml_verify.py), Cortex-M in
qemu-system-arm (edgec/cortexm/runner.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from edgec.compiler import compile_model, write_output
from edgec.targets import get_target
from edgec.workbench import toolchain
from edgec.workbench.compare import (
    DEFAULT_RTOL,
    VerifyResult,
    compare_outputs,
    harness_io,
    load_inputs,
    random_inputs,
    split_batches,
)
from edgec.workbench.coreml_verify import run_package, verify_coreml


def build_result(result, workdir: Path, **build_options) -> Path:
    """Write a CompileResult's files under `workdir` and build its harness; the executable."""
    out_dir = write_output(result.files, Path(workdir) / "out")
    return toolchain.build(out_dir, result.target, **build_options)


def run_compiled(result, feeds_list: list[dict[str, np.ndarray]], workdir: Path,
                 sanitize: bool = False, cc: str | None = None,
                 exe: Path | None = None) -> list[dict[str, np.ndarray]]:
    """Write, build and run a CompileResult on each sample; outputs by public name. `exe`:
    a harness `build_result` already built for this result (C targets), run as it is."""
    if result.target.backend == "tflite":  # LiteRT's interpreter (codegen/tflite/runner.py)
        from edgec.codegen.tflite.runner import run_compiled as run_tflite

        return run_tflite(result, feeds_list)
    if result.target.backend == "coreml":  # the package's MIL program, evaluated in numpy
        return run_package(result, feeds_list, Path(workdir))
    if getattr(result.target, "bare_metal", False):  # Cortex-M: qemu-system-arm images
        from edgec.cortexm.runner import run_compiled as run_on_board  # builds on this module

        return run_on_board(result, feeds_list, workdir, sanitize=sanitize, cc=cc)
    exe = exe or build_result(result, workdir, sanitize=sanitize, cc=cc)
    g = result.graph
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    results = []
    for feeds in feeds_list:
        ins, specs = harness_io(g, feeds)
        outs, _ = toolchain.run(exe, result.target, ins, specs)
        results.append(dict(zip(out_names, outs)))
    return results


def verify_model(model_path: str | Path, options, inputs_path: str | None = None,
                 seed: int = 0, rtol: float = DEFAULT_RTOL, sanitize: bool = False,
                 cc: str | None = None) -> VerifyResult:
    """Compile `model_path` for options.target, run it and compare with onnxruntime."""
    if get_target(options.target).backend == "coreml":  # MIL program evaluated in numpy
        return verify_coreml(model_path, options, inputs_path, seed, rtol)

    result = compile_model(model_path, options)
    g = result.source_graph
    feeds = load_inputs(inputs_path, g) if inputs_path else random_inputs(g, seed)
    return verify_result(result, model_path, feeds, rtol=rtol, sanitize=sanitize, cc=cc)


def verify_result(result, model, feeds: dict[str, np.ndarray], rtol: float = DEFAULT_RTOL,
                  sanitize: bool = False, cc: str | None = None) -> VerifyResult:
    """Build and run a CompileResult on `feeds` (checked model inputs, N samples stacked on
    axis 0 allowed) and compare with the reference: onnxruntime on `model` (a file or an
    onnx.ModelProto), or the int8 interpreter for int8 targets. `edgec verify` and
    `Compiled.verify` (edgec/api/) both end here."""
    samples = split_batches(result.source_graph, feeds)
    with tempfile.TemporaryDirectory(prefix="edgec-verify-") as tmp:
        compiled = run_compiled(result, samples, Path(tmp), sanitize=sanitize, cc=cc)
    return compare_outputs(result, model, samples, compiled, rtol)
