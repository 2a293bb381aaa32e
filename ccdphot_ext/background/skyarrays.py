# Licensed under a 3-clause BSD style license - see LICENSE
"""
The checks of what makes a `~ccdphot_ext.SkyEstimate`: its arrays (a
level, its per-pixel scatter, the pixels that made it and the error of the
level, as one scalar, one entry per aperture or a map the shape of the
frame), the estimator and its clipping parameters, and a sky annulus.
"""

import numpy as np
from photutils.aperture import (
    CircularAnnulus,
    EllipticalAnnulus,
    RectangularAnnulus,
)

from ..utils.numbers import positive_scalar

__all__ = []  # internal module: used by background.sky

#: The estimators of a sky level (see the local-sky docs).
SKY_METHODS = ('sigma_clip', 'mean', 'median')

_ANNULUS_TYPES = (CircularAnnulus, EllipticalAnnulus, RectangularAnnulus)


def _unmeasured(value, n_pix):
    """True where one level per aperture had no usable sky pixel
    (``n_pix`` 0: a NaN level, its photometry row NaN and flagged)."""
    if n_pix is not None and value.ndim == 1:
        return np.asarray(n_pix) == 0
    return np.zeros(value.shape, bool)


def _check_error_on_mean(eom, value, unmeasured):
    """``error_on_mean`` finite and non-negative; for a map, a scalar or a
    map of the level's shape."""
    unmeasured = (unmeasured if eom.shape == unmeasured.shape
                  else np.zeros(eom.shape, bool))
    if (not np.all(np.isfinite(eom) | unmeasured)
            or np.any(eom[~unmeasured] < 0)):
        raise ValueError('error_on_mean must be finite and non-negative')
    if value.ndim == 2 and eom.ndim not in (0, 2):
        raise ValueError('error_on_mean of a map must be a scalar or a '
                         f'map, got shape {eom.shape}')
    if value.ndim == 2 and eom.ndim == 2 and eom.shape != value.shape:
        raise ValueError(f'error_on_mean map shape {eom.shape} does not '
                         f'match value {value.shape}')


def check_sky_arrays(value, std, n_pix, error_on_mean, efficiency):
    """
    Validate the arrays of a sky estimate.

    Returns ``value``, ``std``, ``n_pix`` and ``error_on_mean`` as float
    arrays (0-d for a scalar; ``n_pix`` None for a map without pixel
    counts). ``error_on_mean`` defaults to ``efficiency * std /
    sqrt(n_pix)``, 0 for a map without ``n_pix`` (the level taken as
    exact), NaN for an aperture whose sky had no usable pixel.
    """
    value = np.asarray(value, dtype=float)
    std = np.asarray(std, dtype=float)
    if value.ndim > 2:
        raise ValueError('value must be a scalar, a 1-D array (one level '
                         'per aperture) or a 2-D map, got shape '
                         f'{value.shape}')
    if value.ndim == 2 and std.shape != value.shape:
        raise ValueError(f'std must be a map of the shape of value '
                         f'{value.shape}, got {std.shape}')
    if n_pix is None and value.ndim != 2:
        raise TypeError('n_pix (pixels in the estimate) is required '
                        'unless value is a 2-D map')
    unmeasured = _unmeasured(value, n_pix)
    if not np.all(np.isfinite(value) | unmeasured):
        raise ValueError('value (sky level) must be finite')
    if (not np.all(np.isfinite(std) | unmeasured)
            or np.any(std[~unmeasured] < 0)):
        raise ValueError('std must be finite and non-negative')
    if n_pix is not None:
        n_pix = np.asarray(n_pix)
        if np.any(n_pix < 0) or np.all(n_pix == 0):
            raise ValueError('n_pix must be positive (no sky pixels)')
        n_pix = n_pix[()]
    if error_on_mean is None:
        with np.errstate(divide='ignore', invalid='ignore'):
            error_on_mean = (0.0 if n_pix is None else np.where(
                unmeasured, np.nan, efficiency * std / np.sqrt(n_pix)))
    eom = np.asarray(error_on_mean, dtype=float)
    _check_error_on_mean(eom, value, unmeasured)
    return value[()], std[()], n_pix, eom[()]


def check_estimator(method, sigma):
    """The estimator's name checked; the clipping ``sigma`` validated."""
    if method not in SKY_METHODS:
        raise ValueError(f'method must be one of {SKY_METHODS}, got '
                         f'{method!r}')
    return positive_scalar(sigma, 'sigma', allow_none=False)


def check_maxiters(maxiters):
    """``maxiters`` of a sigma clip: a positive integer or None (until
    convergence), else an error naming it."""
    if maxiters is None:
        return None
    if (isinstance(maxiters, (bool, np.bool_))
            or not isinstance(maxiters, (int, np.integer))):
        raise TypeError('maxiters must be a positive integer or None, got '
                        f'{maxiters!r}')
    if maxiters < 1:
        raise ValueError(f'maxiters must be a positive integer or None, got '
                         f'{maxiters}')
    return int(maxiters)


def check_annulus(annulus, shape):
    """A photutils annulus no larger than a few frames, or an error naming
    the parameter (a mistyped outer size would exhaust the memory)."""
    if not isinstance(annulus, _ANNULUS_TYPES):
        raise TypeError('annulus must be a photutils CircularAnnulus, '
                        'EllipticalAnnulus or RectangularAnnulus, got '
                        f'{type(annulus).__name__}')
    boxes = annulus.bbox if isinstance(annulus.bbox, list) else [annulus.bbox]
    h, w = max((b.shape for b in boxes), key=lambda hw: hw[0] * hw[1])
    if h * w > max(4 * shape[0] * shape[1], 4_000_000):
        raise ValueError(f'annulus spans {h} x {w} pixels, far more than the '
                         f'frame {shape}: is its outer size right?')
