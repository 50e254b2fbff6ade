"""Worker processes that never outlive the command that started them.

:func:`process_pool` is the one way the package starts processes (plots, reading many forms). Each
worker asks the kernel to kill it when its parent dies (Linux ``PR_SET_PDEATHSIG``), so a
``kill -9`` of ``curate`` leaves no worker behind; it ignores Ctrl-C (the terminal sends it to every
process of the command: the parent handles it) and dies on SIGTERM. When the parent stops early (an
exception, Ctrl-C, SIGTERM), the pending work is cancelled and the workers are killed at once
instead of finishing what was queued.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import Iterator

_PR_SET_PDEATHSIG = 1


_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _noop() -> None:
    return None


def _die_with_parent(parent: int) -> None:
    """Pool initializer: be killed with the parent; leave Ctrl-C to it; SIGTERM ends the worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)  # held by the parent while it forked
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the pool's own shutdown still runs
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


@contextlib.contextmanager
def process_pool(workers: int, *, fork: bool = False) -> Iterator["concurrent.futures.ProcessPoolExecutor"]:  # noqa: F821
    """A ``ProcessPoolExecutor`` whose workers die with the parent, and are killed (not waited
    for) when the ``with`` block ends with an exception or an interrupt."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import threading

    ctx = mp.get_context("fork") if fork else None
    ex = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_die_with_parent, initargs=(os.getpid(),))
    try:
        # start the workers now, with Ctrl-C and SIGTERM held: a signal handled while the
        # interpreter forks is lost, or leaves a lock of the logging module taken for good
        main = threading.current_thread() is threading.main_thread()
        before = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD) if main else None
        try:
            ex.submit(_noop)
        finally:
            if before is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, before)
        yield ex
    except BaseException:
        procs = list((getattr(ex, "_processes", None) or {}).values())
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(5)
        raise
    else:
        ex.shutdown(wait=True)
