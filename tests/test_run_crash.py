"""`curate run` under crashes and a hostile environment: kill -9 at random moments, two runs into one
folder, SIGTERM and Ctrl-C, a read-only folder, a file size limit, a full disk, a vanished input.

After anything, the output folder holds exactly one complete run (every file of its manifest, with
the manifest's hash), the user's own files are intact, and no temporary folder, lock file or worker
process outlives the next run.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from builders import write_form
from curation.cli import main
from test_rules import baseline

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ".curate-run.json"


def epoch_ts(epoch: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def small_schema(path: Path, plots: bool) -> Path:
    """The shipped schema with a short analysis plan: a fast run (three plots), or twelve plots
    (enough for the run to draw them in worker processes)."""
    sch = yaml.safe_load((ROOT / "schemas" / "prrt_177lu.yaml").read_text())
    if plots:
        sch["analysis"]["plan"] = [{"outcome": "orr"}, {"outcome": "dcr"}]
        sch["analysis"]["sensitivity"] = [{"measure": "PLO", "method": "REML"}, {"measure": "PLO", "method": "DL"},
                                          {"measure": "PFT", "method": "REML"}, {"measure": "PAS", "method": "REML"},
                                          {"measure": "PLO", "method": "REML", "hk": True}]
    else:
        sch["analysis"]["plan"] = [{"outcome": "dcr"}]
        sch["analysis"]["sensitivity"] = [{"measure": "PLO", "method": "REML"}, {"measure": "PLO", "method": "DL"}]
    path.write_text(yaml.safe_dump(sch, sort_keys=False))
    return path


USER_FILES = {"notes.txt": "the reviewer's own notes\n", "mine/a.txt": "a\n", "plots/my-figure.svg": "<svg/>\n",
              **{f"mine/many/{i:03d}.txt": f"{i}\n" for i in range(150)}}


def put_user_files(out: Path) -> None:
    for rel, text in USER_FILES.items():
        p = out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def assert_one_run(out: Path, user: dict[str, str] = USER_FILES) -> dict:
    """``out`` holds exactly one complete run plus the user's files; returns its manifest."""
    man = json.loads((out / MANIFEST).read_text())
    files = man["files"]
    assert {"report.html", "findings.json", "analysis.json", "clean.csv"} <= set(files)
    for rel, digest in files.items():
        assert (out / rel).is_file(), f"{rel} of the run is missing"
        assert sha(out / rel) == digest, f"{rel} is not the run's ({man['run']})"
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() or p.is_symlink()}
    assert present == set(files) | set(user) | {MANIFEST}, present ^ (set(files) | set(user) | {MANIFEST})
    for rel, text in user.items():
        assert (out / rel).read_text() == text
    generated = json.loads((out / "analysis.json").read_text())["generated"]
    assert generated in (out / "report.html").read_text()
    return {**man, "generated": generated}


def leftovers(out: Path) -> list[str]:
    """Temporary folders, lock files or temporary files of a run, beside or inside ``out``."""
    beside = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    inside = [p.name for p in out.rglob("*") if p.name.endswith(".tmp") or ".curate-staging" in p.name]
    return beside + inside


def group_alive(pgid: int) -> list[int]:
    """Processes (not zombies) of the process group ``pgid``."""
    alive = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            alive.append(int(d.name))
    return alive


def wait_group_gone(pgid: int, seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := group_alive(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def curate(*args, env=None, **kw) -> subprocess.Popen:
    e = {**os.environ, "COLUMNS": "100", **(env or {})}
    e.pop("CURATE_SERIAL", None)
    # a shell that starts the suite in the background leaves SIGINT ignored, and Python keeps an ignored
    # SIGINT ignored: give the run the disposition a terminal gives it
    return subprocess.Popen([sys.executable, "-m", "curation.cli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=e, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crash")
    form = write_form(tmp / "form.xlsx", **baseline())
    return {"tmp": tmp, "form": form, "fast": small_schema(tmp / "fast.yaml", plots=False),
            "plots": small_schema(tmp / "plots.yaml", plots=True)}


def complete_run(setup, out: Path, epoch: int, schema: str = "fast") -> float:
    t0 = time.monotonic()
    p = curate("run", setup["form"], "--schema", setup[schema], "-o", out, "-q", env={"SOURCE_DATE_EPOCH": str(epoch)})
    _o, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()
    return time.monotonic() - t0


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_one_complete_run(setup):
    """At least 20 kills: half at a random moment of the whole run, half at a random moment after
    the run starts to build its new folder; after each the folder is the old run or the new one."""
    rng = random.Random(15)
    out = setup["tmp"] / "killed"
    out.mkdir()
    put_user_files(out)
    base = 1_700_000_000
    duration = complete_run(setup, out, base)
    current = epoch_ts(base)
    assert assert_one_run(out)["generated"] == current
    outcomes = {"old": 0, "new": 0}
    for i in range(1, 23):
        epoch = base + i
        p = curate("run", setup["form"], "--schema", setup["fast"], "-o", out, "-q",
                   env={"SOURCE_DATE_EPOCH": str(epoch)})
        if i % 2:
            time.sleep(rng.uniform(0.05, 1.05) * duration)
        else:  # when the new folder appears beside the old one, then a random moment of the write
            deadline = time.monotonic() + 5 * duration
            while p.poll() is None and time.monotonic() < deadline and \
                    not any(n.startswith(f".{out.name}.curate-") and n.endswith(".tmp") for n in os.listdir(out.parent)):
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.15))
        p.kill()
        p.communicate()
        assert not wait_group_gone(p.pid), f"processes of the killed run {p.pid} are still alive"
        generated = assert_one_run(out)["generated"]
        assert generated in (current, epoch_ts(epoch))
        outcomes["new" if generated != current else "old"] += 1
        current = generated
    # the next run cleans up what the kills left: no staging folder, no lock, no temporary file
    complete_run(setup, out, base + 100)
    assert assert_one_run(out)["generated"] == epoch_ts(base + 100)
    assert leftovers(out) == []
    assert sum(outcomes.values()) >= 20 and outcomes["old"] > 0, outcomes


def test_two_runs_into_one_folder(setup):
    out = setup["tmp"] / "two"
    runs = [curate("run", setup["form"], "--schema", setup["fast"], "-o", out, "-q",
                   env={"SOURCE_DATE_EPOCH": str(1_700_000_000 + i)}) for i in range(2)]
    results = [(p.wait(timeout=600), p.stderr.read().decode()) for p in runs]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for code, err in results:
        if code == 2:
            assert re.search(r"another curate run is writing this folder \(pid \d+\)", err)
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert assert_one_run(out, {})["generated"] in (epoch_ts(1_700_000_000), epoch_ts(1_700_000_001))
    assert leftovers(out) == []


def test_a_second_run_is_refused_while_the_folder_is_locked(setup, tmp_path):
    out = tmp_path / "locked"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    lock = tmp_path / ".locked.curate-lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write("4242\n")
        fh.flush()
        r = CliRunner().invoke(main, ["run", str(setup["form"]), "--schema", str(setup["fast"]), "-o", str(out)])
    assert r.exit_code == 2
    assert "another curate run is writing this folder (pid 4242); wait for it to finish or choose another -o" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_cleanly(setup, tmp_path, sig):
    """A signal while the run works: exit 128 + signal, one line, the old folder as it was. On a fast
    machine the run may end before the signal lands (it then exits 0 with the new run, complete): the
    attempt is repeated until one is interrupted."""
    interrupted = 0
    for attempt in range(8):
        out = tmp_path / f"out{attempt}"
        out.mkdir()
        put_user_files(out)
        complete_run(setup, out, 1_600_000_000)
        before = assert_one_run(out)
        p = curate("run", setup["form"], "--schema", setup["plots"], "-o", out, "-q")
        lock = tmp_path / f".out{attempt}.curate-lock"
        deadline = time.monotonic() + 600
        # the moment: the run holds its lock, i.e. it has started the work
        while p.poll() is None and time.monotonic() < deadline and not lock.exists():
            time.sleep(0.001)
        if p.poll() is not None:
            continue
        if sig == signal.SIGINT:
            os.killpg(p.pid, sig)  # Ctrl-C reaches every process of the command
        else:
            p.send_signal(sig)
        _o, err = p.communicate(timeout=120)
        err = err.decode()
        assert not wait_group_gone(p.pid)
        left = leftovers(out)
        if left == [lock.name]:
            # a signal in the instant the lock is taken can leave the lock's file (not its lock: the kernel
            # released it with the process); it must never stop the next run, which takes it over
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if a process still held it
            finally:
                os.close(fd)
            left = []
        assert left == []
        if p.returncode == 0:  # it had finished its work when the signal came: one complete run
            assert_one_run(out)
            continue
        assert p.returncode == 128 + sig, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert ("interrupted (Ctrl-C)" if sig == signal.SIGINT else "stopped by SIGTERM") in err
        assert f"{out} was left as it was" in err or f"{out} holds the complete new run" in err
        if "was left as it was" in err:
            assert assert_one_run(out) == before
        interrupted += 1
        break
    assert interrupted == 1, "no attempt was interrupted while the run worked"


def test_kill_9_while_workers_read_forms_leaves_no_worker(setup, tmp_path):
    """Four forms or more are read in worker processes: a kill -9 of the run kills them too."""
    forms = []
    for i in range(6):
        forms.append(tmp_path / f"form{i}.xlsx")
        shutil.copy(setup["form"], forms[-1])
    out = tmp_path / "out"
    seen = []
    for _attempt in range(5):
        p = curate("run", *forms, "--schema", setup["fast"], "-o", out, "-q")
        deadline = time.monotonic() + 600
        while p.poll() is None and not children(p.pid) and time.monotonic() < deadline:
            time.sleep(0.001)
        seen = children(p.pid)
        p.kill()
        p.communicate()
        assert not wait_group_gone(p.pid), f"workers {seen} of the killed run are still alive"
        assert not out.exists()
        if seen:
            break
    if not seen:
        pytest.skip("the run read its forms without worker processes")


# -- the environment -------------------------------------------------------------------------------


def _without_root_powers():
    """In the child, before exec: root loses the capabilities that let it write into read-only folders."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_unprivileged(args) -> subprocess.CompletedProcess:
    """``curate`` without the powers of root (root would write anywhere)."""
    kw = {"preexec_fn": _without_root_powers} if os.geteuid() == 0 else {}
    try:
        return subprocess.run([sys.executable, "-m", "curation.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=600, **kw)
    except subprocess.SubprocessError as exc:
        pytest.skip(f"cannot drop root's powers here ({exc})")


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha(p) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("where", ["folder", "plots"])
def test_read_only_folder_or_plots_exits_2_before_the_work(setup, tmp_path, where):
    out = tmp_path / "out"
    out.mkdir()
    put_user_files(out)
    complete_run(setup, out, 1_600_000_000)
    before = snapshot(out)
    target = out / "plots" if where == "plots" else out
    os.chmod(target, 0o555)
    try:
        r = run_unprivileged(["run", setup["form"], "--schema", setup["fast"], "-o", out, "-q"])
    finally:
        os.chmod(target, 0o755)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "not writable (permission denied)" in r.stderr and "choose another -o" in r.stderr
    assert ("subfolder plots/" in r.stderr) == (where == "plots")
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_file_size_limit_exits_2_with_the_old_run_intact(setup, tmp_path):
    import resource

    out = tmp_path / "out"
    out.mkdir()
    put_user_files(out)
    complete_run(setup, out, 1_600_000_000)
    before = snapshot(out)

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    p = subprocess.run([sys.executable, "-m", "curation.cli", "run", str(setup["form"]), "--schema", str(setup["fast"]),
                        "-o", str(out), "-q"], capture_output=True, text=True, preexec_fn=limit, timeout=600)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert "file size limit" in p.stderr and f"{out} was left as it was" in p.stderr
    assert "internal error" not in p.stderr
    assert snapshot(out) == before
    assert leftovers(out) == []


@pytest.fixture
def no_plots(monkeypatch):
    import curation.run

    monkeypatch.setattr(curation.run, "plot_jobs", lambda run: [])


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_full_disk_and_read_only_disk_while_writing(setup, tmp_path, monkeypatch, no_plots):
    import curation.outputs

    out = tmp_path / "out"
    out.mkdir()
    put_user_files(out)
    assert invoke("run", setup["form"], "--schema", setup["fast"], "-o", out, "-q").exit_code == 0
    before = snapshot(out)
    real_write = curation.outputs._write_file
    calls = [0]

    def full(path, data, mode, dmode):
        calls[0] += 1
        if calls[0] == 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, data, mode, dmode)

    monkeypatch.setattr(curation.outputs, "_write_file", full)
    r = invoke("run", setup["form"], "--schema", setup["fast"], "-o", out, "-q")
    assert r.exit_code == 2
    assert f"curate: cannot write the run: {out}: no space left on the disk; free some space" in r.output
    assert f"{out} was left as it was" in r.output and "internal error" not in r.output
    assert snapshot(out) == before and leftovers(out) == []
    monkeypatch.setattr(curation.outputs, "_write_file", real_write)

    def read_only(a, b):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(b))

    monkeypatch.setattr(curation.outputs, "_renameat2_exchange", read_only)
    r = invoke("run", setup["form"], "--schema", setup["fast"], "-o", out, "-q")
    assert r.exit_code == 2 and "the disk is read-only; choose another -o" in r.output
    assert snapshot(out) == before and leftovers(out) == []


def test_missing_input_and_output_under_a_file(setup, tmp_path):
    r = invoke("run", tmp_path / "gone.xlsx", "-o", tmp_path / "out")
    assert r.exit_code == 2 and "gone.xlsx: file not found; check the path" in r.output
    (tmp_path / "afile").write_text("x")
    r = invoke("run", setup["form"], "-o", tmp_path / "afile" / "out")
    assert r.exit_code == 2 and "is a file, so no folder can be made under it" in r.output
    assert "internal error" not in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_the_annotated_copy_is_made_from_the_bytes_validation_read(setup, tmp_path, no_plots):
    from curation.run import read_snapshots, render_outputs, run_job

    form = tmp_path / "form.xlsx"
    shutil.copy(setup["form"], form)
    snap = read_snapshots([form])
    run = run_job([form], setup["fast"], names=["form.xlsx"], data=snap)
    changed = baseline()
    changed["studies"][0]["first_author"] = "Someone Else"
    write_form(form, **changed)  # the form saved again while the run goes
    files = render_outputs(run)
    import openpyxl
    import io

    ws = openpyxl.load_workbook(io.BytesIO(files["form.annotated.xlsx"]))["studies"]
    authors = [c.value for c in ws["B"]]
    assert "Strosberg" in authors and "Someone Else" not in authors


def test_outputs_name_forms_by_file_name_and_stale_run_files_go(setup, tmp_path, monkeypatch, no_plots):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = invoke("run", setup["form"].resolve(), "--schema", setup["fast"], "-o", out, "-q")
    assert r.exit_code == 0, r.output
    local = [str(setup["form"].resolve().parent), str(tmp_path)]
    for p in out.rglob("*"):
        if not p.is_file():
            continue
        blobs = [p.read_bytes()]
        if p.suffix == ".xlsx":
            with zipfile.ZipFile(p) as z:
                blobs = [z.read(n) for n in z.namelist()]
        for b in blobs:
            for path in local:
                assert path.encode() not in b, f"{p.name} holds the local path {path}"
    assert "form.xlsx" in json.loads((out / "analysis.json").read_text())["forms"]
    # a run file of an older run that the new run does not write is removed; the user's files stay
    man = json.loads((out / MANIFEST).read_text())
    (out / "plots").mkdir(exist_ok=True)
    (out / "plots" / "old.svg").write_text("<svg>old</svg>")
    man["files"]["plots/old.svg"] = hashlib.sha256(b"<svg>old</svg>").hexdigest()
    (out / MANIFEST).write_text(json.dumps(man))
    (out / "plots" / "mine.svg").write_text("<svg>mine</svg>")
    assert invoke("run", setup["form"], "--schema", setup["fast"], "-o", out, "-q").exit_code == 0
    assert not (out / "plots" / "old.svg").exists()
    assert (out / "plots" / "mine.svg").read_text() == "<svg>mine</svg>" and (out / "notes.txt").read_text() == "mine"
    assert_one_run(out, {"notes.txt": "mine", "plots/mine.svg": "<svg>mine</svg>"})


def test_a_killed_swap_is_completed_by_the_next_run(tmp_path):
    """Where the system cannot swap two folders in one call, a kill between the two renames leaves
    no folder: the next run puts the complete one back from the marked staging folder."""
    from curation.outputs import _MARKER, _marker_text, clean_leftovers

    out = tmp_path / "out"
    container = tmp_path / ".out.curate-abc123.tmp"
    (container / "run").mkdir(parents=True)
    (container / _MARKER).write_text(_marker_text("out"))
    (container / "ready").write_text("")
    (container / "run" / "report.html").write_text("new")
    (container / "old").mkdir()
    foreign = tmp_path / ".out.curate-zzz.tmp"  # our name, but not our marker: not touched
    (foreign / "x").mkdir(parents=True)
    empty = tmp_path / ".out.curate-yyy.tmp"  # killed right after it was made: empty, removed
    empty.mkdir()
    clean_leftovers(out)
    assert (out / "report.html").read_text() == "new"
    assert not container.exists() and not empty.exists() and (foreign / "x").is_dir()


def test_the_demo_twice_gives_the_same_bytes(tmp_path, monkeypatch, no_plots):
    """`make demo` in a clone leaves the committed reports/demo as it was when nothing changed."""
    if not (ROOT / "extraction_forms" / "example_reviewer_a.xlsx").is_file():
        pytest.skip("the example forms are not there")
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    out = tmp_path / "demo"
    assert invoke("demo", "-o", out, "-q").exit_code == 0
    first = snapshot(out)
    time.sleep(1.1)  # a timestamp would now differ
    assert invoke("demo", "-o", out, "-q").exit_code == 0
    assert snapshot(out) == first
    assert json.loads((out / "analysis.json").read_text())["generated"] == "2026-01-01T00:00:00Z"
