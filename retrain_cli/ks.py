"""The two-sided Kolmogorov-Smirnov distribution, as scipy.stats.kstwo computes it, without
importing scipy.stats.

`ks_2samp` gives large samples the p-value `kstwo.sf(D, n)`. Importing scipy.stats for it costs
about half a second of CPU, all of it holding the GIL, on every drift check; the methods scipy
uses for large n need only numpy and scipy.special. `kstwo_sf` takes scipy's branches
(scipy/stats/_ksstats.py, `_kolmogn`, after Simard and L'Ecuyer 2011) for n > 140 and evaluates
the two that matter at scale the same way: Smirnov's one-sided sum, and the Pelz-Good series.
Every other case (small n, D below 1/n or above 1 - 1/n, the Durbin matrix method for
n <= 100,000 and small D) is handed to scipy.stats itself. Tested against `kstwo.sf` on each branch.
"""

from __future__ import annotations

import math

import numpy as np

# scipy's branch points (`_kolmogn`): n D^2 where Pelz-Good gives way to Smirnov's sum, and where
# the p-value is 0 for double precision.
PELZ_GOOD_MAX = 2.2
ZERO_FROM = 370.0
SMALL_N = 140
DURBIN_MAX_N = 100_000
_GIL_FREE_LOOP = 512  # numpy releases the GIL for ufunc loops of 500 elements or more


def kstwo_sf(d: float, n: float) -> float:
    """scipy.stats.kstwo.sf(d, n): the chance that the two-sided KS statistic of n values
    exceeds d."""
    if d >= 1.0:
        return 0.0
    if d <= 0.5 / n:  # at or below the support
        return 1.0
    t = n * d
    n_d_squared = t * d
    if n <= SMALL_N or t <= 1.0 or t >= n - 1:
        return _scipy_kstwo_sf(d, n)
    if d >= 0.5 or n_d_squared >= PELZ_GOOD_MAX:
        if n_d_squared >= ZERO_FROM and d < 0.5:
            return 0.0
        return min(2.0 * smirnov_without_gil(n, d), 1.0)
    if n <= DURBIN_MAX_N and n * d**1.5 <= 1.4:
        return _scipy_kstwo_sf(d, n)
    return min(max(1.0 - pelz_good_cdf(n, d), 0.0), 1.0)


def _scipy_kstwo_sf(d: float, n: float) -> float:
    from scipy.stats import kstwo

    return float(kstwo.sf(d, n))


def smirnov_without_gil(n: float, d: float) -> float:
    """scipy.special.smirnov(n, d), the one-sided sum, as the one unmasked element of a
    512-element ufunc call.

    The sum takes O(n) steps (0.6 s at n = 500,000), and scipy's scalar call holds the GIL all
    along, which would stall every other thread of a drift check; numpy runs a loop this long
    without it.
    """
    from scipy.special import smirnov

    where = np.zeros(_GIL_FREE_LOOP, dtype=bool)
    where[0] = True
    out = np.zeros(_GIL_FREE_LOOP)
    smirnov(np.full(_GIL_FREE_LOOP, n), np.full(_GIL_FREE_LOOP, d), out=out, where=where)
    return float(out[0])


def pelz_good_cdf(n: float, d: float) -> float:
    """P(D_n <= d) by the Pelz-Good (1976) series K0 + K1/sqrt(n) + K2/n + K3/n^1.5 in
    z = d sqrt(n), each term rewritten with Jacobi theta functions for small z, summed as
    scipy does (odd terms by Horner's rule in q = exp(-pi^2 / (8 z^2)))."""
    z = math.sqrt(n) * d
    z2, z3, z4, z6 = z**2, z**3, z**4, z**6
    q_log = -(math.pi**2) / 8 / z2
    if q_log < -708:  # q underflows: the distribution has no mass below d
        return 0.0
    q = math.exp(q_log)
    pi2, pi4, pi6 = math.pi**2, math.pi**4, math.pi**6
    k1 = (-z2, pi2 / 4)
    k2 = (6 * z6 + 2 * z4, (2 * z4 - 5 * z2) * pi2 / 4, pi4 * (1 - 2 * z2) / 16)
    k3 = (
        -30 * z6 - 90 * z**8,
        pi2 * (135 * z4 - 96 * z6) / 4,
        pi4 * (-60 * z2 + 212 * z4) / 16,
        pi6 * (5 - 30 * z2) / 64,
    )
    terms = np.zeros(4)
    max_k = math.ceil(16 * z / math.pi)
    for k in range(max_k, 0, -1):
        m2 = (2 * k - 1) ** 2
        terms *= np.power(q, 8 * k)
        terms += np.array(
            [
                1.0,
                k1[0] + k1[1] * m2,
                k2[0] + k2[1] * m2 + k2[2] * m2**2,
                k3[0] + k3[1] * m2 + k3[2] * m2**2 + k3[3] * m2**3,
            ]
        )
    terms *= q
    terms *= math.sqrt(2 * math.pi)
    terms /= np.array([z, 6 * z4, 72 * z**7, 6480 * z**10])
    # the sums over every k of K2 and K3, with q' = exp(-pi^2 / (2 z^2))
    q_even = math.exp(-pi2 / 2 / z2)
    ks = np.arange(max_k, 0, -1)
    k_squared = ks**2
    powers = q_even**k_squared
    k_pi, root3_z = np.pi * ks, math.sqrt(3) * z
    terms[2] += np.sum(k_squared * powers) * (pi2 * math.sqrt(2 * math.pi) / (-36 * z3))
    terms[3] += np.sum((root3_z + k_pi) * (root3_z - k_pi) * k_squared * powers) * (
        pi2 * math.sqrt(2 * math.pi) / (216 * z6)
    )
    terms /= np.power(n * 1.0, np.arange(4) / 2.0)
    return float(sum(terms))
