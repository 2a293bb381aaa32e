# Licensed under a 3-clause BSD style license - see LICENSE
"""
The box size `find_stars` suggests, and its check against a curve of growth
(internal).

On a real frame many detections are not stars: cosmic-ray hits and hot
pixels (sharper than any point-spread function), satellite trails
(elongated), saturated stars (flat tops). Sizing the boxes from all of them
gives boxes that hold a fraction of a star's flux. So the size comes from
the *star-like* detections only, and is then checked on the brightest
isolated ones: the flux in the suggested box against the plateau of their
curve of growth.
"""

import math
import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

__all__ = []  # internal module

#: Peak pixel over its 3 x 3 sum above which a detection is a cosmic-ray
#: hit or a hot pixel (a Gaussian star of FWHM 1.4 px gives 0.4).
SHARPNESS_MAX = 0.4
#: ``1 - b/a`` above which a detection is elongated (a trail, a blend).
ROUNDNESS_MAX = 0.5
#: A star-like detection's FWHM lies within these factors of the mode.
FWHM_RANGE = (0.6, 1.7)
#: Box sides (in units of the suggested side) of the curve of growth the
#: suggested box is checked on; the plateau is the median flux of the last
#: three.
BOX_CHECK_SCALES = (1.0, 1.25, 1.5, 1.75, 2.0)
#: Outer side (in units of the suggested side) of the ring whose mean
#: gives each star's residual background.
RING_SCALE = 2.5
#: The suggested box must hold at least this fraction of the plateau.
MIN_FRACTION = 0.9
#: Bright star-like detections that give the PSF FWHM.
N_PSF = 25
#: A check star has no neighbour brighter than this fraction of its flux
#: within reach of the ring (fainter ones, e.g. cosmic rays, change the
#: fraction by a few per cent at most).
NEIGHBOUR_MAX = 0.05
#: Bright isolated stars used for the check.
N_CHECK = 10


def _mode(values):
    """
    The mode of a sample: the centre of its densest half-width window.

    Parameters
    ----------
    values : `~numpy.ndarray`
        The sample (non-finite values are left out).

    Returns
    -------
    mode : float
        The median of the densest half of the sorted values (the median
        for fewer than 3 values; NaN for none).
    """
    values = np.sort(values[np.isfinite(values)])
    if values.size < 3:
        return float(np.median(values)) if values.size else math.nan
    half = max(values.size // 2, 2)
    widths = values[half - 1:] - values[:values.size - half + 1]
    i = int(np.argmin(widths))
    return float(np.median(values[i:i + half]))


def star_like(flux, fwhm, roundness, sharp, saturated):
    """
    Which detections look like stars, and the PSF FWHM they give.

    Not saturated, not sharper than a star (``sharp <= SHARPNESS_MAX``),
    not elongated (``roundness <= ROUNDNESS_MAX``), and a FWHM within
    `FWHM_RANGE` of the mode of the remaining detections' FWHMs. The PSF
    FWHM is the median FWHM of the brightest third of the star-like
    detections (at most `N_PSF`; NaN if none): the FWHM from a faint
    star's segment misses its wings and is too small.

    Parameters
    ----------
    flux, fwhm, roundness, sharp : `~numpy.ndarray`
        The detections' fluxes, FWHMs (pixels), roundness and sharpness.
    saturated : `~numpy.ndarray` of bool
        The saturated detections.

    Returns
    -------
    like : `~numpy.ndarray` of bool
        The star-like detections.
    psf_fwhm : float
        Pixels (NaN without a star-like detection).
    """
    candidate = (~saturated & np.isfinite(fwhm) & (fwhm > 0)
                 & (sharp <= SHARPNESS_MAX) & (roundness <= ROUNDNESS_MAX))
    mode = _mode(fwhm[candidate])
    like = candidate & (fwhm >= FWHM_RANGE[0] * mode) & (
        fwhm <= FWHM_RANGE[1] * mode)
    if not like.any():
        return like, math.nan
    idx = np.flatnonzero(like)
    brightest = idx[np.argsort(-flux[idx], kind='stable')]
    n = min(max(int(math.ceil(idx.size / 3)), 1), N_PSF)
    return like, float(np.median(fwhm[brightest[:n]]))


def _check_stars(x, y, flux, like, reach):
    """
    The brightest star-like detections with no bright neighbour.

    Parameters
    ----------
    x, y, flux : `~numpy.ndarray`
        The detections' positions and fluxes.
    like : `~numpy.ndarray` of bool
        The star-like detections.
    reach : float
        A neighbour brighter than `NEIGHBOUR_MAX` of a star's flux within
        this many pixels (along either axis) leaves the star out.

    Returns
    -------
    indices : `~numpy.ndarray` of int
        At most `N_CHECK`, brightest first.
    """
    order = np.argsort(-np.where(like, flux, -np.inf), kind='stable')
    cand = order[like[order]][:5 * N_CHECK]
    if cand.size == 0:
        return cand
    isolated = np.ones(cand.size, dtype=bool)
    for i, c in enumerate(cand):  # at most 5 * N_CHECK candidates
        near = ((np.abs(x - x[c]) < reach) & (np.abs(y - y[c]) < reach)
                & (flux > NEIGHBOUR_MAX * flux[c]))
        near[c] = False
        isolated[i] = not near.any()
    return cand[isolated][:N_CHECK]


def _growth(frame, sky, xy, side):
    """
    The stars' curves of growth in boxes.

    Box sums at `BOX_CHECK_SCALES`, each less the residual background in
    the ring from ``2 * side`` to ``RING_SCALE * side`` (a linear sky
    gradient left by a global sky averages out over the ring). Every scale
    subtracts the same level, as given (the ring's residual takes out any
    offset of it).

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    sky : `~ccdphot_ext.SkyEstimate`
        Its sky.
    xy : `~numpy.ndarray`
        The ``(n, 2)`` star positions.
    side : int
        The box side (pixels) the scales multiply.

    Returns
    -------
    sums : `~numpy.ndarray`
        ``(len(BOX_CHECK_SCALES), n)``: each scale's sum of each star.
    """
    from ..aperture.box import BoxAperture
    from ..photometry.table import photometer
    from ..photometry.terms import BudgetOptions

    sums, n_pix = [], []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        for s in (*BOX_CHECK_SCALES, RING_SCALE):
            t = photometer(frame, BoxAperture(xy, s * side, s * side), sky,
                           budget=BudgetOptions(include_sky_mean=False),
                           sky_without_apertures=False)
            col = t['aperture_sum']
            sums.append(np.asarray(getattr(col, 'value', col), float))
            n_pix.append(np.asarray(t['n_pix'], float))
    sums, n_pix = np.array(sums), np.array(n_pix)
    residual = (sums[-1] - sums[-2]) / (n_pix[-1] - n_pix[-2])
    return sums[:-1] - residual * n_pix[:-1]


def check_box(frame, sky, x, y, flux, like, side):
    """
    Curve of growth of the brightest isolated star-like detections.

    Warns (`~astropy.utils.exceptions.AstropyUserWarning`) when the box
    holds less than `MIN_FRACTION` of the plateau.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    sky : `~ccdphot_ext.SkyEstimate`
        Its sky.
    x, y, flux : `~numpy.ndarray`
        The detections' positions and fluxes.
    like : `~numpy.ndarray` of bool
        The star-like detections.
    side : int
        The suggested box side (pixels).

    Returns
    -------
    meta : dict
        ``fraction`` (median over the stars of the flux in the ``side`` box
        over the plateau, the median flux of the three largest boxes; None
        when no star could be used), ``n_stars``, ``scales``, ``passed``,
        ``min_fraction`` and, when not checked, a ``note`` saying why.
    """
    reach = RING_SCALE * side / 2
    ny, nx = frame.shape
    pick = _check_stars(x, y, flux, like, reach + 1)
    inside = ((x[pick] - reach >= -0.5) & (x[pick] + reach <= nx - 0.5)
              & (y[pick] - reach >= -0.5) & (y[pick] + reach <= ny - 0.5))
    pick = pick[inside]
    meta = {'scales': list(BOX_CHECK_SCALES), 'n_stars': int(pick.size),
            'fraction': None, 'passed': None, 'min_fraction': MIN_FRACTION}
    if pick.size == 0:
        meta['note'] = 'not checked: no isolated star-like detection'
        return meta
    curve = _growth(frame, sky, np.column_stack([x[pick], y[pick]]), side)
    plateau = np.median(curve[-3:], axis=0)
    with np.errstate(divide='ignore', invalid='ignore'):
        per_star = curve[0] / plateau
    per_star = per_star[np.isfinite(per_star) & (plateau > 0)]
    if per_star.size == 0:
        meta['note'] = 'not checked: no positive plateau'
        return meta
    fraction = float(np.median(per_star))
    meta.update(fraction=round(fraction, 4), passed=fraction >= MIN_FRACTION)
    if not meta['passed']:
        warnings.warn(
            f'the {side}-pixel boxes hold {fraction:.0%} of the flux of '
            f'the brightest isolated stars (their curve of growth reaches '
            f'a plateau at {BOX_CHECK_SCALES[-1]:g} x the box): pass a '
            'larger box_side (or box_scale)', AstropyUserWarning,
            stacklevel=3)
    return meta
