"""Exact inference for Poisson counts over person-time: R ``stats::poisson.test``.

* ``poisson_rate_ci``: one sample, ``poisson.test(x, T)``: the rate x / T with the exact (Garwood 1936) interval
  [qgamma(a/2, x) / T, qgamma(1 - a/2, x + 1) / T] (lower limit 0 when x = 0), multiplied by ``per`` (e.g. 100 for
  a rate per 100 patient-years).
* ``poisson_rate_ratio``: two samples, ``poisson.test(c(x1, x0), c(T1, T0), r)``: the rate ratio (x1/T1)/(x0/T0)
  with the interval and p-value of the conditional binomial test of x1 out of x1 + x0 with
  p = r T1 / (r T1 + T0) (R's ``binom.test``: Clopper-Pearson limits mapped by q -> q/(1 - q) * T0/T1, two-sided p
  summing the probabilities no larger than that of x1, relative tolerance 1e-7, as scipy's ``binomtest``).

Checked against the examples of R's help page (tests/test_stats_poisson.py). Where R and Python differ:
docs/methods/README.md.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["poisson_rate_ci", "poisson_rate_ratio"]


def _check(x: float, t: float) -> None:
    if x < 0 or int(x) != x:
        raise ValueError(f"the count must be a non-negative integer, got {x!r}")
    if not t > 0:
        raise ValueError(f"the person-time must be > 0, got {t!r}")


def poisson_rate_ci(x: int, person_time: float, conf_level: float = 0.95, per: float = 1.0
                    ) -> tuple[float, float, float]:
    """(rate, lower, upper) of ``x`` events over ``person_time``, times ``per``: R ``poisson.test(x, T)``."""
    _check(x, person_time)
    alpha = 1.0 - conf_level
    lower = 0.0 if x == 0 else stats.gamma.ppf(alpha / 2.0, x) / person_time
    upper = stats.gamma.ppf(1.0 - alpha / 2.0, x + 1) / person_time
    return x / person_time * per, lower * per, upper * per


def poisson_rate_ratio(x1: int, t1: float, x0: int, t0: float, conf_level: float = 0.95, r: float = 1.0
                       ) -> dict[str, float]:
    """Rate ratio of group 1 to group 0 with R ``poisson.test(c(x1, x0), c(t1, t0), r = r)``'s exact interval and
    two-sided p: {rate_ratio, lower, upper, p, expected_x1}. With x1 + x0 = 0 everything is missing."""
    _check(x1, t1)
    _check(x0, t0)
    n = int(x1 + x0)
    p0 = r * t1 / (r * t1 + t0)
    if n == 0:
        return {"rate_ratio": np.nan, "lower": np.nan, "upper": np.nan, "p": np.nan, "expected_x1": 0.0}
    test = stats.binomtest(int(x1), n, p0)
    ci = test.proportion_ci(conf_level, method="exact")

    def ratio(q: float) -> float:
        return np.inf if q >= 1.0 else q / (1.0 - q) * t0 / t1

    rate_ratio = np.inf if x0 == 0 else (x1 / t1) / (x0 / t0)
    return {"rate_ratio": float(rate_ratio), "lower": float(ratio(ci.low)), "upper": float(ratio(ci.high)),
            "p": float(test.pvalue), "expected_x1": n * p0}
