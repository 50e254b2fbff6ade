"""Input safety: decide whether a file may be handed to a workbook parser at all.

:func:`check_workbook` runs on every form *before* openpyxl or calamine touch it. It refuses, with one
line that names the file, says what is wrong and what to do, anything that is not a plain ``.xlsx``
workbook of sane size: missing or unreadable files, other formats named ``.xlsx`` (legacy or encrypted
``.xls``, CSV, HTML, PDF, ODS ...), damaged zips, decompression bombs (decided from the central
directory without decompressing, and again while streaming every member with a byte cap, so that a
header that lies about a member's size is caught too), overlapping zip members, encrypted members,
XML parts with a DTD (entity expansion, external entities), sheets whose size is beyond the limits and
cells longer than Excel's own limit of 32,767 characters.

The check is cheap: every member is decompressed once, in 1 MB pieces, and the scans are C-level
``bytes.find`` calls on those pieces; a 47,000-row form is checked in a few tens of milliseconds and
the memory used does not depend on the size of the file. Nothing is parsed with a full XML parser
except the small metadata parts (content types, workbook, relationships), and those with defusedxml.

Bad CRCs are not checked here (the parser reports them when it reads the member).
"""

from __future__ import annotations

import bisect
import codecs
import hashlib
import io
import os
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import defusedxml
import defusedxml.ElementTree as DET

from .errors import UnusableInputError

__all__ = ["Limits", "SheetInfo", "WorkbookInfo", "check_workbook", "file_sha256", "limits_for", "openpyxl_is_defused"]


@dataclass(frozen=True)
class Limits:
    """What a form may be at most.

    Parameters
    ----------
    max_uncompressed_bytes : int
        Sum of the declared uncompressed sizes of all zip members.
    max_rows, max_columns : int
        Per sheet: the bottom row and right-most column of the sheet's declared ``<dimension>``
        (or, when it has none, of the cells found); rows found beyond a declared dimension count too.
    max_cell_chars : int
        Excel's own limit for one cell; a longer shared string, inline string or cell value is refused.
    max_members : int
        Number of zip members.
    max_compression_ratio : float
        Uncompressed / compressed size allowed for a member of at least ``ratio_check_min_bytes``
        (declared) uncompressed bytes. Real sheet XML compresses about 10-30x, deflate can reach
        about 1,030x; a repetitive but real sheet stays well below 200x.
    ratio_check_min_bytes : int
        Members smaller than this are not held to the ratio (small repetitive parts compress very well).
    max_element_bytes : int
        One shared string (``<si>``) or one run of text in a sheet may not span more XML than this;
        no real cell comes near it (it bounds the memory of the cell-length scan).
    max_cells : int
        Per sheet: rows x columns of the area a reader lays out (the bottom row times the right-most
        column, however few cells are filled): a sheet with two cells at A1 and SF100000 would make
        a reader allocate fifty million.
    max_sheets : int
        Sheets declared in the workbook.
    max_shared_strings : int
        Entries of the shared-string table.
    """

    max_uncompressed_bytes: int = 200_000_000
    max_rows: int = 100_000
    max_columns: int = 500
    max_cell_chars: int = 32_767
    max_members: int = 10_000
    max_compression_ratio: float = 200.0
    ratio_check_min_bytes: int = 4_000_000
    max_element_bytes: int = 16_000_000
    max_cells: int = 3_000_000
    max_sheets: int = 255
    max_shared_strings: int = 1_000_000

    def __post_init__(self) -> None:
        for name in ("max_uncompressed_bytes", "max_rows", "max_columns", "max_cell_chars", "max_members",
                     "ratio_check_min_bytes", "max_element_bytes", "max_cells", "max_sheets",
                     "max_shared_strings"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Limits.{name} must be a positive integer")
        if self.max_compression_ratio <= 1:
            raise ValueError("Limits.max_compression_ratio must be above 1")


@dataclass(frozen=True)
class SheetInfo:
    """One sheet as declared in ``xl/workbook.xml``.

    ``dimension`` is the declared ``<dimension ref>`` (``None`` when the sheet has none);
    ``rows``/``columns`` the bottom row and right-most column number taken from it or, without it,
    from the cells found (``None`` when not known, e.g. a chart sheet).
    """

    name: str
    part: str | None
    kind: str = "worksheet"
    state: str = "visible"
    dimension: str | None = None
    rows: int | None = None
    columns: int | None = None
    has_formulas: bool = False
    hidden_rows: frozenset = frozenset()
    hidden_columns: frozenset = frozenset()


@dataclass(frozen=True)
class WorkbookInfo:
    """What :func:`check_workbook` learned about a workbook that may be parsed."""

    path: str
    sheets: tuple[SheetInfo, ...]
    has_formulas: bool
    has_percent_formats: bool
    uncompressed_bytes: int
    members: int

    @property
    def sheet_names(self) -> tuple[str, ...]:
        """Sheet names in workbook order."""
        return tuple(s.name for s in self.sheets)

    @property
    def dimensions(self) -> dict[str, str | None]:
        """Declared ``<dimension ref>`` per sheet name (``None`` when absent)."""
        return {s.name: s.dimension for s in self.sheets}

    def sheet(self, name: str) -> SheetInfo:
        """The :class:`SheetInfo` of sheet ``name``."""
        return {s.name: s for s in self.sheets}[name]


def openpyxl_is_defused() -> bool:
    """True when openpyxl parses XML with defusedxml (it does when defusedxml is installed)."""
    import openpyxl  # only here: openpyxl is not needed to check a workbook

    return bool(getattr(openpyxl, "DEFUSEDXML", False)) and defusedxml is not None


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# constants

_IN_CHUNK = 256 * 1024          # compressed bytes read at a time
_OUT_CHUNK = 1 << 20            # decompressed bytes produced at a time
_META_CAP = 32_000_000          # metadata parts loaded whole (content types, workbook, rels, styles)
_SNIFF = 8192

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_WORKBOOK_TYPES = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml",
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
    "application/vnd.ms-excel.template.macroEnabled.main+xml",
}
_XLSB_TYPE = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"
_SAVE_AS = "open it in Excel and save it as Excel Workbook (.xlsx)"
_RESAVE = "open it in Excel (or re-download it) and save it again as .xlsx"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIM_RE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?dimension\b[^>]*?\sref\s*=\s*[\"']([^\"']*)[\"']")
_REF_RE = re.compile(r"^\$?([A-Za-z]{1,3})?\$?([0-9]{1,7})?$")
_ROW_AT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row(?=[\s/>])([^>]*)>")
_ROOT_PREFIX = re.compile(rb"<([A-Za-z_][\w.-]*:)?worksheet\b")
_R_ATTR = re.compile(rb"\sr\s*=\s*[\"']([0-9]{1,9})[\"']")
_CELL_AT = re.compile(rb"<((?:[A-Za-z_][\w.-]*:)?c)(\s[^>]*)?/?>")
_ROW_OR_CELL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|c)[\s/>]")
_CELL_COL = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c\s[^>]*?\br\s*=\s*[\"']\$?([A-Za-z]{1,4})")
# cell references of column AA and beyond: the only ones that can pass a column limit of 26 or more
_WIDE_REF = re.compile(rb"r\s*=\s*[\"']\$?([A-Za-z]{2,4})\$?\d")  # r="AB12", r='AB12', r = "AB12": one pass
_PREFIXED_F = re.compile(rb"<[A-Za-z_][\w.-]*:f[\s/>]")
_ENTITY = re.compile(rb"&(?:#[0-9]{1,8}|#x[0-9A-Fa-f]{1,7}|[A-Za-z][A-Za-z0-9]{0,30});")
_OOXML_ESC = re.compile(rb"_x[0-9A-Fa-f]{4}_")
_RPH = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?rPh\b.*?(?:</(?:[A-Za-z_][\w.-]*:)?rPh\s*>|/>)", re.S)
_T_TEXT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?t(?:\s[^>]*)?>([^<]*)<")
_CONT = bytes(range(0x80, 0xC0))
_ATTRS = re.compile(rb"([\w:.-]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_NUMFMT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?numFmt\b((?:\s+[\w:.-]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*)\s*/?>")
_CELLXFS = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?cellXfs\b(.*?)</(?:[A-Za-z_][\w.-]*:)?cellXfs\s*>", re.S)
_XF_FMT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?xf\b[^>]*?\snumFmtId\s*=\s*[\"']([0-9]+)[\"']")


class _Refused(Exception):
    """Internal: what is wrong and what to do (the file name is added by check_workbook)."""

    def __init__(self, what: str, todo: str) -> None:
        super().__init__(what)
        self.what = what
        self.todo = todo


def _clean(text: str, limit: int = 80) -> str:
    text = _CONTROL.sub("?", str(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _mb(n: int) -> str:
    return f"{n / 1_000_000:,.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def _col_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n


def _parse_ref(ref: str) -> tuple[int, int] | None:
    """Bottom row and right-most column of a dimension ref such as ``A1:AD47001`` (None if invalid)."""
    ref = ref.strip()
    if not ref:
        return None
    rows, cols = 0, 0
    for part in ref.split(":"):
        m = _REF_RE.match(part.strip())
        if not m or not (m.group(1) or m.group(2)):
            return None
        if m.group(1):
            cols = max(cols, _col_number(m.group(1)))
        if m.group(2):
            rows = max(rows, int(m.group(2)))
    return rows, cols


def _text_chars(b: bytes) -> int:
    """Characters of XML character data: code points, an entity or ``_xHHHH_`` escape counting as one."""
    n = len(b.translate(None, _CONT))  # UTF-8 continuation bytes are not characters
    for m in _ENTITY.finditer(b):
        n -= len(m.group()) - 1
    for m in _OOXML_ESC.finditer(b):
        n -= len(m.group()) - 1
    return n


def _localname(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --------------------------------------------------------------------------------------------
# sniffing what a non-zip file is

def _looks_like_text(head: bytes) -> str | None:
    """The head decoded as text when it plausibly is text, else None."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                     (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):].decode(enc, "replace")
    if len(head) >= 4 and head[1:4:2] == b"\x00\x00" and head[0] and head[2]:
        return head.decode("utf-16-le", "replace")
    if len(head) >= 4 and head[0:4:2] == b"\x00\x00" and head[1] and head[3]:
        return head.decode("utf-16-be", "replace")
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # a character cut at the end of the sniffed bytes
            text = head[: exc.start].decode("utf-8")
        else:
            text = head.decode("cp1252", "replace")
    bad = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\r\n\f") or ch == "\ufffd")
    return text if bad <= max(1, len(text) // 100) else None


def _what_is_it(head: bytes, suffix: str) -> tuple[str, str]:
    named = f" named {suffix}" if suffix else ""
    if head.startswith(_OLE2):
        return ("is a password-protected workbook or legacy .xls file (an OLE2 container), not an .xlsx",
                "open it in Excel and save it as .xlsx without a password")
    if head.startswith(b"%PDF"):
        return (f"is a PDF document{named}, not a workbook",
                "copy the data into the extraction form (start from `curate template`) and save it as .xlsx")
    if head.startswith(b"\x1f\x8b") or head.startswith(b"7z\xbc\xaf\x27\x1c") or head.startswith(b"Rar!"):
        return (f"is a compressed archive (gzip/7z/rar){named}, not a workbook",
                "extract the form from it and give the .xlsx file")
    if head.startswith(b"PK\x05\x06"):
        return ("is an empty zip archive, not a workbook", "save the form again as .xlsx")
    if head.startswith(b"PK"):
        return ("is a damaged or unusual zip archive (it does not start with a zip member)", _RESAVE)
    if head.startswith(b"{\\rtf"):
        return (f"is an RTF document{named}, not a workbook", _SAVE_AS)
    text = _looks_like_text(head)
    if text is None:
        sig = " ".join(f"{b:02X}" for b in head[:4])
        return (f"is not a workbook (unrecognised binary content starting {sig})",
                "give the .xlsx form; " + _SAVE_AS)
    low = text.lstrip().lower()
    if low.startswith("<!doctype html") or low.startswith("<html") or re.search(r"<(html|body|table)[\s>]", low[:4096]):
        return (f"is an HTML file{named} (e.g. a web page or a report exported as HTML), not a workbook",
                _SAVE_AS)
    if low.startswith("<?xml") or low.startswith("<"):
        if "urn:schemas-microsoft-com:office:spreadsheet" in low:
            return (f"is an Excel 2003 XML spreadsheet{named}, not an .xlsx workbook", _SAVE_AS)
        return (f"is an XML text file{named}, not a workbook", _SAVE_AS)
    if not low.strip():
        return ("holds only blank text, not a workbook", "save the form again as .xlsx")
    lines = [ln for ln in low.splitlines()[:20] if ln.strip()]
    delim = next((d for d in ("\t", ";", ",", "|") if lines and sum(d in ln for ln in lines) >= max(1, len(lines) // 2)),
                 None)
    kind = {"\t": "TSV", None: "plain text"}.get(delim, "CSV")
    return (f"is a CSV/text file ({kind}){named}, not a workbook",
            "give it the name .csv (.tsv for tab-separated) to have it read as one table, or save it as .xlsx")


# --------------------------------------------------------------------------------------------
# streaming scanners

class _Prolog:
    """Refuses a DTD (``<!DOCTYPE``/``<!ENTITY``) before an XML part's root element.

    A DTD may only appear in the prolog, so the scan stops at the root element: the cost is a few
    bytes per part, however long a comment placed in front of the DTD to push it out of a fixed window.
    """

    def __init__(self) -> None:
        self.done = False
        self.buf = b""
        self.state = "ws"  # ws | pi | comment

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        buf = self.buf + data if self.buf else data
        pos = 0
        n = len(buf)
        while pos < n:
            if self.state == "pi":
                e = buf.find(b"?>", pos)
                if e == -1:
                    self.buf = buf[-1:]
                    return
                pos, self.state = e + 2, "ws"
            elif self.state == "comment":
                e = buf.find(b"-->", pos)
                if e == -1:
                    self.buf = buf[-2:]
                    return
                pos, self.state = e + 3, "ws"
            else:
                while pos < n and buf[pos] in b" \t\r\n":
                    pos += 1
                if pos >= n:
                    break
                if buf[pos] != 0x3C:  # '<': text before the root is malformed; the parser will say so
                    self.done = True
                    return
                if n - pos < 4:
                    self.buf = buf[pos:]
                    return
                if buf.startswith(b"<?", pos):
                    pos, self.state = pos + 2, "pi"
                elif buf.startswith(b"<!--", pos):
                    pos, self.state = pos + 4, "comment"
                elif buf.startswith(b"<!", pos):
                    raise _Refused("workbook contains XML entity declarations (a <!DOCTYPE>/<!ENTITY> in {part}), "
                                   "which forms never need; refused for safety",
                                   "open it in Excel and save it again as .xlsx, or use the original form")
                else:
                    self.done = True
                    return
        self.buf = b""


class _SpanScanner:
    """Finds spans between delimiters longer than a limit, in streamed data, at C speed.

    The data between two occurrences of ``delim`` is a *span*; ``measure(span)`` gives its length in
    characters (at most its length in bytes). Spans no longer than ``limit`` bytes are never measured.
    Inside a piece, every span longer than ``limit`` bytes holds an aligned block of ``limit // 2``
    bytes without the delimiter, so one ``bytes.find`` per block finds all candidates.
    """

    def __init__(self, delim: bytes, limit: int, max_span: int, measure) -> None:
        self.delim = delim
        self.k = len(delim) - 1
        self.limit = limit
        self.block = max(1, limit // 2)
        self.max_span = max_span
        self.measure = measure
        self.open: list[bytes] = []
        self.open_len = 0
        self.hold = b""
        self.worst = 0  # the longest span measured (characters)

    def _check(self, span: bytes) -> None:
        if len(span) > self.limit:
            chars = self.measure(span)
            self.worst = max(self.worst, chars)
            if chars > self.limit:
                raise _Refused(f"holds a cell of {chars:,} characters in {{part}}, more than Excel's limit "
                               f"of {self.limit:,}", "shorten that cell (or check that the file is not damaged) "
                               "and save it again")

    def _grow(self, piece: bytes) -> None:
        if piece:
            self.open.append(piece)
            self.open_len += len(piece)
            if self.open_len > self.max_span:
                raise _Refused(f"holds an XML element of more than {_mb(self.max_span)} in {{part}}, "
                               f"far beyond Excel's cell limit of {self.limit:,} characters",
                               "the file is damaged or not a real form; " + _RESAVE)

    def feed(self, chunk: bytes) -> None:
        data = self.hold + chunk if self.hold else chunk
        self.hold = b""
        d, dl = self.delim, len(self.delim)
        first = data.find(d)
        if first == -1:
            self._keep(data)
            return
        if self.open_len + first > self.limit:
            self._check(b"".join(self.open) + data[:first])
        self.open, self.open_len = [], 0
        last = data.rfind(d)
        s, B = first + dl, self.block
        while s < last:
            e = min(s + B, last)
            if data.find(d, s, e) == -1:
                a = data.rfind(d, 0, s + dl - 1)
                a = first + dl if a == -1 else a + dl
                b = data.find(d, s)
                self._check(data[a:b])
                s = b + dl
            else:
                s = e
        self._keep(data[last + dl:])

    def _keep(self, tail: bytes) -> None:
        """Add ``tail`` to the open span, holding back what could be the start of a delimiter."""
        cut = len(tail) - self.k
        if cut <= 0:
            self.hold = tail
        else:
            self._grow(tail[:cut])
            self.hold = tail[cut:]

    def close(self) -> None:
        self._grow(self.hold)
        self.hold = b""
        self._check(b"".join(self.open))
        self.open, self.open_len = [], 0


def _measure_sheet_run(span: bytes) -> int:
    """Text after the tag in a ``<tag ...>text`` span (the piece between two ``<``)."""
    gt = span.find(b">")
    return 0 if gt == -1 else _text_chars(span[gt + 1:])


def _measure_shared_string(span: bytes) -> int:
    """Text of one ``<si>`` (all its runs, phonetic runs excluded)."""
    span = _RPH.sub(b"", span)
    return sum(_text_chars(m.group(1)) for m in _T_TEXT.finditer(span))


_HIDDEN_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(row|col)\b([^>]*)>")
_HIDDEN_ON = re.compile(rb"\shidden\s*=\s*[\"'](?:1|true)[\"']")
_COL_MIN = re.compile(rb"\smin\s*=\s*[\"'](\d{1,5})[\"']")
_COL_MAX = re.compile(rb"\smax\s*=\s*[\"'](\d{1,5})[\"']")


class _SheetScan:
    """Formulas, rows found and long text runs of one worksheet part, streamed."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.first = True
        self.dimension: str | None = None
        self.declared: tuple[int, int] | None = None
        self.has_formulas = False
        self.max_row = 0
        self.counted_rows = 0
        self.count_rows = False
        self.max_col = 0
        self.scan_cols = False
        self.count_cells = False
        self.cells_in_row = 0
        self.cell_carry = b""
        self.tail = b""
        self.row_tag = b"<row"
        self.hidden_rows: set[int] = set()
        self.hidden_columns: set[int] = set()
        self.runs = _SpanScanner(b"<", limits.max_cell_chars, limits.max_element_bytes, _measure_sheet_run)

    def feed(self, chunk: bytes) -> None:
        lim = self.limits
        if self.first:
            self.first = False
            sd = chunk.find(b"sheetData")
            head = chunk if sd == -1 else chunk[:sd]
            m = _DIM_RE.search(head)
            if m:
                self.dimension = m.group(1).decode("ascii", "replace")
                self.declared = _parse_ref(self.dimension)
                if self.declared is not None:
                    rows, cols = self.declared
                    if rows <= lim.max_rows and cols > lim.max_columns and rows * cols <= lim.max_cells:
                        # a declared width past the limit over few rows (LibreOffice declares A1:AMJ69, 1,024
                        # columns, for eleven used): not trusted; the cells found decide, as without one
                        self.declared = None
                    elif rows > lim.max_rows or cols > lim.max_columns:
                        raise _Refused(
                            f"sheet {{sheet}} declares a size of {_clean(self.dimension, 40)} ({rows:,} rows x {cols:,} "
                            f"columns), above the limit of {lim.max_rows:,} rows and {lim.max_columns:,} columns",
                            "delete the unused rows and columns below and right of the data (or copy the data "
                            "into a fresh form) and save it again")
            if self.declared is None:
                self.scan_cols = True
            root = _ROOT_PREFIX.search(chunk)
            if root and root.group(1):
                self.row_tag = b"<" + root.group(1) + b"row"
            r = _ROW_AT.search(chunk)
            if r and not _R_ATTR.search(r.group(1)):
                self.count_rows = True  # rows without r="..." are numbered by position
            c = _CELL_AT.search(chunk)
            if c and not re.search(rb"\sr\s*=", c.group(2) or b""):
                self.count_cells = True  # cells without r="..." are placed by position: count them per row
        data = self.tail + chunk
        self.tail = chunk[-256:]
        if b"hidden" in data:  # hidden rows (<row r="7" hidden="1">) and columns (<col min max hidden>)
            for m in _HIDDEN_TAG.finditer(data):
                attrs = m.group(2)
                if not _HIDDEN_ON.search(attrs):
                    continue
                if m.group(1) == b"row":
                    ra = _R_ATTR.search(attrs)
                    if ra:
                        self.hidden_rows.add(int(ra.group(1)))
                else:
                    lo, hi = _COL_MIN.search(attrs), _COL_MAX.search(attrs)
                    if lo and hi and int(hi.group(1)) - int(lo.group(1)) < 16384:
                        self.hidden_columns.update(range(int(lo.group(1)), int(hi.group(1)) + 1))
        # formulas: 'f' is rare in sheet XML outside <f>, so look at each one; fall back to substring search
        if not self.has_formulas:
            pos, seen = data.find(b"f"), 0
            while pos != -1 and seen < 64:
                if pos and data[pos - 1] in b"<:" and data[pos + 1:pos + 2] in (b">", b" ", b"/", b"\t", b"\r", b"\n"):
                    if data[pos - 1] == 0x3C or _PREFIXED_F.search(data, max(0, pos - 40), pos + 2):
                        self.has_formulas = True
                        break
                pos, seen = data.find(b"f", pos + 1), seen + 1
            else:
                if pos != -1 and (b"<f>" in data or b"<f " in data or b"<f/" in data
                                  or ((b":f>" in data or b":f " in data) and _PREFIXED_F.search(data))):
                    self.has_formulas = True
        # rows: the last <row> of each piece carries the highest row number so far
        j = len(data)
        for _ in range(8):  # skip <rowBreaks> and the like
            i = data.rfind(self.row_tag, 0, j)
            if i == -1:
                break
            m = _ROW_AT.match(data, i)
            if m:
                ra = _R_ATTR.search(m.group(1))
                if ra:
                    self.max_row = max(self.max_row, int(ra.group(1)))
                break
            j = i
        if self.count_rows:
            self.counted_rows += chunk.count(self.row_tag)
        if self.count_cells:
            buf = self.cell_carry + chunk
            cut = max(0, len(buf) - 64)  # a tag cut by the chunk boundary is read with the next chunk
            for m in _ROW_OR_CELL.finditer(buf, 0, cut):
                if m.group(1) == b"row":
                    self.cells_in_row = 0
                else:
                    self.cells_in_row += 1
                    self.max_col = max(self.max_col, self.cells_in_row)
            last = buf.rfind(b"<", 0, cut)
            self.cell_carry = buf[cut:] if last == -1 or buf.find(b">", last, cut) != -1 else buf[last:]
        if self.scan_cols:
            # columns A-Z never pass a limit of 26 or more: look only at references of two letters or more
            if lim.max_columns >= 26:
                found = _WIDE_REF.findall(chunk)
            else:
                found = _CELL_COL.findall(chunk)
            for letters in set(found):
                self.max_col = max(self.max_col, _col_number(letters.decode("ascii")))
        rows = max(self.max_row, self.counted_rows)
        if rows > lim.max_rows:
            raise _Refused(f"sheet {{sheet}} has rows beyond row {lim.max_rows:,} (row {rows:,} found), above the "
                           f"limit of {lim.max_rows:,} rows", "delete the unused rows or split the data, and save it again")
        if self.max_col > lim.max_columns:
            raise _Refused(f"sheet {{sheet}} has cells in column {self.max_col:,}, above the limit of "
                           f"{lim.max_columns:,} columns", "delete the unused columns, and save it again")
        self.runs.feed(chunk)

    def close(self) -> None:
        self.runs.close()
        if self.count_cells:  # the cells held back at the end of the last piece
            for m in _ROW_OR_CELL.finditer(self.cell_carry):
                self.cells_in_row = 0 if m.group(1) == b"row" else self.cells_in_row + 1
                self.max_col = max(self.max_col, self.cells_in_row)
            if self.max_col > self.limits.max_columns:
                raise _Refused(f"sheet {{sheet}} has cells in column {self.max_col:,}, above the limit of "
                               f"{self.limits.max_columns:,} columns", "delete the unused columns, and save it again")

    @property
    def size(self) -> tuple[int, int | None]:
        """Bottom row and right-most column: declared, or found when the sheet declares none (or when
        cells without addresses run past the declared dimension)."""
        rows = max(self.max_row, self.counted_rows)
        if self.declared is not None:
            return max(self.declared[0], rows), max(self.declared[1], self.max_col)
        return rows, (self.max_col or None)


# --------------------------------------------------------------------------------------------
# the zip

class _Zip:
    def __init__(self, fh, zf: zipfile.ZipFile, limits: Limits) -> None:
        self.fh = fh
        self.zf = zf
        self.limits = limits
        self.infos = zf.infolist()
        self.by_name = {i.filename: i for i in self.infos}
        start_dir = getattr(zf, "start_dir", None)
        self.offsets = sorted(i.header_offset for i in self.infos)
        self.end = start_dir if isinstance(start_dir, int) else os.fstat(fh.fileno()).st_size

    def _next_offset(self, offset: int) -> int:
        j = bisect.bisect_right(self.offsets, offset)
        return self.offsets[j] if j < len(self.offsets) else self.end

    def chunks(self, info: zipfile.ZipInfo) -> Iterator[bytes]:
        """The member's bytes, decompressed in pieces, never more than its declared size."""
        name = _clean(info.filename)
        fh = self.fh
        fh.seek(info.header_offset)
        h = fh.read(30)
        if len(h) < 30 or h[:4] != b"PK\x03\x04":
            raise _Refused(f"is damaged: the zip entry of {name} points to no member", _RESAVE)
        nlen, elen = struct.unpack("<HH", h[26:30])
        lname = fh.read(nlen)
        enc = "utf-8" if info.flag_bits & 0x800 else "cp437"
        if lname.decode(enc, "replace") != info.orig_filename:
            raise _Refused(f"is damaged or tampered with: the zip headers of {name} disagree", _RESAVE)
        start = info.header_offset + 30 + nlen + elen
        if start + info.compress_size > self._next_offset(info.header_offset):
            raise _Refused("has overlapping zip members (a zip-bomb construction, or a damaged file)", _RESAVE)
        fh.seek(start)
        remaining = info.compress_size
        declared = info.file_size
        if info.compress_type == zipfile.ZIP_STORED:
            if remaining != declared:
                raise _Refused(f"is damaged: the sizes of {name} disagree", _RESAVE)
            while remaining:
                raw = fh.read(min(_OUT_CHUNK, remaining))
                if not raw:
                    raise _Refused(f"is truncated: {name} ends early", _RESAVE)
                remaining -= len(raw)
                yield raw
            return
        d = zlib.decompressobj(-15)
        produced = 0
        pending = b""
        try:
            while True:
                if not pending:
                    if remaining <= 0:
                        break
                    pending = fh.read(min(_IN_CHUNK, remaining))
                    if not pending:
                        raise _Refused(f"is truncated: {name} ends early", _RESAVE)
                    remaining -= len(pending)
                out = d.decompress(pending, min(_OUT_CHUNK, declared - produced + 1))
                pending = d.unconsumed_tail
                if out:
                    produced += len(out)
                    if produced > declared:
                        raise _Refused(
                            f"is a decompression bomb or damaged: {name} expands beyond the {_mb(declared)} its zip "
                            "header declares (the header lies about the size)",
                            "do not open it; ask for the original form")
                    yield out
                if d.eof:
                    break
        except zlib.error as exc:
            raise _Refused(f"is damaged: {name} cannot be decompressed ({_clean(str(exc), 60)})", _RESAVE) from None
        if not d.eof or produced != declared:
            raise _Refused(f"is damaged: {name} holds {_mb(produced)} where its header declares {_mb(declared)}",
                           _RESAVE)

    def read(self, info: zipfile.ZipInfo, prolog: bool = True) -> bytes:
        """A small part, whole (DTD-checked)."""
        if info.file_size > _META_CAP:
            raise _Refused(f"has a {_mb(info.file_size)} {_clean(info.filename)}, far larger than a real "
                           "workbook's", _RESAVE)
        p = _Prolog()
        out = []
        for c in self.chunks(info):
            if prolog:
                self._prolog(p, c, info)
            out.append(c)
        return b"".join(out)

    @staticmethod
    def _prolog(p: _Prolog, chunk: bytes, info: zipfile.ZipInfo) -> None:
        try:
            p.feed(chunk)
        except _Refused as r:
            raise _Refused(r.what.replace("{part}", _clean(info.filename)), r.todo) from None


def _transcoder(first: bytes):
    """An incremental UTF-16 -> UTF-8 converter when an XML part is UTF-16 (Excel never writes one)."""
    if first.startswith(codecs.BOM_UTF16_LE) or first.startswith(b"<\x00?\x00") or first.startswith(b"<\x00!\x00"):
        dec = codecs.getincrementaldecoder("utf-16-le")("replace")
    elif first.startswith(codecs.BOM_UTF16_BE) or first.startswith(b"\x00<\x00?") or first.startswith(b"\x00<\x00!"):
        dec = codecs.getincrementaldecoder("utf-16-be")("replace")
    else:
        return None
    return lambda b: dec.decode(b).encode("utf-8")


def _xml_chunks(z: _Zip, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A member's pieces as UTF-8, DTD-checked."""
    p = _Prolog()
    conv = None
    first = True
    for c in z.chunks(info):
        if conv is not None:
            c = conv(c)
        if first:
            first = False
            conv = _transcoder(c)
            if conv is not None:
                c = conv(c)
            if c.startswith(codecs.BOM_UTF8):
                c = c[3:]
        z._prolog(p, c, info)
        yield c


def _parse_xml(data: bytes, part: str):
    try:
        return DET.fromstring(data, forbid_dtd=True)
    except (DET.DTDForbidden, DET.EntitiesForbidden, DET.ExternalReferenceForbidden):
        raise _Refused(f"workbook contains XML entity declarations (in {_clean(part)}), which forms never need; "
                       "refused for safety", "open it in Excel and save it again as .xlsx") from None
    except (DET.ParseError, ValueError, UnicodeError, LookupError) as exc:
        raise _Refused(f"is damaged: {_clean(part)} is not well-formed XML ({_clean(str(exc), 60)})", _RESAVE) from None


def _resolve(base_part: str, target: str) -> str:
    target = target.replace("\\", "/")
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_part), target))


def _rels_path(part: str) -> str:
    return posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")


def _percent_code(code: str) -> bool:
    code = re.sub(r'"[^"]*"', "", code)
    code = re.sub(r"\\.", "", code)
    code = re.sub(r"\[[^\]]*\]", "", code)
    return "%" in code


def _has_percent_formats(styles: bytes) -> bool:
    percent_ids = {9, 10}
    for m in _NUMFMT.finditer(styles):
        attrs = {k.decode(): (v1 or v2) for k, v1, v2 in _ATTRS.findall(m.group(1))}
        code = attrs.get("formatCode", b"").decode("utf-8", "replace")
        code = code.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
        if _percent_code(code):
            try:
                percent_ids.add(int(attrs.get("numFmtId", b"-1")))
            except ValueError:
                pass
    for block in _CELLXFS.finditer(styles):
        if any(int(x) in percent_ids for x in _XF_FMT.findall(block.group(1))):
            return True
    return False


def _classify_zip(z: _Zip, names: set[str], suffix: str) -> tuple[str, str]:
    named = f" named {suffix}" if suffix else ""
    info = z.by_name.get("mimetype")
    if info is not None and info.file_size <= 200 and not info.flag_bits & 0x1 and info.compress_type in (0, 8):
        try:
            mt = b"".join(z.chunks(info))
        except _Refused:
            mt = b""
        if mt.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
            return (f"is an OpenDocument spreadsheet (.ods){named}, not an .xlsx workbook",
                    "open it in LibreOffice Calc or Excel and save it as .xlsx")
        if mt.startswith(b"application/vnd.oasis.opendocument"):
            return (f"is an OpenDocument file{named} ({_clean(mt.decode('ascii', 'replace'), 60)}), not a workbook",
                    "give the .xlsx form")
    if "word/document.xml" in names:
        return (f"is a Word document (.docx){named}, not a workbook", "copy the table into the form and save as .xlsx")
    if "ppt/presentation.xml" in names:
        return (f"is a PowerPoint file (.pptx){named}, not a workbook", "give the .xlsx form")
    if "xl/workbook.bin" in names:
        return ("is an Excel binary workbook (.xlsb), not an .xlsx", _SAVE_AS)
    if any(n.startswith("Index/") and n.endswith(".iwa") for n in names):
        return (f"is an Apple Numbers file{named}, not a workbook", "export it from Numbers to Excel (.xlsx)")
    if "xl/workbook.xml" in names:
        return ("is not a complete workbook: [Content_Types].xml is missing", _RESAVE)
    return ("is a zip archive but not an Excel workbook (no [Content_Types].xml / xl/workbook.xml)",
            "if the form is inside it, unzip it first; otherwise save the form as .xlsx")


# --------------------------------------------------------------------------------------------

def check_workbook(path: str | os.PathLike, limits: Limits = Limits(), *, data: bytes | None = None) -> WorkbookInfo:
    """Check that ``path`` is a plain ``.xlsx`` workbook that is safe to parse.

    Parameters
    ----------
    path : str or PathLike
        The form. It is only read.
    limits : Limits
        Sizes allowed.
    data : bytes, optional
        The form's bytes, already read (a snapshot): then these are checked and ``path`` only
        names the form.

    Returns
    -------
    WorkbookInfo
        Sheet names and declared dimensions, whether any sheet holds a formula, whether any cell
        style is a percent format, the total uncompressed size.

    Raises
    ------
    UnusableInputError
        One line ``"<file>: <what is wrong>: <what to do>"``.
    """
    name = _clean(os.fspath(path), 200)
    try:
        if data is not None:
            return _check_bytes(Path(path), data, limits)
        return _check(Path(path), limits)
    except _Refused as r:
        raise UnusableInputError(f"{name}: {r.what}: {r.todo}") from None


def _check(p: Path, limits: Limits) -> WorkbookInfo:
    suffix = p.suffix.lower()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise _Refused("file not found", "check the path and the file name") from None
    except PermissionError:
        raise _Refused("cannot be read (permission denied)", "check the file's permissions") from None
    except (OSError, ValueError) as exc:
        raise _Refused(f"cannot be read ({_clean(exc, 80)})", "check the path") from None
    if stat.S_ISDIR(st.st_mode):
        raise _Refused("is a folder, not a workbook", "give the path of the .xlsx file")
    if not stat.S_ISREG(st.st_mode):
        raise _Refused("is not a regular file (a device, pipe or socket)", "give the path of a saved .xlsx file")
    if st.st_size == 0:
        raise _Refused("is empty (0 bytes)", "the save or download did not complete; save the form again as .xlsx")
    try:
        fh = open(p, "rb")
    except PermissionError:
        raise _Refused("cannot be read (permission denied)",
                       "check the file's permissions, or copy it somewhere you can read it") from None
    except OSError as exc:
        raise _Refused(f"cannot be read ({_clean(exc.strerror or exc, 80)})",
                       "close it in other programs or copy it, and try again") from None
    with fh:
        try:
            head = fh.read(_SNIFF)
            if not head.startswith(b"PK\x03\x04"):
                raise _Refused(*_what_is_it(head, suffix))
            return _check_zip(p, fh, limits, suffix)
        except _Refused:
            raise
        except OSError as exc:
            raise _Refused(f"cannot be read (I/O error: {_clean(exc.strerror or exc, 60)})",
                           "copy the file to a local disk and try again") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, struct.error, ValueError, OverflowError,
                NotImplementedError, UnicodeError, KeyError, IndexError, RuntimeError) as exc:
            raise _Refused(f"is damaged or not a valid zip ({_clean(exc, 80)})", _RESAVE) from None


def _check_bytes(p: Path, data: bytes, limits: Limits) -> WorkbookInfo:
    """:func:`_check` on a snapshot of the file's bytes."""
    if len(data) == 0:
        raise _Refused("is empty (0 bytes)", "the save or download did not complete; save the form again as .xlsx")
    head = data[:_SNIFF]
    if not head.startswith(b"PK\x03\x04"):
        raise _Refused(*_what_is_it(head, p.suffix.lower()))
    try:
        return _check_zip(p, io.BytesIO(data), limits, p.suffix.lower())
    except _Refused:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, struct.error, ValueError, OverflowError,
            NotImplementedError, UnicodeError, KeyError, IndexError, RuntimeError) as exc:
        raise _Refused(f"is damaged or not a valid zip ({_clean(exc, 80)})", _RESAVE) from None


def _eocd_entries(fh) -> int | None:
    """The member count the end-of-central-directory record declares (None if not found)."""
    endrec = getattr(zipfile, "_EndRecData", None)
    if endrec is None:  # pragma: no cover - private API moved
        return None
    rec = endrec(fh)
    if not rec:
        return None
    return int(rec[4])  # _ECD_ENTRIES_TOTAL


def _check_zip(p: Path, fh, limits: Limits, suffix: str) -> WorkbookInfo:
    try:
        declared_members = _eocd_entries(fh)
    except (OSError, struct.error, zipfile.BadZipFile, ValueError):
        declared_members = None
    if declared_members is None:
        raise _Refused("is damaged: it is a truncated or corrupt zip (its central directory is missing)", _RESAVE)
    if declared_members > limits.max_members:
        raise _Refused(f"has {declared_members:,} zip members, more than the {limits.max_members:,} allowed",
                       "this is not a normal form; save the data into a fresh form")
    fh.seek(0)
    try:
        zf = zipfile.ZipFile(fh)
    except zipfile.BadZipFile as exc:
        raise _Refused(f"is damaged: it is a truncated or corrupt zip ({_clean(exc, 60)})", _RESAVE) from None
    z = _Zip(fh, zf, limits)
    infos = z.infos
    if len(infos) > limits.max_members:
        raise _Refused(f"has {len(infos):,} zip members, more than the {limits.max_members:,} allowed",
                       "this is not a normal form; save the data into a fresh form")
    if len(z.by_name) != len(infos):
        raise _Refused("is damaged or tampered with: it has two zip members of the same name", _RESAVE)
    if len(set(z.offsets)) != len(z.offsets):
        raise _Refused("has overlapping zip members (a zip-bomb construction, or a damaged file)", _RESAVE)
    names = set(z.by_name)

    # what kind of zip is it?
    ct_info = z.by_name.get("[Content_Types].xml")
    if ct_info is None:
        raise _Refused(*_classify_zip(z, names, suffix))
    for i in infos:
        if i.flag_bits & 0x41:
            raise _Refused(f"has an encrypted zip member ({_clean(i.filename)})",
                           "open it in Excel and save it as .xlsx without a password")
    for i in infos:
        if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Refused(f"uses zip compression method {i.compress_type} for {_clean(i.filename)}, which Excel "
                           "never writes", _SAVE_AS)

    # sizes, from the central directory, before decompressing anything
    for i in infos:
        if i.file_size >= limits.ratio_check_min_bytes:
            ratio = i.file_size / max(i.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise _Refused(f"is a decompression bomb: {_clean(i.filename)} would expand from "
                               f"{_mb(i.compress_size)} to {_mb(i.file_size)} ({ratio:,.0f}x; real sheets compress "
                               f"10-30x, the limit is {limits.max_compression_ratio:,.0f}x)",
                               "do not open it; ask for the original form")
    total = sum(i.file_size for i in infos)
    if total > limits.max_uncompressed_bytes:
        raise _Refused(f"is too large: it expands to {_mb(total)}, above the limit of "
                       f"{_mb(limits.max_uncompressed_bytes)}",
                       "remove what the form does not need (images, unused sheets) or split it")

    # content types -> the workbook part
    ct = _parse_xml(z.read(ct_info), "[Content_Types].xml")
    wb_part = None
    for el in ct.iter():
        if _localname(el.tag) == "Override":
            ctype = (el.get("ContentType") or "").strip()
            part = (el.get("PartName") or "").lstrip("/")
            if ctype in _WORKBOOK_TYPES and part in names:
                wb_part = part
                break
            if ctype.startswith(_XLSB_TYPE):
                raise _Refused("is an Excel binary workbook (.xlsb), not an .xlsx", _SAVE_AS)
    if wb_part is None and "xl/workbook.xml" in names:
        wb_part = "xl/workbook.xml"
    if wb_part is None:
        raise _Refused(*_classify_zip(z, names, suffix))

    wb = _parse_xml(z.read(z.by_name[wb_part]), wb_part)
    rels: dict[str, tuple[str, str]] = {}
    rels_part = _rels_path(wb_part)
    if rels_part in z.by_name:
        for el in _parse_xml(z.read(z.by_name[rels_part]), rels_part).iter():
            if _localname(el.tag) == "Relationship" and el.get("TargetMode", "Internal") != "External":
                rels[el.get("Id") or ""] = (el.get("Type") or "", _resolve(wb_part, el.get("Target") or ""))
    declared_sheets: list[tuple[str, str | None, str, str]] = []
    for el in wb.iter():
        if _localname(el.tag) != "sheet":
            continue
        rid = next((v for k, v in el.attrib.items() if _localname(k) == "id" and k.startswith("{")), None)
        rtype, target = rels.get(rid or "", ("", None))
        kind = rtype.rsplit("/", 1)[-1] or "worksheet"
        declared_sheets.append((el.get("name") or "", target, kind, el.get("state") or "visible"))
    if not declared_sheets:
        raise _Refused("is a workbook without sheets", _RESAVE)
    if len(declared_sheets) > limits.max_sheets:
        raise _Refused(f"declares {len(declared_sheets):,} sheets, more than the {limits.max_sheets:,} allowed",
                       "this is not a normal form; copy the form's sheets into a fresh workbook")
    if not rels:  # no relationships: fall back to the usual part names, in order
        parts = sorted((n for n in names if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n)),
                       key=lambda n: int(re.search(r"\d+", n.rsplit("/", 1)[1]).group()))
        declared_sheets = [(nm, parts[k] if k < len(parts) else None, kind, state)
                           for k, (nm, _t, kind, state) in enumerate(declared_sheets)]
    for nm, target, kind, _s in declared_sheets:
        if kind == "worksheet" and (target is None or target not in names):
            raise _Refused(f"is damaged: sheet {_clean(nm)!r} has no sheet data in the file", _RESAVE)

    by_type = {t.rsplit("/", 1)[-1]: target for t, target in rels.values()}
    sst_part = by_type.get("sharedStrings") or ("xl/sharedStrings.xml" if "xl/sharedStrings.xml" in names else None)
    styles_part = by_type.get("styles") or ("xl/styles.xml" if "xl/styles.xml" in names else None)

    done = {"[Content_Types].xml", wb_part, rels_part}
    has_percent = False
    if styles_part in z.by_name:
        has_percent = _has_percent_formats(z.read(z.by_name[styles_part]))
        done.add(styles_part)

    if sst_part in z.by_name:
        scan = _SpanScanner(b"</si>", limits.max_cell_chars, limits.max_element_bytes, _measure_shared_string)
        entries = 0
        try:
            for c in _xml_chunks(z, z.by_name[sst_part]):
                scan.feed(c)
                entries += c.count(b"si>")  # <si> and </si> (prefixed or not): twice per entry
                if entries > 2 * limits.max_shared_strings:
                    raise _Refused(f"holds more than {limits.max_shared_strings:,} shared strings in {{part}}",
                                   "this is not a normal form; copy the data into a fresh form")
            scan.close()
        except _Refused as r:
            raise _Refused(r.what.replace("{part}", f"the shared strings ({_clean(sst_part)})"), r.todo) from None
        done.add(sst_part)

    sheets: list[SheetInfo] = []
    for nm, target, kind, state in declared_sheets:
        if kind != "worksheet" or target is None or target in done:
            sheets.append(SheetInfo(nm, target, kind, state))
            continue
        s = _SheetScan(limits)
        try:
            for c in _xml_chunks(z, z.by_name[target]):
                s.feed(c)
            s.close()
        except _Refused as r:
            what = r.what.replace("{sheet}", repr(_clean(nm))).replace("{part}", f"sheet {_clean(nm)!r}")
            raise _Refused(what, r.todo) from None
        rows, cols = s.size
        if rows and cols and rows * cols > limits.max_cells:
            raise _Refused(f"sheet {_clean(nm)!r} spans {rows:,} rows x {cols:,} columns ({rows * cols:,} cells "
                           f"to lay out), above the limit of {limits.max_cells:,}",
                           "delete the unused rows and columns below and right of the data (or copy the data "
                           "into a fresh form) and save it again")
        sheets.append(SheetInfo(nm, target, kind, state, s.dimension, rows, cols, s.has_formulas,
                                frozenset(s.hidden_rows), frozenset(s.hidden_columns)))
        done.add(target)

    # everything else: DTD check and byte cap while streaming (nothing is kept)
    for i in infos:
        if i.filename in done or i.is_dir():
            continue
        for _c in _xml_chunks(z, i):
            pass

    return WorkbookInfo(
        path=os.fspath(p), sheets=tuple(sheets), has_formulas=any(s.has_formulas for s in sheets),
        has_percent_formats=has_percent, uncompressed_bytes=total, members=len(infos))


def limits_for(schema, max_mb: float | None = None) -> Limits:
    """The size limits of a review schema (its ``limits:``), the uncompressed size optionally overridden
    (``--max-mb``)."""
    lim = schema.limits
    mb = lim.max_uncompressed_mb if max_mb is None else max_mb
    return Limits(max_uncompressed_bytes=int(mb * 1_000_000), max_rows=lim.max_rows, max_columns=lim.max_columns,
                  max_cells=lim.max_cells, max_sheets=lim.max_sheets, max_shared_strings=lim.max_shared_strings,
                  max_cell_chars=lim.max_cell_chars)


# --------------------------------------------------------------------------------------------
# the other spreadsheet formats (.ods, .xlsb, .xls) and text tables (.csv, .tsv)

_KIND_NAMES = {"ods": "an OpenDocument spreadsheet (.ods)", "xlsb": "an Excel binary workbook (.xlsb)",
               "xls": "a legacy Excel workbook (.xls)", "text": "a CSV/TSV text file"}


_RENAME = "give the file the name of its real format (.xlsx, .xlsm, .xls, .xlsb, .ods, .csv or .tsv)"


def _detected(data: bytes) -> str:
    """What a file holds, in a few words (for a name that does not match the content)."""
    head = data[:_SNIFF]
    if head.startswith(_OLE2):
        return "an OLE2 container (a legacy .xls or a password-protected workbook)"
    if head.startswith(b"PK\x03\x04"):
        if b"xl/workbook.bin" in data[:1 << 20] or b"xl/workbook.bin" in data[-(1 << 16):]:
            return _KIND_NAMES["xlsb"]
        if head[30:38] == b"mimetype" and b"opendocument.spreadsheet" in head[:200]:
            return _KIND_NAMES["ods"]
        return "a zip archive (an .xlsx workbook, or another zip)"
    return _what_is_it(head, "")[0].removeprefix("is ").split(", not ")[0]


def check_other(path: str | os.PathLike, kind: str, limits: Limits = Limits(), *,
                data: bytes | None = None) -> bytes:
    """Check that a form of another format than ``.xlsx`` is what its name says and safe to parse.

    ``kind`` is ``ods`` or ``xlsb`` (zip containers: every check of :func:`check_workbook` that is not
    specific to the .xlsx parts: member count, duplicate and overlapping members, encryption, the
    compression ratio, the total uncompressed size, every member streamed with a byte cap and the XML
    parts of an .ods checked for DTDs), ``xls`` (an OLE2 container no larger than the uncompressed size
    limit) or ``text`` (a text file no larger than that limit, not binary).

    Returns
    -------
    bytes
        The file's bytes (``data`` when given), read once: the parser reads these.

    Raises
    ------
    UnusableInputError
        One line ``"<file>: <what is wrong>: <what to do>"``.
    """
    p = Path(path)
    name = _clean(os.fspath(path), 200)
    suffix = p.suffix.lower()
    try:
        if data is None:
            try:
                st = p.stat()
            except FileNotFoundError:
                raise _Refused("file not found", "check the path and the file name") from None
            except (OSError, ValueError) as exc:
                raise _Refused(f"cannot be read ({_clean(exc, 80)})", "check the path") from None
            if stat.S_ISDIR(st.st_mode):
                raise _Refused("is a folder, not a form", "give the path of the form's file")
            if not stat.S_ISREG(st.st_mode):
                raise _Refused("is not a regular file (a device, pipe or socket)", "give the path of a saved file")
            if st.st_size > limits.max_uncompressed_bytes:
                raise _Refused(f"is too large ({_mb(st.st_size)}, above the limit of "
                               f"{_mb(limits.max_uncompressed_bytes)})", "split the form or remove what it does not need")
            try:
                data = p.read_bytes()
            except PermissionError:
                raise _Refused("cannot be read (permission denied)", "check the file's permissions") from None
            except OSError as exc:
                raise _Refused(f"cannot be read ({_clean(exc.strerror or exc, 80)})",
                               "close it in other programs or copy it, and try again") from None
        if not data:
            raise _Refused("is empty (0 bytes)", "the save or download did not complete; save the form again")
        if len(data) > limits.max_uncompressed_bytes:
            raise _Refused(f"is too large ({_mb(len(data))}, above the limit of {_mb(limits.max_uncompressed_bytes)})",
                           "split the form or remove what it does not need")
        head = data[:_SNIFF]
        if kind == "text":
            if head.startswith(b"PK\x03\x04") or head.startswith(_OLE2) or _looks_like_text(head) is None:
                raise _Refused(f"is named {suffix} but is {_detected(data)}, not text", _RENAME)
            return data
        if kind == "xls":
            if not head.startswith(_OLE2):
                raise _Refused(f"is named {suffix} but is {_detected(data)}, not a legacy .xls workbook", _RENAME)
            return data
        if not head.startswith(b"PK\x03\x04"):
            raise _Refused(f"is named {suffix} but is {_detected(data)}, not {_KIND_NAMES[kind]}", _RENAME)
        _check_container(io.BytesIO(data), kind, limits, suffix)
        return data
    except _Refused as r:
        raise UnusableInputError(f"{name}: {r.what}: {r.todo}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, struct.error, ValueError, OverflowError,
            NotImplementedError, UnicodeError, KeyError, IndexError, RuntimeError) as exc:
        raise UnusableInputError(f"{name}: is damaged or not a valid zip ({_clean(exc, 80)}): "
                                 "open it and save it again") from None


def _check_container(fh, kind: str, limits: Limits, suffix: str) -> None:
    """Zip-level checks of an .ods or .xlsb (what :func:`_check_zip` checks before the .xlsx parts)."""
    declared_members = _eocd_entries(fh)
    if declared_members is None:
        raise _Refused("is damaged: it is a truncated or corrupt zip (its central directory is missing)",
                       "open it and save it again")
    if declared_members > limits.max_members:
        raise _Refused(f"has {declared_members:,} zip members, more than the {limits.max_members:,} allowed",
                       "this is not a normal form; save the data into a fresh form")
    fh.seek(0)
    z = _Zip(fh, zipfile.ZipFile(fh), limits)
    infos = z.infos
    if len(z.by_name) != len(infos):
        raise _Refused("is damaged or tampered with: it has two zip members of the same name", "save it again")
    if len(set(z.offsets)) != len(z.offsets):
        raise _Refused("has overlapping zip members (a zip-bomb construction, or a damaged file)", "save it again")
    names = set(z.by_name)
    is_ods = False
    mt = z.by_name.get("mimetype")
    if mt is not None and mt.file_size <= 200 and mt.compress_type in (0, 8) and not mt.flag_bits & 0x1:
        is_ods = b"".join(z.chunks(mt)).startswith(b"application/vnd.oasis.opendocument.spreadsheet")
    is_xlsb = "xl/workbook.bin" in names
    if (kind == "ods" and not is_ods) or (kind == "xlsb" and not is_xlsb):
        if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
            raise _Refused(f"is named {suffix} but is an .xlsx workbook", "give it the name .xlsx")
        what, todo = _classify_zip(z, names, "")
        if is_ods or is_xlsb:
            what, todo = f"is named {suffix} but is {_KIND_NAMES['ods' if is_ods else 'xlsb']}", _RENAME
        raise _Refused(what, todo)
    if kind == "ods" and "content.xml" not in names:
        raise _Refused("is not a complete OpenDocument spreadsheet (content.xml is missing)", "save it again")
    for i in infos:
        if i.flag_bits & 0x41:
            raise _Refused(f"has an encrypted zip member ({_clean(i.filename)})", "save it again without a password")
        if i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _Refused(f"uses zip compression method {i.compress_type} for {_clean(i.filename)}, which "
                           "spreadsheet programs never write", "save it again")
        if i.file_size >= limits.ratio_check_min_bytes and i.file_size / max(i.compress_size, 1) > \
                limits.max_compression_ratio:
            raise _Refused(f"is a decompression bomb: {_clean(i.filename)} would expand from {_mb(i.compress_size)} "
                           f"to {_mb(i.file_size)}", "do not open it; ask for the original form")
    total = sum(i.file_size for i in infos)
    if total > limits.max_uncompressed_bytes:
        raise _Refused(f"is too large: it expands to {_mb(total)}, above the limit of "
                       f"{_mb(limits.max_uncompressed_bytes)}",
                       "remove what the form does not need (images, unused sheets) or split it")
    for i in infos:
        if i.is_dir():
            continue
        xml = kind == "ods" and i.filename.endswith(".xml")
        for _c in (_xml_chunks(z, i) if xml else z.chunks(i)):
            pass
