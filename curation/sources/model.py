"""Typed results of the source check: places in an article, one entry per verified cell, the whole verification.

Every object here is a frozen dataclass: the stage (:mod:`curation.sources.stage`) returns them and the command
line, the report and the annotated workbooks only render them (contract: ``shared/spec/sources.md``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["found", "found-elsewhere", "mismatch", "absent", "inconsistent-source", "unreadable"]
#: Every status, in the order a summary lists them.
STATUSES: tuple[str, ...] = ("found", "found-elsewhere", "mismatch", "absent", "inconsistent-source", "unreadable")

#: Section kinds whose numbers never count as the study's own figures: other trials quoted in the
#: introduction or discussion, and the reference list.
FOREIGN_KINDS = frozenset({"introduction", "discussion", "references"})


@dataclass(frozen=True)
class Place:
    """Where a figure is printed in an article.

    Attributes
    ----------
    file : str
        The article's file name.
    page : int or None
        1-based page of a PDF (None for JATS XML).
    section : str or None
        The section heading the figure is under (``Results``, ``Abstract`` ...).
    kind : str
        What the section is: ``abstract``, ``methods``, ``results``, ``table``, ``introduction``,
        ``discussion``, ``references``, ``front`` or ``body``.
    table : str or None
        The table's label and caption start (``Table 2``), for a figure in a table.
    row : str or None
        The table row's label (first cell), for a figure in a table.
    column : str or None
        The table column's header, for a figure in a table.
    quote : str
        At most 200 characters of the article's own text around the figure (never normalised).
    printed : str
        The figure as printed (``30.9``, ``15/46 (32.6%)``'s ``32.6%``).
    near_terms : tuple of str
        The field's terms found next to the figure (empty when none).
    score : float
        How well this place fits (higher first): terms next to the figure, the figure's role
        (estimate or CI bound) and section.
    """

    file: str
    page: int | None
    section: str | None
    kind: str
    quote: str
    printed: str
    table: str | None = None
    row: str | None = None
    column: str | None = None
    near_terms: tuple[str, ...] = ()
    score: float = 0.0

    @property
    def text(self) -> str:
        """The place as the contract writes it: ``file, page N`` (PDF) or ``file, section / table, row, column``."""
        if self.page is not None:
            where = f"{self.file}, page {self.page}"
            if self.table:
                where += f", {self.table}"
            return where
        parts = [p for p in (self.section, self.table) if p]
        where = f"{self.file}, {' / '.join(parts)}" if parts else self.file
        for extra in (self.row, self.column):
            if extra:
                where += f", {extra}"
        return where

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["near_terms"] = list(self.near_terms)
        d["place"] = self.text
        return d


@dataclass(frozen=True)
class VerificationEntry:
    """The verdict on one verified cell of a form.

    Attributes
    ----------
    file, sheet, row, column, cell : str, str, int, str, str
        The form's cell (``cell`` as Excel writes it: ``outcomes!M7``).
    field : str
        The field key.
    study_id : str or None
        The row's study.
    value : object
        The form's value (as normalised: a number for number fields, the canonical term for vocabularies).
    status : {"found", "found-elsewhere", "mismatch", "absent", "inconsistent-source", "unreadable"}
        See the contract's table.
    source : str or None
        The article's file name (None when no file matched the study).
    place : str or None
        ``file, page N`` or ``file, section / table, row, column`` of the figure (found, found-elsewhere), of the
        printed value (mismatch), or of both printed values joined by `` vs `` (inconsistent-source).
    quote : str or None
        At most 200 characters of the article around that place.
    printed : str or None
        The value as printed there.
    """

    file: str
    sheet: str
    row: int | None
    column: str | None
    cell: str | None
    field: str
    study_id: str | None
    value: Any
    status: Status
    source: str | None
    place: str | None
    quote: str | None
    printed: str | None

    def to_dict(self) -> dict[str, Any]:
        from ..findings import _plain

        d = asdict(self)
        d["value"] = _plain(self.value)
        return d


@dataclass(frozen=True)
class StudySources:
    """Which article files were matched to a study, and how.

    Attributes
    ----------
    study_id : str
    files : tuple of str
        The matched files (article and supplements), file names in the sources folder.
    how : str
        ``source field``, ``study id in file name``, ``first author and year`` ... or the reason none matched.
    """

    study_id: str
    files: tuple[str, ...]
    how: str


@dataclass(frozen=True)
class Verification:
    """The outcome of checking a review's forms against their articles.

    Attributes
    ----------
    entries : tuple of VerificationEntry
        One per verified cell, in form order.
    findings : tuple of Finding
        ``source-mismatch``, ``source-inconsistent`` (warnings), ``source-value-elsewhere``,
        ``source-absent`` (info), and one ``source-unreadable`` (warning) per study whose article
        could not be read or matched.
    studies : tuple of StudySources
        The files each study was matched to.
    """

    entries: tuple[VerificationEntry, ...]
    findings: tuple[Any, ...]
    studies: tuple[StudySources, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        """Entries per status (every status listed, zero included)."""
        out = {s: 0 for s in STATUSES}
        for e in self.entries:
            out[e.status] += 1
        return out

    def by_study(self) -> dict[str | None, list[VerificationEntry]]:
        """Entries grouped by study (form order kept)."""
        out: dict[str | None, list[VerificationEntry]] = {}
        for e in self.entries:
            out.setdefault(e.study_id, []).append(e)
        return out

    def share_found(self, study_id: str | None) -> float | None:
        """Share of the study's verified figures found (``found``), None when none was verified."""
        es = [e for e in self.entries if e.study_id == study_id and e.status != "unreadable"]
        if not es:
            return None
        return sum(e.status == "found" for e in es) / len(es)

    def to_dict(self) -> dict[str, Any]:
        return {"findings": [f.to_dict() for f in self.findings],
                "verification": [e.to_dict() for e in self.entries]}
