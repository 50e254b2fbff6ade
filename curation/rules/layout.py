"""Rules about reading the workbook and its layout (:mod:`curation.reading`, :mod:`curation.layout`)."""

from __future__ import annotations

from .registry import declare


# structure: reading the workbook (curation.reading)
declare("missing-sheet", "warning", "A contract sheet is not in the workbook.", "structure")
declare("empty-sheet", "info", "A contract sheet has no header and no data.", "structure")
declare("missing-column", "error", "A field has no column (error for a required field, info otherwise).", "structure")
declare("duplicate-column", "warning", "Two headers match the same field; the second is ignored.", "structure")
declare("unknown-column", "info", "A header matches no field; the column is kept but not checked.", "structure")
declare("merged-cell", "warning", "Merged cells: the top-left value is read into every row of the area (a label "
        "merged down over its rows is filled down, as info).", "structure")
declare("formula-without-value", "error", "A formula whose value was never calculated and saved.", "structure")
# layout: reading a workbook the team laid out its own way (curation.layout)
declare("inferred-layout", "info", "What was inferred of a workbook not in the template's layout: the sheet's contract "
        "sheets, its header rows, and each column read by a synonym, as a composite or with a unit.", "structure")
declare("unmatched-sheet", "info", "A sheet whose headers match no contract sheet; skipped.", "structure")
# the run and the schema's fit (curation.run, curation.layout): reported beside the data's findings
declare("analysis-pools-nothing", "warning", "An analysis of the plan pools nothing while its sheet has rows: the "
        "commonest reasons, or the arm labels found against those the schema pairs.", "structure")
declare("schema-fits-poorly", "warning", "Without --schema, a workbook whose headers match few fields of the default "
        "schema: names the shipped schemas its headers match best.", "structure")
declare("non-data-row", "info", "A row below the header that is not data (a Total/Sum/Mean/Pooled row, a note or "
        "source line, a repeated header, a blank separator); never read as a record.", "structure")
declare("hidden-row", "warning", "A hidden row that is read as data.", "structure")
declare("hidden-column", "warning", "A hidden column that is read, or one not read because a visible column holds the "
        "same field.", "structure")
declare("helper-column", "warning", "A column computed by formulas (a reviewer's own calculation), not typed from the "
        "paper.", "structure")
declare("unplaced-column", "error", "A header the layout could not place while a field the review needs has no "
        "column: names the header and the field it is close to.", "structure")
declare("group-heading", "warning", "A group heading row (one text spanning the table above data rows) that names "
        "no term of the sheet's vocabularies (or several fields' terms): its rows keep what they state.", "structure")
declare("unread-data", "warning", "Cells that look like data the review needs and were not read: figures under an "
        "outcome-like header that matches no field, rows above the header that was chosen or below it outside the "
        "columns read (another block), a sheet with the headers of a sheet that is read.", "structure")
declare("label-conflict", "warning", "One sheet per subgroup with a cohort column: a row whose stated cohort differs "
        "from the subgroup its sheet's name gives (the row keeps its own cohort); a study label's author or year "
        "that differs from the typed First author / Year column beside it (the typed value is read).", "structure")
declare("block-conflict", "error", "Blocks of one sheet joined into one record (a response block and a PFS block of "
        "the same cohorts) that give one field of the record different values: both cells are named, the first "
        "value is kept until one is corrected; the same for one sheet per outcome joined by key.", "structure")
declare("study-field-conflict", "warning", "In a sheet with one row per cohort, a cohort row whose study-level value "
        "differs from the study's own row (not read); with one sheet per outcome, a study-level column two sheets "
        "give differently for one record (the first read).", "structure")
# file formats and study identity (curation.reading, curation.layout)
declare("format-note", "info", "How a form of another format than .xlsx was read (a CSV's detected encoding, what an "
        ".xls does not record).", "structure")
declare("format-unread", "warning", "What a form's format keeps that cannot be read (an .xlsb's hidden rows and percent "
        "formats), or a CSV's detected encoding that other encodings would read differently.", "structure")
declare("study-id-clash", "error", "Two different study labels that would become one study_id (the labels and their "
        "cells are named; neither row is read as the other's study).", "structure")
