"""Centre tables and the per-centre forest plot (numbers from ``steps.centres`` and ``steps.survival_mi``).
Method: docs/methods/multicentre.md."""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis_utils.reporting.tables import fmt_est_ci, fmt_num, fmt_p

__all__ = ["format_centre_table", "format_centre_balance", "centre_sensitivity_table", "forest_plot"]


def format_centre_table(table: pd.DataFrame) -> pd.DataFrame:
    """``steps.centres.centre_table`` for reading."""
    return pd.DataFrame({
        "Centre": table["centre"], "Patients": table["n"],
        "HAIC-TKIs-P, n (%)": [f"{h} ({p:.0f})" for h, p in zip(table["n_haic"], table["haic_pct"])],
        "TKIs-P": table["n_control"], "OS events": table["os_events"],
        "Median follow-up, months (95% CI)": [fmt_est_ci(m, lo, hi, 1) for m, lo, hi in
                                              zip(table["median_follow_up"], table["follow_up_lower"],
                                                  table["follow_up_upper"])]})


def format_centre_balance(table: pd.DataFrame) -> pd.DataFrame:
    """Matched sample by centre (mean over imputations when several)."""
    return pd.DataFrame({"Centre": table["centre"], "HAIC-TKIs-P matched": table["n_haic_matched"].round(1),
                         "TKIs-P matched": table["n_control_matched"].round(1),
                         "Largest within-centre |SMD|": table["max_abs_smd"].map(lambda v: fmt_num(v, 2, "-"))})


def centre_sensitivity_table(centre_pooled: pd.DataFrame, main: dict[str, Any]) -> pd.DataFrame:
    """Matched OS HR: the main pair-clustered model, stratified by centre, clustered by centre, and each
    leave-one-centre-out estimate (pooled over imputations)."""
    rows = [{"Analysis": "Main: pair-clustered variance", "HR (95% CI)": fmt_est_ci(main["hr"], main["lower"],
                                                                                   main["upper"]),
             "P": fmt_p(main["p"])}]
    for r in centre_pooled.itertuples(index=False):
        if r.analysis == "per centre":
            continue
        label = {"stratified by centre": "Stratified by centre", "clustered by centre": "Variance clustered by centre"
                 }.get(r.analysis, f"Without centre {r.centre}")
        rows.append({"Analysis": label, "HR (95% CI)": fmt_est_ci(np.exp(r.estimate), np.exp(r.conf_low),
                                                                 np.exp(r.conf_high)), "P": fmt_p(r.p_value)})
    return pd.DataFrame(rows)


def forest_plot(estimates: pd.DataFrame, summary: dict[str, Any], n_by_centre: pd.Series | None = None
                ) -> plt.Figure:
    """Per-centre matched OS hazard ratios (pooled over imputations, 95% CI, log axis) and the random-effects
    summary diamond with tau^2, I^2 and Cochran's Q (metafor ``rma``)."""
    rows = estimates.sort_values("centre").reset_index(drop=True)
    n = len(rows)
    finite = np.concatenate([rows["lower"].to_numpy(), rows["upper"].to_numpy()])
    lo, hi = max(0.02, np.nanmin(finite) / 1.1), min(50.0, np.nanmax(finite) * 1.1)
    fig, (ax_l, ax, ax_r) = plt.subplots(1, 3, figsize=(7.2, 0.27 * (n + 2) + 1.2), sharey=True,
                                         gridspec_kw={"width_ratios": [1.4, 3.0, 2.0], "wspace": 0.02})
    for i, r in rows.iterrows():
        y = n + 1 - i
        label = str(r["centre"]) + (f" (n = {int(n_by_centre[r['centre']])})" if n_by_centre is not None else "")
        ax_l.text(0, y, label, va="center", fontsize=7.5)
        ax.plot([max(r["lower"], lo), min(r["upper"], hi)], [y, y], color="0.2", lw=1)
        ax.plot(r["hr"], y, "s", color="0.2", ms=4)
        ax_r.text(0.02, y, fmt_est_ci(r["hr"], r["lower"], r["upper"]), va="center", fontsize=7.5)
    if "hr" in summary:
        y = 0.5
        h, l_, u_ = summary["hr"], summary["lower"], summary["upper"]
        ax.fill([l_, h, u_, h], [y, y + 0.35, y, y - 0.35], color="0.1")
        ax_l.text(0, y, f"Random effects ({summary['method']})", va="center", fontsize=7.5, fontweight="bold")
        ax_r.text(0.02, y, fmt_est_ci(h, l_, u_), va="center", fontsize=7.5, fontweight="bold")
        ax_l.text(0, -0.6, f"tau² = {summary['tau2']:.3f}; I² = {summary['i2']:.0f}%; Q = {summary['q']:.1f} "
                  f"(df {summary['q_df']}), P {fmt_p(summary['q_p'])}", va="center", fontsize=7)
    ax.axvline(1.0, color="0.5", ls="--", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-1.2, n + 2)
    ax.set_xlabel("Hazard ratio, HAIC-TKIs-P vs TKIs-P (95% CI)")
    for a in (ax_l, ax_r):
        a.axis("off")
    ax_l.set_zorder(ax.get_zorder() + 1)  # the summary labels run on under the plot: above its white background
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    return fig
