# Licensed under a 3-clause BSD style license - see LICENSE
"""
Gaussian correction factors of the sky estimators: the standard deviation
of a clipped sample, the efficiency ``k`` of each estimator of the level
(``error_on_mean = k * std / sqrt(n)``) and the shift of a clipped mean
per unit shift of its clipping window; their bias on a skewed (Poisson)
sky, to first order in the skewness and, for a photon-starved sky, under
the exact distribution of its pixels (`poisson_level`); and the median
they take.
"""

import math

import astropy.units as u
import numpy as np
from scipy.special import erf, gammaln, ndtr

from ..io.units import electrons_per_data_unit
from ..utils.inputs import strip_unit
from ..utils.numbers import positive_scalar
from ..utils.stats import MAD_TO_STD, MEDIAN_EFFICIENCY

__all__ = ['clip_factors']

#: A sky level from fewer usable pixels than this (or from pixels all
#: equal) is doubtful: its scatter, and so the error of every flux
#: measured against it, is no estimate.
MIN_SKY_PIXELS = 5


def check_mesh_box(box_size, shape=None, *, name='box_size'):
    """
    Refuse a Background2D mesh that cannot give a sky level: one of fewer
    than `MIN_SKY_PIXELS` pixels (a 1 x 1 or 2 x 2 mesh; 3 x 3 is the
    smallest square one), whose scatter, and so the map's rms, is no
    estimate (a single pixel's is 0), and which cuts a frame into so many
    meshes that the map takes hours; or one larger than the frame.

    Parameters
    ----------
    box_size : int or (int, int)
        The mesh in pixels, ``(ny, nx)``.
    shape : (int, int), optional
        The frame's shape, to refuse a mesh larger than it.
    name : str, optional
        The parameter named in the error (``'--box-size'`` for the CLI).

    Returns
    -------
    box : (int, int)
        The mesh, as two ints.

    Raises
    ------
    ValueError
        If the mesh holds fewer than `MIN_SKY_PIXELS` pixels, or does not
        fit in ``shape``; naming ``name``.

    Examples
    --------
    >>> from ccdphot_ext.background.estimators import check_mesh_box
    >>> check_mesh_box(3)
    (3, 3)
    >>> check_mesh_box(2)
    Traceback (most recent call last):
    ...
    ValueError: box_size 2 x 2 holds 4 pixels: a mesh needs at least 5 ...
    """
    box = tuple(int(b) for b in np.broadcast_to(box_size, 2))
    n_pix = box[0] * box[1]
    if n_pix < MIN_SKY_PIXELS:
        raise ValueError(
            f'{name} {box[0]} x {box[1]} holds {n_pix} '
            f'pixel{"" if n_pix == 1 else "s"}: a mesh needs at least '
            f'{MIN_SKY_PIXELS} to give a sky level and its scatter (3 x 3 '
            'is the smallest square mesh; meshes larger than the stars, '
            '32 or more, are usual)')
    if shape is not None and (box[0] > shape[0] or box[1] > shape[1]):
        raise ValueError(f'{name} {box[0]} x {box[1]} is larger than the '
                         f'{shape[0]} x {shape[1]} frame')
    return box


def combination_efficiency(median_factor, mean_factor):
    """``k`` of ``a * median - b * mean`` for Gaussian noise.

    Asymptotically var(median) = (pi/2) sigma**2/n, var(mean) = sigma**2/n
    and cov(median, mean) = sigma**2/n.
    """
    a, b = float(median_factor), float(mean_factor)
    return math.sqrt(a * a * math.pi / 2.0 - 2.0 * a * b + b * b)


#: below this clipping sigma, clip_factors uses its series (the closed form
#: loses digits to cancellation, and fails below 1e-8)
_SMALL_CLIP = 1e-3


def clip_factors(sigma):
    """
    Gaussian correction factors for a mean clipped at ±``sigma``.

    Parameters
    ----------
    sigma : float
        Clipping threshold in standard deviations (positive).

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
    c = positive_scalar(sigma, 'sigma', allow_none=False)
    if c < _SMALL_CLIP:
        # erf and the tail cancel to their first c**3 term: the series
        # p / (p - tail) = 3 / c**2 * (1 + 2 c**2 / 15 + O(c**4))
        factor = math.sqrt(3.0 + 0.4 * c * c) / c
        return factor, factor
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
        return MEDIAN_EFFICIENCY
    return clip_factors(sigma)[1]


def median_efficiency(n):
    """
    The efficiency ``k`` of the median of ``n`` Gaussian values (numpy's:
    the mean of the middle two when ``n`` is even): its error is ``k * std
    / sqrt(n)``.

    1 for one or two values (the median is their mean); beyond,
    ``sqrt(pi / 2 * n / (n + a))`` with ``a = 0.47`` (odd ``n``) or 1.4
    (even), which tends to `estimator_efficiency`'s ``sqrt(pi / 2)`` and
    is within 1.5% of simulated medians (4 x 10**6 values for each ``n``
    from 3 to 256: ``k**2`` 1.346 at 3, 1.192 at 4, 1.493 at 9, 1.535 at
    64; the formula 1.357, 1.164, 1.493, 1.537).

    Parameters
    ----------
    n : int or array_like of int
        The number of values (at least 1 where the result is used; 0
        gives NaN).

    Returns
    -------
    k : float or `~numpy.ndarray`

    Examples
    --------
    >>> from ccdphot_ext.background.estimators import median_efficiency
    >>> [round(float(median_efficiency(n)), 3) for n in (1, 2, 3, 4, 256)]
    [1.0, 1.0, 1.165, 1.079, 1.25]
    """
    n = np.asarray(n, dtype=float)
    a = np.where(n % 2 == 1, 0.47, 1.4)
    with np.errstate(invalid='ignore', divide='ignore'):
        k2 = np.where(n <= 2, 1.0, math.pi / 2.0 * n / (n + a))
    k = np.sqrt(np.where(n >= 1, k2, np.nan))
    return k[()]


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


def clipped_median_skew_factor(sigma=3.0):
    """
    ``b`` of `skew_bias_factor` for the median of a sigma-clipped sample
    (photutils' ``SigmaClip`` iterated to convergence, centred on the
    median, as `~photutils.background.Background2D` clips each mesh).

    The window ``±c`` (true sigmas, as in `skew_bias_factor`) keeps
    ``c**2 phi(c) / 3`` times the skewness more of the long tail than of
    the short one, which pulls the kept pixels' median further down; the
    window's own centre is that median (the fixed point of the
    iteration): ``b = (1 + (c**2 - 1) e) / (6 (1 - e))`` with ``e =
    exp(-c**2 / 2)`` (first order in the skewness, Gram-Charlier), 0.1852
    at a 3-sigma clip against 1/6 unclipped.

    Examples
    --------
    >>> from ccdphot_ext.background.estimators import (
    ...     clipped_median_skew_factor)
    >>> round(clipped_median_skew_factor(3.0), 4)
    0.1852
    """
    c = float(sigma) / clip_factors(sigma)[0]
    e = math.exp(-0.5 * c * c)
    return (1.0 + (c * c - 1.0) * e) / (6.0 * (1.0 - e))


def checked_gain(gain, unit=None, meta=None):
    """
    The ``gain=`` of a sky estimate, checked, as electrons per data unit:
    a positive number is taken as that; a Quantity (``1.9 * u.electron /
    u.adu``, or electrons per the data's own unit) is worked out for
    data in ``unit`` by `~ccdphot_ext.io.units.electrons_per_data_unit`
    (data in ``adu / s``: times the ``EXPTIME`` of the header ``meta``).
    None takes the gain the photometry would: the data's ``unit`` and the
    header ``meta`` resolved as `~ccdphot_ext.DetectorParameters.resolve`
    does (1 for electrons, ``EXPTIME`` for electrons per second,
    ``GAIN``/``EGAIN`` for adu); it stays None (no Poisson bias
    correction) where neither gives one, as does a Quantity gain of rate
    data without an exposure time (it warns).
    """
    if gain is None:
        if unit is None and not meta:
            return None
        from ..io.header import DetectorParameters
        return DetectorParameters().resolve(meta, unit=unit).gain
    if (isinstance(gain, u.Quantity)
            and gain.unit != u.dimensionless_unscaled):
        exptime = (meta or {}).get('EXPTIME')
        return electrons_per_data_unit(unit, gain=gain, exptime=exptime,
                                       gain_is_explicit=True)[0]
    return positive_scalar(strip_unit(gain, None, 'gain'), 'gain',
                           allow_none=False)


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
    c = positive_scalar(sigma, 'sigma', allow_none=False)
    if c < _SMALL_CLIP:
        # erf and the tail cancel to their first c**3 term: the series
        # p / (p - tail) = 3 / c**2 * (1 + 2 c**2 / 15 + O(c**4))
        factor = math.sqrt(3.0 + 0.4 * c * c) / c
        return factor, factor
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


#: Sky levels up to this many electrons per pixel are corrected with the
#: exact distribution of a Poisson sky (`poisson_level`); above it the
#: skewness (below 0.01) leaves the first-order correction exact to well
#: within the error of a level.
EXACT_POISSON_MAX = 1.0e4
#: Annulus levels up to this many electrons a pixel are solved under the
#: exact model too (each annulus on its own, a few milliseconds); brighter
#: annuli keep the first-order correction, within 0.03 of a flux error bar
#: at 20 e- a pixel.
ANNULUS_EXACT_MAX = 10.0
#: The read noise (electrons) the exact model may take at least: the
#: distribution of a continuous sky with none is a comb, which no level
#: is solved from.
MIN_MODEL_READ_NOISE = 0.05
#: The most electrons (photons, or read noise) the solvers of the exact
#: model try: a model of more has more components than memory holds.
MAX_MODEL_ELECTRONS = 1.0e12
#: The widest window (whole data units) whose digitised moments are summed
#: value by value: a wider one spans over a thousand units a standard
#: deviation, where rounding to whole units changes the variance by less
#: than 1e-7 of itself (Sheppard's 1/12), and its moments are taken as
#: those of the continuous model.
MAX_DIGITISED_WINDOW = 1.0e4
#: Where the model's equations have no exact root, the closest point is
#: taken when each equation is within this many of its standard errors.
MAX_RESIDUAL = 2.0


class PoissonSkyModel:
    """
    The distribution of a sky pixel: ``lam`` photo-electrons (Poisson)
    plus Gaussian read noise of ``read_noise`` electrons, divided by the
    ``gain`` (e-/data unit), plus an ``offset`` (data unit; a pedestal
    subtracted or left in), rounded to whole data units when
    ``digitised``.

    Its methods give what the estimating equations of `poisson_level`
    need: the distribution function and the moments of the pixels inside
    a window.
    """

    def __init__(self, lam, read_noise, gain, digitised, offset=0.0):
        self.lam, self.gain, self.digitised = lam, gain, digitised
        self.scale = read_noise / gain  # of each Poisson component
        spread = 12.0 * math.sqrt(lam) + 12.0
        k = np.arange(max(0, int(lam - spread)), int(lam + spread) + 1)
        self.centres = k / gain
        if offset:  # a pedestal (`pedestal_level`)
            self.centres = self.centres + offset
        self.weights = np.exp(k * math.log(max(lam, 1e-300)) - lam
                              - gammaln(k + 1.0))

    def _cdf_continuous(self, x):
        z = (np.asarray(x, dtype=float)[..., None] - self.centres) / self.scale
        return ndtr(z) @ self.weights

    def cdf(self, x):
        """P(pixel <= x); for digitised pixels at whole values ``x``."""
        if self.digitised:
            return self._cdf_continuous(np.floor(x) + 0.5)
        return self._cdf_continuous(x)

    def window_moments(self, lo, hi, centre, order=4):
        """``E[1(lo <= X <= hi) (X - centre)**j]`` for j = 0 ... ``order``
        (4 or 6); a window of digitised pixels wider than
        `MAX_DIGITISED_WINDOW` whole values as if continuous."""
        if self.digitised and hi - lo <= MAX_DIGITISED_WINDOW:
            d = np.arange(math.ceil(lo), math.floor(hi) + 1, dtype=float)
            if not d.size:
                return np.zeros(order + 1)
            edges = self._cdf_continuous(np.append(d - 0.5, d[-1] + 0.5))
            p = np.diff(edges)
            y = d - centre
            return np.array([np.sum(p * y ** j) for j in range(order + 1)])
        s = self.scale
        a = (lo - self.centres) / s
        b = (hi - self.centres) / s
        pa, pb = norm_pdf(a), norm_pdf(b)
        # partial moments of a unit normal over [a, b]
        i0 = ndtr(b) - ndtr(a)
        part = np.array([i0, pa - pb, i0 + _times(a, pa) - _times(b, pb),
                         _times(a * a + 2.0, pa) - _times(b * b + 2.0, pb),
                         3.0 * i0 + _times(a ** 3 + 3.0 * a, pa)
                         - _times(b ** 3 + 3.0 * b, pb)])
        m = self.centres - centre
        if order > 4:  # I_j = (j - 1) I_(j-2) + a**(j-1) phi(a) - ...
            part = list(part)
            for j in range(5, order + 1):
                part.append((j - 1) * part[j - 2] + _times(a ** (j - 1), pa)
                            - _times(b ** (j - 1), pb))
            # every sum over the components at once: q[p, i] is the sum
            # of weight * m**p * I_i
            q = ((m[None, :] ** np.arange(order + 1)[:, None] * self.weights)
                 @ np.array(part).T)
            return np.array([sum(math.comb(j, i) * s ** i * q[j - i, i]
                                 for i in range(j + 1))
                             for j in range(order + 1)])
        out = np.empty(order + 1)
        for j in range(order + 1):
            terms = sum(math.comb(j, i) * m ** (j - i) * s ** i * part[i]
                        for i in range(j + 1))
            out[j] = terms @ self.weights
        return out


def norm_pdf(z):
    """The unit normal density (0 at infinite ``z``)."""
    with np.errstate(over='ignore', invalid='ignore'):
        return np.exp(-0.5 * np.square(z)) / math.sqrt(2.0 * math.pi)


def _times(poly, pdf):
    """``poly * pdf``, 0 where ``pdf`` is 0 (infinite bounds)."""
    with np.errstate(invalid='ignore'):
        return np.where(pdf > 0, poly * pdf, 0.0)


def is_digitised(values):
    """True when every value is a whole number (data in whole data units,
    as read off an ADC) below `WHOLE_LIMIT` in size: the exact model of
    `poisson_level` then rounds. (Every float of that size or more is a
    whole number: it says nothing of how the data were read.)"""
    values = np.asarray(values).ravel()
    if not values.size:
        return False
    if values.dtype.kind in 'iub' and values.dtype.itemsize <= 4:
        return True
    step = 2 ** 20  # a chunk at a time: no copy of a large frame
    return all(bool(np.all(np.mod(chunk, 1.0) == 0.0)
                    and np.all(np.abs(chunk) < WHOLE_LIMIT))
               for chunk in (values[i:i + step]
                             for i in range(0, values.size, step)))


#: The size from which every float64 is a whole number (2**53).
WHOLE_LIMIT = 2.0 ** 53


def clip_statistics(kept, n_seen, sigma, *, bounds=None, digitised=None):
    """
    What a sigma-clipped mean measured, for `poisson_level`: the window
    of the clip (``bounds``, else the median of the ``kept`` pixels -/+
    ``sigma`` times their standard deviation, widened to hold them all;
    for digitised pixels their smallest and largest value), the kept
    pixels' mean and variance, and the ``n_seen`` pixels the clip saw.
    """
    kept = np.asarray(kept, dtype=np.float64)
    if digitised is None:
        digitised = is_digitised(kept)
    mean, var = float(np.mean(kept)), float(np.var(kept))
    low, high = float(np.min(kept)), float(np.max(kept))
    if digitised:  # the whole values kept
        bounds = low, high
    elif bounds is None:
        centre, half = float(median(kept)), sigma * math.sqrt(var)
        bounds = min(centre - half, low), max(centre + half, high)
    return window_statistics(bounds, mean, var, n_seen, digitised,
                             n_window=kept.size)


def estimator_statistics(pixels, kept, method, sigma):
    """`clip_statistics` (``method='sigma_clip'``, the ``kept`` mask of the
    clip; with the third moment of `third_window`) or `median_statistics`
    of the usable ``pixels``."""
    if method == 'sigma_clip':
        stats = clip_statistics(pixels[kept], pixels.size, sigma)
        lo, hi = third_window(stats, sigma)
        inside = pixels[(pixels >= lo) & (pixels <= hi)].astype(
            np.float64, copy=False)
        stats.update(window3=(lo, hi), m3=float(
            np.mean((inside - stats['mean']) ** 3)) if inside.size else 0.0)
        return stats
    return median_statistics(pixels)


def third_window(stats, sigma):
    """The window of a clipped mean's third moment (`pedestal_level`):
    `SCALE_WINDOW` standard deviations (the kept pixels' times the clip's
    factor) either side of their mean, holding the clip's window (which
    cuts too much of a skewed sky's tail to tell its photons)."""
    half = SCALE_WINDOW * math.sqrt(stats['var']) * clip_factors(sigma)[0]
    lo = min(stats['mean'] - half, stats['window'][0])
    hi = max(stats['mean'] + half, stats['window'][1])
    if stats['digitised']:
        lo, hi = math.ceil(lo), math.floor(hi)
    return lo, hi


def window_statistics(bounds, mean, var, n_seen, digitised, *,
                      n_window=None):
    """
    `clip_statistics` from the clip's bounds, the mean and variance of the
    pixels within them and the number of pixels the clip saw (for a frame
    whose kept pixels are summed, not kept); ``n_window``: the pixels it
    kept, which `poisson_level` asks its model to hold in the window
    (None: not asked).
    """
    lo, hi = (float(b) for b in bounds)
    if digitised:  # the whole values within the bounds
        lo, hi = math.ceil(lo), math.floor(hi)
    return {'method': 'sigma_clip', 'n': int(n_seen),
            'digitised': bool(digitised), 'window': (lo, hi),
            'mean': float(mean), 'var': float(var),
            'n_window': None if n_window is None else int(n_window)}


def median_statistics(values, *, digitised=None):
    """
    What a median measured, for `poisson_level`: the median of the pixels
    (for digitised pixels that of their distribution function interpolated
    linearly across each whole value, the grouped median: the plain median
    of whole numbers is a whole number, whatever the level), and the mean
    square deviation from it of the pixels within `SCALE_WINDOW` robust
    standard deviations (1.4826 median absolute deviations) of it, and
    their mean cubed deviation (``m3``, for `pedestal_level`; its window
    ``window3`` the same), and how many they are (``n_window``).
    """
    values = np.asarray(values)
    if digitised is None:
        digitised = is_digitised(values)
    if not digitised:
        values = values.astype(np.float64, copy=False)
        centre = float(median(values))
        spread = float(median(np.abs(values - centre)))
        lo, hi = _scale_window(centre, spread)
        inside = values[(values >= lo) & (values <= hi)]
    else:
        whole, counts = _whole_counts(values)
        # the distribution function rises linearly across each whole
        # value held (flat between them): knots at its half-units
        knots = np.stack([whole - 0.5, whole + 0.5], axis=1).ravel()
        cum = np.cumsum(counts) / values.size
        cum = np.stack([np.append(0.0, cum[:-1]), cum], axis=1).ravel()
        cum[-1] = 1.0
        centre = _interp_root(lambda x: np.interp(x, knots, cum) - 0.5,
                              knots[0], knots[-1])
        spread = _interp_root(
            lambda d: (np.interp(centre + d, knots, cum)
                       - np.interp(centre - d, knots, cum) - 0.5),
            0.0, knots[-1] - knots[0])
        lo, hi = _scale_window(centre, spread)
        lo, hi = math.ceil(lo), math.floor(hi)
        counts = np.where((whole >= lo) & (whole <= hi), counts, 0)
        inside = np.repeat(whole, counts)
    var = float(np.mean((inside - centre) ** 2)) if inside.size else 0.0
    m3 = float(np.mean((inside - centre) ** 3)) if inside.size else 0.0
    return {'method': 'median', 'n': int(values.size),
            'digitised': digitised, 'median': centre, 'window': (lo, hi),
            'var': var, 'window3': (lo, hi), 'm3': m3,
            'n_window': int(inside.size)}


def _whole_counts(values):
    """The whole values held by ``values`` (floats, ascending) and how
    many of each: counted in one array over their range where it is
    short, else by sorting (a frame of whole numbers with a value far
    from the others, as a cosmic ray in integer data)."""
    low, high = np.min(values), np.max(values)
    if high - low < max(4 * values.size, 2 ** 16):
        counts = np.bincount((values - low).astype(np.int64).ravel())
        held = np.flatnonzero(counts)
        return (held + float(low)).astype(float), counts[held]
    whole, counts = np.unique(values, return_counts=True)
    return whole.astype(float), counts


#: The window of `median_statistics`' mean square deviation, in robust
#: standard deviations either side of the median.
SCALE_WINDOW = 4.0


def _scale_window(centre, spread):
    """The bounds `SCALE_WINDOW` robust standard deviations (``spread``
    median absolute deviations) either side of ``centre``."""
    half = SCALE_WINDOW * MAD_TO_STD * spread
    return centre - half, centre + half


def _interp_root(func, lo, hi):
    """The smallest root of a non-decreasing piecewise-linear ``func``
    on ``[lo, hi]`` (bisection to rounding)."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if func(mid) >= 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _median_indicators(centre, digitised):
    """The fraction of pixels below a median as a combination of
    indicators ``1(X <= a)``: the knots ``a`` and their coefficients (for
    digitised pixels the grouped median's interpolation, ``(1 - w)
    1(X <= k - 1) + w 1(X <= k)``)."""
    if not digitised:
        return np.array([centre]), np.array([1.0])
    k = math.floor(centre + 0.5)
    w = centre + 0.5 - k
    return np.array([k - 1.0, float(k)]), np.array([1.0 - w, w])


def _equations(model, stats, third=False):
    """The expected estimating functions of ``stats`` under ``model``
    (0 at the solution) and their covariance per pixel: for a clipped
    mean, the kept pixels' deviations from their mean and its square less
    their variance; for a median, the fraction below it less 1/2 and the
    squared deviations from it less their mean square, in its window.
    With ``third``, also the cubed deviations less their mean cube
    (``stats['m3']``), in the same window (`pedestal_level`)."""
    lo, hi = stats['window']
    t2 = stats['var']
    if stats['method'] == 'sigma_clip':
        m = model.window_moments(lo, hi, stats['mean'], 6 if third else 4)
        psi = np.array([m[1], m[2] - t2 * m[0]])
        second = np.array([[m[2], m[3] - t2 * m[1]],
                           [m[3] - t2 * m[1],
                            m[4] - 2.0 * t2 * m[2] + t2 * t2 * m[0]]])
        if third:
            psi3, c23, c33 = _third_moments(model, m, stats, stats['mean'])
            c13 = m[4] - stats['m3'] * m[1]
            second = np.block([[second, np.array([[c13], [c23]])],
                               [np.array([[c13, c23, c33]])]])
            psi = np.append(psi, psi3)
        return psi, second - np.outer(psi, psi)
    centre = stats['median']
    knots, coef = _median_indicators(centre, stats['digitised'])
    cdf = model.cdf(knots)
    m = model.window_moments(lo, hi, centre, 6 if third else 4)
    psi = np.array([coef @ cdf - 0.5, m[2] - t2 * m[0]])
    var1 = coef @ (np.minimum.outer(cdf, cdf) - np.outer(cdf, cdf)) @ coef
    var2 = m[4] - 2.0 * t2 * m[2] + t2 * t2 * m[0] - psi[1] ** 2
    below = [model.window_moments(lo, a, centre) if a >= lo else np.zeros(5)
             for a in np.minimum(knots, hi)]
    cov = sum(c * (b[2] - t2 * b[0] - f * psi[1])
              for c, b, f in zip(coef, below, cdf, strict=True))
    covariance = np.array([[var1, cov], [cov, var2]])
    if not third:
        return psi, covariance
    psi3, c23, c33 = _third_moments(model, m, stats, centre)
    c13 = sum(c * (b[3] - stats['m3'] * b[0]) for c, b in zip(
        coef, below, strict=True)) - (coef @ cdf) * psi3
    return np.append(psi, psi3), np.array(
        [[var1, cov, c13], [cov, var2, c23 - psi[1] * psi3],
         [c13, c23 - psi[1] * psi3, c33 - psi3 * psi3]])


def _third_moments(model, m, stats, centre):
    """Of the cubed deviations from ``centre`` less their mean cube in
    ``stats['window3']`` (which holds the estimator's window, of moments
    ``m`` to order 6 about ``centre``): their expectation, their second
    moment with the squared deviations' function and with themselves."""
    t2, t3 = stats['var'], stats['m3']
    lo, hi = stats['window3']
    w = (m if (lo, hi) == tuple(stats['window'])
         else model.window_moments(lo, hi, centre, 6))
    return (w[3] - t3 * w[0],
            m[5] - t3 * m[2] - t2 * m[3] + t2 * t3 * m[0],
            w[6] - 2.0 * t3 * w[3] + t3 * t3 * w[0])


#: A model whose probability of the estimator's window is below this
#: share of the fraction of pixels the window held is no solution: the
#: clipped mean's equations are moments inside its window, which a model
#: with (almost) nothing there meets trivially (0 = 0), far from the sky.
MIN_WINDOW_SHARE = 0.5
#: A solved level further than this many standard deviations per pixel
#: from the estimator's own level is no solution: an estimator's Poisson
#: bias is a fraction of a standard deviation (at most 0.8, the median of
#: a sky of 0.7 e- in whole electrons).
MAX_LEVEL_SHIFT = 2.0
#: The most error of a level solved by `poisson_level`, in standard
#: errors of the mean (``std / sqrt(n)``; the median's is 1.25 of them, a
#: solved one's mostly up to 3, up to 7 for the median of a sky of half
#: an electron): a larger one is an ill-conditioned solution's (a window
#: holding two whole values, whose mean and variance tell one number;
#: such errors run to 1e8).
MAX_MODEL_ERROR = 10.0
#: The same for a level solved with a pedestal (`pedestal_level`).
MAX_PEDESTAL_ERROR = 3.0


def _window_share(model, stats):
    """The ``model``'s probability of the estimator's window over the
    fraction of the pixels the window held (``stats['n_window']``; 1
    where not recorded)."""
    held = stats.get('n_window')
    if not held:
        return 1.0
    lo, hi = stats['window']
    below = lo - 1.0 if stats['digitised'] else lo  # whole values
    inside = float(model.cdf(hi) - model.cdf(below))
    return inside * stats['n'] / held


def _implausible(model, stats, level, error, first_guess, std,
                 max_error=MAX_MODEL_ERROR):
    """True where a solution of the exact model (its ``model``, ``level``
    and ``error`` of the level) is no estimate of the sky the estimator
    measured: an error not positive or above ``max_error`` standard
    errors of the mean (``std`` over the root of ``stats['n']``), a model
    that leaves the estimator's window (nearly) empty
    (`MIN_WINDOW_SHARE`), or a level more than `MAX_LEVEL_SHIFT` standard
    deviations ``std`` from the estimator's level ``first_guess``."""
    return not (0.0 < error <= max_error * std / math.sqrt(stats['n'])
                and abs(level - first_guess) <= MAX_LEVEL_SHIFT * std
                and _window_share(model, stats) >= MIN_WINDOW_SHARE)


def poisson_level(stats, gain, first_guess, std, *, offset=0.0):
    """
    The level of a Poisson sky from what its estimator measured, under the
    exact distribution of its pixels.

    The sky pixel is taken as ``lam`` photo-electrons (Poisson) plus
    Gaussian read noise ``s`` (electrons), over the ``gain``, plus a known
    ``offset``, rounded to whole data units when ``stats['digitised']``.
    ``lam`` and ``s`` are solved so that the model's expectation of the estimator's own
    equations is 0: for the sigma-clipped mean, that the pixels in the
    clip's window have the measured mean and variance; for the median,
    that half the pixels lie below it and that the pixels in a window
    around it have the measured mean square deviation from it
    (:ref:`sky-estimators`). Where no point solves them exactly (a comb
    of few electrons and little read noise) the closest is taken when
    it is within `MAX_RESIDUAL` standard errors. The error of ``lam /
    gain`` is the delta method's, from the covariance of those equations
    per pixel and their derivatives in ``lam`` and ``s``. A point that
    meets the equations but is no estimate of the sky (`_implausible`:
    a model with nothing in the estimator's window, which meets the
    clipped mean's equations trivially; a level far from the
    estimator's; an error not finite, or so large that the equations
    hardly tell the level) is no solution.

    Parameters
    ----------
    stats : dict
        From `clip_statistics` or `median_statistics`.
    gain : float
        Electrons per data unit.
    first_guess : float
        The estimator's level (data unit), where the solver starts.
    std : float
        The estimator's standard deviation per pixel (data unit; where not
        positive, that of ``stats``).
    offset : float, optional
        A pedestal (data unit) known to be in the pixels, as
        `pedestal_level` measures it (a sky-subtracted frame: the level
        less it is the photons); 0 (default): none.

    Returns
    -------
    solution : dict or None
        ``level`` (``offset + lam / gain``), ``std`` (the model's,
        ``sqrt(lam + s**2) / gain``), ``error_on_mean``, ``lam`` and
        ``read_noise`` (electrons); None where the model does not apply
        (photons, ``first_guess - offset``, not positive or above
        `EXACT_POISSON_MAX` electrons, a scatter below the photons', no
        plausible solution).

    Examples
    --------
    A sky of 1 e- a pixel with 0.5 e- read noise at 1 e-/ADU, whose median
    reads it 0.13 ADU low:

    >>> import numpy as np
    >>> from ccdphot_ext.background.estimators import (
    ...     median_statistics, poisson_level)
    >>> rng = np.random.default_rng(0)
    >>> sky = rng.poisson(1.0, 10 ** 6) + rng.normal(0.0, 0.5, 10 ** 6)
    >>> stats = median_statistics(sky)
    >>> print(f"{stats['median']:.2f}")
    0.87
    >>> sol = poisson_level(stats, 1.0, stats['median'], np.std(sky))
    >>> print(f"{sol['level']:.3f} +/- {sol['error_on_mean']:.3f}, read "
    ...       f"noise {sol['read_noise']:.2f}")
    1.000 +/- 0.001, read noise 0.50
    """
    from scipy.optimize import least_squares, root

    lam0 = (first_guess - offset) * gain
    if not (0.0 < lam0 <= EXACT_POISSON_MAX and stats['var'] > 0):
        return None
    if not std > 0:  # the robust scatter of whole numbers may be 0
        std = math.sqrt(stats['var'])
    read0 = math.sqrt(max((gain * std) ** 2 - lam0, 0.25 * lam0, 0.01))
    scale = np.array([std if stats['method'] == 'sigma_clip' else 1.0,
                      std * std])

    def model(lam, read):
        return PoissonSkyModel(lam, read, gain, stats['digitised'],
                               offset=offset)

    def residual(x):
        lam, read = math.exp(min(x[0], 700.0)), math.exp(min(x[1], 700.0))
        if not (lam <= MAX_MODEL_ELECTRONS and read <= MAX_MODEL_ELECTRONS):
            # a step far outside (on a level near 0 the start is): no model
            # of so many components, a residual the solver steps back from
            return np.full(2, 1e10)
        sky = model(lam, read)
        if _window_share(sky, stats) < MIN_WINDOW_SHARE:
            # nothing in the window meets the clipped mean's equations
            # (0 = 0): no root there, a residual to step back from
            return np.full(2, 1e10)
        return _equations(sky, stats)[0] / scale

    start = [math.log(lam0), math.log(read0)]
    with np.errstate(all='ignore'):
        sol = root(residual, start, method='hybr', options={'xtol': 1e-12})
        x = sol.x
        if not (np.all(np.isfinite(sol.fun))
                and np.max(np.abs(sol.fun)) < 1e-7):
            # no exact root (a sky of few electrons and little read noise
            # is a comb, whose median and deviation move in steps): the
            # closest point, in units of the equations' sampling noise
            noise = np.sqrt(np.diag(_equations(model(lam0, read0), stats)[1])
                            / stats['n']) / scale
            fit = least_squares(lambda x: residual(x) / noise, start,
                                method='lm', xtol=1e-12)
            if not np.all(np.abs(fit.fun) < MAX_RESIDUAL):
                return None
            x = fit.x
    lam, read = (float(v) for v in np.exp(x))
    if (not np.all(np.isfinite(x)) or read < MIN_MODEL_READ_NOISE
            or lam > EXACT_POISSON_MAX):
        return None
    psi, cov = _equations(model(lam, read), stats)
    jac = np.empty((2, 2))
    for j, (dl, dr) in enumerate(((1e-5 * lam, 0.0), (0.0, 1e-5 * read))):
        up = _equations(model(lam + dl, read + dr), stats)[0]
        down = _equations(model(lam - dl, read - dr), stats)[0]
        jac[:, j] = (up - down) / (2.0 * (dl + dr))
    try:
        inv = np.linalg.inv(jac)
    except np.linalg.LinAlgError:
        return None
    var_lam = float((inv @ cov @ inv.T)[0, 0]) / stats['n']
    level, error = offset + lam / gain, math.sqrt(max(var_lam, 0.0)) / gain
    if _implausible(model(lam, read), stats, level, error, first_guess,
                    std):
        return None
    return {'level': level, 'std': math.sqrt(lam + read * read) / gain,
            'error_on_mean': error, 'lam': lam, 'read_noise': read}


#: A sky's third moment that exceeds what its level allows (photons at the
#: gain, `poisson_level`) by more than this many of its standard errors
#: is read as a pedestal's (`pedestal_level`).
MIN_PEDESTAL_SIGNIFICANCE = 3.0


def pedestal_evidence(stats, gain, lam, read_noise, level):
    """
    How far the third moment the estimator's window measured
    (``stats['m3']``) lies above what a sky of ``lam`` photo-electrons and
    ``read_noise`` electrons (the solution of `poisson_level`; ``lam`` 0:
    no photons, a Gaussian of the measured variance centred on ``level``)
    gives, in standard errors of the measured moment; NaN where not
    measured. Beyond `MIN_PEDESTAL_SIGNIFICANCE` the sky holds more
    photons than its level: a pedestal was subtracted (a sky-subtracted
    frame) and `pedestal_level` applies.
    """
    if stats.get('m3') is None or not stats['var'] > 0:
        return math.nan
    if lam > 0:
        model = PoissonSkyModel(lam, read_noise, gain, stats['digitised'])
    else:
        model = PoissonSkyModel(0.0, max(gain * math.sqrt(stats['var']),
                                         MIN_MODEL_READ_NOISE), gain,
                                stats['digitised'], offset=level)
    with np.errstate(all='ignore'):
        psi, cov = _equations(model, stats, third=True)
    noise = math.sqrt(max(cov[2, 2], 0.0) / stats['n'])
    return float(-psi[2] / noise) if noise > 0 else math.nan


def pedestal_test(stats, gain, solution, level, std):
    """
    Whether a sky holds more photons than its level allows, and its level
    with a pedestal where it does.

    The third moment is weighed (`pedestal_evidence`) against the exact
    model's ``solution`` of the level (`poisson_level`), or against no
    photons where there is none (a level not above 0, or no solution up
    to `EXACT_POISSON_MAX` electrons); beyond `MIN_PEDESTAL_SIGNIFICANCE`
    standard errors the level is solved with a pedestal
    (`pedestal_level`, from the estimator's ``level`` and ``std``).

    Returns
    -------
    significance : float
        ``z`` of `pedestal_evidence` (NaN where not measured, or for a
        level beyond the model's range).
    pedestal : dict or None
        The solution of `pedestal_level`; None where the evidence is short
        or the pedestal model has no solution.
    """
    if solution is not None:
        z = pedestal_evidence(stats, gain, solution['lam'],
                              solution['read_noise'], level)
    elif level * gain <= EXACT_POISSON_MAX:  # against no photons
        z = pedestal_evidence(stats, gain, 0.0, 0.0, level)
    else:  # above the exact model's range
        return math.nan, None
    if not math.isfinite(z) or z <= MIN_PEDESTAL_SIGNIFICANCE:
        return z, None
    return z, pedestal_level(stats, gain, level, std)


#: The least read noise (electrons) of the pedestal model: a sky whose
#: third moment reads it photon-dominated is solved at this read noise,
#: which keeps the model smooth (its comb of whole electrons blurred to
#: 3e-9 of its density, which the median's equation would feel).
PEDESTAL_MIN_READ_NOISE = 1.0


def pedestal_level(stats, gain, first_guess, std):
    """
    The level of a Poisson sky on a pedestal from what its estimator
    measured, under the exact distribution of its pixels.

    As `poisson_level`, with an ``offset`` (data unit) added to the pixel,
    so that the level, ``offset + lam / gain``, no longer tells the
    photons: a sky-subtracted frame (a level near 0, its photons still
    there), whose estimator reads low by the photons' skewness as any
    other. The photons come from the third central moment of the pixels
    in the estimator's window (``stats['m3']``; read noise adds none),
    the offset and the read noise with them from the estimator's own two
    equations, all three solved so that the model's expectation of the
    three is 0; the error of the level is the delta method's.

    Parameters
    ----------
    stats : dict
        From `clip_statistics` or `median_statistics` (with ``'m3'``).
    gain : float
        Electrons per data unit.
    first_guess : float
        The estimator's level (data unit), where the solver starts.
    std : float
        The estimator's standard deviation per pixel (data unit; where not
        positive, that of ``stats``).

    Returns
    -------
    solution : dict or None
        ``level``, ``std`` (the model's), ``error_on_mean``, ``lam``,
        ``read_noise`` (electrons) and ``offset`` (data unit); None where
        the model does not apply (no third moment, a variance above
        `EXACT_POISSON_MAX` electrons, no solution, a solution
        `_implausible` as in `poisson_level`, its error above
        `MAX_PEDESTAL_ERROR` standard errors of the mean).

    Examples
    --------
    A sky of 50 e- a pixel with 3 e- read noise at 1 e-/ADU, its 50 e-
    subtracted (the pixels' mean is -0.002): the median reads it 0.15 ADU
    low.

    >>> import numpy as np
    >>> from ccdphot_ext.background.estimators import (
    ...     median_statistics, pedestal_level)
    >>> rng = np.random.default_rng(1)
    >>> sky = rng.poisson(50.0, 10 ** 6) + rng.normal(0.0, 3.0, 10 ** 6) - 50
    >>> stats = median_statistics(sky)
    >>> print(f"{stats['median']:.2f}")
    -0.15
    >>> sol = pedestal_level(stats, 1.0, stats['median'], np.std(sky))
    >>> print(f"{sol['level']:.3f} +/- {sol['error_on_mean']:.3f}; "
    ...       f"{sol['lam']:.0f} e-, read noise {sol['read_noise']:.1f}")
    -0.007 +/- 0.008; 50 e-, read noise 2.9
    """
    from scipy.optimize import least_squares, root

    if stats.get('m3') is None or not stats['var'] > 0:
        return None
    if not std > 0:
        std = math.sqrt(stats['var'])
    var_e = (gain * std) ** 2
    if not var_e <= EXACT_POISSON_MAX:
        return None
    # the windowed third moment reads the photons' low: a start
    lam0 = min(max(1.2 * gain ** 3 * stats['m3'], 0.05 * var_e),
               0.95 * var_e)
    scale = np.array([std if stats['method'] == 'sigma_clip' else 1.0,
                      std * std, std ** 3])
    least = PEDESTAL_MIN_READ_NOISE ** 2
    floor = least / var_e

    def model(offset, lam, read_var):
        return PoissonSkyModel(lam, math.sqrt(max(read_var, least)), gain,
                               stats['digitised'], offset=offset)

    top = math.log(4.0 * EXACT_POISSON_MAX)  # no overflow on the way

    def unpack(x):  # the read noise as its variance: free to reach 0
        return (x[0] * std, math.exp(min(x[1], top)),
                min(x[2], 100.0) * var_e)

    def residual(x):
        sky = model(*unpack(x))
        if _window_share(sky, stats) < MIN_WINDOW_SHARE:  # (`poisson_level`)
            return np.full(3, 1e10)
        return _equations(sky, stats, third=True)[0] / scale

    if floor >= 0.5:  # no room for photons beside the read noise
        return None
    start = [(first_guess - lam0 / gain) / std, math.log(lam0),
             max(1.0 - lam0 / var_e, 1.5 * floor)]
    with np.errstate(all='ignore'):
        sol = root(residual, start, method='hybr', options={'xtol': 1e-12})
        x = sol.x
        if not (np.all(np.isfinite(sol.fun)) and x[2] >= floor
                and np.max(np.abs(sol.fun)) < 1e-7):
            # no root with a read noise: the closest point, in units of
            # the equations' sampling noise (a photon-dominated sky whose
            # third moment came out above its variance: read noise 0)
            noise = np.sqrt(np.diag(_equations(
                model(*unpack(start)), stats, third=True)[1])
                / stats['n']) / scale
            fit = least_squares(
                lambda x: residual(x) / noise, start, method='trf',
                xtol=1e-12, bounds=([-np.inf, -np.inf, floor], np.inf))
            if not np.all(np.abs(fit.fun) < MAX_RESIDUAL):
                return None
            x = fit.x
    if not np.all(np.isfinite(x)):
        return None
    point = np.array(unpack(x))
    offset, lam, read_var = point
    if lam > EXACT_POISSON_MAX:
        return None
    # at the floor the read noise is taken as known: the error of the
    # level from the estimator's two equations and the other two unknowns
    free = 2 if read_var <= least * (1.0 + 1e-6) else 3
    psi, cov = _equations(model(*point), stats, third=True)
    jac = np.empty((3, 3))
    for j, step in enumerate((1e-4 * std, 1e-4 * lam, 1e-4 * var_e)):
        up, down = point.copy(), point.copy()
        up[j] += step
        if j < 2 or read_var - step >= least:  # else one-sided
            down[j] -= step
        jac[:, j] = (_equations(model(*up), stats, third=True)[0]
                     - _equations(model(*down), stats, third=True)[0]) / (
                         up[j] - down[j])
    try:
        inv = np.linalg.inv(jac[:free, :free])
    except np.linalg.LinAlgError:
        return None
    grad = np.array([1.0, 1.0 / gain, 0.0])[:free] @ inv
    var_level = float(grad @ cov[:free, :free] @ grad) / stats['n']
    read = math.sqrt(max(read_var, least))
    if _implausible(model(*point), stats, offset + lam / gain,
                    math.sqrt(max(var_level, 0.0)), first_guess, std,
                    MAX_PEDESTAL_ERROR):
        return None
    return {'level': offset + lam / gain,
            'std': math.sqrt(lam + read * read) / gain,
            'error_on_mean': math.sqrt(var_level), 'lam': lam,
            'read_noise': read, 'offset': offset}
