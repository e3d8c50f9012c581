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
