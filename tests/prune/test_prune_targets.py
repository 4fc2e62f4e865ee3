"""ResNet-8, DS-CNN and both MobileNetV2s pruned to 50% of their MACs (l2, label-free
recovery) compile and verify on the fp32 and int8 targets: fp32 against onnxruntime running
the pruned ONNX file, int8 bit-exact against edgec's int8 interpreter (edgec verify's rules).

Fast: the two small models on the portable targets. Slow: the small models on the ISA
targets (x86_64 needs AVX2 on the host; arm64 the cross gcc and qemu-aarch64), one test per
model so that a model is pruned once. The MobileNetV2s split the six targets between them
(int8 verification of a 224x224 MobileNetV2 takes 1-3 minutes per target here, so the suite
runs each target once on one of them); tools/prune_bench.py --verify-all runs the full matrix.
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import onnx
import pytest

from edgec.compiler import CompileOptions
from edgec.prune.driver import prune_model_file
from edgec.workbench.verify import verify_model
from tests.helpers import ZOO_DIR

PORTABLE = ["generic-fp32", "generic-int8"]
ISA = ["x86_64-fp32", "arm64-fp32", "x86_64-int8", "arm64-int8"]
RTOL = 1e-4  # as tests/e2e/test_zoo.py holds the unpruned models


def target_available(target: str) -> bool:
    """Whether this host can build and run `target`'s code."""
    if target.startswith("arm64"):
        return bool(shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64"))
    if target.startswith("x86_64"):
        with open("/proc/cpuinfo") as f:
            return " avx2 " in f" {f.read()} "
    return True


@functools.cache
def pruned_path(name: str, folder: str) -> Path:
    """The zoo model `name` pruned to 50% of its MACs, saved once per session."""
    result = prune_model_file(ZOO_DIR / f"{name}.onnx", target_macs=0.5)
    r = result.report
    assert r["after_pruning"]["macs"] <= 0.5 * r["before"]["macs"]
    path = Path(folder) / f"{name}_pruned.onnx"
    onnx.save(result.model, str(path))
    return path


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    """One folder for this module's pruned models."""
    return str(tmp_path_factory.mktemp("pruned"))


def check(path: Path, target: str) -> None:
    """verify_model on one target, with edgec verify's pass rule and the e2e fp32 bound."""
    res = verify_model(path, CompileOptions(target=target), seed=3, rtol=RTOL)
    detail = [o.as_dict() for o in res.outputs]
    assert res.ok, (target, detail)
    if target.endswith("int8"):
        assert res.exact, (target, detail)  # bit-exact with the int8 interpreter
    else:
        assert all(o.max_rel_err <= RTOL for o in res.outputs), (target, detail)


@pytest.mark.parametrize("target", PORTABLE)
@pytest.mark.parametrize("name", ["resnet8", "dscnn"])
def test_pruned_small_models_verify_portable(zoo_dir, folder, name, target):
    check(pruned_path(name, folder), target)


@pytest.mark.slow
@pytest.mark.parametrize("name,targets", [
    ("resnet8", ISA), ("dscnn", ISA),
    ("mobilenetv2", ["generic-fp32", "arm64-fp32", "x86_64-int8"]),
    ("mobilenetv2_trained", ["x86_64-fp32", "generic-int8", "arm64-int8"])])
def test_pruned_models_verify_on_isa_targets(zoo_dir, folder, name, targets):
    runnable = [t for t in targets if target_available(t)]
    if not runnable:
        pytest.skip(f"{name}: none of {targets} can run here (host ISA, cross gcc, qemu)")
    path = pruned_path(name, folder)
    for target in runnable:
        check(path, target)
