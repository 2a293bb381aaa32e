# Licensed under a 3-clause BSD style license - see LICENSE
"""
Empirical aperture noise from blank-sky apertures (correlated noise).

``n_pix * sigma**2`` is the variance of a sum of ``n_pix`` pixels only if
the pixels' noise is independent. Resampled, stacked, drizzled, smoothed or
scanned frames (and, mildly, many raw CCD frames) have pixel-to-pixel
correlated noise, and the variance of an aperture sum then grows faster
than ``n_pix``. `ApertureNoise.from_blank_apertures` measures it the way
deep-field photometry does ("empty" or "random" apertures): many square
apertures of several sizes are placed at random on source-free sky, the
robust scatter of their sky-subtracted sums is measured at each size, and

    ``sigma(N) = sigma_1 * alpha * N**beta``

is fitted (``sigma_1`` the per-pixel scatter; white noise has
``alpha = 1, beta = 0.5``). Calling the model gives ``sigma(N)``: for noise
found correlated, a smooth (quadratic in log-log) curve through the
measured points, which follows the flattening of the ratio to white noise
at large ``N`` that a single power law cannot (the power law stays as the
summary); beyond the largest aperture it continues with the local slope
(0.5 to 1). Noise not significantly correlated gets exactly the white
``sigma_1 * sqrt(N)``, so that an empirical model never inflates the
errors of a white-noise frame. `~ccdphot_ext.measure` and
`~ccdphot_ext.photometer` take it as ``noise=``: the budget's ``sky`` term
is then ``sigma(n_pix)**2`` and its notes say so.

``background.noisecheck.pixel_correlation`` is the cheap check
`~ccdphot_ext.measure` and `~ccdphot_ext.photometer` run when the ``sky``
term comes from the pixel scatter: a significant correlation of
neighbouring pixels is warned about.
"""

import math
import warnings

import astropy.units as u
import numpy as np

from ..utils.inputs import as_frame, positive_scalar
from .noisecheck import warn_if_correlated

__all__ = ['ApertureNoise']

#: Default square aperture sides [pixels] of `ApertureNoise.from_blank_apertures`.
DEFAULT_SIZES = (1, 2, 3, 4, 5, 7, 9, 11, 15, 21)
#: Default number of apertures per size.
DEFAULT_N_APERTURES = 1000
#: Fewest apertures of one size whose scatter is used.
MIN_APERTURES = 20
#: Relative error of a ``1.4826 * MAD`` standard deviation from n values is
#: ``MAD_SPREAD / sqrt(n)``.
MAD_SPREAD = 0.8236


class ApertureNoise:
    """
    Noise of an aperture sum against its pixel count, measured on blank sky.

    Use `from_blank_apertures`; calling the object gives ``sigma(n_pix)``.

    Parameters
    ----------
    sigma1, alpha, beta : float
        The fit ``sigma(N) = sigma1 * alpha * N**beta``.
    n_pix, sigma, sigma_err : 1-D arrays
        The measured points: pixels per aperture, robust scatter of the
        sums and its statistical error.
    n_apertures : 1-D int array
        Apertures placed at each size.
    n_independent : 1-D array, optional
        How many of them count as independent (overlapping apertures are
        not): at most as many as fit side by side in the blank sky.
        Default ``n_apertures``. The significance of `correlated` uses it.
    meta : dict, optional
        Provenance.

    Attributes
    ----------
    correlated : bool
        True when the largest apertures' scatter is significantly (3 sigma
        and 10%) above the white-noise ``sigma1 * sqrt(N)``.
    """

    def __init__(self, sigma1, alpha, beta, *, n_pix, sigma, sigma_err,
                 n_apertures, n_independent=None, meta=None):
        self.sigma1 = positive_scalar(sigma1, 'sigma1', allow_none=False)
        self.alpha = positive_scalar(alpha, 'alpha', allow_none=False)
        self.beta = float(beta)
        self.n_pix = np.asarray(n_pix, dtype=float)
        self.sigma = np.asarray(sigma, dtype=float)
        self.sigma_err = np.asarray(sigma_err, dtype=float)
        self.n_apertures = np.asarray(n_apertures, dtype=int)
        self.n_independent = np.asarray(
            self.n_apertures if n_independent is None else n_independent,
            dtype=float)
        self.meta = dict(meta or {})

    @classmethod
    def from_blank_apertures(cls, data, sky, *, mask=None, sizes=None,
                             n_apertures=None, seed=None):
        """
        Measure ``sigma(N)`` from random square apertures on blank sky.

        Parameters
        ----------
        data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
            The frame (its mask and NaN/inf pixels are avoided).
        sky : `~ccdphot_ext.SkyEstimate`
            One level or a 2-D map (subtracted), and ``std`` (``sigma1``).
        mask : array_like of bool, optional
            True for pixels holding sources or otherwise unusable. Default:
            photutils segmentation of the sky-subtracted frame (pixels 4
            sigma above the sky in groups of 5, grown by 5 pixels).
        sizes : sequence of int, optional
            Square aperture sides in pixels (default `DEFAULT_SIZES`, those
            that fit in the frame).
        n_apertures : int, optional
            Apertures per size (default 1000, at least 20; fewer where the
            blank sky has no room). Overlapping apertures are not
            independent: the error of each size's scatter counts at most as
            many apertures as fit side by side in the blank sky.
        seed : int or `numpy.random.Generator`, optional
            Seed of the random positions (deterministic when given).

        Returns
        -------
        noise : `ApertureNoise`

        Examples
        --------
        >>> import numpy as np
        >>> from ccdphot_ext import ApertureNoise, SkyEstimate
        >>> img = np.random.default_rng(0).normal(100.0, 5.0, (300, 300))
        >>> sky = SkyEstimate(100.0, 5.0, img.size)
        >>> noise = ApertureNoise.from_blank_apertures(img, sky, seed=1)
        >>> noise.correlated, abs(noise.beta - 0.5) < 0.05
        (False, True)
        >>> print(f'{noise(225) / (5.0 * 15):.2f}')  # white: sqrt(N) sigma
        1.00
        """
        from .sky import SkyEstimate

        if not isinstance(sky, SkyEstimate):
            raise TypeError('sky must be a SkyEstimate, got '
                            f'{type(sky).__name__}')
        frame = as_frame(data, mask=mask)
        sizes = _check_sizes(sizes, frame.shape)
        n_ap = _check_n_apertures(n_apertures)
        rng = _check_seed(seed)
        resid, sigma1, bad = _blank_residual(frame, sky, mask)
        points = [_blank_sums(resid, bad, side, n_ap, rng) for side in sizes]
        n_pix, sig, sig_err, counts, n_eff = _size_scatter(sizes, points, bad)
        alpha, beta = _fit(n_pix, sig, sig_err, sigma1)
        meta = {'method': 'blank apertures',
                'sizes': [round(math.sqrt(n)) for n in n_pix],
                'mask': 'given' if mask is not None else 'segmentation',
                'sky_method': sky.method, 'seed': seed}
        return cls(sigma1, alpha, beta, n_pix=n_pix, sigma=sig,
                   sigma_err=sig_err, n_apertures=counts,
                   n_independent=n_eff, meta=meta)

    def __call__(self, n_pix):
        """``sigma(n_pix)`` of a sum of ``n_pix`` pixels (0 for 0): white
        ``sigma1 * sqrt(n_pix)`` unless the noise is `correlated`, else the
        smooth curve through the measured points."""
        n = np.maximum(np.asarray(n_pix, dtype=float), 0.0)
        white = self.sigma1 * np.sqrt(n)
        if not self.correlated:
            return float(white) if white.ndim == 0 else white
        out = white * self._ratio(n)
        return float(out) if out.ndim == 0 else out

    def _ratio(self, n):
        """sigma / (sigma1 sqrt(N)) from the quadratic log-log fit."""
        x = np.log(self.n_pix)
        c = np.polyfit(x, np.log(self.sigma / self.white), 2,
                       w=self.sigma / self.sigma_err)
        lo, hi = x[0], x[-1]
        xn = np.log(np.maximum(n, 1e-300))
        inside = np.polyval(c, np.clip(xn, lo, hi))
        slope = np.clip(np.polyval(np.polyder(c), hi), 0.0, 0.5)
        return np.exp(inside + slope * np.maximum(xn - hi, 0.0))

    def variance(self, n_pix):
        """``sigma(n_pix)**2``: the budget's ``sky`` term."""
        return self(n_pix) ** 2

    @property
    def white(self):
        """The white-noise prediction ``sigma1 * sqrt(n_pix)`` at the
        measured points."""
        return self.sigma1 * np.sqrt(self.n_pix)

    @property
    def correlated(self):
        excess = self.sigma[-1] - self.white[-1]
        err = self.sigma_err[-1] * math.sqrt(self.n_apertures[-1]
                                             / self.n_independent[-1])
        return bool(excess > 3 * err
                    and self.sigma[-1] > 1.1 * self.white[-1])

    @property
    def note(self):
        """What the budget says about its ``sky`` term."""
        return (f'sky term from blank-sky apertures: sigma(N) = '
                f'{self.sigma1:.4g} * {self.alpha:.3f} * N**{self.beta:.3f}'
                + (' (correlated noise)' if self.correlated else ''))

    def __repr__(self):
        return (f'<ApertureNoise sigma1={self.sigma1:.4g} '
                f'alpha={self.alpha:.3f} beta={self.beta:.3f} '
                f'correlated={self.correlated}>')

    def _repr_html_(self):
        from ..utils.html import html_table

        rows = [(int(n), int(c), s, e, w, s / w) for n, c, s, e, w in zip(
            self.n_pix, self.n_apertures, self.sigma, self.sigma_err,
            self.white, strict=True)]
        return html_table(
            f'ApertureNoise: sigma(N) = {self.sigma1:.4g} * {self.alpha:.3f}'
            f' * N^{self.beta:.3f}',
            ['N pixels', 'apertures', 'sigma', '+/-', 'white sigma',
             'ratio'], rows,
            notes=['correlated noise' if self.correlated
                   else 'consistent with white noise'])


def _residual(frame, sky):
    if (sky.unit is not None and frame.unit is not None
            and sky.unit != frame.unit):
        raise u.UnitsError(f'sky unit {sky.unit} differs from the data unit '
                           f'{frame.unit}')
    data = frame.data.astype(np.float64, copy=False)
    if sky.is_map:
        if sky.shape != frame.shape:
            raise ValueError(f'sky map shape {sky.shape} does not match the '
                             f'frame shape {frame.shape}')
        return data - np.asarray(sky.value, dtype=float)
    if not sky.isscalar:
        raise ValueError('sky must be one level or a 2-D map (not one '
                         'level per aperture)')
    return data - float(sky.value)


def _source_mask(resid, sigma1, bad):
    """Sources by photutils segmentation (4 sigma: lower, the peaks of
    correlated noise itself would be masked and its scatter underestimated),
    grown by 5 pixels."""
    from photutils.segmentation import detect_sources
    from photutils.utils import NoDetectionsWarning
    from scipy.ndimage import binary_dilation

    clean = np.where(bad, 0.0, resid)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NoDetectionsWarning)
        segm = detect_sources(clean, 4.0 * sigma1, n_pixels=5,
                              mask=bad if bad.any() else None)
    if segm is None:
        return np.zeros(resid.shape, dtype=bool)
    return binary_dilation(segm.data > 0, iterations=5)


def _check_sizes(sizes, shape):
    if sizes is None:
        return [s for s in DEFAULT_SIZES if s <= min(shape) // 4]
    values = [positive_scalar(s, 'sizes', allow_none=False)
              for s in np.atleast_1d(sizes)]
    if any(v != int(v) for v in values):
        raise ValueError(f'sizes must be whole pixel sides, got {values}')
    sizes = sorted({int(v) for v in values})
    if len(sizes) < 2:
        raise ValueError('sizes must hold at least two different sides, '
                         f'got {values}')
    if max(sizes) > min(shape):
        raise ValueError(f'sizes: {max(sizes)} exceeds the frame '
                         f'{shape}')
    return sizes


def _check_n_apertures(n_apertures):
    if n_apertures is None:
        return DEFAULT_N_APERTURES
    n = positive_scalar(n_apertures, 'n_apertures', allow_none=False)
    if n != int(n) or n < MIN_APERTURES:
        raise ValueError(f'n_apertures must be a whole number of at least '
                         f'{MIN_APERTURES} (a scatter needs them), got '
                         f'{n_apertures!r}')
    return int(n)


def _check_seed(seed):
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise TypeError('seed must be None, an int, a sequence of ints or '
                        f'a numpy Generator, got {seed!r}') from None


def _blank_sums(resid, bad, side, n_ap, rng):
    """Sums of up to ``n_ap`` random ``side``-square apertures free of bad
    pixels (summed-area tables; no two identical positions)."""
    ny, nx = resid.shape
    cum_bad = _integral(bad.astype(np.int64))
    cum = _integral(np.where(bad, 0.0, resid))
    n_try = 30 * n_ap
    y0 = rng.integers(0, ny - side + 1, n_try)
    x0 = rng.integers(0, nx - side + 1, n_try)
    key = np.unique(y0 * nx + x0, return_index=True)[1]
    y0, x0 = y0[np.sort(key)], x0[np.sort(key)]
    ok = _box_sum(cum_bad, y0, x0, side) == 0
    y0, x0 = y0[ok][:n_ap], x0[ok][:n_ap]
    return _box_sum(cum, y0, x0, side)


def _integral(a):
    out = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=a.dtype)
    np.cumsum(np.cumsum(a, axis=0), axis=1, out=out[1:, 1:])
    return out


def _box_sum(cum, y0, x0, side):
    y1, x1 = y0 + side, x0 + side
    return cum[y1, x1] - cum[y0, x1] - cum[y1, x0] + cum[y0, x0]


def _robust_std(values):
    return 1.482602218505602 * float(np.median(np.abs(values
                                                      - np.median(values))))


def _fit(n_pix, sigma, sigma_err, sigma1):
    """Weighted least squares of ``log sigma = log(sigma1 alpha) + beta log
    N``; returns ``alpha, beta``."""
    x = np.log(n_pix)
    y = np.log(sigma / sigma1)
    w = (sigma / sigma_err) ** 2
    a = np.vstack([np.ones_like(x), x]).T * np.sqrt(w)[:, None]
    coef = np.linalg.lstsq(a, y * np.sqrt(w), rcond=None)[0]
    return math.exp(coef[0]), float(coef[1])


def check_noise(noise, frame):
    """
    Validate ``noise=`` of `measure`/`photometer`; without it (and without
    an uncertainty map) run the cheap correlated-noise check.
    """
    if noise is None:
        if frame.uncertainty is None:
            warn_if_correlated(frame)
        return
    if not isinstance(noise, ApertureNoise):
        raise TypeError('noise must be an ApertureNoise (from '
                        'ApertureNoise.from_blank_apertures) or None, got '
                        f'{type(noise).__name__}')


def noise_variance(noise, n_pix):
    """``sigma(n_pix)**2`` of an `ApertureNoise`, the same bits for one
    aperture or an array of them."""
    sigma = noise(n_pix)
    return sigma * sigma


def _blank_residual(frame, sky, mask):
    """The sky-subtracted frame, ``sigma1`` and the pixels apertures must
    avoid (bad, masked, and without ``mask`` the detected sources)."""
    resid = _residual(frame, sky)
    sigma1 = float(np.nanmedian(np.atleast_1d(sky.std)))
    if not sigma1 > 0:
        raise ValueError('sky.std must be positive to scale the noise')
    bad = ~np.isfinite(resid)
    if frame.mask is not None:
        bad |= frame.mask
    if bad.all():
        raise ValueError('data has no finite, unmasked pixel: no blank '
                         'sky to place apertures on')
    if mask is None:
        bad |= _source_mask(resid, sigma1, bad)
    return resid, sigma1, bad


def _size_scatter(sizes, points, bad):
    """Per aperture size with enough blank apertures: pixels, robust
    scatter of the sums, its error, the count and the independent count."""
    keep = [(side, s) for side, s in zip(sizes, points, strict=True)
            if s.size >= MIN_APERTURES]
    if len(keep) < 2:
        raise ValueError('data: not enough blank sky for apertures of '
                         'two sizes (mask too large or frame too small)')
    n_pix = np.array([side * side for side, _ in keep], dtype=float)
    sig = np.array([_robust_std(s) for _, s in keep])
    if not np.all(sig > 0):
        raise ValueError('data: the blank-sky aperture sums do not '
                         'scatter (a constant frame?), so no aperture '
                         'noise can be measured')
    counts = np.array([s.size for _, s in keep])
    sig_err = sig * MAD_SPREAD / np.sqrt(counts)
    # overlapping apertures are not independent: at most as many as fit
    # side by side in the blank sky count for `correlated`
    n_eff = np.maximum(np.minimum(counts, np.count_nonzero(~bad) / n_pix),
                       1.0)
    return n_pix, sig, sig_err, counts, n_eff
