#!/usr/bin/env python3
"""Build edgec's QEMU TCG instruction-counting plugin for the installed qemu-aarch64.

    python tools/build_tcg_plugin.py [--force]

Debian's QEMU supports plugins but ships neither plugins nor the plugin API header, so:
  1. the header `include/qemu/qemu-plugin.h` is extracted from Debian's qemu *source* package
     of exactly the installed version (`apt-get source --download-only qemu=<version>`; a
     deb-src entry is written to /etc/apt/sources.list.d/edgec-deb-src.sources when apt has
     none). This needs root once; EDGEC_QEMU_PLUGIN_H=/path/qemu-plugin.h skips it.
  2. the plugin (source in edgec/workbench/instr_count.py, PLUGIN_SOURCE) is compiled with the host gcc
     into the cache directory ($EDGEC_CACHE_DIR, else ~/.cache/edgec/qemu-plugin-<version>/).

`edgec bench -t arm64-*` builds it on first use the same way; this tool is for set-up
scripts and for seeing where it went.
"""

from __future__ import annotations

import argparse
import sys

from edgec.errors import EdgecError
from edgec.workbench.instr_count import build_plugin


def main(argv: list[str] | None = None) -> int:
    """Build the plugin and print its path."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--force", action="store_true", help="rebuild even if it exists")
    args = ap.parse_args(argv)
    try:
        path = build_plugin(force=args.force)
    except EdgecError as e:
        print(f"build_tcg_plugin: error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
