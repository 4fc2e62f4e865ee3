"""The TFLite back-end: a compiled graph -> `model.tflite` (+ report.json via the driver).

Same interface as the C back-end (codegen/c/backend.py) so that the compile driver only
chooses the class by `target.backend`: `generate(g, plan, model_name)` returns the output
files, `weights_bytes` and `kernel_count` feed report.json.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from edgec import __version__
from edgec.codegen.tflite.lower import Lowering
from edgec.errors import EdgecError

MODEL_FILE = "model.tflite"
IO_TYPES = ("float", "int8")  # --tflite-io: the element type of the file's inputs/outputs


class TFLiteBackend:
    """Builds the .tflite flatbuffer of one compiled graph."""

    def __init__(self, target, prefix: str, explicit_prefix: bool = False,
                 io: str = "float", quantization: dict | None = None) -> None:
        if io not in IO_TYPES:
            raise EdgecError(f"--tflite-io must be one of {', '.join(IO_TYPES)}, not '{io}'")
        if io == "int8" and not target.is_int8:
            raise EdgecError(f"--tflite-io int8 needs an int8 target (tflite-int8), not "
                             f"'{target.name}'")
        self.target = target
        self.quantization = quantization or {}  # the quantize step's report (mode, calibration)
        self.int8_io = io == "int8" and target.is_int8
        self.prefix = prefix
        self.weights_bytes = 0
        self.kernel_count = 0
        self.operators: list[str] = []
        self.differences: list[dict] = []  # layers whose TFLite multipliers differ (report)
        self.report_sections: dict = {}  # merged into report.json by the compile driver

    def generate(self, g, plan, model_name: str = "model") -> dict[str, bytes]:
        """{"model.tflite": the flatbuffer's bytes}."""
        in_names = list(g.meta.get("input_names") or [v.name for v in g.inputs])
        out_names = list(g.meta.get("output_names") or [v.name for v in g.outputs])
        lw = Lowering(g, self.int8_io, fp16_weights=self.target.precision == "fp16")
        builder = lw.run(in_names, out_names)
        perms = {name: lw.input_perms[v.name] for name, v in zip(in_names, g.inputs)
                 if v.name in lw.input_perms}
        out_perms = {name: lw.output_perms[v.name] for name, v in zip(out_names, g.outputs)
                     if v.name in lw.output_perms}
        data = builder.finish(self._metadata(g, perms, out_perms),
                              f"edgec {__version__} {model_name}")
        self.weights_bytes = sum(len(b) for b in builder.buffers[1:])
        self.kernel_count = len(builder.operators)
        self.operators = list(builder.op_kinds)
        self.differences = lw.differences
        self.report_sections = {"tflite": {
            "file": MODEL_FILE, "file_bytes": len(data), "operators": len(builder.operators),
            "operator_counts": dict(sorted(Counter(builder.op_kinds).items())),
            "transposes": builder.op_kinds.count("TRANSPOSE"), "io": "int8" if self.int8_io
            else "float", "weights": "float16" if self.target.precision == "fp16" else None,
            "multiplier_differences": lw.differences}}
        return {MODEL_FILE: data}

    def _metadata(self, g, perms: dict, out_perms: dict) -> dict:
        cal = self.quantization.get("calibration")
        info = {"edgec_version": __version__, "target": self.target.name,
                "input_permutations": perms, "output_permutations": out_perms,
                "io": "int8" if self.int8_io else "float"}
        if cal is not None:  # without its timing, so that the file is reproducible byte for byte
            info["calibration"] = {k: v for k, v in cal.items() if k != "seconds"}
        elif self.quantization:
            info["calibration"] = {"mode": self.quantization.get("mode", "")}
        elif g.meta.get("prequantized"):
            info["calibration"] = {"mode": "prequantized"}
        return info


def input_layout(model, key: str = "input_permutations") -> dict[str, list[int]]:
    """{input name: permutation applied to the ONNX-layout input} from a ModelT's metadata
    (key "output_permutations": {output name: permutation back to the ONNX layout})."""
    import json

    for m in model.metadata or []:
        name = m.name.decode() if isinstance(m.name, bytes) else m.name
        if name == "edgec_info":
            raw = np.asarray(model.buffers[m.buffer].data, np.uint8).tobytes()
            return json.loads(raw.decode()).get(key, {})
    return {}
