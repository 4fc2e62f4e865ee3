"""The one choke point for what edgec tells the user: messages on stderr here; every printed
table in `edgec.console.tables`, progress bars in `edgec.console.progress`, the text of
`edgec verify` (whole-model and per-layer) in `edgec.console.verify_text`.

Every name that comes from a model or from the user goes through `quote` before it is
formatted into a message, and every message goes through `one_line` before it is printed, so
a newline or an ANSI escape in a node name can neither forge a second `edgec: error:` line nor
recolour the terminal. While a command runs (`Session`), third-party noise is captured: Python
and numpy warnings, libraries' `logging` records and onnxruntime's log (errors only). It is
summarised in one `edgec: warning:` line when the command succeeds, dropped when it fails (the
error line is the one line), and shown in full, as it happens, with `-v/--verbose`.

Exit codes (`Session.run`): 0 success, 1 a negative result (verify mismatch, golden
regression), 2 bad input (`EdgecError`, an operating-system error on a user path, out of
memory), 3 a bug in edgec (`edgec: internal error: ...`), 130 interrupted, 143 terminated
(129 hung up).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import signal
import sys
import threading
import traceback
import unicodedata
import warnings
from collections.abc import Callable
from types import TracebackType

from edgec.errors import EdgecError

QUOTE_LIMIT = 80  # characters of a quoted name in a message (escapes included)
LINE_LIMIT = 2000  # characters of one message line
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_INVISIBLE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # controls, bidi/format, separators


class Terminated(BaseException):
    """SIGTERM (or SIGHUP), turned into an exception so that `finally` blocks clean up, as
    SIGINT does with KeyboardInterrupt; the exit code is 128 + the signal number."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signum)
        self.signum = int(signum)


TERMINATING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _escape(ch: str) -> str:
    """A visible escape of one invisible or control character."""
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _visible_pieces(text: str, quote_char: str | None):
    for ch in text:
        if quote_char is not None and ch in ("\\", quote_char):
            yield "\\" + ch
        elif unicodedata.category(ch) in _INVISIBLE:
            yield _escape(ch)
        else:
            yield ch


def _capped(pieces, limit: int | None) -> str:
    out, used = [], 0
    for piece in pieces:
        if limit is not None and used + len(piece) > limit:
            out.append("...")
            break
        out.append(piece)
        used += len(piece)
    return "".join(out)


def visible(text: object, limit: int | None = None) -> str:
    """`text` with every control, format (bidi) or line-separator character written as an
    escape (\\n, \\x1b, \\u202e), cut to `limit` characters; for table cells and labels."""
    return _capped(_visible_pieces(str(text), None), limit)


def quote(name: object, limit: int = QUOTE_LIMIT) -> str:
    """A name from a model or from the user, ready for a message: in single quotes, with
    quotes, backslashes and invisible characters escaped and at most `limit` characters
    between the quotes ('...' marks a cut). Use it for every node, tensor, file or flag value
    formatted into an EdgecError."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "backslashreplace")
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    return "'" + _capped(_visible_pieces(str(name), "'"), limit) + "'"


PATH_QUOTE_LIMIT = 400  # a path's end (the file name) matters: longer than a node name


def quote_path(path) -> str:
    """A user's file or folder path ready for a message (quote with room for long paths)."""
    return quote(path, limit=PATH_QUOTE_LIMIT)


def one_line(message: object, limit: int = LINE_LIMIT) -> str:
    """A whole message as one printable line: newlines and escapes written visibly, at most
    `limit` characters. Applied to every line edgec prints on stderr (belt and braces)."""
    return _capped(_visible_pieces(str(message).strip(), None), limit)


def error(message: object) -> None:
    """Print `edgec: error: MESSAGE` (one line) on stderr."""
    _emit("edgec: error: " + one_line(message))


def warning(message: object) -> None:
    """Print `edgec: warning: MESSAGE` (one line) on stderr, now."""
    text = str(message)
    if text.startswith("edgec: warning: "):
        text = text[len("edgec: warning: "):]
    _emit("edgec: warning: " + one_line(text))


def _emit(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: nothing left to tell
        pass


# ----------------------------------------------------------------------------- onnxruntime
def _quiet_loaded_onnxruntime() -> bool:
    """Set onnxruntime's default logger to errors only if it is imported; True if it was."""
    setter = getattr(sys.modules.get("onnxruntime"), "set_default_logger_severity", None)
    if setter is None:
        return False
    try:
        setter(3)
    except Exception:  # an onnxruntime without it: the session options still apply
        pass
    return True


class _OrtQuieter(importlib.abc.MetaPathFinder):
    """Quiets onnxruntime's log right after it is imported (lazily, so that commands that
    never use onnxruntime do not pay for importing it)."""

    def find_spec(self, fullname, path, target=None):  # noqa: D102 (importlib protocol)
        if fullname != "onnxruntime":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module):
            original(module)
            _quiet_loaded_onnxruntime()

        loader.exec_module = exec_module
        return spec


def _quiet_onnxruntime() -> Callable[[], None]:
    """Make onnxruntime log errors only, now or when it is imported; returns an undo hook."""
    if _quiet_loaded_onnxruntime():
        return lambda: None
    finder = _OrtQuieter()
    sys.meta_path.insert(0, finder)

    def undo() -> None:
        if finder in sys.meta_path:
            sys.meta_path.remove(finder)

    return undo


# ----------------------------------------------------------------------------- one command
class Session:
    """One command's console: captures third-party warnings and logs, turns SIGTERM and
    SIGHUP into `Terminated`, and maps the command's outcome to one line and an exit code
    (`run`)."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        self.own: list[str] = []  # edgec's own warnings, in order, without duplicates
        self.third_party: list[str] = []  # captured Python/numpy warnings
        self._undo: list[Callable[[], None]] = []

    def warn(self, message: object) -> None:
        """An edgec warning: shown at the end of a successful command (now with -v)."""
        text = str(message)
        if self.verbose:
            warning(text)
        elif text not in self.own:
            self.own.append(text)

    def _showwarning(self, message, category, filename, lineno, file=None, line=None):
        text = f"{category.__name__}: {message}"
        if self.verbose:
            warning(f"{text} ({os.path.basename(str(filename))}:{lineno})")
        else:
            self.third_party.append(text)

    def _log_record(self, record: logging.LogRecord) -> None:
        text = f"{record.levelname.lower()} from {record.name}: {record.getMessage()}"
        if self.verbose:
            warning(text)
        else:
            self.third_party.append(text)

    def __enter__(self) -> Session:
        handler = _LogCollector(self._log_record)  # libraries' logging: else lastResort prints
        logging.getLogger().addHandler(handler)
        self._undo.append(lambda: logging.getLogger().removeHandler(handler))
        catcher = warnings.catch_warnings()
        catcher.__enter__()
        self._undo.append(lambda: catcher.__exit__(None, None, None))
        if self.verbose:  # everything once; else Python's filters (no deprecations)
            warnings.simplefilter("default")
        warnings.showwarning = self._showwarning
        if not self.verbose:
            self._undo.append(_quiet_onnxruntime())
        if threading.current_thread() is threading.main_thread():
            for signum in TERMINATING_SIGNALS:  # nohup's SIG_IGN and callers' handlers stay
                if signal.getsignal(signum) is signal.SIG_DFL:
                    signal.signal(signum, _raise_terminated)
                    self._undo.append(lambda s=signum: signal.signal(s, signal.SIG_DFL))
        return self

    def __exit__(self, *exc) -> None:
        while self._undo:
            self._undo.pop()()

    def flush(self) -> None:
        """Print the collected warnings: edgec's own one per line, third-party in one line."""
        for text in self.own:
            warning(text)
        self.own = []
        if self.third_party:
            distinct = list(dict.fromkeys(self.third_party))
            more = f" and {len(distinct) - 1} more kind(s)" if len(distinct) > 1 else ""
            warning(f"{len(self.third_party)} library warning(s) hidden, e.g. "
                    f"{distinct[0]}{more} (rerun with -v to see them all)")
            self.third_party = []

    def run(self, command: Callable[[], int]) -> int:
        """Run `command` and return its exit code; every failure becomes one line."""
        try:
            code = command()
        except EdgecError as e:
            error(e)
            return e.exit_code
        except KeyboardInterrupt:
            _emit("edgec: interrupted")
            return 130
        except Terminated as e:
            _emit("edgec: terminated" if e.signum == signal.SIGTERM else
                  f"edgec: terminated by {signal.Signals(e.signum).name}")
            return 128 + e.signum
        except BrokenPipeError:  # `edgec ops | head`: the reader left; not an error of ours
            try:
                sys.stdout = open(os.devnull, "w")
            except OSError:
                pass
            return 0
        except MemoryError:
            error("out of memory (the model or its data is too large for this machine)")
            return 2
        except OSError as e:  # a file or folder the user named: permissions, space, limits
            reason = e.strerror or type(e).__name__
            error(f"cannot use {quote(e.filename)}: {reason}" if e.filename else reason)
            return 2
        except Exception as e:  # a bug in edgec: one line, the traceback on request
            if os.environ.get("EDGEC_TRACEBACK"):
                raise
            if self.verbose:
                traceback.print_exc(file=sys.stderr)
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            _emit("edgec: internal error: " + one_line(
                f"{type(e).__name__}: {msg}", limit=300)
                + " (rerun with -v for the traceback, and please report it)")
            return 3
        self.flush()
        return code


class _LogCollector(logging.Handler):
    """Hands every WARNING-or-worse log record of any library to the session."""

    def __init__(self, sink: Callable[[logging.LogRecord], None]):
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102 (logging protocol)
        try:
            self.sink(record)
        except Exception:  # a record that cannot be formatted: logging's own policy
            self.handleError(record)


def _raise_terminated(signum: int, frame: TracebackType | None) -> None:
    """SIGTERM/SIGHUP handler: raise once; another one while cleaning up is ignored."""
    for s in TERMINATING_SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    raise Terminated(signum)


_current: Session | None = None


def current() -> Session | None:
    """The session of the running CLI command, if any (library use has none)."""
    return _current


def set_current(session: Session | None) -> None:
    """Make `session` the one `warn` reports to (the CLI does this around a command)."""
    global _current
    _current = session


def warn(message: object) -> None:
    """An edgec warning: collected by the running command's session, else printed now."""
    if _current is not None:
        _current.warn(message)
    else:
        warning(message)
