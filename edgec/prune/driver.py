"""`edgec.prune.prune_model_file`: groups -> criterion -> selection -> pruned ONNX -> recovery,
with a report (groups, channels kept, MACs and parameters before/after, SNR before/after
recovery, accuracy when the data has labels)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx

from edgec.frontend.onnx import import_model, load_model_proto
from edgec.ops import get_op
from edgec.prune.apply import prune_model
from edgec.prune.groups import Analysis, build_groups, describe_blockers, keep_masks
from edgec.prune.recover import recover
from edgec.prune.select import CRITERIA, PruneOptionError, activation_means, select, unit_scores
from edgec.quant.calibrate import input_names, random_calibration_inputs, run_fast, snr_db


@dataclass
class PruneResult:
    """The pruned model (recovered when asked) and the report written next to it."""

    model: onnx.ModelProto
    report: dict = field(default_factory=dict)


def model_cost(model: onnx.ModelProto, input_shapes: dict | None = None) -> dict:
    """MACs (edgec's per-op counts) and parameters (elements of the constants the nodes read,
    after edgec's import folded what it could) of a model."""
    g = import_model(model, input_shapes)
    macs = sum(get_op(n.op).macs(n) for n in g.nodes)
    consts = {v.name: v for n in g.nodes for v in n.inputs if v is not None and v.is_const}
    params = sum(int(v.type.numel) for v in consts.values())
    return {"macs": int(macs), "params": params}


def run_ort(model: onnx.ModelProto, samples: list[dict]) -> list[np.ndarray]:
    """First output of `model` per sample, by onnxruntime (for SNR and accuracy)."""
    import onnxruntime as ort  # on use: ~0.4 s, only when pruning measures SNR

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return [sess.run(None, s)[0] for s in samples]


def output_snr(reference: list[np.ndarray], got: list[np.ndarray]) -> float:
    """SNR in dB of `got` against `reference` over all samples."""
    return snr_db(np.concatenate([r.reshape(-1) for r in reference]),
                  np.concatenate([x.reshape(-1) for x in got]))


def accuracy(outputs: list[np.ndarray], labels: np.ndarray) -> float:
    """Top-1 accuracy in percent of per-sample logits against integer labels."""
    pred = np.array([int(np.argmax(o.reshape(-1))) for o in outputs])
    return float(100.0 * np.mean(pred == labels[: len(pred)]))


def choose(analysis: Analysis, criterion: str, ratio: float, mode: str, round_to: int,
           max_ratio: float, act_means=None) -> dict[str, np.ndarray]:
    """Keep masks per value for one ratio."""
    if criterion not in CRITERIA:
        raise PruneOptionError(f"unknown criterion '{criterion}' (choose from "
                               f"{', '.join(CRITERIA)})")
    scores = {grp.gid: unit_scores(analysis, grp, criterion, act_means)
              for grp in analysis.prunable()}
    return keep_masks(analysis, select(analysis, scores, ratio, mode, round_to, max_ratio))


def _ratio_for_macs(model, analysis, fraction, pick, shapes) -> tuple[float, dict]:
    """Bisection on the ratio until MACs kept <= fraction of the original; an error naming
    the blocking nodes when even the largest ratio does not get there."""
    if not 0 < fraction <= 1:
        raise PruneOptionError(f"--target-macs must be in (0, 1], not {fraction}")
    full = model_cost(model, shapes)["macs"]
    lo, hi, best = 0.0, 0.95, None
    for _ in range(12):
        mid = (lo + hi) / 2
        masks = pick(mid)
        macs = model_cost(prune_model(model, analysis, masks), shapes)["macs"]
        if macs <= fraction * full:
            hi, best = mid, (mid, masks)
        else:
            lo = mid
    if best is None:
        masks = pick(0.95)
        macs = model_cost(prune_model(model, analysis, masks), shapes)["macs"]
        if macs > fraction * full:
            blockers = "; ".join(describe_blockers(analysis)[:3]) or "no prunable group"
            raise PruneOptionError(
                f"--target-macs {fraction}: pruning reaches only {macs / max(full, 1):.1%} of "
                f"the MACs ({blockers}); raise the target or --max-ratio")
        best = (0.95, masks)
    return best


def prune_model_file(path, ratio: float | None = None, target_macs: float | None = None,
                     criterion: str = "l2", samples: list[dict] | None = None,
                     eval_samples: list[dict] | None = None,
                     labels: np.ndarray | None = None, round_to: int = 1,
                     mode: str = "uniform", max_ratio: float = 0.9, do_recover: bool = True,
                     ridge: float = 1e-3, train: tuple[np.ndarray, np.ndarray] | None = None,
                     epochs: int = 10, lr: float = 1e-3, progress=None,
                     input_shapes: dict | None = None) -> PruneResult:
    """Prune the ONNX model at `path` (see the module docstring). `samples` are calibration
    inputs (seeded random ones when None; then SNR is on random data); SNR and accuracy
    (`labels`) are measured on `eval_samples` (the calibration samples when None). `train`
    (inputs, labels) adds distillation fine-tuning with the unpruned model as teacher."""
    if (ratio is None) == (target_macs is None):
        raise PruneOptionError("give exactly one of --ratio and --target-macs")
    model = load_model_proto(path)
    shapes = input_shapes
    g = import_model(model, shapes)
    analysis = build_groups(g)
    data = "calibration data"
    if samples is None:
        samples, data = random_calibration_inputs(g, 16), "random N(0,1) inputs"
    samples = [{n: s[n] for n in input_names(g)} for s in samples]
    act = None
    if criterion == "activation":
        act = activation_means(analysis, samples[:32], lambda f: _all_values(g, f))

    def pick(r):
        return choose(analysis, criterion, r, mode, round_to, max_ratio, act)
    if target_macs is not None:
        ratio, masks = _ratio_for_macs(model, analysis, target_macs, pick, shapes)
    else:
        masks = pick(ratio)
    pruned = prune_model(model, analysis, masks)
    if eval_samples:
        evals = [{n: s[n] for n in input_names(g)} for s in eval_samples]
        data += f", evaluated on {len(evals)} separate samples"
    elif len(samples) >= 4:  # held out: recovery must not be judged on what it fitted
        cut = len(samples) - max(1, len(samples) // 4)
        samples, evals = samples[:cut], samples[cut:]
        data += f" ({len(evals)} held out for evaluation)"
    else:
        evals = samples
    ref = run_ort(model, evals)
    report = {"model": str(path), "criterion": criterion, "ranking": mode, "ratio": ratio,
              "round_to": round_to, "target_macs": target_macs, "data": data,
              "samples": len(samples), "eval_samples": len(evals),
              "before": model_cost(model, shapes),
              "after_pruning": model_cost(pruned, shapes)}
    got = run_ort(pruned, evals)
    report["snr_db_before_recovery"] = _finite(output_snr(ref, got))
    if labels is not None:
        report["accuracy"] = {"unpruned": accuracy(ref, labels), "pruned": accuracy(got, labels)}
    if do_recover:
        pruned, layers = recover(model, pruned, masks, samples, ridge=ridge,
                                 input_shapes=shapes)
        got = run_ort(pruned, evals)
        report["snr_db_after_recovery"] = _finite(output_snr(ref, got))
        report["recovery"] = layers
        if labels is not None:
            report["accuracy"]["recovered"] = accuracy(got, labels)
    if train is not None:
        try:
            from edgec.prune.distill import distill  # torch: optional and slow to import
        except ImportError:
            raise PruneOptionError("--train needs torch (pip install 'edgec[torch]', which "
                                   "pins the CPU build torch==2.13.0)") from None

        pruned = distill(model, pruned, train[0], train[1], epochs=epochs, lr=lr,
                         progress=progress, input_shapes=shapes)
        got = run_ort(pruned, evals)
        report["snr_db_after_distillation"] = _finite(output_snr(ref, got))
        report["distillation"] = {"epochs": epochs, "lr": lr, "temperature": 4.0,
                                  "alpha": 0.7, "train_samples": int(len(train[1]))}
        if labels is not None:
            report["accuracy"]["distilled"] = accuracy(got, labels)
    report["groups"] = [
        {"id": grp.gid, "producers": grp.producers, "channels": len(grp.units),
         "kept": int(sum(bool(masks[_first(grp)][u[_first(grp)]].all()) for u in grp.units)),
         "blocked_by": grp.blocked_by}
        for grp in analysis.groups if grp.producers]
    report["blockers"] = describe_blockers(analysis)
    return PruneResult(pruned, report)


def _first(grp) -> str:
    return grp.values[0]


def _finite(x: float):
    return x if math.isfinite(x) else str(x)


def _all_values(g, feeds) -> dict:
    """Every value of `g` on one sample (float32 fast kernels)."""
    return run_fast(g, feeds, keep_all=True)


def sensitivity(path, samples: list[dict] | None = None, criterion: str = "l2",
                ratios=(0.1, 0.3, 0.5, 0.7, 0.9),
                input_shapes: dict | None = None) -> dict:
    """Output SNR (dB, against the unpruned model, no recovery) when one group at a time
    loses each fraction of its channels: which groups tolerate pruning."""
    model = load_model_proto(path)
    g = import_model(model, input_shapes)
    analysis = build_groups(g)
    samples = samples or random_calibration_inputs(g, 8)
    samples = [{n: s[n] for n in input_names(g)} for s in samples]
    act = None
    if criterion == "activation":
        act = activation_means(analysis, samples[:32], lambda f: _all_values(g, f))
    ref = run_ort(model, samples)
    rows = []
    for grp in analysis.prunable():
        scores = {grp.gid: unit_scores(analysis, grp, criterion, act)}
        snrs = []
        for r in ratios:
            masks = keep_masks(analysis, select(analysis, scores, r, "uniform", 1, 0.95))
            snrs.append(output_snr(ref, run_ort(prune_model(model, analysis, masks), samples)))
        rows.append({"id": grp.gid, "channels": len(grp.units), "producers": grp.producers,
                     "snr_db": snrs})
    return {"ratios": list(ratios), "groups": rows}
