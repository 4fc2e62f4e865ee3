"""What edgec compiles for, as data for scripts (the `edgec targets` list)."""

from __future__ import annotations

from edgec.targets import all_targets


def targets() -> dict[str, str]:
    """Target name -> one-line description, in `edgec targets` order."""
    return {name: t.description for name, t in all_targets().items()}
