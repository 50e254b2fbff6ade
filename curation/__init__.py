"""curation: check systematic-review extraction forms, reconcile reviewers, pool as metafor does.

The stages, one module each: :mod:`~curation.reading` (workbook -> raw cells with provenance),
:mod:`~curation.normalise` (typed, canonical values), :mod:`~curation.rules` (the checks),
:mod:`~curation.validation` (what passes; the clean dataset), :mod:`~curation.reconcile` (two
reviewers), :mod:`~curation.pool` (the statistics), :mod:`~curation.report` (page, annotated
forms) and :mod:`~curation.cli` (the ``curate`` command).

Imports are lazy so that ``import curation`` (and ``curate --help``) stays quick.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_schema": ("curation.schema", "load_schema"),
    "validate": ("curation.validation", "validate"),
    "ValidationResult": ("curation.validation", "ValidationResult"),
    "Finding": ("curation.findings", "Finding"),
    "UnusableInputError": ("curation.errors", "UnusableInputError"),
    "run_job": ("curation.run", "run_job"),
    "pandera_schemas": ("curation.handoff", "pandera_schemas"),
    "analysis_r_script": ("curation.handoff", "analysis_r_script"),
    "data_package": ("curation.handoff", "data_package"),
    "gx_suite": ("curation.handoff", "gx_suite"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'curation' has no attribute {name!r}")
