"""Tumour response (notebook 06_response) for the paper: the response table, the models table, the RECIST 1.1 x mRECIST
agreement table (Markdown versions of the numbers :mod:`analysis_utils.steps.response` computes) and the waterfall
and spider plots. Number formats come from :mod:`analysis_utils.reporting.tables`, arm colours from
:mod:`analysis_utils.reporting.figures`."""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from analysis_utils.reporting import tables
from analysis_utils.reporting.figures import ARM_COLOURS, ARM_ORDER
from analysis_utils.steps.response import (CONTROL_ARM, RESPONSE_LEVELS, TREATMENT_ARM, ResponseAnalysis,
                                           ResponseConfig)

__all__ = ["CRITERION_LABELS", "MEASURE_LABELS", "format_response_table", "format_models", "format_agreement",
           "format_ne_reasons", "format_orr_by_definition", "format_hierarchy", "waterfall_plot", "spider_plot"]

CRITERION_LABELS = {"recist": "RECIST 1.1", "mrecist": "mRECIST"}
MEASURE_LABELS = {"rate_haic": f"Rate, {TREATMENT_ARM}", "rate_control": f"Rate, {CONTROL_ARM}",
                  "risk_difference": "Risk difference, % points", "odds_ratio": "Odds ratio",
                  "odds_ratio_adjusted": "Adjusted odds ratio", "odds_ratio_conditional": "Conditional odds ratio",
                  "test": "Test of the 2 x 2 table"}
_AGREEMENT_ROWS = "RECIST 1.1 (row) × mRECIST (column)"


# --------------------------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------------------------
def _fmt_rate(k: int, pct: float, lower: float, upper: float) -> str:
    """'215 (59.7%; 54.5–64.8)': events (rate %; CI in %), from percentages."""
    return (f"{k} ({tables.fmt_num(pct, 1, '—')}%; "
            f"{tables.fmt_num(lower, 1, '—')}–{tables.fmt_num(upper, 1, '—')})")


def format_response_table(analysis: ResponseAnalysis, cfg: ResponseConfig) -> pd.DataFrame:
    """Manuscript table (Markdown frame) of ``analysis.table``, full cohort: one bold group row per criterion and
    definition (main first, then the co-definition), under it CR/PR/SD/PD/NE n (%) per arm, then ORR and DCR as
    events (rate %; exact CI), risk difference (percentage points), unadjusted and adjusted OR with CIs and P; a P
    from Fisher's exact test is marked with a dagger and named in the note, the others come from Pearson's
    chi-square test. P-values are nominal (outside the testing hierarchy)."""
    n1, n0 = analysis.results["n_haic"], analysis.results["n_control"]
    h1, h0 = f"{TREATMENT_ARM} (n = {n1})", f"{CONTROL_ARM} (n = {n0})"
    ci = f"{100 * cfg.conf_level:g}% CI"
    md: list[dict[str, Any]] = []
    fisher = False
    for r in analysis.table.to_dict("records"):
        kind = "main" if r["definition"] == cfg.primary_definition else "co-definition"
        group = f"{CRITERION_LABELS[r['criterion']]}, {r['definition']} responses ({kind})"
        if r["row"] in RESPONSE_LEVELS:
            md.append({"group": group, "Response": r["row"], h1: tables.fmt_n_pct(r["n_haic"], n1),
                       h0: tables.fmt_n_pct(r["n_control"], n0)})
            continue
        is_fisher = r["test"] == "Fisher exact"
        fisher |= is_fisher
        md.append({"group": group, "Response": f"{r['row']} ({ci})",
                   h1: _fmt_rate(r["n_haic"], r["pct_haic"], r["lower_haic"], r["upper_haic"]),
                   h0: _fmt_rate(r["n_control"], r["pct_control"], r["lower_control"], r["upper_control"]),
                   f"Risk difference, % points ({ci})": tables.fmt_est_ci(r["rd_pct"], r["rd_lower"], r["rd_upper"],
                                                                            1, "—"),
                   f"OR ({ci})": tables.fmt_est_ci(r["or"], r["or_lower"], r["or_upper"], 2, "—"),
                   f"Adjusted OR ({ci})": tables.fmt_est_ci(r["or_adj"], r["or_adj_lower"], r["or_adj_upper"], 2, "—"),
                   "P (nominal)": tables.fmt_p(r["p"]) + ("\u2020" if is_fisher else "")})
    out = tables.group_rows(pd.DataFrame(md).fillna(""), "group")
    out.attrs["note"] = ("ORR, objective response rate (CR or PR); DCR, disease control rate (CR, PR or SD); "
                         "rates with exact Clopper-Pearson CIs; risk difference HAIC-TKIs-P minus TKIs-P with the "
                         "Newcombe hybrid-score CI; OR with the Woolf CI; adjusted OR from logistic regression on the "
                         "propensity-model covariates. P (nominal, outside the testing hierarchy) from Pearson's chi-square test"
                         + ("; \u2020 Fisher's exact test (an expected count below 5)." if fisher else "."))
    return out


def format_models(models: pd.DataFrame, conf_level: float = 0.95) -> pd.DataFrame:
    """Readable version of the models table for the Markdown output: rates and risk differences in % (1 decimal),
    odds ratios with 2 decimals, estimate (CI), P, method."""
    out = []
    for r in models.itertuples(index=False):
        pct = r.measure.startswith("rate") or r.measure == "risk_difference"
        scale, digits = (100.0, 1) if pct else (1.0, 2)
        est = "" if r.measure == "test" else tables.fmt_est_ci(scale * r.estimate, scale * r.lower, scale * r.upper,
                                                              digits, "—")
        out.append({"Cohort": r.cohort, "Definition": r.definition, "Criterion": CRITERION_LABELS[r.criterion],
                    "Endpoint": r.endpoint.upper(), "Measure": MEASURE_LABELS[r.measure],
                    f"Estimate ({100 * conf_level:g}% CI)": est,
                    "P (nominal)": tables.fmt_p(r.p), "Method": r.method, "n": r.n})
    return pd.DataFrame(out)


def format_agreement(analysis: ResponseAnalysis, cfg: ResponseConfig) -> pd.DataFrame:
    """Markdown frame of ``analysis.agreement`` (RECIST 1.1 rows x mRECIST columns per definition), each block
    followed by its Cohen's kappas (estimate (CI) under CR, observed agreement under PR)."""
    agreement, kappa = analysis.agreement, analysis.kappa
    md = []
    for definition in cfg.definitions:
        t = agreement[agreement["definition"] == definition]
        tm = t.rename(columns={"definition": "Definition", "recist": _AGREEMENT_ROWS}).astype(object)
        md.append(tm)
        for k in kappa[kappa["definition"] == definition].itertuples():
            row = {c: "" for c in tm.columns}
            row.update({"Definition": definition, _AGREEMENT_ROWS: f"Cohen's kappa, {k.categories}",
                        "CR": tables.fmt_est_ci(k.kappa, k.lower, k.upper, 2, "—"),
                        "PR": f"agreement {100 * k.observed:.1f}%"})
            md.append(pd.DataFrame([row]))
    return pd.concat(md, ignore_index=True)


def format_ne_reasons(table: pd.DataFrame) -> pd.DataFrame:
    """``steps.response.ne_reasons`` with criterion labels: patients with BOR NE per reason and arm."""
    return table.assign(criterion=table["criterion"].map(CRITERION_LABELS)).rename(
        columns={"criterion": "Criterion", "reason": "Reason NE", "total": "Total"})


def format_orr_by_definition(table: pd.DataFrame, primary: str = "unconfirmed") -> pd.DataFrame:
    """``steps.response.orr_by_definition`` as printed: ORR n (%; exact CI) per arm, risk difference in percentage
    points (CI) and nominal P, per criterion and definition (main / co-definition)."""
    return pd.DataFrame({
        "Criterion": table["criterion"].map(CRITERION_LABELS),
        "Definition": [d + (" (main)" if d == primary else " (co-definition)") for d in table["definition"]],
        TREATMENT_ARM: [_fmt_rate(k, p, lo, hi) for k, p, lo, hi in
                        zip(table["n_haic"], table["pct_haic"], table["lower_haic"], table["upper_haic"])],
        CONTROL_ARM: [_fmt_rate(k, p, lo, hi) for k, p, lo, hi in
                      zip(table["n_control"], table["pct_control"], table["lower_control"], table["upper_control"])],
        "Risk difference, % points (95% CI)": [tables.fmt_est_ci(d, lo, hi, 1, "—") for d, lo, hi in
                                               zip(table["rd_pct"], table["rd_lower"], table["rd_upper"])],
        "P (nominal)": table["p"].map(tables.fmt_p)})


def format_hierarchy(table: pd.DataFrame) -> pd.DataFrame:
    """``steps.response.testing_hierarchy`` as printed: order, hypothesis, test, P, adjusted P (running maximum),
    and the decision at the family-wise alpha (rejected / not rejected / not tested)."""
    decision = np.where(table["rejected"], "rejected", np.where(table["tested"], "not rejected", "not tested"))
    return pd.DataFrame({"Order": table["order"], "Hypothesis (HAIC-TKIs-P vs TKIs-P)": table["label"],
                         "Test": table["test"], "P": table["p"].map(tables.fmt_p),
                         "Adjusted P": table["adjusted_p"].map(lambda v: tables.fmt_p(v) if np.isfinite(v) else "—"),
                         f"Decision (alpha {table.attrs.get('alpha', 0.05):g})": decision})


# --------------------------------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------------------------------
RESPONSE_COLOURS = {"CR": "#1B7837", "PR": "#7FBF7B", "SD": "#BABABA", "PD": "#B2182B", "NE": "#F4A582"}
RESPONSE_NAMES = {"CR": "Complete response", "PR": "Partial response", "SD": "Stable disease",
                  "PD": "Progressive disease", "NE": "Not evaluable"}


def waterfall_plot(data: pd.DataFrame, cap: float = 100.0, pr_line: float = -30.0, pd_line: float = 20.0,
                   new_lesion: pd.DataFrame | None = None) -> plt.Figure:
    """Waterfall of the best % change of the target sum from baseline: one row of panels per criterion, one column
    per arm (``ARM_ORDER``), one bar per patient sorted from the largest increase to the largest decrease, bars
    coloured by best overall response (CR, PR, SD, PD, NE). ``data``: :func:`analysis_utils.steps.response.
    waterfall_data` (criterion, arm, best_pct_change, bor, rank). With ``new_lesion``
    (:func:`analysis_utils.steps.response.new_lesion_progression`), a best response of PD that came from a new
    lesion is marked by a dot under the bar: such patients progress whatever their target sum does. Reference lines at -30% (PR) and +20% (PD;
    RECIST 1.1 and mRECIST, docs/methods/recist-mrecist.md; RECIST PD also needs +5 mm). Bars beyond ``cap`` are
    drawn at the cap and the panel says how many. Panel headings name criterion, arm and n; the figure has no
    title (the caption carries it)."""
    criteria = list(dict.fromkeys(data["criterion"]))
    flags = set()
    if new_lesion is not None and len(new_lesion):
        nl = new_lesion[new_lesion["pd_new_lesion"]]
        flags = set(zip(nl["criterion"], nl["study_id"]))
    fig, axes = plt.subplots(len(criteria), len(ARM_ORDER), figsize=(7.2, 2.5 * len(criteria) + 0.7),
                             squeeze=False, sharey=True)
    letters = iter("ABCDEFGH")
    for i, crit in enumerate(criteria):
        for j, arm in enumerate(ARM_ORDER):
            ax = axes[i, j]
            d = data[(data["criterion"] == crit) & (data["arm"] == arm)].sort_values(
                ["best_pct_change", "study_id"], ascending=[False, True])
            values = d["best_pct_change"].to_numpy(dtype=float)
            x = np.arange(len(d))
            ax.bar(x, np.clip(values, -100.0, cap), width=1.0, linewidth=0,
                   color=[RESPONSE_COLOURS.get(str(b), "#FFFFFF") for b in d["bor"]])
            marked = np.array([(crit, sid) in flags and str(b) == "PD" for sid, b in zip(d["study_id"], d["bor"])],
                              dtype=bool)
            if marked.any():
                ax.plot(x[marked], np.full(marked.sum(), -104.0), ls="none", marker="o", ms=1.8, color="black")
            ax.axhline(pd_line, color="0.3", lw=0.7, ls=":")
            ax.axhline(pr_line, color="0.3", lw=0.7, ls="--")
            ax.axhline(0, color="0.2", lw=0.6)
            ax.set_xlim(-1, max(len(d), 1))
            ax.set_ylim(-108, cap + 5)
            ax.set_xticks([])
            if j == 0:
                ax.set_ylabel("Best change in\ntarget sum (%)")
            n_capped = int((values > cap).sum())
            ax.set_title(f"{next(letters)}  {CRITERION_LABELS.get(crit, crit)}, {arm} (n = {len(d)})"
                         + (f"; {n_capped} truncated at +{cap:g}%" if n_capped else ""), fontsize=8, loc="left")
    present = [lv for lv in RESPONSE_COLOURS if lv in set(data["bor"].astype(str))]
    handles = [Patch(color=RESPONSE_COLOURS[lv], label=RESPONSE_NAMES[lv]) for lv in present]
    if flags:
        handles.append(plt.Line2D([], [], ls="none", marker="o", ms=3, color="black", label="PD by new lesion"))
    handles += [plt.Line2D([], [], color="0.3", lw=0.7, ls=":", label=f"+{pd_line:g}%"),
                plt.Line2D([], [], color="0.3", lw=0.7, ls="--", label=f"{pr_line:g}%")]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def spider_plot(data: pd.DataFrame, cap: float = 100.0, pr_line: float = -30.0, pd_line: float = 20.0) -> plt.Figure:
    """Spider plot: % change of the target sum from baseline over months since the index date, one line per patient,
    rows = criteria, columns = arms (``ARM_ORDER``), lines in the arm colour. ``data``:
    :func:`analysis_utils.steps.response.spider_data` (criterion, study_id, arm, months, pct_change; a deterministic
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
            ax.set_title(f"{CRITERION_LABELS.get(crit, crit)} · {arm} (n = {d['study_id'].nunique()})",
                         fontsize=8, loc="left")
            if j == 0:
                ax.set_ylabel("Change in target sum (%)")
            if i == len(criteria) - 1:
                ax.set_xlabel("Months since index date")
    fig.tight_layout()
    return fig
