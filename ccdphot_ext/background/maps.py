# Licensed under a 3-clause BSD style license - see LICENSE
"""
Sky maps: `SkyEstimate.from_background2d` and `SkyEstimate.from_maps`.

For a map (`SkyEstimate.is_map`), photometry subtracts the background pixel
by pixel, the ``sky`` term is ``sum(w_i * rms_i**2)`` and the ``sky_mean``
term is ``(sum(w_i * sigma_B,i))**2``: the map's level is smooth on the
scale of an aperture, so its errors at the aperture's pixels are taken as
fully correlated. For `~photutils.background.Background2D` the error of the
level is approximated as

    ``sigma_B = k_est * f_filter * rms / sqrt(n_mesh)``

with ``n_mesh`` the pixels that entered the mesh box (``n_pixels_map``),
``k_est`` the efficiency of the mesh estimator for Gaussian noise
(`BACKGROUND2D_EFFICIENCY`: mean 1, median 1.2533, Source Extractor's
``2.5 median - 1.5 mean`` 2.1372, MMM's ``3 median - 2 mean`` 2.4773) and
``f_filter = sqrt(pi / (2 m))`` for a median filter over ``m`` meshes (1
without a filter). Measured over noise realisations this is within about 10%
of the scatter of the level at interior mesh centres, lower between mesh
centres (the interpolation averages neighbours) and up to about 35% higher
in the outermost meshes.
"""

import math

import astropy.units as u
import numpy as np
from photutils.background import Background2D

from ..utils.inputs import positive_scalar, strip_unit
from .clipping import _combination_efficiency, clip_factors
from .meshes import clip_corrected_rms, propagated_mesh_error

__all__ = []  # BACKGROUND2D_EFFICIENCY is public through background.sky

#: ``k_est`` per photutils background estimator (class name), for
#: `SkyEstimate.from_background2d`; other estimators get the median's.
BACKGROUND2D_EFFICIENCY = {
    'MeanBackground': 1.0,
    'MedianBackground': math.sqrt(math.pi / 2.0),
    'SExtractorBackground': _combination_efficiency(2.5, 1.5),
    'MMMBackground': _combination_efficiency(3.0, 2.0),
}


def background2d_parts(bkg, efficiency):
    """Level, rms, n_mesh, error of the level, efficiency, meta and unit of
    a photutils Background2D (see `SkyEstimate.from_background2d`)."""
    if not isinstance(bkg, Background2D):
        raise TypeError('bkg must be a photutils Background2D, got '
                        f'{type(bkg).__name__}')
    name = type(bkg.bkg_estimator).__name__
    meta = {'method': 'Background2D', 'bkg_estimator': name,
            'box_size': tuple(int(b) for b in bkg.box_size),
            'filter_size': tuple(int(f) for f in bkg.filter_size)}
    if efficiency is None:
        if name == 'ModeEstimatorBackground':
            est = bkg.bkg_estimator
            efficiency = _combination_efficiency(est.median_factor,
                                                 est.mean_factor)
        else:
            efficiency = BACKGROUND2D_EFFICIENCY.get(
                name, math.sqrt(math.pi / 2.0))
            if name not in BACKGROUND2D_EFFICIENCY:
                meta['efficiency_note'] = ("estimator not listed: the "
                                           "median's k assumed")
    else:
        efficiency = positive_scalar(efficiency, 'efficiency',
                                     allow_none=False)
    level = bkg.background
    rms = bkg.background_rms
    unit = getattr(level, 'unit', None)
    level = np.asarray(getattr(level, 'value', level), dtype=float)
    rms, clip = clip_corrected_rms(
        bkg, np.asarray(getattr(rms, 'value', rms), dtype=float),
        clip_factors)
    n_filter = int(np.prod(bkg.filter_size))
    f_filter = math.sqrt(math.pi / (2.0 * n_filter)) if n_filter > 1 else 1.0
    n_mesh = np.asarray(bkg.n_pixels_map, dtype=float)
    eom, n_excluded = propagated_mesh_error(bkg, efficiency, clip)
    meta.update(f_filter=f_filter, rms_clip_factor=clip,
                n_excluded_meshes=n_excluded,
                error_on_mean_from='k_est * f_filter * rms / sqrt(n_mesh)')
    if eom is None:
        eom = efficiency * f_filter * rms / np.sqrt(n_mesh)
    else:
        meta['error_on_mean_from'] = ('mesh errors propagated through '
                                      "photutils' interpolation and filter")
        meta['n_mesh_note'] = (
            f'{n_excluded} of {np.size(bkg.n_pixels_mesh)} meshes '
            'excluded by photutils (exclude_percentile='
            f'{bkg.exclude_percentile:g}) and filled by interpolation: '
            'the level error there is propagated from the measured '
            'meshes, not taken from their own pixel counts')
    return level, rms, n_mesh, eom, efficiency, meta, unit


def maps_parts(background, rms, error_on_mean, n_pix, efficiency):
    """Level, rms, error of the level, efficiency, meta and unit of
    background and rms maps (see `SkyEstimate.from_maps`)."""
    unit = background.unit if isinstance(background, u.Quantity) else None
    level = _as_map(strip_unit(background, unit, 'background'),
                    'background')
    rms = _as_map(strip_unit(rms, unit, 'rms'), 'rms')
    if rms.shape != level.shape:
        raise ValueError(f'rms shape {rms.shape} does not match '
                         f'background shape {level.shape}')
    efficiency = positive_scalar(efficiency, 'efficiency',
                                 allow_none=False)
    meta = {'method': 'maps'}
    if error_on_mean is not None:
        error_on_mean = np.asarray(
            strip_unit(error_on_mean, unit, 'error_on_mean'), dtype=float)
        meta['error_on_mean_from'] = 'given'
    elif n_pix is not None:
        meta['error_on_mean_from'] = 'efficiency * rms / sqrt(n_pix)'
    else:
        meta['error_on_mean_from'] = ('not given: the level is taken as '
                                      'exact')
    return level, rms, error_on_mean, efficiency, meta, unit


def _as_map(value, name):
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f'{name} must be a 2-D numeric array')
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f'{name} must be a 2-D map, got shape {arr.shape}')
    return arr
