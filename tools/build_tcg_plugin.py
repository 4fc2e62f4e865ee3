#!/usr/bin/env python3
"""Build edgec's QEMU TCG instruction-counting plugin for the installed qemu-aarch64.

    python tools/build_tcg_plugin.py [--force] [--from-source DIR]

Debian's QEMU supports plugins but ships neither plugins nor the plugin API header, so:
  1. the header `include/qemu/qemu-plugin.h` comes from Debian's qemu *source* package of
     exactly the installed version. `tools/setup.sh test` (as root) downloads it
     (`apt-get source --download-only qemu=<version>`, adding a deb-src entry when apt has
     none) and calls this tool with `--from-source DIR`, which extracts the header into the
     plugin's cache directory. EDGEC_QEMU_PLUGIN_H=/path/qemu-plugin.h skips all that.
  2. the plugin (edgec/workbench/csrc/icount_plugin.c) is compiled with the host gcc into the
     cache directory ($EDGEC_CACHE_DIR, else ~/.cache/edgec/qemu-plugin-<version>/); with
     qemu-system-arm installed, the Cortex-M counter (edgec/cortexm/plugin.py) too.

`edgec bench -t arm64-*` builds it on first use the same way once the header is there; this
tool is for set-up scripts and for seeing where it went. It changes nothing on the system.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tarfile
from pathlib import Path

from edgec.cortexm.plugin import build_cm_plugin
from edgec.errors import EdgecError, TargetError
from edgec.workbench.instr_count import build_plugin, plugin_dir

HEADER_MEMBER = "include/qemu/qemu-plugin.h"


def extract_plugin_header(source_dir: Path, dest: Path) -> Path:
    """Copy qemu-plugin.h out of the Debian qemu source package downloaded in `source_dir`
    (its upstream .orig tarball) into `dest`; refuses when a Debian patch changes it."""
    debian_tar = next(source_dir.glob("qemu_*.debian.tar.*"), None)
    if debian_tar is not None:
        with tarfile.open(debian_tar) as tf:
            for member in tf.getmembers():  # Debian's patches: none may touch it
                if not (member.isfile() and "/patches/" in member.name):
                    continue
                if HEADER_MEMBER.encode() in tf.extractfile(member).read():
                    raise TargetError(f"Debian's patch {member.name} changes qemu-plugin.h; "
                                      "extract the patched source instead")
    orig = next(source_dir.glob("qemu_*.orig.tar.*"), None)
    if orig is None:
        raise TargetError(f"{source_dir} holds no upstream qemu tarball (qemu_*.orig.tar.*)")
    with tarfile.open(orig) as tf:
        member = next((m for m in tf.getmembers() if m.name.endswith(HEADER_MEMBER)), None)
        if member is None:
            raise TargetError(f"{orig.name} holds no {HEADER_MEMBER}")
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "qemu-plugin.h").write_bytes(tf.extractfile(member).read())
    return dest / "qemu-plugin.h"


def main(argv: list[str] | None = None) -> int:
    """Extract the header when asked, build the plugin and print its path."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--force", action="store_true", help="rebuild even if it exists")
    ap.add_argument("--from-source", metavar="DIR", type=Path,
                    help="a folder holding Debian's downloaded qemu source package")
    ap.add_argument("--print-dir", action="store_true",
                    help="print the plugin's cache directory and stop")
    args = ap.parse_args(argv)
    try:
        if args.print_dir:
            print(plugin_dir())
            return 0
        if args.from_source:
            header = extract_plugin_header(args.from_source, plugin_dir())
            print(f"build_tcg_plugin: extracted {header}", file=sys.stderr)
        path = build_plugin(force=args.force, log=lambda m: print(m, file=sys.stderr))
    except EdgecError as e:
        print(f"build_tcg_plugin: error: {e}", file=sys.stderr)
        return 2
    print(path)
    if shutil.which("qemu-system-arm"):  # the Cortex-M counter (edgec/cortexm/plugin.py)
        try:
            print(build_cm_plugin(force=args.force))
        except EdgecError as e:
            print(f"build_tcg_plugin: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
