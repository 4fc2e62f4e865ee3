"""Targets as data: name -> backend, precision, ISA flags, toolchain, how to run, pipeline.

Adding a target is adding a row. The pass pipeline of a target is a list of pass names
(see edgec.passes); the C backend chooses kernels from `isa`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import TargetError

# Pass pipelines (names registered in edgec.passes).
FP32_PIPELINE = (
    "canonicalize",
    "fold-batchnorm",
    "matmul-to-gemm",
    "fold-scale-shift",
    "fuse-residual",
    "fuse-activation",
    "canonicalize",
    "layout-nhwc",
    "canonicalize",
)


@dataclass(frozen=True)
class Target:
    """Everything edgec needs to know to compile, build and run for one target."""

    name: str
    description: str
    backend: str = "c"
    precision: str = "fp32"
    isa: str = "generic"
    cc: str = "cc"
    cflags: tuple[str, ...] = ("-O2",)
    ldflags: tuple[str, ...] = ("-lm",)
    runner: tuple[str, ...] = ()
    alignment: int = 16
    pipeline: tuple[str, ...] = FP32_PIPELINE
    apt_packages: tuple[str, ...] = ()
    host_runnable: bool = True
    features: frozenset = field(default_factory=frozenset)

    @property
    def is_int8(self) -> bool:
        """True for integer-quantised targets."""
        return self.precision == "int8"


_TARGETS: dict[str, Target] = {}


def register_target(t: Target) -> Target:
    """Add a target (names are unique)."""
    if t.name in _TARGETS:
        raise ValueError(f"target {t.name} is defined twice")
    _TARGETS[t.name] = t
    return t


register_target(Target(
    name="generic-fp32",
    description="portable C99, float32; any C compiler (the reference for every other target)",
    cflags=("-O2",),
))
register_target(Target(
    name="x86_64-fp32",
    description="x86_64 with AVX2+FMA, float32 (host build)",
    isa="x86_64-avx2",
    cflags=("-O3", "-mavx2", "-mfma"),
    alignment=64,
    features=frozenset({"avx2", "fma"}),
))


def get_target(name: str) -> Target:
    """The target called `name`; TargetError listing the known targets otherwise."""
    try:
        return _TARGETS[name]
    except KeyError:
        known = ", ".join(sorted(_TARGETS))
        raise TargetError(f"unknown target '{name}'; known targets: {known}") from None


def all_targets() -> dict[str, Target]:
    """Every target by name, sorted."""
    return dict(sorted(_TARGETS.items()))
