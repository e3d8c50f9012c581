"""analysis_utils.stats.interval_censoring: the Turnbull NPMLE by hand, its reduction to Kaplan-Meier, midpoints."""
from __future__ import annotations

import numpy as np
import pytest

from analysis_utils.stats.interval_censoring import (midpoint_imputation, npmle_median, npmle_survival_at,
                                                     turnbull_npmle)
from analysis_utils.stats.kaplan_meier import kaplan_meier


def test_npmle_by_hand():
    # (0, 1], (0, 1], (0, 3], (2, 3]: Turnbull intervals (0, 1] and (2, 3]. Self-consistency with p1 + p2 = 1:
    # p1 = (2 + p1 / (p1 + p2)) / 4  ->  4 p1 = 2 + p1  ->  p1 = 2/3, p2 = 1/3.
    tab = turnbull_npmle([0, 0, 0, 2], [1, 1, 3, 3])
    assert tab[["left", "right"]].to_numpy().tolist() == [[0, 1], [2, 3]]
    np.testing.assert_allclose(tab["prob"], [2 / 3, 1 / 3], atol=1e-6)
    at = npmle_survival_at(tab, [0.5, 1.5, 2.5, 3])
    np.testing.assert_allclose(at["surv_lower"], [1 / 3, 1 / 3, 0, 0], atol=1e-6)
    np.testing.assert_allclose(at["surv_upper"], [1, 1 / 3, 1 / 3, 0], atol=1e-6)
    assert npmle_median(tab) == (0.0, 1.0)


def test_half_open_intervals_touching_at_an_end():
    # (0, 2] and (2, 4] touch at 2 but do not overlap (half-open, as R's icfit): two Turnbull intervals of mass 1/2
    # each, S = 1/2 exactly after the first, so the median is anywhere in [2, 2] ... up to the next left end (2).
    tab = turnbull_npmle([0, 2], [2, 4])
    assert tab[["left", "right"]].to_numpy().tolist() == [[0, 2], [2, 4]]
    np.testing.assert_allclose(tab["prob"], [0.5, 0.5], atol=1e-6)


def test_exact_and_right_censored_give_kaplan_meier():
    t = np.array([2, 3, 3, 5, 7, 8, 8, 11, 12, 15.0])
    e = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 0])
    tab = turnbull_npmle(t, np.where(e == 1, t, np.inf))
    km = kaplan_meier(t, e)
    at = npmle_survival_at(tab, km["time"])
    np.testing.assert_allclose(at["surv_lower"], km["surv"], atol=1e-6)
    np.testing.assert_allclose(at["surv_upper"], km["surv"], atol=1e-6)


def test_midpoint_imputation_and_errors():
    time, event = midpoint_imputation([1, 2, 4], [3, 2, np.inf])
    assert time.tolist() == [2.0, 2.0, 4.0] and event.tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match="left <= right"):
        turnbull_npmle([3], [2])
    with pytest.raises(ValueError, match="missing"):
        midpoint_imputation([np.nan], [1])
