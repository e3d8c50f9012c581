"""Synthetic multicentre cohort generator for NCT06881433 (HAIC-TKIs-P versus TKIs-P).

`generate_cohort(config, out_dir)` writes messy raw centre exports in the format of the data contract
(src/analysis_utils/study/data/data_dictionary.yaml) plus a ground-truth folder that the pipeline never reads:

    out_dir/raw/<center_id>/manifest.yaml, patients, haic_cycles, systemic_courses, tumour_assessments,
        labs, adverse_events, follow_up  (.csv, or .xlsx for `xlsx_centers` centres; all dates are strings)
    out_dir/ground_truth/truth.yaml          generator version, seed, config, true effects, model, calibration
    out_dir/ground_truth/patients_truth.csv  one row per generated record (latent covariates, times, responses)
    out_dir/ground_truth/defects.csv         every injected defect: center_id, file, row (1-based data row),
                                             column, defect, original_value, written_value

Calibration source: /work/shared/reference/clinical-calibration.md (cited as "cal. 2b" etc.); clinical rules
(Child-Pugh, ALBI, BCLC 2022, Vp/Cheng, RECIST 1.1, mRECIST, CTCAE 5.0) from clinical-rules.md.

Generator assumptions (every number is a tunable module constant; ASSUMPTION = not sourced in the calibration)
1. Screening. `n_records` screened records = unique persons + referral duplicates (`duplicate_share`, cal. 4:
   0.5-1 %). Persons who die or are censored before their first scan fail "no post-baseline imaging" (and, if
   dead before the second drug, "no combination") incidentally; round(`ineligible_share` x n_records) minus
   those are then BUILT to fail EXCLUSION_WEIGHTS criteria (ASSUMPTION mix; 10 % get a second one), so about
   `ineligible_share` of records fail. Exclusions are built after the outcome simulation and the outcomes of
   ineligible persons are not re-simulated (they are never analysed). Truth: `exclusion_criterion` = the built
   criterion or none; `fails_criteria` = every criterion the clean data fail; `eligible`.
2. Centres. Sizes log-normal (sd 0.6) with the first two inflated x3 and x2 (cal. 2a: one or two large centres,
   ASSUMPTION). Per centre: date format, language (en/zh labels from the contract synonyms, one preferred variant
   per value and 12 % mixing), units (bilirubin mg/dL, albumin g/dL, diameters cm, alternative lab units, some
   centres with row-level unit drift), local ULN/LLN, Vp or Cheng PVTT grading, site-recorded BOR or not,
   lesion_type convention, lab-AE reporting, HAIC propensity (logit shift N(0, 0.5)).
3. Baseline (cal. 2b): age N(54, 11) clipped 22-85; male 87 %; HBV 80 %, HCV 2.5 %, HBV+HCV 1 %, alcohol 6 %,
   NAFLD 5 %, other 5.5 %; MVI 65 % with Vp1/2/3/4 = 8/17/35/40 % (Cheng: Vp1-2 -> I, Vp3 -> II, Vp4 -> III,
   15 % of Vp4 -> IV; clinical-rules 4.4); EHS 28 %; ECOG depends on extent (no MVI/EHS: 0/1/2 = 66/31/3 %,
   otherwise 20/75/5 %) so that BCLC 2022 C ~ 80 % and ECOG 0 ~ 30 %; multinodular 62 %; max size log-normal,
   median ~9 cm; log10 AFP normal (sd 1.25) shifted by MVI and size so AFP >= 400 ~ 55 %; PIVKA-II log-normal,
   median ~1000 mAU/mL, correlated with AFP (ASSUMPTION). Liver function from one latent factor driving
   bilirubin (log-normal), albumin, INR, ascites and encephalopathy; Child-Pugh (~85 % A) and ALBI
   (~45/52/3 %) come out when COMPUTED from the components. Diagnosis basis histology 45 % (cal. 1e).
   BCLC recorded = BCLC 2022 derivation (C if MVI or EHS or ECOG 1-2, else B; D for ECOG 3-4 or Child-Pugh C),
   3 % of B/C recorded the other way (defect bclc_inconsistent).
4. Treatment assignment (cal. 2b, confounding by indication): logit P(HAIC) = a0 + centre + ASSIGN_COEF . x
   (younger, ECOG 0, no EHS, MVI, larger tumour, multinodular, better ALBI), a0 solved by bisection so the
   mean propensity is haic_share; pre-matching SMDs ~0.1-0.3 (seed-dependent) and net favourable prognosis
   in the HAIC arm, so the crude OS HR is below the adjusted one.
   First HAIC relative to index: 27 % after (half within 1-14 days, half 15-90), 73 % at or before
   (half 0-14 days before, half 15-90). Cycles: 1..8 with P = 10/25/40/12/6/4/2/1 % (median 3, IQR 2-3,
   cal. 2b), every 21 +- 3 days, stopped at latent progression, death or censoring; regimen per centre
   (FOLFOX mostly, cal. 1d).
5. Systemic therapy: index = first dose of either class; the other class starts 0-21 days later. TKI/anti-VEGF
   mix lenvatinib 75, apatinib 10, donafenib 5, sorafenib 3, bevacizumab 7 %; PD-(L)1 camrelizumab 55,
   tislelizumab 25, sintilimab 15, other 5 % (cal. 2b); bevacizumab pairs with atezolizumab or sintilimab.
   Courses stop at progression (+0-28 days), death, an AE leading to discontinuation, or 10 % random
   stop; empty stop_date when still on treatment at last contact. 30 % of progressors start a second-line TKI.
6. Survival (cal. 2c): Weibull proportional hazards, H(t) = (t / scale)^shape * exp(eta), eta = OS_COEF . x
   (age, ECOG, ALBI, Vp1-3/Vp4, EHS, log10 AFP, size, multinodular). HAIC multiplies the hazard by true_hr_os
   from the first HAIC on (time-varying when HAIC is after index). The baseline scale is solved by bisection
   so that the COUNTERFACTUAL median OS (every person alive at the first scan, all under TKIs-P) equals
   median_os_control_months; under HR 0.62 the counterfactual HAIC median is then ~17-18 months (cal. 2c
   12 vs 17). The observed arms are further apart (confounding, immortal time): that is the bias the
   pipeline must remove. Latent progression: same construction with PFS_COEF and true_hr_pfs, scale solved
   so the counterfactual median of min(progression, death) is median_pfs_control_months. Truth keeps both
   counterfactual times per person. Death and progression are linked by a Gaussian copula (rho = 0.65).
   With a Weibull shape of 1.1 few progress before the first scan: derived DCR ~90 % (triple) and ~83 %
   (doublet) against cal. 2c 88 / 72 % (a lower doublet DCR would need a shape < 1). IMMORTAL TIME: a person intended for HAIC after index who dies
   or progresses (latent) before the planned HAIC date never receives HAIC and is in the TKIs-P arm
   (truth: immortal_time_switch). Censoring: administrative at data_cutoff (last contact 0-45 days before),
   plus loss to follow-up for `loss_to_follow_up` of persons, at a uniform 1-24 months while alive.
7. Response (cal. 2c): latent score R = 0.75 * W + RESPONSE_COEF . x + 0.55 * noise, W the normal score of the
   progression copula (responders live longer). Per realised arm the top quantiles of R are the latent
   categories (nested: RECIST CR within mRECIST CR within RECIST responders within mRECIST responders;
   LATENT_RESPONSE_RATES). Depth of LD change: PR -0.34 to -0.80, SD -0.26 to +0.14; viable (enhancing)
   diameter shrinks faster (70 % of the time) and deeper (mRECIST CR: viable 0, extrahepatic and non-target
   disease gone). Depth is reached at 1.8-4 months along 1 + d * (t/t_d)^0.6; per-visit noise +-2.5 % (capped
   5 %) with a running minimum, so no spurious progression; non-CR lesions keep >= 5 mm (RECIST 1.1 1.2).
8. Imaging: baseline 0-28 days before index; first scan at 42 +- 7 days (never skipped), then every 42 +- 7
   days in year 1 and every 63-84 days after; 8 % of later visits missing, 7 % off-schedule by 8-14 days; stops at the first progression visit (inclusive), death or
   last contact. Progression is shown at the first visit after the latent progression time by a new lesion
   (60 %, forced when the viable nadir is 0: liver, typical enhancement, 10-30 mm) or by growth of every
   measured lesion by g = max(U(1.3, 1.6), 1 + 7 mm / largest-lesion nadir) (RECIST: >= 20 % and >= 5 mm;
   mRECIST: >= 20 % of viable). Baseline lesions: 1-4 liver lesions (largest = max_tumour_size, the others
   15-60 % of it, 10 % of non-largest atypical = no arterial enhancement), lung and lymph-node lesions with EHS,
   a portal_vein non-target with MVI, an ascites non-target in half of those with ascites. Truth BOR per
   criterion is derived from the clean measurements (targets: <= 2 per organ, <= 5 in total; mRECIST liver
   targets must enhance; SD counts from day 42 = TRUTH_MIN_SD_DAYS, clinical-rules 1.6; unconfirmed).
9. Labs (cal. 3b): baseline 0-7 days before index, every 21 +- 3 days to 6 months, then every 42 +- 5 days to
   24 months; HAIC persons also the day before and 5-12 days after each cycle. Log-scale model LAB_MODEL:
   baseline + disease course (AFP falls with response, rises after progression; capped post-progression
   drifts) + toxicity (per-cycle HAIC nadirs for platelets/neutrophils/WBC and transaminase spikes, cumulative
   oxaliplatin platelet loss, immune hepatitis episodes 6 %, bleeding episodes 2.5 %) + noise; per-person
   sensitivity log-normal. 28/35/37 % start with ALT/AST/bilirubin above ULN. Lab-derived CTCAE rates per arm
   (truth.yaml lab_derived_ctcae_rates) land within a few points of cal. 3b.
10. Adverse events (cal. 3b, ALL ASSUMPTION): clinical terms drawn per arm with AE_RATES (any / grade >= 3),
   onset by mechanism (HAIC terms at a HAIC cycle, TKI terms ~4 weeks after start), English or Chinese term
   variants (AE_TERM_VARIANTS); centres with `reports_lab_aes` also report CTCAE lab AEs derived from the labs
   (70 % reporting). 1 % of deaths get a grade 5 AE. AEs with action "discontinued" stop the course.
11. Messiness (defects.csv, DEFECT_TYPES): missing values (PIVKA-II 25-70 % by centre, ECOG 6.5 %, AFP 3.5 %,
   Vp/Cheng 12 % of MVI, ascites/encephalopathy 7 %, 1-3 % background; all scaled by missing_rate / 0.05;
   ~4 % of patients-table cells overall), missing units, out-of-range typos (Binomial(rows, typo_rate) per
   kind and centre, at least one of each kind in C01), unknown labels (typo_rate / 2), referral duplicates
   (same national_id/name/birth_date, new MRN at another centre, half with AFP/albumin re-measured, all
   tables copied), 1-2 exact duplicate rows in 1-2 files per centre, 3 % inconsistent recorded BCLC, 6 %
   discordant site BOR, and only one response criterion recorded for 15 % of patients in ~30 % of centres.
   missing_rate = typo_rate = duplicate_share = 0 gives a clean export with an empty defects.csv.
Identifiers are fake (pinyin or Chinese names, 11-digit phones starting 13/15/18, 18-character national IDs
with a valid GB 11643 check digit and sex digit, centre-style MRNs) and unique per person.
Determinism: one numpy Generator per stage, spawned from SeedSequence(seed). XLSX files are written by a
small SpreadsheetML writer (inline strings, fixed docProps created/modified, zip entries dated 1980-01-01), so
the same config gives byte-identical files. The default cohort takes ~6-7 s CPU.
"""
from __future__ import annotations

import datetime as _dt
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import yaml

GENERATOR_VERSION = "1.0.0"
ARM_TRIPLE = "HAIC-TKIs-P"
ARM_DOUBLET = "TKIs-P"
DAYS_PER_MONTH = 30.4375
CONTRACT_PATH = Path(__file__).resolve().parents[1] / "study" / "data" / "data_dictionary.yaml"

DEFAULTS: dict[str, Any] = {
    "seed": 20261125,
    "n_centers": 14,
    "n_records": 1050,
    "haic_share": 0.40,
    "accrual_start": "2023-01-01",
    "accrual_end": "2024-12-31",
    "data_cutoff": "2025-09-30",
    "true_hr_os": 0.62,
    "true_hr_pfs": 0.63,
    "median_os_control_months": 12.0,
    "median_pfs_control_months": 6.0,
    "weibull_shape_os": 1.2,
    "weibull_shape_pfs": 1.1,
    "ineligible_share": 0.13,
    "missing_rate": 0.05,
    "duplicate_share": 0.007,
    "typo_rate": 0.004,
    "loss_to_follow_up": 0.07,
    "xlsx_centers": 3,
    "chinese_centers": 4,
}

TABLES = ("patients", "haic_cycles", "systemic_courses", "tumour_assessments", "labs", "adverse_events",
          "follow_up")

DEFECT_TYPES: dict[str, str] = {
    "missing": "a value known to the generator left empty (original_value = what would have been written)",
    "missing_unit": "a unit cell left empty (patients *_unit, labs unit for tests other than INR, diameter_unit)",
    "undeclared_unit": "a lab unit that is not a key of lab_units for that test (e.g. 'mmol/L' for ALT); value unchanged",
    "decimal_slip": "a number multiplied by 10 (e.g. albumin 350 g/L, platelets 10x)",
    "zero_value": "a lab value written as 0.0 (platelets)",
    "negative_value": "a diameter written with a minus sign",
    "out_of_range_category": "an integer outside its allowed set (ECOG 7, AE grade 0 or 6)",
    "future_birth_date": "birth_date after the export date (age would be negative)",
    "death_before_index": "death_date before the first systemic dose",
    "onset_before_treatment": "AE onset_date before the first systemic dose",
    "unknown_label": "a category label that is neither allowed nor a contract synonym (sex 'U', 'lenvatinb', ...)",
    "bclc_inconsistent": "recorded BCLC stage differs from the BCLC 2022 derivation (original_value = derived)",
    "site_bor_discordant": "site-recorded BOR differs from the truth BOR (original_value = truth)",
    "criterion_not_recorded": "ld_mm (mRECIST only, 25 %) or viable_ld_mm (RECIST only, 75 %) empty on every "
                              "liver-lesion row of a patient",
    "duplicate_patient": "referral record of a person already exported by another centre (original_value = "
                         "'<center_id>:<mrn>' of the first record); column mrn",
    "duplicate_row": "exact copy of the previous data row (original_value = 'row <n>'); column mrn",
}

EXCLUSION_WEIGHTS: dict[str, float] = {
    "excluded_histology": 0.10, "diagnosis_basis_other": 0.06, "bclc_a_or_d": 0.08,
    "prior_systemic_therapy": 0.14, "haic_outside_window": 0.10, "no_systemic_after_haic": 0.06,
    "no_combination": 0.12, "no_measurable_lesion": 0.08, "no_post_baseline_imaging": 0.08,
    "child_pugh_c": 0.08, "ecog_3_4": 0.06, "encephalopathy_grade_3_4": 0.04,
}

# Log-hazard coefficients (features built in _features); ASSUMPTION, shaped by cal. 2c "shape hints".
OS_COEF = {"age10": 0.10, "ecog1": 0.30, "ecog2": 0.65, "albi": 0.75, "vp1_3": 0.30, "vp4": 0.65,
           "ehs": 0.35, "log10_afp": 0.15, "size_cm": 0.035, "multinodular": 0.15}
PFS_COEF = {"age10": 0.0, "ecog1": 0.20, "ecog2": 0.40, "albi": 0.35, "vp1_3": 0.25, "vp4": 0.45,
            "ehs": 0.35, "log10_afp": 0.25, "size_cm": 0.03, "multinodular": 0.20}
ASSIGN_COEF = {"age10": -0.30, "ecog0": 0.80, "ehs": -0.55, "mvi": 0.50, "log_size": 0.40, "albi": -0.45,
               "multinodular": 0.20}
RESPONSE_COEF = {"log10_afp": -0.10, "size_cm": -0.02, "mvi": -0.15, "ehs": -0.20}
COPULA_RHO = 0.65
TRUTH_MIN_SD_DAYS = 42   # SD minimum duration for the truth BOR: 6 weeks (clinical-rules 1.6 default)
# Intended (latent) shares per realised arm, nested; the derived ORR is lower because some progress first.
LATENT_RESPONSE_RATES = {
    ARM_TRIPLE: {"recist_cr": 0.03, "mrecist_cr": 0.16, "recist_resp": 0.56, "mrecist_resp": 0.66},
    ARM_DOUBLET: {"recist_cr": 0.01, "mrecist_cr": 0.06, "recist_resp": 0.27, "mrecist_resp": 0.35},
}
HAIC_CYCLE_P = np.array([0.10, 0.25, 0.40, 0.12, 0.06, 0.04, 0.02, 0.01])  # 1..8 cycles

ETIOLOGIES = ("hbv", "hcv", "hbv_hcv", "alcohol", "nafld", "other")
ETIOLOGY_P = (0.80, 0.025, 0.01, 0.06, 0.05, 0.055)
TKI_AGENTS = ("lenvatinib", "apatinib", "donafenib", "sorafenib", "bevacizumab")
TKI_P = (0.75, 0.10, 0.05, 0.03, 0.07)
PD1_AGENTS = ("camrelizumab", "tislelizumab", "sintilimab", "toripalimab", "pembrolizumab", "nivolumab",
              "atezolizumab")
PD1_P = (0.55, 0.25, 0.15, 0.02, 0.015, 0.005, 0.01)
DRUG_CLASS = {"lenvatinib": "tki", "apatinib": "tki", "donafenib": "tki", "sorafenib": "tki",
              "regorafenib": "tki", "bevacizumab": "anti_vegf", "camrelizumab": "pd1", "tislelizumab": "pd1",
              "sintilimab": "pd1", "toripalimab": "pd1", "pembrolizumab": "pd1", "nivolumab": "pd1",
              "atezolizumab": "pdl1", "durvalumab": "pdl1"}

# Reported clinical AEs: (any-grade, grade >= 3) per arm, highest grade available; cal. 3b (ALL ASSUMPTION).
AE_RATES: dict[str, tuple[float, float, float, float, int]] = {
    #  term key             triple any, >=3, doublet any, >=3, max grade
    "hypertension": (0.35, 0.08, 0.40, 0.10, 4),
    "ppe": (0.25, 0.03, 0.30, 0.04, 3),
    "diarrhea": (0.25, 0.03, 0.25, 0.03, 4),
    "fatigue": (0.35, 0.03, 0.35, 0.03, 3),
    "abdominal_pain": (0.40, 0.03, 0.12, 0.01, 3),
    "nausea": (0.30, 0.01, 0.12, 0.005, 3),
    "vomiting": (0.20, 0.01, 0.08, 0.005, 4),
    "hypothyroidism": (0.15, 0.0, 0.18, 0.0, 4),
    "rash": (0.10, 0.01, 0.12, 0.01, 3),
    "fever": (0.20, 0.01, 0.08, 0.0, 4),
    "proteinuria": (0.25, 0.03, 0.30, 0.04, 3),
}
_HAIC_TERMS = ("abdominal_pain", "nausea", "vomiting", "fever")
AE_TERM_VARIANTS: dict[str, dict[str, tuple[str, ...]]] = {
    "hypertension": {"en": ("hypertension", "Hypertension", "high blood pressure"), "zh": ("高血压", "血压升高")},
    "ppe": {"en": ("hand-foot skin reaction", "HFSR", "Palmar-plantar erythrodysesthesia syndrome",
                   "hand-foot syndrome"), "zh": ("手足综合征", "手足皮肤反应")},
    "diarrhea": {"en": ("diarrhea", "Diarrhoea"), "zh": ("腹泻",)},
    "fatigue": {"en": ("fatigue", "Fatigue", "asthenia"), "zh": ("乏力", "疲劳")},
    "abdominal_pain": {"en": ("abdominal pain", "Abdominal pain"), "zh": ("腹痛",)},
    "nausea": {"en": ("nausea", "Nausea"), "zh": ("恶心",)},
    "vomiting": {"en": ("vomiting", "Vomiting"), "zh": ("呕吐",)},
    "hypothyroidism": {"en": ("hypothyroidism", "Hypothyroidism"), "zh": ("甲状腺功能减退", "甲减")},
    "rash": {"en": ("rash", "rash maculo-papular", "Rash"), "zh": ("皮疹",)},
    "fever": {"en": ("fever", "pyrexia", "Fever"), "zh": ("发热",)},
    "proteinuria": {"en": ("proteinuria", "Proteinuria"), "zh": ("蛋白尿",)},
    "platelets": {"en": ("thrombocytopenia", "platelet count decreased"), "zh": ("血小板减少",)},
    "neutrophils": {"en": ("neutropenia", "neutrophil count decreased"), "zh": ("中性粒细胞减少",)},
    "wbc": {"en": ("leukopenia", "white blood cell decreased"), "zh": ("白细胞减少",)},
    "hemoglobin": {"en": ("anemia", "Anaemia"), "zh": ("贫血",)},
    "alt": {"en": ("ALT increased", "transaminase elevation"), "zh": ("谷丙转氨酶升高", "转氨酶升高")},
    "ast": {"en": ("AST increased", "transaminase elevation"), "zh": ("谷草转氨酶升高", "转氨酶升高")},
    "bilirubin": {"en": ("blood bilirubin increased", "hyperbilirubinemia"), "zh": ("胆红素升高",)},
    "grade5_liver": {"en": ("hepatic failure",), "zh": ("肝衰竭",)},
    "grade5_bleed": {"en": ("gastrointestinal hemorrhage",), "zh": ("消化道出血",)},
    "grade5_hepatitis": {"en": ("immune-mediated hepatitis",), "zh": ("免疫性肝炎",)},
}

LAB_TESTS = ("alt", "ast", "bilirubin", "albumin", "platelets", "neutrophils", "wbc", "hemoglobin",
             "creatinine", "inr", "afp")
# Alternative units (keys of the contract's lab_units) and the share of centres using them (ASSUMPTION).
LAB_ALT_UNITS = {"alt": ("IU/L", 0.3), "ast": ("IU/L", 0.3), "platelets": ("/mm3", 0.12),
                 "neutrophils": ("/mm3", 0.12), "wbc": ("10^3/uL", 0.15), "hemoglobin": ("g/L", 0.5),
                 "creatinine": ("mg/dL", 0.15), "afp": ("IU/mL", 0.1), "inr": ("", 0.5)}
LAB_DECIMALS = {("alt", "U/L"): 0, ("alt", "IU/L"): 0, ("ast", "U/L"): 0, ("ast", "IU/L"): 0,
                ("bilirubin", "umol/L"): 1, ("bilirubin", "µmol/L"): 1, ("bilirubin", "mg/dL"): 2,
                ("albumin", "g/L"): 1, ("albumin", "g/dL"): 2, ("platelets", "10^9/L"): 0,
                ("platelets", "/mm3"): 0, ("platelets", "10^3/uL"): 0, ("neutrophils", "10^9/L"): 2,
                ("neutrophils", "/mm3"): 0, ("neutrophils", "10^3/uL"): 2, ("wbc", "10^9/L"): 2,
                ("wbc", "/mm3"): 0, ("wbc", "10^3/uL"): 2, ("hemoglobin", "g/dL"): 1, ("hemoglobin", "g/L"): 0,
                ("creatinine", "umol/L"): 0, ("creatinine", "µmol/L"): 0, ("creatinine", "mg/dL"): 2,
                ("inr", "ratio"): 2, ("inr", ""): 2, ("afp", "ng/mL"): 1, ("afp", "IU/mL"): 1}

_SURNAMES = (("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"),
             ("Huang", "黄"), ("Zhao", "赵"), ("Wu", "吴"), ("Zhou", "周"), ("Xu", "徐"), ("Sun", "孙"),
             ("Ma", "马"), ("Zhu", "朱"), ("Qian", "钱"), ("Guo", "郭"), ("He", "何"), ("Lin", "林"),
             ("Luo", "罗"), ("Gao", "高"), ("Zheng", "郑"), ("Liang", "梁"), ("Xie", "谢"), ("Song", "宋"),
             ("Tang", "唐"), ("Han", "韩"), ("Feng", "冯"), ("Deng", "邓"), ("Cao", "曹"), ("Peng", "彭"))
# No surname is a suffix of another (e.g. "Hu" in "Zhu"), so a full name is never a substring of another name.
_GIVEN = (("jian", "建"), ("guo", "国"), ("ming", "明"), ("hua", "华"), ("wei", "伟"), ("qiang", "强"),
          ("jun", "军"), ("ping", "平"), ("hong", "红"), ("li", "丽"), ("xiu", "秀"), ("ying", "英"),
          ("zhi", "志"), ("yong", "勇"), ("hai", "海"), ("bo", "波"), ("tao", "涛"), ("lei", "磊"),
          ("fang", "芳"), ("min", "敏"), ("jing", "静"), ("xiang", "祥"), ("de", "德"), ("sheng", "胜"),
          ("rong", "荣"), ("qing", "庆"), ("chun", "春"), ("dong", "东"), ("xin", "新"), ("yu", "宇"),
          ("long", "龙"), ("feng", "峰"), ("kai", "凯"), ("hao", "浩"), ("bin", "斌"))
_AREA_CODES = ("110105", "310104", "440106", "330106", "420106", "510107", "320102", "370102", "430102",
               "350203", "450103", "610113", "210102", "130104", "410105")
_CITY = (("Jiangnan", "江南"), ("Lingnan", "岭南"), ("Huaxi", "华西"), ("Zhongyuan", "中原"), ("Bashu", "巴蜀"),
         ("Qilu", "齐鲁"), ("Minyue", "闽越"), ("Jingchu", "荆楚"), ("Xiangjiang", "湘江"), ("Guanzhong", "关中"),
         ("Liaohai", "辽海"), ("Yanzhao", "燕赵"), ("Wuyue", "吴越"), ("Dianchi", "滇池"), ("Longyou", "陇右"),
         ("Songliao", "松辽"), ("Hexi", "河西"), ("Huaihe", "淮河"), ("Taihu", "太湖"), ("Qiantang", "钱塘"))
_HOSPITAL_KIND = (("First Affiliated Hospital of {} Medical University", "{}医科大学第一附属医院"),
                  ("{} Provincial Cancer Hospital", "{}省肿瘤医院"),
                  ("{} People's Hospital", "{}人民医院"),
                  ("{} Hepatobiliary Surgery Hospital", "{}肝胆外科医院"),
                  ("{} University Cancer Center", "{}大学肿瘤防治中心"))

_EN_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d")
_ZH_DATE_FORMATS = ("%Y年%m月%d日", "%Y/%m/%d", "%Y-%m-%d")
_XLSX_FIXED_TIME = _dt.datetime(2025, 10, 1, 0, 0, 0)  # docProps created/modified of every XLSX


# ----------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------
def describe() -> str:
    """Return the list of generator assumptions and calibration sources (the module docstring)."""
    return __doc__ or ""


def generate_cohort(config: dict | None, out_dir: str | Path, *,
                    progress: Callable[[str], None] | None = None) -> dict:
    """Generate the synthetic multicentre cohort into `out_dir` (raw/ exports and ground_truth/).

    `config` is the `synthetic:` section of params/default.yaml; missing keys take DEFAULTS, unknown keys raise
    ValueError. Returns {"n_records", "n_persons", "n_per_center", "files", "out_dir"}.
    """
    cfg = resolve_config(config)
    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    contract = load_contract()
    seeds = np.random.SeedSequence(int(cfg["seed"])).spawn(8)
    rng_centre, rng_person, rng_outcome, rng_events, rng_format, rng_defect, rng_id, rng_dup = (
        np.random.default_rng(s) for s in seeds)

    say("centres")
    centres = _make_centres(cfg, rng_centre)
    say("persons and baseline covariates")
    persons = _simulate_persons(cfg, centres, rng_person)
    say("treatment and outcomes")
    model = _simulate_outcomes(cfg, persons, centres, rng_outcome)
    _build_exclusions(cfg, persons, rng_outcome)
    say("events (HAIC, systemic, imaging, labs, AEs)")
    events = _simulate_events(cfg, persons, centres, rng_events)
    records = _make_records(cfg, persons, centres, rng_dup)
    _assign_identifiers(records, centres, rng_id)
    say("formatting centre files and injecting defects")
    files, defects = _format_all(cfg, contract, centres, records, persons, events, rng_format, rng_defect)
    say("writing files")
    written = _write_raw(out, centres, files)
    truth_paths = _write_truth(out, cfg, model, centres, records, persons, events, defects)
    n_per_center = {c.center_id: int((records["center_id"] == c.center_id).sum()) for c in centres}
    return {"n_records": int(len(records)), "n_persons": int(len(persons)), "n_per_center": n_per_center,
            "files": [str(p.relative_to(out)) for p in written + truth_paths], "out_dir": str(out)}


def resolve_config(config: dict | None) -> dict:
    """Merge `config` over DEFAULTS and validate it; unknown keys or bad values raise ValueError naming the key."""
    config = dict(config or {})
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown synthetic config key(s): {', '.join(unknown)}; allowed: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    for key in ("seed", "n_centers", "n_records", "xlsx_centers", "chinese_centers"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], (int, np.integer)):
            raise ValueError(f"synthetic.{key} must be an integer, got {cfg[key]!r}")
        cfg[key] = int(cfg[key])
    if cfg["n_centers"] < 1:
        raise ValueError("synthetic.n_centers must be >= 1")
    if cfg["n_records"] < 5 * cfg["n_centers"]:
        raise ValueError("synthetic.n_records must be at least 5 per centre")
    for key in ("xlsx_centers", "chinese_centers"):
        if not 0 <= cfg[key] <= cfg["n_centers"]:
            raise ValueError(f"synthetic.{key} must be between 0 and n_centers ({cfg['n_centers']})")
    for key in ("haic_share",):
        if not 0 < float(cfg[key]) < 1:
            raise ValueError(f"synthetic.{key} must be in (0, 1)")
    for key in ("ineligible_share", "missing_rate", "duplicate_share", "typo_rate", "loss_to_follow_up"):
        if not 0 <= float(cfg[key]) < 0.5:
            raise ValueError(f"synthetic.{key} must be in [0, 0.5)")
    for key in ("true_hr_os", "true_hr_pfs", "median_os_control_months", "median_pfs_control_months",
                "weibull_shape_os", "weibull_shape_pfs"):
        if not float(cfg[key]) > 0:
            raise ValueError(f"synthetic.{key} must be > 0")
        cfg[key] = float(cfg[key])
    for key in ("accrual_start", "accrual_end", "data_cutoff"):
        try:
            cfg[key] = _dt.date.fromisoformat(str(cfg[key])).isoformat()
        except ValueError as exc:
            raise ValueError(f"synthetic.{key} must be an ISO date YYYY-MM-DD, got {cfg[key]!r}") from exc
    if not cfg["accrual_start"] < cfg["accrual_end"] < cfg["data_cutoff"]:
        raise ValueError("synthetic dates must satisfy accrual_start < accrual_end < data_cutoff")
    return cfg


class _ContractLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 booleans: the contract's bare `no`/`yes` synonyms stay strings."""


_ContractLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


_CONTRACT_CACHE: dict[tuple[str, float], dict] = {}


def load_contract(path: str | Path = CONTRACT_PATH) -> dict:
    """Load the data contract (cached per path and mtime; treat as read-only). Bare yes/no/on/off stay
    strings: PyYAML's SafeLoader would turn the contract's `no` synonyms into False."""
    key = (str(path), Path(path).stat().st_mtime)
    if key not in _CONTRACT_CACHE:
        with open(path, encoding="utf-8") as fh:
            _CONTRACT_CACHE[key] = yaml.load(fh, Loader=_ContractLoader)
    return _CONTRACT_CACHE[key]


# ----------------------------------------------------------------------------------------------------------
# Small clinical helpers (clinical-rules.md section 4)
# ----------------------------------------------------------------------------------------------------------
def child_pugh_score(bilirubin_umol: np.ndarray, albumin_g_l: np.ndarray, inr: np.ndarray,
                     ascites: np.ndarray, encephalopathy: np.ndarray) -> np.ndarray:
    """Child-Pugh points (clinical-rules 4.1): bilirubin <34/34-50/>50 umol/L, albumin >35/28-35/<28 g/L,
    INR <1.7/1.7-2.3/>2.3, ascites none/mild/moderate_severe, encephalopathy none/grade_1_2/grade_3_4."""
    bili = np.asarray(bilirubin_umol, float)
    alb = np.asarray(albumin_g_l, float)
    inr = np.asarray(inr, float)
    pts = np.where(bili < 34, 1, np.where(bili <= 50, 2, 3))
    pts = pts + np.where(alb > 35, 1, np.where(alb >= 28, 2, 3))
    pts = pts + np.where(inr < 1.7, 1, np.where(inr <= 2.3, 2, 3))
    asc = pd.Series(ascites).map({"none": 1, "mild": 2, "moderate_severe": 3}).to_numpy(float)
    enc = pd.Series(encephalopathy).map({"none": 1, "grade_1_2": 2, "grade_3_4": 3}).to_numpy(float)
    return pts + asc + enc


def albi_score(bilirubin_umol: np.ndarray, albumin_g_l: np.ndarray) -> np.ndarray:
    """ALBI = 0.66 log10(bilirubin umol/L) - 0.085 albumin g/L (Johnson 2015; clinical-rules 4.2)."""
    return 0.66 * np.log10(np.asarray(bilirubin_umol, float)) - 0.085 * np.asarray(albumin_g_l, float)


def albi_grade(score: np.ndarray) -> np.ndarray:
    """ALBI grade 1 if score <= -2.60, 2 if <= -1.39, else 3 (clinical-rules 4.2)."""
    s = np.asarray(score, float)
    return np.where(s <= -2.60, 1, np.where(s <= -1.39, 2, 3))


def bclc_2022(mvi: np.ndarray, ehs: np.ndarray, ecog: np.ndarray) -> np.ndarray:
    """BCLC 2022 B/C derivation used by the pipeline: C if MVI or EHS or ECOG 1-2, else B (clinical-rules 4.3)."""
    ecog = np.asarray(ecog)
    return np.where(np.asarray(mvi, bool) | np.asarray(ehs, bool) | np.isin(ecog, (1, 2)), "C", "B")


def national_id_check_digit(first17: str) -> str:
    """GB 11643-1999 check character: weights 2^(17-i) mod 11, sum mod 11 mapped to '10X98765432'."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"national ID body must be 17 digits, got {first17!r}")
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    total = sum(int(d) * w for d, w in zip(first17, weights))
    return "10X98765432"[total % 11]


def weibull_time_with_switch(e: np.ndarray, eta: np.ndarray, scale: float, shape: float, hr: float,
                             switch: np.ndarray) -> np.ndarray:
    """Invert H(t) = E for H(t) = (t/scale)^shape exp(eta), multiplied by `hr` from time `switch` on.

    For t < s: H = (t/scale)^k e^eta; for t >= s: H = e^eta [(s/scale)^k + hr ((t/scale)^k - (s/scale)^k)].
    `switch` = inf means never treated (plain Weibull PH), 0 means treated from time zero.
    """
    base = np.asarray(e, float) * np.exp(-np.asarray(eta, float))   # required baseline cumulative hazard
    s = np.asarray(switch, float)
    with np.errstate(over="ignore", invalid="ignore"):
        h_s = np.where(np.isinf(s), np.inf, (np.maximum(s, 0.0) / scale) ** shape)
        t_untreated = scale * base ** (1.0 / shape)
        t_treated = scale * (h_s + (base - h_s) / hr) ** (1.0 / shape)
    return np.where(base <= h_s, t_untreated, t_treated)


def weibull_median(scale: float, shape: float) -> float:
    """Median of S(t) = exp(-(t/scale)^shape): scale * ln(2)^(1/shape)."""
    return scale * math.log(2.0) ** (1.0 / shape)


# ----------------------------------------------------------------------------------------------------------
# Centres
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Centre:
    """One centre's export conventions (everything the formatting stage needs)."""
    center_id: str
    name: str
    language: str
    date_format: str
    file_ext: str
    export_date: np.datetime64
    n_records: int
    haic_logit: float
    bili_unit: str
    alb_unit: str
    diameter_unit: str
    unit_drift: float
    lab_units: dict[str, str]
    uln: dict[str, float]          # canonical units
    lln: dict[str, float]
    mvi_system: str                # "vp" or "cheng"
    records_site_bor: bool
    all_measurable_target: bool
    reports_lab_aes: bool
    single_criterion_share: float
    regimen: str
    mrn_prefix: str
    mrn_style: int
    pivka_missing: float


def _centre_sizes(n_records: int, n_centers: int, rng: np.random.Generator) -> np.ndarray:
    """Skewed centre sizes: log-normal weights (sd 0.6), first two x3 and x2; at least 5 records each."""
    w = rng.lognormal(0.0, 0.6, n_centers)
    if n_centers >= 2:
        w[0] *= 3.0
        w[1] *= 2.0
    elif n_centers == 1:
        w[0] = 1.0
    minimum = 5
    share = w / w.sum()
    raw = minimum + share * (n_records - minimum * n_centers)
    sizes = np.floor(raw).astype(int)
    order = np.argsort(-(raw - sizes), kind="stable")
    sizes[order[: n_records - sizes.sum()]] += 1
    return sizes


def _make_centres(cfg: dict, rng: np.random.Generator) -> list[Centre]:
    n = cfg["n_centers"]
    sizes = _centre_sizes(cfg["n_records"], n, rng)
    zh = set(rng.choice(n, cfg["chinese_centers"], replace=False).tolist())
    xlsx = set(rng.choice(n, cfg["xlsx_centers"], replace=False).tolist())
    cutoff = np.datetime64(cfg["data_cutoff"])
    cities = rng.permutation(len(_CITY))
    en_i = zh_i = 0
    centres = []
    for i in range(n):
        lang = "zh" if i in zh else "en"
        if lang == "zh":
            fmt = _ZH_DATE_FORMATS[zh_i % len(_ZH_DATE_FORMATS)]
            zh_i += 1
        else:
            fmt = _EN_DATE_FORMATS[en_i % len(_EN_DATE_FORMATS)]
            en_i += 1
        city_en, city_zh = _CITY[cities[i % len(_CITY)]]
        kind_en, kind_zh = _HOSPITAL_KIND[int(rng.integers(len(_HOSPITAL_KIND)))]
        name = kind_zh.format(city_zh) if lang == "zh" else kind_en.format(city_en)
        lab_units = {t: ("umol/L" if t in ("bilirubin", "creatinine") else _canonical_lab_unit(t)) for t in LAB_TESTS}
        for test, (alt, p) in LAB_ALT_UNITS.items():
            if rng.random() < p:
                lab_units[test] = alt
        if rng.random() < 0.3:
            lab_units["bilirubin"] = "µmol/L"
        bili_unit = "mg/dL" if rng.random() < 0.2 else "umol/L"
        alb_unit = "g/dL" if rng.random() < 0.2 else "g/L"
        if bili_unit == "mg/dL":
            lab_units["bilirubin"] = "mg/dL"
        if alb_unit == "g/dL":
            lab_units["albumin"] = "g/dL"
        uln = {"alt": float(rng.choice([40.0, 50.0])), "ast": float(rng.choice([35.0, 40.0])),
               "bilirubin": float(rng.choice([17.1, 20.5, 21.0])), "albumin": 55.0,
               "platelets": float(rng.choice([300.0, 350.0])), "neutrophils": float(rng.choice([6.3, 7.5])),
               "wbc": float(rng.choice([9.5, 10.0])), "hemoglobin": float(rng.choice([16.0, 17.5])),
               "creatinine": float(rng.choice([97.0, 106.0, 111.0])), "inr": float(rng.choice([1.15, 1.2])),
               "afp": float(rng.choice([7.0, 20.0, 25.0]))}
        lln = {"alt": 0.0, "ast": 0.0, "bilirubin": 0.0, "albumin": float(rng.choice([35.0, 40.0])),
               "platelets": float(rng.choice([100.0, 125.0])), "neutrophils": float(rng.choice([1.8, 2.0])),
               "wbc": float(rng.choice([3.5, 4.0])), "hemoglobin": float(rng.choice([12.0, 13.0])),
               "creatinine": float(rng.choice([44.0, 57.0])), "inr": float(rng.choice([0.8, 0.85])),
               "afp": 0.0}
        regimen = str(rng.choice(["folfox", "folfox", "folfox", "folfox_46h", "oxaliplatin_raltitrexed"]))
        centres.append(Centre(
            center_id=f"C{i + 1:02d}", name=name, language=lang, date_format=fmt,
            file_ext="xlsx" if i in xlsx else "csv",
            export_date=cutoff + np.timedelta64(int(rng.integers(7, 46)), "D"),
            n_records=int(sizes[i]), haic_logit=float(rng.normal(0.0, 0.5)),
            bili_unit=bili_unit, alb_unit=alb_unit, diameter_unit="cm" if rng.random() < 0.25 else "mm",
            unit_drift=0.15 if rng.random() < 0.2 else 0.0, lab_units=lab_units, uln=uln, lln=lln,
            mvi_system="cheng" if rng.random() < (0.6 if lang == "zh" else 0.25) else "vp",
            records_site_bor=bool(rng.random() < 0.4), all_measurable_target=bool(rng.random() < 0.2),
            reports_lab_aes=bool(rng.random() < 0.4),
            single_criterion_share=0.15 if rng.random() < 0.3 else 0.0, regimen=regimen,
            mrn_prefix="".join(rng.choice(list("ABCDEFGHJKLMNPQRSTWXYZ"), 2 + int(rng.integers(2)))),
            mrn_style=int(rng.integers(3)), pivka_missing=float(rng.choice([0.25, 0.35, 0.45, 0.7]))))
    return centres


def _canonical_lab_unit(test: str) -> str:
    return {"alt": "U/L", "ast": "U/L", "bilirubin": "umol/L", "albumin": "g/L", "platelets": "10^9/L",
            "neutrophils": "10^9/L", "wbc": "10^9/L", "hemoglobin": "g/dL", "creatinine": "umol/L",
            "inr": "ratio", "afp": "ng/mL"}[test]


# ----------------------------------------------------------------------------------------------------------
# Persons: baseline covariates and built exclusions
# ----------------------------------------------------------------------------------------------------------
def _index_days(p: pd.DataFrame) -> np.ndarray:
    """Index dates as datetime64[D] (pandas stores them at second resolution)."""
    return p["index_date"].to_numpy().astype("datetime64[D]")


def _day_diff(a: Any, b: Any) -> np.ndarray:
    """Whole days a - b for datetime64 values of any resolution."""
    return (np.asarray(a).astype("datetime64[D]") - np.asarray(b).astype("datetime64[D]")).astype(int)


def _normal_sf(z: np.ndarray) -> np.ndarray:
    """Standard normal survival function 0.5 erfc(z / sqrt 2) (math.erfc; avoids importing scipy.stats)."""
    return np.array([0.5 * math.erfc(v / math.sqrt(2.0)) for v in np.asarray(z, float)])


def _expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _draw_categories(rng: np.random.Generator, options: Iterable, p: Iterable[float], n: int) -> np.ndarray:
    options = list(options)
    idx = rng.choice(len(options), size=n, p=np.asarray(list(p), float) / np.sum(list(p)))
    return np.asarray(options, dtype=object)[idx]


def _simulate_persons(cfg: dict, centres: list[Centre], rng: np.random.Generator) -> pd.DataFrame:
    """Unique persons with baseline covariates (cal. 2b); exclusions are built later (_build_exclusions)."""
    n_dup = int(round(cfg["duplicate_share"] * cfg["n_records"]))
    n = cfg["n_records"] - n_dup
    sizes = np.array([c.n_records for c in centres])
    # referral duplicates are taken off the largest centres' person count so records per centre = sizes
    person_sizes = sizes.copy()
    for _ in range(n_dup):
        person_sizes[int(np.argmax(person_sizes))] -= 1
    centre_idx = rng.permutation(np.repeat(np.arange(len(centres)), person_sizes))
    p = pd.DataFrame({"person_id": np.arange(n), "centre_idx": centre_idx})

    accrual = (np.datetime64(cfg["accrual_start"]), np.datetime64(cfg["accrual_end"]))
    span = int((accrual[1] - accrual[0]).astype(int))
    p["index_date"] = accrual[0] + rng.integers(0, span + 1, n).astype("timedelta64[D]")
    p["age"] = np.round(np.clip(rng.normal(54.0, 11.0, n), 22, 85), 1)
    p["sex"] = np.where(rng.random(n) < 0.87, "male", "female")
    p["etiology"] = _draw_categories(rng, ETIOLOGIES, ETIOLOGY_P, n)

    mvi = rng.random(n) < 0.65
    ehs = rng.random(n) < 0.28
    limited = ~mvi & ~ehs
    u = rng.random(n)
    ecog = np.where(limited, np.where(u < 0.66, 0, np.where(u < 0.97, 1, 2)),
                    np.where(u < 0.20, 0, np.where(u < 0.95, 1, 2)))
    p["mvi"] = mvi
    p["ehs"] = ehs
    p["ecog"] = ecog
    vp = _draw_categories(rng, ("Vp1", "Vp2", "Vp3", "Vp4"), (0.08, 0.17, 0.35, 0.40), n)
    p["vp_grade"] = np.where(mvi, vp, "")
    cheng = np.select([np.isin(vp, ("Vp1", "Vp2")), vp == "Vp3"], ["I", "II"],
                      np.where(rng.random(n) < 0.15, "IV", "III"))
    p["cheng_grade"] = np.where(mvi, cheng, "")

    multi_p = np.where(limited & (ecog == 0), 0.90, 0.56)
    multi = rng.random(n) < multi_p
    many = _draw_categories(rng, ("2", "3", "4-9", "50"), (0.30, 0.22, 0.40, 0.08), n)
    number = np.where(many == "4-9", rng.integers(4, 10, n), np.where(many == "50", 50, 0))
    number = np.where(many == "2", 2, np.where(many == "3", 3, number))
    p["tumour_number"] = np.where(multi, number, 1)
    log_size = np.log(8.2) + 0.13 * mvi + rng.normal(0, 0.42, n)
    p["max_tumour_size"] = np.round(np.clip(np.exp(log_size), 1.2, 25.0), 1)
    log10_afp = 2.55 + 0.35 * mvi + 0.9 * (log_size - np.log(8.5)) + rng.normal(0, 1.25, n)
    p["afp"] = np.round(np.clip(10 ** log10_afp, 1.0, 2_000_000.0), 1)
    log10_pivka = 3.0 + 0.35 * (log10_afp - 2.8) + 0.5 * (log_size - np.log(8.5)) + rng.normal(0, 0.85, n)
    p["pivka_ii"] = np.round(np.clip(10 ** log10_pivka, 5.0, 500_000.0), 0)

    liver = rng.normal(0, 1, n)
    p["liver_latent"] = liver
    p["total_bilirubin"] = np.round(np.clip(np.exp(np.log(14.5) + 0.42 * liver + rng.normal(0, 0.30, n)),
                                            3.0, 120.0), 1)
    p["albumin"] = np.round(np.clip(38.6 - 5.2 * liver + rng.normal(0, 3.6, n), 20.0, 52.0), 1)
    p["inr"] = np.round(np.clip(1.04 + 0.07 * liver + rng.normal(0, 0.07, n), 0.85, 2.6), 2)
    ua = rng.random(n)
    p_mild = _expit(-2.3 + 1.1 * liver)
    p_mod = _expit(-5.2 + 1.3 * liver)
    p["ascites"] = np.where(ua < p_mod, "moderate_severe", np.where(ua < p_mod + p_mild, "mild", "none"))
    p["encephalopathy"] = np.where(rng.random(n) < _expit(-4.6 + 0.9 * liver), "grade_1_2", "none")

    # lab baselines (canonical units); 25-40 % of ALT/AST/bilirubin above ULN (cal. 3b)
    p["alt0"] = np.exp(np.log(31.0) + 0.12 * liver + rng.normal(0, 0.45, n))
    p["ast0"] = np.exp(np.log(31.0) + 0.18 * liver + 0.10 * mvi + rng.normal(0, 0.42, n))
    p["plt0"] = np.clip(np.exp(np.log(155.0) - 0.18 * liver + rng.normal(0, 0.38, n)), 35.0, 600.0)
    p["neut0"] = np.exp(np.log(3.5) + rng.normal(0, 0.30, n))
    p["wbc0"] = p["neut0"] * np.exp(np.log(1.65) + rng.normal(0, 0.10, n))
    p["hb0"] = np.clip(np.where(p["sex"] == "male", 13.6, 12.3) - 0.35 * liver + rng.normal(0, 1.3, n), 7.0, 18.0)
    p["creat0"] = np.exp(np.log(np.where(p["sex"] == "male", 72.0, 58.0)) + rng.normal(0, 0.18, n))

    plt_ = rng.random(n)
    p["prior_local_therapy"] = np.select(
        [plt_ < 0.55, plt_ < 0.85, plt_ < 0.93, plt_ < 0.97, plt_ < 0.99], ["none", "tace", "resection", "ablation",
                                                                           "radiotherapy"], "other")
    ub = rng.random(n)
    p["diagnosis_basis"] = np.where(ub < 0.45, "histology", np.where(ub < 0.95, "radiology", "cytology"))
    p["histology_subtype"] = np.where(p["diagnosis_basis"] == "radiology", "not_examined", "hcc")
    p["prior_systemic_therapy"] = "no"
    lag = np.where(p["prior_local_therapy"] == "none", rng.integers(5, 91, n), rng.integers(120, 1500, n))
    p["diagnosis_date"] = p["index_date"].to_numpy() - lag.astype("timedelta64[D]")

    p["exclusion_criterion"] = "none"
    p["exclusion_criteria_built"] = ""
    _cap_liver(p)
    _derive_scores(p)
    return p


def _derive_scores(p: pd.DataFrame) -> None:
    """Child-Pugh, ALBI and BCLC 2022 computed from the components (clinical-rules 4.1-4.3)."""
    cp = child_pugh_score(p["total_bilirubin"], p["albumin"], p["inr"], p["ascites"], p["encephalopathy"])
    p["child_pugh_score"] = cp
    p["child_pugh_class"] = np.where(cp <= 6, "A", np.where(cp <= 9, "B", "C"))
    p["albi_score"] = np.round(albi_score(p["total_bilirubin"], p["albumin"]), 3)
    p["albi_grade"] = albi_grade(p["albi_score"])
    stage = bclc_2022(p["mvi"], p["ehs"], p["ecog"])
    p["bclc_derived"] = np.where((p["ecog"].to_numpy() >= 3) | (cp >= 10), "D", stage)


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


def _build_exclusions(cfg: dict, p: pd.DataFrame, rng: np.random.Generator) -> None:
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
    p.loc[m, "histology_subtype"] = _draw_categories(
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
    _derive_scores(p)
    _record_bclc(p, rng, 0.03 if cfg["typo_rate"] > 0 else 0.0)


def _force_haic(p: pd.DataFrame, i: int, offset: int) -> None:
    """HAIC at `offset` days for a person built to fail a HAIC timing criterion."""
    for col, val in (("haic_offset_days", offset), ("realised_arm", ARM_TRIPLE), ("intended_arm", ARM_TRIPLE),
                     ("immortal_time_switch", False)):
        p.iat[i, p.columns.get_loc(col)] = val


def _cap_liver(p: pd.DataFrame) -> None:
    """Simulated persons stay below Child-Pugh 10 (C is only built as an exclusion): ascites, then bilirubin."""
    keep = np.ones(len(p), bool)
    for _ in range(3):
        cp = child_pugh_score(p["total_bilirubin"], p["albumin"], p["inr"], p["ascites"], p["encephalopathy"])
        bad = keep & (cp >= 10)
        if not bad.any():
            return
        p.loc[bad & (p["ascites"] == "moderate_severe"), "ascites"] = "mild"
        p.loc[bad & (p["ascites"] != "moderate_severe") & (p["total_bilirubin"] > 50), "total_bilirubin"] = 45.0
        p.loc[bad & (p["total_bilirubin"] <= 50), "albumin"] = np.maximum(p.loc[bad, "albumin"], 29.0)


# ----------------------------------------------------------------------------------------------------------
# Treatment assignment and outcomes
# ----------------------------------------------------------------------------------------------------------
def _features(p: pd.DataFrame) -> dict[str, np.ndarray]:
    """Covariates used by the assignment, survival and response models (centred)."""
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


def _linear(features: dict[str, np.ndarray], coef: dict[str, float]) -> np.ndarray:
    return sum(coef[k] * features[k] for k in coef)


def _bisect(f: Callable[[float], float], lo: float, hi: float, n_iter: int = 50) -> float:
    """Root of an increasing function f on [lo, hi] by bisection (deterministic)."""
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _simulate_outcomes(cfg: dict, p: pd.DataFrame, centres: list[Centre], rng: np.random.Generator) -> dict:
    """Intended arm, HAIC timing, latent OS/progression (Weibull PH with HAIC switch), censoring, response."""
    n = len(p)
    x = _features(p)
    centre_shift = np.array([centres[i].haic_logit for i in p["centre_idx"]])
    lin = _linear(x, ASSIGN_COEF) + centre_shift
    a0 = _bisect(lambda a: float(_expit(a + lin).mean()) - cfg["haic_share"], -10.0, 10.0)
    first_scan_day = 42 + rng.integers(-7, 8, n)   # first post-baseline scan, never skipped
    ps = _expit(a0 + lin)
    intended = rng.random(n) < ps
    after = rng.random(n) < 0.27
    u = rng.random(n)
    offset = np.where(after, np.where(u < 0.5, rng.integers(1, 15, n), rng.integers(15, 91, n)),
                      np.where(u < 0.5, -rng.integers(0, 15, n), -rng.integers(15, 91, n)))
    offset = np.where(intended, offset, 0)
    switch_m = np.where(intended, np.maximum(offset, 0) / DAYS_PER_MONTH, np.inf)

    z1 = rng.normal(size=n)
    z2 = rng.normal(size=n)
    w_pfs = z1
    w_os = COPULA_RHO * z1 + math.sqrt(1 - COPULA_RHO ** 2) * z2
    e_os = -np.log(_normal_sf(w_os))        # Exp(1); larger W -> longer time
    e_pfs = -np.log(_normal_sf(w_pfs))
    eta_os = _linear(x, OS_COEF)
    eta_pfs = _linear(x, PFS_COEF)
    k_os, k_pfs = cfg["weibull_shape_os"], cfg["weibull_shape_pfs"]
    hr_os, hr_pfs = cfg["true_hr_os"], cfg["true_hr_pfs"]

    def times(scale_os: float, scale_pfs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t0_os = weibull_time_with_switch(e_os, eta_os, scale_os, k_os, 1.0, np.full(n, np.inf))
        t0_pfs = weibull_time_with_switch(e_pfs, eta_pfs, scale_pfs, k_pfs, 1.0, np.full(n, np.inf))
        realised = intended & (np.minimum(t0_os, t0_pfs) > switch_m)
        sw = np.where(realised, switch_m, np.inf)
        return (weibull_time_with_switch(e_os, eta_os, scale_os, k_os, hr_os, sw),
                weibull_time_with_switch(e_pfs, eta_pfs, scale_pfs, k_pfs, hr_pfs, sw), realised)

    # The control medians are COUNTERFACTUAL: every person alive at the first scan, all under TKIs-P
    # (no HAIC). The observed TKIs-P arm is then a little shorter-lived and the observed HAIC arm longer-lived
    # than the counterfactual medians (confounding by indication, immortal time).
    first_scan_m = first_scan_day / DAYS_PER_MONTH
    never = np.full(n, np.inf)
    always = np.zeros(n)

    def os_gap(s: float) -> float:
        t0 = weibull_time_with_switch(e_os, eta_os, s, k_os, 1.0, never)
        return float(np.median(t0[t0 > first_scan_m])) - cfg["median_os_control_months"]

    scale_os = _bisect(os_gap, 0.5, 500.0)
    t0_os = weibull_time_with_switch(e_os, eta_os, scale_os, k_os, 1.0, never)
    analysable = t0_os > first_scan_m

    def pfs_gap(s: float) -> float:
        t0 = weibull_time_with_switch(e_pfs, eta_pfs, s, k_pfs, 1.0, never)
        return float(np.median(np.minimum(t0_os, t0)[analysable])) - cfg["median_pfs_control_months"]

    scale_pfs = _bisect(pfs_gap, 0.2, 500.0)
    t_os, t_prog, realised = times(scale_os, scale_pfs)
    cf = {"os_if_tkis_p": t0_os,
          "os_if_haic": weibull_time_with_switch(e_os, eta_os, scale_os, k_os, hr_os, always),
          "progression_if_tkis_p": weibull_time_with_switch(e_pfs, eta_pfs, scale_pfs, k_pfs, 1.0, never),
          "progression_if_haic": weibull_time_with_switch(e_pfs, eta_pfs, scale_pfs, k_pfs, hr_pfs, always)}
    for k, v in cf.items():
        p[f"{k}_months"] = np.round(v, 3)

    # censoring (days from index): administrative at cutoff (last contact 0-45 days before), loss to follow-up
    cutoff = np.datetime64(cfg["data_cutoff"])
    admin = _day_diff(cutoff, _index_days(p)) - rng.integers(0, 46, n)
    death_day = np.ceil(t_os * DAYS_PER_MONTH).astype(int)
    prog_day = np.ceil(t_prog * DAYS_PER_MONTH).astype(int)
    haic_day = np.where(realised, np.maximum(offset, 0), 0)
    ltfu_day = rng.integers(31, 731, n) + haic_day
    candidates = np.flatnonzero((ltfu_day < np.minimum(death_day, admin)))
    n_lost = min(len(candidates), int(round(cfg["loss_to_follow_up"] * n)))
    lost = np.zeros(n, bool)
    lost[rng.choice(candidates, n_lost, replace=False)] = True
    censor_day = np.where(lost, ltfu_day, admin)
    dead = death_day <= censor_day
    end_day = np.where(dead, death_day, censor_day)

    # latent response score, nested categories by quantiles within the realised arm
    arm = np.where(realised, ARM_TRIPLE, ARM_DOUBLET)
    score = 0.75 * w_pfs + _linear(x, RESPONSE_COEF) + 0.55 * rng.normal(size=n)
    cat_r = np.full(n, "SD", dtype=object)
    cat_m = np.full(n, "SD", dtype=object)
    for a, rates in LATENT_RESPONSE_RATES.items():
        m = arm == a
        if not m.any():
            continue
        q = lambda share: np.quantile(score[m], 1 - share)  # noqa: E731
        s = score
        cat_m[m & (s > q(rates["mrecist_resp"]))] = "PR"
        cat_m[m & (s > q(rates["mrecist_cr"]))] = "CR"
        cat_r[m & (s > q(rates["recist_resp"]))] = "PR"
        cat_r[m & (s > q(rates["recist_cr"]))] = "CR"
    cat_m[cat_r == "CR"] = "CR"
    cat_m[(cat_r == "PR") & (cat_m == "SD")] = "PR"

    p["ps"] = np.round(ps, 4)
    p["intended_arm"] = np.where(intended, ARM_TRIPLE, ARM_DOUBLET)
    p["realised_arm"] = arm
    p["immortal_time_switch"] = intended & ~realised
    p["haic_offset_days"] = np.where(intended, offset, np.nan)
    p["eta_os"] = np.round(eta_os, 4)
    p["eta_pfs"] = np.round(eta_pfs, 4)
    p["os_latent_months"] = np.round(t_os, 3)
    p["progression_latent_months"] = np.round(t_prog, 3)
    p["death_day"] = death_day
    p["prog_day"] = prog_day
    p["censor_day"] = censor_day
    p["end_day"] = end_day
    p["dead"] = dead
    p["first_scan_day"] = first_scan_day
    p["lost"] = lost & ~dead
    p["latent_response_recist"] = cat_r
    p["latent_response_mrecist"] = cat_m
    return {"assign_intercept": a0, "scale_os": scale_os, "scale_pfs": scale_pfs}


# ----------------------------------------------------------------------------------------------------------
# Events: systemic courses, HAIC, imaging, labs, adverse events
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Events:
    courses: list[dict] = field(default_factory=list)
    haic: list[dict] = field(default_factory=list)
    imaging: list[dict] = field(default_factory=list)
    labs: list[dict[str, np.ndarray]] = field(default_factory=list)
    aes: list[dict] = field(default_factory=list)


def _simulate_events(cfg: dict, p: pd.DataFrame, centres: list[Centre], rng: np.random.Generator) -> Events:
    """Per-person event histories (days relative to index): HAIC and imaging per person, labs vectorised over
    all persons, then AEs (which read the person's labs) and systemic courses (which stop at AEs)."""
    ev = Events()
    truth_cols: dict[str, list] = {k: [] for k in (
        "bor_recist", "bor_mrecist", "progression_visit_day", "progression_mode", "depth_ld", "depth_viable",
        "n_post_baseline_scans", "n_haic_cycles", "first_haic_day", "n_initial_drug_classes")}
    export_day = np.array([int(_day_diff(centres[c].export_date, d))
                           for c, d in zip(p["centre_idx"], _index_days(p))])
    rows = list(p.itertuples(index=False))
    haic_days, images = [], []
    for row in rows:
        centre = centres[row.centre_idx]
        haic_days.append(_person_haic(row, centre, rng, ev.haic))
        images.append(_person_imaging(row, centre, rng, ev.imaging))
    labs = _simulate_labs(p, haic_days, rng)
    bounds = np.searchsorted(labs["person_id"], np.arange(len(p) + 1))
    for i, row in enumerate(rows):
        centre, img, hd = centres[row.centre_idx], images[i], haic_days[i]
        mine = {k: v[bounds[i]:bounds[i + 1]] for k, v in labs.items()}
        disc_day = _person_aes(row, centre, hd, mine, rng, ev.aes)
        n_classes = _person_courses(row, hd, img["progression_visit_day"], disc_day, int(export_day[i]), rng,
                                    ev.courses)
        for k in truth_cols:
            if k in img:
                truth_cols[k].append(img[k])
        truth_cols["n_haic_cycles"].append(len(hd))
        truth_cols["first_haic_day"].append(hd[0] if hd else np.nan)
        truth_cols["n_initial_drug_classes"].append(n_classes)
    ev.labs = [labs]
    for k, v in truth_cols.items():
        p[k] = v
    return ev


def _person_haic(row: Any, centre: Centre, rng: np.random.Generator, out: list[dict]) -> list[int]:
    """HAIC cycles every 21 +- 3 days, stopped at latent progression, death or end of follow-up."""
    if row.realised_arm != ARM_TRIPLE:
        return []
    n_planned = int(rng.choice(np.arange(1, 9), p=HAIC_CYCLE_P))
    first = int(row.haic_offset_days)
    stop = min(row.prog_day, row.end_day)
    days = [first]
    for _ in range(n_planned - 1):
        nxt = days[-1] + 21 + int(rng.integers(-3, 4))
        if nxt >= stop:
            break
        days.append(nxt)
    regimen = centre.regimen if rng.random() < 0.85 else str(
        rng.choice(["folfox", "folfox_46h", "oxaliplatin_raltitrexed", "other"]))
    for k, d in enumerate(days, start=1):
        out.append({"person_id": row.person_id, "cycle_number": k, "day": d, "regimen": regimen})
    return days


def _person_courses(row: Any, haic_days: list[int], pd_day: float, disc_day: float, export_day: int,
                    rng: np.random.Generator, out: list[dict]) -> int:
    """TKI/anti-VEGF and PD-(L)1 courses; index = first dose, other class within 0-21 days (cal. 2b mix).
    A course that would start after death or last contact is not written. Returns the number of drug
    classes started (2 = combination)."""
    crits = row.exclusion_criteria_built.split(";")
    tki = str(rng.choice(TKI_AGENTS, p=TKI_P))
    if tki == "bevacizumab":
        pd1 = "atezolizumab" if rng.random() < 0.5 else "sintilimab"
    elif tki == "apatinib" and rng.random() < 0.8:
        pd1 = "camrelizumab"
    else:
        pd1 = str(rng.choice(PD1_AGENTS, p=PD1_P))
    second = int(rng.integers(0, 22))
    tki_first = rng.random() < 0.55
    starts = {tki: 0 if tki_first else second, pd1: second if tki_first else 0}
    agents = [tki, pd1]
    if "no_combination" in crits:
        agents = [tki] if tki_first else [pd1]
    end = int(row.end_day)
    alive_at_end = not row.dead
    agents = [a for a in agents if starts[a] < end or starts[a] == 0]
    for agent in agents:
        start = starts[agent]
        stop_candidates = [end if row.dead else np.inf]
        if np.isfinite(pd_day):
            stop_candidates.append(pd_day + int(rng.integers(0, 29)))
        if np.isfinite(disc_day):
            stop_candidates.append(disc_day + int(rng.integers(0, 8)))
        if rng.random() < 0.10:
            stop_candidates.append(start + int(rng.integers(60, 400)))
        stop = float(min(stop_candidates))
        if "no_systemic_after_haic" in crits and haic_days:
            stop = float(min(stop, haic_days[0] - int(rng.integers(3, 15))))
            stop = max(stop, start + 7)
        elif haic_days and haic_days[0] > 0:   # protocol: >= 1 combination cycle after HAIC
            stop = max(stop, haic_days[0] + 21)
        if row.dead:
            stop = min(stop, end)
        ongoing = (not np.isfinite(stop)) or (alive_at_end and stop >= end) or stop > export_day
        stop_day = None if ongoing else int(max(stop, start))
        span = (stop_day if stop_day is not None else end) - start
        cls = DRUG_CLASS[agent]
        cycles = int(max(1, round(span / 21.0)) if cls in ("pd1", "pdl1", "anti_vegf")
                     else max(1, round(span / DAYS_PER_MONTH)))
        out.append({"person_id": row.person_id, "agent": agent, "drug_class": cls, "start_day": start,
                    "stop_day": stop_day, "cycles": cycles})
    if (np.isfinite(pd_day) and rng.random() < 0.30 and "no_combination" not in crits
            and "no_systemic_after_haic" not in crits):
        start2 = int(pd_day) + int(rng.integers(7, 36))
        if start2 < end:
            agent2 = "regorafenib" if rng.random() < 0.6 else "apatinib"
            out.append({"person_id": row.person_id, "agent": agent2, "drug_class": "tki", "start_day": start2,
                        "stop_day": None if alive_at_end else end, "cycles": max(1, round((end - start2) / 30.4))})
    return len(agents)


# ---- imaging -----------------------------------------------------------------------------------------------
def _visit_days(first_scan: int, end_day: int, rng: np.random.Generator) -> np.ndarray:
    """Scans: first at `first_scan` (42 +- 7 d, never skipped), then every 42 +- 7 days in year 1 and every
    63-84 days after; 8 % of later visits missing, 7 % off-schedule by 8-14 days."""
    year1 = np.arange(84, 366, 42)
    later = year1[-1] + np.cumsum(rng.integers(63, 85, 16))          # covers > 4 years of follow-up
    planned = np.concatenate([year1, later])
    days = planned + rng.integers(-7, 8, len(planned))
    u = rng.random(len(days))
    off = rng.integers(8, 15, len(days)) * rng.choice([-1, 1], len(days))
    days = np.where((u >= 0.08) & (u < 0.15), days + off, days)
    days = np.unique(np.concatenate([[first_scan], days[(u >= 0.08) & (days > first_scan + 14)]]))
    return days[(days > 0) & (days < end_day)]


def _ratio(t_m: np.ndarray, depth: float, t_depth: float) -> np.ndarray:
    """Fraction of baseline diameter: 1 + depth * min(t/t_depth, 1)^0.6 (depth reached at t_depth months)."""
    return 1.0 + depth * np.minimum(np.maximum(t_m, 0) / t_depth, 1.0) ** 0.6


def _person_lesions(row: Any, rng: np.random.Generator) -> list[dict]:
    """Baseline lesions: liver (largest = max_tumour_size), lung/nodes/bone with EHS, PVTT with MVI, ascites."""
    size_mm = row.max_tumour_size * 10.0
    lesions: list[dict] = []
    n_liver = row.tumour_number if row.tumour_number <= 4 else int(rng.integers(3, 5))
    no_meas = "no_measurable_lesion" in row.exclusion_criteria_built.split(";")
    for k in range(n_liver):
        if k == 0:
            ld = round(size_mm)
            typical = True
        else:
            ld = max(6, round(size_mm * rng.uniform(0.15, 0.6)))
            typical = rng.random() >= 0.10
        if no_meas and k:
            ld = min(int(rng.integers(5, 10)), round(size_mm))
        viable = round(ld * rng.uniform(0.8, 1.0)) if typical else None
        lesions.append({"id": f"L{k + 1}", "organ": "liver", "ld0": float(ld), "v0": viable, "sa0": None,
                        "typical": typical})
    if row.ehs:
        kinds = []
        if rng.random() < 0.6:
            kinds += ["lung"] * int(rng.integers(1, 3))
        if rng.random() < 0.45:
            kinds += ["lymph_node"] * int(rng.integers(1, 3))
        if rng.random() < 0.15 or not kinds:
            kinds.append("bone" if rng.random() < 0.6 else "lymph_node")
        for j, kind in enumerate(kinds, start=1):
            if kind == "lung":
                ld = float(rng.integers(8, 31))
                lesions.append({"id": f"E{j}", "organ": "lung", "ld0": ld, "v0": ld, "sa0": None, "typical": True})
            elif kind == "lymph_node":
                sa = float(rng.integers(12, 29))
                ld = float(round(sa * rng.uniform(1.2, 1.6)))
                lesions.append({"id": f"N{j}", "organ": "lymph_node", "ld0": ld, "v0": ld, "sa0": sa,
                                "typical": True})
            else:
                lesions.append({"id": f"E{j}", "organ": "bone", "ld0": None, "v0": None, "sa0": None,
                                "typical": True})
    if row.mvi:
        lesions.append({"id": "PV1", "organ": "portal_vein", "ld0": None, "v0": None, "sa0": None, "typical": True})
    if row.ascites != "none" and rng.random() < 0.5:
        lesions.append({"id": "A1", "organ": "ascites", "ld0": None, "v0": None, "sa0": None, "typical": True})
    return lesions


def _select_targets(lesions: list[dict], criterion: str) -> list[int]:
    """Targets: measurable (LD >= 10 mm; nodes SA >= 15 mm; mRECIST liver must enhance with viable >= 10 mm),
    at most 2 per organ and 5 in total, largest first (RECIST 1.1 1.2; mRECIST 2.1)."""
    cands = []
    for i, les in enumerate(lesions):
        if les["organ"] == "liver":
            size = les["v0"] if criterion == "mrecist" else les["ld0"]
            if criterion == "mrecist" and not les["typical"]:
                continue
            if size is not None and size >= 10:
                cands.append((size, i, "liver"))
        elif les["organ"] == "lung" and les["ld0"] >= 10:
            cands.append((les["ld0"], i, "lung"))
        elif les["organ"] == "lymph_node" and les["sa0"] >= 15:
            cands.append((les["sa0"], i, "lymph_node"))
    per_organ: dict[str, int] = {}
    chosen = []
    for size, i, organ in sorted(cands, key=lambda c: (-c[0], c[1])):
        if per_organ.get(organ, 0) < 2 and len(chosen) < 5:
            chosen.append(i)
            per_organ[organ] = per_organ.get(organ, 0) + 1
    return chosen


def _depths(cat_r: str, cat_m: str, rng: np.random.Generator) -> tuple[float, float]:
    """Depth of LD change and of viable-diameter change for the nested latent categories (cal. 2c)."""
    if cat_r == "CR":
        return -1.0, -1.0
    # Margins of a few points around the -30 % (PR) and +20 % (PD) thresholds keep the derived response on the
    # latent category's side despite whole-millimetre measurements, while the waterfall stays nearly continuous.
    if cat_r == "PR":
        d_r = rng.uniform(-0.80, -0.34)
    elif cat_m in ("CR", "PR"):
        d_r = rng.uniform(-0.26, -0.05)
    else:
        d_r = rng.uniform(-0.26, 0.14)
    if cat_m == "CR":
        return d_r, -1.0
    if cat_m == "PR":
        if d_r < -0.34:      # RECIST PR too: viable 5-20 points deeper, kept above -0.95 (not a CR)
            return d_r, float(np.clip(d_r - rng.uniform(0.05, 0.2), -0.95, -0.34))
        return d_r, float(rng.uniform(-0.80, -0.34))
    return d_r, float(np.clip(d_r - rng.uniform(0.0, 0.04), -0.26, 0.14))


def _person_imaging(row: Any, centre: Centre, rng: np.random.Generator, out: list[dict]) -> dict:
    """Lesion-level scans consistent with the latent response and progression under RECIST 1.1 and mRECIST."""
    lesions = _person_lesions(row, rng)
    base_day = -int(rng.integers(0, 29))
    end = int(row.end_day)
    days = _visit_days(int(row.first_scan_day), end, rng)
    if "no_post_baseline_imaging" in row.exclusion_criteria_built.split(";"):
        days = days[:0]
    pd_idx = np.flatnonzero(days >= row.prog_day)
    pd_visit = int(pd_idx[0]) if len(pd_idx) else None
    if pd_visit is not None:
        days = days[: pd_visit + 1]
    t = days / DAYS_PER_MONTH
    d_r, d_m = _depths(row.latent_response_recist, row.latent_response_mrecist, rng)
    t_d = rng.uniform(1.8, 4.0)
    cr_all = row.latent_response_mrecist == "CR"
    r_ld = _ratio(t, d_r, t_d)
    r_v = _ratio(t, d_m, 0.7 * t_d)
    r_gone = _ratio(t, -1.0, 0.7 * t_d)
    nv = len(days)

    def noisy(base: float, ratio: np.ndarray, floor: float) -> np.ndarray:
        eps = np.clip(rng.normal(0, 0.025, nv), -0.05, 0.05)
        if ratio.size and ratio[-1] > 1.0:   # slowly growing stable disease: smooth, no noise
            vals = base * ratio
        else:
            vals = np.minimum.accumulate(base * ratio * (1 + eps)) if nv else base * ratio
        vals = np.round(vals)
        return np.where(ratio <= 0, 0.0, np.maximum(vals, min(floor, base)))

    # liver targets under either criterion keep their LD (unless RECIST CR); with mRECIST CR every other
    # lesion disappears, so the overall mRECIST response is CR whatever target set an engine picks
    liver_targets = {j for j in _select_targets(lesions, "recist") + _select_targets(lesions, "mrecist")
                     if lesions[j]["organ"] == "liver"}
    series: list[dict] = []
    for j, les in enumerate(lesions):
        s: dict[str, Any] = {"ld": None, "v": None, "sa": None, "status": None}
        organ = les["organ"]
        if organ == "liver":
            if d_r <= -1 or (cr_all and j not in liver_targets):
                s["ld"] = noisy(les["ld0"], r_gone, 0)
            else:
                s["ld"] = noisy(les["ld0"], r_ld, 5.0)
            if les["v0"] is not None:
                if cr_all or d_m <= -1:
                    s["v"] = noisy(les["v0"], r_gone, 0)
                else:
                    s["v"] = noisy(les["v0"], r_v, 2.0)
                s["v"] = np.minimum(s["v"], s["ld"])
        elif organ == "lung":
            s["ld"] = noisy(les["ld0"], r_gone if cr_all else r_ld, 0 if cr_all else 5.0)
            s["v"] = s["ld"].copy()
        elif organ == "lymph_node":
            if cr_all:
                s["sa"] = np.round(les["sa0"] - (les["sa0"] - 8.0) * (1 - r_gone) if nv else np.array([]))
                s["sa"] = np.minimum(s["sa"], les["sa0"])
            else:
                s["sa"] = noisy(les["sa0"], r_ld, 5.0)
            s["ld"] = np.round(s["sa"] * les["ld0"] / les["sa0"])
            s["v"] = s["ld"].copy()
        else:
            s["status"] = np.where(cr_all & (r_gone <= 0), "absent", "present") if nv else np.array([])
        series.append(s)

    mode = "none"
    new_lesions: list[dict] = []
    if pd_visit is not None:
        viable_nadir = sum(float(s["v"][:-1].min()) if nv > 1 and s["v"] is not None else
                           (lesions[j]["v0"] or 0.0) for j, s in enumerate(series)
                           if lesions[j]["organ"] == "liver" and lesions[j]["v0"] is not None)
        if cr_all or viable_nadir <= 0 or rng.random() < 0.6:
            mode = "new_lesion"
            organ = "lung" if (row.ehs and rng.random() < 0.25) else "liver"
            ld = float(rng.integers(10, 31))
            new_lesions.append({"id": "NEW1", "organ": organ, "ld": ld,
                                "v": round(ld * rng.uniform(0.8, 1.0)) if organ == "liver" else ld})
        else:
            mode = "growth"
            liver0 = series[0]
            nadir_l1 = float(np.concatenate([[lesions[0]["ld0"]], liver0["ld"][:-1]]).min())
            g = max(rng.uniform(1.3, 1.6), 1.0 + 7.0 / max(nadir_l1, 1.0))
            for j, s in enumerate(series):
                for key, base_key in (("ld", "ld0"), ("v", "v0"), ("sa", "sa0")):
                    if s[key] is not None and lesions[j][base_key] is not None:
                        prev = np.concatenate([[lesions[j][base_key]], s[key][:-1]])
                        s[key][-1] = math.ceil(prev.min() * g)
                if s["v"] is not None and s["ld"] is not None:
                    s["v"][-1] = min(s["v"][-1], s["ld"][-1]) if lesions[j]["organ"] == "liver" else s["ld"][-1]

    # rows: baseline + visits
    targets_site = set(_select_targets(lesions, "recist"))
    if centre.all_measurable_target:
        targets_site = {j for j, les in enumerate(lesions) if (les["ld0"] or 0) >= 10}
    for v in range(-1, nv):
        day = base_day if v < 0 else int(days[v])
        for j, (les, s) in enumerate(zip(lesions, series)):
            rec = {"person_id": row.person_id, "day": day, "lesion_id": les["id"], "organ": les["organ"],
                   "lesion_type": "target" if j in targets_site else "non_target",
                   "ld_mm": None, "viable_ld_mm": None, "short_axis_mm": None, "arterial_enhancement": None,
                   "nontarget_status": None, "cytology_confirmed": None}
            if les["ld0"] is not None:
                rec["ld_mm"] = les["ld0"] if v < 0 else float(s["ld"][v])
            if les["organ"] in ("liver", "lung", "lymph_node") and les["v0"] is not None:
                rec["viable_ld_mm"] = float(les["v0"] if v < 0 else s["v"][v])
            if les["organ"] == "lymph_node":
                rec["short_axis_mm"] = les["sa0"] if v < 0 else float(s["sa"][v])
            if les["organ"] == "liver":
                enh = les["typical"] and (v < 0 or rec["viable_ld_mm"] > 0)
                rec["arterial_enhancement"] = "yes" if enh else "no"
            if j not in targets_site:
                if les["ld0"] is None:
                    rec["nontarget_status"] = "present" if v < 0 else str(s["status"][v])
                elif les["organ"] == "lymph_node":
                    gone = v >= 0 and rec["short_axis_mm"] < 10
                    rec["nontarget_status"] = "absent" if gone else "present"
                else:
                    gone = v >= 0 and rec["ld_mm"] == 0
                    rec["nontarget_status"] = "absent" if gone else "present"
            if les["organ"] == "ascites":
                rec["cytology_confirmed"] = "no"
            out.append(rec)
        if v == nv - 1 and pd_visit is not None:
            for les in new_lesions:
                out.append({"person_id": row.person_id, "day": day, "lesion_id": les["id"], "organ": les["organ"],
                            "lesion_type": "new", "ld_mm": les["ld"], "viable_ld_mm": float(les["v"]),
                            "short_axis_mm": None,
                            "arterial_enhancement": "yes" if les["organ"] == "liver" else None,
                            "nontarget_status": None, "cytology_confirmed": None})

    bor = {crit: _truth_bor(lesions, series, days, pd_visit, crit) for crit in ("recist", "mrecist")}
    return {"bor_recist": bor["recist"], "bor_mrecist": bor["mrecist"],
            "progression_visit_day": float(days[pd_visit]) if pd_visit is not None else np.nan,
            "progression_mode": mode, "depth_ld": round(d_r, 3), "depth_viable": round(d_m, 3),
            "n_post_baseline_scans": nv}


def _truth_bor(lesions: list[dict], series: list[dict], days: np.ndarray, pd_visit: int | None,
               criterion: str) -> str:
    """Truth BOR from the clean measurements (RECIST 1.1 1.3-1.6 / mRECIST 2.2-2.4; unconfirmed; SD counts from
    TRUTH_MIN_SD_DAYS; an early SD followed by PD gives PD, with nothing after it NE)."""
    if len(days) == 0:
        return "NE"
    targets = _select_targets(lesions, criterion)
    if not targets:
        return "NE"

    def target_value(j: int, v: int | None) -> float:
        les, s = lesions[j], series[j]
        if les["organ"] == "lymph_node":
            return les["sa0"] if v is None else float(s["sa"][v])
        if les["organ"] == "liver" and criterion == "mrecist":
            return les["v0"] if v is None else float(s["v"][v])
        return les["ld0"] if v is None else float(s["ld"][v])

    base = sum(target_value(j, None) for j in targets)
    best = "NE"
    rank = {"CR": 4, "PR": 3, "SD": 2, "PD": 1, "NE": 0}
    for v in range(len(days)):
        if pd_visit is not None and v == pd_visit:
            resp = "PD"
        else:
            vals = [target_value(j, v) for j in targets]
            nodal_ok = all(target_value(j, v) < 10 for j in targets if lesions[j]["organ"] == "lymph_node")
            nonnodal_zero = all(target_value(j, v) == 0 for j in targets if lesions[j]["organ"] != "lymph_node")
            non_targets_gone = True
            for j, les in enumerate(lesions):
                if j in targets:
                    continue
                s = series[j]
                if les["organ"] == "lymph_node":
                    non_targets_gone &= float(s["sa"][v]) < 10
                elif les["organ"] == "liver":
                    val = s["v"][v] if (criterion == "mrecist" and s["v"] is not None) else s["ld"][v]
                    if criterion == "mrecist" and not les["typical"]:
                        val = 0.0
                    non_targets_gone &= float(val) == 0
                elif les["ld0"] is not None:
                    non_targets_gone &= float(s["ld"][v]) == 0
                else:
                    non_targets_gone &= str(s["status"][v]) == "absent"
            if nodal_ok and nonnodal_zero:
                resp = "CR" if non_targets_gone else "PR"
            elif sum(vals) <= 0.7 * base:
                resp = "PR"
            else:
                resp = "SD" if days[v] >= TRUTH_MIN_SD_DAYS else "NE"
        if rank[resp] > rank[best]:
            best = resp
        if resp == "PD":
            break
    return best


# ---- labs --------------------------------------------------------------------------------------------------
def _lab_days(row: Any, haic_days: list[int], rng: np.random.Generator) -> np.ndarray:
    """Baseline 0-7 d before index; q21 +- 3 d to 6 months; q42 +- 5 d to 24 months; around HAIC cycles."""
    base = -int(rng.integers(0, 8))
    q21 = 21 * np.arange(1, 10) + rng.integers(-3, 4, 9)              # days 21 .. 189
    q42 = 189 + 42 * np.arange(1, 14) + rng.integers(-5, 6, 13)       # days 231 .. 735
    h = np.asarray(haic_days, int)
    around = np.concatenate([h[h > 0] - 1, h + rng.integers(5, 13, len(h))])
    d = np.unique(np.concatenate([[base], q21, q42, around]))
    keep = ((d > 0) | (d == base)) & (d < min(int(row.end_day), 730))
    return d[keep]


# Log-scale lab model per test (ASSUMPTION, tuned so lab-derived CTCAE rates land near cal. 3b):
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


def _simulate_labs(p: pd.DataFrame, haic_days: list[list[int]], rng: np.random.Generator
                   ) -> dict[str, np.ndarray]:
    """Canonical-unit lab values for all persons (rows sorted by person, then day): log value = baseline +
    LAB_MODEL effects + noise; AFP also falls with the depth of the latent mRECIST response. Each person's
    first draw is the baseline value of the patients table."""
    sched = [_lab_days(row, hd, rng) for row, hd in zip(p.itertuples(index=False), haic_days)]
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


# ---- CTCAE lab grading used for lab-AE reports and the truth summary -----------------------------------------
def ctcae_lab_grade(test: str, value: np.ndarray, uln: Any, lln: Any, baseline: Any) -> np.ndarray:
    """CTCAE 5.0 lab grade (clinical-rules 3.1) in canonical units; `uln`, `lln`, `baseline` scalars or arrays.

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


def _worst_lab_grades(labs: dict[str, np.ndarray], uln: dict[str, float], lln: dict[str, float]
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


# ---- adverse events -----------------------------------------------------------------------------------------
def _person_aes(row: Any, centre: Centre, haic_days: list[int], labs: dict[str, np.ndarray], rng: np.random.Generator,
                out: list[dict]) -> float:
    """Reported AEs; returns the earliest day of an AE leading to discontinuation (inf when none)."""
    triple = row.realised_arm == ARM_TRIPLE
    end = int(row.end_day)
    disc = np.inf
    for term, (pa_t, p3_t, pa_d, p3_d, gmax) in AE_RATES.items():
        pa, p3 = (pa_t, p3_t) if triple else (pa_d, p3_d)
        u = rng.random()
        if u >= pa:
            continue
        if u < p3:
            grade = 4 if (gmax >= 4 and rng.random() < 0.08) else 3
        else:
            grade = 1 if rng.random() < 0.55 else 2
        if term in _HAIC_TERMS and haic_days:
            onset = int(rng.choice(haic_days)) + int(rng.integers(0, 3))
        elif term in ("hypertension", "ppe", "diarrhea", "proteinuria"):
            onset = int(rng.gamma(2.0, 14.0)) + 1
        elif term == "hypothyroidism":
            onset = int(rng.integers(42, 181))
        else:
            onset = int(rng.integers(3, 121))
        if onset < 1 or onset > end:
            continue
        action = _ae_action(grade, rng)
        if action == "discontinued":
            disc = min(disc, onset)
        out.append(_ae_record(row.person_id, term, grade, onset, action, rng))
    if centre.reports_lab_aes:
        for test, (grade, day) in _worst_lab_grades(labs, centre.uln, centre.lln).items():
            if rng.random() < 0.70 and day > 0:
                action = _ae_action(grade, rng)
                out.append(_ae_record(row.person_id, test, grade, day, action, rng))
    if row.dead and row.death_day <= end and rng.random() < 0.006 / 0.6:
        term = str(rng.choice(["grade5_liver", "grade5_bleed", "grade5_hepatitis"]))
        day = max(1, int(row.death_day) - int(rng.integers(0, 8)))
        out.append({"person_id": row.person_id, "term": term, "grade": 5, "day": day, "attribution":
                    "related", "serious": "yes", "action_taken": "discontinued"})
    return disc


_AE_ACTIONS = ("none", "dose_reduced", "interrupted", "discontinued")
_AE_ACTION_CUM = {1: (0.9, 0.95, 1.0, 1.0), 2: (0.6, 0.85, 1.0, 1.0), 3: (0.1, 0.45, 0.85, 1.0),
                  4: (0.0, 0.1, 0.4, 1.0)}   # cumulative P(none, dose_reduced, interrupted, discontinued)


def _ae_action(grade: int, rng: np.random.Generator) -> str:
    """Action taken by grade (ASSUMPTION): G1 mostly none ... G4 mostly discontinued."""
    u = rng.random()
    cum = _AE_ACTION_CUM[min(grade, 4)]
    return _AE_ACTIONS[next(i for i, c in enumerate(cum) if u < c)]


def _ae_record(person_id: int, term: str, grade: int, day: int, action: str, rng: np.random.Generator) -> dict:
    return {"person_id": person_id, "term": term, "grade": grade, "day": day,
            "attribution": "related" if rng.random() < 0.85 else "unrelated",
            "serious": "yes" if grade >= 3 and rng.random() < 0.5 else "no", "action_taken": action}


# ----------------------------------------------------------------------------------------------------------
# Records (persons + referral duplicates) and identifiers
# ----------------------------------------------------------------------------------------------------------
def _make_records(cfg: dict, p: pd.DataFrame, centres: list[Centre], rng: np.random.Generator) -> pd.DataFrame:
    """One record per person at its centre, plus referral duplicates of eligible persons at another centre."""
    n_dup = cfg["n_records"] - len(p)
    rec = pd.DataFrame({"person_id": p["person_id"], "centre_idx": p["centre_idx"], "duplicate_of_record": -1,
                        "afp_factor": 1.0, "albumin_shift": 0.0})
    sizes = np.array([c.n_records for c in centres])
    have = np.bincount(p["centre_idx"], minlength=len(centres))
    need = np.repeat(np.arange(len(centres)), sizes - have)
    pool = np.flatnonzero((p["exclusion_criterion"] == "none").to_numpy())
    dups = []
    for k, target in enumerate(need[:n_dup]):
        cand = pool[p["centre_idx"].to_numpy()[pool] != target] if len(centres) > 1 else pool
        src = int(rng.choice(cand))
        pool = pool[pool != src]
        slight = rng.random() < 0.5
        dups.append({"person_id": src, "centre_idx": int(target), "duplicate_of_record": src,
                     "afp_factor": float(rng.uniform(0.85, 1.15)) if slight else 1.0,
                     "albumin_shift": float(rng.choice([-1.0, 1.0])) if slight else 0.0})
    rec = pd.concat([rec, pd.DataFrame(dups)], ignore_index=True) if dups else rec
    rec["record_id"] = np.arange(len(rec))
    rec["center_id"] = [centres[i].center_id for i in rec["centre_idx"]]
    return rec


def _assign_identifiers(rec: pd.DataFrame, centres: list[Centre], rng: np.random.Generator) -> None:
    """Fake, unique identifiers: MRN per record; name, phone, national ID per person (shared by duplicates)."""
    persons = np.unique(rec["person_id"])
    names, phones, ids = {}, {}, {}
    used_names: set[str] = set()
    used_phones: set[str] = set()
    for pid in persons:
        while True:
            sur = _SURNAMES[int(rng.integers(len(_SURNAMES)))]
            g1 = _GIVEN[int(rng.integers(len(_GIVEN)))]
            g2 = _GIVEN[int(rng.integers(len(_GIVEN)))]
            pinyin = f"{sur[0]} {(g1[0] + g2[0]).capitalize()}"
            hanzi = sur[1] + g1[1] + g2[1]
            if pinyin not in used_names and hanzi not in used_names:
                used_names.update((pinyin, hanzi))
                names[pid] = (pinyin, hanzi)
                break
        while True:
            ph = "1" + str(rng.choice(["3", "5", "8"])) + "".join(map(str, rng.integers(0, 10, 9)))
            if ph not in used_phones:
                used_phones.add(ph)
                phones[pid] = ph
                break
        ids[pid] = int(rng.integers(len(_AREA_CODES))), int(rng.integers(0, 1000))
    rec["patient_name_pinyin"] = [names[pid][0] for pid in rec["person_id"]]
    rec["patient_name_hanzi"] = [names[pid][1] for pid in rec["person_id"]]
    rec["phone"] = [phones[pid] for pid in rec["person_id"]]
    rec["_id_seed"] = [ids[pid] for pid in rec["person_id"]]
    used_mrn: set[str] = set()
    mrns = []
    for cidx in rec["centre_idx"]:
        c = centres[cidx]
        while True:
            num = int(rng.integers(10_000, 9_999_999))
            m = (f"{c.mrn_prefix}{num:07d}", f"{c.mrn_prefix}-{num % 1_000_000:06d}",
                 f"{c.mrn_prefix}{2020 + num % 5}{num % 100000:05d}")[c.mrn_style]
            if m not in used_mrn:
                used_mrn.add(m)
                mrns.append(m)
                break
    rec["mrn"] = mrns


def _national_ids(rec: pd.DataFrame, p: pd.DataFrame) -> dict[int, str]:
    """18-character national ID per person: area code, birth date, sequence (odd = male), GB 11643 check."""
    out: dict[int, str] = {}
    used: set[str] = set()
    for pid, (area, seq) in zip(rec["person_id"], rec["_id_seed"]):
        if pid in out:
            continue
        birth = pd.Timestamp(p.at[pid, "birth_date"]).strftime("%Y%m%d")
        male = p.at[pid, "sex"] == "male"
        s = seq
        while True:
            s3 = s % 1000
            if (s3 % 2 == 1) != male:
                s3 = (s3 + 1) % 1000
            body = f"{_AREA_CODES[area]}{birth}{s3:03d}"
            nid = body + national_id_check_digit(body)
            if nid not in used:
                used.add(nid)
                out[pid] = nid
                break
            s += 2
    return out


# ----------------------------------------------------------------------------------------------------------
# Formatting: canonical tables -> centre files (strings) with the defect log
# ----------------------------------------------------------------------------------------------------------
def _is_cjk(s: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in s)


class _Labeller:
    """Writes canonical category values with a centre's preferred synonym (contract synonyms) and 12 % mixing."""

    def __init__(self, contract: dict, centre: Centre, rng: np.random.Generator) -> None:
        self.contract = contract
        self.centre = centre
        self.rng = rng
        self.primary: dict[tuple[str, str, str], str] = {}

    def variants(self, table: str, column: str, value: str) -> list[str]:
        col = self.contract["tables"][table]["columns"][column]
        syn = [str(s) for s in (col.get("synonyms") or {}).get(value, [])]
        allv = [value] + syn
        if self.centre.language == "zh":
            return allv
        return [v for v in allv if not _is_cjk(v)]

    def pick_primary(self, table: str, column: str, value: str) -> str:
        key = (table, column, value)
        if key not in self.primary:
            allv = self.variants(table, column, value)
            if self.centre.language == "zh":
                zh = [v for v in allv if _is_cjk(v)]
                self.primary[key] = str(self.rng.choice(zh)) if zh else allv[0]
            else:
                self.primary[key] = value if (self.rng.random() < 0.6 or len(allv) == 1) else str(
                    self.rng.choice(allv[1:]))
        return self.primary[key]

    def write(self, table: str, column: str, values: Iterable, mix: float = 0.12) -> list[str]:
        """Primary variant per value; a share `mix` of cells gets a random variant instead."""
        vals = np.array(["" if (v is None or (isinstance(v, float) and v != v)) else str(v) for v in values],
                        dtype=object)
        u = self.rng.random(len(vals))
        pick = self.rng.random(len(vals))
        primary = {"": ""}
        for v in dict.fromkeys(vals.tolist()):   # first-appearance order: deterministic variant choice
            if v != "":
                primary[v] = self.pick_primary(table, column, v)
        out = np.array([primary[v] for v in vals.tolist()], dtype=object)
        for i in np.flatnonzero((u < mix) & (vals != "")):
            variants = self.variants(table, column, vals[i])
            out[i] = variants[int(pick[i] * len(variants))]
        return out.tolist()


def _fmt_num(values: Iterable, decimals: int) -> list[str]:
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            out.append("")
        else:
            out.append(f"{float(v):.{decimals}f}" if decimals else str(int(round(float(v)))))
    return out


def _fmt_dates(dates: np.ndarray, fmt: str) -> list[str]:
    """Format datetime64[D] values (NaT -> '') with strftime, formatting each distinct date once."""
    arr = np.asarray(dates, dtype="datetime64[D]")
    uniq, inv = np.unique(arr, return_inverse=True)
    text = []
    for u in uniq:
        if np.isnat(u):
            text.append("")
        else:
            text.append(u.astype(object).strftime(fmt))
    return [text[i] for i in inv.ravel()]


@dataclass
class _Table:
    """One centre file being built: string frame `out`, hidden canonical info `meta`, defect log."""
    center_id: str
    name: str
    date_format: str
    out: pd.DataFrame
    meta: pd.DataFrame
    numeric: tuple[str, ...]
    defects: list[dict] = field(default_factory=list)
    touched: set = field(default_factory=set)

    def set(self, key: Any, column: str, written: str, defect: str, original: str | None = None) -> bool:
        if (key, column) in self.touched:
            return False
        orig = self.out.at[key, column] if original is None else original
        self.out.at[key, column] = written
        self.touched.add((key, column))
        self.defects.append({"key": key, "column": column, "defect": defect, "original_value": orig,
                             "written_value": written})
        return True


def _days_to_dates(index_dates: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Index date + whole days (NaN days -> NaT), as datetime64[D]."""
    d = np.asarray(days, float)
    out = np.full(len(d), np.datetime64("NaT"), dtype="datetime64[D]")
    ok = np.isfinite(d)
    out[ok] = np.asarray(index_dates).astype("datetime64[D]")[ok] + d[ok].astype(int).astype("timedelta64[D]")
    return out


def _one_date(value: Any, fmt: str) -> str:
    return _fmt_dates(np.array([np.datetime64(pd.Timestamp(value).date(), "D")]), fmt)[0]


def _format_all(cfg: dict, contract: dict, centres: list[Centre], rec: pd.DataFrame, p: pd.DataFrame,
                ev: Events, rng: np.random.Generator, rng_def: np.random.Generator
                ) -> tuple[dict[str, dict[str, _Table]], pd.DataFrame]:
    """Build every centre file as strings and inject the defects (recorded with their final row numbers)."""
    birth = p["index_date"].to_numpy() - np.round(p["age"].to_numpy() * 365.25).astype("timedelta64[D]")
    p["birth_date"] = birth
    nid = _national_ids(rec, p)
    rec["national_id"] = [nid[pid] for pid in rec["person_id"]]
    canon = _canonical_tables(p, rec, ev)
    src_label = {int(r): f"{c}:{m}" for r, c, m in zip(rec["record_id"], rec["center_id"], rec["mrn"])}
    scale = cfg["missing_rate"] / 0.05
    files: dict[str, dict[str, _Table]] = {}
    all_defects = []
    for ci, centre in enumerate(centres):
        lab = _Labeller(contract, centre, rng)
        rec_c = rec[rec["centre_idx"] == ci]
        tables = {
            "patients": _fmt_patients(centre, lab, rec_c, p, rng),
            "haic_cycles": _fmt_simple(centre, lab, "haic_cycles", canon["haic_cycles"], rec_c),
            "systemic_courses": _fmt_simple(centre, lab, "systemic_courses", canon["systemic_courses"], rec_c),
            "tumour_assessments": _fmt_tumour(centre, lab, canon["tumour_assessments"], rec_c, rng),
            "labs": _fmt_labs(centre, lab, canon["labs"], rec_c, rng),
            "adverse_events": _fmt_aes(centre, lab, canon["adverse_events"], rec_c, rng),
            "follow_up": _fmt_follow_up(centre, lab, rec_c, p),
        }
        _inject_defects(cfg, centre, tables, rec_c, src_label, scale, rng_def)
        files[centre.center_id] = tables
        for tname, t in tables.items():
            pos = {k: i + 1 for i, k in enumerate(t.out.index)}
            for d in t.defects:
                all_defects.append({"center_id": centre.center_id, "file": f"{tname}.{centre.file_ext}",
                                    "row": pos[d["key"]], "column": d["column"], "defect": d["defect"],
                                    "original_value": d["original_value"], "written_value": d["written_value"]})
    defects = pd.DataFrame(all_defects, columns=["center_id", "file", "row", "column", "defect", "original_value",
                                                 "written_value"])
    return files, defects


def _canonical_tables(p: pd.DataFrame, rec: pd.DataFrame, ev: Events) -> dict[str, pd.DataFrame]:
    """Event tables keyed by person (days from index); records pick their person's rows later."""
    haic = pd.DataFrame(ev.haic, columns=["person_id", "cycle_number", "day", "regimen"])
    courses = pd.DataFrame(ev.courses, columns=["person_id", "agent", "drug_class", "start_day", "stop_day", "cycles"])
    img = pd.DataFrame(ev.imaging)
    labs = pd.DataFrame({k: np.concatenate([x[k] for x in ev.labs]) for k in ("person_id", "day", "test", "value")})
    aes = pd.DataFrame(ev.aes, columns=["person_id", "term", "grade", "day", "attribution", "serious",
                                        "action_taken"])
    tables = {"haic_cycles": haic, "systemic_courses": courses, "tumour_assessments": img, "labs": labs,
              "adverse_events": aes}
    index = _index_days(p)
    for df in tables.values():
        df["index_date"] = index[df["person_id"].to_numpy(int)] if len(df) else np.array([], "datetime64[D]")
    return tables


def _records_rows(canon: pd.DataFrame, rec_c: pd.DataFrame) -> pd.DataFrame:
    """Rows of the centre's records: person rows joined to each record (a duplicate gets a copy)."""
    mine = canon[canon["person_id"].isin(rec_c["person_id"])]
    return rec_c[["record_id", "person_id", "mrn"]].merge(mine, on="person_id", how="inner")


def _new_table(centre: Centre, name: str, out: pd.DataFrame, meta: pd.DataFrame,
               numeric: tuple[str, ...]) -> _Table:
    out = out.reset_index(drop=True)
    meta = meta.reset_index(drop=True)
    return _Table(centre.center_id, name, centre.date_format, out, meta, numeric)


def _fmt_patients(centre: Centre, lab: _Labeller, rec_c: pd.DataFrame, p: pd.DataFrame,
                  rng: np.random.Generator) -> _Table:
    df = rec_c.drop(columns=["centre_idx"]).merge(p, on="person_id", how="left").sort_values("mrn", kind="stable")
    n = len(df)
    fmt = centre.date_format
    out: dict[str, Any] = {}
    out["mrn"] = df["mrn"].to_numpy()
    out["patient_name"] = np.where(rng.random(n) < (0.8 if centre.language == "zh" else 0.2),
                                   df["patient_name_hanzi"], df["patient_name_pinyin"])
    out["phone"] = df["phone"].to_numpy()
    out["national_id"] = df["national_id"].to_numpy()
    out["birth_date"] = _fmt_dates(df["birth_date"].to_numpy(), fmt)
    out["sex"] = lab.write("patients", "sex", df["sex"])
    out["diagnosis_date"] = _fmt_dates(df["diagnosis_date"].to_numpy(), fmt)
    out["diagnosis_basis"] = lab.write("patients", "diagnosis_basis", df["diagnosis_basis"])
    out["histology_subtype"] = lab.write("patients", "histology_subtype", df["histology_subtype"])
    out["etiology"] = lab.write("patients", "etiology", df["etiology"])
    out["ecog"] = [str(int(e)) for e in df["ecog"]]
    out["ascites"] = lab.write("patients", "ascites", df["ascites"])
    out["encephalopathy"] = lab.write("patients", "encephalopathy", df["encephalopathy"])
    drift = rng.random(n) < centre.unit_drift
    bili_mg = (centre.bili_unit == "mg/dL") ^ drift
    alb_dl = (centre.alb_unit == "g/dL") ^ (drift & (rng.random(n) < 0.5))
    bili = df["total_bilirubin"].to_numpy()
    out["total_bilirubin"] = [f"{b / 17.1:.2f}" if mg else f"{b:.1f}" for b, mg in zip(bili, bili_mg)]
    out["total_bilirubin_unit"] = lab.write("patients", "total_bilirubin_unit",
                                            np.where(bili_mg, "mg/dL", "umol/L"), mix=0.05)
    alb = df["albumin"].to_numpy() + df["albumin_shift"].to_numpy()
    out["albumin"] = [f"{a / 10:.2f}" if dl else f"{a:.1f}" for a, dl in zip(alb, alb_dl)]
    out["albumin_unit"] = lab.write("patients", "albumin_unit", np.where(alb_dl, "g/dL", "g/L"), mix=0.05)
    out["inr"] = _fmt_num(df["inr"], 2)
    out["afp"] = _fmt_num(df["afp"].to_numpy() * df["afp_factor"].to_numpy(), 1)
    out["pivka_ii"] = _fmt_num(df["pivka_ii"], 0)
    out["bclc_stage"] = lab.write("patients", "bclc_stage", df["bclc_recorded"], mix=0.1)
    out["tumour_number"] = [str(int(v)) for v in df["tumour_number"]]
    out["max_tumour_size"] = _fmt_num(df["max_tumour_size"], 1)
    out["mvi"] = lab.write("patients", "mvi", np.where(df["mvi"], "yes", "no"))
    grade = df["cheng_grade"] if centre.mvi_system == "cheng" else df["vp_grade"]
    out["mvi_grade"] = lab.write("patients", "mvi_grade", grade)
    out["ehs"] = lab.write("patients", "ehs", np.where(df["ehs"], "yes", "no"))
    out["prior_local_therapy"] = lab.write("patients", "prior_local_therapy", df["prior_local_therapy"])
    out["prior_systemic_therapy"] = lab.write("patients", "prior_systemic_therapy", df["prior_systemic_therapy"])
    if centre.records_site_bor:
        out["site_bor_recist"] = df["bor_recist"].to_numpy()
        out["site_bor_mrecist"] = df["bor_mrecist"].to_numpy()
    out = pd.DataFrame(out)
    meta = df[["record_id", "person_id", "mrn", "bclc_inconsistent", "bclc_derived", "bclc_recorded", "mvi",
               "index_date", "dead", "birth_date"]].copy()
    meta["bili_mg"] = bili_mg
    meta["alb_dl"] = alb_dl
    t = _new_table(centre, "patients", out, meta, ("ecog", "total_bilirubin", "albumin", "inr", "afp", "pivka_ii",
                                                    "tumour_number", "max_tumour_size"))
    bc = np.flatnonzero(t.meta["bclc_inconsistent"].to_numpy())
    for k in bc:
        t.defects.append({"key": k, "column": "bclc_stage", "defect": "bclc_inconsistent",
                          "original_value": str(t.meta.at[k, "bclc_derived"]),
                          "written_value": t.out.at[k, "bclc_stage"]})
        t.touched.add((k, "bclc_stage"))
    return t


def _fmt_simple(centre: Centre, lab: _Labeller, name: str, canon: pd.DataFrame, rec_c: pd.DataFrame) -> _Table:
    """haic_cycles and systemic_courses."""
    df = _records_rows(canon, rec_c)
    fmt = centre.date_format
    if name == "haic_cycles":
        df = df.sort_values(["mrn", "cycle_number"], kind="stable").reset_index(drop=True)
        out = pd.DataFrame({"mrn": df["mrn"], "cycle_number": df["cycle_number"].astype(int).astype(str)})
        out["haic_date"] = _fmt_dates(_days_to_dates(df["index_date"].to_numpy(), df["day"]), fmt)
        out["regimen"] = lab.write(name, "regimen", df["regimen"])
        return _new_table(centre, name, out, df, ("cycle_number",))
    df = df.sort_values(["mrn", "start_day", "agent"], kind="stable").reset_index(drop=True)
    out = pd.DataFrame({"mrn": df["mrn"]})
    out["agent"] = lab.write(name, "agent", df["agent"], mix=0.08)
    out["drug_class"] = lab.write(name, "drug_class", df["drug_class"], mix=0.08)
    out["start_date"] = _fmt_dates(_days_to_dates(df["index_date"].to_numpy(), df["start_day"]), fmt)
    stop = pd.to_numeric(df["stop_day"], errors="coerce").to_numpy(float)
    out["stop_date"] = _fmt_dates(_days_to_dates(df["index_date"].to_numpy(), stop), fmt)
    out["cycles"] = _fmt_num(df["cycles"], 0)
    return _new_table(centre, name, out, df, ("cycles",))


def _fmt_tumour(centre: Centre, lab: _Labeller, canon: pd.DataFrame, rec_c: pd.DataFrame,
                rng: np.random.Generator) -> _Table:
    df = _records_rows(canon, rec_c).sort_values(["mrn", "day", "lesion_id"], kind="stable").reset_index(drop=True)
    cm = centre.diameter_unit == "cm"
    dec = 1 if cm else 0
    div = 10.0 if cm else 1.0
    out = pd.DataFrame({"mrn": df["mrn"]})
    out["assessment_date"] = _fmt_dates(_days_to_dates(df["index_date"].to_numpy(), df["day"]), centre.date_format)
    out["lesion_id"] = df["lesion_id"].to_numpy()
    out["organ"] = lab.write("tumour_assessments", "organ", df["organ"], mix=0.05)
    out["lesion_type"] = lab.write("tumour_assessments", "lesion_type", df["lesion_type"], mix=0.05)
    for col in ("ld_mm", "viable_ld_mm", "short_axis_mm"):
        out[col] = _fmt_num(pd.to_numeric(df[col], errors="coerce").to_numpy(float) / div, dec)
    out["diameter_unit"] = lab.write("tumour_assessments", "diameter_unit", np.full(len(df), centre.diameter_unit),
                                     mix=0.03)
    out["arterial_enhancement"] = lab.write("tumour_assessments", "arterial_enhancement", df["arterial_enhancement"])
    out["nontarget_status"] = lab.write("tumour_assessments", "nontarget_status", df["nontarget_status"])
    out["cytology_confirmed"] = lab.write("tumour_assessments", "cytology_confirmed", df["cytology_confirmed"])
    return _new_table(centre, "tumour_assessments", out, df, ("ld_mm", "viable_ld_mm", "short_axis_mm"))


def _lab_factor(test: str, unit: str) -> float:
    """Canonical = value x factor (contract lab_units); we divide canonical values by it to write."""
    return {"/mm3": 0.001, "mg/dL": 17.1 if test == "bilirubin" else 88.4, "g/dL": 10.0 if test == "albumin" else 1.0,
            "g/L": 0.1 if test == "hemoglobin" else 1.0, "IU/mL": 1.21}.get(unit, 1.0)


def _fmt_labs(centre: Centre, lab: _Labeller, canon: pd.DataFrame, rec_c: pd.DataFrame,
              rng: np.random.Generator) -> _Table:
    """Labs in the centre's units (value / factor of the contract's lab_units), local ULN/LLN in the same unit."""
    df = _records_rows(canon, rec_c).sort_values(["mrn", "day", "test"], kind="stable").reset_index(drop=True)
    n = len(df)
    tests = df["test"].to_numpy()
    units = np.empty(n, dtype=object)
    dec = np.zeros(n, int)
    value_s, uln_s, lln_s = (np.full(n, "", dtype=object) for _ in range(3))
    for test in LAB_TESTS:
        m = tests == test
        if not m.any():
            continue
        unit = centre.lab_units[test]
        f = _lab_factor(test, unit)
        d = LAB_DECIMALS[(test, unit)]
        units[m] = unit
        dec[m] = d
        fmt = f"{{:.{d}f}}".format
        value_s[m] = [fmt(v) for v in df["value"].to_numpy(float)[m] / f]
        if centre.uln[test] > 0:
            uln_s[m] = fmt(centre.uln[test] / f)
        if centre.lln[test] > 0:
            lln_s[m] = fmt(centre.lln[test] / f)
    out = pd.DataFrame({"mrn": df["mrn"]})
    out["lab_date"] = _fmt_dates(_days_to_dates(df["index_date"].to_numpy(), df["day"]), centre.date_format)
    out["test"] = lab.write("labs", "test", tests, mix=0.05)
    out["value"] = value_s
    out["unit"] = units.astype(str)
    out["uln"] = uln_s
    out["lln"] = lln_s
    meta = df[["record_id", "person_id", "mrn", "day", "test", "index_date"]].copy()
    meta["decimals"] = dec
    return _new_table(centre, "labs", out, meta, ("value", "uln", "lln"))


def _ae_term_text(term: str, language: str, rng: np.random.Generator) -> str:
    v = AE_TERM_VARIANTS[term]
    pool = v["zh"] if (language == "zh" and rng.random() < 0.8) else v["en"]
    return str(rng.choice(pool))


def _fmt_aes(centre: Centre, lab: _Labeller, canon: pd.DataFrame, rec_c: pd.DataFrame,
             rng: np.random.Generator) -> _Table:
    df = _records_rows(canon, rec_c).sort_values(["mrn", "day", "term"], kind="stable").reset_index(drop=True)
    out = pd.DataFrame({"mrn": df["mrn"]})
    out["ae_term"] = [_ae_term_text(t, centre.language, rng) for t in df["term"]]
    out["grade"] = df["grade"].astype(int).astype(str)
    out["onset_date"] = _fmt_dates(_days_to_dates(df["index_date"].to_numpy(), df["day"]), centre.date_format)
    out["attribution"] = lab.write("adverse_events", "attribution", df["attribution"])
    out["serious"] = lab.write("adverse_events", "serious", df["serious"])
    out["action_taken"] = lab.write("adverse_events", "action_taken", df["action_taken"])
    return _new_table(centre, "adverse_events", out, df, ("grade",))


def _fmt_follow_up(centre: Centre, lab: _Labeller, rec_c: pd.DataFrame, p: pd.DataFrame) -> _Table:
    df = rec_c.merge(p[["person_id", "index_date", "end_day", "dead", "lost", "death_day"]], on="person_id",
                     how="left").sort_values("mrn", kind="stable").reset_index(drop=True)
    idx = df["index_date"].to_numpy()
    contact = df["end_day"].to_numpy()
    status = np.where(df["dead"], "dead", np.where(df["lost"], "lost", "alive"))
    out = pd.DataFrame({"mrn": df["mrn"]})
    out["last_contact_date"] = _fmt_dates(_days_to_dates(idx, contact), centre.date_format)
    out["vital_status"] = lab.write("follow_up", "vital_status", status)
    death = np.where(df["dead"], df["death_day"].to_numpy(float), np.nan)
    out["death_date"] = _fmt_dates(_days_to_dates(idx, death), centre.date_format)
    return _new_table(centre, "follow_up", out, df, ())


# ----------------------------------------------------------------------------------------------------------
# Defect injection
# ----------------------------------------------------------------------------------------------------------
_MISSING_RATES = {  # (table, column): base rate at missing_rate = 0.05 (cal. 4)
    ("patients", "pivka_ii"): None,          # per centre (centre.pivka_missing)
    ("patients", "ecog"): 0.065, ("patients", "afp"): 0.035, ("patients", "mvi_grade"): 0.12,
    ("patients", "ascites"): 0.07, ("patients", "encephalopathy"): 0.07,
    ("patients", "diagnosis_date"): 0.02, ("patients", "diagnosis_basis"): 0.02,
    ("patients", "histology_subtype"): 0.02, ("patients", "etiology"): 0.02, ("patients", "inr"): 0.03,
    ("patients", "tumour_number"): 0.02, ("patients", "max_tumour_size"): 0.02,
    ("patients", "prior_local_therapy"): 0.02, ("patients", "prior_systemic_therapy"): 0.02,
    ("patients", "bclc_stage"): 0.02, ("patients", "ehs"): 0.02, ("patients", "mvi"): 0.01,
    ("tumour_assessments", "arterial_enhancement"): 0.02, ("tumour_assessments", "nontarget_status"): 0.03,
    ("tumour_assessments", "ld_mm"): 0.005,
    ("adverse_events", "attribution"): 0.10, ("adverse_events", "serious"): 0.05,
    ("adverse_events", "action_taken"): 0.10, ("adverse_events", "onset_date"): 0.02,
    ("systemic_courses", "cycles"): 0.05, ("systemic_courses", "stop_date"): 0.03,
    ("follow_up", "death_date"): 0.03,
}

_UNKNOWN_LABELS = (("patients", "sex", "U"), ("patients", "etiology", "autoimmune"),
                   ("systemic_courses", "agent", "lenvatinb"), ("patients", "ascites", "trace"),
                   ("adverse_events", "attribution", "unknown"), ("follow_up", "vital_status", "transferred"))


def _n_defects(rate: float, n_rows: int, rng: np.random.Generator, at_least_one: bool) -> int:
    """Binomial(n_rows, rate) defects; at least one when `at_least_one` (the first centre), so that every
    kind occurs in a cohort whenever the rate is positive."""
    if rate <= 0 or n_rows == 0:
        return 0
    k = int(rng.binomial(n_rows, min(rate, 1.0)))
    return max(k, 1) if at_least_one else k


def _inject_defects(cfg: dict, centre: Centre, tables: dict[str, _Table], rec_c: pd.DataFrame,
                    src_label: dict[int, str], scale: float, rng: np.random.Generator) -> None:
    """All cell-level defects of one centre, in a fixed order (a cell gets at most one defect)."""
    _inject_site_bor(tables["patients"], rng, 0.06 if cfg["typo_rate"] > 0 else 0.0)
    _inject_duplicate_patient_marks(tables["patients"], rec_c, src_label)
    if scale > 0:
        _inject_single_criterion(centre, tables["tumour_assessments"], scale, rng)
    if cfg["typo_rate"] > 0:
        first = centre.center_id == "C01"
        _inject_typos(cfg["typo_rate"], tables, rng, first)
        _inject_unknown_labels(cfg["typo_rate"], tables, rng, first)
    if scale > 0:
        _inject_missing(centre, tables, scale, rng)
    if cfg["duplicate_share"] > 0:
        _inject_duplicate_rows(tables, rng)


def _inject_site_bor(t: _Table, rng: np.random.Generator, share: float) -> None:
    """`share` (6 %; 0 when typo_rate = 0) of site-recorded BOR cells moved one category from the truth BOR."""
    if "site_bor_recist" not in t.out.columns:
        return
    shift = {"CR": "PR", "PR": "SD", "SD": "PR", "PD": "SD", "NE": "SD"}
    for col in ("site_bor_recist", "site_bor_mrecist"):
        for k in t.out.index[rng.random(len(t.out)) < share]:
            orig = t.out.at[k, col]
            t.set(k, col, shift[orig], "site_bor_discordant", orig)


def _inject_duplicate_patient_marks(t: _Table, rec_c: pd.DataFrame, src_label: dict[int, str]) -> None:
    """Referral duplicates: logged on the duplicate record's mrn cell (original = first record's centre:mrn)."""
    recs = rec_c.set_index("record_id")
    for k in t.out.index:
        rid = int(t.meta.at[k, "record_id"])
        src = int(recs.at[rid, "duplicate_of_record"])
        if src >= 0:
            t.defects.append({"key": k, "column": "mrn", "defect": "duplicate_patient",
                              "original_value": src_label[src],
                              "written_value": t.out.at[k, "mrn"]})
            t.touched.add((k, "mrn"))


def _inject_single_criterion(centre: Centre, t: _Table, scale: float, rng: np.random.Generator) -> None:
    """Some centres record only one criterion for a share of patients: liver ld_mm or viable_ld_mm all empty."""
    share = min(0.9, centre.single_criterion_share * scale)
    if share <= 0 or t.out.empty:
        return
    for mrn in t.out["mrn"].unique():
        if rng.random() >= share:
            continue
        col = "viable_ld_mm" if rng.random() < 0.75 else "ld_mm"
        rows = t.out.index[(t.out["mrn"] == mrn).to_numpy() & (t.out[col] != "").to_numpy()
                           & (t.meta["organ"] == "liver").to_numpy()]
        for k in rows:
            t.set(k, col, "", "criterion_not_recorded")


def _pick(t: _Table, column: str, mask: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Choose up to `count` untouched, non-empty cells of `column` among rows in `mask`."""
    ok = mask & (t.out[column] != "").to_numpy()
    done = [k for k, c in t.touched if c == column]
    if done:
        ok &= ~t.out.index.isin(done)
    cand = t.out.index[ok]
    if len(cand) == 0 or count <= 0:
        return np.array([], dtype=int)
    return np.sort(rng.choice(cand, min(count, len(cand)), replace=False))


def _scaled(text: str, factor: float) -> str:
    dec = len(text.split(".")[1]) if "." in text else 0
    return f"{float(text) * factor:.{dec}f}"


def _inject_typos(rate: float, tables: dict[str, _Table], rng: np.random.Generator, first: bool) -> None:
    """Out-of-range typos: Binomial(eligible rows, typo_rate) per kind and centre (>= 1 in the first centre)."""
    pt = tables["patients"]
    n = len(pt.out)
    every = np.ones(n, bool)
    for k in _pick(pt, "albumin", every, _n_defects(rate, n, rng, first), rng):
        pt.set(k, "albumin", _scaled(pt.out.at[k, "albumin"], 10.0), "decimal_slip")
    for k in _pick(pt, "birth_date", every, _n_defects(rate, n, rng, first), rng):
        future = pd.Timestamp(pt.meta.at[k, "birth_date"]) + pd.Timedelta(days=36525)
        pt.set(k, "birth_date", _one_date(future, pt.date_format), "future_birth_date")
    for k in _pick(pt, "ecog", every, _n_defects(rate, n, rng, first), rng):
        pt.set(k, "ecog", "7", "out_of_range_category")
    fu = tables["follow_up"]
    dead_mask = (fu.out["death_date"] != "").to_numpy()
    for k in _pick(fu, "death_date", dead_mask, _n_defects(rate, int(dead_mask.sum()), rng, first), rng):
        before = pd.Timestamp(fu.meta.at[k, "index_date"]) - pd.Timedelta(days=int(rng.integers(5, 60)))
        fu.set(k, "death_date", _one_date(before, fu.date_format), "death_before_index")
    ta = tables["tumour_assessments"]
    has_ld = (ta.out["ld_mm"] != "").to_numpy() & (ta.out["ld_mm"] != "0") & (ta.out["ld_mm"] != "0.0")
    for k in _pick(ta, "ld_mm", has_ld, _n_defects(rate, int(has_ld.sum()), rng, first), rng):
        ta.set(k, "ld_mm", "-" + ta.out.at[k, "ld_mm"], "negative_value")
    lb = tables["labs"]
    plt_mask = (lb.meta["test"] == "platelets").to_numpy()
    for k in _pick(lb, "value", plt_mask, _n_defects(rate, int(plt_mask.sum()), rng, first), rng):
        lb.set(k, "value", "0.0", "zero_value")
    for k in _pick(lb, "value", plt_mask, _n_defects(rate, int(plt_mask.sum()), rng, first), rng):
        lb.set(k, "value", _scaled(lb.out.at[k, "value"], 10.0), "decimal_slip")
    alt_mask = (lb.meta["test"] == "alt").to_numpy()
    for k in _pick(lb, "unit", alt_mask, _n_defects(rate, int(alt_mask.sum()), rng, first), rng):
        lb.set(k, "unit", "mmol/L", "undeclared_unit")
    ae = tables["adverse_events"]
    m = len(ae.out)
    for k in _pick(ae, "grade", (ae.out["grade"] != "5").to_numpy(), _n_defects(rate, m, rng, first), rng):
        ae.set(k, "grade", str(rng.choice(["0", "6"])), "out_of_range_category")
    for k in _pick(ae, "onset_date", np.ones(m, bool), _n_defects(rate, m, rng, first), rng):
        before = pd.Timestamp(ae.meta.at[k, "index_date"]) - pd.Timedelta(days=int(rng.integers(3, 45)))
        ae.set(k, "onset_date", _one_date(before, ae.date_format), "onset_before_treatment")


def _inject_unknown_labels(rate: float, tables: dict[str, _Table], rng: np.random.Generator, first: bool) -> None:
    """A few labels outside allowed values and synonyms (sex 'U', etiology 'autoimmune', 'lenvatinb', ...)."""
    for tname, col, label in _UNKNOWN_LABELS:
        t = tables[tname]
        mask = np.ones(len(t.out), bool)
        if label == "lenvatinb":
            mask = (t.meta["agent"] == "lenvatinib").to_numpy() if len(t.out) else mask
        count = _n_defects(rate / 2, len(t.out), rng, first)
        for k in _pick(t, col, mask, count, rng):
            t.set(k, col, label, "unknown_label")


def _inject_missing(centre: Centre, tables: dict[str, _Table], scale: float, rng: np.random.Generator) -> None:
    """Missing values concentrated per cal. 4, scaled by missing_rate / 0.05; plus a few missing units."""
    for (tname, col), base in _MISSING_RATES.items():
        t = tables[tname]
        if t.out.empty or col not in t.out.columns:
            continue
        rate = centre.pivka_missing if base is None else base
        rate = min(0.95, rate * scale)
        mask = rng.random(len(t.out)) < rate
        if tname == "patients" and col == "mvi_grade":
            mask &= t.meta["mvi"].to_numpy().astype(bool)
        for k in t.out.index[mask & (t.out[col] != "").to_numpy()]:
            t.set(k, col, "", "missing")
    unit_cols = (("patients", "total_bilirubin_unit"), ("patients", "albumin_unit"), ("labs", "unit"),
                 ("tumour_assessments", "diameter_unit"))
    for tname, col in unit_cols:
        t = tables[tname]
        if t.out.empty:
            continue
        mask = rng.random(len(t.out)) < 0.004 * scale
        if tname == "labs":
            mask &= (t.meta["test"] != "inr").to_numpy()
        for k in t.out.index[mask & (t.out[col] != "").to_numpy()]:
            t.set(k, col, "", "missing_unit")


def _inject_duplicate_rows(tables: dict[str, _Table], rng: np.random.Generator) -> None:
    """A few exact duplicate rows (copy placed right after the original) in 1-2 files per centre."""
    names = [n for n in ("labs", "adverse_events", "tumour_assessments", "systemic_courses", "patients")
             if len(tables[n].out)]
    if not names:
        return
    for name in rng.choice(names, min(len(names), int(rng.integers(1, 3))), replace=False):
        t = tables[str(name)]
        touched_rows = {k for k, _ in t.touched}
        cand = [k for k in t.out.index if k not in touched_rows]
        if not cand:
            continue
        picks = sorted(rng.choice(cand, min(len(cand), int(rng.integers(1, 3))), replace=False).tolist())
        order = list(t.out.index)
        next_key = int(max(order)) + 1
        new_rows, new_meta = [], []
        for k in picks:
            pos = order.index(k)
            order.insert(pos + 1, next_key)
            new_rows.append(t.out.loc[[k]].rename(index={k: next_key}))
            new_meta.append(t.meta.loc[[k]].rename(index={k: next_key}))
            t.defects.append({"key": next_key, "column": "mrn", "defect": "duplicate_row",
                              "original_value": f"row {k}", "written_value": t.out.at[k, "mrn"],
                              "_orig_key": k})
            t.touched.add((next_key, "mrn"))
            next_key += 1
        t.out = pd.concat([t.out] + new_rows).loc[order]
        t.meta = pd.concat([t.meta] + new_meta).loc[order]
        pos = {key: i + 1 for i, key in enumerate(order)}
        for d in t.defects:
            if d["defect"] == "duplicate_row" and "_orig_key" in d:
                d["original_value"] = f"row {pos[d.pop('_orig_key')]}"


# ----------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------
def _write_raw(out: Path, centres: list[Centre], files: dict[str, dict[str, _Table]]) -> list[Path]:
    written = []
    for c in centres:
        d = out / "raw" / c.center_id
        d.mkdir(parents=True, exist_ok=True)
        manifest = {"center_id": c.center_id, "center_name": c.name, "date_format": c.date_format,
                    "language": c.language, "export_date": str(c.export_date)}
        mpath = d / "manifest.yaml"
        mpath.write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8")
        written.append(mpath)
        for name in TABLES:
            t = files[c.center_id][name]
            path = d / f"{name}.{c.file_ext}"
            if c.file_ext == "csv":
                t.out.to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
            else:
                _write_xlsx(path, name, t.out, t.numeric)
            written.append(path)
    return written


_XLSX_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def _xlsx_column(i: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _write_xlsx(path: Path, sheet: str, df: pd.DataFrame, numeric: tuple[str, ...]) -> None:
    """Deterministic single-sheet XLSX (SpreadsheetML, inline strings): numbers in `numeric` columns as numeric
    cells, everything else (dates included) as text; fixed document properties and zip entry times
    (1980-01-01), so identical input gives identical bytes. openpyxl is not used for writing: it needed
    10-20 s for the default cohort."""
    cols = [_xlsx_column(i) for i in range(len(df.columns))]
    num = [c in numeric for c in df.columns]
    rows = [f'<row r="1">' + "".join(f'<c r="{cols[i]}1" t="inlineStr"><is><t>{_xml_escape(str(c))}</t></is></c>'
                                     for i, c in enumerate(df.columns)) + "</row>"]
    for r, values in enumerate(df.itertuples(index=False, name=None), start=2):
        cells = []
        for i, v in enumerate(values):
            if v is None or v == "":
                continue
            if num[i] and _is_number(v):
                cells.append(f'<c r="{cols[i]}{r}"><v>{v}</v></c>')
            else:
                cells.append(f'<c r="{cols[i]}{r}" t="inlineStr"><is><t>{_xml_escape(str(v))}</t></is></c>')
        rows.append(f'<row r="{r}">' + "".join(cells) + "</row>")
    sheet_xml = (_XML_HEAD + f'<worksheet xmlns="{_XLSX_NS}"><sheetData>' + "".join(rows)
                 + "</sheetData></worksheet>")
    stamp = _XLSX_FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = {
        "[Content_Types].xml": _XML_HEAD + (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.styles+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.'
            'core-properties+xml"/>'
            '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'extended-properties+xml"/></Types>'),
        "_rels/.rels": _XML_HEAD + (
            f'<Relationships xmlns="{_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_DOC_REL}/officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
            'core-properties" Target="docProps/core.xml"/>'
            f'<Relationship Id="rId3" Type="{_DOC_REL}/extended-properties" Target="docProps/app.xml"/>'
            '</Relationships>'),
        "docProps/core.xml": _XML_HEAD + (
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>analysis_utils.synthetic</dc:creator>'
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>'),
        "docProps/app.xml": _XML_HEAD + (
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
            '<Application>analysis_utils.synthetic</Application></Properties>'),
        "xl/workbook.xml": _XML_HEAD + (
            f'<workbook xmlns="{_XLSX_NS}" xmlns:r="{_DOC_REL}"><sheets>'
            f'<sheet name="{_xml_escape(sheet)}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": _XML_HEAD + (
            f'<Relationships xmlns="{_REL_NS}">'
            f'<Relationship Id="rId1" Type="{_DOC_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
            f'<Relationship Id="rId2" Type="{_DOC_REL}/styles" Target="styles.xml"/></Relationships>'),
        "xl/styles.xml": _XML_HEAD + (
            f'<styleSheet xmlns="{_XLSX_NS}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font>'
            '</fonts><fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill '
            'patternType="gray125"/></fill></fills><borders count="1"><border><left/><right/><top/><bottom/>'
            '<diagonal/></border></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" '
            'borderId="0"/></cellStyleXfs><cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" '
            'xfId="0"/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
            '</cellStyles></styleSheet>'),
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name, text in parts.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            zf.writestr(info, text.encode("utf-8"))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _write_truth(out: Path, cfg: dict, model: dict, centres: list[Centre], rec: pd.DataFrame, p: pd.DataFrame,
                 ev: Events, defects: pd.DataFrame) -> list[Path]:
    gt = out / "ground_truth"
    gt.mkdir(parents=True, exist_ok=True)
    truth = _truth_frame(rec, p, centres)
    truth_path = gt / "patients_truth.csv"
    truth.to_csv(truth_path, index=False, lineterminator="\n", encoding="utf-8")
    defects_path = gt / "defects.csv"
    defects.to_csv(defects_path, index=False, lineterminator="\n", encoding="utf-8")
    summary = _calibration_summary(truth, p, ev, centres, defects)
    doc = {
        "generator": "analysis_utils.synthetic", "generator_version": GENERATOR_VERSION, "seed": cfg["seed"],
        "config": cfg,
        "true_effects": {
            "hr_os": cfg["true_hr_os"], "log_hr_os": round(math.log(cfg["true_hr_os"]), 6),
            "hr_progression": cfg["true_hr_pfs"], "log_hr_progression": round(math.log(cfg["true_hr_pfs"]), 6),
            "note": "conditional log-HR of HAIC (time-varying from the first HAIC) in the Weibull PH models for "
                    "death and latent progression; PFS = min(progression, death)"},
        "model": {
            "weibull_scale_os_months": round(model["scale_os"], 4),
            "weibull_scale_progression_months": round(model["scale_pfs"], 4),
            "weibull_shape_os": cfg["weibull_shape_os"], "weibull_shape_progression": cfg["weibull_shape_pfs"],
            "copula_rho_death_progression": COPULA_RHO, "assignment_intercept": round(model["assign_intercept"], 4),
            "os_coefficients": OS_COEF, "progression_coefficients": PFS_COEF, "assignment_coefficients": ASSIGN_COEF,
            "response_coefficients": RESPONSE_COEF, "latent_response_rates": LATENT_RESPONSE_RATES,
            "exclusion_weights": EXCLUSION_WEIGHTS},
        "centres": [{"center_id": c.center_id, "n_records": c.n_records, "language": c.language,
                     "date_format": c.date_format, "file": c.file_ext, "bilirubin_unit": c.bili_unit,
                     "albumin_unit": c.alb_unit, "diameter_unit": c.diameter_unit, "mvi_system": c.mvi_system,
                     "records_site_bor": c.records_site_bor, "reports_lab_aes": c.reports_lab_aes,
                     "haic_logit_shift": round(c.haic_logit, 4)} for c in centres],
        "calibration_summary": summary,
    }
    truth_yaml = gt / "truth.yaml"
    truth_yaml.write_text(yaml.safe_dump(_plain(doc), allow_unicode=True, sort_keys=False), encoding="utf-8")
    return [truth_yaml, truth_path, defects_path]


def _plain(obj: Any) -> Any:
    """Convert numpy scalars/containers into plain Python for yaml.safe_dump."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return round(float(obj), 6)
    if isinstance(obj, float):
        return round(obj, 6)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _truth_frame(rec: pd.DataFrame, p: pd.DataFrame, centres: list[Centre]) -> pd.DataFrame:
    df = rec.merge(p.drop(columns=["centre_idx"]), on="person_id", how="left")
    first_rec = rec.drop_duplicates("person_id").set_index("person_id")
    dup_of = [("" if src < 0 else f"{first_rec.at[src, 'center_id']}:{first_rec.at[src, 'mrn']}")
              for src in df["duplicate_of_record"]]
    idx = df["index_date"].to_numpy()
    fails = _fails_criteria(df)
    t = pd.DataFrame({
        "center_id": df["center_id"], "mrn": df["mrn"], "record_id": df["record_id"], "person_id": df["person_id"],
        "duplicate_of": dup_of, "intended_arm": df["intended_arm"], "realised_arm": df["realised_arm"],
        "immortal_time_switch": df["immortal_time_switch"], "exclusion_criterion": df["exclusion_criterion"],
        "exclusion_criteria_built": df["exclusion_criteria_built"], "fails_criteria": fails,
        "eligible": [f == "" for f in fails],
        "index_date": idx.astype("datetime64[D]").astype(str),
        "haic_offset_days": df["haic_offset_days"], "first_haic_day": df["first_haic_day"],
        "n_haic_cycles": df["n_haic_cycles"],
        "age": df["age"], "sex": df["sex"], "etiology": df["etiology"], "ecog": df["ecog"],
        "ascites": df["ascites"], "encephalopathy": df["encephalopathy"],
        "total_bilirubin_umol_l": df["total_bilirubin"], "albumin_g_l": df["albumin"], "inr": df["inr"],
        "child_pugh_score": df["child_pugh_score"], "child_pugh_class": df["child_pugh_class"],
        "albi_score": df["albi_score"], "albi_grade": df["albi_grade"], "afp_ng_ml": df["afp"],
        "pivka_ii": df["pivka_ii"], "tumour_number": df["tumour_number"], "max_tumour_size_cm": df["max_tumour_size"],
        "mvi": df["mvi"], "vp_grade": df["vp_grade"], "cheng_grade": df["cheng_grade"], "ehs": df["ehs"],
        "bclc_derived": df["bclc_derived"], "bclc_recorded": df["bclc_recorded"],
        "prior_local_therapy": df["prior_local_therapy"], "prior_systemic_therapy": df["prior_systemic_therapy"],
        "diagnosis_basis": df["diagnosis_basis"], "histology_subtype": df["histology_subtype"],
        "propensity": df["ps"], "eta_os": df["eta_os"], "eta_progression": df["eta_pfs"],
        "os_latent_months": df["os_latent_months"], "progression_latent_months": df["progression_latent_months"],
        "pfs_latent_months": np.minimum(df["os_latent_months"], df["progression_latent_months"]),
        "os_if_tkis_p_months": df["os_if_tkis_p_months"], "os_if_haic_months": df["os_if_haic_months"],
        "progression_if_tkis_p_months": df["progression_if_tkis_p_months"],
        "progression_if_haic_months": df["progression_if_haic_months"],
        "censor_months": np.round(df["censor_day"] / DAYS_PER_MONTH, 3),
        "os_observed_months": np.round(df["end_day"] / DAYS_PER_MONTH, 3), "os_event": df["dead"],
        "lost_to_follow_up": df["lost"],
        "death_date": np.where(df["dead"], _days_to_dates(idx, df["death_day"].to_numpy(float)).astype(str), ""),
        "last_contact_date": _days_to_dates(idx, df["end_day"].to_numpy(float)).astype(str),
        "latent_response_recist": df["latent_response_recist"],
        "latent_response_mrecist": df["latent_response_mrecist"],
        "depth_ld": df["depth_ld"], "depth_viable": df["depth_viable"],
        "bor_recist": df["bor_recist"], "bor_mrecist": df["bor_mrecist"],
        "n_post_baseline_scans": df["n_post_baseline_scans"], "n_initial_drug_classes": df["n_initial_drug_classes"],
        "progression_visit_date": np.where(np.isfinite(df["progression_visit_day"]),
                                           _days_to_dates(idx, df["progression_visit_day"].to_numpy(float))
                                           .astype(str), ""),
        "progression_mode": df["progression_mode"],
    })
    return t


def _fails_criteria(df: pd.DataFrame) -> list[str]:
    """Every exclusion criterion a record fails on its latent (clean) data, in EXCLUSION_WEIGHTS order; the
    built-only criterion no_systemic_after_haic is taken from the build list."""
    offset = df["haic_offset_days"].to_numpy(float)
    realised = (df["realised_arm"] == ARM_TRIPLE).to_numpy()
    checks = {
        "excluded_histology": df["histology_subtype"].isin(
            ["cholangiocarcinoma", "fibrolamellar", "sarcomatoid", "combined_hcc_cca"]).to_numpy(),
        "diagnosis_basis_other": (df["diagnosis_basis"] == "other").to_numpy(),
        "bclc_a_or_d": df["bclc_recorded"].isin(["A", "D"]).to_numpy(),
        "prior_systemic_therapy": (df["prior_systemic_therapy"] == "yes").to_numpy(),
        "haic_outside_window": realised & (np.abs(np.nan_to_num(offset)) > 90),
        "no_systemic_after_haic": df["exclusion_criteria_built"].str.contains("no_systemic_after_haic").to_numpy(),
        "no_combination": (df["n_initial_drug_classes"] < 2).to_numpy(),
        "no_measurable_lesion": (df["max_tumour_size"] < 1.0).to_numpy(),
        "no_post_baseline_imaging": (df["n_post_baseline_scans"] == 0).to_numpy(),
        "child_pugh_c": (df["child_pugh_score"] >= 10).to_numpy(),
        "ecog_3_4": (df["ecog"] >= 3).to_numpy(),
        "encephalopathy_grade_3_4": (df["encephalopathy"] == "grade_3_4").to_numpy(),
    }
    return [";".join(name for name, fail in checks.items() if fail[i]) for i in range(len(df))]


def _lab_ae_rates(ev: Events, p: pd.DataFrame, centres: list[Centre], el: pd.DataFrame) -> dict:
    """Share of eligible persons per arm with a treatment-emergent lab AE (worst post-baseline CTCAE grade worse
    than the baseline grade), any grade and grade >= 3, from the clean canonical labs (cal. 3b)."""
    labs = pd.DataFrame({k: np.concatenate([x[k] for x in ev.labs]) for k in ("person_id", "day", "test", "value")})
    labs = labs[labs["person_id"].isin(el["person_id"])].sort_values(["person_id", "test", "day"], kind="stable")
    cidx = p["centre_idx"].to_numpy()[labs["person_id"].to_numpy()]
    out: dict[str, dict] = {}
    for test in ("platelets", "neutrophils", "wbc", "hemoglobin", "alt", "ast", "bilirubin", "albumin",
                 "creatinine"):
        m = (labs["test"] == test).to_numpy()
        sub = labs[m]
        uln = np.array([centres[c].uln[test] for c in cidx[m]])
        lln = np.array([centres[c].lln[test] for c in cidx[m]])
        base = sub.groupby("person_id")["value"].transform("first").to_numpy()
        g = pd.Series(ctcae_lab_grade(test, sub["value"].to_numpy(), uln, lln, base), index=sub.index)
        first = ~sub["person_id"].duplicated().to_numpy()
        g0 = pd.Series(g.to_numpy()[first], index=sub["person_id"].to_numpy()[first])
        worst = g[~first].groupby(sub["person_id"].to_numpy()[~first]).max()
        emergent = worst.where(worst > g0.reindex(worst.index).fillna(0), 0)
        res = {}
        for a, key in ((ARM_TRIPLE, "triple"), (ARM_DOUBLET, "doublet")):
            ids = el.loc[el["realised_arm"] == a, "person_id"]
            w = emergent.reindex(ids).fillna(0)
            res[key] = {"any": round(float((w > 0).mean()), 4) if len(w) else None,
                        "grade_3_plus": round(float((w >= 3).mean()), 4) if len(w) else None}
        out[test] = res
    return out


def _counterfactual_medians(el: pd.DataFrame) -> dict:
    """Medians of the latent times of all eligible persons under TKIs-P for everyone and under HAIC from
    day 0 for everyone (the causal contrast behind true_hr_os / true_hr_pfs)."""
    if el.empty:
        return {}
    os0, os1 = el["os_if_tkis_p_months"], el["os_if_haic_months"]
    return {"os_if_tkis_p": round(float(os0.median()), 3), "os_if_haic": round(float(os1.median()), 3),
            "pfs_if_tkis_p": round(float(np.minimum(os0, el["progression_if_tkis_p_months"]).median()), 3),
            "pfs_if_haic": round(float(np.minimum(os1, el["progression_if_haic_months"]).median()), 3)}


_PATIENT_BASE_COLUMNS = 23   # non-identifier baseline columns of the patients table (sex ... prior_systemic)


def _missing_share(defects: pd.DataFrame, n_records: int) -> float:
    """Injected 'missing' cells of the patients tables / (records x 23 non-identifier baseline columns);
    the config's missing_rate aims at 3-8 % (cal. 4)."""
    m = (defects["defect"] == "missing") & defects["file"].str.startswith("patients")
    return round(float(m.sum()) / (n_records * _PATIENT_BASE_COLUMNS), 4) if n_records else 0.0


def _smd_binary(a: np.ndarray, b: np.ndarray) -> float:
    p1, p0 = float(np.mean(a)), float(np.mean(b))
    den = math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    return (p1 - p0) / den if den > 0 else 0.0


def _smd_cont(a: np.ndarray, b: np.ndarray) -> float:
    den = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    return (float(np.mean(a)) - float(np.mean(b))) / den if den > 0 else 0.0


def _calibration_summary(truth: pd.DataFrame, p: pd.DataFrame, ev: Events, centres: list[Centre],
                         defects: pd.DataFrame) -> dict:
    """Shares among eligible persons (no duplicates) per arm, to compare with clinical-calibration.md."""
    el = truth[truth["eligible"] & (truth["duplicate_of"] == "")]
    tri = el[el["realised_arm"] == ARM_TRIPLE]
    dbl = el[el["realised_arm"] == ARM_DOUBLET]

    def share(df: pd.DataFrame, expr: pd.Series) -> float:
        return round(float(expr.mean()), 4) if len(df) else float("nan")

    def block(df: pd.DataFrame) -> dict:
        if df.empty:
            return {}
        return {
            "n": int(len(df)), "age_median": float(df["age"].median()), "male": share(df, df["sex"] == "male"),
            "hbv_any": share(df, df["etiology"].isin(["hbv", "hbv_hcv"])), "ecog0": share(df, df["ecog"] == 0),
            "child_pugh_a": share(df, df["child_pugh_class"] == "A"),
            "albi_grade_1": share(df, df["albi_grade"] == 1), "albi_grade_3": share(df, df["albi_grade"] == 3),
            "bclc_c_derived": share(df, df["bclc_derived"] == "C"), "mvi": share(df, df["mvi"]),
            "vp4_among_mvi": share(df[df["mvi"]], df.loc[df["mvi"], "vp_grade"] == "Vp4"),
            "ehs": share(df, df["ehs"]), "afp_ge_400": share(df, df["afp_ng_ml"] >= 400),
            "multinodular": share(df, df["tumour_number"] > 1),
            "max_size_median_cm": float(df["max_tumour_size_cm"].median()),
            "os_latent_median_months": round(float(df["os_latent_months"].median()), 3),
            "pfs_latent_median_months": round(float(df["pfs_latent_months"].median()), 3),
            "orr_recist": share(df, df["bor_recist"].isin(["CR", "PR"])),
            "orr_mrecist": share(df, df["bor_mrecist"].isin(["CR", "PR"])),
            "cr_mrecist": share(df, df["bor_mrecist"] == "CR"),
            "dcr_recist": share(df, df["bor_recist"].isin(["CR", "PR", "SD"])),
            "deaths": int(df["os_event"].sum()), "lost_to_follow_up": share(df, df["lost_to_follow_up"]),
        }

    smd = {}
    if len(tri) and len(dbl):
        smd = {"age": _smd_cont(tri["age"].to_numpy(float), dbl["age"].to_numpy(float)),
               "ecog0": _smd_binary(tri["ecog"] == 0, dbl["ecog"] == 0),
               "ehs": _smd_binary(tri["ehs"], dbl["ehs"]), "mvi": _smd_binary(tri["mvi"], dbl["mvi"]),
               "max_size": _smd_cont(tri["max_tumour_size_cm"].to_numpy(float),
                                     dbl["max_tumour_size_cm"].to_numpy(float)),
               "albi": _smd_cont(tri["albi_score"].to_numpy(float), dbl["albi_score"].to_numpy(float))}
        smd = {k: round(v, 4) for k, v in smd.items()}
    n_rec = len(truth)
    return {
        "n_records": int(n_rec), "n_duplicate_records": int((truth["duplicate_of"] != "").sum()),
        "n_built_ineligible": int((truth["exclusion_criterion"] != "none").sum()),
        "n_failing_any_criterion": int((~truth["eligible"]).sum()),
        "n_eligible_persons": int(len(el)),
        "haic_share_eligible": round(float((el["realised_arm"] == ARM_TRIPLE).mean()), 4) if len(el) else None,
        "immortal_time_switches": int(truth["immortal_time_switch"].sum()),
        "haic_after_index_share": round(float((tri["first_haic_day"] > 0).mean()), 4) if len(tri) else None,
        "haic_cycles_median": float(tri["n_haic_cycles"].median()) if len(tri) else None,
        "counterfactual_medians_eligible": _counterfactual_medians(el),
        "lab_derived_ctcae_rates": _lab_ae_rates(ev, p, centres, el),
        "triple": block(tri), "doublet": block(dbl), "smd_triple_vs_doublet_pooled_sd": smd,
        "missing_share_patients_table": _missing_share(defects, n_rec),
        "defect_counts": {k: int(v) for k, v in defects["defect"].value_counts().sort_index().items()},
    }
