"""Side by side with Torch-Pruning (PyPI torch-pruning, a tool here, not a dependency): the
digits CNN pruned to the same MAC budget, then the same fine-tuning budget.

    pip install --no-deps torch-pruning==1.6.1
    python tools/prune_vs_torch_pruning.py [--write docs/benchmarks.md]

Both start from one teacher trained like tools/make_models.py (same seeds, 40 epochs of Adam
on the 70% train split). Torch-Pruning: MagnitudePruner with L2 importance on the torch model
(the classifier ignored), its ratio bisected to the MAC budget, then fine-tuned. edgec: the
teacher exported to ONNX, `prune_model_file` at the same budget (l2, label-free recovery on
the 200 calibration images), then fine-tuned. Fine-tuning is the same for both: the
distillation loss of edgec/prune/distill.py (T=4, alpha=0.7, the teacher's logits), Adam,
same epochs, learning rate, batch and data. Accuracy on the 30% test split.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

import torch  # noqa: E402

from edgec.prune.distill import distill, kd_loss  # noqa: E402
from edgec.prune.driver import prune_model_file, run_ort  # noqa: E402
from make_models import (build_architectures, deterministic, export_onnx,  # noqa: E402
                         load_digits_split)

BEGIN, END = "<!-- prune-vs-tp:begin -->", "<!-- prune-vs-tp:end -->"


def train_teacher(x, y):
    """The digits CNN trained as tools/make_models.py trains it."""
    deterministic(1004)
    model = build_architectures()["DigitsCNN"]()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(3004)
    model.train()
    for _ in range(40):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order), 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def torch_accuracy(model, x, y) -> float:
    """Top-1 accuracy (%) of a torch model."""
    with torch.no_grad():
        return 100.0 * float(np.mean(model(torch.from_numpy(x)).argmax(1).numpy() == y))


def fine_tune(student, teacher, x, y, epochs: int, lr: float, batch: int = 32):
    """The same loop as edgec.prune.distill.distill, on a torch model (BatchNorm in eval)."""
    torch.manual_seed(0)
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    with torch.no_grad():
        t_logits = teacher(xs)
    student.eval()  # stored BatchNorm statistics, as edgec's converter uses them
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(xs), generator=gen)
        for i in range(0, len(xs), batch):
            idx = order[i:i + batch]
            loss = kd_loss(student(xs[idx]), t_logits[idx], ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return student.eval()


def torch_pruning_at(teacher, budget: float):
    """A Torch-Pruning copy of `teacher` with at most `budget` of its MACs."""
    import copy

    import torch_pruning as tp

    example = torch.randn(1, 1, 8, 8)
    full, _ = tp.utils.count_ops_and_params(teacher, example)
    lo, hi, best = 0.0, 0.95, None
    for _ in range(12):
        mid = (lo + hi) / 2
        model = copy.deepcopy(teacher)
        pruner = tp.pruner.MagnitudePruner(model, example, importance=tp.importance
                                           .MagnitudeImportance(p=2), pruning_ratio=mid,
                                           ignored_layers=[model.fc])
        pruner.step()
        macs, _ = tp.utils.count_ops_and_params(model, example)
        if macs <= budget * full:
            hi, best = mid, (model, macs / full)
        else:
            lo = mid
    return best


def main(argv: list[str] | None = None) -> int:
    """Run both, print the section, optionally write it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--write", metavar="MD")
    args = ap.parse_args(argv)
    x_train, x_test, y_train, y_test = load_digits_split()
    teacher = train_teacher(x_train, y_train)
    calib_idx = np.sort(np.random.default_rng(5004).choice(len(x_train), 200, replace=False))
    rows = {"teacher": torch_accuracy(teacher, x_test, y_test)}

    tp_model, tp_frac = torch_pruning_at(teacher, args.budget)
    rows["tp_pruned"] = torch_accuracy(tp_model, x_test, y_test)
    tp_model = fine_tune(tp_model, teacher, x_train, y_train, args.epochs, args.lr)
    rows["tp_tuned"] = torch_accuracy(tp_model, x_test, y_test)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digits.onnx"
        export_onnx(teacher, (1, 1, 8, 8), path, "x", "logits")
        calib = [{"x": x_train[i:i + 1]} for i in calib_idx]
        test = [{"x": x_test[i:i + 1]} for i in range(len(x_test))]
        result = prune_model_file(path, target_macs=args.budget, samples=calib,
                                  eval_samples=test, labels=y_test)
        r = result.report
        import onnx

        tuned = distill(onnx.load(str(path)), result.model, x_train, y_train,
                        epochs=args.epochs, lr=args.lr)
        outs = run_ort(tuned, test)
    ec_frac = r["after_pruning"]["macs"] / r["before"]["macs"]
    rows.update(ec_pruned=r["accuracy"]["pruned"], ec_recovered=r["accuracy"]["recovered"],
                ec_tuned=100.0 * float(np.mean([int(np.argmax(o)) == t
                                                for o, t in zip(outs, y_test)])))
    section = "\n".join([
        BEGIN, "## Pruning side by side with Torch-Pruning (tools/prune_vs_torch_pruning.py)",
        "", f"Digits CNN, test split ({len(y_test)} images), teacher {rows['teacher']:.2f}%. "
        f"Fine-tuning for both: {args.epochs} epochs, Adam lr {args.lr}, distillation loss "
        "(T=4, alpha=0.7) on the train split.", "",
        "| | MACs kept | pruned | after label-free recovery | after fine-tuning |",
        "|---|---|---|---|---|",
        f"| Torch-Pruning 1.6 (MagnitudePruner, L2) | {tp_frac:.1%} | {rows['tp_pruned']:.2f}% "
        f"| — | {rows['tp_tuned']:.2f}% |",
        f"| edgec prune (l2, uniform) | {ec_frac:.1%} | {rows['ec_pruned']:.2f}% | "
        f"{rows['ec_recovered']:.2f}% | {rows['ec_tuned']:.2f}% |", END]) + "\n"
    print(section)
    if args.write:
        from edgec.markdown import replace_section

        replace_section(Path(args.write), BEGIN, END, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
