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


def half_width(sd: float, n: int, confidence: float = 0.95) -> float:
    """Half-width of the t-based interval of a mean over ``n`` paired
    differences whose sample standard deviation is ``sd``:
    ``t(0.5 + confidence / 2, n - 1) * sd / sqrt(n)``."""
    if n < 2:
        raise ValueError(f'needs at least 2 pairs, got n={n}.')
    return float(stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n))


def seeds_for_half_width(sd: float,
                         target: float,
                         confidence: float = 0.95,
                         most: int = 1000) -> int:
    """The fewest pairs (at least 2) whose interval half-width
    (:func:`half_width`) is at most ``target`` when the differences'
    standard deviation is ``sd``."""
    for n in range(2, most + 1):
        if half_width(sd, n, confidence) <= target:
            return n
    raise ValueError(f'more than {most} pairs needed for a half-width of '
                     f'{target} at sd {sd}.')


def equivalence_probability(effect: float,
                            sd: float,
                            n: int,
                            margin: float,
                            confidence: float = 0.95) -> float:
    """Probability that the t-based interval over ``n`` paired differences
    (true mean ``effect``, standard deviation ``sd``, normal) lies inside
    ``(-margin, margin)``.

    The interval is ``mean ± c s`` with ``c = t / sqrt(n)``; the mean is
    normal with standard error ``sd / sqrt(n)`` and independent of the
    sample standard deviation ``s``, for which ``(n - 1) s^2 / sd^2`` is
    chi-square with ``n - 1`` degrees of freedom: the probability is the
    integral over ``s`` of ``P(-margin + c s < mean < margin - c s)``.
    """
    from scipy import integrate
    df = n - 1
    c = stats.t.ppf(0.5 + confidence / 2, df) / np.sqrt(n)
    error = sd / np.sqrt(n)
    # s below margin / c; beyond it the interval is wider than the margin.
    top = margin / c

    def inside(s):
        low, high = -margin + c * s, margin - c * s
        chance = stats.norm.cdf((high - effect) / error) - stats.norm.cdf(
            (low - effect) / error)
        # density of s: chi-square of (n - 1) s^2 / sd^2, times its
        # derivative 2 (n - 1) s / sd^2
        scaled = df * s**2 / sd**2
        return chance * stats.chi2.pdf(scaled, df) * 2 * df * s / sd**2

    value, _ = integrate.quad(inside, 0., top, limit=200)
    return float(min(max(value, 0.), 1.))


def sequential_coverage(sd: float,
                        start: int,
                        cap: int,
                        target: float,
                        margin: float = float('inf'),
                        confidence: float = 0.95,
                        trials: int = 200000,
                        seed: int = 0) -> dict:
    """Simulated behaviour of the rule "start with ``start`` pairs; while
    the interval's half-width exceeds ``target`` and fewer than ``cap``
    pairs are in, add one pair", for normal differences with mean 0: how
    often the final interval covers the true mean, how often it is at
    most ``target`` wide, how often it lies inside ``(-margin, margin)``,
    and the mean number of pairs. The rule looks at the spread only, never
    at the mean, but the spread decides the sample size and the interval
    alike, so the coverage can differ a little from ``confidence``.

    Returns:
        dict: ``coverage``, ``within_target``, ``inside_margin`` and
        ``mean_pairs``.
    """
    rng = np.random.default_rng(seed)
    diffs = rng.normal(0., sd, (trials, cap))
    final_n = np.full(trials, cap)
    undecided = np.ones(trials, dtype=bool)
    for n in range(start, cap + 1):
        width = stats.t.ppf(0.5 + confidence / 2, n - 1) * diffs[:, :n].std(
            1, ddof=1) / np.sqrt(n)
        stop = undecided & (width <= target)
        final_n[stop] = n
        undecided &= ~stop
    means = np.empty(trials)
    widths = np.empty(trials)
    for n in range(start, cap + 1):
        rows = final_n == n
        part = diffs[rows, :n]
        means[rows] = part.mean(1)
        widths[rows] = stats.t.ppf(0.5 + confidence / 2, n - 1) * part.std(
            1, ddof=1) / np.sqrt(n)
    return dict(
        coverage=float(np.mean(np.abs(means) <= widths)),
        within_target=float(np.mean(widths <= target)),
        inside_margin=float(np.mean(np.abs(means) + widths < margin)),
        mean_pairs=float(final_n.mean()))


def non_inferiority_power(effect: float,
                          sd: float,
                          n: int,
                          margin: float,
                          confidence: float = 0.95) -> float:
    """Probability that the lower end of the two-sided t-based interval over
    ``n`` paired differences (true mean ``effect``, standard deviation
    ``sd``, normal) lies above ``-margin``: the one-sided paired t-test of
    non-inferiority at level ``(1 - confidence) / 2``.

    ``mean - t s / sqrt(n) > -margin`` is ``(mean + margin) / (s / sqrt(n))
    > t``, whose left side is noncentral t with ``n - 1`` degrees of freedom
    and noncentrality ``(effect + margin) sqrt(n) / sd``.
    """
    if n < 2 or sd <= 0:
        raise ValueError(f'needs at least 2 pairs and sd > 0, got n={n}, '
                         f'sd={sd}.')
    df = n - 1
    critical = stats.t.ppf(0.5 + confidence / 2, df)
    return float(
        stats.nct.sf(critical, df, (effect + margin) * np.sqrt(n) / sd))


def seeds_for_non_inferiority(sd: float,
                              margin: float,
                              power: float = 0.8,
                              effect: float = 0.,
                              confidence: float = 0.95,
                              most: int = 1000) -> int:
    """The fewest pairs (at least 2) with which :func:`non_inferiority_power`
    reaches ``power``."""
    for n in range(2, most + 1):
        if non_inferiority_power(effect, sd, n, margin, confidence) >= power:
            return n
    raise ValueError(f'more than {most} pairs needed for power {power} at sd '
                     f'{sd}, margin {margin} and effect {effect}.')
