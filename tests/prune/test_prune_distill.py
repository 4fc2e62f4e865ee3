"""IR -> torch module (against onnxruntime), the distillation loss (against a numpy formula)
and distillation fine-tuning of the pruned digits CNN on its real data."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgec.prune.distill import kd_loss, to_module
from edgec.prune.driver import prune_model_file, run_ort
from tests.helpers import ZOO_DIR


@pytest.mark.parametrize("name", ["digits_cnn", "resnet8", "dscnn"])
def test_torch_module_matches_onnxruntime(name):
    model = onnx.load(str(ZOO_DIR / f"{name}.onnx"))
    module = to_module(model).eval()
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(1)
    x = rng.standard_normal([3] + shape[1:]).astype(np.float32)
    want = np.concatenate(run_ort(model, [{model.graph.input[0].name: x[i:i + 1]}
                                          for i in range(3)]))
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_kd_loss_formula():
    rng = np.random.default_rng(2)
    s, t = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    y = np.array([0, 3, 1, 4])

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    temp, alpha = 4.0, 0.7
    pt, ps = softmax(t / temp), softmax(s / temp)
    kl = np.mean(np.sum(pt * (np.log(pt) - np.log(ps)), axis=1))
    ce = np.mean(-np.log(softmax(s)[np.arange(4), y]))
    want = alpha * temp ** 2 * kl + (1 - alpha) * ce
    got = kd_loss(torch.tensor(s), torch.tensor(t), torch.tensor(y), temp, alpha)
    assert float(got) == pytest.approx(want, rel=1e-9)


def test_distillation_brings_digits_back_within_one_point():
    calib, test = np.load(ZOO_DIR / "digits_calib.npz"), np.load(ZOO_DIR / "digits_test.npz")
    samples = [{"x": calib["x"][i:i + 1]} for i in range(len(calib["x"]))]
    evals = [{"x": test["x"][i:i + 1]} for i in range(len(test["x"]))]
    result = prune_model_file(ZOO_DIR / "digits_cnn.onnx", target_macs=0.5, samples=samples,
                              eval_samples=evals, labels=test["y"], do_recover=False,
                              train=(calib["x"], calib["y"]), epochs=4, lr=2e-3)
    acc = result.report["accuracy"]
    outs = run_ort(result.model, evals)
    distilled = 100 * np.mean([int(np.argmax(o)) == y for o, y in zip(outs, test["y"])])
    assert distilled == pytest.approx(acc["distilled"])
    assert acc["pruned"] < acc["unpruned"] - 5  # pruning alone hurt...
    assert distilled >= max(acc["unpruned"] - 1.0, acc["pruned"] + 5)  # ...fine-tuning fixed it
