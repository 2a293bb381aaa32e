# Licensed under a 3-clause BSD style license - see LICENSE
"""
Sky (background) level, its per-pixel scatter, and the error of the level.

Estimators and the factor ``k`` in ``error_on_mean = k * std / sqrt(n_pix)``
(the asymptotic efficiency for Gaussian noise; ``n_pix`` counts the pixels
that entered the estimate):

``'mean'``
    plain mean and standard deviation (``ddof=0``, as the notebook's
    ``.mean()`` and ``.std()``); ``k = 1``.
``'median'``
    median; ``std`` is the plain standard deviation; ``k = sqrt(pi / 2)``
    ≈ 1.2533.
``'sigma_clip'`` (default)
    `astropy.stats.sigma_clip` (``sigma=3``, median centre, 10 iterations),
    then the mean of the kept pixels. The standard deviation of a sample
    clipped at ±c sigma underestimates sigma; ``std`` is corrected by
    ``1 / sqrt(1 - 2 c phi(c) / P)`` with ``P = 2 Phi(c) - 1`` (1.0136 at
    c = 3), and ``k = sqrt(P / (P - 2 c phi(c)))`` (1.0136 at c = 3), the
    variance of a re-centred clipped mean.

When a per-pixel uncertainty map is given, ``error_on_mean`` is instead the
propagated ``sqrt(sum(sigma_i**2)) / n_pix`` of the notebook's Q1, while
``std`` stays the measured scatter.
"""

import math
import warnings

import numpy as np
from astropy.stats import sigma_clip
from astropy.utils.exceptions import AstropyUserWarning
from scipy.special import erf

from ._inputs import as_frame, positive_scalar

__all__ = ['SkyEstimate', 'SKY_METHODS', 'clip_factors']

SKY_METHODS = ('sigma_clip', 'mean', 'median')


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
    >>> from ccdphot_ext.sky import clip_factors
    >>> [round(f, 4) for f in clip_factors(3.0)]
    [1.0136, 1.0136]
    """
    c = float(sigma)
    p = erf(c / math.sqrt(2.0))
    tail = 2.0 * c * math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    return 1.0 / math.sqrt(1.0 - tail / p), math.sqrt(p / (p - tail))


class SkyEstimate:
    """
    A sky level with its per-pixel scatter and its own error.

    Usually made with `from_image` (one level for the frame) or
    `from_annulus` (one level per aperture). Values may be scalars or
    arrays with one entry per aperture.

    Parameters
    ----------
    value : float or array_like
        Sky level per pixel (data unit).
    std : float or array_like
        Per-pixel standard deviation of the background (data unit).
    n_pix : int or array_like
        Number of pixels that entered the estimate.
    error_on_mean : float or array_like, optional
        Error of ``value``; default ``std / sqrt(n_pix)``.
    method : str, optional
        How the level was measured (for the record).
    n_rejected : int or array_like, optional
        Pixels excluded (masked, NaN/inf, clipped).
    efficiency : float, optional
        The factor ``k`` used for ``error_on_mean``.
    meta : dict, optional
        Provenance (method parameters, pixels excluded).
    unit : `~astropy.units.Unit`, optional
        Unit of ``value`` and ``std`` (the data unit).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> img = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> sky = SkyEstimate.from_image(img, method='mean')
    >>> float(sky.value), float(sky.std), int(sky.n_pix)
    (2.5, 1.118033988749895, 4)
    >>> print(f'{sky.error_on_mean:.6f}')
    0.559017
    """

    def __init__(self, value, std, n_pix, *, error_on_mean=None,
                 method='user', n_rejected=0, efficiency=1.0, meta=None,
                 unit=None):
        value = np.asarray(value, dtype=float)
        std = np.asarray(std, dtype=float)
        n_pix = np.asarray(n_pix)
        if not np.all(np.isfinite(value)):
            raise ValueError('value (sky level) must be finite')
        if not np.all(np.isfinite(std)) or np.any(std < 0):
            raise ValueError('std must be finite and non-negative')
        if np.any(n_pix <= 0):
            raise ValueError('n_pix must be positive (no sky pixels)')
        self.value = value[()]
        self.std = std[()]
        self.n_pix = n_pix[()]
        self.method = method
        self.n_rejected = np.asarray(n_rejected)[()]
        self.efficiency = float(efficiency)
        if error_on_mean is None:
            error_on_mean = self.efficiency * std / np.sqrt(n_pix)
        eom = np.asarray(error_on_mean, dtype=float)
        if not np.all(np.isfinite(eom)) or np.any(eom < 0):
            raise ValueError('error_on_mean must be finite and non-negative')
        self.error_on_mean = eom[()]
        self.meta = dict(meta or {})
        self.unit = unit

    @classmethod
    def from_image(cls, data, *, method='sigma_clip', mask=None,
                   uncertainty=None, sigma=3.0, maxiters=10):
        """
        One sky level for the whole frame.

        Parameters
        ----------
        data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
            The frame. An NDData's ``mask`` and ``uncertainty`` are used.
        method : {'sigma_clip', 'mean', 'median'}, optional
            The estimator (see the module docstring for each one's
            ``error_on_mean`` factor).
        mask : array_like of bool, optional
            True for pixels to exclude (e.g. stars).
        uncertainty : array_like or `~astropy.nddata.NDUncertainty`, optional
            Per-pixel 1-sigma map; gives the propagated ``error_on_mean``.
        sigma, maxiters : float, int, optional
            Clipping parameters for ``'sigma_clip'``.

        Returns
        -------
        sky : `SkyEstimate`
        """
        if method not in SKY_METHODS:
            raise ValueError(f'method must be one of {SKY_METHODS}, got '
                             f'{method!r}')
        sigma = positive_scalar(sigma, 'sigma', allow_none=False)
        frame = as_frame(data, uncertainty=uncertainty, mask=mask)
        good = np.isfinite(frame.data)
        if frame.mask is not None:
            good &= ~frame.mask
        if frame.uncertainty is not None:
            good &= np.isfinite(frame.uncertainty)
        n_total = frame.data.size
        n_bad = int(n_total - np.count_nonzero(good))
        if n_bad == n_total:
            raise ValueError('data has no finite, unmasked pixel to '
                             'estimate the sky from')
        if n_bad:
            warnings.warn(f'{n_bad} masked/NaN/inf pixels excluded from the '
                          'sky estimate', AstropyUserWarning, stacklevel=2)
        values = frame.data[good] if n_bad else frame.data.ravel()
        values = values.astype(np.float64, copy=False)
        meta = {'method': method, 'n_excluded_bad': n_bad}
        if method == 'sigma_clip':
            clipped = sigma_clip(values, sigma=sigma, maxiters=maxiters,
                                 cenfunc='median', stdfunc='std',
                                 masked=True, copy=False)
            keep = ~np.ma.getmaskarray(clipped)
            kept = values[keep]
            std_factor, k = clip_factors(sigma)
            level = kept.mean()
            std = kept.std() * std_factor
            n_pix = kept.size
            meta.update(sigma=sigma, maxiters=maxiters,
                        n_clipped=int(values.size - n_pix),
                        std_factor=std_factor)
        else:
            keep = None
            level = values.mean() if method == 'mean' else np.median(values)
            std = values.std()
            n_pix = values.size
            k = 1.0 if method == 'mean' else math.sqrt(math.pi / 2.0)
        eom = None
        if frame.uncertainty is not None:
            unc = frame.uncertainty[good] if n_bad else frame.uncertainty.ravel()
            if keep is not None:
                unc = unc[keep]
            eom = math.sqrt(np.sum(unc.astype(np.float64) ** 2)) / unc.size
            meta['error_on_mean_from'] = 'uncertainty map'
        else:
            meta['error_on_mean_from'] = 'measured std'
        return cls(level, std, n_pix, error_on_mean=eom, method=method,
                   n_rejected=n_total - n_pix, efficiency=k, meta=meta,
                   unit=frame.unit)

    @property
    def isscalar(self):
        """True for one level (a global sky)."""
        return np.ndim(self.value) == 0

    def __len__(self):
        if self.isscalar:
            raise TypeError('a global SkyEstimate has no len()')
        return len(self.value)

    def at(self, index):
        """Level, std, n_pix and error_on_mean for aperture ``index``."""
        def pick(v):
            return float(v) if np.ndim(v) == 0 else float(np.asarray(v)[index])
        return (pick(self.value), pick(self.std), pick(self.n_pix),
                pick(self.error_on_mean))

    def __repr__(self):
        if self.isscalar:
            return (f'<SkyEstimate method={self.method!r} value={self.value:.6g}'
                    f' std={self.std:.6g} n_pix={self.n_pix} '
                    f'error_on_mean={self.error_on_mean:.3g}>')
        return (f'<SkyEstimate method={self.method!r} per-aperture '
                f'(n={len(self)})>')
