"""Errors that stop a command: input that cannot be used at all.

Bad *data* never raises: it becomes a :class:`curation.findings.Finding`. Only input that
cannot be read as an extraction form at all (not a workbook, encrypted, too large, no contract
sheets, a malformed schema file) raises :class:`UnusableInputError`, which the CLI turns into one
line on stderr and exit code 2.
"""

from __future__ import annotations


class UnusableInputError(Exception):
    """The input cannot be used; the message says what is wrong and what to do.

    Parameters
    ----------
    message : str
        One line for the reviewer, e.g. ``"form.xlsx: not a workbook (it is a CSV file):
        save it as .xlsx"``.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class SchemaError(UnusableInputError):
    """A schema file that is not a valid review schema (names the file and line)."""


class Interrupted(BaseException):
    """The command was stopped by a signal (Ctrl-C, SIGTERM, SIGHUP); exit code 128 + signal.

    A ``BaseException`` like :class:`KeyboardInterrupt`, so that no ``except Exception`` of a
    stage swallows it; ``message`` says in what state the outputs were left.
    """

    def __init__(self, signum: int, message: str | None = None) -> None:
        import signal

        try:
            name = signal.Signals(signum).name
        except ValueError:  # pragma: no cover
            name = f"signal {signum}"
        self.signum = signum
        self.message = message or ("interrupted (Ctrl-C)" if name == "SIGINT" else f"stopped by {name}")
        super().__init__(self.message)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# Signals seen during the command, whatever became of the exception their handler raised: Python drops
# an exception raised inside a weakref callback or a __del__ ("Exception ignored in: ..."), so a Ctrl-C
# can be swallowed while the run goes on. What would replace the user's files asks here first.
_STOPS: list[int] = []


def note_stop(signum: int) -> None:
    """Record that ``signum`` was received (called by the command's signal handlers)."""
    _STOPS.append(signum)


def stop_requested() -> int | None:
    """The last stop signal received since :func:`clear_stops`, or None."""
    return _STOPS[-1] if _STOPS else None


def clear_stops() -> None:
    """Forget the signals seen (at the start of a command)."""
    _STOPS.clear()
