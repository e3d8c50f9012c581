"""Figures: one consistent look for the whole paper, saved as 300-dpi PNG and SVG.

``save_figure`` strips the creation date from vector output and fixes the SVG hash salt, so identical runs give
identical files. Arm colours are fixed here and used by every figure (colour-blind-safe Okabe-Ito pair).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

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


def flow_diagram(flow: pd.DataFrame) -> plt.Figure:
    """STROBE flow diagram from :func:`analysis_utils.eligibility.flow_table`: screened records, exclusions by
    first failing criterion (criteria with no exclusion are listed with 0), analysed patients by arm."""
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
    ax.text(3, 3.2, f"Patients analysed\nn = {analysed}", ha="center", va="center", bbox=box)
    for x, arm in zip((1.5, 4.5), ARM_ORDER):
        ax.text(x, 1.0, f"{arm}\nn = {int(arms.get(arm, 0))}", ha="center", va="center",
                bbox=dict(box, ec=ARM_COLOURS[arm], lw=1.4))
        ax.annotate("", xy=(x, 1.5), xytext=(3, 2.7), arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.annotate("", xy=(3, 3.75), xytext=(3, 8.85), arrowprops=dict(arrowstyle="->", lw=0.8))
    ax.annotate("", xy=(5.1, 6.3), xytext=(3, 6.3), arrowprops=dict(arrowstyle="->", lw=0.8))
    return fig


def ae_butterfly(by_term: pd.DataFrame, arms: list[str] | None = None, top: int = 15) -> plt.Figure:
    """Diverging bar chart of the most frequent adverse events: % of patients per arm (left: first arm, right:
    second), grade 1-2 and grade >= 3 stacked, from :func:`analysis_utils.safety.ae_by_term_table`."""
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
