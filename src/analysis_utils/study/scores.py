"""Liver-function, stage and vascular-invasion scores.

Rules: docs/methods/liver-scores-and-staging.md.
- Child-Pugh (Pugh 1973, doi:10.1002/bjs.1800600817): points for bilirubin, albumin, INR, ascites, encephalopathy;
  class A 5-6, B 7-9, C 10-15. Closed-interval boundaries: bilirubin 2.0 mg/dL -> 2 points, albumin 3.5 g/dL -> 2
  points, INR 1.7 -> 2 points. Bilirubin in umol/L is converted with 1 mg/dL = 17.1 umol/L.
- ALBI (Johnson 2015, doi:10.1200/JCO.2014.57.9151): 0.66 x log10(bilirubin umol/L) - 0.085 x albumin g/L;
  grade 1 <= -2.60 < grade 2 <= -1.39 < 3.
- BCLC 2022 (Reig 2022, doi:10.1016/j.jhep.2021.11.018) B versus C: C if macrovascular invasion, extrahepatic spread
  or ECOG 1-2, else B.
- Portal-vein tumour thrombus: Japanese Vp and Chinese Cheng grades mapped Vp2<->I, Vp3<->II, Vp4<->III (IV is a
  subset of Vp4); Vp1 has no Cheng equivalent and is treated as Cheng I.
Inputs are vectors (pandas Series); a missing component gives a missing score, never a guess.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

BILIRUBIN_UMOL_PER_MGDL = 17.1


def _points(x: pd.Series, lower_cut: float, upper_cut: float, higher_is_worse: bool) -> pd.Series:
    """1/2/3 points with the middle band closed at both ends ([lower_cut, upper_cut] -> 2 points)."""
    x = pd.to_numeric(x, errors="coerce").astype(float).round(9)
    if higher_is_worse:
        pts = np.select([x < lower_cut, x <= upper_cut], [1, 2], 3)
    else:  # lower is worse (albumin): > upper_cut 1 point, [lower_cut, upper_cut] 2, < lower_cut 3
        pts = np.select([x > upper_cut, x >= lower_cut], [1, 2], 3)
    return pd.Series(pts, index=x.index, dtype="Int64").where(x.notna())


def child_pugh_points(bilirubin_umol: pd.Series, albumin_g_l: pd.Series, inr: pd.Series, ascites: pd.Series,
                      encephalopathy: pd.Series) -> pd.DataFrame:
    """Points per Child-Pugh component (Pugh 1973), columns ``cp_<component>_pts``; missing where
    the component is missing. Ascites: none/mild/moderate_severe; encephalopathy: none/grade_1_2/grade_3_4."""
    return pd.DataFrame({
        "cp_bilirubin_pts": _points(bilirubin_umol / BILIRUBIN_UMOL_PER_MGDL, 2.0, 3.0, higher_is_worse=True),
        "cp_albumin_pts": _points(albumin_g_l / 10.0, 2.8, 3.5, higher_is_worse=False),
        "cp_inr_pts": _points(inr, 1.7, 2.3, higher_is_worse=True),
        "cp_ascites_pts": ascites.map({"none": 1, "mild": 2, "moderate_severe": 3}).astype("Int64"),
        "cp_encephalopathy_pts": encephalopathy.map({"none": 1, "grade_1_2": 2, "grade_3_4": 3}).astype("Int64"),
    })


def child_pugh_score(bilirubin_umol: pd.Series, albumin_g_l: pd.Series, inr: pd.Series, ascites: pd.Series,
                     encephalopathy: pd.Series) -> pd.Series:
    """Child-Pugh points 5-15: the sum of :func:`child_pugh_points`; missing if any component is missing."""
    points = child_pugh_points(bilirubin_umol, albumin_g_l, inr, ascites, encephalopathy)
    return points.sum(axis=1, min_count=points.shape[1]).astype("Int64")


def child_pugh_class(score: pd.Series) -> pd.Series:
    """Class A (5-6), B (7-9), C (10-15); missing when the score is missing."""
    s = pd.to_numeric(score, errors="coerce").astype(float)
    cls = np.select([s <= 6, s <= 9, s <= 15], ["A", "B", "C"], "")
    return pd.Series(cls, index=s.index, dtype="object").where(s.notna(), None)


def albi_score(bilirubin_umol: pd.Series, albumin_g_l: pd.Series) -> pd.Series:
    """ALBI = 0.66 x log10(bilirubin [umol/L]) - 0.085 x albumin [g/L] (Johnson 2015)."""
    bili = pd.to_numeric(bilirubin_umol, errors="coerce")
    alb = pd.to_numeric(albumin_g_l, errors="coerce")
    return 0.66 * np.log10(bili.where(bili > 0)) - 0.085 * alb


def albi_grade(score: pd.Series) -> pd.Series:
    """ALBI grade 1 (<= -2.60), 2 (-2.60 < score <= -1.39), 3 (> -1.39)."""
    s = pd.to_numeric(score, errors="coerce").astype(float)
    g = np.select([s <= -2.60, s <= -1.39], [1, 2], 3)
    return pd.Series(g, index=s.index, dtype="Int64").where(s.notna())


def bclc_b_or_c(mvi: pd.Series, ehs: pd.Series, ecog: pd.Series) -> pd.Series:
    """BCLC 2022 stage for the B/C population: C if MVI or EHS or ECOG 1-2, B if none is present and all are known.

    Missing when a component is missing and no known component already makes the stage C."""
    ecog_num = pd.to_numeric(ecog, errors="coerce")
    c_known = (mvi.eq(True) | ehs.eq(True)).fillna(False).astype(bool) | ecog_num.isin([1, 2])
    all_known = mvi.notna() & ehs.notna() & ecog_num.notna()
    out = pd.Series(np.where(c_known, "C", "B"), index=mvi.index, dtype="object")
    return out.where(c_known | all_known, None)


VP_FROM_CHENG = {"I": "Vp2", "II": "Vp3", "III": "Vp4", "IV": "Vp4"}
CHENG_FROM_VP = {"Vp1": "I", "Vp2": "I", "Vp3": "II", "Vp4": "III"}


def pvtt_grades(recorded: pd.Series) -> pd.DataFrame:
    """Recorded PVTT grade -> (system, vp_grade, cheng_grade) per the Vp<->Cheng mapping of the module docstring
    (docs/methods/liver-scores-and-staging.md)."""
    rec = recorded.astype("object")
    is_vp = rec.isin(list(CHENG_FROM_VP))
    is_cheng = rec.isin(list(VP_FROM_CHENG))
    system = pd.Series(np.select([is_vp, is_cheng], ["Vp", "Cheng"], ""), index=rec.index, dtype="object")
    vp = rec.where(is_vp, rec.map(VP_FROM_CHENG))
    cheng = rec.where(is_cheng, rec.map(CHENG_FROM_VP))
    return pd.DataFrame({"pvtt_grade_system": system.where(is_vp | is_cheng, None),
                         "vp_grade": vp.where(vp.notna(), None), "cheng_grade": cheng.where(cheng.notna(), None)})
