"""`edgec.prune_model`: structured channel pruning (docs/pruning.md) from Python, for the
models `edgec.compile` takes, with calibration data from Python. The work is
`edgec.prune.driver.prune_model_file`, as for `edgec prune`.

(It is not `edgec.prune(...)`: `edgec.prune` is the package that does the pruning, and a
function of the same name would be replaced by it as soon as anything imports it.)
"""

from __future__ import annotations

import os

from edgec.api.model import model_source, temporary_model_dir
from edgec.api.options import calibration_batches, input_shapes_option
from edgec.errors import EdgecError
from edgec.frontend.onnx import load_onnx
from edgec.prune.driver import PruneResult, prune_model_file
from edgec.quant.calibrate import load_calibration_inputs, split_samples

CALIB_LIMIT = 64  # samples used for recovery, as `edgec prune --calib-limit` defaults


def _samples(g, data, names: list[str], limit: int | None) -> list[dict] | None:
    """Model-shaped samples of a path or of Python data (None: seeded random ones)."""
    if data is None:
        return None
    if isinstance(data, (str, os.PathLike)):
        return load_calibration_inputs(g, data, limit=limit)
    samples = [s for i, batch in enumerate(calibration_batches(data, names))
               for s in split_samples(g, batch, f"calibration batch {i}")]
    return samples[:limit] if limit else samples


def prune_model(model, *, ratio: float | None = None, target_macs: float | None = None,
                calib=None, test=None, criterion: str = "l2", ranking: str = "uniform",
                round_to: int = 1, max_ratio: float = 0.9, recover: bool = True,
                calib_limit: int | None = CALIB_LIMIT, input_shapes: dict | None = None,
                example_inputs=None, exporter: str = "auto", quiet: bool = True) -> PruneResult:
    """Prune `model` (a path, ModelProto or torch.nn.Module with example_inputs=): remove
    the fraction `ratio` of each channel group, or as much as keeps `target_macs` of the
    MACs. calib: inputs for recovery and the activation criterion (a path or Python data as
    for edgec.compile; seeded random inputs when None); test: separate evaluation inputs.
    Returns a PruneResult: `.model` (an onnx.ModelProto for edgec.compile) and `.report`
    (the JSON report of `edgec prune`)."""
    if criterion not in ("l1", "l2", "bn", "activation"):
        raise EdgecError(f"criterion must be l1, l2, bn or activation, not '{criterion}'")
    if ranking not in ("uniform", "global"):
        raise EdgecError(f"ranking must be uniform or global, not '{ranking}'")
    source = model_source(model, example_inputs, None, exporter, quiet)
    shapes = input_shapes_option(input_shapes)
    with temporary_model_dir() as tmp:
        path = source.onnx_file(tmp)
        g = load_onnx(path, shapes)
        names = source.input_names()
        samples = _samples(g, calib, names, calib_limit)
        evals = _samples(g, test, names, None)
        return prune_model_file(path, ratio=ratio, target_macs=target_macs,
                                criterion=criterion, samples=samples, eval_samples=evals,
                                round_to=round_to, mode=ranking, max_ratio=max_ratio,
                                do_recover=recover, input_shapes=shapes or None)
