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
