"""Output folders never lose data (edgec/output_dir.py): only a folder edgec wrote itself is
replaced, foreign files are never deleted, temporaries go away on every error and on
SIGINT/SIGTERM, and every bad `-o` is one `edgec: error:` line with exit code 2.

The CLI runs in a real process (`python -m edgec.cli`) where exit codes, signals and resource
limits matter; signals at every step of a write are sent by the process to itself at
instrumented points, so no test depends on timing.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import pytest
from helpers import make_model
from onnx import helper

from edgec.cli import main
from edgec.compiler import write_output
from edgec.errors import EdgecError
from edgec.output_dir import MARKER

REPO = Path(__file__).resolve().parents[1]


def tiny_model(path: Path) -> Path:
    """y = relu(x) on 1x4 floats."""
    onnx.save(make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                         {"x": ("float32", (1, 4))}, {"y": ("float32", (1, 4))}), str(path))
    return path


def edgec(*args, cwd=None, preexec_fn=None, env=None) -> subprocess.CompletedProcess:
    """`python -m edgec.cli ARGS` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "edgec.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, preexec_fn=preexec_fn,
                          env=env, timeout=120, check=False)


def one_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit code 2 and exactly one `edgec: error:` line on stderr; returns it."""
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("edgec: error: "), proc.stderr
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    return lines[0]


def in_process_error(capfd, *args, fragments=()) -> str:
    """The same contract through `edgec.cli.main` in this process (fast)."""
    capfd.readouterr()
    code = main([str(a) for a in args])
    captured = capfd.readouterr()
    return one_error(subprocess.CompletedProcess(args, code, captured.out, captured.err),
                     *fragments)


def no_temporaries(folder: Path) -> None:
    """No `.NAME.xxxx` / `.NAME.old.xxxx` folders left in `folder`."""
    hidden = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert hidden == [], hidden


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def model(tmp_path) -> Path:
    return tiny_model(tmp_path / "m.onnx")


# ----------------------------------------------------------------------------- ownership
def test_marker_lists_every_file_and_a_rerun_replaces_the_folder(tmp_path, model):
    out = tmp_path / "out"
    first = edgec("compile", model, "-o", out, "--prefix", "first")
    assert first.returncode == 0 and first.stderr == "", first.stderr
    marker = json.loads((out / MARKER).read_text())
    assert sorted(marker["files"]) == sorted(p.name for p in out.iterdir() if p.name != MARKER)
    assert "edgec_version" in marker
    second = edgec("compile", model, "-o", out, "--prefix", "second")
    assert second.returncode == 0, second.stderr
    assert (out / "second.c").exists() and not (out / "first.c").exists()
    no_temporaries(tmp_path)


def test_a_project_folder_with_a_report_json_keeps_its_files(tmp_path, model):
    """The reported data loss: report.json + src/main.c lost src/. Now refused, all kept."""
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    (project / "report.json").write_text('{"edgec_version": "0.1.0"}\n')
    before = tree(project)
    msg = one_error(edgec("compile", model, "-o", project), "'src'", MARKER)
    assert "choose another -o" in msg
    assert tree(project) == before
    no_temporaries(tmp_path)


def test_a_foreign_file_in_an_edgec_folder_is_never_deleted(tmp_path, model, capfd):
    out = tmp_path / "out"
    write_output({"a.c": "int a;\n", "report.json": "{}\n"}, out)
    (out / "notes.txt").write_text("mine")
    before = tree(out)
    one_error(edgec("compile", model, "-o", out), "'notes.txt'")
    assert tree(out) == before
    (out / "notes.txt").unlink()
    (out / "a.c").unlink()
    (out / "a.c").symlink_to(tmp_path / "m.onnx")  # a link where edgec had a file: foreign
    in_process_error(capfd, "compile", model, "-o", out, fragments=["'a.c'"])
    assert (tmp_path / "m.onnx").exists()


def test_library_rules(tmp_path):
    """write_output: empty folder, an older edgec's folder, a broken marker, bad names."""
    files = {"m.c": "int m;\n", "report.json": '{"edgec_version": "0.1.0"}\n'}
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o750)
    write_output(files, empty)
    assert (empty / "m.c").exists() and (empty.stat().st_mode & 0o777) == 0o750
    legacy = tmp_path / "legacy"  # before markers: the files named after the report's prefix
    legacy.mkdir()
    for name in ("old.c", "old_weights.c", "CMakeLists.txt"):
        (legacy / name).write_text("old")
    (legacy / "report.json").write_text('{"edgec_version": "0.0.1", "prefix": "old"}')
    (legacy / "main.c").write_text("mine")  # not a name edgec gives: refused, kept
    with pytest.raises(EdgecError, match="main.c"):
        write_output(files, legacy)
    (legacy / "main.c").unlink()
    write_output(files, legacy)
    assert sorted(p.name for p in legacy.iterdir()) == [MARKER, "m.c", "report.json"]
    (legacy / MARKER).write_text("not json")
    with pytest.raises(EdgecError, match=MARKER):
        write_output(files, legacy)
    with pytest.raises(ValueError):
        write_output({"../escape.c": ""}, tmp_path / "x")
    no_temporaries(tmp_path)


def test_a_file_added_while_edgec_writes_is_kept(tmp_path, monkeypatch, capsys):
    """Races: a file that appears in the folder during the write is never deleted."""
    import edgec.output_dir as od

    out = tmp_path / "out"
    files = {"m.c": "int m;\n", "report.json": "{}\n"}
    write_output(files, out)
    original_write = Path.write_text

    def write_and_meddle(self, *args, **kwargs):
        if self.name == "m.c":
            original_write(out / "late.txt", "mine")
        return original_write(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_and_meddle)
    with pytest.raises(EdgecError, match="late.txt"):  # seen by the check before the swap
        write_output(files, out)
    monkeypatch.undo()
    assert (out / "late.txt").read_text() == "mine"
    no_temporaries(tmp_path)
    (out / "late.txt").unlink()
    original_swap = od._swap

    def meddle_then_swap(tmp, dest):  # after the last check: lands in the replaced copy
        (dest / "later.txt").write_text("mine too")
        return original_swap(tmp, dest)

    monkeypatch.setattr(od, "_swap", meddle_then_swap)
    write_output(files, out)
    kept = [p for p in tmp_path.iterdir() if p.name.startswith(".out.old.")]
    assert len(kept) == 1 and (kept[0] / "later.txt").read_text() == "mine too"
    assert sorted(p.name for p in kept[0].iterdir()) == ["later.txt"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("edgec: warning: ") and kept[0].name in err[0]
    assert (out / "m.c").exists() and not (out / "later.txt").exists()


# ----------------------------------------------------------------------------- bad -o
def test_output_is_the_current_directory(tmp_path, model, capfd, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "keep.txt").write_text("mine")
    one_error(edgec("compile", model, "-o", ".", cwd=work), "current directory")
    monkeypatch.chdir(work)
    for spec in (str(work), "..", "./"):
        in_process_error(capfd, "compile", model, "-o", spec, fragments=["current directory"])
    assert sorted(p.name for p in work.iterdir()) == ["keep.txt"]
    no_temporaries(tmp_path)


def test_output_under_a_regular_file(tmp_path, model, capfd):
    one_error(edgec("compile", model, "-o", tmp_path / "m.onnx" / "out"), "not a directory")
    in_process_error(capfd, "compile", model, "-o", model, fragments=["not a directory"])
    in_process_error(capfd, "compile", model, "-o", tmp_path / "m.onnx" / "a" / "b",
                     fragments=["not a directory"])
    no_temporaries(tmp_path)


def test_dangling_symlink_and_a_link_to_an_edgec_folder(tmp_path, model):
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "missing" / "target")
    one_error(edgec("compile", model, "-o", link), "symbolic link", "does not exist")
    assert link.is_symlink() and not (tmp_path / "missing").exists()
    real = tmp_path / "real"
    good = tmp_path / "good"
    good.symlink_to(real)
    real.mkdir()
    for prefix in ("a", "b"):  # a link to a folder: the folder is written and replaced
        write_output({f"{prefix}.c": "", "report.json": "{}"}, good)
    assert good.is_symlink() and sorted(p.name for p in real.iterdir()) == [MARKER, "b.c",
                                                                             "report.json"]
    no_temporaries(tmp_path)


def test_name_too_long(tmp_path, model, capfd):
    one_error(edgec("compile", model, "-o", tmp_path / ("n" * 300)), "too long")
    in_process_error(capfd, "compile", model, "-o", tmp_path / "new" / ("n" * 300) / "out",
                     fragments=["too long"])
    deep = tmp_path.joinpath(*["d" * 200] * 25)  # every name fits, the path does not
    in_process_error(capfd, "compile", model, "-o", deep, fragments=["too long"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def _drop_root_powers() -> None:
    """preexec_fn: as root, lose the capabilities that override file permissions."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
            if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _permissions_apply(folder: Path) -> bool:
    probe = subprocess.run([sys.executable, "-c", f"open({str(folder / 'probe')!r}, 'w')"],
                           preexec_fn=_drop_root_powers, capture_output=True, check=False)
    return probe.returncode != 0


def test_unwritable_parent_and_read_only_output(tmp_path, model):
    locked = tmp_path / "locked"
    locked.mkdir()
    out = tmp_path / "ro_out"
    write_output({"a.c": "int a;\n", "report.json": "{}\n"}, out)
    before = tree(out)
    locked.chmod(0o555)
    out.chmod(0o555)
    try:
        if not _permissions_apply(locked):
            pytest.skip("file permissions do not apply to this user")
        one_error(edgec("compile", model, "-o", locked / "out", preexec_fn=_drop_root_powers),
                  "permission denied")
        one_error(edgec("compile", model, "-o", locked / "a" / "b",
                        preexec_fn=_drop_root_powers), "permission denied")
        one_error(edgec("compile", model, "-o", out, preexec_fn=_drop_root_powers),
                  "read-only")
        assert list(locked.iterdir()) == [] and tree(out) == before
    finally:
        locked.chmod(0o755)
        out.chmod(0o755)
    no_temporaries(tmp_path)


def test_file_size_limit_while_writing(tmp_path, model):
    """RLIMIT_FSIZE: the write fails with EFBIG (Python ignores SIGXFSZ): one line, the
    earlier copy stays whole and no temporary is left."""
    out = tmp_path / "out"
    write_output({"old.c": "int old;\n", "report.json": "{}\n"}, out)
    before = tree(out)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    one_error(edgec("compile", model, "-o", out, preexec_fn=limit), "file-size limit")
    assert tree(out) == before
    no_temporaries(tmp_path)


# ----------------------------------------------------------------------------- signals
SIGNAL_SCRIPT = textwrap.dedent("""
    import json, os, shutil, signal, sys
    from pathlib import Path
    from edgec.compiler import write_output
    from edgec.console import Session

    out, signame = sys.argv[1], sys.argv[2]
    state = {"step": 0, "at": -1}

    def point(fn):
        def wrapped(*args, **kwargs):
            if sys._getframe(1).f_globals.get("__name__") == "edgec.output_dir":
                state["step"] += 1
                if state["step"] == state["at"]:
                    os.kill(os.getpid(), getattr(signal, signame))
            return fn(*args, **kwargs)
        return wrapped

    for name in ("mkdir", "replace", "rename", "unlink", "rmdir", "chmod"):
        setattr(os, name, point(getattr(os, name)))  # counted only when edgec writes output
    Path.write_text = point(Path.write_text)
    shutil.rmtree = point(shutil.rmtree)
    for at in range(1, 60):
        state.update(step=0, at=at)
        prefix = "p%d" % at
        files = {f"{prefix}.{ext}": f"{prefix} {ext}" for ext in ("c", "h", "mk")}
        files["report.json"] = "{}"
        with Session() as session:
            code = session.run(lambda: write_output(files, out) and 0)
        names = sorted(os.listdir(out)) if os.path.isdir(out) else []
        marker = Path(out, ".edgec_output.json")
        print(json.dumps({
            "at": at, "code": code, "steps": state["step"], "prefix": prefix, "names": names,
            "hidden": [n for n in os.listdir(os.path.dirname(out)) if n.startswith(".")],
            "marker": json.loads(marker.read_text())["files"] if marker.exists() else None,
            "contents": {n: Path(out, n).read_text() for n in names}}), flush=True)
        if state["step"] < at:
            break
""")


@pytest.mark.parametrize("signame,code", [("SIGTERM", 143), ("SIGINT", 130), ("SIGHUP", 129)])
def test_signal_at_every_step_of_a_write(tmp_path, signame, code):
    """A signal before each file operation of a write (and of its clean-up), through the
    CLI's console session: the folder holds the old copy or the new one, whole, and no
    temporary is left."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", SIGNAL_SCRIPT, str(out), signame],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) > 10
    previous: set[str] = set()
    for row in rows:
        at, prefix, names = row["at"], row["prefix"], row["names"]
        assert row["hidden"] == [], f"temporaries after a {signame} at step {at}: {row}"
        assert row["code"] == (0 if row is rows[-1] else code), row
        copy = {n[:-2] for n in names if n.endswith(".h")}
        assert copy in ({prefix}, previous), row
        if names:  # a whole copy: exactly the files its marker lists, each written in full
            assert sorted(row["marker"] + [MARKER]) == names, row
            p = next(iter(copy))
            assert all(row["contents"][f"{p}.{e}"] == f"{p} {e}" for e in ("c", "h", "mk"))
        previous = copy or previous
    assert rows[-1]["names"] and rows[-1]["steps"] < rows[-1]["at"]
    line = {143: "edgec: terminated", 130: "edgec: interrupted",
            129: "edgec: terminated by SIGHUP"}[code]
    assert proc.stderr.splitlines() == [line] * (len(rows) - 1)


def test_sigterm_from_outside_during_a_write(tmp_path, model):
    """A real SIGTERM from another process while edgec is writing a file: exit 143, one
    line, the earlier copy whole, no temporary left."""
    out = tmp_path / "out"
    write_output({"old.c": "int old;\n", "report.json": "{}\n"}, out)
    before = tree(out)
    script = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from edgec.cli import main
        original = Path.write_text
        def slow(self, *a, **k):
            n = original(self, *a, **k)
            if self.name.endswith(".h"):
                print("WRITING", flush=True)
                time.sleep(60)
            return n
        Path.write_text = slow
        sys.exit(main(sys.argv[1:]))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script, "compile", str(model), "-o",
                             str(out), "--prefix", "new"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "WRITING"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.splitlines() == ["edgec: terminated"], err
    assert tree(out) == before
    no_temporaries(tmp_path)
