"""Forest and funnel plots build for the main shapes of results; SVG output is deterministic."""

from __future__ import annotations

import subprocess
import sys

import pytest

from curation import plots, pool

PRITZ_X = [16, 10, 4, 43, 10, 25, 13, 12, 22, 4, 5, 18, 58, 6]
PRITZ_N = [17, 12, 8, 58, 10, 42, 14, 12, 41, 5, 6, 23, 68, 10]
LABELS = [f"Study {i + 1}" for i in range(14)]


def texts(fig):
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text"))]


def test_forest_overall_has_rows_diamond_pi_and_footer():
    r = pool.pool_proportions(PRITZ_X, PRITZ_N, measure="PFT")
    fig = plots.forest_plot(r, LABELS, title="Pritz")
    t = texts(fig)
    assert all(lab in t for lab in LABELS)
    assert "16/17" in t
    assert any(s.startswith("Heterogeneity") and "I\u00b2 = 69.9%" in s for s in t)
    assert any("80.3 [70.2, 88.9]" == s for s in t)
    assert any("Prediction interval" in s for s in t)
    assert any("Schwarzer" in s for s in t)
    png = plots.figure_png(fig, dpi=60)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_forest_subgroups_show_blocks_and_test():
    g = ["a"] * 5 + ["b"] * 5 + ["c"] * 4
    r = pool.pool_proportions(PRITZ_X, PRITZ_N, subgroups=g)
    t = texts(plots.forest_plot(r, LABELS, title="By group"))
    assert sum(s.startswith("Subtotal") for s in t) == 3
    assert any(s.startswith("Test for subgroup differences") for s in t)


def test_forest_k1_and_natural_scale():
    r1 = pool.pool_proportions([12], [30])
    t = texts(plots.forest_plot(r1, ["Only"], title="k=1"))
    assert "Only" in t and not any(s.startswith("Heterogeneity") for s in t)
    rg = pool.pool_generic([24.5, 28.0, 18.7], [2.1, 3.4, 1.9])
    fig = plots.forest_plot(rg, ["A", "B", "C"], title="PFS", scale="natural", unit="months")
    t = texts(fig)
    assert any("months" in s for s in t)
    lo, hi = fig.axes[0].get_xlim()
    assert lo < 18.7 - 1.96 * 1.9 and hi > 28.0 + 1.96 * 3.4


def test_forest_clips_pr_intervals_for_display():
    r = pool.pool_proportions([30, 30, 29], [30, 30, 30], measure="PR", method="DL")
    assert r.ci_high > 1
    t = texts(plots.forest_plot(r, ["a", "b", "c"], title="PR"))
    assert any("clipped to 0-100%" in s for s in t)


def test_forest_label_count_checked():
    r = pool.pool_generic([1, 2], [0.5, 0.5])
    with pytest.raises(ValueError):
        plots.forest_plot(r, ["one"], title="x", scale="natural", unit="")


def test_glmm_failure_plots_as_not_estimable():
    r = pool.pool_proportions([10, 20], [10, 20], method="GLMM")
    t = texts(plots.forest_plot(r, ["a", "b"], title="all 100%"))
    assert "not estimable" in t


def test_funnel_has_egger_caption():
    r = pool.pool_proportions(PRITZ_X, PRITZ_N, measure="PFT")
    eg = pool.egger_test(r)
    t = texts(plots.funnel_plot(r, LABELS, title="Funnel"))
    assert any(s.startswith("Egger's regression test") and f"{eg.z:.2f}" in s for s in t)
    r2 = pool.pool_proportions([10, 10, 10], [40, 40, 40])
    t2 = texts(plots.funnel_plot(r2, ["a", "b", "c"], title="same"))
    assert any("not available" in s for s in t2)


def test_svg_is_deterministic_across_processes():
    code = (
        "from curation import plots, pool\n"
        "r = pool.pool_proportions([16,10,4,43,10], [17,12,8,58,10], subgroups=list('aabbb'))\n"
        "import sys; sys.stdout.write(plots.figure_svg(plots.forest_plot(r, list('ABCDE'), "
        "title='t')))\n"
    )
    a = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    b = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert a.stdout == b.stdout
    assert a.stdout.lstrip().startswith("<?xml") and "<svg" in a.stdout
    assert "<dc:date>" not in a.stdout
    r = pool.pool_generic([1, 2, 3], [0.5, 0.4, 0.6])
    fig = plots.funnel_plot(r, ["a", "b", "c"])
    assert plots.figure_svg(fig) == plots.figure_svg(fig)


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, curation.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_labels_and_titles_are_text_not_mathtext():
    labels = [r"Smith $\undefinedcommand{x}$", r"$\frac$ ^_^ $", "Lee $5 and $", "Bra\x07bander\u202e"]
    r = pool.pool_proportions([3, 5, 7, 9], [10, 12, 14, 20], subgroups=[r"$\bad$", r"$\bad$", "b", "b"])
    fig = plots.forest_plot(r, labels, title=r"ORR $\nope$")
    t = texts(fig)
    assert r"Smith $\undefinedcommand{x}$" in t and "Lee $5 and $" in t and "Brabander" in t
    assert r"$\bad$" in t and r"ORR $\nope$" in t
    assert "<svg" in plots.figure_svg(fig) and plots.figure_png(fig, dpi=40)[:4] == b"\x89PNG"
    fun = plots.funnel_plot(r, labels, title=r"$\nope{$")
    assert r"$\nope{$" in texts(fun)
    assert "<svg" in plots.figure_svg(fun) and plots.figure_png(fun, dpi=40)[:4] == b"\x89PNG"
