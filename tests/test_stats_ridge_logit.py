"""stats.ridge_logit against scikit-learn's LogisticRegression (the objective it reproduces)."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from analysis_utils.stats.ridge_logit import ridge_logit


def _data(k: int, n: int = 400, p: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    x[:, p // 2:] = x[:, p // 2:] > 0.8          # dummy-like columns, as the imputation designs
    b = rng.normal(scale=0.7, size=(p, k))
    eta = x @ b + rng.normal(size=k)
    pr = np.exp(eta - eta.max(axis=1, keepdims=True))
    pr /= pr.sum(axis=1, keepdims=True)
    y = (pr.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1)
    return x, np.array(["a", "b", "c", "d", "e"])[y] if k <= 5 else y


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("c", [0.1, 10.0])
def test_matches_scikit_learn(k, c):
    x, y = _data(k, seed=k)
    ours = ridge_logit(x, y, c)
    sk = LogisticRegression(C=c, solver="newton-cg", tol=1e-12, max_iter=1000).fit(x, y)
    assert ours.converged
    assert list(ours.classes) == list(sk.classes_)
    np.testing.assert_allclose(ours.predict_proba(x), sk.predict_proba(x), atol=1e-8)
    np.testing.assert_allclose(ours.coef, sk.coef_, atol=1e-6)
    if k == 2:
        np.testing.assert_allclose(ours.intercept, sk.intercept_, atol=1e-6)
        np.testing.assert_allclose(ours.decision_function(x), sk.decision_function(x), atol=1e-6)
    else:   # intercepts only up to a common shift: ours sum to zero
        assert abs(ours.intercept.sum()) < 1e-10
        np.testing.assert_allclose(ours.intercept, sk.intercept_ - sk.intercept_.mean(), atol=1e-6)


def test_binary_is_not_the_two_class_multinomial():
    """scikit-learn's two-class model penalises one coefficient vector (not two symmetric ones): the penalty on the
    logit's coefficients is ||b||^2 / 2, so a weaker C shrinks it as LogisticRegression does."""
    x, y = _data(2, seed=7)
    strong, weak = ridge_logit(x, y, 0.01), ridge_logit(x, y, 100.0)
    assert np.abs(strong.coef).sum() < np.abs(weak.coef).sum()
    sk = LogisticRegression(C=0.01, tol=1e-12, max_iter=1000).fit(x, y)
    np.testing.assert_allclose(strong.coef, sk.coef_, atol=1e-7)


def test_warm_start_reaches_the_same_optimum_in_fewer_iterations():
    x, y = _data(3, seed=3)
    cold = ridge_logit(x, y, 10.0)
    rng = np.random.default_rng(1)
    rows = rng.integers(0, len(y), len(y))
    fresh = ridge_logit(x[rows], y[rows], 10.0)
    warm = ridge_logit(x[rows], y[rows], 10.0, start=cold)
    np.testing.assert_allclose(warm.coef, fresh.coef, atol=1e-8)
    assert warm.n_iter < fresh.n_iter
    # a start with other classes or columns is ignored
    other = ridge_logit(x[:, :5], y, 10.0)
    np.testing.assert_allclose(ridge_logit(x, y, 10.0, start=other).coef, cold.coef, atol=1e-8)


def test_separation_gives_finite_estimates():
    x = np.r_[np.zeros((30, 1)), np.ones((30, 1))]
    y = np.r_[np.zeros(30), np.ones(30)]
    fit = ridge_logit(np.c_[x, np.arange(60) % 3], y, 10.0)
    assert fit.converged and np.all(np.isfinite(fit.coef))
    sk = LogisticRegression(C=10.0, tol=1e-12, max_iter=1000).fit(np.c_[x, np.arange(60) % 3], y)
    np.testing.assert_allclose(fit.coef, sk.coef_, atol=1e-6)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="single class"):
        ridge_logit(np.ones((5, 1)), np.zeros(5))
    with pytest.raises(ValueError, match="n x p"):
        ridge_logit(np.ones(5), np.arange(5) % 2)
    with pytest.raises(ValueError, match="c must be"):
        ridge_logit(np.ones((4, 1)), np.arange(4) % 2, c=0)
