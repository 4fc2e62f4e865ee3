"""Unstructured magnitude pruning (`edgec prune --sparsity S`): zero the smallest weights.

The weight tensors are the constant weight operands of Conv, ConvTranspose, Gemm and MatMul
(initializers with at least two dimensions; biases and normalisation parameters stay). Two
scopes:

- `layer`: every weight tensor loses the floor(S * n) weights of smallest |w| (zeros that
  were already there count), so each layer ends at sparsity S;
- `global`: one threshold on |w| over all weight tensors, so layers with many small weights
  lose more; each filter (first-axis slice) keeps at least its largest weight, so no layer
  is emptied.

The model keeps its shapes: this changes no MAC count and no dense storage. The report says
how many weights are zero and how much flash a compressed weight form *would* save
(a bitmap of n bits plus the non-zero values, per layer where that is smaller than dense,
for fp32 and for int8 values). edgec's C back-end does not store weights compressed yet, so
that saving is an estimate, not what `edgec compile` produces today (docs/pruning.md).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import numpy_helper

from edgec.prune.select import PruneOptionError

WEIGHT_OPERANDS = {"Conv": (1,), "ConvTranspose": (1,), "Gemm": (0, 1), "MatMul": (0, 1)}
SCOPES = ("layer", "global")


def weight_tensors(model: onnx.ModelProto) -> list[str]:
    """Names of the initializers used as weights (in first-use order, each once)."""
    inits = {t.name: t for t in model.graph.initializer}
    names: list[str] = []
    for node in model.graph.node:
        for i in WEIGHT_OPERANDS.get(node.op_type, ()):
            if i < len(node.input) and node.input[i] in inits and node.input[i] not in names \
                    and len(inits[node.input[i]].dims) >= 2:
                names.append(node.input[i])
    return names


def compressed_bytes(elements: int, nonzeros: int, value_bytes: int) -> int:
    """Bytes of a bitmap (one bit per weight, rounded up to bytes) plus the non-zero values."""
    return math.ceil(elements / 8) + nonzeros * value_bytes


def layer_masks(weights: dict[str, np.ndarray], sparsity: float) -> dict[str, np.ndarray]:
    """Keep masks: each tensor keeps all but its floor(sparsity * n) smallest |w|."""
    masks = {}
    for name, w in weights.items():
        flat = np.abs(w).reshape(-1)
        drop = int(math.floor(sparsity * flat.size))
        mask = np.ones(flat.size, bool)
        mask[np.argsort(flat, kind="stable")[:drop]] = False
        masks[name] = mask.reshape(w.shape)
    return masks


def global_masks(weights: dict[str, np.ndarray], sparsity: float) -> dict[str, np.ndarray]:
    """Keep masks: one |w| threshold over all tensors; each filter keeps its largest |w|."""
    flat = np.concatenate([np.abs(w).reshape(-1) for w in weights.values()])
    drop = int(math.floor(sparsity * flat.size))
    threshold = np.sort(flat, kind="stable")[drop - 1] if drop > 0 else -1.0
    masks = {}
    for name, w in weights.items():
        mask = np.abs(w) > threshold
        rows = np.abs(w).reshape(w.shape[0], -1)
        keep_row_max = np.zeros(rows.shape, bool)
        keep_row_max[np.arange(rows.shape[0]), rows.argmax(axis=1)] = True
        masks[name] = mask | keep_row_max.reshape(w.shape)
    return masks


def magnitude_prune(model: onnx.ModelProto, sparsity: float,
                    scope: str = "layer") -> tuple[onnx.ModelProto, dict]:
    """Zero the smallest weights of `model` (module docstring); returns (model, report)."""
    if not 0.0 <= sparsity < 1.0:
        raise PruneOptionError(f"--sparsity must be in [0, 1), not {sparsity}")
    if scope not in SCOPES:
        raise PruneOptionError(f"unknown --sparsity-scope '{scope}' (choose from "
                               f"{', '.join(SCOPES)})")
    names = weight_tensors(model)
    if not names:
        raise PruneOptionError("--sparsity: the model has no Conv/ConvTranspose/Gemm/MatMul "
                               "weight initializers to prune")
    out = onnx.ModelProto.FromString(model.SerializeToString())
    inits = {t.name: t for t in out.graph.initializer}
    weights = {n: numpy_helper.to_array(inits[n]) for n in names}
    masks = (layer_masks if scope == "layer" else global_masks)(weights, sparsity)
    layers = []
    for name in names:
        w = weights[name]
        pruned = np.where(masks[name], w, np.zeros_like(w))
        inits[name].CopyFrom(numpy_helper.from_array(pruned, name))
        layers.append(_layer_row(name, w, pruned))
    report = {"mode": "sparsity", "sparsity": sparsity, "scope": scope, "layers": layers}
    for key in ("elements", "zeros_before", "zeros_after", "dense_fp32_bytes",
                "flash_saved_fp32_bytes", "dense_int8_bytes", "flash_saved_int8_bytes"):
        report[key] = int(sum(row[key] for row in layers))
    report["weight_sparsity"] = report["zeros_after"] / max(report["elements"], 1)
    report["compressed_storage"] = ("flash_saved_* estimate a bitmap + non-zero values form; "
                                    "edgec compile stores fp32 Conv/Gemm/MatMul weights as CSR "
                                    "per layer (--sparse-weights, docs/pruning.md) and reports "
                                    "the bytes in report.json's sparse_weights")
    return out, report


def _layer_row(name: str, before: np.ndarray, after: np.ndarray) -> dict:
    """Zeros and the estimated flash saving of one weight tensor."""
    n, nonzeros = int(before.size), int(np.count_nonzero(after))
    row = {"name": name, "shape": list(before.shape), "elements": n,
           "zeros_before": n - int(np.count_nonzero(before)), "zeros_after": n - nonzeros}
    for kind, size in (("fp32", 4), ("int8", 1)):
        dense = n * size
        row[f"dense_{kind}_bytes"] = dense
        row[f"flash_saved_{kind}_bytes"] = max(0, dense - compressed_bytes(n, nonzeros, size))
    return row


def sparsify_model_file(path, sparsity: float, scope: str = "layer",
                        eval_samples: list[dict] | None = None,
                        labels: np.ndarray | None = None,
                        input_shapes: dict | None = None,
                        train: tuple[np.ndarray, np.ndarray] | None = None, epochs: int = 10,
                        lr: float = 1e-3, progress=None) -> tuple[onnx.ModelProto, dict]:
    """`edgec prune MODEL --sparsity S`: magnitude-prune the model at `path`; the report adds
    the output SNR against the unpruned model (onnxruntime; on `eval_samples`, else on eight
    seeded N(0,1) inputs) and top-1 accuracy when `labels` are given. `train` (inputs,
    labels) adds distillation fine-tuning that keeps the zeros zero."""
    from edgec.frontend.onnx import import_model, load_model_proto
    from edgec.prune.driver import accuracy, output_snr, run_ort
    from edgec.quant.calibrate import input_names, random_calibration_inputs

    model = load_model_proto(path)
    pruned, report = magnitude_prune(model, sparsity, scope)
    g = import_model(model, input_shapes)
    data = "evaluation data"
    if not eval_samples:
        eval_samples, data = random_calibration_inputs(g, 8), "random N(0,1) inputs"
    evals = [{n: s[n] for n in input_names(g)} for s in eval_samples]
    ref, got = run_ort(model, evals), run_ort(pruned, evals)
    snr = output_snr(ref, got)
    report.update(model=str(path), data=f"{data}, {len(evals)} samples",
                  snr_db=snr if math.isfinite(snr) else str(snr))
    if labels is not None:
        report["accuracy"] = {"unpruned": accuracy(ref, labels), "pruned": accuracy(got, labels)}
    if train is not None:
        from edgec.prune.distill import distill

        inits = {t.name: numpy_helper.to_array(t) for t in pruned.graph.initializer}
        keep = {row["name"]: inits[row["name"]] != 0 for row in report["layers"]}
        pruned = distill(model, pruned, train[0], train[1], epochs=epochs, lr=lr,
                         progress=progress, input_shapes=input_shapes, keep_zero=keep)
        got = run_ort(pruned, evals)
        snr = output_snr(ref, got)
        report["snr_db_after_distillation"] = snr if math.isfinite(snr) else str(snr)
        report["distillation"] = {"epochs": epochs, "lr": lr, "temperature": 4.0, "alpha": 0.7,
                                  "train_samples": int(len(train[1]))}
        if labels is not None:
            report["accuracy"]["distilled"] = accuracy(got, labels)
    return pruned, report
