# Licensed under a 3-clause BSD style license - see LICENSE
"""
Gaussian correction factors of the sky estimators: the standard deviation
of a clipped sample, the efficiency ``k`` of each estimator of the level
(``error_on_mean = k * std / sqrt(n)``) and the shift of a clipped mean
per unit shift of its clipping window; their bias on a skewed (Poisson)
sky; and the median they take.
"""

import math

import numpy as np
from scipy.special import erf

__all__ = ['clip_factors']

#: A sky level from fewer usable pixels than this (or from pixels all
#: equal) is doubtful: its scatter, and so the error of every flux
#: measured against it, is no estimate.
MIN_SKY_PIXELS = 5


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


def skew_bias_factor(method, sigma=3.0):
    """
    ``b`` such that an estimator reads a sky of third central moment
    ``mu3`` and variance ``sigma_sky**2`` ``b * mu3 / sigma_sky**2`` below
    its mean (first order in the skewness, Gram-Charlier).

    0 for ``'mean'``; ``1 / 6`` for ``'median'`` (a skewed distribution's
    median lies ``mu3 / (6 sigma**2)`` below its mean); for
    ``'sigma_clip'`` the window ``±c`` (in units of the true sigma: the
    clip's ``sigma`` over its standard-deviation factor, as the clip
    converges on the kept pixels' spread) cuts more of the long tail than
    of the short one, ``c**3 phi(c) / (3 P)``, and is centred on the
    median, which adds `window_shift_factor` ``/ 6``.

    Examples
    --------
    >>> from ccdphot_ext.background.estimators import skew_bias_factor
    >>> round(skew_bias_factor('sigma_clip'), 4), round(
    ...     skew_bias_factor('median'), 4)
    (0.0483, 0.1667)
    """
    if method == 'mean':
        return 0.0
    if method == 'median':
        return 1.0 / 6.0
    c = float(sigma) / clip_factors(sigma)[0]
    p = erf(c / math.sqrt(2.0))
    phi = math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    return float(c ** 3 * phi / (3.0 * p) + window_shift_factor(c) / 6.0)


def poisson_skew_ratio(level, rms, gain):
    """
    ``mu3 / sigma**2`` of a sky whose ``level`` (data units) is all photons
    at ``gain`` e-/data unit, of total noise ``rms``: ``level / (gain**2
    rms**2)`` (read noise and dark add no skewness), at most ``1 / gain``
    (the photons' share of the variance cannot exceed 1); 0 where the level
    or the noise is not positive.
    """
    level = np.asarray(level, dtype=float)
    rms = np.asarray(rms, dtype=float)
    with np.errstate(invalid='ignore', divide='ignore'):
        ratio = np.where(rms > 0, np.maximum(level, 0.0)
                         / (gain * gain * rms * rms), 0.0)
    return np.minimum(ratio, np.where(level > 0, 1.0 / gain, 0.0))


def window_shift_factor(sigma):
    """``t = 2 c phi(c) / P``: shift of a ±c-sigma clipped mean per unit
    shift of its window (Gaussian noise)."""
    c = float(sigma)
    p = erf(c / math.sqrt(2.0))
    return 2.0 * c * math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi) / p


def median(values, axis=None):
    """
    ``numpy.median(values, axis)`` of values without NaN, along the last
    axis (``axis=-1``) or over all, by a sort: the same values, and with
    numpy's vectorised sorts several times faster than its partition.
    """
    ordered = np.sort(values, axis=-1 if axis is not None else None)
    n = ordered.shape[-1]
    half = n // 2
    if n % 2:
        return ordered[..., half]
    return np.mean(ordered[..., half - 1:half + 1], axis=-1)
