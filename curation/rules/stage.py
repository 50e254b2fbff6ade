"""The check stage: every check the schema names, run over whole columns."""

from __future__ import annotations

from ..findings import Finding
from .context import Context
from .registry import REGISTRY


def run_checks(ctx: Context) -> list[Finding]:
    """Every check the schema names, each over whole columns."""
    out: list[Finding] = []
    for sheet, checks in ctx.schema.checks.items():
        if sheet not in ctx.tables or len(ctx.tables[sheet]) == 0:
            continue
        for entry in checks:
            rule = REGISTRY[entry.rule]
            params = entry.params
            # a check on a field whose column is absent from every form has nothing to look at
            needed = []
            for p in rule.params:
                v = params.get(p.name)
                if p.kind in ("field",) and v:
                    needed.append(v)
                elif p.kind == "fields" and v:
                    needed.extend(v)
            if any(f not in ctx.tables[sheet].data for f in needed):
                continue
            out.extend(rule.func(ctx, sheet, entry.severity or rule.severity, **params))
    return out
