"""Notebook 01_cleaning presentation: the STROBE flow diagram.

The flow table itself comes from :func:`analysis_utils.study.eligibility.flow_table`; the data-quality summary the
notebook shows is :meth:`analysis_utils.study.quality.QualityLog.summary` (also written as a CSV by
:func:`analysis_utils.steps.cleaning.write_cleaned`).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from analysis_utils.reporting.figures import ARM_COLOURS, ARM_ORDER
from analysis_utils.study.eligibility import NO_ARM


def flow_diagram(flow: pd.DataFrame) -> plt.Figure:
    """STROBE flow diagram from :func:`analysis_utils.study.eligibility.flow_table`: screened records, exclusions by
    first failing criterion (criteria with no exclusion are listed with 0), analysed patients (and how many of them
    have a blank eligibility field, kept), by arm at time zero."""
    screened = int(flow.loc[flow.step == "screened", "n"].iloc[0])
    excl = flow[flow.step == "excluded"]
    analysed = int(flow.loc[flow.step == "analysed", "n"].iloc[0])
    arms = flow[flow.step == "arm"].set_index("criterion")["n"]
    fig, ax = plt.subplots(figsize=(7.2, 6.2))
    ax.set_axis_off()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    box = dict(boxstyle="round,pad=0.4", fc="white", ec="0.3", lw=0.8)
    ax.text(3, 9.4, f"Records screened\nn = {screened}", ha="center", va="center", bbox=box)
    lines = [f"Excluded, n = {int(excl['n'].sum())}"] + [f"  {r.label}: {int(r.n)}" for r in excl.itertuples()]
    ax.text(5.2, 6.3, "\n".join(lines), ha="left", va="center", fontsize=7, bbox=box, family="DejaVu Sans")
    queries = flow.loc[flow.step == "query_total", "n"]
    query_line = f"\nof whom {int(queries.iloc[0])} with a blank\neligibility field (kept)" if len(queries) else ""
    ax.text(3, 3.2, f"Patients analysed\nn = {analysed}{query_line}", ha="center", va="center", bbox=box)
    for x, arm in zip((1.5, 4.5), ARM_ORDER):
        ax.text(x, 1.0, f"{arm} at time zero\nn = {int(arms.get(arm, 0))}", ha="center", va="center",
                bbox=dict(box, ec=ARM_COLOURS[arm], lw=1.4))
        ax.annotate("", xy=(x, 1.5), xytext=(3, 2.45 if query_line else 2.7), arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.annotate("", xy=(3, 3.95 if query_line else 3.75), xytext=(3, 8.85), arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.annotate("", xy=(5.1, 6.3), xytext=(3, 6.3), arrowprops=dict(arrowstyle="->", lw=0.8))
    return fig


SHORT_CRITERIA = {  # the flow diagram's short names of the eligibility criteria (full wording: Methods, flow.csv)
    "duplicate_record": "Duplicate record", "no_treatment_start": "No treatment recorded",
    "treatment_date_unknown": "Treatment date unknown", "hcc_not_confirmed": "HCC not confirmed",
    "excluded_histology": "Excluded histology", "bclc_not_b_or_c": "BCLC stage not B or C",
    "prior_systemic_therapy": "Prior systemic therapy", "no_measurable_intrahepatic": "No measurable liver lesion",
    "child_pugh_c": "Child-Pugh class C", "ecog_above_2": "ECOG above 2",
    "severe_encephalopathy": "Severe encephalopathy",
    "start_after_death_or_cutoff": "Start after death or cut-off", "invalid_follow_up": "No valid follow-up",
}


def study_flow_diagram(by_arm: pd.DataFrame, matching: dict | None = None, n_centers: int | None = None
                       ) -> plt.Figure:
    """The manuscript's STROBE flow diagram, one column per arm at time zero: records screened (HAIC on day 0 or
    not; records without a time zero, and so without an arm, in a box of their own beside the screened records), the
    records excluded under their first failing criterion (every criterion that excluded a record in either arm,
    with this arm's count; short names from ``SHORT_CRITERIA``), the patients analysed, then, with ``matching``
    (:func:`analysis_utils.reporting.matching.flow_matching_step`), the propensity-score matching step: pairs
    formed, patients left unmatched per arm with the reason, patients matched. ``by_arm``:
    :func:`analysis_utils.study.eligibility.flow_by_arm`. No title: the caption carries it."""
    arms = [a for a in ARM_ORDER if a in set(by_arm["arm"])]
    no_arm = by_arm[(by_arm["arm"] == NO_ARM) & (by_arm["step"] == "excluded") & (by_arm["n"] > 0)]
    n = {(r.step, r.criterion if r.step == "excluded" else "", r.arm): int(r.n) for r in by_arm.itertuples()}
    excl = by_arm[(by_arm["step"] == "excluded") & by_arm["arm"].isin(arms)]
    shown = [c for c, part in excl.groupby("criterion", sort=False) if part["n"].sum() > 0]
    labels = dict(zip(excl["criterion"], excl["label"]))
    xs = dict(zip(arms, (1.7, 6.5)))
    box = dict(boxstyle="round,pad=0.4", fc="white", ec="0.3", lw=0.8)
    side = dict(box, fc="0.96")
    arrow = dict(arrowstyle="-|>", lw=0.8, color="0.25", mutation_scale=8, shrinkA=0, shrinkB=0)
    excl_h = 0.125 * (len(shown) + 1) + 0.2
    unmatched_h = 0.125 * (1 + max((len(v["unmatched"]) for v in (matching or {}).get("arms", {}).values()),
                                  default=0)) + 0.2
    # y of each row, top down (inches; the axes are in inches too)
    y_top = 0.35
    y_arm = y_top + 0.95 + (max(0.0, 0.125 * len(no_arm) - 0.2) if len(no_arm) else 0.0)
    y_excl = y_arm + 0.45 + excl_h / 2
    y_an = y_excl + excl_h / 2 + 0.55
    y_ps = y_an + 0.85
    y_un = y_ps + 0.45 + unmatched_h / 2
    y_m = y_un + unmatched_h / 2 + 0.5
    height = (y_m if matching else y_an) + 0.45
    fig, ax = plt.subplots(figsize=(7.2, height))
    fig.subplots_adjust(0, 0, 1, 1)
    ax.set_axis_off()
    ax.set_xlim(0, 10)
    ax.set_ylim(height, 0)
    total = sum(n[("screened", "", a)] for a in set(by_arm["arm"]))
    where = f" at {n_centers} centres" if n_centers else ""
    ax.text(5, y_top, f"Records screened{where}\nn = {total:,}", ha="center", va="center", fontsize=8, bbox=box)
    if len(no_arm):  # excluded before any arm can be known
        lines = [f"No time zero (no arm), n = {int(no_arm['n'].sum()):,}"] + [
            f"  {SHORT_CRITERIA.get(r.criterion, r.label)}: {int(r.n):,}" for r in no_arm.itertuples()]
        ax.annotate("", xy=(6.95, y_top), xytext=(6.35, y_top), arrowprops=arrow)
        ax.text(7.0, y_top + 0.125 * (len(lines) - 2) / 2, "\n".join(lines), ha="left", va="center", fontsize=6.5,
                linespacing=1.3, bbox=side)
    for arm, x in xs.items():
        recorded = "HAIC at time zero" if arm == ARM_ORDER[0] else "No HAIC at time zero"
        ax.annotate("", xy=(x, y_arm - 0.27), xytext=(5, y_top + 0.27), arrowprops=arrow)
        ax.text(x, y_arm, f"{recorded}\nn = {n[('screened', '', arm)]:,}", ha="center", va="center", fontsize=8,
                bbox=box)
        ax.annotate("", xy=(x, y_an - 0.27), xytext=(x, y_arm + 0.27), arrowprops=arrow)
        n_ex = sum(n[("excluded", c, arm)] for c in shown)
        lines = [f"Excluded, n = {n_ex:,}"] + [f"  {SHORT_CRITERIA.get(c, labels[c])}: {n[('excluded', c, arm)]:,}"
                                               for c in shown]
        ax.annotate("", xy=(x + 0.45, y_excl), xytext=(x, y_excl), arrowprops=arrow)
        ax.text(x + 0.5, y_excl, "\n".join(lines), ha="left", va="center", fontsize=6.5, linespacing=1.3,
                bbox=side)
        ax.text(x, y_an, f"{arm}\nn = {n[('analysed', '', arm)]:,}", ha="center", va="center", fontsize=8,
                fontweight="bold", bbox=dict(box, ec=ARM_COLOURS[arm], lw=1.4))
    if matching:
        for arm, x in xs.items():
            info = matching["arms"][arm]
            ax.annotate("", xy=(x, y_m - 0.27), xytext=(x, y_an + 0.27), arrowprops=arrow, zorder=1)
            reasons = [f"  {why}: {k:,}" for why, k in info["unmatched"].items()]
            ax.annotate("", xy=(x + 0.45, y_un), xytext=(x, y_un), arrowprops=arrow)
            ax.text(x + 0.5, y_un, "\n".join([f"Unmatched, n = {sum(info['unmatched'].values()):,}", *reasons]),
                    ha="left", va="center", fontsize=6.5, linespacing=1.3, bbox=side)
            ax.text(x, y_m, f"Matched {arm}\nn = {info['matched']:,}", ha="center", va="center", fontsize=8,
                    fontweight="bold", bbox=dict(box, ec=ARM_COLOURS[arm], lw=1.4))
        ax.text(5, y_ps, f"Propensity-score matching: {matching['method']}; {matching['n_pairs']:,} matched pairs",
                ha="center", va="center", fontsize=7.5, bbox=dict(box, fc="white"), zorder=3)
    return fig
