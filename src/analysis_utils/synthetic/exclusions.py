"""Exclusions stage: persons built to fail the study's eligibility criteria, and the recorded BCLC stage.

Screening. `n_records` screened records = unique persons + referral duplicates (`duplicate_share`, cal. data
quality: 0.5-1 %; records.py). Persons who die or are censored before their first scan fail "no post-baseline
imaging" (and, if dead before the second drug, "no combination") incidentally; round(`ineligible_share` x
n_records) minus those are then BUILT to fail EXCLUSION_WEIGHTS criteria (ASSUMPTION mix; 10 % get a second one),
so about `ineligible_share` of records fail. Exclusions are built after the outcome simulation and the outcomes of
ineligible persons are not re-simulated (they are never analysed). Truth (truth.py): `exclusion_criterion` = the
built criterion or none; `fails_criteria` = every criterion the clean data fail; `eligible`. Criteria:
docs/methods/eligibility-and-time-zero.md.

BCLC recorded = BCLC 2022 derivation (C if MVI or EHS or ECOG 1-2, else B; D for ECOG 3-4 or Child-Pugh C;
docs/methods/liver-scores-and-staging.md), 3 % of B/C recorded the other way (defect bclc_inconsistent), A or D
for persons built to fail bclc_a_or_d.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis_utils.synthetic.config import ARM_TRIPLE, EXCLUSION_WEIGHTS
from analysis_utils.synthetic.population import derive_scores, draw_categories


def build_exclusions(cfg: dict, p: pd.DataFrame, rng: np.random.Generator) -> None:
    """Build the ineligible persons after the outcome simulation (their outcomes are not analysed).

    Persons who die or are censored before their first scan fail "no post-baseline imaging" incidentally;
    round(ineligible_share x n_records) minus that number are built to fail EXCLUSION_WEIGHTS criteria (10 %
    a second one). Timing criteria that need survival beyond 160 days fall back to no_combination."""
    n = len(p)
    incidental = (p["end_day"] <= p["first_scan_day"]).to_numpy()
    n_inel = int(round(cfg["ineligible_share"] * cfg["n_records"])) - int(incidental.sum())
    pool = np.flatnonzero(~incidental)
    n_inel = max(0, min(len(pool), n_inel))
    names = list(EXCLUSION_WEIGHTS)
    w = np.array([EXCLUSION_WEIGHTS[k] for k in names])
    w = w / w.sum()
    chosen = np.sort(rng.choice(pool, n_inel, replace=False))
    feasible = (p["end_day"] > 160).to_numpy()
    built = np.full(n, "", dtype=object)
    for row in chosen:
        crits = [names[int(rng.choice(len(names), p=w))]]
        if rng.random() < 0.10:
            crits.append(names[int(rng.choice(len(names), p=w))])
        crits = ["no_combination" if (c in ("haic_outside_window", "no_systemic_after_haic") and not feasible[row])
                 else c for c in crits]
        built[row] = ";".join(dict.fromkeys(crits))
    p["exclusion_criteria_built"] = built
    p["exclusion_criterion"] = [b.split(";")[0] if b else "none" for b in built]
    has = lambda c: np.array([c in b.split(";") for b in built])  # noqa: E731
    m = has("excluded_histology")
    p.loc[m, "diagnosis_basis"] = "histology"
    p.loc[m, "histology_subtype"] = draw_categories(
        rng, ("cholangiocarcinoma", "combined_hcc_cca", "sarcomatoid", "fibrolamellar"), (0.4, 0.35, 0.15, 0.1),
        int(m.sum()))
    m = has("diagnosis_basis_other")
    p.loc[m, "diagnosis_basis"] = "other"
    p.loc[m, "histology_subtype"] = "not_examined"
    p.loc[has("prior_systemic_therapy"), "prior_systemic_therapy"] = "yes"
    m = has("ecog_3_4")
    p.loc[m, "ecog"] = rng.choice([3, 4], int(m.sum()), p=[0.8, 0.2])
    m = has("encephalopathy_grade_3_4")
    p.loc[m, "encephalopathy"] = "grade_3_4"
    m = has("no_measurable_lesion")
    p.loc[m, "max_tumour_size"] = np.round(rng.uniform(0.6, 0.9, int(m.sum())), 1)
    m = has("child_pugh_c")
    k = int(m.sum())
    p.loc[m, "total_bilirubin"] = np.round(rng.uniform(52.0, 95.0, k), 1)
    p.loc[m, "albumin"] = np.round(rng.uniform(22.0, 27.5, k), 1)
    p.loc[m, "ascites"] = "moderate_severe"
    p.loc[m, "inr"] = np.round(rng.uniform(1.3, 1.9, k), 2)
    for i in np.flatnonzero(has("haic_outside_window")):
        _force_haic(p, i, -int(rng.integers(100, 201)) if rng.random() < 0.5 else int(rng.integers(95, 151)))
    for i in np.flatnonzero(has("no_systemic_after_haic")):
        _force_haic(p, i, int(rng.integers(40, 91)))
    derive_scores(p)
    _record_bclc(p, rng, 0.03 if cfg["typo_rate"] > 0 else 0.0)


def _force_haic(p: pd.DataFrame, i: int, offset: int) -> None:
    """HAIC at `offset` days for a person built to fail a HAIC timing criterion."""
    for col, val in (("haic_offset_days", offset), ("realised_arm", ARM_TRIPLE), ("intended_arm", ARM_TRIPLE),
                     ("immortal_time_switch", False)):
        p.iat[i, p.columns.get_loc(col)] = val


def _record_bclc(p: pd.DataFrame, rng: np.random.Generator, flip_share: float) -> None:
    """Recorded BCLC: the derivation (D for ECOG 3-4 or Child-Pugh C), `flip_share` of B/C flipped B<->C
    (logged as bclc_inconsistent; 3 %, 0 when typo_rate = 0), A (60 %) or D for persons built to fail
    bclc_a_or_d."""
    n = len(p)
    recorded = p["bclc_derived"].to_numpy().copy()
    bad = p["exclusion_criteria_built"].str.contains("bclc_a_or_d").to_numpy()
    flip = (rng.random(n) < flip_share) & ~bad & (recorded != "D")
    recorded[flip] = np.where(recorded[flip] == "C", "B", "C")
    recorded[bad] = np.where(rng.random(int(bad.sum())) < 0.6, "A", "D")
    p["bclc_recorded"] = recorded
    p["bclc_inconsistent"] = flip
