"""Notebook 03_target_trial's multiple-imputation sensitivity analysis: the clone-censor-weight (CCW) analysis of
``steps.target_trial`` run in each of the m completed data sets of 02_missing_data (the same imputations notebooks
04-06 use, ``steps.imputation.completed_cohorts``; nothing is re-imputed), with the imputed baseline covariates in the
deviation models instead of the main analysis' median / mode fill + missing indicators, and pooled by Rubin's rules
(the "within" approach: analyse each imputed data set, then pool; Leyrat et al. 2019).

Per imputation: the same design as the main analysis (intervals, time model, stabilisation, the main truncation
``cfg.truncate_quantiles``), the deviation models refitted on that data set, and for every endpoint the differences
(first strategy minus second) in S(t) at ``cfg.timepoints_months`` and in RMST at ``cfg.rmst_tau_months``. The
within-imputation variance is the robust infinitesimal-jackknife variance of the weighted Kaplan-Meier difference
clustered on the patient (both clones of a patient count once), R ``survfit(..., weights, id, robust = TRUE)``
(``stats.km_counting_ij``). It treats the estimated weights as fixed, which for inverse probability weights is
usually conservative. A bootstrap within each imputation would cost m x B refits of the deviation models, which is
why the IJ is used here. Pooling: ``stats.mi.pool`` (Rubin 1987; Barnard-Rubin df with an infinite complete-data df).
Methods: docs/methods/target-trial.md, docs/methods/missing-data.md.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from analysis_utils.stats.ccw import ccw_estimate
from analysis_utils.stats.km_counting_ij import clone_influences, ij_difference
from analysis_utils.stats.mi import pool
from analysis_utils.steps.target_trial import DAYS_PER_MONTH, design, prepare
from analysis_utils.study.config import TargetTrialConfig

__all__ = ["ccw_one_imputation", "ccw_within", "results_keys", "sensitivity_rows", "LABEL"]

LABEL = "Clone-censor-weight, multiple imputation (IJ variance, Rubin's rules)"


def _quantities(cfg: TargetTrialConfig) -> list[str]:
    return [f"sdiff{m:g}m" for m in cfg.timepoints_months] + ["rmst_diff"]


def ccw_one_imputation(cohort: pd.DataFrame, cfg: TargetTrialConfig) -> pd.DataFrame:
    """The main CCW contrasts on one completed cohort with their clustered IJ standard errors: one row per endpoint
    and quantity (``sdiff{t}m``: S difference; ``rmst_diff``: RMST difference in months), columns endpoint,
    quantity, term (``{endpoint}_{quantity}``), estimate, std_error, n_indicator_columns (missing indicators still
    in the deviation models: covariates outside the imputation model that have missing values)."""
    d = prepare(cohort, cfg)
    des = design(cfg, grid=False)
    res = ccw_estimate(d.ccw, des, keep_details=True)
    n = d.ccw.n
    first, second = d.ccw.strategies[0], d.ccw.strategies[1]
    n_ind = sum(c.endswith("_missing") for c in d.covariates)
    rows = []
    for ep in d.ccw.endpoints:
        fa, fb = clone_influences(res, ep, (first, second), n, des.times, des.tau)
        se_s, se_r = ij_difference(fa, fb)
        diff_s = fa.surv - fb.surv
        for m, est, se in zip(cfg.timepoints_months, diff_s, se_s):
            rows.append((ep, f"sdiff{m:g}m", float(est), float(se)))
        rows.append((ep, "rmst_diff", (fa.rmst - fb.rmst) / DAYS_PER_MONTH,
                     se_r / DAYS_PER_MONTH))
    out = pd.DataFrame(rows, columns=["endpoint", "quantity", "estimate", "std_error"])
    out.insert(2, "term", out["endpoint"] + "_" + out["quantity"])
    out["n_indicator_columns"] = n_ind
    return out


def ccw_within(cohorts: Sequence[pd.DataFrame], cfg: TargetTrialConfig) -> dict[str, pd.DataFrame]:
    """:func:`ccw_one_imputation` in every completed cohort (``.imp`` 1..m) and the pooled rows (``stats.mi.pool``'s
    columns plus endpoint and quantity, CI at ``cfg.conf_level``): {"per_imputation", "pooled"}."""
    if len(cohorts) < 2:
        raise ValueError(f"the MI target-trial analysis needs at least 2 imputed data sets, got {len(cohorts)}")
    per = pd.concat([ccw_one_imputation(c, cfg).assign(**{".imp": i}) for i, c in enumerate(cohorts, 1)],
                    ignore_index=True)
    pooled = pool(per, term_col="term", estimate_col="estimate", se_col="std_error", dfcom=None,
                  conf_level=cfg.conf_level)
    keys = per.drop_duplicates("term").set_index("term")[["endpoint", "quantity"]]
    pooled = keys.join(pooled.set_index("term"), how="right").reset_index()
    return {"per_imputation": per, "pooled": pooled}


def results_keys(pooled: pd.DataFrame, m: int) -> dict[str, Any]:
    """The ``target_trial`` results.json keys of the pooled analysis: ``mi_m`` and per endpoint and quantity
    ``mi_{endpoint}_{quantity}`` with ``_lower``, ``_upper``, ``_se``, ``_df``, ``_fmi``."""
    out: dict[str, Any] = {"mi_m": int(m), "mi_variance": "robust infinitesimal jackknife clustered on the patient "
                           "(weights treated as fixed), Rubin's rules"}
    for r in pooled.to_dict("records"):
        base = f"mi_{r['term']}"
        out[base] = float(r["estimate"])
        out.update({f"{base}_lower": float(r["conf_low"]), f"{base}_upper": float(r["conf_high"]),
                    f"{base}_se": float(r["std_error"]), f"{base}_df": float(r["df"]), f"{base}_fmi": float(r["fmi"])})
    return out


def sensitivity_rows(pooled: pd.DataFrame, cfg: TargetTrialConfig, n: int) -> pd.DataFrame:
    """The pooled contrasts as rows of ``steps.target_trial.sensitivity_table`` (key ``ccw_mi``; Rubin CIs with
    Barnard-Rubin df; no hazard ratio: NaN), to sit beside the main (missing-indicator) analysis."""
    p = pooled.set_index("term")
    rows = []
    for ep in dict.fromkeys(pooled["endpoint"]):
        row: dict[str, Any] = {"analysis": LABEL, "key": "ccw_mi", "endpoint": ep, "n": int(n)}
        for q in _quantities(cfg):
            x = p.loc[f"{ep}_{q}"]
            k = "rmst_diff" if q == "rmst_diff" else f"sdiff_{q[5:-1]}"
            row.update({k: float(x["estimate"]), f"{k}_lower": float(x["conf_low"]),
                        f"{k}_upper": float(x["conf_high"])})
        row.update({"hr": float("nan"), "hr_lower": float("nan"), "hr_upper": float("nan")})
        rows.append(row)
    return pd.DataFrame(rows)
