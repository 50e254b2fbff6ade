"""Terminal rendering of results (rich), kept apart from the library."""

from __future__ import annotations

from typing import Any

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


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
        lst = Table(title=f"First {len(shown)} of {len(result.finding_list)} findings", show_edge=False,
                    header_style="bold")
        lst.add_column("cell", no_wrap=True)
        lst.add_column("severity")
        lst.add_column("rule", no_wrap=True)
        lst.add_column("message")
        for f in shown:
            where = f"{_short(f.file)}:{f.cell}" if f.cell else _short(f.file)
            lst.add_row(where, f"[{SEVERITY_STYLE[f.severity]}]{f.severity}[/]", f.rule, f.message)
        c.print(lst)
    c.print(
        f"{s.forms} form(s), {s.studies} studies: rows read {s.rows_read} = passed {s.rows_passed} + "
        f"excluded {s.rows_excluded}; [bold red]{s.errors} error(s)[/], [yellow]{s.warnings} warning(s)[/], "
        f"[cyan]{s.info} info[/]"
    )


def _short(path: str) -> str:
    from pathlib import Path

    return Path(path).name
