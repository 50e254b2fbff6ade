"""What the rule tests assert of a finding's ``involves``: its own field and every cited cell's field.

A finding names the fields it involves so that selection excludes an erroneous record from the
analyses that use one of them, and only those. Every cell its message cites (``outcomes!F12``,
``studies!H2``) must therefore be among them: a cell cited but not involved would let an
analysis that uses that cell take a record whose error is about it.
"""

from __future__ import annotations

import re
from typing import Any

from curation.findings import Finding, quote_sheet
from curation.rules import REGISTRY

_CELL = re.compile(r"((?:'(?:[^']|'')+')|[A-Za-z_][A-Za-z0-9_.]*)!([A-Z]{1,3})(\d+)\b")


def cited_fields(result: Any, finding: Finding) -> set[str]:
    """The fields of the cells ``finding``'s message cites, as its ``involves`` names them
    (``field`` on its own contract sheet, ``sheet.field`` on another)."""
    where: dict[tuple[str, str], str] = {}
    for sheet, table in result.tables.items():
        for file in set(table.files):
            title = quote_sheet(table.title(file))
            for fname in result.schema.sheets[sheet].fields:
                letter = table.letter(file, fname)
                if letter:
                    name = fname if sheet == finding.contract_sheet else f"{sheet}.{fname}"
                    where.setdefault((title, letter), name)
    out = set()
    for title, letter, _row in _CELL.findall(finding.message):
        if (title, letter) in where:
            out.add(where[(title, letter)])
    return out


def assert_involves(result: Any, finding: Finding) -> None:
    """``finding.fields`` holds its own field; a check's ``involves`` also every field its message cites."""
    if finding.field:
        assert finding.field in finding.fields, (finding.rule, finding.field, finding.fields)
    rule = REGISTRY[finding.rule]
    if rule.scope == "check" and finding.row is not None:
        assert finding.involves, (finding.rule, "a check's finding must fill involves")
        if finding.field:
            assert finding.involves[0] == finding.field, (finding.rule, finding.involves)
        missing = cited_fields(result, finding) - set(finding.involves)
        assert not missing, (finding.rule, finding.message, finding.involves, missing)
