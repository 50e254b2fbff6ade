"""The source check on real articles (shared/data/articles): figures read by hand are found at their page or
section, planted slips are mismatches, other trials' figures in an introduction or discussion are never found."""

from __future__ import annotations

import pytest

from sources_corpus import FIGURES, FOREIGN, data_dir, slips

DATA = data_dir()
pytestmark = pytest.mark.skipif(DATA is None, reason="shared/data/articles (the real articles) is not here")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from curation.sources.cache import read_cached
    from curation.sources.match import prepare

    cache = tmp_path_factory.mktemp("cache")
    out = {}
    for name in sorted({f[0] for f in FIGURES} | {f[0] for f in FOREIGN} | {"okely2017.pdf"}):
        art, _ = read_cached(DATA / "articles" / name, cache)
        assert art.problem is None, art.problem
        out[name] = prepare(art)
    return out


def _judge(prepared, name, text, terms, role, kind):
    from curation.sources.match import Want, judge
    from curation.sources.stage import parse_value

    value, dec, _ = parse_value(text)
    return judge([prepared[name]], value, terms, Want(role, kind), fdec=dec)


@pytest.mark.parametrize("name,text,terms,role,kind,where", FIGURES, ids=[f"{f[0]}-{f[1]}" for f in FIGURES])
def test_real_figure_found_at_its_place(prepared, name, text, terms, role, kind, where):
    j = _judge(prepared, name, text, terms, role, kind)
    assert j.status == "found", (j.status, j.place)
    wheres = where if isinstance(where, tuple) else (where,)
    if isinstance(wheres[0], int):
        assert j.place.page in wheres, j.place
    else:
        assert any(w in (j.place.section or "") or w == j.place.table for w in wheres), j.place
    assert len(j.place.quote) <= 200 and j.place.quote


def test_planted_slips_are_mismatches(prepared):
    caught, total, missed = 0, 0, []
    for name, text, terms, role, kind, _ in FIGURES:
        for slip in slips(text):
            j = _judge(prepared, name, slip, terms, role, kind)
            total += 1
            if j.status == "mismatch":
                caught += 1
            else:
                missed.append((name, text, slip, j.status))
    assert total > 150
    assert caught / total >= 0.9, (caught, total, missed)


@pytest.mark.parametrize("name,text,terms,kind", FOREIGN, ids=[f"{f[0]}-{f[1]}" for f in FOREIGN])
def test_other_trials_figures_are_never_found(prepared, name, text, terms, kind):
    from curation.sources.match import Want, find_value
    from curation.sources.stage import parse_value

    value, dec, _ = parse_value(text)
    # the figure is printed in the article, in its introduction or discussion ...
    everywhere = find_value([prepared[name]], value, terms, Want("value", kind), include_foreign=True, fdec=dec)
    assert any(h[3].kind in ("introduction", "discussion") and h[3].near_terms for h in everywhere)
    # ... and never counts as the study's own
    j = _judge(prepared, name, text, terms, "value", kind)
    assert j.status != "found", j
    assert j.place is None or j.place.kind not in ("introduction", "discussion", "references"), j


def test_no_number_only_in_a_discussion_is_found(prepared):
    """Every number printed only in an introduction, discussion or reference list, checked with the words
    next to it as its terms: never found."""
    from curation.sources.match import Want, find_value, judge

    checked = 0
    for name, prep in prepared.items():
        for pb in prep.blocks:
            if pb.block.kind not in ("introduction", "discussion"):
                continue
            for n in pb.nums:
                if n.word or n.role == "level" or find_value([prep], n.value, (), Want("value", "number"),
                                                             fdec=n.decimals):
                    continue  # the article's own sections print it too (or a figure that rounds to it)
                words = [w for w in pb.norm[max(0, n.start - 40):n.start].split() if w.isalpha() and len(w) > 3]
                if not words:
                    continue
                j = judge([prep], n.value, tuple(words[-2:]), Want("value", "number"), fdec=n.decimals)
                assert j.status != "found", (name, n, j)
                assert j.place is None or j.place.kind not in ("introduction", "discussion", "references"), j
                checked += 1
    print(f"{checked} numbers printed only in introductions or discussions checked")
    assert checked > 30


def test_reading_order_two_columns(prepared):
    """BMC's two-column pages read column by column: a sentence broken across lines stays whole."""
    prep = prepared["dodd2014.pdf"]
    text = " ".join(pb.norm for pb in prep.blocks if pb.block.page == 5)
    assert "we recruited and randomised 2,212 women, with 1,108 allocated to receive Lifestyle Advice and 1,104 " \
           "Standard Care" in text


def test_jats_table_cells_keep_row_and_column(prepared):
    prep = prepared["hayes2016.nxml"]
    cells = [pb.block for pb in prep.blocks if pb.block.kind == "table" and pb.block.row and pb.block.column]
    assert cells and all(c.table.startswith("Table") for c in cells)
    assert any("1 cm" in (c.column or "") for c in cells)


TRIPLES = [("pectasides2012.nxml", ("10.2", "9.0", "11.5"), ("progression-free survival", "PFS")),
           ("pectasides2012.nxml", ("25.3", "22.1", "28.6"), ("overall survival", "OS")),
           ("hayes2016.nxml", ("1.24", "1.01", "1.53"), ("hazard ratio", "HR")),
           ("hayes2016.nxml", ("1.14", "0.96", "1.36"), ("HR", "overall survival")),
           ("musolino2017.nxml", ("5.5", "3.8", "14.0"), ("progression-free survival", "PFS")),
           ("musolino2017.nxml", ("27.7", "15.6", "42.6"), ("overall response rate", "ORR")),
           ("dodd2014.pdf", ("1.58", "0.89", "2.27"), ("adjusted difference in means", "HEI")),
           ("okely2017.pdf", ("-2.81", "-21.74", "16.19"), ("Sedentary activity",))]


def test_estimates_and_bounds_checked_with_the_rows_other_figures(prepared):
    """A form's row gives each CI bound its estimate and other bound: every correct figure found, and a slip is
    a mismatch even where it lands on another figure printed next to the same words (94% here; the rest equal
    the printed value's rounding, 1.24 typed 1.2)."""
    from curation.sources.match import Want, judge
    from curation.sources.stage import parse_value

    caught = total = 0
    for name, trip, terms in TRIPLES:
        vals = [parse_value(t)[0] for t in trip]
        for k, role in enumerate(("value", "low", "high")):
            comp = tuple(v for i, v in enumerate(vals) if i != k)
            v, d, _ = parse_value(trip[k])
            j = judge([prepared[name]], v, terms, Want(role, "number"), fdec=d, companions=comp)
            assert j.status == "found", (name, trip[k], j)
            for slip in slips(trip[k]):
                v, d, _ = parse_value(slip)
                j = judge([prepared[name]], v, terms, Want(role, "number"), fdec=d, companions=comp)
                total += 1
                caught += j.status == "mismatch"
    assert total > 100 and caught / total >= 0.9, (caught, total)
