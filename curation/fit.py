"""How well a workbook's headers fit a schema, and which shipped schema they fit best.

A workbook of another review checked against the default schema reads as a form with most fields
missing: the findings would be many and beside the point. The reading stage measures the fit from
the layout it inferred -- how many of the schema's fields got a column, how many of its sheets were
found -- and, when the fit is poor, infers the layout of the same grids for every other shipped
schema and names those that fit better (``schema-fits-poorly``, a warning), so that the reviewer
gives ``--schema``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Below this share of the schema's fields placed, a fit is poor (the shipped example forms place
#: 60-100% of theirs; a workbook of another review places 0-30%).
POOR_FIT = 0.4


@dataclass(frozen=True)
class Fit:
    """How many of a schema's fields and sheets a workbook's headers match."""

    schema: str
    fields_matched: int
    fields: int
    sheets_matched: int
    sheets: int

    @property
    def share(self) -> float:
        return self.fields_matched / self.fields if self.fields else 0.0

    def text(self) -> str:
        return (f"{self.schema} ({self.fields_matched} of {self.fields} fields, "
                f"{self.sheets_matched} of {self.sheets} sheets)")


def _fields(schema) -> set[str]:
    """The schema's data fields (``sheet.field``; metadata such as the extractor left out)."""
    return {f"{s}.{f}" for s, spec in schema.sheets.items() for f, fs in spec.fields.items()
            if not fs.metadata and fs.type != "source"}


def layout_fit(schema, layout) -> Fit:
    """The fit of an inferred :class:`~curation.layout.Layout` to ``schema``."""
    fields = _fields(schema)
    placed: set[str] = set()
    sheets: set[str] = set()
    for sl in layout.sheets:
        for table in sl.tables:
            if table not in schema.sheets:
                continue
            sheets.add(table)
            for col in sl.columns:
                for f in col.parts.values():
                    if f"{table}.{f}" in fields:
                        placed.add(f"{table}.{f}")
            for f in sl.derived:
                if f"{table}.{f}" in fields:
                    placed.add(f"{table}.{f}")
            for spec in (sl.outcomes or {}).values() if sl.shape == "long" else ():  # outcome x role
                for f in spec.values():
                    if f"{table}.{f}" in fields:
                        placed.add(f"{table}.{f}")
    return Fit(schema.name, len(placed), len(fields), len(sheets), len(schema.sheets))


def workbook_fit(schema, workbook) -> Fit:
    """The fit of a workbook as read (:class:`~curation.reading.RawWorkbook`) to ``schema``: the fields
    that received at least one value, whatever shape bound them (a column header, a long sheet's
    outcome and role, a form's row label, a cross-tab's head), and the contract sheets found."""
    fields = _fields(schema)
    placed: set[str] = set()
    sheets: set[str] = set()
    for table, rs in workbook.sheets.items():
        if table not in schema.sheets:
            continue
        sheets.add(table)
        for f, values in rs.values.items():
            if f"{table}.{f}" in fields and any(v is not None and v == v and v != "" for v in values):
                placed.add(f"{table}.{f}")
    return Fit(schema.name, len(placed), len(fields), len(sheets), len(schema.sheets))


def grids_fit(grids, schema) -> Fit:
    """The fit of a workbook's grids to ``schema`` (its layout inferred for that schema)."""
    from .errors import UnusableInputError
    from .layout import infer_layout

    try:
        return layout_fit(schema, infer_layout(grids, schema))
    except UnusableInputError:
        return Fit(schema.name, 0, len(_fields(schema)), 0, len(schema.sheets))


def other_fits(grids, schema) -> list[Fit]:
    """The fit of every other shipped schema to the grids, closest first."""
    from .schema import load_schema, shipped_schemas

    out = []
    for name, path in shipped_schemas().items():
        if name == schema.name:
            continue
        try:
            other = load_schema(path)
        except Exception:  # noqa: BLE001 - a shipped schema that does not load is the test suite's concern
            continue
        out.append(grids_fit(grids, other))
    return sorted(out, key=lambda f: (-f.share, -f.fields_matched, f.schema))


def _hint(others: list[Fit]) -> str:
    others = [f for f in others if f.fields_matched]  # a schema none of whose fields is here is not close
    good = [f for f in others if f.share >= POOR_FIT]
    if good:
        return (f"; closest shipped schemas: {', '.join(f.text() for f in others[:3])}: give --schema "
                f"{good[0].schema}")
    named = f"; closest shipped schemas: {', '.join(f.text() for f in others[:3])}, none a good fit" if others else ""
    return named + ": write a schema for this review (docs/comparative.md) and give --schema FILE"


def fit_findings(grids, schema, workbook) -> list[Any]:
    """``schema-fits-poorly``: one warning when the workbook as read (``workbook``, whatever its
    shape and whether its layout was inferred or given) gives values to under :data:`POOR_FIT` of
    the schema's fields, naming the closest shipped schemas by how many of their fields and sheets
    the headers match."""
    from .findings import Finding

    fit = workbook_fit(schema, workbook)
    if fit.fields == 0 or fit.share >= POOR_FIT:
        return []
    message = (f"the workbook's headers match {fit.fields_matched} of the {fit.fields} fields of schema "
               f"{schema.name!r} ({fit.sheets_matched} of its {fit.sheets} sheets): it may be a form of another "
               f"review{_hint(other_fits(grids, schema))}")
    return [Finding(grids.file, None, None, None, None, None, "schema-fits-poorly", "warning", message)]


def unusable_hint(grids, schema) -> str:
    """For a workbook whose layout cannot be inferred at all: the closest shipped schemas, as a
    sentence to add to the error."""
    return _hint(other_fits(grids, schema))
