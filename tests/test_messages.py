"""One choke point for what edgec prints on stderr (edgec/console/): names quoted and
escaped, every message one line, third-party warnings and logs summarised in one line (in
full with -v), bugs one `edgec: internal error:` line with exit code 3.
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import make_model
from onnx import helper

from edgec import cli
from edgec.console import one_line, quote, visible

FORGED = "x\nedgec: error: forged line\r\x1b[31mred\x1b[0m\u202egnp.\u2028end"
HOSTILE = [FORGED, "", "'", "\\", "\x00", "\x7f\x85\x9b", "\ud800", "a" * 10_000,
           "\u200b\u200e\u2066\ufeff", "名前 Ωμέγα", "\x1b]8;;http://x\x07link\x1b]8;;\x07"]


def printable_one_line(text: str) -> bool:
    """No control, format or separator character: one visible line."""
    return all(unicodedata.category(c) not in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
               for c in text)


def random_strings(n: int, seed: int = 12):
    """Random strings over a hostile alphabet (controls, bidi, quotes, surrogates, CJK)."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in [*range(0, 0x40), 0x5c, 0x7f, *range(0x80, 0xa0), 0x200b,
                                 0x202a, 0x202e, 0x2028, 0x2029, 0x2066, 0xfeff, 0xd800,
                                 0xe000, 0x10ffff, 0x4e2d, 0x3a9]]
    for _ in range(n):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))


# ----------------------------------------------------------------------------- the functions
def test_quote_is_one_visible_line_and_capped():
    for name in [*HOSTILE, *random_strings(3000)]:
        q = quote(name)
        assert q.startswith("'") and q.endswith("'") and printable_one_line(q), repr(q)
        assert len(q) <= 2 + 80 + 3
        body = q[1:-1]
        if not body.endswith("..."):  # uncut: the escapes decode back to the name
            assert body.encode("latin-1", "backslashreplace").decode("unicode_escape") \
                == name or "\ud800" in name, repr(name)
        assert printable_one_line(one_line(name)) and printable_one_line(visible(name))
    assert quote("conv1") == "'conv1'"
    assert quote("it's") == "'it\\'s'"
    assert quote("a\nb") == "'a\\nb'"
    assert quote("\x1b[31m") == "'\\x1b[31m'"
    assert quote("\u202e") == "'\\u202e'"
    assert quote("名前") == "'名前'"  # readable names stay readable
    assert quote(Path("/tmp/a b")) == "'/tmp/a b'" and quote(b"\xff") == "'\\\\xff'"


# ----------------------------------------------------------------------------- through the CLI
def run(*args, **kwargs) -> subprocess.CompletedProcess:
    """`python -m edgec.cli ARGS` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "edgec.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False, **kwargs)


def test_a_newline_in_a_node_name_cannot_forge_a_line(tmp_path):
    model = make_model([helper.make_node("NoSuchOp", ["x"], ["y"], name=FORGED)],
                       {"x": ("float32", (1, 4))}, {"y": ("float32", (1, 4))})
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    proc = run("compile", path, "-o", tmp_path / "out")
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("edgec: error: ") and "NoSuchOp" in lines[0]
    assert "\x1b" not in proc.stderr and "\u202e" not in proc.stderr
    assert "\\n" in lines[0] or "\\x1b" in lines[0]  # the name is shown, escaped


def test_user_text_in_flags_and_paths_is_escaped(tmp_path, capfd):
    bad_dir = tmp_path / "a\nedgec: error: forged"
    bad_dir.write_text("a file, not a folder")
    model = tmp_path / "m.onnx"
    onnx.save(make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ("float32", (1, 4))},
                         {"y": ("float32", (1, 4))}), str(model))
    proc = run("compile", model, "-o", bad_dir / "out")
    for i, args in enumerate([["compile", model, "-o", bad_dir / "out"],
                              ["compile", model, "-o", tmp_path / "o", "-t", "x\x1b[2Jy\nz"],
                              ["compile", tmp_path / "missing\n.onnx", "-o", tmp_path / "o"]]):
        if i:  # the first in a real process, the others through main() in this one
            capfd.readouterr()
            code = cli.main(args)
            proc = subprocess.CompletedProcess(args, code, *capfd.readouterr())
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith("edgec: error: ") and "\x1b" not in lines[0]


def test_a_closed_stdout_pipe_is_not_an_error():
    proc = subprocess.Popen([sys.executable, "-m", "edgec.cli", "ops"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 0 and err == b"", err


def test_an_os_error_on_a_user_path_is_bad_input(tmp_path):
    model = tmp_path / "m.onnx"
    onnx.save(make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ("float32", (1, 4))},
                         {"y": ("float32", (1, 4))}), str(model))
    proc = run("run", model, "-o", tmp_path / "missing" / "out.npz")
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("edgec: error: ")


# ----------------------------------------------------------------------------- warnings, bugs
NOISY = textwrap.dedent("""
    import logging, sys, warnings
    import numpy as np
    from edgec import cli

    def noisy(args):
        a = np.array([3e38], np.float32)
        with np.errstate(over="warn", invalid="warn"):
            a * np.float32(10)
            np.array([np.inf]) - np.array([np.inf])
        warnings.warn("a library has something to say", UserWarning)
        logging.getLogger("somelib").warning("a log record")
        cli._warn(["edgec: warning: edgec's own warning"])
        print("done")
        return 0

    cli.cmd_ops = noisy
    sys.exit(cli.main(sys.argv[1:]))
""")


def test_numpy_and_python_warnings_are_one_line_or_shown_with_v():
    quiet = subprocess.run([sys.executable, "-c", NOISY, "ops"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert quiet.returncode == 0 and quiet.stdout == "done\n"
    lines = quiet.stderr.splitlines()
    assert lines == ["edgec: warning: edgec's own warning", lines[1]], quiet.stderr
    assert lines[1].startswith("edgec: warning: 4 library warning(s)") and "-v" in lines[1]
    assert "RuntimeWarning: overflow" in lines[1]
    for flags in (["-v", "ops"], ["ops", "--verbose"]):
        loud = subprocess.run([sys.executable, "-c", NOISY, *flags], capture_output=True,
                              text=True, timeout=60, check=False)
        assert loud.returncode == 0, loud.stderr
        assert len(loud.stderr.splitlines()) == 5, loud.stderr
        assert all(line.startswith("edgec: warning: ") for line in loud.stderr.splitlines())
        assert "invalid value" in loud.stderr and "something to say" in loud.stderr
        assert "a log record" in loud.stderr


ORT_LOG = textwrap.dedent("""
    import sys
    import numpy as np
    from edgec import cli

    def ort_run(args):
        import onnxruntime as ort  # imported inside the command, as edgec does
        ort.InferenceSession(sys.argv[-1], providers=["CPUExecutionProvider"])
        return 0

    cli.cmd_ops = ort_run
    sys.exit(cli.main(sys.argv[1:-1]))
""")


def test_onnxruntime_log_is_quiet_unless_verbose(tmp_path):
    """An unused initializer makes onnxruntime log a warning line of its own."""
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": ("float32", (1, 4))},
                       {"y": ("float32", (1, 4))}, {"unused": np.ones(3, np.float32)})
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    quiet = subprocess.run([sys.executable, "-c", ORT_LOG, "ops", path], capture_output=True,
                           text=True, timeout=60, check=False)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = subprocess.run([sys.executable, "-c", ORT_LOG, "-v", "ops", path],
                          capture_output=True, text=True, timeout=60, check=False)
    assert loud.returncode == 0 and "unused" in loud.stderr


def test_errors_drop_the_warning_summary(capfd, monkeypatch):
    """A failing command prints its one error line and nothing else."""
    from edgec.errors import EdgecError

    def fails(args):
        np.array([3e38], np.float32) * np.float32(10)
        cli._warn(["edgec: warning: own"])
        raise EdgecError("bad input named " + quote(FORGED))

    monkeypatch.setattr(cli, "cmd_ops", fails)
    capfd.readouterr()
    with np.errstate(over="warn"):
        code = cli.main(["ops"])
    err = capfd.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("edgec: error: bad input")


@pytest.mark.parametrize("verbose", [False, True])
def test_a_bug_is_one_internal_error_line(capfd, monkeypatch, verbose):
    def buggy(args):
        raise RuntimeError("boom\nedgec: error: forged second line")

    monkeypatch.setattr(cli, "cmd_ops", buggy)
    capfd.readouterr()
    code = cli.main(["ops", "-v"] if verbose else ["ops"])
    lines = capfd.readouterr().err.splitlines()
    assert code == 3
    assert lines[-1].startswith("edgec: internal error: RuntimeError: boom")
    assert "forged" not in lines[-1] and "-v" in lines[-1]
    if verbose:
        assert lines[0].startswith("Traceback") and len(lines) > 3
    else:
        assert len(lines) == 1


def test_interrupt_is_one_line(capfd, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_ops", interrupted)
    capfd.readouterr()
    assert cli.main(["ops"]) == 130
    assert capfd.readouterr().err == "edgec: interrupted\n"


@pytest.mark.parametrize("weights_scale,calib_value", [(1e-41, 1e-42), (1.0, 3e38)])
def test_extreme_numbers_give_at_most_one_warning_line(tmp_path, weights_scale, calib_value):
    """Denormal weights with tiny calibration data, and data near float32's maximum (the
    issue's repro printed 7 lines of numpy warnings): no raw warning reaches stderr."""
    w = (np.random.default_rng(0).standard_normal((4, 3, 3, 3)) * weights_scale)
    model = make_model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])],
                       {"x": ("float32", (1, 3, 8, 8))}, {"y": ("float32", (1, 4, 8, 8))},
                       {"w": w.astype(np.float32)})
    onnx.save(model, str(tmp_path / "m.onnx"))
    np.save(tmp_path / "calib.npy", np.full((4, 3, 8, 8), calib_value, np.float32))
    proc = run("compile", tmp_path / "m.onnx", "-t", "generic-int8", "--calib",
               tmp_path / "calib.npy", "-o", tmp_path / "out")
    lines = proc.stderr.splitlines()
    assert proc.returncode in (0, 2), proc.stderr
    assert len(lines) <= 1, proc.stderr
    assert all(line.startswith(("edgec: warning: ", "edgec: error: ")) for line in lines)


def test_progress_bar_leaves_no_line_and_shows_labels_visibly(capsys, monkeypatch):
    """The plain-text bar (without rich) is erased when its step ends."""
    import builtins

    from edgec.console.progress import Progress

    real_import = builtins.__import__

    def no_rich(name, *args, **kwargs):
        if name.startswith("rich"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rich)
    with Progress("calibrating\n\x1b[2J", 3, enabled=True) as bar:
        bar.advance(3)
    err = capsys.readouterr().err
    assert "\n" not in err and "\x1b[2J" not in err and "calibrating\\n" in err
    assert err.endswith("\r\x1b[K")
