"""stderr carries only the tool's own lines: `curate validate` and `curate run` on every real workbook
of the shared data and every shipped example form raise no library warning (RuntimeWarning, openpyxl's
UserWarning "Data Validation extension is not supported" ...) and print nothing on stderr but
``curate: ...`` lines."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

from curation.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _shared_data() -> Path | None:
    for base in Path(__file__).resolve().parents:
        cand = base / "shared" / "data"
        if cand.is_dir():
            return cand
    return None


DATA = _shared_data()
REAL = sorted((DATA / "real_workbooks").glob("*.xlsx")) if DATA is not None else []
EXAMPLES = sorted(p for p in (ROOT / "extraction_forms").glob("*.xlsx") if p.name != "template.xlsx")
FORMS = [pytest.param(p, id=f"real:{p.stem[:30]}") for p in REAL] + [pytest.param(p, id=p.stem) for p in EXAMPLES]


def _invoke(args: list[str]):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = CliRunner().invoke(main, args)
    return res, [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]


def _own_lines_only(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("curate: ")]


@pytest.mark.skipif(not REAL, reason="the shared real workbooks (shared/data/real_workbooks) are not here")
def test_real_workbooks_are_here():
    assert len(REAL) >= 3


@pytest.mark.parametrize("form", FORMS)
def test_validate_and_run_print_only_their_own_lines(form, tmp_path):
    for args in (["validate", str(form), "-q"], ["run", str(form), "-o", str(tmp_path / "out"), "-q"]):
        res, caught = _invoke(args)
        assert res.exit_code in (0, 1, 2), res.output
        assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
        assert caught == [], f"{args[0]}: library warnings: {caught}"
        assert _own_lines_only(res.stderr) == [], f"{args[0]}: stderr: {res.stderr}"
