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


# ---------------------------------------------------------------------------------------------- survival (03_survival)
SUBGROUP_LABELS = {"mvi": "Macrovascular invasion", "ehs": "Extrahepatic spread", "afp_ge_400": "AFP \u2265 400 ng/mL",
                   "child_pugh_class": "Child-Pugh class", "bclc_stage": "BCLC stage",
                   "tki_agent": "TKI / anti-VEGF agent", "ecog": "ECOG PS", "sex": "Sex", "etiology": "Aetiology"}
_LEVEL_LABELS = {"True": "Yes", "False": "No", "1": "Yes", "0": "No"}


def _p_text(p: float) -> str:
    from analysis_utils.reporting.tables import fmt_p

    s = fmt_p(p)
    return f"p {s[0]} {s[1:]}" if s.startswith("<") else f"p = {s}"


def km_plot(result: dict, ylabel: str = "Survival probability", title: str | None = None, x_max: float = 24.0,
            tick_step: float = 3.0, show_ci: bool = True) -> plt.Figure:
    """Kaplan-Meier curves per arm from ``survival.analyse_endpoint``: step curves with censoring marks (|), pointwise
    CI bands (the tables' conf_type), number at risk under the x-axis at the displayed ticks
    (``survival.number_at_risk``: patients with time >= tick, unweighted even for a weighted KM), median with its CI
    per arm, HR and the test p (log-rank; robust Wald with weights) on the figure. Months 0 to ``x_max``; a curve
    extending beyond x_max is cut at the axis."""
    import numpy as np

    from analysis_utils.steps.survival import number_at_risk
    from analysis_utils.reporting.tables import fmt_est_ci

    arms = [a for a in ARM_ORDER if a in result["km"]]
    ticks = np.arange(0.0, x_max + 1e-9, tick_step)
    fig, (ax, ax_risk) = plt.subplots(2, 1, figsize=(6.4, 5.4), sharex=True,
                                      gridspec_kw={"height_ratios": [4.2, 0.35 + 0.3 * len(arms)], "hspace": 0.32})
    lines = [f"Median, months ({int(round(100 * result['conf_level']))}% CI, {result['conf_type']})"]
    for arm in arms:
        km, colour = result["km"][arm], ARM_COLOURS[arm]
        t = np.concatenate([[0.0], km["time"].to_numpy()])
        ax.step(t, np.concatenate([[1.0], km["surv"].to_numpy()]), where="post", color=colour, lw=1.5, label=arm)
        if show_ci:
            ax.fill_between(t, np.concatenate([[1.0], km["lower"].to_numpy()]),
                            np.concatenate([[1.0], km["upper"].to_numpy()]), step="post", color=colour, alpha=0.15,
                            lw=0)
        cens = km[(km["n_censor"] > 0) & (km["time"] <= x_max)]
        ax.plot(cens["time"], cens["surv"], ls="none", marker="|", ms=5, mew=0.9, color=colour)
        med = result["median"].loc[arm]
        lines.append(f"{arm}: {fmt_est_ci(med['median'], med['lower'], med['upper'], digits=1)}")
    hr = result.get("hr") or {}
    if hr and np.isfinite(hr.get("hr", np.nan)):
        lines.append(f"HR {fmt_est_ci(hr['hr'], hr['lower'], hr['upper'])}")
    if np.isfinite(result["test"]["p"]):
        lines.append(f"{result['test']['label']} {_p_text(result['test']['p'])}")
    ax.text(0.98, 0.98, "\n".join(lines), transform=ax.transAxes, ha="right", va="top", fontsize=7.5,
            bbox=dict(boxstyle="round,pad=0.35", fc="white", ec="0.8", lw=0.6))
    ax.axhline(0.5, color="0.75", lw=0.6, ls=":")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, x_max * 1.01)
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    for i, arm in enumerate(arms):
        n_risk = number_at_risk(result["times"][arm], ticks)
        y = len(arms) - 1 - i
        for x, n in zip(ticks, n_risk):
            ax_risk.text(x, y, f"{int(n)}", ha="center", va="center", fontsize=7.5, color=ARM_COLOURS[arm])
        ax_risk.text(-0.06, y, arm, ha="right", va="center", fontsize=7.5, color=ARM_COLOURS[arm],
                     transform=ax_risk.get_yaxis_transform())
    ax_risk.set_ylim(-0.6, len(arms) - 0.4)
    ax_risk.set_axis_off()
    ax_risk.text(-0.06, len(arms) - 0.3, "Number at risk" + (" (unweighted)" if result.get("weighted") else ""),
                 ha="left", va="bottom", fontsize=7.5, fontweight="bold", transform=ax_risk.get_yaxis_transform())
    ax.set_xticks(ticks)
    ax.tick_params(labelbottom=True)
    ax.set_xlabel("Months since the index date")
    return fig


def forest_plot(table: pd.DataFrame, overall: dict | None = None, labels: dict[str, str] | None = None,
                xlabel: str = "Hazard ratio (95% CI)") -> plt.Figure:
    """Subgroup forest plot from ``survival.cox_interaction_p``: HR (95% CI) of HAIC-TKIs-P vs TKIs-P per subgroup
    level on a log axis, n (events) and the interaction p per subgroup; ``overall`` (a ``survival.arm_hr`` dict
    plus ``n``/``n_events``) is drawn first as a diamond. CIs beyond the axis end in an arrow; levels that cannot
    be estimated are listed with 'NE'."""
    import numpy as np

    from analysis_utils.reporting.tables import fmt_est_ci, fmt_p

    labels = {**SUBGROUP_LABELS, **(labels or {})}
    rows: list[dict] = []
    if overall is not None:
        rows.append({"label": "All patients", "kind": "overall", **overall})
    for sg, part in table.groupby("subgroup", sort=False):
        rows.append({"label": labels.get(sg, sg), "kind": "header", "p_interaction": part["p_interaction"].iloc[0]})
        for r in part.to_dict("records"):
            rows.append({**r, "label": "   " + _LEVEL_LABELS.get(str(r["level"]), str(r["level"])), "kind": "level"})
    finite = [v for r in rows if r["kind"] != "header" for v in (r.get("lower"), r.get("upper"))
              if v is not None and np.isfinite(v)]
    lo = max(0.05, min(finite + [0.5]) / 1.15)
    hi = min(20.0, max(finite + [2.0]) * 1.15)
    n_rows = len(rows)
    fig, (ax_l, ax, ax_r) = plt.subplots(1, 3, figsize=(7.2, 0.26 * n_rows + 1.3), sharey=True,
                                         gridspec_kw={"width_ratios": [2.6, 2.4, 2.2], "wspace": 0.02})
    for i, r in enumerate(rows):
        y = n_rows - 1 - i
        bold = "bold" if r["kind"] != "level" else "normal"
        ax_l.text(0, y, r["label"], va="center", fontsize=7.5, fontweight=bold)
        if r["kind"] == "header":
            ax_r.text(0.98, y, f"P interaction {fmt_p(r['p_interaction'])}", va="center", ha="right", fontsize=7)
            continue
        n_text = "" if pd.isna(r.get("n")) else f"{int(r['n'])} ({int(r['n_events'])})"
        ax_l.text(1.0, y, n_text, va="center", ha="right", fontsize=7.5)
        est, l_, u_ = (r.get(k, np.nan) for k in ("hr", "lower", "upper"))
        if not np.isfinite(est):
            ax_r.text(0.02, y, "NE", va="center", fontsize=7.5)
            continue
        ax_r.text(0.02, y, fmt_est_ci(est, l_, u_), va="center", fontsize=7.5)
        ax.plot([max(l_, lo), min(u_, hi)], [y, y], color="0.15", lw=1)
        for end, edge, marker in ((l_, lo, "<"), (u_, hi, ">")):
            if (marker == "<" and end < lo) or (marker == ">" and end > hi):
                ax.plot(edge, y, marker=marker, color="0.15", ms=4)
        if r["kind"] == "overall":
            ax.plot(est, y, marker="D", color="0.15", ms=6)
        else:
            ax.plot(est, y, marker="s", color="0.15", ms=4)
    ax.axvline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 4, 10) if lo <= t <= hi]  # evenly spaced on the log axis
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylim(-0.8, n_rows - 0.3)
    one = float(np.log(1 / lo) / np.log(hi / lo))  # axes fraction of HR = 1
    for text, ha, arm in (("\u2190 Favours HAIC-TKIs-P ", "right", ARM_HAIC), (" Favours TKIs-P \u2192", "left", ARM_CONTROL)):
        ax.annotate(text, xy=(one, 0), xycoords="axes fraction", xytext=(0, -34), textcoords="offset points",
                    ha=ha, va="top", fontsize=6.5, color=ARM_COLOURS[arm], annotation_clip=False)
    for a in (ax_l, ax_r):
        a.set_axis_off()
        a.set_xlim(0, 1)
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", left=False)
    ax_l.text(0, n_rows - 0.2, "Subgroup", fontsize=7.5, fontweight="bold", va="bottom")
    ax_l.text(1.0, n_rows - 0.2, "n (events)", fontsize=7.5, fontweight="bold", va="bottom", ha="right")
    ax_r.text(0.02, n_rows - 0.2, "HR (95% CI)", fontsize=7.5, fontweight="bold", va="bottom")
    return fig


def schoenfeld_plot(zph: object, term: str = "arm", coef: float | None = None, ylabel: str | None = None,
                    title: str | None = None) -> plt.Figure:
    """Proportional-hazards check as R ``plot(cox.zph(fit))``: scaled Schoenfeld residuals + coefficient (beta(t))
    of ``term`` against event time in months, a LOWESS smooth (statsmodels, frac 2/3; R draws a spline with
    +-2 SE), the fitted coefficient ``coef`` (dashed) and 0 (dotted), and the cox.zph p of the term (transform as
    in ``zph.transform``). A flat smooth means a constant hazard ratio."""
    import numpy as np
    from statsmodels.nonparametric.smoothers_lowess import lowess

    data, table = zph.plot_data, zph.table
    if term not in data.columns:
        raise ValueError(f"term {term!r} is not in the cox.zph plot data (terms: {list(data.columns[3:])})")
    x, y = data["time"].to_numpy(), data[term].to_numpy()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    ax.plot(x, y, ls="none", marker="o", ms=2.5, color="0.55", alpha=0.6)
    ok = np.isfinite(y)
    if ok.sum() > 3:
        sm = lowess(y[ok], x[ok], frac=2 / 3, return_sorted=True)
        ax.plot(sm[:, 0], sm[:, 1], color="0.1", lw=1.5, label="LOWESS")
    if coef is not None:
        ax.axhline(coef, color=ARM_COLOURS[ARM_HAIC], lw=1, ls="--", label=f"Cox coefficient ({coef:.2f})")
    ax.axhline(0, color="0.5", lw=0.8, ls=":")
    p = float(table.loc[table["term"] == term, "p"].iloc[0])
    ax.text(0.98, 0.97, f"Schoenfeld test ({zph.transform} time) {_p_text(p)}", transform=ax.transAxes,
            ha="right", va="top", fontsize=7.5)
    ax.set_xlabel("Event time (months since the index date)")
    ax.set_ylabel(ylabel or f"beta(t) for {term} (log HR)")
    ax.legend(loc="lower left", frameon=False, fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
