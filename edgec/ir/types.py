"""Value types of the edgec IR: element types, static tensor types and quantisation parameters."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from edgec.errors import ShapeError


class NegativeDimensionError(ShapeError, ValueError):
    """Shape arithmetic on a model's data gave a negative size (a ShapeError: bad input)."""


class DType(enum.Enum):
    """Element types a tensor of the IR can hold (values are the numpy names)."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    FLOAT64 = "float64"
    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    BOOL = "bool"

    @property
    def np(self) -> np.dtype:
        """The numpy dtype of this element type."""
        return np.dtype(self.value)

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return self.np.itemsize

    @property
    def ctype(self) -> str:
        """The C99 type used for this element type in generated code."""
        return _CTYPES[self]

    @property
    def is_float(self) -> bool:
        """True for floating-point element types."""
        return self in (DType.FLOAT32, DType.FLOAT16, DType.FLOAT64)

    @classmethod
    def from_numpy(cls, dtype) -> "DType":
        """Map a numpy dtype (or anything np.dtype accepts) to a DType."""
        name = np.dtype(dtype).name
        try:
            return cls(name)
        except ValueError:
            raise TypeError(f"element type {name} is not supported by edgec") from None


_CTYPES = {
    DType.FLOAT32: "float",
    DType.FLOAT16: "uint16_t",
    DType.FLOAT64: "double",
    DType.INT8: "int8_t",
    DType.UINT8: "uint8_t",
    DType.INT16: "int16_t",
    DType.INT32: "int32_t",
    DType.INT64: "int64_t",
    DType.BOOL: "uint8_t",
}


@dataclass(frozen=True)
class TensorType:
    """A statically shaped tensor type: every dimension is a known non-negative int."""

    shape: tuple[int, ...]
    dtype: DType = DType.FLOAT32

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if any(d < 0 for d in self.shape):
            raise NegativeDimensionError(f"negative dimension in shape {self.shape}")

    @property
    def rank(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def numel(self) -> int:
        """Number of elements (1 for a scalar)."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Bytes needed to store the tensor densely."""
        return self.numel * self.dtype.itemsize

    def with_shape(self, shape) -> "TensorType":
        """The same element type with another shape."""
        return TensorType(tuple(shape), self.dtype)

    def __str__(self) -> str:
        dims = "x".join(str(d) for d in self.shape) if self.shape else "scalar"
        return f"{self.dtype.value}[{dims}]"


@dataclass
class QuantParams:
    """Affine quantisation: real = scale * (q - zero_point), per tensor or per `axis`."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int | None = None
    dtype: DType = DType.INT8
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.scale = np.atleast_1d(np.asarray(self.scale, dtype=np.float32))
        self.zero_point = np.atleast_1d(np.asarray(self.zero_point, dtype=np.int32))
        if self.axis is None and (self.scale.size != 1 or self.zero_point.size != 1):
            raise ValueError("per-tensor quantisation needs exactly one scale and zero point")
        if self.zero_point.size not in (1, self.scale.size):
            raise ValueError("zero_point must have one value or one per scale")
        if np.any(self.scale <= 0) or not np.all(np.isfinite(self.scale)):
            raise ValueError("quantisation scales must be positive and finite")

    @property
    def per_axis(self) -> bool:
        """True when there is one scale per slice along `axis`."""
        return self.axis is not None

    def __str__(self) -> str:
        if self.per_axis:
            return f"q{self.dtype.value}(axis={self.axis}, n={self.scale.size})"
        return f"q{self.dtype.value}(s={float(self.scale[0]):.6g}, zp={int(self.zero_point[0])})"
