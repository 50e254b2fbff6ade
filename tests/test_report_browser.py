"""report.html in a real browser: headless Chromium loads the page from disk, its script runs,
and the DOM it leaves shows one row per finding, filters driven by the URL hash, sorting, and
the inline SVG plots. Skipped when Chromium is not installed (``.ci/run`` installs it)."""

from __future__ import annotations

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
    assert len(d.rows) == len(page["findings"]) == len(d.visible)
    assert [r["cells"][0] for r in d.rows] == [f["cell"] or f["sheet"] for f in page["findings"]]
    assert d.status["data-visible"] == str(len(page["findings"]))
    analysis = json.loads((page["out"] / "analysis.json").read_text())
    shown = [a for a in analysis["analyses"] if a["role"] in ("primary", "subgroup_test") and a.get("estimate") is not None]
    funnels = [a for a in shown if a["role"] == "primary"]
    assert d.svgs == len(shown) + len(funnels)


def test_filters_from_the_url_hash(page):
    errors = [f for f in page["findings"] if f["severity"] == "error"]
    d = dom(page, "#severity=error")
    assert len(d.visible) == len(errors) < len(d.rows)
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


def test_screenshot(page):
    shot = page["tmp"] / "report.png"
    res = chromium(page["tmp"], "--window-size=1280,2000", f"--screenshot={shot}", page["url"])
    assert res.returncode == 0, res.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a page, not a blank
