"""``_variables.yml``: every number and Methods phrase the article quotes, formatted for reading.

``build_variables(out)`` reads ``<out>/results.json`` (one section per notebook) and ``<out>/run_manifest.json``
(params actually used, versions, commit, seed, input checksums) and returns nested, *formatted* strings (see
:mod:`analysis_utils.reporting.manuscript.text`). Methods prose pieces (covariate list, caliper and its scale,
matching order, CI transform, ...) are generated from the params.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from analysis_utils.reporting import tables
from analysis_utils.reporting.manuscript.text import (ci_text, covariate_text, date_text, days_text, est_ci_text,
                                                      fmt_count_pct, fmt_int, fmt_pct, human_list, is_missing,
                                                      level_text, median_text, months_list_text, p_text)
from analysis_utils.reporting.manuscript.values import Reader, collect, topic_modules
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

CONF_TYPE_TEXT = {
    "log-log": "log-log transformed",
    "log": "log transformed",
    "plain": "untransformed",
}
M_ORDER_TEXT = {
    "largest": "in descending order of the propensity score (largest first)",
    "smallest": "in ascending order of the propensity score (smallest first)",
    "random": "in a random order drawn from the run's seed",
    "data": "in the order of the data",
}
ESTIMAND_SMD_TEXT = {
    "ATT": "the standard deviation of the HAIC-TKIs-P group before matching",
    "ATC": "the standard deviation of the TKIs-P group before matching",
    "ATE": "the square root of the mean of the two groups' variances before matching",
}
SOFTWARE = (("numpy", "NumPy"), ("pandas", "pandas"), ("scipy", "SciPy"), ("statsmodels", "statsmodels"),
            ("scikit-learn", "scikit-learn"), ("lifelines", "lifelines"), ("scikit-survival", "scikit-survival"),
            ("tableone", "tableone"), ("matplotlib", "matplotlib"), ("papermill", "papermill"))


# --------------------------------------------------------------------------------------------------- variables
_Reader = Reader  # the names this module has always used; topic modules import Reader and collect from values
_collect = collect


def _run_variables(manifest: dict[str, Any]) -> dict[str, Any]:
    """The run manifest: commit, seed, params file, cut-off, software versions, input files."""
    git = manifest.get("git", {})
    versions = manifest.get("versions", {})
    commit = str(git.get("commit", "unknown"))
    software = human_list(f"{label} {versions[key]}" for key, label in SOFTWARE
                          if key in versions and versions[key] != "not installed")
    return {
        "name": str(manifest.get("run_name", "")),
        "params_file": str(manifest.get("params_file", "")),
        "commit": commit,
        "commit_short": commit[:7] if commit != "unknown" else commit,
        "commit_state": ("with uncommitted changes to tracked files" if git.get("dirty")
                         else "with no uncommitted changes" if git.get("dirty") is False else "outside a git checkout"),
        "seed": str(manifest.get("seed", "")),
        "data_cutoff": date_text(manifest["params"]["data_cutoff"]),
        "n_input_files": fmt_int(len(manifest.get("input_sha256", {}))),
        "python": str(versions.get("python", "")),
        "analysis_utils": str(versions.get("analysis_utils", "")),
        "software": software,
        "versions": {k.replace("-", "_"): str(v) for k, v in versions.items()},
        "notebooks": human_list(manifest.get("notebooks", [])),
    }


def _methods_variables(params: dict[str, Any]) -> dict[str, Any]:
    """Methods prose generated from the params actually used (run_manifest.json)."""
    cl = params.get("cleaning", {})
    mt = params.get("matching", {})
    sv = params.get("survival", {})
    rs = params.get("response", {})
    sf = params.get("safety", {})
    out: dict[str, Any] = {}
    if cl:
        out["haic_window"] = days_text(cl["haic_window_days"])
        out["combination_gap"] = days_text(cl["combination_max_gap_days"])
        out["baseline_imaging_before"] = days_text(cl["baseline_imaging_window_days"])
        out["baseline_imaging_after"] = days_text(cl["baseline_imaging_after_days"])
        out["min_sd"] = days_text(cl["min_sd_days"])
        out["confirm_min"] = days_text(cl["confirm_min_days"])
    if mt:
        ratio = int(mt.get("ratio", 1))
        caliper = mt.get("caliper")
        scale = "the logit of the propensity score" if mt.get("distance") == "logit" else "the propensity score"
        out["ps_covariates"] = covariate_text(mt["covariates"])
        out["n_ps_covariates"] = fmt_int(len(mt["covariates"]))
        out["distance"] = scale
        out["ratio"] = f"1:{ratio}"
        out["replacement"] = "with replacement" if mt.get("replace") else "without replacement"
        out["order"] = M_ORDER_TEXT.get(str(mt.get("m_order")), f"in '{mt.get('m_order')}' order")
        if caliper is None:
            out["caliper"] = "no caliper"
        elif mt.get("std_caliper", True):
            out["caliper"] = f"a caliper of {caliper:g} standard deviations of {scale}"
        else:
            out["caliper"] = f"a caliper of {caliper:g} on the scale of {scale}"
        out["exact"] = (f"with exact matching on {covariate_text(mt['exact'])}" if mt.get("exact")
                        else "without exact matching on any variable")
        out["missing"] = ("missing covariate values were replaced by the median (continuous covariates) or the most "
                          "frequent level (categorical covariates), with a missingness indicator entering the model"
                          if mt.get("missing") == "indicator" else
                          "patients with a missing covariate value were left out of the propensity model "
                          "(complete-case analysis)")
        out["smd_denominator"] = ESTIMAND_SMD_TEXT.get(str(mt.get("estimand")), str(mt.get("estimand")))
        out["smd_threshold"] = f"{float(mt['smd_threshold']):g}"
        w = mt.get("weighting", {})
        trim = w.get("trim_quantile")
        out["iptw"] = ((("stabilised " if w.get("stabilize") else "") + "inverse probability of treatment weights")
                       + (f" truncated at the {_ordinal(100 * float(trim))} percentile" if trim else ""))
    if sv:
        level = float(sv.get("conf_level", 0.95))
        out["ci_level"] = level_text(level)
        out["km_ci"] = CONF_TYPE_TEXT.get(str(sv.get("conf_type")), str(sv.get("conf_type")))
        out["timepoints"] = months_list_text(sv["timepoints_months"])
        out["rmst_tau"] = f"{float(sv['rmst_tau_months']):g} months"
        out["landmark"] = f"{float(sv['landmark_months']):g} months"
        out["ties"] = {"efron": "Efron", "breslow": "Breslow", "exact": "exact"}.get(str(sv.get("ties")),
                                                                                    str(sv.get("ties")))
        out["adjust_covariates"] = covariate_text(sv["adjust_covariates"])
        out["subgroups"] = covariate_text(sv["subgroups"])
    if rs:
        primary = str(rs.get("primary_definition", "unconfirmed"))
        other = "confirmed" if primary == "unconfirmed" else "unconfirmed"
        out["response_primary"] = primary
        out["response_sensitivity"] = other
        out["response_ci_level"] = level_text(float(rs.get("conf_level", 0.95)))
    if sf:
        out["safety_window"] = days_text(sf["window_days"])
        out["top_terms"] = fmt_int(sf["top_terms"])
    return out


def _ordinal(x: float) -> str:
    n = int(round(x))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _cohort_variables(r: _Reader, flow_labels: dict[str, str], missing: list[str]) -> dict[str, Any]:
    """Cleaning section: screening, exclusions (labels from tables/flow.csv), arms, recruitment period."""
    out: dict[str, Any] = {}
    for key in ("n_screened", "n_centers", "n_excluded", "n_analysed", "n_haic", "n_control", "n_os_events",
                "haic_after_index_n", "n_quality_entries"):
        _collect(out, key, lambda k=key: fmt_int(r(k)), missing)
    _collect(out, "pct_haic", lambda: fmt_pct(r("pct_haic")), missing)
    _collect(out, "pct_control", lambda: fmt_pct(100 - float(r("pct_haic"))), missing)
    _collect(out, "index_from", lambda: date_text(r("index_date_min"), day=False), missing)
    _collect(out, "index_to", lambda: date_text(r("index_date_max"), day=False), missing)

    def exclusions() -> str:
        counts = {k: int(v) for k, v in r("exclusions").items() if int(v) > 0}
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        return human_list(f"{_lower_first(flow_labels.get(k, k.replace('_', ' ')))} (n = {fmt_int(n)})"
                          for k, n in top)

    _collect(out, "top_exclusions", exclusions, missing)
    if flow_labels:
        out["criteria"] = "; ".join(_lower_first(v) for v in flow_labels.values())
    return out


def _lower_first(s: str) -> str:
    """Lower-case the first letter unless the first word is an acronym ('HCC not confirmed' stays)."""
    word = s.split(" ", 1)[0]
    return s if word.isupper() or any(c.isdigit() for c in word) or "-" in word else s[:1].lower() + s[1:]


ARM_TAGS = (("haic", ARM_HAIC), ("control", ARM_CONTROL))
SAFETY_ROWS = ("any", "g3", "related", "related_g3", "serious", "discontinued", "g5")


def _safety_comparison(r: _Reader, suffix: str, alpha: float) -> str:
    """Grade >=3 TEAE with HAIC-TKIs-P versus TKIs-P in words, by the between-arm P (two-sided, ``alpha``)."""
    if float(r(f"g3_p{suffix}")) >= alpha:
        return "with a similar frequency of grade ≥3 adverse events"
    return ("at the cost of more frequent grade ≥3 adverse events"
            if float(r(f"g3_haic_pct{suffix}")) > float(r(f"g3_control_pct{suffix}"))
            else "with less frequent grade ≥3 adverse events")


def _safety_variables(r: _Reader, missing: list[str], alpha: float = 0.05) -> dict[str, Any]:
    """Safety section: '253 (71.3%)' per arm and category, the between-arm P, the most frequent terms."""
    out: dict[str, Any] = {}
    for cohort_suffix, name in (("", "full"), ("_matched", "matched")):
        block: dict[str, Any] = {}
        for key in SAFETY_ROWS:
            row: dict[str, Any] = {}
            for tag, _arm in ARM_TAGS:
                _collect(row, tag, lambda k=key, t=tag: fmt_count_pct(r(f"{k}_{t}_n{cohort_suffix}"),
                                                                        r(f"{k}_{t}_pct{cohort_suffix}")), [])
            _collect(row, "p", lambda k=key: p_text(r(f"{k}_p{cohort_suffix}")), [])
            if row:
                block[key] = row
        if block:
            out[name] = block
        elif not cohort_suffix:
            missing.append("safety.full: no '<category>_<arm>_n' keys in results")
    _collect(out, "window", lambda: days_text(r("window_days")), missing)
    _collect(out, "g3_comparison", lambda: _safety_comparison(r, "", alpha), missing)
    _collect(out, "top_terms", lambda: human_list(_lower_first(t) for t in r("top_terms")[:3]), missing)
    _collect(out, "n_events", lambda: fmt_int(r("n_events")), missing)
    return out


def build_variables(out_dir: str | Path) -> dict[str, Any]:
    """Nested, formatted strings for ``_variables.yml`` from ``<out>/results.json`` and ``<out>/run_manifest.json``.

    Top-level keys: run (manifest), methods (params prose), cohort (cleaning), matching, survival, response,
    safety, and one per topic module ``variables_<topic>.py`` (``values.topic_modules``: its ``VARIABLES_KEY``,
    built from its ``RESULTS_SECTION`` of results.json: target_trial, imputation, outcomes, simulation). A section
    whose results are absent is left out, and so is any variable whose results key is missing; ``variables_report``
    says which (``check_references`` then reports the unresolved ``{{< var >}}``)."""
    return variables_report(out_dir)[0]


def variables_report(out_dir: str | Path) -> tuple[dict[str, Any], list[str]]:
    """``build_variables`` plus the list of variables that could not be built and why."""
    out = Path(out_dir)
    manifest_path = out / "run_manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: no run manifest; run the pipeline first "
                                "(python -m analysis_utils run --params params/default.yaml)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    from analysis_utils.reporting.results import load_results

    results = load_results(out)
    params = manifest["params"]
    missing: list[str] = []
    variables: dict[str, Any] = {"run": _run_variables(manifest), "methods": _methods_variables(params)}
    flow_labels = _flow_labels(out)
    builders: dict[str, tuple[str | None, Callable[[Reader], dict[str, Any]]]] = {
        "cohort": ("cleaning", lambda r: _cohort_variables(r, flow_labels, missing)),
        "matching": ("matching", lambda r: _matching_variables(r, params, missing)),
        "survival": ("survival", lambda r: _survival_variables(r, params, missing)),
        "response": ("response", lambda r: _response_variables(r, params, missing)),
        "safety": ("safety", lambda r: _safety_variables(r, missing, _alpha(params))),
    }
    for topic in topic_modules():  # reporting/manuscript/variables_<topic>.py (values.topic_modules)
        if topic.VARIABLES_KEY in builders or topic.VARIABLES_KEY in variables:
            raise ValueError(f"topic VARIABLES_KEY '{topic.VARIABLES_KEY}' is already a block of _variables.yml")
        builders[topic.VARIABLES_KEY] = (topic.RESULTS_SECTION, lambda r, t=topic: t.variables(r, params, missing))
    for name, (section, build) in builders.items():
        if section is not None and section not in results:
            missing.append(f"{name}: results.json has no '{section}' section")
            continue
        block = build(Reader(section or "", results.get(section, {}) if section else {}, results, out))
        if block:
            variables[name] = block
    return variables, missing


def _flow_labels(out: Path) -> dict[str, str]:
    """Exclusion criterion -> readable label, in the order applied, from ``tables/flow.csv``."""
    path = out / "tables" / "flow.csv"
    if not path.is_file():
        return {}
    import pandas as pd

    flow = pd.read_csv(path)
    if not {"step", "criterion", "label"} <= set(flow.columns):
        return {}  # not the eligibility flow table: the exclusion wording falls back to the criterion names
    excl = flow[flow["step"] == "excluded"]
    return dict(zip(excl["criterion"].astype(str), excl["label"].astype(str)))


def _alpha(params: dict[str, Any]) -> float:
    """Two-sided significance level behind the generated wording: 1 - survival.conf_level (0.05 for 95% CIs)."""
    return 1.0 - float(params.get("survival", {}).get("conf_level", 0.95))


def _direction(lower: Any, upper: Any, below: str, above: str, neither: str) -> str:
    """Wording from a CI of a ratio: entirely below 1, entirely above 1, or including 1."""
    if is_missing(lower) or is_missing(upper):
        return neither
    return below if float(upper) < 1 else above if float(lower) > 1 else neither


def _matching_variables(r: _Reader, params: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """Matching section (04_matching, ``matching.run_matching`` summary): counts, caliper, balance, ESS."""
    out: dict[str, Any] = {}
    for key, name in (("n_pairs", "n_pairs"), ("n_treated_before", "n_haic_before"),
                      ("n_control_before", "n_control_before"), ("n_treated_matched", "n_haic_matched"),
                      ("n_control_matched", "n_control_matched"), ("n_treated_unmatched", "n_haic_unmatched"),
                      ("n_control_unmatched", "n_control_unmatched"), ("n_ps_model", "n_ps_model")):
        _collect(out, name, lambda k=key: fmt_int(r(k)), missing)
    _collect(out, "pct_haic_matched", lambda: fmt_pct(100 * r("n_treated_matched") / r("n_treated_before")),
             missing)
    _collect(out, "caliper_raw", lambda: tables.fmt_num(r("caliper_raw"), 3), missing)
    for key, name in (("max_abs_smd_before", "max_smd_before"), ("max_abs_smd_matched", "max_smd_matched"),
                      ("max_abs_smd_iptw_ate", "max_smd_iptw"), ("max_abs_smd_overlap", "max_smd_overlap")):
        _collect(out, name, lambda k=key: tables.fmt_num(r(k), 3), missing)
    for side, tag in (("treated", "haic"), ("control", "control")):
        _collect(out, f"ess_iptw_{tag}", lambda s=side: tables.fmt_num(r(f"ess_iptw_ate_{s}"), 1), missing)

    def balance() -> str:
        thr = f"{float(r('smd_threshold')):g}"
        n_bad = int(r("n_covariates_above_threshold_matched"))
        if n_bad == 0 and r("balanced"):
            return f"every covariate had an absolute SMD below {thr}"
        names = covariate_text(r("covariates_above_threshold_matched"))
        return (f"{fmt_int(n_bad)} covariate{'s' if n_bad != 1 else ''} ({names}) kept an absolute SMD of {thr} "
                f"or more")

    _collect(out, "balance", balance, missing)
    _collect(out, "imbalance_before", lambda: ("differed in baseline characteristics"
                                               if float(r("max_abs_smd_before")) >= float(r("smd_threshold"))
                                               else "were similar in baseline characteristics"), missing)
    return out


ENDPOINTS = (("os", "overall survival"), ("pfs_recist", "progression-free survival per RECIST 1.1"),
             ("pfs_mrecist", "progression-free survival per mRECIST"))
MAIN_COHORT = "matched"  # the primary comparison: the propensity-score-matched cohort


def _hr_text(r: _Reader, name: str, level: float) -> str:
    """'0.57 (95% CI 0.46–0.70)' from the keys name, name_lower, name_upper."""
    return est_ci_text(r(name), r(f"{name}_lower"), r(f"{name}_upper"), level)


def _hr_inline(r: _Reader, name: str, level: float) -> str:
    """'HR 0.57, 95% CI 0.46–0.70; P < 0.001', for use inside parentheses."""
    return (f"HR {tables.fmt_num(r(name), 2)}, {ci_text(r(f'{name}_lower'), r(f'{name}_upper'), level)}; "
            f"{p_text(r(f'{name}_p'))}")


def _endpoint_variables(r: _Reader, ep: str, label: str, params: dict[str, Any],
                        missing: list[str]) -> dict[str, Any]:
    """One endpoint (survival section, ``survival.flat_results`` keys): main (matched) cohort medians, events,
    rates at the timepoints, HR and P; the HRs of the other analyses; RMST; PH test; landmark."""
    sv = params.get("survival", {})
    level = float(sv.get("conf_level", 0.95))
    c = f"_{MAIN_COHORT}"
    out: dict[str, Any] = {"label": label}
    for tag, _arm in ARM_TAGS:
        _collect(out, f"events_{tag}", lambda t=tag: f"{fmt_int(r(f'{ep}_events_{t}{c}'))} of "
                                                     f"{fmt_int(r(f'{ep}_n_{t}{c}'))}", missing)
        _collect(out, f"median_{tag}", lambda t=tag: median_text(r(f"{ep}_median_{t}{c}"),
                                                                 r(f"{ep}_median_{t}{c}_lower"),
                                                                 r(f"{ep}_median_{t}{c}_upper"), level), missing)

        def rates(t: str = tag) -> str:
            parts = []
            for month in sv["timepoints_months"]:
                key = f"{ep}_{_time_key(month)}_{t}{c}"
                value = r(key)  # None: the curve ends before the timepoint
                parts.append(f"{'NE' if is_missing(value) else tables.fmt_num(100 * float(value), 1)}"
                             f"{'' if is_missing(value) else '%'} at {float(month):g} months")
            return human_list(parts)

        _collect(out, f"rates_{tag}", rates, missing)
    _collect(out, "hr", lambda: _hr_text(r, f"{ep}_hr_{MAIN_COHORT}", level), missing)
    _collect(out, "p", lambda: p_text(r(f"{ep}_hr_{MAIN_COHORT}_p")), missing)
    _collect(out, "hr_inline", lambda: _hr_inline(r, f"{ep}_hr_{MAIN_COHORT}", level), missing)
    _collect(out, "logrank_p", lambda: p_text(r(f"{ep}_logrank_p{c}")), missing)
    _collect(out, "association", lambda: _direction(
        r(f"{ep}_hr_{MAIN_COHORT}_lower"), r(f"{ep}_hr_{MAIN_COHORT}_upper"),
        f"was associated with longer {label}", f"was associated with shorter {label}",
        f"was not clearly associated with {label}"), missing)
    for model, name in (("unadj", "hr_unadj"), ("adj", "hr_adj"), ("iptw", "hr_iptw"), ("overlap", "hr_overlap"),
                        ("matched_strat", "hr_matched_strat"), ("landmark", "hr_landmark")):
        _collect(out, name, lambda m=model: _hr_text(r, f"{ep}_hr_{m}", level), missing)
    _collect(out, "ph_p", lambda: p_text(r(f"{ep}_ph_p_arm{c}")), missing)
    # the article quotes the RMST of OS; a PFS curve that ends before tau has none (the notebook says so)
    rmst_missing = missing if ep == "os" else []
    _collect(out, "rmst_tau", lambda: f"{float(r(f'{ep}_rmst_tau{c}')):g} months", rmst_missing)
    _collect(out, "rmst_comparison", lambda: _signed_months(r(f"{ep}_rmst_diff{c}"), r(f"{ep}_rmst_diff{c}_lower"),
                                                            r(f"{ep}_rmst_diff{c}_upper"), level), rmst_missing)
    _collect(out, "landmark_n", lambda: fmt_int(r(f"{ep}_landmark_n")), missing)
    return out


def _signed_months(diff: Any, lower: Any, upper: Any, level: float) -> str:
    """An RMST difference (HAIC-TKIs-P minus TKIs-P) as '2.1 months (95% CI 0.9–3.3) longer', or '... shorter'
    with the sign and the CI limits flipped when it is negative."""
    d, lo, hi = float(diff), float(lower), float(upper)
    if d < 0:
        d, lo, hi = -d, -hi, -lo
        word = "shorter"
    else:
        word = "longer"
    return f"{tables.fmt_num(d, 1)} months ({ci_text(lo, hi, level, 1)}) {word}"


def _conclusion(r: _Reader) -> str:
    """The survival finding of the abstract's conclusions, from the matched-cohort HR CIs: e.g. 'was associated
    with longer overall survival and progression-free survival (RECIST 1.1 and mRECIST)'."""
    def way(ep: str) -> str:
        return _direction(r(f"{ep}_hr_{MAIN_COHORT}_lower"), r(f"{ep}_hr_{MAIN_COHORT}_upper"),
                          "longer", "shorter", "unclear")

    groups: dict[str, list[str]] = {}
    groups.setdefault(way("os"), []).append("overall survival")
    pr, pm = way("pfs_recist"), way("pfs_mrecist")
    if pr == pm:
        groups.setdefault(pr, []).append("progression-free survival (RECIST 1.1 and mRECIST)")
    else:
        groups.setdefault(pr, []).append("progression-free survival per RECIST 1.1")
        groups.setdefault(pm, []).append("progression-free survival per mRECIST")
    clauses = [f"{w} {human_list(groups[w])}" for w in ("longer", "shorter") if w in groups]
    parts = [f"was associated with {' but '.join(clauses)}"] if clauses else []
    if "unclear" in groups:
        parts.append(f"was not clearly associated with {human_list(groups['unclear'])}")
    return " and ".join(parts)


def _time_key(t: float) -> str:
    """The timepoint suffix of ``survival.flat_results``: 12 -> '12m', 1.5 -> '1p5m'."""
    return f"{int(t)}m" if float(t).is_integer() else f"{t:g}m".replace(".", "p")


def _survival_variables(r: _Reader, params: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """Survival section (05_survival): one block per endpoint, follow-up, E-value."""
    level = float(params.get("survival", {}).get("conf_level", 0.95))
    out: dict[str, Any] = {ep: _endpoint_variables(r, ep, label, params, missing) for ep, label in ENDPOINTS}
    _collect(out, "conclusion", lambda: _conclusion(r), missing)
    _collect(out, "follow_up", lambda: median_text(r("median_follow_up"), r("median_follow_up_lower"),
                                                   r("median_follow_up_upper"), level), missing)
    _collect(out, "evalue", lambda: tables.fmt_num(r("os_evalue"), 2), missing)
    _collect(out, "evalue_ci", lambda: tables.fmt_num(r("os_evalue_ci"), 2), missing)
    return out


CRITERIA = (("recist", "RECIST 1.1"), ("mrecist", "mRECIST"))


def _rate_text(r: _Reader, key: str, level: float) -> str:
    """'215 of 360 (59.7%; 95% CI 54.5–64.8)' from a proportion, its CI and its denominator."""
    rate, n = float(r(key)), int(r(f"{key}_n"))
    return (f"{fmt_int(round(rate * n))} of {fmt_int(n)} ({fmt_pct(100 * rate)}; "
            f"{ci_text(100 * float(r(f'{key}_lower')), 100 * float(r(f'{key}_upper')), level, 1)})")


def _response_variables(r: _Reader, params: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """Response section (06_response): ORR and DCR per criterion in the matched cohort (primary definition), risk
    difference in percentage points (Newcombe), odds ratio, P; the same ORR in the full cohort and confirmed."""
    level = float(params.get("response", {}).get("conf_level", 0.95))
    out: dict[str, Any] = {}
    for crit, crit_label in CRITERIA:
        block: dict[str, Any] = {"label": crit_label}
        for ep in ("orr", "dcr"):
            base = f"{ep}_{crit}_{MAIN_COHORT}"
            for tag, _arm in ARM_TAGS:
                _collect(block, f"{ep}_{tag}", lambda b=base, t=tag: _rate_text(r, f"{b}_{t}", level), missing)
                _collect(block, f"{ep}_{tag}_full", lambda t=tag: _rate_text(r, f"{ep}_{crit}_{t}", level), missing)
                _collect(block, f"{ep}_{tag}_confirmed",
                         lambda t=tag: _rate_text(r, f"{ep}_{crit}_confirmed_{MAIN_COHORT}_{t}", level), missing)
            _collect(block, f"{ep}_rd", lambda b=base: (
                f"{tables.fmt_num(100 * float(r(f'{b}_rd')), 1)} percentage points "
                f"({ci_text(100 * float(r(f'{b}_rd_lower')), 100 * float(r(f'{b}_rd_upper')), level, 1)})"), missing)
            _collect(block, f"{ep}_or", lambda b=base: est_ci_text(r(f"{b}_or"), r(f"{b}_or_lower"),
                                                                   r(f"{b}_or_upper"), level), missing)
            _collect(block, f"{ep}_p", lambda b=base: p_text(r(f"{b}_or_p")), missing)
        out[crit] = block
    _collect(out, "kappa", lambda: est_ci_text(r("kappa_recist_mrecist"), r("kappa_recist_mrecist_lower"),
                                               r("kappa_recist_mrecist_upper"), level), missing)
    _collect(out, "denominator", lambda: str(r("denominator")), missing)
    return out
