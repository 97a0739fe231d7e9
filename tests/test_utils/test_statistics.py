# Copyright (c) mmitpn contributors. All rights reserved.
import numpy as np
import pytest
from scipy import stats

from mmitpn.utils.statistics import format_difference, paired_difference


def test_paired_difference_is_the_t_interval_of_the_common_seeds():
    first = {0: 10.0, 1: 12.0, 2: 11.0, 7: 99.0}
    second = {0: 9.0, 1: 9.5, 2: 10.0, 3: -5.0}
    diff = paired_difference(first, second)
    diffs = np.array([1.0, 2.5, 1.0])
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert diff['seeds'] == [0, 1, 2]
    assert diff['mean'] == pytest.approx(1.5)
    assert diff['low'] == pytest.approx(1.5 - half)
    assert diff['high'] == pytest.approx(1.5 + half)
    assert format_difference(diff) == (
        f'+1.50 [{1.5 - half:+.2f}, {1.5 + half:+.2f}] (n=3)')


def test_paired_difference_needs_two_common_seeds():
    assert paired_difference({0: 1.0, 1: 2.0}, {1: 1.0, 2: 3.0}) is None
    assert format_difference(None) == '-'
