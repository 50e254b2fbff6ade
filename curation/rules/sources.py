"""Rules about figures checked against their source articles (:mod:`curation.sources`).

The codes are declared here, in the one registry, from the list that :mod:`curation.sources.codes`
keeps beside the verification stage (data only: no article reader is imported).
"""

from __future__ import annotations

from ..sources.codes import SOURCE_RULES
from .registry import declare

for _code, _severity, _summary, _scope in SOURCE_RULES:
    declare(_code, _severity, _summary, _scope)
