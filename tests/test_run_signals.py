"""`curate run` honours a stop whatever swallowed it, says truly what the folder holds after a stop, and
names a read-only disk as such.

* Ctrl-C whose KeyboardInterrupt Python dropped (raised inside a weakref callback: "Exception ignored
  in: ...") still stops the run before the folder is replaced;
* a SIGTERM that lands just after the swap (it was held back during it) says the folder holds the new
  run, which it does;
* a read-only mount is named as one (no ``chmod u+w`` advice).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import weakref
from pathlib import Path

import pytest
from click.testing import CliRunner

from test_run_crash import MANIFEST, leftovers, put_user_files, setup, snapshot  # noqa: F401 (fixture)

from curation.cli import main


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)))


@pytest.fixture
def no_plots(monkeypatch):
    import curation.run

    monkeypatch.setattr(curation.run, "plot_jobs", lambda run: [])


def _good_run(setup, out: Path) -> dict:
    r = invoke("run", setup["form"], "--schema", setup["fast"], "-o", out, "-q")
    assert r.exit_code == 0, r.output
    return json.loads((out / MANIFEST).read_text())


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_ctrl_c_still_stops_before_the_swap(setup, tmp_path, monkeypatch, no_plots):
    import curation.run

    out = tmp_path / "out"
    out.mkdir()
    put_user_files(out)
    _good_run(setup, out)
    before = snapshot(out)
    real_render = curation.run.render_outputs

    class Thing:
        pass

    def render(*a, **k):
        files = real_render(*a, **k)
        # Ctrl-C arrives while a weakref callback runs: its handler raises KeyboardInterrupt there, and
        # Python drops it ("Exception ignored in: ..."), as the fault test saw in 2 of 24 tries
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler) and handler is not signal.default_int_handler  # the command's own handler
        t = Thing()
        weakref.finalize(t, handler, signal.SIGINT, None)
        del t
        gc.collect()
        return files

    monkeypatch.setattr(curation.run, "render_outputs", render)
    before_int = signal.signal(signal.SIGINT, signal.default_int_handler)  # as a terminal starts the command
    try:
        r = invoke("run", setup["form"], "--schema", setup["fast"], "-o", out, "-q")
    finally:
        signal.signal(signal.SIGINT, before_int)
    assert r.exit_code == 130, r.output
    assert f"interrupted (Ctrl-C); {out} was left as it was" in r.output
    assert snapshot(out) == before and leftovers(out) == []


def test_sigterm_just_after_the_swap_says_the_folder_holds_the_new_run(setup, tmp_path, monkeypatch, no_plots):
    import curation.outputs

    out = tmp_path / "out"
    out.mkdir()
    old = _good_run(setup, out)
    real_swap = curation.outputs._swap

    def swap(*a, **k):
        real_swap(*a, **k)
        os.kill(os.getpid(), signal.SIGTERM)  # held back during the swap: delivered right after it

    monkeypatch.setattr(curation.outputs, "_swap", swap)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # another run than the first
    r = invoke("run", setup["form"], "--schema", setup["fast"], "-o", out, "-q")
    assert r.exit_code == 143, r.output
    new = json.loads((out / MANIFEST).read_text())
    assert new["run"] != old["run"]
    assert f"stopped by SIGTERM; {out} holds the complete new run" in r.output
    assert "left as it was" not in r.output


def test_read_only_mount_is_named_as_one(setup, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a read-only bind mount")
    src, mnt = tmp_path / "src", tmp_path / "mnt"
    src.mkdir()
    mnt.mkdir()
    (src / "out").mkdir()
    ok = subprocess.run(["mount", "--bind", str(src), str(mnt)], capture_output=True)
    if ok.returncode != 0:
        pytest.skip("cannot bind-mount here: " + ok.stderr.decode(errors="replace").strip())
    try:
        ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(mnt)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip("cannot remount read-only here")
        for out in (mnt / "out", mnt / "new"):
            r = invoke("run", setup["form"], "--schema", setup["fast"], "-o", out, "-q")
            assert r.exit_code == 2, r.output
            assert "read-only" in r.output and "chmod" not in r.output, r.output
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
