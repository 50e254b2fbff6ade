"""The ``curate`` command: a thin layer over the library.

Each command parses its arguments, calls one library function and renders its result. Heavy
imports (pandas, pandera, scipy, matplotlib) happen inside the commands, so ``curate --help``
stays quick. Unusable input and OS errors end with one line on stderr and exit code 2; an
interrupt (Ctrl-C, SIGTERM) with one line and 128 + the signal's number (130, 143); ``--debug``
shows the traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from pathlib import Path

import click

from . import __version__

SCHEMA_HELP = ("schema file, or the name of one shipped in schemas/ (default: the schema the form records, "
               "else prrt_177lu)")
# escalc measures and estimators (curation.schema.MEASURES / METHODS; kept literal so --help imports nothing)
MEASURES = ("PR", "PLN", "PLO", "PAS", "PFT", "OR", "RR", "RD", "MD", "SMD", "ROM", "GEN")
METHODS = ("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "GLMM", "MH", "PETO")


def _warn(message: str) -> None:
    click.echo(f"curate: warning: {message}", err=True)


def form_schema(schema: str | None, forms) -> str | None:
    """The schema to check ``forms`` against: ``--schema``, else the one the forms record (``curate
    template`` writes its name into the form), else None (the default). A form made for another
    schema than ``--schema``, or one that records a schema that is not shipped, gets a warning line.
    """
    from .reading import recorded_schema
    from .schema import DEFAULT_SCHEMA, load_schema, shipped_schemas

    recorded: dict[str, str] = {}
    for f in forms:
        p = Path(f)
        if p.is_file() and p.suffix.lower() in (".xlsx", ".xlsm"):
            name = recorded_schema(p)
            if name:
                recorded[str(f)] = name
        elif p.is_file() and p.suffix.lower() == ".csv":  # a clean CSV of `curate run`: its analysis.json says
            name = _run_schema(p.parent / "analysis.json")
            if name:
                recorded[str(f)] = name
    if schema is not None:
        name = load_schema(schema).name
        for f, rec in recorded.items():
            if rec != name:
                _warn(f"{f} was made for schema {rec!r}; it is checked against {name!r}, as --schema says")
        return schema
    if not recorded:
        return None
    names = list(dict.fromkeys(recorded.values()))
    chosen = names[0]
    if len(names) > 1:
        _warn(f"the forms record different schemas ({', '.join(names)}); all are checked against {chosen!r}")
    if chosen not in shipped_schemas():
        f = next(k for k, v in recorded.items() if v == chosen)
        _warn(f"{f} records schema {chosen!r}, which is not shipped ({', '.join(shipped_schemas())}); it is "
              f"checked against the default {DEFAULT_SCHEMA!r}: give --schema FILE to use the right one")
        return None
    return chosen


def _run_schema(path: Path) -> str | None:
    """The schema name ``curate run`` recorded in the ``analysis.json`` beside its clean CSVs."""
    import json

    try:
        if path.is_file() and path.stat().st_size < 200_000_000:
            with open(path, encoding="utf-8") as fh:
                head = fh.read(4096)  # "schema" is the first key the run writes
            import re

            m = re.search(r'"schema"\s*:\s*("(?:[^"\\]|\\.)*")', head)
            return json.loads(m.group(1)) if m else None
    except (OSError, ValueError):
        return None
    return None


def _peek_schema() -> str | None:
    """The --schema value on the command line (for help texts computed from the schema)."""
    args = sys.argv[1:]
    for i, a in enumerate(args):
        if a == "--schema" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--schema="):
            return a.split("=", 1)[1]
    return None


class _OutcomeOption(click.Option):
    """--outcome, whose help lists the outcomes of the schema (``--schema`` or the default)."""

    def get_help_record(self, ctx):
        record = super().get_help_record(ctx)
        try:
            from .schema import load_schema

            sch = load_schema(_peek_schema())
        except Exception:  # noqa: BLE001 - a bad --schema is reported when the command runs
            return record
        names = [n + (":TERM" if o.kind == "adverse_event" else "") for n, o in sch.analysis.outcomes.items()]
        return record[0], f"an outcome of schema {sch.name}: {', '.join(names) or 'none'}"
LAYOUT_HELP = "a layout file (`curate map` writes one) saying where the workbook keeps the fields (default: inferred)"


def _layout(path):
    """``--layout``: the layout file read, or None (inferred)."""
    if path is None:
        return None
    from .layout import load_layout

    return load_layout(path)


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"curate: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def _signals_stop():
    """SIGTERM and SIGHUP stop the command the way Ctrl-C does (an exception, so that temporary
    files are removed and worker processes ended on the way out), in the main thread only."""
    import signal
    import threading

    from .errors import Interrupted, clear_stops, note_stop

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame):
        note_stop(signum)  # remembered even if the exception is swallowed (a weakref callback drops it)
        raise Interrupted(signum)

    previous_int = signal.getsignal(signal.SIGINT)

    def interrupt(signum, frame):
        note_stop(signum)
        if callable(previous_int) and previous_int is not signal.default_int_handler:
            previous_int(signum, frame)  # a handler of the program that runs the command (noted first)
        raise KeyboardInterrupt

    clear_stops()
    wanted = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    before = {}
    for s in wanted:
        try:
            before[s] = signal.signal(s, stop)
        except (ValueError, OSError):  # pragma: no cover
            pass
    try:  # Ctrl-C: noted, then as before, unless SIGINT is ignored (a suite started in the background)
        if previous_int not in (signal.SIG_IGN, None):
            before[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
    except (ValueError, OSError):  # pragma: no cover
        pass
    try:
        yield
    finally:
        for s, h in before.items():
            signal.signal(s, h)


def handle_errors(func):
    """Unusable input or an OS error (a full disk, a permission, a vanished file) -> one line and
    exit 2; Ctrl-C -> one line and exit 130 (SIGTERM 143, SIGHUP 129); anything unexpected -> one
    line and exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from .errors import Interrupted, UnusableInputError

        debug = bool(os.environ.get("CURATE_DEBUG")) or click.get_current_context().find_root().params.get("debug")
        try:
            with _signals_stop():
                return func(*args, **kwargs)
        except UnusableInputError as exc:
            if debug:
                raise
            _fail(exc.message)
        except Interrupted as exc:
            _fail(exc.message, exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted (Ctrl-C)", 130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except MemoryError:
            _fail("out of memory while reading the input; is it really an extraction form?")
        except OSError as exc:  # the environment, not the data: a disk, a permission, a vanished file
            if debug:
                raise
            from .outputs import os_error_message

            _fail(os_error_message(exc))
        except Exception as exc:  # a bug of ours: still no traceback for the reviewer
            if debug:
                raise
            _fail(f"internal error ({type(exc).__name__}: {str(exc)[:200]}); rerun with --debug and report it")

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="curate")
@click.option("--debug", is_flag=True, help="Show a traceback instead of a one-line error.")
def main(debug: bool) -> None:
    """Check systematic-review extraction forms, reconcile two reviewers, pool the clean records.

    \b
    curate template -o form.xlsx            a blank extraction form from the schema
    curate validate form.xlsx --json f.json  check a form; findings at their cells
    curate reconcile a.xlsx b.xlsx -o c.xlsx compare two reviewers' forms
    curate pool clean.csv --outcome dcr      one pooled analysis
    curate run form.xlsx -o out/             the main job: validate, pool, report
    curate demo                              the main job on the shipped example forms
    """
    # pandera imports hypothesis, for data synthesis, whenever it is installed (a development dependency
    # here): the command line never synthesises data and the import costs a quarter of a second
    if "pytest" not in sys.modules:
        sys.modules.setdefault("hypothesis", None)  # type: ignore[assignment]


@main.command()
@click.argument("forms", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--schema", "schema", default=None, help=SCHEMA_HELP)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="write findings and summary as JSON")
@click.option("--report", "report_out", type=click.Path(dir_okay=False, path_type=Path), help="write the findings page (HTML)")
@click.option("--clean", "clean_out", type=click.Path(dir_okay=False, path_type=Path), help="write the clean analysis dataset (CSV)")
@click.option("--annotate", "annotate_dir", type=click.Path(file_okay=False, path_type=Path),
              help="write a copy of each form with the findings marked into this folder")
@click.option("--strict", is_flag=True, help="count warnings as errors for the exit code")
@click.option("--jobs", "-j", type=int, default=None, help="forms read in parallel (default: all cores for 4+ forms)")
@click.option("--max-mb", type=float, default=None,
              help="refuse a workbook larger than this uncompressed (default: the schema's limit, 200 MB)")
@click.option("--quiet", "-q", is_flag=True, help="print only the summary line")
@click.option("--layout", "layout_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help=LAYOUT_HELP)
@handle_errors
def validate(forms, schema, json_out, report_out, clean_out, annotate_dir, strict, jobs, max_mb, quiet, layout_file):
    """Check forms against the schema; report every finding at its cell.

    Exit code 0: no error (warnings allowed; with --strict none either); 1: errors found;
    2: a form could not be used.
    """
    from .console import print_validation, progress_bar
    from .schema import load_schema
    from .validation import expand_forms, form_names, limits_for
    from .validation import validate as run_validate

    paths = expand_forms(forms)
    sch = load_schema(form_schema(schema, paths))
    with progress_bar(len(paths), "reading forms", enabled=len(paths) > 1 and not quiet) as advance:
        result = run_validate(paths, sch, jobs=jobs, limits=limits_for(sch, max_mb), progress=advance,
                              names=form_names(paths), layout=_layout(layout_file))
    from . import outputs

    if json_out:
        outputs.write_json(json_out, result.to_dict())
    if clean_out:
        outputs.write_csv(clean_out, result.clean)
    if annotate_dir:
        from .report import annotate_forms

        annotate_forms(result, annotate_dir, paths)
    if report_out:
        from .report import render_validation_page

        outputs.write_text(report_out, render_validation_page(result))
    print_validation(result, quiet=quiet)
    sys.exit(result.exit_code(strict))


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--outcome", required=True, cls=_OutcomeOption,
              help="an outcome of the schema (`curate pool --schema S --help` lists them)")
@click.option("--measure", type=click.Choice(MEASURES, case_sensitive=False), default=None,
              help="escalc measure: PR/PLN/PLO/PAS/PFT for proportions, OR/RR/RD for two-arm counts, "
                   "MD/SMD/ROM for two-arm means (default: the schema's that fits the outcome)")
@click.option("--method", type=click.Choice(METHODS, case_sensitive=False), default=None,
              help="tau2 estimator, GLMM (proportions), MH or PETO (two-arm counts) (default: the schema's, REML)")
@click.option("--hk", is_flag=True, help="Knapp-Hartung adjustment (t distribution, k-1 df)")
@click.option("--level", type=float, default=None, help="confidence level (default 0.95)")
@click.option("--subgroup", default=None, help="a subgroup of the schema (grade, site) or a field (primary_site)")
@click.option("--schema", "schema", default=None, help=SCHEMA_HELP)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="write the analysis as JSON")
@click.option("--forest", "forest_out", type=click.Path(dir_okay=False, path_type=Path),
              help="write a forest plot (.svg or .png)")
@click.option("--layout", "layout_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help=LAYOUT_HELP)
@handle_errors
def pool(input_path, outcome, measure, method, hk, level, subgroup, schema, json_out, forest_out, layout_file):
    """Pool one outcome from a form or a clean dataset CSV (metafor's numbers).

    INPUT is an extraction form (validated first; only records that pass are pooled) or a clean
    dataset written by `curate validate --clean` or `curate run`.
    """
    from . import outputs
    from .analyses import pool_input
    from .console import print_analyses
    from .schema import PoolSettings, load_schema

    from .errors import UnusableInputError
    from .schema import method_fits

    sch = load_schema(form_schema(schema, [input_path]))
    name = outcome.partition(":")[0]
    if name not in sch.analysis.outcomes:
        raise UnusableInputError(f"--outcome {outcome}: unknown outcome (schema {sch.name}'s: "
                                 f"{', '.join(sch.analysis.outcomes) or 'none'})")
    oc = sch.analysis.outcomes[name]
    base = sch.settings_for(oc)
    settings = PoolSettings(measure=(measure or base.measure).upper(), method=(method or base.method).upper(),
                            hk=hk or base.hk, level=level or base.level)
    if oc.kind not in ("proportion", "adverse_event", "median"):
        why = method_fits(oc.kind, "GEN" if oc.kind == "reported_effect" else settings.measure, settings.method)
        if why:
            raise UnusableInputError(f"--outcome {outcome}: {why}")
    analyses, _validation = pool_input(input_path, outcome, schema=sch, settings=settings, subgroup=subgroup,
                                       layout=_layout(layout_file))
    if json_out:
        # the requested analysis at the top level; with its subgroups and sensitivity entries under
        # "analyses", as analysis.json holds them
        outputs.write_json(json_out, {**analyses[0].to_dict(), "analyses": [a.to_dict() for a in analyses]})
    if forest_out:
        from .plots import analysis_forest, figure_png, figure_svg

        fig = analysis_forest(analyses[0], [a for a in analyses if a.parent == analyses[0].id and a.role == "subgroup"])
        data = figure_png(fig) if forest_out.suffix.lower() == ".png" else figure_svg(fig).encode()
        outputs.atomic_write_bytes(forest_out, data)
    print_analyses(analyses)
    if analyses[0].result is None:
        sys.exit(1)


@main.command("verify")
@click.argument("forms", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--sources", "sources_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder of the studies' articles (PDF with a text layer, JATS .xml/.nxml)")
@click.option("--schema", "schema", default=None, help=SCHEMA_HELP)
@click.option("--layout", "layout_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help=LAYOUT_HELP)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="write findings and the verification table as JSON")
@click.option("--report", "report_out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the findings page (HTML)")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where extracted article text is kept by file hash (default: the user's cache folder)")
@click.option("--strict", is_flag=True, help="count warnings as errors for the exit code")
@click.option("--quiet", "-q", is_flag=True, help="print only the summary lines")
@handle_errors
def verify_cmd(forms, sources_dir, schema, layout_file, json_out, report_out, cache_dir, strict, quiet):
    """Check each extracted figure against its study's article: found, printed otherwise, or absent.

    Exit code 0: no error (warnings allowed; with --strict none either); 1: errors found;
    2: a form or the sources folder could not be used.
    """
    from .console import console, print_validation
    from .schema import load_schema
    from .sources.stage import verify, with_source_findings
    from .validation import expand_forms

    paths = expand_forms(forms)
    sch = load_schema(form_schema(schema, paths))
    result, ver = verify(paths, sources_dir, sch, layout=_layout(layout_file), cache_dir=cache_dir)
    merged = with_source_findings(result, ver)
    from . import outputs

    if json_out:
        outputs.write_json(json_out, {**merged.to_dict(), "verification": [e.to_dict() for e in ver.entries]})
    if report_out:
        from .report import render_validation_page

        outputs.write_text(report_out, render_validation_page(merged))
    print_validation(merged, quiet=quiet)
    c = console()
    counts = ver.counts()
    if not quiet:
        for e in ver.entries:
            if e.status in ("mismatch", "inconsistent-source"):
                v = f"{e.value:g}" if isinstance(e.value, float) else e.value
                c.print(f"{e.status:20} {e.cell or e.file}  {e.field} = {v}; printed {e.printed} in {e.place}",
                        markup=False, highlight=False)
    c.print(f"{len(ver.entries)} figure(s) verified: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n),
            markup=False, highlight=False)
    sys.exit(merged.exit_code(strict))


@main.command("locate")
@click.argument("article", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("value")
@click.option("--near", "near", multiple=True, help="a word that names the figure (repeatable): its places come first")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="write the places as JSON")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="where extracted article text is kept by file hash (default: the user's cache folder)")
@handle_errors
def locate_cmd(article, value, near, json_out, cache_dir):
    """Every place where VALUE is printed in ARTICLE (PDF or JATS XML), best first."""
    from .sources.stage import locate

    places = locate(article, value, near=near, cache_dir=cache_dir)
    if json_out:
        from . import outputs

        outputs.write_json(json_out, {"article": article.name, "value": value, "near": list(near),
                                      "places": [p.to_dict() for p in places]})
    for p in places:
        terms = f" [near {', '.join(p.near_terms)}]" if p.near_terms else ""
        click.echo(f"{p.text}: {p.printed}{terms}\n    \"{p.quote}\"")
    click.echo(f"{len(places)} place(s) where {value} is printed in {article.name}")


@main.command("map")
@click.argument("forms", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--schema", "schema", default=None, help=SCHEMA_HELP)
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the layout (.yaml)")
@handle_errors
def map_cmd(forms, schema, output):
    """Infer where a workbook keeps the schema's fields; write it as a layout file to read and correct.

    The layout names, per sheet, the contract sheets it holds, its header rows, each column's
    field(s) and form (n (%), median (95% CI), a CI column, Author (year)) and the rows that are not
    data. Pass it back with --layout on validate, run, reconcile and pool. A folder of workbooks (one
    per study), as validate reads it, gets one layout per workbook in the one file.
    """
    from . import outputs
    from .console import print_layout
    from .layout import map_forms
    from .schema import load_schema
    from .validation import expand_forms, form_names, limits_for

    paths = expand_forms(forms)
    sch = load_schema(form_schema(schema, paths))
    layout = map_forms(paths, sch, names=form_names(paths), limits=limits_for(sch, None))
    outputs.write_text(output, layout.to_yaml())
    print_layout(layout)
    click.echo(f"wrote {output}: correct it where it is wrong, then use it with --layout {output}")


@main.command()
@click.option("--schema", "schema", default=None, help=SCHEMA_HELP)
@handle_errors
def rules(schema):
    """List every rule: code, severity, scope and what it checks."""
    from .rules import all_rules, never_run_checks
    from .schema import load_schema

    if schema:
        for line in never_run_checks(load_schema(schema)):
            _warn(line)
    for r in all_rules():
        click.echo(f"{r.code:36} {r.severity:8} {r.scope:9} {r.summary}")
        for p in r.params:
            click.echo(f"{'':36} {'':8} {'':9}   {p.name}{'' if p.required else ' (optional)'}: {p.help}")


@main.command()
@click.argument("form_a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("form_b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--schema", "schema", default=None, help=SCHEMA_HELP)
@click.option("-o", "--output", "consensus_out", type=click.Path(dir_okay=False, path_type=Path),
              help="write the consensus form (with a conflicts sheet for the adjudicator)")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="write conflicts, agreement and each reviewer's findings as JSON")
@click.option("--adjudication", type=click.Path(dir_okay=False, path_type=Path),
              help="a third reviewer's filled conflicts sheet; its decisions go into the consensus")
@click.option("--layout", "layout_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help=LAYOUT_HELP)
@handle_errors
def reconcile(form_a, form_b, schema, consensus_out, json_out, adjudication, layout_file):
    """Compare two reviewers' forms of the same studies: conflicts, agreement, consensus.

    Rows are matched by key and values compared after normalisation, so only real
    disagreements are conflicts. With --adjudication, the resolved values go into the consensus
    and an audit log (<consensus>.audit.json) is written beside it.

    Exit code 0: no conflict left unresolved; 1: conflicts remain; 2: a form could not be used.
    """
    from . import outputs
    from .errors import UnusableInputError
    from .reconcile import consensus_workbook, print_reconciliation, reconcile as run_reconcile, workbook_bytes

    if consensus_out is not None:
        out = consensus_out.resolve()
        for given in (form_a, form_b, adjudication):
            if given is not None and Path(given).resolve() == out:
                raise UnusableInputError(f"{consensus_out}: the consensus would overwrite an input; choose another -o")
    rec = run_reconcile(form_a, form_b, form_schema(schema, [form_a, form_b]), adjudication,
                        layout=_layout(layout_file))
    if consensus_out is not None:
        outputs.atomic_write_bytes(consensus_out, workbook_bytes(consensus_workbook(rec)))
        if adjudication is not None:
            outputs.write_json(consensus_out.with_suffix(".audit.json"), rec.audit_log())
    if json_out is not None:
        outputs.write_json(json_out, rec.to_dict())
    print_reconciliation(rec)
    sys.exit(rec.exit_code())


@main.command()
@click.option("--schema", "schema", default=None, help=SCHEMA_HELP)
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="where to write the blank form (.xlsx)")
@handle_errors
def template(schema, output):
    """Write a blank extraction form generated from the schema.

    Sheets with the field keys as headers, drop-down lists for vocabularies, number checks, a note
    on every header, live checks that colour wrong cells while typing, and an instructions sheet.
    """
    from . import outputs
    from .schema import load_schema
    from .template import build_template, workbook_bytes

    if output.suffix.lower() != ".xlsx":
        _fail(f"{output}: the form is an Excel workbook; give a file name ending in .xlsx")
    sch = load_schema(schema)
    outputs.atomic_write_bytes(output, workbook_bytes(build_template(sch)))
    click.echo(f"wrote {output} (schema {sch.name}: {', '.join(sch.sheets)})")


@main.command("run")
@click.argument("forms", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--schema", "schema", default=None, help=SCHEMA_HELP)
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder to write (the run in it is replaced as a whole; your own files in it are kept)")
@click.option("--plots", "plots", type=click.Choice(["svg", "png", "none"]), default="svg", show_default=True,
              help="format of the plot files in plots/ (the report has every plot inline either way)")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@click.option("--layout", "layout_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help=LAYOUT_HELP)
@click.option("--sources", "sources", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="folder of the studies' articles (PDF, JATS XML): check every extracted figure against its article "
                   "(docs/sources.md)")
@handle_errors
def run_cmd(forms, schema, out_dir, plots, quiet, layout_file, sources):
    """The main job: validate, pool the schema's analysis plan from the records that pass, and
    write the report, findings, clean data, analyses, plots and annotated forms into a folder.

    Exit code 0: no error; 1: errors found (the run completed); 2: a form or the output folder
    could not be used (DIR left as it was); 130: interrupted (DIR left as it was). DIR is
    replaced as a whole: the complete old run or the complete new one, your own files in it kept.
    With --sources DIR, every figure is first checked against its study's article: the report gets a
    Sources section, the annotated forms the quote in each verified cell's comment.
    """
    from .run import run_command
    from .validation import expand_forms

    sys.exit(run_command(forms, form_schema(schema, expand_forms(forms)), out_dir, quiet=quiet, plots=plots,
                         layout=_layout(layout_file), sources=sources))


@main.command("demo")
@click.option("-o", "--output", "out_dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="folder to write (default: reports/demo)")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@handle_errors
def demo_cmd(out_dir, quiet):
    """`curate run` on the shipped example forms (two reviewers reconciled with the example
    adjudication) into reports/demo/. Exit code 0 when the demo ran."""
    from .run import demo_command

    sys.exit(demo_command(out_dir, quiet=quiet))


@main.command("export-gx")
@click.option("--schema", "schema", default=None, help=SCHEMA_HELP)
@click.option("--sheet", default=None, help="the clean table the suite is for (default: the analysis sheet, clean.csv)")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="write the Expectation Suite (JSON) here")
@handle_errors
def export_gx(schema, sheet, output):
    """Write a GX Core 1.x Expectation Suite (JSON) for the clean dataset.

    Load it with great_expectations.ExpectationSuite(**json.load(f)); see docs/handoff.md.
    """
    from . import outputs
    from .errors import UnusableInputError
    from .handoff import gx_suite
    from .schema import load_schema

    sch = load_schema(schema)
    if sheet is not None and sheet not in sch.sheets:
        raise UnusableInputError(f"--sheet {sheet}: no such sheet in schema {sch.name} ({', '.join(sch.sheets)})")
    suite = gx_suite(sch, sheet)
    outputs.write_json(output, suite)
    click.echo(f"wrote {output}: {len(suite['expectations'])} expectations for {suite['meta']['dataset']}")


if __name__ == "__main__":  # pragma: no cover
    main()
