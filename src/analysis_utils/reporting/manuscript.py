"""The Quarto manuscript: every number of the article comes from a pipeline run, none is typed by hand.

How numbers get in (Quarto manuscript project, ``_quarto.yml`` at the project root):

- ``build_variables(out)`` reads ``<out>/results.json`` (one section per notebook) and ``<out>/run_manifest.json``
  (params actually used, versions, commit, seed, input checksums) and returns nested, *formatted* strings: counts with
  thousands separators, percentages to one decimal, HRs to two decimals with their CI, P as "P = 0.046" or
  "P < 0.001" (``tables.fmt_p``), medians "not reached" / "NR" (``tables.NOT_REACHED``), dates in words. Methods prose
  pieces (covariate list, caliper and its scale, matching order, CI transform, ...) are generated from the params.
- ``prepare(out, root)`` writes them to ``<root>/_variables.yml``, which Quarto reads for the ``{{< var key >}}``
  shortcode (quarto.org/docs/authoring/variables.html: the file sits beside ``_quarto.yml``), and copies the run's
  executed notebooks, figures (PNG) and Markdown pipe tables into ``manuscript/_generated/`` (git-ignored; files
  starting with ``_`` are not rendered by Quarto on their own). Tables are included as pipe tables, not rich HTML
  (conventions: rich HTML tables are dropped in manuscript projects, quarto-cli #14176).
- ``render(root, out)`` runs ``quarto render`` when Quarto is on the PATH and copies ``_manuscript/`` into
  ``<out>/manuscript/``; otherwise it says what was prepared and how to render.
- ``check_references(root)`` lists every shortcode, include, embed, image, cross-reference label and citation key
  that does not resolve, every variable value that is not formatted for reading, and every number typed by hand in
  the article's prose (``hand_typed_numbers``). The tests use it; so can authors before rendering.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from analysis_utils.reporting import tables

VARIABLES_FILE = "_variables.yml"
QUARTO_CONFIG = "_quarto.yml"
ARTICLE_DIR = "manuscript"
GENERATED_DIR = "manuscript/_generated"
QUARTO_OUTPUT_DIR = "_manuscript"  # the manuscript project type's default output-dir
DAYS_PER_MONTH = 30.4375
DASH = "\u2013"  # en dash for ranges, as journals print them

# Readable names of the covariates in running text (Methods); tables keep tables.COVARIATE_LABELS.
PROSE_LABELS = {
    "age": "age", "sex": "sex", "etiology": "aetiology", "ecog": "ECOG performance status",
    "child_pugh_class": "Child-Pugh class", "child_pugh_score": "Child-Pugh score", "albi_grade": "ALBI grade",
    "albi_score": "ALBI score", "bclc_stage": "BCLC stage", "tumour_number": "number of tumours",
    "multiple_tumours": "multiple tumours", "max_tumour_size_cm": "largest tumour diameter",
    "mvi": "macrovascular invasion", "vp_grade": "portal vein tumour thrombus grade", "vp4": "Vp4 thrombus",
    "ehs": "extrahepatic spread", "afp": "AFP", "afp_ge_400": "AFP of 400 ng/mL or more", "log10_afp": "log AFP",
    "pivka_ii": "PIVKA-II", "tki_agent": "TKI or anti-VEGF agent", "pd1_agent": "PD-1/PD-L1 inhibitor",
    "center_id": "centre",
}
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


# --------------------------------------------------------------------------------------------------- formatting
def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_int(n: Any) -> str:
    """A count with a thousands separator: 1050 -> '1,050'."""
    if _missing(n):
        raise ValueError("fmt_int: count is missing")
    return f"{int(round(float(n))):,}"


def fmt_pct(x: Any, digits: int = 1) -> str:
    """A percentage already on the 0-100 scale: 40.525 -> '40.5%'."""
    if _missing(x):
        raise ValueError("fmt_pct: percentage is missing")
    return f"{tables.fmt_num(float(x), digits)}%"


def fmt_count_pct(n: Any, pct: Any, digits: int = 1) -> str:
    """'253 (71.3%)' from a count and its percentage (0-100)."""
    return f"{fmt_int(n)} ({fmt_pct(pct, digits)})"


def p_text(p: Any) -> str:
    """'P = 0.046' or 'P < 0.001' (``tables.fmt_p`` thresholds), for running text."""
    if _missing(p):
        return "P not estimable"
    s = tables.fmt_p(float(p))
    return f"P {s[0]} {s[1:]}" if s.startswith("<") else f"P = {s}"


def level_text(conf_level: float) -> str:
    """0.95 -> '95%'."""
    pct = 100 * float(conf_level)
    return f"{pct:.0f}%" if float(pct).is_integer() else f"{pct:g}%"


def ci_text(lower: Any, upper: Any, conf_level: float = 0.95, digits: int = 2) -> str:
    """'95% CI 0.50–0.77'; a limit that is not reached prints as 'NR'."""
    return (f"{level_text(conf_level)} CI {tables.fmt_num(lower, digits)}{DASH}"
            f"{tables.fmt_num(upper, digits)}")


def est_ci_text(est: Any, lower: Any, upper: Any, conf_level: float = 0.95, digits: int = 2) -> str:
    """'0.62 (95% CI 0.50–0.77)'."""
    if _missing(est):
        raise ValueError("est_ci_text: estimate is missing")
    return f"{tables.fmt_num(est, digits)} ({ci_text(lower, upper, conf_level, digits)})"


def median_text(median: Any, lower: Any, upper: Any, conf_level: float = 0.95, unit: str = "months") -> str:
    """'14.2 months (95% CI 12.0–16.9)'; 'not reached (95% CI 20.1–NR)' when the KM curve stays above 0.5."""
    head = "not reached" if _missing(median) else f"{tables.fmt_num(median, 1)} {unit}"
    return f"{head} ({ci_text(lower, upper, conf_level, 1)})"


def human_list(items: Iterable[str], conjunction: str = "and") -> str:
    """'a', 'a and b', 'a, b, and c' (serial comma, AMA style)."""
    xs = [str(x) for x in items]
    if len(xs) <= 2:
        return f" {conjunction} ".join(xs)
    return ", ".join(xs[:-1]) + f", {conjunction} {xs[-1]}"


def date_text(iso: Any, day: bool = True) -> str:
    """'2025-09-30' -> 'September 30, 2025' (or 'September 2025' with ``day=False``)."""
    d = date.fromisoformat(str(iso)[:10])
    return f"{d.strftime('%B')} {d.day}, {d.year}" if day else f"{d.strftime('%B')} {d.year}"


def days_text(days: Any) -> str:
    """A window in days as read in Methods: 42 -> '42 days (6 weeks)', 730 -> '730 days (about 24 months)'."""
    d = int(days)
    if d % 7 == 0 and d <= 98:
        w = d // 7
        return f"{d} days ({w} week{'s' if w != 1 else ''})"
    months = d / DAYS_PER_MONTH
    if d >= 60:
        return f"{d} days (about {round(months)} months)"
    return f"{d} days"


def covariate_text(names: Iterable[str]) -> str:
    """The covariate list of a model as running text (``PROSE_LABELS``, else the column name)."""
    return human_list(PROSE_LABELS.get(n, n.replace("_", " ")) for n in names)


def months_list_text(values: Iterable[float]) -> str:
    """[6, 12, 18, 24] -> '6, 12, 18, and 24 months'."""
    return human_list(f"{v:g}" for v in values) + " months"


# --------------------------------------------------------------------------------------------------- variables
@dataclass
class _Reader:
    """Reads one results section; a missing key raises KeyError('<section>.<key>'), which ``_collect`` records."""
    section: str
    values: dict[str, Any]

    def __call__(self, key: str) -> Any:
        if key not in self.values:
            raise KeyError(f"{self.section}.{key}")
        return self.values[key]


def _collect(out: dict[str, Any], name: str, make: Callable[[], Any], missing: list[str]) -> None:
    """Set ``out[name] = make()``, or record which results key was missing (the variable is then left out)."""
    try:
        value = make()
    except KeyError as exc:
        missing.append(f"{name}: results key {exc.args[0]} not found")
        return
    except (TypeError, ValueError) as exc:
        missing.append(f"{name}: {exc}")
        return
    if value is not None:
        out[name] = value


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


ARM_TAGS = (("haic", "HAIC-TKIs-P"), ("control", "TKIs-P"))
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
    safety. A section whose results are absent is left out, and so is any variable whose results key is missing;
    ``variables_report`` says which (``check_references`` then reports the unresolved ``{{< var >}}``)."""
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
    builders: dict[str, tuple[str, Callable[..., dict[str, Any]]]] = {
        "cohort": ("cleaning", lambda r: _cohort_variables(r, flow_labels, missing)),
        "matching": ("matching", lambda r: _matching_variables(r, params, missing)),
        "survival": ("survival", lambda r: _survival_variables(r, params, missing)),
        "response": ("response", lambda r: _response_variables(r, params, missing)),
        "safety": ("safety", lambda r: _safety_variables(r, missing, _alpha(params))),
    }
    for name, (section, build) in builders.items():
        if section not in results:
            missing.append(f"{name}: results.json has no '{section}' section")
            continue
        block = build(_Reader(section, results[section]))
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
    if _missing(lower) or _missing(upper):
        return neither
    return below if float(upper) < 1 else above if float(lower) > 1 else neither


def _matching_variables(r: _Reader, params: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """Matching section (02_matching, ``matching.run_matching`` summary): counts, caliper, balance, ESS."""
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
                parts.append(f"{tables.fmt_num(100 * float(r(key)), 1, 'NE')}% at {float(month):g} months")
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
    for model, name in (("unadj", "hr_unadj"), ("adj", "hr_adj"), ("iptw", "hr_iptw"),
                        ("matched_strat", "hr_matched_strat"), ("landmark", "hr_landmark")):
        _collect(out, name, lambda m=model: _hr_text(r, f"{ep}_hr_{m}", level), missing)
    _collect(out, "ph_p", lambda: p_text(r(f"{ep}_ph_p_arm{c}")), missing)
    _collect(out, "rmst_tau", lambda: f"{float(r(f'{ep}_rmst_tau{c}')):g} months", missing)
    _collect(out, "rmst_comparison", lambda: _signed_months(r(f"{ep}_rmst_diff{c}"), r(f"{ep}_rmst_diff{c}_lower"),
                                                            r(f"{ep}_rmst_diff{c}_upper"), level), missing)
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
    """Survival section (03_survival): one block per endpoint, follow-up, E-value."""
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
    """Response section (04_response): ORR and DCR per criterion in the matched cohort (primary definition), risk
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


# --------------------------------------------------------------------------------------------------- prepare
REDACTED_PARAMS = ("pseudonym_key",)  # never published: with it, study IDs could be recomputed from MRNs


@dataclass
class Prepared:
    """What ``prepare`` wrote: the variables file, the generated folder and its contents, unresolved variables."""
    variables_file: Path
    generated_dir: Path
    notebooks: list[str]
    figures: list[str]
    tables: list[str]
    missing: list[str]
    n_values: int

    def summary(self) -> str:
        lines = [f"  variables  {self.variables_file} ({self.n_values} values)",
                 f"  generated  {self.generated_dir}/ ({len(self.notebooks)} executed notebooks, "
                 f"{len(self.figures)} figures, {len(self.tables)} tables)"]
        if self.missing:
            lines.append(f"  {len(self.missing)} variable(s) could not be built from this run:")
            lines += [f"    - {m}" for m in self.missing]
        return "\n".join(lines)


def _count_values(d: Any) -> int:
    return sum(_count_values(v) for v in d.values()) if isinstance(d, dict) else 1


def _executed_notebooks(out: Path) -> list[Path]:
    """The run's executed notebooks: ``<out>/notebooks/NN_*.ipynb`` (the runner), else ``<out>/NN_*.ipynb``."""
    found = sorted((out / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return found or sorted(out.glob("[0-9][0-9]_*.ipynb"))


def _write_run_files(manifest: dict[str, Any], folder: Path) -> list[str]:
    """Supplement pieces from the manifest: versions and input checksums as pipe tables, the params as YAML."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    versions = manifest.get("versions", {})
    (folder / "versions.md").write_text(tables.to_markdown(pd.DataFrame(
        {"Software": list(versions), "Version": [str(v) for v in versions.values()]})), encoding="utf-8")
    sha = manifest.get("input_sha256", {})
    (folder / "inputs.md").write_text(tables.to_markdown(pd.DataFrame(
        {"Input file": list(sha), "SHA-256": [f"`{v}`" for v in sha.values()]})), encoding="utf-8")
    params = {k: ("<redacted>" if k in REDACTED_PARAMS else v) for k, v in manifest["params"].items()}
    text = yaml.safe_dump(params, sort_keys=False, allow_unicode=True, width=100)
    (folder / "params.md").write_text(f"```yaml\n{text}```\n", encoding="utf-8")
    return ["run/versions.md", "run/inputs.md", "run/params.md"]


def prepare(out_dir: str | Path, root: str | Path | None = None) -> Prepared:
    """Make the manuscript project under ``root`` point at one run: write ``<root>/_variables.yml`` and refresh
    ``<root>/manuscript/_generated/`` (executed notebooks, figures, Markdown tables, run manifest pieces).

    ``root`` defaults to the project root; tests pass a temporary copy of the project tree. The generated folder is
    emptied first, so nothing from an earlier run survives."""
    from analysis_utils.study.project import project_root

    out = Path(out_dir)
    root = Path(root) if root is not None else project_root()
    if not (root / QUARTO_CONFIG).is_file():
        raise FileNotFoundError(f"{root / QUARTO_CONFIG}: not a Quarto project root")
    variables, missing = variables_report(out)
    manifest = json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))
    var_file = root / VARIABLES_FILE
    header = (f"# Generated by analysis_utils.manuscript.prepare from {out} -- do not edit by hand;\n"
              f"# re-run the pipeline or `python -m analysis_utils manuscript` instead.\n")
    var_file.write_text(header + yaml.safe_dump(variables, sort_keys=True, allow_unicode=True, width=1000),
                        encoding="utf-8")
    gen = root / GENERATED_DIR
    if gen.exists():
        shutil.rmtree(gen)
    copied: dict[str, list[str]] = {"notebooks": [], "figures": [], "tables": []}
    for nb in _executed_notebooks(out):
        _copy(nb, gen / "notebooks" / nb.name)
        copied["notebooks"].append(nb.name)
    for f in sorted((out / "figures").glob("*")):
        if f.suffix in (".png", ".svg"):
            _copy(f, gen / "figures" / f.name)
            if f.suffix == ".png":
                copied["figures"].append(f.name)
    for f in sorted((out / "tables").glob("*.md")):
        _copy(f, gen / "tables" / f.name)
        copied["tables"].append(f.name)
    copied["tables"] += _write_run_files(manifest, gen / "run")
    return Prepared(var_file, gen, copied["notebooks"], copied["figures"], copied["tables"], missing,
                    _count_values(variables))


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


# --------------------------------------------------------------------------------------------------- render
@dataclass
class RenderOutcome:
    rendered: bool
    message: str
    output_dir: Path | None = None


def _params_file(out: Path) -> str:
    """The params file of a run, from its manifest (for the messages)."""
    try:
        return str(json.loads((out / "run_manifest.json").read_text(encoding="utf-8"))["params_file"])
    except (OSError, ValueError, KeyError):
        return "<params file>"


def _run_quarto(exe: str, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([exe, "render"], cwd=root, capture_output=True, text=True)


def render(root: str | Path, out_dir: str | Path) -> RenderOutcome:
    """``quarto render`` in ``root`` when Quarto is on the PATH, then copy ``_manuscript/`` (HTML site, DOCX, PDF
    via Typst, MECA bundle) into ``<out>/manuscript/``. Without Quarto, say what was prepared and how to render."""
    root, out = Path(root), Path(out_dir)
    exe = shutil.which("quarto")
    if exe is None:
        return RenderOutcome(False, (
            "Quarto is not on the PATH, so the manuscript was prepared but not rendered.\n"
            f"  article    {root / ARTICLE_DIR / 'index.qmd'} (supplement: {root / ARTICLE_DIR / '_supplement.qmd'})\n"
            f"  numbers    {root / VARIABLES_FILE}, figures and tables in {root / GENERATED_DIR}/\n"
            "To render HTML, Word, PDF (Typst, no LaTeX needed) and the MECA bundle, install Quarto >= 1.4\n"
            "(https://quarto.org/docs/get-started/) and run in the project root:\n"
            "  quarto render\n"
            f"The result goes to {root / QUARTO_OUTPUT_DIR}/ (index.html, index.docx, index.pdf, index-meca.zip). "
            f"With Quarto installed, `python -m analysis_utils manuscript --params {_params_file(out)}` renders it "
            f"and copies it into {out / 'manuscript'}/."))
    proc = _run_quarto(exe, root)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-20:])
        return RenderOutcome(False, f"quarto render failed (exit code {proc.returncode}) in {root}:\n{tail}")
    site = root / QUARTO_OUTPUT_DIR
    if not site.is_dir():
        return RenderOutcome(False, f"quarto render finished but {site} does not exist")
    dest = out / "manuscript"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(site, dest)
    return RenderOutcome(True, f"Manuscript rendered with {exe}: {site}/ copied to {dest}/", dest)


def build(out_dir: str | Path, root: str | Path | None = None, render_it: bool = True,
          log: Callable[[str], None] = print) -> bool:
    """prepare + check_references + render, with a readable report. True when nothing is unresolved (and, with
    Quarto on the PATH, the render succeeded)."""
    from analysis_utils.study.project import project_root

    root = Path(root) if root is not None else project_root()
    prep = prepare(out_dir, root)
    log(f"Manuscript prepared from {out_dir}:\n{prep.summary()}")
    problems = check_references(root)
    if problems:
        log(f"{len(problems)} manuscript reference problem(s):\n" + "\n".join(f"  - {p}" for p in problems))
    else:
        log("  every variable, include, figure, cross-reference and citation of the manuscript resolves")
    if not render_it:
        return not problems
    outcome = render(root, out_dir)
    log(outcome.message)
    return not problems and (outcome.rendered or shutil.which("quarto") is None)


# --------------------------------------------------------------------------------------------------- checking
SHORTCODE_RE = re.compile(r"\{\{<\s*([\w-]+)\s*(.*?)\s*>\}\}", re.S)
LABEL_DEF_RE = re.compile(r"\{#([A-Za-z][\w-]*)[\s}]")
AT_RE = re.compile(r"(?<![\w@.`])-?@([A-Za-z0-9_][\w:.#$%&+?<>~/-]*)")
IMAGE_RE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)")
FENCE_RE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE_RE = re.compile(r"`[^`\n]*`")
COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
BIB_KEY_RE = re.compile(r"@\w+\s*\{\s*([^,\s]+)\s*,")
BUILTIN_XREF = ("fig", "tbl", "sec", "lst", "eq", "thm", "lem", "cor", "prp", "cnj", "def", "exm", "exr", "sol",
                "rem")
FLOAT_XREF = ("fig", "tbl")
OTHER_SHORTCODES = ("pagebreak", "lipsum", "placeholder", "kbd", "video", "env", "version", "contents")
NOT_FORMATTED_RE = re.compile(r"\b(nan|NaN|None|inf|null)\b|\d\.\d{4,}")


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    """YAML front matter (or {}) and the body."""
    m = re.match(r"^---\s*\n(.*?)\n---\s*\n", text, re.S)
    if not m:
        return {}, text
    return yaml.safe_load(m.group(1)) or {}, text[m.end():]


def _strip_code(text: str) -> str:
    return INLINE_CODE_RE.sub(" ", FENCE_RE.sub(" ", COMMENT_RE.sub(" ", text)))


def _lookup(variables: dict[str, Any], dotted: str) -> Any:
    node: Any = variables
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def _notebook_cells(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8")).get("cells", [])


def _cell_label(cell: dict[str, Any]) -> str | None:
    src = "".join(cell.get("source", []))
    m = re.search(r"^#\|\s*label:\s*(\S+)", src, re.M)
    return m.group(1) if m else None


def _find_cells(path: Path, ident: str) -> list[dict[str, Any]]:
    """Quarto's embed lookup order: cell id, then ``#| label``, then tag."""
    cells = _notebook_cells(path)
    for match in (lambda c: c.get("id") == ident, lambda c: _cell_label(c) == ident,
                  lambda c: ident in c.get("metadata", {}).get("tags", [])):
        hits = [c for c in cells if match(c)]
        if hits:
            return hits
    return []


@dataclass
class _Scan:
    """Everything the manuscript sources use or define, gathered while following includes."""
    files: list[Path] = field(default_factory=list)
    vars_used: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, list[str]] = field(default_factory=dict)
    refs: dict[str, list[str]] = field(default_factory=dict)
    cites: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _scan_file(path: Path, root: Path, doc_dir: Path, scan: _Scan, xref_types: tuple[str, ...],
               front: dict[str, Any]) -> None:
    """Shortcodes (var, include, embed, meta, built-ins), images, labels, cross-references and citations of one
    source file; includes of hand-written sources are followed, generated includes only checked to exist."""
    where = path.relative_to(root).as_posix()
    if path in scan.files:
        return
    scan.files.append(path)
    text = path.read_text(encoding="utf-8")
    generated = (root / GENERATED_DIR) in path.parents
    for m in SHORTCODE_RE.finditer(text):
        name, args = m.group(1), m.group(2).split()
        arg = args[0] if args else ""
        if name == "var":
            scan.vars_used.setdefault(arg, []).append(where)
        elif name == "include":
            target = (root / arg.lstrip("/")) if arg.startswith("/") else path.parent / arg
            if not target.is_file():
                scan.problems.append(f"{where}: include {arg} does not exist ({target})")
            elif target.suffix in (".qmd", ".md") and not generated:
                _scan_file(target, root, doc_dir, scan, xref_types, front)
        elif name == "embed":
            nb_rel, _, ident = arg.partition("#")
            nb = doc_dir / nb_rel
            if not nb.is_file():
                scan.problems.append(f"{where}: embed {arg}: notebook {nb} does not exist")
                continue
            cells = _find_cells(nb, ident) if ident else _notebook_cells(nb)
            if not cells:
                scan.problems.append(f"{where}: embed {arg}: no cell with id, label or tag '{ident}' in {nb.name}")
            elif not any(c.get("outputs") for c in cells if c.get("cell_type") == "code"):
                scan.problems.append(f"{where}: embed {arg}: the cell has no stored output (Quarto shows stored "
                                     "outputs only: embed the executed copy)")
            for c in cells:
                label = _cell_label(c)
                if label:
                    scan.labels.setdefault(label, []).append(f"{where} (embedded from {nb.name})")
        elif name == "meta":
            if arg.split(".")[0] not in front:
                scan.problems.append(f"{where}: meta {arg} is not in the document or project metadata")
        elif name not in OTHER_SHORTCODES:
            scan.problems.append(f"{where}: unknown shortcode '{name}'")
    if generated:
        return
    body = _strip_code(SHORTCODE_RE.sub(" ", text))
    for m in IMAGE_RE.finditer(body):
        target = m.group(1)
        if re.match(r"^[a-z]+://", target):
            continue
        if not (doc_dir / target).is_file():
            scan.problems.append(f"{where}: image {target} does not exist ({doc_dir / target})")
    for m in LABEL_DEF_RE.finditer(body):
        scan.labels.setdefault(m.group(1), []).append(where)
    for m in AT_RE.finditer(body):
        key = re.sub(r"[:.#$%&+?<>~/-]+$", "", m.group(1))
        prefix = key.split("-", 1)[0]
        if "-" in key and prefix in xref_types:
            scan.refs.setdefault(key, []).append(where)
        else:
            scan.cites.setdefault(key, []).append(where)


def _as_list(x: Any) -> list[str]:
    return [] if x is None else [x] if isinstance(x, str) else [str(v) for v in x]


def check_references(root: str | Path) -> list[str]:
    """Every way the manuscript under ``root`` can fail to resolve against a prepared run, as readable problems:

    project config (article, notebooks, bibliography, CSL); ``{{< var >}}`` keys missing from ``_variables.yml`` or
    whose value is not formatted for reading (NaN, None, raw floats); ``{{< include >}}`` / ``{{< embed >}}``
    targets (embedded cells must exist and hold stored outputs); unknown shortcodes; image paths; duplicate labels;
    cross-references to undefined labels; figures and tables never cross-referenced; citation keys not in the
    bibliography; numbers typed by hand in the prose (``hand_typed_numbers``). An empty list means it resolves."""
    root = Path(root)
    problems: list[str] = []
    cfg_path = root / QUARTO_CONFIG
    if not cfg_path.is_file():
        return [f"{cfg_path} does not exist"]
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    ms = cfg.get("manuscript", {}) or {}
    article = root / str(ms.get("article", "index.qmd"))
    if not article.is_file():
        return [f"{QUARTO_CONFIG}: article {article} does not exist"]
    for nb in ms.get("notebooks", []) or []:
        nb_path = nb["notebook"] if isinstance(nb, dict) else nb
        if not (root / nb_path).is_file():
            problems.append(f"{QUARTO_CONFIG}: notebook {nb_path} does not exist (run prepare after a pipeline run)")
    listed = {Path(nb["notebook"] if isinstance(nb, dict) else nb).name for nb in ms.get("notebooks", []) or []}
    for nb in sorted((root / GENERATED_DIR / "notebooks").glob("*.ipynb")):
        if nb.name not in listed:
            problems.append(f"{QUARTO_CONFIG}: executed notebook {nb.name} is not listed under manuscript.notebooks")
    front, _ = _front_matter(article.read_text(encoding="utf-8"))
    meta = {**cfg, **front}
    bib_keys: set[str] = set()
    bibs = [(root, b) for b in _as_list(cfg.get("bibliography"))] + \
           [(article.parent, b) for b in _as_list(front.get("bibliography"))]
    if not bibs:
        problems.append("no bibliography declared")
    for base, b in bibs:
        if not (base / b).is_file():
            problems.append(f"bibliography {b} does not exist")
        else:
            bib_keys |= set(BIB_KEY_RE.findall((base / b).read_text(encoding="utf-8")))
    for base, c in [(root, cfg.get("csl")), (article.parent, front.get("csl"))]:
        if c and not (base / c).is_file():
            problems.append(f"CSL style {c} does not exist")
    custom = tuple(str(c.get("ref-type") or c.get("key")) for c in (cfg.get("crossref", {}) or {}).get("custom", [])
                   if c.get("kind") == "float")
    var_path = root / VARIABLES_FILE
    variables: dict[str, Any] = {}
    if var_path.is_file():
        variables = yaml.safe_load(var_path.read_text(encoding="utf-8")) or {}
    scan = _Scan()
    _scan_file(article, root, article.parent, scan, BUILTIN_XREF + custom, meta)
    problems += scan.problems
    if scan.vars_used and not var_path.is_file():
        problems.append(f"{VARIABLES_FILE} does not exist: run prepare (python -m analysis_utils manuscript)")
    elif scan.vars_used:
        for key, where in sorted(scan.vars_used.items()):
            try:
                value = _lookup(variables, key)
            except KeyError:
                problems.append(f"{where[0]}: var {key} is not in {VARIABLES_FILE}")
                continue
            if isinstance(value, (dict, list)):
                problems.append(f"{where[0]}: var {key} is a {type(value).__name__}, not a value")
            elif not str(value).strip():
                problems.append(f"{where[0]}: var {key} is empty")
            elif NOT_FORMATTED_RE.search(str(value)):
                problems.append(f"{where[0]}: var {key} = {value!r} is not formatted for reading")
    for label, where in sorted(scan.labels.items()):
        if len(where) > 1:
            problems.append(f"label {label} is defined {len(where)} times ({', '.join(where)})")
    for key, where in sorted(scan.refs.items()):
        if key not in scan.labels:
            problems.append(f"{where[0]}: cross-reference @{key} has no matching label")
    for label, where in sorted(scan.labels.items()):
        if label.split("-", 1)[0] in FLOAT_XREF + custom and label not in scan.refs:
            problems.append(f"{where[0]}: {label} is never cross-referenced in the text")
    for key, where in sorted(scan.cites.items()):
        if key not in bib_keys:
            problems.append(f"{where[0]}: citation @{key} is not in the bibliography")
    for f in scan.files:
        if (root / GENERATED_DIR) in f.parents:
            continue
        for line, snippet in hand_typed_numbers(f.read_text(encoding="utf-8"), checklist=f.name in CHECKLIST_FILES):
            problems.append(f"{f.relative_to(root).as_posix()}:{line}: number typed by hand: {snippet!r}")
    return problems


# --------------------------------------------------------------------------------------------------- hand-typed
# Names that contain digits but are not results: criteria versions, drug classes, the registration number, Vp
# grades, and the CTCAE grade thresholds that define the safety categories.
ALLOWED_NUMBER_TERMS = (r"RECIST 1\.1", r"CTCAE (v|version )?5\.0", r"PD-L?1", r"NCT06881433", r"\bVp[1-4]\b",
                        r"[Gg]rade ≥ ?3", r"[Gg]rade 5\b", r"SHA-256")
CHECKLIST_FILES = ("_strobe.qmd",)  # the STROBE checklist: item numbers allowed in the first column only
_ALLOWED_RE = re.compile("|".join(ALLOWED_NUMBER_TERMS))


def hand_typed_numbers(text: str, checklist: bool = False) -> list[tuple[int, str]]:
    """(line, snippet) of every digit in the prose that does not come from a variable, include or embed.

    Ignored: shortcodes, code, comments, labels and attributes ``{...}``, cross-references and citations, link and
    image targets, URLs, YAML front matter other than title, subtitle and abstract, ``ALLOWED_NUMBER_TERMS``, and in
    a checklist file the first cell of each table row (the STROBE item number)."""
    front, body = _front_matter(text)
    offset = text[: len(text) - len(body)].count("\n")
    prose = [(offset + i + 1, line) for i, line in enumerate(_strip_keep_lines(body).split("\n"))]
    for key in ("title", "subtitle", "abstract"):
        if isinstance(front.get(key), str):
            prose += [(1, line) for line in _strip_keep_lines(front[key]).split("\n")]
    found = []
    for n, line in prose:
        if checklist and line.lstrip().startswith("|"):
            line = re.sub(r"^\s*\|[^|]*\|", "|", line)
        clean = _ALLOWED_RE.sub(" ", line)
        clean = re.sub(r"\{[^{}]*\}", " ", clean)
        clean = re.sub(r"\]\([^)]*\)", "]", clean)
        clean = re.sub(r"https?://\S+", " ", clean)
        clean = AT_RE.sub(" ", clean)
        for m in re.finditer(r"\d", clean):
            found.append((n, clean[max(0, m.start() - 25): m.end() + 25].strip()))
            break
    return found


def _strip_keep_lines(text: str) -> str:
    """Remove shortcodes, code and comments but keep the line count (for line numbers in messages)."""
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731
    for rx in (COMMENT_RE, FENCE_RE, SHORTCODE_RE, INLINE_CODE_RE):
        text = rx.sub(blank, text)
    return text


def resolve_text(root: str | Path, path: str | Path | None = None) -> str:
    """The article (or ``path``) with every ``{{< var >}}`` replaced by its value from ``_variables.yml``: what a
    reader sees, for tests and proof-reading without Quarto. Unknown keys are left as they are."""
    root = Path(root)
    cfg = yaml.safe_load((root / QUARTO_CONFIG).read_text(encoding="utf-8")) or {}
    target = Path(path) if path else root / str((cfg.get("manuscript") or {}).get("article", "index.qmd"))
    variables = yaml.safe_load((root / VARIABLES_FILE).read_text(encoding="utf-8")) or {}

    def sub(m: re.Match[str]) -> str:
        if m.group(1) != "var":
            return m.group(0)
        try:
            return str(_lookup(variables, m.group(2).split()[0]))
        except KeyError:
            return m.group(0)
    return SHORTCODE_RE.sub(sub, target.read_text(encoding="utf-8"))
