"""Targets as data: name -> backend, precision, ISA flags, toolchain, how to run, pipeline.

Adding a target is adding a row. The pass pipeline of a target is a list of pass names
(see edgec.passes); the C backend chooses kernels from `isa`.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgec.errors import TargetError

# Pass pipelines (names registered in edgec.passes).
FP32_PIPELINE = (
    "fuse-dynamic-quant-matmul",
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
    bare_metal: bool = False  # firmware: no OS; section macros in the C (docs/cortex-m.md)

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
    name="arm64-int8-i8mm",
    description="arm64 ARMv8.6-A with the int8 matrix multiply extension (SMMLA) and dot "
                "product, int8; cross-compiled, runs under qemu-aarch64 -cpu max",
    precision="int8",
    isa="arm64-i8mm",
    cflags=("-O3", "-march=armv8.2-a+dotprod+i8mm"),
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


# Cortex-M (docs/cortex-m.md): bare-metal firmware built with arm-none-eabi-gcc, verified and
# measured in qemu-system-arm (edgec/cortexm/: board images, runner, instruction counts). The
# isa values are matched by no kernel selection yet, so these targets get the portable C
# kernels (bit-exact with generic-int8); the DSP/Helium kernels live in
# codegen/c/runtime/edgec_cm_*.h until they are wired into the kernel selection.
CORTEXM_APT = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
CORTEXM_COMMON = dict(
    cc="arm-none-eabi-gcc",
    ldflags=(),
    alignment=16,
    apt_packages=CORTEXM_APT,
    host_runnable=False,
    bare_metal=True,
)
for _core, _isa, _fp, _desc in (
    ("m0", "armv6m", ("-mfloat-abi=soft",), "ARMv6-M (Cortex-M0/M0+), no DSP, no FPU"),
    ("m4", "armv7em-dsp", ("-mfloat-abi=soft",), "ARMv7E-M with the DSP extension (SMLAD)"),
    ("m7", "armv7em-dsp", ("-mfloat-abi=soft",), "ARMv7E-M with the DSP extension (SMLAD)"),
    ("m55", "armv8.1m-mve", ("-mfloat-abi=hard",), "ARMv8.1-M with Helium (MVE)"),
):
    register_target(Target(
        name=f"cortex-{_core}-int8",
        description=f"Cortex-{_core.upper()} {_desc}, int8; bare-metal, runs under "
                    "qemu-system-arm",
        precision="int8",
        isa=_isa,
        cflags=("-O2", f"-mcpu=cortex-{_core}", "-mthumb", *_fp),
        pipeline=INT8_FLOAT_PIPELINE,
        quant_pipeline=QUANT_PIPELINE,
        **CORTEXM_COMMON,
    ))
for _core, _fpu in (("m4", "fpv4-sp-d16"), ("m7", "fpv5-d16")):
    register_target(Target(
        name=f"cortex-{_core}-fp32",
        description=f"Cortex-{_core.upper()}F with its FPU ({_fpu}, hard-float ABI), float32; "
                    "bare-metal, runs under qemu-system-arm",
        isa="armv7em-fpu",
        cflags=("-O2", f"-mcpu=cortex-{_core}", "-mthumb", "-mfloat-abi=hard", f"-mfpu={_fpu}"),
        **CORTEXM_COMMON,
    ))


# CoreML (docs/coreml.md): ML Program .mlpackage built with coremltools' MIL builder
# (codegen/coreml/). MIL is channels-first, so the pipeline leaves layout-nhwc out; residual
# adds stay Adds (MIL fuses what the Neural Engine wants). No C toolchain is involved.
COREML_PIPELINE = tuple(p for p in FP32_PIPELINE if p not in (
    "fuse-residual", "layout-nhwc", "fuse-input-transpose", "fuse-pool-gemm"))
for _precision, _name, _desc in (
    ("fp32", "coreml-fp32", "float32 compute (CPU/GPU)"),
    ("fp16", "coreml-fp16", "float16 compute, the Neural Engine's precision"),
    ("int8-weights", "coreml-int8", "edgec's per-channel int8 weights as CoreML weight "
                                    "quantisation (iOS16+), float16 compute"),
):
    register_target(Target(
        name=_name,
        description=f"CoreML ML Program (.mlpackage), {_desc}",
        backend="coreml",
        precision=_precision,
        cc="",
        cflags=(),
        ldflags=(),
        pipeline=COREML_PIPELINE,
    ))


# TFLite (docs/tflite.md): a .tflite flatbuffer written by codegen/tflite/, run by LiteRT and
# tflite-micro. int8: the C int8 targets' passes, calibration and quantisation (the file
# carries edgec's scales and zero points); fp32: the fp32 pipeline without the C-only fusions
# (residual adds, input transposes and pools fused into kernels have no TFLite operator).
TFLITE_FP32_PIPELINE = tuple(p for p in FP32_PIPELINE if p not in (
    "fuse-residual", "fuse-input-transpose", "fuse-pool-gemm"))
register_target(Target(
    name="tflite-int8",
    description="TFLite flatbuffer, full integer: int8 activations, per-channel int8 weights, "
                "int32 bias (LiteRT, tflite-micro, NNAPI)",
    backend="tflite", precision="int8", cc="", cflags=(), ldflags=(),
    pipeline=INT8_FLOAT_PIPELINE, quant_pipeline=QUANT_PIPELINE,
))
register_target(Target(
    name="tflite-fp32",
    description="TFLite flatbuffer, float32 (LiteRT, tflite-micro, GPU delegate)",
    backend="tflite", cc="", cflags=(), ldflags=(), pipeline=TFLITE_FP32_PIPELINE,
))
register_target(Target(
    name="tflite-fp16",
    description="TFLite flatbuffer, float16 weights (DEQUANTIZE to float32 at load), float32 "
                "compute; half the weight bytes (GPU delegate)",
    backend="tflite", precision="fp16", cc="", cflags=(), ldflags=(),
    pipeline=TFLITE_FP32_PIPELINE,
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
