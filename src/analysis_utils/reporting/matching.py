"""Presentation of notebook 04_matching: balance tables, Table 1 before and after matching and weighting, the
propensity-score reporting items, the Love plot and the propensity-score distributions.

Everything is computed by ``steps.matching.run_matching`` (statistics in ``stats/``); this module formats it.
The SMDs of the balance tables and the Love plot are MatchIt's / cobalt's (``stats.balance``); the Table 1 SMDs
are tableone's (``reporting.tables.table_one``). Method: docs/methods/matching-and-weighting.md; reporting
items: docs/methods/reporting.md.
"""
from __future__ import annotations

import math
import re
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis_utils.reporting.figures import ARM_COLOURS, ARM_ORDER
from analysis_utils.reporting.tables import fmt_num, fmt_p, group_rows, table_one, table_one_weighted, term_label
from analysis_utils.steps.matching import WEIGHTINGS, MatchingOutput

__all__ = ["flow_matching_step", "format_balance", "format_ess", "format_ps_model", "love_data", "love_plot", "ps_distribution", "table_ones", "matching_report"]

VAR_RATIO_BOUNDS = (0.5, 2.0)  # acceptable variance ratio for continuous covariates (Austin 2009)
SMD_DENOMINATOR_TEXT = {"ATT": "SD of the treated group", "ATC": "SD of the control group",
                        "ATE": "pooled SD sqrt((s_t^2 + s_c^2) / 2)"}


def _fmt(x: Any, digits: int = 3) -> str:
    """Number for the report: '—' if missing, 'inf' for an infinite SMD (a group without variance)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return "inf" if isinstance(x, float) and math.isinf(x) else f"{x:.{digits}f}"


def _vr_outside(table: pd.DataFrame, col: str) -> list[str]:
    lo, hi = VAR_RATIO_BOUNDS
    vr = table.loc[table["type"] == "continuous", ["term", col]] if col in table.columns else pd.DataFrame()
    return [] if vr.empty else vr.loc[(vr[col] < lo) | (vr[col] > hi), "term"].tolist()


def format_balance(table: pd.DataFrame, labels: dict[str, str] | None = None, digits: int = 3) -> pd.DataFrame:
    """Manuscript view of a ``balance.balance_table`` (MatchIt ``summary.matchit`` columns): covariate term, then per
    sample (before, and after when present) the mean per arm, the SMD, the variance ratio (continuous covariates
    only) and the largest eCDF difference. Several weightings stacked (a ``weighting`` column) become bold group
    rows, one per weighting, each showing the weighted sample only (its SMD has the denominator of its own
    estimand). An empty table (no covariate left) gives an empty frame. Values as text ('—' where not defined)."""
    if table.empty or "smd_un" not in table.columns:
        return pd.DataFrame({"Covariate": pd.Series(dtype=object)})
    treated, control = ARM_ORDER
    out = pd.DataFrame({"Covariate": [term_label(v, lv, labels) for v, lv in zip(table["variable"], table["level"])]})
    weighted = "weighting" in table.columns
    parts = [("adj", "")] if weighted else [("un", ", before")] + ([("adj", ", after")] if "smd_adj" in table.columns
                                                                   else [])
    for suffix, when in parts:
        out[f"{treated} mean{when}"] = [fmt_num(v, digits, "—") for v in table[f"mean_treated_{suffix}"]]
        out[f"{control} mean{when}"] = [fmt_num(v, digits, "—") for v in table[f"mean_control_{suffix}"]]
        out[f"SMD{when}"] = [fmt_num(v, digits, "—") for v in table[f"smd_{suffix}"]]
        out[f"Variance ratio{when}"] = [fmt_num(v, 2, "—") for v in table[f"var_ratio_{suffix}"]]
        out[f"eCDF max{when}"] = [fmt_num(v, digits, "—") for v in table[f"ecdf_max_{suffix}"]]
    if weighted:
        names = {k: label for k, (label, _, _) in WEIGHTINGS.items()}
        out.insert(0, "Weighting", [names.get(w, w) for w in table["weighting"]])
        out = group_rows(out, "Weighting")
    out.attrs["note"] = ("Means of binary terms are proportions. SMD: difference in means divided by the "
                         "standard deviation of the estimand's reference sample before adjustment (MatchIt, cobalt); "
                         "variance ratio: continuous covariates only; eCDF max: largest difference between the "
                         "empirical cumulative distribution functions.")
    return out


def format_ps_model(summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Manuscript view of the propensity model (``propensity.summary``: term, estimate, std_error, p_value,
    conf_low, conf_high): readable term ('Aetiology: HBV', 'Age, years (missing)'), coefficient on the log-odds
    scale with its CI, standard error and P."""
    def term(t: str) -> str:
        if t == "(Intercept)":
            return "Intercept"
        m = re.match(r"^(.+?)\[(.+)\]$", t)
        return term_label(m.group(1), _level(m.group(2))) if m else term_label(t)

    out = pd.DataFrame({
        "Term": [term(t) for t in summary["term"]],
        "Coefficient (95% CI)": [f"{fmt_num(e, digits, '—')} ({fmt_num(lo, digits, '—')} to {fmt_num(hi, digits, '—')})"
                                 for e, lo, hi in zip(summary["estimate"], summary["conf_low"], summary["conf_high"])],
        "SE": [fmt_num(v, digits, "—") for v in summary["std_error"]],
        "P": [fmt_p(v) for v in summary["p_value"]]})
    out.attrs["note"] = ("Coefficients of the logistic model on the log-odds scale (positive: more likely to receive "
                         "HAIC-TKIs-P); a factor level is compared with the first level; '(missing)' terms are the "
                         "missingness indicators of the missing-indicator method.")
    return out


def _level(text: str) -> Any:
    """'1.0' -> 1.0 (so that term_label prints ECOG '1'), else the text."""
    try:
        return float(text)
    except ValueError:
        return text


def format_ess(ess: pd.DataFrame) -> pd.DataFrame:
    """Effective sample sizes (``MatchingOutput.ess``: sample, group, n, n_nonzero, ess) with one row per sample:
    per arm the patients with a non-zero weight and the Kish ESS (one decimal)."""
    rows = []
    for sample, part in ess.groupby("sample", sort=False):
        row: dict[str, str] = {"Sample": sample}
        for arm in ARM_ORDER:
            r = part[part["group"] == arm]
            row[f"{arm}, n"] = "—" if r.empty else f"{int(r['n_nonzero'].iloc[0])}"
            row[f"{arm}, ESS"] = "—" if r.empty else fmt_num(float(r["ess"].iloc[0]), 1, "—")
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["note"] = ("n: patients with a non-zero weight; ESS: Kish effective sample size, (sum of weights)² / "
                         "sum of squared weights.")
    return out


def love_data(output: MatchingOutput) -> pd.DataFrame:
    """Tidy |SMD| per term and sample for ``love_plot``: unadjusted and matched (matching estimand's
    denominator), then each weighting with its own estimand's denominator (cobalt). Terms are readable labels
    (``tables.term_label``)."""
    parts = []
    b = output.balance_matched
    if not b.empty:
        parts.append(pd.DataFrame({"term": b["term"], "sample": "Unadjusted", "smd": b["smd_un"].abs()}))
        if "smd_adj" in b.columns:
            parts.append(pd.DataFrame({"term": b["term"], "sample": "Matched", "smd": b["smd_adj"].abs()}))
    bw = output.balance_weighted
    if not bw.empty:
        for name, (label, _, _) in WEIGHTINGS.items():
            sub = bw[bw["weighting"] == name]
            parts.append(pd.DataFrame({"term": sub["term"], "sample": label, "smd": sub["smd_adj"].abs()}))
    if not parts:
        return pd.DataFrame(columns=["term", "sample", "smd"])
    out = pd.concat(parts, ignore_index=True)
    names = {r.term: term_label(r.variable, r.level) for r in pd.concat([b, bw]).itertuples()}
    return out.assign(term=out["term"].map(names))


SAMPLE_STYLES = {  # love plot: one colour/marker per sample (Okabe-Ito, avoiding the two arm colours)
    "Unadjusted": ("#999999", "o"), "Matched": ("#000000", "D"), "IPTW (ATE)": ("#009E73", "s"),
    "IPTW (ATT)": ("#CC79A7", "^"), "Overlap weights (ATO)": ("#E69F00", "v"),
}


def love_plot(smd: pd.DataFrame, threshold: float = 0.1, samples: list[str] | None = None,
              labels: dict[str, str] | None = None) -> plt.Figure:
    """Love plot as cobalt's ``love.plot(abs = TRUE)``: absolute SMD per covariate term (rows) for each sample
    (points), a dashed line at ``threshold``; terms ordered by the first sample's |SMD|, largest at the top (cobalt
    ``var.order = "unadjusted"``). ``smd`` is tidy: columns term, sample, smd (e.g.
    ``love_data(output)``); ``samples`` chooses and orders the samples shown."""
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
    fig, ax = plt.subplots(figsize=(6.4, 0.17 * len(wide) + 1.2))
    for name in samples:
        if name not in wide.columns:
            continue
        colour, marker = SAMPLE_STYLES.get(name, ("#56B4E9", "o"))
        ax.scatter(wide[name], y, s=18, color=colour, marker=marker, label=name, zorder=3)
    ax.axvline(threshold, color="0.3", lw=0.8, ls="--", zorder=1)
    ax.set_yticks(y, [(labels or {}).get(t, t) for t in wide.index], fontsize=7.5)
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


def _table1_variables(cohort: pd.DataFrame, spec: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Table 1 rows: the requested covariates (also those dropped from the ps model as constant), then
    ``table1.extra``; variables entirely missing are left out. Returns them and which are categorical."""
    extra = [c for c in spec["table1"]["extra"] if c in cohort.columns and c not in spec["covariates"]]
    variables = [c for c in spec["covariates"] + extra if cohort[c].notna().any()]
    cats = set(spec["categorical"]) | set(spec["table1"]["categorical"])
    return variables, [c for c in variables if c in cats]


def table_ones(output: MatchingOutput) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Table 1 of the whole cohort and of the matched sample (tableone; the weighted version when k:1 or
    replacement makes the matching weights differ from 1), and the IPTW (ATE) weighted Table 1 (empty frames when
    there is no matched sample or no weights)."""
    s, data, arm_col = output.spec, output.cohort, output.arm_col
    used = data.loc[output.propensity.ps.index]
    t = output.propensity.treatment.to_numpy() == 1
    mw = output.match.weights if output.match is not None else None
    w_ate = output.weights["w_iptw_ate"].to_numpy(dtype=float)
    order = [output.summary["treated_arm"], output.summary["control_arm"]]
    variables, cats = _table1_variables(data, s)
    non = s["table1"]["nonnormal"]
    before = table_one(data, arm_col, variables, cats, non, group_order=order)
    matched = pd.DataFrame()
    if mw is not None and (mw[t] > 0).any() and (mw[~t] > 0).any():
        if np.allclose(mw[mw > 0], 1.0):
            matched = table_one(used.loc[mw > 0], arm_col, variables, cats, non, group_order=order)
        else:
            matched = table_one_weighted(used, arm_col, variables, mw, cats, group_order=order,
                                         estimand=s["estimand"], nonnormal=non)
    iptw = (table_one_weighted(used, arm_col, variables, w_ate, cats, group_order=order, estimand="ATE",
                               nonnormal=non) if np.isfinite(w_ate).all() else pd.DataFrame())
    return before, matched, iptw


def matching_report(output: MatchingOutput) -> pd.DataFrame:
    """The propensity-score matching report items of Yao et al. (JNCI 2017; docs/methods/reporting.md) as rows
    (section, item, value). The largest |SMD|s and the caliper are read from the balance summaries and the match,
    not from the JSON-safe ``summary``, so that an infinite SMD prints as 'inf'."""
    s, prop, match, summary = output.spec, output.propensity, output.match, output.summary
    counts, unmatched, bal, ess = output.counts, output.unmatched, output.balance_matched, output.ess
    sum_m, sum_w = output.balance_summary, output.balance_summary_weighted
    problems, arm_col = output.problems, output.arm_col
    treated_arm, control_arm = summary["treated_arm"], summary["control_arm"]
    rows: list[tuple[str, str, str]] = []

    def add(section: str, item: str, value: Any) -> None:
        rows.append((section, item, str(value)))

    sec = "Propensity model"
    add(sec, "Model", "logistic regression of arm on baseline covariates (unpenalised GLM, logit link; R glm, "
                      "MatchIt distance = 'glm')")
    add(sec, "Covariates requested", ", ".join(s["covariates"]))
    add(sec, "Covariates used", ", ".join(summary["covariates"]) or "none (intercept-only model)")
    add(sec, "Covariates dropped", "; ".join(f"{c}: {why}" for c, why in prop.dropped_covariates.items()) or "none")
    add(sec, "Missing data", {"indicator": "missing-indicator method (median / mode fill + <covariate>_missing "
                                           "indicator in the model)",
                              "complete_case": "complete cases only"}[s["missing"]])
    add(sec, "Units in the model", f"{summary['n_ps_model']} of {summary['n_cohort']} "
                                   f"({summary['n_treated_before']} {treated_arm}, "
                                   f"{summary['n_control_before']} {control_arm})")
    add(sec, "Model converged", "yes" if prop.converged else "no")
    sec = "Matching"
    add(sec, "Method", f"greedy nearest neighbour {s['ratio']}:1 {'with' if s['replace'] else 'without'} "
                       f"replacement (MatchIt method = 'nearest', estimand ATT)")
    add(sec, "Distance", "logit of the propensity score (MatchIt link = 'linear.logit')" if s["distance"] == "logit"
        else "propensity score")
    add(sec, "Matching order", f"{s['m_order']} distance first (MatchIt m.order = '{s['m_order']}')")
    if s["caliper"] is None:
        add(sec, "Caliper", "none")
    elif s["std_caliper"]:
        width, sd = (match.caliper_width, match.caliper_sd) if match is not None else (None, None)
        add(sec, "Caliper", f"{s['caliper']} SD of the distance = {_fmt(width, 4)} raw units "
                            f"(SD {_fmt(sd, 4)}, n - 1, all non-discarded units pooled)")
    else:
        add(sec, "Caliper", f"{s['caliper']} raw units of the distance")
    add(sec, "Exact matching on", ", ".join(s["exact"]) or "none")
    add(sec, "Common-support discard", s["discard"])
    sec = "Sample sizes"
    for g in (treated_arm, control_arm):
        c = counts[g]
        add(sec, g, f"{c['All']} before, {c['Matched']} matched, {c['Unmatched']} unmatched, "
                    f"{c['Discarded']} discarded")
    add(sec, "Matched pairs (subclasses)", "none: with replacement MatchIt gives no subclasses" if s["replace"]
        else summary["n_pairs"])
    sec = "Unmatched units"
    if len(unmatched):
        why_short = unmatched["reason"].where(~unmatched["reason"].str.startswith("not in the propensity model: "),
                                              "not in the propensity model (complete case: missing covariate values)")
        for (g, why), n in unmatched.assign(reason=why_short).groupby([arm_col, "reason"]).size().items():
            add(sec, f"{g}: {why}", n)
    else:
        add(sec, "All units matched", "yes")
    sec = "Balance after matching"
    add(sec, "SMD", f"(mean treated - mean control) / {SMD_DENOMINATOR_TEXT[s['estimand']]} in the unmatched "
                    f"sample (estimand {s['estimand']}; MatchIt); binary covariates standardised")
    add(sec, "Max |SMD| before", _fmt(sum_m.max_abs_smd_un if sum_m is not None else None))
    add(sec, "Max |SMD| after matching", _fmt(sum_m.max_abs_smd_adj if sum_m is not None else None))
    add(sec, f"Terms with |SMD| > {summary['smd_threshold']}", ", ".join(summary["terms_above_threshold_matched"])
        or "none")
    if sum_m is not None and sum_m.not_computed:
        add(sec, "Terms whose SMD could not be computed", ", ".join(sum_m.not_computed))
    if "var_ratio_adj" in bal.columns:
        add(sec, f"Continuous covariates with variance ratio outside {VAR_RATIO_BOUNDS[0]}–{VAR_RATIO_BOUNDS[1]}",
            ", ".join(_vr_outside(bal, "var_ratio_adj")) or "none")
    add(sec, "Balanced", "yes" if summary["balanced"] else "no")
    sec = "Weighting"
    wspec = s["weighting"]
    for name, (label, w_est, denom_est) in WEIGHTINGS.items():
        if name not in sum_w:
            add(sec, label, "not computed")
            continue
        how = {"iptw_ate": f"1/ps, 1/(1-ps){', stabilised' if wspec['stabilize'] else ''}"
                           + (f", trimmed at the {wspec['trim_quantile']} quantile "
                              f"({summary['iptw_ate_n_trimmed']} weight(s) set to "
                              f"{_fmt(summary['iptw_ate_trim_value'])})" if wspec["trim_quantile"] is not None
                              else ""),
               "iptw_att": "treated 1, controls ps/(1-ps); not stabilised, not trimmed",
               "overlap": "treated 1-ps, controls ps"}[name]
        e_t = ess[(ess["sample"] == label) & (ess["group"] == treated_arm)]["ess"].iloc[0]
        e_c = ess[(ess["sample"] == label) & (ess["group"] == control_arm)]["ess"].iloc[0]
        add(sec, label, f"{how}; max |SMD| {_fmt(sum_w[name].max_abs_smd_adj)} ({SMD_DENOMINATOR_TEXT[denom_est]}); "
                        f"ESS {e_t:.1f} {treated_arm}, {e_c:.1f} {control_arm}; terms above threshold: "
                        f"{', '.join(sum_w[name].failing) or 'none'}")
    for p in problems:
        add("Notes and problems", "Note", p)
    return pd.DataFrame(rows, columns=["section", "item", "value"])


def flow_matching_step(output: MatchingOutput) -> dict[str, Any]:
    """The matching step of the study flow diagram (``reporting.cleaning.study_flow_diagram``): the method in
    words, the number of pairs (matched sets), and per arm the patients matched and the patients left unmatched by
    reason (no partner within the caliper, not selected, not in the propensity model, ...)."""
    s, counts, unmatched, arm_col = output.spec, output.counts, output.unmatched, output.arm_col
    caliper = ("no caliper" if s["caliper"] is None else
               f"caliper {s['caliper']:g} SD of the {'logit of the score' if s['distance'] == 'logit' else 'score'}"
               if s["std_caliper"] else f"caliper {s['caliper']:g}")
    method = f"1:{s['ratio']} nearest neighbour{', with replacement' if s['replace'] else ''}, {caliper}"
    arms: dict[str, dict[str, Any]] = {}
    for arm in ARM_ORDER:
        if arm not in counts.columns:
            continue
        reasons = unmatched[unmatched[arm_col] == arm]["reason"].astype(str)
        reasons = reasons.where(~reasons.str.startswith("not in the propensity model"), "not in the propensity model")
        arms[arm] = {"matched": int(counts.loc["Matched", arm]),
                     "unmatched": {_reason_text(r): int(k) for r, k in reasons.value_counts(sort=False).items()}}
    pairs = output.summary.get("n_pairs")
    return {"method": method, "n_pairs": int(pairs) if pairs is not None else 0, "arms": arms}


def _reason_text(reason: str) -> str:
    """First letter upper-case, for the flow diagram."""
    return reason[:1].upper() + reason[1:]
