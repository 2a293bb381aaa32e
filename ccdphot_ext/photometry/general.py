# Licensed under a 3-clause BSD style license - see LICENSE
"""
The general (per-aperture) engine: the sums of one aperture position of any
shape, on any frame (internal; `~ccdphot_ext.measure` and
`~ccdphot_ext.photometer` call it).

It gives the pixels summed, their weights, the flux and the flags; the
budget is computed from these by the one formula
(`~ccdphot_ext.budget_terms`).
"""

import math
from typing import NamedTuple

import numpy as np
from photutils.aperture import PixelAperture
from scipy.ndimage import binary_dilation

from ..aperture.utils import aperture_position, aperture_weights
from ..background.threshold import SigmaThreshold
from ..flags import (
    FLAG_BAD_PIXELS,
    FLAG_EMPTY_THRESHOLD,
    FLAG_NONPOSITIVE_FLUX,
    FLAG_RESIDUAL_BACKGROUND,
    FLAG_SATURATED,
    FLAG_TRUNCATED,
)
from ..utils.numbers import check_choice
from .residual import residual_is_significant

__all__ = []  # internal module

#: How photutils apertures overlap pixels, ``sum_method`` (boxes aligned
#: with the axes are always exact).
SUM_METHODS = ('exact', 'center', 'subpixel')


class ApertureSums(NamedTuple):
    """
    What the general engine found for one aperture position.

    ``flux`` is NaN (and ``n_pix`` 0) when nothing could be summed; the
    ``sky*`` values are the sky used (a 2-D map's weighted summary over the
    pixels used); ``sigma2`` is ``sum(w * sigma**2)`` with an uncertainty
    map, else None, and ``sigma2_sq`` its ``sum(w**2 * sigma**2)``;
    ``noise_pix`` is ``sum(w**2)`` (``n_pix`` when every weight is 0 or 1);
    ``weights`` the weight of each pixel of the cutout at
    ``slices`` in the sum; ``sigma_map`` and ``sky_pixels`` the cutouts of
    the uncertainty map and of a sky map (or None); ``extra`` variance terms
    beyond the CCD equation (a smoothed threshold mask's ``selection``) and
    ``notes`` for the budget (e.g. that a pixel-selected mask is biased).
    """

    flux: float
    n_pix: float
    flags: int
    sigma2: float | None
    weights: np.ndarray
    slices: tuple | None
    sky: float
    sky_std: float
    sky_error_on_mean: float
    sigma_map: np.ndarray | None = None
    sky_pixels: np.ndarray | None = None
    extra: dict | None = None
    notes: tuple = ()
    noise_pix: float = 0.0
    sigma2_sq: float | None = None


def check_photometry_inputs(aperture, threshold, sum_method):
    """The aperture, threshold and overlap-method checks `measure` and
    `photometer` share (the sky is checked against the frame)."""
    if not isinstance(aperture, PixelAperture):
        raise TypeError('aperture must be a BoxAperture or a photutils '
                        f'PixelAperture, got {type(aperture).__name__}')
    if threshold is not None and not isinstance(threshold, SigmaThreshold):
        raise TypeError('threshold must be a SigmaThreshold or None, got '
                        f'{type(threshold).__name__}')
    check_choice(sum_method, 'sum_method', SUM_METHODS)


def _cutout(frame, slc):
    """Data, bad-pixel mask and uncertainty (0 where bad) under ``slc``."""
    data = frame.data[slc].astype(np.float64, copy=False)
    bad = ~np.isfinite(data)
    if frame.mask is not None:
        bad |= frame.mask[slc]
    sigma_map = None
    if frame.uncertainty is not None:
        sigma_map = frame.uncertainty[slc].astype(np.float64, copy=False)
        bad |= ~np.isfinite(sigma_map)
        # excluded pixels must not poison sum(w * sigma**2) with 0 * NaN
        sigma_map = np.where(bad, 0.0, sigma_map)
    return data, bad, sigma_map


def _apply_threshold(threshold, aperture, index, slc, resid, w, sky_std,
                     sky_eom):
    """
    The weights of the pixels a threshold keeps, the flags it sets (empty
    mask; significant background left outside it) and its extra variance
    terms.
    """
    x, y = aperture_position(aperture, index)
    row = int(round(y)) - slc[0].start
    col = int(round(x)) - slc[1].start
    center = ((row, col) if 0 <= row < w.shape[0]
              and 0 <= col < w.shape[1] else None)
    sel = threshold.select(resid, sky_std, valid=w > 0, center=center)
    extra = {}
    if not threshold.biased:
        extra['selection'] = selection_variance(threshold, resid, w, sky_std,
                                                sel)
    w_rest = np.where(sel, 0.0, w)
    flags = 0 if np.any(sel) else FLAG_EMPTY_THRESHOLD
    if residual_is_significant(float(np.sum(w_rest * resid)),
                               float(np.sum(w_rest)), sky_std, sky_eom):
        flags |= FLAG_RESIDUAL_BACKGROUND
    return np.where(sel, w, 0.0), flags, extra


def selection_variance(threshold, resid, weights, sky_std, selected):
    """The ``selection`` variance term of a smoothed threshold mask on one
    cutout, as the box engine computes it for a stack."""
    near = None
    if threshold.segment == 'central':
        # crossings that could join the central segment: it and its rim
        near = binary_dilation(selected, structure=np.ones((3, 3), bool))
    var = threshold.selection_variance(
        resid[None], (weights > 0)[None], sky_std, weights=weights[None],
        near=None if near is None else near[None])
    return float(var[0])


def _nothing_summed(index, flags, weights, slc, sky_values,
                    allow_off_frame, why):
    """The NaN result of an aperture with nothing to sum, or the error."""
    if not allow_off_frame:
        raise ValueError(f'aperture position {index} {why}')
    return ApertureSums(math.nan, 0.0, flags, None, weights, slc,
                        *sky_values)


def measure_one(frame, aperture, index, sky, *, sky_index, threshold,
                saturation, sum_method, subpixels, allow_off_frame=False):
    """
    The sums of aperture position ``index``: an `ApertureSums`.

    A sky map (``sky.is_map``) is subtracted pixel by pixel; ``sky``,
    ``sky_std`` and ``sky_error_on_mean`` are then its weighted summary over
    the pixels used (`SkyEstimate.summarize`).

    An aperture wholly off the frame, or holding no finite unmasked pixel,
    raises, or with ``allow_off_frame`` gives a NaN flux and the truncation
    or bad-pixel flag.
    """
    slc, weights, truncated = aperture_weights(
        aperture, frame.shape, index=index, sum_method=sum_method,
        subpixels=subpixels)
    sky_map = sky.is_map
    b_value, b_std, _, b_eom = ((math.nan,) * 4 if sky_map
                                else sky.at(sky_index))
    flags = FLAG_TRUNCATED if truncated else 0
    if slc is None:
        return _nothing_summed(index, flags, weights, None,
                               (b_value, b_std, b_eom), allow_off_frame,
                               f'lies entirely off the frame of shape '
                               f'{frame.shape}')
    data, bad, sigma_map = _cutout(frame, slc)
    inside = weights > 0
    if np.any(bad & inside):
        flags |= FLAG_BAD_PIXELS
    if not np.any(inside & ~bad):
        # nothing to sum: a NaN row, never a silent 0 +- 0
        return _nothing_summed(index, flags, np.zeros_like(weights),
                               slc, (b_value, b_std, b_eom), allow_off_frame,
                               'holds no finite, unmasked pixel (all '
                               'masked/NaN/inf)')
    if saturation is not None and np.any(
            inside & ~bad & (data >= saturation)):
        flags |= FLAG_SATURATED
    w = np.where(bad, 0.0, weights)
    sky_pixels = None
    if sky_map:  # subtract the map pixel by pixel
        if sky.shape != frame.shape:
            raise ValueError(f'sky map shape {sky.shape} does not match the '
                             f'frame shape {frame.shape}')
        sky_pixels = sky.cutout(slc)[0]
        b_value, b_std, b_eom = sky.summarize(slc, w)
        resid = np.where(bad, 0.0, data - sky_pixels)
    else:
        resid = np.where(bad, 0.0, data - b_value)
    extra, notes = None, ()
    if threshold is not None:
        w, more, extra = _apply_threshold(threshold, aperture, index, slc,
                                          resid, w, b_std, b_eom)
        flags |= more
        notes = (threshold.note,) if threshold.note else ()
    flux = float(np.sum(w * resid))
    n_pix = float(np.sum(w))
    if flux <= 0:
        flags |= FLAG_NONPOSITIVE_FLUX
    if sky_map and n_pix > 0:  # the map over the pixels used
        b_value, b_std, b_eom = sky.summarize(slc, w)
    w2 = w * w
    sigma2 = sigma2_sq = None
    if sigma_map is not None:
        var = sigma_map ** 2
        sigma2, sigma2_sq = float(np.sum(w * var)), float(np.sum(w2 * var))
    return ApertureSums(flux, n_pix, flags, sigma2, w, slc, b_value, b_std,
                        b_eom, sigma_map, sky_pixels, extra, notes,
                        float(np.sum(w2)), sigma2_sq)
