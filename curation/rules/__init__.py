"""The rules: every check, registered in one place with a stable code and a severity.

Two kinds of rule live here:

* **field rules** apply to every field of a schema from its declaration (``required``, ``min``,
  ``pattern``, ``vocabulary`` ...). Column-level ones run as a pandera schema compiled from the
  YAML (:func:`column_schema`), whose failure-cases table becomes findings.
* **checks** are cross-field and cross-sheet rules that a schema names under ``checks:`` with
  the fields they work on (``rule: response-sum-mismatch, parts: [cr, pr, sd, pd] ...``). Each
  is a small vectorised function registered with :func:`check`.

The registry (:data:`REGISTRY`, :mod:`.registry`) is the single list of rule codes: ``curate
rules`` prints it, ``docs/rules.md`` documents each code and the tests check that every code has
both. The rules themselves are grouped by what they are about, one module each (as frictionless
keeps its ``checks/``):

========================  ==================================================================
:mod:`.layout`            reading the workbook and its layout (structure codes)
:mod:`.fields`            fields and vocabularies (cell and field codes; the pandera schema)
:mod:`.counts`            counts, percentages, arms against the number randomised
:mod:`.adverse_events`    adverse-event counts
:mod:`.times`             medians and CIs, follow-up, enrolment
:mod:`.cohorts`           grade, cohorts, dosing, studies sharing participants
:mod:`.effects`           two-arm effects, CIs and p-values
:mod:`.means`             arm means and SDs
:mod:`.equivalences`      one quantity stated twice; an effect against its trial's arm rows
:mod:`.sources`           figures checked against their source articles (codes only)
:mod:`.stage`             the check stage that runs them all
========================  ==================================================================
"""

from __future__ import annotations

# registration order is the order `curate rules` lists them in
from .registry import (EXCLUDES, NUMBER, REGISTRY, Param, Rule, all_rules, check, check_problems, companion, declare,
                       excludes_record)
from . import layout as _layout  # noqa: F401  (structure codes)
from .fields import column_schema, run_field_rules, run_links
from . import sources as _sources  # noqa: F401  (codes of the source check)
from .context import Context
from .counts import rate_matches
from . import adverse_events as _adverse_events  # noqa: F401
from . import times as _times  # noqa: F401
from .cohorts import parse_band
from .effects import arm_effect, p_range_from_ci
from . import equivalences as _equivalences  # noqa: F401
from .means import mean_sd_from_quantiles
from .stage import Coverage, apply_severities, coverage_rows, never_run_checks, run_check_stage, run_checks

__all__ = ["EXCLUDES", "NUMBER", "REGISTRY", "Context", "Coverage", "apply_severities", "coverage_rows", "Param", "Rule", "all_rules", "arm_effect", "check", "check_problems",
           "column_schema", "companion", "declare", "excludes_record", "mean_sd_from_quantiles", "never_run_checks", "p_range_from_ci", "parse_band",
           "rate_matches", "run_check_stage", "run_checks", "run_field_rules", "run_links"]


def _register_schema_validator() -> None:
    from ..registry import register_schema_validator

    register_schema_validator(check_problems)


_register_schema_validator()
