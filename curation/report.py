"""The report page and the annotated copies of the forms.

- :func:`render_report` renders ``report.html`` of ``curate run`` (one self-contained page: inline
  CSS, inline SVG plots, a little inline JS, no remote resource) from a jinja2 template with
  autoescape on, so that every text that came from a form is HTML-escaped.
- :func:`render_validation_page` is the same page without analyses (``curate validate --report``).
- :func:`annotated_workbook` gives a copy of a form with every finding's cell filled by severity
  and commented, plus a ``findings`` sheet; the input is read into memory and never written to.

Everything returns text or bytes; only the command line writes files.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from pathlib import Path
from typing import Any, Iterable, Sequence

from .cells import finite_or_none as _num
from .findings import SEVERITY_RANK, Finding
from .outputs import inert

SEVERITY_FILL = {"error": "FFC7CE", "warning": "FFE699", "info": "BDD7EE"}
SEVERITY_FONT = {"error": "9C0006", "warning": "7F6000", "info": "1F4E79"}

# ---------------------------------------------------------------------------------------------
# Annotated workbooks
# ---------------------------------------------------------------------------------------------

_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _deterministic_xlsx(data: bytes, stamp: str) -> bytes:
    """Zip entries with a fixed date and ``dcterms:modified`` set to ``stamp`` (same content, same bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            body = zin.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _MODIFIED.sub(rb"\g<1>" + stamp.encode() + rb"\g<2>", body)
            zi = zipfile.ZipInfo(info.filename, date_time=_ZIP_DATE)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = info.external_attr
            zout.writestr(zi, body)
    return out.getvalue()


def _target_cell(ws, row: int, column: str | None):
    """The cell a finding is shown on: its own, the row's first cell, or a merged range's top-left."""
    coord = f"{column or 'A'}{row}"
    for rng in ws.merged_cells.ranges:
        if coord in rng:
            return ws.cell(rng.min_row, rng.min_col)
    return ws[coord]


def _finding_line(f: Finding) -> str:
    return f"{f.severity.upper()} {f.rule}: {f.message}"


def annotated_workbook(path: str | Path, findings: Sequence[Finding]) -> bytes:
    """A copy of the form at ``path`` with the findings marked, as ``.xlsx`` bytes.

    Each finding's cell is filled by its severity (the worst one when a cell has several:
    error red, warning amber, info blue) and carries one comment listing every finding on it;
    a row-level finding goes to the row's first cell. A ``findings`` sheet lists them all
    (cell, rule, severity, study, message, value) with form text made inert. Formulas of the
    form are replaced by their saved values (or their text, made inert), so the copy holds no
    live formula. The input is read into memory and never written to.
    """
    import warnings

    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill

    from .reading import sheet_key

    data = Path(path).read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wb = openpyxl.load_workbook(io.BytesIO(data))
        cached = None
        for ws in wb.worksheets:
            for row in ws.iter_rows():
                for c in row:
                    if c.data_type == "f":
                        if cached is None:
                            cached = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
                        saved = cached[ws.title][c.coordinate].value
                        if saved is None:  # no saved value: keep the formula's text, inert
                            text = c.value if isinstance(c.value, str) else getattr(c.value, "text", str(c.value))
                            saved = text if str(text).startswith("=") else "=" + str(text)
                        c.value = saved
                        if isinstance(c.value, str):
                            c.value = inert(c.value)
                        if c.data_type == "f":
                            c.data_type = "s"
    stamp_dt = wb.properties.modified or wb.properties.created
    stamp = stamp_dt.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp_dt else "2000-01-01T00:00:00Z"
    titles = {sheet_key(t): t for t in wb.sheetnames}
    by_cell: dict[tuple[str, Any], list[Finding]] = {}
    for f in findings:
        if f.sheet is None or f.row is None:
            continue
        title = titles.get(sheet_key(f.sheet))
        if title is None:
            continue
        cell = _target_cell(wb[title], int(f.row), f.column)
        by_cell.setdefault((title, cell.coordinate), []).append(f)
    for (title, coord), fs in by_cell.items():
        cell = wb[title][coord]
        worst = min(fs, key=lambda f: SEVERITY_RANK[f.severity]).severity
        cell.fill = PatternFill(fill_type="solid", start_color=SEVERITY_FILL[worst], end_color=SEVERITY_FILL[worst])
        text = "\n".join(_finding_line(f) for f in fs)
        if cell.comment is not None and cell.comment.text:
            text = cell.comment.text.rstrip() + "\n---\n" + text
        comment = Comment(text[:30000], "curate")
        comment.width = 420
        comment.height = min(600, 40 + 16 * (text.count("\n") + 1 + len(text) // 70))
        cell.comment = comment
    name = "findings"
    taken = {t.lower() for t in wb.sheetnames}
    i = 1
    while name.lower() in taken:
        i += 1
        name = f"findings_{i}"
    ws = wb.create_sheet(name)
    header = ["cell", "rule", "severity", "study_id", "message", "value", "field", "sheet", "row", "column"]
    ws.append(header)
    for c in ws[1]:
        c.font = Font(bold=True)
    for f in findings:
        value = f.to_dict()["value"]
        ws.append([inert(f.cell or f.sheet or ""), inert(f.rule), f.severity, inert(f.study_id), inert(f.message),
                   inert(value) if isinstance(value, str) else value, inert(f.field), inert(f.sheet), f.row,
                   f.column])
        r = ws.max_row
        ws.cell(r, 3).fill = PatternFill(fill_type="solid", start_color=SEVERITY_FILL[f.severity],
                                         end_color=SEVERITY_FILL[f.severity])
        ws.cell(r, 3).font = Font(color=SEVERITY_FONT[f.severity], bold=f.severity == "error")
        ws.cell(r, 5).alignment = Alignment(wrap_text=True, vertical="top")
    for c in ws.iter_rows(min_row=2):  # form text is text: never a formula
        for cell in c:
            if cell.data_type == "f":
                cell.data_type = "s"
    for letter, width in zip("ABCDEFGHIJ", (18, 26, 9, 10, 90, 18, 18, 14, 6, 7)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:J{max(1, ws.max_row)}"
    buf = io.BytesIO()
    wb.save(buf)
    return _deterministic_xlsx(buf.getvalue(), stamp)


def annotate_forms(result: Any, out_dir: str | Path) -> list[Path]:
    """Write ``<form>.annotated.xlsx`` for each form of a ValidationResult into ``out_dir``."""
    from .outputs import atomic_write_bytes

    out = Path(out_dir)
    written = []
    for name in result.files:
        data = annotated_workbook(name, [f for f in result.finding_list if f.file == name])
        written.append(atomic_write_bytes(out / f"{Path(name).stem}.annotated.xlsx", data))
    return written


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------

_SVG_HEAD = re.compile(r"^.*?(?=<svg\b)", re.S)
_SVG_NOISE = re.compile(r"<!--.*?-->|<metadata>.*?</metadata>", re.S)
_SVG_ID = re.compile(r'\bid="([^"]+)"')


def inline_svg(svg: str, prefix: str) -> str:
    """matplotlib SVG text made fit to sit inside an HTML page: no prolog, comments or metadata,
    and ids prefixed so that several plots on one page never share one."""
    svg = _SVG_HEAD.sub("", svg, count=1)
    svg = _SVG_NOISE.sub("", svg)
    ids = set(_SVG_ID.findall(svg))
    if ids:
        svg = _SVG_ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)
        svg = re.sub(r'(href="#|url\(#)([^")]+)', lambda m: m.group(1) + (
            f"{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(2)), svg)
    svg = re.sub(r"\s+\n", "\n", svg)
    return svg.strip()




def _pct(v: Any) -> str:
    v = _num(v)
    return "NA" if v is None else f"{100 * v:.1f}"


def _nat(v: Any) -> str:
    v = _num(v)
    return "NA" if v is None else f"{v:.1f}"


def _fmt_p(p: Any) -> str:
    p = _num(p)
    if p is None:
        return "NA"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _value_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _short(name: str) -> str:
    return Path(name).name


def _finding_rows(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    rows = []
    for i, f in enumerate(findings):
        d = f.to_dict()
        rows.append({"i": i, "file": _short(f.file), "sheet": f.sheet or "", "row": f.row or 0,
                     "column": f.column or "", "cell": f.cell or (f.sheet or "(file)"), "rule": f.rule,
                     "severity": f.severity, "rank": SEVERITY_RANK[f.severity], "study": f.study_id or "",
                     "value": _value_text(d["value"]), "message": f.message, "field": f.field or ""})
    return rows


def _summary_view(v: Any) -> dict[str, Any]:
    s = v.summary
    rule_sev: dict[str, str] = {}
    for f in v.finding_list:
        cur = rule_sev.get(f.rule)
        if cur is None or SEVERITY_RANK[f.severity] < SEVERITY_RANK[cur]:
            rule_sev[f.rule] = f.severity
    by_rule = sorted(((r, rule_sev.get(r, "info"), n) for r, n in s.by_rule.items()),
                     key=lambda x: (SEVERITY_RANK[x[1]], -x[2], x[0]))
    sheets = [{"sheet": k, **d} for k, d in s.by_sheet.items()]
    return {"forms": s.forms, "studies": s.studies, "rows_read": s.rows_read, "rows_passed": s.rows_passed,
            "rows_excluded": s.rows_excluded, "errors": s.errors, "warnings": s.warnings, "info": s.info,
            "by_rule": by_rule, "by_sheet": sheets}


def _study_row(r: Any, kind: str, weight: float | None = None) -> dict[str, Any]:
    if kind == "proportion":
        data = "" if r.events is None or r.total is None else f"{r.events:g}/{r.total:g}"
        if r.events is not None and r.total:
            data += f" ({100 * r.events / r.total:.1f}%)"
    else:
        data = "" if r.median is None else (
            f"{r.median:.1f} ({_nat(r.ci_low)}-{'NR' if r.ci_high is None else _nat(r.ci_high)})")
    return {"study": r.study_id, "label": r.label, "cohort": r.cohort, "group": r.group or "", "data": data,
            "weight": "" if weight is None else f"{weight:.1f}%", "reason": r.reason or "", "note": r.note or "",
            "where": f"{r.sheet}!{r.row}:{r.row}" if r.sheet and r.row else ""}


def _est_text(result: Any, kind: str) -> dict[str, Any]:
    if result is None:
        return {"text": "not pooled", "clipped": False, "pi": ""}
    d = result.display()
    clipped = any("clipped" in n for n in d["notes"]) and kind == "proportion"
    if kind == "proportion":
        text = f"{_pct(d['estimate'])}% (95% CI {_pct(d['ci_low'])}-{_pct(d['ci_high'])})"
        pi = f"{_pct(d['pi_low'])}-{_pct(d['pi_high'])}%"
    else:
        text = f"{_nat(d['estimate'])} months (95% CI {_nat(d['ci_low'])}-{_nat(d['ci_high'])})"
        pi = f"{_nat(d['pi_low'])}-{_nat(d['pi_high'])} months"
    return {"text": text, "clipped": clipped, "pi": pi}


def _analysis_view(run: Any, a: Any, svgs: dict[str, str], n: int) -> dict[str, Any]:
    from .analyses import sensitivity_table
    from .run import fmt_estimate, plot_name

    kind = a.kind
    res = a.result
    weights = list(res.weights) if res is not None else []
    taken = [_study_row(r, kind, _num(weights[i]) if i < len(weights) else None) for i, r in enumerate(a.taken)]
    left = [_study_row(r, kind) for r in a.left_out]
    est = _est_text(res, kind)
    sens = []
    if a.role == "primary":
        for row in sensitivity_table(run.analyses, a):
            if kind == "proportion":
                e = "NA" if row["estimate"] is None else f"{_pct(row['estimate'])}%"
                ci = "" if row["estimate"] is None else f"{_pct(row['ci_low'])}-{_pct(row['ci_high'])}"
            else:
                e = "NA" if row["estimate"] is None else _nat(row["estimate"])
                ci = "" if row["estimate"] is None else f"{_nat(row['ci_low'])}-{_nat(row['ci_high'])}"
            tau2 = _num(row["tau2"])
            i2 = _num(row["i2"])
            sens.append({"setting": _setting_name(row["setting"]), "k": row["k"], "estimate": e, "ci": ci,
                         "tau2": "NA" if tau2 is None else f"{tau2:.4f}", "i2": "NA" if i2 is None else f"{i2:.1f}%",
                         "note": row["note"], "primary": row["id"] == a.id})
    subgroups = []
    test = None
    if a.role == "subgroup_test":
        for s in run.children(a, "subgroup"):
            se = _est_text(s.result, kind)
            i2 = _num(s.result.i2) if s.result is not None else None
            subgroups.append({"group": s.group, "k": s.k, "estimate": se["text"], "i2": "NA" if i2 is None else f"{i2:.1f}%",
                              "clipped": se["clipped"]})
        if res is not None and res.q_between is not None:
            test = {"q": "NA" if _num(res.q_between) is None else f"{res.q_between:.2f}", "df": res.df_between,
                    "p": _fmt_p(res.p_between)}
    stem = f"plots/{plot_name(a.id)}"
    forest = inline_svg(svgs[stem], f"f{n}") if stem in svgs else None
    funnel = inline_svg(svgs[stem + ".funnel"], f"u{n}") if stem + ".funnel" in svgs else None
    eg = run.egger.get(a.id) if a.role == "primary" else None
    egger = None
    if eg is not None:
        egger = ("not available: " + eg.note) if _num(eg.z) is None else (
            f"t = {eg.z:.2f} (df = {eg.df}), p = {_fmt_p(eg.p)}; limit estimate {eg.intercept:.3f} on the "
            f"analysis scale")
    loo = []
    for x in run.leave_one_out.get(a.id, ()):
        loo.append({"study": x.study_id, "label": x.label, "estimate": fmt_estimate(x.estimate, kind),
                    "i2": "NA" if x.i2 is None else f"{x.i2:.1f}%"})
    influence = [inf for inf in run.influence if inf.analysis_id == a.id or inf.analysis_id.startswith(a.id + ":")]
    s = a.settings
    setting = (s.method if kind == "median" or s.method == "GLMM" else f"{s.measure}, {s.method}") + (
        ", Knapp-Hartung" if s.hk else "")
    notes = list(dict.fromkeys(list(a.notes) + (list(res.display()["notes"]) if res is not None else [])))
    return {"id": a.id, "anchor": "a-" + plot_name(a.id).replace("@", "-").replace(".", "-"), "label": a.label,
            "role": a.role, "kind": kind, "k": a.k, "setting": setting, "estimate": est, "taken": taken, "left": left,
            "sensitivity": sens, "subgroups": subgroups, "test": test, "forest": forest, "funnel": funnel,
            "egger": egger, "loo": loo, "influence": influence, "notes": notes,
            "png": stem + ".png", "svg": stem + ".svg"}


def _setting_name(code: str) -> str:
    names = {"PLO-REML": "logit, REML", "GLMM": "GLMM (binomial-normal)", "PFT-REML": "Freeman-Tukey, REML",
             "PAS-REML": "arcsine, REML", "PLO-DL": "logit, DerSimonian-Laird",
             "PLO-REML-HK": "logit, REML, Knapp-Hartung", "REML": "REML", "DL": "DerSimonian-Laird",
             "REML-HK": "REML, Knapp-Hartung"}
    return names.get(code, code)


def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("curation", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    return env


def _prisma(v: Any, primaries: Sequence[Any]) -> list[str]:
    s = v.summary
    parts = [f"{s.rows_read} rows read from {s.forms} form{'s' if s.forms != 1 else ''} ({s.studies} "
             f"{'study' if s.studies == 1 else 'studies'})"]
    excl = ", ".join(f"{k} {d['excluded']}" for k, d in s.by_sheet.items() if d["excluded"])
    parts.append(f"{s.rows_excluded} excluded by errors" + (f" ({excl})" if excl else ""))
    parts.append(f"{s.rows_passed} passed into the clean dataset")
    pooled = [a for a in primaries if a.role == "primary" and not a.outcome.startswith("ae")]
    if pooled:
        parts.append("pooled: " + ", ".join(f"{a.id.upper()} k = {a.k}" for a in pooled))
    return parts


def _page(context: dict[str, Any]) -> str:
    return _env().get_template("report.html.j2").render(**context)


def render_report(run: Any, svgs: dict[str, str], *, notes: Sequence[str] = ()) -> str:
    """``report.html`` of a :class:`curation.run.RunResult` (``svgs``: SVG text by ``plots/<stem>``)."""
    from .run import fmt_estimate, plot_name

    v = run.validation
    primaries = run.primary()
    analyses = [_analysis_view(run, a, svgs, n) for n, a in enumerate(primaries)]
    fix = []
    for g in run.fix_first():
        effects = []
        for e in g["effects"]:
            unit = "points" if e.kind == "proportion" else "months"
            effects.append({
                "label": e.analysis_label, "before": fmt_estimate(e.without, e.kind),
                "after": fmt_estimate(e.with_, e.kind),
                "delta": "" if e.delta is None else f"{e.delta:+.1f} {unit}",
                "anchor": "a-" + plot_name(e.analysis_id.split(":")[0]).replace("@", "-").replace(".", "-")})
        fix.append({"cell": g["cell"], "file": _short(g["file"]), "study": g["study_id"], "cohort": g["cohort"],
                    "errors": list(g["errors"]), "messages": list(dict.fromkeys(g["messages"])),
                    "replaces": g["effects"][0].replaces, "effects": effects})
    return _page(dict(
        title=f"curate run: {run.schema.name}", schema=run.schema.name, generated=run.generated,
        forms=[_short(n) for n in run.names], summary=_summary_view(v), prisma=_prisma(v, primaries),
        findings=_finding_rows(v.finding_list), filters=_filters(v.finding_list), analyses=analyses, fix=fix,
        notes=list(run.notes) + list(notes), with_analyses=True, n_findings=len(v.finding_list)))


def render_validation_page(result: Any) -> str:
    """The findings page of ``curate validate --report`` (the run page without analyses)."""
    return _page(dict(
        title=f"curate validate: {result.schema.name}", schema=result.schema.name, generated=None,
        forms=[_short(n) for n in result.files], summary=_summary_view(result), prisma=_prisma(result, []),
        findings=_finding_rows(result.finding_list), filters=_filters(result.finding_list), analyses=[], fix=[],
        notes=[], with_analyses=False, n_findings=len(result.finding_list)))


def _filters(findings: Sequence[Finding]) -> dict[str, list[str]]:
    sev = [s for s in ("error", "warning", "info") if any(f.severity == s for f in findings)]
    return {"severity": sev, "rule": sorted({f.rule for f in findings}),
            "sheet": sorted({f.sheet for f in findings if f.sheet}),
            "study": sorted({f.study_id for f in findings if f.study_id})}
