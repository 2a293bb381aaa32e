# Licensed under a 3-clause BSD style license - see LICENSE
"""
The general (per-aperture) engine: the sums of aperture positions of any
shape, on any frame, one position at a time (internal;
`~ccdphot_ext.measure` and `~ccdphot_ext.photometer` call it).

It fills the rows of an `~ccdphot_ext.photometry.sums.ApertureSums` (the
flux, the pixels summed and the flags) and gives `measure` the pixels
behind them (`Cutout`); the budget is computed from the sums by the one
formula (`~ccdphot_ext.budget_terms`).
"""

import math
from dataclasses import dataclass

import numpy as np
from photutils.aperture import PixelAperture
from scipy.ndimage import binary_dilation

from ..aperture.utils import aperture_position, aperture_weights, n_positions
from ..background.sky import zero_rms
from ..background.threshold import SigmaThreshold
from ..flags import (
    FLAG_BAD_PIXELS,
    FLAG_EMPTY_THRESHOLD,
    FLAG_NONPOSITIVE_FLUX,
    FLAG_RESIDUAL_BACKGROUND,
    FLAG_SATURATED,
    FLAG_SKY_ANNULUS,
    FLAG_TRUNCATED,
)
from ..utils.numbers import check_choice
from .residual import residual_is_significant
from .sums import ApertureSums

__all__ = []  # internal module

#: How photutils apertures overlap pixels, ``sum_method`` (boxes aligned
#: with the axes are always exact).
SUM_METHODS = ('exact', 'center', 'subpixel')


@dataclass(frozen=True)
class Cutout:
    """
    The pixels behind one measured aperture position (what `measure` keeps
    besides the sums): the weight of each pixel of the cutout at
    ``slices`` in the sum (0 = not used), and the cutouts of the
    uncertainty map and of a sky map (or None).
    """

    weights: np.ndarray
    slices: tuple | None
    sigma_map: np.ndarray | None = None
    sky_pixels: np.ndarray | None = None


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
                     sky_error_on_mean):
    """
    The weights of the pixels a threshold keeps, the flags it sets (empty
    mask; significant background left outside it) and a smoothed mask's
    ``selection`` variance term (None for a pixel-selected mask).
    """
    x, y = aperture_position(aperture, index)
    row = int(round(y)) - slc[0].start
    col = int(round(x)) - slc[1].start
    center = ((row, col) if 0 <= row < w.shape[0]
              and 0 <= col < w.shape[1] else None)
    sel = threshold.select(resid, sky_std, valid=w > 0, center=center)
    selection = None
    if not threshold.biased:
        selection = selection_variance(
            threshold, resid, w, sky_std, sel,
            centre=(y - slc[0].start, x - slc[1].start))
    w_rest = np.where(sel, 0.0, w)
    flags = 0 if np.any(sel) else FLAG_EMPTY_THRESHOLD
    if residual_is_significant(float(np.sum(w_rest * resid)),
                               float(np.sum(w_rest)), sky_std,
                               sky_error_on_mean):
        flags |= FLAG_RESIDUAL_BACKGROUND
    return np.where(sel, w, 0.0), flags, selection


def selection_variance(threshold, resid, weights, sky_std, selected, *,
                       centre=None):
    """The ``selection`` variance term of a smoothed threshold mask on one
    cutout, as the box engine computes it for a stack (with
    ``segment='all'``, its mask-growth adjustment about the aperture
    ``centre``, ``(row, col)`` in the cutout)."""
    near = None
    if threshold.segment == 'central':
        # crossings that could join the central segment: it and its rim
        near = binary_dilation(selected, structure=np.ones((3, 3), bool))
    var = threshold.selection_variance(
        resid[None], (weights > 0)[None], sky_std, weights=weights[None],
        near=None if near is None else near[None], selected=selected[None],
        centre=None if centre is None else np.array([centre], dtype=float))
    return float(var[0])


def measure_general(frame, aperture, sky, rows, *, threshold, saturation,
                    sum_method, subpixels):
    """
    The sums of every position of ``aperture``, one at a time (the engine
    of `measure`, for any aperture on any frame): an `ApertureSums`.

    ``rows`` (a slice) says which rows of the whole table the positions
    are, for a sky of one level per aperture. A position wholly off the
    frame or with no usable pixel gets a NaN flux and its flag.
    """
    n = n_positions(aperture)
    out = ApertureSums.empty(
        n, uncertainty=frame.uncertainty is not None,
        selection=threshold is not None and not threshold.biased)
    for index in range(n):
        # a one-position aperture: photutils makes the mask of every
        # position it holds, each time one is asked for
        single = aperture[index] if n > 1 else aperture
        measure_one(frame, single, 0, sky, out, index,
                    sky_index=0 if sky.is_global else rows.start + index,
                    threshold=threshold, saturation=saturation,
                    sum_method=sum_method, subpixels=subpixels,
                    allow_off_frame=True)
    return out


def _nothing_summed(index, why, allow_off_frame):
    """Refuse an aperture with nothing to sum, unless that is allowed (its
    row then keeps a NaN flux)."""
    if not allow_off_frame:
        raise ValueError(f'aperture position {index} {why}')


def measure_one(frame, aperture, index, sky, out, row, *, sky_index,
                threshold, saturation, sum_method, subpixels,
                allow_off_frame=False):
    """
    Row ``row`` of ``out`` (an `ApertureSums`): the sums of aperture
    position ``index``; returns its `Cutout`.

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
    b_value, b_std, _, b_error_on_mean = ((math.nan,) * 4 if sky_map
                                else sky.at(sky_index))
    out.sky[row], out.sky_std[row] = b_value, b_std
    out.sky_error_on_mean[row] = b_error_on_mean
    flags = FLAG_TRUNCATED if truncated else 0
    out.flags[row] = flags
    if slc is None:
        _nothing_summed(index, f'lies entirely off the frame of shape '
                        f'{frame.shape}', allow_off_frame)
        return Cutout(weights, None)
    data, bad, sigma_map = _cutout(frame, slc)
    inside = weights > 0
    if np.any(bad & inside):
        flags |= FLAG_BAD_PIXELS
    if not np.any(inside & ~bad):
        # nothing to sum: a NaN row, never a silent 0 +- 0
        out.flags[row] = flags
        _nothing_summed(index, 'holds no finite, unmasked pixel (all '
                        'masked/NaN/inf)', allow_off_frame)
        return Cutout(np.zeros_like(weights), slc)
    if saturation is not None and np.any(
            inside & ~bad & (data >= saturation)):
        flags |= FLAG_SATURATED
    w = np.where(bad, 0.0, weights)
    sky_pixels = None
    if sky_map:  # subtract the map pixel by pixel
        if sky.shape != frame.shape:
            raise ValueError(f'sky map shape {sky.shape} does not match the '
                             f'frame shape {frame.shape}')
        sky_pixels, sky_rms, _ = sky.cutout(slc)
        b_value, b_std, b_error_on_mean = sky.summarize(slc, w)
        resid = np.where(bad, 0.0, data - sky_pixels)
    else:
        resid = np.where(bad, 0.0, data - b_value)
    if threshold is not None:
        w, more, selection = _apply_threshold(threshold, aperture, index,
                                              slc, resid, w, b_std,
                                              b_error_on_mean)
        flags |= more
        if out.selection is not None:
            out.selection[row] = selection
    flux = float(np.sum(w * resid))
    n_pix = float(np.sum(w))
    if flux <= 0:
        flags |= FLAG_NONPOSITIVE_FLUX
    if sky_map and n_pix > 0:  # the map over the pixels used
        b_value, b_std, b_error_on_mean = sky.summarize(slc, w)
        if zero_rms(sky_rms, w > 0):
            flags |= FLAG_SKY_ANNULUS
    w2 = w * w
    if sigma_map is not None:
        var = sigma_map ** 2
        out.sigma2[row] = float(np.sum(w * var))
        out.sigma2_sq[row] = float(np.sum(w2 * var))
    out.flux[row], out.n_pix[row] = flux, n_pix
    out.noise_pix[row] = float(np.sum(w2))
    # whole pixels: the same sum as the flux
    out.flux_sq[row] = (flux if np.all((w == 0) | (w == 1))
                        else float(np.sum(w2 * resid)))
    out.flags[row] = flags
    out.sky[row], out.sky_std[row] = b_value, b_std
    out.sky_error_on_mean[row] = b_error_on_mean
    return Cutout(w, slc, sigma_map, sky_pixels)
