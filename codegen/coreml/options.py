"""Command-line options of the CoreML targets (parsed by edgec/cli.py; no coremltools here)."""

from __future__ import annotations

import argparse

COREML_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18", "macOS12", "macOS13", "macOS14",
                  "macOS15", "watchOS8", "watchOS9", "watchOS10", "watchOS11", "tvOS15",
                  "tvOS16", "tvOS17", "tvOS18")


def add_coreml_args(p: argparse.ArgumentParser) -> None:
    """--coreml-target: the minimum deployment target of a coreml-* package."""
    q = p.add_argument_group("CoreML targets (coreml-*; see docs/coreml.md)")
    q.add_argument("--coreml-target", choices=COREML_TARGETS, metavar="OS",
                   help="minimum deployment target of the .mlpackage, e.g. iOS16 or macOS13 "
                        "(default: the earliest the model's features allow: iOS15, or iOS16 "
                        "for int8 weights)")
