"""Forest and funnel plots of :class:`curation.pool.PoolResult` (matplotlib, Agg, no pyplot).

matplotlib is imported inside the functions, so importing this module costs nothing. Figures are
plain :class:`matplotlib.figure.Figure` objects attached to an Agg canvas; :func:`figure_svg`
gives byte-identical SVG text across runs (fixed hash salt, no date, glyphs as paths).
"""

from __future__ import annotations

import math
import re
from typing import Sequence

__all__ = ["forest_plot", "funnel_plot", "figure_svg", "figure_png", "analysis_forest"]

# Text drawn from form data (study labels, cohort and subgroup names, titles) is text, never
# maths: no mathtext parsing of "$...$" (an unknown command would raise), no TeX.
_PLAIN = {"parse_math": False, "usetex": False}
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _clean(text) -> str:
    """Form text for a plot: a string without control or bidi override characters."""
    return _UNSAFE.sub("", str(text))

_ROW_IN = 0.26  # height of one row, inches
_WIDTH_IN = 11.0


def _new_figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _fmt_p(p):
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = NA"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}"


def _isnan(v):
    return v is None or (isinstance(v, float) and math.isnan(v))


class _Scale:
    """Map values of a result to what the plot shows (%, clipped proportions, or natural)."""

    def __init__(self, result, scale, unit):
        if scale not in ("proportion", "natural", "ratio", "difference"):
            raise ValueError("scale must be 'proportion', 'natural', 'ratio' or 'difference'")
        self.result = result
        self.prop = scale == "proportion"
        self.ratio = scale == "ratio"
        self.null = 1.0 if scale == "ratio" else 0.0 if scale == "difference" else None
        self.unit = unit
        self.factor = 100.0 if (self.prop and unit == "%") else 1.0
        self.clipped = False

    def show(self, v):
        if _isnan(v):
            return float("nan")
        if self.prop:
            if v < 0 or v > 1:
                self.clipped = True
            v = min(1.0, max(0.0, v))
        return v * self.factor

    def text(self, v):
        if _isnan(v):
            return "NA"
        if self.prop and self.unit == "%":
            return f"{v:.1f}"
        if self.prop:
            return f"{v:.3f}"
        return f"{v:.2f}" if abs(v) < 100 else f"{v:.1f}"

    def study_values(self, i):
        """Back-transformed estimate and CI of study i (as metafor's forest with transf)."""
        import numpy as np

        from curation.pool import _alpha, back_transform
        from scipy import stats

        r = self.result
        y = r.yi[i]
        se = math.sqrt(r.vi[i])
        crit = stats.norm.isf(_alpha(r.level) / 2)
        vals = [y, y - crit * se, y + crit * se]
        if r.measure == "PFT":
            n = r.totals[i]
            out = back_transform(vals, "PFT", nhm=n)
        elif r.measure in ("PR", "PLN", "PLO", "PAS"):
            out = back_transform(vals, r.measure)
        elif self.ratio or getattr(r, "scale", None) == "log":
            out = np.exp(vals)
        else:
            out = np.asarray(vals)
        return [self.show(float(v)) for v in out]


def _row_layout(result, n_studies):
    """Rows from top: ('head'|'study'|'sub'|'gap'|'overall'|'pi', payload)."""
    rows = []
    if result.subgroups:
        labels = list(result.labels)
        for g, sub in result.subgroups.items():
            rows.append(("head", g))
            for i in range(n_studies):
                if labels[i] == g:
                    rows.append(("study", i))
            rows.append(("sub", g))
            rows.append(("gap", None))
    else:
        rows.extend(("study", i) for i in range(n_studies))
        rows.append(("gap", None))
    rows.append(("overall", None))
    rows.append(("pi", None))
    return rows


def _diamond(ax, y, lo, est, hi, color, half=0.32):
    from matplotlib.patches import Polygon

    if any(_isnan(v) for v in (lo, est, hi)):
        return
    ax.add_patch(Polygon([(lo, y), (est, y + half), (hi, y), (est, y - half)], closed=True,
                         facecolor=color, edgecolor="black", linewidth=0.6, zorder=3))


def forest_plot(result, labels: Sequence[str], *, title: str = "", scale: str = "proportion",
                unit: str = "%", events: Sequence | None = None,
                totals: Sequence | None = None, favours: tuple[str, str] | None = None, max_rows: int = 60):
    """Forest plot: one row per study, the pooled diamond, the prediction interval.

    Parameters
    ----------
    result : PoolResult
        From :func:`curation.pool.pool_proportions` or :func:`~curation.pool.pool_generic`.
    labels : sequence of str
        A label per study, in input order.
    title : str
    scale : {"proportion", "natural", "ratio", "difference"}
        Proportions are shown in percent (``unit="%"``) clipped to 0-100 for display; ratios
        (OR, RR, hazard ratios) on a log axis with the line of no effect at 1; differences with
        the line of no effect at 0.
    favours : (str, str), optional
        Labels under the axis left and right of the line of no effect ("favours BCG").
    unit : str
        ``"%"`` for proportions, e.g. ``"months"`` on the natural scale.
    events, totals : sequences, optional
        Shown as "events/n"; default to the result's own counts for proportions.

    max_rows : int
        Above this many studies the plot stays legible and small: the studies sorted by estimate
        (within each subgroup) as a band of intervals without a row of text each, the pooled
        diamonds and the prediction interval (:func:`_forest_summary`); the table of every study
        belongs beside it (the report has it).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.transforms import blended_transform_factory

    k = result.k
    labels, title = _form_text(result, labels, title)
    if k > max_rows:
        return _forest_summary(result, title=title, scale=scale, unit=unit)
    # keep labels inside their column (about 42 characters at this size)
    labels = [lab if len(lab) <= 42 else lab[:41] + "\u2026" for lab in labels]
    if events is None and result.events is not None:
        events = result.events
    if totals is None and result.totals is not None:
        totals = result.totals
    sc = _Scale(result, scale, unit)
    rows = _row_layout(result, k)
    nrows = len(rows)
    header_in, footer_in = 0.9, 0.95
    height = header_in + footer_in + _ROW_IN * (nrows + 1)
    fig = _new_figure(_WIDTH_IN, height)
    bottom = footer_in / height
    top = 1 - header_in / height
    ax = fig.add_axes((0.40, bottom, 0.33, top - bottom))
    ax.set_ylim(nrows - 0.5, -1.0)
    tr = blended_transform_factory(fig.transFigure, ax.transData)
    col_label, col_n, col_est, col_w = 0.015, 0.36, 0.745, 0.985
    fs = 8.5
    level_pct = f"{100 * result.level:g}%"
    unit_txt = f" ({unit})" if unit else ""
    hdr_y = -0.9
    ax.text(col_label, hdr_y, "Study", transform=tr, ha="left", va="center", fontsize=fs,
            fontweight="bold", **_PLAIN)
    if events is not None and totals is not None:
        ax.text(col_n, hdr_y, "Events/n", transform=tr, ha="right", va="center", fontsize=fs,
                fontweight="bold", **_PLAIN)
    ax.text(col_est, hdr_y, f"Estimate{unit_txt} [{level_pct} CI]", transform=tr, ha="left",
            va="center", fontsize=fs, fontweight="bold", **_PLAIN)
    ax.text(col_w, hdr_y, "Weight", transform=tr, ha="right", va="center", fontsize=fs,
            fontweight="bold", **_PLAIN)
    xs = []
    w = list(result.weights)
    wmax = max([v for v in w if not _isnan(v)] or [1.0])
    for y, (kind, payload) in enumerate(rows):
        if kind == "head":
            ax.text(col_label, y, _clean(payload), transform=tr, ha="left", va="center",
                    fontsize=fs, fontweight="bold", style="italic", **_PLAIN)
        elif kind == "study":
            i = payload
            est, lo, hi = sc.study_values(i)
            xs.extend([lo, hi])
            ax.plot([lo, hi], [y, y], color="black", linewidth=0.8, zorder=2)
            size = 3 + 9 * math.sqrt(max(w[i], 0) / wmax) if not _isnan(w[i]) else 4
            ax.plot([est], [y], marker="s", markersize=size, color="#3b6ea5",
                    markeredgecolor="black", markeredgewidth=0.4, zorder=3, clip_on=False)
            ax.text(col_label, y, labels[i], transform=tr, ha="left", va="center", fontsize=fs, **_PLAIN)
            if events is not None and totals is not None:
                ax.text(col_n, y, f"{events[i]:g}/{totals[i]:g}", transform=tr, ha="right",
                        va="center", fontsize=fs, **_PLAIN)
            ax.text(col_est, y, f"{sc.text(est)} [{sc.text(lo)}, {sc.text(hi)}]", transform=tr,
                    ha="left", va="center", fontsize=fs, **_PLAIN)
            wt = "" if _isnan(w[i]) else f"{w[i]:.1f}%"
            ax.text(col_w, y, wt, transform=tr, ha="right", va="center", fontsize=fs, **_PLAIN)
        elif kind in ("sub", "overall"):
            r = result.subgroups[payload] if kind == "sub" else result
            est, lo, hi = sc.show(r.estimate), sc.show(r.ci_low), sc.show(r.ci_high)
            xs.extend([lo, hi])
            color = "#9ecae1" if kind == "sub" else "#08519c"
            _diamond(ax, y, lo, est, hi, color)
            if kind == "sub":
                name = f"Subtotal {_clean(payload)} (k = {r.k}; I\u00b2 = {r.i2:.1f}%)" if not _isnan(
                    r.i2) else f"Subtotal {_clean(payload)} (k = {r.k})"
            else:
                name = f"{'Random' if r.method not in ('EE',) else 'Common'}-effects model " \
                       f"({r.method}{', HK' if r.hk else ''}; k = {r.k})"
            ax.text(col_label, y, name, transform=tr, ha="left", va="center", fontsize=fs,
                    fontweight="bold" if kind == "overall" else "normal", **_PLAIN)
            txt = "not estimable" if _isnan(est) else \
                f"{sc.text(est)} [{sc.text(lo)}, {sc.text(hi)}]"
            ax.text(col_est, y, txt, transform=tr, ha="left", va="center", fontsize=fs,
                    fontweight="bold" if kind == "overall" else "normal", **_PLAIN)
            if kind == "overall":
                ax.axvline(est, color="#08519c", linestyle=":", linewidth=0.8, zorder=1) \
                    if not _isnan(est) else None
        elif kind == "pi":
            lo, hi = sc.show(result.pi_low), sc.show(result.pi_high)
            if not (_isnan(lo) or _isnan(hi)):
                xs.extend([lo, hi])
                ax.plot([lo, hi], [y, y], color="#cb181d", linewidth=2.0, zorder=2,
                        solid_capstyle="butt")
                ax.text(col_est, y, f"[{sc.text(lo)}, {sc.text(hi)}]", transform=tr, ha="left",
                        va="center", fontsize=fs, color="#cb181d", **_PLAIN)
            ax.text(col_label, y, f"Prediction interval ({level_pct})", transform=tr,
                    ha="left", va="center", fontsize=fs, color="#cb181d", **_PLAIN)
    # axes
    finite = [v for v in xs if not _isnan(v)]
    if sc.null is not None:
        ax.axvline(sc.null, color="black", linewidth=0.8, zorder=1)
    if sc.ratio:
        finite = [v for v in finite if v > 0]
        ax.set_xscale("log")
        lo, hi = (min(finite + [sc.null]), max(finite + [sc.null])) if finite else (0.5, 2.0)
        pad = (hi / lo) ** 0.06 if hi > lo else 1.5
        ax.set_xlim(lo / pad, hi * pad)
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    elif sc.prop:
        ax.set_xlim(0, sc.factor)
    elif finite:
        lo, hi = min(finite), max(finite)
        pad = 0.06 * (hi - lo if hi > lo else max(abs(hi), 1.0))
        ax.set_xlim(lo - pad, hi + pad)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=fs)
    xlabel = "Proportion" + (f" ({unit})" if unit else "") if sc.prop else \
        ("Estimate" + (f" ({unit})" if unit else ""))
    if sc.ratio:
        xlabel += " (log scale)"
    ax.set_xlabel(xlabel, fontsize=fs, **_PLAIN)
    if favours and sc.null is not None:
        from matplotlib.transforms import blended_transform_factory as _blend
        from matplotlib.transforms import offset_copy

        ftr = _blend(ax.transData, ax.transAxes)
        left, right = (_clean(x) for x in favours)
        # a gap of 6 points either side of the line of no effect (spaces inside the text collapse in SVG,
        # and the two labels would read as one: "favours Xfavours placebo")
        ax.text(sc.null, -0.30 * 8 / max(nrows, 8), f"\u2190 {left}", ha="right", va="top", fontsize=fs - 0.5,
                transform=offset_copy(ftr, fig=fig, x=-6, units="points"), **_PLAIN)
        ax.text(sc.null, -0.30 * 8 / max(nrows, 8), f"{right} \u2192", ha="left", va="top", fontsize=fs - 0.5,
                transform=offset_copy(ftr, fig=fig, x=6, units="points"), **_PLAIN)
    if title:
        fig.text(0.5, 1 - 0.3 / height, title, ha="center", va="center", fontsize=11,
                 fontweight="bold", **_PLAIN)
    # footer
    lines = []
    r = result
    if r.k > 1 and not _isnan(r.q):
        tau2 = "NA" if _isnan(r.tau2) else f"{r.tau2:.4f}"
        i2 = "NA" if _isnan(r.i2) else f"{r.i2:.1f}%"
        lines.append(f"Heterogeneity: \u03c4\u00b2 = {tau2}; I\u00b2 = {i2}; "
                     f"Q = {r.q:.2f} (df = {r.q_df}, {_fmt_p(r.q_pval)})")
    if r.subgroups and r.q_between is not None:
        qb = "NA" if _isnan(r.q_between) else f"{r.q_between:.2f}"
        lines.append(f"Test for subgroup differences: Q = {qb} (df = {r.df_between}, "
                     f"{_fmt_p(r.p_between)})")
    extra = []
    if sc.clipped:
        extra.append("intervals clipped to 0-100% for display")
    if r.measure == "PFT":
        extra.append("Freeman-Tukey back-transformation (harmonic mean n); see Schwarzer 2019")
    if extra:
        lines.append("Note: " + "; ".join(extra) + ".")
    for j, line in enumerate(lines):
        fig.text(0.015, (footer_in - 0.45 - 0.18 * j) / height, line, ha="left", va="center",
                 fontsize=fs - 0.5, **_PLAIN)
    return fig


def _study_intervals(result, sc):
    """Every study's estimate and CI as shown (vectorised :meth:`_Scale.study_values`)."""
    import numpy as np

    from curation.pool import _alpha, back_transform
    from scipy import stats

    y = np.asarray(result.yi, float)
    se = np.sqrt(np.asarray(result.vi, float))
    crit = stats.norm.isf(_alpha(result.level) / 2)
    cols = [y, y - crit * se, y + crit * se]
    if result.measure == "PFT":
        n = np.asarray(result.totals, float)
        out = [np.array([back_transform([v], "PFT", nhm=ni)[0] for v, ni in zip(c, n)]) for c in cols]
    elif result.measure in ("PR", "PLN", "PLO", "PAS"):
        out = [back_transform(c, result.measure) for c in cols]
    else:
        out = cols
    show = np.vectorize(sc.show, otypes=[float])
    return [show(c) if len(c) else c for c in out]


def _forest_summary(result, *, title: str, scale: str, unit: str):
    """The forest plot of many studies: sorted by estimate (within each subgroup), one thin
    interval each drawn as a raster band (so that the SVG stays small), the pooled diamonds,
    the prediction interval and the heterogeneity line."""
    import numpy as np
    from matplotlib.collections import LineCollection

    k = result.k
    sc = _Scale(result, scale, unit)
    est, lo, hi = _study_intervals(result, sc)
    labels = list(result.labels) if result.subgroups and result.labels else [None] * k
    blocks = list(result.subgroups.items()) if result.subgroups else [(None, result)]
    fig = _new_figure(_WIDTH_IN, 7.2)
    ax = fig.add_axes((0.30, 0.16, 0.50, 0.74))
    y0 = 0.0
    segs, points, ticks = [], [], []
    for g, sub in blocks:
        idx = [i for i in range(k) if labels[i] == g] if g is not None else list(range(k))
        idx.sort(key=lambda i: (np.nan_to_num(est[i], nan=np.inf), i))
        for j, i in enumerate(idx):
            yy = y0 + j
            segs.append(((lo[i], yy), (hi[i], yy)))
            points.append((est[i], yy))
        y0 += len(idx)
        if g is not None:
            y0 += max(2.0, 0.04 * k)
            _diamond(ax, y0 - max(1.0, 0.02 * k), sc.show(sub.ci_low), sc.show(sub.estimate), sc.show(sub.ci_high),
                     "#9ecae1", half=max(0.32, 0.012 * k))
            ticks.append((y0 - max(1.0, 0.02 * k), f"{_clean(g)}: k = {sub.k}, "
                          f"{sc.text(sc.show(sub.estimate))} [{sc.text(sc.show(sub.ci_low))}, "
                          f"{sc.text(sc.show(sub.ci_high))}]"))
            y0 += max(1.0, 0.02 * k)
    lines = LineCollection(segs, colors="#555555", linewidths=0.5, zorder=2)
    lines.set_rasterized(True)
    ax.add_collection(lines)
    pts = np.asarray(points) if points else np.empty((0, 2))
    dots = ax.scatter(pts[:, 0], pts[:, 1], s=2, color="#3b6ea5", zorder=3, linewidths=0)
    dots.set_rasterized(True)
    gap = max(3.0, 0.05 * k)
    yo = y0 + gap
    e, cl, cu = sc.show(result.estimate), sc.show(result.ci_low), sc.show(result.ci_high)
    _diamond(ax, yo, cl, e, cu, "#08519c", half=max(0.32, 0.015 * k))
    ticks.append((yo, f"{'Random' if result.method not in ('EE',) else 'Common'}-effects model (k = {k}): "
                      f"{sc.text(e)} [{sc.text(cl)}, {sc.text(cu)}]"))
    pl, pu = sc.show(result.pi_low), sc.show(result.pi_high)
    ypi = yo + gap
    if not (_isnan(pl) or _isnan(pu)):
        ax.plot([pl, pu], [ypi, ypi], color="#cb181d", linewidth=2.0, solid_capstyle="butt")
    ticks.append((ypi, f"Prediction interval ({100 * result.level:g}%): [{sc.text(pl)}, {sc.text(pu)}]"))
    if not _isnan(e):
        ax.axvline(e, color="#08519c", linestyle=":", linewidth=0.8, zorder=1)
    ax.set_ylim(ypi + gap, -gap)
    ax.set_yticks([t for t, _ in ticks])
    ax.set_yticklabels([t for _, t in ticks], fontsize=8, **_PLAIN)
    finite = [v for v in np.concatenate([lo, hi, [pl, pu]]) if not _isnan(v)]
    if sc.prop:
        ax.set_xlim(0, sc.factor)
    elif finite:
        a, b = float(np.percentile(finite, 0.5)), float(np.percentile(finite, 99.5))
        pad = 0.06 * (b - a if b > a else max(abs(b), 1.0))
        ax.set_xlim(a - pad, b + pad)
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=8.5)
    ax.set_xlabel(("Proportion" if sc.prop else "Estimate") + (f" ({unit})" if unit else ""), fontsize=8.5, **_PLAIN)
    fig.text(0.5, 0.965, title, ha="center", va="center", fontsize=11, fontweight="bold", **_PLAIN)
    fig.text(0.5, 0.93, f"{k} studies, sorted by estimate{' within each subgroup' if result.subgroups else ''}; "
             f"each line is a study's {100 * result.level:g}% CI (the table beside this plot lists every study)",
             ha="center", va="center", fontsize=8, color="#555555", **_PLAIN)
    foot = []
    if k > 1 and not _isnan(result.q):
        tau2 = "NA" if _isnan(result.tau2) else f"{result.tau2:.4f}"
        i2 = "NA" if _isnan(result.i2) else f"{result.i2:.1f}%"
        foot.append(f"Heterogeneity: \u03c4\u00b2 = {tau2}; I\u00b2 = {i2}; Q = {result.q:.2f} "
                    f"(df = {result.q_df}, {_fmt_p(result.q_pval)})")
    if result.subgroups and result.q_between is not None:
        qb = "NA" if _isnan(result.q_between) else f"{result.q_between:.2f}"
        foot.append(f"Test for subgroup differences: Q = {qb} (df = {result.df_between}, {_fmt_p(result.p_between)})")
    if sc.clipped:
        foot.append("Note: intervals clipped to 0-100% for display.")
    for j, line in enumerate(foot):
        fig.text(0.015, 0.06 - 0.025 * j, line, ha="left", va="center", fontsize=8, **_PLAIN)
    return fig


def _form_text(result, labels: Sequence[str], title: str) -> tuple[list[str], str]:
    """Study labels and title from a form, cleaned for drawing; one label per study."""
    labels = [_clean(x) for x in labels]
    if len(labels) != result.k:
        raise ValueError(f"{len(labels)} labels for {result.k} studies")
    return labels, _clean(title)


def funnel_plot(result, labels: Sequence[str], *, title: str = "", effect_label: str | None = None,
                ratio: bool = False, unit: str | None = None):
    """Funnel plot on the analysis (transformed) scale with the pseudo 95% CI funnel, and Egger's
    test (metafor ``regtest(model="lm")``) in the caption.

    The x axis names the scale the points are on: ``log RR``, ``log HR`` (a ratio is pooled as its
    log; ``effect_label`` and ``ratio`` from the analysis), ``SMD``, ``logit proportion``, or the
    median in its ``unit``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    from curation.pool import egger_test

    k = result.k
    labels, title = _form_text(result, labels, title)
    fig = _new_figure(6.5, 5.4)
    ax = fig.add_axes((0.12, 0.2, 0.83, 0.7))
    y = np.asarray(result.yi)
    se = np.sqrt(np.asarray(result.vi))
    smax = float(se.max()) * 1.1 if k else 1.0
    est = result.est_t
    if not _isnan(est):
        s_grid = np.linspace(0, smax, 50)
        ax.fill_betweenx(s_grid, est - 1.959964 * s_grid, est + 1.959964 * s_grid,
                         color="#f0f0f0", zorder=0)
        ax.plot(est - 1.959964 * s_grid, s_grid, color="grey", linestyle="--", linewidth=0.8)
        ax.plot(est + 1.959964 * s_grid, s_grid, color="grey", linestyle="--", linewidth=0.8)
        ax.axvline(est, color="black", linewidth=0.8)
    dots = ax.scatter(y, se, s=22 if k <= 200 else 4, color="#3b6ea5", edgecolor="black",
                      linewidth=0.4 if k <= 200 else 0, zorder=3)
    dots.set_rasterized(k > 200)  # thousands of points: one small image, not thousands of paths
    if k <= 30:
        for xi, si, lab in zip(y, se, labels):
            ax.annotate(lab, (xi, si), xytext=(4, 2), textcoords="offset points", fontsize=6.5,
                        color="#555555", **_PLAIN)
    ax.set_ylim(smax, 0)
    ax.set_xlabel(funnel_axis_label(result.measure, effect_label, ratio, unit), fontsize=9, **_PLAIN)
    ax.set_ylabel("Standard error", fontsize=9, **_PLAIN)
    ax.tick_params(labelsize=8)
    if title:
        ax.set_title(title, fontsize=11, fontweight="bold", **_PLAIN)
    eg = egger_test(result)
    if _isnan(eg.z):
        cap = "Egger's test: not available" + (f" ({eg.note})" if eg.note else "")
    else:
        cap = f"Egger's regression test: t = {eg.z:.2f} (df = {eg.df}), {_fmt_p(eg.p)}; " \
              f"limit estimate {eg.intercept:.3f}"
    import textwrap

    fig.text(0.02, 0.05, "\n".join(textwrap.wrap(cap, 110)), ha="left", va="center", fontsize=8, **_PLAIN)
    return fig


def funnel_axis_label(measure: str, effect_label: str | None = None, ratio: bool = False,
                      unit: str | None = None) -> str:
    """The x axis of a funnel plot: the scale its points are on (``log RR``, ``log HR``, ``MD (points)``,
    ``logit proportion``, ``median (months)``)."""
    names = {"PR": "proportion", "PLN": "log proportion", "PLO": "logit proportion",
             "PAS": "arcsine-square-root proportion", "PFT": "Freeman-Tukey double arcsine",
             "OR": "log OR", "RR": "log RR", "ROM": "log ratio of means", "RD": "risk difference",
             "MD": "mean difference", "SMD": "SMD (Hedges' g)"}
    if measure == "GEN":
        if ratio:
            text = f"log {effect_label or 'ratio'}"
        else:
            text = effect_label or "median"
    else:
        text = names.get(measure, measure)
    if unit and not ratio and measure in ("GEN", "MD"):
        text += f" ({unit})"
    return text[:1].upper() + text[1:] if text[:1].islower() else text


def figure_svg(fig) -> str:
    """Self-contained, deterministic SVG text (text as escaped ``<text>``, which keeps the file
    small and fast to write; fixed ids, no date; many-study marks as one embedded raster)."""
    import io

    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "curation", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, dpi=110)
    return buf.getvalue()


def figure_png(fig, dpi: int = 150) -> bytes:
    """PNG bytes of the figure."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def analysis_forest(analysis, subgroup_analyses=()):
    """Forest plot of a :class:`curation.analyses.Analysis` (labels, scale and title from it).

    A subgroup-test entry's result carries its subgroups, so ``subgroup_analyses`` (its
    ``subgroup`` entries) is accepted for symmetry with ``curate pool`` and not needed.
    """
    if analysis.result is None:
        raise ValueError(f"{analysis.id}: nothing was pooled, so there is no forest plot")
    s = analysis.settings
    setting = s.method if (analysis.kind in ("median", "reported_effect") or s.method == "GLMM") \
        else f"{s.measure}, {s.method}"
    title = f"{analysis.label} ({setting}{', Knapp-Hartung' if s.hk else ''})"
    labels = [r.label for r in analysis.taken]
    if analysis.kind == "median":
        return forest_plot(analysis.result, labels, title=title, scale="natural", unit=getattr(analysis, "unit", None)
                           or "")
    if analysis.kind in ("binary", "continuous", "reported_effect"):
        return forest_plot(analysis.result, labels, title=title, scale="ratio" if analysis.ratio else "difference",
                           unit=analysis.effect_label or "", events=(), totals=None, favours=analysis.favours)
    return forest_plot(analysis.result, labels, title=title)
