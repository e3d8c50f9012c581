"""Notebook 06_response's multiple-imputation steps (the "within" approach): in every imputed data set, ORR and
DCR compared in that imputation's matched cohort (match-weighted risk difference and logistic odds ratio with
pair-clustered sandwich variance, conditional odds ratio) and weighted cohort (weighted risk difference and odds
ratio with HC0 sandwich variance), exactly as ``steps.response.compare_matched`` / ``compare_weighted`` do, plus
the covariate-adjusted odds ratio of the full cohort; pooled by Rubin's rules (``stats.mi.pool``; odds ratios on
the log scale). Responses themselves are never imputed: only the covariates that choose the matched sets, the
weights and the adjustment. Computation only. Methods: docs/methods/missing-data.md,
docs/methods/binary-outcomes.md.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis_utils.stats.logistic import logistic_odds_ratio
from analysis_utils.stats.mi import pool, run_within
from analysis_utils.steps import response as resp

__all__ = ["POOLED_MEASURES", "response_outcomes", "response_one", "within_response", "response_mi_results",
           "sensitivity_rows", "design_outcomes"]

# measure -> (scale of pooling, complete-data df): log scale for odds ratios
POOLED_MEASURES = {"risk_difference": "identity", "odds_ratio": "log", "odds_ratio_conditional": "log",
                   "odds_ratio_adjusted": "log"}


def _rows(estimates: list, cohort: str, criterion: str, endpoint: str, n_coef: int = 2) -> list[dict[str, Any]]:
    rows = []
    for e in estimates:
        scale = POOLED_MEASURES.get(e.measure)
        if scale is None:
            continue
        ok = np.isfinite(e.estimate) and np.isfinite(e.se) and e.estimate > (0 if scale == "log" else -np.inf)
        est = (math.log(e.estimate) if scale == "log" else e.estimate) if ok else np.nan
        rows.append({"cohort": cohort, "criterion": criterion, "endpoint": endpoint, "measure": e.measure,
                     "estimate": est, "std_error": e.se if ok else np.nan,
                     "dfcom": max(e.n - n_coef, 1) if e.n else np.inf})
    return rows


def response_outcomes(cohort: pd.DataFrame, matched: pd.DataFrame | None, weights: pd.DataFrame | None,
                      cfg: resp.ResponseConfig, adjusted: bool = True) -> pd.DataFrame:
    """Primary-definition ORR / DCR comparisons of one data set (an imputation or a single-data-set design): long
    table cohort (matched, weighted, full), criterion, endpoint, measure, estimate (log OR, RD), std_error, dfcom."""
    rows: list[dict[str, Any]] = []
    definition = cfg.primary_definition
    mdf = None
    if matched is not None and len(matched):
        mdf = resp.matched_cohort(cohort, matched)
        if mdf["arm"].nunique() < 2:
            mdf = None
    wdf = None if weights is None else resp.weighted_cohort(cohort, weights, cfg.weight_column)
    for crit in resp.CRITERIA:
        bor = resp.bor_column(crit, definition)
        for ep in resp.ENDPOINTS:
            if mdf is not None:
                rows += _rows(resp.compare_matched(mdf, bor, ep, cfg), "matched", crit, ep)
            if wdf is not None and len(wdf):
                rows += _rows(resp.compare_weighted(wdf, bor, ep, cfg), "weighted", crit, ep)
            if adjusted and cfg.adjust_covariates:
                est = logistic_odds_ratio(resp._endpoint_frame(cohort, bor, ep, "arm"), resp._Y, resp._T,
                                               cfg.adjust_covariates, cfg.categorical, "indicator",
                                               conf_level=cfg.conf_level)
                est.measure = "odds_ratio_adjusted"
                rows += _rows([est], "full", crit, ep, n_coef=2 + len(cfg.adjust_covariates))
    return pd.DataFrame(rows)


def response_one(frames: dict[str, Any], cfg: resp.ResponseConfig) -> pd.DataFrame:
    """``response_outcomes`` of one imputation, matched and weighted cohorts (``frames``: cohort, matched, weights, as
    ``steps.survival_mi.imputation_frames`` builds them)."""
    return response_outcomes(frames["cohort"], frames.get("matched"), frames.get("weights"), cfg, adjusted=False)


def within_response(frames: list[dict[str, Any]], cfg: resp.ResponseConfig, workers: int = 1,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, pd.DataFrame]:
    """``response_one`` in every imputation, pooled per cohort / criterion / endpoint / measure:
    {"per_imputation", "pooled" (``stats.mi.pool`` columns plus the reporting-scale estimate, lower, upper)}."""
    res = run_within(frames, functools.partial(response_one, cfg=cfg), workers=workers, progress=progress)
    per = pd.concat([r.assign(**{".imp": i}) for i, r in enumerate(res, 1)], ignore_index=True)
    per["term"] = per["cohort"] + "|" + per["criterion"] + "|" + per["endpoint"] + "|" + per["measure"]
    pooled = pool(per, dfcom="dfcom", conf_level=cfg.conf_level)
    pooled[["cohort", "criterion", "endpoint", "measure"]] = pooled["term"].str.split("|", expand=True)
    log = pooled["measure"].map(POOLED_MEASURES).eq("log")
    for c, new in (("estimate", "value"), ("conf_low", "lower"), ("conf_high", "upper")):
        pooled[new] = np.where(log, np.exp(pooled[c]), pooled[c])
    return {"per_imputation": per, "pooled": pooled}


def response_mi_results(pooled: pd.DataFrame, designs: dict[str, pd.DataFrame] | None = None,
                        conf_level: float = 0.95) -> dict[str, Any]:
    """Flat keys for the "response" section, e.g. ``mi_orr_recist_matched_or`` (+ _lower, _upper, _p, _fmi, _m),
    ``mi_orr_recist_weighted_rd``, ``mi_orr_recist_full_or_adj``; and per single-data-set design (e.g. ``cc``,
    ``ind``) the same keys with that prefix and Wald CIs."""
    from scipy.stats import norm

    short = {"risk_difference": "rd", "odds_ratio": "or", "odds_ratio_conditional": "or_clogit",
             "odds_ratio_adjusted": "or_adj"}
    out: dict[str, Any] = {}
    for r in pooled.itertuples(index=False):
        key = f"mi_{r.endpoint}_{r.criterion}_{r.cohort}_{short[r.measure]}"
        ok = np.isfinite(r.estimate)
        out.update({key: r.value if ok else None, f"{key}_lower": r.lower if ok else None,
                    f"{key}_upper": r.upper if ok else None, f"{key}_p": r.p_value if ok else None,
                    f"{key}_fmi": r.fmi if ok else None, f"{key}_m": int(r.m)})
    z = norm.ppf(1 - (1 - conf_level) / 2)
    for name, tab in (designs or {}).items():
        for r in tab.itertuples(index=False):
            key = f"{name}_{r.endpoint}_{r.criterion}_{r.cohort}_{short[r.measure]}"
            f = math.exp if POOLED_MEASURES[r.measure] == "log" else (lambda v: v)
            ok = np.isfinite(r.estimate) and np.isfinite(r.std_error)
            out.update({key: f(r.estimate) if ok else None,
                        f"{key}_lower": f(r.estimate - z * r.std_error) if ok else None,
                        f"{key}_upper": f(r.estimate + z * r.std_error) if ok else None})
    return out


def sensitivity_rows(mi_pooled: pd.DataFrame, designs: dict[str, pd.DataFrame],
                     conf_level: float = 0.95) -> pd.DataFrame:
    """ORR odds ratios (matched, weighted) per criterion in the layout of ``steps.survival_mi.sensitivity_rows``:
    endpoint (``orr_<criterion>``), cohort, measure "OR", the MI-pooled estimate with FMI and each single-data-set
    design's estimate with its Wald CI."""
    from scipy.stats import norm

    z = norm.ppf(1 - (1 - conf_level) / 2)
    rows = []
    for crit in resp.CRITERIA:
        for coh in ("matched", "weighted"):
            sel = ((mi_pooled["criterion"] == crit) & (mi_pooled["endpoint"] == "orr") & (mi_pooled["cohort"] == coh)
                   & (mi_pooled["measure"] == "odds_ratio"))
            if not sel.any():
                continue
            p = mi_pooled[sel].iloc[0]
            row = {"endpoint": f"orr_{crit}", "cohort": coh, "measure": "OR", "mi": p["value"], "mi_lower": p["lower"],
                   "mi_upper": p["upper"], "mi_p": p["p_value"], "mi_fmi": p["fmi"]}
            for name, tab in designs.items():
                s = tab[(tab["criterion"] == crit) & (tab["endpoint"] == "orr") & (tab["cohort"] == coh)
                        & (tab["measure"] == "odds_ratio")]
                est, se = (s["estimate"].iloc[0], s["std_error"].iloc[0]) if len(s) else (np.nan, np.nan)
                ok = np.isfinite(est) and np.isfinite(se)
                row.update({name: math.exp(est) if ok else np.nan,
                            f"{name}_lower": math.exp(est - z * se) if ok else np.nan,
                            f"{name}_upper": math.exp(est + z * se) if ok else np.nan,
                            f"{name}_p": float(2 * norm.sf(abs(est / se))) if ok and se > 0 else np.nan})
            rows.append(row)
    return pd.DataFrame(rows)


def design_outcomes(cohort: pd.DataFrame, data_dir: Any, cfg: resp.ResponseConfig) -> dict[str, pd.DataFrame]:
    """``response_outcomes`` of the single-data-set designs of the sensitivity table from 04_matching's files:
    ``ind`` (matched.parquet, weights.parquet) and ``cc`` (matched_cc.parquet, weights_cc.parquet); absent files
    leave the design out."""
    from pathlib import Path

    data = Path(data_dir)
    out = {}
    for name, suffix in (("cc", "_cc"), ("ind", "")):
        m, w = data / f"matched{suffix}.parquet", data / f"weights{suffix}.parquet"
        if m.is_file() and w.is_file():
            out[name] = response_outcomes(cohort, pd.read_parquet(m), pd.read_parquet(w), cfg, adjusted=False)
    return out
