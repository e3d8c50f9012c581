"""Notebook 07_safety presentation: the adverse-event tables as the manuscript prints them and the butterfly chart.

Computation (treatment-emergent events, counts by arm, Fisher tests) is in :mod:`analysis_utils.steps.safety`;
rules in docs/methods/ctcae.md (NCI CTCAE v5.0, 2017).
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd

from analysis_utils.reporting.figures import ARM_COLOURS, ARM_ORDER
from analysis_utils.reporting.tables import fmt_p


def format_counts(table: pd.DataFrame, label_col: str, groups: Sequence[str] = ("",)) -> pd.DataFrame:
    """Manuscript version of :func:`~analysis_utils.steps.safety.ae_summary_table` (``groups=("",)``) or
    :func:`~analysis_utils.steps.safety.ae_by_term_table` (``groups=("any ", ">=3 ")``): 'n (%)' per arm and group,
    p-values formatted (``tables.fmt_p``)."""
    arms = list(table.attrs.get("N", {}))
    head = {"ctcae_term": "CTCAE term", "category": "Patients with"}.get(label_col, label_col)
    out = pd.DataFrame({head: table[label_col].astype(str).str.replace(">=", "≥", regex=False)})
    for g in groups:
        for arm in arms:
            head = f"{arm} (N = {table.attrs['N'][arm]})" + (f", grade {g.strip().replace('>=', '≥')}" if g else "")
            out[head] = [f"{int(n)} ({p:.1f}%)" for n, p in zip(table[f"{arm} {g}n"], table[f"{arm} {g}%"])]
        pcol = "p_value" if not g else f"p {g.strip()}"
        out["P" + (f" (grade {g.strip().replace('>=', '≥')})" if g else "")] = table[pcol].map(fmt_p)
    return out


def ae_butterfly(by_term: pd.DataFrame, arms: list[str] | None = None, top: int = 15) -> plt.Figure:
    """Diverging bar chart of the most frequent adverse events: % of patients per arm (left: first arm, right:
    second), grade 1-2 and grade >= 3 stacked, from :func:`analysis_utils.steps.safety.ae_by_term_table`."""
    arms = arms or ARM_ORDER
    t = by_term.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7.2, 0.32 * len(t) + 1.4))
    y = range(len(t))
    for sign, arm in zip((-1, 1), arms):
        g3 = t[f"{arm} >=3 %"].to_numpy()
        g12 = t[f"{arm} any %"].to_numpy() - g3
        colour = ARM_COLOURS[arm]
        ax.barh(y, sign * g12, color=colour, alpha=0.45, label=f"{arm}, grade 1-2")
        ax.barh(y, sign * g3, left=sign * g12, color=colour, label=f"{arm}, grade \u2265 3")
    ax.axvline(0, color="0.2", lw=0.8)
    ax.set_yticks(list(y), t["ctcae_term"])
    ticks = ax.get_xticks()
    ax.set_xticks(ticks, [f"{abs(v):.0f}" for v in ticks])
    ax.set_xlabel("Patients with the event (%)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=7)
    return fig
