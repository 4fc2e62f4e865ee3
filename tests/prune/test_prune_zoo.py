"""Zoo models pruned to half their MACs: a valid, smaller model whose output SNR against the
unpruned model (onnxruntime, held-out random inputs) improves with label-free recovery."""

from __future__ import annotations

import onnx
import pytest

from edgec.prune.driver import prune_model_file
from tests.helpers import ZOO_DIR

FAST = ["resnet8", "dscnn"]
SLOW = ["mobilenetv2", "mobilenetv2_trained"]


@pytest.mark.parametrize("name", FAST + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW])
def test_half_macs_valid_and_recovery_helps(name):
    result = prune_model_file(ZOO_DIR / f"{name}.onnx", target_macs=0.5, criterion="l2")
    onnx.checker.check_model(result.model, full_check=True)
    r = result.report
    assert 0.35 * r["before"]["macs"] <= r["after_pruning"]["macs"] <= 0.5 * r["before"]["macs"]
    assert r["after_pruning"]["params"] < r["before"]["params"]
    assert r["snr_db_after_recovery"] > r["snr_db_before_recovery"] + 3
    assert not any(g["blocked_by"] for g in r["groups"] if len(g["producers"]) > 0
                   and g["id"] != r["groups"][-1]["id"])  # only the classifier is blocked
