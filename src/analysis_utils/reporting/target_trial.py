"""Target-trial tables and figures of notebook 03_target_trial and the manuscript: the protocol table (target trial
versus its emulation) and the ICH E9(R1) estimand statement, both generated from the params; formatted versions of
the clone, weight, contrast and sensitivity tables of ``steps.target_trial``; the weight distributions per strategy
and interval, and the weighted survival curves with bootstrap CIs per strategy (the main figure).
Rules: docs/methods/target-trial.md (protocol, estimand, CCW), docs/methods/eligibility-and-time-zero.md.
"""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis_utils.reporting.figures import ARM_COLOURS
from analysis_utils.reporting.tables import fmt_est_ci, fmt_num
from analysis_utils.steps.target_trial import DAYS_PER_MONTH, ENDPOINTS, TTERun, stat_name
from analysis_utils.study.config import TargetTrialConfig
from analysis_utils.study.eligibility import CRITERIA
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC, STRATEGIES

TIME_MODEL_TEXT = {"indicators": "one indicator per interval", "quadratic": "a quadratic function of time with "
                   "its own terms for day 0 and day G"}


def ordinal(x: float) -> str:
    """1 -> '1st', 99 -> '99th', 2.5 -> '2.5th'."""
    if float(x) != int(x):
        return f"{x:g}th"
    n = int(x)
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def truncation_text(cfg: TargetTrialConfig) -> str:
    """'not truncated (sensitivity analysis: truncated at the 1st and 99th percentiles of each strategy's weights)',
    or 'truncated at ...' for the main analysis, from the two truncation settings."""
    def at(q: tuple[float, float]) -> str:
        return (f"truncated at the {ordinal(100 * q[0])} and {ordinal(100 * q[1])} percentiles of each strategy's "
                "weights")
    main = "not truncated" if cfg.truncate_quantiles is None else at(cfg.truncate_quantiles)
    q = cfg.truncate_quantiles_sensitivity
    return main if q is None else f"{main} (sensitivity analysis: {at(q)})"


def lower_first(s: str) -> str:
    """Lower-case the first letter unless the first word is an acronym or hyphenated ('Child-Pugh', 'HCC')."""
    word = s.split(" ", 1)[0]
    return s if word.isupper() or "-" in word or any(c.isdigit() for c in word) else s[:1].lower() + s[1:]


def _eligibility_text(cleaning: dict[str, Any]) -> str:
    crit = [lower_first(c.label) for c in CRITERIA if c.kind != "data"]
    return (f"assessed with information on or before time zero only; excluded: {'; '.join(crit)}. Baseline scan: "
            f"the last within {int(cleaning.get('baseline_imaging_window_days', 42))} days before time zero; "
            f"baseline laboratory values: the last within {int(cleaning.get('baseline_lab_window_days', 30))} days "
            "before time zero. A blank criterion field is a missing value, not a failed criterion")


def protocol_table(cfg: TargetTrialConfig, cleaning: dict[str, Any]) -> pd.DataFrame:
    """The target-trial protocol (Hernán & Robins 2016) and how each element is emulated, from the params."""
    g = cfg.grace_days
    gap = int(cleaning.get("combination_max_gap_days", 30))
    combo = f"TKI/anti-VEGF plus PD-(L)1, the second class started within {gap} days of the first, by day {g}"
    eps = ", ".join(ENDPOINTS[e][2] for e in cfg.endpoints)
    times = " and ".join(f"{m:g}" for m in cfg.timepoints_months)
    rows = [
        ("Eligibility", "Adults with HCC (radiology, histology or cytology), BCLC B or C, no prior systemic therapy, "
         "Child-Pugh A or B, ECOG 0-2, no severe hepatic encephalopathy, a measurable intrahepatic lesion",
         _eligibility_text(cleaning)),
        ("Treatment strategies", f"A (HAIC-TKIs-P): start HAIC within {g} days and the combination ({combo}). "
         f"B (TKIs-P): the combination ({combo}) and no HAIC within {g} days (HAIC after day {g} allowed)",
         "Each patient's observed treatment is compared with both strategies day by day (deviation days)"),
        ("Assignment", "Random, at time zero",
         "Each eligible patient is cloned into both strategies at time zero; confounding of the deviation is removed "
         "by inverse probability of censoring weights (baseline covariates, centre)"),
        ("Time zero", "Randomisation = start of treatment",
         "The first treatment component: first HAIC or first TKI/anti-VEGF or PD-(L)1 dose, whichever comes first"),
        ("Follow-up", "From time zero to the event, loss to follow-up or the data cut-off",
         "The same; a clone is also censored (artificially) on the day its treatment deviates from its strategy: "
         f"A at day {g} without HAIC and the combination by then, B at the first HAIC on or before day {g} or at "
         f"day {g} without the combination; events on the deviation day count"),
        ("Outcomes", eps, f"{eps}, from time zero"),
        ("Causal contrasts", "Per-protocol effect of A versus B", f"Per-protocol effect: survival at {times} months "
         f"and RMST at {cfg.rmst_tau_months:g} months under A versus B (differences and ratios)"),
        ("Analysis plan", "Kaplan-Meier per arm, differences with CIs",
         f"Weighted Kaplan-Meier per strategy on the clone data; pooled logistic deviation models per strategy on "
         f"{cfg.interval_days}-day intervals of the grace period (plus day 0 and day {g}) with time as "
         f"{TIME_MODEL_TEXT[cfg.time_model]}; weights {'stabilised, ' if cfg.stabilize else ''}{truncation_text(cfg)}; "
         f"{100 * cfg.conf_level:g}% percentile CIs from {cfg.bootstrap} bootstrap samples of patients with the "
         "weight models refitted; a weighted Cox hazard ratio as a summary"),
    ]
    return pd.DataFrame(rows, columns=["Protocol element", "Target trial", "Emulation in this cohort"])


def estimand_text(cfg: TargetTrialConfig, cleaning: dict[str, Any]) -> dict[str, str]:
    """The five attributes of the ICH E9(R1) estimand of the main analysis, from the params."""
    g = cfg.grace_days
    times = " and ".join(f"{m:g}" for m in cfg.timepoints_months)
    return {
        "population": "Patients with advanced (BCLC B or C) HCC eligible at the start of their first treatment "
                      "component, as defined by the eligibility criteria assessed at time zero",
        "treatment": f"HAIC started within {g} days of time zero together with a TKI/anti-VEGF plus PD-(L)1 "
                     f"combination started by day {g} (HAIC-TKIs-P), versus the same combination without HAIC within "
                     f"{g} days (TKIs-P)",
        "endpoint": "; ".join(f"{ENDPOINTS[e][2]} from time zero" for e in cfg.endpoints),
        "intercurrent_events": f"Not starting HAIC by day {g} (strategy A) or starting HAIC by day {g} (strategy B), "
                               f"and not starting the combination by day {g}: hypothetical strategy (artificial "
                               "censoring at the deviation, inverse probability of censoring weights). Death before "
                               "progression (PFS): part of the endpoint (composite strategy). Treatment changes after "
                               f"day {g}, including HAIC after day {g} in strategy B: treatment-policy strategy",
        "summary": f"Difference (and ratio) in survival probability at {times} months and difference in restricted "
                   f"mean survival time up to {cfg.rmst_tau_months:g} months, HAIC-TKIs-P minus TKIs-P",
    }


ESTIMAND_ATTRIBUTES = {"population": "Population", "treatment": "Treatment conditions", "endpoint": "Endpoint",
                       "intercurrent_events": "Intercurrent events", "summary": "Population-level summary"}


def estimand_table(cfg: TargetTrialConfig, cleaning: dict[str, Any]) -> pd.DataFrame:
    """The estimand as a two-column table (attribute, definition), for the supplement."""
    return pd.DataFrame([{"Attribute": ESTIMAND_ATTRIBUTES[k], "Definition": v}
                         for k, v in estimand_text(cfg, cleaning).items()])


def estimand_markdown(cfg: TargetTrialConfig, cleaning: dict[str, Any]) -> str:
    """The estimand as a Markdown list (for the notebook)."""
    return "\n".join(f"- **{ESTIMAND_ATTRIBUTES[k]}:** {v}." for k, v in estimand_text(cfg, cleaning).items())


# --------------------------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------------------------
def format_clone_summary(table: pd.DataFrame, grace_days: int) -> pd.DataFrame:
    """Clones, artificial censoring by when, and events per strategy."""
    return pd.DataFrame({
        "Strategy": table["strategy"], "Clones": table["clones"],
        "Censored at deviation": table["censored"], "on day 0": table["censored_day0"],
        f"days 1-{grace_days - 1}": table["censored_grace"], f"day {grace_days}": table["censored_day_g"],
        "Events counted": table["events"], f"of which by day {grace_days}": table["events_by_g"]})


def format_weight_distribution(table: pd.DataFrame) -> pd.DataFrame:
    """Weights per strategy and period: n, mean (SD), median, 1st-99th percentile, range."""
    return pd.DataFrame({
        "Strategy": table["strategy"], "Period": table["period"], "Clones": table["n"],
        "Mean (SD)": [f"{fmt_num(m, 2)} ({fmt_num(s, 2, '—')})" for m, s in zip(table["mean"], table["sd"])],
        "Median": [fmt_num(x, 2) for x in table["median"]],
        "P1-P99": [f"{fmt_num(a, 2)}-{fmt_num(b, 2)}" for a, b in zip(table["p01"], table["p99"])],
        "Min-max": [f"{fmt_num(a, 2)}-{fmt_num(b, 2)}" for a, b in zip(table["min"], table["max"])]})


def format_contrasts(table: pd.DataFrame) -> pd.DataFrame:
    """Contrasts: survival in %, differences in percentage points, RMST in months, ratios and HR to 2 decimals."""
    out = []
    for r in table.to_dict("records"):
        q = r["quantity"]
        if q.startswith("S(") or q.startswith("Difference in S"):
            txt = fmt_est_ci(100 * r["estimate"], 100 * r["lower"], 100 * r["upper"], digits=1, missing="—")
            unit = "%" if q.startswith("S(") else "percentage points"
        elif "RMST" in q:
            txt, unit = fmt_est_ci(r["estimate"], r["lower"], r["upper"], digits=1, missing="—"), "months"
        else:
            txt, unit = fmt_est_ci(r["estimate"], r["lower"], r["upper"], digits=2, missing="—"), ""
        out.append({"Endpoint": ENDPOINTS[r["endpoint"]][2], "Quantity": q, "Estimate (95% CI)": txt, "Unit": unit})
    return pd.DataFrame(out)


def format_sensitivity(table: pd.DataFrame, timepoints: list[float]) -> pd.DataFrame:
    """Main and sensitivity analyses side by side: n, differences in S(t) (percentage points), RMST difference
    (months), HR."""
    out = pd.DataFrame({"Analysis": table["analysis"], "Endpoint": [ENDPOINTS[e][2] for e in table["endpoint"]],
                        "n": table["n"]})
    for m in timepoints:
        k = f"sdiff_{m:g}"
        out[f"Difference in S({m:g} mo), pp"] = [fmt_est_ci(100 * a, 100 * b, 100 * c, 1, "—") for a, b, c in
                                                 zip(table[k], table[f"{k}_lower"], table[f"{k}_upper"])]
    out["RMST difference, months"] = [fmt_est_ci(a, b, c, 1, "—") for a, b, c in
                                      zip(table["rmst_diff"], table["rmst_diff_lower"], table["rmst_diff_upper"])]
    out["HR"] = ["not estimated" if pd.isna(a) else fmt_est_ci(a, b, c, 2, "—")  # e.g. the MI rows: no pooled HR
                 for a, b, c in zip(table["hr"], table["hr_lower"], table["hr_upper"])]
    return out


# --------------------------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------------------------
def weights_plot(r: TTERun, endpoint: str = "os") -> plt.Figure:
    """Distribution of the (stabilised) weights of the main analysis per strategy and weight period (box: quartiles,
    whiskers: 1st-99th percentiles), with the clones at risk in each period."""
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.4), sharey=True, gridspec_kw={"width_ratios": [1, 3.2]})
    for ax, s in zip(axes, STRATEGIES):
        epi = r.main.episodes[(endpoint, s)]
        segs = np.unique(epi.segment)
        data = [epi.weight[epi.segment == j] for j in segs]
        starts = np.concatenate([[0.0], epi.change_points])
        labels = [f">{starts[j]:g}" if j else f"0-{epi.change_points[0]:g}" for j in segs]
        ax.boxplot(data, whis=(1, 99), showfliers=False, widths=0.6,
                   medianprops={"color": ARM_COLOURS[s]}, boxprops={"color": ARM_COLOURS[s]})
        ax.set_xticks(range(1, len(segs) + 1), labels, rotation=90, fontsize=6.5)
        ax.axhline(1.0, color="0.6", lw=0.7, ls=":")
        ax.set_title(f"Strategy {'A' if s == ARM_HAIC else 'B'}: {s}", fontsize=9, color=ARM_COLOURS[s])
        ax.set_xlabel("Follow-up after day (weight period)", fontsize=8)
    axes[0].set_ylabel("Weight (stabilised" + (", truncated)" if r.cfg.truncate_quantiles else ")"))
    fig.tight_layout()
    return fig


def survival_plot(r: TTERun, endpoint: str, analysis: str = "ccw", ylabel: str | None = None,
                  title: str | None = None) -> plt.Figure:
    """Weighted Kaplan-Meier curves per strategy (clone-censor-weight) with pointwise percentile bootstrap CI bands,
    the grace period shaded, the contrasts at the timepoints and the RMST difference, and the clones still followed
    and uncensored (unweighted) under the axis."""
    cfg = r.cfg
    ci = r.ci.set_index("name")
    grid_m = r.data.design.grid / DAYS_PER_MONTH
    x_max = cfg.plot_months
    ticks = np.arange(0.0, x_max + 1e-9, 6.0)
    fig, (ax, ax_risk) = plt.subplots(2, 1, figsize=(6.4, 5.4), sharex=True,
                                      gridspec_kw={"height_ratios": [4.2, 0.95], "hspace": 0.32})
    ax.axvspan(0, cfg.grace_days / DAYS_PER_MONTH, color="0.92", lw=0, label=f"Grace period ({cfg.grace_days} days)")
    for s in STRATEGIES:
        times, surv, last = r.main.curves[(endpoint, s)]
        t = np.concatenate([[0.0], times]) / DAYS_PER_MONTH
        y = np.concatenate([[1.0], surv])
        keep = t <= last / DAYS_PER_MONTH
        ax.step(np.append(t[keep], last / DAYS_PER_MONTH), np.append(y[keep], y[keep][-1]), where="post",
                color=ARM_COLOURS[s], lw=1.5, label=f"{'A' if s == ARM_HAIC else 'B'}: {s}")
        lo = np.array([ci.loc[f"{analysis}:{endpoint}_grid{j}_{s}", "lower"] for j in range(grid_m.size)])
        hi = np.array([ci.loc[f"{analysis}:{endpoint}_grid{j}_{s}", "upper"] for j in range(grid_m.size)])
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(grid_m[ok], lo[ok], hi[ok], step="post", color=ARM_COLOURS[s], alpha=0.15, lw=0)
    level = int(round(100 * cfg.conf_level))
    lines = [f"{ARM_HAIC} minus {ARM_CONTROL} ({level}% CI)"]
    for m, td in zip(cfg.timepoints_months, r.data.design.times):
        x = ci.loc[stat_name(analysis, endpoint, "Sdiff", td)]
        lines.append(f"S({m:g} mo): {fmt_est_ci(100 * x['estimate'], 100 * x['lower'], 100 * x['upper'], 1, '—')} pp")
    x = ci.loc[stat_name(analysis, endpoint, "rmst_diff")]
    lines.append(f"RMST ({cfg.rmst_tau_months:g} mo): "
                 f"{fmt_est_ci(x['estimate'] / DAYS_PER_MONTH, x['lower'] / DAYS_PER_MONTH, x['upper'] / DAYS_PER_MONTH, 1, '—')} mo")
    ax.text(0.98, 0.98, "\n".join(lines), transform=ax.transAxes, ha="right", va="top", fontsize=7.5,
            bbox=dict(boxstyle="round,pad=0.35", fc="white", ec="0.8", lw=0.6))
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, x_max * 1.01)
    ax.set_ylabel(ylabel or ENDPOINTS[endpoint][2])
    ax.legend(loc="lower left", frameon=False, fontsize=7.5)
    if title:
        ax.set_title(title, fontsize=10)
    for i, s in enumerate(STRATEGIES):
        epi = r.main.episodes[(endpoint, s)]
        n = [int(np.sum(epi.clone_time >= tk * DAYS_PER_MONTH)) for tk in ticks]
        for xk, nk in zip(ticks, n):
            ax_risk.text(xk, 1 - i, f"{nk}", ha="center", va="center", fontsize=7.5, color=ARM_COLOURS[s])
        ax_risk.text(-0.06, 1 - i, f"{'A' if s == ARM_HAIC else 'B'}", ha="right", va="center", fontsize=7.5,
                     color=ARM_COLOURS[s], transform=ax_risk.get_yaxis_transform())
    ax_risk.set_ylim(-0.6, 1.6)
    ax_risk.set_axis_off()
    ax_risk.text(-0.06, 1.7, "Clones followed and uncensored (unweighted)", ha="left", va="bottom", fontsize=7.5,
                 fontweight="bold", transform=ax_risk.get_yaxis_transform())
    ax.set_xticks(ticks)
    ax.tick_params(labelbottom=True)
    ax.set_xlabel("Months since time zero (first treatment component)")
    return fig

