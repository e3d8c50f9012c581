"""Every manuscript variable of the cohort, matching, survival, response, safety and target-trial blocks comes from
its own results.json key, arm order included (issue 18: "HAIC and control medians swapped for every endpoint, and
the mRECIST PFS HR taken from the RECIST one, pass all manuscript tests").

A results.json is built by hand in which every key holds a value of its own (no two keys share a printed value;
``test_every_results_value_is_distinct`` guards that), so a variable read from the wrong key (the other arm, the
other criterion, the other cohort, a CI limit for the estimate) prints a value the expectation does not have. The
expectations are written here, independently of the package: the variable's path, the results key(s) it must be
read from and the text it must print, formatted with plain f-strings (95% CIs, en dash between the limits, one
decimal for months and percentages, two for ratios, three for P values). The set of variables produced must equal
the set specified: a new variable without an expectation here fails too, so it gets one.

The public entry point is used (``variables_report`` on a run folder with results.json, run_manifest.json and
tables/flow.csv); no pipeline run, well under a second.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from analysis_utils.reporting import manuscript as ms

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("cleaning", "matching", "survival", "response", "safety", "target_trial")
BLOCKS = ("cohort", "matching", "survival", "response", "safety", "target_trial")  # top-level keys of _variables.yml
ENDPOINTS = ("os", "pfs_recist", "pfs_mrecist")
ARMS = ("haic", "control")
SURVIVAL_MONTHS = [6, 12, 18, 24]
TT_MONTHS = [12, 24]
DASH = "\u2013"


def _ci(lower: float, upper: float, digits: int) -> str:
    return f"95% CI {lower:.{digits}f}{DASH}{upper:.{digits}f}"


class HandRun:
    """results.json under construction plus the expected variables.

    Each helper names the results key(s) a variable must be read from, stores a value there (given, or the next of a
    counter, so that every key holds a different value) and returns the text the variable must print."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
        self.expected: dict[str, str] = {}
        self._i = 0

    # values --------------------------------------------------------------------------------------------------
    def _next(self) -> int:
        self._i += 1
        return self._i

    def put(self, section: str, key: str, value: Any = None, kind: str = "ratio") -> Any:
        """Store ``value`` (or a fresh distinct one of ``kind``) under ``section.key``; a key named twice keeps its
        first value (several variables may read one key, e.g. the HR and the inline HR)."""
        values = self.results[section]
        if key in values:
            return values[key]
        taken = set(v for v in values.values() if isinstance(v, (int, float))) | HAND_VALUES if value is None else ()
        while value is None or value in taken:  # a fresh value, unlike any other of the section
            i = self._next()
            value = {"count": 100 + i, "ratio": round(0.2 + i / 100, 2), "months": round(1 + i / 10, 1),
                     "p": round(0.001 + i / 1000, 3), "prop": round(i / 1000, 3), "pct": round(i / 10, 1),
                     "smd": round(i / 1000, 3)}[kind]
        values[key] = value
        return value

    def expect(self, path: str, text: str) -> None:
        assert path not in self.expected, f"{path} specified twice"
        self.expected[path] = text

    # formats, each naming its keys ---------------------------------------------------------------------------
    def triple(self, section: str, key: str, kind: str, given: tuple | None = None) -> tuple:
        """key_lower, key, key_upper (in that order of the counter, so lower < estimate < upper)."""
        lo, est, hi = given or (None, None, None)
        lo = self.put(section, f"{key}_lower", lo, kind)
        est = self.put(section, key, est, kind)
        hi = self.put(section, f"{key}_upper", hi, kind)
        return est, lo, hi

    def count(self, section: str, key: str, value: int | None = None) -> str:
        return f"{self.put(section, key, value, 'count'):,}"

    def p(self, section: str, key: str, value: float | None = None) -> str:
        return f"P = {self.put(section, key, value, 'p'):.3f}"

    def est(self, section: str, key: str, given: tuple | None = None, digits: int = 2) -> str:
        est, lo, hi = self.triple(section, key, "ratio", given)
        return f"{est:.{digits}f} ({_ci(lo, hi, digits)})"

    def median(self, section: str, key: str, given: tuple | None = None) -> str:
        est, lo, hi = self.triple(section, key, "months", given)
        return f"{est:.1f} months ({_ci(lo, hi, 1)})"


# ------------------------------------------------------------------------------------------------ the hand run
FLOW = [("duplicate_record", "Duplicate record (same patient exported twice)", 7),
        ("hcc_not_confirmed", "HCC not confirmed by radiology, histology or cytology", 31),
        ("no_combination", "No TKI/anti-VEGF plus PD-1/PD-L1 combination", 26),
        ("no_measurable_intrahepatic", "No measurable intrahepatic lesion with repeat imaging", 67),
        ("child_pugh_c", "Child-Pugh class C", 0)]


def _cohort(h: HandRun) -> None:
    s = "cleaning"
    for key in ("n_screened", "n_centers", "n_excluded", "n_analysed", "n_haic", "n_control", "n_os_events",
                "haic_after_index_n", "n_quality_entries"):
        h.expect(f"cohort.{key}", h.count(s, key))
    h.put(s, "pct_haic", 40.52)
    h.expect("cohort.pct_haic", "40.5%")
    h.expect("cohort.pct_control", "59.5%")  # 100 - 40.52
    h.put(s, "index_date_min", "2023-02-03")
    h.put(s, "index_date_max", "2024-11-05")
    h.expect("cohort.index_from", "February 2023")
    h.expect("cohort.index_to", "November 2024")
    h.put(s, "exclusions", {k: n for k, _label, n in FLOW})
    # the three largest, largest first, with the labels of tables/flow.csv (first letter lower-cased unless the first
    # word is an acronym)
    h.expect("cohort.top_exclusions", "no measurable intrahepatic lesion with repeat imaging (n = 67), HCC not "
                                      "confirmed by radiology, histology or cytology (n = 31), and no TKI/anti-VEGF "
                                      "plus PD-1/PD-L1 combination (n = 26)")
    h.expect("cohort.criteria", "; ".join(["duplicate record (same patient exported twice)",
                                           "HCC not confirmed by radiology, histology or cytology",
                                           "no TKI/anti-VEGF plus PD-1/PD-L1 combination",
                                           "no measurable intrahepatic lesion with repeat imaging",
                                           "Child-Pugh class C"]))


def _matching(h: HandRun) -> None:
    s = "matching"
    for var, key in (("n_pairs", "n_pairs"), ("n_haic_before", "n_treated_before"),
                     ("n_control_before", "n_control_before"), ("n_haic_matched", "n_treated_matched"),
                     ("n_control_matched", "n_control_matched"), ("n_haic_unmatched", "n_treated_unmatched"),
                     ("n_control_unmatched", "n_control_unmatched"), ("n_ps_model", "n_ps_model")):
        h.expect(f"matching.{var}", h.count(s, key))
    treated, matched = h.results[s]["n_treated_before"], h.results[s]["n_treated_matched"]
    h.expect("matching.pct_haic_matched", f"{100 * matched / treated:.1f}%")
    h.expect("matching.caliper_raw", f"{h.put(s, 'caliper_raw', kind='smd'):.3f}")
    h.put(s, "smd_threshold", 0.1)
    for var, key in (("max_smd_before", "max_abs_smd_before"), ("max_smd_matched", "max_abs_smd_matched"),
                     ("max_smd_iptw", "max_abs_smd_iptw_ate"), ("max_smd_overlap", "max_abs_smd_overlap")):
        value = {"max_abs_smd_before": 0.347}.get(key)
        h.expect(f"matching.{var}", f"{h.put(s, key, value, 'smd'):.3f}")
    for var, key in (("ess_iptw_haic", "ess_iptw_ate_treated"), ("ess_iptw_control", "ess_iptw_ate_control")):
        h.expect(f"matching.{var}", f"{h.put(s, key, kind='months'):.1f}")
    h.put(s, "n_covariates_above_threshold_matched", 2)
    h.put(s, "balanced", False)
    h.put(s, "covariates_above_threshold_matched", ["albi_score", "ecog"])
    h.expect("matching.balance", "2 covariates (ALBI score and ECOG performance status) kept an absolute SMD of 0.1 "
                                 "or more")
    h.expect("matching.imbalance_before", "differed in baseline characteristics")  # 0.347 >= 0.1


# the main (matched-cohort) HRs: OS and RECIST PFS below 1, mRECIST PFS across 1, so the conclusion tells them apart
MAIN_HR = {"os": (0.51, 0.61, 0.71), "pfs_recist": (0.62, 0.72, 0.92), "pfs_mrecist": (0.73, 0.83, 1.13)}
MEDIANS = {("os", "haic"): (10.1, 11.1, 12.1), ("os", "control"): (21.2, 22.2, 23.2),
           ("pfs_recist", "haic"): (5.3, 6.3, 7.3), ("pfs_recist", "control"): (3.4, 4.4, 5.4),
           ("pfs_mrecist", "haic"): (7.5, 8.5, 9.5), ("pfs_mrecist", "control"): (2.6, 3.6, 4.6)}
RMST_DIFF = {"os": (0.9, 2.1, 3.3), "pfs_recist": (0.2, 1.4, 2.7), "pfs_mrecist": (-2.0, -1.2, -0.4)}
RMST_TAU = {"os": 24, "pfs_recist": 18.5, "pfs_mrecist": 12.25}
LABELS = {"os": "overall survival", "pfs_recist": "progression-free survival per RECIST 1.1",
          "pfs_mrecist": "progression-free survival per mRECIST"}


def _survival(h: HandRun) -> None:
    s = "survival"
    for ep in ENDPOINTS:
        v = f"survival.{ep}"
        h.expect(f"{v}.label", LABELS[ep])
        for arm in ARMS:
            h.expect(f"{v}.events_{arm}", f"{h.count(s, f'{ep}_events_{arm}_matched')} of "
                                          f"{h.count(s, f'{ep}_n_{arm}_matched')}")
            h.expect(f"{v}.median_{arm}", h.median(s, f"{ep}_median_{arm}_matched", MEDIANS[ep, arm]))
            rates = [f"{100 * h.put(s, f'{ep}_{m}m_{arm}_matched', kind='prop'):.1f}% at {m} months"
                     for m in SURVIVAL_MONTHS]
            h.expect(f"{v}.rates_{arm}", ", ".join(rates[:-1]) + f", and {rates[-1]}")
        h.expect(f"{v}.hr", h.est(s, f"{ep}_hr_matched", MAIN_HR[ep]))
        lo, est, hi = MAIN_HR[ep]
        h.expect(f"{v}.p", h.p(s, f"{ep}_hr_matched_p"))
        h.expect(f"{v}.hr_inline", f"HR {est:.2f}, {_ci(lo, hi, 2)}; {h.p(s, f'{ep}_hr_matched_p')}")
        h.expect(f"{v}.logrank_p", h.p(s, f"{ep}_logrank_p_matched"))
        h.expect(f"{v}.association", f"was associated with longer {LABELS[ep]}" if hi < 1
                 else f"was not clearly associated with {LABELS[ep]}")
        for model in ("unadj", "adj", "iptw", "overlap", "matched_strat", "landmark"):
            h.expect(f"{v}.hr_{model}", h.est(s, f"{ep}_hr_{model}"))
        h.expect(f"{v}.ph_p", h.p(s, f"{ep}_ph_p_arm_matched"))
        h.expect(f"{v}.rmst_tau", f"{h.put(s, f'{ep}_rmst_tau_matched', RMST_TAU[ep]):g} months")
        d, dlo, dhi = h.triple(s, f"{ep}_rmst_diff_matched", "months", RMST_DIFF[ep])
        h.expect(f"{v}.rmst_comparison", f"{d:.1f} months ({_ci(dlo, dhi, 1)}) longer" if d > 0 else
                 f"{-d:.1f} months ({_ci(-dhi, -dlo, 1)}) shorter")
        h.expect(f"{v}.landmark_n", h.count(s, f"{ep}_landmark_n"))
    h.expect("survival.conclusion", "was associated with longer overall survival and progression-free survival per "
                                    "RECIST 1.1 and was not clearly associated with progression-free survival per "
                                    "mRECIST")
    h.expect("survival.follow_up", h.median(s, "median_follow_up"))
    h.expect("survival.evalue", f"{h.put(s, 'os_evalue', 2.34):.2f}")
    h.expect("survival.evalue_ci", f"{h.put(s, 'os_evalue_ci', 1.56):.2f}")


def _rate(h: HandRun, section: str, key: str) -> str:
    """'x of n (p%; 95% CI l–u)' from key (a proportion), key_n, key_lower, key_upper."""
    rate, lo, hi = (h.put(section, k, kind="prop") for k in (key, f"{key}_lower", f"{key}_upper"))
    n = h.put(section, f"{key}_n", kind="count")
    return f"{round(rate * n):,} of {n:,} ({100 * rate:.1f}%; {_ci(100 * lo, 100 * hi, 1)})"


def _response(h: HandRun) -> None:
    s = "response"
    for crit, label in (("recist", "RECIST 1.1"), ("mrecist", "mRECIST")):
        v = f"response.{crit}"
        h.expect(f"{v}.label", label)
        for ep in ("orr", "dcr"):
            for arm in ARMS:
                h.expect(f"{v}.{ep}_{arm}", _rate(h, s, f"{ep}_{crit}_matched_{arm}"))
                h.expect(f"{v}.{ep}_{arm}_full", _rate(h, s, f"{ep}_{crit}_{arm}"))
                h.expect(f"{v}.{ep}_{arm}_confirmed", _rate(h, s, f"{ep}_{crit}_confirmed_matched_{arm}"))
            rd, lo, hi = h.triple(s, f"{ep}_{crit}_matched_rd", "prop")
            h.expect(f"{v}.{ep}_rd", f"{100 * rd:.1f} percentage points ({_ci(100 * lo, 100 * hi, 1)})")
            h.expect(f"{v}.{ep}_or", h.est(s, f"{ep}_{crit}_matched_or"))
            h.expect(f"{v}.{ep}_p", h.p(s, f"{ep}_{crit}_matched_or_p"))
    h.expect("response.kappa", h.est(s, "kappa_recist_mrecist", (0.61, 0.66, 0.71)))
    h.expect("response.denominator", h.put(s, "denominator", "patients with a baseline and a follow-up scan"))


def _safety(h: HandRun) -> None:
    s = "safety"
    g3 = {"g3_haic_pct": 71.3, "g3_control_pct": 49.9, "g3_p": 0.004}
    for suffix, block in (("", "full"), ("_matched", "matched")):
        for row in ("any", "g3", "related", "related_g3", "serious", "discontinued", "g5"):
            for arm in ARMS:
                n = h.count(s, f"{row}_{arm}_n{suffix}")
                pct = h.put(s, f"{row}_{arm}_pct{suffix}", g3.get(f"{row}_{arm}_pct{suffix}"), "pct")
                h.expect(f"safety.{block}.{row}.{arm}", f"{n} ({pct:.1f}%)")
            h.expect(f"safety.{block}.{row}.p", h.p(s, f"{row}_p{suffix}", g3.get(f"{row}_p{suffix}")))
    h.put(s, "window_days", 35)
    h.expect("safety.window", "35 days (5 weeks)")
    h.expect("safety.g3_comparison", "at the cost of more frequent grade ≥3 adverse events")  # P 0.004, 71.3 > 49.9
    h.put(s, "top_terms", ["Diarrhoea", "AST increased", "Fatigue", "Rash"])
    h.expect("safety.top_terms", "diarrhoea, AST increased, and fatigue")
    h.expect("safety.n_events", h.count(s, "n_events"))


TT_PARAMS = {"grace_days": 84, "interval_days": 14, "bootstrap": 123, "conf_level": 0.95,
             "time_model": "quadratic", "covariates": ["age", "ecog", "albi_score"], "timepoints_months": TT_MONTHS,
             "rmst_tau_months": 18, "centre": "fixed", "truncate_quantiles": [0.02, 0.98],
             "truncate_quantiles_sensitivity": [0.05, 0.95]}
# main (24-month) survival differences, in the cloned-and-weighted analysis: OS above 0, PFS RECIST across 0, mRECIST
# below 0
TT_SDIFF = {"os": (0.051, 0.102, 0.153), "pfs_recist": (-0.031, 0.022, 0.073), "pfs_mrecist": (-0.144, -0.094, -0.044)}
# every value given by hand in this file, which the counter must not hand out again
HAND_VALUES = ({x for d in (MAIN_HR, MEDIANS, RMST_DIFF, TT_SDIFF) for t in d.values() for x in t}
               | set(RMST_TAU.values()) | {71.3, 49.9, 0.004, 0.61, 0.66, 0.71, 2.34, 1.56, 0.347, 40.52})


def _pp(lo: float, est: float, hi: float, unit: str = "percentage points", scale: float = 100) -> str:
    return f"{scale * est:.1f} {unit} (95% CI {scale * lo:.1f} to {scale * hi:.1f})"


def _target_trial(h: HandRun) -> None:
    s, v = "target_trial", "target_trial"
    for var, text in (("grace", "84 days (12 weeks)"), ("interval", "14 days (2 weeks)"), ("bootstrap", "123"),
                      ("ci_level", "95%"), ("time_model", "a quadratic function with separate terms for the first "
                                                          "and the last day"),
                      ("covariates", "age, ECOG performance status, and ALBI score"),
                      ("timepoints", "12 and 24 months"), ("main_time", "24 months"), ("tau", "18 months"),
                      ("centre", "centre"), ("truncation", "truncated at the 2nd and 98th percentiles"),
                      ("truncation_sensitivity", "truncated at the 5th and 95th percentiles"),
                      ("scan_window", "42 days (6 weeks)"), ("lab_window", "30 days"),
                      ("scan_rule", "the last within 42 days (6 weeks) before time zero")):
        h.expect(f"{v}.{var}", text)
    for var, key in (("n_eligible", "n_eligible"), ("n_haic_t0", "n_haic_t0"), ("n_control_t0", "n_control_t0"),
                     ("n_crossover_within", "n_crossover_within_grace"),
                     ("n_crossover_after", "n_crossover_after_grace"), ("n_haic_first", "n_haic_first_component"),
                     ("n_query", "n_eligibility_query"), ("n_complete", "n_complete_eligibility"),
                     ("n_ever_haic", "n_ever_haic")):
        h.expect(f"{v}.{var}", h.count(s, key))
    for arm in ARMS:
        h.expect(f"{v}.censored_{arm}", f"{h.count(s, f'os_censored_{arm}')} of {h.count(s, f'os_clones_{arm}')}")
        h.expect(f"{v}.weight_max_{arm}", f"{h.put(s, f'weight_max_{arm}', kind='ratio'):.2f}")
    h.expect(f"{v}.censored_day0", h.count(s, "os_censored_day0_control"))
    h.expect(f"{v}.mi_m", h.count(s, "mi_m"))
    h.put(s, "endpoints", list(ENDPOINTS))
    for ep in ENDPOINTS:
        b = f"{v}.{ep}"
        for m in TT_MONTHS:
            for arm in ARMS:
                est, lo, hi = h.triple(s, f"{ep}_s{m}m_{arm}", "prop")
                h.expect(f"{b}.s{m}m_{arm}", f"{100 * est:.1f}% ({_ci(100 * lo, 100 * hi, 1)})")
                if m == max(TT_MONTHS):
                    h.expect(f"{b}.s_main_{arm}", f"{100 * est:.1f}% ({_ci(100 * lo, 100 * hi, 1)})")
            given = TT_SDIFF[ep] if m == max(TT_MONTHS) else None
            est, lo, hi = h.triple(s, f"{ep}_sdiff{m}m", "prop", given)
            h.expect(f"{b}.sdiff{m}m", _pp(lo, est, hi))
            h.expect(f"{b}.sratio{m}m", h.est(s, f"{ep}_sratio{m}m"))
        lo, est, hi = TT_SDIFF[ep]
        h.expect(f"{b}.sdiff_main", _pp(lo, est, hi))
        h.expect(f"{b}.sdiff_main_short", f"{100 * est:.1f} percentage points")
        h.expect(f"{b}.direction", {"os": "higher", "pfs_recist": "similar", "pfs_mrecist": "lower"}[ep])
        for arm in ARMS:
            est, lo, hi = h.triple(s, f"{ep}_rmst_{arm}", "months")
            h.expect(f"{b}.rmst_{arm}", _pp(lo, est, hi, "months", 1))
        d, dlo, dhi = h.triple(s, f"{ep}_rmst_diff", "months", RMST_DIFF[ep])
        h.expect(f"{b}.rmst_comparison", _pp(dlo, d, dhi, "months", 1) + " longer" if d > 0
                 else _pp(-dhi, -d, -dlo, "months", 1) + " shorter")
        h.expect(f"{b}.hr", h.est(s, f"{ep}_hr"))
        for name, key in (("naive", "naive"), ("truncated", "ccw_truncated"), ("unweighted", "ccw_unweighted"),
                          ("complete", "ccw_complete"), ("arm_t0", "arm_t0")):
            est, lo, hi = h.triple(s, f"{key}_{ep}_sdiff_24", "prop")
            h.expect(f"{b}.sdiff_main_{name}", _pp(lo, est, hi))
        h.expect(f"{b}.hr_naive", h.est(s, f"naive_{ep}_hr"))
        est, lo, hi = h.triple(s, f"mi_{ep}_sdiff24m", "prop")
        h.expect(f"{b}.sdiff_main_mi", _pp(lo, est, hi))
        d, dlo, dhi = h.triple(s, f"mi_{ep}_rmst_diff", "months")
        h.expect(f"{b}.rmst_comparison_mi", _pp(dlo, d, dhi, "months", 1) + " longer" if d > 0
                 else _pp(-dhi, -d, -dlo, "months", 1) + " shorter")
    h.expect(f"{v}.conclusion", "was associated with higher overall survival and was associated with lower "
                                "progression-free survival per mRECIST and was not clearly associated with "
                                "progression-free survival per RECIST 1.1 at 24 months")
    h.expect(f"{v}.endpoints", "overall survival, progression-free survival per RECIST 1.1, and progression-free "
                               "survival per mRECIST")


def _params() -> dict[str, Any]:
    """params/default.yaml with the settings the expectations depend on fixed here."""
    params = yaml.safe_load((ROOT / "params" / "default.yaml").read_text(encoding="utf-8"))
    params["survival"].update({"conf_level": 0.95, "timepoints_months": SURVIVAL_MONTHS})
    params["response"]["conf_level"] = 0.95
    params["safety"]["conf_level"] = 0.95
    params["cleaning"].update({"baseline_imaging_window_days": 42, "baseline_imaging_after_days": 0,
                               "baseline_lab_window_days": 30})
    params["target_trial"] = dict(TT_PARAMS)
    return params


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[HandRun, Path]:
    h = HandRun()
    for build in (_cohort, _matching, _survival, _response, _safety, _target_trial):
        build(h)
    out = tmp_path_factory.mktemp("hand_run")
    (out / "results.json").write_text(json.dumps(h.results, indent=1), encoding="utf-8")
    manifest = {"run_name": "hand", "params_file": "params/hand.yaml", "params": _params(), "seed": 1,
                "git": {"commit": "0" * 40, "dirty": False}, "versions": {}, "input_sha256": {}, "notebooks": []}
    (out / "run_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (out / "tables").mkdir()
    flow = ["step,criterion,label,n", "screened,,Records screened,1000"]
    flow += [f'excluded,{k},"{label}",{n}' for k, label, n in FLOW] + ["analysed,,Patients analysed,900"]
    (out / "tables" / "flow.csv").write_text("\n".join(flow) + "\n", encoding="utf-8")
    return h, out


def _leaves(tree: dict[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}"
        out.update(_leaves(value, path) if isinstance(value, dict) else {path: value})
    return out


def test_every_results_value_is_distinct(hand_run):
    """The premise of the mapping test: no two numeric keys of a section hold the same value, so a variable read
    from a wrong key cannot print the right text by chance."""
    h, _ = hand_run
    for section, values in h.results.items():
        numbers = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        seen: dict[Any, str] = {}
        clashes = [(k, seen[v]) for k, v in numbers.items() if v in seen or seen.setdefault(v, k) != k]
        assert not clashes, f"{section}: keys sharing a value {clashes}"


def test_every_variable_reads_its_own_results_key(hand_run):
    h, out = hand_run
    variables, missing = ms.variables_report(out)
    produced = {}
    for block in BLOCKS:
        assert block in variables, f"no '{block}' block: {missing}"
        produced.update(_leaves(variables[block], block))
    wrong = {p: (produced[p], want) for p, want in h.expected.items() if p in produced and produced[p] != want}
    assert not wrong, "variables not read from their own key (got, expected):\n" + "\n".join(
        f"  {p}: {got!r}\n  {' ' * len(p)}  {want!r}" for p, (got, want) in sorted(wrong.items()))
    assert not sorted(set(h.expected) - set(produced)), f"expected but not produced; missing log: {missing}"
    assert not sorted(set(produced) - set(h.expected)), "produced without an expectation in this test"
    ours = [m for m in missing if any(f" {s}." in m for s in SECTIONS) or m.startswith(BLOCKS)]
    assert not ours, ours


def test_headline_values_by_hand(hand_run):
    """The numbers of the abstract, spelled out: HAIC median OS 11.1 months, control 22.2; the mRECIST PFS HR 0.83,
    not the RECIST one (0.72)."""
    _, out = hand_run
    v = ms.build_variables(out)["survival"]
    assert v["os"]["median_haic"] == "11.1 months (95% CI 10.1–12.1)"
    assert v["os"]["median_control"] == "22.2 months (95% CI 21.2–23.2)"
    assert v["pfs_recist"]["hr"] == "0.72 (95% CI 0.62–0.92)"
    assert v["pfs_mrecist"]["hr"] == "0.83 (95% CI 0.73–1.13)"
    assert v["pfs_mrecist"]["median_haic"].startswith("8.5 months")
