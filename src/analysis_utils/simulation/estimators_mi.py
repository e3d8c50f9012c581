"""The missing-data methods of the simulation (ADEMP: M; registered in ``estimators.py`` beside ``psm``, whose
missing-indicator design they are compared with). Both target the ATT contrasts (``truth.py``: HAIC at time zero
versus TKIs-P at time zero with the HAIC the patient goes on to receive, in the patients with HAIC at time zero),
as ``psm`` does.

- ``psm_cc``: ``psm`` with ``matching.missing = "complete_case"``: the propensity model, matching and outcome
  analyses among the patients with every matching covariate observed (R's ``na.omit``), as the complete-case
  column of notebook 05's sensitivity table (``steps.matching_mi.complete_case_matching``). When missingness
  depends on the arm or on other covariates, the complete-case treated patients are not the treated population,
  so this estimator targets the ATT of a subpopulation: scored against the full ATT, that shows as bias.
- ``mi``: the paper's main missing-data analysis (notebooks 02, 04 and 05), the "within" approach:
  ``steps.imputation.impute_cohort`` (chained equations with the params' ``imputation:`` model: treatment, centre,
  event indicators and Nelson-Aalen cumulative hazards of OS and both PFS definitions, passive Child-Pugh class),
  ``steps.imputation.completed_cohorts``, ``steps.matching_mi.within_matching`` (the simulation's ``matching:``
  spec, the same as ``psm``'s, in every completed data set), ``steps.survival_mi.matched_outcomes`` (matched Cox
  model clustered on the pair, Kaplan-Meier survival differences, survRM2 RMST difference per data set) and
  ``stats.mi.pool`` (Rubin's rules, Barnard-Rubin df; the CI is the t interval on those df, as ``mice::pool``).
  Number of imputations: the scenario's ``imputation.m`` (params/simulation/missing_mar.yaml and missing_mnar.yaml
  set 5, against 20 in a study run: about m times the cost of ``psm`` per replicate); chains, matching and
  outcome models run in this worker's process (``workers = 1``: the engine already runs one replicate per core).
  Seed: the replicate's methods seed (``engine.replicate_seeds``), which seeds the m chains
  (``SeedSequence(seed).spawn(m)``) and the matching, as a study run uses its one ``seed`` for both; a replicate
  rerun alone therefore reproduces its MI estimates exactly.
Method: docs/methods/simulation.md, docs/methods/missing-data.md.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis_utils.simulation.result_rows import failed as _failed
from analysis_utils.simulation.result_rows import row as _row
from analysis_utils.simulation.truth import rmst_key, surv_key
from analysis_utils.steps.survival_mi import _time_key

POPULATION = "att"
#: simulation endpoint -> endpoint of steps.survival / steps.survival_mi
MI_ENDPOINTS = {"os": "os", "pfs": "pfs_recist"}


def complete_case(psm: Callable[[pd.DataFrame, Any], list[dict[str, Any]]]
                  ) -> Callable[[pd.DataFrame, Any], list[dict[str, Any]]]:
    """``psm_cc``: the estimator ``psm`` (``estimators.psm``, passed in by the registry) with the complete-case
    design and its own matching (not the replicate's cached missing-indicator one)."""

    def psm_cc(frame: pd.DataFrame, s: Any) -> list[dict[str, Any]]:
        return psm(frame, dataclasses.replace(s, matching={**s.matching, "missing": "complete_case"}, cache={}))

    return psm_cc


def imputation_config(s: Any) -> Any:
    """The params' ``imputation:`` section as ``ImputationConfig`` for one replicate: its m, maxit, donors, variables
    and model; no tipping-point imputations, one worker, the replicate's methods seed."""
    from analysis_utils.steps.imputation import ImputationConfig

    sec = {**(s.imputation or {}), "tipping_point": {}, "workers": 1, "enabled": True}
    return ImputationConfig.from_params({"imputation": sec, "seed": int(s.seed)})


def _wanted(s: Any, frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(simulation endpoint, simulation quantity, survival_mi measure) of every estimand ``mi`` reports."""
    out = []
    for ep in s.endpoints_in(frame):
        out.append((ep, "log_hr", "log_hr"))
        out += [(ep, surv_key(t), f"surv_diff_{_time_key(t)}") for t in s.timepoints]
        out.append((ep, rmst_key(s.tau), "rmst_diff"))
    return out


def mi(frame: pd.DataFrame, s: Any) -> list[dict[str, Any]]:
    """Multiple imputation, matching within every imputed data set, Rubin's rules (module docstring)."""
    from analysis_utils.stats.mi import pool
    from analysis_utils.steps import imputation, matching_mi, survival_mi

    wanted = _wanted(s, frame)
    cfg = imputation_config(s)
    imp = imputation.impute_cohort(frame, cfg)
    cohorts = imputation.completed_cohorts(frame, imp.completed, cfg.analysis_columns())
    within = matching_mi.within_matching(cohorts, s.matching, seed=s.seed, workers=1, balance_tables=False)
    spec = {**s.survival, "timepoints_months": [float(t) for t in s.timepoints], "rmst_tau_months": float(s.tau)}
    per = []
    for i, c in enumerate(cohorts, 1):
        matched = within.matched.loc[within.matched[".imp"] == i].drop(columns=".imp")
        per.append(survival_mi.matched_outcomes(c, matched, None, spec, adjusted=False,
                                                endpoints=[MI_ENDPOINTS[ep] for ep in s.endpoints_in(frame)])
                   .assign(**{".imp": i}))
    long = pd.concat(per, ignore_index=True)
    if long.empty:
        why = "; ".join(within.problems["problem"]) or "no matched pairs in any imputation"
        return [_failed(ep, q, POPULATION, why) for ep, q, _ in wanted]
    long = long.loc[long["cohort"] == "matched"].copy()
    long["term"] = long["endpoint"] + "|" + long["measure"]
    pooled = pool(long, dfcom="dfcom", conf_level=s.conf_level).set_index("term")
    rows = []
    for ep, quantity, measure in wanted:
        term = f"{MI_ENDPOINTS[ep]}|{measure}"
        if term not in pooled.index or not np.isfinite(pooled.loc[term, "estimate"]):
            rows.append(_failed(ep, quantity, POPULATION, f"{term}: fewer than 2 imputations gave an estimate"))
            continue
        p = pooled.loc[term]
        note = "" if int(p["m"]) == cfg.m else f"pooled over {int(p['m'])} of {cfg.m} imputations"
        rows.append(_row(ep, quantity, POPULATION, p["estimate"], p["std_error"], p["conf_low"], p["conf_high"],
                         note))
    return rows
