"""The rule codes of the source check, declared in the one registry (:mod:`curation.rules` imports this list).

Kept apart from the stage so that the registry can import it without importing any article reader.
"""

from __future__ import annotations

#: (code, severity, summary, scope) of every finding the source check reports.
SOURCE_RULES: tuple[tuple[str, str, str, str], ...] = (
    ("source-mismatch", "warning", "The article prints the field's terms with another value of the same kind, and "
     "the form's value is not next to them: quotes the printed value and its place.", "source"),
    ("source-inconsistent", "warning", "The article prints two different values for the same terms (abstract vs "
     "table): both places are quoted; check which one the review should use.", "source"),
    ("source-value-elsewhere", "info", "The form's value is printed in the article, but not next to the words that "
     "name the field (check that it is the right figure).", "source"),
    ("source-absent", "info", "Neither the form's value nor the field's terms with a value are printed in the "
     "article (a figure from a supplement, a figure computed by the reviewer, or terms the schema lacks).",
     "source"),
    ("source-unreadable", "warning", "A study whose article could not be checked: no file matched it (or several "
     "did), or the file has no text layer, is encrypted, broken or too large: one finding per study.", "source"),
)
