"""Layouts: where one workbook keeps what the schema needs.

The schema says *what* a review needs (fields, vocabularies, checks, analyses); a **layout** says
*where* one workbook keeps it: which of its sheets hold which contract sheets, which rows form the
header (and how a multi-row header is joined), which column holds which field and in what form
(a plain value, ``n (%)``, ``median (low-high)``, a ``low-high`` CI, ``number unit``,
``Author (year)``), and which rows are not data (titles, totals, notes, repeated headers).

One module per step, each a function of plain data to plain data, one way:

- :mod:`.cells`: a cell's text, filled cells, the composite kinds a cell may hold and their splitting;
- :mod:`.headers`: header texts folded and split, the field index headers are matched through;
- :mod:`.model`: the layout as data (:class:`Layout`), :func:`load_layout`, :func:`check_fits`;
- :mod:`.structure`: structure hypotheses (a sheet's header rows, the contract sheets it holds);
- :mod:`.nondata`: rows that are not data (totals, notes, repeated headers, separators);
- :mod:`.columns`: each column's field and form;
- :mod:`.blocks`: stacked and side-by-side blocks, each read as a table of its own (joined by key when they
  give different fields of the same records);
- :mod:`.infer`: a workbook's grids -> its layout (:func:`infer_layout`);
- :mod:`.binding`: value cells bound to records and fields through a layout;
- :mod:`.formtables`: a table inside a form-style sheet (below or beside it), its rows the form's study;
- :mod:`.records`: bound cells -> the contract sheets (:func:`extract`, :func:`read_form`, :func:`map_form`).

A layout is a plain object that ``curate map`` writes as YAML for a reviewer to read and correct
(Frictionless Table Dialect names where one fits: ``sheet``, ``headerRows``, ``headerJoin``,
``commentRows``), and ``--layout`` reads back, refusing one that does not fit its workbook.

The guarantee: every non-empty cell of a mapped column is read as the reviewer meant it or carries
a finding at its cell; a non-data row is never read as a record.
"""

from __future__ import annotations

from .cells import (RX_AUTHOR_YEAR, RX_CI, RX_COUNT_PCT, RX_MEDIAN_CI, RX_NUM_UNIT, Kind, _split_cell, content_kind,
                    is_author_year, pd_isna)
from .headers import IDENTITY, FieldIndex, fold_header, header_key, needed_fields, split_header
from .model import ColumnLayout, IgnoredColumn, Layout, LayoutSet, SheetLayout, check_fits, load_layout
from .infer import infer_layout
from .binding import BoundSheet, SheetContext, bind_sheet
from .records import extract, map_form, map_forms, read_form, sheet_records

__all__ = ["RX_AUTHOR_YEAR", "RX_CI", "RX_COUNT_PCT", "RX_MEDIAN_CI", "RX_NUM_UNIT", "Kind", "content_kind",
           "is_author_year", "pd_isna", "IDENTITY", "FieldIndex", "fold_header", "header_key", "needed_fields",
           "split_header", "ColumnLayout", "IgnoredColumn", "Layout", "LayoutSet", "SheetLayout", "check_fits", "load_layout",
           "infer_layout", "BoundSheet", "SheetContext", "bind_sheet", "extract", "map_form", "map_forms", "read_form",
           "sheet_records", "_split_cell"]
