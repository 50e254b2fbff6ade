"""Terminal rendering of results (rich), kept apart from the library."""

from __future__ import annotations

from typing import Any

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


class _NoBar:
    def __enter__(self):
        return lambda *_: None

    def __exit__(self, *exc):
        return False


class _Bar:
    def __init__(self, total: int, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console(stderr=True), transient=True)
        self.total, self.label = total, label

    def __enter__(self):
        self.progress.__enter__()
        task = self.progress.add_task(self.label, total=self.total)
        return lambda *_: self.progress.advance(task)

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)


def progress_bar(total: int, label: str, *, enabled: bool = True):
    """A rich progress bar on stderr (a context manager giving an ``advance()`` callable)."""
    return _Bar(total, label) if enabled else _NoBar()


def print_validation(result: Any, *, quiet: bool = False, first: int = 15) -> None:
    """Summary line, a table of findings per rule and severity, then the first findings."""
    from rich.table import Table

    c = console()
    s = result.summary
    if not quiet and result.finding_list:
        by = Table(title="Findings by rule", show_edge=False, header_style="bold")
        by.add_column("rule")
        by.add_column("severity")
        by.add_column("count", justify="right")
        counts: dict[tuple[str, str], int] = {}
        for f in result.finding_list:
            counts[(f.rule, f.severity)] = counts.get((f.rule, f.severity), 0) + 1
        rank = {"error": 0, "warning": 1, "info": 2}
        for (rule, sev), n in sorted(counts.items(), key=lambda kv: (rank[kv[0][1]], -kv[1], kv[0][0])):
            by.add_row(rule, f"[{SEVERITY_STYLE[sev]}]{sev}[/]", str(n))
        c.print(by)
        shown = sorted(result.finding_list, key=lambda f: rank[f.severity])[:first]
        c.print(f"[bold]First {len(shown)} of {len(result.finding_list)} findings[/]")
        several = len(result.files) > 1
        for f in shown:
            where = f.cell or f.sheet or ""
            if several:
                where = f"{_short(f.file)}:{where}"
            c.print(f"[{SEVERITY_STYLE[f.severity]}]{f.severity:8}[/] {where}  [bold]{f.rule}[/]")
            c.print(f"         {f.message}", markup=False, highlight=False)
    if not quiet:
        print_coverage(getattr(result, "coverage", ()), c)
        print_cell_accounts(s.cells)
    c.print(
        f"{s.forms} form(s), {s.studies} studies: rows read {s.rows_read} = passed {s.rows_passed} + "
        f"excluded {s.rows_excluded}"
        + (f" ({getattr(s, 'rows_restricted', 0)} passed kept out of some analyses)"
           if getattr(s, "rows_restricted", 0) else "")
        + f"; [bold red]{s.errors} error(s)[/], [yellow]{s.warnings} warning(s)[/], "
        f"[cyan]{s.info} info[/]"
    )


COVERAGE_STYLE = {"ran": "green", "partly run": "yellow", "not run": "bold red", "never": "bold red",
                  "no data": "dim"}


def print_coverage(coverage: Any, c: Any = None) -> None:
    """The check coverage table: each check that left rows unchecked, with how many it checked of
    the rows holding its fields and why not the rest; the checks that checked every such row are
    counted on one line (``--json`` lists them all)."""
    from rich.table import Table

    from .rules import coverage_rows

    rows = coverage_rows(coverage)
    if not rows:
        return
    c = c or console()
    shown = [r for r in rows if r["status"] not in ("ran", "no data") or r["skipped"]]
    empty = [r for r in rows if r["status"] == "no data"]
    if shown:
        table = Table(title="Check coverage", show_edge=False, header_style="bold")
        for name, justify in (("check", "left"), ("sheet", "left"), ("checked", "right"), ("status", "left"),
                              ("why not", "left")):
            table.add_column(name, justify=justify, overflow="fold")
        rank = {"never": 0, "not run": 1, "partly run": 2, "ran": 3, "no data": 4}
        for r in sorted(shown, key=lambda r: rank[r["status"]]):
            fields = r["fields"].split(", ")
            label = f"{r['check']} ({', '.join(fields[:3])}{', ...' if len(fields) > 3 else ''})"
            table.add_row(label, r["sheet"], f"{r['checked']}/{r['applicable']}",
                          f"[{COVERAGE_STYLE[r['status']]}]{r['status']}[/]", r["why"])
        c.print(table)
    full = len(rows) - len(shown) - len(empty)
    line = f"Check coverage: {full} of {len(rows)} checks ran on every row that holds their fields"
    if empty:
        names = sorted({r["check"] for r in empty})
        line += (f"; {len(empty)} found no row holding all their fields ({', '.join(names)}; "
                 "--json lists what each lacks)")
    c.print(line)
def print_cell_accounts(cells: dict) -> None:
    """Per form and sheet: cells read / headers and labels / non-data / not read (layouts.md v2)."""
    c = console()
    several = len(cells) > 1
    for file, sheets in cells.items():
        for sheet, a in sheets.items():
            where = f"{_short(file)}:{sheet}" if several else sheet
            style = "yellow" if a["not_read"] else "dim"
            c.print(f"[{style}]cells[/] {where}: read {a['read']} / headers and labels {a['headers']} / "
                    f"non-data {a['non_data']} / not read {a['not_read']}", highlight=False)


def _short(path: str) -> str:
    from pathlib import Path

    return Path(path).name


def _pct(x: Any, scale: float) -> str:
    import math

    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "NA"
    return f"{x * scale:.1f}" if scale == 100 else f"{x:.2f}"


def print_analyses(analyses: list, *, title: str | None = None) -> None:
    """A table of pooled estimates: id, k, estimate (95% CI), prediction interval, tau2, I2, Q."""
    from rich.table import Table

    c = console()
    t = Table(title=title or analyses[0].label, show_edge=False, header_style="bold")
    for col in ("analysis", "k", "estimate (95% CI)", "95% PI", "tau2", "I2"):
        t.add_column(col, justify="right" if col not in ("analysis",) else "left", no_wrap=True,
                     min_width=len(col))
    for a in analyses:
        r = a.result
        name = f"  {a.group}" if a.role == "subgroup" else (a.id.split("@", 1)[1] if a.role == "sensitivity" else a.id)
        if r is None:
            t.add_row(name, str(a.k), "not pooled", "", "", "")
            continue
        from .analyses import estimate_text

        d = r.display()
        scale = 100 if a.kind == "proportion" else 1
        # in the outcome's own terms (the schema's unit and effect label): 27.5%, 12.0 weeks, HR 0.72
        est = estimate_text(a, d["estimate"], d["ci_low"], d["ci_high"])
        sep = " to " if any(x is not None and x == x and x < 0 for x in (d["pi_low"], d["pi_high"])) else "-"
        t.add_row(name, str(a.k), est, f"{_pct(d['pi_low'], scale)}{sep}{_pct(d['pi_high'], scale)}",
                  f"{r.tau2:.3g}", f"{r.i2:.1f}%")
    c.print(t)
    primary = analyses[0]
    if primary.result is not None and primary.result.q == primary.result.q:
        r = primary.result
        p = "p < 0.001" if r.q_pval < 0.001 else f"p = {r.q_pval:.3f}"
        c.print(f"heterogeneity: Q = {r.q:.2f}, df = {r.q_df}, {p}; tau2 = {r.tau2:.4g}, I2 = {r.i2:.1f}%, "
                f"H2 = {r.h2:.2f}")
    if primary.result is not None and primary.result.q_between is not None:
        r = primary.result
        c.print(f"test for subgroup differences: Q = {r.q_between:.2f}, df = {r.df_between}, p = {r.p_between:.3g}")
    if primary.left_out:
        c.print(f"[dim]left out ({len(primary.left_out)}):[/] " + "; ".join(
            f"{x.study_id}{' ' + x.cohort if x.cohort else ''}: {x.reason}" for x in primary.left_out[:8])
                + (" ..." if len(primary.left_out) > 8 else ""))
    for note in dict.fromkeys(n for a in analyses[:1] for n in (a.result.notes if a.result else ())):
        c.print(f"[yellow]note:[/] {note}")


def print_layout(layout: Any) -> None:
    """The inferred layout as a table, the columns it is least sure of first (a folder's: each workbook's)."""
    from rich.table import Table

    c = console()
    if hasattr(layout, "workbooks"):
        for lay in layout.workbooks:
            c.print(f"[bold underline]{lay.workbook}[/]")
            print_layout(lay)
        return
    rank = {"low": 0, "medium": 1, "high": 2}
    for sl in layout.sheets:
        c.print(f"[bold]{sl.sheet}[/]: {' + '.join(sl.tables)}; header row(s) {', '.join(map(str, sl.header_rows))}"
                + (f"; {len(sl.comment_rows)} row(s) not data" if sl.comment_rows else ""))
        t = Table(show_edge=False, header_style="bold")
        for col in ("column", "header", "read as", "fields", "unit", "sure"):
            t.add_column(col, overflow="fold")
        for col in sorted(sl.columns, key=lambda x: (rank[x.confidence], x.kind == "value", len(x.column), x.column,
                                                     x.row or 0)):
            style = {"low": "bold red", "medium": "yellow", "high": ""}[col.confidence]
            # a form's or transposed sheet's label: its own cell (the values are beside it, in its row)
            where = f"{col.label}{col.row}" if col.label and col.row else col.column
            t.add_row(where, col.header, col.kind, ", ".join(dict.fromkeys(col.parts.values())), col.unit or "",
                      f"[{style}]{col.confidence}[/]" if style else col.confidence)
        for letter, ign in sl.ignored.items():
            t.add_row(letter, ign.header, "not read", ign.field or "", "", ign.reason or "matches no field")
        c.print(t)
        for r, why in sl.comment_rows.items():
            c.print(f"  row {r}: {why}")
        for f, how in sl.derived.items():
            c.print(f"  {f}: {how}")
        for ft in getattr(sl, "form_tables", ()):  # a table inside the form (below or beside it)
            c.print(f"  table inside the form: {ft.range} -> {ft.table}, header row {ft.header_row}, "
                    + ("each row the form's study: " if ft.study == "form" else "")
                    + ", ".join(f"{col.column} {col.header!r} -> {', '.join(dict.fromkeys(col.parts.values()))}"
                                for col in ft.columns), markup=False, highlight=False)
    for title, why in layout.skipped.items():
        c.print(f"[cyan]skipped[/] sheet {title!r}: {why}")
    doubts = layout.doubts() if hasattr(layout, "doubts") else []
    if doubts:
        c.print("[bold]least certain first:[/]")
        for d in doubts:
            c.print(f"  {d}", markup=False, highlight=False)
    if getattr(layout, "cells", None):
        print_cell_accounts({layout.workbook: layout.cells})
