"""The steps of notebook 04_matching (computation only): the study's propensity-score analysis from the params'
``matching:`` section, and the matched-cohort and weights files the outcome notebooks read.

The statistics are general and live in ``stats/``: the propensity model (``stats.propensity``, R ``glm`` /
MatchIt ``distance = "glm"``), MatchIt ``method = "nearest"`` matching (``stats.matching``), WeightIt weights
(``stats.weights``) and MatchIt/cobalt balance (``stats.balance``). Here they are applied to the cohort's arms with
the params' settings; the tables, the report and the figures are in ``reporting.matching``.
Method: docs/methods/matching-and-weighting.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis_utils.stats import balance
from analysis_utils.stats.matching import DISCARDS, M_ORDERS, MatchResult, match_nearest
from analysis_utils.stats.propensity import PS_BOUNDARY, PropensityResult, estimate_propensity
from analysis_utils.stats.weights import iptw_weights, overlap_weights
from analysis_utils.study.treatment import ARM_CONTROL, ARM_HAIC

__all__ = ["MATCHED_FILE", "WEIGHTS_FILE", "WEIGHTINGS", "MatchingOutput", "check_matching_spec", "run_matching",
           "write_matching_data"]

MATCHED_FILE = "data/matched.parquet"  # read by the survival, response and safety notebooks: keep name and columns
WEIGHTS_FILE = "data/weights.parquet"
SPEC_KEYS = ("covariates", "categorical", "missing", "distance", "caliper", "std_caliper", "ratio", "replace",
             "m_order", "exact", "discard", "estimand", "smd_threshold", "weighting")
DISTANCES = ("logit", "ps")
WEIGHTINGS = {  # name -> (label, estimand of the weights, estimand whose SMD denominator is used: cobalt)
    "iptw_ate": ("IPTW (ATE)", "ATE", "ATE"),
    "iptw_att": ("IPTW (ATT)", "ATT", "ATT"),
    "overlap": ("Overlap weights (ATO)", "ATO", "ATE"),
}


@dataclass
class MatchingOutput:
    """Everything ``run_matching`` computes. ``matched`` and ``weights`` are the files the outcome notebooks read
    (data/matched.parquet, data/weights.parquet). Tables, report and figures: ``reporting.matching``.

    ``cohort`` is the cohort as given (index reset); ``data`` its rows in the propensity model with a 0/1 ``treat``
    column. ``balance_summary`` (matched sample) and ``balance_summary_weighted`` (one per weighting) are the
    ``balance.balance_summary`` results at ``smd_threshold`` (None / empty when no covariate is left)."""

    spec: dict[str, Any]
    propensity: PropensityResult
    match: MatchResult | None
    cohort: pd.DataFrame
    data: pd.DataFrame
    matched: pd.DataFrame
    weights: pd.DataFrame
    unmatched: pd.DataFrame
    counts: pd.DataFrame
    balance_matched: pd.DataFrame
    balance_weighted: pd.DataFrame
    balance_summary: balance.BalanceSummary | None
    balance_summary_weighted: dict[str, balance.BalanceSummary]
    ess: pd.DataFrame
    summary: dict[str, Any]
    arm_col: str = "arm"
    problems: list[str] = field(default_factory=list)


def check_matching_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate the params' ``matching:`` section (clear ValueError naming the key); returns a normalised copy
    with the optional ``table1`` mapping filled: ``extra`` (Table 1 variables beyond the covariates),
    ``categorical`` (extra variables to show as n (%)), ``nonnormal`` (shown as median [Q1, Q3])."""
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise ValueError(f"matching spec: key(s) missing: {missing}")
    s = dict(spec)
    for key in ("covariates", "categorical", "exact"):
        if s[key] is None:
            s[key] = []
        if not isinstance(s[key], (list, tuple)):
            raise ValueError(f"matching spec: {key!r} must be a list, got {s[key]!r}")
        s[key] = list(s[key])
    if not s["covariates"]:
        raise ValueError("matching spec: 'covariates' is empty")
    if s["distance"] not in DISTANCES:
        raise ValueError(f"matching spec: distance must be one of {DISTANCES}, got {s['distance']!r}")
    if str(s["estimand"]).upper() not in balance.DENOM_BY_ESTIMAND:
        raise ValueError(f"matching spec: estimand must be 'ATT', 'ATC' or 'ATE', got {s['estimand']!r}")
    s["estimand"] = str(s["estimand"]).upper()
    if s["m_order"] not in M_ORDERS:
        raise ValueError(f"matching spec: m_order must be one of {M_ORDERS}, got {s['m_order']!r}")
    if s["discard"] not in DISCARDS:
        raise ValueError(f"matching spec: discard must be one of {DISCARDS}, got {s['discard']!r}")
    if not isinstance(s["weighting"], dict) or not {"stabilize", "trim_quantile"} <= set(s["weighting"]):
        raise ValueError("matching spec: 'weighting' must hold 'stabilize' and 'trim_quantile'")
    t1 = s.get("table1") or {}
    if not isinstance(t1, dict) or set(t1) - {"extra", "categorical", "nonnormal"}:
        raise ValueError("matching spec: 'table1' must be a mapping with keys among extra, categorical, nonnormal")
    s["table1"] = {k: list(t1.get(k) or []) for k in ("extra", "categorical", "nonnormal")}
    return s


def _balance_frame(used: pd.DataFrame, covariates: list[str], design: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Covariates as modelled (booleans as 0/1) plus the model's missingness indicators ``<col>_missing`` (cobalt
    shows them as covariates), so the balance tables check every column of the propensity model."""
    frame = pd.DataFrame(index=used.index)
    terms = []
    for col in covariates:
        x = used[col]
        frame[col] = x.astype(float) if pd.api.types.is_bool_dtype(x) else x
        terms.append(col)
        ind = f"{col}_missing"
        if ind in design.columns:
            frame[ind] = design[ind].to_numpy(dtype=float)
            terms.append(ind)
    return frame, terms


def _safe_ps(ps: np.ndarray) -> tuple[np.ndarray, int]:
    """ps for the weight formulas: values numerically 0 or 1 (separation) are moved to PS_BOUNDARY / 1 -
    PS_BOUNDARY so that weights stay finite; returns the count moved (reported)."""
    clipped = np.clip(ps, PS_BOUNDARY, 1 - PS_BOUNDARY)
    return clipped, int((clipped != ps).sum())


def _weights(ps: np.ndarray, t: np.ndarray, spec: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """IPTW ATE (stabilised and trimmed as the params say; WeightIt), IPTW ATT (odds weights, neither stabilised
    nor trimmed), overlap weights."""
    wspec = spec["weighting"]
    stab, trim = bool(wspec["stabilize"]), wspec["trim_quantile"]
    untrimmed = iptw_weights(ps, t, "ATE", stabilize=stab)
    ate = iptw_weights(ps, t, "ATE", stabilize=stab, trim=trim) if trim is not None else untrimmed
    info = {"n_trimmed": int((ate < untrimmed).sum()),
            "trim_value": float(ate[ate < untrimmed].max()) if (ate < untrimmed).any() else None}
    return {"iptw_ate": ate, "iptw_att": iptw_weights(ps, t, "ATT", stabilize=False),
            "overlap": overlap_weights(ps, t)}, info


def _finite_or_none(x: Any) -> Any:
    """JSON-safe number for results.json: NaN and infinities become None (the report keeps 'inf')."""
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _check_cohort(cohort: pd.DataFrame, arm_col: str, id_col: str, treated_arm: str, control_arm: str) -> None:
    for col in (arm_col, id_col):
        if col not in cohort.columns:
            raise ValueError(f"run_matching: column {col!r} not in the cohort")
    other = sorted(set(cohort[arm_col].dropna().unique()) - {treated_arm, control_arm})
    if other:
        raise ValueError(f"run_matching: column {arm_col!r} has values other than {treated_arm!r} and "
                         f"{control_arm!r}: {other}")


def _match_step(s: dict[str, Any], used: pd.DataFrame, t: np.ndarray, prop: PropensityResult, seed: Any,
                problems: list[str]) -> MatchResult | None:
    """``match_nearest`` with the spec's settings on the logit (linear predictor) or the ps; a data problem that
    stops matching (e.g. missing values in an exact variable) is reported, not raised."""
    ps = prop.ps.to_numpy(dtype=float)
    if not np.isfinite(ps).all():
        problems.append("propensity score not estimated: no matching or weighting")
        return None
    distance = prop.linear_predictor.to_numpy(dtype=float) if s["distance"] == "logit" else ps
    try:
        return match_nearest(distance, t, ratio=s["ratio"], caliper=s["caliper"], std_caliper=s["std_caliper"],
                             replace=s["replace"], m_order=s["m_order"],
                             exact=used[s["exact"]] if s["exact"] else None, discard=s["discard"], seed=seed)
    except ValueError as exc:
        problems.append(f"matching not done: {exc}")
        return None


def _weights_step(s: dict[str, Any], used: pd.DataFrame, t: np.ndarray, prop: PropensityResult, id_col: str,
                  arm_col: str, problems: list[str]) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[str, Any]]:
    """The weights file (id, arm, ps, logit_ps, one column per weighting; NaN weights when the ps is missing),
    the weight vectors and the trimming / clipping counts."""
    ps = prop.ps.to_numpy(dtype=float)
    wts = pd.DataFrame({id_col: used[id_col].to_numpy(), arm_col: used[arm_col].to_numpy(), "ps": ps,
                        "logit_ps": prop.linear_predictor.to_numpy(dtype=float)})
    info: dict[str, Any] = {"n_trimmed": 0, "trim_value": None, "n_clipped": 0}
    w: dict[str, np.ndarray] = {}
    if np.isfinite(ps).all():
        ps_w, info["n_clipped"] = _safe_ps(ps)
        if info["n_clipped"]:
            problems.append(f"{info['n_clipped']} propensity score(s) numerically 0 or 1 set to {PS_BOUNDARY:g} / "
                            f"1 - {PS_BOUNDARY:g} for the weights")
        w, trim = _weights(ps_w, t, s)
        info.update(trim)
    for name in WEIGHTINGS:
        wts[f"w_{name}"] = w.get(name, np.full(len(used), np.nan))
    return wts, w, info


def _matched_frames(match: MatchResult | None, data: pd.DataFrame, used: pd.DataFrame, prop: PropensityResult,
                    id_col: str, arm_col: str, problems: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The matched file (id, subclass, match_weight; subclass is nullable only with replacement, where MatchIt gives
    none) and every unit left out with its reason (unmatched, or not in the ps model)."""
    ids, arms = used[id_col].to_numpy(), used[arm_col].to_numpy()
    if match is None:
        matched = pd.DataFrame({id_col: pd.Series(dtype=object), "subclass": pd.Series(dtype="Int64"),
                                "match_weight": pd.Series(dtype=float)})
        unmatched = pd.DataFrame({id_col: ids, arm_col: arms, "reason": "matching not done"})
    else:
        sel = match.weights > 0
        sub = match.subclass[sel]
        subclass: Any = sub
        if (sub <= 0).any():
            subclass = pd.array(np.where(sub > 0, sub, 0), dtype="Int64")
            subclass[sub <= 0] = pd.NA
        matched = pd.DataFrame({id_col: ids[sel], "subclass": subclass, "match_weight": match.weights[sel]})
        um = match.unmatched
        idx = um["index"].to_numpy()
        unmatched = pd.DataFrame({id_col: ids[idx], arm_col: arms[idx], "reason": um["reason"].to_numpy()})
        if um["treated"].any():
            problems.append(f"{int(um['treated'].sum())} treated unit(s) left unmatched (see the matching report)")
        if not sel.any():
            problems.append("no treated unit could be matched: the matched cohort is empty")
    rows = prop.dropped_rows["row"].to_numpy()
    if rows.size:
        unmatched = pd.concat([unmatched, pd.DataFrame({
            id_col: data.loc[rows, id_col].to_numpy(), arm_col: data.loc[rows, arm_col].to_numpy(),
            "reason": "not in the propensity model: " + prop.dropped_rows["reason"].astype(str)})], ignore_index=True)
    return matched, unmatched


def _balance_step(s: dict[str, Any], used: pd.DataFrame, kept: list[str], prop: PropensityResult, t: np.ndarray,
                  mw: np.ndarray | None, w: dict[str, np.ndarray]) -> tuple[pd.DataFrame, pd.DataFrame, Any, dict]:
    """Balance of the matched sample (denominator of ``spec["estimand"]``) and of each weighting (its own
    estimand's denominator, as cobalt), with their summaries at ``smd_threshold``."""
    frame, terms = _balance_frame(used, kept, prop.design)
    if not terms:
        return (pd.DataFrame(columns=["term", "variable", "level", "type", "smd_un"]),
                pd.DataFrame(columns=["weighting", "term"]), None, {})
    cats = [c for c in s["categorical"] if c in kept]
    thr = float(s["smd_threshold"])
    bal_m = balance.balance_table(frame, t, terms, weights=mw, estimand=s["estimand"], categorical=cats)
    parts, sums = [], {}
    for name, (_, w_est, denom_est) in WEIGHTINGS.items():
        if name in w:
            b = balance.balance_table(frame, t, terms, weights=w[name], estimand=denom_est, categorical=cats)
            sums[name] = balance.balance_summary(b, thr)
            parts.append(b.assign(weighting=name, weights_estimand=w_est))
    bal_w = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["weighting", "term"])
    if parts:
        bal_w = bal_w[["weighting", "weights_estimand"] + [c for c in bal_w.columns
                                                           if c not in ("weighting", "weights_estimand")]]
    return bal_m, bal_w, balance.balance_summary(bal_m, thr), sums


def _ess_table(t: np.ndarray, mw: np.ndarray | None, w: dict[str, np.ndarray], treated_arm: str,
               control_arm: str) -> pd.DataFrame:
    """Kish ESS per arm for the unadjusted sample, the matched sample and each weighting (MatchIt/cobalt)."""
    samples = [("Unadjusted", np.ones(t.size))] + ([("Matched", mw)] if mw is not None else []) + \
        [(WEIGHTINGS[n][0], w[n]) for n in WEIGHTINGS if n in w]
    return pd.DataFrame([{"sample": label, "group": g, "n": int(m.sum()), "n_nonzero": int((wv[m] > 0).sum()),
                          "ess": balance.effective_sample_size(wv[m])}
                         for label, wv in samples for g, m in ((treated_arm, t), (control_arm, ~t))])


def _counts(match: MatchResult | None, t: np.ndarray, treated_arm: str, control_arm: str) -> pd.DataFrame:
    """MatchIt's sample-size table (All, Matched, Unmatched, Discarded) with the arms as columns."""
    counts = (match.counts() if match is not None else
              pd.DataFrame({"Control": [int((~t).sum()), 0, int((~t).sum()), 0],
                            "Treated": [int(t.sum()), 0, int(t.sum()), 0]},
                           index=["All", "Matched", "Unmatched", "Discarded"]))
    return counts.rename(columns={"Control": control_arm, "Treated": treated_arm})[[treated_arm, control_arm]]


def _summary(s: dict[str, Any], data: pd.DataFrame, t: np.ndarray, prop: PropensityResult, kept: list[str],
             match: MatchResult | None, matched: pd.DataFrame, counts: pd.DataFrame, bal_m: pd.DataFrame,
             sum_m: Any, sum_w: dict, ess: pd.DataFrame, info: dict[str, Any], problems: list[str],
             treated_arm: str, control_arm: str) -> dict[str, Any]:
    """The key numbers for results.json (flat snake_case keys)."""
    def ess_of(label: str, g: str) -> float | None:
        r = ess[(ess["sample"] == label) & (ess["group"] == g)]
        return float(r["ess"].iloc[0]) if len(r) else None

    after = sum_m is not None and match is not None and "smd_adj" in bal_m.columns
    failing = sum_m.failing if after else []
    above = sorted({str(v) for v in bal_m.loc[bal_m["term"].isin(failing), "variable"]})
    n_t, n_c = int(t.sum()), int((~t).sum())
    m_t, m_c = int(counts.loc["Matched", treated_arm]), int(counts.loc["Matched", control_arm])
    return {
        "treated_arm": treated_arm, "control_arm": control_arm, "n_cohort": int(len(data)),
        "n_ps_model": int(t.size), "n_excluded_from_ps_model": int(len(prop.dropped_rows)),
        "n_treated_before": n_t, "n_control_before": n_c, "n_treated_matched": m_t, "n_control_matched": m_c,
        "n_treated_unmatched": n_t - m_t, "n_control_unmatched": n_c - m_c,
        "n_pairs": int(matched["subclass"].nunique()),
        "distance": s["distance"], "m_order": s["m_order"], "ratio": s["ratio"], "replace": bool(s["replace"]),
        "caliper_sd_units": float(s["caliper"]) if s["caliper"] is not None and s["std_caliper"] else None,
        "caliper_raw": match.caliper_width if match is not None else None,
        "caliper_distance_sd": match.caliper_sd if match is not None else None,
        "estimand": s["estimand"], "smd_threshold": float(s["smd_threshold"]),
        "max_abs_smd_before": sum_m.max_abs_smd_un if sum_m is not None else None,
        "max_abs_smd_matched": sum_m.max_abs_smd_adj if after else None,
        **{f"max_abs_smd_{n}": (sum_w[n].max_abs_smd_adj if n in sum_w else None) for n in WEIGHTINGS},
        "ess_matched_treated": ess_of("Matched", treated_arm), "ess_matched_control": ess_of("Matched", control_arm),
        **{f"ess_{n}_{side}": ess_of(WEIGHTINGS[n][0], g) for n in WEIGHTINGS
           for side, g in (("treated", treated_arm), ("control", control_arm))},
        "iptw_ate_n_trimmed": info["n_trimmed"], "iptw_ate_trim_value": info["trim_value"],
        "n_ps_clipped": info["n_clipped"],
        "terms_above_threshold_matched": failing, "n_terms_above_threshold_matched": len(failing),
        "covariates_above_threshold_matched": above, "n_covariates_above_threshold_matched": len(above),
        "covariates": kept, "covariates_dropped": list(prop.dropped_covariates),
        "balanced": bool(sum_m.balanced) if after else False,
        "ps_model_converged": bool(prop.converged), "n_problems": len(problems),
    }


def run_matching(cohort: pd.DataFrame, spec: dict[str, Any], *, arm_col: str = "arm",
                 treated_arm: str = ARM_HAIC, control_arm: str = ARM_CONTROL, id_col: str = "study_id",
                 seed: Any = None, balance_tables: bool = True) -> MatchingOutput:
    """The study's propensity-score analysis from the params' ``matching:`` section, MatchIt/WeightIt semantics:

    1. ps by unpenalised logistic regression (``estimate_propensity``; covariates, factors and missing-data
       strategy from ``spec``); constant or empty covariates are dropped and reported; separation is reported.
    2. ``match_nearest`` on ``spec["distance"]`` ("logit": the linear predictor, MatchIt ``link = "linear.logit"``;
       "ps": the score), ATT (treated units matched), with ``caliper``/``std_caliper``/``ratio``/``replace``/
       ``m_order``/``exact``/``discard``; ``seed`` only matters for ``m_order = "random"``.
    3. Weights: IPTW ATE (stabilised and trimmed per ``spec["weighting"]``), IPTW ATT, overlap (WeightIt).
    4. Balance (``balance.balance_table``, binary covariates standardised as MatchIt): matched sample with the
       denominator of ``spec["estimand"]``, each weighting with its own estimand's denominator (cobalt: ATE and
       ATO pooled, ATT treated); ESS. (Table 1 before, after matching and IPTW-weighted, and the matching report:
       ``reporting.matching``.)
    ``balance_tables=False`` skips step 4's balance tables and summaries (empty / None; for callers that need only
    the matched set and the weights, e.g. each replicate of a simulation).
    Data problems (dropped covariates, separation, unmatched treated units, a failed fit) go to ``problems`` (and
    so to the report) instead of raising. ``matched``: study_id, subclass, match_weight of the matched units;
    ``weights``: study_id, arm, ps, logit_ps, w_iptw_ate, w_iptw_att, w_overlap of every unit in the ps model.
    """
    s = check_matching_spec(spec)
    _check_cohort(cohort, arm_col, id_col, treated_arm, control_arm)
    data = cohort.reset_index(drop=True)
    prop = estimate_propensity(data, arm_col, s["covariates"], categorical=s["categorical"], missing=s["missing"],
                               treated_value=treated_arm)
    problems = list(prop.problems)
    kept = [c for c in s["covariates"] if c not in prop.dropped_covariates]
    if not kept:
        problems.append("no covariate left in the propensity model: intercept-only model, every unit has the same "
                        "score, so matching only follows data order and adjusts for nothing")
    used = data.loc[prop.ps.index]
    t = prop.treatment.to_numpy() == 1

    match = _match_step(s, used, t, prop, seed, problems)
    wts, w, info = _weights_step(s, used, t, prop, id_col, arm_col, problems)
    matched, unmatched = _matched_frames(match, data, used, prop, id_col, arm_col, problems)
    mw = match.weights if match is not None else None
    bal_m, bal_w, sum_m, sum_w = (_balance_step(s, used, kept, prop, t, mw, w) if balance_tables
                                  else _balance_step(s, used, [], prop, t, mw, w))
    ess = _ess_table(t, mw, w, treated_arm, control_arm)
    counts = _counts(match, t, treated_arm, control_arm)
    summary = _summary(s, data, t, prop, kept, match, matched, counts, bal_m, sum_m, sum_w, ess, info, problems,
                       treated_arm, control_arm)
    summary = {k: _finite_or_none(v) for k, v in summary.items()}
    return MatchingOutput(spec=s, propensity=prop, match=match, cohort=data, data=used.assign(treat=t.astype(int)),
                          matched=matched, weights=wts, unmatched=unmatched, counts=counts, balance_matched=bal_m,
                          balance_weighted=bal_w, balance_summary=sum_m, balance_summary_weighted=sum_w, ess=ess,
                          summary=summary, arm_col=arm_col, problems=problems)


def write_matching_data(output: MatchingOutput, out_dir: Any) -> dict[str, str]:
    """Write ``data/matched.parquet`` (study_id, subclass, match_weight; matched units) and ``data/weights.parquet``
    (study_id, arm, ps, logit_ps, w_iptw_ate, w_iptw_att, w_overlap) under ``out_dir``; returns the paths."""
    from pathlib import Path

    paths = {}
    for rel, frame in ((MATCHED_FILE, output.matched), (WEIGHTS_FILE, output.weights)):
        path = Path(out_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        paths[rel.split("/")[-1].split(".")[0]] = rel
    return paths
