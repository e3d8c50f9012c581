"""Timing stage: time zero, the natural HAIC initiation process and the systemic start.

Time zero (T0) is the date of a person's first treatment component (first HAIC or first systemic dose, whichever
comes first); every day of the generator is counted from it (day 0 = T0; docs/methods/synthetic-cohort.md,
section 4).

HAIC initiation is a discrete-time process on days since T0 whose hazard depends ONLY on baseline covariates, the
centre and time, never on the outcome process, so that clone-censor-weight with a pooled logistic model of
deviation on baseline covariates and time is identified:

    day 0 (HAIC is the first component):             P(H = 0 | x)     = expit(a0 + L)
    day d >= 1 in window j (after a systemic start):  P(H = d | H >= d) = expit(a_j + L)
    no initiation after the last window

with L = confounding_strength x ASSIGN_COEF . x + the centre's HAIC shift (confounding by indication; ASSIGN_COEF in
config.py). The intercepts are solved by bisection on the calibration cohort of the mechanism (dgm.py): a0 so that
the mean P(H = 0) is haic_share x haic_first_share, then a_1, a_2, ... in turn so that the share starting in window j
is haic_share x (1 - haic_first_share) x haic_delay_shares[j] (defaults: windows 1-14, 15-90, 91-180 days, shares
30/50/20 %, so a fifth of the late starters start beyond a 90-day grace period; ASSUMPTION). H is the NATURAL HAIC
day; it is received only if the person is alive and under follow-up on that day (outcomes.py), so deaths between the
systemic start and a planned HAIC create the immortal time of the naive "ever HAIC" comparison.

Systemic start: day 0 for systemic-first persons; after a first HAIC the delay is drawn from
systemic_delay_windows_days / systemic_delay_shares (windows 0, 1-14, 15-42, 43-90, 91-150 days with 15/35/30/15/5 %,
uniform within a window; independent of covariates and outcomes; ASSUMPTION). A person who dies or is lost before the
systemic start has HAIC but no systemic course in the exports.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from analysis_utils.synthetic.config import ASSIGN_COEF


# ----------------------------------------------------------------------------------------------------------
# Covariate features and small numerical helpers (shared with outcomes.py and dgm.py)
# ----------------------------------------------------------------------------------------------------------
def model_features(p: pd.DataFrame) -> dict[str, np.ndarray]:
    """Covariates used by the HAIC, survival and response models (centred)."""
    ecog = p["ecog"].to_numpy()
    vp = p["vp_grade"].to_numpy()
    return {
        "age10": (p["age"].to_numpy() - 54.0) / 10.0,
        "ecog0": (ecog == 0).astype(float),
        "ecog1": (ecog == 1).astype(float),
        "ecog2": (ecog >= 2).astype(float),
        "albi": p["albi_score"].to_numpy() + 2.55,
        "mvi": p["mvi"].to_numpy().astype(float),
        "vp1_3": (p["mvi"].to_numpy() & (vp != "Vp4")).astype(float),
        "vp4": (vp == "Vp4").astype(float),
        "ehs": p["ehs"].to_numpy().astype(float),
        "log10_afp": np.log10(p["afp"].to_numpy()) - 2.7,
        "size_cm": p["max_tumour_size"].to_numpy() - 8.5,
        "log_size": np.log(p["max_tumour_size"].to_numpy() / 8.5),
        "multinodular": (p["tumour_number"].to_numpy() >= 4).astype(float),
    }


def linear_predictor(features: dict[str, np.ndarray], coef: dict[str, float]) -> np.ndarray:
    """Sum of coef[k] * features[k] over the keys of `coef`."""
    return sum(coef[k] * features[k] for k in coef)


def bisect(f: Callable[[float], float], lo: float, hi: float, n_iter: int = 60) -> float:
    """Root of an increasing function f on [lo, hi] by bisection (deterministic)."""
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def solve_increasing(f: Callable[[float], float], df: Callable[[float], float], lo: float, hi: float,
                     tol: float = 1e-12, max_iter: int = 100) -> float:
    """Root of an increasing function f on [lo, hi]: Newton steps with derivative df, falling back to bisection
    whenever a step leaves the bracket (deterministic; converges in a few evaluations for smooth f)."""
    x = 0.5 * (lo + hi)
    for _ in range(max_iter):
        fx = f(x)
        if abs(fx) <= tol:
            return x
        if fx < 0:
            lo = x
        else:
            hi = x
        d = df(x)
        nxt = x - fx / d if d > 0 else 0.5 * (lo + hi)
        if not lo < nxt < hi:
            nxt = 0.5 * (lo + hi)
        if abs(nxt - x) <= 1e-14 * max(1.0, abs(x)):
            return nxt
        x = nxt
    return x


def expit(x: np.ndarray) -> np.ndarray:
    """Logistic function, computed without overflow."""
    return np.exp(-np.logaddexp(0.0, -np.asarray(x, float)))


def daily_rate(alpha: float, lp: np.ndarray) -> np.ndarray:
    """-log(1 - expit(alpha + lp)): the per-day cumulative-hazard increment of a discrete hazard."""
    if alpha == -np.inf:
        return np.zeros(len(lp))
    return np.logaddexp(0.0, alpha + np.asarray(lp, float))


# ----------------------------------------------------------------------------------------------------------
# The natural HAIC initiation process
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HaicProcess:
    """Intercepts of the discrete-time HAIC hazard: a0 at day 0, alphas[j] per day in [starts[j], ends[j]]."""
    a0: float
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    alphas: tuple[float, ...]

    def as_dict(self) -> dict:
        return {"day0_intercept": self.a0, "windows_days": [[s, e] for s, e in zip(self.starts, self.ends)],
                "window_intercepts": list(self.alphas)}


def haic_linear_predictor(cfg: dict, x: dict[str, np.ndarray], centre_shift: np.ndarray) -> np.ndarray:
    """L = confounding_strength x ASSIGN_COEF . x + the centre's HAIC log-odds shift."""
    return cfg["confounding_strength"] * linear_predictor(x, ASSIGN_COEF) + np.asarray(centre_shift, float)


def calibrate_haic(cfg: dict, lp: np.ndarray) -> HaicProcess:
    """Solve the intercepts on a calibration cohort with linear predictors `lp` (see the module docstring)."""
    share, first = cfg["haic_share"], cfg["haic_first_share"]

    def slope0(a: float) -> float:
        q = expit(a + lp)
        return float((q * (1 - q)).mean())

    a0 = solve_increasing(lambda a: float(expit(a + lp).mean()) - share * first, slope0, -30.0, 30.0)
    untreated = 1.0 - expit(a0 + lp)
    bounds = cfg["haic_delay_windows_days"]
    starts = [1] + [b + 1 for b in bounds[:-1]]
    alphas = []
    for start, end, q in zip(starts, bounds, cfg["haic_delay_shares"]):
        length = end - start + 1
        target = share * (1.0 - first) * q
        if target <= 0:
            alphas.append(-np.inf)
            continue

        def gap(a: float) -> float:
            return float((untreated * -np.expm1(-length * daily_rate(a, lp))).mean()) - target

        def slope(a: float) -> float:   # d/da of 1 - exp(-length softplus(a + lp)) = length expit(a + lp) exp(...)
            return float((untreated * length * expit(a + lp) * np.exp(-length * daily_rate(a, lp))).mean())

        a = solve_increasing(gap, slope, -40.0, 20.0)
        alphas.append(a)
        untreated = untreated * np.exp(-length * daily_rate(a, lp))
    return HaicProcess(float(a0), tuple(starts), tuple(int(b) for b in bounds), tuple(float(a) for a in alphas))


def sample_haic_day(proc: HaicProcess, lp: np.ndarray, rng: np.random.Generator, from_day: int = 0,
                    with_day_if_not_day0: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Natural HAIC day per person (float; inf = never) by inversion of the discrete cumulative hazard.

    from_day = 0: the whole process (day 0, then the windows). from_day = d > 0: the first initiation day >= d given
    none before d (the continuation used by strategy B of the truth, estimands.py). Always consumes one uniform
    and one exponential draw per person.

    ``with_day_if_not_day0`` (from_day = 0): also return each person's day had HAIC not started on day 0, the
    process continued from day 1 with the same exponential draw (the natural day itself for everyone not treated on
    day 0; for the others a draw from the continuation, since the draw deciding day 0 is independent of it). It is
    the HAIC the TKIs-P arm at time zero receives later (the comparator of an analysis with the arm fixed at time
    zero) and costs no extra random draw, so every other draw of the generator is unchanged."""
    lp = np.asarray(lp, float)
    n = len(lp)
    u, e = rng.random(n), rng.exponential(size=n)
    later = np.full(n, np.inf)                   # first day >= max(1, from_day) of the window hazards
    pending = np.ones(n, bool)
    cum = np.zeros(n)
    for start, end, alpha in zip(proc.starts, proc.ends, proc.alphas):
        s = max(start, from_day)
        if s > end:
            continue
        rate = daily_rate(alpha, lp)
        length = end - s + 1
        inside = pending & (e < cum + length * rate)
        with np.errstate(divide="ignore", invalid="ignore"):
            day = s + np.floor((e - cum) / rate)
        later[inside] = day[inside]
        pending &= ~inside
        cum = cum + length * rate
    out = np.where(u < expit(proc.a0 + lp), 0.0, later) if from_day <= 0 else later
    return (out, later) if with_day_if_not_day0 else out


def haic_timing_shares(proc: HaicProcess, lp: np.ndarray) -> dict[str, float]:
    """Mean natural probabilities: HAIC at day 0 and in each delay window (closed form, for truth.yaml)."""
    p0 = expit(proc.a0 + lp)
    out = {"day_0": float(p0.mean())}
    untreated = 1.0 - p0
    for start, end, alpha in zip(proc.starts, proc.ends, proc.alphas):
        rate = daily_rate(alpha, lp)
        out[f"days_{start}_{end}"] = float((untreated * -np.expm1(-(end - start + 1) * rate)).mean())
        untreated = untreated * np.exp(-(end - start + 1) * rate)
    out["never"] = float(untreated.mean())
    return out


# ----------------------------------------------------------------------------------------------------------
# Systemic start
# ----------------------------------------------------------------------------------------------------------
def systemic_delay(cfg: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """Days from a first HAIC to the first systemic dose: a window drawn with systemic_delay_shares, then a day
    uniform within it (windows 0, 1-14, 15-42, ... by default)."""
    bounds = np.asarray(cfg["systemic_delay_windows_days"], int)
    lows = np.concatenate([[0], bounds[:-1] + 1])
    k = rng.choice(len(bounds), n, p=np.asarray(cfg["systemic_delay_shares"], float))
    u = rng.random(n)
    return lows[k] + np.floor(u * (bounds[k] - lows[k] + 1)).astype(int)
