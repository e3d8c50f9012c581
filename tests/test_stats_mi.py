"""Rubin's rules and Barnard-Rubin degrees of freedom (stats.mi) against hand arithmetic and R mice 3.15 output
(values printed by R 4.2 / mice 3.15.0; the R script is in the test docstrings). docs/methods/missing-data.md."""
import functools
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis_utils.stats import mi


def test_pool_scalar_hand_arithmetic():
    # Q = (1, 2, 3), U = (0.5, 0.5, 0.5), n - k = 10:
    # qbar = 2, ubar = 0.5, b = var(1, 2, 3) = 1, t = 0.5 + 4/3 = 1.8333.., r = (4/3) / 0.5 = 8/3,
    # lambda = (4/3) / (11/6) = 8/11; df_old = 2 / (8/11)^2 = 3.78125; df_obs = 11/13 * 10 * 3/11 = 30/13;
    # df = df_old df_obs / (df_old + df_obs); fmi = (r + 2/(df + 3)) / (r + 1)
    p = mi.pool_scalar([1, 2, 3], [0.5, 0.5, 0.5], n=11, k=1)
    assert p["qbar"] == 2 and p["ubar"] == 0.5 and p["b"] == 1
    assert p["t"] == pytest.approx(0.5 + 4 / 3)
    assert p["r"] == pytest.approx(8 / 3)
    assert p["lambda"] == pytest.approx(8 / 11)
    dfold, dfobs = 2 / (8 / 11) ** 2, 30 / 13
    df = dfold * dfobs / (dfold + dfobs)
    assert p["df"] == pytest.approx(df, rel=1e-12)
    assert p["fmi"] == pytest.approx((8 / 3 + 2 / (df + 3)) / (8 / 3 + 1), rel=1e-12)


def test_barnard_rubin_large_sample_and_floor():
    # infinite dfcom: df = (m - 1) / lambda^2 (mice >= 3.16)
    assert mi.barnard_rubin(5, 0.025, 0.0404) == pytest.approx(4 / ((1.2 * 0.025 / 0.0404) ** 2))
    # b = 0: lambda floored at 1e-4, so df_old = (m - 1) * 1e8
    assert mi.barnard_rubin(3, 0.0, 1.0) == pytest.approx(2e8)
    assert mi.barnard_rubin(3, 0.0, 1.0, dfcom=50) == pytest.approx(2e8 * (51 / 53 * 50 * (1 - 1e-4))
                                                                    / (2e8 + 51 / 53 * 50 * (1 - 1e-4)))
    with pytest.raises(ValueError, match="m >= 2"):
        mi.barnard_rubin(1, 0.1, 1.0)


def test_pool_scalar_matches_r_mice():
    """R: pool.scalar(Q = c(-1.5457, -1.428), U = c(0.9723^2, 1.041^2), n = 25, k = 2) (the mice help example)
    and pool.scalar(Q = c(0.3, 0.1, 0.5, 0.2, 0.4), U = c(0.01, 0.012, 0.011, 0.009, 0.010), n = 200, k = 3)."""
    p = mi.pool_scalar([-1.5457, -1.428], [0.9723 ** 2, 1.041 ** 2], n=25, k=2)
    assert p["qbar"] == pytest.approx(-1.48685, abs=1e-14)
    assert p["t"] == pytest.approx(1.02491411250000009, rel=1e-12)
    assert p["df"] == pytest.approx(20.97025483807919954, rel=1e-12)
    assert p["r"] == pytest.approx(0.01024122249944088, rel=1e-12)
    assert p["fmi"] == pytest.approx(0.09272831450855648, rel=1e-12)
    p = mi.pool_scalar([0.3, 0.1, 0.5, 0.2, 0.4], [0.01, 0.012, 0.011, 0.009, 0.010], n=200, k=3)
    assert p["t"] == pytest.approx(0.0404, rel=1e-12)
    assert p["df"] == pytest.approx(6.338253357630145, rel=1e-12)
    assert p["r"] == pytest.approx(2.884615384615385, rel=1e-12)
    assert p["fmi"] == pytest.approx(0.797707853124111, rel=1e-12)


X = np.arange(1.0, 11.0)
YS = [[2.1, 3.9, 6.2, 7.8, 10.1, 12.2, 13.8, 16.1, 18.3, 19.7],
      [2.4, 3.5, 6.0, 8.3, 9.6, 12.5, 14.2, 15.7, 18.0, 20.4],
      [1.8, 4.2, 5.7, 8.1, 10.4, 11.9, 14.5, 15.9, 17.6, 20.1]]


def test_pool_of_lm_fits_matches_r_summary_mipo():
    """R: fits <- lapply(ys, function(y) lm(y ~ x)); summary(pool(as.mira(fits)), conf.int = TRUE)
    (dfcom = 8 taken from glance()'s df.residual)."""
    rows = []
    for i, y in enumerate(YS, 1):
        fit = sm.OLS(np.asarray(y), sm.add_constant(X)).fit()
        rows += [{".imp": i, "term": t, "estimate": e, "std_error": s, "dfcom": fit.df_resid}
                 for t, e, s in zip(["(Intercept)", "x"], fit.params, fit.bse)]
    p = mi.pool(pd.DataFrame(rows), dfcom="dfcom").set_index("term")
    r = {"(Intercept)": dict(estimate=0.0155555555555562, ubar=0.04454781144781142, b=0.001881481481481515,
                             t=0.04705645342312011, df=6.14242035131185, riv=0.056313472958096,
                             fmi=0.260409368126334, std_error=0.2169249949247899, p_value=9.45111266323927e-01,
                             conf_low=-0.512271705449433, conf_high=0.543382816560545),
         "x": dict(estimate=2.0032323232323233, ubar=0.00115708601163147, b=0.000135659626568722,
                   t=0.00133796551372309, df=5.38216995591928, riv=0.156323298590908, fmi=0.341535104353972,
                   lambda_=0.1351899583632046, std_error=0.0365782109147385, p_value=1.33262199027853e-08,
                   conf_low=1.911178147990354, conf_high=2.095286498474293)}
    for term, vals in r.items():
        for k, v in vals.items():
            got = p.loc[term, "lambda" if k == "lambda_" else k]
            assert got == pytest.approx(v, rel=1e-9, abs=1e-13), (term, k)
    assert (p["m"] == 3).all() and (p["dfcom"] == 8).all()


def test_pool_leaves_out_failed_imputations_and_needs_two():
    est = pd.DataFrame({"term": ["a", "a", "a", "b", "b"], "estimate": [1.0, np.nan, 3.0, 1.0, np.nan],
                        "std_error": [0.5, 0.5, 0.5, 0.2, 0.2]})
    p = mi.pool(est).set_index("term")
    assert p.loc["a", "m"] == 2 and p.loc["a", "estimate"] == 2.0
    assert p.loc["b", "m"] == 1 and math.isnan(p.loc["b", "estimate"])
    with pytest.raises(ValueError, match="not in the estimates"):
        mi.pool(est.drop(columns="std_error"))


def _square_plus(d, add=0):
    return d * d + add


def test_run_within_keeps_order_and_agrees_serial_parallel():
    seen = []
    serial = mi.run_within(list(range(6)), _square_plus, add=1, progress=lambda i, n: seen.append((i, n)))
    parallel = mi.run_within(list(range(6)), functools.partial(_square_plus, add=1), workers=2)
    assert serial == parallel == [1, 2, 5, 10, 17, 26]
    assert seen[-1] == (6, 6) and len(seen) == 6


def test_summarise_across_imputations_min_mean_max():
    f = pd.DataFrame({".imp": [1, 1, 2, 2], "term": ["a", "b", "a", "b"], "smd": [0.1, -0.3, 0.05, -0.1]})
    s = mi.summarise_across(f, ["term"], ["smd"]).set_index("term")
    assert s.loc["a", "smd_mean"] == pytest.approx(0.075) and s.loc["b", "smd_min"] == -0.3
    assert s.loc["b", "smd_max"] == -0.1 and (s["n_imp"] == 2).all()
