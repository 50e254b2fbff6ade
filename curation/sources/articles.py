"""Articles read into blocks of text with their place: PDF (pypdfium2) and JATS XML (lxml).

An :class:`Article` is a tuple of :class:`Block` s in reading order. A block is a paragraph or a
page's run of text under one heading (PDF), or one paragraph or one table cell (JATS); each keeps
its page, its section heading and the section's kind (``abstract``, ``methods``, ``results``,
``table``, ``introduction``, ``discussion``, ``references`` ...), and a table cell its table label,
caption, row label and column header, which are its context for matching.

PDF pages are read with pypdfium2 (PDFium's text page: text runs with their boxes; see
docs/sources.md for the measurement against pdfplumber). Runs are grouped into lines; a page whose
runs leave an empty vertical gutter near the middle is read as two columns (full-width runs, such as a
title or a table across the page, break the columns). A line whose runs are far apart is split into
cells (tab-separated in the block's text); the lines under a ``Table N`` caption are a table: each
row keeps its first cell as the row label and the table's header line as column headers.

JATS is parsed with ``resolve_entities=False``, ``no_network=True`` and without ``huge_tree``: an
article is untrusted input. Size, page and time limits (:class:`ArticleLimits`) apply to both.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Bump when what the readers produce changes: cached text of another version is read again.
EXTRACTOR_VERSION = "3"

SUFFIXES = {".pdf": "pdf", ".xml": "xml", ".nxml": "xml"}


@dataclass(frozen=True)
class ArticleLimits:
    """What an article file may be at most (an untrusted file beyond them is one ``source-unreadable`` finding)."""

    max_mb: float = 60.0
    max_pages: int = 400
    max_seconds: float = 60.0


@dataclass(frozen=True)
class Block:
    """A piece of an article's text with its place.

    Attributes
    ----------
    text : str
        The article's own text (never normalised; a table row's cells are separated by tabs).
    page : int or None
        1-based PDF page; None for XML.
    section : str or None
        Heading of the section (``Results``; ``Abstract``).
    kind : str
        ``front``, ``abstract``, ``introduction``, ``methods``, ``results``, ``discussion``,
        ``references``, ``back``, ``table`` or ``body``.
    table : str or None
        Table label (``Table 2``), for a table's block.
    caption : str or None
        The table's caption.
    row : str or None
        The row's label (first cell) and, when the row sits under a group row, that group's label before it.
    column : str or None
        The cell's column header (XML; a PDF table row is one block with every cell).
    """

    text: str
    page: int | None
    section: str | None
    kind: str
    table: str | None = None
    caption: str | None = None
    row: str | None = None
    column: str | None = None

    def to_list(self) -> list[Any]:
        return [self.text, self.page, self.section, self.kind, self.table, self.caption, self.row, self.column]


@dataclass(frozen=True)
class Article:
    """An article read into blocks.

    Attributes
    ----------
    file : str
        File name.
    sha256 : str
        Hash of the file's bytes (the cache key).
    format : {"pdf", "xml"}
    blocks : tuple of Block
        In reading order.
    meta : dict
        ``doi``, ``pmid``, ``pmcid``, ``title``, ``first_author``, ``year`` when known, and ``first_page`` (PDF).
    pages : int
        Pages read (PDF).
    problem : str or None
        Why the file could not be read (no text layer, encrypted, broken, too large ...): None when read.
    """

    file: str
    sha256: str
    format: str
    blocks: tuple[Block, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    pages: int = 0
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"version": EXTRACTOR_VERSION, "file": self.file, "sha256": self.sha256, "format": self.format,
                "blocks": [b.to_list() for b in self.blocks], "meta": self.meta, "pages": self.pages,
                "problem": self.problem}

    @classmethod
    def from_dict(cls, d: dict[str, Any], file: str | None = None) -> "Article":
        return cls(file=file or d["file"], sha256=d["sha256"], format=d["format"],
                   blocks=tuple(Block(*b) for b in d["blocks"]), meta=dict(d.get("meta") or {}),
                   pages=int(d.get("pages") or 0), problem=d.get("problem"))


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_article(path: str | Path, *, data: bytes | None = None, limits: ArticleLimits | None = None) -> Article:
    """Read one article file (PDF or JATS XML) into blocks; never raises for a bad file.

    A file that cannot be read gives an :class:`Article` without blocks whose ``problem`` says why
    and what to do.
    """
    limits = limits or ArticleLimits()
    path = Path(path)
    name = path.name
    fmt = SUFFIXES.get(path.suffix.lower())
    if data is None:
        try:
            size = path.stat().st_size
            if size > limits.max_mb * 1e6:
                return Article(name, "", fmt or "?", (), problem=f"the file is {size / 1e6:.0f} MB, over the "
                               f"{limits.max_mb:.0f} MB limit for an article; give the article without supplements")
            data = path.read_bytes()
        except OSError as exc:
            return Article(name, "", fmt or "?", (), problem=f"the file cannot be read ({exc.strerror or exc})")
    digest = file_hash(data)
    if len(data) > limits.max_mb * 1e6:
        return Article(name, digest, fmt or "?", (), problem=f"the file is {len(data) / 1e6:.0f} MB, over the "
                       f"{limits.max_mb:.0f} MB limit for an article")
    if fmt is None:
        fmt = "pdf" if data[:5] == b"%PDF-" else "xml"
    try:
        if fmt == "pdf":
            return read_pdf(name, data, digest, limits)
        return read_jats(name, data, digest, limits)
    except Exception as exc:  # noqa: BLE001 - an untrusted file must never stop the review
        return Article(name, digest, fmt, (), problem=f"the file could not be read ({type(exc).__name__}: "
                       f"{str(exc)[:120]}); export it again as PDF with a text layer or as JATS XML")


# ------------------------------------------------------------------------------------------------
# Sections
# ------------------------------------------------------------------------------------------------

_KINDS = (
    (re.compile(r"^(?:abstract|summary)\b", re.I), "abstract"),
    (re.compile(r"^(?:introduction|intro|background|rationale)\b", re.I), "introduction"),
    (re.compile(r"^(?:(?:materials?|patients|subjects|participants)\s+and\s+methods|methods?(?:\s+and\s+"
                r"(?:materials?|patients))?|methodology|study design"
                r"|design|trial design|statistical (?:analysis|methods))\b", re.I), "methods"),
    (re.compile(r"^(?:results?|findings|outcomes)\b", re.I), "results"),
    (re.compile(r"^(?:discussion|comment|conclusions?|interpretation|limitations|strengths and limitations"
                r"|implications)\b", re.I), "discussion"),
    (re.compile(r"^(?:references?|bibliography|literature cited|notes)\b", re.I), "references"),
    (re.compile(r"^(?:acknowledge?ments?|funding|competing interests?|declarations?|author(?:s'|s)? "
                r"contributions?|abbreviations|conflicts? of interest|additional files?|availability|ethics|"
                r"consent|supplementary|publisher'?s note|open access|supplementary-material)\b", re.I), "back"),
)


def section_kind(title: str | None, default: str = "body") -> str:
    """The kind of a section from its title (``Patients and methods`` -> ``methods``)."""
    if not title:
        return default
    t = re.sub(r"^[\dIVX]+(?:\.\d+)*\.?\s+", "", title.strip())
    for rx, kind in _KINDS:
        if rx.match(t):
            return kind
    return default


# ------------------------------------------------------------------------------------------------
# JATS XML
# ------------------------------------------------------------------------------------------------


def _text(el: Any, skip: tuple[str, ...] = ("table-wrap", "fig", "disp-formula", "table-wrap-foot")) -> str:
    """An element's text without nested floats (tables and figures inside a paragraph are read apart)."""
    parts: list[str] = []

    def walk(e: Any) -> None:
        if e.text:
            parts.append(e.text)
        for child in e:
            tag = child.tag if isinstance(child.tag, str) else ""
            if tag.split("}")[-1] in skip:
                pass
            else:
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(el)
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def _local(el: Any) -> str:
    return el.tag.split("}")[-1] if isinstance(el.tag, str) else ""


def read_jats(name: str, data: bytes, digest: str, limits: ArticleLimits) -> Article:
    """Read a JATS (PubMed Central) article: front matter, abstract, body sections, tables, back matter."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                             dtd_validation=False, recover=False)
    data = _named_entities(data)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        return Article(name, digest, "xml", (), problem=f"the XML is malformed ({str(exc)[:100]}); download the "
                       f"article's XML again (PubMed Central: the 'Article XML' link)")
    if root is None or _local(root) not in ("article", "pmc-articleset", "articles", "book-part-wrapper"):
        tag = _local(root) if root is not None else "nothing"
        return Article(name, digest, "xml", (), problem=f"the XML is not a JATS article (its root is <{tag}>); "
                       f"give the article's JATS XML or its PDF")
    for el in root.iter():  # namespaces: work on local names
        if isinstance(el.tag, str) and "}" in el.tag:
            el.tag = el.tag.split("}")[-1]
    art = root if _local(root) == "article" else root.find(".//article")
    if art is None:
        return Article(name, digest, "xml", (), problem="the XML holds no <article>")
    meta: dict[str, Any] = {}
    am = art.find("./front/article-meta")
    if am is not None:
        for aid in am.findall("article-id"):
            kind = (aid.get("pub-id-type") or "").lower()
            val = (aid.text or "").strip()
            if kind == "doi":
                meta["doi"] = val
            elif kind == "pmid":
                meta["pmid"] = val
            elif kind in ("pmc", "pmcid"):
                meta["pmcid"] = val if val.upper().startswith("PMC") else f"PMC{val}"
        t = am.find("./title-group/article-title")
        if t is not None:
            meta["title"] = _text(t)
        sn = am.find(".//contrib[@contrib-type='author']//surname")
        if sn is None:
            sn = am.find(".//contrib//surname")
        if sn is not None and sn.text:
            meta["first_author"] = sn.text.strip()
        for pd in am.findall("pub-date"):
            y = pd.find("year")
            if y is not None and (y.text or "").strip().isdigit():
                meta.setdefault("year", int(y.text.strip()))
    blocks: list[Block] = []
    started = time.monotonic()
    if am is not None:
        if meta.get("title"):
            blocks.append(Block(meta["title"], None, "Title", "front"))
        for ab in am.findall("abstract"):
            if (ab.get("abstract-type") or "") in ("toc", "graphical", "teaser"):
                continue
            _jats_section(ab, "Abstract", "abstract", blocks, sub_kinds=False)
    body = art.find("body")
    if body is not None:
        _jats_section(body, None, "body", blocks, sub_kinds=True)
    back = art.find("back")
    if back is not None:
        _jats_section(back, "Back matter", "back", blocks, sub_kinds=True)
    floats = art.find("floats-group")
    if floats is not None:
        for tw in floats.iter("table-wrap"):
            blocks.extend(_jats_table(tw, "Tables"))
    if time.monotonic() - started > limits.max_seconds:
        return Article(name, digest, "xml", (), meta, problem=f"reading took over {limits.max_seconds:.0f} s")
    return Article(name, digest, "xml", tuple(blocks), meta)


def _jats_section(el: Any, title: str | None, kind: str, out: list[Block], *, sub_kinds: bool) -> None:
    for child in el:
        tag = _local(child)
        if tag == "sec":
            t = child.find("title")
            st = _text(t) if t is not None else None
            sec_type = (child.get("sec-type") or "").replace("|", " ")
            k = kind
            if sub_kinds:
                guess = section_kind(st) if st else section_kind(sec_type, default="")
                if guess == "body" or not guess:
                    guess = section_kind(sec_type, default="") or kind
                k = guess if kind in ("body", "back") or guess in ("discussion", "references") else kind
                if kind not in ("body", "back") and guess not in ("discussion", "references"):
                    k = kind
            elif kind == "abstract" and st and section_kind(st) == "introduction":
                k = "introduction"  # an abstract's Background may quote other trials' figures
            name = st if title is None else (f"{title} / {st}" if st else title)
            _jats_section(child, name, k, out, sub_kinds=sub_kinds)
        elif tag == "p":
            text = _text(child)
            if text:
                k = kind
                if kind == "abstract" and re.match(r"(?:background|introduction|context)\s*:", text, re.I):
                    k = "introduction"  # an unstructured abstract's inline 'Background:'
                out.append(Block(text, None, title, k))
            for tw in child.iter("table-wrap"):
                out.extend(_jats_table(tw, title))
        elif tag == "table-wrap":
            out.extend(_jats_table(child, title))
        elif tag == "table-wrap-group":
            for tw in child.iter("table-wrap"):
                out.extend(_jats_table(tw, title))
        elif tag == "ref-list":
            for ref in child.iter("ref"):
                text = _text(ref)
                if text:
                    out.append(Block(text, None, "References", "references"))
        elif tag in ("list", "disp-quote", "boxed-text", "statement", "def-list"):
            for p in child.iter("p"):
                text = _text(p)
                if text:
                    out.append(Block(text, None, title, kind))
        elif tag in ("fn-group", "glossary", "app-group", "ack", "notes", "app"):
            sub = "back" if tag != "app" else "back"
            for p in child.iter("p"):
                text = _text(p)
                if text:
                    out.append(Block(text, None, title or tag, sub))
            for tw in child.iter("table-wrap"):
                out.extend(_jats_table(tw, title or tag))


def _named_entities(data: bytes) -> bytes:
    """HTML named characters (``&ndash;``, ``&middot;``), which publishers' XML uses without its DTD, as
    numeric references: one character each, so nothing expands; the XML's own five are left alone."""
    from html.entities import name2codepoint

    if b"&" not in data:
        return data

    def one(m: "re.Match[bytes]") -> bytes:
        name = m.group(1).decode("ascii")
        if name in ("amp", "lt", "gt", "quot", "apos") or name not in name2codepoint:
            return m.group(0)
        return b"&#%d;" % name2codepoint[name]

    return re.sub(rb"&([A-Za-z][A-Za-z0-9]{1,31});", one, data)


def _cells_of_row(tr: Any) -> list[tuple[str, int]]:
    out = []
    for c in tr:
        if _local(c) in ("td", "th"):
            try:
                span = max(1, min(int(c.get("colspan") or 1), 50))
            except ValueError:
                span = 1
            out.append((_text(c), span))
    return out


def _jats_table(tw: Any, section: str | None) -> list[Block]:
    label_el = tw.find("label")
    label = _text(label_el) if label_el is not None else None
    cap_el = tw.find("caption")
    caption = _text(cap_el) if cap_el is not None else None
    label = label or (caption.split(".")[0][:40] if caption else "Table")
    out: list[Block] = []
    for table in tw.iter("table"):
        header_rows: list[list[str]] = []
        rows = []
        for tr in table.iter("tr"):
            parent = tr.getparent()
            in_head = parent is not None and _local(parent) == "thead"
            cells = _cells_of_row(tr)
            expanded: list[str] = []
            for text, span in cells:  # a header spans its columns; a body cell is read once
                expanded.extend([text] * span if in_head else [text] + [""] * (span - 1))
            if in_head:
                header_rows.append(expanded)
            else:
                rows.append(expanded)
        if not header_rows and rows:  # no thead: the first row is the header when it holds no number
            if not any(re.search(r"\d", c) for c in rows[0][1:]):
                header_rows.append(rows.pop(0))
        width = max([len(r) for r in header_rows + rows] or [0])
        headers = []
        for j in range(width):
            parts = []
            for hr in header_rows:
                if j < len(hr) and hr[j] and hr[j] not in parts:
                    parts.append(hr[j])
            headers.append(" / ".join(parts) or None)
        group: str | None = None
        for r in rows:
            if not r:
                continue
            label_cell = r[0]
            rest = [c for c in r[1:] if c and c != label_cell]  # a label spanning the row is a group row
            if label_cell and not rest:  # a group row ("Progression-free survival") over its sub-rows
                group = label_cell
                out.append(Block(label_cell, None, section, "table", label, caption, label_cell, None))
                continue
            row_label = f"{group} / {label_cell}" if group and label_cell else (label_cell or group)
            if label_cell:
                out.append(Block(label_cell, None, section, "table", label, caption, row_label, headers[0]
                                 if headers else None))
            for j, cell in enumerate(r[1:], start=1):
                if cell:
                    out.append(Block(cell, None, section, "table", label, caption, row_label,
                                     headers[j] if j < len(headers) else None))
    for foot in tw.iter("table-wrap-foot"):
        text = _text(foot, skip=())
        if text:
            out.append(Block(text, None, section, "table", label, caption, "footnote", None))
    return out


# ------------------------------------------------------------------------------------------------
# PDF
# ------------------------------------------------------------------------------------------------

_HEADING = re.compile(
    r"^(?:\d{1,2}(?:\.\d{1,2})*\.?\s+|[IVX]{1,4}\.\s+)?(?P<t>abstract|summary|background|introduction|"
    r"(?:materials?|patients|subjects|participants) and methods|methods?|methodology|results?|findings|"
    r"discussion|conclusions?|interpretation|references|bibliography|acknowledge?ments?|funding|"
    r"competing interests?|declarations|abbreviations|authors?'? contributions?|additional files?|"
    r"limitations|strengths and limitations)\s*:?$", re.I)
_TABLE_CAPTION = re.compile(r"^\s*(?:Table|TABLE)\s+(?P<n>[0-9IVX]{1,4}[A-Za-z]?)\b")
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.I)


@dataclass
class _Run:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str


@dataclass
class _Line:
    runs: list[_Run]
    x0: float
    x1: float
    top: float
    bottom: float
    column: int  # -1 full width, 0 left, 1 right

    @property
    def height(self) -> float:
        return max(1.0, self.top - self.bottom)

    def cells(self) -> list[str]:
        runs = sorted(self.runs, key=lambda r: r.x0)
        cells: list[list[str]] = [[]]
        prev = None
        for r in runs:
            if prev is not None:
                gap = r.x0 - prev.x1
                char_w = max(1.0, (prev.x1 - prev.x0) / max(1, len(prev.text)))
                if gap > max(2.2 * char_w, 0.9 * self.height):
                    cells.append([])
                elif gap > 0.12 * char_w and not cells[-1][-1].endswith(" ") and not r.text.startswith(" "):
                    cells[-1].append(" ")
            cells[-1].append(r.text)
            prev = r
        return [re.sub(r"[ \t]+", " ", "".join(c)).strip() for c in cells if "".join(c).strip()]


def read_pdf(name: str, data: bytes, digest: str, limits: ArticleLimits) -> Article:
    """Read a PDF's text layer with pypdfium2: lines in reading order, headings, tables as rows of cells."""
    import pypdfium2 as pdfium

    started = time.monotonic()
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower():
            return Article(name, digest, "pdf", (), problem="the PDF is encrypted (password-protected); save an "
                           "unprotected copy of the article")
        return Article(name, digest, "pdf", (), problem=f"the PDF is broken ({msg[:80]}); download the article "
                       f"again or give its JATS XML")
    try:
        n = len(pdf)
        if n > limits.max_pages:
            return Article(name, digest, "pdf", (), pages=n, problem=f"the PDF has {n} pages, over the "
                           f"{limits.max_pages}-page limit for an article")
        meta: dict[str, Any] = {}
        try:
            info = pdf.get_metadata_dict(skip_empty=True)
        except Exception:  # noqa: BLE001
            info = {}
        for key in ("Title", "Subject", "Keywords", "Author"):
            if info.get(key):
                meta[f"pdf_{key.lower()}"] = str(info[key])[:500]
        if info.get("Title"):
            meta["title"] = str(info["Title"])[:500]
        blocks: list[Block] = []
        state = {"section": None, "kind": "front", "chars": 0}
        for i in range(n):
            if time.monotonic() - started > limits.max_seconds:
                return Article(name, digest, "pdf", (), meta, pages=i, problem=f"reading took over "
                               f"{limits.max_seconds:.0f} s (page {i + 1} of {n}); give the article's JATS XML")
            page = pdf[i]
            try:
                lines = _page_lines(page)
            finally:
                page.close()
            if i == 0:
                first = "\n".join("\t".join(ln.cells()) for ln in lines)
                meta["first_page"] = first[:6000]
            _page_blocks(lines, i + 1, state, blocks)
        if state["chars"] < 20 * max(1, n) / 2 and sum(len(b.text) for b in blocks) < 200:
            return Article(name, digest, "pdf", (), meta, pages=n, problem="the PDF has no text layer (a scan); "
                           "run OCR on it (for example ocrmypdf) or give the article's JATS XML")
        _pdf_meta(meta)
        return Article(name, digest, "pdf", tuple(blocks), meta, pages=n)
    finally:
        pdf.close()


def _pdf_meta(meta: dict[str, Any]) -> None:
    for key in ("pdf_subject", "pdf_keywords", "pdf_title", "first_page"):
        m = _DOI.search(meta.get(key) or "")
        if m:
            meta["doi"] = m.group(1).rstrip(".,;)]")
            break
    fp = meta.get("first_page") or ""
    m = re.search(r"PMID:?\s*(\d{5,9})", fp)
    if m:
        meta["pmid"] = m.group(1)
    m = re.search(r"\b(PMC\d{4,9})\b", fp)
    if m:
        meta["pmcid"] = m.group(1)


def _page_lines(page: Any) -> list[_Line]:
    """The page's text runs with their boxes, grouped into lines in reading order.

    PDFium's text page gives the characters in content order with its own line breaks. The costly
    call is a character's box, so a line's first and last characters are asked first; a line much
    wider than its characters need (a table row, or two columns' lines that PDFium joined) is then
    asked word by word and cut into runs where its words jump back or leave a gap wider than two
    characters (table cells).
    """
    import ctypes
    import statistics

    import pypdfium2.raw as raw

    tp = page.get_textpage()
    try:
        width = float(page.get_width())
        text = tp.get_text_range()
        left, right, bottom, top = ctypes.c_double(), ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
        box = raw.FPDFText_GetCharBox
        handle = tp.raw

        def char_box(i: int) -> tuple[float, float, float, float] | None:
            if not box(handle, i, left, right, bottom, top):
                return None
            return left.value, right.value, bottom.value, top.value

        lines = []
        for line in re.finditer(r"[^\r\n]+", text):
            seg = line.group(0)
            stripped = seg.strip()
            if not stripped:
                continue
            a = line.start() + (len(seg) - len(seg.lstrip()))
            b = line.start() + len(seg.rstrip()) - 1
            ba, bb = char_box(a), char_box(b)
            if ba is None or bb is None:
                lines.append((line, None))
                continue
            lines.append((line, (ba, bb)))
        ratios = [(bb[1] - ba[0]) / max(1, len(ln.group(0).strip())) for ln, boxes in lines if boxes
                  for ba, bb in [boxes] if bb[1] > ba[0]]
        typical = statistics.median(ratios) if ratios else 0.0
        runs: list[_Run] = []
        turned: list[_Run] = []  # text set at 90 or 270 degrees (a landscape table on a portrait page)
        height = float(page.get_height())
        angle_of = raw.FPDFText_GetCharAngle
        for line, boxes in lines:
            seg = line.group(0)
            n = len(seg.strip())
            turn = 0
            if boxes is not None and n > 1:
                ba, bb = boxes
                tall = max(ba[3], bb[3]) - min(ba[2], bb[2])
                wide = max(ba[1], bb[1]) - min(ba[0], bb[0])
                if tall > wide:  # a line taller than wide: ask whether its text is turned
                    ang = angle_of(handle, line.start() + (len(seg) - len(seg.lstrip())))
                    turn = 270 if abs(ang - 4.712) < 0.3 else 90 if abs(ang - 1.571) < 0.3 else 0
            if boxes is not None and not turn:
                ba, bb = boxes
                span = bb[1] - ba[0]
                # a line narrower than half the page and no wider than its characters need is one run; a
                # wider one may be two columns' lines PDFium joined, or a table row: asked word by word
                if 0 < span < 0.55 * width and (typical == 0 or span / max(1, n) <= 1.5 * typical) and \
                        abs(bb[2] - ba[2]) < max(2.0, ba[3] - ba[2]):
                    runs.append(_Run(ba[0], min(ba[2], bb[2]), bb[1], max(ba[3], bb[3]), re.sub(r"\s+", " ",
                                                                                              seg.strip())))
                    continue
            cur: list[tuple[str, float, float, float, float]] = []
            into = turned if turn else runs
            for w in re.finditer(r"\S+", seg):
                i = line.start() + w.start()
                j = line.start() + w.end() - 1
                b1 = char_box(i)
                if b1 is None:
                    continue
                x0, x1, y0, y1 = b1
                if j != i:
                    b2 = char_box(j)
                    if b2 is not None:
                        x0, x1 = min(x0, b2[0]), max(x1, b2[1])
                        y0, y1 = min(y0, b2[2]), max(y1, b2[3])
                if turn == 270:  # reading upwards (the glyphs' tops point left): the page turned clockwise
                    x0, x1, y0, y1 = y0, y1, width - x1, width - x0
                elif turn == 90:  # reading downwards: turned the other way
                    x0, x1, y0, y1 = height - y1, height - y0, x0, x1
                word = w.group(0)
                if cur:
                    px1 = cur[-1][2]
                    h = max(1.0, y1 - y0, cur[-1][4] - cur[-1][3])
                    cw = max(1.0, (cur[-1][2] - cur[-1][1]) / max(1, len(cur[-1][0])))
                    if x0 < px1 - h or x0 - px1 > max(2.2 * cw, 0.9 * h) or abs(y0 - cur[-1][3]) > h:
                        into.append(_join(cur))
                        cur = []
                cur.append((word, x0, x1, y0, y1))
            if cur:
                into.append(_join(cur))
    finally:
        tp.close()
    out = _order(runs, width)
    if turned:  # read in their own frame, as if the page were turned, after the upright text
        out.extend(_order(turned, height))
    return out


def _join(words: list[tuple[str, float, float, float, float]]) -> _Run:
    return _Run(min(w[1] for w in words), min(w[3] for w in words), max(w[2] for w in words),
                max(w[4] for w in words), " ".join(w[0] for w in words))


def _order(runs: list[_Run], width: float) -> list[_Line]:
    """Runs grouped into lines, in reading order (two columns when the page has a gutter)."""
    if not runs:
        return []
    gutter = _gutter(runs, width)
    cols_of = {id(r): _col(r, gutter) for r in runs}
    if gutter is not None:
        # a table under its caption ("Table 2 ...") spans the page: its rows are not split by the gutter,
        # down to the next prose line of either column
        for cap in (r for r in runs if _TABLE_CAPTION.match(r.text)):
            below = sorted((r for r in runs if (r.y0 + r.y1) / 2 < (cap.y0 + cap.y1) / 2), key=lambda r: -r.y1)
            cols_of[id(cap)] = -1
            for r in below:
                if len(r.text) >= 45 and len(re.findall(r"\d+(?:[.,·]\d+)?", r.text)) <= 2:
                    break
                cols_of[id(r)] = -1
    lines: list[_Line] = []
    # group by column then by vertical overlap
    for col in (-1, 0, 1):
        if gutter is None and col != -1:
            continue
        mine = [r for r in runs if cols_of[id(r)] == col]
        mine.sort(key=lambda r: (-(r.y1 + r.y0) / 2, r.x0))
        cur: list[_Run] = []
        for r in mine:
            if cur:
                top = max(c.y1 for c in cur)
                bottom = min(c.y0 for c in cur)
                mid = (r.y0 + r.y1) / 2
                h = max(1.0, min(top - bottom, r.y1 - r.y0))
                if bottom - 0.25 * h <= mid <= top + 0.25 * h:
                    cur.append(r)
                    continue
                lines.append(_mk_line(cur, col))
            cur = [r]
        if cur:
            lines.append(_mk_line(cur, col))
    if gutter is None:
        lines.sort(key=lambda ln: -ln.top)
        return lines
    # full-width lines split the page into bands; in each band: left column, then right column
    full = sorted((ln for ln in lines if ln.column == -1), key=lambda ln: -(ln.top + ln.bottom))
    cols = [ln for ln in lines if ln.column != -1]
    out: list[_Line] = []
    upper = float("inf")
    for fl in full + [None]:
        lower = (fl.top + fl.bottom) / 2 if fl is not None else float("-inf")
        band = [ln for ln in cols if lower < (ln.top + ln.bottom) / 2 <= upper]
        for c in (0, 1):
            out.extend(sorted((ln for ln in band if ln.column == c), key=lambda ln: -ln.top))
        if fl is not None:
            out.append(fl)
        upper = lower
    return out


def _mk_line(runs: list[_Run], col: int) -> _Line:
    return _Line(sorted(runs, key=lambda r: r.x0), min(r.x0 for r in runs), max(r.x1 for r in runs),
                 max(r.y1 for r in runs), min(r.y0 for r in runs), col)


def _col(r: _Run, gutter: float | None) -> int:
    if gutter is None:
        return -1
    if r.x1 <= gutter + 1:
        return 0
    if r.x0 >= gutter - 1:
        return 1
    return -1


def _gutter(runs: list[_Run], width: float) -> float | None:
    """The x of an empty vertical strip near the page's middle that splits its text into two columns, or None."""
    import numpy as np

    # prose lines decide (a table's short cells may sit anywhere across the page)
    prose = [r for r in runs if len(r.text) >= 20 and len(re.findall(r"\d+(?:[.,·]\d+)?", r.text)) <= 2]
    body = [r for r in prose if (r.x1 - r.x0) < 0.6 * width]
    if len(body) < 12:
        return None
    x0 = np.array([r.x0 for r in body])  # full-width lines may cross the gutter; column lines may not
    x1 = np.array([r.x1 for r in body])
    bx0 = np.array([r.x0 for r in body])
    bx1 = np.array([r.x1 for r in body])
    xs = np.arange(int(width * 0.3), int(width * 0.7), 2, dtype=float)
    if not len(xs):
        return None
    crossing = ((x0[None, :] < xs[:, None] - 1) & (x1[None, :] > xs[:, None] + 1)).sum(axis=1)
    left = (bx1[None, :] <= xs[:, None]).sum(axis=1)
    right = (bx0[None, :] >= xs[:, None]).sum(axis=1)
    ok = (left >= 0.2 * len(body)) & (right >= 0.2 * len(body))
    if not ok.any():
        return None
    key = np.where(ok, crossing * 10_000 + np.abs(xs - width / 2), np.inf)
    i = int(np.argmin(key))
    x = float(xs[i])
    left_lines = len({round((r.y0 + r.y1) / 2) for r in body if r.x1 <= x})
    right_lines = len({round((r.y0 + r.y1) / 2) for r in body if r.x0 >= x})
    if left_lines < 4 or right_lines < 4 or crossing[i] > 0.2 * len(body):
        return None
    return x


def _page_blocks(lines: list[_Line], page: int, state: dict[str, Any], out: list[Block]) -> None:
    para: list[str] = []
    table: dict[str, Any] | None = None

    def flush() -> None:
        if para:
            text = "\n".join(para)
            out.append(Block(text, page, state["section"], state["kind"]))
            para.clear()

    for ln in lines:
        cells = ln.cells()
        if not cells:
            continue
        text = " ".join(cells)
        state["chars"] += len(text)
        m = _HEADING.match(text.strip())
        if m and len(text) < 60:
            flush()
            table = None
            state["abstract"] = section_kind(m.group("t")) == "abstract"
            state["section"] = text.strip().rstrip(":")
            state["kind"] = section_kind(m.group("t"))
            continue
        cap = _TABLE_CAPTION.match(text)
        if cap:
            flush()
            table = {"label": f"Table {cap.group('n')}", "caption": text[:300], "header": None, "group": None,
                     "rows": 0, "plain": 0}
            out.append(Block(text, page, state["section"], "table", table["label"], table["caption"], None, None))
            continue
        if table is not None:
            is_row = len(cells) >= 2
            short = len(text) < 70
            if is_row or short:
                if is_row and table["header"] is None and not any(re.search(r"\d", c) for c in cells[1:]):
                    table["header"] = " | ".join(cells)
                    out.append(Block("\t".join(cells), page, state["section"], "table", table["label"],
                                     table["caption"], "header", None))
                    continue
                if not is_row and not re.search(r"\d", text):
                    table["group"] = text.strip()
                    out.append(Block(text, page, state["section"], "table", table["label"], table["caption"],
                                     text.strip(), None))
                    continue
                row_label = cells[0] if not re.fullmatch(r"[\d.,%()\s\-–]+", cells[0]) else None
                if table["group"] and row_label:
                    row_label = f"{table['group']} / {row_label}"
                out.append(Block("\t".join(cells), page, state["section"], "table", table["label"],
                                 table["caption"], row_label or table["group"], table["header"]))
                table["rows"] += 1
                continue
            table = None
        # abstract detection: the text before the first body heading on page 1 after an 'Abstract' label
        if state["kind"] == "front" and re.match(r"^(?:abstract|summary)\b", text, re.I):
            flush()
            state["section"], state["kind"] = "Abstract", "abstract"
        label = re.match(r"^(background|introduction|context|objectives?|purpose|aims?|methods?|results?|findings|"
                         r"conclusions?|interpretation|trial registration)\s*:", text, re.I)
        if label and (state["kind"] == "front" or state.get("abstract")):
            # a structured abstract's inline labels: its Background may quote other trials' figures
            flush()
            state["abstract"] = True
            state["section"] = f"Abstract / {label.group(1).capitalize()}"
            state["kind"] = "introduction" if section_kind(label.group(1)) == "introduction" else "abstract"
        para.append("\t".join(cells) if len(cells) > 1 else cells[0])
        if text.rstrip().endswith((".", ":")) and len(text) < 0.6 * 90:
            flush()
    flush()
