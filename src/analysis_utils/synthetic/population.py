"""Population stage: the centres, then the persons with their baseline covariates and liver scores.

Centres. Sizes log-normal (sd 0.6) with the first two inflated x3 and x2 (cal. cohort size: one or two large
centres, ASSUMPTION). Per centre: date format, language (en/zh labels from the contract synonyms, one preferred
variant per value and 12 % mixing), units (bilirubin mg/dL, albumin g/dL, diameters cm, alternative lab units, some
centres with row-level unit drift), local ULN/LLN, Vp or Cheng PVTT grading, site-recorded BOR or not, lesion_type
convention, lab-AE reporting, HAIC propensity (log-odds shift N(0, centre_haic_sd), default 0.5) and an outcome
effect (log-hazard shift N(0, centre_outcome_sd), default 0.15, correlated `centre_outcome_haic_correlation` with the
HAIC shift; shared by death and progression; ASSUMPTION).

Baseline (cal. baseline): age N(54, 11) clipped 22-85; male 87 %; HBV 80 %, HCV 2.5 %, HBV+HCV 1 %, alcohol 6 %,
NAFLD 5 %, other 5.5 %; MVI 65 % with Vp1/2/3/4 = 8/17/35/40 % (Cheng: Vp1-2 -> I, Vp3 -> II, Vp4 -> III, 15 % of
Vp4 -> IV; docs/methods/liver-scores-and-staging.md, mapping doi:10.3748/wjg.v28.i7.704); EHS 28 %; ECOG depends
on extent (no MVI/EHS: 0/1/2 = 66/31/3 %, otherwise 20/75/5 %) so that BCLC 2022 C ~ 80 % and ECOG 0 ~ 30 %;
multinodular 62 %; max size log-normal, median ~9 cm; log10 AFP normal (sd 1.25) shifted by MVI and size so
AFP >= 400 ~ 55 %; PIVKA-II log-normal, median ~1000 mAU/mL, correlated with AFP (ASSUMPTION). Liver function from
one latent factor driving bilirubin (log-normal), albumin, INR, ascites and encephalopathy; Child-Pugh (~85 % A)
and ALBI (~45/52/3 %) come out when COMPUTED from the components. Simulated persons stay below Child-Pugh 10
(class C is only built as an exclusion, exclusions.py). Diagnosis basis histology 45 % (cal. background
population). Lab baselines: 28/35/37 % start with ALT/AST/bilirubin above ULN (cal. safety: 25-40 %).

Scores. Child-Pugh (Pugh 1973, doi:10.1002/bjs.1800600817), ALBI (Johnson 2015, doi:10.1200/JCO.2014.57.9151)
and the BCLC 2022 B/C rule (Reig 2022, doi:10.1016/j.jhep.2021.11.018) are computed here from the components,
independently of study/scores.py (tests/test_scores.py compares the two). Rules:
docs/methods/liver-scores-and-staging.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import pandas as pd

from analysis_utils.synthetic.config import ETIOLOGIES, ETIOLOGY_P, LAB_ALT_UNITS, LAB_TESTS

# Fictitious centre names: city x kind of hospital (English, Chinese).
_CITY = (("Jiangnan", "江南"), ("Lingnan", "岭南"), ("Huaxi", "华西"), ("Zhongyuan", "中原"), ("Bashu", "巴蜀"),
         ("Qilu", "齐鲁"), ("Minyue", "闽越"), ("Jingchu", "荆楚"), ("Xiangjiang", "湘江"), ("Guanzhong", "关中"),
         ("Liaohai", "辽海"), ("Yanzhao", "燕赵"), ("Wuyue", "吴越"), ("Dianchi", "滇池"), ("Longyou", "陇右"),
         ("Songliao", "松辽"), ("Hexi", "河西"), ("Huaihe", "淮河"), ("Taihu", "太湖"), ("Qiantang", "钱塘"))
_HOSPITAL_KIND = (("First Affiliated Hospital of {} Medical University", "{}医科大学第一附属医院"),
                  ("{} Provincial Cancer Hospital", "{}省肿瘤医院"),
                  ("{} People's Hospital", "{}人民医院"),
                  ("{} Hepatobiliary Surgery Hospital", "{}肝胆外科医院"),
                  ("{} University Cancer Center", "{}大学肿瘤防治中心"))
# Date formats of English- and Chinese-language centres.
_EN_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d")
_ZH_DATE_FORMATS = ("%Y年%m月%d日", "%Y/%m/%d", "%Y-%m-%d")


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
    outcome_loghr: float           # centre effect on the log hazard of death and of progression
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


def make_centres(cfg: dict, rng: np.random.Generator) -> list[Centre]:
    """The centres: size, language, date format, file type, units, local ULN/LLN and reporting conventions."""
    n = cfg["n_centers"]
    sizes = _centre_sizes(cfg["n_records"], n, rng)
    zh = set(rng.choice(n, cfg["chinese_centers"], replace=False).tolist())
    xlsx = set(rng.choice(n, cfg["xlsx_centers"], replace=False).tolist())
    cutoff = np.datetime64(cfg["data_cutoff"])
    cities = rng.permutation(len(_CITY))
    haic_sd = float(cfg.get("centre_haic_sd", 0.5))
    z_haic = rng.normal(0.0, 1.0, n)
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
            n_records=int(sizes[i]), haic_logit=haic_sd * float(z_haic[i]), outcome_loghr=0.0,
            bili_unit=bili_unit, alb_unit=alb_unit, diameter_unit="cm" if rng.random() < 0.25 else "mm",
            unit_drift=0.15 if rng.random() < 0.2 else 0.0, lab_units=lab_units, uln=uln, lln=lln,
            mvi_system="cheng" if rng.random() < (0.6 if lang == "zh" else 0.25) else "vp",
            records_site_bor=bool(rng.random() < 0.4), all_measurable_target=bool(rng.random() < 0.2),
            reports_lab_aes=bool(rng.random() < 0.4),
            single_criterion_share=0.15 if rng.random() < 0.3 else 0.0, regimen=regimen,
            mrn_prefix="".join(rng.choice(list("ABCDEFGHJKLMNPQRSTWXYZ"), 2 + int(rng.integers(2)))),
            mrn_style=int(rng.integers(3)), pivka_missing=float(rng.choice([0.25, 0.35, 0.45, 0.7]))))
    # outcome effects drawn after the conventions, so that their knobs change nothing else about the centres
    rho = float(cfg.get("centre_outcome_haic_correlation", 0.0))
    z_own = rng.normal(0.0, 1.0, n)
    for c, zh, z in zip(centres, z_haic, z_own):
        c.outcome_loghr = float(cfg.get("centre_outcome_sd", 0.0)) * (rho * zh + (1 - rho ** 2) ** 0.5 * z)
    return centres


def _canonical_lab_unit(test: str) -> str:
    return {"alt": "U/L", "ast": "U/L", "bilirubin": "umol/L", "albumin": "g/L", "platelets": "10^9/L",
            "neutrophils": "10^9/L", "wbc": "10^9/L", "hemoglobin": "g/dL", "creatinine": "umol/L",
            "inr": "ratio", "afp": "ng/mL"}[test]


# ----------------------------------------------------------------------------------------------------------
# Persons: baseline covariates
# ----------------------------------------------------------------------------------------------------------
def index_days(p: pd.DataFrame) -> np.ndarray:
    """Index dates (T0) as datetime64[D] (pandas stores them at second resolution)."""
    return p["index_date"].to_numpy().astype("datetime64[D]")


def day_diff(a: Any, b: Any) -> np.ndarray:
    """Whole days a - b for datetime64 values of any resolution."""
    return (np.asarray(a).astype("datetime64[D]") - np.asarray(b).astype("datetime64[D]")).astype(int)


def expit(x: np.ndarray) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-x))."""
    return 1.0 / (1.0 + np.exp(-x))


def draw_categories(rng: np.random.Generator, options: Iterable, p: Iterable[float], n: int) -> np.ndarray:
    """`n` draws from `options` with probabilities `p` (normalised to sum 1), as an object array."""
    options = list(options)
    idx = rng.choice(len(options), size=n, p=np.asarray(list(p), float) / np.sum(list(p)))
    return np.asarray(options, dtype=object)[idx]


def simulate_persons(cfg: dict, centres: list[Centre], rng: np.random.Generator, n: int | None = None
                     ) -> pd.DataFrame:
    """Unique persons with baseline covariates (cal. baseline); exclusions are built later
    (exclusions.build_exclusions). `index_date` is T0, the date of the first treatment component.

    By default the persons of one cohort: n_records minus the referral duplicates, with the centre sizes of
    `centres`. With `n` (the truth cohort): `n` persons drawn across the centres in proportion to their sizes."""
    sizes = np.array([c.n_records for c in centres])
    if n is None:
        n_dup = int(round(cfg["duplicate_share"] * cfg["n_records"]))
        n = cfg["n_records"] - n_dup
        # referral duplicates are taken off the largest centres' person count so records per centre = sizes
        person_sizes = sizes.copy()
        for _ in range(n_dup):
            person_sizes[int(np.argmax(person_sizes))] -= 1
        centre_idx = rng.permutation(np.repeat(np.arange(len(centres)), person_sizes))
    else:
        centre_idx = rng.choice(len(centres), n, p=sizes / sizes.sum())
    p: dict[str, Any] = {"person_id": np.arange(n), "centre_idx": centre_idx}

    accrual = (np.datetime64(cfg["accrual_start"]), np.datetime64(cfg["accrual_end"]))
    span = int((accrual[1] - accrual[0]).astype(int))
    p["index_date"] = accrual[0] + rng.integers(0, span + 1, n).astype("timedelta64[D]")
    p["age"] = np.round(np.clip(rng.normal(54.0, 11.0, n), 22, 85), 1)
    p["sex"] = np.where(rng.random(n) < 0.87, "male", "female")
    p["etiology"] = draw_categories(rng, ETIOLOGIES, ETIOLOGY_P, n)

    mvi = rng.random(n) < 0.65
    ehs = rng.random(n) < 0.28
    limited = ~mvi & ~ehs
    u = rng.random(n)
    ecog = np.where(limited, np.where(u < 0.66, 0, np.where(u < 0.97, 1, 2)),
                    np.where(u < 0.20, 0, np.where(u < 0.95, 1, 2)))
    p["mvi"] = mvi
    p["ehs"] = ehs
    p["ecog"] = ecog
    vp = draw_categories(rng, ("Vp1", "Vp2", "Vp3", "Vp4"), (0.08, 0.17, 0.35, 0.40), n)
    p["vp_grade"] = np.where(mvi, vp, "")
    cheng = np.select([np.isin(vp, ("Vp1", "Vp2")), vp == "Vp3"], ["I", "II"],
                      np.where(rng.random(n) < 0.15, "IV", "III"))
    p["cheng_grade"] = np.where(mvi, cheng, "")

    multi_p = np.where(limited & (ecog == 0), 0.90, 0.56)
    multi = rng.random(n) < multi_p
    many = draw_categories(rng, ("2", "3", "4-9", "50"), (0.30, 0.22, 0.40, 0.08), n)
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
    p_mild = expit(-2.3 + 1.1 * liver)
    p_mod = expit(-5.2 + 1.3 * liver)
    p["ascites"] = np.where(ua < p_mod, "moderate_severe", np.where(ua < p_mod + p_mild, "mild", "none"))
    p["encephalopathy"] = np.where(rng.random(n) < expit(-4.6 + 0.9 * liver), "grade_1_2", "none")

    # lab baselines (canonical units); 25-40 % of ALT/AST/bilirubin above ULN (cal. safety)
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
    p["prior_systemic_therapy"] = np.full(n, "no", dtype=object)
    lag = np.where(p["prior_local_therapy"] == "none", rng.integers(5, 91, n), rng.integers(120, 1500, n))
    p["diagnosis_date"] = p["index_date"] - lag.astype("timedelta64[D]")

    p["exclusion_criterion"] = np.full(n, "none", dtype=object)
    p["exclusion_criteria_built"] = np.full(n, "", dtype=object)
    p = pd.DataFrame(p)
    _cap_liver(p)
    derive_scores(p)
    return p


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


def derive_scores(p: pd.DataFrame) -> None:
    """Child-Pugh, ALBI and BCLC 2022 computed from the components (docs/methods/liver-scores-and-staging.md)."""
    cp = child_pugh_score(p["total_bilirubin"], p["albumin"], p["inr"], p["ascites"], p["encephalopathy"])
    p["child_pugh_score"] = cp
    p["child_pugh_class"] = np.where(cp <= 6, "A", np.where(cp <= 9, "B", "C"))
    p["albi_score"] = np.round(albi_score(p["total_bilirubin"], p["albumin"]), 3)
    p["albi_grade"] = albi_grade(p["albi_score"])
    stage = bclc_2022(p["mvi"], p["ehs"], p["ecog"])
    p["bclc_derived"] = np.where((p["ecog"].to_numpy() >= 3) | (cp >= 10), "D", stage)


# ----------------------------------------------------------------------------------------------------------
# Liver function and stage, computed from the components (docs/methods/liver-scores-and-staging.md)
# ----------------------------------------------------------------------------------------------------------
def child_pugh_score(bilirubin_umol: np.ndarray, albumin_g_l: np.ndarray, inr: np.ndarray,
                     ascites: np.ndarray, encephalopathy: np.ndarray) -> np.ndarray:
    """Child-Pugh points (Pugh 1973, doi:10.1002/bjs.1800600817): bilirubin <34/34-50/>50 umol/L, albumin
    >35/28-35/<28 g/L, INR <1.7/1.7-2.3/>2.3, ascites none/mild/moderate_severe, encephalopathy
    none/grade_1_2/grade_3_4 (docs/methods/liver-scores-and-staging.md). The bilirubin cut-offs are the rounded
    34/50 umol/L; study/scores.py uses 2.0/3.0 mg/dL (34.2/51.3 umol/L), see tests/test_scores.py."""
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
    """ALBI = 0.66 log10(bilirubin umol/L) - 0.085 albumin g/L (Johnson 2015,
    doi:10.1200/JCO.2014.57.9151; docs/methods/liver-scores-and-staging.md)."""
    return 0.66 * np.log10(np.asarray(bilirubin_umol, float)) - 0.085 * np.asarray(albumin_g_l, float)


def albi_grade(score: np.ndarray) -> np.ndarray:
    """ALBI grade 1 if score <= -2.60, 2 if <= -1.39, else 3 (Johnson 2015;
    docs/methods/liver-scores-and-staging.md)."""
    s = np.asarray(score, float)
    return np.where(s <= -2.60, 1, np.where(s <= -1.39, 2, 3))


def bclc_2022(mvi: np.ndarray, ehs: np.ndarray, ecog: np.ndarray) -> np.ndarray:
    """BCLC 2022 B/C derivation used by the pipeline: C if MVI or EHS or ECOG 1-2, else B (Reig 2022,
    doi:10.1016/j.jhep.2021.11.018; docs/methods/liver-scores-and-staging.md)."""
    ecog = np.asarray(ecog)
    return np.where(np.asarray(mvi, bool) | np.asarray(ehs, bool) | np.isin(ecog, (1, 2)), "C", "B")
