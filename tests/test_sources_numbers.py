"""The normaliser and the number parser of the source check: the contract's examples, and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.sources.normalise import normalise, quote
from curation.sources.numbers import find_numbers, same_at_precision


def nums(text):
    return [(n.printed, n.value, n.role, n.percent) for n in find_numbers(normalise(text)[0])]


@pytest.mark.parametrize("text,expected", [
    ("15/46 (32.6%)", [("15", 15, "numerator", False), ("46", 46, "denominator", False), ("32.6", 32.6, "estimate", True)]),
    ("15 of 46 patients", [("15", 15, "numerator", False), ("46", 46, "denominator", False)]),
    ("30.9 (95% CI 22.7–39.0)", [("30.9", 30.9, "estimate", False), ("95", 95, "level", True),
                                 ("22.7", 22.7, "low", False), ("39.0", 39.0, "high", False)]),
    ("0.72 [0.60–0.86]", [("0.72", 0.72, "estimate", False), ("0.60", 0.6, "low", False), ("0.86", 0.86, "high", False)]),
    ("HR 0.72; 95% CI 0.60 to 0.86", [("0.72", 0.72, "estimate", False), ("95", 95, "level", True),
                                      ("0.60", 0.6, "low", False), ("0.86", 0.86, "high", False)]),
    ("(1.38, 1.86)", [("1.38", 1.38, "low", False), ("1.86", 1.86, "high", False)]),
    ("HR 1·14 [95% CI 0·96–1·36]", [("1.14", 1.14, "estimate", False), ("95", 95, "level", True),
                                    ("0.96", 0.96, "low", False), ("1.36", 1.36, "high", False)]),
    ("difference −0.5 (−1.2 to 0.3)", [("-0.5", -0.5, "estimate", False), ("-1.2", -1.2, "low", False),
                                       ("0.3", 0.3, "high", False)]),
    ("1,063 women and 1\u2009063 men", [("1,063", 1063, "estimate", False), ("1\u2009063", 1063, "estimate", False)]),
    ("Fifty-one had seven; one hundred", [("Fifty-one", 51, "estimate", False), ("seven", 7, "estimate", False),
                                          ("one hundred", 100, "estimate", False)]),
    ("P = 0.03 and p<.001", [("0.03", 0.03, "p", False), (".001", 0.001, "p", False)]),
    ("12.3 ± 4.5", [("12.3", 12.3, "estimate", False), ("4.5", 4.5, "sd", False)]),
])
def test_composites(text, expected):
    assert nums(text) == [(a, float(b), c, d) for a, b, c, d in expected]


def test_normalisation_keeps_offsets_to_the_original():
    text = "The e\ufb00ect on progres-\nsion\u00ad-free survival was 0\u00b76\u2009months \u2212 see\u200b table"
    norm, offs = normalise(text)
    assert norm == "The effect on progression-free survival was 0.6\u2009months - see table"
    i = norm.index("0.6")
    assert quote(text, offs, i, i + 3, width=20).startswith("was 0\u00b76") or "0\u00b76" in quote(text, offs, i, i + 3)


@pytest.mark.parametrize("form,printed,dec,same", [
    (30.87, 30.9, 1, True), (30.9, 30.87, 2, True), (32.2, 32.2, 1, True), (1.14, 1.0, 0, False),
    (2.3, 2.0, 0, False), (10.22, 10.2, 1, False), (0.889, 0.89, 2, False), (73.3, 73.35, 2, False),
    (73.4, 73.35, 2, True), (24.8, 28.4, 1, False),
])
def test_precision(form, printed, dec, same):
    assert same_at_precision(form, printed, dec) is same


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab 1.-\n\u00ad\u2013\u2212\u00b7\u2009\ufb01\u200b%()/")), max_size=60))
def test_normalise_offsets_are_monotone_and_in_range(text):
    norm, offs = normalise(text)
    assert len(offs) == len(norm) + 1
    assert all(0 <= o <= len(text) for o in offs)
    assert offs == sorted(offs)
    assert "  " not in norm and not norm.startswith(" ") and not norm.endswith(" ")
    find_numbers(norm)  # never raises


@settings(max_examples=60, deadline=None)
@given(st.decimals(min_value=0, max_value=100000, places=2, allow_nan=False, allow_infinity=False),
       st.sampled_from(["", "%", " months"]))
def test_a_printed_number_is_read_back(value, suffix):
    text = f"was {value}{suffix} in"
    got = [n for n in find_numbers(normalise(text)[0])]
    assert len(got) == 1 and abs(got[0].value - float(value)) < 1e-9
    assert got[0].percent == (suffix == "%")
    assert same_at_precision(float(value), got[0].value, got[0].decimals)
