"""Targets as data: name -> backend, precision, ISA flags, toolchain, how to run, pipeline.

Adding a target is adding a row. The pass pipeline of a target is a list of pass names
(see edgec.passes); the C backend chooses kernels from `isa`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import TargetError

# Pass pipelines (names registered in edgec.passes).
FP32_PIPELINE = (
    "canonicalize",
    "fold-pad",
    "fold-batchnorm",
    "matmul-to-gemm",
    "fold-scale-shift",
    "fuse-residual",
    "fuse-activation",
    "canonicalize",
    "layout-nhwc",
    "fold-pad",
    "canonicalize",
    "fuse-input-transpose",
    "fuse-pool-gemm",
)

# int8 targets: the fp32 pipeline without residual fusion (int8 adds are their own QAdd
# kernels), preceded by import-qdq (pre-quantised models: DQ -> op -> Q patterns become int8
# ops before anything folds their dequantised weights). After it, the compile driver
# calibrates and runs QUANT_PIPELINE (edgec/compiler.py, docs/int8.md).
INT8_FLOAT_PIPELINE = ("import-qdq",) + tuple(
    p for p in FP32_PIPELINE
    if p not in ("fuse-residual", "fuse-input-transpose", "fuse-pool-gemm")
)
QUANT_PIPELINE = ("quantize", "canonicalize")


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
    quant_pipeline: tuple[str, ...] = ()
    apt_packages: tuple[str, ...] = ()
    host_runnable: bool = True

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
))

register_target(Target(
    name="generic-int8",
    description="portable C99, int8 (TFLite scheme: per-channel int8 weights, int8 "
                "activations, fixed-point requantisation); any C compiler",
    precision="int8",
    cflags=("-O2",),
    pipeline=INT8_FLOAT_PIPELINE,
    quant_pipeline=QUANT_PIPELINE,
))
register_target(Target(
    name="x86_64-int8",
    description="x86_64 with AVX2, int8 (AVX2 kernels: vpmaddwd dot products, vectorised "
                "fixed-point requantisation; bit-exact with generic-int8)",
    precision="int8",
    isa="x86_64-avx2",
    cflags=("-O3", "-mavx2", "-mfma"),
    alignment=64,
    pipeline=INT8_FLOAT_PIPELINE,
    quant_pipeline=QUANT_PIPELINE,
))

register_target(Target(
    name="x86_64-int8-vnni",
    description="x86_64 with AVX2 and AVX-512 VNNI (vpdpbusd on 256-bit vectors), int8; the "
                "host must have avx512_vnni (e.g. Zen 4, Ice Lake and later)",
    precision="int8",
    isa="x86_64-avx512vnni",
    cflags=("-O3", "-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni"),
    alignment=64,
    pipeline=INT8_FLOAT_PIPELINE,
    quant_pipeline=QUANT_PIPELINE,
))

# arm64 (docs/arm64.md): cross-compiled with Debian's aarch64-linux-gnu-gcc, linked statically
# so that qemu-aarch64 runs the executable without a guest sysroot. The runner's `-cpu` is the
# oldest core each build claims to support: a Cortex-A53 (ARMv8.0) raises SIGILL on any
# dot-product or later instruction, so the fp32 and -base builds prove they contain none.
ARM64_APT = ("gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross", "qemu-user")
ARM64_COMMON = dict(
    cc="aarch64-linux-gnu-gcc",
    ldflags=("-static", "-lm"),
    alignment=16,
    apt_packages=ARM64_APT,
    host_runnable=False,
)
register_target(Target(
    name="arm64-fp32",
    description="arm64 (ARMv8-A) with NEON, float32; cross-compiled, runs under qemu-aarch64",
    isa="arm64-neon",
    cflags=("-O3", "-march=armv8-a"),
    runner=("qemu-aarch64", "-cpu", "cortex-a53"),
    **ARM64_COMMON,
))
register_target(Target(
    name="arm64-int8",
    description="arm64 ARMv8.2-A with NEON and the dot-product extension (SDOT), int8; "
                "cross-compiled, runs under qemu-aarch64",
    precision="int8",
    isa="arm64-dotprod",
    cflags=("-O3", "-march=armv8.2-a+dotprod"),
    runner=("qemu-aarch64", "-cpu", "max"),
    pipeline=INT8_FLOAT_PIPELINE,
    quant_pipeline=QUANT_PIPELINE,
    **ARM64_COMMON,
))
register_target(Target(
    name="arm64-int8-base",
    description="arm64 ARMv8.0-A with NEON and no dot product (e.g. Cortex-A53), int8; "
                "cross-compiled, runs under qemu-aarch64 -cpu cortex-a53",
    precision="int8",
    isa="arm64-neon",
    cflags=("-O3", "-march=armv8-a"),
    runner=("qemu-aarch64", "-cpu", "cortex-a53"),
    pipeline=INT8_FLOAT_PIPELINE,
    quant_pipeline=QUANT_PIPELINE,
    **ARM64_COMMON,
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
