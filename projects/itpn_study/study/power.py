# Copyright (c) mmitpn contributors. All rights reserved.
"""What a paired comparison over a few seeds can detect."""
import numpy as np
from scipy import optimize, stats


def t_test_power(effect: float,
                 sd: float,
                 n: int,
                 confidence: float = 0.95) -> float:
    """Power of the two-sided paired t-test over ``n`` pairs to find a true
    mean difference ``effect`` when the differences have standard deviation
    ``sd`` (noncentral t with ``n - 1`` degrees of freedom)."""
    df = n - 1
    critical = stats.t.ppf(0.5 + confidence / 2, df)
    shift = effect / (sd / np.sqrt(n))
    # The far tail underflows to nan for large shifts: it is 0 there.
    far = np.nan_to_num(stats.nct.cdf(-critical, df, shift))
    return float(stats.nct.sf(critical, df, shift) + far)


def smallest_detectable_effect(sd: float,
                               n: int,
                               power: float = 0.8,
                               confidence: float = 0.95) -> float:
    """The smallest true mean difference the two-sided paired t-test over
    ``n`` pairs detects with probability ``power`` at significance
    ``1 - confidence``, given the differences' standard deviation ``sd``.

    Example: 3 seeds (t with 2 degrees of freedom), 80 % power, 5 %: 3.26
    times ``sd`` (the normal approximation, 2.8 times the standard error,
    would give 1.62 times ``sd``).
    """
    if n < 2 or sd < 0:
        raise ValueError(f'needs at least 2 pairs and sd >= 0, got n={n}, '
                         f'sd={sd}.')
    if sd == 0:
        return 0.  # identical differences: any effect is found
    # Power rises from 1 - confidence at no effect to 1 within 100
    # standard errors for any n >= 2.
    error = sd / np.sqrt(n)
    return float(
        optimize.brentq(
            lambda effect: t_test_power(effect, sd, n, confidence) - power, 0.,
            100 * error))
