"""Tests of the input-safety layer (curation.safety) against a hostile corpus built at test time."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

import hostile  # noqa: E402

from curation import safety  # noqa: E402
from curation.errors import UnusableInputError  # noqa: E402
from curation.safety import Limits, WorkbookInfo, check_workbook, file_sha256  # noqa: E402


# ------------------------------------------------------------------------------------------
# fixtures (built once per session)

@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="session")
def corpus(corpus_dir) -> dict[str, tuple[Path, str]]:
    return hostile.build_corpus(corpus_dir / "corpus")


@pytest.fixture(scope="session")
def valid(corpus_dir) -> Path:
    return hostile.make_valid(corpus_dir / "valid_form.xlsx")


@pytest.fixture(scope="session")
def bomb(corpus_dir) -> tuple[Path, float]:
    path, seconds = hostile.decompression_bomb(corpus_dir / "bomb.xlsx")
    return path, seconds


@pytest.fixture(scope="session")
def big(corpus_dir) -> Path:
    return hostile.big_valid(corpus_dir / "big_form.xlsx")


def refusal(path, limits: Limits = Limits()) -> str:
    with pytest.raises(UnusableInputError) as exc:
        check_workbook(path, limits)
    err = exc.value
    assert err.exit_code == 2
    msg = err.message
    assert "\n" not in msg and "\r" not in msg, "the message must be one line"
    assert msg.startswith(str(path)), f"the message must name the file: {msg}"
    assert msg.count(": ") >= 2, f"file: problem: what to do -- {msg}"
    return msg


# ------------------------------------------------------------------------------------------
# the hostile corpus

CASES = ["random_bytes", "empty", "truncated", "ole2", "csv", "tsv", "html", "pdf", "xml2003", "gzip",
         "empty_zip", "ods", "plain_zip", "docx", "no_content_types", "billion_laughs", "xxe_shared_strings",
         "xxe_workbook", "padded_doctype", "utf16_doctype", "huge_dimension", "long_shared_string",
         "long_rich_text", "long_inline_string", "encrypted_member"]


def test_corpus_has_every_case(corpus):
    assert sorted(corpus) == sorted(CASES)


@pytest.mark.parametrize("case", CASES)
def test_hostile_file_is_refused(corpus, case):
    path, expect = corpus[case]
    before = file_sha256(path)
    msg = refusal(path)
    assert expect in msg, msg
    assert file_sha256(path) == before, "the input must not change"


def test_specific_wording(corpus):
    assert "save it as .xlsx without a password" in refusal(corpus["ole2"][0])
    assert "give it the name .csv" in refusal(corpus["csv"][0])  # a CSV named .xlsx is read once named .csv
    assert "which forms never need; refused for safety" in refusal(corpus["billion_laughs"][0])
    assert "save it as .xlsx" in refusal(corpus["ods"][0])
    assert "sheet 'studies'" in refusal(corpus["huge_dimension"][0])
    assert "xl/worksheets/sheet2.xml" in refusal(corpus["encrypted_member"][0])
    assert "central directory" in refusal(corpus["truncated"][0])


def test_missing_file(tmp_path):
    msg = refusal(tmp_path / "nope.xlsx")
    assert "file not found" in msg


def test_directory(tmp_path):
    d = tmp_path / "forms.xlsx"
    d.mkdir()
    assert "is a folder" in refusal(d)


def test_fifo_is_not_a_regular_file(tmp_path):
    p = tmp_path / "pipe.xlsx"
    os.mkfifo(p)
    assert "not a regular file" in refusal(p)


def test_unreadable_file(tmp_path, valid, monkeypatch):
    p = tmp_path / "locked.xlsx"
    shutil.copyfile(valid, p)

    def denied(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(safety, "open", denied, raising=False)
    assert "permission denied" in refusal(p)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_chmod(tmp_path, valid):  # pragma: no cover - not run as root
    p = tmp_path / "locked.xlsx"
    shutil.copyfile(valid, p)
    p.chmod(0)
    assert "permission denied" in refusal(p)


def test_newline_in_file_name_stays_one_line(tmp_path):
    p = tmp_path / "bad\nname.xlsx"
    p.write_bytes(b"a,b\n1,2\n")
    with pytest.raises(UnusableInputError) as exc:
        check_workbook(p)
    assert "\n" not in exc.value.message and "CSV" in exc.value.message


def test_csv_with_other_suffix_is_named_as_is(tmp_path):
    p = tmp_path / "form.csv"
    p.write_text("study_id;year\nS1;2017\n", encoding="latin-1")
    msg = refusal(p)
    assert "CSV/text file" in msg and "named .csv" in msg


# ------------------------------------------------------------------------------------------
# zip-level attacks

def test_lying_header_bomb_is_caught_while_streaming(bomb, tmp_path):
    path = hostile.lying_bomb(bomb[0], tmp_path / "liar.xlsx", declared=5_000_000)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("xl/worksheets/sheet1.xml")
        assert info.file_size == 5_000_000 and info.file_size / info.compress_size < 5  # headers look harmless
    tracemalloc.start()
    try:
        # rows are limited too (100,000 by default) and would stop it first: lift that to test the cap
        msg = refusal(path, Limits(max_rows=10_000_000, max_cells=10**9))
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "decompression bomb" in msg and "header lies about the size" in msg, msg
    assert "rows" in refusal(path)  # with the default limits
    assert peak < 20_000_000, f"peak {peak / 1e6:.1f} MB: never decompress more than the cap"


def test_overlapping_members(valid, tmp_path):
    p = shutil.copyfile(valid, tmp_path / "overlap.xlsx")
    hostile.alias_member(Path(p), "xl/worksheets/sheet3.xml", "xl/worksheets/sheet9.xml")
    with zipfile.ZipFile(p) as zf:
        assert len(zf.infolist()) == 12
    assert "overlapping zip members" in refusal(p)


def test_duplicate_member_names(valid, tmp_path):
    p = tmp_path / "dup.xlsx"
    shutil.copyfile(valid, p)
    with pytest.warns(UserWarning), zipfile.ZipFile(p, "a") as zf:
        zf.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    assert "same name" in refusal(p)


def test_unusual_compression_method(valid, tmp_path):
    p = hostile.recompress(valid, tmp_path / "bz.xlsx", "xl/worksheets/sheet1.xml", zipfile.ZIP_BZIP2)
    assert "compression method 12" in refusal(p)


def test_too_many_members(valid):
    assert "zip members, more than the 5 allowed" in refusal(valid, Limits(max_members=5))


def test_total_uncompressed_size_limit(valid):
    assert "is too large" in refusal(valid, Limits(max_uncompressed_bytes=5_000))


def test_missing_sheet_part(valid, tmp_path):
    p = hostile.rezip(valid, tmp_path / "nosheet.xlsx", {"xl/worksheets/sheet2.xml": None})
    assert "sheet 'outcomes'" in refusal(p)


def test_corrupt_member_data(valid, tmp_path):
    raw = bytearray(valid.read_bytes())
    with zipfile.ZipFile(valid) as zf:
        info = zf.getinfo("xl/workbook.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start:start + 8] = b"\xff" * 8  # an invalid deflate block
    p = tmp_path / "corrupt.xlsx"
    p.write_bytes(bytes(raw))
    assert "damaged" in refusal(p)


# ------------------------------------------------------------------------------------------
# sheet sizes and cell lengths

def test_lying_dimension_is_caught_by_the_row_scan(valid, tmp_path):
    p = hostile.sheet_with_rows(valid, tmp_path / "rows.xlsx", "A1:A2", 3_000)
    assert check_workbook(p).sheet("studies").rows == 3_000
    msg = refusal(p, Limits(max_rows=1_000))
    assert "row 3,000" in msg and "sheet 'studies'" in msg


def test_sheet_without_dimension_is_scanned(valid, tmp_path):
    p = hostile.sheet_without_dimension(valid, tmp_path / "nodim.xlsx", rows=4, cols=30)
    s = check_workbook(p).sheet("studies")
    assert (s.dimension, s.rows, s.columns) == (None, 4, 30)
    wide = hostile.sheet_without_dimension(valid, tmp_path / "wide.xlsx", rows=2, cols=600)
    assert "column 600" in refusal(wide)


def test_cell_length_boundary(valid, tmp_path):
    at_limit = ["x" * 32_767, "€" * 32_767, "&amp;" * 32_767, "_x000D_" * 32_767]
    ok = hostile.shared_strings_form(valid, tmp_path / "at_limit.xlsx", at_limit)
    assert check_workbook(ok).sheet_names == ("studies", "outcomes", "adverse_events")
    for k, s in enumerate(["x" * 32_768, "€" * 32_768, "&amp;" * 32_768]):
        p = hostile.shared_strings_form(valid, tmp_path / f"over{k}.xlsx", ["a", s, "b"])
        assert "32,768 characters" in refusal(p)


def test_phonetic_runs_do_not_count(valid, tmp_path):
    si = f"<si><t>{'x' * 30_000}</t><rPh sb=\"0\" eb=\"1\"><t>{'y' * 30_000}</t></rPh></si>"
    p = hostile.shared_strings_form(valid, tmp_path / "rph.xlsx", [si])
    check_workbook(p)


def test_long_attribute_is_not_a_long_cell(valid, tmp_path):
    # a data validation listing many ranges: a long attribute, not a long cell
    sqref = " ".join(f"A{r}" for r in range(1, 20_000))
    sheet = (hostile.SHEET_HEAD + '<dimension ref="A1"/><sheetData/><dataValidations count="1">'
             f'<dataValidation type="whole" sqref="{sqref}"><formula1>0</formula1></dataValidation>'
             "</dataValidations></worksheet>")
    p = hostile.rezip(valid, tmp_path / "sqref.xlsx", {"xl/worksheets/sheet1.xml": sheet})
    assert check_workbook(p).sheet("studies").rows == 1


def test_span_scanner_across_piece_boundaries():
    text = b"<sst>" + b"".join(b"<si><t>" + b"z" * n + b"</t></si>" for n in (5, 150, 80, 300, 3)) + b"</sst>"
    for piece in (1, 2, 4, 5, 7, 64, 1000, 40_000):
        found: list[int] = []
        scan = safety._SpanScanner(b"</si>", 100, 10_000_000, lambda s: (found.append(len(s)), 0)[1])
        for i in range(0, len(text), piece):
            scan.feed(text[i:i + piece])
        scan.close()
        # exactly the spans longer than 100 bytes are measured, none merged with a neighbour
        assert found == [7 + 150 + 4, 7 + 300 + 4], (piece, found)
        scan = safety._SpanScanner(b"</si>", 100, 10_000_000, safety._measure_shared_string)
        with pytest.raises(safety._Refused, match="150 characters"):
            for i in range(0, len(text), piece):
                scan.feed(text[i:i + piece])


# ------------------------------------------------------------------------------------------
# valid workbooks and WorkbookInfo

def test_valid_workbook_passes(valid):
    before = file_sha256(valid)
    info = check_workbook(valid)
    assert isinstance(info, WorkbookInfo)
    assert info.sheet_names == ("studies", "outcomes", "adverse_events")
    assert info.dimensions == {"studies": "A1:D3", "outcomes": "A1:F3", "adverse_events": "A1:C2"}
    assert (info.sheet("outcomes").rows, info.sheet("outcomes").columns) == (3, 6)
    assert info.has_formulas is False and info.has_percent_formats is False
    with zipfile.ZipFile(valid) as zf:
        assert info.uncompressed_bytes == sum(i.file_size for i in zf.infolist())
        assert info.members == len(zf.infolist())
    assert file_sha256(valid) == before
    with pytest.raises(AttributeError):
        info.has_formulas = True  # frozen


def test_formulas_detected(tmp_path):
    info = check_workbook(hostile.make_valid(tmp_path / "f.xlsx", formulas=True))
    assert info.has_formulas is True
    assert [s.has_formulas for s in info.sheets] == [False, True, False]
    assert info.has_percent_formats is False


def test_shared_and_prefixed_formulas_detected(valid, tmp_path):
    shared = (hostile.SHEET_HEAD + '<dimension ref="A1:A2"/><sheetData><row r="1"><c r="A1"><f t="shared" '
              'ref="A1:A2" si="0">1+1</f><v>2</v></c></row></sheetData></worksheet>')
    assert check_workbook(hostile.rezip(valid, tmp_path / "sh.xlsx", {"xl/worksheets/sheet1.xml": shared})
                          ).has_formulas
    prefixed = ('<x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                '<x:dimension ref="A1"/><x:sheetData><x:row r="1"><x:c r="A1"><x:f>1+1</x:f><x:v>2</x:v></x:c>'
                "</x:row></x:sheetData></x:worksheet>")
    info = check_workbook(hostile.rezip(valid, tmp_path / "px.xlsx", {"xl/worksheets/sheet1.xml": prefixed}))
    assert info.has_formulas and info.sheet("studies").dimension == "A1"
    # many 'f' letters in text, none a formula: the fallback search must not see one
    text = (hostile.SHEET_HEAD + '<dimension ref="A1"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
            + "fluff of fifty fine " * 500 + "</t></is></c></row></sheetData></worksheet>")
    assert not check_workbook(hostile.rezip(valid, tmp_path / "ff.xlsx", {"xl/worksheets/sheet1.xml": text})
                              ).has_formulas


@pytest.mark.parametrize("fmt, expected", [("0%", True), ("0.00%", True), ("0.0%", True), ("#,##0.0 %", True),
                                           ('0.0"%"', False), ("0.0\\%", False), ("0.00", False),
                                           ("General", False)])
def test_percent_formats(tmp_path, fmt, expected):
    info = check_workbook(hostile.make_valid(tmp_path / "p.xlsx", percent=fmt))
    assert info.has_percent_formats is expected


def test_percent_only_in_cell_style_xfs_does_not_count(valid, tmp_path):
    styles = hostile.members(valid)["xl/styles.xml"]
    styles = styles.replace(b"<cellStyleXfs count=\"1\">", b"<cellStyleXfs count=\"2\"><xf numFmtId=\"9\"/>", 1)
    assert b'numFmtId="9"' in styles
    p = hostile.rezip(valid, tmp_path / "csx.xlsx", {"xl/styles.xml": styles})
    assert check_workbook(p).has_percent_formats is False


def test_big_valid_workbook_is_cheap(big):
    size = big.stat().st_size
    assert 3_000_000 < size < 9_000_000
    info = check_workbook(big)
    tracemalloc.start()
    try:
        check_workbook(big)
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    s = info.sheet("outcomes")
    assert (s.rows, s.columns, s.has_formulas) == (47_001, 25, False)
    assert peak < 30_000_000, f"peak {peak / 1e6:.1f} MB: the scan must stream"
    # its speed is measured by benchmarks/run.py, not here


def test_big_valid_workbook_is_readable_by_calamine(big):
    from python_calamine import CalamineWorkbook

    rows = CalamineWorkbook.from_path(str(big)).get_sheet_by_name("outcomes").to_python()
    assert len(rows) == 47_001 and len(rows[0]) == 25


# ------------------------------------------------------------------------------------------
# the decompression bomb: time and memory

def test_bomb_is_refused_cheaply(bomb):
    path, build_seconds = bomb
    with zipfile.ZipFile(path) as zf:
        total = sum(i.file_size for i in zf.infolist())
    assert total > 1_000_000_000 and path.stat().st_size < 10_000_000
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        msg = refusal(path)
        seconds = time.perf_counter() - t0
        _cur, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
    assert "decompression bomb" in msg and "1,101.0 MB" in msg
    assert peak < 10_000_000, f"peak traced memory {peak / 1e6:.1f} MB"
    assert rss_growth_kb < 100_000, f"peak RSS grew by {rss_growth_kb / 1e3:.0f} MB"
    print(f"\nbomb: {total / 1e9:.2f} GB in a {path.stat().st_size / 1e6:.1f} MB zip, built in {build_seconds:.1f} s;"
          f" refused in {seconds * 1000:.2f} ms, peak traced memory {peak / 1e3:.0f} KB, "
          f"peak RSS growth {rss_growth_kb / 1e3:.1f} MB")


def test_bomb_with_a_higher_limit_is_still_refused_by_ratio(bomb):
    assert "decompression bomb" in refusal(bomb[0], Limits(max_uncompressed_bytes=10**12))


def test_bomb_without_ratio_check_is_refused_by_size(bomb):
    msg = refusal(bomb[0], Limits(max_compression_ratio=10**6))
    assert "is too large" in msg


# ------------------------------------------------------------------------------------------
# parsers behind the check

def test_openpyxl_uses_defusedxml(corpus):
    assert openpyxl.DEFUSEDXML is True
    assert safety.openpyxl_is_defused()
    import defusedxml

    # bypassing check_workbook: openpyxl refuses the entities itself instead of expanding them
    with pytest.raises(Exception) as exc:
        openpyxl.load_workbook(corpus["billion_laughs"][0])
    cause = exc.value.__cause__ or exc.value.__context__
    assert isinstance(cause, defusedxml.DefusedXmlException), repr(cause)


def test_limits_are_validated():
    with pytest.raises(ValueError):
        Limits(max_rows=0)
    with pytest.raises(ValueError):
        Limits(max_compression_ratio=1)
    assert Limits().max_cell_chars == 32_767


def test_file_sha256(valid):
    assert file_sha256(valid) == hashlib.sha256(valid.read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------------
# properties: nothing but UnusableInputError, whatever the bytes

@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _outcome(path: Path, data: bytes):
    path.write_bytes(data)
    try:
        return check_workbook(path)
    except UnusableInputError as exc:
        assert "\n" not in exc.message and exc.message.startswith(str(path))
        return exc


PREFIXES = [b"", b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"<?xml ", b"%PDF", b"\xef\xbb\xbf", b"\xff\xfe"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from(PREFIXES), data=st.binary(max_size=4096))
def test_arbitrary_bytes_raise_only_unusable_input(scratch, prefix, data):
    result = _outcome(scratch / "fuzz.xlsx", prefix + data)
    assert isinstance(result, (UnusableInputError, WorkbookInfo))


_VALID_BYTES: dict[str, bytes] = {}


def _valid_bytes(scratch: Path) -> bytes:
    if "v" not in _VALID_BYTES:
        p = hostile.shared_strings_form(hostile.make_valid(scratch / "base.xlsx", formulas=True, percent="0%"),
                                        scratch / "base_sst.xlsx", ["a", "b &amp; c", "€"])
        _VALID_BYTES["v"] = p.read_bytes()
    return _VALID_BYTES["v"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_mutated_workbooks_raise_only_unusable_input(scratch, edits, cut):
    raw = bytearray(_valid_bytes(scratch))
    for where, byte in edits:
        raw[int(where * len(raw))] = byte
    if cut is not None:
        raw = raw[: int(cut * len(raw))]
    result = _outcome(scratch / "mutant.xlsx", bytes(raw))
    assert isinstance(result, (UnusableInputError, WorkbookInfo))


# ------------------------------------------------------------------------------------------
# the area a reader lays out, sheets, shared strings (from a review of hostile forms)

def _sheet(body: str, dimension: str | None = "A1") -> str:
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return hostile.SHEET_HEAD + dim + "<sheetData>" + body + "</sheetData></worksheet>"


def test_two_cells_far_apart_are_refused_before_a_reader_lays_them_out(valid, tmp_path):
    """Within the row and column limits, but 100,000 x 500 cells to allocate."""
    body = '<row r="1"><c r="A1"><v>1</v></c></row><row r="100000"><c r="SF100000"><v>1</v></c></row>'
    p = hostile.rezip(valid, tmp_path / "corner.xlsx", {"xl/worksheets/sheet2.xml": _sheet(body, "A1:SF100000")})
    msg = refusal(p)
    assert "100,000 rows x 500 columns" in msg and "3,000,000" in msg


def test_cells_without_addresses_are_counted(valid, tmp_path):
    """Cells without r="..." are placed one after another: 2,000 of them in a row is column 2,000."""
    body = '<row r="1">' + "<c><v>1</v></c>" * 2000 + "</row>"
    p = hostile.rezip(valid, tmp_path / "noref.xlsx", {"xl/worksheets/sheet2.xml": _sheet(body, "A1:B2")})
    assert "above the limit of 500 columns" in refusal(p)
    ok = hostile.rezip(valid, tmp_path / "noref_ok.xlsx",
                       {"xl/worksheets/sheet2.xml": _sheet('<row r="1">' + "<c><v>1</v></c>" * 30 + "</row>", None)})
    assert check_workbook(ok).sheet("outcomes").columns == 30


def test_too_many_sheets_and_shared_strings(valid, tmp_path):
    import re

    wbxml = hostile.members(valid)["xl/workbook.xml"].decode()
    first = re.search(r"<sheet [^>]*/>", wbxml).group(0)
    many = wbxml.replace(first, first + "".join(first.replace('name="studies"', f'name="s{i}"')
                                                .replace('sheetId="1"', f'sheetId="{i + 10}"') for i in range(300)))
    assert "300" in refusal(hostile.rezip(valid, tmp_path / "sheets.xlsx", {"xl/workbook.xml": many})) or \
        "sheets" in refusal(hostile.rezip(valid, tmp_path / "sheets.xlsx", {"xl/workbook.xml": many}))
    strings = ["s"] * 3000
    p = hostile.shared_strings_form(valid, tmp_path / "sst.xlsx", strings)
    assert "shared strings" in refusal(p, Limits(max_shared_strings=1000))
    check_workbook(p)  # the default allows far more
