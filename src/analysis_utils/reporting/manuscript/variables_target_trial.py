"""``target_trial`` block of ``_variables.yml``: the numbers and Methods phrases of the target-trial emulation
(notebook 03_target_trial, ``results.json`` section ``target_trial``) and of its params, formatted for reading.

Keys (all strings): the settings (``grace``, ``interval``, ``bootstrap``, ``ci_level``, ``truncation``,
``time_model``, ``covariates``, ``timepoints``, ``main_time``, ``tau``, ``lab_window``, ``scan_window``); the cohort at
time zero (``n_eligible``, ``n_haic_t0``, ``n_control_t0``, ``n_crossover_within``, ``n_crossover_after``,
``n_haic_first``, ``n_query``, ``n_complete``, ``n_ever_haic``); clones censored per strategy (``censored_haic``,
``censored_control``, ``censored_day0``); weights (``weight_max_haic``, ``weight_max_control``); and per endpoint
(``os``, ``pfs_recist``, ``pfs_mrecist``): survival per strategy at each timepoint (``s12m_haic``...) and at the main
(last) timepoint (``s_main_haic``, ``s_main_control``), differences (``sdiff12m``, ``sdiff_main``, in percentage
points with the CI; ``sdiff_main_short`` without), ratios, RMST per strategy and ``rmst_comparison`` ('2.7 months
(95% CI 1.8 to 4.1) longer'), ``hr``, the direction of the main difference (``direction``: 'higher', 'lower' or
'similar' survival with HAIC-TKIs-P), and the same main difference in the sensitivity analyses (``sdiff_main_naive``,
``_truncated``, ``_unweighted``, ``_complete``, ``_arm_t0``) and the naive HR (``hr_naive``); the multiple-imputation
analysis (``mi_m`` imputed data sets; per endpoint ``sdiff_main_mi`` and ``rmst_comparison_mi``, Rubin's rules CIs); ``truncation`` (the main
analysis' weights) and ``truncation_sensitivity`` (those of the truncated-weights sensitivity analysis).
Rules: docs/methods/target-trial.md.
"""
from __future__ import annotations

from typing import Any, Callable

from analysis_utils.reporting import tables
from analysis_utils.reporting.manuscript.text import (covariate_text, days_text, est_ci_text, fmt_int, human_list,
                                                      is_missing, level_text, months_list_text)
from analysis_utils.reporting.manuscript.values import Reader, collect

VARIABLES_KEY = "target_trial"  # quoted as {{< var target_trial.<key> >}} (manuscript/_target_trial_*.qmd)
RESULTS_SECTION = "target_trial"  # 03_target_trial's section of results.json
ENDPOINTS = ("os", "pfs_recist", "pfs_mrecist")
TAGS = ("haic", "control")
SENSITIVITY = (("naive", "naive"), ("truncated", "ccw_truncated"), ("unweighted", "ccw_unweighted"),
               ("complete", "ccw_complete"), ("arm_t0", "arm_t0"))
TIME_MODEL_TEXT = {"indicators": "one indicator per interval",
                   "quadratic": "a quadratic function with separate terms for the first and the last day"}


def _ordinal(x: float) -> str:
    if float(x) != int(x):
        return f"{x:g}th"
    n = int(x)
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _truncated_at(q: list[float] | tuple[float, float]) -> str:
    return f"truncated at the {_ordinal(100 * float(q[0]))} and {_ordinal(100 * float(q[1]))} percentiles"


def signed_ci(est: Any, lower: Any, upper: Any, level: float, digits: int, unit: str = "") -> str:
    """'15.6 percentage points (95% CI 9.0 to 26.1)': limits joined by 'to' (a dash would read as a minus sign when a
    limit is negative)."""
    if is_missing(est):
        raise ValueError("estimate is missing")
    u = f" {unit}" if unit else ""
    return (f"{tables.fmt_num(est, digits)}{u} ({level_text(level)} CI {tables.fmt_num(lower, digits)} to "
            f"{tables.fmt_num(upper, digits)})")


def longer_shorter(diff: Any, lower: Any, upper: Any, level: float) -> str:
    """An RMST difference (HAIC-TKIs-P minus TKIs-P) as '2.7 months (95% CI 1.8 to 4.1) longer', or '... shorter'
    with the sign and the limits flipped when it is negative."""
    d, lo, hi = float(diff), float(lower), float(upper)
    word = "longer"
    if d < 0:
        d, lo, hi, word = -d, -hi, -lo, "shorter"
    return f"{signed_ci(d, lo, hi, level, 1, 'months')} {word}"


def _direction(lower: Any, upper: Any) -> str:
    if is_missing(lower) or is_missing(upper):
        return "similar"
    return "higher" if float(lower) > 0 else "lower" if float(upper) < 0 else "similar"


LABELS = {"os": "overall survival", "pfs_recist": "progression-free survival per RECIST 1.1",
          "pfs_mrecist": "progression-free survival per mRECIST"}


def conclusion(r: Callable[[str], Any], endpoints: list[str], main: str) -> str:
    """'was associated with higher overall survival and progression-free survival per RECIST 1.1 and per mRECIST at
    24 months' (or 'lower', or 'was not clearly associated with ...'), from the CIs of the main differences."""
    groups: dict[str, list[str]] = {}
    for ep in endpoints:
        way = _direction(r(f"{ep}_sdiff{main}_lower"), r(f"{ep}_sdiff{main}_upper"))
        groups.setdefault(way, []).append(LABELS[ep])
    both_pfs = [LABELS["pfs_recist"], LABELS["pfs_mrecist"]]
    for labels in groups.values():  # one phrase when both PFS criteria point the same way
        if all(label in labels for label in both_pfs):
            labels[labels.index(both_pfs[0])] = "progression-free survival per RECIST 1.1 and per mRECIST"
            labels.remove(both_pfs[1])
    parts = [f"was associated with {way} {human_list(groups[way])}" for way in ("higher", "lower") if way in groups]
    if "similar" in groups:
        parts.append(f"was not clearly associated with {human_list(groups['similar'])}")
    return " and ".join(parts) + f" at {main[:-1]} months"


def _pct(r: Callable[[str], Any], key: str, level: float) -> str:
    return (f"{tables.fmt_num(100 * float(r(key)), 1)}% ({level_text(level)} CI "
            f"{tables.fmt_num(100 * float(r(key + '_lower')), 1)}–{tables.fmt_num(100 * float(r(key + '_upper')), 1)})")


def _pp(r: Callable[[str], Any], key: str, level: float) -> str:
    return signed_ci(100 * float(r(key)), 100 * float(r(key + "_lower")), 100 * float(r(key + "_upper")), level, 1,
                     "percentage points")


def variables(r: Reader, params: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """The ``target_trial`` block (module docstring). ``r`` reads the results section (KeyError when absent);
    ``collect(out, name, make, missing)`` records a variable or why it could not be built."""
    tp = params.get("target_trial", {})
    cl = params.get("cleaning", {})
    level = float(tp.get("conf_level", 0.95))
    months = [float(m) for m in tp.get("timepoints_months", [12, 24])]
    main = f"{max(months):g}m"
    out: dict[str, Any] = {}
    if tp:
        out.update({"grace": days_text(tp.get("grace_days", 90)), "interval": days_text(tp.get("interval_days", 7)),
                    "bootstrap": fmt_int(tp.get("bootstrap", 200)), "ci_level": level_text(level),
                    "time_model": TIME_MODEL_TEXT.get(str(tp.get("time_model")), str(tp.get("time_model"))),
                    "covariates": covariate_text(tp.get("covariates", [])), "timepoints": months_list_text(months),
                    "main_time": f"{max(months):g} months", "tau": f"{float(tp.get('rmst_tau_months', 24)):g} months",
                    "centre": ("centre" if tp.get("centre", "fixed") == "fixed" else "no centre term")})
        q = tp.get("truncate_quantiles")
        out["truncation"] = "not truncated" if q is None else _truncated_at(q)
        q = tp.get("truncate_quantiles_sensitivity", [0.01, 0.99])
        if q is None:
            missing.append("truncation_sensitivity: target_trial.truncate_quantiles_sensitivity is null (the "
                           "truncated-weights sensitivity analysis was not run)")
        else:
            out["truncation_sensitivity"] = _truncated_at(q)
    if cl:
        out["scan_window"] = days_text(cl.get("baseline_imaging_window_days", 42))
        out["lab_window"] = days_text(cl.get("baseline_lab_window_days", 30))
        after = int(cl.get("baseline_imaging_after_days", 0))
        out["scan_rule"] = (f"the last within {out['scan_window']} before time zero"
                            + (f", or the first within {days_text(after)} after it" if after > 0 else ""))
    for name, key in (("n_eligible", "n_eligible"), ("n_haic_t0", "n_haic_t0"), ("n_control_t0", "n_control_t0"),
                      ("n_crossover_within", "n_crossover_within_grace"),
                      ("n_crossover_after", "n_crossover_after_grace"), ("n_haic_first", "n_haic_first_component"),
                      ("n_query", "n_eligibility_query"), ("n_complete", "n_complete_eligibility"),
                      ("n_ever_haic", "n_ever_haic")):
        collect(out, name, lambda k=key: fmt_int(r(k)), missing)
    for tag in TAGS:
        collect(out, f"censored_{tag}", lambda t=tag: f"{fmt_int(r(f'os_censored_{t}'))} of "
                                                      f"{fmt_int(r(f'os_clones_{t}'))}", missing)
        collect(out, f"weight_max_{tag}", lambda t=tag: tables.fmt_num(r(f"weight_max_{t}"), 2), missing)
    collect(out, "mi_m", lambda: fmt_int(r("mi_m")), missing)
    collect(out, "censored_day0", lambda: fmt_int(r("os_censored_day0_control")), missing)
    try:
        endpoints = [e for e in r("endpoints") if e in ENDPOINTS]
    except KeyError:
        endpoints = list(ENDPOINTS)
    for ep in endpoints:
        block: dict[str, Any] = {}
        for m in months:
            k = f"{m:g}m"
            for tag in TAGS:
                collect(block, f"s{k}_{tag}", lambda kk=k, t=tag: _pct(r, f"{ep}_s{kk}_{t}", level), [])
            collect(block, f"sdiff{k}", lambda kk=k: _pp(r, f"{ep}_sdiff{kk}", level), [])
            collect(block, f"sratio{k}", lambda kk=k: est_ci_text(r(f"{ep}_sratio{kk}"), r(f"{ep}_sratio{kk}_lower"),
                                                                  r(f"{ep}_sratio{kk}_upper"), level), [])
        for tag in TAGS:
            collect(block, f"s_main_{tag}", lambda t=tag: _pct(r, f"{ep}_s{main}_{t}", level), missing)
            collect(block, f"rmst_{tag}", lambda t=tag: signed_ci(r(f"{ep}_rmst_{t}"), r(f"{ep}_rmst_{t}_lower"),
                                                                   r(f"{ep}_rmst_{t}_upper"), level, 1, "months"), [])
        collect(block, "sdiff_main", lambda: _pp(r, f"{ep}_sdiff{main}", level), missing)
        collect(block, "sdiff_main_short", lambda: f"{tables.fmt_num(100 * float(r(f'{ep}_sdiff{main}')), 1)} "
                                                   "percentage points", missing)
        collect(block, "direction", lambda: _direction(r(f"{ep}_sdiff{main}_lower"), r(f"{ep}_sdiff{main}_upper")),
                missing)
        collect(block, "rmst_comparison", lambda: longer_shorter(r(f"{ep}_rmst_diff"), r(f"{ep}_rmst_diff_lower"),
                                                                 r(f"{ep}_rmst_diff_upper"), level), missing)
        collect(block, "hr", lambda: est_ci_text(r(f"{ep}_hr"), r(f"{ep}_hr_lower"), r(f"{ep}_hr_upper"), level),
                missing)
        for name, key in SENSITIVITY:
            collect(block, f"sdiff_main_{name}", lambda k=key: signed_ci(
                100 * float(r(f"{k}_{ep}_sdiff_{max(months):g}")), 100 * float(r(f"{k}_{ep}_sdiff_{max(months):g}_lower")),
                100 * float(r(f"{k}_{ep}_sdiff_{max(months):g}_upper")), level, 1, "percentage points"), missing)
        collect(block, "sdiff_main_mi", lambda: _pp(r, f"mi_{ep}_sdiff{main}", level), missing)
        collect(block, "rmst_comparison_mi", lambda: longer_shorter(r(f"mi_{ep}_rmst_diff"),
                                                                    r(f"mi_{ep}_rmst_diff_lower"),
                                                                    r(f"mi_{ep}_rmst_diff_upper"), level), missing)
        collect(block, "hr_naive", lambda: est_ci_text(r(f"naive_{ep}_hr"), r(f"naive_{ep}_hr_lower"),
                                                      r(f"naive_{ep}_hr_upper"), level), missing)
        out[ep] = block
    collect(out, "conclusion", lambda: conclusion(r, endpoints, main), missing)
    collect(out, "endpoints", lambda: human_list(LABELS[e] for e in r("endpoints") if e in LABELS), missing)
    return out
