"""MICE on statsmodels' MICEData (stats.mice): the Nelson-Aalen auxiliary against R mice::nelsonaalen, the default
methods, reproducible chains (serial = parallel), the delta shift, and bad input (a column never observed, a single
observed level). docs/methods/missing-data.md."""
import numpy as np
import pandas as pd
import pytest

from analysis_utils.stats import mice as mc


def test_nelson_aalen_matches_r_mice():
    """R: d <- data.frame(time = c(1,2,2,3,4,4,4,5,6,7), status = c(1,1,1,0,1,1,0,1,0,1)); nelsonaalen(d, time,
    status) (mice 3.15, survival 3.5-3)."""
    h = mc.nelson_aalen([1, 2, 2, 3, 4, 4, 4, 5, 6, 7], [1, 1, 1, 0, 1, 1, 0, 1, 0, 1])
    r = [0.100000000000000, 0.336111111111111, 0.336111111111111, 0.336111111111111, 0.702777777777778,
         0.702777777777778, 0.702777777777778, 1.036111111111111, 1.036111111111111, 2.036111111111111]
    assert h == pytest.approx(r, abs=1e-14)
    # by hand at t = 2: 0.1 + 1/9 + 1/8 (two events among nine at risk, Efron / Fleming-Harrington increments)
    assert h[1] == pytest.approx(0.1 + 1 / 9 + 1 / 8)
    assert np.isnan(mc.nelson_aalen([1.0, np.nan], [1, 1])[1])


def _frame(n=300, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    grp = np.where(x + rng.normal(size=n) > 0.5, "b", "a")
    lvl = rng.choice(["0", "1", "2"], size=n, p=[0.3, 0.5, 0.2])
    flag = pd.array(rng.random(n) < 0.4, dtype="boolean")
    y = 2 * x + (grp == "b") + rng.normal(size=n)
    f = pd.DataFrame({"x": x, "grp": grp, "lvl": lvl, "flag": flag, "y": y})
    for c, frac in (("x", 0.2), ("grp", 0.15), ("lvl", 0.1), ("flag", 0.1)):
        f.loc[rng.random(n) < frac, c] = None
    return f


def test_default_methods_complete_data_and_observed_values_untouched():
    f = _frame()
    r = mc.mice(f, categorical=["grp", "lvl"], m=3, maxit=3, seed=5)
    assert r.methods == {"x": "pmm", "grp": "logreg", "lvl": "polyreg", "flag": "logreg", "y": ""}
    assert len(r.completed) == 3 * len(f) and r.completed[["x", "grp", "lvl", "flag"]].notna().all().all()
    for _, g in r.completed.groupby(".imp"):
        g = g.reset_index(drop=True)
        obs = f["x"].notna()
        assert (g.loc[obs, "x"] == f.loc[obs, "x"]).all()
        assert set(g["grp"]) <= {"a", "b"} and set(g["lvl"]) <= {"0", "1", "2"}
        # pmm imputes observed values only
        assert set(g.loc[~obs, "x"]) <= set(f.loc[obs, "x"])
    assert str(r.completed["flag"].dtype) == "boolean"
    assert set(r.trace["variable"]) == {"x", "grp", "lvl", "flag"} and r.trace["iteration"].max() == 3


def test_chains_are_reproducible_and_independent_of_workers():
    f = _frame()
    a = mc.mice(f, categorical=["grp", "lvl"], m=3, maxit=2, seed=7)
    b = mc.mice(f, categorical=["grp", "lvl"], m=3, maxit=2, seed=7, workers=2)
    pd.testing.assert_frame_equal(a.completed, b.completed)
    c = mc.mice(f, categorical=["grp", "lvl"], m=3, maxit=2, seed=8)
    assert not a.completed.equals(c.completed)
    # imputations differ between chains (between-imputation variance)
    x = a.completed.pivot(index=".id", columns=".imp", values="x")
    assert (x.nunique(axis=1) > 1).sum() > 10


def test_delta_moves_imputed_levels_toward_later_levels():
    f = _frame(n=600, seed=3)
    base = mc.mice(f, categorical=["grp", "lvl"], m=4, maxit=3, seed=2)
    shifted = mc.mice(f, categorical=["grp", "lvl"], m=4, maxit=3, seed=2, delta={"lvl": 3.0})
    miss = f["lvl"].isna().to_numpy()

    def share_2(r):
        return np.mean([(g["lvl"].to_numpy()[miss] == "2").mean() for _, g in r.completed.groupby(".imp")])
    assert share_2(shifted) > share_2(base) + 0.3


def test_column_never_observed_and_single_level_are_notes_not_crashes():
    f = _frame()
    f["empty"] = np.nan
    f["one"] = ["k" if i % 3 else None for i in range(len(f))]
    r = mc.mice(f, categorical=["grp", "lvl", "one"], m=2, maxit=1, seed=1)
    assert r.completed["empty"].isna().all()
    assert (r.completed["one"] == "k").all()
    assert any("empty: no observed value" in n for n in r.notes)
    assert any("one: a single observed value" in n for n in r.notes)
    with pytest.raises(ValueError, match="method"):
        mc.mice(f, categorical=["grp", "lvl"], m=1, maxit=1, methods={"x": "norm"})
