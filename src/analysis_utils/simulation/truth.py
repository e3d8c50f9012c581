"""Estimands and their true values, from the potential outcomes of a very large simulated cohort (ADEMP: E).

An estimand is named ``<endpoint>.<quantity>.<population>``:
- endpoint: ``os``; ``pfs`` (latent progression-free survival: the earlier of progression and death, not the
  scan-detected PFS, so assessment-time bias counts as bias);
- quantity: ``log_hr`` (log hazard ratio, HAIC-TKIs-P versus TKIs-P), ``surv_diff_<t>m`` (difference of survival
  probabilities at t months), ``rmst_diff_<tau>m`` (difference of restricted mean survival times up to tau);
- population: ``ate`` (every eligible patient), ``att`` (the patients with HAIC at time zero), ``ato`` (the overlap
  population, weights e(1 - e) with e the true propensity of HAIC at time zero), ``conditional`` (OS only: the
  log-HR of the arm at time zero conditional on every covariate of the generator's outcome model), ``tte`` (the
  target trial: strategy A "HAIC within G days of time zero" versus B "no HAIC within G days", in every eligible
  patient; survival and RMST differences only).

``tte`` values are the generator's own (``synthetic.true_values``, potential outcomes under the two strategies of
its calibration cohort). ``ate``, ``att``, ``ato`` and ``conditional`` are the contrast that an analysis with the
arm fixed at time zero estimates: HAIC at time zero versus TKIs-P at time zero followed by whatever HAIC the patient
goes on to receive (the generator's natural HAIC process from day 1 on: the crossovers, who stay in the TKIs-P arm).
Each eligible person of a large cohort drawn from the same mechanism has two potential outcomes, T(1) under HAIC
from time zero and T(0) without HAIC at time zero and the natural process after it; the generator draws both from
the same latent uniforms (``synthetic.timing.sample_haic_day(..., with_day_if_not_day0=True)``). Then, with
population weights w, S_a(t) = sum w 1{T(a) > t} / sum w, RMST_a = sum w min(T(a), tau) / sum w, and the marginal
HR is the weighted Cox (Breslow) estimate on the stacked potential outcomes (T(1), a = 1) and (T(0), a = 0), each
censored at the person's censoring day had the person not died (the administrative cut-off or the loss to
follow-up, independent of the outcomes; the observed censoring day is not, since a death ends follow-up before a
loss can): the hazard ratio a randomised trial of this population with this follow-up would estimate (a marginal
HR depends on follow-up when hazards are not proportional; Austin 2013, doi:10.1002/sim.5705). The conditional
log-HR is the arm's coefficient when that Cox model also holds the person's linear predictor of the generator's OS
model (every covariate and the centre's effect): log(true_hr_os) when nobody starts HAIC later. HAIC from time
zero versus no HAIC ever (the contrast of a trial without crossover) is kept beside them (``always_vs_never``, not
scored). The Cox fits here are a small Newton solver, written apart from ``stats.cox`` so that the truth does not
share code with the estimators it scores.
Method: docs/methods/simulation.md.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis_utils.simulation.scenario import Scenario
from analysis_utils.simulation.sources import DAYS_PER_MONTH
from analysis_utils.study.treatment import ARM_HAIC

POPULATIONS = ("ate", "att", "ato", "conditional", "tte")
#: spawn key of the truth cohort's seed (replicates use keys 0, 1, 2, ...): never one of the replicates.
TRUTH_SPAWN_KEY = 2**31 - 1
#: version of the truth's definitions: a stored truth.json of another version is computed again (the replicates,
#: which do not depend on it, are kept). 2: arm-at-time-zero contrasts with the later HAIC of the TKIs-P arm.
TRUTH_VERSION = 2


def surv_key(t: float) -> str:
    return f"surv_diff_{t:g}m".replace(".", "p")


def rmst_key(tau: float) -> str:
    return f"rmst_diff_{tau:g}m".replace(".", "p")


def null_value(quantity: str) -> float:
    """The value of ``quantity`` under no treatment effect (0 for the log HR and for differences)."""
    return 0.0


def cox_breslow(time: np.ndarray, event: np.ndarray, x: np.ndarray, w: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """Weighted Cox coefficients (Breslow ties) by Newton-Raphson from 0; ``x`` is n x p (or n)."""
    x = np.asarray(x, float)
    x = x[:, None] if x.ndim == 1 else x
    order = np.argsort(-time, kind="stable")             # decreasing time: cumulative sums give risk sets
    t, e, xx, ww = time[order], event[order].astype(bool), x[order], w[order]
    last = np.r_[t[1:] != t[:-1], True]                 # last row (in this order) of each tied time block
    block_end = np.flatnonzero(last)
    starts = np.r_[0, block_end[:-1] + 1]
    dw = np.add.reduceat(ww * e, starts)
    dx = np.add.reduceat((ww * e)[:, None] * xx, starts, axis=0)
    outer = xx[:, :, None] * xx[:, None, :]
    beta = np.zeros(xx.shape[1])
    for _ in range(50):
        r = ww * np.exp(xx @ beta)
        s0 = np.cumsum(r)[block_end]
        s1 = np.cumsum(r[:, None] * xx, axis=0)[block_end]
        s2 = np.cumsum(r[:, None, None] * outer, axis=0)[block_end]
        mean = s1 / s0[:, None]
        score = (dx - dw[:, None] * mean).sum(axis=0)
        info = (dw[:, None, None] * (s2 / s0[:, None, None] - mean[:, :, None] * mean[:, None, :])).sum(axis=0)
        step = np.linalg.solve(info, score)
        beta = beta + step
        if np.max(np.abs(step)) < tol:
            return beta
    raise RuntimeError("truth: the Cox fit on the potential outcomes did not converge")


def cox_binary(time: np.ndarray, event: np.ndarray, a: np.ndarray, w: np.ndarray, tol: float = 1e-10) -> float:
    """Weighted Cox log-HR of a binary covariate (Breslow ties) by Newton-Raphson from 0."""
    return float(cox_breslow(time, event, np.asarray(a, float), w, tol)[0])


def _stacked(t1: np.ndarray, t0: np.ndarray, censor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both potential outcomes of every person, each censored at ``censor`` (the person's censoring time had the
    person not died): time, event, arm."""
    time = np.r_[np.minimum(t1, censor), np.minimum(t0, censor)]
    event = np.r_[t1 <= censor, t0 <= censor]
    return time, event, np.r_[np.ones(t1.size), np.zeros(t0.size)]


def conditional_arm_log_hr(t1: np.ndarray, t0: np.ndarray, censor: np.ndarray, lp: np.ndarray) -> float:
    """Log-HR of the arm in the Cox model (Breslow) of arm + ``lp`` (the outcome model's linear predictor) on the
    stacked potential outcomes: the conditional HR a randomised trial of these persons would estimate."""
    time, event, arm = _stacked(t1, t0, censor)
    x = np.column_stack([arm, np.r_[lp, lp]])
    return float(cox_breslow(time, event, x, np.ones(arm.size))[0])


def po_truths(po: dict[str, tuple[np.ndarray, np.ndarray]], censor: np.ndarray, treated: np.ndarray,
              ps: np.ndarray, timepoints: list[float], tau: float,
              conditional_log_hr: dict[str, float] | None = None) -> dict[str, float]:
    """True values of every estimand from potential outcomes ``po[endpoint] = (T(1), T(0))`` (months)."""
    weights = {"ate": np.ones(treated.size), "att": treated.astype(float), "ato": ps * (1 - ps)}
    out: dict[str, float] = {}
    for ep, (t1, t0) in po.items():
        for pop, w in weights.items():
            sw = w.sum()
            for t in timepoints:
                out[f"{ep}.{surv_key(t)}.{pop}"] = float((w * (t1 > t)).sum() / sw - (w * (t0 > t)).sum() / sw)
            out[f"{ep}.{rmst_key(tau)}.{pop}"] = float((w * (np.minimum(t1, tau) - np.minimum(t0, tau))).sum() / sw)
            keep = w > 0
            time, event, arm = _stacked(t1[keep], t0[keep], censor[keep])
            out[f"{ep}.log_hr.{pop}"] = cox_binary(time, event, arm, np.r_[w[keep], w[keep]])
    for ep, value in (conditional_log_hr or {}).items():
        out[f"{ep}.log_hr.conditional"] = float(value)
    return out


def _discretised(months: np.ndarray) -> np.ndarray:
    """Months as the pipeline measures them: the event day ceil(t x 30.4375) divided by 30.4375 (as the generator's
    own truth, synthetic/estimands.py)."""
    return np.ceil(np.asarray(months, float) * DAYS_PER_MONTH) / DAYS_PER_MONTH


def potential_outcome_cohort(scenario: Scenario) -> pd.DataFrame:
    """The eligible persons of about ``truth_n`` generated persons: cores (``synthetic.cohort.simulate_core``) of the
    scenario's mechanism drawn with replicate seeds spawned from the truth's own key (never a replicate's), each
    with its potential outcomes under HAIC from time zero, without HAIC at time zero (the natural process after it)
    and under no HAIC, its censoring day had it not died, its arm at time zero, whether it received HAIC, its true
    propensity of HAIC at time zero and its linear predictor of the OS model."""
    from analysis_utils.synthetic.cohort import simulate_core
    from analysis_utils.synthetic.config import resolve_config

    base = resolve_config(scenario.generator_config())
    k = max(1, math.ceil(int(scenario.design["truth_n"]) / base["n_records"]))
    parts = []
    for child in np.random.SeedSequence(scenario.seed, spawn_key=(TRUTH_SPAWN_KEY,)).spawn(k):
        core = simulate_core({**base, "replicate_seed": int(child.generate_state(1)[0])})
        p = core.persons
        parts.append(p.loc[p["exclusion_criteria_built"] == "",
                           ["os_if_haic_months", "os_if_tkis_p_months", "os_if_not_t0_months",
                            "progression_if_haic_months", "progression_if_tkis_p_months",
                            "progression_if_not_t0_months", "censor_day_if_alive", "arm_t0", "haic_received", "ps",
                            "eta_os"]])
    return pd.concat(parts, ignore_index=True)


def generator_truth(scenario: Scenario, timepoints: list[float], tau: float) -> dict[str, Any]:
    """Truths of a generator scenario.

    - ``tte``: the target-trial contrasts of the grace-period strategies A (HAIC within G days) versus B (no HAIC
      within G days), from the generator's own potential outcomes (``synthetic.true_values``: ``A_vs_B`` of OS and
      latent PFS, its calibration cohort of ``truth_n`` persons);
    - ``ate``, ``att``, ``ato``: HAIC at time zero versus TKIs-P at time zero with the HAIC the patient goes on to
      receive (the contrast the analyses with the arm fixed at time zero estimate), from ``potential_outcome_cohort``;
      treated = HAIC at time zero, e = the true propensity of HAIC at time zero; marginal log-HRs from the potential
      outcomes censored at each person's censoring day had the person not died;
    - ``conditional``: the same contrast's log-HR conditional on the OS model's linear predictor
      (``conditional_arm_log_hr``); log(true_hr_os), the generator's HR of current HAIC status, is kept beside it.

    ``always_vs_never``: HAIC from time zero versus never (not scored), and ``check_generator_always_vs_never`` the
    generator's own always-versus-never contrasts beside its ``ate`` values (two independent large cohorts of the
    same mechanism: they agree within Monte Carlo error). ``crossover_share``: the share of the TKIs-P arm at time
    zero that received HAIC later."""
    from analysis_utils.synthetic import true_values

    tv = true_values(scenario.generator_config())
    values: dict[str, float] = {}
    check: dict[str, float] = {}
    for ep in ("os", "pfs"):
        for block, out in (("A_vs_B", values), ("always_vs_never", check)):
            b = tv[ep][block]
            pop = "tte" if block == "A_vs_B" else "ate"
            for t in timepoints:
                out[f"{ep}.{surv_key(t)}.{pop}"] = float(b[f"S_{t:g}_difference"])
            out[f"{ep}.{rmst_key(tau)}.{pop}"] = float(b[f"RMST_{tau:g}_difference"])
    p = potential_outcome_cohort(scenario)
    os1 = _discretised(p["os_if_haic_months"])
    pfs1 = np.minimum(os1, _discretised(p["progression_if_haic_months"]))
    po: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for contrast, col in (("policy", "if_not_t0"), ("never", "if_tkis_p")):
        os0 = _discretised(p[f"os_{col}_months"])
        po[contrast] = {"os": (os1, os0), "pfs": (pfs1, np.minimum(os0, _discretised(p[f"progression_{col}_months"])))}
    treated = (p["arm_t0"] == ARM_HAIC).to_numpy()
    censor = p["censor_day_if_alive"].to_numpy(float) / DAYS_PER_MONTH
    ps = p["ps"].to_numpy(float)
    c = tv["config"]
    cond = conditional_arm_log_hr(*po["policy"]["os"], censor, p["eta_os"].to_numpy(float))
    values.update(po_truths(po["policy"], censor, treated, ps, timepoints, tau, {"os": cond}))
    never = po_truths(po["never"], censor, treated, ps, timepoints, tau)
    crossed = ~treated & p["haic_received"].to_numpy(bool)
    return {"values": values, "always_vs_never": never, "check_generator_always_vs_never": check,
            "generator_log_hr_current_haic": math.log(c["true_hr_os"]),
            "crossover_share": float(crossed.sum() / max(1, (~treated).sum())),
            "n_persons": int(len(p)), "n_treated": int(treated.sum()),
            "n_truth_generator": int(tv["n_potential_outcomes"]), "seed": scenario.seed,
            "truth_spawn_key": TRUTH_SPAWN_KEY,
            "source": "generator: synthetic.true_values (target-trial strategies) and the potential outcomes of "
                      "cores drawn from the same mechanism (HAIC at time zero versus TKIs-P at time zero with "
                      "later HAIC as it happens)"}


def truth_seed(scenario: Scenario) -> int:
    """Seed of the truth cohort: its own spawn key, never a replicate's."""
    return int(np.random.SeedSequence(scenario.seed, spawn_key=(TRUTH_SPAWN_KEY,)).generate_state(1)[0])


def reference_truth(scenario: Scenario, timepoints: list[float], tau: float) -> dict[str, Any]:
    """Truths of the reference mechanism (``simulation/reference.py``) from ``truth_n`` persons."""
    from analysis_utils.simulation import reference

    seed = truth_seed(scenario)
    d = reference.truth_inputs(scenario.params, seed, int(scenario.design["truth_n"]))
    values = po_truths(d["po"], d["censor"], d["treated"], d["ps"], timepoints, tau, d["conditional"])
    return {"values": values, "n_persons": d["n_persons"], "n_treated": d["n_treated"], "seed": seed,
            "source": "reference mechanism (simulation/reference.py) on a large cohort"}


def scenario_truth(scenario: Scenario, cache_dir: Path | None = None) -> dict[str, Any]:
    """The scenario's truths (``{"values": {estimand: value}, ...}``), read from ``<cache_dir>/truth.json`` when
    it was computed for the same scenario fingerprint and ``TRUTH_VERSION``, else computed (and written there)."""
    path = cache_dir / "truth.json" if cache_dir is not None else None
    fp = scenario.fingerprint()
    if path is not None and path.is_file():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("fingerprint") == fp and cached.get("truth_version") == TRUTH_VERSION:
            return cached
    timepoints = [float(t) for t in scenario.design["timepoints_months"]]
    tau = float(scenario.design["rmst_tau_months"])
    if scenario.design["source"] == "reference":
        truth = reference_truth(scenario, timepoints, tau)
    else:
        truth = generator_truth(scenario, timepoints, tau)
    truth = {"scenario": scenario.name, "fingerprint": fp, "truth_version": TRUTH_VERSION, **truth}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return truth


def truth_table(truth: dict[str, Any]) -> pd.DataFrame:
    """The truths as a frame: estimand, endpoint, quantity, population, value."""
    rows = [dict(zip(("endpoint", "quantity", "population"), k.split(".")), estimand=k, value=v)
            for k, v in sorted(truth["values"].items())]
    return pd.DataFrame(rows, columns=["estimand", "endpoint", "quantity", "population", "value"])
