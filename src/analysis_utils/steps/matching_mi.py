"""Notebook 04_matching's multiple-imputation steps (the "within" approach, R MatchThem's ``matchthem`` /
``weightthem``): in every imputed data set of 02_missing_data, the study's propensity model, matching and
weights of ``steps.matching.run_matching`` with the params' ``matching:`` settings, and the balance check; the
matched sets and weights of every imputation are written for the outcome notebooks, and the balance is summarised
across imputations as cobalt does for imputed data (min / mean / max of each statistic). Computation only; tables
and figures in ``reporting/imputation.py``. Method: docs/methods/missing-data.md (within approach),
docs/methods/matching-and-weighting.md (the matching itself).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis_utils.stats.mi import run_within, summarise_across
from analysis_utils.steps import centres
from analysis_utils.steps.matching import WEIGHTINGS, MatchingOutput, run_matching

__all__ = ["MATCHED_MI_FILE", "WEIGHTS_MI_FILE", "MATCHED_CC_FILE", "WEIGHTS_CC_FILE", "WithinMatching",
           "match_imputed", "within_matching", "write_within_matching", "read_within_matching",
           "within_matching_results", "complete_case_matching", "centre_balance_mi"]

MATCHED_MI_FILE = "data/matched_mi.parquet"  # .imp, study_id, subclass, match_weight
WEIGHTS_MI_FILE = "data/weights_mi.parquet"  # .imp, study_id, arm, ps, logit_ps, w_iptw_ate, w_iptw_att, w_overlap
MATCHED_CC_FILE = "data/matched_cc.parquet"  # complete-case design (sensitivity): study_id, subclass, match_weight
WEIGHTS_CC_FILE = "data/weights_cc.parquet"
BALANCE_COLUMNS = ["term", "variable", "level", "type", "smd_un", "smd_adj"]


def match_imputed(cohort: pd.DataFrame, spec: dict[str, Any], seed: Any = None, balance_tables: bool = True
                  ) -> dict[str, Any]:
    """``run_matching`` on one completed data set, returning only what the within analyses keep (the matched
    sets, the weights, the balance tables, the summary and the problems): small enough to come back from a worker.
    ``balance_tables=False``: no balance tables (empty; for callers that need only the matched sets and weights)."""
    mo = run_matching(cohort, spec, seed=seed, balance_tables=balance_tables)
    bal_w = mo.balance_weighted
    return {"matched": mo.matched, "weights": mo.weights,
            "balance_matched": mo.balance_matched[[c for c in BALANCE_COLUMNS if c in mo.balance_matched.columns]],
            "balance_weighted": bal_w[[c for c in ["weighting", *BALANCE_COLUMNS] if c in bal_w.columns]],
            "summary": mo.summary, "problems": list(mo.problems)}


@dataclass
class WithinMatching:
    """``within_matching``'s result. ``matched`` / ``weights``: every imputation's matched sets and weights with
    ``.imp``; ``balance``: every imputation's balance (``sample`` = "Matched" or the weighting label);
    ``balance_pooled``: per sample and term, cobalt's min / mean / max across imputations of the SMD and the maximum
    |SMD| (``abs_smd_adj_max``); ``per_imputation``: one row of key numbers per imputation; ``problems``: each
    problem met with the number of imputations it occurred in."""

    matched: pd.DataFrame
    weights: pd.DataFrame
    balance: pd.DataFrame
    balance_pooled: pd.DataFrame
    per_imputation: pd.DataFrame
    problems: pd.DataFrame
    spec: dict[str, Any]
    m: int


def _balance_long(i: int, r: dict[str, Any]) -> pd.DataFrame:
    parts = [r["balance_matched"].assign(sample="Matched")]
    if len(r["balance_weighted"]):
        bw = r["balance_weighted"].copy()
        bw["sample"] = bw.pop("weighting").map(lambda n: WEIGHTINGS[n][0])
        parts.append(bw)
    return pd.concat(parts, ignore_index=True).assign(**{".imp": i})


def within_matching(cohorts: list[pd.DataFrame], spec: dict[str, Any], seed: Any = None, workers: int = 1,
                    progress: Callable[[int, int], None] | None = None, balance_tables: bool = True
                    ) -> WithinMatching:
    """``match_imputed`` on every completed data set (``cohorts``, e.g. ``steps.imputation.completed_cohorts``) in
    ``workers`` processes, results stacked with ``.imp`` (1..m) and balance summarised across imputations
    (``balance_tables=False``: balance left empty, as the simulation's ``mi`` estimator needs only the matches)."""
    res = run_within(cohorts, functools.partial(match_imputed, spec=spec, seed=seed, balance_tables=balance_tables),
                     workers=workers, progress=progress)
    matched = pd.concat([r["matched"].assign(**{".imp": i}) for i, r in enumerate(res, 1)], ignore_index=True)
    weights = pd.concat([r["weights"].assign(**{".imp": i}) for i, r in enumerate(res, 1)], ignore_index=True)
    matched = matched[[".imp", *[c for c in matched.columns if c != ".imp"]]]
    weights = weights[[".imp", *[c for c in weights.columns if c != ".imp"]]]
    if balance_tables:
        balance = pd.concat([_balance_long(i, r) for i, r in enumerate(res, 1)], ignore_index=True)
        balance["abs_smd_adj"] = balance["smd_adj"].abs()
        pooled = summarise_across(balance, ["sample", "term"], ["smd_un", "smd_adj", "abs_smd_adj"])
    else:
        balance = pd.DataFrame(columns=[*BALANCE_COLUMNS, "sample", ".imp", "abs_smd_adj"])
        pooled = pd.DataFrame()
    keys = ("n_treated_matched", "n_control_matched", "n_pairs", "max_abs_smd_before", "max_abs_smd_matched",
            *[f"max_abs_smd_{n}" for n in WEIGHTINGS], "balanced", "ps_model_converged", "n_problems")
    per_imp = pd.DataFrame([{".imp": i, **{k: r["summary"].get(k) for k in keys}} for i, r in enumerate(res, 1)])
    counts: dict[str, int] = {}
    for r in res:
        for p in dict.fromkeys(r["problems"]):
            counts[p] = counts.get(p, 0) + 1
    problems = pd.DataFrame({"problem": list(counts), "n_imputations": list(counts.values())})
    return WithinMatching(matched, weights, balance, pooled, per_imp, problems, spec, len(res))


def write_within_matching(w: WithinMatching, out_dir: str | Path) -> dict[str, str]:
    """``data/matched_mi.parquet`` and ``data/weights_mi.parquet`` under ``out_dir`` (read by 05 and 06)."""
    written = {}
    for rel, frame in ((MATCHED_MI_FILE, w.matched), (WEIGHTS_MI_FILE, w.weights)):
        path = Path(out_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
        written[Path(rel).stem] = rel
    return written


def read_within_matching(data_dir: str | Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(matched_mi, weights_mi) from the run's data folder; None for a file 04_matching did not write."""
    data = Path(data_dir)
    return tuple(pd.read_parquet(data / Path(rel).name) if (data / Path(rel).name).is_file() else None
                 for rel in (MATCHED_MI_FILE, WEIGHTS_MI_FILE))  # type: ignore[return-value]


def within_matching_results(w: WithinMatching) -> dict[str, Any]:
    """Flat keys for the "matching" section of results.json (prefix ``mi_``): m, matched counts per imputation
    (mean, min, max), the largest |SMD| after matching and weighting (mean over imputations and worst imputation),
    imputations in which every term is balanced, problems."""
    p = w.per_imputation
    out: dict[str, Any] = {"mi_m": w.m}
    for k in ("n_treated_matched", "n_control_matched", "n_pairs"):
        v = p[k].astype(float)
        out.update({f"mi_{k}_mean": float(v.mean()), f"mi_{k}_min": int(v.min()), f"mi_{k}_max": int(v.max())})
    for k in ("max_abs_smd_before", "max_abs_smd_matched", *[f"max_abs_smd_{n}" for n in WEIGHTINGS]):
        v = pd.to_numeric(p[k], errors="coerce")
        out[f"mi_{k}_mean"] = float(v.mean()) if v.notna().any() else None
        out[f"mi_{k}_worst"] = float(v.max()) if v.notna().any() else None
    matched = w.balance_pooled[w.balance_pooled["sample"] == "Matched"]
    out["mi_max_mean_abs_smd_matched"] = float(matched["abs_smd_adj_mean"].max()) if len(matched) else None
    out["mi_n_imputations_balanced"] = int(p["balanced"].astype(bool).sum())
    out["mi_problems"] = [f"{r.problem} ({r.n_imputations} of {w.m} imputations)"
                          for r in w.problems.itertuples(index=False)]
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def complete_case_matching(cohort: pd.DataFrame, spec: dict[str, Any], out_dir: str | Path | None = None,
                           seed: Any = None) -> MatchingOutput:
    """The complete-case design of the sensitivity table: ``run_matching`` with ``missing = "complete_case"``
    (patients with any missing covariate left out, R's na.omit); with ``out_dir``, its matched sets and weights are
    written to ``data/matched_cc.parquet`` and ``data/weights_cc.parquet``."""
    mo = run_matching(cohort, {**spec, "missing": "complete_case"}, seed=seed)
    if out_dir is not None:
        for rel, frame in ((MATCHED_CC_FILE, mo.matched), (WEIGHTS_CC_FILE, mo.weights)):
            path = Path(out_dir) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(path, index=False)
    return mo


def centre_balance_mi(cohorts: list[pd.DataFrame], w: WithinMatching, centre_col: str = "center_id"
                      ) -> pd.DataFrame:
    """``steps.centres.centre_balance`` of every imputation's matched sample, averaged over imputations (matched
    patients per arm and the largest within-centre |SMD| per centre)."""
    spec = w.spec
    parts = [centres.centre_balance(c, w.matched.loc[w.matched[".imp"] == i], spec["covariates"],
                                    spec["categorical"], centre_col, estimand=spec["estimand"])
             for i, c in enumerate(cohorts, 1)]
    return pd.concat(parts).groupby("centre", sort=True).mean(numeric_only=True).reset_index()
