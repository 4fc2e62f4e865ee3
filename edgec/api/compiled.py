"""`Compiled`: what `edgec.compile` returns. The generated files in memory, the report as a
dataclass, and methods that write, verify, run and benchmark them through the same workbench
code as `edgec verify` and `edgec bench` (edgec/workbench/)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from edgec.api.model import ModelSource, temporary_model_dir
from edgec.api.options import to_numpy
from edgec.api.report import Report
from edgec.compiler import CompileOptions, CompileResult, write_output
from edgec.errors import DataError, EdgecError, TargetError
from edgec.workbench.compare import (
    DEFAULT_RTOL,
    VerifyResult,
    inputs_from_arrays,
    load_inputs,
    random_inputs,
    split_batches,
)
from edgec.workbench.report import svg_plan
from edgec.workbench.verify import build_result, run_compiled, verify_result


class EdgecWarning(UserWarning):
    """A warning of edgec's (e.g. calibration on random data), issued when quiet=False."""


class Compiled:
    """A compiled model: `.files`, `.report`, `.write(dir)`, `.verify()`, `.run()`,
    `.bench()`. `.result` is the compiler's CompileResult (final IR, memory plan)."""

    def __init__(self, result: CompileResult, source: ModelSource, options: CompileOptions):
        self.result = result
        self.source = source
        self.options = options
        self.report = Report.from_dict(result.report)
        self._exe: Path | None = None  # run()'s harness, built on first use
        self._build_dir: tempfile.TemporaryDirectory | None = None

    @property
    def target(self) -> str:
        """The target's name."""
        return self.result.target.name

    @property
    def files(self) -> dict[str, str | bytes]:
        """The generated files: file name -> content (text; bytes for .tflite and CoreML
        weights), report.json included."""
        return dict(self.result.files)

    @property
    def warnings(self) -> list[str]:
        """edgec's warnings about this compile (e.g. calibration on random data, a torch
        module the legacy exporter traced)."""
        return list(self.source.notes) + list(self.result.warnings)

    @property
    def calibration(self) -> dict | None:
        """int8 static targets: the calibration used (method, samples, data source)."""
        return self.report.calibration

    def write(self, directory: str | os.PathLike) -> Path:
        """Write the files into `directory` exactly as `edgec compile -o` does: complete or
        not at all, replacing only a folder edgec wrote itself (edgec/output_dir.py)."""
        return write_output(self.result.files, directory)

    def _feeds(self, inputs, seed: int) -> dict[str, np.ndarray]:
        """Inputs (None: seeded random; a path; an array; a dict by name) as checked feeds."""
        g = self.result.source_graph
        if inputs is None:
            return random_inputs(g, seed)
        if isinstance(inputs, (str, os.PathLike)):
            return load_inputs(inputs, g)
        if isinstance(inputs, dict):
            data = {str(k): to_numpy(v, f"inputs[{k!r}]") for k, v in inputs.items()}
        elif isinstance(inputs, (list, tuple)):
            names = g.meta.get("input_names") or [v.name for v in g.inputs]
            if len(inputs) != len(names):
                raise DataError(f"inputs holds {len(inputs)} arrays but the model has "
                                f"{len(names)} inputs")
            data = {n: to_numpy(v, f"inputs[{i}]") for i, (n, v) in
                    enumerate(zip(names, inputs))}
        else:
            data = to_numpy(inputs, "inputs")
        return inputs_from_arrays(data, g)

    def verify(self, inputs=None, *, seed: int = 0, rtol: float = DEFAULT_RTOL,
               sanitize: bool = False) -> VerifyResult:
        """Build and run the generated code on `inputs` (None: seeded random N(0, 1); a
        .npz/.npy path; an array; a dict by input name; N samples stacked on axis 0) and
        compare every output with onnxruntime fp32, or bit for bit with the int8 reference
        interpreter on int8 targets, as `edgec verify` does."""
        if self.result.target.backend == "coreml":  # the MIL program, evaluated in numpy
            from edgec.workbench.coreml_verify import verify_coreml  # on use: coremltools

            with temporary_model_dir() as tmp, tempfile.TemporaryDirectory() as data:
                npz = None
                if inputs is not None:
                    npz = Path(data) / "inputs.npz"
                    np.savez(npz, **self._feeds(inputs, seed))
                return verify_coreml(self.source.onnx_file(tmp), self.options,
                                     None if npz is None else str(npz), seed, rtol)
        feeds = self._feeds(inputs, seed)
        return verify_result(self.result, self.source.reference(), feeds, rtol=rtol,
                             sanitize=sanitize)

    def _harness(self) -> Path | None:
        """The harness of a C target built once (kept for the object's life), else None."""
        target = self.result.target
        if target.backend in ("tflite", "coreml") or getattr(target, "bare_metal", False):
            return None
        if self._exe is None:
            self._build_dir = tempfile.TemporaryDirectory(prefix="edgec-run-")
            self._exe = build_result(self.result, Path(self._build_dir.name))
        return self._exe

    def run(self, inputs) -> dict[str, np.ndarray]:
        """Run the generated code on `inputs` (as in `verify`; N samples stacked on axis 0
        run one by one) and return the outputs by name, stacked alike. C targets are built
        with the target's toolchain on first use (run under QEMU for arm64) and reused;
        .tflite runs in LiteRT, CoreML as its MIL program in numpy, Cortex-M in QEMU."""
        if inputs is None:
            raise DataError("run() needs inputs (an array, a dict by input name or a path)")
        samples = split_batches(self.result.source_graph, self._feeds(inputs, 0))
        exe = self._harness()
        with tempfile.TemporaryDirectory(prefix="edgec-run-") as tmp:
            outs = run_compiled(self.result, samples, Path(tmp), exe=exe)
        return {name: np.concatenate([o[name] for o in outs]) if len(outs) > 1
                else outs[0][name] for name in outs[0]}

    def bench(self, runs: int = 100, compare: bool = True) -> dict:
        """Latency of the generated C beside onnxruntime (host targets) or instructions
        (emulated targets): the row of `edgec bench --json` (docs/benchmarks.md). Like the
        command, it compiles the model again (int8: on seeded random calibration data)."""
        from edgec.workbench.bench import bench_model  # on use: loads the bench runners

        if self.result.target.backend in ("tflite", "coreml"):
            raise TargetError(f"bench() times generated C; {self.target} is not a C target")
        with temporary_model_dir() as tmp:
            return bench_model(self.source.onnx_file(tmp), self.target, runs=runs,
                               compare=compare, input_shapes=self.options.input_shapes)

    def memory_plan_svg(self) -> str:
        """The memory plan (tensors over time in the arena) as an SVG picture."""
        if self.result.plan is None:
            raise EdgecError(f"{self.target} has no arena memory plan")
        return svg_plan(self.result.graph, self.result.plan,
                        title=f"{self.source.name} on {self.target}")

    def _repr_html_(self) -> str:
        picture = self.memory_plan_svg() if self.result.plan is not None else ""
        return self.report._repr_html_() + picture

    def __rich__(self):
        return self.report.__rich__()

    def __repr__(self) -> str:
        r = self.report
        arena = f", arena {r.arena_bytes:,} B" if r.arena_bytes is not None else ""
        return (f"<edgec.Compiled {self.source.name} for {self.target}: {len(self.files)} "
                f"files{arena}>")
