"""Build hostile (and valid) inputs for the input-safety tests, in a temporary folder, at test time.

Nothing binary is committed: every file here is generated from code, most in milliseconds; the
decompression bomb (over 1 GB uncompressed, about 1 MB on disk) takes a few seconds and is meant to be
built once per test session.
"""

from __future__ import annotations

import io
import random
import re
import shutil
import struct
import time
import zipfile
from pathlib import Path

import openpyxl

SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHEET_HEAD = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              f'<worksheet xmlns="{SHEET_NS}">')

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10))
    + f']>\n<worksheet xmlns="{SHEET_NS}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is>'
    '</c></row></sheetData></worksheet>'
)

XXE_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n')


# ------------------------------------------------------------------------------------------
# valid workbooks

def make_valid(path: Path, *, formulas: bool = False, percent: str | None = None,
               long_text: str | None = None) -> Path:
    """A small extraction form written by openpyxl: sheets studies, outcomes, adverse_events.

    ``percent``: a number format such as ``"0%"`` (builtin 9), ``"0.00%"`` (builtin 10) or ``"0.0%"``
    (custom) given to the orr_pct cells. ``long_text``: a string put in studies!B2.
    """
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "studies"
    ws.append(["study_id", "first_author", "year", "n_enrolled"])
    ws.append(["S1", "Brabander" if long_text is None else long_text, 2017, 610])
    ws.append(["S2", "Zhang", 2019, 80])
    out = wb.create_sheet("outcomes")
    out.append(["study_id", "cohort", "n_evaluable", "cr", "pr", "orr_pct"])
    out.append(["S1", "overall", 443, 12, 121, 30.0])
    out.append(["S2", "overall", 70, 1, 22, 32.9])
    if formulas:
        out["F3"] = "=100*(D3+E3)/C3"
    if percent:
        for row in (2, 3):
            out.cell(row=row, column=6).number_format = percent
    ae = wb.create_sheet("adverse_events")
    ae.append(["study_id", "ae_term", "grade3plus_n"])
    ae.append(["S1", "anaemia", 4])
    wb.save(path)
    return path


def shared_strings_form(src: Path, dst: Path, strings: list[str], *, sst_head: str = "") -> Path:
    """``src`` with its studies sheet rewritten to use shared strings, as Excel writes them.

    ``strings`` are the shared strings (XML-escaped by the caller if needed; ``<r>`` runs allowed);
    row k+1 of column A refers to string k. ``sst_head`` goes before ``<sst>`` (to plant a DTD).
    """
    sst = (sst_head or '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n')
    sst += f'<sst xmlns="{SHEET_NS}" count="{len(strings)}" uniqueCount="{len(strings)}">'
    sst += "".join(s if s.startswith("<si>") else f"<si><t>{s}</t></si>" for s in strings) + "</sst>"
    rows = "".join(f'<row r="{k + 1}"><c r="A{k + 1}" t="s"><v>{k}</v></c></row>' for k in range(len(strings)))
    sheet = (SHEET_HEAD + f'<dimension ref="A1:A{max(1, len(strings))}"/><sheetData>{rows}</sheetData></worksheet>')
    m = members(src)
    rels = m["xl/_rels/workbook.xml.rels"].replace(
        b"</Relationships>", b'<Relationship Id="rId99" Type="http://schemas.openxmlformats.org/officeDocument/'
        b'2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
    ct = m["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
        b'officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
    return rezip(src, dst, {"xl/worksheets/sheet1.xml": sheet, "xl/_rels/workbook.xml.rels": rels,
                            "[Content_Types].xml": ct}, {"xl/sharedStrings.xml": sst})


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rezip(src: Path, dst: Path, replace: dict[str, bytes | str | None] | None = None,
          add: dict[str, bytes | str] | None = None) -> Path:
    """Copy a zip member by member, replacing (or, with None, dropping) some and adding others."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = replace.get(info.filename, zin.read(info))
            if data is None:
                continue
            zout.writestr(info.filename, data.encode("utf-8") if isinstance(data, str) else data)
        for name, data in (add or {}).items():
            zout.writestr(name, data.encode("utf-8") if isinstance(data, str) else data)
    return dst


def patch_member(path: Path, name: str, *, flags_or: int = 0, file_size: int | None = None) -> Path:
    """Edit a member's local header and central-directory entry in place (general flags, size)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
        start_dir = zf.start_dir
    raw = bytearray(path.read_bytes())
    lh = info.header_offset
    assert raw[lh:lh + 4] == b"PK\x03\x04"
    if flags_or:
        struct.pack_into("<H", raw, lh + 6, struct.unpack_from("<H", raw, lh + 6)[0] | flags_or)
    if file_size is not None:
        struct.pack_into("<I", raw, lh + 22, file_size)
    pos = start_dir
    while raw[pos:pos + 4] == b"PK\x01\x02":
        nlen, elen, clen = struct.unpack_from("<HHH", raw, pos + 28)
        if raw[pos + 46:pos + 46 + nlen].decode("utf-8") == name:
            if flags_or:
                struct.pack_into("<H", raw, pos + 8, struct.unpack_from("<H", raw, pos + 8)[0] | flags_or)
            if file_size is not None:
                struct.pack_into("<I", raw, pos + 24, file_size)
            break
        pos += 46 + nlen + elen + clen
    else:  # pragma: no cover - helper misuse
        raise KeyError(name)
    path.write_bytes(bytes(raw))
    return path


def big_valid(path: Path, rows: int = 47_000, cols: int = 25, seed: int = 1) -> Path:
    """A valid form whose outcomes sheet has ``rows`` data rows of ``cols`` numbers (~5 MB for 47,000)."""
    base = make_valid(path.with_suffix(".base.xlsx"))
    rnd = random.Random(seed)
    letters = [openpyxl.utils.get_column_letter(c) for c in range(1, cols + 1)]
    parts = [SHEET_HEAD, f'<dimension ref="A1:{letters[-1]}{rows + 1}"/><sheetData>',
             '<row r="1">' + "".join(f'<c r="{c}1" t="inlineStr"><is><t>col_{c}</t></is></c>' for c in letters)
             + "</row>"]
    for r in range(2, rows + 2):
        parts.append(f'<row r="{r}">' + "".join(f'<c r="{c}{r}"><v>{rnd.randint(0, 5000) / 10}</v></c>'
                                                 for c in letters) + "</row>")
    parts.append("</sheetData></worksheet>")
    rezip(base, path, {"xl/worksheets/sheet2.xml": "".join(parts)})
    base.unlink()
    return path


# ------------------------------------------------------------------------------------------
# hostile files

def decompression_bomb(path: Path, uncompressed: int = 1_100_000_000) -> tuple[Path, float]:
    """An otherwise valid form whose first sheet expands to ``uncompressed`` bytes of repeated rows.

    Written with zipfile, streaming 1 MB pieces, so neither disk nor memory holds the expanded sheet.
    Returns the path and the seconds the build took.
    """
    t0 = time.perf_counter()
    base = make_valid(path.with_suffix(".base.xlsx"))
    row = b"<row><c><v>1</v></c></row>"
    piece = row * ((1 << 20) // len(row))
    head = (SHEET_HEAD + '<dimension ref="A1"/><sheetData>').encode()
    tail = b"</sheetData></worksheet>"
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for info in zin.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
                zi.compress_type = zipfile.ZIP_DEFLATED
                zi._compresslevel = 9  # ZipInfo has no public way to set it
                with zout.open(zi, "w", force_zip64=True) as w:
                    w.write(head)
                    written = len(head)
                    while written < uncompressed - len(tail):
                        w.write(piece)
                        written += len(piece)
                    w.write(tail)
            else:
                zout.writestr(info, zin.read(info))
    base.unlink()
    return path, time.perf_counter() - t0


def build_corpus(d: Path) -> dict[str, tuple[Path, str]]:
    """Every cheap hostile file, as ``{case: (path, words the refusal must contain)}``."""
    d.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(7)
    valid = make_valid(d / "valid.xlsx")
    vm = members(valid)
    cases: dict[str, tuple[Path, str]] = {}

    def put(case: str, data: bytes, expect: str, suffix: str = ".xlsx") -> None:
        p = d / f"{case}{suffix}"
        p.write_bytes(data)
        cases[case] = (p, expect)

    def put_zip(case: str, expect: str, replace=None, add=None) -> Path:
        p = rezip(valid, d / f"{case}.xlsx", replace, add)
        cases[case] = (p, expect)
        return p

    put("random_bytes", bytes(rnd.getrandbits(8) for _ in range(4096)), "not a workbook")
    put("empty", b"", "empty")
    raw = valid.read_bytes()
    put("truncated", raw[: len(raw) // 2], "truncated or corrupt zip")
    put("ole2", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(4088), "password-protected workbook or legacy .xls")
    put("csv", b"study_id,first_author,year\nS1,Brabander,2017\nS2,Zhang,2019\n", "CSV/text file")
    put("tsv", "study_id\tfirst_author\tyear\nS1\tBrabander\t2017\n".encode("utf-16"), "CSV/text file")
    put("html", b"<!DOCTYPE html>\n<html><body><table><tr><td>S1</td></tr></table></body></html>", "HTML file")
    put("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF")
    put("xml2003", b'<?xml version="1.0"?>\n<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">'
        b"</Workbook>", "Excel 2003 XML")
    put("gzip", b"\x1f\x8b\x08\x00" + bytes(60), "compressed archive")
    put("empty_zip", b"PK\x05\x06" + bytes(18), "empty zip")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<office:document-content/>")
        z.writestr("META-INF/manifest.xml", "<manifest/>")
    put("ods", buf.getvalue(), "OpenDocument spreadsheet (.ods)")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data/form.csv", "study_id,year\nS1,2017\n")
        z.writestr("readme.txt", "hello")
    put("plain_zip", buf.getvalue(), "not an Excel workbook")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", vm["[Content_Types].xml"].replace(b"spreadsheetml.sheet.main",
                                                                           b"wordprocessingml.document.main"))
        z.writestr("word/document.xml", "<w:document/>")
    put("docx", buf.getvalue(), "Word document")

    put_zip("no_content_types", "[Content_Types].xml is missing", {"[Content_Types].xml": None})
    put_zip("billion_laughs", "XML entity declarations", {"xl/worksheets/sheet1.xml": BILLION_LAUGHS})
    cases["xxe_shared_strings"] = (shared_strings_form(valid, d / "xxe_shared_strings.xlsx", ["&xxe;"],
                                                       sst_head=XXE_HEAD), "XML entity declarations")
    put_zip("xxe_workbook", "XML entity declarations",
            {"xl/workbook.xml": b'<!DOCTYPE workbook [<!ENTITY x SYSTEM "http://example.invalid/x">]>'
             + vm["xl/workbook.xml"]})
    # the DTD pushed 64 KB back behind a comment, so that a fixed-size window would miss it
    put_zip("padded_doctype", "XML entity declarations",
            {"xl/styles.xml": b'<?xml version="1.0"?><!--' + b"x" * 65536 + b"--><!DOCTYPE s [<!ENTITY a 'b'>]>"
             + vm["xl/styles.xml"]})
    put_zip("utf16_doctype", "XML entity declarations",
            {"docProps/app.xml": '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE p [<!ENTITY a "b">]>\n'
                                 '<Properties/>'.encode("utf-16")})
    # openpyxl writes '<dimension ref="A1:D3" />', or without the space when it serialises through lxml
    huge = re.sub(rb'<dimension ref="A1:D3"\s*/>', b'<dimension ref="A1:XFD1048576"/>', vm["xl/worksheets/sheet1.xml"])
    assert b"A1:XFD1048576" in huge
    put_zip("huge_dimension", "A1:XFD1048576", {"xl/worksheets/sheet1.xml": huge})
    cases["long_shared_string"] = (shared_strings_form(valid, d / "long_shared_string.xlsx",
                                                       ["short", "x" * 40_000]), "40,000 characters")
    # 4 rich-text runs of 10,000 characters each: one cell of 40,000
    runs = "<si>" + "".join(f"<r><rPr><b/></rPr><t>{'y' * 10_000}</t></r>" for _ in range(4)) + "</si>"
    cases["long_rich_text"] = (shared_strings_form(valid, d / "long_rich_text.xlsx", ["a", runs]),
                               "40,000 characters")
    inline = (SHEET_HEAD + '<dimension ref="A1:A1"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
              + "é" * 40_000 + "</t></is></c></row></sheetData></worksheet>")
    put_zip("long_inline_string", "40,000 characters", {"xl/worksheets/sheet3.xml": inline})
    p = put_zip("encrypted_member", "encrypted", None)
    patch_member(p, "xl/worksheets/sheet2.xml", flags_or=0x1)
    return cases


def lying_bomb(bomb: Path, dst: Path, declared: int = 5_000_000) -> Path:
    """A copy of the bomb whose headers claim the sheet is only ``declared`` bytes (ratio ~2x)."""
    shutil.copyfile(bomb, dst)
    with zipfile.ZipFile(dst) as zf:
        zip64 = zf.getinfo("xl/worksheets/sheet1.xml").file_size >= 0xFFFFFFFF
    assert not zip64, "the bomb is below 4 GB, so its sizes are in the plain headers"
    return patch_member(dst, "xl/worksheets/sheet1.xml", file_size=declared)


def alias_member(path: Path, name: str, alias: str) -> Path:
    """Add a second central-directory entry ``alias`` pointing at ``name``'s data (overlapping members)."""
    assert len(alias) == len(name)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        start_dir = zf.start_dir
    eocd = raw.rfind(b"PK\x05\x06")
    pos = start_dir
    entry = None
    while raw[pos:pos + 4] == b"PK\x01\x02":
        nlen, elen, clen = struct.unpack_from("<HHH", raw, pos + 28)
        if raw[pos + 46:pos + 46 + nlen].decode() == name:
            entry = bytearray(raw[pos:pos + 46 + nlen + elen + clen])
        pos += 46 + nlen + elen + clen
    assert entry is not None
    entry[46:46 + len(alias)] = alias.encode()
    count, size = struct.unpack_from("<HI", raw, eocd + 10)
    tail = bytearray(raw[eocd:])
    struct.pack_into("<HHI", tail, 8, count + 1, count + 1, size + len(entry))
    path.write_bytes(bytes(raw[:eocd]) + bytes(entry) + bytes(tail))
    return path


def recompress(src: Path, dst: Path, name: str, compress_type: int) -> Path:
    """``src`` with member ``name`` compressed with another zip method (e.g. bzip2)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info),
                          compress_type=compress_type if info.filename == name else zipfile.ZIP_DEFLATED)
    return dst


def sheet_without_dimension(src: Path, dst: Path, rows: int, cols: int) -> Path:
    """``src`` whose studies sheet has no ``<dimension>`` and ``rows`` x ``cols`` numbers."""
    letters = [openpyxl.utils.get_column_letter(c) for c in range(1, cols + 1)]
    body = "".join(f'<row r="{r}">' + "".join(f'<c r="{c}{r}"><v>{r}</v></c>' for c in letters) + "</row>"
                   for r in range(1, rows + 1))
    return rezip(src, dst, {"xl/worksheets/sheet1.xml": SHEET_HEAD + f"<sheetData>{body}</sheetData></worksheet>"})


def sheet_with_rows(src: Path, dst: Path, dimension: str, rows: int) -> Path:
    """``src`` whose studies sheet declares ``dimension`` but holds ``rows`` rows (a lying dimension)."""
    body = "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in range(1, rows + 1))
    return rezip(src, dst, {"xl/worksheets/sheet1.xml": SHEET_HEAD + f'<dimension ref="{dimension}"/>'
                            f"<sheetData>{body}</sheetData></worksheet>"})
