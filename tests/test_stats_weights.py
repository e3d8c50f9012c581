"""Tests for analysis_utils.stats.weights: WeightIt's IPTW, trimming and overlap weights."""
from __future__ import annotations

import numpy as np
import pytest

from analysis_utils.stats.weights import iptw_weights, overlap_weights

PS = np.array([0.2, 0.5, 0.8, 0.25])
TR = np.array([1, 1, 0, 0])


def test_iptw_formulas():
    # ATE: 1/.2 = 5, 1/.5 = 2 (treated); 1/(1-.8) = 5, 1/(1-.25) = 4/3 (controls)
    assert iptw_weights(PS, TR, "ATE", stabilize=False) == pytest.approx([5, 2, 5, 4 / 3])
    # stabilised: times the share of the unit's own group (2/4 each)
    assert iptw_weights(PS, TR, "ATE") == pytest.approx([2.5, 1, 2.5, 2 / 3])
    # ATT: treated 1; controls .8/.2 = 4, .25/.75 = 1/3
    assert iptw_weights(PS, TR, "ATT", stabilize=False) == pytest.approx([1, 1, 4, 1 / 3])
    # ATC: treated .8/.2 = 4, .5/.5 = 1; controls 1
    assert iptw_weights(PS, TR, "ATC", stabilize=False) == pytest.approx([4, 1, 1, 1])
    # overlap: treated 1 - e, controls e
    assert overlap_weights(PS, TR) == pytest.approx([0.8, 0.5, 0.8, 0.25])


def test_iptw_trim_as_weightit():
    # ATE weights 5, 2, 5, 4/3; R quantile type 3 at .6 of (4/3, 2, 5, 5): n p = 2.4 -> j = floor(2.4 - .5) = 1,
    # g = .9 > 0 -> x(2) = 2; weights above 2 are set to 2
    assert iptw_weights(PS, TR, "ATE", stabilize=False, trim=0.6) == pytest.approx([2, 2, 2, 4 / 3])
    # ATT: treated weights all 1 are not trimmed; controls (4, 1/3): n p = 1.2 -> j = 0, g = .7 -> x(1) = 1/3
    assert iptw_weights(PS, TR, "ATT", stabilize=False, trim=0.6) == pytest.approx([1, 1, 1 / 3, 1 / 3])
    # at < .5 is read as 1 - at (WeightIt: at <- max(at, 1 - at))
    assert iptw_weights(PS, TR, "ATE", stabilize=False, trim=0.4) == pytest.approx([2, 2, 2, 4 / 3])


def test_weights_bad_input():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        iptw_weights([0.0, 0.5], [1, 0])
    with pytest.raises(ValueError, match="non-finite"):
        overlap_weights([np.nan, 0.5], [1, 0])
    with pytest.raises(ValueError, match="estimand"):
        iptw_weights(PS, TR, "ATO")
    with pytest.raises(ValueError, match="trim"):
        iptw_weights(PS, TR, trim=1.5)
