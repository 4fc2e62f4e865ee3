"""`edgec prune`: the command line of structured channel pruning (docs/pruning.md).

Kept apart from edgec/cli.py, which only calls `add_prune_parser`; heavy imports happen when
the command runs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgec.datafiles import read_arrays

LABEL_KEYS = ("y", "labels", "label")


def add_prune_parser(sub) -> argparse.ArgumentParser:
    """Register `edgec prune` on the sub-command parsers `sub`."""
    p = sub.add_parser("prune", help="structured channel pruning: a smaller ONNX model")
    p.add_argument("model", help="ONNX model")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD...",
                   help="fix a dynamic input shape, e.g. input=1x3x224x224 (repeatable)")
    p.add_argument("-o", "--output", help="pruned ONNX model to write (default MODEL.pruned.onnx)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--ratio", type=float, help="fraction of each group's channels to remove")
    how.add_argument("--target-macs", type=float, metavar="F",
                     help="keep this fraction of the model's MACs (ratio found by bisection)")
    how.add_argument("--sparsity", type=float, metavar="S",
                     help="unstructured: zero the fraction S of the smallest weights (shapes "
                     "stay; the report estimates the flash a compressed form would save)")
    p.add_argument("--sparsity-scope", default="layer", choices=("layer", "global"),
                   help="with --sparsity: S in every layer, or one |w| threshold over all")
    p.add_argument("--criterion", default="l2", choices=("l1", "l2", "bn", "activation"),
                   help="channel importance (default l2 filter norm)")
    p.add_argument("--ranking", default="uniform", choices=("uniform", "global"),
                   help="same fraction per group, or one threshold over all groups")
    p.add_argument("--max-ratio", type=float, default=0.9,
                   help="never remove more than this fraction of a group (default 0.9)")
    p.add_argument("--round-to", type=int, default=1, metavar="N",
                   help="keep a multiple of N channels per group (4/8/16 for SIMD kernels)")
    p.add_argument("--calib", help="calibration inputs (.npy/.npz/folder) for recovery and the "
                   "activation criterion (default: seeded random inputs)")
    p.add_argument("--calib-limit", type=int, default=64, help="at most this many samples")
    p.add_argument("--test", help="evaluation inputs (.npz; labels under 'y' give accuracy)")
    p.add_argument("--no-recover", action="store_true",
                   help="skip the label-free least-squares recovery")
    p.add_argument("--train", help="labelled training data (.npz with the input and 'y') for "
                   "distillation fine-tuning, the unpruned model as teacher (T=4, alpha=0.7)")
    p.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs (default 10)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--report", help="JSON report path (default OUTPUT.json)")
    p.add_argument("--sensitivity", action="store_true",
                   help="print SNR per group for ratios 0.1-0.9 instead of pruning")
    p.add_argument("--plot", metavar="PNG", help="with --sensitivity: also draw the curves "
                   "(needs matplotlib)")
    p.set_defaults(fn=cmd_prune)
    return p


def _labels(path: str | None, count: int):
    if not path or not str(path).endswith(".npz"):
        return None
    arrays = read_arrays(path, "evaluation data")
    for key in LABEL_KEYS:
        if isinstance(arrays, dict) and key in arrays:
            return np.asarray(arrays[key]).reshape(-1)[:count].astype(np.int64)
    return None


def _samples(g, path: str | None, limit: int | None):
    # on use: `edgec --help` imports this module
    from edgec.quant.calibrate import load_calibration_inputs

    return load_calibration_inputs(g, path, limit=limit) if path else None


def cmd_prune(args) -> int:
    """edgec prune MODEL -o OUT (--ratio R | --target-macs F): see docs/pruning.md."""
    # on use: `edgec --help` imports this module
    from edgec.frontend.onnx import load_onnx, parse_input_shapes

    # on use: `edgec --help` imports this module
    from edgec.prune.driver import prune_model_file, sensitivity

    # on use: `edgec --help` imports this module
    from edgec.prune.select import PruneOptionError

    shapes = parse_input_shapes(args.input_shape)
    g = load_onnx(args.model, shapes)
    calib = _samples(g, args.calib, args.calib_limit)
    test = _samples(g, args.test, None)
    labels = _labels(args.test, len(test)) if test else None
    if args.sensitivity:
        rows = sensitivity(args.model, calib, args.criterion, input_shapes=shapes)
        print(f"{'group':>5}  {'channels':>8}  " + "  ".join(f"r={r:.1f}" for r in rows["ratios"])
              + "  producers")
        for row in rows["groups"]:
            print(f"{row['id']:>5}  {row['channels']:>8}  "
                  + "  ".join(f"{s:5.1f}" for s in row["snr_db"]) + "  "
                  + ", ".join(row["producers"]))
        print("(SNR in dB of the model's output against the unpruned model, one group pruned at "
              "a time, no recovery)")
        if args.plot:
            _plot(rows, args.plot, Path(args.model).name)
            print(f"edgec prune: wrote {args.plot}")
        return 0
    train = None
    if args.train:
        train_samples = _samples(g, args.train, None)
        train_labels = _labels(args.train, len(train_samples))
        if train_labels is None:
            raise PruneOptionError(f"--train {args.train}: needs labels under 'y' in an .npz")
        name = g.inputs[0].name
        train = (np.concatenate([s[name] for s in train_samples]), train_labels)
    if args.sparsity is not None:
        return _sparsity(args, test, labels, shapes, train)
    if args.ratio is None and args.target_macs is None:
        raise PruneOptionError("give --ratio R, --target-macs F or --sparsity S (see "
                               "'edgec prune --help')")
    result = prune_model_file(args.model, ratio=args.ratio, target_macs=args.target_macs,
                              criterion=args.criterion, samples=calib, eval_samples=test,
                              labels=labels, round_to=args.round_to, mode=args.ranking,
                              max_ratio=args.max_ratio, do_recover=not args.no_recover,
                              train=train, epochs=args.epochs, lr=args.lr,
                              progress=_progress, input_shapes=shapes)
    import onnx  # on use: `edgec --help` imports this module

    out = Path(args.output or Path(args.model).with_suffix(".pruned.onnx"))
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(result.model, str(out))
    report_path = Path(args.report or out.with_suffix(".json"))
    report_path.write_text(json.dumps(result.report, indent=1) + "\n")
    r = result.report
    b, a = r["before"], r["after_pruning"]
    print(f"edgec prune: {len(r['groups'])} groups, ratio {r['ratio']:.3f} ({r['criterion']})")
    print(f"  MACs {b['macs']:,} -> {a['macs']:,} ({100 * a['macs'] / max(b['macs'], 1):.1f}%), "
          f"params {b['params']:,} -> {a['params']:,}")
    line = f"  output SNR vs unpruned: {_db(r['snr_db_before_recovery'])}"
    if "snr_db_after_recovery" in r:
        line += f" -> {_db(r['snr_db_after_recovery'])} after recovery"
    if "snr_db_after_distillation" in r:
        line += f" -> {_db(r['snr_db_after_distillation'])} after distillation"
    print(line + f" ({r['data']})")
    if "accuracy" in r:
        print("  accuracy: " + ", ".join(f"{k} {v:.2f}%" for k, v in r["accuracy"].items()))
    for why in r["blockers"]:
        print(f"  {why}")
    print(f"edgec prune: wrote {out} and {report_path}")
    return 0


def _sparsity(args, test, labels, shapes, train) -> int:
    """edgec prune MODEL --sparsity S: write the magnitude-pruned model and its report."""
    import onnx

    from edgec.prune.sparsity import sparsify_model_file

    model, r = sparsify_model_file(args.model, args.sparsity, args.sparsity_scope, test, labels,
                                   shapes, train, args.epochs, args.lr, _progress)
    out = Path(args.output or Path(args.model).with_suffix(".pruned.onnx"))
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    report_path = Path(args.report or out.with_suffix(".json"))
    report_path.write_text(json.dumps(r, indent=1) + "\n")
    print(f"edgec prune: {len(r['layers'])} weight tensors, {r['zeros_after']:,} of "
          f"{r['elements']:,} weights zero ({100 * r['weight_sparsity']:.1f}%, "
          f"{r['scope']} scope); output SNR vs unpruned {_db(r['snr_db'])}"
          + (f" -> {_db(r['snr_db_after_distillation'])} after distillation"
             if "snr_db_after_distillation" in r else "") + f" ({r['data']})")
    if "accuracy" in r:
        print("  accuracy: " + ", ".join(f"{k} {v:.2f}%" for k, v in r["accuracy"].items()))
    print(f"  flash a bitmap-compressed form would save (estimate; edgec compile stores CSR "
          f"per layer, --sparse-weights): {r['flash_saved_fp32_bytes']:,} of "
          f"{r['dense_fp32_bytes']:,} B fp32, "
          f"{r['flash_saved_int8_bytes']:,} of {r['dense_int8_bytes']:,} B int8")
    print(f"edgec prune: wrote {out} and {report_path}")
    return 0


def _plot(rows: dict, path: str, title: str) -> None:
    """SNR against ratio, one line per group."""
    # on use: `edgec --help` imports this module
    from edgec.prune.select import PruneOptionError

    try:
        import matplotlib  # optional, and slow to import: only for --plot
    except ImportError:
        raise PruneOptionError("--plot needs matplotlib (pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows["groups"]:
        label = f"group {row['id']} ({row['channels']} ch, {row['producers'][0]})"
        ax.plot(rows["ratios"], [min(s, 100.0) for s in row["snr_db"]], marker="o",
                label=label[:60])
    ax.set_xlabel("fraction of the group's channels removed")
    ax.set_ylabel("output SNR vs unpruned (dB)")
    ax.set_title(f"{title}: sensitivity per group (no recovery)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _db(x) -> str:
    return f"{x:.1f} dB" if isinstance(x, float) else f"{x} dB"


def _progress(epoch: int, loss: float, acc: float) -> None:
    print(f"  epoch {epoch}: loss {loss:.4f}, train accuracy {acc:.2f}%", flush=True)


def add_compile_prune_arg(p: argparse.ArgumentParser) -> None:
    """`edgec compile --prune R`: prune before the pipeline (and before quantisation)."""
    p.add_argument("--prune", type=float, metavar="R",
                   help="remove the fraction R of every prunable channel group first (l2, "
                   "label-free recovery on --calib or random inputs; docs/pruning.md)")


@contextmanager
def pruned_for_compile(args):
    """The model path to compile: with --prune, the pruned model in a temporary folder under
    the same file name (names in the output stay the model's)."""
    ratio = getattr(args, "prune", None)
    if ratio is None:
        yield args.model
        return
    import onnx  # on use: `edgec --help` imports this module

    # on use: `edgec --help` imports this module
    from edgec.frontend.onnx import load_onnx, parse_input_shapes

    # on use: `edgec --help` imports this module
    from edgec.prune.driver import prune_model_file

    shapes = parse_input_shapes(getattr(args, "input_shape", None))
    calib = getattr(args, "calib", None)
    samples = _samples(load_onnx(args.model, shapes), calib,
                       getattr(args, "calib_limit", None) or 64) if calib else None
    result = prune_model_file(args.model, ratio=ratio, samples=samples, input_shapes=shapes)
    r = result.report
    print(f"edgec: pruned {r['ratio']:.2f} of the channels: MACs {r['before']['macs']:,} -> "
          f"{r['after_pruning']['macs']:,}, output SNR "
          f"{_db(r.get('snr_db_after_recovery', r['snr_db_before_recovery']))}")
    with tempfile.TemporaryDirectory(prefix="edgec-prune-") as tmp:
        path = Path(tmp) / Path(args.model).name
        onnx.save(result.model, str(path))
        yield str(path)
