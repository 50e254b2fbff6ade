"""report.html in a real browser: headless Chromium loads the page from disk, its script renders
the findings from the page's data a page (100 rows) at a time, filters driven by the URL hash work
on all of them, sorting, paging, the inline SVG plots, and a page of 10,000 findings. Skipped when
Chromium is not installed (``.ci/run`` installs it)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from builders import write_form
from curation.cli import main
from test_run import planted

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = [pytest.mark.browser, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--disable-extensions", "--mute-audio"]


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=90, check=False)


class Rows(HTMLParser):
    """The findings table's rows as the browser left them (attributes, cell texts), and the SVGs."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self.svgs = 0
        self.status: dict = {}
        self.pager: dict = {}
        self.body: dict = {}
        self._in_table = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        if tag == "table" and a.get("id") == "findings-table":
            self._in_table = True
        if tag == "tr" and self._in_table and "data-severity" in a:
            self.rows.append({**a, "cells": []})
        if tag == "td" and self._in_table and self.rows:
            self._cell = []
        if tag == "svg":
            self.svgs += 1
        if a.get("id") == "filter-status":
            self.status = a
        if a.get("id") == "p-status":
            self.pager = a

    def handle_endtag(self, tag):
        if tag == "table" and self._in_table:
            self._in_table = False
        if tag == "td" and self._cell is not None:
            self.rows[-1]["cells"].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    @property
    def visible(self) -> list[dict]:
        return [r for r in self.rows if "hidden" not in r]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    form = write_form(tmp / "planted.xlsx", **planted())
    out = tmp / "out"
    r = CliRunner().invoke(main, ["run", str(form), "-o", str(out), "-q"], catch_exceptions=False)
    assert r.exit_code == 1, r.output
    findings = json.loads((out / "findings.json").read_text())["findings"]
    return {"tmp": tmp, "out": out, "url": (out / "report.html").resolve().as_uri(), "findings": findings}


def dom(page, suffix: str = "") -> Rows:
    res = chromium(page["tmp"], "--dump-dom", page["url"] + suffix)
    assert res.returncode == 0, res.stderr[-2000:]
    parsed = Rows()
    parsed.feed(res.stdout)
    assert parsed.body.get("data-ready") == "1", "the page's script did not run to the end"
    return parsed


def test_page_shows_a_row_per_finding_and_the_plots(page):
    d = dom(page)
    assert len(d.rows) == len(page["findings"]) == len(d.visible) < 100  # one page holds them all
    assert [r["cells"][0] for r in d.rows] == [f["cell"] or f["sheet"] for f in page["findings"]]
    assert [r["data-rule"] for r in d.rows] == [f["rule"] for f in page["findings"]]
    assert d.status["data-visible"] == str(len(page["findings"]))
    assert d.pager["data-pages"] == "1"
    analysis = json.loads((page["out"] / "analysis.json").read_text())
    shown = [a for a in analysis["analyses"] if a["role"] in ("primary", "subgroup_test") and a.get("estimate") is not None]
    funnels = [a for a in shown if a["role"] == "primary" and a["k"] >= 10]
    assert d.svgs == len(shown) + len(funnels)


def test_filters_from_the_url_hash(page):
    errors = [f for f in page["findings"] if f["severity"] == "error"]
    d = dom(page, "#severity=error")
    assert len(d.visible) == len(errors) < len(page["findings"])
    assert all(r["data-severity"] == "error" for r in d.visible)
    assert d.status["data-visible"] == str(len(errors))
    want = [f for f in page["findings"] if f["rule"] == "percentage-mismatch" and f["sheet"] == "outcomes"
            and f["study_id"] == "S02"]
    d = dom(page, "#rule=percentage-mismatch&sheet=outcomes&study=S02")
    assert [r["cells"][0] for r in d.visible] == [f["cell"] for f in want] and len(want) == 2


def test_sort_by_a_column(page):
    d = dom(page, "#sort=-2")  # severity, descending: info, then warnings, then errors
    ranks = {"error": 0, "warning": 1, "info": 2}
    seen = [ranks[r["data-severity"]] for r in d.rows]
    assert seen == sorted(seen, reverse=True) and len(set(seen)) > 1
    d = dom(page, "#sort=3")  # study, ascending
    studies = [r["cells"][3].lower() for r in d.rows]
    assert studies == sorted(studies)


@pytest.fixture(scope="module")
def big_page(tmp_path_factory):
    """A validation page of 10,000 findings (3 severities, 5 rules, 2 sheets, 500 studies), with
    form text that tries to close the data island."""
    from curation.findings import Finding
    from curation.report import render_validation_page
    from curation.validation import validate

    tmp = tmp_path_factory.mktemp("big")
    form = write_form(tmp / "f.xlsx", **planted())
    result = validate(form)
    rules = ["response-sum-mismatch", "percentage-mismatch", "median-outside-ci", "asymmetric-ci", "ki67-contradicts-grade"]
    sev = ["error", "warning", "info"]
    findings = tuple(
        Finding(str(form), ["outcomes", "studies"][i % 2], 2 + i, "F", "n_evaluable", f"S{i % 500:03d}",
                rules[i % 5], sev[i % 3], f"message {i} </script><script>window.bad = 1</script><!--", "x</script>")
        for i in range(10_000))
    page_text = render_validation_page(dataclasses.replace(result, finding_list=findings))
    html = tmp / "big.html"
    html.write_text(page_text)
    return {"tmp": tmp, "url": html.resolve().as_uri(), "findings": findings, "size": len(page_text.encode())}


def test_a_page_of_10000_findings_opens_filters_and_pages(big_page):
    assert big_page["size"] < 5_000_000
    d = dom(big_page)
    assert len(d.rows) == 100 and d.status["data-visible"] == "10000" and d.pager["data-pages"] == "100"
    assert [int(r["data-i"]) for r in d.rows] == list(range(100))
    assert d.rows[0]["cells"][5].endswith("</script><script>window.bad = 1</script><!--")  # text, shown as text
    # filters work on all 10,000, not on the page shown
    d = dom(big_page, "#severity=warning")
    assert d.status["data-visible"] == str(sum(f.severity == "warning" for f in big_page["findings"]))
    assert len(d.rows) == 100 and all(r["data-severity"] == "warning" for r in d.rows)
    d = dom(big_page, "#rule=asymmetric-ci&severity=error")
    want = [i for i, f in enumerate(big_page["findings"]) if f.rule == "asymmetric-ci" and f.severity == "error"]
    assert d.status["data-visible"] == str(len(want)) and [int(r["data-i"]) for r in d.rows] == want[:100]
    # paging: page 3 of the filtered list, and the last page
    d = dom(big_page, "#severity=info&page=3")
    info = [i for i, f in enumerate(big_page["findings"]) if f.severity == "info"]
    assert d.pager["data-page"] == "3" and [int(r["data-i"]) for r in d.rows] == info[200:300]
    d = dom(big_page, "#page=100")
    assert [int(r["data-i"]) for r in d.rows] == list(range(9_900, 10_000))
    # sorting works on all of them: study descending puts S499's 20 findings first (in form order)
    d = dom(big_page, "#sort=-3")
    assert [r["cells"][3] for r in d.rows[:21]] == ["S499"] * 20 + ["S498"]
    assert [int(r["data-i"]) for r in d.rows[:2]] == [499, 999]


def test_screenshot(page):
    shot = page["tmp"] / "report.png"
    res = chromium(page["tmp"], "--window-size=1280,2000", f"--screenshot={shot}", page["url"])
    assert res.returncode == 0, res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a page, not a blank
