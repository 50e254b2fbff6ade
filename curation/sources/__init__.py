"""Checking extracted figures against their source articles (contract: ``shared/spec/sources.md``).

One module per step: :mod:`.articles` reads a PDF or JATS file into blocks of text with their place,
:mod:`.normalise` prepares text for matching, :mod:`.numbers` finds printed numbers and composites,
:mod:`.match` finds a figure at its printed precision next to its terms, :mod:`.stage` is the stage,
:mod:`.cache` keeps extracted text by file hash, :mod:`.model` holds the typed results.

The stage sits after validation (it takes the typed tables with their provenance) and imports nothing
above it. Heavy libraries (pypdfium2, lxml, pandas) are imported only when a function runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .model import Place, Verification, VerificationEntry

__all__ = ["verify_tables", "verify", "locate", "Place", "Verification", "VerificationEntry"]


def verify_tables(schema: Any, tables: Any, sources_dir: Any, *, cache_dir: Any = None) -> "Verification":
    """Check every verified cell of typed tables against the study's article; see :func:`.stage.verify_tables`."""
    from .stage import verify_tables as _impl

    return _impl(schema, tables, sources_dir, cache_dir=cache_dir)


def verify(forms: Any, sources_dir: Any, schema: Any = None, layout: Any = None, *, cache_dir: Any = None) -> Any:
    """Validate forms, then check them against their articles: ``(ValidationResult, Verification)``."""
    from .stage import verify as _impl

    return _impl(forms, sources_dir, schema=schema, layout=layout, cache_dir=cache_dir)


def locate(article_path: Any, value: Any, near: Any = (), *, cache_dir: Any = None) -> list["Place"]:
    """Every place where ``value`` is printed in an article, best first; see :func:`.match.locate`."""
    from .stage import locate as _impl

    return _impl(article_path, value, near=near, cache_dir=cache_dir)


def __getattr__(name: str) -> Any:
    if name in ("Place", "Verification", "VerificationEntry", "StudySources", "STATUSES"):
        from . import model

        return getattr(model, name)
    raise AttributeError(name)
