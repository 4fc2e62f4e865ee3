"""Side by side with Torch-Pruning (PyPI torch-pruning, a tool here, not a dependency): the
digits CNN and ResNet-8 pruned to the same MAC budget, then the same fine-tuning budget.

    pip install --no-deps torch-pruning==1.6.1   # --no-deps: it must not pull another torch
    python tools/prune_vs_torch_pruning.py [--tasks digits,resnet8] [--write docs/benchmarks.md]

Tasks. digits: the digits CNN of tools/make_models.py on sklearn digits (real data, its 70/30
split). resnet8: the MLPerf Tiny ResNet-8 of tools/make_models.py (same class; its final
Softmax replaced by the identity so that both sides fine-tune on logits). CIFAR-10 is not on
this machine, so ResNet-8 learns a synthetic but learnable task built from the same digits:
each 8x8 digit is upscaled 2x and pasted at a seeded random place of a 32x32 RGB canvas with a
random foreground and background colour and N(0, 0.1) noise; the label is the digit; same
70/30 split. It is not CIFAR-10 and its accuracies are not comparable with CIFAR-10 ones.

Both sides start from one teacher per task trained here (seeded, Adam on the train split).
Torch-Pruning: MagnitudePruner with L2 importance on the torch model (the classifier
ignored; residual couplings by its DepGraph), its ratio bisected to the MAC budget, then
fine-tuned. edgec: the teacher exported to ONNX, `prune_model_file` at the same budget (l2,
label-free recovery on 200 calibration images of the train split), then fine-tuned; and
once more without the recovery, to separate edgec's channel ranking from its recovery.
Fine-tuning is the same for both: the distillation loss of edgec/prune/distill.py (T=4,
alpha=0.7, the teacher's logits), Adam, same epochs, learning rate, batch and data.
Accuracy on the 30% test split.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tools"))

import onnx  # noqa: E402
import torch  # noqa: E402

from edgec.prune.distill import distill, kd_loss  # noqa: E402
from edgec.prune.driver import prune_model_file, run_ort  # noqa: E402
from make_models import (build_architectures, deterministic, export_onnx,  # noqa: E402
                         load_digits_split)

BEGIN, END = "<!-- prune-vs-tp:begin -->", "<!-- prune-vs-tp:end -->"


@dataclass
class Task:
    """One side-by-side: a torch architecture, its data and its training budgets."""

    name: str
    title: str
    arch: str
    input_shape: tuple[int, ...]
    teacher_epochs: int
    data_note: str
    one_cycle: bool = False  # teacher lr: one-cycle schedule (else constant)


TASKS = {
    "digits": Task("digits", "Digits CNN", "DigitsCNN", (1, 1, 8, 8), 40,
                   "sklearn digits, real test split"),
    "resnet8": Task("resnet8", "ResNet-8 (MLPerf Tiny)", "ResNet8", (1, 3, 32, 32), 20,
                    "synthetic digits-on-32x32-RGB task (not CIFAR-10: not on this machine)", True),
}


def digits_on_canvas(x: np.ndarray, seed: int) -> np.ndarray:
    """The resnet8 task's images: each 8x8 digit (values in [0, 1]) upscaled 2x, pasted at a
    random place of a 32x32 canvas, coloured (random fore/background per image), noised."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(x), 3, 32, 32), np.float32)
    for i, img in enumerate(x[:, 0]):
        big = np.kron(img, np.ones((2, 2), np.float32))
        mask = np.zeros((32, 32), np.float32)
        r, c = rng.integers(0, 17, size=2)
        mask[r:r + 16, c:c + 16] = big
        fg, bg = rng.uniform(0.5, 1.0, 3), rng.uniform(0.0, 0.5, 3)
        out[i] = bg[:, None, None] + (fg - bg)[:, None, None] * mask
        out[i] += rng.normal(0.0, 0.1, (3, 32, 32))
    return out


def task_data(task: Task):
    """(x_train, x_test, y_train, y_test) of a task."""
    x_train, x_test, y_train, y_test = load_digits_split()
    if task.name == "resnet8":
        x_train, x_test = digits_on_canvas(x_train, 7016), digits_on_canvas(x_test, 7017)
    return x_train, x_test, y_train, y_test


def build_model(task: Task):
    """A fresh torch model of the task (ResNet-8 ends at its logits)."""
    model = build_architectures()[task.arch]()
    if hasattr(model, "softmax"):
        model.softmax = torch.nn.Identity()
    return model


def train_teacher(task: Task, x, y):
    """The teacher, trained as tools/make_models.py trains the digits CNN (Adam, lr 3e-3,
    weight decay 1e-4, batch 32, seeded); ResNet-8 with a one-cycle schedule peaking at 3e-3
    (20 epochs at a constant rate left it at 86%, one-cycle reaches 96%)."""
    deterministic(1004)
    model = build_model(task)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = task.teacher_epochs * ((len(x) + 31) // 32)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
             if task.one_cycle else None)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(3004)
    model.train()
    for _ in range(task.teacher_epochs):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order), 32):
            idx = order[i:i + 32]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
            if sched is not None:
                sched.step()
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


def torch_pruning_at(teacher, example_shape: tuple[int, ...], budget: float):
    """A Torch-Pruning copy of `teacher` with at most `budget` of its MACs."""
    import torch_pruning as tp

    example = torch.randn(*example_shape)
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


def compare(task: Task, budget: float, epochs: int, lr: float) -> dict:
    """Train the teacher, prune it both ways, fine-tune both, measure."""
    x_train, x_test, y_train, y_test = task_data(task)
    teacher = train_teacher(task, x_train, y_train)
    calib_idx = np.sort(np.random.default_rng(5004).choice(len(x_train), 200, replace=False))
    row = {"task": task.name, "test_images": len(y_test), "epochs": epochs, "lr": lr,
           "teacher": torch_accuracy(teacher, x_test, y_test)}

    tp_model, row["tp_macs"] = torch_pruning_at(teacher, task.input_shape, budget)
    row["tp_pruned"] = torch_accuracy(tp_model, x_test, y_test)
    tp_model = fine_tune(tp_model, teacher, x_train, y_train, epochs, lr)
    row["tp_tuned"] = torch_accuracy(tp_model, x_test, y_test)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{task.name}.onnx"
        export_onnx(teacher, task.input_shape, path, "x", "logits")
        calib = [{"x": x_train[i:i + 1]} for i in calib_idx]
        test = [{"x": x_test[i:i + 1]} for i in range(len(x_test))]
        result = prune_model_file(path, target_macs=budget, samples=calib,
                                  eval_samples=test, labels=y_test)
        bare = prune_model_file(path, target_macs=budget, samples=calib, do_recover=False)
        tuned = {key: distill(onnx.load(str(path)), model, x_train, y_train, epochs=epochs,
                              lr=lr) for key, model in (("ec_tuned", result.model),
                                                        ("ec_bare_tuned", bare.model))}
        for key, model in tuned.items():
            row[key] = 100.0 * float(np.mean([int(np.argmax(o)) == t
                                              for o, t in zip(run_ort(model, test), y_test)]))
    r = result.report
    row.update(ec_macs=r["after_pruning"]["macs"] / r["before"]["macs"],
               ec_pruned=r["accuracy"]["pruned"], ec_recovered=r["accuracy"]["recovered"])
    return row


def markdown(rows: list[dict]) -> str:
    """The docs/benchmarks.md section."""
    lines = [BEGIN, "## Pruning side by side with Torch-Pruning (tools/prune_vs_torch_pruning.py)",
             "", "Same teacher, same MAC budget, then the same fine-tuning for both: Adam, "
             "distillation loss (T=4, alpha=0.7) on the train split. Torch-Pruning 1.6 "
             "(MagnitudePruner, L2, uniform); edgec prune (l2, uniform, label-free recovery "
             "on 200 train images before fine-tuning; and without it, to separate the "
             "ranking from the recovery). Test-split accuracy; one seed, one test image is "
             f"{100 / rows[0]['test_images']:.2f} point.", "",
             "| task | teacher | | MACs kept | pruned | after label-free recovery | "
             "after fine-tuning |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        task = TASKS[r["task"]]
        head = (f"| {task.title}: {task.data_note}, {r['test_images']} test images, "
                f"{r['epochs']} epochs at lr {r['lr']} | {r['teacher']:.2f}%")
        lines.append(f"{head} | Torch-Pruning | {r['tp_macs']:.1%} | {r['tp_pruned']:.2f}% | — "
                     f"| {r['tp_tuned']:.2f}% |")
        lines.append(f"| | | edgec | {r['ec_macs']:.1%} | {r['ec_pruned']:.2f}% | "
                     f"{r['ec_recovered']:.2f}% | {r['ec_tuned']:.2f}% |")
        lines.append(f"| | | edgec without recovery | {r['ec_macs']:.1%} | "
                     f"{r['ec_pruned']:.2f}% | — | {r['ec_bare_tuned']:.2f}% |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the tasks, print the section, optionally write it."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="digits,resnet8")
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--write", metavar="MD")
    args = ap.parse_args(argv)
    rows = []
    for name in args.tasks.split(","):
        rows.append(compare(TASKS[name], args.budget, args.epochs, args.lr))
        print(rows[-1], flush=True)
    section = markdown(rows)
    print(section)
    if args.write:
        from edgec.markdown import replace_section

        replace_section(Path(args.write), BEGIN, END, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
