"""Notebook 07_safety presentation: the adverse-event tables as the manuscript prints them and the butterfly chart.

Computation (treatment-emergent events, counts by arm, Fisher tests) is in :mod:`analysis_utils.steps.safety`;
rules in docs/methods/ctcae.md (NCI CTCAE v5.0, 2017).
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import pandas as pd

from analysis_utils.reporting.figures import ARM_COLOURS, ARM_ORDER
from analysis_utils.reporting.tables import fmt_est_ci, fmt_num, fmt_p


def format_counts(table: pd.DataFrame, label_col: str, groups: Sequence[str] = ("",)) -> pd.DataFrame:
    """Manuscript version of :func:`~analysis_utils.steps.safety.ae_summary_table` (``groups=("",)``) or
    :func:`~analysis_utils.steps.safety.ae_by_term_table` (``groups=("any ", ">=3 ")``): 'n (%)' per arm and group,
    p-values formatted (``tables.fmt_p``) and labelled nominal (outside the testing hierarchy)."""
    arms = list(table.attrs.get("N", {}))
    head = {"ctcae_term": "CTCAE term", "category": "Patients with"}.get(label_col, label_col)
    out = pd.DataFrame({head: table[label_col].astype(str).str.replace(">=", "≥", regex=False)})
    for g in groups:
        for arm in arms:
            head = f"{arm} (N = {table.attrs['N'][arm]})" + (f", grade {g.strip().replace('>=', '≥')}" if g else "")
            out[head] = [f"{int(n)} ({p:.1f}%)" for n, p in zip(table[f"{arm} {g}n"], table[f"{arm} {g}%"])]
        pcol = "p_value" if not g else f"p {g.strip()}"
        out["P (nominal" + (f", grade {g.strip().replace('>=', '≥')})" if g else ")")] = table[pcol].map(fmt_p)
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


def format_eair(table: pd.DataFrame) -> pd.DataFrame:
    """Manuscript version of :func:`~analysis_utils.steps.safety.eair_table`: per category and arm 'n (%)' (crude)
    and the EAIR per 100 patient-years with its exact 95% CI, then the rate ratio (95% CI) and its nominal P."""
    arms = [c[:-2] for c in table.columns if c.endswith(" N")]
    out = pd.DataFrame({"Patients with": table["category"].str.replace(">=", "≥", regex=False)})
    for arm in arms:
        out[f"{arm}, n (%)"] = [f"{int(n)} ({pct:.1f}%)" for n, pct in zip(table[f"{arm} n"], table[f"{arm} %"])]
        out[f"{arm}, patient-years"] = [fmt_num(v, 1, "—") for v in table[f"{arm} PY"]]
        out[f"{arm}, EAIR per 100 PY (95% CI)"] = [
            fmt_est_ci(r, lo, hi, digits=1, missing="—") for r, lo, hi in
            zip(table[f"{arm} EAIR"], table[f"{arm} EAIR lower"], table[f"{arm} EAIR upper"])]
    out["Rate ratio (95% CI)"] = [fmt_est_ci(r, lo, hi, missing="—") for r, lo, hi in
                                  zip(table["rate ratio"], table["rate ratio lower"], table["rate ratio upper"])]
    out["P (nominal)"] = table["p"].map(fmt_p)
    return out


def format_lab_sensitivity(table: pd.DataFrame, arms: Sequence[str] = tuple(ARM_ORDER)) -> pd.DataFrame:
    """Manuscript version of :func:`~analysis_utils.steps.safety.lab_event_sensitivity`: per laboratory term, the
    grade >= 3 counts 'n (%)' per arm with every value and with the common schedule side by side."""
    labels = list(dict.fromkeys(table["labs"]))
    wide = None
    for lab in labels:
        sub = table[table["labs"] == lab].set_index("ctcae_term")
        cols = {f"{arm}, grade ≥3 ({lab})": [f"{int(n)} ({pc:.1f}%)" for n, pc in
                                             zip(sub[f"{arm} >=3 n"], sub[f"{arm} >=3 %"])] for arm in arms}
        cols[f"P (nominal, {lab})"] = sub["p >=3"].map(fmt_p).to_numpy()
        part = pd.DataFrame(cols, index=sub.index)
        wide = part if wide is None else wide.join(part, how="outer")
    return wide.rename_axis("CTCAE term").reset_index()


def format_first_grade3(first_g3: dict) -> pd.DataFrame:
    """Cumulative incidence of the first grade >= 3 TEAE (``steps.safety.first_grade3_cumulative_incidence``): % (95%
    CI) per arm at each timepoint, and Gray's test P (nominal) in a last row."""
    cif = first_g3["cif"]
    out = pd.DataFrame({"Months": sorted(cif["time"].unique())})
    for arm in ARM_ORDER:
        c = cif[cif["arm"] == arm].set_index("time").reindex(out["Months"])
        out[f"{arm}, % (95% CI)"] = [fmt_est_ci(100 * e, 100 * lo, 100 * hi, digits=1, missing="—") for e, lo, hi in
                                     zip(c["est"], c["lower"], c["upper"])]
    gray = {"Months": "Gray's test", f"{ARM_ORDER[0]}, % (95% CI)": f"P (nominal) {fmt_p(first_g3['gray'].get('p'))}",
            f"{ARM_ORDER[1]}, % (95% CI)": ""}
    out["Months"] = out["Months"].map(lambda t: f"{t:g}")
    return pd.concat([out, pd.DataFrame([gray])], ignore_index=True)
