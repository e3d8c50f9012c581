"""Notebook 01_cleaning presentation: the STROBE flow diagram.

The flow table itself comes from :func:`analysis_utils.study.eligibility.flow_table`; the data-quality summary the
notebook shows is :meth:`analysis_utils.study.quality.QualityLog.summary` (also written as a CSV by
:func:`analysis_utils.steps.cleaning.write_cleaned`).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from analysis_utils.reporting.figures import ARM_COLOURS, ARM_ORDER


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
