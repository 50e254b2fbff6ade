"""Hand-off to analysts and to the data-quality ecosystem.

What ``curate run`` leaves beside the clean dataset so that others can check and reuse it:

* :func:`analysis_r_script` -- ``analysis.R``: every pooled analysis of ``analysis.json``
  refitted with R's metafor from ``clean.csv``, taking exactly the rows curation took (listed
  by key in the script), and written to ``metafor_results.csv`` under the same ids.
* :func:`data_package` -- ``datapackage.json``: a Frictionless Data Package describing the
  clean CSVs (types, constraints from the schema, keys), so that ``frictionless validate``
  checks them.
* :func:`gx_suite` -- an Expectation Suite for GX Core 1.x (``curate export-gx``).
* :func:`pandera_schemas` -- the schema's field rules as pandera ``DataFrameSchema`` objects.

Everything here returns plain text or plain dicts; nothing is written (the CLI and
:mod:`curation.run` write through :mod:`curation.outputs`). Output is deterministic: the same
schema and analyses give the same bytes (a ``max: current_year + 1`` is resolved to a number on
the day it is exported).
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence

from . import __version__
from .outputs import inert

#: The versions analysis.R was generated against and checked with (tests/test_handoff.py).
TESTED_WITH = {"R": "4.2.2", "metafor": "3.8-1", "lme4": "1.1-31"}

#: Figures of ``metafor_results.csv`` after ``analysis``, in order.
RESULT_COLUMNS = ("estimate", "ci_low", "ci_high", "tau2", "i2", "pi_low", "pi_high", "q", "q_between",
                  "p_between", "k")

_DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")


def csv_names_for(schema, sheets: Iterable[str]) -> dict[str, str]:
    """The clean CSV of each data sheet as ``curate run`` names it.

    ``clean.csv`` for the analysis sheet, ``clean_<sheet>.csv`` for the others; the root sheet
    (``studies``) is joined into every row and has no file of its own.
    """
    out = {}
    read = analysed_sheets(schema)
    for sheet in sheets:
        if sheet == schema.root_sheet and sheet not in read:
            continue
        out[sheet] = "clean.csv" if sheet == schema.analysis_sheet else f"clean_{sheet}.csv"
    return out


def analysed_sheets(schema) -> set[str]:
    """The sheets an analysis of the plan reads: the analysis sheet and each outcome's own sheet.

    The root sheet (``studies``) is joined into every other sheet's rows and needs no file of its
    own, unless an analysis reads it (a one-sheet schema, a hazard ratio on the trials sheet).
    """
    out = {schema.analysis_sheet}
    for oc in schema.analysis.outcomes.values():
        if oc.kind == "adverse_event" and oc.sheet:
            out.add(oc.sheet)
        elif oc.kind not in ("proportion", "adverse_event") or oc.sheet:
            out.add(schema.outcome_sheet(oc))
    return {s for s in out if s in schema.sheets}


# =============================================================================================
# analysis.R
# =============================================================================================


def r_string(text: Any) -> str:
    """An R string literal for ``text``: quotes, backslashes and control characters escaped,
    non-ASCII written as ``\\u{...}`` so that the script is plain ASCII whatever the locale."""
    out = ['"']
    for ch in str(text):
        o = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{{{o:04x}}}" if o else "")  # R strings cannot hold NUL
        elif o < 0x80:
            out.append(ch)
        else:
            out.append(f"\\u{{{o:04x}}}" if o <= 0xFFFF else f"\\U{{{o:08x}}}")
    out.append('"')
    return "".join(out)


def _comment(text: Any) -> str:
    """Text safe inside an R comment: one line, printable ASCII."""
    return "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in str(text).replace("\n", " "))


def _r_vector(values: Sequence[Any], indent: int, width: int = 100, numeric: bool = False) -> str:
    """``c("a", "b", ...)`` (``numeric``: ``c(4, 0.5, NA)``) wrapped at ``width`` with continuation lines indented."""
    items = [("NA" if v is None else repr(float(v)).removesuffix(".0")) if numeric else r_string(v) for v in values]
    lines, line = [], "c("
    for i, item in enumerate(items):
        piece = item + (", " if i < len(items) - 1 else ")")
        if len(line) + len(piece) + indent > width and line not in ("c(",):
            lines.append(line.rstrip())
            line = " " * 2
        line += piece
    if not items:
        line += ")"
    lines.append(line)
    pad = " " * indent
    return ("\n" + pad).join(lines)


def _r_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return name if re.match(r"[A-Za-z]", name) else "x" + name


def _level(level: float) -> str:
    value = level * 100 if level <= 1 else level
    return f"{value:g}"


_R_HELPERS = r'''
suppressPackageStartupMessages(library(metafor))

Z975 <- 1.959964  # se of a median from its 95% CI, as the pooling contract says

# A clean dataset CSV, every column read as text; the leading ' that made a cell inert for
# spreadsheets (text starting with = + - @, tab or CR) is removed again.
read_clean <- function(path) {
  d <- read.csv(path, colClasses = "character", na.strings = "", check.names = FALSE,
                fileEncoding = "UTF-8", stringsAsFactors = FALSE)
  for (col in names(d)) {
    x <- d[[col]]
    made_inert <- !is.na(x) & grepl("^'[-=+@\t\r]", x)
    x[made_inert] <- substring(x[made_inert], 2)
    d[[col]] <- x
  }
  d
}

num <- function(d, col) as.numeric(d[[col]])
flag <- function(d, col) {
  if (col %in% names(d)) d[[col]] %in% c("True", "TRUE", "true") else rep(FALSE, nrow(d))
}

# The rows of `data` with the keys given (every key column of `keys` except `group`), in the
# order given; each key must be in the clean dataset exactly once. `group` (subgroup analyses)
# is kept as the column .group.
take <- function(data, keys) {
  by <- setdiff(names(keys), "group")
  key_of <- function(d) do.call(paste, c(unname(as.list(d[by])), sep = "\037"))
  have <- key_of(data)
  want <- key_of(keys)
  i <- match(want, have)
  if (anyNA(i)) stop("not in the clean dataset: ", paste(want[is.na(i)], collapse = "; "))
  if (any(have[duplicated(have)] %in% want)) stop("a key appears more than once in the clean dataset")
  out <- data[i, , drop = FALSE]
  if ("group" %in% names(keys)) out$.group <- keys$group
  out
}

rows <- function(...) data.frame(..., stringsAsFactors = FALSE, check.names = FALSE)

# The rows of a clean dataset that may enter an analysis: its column in_<analysis> is TRUE (an error
# in a field the analysis uses keeps a row out of it, and only out of the analyses that use that
# field; docs/exclusions.md). take() then finds every row the analysis took among these.
eligible <- function(data, column) {
  if (!(column %in% names(data))) return(data)
  data[flag(data, column), , drop = FALSE]
}

# One proportion meta-analysis: escalc + rma (or rma.glmm for the GLMM).
fit_proportion <- function(xi, ni, measure, method, hk, level) {
  if (method == "GLMM") {
    return(rma.glmm(measure = "PLO", xi = xi, ni = ni, method = "ML",
                    test = if (hk) "t" else "z", level = level))
  }
  dat <- escalc(measure = measure, xi = xi, ni = ni)
  rma(yi, vi, data = dat, method = method, test = if (hk) "knha" else "z", level = level)
}

# One meta-analysis of medians on the natural scale (months), se taken from the CI.
fit_median <- function(yi, sei, method, hk, level) {
  rma(yi = yi, sei = sei, method = method, test = if (hk) "knha" else "z", level = level)
}

# The figures of a fit, back-transformed to the reported scale.
figures <- function(res, measure, ni) {
  p <- switch(measure,
              PLO = predict(res, transf = transf.ilogit),
              PLN = predict(res, transf = exp),
              PAS = predict(res, transf = transf.iarcsin),
              PFT = predict(res, transf = transf.ipft.hm, targs = list(ni = ni)),
              OR = , RR = , ROM = , EXP = predict(res, transf = exp),  # ratios, pooled as logs
              predict(res))  # PR, differences and medians: no back-transformation
  glmm <- inherits(res, "rma.glmm")
  pi_lb <- if (is.null(p$pi.lb)) p$ci.lb else p$pi.lb
  pi_ub <- if (is.null(p$pi.ub)) p$ci.ub else p$pi.ub
  c(estimate = p$pred, ci_low = p$ci.lb, ci_high = p$ci.ub, tau2 = res$tau2, i2 = res$I2,
    pi_low = pi_lb, pi_high = pi_ub, q = if (glmm) res$QE.Wld else res$QE, k = res$k)
}

# Test for subgroup differences: a common-effect Q test across the subgroup estimates on the
# transformed scale, rma(est, sei = se, method = "EE")$QE with df = groups - 1. A subgroup
# whose fit failed is left out, as metafor drops missing values.
subgroup_test <- function(fits) {
  est <- sapply(fits, function(r) if (is.null(r)) NA else c(r$beta))
  se <- sapply(fits, function(r) if (is.null(r)) NA else r$se)
  ok <- is.finite(est) & is.finite(se)
  if (sum(ok) < 1 || any(se[ok] <= 0)) return(c(q_between = NaN, p_between = NaN))
  between <- rma(est[ok], sei = se[ok], method = "EE")
  c(q_between = between$QE, p_between = between$QEp)
}

by_group <- function(d, fit_one) {
  lapply(unique(d$.group), function(g) {
    tryCatch(fit_one(d$.group == g), error = function(e) NULL)
  })
}

pool_proportion <- function(d, events, total, measure, method, hk, level) {
  xi <- Reduce(`+`, lapply(events, function(e) num(d, e)))
  ni <- num(d, total)
  res <- fit_proportion(xi, ni, measure, method, hk, level)
  out <- figures(res, if (method == "GLMM") "PLO" else measure, ni)
  if (!is.null(d$.group)) {
    fits <- by_group(d, function(s) fit_proportion(xi[s], ni[s], measure, method, hk, level))
    out <- c(out, subgroup_test(fits))
  }
  out
}

pool_median <- function(d, median, low, high, method, hk, level, factor = 1) {
  # factor: the clean CSV holds medians in the unit of factor 1 (months); the outcome's unit is factor x that
  yi <- num(d, median) / factor
  lo <- num(d, low) / factor
  hi <- num(d, high) / factor
  upper_nr <- flag(d, paste0(high, "_nr"))
  # se = (upper - lower) / (2 x 1.959964); upper bound not reached: (median - lower) / 1.959964
  sei <- ifelse(upper_nr, (yi - lo) / Z975, (hi - lo) / (2 * Z975))
  if (anyNA(sei) || any(sei <= 0)) stop("a row without a usable standard error")
  res <- fit_median(yi, sei, method, hk, level)
  out <- figures(res, "GEN", NULL)
  if (!is.null(d$.group)) {
    fits <- by_group(d, function(s) fit_median(yi[s], sei[s], method, hk, level))
    out <- c(out, subgroup_test(fits))
  }
  out
}

# Two arms: events and totals (escalc OR/RR/RD + rma, or rma.mh / rma.peto), means and SDs
# (escalc MD/SMD/ROM + rma), or an effect reported with its 95% CI (log scale for a ratio).
fit_binary <- function(ai, n1i, ci, n2i, measure, method, hk, level) {
  if (method == "MH") return(rma.mh(ai = ai, n1i = n1i, ci = ci, n2i = n2i, measure = measure, level = level))
  if (method == "PETO") return(rma.peto(ai = ai, n1i = n1i, ci = ci, n2i = n2i, level = level))
  dat <- escalc(measure = measure, ai = ai, n1i = n1i, ci = ci, n2i = n2i)
  rma(yi, vi, data = dat, method = method, test = if (hk) "knha" else "z", level = level)
}

fit_continuous <- function(m1i, sd1i, n1i, m2i, sd2i, n2i, measure, method, hk, level) {
  dat <- escalc(measure = measure, m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i)
  rma(yi, vi, data = dat, method = method, test = if (hk) "knha" else "z", level = level)
}

with_groups <- function(out, group, fit_one) {
  if (is.null(group)) return(out)
  d <- data.frame(.group = group)
  c(out, subgroup_test(by_group(d, fit_one)))
}

pool_binary <- function(ai, n1i, ci, n2i, group, measure, method, hk, level) {
  res <- fit_binary(ai, n1i, ci, n2i, measure, method, hk, level)
  with_groups(figures(res, measure, NULL), group,
              function(s) fit_binary(ai[s], n1i[s], ci[s], n2i[s], measure, method, hk, level))
}

pool_continuous <- function(m1i, sd1i, n1i, m2i, sd2i, n2i, group, measure, method, hk, level) {
  res <- fit_continuous(m1i, sd1i, n1i, m2i, sd2i, n2i, measure, method, hk, level)
  with_groups(figures(res, measure, NULL), group,
              function(s) fit_continuous(m1i[s], sd1i[s], n1i[s], m2i[s], sd2i[s], n2i[s], measure, method, hk,
                                         level))
}

pool_effect <- function(effect, low, high, ratio, group, method, hk, level) {
  # se from the 95% CI: (upper - lower) / (2 x 1.959964), on the log scale for a ratio
  yi <- if (ratio) log(effect) else effect
  sei <- if (ratio) (log(high) - log(low)) / (2 * Z975) else (high - low) / (2 * Z975)
  if (anyNA(sei) || any(sei <= 0)) stop("a row without a usable standard error")
  res <- fit_median(yi, sei, method, hk, level)
  with_groups(figures(res, if (ratio) "EXP" else "GEN", NULL), group,
              function(s) fit_median(yi[s], sei[s], method, hk, level))
}

# Collect one row of metafor_results.csv per analysis; an error or a warning is printed with
# the analysis id, and a fit that fails gives a row of NA.
results <- list()
run <- function(id, expr) {
  value <- withCallingHandlers(
    tryCatch(expr, error = function(e) {
      message(id, ": not estimable: ", conditionMessage(e))
      NULL
    }),
    warning = function(w) {
      message(id, ": warning: ", conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  row <- setNames(rep(NA_real_, length(COLUMNS)), COLUMNS)
  if (!is.null(value)) row[intersect(names(value), COLUMNS)] <- value[intersect(names(value), COLUMNS)]
  results[[length(results) + 1]] <<- data.frame(analysis = id, t(row), check.names = FALSE,
                                                stringsAsFactors = FALSE)
  invisible(row)
}
'''

_R_FOOTER = r'''
# ---------------------------------------------------------------------------------------------
# Write the results, and compare with curation's when analysis.json is here
# ---------------------------------------------------------------------------------------------

out <- do.call(rbind, results)
write.csv(out, "metafor_results.csv", row.names = FALSE, na = "")
cat("wrote metafor_results.csv:", nrow(out), "analyses\n")

if (file.exists("analysis.json") && requireNamespace("jsonlite", quietly = TRUE)) {
  ours <- jsonlite::fromJSON("analysis.json", simplifyVector = FALSE)$analyses
  value <- function(a, col) if (is.null(a[[col]])) NA_real_ else as.numeric(a[[col]])
  glmm <- sapply(ours, function(a) identical(a$method, "GLMM"))
  cat("largest relative difference from analysis.json (values below 1e-6 compared absolutely):\n")
  cat(sprintf("  %-10s %12s %12s\n", "", "rma", "rma.glmm"))
  for (col in setdiff(COLUMNS, "k")) {
    ref <- sapply(ours, value, col = col)
    mine <- out[[col]][match(sapply(ours, function(a) a$id), out$analysis)]
    worst <- function(sel) {
      both <- sel & !is.na(ref) & !is.na(mine)
      if (any(both)) sprintf("%.3g", max(abs(mine[both] - ref[both]) / pmax(abs(ref[both]), 1e-6))) else "-"
    }
    missing <- sum(xor(is.na(ref), is.na(mine)))
    cat(sprintf("  %-10s %12s %12s%s\n", col, worst(!glmm), worst(glmm),
                if (missing) sprintf("  (%d figure(s) missing on one side)", missing) else ""))
  }
  cat("(the pooling contract: at most 1e-6 for rma, 1e-3 for the GLMM)\n")
}
'''


def _key_columns(schema, analysis) -> tuple[str, list[tuple[str, list[str]]]]:
    """The sheet an analysis reads and its key columns with their values, row by row."""
    name, _, term = analysis.outcome.partition(":")
    oc = schema.analysis.outcomes.get(name)
    sheet = oc.sheet if oc is not None and oc.kind == "adverse_event" and oc.sheet else schema.analysis_sheet
    if oc is not None and (oc.kind not in ("proportion", "adverse_event") or oc.sheet):
        sheet = schema.outcome_sheet(oc)
    spec = schema.sheets[sheet]
    parent_key = spec.parent.key if spec.parent is not None else spec.key[0]
    cols: list[tuple[str, list[str]]] = []
    for k in spec.key:
        if k == parent_key:
            vals = [r.study_id for r in analysis.taken]
        elif k == schema.analysis.cohort_field and sheet == schema.analysis_sheet:
            vals = [r.cohort for r in analysis.taken]
        elif oc is not None and oc.kind == "adverse_event" and k == oc.term:
            vals = [term] * len(analysis.taken)
        else:  # a key the rows taken do not carry: the rows are named by where they were read
            return sheet, _provenance_columns(analysis)
        cols.append((k, vals))
    return sheet, cols


def _provenance_columns(analysis) -> list[tuple[str, list[str]]]:
    """The rows taken named by the clean CSV's provenance columns (``row``, and ``file`` when they
    come from more than one form): for a sheet whose key the rows taken do not carry."""
    if any(r.row is None for r in analysis.taken):
        raise ValueError(f"analysis {analysis.id}: a row taken has no row number to find it by in the clean CSV")
    cols = [("row", [str(int(r.row)) for r in analysis.taken])]
    if len({r.file for r in analysis.taken}) > 1:
        cols.insert(0, ("file", [str(r.file) for r in analysis.taken]))
    return cols


def _settings_text(a) -> str:
    s = a.settings
    if a.kind == "median":
        core = f"generic inverse variance ({a.unit or 'natural scale'}), {s.method}"
    elif a.kind == "reported_effect":
        core = f"generic inverse variance ({'log ' if a.ratio else ''}{a.effect_label or 'effect'}), {s.method}"
    elif s.method == "GLMM":
        core = "GLMM (rma.glmm, logit)"
    else:
        core = f"{s.measure}, {s.method}"
    return core + (", Knapp-Hartung" if s.hk else "") + f", level {_level(s.level)}%"


def _two_arm_call(a, oc, data: str | None, rows_var: str | None) -> str:
    """The R call of a two-arm analysis: columns of the rows taken from the clean CSV, or (arm rows,
    which curate pairs) the values of the pairs as analysis.json lists them."""
    s = a.settings
    tail = f"method = {r_string(s.method)}, hk = {'TRUE' if s.hk else 'FALSE'}, level = {_level(s.level)})"
    if data is not None:
        d = f"take({data}, {rows_var})"
        if a.kind == "binary":
            cols = [oc.events[0], oc.totals[0], oc.events[1], oc.totals[1]]
        elif a.kind == "continuous":
            cols = [oc.means[0], oc.sds[0], oc.totals[0], oc.means[1], oc.sds[1], oc.totals[1]]
        else:
            cols = [oc.effect, oc.low, oc.high]
        args = ", ".join(f"num(d, {r_string(c)})" for c in cols)
        group = "d$.group"
        head = f"local({{d <- {d}; "
        close = "})"
    else:
        def vec(attr):
            return _r_vector([getattr(r, attr) for r in a.taken], 8, numeric=True)

        attrs = {"binary": ["events", "total", "events_control", "total_control"],
                 "continuous": ["mean", "sd", "total", "mean_control", "sd_control", "total_control"],
                 "reported_effect": ["effect", "ci_low", "ci_high"]}[a.kind]
        args = ", ".join(vec(x) for x in attrs)
        group = _r_vector([str(r.group) for r in a.taken], 8) if a.role == "subgroup_test" else "NULL"
        head, close = "", ""
    if a.kind == "reported_effect":
        body = f"pool_effect({args}, ratio = {'TRUE' if a.ratio else 'FALSE'}, group = {group},\n        {tail}"
    else:
        fn = "pool_binary" if a.kind == "binary" else "pool_continuous"
        body = f"{fn}({args}, group = {group},\n        measure = {r_string(s.measure)}, {tail}"
    return head + body + close


def analysis_r_script(schema, analyses: Sequence[Any], csv_names: Mapping[str, str] | None = None) -> str:
    """``analysis.R``: rerun every analysis with metafor from the clean CSVs.

    Parameters
    ----------
    schema : ReviewSchema
    analyses : list of curation.analyses.Analysis
        The analyses of ``analysis.json`` (``run_plan`` or ``curate run``).
    csv_names : dict, optional
        Clean CSV per sheet (default as ``curate run`` names them: ``clean.csv`` for the
        analysis sheet, ``clean_<sheet>.csv`` for the others).

    Returns
    -------
    str
        A deterministic, plain-ASCII R script. Run with ``Rscript analysis.R`` in the folder
        that holds the clean CSVs; it writes ``metafor_results.csv`` (columns ``analysis``,
        ``estimate``, ``ci_low``, ``ci_high``, ``tau2``, ``i2``, ``pi_low``, ``pi_high``, ``q``,
        ``q_between``, ``p_between``, ``k``) with one row per analysis id.

    Notes
    -----
    The script does not re-implement the row selection: each analysis lists the keys of the
    rows it took (``study_id`` and ``cohort``; ``study_id`` and ``ae_term`` for adverse
    events), and R takes exactly those rows, in that order, from the CSV.
    """
    analyses = list(analyses)
    sheets_used: list[str] = []
    blocks: list[str] = []
    row_sets: dict[tuple, str] = {}
    names_taken: set[str] = set()
    data_var = {}
    names = dict(csv_names) if csv_names is not None else csv_names_for(schema, schema.sheets)

    def var_for(sheet: str) -> str:
        if sheet not in data_var:
            data_var[sheet] = "clean" if sheet == schema.analysis_sheet else _r_name(f"clean_{sheet}")
            sheets_used.append(sheet)
        return data_var[sheet]

    for a in analyses:
        oc_name = a.outcome.partition(":")[0]
        oc = schema.analysis.outcomes.get(oc_name)
        lines = [f"## {_comment(a.id)} -- {_comment(a.label)}",
                 f"## {a.role}" + (f" of {_comment(a.parent)}" if a.parent else "")
                 + f"; {_settings_text(a)}; {a.k} row(s) taken, {len(a.left_out)} left out"]
        if oc is None or not a.taken:
            why = "no study could be pooled" if not a.taken else f"outcome {a.outcome!r} is not in the schema"
            lines.append(f"run({r_string(a.id)}, NULL)  # {_comment(why)}")
            blocks.append("\n".join(lines))
            continue
        if oc.arms is not None:  # arm rows, paired by curate: the pairs' values, as analysis.json lists them
            lines.append(f"run({r_string(a.id)},\n    {_two_arm_call(a, oc, None, None)})")
            blocks.append("\n".join(lines))
            continue
        sheet, cols = _key_columns(schema, a)
        data = var_for(sheet)
        from .selection import use_for

        data = f"eligible({data}, {r_string(use_for(schema, oc_name, a.subgroup).column)})"
        if a.role == "subgroup_test":
            cols = cols + [("group", [str(r.group) for r in a.taken])]
        key = tuple((c, tuple(v)) for c, v in cols)
        if key in row_sets:
            rows_var = row_sets[key]
            lines.append(f"# the same rows as {rows_var}")
        else:
            rows_var = base = "rows_" + _r_name(a.id)
            n = 2
            while rows_var in names_taken:
                rows_var, n = f"{base}_{n}", n + 1
            names_taken.add(rows_var)
            row_sets[key] = rows_var
            width = max(len(c) for c, _ in cols)
            parts = []
            for c, vals in cols:
                label = c if re.fullmatch(r"[A-Za-z.][A-Za-z0-9._]*", c) else f"`{c}`"
                prefix = f"  {label.ljust(width)} = "
                parts.append(prefix + _r_vector(vals, indent=len(prefix)))
            lines.append(f"{rows_var} <- rows(\n" + ",\n".join(parts) + ")")
        s = a.settings
        hk = "TRUE" if s.hk else "FALSE"
        if a.kind == "median":
            from .analyses import outcome_unit

            factor = outcome_unit(schema, oc)[1]
            call = (f"pool_median(take({data}, {rows_var}), median = {r_string(oc.median)}, "
                    f"low = {r_string(oc.low)}, high = {r_string(oc.high)},\n"
                    f"                method = {r_string(s.method)}, hk = {hk}, level = {_level(s.level)}"
                    + (f", factor = {factor!r}" if factor != 1 else "") + ")")
        elif a.kind in ("binary", "continuous", "reported_effect"):
            call = _two_arm_call(a, oc, data, rows_var)
        else:
            events = [oc.events] if isinstance(oc.events, str) else list(oc.events)
            if getattr(oc, "reported_events", None):  # CR+PR, else the reported n: the derived column has both
                events = [f"{a.outcome.partition(':')[0]}_events"]
            measure = "PLO" if s.method == "GLMM" else s.measure
            call = (f"pool_proportion(take({data}, {rows_var}), events = {_r_vector(events, 40)}, "
                    f"total = {r_string(oc.total)},\n"
                    f"                    measure = {r_string(measure)}, method = {r_string(s.method)}, "
                    f"hk = {hk}, level = {_level(s.level)})")
        lines.append(f"run({r_string(a.id)},\n    {call})")
        blocks.append("\n".join(lines))

    files = [names.get(sh, f"clean_{sh}.csv") for sh in sheets_used]
    header = [
        "# analysis.R -- every pooled analysis of analysis.json, refitted with R's metafor",
        "#",
        f"# Generated by curation {__version__} from schema {_comment(schema.name)} (version "
        f"{_comment(schema.version)}).",
        "# Rerun `curate run` to regenerate it rather than editing it.",
        f"# Tested with R {TESTED_WITH['R']}, metafor {TESTED_WITH['metafor']} and lme4 {TESTED_WITH['lme4']} "
        "(lme4 only for the GLMM).",
        "#",
        "# How to run, in the folder that holds " + " and ".join(files or ["clean.csv"]) + ":",
        "#     Rscript analysis.R",
        "# For each analysis it takes the rows the clean dataset lets it take (column in_<analysis>",
        "# TRUE: no error in a field the analysis uses), and among them exactly the rows curation",
        "# took -- listed below by their key, not selected again -- refits it with metafor (escalc + rma, rma.glmm for the GLMM, rma with",
        "# sei for medians) and writes metafor_results.csv: one row per analysis id of analysis.json",
        "# with estimate, ci_low, ci_high, tau2, i2, pi_low, pi_high, q, q_between, p_between and k.",
        "# Proportions are back-transformed as curation reports them (transf.ilogit, exp,",
        "# transf.iarcsin, transf.ipft.hm with the studies' sample sizes); medians are in months,",
        "# their se taken from the 95% CI. For a subgroup analysis, the row of the test (role",
        "# subgroup_test) pools all its rows and adds the test for subgroup differences.",
        "# When analysis.json is in the folder and jsonlite is installed, the script also prints the",
        "# largest relative difference from curation's figures.",
        "",
    ]
    columns = "COLUMNS <- " + _r_vector(list(RESULT_COLUMNS), indent=11)
    reads = [f"{data_var[sh]} <- read_clean({r_string(names.get(sh, f'clean_{sh}.csv'))})" for sh in sheets_used]
    body = [
        "\n".join(header),
        _R_HELPERS.strip("\n"),
        columns,
        "",
        "# ---------------------------------------------------------------------------------------------",
        "# The clean datasets",
        "# ---------------------------------------------------------------------------------------------",
        "",
        "\n".join(reads) if reads else "# (no analysis took any row)",
        "",
        "# ---------------------------------------------------------------------------------------------",
        f"# The analyses ({len(analyses)}), in the order of analysis.json",
        "# ---------------------------------------------------------------------------------------------",
        "",
        "\n\n".join(blocks),
        _R_FOOTER.rstrip("\n"),
    ]
    return "\n".join(body) + "\n"


# =============================================================================================
# Frictionless Data Package
# =============================================================================================

#: Data Package v2 (2024): needed for ``exclusiveMinimum`` (a median > 0).
DATAPACKAGE_PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"

_PROVENANCE = {
    "file": ("string", "Provenance: the form the row was read from"),
    "sheet": ("string", "Provenance: the sheet of the form"),
    "row": ("integer", "Provenance: the Excel row number on that sheet"),
}


def _field_spec(schema, sheet: str, column: str):
    """The FieldSpec of a clean column (own field, else the study field joined), or None."""
    spec = schema.sheets[sheet].fields.get(column)
    if spec is None:
        spec = schema.sheets[schema.root_sheet].fields.get(column)
    return spec


def _table_pattern(pattern: str) -> str:
    """A field's pattern as a Table Schema pattern (implicitly anchored at both ends).

    The engine checks with ``re.match`` (anchored at the start only) and the CSV writer may put
    a ``'`` before text starting with ``= + - @``: both are allowed for.
    """
    core = pattern[1:] if pattern.startswith("^") else pattern
    if core.endswith("$") and not core.endswith("\\$"):
        core = core[:-1]
        tail = ""
    else:
        tail = "[\\s\\S]*"
    return f"'?(?:{core}){tail}"


def _eligible_values(schema, spec) -> list[str]:
    vocab = schema.vocabularies[spec.vocabulary]
    return [t.value for t in vocab.terms if t.eligible]


def _number_text(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def _derived(schema, sheet: str, column: str) -> tuple[str | None, str]:
    """Type (None: from the data) and description of a column that is not a schema field."""
    if column in _PROVENANCE:
        return _PROVENANCE[column]
    if column.endswith("_nr"):
        base = column[:-3]
        return "boolean", f"True when {base} was reported as not reached (NR); {base} is then empty"
    if column.endswith("_events"):
        name = column[: -len("_events")]
        oc = schema.analysis.outcomes.get(name)
        if oc is not None:
            events = [oc.events] if isinstance(oc.events, str) else list(oc.events)
            return None, f"Events of {oc.label}: {' + '.join(events)} (derived)"
    return None, "Derived column"


def _type_of_dtype(dtype) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    return "string"


def table_schema(schema, sheet: str, frame, *, foreign: bool = False) -> dict[str, Any]:
    """The Table Schema of one clean table (columns in the frame's order)."""
    import pandas as pd

    sheet_spec = schema.sheets[sheet]
    own = sheet_spec.fields
    fields = []
    for col in frame.columns:
        spec = _field_spec(schema, sheet, col)
        f: dict[str, Any] = {"name": col}
        constraints: dict[str, Any] = {}
        if spec is not None:
            if spec.type in ("integer", "year"):
                f["type"] = "integer"
            elif spec.type in ("number", "percentage"):
                f["type"] = "number"
            else:
                f["type"] = "string"
            # an integer field the engine left as float (never expected) is described as it is written
            if f["type"] == "integer" and not pd.api.types.is_integer_dtype(frame[col].dtype) \
                    and frame[col].notna().any():
                f["type"] = "number"
            desc = spec.description or col
            if spec.unit and spec.unit_field is None:
                desc += f" ({spec.unit})"
            elif spec.unit_field is not None:
                desc += " (months)"
            if col not in own:
                desc += f" [from the {schema.root_sheet} sheet]"
            f["description"] = desc
            if spec.type in ("integer", "number", "percentage", "year"):
                if spec.min is not None:
                    constraints["minimum"] = _number_text(spec.min)
                if spec.max_value is not None:
                    constraints["maximum"] = _number_text(spec.max_value)
                if spec.min_exclusive is not None:
                    constraints["exclusiveMinimum"] = _number_text(spec.min_exclusive)
            if spec.vocabulary:
                constraints["enum"] = [inert(v) for v in _eligible_values(schema, spec)]
            if spec.pattern:
                constraints["pattern"] = _table_pattern(spec.pattern)
            if spec.required and (col in own or col in sheet_spec.key):
                constraints["required"] = True
        else:
            typ, desc = _derived(schema, sheet, col)
            f["type"] = typ or _type_of_dtype(frame[col].dtype)
            f["description"] = desc
            if col.endswith("_events") and f["type"] in ("integer", "number"):
                constraints["minimum"] = 0
            if col in _PROVENANCE:
                constraints["required"] = True
        if col in sheet_spec.key:
            constraints["required"] = True
        if constraints:
            f["constraints"] = constraints
        fields.append(f)
    out: dict[str, Any] = {"fields": fields, "missingValues": [""]}
    key = [k for k in sheet_spec.key if k in frame.columns]
    if key:
        out["primaryKey"] = key
    if foreign and sheet_spec.parent is not None:
        out["foreignKeys"] = [{"fields": [sheet_spec.parent.key],
                               "reference": {"resource": sheet_spec.parent.sheet,
                                             "fields": [schema.sheets[sheet_spec.parent.sheet].key[0]]}}]
    return out


def data_package(schema, clean_tables: Mapping[str, Any], csv_names: Mapping[str, str]) -> dict[str, Any]:
    """``datapackage.json``: a Frictionless Data Package for the clean CSVs.

    Parameters
    ----------
    schema : ReviewSchema
    clean_tables : dict of DataFrame
        ``ValidationResult.clean_tables``.
    csv_names : dict
        Sheet -> CSV file name (relative to the package), for the tables written; a sheet not
        named here has no resource.

    Returns
    -------
    dict
        One resource per CSV (name = sheet, ``path``, ``format: csv``, ``encoding: utf-8``,
        ``schema``: a Table Schema with the field types, the schema's constraints -- minimum,
        maximum, exclusiveMinimum, enum of the eligible vocabulary terms, pattern, required --
        descriptions, ``primaryKey`` and, when the parent sheet's resource is in the package,
        ``foreignKeys``).
    """
    resources = []
    present = {s for s in csv_names if s in clean_tables}
    for sheet, path in csv_names.items():
        if sheet not in clean_tables:
            continue
        spec = schema.sheets[sheet]
        parent_present = spec.parent is not None and spec.parent.sheet in present
        resources.append({
            "name": _resource_name(sheet),
            "type": "table",
            "path": path,
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "description": (spec.description or sheet) + (
                f" Clean rows (those that passed validation), the {schema.root_sheet} fields joined."
                if sheet != schema.root_sheet else " Clean rows (those that passed validation)."),
            "schema": table_schema(schema, sheet, clean_tables[sheet], foreign=parent_present),
        })
    for r in resources:
        for fk in r["schema"].get("foreignKeys", []):
            fk["reference"]["resource"] = _resource_name(fk["reference"]["resource"])
    return {
        "$schema": DATAPACKAGE_PROFILE,
        "name": _resource_name(schema.name),
        "title": schema.title or schema.name,
        "description": (schema.description or "").strip(),
        "version": str(schema.version),
        "created_by": f"curation {__version__}",
        "resources": resources,
    }


def _resource_name(text: str) -> str:
    """Frictionless names: lower-case letters, digits, '-', '_' and '.'."""
    return re.sub(r"[^a-z0-9._-]", "-", str(text).lower())


# =============================================================================================
# Great Expectations (GX Core 1.x)
# =============================================================================================


def _gx_regex(pattern: str) -> str:
    """GX matches with ``re.search``; the engine with ``re.match``; a ``'`` may lead (inert text)."""
    core = pattern[1:] if pattern.startswith("^") else pattern
    return f"^'?(?:{core})"


def _check_severity(check, default: str) -> str:
    return check.severity or default


def gx_suite(schema, sheet: str | None = None) -> dict[str, Any]:
    """An Expectation Suite (GX Core 1.x JSON) for the clean dataset of one sheet.

    Parameters
    ----------
    schema : ReviewSchema
    sheet : str, optional
        The clean table it is for (default: the analysis sheet, i.e. ``clean.csv``).

    Returns
    -------
    dict
        ``{"name", "expectations": [{"type", "kwargs", "meta"}], "meta", "notes"}``; load it
        with ``great_expectations.ExpectationSuite(**suite)``.

    Notes
    -----
    Only what the clean dataset guarantees is expected, i.e. what error-severity rules enforce
    (a warning-level rule lets a row through, so its check would fail on good data):

    * ``expect_column_values_to_not_be_null``: required fields and the row key;
    * ``expect_compound_columns_to_be_unique``: the row key;
    * ``expect_column_values_to_be_in_set``: the eligible terms of each vocabulary field;
    * ``expect_column_values_to_be_between``: min / max / exclusive min of numeric fields;
    * ``expect_column_values_to_match_regex``: field patterns (study_id, DOI);
    * ``expect_column_pair_values_a_to_be_greater_than_b``: the pairwise checks of the schema
      (``evaluable-exceeds-enrolled``: n_enrolled >= n_evaluable; ``dcr-below-orr``: dcr_pct >=
      orr_pct; ``median-outside-ci``: low <= median <= high, high > low;
      ``enrolment-period-reversed``; ``adverse-event-counts-inconsistent`` link by link), and
      between proportion outcomes of the plan whose events contain another's (dcr_events >=
      orr_events).

    Not expressible with GX's built-in expectations and therefore left out:
    ``response-sum-mismatch`` (CR+PR+SD+PD+NE = n_evaluable): ``expect_multicolumn_sum_to_equal``
    compares a row's sum with a *constant* ``sum_total``, not with another column, and without
    NE the rule only requires the sum not to exceed n_evaluable; ``percentage-mismatch``
    (rounding of a reported percentage). Both are enforced by ``curate validate`` before a row
    reaches the clean dataset.
    """
    sheet = sheet or schema.analysis_sheet
    spec = schema.sheets[sheet]
    root = schema.root_sheet
    expectations: list[dict[str, Any]] = []

    def add(type_: str, kwargs: dict[str, Any], rule: str, why: str) -> None:
        expectations.append({"type": type_, "kwargs": kwargs, "meta": {"rule": rule, "why": why}})

    # columns of the clean table: the study's fields (joined), then the sheet's own fields
    cols: list[tuple[str, Any, bool]] = []
    if sheet != root:
        for f, fs in schema.sheets[root].fields.items():
            if not fs.metadata and f != schema.sheets[root].key[0]:
                cols.append((f, fs, False))
    units = {fs.unit_field for fs in spec.fields.values() if fs.unit_field}
    for f, fs in spec.fields.items():
        if f not in units:
            cols.append((f, fs, True))
    seen = set()
    ordered = []
    for f, fs, own in [c for c in cols if c[2] and c[0] in spec.key] + cols:
        if f not in seen:
            seen.add(f)
            ordered.append((f, fs, own))
    for f, fs, own in ordered:
        if fs.required or f in spec.key:
            add("expect_column_values_to_not_be_null", {"column": f}, "missing-required",
                f"{f} is required" + ("" if own else f" (on the {root} sheet)"))
        if fs.vocabulary:
            add("expect_column_values_to_be_in_set",
                {"column": f, "value_set": [inert(v) for v in _eligible_values(schema, fs)]},
                "unknown-term", f"{f}: a canonical, eligible term of vocabulary {fs.vocabulary}")
        if fs.type in ("integer", "number", "percentage", "year"):
            lo = fs.min if fs.min is not None else fs.min_exclusive
            hi = fs.max_value
            if lo is not None or hi is not None:
                kw: dict[str, Any] = {"column": f}
                if lo is not None:
                    kw["min_value"] = _number_text(lo)
                    if fs.min is None:
                        kw["strict_min"] = True
                if hi is not None:
                    kw["max_value"] = _number_text(hi)
                add("expect_column_values_to_be_between", kw, "out-of-range",
                    f"{f}: declared range" + (" (current_year resolved on export)" if isinstance(fs.max, str) else ""))
        if fs.pattern:
            add("expect_column_values_to_match_regex", {"column": f, "regex": _gx_regex(fs.pattern)},
                "invalid-format", f"{f}: {fs.pattern_hint or fs.pattern}")
    if spec.key:
        add("expect_compound_columns_to_be_unique", {"column_list": list(spec.key)}, "duplicate-key",
            "one row per " + " and ".join(spec.key))

    def pair(a: str, b: str, or_equal: bool, rule: str, why: str) -> None:
        add("expect_column_pair_values_a_to_be_greater_than_b",
            {"column_A": a, "column_B": b, "or_equal": or_equal, "ignore_row_if": "either_value_is_missing"},
            rule, why)

    def column(ref: str) -> str | None:
        """A check's field (or ``sheet.field`` joined from the studies sheet) as a clean column."""
        if "." in ref:
            other, fld = ref.split(".", 1)
            return fld if other == root and fld in schema.sheets[root].fields else None
        return ref

    from .rules import REGISTRY

    # the sheet's own checks, and the studies sheet's (its fields are joined into every row)
    checks = list(schema.checks.get(sheet, ()))
    if sheet != root:
        checks += list(schema.checks.get(root, ()))
    for check in checks:
        rule = REGISTRY.get(check.rule)
        if rule is None or _check_severity(check, rule.severity) != "error":
            continue
        p = check.params
        if check.rule == "evaluable-exceeds-enrolled":
            lim = column(p["limit"])
            if lim:
                pair(lim, p["field"], True, check.rule, f"{p['field']} <= {p['limit']}")
        elif check.rule == "dcr-below-orr":
            pair(p["dcr"], p["orr"], True, check.rule, f"{p['dcr']} >= {p['orr']}")
        elif check.rule == "median-outside-ci":
            m, lo, hi = p["median"], p["low"], p["high"]
            pair(m, lo, True, check.rule, f"{m} >= {lo}")
            pair(hi, m, True, check.rule, f"{m} <= {hi}")
            pair(hi, lo, False, check.rule, f"{lo} < {hi}")
        elif check.rule == "enrolment-period-reversed":
            pair(p["end"], p["start"], True, check.rule, f"{p['start']} <= {p['end']}")
        elif check.rule == "adverse-event-counts-inconsistent":
            chain = [column(c) for c in p["chain"]]
            for a, b, ra, rb in zip(chain, chain[1:], p["chain"], p["chain"][1:]):
                if a and b:
                    pair(b, a, True, check.rule, f"{ra} <= {rb}")
    # proportion outcomes of the plan whose events contain another's, over the same total
    if sheet == schema.analysis_sheet:
        props = {n: (set([o.events] if isinstance(o.events, str) else o.events), o.total)
                 for n, o in schema.analysis.outcomes.items() if o.kind == "proportion" and o.sheet in (None, sheet)}
        for big, (ev_b, tot_b) in props.items():
            for small, (ev_s, tot_s) in props.items():
                if big != small and tot_b == tot_s and ev_s < ev_b:
                    pair(f"{big}_events", f"{small}_events", True, "derived",
                         f"{big} events ({' + '.join(sorted(ev_b))}) include {small} events")
    return {
        "name": f"{schema.name}.{sheet}.clean",
        "id": None,
        "expectations": expectations,
        "suite_parameters": {},
        "meta": {
            "generated_by": f"curation {__version__}",
            "schema": schema.name,
            "schema_version": str(schema.version),
            "sheet": sheet,
            "dataset": "clean.csv" if sheet == schema.analysis_sheet else f"clean_{sheet}.csv",
            "not_expressible": {
                "response-sum-mismatch": "CR+PR+SD+PD(+NE) = n_evaluable compares a row sum with another column; "
                                         "expect_multicolumn_sum_to_equal takes a constant sum_total",
                "percentage-mismatch": "rounding of a reported percentage",
            },
        },
        "notes": ("Expectations for the clean dataset of curation: only what error-severity rules "
                  "guarantee (warning-level rules let rows through). Generated from the schema; "
                  "regenerate with `curate export-gx`."),
    }


# =============================================================================================
# pandera
# =============================================================================================


def pandera_schemas(schema, *, warnings: bool = False) -> dict[str, Any]:
    """The schema's field rules as pandera ``DataFrameSchema`` objects, one per sheet.

    Wraps :func:`curation.rules.column_schema` (the very schemas ``curate validate`` runs).
    Each check is named by its rule code (``out-of-range``, ``unknown-term`` ...).

    Parameters
    ----------
    schema : ReviewSchema
    warnings : bool
        Keep the warning-level checks (``implausible-value``, ``unspecific-term``) too. By
        default only error-level checks are kept, so that the clean dataset passes.

    Returns
    -------
    dict
        Sheet -> ``pandera.DataFrameSchema`` (columns optional, key unique). Validate a sheet's
        typed table or a clean table with ``schemas["outcomes"].validate(frame, lazy=True)``.
    """
    import pandera.pandas as pa

    from .rules import column_schema

    out = {}
    for sheet in schema.sheets:
        frame_schema, codes = column_schema(schema, sheet)
        columns = {}
        for name, col in frame_schema.columns.items():
            checks = []
            for i, chk in enumerate(col.checks):
                rule, severity = codes.get((name, i), ("check", "error"))
                if severity != "error" and not warnings:
                    continue
                try:  # name the failure by its rule code (keeping a built-in check's own text)
                    chk.error = f"{rule}: {chk.error}" if chk.error else rule
                    chk.name = rule
                except Exception:  # pragma: no cover - a pandera whose checks are read-only
                    pass
                checks.append(chk)
            columns[name] = pa.Column(dtype=col.dtype, checks=checks, nullable=col.nullable, required=False,
                                      description=schema.sheets[sheet].fields[name].description or None)
        out[sheet] = pa.DataFrameSchema(columns, unique=frame_schema.unique, report_duplicates="all", strict=False,
                                        name=f"{schema.name}.{sheet}")
    return out
