"""Where the schema loader finds the validators of what a schema names but does not define.

The schema (:mod:`curation.schema`) is the foundation every stage imports; the rules
(:mod:`curation.rules`) sit above it and use it. So that the schema never imports the rules,
the rules module registers a validator here (``register_schema_validator``) that checks a
schema's ``checks:`` entries (known rule, its parameters, fields that exist and fit), and the
loader calls :func:`schema_problems`. The providers are imported by name the first time a
schema is checked, as plug-ins are.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Iterable

#: Modules that register schema validators when imported.
PROVIDERS: tuple[str, ...] = ("curation.rules",)

Problem = tuple[tuple[Any, ...], str]
_VALIDATORS: list[Callable[[Any], Iterable[Problem]]] = []


def register_schema_validator(func: Callable[[Any], Iterable[Problem]]) -> Callable[[Any], Iterable[Problem]]:
    """Register ``func(schema) -> [(location, message), ...]``; the location is a path in the YAML."""
    if func not in _VALIDATORS:
        _VALIDATORS.append(func)
    return func


def schema_problems(schema: Any) -> list[Problem]:
    """Every problem the registered validators find in ``schema`` (a schema or a partial one)."""
    if not _VALIDATORS:
        for name in PROVIDERS:
            importlib.import_module(name)
    out: list[Problem] = []
    for func in _VALIDATORS:
        out.extend(func(schema))
    return out
