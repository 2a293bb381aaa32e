# Licensed under a 3-clause BSD style license - see LICENSE
"""
Correlated noise on the annulus route without a noise model (internal).

Where neighbouring pixels' noise correlates (a resampled mosaic, a
smoothed or scanned frame, a radio map's beam), the error of a flux less
its annulus level is not the white-noise sum of its two terms, the
aperture's ``n_pix * sky_std**2`` and the level's ``n_pix**2 *
error_on_mean**2``: the aperture's own pixels add up coherently (more
than white), and the annulus shares the aperture's slow noise and takes
it away with its level (less). Which wins depends on the correlation at
the lags the aperture and its annulus span: on a radio map (a beam of a
few pixels) the blank sums scatter 2 times their white error, on a
scanned plate (noise correlated over tens of pixels) half of it.

`annulus_correlation_term` measures it on the frame itself, for each
aperture shape with its annulus: at every blank position (the sources
masked), the aperture's sum less its annulus mean (FFT convolutions over
the frame); their robust variance over the median of their white-noise
variances (from the pixels' own scatter in each annulus) is the factor
(`pull_factor`) the row's white variance is multiplied by. The budget
gets the difference as a signed term (``sky_correlation``), so that the
other terms keep their meaning.
"""

import copy
import math
import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

__all__ = []  # internal module

#: The budget term that carries the correlation of the noise in an
#: aperture and its annulus (signed).
SKY_CORRELATION_TERM = 'sky_correlation'

#: Blank positions (each aperture clear of sources, its annulus at least
#: half clear) needed to measure a `pull_factor`; with fewer the frame's
#: rows keep their white errors and a warning says so.
MIN_POSITIONS = 200

#: The largest side of the frame's region the factor is measured on (the
#: frame's centre beyond it): enough blank positions on any frame, and a
#: bounded cost.
MAX_SIDE = 1024

#: Pixels more than this many robust standard deviations above the
#: frame's median are sources, grown by `SOURCE_GROW` pixels.
SOURCE_NSIGMA = 4.0
SOURCE_GROW = 3


def blank_pixels(data, mask=None):
    """
    The frame's region the factor is measured on (its centre, at most
    `MAX_SIDE` pixels a side) and its pixels that are not blank sky:
    non-finite, masked, or of a source (above `SOURCE_NSIGMA` robust
    standard deviations, grown by `SOURCE_GROW` pixels).

    Parameters
    ----------
    data : 2-D `~numpy.ndarray`
        The frame.
    mask : 2-D bool `~numpy.ndarray`, optional
        True for pixels to leave out.

    Returns
    -------
    region, bad : 2-D `~numpy.ndarray`
        The region's pixels (float) and True where they are not blank.
    """
    from astropy.stats import mad_std
    from scipy import ndimage

    data = np.asarray(data, dtype=float)
    cut = tuple(slice(max(0, (n - MAX_SIDE) // 2),
                      max(0, (n - MAX_SIDE) // 2) + min(n, MAX_SIDE))
                for n in data.shape)
    region = data[cut]
    bad = ~np.isfinite(region)
    if mask is not None:
        bad |= np.asarray(mask, dtype=bool)[cut]
    if bad.all():
        return region, bad
    level = float(np.median(region[~bad]))
    spread = float(mad_std(region[~bad]))
    with np.errstate(invalid='ignore'):
        source = np.where(bad, False, region - level > SOURCE_NSIGMA * spread)
    bad |= ndimage.binary_dilation(source, iterations=SOURCE_GROW)
    return region, bad


def _shape_weights(aperture, size, method):
    """The weights of one position of ``aperture`` centred on a square of
    ``size`` pixels (odd)."""
    one = copy.deepcopy(aperture if aperture.isscalar else aperture[0])
    centre = (size - 1) / 2.0
    one.positions = np.array([centre, centre])
    return one.to_mask(method=method).to_image((size, size))


def _robust_std(values):
    """The normalized MAD of the finite ``values``."""
    from astropy.stats import mad_std

    values = values[np.isfinite(values)]
    return float(mad_std(values)) if values.size else math.nan


def pull_factor(region, bad, aperture, annulus):
    """
    How much more (or less) the blank sums of ``aperture`` less its
    ``annulus`` mean scatter than their white-noise error says, as a
    factor on that variance.

    At every position of ``region`` where the aperture holds no pixel of
    ``bad`` and the annulus keeps at least half of its pixels: the
    aperture's sum less its pixels' count times the annulus' mean; the
    factor is their robust variance over the median of their white-noise
    variances ``sum(w**2) * s**2 + n**2 * s**2 / m`` (``w`` the aperture's
    weights, ``n`` their sum, ``s`` the standard deviation of the
    annulus' ``m`` blank pixels).

    Parameters
    ----------
    region : 2-D `~numpy.ndarray`
        The frame (`blank_pixels`).
    bad : 2-D bool `~numpy.ndarray`
        Its pixels that are not blank sky.
    aperture, annulus : photutils apertures
        The aperture's shape and its annulus' (their positions ignored).

    Returns
    -------
    factor : float
        NaN with fewer than `MIN_POSITIONS` such positions.
    n_positions : int
        The positions used.
    """
    ring = _shape_weights(annulus, _kernel_size(annulus, aperture), 'center')
    ap = _shape_weights(aperture, ring.shape[0], 'exact')
    good = (~bad).astype(float)
    resid = np.where(bad, 0.0, region - np.median(region[~bad]))

    from scipy.signal import fftconvolve

    def conv(image, kernel):
        return fftconvolve(image, kernel[::-1, ::-1], mode='same')

    support = (ap > 0).astype(float)
    clear = conv(good, support) > support.sum() - 0.5
    n_ring = conv(good, ring)
    clear &= n_ring >= 0.5 * ring.sum()
    half = ring.shape[0] // 2
    clear[:half], clear[-half:] = False, False
    clear[:, :half], clear[:, -half:] = False, False
    n_used = int(np.count_nonzero(clear))
    if n_used < MIN_POSITIONS:
        return math.nan, n_used
    m = n_ring[clear]
    mean = conv(resid, ring)[clear] / m
    var = np.fmax(conv(resid * resid, ring)[clear] / m - mean * mean, 0.0)
    n, n_noise = float(ap.sum()), float(np.sum(ap * ap))
    sums = conv(resid, ap)[clear] - n * mean
    white = float(np.median(n_noise * var + n * n * var / m))
    if not white > 0:
        return math.nan, n_used
    return _robust_std(sums) ** 2 / white, n_used


def _kernel_size(annulus, aperture):
    """An odd square side holding ``annulus`` and ``aperture`` about one
    centre."""
    half = 0.0
    for ap in (annulus, aperture):
        box = ap.bbox if ap.isscalar else ap.bbox[0]
        x, y = (ap.positions if ap.isscalar else ap.positions[0])
        half = max(half, abs(box.ixmin - x), abs(box.ixmax - x),
                   abs(box.iymin - y), abs(box.iymax - y))
    return 2 * int(math.ceil(half)) + 3


def annulus_correlation_term(sky, data, mask, groups, n_pix, noise_pix,
                             sky_std, sky_error_on_mean):
    """
    The ``sky_correlation`` term of the rows of an annulus sky measured
    on a frame with correlated noise, without a noise model: each row's
    white-noise variance of its sky (``noise_pix * sky_std**2``) and
    level (``n_pix**2 * error_on_mean**2``, the level's error taken back
    to white noise) times the `pull_factor` of its aperture's shape and
    annulus, less the two terms as the budget has them (signed).

    Parameters
    ----------
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted (an annulus per row,
        `~ccdphot_ext.SkyEstimate.from_annulus`).
    data : 2-D `~numpy.ndarray`
        The frame photometered.
    mask : 2-D bool `~numpy.ndarray` or None
        Its masked pixels.
    groups : list of (aperture, int)
        The apertures and their positions' counts, in the rows' order.
    n_pix, noise_pix, sky_std, sky_error_on_mean : `~numpy.ndarray`
        Per row (``noise_pix`` None: ``n_pix``).

    Returns
    -------
    variance : `~numpy.ndarray` or None
        Per row, in the data unit squared; None where the sky is not an
        annulus sky of a frame whose noise correlates
        (``meta['noise_correlation_factor']``).
    """
    factor = sky.meta.get('noise_correlation_factor')
    annulus = sky.meta.get('annulus_aperture')
    if factor is None or annulus is None or sky.isscalar or sky.is_map:
        return None
    region, bad = blank_pixels(data, mask)
    rho = np.concatenate([
        np.full(count, pull_factor(region, bad, ap, annulus)[0])
        for ap, count in groups])
    n_pix = np.asarray(n_pix, dtype=float)
    noise_pix = n_pix if noise_pix is None else np.asarray(noise_pix, float)
    sky_var = noise_pix * np.asarray(sky_std, dtype=float) ** 2
    level_var = (n_pix * np.asarray(sky_error_on_mean, dtype=float)) ** 2
    if not np.isfinite(rho).all():
        _warn_unmeasured(int(np.count_nonzero(~np.isfinite(rho))),
                         rho.size)
    white = sky_var + level_var / factor
    with np.errstate(invalid='ignore'):
        term = rho * white - sky_var - level_var
    return np.where(np.isfinite(term), term, 0.0)


def _warn_unmeasured(n_bad, n):
    """Warn that the correlated noise of ``n_bad`` of ``n`` rows could not
    be measured (too few blank positions)."""
    warnings.warn(
        f'{n_bad} of {n} rows keep white-noise error bars on a frame whose '
        'noise correlates: too few blank positions (fewer than '
        f'{MIN_POSITIONS}) to measure how the correlation changes their '
        'sky and level terms; their errors may be wrong by a large factor. '
        'Use noise=ApertureNoise.from_blank_apertures(...)',
        AstropyUserWarning, stacklevel=4)

