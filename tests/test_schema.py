"""Schema files: the shipped one loads; malformed ones get a message naming the line;
another review team's schema works without Python."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from builders import write_form
from curation.errors import SchemaError
from curation.schema import load_schema, resolve_schema_path
from curation.validation import validate


def test_shipped_schema_matches_contract():
    s = load_schema()
    assert list(s.sheets) == ["studies", "outcomes", "adverse_events"]
    assert s.sheets["outcomes"].key == ("study_id", "cohort")
    grade = s.vocabularies["grade"]
    assert grade.canonical("G1/G2") == grade.canonical("grade 1-2") == grade.canonical("G1–2") == "G1-2"
    assert grade.canonical("not reported") == "unknown" and grade.canonical("G4") is None
    assert grade.rejection("High grade").startswith("ambiguous")
    rp = s.vocabularies["radiopharmaceutical"]
    assert rp.canonical("Lutathera") == rp.canonical("[177Lu]Lu-DOTA-TATE") == "177Lu-DOTATATE"
    assert rp.canonical("177Lu-edotreotide") == "177Lu-DOTATOC"
    rc = s.vocabularies["response_criteria"]
    assert rc.canonical("RECIST v1.1") == rc.canonical("recist1.1") == "RECIST 1.1"
    assert {t.value for t in rc.terms if t.eligible} == {"RECIST 1.0", "RECIST 1.1", "WHO", "RECIST"}
    assert s.sheets["studies"].fields["year"].max_value >= 2027


def write_schema(tmp_path, text):
    p = tmp_path / "s.yaml"
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize("text,line,fragment", [
    ("name: x\nsheets:\n  a:\n    key: [id]\n    fields:\n      id: {type: txt}\n", 6, "type"),
    ("name: x\nsheets:\n  a:\n    key: [idx]\n    fields:\n      id: {type: text}\n", 4, "key field 'idx'"),
    ("name: x\nsheets:\n  a:\n    key: [id]\n    fields:\n      id: {type: vocabulary, vocabulary: nope}\n", 6,
     "vocabulary 'nope'"),
    ("name: x\nsheets:\n  a:\n    key: [id]\n    fields:\n      id: {type: text}\n"
     "checks:\n  a:\n    - rule: no-such-rule\n", 9, "unknown rule 'no-such-rule'"),
    ("name: x\nsheets:\n  a:\n    key: [id]\n    fields:\n      id: {type: text}\n"
     "checks:\n  a:\n    - rule: dcr-below-orr\n      dcr: id\n", 9, "needs parameter 'orr'"),
    ("name: x\nsheets: [\n", 3, "not valid YAML"),
    ("name: x\nsheets:\n  a:\n    key: [id]\n    fields:\n      id: {type: text, colour: red}\n", 6, "colour"),
])
def test_malformed_schema_names_the_line(tmp_path, text, line, fragment):
    p = write_schema(tmp_path, text)
    with pytest.raises(SchemaError) as exc:
        load_schema(p)
    msg = str(exc.value)
    assert f"line {line}" in msg and fragment in msg and str(p) in msg


def test_unknown_schema_name():
    with pytest.raises(SchemaError, match="no shipped schema of that name"):
        resolve_schema_path("nope")


OTHER_REVIEW = """
name: ici_melanoma
title: Immune checkpoint inhibitors in melanoma (single-arm)
vocabularies:
  drug:
    terms:
      - value: pembrolizumab
        aliases: [Keytruda, pembro]
      - value: nivolumab
        aliases: [Opdivo]
sheets:
  trials:
    key: [trial_id]
    fields:
      trial_id: {type: text, required: true, pattern: '^T[0-9]+$'}
      drug: {type: vocabulary, vocabulary: drug, required: true}
      n_treated: {type: integer, required: true, min: 1}
  results:
    key: [trial_id, arm]
    parent: {sheet: trials, key: trial_id}
    fields:
      trial_id: {type: text, required: true}
      arm: {type: text, required: true}
      n_assessed: {type: integer, min: 1}
      responders: {type: integer, min: 0}
      non_responders: {type: integer, min: 0}
      response_pct: {type: percentage, min: 0, max: 100}
checks:
  results:
    - rule: response-sum-mismatch
      parts: [responders, non_responders]
      total: n_assessed
    - rule: percentage-mismatch
      rate: response_pct
      events: [responders]
      total: n_assessed
    - rule: evaluable-exceeds-enrolled
      field: n_assessed
      limit: trials.n_treated
analysis:
  sheet: results
  cohort_field: arm
  overall_cohort: all
  outcomes:
    orr:
      label: Response rate
      kind: proportion
      events: [responders]
      total: n_assessed
  plan:
    - {outcome: orr}
"""


def test_another_review_without_python(tmp_path):
    import openpyxl

    s = load_schema(write_schema(tmp_path, OTHER_REVIEW))
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Trials"
    ws.append(["trial_id", "drug", "n_treated"])
    ws.append(["T1", "Keytruda", 50])
    ws.append(["T2", "Opdivo", 40])
    ws2 = wb.create_sheet("results")
    ws2.append(["trial_id", "arm", "n_assessed", "responders", "non_responders", "response_pct"])
    ws2.append(["T1", "All", 48, 16, 32, 33.3])
    ws2.append(["T2", "all", 45, 12, 30, "28.6%"])
    p = tmp_path / "f.xlsx"
    wb.save(p)
    r = validate(p, s)
    got = sorted((f.rule, f.cell) for f in r.finding_list)
    # T2: 45 assessed of 40 treated; 12/45 = 26.7%, not 28.6%; 12 + 30 < 45 is no error without NE
    assert got == [("evaluable-exceeds-enrolled", "results!C3"), ("percentage-mismatch", "results!F3")]
    assert list(r.clean["drug"]) == ["pembrolizumab"]
    assert list(r.clean["arm"]) == ["all"]
