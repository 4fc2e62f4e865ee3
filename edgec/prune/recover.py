"""Label-free recovery of a pruned model (He et al. 2017, ThiNet): least squares.

A layer that lost input channels (a Conv with group 1, or a Gemm) no longer computes what it
did. For each such consumer, in graph order, its weights and bias are re-fitted so that on
calibration inputs its output (pre-activation, kept output channels only) matches the
unpruned model's:

    min_W,b || [patches(X') 1] [W; b] - Y ||^2 + lambda ||W||^2

X' is the consumer's input in the pruned model with every earlier consumer already re-fitted
(errors of earlier layers are compensated, not accumulated), Y the unpruned output. The ridge
lambda is `ridge` times the mean diagonal of the normal matrix. The bias term also does the
bias / BatchNorm-statistics correction: removed channels' mean contribution moves into b. A
fit is kept only when it lowers the reconstruction error on the sampled rows.

Rows are a seeded sample of at most `max_rows` output positions per layer, so the normal
matrices stay small (C*kh*kw + 1 columns).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from edgec.frontend.onnx import import_model
from edgec.ops import get_op
from edgec.quant.calibrate import batched_graph, input_names
from edgec.quant.fast_kernels import FAST_KERNELS


def _run_node(node, args):
    fast = FAST_KERNELS.get(node.op)
    result = fast(node, *args) if fast is not None else None
    return (result,) if result is not None else get_op(node.op).reference(node, *args)


def _forward(g, feeds, visit=None):
    """Run `g` node by node; `visit(node, args)` may replace a node's constant inputs before
    it runs and observe its output. Values are dropped after their last reader."""
    remaining: dict[str, int] = {}
    for node in g.nodes:
        for v in node.inputs:
            if v is not None and not v.is_const:
                remaining[v.name] = remaining.get(v.name, 0) + 1
    env = {v.name: feeds[n] for v, n in zip(g.inputs, input_names(g))}
    for node in g.nodes:
        args = [None if v is None else (v.data if v.is_const else env[v.name])
                for v in node.inputs]
        if visit is not None:
            args = visit(node, args, None) or args
        results = _run_node(node, args)
        for v, r in zip(node.outputs, results):
            env[v.name] = np.asarray(r).astype(v.dtype.np, copy=False).reshape(v.shape)
        if visit is not None:
            visit(node, args, env[node.outputs[0].name])
        for v in node.inputs:
            if v is not None and not v.is_const:
                remaining[v.name] -= 1
                if remaining[v.name] == 0 and v not in g.outputs:
                    env.pop(v.name, None)
    return {v.name: env[v.name] for v in g.outputs}


def _conv_patches(node, x: np.ndarray, rows: np.ndarray, out_shape) -> np.ndarray | None:
    """[len(rows), C*kh*kw] input patches of a 2-D NCHW conv at flat output positions."""
    a = node.attrs
    if x.ndim != 4 or a["group"] != 1:
        return None
    kh, kw = a["kernel_shape"]
    sh, sw = a["strides"]
    dh, dw = a["dilations"]
    pads = a["pads"]
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    _, _, ho, wo = out_shape
    n, rest = np.divmod(rows, ho * wo)
    oh, ow = np.divmod(rest, wo)
    cols = [xp[n, :, oh * sh + i * dh, ow * sw + j * dw] for i in range(kh) for j in range(kw)]
    return np.stack(cols, axis=2).reshape(len(rows), -1)


def _flat_rows(y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """[len(rows), channels] of an NC... or NC output at flat (n, spatial) positions."""
    y2 = np.moveaxis(y, 1, -1).reshape(-1, y.shape[1])
    return y2[rows]


def _gram(a: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a1 = np.concatenate([a, np.ones((len(a), 1))], axis=1)
    return a1.T @ a1, a1.T @ t


def _solve(gram: np.ndarray, rhs: np.ndarray, ridge: float) -> np.ndarray:
    lam = ridge * float(np.mean(np.diag(gram))) if len(gram) else 0.0
    reg = np.full(len(gram), lam + 1e-12)
    reg[-1] = 1e-12  # the bias is not shrunk
    return np.linalg.solve(gram + np.diag(reg), rhs)


def _fit(a: np.ndarray, t: np.ndarray, held_out: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge fit; lambda chosen among ridge * 10^k on held-out rows (whole samples), then
    refitted on every row."""
    fit = ~held_out
    gram, rhs = _gram(a[fit], t[fit])
    best, best_err = ridge, np.inf
    if held_out.any():
        for lam in (ridge, ridge * 10, ridge * 100, ridge * 1000):
            sol = _solve(gram, rhs, lam)
            err = float(np.sum((a[held_out] @ sol[:-1] + sol[-1] - t[held_out]) ** 2))
            if err < best_err:
                best, best_err = lam, err
    gram, rhs = _gram(a, t)
    return _solve(gram, rhs, best)


def recover(original: onnx.ModelProto, pruned: onnx.ModelProto, masks: dict[str, np.ndarray],
            samples: list[dict[str, np.ndarray]], ridge: float = 1e-3, max_rows: int = 20000,
            seed: int = 0, input_shapes: dict | None = None, memory_budget: float = 256e6
            ) -> tuple[onnx.ModelProto, list[dict]]:
    """The pruned model with its consumers re-fitted (module docstring) and one record per
    layer: name, rows, held-out error before and after. All samples run as one batch, so
    only as many as keep three copies of the largest activation under `memory_budget` bytes
    are used."""
    g0, g1 = import_model(original, input_shapes), import_model(pruned, input_shapes)
    largest = max((v.type.numel * 4 for n in g0.nodes for v in n.outputs), default=1)
    samples = samples[:max(2, int(memory_budget // (3 * largest)))]
    names = input_names(g1)
    feeds = {n: np.concatenate([s[n] for s in samples]) for n in names}
    n_samples = len(samples)
    b0, b1 = batched_graph(g0, len(samples)), batched_graph(g1, len(samples))
    if b0 is None or b1 is None:
        return pruned, [{"layer": "*", "skipped": "the model does not run batched"}]
    targets = {}
    for node in b1.nodes:
        x = node.inputs[0] if node.inputs else None
        if node.op not in ("Conv", "Gemm") or x is None or x.name not in masks \
                or masks[x.name].all() or not node.inputs[1].is_const:
            continue
        if node.op == "Gemm" and (node.attrs["transA"] or node.attrs["alpha"] != 1.0
                                  or node.attrs["beta"] != 1.0):
            continue
        if node.op == "Conv" and (node.attrs["group"] != 1 or len(x.shape) != 4):
            continue
        targets[node.outputs[0].name] = node
    rng = np.random.default_rng(seed)
    rows = {}
    for name, node in targets.items():
        shape = node.outputs[0].shape
        total = int(np.prod(shape)) // shape[1]
        rows[name] = np.sort(rng.choice(total, min(total, max_rows), replace=False))
    wanted = {}

    def keep_original(node, args, out):
        name = node.outputs[0].name
        if out is not None and name in rows:
            kept = masks.get(name)
            y = _flat_rows(out.astype(np.float64), rows[name])
            wanted[name] = y if kept is None else y[:, kept]
    _forward(b0, feeds, keep_original)
    records: list[dict] = []
    fitted: dict[str, np.ndarray] = {}

    def refit(node, args, out):
        name = node.outputs[0].name
        if out is not None or name not in targets:
            return None
        args = list(args) + [None] * (3 - len(args))
        x = args[0].astype(np.float64)
        if node.op == "Conv":
            a = _conv_patches(node, x, rows[name], node.outputs[0].shape)
            w = args[1].astype(np.float64)
            w2 = w.reshape(w.shape[0], -1).T
        else:
            a = x[rows[name]]
            w = args[1].astype(np.float64)
            w2 = w.T if node.attrs["transB"] else w
        b = np.zeros(w2.shape[1]) if args[2] is None else args[2].astype(np.float64).reshape(-1)
        t = wanted[name]
        per_sample = int(np.prod(node.outputs[0].shape)) // node.outputs[0].shape[1] // n_samples
        held_out = (rows[name] // per_sample) % 4 == 3 if n_samples >= 4 else \
            np.zeros(len(t), bool)
        check = held_out if held_out.any() else np.ones(len(t), bool)
        first = _fit(a[~held_out], t[~held_out], np.zeros(int((~held_out).sum()), bool), ridge) \
            if held_out.any() else None
        sol = _fit(a, t, held_out, ridge)
        probe = first if first is not None else sol
        scale = float(np.sum(t[check] ** 2)) or 1.0
        e0 = float(np.sum((a[check] @ w2 + b - t[check]) ** 2)) / scale
        e1 = float(np.sum((a[check] @ probe[:-1] + probe[-1] - t[check]) ** 2)) / scale
        records.append({"layer": node.name, "rows": int(len(t)), "held_out_error_before": e0,
                        "held_out_error_after": min(e0, e1), "refitted": e1 < e0})
        if e1 >= e0:
            return None
        if node.op == "Conv":
            new_w = sol[:-1].T.reshape(w.shape)
        else:
            new_w = sol[:-1].T if node.attrs["transB"] else sol[:-1]
        new_b = sol[-1]
        fitted[node.name] = (new_w.astype(np.float32), new_b.astype(np.float32))
        args[1] = new_w.astype(args[1].dtype)
        b_out = new_b.astype(np.float32)
        args[2] = b_out.reshape(args[2].shape) if args[2] is not None else b_out
        return args
    _forward(b1, feeds, refit)
    return _write_back(pruned, g1, fitted), records


def _write_back(pruned: onnx.ModelProto, g1, fitted) -> onnx.ModelProto:
    out = onnx.ModelProto.FromString(pruned.SerializeToString())
    inits = {t.name: t for t in out.graph.initializer}
    by_output = {n.output[0]: n for n in out.graph.node}
    for node in g1.nodes:
        if node.name not in fitted:
            continue
        w, b = fitted[node.name]
        onode = by_output[node.outputs[0].name]
        for index, data in ((1, w), (2, b)):
            name = onode.input[index] if index < len(onode.input) else ""
            if name in inits:
                old = numpy_helper.to_array(inits[name])
                inits[name].CopyFrom(numpy_helper.from_array(data.reshape(old.shape)
                                                             .astype(old.dtype), name))
            else:
                new_name = f"{node.name}_bias__recovered"
                out.graph.initializer.append(numpy_helper.from_array(data, new_name))
                while len(onode.input) < index:
                    onode.input.append("")
                if len(onode.input) == index:
                    onode.input.append(new_name)
                else:
                    onode.input[index] = new_name
    onnx.checker.check_model(out)
    return out
