"""``_variables.yml`` block ``outcomes``: the numbers and Methods phrases of the manuscript include files
``manuscript/_outcomes_methods.qmd``, ``_outcomes_results.qmd`` and ``_outcomes_supplement.qmd`` (issue 14: PFS
rules, competing risks, duration of response, evaluation-time bias, exposure-adjusted safety, the testing hierarchy,
paired data). Read from the ``progression``, ``multiplicity``, ``survival``, ``response`` and ``safety`` sections of
results.json and from the params of the run; every value is formatted for reading
(:mod:`analysis_utils.reporting.manuscript.text`)."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from analysis_utils.reporting import tables
from analysis_utils.reporting.manuscript.text import (ci_text, days_text, est_ci_text, fmt_int, human_list,
                                                      median_text, months_list_text, p_text)
from analysis_utils.reporting.manuscript.values import Reader, collect

VARIABLES_KEY = "outcomes"  # quoted as {{< var outcomes.<key> >}} (manuscript/_outcomes_*.qmd)
RESULTS_SECTION = "progression"  # 05_survival's progression section; the others are read from the whole results

ARMS = (("haic", "HAIC-TKIs-P"), ("control", "TKIs-P"))
CRITERIA = (("recist", "RECIST 1.1"), ("mrecist", "mRECIST"))
HYPOTHESIS_TEXT = {"os": "overall survival", "pfs_recist": "PFS per RECIST 1.1", "pfs_mrecist": "PFS per mRECIST",
                   "orr_recist": "the ORR per RECIST 1.1", "orr_mrecist": "the ORR per mRECIST",
                   "dcr_recist": "the DCR per RECIST 1.1", "dcr_mrecist": "the DCR per mRECIST"}
CIF_MONTHS = 12  # the timepoint of the cumulative incidences quoted in the text (one of survival.timepoints_months)
NUMBER_WORDS = {0: "no", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven"}


class _Sections:
    """Reads ``section.key`` from results.json; a missing key raises KeyError('section.key')."""

    def __init__(self, results: dict[str, Any]):
        self.results = results

    def __call__(self, section: str, key: str) -> Any:
        values = self.results.get(section, {})
        if key not in values or values[key] is None:
            raise KeyError(f"{section}.{key}")
        return values[key]

    def value(self, section: str, key: str) -> Any:
        """The value, ``None`` included (a median or CI limit not reached); KeyError only when the key is absent."""
        values = self.results.get(section, {})
        if key not in values:
            raise KeyError(f"{section}.{key}")
        return values[key]


_put = partial(collect, prefix="outcomes.", keep_none=True)  # the variable, or why it is missing


def _pct_ci(r: _Sections, section: str, key: str, level: float) -> str:
    """'24.9% (95% CI 20.4–29.6)' from a proportion and its limits."""
    return (f"{tables.fmt_num(100 * float(r(section, key)), 1)}% "
            f"({ci_text(100 * float(r(section, key + '_lower')), 100 * float(r(section, key + '_upper')), level, 1)})")


def _schedule_text(schedule: list[dict[str, Any]]) -> str:
    """[{every_days: 42, until_day: 336}, {every_days: 84}] -> 'every 42 days up to day 336, then every 84 days'."""
    parts = []
    for block in schedule:
        part = f"every {int(block['every_days'])} days"
        if block.get("until_day") is not None:
            part += f" up to day {int(block['until_day'])}"
        parts.append(part)
    return ", then ".join(parts)


def _methods(params: dict[str, Any]) -> dict[str, Any]:
    pf, sv, mt, sf = (params.get(k, {}) for k in ("pfs_rules", "survival", "multiplicity", "safety"))
    out: dict[str, Any] = {}
    if pf:
        schedule = pf.get("schedule", [{"every_days": 42, "until_day": 336}, {"every_days": 84}])
        out["pfs_schedule"] = _schedule_text(schedule)
        out["pfs_window"] = days_text(pf.get("visit_window_days", 7))
        k = int(pf.get("missed_assessments", 2))
        out["pfs_missed"] = NUMBER_WORDS.get(k, str(k))
        out["pfs_first_window"] = days_text(int(schedule[0]["every_days"]) + int(pf.get("visit_window_days", 7)))
        out["pfs_new_therapy"] = {"primary": "in the main analysis",
                                  "sensitivity": "in a sensitivity analysis",
                                  "none": "in no analysis"}[str(pf.get("new_anticancer_therapy", "sensitivity"))]
    if sv:
        out["bootstrap_n"] = fmt_int(sv.get("bootstrap_replicates", 2000))
        out["cif_times"] = months_list_text(sv["timepoints_months"])
        out["cif_time"] = f"{CIF_MONTHS} months"
    if mt:
        out["hierarchy"] = ", then ".join(HYPOTHESIS_TEXT[h] for h in mt["hierarchy"])
        out["alpha"] = tables.fmt_num(float(mt["alpha"]), 2)
    if sf:
        out["common_schedule"] = days_text(sf.get("common_schedule_days", 21))
        out["lab_draws_months"] = f"{float(sf.get('lab_draws_months', 6)):g} months"
        out["g3_cif_times"] = months_list_text(sf.get("cif_timepoints_months", [3, 6, 12, 24]))
        out["g3_cif_time"] = f"{CIF_MONTHS} months"
    return out


def _hierarchy(r: _Sections, out: dict[str, Any], missing: list[str]) -> None:
    def summary() -> str:
        order = r("multiplicity", "hierarchy")
        rejected = [HYPOTHESIS_TEXT[h] for h in order if r("multiplicity", f"{h}_rejected")]
        stopped = [HYPOTHESIS_TEXT[h] for h in order if r("multiplicity", f"{h}_tested")
                   and not r("multiplicity", f"{h}_rejected")]
        untested = [HYPOTHESIS_TEXT[h] for h in order if not r("multiplicity", f"{h}_tested")]
        if len(rejected) == len(order):
            return f"all {NUMBER_WORDS.get(len(order), len(order))} hypotheses were rejected ({human_list(rejected)})"
        # "no difference", not "null": the manuscript check reads a bare "null" as an unformatted value
        text = (f"the hypothes{'is' if len(rejected) == 1 else 'es'} of no difference in {human_list(rejected)} "
                f"{'was' if len(rejected) == 1 else 'were'} rejected" if rejected else "no hypothesis was rejected")
        if stopped:
            text += f"; the one for {stopped[0]} was not, so the sequence stopped there"
        if untested:
            text += f" and {human_list(untested)} {'was' if len(untested) == 1 else 'were'} not tested"
        return text

    _put(out, "hierarchy_result", summary, missing)
    for h in HYPOTHESIS_TEXT:
        if f"{h}_p" in r.results.get("multiplicity", {}):
            _put(out, f"{h}_hierarchy_p", lambda h=h: p_text(r("multiplicity", f"{h}_p")), missing)


def _progression(r: _Sections, out: dict[str, Any], level: float, missing: list[str]) -> None:
    for crit, _label in CRITERIA:
        block: dict[str, Any] = {}
        for tag, arm in ARMS:
            _put(block, f"censored_missed_{tag}",
                 lambda t=tag: fmt_int(r("progression", f"pfs_{crit}_main_rule_censor_missed_{t}")), missing)
            _put(block, f"ttp_cif_{tag}", lambda t=tag: _pct_ci(r, "progression", f"ttp_{crit}_cif_{CIF_MONTHS}m_{t}", level),
                 missing)
            _put(block, f"death_cif_{tag}",
                 lambda t=tag: _pct_ci(r, "progression", f"death_{crit}_cif_{CIF_MONTHS}m_{t}", level), missing)
            _put(block, f"dor_{tag}", lambda t=tag: median_text(r.value("progression", f"dor_{crit}_median_{t}"),
                                                                r.value("progression", f"dor_{crit}_median_{t}_lower"),
                                                                r.value("progression", f"dor_{crit}_median_{t}_upper"),
                                                                level), missing)  # None: not reached
            _put(block, f"dor_n_{tag}", lambda t=tag: fmt_int(r("progression", f"dor_{crit}_n_{t}")), missing)
        _put(block, "ttp_gray_p", lambda: p_text(r("progression", f"ttp_{crit}_gray_p")), missing)
        _put(block, "death_gray_p", lambda: p_text(r("progression", f"death_{crit}_gray_p")), missing)
        for cause in ("ttp", "death"):
            _put(block, f"{cause}_cs_hr", lambda c=cause: est_ci_text(
                r("progression", f"{c}_{crit}_cs_hr"), r("progression", f"{c}_{crit}_cs_hr_lower"),
                r("progression", f"{c}_{crit}_cs_hr_upper"), level), missing)
        for defn in ("allevents", "newtx"):
            _put(block, f"hr_{defn}", lambda d=defn: est_ci_text(
                r("progression", f"pfs_{crit}_{d}_hr_matched"), r("progression", f"pfs_{crit}_{d}_hr_matched_lower"),
                r("progression", f"pfs_{crit}_{d}_hr_matched_upper"), level), missing)
        _put(block, "ic_midpoint_hr", lambda: est_ci_text(
            r("progression", f"ic_{crit}_midpoint_hr"), r("progression", f"ic_{crit}_midpoint_hr_lower"),
            r("progression", f"ic_{crit}_midpoint_hr_upper"), level), missing)
        _put(block, "rmst_paired", lambda: (
            f"{tables.fmt_num(r('survival', f'pfs_{crit}_rmst_diff_matched'), 1)} months "
            f"({ci_text(r('survival', f'pfs_{crit}_rmst_diff_matched_paired_lower'), r('survival', f'pfs_{crit}_rmst_diff_matched_paired_upper'), level, 1)})"),
             [])  # not quoted by the article; absent when a PFS curve ends before tau (RMST not estimable)
        out[crit] = block
    for tag, arm in ARMS:
        _put(out, f"first_scan_{tag}", lambda t=tag: f"{tables.fmt_num(r('progression', f'imaging_first_scan_days_{t}'), 0)} days",
             missing)
        _put(out, f"scan_interval_{tag}", lambda t=tag: f"{tables.fmt_num(r('progression', f'imaging_interval_days_{t}'), 1)} days",
             missing)
    _put(out, "scan_interval_p", lambda: p_text(r("progression", "imaging_interval_days_p")), missing)
    _put(out, "os_robust_p", lambda: p_text(r("survival", "os_robust_score_p_matched")), missing)
    _put(out, "os_rmst_paired", lambda: (
        f"{tables.fmt_num(r('survival', 'os_rmst_diff_matched'), 1)} months "
        f"({ci_text(r('survival', 'os_rmst_diff_matched_paired_lower'), r('survival', 'os_rmst_diff_matched_paired_upper'), level, 1)})"),
         missing)


def _safety(r: _Sections, out: dict[str, Any], level: float, missing: list[str]) -> None:
    for tag, _arm in ARMS:
        _put(out, f"g3_eair_{tag}", lambda t=tag: (
            f"{tables.fmt_num(r('safety', f'g3_eair_{t}'), 1)} per 100 patient-years "
            f"({ci_text(r('safety', f'g3_eair_{t}_lower'), r('safety', f'g3_eair_{t}_upper'), level, 1)})"), missing)
        _put(out, f"g3_cif_{tag}", lambda t=tag: _pct_ci(r, "safety", f"g3_cif_{CIF_MONTHS}m_{t}", level), missing)
        _put(out, f"platelet_draws_{tag}", lambda t=tag: tables.fmt_num(r("safety", f"platelet_draws_median_{t}"), 0),
             missing)
        for short in ("all", "common"):
            _put(out, f"plt_g3_{short}_{tag}", lambda t=tag, s=short: (
                f"{fmt_int(r('safety', f'plt_g3_{s}_{t}_n'))} "
                f"({tables.fmt_num(r('safety', f'plt_g3_{s}_{t}_pct'), 1)}%)"), missing)
    _put(out, "g3_rate_ratio", lambda: (est_ci_text(r("safety", "g3_rate_ratio"), r("safety", "g3_rate_ratio_lower"),
                                                    r("safety", "g3_rate_ratio_upper"), level)
                                        + f", {p_text(r('safety', 'g3_rate_ratio_p'))}"), missing)
    _put(out, "g3_gray_p", lambda: p_text(r("safety", "g3_gray_p")), missing)
    for short in ("all", "common"):
        _put(out, f"plt_g3_{short}_p", lambda s=short: p_text(r("safety", f"plt_g3_{s}_p")), missing)
    for tag, _arm in ARMS:
        _put(out, f"related_{tag}", lambda t=tag: f"{fmt_int(r('safety', f'related_{t}_n'))} "
                                                  f"({tables.fmt_num(r('safety', f'related_{t}_pct'), 1)}%)", missing)
        _put(out, f"attr_missing_{tag}", lambda t=tag: f"{fmt_int(r('safety', f'attr_missing_{t}_n'))} "
                                                       f"({tables.fmt_num(r('safety', f'attr_missing_{t}_pct'), 1)}%)",
             missing)


def outcomes_variables(results: dict[str, Any], params: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """The ``outcomes`` block: ``methods`` (phrases from the params) and the results of issue 14's analyses."""
    r = _Sections(results)
    level = float(params.get("survival", {}).get("conf_level", 0.95))
    out: dict[str, Any] = {"methods": _methods(params)}
    if "multiplicity" in results:
        _hierarchy(r, out, missing)
    if "progression" in results:
        _progression(r, out, level, missing)
    if "safety" in results:
        _safety(r, out, float(params.get("safety", {}).get("conf_level", 0.95)), missing)
    return out


def variables(r: Reader, params: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """The topic interface (:mod:`analysis_utils.reporting.manuscript.values`): :func:`outcomes_variables` of the
    whole results.json."""
    return outcomes_variables(r.results, params, missing)
