"""Figures: one consistent look for the whole paper, saved as 300-dpi PNG and SVG.

No backend is forced: in a notebook kernel figures show inline (and so are stored in the executed notebooks that
the manuscript embeds); without a display matplotlib falls back to Agg by itself.

``save_figure`` strips the creation date from vector output and fixes the SVG hash salt, so identical runs give
identical files. Arm colours are fixed here and used by every figure (colour-blind-safe Okabe-Ito pair).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

ARM_HAIC, ARM_CONTROL = "HAIC-TKIs-P", "TKIs-P"
ARM_COLOURS = {ARM_HAIC: "#D55E00", ARM_CONTROL: "#0072B2"}
ARM_ORDER = [ARM_HAIC, ARM_CONTROL]
plt.rcParams.update({"svg.hashsalt": "nct06881433", "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False, "figure.dpi": 100})


def save_figure(fig: plt.Figure, out_dir: str | Path, name: str) -> dict[str, str]:
    """Save ``fig`` as ``<out_dir>/figures/<name>.png`` (300 dpi) and ``.svg``; returns the relative paths."""
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{name}.png", dpi=300, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(folder / f"{name}.svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    return {"png": f"figures/{name}.png", "svg": f"figures/{name}.svg"}


SAMPLE_STYLES = {  # love plot: one colour/marker per sample (Okabe-Ito, avoiding the two arm colours)
    "Unadjusted": ("#999999", "o"), "Matched": ("#000000", "D"), "IPTW (ATE)": ("#009E73", "s"),
    "IPTW (ATT)": ("#CC79A7", "^"), "Overlap weights (ATO)": ("#E69F00", "v"),
}


def love_plot(smd: pd.DataFrame, threshold: float = 0.1, samples: list[str] | None = None,
              labels: dict[str, str] | None = None) -> plt.Figure:
    """Love plot as cobalt's ``love.plot(abs = TRUE)``: absolute SMD per covariate term (rows) for each sample
    (points), a dashed line at ``threshold``; terms ordered by the first sample's |SMD|, largest at the top (cobalt
    ``var.order = "unadjusted"``). ``smd`` is tidy: columns term, sample, smd (e.g.
    ``MatchingOutput.love_data()``); ``samples`` chooses and orders the samples shown."""
    import numpy as np

    if not {"term", "sample", "smd"} <= set(smd.columns):
        raise ValueError("love_plot needs columns term, sample, smd")
    if smd.empty:
        fig, ax = plt.subplots(figsize=(6.4, 1.6))
        ax.set_axis_off()
        ax.text(0.5, 0.5, "No covariate to show (none left in the propensity model)", ha="center", va="center")
        return fig
    samples = samples or list(dict.fromkeys(smd["sample"]))
    wide = smd.assign(smd=smd["smd"].abs()).pivot_table(index="term", columns="sample", values="smd",
                                                        aggfunc="first", sort=False)
    wide = wide.sort_values(samples[0], ascending=True, na_position="first")
    y = np.arange(len(wide))
    fig, ax = plt.subplots(figsize=(6.4, 0.22 * len(wide) + 1.4))
    for name in samples:
        if name not in wide.columns:
            continue
        colour, marker = SAMPLE_STYLES.get(name, ("#56B4E9", "o"))
        ax.scatter(wide[name], y, s=18, color=colour, marker=marker, label=name, zorder=3)
    ax.axvline(threshold, color="0.3", lw=0.8, ls="--", zorder=1)
    ax.set_yticks(y, [(labels or {}).get(t, t) for t in wide.index], fontsize=7)
    ax.set_ylim(-0.7, len(wide) - 0.3)
    ax.set_xlim(left=0)
    ax.set_xlabel("Absolute standardised mean difference")
    ax.grid(axis="y", color="0.92", lw=0.6, zorder=0)
    ax.legend(frameon=False, fontsize=7, loc="lower right")
    return fig


def ps_distribution(ps: pd.Series, arm: pd.Series, matched: pd.Series, bins: int = 25,
                    xlabel: str = "Propensity score") -> plt.Figure:
    """Mirrored histograms of the propensity score by arm, before (all units) and after matching (units with
    ``matched`` True): first arm of ``ARM_ORDER`` above the axis, the other below, same bins on [0, 1] (or the
    data range when ``xlabel`` is not the score, e.g. its logit)."""
    import numpy as np

    ps = np.asarray(ps, dtype=float)
    arm = np.asarray(arm, dtype=object)
    matched = np.asarray(matched, dtype=bool)
    if not (ps.shape == arm.shape == matched.shape):
        raise ValueError("ps_distribution: ps, arm and matched must have the same length")
    ok = np.isfinite(ps)
    lo, hi = (0.0, 1.0) if xlabel == "Propensity score" else (float(ps[ok].min()), float(ps[ok].max()))
    edges = np.linspace(lo, hi, bins + 1)
    width = edges[1] - edges[0]
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.0), sharey=True)
    top_arm, bottom_arm = ARM_ORDER
    ymax = 0
    for ax, (title, sel) in zip(axes, (("Before matching", ok), ("After matching", ok & matched))):
        for a, sign in ((top_arm, 1), (bottom_arm, -1)):
            counts, _ = np.histogram(ps[sel & (arm == a)], bins=edges)
            ymax = max(ymax, counts.max(initial=0))
            ax.bar(edges[:-1], sign * counts, width=width, align="edge", color=ARM_COLOURS[a], alpha=0.85,
                   edgecolor="white", lw=0.3, label=f"{a} (n = {int((sel & (arm == a)).sum())})")
        ax.axhline(0, color="0.2", lw=0.6)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.legend(frameon=False, fontsize=7, loc="upper right")
    lim = ymax * 1.25 if ymax else 1
    axes[0].set_ylim(-lim, lim)
    ticks = axes[0].get_yticks()
    axes[0].set_yticks(ticks, [f"{abs(int(t))}" for t in ticks])
    axes[0].set_ylim(-lim, lim)
    axes[0].set_ylabel("Patients")
    return fig


_CRITERION_LABELS = {"recist": "RECIST 1.1", "mrecist": "mRECIST"}


def waterfall_plot(data: pd.DataFrame, cap: float = 100.0, pr_line: float = -30.0, pd_line: float = 20.0) -> plt.Figure:
    """Waterfall of the best % change of the target sum from baseline, one panel per criterion, one bar per patient
    (sorted, largest increase left), bars coloured by arm. ``data``: :func:`analysis_utils.response.waterfall_data`
    (criterion, arm, best_pct_change, rank). Reference lines at -30% (PR) and +20% (PD; RECIST 1.1 §1.3, mRECIST
    §2.2; RECIST PD also needs +5 mm). Bars beyond ``cap`` are drawn at the cap and the panel says how many."""
    import numpy as np
    from matplotlib.patches import Patch

    criteria = list(dict.fromkeys(data["criterion"]))
    fig, axes = plt.subplots(len(criteria), 1, figsize=(7.2, 2.7 * len(criteria)), squeeze=False)
    for ax, crit in zip(axes[:, 0], criteria):
        d = data[data["criterion"] == crit].sort_values("rank")
        values = d["best_pct_change"].to_numpy(dtype=float)
        ax.bar(np.arange(len(d)), np.clip(values, -100.0, cap), width=1.0, linewidth=0,
               color=[ARM_COLOURS[a] for a in d["arm"]])
        ax.axhline(pd_line, color="0.3", lw=0.8, ls=":")
        ax.axhline(pr_line, color="0.3", lw=0.8, ls="--")
        ax.axhline(0, color="0.2", lw=0.6)
        ax.set_xlim(-1, len(d))
        ax.set_ylim(-105, cap + 5)
        ax.set_xticks([])
        ax.set_ylabel("Best change in target sum (%)")
        n_capped = int((values > cap).sum())
        ax.set_title(f"{_CRITERION_LABELS.get(crit, crit)} (n = {len(d)} with a measured follow-up scan"
                     + (f"; {n_capped} bar(s) truncated at +{cap:g}%)" if n_capped else ")"), fontsize=9, loc="left")
        counts = d["arm"].value_counts()
        handles = [Patch(color=ARM_COLOURS[a], label=f"{a} (n = {int(counts.get(a, 0))})") for a in ARM_ORDER]
        handles += [plt.Line2D([], [], color="0.3", lw=0.8, ls=":", label=f"+{pd_line:g}%"),
                    plt.Line2D([], [], color="0.3", lw=0.8, ls="--", label=f"{pr_line:g}%")]
        ax.legend(handles=handles, fontsize=7, frameon=False, loc="upper right", ncol=2)
    fig.tight_layout()
    return fig


def spider_plot(data: pd.DataFrame, cap: float = 100.0, pr_line: float = -30.0, pd_line: float = 20.0) -> plt.Figure:
    """Spider plot: % change of the target sum from baseline over months since the index date, one line per patient,
    rows = criteria, columns = arms (``ARM_ORDER``), lines in the arm colour. ``data``:
    :func:`analysis_utils.response.spider_data` (criterion, study_id, arm, months, pct_change; a deterministic
    subsample). Values beyond ``cap`` are drawn at the cap. Reference lines at -30% and +20%."""
    criteria = list(dict.fromkeys(data["criterion"]))
    fig, axes = plt.subplots(len(criteria), len(ARM_ORDER), figsize=(7.2, 2.7 * len(criteria)), sharex=True,
                             sharey=True, squeeze=False)
    for i, crit in enumerate(criteria):
        for j, arm in enumerate(ARM_ORDER):
            ax = axes[i, j]
            d = data[(data["criterion"] == crit) & (data["arm"] == arm)]
            for _, g in d.groupby("study_id", sort=True):
                ax.plot(g["months"], g["pct_change"].clip(upper=cap), color=ARM_COLOURS[arm], lw=0.7, alpha=0.6,
                        marker="o", ms=1.5)
            ax.axhline(pd_line, color="0.3", lw=0.8, ls=":")
            ax.axhline(pr_line, color="0.3", lw=0.8, ls="--")
            ax.axhline(0, color="0.2", lw=0.6)
            ax.set_ylim(-105, cap + 5)
            ax.set_title(f"{_CRITERION_LABELS.get(crit, crit)} · {arm} (n = {d['study_id'].nunique()})",
                         fontsize=8, loc="left")
            if j == 0:
                ax.set_ylabel("Change in target sum (%)")
            if i == len(criteria) - 1:
                ax.set_xlabel("Months since index date")
    fig.tight_layout()
    return fig
