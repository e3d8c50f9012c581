"""Exclusions stage: persons built to fail an eligibility criterion decided at T0, and the recorded BCLC stage.

Screening. `n_records` screened records = unique persons + referral duplicates (`duplicate_share`, cal. data
quality: 0.5-1 %; records.py). round(`ineligible_share` x n_records) persons, drawn uniformly at random (independent
of covariates, treatment and outcomes, so that the eligible persons are a random subset and the truth of the
calibration cohort applies to them), are BUILT to fail one EXCLUSION_WEIGHTS criterion (ASSUMPTION mix; 10 % a second
one). Only criteria known at T0 are built (histology, diagnosis basis, BCLC, prior systemic therapy, measurable
lesion, Child-Pugh C, ECOG 3-4, encephalopathy grade 3-4; docs/methods/eligibility-and-time-zero.md): what happens
after T0 (the HAIC timing, the combination, a follow-up scan) is strategy adherence in the target trial, and arises
from the treatment and outcome processes, not from built exclusions. The outcomes of ineligible persons are not
re-simulated (they are never analysed). Truth (truth.py): `exclusion_criterion` = the built criterion or none.

BCLC recorded = BCLC 2022 derivation (C if MVI or EHS or ECOG 1-2, else B; D for ECOG 3-4 or Child-Pugh C;
docs/methods/liver-scores-and-staging.md), 3 % of B/C recorded the other way (defect bclc_inconsistent), A or D
for persons built to fail bclc_a_or_d.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis_utils.synthetic.config import EXCLUSION_WEIGHTS
from analysis_utils.synthetic.population import derive_scores, draw_categories


def build_exclusions(cfg: dict, p: pd.DataFrame, rng: np.random.Generator) -> None:
    """Build the ineligible persons (a uniform random subset) and the recorded BCLC stage, in place."""
    n = len(p)
    n_inel = max(0, min(n, int(round(cfg["ineligible_share"] * cfg["n_records"]))))
    names = np.array(list(EXCLUSION_WEIGHTS), dtype=object)
    w = np.array([EXCLUSION_WEIGHTS[k] for k in names])
    w = w / w.sum()
    chosen = np.sort(rng.choice(n, n_inel, replace=False))
    first = names[rng.choice(len(names), n_inel, p=w)]
    second = names[rng.choice(len(names), n_inel, p=w)]
    two = (rng.random(n_inel) < 0.10) & (second != first)
    built = np.full(n, "", dtype=object)
    built[chosen] = np.where(two, first + ";" + second, first)
    p["exclusion_criteria_built"] = built
    p["exclusion_criterion"] = np.where(built == "", "none", np.array([b.split(";")[0] for b in built], object))
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
    derive_scores(p)
    _record_bclc(p, rng, 0.03 if cfg["typo_rate"] > 0 else 0.0)


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
