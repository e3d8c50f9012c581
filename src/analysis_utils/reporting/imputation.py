"""Tables and figures of the missing-data analysis (notebooks 02_missing_data, 04-06): the missingness table,
the imputation methods, the chains' trace (convergence) plot, observed-versus-imputed plots, the balance across
imputations, the tipping-point plot and the sensitivity table MI versus complete case versus missing indicator.
Numbers come from ``steps.imputation``, ``steps.matching_mi``, ``steps.survival_mi`` and ``steps.response_mi``.
Method: docs/methods/missing-data.md.
"""
from __future__ import annotations

import math
from typing import Callable
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis_utils.reporting.tables import fmt_est_ci, fmt_num, fmt_p, term_label

__all__ = ["METHOD_LABELS", "format_missingness", "methods_table", "trace_plot", "observed_imputed_plot",
           "format_balance_pooled", "format_pooled", "tipping_plot", "format_tipping", "sensitivity_table",
           "format_sensitivity", "progress"]

METHOD_LABELS = {"pmm": "predictive mean matching", "logreg": "logistic regression (bootstrap)",
                 "polyreg": "multinomial logistic regression (bootstrap)", "constant": "single observed value",
                 "": "complete (predictor only)"}
ENDPOINT_LABELS = {"os": "Overall survival", "pfs_recist": "PFS (RECIST 1.1)", "pfs_mrecist": "PFS (mRECIST)",
                   "orr_recist": "ORR (RECIST 1.1)", "orr_mrecist": "ORR (mRECIST)"}
COHORT_LABELS = {"matched": "Matched", "iptw": "IPTW (ATE)", "weighted": "IPTW (ATE)",
                 "adjusted": "Full cohort, covariate-adjusted"}
DESIGN_LABELS = {"mi": "Multiple imputation (main)", "cc": "Complete case", "ind": "Missing indicator"}


def format_missingness(table: pd.DataFrame) -> pd.DataFrame:
    """``steps.imputation.missingness_table`` for reading: n (%) overall and per arm, centres with any missing and
    the largest centre share."""
    return pd.DataFrame({
        "Variable": [term_label(v) for v in table["variable"]],
        "Missing, n (%)": [f"{n} ({p:.1f})" for n, p in zip(table["n_missing"], table["pct_missing"])],
        "HAIC-TKIs-P, n (%)": [f"{n} ({p:.1f})" for n, p in zip(table["n_missing_haic"], table["pct_missing_haic"])],
        "TKIs-P, n (%)": [f"{n} ({p:.1f})" for n, p in zip(table["n_missing_control"],
                                                             table["pct_missing_control"])],
        "Centres with missing": table["n_centres_with_missing"],
        "Largest centre share (%)": table["max_centre_pct_missing"].round(1)})


def methods_table(methods: dict[str, str], missing: pd.DataFrame) -> pd.DataFrame:
    """Imputation method per variable (mice's names and in words) with the number of values imputed."""
    n = missing.set_index("variable")["n_missing"]
    return pd.DataFrame([{"Variable": term_label(v), "Missing": int(n.get(v, 0)), "mice method": m or "-",
                          "Model": METHOD_LABELS.get(m, m)} for v, m in methods.items()])


def trace_plot(trace: pd.DataFrame, variables: list[str] | None = None) -> plt.Figure:
    """mice's ``plot(imp)``: mean and SD of the imputed values of each variable against the iteration, one line per
    chain (imputation); well-mixed, flat, intertwined lines indicate convergence."""
    variables = variables or list(dict.fromkeys(trace["variable"]))
    nrow = max(1, math.ceil(len(variables) / 2))  # two variables (mean, SD each) per row: the figure fits a page
    fig, axes = plt.subplots(nrow, 4, figsize=(7.2, 1.25 * nrow + 0.5), sharex=True, squeeze=False)
    for i, v in enumerate(variables):
        d = trace[trace["variable"] == v]
        for j, stat in enumerate(("mean", "sd")):
            ax = axes[i // 2, 2 * (i % 2) + j]
            for _, g in d.groupby(".imp"):
                ax.plot(g["iteration"], g[stat], lw=0.7, alpha=0.8)
            ax.set_ylabel(f"{term_label(v)}\n{stat}" if j == 0 else stat, fontsize=6.5)
            ax.tick_params(labelsize=6)
    for k, ax in enumerate(axes.flat):
        if k >= 2 * len(variables):
            ax.set_visible(False)
        elif k + 4 >= 2 * len(variables):  # the lowest panel of its column: iteration axis labelled
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel("Iteration", fontsize=7)
    fig.tight_layout()  # no title: the caption says what the figure shows
    return fig


def observed_imputed_plot(observed: pd.DataFrame, completed: pd.DataFrame, variables: list[str],
                          categorical: list[str]) -> plt.Figure:
    """Observed versus imputed values per variable (mice's ``densityplot`` / ``stripplot``): densities of the
    observed values and of the imputed values pooled over imputations (continuous), or the share of each level
    (categorical). Differences are expected under MAR; implausible imputed values are not."""
    shown = [v for v in variables if observed[v].isna().any()]
    ncol = 3
    nrow = max(1, math.ceil(len(shown) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(7.2, 1.9 * nrow + 0.4), squeeze=False)
    miss_ids = {v: set(np.flatnonzero(observed[v].isna().to_numpy())) for v in shown}
    for k, v in enumerate(shown):
        ax = axes[k // ncol, k % ncol]
        obs = observed[v].dropna()
        ids = completed.groupby(".imp").cumcount().to_numpy()
        imp_vals = completed.loc[np.isin(ids, list(miss_ids[v])), v]
        if v in categorical or not pd.api.types.is_numeric_dtype(obs) or pd.api.types.is_bool_dtype(obs):
            levels = sorted(set(obs.astype(str)) | set(imp_vals.astype(str)))
            po = obs.astype(str).value_counts(normalize=True).reindex(levels, fill_value=0)
            pi = imp_vals.astype(str).value_counts(normalize=True).reindex(levels, fill_value=0)
            x = np.arange(len(levels))
            ax.bar(x - 0.2, po.to_numpy(), 0.4, color="0.35", label="observed")
            ax.bar(x + 0.2, pi.to_numpy(), 0.4, color="#CC79A7", label="imputed")
            ax.set_xticks(x, levels, fontsize=6.5, rotation=30)
        else:
            bins = np.histogram_bin_edges(pd.concat([obs, imp_vals]).astype(float), bins=20)
            ax.hist(obs.astype(float), bins=bins, density=True, color="0.35", alpha=0.6, label="observed")
            ax.hist(imp_vals.astype(float), bins=bins, density=True, histtype="step", color="#CC79A7", lw=1.4,
                    label="imputed")
        ax.set_title(f"{term_label(v)} ({len(miss_ids[v])} imputed)", fontsize=7.5)
        ax.tick_params(labelsize=6.5)
    for k in range(len(shown), nrow * ncol):
        axes[k // ncol, k % ncol].axis("off")
    axes[0, 0].legend(fontsize=6.5, frameon=False)
    fig.tight_layout()
    return fig


def format_balance_pooled(pooled: pd.DataFrame, sample: str = "Matched") -> pd.DataFrame:
    """Balance across imputations (cobalt's summary for imputed data): per term, the mean SMD before and after
    and the range of |SMD| after over the imputations."""
    d = pooled[pooled["sample"] == sample]
    return pd.DataFrame({"Term": d["term"], "Imputations": d["n_imp"],
                         "SMD before, mean": d["smd_un_mean"].round(3), "SMD after, mean": d["smd_adj_mean"].round(3),
                         "|SMD| after, min": d["abs_smd_adj_min"].round(3),
                         "|SMD| after, max": d["abs_smd_adj_max"].round(3)}).reset_index(drop=True)


def format_pooled(table: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """``steps.survival_mi.pooled_hr_table`` for reading: estimate (CI), P, df, RIV and FMI per quantity."""
    return pd.DataFrame({
        "Endpoint": table["endpoint"].map(ENDPOINT_LABELS), "Cohort": table["cohort"],
        "Quantity": table["measure"].str.replace("log_hr", "HR").str.replace("_", " "),
        "m": table["m"], "Estimate (95% CI)": [fmt_est_ci(e, lo, hi, digits) for e, lo, hi in
                                               zip(table["estimate"], table["lower"], table["upper"])],
        "P": table["p_value"].map(fmt_p), "df": table["df"].map(lambda v: fmt_num(v, 1)),
        "RIV": table["riv"].round(3), "FMI": table["fmi"].round(3)})


def tipping_plot(tipping: pd.DataFrame, main_hr: dict[str, float] | None = None) -> plt.Figure:
    """Matched OS hazard ratio (pooled, 95% CI) against delta, one panel per scenario: delta 0 is the main (MAR)
    analysis; the conclusion changes where the CI first reaches 1."""
    scen = list(dict.fromkeys(tipping["scenario"]))
    fig, axes = plt.subplots(1, len(scen), figsize=(3.6 * len(scen), 2.8), sharey=True, squeeze=False)
    for ax, s in zip(axes[0], scen):
        d = tipping[tipping["scenario"] == s].sort_values("delta")
        if main_hr:
            d = pd.concat([pd.DataFrame([{"delta": 0.0, **main_hr}]), d], ignore_index=True)
        ax.errorbar(d["delta"], d["hr"], yerr=[d["hr"] - d["lower"], d["upper"] - d["hr"]], fmt="o-", color="0.2",
                    ms=4, lw=1, capsize=2)
        ax.axhline(1.0, color="0.5", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("delta (log-odds shift per worse level)")
        ax.set_title({"ecog": "ECOG imputed worse", "child_pugh": "Child-Pugh points imputed worse"}.get(s, s),
                     fontsize=8.5)
    axes[0, 0].set_ylabel("OS hazard ratio, matched (95% CI)")
    fig.tight_layout()
    return fig


def format_tipping(tipping: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"Scenario": tipping["scenario"], "delta": tipping["delta"], "m": tipping["m"],
                         "OS HR, matched (95% CI)": [fmt_est_ci(h, lo, hi) for h, lo, hi in
                                                     zip(tipping["hr"], tipping["lower"], tipping["upper"])],
                         "P": tipping["p"].map(fmt_p), "CI excludes 1": tipping["significant"].map(
                             {True: "yes", False: "no"})})


def sensitivity_table(survival_rows: pd.DataFrame, response_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The survival rows of ``steps.survival_mi.sensitivity_rows`` and, when given, response rows in the same
    layout, stacked."""
    return pd.concat([survival_rows, response_rows], ignore_index=True) if response_rows is not None \
        else survival_rows.copy()


def format_sensitivity(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per endpoint and analysis; estimate (95% CI) under multiple imputation (with its FMI), complete
    case and missing indicator side by side."""
    out = pd.DataFrame({"Endpoint": rows["endpoint"].map(lambda e: ENDPOINT_LABELS.get(e, e)),
                        "Analysis": rows["cohort"].map(lambda c: COHORT_LABELS.get(c, c)),
                        "Measure": rows["measure"]})
    for d in ("mi", "cc", "ind"):
        if d in rows.columns:
            digits = [1 if m.startswith("RMST") else 2 for m in rows["measure"]]
            out[DESIGN_LABELS[d]] = [fmt_est_ci(e, lo, hi, k) for e, lo, hi, k in
                                     zip(rows[d], rows[f"{d}_lower"], rows[f"{d}_upper"], digits)]
    if "mi_fmi" in rows.columns:
        out["FMI (MI)"] = rows["mi_fmi"].round(3)
    return out


def progress(label: str) -> Callable[[int, int], None]:
    """A progress callback for ``stats.mi.run_within`` and ``stats.mice.mice``: prints ``label`` and the count at
    each quarter of the work (no timing, so executed notebooks stay identical between runs)."""
    def report(done: int, total: int) -> None:
        if done == 1:
            print(f"{label}:", end=" ", flush=True)
        if done == total or done % max(1, total // 4) == 0:
            print(f"{done}/{total}", end="\n" if done == total else " ", flush=True)
    return report
