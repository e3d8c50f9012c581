"""Random-effects meta-analysis (stats.meta) against R metafor 3.8 (``rma``) on the BCG vaccine data (metafor's
``dat.bcg``, log risk ratios from ``escalc(measure = "RR")``) and hand arithmetic. docs/methods/multicentre.md."""
import numpy as np
import pytest

from analysis_utils.stats import meta

# dat.bcg: tpos, tneg, cpos, cneg (Colditz et al. 1994)
BCG = np.array([[4, 119, 11, 128], [6, 300, 29, 274], [3, 228, 11, 209], [62, 13536, 248, 12619],
                [33, 5036, 47, 5761], [180, 1361, 372, 1079], [8, 2537, 10, 619], [505, 87886, 499, 87892],
                [29, 7470, 45, 7232], [17, 1699, 65, 1600], [186, 50448, 141, 27197], [5, 2493, 3, 2338],
                [27, 16886, 29, 17825]], dtype=float)


def _log_rr():
    a, b, c, d = BCG.T
    yi = np.log(a / (a + b)) - np.log(c / (c + d))
    vi = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    return yi, vi


def test_reml_matches_metafor_rma():
    """R: dat <- escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg); r <- rma(yi, vi, data=dat);
    c(r$tau2, r$I2, r$H2, r$QE, r$beta, r$se); predict(r)."""
    r = meta.random_effects(*_log_rr(), method="REML")
    assert r.tau2 == pytest.approx(0.3132433, abs=2e-6)
    assert r.i2 == pytest.approx(92.2213861, abs=1e-4)
    assert r.h2 == pytest.approx(12.8557608, abs=1e-4)
    assert r.q == pytest.approx(152.2330081, abs=1e-6)
    assert r.estimate == pytest.approx(-0.7145323, abs=1e-6)
    assert r.se == pytest.approx(0.1797815, abs=1e-6)
    assert (r.conf_low, r.conf_high) == pytest.approx((-1.0669, -0.3622), abs=1e-4)
    assert (r.pi_low, r.pi_high) == pytest.approx((-1.8667, 0.4376), abs=1e-4)


def test_dl_matches_metafor_and_higgins_i2():
    """R: rma(yi, vi, data=dat, method="DL"): tau2 0.3087603, I2 92.1173469, H2 12.6860840, beta -0.7141172,
    se 0.1787421, ci.lb -1.0644453."""
    r = meta.random_effects(*_log_rr(), method="DL")
    assert r.tau2 == pytest.approx(0.3087603, abs=1e-7)
    assert r.i2 == pytest.approx(92.1173469, abs=1e-6)
    assert r.h2 == pytest.approx(12.6860840, abs=1e-6)
    assert r.estimate == pytest.approx(-0.7141172, abs=1e-7)
    assert r.se == pytest.approx(0.1787421, abs=1e-7)
    assert r.conf_low == pytest.approx(-1.0644453, abs=1e-7)
    # with DL, metafor's I2 is Higgins' (Q - df) / Q
    assert r.i2 == pytest.approx(100 * (r.q - 12) / r.q, rel=1e-10)


def test_homogeneous_estimates_give_tau2_zero_and_fixed_effect_summary():
    # y = (0.1, 0.1, 0.1), v = (0.01, 0.04, 0.04): Q = 0, tau2 = 0, I2 = 0, mu = 0.1, se = sqrt(1 / (100 + 25 + 25))
    for method in meta.METHODS:
        r = meta.random_effects([0.1, 0.1, 0.1], [0.01, 0.04, 0.04], method=method)
        assert r.tau2 == 0 and r.i2 == 0 and r.q == pytest.approx(0)
        assert r.estimate == pytest.approx(0.1) and r.se == pytest.approx((1 / 150) ** 0.5)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2"):
        meta.random_effects([0.1], [0.01])
    with pytest.raises(ValueError, match="positive"):
        meta.random_effects([0.1, 0.2], [0.01, 0.0])
    with pytest.raises(ValueError, match="method"):
        meta.random_effects([0.1, 0.2], [0.01, 0.02], method="PM")
