"""Writing outputs: atomically, deterministically, and with form text made inert.

Only the CLI (and ``curate run``) calls these: library stages return plain data.
Every file is written to a temporary file in the same folder, then renamed over the target, so a
reader never sees half a file. Text that came from a form is made inert: a CSV or Excel cell
that would start with ``=``, ``+``, ``-`` (text), ``@``, tab or carriage return gets a leading
``'`` so that no spreadsheet evaluates it.

A whole output folder (``curate run -o DIR``) is replaced at once by :func:`write_folder`: the new
run is built in a marked staging folder beside ``DIR`` (with hard links to the files in ``DIR``
that are not the old run's), then swapped with ``DIR`` in one system call, so that after a kill at
any moment ``DIR`` holds the complete old run or the complete new one. :func:`folder_lock` keeps
two runs from writing the same folder; :func:`check_output_folder` finds an unwritable or full
disk before the work; :func:`os_error_message` says what to do about an OS error in one line.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def inert(value: Any) -> Any:
    """A text value made safe for a spreadsheet cell (numbers are left alone): control characters
    and bidirectional overrides dropped, and a leading ``'`` before ``=``, ``+``, ``-``, ``@``, tab or CR."""
    if isinstance(value, str):
        from .cells import strip_controls

        value = strip_controls(value)
        if value.startswith(_DANGEROUS):
            return "'" + value
    return value


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int | None = None) -> Path:
    """``path`` replaced by ``data`` at once: a temporary file beside it, then a rename (``mode``: its
    permission bits; default those mkstemp gives)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def dumps(obj: Any, *, compact: bool = False) -> str:
    """Deterministic JSON: sorted keys are not imposed (order is meaningful), NaN as null.
    ``compact``: no indentation, each item of a top-level list on a line of its own (large files);
    a top-level value may then be an iterator, whose items are converted one at a time."""
    def plain(v: Any) -> Any:
        return _nan_to_none(json.loads(json.dumps(v, default=_json_default, allow_nan=True)))

    if compact:
        def one(v: Any) -> str:
            return json.dumps(plain(v), ensure_ascii=False, allow_nan=False, separators=(",", ":"))

        def value(v: Any) -> str:
            if isinstance(v, (list, tuple)) or (hasattr(v, "__next__") and hasattr(v, "__iter__")):
                items = [one(x) for x in v]
                return "[\n" + ",\n".join(items) + "\n]" if items else "[]"
            return one(v)

        if isinstance(obj, dict):
            return "{\n" + ",\n".join(f"{one(k)}: {value(v)}" for k, v in obj.items()) + "\n}\n"
        return value(obj) + "\n"
    return json.dumps(plain(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, dumps(obj))


def csv_text(frame) -> str:
    """A DataFrame as CSV with form text made inert (numbers untouched)."""
    import pandas as pd

    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(inert)
    return safe.to_csv(index=False, lineterminator="\n")


def write_csv(path: str | os.PathLike, frame) -> Path:
    return write_text(path, csv_text(frame))


# ---------------------------------------------------------------------------------------------
# A whole output folder, replaced at once
# ---------------------------------------------------------------------------------------------

RUN_MANIFEST = ".curate-run.json"
"""The run's own list of files (relative path -> SHA-256), kept in the output folder: files not in
it are the user's and are kept; files in it are the run's and are replaced as a whole."""

_MARKER = ".curate-staging"
_READY = "ready"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def output_path(out_dir: str | os.PathLike) -> Path:
    """The folder that ``-o out_dir`` means on disk: absolute, links in its parents resolved, and
    ``out_dir`` itself resolved when it is a link to a folder (the run then replaces the target)."""
    p = Path(os.path.abspath(out_dir))
    if p.is_symlink() and p.is_dir():
        return p.resolve()
    return p.parent.resolve() / p.name


def _staging_name(name: str) -> re.Pattern:
    return re.compile(r"\.%s\.curate-[A-Za-z0-9_]+\.tmp" % re.escape(name))


def _marker_text(name: str) -> str:
    return f"curate: staging folder of a run into {name!r}; removed by the next run\n"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha256(path: Path) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def _safe_rel(rel: Any) -> bool:
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel or "\x00" in rel:
        return False
    return all(part not in ("", ".", "..") for part in rel.split("/"))


def read_manifest(folder: str | os.PathLike) -> dict[str, str] | None:
    """The files of the run in ``folder`` (relative path -> SHA-256), or None when it holds none
    (or an unreadable one: then nothing in the folder counts as the run's)."""
    try:
        obj = json.loads((Path(folder) / RUN_MANIFEST).read_text(encoding="utf-8"))
        files = obj["files"]
        if isinstance(files, dict) and all(_safe_rel(k) and isinstance(v, str) for k, v in files.items()):
            return dict(files)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _write_file(path: Path, data: bytes, mode: int, dmode: int) -> None:
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, mode=dmode)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _ancestors(rels: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for rel in rels:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            out.add("/".join(parts[:i]))
    return out


def _link_or_copy(src: str, dst: Path) -> None:
    """``dst`` the same file as ``src`` (a hard link), or a copy where links are not possible."""
    try:
        os.link(src, dst, follow_symlinks=False)
        return
    except OSError:
        pass
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
    else:
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry_over(old: Path, new: Path, old_run: dict[str, str] | None, new_run: set[str],
                keep: set[tuple[int, int]]) -> None:
    """Put into ``new`` every entry of ``old`` that is not the old run's: the user's own files
    (hard links, so they stay the same files), folders and links.

    An entry is the old run's when the old manifest lists it with its current content (a file
    the user changed since is the user's), or, without a manifest, when the new run writes a
    file of that name. The new run's files win over anything of the same name. ``keep``: files
    (device, inode) never dropped (the input forms).
    """
    run_dirs = _ancestors(old_run or {}) | _ancestors(new_run)
    made: set[str] = set()

    def ensure(rel_dir: str) -> None:
        if rel_dir and rel_dir not in made:
            ensure(rel_dir.rpartition("/")[0])
            d = new / rel_dir
            if not d.is_dir():
                d.mkdir()
            made.add(rel_dir)

    def walk(rel_dir: str, users: bool) -> None:
        with os.scandir(old / rel_dir if rel_dir else old) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            if rel == RUN_MANIFEST:
                continue
            st = e.stat(follow_symlinks=False)
            if e.is_dir(follow_symlinks=False):
                mine = users or rel not in run_dirs
                if mine:
                    ensure(rel)
                walk(rel, mine)
                continue
            if rel in new_run:
                continue
            if not users and (st.st_dev, st.st_ino) not in keep:
                if old_run is not None and rel in old_run and _file_sha256(Path(e.path)) == old_run[rel]:
                    continue
            ensure(rel_dir)
            if not os.path.lexists(new / rel):  # else the new run's folder of that name wins
                _link_or_copy(e.path, new / rel)

    walk("", False)
    for rel_dir in sorted(made, reverse=True):  # the folders' modes and times, once they are filled
        with contextlib.suppress(OSError):
            shutil.copystat(old / rel_dir, new / rel_dir, follow_symlinks=False)


def _renameat2_exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one system call (Linux ``renameat2(RENAME_EXCHANGE)``); False when
    the system or the file system cannot (the caller falls back to two renames)."""
    import sys

    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM held back (delivered after the block) while the folders are swapped."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _recover(container: Path, real: Path) -> None:
    """After an interrupted swap (two renames, where the system cannot swap in one call), put a
    complete run back at ``real``: the new one if it was complete, else the old one."""
    if os.path.lexists(real):
        return
    if (container / _READY).is_file() and (container / "run").is_dir():
        os.rename(container / "run", real)
    elif (container / "old").is_dir():
        os.rename(container / "old", real)


def _remove_tree(path: Path) -> None:
    """Remove one of our staging folders, read-only subfolders included, its marker file last (a
    kill midway leaves it marked, or empty: either way the next run knows it is ours); what
    cannot be removed is left for the next run."""
    def retry(func, p, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            func(p)

    if not os.path.lexists(path):
        return
    if not path.is_dir() or path.is_symlink():
        with contextlib.suppress(OSError):
            os.unlink(path)
        return
    with contextlib.suppress(OSError):
        last = (_READY, _MARKER + ".part", _MARKER)
        for name in sorted(os.listdir(path), key=lambda n: last.index(n) if n in last else -1):
            p = path / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, onerror=retry)
            else:
                os.unlink(p)
        os.rmdir(path)


def clean_leftovers(out_dir: str | os.PathLike) -> list[Path]:
    """Remove the staging folders a killed run into ``out_dir`` left beside it (only folders with
    our name pattern and our marker file inside), first putting a complete run back in place if
    the kill came between the two renames of a swap. Call it holding :func:`folder_lock`."""
    real = output_path(out_dir)
    pattern = _staging_name(real.name)
    removed = []
    try:
        entries = list(os.scandir(real.parent))
    except OSError:
        return removed
    for e in entries:
        if not pattern.fullmatch(e.name) or not e.is_dir(follow_symlinks=False):
            continue
        marker = Path(e.path) / _MARKER
        try:
            if set(os.listdir(e.path)) <= {_MARKER + ".part"}:  # killed before its marker was in place
                _remove_tree(Path(e.path))
                removed.append(Path(e.path))
                continue
            if marker.is_symlink() or marker.read_text(encoding="utf-8") != _marker_text(real.name):
                continue
        except (OSError, UnicodeError):
            continue
        _recover(Path(e.path), real)
        _remove_tree(Path(e.path))
        removed.append(Path(e.path))
    return removed


_SWAP_MAX_ENTRIES = 5000


def _too_big_to_swap(real: Path) -> bool:
    """True for a folder that is not just a run and a few files of the user's (``-o ~`` by
    mistake): more than :data:`_SWAP_MAX_ENTRIES` entries, or a mount point inside."""
    dev = real.stat().st_dev
    count = 0
    for root, dirs, files in os.walk(real):
        count += len(dirs) + len(files)
        if count > _SWAP_MAX_ENTRIES:
            return True
        for d in dirs:
            with contextlib.suppress(OSError):
                if os.lstat(os.path.join(root, d)).st_dev != dev:
                    return True
    return False


def _cwd_inside(real: Path) -> bool:
    try:
        cwd = Path.cwd().resolve()
    except OSError:
        return False
    return cwd == real or real in cwd.parents


def write_folder(out_dir: str | os.PathLike, files: dict[str, bytes], *, keep: Sequence[str | os.PathLike] = (),
                 manifest: dict[str, Any] | None = None) -> tuple[Path, str | None]:
    """Replace the run in ``out_dir`` by ``files`` (relative path -> bytes) as a whole.

    The new folder is built beside ``out_dir`` in a staging folder (``.<name>.curate-*.tmp``,
    holding a marker file): the run's files, its manifest (:data:`RUN_MANIFEST`), and hard
    links to every entry of the current ``out_dir`` that is not the old run's. Then the two are
    swapped in one system call (``renameat2(RENAME_EXCHANGE)`` on Linux; elsewhere two renames,
    which :func:`clean_leftovers` completes after a kill) and the old run is removed. A reader
    of ``out_dir`` sees the complete old run or the complete new one, never a mix.

    Where the folder cannot be swapped (the current directory is in it, or its parent is not
    writable) the files are replaced one by one instead, each atomically, and the second value
    returned says so.

    Parameters
    ----------
    keep : paths
        Files never removed from the folder even if an old run wrote them (the input forms).
    manifest : dict, optional
        More fields for the manifest (e.g. the inputs' names and hashes).

    Returns
    -------
    (Path, str or None)
        The folder written, and a note when it was written file by file.
    """
    real = output_path(out_dir)
    mode, dmode = 0o666 & ~_umask(), 0o777 & ~_umask()
    exists = os.path.lexists(real)
    old_run = read_manifest(real) if exists else None
    keep_ids = set()
    for k in keep:
        with contextlib.suppress(OSError):
            st = os.stat(k)
            keep_ids.add((st.st_dev, st.st_ino))
    man = {"curate_run": 1, "run": _run_id(files), **(manifest or {}),
           "files": {rel: sha256_bytes(files[rel]) for rel in sorted(files)}}
    man_bytes = dumps(man).encode("utf-8")
    why = None
    if exists:
        if _cwd_inside(real):
            why = "it holds the current directory"
        elif not os.access(real.parent, os.W_OK | os.X_OK):
            why = "the folder it is in is not writable"
        elif _too_big_to_swap(real):
            why = f"it holds more than {_SWAP_MAX_ENTRIES:,} files of yours, or another disk"
    if why is not None:
        _stop_if_asked()
        _write_in_place(real, files, old_run, man_bytes, keep_ids, mode)
        return real, (f"{out_dir} was updated file by file, not replaced as a whole, because {why}; "
                      "a run stopped midway can leave it mixed")
    real.parent.mkdir(parents=True, exist_ok=True)
    container = Path(tempfile.mkdtemp(prefix=f".{real.name}.curate-", suffix=".tmp", dir=real.parent))
    try:
        (container / (_MARKER + ".part")).write_text(_marker_text(real.name), encoding="utf-8")
        os.rename(container / (_MARKER + ".part"), container / _MARKER)
        stage = container / "run"
        stage.mkdir()
        for rel in _in_order(files):
            _write_file(stage / rel, files[rel], mode, dmode)
        _write_file(stage / RUN_MANIFEST, man_bytes, mode, dmode)
        if exists:
            _carry_over(real, stage, old_run, set(files), keep_ids)
            with contextlib.suppress(OSError):
                shutil.copystat(real, stage, follow_symlinks=False)
        else:
            os.chmod(stage, dmode)
        for d in sorted({stage / x for x in _ancestors(files)}):
            _fsync_dir(d)
        _fsync_dir(stage)
        (container / _READY).write_bytes(b"")
        with _signals_held():
            _stop_if_asked()  # signals are held from here: none can land between the check and the swap
            _swap(container, stage, real)
        _fsync_dir(real.parent)
    finally:
        with _signals_held():
            with contextlib.suppress(OSError):
                _recover(container, real)
            _remove_tree(container)
    return real, None


def _stop_if_asked() -> None:
    """Raise :class:`~curation.errors.Interrupted` when Ctrl-C or SIGTERM was received during the
    command, even if the exception its handler raised was swallowed on the way (Python drops one
    raised inside a weakref callback): a stopped run never replaces the folder."""
    from .errors import Interrupted, stop_requested

    signum = stop_requested()
    if signum is not None:
        raise Interrupted(signum)


def run_id_in(folder: str | os.PathLike) -> str | None:
    """The id of the run whose manifest ``folder`` holds (None when none): tells, after a stop,
    whether the folder holds the new run or the old one."""
    try:
        obj = json.loads((Path(folder) / RUN_MANIFEST).read_text(encoding="utf-8"))
        return str(obj["run"]) if isinstance(obj, dict) and "run" in obj else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_id(files: dict[str, bytes]) -> str:
    """The id a run of these files records in its manifest."""
    return _run_id(files)


def _swap(container: Path, stage: Path, real: Path) -> None:
    for _ in range(3):
        if not os.path.lexists(real):
            try:
                os.rename(stage, real)
                return
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not os.path.lexists(real):
                    raise
        if not real.is_dir() or real.is_symlink():
            raise OSError(errno.ENOTDIR, "appeared meanwhile and is not a folder", str(real))
        if _renameat2_exchange(stage, real):
            return
        os.rename(real, container / "old")
        os.rename(stage, real)
        return
    raise OSError(errno.EBUSY, "keeps changing while the run writes it", str(real))


def _write_in_place(real: Path, files: dict[str, bytes], old_run: dict[str, str] | None, man_bytes: bytes,
                    keep_ids: set, mode: int) -> None:
    """The fallback of :func:`write_folder`: each file replaced on its own, then the old run's
    files that the new run does not write removed, the manifest last."""
    for rel in _in_order(files):
        atomic_write_bytes(real / rel, files[rel], mode)
    for rel, digest in sorted((old_run or {}).items()):
        p = real / rel
        if rel in files or p.is_symlink() or not p.is_file():
            continue
        st = p.stat()
        if (st.st_dev, st.st_ino) in keep_ids or _file_sha256(p) != digest:
            continue
        with contextlib.suppress(OSError):
            p.unlink()
    atomic_write_bytes(real / RUN_MANIFEST, man_bytes, mode)


def _in_order(files: Iterable[str]) -> list[str]:
    """report.html last, so that what it links to is there before it is."""
    return sorted(files, key=lambda rel: (rel == "report.html", rel))


def _run_id(files: dict[str, bytes]) -> str:
    """The run's identity: a hash of its files' names and contents (same files, same id)."""
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode("utf-8") + b"\x00" + sha256_bytes(files[rel]).encode() + b"\n")
    return h.hexdigest()[:16]


@contextlib.contextmanager
def folder_lock(out_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock on ``out_dir`` (``.<name>.curate-lock`` beside it, ``flock``): a second
    run into the same folder is refused at once with the first one's process id. The lock file
    is removed at the end; one left by a killed run is taken over (the kernel released it)."""
    import fcntl

    from .errors import UnusableInputError

    real = output_path(out_dir)
    real.parent.mkdir(parents=True, exist_ok=True)
    lock = real.parent / f".{real.name}.curate-lock"

    def acquire() -> int:
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                         0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                try:
                    pid = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
                finally:
                    os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise UnusableInputError(f"{out_dir}: another curate run is writing this folder (pid {pid}); "
                                             "wait for it to finish or choose another -o") from None
                raise
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(lock, follow_symlinks=False))
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
            os.close(fd)  # the holder removed it between our open and our lock: take the new one

    fd = None
    try:
        with _signals_held():  # an interrupt now would leave the lock file behind
            fd = acquire()
        yield real
    finally:
        if fd is not None:
            # held: a signal landing between the end of the work and the unlink (its handler raises) would
            # skip the unlink and leave the lock's file behind; it is delivered just after
            with _signals_held():
                with contextlib.suppress(OSError):
                    os.unlink(lock)
                os.close(fd)


def check_output_folder(out_dir: str | os.PathLike, need_bytes: int = 0) -> None:
    """Before any work: ``out_dir`` can be written (it, or the folder it will be made in, exists,
    is a folder and is writable; the run's own subfolders in it are writable) and its disk has
    ``need_bytes`` free. Raises :class:`~curation.errors.UnusableInputError` (one line, exit 2)."""
    from .errors import UnusableInputError

    real = output_path(out_dir)
    if real.parent == real or not real.name:
        raise UnusableInputError(f"{out_dir}: the root folder cannot be an output folder; choose another -o")
    if os.path.lexists(real) and not real.is_dir():
        raise UnusableInputError(f"{out_dir}: is a file, not a folder; choose another -o")
    base = real if real.is_dir() else real.parent
    while not base.exists():
        if os.path.lexists(base):
            raise UnusableInputError(f"{out_dir}: {base} is a broken link; choose another -o")
        base = base.parent
    if not base.is_dir():
        raise UnusableInputError(f"{out_dir}: {base} is a file, so no folder can be made under it; choose another -o")
    write_in = real.parent if real.parent.is_dir() else base
    try:
        st = os.statvfs(write_in)
    except OSError as exc:
        raise UnusableInputError(f"{out_dir}: {os_error_message(exc)}") from None
    if st.f_flag & getattr(os, "ST_RDONLY", 1):
        raise UnusableInputError(f"{out_dir}: the disk holding it is read-only; choose another -o on a writable disk")
    targets = [write_in]
    if real.is_dir():  # its parent need not be writable: the run then writes into it file by file
        targets = [real]
        targets += sorted({real / d for d in _ancestors(read_manifest(real) or {})} & {p for p in real.iterdir()})
    for t in targets:
        if t.is_dir() and not os.access(t, os.W_OK | os.X_OK):
            what = "the folder it is made in" if t == write_in and t != real else "it"
            if t not in (real, write_in):
                what = f"its subfolder {t.relative_to(real)}/"
            if _read_only_disk(t):  # a read-only mount (EROFS): no chmod makes it writable
                raise UnusableInputError(f"{out_dir}: {what} ({t}) is on a read-only disk (a read-only mount); "
                                         "choose another -o on a writable disk")
            raise UnusableInputError(f"{out_dir}: {what} ({t}) is not writable (permission denied); make it "
                                     "writable (chmod u+w) or choose another -o")
    free = st.f_bavail * st.f_frsize
    if need_bytes and free < need_bytes:
        raise UnusableInputError(f"{out_dir}: not enough free space on its disk ({_mb(free)} free, the run needs "
                                 f"about {_mb(need_bytes)}); free some space or choose another -o")


def _read_only_disk(path: Path) -> bool:
    """The file system holding ``path`` is mounted read-only (``ST_RDONLY``), or refuses a write with EROFS."""
    try:
        if os.statvfs(path).f_flag & getattr(os, "ST_RDONLY", 1):
            return True
    except OSError:
        return False
    try:  # a bind mount can be read-only while statvfs reports the file system's own flags
        fd, name = tempfile.mkstemp(prefix=".curate-probe-", dir=path)
    except OSError as exc:
        return exc.errno == errno.EROFS
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return False


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


_ERRNO_TEXT = {
    errno.ENOSPC: "no space left on the disk; free some space or choose another -o on another disk",
    errno.EDQUOT: "the disk quota is used up; free some space or choose another -o",
    errno.EROFS: "the disk is read-only; choose another -o on a writable disk",
    errno.EACCES: "permission denied; check the permissions (chmod u+w) or choose another -o",
    errno.EPERM: "operation not permitted; check the permissions or choose another -o",
    errno.EFBIG: "a file is larger than this system allows (a file size limit, ulimit -f); raise the limit or "
                 "choose another -o",
    errno.ENOENT: "no longer there (moved or deleted while curate ran); check the path and run again",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "is a folder where a file was expected; check the path",
    errno.ENAMETOOLONG: "the path is too long; choose a shorter path",
    errno.EMFILE: "too many open files; close other programs and run again",
    errno.ENFILE: "too many open files on the system; close other programs and run again",
    errno.EIO: "input/output error (a failing disk or a network drive that went away); check the disk and run again",
    errno.ENOMEM: "out of memory; close other programs and run again",
    errno.EBUSY: "busy (in use by another program); close it there and run again",
    errno.ETXTBSY: "busy (in use by another program); close it there and run again",
    errno.ELOOP: "too many levels of links in the path; check the path",
    errno.EMLINK: "too many links; choose another -o",
}


def os_error_message(exc: OSError, path: str | os.PathLike | None = None) -> str:
    """One line for an OS error that says what to do: ``"<path>: <what>; <what to do>"``
    (``path`` names the file or folder when the error does not, or names it better)."""
    where = path if path is not None else (exc.filename if exc.filename not in (None, "") else None)
    text = _ERRNO_TEXT.get(exc.errno) if exc.errno is not None else None
    if text is None:
        detail = (exc.strerror or str(exc) or type(exc).__name__).strip()
        text = f"{detail}; check the path and the disk, and run again"
    where = re.sub("[\x00-\x1f\x7f]", "?", os.fspath(where)) if where is not None else None
    return f"{where}: {text}" if where is not None else text
