"""Knowledge-distillation fine-tuning of a pruned (student) model with labels.

loss = alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y), T = 4 and
alpha = 0.7 by default (Hinton et al.; the teacher's softened distribution is the target).
The teacher is the unpruned model, the student the pruned one, both converted from edgec's
IR to torch (torch_module.py) on the CPU. Trained weights go back into the student's ONNX
initializers by name, so the model keeps its structure and names.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

from edgec.frontend.onnx import import_model
from edgec.prune.torch_module import IRModule


def to_module(model: onnx.ModelProto, input_shapes: dict | None = None) -> IRModule:
    """The torch module of an fp32 ONNX model (through edgec's IR; dynamic inputs fixed by
    `input_shapes`, the batch stays free)."""
    return IRModule(import_model(model, input_shapes), {t.name for t in model.graph.initializer})


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
            temperature: float = 4.0, alpha: float = 0.7) -> torch.Tensor:
    """alpha * T^2 * KL(teacher || student at temperature T) + (1 - alpha) * CE."""
    soft = F.kl_div(F.log_softmax(student / temperature, dim=1),
                    F.softmax(teacher / temperature, dim=1), reduction="batchmean")
    return alpha * temperature ** 2 * soft + (1 - alpha) * F.cross_entropy(student, labels)


def distill(teacher: onnx.ModelProto, student: onnx.ModelProto, x: np.ndarray, y: np.ndarray,
            epochs: int = 10, lr: float = 1e-3, batch: int = 32, temperature: float = 4.0,
            alpha: float = 0.7, seed: int = 0, input_shapes: dict | None = None,
            progress: Callable[[int, float, float], None] | None = None,
            keep_zero: dict[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """Fine-tune `student` on (x, y) against `teacher`; returns the trained student model.
    `progress(epoch, mean loss, train accuracy %)` is called after every epoch. `keep_zero`
    (initializer name -> bool mask of the weights allowed to be non-zero) keeps the zeros of
    magnitude pruning zero: masked weights are reset to zero after every step."""
    torch.manual_seed(seed)
    t_mod = to_module(teacher, input_shapes).eval()
    s_mod = to_module(student, input_shapes).train()
    xs = torch.from_numpy(np.asarray(x, np.float32))
    ys = torch.from_numpy(np.asarray(y, np.int64).reshape(-1))
    with torch.no_grad():
        t_logits = torch.cat([t_mod(xs[i:i + batch]) for i in range(0, len(xs), batch)])
    opt = torch.optim.Adam(s_mod.parameters(), lr=lr)
    masks = {name: (s_mod.value(name), torch.from_numpy(np.asarray(m, np.float32)))
             for name, m in (keep_zero or {}).items() if name in s_mod.param_names
             and tuple(s_mod.value(name).shape) == np.shape(m)}
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(xs), generator=gen)
        total, hits = 0.0, 0
        for i in range(0, len(xs), batch):
            idx = order[i:i + batch]
            out = s_mod(xs[idx])
            loss = kd_loss(out, t_logits[idx], ys[idx], temperature, alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for param, mask in masks.values():
                    param.mul_(mask)
            total += loss.item() * len(idx)
            hits += int((out.argmax(1) == ys[idx]).sum())
        if progress is not None:
            progress(epoch + 1, total / len(xs), 100.0 * hits / len(xs))
    out = onnx.ModelProto.FromString(student.SerializeToString())
    trained = s_mod.trained()
    for t in out.graph.initializer:
        if t.name in trained:
            t.CopyFrom(numpy_helper.from_array(trained[t.name].astype(np.float32), t.name))
    onnx.checker.check_model(out)
    return out
