"""A folder of workbooks, one per study (layouts.md v2, Files): ``curate map FOLDER`` writes one layout per
workbook in one file (a :class:`~curation.layout.LayoutSet`), and ``--layout`` reads the folder with the same
findings as with no options (held-out report, item 9: map refused a folder that validate reads)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from curation.layout import Layout, LayoutSet, load_layout

CURATE = str(Path(sys.executable).parent / "curate")


def _workbook(path: Path, header: list, rows: list) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "forms"
    d.mkdir()
    head = ["Study", "Cohort", "N enrolled", "N evaluable", "CR", "PR", "SD", "PD"]
    _workbook(d / "Bodei_2011.xlsx", head, [["Bodei 2011", "Overall", 51, 51, 1, 14, 20, 16]])
    # another layout: the columns in another order, a title row, and a planted slip (counts add to 50, not 44)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Extraction"
    ws.append(["Ezziddin 2014 extraction form"])
    ws.append(["Study", "N evaluable", "CR", "PR", "SD", "PD", "Cohort", "N enrolled"])
    ws.append(["Ezziddin 2014", 44, 0, 10, 20, 20, "Overall", 74])
    wb.save(d / "Ezziddin_2014.xlsx")
    return d


def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([CURATE, *map(str, args)], capture_output=True, text=True, timeout=300)


def _keys(path: Path) -> list:
    data = json.loads(path.read_text())
    return sorted((f["rule"], f.get("file"), f.get("sheet"), f.get("row"), f.get("column"), f["message"])
                  for f in data["findings"] if f["severity"] != "info")


def test_map_a_folder_then_layout_gives_the_same_findings(folder, tmp_path):
    lay = tmp_path / "L.yaml"
    m = _run("map", folder, "-o", lay)
    assert m.returncode == 0, m.stderr
    assert "Bodei_2011.xlsx" in m.stdout and "Ezziddin_2014.xlsx" in m.stdout
    loaded = load_layout(lay)
    assert isinstance(loaded, LayoutSet)
    assert [w.workbook for w in loaded.workbooks] == ["Bodei_2011.xlsx", "Ezziddin_2014.xlsx"]
    assert [w.sheets[0].header_rows for w in loaded.workbooks] == [[1], [2]]  # each workbook its own layout
    plain, with_layout = tmp_path / "plain.json", tmp_path / "layout.json"
    a = _run("validate", folder, "--json", plain, "-q")
    b = _run("validate", folder, "--layout", lay, "--json", with_layout, "-q")
    assert a.returncode == b.returncode == 1, (a.stderr, b.stderr)
    assert _keys(plain) == _keys(with_layout)
    assert any(k[0] == "response-sum-mismatch" and k[1].endswith("Ezziddin_2014.xlsx") for k in _keys(plain))


def test_a_folder_layout_without_a_workbook_is_refused_in_one_line(folder, tmp_path):
    lay = tmp_path / "L.yaml"
    assert _run("map", folder, "-o", lay).returncode == 0
    _workbook(folder / "Lim_2020.xlsx", ["Study", "Cohort", "N evaluable", "CR", "PR", "SD", "PD"],
              [["Lim 2020", "Overall", 48, 0, 16, 20, 12]])
    r = _run("validate", folder, "--layout", lay)
    assert r.returncode == 2 and "no layout for workbook 'Lim_2020.xlsx'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_a_one_workbook_layout_file_is_still_one_layout(folder, tmp_path):
    lay = tmp_path / "L.yaml"
    assert _run("map", folder / "Bodei_2011.xlsx", "-o", lay).returncode == 0
    assert isinstance(load_layout(lay), Layout)
