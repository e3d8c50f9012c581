"""Estimands stage: the true values of the target-trial contrasts, from potential outcomes of a large cohort.

Plain numpy on potential event times, independent of study/ and stats/ (docs/methods/synthetic-cohort.md,
section "Truth"). The cohort is the mechanism's calibration cohort (dgm.py: truth_n persons, default 200 000, drawn
like the study's eligible persons). Every person's death and progression times are exact functions of the HAIC start
day (outcomes.weibull_time_with_switch; the hazard is Markov in the current HAIC status), so the potential outcomes
under each strategy are computed, not simulated again. Strategies (grace period G = truth_grace_days, default 90;
H = the natural HAIC day of timing.py, inf when none):

    A       "HAIC-TKIs-P": HAIC on day H if H <= G, otherwise on day G (persons alive and untreated at G start at G)
    B       "TKIs-P": no HAIC within G; a person with H > G keeps H; a person with H <= G starts on the first day of
            the natural process continued from G + 1 (a new draw from the same hazard, given no HAIC before G + 1).
            This is what clone-censor-weight identifies when HAIC initiation depends on baseline covariates and time
            only: the weighted clones that follow B stand for everyone, and after G they keep initiating HAIC at the
            hazard of those still untreated
    B_no_haic_after_grace   the variant in which a person with H <= G never starts (reported for comparison)
    always  HAIC from day 0;  never  no HAIC (for the marginal hazard ratio)

Summaries per strategy, for OS (death) and latent PFS (min(progression, death)), on event days ceil(t x 30.4375)
converted back to months as the pipeline does (days / 30.4375): S(t) = share with a time > t for t in
truth_times_months; RMST(tau) = mean of min(time, tau); the median (smallest time with S <= 0.5). Contrasts A - B
(differences of S and RMST) and A / B (ratios of S), each with its Monte Carlo standard error (paired over persons).
The marginal hazard ratios always versus never and A versus B are Cox partial-likelihood estimates (one binary
covariate, Newton-Raphson, Breslow ties) on the two potential times of every person, administratively
censored at tau: a summary, not a constant over time (the marginal HR of a conditional PH model is non-proportional).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis_utils.synthetic.config import DAYS_PER_MONTH

STRATEGY_LABELS = {
    "A": "HAIC started on the natural day if within the grace period, otherwise at the end of the grace period",
    "B": "no HAIC within the grace period; the natural HAIC process continues after it",
    "B_no_haic_after_grace": "no HAIC within the grace period; no HAIC afterwards for those who would have "
                             "started within it",
    "always": "HAIC from day 0", "never": "no HAIC",
}


def strategy_switch_days(h_natural: np.ndarray, h_after_grace: np.ndarray, grace: int) -> dict[str, np.ndarray]:
    """HAIC start day per person under each strategy (inf = never); see the module docstring."""
    h = np.asarray(h_natural, float)
    return {"A": np.minimum(h, grace), "B": np.where(h > grace, h, h_after_grace),
            "B_no_haic_after_grace": np.where(h > grace, h, np.inf),
            "always": np.zeros(len(h)), "never": np.full(len(h), np.inf)}


def _label(t: float) -> str:
    return f"{t:g}"


def _discretised(months: np.ndarray) -> np.ndarray:
    """Months as the pipeline measures them: the event day ceil(t x 30.4375) divided by 30.4375."""
    return np.ceil(np.asarray(months, float) * DAYS_PER_MONTH) / DAYS_PER_MONTH


def survival_summary(months: np.ndarray, times: list[float], tau: float) -> dict[str, float]:
    """S(t) for t in `times`, RMST(tau) and the median of uncensored times in months (with MC standard errors)."""
    m = _discretised(months)
    n = len(m)
    out: dict[str, float] = {}
    for t in times:
        s = float((m > t).mean())
        out[f"S_{_label(t)}"] = s
        out[f"S_{_label(t)}_mcse"] = math.sqrt(s * (1 - s) / n)
    r = np.minimum(m, tau)
    out[f"RMST_{_label(tau)}"] = float(r.mean())
    out[f"RMST_{_label(tau)}_mcse"] = float(r.std(ddof=1) / math.sqrt(n))
    out["median"] = float(np.quantile(m, 0.5, method="inverted_cdf"))
    return out


def contrasts(a: np.ndarray, b: np.ndarray, times: list[float], tau: float) -> dict[str, float]:
    """A - B differences of S(t) and RMST(tau), A / B ratios of S(t); paired Monte Carlo SEs of the differences."""
    ma, mb = _discretised(a), _discretised(b)
    n = len(ma)
    out: dict[str, float] = {}
    for t in times:
        sa, sb = (ma > t), (mb > t)
        diff = sa.astype(float) - sb.astype(float)
        out[f"S_{_label(t)}_difference"] = float(diff.mean())
        out[f"S_{_label(t)}_difference_mcse"] = float(diff.std(ddof=1) / math.sqrt(n))
        out[f"S_{_label(t)}_ratio"] = float(sa.mean() / sb.mean()) if sb.mean() > 0 else float("nan")
    d = np.minimum(ma, tau) - np.minimum(mb, tau)
    out[f"RMST_{_label(tau)}_difference"] = float(d.mean())
    out[f"RMST_{_label(tau)}_difference_mcse"] = float(d.std(ddof=1) / math.sqrt(n))
    return out


def cox_hr_binary(t1: np.ndarray, t0: np.ndarray, tau: float, max_iter: int = 50) -> float:
    """Cox partial-likelihood HR of group 1 versus group 0 (times censored at `tau`; Breslow's handling of ties, as
    R coxph(ties = "breslow")).

    With one binary covariate the risk-set sums are S0 = n1 e^beta + n0 and S1 = n1 e^beta (n1, n0 = numbers at
    risk in each group at an event time, tied times included). Newton-Raphson on beta: score U = sum over events of
    (z - p), information I = sum over events of p (1 - p), p = S1 / S0."""
    t = np.minimum(np.concatenate([np.asarray(t1, float), np.asarray(t0, float)]), tau)
    z = np.concatenate([np.ones(len(t1)), np.zeros(len(t0))])
    event = np.concatenate([np.asarray(t1, float), np.asarray(t0, float)]) <= tau
    order = np.argsort(-t, kind="stable")      # descending: the risk set is a prefix (to the end of a tie block)
    t, z, event = t[order], z[order], event[order]
    last = np.searchsorted(-t, -t, side="right") - 1
    n1 = np.cumsum(z)[last][event]
    n0 = np.cumsum(1.0 - z)[last][event]
    z_e = z[event]
    beta = 0.0
    for _ in range(max_iter):
        r = n1 * math.exp(beta)
        p = r / (r + n0)
        step = float(np.sum(z_e - p)) / float(np.sum(p * (1 - p)))
        beta += step
        if abs(step) < 1e-12:
            break
    return math.exp(beta)


def true_values(cfg: dict, potential: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Truth for OS and latent PFS: per strategy summaries, A versus B contrasts, marginal Cox HRs.

    `potential[strategy]` = {"os": months, "progression": months} for the strategies of strategy_switch_days."""
    times, tau = cfg["truth_times_months"], cfg["truth_tau_months"]
    out: dict[str, Any] = {}
    for endpoint in ("os", "pfs"):
        t = {k: (v["os"] if endpoint == "os" else np.minimum(v["os"], v["progression"]))
             for k, v in potential.items()}
        block: dict[str, Any] = {k: survival_summary(v, times, tau) for k, v in t.items()}
        block["A_vs_B"] = contrasts(t["A"], t["B"], times, tau)
        block["A_vs_B"]["cox_hr_tau"] = cox_hr_binary(t["A"], t["B"], tau)
        block["always_vs_never"] = contrasts(t["always"], t["never"], times, tau)
        block["always_vs_never"]["cox_hr_tau"] = cox_hr_binary(t["always"], t["never"], tau)
        out[endpoint] = block
    return out
