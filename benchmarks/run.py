"""Benchmark: `curate validate` against the floor of reading the same workbook with python-calamine.

Run from the project root with ``make bench`` (or ``.venv/bin/python benchmarks/run.py``).
It generates workbooks of the given sizes into ``benchmarks/out/`` (cached), then times whole
processes, as a reviewer would feel them:

* ``curate validate BIG.xlsx`` against a process that only reads every cell with calamine
  (the floor), the ratio of the two, rows per second and the peak memory (max RSS);
* ``curate --help``;
* ``curate validate`` on a 20-study form, end to end;
* REML on 10,000 studies and leave-one-out on 1,000 studies (in process);
* where ``curate run``'s time goes, phase by phase (imports, reading, checks, pooling, what matters
  most, plots, the page, the annotated copy, the hand-off files, the swap), on the 13-trial BCG
  example and a 20-study form (``--phases`` for this part alone);
* ``curate run`` against ``curate validate`` of the same form, for forms of 20, 200 and 1,000
  studies with about 30% of outcome rows in error and a clean one of 10,000 studies: wall and CPU
  time of each, their ratio, the peak memory of each process, the size of report.html and of the
  output folder (``--only-run`` for this part alone).

Each timing is the median of ``--repeat`` runs. Nothing here is a test: figures are printed and
written to ``benchmarks/out/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
BIN = Path(sys.executable).parent
CURATE = str(BIN / "curate")

GRADES = ["G1", "G2", "G1-2", "G3", "mixed", "G1/G2", "Grade 3"]
KI67 = {"G1": 2, "G2": 15, "G1-2": 15, "G3": 35, "mixed": None, "G1/G2": 12, "Grade 3": 30}
SITES = ["pancreas", "midgut", "small_intestine", "mixed", "pNET", "lung"]
TERMS = ["anaemia", "thrombocytopenia", "leukopenia", "nephrotoxicity", "nausea", "fatigue"]


def generate(path: Path, n_studies: int, seed: int = 1, errors: float = 0.0) -> int:
    """A realistic form: per study 1 studies row, ~3 outcome rows, ~0.7 AE rows; ~1% slips.

    ``errors``: the share of outcome rows given an error of their own (counts that do not add
    up, a percentage that does not match its counts, more evaluable than enrolled, a median
    outside its CI), and about a tenth of that share of studies given a study-level error (an
    ineligible radiopharmaceutical or a reversed enrolment period) that excludes all their rows.
    """
    import openpyxl

    rng = random.Random(seed)
    wb = openpyxl.Workbook(write_only=True)
    st = wb.create_sheet("studies")
    st.append(["study_id", "first_author", "year", "doi", "pmid", "country", "design", "radiopharmaceutical",
               "response_criteria", "n_enrolled", "cycles_median", "activity_per_cycle_gbq",
               "cumulative_activity_gbq", "enrolment_start", "enrolment_end", "extractor"])
    oc = wb.create_sheet("outcomes")
    oc.append(["study_id", "cohort", "grade", "ki67_max", "primary_site", "n_evaluable", "cr", "pr", "sd", "pd",
               "ne", "orr_pct", "dcr_pct", "pfs_median", "pfs_ci_low", "pfs_ci_high", "pfs_unit", "os_median",
               "os_ci_low", "os_ci_high", "os_unit", "followup_median_months", "extractor"])
    ae = wb.create_sheet("adverse_events")
    ae.append(["study_id", "ae_term", "grade3plus_n", "any_grade_n", "n_safety", "extractor"])
    rows = 0
    for s in range(n_studies):
        sid = f"S{s:05d}"
        n = rng.randint(20, 600)
        start = rng.randint(1995, 2018)
        cycles = rng.choice([2, 3, 4, 4, 4, 5])
        act = rng.choice([5.5, 7.4, 7.4, 7.4, 7.8])
        drug = rng.choice(["177Lu-DOTATATE", "Lutathera", "177Lu-DOTATOC"])
        end = start + rng.randint(1, 3)
        if errors and rng.random() < errors / 10:  # a study-level error: all its rows are excluded
            if rng.random() < 0.5:
                drug = "90Y-DOTATOC"
            else:
                start, end = end, start
        st.append([sid, f"Author{s}", max(start, end) + rng.randint(3, 6), f"10.1000/x{s}", 10000000 + s,
                   rng.choice(["NL", "IT", "DE", "US", "AU"]), rng.choice(["retrospective", "prospective", "RCT"]),
                   drug, rng.choice(["RECIST 1.1", "RECIST v1.1", "WHO", "RECIST 1.0"]), n, cycles, act,
                   round(cycles * act, 1), start, end, "AB"])
        rows += 1
        cohorts = [("overall", "mixed", n)]
        for extra in range(rng.choice([1, 2, 2, 3])):
            cohorts.append((f"sub{extra}", rng.choice(GRADES), max(1, n // 4)))
        for cohort, grade, size in cohorts:
            ne_ = size - rng.randint(0, max(1, size // 10))
            cr = rng.randint(0, ne_ // 20)
            pr = rng.randint(0, ne_ // 3)
            sd = rng.randint(0, ne_ - cr - pr)
            pd_ = ne_ - cr - pr - sd
            if rng.random() < 0.01:
                pd_ += 3  # slip: counts do not add up
            orr = round(100 * (cr + pr) / ne_, 1)
            dcr = round(100 * (cr + pr + sd) / ne_, 1)
            pfs = round(rng.uniform(8, 40), 1)
            os_ = round(pfs + rng.uniform(5, 40), 1)
            pfs_lo = round(pfs * 0.8, 1)
            if errors and rng.random() < errors:  # one error of the row's own
                slip = rng.randrange(4)
                if slip == 0:
                    pd_ += rng.randint(1, 5)  # response-sum-mismatch
                elif slip == 1:
                    orr = round(orr + rng.choice([-10, 10, 20]), 1)  # percentage-mismatch
                elif slip == 2:
                    ne_ = n + rng.randint(1, 20)  # evaluable-exceeds-enrolled (and the counts then do not add up)
                else:
                    pfs_lo = round(pfs * 1.3, 1)  # median-outside-ci
            oc.append([sid, cohort, grade, KI67[grade], rng.choice(SITES), ne_, cr, pr, sd, pd_,
                       None, orr, f"{dcr}%" if rng.random() < 0.2 else dcr, pfs, pfs_lo,
                       round(pfs * 1.25, 1), "months", os_, round(os_ * 0.8, 1),
                       "NR" if rng.random() < 0.1 else round(os_ * 1.25, 1), "mo", round(os_ * 1.1, 1), "AB"])
            rows += 1
        if rng.random() < 0.7:
            g3 = rng.randint(0, 10)
            ae.append([sid, rng.choice(TERMS), g3, g3 + rng.randint(0, 30), n, "AB"])
            rows += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return rows


FLOOR = """
import sys
from python_calamine import CalamineWorkbook
wb = CalamineWorkbook.from_path(sys.argv[1])
n = 0
for name in wb.sheet_names:
    n += len(wb.get_sheet_by_name(name).to_python())
print(n)
"""


PANDAS_FLOOR = """
import sys
import pandas as pd
frames = pd.read_excel(sys.argv[1], sheet_name=None, engine="calamine")
print(sum(len(f) for f in frames.values()))
"""
"""What a reviewer's own script does to read the workbook: pandas (with calamine) into data frames. The
validate target of issue 8 is measured against it (re-based from the bare calamine read)."""


_PROBE = """
import os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, u = os.wait4(p.pid, 0)
print(time.perf_counter() - t0, u.ru_utime + u.ru_stime, u.ru_maxrss / 1024, os.waitstatus_to_exitcode(status))
"""


def timed(cmd: list[str], repeat: int, cpu: list | None = None) -> tuple[float, float, int]:
    """Median wall seconds, peak RSS (MB) and the exit code of a whole process (``cpu``: the
    median CPU seconds, user + system, is appended to it)."""
    times, peaks, cpus, code = [], [], [], 0
    for _ in range(repeat):
        # measured by a small probe process: a child forked from this one counts this process's memory
        # (the generated forms held here) in its peak RSS until it execs, so its own peak would be hidden
        out = subprocess.run([sys.executable, "-S", "-c", _PROBE, *cmd], capture_output=True, text=True).stdout
        wall, cpu_s, peak, code = out.split()
        times.append(float(wall))
        cpus.append(float(cpu_s))
        peaks.append(float(peak))
        code = int(code)
    if cpu is not None:
        cpu.append(statistics.median(cpus))
    return statistics.median(times), max(peaks), code


RUN_FORMS = ((20, 0.3), (200, 0.3), (1_000, 0.3), (10_000, 0.0))
"""``curate run`` against ``curate validate``: forms of these many studies, with this share of
outcome rows in error (the 10,000-study form clean, as in issue 15)."""


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def run_vs_validate(repeat: int, sizes=RUN_FORMS) -> list[dict]:
    """Per form: validate and run timed (wall and CPU), their ratio, the peak RSS of each, the
    size of report.html and of the output folder."""
    import shutil

    rows = []
    for n, errors in sizes:
        form = OUT / f"run_{n}_{int(100 * errors)}.xlsx"
        if not form.exists():
            print(f"generating {form.name} ...", flush=True)
            generate(form, n, seed=7, errors=errors)
        out = OUT / f"run_{n}_out"
        vcpu: list = []
        rcpu: list = []
        v_t, v_mem, _ = timed([CURATE, "validate", str(form), "--quiet"], repeat, vcpu)

        def once():
            shutil.rmtree(out, ignore_errors=True)
            return timed([CURATE, "run", str(form), "-o", str(out), "-q"], 1, rcpu)

        runs = [once() for _ in range(repeat)]
        r_t = statistics.median(r[0] for r in runs)
        r_mem = max(r[1] for r in runs)
        rows.append(dict(studies=n, errors=errors, validate_s=v_t, run_s=r_t, ratio=r_t / v_t,
                         validate_cpu_s=statistics.median(vcpu), run_cpu_s=statistics.median(rcpu),
                         cpu_ratio=statistics.median(rcpu) / statistics.median(vcpu),
                         validate_peak_mb=v_mem, run_peak_mb=r_mem, exit=runs[-1][2],
                         report_mb=(out / "report.html").stat().st_size / 1e6, folder_mb=folder_mb(out)))
        r = rows[-1]
        print(f"  {n:>6} studies ({int(100 * errors)}% error rows): validate {v_t:6.2f} s, run {r_t:7.2f} s "
              f"= {r['ratio']:4.1f}x (CPU {r['cpu_ratio']:4.1f}x); peak {v_mem:5.0f} / {r_mem:5.0f} MB; "
              f"report.html {r['report_mb']:5.2f} MB, folder {r['folder_mb']:6.1f} MB", flush=True)
    return rows


PHASES = r"""
import json, sys, time
t = {"start": time.perf_counter()}
marks = []
def mark(name):
    marks.append((name, time.perf_counter()))
import curation.run as R
from curation.outputs import write_folder
mark("import curation.run (pandas, numpy, scipy)")
import pandera.pandas, openpyxl, jinja2, matplotlib.figure, matplotlib.backends.backend_svg  # noqa
mark("import what validate and run load lazily (pandera, openpyxl, jinja2, matplotlib)")
form, out = sys.argv[1], sys.argv[2]
snap = R.read_snapshots([form])
stage_t = {}
def progress(stage, done, total):
    stage_t[stage] = time.perf_counter()
from curation.reading import recorded_schema
run = R.run_job([form], recorded_schema(form), progress=progress, names=[form.rsplit("/", 1)[-1]], data=snap)
mark_t = time.perf_counter()
prev = marks[-1][1]
for stage, label in (("read", "read the form (calamine, layout)"), ("check", "check (rules, pandera)"),
                     ("pool", "pool the plan"), ("influence", "leave-one-out, Egger, what matters most")):
    if stage in stage_t:
        marks.append((label, stage_t[stage]))
jobs = R.plot_jobs(run)
t0 = time.perf_counter()
svgs = {}
for job in jobs:
    stem, svg, png, failed = R.render_plot_safe(job)
    svgs[stem] = svg
marks.append((f"draw {len(jobs)} plot(s) (matplotlib, SVG)", time.perf_counter()))
from curation.report import render_report, annotated_workbook
page = render_report(run, {k: v for k, v in svgs.items() if v})
marks.append(("report.html (jinja2)", time.perf_counter()))
v = run.validation
for path, name, data in zip(run.paths, run.names, run.data):
    annotated_workbook(path, [f for f in v.finding_list if f.file == name], v, name, data=data)
marks.append(("annotated copy of the form (openpyxl)", time.perf_counter()))
from curation.outputs import csv_text, dumps
from curation import handoff
names = R.csv_names(run)
files = {n: csv_text(v.clean_tables[s]).encode() for s, n in names.items()}
files["analysis.json"] = dumps(R.analysis_dict(run)).encode()
files["analysis.R"] = handoff.analysis_r_script(run.schema, list(run.analyses), names).encode()
files["report.html"] = page.encode()
marks.append(("clean CSVs, analysis.json, analysis.R", time.perf_counter()))
write_folder(out, files)
marks.append(("write the folder (staged, swapped)", time.perf_counter()))
out_t, last = [], t["start"]
for name, at in marks:
    out_t.append([name, at - last])
    last = at
print(json.dumps(out_t))
"""
"""One ``curate run`` in one process, phase by phase: where the time goes (in-process figures; the
interpreter's own start-up is the difference to the whole process)."""


def run_phases(form: Path, repeat: int) -> list[tuple[str, float]]:
    """Median seconds of each phase of ``curate run`` on ``form`` (a fresh process each time)."""
    import shutil

    per: dict[str, list[float]] = {}
    order: list[str] = []
    for i in range(repeat):
        out = OUT / "phases_out"
        shutil.rmtree(out, ignore_errors=True)
        proc = subprocess.run([sys.executable, "-c", PHASES, str(form), str(out)], capture_output=True, text=True,
                              cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        for name, secs in json.loads(proc.stdout.strip().splitlines()[-1]):
            if name not in per:
                order.append(name)
            per.setdefault(name, []).append(secs)
    return [(name, statistics.median(per[name])) for name in order]


def print_phases(title: str, form: Path, repeat: int) -> dict:
    """Time validate, run and python's start-up on ``form``; print run's phases."""
    v_t, _, _ = timed([CURATE, "validate", str(form), "--quiet"], repeat)
    r_out = OUT / "phases_run"
    import shutil

    shutil.rmtree(r_out, ignore_errors=True)
    r_t, _, _ = timed([CURATE, "run", str(form), "-o", str(r_out), "-q"], repeat)
    py_t, _, _ = timed([sys.executable, "-c", "pass"], repeat)
    phases = run_phases(form, repeat)
    print(f"{title}: curate validate {v_t:.2f} s, curate run {r_t:.2f} s (python itself {py_t:.2f} s); "
          "run, phase by phase:")
    total = sum(s for _, s in phases)
    for name, secs in phases:
        print(f"  {name:72} {secs:6.2f} s  {100 * secs / total:4.0f}%")
    return {"form": form.name, "validate_s": v_t, "run_s": r_t, "python_s": py_t, "phases": phases}


def compile_package() -> None:
    """Byte-compile the package before timing it, as an install does (``pip install`` writes the ``.pyc``
    files; an editable install writes them on the first import, unless PYTHONDONTWRITEBYTECODE is set, when
    every process would compile the whole package from source again: about 0.25 s that no user pays)."""
    import compileall

    compileall.compile_dir(str(ROOT / "curation"), quiet=1)


def in_process(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=10_000, help="studies in the large workbook (10,000 ~ 47,000 rows)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--run-repeat", type=int, default=1, help="repeats of each run/validate pair (whole runs are long)")
    ap.add_argument("--only-run", action="store_true", help="only the run/validate comparison")
    ap.add_argument("--skip-run", action="store_true", help="without the run/validate comparison")
    ap.add_argument("--phases", action="store_true", help="only where curate run's time goes, phase by phase, "
                    "on the 13-trial BCG example and a 20-study form")
    ap.add_argument("--run-studies", default="", help="comma-separated study counts of the run/validate forms "
                    "(default: 20,200,1000,10000)")
    args = ap.parse_args()
    compile_package()
    if args.phases:
        OUT.mkdir(parents=True, exist_ok=True)
        small = OUT / "form_20.xlsx"
        if not small.exists():
            generate(small, 20, seed=2)
        rows = [print_phases("13-trial BCG example", ROOT / "extraction_forms" / "example_bcg.xlsx", args.repeat),
                print_phases("20-study PRRT form", small, args.repeat)]
        (OUT / "results_phases.json").write_text(json.dumps(rows, indent=2) + "\n")
        return 0
    if args.only_run:
        OUT.mkdir(parents=True, exist_ok=True)
        print("curate run against curate validate, same form (target: run <= 10x validate, 15x at 10,000 "
              "studies; peak < 2 GB; report.html < 10 MB; folder < 100 MB):")
        wanted = {int(x) for x in args.run_studies.split(",") if x.strip()}
        rows = run_vs_validate(args.run_repeat, [f for f in RUN_FORMS if not wanted or f[0] in wanted])
        (OUT / "results_run.json").write_text(json.dumps(rows, indent=2) + "\n")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    big = OUT / f"form_{args.studies}.xlsx"
    small = OUT / "form_20.xlsx"
    meta = OUT / f"form_{args.studies}.rows"
    if not big.exists() or not meta.exists():
        print(f"generating {big.name} ...", flush=True)
        meta.write_text(str(generate(big, args.studies)))
    if not small.exists():
        generate(small, 20, seed=2)
    rows = int(meta.read_text())
    results: dict[str, float] = {"rows": rows, "studies": args.studies}

    cpu: dict[str, list] = {k: [] for k in ("floor", "pandas", "validate", "small")}
    floor_t, floor_mem, _ = timed([sys.executable, "-c", FLOOR, str(big)], args.repeat, cpu["floor"])
    pandas_t, _pandas_mem, _ = timed([sys.executable, "-c", PANDAS_FLOOR, str(big)], args.repeat, cpu["pandas"])
    val_t, val_mem, code = timed([CURATE, "validate", str(big), "--quiet"], args.repeat, cpu["validate"])
    help_t, _, _ = timed([CURATE, "--help"], max(args.repeat, 5))
    small_t, _, _ = timed([CURATE, "validate", str(small), "--quiet"], args.repeat, cpu["small"])
    # CPU time (user + system) besides wall time: on a machine shared with other work the wall-clock ratio
    # says more about the load than about the program; the CPU ratio of the same run does not
    pandas_cpu, val_cpu = cpu["pandas"][0], cpu["validate"][0]
    results.update(floor_s=floor_t, pandas_s=pandas_t, pandas_ratio=val_t / pandas_t,
                   validate_s=val_t, ratio=val_t / floor_t, rows_per_s=rows / val_t,
                   peak_mb=val_mem, floor_peak_mb=floor_mem, help_s=help_t, small_form_s=small_t,
                   validate_exit=code, pandas_cpu_s=pandas_cpu, validate_cpu_s=val_cpu,
                   pandas_cpu_ratio=val_cpu / pandas_cpu, floor_cpu_s=cpu["floor"][0],
                   small_form_cpu_s=cpu["small"][0])

    import numpy as np

    sys.path.insert(0, str(ROOT))
    from curation.pool import leave_one_out, pool_generic, pool_proportions

    rng = np.random.default_rng(3)
    yi = rng.normal(20, 5, 10_000)
    sei = rng.uniform(1, 4, 10_000)
    results["reml_10k_s"] = in_process(lambda: pool_generic(yi, sei, method="REML"), args.repeat)
    n = rng.integers(20, 400, 1_000)
    x = rng.binomial(n, 0.3)
    fit = pool_proportions(x, n, measure="PLO", method="REML")
    results["loo_1k_s"] = in_process(lambda: leave_one_out(fit), args.repeat)

    targets = [
        ("curate validate / pandas read", f"{results['pandas_ratio']:.2f}x", "<= 2.0x"),
        ("  the same in CPU time", f"{results['pandas_cpu_ratio']:.2f}x", "<= 2.0x"),
        ("curate validate / calamine floor", f"{results['ratio']:.2f}x", ""),
        ("rows per second", f"{results['rows_per_s']:,.0f}", ""),
        ("peak memory (validate)", f"{val_mem:,.0f} MB", "<= 1500 MB"),
        ("curate --help", f"{help_t:.3f} s", "<= 0.3 s"),
        ("20-study form, validate end to end", f"{small_t:.3f} s", "<= 0.6 s"),
        ("  the same in CPU time", f"{results['small_form_cpu_s']:.3f} s", "<= 0.6 s"),
        ("REML, 10,000 studies", f"{results['reml_10k_s']:.3f} s", "<= 0.5 s"),
        ("leave-one-out, 1,000 studies", f"{results['loo_1k_s']:.3f} s", "<= 1 s"),
    ]
    print(f"workbook: {big.name}, {rows:,} data rows; pandas read {pandas_t:.2f} s, calamine read {floor_t:.2f} s, "
          f"validate {val_t:.2f} s (exit {code})")
    for what, value, target in targets:
        print(f"  {what:38} {value:>12}   target {target}")
    if args.skip_run:
        (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        return 0
    print("curate run against curate validate, same form (target: run <= 10x validate, 15x at 10,000 "
          "studies; peak < 2 GB; report.html < 10 MB; folder < 100 MB):")
    results["run_vs_validate"] = run_vs_validate(args.run_repeat)
    results["phases"] = [print_phases("13-trial BCG example", ROOT / "extraction_forms" / "example_bcg.xlsx",
                                      args.repeat)]
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
