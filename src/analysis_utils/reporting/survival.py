"""Survival tables and figures of notebook 05_survival and the manuscript: formatted versions of the numbers
tables of ``steps.survival`` (medians, HRs, RMST, Cox coefficients, landmark) and the Kaplan-Meier plot with its
number-at-risk table, the subgroup forest plot and the Schoenfeld (cox.zph) plot. Common style, arm colours and
``save_figure`` are in ``reporting/figures.py``; number formats in ``reporting/tables.py``.
Rules: docs/methods/survival.md.
"""
from __future__ import annotations

import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis_utils.reporting.figures import ARM_COLOURS, ARM_CONTROL, ARM_HAIC, ARM_ORDER
from analysis_utils.reporting.tables import INDENT, fmt_est_ci, fmt_num, fmt_p, group_rows
from analysis_utils.stats.kaplan_meier import number_at_risk
from analysis_utils.steps.survival import CONTROL_ARM, ENDPOINTS, TREATMENT_ARM, km_summary


# --------------------------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------------------------
def format_km_summary(summary: pd.DataFrame, conf_type: str = "") -> pd.DataFrame:
    """Manuscript version of ``km_summary``: 'n (events)', 'median (CI)' in months ('NR' = not reached), survival
    at each timepoint as % (CI), RMST (CI) in months."""
    out = pd.DataFrame({"Analysis": summary["analysis"], "Arm": summary["arm"],
                        "n (events)": [f"{int(n)} ({int(e)})" for n, e in zip(summary["n"], summary["events"])],
                        f"Median, months (95% CI{', ' + conf_type if conf_type else ''})": [
                            fmt_est_ci(m, lo, hi, digits=1) for m, lo, hi in
                            zip(summary["median"], summary["median_lower"], summary["median_upper"])]})
    for c in [c for c in summary.columns if c.startswith("s_") and not c.endswith(("_lower", "_upper"))]:
        out[f"{c[2:]} survival, % (95% CI)"] = [
            fmt_est_ci(100 * s, 100 * lo, 100 * hi, digits=1, missing="—") for s, lo, hi in
            zip(summary[c], summary[f"{c}_lower"], summary[f"{c}_upper"])]
    if "rmst" in summary.columns:
        out["RMST, months (95% CI)"] = [fmt_est_ci(r, lo, hi, digits=1, missing="—") for r, lo, hi in
                                        zip(summary["rmst"], summary["rmst_lower"], summary["rmst_upper"])]
    return out


VARIANCE_TEXT = {"naive": "model-based", "robust": "robust sandwich"}


def format_hr_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Manuscript version of ``hr_summary`` / ``cox_table``: N, events, HR (95% CI), P per model (nominal: outside
    the testing hierarchy); 'NE' where the model is not estimable. With an ``endpoint`` column (several endpoints
    stacked) each endpoint becomes a bold group row. The variance of each model goes to the note instead of a
    column."""
    lead = [c for c in table.columns if c not in ("n", "n_events", "hr", "lower", "upper", "p", "se", "variance",
                                                  "flag")]
    out = table[lead].copy().rename(columns={"analysis": "Model", "endpoint": "Endpoint"})
    out["N"] = [("—" if pd.isna(n) else f"{int(n)}") for n in table["n"]]
    out["Events"] = [("—" if pd.isna(n) else f"{int(n)}") for n in table["n_events"]]
    out["HR (95% CI)"] = [fmt_est_ci(h, lo, hi, missing="NE") for h, lo, hi in
                          zip(table["hr"], table["lower"], table["upper"])]
    out["P (nominal)"] = [fmt_p(p) for p in table["p"]]
    if "Endpoint" in out.columns:
        out = group_rows(out, "Endpoint", indent=False)
    robust: dict[str, list[str]] = {}
    for model, var in dict(zip(table["analysis"], table["variance"].fillna(""))).items():
        text = _variance_text(str(var))
        if text and text != VARIANCE_TEXT["naive"]:
            robust.setdefault(text, []).append(MODEL_LABELS.get(str(model), str(model)))
    out["Model"] = [MODEL_LABELS.get(m.strip(), m.strip()) if not m.startswith("**") else m for m in out["Model"]]
    out["Model"] = [(INDENT + m) if not m.startswith("**") and "endpoint" in lead else m for m in out["Model"]]
    note = "HR below 1 favours HAIC-TKIs-P. Model-based variance"
    if robust:
        note += " except: " + "; ".join(f"{text} ({', '.join(models)})" for text, models in robust.items())
    out.attrs["note"] = note + ". P-values are nominal (outside the testing hierarchy). NE: not estimable."
    return out


MODEL_LABELS = {"Full cohort, adjusted (indicator)": "Full cohort, adjusted (missing indicators)"}


def _variance_text(variance: str) -> str:
    m = re.match(r"robust \(cluster=(\w+)\)", variance)
    if m:
        return "robust, clustered on the matched pair" if m.group(1) == "subclass" else f"robust, clustered on {m.group(1)}"
    return VARIANCE_TEXT.get(variance, variance.replace("robust", "robust sandwich"))


def hr_direction_text(table: pd.DataFrame) -> str:
    """One sentence counting, in a ``cox_table`` / ``hr_summary`` (hr, lower, upper), the hazard ratios below and
    above 1 and those whose CI excludes 1, so that a notebook states the direction of its estimates from the numbers
    instead of asserting it."""
    hr, lo, hi = (pd.to_numeric(table[c], errors="coerce") for c in ("hr", "lower", "upper"))
    ok = np.isfinite(hr)
    n, below, above = int(ok.sum()), int((hr[ok] < 1).sum()), int((hr[ok] > 1).sum())
    ci_below, ci_above = int((hi[ok] < 1).sum()), int((lo[ok] > 1).sum())
    text = (f"Of the {n} estimable hazard ratios, {below} {'is' if below == 1 else 'are'} below 1 and {above} above "
            f"1; the confidence interval lies entirely below 1 for {ci_below} and entirely above 1 for {ci_above}")
    ne = int((~ok).sum())
    return text + (f"; {ne} model{'s' if ne != 1 else ''} could not be estimated." if ne else ".")


def format_rmst_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Manuscript version of ``rmst_summary`` / ``rmst_table`` (months, one decimal; '—' when not estimable). Rows
    labelled '<endpoint>, <cohort>' are grouped under a bold endpoint row; tau goes to the note when it is the same
    for every row; a ``ci`` column (survRM2's normal interval, or the bootstrap over matched pairs) is kept as
    "CI method"; P is nominal."""
    out = pd.DataFrame({
        "Analysis": table["analysis"], "tau, months": [fmt_num(t, 0, "—") for t in table["tau"]],
        f"RMST {TREATMENT_ARM}, months": [fmt_num(v, 1, "—") for v in table["rmst_haic"]],
        f"RMST {CONTROL_ARM}, months": [fmt_num(v, 1, "—") for v in table["rmst_control"]],
        "Difference, months (95% CI)": [fmt_est_ci(d, lo, hi, digits=1, missing="—") for d, lo, hi in
                                        zip(table["diff"], table["lower"], table["upper"])],
        "P (nominal)": [fmt_p(p) for p in table["p"]]})
    if "ci" in table.columns:
        out["CI method"] = table["ci"].to_numpy()
    taus = set(out["tau, months"]) - {"—"}
    note = ""
    if len(taus) == 1:
        note = f"Restricted to the first {taus.pop()} months (tau). "
        out = out.drop(columns="tau, months")
    split = out["Analysis"].str.rsplit(", ", n=1, expand=True)
    if split.shape[1] == 2 and split[1].notna().all():
        out = out.assign(Endpoint=split[0], Analysis=split[1])
        out = group_rows(out[["Endpoint"] + [c for c in out.columns if c != "Endpoint"]], "Endpoint")
        out = out.rename(columns={"Analysis": "Cohort"})
    out.attrs["note"] = note + "Difference: HAIC-TKIs-P minus TKIs-P (survRM2). P-values are nominal (outside the testing hierarchy)."
    return out


def format_landmark(table: pd.DataFrame) -> pd.DataFrame:
    """Manuscript version of ``landmark_table``: readable headers."""
    out = table.rename(columns={"endpoint": "Endpoint", "n_at_landmark": "At the landmark, n",
                                "n_excluded": "Excluded, n", "n_reclassified": "Re-classified, n",
                                "events": "Events", "hr_unadj": "HR unadjusted (95% CI)",
                                "hr_adj": "HR adjusted (95% CI)"})
    out.attrs["note"] = ("Excluded: patients who died, progressed (PFS) or were censored before the landmark. "
                         "Re-classified: patients whose arm at the landmark (HAIC started by then) differs from their arm "
                         "at time zero. NE: not estimable.")
    return out


def km_tables(res: dict[str, dict[str, dict]], cohorts: dict[str, dict], endpoint: str,
              conf_type: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``km_summary``, ``format_km_summary``) of one endpoint over the cohorts, rows labelled by cohort label."""
    summary = km_summary({cohorts[c]["label"]: r for c, r in res[endpoint].items()})
    return summary, format_km_summary(summary, conf_type)


def coefficient_table(cox_table_: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(term, hr, lower, upper, p) of a Cox table and its manuscript version (HR (95% CI), P formatted)."""
    coefs = cox_table_[["term", "hr", "lower", "upper", "p"]]
    formatted = coefs.assign(hr=[fmt_est_ci(h, lo, hi) for h, lo, hi in
                                 zip(coefs["hr"], coefs["lower"], coefs["upper"])],
                             p=coefs["p"].map(fmt_p))[["term", "hr", "p"]]
    return coefs, formatted


def landmark_table(landmarks: dict[str, dict]) -> pd.DataFrame:
    """One row per endpoint: patients at the landmark, excluded, re-classified, events, HR (95% CI) unadjusted and
    adjusted ('NE' when not estimable)."""

    def hr_text(hr: dict) -> str:
        return fmt_est_ci(hr["hr"], hr["lower"], hr["upper"], missing="NE")

    return pd.DataFrame([{"endpoint": label, "n_at_landmark": lm["n"], "n_excluded": lm["n_excluded"],
                          "n_reclassified": lm["n_reclassified"], "events": lm["n_events"],
                          "hr_unadj": hr_text(lm["hr_unadj"]), "hr_adj": hr_text(lm["hr_adj"])}
                         for ep, (_, _, label) in ENDPOINTS.items() for lm in [landmarks[ep]]])


# --------------------------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------------------------
SUBGROUP_LABELS = {"mvi": "Macrovascular invasion", "ehs": "Extrahepatic spread", "afp_ge_400": "AFP \u2265 400 ng/mL",
                   "child_pugh_class": "Child-Pugh class", "bclc_stage": "BCLC stage",
                   "tki_agent": "TKI / anti-VEGF agent", "ecog": "ECOG PS", "sex": "Sex", "etiology": "Aetiology"}
_LEVEL_LABELS = {"True": "Yes", "False": "No", "1": "Yes", "0": "No"}


def _p_text(p: float) -> str:
    """'p = 0.046' / 'p < 0.001' for figure labels."""
    s = fmt_p(p)
    return f"p {s[0]} {s[1:]}" if s.startswith("<") else f"p = {s}"


TICK_STEPS = (1.0, 2.0, 3.0, 6.0, 12.0, 24.0)  # months between x ticks: the first giving at most 10 intervals
AT_RISK_FRACTION = 0.10  # the x-axis ends where about this share of the patients remain at risk (Pocock 2002)


def km_axis_end(result: dict, fraction: float = AT_RISK_FRACTION) -> tuple[float, float]:
    """(x_max, tick step) of a KM plot: the axis runs to where about ``fraction`` of the patients (both arms
    together) remain at risk, or to the end of follow-up if that comes first (Pocock, Clayton & Altman 2002,
    Lancet: curves become unreliable where few remain at risk), rounded to a tick; the step is the first of
    ``TICK_STEPS`` giving at most 10 intervals."""
    times = np.concatenate([np.asarray(t, dtype=float) for t in result["times"].values()])
    n, last = times.size, float(times.max())
    ordered = np.sort(times)[::-1]  # at time t, the number at risk is #(times >= t)
    k = int(np.ceil(fraction * n))
    end = min(float(ordered[k - 1]) if 0 < k <= n else last, last)
    step = next((s for s in TICK_STEPS if end / s <= 10), TICK_STEPS[-1])
    x_max = max(step, step * round(end / step))
    if x_max > last:
        x_max = max(step, step * np.floor(last / step))
    return float(x_max), float(step)


def km_plot(result: dict, ylabel: str = "Survival probability", title: str | None = None,
            x_max: float | None = None, tick_step: float | None = None, show_ci: bool = True) -> plt.Figure:
    """Kaplan-Meier curves per arm from ``steps.survival.analyse_endpoint``: step curves with censoring marks (|),
    pointwise CI bands (the tables' conf_type), median with its CI per arm, HR and the test p (log-rank; robust
    Wald with weights; the pair-clustered robust score test in the matched cohort) in a box, labelled nominal (the
    testing hierarchy decides which hypotheses are rejected), and under the x-axis, per arm, the number at risk and
    in brackets the cumulative number of events at each tick (``stats.kaplan_meier.number_at_risk``: patients with
    time >= tick; unweighted even for a weighted KM). The axis runs to ``km_axis_end`` unless ``x_max`` is given;
    the curves are cut there. The figure carries no title: the manuscript's caption names the endpoint and cohort
    (``title`` is kept for interactive use only)."""
    arms = [a for a in ARM_ORDER if a in result["km"]]
    auto_max, auto_step = km_axis_end(result)
    x_max = float(x_max) if x_max is not None else auto_max
    step = float(tick_step) if tick_step is not None else (auto_step if x_max == auto_max else
                                                           next((s for s in TICK_STEPS if x_max / s <= 10), 24.0))
    ticks = np.arange(0.0, x_max + 1e-9, step)
    fig, (ax, ax_risk) = plt.subplots(2, 1, figsize=(6.4, 5.2), sharex=True,
                                      gridspec_kw={"height_ratios": [4.0, 0.5 + 0.3 * len(arms)], "hspace": 0.36})
    lines = [f"Median, months ({int(round(100 * result['conf_level']))}% CI)"]
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
        lines.append(f"{result['test']['label']} {_p_text(result['test']['p'])} (nominal)")
    ax.text(0.98, 0.98, "\n".join(lines), transform=ax.transAxes, ha="right", va="top", fontsize=7.5,
            bbox=dict(boxstyle="round,pad=0.35", fc="white", ec="0.8", lw=0.6))
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, x_max * 1.02)
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower left", frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    event_times = result.get("event_times", {})
    for i, arm in enumerate(arms):
        n_risk = number_at_risk(result["times"][arm], ticks)
        ev = np.asarray(event_times.get(arm, []), dtype=float)
        y = len(arms) - 1 - i
        for x, n in zip(ticks, n_risk):
            text = f"{int(n)}" + (f" ({int((ev <= x).sum())})" if arm in event_times else "")
            ax_risk.text(x, y, text, ha="center", va="center", fontsize=7, color=ARM_COLOURS[arm])
        ax_risk.text(-0.08, y, arm, ha="right", va="center", fontsize=7.5, color=ARM_COLOURS[arm],
                     transform=ax_risk.get_yaxis_transform())
    ax_risk.set_ylim(-0.5, len(arms) + 0.1)
    ax_risk.set_axis_off()
    head = "Number at risk" + (" (cumulative events)" if event_times else "")
    ax_risk.text(-0.02, len(arms) - 0.25, head + (", unweighted" if result.get("weighted") else ""),
                 ha="left", va="bottom", fontsize=7.5, fontweight="bold", transform=ax_risk.get_yaxis_transform())
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.tick_params(labelbottom=True)
    ax.set_xlabel("Months since the index date")
    return fig


def _not_estimable_reason(note: object, counts: tuple[int, int, int, int] | None = None) -> str:
    """Short reason for an estimate or interaction test that could not be computed, from the flag / note of
    ``stats.cox.cox_interaction_p`` and, for a level, its (n, events) per arm."""
    text = "" if note is None or (isinstance(note, float) and np.isnan(note)) else str(note)
    if counts is not None:
        n1, e1, n0, e0 = counts
        if min(n1, n0) == 0:
            return "an arm has no patients"
        if min(e1, e0) == 0:
            return "an arm has no events"
    if "single subgroup level" in text:
        return "one level only"
    if "is constant" in text:
        return "a level lacks an arm"
    if "infinite" in text:
        return "infinite estimate"
    if "absent or has no events" in text:
        return "an arm has no events"
    if "converge" in text:
        return "no convergence"
    return "not estimable"


def forest_plot(table: pd.DataFrame, overall: dict | None = None, labels: dict[str, str] | None = None,
                xlabel: str = "Hazard ratio (95% CI)", counts: pd.DataFrame | None = None) -> plt.Figure:
    """Subgroup forest plot from ``steps.survival.subgroup_analysis`` (``stats.cox.cox_interaction_p``): HR (95% CI)
    of HAIC-TKIs-P vs TKIs-P per subgroup level on a log axis, the P of the likelihood-ratio test for interaction
    per subgroup, and, with ``counts`` (``steps.survival.subgroup_counts``), events / patients per arm in each
    row (else n (events) of both arms together). ``overall`` (a ``steps.survival.arm_hr`` dict) is drawn first as a
    diamond. CIs beyond the axis end in an arrow. A level or an interaction that cannot be estimated says why
    ('NE: an arm has no events', 'NE: a level lacks an arm', ...; ``_not_estimable_reason``)."""
    labels = {**SUBGROUP_LABELS, **(labels or {})}
    per_arm = None
    if counts is not None and len(counts):
        per_arm = counts.pivot_table(index=["subgroup", "level"], columns="arm", values=["n", "events"],
                                     aggfunc="first")
    rows: list[dict] = []
    if overall is not None:
        rows.append({"label": "All patients", "kind": "overall", "subgroup": "", "level": "", **overall})
    for sg, part in table.groupby("subgroup", sort=False):
        first = part.iloc[0]
        rows.append({"label": labels.get(sg, sg), "kind": "header", "p_interaction": first["p_interaction"],
                     "interaction_note": first.get("interaction_note")})
        for r in part.to_dict("records"):
            rows.append({**r, "label": "   " + _LEVEL_LABELS.get(str(r["level"]), str(r["level"])), "kind": "level"})
    finite = [v for r in rows if r["kind"] != "header" for v in (r.get("lower"), r.get("upper"))
              if v is not None and np.isfinite(v)]
    lo = max(0.05, min(finite + [0.5]) / 1.15)
    hi = min(20.0, max(finite + [2.0]) * 1.15)
    n_rows = len(rows)
    count_cols = ARM_ORDER if per_arm is not None else ["n (events)"]
    fig, (ax_l, ax, ax_r) = plt.subplots(1, 3, figsize=(7.2, 0.25 * n_rows + 1.35), sharey=True,
                                         gridspec_kw={"width_ratios": [3.3, 2.0, 2.3], "wspace": 0.03})
    col_x = [0.62, 0.92] if per_arm is not None else [0.92]

    def count_text(r: dict, arm: str) -> str:
        if per_arm is None:
            return "" if pd.isna(r.get("n")) else f"{int(r['n'])} ({int(r['n_events'])})"
        key = (r.get("subgroup", ""), str(r.get("level", "")))
        if key not in per_arm.index:
            return ""
        return f"{int(per_arm.loc[key, ('events', arm)])}/{int(per_arm.loc[key, ('n', arm)])}"

    for i, r in enumerate(rows):
        y = n_rows - 1 - i
        bold = "bold" if r["kind"] != "level" else "normal"
        ax_l.text(0, y, r["label"], va="center", fontsize=7.5, fontweight=bold)
        if r["kind"] == "header":
            p = r["p_interaction"]
            text = (fmt_p(p) if np.isfinite(p) else f"NE: {_not_estimable_reason(r.get('interaction_note'))}")
            ax_r.text(0.99, y, text, va="center", ha="right", fontsize=7)
            continue
        for x, arm in zip(col_x, count_cols):
            ax_l.text(x, y, count_text(r, arm), va="center", ha="right", fontsize=7.5)
        est, l_, u_ = (r.get(k, np.nan) for k in ("hr", "lower", "upper"))
        if not np.isfinite(est):
            key = (r.get("subgroup", ""), str(r.get("level", "")))
            arm_counts = None if per_arm is None or key not in per_arm.index else tuple(
                int(per_arm.loc[key, (k, arm)]) for arm in ARM_ORDER for k in ("n", "events"))
            ax_r.text(0.02, y, f"NE: {_not_estimable_reason(r.get('flag'), arm_counts)}", va="center", fontsize=7)
            continue
        ax_r.text(0.02, y, fmt_est_ci(est, l_, u_), va="center", fontsize=7.5)
        ax.plot([max(l_, lo), min(u_, hi)], [y, y], color="0.15", lw=1)
        for end, edge, marker in ((l_, lo, "<"), (u_, hi, ">")):
            if (marker == "<" and end < lo) or (marker == ">" and end > hi):
                ax.plot(edge, y, marker=marker, color="0.15", ms=4)
        ax.plot(est, y, marker="D" if r["kind"] == "overall" else "s", color="0.15", ms=6 if r["kind"] == "overall"
                else 4)
    ax.axvline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 4, 10) if lo <= t <= hi]  # evenly spaced on the log axis
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylim(-0.8, n_rows + 0.4)
    one = float(np.log(1 / lo) / np.log(hi / lo))  # axes fraction of HR = 1
    for text, ha, arm in (("\u2190 Favours HAIC-TKIs-P ", "right", ARM_HAIC),
                          (" Favours TKIs-P \u2192", "left", ARM_CONTROL)):
        ax.annotate(text, xy=(one, 0), xycoords="axes fraction", xytext=(0, -34), textcoords="offset points",
                    ha=ha, va="top", fontsize=6.5, color=ARM_COLOURS[arm], annotation_clip=False)
    for a in (ax_l, ax_r):
        a.set_axis_off()
        a.set_xlim(0, 1)
    ax.spines["left"].set_visible(False)
    ax.tick_params(axis="y", left=False)
    head_y = n_rows - 0.1
    ax_l.text(0, head_y, "Subgroup", fontsize=7.5, fontweight="bold", va="bottom")
    if per_arm is not None:
        ax_l.text(0.77, head_y + 0.75, "Events/patients", fontsize=7.5, fontweight="bold", va="bottom", ha="center")
        for x, arm in zip(col_x, count_cols):
            ax_l.text(x, head_y, arm, fontsize=7, fontweight="bold", va="bottom", ha="right", color=ARM_COLOURS[arm])
    else:
        ax_l.text(col_x[0], head_y, "n (events)", fontsize=7.5, fontweight="bold", va="bottom", ha="right")
    ax_r.text(0.02, head_y, "HR (95% CI)", fontsize=7.5, fontweight="bold", va="bottom")
    ax_r.text(0.99, head_y, "P interaction", fontsize=7.5, fontweight="bold", va="bottom", ha="right")
    return fig


def schoenfeld_plot(zph: object, term: str = "arm", coef: float | None = None, ylabel: str | None = None,
                    title: str | None = None) -> plt.Figure:
    """Proportional-hazards check as R ``plot(cox.zph(fit))``: scaled Schoenfeld residuals + coefficient (beta(t))
    of ``term`` against event time in months, a LOWESS smooth (statsmodels, frac 2/3; R draws a spline with
    +-2 SE), the fitted coefficient ``coef`` (dashed) and 0 (dotted), and the cox.zph p of the term (transform as
    in ``zph.transform``). A flat smooth means a constant hazard ratio. No title by default: the manuscript's caption
    names the endpoint and cohort."""
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


# --------------------------------------------------------------------------------------------------------------------
# progression: PFS rules and definitions, competing risks, duration of response, evaluation-time bias
# (numbers from ``steps.progression``; docs/methods/pfs-rules.md, docs/methods/competing-risks.md)
# --------------------------------------------------------------------------------------------------------------------
_CRITERIA = {"recist": "RECIST 1.1", "mrecist": "mRECIST"}


def format_pfs_rules(counts: pd.DataFrame, definition: str = "main") -> pd.DataFrame:
    """Patients per PFS rule and arm for one definition (``steps.progression.pfs_rule_counts``): one row per rule,
    'n' per criterion and arm."""
    d = counts[counts["definition"] == definition]
    out = pd.DataFrame({"Rule": list(dict.fromkeys(d["rule"]))})
    for crit, label in _CRITERIA.items():
        sub = d[d["criterion"] == crit].set_index("rule")
        for arm in ARM_ORDER:
            out[f"{label}, {arm}"] = sub.reindex(out["Rule"])[arm].fillna(0).astype(int).to_numpy()
    return out


def format_pfs_definitions(table: pd.DataFrame) -> pd.DataFrame:
    """``steps.progression.pfs_definitions`` as printed: events and median (95% CI) per arm, HR (95% CI), nominal P."""
    out = table[["cohort", "criterion", "definition"]].rename(columns=str.capitalize).copy()
    for arm in ARM_ORDER:
        out[f"{arm}: events, median (95% CI)"] = [
            f"{int(e)}, {fmt_est_ci(m, lo, hi, digits=1)}" for e, m, lo, hi in
            zip(table[f"{arm} events"], table[f"{arm} median"], table[f"{arm} median lower"],
                table[f"{arm} median upper"])]
    out["HR (95% CI)"] = [fmt_est_ci(h, lo, hi, missing="NE") for h, lo, hi in
                          zip(table["hr"], table["hr_lower"], table["hr_upper"])]
    out["P (nominal)"] = table["hr_p"].map(fmt_p)
    return out


def format_competing(results: dict[str, dict]) -> pd.DataFrame:
    """Cumulative incidence (%, 95% CI, log-log) of progression and of death without progression per arm at the
    timepoints, Gray's test and the cause-specific HR of arm, per criterion (``steps.progression
    .competing_progression`` results keyed by criterion)."""
    rows = []
    for crit, r in results.items():
        for cause, label in ((1, "progression"), (2, "death without progression")):
            for arm in ARM_ORDER:
                cif = r["cif"][(r["cif"]["arm"] == arm) & (r["cif"]["cause"] == cause)]
                row = {"Criterion": _CRITERIA[crit], "Event": label, "Arm": arm,
                       "Events": r["events"].get((arm, cause), 0)}
                for t in cif.itertuples(index=False):
                    row[f"{t.time:g} months, % (95% CI)"] = fmt_est_ci(100 * t.est, 100 * t.lower, 100 * t.upper,
                                                                       digits=1, missing="—")
                g, hr = r["gray"].get(cause, {}), r["cs_hr"][cause]
                row["Gray's test P (nominal)"] = fmt_p(g.get("p", np.nan)) if arm == ARM_ORDER[0] else ""
                row["Cause-specific HR (95% CI)"] = (fmt_est_ci(hr["hr"], hr["lower"], hr["upper"], missing="NE")
                                                     if arm == ARM_ORDER[0] else "")
                rows.append(row)
    return pd.DataFrame(rows)


def format_dor(results: dict[str, dict]) -> pd.DataFrame:
    """Duration of response per criterion and arm (``steps.progression.duration_of_response``): responders,
    events, median months (95% CI; 'NR' not reached)."""
    rows = []
    for crit, r in results.items():
        for arm in ARM_ORDER:
            med = r["median"].loc[arm] if arm in r["median"].index else None
            rows.append({"Criterion": _CRITERIA[crit], "Arm": arm, "Responders": r["n"][arm], "Events": r["events"][arm],
                         "Median duration of response, months (95% CI)":
                             "—" if med is None else fmt_est_ci(med["median"], med["lower"], med["upper"], digits=1)})
    return pd.DataFrame(rows)


def format_imaging_schedule(summary: pd.DataFrame) -> pd.DataFrame:
    """``steps.progression.imaging_schedule`` summary as printed: median (Q1–Q3) per arm and the nominal P."""
    out = pd.DataFrame({"Measure": summary["measure"]})
    for arm in ARM_ORDER:
        out[arm] = [f"{fmt_num(m, 1)} ({fmt_num(a, 1)}–{fmt_num(b, 1)})" for m, a, b in
                    zip(summary[f"{arm} median"], summary[f"{arm} q1"], summary[f"{arm} q3"])]
    out["P (Wilcoxon, nominal)"] = summary["p"].map(fmt_p)
    return out


def format_interval_censored(results: dict[str, dict], main: dict[str, dict]) -> pd.DataFrame:
    """Evaluation-time sensitivity per criterion: the main PFS analysis (right-censored at the scan dates; ``main``:
    criterion -> ``analyse_endpoint`` result of the full cohort) beside the Turnbull NPMLE (interval-censored) and
    midpoint imputation: median per arm, S at the timepoints per arm, HR of arm."""
    rows = []
    for crit, r in results.items():
        m = main[crit]
        for arm in ARM_ORDER:
            at = r["survival_at"][r["survival_at"]["arm"] == arm]
            lo, hi = r["median"].get(arm, (np.nan, np.nan))
            med_km, med_mid = m["median"].loc[arm], r["midpoint"]["median"][arm]
            row = {"Criterion": _CRITERIA[crit], "Arm": arm,
                   "Median, main (KM)": fmt_num(med_km["median"], 1, "NR"),
                   "Median, NPMLE (Turnbull interval)": ("NR" if not np.isfinite(lo) else fmt_num(lo, 1) if lo == hi
                                                        else f"{fmt_num(lo, 1)}–{fmt_num(hi, 1)}"),
                   "Median, midpoint (KM)": fmt_num(med_mid["median"], 1, "NR")}
            for t in at.itertuples(index=False):
                s = (fmt_num(100 * t.surv_lower, 1) if t.surv_lower == t.surv_upper
                     else f"{fmt_num(100 * t.surv_lower, 1)}–{fmt_num(100 * t.surv_upper, 1)}")
                row[f"NPMLE S({t.time:g} months), %"] = s
            hr_main, hr_mid = m["hr"], r["midpoint"]["hr"]
            row["HR main (95% CI)"] = fmt_est_ci(hr_main["hr"], hr_main["lower"], hr_main["upper"]) if arm == ARM_ORDER[0] else ""
            row["HR midpoint (95% CI)"] = fmt_est_ci(hr_mid["hr"], hr_mid["lower"], hr_mid["upper"]) if arm == ARM_ORDER[0] else ""
            rows.append(row)
    return pd.DataFrame(rows)


def cif_plot(curves: pd.DataFrame, causes: dict[object, str], title: str | None = None, x_max: float = 24.0,
             tick_step: float = 3.0, ylabel: str = "Cumulative incidence") -> plt.Figure:
    """Aalen-Johansen cumulative incidence curves (``stats.competing_risks.cuminc(...).curves``, column ``group`` =
    arm): one panel per cause in ``causes`` (cause -> label), arms in the common colours, step functions from 0."""
    fig, axes = plt.subplots(1, len(causes), figsize=(4.0 * len(causes), 3.6), sharey=True, squeeze=False)
    for ax, (cause, label) in zip(axes[0], causes.items()):
        for arm in ARM_ORDER:
            c = curves[(curves["group"] == arm) & (curves["cause"] == cause)]
            if c.empty:
                continue
            t = np.append(c["time"].to_numpy(), x_max)
            f = np.append(c["est"].to_numpy(), c["est"].iloc[-1])
            ax.step(t, f, where="post", color=ARM_COLOURS[arm], lw=1.5, label=arm)
        ax.set_title(label, fontsize=9)
        ax.set_xlim(0, x_max)
        ax.set_xticks(np.arange(0, x_max + 1e-9, tick_step))
        ax.set_xlabel("Months since the index date")
    axes[0][0].set_ylabel(ylabel)
    axes[0][0].set_ylim(0, 1)
    axes[0][0].legend(loc="upper left", frameon=False, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def dor_plot(results: dict[str, dict], x_max: float = 24.0, tick_step: float = 3.0) -> plt.Figure:
    """Kaplan-Meier curves of the duration of response per arm, one panel per criterion
    (``steps.progression.duration_of_response`` results keyed by criterion)."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.0 * len(results), 3.6), sharey=True, squeeze=False)
    for ax, (crit, r) in zip(axes[0], results.items()):
        for arm in ARM_ORDER:
            if arm not in r["km"]:
                continue
            km = r["km"][arm]
            ax.step(np.concatenate([[0.0], km["time"].to_numpy()]), np.concatenate([[1.0], km["surv"].to_numpy()]),
                    where="post", color=ARM_COLOURS[arm], lw=1.5, label=f"{arm} (n = {r['n'][arm]})")
        ax.set_title(f"Duration of response, {_CRITERIA[crit]}", fontsize=9)
        ax.set_xlim(0, x_max)
        ax.set_xticks(np.arange(0, x_max + 1e-9, tick_step))
        ax.set_xlabel("Months since the first response")
        ax.axhline(0.5, color="0.75", lw=0.6, ls=":")
        ax.legend(loc="lower left", frameon=False, fontsize=8)
    axes[0][0].set_ylabel("Probability of remaining in response")
    axes[0][0].set_ylim(0, 1.02)
    fig.tight_layout()
    return fig
