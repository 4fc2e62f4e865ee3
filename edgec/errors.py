"""User-facing errors: each carries one line that names the problem and what to do.

The CLI prints `edgec: error: <message>` and exits with code 2 for every EdgecError.
"""


class EdgecError(Exception):
    """A problem with the user's input (model, flags, data); never a bug in edgec."""

    exit_code = 2


class ModelLoadError(EdgecError):
    """The model file is missing, truncated or not ONNX."""


class UnsupportedError(EdgecError):
    """The model uses an operator, attribute or data type edgec cannot compile."""


class ConstantInputRequired(UnsupportedError):
    """An op needs an input at compile time (a shape, axes, weights) but it is computed.

    `value_name` names the IR value that would have to be constant (tools such as the
    conformance runner bind it to known data and compile again).
    """

    def __init__(self, message: str, value_name: str | None = None):
        super().__init__(message)
        self.value_name = value_name


class ShapeError(EdgecError):
    """A dynamic dimension without a size, or shapes that do not fit together."""


class TargetError(EdgecError):
    """An unknown target or a missing toolchain."""


class DataError(EdgecError):
    """Bad input or calibration data."""


class ToolchainError(EdgecError):
    """The generated code failed to compile or run."""
