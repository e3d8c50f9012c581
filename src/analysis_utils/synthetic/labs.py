"""Labs stage: every person's lab schedule and values, and the CTCAE 5.0 grading of lab values.

Labs (cal. safety): baseline 0-7 days before T0, every 21 +- 3 days to 6 months, then every 42 +- 5 days to
24 months; persons on HAIC also the day before and 5-12 days after each cycle (`labs_around_haic`, default true: HAIC
patients are sampled more often, the detection bias of issue 14; false: the same schedule for everyone). Log-scale model LAB_MODEL: baseline +
disease course (AFP falls with response, rises after progression; capped post-progression drifts) + toxicity
(per-cycle HAIC nadirs for platelets/neutrophils/WBC and transaminase spikes, cumulative oxaliplatin platelet loss,
immune hepatitis episodes 6 %, bleeding episodes 2.5 %) + noise; per-person sensitivity log-normal. The baselines
come from population.py (28/35/37 % start with ALT/AST/bilirubin above ULN). Lab-derived CTCAE rates per arm
(truth.yaml lab_derived_ctcae_rates) land within a few points of cal. safety.

CTCAE grading (`ctcae_lab_grade`): NCI CTCAE v5.0 (2017) lab criteria with the baseline-abnormal rule for
ALT/AST/bilirubin; rules: docs/methods/ctcae.md. Used for the lab AEs that centres report (events.py) and the
truth summary (truth.py), independently of the pipeline's grading.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from analysis_utils.synthetic.config import DAYS_PER_MONTH


def _lab_days(row: Any, haic_days: list[int], rng: np.random.Generator, around_haic: bool) -> np.ndarray:
    """Baseline 0-7 d before T0; q21 +- 3 d to 6 months; q42 +- 5 d to 24 months; around HAIC cycles."""
    base = -int(rng.integers(0, 8))
    q21 = 21 * np.arange(1, 10) + rng.integers(-3, 4, 9)              # days 21 .. 189
    q42 = 189 + 42 * np.arange(1, 14) + rng.integers(-5, 6, 13)       # days 231 .. 735
    h = np.asarray(haic_days, int)
    after = h + rng.integers(5, 13, len(h))
    around = np.concatenate([h[h > 0] - 1, after]) if around_haic else np.zeros(0, int)
    d = np.unique(np.concatenate([[base], q21, q42, around]))
    keep = ((d > 0) | (d == base)) & (d < min(int(row.end_day), 730))
    return d[keep]


# Log-scale lab model per test (ASSUMPTION, tuned so lab-derived CTCAE rates land near cal. safety):
#   noise: sd of the per-draw log noise; on_tx: shift while on treatment; haic: (amplitude, peak day, width,
#   sensitivity) of the Gaussian-shaped change after each HAIC cycle; per_cycle: cumulative shift per HAIC cycle;
#   hep: multiple of the immune-hepatitis episode (6 % of persons); bleed: multiple of a bleeding episode
#   (2.5 %); prog: shift per month since latent progression (capped at 4 months); trend: shift per month.
LAB_MODEL: dict[str, dict[str, Any]] = {
    "alt": {"noise": 0.12, "on_tx": 0.04, "haic": (0.90, 2, 3, "liver"), "hep": 1.1, "prog": 0.04},
    "ast": {"noise": 0.10, "on_tx": 0.05, "haic": (0.85, 2, 3, "liver"), "hep": 1.0, "prog": 0.08},
    "bilirubin": {"noise": 0.05, "on_tx": -0.08, "haic": (0.25, 3, 4, "liver"), "hep": 0.6, "prog": 0.15},
    "albumin": {"noise": 0.04, "haic": (-0.05, 4, 5, "none"), "prog": -0.02, "trend": -0.004},
    "platelets": {"noise": 0.10, "on_tx": -0.05, "haic": (-0.35, 9, 6, "marrow"), "per_cycle": -0.05,
                  "prog": -0.02},
    "neutrophils": {"noise": 0.14, "on_tx": -0.03, "haic": (-0.38, 10, 4, "marrow")},
    "wbc": {"noise": 0.10, "on_tx": -0.03, "haic": (-0.30, 10, 4, "marrow")},
    "hemoglobin": {"noise": 0.03, "on_tx": -0.02, "per_cycle": -0.008, "prog": -0.015, "bleed": 1.0},
    "creatinine": {"noise": 0.07, "on_tx": 0.04, "prog": 0.02},
    "inr": {"noise": 0.04, "prog": 0.02},
    "afp": {"noise": 0.20, "prog": 0.9},
}


def simulate_labs(p: pd.DataFrame, haic_days: list[list[int]], rng: np.random.Generator, around_haic: bool = True
                  ) -> dict[str, np.ndarray]:
    """Canonical-unit lab values for all persons (rows sorted by person, then day): log value = baseline +
    LAB_MODEL effects + noise; AFP also falls with the depth of the latent mRECIST response. Each person's
    first draw is the baseline value of the patients table."""
    sched = [_lab_days(row, hd, rng, around_haic) for row, hd in zip(p.itertuples(index=False), haic_days)]
    n_draws = np.array([len(x) for x in sched])
    pid = np.repeat(p["person_id"].to_numpy(), n_draws)
    d = np.concatenate(sched).astype(float)
    first = np.concatenate([[True] + [False] * (k - 1) for k in n_draws if k > 0]) if len(d) else np.zeros(0, bool)
    rank = np.arange(len(d)) - np.repeat(np.cumsum(n_draws) - n_draws, n_draws)
    n = len(p)
    # per-person random effects
    sens = {"marrow": rng.lognormal(0, 0.55, n)[pid], "liver": rng.lognormal(0, 0.8, n)[pid], "none": 1.0}
    hep = _episodes(d, pid, n, 0.06, (1.2, 2.8), rng)          # immune-mediated hepatitis (both arms)
    bleed = -_episodes(d, pid, n, 0.025, (0.4, 0.8), rng)      # bleeding episode (variceal/tumour)
    # HAIC exposure: persons x 8 matrix of cycle days (NaN padded)
    hmat = np.full((n, 8), np.nan)
    for i, hd in enumerate(haic_days):
        hmat[i, :len(hd)] = hd
    delta = d[:, None] - hmat[pid]
    n_prior = np.nansum(delta >= 0, axis=1)
    month = np.maximum(d, 0) / DAYS_PER_MONTH
    after_prog = np.minimum(np.maximum(d - p["prog_day"].to_numpy()[pid], 0) / DAYS_PER_MONTH, 4.0)
    on_tx = (d > 0).astype(float)
    depth = p["latent_response_mrecist"].map({"CR": 2.0, "PR": 1.2, "SD": 0.25}).to_numpy()[pid]
    afp_fall = depth * np.minimum(month / 3.0, 1.0) * math.log(10.0)
    baseline = {"alt": "alt0", "ast": "ast0", "bilirubin": "total_bilirubin", "albumin": "albumin",
                "platelets": "plt0", "neutrophils": "neut0", "wbc": "wbc0", "hemoglobin": "hb0",
                "creatinine": "creat0", "inr": "inr", "afp": "afp"}
    every_other = rank % 2 == 0
    out = {"person_id": [], "day": [], "test": [], "value": []}
    for test, m in LAB_MODEL.items():
        base = np.log(p[baseline[test]].to_numpy(float))[pid]
        lv = (base + m.get("on_tx", 0.0) * on_tx + m.get("trend", 0.0) * month + m.get("prog", 0.0) * after_prog
              + m.get("hep", 0.0) * hep + m.get("bleed", 0.0) * bleed + rng.normal(0, m["noise"], len(d))
              + m.get("per_cycle", 0.0) * sens["marrow"] * n_prior)
        if "haic" in m:
            amp, peak, width, kind = m["haic"]
            with np.errstate(invalid="ignore"):
                kern = np.where(delta >= 0, np.exp(-(((delta - peak) / width) ** 2)), 0.0)
            lv = lv + amp * sens[kind] * np.nansum(kern, axis=1)
        if test == "afp":
            lv = lv - afp_fall
        lv = np.where(first, base, lv)
        value = np.exp(lv)
        if test == "albumin":
            value = np.clip(value, 12.0, 55.0)
        if test == "inr":
            value = np.clip(value, 0.8, 4.0)
        keep = every_other if test in ("afp", "inr") else np.ones(len(d), bool)
        out["person_id"].append(pid[keep])
        out["day"].append(d[keep].astype(int))
        out["test"].append(np.full(int(keep.sum()), test, dtype=object))
        out["value"].append(value[keep])
    res = {k: np.concatenate(v) for k, v in out.items()}
    order = np.lexsort((res["day"], res["person_id"]))   # by person, then day; tests stay in LAB_MODEL order
    return {k: v[order] for k, v in res.items()}


def _episodes(d: np.ndarray, pid: np.ndarray, n: int, prob: float, size: tuple[float, float],
              rng: np.random.Generator) -> np.ndarray:
    """Per person with probability `prob`: a log-scale excursion of U(size) on days [onset, onset + 20-50),
    onset U(30, 240); returned per lab row."""
    has = rng.random(n) < prob
    onset, dur, amp = rng.uniform(30, 240, n), rng.uniform(20, 50, n), rng.uniform(*size, n)
    on = has[pid] & (d >= onset[pid]) & (d <= onset[pid] + dur[pid])
    return np.where(on, amp[pid], 0.0)


# ----------------------------------------------------------------------------------------------------------
# CTCAE 5.0 lab grading, used for lab-AE reports and the truth summary (docs/methods/ctcae.md)
# ----------------------------------------------------------------------------------------------------------
def ctcae_lab_grade(test: str, value: np.ndarray, uln: Any, lln: Any, baseline: Any) -> np.ndarray:
    """CTCAE 5.0 lab grade (NCI CTCAE v5.0, 2017; docs/methods/ctcae.md) in canonical units; `uln`, `lln`,
    `baseline` scalars or arrays.

    ALT/AST/bilirubin: baseline <= ULN -> multiples of ULN (>1, >3, >5, >20 x ULN for ALT/AST; >1, >1.5, >3,
    >10 for bilirubin); baseline > ULN -> multiples of baseline (ALT/AST >= 1.5, >3, >5, >20; bilirubin >1, >1.5,
    >3, >10). Platelets <LLN/<75/<50/<25 x10^9/L; neutrophils <LLN/<1.5/<1.0/<0.5; WBC <LLN/<3/<2/<1;
    haemoglobin <LLN/<10/<8 g/dL; albumin <LLN/<30/<20 g/L; creatinine >1/>1.5/>3/>6 x ULN."""
    v = np.asarray(value, float)
    uln = np.asarray(uln, float)
    lln = np.asarray(lln, float)
    if test in ("alt", "ast", "bilirubin"):
        abnormal = np.asarray(baseline, float) > uln
        r = v / np.where(abnormal, baseline, uln)
        if test == "bilirubin":
            g1 = r > 1.0
            cuts = (1.5, 3.0, 10.0)
        else:
            g1 = np.where(abnormal, r >= 1.5, r > 1.0)
            cuts = (3.0, 5.0, 20.0)
        return np.select([r > cuts[2], r > cuts[1], r > cuts[0], g1], [4, 3, 2, 1], 0)
    if test == "platelets":
        return np.select([v < 25, v < 50, v < 75, v < lln], [4, 3, 2, 1], 0)
    if test == "neutrophils":
        return np.select([v < 0.5, v < 1.0, v < 1.5, v < lln], [4, 3, 2, 1], 0)
    if test == "wbc":
        return np.select([v < 1.0, v < 2.0, v < 3.0, v < lln], [4, 3, 2, 1], 0)
    if test == "hemoglobin":
        return np.select([v < 8.0, v < 10.0, v < lln], [3, 2, 1], 0)
    if test == "albumin":
        return np.select([v < 20, v < 30, v < lln], [3, 2, 1], 0)
    if test == "creatinine":
        return np.select([v > 6 * uln, v > 3 * uln, v > 1.5 * uln, v > uln], [4, 3, 2, 1], 0)
    raise ValueError(f"no CTCAE lab grading for test {test!r}")


_LAB_AE_TESTS = ("platelets", "neutrophils", "wbc", "hemoglobin", "alt", "ast", "bilirubin")


def worst_lab_grades(labs: dict[str, np.ndarray], uln: dict[str, float], lln: dict[str, float]
                      ) -> dict[str, tuple[int, int]]:
    """Worst treatment-emergent grade (worse than baseline) and the first day it is reached, per lab AE test."""
    res = {}
    for test in _LAB_AE_TESTS:
        m = labs["test"] == test
        vals, days = labs["value"][m], labs["day"][m]
        if vals.size < 2:
            continue
        g = ctcae_lab_grade(test, vals, uln[test], lln[test], float(vals[0]))
        post = g[1:]
        if post.max() > g[0]:
            res[test] = (int(post.max()), int(days[1:][np.argmax(post)]))
    return res
