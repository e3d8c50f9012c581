"""Child-Pugh, ALBI, BCLC and PVTT grade derivations against hand-computed cases.

Rules: docs/methods/liver-scores-and-staging.md (Pugh 1973, doi:10.1002/bjs.1800600817; Johnson 2015,
doi:10.1200/JCO.2014.57.9151; Reig 2022, doi:10.1016/j.jhep.2021.11.018)."""
import pandas as pd
import pytest

from analysis_utils.study import scores


def S(*v):
    return pd.Series(list(v))


def test_child_pugh_points_and_boundaries():
    # bilirubin 34.2 umol/L = 2.0 mg/dL -> 2 points (closed interval); albumin 35 g/L = 3.5 g/dL -> 2; INR 1.7 -> 2
    # ascites mild 2, encephalopathy none 1: 2+2+2+2+1 = 9 -> class B
    score = scores.child_pugh_score(S(34.2), S(35.0), S(1.7), S("mild"), S("none"))
    assert score.tolist() == [9]
    assert scores.child_pugh_class(score).tolist() == ["B"]


def test_child_pugh_extremes():
    # all best: 20 umol/L (1.17 mg/dL) 1, 40 g/L 1, INR 1.0 1, none 1, none 1 = 5 (A)
    # all worst: 60 umol/L (3.5 mg/dL) 3, 27 g/L 3, INR 2.4 3, moderate_severe 3, grade_3_4 3 = 15 (C)
    score = scores.child_pugh_score(S(20.0, 60.0), S(40.0, 27.0), S(1.0, 2.4), S("none", "moderate_severe"),
                                    S("none", "grade_3_4"))
    assert score.tolist() == [5, 15]
    assert scores.child_pugh_class(score).tolist() == ["A", "C"]


def test_child_pugh_missing_component_gives_missing():
    score = scores.child_pugh_score(S(20.0), S(None), S(1.0), S("none"), S("none"))
    assert score.isna().all()
    assert scores.child_pugh_class(score).tolist() == [None]


def test_albi_worked_example_and_grade_cut_points():
    # worked example: albumin 35 g/L, bilirubin 20.52 umol/L -> 0.66*log10(20.52) - 0.085*35 = 0.8660 - 2.975 = -2.109
    assert scores.albi_score(S(20.52), S(35.0)).iloc[0] == pytest.approx(-2.109, abs=5e-4)
    assert scores.albi_grade(S(-2.60, -2.599, -1.39, -1.389)).tolist() == [1, 2, 2, 3]


def test_bclc_2022_b_versus_c():
    mvi = pd.Series([False, True, False, False, None], dtype="boolean")
    ehs = pd.Series([False, False, True, False, False], dtype="boolean")
    ecog = S(0, 0, 0, 1, 0)
    # no MVI/EHS/ECOG>=1 -> B; MVI -> C; EHS -> C; ECOG 1 -> C; MVI unknown with nothing else -> unknown
    assert scores.bclc_b_or_c(mvi, ehs, ecog).tolist() == ["B", "C", "C", "C", None]


def test_pvtt_vp_cheng_mapping():
    g = scores.pvtt_grades(S("Vp2", "Vp4", "I", "IV", "Vp1", None))
    assert g["vp_grade"].tolist() == ["Vp2", "Vp4", "Vp2", "Vp4", "Vp1", None]
    assert g["cheng_grade"].tolist() == ["I", "III", "I", "IV", "I", None]
    assert g["pvtt_grade_system"].tolist() == ["Vp", "Vp", "Cheng", "Cheng", "Vp", None]


def test_generator_scores_agree_with_the_pipeline_outside_the_rounding_band():
    """The synthetic generator derives its ground-truth scores independently (analysis_utils.synthetic); the two
    implementations must agree. Known difference: the generator uses the commonly tabulated rounded bilirubin cut-offs
    in umol/L (34 and 50), the pipeline the mg/dL definition (2.0 and 3.0 mg/dL = 34.2 and 51.3 umol/L)."""
    import numpy as np

    from analysis_utils.synthetic import population as synthetic

    rng = np.random.default_rng(1)
    n = 5000
    bili = rng.uniform(5, 80, n)
    bili = bili[~(((bili >= 33.9) & (bili <= 34.3)) | ((bili >= 49.9) & (bili <= 51.4)))]
    n = len(bili)
    alb = rng.choice([25.0, 27.9, 28.0, 30.0, 35.0, 35.1, 42.0], n)
    inr = rng.choice([1.0, 1.69, 1.7, 2.0, 2.3, 2.31, 3.0], n)
    asc = rng.choice(["none", "mild", "moderate_severe"], n)
    enc = rng.choice(["none", "grade_1_2", "grade_3_4"], n)
    ours = scores.child_pugh_score(pd.Series(bili), pd.Series(alb), pd.Series(inr), pd.Series(asc), pd.Series(enc))
    theirs = synthetic.child_pugh_score(bili, alb, inr, asc, enc)
    assert (ours.to_numpy(dtype=float) == np.asarray(theirs, dtype=float)).all()
    albi = scores.albi_score(pd.Series(bili), pd.Series(alb))
    assert np.allclose(albi, synthetic.albi_score(bili, alb))
    assert (scores.albi_grade(albi).to_numpy(dtype=float) == synthetic.albi_grade(albi.to_numpy())).all()
    mvi, ehs, ecog = rng.random(n) < 0.5, rng.random(n) < 0.3, rng.integers(0, 3, n)
    ours_bclc = scores.bclc_b_or_c(pd.Series(mvi, dtype="boolean"), pd.Series(ehs, dtype="boolean"), pd.Series(ecog))
    assert (ours_bclc.to_numpy() == synthetic.bclc_2022(mvi, ehs, ecog)).all()
