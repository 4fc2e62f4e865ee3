"""The table from op name to its registry entry; duplicate names are refused."""

from __future__ import annotations

from edgec.errors import UnsupportedError
from edgec.ops.base import OpDef

_OPS: dict[str, OpDef] = {}


def register_op(name: str):
    """Class decorator: instantiate the OpDef subclass and register it under `name`."""

    def wrap(cls):
        if name in _OPS:
            raise ValueError(f"op {name} is registered twice")
        inst = cls()
        inst.name = name
        _OPS[name] = inst
        return cls

    return wrap


def get_op(name: str) -> OpDef:
    """The registry entry of `name`; UnsupportedError when edgec does not know the op."""
    try:
        return _OPS[name]
    except KeyError:
        raise UnsupportedError(f"operator {name} is not supported by edgec") from None


def has_op(name: str) -> bool:
    """True when `name` is registered."""
    return name in _OPS


def all_ops() -> dict[str, OpDef]:
    """A copy of the registry, sorted by name."""
    return dict(sorted(_OPS.items()))
