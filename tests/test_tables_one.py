"""Table 1 (tableone, unweighted) and the weighted Table 1 built on analysis_utils.balance, on hand-computed data."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis_utils.reporting import matching, tables

A, B = "HAIC-TKIs-P", "TKIs-P"


def _df() -> pd.DataFrame:
    """20 + 20 patients.
    x: A ten 1s + ten 3s (mean 2), B ten 2s + ten 4s (mean 3); ddof 0 SDs are 1 and 1.
    y: identical in both arms.  g: A (u, v, w) = (10, 5, 5), B = (5, 10, 5).
    b: A 10 of 20 True, B 5 of 20.  s: A 19 'm' + 1 missing, B 10 'm' + 10 'f'."""
    return pd.DataFrame({
        "arm": [A] * 20 + [B] * 20,
        "x": [1.0] * 10 + [3.0] * 10 + [2.0] * 10 + [4.0] * 10,
        "y": ([1.0] * 10 + [3.0] * 10) * 2,
        "g": ["u"] * 10 + ["v"] * 5 + ["w"] * 5 + ["u"] * 5 + ["v"] * 10 + ["w"] * 5,
        "b": pd.array([True] * 10 + [False] * 10 + [True] * 5 + [False] * 15, dtype="boolean"),
        "s": ["m"] * 19 + [None] + ["m"] * 10 + ["f"] * 10,
    })


def _rows(t: pd.DataFrame) -> dict[str, pd.Series]:
    """First row of each characteristic, keyed by its label."""
    return {r["Characteristic"]: r for _, r in t.iterrows() if r["Characteristic"]}


def test_table_one_continuous_rows_by_hand():
    t = tables.table_one(_df(), "arm", ["x", "y"], group_order=[A, B])
    r = _rows(t)
    assert r["n"][A] == "20" and r["n"][B] == "20" and r["n"]["Overall"] == "40"
    x = r["x, mean (SD)"]
    # mean 2, SD (ddof 1) sqrt(20/19) = 1.03 -> "2.0 (1.0)"; B "3.0 (1.0)"
    assert (x[A], x[B]) == ("2.0 (1.0)", "3.0 (1.0)")
    # tableone SMD from the table's own SDs (ddof 1): |2 - 3| / sqrt((20/19 + 20/19) / 2) = sqrt(19/20) = .9747
    # (with ddof-0 SDs it would be 1.000)
    assert x["SMD"] == "0.975"
    # Welch t = -1 / sqrt(2 * (20/19) / 20) = -3.082 on 38 df (equal n and variances)
    t_stat = 1 / math.sqrt(2 * (20 / 19) / 20)
    assert x["P"] == tables.fmt_p(2 * stats.t.sf(t_stat, 38)) and x["Test"] == "Welch’s T-test"
    y = r["y, mean (SD)"]
    assert (y["SMD"], y["P"]) == ("0.000", "1.000")


def test_table_one_categorical_rows_by_hand():
    t = tables.table_one(_df(), "arm", ["g", "b", "s"], categorical=["g"], group_order=[A, B])
    r = _rows(t)
    g = t[t["Characteristic"].eq("g, n (%)").cumsum().astype(bool)].head(3)
    assert g["Level"].tolist() == ["u", "v", "w"]
    assert g[A].tolist() == ["10 (50.0)", "5 (25.0)", "5 (25.0)"]
    # chi-squared 2 x 3, expected 7.5, 7.5, 5 per row: 4 * 2.5^2 / 7.5 = 3.3333; 2 df: p = exp(-3.3333 / 2)
    assert r["g, n (%)"]["P"] == tables.fmt_p(math.exp(-10 / 6)) == "0.189"
    # Yang-Dalton: d = (.25, 0) on levels v, w; S = mean of the two multinomial covariances
    # = [[.21875, -.09375], [-.09375, .1875]]; det .0322266; (S^-1)_11 = .1875 / .0322266 = 5.81818
    # SMD = sqrt(.0625 * 5.81818) = .60302
    assert r["g, n (%)"]["SMD"] == "0.603"
    # boolean -> Yes first; SMD |.5 - .25| / sqrt((.25 + .1875) / 2) = .5345
    b = t[t["Characteristic"].eq("b, n (%)").cumsum().astype(bool)].head(2)
    assert b["Level"].tolist() == ["Yes", "No"] and b[A].tolist() == ["10 (50.0)", "10 (50.0)"]
    assert r["b, n (%)"]["SMD"] == "0.535"
    # 2 x 2 with Yates: (|10 - 7.5| - .5)^2 = 4 over E = 7.5, 12.5, 7.5, 12.5 -> 1.70667; p = erfc(sqrt(x / 2))
    assert r["b, n (%)"]["P"] == tables.fmt_p(math.erfc(math.sqrt(1.70667 / 2)))
    # s: one missing (Missing column), % among non-missing: A has 19 'm' of 19; expected A/f = 10 * 19 / 39 < 5
    s_rows = t[t["Characteristic"].eq("s, n (%)").cumsum().astype(bool)].head(2)
    assert r["s, n (%)"]["Missing"] == "1" and s_rows[A].tolist() == ["0 (0.0)", "19 (100.0)"]
    assert r["s, n (%)"]["Test"] == "Fisher's exact"


def test_table_one_labels_levels_and_nonnormal():
    df = _df().assign(etiology=["hbv"] * 20 + ["hcv"] * 20, age=_df()["x"])
    t = tables.table_one(df, "arm", ["age", "etiology"], nonnormal=["age"], group_order=[A, B])
    r = _rows(t)
    # median [Q1, Q3] of ten 1s and ten 3s: median 2, Q1 1, Q3 3 (numpy linear quantiles)
    assert r["Age, years, median [Q1, Q3]"][A] == "2.0 [1.0,3.0]"
    assert r["Age, years, median [Q1, Q3]"]["Test"] == "Kruskal-Wallis"
    assert t.loc[t["Level"] != "", "Level"].tolist() == ["HBV", "HCV"]


def test_table_one_bad_input():
    df = _df()
    with pytest.raises(ValueError, match="not in data"):
        tables.table_one(df, "arm", ["nope"])
    with pytest.raises(ValueError, match="exactly 2 groups"):
        tables.table_one(df.assign(arm=["a", "b", "c", "d"] * 10), "arm", ["x"])
    with pytest.raises(ValueError, match="entirely missing"):
        tables.table_one(df.assign(z=np.nan), "arm", ["z"])


def test_table_one_weighted_by_hand():
    df = pd.DataFrame({"arm": [A, A, B, B, B], "x": [1.0, 3.0, 2.0, 4.0, 9.0], "g": ["u", "v", "u", None, "v"]})
    w = [1.0, 3.0, 1.0, 1.0, 0.0]  # the last unit has weight 0 and drops out
    t = tables.table_one_weighted(df, "arm", ["x", "g"], w, group_order=[A, B])
    r = _rows(t)
    assert (r["n"][A], r["n"][B]) == ("2", "2")
    # ESS A: (1 + 3)^2 / (1 + 9) = 1.6; B: 2
    assert (r["ESS"][A], r["ESS"][B]) == ("1.6", "2.0")
    # A: mean (1 + 9) / 4 = 2.5; normalised w .25, .75: sum w (x - m)^2 = .5625 + .1875 = .75,
    # 1 - sum w^2 = .375 -> var 2, SD 1.41. B: mean 3, var 1 / .5 = 2
    x = r["x, mean (SD)"]
    assert (x[A], x[B]) == ("2.5 (1.4)", "3.0 (1.4)")
    # ATE denominator in the unweighted sample (all 5 rows): var A of (1, 3) = 2, var B of (2, 4, 9) = 13
    # -> sqrt((2 + 13) / 2) = 2.7386; SMD |2.5 - 3| / 2.7386 = .1826
    assert x["SMD"] == "0.183"
    g = t[t["Characteristic"].eq("g, weighted %").cumsum().astype(bool)].head(2)
    # A: u weight 1 of 4 = 25 %, v 75 %; B: u 1 of 1 non-missing with weight > 0 -> 100 %, v 0 %
    assert g[A].tolist() == ["25.0", "75.0"] and g[B].tolist() == ["100.0", "0.0"]
    assert r["g, weighted %"]["Missing"] == "1"
    # level u, binary, ATE denominator on the unweighted non-missing rows: A p = .5 -> .25, B (u, v) p = .5 -> .25
    # -> sqrt(.25) = .5; weighted means A .25, B 1 -> |-.75| / .5 = 1.5
    assert g["SMD"].iloc[0] == "1.500"


def test_weighted_quantile_and_nonnormal_row():
    # cumulative weights 1, 2, 3, 8 of 8 -> .125, .25, .375, 1: median 4, Q1 2 (reached exactly), Q3 4
    assert tables.weighted_quantile([1, 2, 3, 4], [1, 1, 1, 5], 0.5) == 4
    assert tables.weighted_quantile([1, 2, 3, 4], [1, 1, 1, 5], 0.25) == 2
    # equal weights: R type 1 median of 1..4 is 2
    assert tables.weighted_quantile([4, 3, 2, 1], [1, 1, 1, 1], 0.5) == 2
    assert math.isnan(tables.weighted_quantile([1.0], [0.0], 0.5))
    df = pd.DataFrame({"arm": [A] * 4 + [B] * 2, "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    t = tables.table_one_weighted(df, "arm", ["x"], [1, 1, 1, 5, 1, 1], nonnormal=["x"], group_order=[A, B])
    assert _rows(t)["x, median [Q1, Q3]"][A] == "4.0 [2.0, 4.0]"


def test_table_one_weighted_bad_input():
    df = pd.DataFrame({"arm": [A, B], "x": [1.0, 2.0]})
    with pytest.raises(ValueError, match="1 weights for 2 rows"):
        tables.table_one_weighted(df, "arm", ["x"], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        tables.table_one_weighted(df, "arm", ["x"], [1.0, -1.0])


def test_term_labels_and_balance_format():
    assert tables.term_label("etiology_missing") == "Aetiology (missing)"
    assert tables.term_label("ecog", 1.0) == "ECOG performance status: 1"
    assert tables.term_label("etiology", "hbv") == "Aetiology: HBV"
    bal = pd.DataFrame({"term": ["age"], "variable": ["age"], "level": [None], "mean_treated_un": [52.48],
                        "mean_control_un": [54.154], "smd_un": [-0.1569], "var_ratio_un": [0.876],
                        "ecdf_max_un": [0.079]})
    f = matching.format_balance(bal)
    assert f.iloc[0].tolist() == ["Age, years", "52.480", "54.154", "-0.157", "0.88", "0.079"]


def test_table_one_markdown_journal_layout_and_tests_in_a_note():
    t1 = pd.DataFrame([
        {"Characteristic": "n", "Level": "", "Missing": "", "Overall": "10", A: "4", B: "6", "SMD": "", "P": "",
         "Test": ""},
        {"Characteristic": "Age, years, mean (SD)", "Level": "", "Missing": "1", "Overall": "50.0 (2.0)",
         A: "49.0 (1.0)", B: "51.0 (2.0)", "SMD": "0.100", "P": "0.200", "Test": "Welch’s T-test"},
        {"Characteristic": "Aetiology, n (%)", "Level": "HBV", "Missing": "0", "Overall": "8 (80.0)",
         A: "3 (75.0)", B: "5 (83.3)", "SMD": "0.300", "P": "0.400",
         "Test": "Chi-squared (warning: expected count < 5)"},
        {"Characteristic": "", "Level": "HCV", "Missing": "", "Overall": "2 (20.0)", A: "1 (25.0)", B: "1 (16.7)",
         "SMD": "", "P": "", "Test": ""},
        {"Characteristic": "Vp4 thrombus, n (%)", "Level": "Yes", "Missing": "0", "Overall": "3 (30.0)",
         A: "2 (50.0)", B: "1 (16.7)", "SMD": "0.700", "P": "0.500", "Test": "Chi-squared"},
        {"Characteristic": "", "Level": "No", "Missing": "", "Overall": "7 (70.0)", A: "2 (50.0)", B: "5 (83.3)",
         "SMD": "", "P": "", "Test": ""}])
    md = tables.table_one_markdown(t1)
    assert list(md.columns) == ["Characteristic", "Overall (n = 10)", f"{A} (n = 4)", f"{B} (n = 6)", "SMD", "P",
                                "Missing, n"]
    assert md["Characteristic"].tolist() == ["Age, years, mean (SD)", "Aetiology, n (%)", tables.INDENT + "HBV",
                                             tables.INDENT + "HCV", "Vp4 thrombus, n (%)"]  # Yes/No on one row
    assert md.loc[4, f"{A} (n = 4)"] == "2 (50.0)" and md.loc[1, "SMD"] == "0.300" and md.loc[2, "SMD"] == ""
    note = md.attrs["note"]
    assert "Welch's t-test for age" in note and "chi-squared test for aetiology and Vp4 thrombus" in note
    assert "expected cell count was below 5 for aetiology, so its chi-squared P value is approximate" in note
    assert "warning" not in tables.to_markdown(md).split("\n\n")[0]  # no library warning inside the table
