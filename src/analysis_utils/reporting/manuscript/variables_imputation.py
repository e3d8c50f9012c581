"""``_variables.yml`` block ``imputation``: the missing-data and centre numbers the article quotes, formatted from
results.json (sections ``imputation`` of 02_missing_data and the ``mi_``, ``cc_``, ``ind_``, ``centre_`` keys that
04-06 add to ``matching``, ``survival`` and ``response``) and the params of the run. Found by
``values.topic_modules``; quoted as ``{{< var imputation.<key> >}}`` by ``manuscript/_missing-data.qmd``,
``manuscript/_missing-data-results.qmd`` and the Methods. Method: docs/methods/missing-data.md,
docs/methods/multicentre.md.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from analysis_utils.reporting import tables
from analysis_utils.reporting.manuscript.text import (ci_text, est_ci_text, fmt_int, fmt_pct, human_list, p_text)
from analysis_utils.reporting.manuscript.values import Reader, collect

__all__ = ["RESULTS_SECTION", "VARIABLES_KEY", "build", "variables"]

VARIABLES_KEY = "imputation"  # quoted as {{< var imputation.<key> >}}
RESULTS_SECTION = "imputation"  # 02_missing_data's section; the mi_/cc_/centre_ keys of 04-06 from the whole results

PS_MODE_TEXT = {"none": "Centre did not enter the propensity model",
                "fixed_effect": "Centre entered the propensity model as a fixed effect (one indicator per centre)",
                "exact": "Patients were matched within centre, and centre entered the propensity model as a fixed "
                         "effect for the weights"}
SCENARIO_TEXT = {"ecog": "ECOG performance status", "child_pugh": "the Child-Pugh component points"}


def _get(results: dict[str, Any], section: str) -> Callable[[str], Any]:
    values = results.get(section, {})

    def read(key: str) -> Any:
        if key not in values or values[key] is None:
            raise KeyError(f"{section}.{key}")
        return values[key]
    return read


_put = partial(collect, prefix="imputation.", keep_none=True)  # the variable, or why it is missing


def _inline(read: Callable[[str], Any], key: str, level: float, label: str = "HR", digits: int = 2) -> str:
    return (f"{label} {tables.fmt_num(read(key), digits)}, {ci_text(read(f'{key}_lower'), read(f'{key}_upper'), level)}; "
            f"{p_text(read(f'{key}_p'))}")


def _tipping_text(read: Callable[[str], Any], scenarios: list[str], level: float) -> str:
    """One clause per scenario: whether and at which delta the matched OS CI changes side of 1."""
    main_sig = bool(read("mi_tipping_main_significant"))
    parts = []
    for s in scenarios:
        label = SCENARIO_TEXT.get(s, s)
        at_max = est_ci_text(read(f"mi_tipping_{s}_hr_at_max"), read(f"mi_tipping_{s}_lower_at_max"),
                             read(f"mi_tipping_{s}_upper_at_max"), level)
        try:
            delta = read(f"mi_tipping_{s}_delta")
            parts.append(f"the confidence interval {'included' if main_sig else 'excluded'} 1 once {label} "
                         f"{'was' if s == 'ecog' else 'were'} imputed worse by {delta:g} on the log-odds scale per "
                         "category")
        except KeyError:
            parts.append(f"the confidence interval {'still excluded' if main_sig else 'still included'} 1 with "
                         f"{label} imputed worse by up to {read(f'mi_tipping_{s}_max_delta'):g} on the log-odds "
                         f"scale per category (HR {at_max})")
    return "; ".join(parts)


def build(results: dict[str, Any], params: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """The ``imputation`` block (empty when the run did not impute)."""
    imp = _get(results, "imputation")
    sv, mt, rs = _get(results, "survival"), _get(results, "matching"), _get(results, "response")
    ip, cp = params.get("imputation", {}), params.get("centres", {})
    level = float(params.get("survival", {}).get("conf_level", 0.95))
    out: dict[str, Any] = {}
    if not results.get("imputation", {}).get("enabled", False):
        return out
    _put(out, "m", lambda: fmt_int(imp("m")), missing)
    _put(out, "maxit", lambda: fmt_int(imp("maxit")), missing)
    _put(out, "donors", lambda: fmt_int(imp("donors")), missing)
    _put(out, "n_any_missing", lambda: f"{fmt_int(imp('n_patients_any_missing'))} of {fmt_int(imp('n_cohort'))} "
         f"({fmt_pct(100 * imp('n_patients_any_missing') / imp('n_cohort'))})", missing)
    _put(out, "n_complete_cases", lambda: fmt_int(imp("n_complete_cases")), missing)
    _put(out, "missing_ecog", lambda: f"{fmt_int(imp('n_missing_ecog'))} ({fmt_pct(imp('pct_missing_ecog'))})",
         missing)
    _put(out, "missing_child_pugh", lambda: f"{fmt_int(imp('n_missing_child_pugh_class'))} "
         f"({fmt_pct(imp('pct_missing_child_pugh_class'))})", missing)
    _put(out, "ps_missing", lambda: (
        f"missing covariate values were multiply imputed ({fmt_int(imp('m'))} imputed data sets), and the "
        "propensity model, matching, weighting and balance check were repeated in "
        "every imputed data set"), missing)
    out["centre_ps"] = PS_MODE_TEXT.get(str(cp.get("ps_model", "none")), str(cp.get("ps_model")))
    out["tipping_deltas"] = human_list(f"{float(d):g}" for d in ip.get("tipping_point", {}).get("deltas", []))
    for ep in ("os", "pfs_recist", "pfs_mrecist"):
        for coh in ("matched", "iptw", "adjusted"):
            key = f"mi_{ep}_hr_{coh}"
            _put(out, f"{ep}_hr_{coh}", lambda k=key: est_ci_text(sv(k), sv(f"{k}_lower"), sv(f"{k}_upper"), level),
                 [] if coh == "adjusted" and ep != "os" else missing)
            _put(out, f"{ep}_hr_{coh}_inline", lambda k=key: _inline(sv, k, level), [])
            _put(out, f"{ep}_fmi_{coh}", lambda k=key: tables.fmt_num(sv(f"{k}_fmi"), 2), [])
        for design in ("cc", "ind"):
            key = f"{design}_{ep}_hr_matched"
            _put(out, f"{ep}_hr_matched_{design}", lambda k=key: est_ci_text(sv(k), sv(f"{k}_lower"),
                                                                             sv(f"{k}_upper"), level), missing)
    _put(out, "os_p_matched", lambda: p_text(sv("mi_os_hr_matched_p")), missing)
    _put(out, "os_rmst_matched", lambda: est_ci_text(sv("mi_os_rmst_diff_matched"), sv("mi_os_rmst_diff_matched_lower"),
                                                     sv("mi_os_rmst_diff_matched_upper"), level, 1) + " months",
         missing)
    _put(out, "n_pairs", lambda: (f"{tables.fmt_num(mt('mi_n_pairs_mean'), 0)} (range {fmt_int(mt('mi_n_pairs_min'))}"
                                  f" to {fmt_int(mt('mi_n_pairs_max'))})"), missing)
    _put(out, "max_smd_matched", lambda: tables.fmt_num(mt("mi_max_mean_abs_smd_matched"), 3), missing)
    _put(out, "cc_n", lambda: fmt_int(mt("cc_n_ps_model")), missing)
    _put(out, "cc_n_pairs", lambda: fmt_int(mt("cc_n_pairs")), missing)
    for crit in ("recist", "mrecist"):
        key = f"mi_orr_{crit}_matched_or"
        _put(out, f"orr_{crit}_or_matched", lambda k=key: est_ci_text(rs(k), rs(f"{k}_lower"), rs(f"{k}_upper"),
                                                                      level), missing)
    scenarios = list(ip.get("tipping_point", {}).get("variables", {}))
    _put(out, "tipping", lambda: _tipping_text(sv, scenarios, level), missing)
    _put(out, "os_hr_strat_centre", lambda: est_ci_text(sv("mi_os_hr_matched_strat_centre"),
                                                        sv("mi_os_hr_matched_strat_centre_lower"),
                                                        sv("mi_os_hr_matched_strat_centre_upper"), level), missing)
    _put(out, "os_hr_cluster_centre", lambda: est_ci_text(sv("mi_os_hr_matched_cluster_centre"),
                                                          sv("mi_os_hr_matched_cluster_centre_lower"),
                                                          sv("mi_os_hr_matched_cluster_centre_upper"), level), missing)
    _put(out, "loco_range", lambda: (f"{tables.fmt_num(sv('mi_os_hr_loco_min'), 2)} (without "
                                     f"{sv('mi_os_hr_loco_min_centre')}) to {tables.fmt_num(sv('mi_os_hr_loco_max'), 2)}"
                                     f" (without {sv('mi_os_hr_loco_max_centre')})"), missing)
    _put(out, "forest_summary", lambda: est_ci_text(sv("centre_forest_hr"), sv("centre_forest_lower"),
                                                    sv("centre_forest_upper"), level), missing)
    _put(out, "forest_i2", lambda: f"{tables.fmt_num(sv('centre_forest_i2'), 0)}%", missing)
    _put(out, "forest_tau2", lambda: tables.fmt_num(sv("centre_forest_tau2"), 3), missing)
    _put(out, "forest_k", lambda: fmt_int(sv("centre_forest_k")), missing)
    _put(out, "forest_q_p", lambda: p_text(sv("centre_forest_q_p")), missing)
    out["meta_method"] = {"REML": "restricted maximum likelihood", "DL": "the DerSimonian-Laird estimator"}.get(
        str(cp.get("meta_method", "REML")), str(cp.get("meta_method")))
    return out


def variables(r: Reader, params: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """The topic interface (:mod:`analysis_utils.reporting.manuscript.values`): :func:`build` of the whole
    results.json."""
    return build(r.results, params, missing)
