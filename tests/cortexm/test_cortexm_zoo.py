"""Zoo models on every Cortex-M target, built as semihosting images and run in
qemu-system-arm: int8 outputs bit-exact with edgec's int8 reference interpreter (a final
float Softmax, a float island, within the fp32 tolerance), fp32 within the band against
onnxruntime. A representative subset runs by default, the rest is marked slow; all of them
fit their board (docs/cortex-m.md lists which fit a typical device)."""

from __future__ import annotations

import pytest

from edgec.compiler import CompileOptions
from edgec.workbench.verify import verify_model

TARGETS = ("cortex-m0-int8", "cortex-m4-int8", "cortex-m7-int8", "cortex-m55-int8",
           "cortex-m4-fp32", "cortex-m7-fp32")
FAST = {("digits_cnn", t) for t in TARGETS} | {
    ("dscnn", "cortex-m0-int8"), ("dscnn", "cortex-m4-int8"), ("dscnn", "cortex-m55-int8"),
    ("dscnn", "cortex-m4-fp32"), ("resnet8", "cortex-m7-int8")}
CASES = [pytest.param(m, t, marks=() if (m, t) in FAST else pytest.mark.slow)
         for m in ("digits_cnn", "dscnn", "resnet8") for t in TARGETS]


@pytest.mark.parametrize("model,target", CASES)
def test_zoo_model_verifies_on_the_board(zoo_dir, model, target):
    res = verify_model(zoo_dir / f"{model}.onnx", CompileOptions(target=target), seed=3)
    assert res.ok, [(o.name, o.max_rel_err, o.mismatched) for o in res.outputs]
    assert res.exact == target.endswith("-int8")
    if model == "digits_cnn" and res.exact:  # int8 logits dequantised: every bit the same
        assert all(o.mismatched == 0 for o in res.outputs)


def test_cli_verify_prints_pass(zoo_dir):
    """`edgec verify golden/models/digits_cnn.onnx -t cortex-m4-int8` as a user runs it."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "edgec.cli", "verify",
                           str(zoo_dir / "digits_cnn.onnx"), "-t", "cortex-m4-int8"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("edgec verify: PASS")
