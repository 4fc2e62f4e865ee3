"""Writing an output folder without ever losing a file edgec did not write.

The files go to a fresh hidden sibling `.OUT.xxxxxxxx`, which then takes the destination's
place in one rename; an earlier copy is renamed to `.OUT.old.xxxxxxxx` first and deleted
after. Every folder edgec writes holds a marker, `.edgec_output.json`, listing the files it
wrote. An existing destination is replaced only when it is empty, or when it holds the marker
and nothing but the files the marker lists (a folder from an edgec without markers counts when
it holds an edgec report.json and only the files named after its prefix). Anything else is
refused with one line naming the foreign files: nothing is deleted. The current directory (or
a folder holding it) is refused too, since replacing it would pull the ground from under the
shell.

Temporaries are removed on success, on any error, on SIGINT, SIGTERM and SIGHUP (during the
write SIGTERM/SIGHUP raise `edgec.console.Terminated`; the rename swap and the clean-up
itself finish before any of these signals is acted on).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from edgec import __version__
from edgec.console import TERMINATING_SIGNALS, Terminated, quote, quote_path, warn
from edgec.errors import EdgecError

MARKER = ".edgec_output.json"
_TEMP_PREFIX_CHARS = 40  # of the destination's name in temporaries' names


class OutputDirError(EdgecError):
    """The output folder cannot be written (or would not be safe to replace)."""


def write_output_dir(files: dict[str, str | bytes], outdir: str | os.PathLike) -> Path:
    """Write `files` (flat names -> text, or bytes for binary files) into `outdir` as described
    in the module docstring; returns `outdir` as a Path (a symbolic link to a folder keeps
    pointing at the new copy)."""
    for name in files:  # "DIR/.../FILE" names a file inside a folder of the output (.mlpackage)
        parts = name.split("/")
        if not name or name == MARKER or "\0" in name or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"write_output: bad file name {name!r}")
    dest = _destination(outdir)
    _check_replaceable(dest)
    made: list[Path] = []
    owned: set[str] = set()
    marker = json.dumps({"edgec_version": __version__, "files": sorted(files)}, indent=2)
    tmp = old = None
    done = False
    with _sigterm_raises():
        try:
            with _deferred_signals():
                made = _make_parents(dest.parent)
                tmp = _fresh_dir(dest.parent, f".{dest.name[:_TEMP_PREFIX_CHARS]}.")
            mode = stat.S_IMODE(os.stat(dest).st_mode) if dest.is_dir() else None
            for name, text in files.items():
                (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                if isinstance(text, bytes):  # binary artefacts (model.tflite)
                    (tmp / name).write_bytes(text)
                else:
                    (tmp / name).write_text(text, encoding="utf-8")
            (tmp / MARKER).write_text(marker + "\n", encoding="utf-8")
            if mode is not None:
                os.chmod(tmp, mode)
            with _deferred_signals():
                owned = _check_replaceable(dest)  # again: it may have changed meanwhile
                old = _swap(tmp, dest)
                tmp = None
            done = True
        except OSError as e:
            raise _os_error(e, dest) from None
        finally:
            with _deferred_signals():
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
                if old is not None:
                    _remove_own(old, owned)
                if not done:
                    for parent in reversed(made):
                        with contextlib.suppress(OSError):
                            parent.rmdir()
    return Path(outdir)


def check_output_dir(outdir: str | os.PathLike) -> None:
    """Refuse a bad `-o` before any work is done (the write checks again)."""
    _check_replaceable(_destination(outdir))


# ----------------------------------------------------------------------------- checks
def _destination(outdir: str | os.PathLike) -> Path:
    """The absolute destination; refuses dangling links, '/', the current directory, names
    the file system cannot hold and paths under a file."""
    text = os.fspath(outdir)
    if not str(text).strip():
        raise OutputDirError("the output directory name is empty; give one with -o")
    path = Path(os.path.abspath(text))
    try:
        return _checked_destination(text, path)
    except OSError as e:
        raise _os_error(e, path) from None


def _checked_destination(text: str | bytes, path: Path) -> Path:
    ancestor = path  # the deepest part of the path that exists
    while not os.path.lexists(ancestor) and ancestor.parent != ancestor:
        ancestor = ancestor.parent
    try:
        name_max = os.pathconf(ancestor if ancestor.is_dir() else ancestor.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    long = [p for p in path.relative_to(ancestor).parts if len(os.fsencode(p)) > name_max]
    if long:
        raise OutputDirError(f"output directory name {quote(long[0], 40)} is too long "
                             f"({len(os.fsencode(long[0]))} bytes; this file system allows "
                             f"{name_max}); choose a shorter -o")
    if ancestor != path and not ancestor.is_dir():
        raise OutputDirError(f"cannot create output directory {quote_path(text)}: "
                             f"{quote_path(ancestor)} is not a directory")
    if os.path.islink(path):
        if not path.exists():
            raise OutputDirError(
                f"output directory {quote_path(text)} is a symbolic link to "
                f"{quote_path(os.readlink(path))}, which does not exist; create the target or "
                "remove the link")
        path = Path(os.path.realpath(path))
    if path.parent == path:
        raise OutputDirError(f"cannot use {quote_path(text)} as the output directory; give a "
                             "folder of its own, e.g. -o out")
    try:
        cwd = Path(os.getcwd()).resolve()
    except OSError:
        cwd = None
    real = path.resolve()
    if cwd is not None and (real == cwd or real in cwd.parents):
        raise OutputDirError(
            f"-o {quote_path(text)} is the current directory (or holds it); edgec replaces its "
            "output folder as a whole, so give a folder of its own, e.g. -o out")
    return path


def _check_replaceable(dest: Path) -> set[str]:
    """Refuse a destination that is not a folder edgec wrote, or one we could not replace.
    Returns the names in it that edgec wrote, which replacing it may delete."""
    if not os.path.lexists(dest):
        return set()
    if not dest.is_dir():
        raise OutputDirError(f"output path {quote_path(dest)} exists and is not a directory; "
                             "choose another -o")
    if not os.access(dest, os.W_OK | os.X_OK):
        raise OutputDirError(f"output directory {quote_path(dest)} is read-only; make it writable "
                             "(chmod u+w) or choose another -o")
    try:
        with os.scandir(dest) as it:
            entries = {e.name: e.is_file(follow_symlinks=False) for e in it}
    except OSError as e:
        raise _os_error(e, dest) from None
    if not entries:
        return set()
    if MARKER in entries:  # a marker that is not a readable list is not edgec's: foreign
        listed = _marker_files(dest) if entries[MARKER] else None
        owned = set() if listed is None else listed | {MARKER}
        folders = {f.split("/", 1)[0] for f in owned if "/" in f}  # e.g. model.mlpackage
        for name in folders & set(entries):  # a folder counts as a file when edgec wrote it all
            entries[name] = entries[name] or _holds_only(dest, name, owned)
        owned |= folders
    else:  # an older edgec, before markers: the files its report.json names
        owned = _legacy_files(dest / "report.json")
    foreign = sorted(n for n, regular in entries.items() if n not in owned or not regular)
    if foreign:
        shown = ", ".join(quote(n, 40) for n in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise OutputDirError(
            f"output directory {quote_path(dest)} holds files edgec did not write ({shown}{more}); "
            f"edgec replaces only folders it wrote itself (listed in {MARKER}): choose another "
            "-o or move those files away")
    return set(entries)


def _holds_only(dest: Path, folder: str, listed: set[str]) -> bool:
    """True when dest/folder is a real folder whose files (and symlinks) are all listed."""
    top = dest / folder
    if top.is_symlink() or not top.is_dir():
        return False
    for root, dirs, files in os.walk(top):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            if Path(root, name).relative_to(dest).as_posix() not in listed:
                return False
    return True


def _marker_files(dest: Path) -> set[str] | None:
    try:
        data = json.loads((dest / MARKER).read_text(encoding="utf-8"))
        files = data["files"]
        if isinstance(files, list) and all(isinstance(f, str) for f in files):
            return set(files)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _legacy_files(report_path: Path) -> set[str]:
    """The files an edgec without markers wrote beside its report.json (from its prefix)."""
    try:
        report = json.loads(report_path.read_text("utf-8")) if report_path.is_file() else {}
    except (OSError, ValueError):
        return set()
    prefix = report.get("prefix") if isinstance(report, dict) else None
    if "edgec_version" not in report or not isinstance(prefix, str) or not prefix:
        return set()
    return {"report.json", "CMakeLists.txt", "edgec_harness.c", f"{prefix}.h", f"{prefix}.c",
            f"{prefix}_weights.h", f"{prefix}_weights.c", f"{prefix}.mk"}


# ----------------------------------------------------------------------------- writing
def _make_parents(parent: Path) -> list[Path]:
    """mkdir -p `parent`; the folders it created, outermost first (removed on failure)."""
    missing = []
    p = parent
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    made = []
    try:
        for p in reversed(missing):
            os.mkdir(p)
            made.append(p)
    except OSError as e:
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()
        raise _os_error(e, parent) from None
    return made


def _fresh_dir(parent: Path, prefix: str) -> Path:
    """A new empty folder `parent/PREFIXxxxxxxxx` with the usual permissions (umask)."""
    for _ in range(100):
        path = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(parent))


def _swap(tmp: Path, dest: Path) -> Path | None:
    """Put `tmp` in `dest`'s place; returns the renamed old copy to delete, if any."""
    if not os.path.lexists(dest) or _is_empty(dest):
        os.replace(tmp, dest)  # a missing or empty destination: one rename
        return None
    old = dest.parent / f".{dest.name[:_TEMP_PREFIX_CHARS]}.old.{secrets.token_hex(4)}"
    os.rename(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    return old


def _is_empty(folder: Path) -> bool:
    with os.scandir(folder) as it:
        return not any(it)


def _remove_own(old: Path, owned: set[str]) -> None:
    """Delete a replaced copy: the files edgec wrote and the folder. Anything that appeared
    there after the last check stays, in the renamed folder, and a warning says where."""
    with contextlib.suppress(OSError):
        with os.scandir(old) as it:
            mine = [e for e in it if e.name in owned]
        files = [e.path for e in mine if e.is_file(follow_symlinks=False)]
        folders = [e.path for e in mine if e.is_dir(follow_symlinks=False)]
        for path in files:
            os.unlink(path)
        for path in folders:  # folders edgec wrote whole (listed as FOLDER/... in the marker)
            shutil.rmtree(path)
    try:
        os.rmdir(old)
    except OSError:
        if os.path.lexists(old):
            warn(f"files that appeared in the output directory while edgec wrote it were "
                 f"kept in {quote_path(old)}")


def _os_error(e: OSError, dest: Path) -> OutputDirError:
    """An operating-system error while writing `dest` as one line saying what to do."""
    reasons = {
        errno.EFBIG: "a file is larger than the file-size limit ('ulimit -f'); raise it",
        errno.ENOSPC: "no space left on the device; free some or choose another -o",
        errno.EDQUOT: "the disk quota is exceeded; free some or choose another -o",
        errno.EACCES: "permission denied; choose a folder you can write to",
        errno.EPERM: "permission denied; choose a folder you can write to",
        errno.EROFS: "the file system is read-only; choose another -o",
        errno.ENAMETOOLONG: "the path is too long; choose a shorter -o",
        errno.ENOTDIR: "a part of the path is a file, not a directory; choose another -o",
        errno.ELOOP: "too many levels of symbolic links; choose another -o",
    }
    reason = reasons.get(e.errno, f"{e.strerror or type(e).__name__}; choose another -o")
    return OutputDirError(f"cannot write output directory {quote_path(dest)}: {reason}")


# ----------------------------------------------------------------------------- signals
def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While writing, SIGTERM and SIGHUP raise Terminated, unless the process already handles
    or ignores them (the CLI's console session does); the default comes back afterwards."""
    if not _main_thread():
        yield
        return
    ours = [s for s in TERMINATING_SIGNALS if signal.getsignal(s) is signal.SIG_DFL]

    def handler(signum, frame):
        for s in ours:
            signal.signal(s, signal.SIG_IGN)
        raise Terminated(signum)

    for s in ours:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s in ours:
            signal.signal(s, signal.SIG_DFL)


@contextlib.contextmanager
def _deferred_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait until the block has finished (a rename swap or a
    clean-up must not be cut in half); then they act as they would have."""
    if not _main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, *TERMINATING_SIGNALS)}
    previous = {s: h for s, h in previous.items() if h is not None}  # None: not ours to touch
    for s in previous:
        signal.signal(s, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        for s in dict.fromkeys(pending):
            h = previous[s]
            if callable(h):
                h(s, None)
            elif h == signal.SIG_DFL:
                raise KeyboardInterrupt() if s == signal.SIGINT else Terminated(s)
