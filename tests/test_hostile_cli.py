"""Hostile and broken input through the real command line: exit 2, one line, no traceback, input
unchanged, nothing written; arbitrary cell values never make a command raise (hypothesis)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import OUTCOME_FIELDS, STUDY_FIELDS, AE_FIELDS, good_outcome, good_study, write_form
from curation.cli import main
from curation.safety import file_sha256
from curation.validation import validate
from hostile import build_corpus, decompression_bomb

CURATE = str(Path(sys.executable).parent / "curate")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_corpus(tmp_path_factory.mktemp("hostile"))


def _case_ids():
    import tempfile

    return sorted(build_corpus(Path(tempfile.mkdtemp())))


@pytest.mark.parametrize("case", _case_ids())
def test_validate_refuses_with_one_line(corpus, tmp_path, case):
    path, expect = corpus[case]
    before = file_sha256(path)
    out = tmp_path / "f.json"
    res = CliRunner().invoke(main, ["validate", str(path), "--json", str(out)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("curate: "), res.stderr
    assert expect.lower() in lines[0].lower()
    assert "Traceback" not in res.output + res.stderr
    assert not out.exists()
    assert file_sha256(path) == before


@pytest.mark.parametrize("command", [["pool", "--outcome", "dcr"], ["run", "-o", "OUT"], ["reconcile", "VALID"]])
def test_other_commands_refuse_too(corpus, tmp_path, command):
    path, _ = corpus["billion_laughs"]
    valid, _ = corpus.get("valid", (None, None)) if "valid" in corpus else (path.parent / "valid.xlsx", None)
    args = [a if a not in ("OUT", "VALID") else (str(tmp_path / "out") if a == "OUT" else str(valid))
            for a in command]
    res = CliRunner().invoke(main, [command[0], str(path), *args[1:]])
    assert res.exit_code == 2, res.output
    assert "entity" in res.stderr.lower() and "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_decompression_bomb_in_a_real_process(tmp_path):
    """Over a gigabyte uncompressed: refused fast, small memory, the file untouched."""
    bomb, _ = decompression_bomb(tmp_path / "bomb.xlsx")
    before = file_sha256(bomb)
    t0 = time.perf_counter()
    proc = subprocess.Popen([CURATE, "validate", str(bomb)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2
    assert time.perf_counter() - t0 < 30
    assert usage.ru_maxrss < 1024 * 1024  # KB: under 1 GB
    assert "decompression bomb" in err or "uncompressed" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert file_sha256(bomb) == before


INJECTIONS = ["=HYPERLINK(\"http://example.invalid\",\"x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
              "\tX", "<script>alert(1)</script>"]


def test_clean_csv_and_json_are_inert(tmp_path):
    import openpyxl

    s = good_study(first_author="placeholder", country=INJECTIONS[1])
    o = good_outcome(cohort="overall", extractor=INJECTIONS[3])
    p = write_form(tmp_path / "f.xlsx", [s], [o, good_outcome(cohort=INJECTIONS[2])], [])
    wb = openpyxl.load_workbook(p)
    cell = wb["studies"]["B2"]
    cell.value = INJECTIONS[0]
    cell.data_type = "s"  # text that looks like a formula, as a crafted form holds it
    wb.save(p)
    out = tmp_path / "clean.csv"
    res = CliRunner().invoke(main, ["validate", str(p), "--clean", str(out), "--json", str(tmp_path / "f.json")])
    assert res.exit_code in (0, 1), res.output
    text = out.read_text()
    for line in text.splitlines()[1:]:
        for cell in line.split(","):
            assert not cell.startswith(("=", "+", "@", "\t")), cell
    assert "'=HYPERLINK" in text and "'@SUM" in text and "'+cmd" in text and "'-2+3" in text


# ---------------------------------------------------------------------------------------------
# arbitrary cell values (hypothesis)

cell_values = st.one_of(
    st.none(), st.booleans(), st.integers(-10**9, 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=30), st.sampled_from(["NR", "n/a", "-", "—", "12,5", "87.6%", "30.9 (22.7–39.0)", "G1/G2",
                                           "Lutathera", "RECIST", "high grade", " 12 ", "=1+1", "S01", "overall"]),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)),
)


def _row(fields, values):
    return dict(zip(fields, values))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(studies=st.lists(st.lists(cell_values, min_size=len(STUDY_FIELDS), max_size=len(STUDY_FIELDS)), max_size=4),
       outcomes=st.lists(st.lists(cell_values, min_size=len(OUTCOME_FIELDS), max_size=len(OUTCOME_FIELDS)), max_size=5),
       aes=st.lists(st.lists(cell_values, min_size=len(AE_FIELDS), max_size=len(AE_FIELDS)), max_size=3),
       keep_good=st.booleans())
def test_arbitrary_cells_never_raise_and_rows_are_conserved(tmp_path_factory, studies, outcomes, aes, keep_good):
    tmp = tmp_path_factory.mktemp("prop")
    srows = [_row(STUDY_FIELDS, v) for v in studies] + ([good_study()] if keep_good else [])
    orows = [_row(OUTCOME_FIELDS, v) for v in outcomes] + ([good_outcome()] if keep_good else [])
    arows = [_row(AE_FIELDS, v) for v in aes]
    for rows in (srows, orows, arows):
        for r in rows:  # openpyxl refuses control characters; a form cannot hold them either
            for k, v in r.items():
                if isinstance(v, str):
                    r[k] = "".join(ch for ch in v if ch >= " " or ch == "\t")
    p = write_form(tmp / "f.xlsx", srows, orows, arows)
    before = file_sha256(p)
    result = validate(p)
    s = result.summary
    assert s.rows_read == s.rows_passed + s.rows_excluded
    # an error keeps its row out of the analyses that use a field it involves (docs/exclusions.md):
    # a row without an error is in every analysis; only rows with an error are excluded or restricted
    bad_rows = {(f.contract_sheet, f.row) for f in result.finding_list if f.severity == "error" and f.row}
    assert s.rows_excluded + s.rows_restricted <= len(bad_rows)
    for name, t in result.tables.items():
        for i, r in enumerate(t.rows):
            if (name, r) not in bad_rows:
                assert result.selection.passed[name][i] and result.selection.eligible[name][i].all(), (name, r)
    assert len(result.clean) == result.summary.by_sheet["outcomes"]["passed"]
    result.to_dict()
    assert file_sha256(p) == before


def test_no_command_writes_to_its_inputs(tmp_path):
    """Every command that reads forms leaves them byte-identical (read-only opening, outputs elsewhere)."""
    import shutil

    root = Path(__file__).resolve().parent.parent / "extraction_forms"
    a = shutil.copy(root / "example_reviewer_a.xlsx", tmp_path / "a.xlsx")
    b = shutil.copy(root / "example_reviewer_b.xlsx", tmp_path / "b.xlsx")
    adj = shutil.copy(root / "example_adjudication.xlsx", tmp_path / "adj.xlsx")
    inputs = [Path(a), Path(b), Path(adj)]
    before = [file_sha256(p) for p in inputs]
    out = tmp_path / "out"
    runner = CliRunner()
    commands = [
        ["validate", str(a), str(b), "--json", str(out / "v.json"), "--clean", str(out / "c.csv"),
         "--annotate", str(out / "ann"), "--report", str(out / "v.html")],
        ["reconcile", str(a), str(b), "-o", str(out / "cons.xlsx"), "--json", str(out / "r.json")],
        ["reconcile", str(a), str(b), "-o", str(out / "cons2.xlsx"), "--adjudication", str(adj)],
        ["pool", str(a), "--outcome", "dcr", "--json", str(out / "p.json"), "--forest", str(out / "p.svg")],
        ["run", str(a), str(b), "-o", str(out / "run")],
    ]
    for cmd in commands:
        res = runner.invoke(main, cmd)
        assert res.exit_code in (0, 1), (cmd, res.output, res.stderr)
        assert [file_sha256(p) for p in inputs] == before, cmd
    assert (out / "run" / "report.html").exists() and (out / "cons.xlsx").exists()


def test_absurd_numbers_do_not_break_the_run(tmp_path):
    """1e308 passes where a field has no maximum; the clean data then holds no whole number for it."""
    p = write_form(tmp_path / "f.xlsx", [good_study(n_enrolled=1e308, pmid=1e300)],
                   [good_outcome(), good_outcome(cohort="G3", grade="G3", ki67_max=30, n_evaluable=1e308)], [])
    res = CliRunner().invoke(main, ["run", str(p), "-o", str(tmp_path / "out"), "-q"])
    assert res.exit_code in (0, 1), res.output + res.stderr
    assert "Traceback" not in res.output + res.stderr and (tmp_path / "out" / "clean.csv").exists()
