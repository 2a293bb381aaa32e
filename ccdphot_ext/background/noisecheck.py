# Licensed under a 3-clause BSD style license - see LICENSE
"""
The cheap correlated-noise check `~ccdphot_ext.measure` and
`~ccdphot_ext.photometer` run when the ``sky`` term comes from the pixel
scatter or from the frame's uncertainty (no ``noise=``): `pixel_correlation`
compares differences of neighbouring pixels with those of pixels two apart,
on blocks spread over the frame with their sources masked, and
`warn_if_correlated` warns when the correlation is significant.
"""

import math
import threading
import warnings

import numpy as np
from astropy.stats import mad_std
from astropy.utils.exceptions import AstropyUserWarning

from ..utils.digest import array_digest
from ..utils.stats import MAD_TO_STD, MEDIAN_EFFICIENCY
from .estimators import median

__all__ = []  # internal module: the check behind the warning

#: Lag-1 correlation of neighbouring pixels above which `pixel_correlation`
#: warns (a 10 x 10 box's variance about 20% above ``n_pix * sigma**2``).
CORRELATION_WARN = 0.05
#: Side of the square blocks `pixel_correlation` samples, and the most
#: blocks it takes along each axis (spread evenly over the frame).
_BLOCK = 48
_MAX_BLOCKS = 5
#: A block's correlation counts when it rests on this many pixel pairs.
_MIN_PAIRS = 200
#: The error of a median of ``m`` values over that of one value, times
#: ``sqrt(m)``: ``sqrt(pi / 2)`` (Gaussian values).
_MEDIAN_ERROR = MEDIAN_EFFICIENCY

def pixel_correlation(data, *, mask=None):
    """
    Correlation of neighbouring pixels' noise: ``1 - var(d1) / var(d2)``,
    with ``d1`` and ``d2`` the differences of pixels one and two apart (x
    and y together). 0 for white noise, ``(rho1 - rho2) / (1 - rho2)`` for
    correlations ``rho1``, ``rho2`` at lags 1 and 2 (0.5 for a 3 x 3
    boxcar-smoothed frame).

    Measured in up to 5 x 5 blocks of 48 x 48 pixels spread over the frame,
    each with its own median level (gradients), its sources masked (its
    3 x 3 mean beyond 3 sigma, grown by 3 pixels: a star's smooth profile
    would look like correlated noise) and each direction's differences
    centred on their median; the variances are clipped at 4 sigma (not
    MAD-based, so integer frames are not quantised). The result is the
    median over the blocks, so a cluster or a galaxy filling some blocks
    does not decide it. A few milliseconds per call.

    Parameters
    ----------
    data : 2-D array_like
        The frame.
    mask : 2-D array_like of bool, optional
        True for pixels to leave out.

    Returns
    -------
    corr, err : float
        The correlation and its approximate statistical error (NaN, NaN
        when it cannot be computed).
    """
    sample = _sample_blocks(np.asarray(data), mask)
    if sample is None:
        return math.nan, math.nan
    # the result depends on the sampled pixels only: repeated calls on one
    # frame (measure in a loop) cost a hash of them (as read, with the
    # mask's), not a new estimate
    raw, bad = sample
    key = array_digest(raw, bad)
    with _CACHE_LOCK:
        cached = _CORRELATION_CACHE.get(key)
    if cached is None:
        cached = _block_correlation(_as_stack(raw, bad))
        with _CACHE_LOCK:  # threads of a batch share the cache
            while len(_CORRELATION_CACHE) >= 8:
                _CORRELATION_CACHE.pop(next(iter(_CORRELATION_CACHE)))
            _CORRELATION_CACHE[key] = cached
    return cached


#: Recent `pixel_correlation` results by a digest of the sampled pixels.
_CORRELATION_CACHE = {}
_CACHE_LOCK = threading.Lock()


#: Blocks handled at a time (each block's statistics are its own): the
#: filters' temporaries stay a fraction of a megabyte.
_CHUNK = 5


def _by_chunks(func, stack, **kwargs):
    """
    A function of a stack of blocks, a few blocks at a time, the results
    joined: the same numbers, less memory.

    Parameters
    ----------
    func : callable
        Takes a stack (blocks along the first axis) and ``kwargs``; returns
        an array or a tuple of arrays, per block along their first axis.
    stack : `~numpy.ndarray`
        The blocks.
    **kwargs
        Passed to ``func``.

    Returns
    -------
    result : `~numpy.ndarray` or tuple of `~numpy.ndarray`
        As ``func`` of the whole stack.
    """
    parts = [func(stack[i:i + _CHUNK], **kwargs)
             for i in range(0, stack.shape[0], _CHUNK)]
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))
    return np.concatenate(parts)


def _block_correlation(stack):
    """
    `pixel_correlation` of the sampled blocks.

    Parameters
    ----------
    stack : `~numpy.ndarray`
        The blocks, ``(k, by, bx)``, NaN where not usable (`_as_stack`).

    Returns
    -------
    correlation, error : float
        As `pixel_correlation` returns them.
    """
    resid = _by_chunks(_mask_block_sources, stack)
    v1, n1 = _by_chunks(_diff_variance, resid, lag=1)
    v2, _ = _by_chunks(_diff_variance, resid, lag=2)
    with np.errstate(invalid='ignore', divide='ignore'):
        corr = 1.0 - v1 / v2
    ok = np.isfinite(corr) & (n1 >= _MIN_PAIRS)
    if not ok.any():
        return math.nan, math.nan
    corr, n1 = corr[ok], n1[ok]
    # the variance ratio of one block: relative error ~ 2 / sqrt(n);
    # the median of m blocks: _MEDIAN_ERROR / sqrt(m) of that
    err = (_MEDIAN_ERROR * 2.0 / math.sqrt(np.median(n1))
           / math.sqrt(corr.size))
    if corr.size >= 4:
        err = max(err, _MEDIAN_ERROR * float(mad_std(corr))
                  / math.sqrt(corr.size))
    return float(np.median(corr)), float(err)


def _sample_blocks(data, mask):
    """
    Up to 5 x 5 square blocks (48 pixels, or the frame if smaller) spread
    evenly over the frame.

    Parameters
    ----------
    data : 2-D `~numpy.ndarray`
        The frame.
    mask : 2-D array_like of bool or None
        Its bad pixels.

    Returns
    -------
    blocks : tuple or None
        The data's blocks as read (``(k, by, bx)`` in the frame's type)
        and the mask's (None without one); None for a frame under 8
        pixels a side.
    """
    ny, nx = data.shape
    by, bx = min(_BLOCK, ny), min(_BLOCK, nx)
    if by < 8 or bx < 8:
        return None
    ky = min(_MAX_BLOCKS, max(ny // by, 1))
    kx = min(_MAX_BLOCKS, max(nx // bx, 1))
    y0 = np.linspace(0, ny - by, ky).astype(int)
    x0 = np.linspace(0, nx - bx, kx).astype(int)

    def blocks(arr):  # slices, row by row of blocks
        return np.stack([arr[y:y + by, x:x + bx] for y in y0 for x in x0])

    return (blocks(data),
            None if mask is None else blocks(np.asarray(mask, dtype=bool)))


def _as_stack(raw, bad):
    """
    The sampled blocks as floats, NaN where masked or not finite.

    Parameters
    ----------
    raw : `~numpy.ndarray`
        The blocks as read.
    bad : `~numpy.ndarray` of bool or None
        The masked pixels (the shape of ``raw``).

    Returns
    -------
    stack : `~numpy.ndarray`
        float64.
    """
    stack = raw.astype(float)
    if bad is not None:
        stack[bad] = np.nan
    stack[~np.isfinite(stack)] = np.nan
    return stack


def _mask_block_sources(stack, *, two_sided=True):
    """Each block minus its median, NaN on its sources (3 x 3 mean beyond
    3 of its own sigma, grown by 3 pixels) and on single pixels beyond 5
    sigma. With ``two_sided`` False only sources above the level are
    masked, from a 3 x 3 mean beyond 4 sigma: noise's own coherent
    patches, which a two-sided 3-sigma mask also takes, kept (they are
    what `mean_variance_factor` measures).

    Parameters
    ----------
    stack : `~numpy.ndarray`
        The blocks, ``(k, by, bx)`` (NaN: not usable).
    two_sided : bool, optional
        Mask sources below the level too (default True).

    Returns
    -------
    resid : `~numpy.ndarray`
        The blocks less their medians, NaN on the sources.
    """
    from scipy.ndimage import maximum_filter, uniform_filter

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN blocks
        resid = stack - _nan_median(stack)
        good = np.isfinite(resid)
        filled = np.where(good, resid, 0.0)
        mean3 = (uniform_filter(filled, size=(1, 3, 3), mode='constant')
                 / np.maximum(uniform_filter(good.astype(float),
                                             size=(1, 3, 3),
                                             mode='constant'), 1e-12))
        mean3[~good] = np.nan
        s3 = _nan_robust_std(mean3)
        s1 = _nan_robust_std(resid)
        if two_sided:
            src = (np.abs(mean3) > 3.0 * s3) | (np.abs(resid) > 5.0 * s1)
        else:
            src = (mean3 > 4.0 * s3) | (resid > 5.0 * s1)
    src = maximum_filter(src, size=(1, 7, 7))
    resid[src] = np.nan
    return resid


def _nan_median(stack):
    """
    Median of each block (first axis) ignoring NaN, shaped to broadcast.

    NaNs are replaced by -inf and +inf in turn, which leaves the middle of
    each sorted block among its finite values (exactly its median for an
    even count of NaN, one order statistic off for an odd one): one
    vectorised `numpy.median` instead of one call per block.

    Parameters
    ----------
    stack : `~numpy.ndarray`
        The blocks along the first axis.

    Returns
    -------
    median : `~numpy.ndarray`
        Per block (NaN for one without a finite value), shaped
        ``(k, 1, ...)``.
    """
    flat = stack.reshape(stack.shape[0], -1)
    bad = np.isnan(flat)
    if bad.any():
        turn = np.cumsum(bad, axis=1) % 2 == 0
        flat = np.where(bad, np.where(turn, np.inf, -np.inf), flat)
    med = median(flat, axis=-1)
    med[np.all(bad, axis=1) | ~np.isfinite(med)] = np.nan
    return med.reshape((-1,) + (1,) * (stack.ndim - 1))


def _nan_robust_std(stack):
    """
    `~astropy.stats.mad_std` of each block (NaN ignored), with the
    vectorised `_nan_median`.

    Parameters
    ----------
    stack : `~numpy.ndarray`
        As in `_nan_median`.

    Returns
    -------
    std : `~numpy.ndarray`
        Per block, shaped to broadcast against ``stack``.
    """
    return MAD_TO_STD * _nan_median(np.abs(stack - _nan_median(stack)))


def _diff_variance(resid, lag):
    """
    Per block, the 4-sigma clipped variance of the differences of pixels
    ``lag`` apart (along x and y, each direction centred on its median).

    Parameters
    ----------
    resid : `~numpy.ndarray`
        The blocks, ``(k, by, bx)`` (NaN: left out).
    lag : int
        The pixels' distance.

    Returns
    -------
    var : `~numpy.ndarray`
        Per block.
    n : `~numpy.ndarray` of int
        The differences kept, per block.
    """
    k = resid.shape[0]
    lo = 1 if lag == 1 else 0  # the same pixels start both lags
    dx = (resid[:, :, lo + lag:lo + resid.shape[2] - 2 + lag]
          - resid[:, :, lo:lo + resid.shape[2] - 2]).reshape(k, -1)
    dy = (resid[:, lo + lag:lo + resid.shape[1] - 2 + lag]
          - resid[:, lo:lo + resid.shape[1] - 2]).reshape(k, -1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        d = np.concatenate([dx - _nan_median(dx), dy - _nan_median(dy)],
                           axis=1)
        sig = _nan_robust_std(d)
        d = np.where(np.abs(d) < 4.0 * sig, d, np.nan)
        n = np.sum(np.isfinite(d), axis=1)
        var = np.nanmean(d * d, axis=1)
    return var, n


#: `is_correlated` wants a correlation this many times its error.
CORRELATION_NSIGMA = 5


def is_correlated(corr, err):
    """
    Whether neighbouring pixels' noise is significantly correlated.

    Parameters
    ----------
    corr, err : float
        A `pixel_correlation` and its error.

    Returns
    -------
    correlated : bool
        True above `CORRELATION_WARN` and `CORRELATION_NSIGMA` times the
        error.
    """
    return bool(corr > CORRELATION_WARN and corr > CORRELATION_NSIGMA * err)


#: The largest lag (pixels, along each axis) `mean_variance_factor` sums
#: the autocorrelation to.
FACTOR_MAX_LAG = 5
#: The least ``1 - n_lags / n`` (``n`` the usable pixels per block,
#: ``n_lags`` the lags summed) for which `mean_variance_factor` corrects the
#: blocks' means: below it the correction more than quadruples the
#: measured sum, which is then not measurable.
FACTOR_MIN_CORRECTION = 0.25
#: Fewest usable pixel pairs at a lag for `mean_variance_factor`.
FACTOR_MIN_PAIRS = 100


def mean_variance_factor(data, *, mask=None, median=False):
    """
    How much more the mean of a large area of sky scatters than white
    noise of the same pixel variance would: the sum of the noise's
    autocorrelation over the lags up to `FACTOR_MAX_LAG` pixels along each
    axis (``sum(rho)``: 1 for white noise; for a frame resampled with
    weights ``w`` that sum to 1, ``1 / sum(w**2)``; 9 for a 3 x 3
    boxcar-smoothed frame), so that the error of a level from ``n``
    pixels is ``sqrt(factor) * sigma / sqrt(n)``.

    Measured on the blocks of `pixel_correlation` (their sources above
    the level masked, each less the mean of its usable pixels), its
    autocovariances pooled over the blocks and corrected for each block's
    own mean having been taken away (which lowers every lag's covariance
    by ``factor * sigma**2 / n_block``).

    Parameters
    ----------
    data : 2-D array_like
        The frame.
    mask : 2-D bool array, optional
        True for pixels to leave out.
    median : bool, optional
        The factor of a median instead of a mean (default False): a
        median scatters with the signs of the deviations, whose
        correlation is ``(2 / pi) arcsin(rho)``, less than ``rho``.

    Returns
    -------
    factor, err : float
        The factor (at least 1) and its approximate statistical error;
        NaN, NaN where it cannot be measured: too few usable pixel pairs
        (`FACTOR_MIN_PAIRS`)
        at a lag, or too few usable pixels per block for the blocks'
        means to be corrected for (`FACTOR_MIN_CORRECTION`: a crowded
        frame whose source mask leaves a few pixels between the stars,
        whose wings would read as correlated noise).
    """
    sample = _sample_blocks(np.asarray(data), mask)
    if sample is None:
        return math.nan, math.nan
    resid = _by_chunks(_mask_block_sources, _as_stack(*sample),
                       two_sided=False)
    good = np.isfinite(resid)
    # each block about the mean of its usable pixels (whose effect on the
    # covariances is corrected below)
    n_good = np.maximum(np.sum(good, axis=(1, 2), keepdims=True), 1)
    filled = np.where(good, resid, 0.0)
    filled = np.where(good, filled - filled.sum(axis=(1, 2), keepdims=True)
                      / n_good, 0.0)
    k, by, bx = resid.shape
    lag = FACTOR_MAX_LAG
    if by <= 2 * lag or bx <= 2 * lag:
        return math.nan, math.nan
    covs, weights = [], []  # each lag's covariance, counted once or twice
    for dy in range(0, lag + 1):
        for dx in range(-lag, lag + 1):
            if dy == 0 and dx < 0:
                continue  # the other half-plane: the same covariance
            a = (slice(None), slice(0, by - dy),
                 slice(max(0, -dx), bx - max(0, dx)))
            b = (slice(None), slice(dy, by),
                 slice(max(0, dx), bx - max(0, -dx)))
            pairs = np.count_nonzero(good[a] & good[b])
            if pairs < FACTOR_MIN_PAIRS:
                return math.nan, math.nan
            covs.append(float(np.sum(filled[a] * filled[b])) / pairs)
            weights.append(1.0 if dy == 0 and dx == 0 else 2.0)
    covs, weights = np.array(covs), np.array(weights)
    c0, n_lags = covs[0], int(weights.sum())
    if not c0 > 0:
        return math.nan, math.nan
    measured = float(np.sum(weights * covs)) / c0
    # each block's mean taken away: every covariance less about
    # factor * c0 / n (n the block's usable pixels), c0 itself too
    n = np.count_nonzero(good) / k
    if 1.0 - n_lags / n < FACTOR_MIN_CORRECTION:
        return math.nan, math.nan
    factor = measured / max(1.0 - n_lags / n + measured / n, 1e-3)
    # each lag's correlation has an error of about 1 / sqrt(pixels)
    err = math.sqrt(n_lags / np.count_nonzero(good)) * max(factor, 1.0)
    if median:  # the correlations of the signs: (2 / pi) arcsin(rho)
        rho = np.clip((covs + factor * c0 / n) / (c0 * (1.0 + factor / n)),
                      -1.0, 1.0)
        rho[0] = 1.0
        factor = float(np.sum(weights * 2.0 / math.pi * np.arcsin(rho)))
    return max(float(factor), 1.0), float(err)


#: What the correlated-noise warning tells a caller that takes ``noise=``.
CURE_NOISE_ARGUMENT = ('Measure it on blank sky with '
                       'ApertureNoise.from_blank_apertures and pass noise=')


def warn_if_correlated(frame, *, cure=CURE_NOISE_ARGUMENT):
    """
    Warn (`~astropy.utils.exceptions.AstropyUserWarning`) when neighbouring
    pixels' noise is significantly correlated (`is_correlated`), so that
    ``n_pix * sigma**2`` underestimates aperture noise; returns the
    correlation.

    A frame with an uncertainty (a map or variance arrays) is checked too:
    per-pixel variances hold no covariance, so their sum over an aperture
    underestimates its noise just as ``n_pix * sigma**2`` does (a
    resampled or drizzled mosaic), and the warning says so.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame to be measured.
    cure : str, optional
        The warning's last sentence, what to do: by default pass
        ``noise=`` (`~ccdphot_ext.measure` and `~ccdphot_ext.photometer`
        take it); a route that takes no noise model says where to go
        instead.
    """
    corr, err = pixel_correlation(frame.data, mask=frame.mask)
    if is_correlated(corr, err):
        if frame.uncertainty is None:
            what = 'n_pix * sky_std**2 underestimates'
        else:
            what = ('the uncertainty\'s per-pixel variances leave out the '
                    'covariance (resampling gives it), so their sum '
                    'underestimates')
        warnings.warn(
            f'pixel noise is correlated (neighbouring pixels: {corr:.2f}); '
            f'{what} the noise of aperture sums. {cure}',
            AstropyUserWarning, stacklevel=3)
    return corr
