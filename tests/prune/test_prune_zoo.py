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


def test_global_ranking_with_activation_criterion():
    result = prune_model_file(ZOO_DIR / "resnet8.onnx", ratio=0.4, criterion="activation",
                              mode="global", max_ratio=0.8)
    onnx.checker.check_model(result.model)
    groups = [g for g in result.report["groups"] if g["blocked_by"] is None]
    removed = sum(g["channels"] - g["kept"] for g in groups)
    total = sum(g["channels"] for g in groups)
    assert removed == pytest.approx(0.4 * total, abs=len(groups))
    fractions = {round(g["kept"] / g["channels"], 2) for g in groups}
    assert len(fractions) > 1  # one threshold over all groups: fractions differ per group
    assert all(g["kept"] >= 0.2 * g["channels"] for g in groups)  # --max-ratio 0.8


def test_sensitivity_table(capsys):
    from edgec.cli import main

    assert main(["prune", str(ZOO_DIR / "dscnn.onnx"), "--sensitivity"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["group", "channels", "r=0.1"]
    rows = [line.split() for line in lines[1:] if line.strip()[:1].isdigit()]
    assert len(rows) == 5
    snr = [float(v) for v in rows[0][2:7]]
    assert snr[0] > snr[-1]  # removing more channels costs more fidelity


def test_sensitivity_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from edgec.cli import main

    png = tmp_path / "s.png"
    assert main(["prune", str(ZOO_DIR / "dscnn.onnx"), "--sensitivity", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
