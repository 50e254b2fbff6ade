"""Figures read by hand from the real articles in shared/data/articles (their place in the article), and the
slips a reviewer makes (transposed, dropped and doubled digits): the corpus of tests/test_sources_real.py and of
the located / caught / false-alarm figures quoted in docs/sources.md."""

from __future__ import annotations

from pathlib import Path

PFS = ("progression-free survival", "PFS", "median PFS")
OS = ("overall survival", "OS", "median OS")


def data_dir() -> Path | None:
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "shared" / "data"
        if (cand / "articles").is_dir():
            return cand
    return None


# (file, value as typed, terms, role, kind, where: page number (PDF) or a piece of the section (XML))
FIGURES: list[tuple[str, str, tuple[str, ...], str, str, object]] = [
    ("pectasides2012.nxml", "285", ("eligible patients", "eligible"), "value", "integer", "Results"),
    ("pectasides2012.nxml", "10.2", PFS, "value", "number", "Results"),
    ("pectasides2012.nxml", "9.0", PFS, "low", "number", "Results"),
    ("pectasides2012.nxml", "11.5", PFS, "high", "number", "Results"),
    ("pectasides2012.nxml", "25.3", OS, "value", "number", "Results"),
    ("pectasides2012.nxml", "22.1", OS, "low", "number", "Results"),
    ("pectasides2012.nxml", "38.5", ("objective response", "responded", "response rate"), "value", "percentage",
     "Results"),
    ("pectasides2012.nxml", "143", ("randomized", "randomized to group A"), "value", "integer", "Results"),
    ("pectasides2012.nxml", "0.74", PFS, "p", "p_value", "Results"),
    ("hayes2016.nxml", "1.24", ("hazard ratio", "HR", "melanoma-specific survival"), "value", "number", ("Abstract", "Results")),
    ("hayes2016.nxml", "1.01", ("hazard ratio", "HR", "melanoma-specific survival"), "low", "number", ("Abstract", "Results")),
    ("hayes2016.nxml", "1.53", ("hazard ratio", "HR", "melanoma-specific survival"), "high", "number", ("Abstract", "Results")),
    ("hayes2016.nxml", "900", ("randomly assigned", "randomised"), "value", "integer", ("Abstract", "Results")),
    ("hayes2016.nxml", "494", ("died", "deaths"), "value", "integer", ("Abstract", "Results")),
    ("hayes2016.nxml", "8.8", ("median follow-up", "follow-up"), "value", "number", ("Abstract", "Results")),
    ("hayes2016.nxml", "0.96", ("hazard ratio", "HR", "overall survival"), "low", "number", ("Abstract", "Results")),
    ("musolino2017.nxml", "97", ("enrolled",), "value", "integer", ("Abstract", "Results")),
    ("musolino2017.nxml", "5.5", PFS, "value", "number", ("Abstract", "Results")),
    ("musolino2017.nxml", "3.8", PFS, "low", "number", ("Abstract", "Results")),
    ("musolino2017.nxml", "14.0", PFS, "high", "number", ("Abstract", "Results")),
    ("musolino2017.nxml", "0.68", ("HR", "hazard ratio"), "value", "number", ("Abstract", "Results")),
    ("musolino2017.nxml", "10.9", PFS, "value", "number", ("Abstract", "Results")),
    ("musolino2017.nxml", "12", ("PR", "partial response"), "value", "integer", "Table 2"),
    ("musolino2017.nxml", "27.7", ("overall response rate", "ORR"), "value", "percentage", "Table 2"),
    ("musolino2017.nxml", "15.6", ("overall response rate", "ORR"), "low", "number", "Table 2"),
    ("musolino2017.nxml", "42.6", ("overall response rate", "ORR"), "high", "number", "Table 2"),
    ("pectasides2012.nxml", "79", ("male",), "value", "integer", "Table 1"),
    ("hayes2016.nxml", "1.18", ("tumour thickness", "thickness"), "value", "number", "Table 2"),
    ("dodd2014.pdf", "2,212", ("randomised", "recruited"), "value", "integer", 5),
    ("dodd2014.pdf", "1.58", ("adjusted difference in means", "HEI"), "value", "number", 2),
    ("dodd2014.pdf", "0.89", ("adjusted difference in means", "HEI"), "low", "number", 2),
    ("dodd2014.pdf", "2.27", ("adjusted difference in means", "HEI"), "high", "number", 2),
    ("dodd2014.pdf", "73.35", ("HEI", "Healthy Eating Index"), "value", "number", (2, 12)),
    ("dodd2014.pdf", "87.9", ("valid dietary questionnaire", "Lifestyle Advice"), "value", "percentage", 5),
    ("okely2017.pdf", "1518", ("girls", "assessed at baseline"), "value", "integer", 1),
    ("okely2017.pdf", "0.5", ("adjusted difference", "MVPA"), "value", "number", (1, 6)),
    ("okely2017.pdf", "0.99", ("adjusted difference", "MVPA"), "high", "number", (1, 6)),
    ("okely2017.pdf", "13.6", ("mean age", "age"), "value", "number", (1, 6)),
    ("okely2017.pdf", "24", ("schools", "secondary schools"), "value", "integer", (1, 6)),
    ("okely2017.pdf", "-2.81", ("Sedentary activity",), "value", "number", 7),  # a landscape (rotated) table
    ("okely2017.pdf", "16.19", ("Sedentary activity",), "high", "number", 7),
    ("okely2017.pdf", "2.16", ("Total PA", "TPA"), "value", "number", 7),
    ("hawkes2012.pdf", "22", ("relatives", "participants"), "value", "integer", (1, 5)),
    ("hawkes2012.pdf", "47.3", ("age", "Age, mean (SD)"), "value", "number", 5),
    ("hawkes2012.pdf", "150.7", ("moderate-vigorous physical activity", "physical activity"), "value", "number", (1, 5)),
    ("hawkes2012.pdf", "59.1", ("moderate-vigorous physical activity",), "value", "percentage", (1, 5)),
    ("hawkes2012.pdf", "81.8", ("female", "Gender"), "value", "percentage", 5),
]

# figures other trials report, quoted in an introduction or discussion (the article does not report them)
FOREIGN: list[tuple[str, str, tuple[str, ...], str]] = [
    ("hawkes2012.pdf", "93", ("cases", "aged 50 years"), "percentage"),
    ("hawkes2012.pdf", "74", ("Bowel health to better health", "minimal contact intervention"), "integer"),
    ("dodd2014.pdf", "18", ("relative risk reduction",), "percentage"),
    ("hawkes2012.pdf", "27", ("physiology",), "percentage"),
    ("okely2017.pdf", "20", ("physical activity", "adolescent girls"), "percentage"),
]


def slips(text: str) -> list[str]:
    """A reviewer's slips of a typed figure: adjacent digits transposed, a digit dropped, a digit doubled
    (only those that change the value and keep it a number)."""
    plain = text.replace(",", "")
    out: list[str] = []
    digits = [i for i, c in enumerate(plain) if c.isdigit()]
    for a, b in zip(digits, digits[1:]):
        if b == a + 1 and plain[a] != plain[b]:
            out.append(plain[:a] + plain[b] + plain[a] + plain[b + 1:])
    for i in digits:
        out.append(plain[:i] + plain[i + 1:])
        out.append(plain[:i] + plain[i] + plain[i:])
    good = []
    for s in out:
        try:
            v = float(s)
        except ValueError:
            continue
        if s.startswith("0") and not s.startswith("0.") or s.endswith(".") or s.startswith("."):
            continue
        if abs(v - float(plain)) > 1e-12 and s not in good:
            good.append(s)
    return good
