"""Findings: what the checks report, one per problem, each at its cell.

A finding carries the file, sheet, Excel row and column letter of the cell most likely wrong,
the field, the study, a stable rule code (``response-sum-mismatch``), a severity and a message
that names every cell involved. Findings are plain immutable values; a run's findings are
sorted deterministically (file, sheet order, row, column, rule).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


def _plain(value: Any) -> Any:
    """A JSON-ready form of a cell value (numbers stay numbers, dates become ISO text)."""
    if isinstance(value, str):
        from .cells import strip_controls

        return strip_controls(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else (int(value) if value.is_integer() and abs(value) < 1e15 else value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    try:  # numpy scalars
        return _plain(value.item())
    except AttributeError:
        return str(value)


@dataclass(frozen=True, order=False)
class Finding:
    """One problem at one cell (or row) of a form.

    Attributes
    ----------
    file : str
        The form's file name as given on the command line.
    sheet : str
        The contract sheet (``studies``, ``outcomes``, ``adverse_events``).
    row : int or None
        Excel row number (1-based, header included); None for a sheet- or file-level finding.
    column : str or None
        Column letter, or None for a row-level finding.
    field : str or None
        The field key, or None.
    study_id : str or None
        The study the row belongs to, when known.
    rule : str
        Stable kebab-case identifier of the rule (see ``curate rules``).
    severity : {"error", "warning", "info"}
        ``error`` excludes the record from pooling; ``warning`` lets it pass and is shown;
        ``info`` is a note.
    message : str
        What is wrong and where, naming every cell involved.
    value : object
        The cell's value as typed (or None).
    table : str or None
        The contract sheet (``studies``, ``outcomes`` ...) the row belongs to, when the workbook's
        own sheet (``sheet``) is named otherwise or holds several contract sheets (a team's wide
        ``Data extraction`` sheet); None when it is ``sheet`` itself.
    involves : tuple of str
        Every field the finding involves: its own ``field`` and the fields of the cells its
        message cites (``sheet.field`` for a field of another contract sheet). An error excludes
        its record from the analyses that use one of these fields, and only from those; empty
        means "``field`` alone" (see :meth:`fields`).
    """

    file: str
    sheet: str | None
    row: int | None
    column: str | None
    field: str | None
    study_id: str | None
    rule: str
    severity: Severity
    message: str
    value: Any = None
    table: str | None = None
    involves: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the finding involves (``involves``, else its own ``field``; empty for a
        row- or file-level finding that names no field)."""
        if self.involves:
            return self.involves
        return (self.field,) if self.field else ()

    @property
    def contract_sheet(self) -> str | None:
        """The contract sheet of the row (``table``, else ``sheet``)."""
        return self.table or self.sheet

    @property
    def cell(self) -> str | None:
        """The cell reference as Excel writes it: ``outcomes!C12``, ``'Data extraction'!M7``
        (``sheet!12:12``, the whole row, for a row-level finding)."""
        if self.sheet is None or self.row is None:
            return None
        sheet = quote_sheet(self.sheet)
        if not self.column:
            return f"{sheet}!{self.row}:{self.row}"
        return f"{sheet}!{self.column}{self.row}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["value"] = _plain(self.value)
        d["cell"] = self.cell
        d["table"] = self.contract_sheet
        return d


_PLAIN_SHEET = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_CELL_LIKE = re.compile(r"[A-Za-z]{1,3}\d+")


@lru_cache(maxsize=1024)
def quote_sheet(name: str) -> str:
    """A sheet name as a cell reference writes it: ``outcomes``, ``'Data extraction'``, ``'O''Brien'``."""
    if _PLAIN_SHEET.fullmatch(name) and not _CELL_LIKE.fullmatch(name):
        return name
    return "'" + name.replace("'", "''") + "'"


FINDING_COLUMNS = ("file", "sheet", "row", "column", "cell", "field", "study_id", "rule", "severity",
                   "message", "value", "table")


def _column_rank(letter: str | None) -> int:
    if not letter:
        return 0
    n = 0
    for ch in letter:
        n = n * 26 + (ord(ch.upper()) - 64)
    return n


def sort_findings(findings: Iterable[Finding], sheet_order: Iterable[str] = ()) -> list[Finding]:
    """Sort findings by file, sheet (schema order), row, column, severity and rule."""
    order = {s: i for i, s in enumerate(sheet_order)}
    return sorted(
        findings,
        key=lambda f: (f.file or "", order.get(f.contract_sheet, len(order)), f.sheet or "", f.row or 0,
                       _column_rank(f.column), SEVERITY_RANK[f.severity], f.rule, f.message),
    )


@dataclass(frozen=True)
class Summary:
    """Counts of a validation run; ``rows_read == rows_passed + rows_excluded`` always.

    A row *passes* (into the clean dataset) when it may enter at least one analysis that reads its
    sheet; it is *excluded* when errors keep it out of every one (identity and eligibility errors,
    or errors in fields each of them uses). ``rows_restricted`` counts the passed rows that some
    analysis may not take (an error in a field that analysis uses); ``by_sheet`` gives ``read``,
    ``passed``, ``excluded`` and ``restricted`` per sheet (docs/exclusions.md).
    """

    forms: int
    studies: int
    rows_read: int
    rows_passed: int
    rows_excluded: int
    errors: int
    warnings: int
    info: int
    by_rule: dict[str, int] = field(default_factory=dict)
    by_sheet: dict[str, dict[str, int]] = field(default_factory=dict)
    cells: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    rows_restricted: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
