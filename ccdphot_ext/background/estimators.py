# Licensed under a 3-clause BSD style license - see LICENSE
"""
Gaussian correction factors of the sky estimators: the standard deviation
of a clipped sample, the efficiency ``k`` of each estimator of the level
(``error_on_mean = k * std / sqrt(n)``) and the shift of a clipped mean
per unit shift of its clipping window; and the median they take.
"""

import math

import numpy as np
from scipy.special import erf

__all__ = ['clip_factors']


def combination_efficiency(median_factor, mean_factor):
    """``k`` of ``a * median - b * mean`` for Gaussian noise.

    Asymptotically var(median) = (pi/2) sigma**2/n, var(mean) = sigma**2/n
    and cov(median, mean) = sigma**2/n.
    """
    a, b = float(median_factor), float(mean_factor)
    return math.sqrt(a * a * math.pi / 2.0 - 2.0 * a * b + b * b)


def clip_factors(sigma):
    """
    Gaussian correction factors for a mean clipped at ±``sigma``.

    Parameters
    ----------
    sigma : float
        Clipping threshold in standard deviations.

    Returns
    -------
    std_factor : float
        Multiply the clipped sample's standard deviation by this to estimate
        the Gaussian sigma.
    efficiency : float
        ``k`` in ``error_on_mean = k * std / sqrt(n_kept)``.

    Examples
    --------
    >>> from ccdphot_ext.background import clip_factors
    >>> [round(f, 4) for f in clip_factors(3.0)]
    [1.0136, 1.0136]
    """
    c = float(sigma)
    p = erf(c / math.sqrt(2.0))
    tail = 2.0 * c * math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    return 1.0 / math.sqrt(1.0 - tail / p), math.sqrt(p / (p - tail))


def estimator_efficiency(method, sigma=3.0):
    """
    The efficiency ``k`` of a sky estimator for Gaussian noise.

    ``error_on_mean = k * std / sqrt(n)``: 1 for ``'mean'``,
    ``sqrt(pi / 2)`` for ``'median'`` and the clipped mean's factor of
    `clip_factors` for ``'sigma_clip'`` (at ±``sigma``).

    Examples
    --------
    >>> from ccdphot_ext.background.estimators import estimator_efficiency
    >>> round(estimator_efficiency('median'), 4)
    1.2533
    """
    if method == 'mean':
        return 1.0
    if method == 'median':
        return math.sqrt(math.pi / 2.0)
    return clip_factors(sigma)[1]


def window_shift_factor(sigma):
    """``t = 2 c phi(c) / P``: shift of a ±c-sigma clipped mean per unit
    shift of its window (Gaussian noise)."""
    c = float(sigma)
    p = erf(c / math.sqrt(2.0))
    return 2.0 * c * math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi) / p


def median(values, axis=None, overwrite_input=False):
    """
    ``numpy.median(values, axis)`` of values without NaN, along the last
    axis (``axis=-1``) or over all, by a sort: the same values, and with
    numpy's vectorised sorts several times faster than its partition.
    ``overwrite_input`` is accepted as numpy's (the sort makes a copy).
    """
    ordered = np.sort(values, axis=-1 if axis is not None else None)
    n = ordered.shape[-1]
    half = n // 2
    if n % 2:
        return ordered[..., half]
    return np.mean(ordered[..., half - 1:half + 1], axis=-1)
