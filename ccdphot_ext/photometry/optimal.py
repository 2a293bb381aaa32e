# Licensed under a 3-clause BSD style license - see LICENSE
"""
Optimal (PSF-weighted) extraction, in the spirit of Naylor (1998, MNRAS 296,
339), with its error from the same budget terms as aperture photometry.

With ``P_i`` the PSF normalised to unit *total* flux at the star's position,
``D_i - B`` the sky-subtracted data and ``V_i`` the variance of pixel ``i``,
the weights ``w_i = P_i / V_i`` give

    ``F = sum(w_i (D_i - B)) / sum(w_i P_i)``,

an unbiased estimate of the star's total flux for a star of that PSF (for
any fixed weights, since ``E[D_i - B] = F P_i``), of least variance when
``V_i`` is the true pixel variance: ``V_i = sigma_sky,i**2 + max(F P_i, 0)
/ g``, iterated from ``F`` a few times. This is the fixed-position,
linear least-squares PSF fit. Masked/NaN pixels get zero weight; the
normalisation ``sum(w_i P_i)`` keeps the estimate unbiased.

With ``S = sum(w_i P_i)`` the error budget holds the usual terms:

``sky``
    ``sum(w_i**2 sigma_sky,i**2) / S**2`` (the measured ``sky.std``, the
    map's RMS, or the uncertainty map);
``source``
    ``sum(w_i**2 max(F P_i, 0) / g) / S**2`` (absent without a gain);
``sky_mean``
    ``(sum(w_i) / S)**2 error_on_mean**2``: the error of the subtracted sky
    level, with the sum-of-weights factor in place of ``n_pix``.

**Does the star look like the PSF?** A PSF of the wrong width biases the
flux (20% too narrow: -8%, dozens of error bars for a bright star) while
the budget, which assumes the PSF, stays small. Each result therefore
carries the fit's goodness: ``chi2`` of the PSF-weighted model ``F P``
over the stamp (``dof`` degrees of freedom), and ``psf_z``, the difference
of the PSF-weighted fluxes of the star's core and of its wings (the
pixels holding each half of the PSF's information ``sum(P**2 / V)``) in
units of its error, which a wrong width drives away from 0 (negative for
a PSF too narrow). ``|psf_z| > 3`` or a ``chi2`` beyond its 0.1% tail sets
`~ccdphot_ext.flags.FLAG_PSF_MISMATCH` and warns, as does a PSF without
wings (all of it within a pixel or two: the match cannot be tested, and a
real star is wider).

**Does the PSF fit the frame?** A faint star's own test has little power,
yet the PSF is the frame's: each call also extracts the frame's bright
stars (those `fit_psf_sigma` fits) with the PSF, at positions the PSF
fits to them, and when the median of their ``psf_z`` is beyond
`FRAME_Z_LIMIT` of its errors, or more of them fail their own fit
(chi-square, core against wings) than stars of the PSF's shape would
(`FRAME_STAR_FLAG_RATE`, `FRAME_FLAG_P_LIMIT`: a Gaussian on Moffat or
elliptical stars), every star is flagged and warned about
(``result.frame_psf`` holds the check, remembered for the last few
frames by their content), whether the PSF was given or fitted. A
width the check rejects is, when it is to be fitted (``fit_width``),
scaled to the width the frame's stars show and checked again: passing,
it measures every flux unflagged, a warning saying the width given was
wrong (`_refit_width`).

**The width the frame's stars show.** Every isolated star the PSF
finds on the frame (`_width_stars`: the frame filtered with the PSF,
peaks above `WIDTH_MIN_SNR` of the filter's noise), faint ones too,
measures the PSF's width, in a joint fit of one scale of it and each
star's flux (`_width_scale`; each star weighs as its information, its
position's own bias taken out, outliers left out): each flux is
measured with a Gaussian sigma, a fitted profile or a model's widths
scaled to that width, the width's error carried into the budget's
``psf_width`` term (the flux's change with the width times its error;
``fit_width=False`` keeps the width as given). The same fit tests the
stars' profile (``shape_z``: heavier or lighter wings than the PSF's at
their width); beyond `SHAPE_Z_LIMIT` every star is flagged. Where the
frame cannot confirm the width well enough for a flux (no star measures
it and a width `WIDTH_PRIOR` off would move the flux by more than
`WIDTH_BIAS_LIMIT` of its error; or the width's error is more than
`WIDTH_SHARE_LIMIT` times the rest of the flux's, or biases it by more
than `WIDTH_BIAS_LIMIT`), the row is flagged and warned about.

**Cosmic rays and hot pixels.** Pixels sharper than the frame's stars
(the rule of `~ccdphot_ext.flags.FLAG_SHARP_PIXEL`) get no weight, in
the star's extraction and in the PSF's and the width's fits; a star with
one in its footprint is flagged (1024) and warned about. So do the pixels
far above a star's fitted model, sharper than it (`HIT_NSIGMA`): hits
on a bright star's core, which its light hides from the frame's rule.

**No PSF given.** With ``psf_sigma=None`` an elliptical Moffat profile
integrated over the pixels (``MoffatPRF``: two widths, their
angle and ``1 / beta``, a Gaussian as ``1 / beta`` goes to 0) is fitted
to the frame's bright, isolated, unsaturated stars; with fewer than
five of them the width of a circular Gaussian
(`fit_psf_sigma`). ``result.frame_psf['model']`` and the budget's notes
say which.

`compare_extractions` sets it beside the box sum and the threshold mask.
"""

import dataclasses
import math
import warnings
from collections import OrderedDict
from functools import cached_property

import numpy as np
from astropy.modeling import Model
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

from ..aperture.utils import aperture_position
from ..background.annulus import annulus_flags
from ..background.noisecheck import warn_if_correlated
from ..background.outliers import SharpPixels, judging_noise
from ..background.sky import SkyEstimate, check_sky, sky_doubts
from ..background.skylift import sky_for_apertures
from ..background.threshold import SigmaThreshold
from ..flags import (
    FLAG_BAD_PIXELS,
    FLAG_NONPOSITIVE_FLUX,
    FLAG_PSF_MISMATCH,
    FLAG_SATURATED,
    FLAG_SHARP_PIXEL,
    FLAG_SKY_ANNULUS,
    FLAG_TRUNCATED,
)
from ..io.fluxdensity import unit_family
from ..io.header import detector_with_gain
from ..io.saturation import warn_saturation
from ..io.units import check_data_unit
from ..utils.digest import array_digest
from ..utils.inputs import as_frame, positive_scalar
from ..utils.numbers import (
    check_options,
    check_shape,
    iterations,
    positive_integer,
)
from ..utils.stats import (
    MEDIAN_EFFICIENCY,
    difference_noise,
    lagged_differences,
)
from ..utils.warnonce import warn_once
from .budget import (
    NOTE_EXACT_SKY,
    NOTE_NO_GAIN,
    ErrorBudget,
    warn_unknown_source_term,
)
from .dqcheck import dq_stamp, saturated_pixels, warn_dq
from .framepsf import MOFFAT_MIN_STARS, FramePSF, frame_psf_fit
from .measurement import BudgetedResult, measure
from .residual import (
    SKY_OFFSET_TERM,
    error_without_offset,
    sky_offset_variance,
)
from .skychecks import note_sky_remeasured, sky_row_checks
from .terms import BudgetOptions
from .uncertaintycheck import (
    check_uncertainty_scale,
    map_holds_photon_noise,
)

__all__ = ['optimal_extraction', 'OptimalMeasurement', 'psf_stamp',
           'compare_extractions', 'fit_psf_sigma']

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

#: ``|psf_z|`` above which a star is flagged as not matching the PSF.
PSF_Z_LIMIT = 3.0

#: Chance of the fit's chi-square (for a star that matches the PSF) below
#: which it is flagged.
CHI2_P_LIMIT = 1e-3


def _psf_model(psf):
    """
    A photutils-style PSF model with ``x_0``, ``y_0`` and ``flux``.

    Parameters
    ----------
    psf : float, 2-D array or `~astropy.modeling.Model`
        A Gaussian sigma in pixels, a PSF image sampled on the pixel grid
        (normalised here to sum 1) or a model with those parameters.

    Returns
    -------
    model : `~astropy.modeling.Model`
        A copy of a given model, a `~photutils.psf.CircularGaussianPRF` or
        an `~photutils.psf.ImagePSF`.
    size : int or None
        The odd stamp side the PSF fills (None for a given model).

    Raises
    ------
    TypeError
        If a model lacks ``x_0``, ``y_0`` or ``flux``.
    ValueError
        If the array is not 2-D, not finite or does not sum to a positive
        number, or the sigma is not positive.
    """
    from photutils.psf import CircularGaussianPRF, ImagePSF  # ~0.4 s import

    if isinstance(psf, FramePSF):
        return psf.model.copy(), psf.stamp
    if isinstance(psf, Model):
        for name in ('x_0', 'y_0', 'flux'):
            if name not in psf.param_names:
                raise TypeError(f'psf model must have x_0, y_0 and flux '
                                f'parameters (photutils PSF models do); '
                                f'{type(psf).__name__} has no {name}')
        return psf.copy(), None
    if np.ndim(psf) == 0:
        sigma = positive_scalar(psf, 'psf (Gaussian sigma)', allow_none=False)
        size = 2 * math.ceil(5.0 * sigma) + 1
        return CircularGaussianPRF(fwhm=sigma * _FWHM_PER_SIGMA), size
    arr = np.asarray(psf, dtype=float)
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError('psf must be a Gaussian sigma, a photutils PSF model '
                         f'or a 2-D array, got shape {arr.shape}')
    total = arr.sum()
    if not np.all(np.isfinite(arr)) or total <= 0:
        raise ValueError('psf array must be finite with a positive sum')
    return ImagePSF(arr / total), _array_stamp_size(arr / total)


#: An array PSF's default stamp: the odd square holding the circle (about
#: the array's central pixel) that holds this share of its light.
ARRAY_STAMP_LIGHT = 0.99


def _array_stamp_size(arr):
    """
    The default stamp side of a PSF array normalised to sum 1.

    The odd side ``2 ceil(r) + 1`` of the circle about the array's central
    pixel holding `ARRAY_STAMP_LIGHT` of its light, at least 5 and never
    wider than the array (odd). A wider stamp adds pixels of little weight
    and lets the neighbours of a star into its fit (a 51-pixel array of a
    1.5-pixel Gaussian flagged a third of stars 25 pixels apart); the PSF
    keeps its normalisation to the whole array, so the flux is still the
    star's total.

    Parameters
    ----------
    arr : `~numpy.ndarray`
        The PSF, summing to 1.

    Returns
    -------
    size : int
        The stamp side.
    """
    ny, nx = arr.shape
    yy, xx = np.indices(arr.shape)
    r = np.hypot(xx - (nx - 1) / 2.0, yy - (ny - 1) / 2.0).ravel()
    order = np.argsort(r, kind='stable')
    held = np.cumsum(arr.ravel()[order])
    i = int(np.searchsorted(held, ARRAY_STAMP_LIGHT))
    radius = float(r[order][min(i, r.size - 1)])
    full = max(arr.shape) | 1
    return min(max(2 * math.ceil(radius) + 1, 5), full)


def psf_stamp(psf, position, shape, *, size=None):
    """
    The PSF at ``position`` on the pixels of a frame, normalised to unit
    total flux.

    Parameters
    ----------
    psf : float, 2-D array or photutils PSF model
        A Gaussian sigma in pixels (photutils'
        `~photutils.psf.CircularGaussianPRF`, integrated over pixels); a 2-D
        array sampled on the pixel grid and centred on its central pixel
        (normalised to sum 1 and shifted to ``position`` by photutils'
        `~photutils.psf.ImagePSF`); or any model with ``x_0``, ``y_0`` and
        ``flux`` parameters, evaluated at pixel centres with ``flux=1``.
    position : (x, y)
        Star position (0-based pixels).
    shape : (ny, nx)
        Frame shape.
    size : int, optional
        Side of the square stamp (odd); default 10 sigma + 1 for a Gaussian,
        for an array the odd square about the circle holding 99% of its
        light (`ARRAY_STAMP_LIGHT`; the flux is still the total, as the
        array is normalised over all of it), or 25 for a model.

    Returns
    -------
    slices : tuple of slices
        Where the stamp sits on the frame (clipped to it).
    stamp : 2-D ndarray
        The PSF fraction in each pixel (sums to below 1 where wings fall off
        the stamp or the frame).
    truncated : bool
        True when the frame edge clipped the stamp.

    Examples
    --------
    >>> from ccdphot_ext.photometry.optimal import psf_stamp
    >>> slc, p, cut = psf_stamp(1.5, (20.3, 30.6), (64, 64))
    >>> print(f'{p.sum():.6f}', p.shape, cut)
    1.000000 (17, 17) False
    """
    ny, nx = check_shape(shape)
    gaussian = np.ndim(psf) == 0 and not isinstance(psf, (Model, FramePSF))
    if gaussian:  # no model to build (most of a faint frame's width fit)
        sigma = positive_scalar(psf, 'psf (Gaussian sigma)', allow_none=False)
        model, default = None, 2 * math.ceil(5.0 * sigma) + 1
    else:
        model, default = _psf_model(psf)
    if (default is not None and not isinstance(psf, FramePSF)
            and np.ndim(psf) == 0 and psf > max(ny, nx)):
        raise ValueError(f'psf (Gaussian sigma) {float(psf):g} pixels is '
                         f'more than the frame {(ny, nx)}: is it in pixels?')
    if size is None:
        size = 25 if default is None else default
    size = positive_integer(size, 'size')
    half = size // 2
    try:
        x, y = (float(v) for v in position)
    except (TypeError, ValueError):
        # a list of positions, three numbers, text
        raise TypeError('position must be one (x, y) pair of numbers, got '
                        f'{position!r}') from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f'position must be finite, got {position!r}')
    ix, iy = int(round(x)), int(round(y))
    x0, x1 = ix - half, ix + half + 1
    y0, y1 = iy - half, iy + half + 1
    cx0, cx1, cy0, cy1 = max(x0, 0), min(x1, nx), max(y0, 0), min(y1, ny)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ValueError(f'position {position!r} lies off the frame of shape '
                         f'{tuple(shape)}')
    if gaussian:  # photutils' CircularGaussianPRF, separable
        stamp = np.outer(_gaussian_pixels(np.arange(cy0, cy1) - y, sigma),
                         _gaussian_pixels(np.arange(cx0, cx1) - x, sigma))
    else:
        model.x_0 = x
        model.y_0 = y
        model.flux = 1.0
        yy, xx = np.mgrid[cy0:cy1, cx0:cx1]
        stamp = np.asarray(model(xx.astype(float), yy.astype(float)),
                           dtype=float)
    truncated = (cx0, cx1, cy0, cy1) != (x0, x1, y0, y1)
    return (slice(cy0, cy1), slice(cx0, cx1)), stamp, truncated


def _gaussian_pixels(offsets, sigma):
    """
    A unit Gaussian of ``sigma`` integrated over pixels: one axis of
    photutils' `~photutils.psf.CircularGaussianPRF`.

    Parameters
    ----------
    offsets : `~numpy.ndarray`
        The pixels' centres less the star's position.
    sigma : float
        The Gaussian's sigma in pixels.

    Returns
    -------
    share : `~numpy.ndarray`
        The Gaussian's share in each pixel along the axis.
    """
    from scipy.special import erf

    scale = math.sqrt(2.0) * float(sigma)
    return 0.5 * (erf((offsets + 0.5) / scale) - erf((offsets - 0.5)
                                                      / scale))


def _default_side(psf):
    """The PSF's own stamp side (`psf_stamp`; None for a model)."""
    if np.ndim(psf) == 0 and not isinstance(psf, (Model, FramePSF)):
        return 2 * math.ceil(5.0 * float(psf)) + 1
    return _psf_model(psf)[1]


def _psf_evaluator(psf):
    """
    The PSF of unit flux as a function of the pixels and the position.

    Parameters
    ----------
    psf : float, 2-D array, photutils PSF model or `FramePSF`
        The PSF, as for `psf_stamp`.

    Returns
    -------
    values : callable
        ``values(xx, yy, x, y)``: the PSF at ``(x, y)`` on the pixel
        grids ``xx``, ``yy`` (as `numpy.mgrid` makes them); a Gaussian
        sigma separably (`_gaussian_pixels`), else its model.
    """
    if np.ndim(psf) == 0 and not isinstance(psf, (Model, FramePSF)):
        sigma = float(psf)

        def values(xx, yy, x, y):
            return np.outer(_gaussian_pixels(yy[:, 0] - y, sigma),
                            _gaussian_pixels(xx[0] - x, sigma))
        return values
    model = _psf_model(psf)[0]

    def values(xx, yy, x, y):
        model.x_0, model.y_0, model.flux = x, y, 1.0
        return np.asarray(model(xx, yy), dtype=float)
    return values


class OptimalMeasurement(BudgetedResult):
    """
    The result of `optimal_extraction`.

    Built by `optimal_extraction`; each parameter but ``sky_pixels`` and
    ``fit`` is an attribute of the same name, ``fit`` gives `chi2`, `dof`
    and `psf_z`.

    Parameters
    ----------
    flux : float
        Estimated total flux of the star, in the data unit.
    budget : `~ccdphot_ext.ErrorBudget`
        ``sky``, ``source`` and ``sky_mean`` terms of the weighted estimate.
    weights : 2-D ndarray
        ``w_i / sum(w_i P_i)`` on the stamp: the flux is ``sum(weights *
        (D - B))``.
    psf : 2-D ndarray
        ``P_i``: the PSF on the stamp, normalised to unit total flux.
    slices : tuple of slices
        Where the stamp sits in the frame.
    flags : int
        Bit flags (1 stamp clipped by the frame edge, 2 bad pixels excluded,
        4 saturated pixel with weight, 8 flux <= 0, 32 a sky the frame's
        background shows biased here, 64 a sky level from fewer than 5
        pixels or an annulus flagged where it was measured, or an
        annulus level on a frame whose noise correlates (the weights'
        terms are white), 256 the star,
        or the frame's stars, do not match the PSF, or its width is not
        confirmed well enough for this flux, 1024 a pixel sharper than
        the frame's stars, a cosmic ray or a hot pixel, in the star's
        footprint: left out of the weights).
    n_iter : int
        Iterations of the variance model.
    position : tuple of float
        The ``(x, y)`` star position the PSF was placed at.
    sky_pixels : float or 2-D ndarray
        The sky level subtracted: one level, or a sky map's cutout on the
        stamp.
    fit : dict, optional
        The goodness of fit, with keys ``'chi2'``, ``'dof'`` and
        ``'psf_z'`` (the attributes of the same names); None (default):
        not measured (NaN, 0 and NaN).
    psf_sigma : float, optional
        The Gaussian sigma fitted to the frame's stars when no PSF was
        given and the frame had too few bright stars for the Moffat
        profile; None (default) otherwise.
    frame_psf : dict, optional
        Whether the PSF fits the frame's bright stars: ``'n_stars'`` (how
        many were tested), ``'psf_z'`` (their median `psf_z`), ``'z'``
        (that median in units of its error), ``'n_mismatch'`` (those
        failing their own fit), ``'fits'`` (True, False, or
        None when the frame has too few bright stars to tell),
        ``'width_scale'`` and ``'width_scale_err'`` (the width of its
        stars in units of the PSF's, and its error; None when it
        cannot be fitted), ``'width_stars'`` (the stars it was fitted
        to), ``'shape_z'`` (their profile against the PSF's, in sigma)
        and ``'summary'`` (a sentence saying what they
        show); where the width given was rejected and refitted, the
        check of the PSF at the stars' width, with
        ``'given_width_scale'`` (their width over the one given) and
        ``'given_summary'`` (the rejected check's sentence); and which PSF
        was used: ``'model'`` (``'given'``, ``'moffat'`` fitted to the
        frame, or ``'gaussian'`` fitted when it has too few bright stars)
        and ``'psf_stars'`` (the stars the Moffat profile was fitted to,
        else None); None (default): not checked.

    Attributes
    ----------
    chi2 : float
        Chi-square of the model ``flux * psf`` against the sky-subtracted
        stamp (pixels weighted by their model variance).
    dof : int
        The degrees of freedom of ``chi2`` (pixels used less one).
    psf_z : float
        PSF-weighted flux of the star's core less that of its wings, in
        units of its error: near 0 when the star has the PSF's shape,
        negative when the PSF is too narrow, positive when too wide.

    Examples
    --------
    >>> from ccdphot_ext import SkyEstimate, optimal_extraction
    >>> from ccdphot_ext.datasets.sample import render_stars
    >>> star = render_stars((32, 32), [15.0], [16.0], [4000.0], sigma=1.5)
    >>> res = optimal_extraction(100.0 + star, (15.0, 16.0), 1.5,
    ...                          SkyEstimate(100.0, 5.0, 10_000))
    >>> print(f'{res.flux:.0f}', res.flags, res.psf.shape == res.weights.shape)
    4000 0 True
    """

    def __init__(self, *, flux, budget, weights, psf, slices, flags, n_iter,
                 position, sky_pixels, fit=None, psf_sigma=None,
                 frame_psf=None):
        self.flux = flux
        self.budget = budget
        self.weights = weights
        self.psf = psf
        self.slices = slices
        self.flags = flags
        self.n_iter = n_iter
        self.position = position
        self._sky_pixels = sky_pixels
        fit = fit or {}
        self.chi2 = fit.get('chi2', math.nan)
        self.dof = fit.get('dof', 0)
        self.psf_z = fit.get('psf_z', math.nan)
        self.psf_sigma = psf_sigma
        self.frame_psf = frame_psf

    @cached_property
    def model(self):
        """The fitted star ``flux * P`` on the stamp (sky not included)."""
        return self.flux * self.psf

    def __repr__(self):
        return (f'<OptimalMeasurement flux={self.flux:.6g} '
                f'flux_err={self.flux_err:.6g} snr={self.snr:.4g} '
                f'psf_z={self.psf_z:.2f} flags={self.flags}>')


def _sky_pixels(sky, slc, shape):
    """
    The sky under a PSF stamp.

    Parameters
    ----------
    sky : `~ccdphot_ext.SkyEstimate`
        One level (or this star's) or a 2-D map.
    slc : tuple of slice
        The stamp's place in the frame.
    shape : tuple of int
        The frame's ``(ny, nx)``.

    Returns
    -------
    level, std, error_on_mean : float or `~numpy.ndarray`
        The level, the per-pixel standard deviation and the level's error
        (a map's values under the stamp).
    n_pix : int or None
        The pixels ``std`` was measured from; None for a map, whose rms is
        taken as known.

    Raises
    ------
    ValueError
        If a map's shape is not the frame's.
    """
    if sky.is_map:
        if sky.shape != shape:
            raise ValueError(f'sky map shape {sky.shape} does not match the '
                             f'frame shape {shape}')
        level, rms, error_on_mean = sky.cutout(slc)
        return level, rms, error_on_mean, None
    value, std, n_pix, error_on_mean = sky.at(0)
    return value, std, error_on_mean, n_pix


def optimal_extraction(data, position, psf_sigma, sky, *, gain=None,
                       detector=None, budget=None, size=None,
                       uncertainty=None, mask=None, n_iter=3,
                       sky_without_apertures=True, fit_width=True):
    """
    PSF-weighted flux of one star with its error budget.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The processed frame; a `CCDData`'s uncertainty, mask and header are
        used.
    position : (x, y)
        Star position (0-based pixels), taken as known.
    psf_sigma : float, 2-D array, photutils PSF model or None
        The PSF: a Gaussian sigma in pixels, an array or a model (see
        `psf_stamp`); None fits an elliptical Moffat profile to the
        frame's bright isolated stars (``MoffatPRF``; with fewer
        than five of them a circular Gaussian's sigma, `fit_psf_sigma`).
    sky : `~ccdphot_ext.SkyEstimate`
        Global level, one level for this star, or a 2-D map.
    gain : float or `~astropy.units.Quantity`, optional
        Electrons per data unit, as in `~ccdphot_ext.measure` (default
        ``detector.gain``, else the header's). Without it the variance
        model has no source term (then the weights are the PSF over the
        background variance) and the budget says so.
    detector : `~ccdphot_ext.DetectorParameters`, optional
        Gain and saturation (flag 4) of the detector, as in
        `~ccdphot_ext.measure`; values not given are read from the
        frame's header.
    budget : `~ccdphot_ext.BudgetOptions`, optional
        ``include_sky_mean`` keeps the error of the sky level (default
        True). The weights model the source's photon noise themselves and
        no pixel is partly inside: only the default ``uncertainty_model``
        and ``fractional_variance`` apply.
    size : int, optional
        Stamp side (see `psf_stamp`).
    uncertainty : array_like or `~astropy.nddata.NDUncertainty`, optional
        Per-pixel background 1-sigma map; replaces ``sky.std``.
    mask : array_like of bool, optional
        Bad pixels (zero weight).
    n_iter : int, optional
        Iterations of ``V_i = sigma_i**2 + F P_i / g`` (the first pass uses
        the background variance only), at most 1000; they stop early
        once the flux no longer changes.
    sky_without_apertures : bool, optional
        A whole-frame ``sky`` (`~ccdphot_ext.SkyEstimate.from_image`) is
        measured again without the star's light (the circle holding 90%
        of its PSF stamp) where that light lifts it by more than a tenth
        of its error
        (`~ccdphot_ext.SkyEstimate.without_apertures`, as
        `~ccdphot_ext.photometer` does; the budget's notes say so);
        default True. False: ``sky`` as given (:ref:`sky-apertures`).
    fit_width : bool, optional
        True (default): the width of a Gaussian ``psf_sigma``, of the
        fitted profile or of a model with width parameters (photutils'
        Gaussian PRFs, ``MoffatPRF``) is scaled to the width the frame's
        stars show (fitted to all it finds, faint ones too, jointly), and
        its error is the budget's ``psf_width`` term (the flux's change
        with the width times the width's error), so that a PSF a little
        off the frame's stars biases no flux; a flux the frame cannot
        confirm the width for (no star to measure it on, or measured too
        roughly) is flagged (`~ccdphot_ext.flags.FLAG_PSF_MISMATCH`) and
        warned about (:ref:`optimal-width`). A width the frame's bright
        stars reject (the frame's check) is scaled to the one they show
        and checked again: passing, the fluxes are measured with it,
        unflagged, and a warning says the width given was wrong. False:
        the PSF's width as given (the frame's check still flags one it
        sees off). An array or another model is used as given.

    Returns
    -------
    result : `OptimalMeasurement`
        With the fit's ``chi2`` and ``psf_z`` and the frame's check
        ``frame_psf``; flagged (`~ccdphot_ext.flags.FLAG_PSF_MISMATCH`,
        and a warning) when the star does not match the PSF, or when the
        frame's bright stars show the PSF does not fit them (then every
        star measured with it is). The frame is checked as
        `~ccdphot_ext.measure` checks it, with the same warnings and flags
        (:ref:`optimal-checks`): correlated pixel noise, no source photon
        noise in any error bar, an uncertainty that is not the data's
        noise, and a sky the frame's background shows biased
        (`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`). A data product's
        DQ array (a `CCDData` of `~ccdphot_ext.read_frame`, its ``flags``)
        counts as photometer's does, over the pixels the PSF weights: its
        masked bits are left out (flag 2), a saturation bit of the
        mission sets flag 4, masked or not, and flagged pixels used are
        warned about; stars with a saturation bit are left out of the
        PSF fit and check. Cosmic rays and hot pixels get no weight: those
        sharper than the frame's stars, and those far above the star's
        fitted model (a hit on a bright core); a star with one is flagged
        `~ccdphot_ext.flags.FLAG_SHARP_PIXEL` (1024) and warned about
        (:ref:`the sharp pixels <optimal-sharp>`).

    Raises
    ------
    ValueError
        A bad value, named: ``n_iter`` or ``size`` not a positive whole
        number, a position off the frame, no usable pixel under the PSF or
        a zero background variance there, a ``psf_sigma`` array that is
        not 2-D, not finite or does not sum to a positive number; with
        ``psf_sigma=None``, fewer than three stars to fit the PSF to; a
        frame in a surface brightness (MJy/sr, ...: convert it to a flux
        density per pixel first).
    TypeError
        An argument of the wrong type, named: ``sky`` not a
        `~ccdphot_ext.SkyEstimate`, a ``psf_sigma`` model without
        ``x_0``, ``y_0`` and ``flux`` parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> from ccdphot_ext.photometry.optimal import optimal_extraction
    >>> from ccdphot_ext.datasets.sample import render_stars
    >>> star = render_stars((48, 48), [23.4], [24.2], [5000.0], sigma=1.5)
    >>> img = 100.0 + star + np.random.default_rng(1).normal(0, 5, (48, 48))
    >>> sky = SkyEstimate(100.0, 5.0, 10_000)
    >>> res = optimal_extraction(img, (23.4, 24.2), 1.5, sky)
    >>> bool(abs(res.flux - 5000.0) < 3 * res.flux_err), sorted(res.budget.terms)
    (True, ['psf_width', 'sky', 'sky_mean'])
    >>> bool(abs(res.psf_z) < 3), res.flags
    (True, 0)
    """
    n_iter = iterations(n_iter, 'n_iter')
    detector = detector_with_gain(detector, gain)
    options = _optimal_options(budget)
    frame = as_frame(data, uncertainty=uncertainty, mask=mask)
    check_data_unit(frame.unit, 'data')
    if unit_family(frame.unit) == 'surface brightness':
        # the flux (and the model flux * P) would be a sum of surface
        # brightness over pixels, in no flux unit
        raise ValueError(
            f'data: the frame is a surface brightness ({frame.unit}); '
            'optimal extraction sums the data unit over pixels: convert the '
            'frame to a flux density per pixel first (times the pixel solid '
            'angle, e.g. PIXAR_SR), or use measure or photometer, which '
            'convert their sums')
    check_sky(sky, unit=frame.unit, n_apertures=1)
    detector = detector.resolve(frame.meta, unit=frame.unit)
    warn_saturation(detector, frame.meta, frame.unit)
    _check_frame(frame, sky, detector, options,
                 explicit=uncertainty is not None)
    gain = detector.gain
    # cosmic rays and hot pixels: left out of the weights and of the PSF's
    # fits (a hit of a few thousand counts on one pixel of a faint star's
    # core would dominate its flux), the row flagged
    digest = array_digest(np.asarray(frame.data), frame.mask)  # once
    sharp = _sharp_pixels(frame, sky, detector.saturation, digest)
    given, frame = frame, _without_sharp(frame, sharp)
    fitted = profile = None
    if psf_sigma is None:
        profile = frame_psf_fit(frame, sky, saturation=detector.saturation,
                                gain=gain)
        if profile is None:  # too few bright stars: a Gaussian's width
            fitted = fit_psf_sigma(frame, sky,
                                   saturation=detector.saturation)
            psf_sigma = fitted
        else:
            psf_sigma = profile
    footprint = _psf_footprint(psf_sigma, position, frame.shape, size)
    given_sky = sky
    sky = sky_for_apertures(sky, given, footprint, sky_without_apertures)
    # the star's own inputs are checked before the frame's PSF check
    inputs = _stamp_inputs(frame, position, psf_sigma, sky,
                           saturation=detector.saturation, size=size)
    # checked whatever its source: a Gaussian fitted to stars of another
    # shape (Moffat, elliptical) biases every flux as a wrong width does
    frame_psf = _check_frame_psf(
        frame, psf_sigma, sky, gain=gain,
        saturation=detector.saturation, size=size, n_iter=n_iter,
        digest=digest)
    refit = (_refit_width(frame, psf_sigma, sky, frame_psf, gain=gain,
                          saturation=detector.saturation, size=size,
                          n_iter=n_iter, digest=digest)
             if fit_width else None)
    rejected = None
    if refit is not None:  # the width the frame's stars show, checked
        psf_sigma, rejected, frame_psf = refit
        if fitted is not None:
            fitted = psf_sigma
        elif profile is not None:
            profile = psf_sigma
        footprint = _psf_footprint(psf_sigma, position, frame.shape, size)
        sky = sky_for_apertures(given_sky, given, footprint,
                                sky_without_apertures)
        inputs = _stamp_inputs(frame, position, psf_sigma, sky,
                               saturation=detector.saturation, size=size)
    frame_psf.update(
        model=('moffat' if profile is not None else 'gaussian'
               if fitted is not None else 'given'),
        psf_stars=None if profile is None else profile.n_stars)
    scale = frame_psf['width_scale'] if fit_width else None
    if frame_psf['fits'] is False:
        scale = None  # flagged below, measured with the PSF as it is
    one = _extract(frame, position,
                   psf_sigma if scale is None
                   else _scaled_psf(psf_sigma, scale),  # the stars' width
                   sky, gain=gain, saturation=detector.saturation,
                   size=size, n_iter=n_iter,
                   include_sky_mean=options.include_sky_mean,
                   inputs=inputs if scale is None else None)
    flux, budget, fit = one['flux'], one['budget'], one['fit']
    flags = _sharp_flags(given, sharp, one, sky, detector.saturation,
                         footprint)
    width_doubt = None
    if (fit_width and frame_psf['fits'] is not False
            and _scaled_psf(psf_sigma, 1.0) is not None):
        budget, width_doubt = _width_budget(psf_sigma, one, frame_psf)
    flags |= int(np.bitwise_or.reduce(np.atleast_1d(annulus_flags(sky))))
    correlated = _white_annulus_terms(given_sky, frame)
    # a sky offset d per pixel moves the flux by d * sum(weights): the
    # weights' sum is the pixel count of the sky-bias rules and of the
    # sky_offset term (a whole-frame level's offset from the background
    # here, carried in the error as photometer carries it)
    xy = (float(position[0]), float(position[1]))  # checked: a pair
    n_weighted = float(np.sum(one['w'])) / one['norm']
    budget = _with_sky_offset(budget, sky, frame.shape, xy, n_weighted,
                              options.include_sky_mean)
    flags |= sky_row_checks(sky, given, *xy, n_weighted,
                            error_without_offset(
                                budget.error, budget.variance,
                                budget.terms.get(SKY_OFFSET_TERM)))[0]
    # the frame's DQ under the pixels the PSF weights, as photometer's
    # under an aperture's: a saturation bit flags 4, flagged pixels used
    # are warned about
    dq = dq_stamp(given, one['slices'], one['psf'])
    if dq is not None:
        if dq.saturated[0]:
            flags |= FLAG_SATURATED
        warn_dq(dq, given, None)
    if flags & FLAG_SHARP_PIXEL:
        _warn_sharp(sharp, int(np.count_nonzero(one['hits'])))
    note_sky_remeasured(budget, sky)
    flags |= _say_psf(budget, xy, fitted=fitted, profile=profile,
                      frame_psf=frame_psf, fit=fit, width_doubt=width_doubt,
                      rejected=rejected, correlated=correlated)
    return OptimalMeasurement(
        flux=flux, budget=budget, weights=one['w'] / one['norm'],
        psf=one['psf'], slices=one['slices'], flags=flags, n_iter=n_iter,
        position=xy, sky_pixels=one['level'], fit=fit, psf_sigma=fitted,
        frame_psf=frame_psf)


def _say_psf(budget, xy, *, fitted, profile, frame_psf, fit, width_doubt,
             rejected, correlated):
    """
    The notes, warnings and flags of the PSF a row was measured with.

    Parameters
    ----------
    budget : `~ccdphot_ext.ErrorBudget`
        The row's budget (its notes extended).
    xy : tuple of float
        The star's position.
    fitted : float or None
        The Gaussian sigma fitted when no PSF was given.
    profile : `FramePSF` or None
        The profile fitted when no PSF was given.
    frame_psf : dict
        The frame's check of the PSF measured with.
    fit : dict
        The star's own fit (`_goodness_of_fit`).
    width_doubt : str or None
        Why the frame does not confirm the width for this flux.
    rejected : str or None
        Why the width given was refitted (`_refit_width`).
    correlated : bool
        Whether the row keeps white terms on correlated noise
        (`_white_annulus_terms`).

    Returns
    -------
    flags : int
        `~ccdphot_ext.flags.FLAG_PSF_MISMATCH` and
        `~ccdphot_ext.flags.FLAG_SKY_ANNULUS` as they apply.
    """
    flags = 0
    if fitted is not None:
        budget.notes += (f'PSF: a circular Gaussian of sigma {fitted:.3f} '
                         "pixels fitted to the frame's bright stars (fewer "
                         f'than {MOFFAT_MIN_STARS} of them: too few for its '
                         'shape)',)
    elif profile is not None:
        budget.notes += (f'PSF: {profile.describe()}, fitted to '
                         f"{profile.n_stars} of the frame's bright stars",)
    budget.notes += (f"PSF check on the frame's bright stars: "
                     f"{frame_psf['summary']}",)
    if correlated:
        flags |= FLAG_SKY_ANNULUS
        budget.notes += (ANNULUS_CORRELATED_NOTE,)
        warnings.warn(f'optimal extraction: {ANNULUS_CORRELATED_NOTE}',
                      AstropyUserWarning, stacklevel=3)
    if rejected is not None:
        budget.notes += (f'PSF width refitted: {rejected}',)
        warnings.warn(
            f'optimal extraction: {rejected}; each flux is measured with '
            "the width the frame's stars show (its error in the psf_width "
            'term): give the PSF of this frame', AstropyUserWarning,
            stacklevel=3)
    if frame_psf['fits'] is False:
        flags |= FLAG_PSF_MISMATCH
        warnings.warn(
            f'optimal extraction at ({xy[0]:g}, {xy[1]:g}): '
            f"{frame_psf['summary']}; every star measured with this PSF is "
            'biased (flagged): give the PSF of this frame',
            AstropyUserWarning, stacklevel=3)
    elif fit['mismatch']:
        flags |= FLAG_PSF_MISMATCH
        why = (f"core against wings {fit['psf_z']:+.1f} sigma, chi2 "
               f"{fit['chi2']:.0f} for {fit['dof']} degrees of freedom")
        if fit['untestable']:
            why = ('the PSF lies within a pixel or two, with no wings to '
                   'test it against')
        warnings.warn(
            f'optimal extraction at ({xy[0]:g}, {xy[1]:g}): the star does '
            f'not match the PSF ({why}); its flux is biased (flagged): give '
            'the PSF of this frame', AstropyUserWarning, stacklevel=3)
    elif width_doubt is not None:
        flags |= FLAG_PSF_MISMATCH
        budget.notes += (f'PSF width not confirmed: {width_doubt}',)
        warnings.warn(
            f'optimal extraction: {width_doubt}; the flux rests on a width '
            'the frame does not confirm (flagged): give the PSF of this '
            'frame, or measure the width on brighter stars',
            AstropyUserWarning, stacklevel=3)
    return flags


#: What a row of an annulus sky on a frame whose noise correlates says
#: (`_white_annulus_terms`).
ANNULUS_CORRELATED_NOTE = (
    "the annulus sky's level and the weighted sky noise keep their "
    'white-noise terms on a frame whose noise correlates (photometer '
    "measures the correlation's term on the frame's blank sums of an "
    "aperture less its annulus; the PSF's weights have no such term): "
    'the error may be off by a large factor (flagged 64); measure the '
    'star with photometer, or with measure and noise='
    '(ApertureNoise.from_blank_apertures)')


def _white_annulus_terms(sky, frame):
    """
    Whether the row's sky is an annulus level on a frame whose noise
    correlates, with no uncertainty to take the noise from: photometer
    gives such rows a ``sky_correlation`` term measured for its
    aperture's shape and annulus (`~ccdphot_ext.photometer`); the PSF's
    weights have none, and the white terms the budget keeps may be off by
    a large factor either way (the aperture's own pixels add up
    coherently, the annulus takes the shared slow noise away).

    Parameters
    ----------
    sky : `~ccdphot_ext.SkyEstimate`
        The sky given.
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.

    Returns
    -------
    doubtful : bool
    """
    meta = sky.meta or {}
    return bool(meta.get('annulus_aperture') is not None
                and meta.get('noise_correlation_factor') is not None
                and not sky.is_map and frame.uncertainty is None
                and not frame.variance_arrays)


def _with_sky_offset(budget, sky, shape, xy, n_weighted, include_sky_mean):
    """
    ``budget`` with the ``sky_offset`` term of a whole-frame level.

    Parameters
    ----------
    budget : `~ccdphot_ext.ErrorBudget`
        The flux's budget.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    shape : tuple of int
        The frame's ``(ny, nx)``.
    xy : tuple of float
        The star's position.
    n_weighted : float
        ``sum(w) / sum(w P)``: the flux's change per unit of sky offset.
    include_sky_mean : bool
        Whether the sky level's errors are in the budget (False: no term).

    Returns
    -------
    budget : `~ccdphot_ext.ErrorBudget`
        With the term `~ccdphot_ext.photometry.residual.sky_offset_variance`
        gives (the weights' sum for its pixels) where it is positive, else
        ``budget`` itself.
    """
    if not include_sky_mean:
        return budget
    offset = sky_offset_variance(sky, shape, xy[0], xy[1], n_weighted)
    if offset is None or not float(offset) > 0:
        return budget
    return ErrorBudget(budget.flux,
                       {**budget.terms, SKY_OFFSET_TERM: float(offset)},
                       notes=budget.notes, gain=budget.gain,
                       n_pix=budget.n_pix)


#: `_psf_footprint`: the circle holding this fraction of the PSF stamp.
FOOTPRINT_FRACTION = 0.9


def _psf_footprint(psf, position, shape, size):
    """
    The star's pixels, for the sky level measured without its light.

    Parameters
    ----------
    psf : float, 2-D array or photutils PSF model
        The PSF, as for `psf_stamp`.
    position : tuple of float
        The star's ``(x, y)``.
    shape : tuple of int
        The frame's ``(ny, nx)``.
    size : int or None
        The stamp side (None: the PSF's own).

    Returns
    -------
    footprint : `~photutils.aperture.CircularAperture`
        A circle about ``position`` holding `FOOTPRINT_FRACTION` of the PSF
        stamp, at least a pixel in radius; the level grows it for the
        wings, as it does an aperture.
    """
    from photutils.aperture import CircularAperture
    slc, p, _ = psf_stamp(psf, position, shape, size=size)
    ys, xs = np.mgrid[slc]
    r = np.hypot(xs - position[0], ys - position[1]).ravel()
    order = np.argsort(r, kind='stable')
    held = np.cumsum(np.clip(p.ravel()[order], 0.0, None))
    radius = 1.0
    if held.size and held[-1] > 0:
        i = int(np.searchsorted(held, FOOTPRINT_FRACTION * held[-1]))
        radius = max(float(r[order][min(i, r.size - 1)]), 1.0)
    return CircularAperture((float(position[0]), float(position[1])),
                            radius)


def _check_frame(frame, sky, detector, options, *, explicit):
    """
    The frame-level checks run before the frame's noise is trusted, as
    `~ccdphot_ext.measure` and `~ccdphot_ext.photometer` run them.

    Each warns (`~astropy.utils.exceptions.AstropyUserWarning`): pixel noise
    correlated (per-pixel variances hold no covariance), no source photon
    noise in any error bar (a rate or a flux density without a gain), an
    uncertainty that is not the data's noise, and an uncertainty map that
    holds the sources' photon noise.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    detector : `~ccdphot_ext.DetectorParameters`
        Resolved against the frame's header.
    options : `~ccdphot_ext.BudgetOptions`
        The budget options.
    explicit : bool
        Whether the uncertainty was given as ``uncertainty=`` (rather than
        carried by the frame).
    """
    warn_if_correlated(frame, cure=(
        'Optimal extraction takes no noise model: measure the star with '
        'measure or photometer and noise= '
        '(ApertureNoise.from_blank_apertures) for an error that holds it'))
    warn_unknown_source_term(frame, detector, options.uncertainty_model)
    check_uncertainty_scale(frame, sky, explicit=explicit)
    found = map_holds_photon_noise(frame, detector.gain)
    if found is not None:
        warnings.warn(
            "uncertainty check: the uncertainty map holds the sources' "
            f'photon noise (its variance rises with the signal by '
            f'{found[0]:.3g} / gain, {found[1]} pixel pairs): optimal '
            'extraction takes it as the background noise and adds the '
            "star's photon noise from the gain again, so its errors are "
            'too large; give a map of the background noise alone, or '
            "measure with photometer (which takes such a map as the total "
            'error)', AstropyUserWarning, stacklevel=3)


#: The last few frames' sharp pixels (`_sharp_pixels`), by their content.
_SHARP = OrderedDict()


def _sharp_pixels(frame, sky, saturation, digest):
    """
    The frame's pixels sharper than its stars (cosmic rays, hot pixels),
    found once a frame.

    `~ccdphot_ext.background.outliers.SharpPixels` judges them as for
    `~ccdphot_ext.photometer`'s flag 1024 (`~ccdphot_ext.flags.
    FLAG_SHARP_PIXEL`), against the same pixel noise
    (`~ccdphot_ext.background.outliers.judging_noise`).

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    saturation : float or None
        Pixels at or above it are not judged (flag 4 says so).
    digest : bytes
        The digest of the frame's data and mask.

    Returns
    -------
    sharp : tuple or None
        The `~ccdphot_ext.background.outliers.SharpPixels` and the frame's
        mask with them; None when there is none.
    """
    std = sky.pixel_std
    key = (digest, std, saturation)
    if key not in _SHARP:
        found = SharpPixels.from_image(
            frame.data, unusable=frame.mask,
            sigma=judging_noise(frame.data, frame.mask, sky.std),
            saturation=saturation)
        _SHARP[key] = None if not found.count else (
            found, found.mask if frame.mask is None
            else frame.mask | found.mask)  # the frame's mask with them
        while len(_SHARP) > _FRAME_CHECKS_KEPT:
            _SHARP.popitem(last=False)
    _SHARP.move_to_end(key)
    return _SHARP[key]


def _without_sharp(frame, sharp):
    """``frame`` with its sharp pixels (`_sharp_pixels`) masked (itself
    when none)."""
    return frame if sharp is None else dataclasses.replace(frame,
                                                           mask=sharp[1])


def _sharp_flags(frame, sharp, one, sky, saturation, footprint):
    """
    The flags of a star measured without the frame's sharp pixels.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame as given (its sharp pixels not masked).
    sharp : tuple or None
        `_sharp_pixels`.
    one : dict
        `_extract`'s result on the frame without them.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    saturation : float or None
        As for `_stamp`.
    footprint : `~photutils.aperture.CircularAperture`
        The star's pixels (`_psf_footprint`).

    Returns
    -------
    flags : int
        ``one``'s flags with `~ccdphot_ext.flags.FLAG_SHARP_PIXEL` where
        a sharp pixel lies in the star's footprint (as photometer's
        aperture would hold it; left out of the weights, as those beyond
        it are) or a hit on the star's model anywhere in its stamp
        (`_without_hits`: light the weights would have summed), and
        `~ccdphot_ext.flags.FLAG_BAD_PIXELS` only where the frame's own
        bad pixels are.
    """
    flags = one['flags']
    if one['hits'].any():  # far above the star's model: hits on it
        flags |= FLAG_SHARP_PIXEL
    if sharp is None:
        return flags
    if sharp[0].rows(footprint, frame.shape)[0]:
        flags |= FLAG_SHARP_PIXEL
    if flags & FLAG_BAD_PIXELS:  # the sharp pixels' mask, or the frame's?
        std = _sky_pixels(sky, one['slices'], frame.shape)[1]
        own = _stamp(frame, one['slices'], one['psf'], std, saturation,
                     one['position'])[3]
        flags &= ~FLAG_BAD_PIXELS | own
    return flags


def _warn_sharp(sharp, on_star):
    """
    Warn of the sharp pixels (`_sharp_pixels`) and hits
    (`_without_hits`) of a star flagged 1024.

    Parameters
    ----------
    sharp : tuple or None
        `_sharp_pixels`.
    on_star : int
        The hits far above the star's model in its stamp.
    """
    found = '' if sharp is None else f', {sharp[0].count} on the frame'
    above = '' if not on_star else f"; {on_star} far above this star's model"
    warnings.warn(
        "optimal extraction: pixels sharper than the frame's stars "
        f'(cosmic rays or hot pixels{found}{above}) '
        'lie on some stars: left out of their weights (flag 1024), as '
        'from every weight; clean the frame (e.g. '
        'ccdproc.cosmicray_lacosmic) or pass a mask of them',
        AstropyUserWarning, stacklevel=3)


def _stamp_inputs(frame, position, psf, sky, *, saturation, size):
    """
    A star's stamp, its sky and its usable pixels: `_extract`'s inputs,
    checked (`optimal_extraction` checks them before the frame's).

    Parameters
    ----------
    frame, position, psf, sky, saturation, size
        As for `_extract`.

    Returns
    -------
    inputs : tuple
        ``slices``, ``psf`` and ``truncated`` (`psf_stamp`), ``level``,
        ``std``, ``error_on_mean`` and ``n_sky`` (`_sky_pixels`), ``d``,
        ``var_bg``, ``use`` and ``flags`` (`_stamp`).

    Raises
    ------
    ValueError
        A position off the frame, a sky map of another shape, no usable
        pixel under the PSF or no positive background variance there.
    """
    slc, p, truncated = psf_stamp(psf, position, frame.shape, size=size)
    level, std, error_on_mean, n_sky = _sky_pixels(sky, slc, frame.shape)
    d, var_bg, use, flags = _stamp(frame, slc, p, std, saturation, position)
    return (slc, p, truncated, level, std, error_on_mean, n_sky, d, var_bg,
            use, flags)


def _extract(frame, position, psf, sky, *, gain, saturation, size, n_iter,
             include_sky_mean, inputs=None, hits_need_fit=True):
    """
    One star's optimal extraction on a checked frame.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    position : tuple of float
        The star's ``(x, y)``.
    psf : float, 2-D array or photutils PSF model
        The PSF, as for `psf_stamp`.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    gain : float or None
        Electrons per data unit (None: no source term).
    saturation : float or None
        Pixels at or above it flag the star.
    size : int or None
        The stamp side (None: the PSF's own).
    n_iter : int
        Passes of the weights after the first.
    include_sky_mean : bool
        Whether the budget has the sky level's error term.
    inputs : tuple, optional
        `_stamp_inputs`' result for these arguments, when already made.
    hits_need_fit : bool, optional
        True (default): the hits (`_without_hits`) are left out only where
        the rest of the star then matches the PSF (`_goodness_of_fit`);
        otherwise the star is measured with them (its fit flags it).
        False: left out whatever the fit (`_star_hits`, before the
        star's position is fitted again without them).

    Returns
    -------
    result : dict
        ``flux``, ``budget`` (`~ccdphot_ext.ErrorBudget`), ``fit`` (as
        `_goodness_of_fit`), ``flags`` (all but the frame's PSF check),
        the weights ``w`` and their normalisation ``norm``, the stamp's
        ``psf`` and ``slices``, the sky ``level`` and the stamp's ``hits``
        (`_without_hits`).

    Raises
    ------
    ValueError
        If no pixel under the PSF is usable, or the background variance is
        not positive there.
    """
    if inputs is None:
        inputs = _stamp_inputs(frame, position, psf, sky,
                               saturation=saturation, size=size)
    slc, p, truncated, level, std, error_on_mean, n_sky, d, var_bg, use, \
        flags = inputs
    flags |= FLAG_TRUNCATED if truncated else 0
    if n_sky is not None and sky_doubts(np.asarray(level), std, n_sky)[0]:
        flags |= FLAG_SKY_ANNULUS  # a level from too few pixels
    n_sky = None if frame.uncertainty is not None else n_sky
    flux, w, norm, kept, hits = _without_hits(
        np.where(use, d - level, 0.0), p, var_bg, use, gain, n_iter)
    fit = _goodness_of_fit(np.where(kept, d - level, 0.0),
                           np.where(kept, p, 0.0), w, flux, kept,
                           error_on_mean, np.where(kept, var_bg, 0.0), n_sky)
    if hits.any() and fit['mismatch'] and hits_need_fit:
        # the rest of the star does not match the PSF either: no hit
        # judged against a model it does not follow (flagged 256 as it is)
        kept, hits = use, np.zeros_like(hits)
        flux, w, norm = _iterate_weights(
            np.where(use, d - level, 0.0), np.where(use, p, 0.0),
            np.where(use, var_bg, 1.0), gain, n_iter)
        fit = _goodness_of_fit(np.where(use, d - level, 0.0),
                               np.where(use, p, 0.0), w, flux, use,
                               error_on_mean, np.where(use, var_bg, 0.0),
                               n_sky)
    budget = _optimal_budget(flux, w, norm, np.where(kept, p, 0.0),
                             np.where(kept, var_bg, 0.0), error_on_mean,
                             gain, include_sky_mean)
    if flux <= 0:
        flags |= FLAG_NONPOSITIVE_FLUX
    return {'flux': flux, 'budget': budget, 'fit': fit, 'flags': flags,
            'w': w, 'norm': norm, 'psf': p, 'slices': slc, 'level': level,
            'position': (float(position[0]), float(position[1])),
            'hits': hits}


#: A pixel of a star's stamp, on its light (the model at least the
#: background's noise), is a hit (a cosmic ray, a hot pixel) where
#: it stands at least `HIT_NSIGMA` of its model noise above the star's
#: model, and as far above the median of its 8 neighbours' such
#: residuals, those holding less than `HIT_SPREAD` of the share a star
#: centred on it would put there (the PSF's own: a smooth misfit of the
#: PSF lifts the neighbours with the pixel); at most `HIT_PASSES` pixels
#: a star, the most significant first.
HIT_NSIGMA = 5.0
HIT_SPREAD = 0.5
HIT_PASSES = 4


def _without_hits(resid, p, var_bg, use, gain, n_iter):
    """
    A star's flux and weights without the pixels far above its model.

    The frame's sharp pixels (`_sharp_pixels`) are judged against their
    neighbours, and a bright star's core hides a hit there: its
    neighbours hold the star's light. Against the star's fitted model
    ``F P`` it stands out: a pixel where the model is at least the
    background's noise, whose residual is at least
    `HIT_NSIGMA` of the model's own noise ``sqrt(V)`` (``V = var_bg +
    F P / g``, the star's photon noise in it) above the model, and as
    many above the median residual of its 8 neighbours (in the same
    unit), those holding less than `HIT_SPREAD` times the share of the
    pixel's that a star centred on it puts into them (the median of the
    PSF's 8 neighbours of its peak over the peak), is a hit: left out of
    the weights and the flux fitted again, pixel by pixel
    (`HIT_PASSES`); `_extract` keeps them left out where the rest of the
    star then matches the PSF. Without a gain the model's noise is unknown (a
    bright core's photon noise is in no variance) and nothing is judged.

    Parameters
    ----------
    resid : `~numpy.ndarray`
        The stamp's data less the sky level (0 where not used).
    p : `~numpy.ndarray`
        The PSF on the stamp.
    var_bg : `~numpy.ndarray`
        The background variance.
    use : `~numpy.ndarray` of bool
        The usable pixels.
    gain : float or None
        Electrons per data unit.
    n_iter : int
        As for `_iterate_weights`.

    Returns
    -------
    flux, w, norm
        As `_iterate_weights` returns them, without the hits.
    use : `~numpy.ndarray` of bool
        The pixels used (``use`` less the hits).
    hits : `~numpy.ndarray` of bool
        The pixels left out.
    """
    var = np.where(use, var_bg, 1.0)
    flux, w, norm = _iterate_weights(resid, np.where(use, p, 0.0), var,
                                     gain, n_iter)
    hits = np.zeros(use.shape, dtype=bool)
    if gain is None or p.ndim != 2 or min(p.shape) < 3:
        return flux, w, norm, use, hits
    spread = _peak_spread(p)
    for _ in range(HIT_PASSES):
        hit = _hit_pixel(resid, np.where(use, p, 0.0), flux, var, use,
                         gain, spread)
        if hit is None:
            break
        use = use.copy()
        use[hit] = False
        hits[hit] = True
        resid = np.where(use, resid, 0.0)
        flux, w, norm = _iterate_weights(resid, np.where(use, p, 0.0),
                                         var, gain, n_iter)
    return flux, w, norm, use, hits


def _neighbours(values, fill):
    """The 8 neighbours of each pixel of ``values`` (``fill`` beyond
    its edge), stacked on a first axis."""
    padded = np.pad(values, 1, constant_values=fill)
    ny, nx = values.shape
    return np.stack([padded[1 + dy:1 + dy + ny, 1 + dx:1 + dx + nx]
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                     if dy or dx])


def _peak_spread(p):
    """The median of the PSF's 8 neighbours of its peak over the peak:
    the share a star centred on a pixel puts into each neighbour."""
    iy, ix = np.unravel_index(int(np.argmax(p)), p.shape)
    around = _neighbours(p, np.nan)[:, iy, ix]
    peak = float(p[iy, ix])
    if not peak > 0 or not np.isfinite(around).any():
        return 0.0
    return float(np.nanmedian(around)) / peak


def _hit_pixel(resid, pu, flux, var, use, gain, spread):
    """
    The pixel most significantly above the star's model that is a hit
    (`_without_hits`), or None.
    """
    model = flux * pu
    r = np.where(use, resid - model, np.nan)
    z = r / np.sqrt(var + np.clip(model, 0.0, None) / gain)
    # on the star's light (beyond it the frame's sharp pixels judge)
    high = use & (z > HIT_NSIGMA) & (model * model >= var)
    if not high.any():
        return None
    with warnings.catch_warnings():  # a pixel without used neighbours
        warnings.simplefilter('ignore', RuntimeWarning)
        z_around = np.nanmedian(_neighbours(z, np.nan), axis=0)
        r_around = np.nanmedian(_neighbours(r, np.nan), axis=0)
    z_around = np.where(np.isfinite(z_around), z_around, 0.0)
    r_around = np.where(np.isfinite(r_around), r_around, 0.0)
    high &= (z - z_around > HIT_NSIGMA) & (r_around < HIT_SPREAD * spread
                                           * r)
    if not high.any():
        return None
    return np.unravel_index(int(np.nanargmax(np.where(high, z, np.nan))),
                            z.shape)


#: Bright stars for `fit_psf_sigma`: peak signal-to-noise at least this,
#: no other peak above `NEIGHBOUR_SNR` within `ISOLATION` pixels.
FIT_MIN_SNR = 15.0
NEIGHBOUR_SNR = 5.0
ISOLATION = 10
#: At most this many of the brightest such stars are fitted.
FIT_N_STARS = 30
#: The frame's PSF check: at least this many bright stars to tell, and the
#: median of their ``psf_z`` beyond this many of its errors says the PSF
#: does not fit the frame.
FRAME_MIN_STARS = 3
FRAME_Z_LIMIT = 5.0
#: The frame's PSF check also fails when as many of its bright stars are
#: flagged by their own fit (chi-square or core against wings) would
#: happen with less than `FRAME_FLAG_P_LIMIT` chance were each flagged
#: with `FRAME_STAR_FLAG_RATE` (above the rate for stars of the PSF's
#: shape).
FRAME_STAR_FLAG_RATE = 0.02
FRAME_FLAG_P_LIMIT = 1e-3


def fit_psf_sigma(data, sky, *, saturation=None):
    """
    The sigma of a circular Gaussian PSF fitted to a frame's bright stars.

    Peaks at least `FIT_MIN_SNR` times the sky noise above the sky, with
    no other peak above `NEIGHBOUR_SNR` within `ISOLATION` pixels, off the
    frame's edge and not saturated (no pixel at or above ``saturation``,
    no saturation bit of the frame's DQ within `ISOLATION` pixels), are
    fitted, in units of the sky noise (the `FIT_N_STARS`
    brightest) with photutils' `~photutils.psf.fit_fwhm`, twice (the
    second time on a fitting box of +-3 sigma of the first result); the
    median of their widths is returned.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The frame.
    sky : `~ccdphot_ext.SkyEstimate`
        Its sky: one level or a 2-D map (levels per aperture: their
        median).
    saturation : float, optional
        Stars with a pixel at or above it are left out.

    Returns
    -------
    sigma : float
        In pixels.

    Raises
    ------
    ValueError
        When fewer than three stars qualify.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> from ccdphot_ext.datasets.sample import render_stars
    >>> from ccdphot_ext.photometry.optimal import fit_psf_sigma
    >>> rng = np.random.default_rng(2)
    >>> x, y = rng.uniform(20, 180, (2, 12))
    >>> img = render_stars((200, 200), x, y, np.full(12, 2e4), sigma=1.7)
    >>> img += rng.normal(100.0, 5.0, img.shape)
    >>> sigma = fit_psf_sigma(img, SkyEstimate(100.0, 5.0, img.size))
    >>> print(f'{sigma:.2f}')
    1.70
    """
    from photutils.psf import fit_fwhm

    frame = as_frame(data)
    saturation = positive_scalar(saturation, 'saturation')
    xy, resid, bad = _bright_stars(frame, sky, saturation)
    if len(xy) < 3:
        raise ValueError(
            'psf_sigma: none given, and the frame has fewer than three '
            f'bright (peak above {FIT_MIN_SNR:g} sky sigma), isolated, '
            'unsaturated stars to fit one; give the PSF')
    # in units of the sky noise: the fitter's tolerances are absolute, and
    # on data of tiny numbers (a flux density per pixel in MJy, 1e-13) it
    # stopped at its first guess
    std = sky.pixel_std
    sigma = 1.0
    for fit_shape in (9, None):
        if fit_shape is None:
            fit_shape = 2 * max(int(math.ceil(3.0 * sigma)), 2) + 1
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            fwhm = np.asarray(fit_fwhm(np.where(bad, np.nan, resid / std),
                                       xypos=xy, fit_shape=fit_shape,
                                       fwhm=sigma * _FWHM_PER_SIGMA),
                              dtype=float)
        fwhm = fwhm[np.isfinite(fwhm) & (fwhm > 0)]
        if fwhm.size < 3:
            raise ValueError('psf_sigma: none given, and the PSF fit to '
                             "the frame's bright stars failed; give the "
                             'PSF')
        sigma = float(np.median(fwhm)) / _FWHM_PER_SIGMA
    return sigma


#: The last few frame PSF checks, by the frame's content and the
#: arguments: a frame measured star by star is checked once.
_FRAME_CHECKS = OrderedDict()
_FRAME_CHECKS_KEPT = 4


def _check_frame_psf(frame, psf, sky, *, gain, saturation, size, n_iter,
                     digest):
    """
    `_frame_psf_check`, remembered for the last few frames.

    A frame measured star by star is checked once: the result is kept by
    the frame's content (so a frame changed in place is checked again) and
    the arguments; a PSF model by its class and parameters when it is an
    analytic profile of a width (`WIDTH_PARAMETERS`), any other model
    (an image of the PSF) is checked each time.

    Parameters
    ----------
    frame, psf, sky, gain, saturation, size, n_iter
        As for `_frame_psf_check`.
    digest : bytes
        The digest of the frame's data and mask as given (its sharp
        pixels, masked in ``frame``, follow from them, the sky's std and
        ``saturation``): hashed once a call.

    Returns
    -------
    check : dict
        As `_frame_psf_check` returns it (a copy).
    """
    if isinstance(psf, Model) and _scaled_psf(psf, 1.0) is None:
        return _frame_psf_check(frame, psf, sky, gain=gain,
                                saturation=saturation, size=size,
                                n_iter=n_iter)  # no content key
    uncertainty = (None if frame.uncertainty is None
                   else np.asarray(frame.uncertainty, dtype=float))
    if isinstance(psf, Model):  # its class and parameters
        content = np.frombuffer(type(psf).__qualname__.encode(), np.uint8)
        content = np.concatenate([content.astype(float),
                                  np.asarray(psf.parameters, dtype=float)])
    else:
        content = (psf.content if isinstance(psf, FramePSF)
                   else np.asarray(psf, dtype=float))
    key = (digest, array_digest(
        uncertainty, saturated_pixels(frame), content,
        *(np.asarray(np.nan if v is None else v, dtype=float)
          for v in (sky.value, sky.std, sky.n_pix, sky.error_on_mean))),
           gain, saturation, size, n_iter)
    if key not in _FRAME_CHECKS:
        _FRAME_CHECKS[key] = _frame_psf_check(
            frame, psf, sky, gain=gain, saturation=saturation, size=size,
            n_iter=n_iter)
        while len(_FRAME_CHECKS) > _FRAME_CHECKS_KEPT:
            _FRAME_CHECKS.popitem(last=False)
    _FRAME_CHECKS.move_to_end(key)
    return dict(_FRAME_CHECKS[key])


def _frame_psf_check(frame, psf, sky, *, gain, saturation, size, n_iter):
    """
    Whether ``psf`` fits the frame's bright stars.

    The stars `fit_psf_sigma` would fit (peaks above `FIT_MIN_SNR` sky
    sigma, isolated, unsaturated), at their centroids, are extracted with
    ``psf``; the median of their `psf_z` over its error ``1.2533 /
    sqrt(n)`` (a unit normal for stars of the PSF's shape) beyond
    `FRAME_Z_LIMIT` says the PSF does not fit the frame. A PSF of the
    wrong width biases every star weighted by it, the faint ones too, whose
    own core-against-wings test has little power: the bright stars tell.
    The median keeps one odd star (a double, a cosmic ray) from deciding.
    It sees a wrong width, not a wrong shape (a circular Gaussian on
    Moffat stars has a median ``psf_z`` near 0): the PSF also fails when
    as many of the stars fail their own fit (chi-square or ``psf_z``)
    would have less than `FRAME_FLAG_P_LIMIT` chance were each flagged
    with `FRAME_STAR_FLAG_RATE`.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    psf : float, 2-D array or photutils PSF model
        The PSF, as for `psf_stamp`.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    gain, saturation, size, n_iter
        As for `_extract`.

    Returns
    -------
    check : dict
        ``n_stars`` (the stars tested), ``psf_z`` (their median), ``z`` (that
        median over its error), ``n_mismatch`` (those failing their own
        fit), ``fits`` (True, False, or None with fewer
        than `FRAME_MIN_STARS` stars), ``width_scale`` and
        ``width_scale_err`` (the stars' width in units of the PSF's, as
        `_width_scale` fits it, and its error; None when it cannot) and a
        ``summary`` sentence.
    """
    from scipy.stats import binom  # slow to import

    xy, resid, bad = _bright_stars(frame, sky, saturation)
    xy, frame = _star_hits(
        frame, psf, sky, [_fit_position(resid, bad, psf, x0, y0, size)
                          for x0, y0 in xy],
        resid, bad, gain=gain, saturation=saturation, size=size)
    psf_z = []
    n_mismatch = 0
    for x, y in xy:
        try:
            one = _extract(frame, (x, y), psf, sky, gain=gain,
                           saturation=saturation, size=size, n_iter=n_iter,
                           include_sky_mean=True)
        except ValueError:  # no usable pixel: not a star to test with
            continue
        if one['flags'] == 0 and math.isfinite(one['fit']['psf_z']):
            psf_z.append(one['fit']['psf_z'])
            n_mismatch += bool(one['fit']['mismatch'])
    n = len(psf_z)
    width = _frame_width(frame, psf, sky, gain=gain, saturation=saturation,
                         size=size)
    scale = scale_err = None
    shape_z, n_width = math.nan, 0
    said = ''
    if width is not None:
        scale, scale_err = width['scale'], width['error']
        shape_z, n_width = width['shape_z'], width['n_stars']
        said = (f"; the width of its {n_width} stars (filtered "
                f'signal-to-noise above {WIDTH_MIN_SNR:g}) is {scale:.3f} '
                f"+- {scale_err:.3f} times the PSF's (each flux measured "
                'with it, its error in the psf_width term)')
    shape_fits = not abs(shape_z) > SHAPE_Z_LIMIT
    keys = {'width_scale': scale, 'width_scale_err': scale_err,
            'width_stars': n_width, 'shape_z': shape_z}
    if not shape_fits:
        return {'n_stars': n, 'psf_z': math.nan, 'z': math.nan,
                'n_mismatch': n_mismatch, 'fits': False, **keys,
                'summary': (
                    "the PSF does not fit the frame's stars: the profile "
                    f'of its {n_width} stars (filtered signal-to-noise '
                    f'above {WIDTH_MIN_SNR:g}) differs from the PSF\'s by '
                    f'{shape_z:+.1f} sigma (their wings are '
                    + ('heavier' if shape_z > 0 else 'lighter')
                    + ' than the PSF\'s at the width they show): its '
                    'shape is not theirs')}
    if n < FRAME_MIN_STARS:
        return {'n_stars': n, 'psf_z': math.nan, 'z': math.nan,
                'n_mismatch': n_mismatch, 'fits': None, **keys,
                'summary': (
                    f'{n} bright (peak above {FIT_MIN_SNR:g} sky sigma), '
                    f'isolated, unflagged stars, fewer than '
                    f'{FRAME_MIN_STARS}: the frame cannot tell whether the '
                    + ("PSF fits; only each star's own fit checks it, "
                       "and the fluxes rest on the PSF's width as given"
                       if width is None else "PSF's shape fits" + said))}
    median = float(np.median(psf_z))
    z = median / (MEDIAN_EFFICIENCY / math.sqrt(n))
    width_fits = abs(z) <= FRAME_Z_LIMIT
    # as many of them flagged by their own fit would be this unlikely for
    # stars of the PSF's shape (flagged at most FRAME_STAR_FLAG_RATE each)
    p_mismatch = float(binom.sf(n_mismatch - 1, n, FRAME_STAR_FLAG_RATE))
    shape_fits = p_mismatch >= FRAME_FLAG_P_LIMIT
    fits = bool(width_fits and shape_fits)
    summary = (f'its {n} bright stars have a median core-against-wings '
               f'psf_z of {median:+.1f} ({z:+.1f} sigma) and {n_mismatch} '
               'of them do not match it by their own fit')
    if fits:
        summary += ': the PSF fits them' + said
    elif not width_fits:
        summary = ("the PSF does not fit the frame's stars: " + summary
                   + ', the PSF is too ' + ('narrow' if z < 0 else 'wide')
                   + _width_error(frame, psf, sky, saturation))
    else:
        summary = ("the PSF does not fit the frame's stars: " + summary
                   + ' (chance for stars of its shape '
                   f'{p_mismatch:.1e}): its shape is not theirs')
    return {'n_stars': n, 'psf_z': median, 'z': z, 'n_mismatch': n_mismatch,
            'fits': fits, **keys, 'summary': summary}


def _refit_width(frame, psf, sky, check, *, gain, saturation, size, n_iter,
                 digest):
    """
    The PSF at the width the frame's stars show, where its own width
    fails the frame's check.

    A PSF whose width the frame's bright stars reject (`_frame_psf_check`:
    their median ``psf_z``, or as many of them failing their own fit) but
    whose profile they do not (``shape_z`` within `SHAPE_Z_LIMIT`) is
    scaled to the width its stars were fitted with (``width_scale``) and
    checked again: kept when that check passes, so that a width given
    wrong is measured with the frame's (and its error carried as the
    ``psf_width`` term) rather than flagged.

    Parameters
    ----------
    frame, psf, sky, gain, saturation, size, n_iter, digest
        As for `_check_frame_psf`.
    check : dict
        The frame's check of ``psf`` (`_check_frame_psf`).

    Returns
    -------
    refit : tuple or None
        The scaled PSF, a sentence saying what was rejected and the
        frame's check of the scaled PSF (``'given_width_scale'`` and
        ``'given_summary'`` added: the width fitted against the PSF given
        and that check's summary); None where the check passed, the PSF
        has no width to scale, the profile is not the stars' or the scaled
        PSF fails too.
    """
    scale = check['width_scale']
    if (check['fits'] is not False or scale is None
            or abs(check['shape_z']) > SHAPE_Z_LIMIT):
        return None
    scaled = _scaled_psf(psf, scale)
    if scaled is None:
        return None
    again = _check_frame_psf(frame, scaled, sky, gain=gain,
                             saturation=saturation, size=size,
                             n_iter=n_iter, digest=digest)
    if again['fits'] is not True:
        return None
    again.update(given_width_scale=scale,
                 given_summary=check['summary'])
    said = (f"the PSF's width as given does not fit the frame ("
            f"{check['summary']}); its {check['width_stars']} stars show "
            f"{scale:.3f} +- {check['width_scale_err']:.3f} times it, and "
            'the PSF at that width fits them')
    return scaled, said, again


def _star_hits(frame, psf, sky, xy, resid, bad, *, gain, saturation,
               size):
    """
    The PSF's test stars without the hits on their cores.

    A hit on a bright star's core (`_without_hits`) pulls its fitted
    position and would read it narrow or not the PSF's shape: each star
    is extracted at its position, and where pixels stand far above its
    model its position is fitted again without them; they are masked
    where the star, extracted there, still shows them and matches the
    PSF without them (a PSF of the wrong width, whose misfit peaks in
    the core, is left for the check to see).

    Parameters
    ----------
    frame, psf, sky
        As for `_frame_psf_check`.
    xy : list of tuple of float
        The stars' fitted ``(x, y)``.
    resid, bad : `~numpy.ndarray`
        The sky-subtracted frame and its pixels to leave out
        (`_bright_stars`).
    gain, saturation, size
        As for `_extract`.

    Returns
    -------
    xy : list of tuple of float
        The positions, fitted again where a star had hits.
    frame : `~ccdphot_ext.utils.inputs.Frame`
        ``frame`` with the hits masked (itself when none).
    """
    if gain is None:  # no model noise to judge a hit by
        return xy, frame
    mask = None
    out = []
    for x, y in xy:
        try:
            one = _extract(frame, (x, y), psf, sky, gain=gain,
                           saturation=saturation, size=size, n_iter=3,
                           include_sky_mean=False, hits_need_fit=False)
            if one['hits'].any():
                trial = bad.copy()
                trial[one['slices']] |= one['hits']
                xy_hit = _fit_position(resid, trial, psf, x, y, size)
                one = _extract(frame, xy_hit, psf, sky, gain=gain,
                               saturation=saturation, size=size, n_iter=3,
                               include_sky_mean=False)
        except ValueError:  # no usable pixel: left to the callers
            out.append((x, y))
            continue
        if one['hits'].any():  # seen again, and the rest fits the PSF
            if mask is None:
                mask = bad.copy()
            mask[one['slices']] |= one['hits']
            x, y = _fit_position(resid, mask, psf, x, y, size)
        out.append((x, y))
    if mask is None:
        return out, frame
    hits = mask & ~bad
    return out, dataclasses.replace(
        frame, mask=hits if frame.mask is None else frame.mask | hits)


#: A sky level measured on less than this share of the frame's pixels is
#: a local one (an annulus): the width's fit takes the frame's own noise.
WHOLE_FRAME_SHARE = 0.25


def _frame_noise(frame):
    """
    The frame's pixel noise, from the differences of neighbouring pixels.

    The median absolute deviation of the differences along x of pixels
    both usable, over ``sqrt(2)``: blind to the level and its gradients,
    little moved by the stars (a few of the pixels).

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.

    Returns
    -------
    std : float
        The per-pixel standard deviation (NaN without two usable
        neighbours).
    """
    data = np.asarray(frame.data, dtype=float)
    bad = ~np.isfinite(data)
    if frame.mask is not None:
        bad |= frame.mask
    step, left_out, terms = lagged_differences(data, bad)
    diff = step[~left_out]
    if diff.size < 2:
        return math.nan
    return float(difference_noise(diff, terms))


#: The last few width fits, by the frame's content, the PSF and the
#: sky's noise (not its level: each star's pedestal is fitted).
_WIDTH_FITS = OrderedDict()


def _frame_width(frame, psf, sky, *, gain, saturation, size):
    """
    `_width_scale` on `_width_stars`, remembered for the last few frames.

    The fit owes nothing to the sky's level (each star's pedestal is
    fitted beside it, the stars found with a filter of zero sum), so a
    frame measured star by star with each star's own level (an annulus)
    is fitted once: the stars are found and placed against the frame's
    median, the weights from the sky's noise to two digits (a map: the
    map itself); a level measured on less than `WHOLE_FRAME_SHARE` of the
    frame (an annulus, whose scatter differs from star to star) gives
    way to the frame's own noise (`_frame_noise`).

    Parameters
    ----------
    frame, psf, sky, gain, saturation, size
        As for `_frame_psf_check`.

    Returns
    -------
    width : dict or None
        As `_width_scale` returns it.
    """
    std = float(f'{sky.pixel_std:.2g}')
    local = (not sky.is_map and sky.n_pix is not None
             and float(np.nanmax(np.atleast_1d(sky.n_pix)))
             < WHOLE_FRAME_SHARE * frame.data.size)
    if local:  # an annulus' scatter: the frame's own noise, once a frame
        std = -1.0
    elif not sky.is_map and std > 0:
        sky = SkyEstimate(float(np.nanmedian(np.asarray(frame.data,
                                                        dtype=float))),
                          std, 10 ** 9)
    if isinstance(psf, Model):
        content = np.concatenate([np.frombuffer(
            type(psf).__qualname__.encode(), np.uint8).astype(float),
            np.asarray(psf.parameters, dtype=float)])
    else:
        content = (psf.content if isinstance(psf, FramePSF)
                   else np.asarray(psf, dtype=float))
    uncertainty = (None if frame.uncertainty is None
                   else np.asarray(frame.uncertainty, dtype=float))
    key = (array_digest(np.asarray(frame.data), frame.mask, uncertainty,
                        saturated_pixels(frame), content,
                        *(np.asarray(v, dtype=float)
                          for v in ((std,) if local
                                    else (sky.value, sky.std)))),
           gain, saturation, size)
    if key not in _WIDTH_FITS:
        if local:
            sky = SkyEstimate(float(np.nanmedian(np.asarray(
                frame.data, dtype=float))), _frame_noise(frame), 10 ** 9)
        _, resid, bad = _bright_stars(frame, sky, saturation)
        xy, clean = _star_hits(
            frame, psf, sky,
            _width_stars(frame, psf, sky, saturation, size, resid, bad),
            resid, bad, gain=gain, saturation=saturation, size=size)
        _WIDTH_FITS[key] = _width_scale(clean, psf, sky, xy, gain=gain,
                                        saturation=saturation, size=size)
        while len(_WIDTH_FITS) > _FRAME_CHECKS_KEPT:
            _WIDTH_FITS.popitem(last=False)
    _WIDTH_FITS.move_to_end(key)
    width = _WIDTH_FITS[key]
    return None if width is None else dict(width)


#: The PSF's width fitted to the frame's bright stars (`_width_scale`):
#: the relative step of the derivatives by the width, the Gauss-Newton
#: passes, and the bounds of the scale.
WIDTH_STEP = 0.02
WIDTH_PASSES = 4
WIDTH_SCALE_BOUNDS = (0.5, 2.0)
#: The stars the width is fitted to: peaks of the frame filtered with the
#: PSF at least this many times the filter's noise (`_width_stars`), at
#: most `WIDTH_N_STARS` of them, the brightest.
WIDTH_MIN_SNR = 5.0
WIDTH_N_STARS = 200
#: The width, the flux's share of it and its bias (`_width_budget`): a
#: width measured on no star may be `WIDTH_PRIOR` off; a flux that would
#: move by more than `WIDTH_BIAS_LIMIT` of its error with it, or whose
#: second-order bias from a measured width's error is as much, or whose
#: error from that width is more than `WIDTH_SHARE_LIMIT` times the rest,
#: is flagged (the width's error then rests on too little: its tails).
WIDTH_PRIOR = 0.2
WIDTH_BIAS_LIMIT = 0.1
WIDTH_SHARE_LIMIT = 2.0
#: The flux a width `WIDTH_PRIOR` off would move is judged as the
#: measured flux or this many of its errors, whichever is larger: a star
#: at the detection limit, whatever the row's noise reads (judged as the
#: measured flux less two errors, the unflagged rows of stars of 2.6
#: errors read pulls -0.78 with the PSF's true width, -1.3 with one 20%
#: narrow: the noise that reads a star low leaves it unflagged).
WIDTH_FLUX_NSIGMA = 2.0
#: Fewer stars than this measuring the width to worse than
#: `WIDTH_ERR_LIMIT` do not confirm it (a faint star's width has heavy
#: tails: two stars of signal-to-noise 6-9 read 0.74 +- 0.06 of the
#: true width): their rows are flagged as though none measured it.
WIDTH_MIN_STARS = 5
WIDTH_ERR_LIMIT = 0.03
#: A star whose width step is further than this many of its errors from
#: the stars' mean (a galaxy, a blend, a saturated star) is left out of
#: the width's fit (and of the profile's test).
WIDTH_CLIP = 4.0
#: The stars' profile is not the PSF's when their ``shape_z``
#: (`_width_scale`) is beyond this: every star is flagged.
SHAPE_Z_LIMIT = 4.0


#: The parameters of a PSF model that are its widths (photutils' Gaussian
#: PRFs and PSFs, `~ccdphot_ext.photometry.framepsf.MoffatPRF`; and
#: ``alpha`` of photutils' ``MoffatPSF``): `_scaled_psf` scales them.
WIDTH_PARAMETERS = ('fwhm', 'x_fwhm', 'y_fwhm', 'fwhm_a', 'fwhm_b',
                    'sigma', 'x_stddev', 'y_stddev')


def _width_names(model):
    """The parameters of ``model`` that are its widths."""
    return [n for n in model.param_names if n in WIDTH_PARAMETERS
            or (n == 'alpha' and type(model).__name__ == 'MoffatPSF')]


def _scaled_psf(psf, scale):
    """
    The PSF with its width times ``scale``.

    Parameters
    ----------
    psf : float, 2-D array, photutils PSF model or `FramePSF`
        The PSF, as for `psf_stamp`.
    scale : float
        The factor.

    Returns
    -------
    psf : float, `FramePSF`, photutils PSF model or None
        A Gaussian sigma, a fitted profile or a model with width
        parameters (`WIDTH_PARAMETERS`) scaled; None for an array or
        another model, whose width is not one number to scale.
    """
    if isinstance(psf, FramePSF):
        return psf.scaled(scale)
    if isinstance(psf, Model):
        names = _width_names(psf)
        if not names:
            return None
        model = psf.copy()
        for name in names:
            setattr(model, name, getattr(psf, name).value * scale)
        return model
    if np.ndim(psf) != 0:
        return None
    return float(psf) * scale


def _width_scale(frame, psf, sky, xy, *, gain, saturation, size):
    """
    The width of the frame's stars, in units of the PSF's, its error, and
    whether their profile is the PSF's: a joint least-squares fit.

    Each star's own pixels (`_width_star_pixels`: those nearer to it
    than to the other stars) are fitted with ``F P + c + G dP/ds`` (``P`` the
    PSF of width ``s`` times the PSF's, at the star's fitted position,
    ``c`` its own pedestal, weighted by the background and the model's
    photon variance); ``G`` over the star's flux fitted with ``P`` and
    ``c`` alone (independent of ``G``, so that the noise of a faint star's
    flux moves the width by nothing on average) is its step in ``s``, of
    variance ``var(G) / F**2``. The
    steps of the stars are averaged by their inverse variances (each star
    weighs as its information on the width, the square of its
    signal-to-noise ratio; the error scaled up by the square root of
    their reduced chi-square when they disagree), ``s`` moved by it and
    the fit repeated (`WIDTH_PASSES`): Gauss-Newton steps of the fit of
    one width and each star's flux.

    The profile: at the fitted width each star is fitted again with a
    third term ``K d2P/ds2``, the spread of widths of a star whose wings
    are heavier or lighter than the PSF's (a Moffat star is a mixture of
    Gaussians of many widths); ``K / F`` averaged over the stars as the
    steps are, in units of its error, is ``shape_z``, near 0 (a unit
    normal) for stars of the PSF's profile whatever its width.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    psf : float, 2-D array, photutils PSF model or `FramePSF`
        The PSF, as for `psf_stamp`.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    xy : list of tuple of float
        The stars' fitted ``(x, y)`` (`_width_stars`).
    gain, saturation, size
        As for `_extract`.

    Returns
    -------
    width : dict or None
        ``scale`` and ``error``, ``n_stars`` (the stars fitted) and
        ``shape_z``; None when the PSF has no width to scale (an array, a
        model without one) or no star could be fitted.
    """
    if not xy or _scaled_psf(psf, 1.0) is None:
        return None
    side = size if size is not None else _default_side(psf)
    half = max((25 if side is None else int(side)) // 4, 3)
    stars = _width_star_pixels(frame, psf, sky, xy, saturation, side,
                               half)
    scale, h = 1.0, WIDTH_STEP
    bias = {}
    kept = list(range(len(stars)))
    for n_pass, last in enumerate([False] * WIDTH_PASSES + [True]):
        psfs = [_scaled_psf(psf, scale * f) for f in (1.0, 1.0 - h, 1.0 + h)]
        steps, variances, shapes, fitted = [], [], [], []
        for i, (pos, resid, var_bg, use, box, pedestal) in enumerate(stars):
            if i not in kept:
                continue
            p, lo, hi = (np.where(use, psf_stamp(q, pos, frame.shape,
                                                 size=side)[1], 0.0)
                         for q in psfs)
            dp = (hi - lo) / (2.0 * h * scale)
            # each star's own pedestal: the width owes nothing to the level
            flux = _short_flux(p, pedestal, resid, var_bg)
            var = var_bg + (np.clip(flux * p, 0.0, None) / gain
                            if gain is not None else 0.0)
            flux = _short_flux(p, pedestal, resid, var)
            if not flux > 0:
                continue
            columns = [p, pedestal, dp] + (
                [(hi - 2.0 * p + lo) / (h * scale) ** 2] if last else [])
            a = np.array([[np.sum(u * v / var) for v in columns]
                          for u in columns])
            try:
                cov = np.linalg.inv(a)
            except np.linalg.LinAlgError:
                continue
            coef = cov @ np.array([np.sum(u * resid / var) for u in columns])
            if last:  # the profile's term, at the fitted width
                if cov[3, 3] > 0:
                    shapes.append((coef[3] / flux, cov[3, 3] / flux ** 2))
                continue
            if i not in bias and n_pass:  # near the stars' width, once
                bias[i] = _position_bias(psf, scale, pos, frame.shape, side,
                                         use, var, flux, box, columns)
            step = coef[2] / flux - bias.get(i, 0.0)
            variance = cov[2, 2] / flux ** 2
            if variance > 0 and math.isfinite(step):
                steps.append(step)
                variances.append(variance)
                fitted.append(i)
        if last:
            break
        if not steps:
            return None
        w = 1.0 / np.asarray(variances)
        steps = np.asarray(steps)
        mean = float(np.sum(w * steps) / np.sum(w))
        if len(kept) == len(stars):  # the first pass: outliers out
            keep = _clip_steps(steps, w)
            kept = [i for i, k in zip(fitted, keep, strict=True) if k]
            w, steps = w[keep], steps[keep]
            mean = float(np.sum(w * steps) / np.sum(w))
        n_fitted = steps.size
        error = 1.0 / math.sqrt(float(np.sum(w)))
        if steps.size > 1:  # stars that disagree: the error grows
            chi2 = float(np.sum(w * (steps - mean) ** 2))
            error *= math.sqrt(max(1.0, chi2 / (steps.size - 1)))
        scale = float(np.clip(scale + mean, *WIDTH_SCALE_BOUNDS))
    shape_z = math.nan
    if shapes:
        k, v = np.asarray(shapes).T
        shape_z = float(np.sum(k / v) / math.sqrt(np.sum(1.0 / v)))
    return {'scale': scale, 'error': error, 'n_stars': n_fitted,
            'shape_z': shape_z}


def _width_star_pixels(frame, psf, sky, xy, saturation, side, half):
    """
    Each width star's data for `_width_scale`: its own pixels.

    A star's pixels are those of its stamp, usable, and nearer to it than
    to any other star of ``xy``: a neighbour's wings at one edge of the
    stamp, taken up by the star's pedestal, would leave its centre
    over-subtracted and read it narrow (Moffat stars 16 pixels apart in
    stamps of 25: 2.4%). Stars clipped by the edge or with masked or
    saturated pixels are left out.

    Parameters
    ----------
    frame, psf, sky, xy, saturation
        As for `_width_scale`.
    side : int or None
        The stamp side.
    half : int
        The half side of the core `_fit_position` fits the position on.

    Returns
    -------
    stars : list of tuple
        Per star: its ``(x, y)``, the sky-subtracted data, the background
        variance, the usable pixels, the core box and the pedestal's
        column (1 on the usable pixels).
    """
    stars = []
    centres = np.asarray(xy, dtype=float).reshape(-1, 2)
    for i, (x, y) in enumerate(xy):
        try:
            slc, p, cut = psf_stamp(psf, (x, y), frame.shape, size=side)
            level, std, _, _ = _sky_pixels(sky, slc, frame.shape)
            d, var_bg, use, flags = _stamp(frame, slc, p, std, saturation,
                                           (x, y))
        except ValueError:  # no usable pixel: not a star to fit
            continue
        if cut or flags:  # clipped, masked or saturated pixels
            continue
        yy, xx = np.mgrid[slc]
        # the star's own pixels: nearer to it than to the others (a
        # neighbour's wings at one edge of the stamp, taken up by the
        # pedestal, read the star narrow: Moffat stars 16 pixels apart
        # in stamps of 25, 2.5%)
        others = np.delete(centres, i, axis=0)
        if others.size:
            near = np.min((xx[..., None] - others[:, 0]) ** 2
                          + (yy[..., None] - others[:, 1]) ** 2, axis=-1)
            use = use & ((xx - x) ** 2 + (yy - y) ** 2 <= near)
        box = ((np.abs(xx - round(x)) <= half)
               & (np.abs(yy - round(y)) <= half))  # _fit_position's
        stars.append(((x, y), np.where(use, d - level, 0.0),
                      np.where(use, var_bg, 1.0), use, box,
                      use.astype(float)))
    return stars


def _short_flux(p, pedestal, resid, var):
    """
    A star's flux fitted with its PSF and a pedestal (weighted least
    squares): independent of the width's coefficient fitted beside them.

    Parameters
    ----------
    p, pedestal, resid, var : `~numpy.ndarray`
        The PSF, the pedestal's column (1 on the usable pixels), the
        sky-subtracted data and the variance.

    Returns
    -------
    flux : float
        The PSF's coefficient (NaN if the two cannot be told apart).
    """
    a = np.array([[np.sum(u * v / var) for v in (p, pedestal)]
                  for u in (p, pedestal)])
    b = np.array([np.sum(u * resid / var) for u in (p, pedestal)])
    try:
        return float(np.linalg.solve(a, b)[0])
    except np.linalg.LinAlgError:
        return math.nan


def _clip_steps(steps, w):
    """
    The stars whose width steps agree with the others'.

    Parameters
    ----------
    steps : `~numpy.ndarray`
        Each star's step in the width.
    w : `~numpy.ndarray`
        Their inverse variances.

    Returns
    -------
    keep : `~numpy.ndarray` of bool
        Steps within `WIDTH_CLIP` of their errors of the weighted mean of
        those kept (iterated; the closest star is always kept).
    """
    keep = np.ones(steps.size, dtype=bool)
    for _ in range(5):
        mean = float(np.sum((w * steps)[keep]) / np.sum(w[keep]))
        off = np.abs(steps - mean) * np.sqrt(w)
        again = off <= WIDTH_CLIP
        again[np.argmin(off)] = True
        if np.array_equal(again, keep):
            break
        keep = again
    return keep


def _position_bias(psf, scale, position, shape, side, use, var, flux, box,
                   columns):
    """
    The bias of a star's width step from its position fitted to the same
    data.

    `_fit_position` follows the noise: at the fitted position the star
    looks narrower than it is, by a step of order one over its squared
    signal-to-noise ratio (2% of the width for stars of signal-to-noise
    4-11, each star's own bias, which averaging over stars does not
    remove). To second order in the position's error ``d`` (fitted by
    unweighted least squares on the core ``box``, ``d = sum(P_x n) / (F
    sum(P_x**2))`` along each axis, ``n`` the noise) the width
    coefficient ``G`` of the fit ``F P + G dP/ds`` gains ``<q, F d**2
    P_xx / 2> + <q_x, n> d``, ``q`` the width column made orthogonal to
    ``P`` and ``< , >`` the sums weighted by ``1 / V``: its expectation
    over the noise, over ``F``, is the step's bias.

    Parameters
    ----------
    psf : float, photutils PSF model or `FramePSF`
        The PSF the position was fitted with.
    scale : float
        The width fitted so far, in units of the PSF's.
    position : tuple of float
        The fitted ``(x, y)``.
    shape : tuple of int
        The frame's.
    side : int or None
        The stamp side.
    use : `~numpy.ndarray` of bool
        The stamp's usable pixels.
    var : `~numpy.ndarray`
        Their variance.
    flux : float
        The star's flux.
    box : `~numpy.ndarray` of bool
        The core the position was fitted on.
    columns : list of `~numpy.ndarray`
        ``P`` and ``dP/ds`` at the width fitted so far.

    Returns
    -------
    bias : float
        The expected step (subtracted from the star's).
    """
    p, pedestal, dp = columns[:3]
    w = np.where(use, 1.0 / var, 0.0)
    # the width's column less its share in the star's flux and pedestal
    basis = np.array([[np.sum(w * u * v) for v in (p, pedestal)]
                      for u in (p, pedestal)])
    along, flat = np.linalg.solve(basis, [np.sum(w * p * dp),
                                          np.sum(w * pedestal * dp)])
    q = dp - along * p - flat * pedestal
    qq = float(np.sum(w * q * q))
    core = box & use
    e, h = 0.05, WIDTH_STEP
    # the position's least squares: [P, P_x, P_y] with the PSF as given
    # on the stamp's own pixels (a shifted position may round elsewhere)
    slc = psf_stamp(psf, position, shape, size=side)[0]
    yy, xx = (g.astype(float) for g in np.mgrid[slc])
    models = [_psf_evaluator(q) for q in (
        _scaled_psf(psf, scale * (1.0 - h)), _scaled_psf(psf, scale),
        _scaled_psf(psf, scale * (1.0 + h)), psf)]

    def at(model, x, y):
        return np.where(use, model(xx, yy, x, y), 0.0)

    derivatives, fitted = [], [at(models[3], *position)]
    for axis in (0, 1):
        shifted = []
        for sign in (1.0, -1.0):
            pos = list(position)
            pos[axis] += sign * e
            lo, mid, hi, given = (at(m, *pos) for m in models)
            shifted.append((mid, (hi - lo) / (2.0 * h * scale), given))
        (p_plus, dp_plus, g_plus), (p_minus, dp_minus, g_minus) = shifted
        fitted.append(((g_plus - g_minus) / (2.0 * e),
                       (g_plus - 2.0 * fitted[0] + g_minus) / (e * e)))
        derivatives.append(((p_plus - 2.0 * p + p_minus) / (e * e),
                            (dp_plus - dp_minus) / (2.0 * e)
                            - along * (p_plus - p_minus) / (2.0 * e)))
    # the fit's curvature at its noiseless solution: the PSF as given, of
    # amplitude F', on a star of another width leaves residuals r0
    given = fitted[0][core]
    star = flux * p[core]
    amplitude = float(np.sum(given * star) / np.sum(given * given))
    r0 = star - amplitude * given
    jac = np.array([given] + [amplitude * g_x[core] for g_x, _ in
                              fitted[1:]])
    hessian = jac @ jac.T
    for axis, (_, g_xx) in enumerate(fitted[1:]):
        hessian[1 + axis, 1 + axis] -= amplitude * float(np.sum(
            r0 * g_xx[core]))
    try:
        solve = np.linalg.solve(hessian, jac)  # rows: shift per unit noise
    except np.linalg.LinAlgError:
        return 0.0
    total = 0.0
    for axis, (p_xx, q_x) in enumerate(derivatives):
        c = solve[1 + axis]
        d2 = float(np.sum(c * c * var[core]))
        total += (0.5 * flux * d2 * float(np.sum(w * q * p_xx))
                  + float(np.sum(c * q_x[core])))
    return total / qq / flux


def _width_budget(psf, one, frame_psf):
    """
    The budget of a flux measured with the PSF's width scaled to the
    frame's stars, with the error of that width, and whether the width
    is known well enough for this star.

    Parameters
    ----------
    psf : float, photutils PSF model or `FramePSF`
        The PSF before its width was scaled.
    one : dict
        `_extract`'s result with the scaled PSF (the PSF as given when the
        frame has no star to measure the width on).
    frame_psf : dict
        The frame's check, with ``width_scale``, ``width_scale_err`` (None:
        not measured) and ``width_stars``.

    Returns
    -------
    budget : `~ccdphot_ext.ErrorBudget`
        ``one``'s, with the term ``psf_width``: the flux's derivative by
        the width scale (`_width_response`: the star's model measured at
        ``1 +- WIDTH_STEP`` times it) times the scale's error, squared,
        and a note; without a measured width, ``one``'s.
    doubt : str or None
        Why the width is not known well enough for this flux (the row is
        flagged): the flux (or a flux of `WIDTH_FLUX_NSIGMA` of its
        error, where larger: a star at the detection limit) would move by
        more than `WIDTH_BIAS_LIMIT` of its error with a width
        `WIDTH_PRIOR` off, when no width could be
        measured or fewer than `WIDTH_MIN_STARS` stars measured it to
        worse than `WIDTH_ERR_LIMIT`; or the flux's curvature in the width
        times half its variance (the bias of a flux measured at a width of
        that error) is more than `WIDTH_BIAS_LIMIT` of the error, or the
        width's share of the error is more than `WIDTH_SHARE_LIMIT` times
        the rest's. None otherwise.
    """
    scale, error = frame_psf['width_scale'], frame_psf['width_scale_err']
    measured = scale is not None
    if not measured:
        scale, error = 1.0, WIDTH_PRIOR
    h = WIDTH_STEP
    flux = one['flux']
    ratios = _width_response(psf, scale, one)
    lo, hi = (flux * r for r in ratios)
    slope = (hi - lo) / (2.0 * h * scale)
    budget = one['budget']
    # what a wrong width moves, per unit of width, for a star of this
    # flux or at least of WIDTH_FLUX_NSIGMA of its error: not for the
    # measured flux alone, which would leave unflagged the rows whose
    # noise reads them low
    reach = (abs(ratios[1] - ratios[0]) / (2.0 * h * scale)
             * max(abs(flux), WIDTH_FLUX_NSIGMA * budget.error))
    if not measured:
        shift = reach * error
        doubt = None
        if shift > WIDTH_BIAS_LIMIT * budget.error:
            doubt = (f'no star of the frame measures the PSF\'s width, and '
                     f'one {WIDTH_PRIOR:.0%} off would move the flux (or '
                     f'that of a star of {WIDTH_FLUX_NSIGMA:g} of its '
                     f'errors) by {shift / budget.error:.2f} of its error')
        return budget, doubt
    curve = (hi - 2.0 * flux + lo) / (h * scale) ** 2
    out = ErrorBudget(
        budget.flux, {**budget.terms, 'psf_width': (slope * error) ** 2},
        notes=(*budget.notes,
               f"PSF width: {scale:.3f} +- {error:.3f} times the PSF's, as "
               f"fitted to {frame_psf['width_stars']} of the frame's stars; "
               'the flux measured with it, its error in psf_width'),
        gain=budget.gain, n_pix=budget.n_pix)
    second = 0.5 * abs(curve) * error ** 2
    share = abs(slope) * error / budget.error
    shift = reach * scale * WIDTH_PRIOR
    doubt = None
    if (frame_psf['width_stars'] < WIDTH_MIN_STARS
            and error > WIDTH_ERR_LIMIT
            and shift > WIDTH_BIAS_LIMIT * out.error):
        # a few faint stars' width has heavy tails: not confirmed
        doubt = (f"the width of the frame's stars is known to "
                 f"{error:.1%} from {frame_psf['width_stars']} faint "
                 f'star(s), too few to confirm it, and one '
                 f'{WIDTH_PRIOR:.0%} off would move the flux (or that of '
                 f'a star of {WIDTH_FLUX_NSIGMA:g} of its errors) by '
                 f'{shift / out.error:.2f} of its error')
    elif second > WIDTH_BIAS_LIMIT * out.error:
        doubt = (f'the width of the frame\'s stars is known to '
                 f'{error:.1%}: too roughly for this flux (its bias from '
                 f'the width\'s error {second / out.error:.2f} of its '
                 'error)')
    elif share > WIDTH_SHARE_LIMIT:
        doubt = (f'the width of the frame\'s stars is known to '
                 f'{error:.1%}: its error is {share:.1f} times the rest of '
                 'this flux\'s')
    return out, doubt


def _width_response(psf, scale, one):
    """
    How the flux of a star of the PSF's profile at width ``scale`` reads
    when measured at ``scale`` times ``1 -+ WIDTH_STEP``.

    The star's model ``F P`` (not its data, whose noise would enter the
    slope and, through it, the error bar) measured with the weights of
    the other widths, ``sum(w' F P) / sum(w' P')`` over ``F``, on the
    pixels ``one`` used (``V = P / w`` their model variance).

    Parameters
    ----------
    psf : float, photutils PSF model or `FramePSF`
        The PSF as given.
    scale : float
        The width the flux was measured at.
    one : dict
        `_extract`'s result at that width.

    Returns
    -------
    lo, hi : float
        The two ratios.
    """
    h = WIDTH_STEP
    w = one['w']
    used = w > 0
    p = np.where(used, one['psf'], 0.0)
    var = np.where(used, p / np.where(used, w, 1.0), 1.0)
    yy, xx = (g.astype(float) for g in np.mgrid[one['slices']])
    x, y = one['position']
    ratios = []
    for f in (1.0 - h, 1.0 + h):
        q = np.where(used, _psf_evaluator(_scaled_psf(psf, scale * f))(
            xx, yy, x, y), 0.0)
        ratios.append(float(np.sum(q * p / var) / np.sum(q * q / var)))
    return tuple(ratios)


def _width_error(frame, psf, sky, saturation):
    """
    How far a Gaussian sigma is from the width fitted to the frame's
    bright stars.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    psf : float, 2-D array or photutils PSF model
        The PSF given.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    saturation : float or None
        Stars with a pixel at or above it are left out of the fit.

    Returns
    -------
    text : str
        The given and the fitted sigma and their ratio, in parentheses; ''
        for a PSF that is not a sigma, or when no width can be fitted.
    """
    if not np.ndim(psf) == 0 or isinstance(psf, (Model, FramePSF)):
        return ''
    try:
        sigma = fit_psf_sigma(frame, sky, saturation=saturation)
    except ValueError:
        return ''
    ratio = float(psf) / sigma - 1.0
    return (f" (sigma {float(psf):.3g} pixels against the stars' fitted "
            f'{sigma:.3g}: {abs(ratio):.0%} too '
            f"{'narrow' if ratio < 0 else 'wide'})")


def _fit_position(resid, bad, psf, x, y, size):
    """
    The position of the star whose peak is at ``(x, y)``.

    The PSF's position is fitted to the sky-subtracted data on the core (a
    box of half the stamp): linear least squares of ``F P + F dx dP/dx + F
    dy dP/dy``, up to three passes, each move at most a pixel. A PSF of the
    wrong width still finds the centre of a symmetric star; a centroid
    would carry a bias of its own into the core-against-wings test.

    Parameters
    ----------
    resid : `~numpy.ndarray`
        The sky-subtracted frame.
    bad : `~numpy.ndarray` of bool
        Its pixels to leave out.
    psf : float, 2-D array or photutils PSF model
        The PSF, as for `psf_stamp`.
    x, y : float
        The peak.
    size : int or None
        The stamp side (None: the PSF's own, or 25 for a model).

    Returns
    -------
    x, y : float
        The fitted position.
    """
    default = _default_side(psf) if size is None else None
    model = _psf_evaluator(psf)
    # the core fixes the position: a box of half the stamp
    half = max(((25 if default is None else default) if size is None
                else int(size)) // 4, 3)
    ny, nx = resid.shape
    ix, iy = int(round(x)), int(round(y))
    yy, xx = np.mgrid[max(iy - half, 0):min(iy + half + 1, ny),
                      max(ix - half, 0):min(ix + half + 1, nx)]
    d = resid[yy, xx]
    good = ~bad[yy, xx]
    step = 1e-3
    for _ in range(3):
        columns = []
        for dx, dy in ((0.0, 0.0), (step, 0.0), (-step, 0.0), (0.0, step),
                       (0.0, -step)):
            columns.append(model(xx.astype(float), yy.astype(float),
                                 x + dx, y + dy))
        p, xp, xm, yp, ym = columns
        a = np.column_stack([p[good], ((xp - xm) / (2 * step))[good],
                             ((yp - ym) / (2 * step))[good]])
        coef = np.linalg.lstsq(a, d[good], rcond=None)[0]
        if not coef[0] > 0:
            break
        shift = np.clip(coef[1:] / coef[0], -1.0, 1.0)
        x, y = x + float(shift[0]), y + float(shift[1])
        if np.all(np.abs(shift) < 1e-3):
            break
    return x, y


def _bright_stars(frame, sky, saturation):
    """
    The frame's bright, isolated, unsaturated stars: those
    `fit_psf_sigma` fits.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    sky : `~ccdphot_ext.SkyEstimate`
        Its sky: one level, levels per aperture (their median) or a map.
    saturation : float or None
        Stars whose peak reaches it are left out (as are those with a
        saturation bit of the frame's DQ within `ISOLATION` pixels).

    Returns
    -------
    xy : `~numpy.ndarray`
        The ``(n, 2)`` peaks, brightest first, at most `FIT_N_STARS`.
    resid : `~numpy.ndarray`
        The sky-subtracted data.
    bad : `~numpy.ndarray` of bool
        Its non-finite and masked pixels.

    Raises
    ------
    ValueError
        If the sky's ``std`` is not positive.
    """
    from photutils.detection import find_peaks
    from photutils.utils import NoDetectionsWarning

    check_sky(sky, unit=frame.unit)
    level = sky.value if sky.is_map else float(np.nanmedian(sky.value))
    std = sky.pixel_std
    if not std > 0:
        raise ValueError('sky.std must be positive to find bright stars')
    resid = np.asarray(frame.data, dtype=float) - level
    bad = ~np.isfinite(resid)
    if frame.mask is not None:
        bad |= frame.mask
    clean = np.where(bad, 0.0, resid)
    with warnings.catch_warnings():  # no peak: the callers say so
        warnings.simplefilter('ignore', NoDetectionsWarning)
        peaks = find_peaks(clean, NEIGHBOUR_SNR * std, box_size=5,
                           border_width=ISOLATION, mask=bad)
    if peaks is None:
        peaks = {'x_peak': np.array([], int), 'y_peak': np.array([], int),
                 'peak_value': np.array([])}
    x, y = np.asarray(peaks['x_peak']), np.asarray(peaks['y_peak'])
    value = np.asarray(peaks['peak_value'], dtype=float)
    dist = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(dist, np.inf)
    keep = (value >= FIT_MIN_SNR * std) & np.all(dist > ISOLATION, axis=1)
    keep &= _unsaturated(frame, x, y, value, level, saturation)
    order = np.argsort(-value[keep])[:FIT_N_STARS]
    xy = np.column_stack([x[keep][order], y[keep][order]]).astype(float)
    return xy, resid, bad


def _unsaturated(frame, x, y, value, level, saturation):
    """
    Which peaks are not saturated.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    x, y : `~numpy.ndarray` of int
        The peaks' pixels.
    value : `~numpy.ndarray`
        Their sky-subtracted values.
    level : float or `~numpy.ndarray`
        The sky level (a map's at each pixel).
    saturation : float or None
        A peak reaching it is saturated.

    Returns
    -------
    keep : `~numpy.ndarray` of bool
        Below ``saturation``, and no saturation bit of the frame's DQ
        within `ISOLATION` pixels.
    """
    keep = np.ones(np.shape(x), dtype=bool)
    if saturation is not None:
        keep &= value + (level if np.ndim(level) == 0
                         else level[y, x]) < saturation
    saturated = saturated_pixels(frame)
    if saturated is not None and np.size(x):
        # a saturation bit of the DQ within the isolation radius: the star
        # is saturated whatever its pixels' values
        table = np.pad(saturated.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        ny, nx = saturated.shape
        y0, y1 = np.clip(y - ISOLATION, 0, ny), np.clip(y + ISOLATION + 1,
                                                        0, ny)
        x0, x1 = np.clip(x - ISOLATION, 0, nx), np.clip(x + ISOLATION + 1,
                                                        0, nx)
        keep &= (table[y1, x1] - table[y0, x1] - table[y1, x0]
                 + table[y0, x0]) == 0
    return keep


def _width_stars(frame, psf, sky, saturation, size, resid, bad):
    """
    The frame's isolated stars, faint ones too, for the PSF's width.

    The sky-subtracted data, filtered with the PSF, over the noise of that
    filter (each star's optimal signal-to-noise ratio) is searched for
    peaks above `WIDTH_MIN_SNR`, with no other such peak within
    `ISOLATION` pixels, off the frame's edge by as much and not
    saturated (as `_bright_stars`); each star's position is fitted with
    the PSF (`_fit_position`).

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    psf : float, photutils PSF model or `FramePSF`
        The PSF, as for `psf_stamp`.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    saturation : float or None
        Stars reaching it are left out.
    size : int or None
        The stamp side.
    resid, bad : `~numpy.ndarray`
        The sky-subtracted data and its bad pixels, as `_bright_stars`
        returns them.

    Returns
    -------
    xy : list of tuple of float
        The stars' fitted ``(x, y)``, the brightest first.
    """
    from photutils.detection import find_peaks
    from photutils.utils import NoDetectionsWarning
    from scipy.signal import fftconvolve

    ny, nx = frame.shape
    kernel = psf_stamp(psf, (nx // 2, ny // 2), frame.shape, size=size)[1]
    # a correlation with the PSF less its mean: blind to the level
    kernel = kernel[::-1, ::-1] - kernel.mean()
    clean = np.where(bad, 0.0, resid)
    if frame.uncertainty is not None:
        var = np.where(bad, 0.0, np.asarray(frame.uncertainty,
                                            dtype=float)) ** 2
        var = np.where(np.isfinite(var), var, 0.0)
        noise = np.sqrt(np.clip(fftconvolve(var, kernel ** 2, mode='same'),
                                0.0, None))
    else:
        std = sky.pixel_std
        noise = std * np.sqrt(np.clip(fftconvolve(
            (~bad).astype(float), kernel ** 2, mode='same'), 0.0, None))
    filtered = fftconvolve(clean, kernel, mode='same')
    snr = np.where(noise > 0, filtered / np.where(noise > 0, noise, 1.0),
                   0.0)
    with warnings.catch_warnings():  # no peak: no star to fit
        warnings.simplefilter('ignore', NoDetectionsWarning)
        peaks = find_peaks(snr, WIDTH_MIN_SNR, box_size=5,
                           border_width=ISOLATION, mask=bad)
    if peaks is None:
        return []
    x, y = np.asarray(peaks['x_peak']), np.asarray(peaks['y_peak'])
    value = np.asarray(peaks['peak_value'], dtype=float)
    dist = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(dist, np.inf)
    level = sky.value if sky.is_map else float(np.nanmedian(sky.value))
    keep = np.all(dist > ISOLATION, axis=1)
    keep &= _unsaturated(frame, x, y, resid[y, x], level, saturation)
    order = np.argsort(-value[keep])[:WIDTH_N_STARS]
    return [_fit_position(resid, bad, psf, float(x0), float(y0), size)
            for x0, y0 in zip(x[keep][order], y[keep][order], strict=True)]


def _goodness_of_fit(resid, pu, w, flux, use, error_on_mean, var_bg,
                     n_sky):
    """
    The fit's ``chi2`` and ``dof``, the core-against-wings ``psf_z`` and
    whether the star is flagged as not matching the PSF.

    ``V = P / w`` is the model variance of each pixel. The core holds the
    pixels of largest ``P`` that make up half of the information ``I =
    sum(P**2 / V)``, the wings the others; the PSF-weighted flux of each
    part, ``sum(w (D - B)) / sum(w P)``, has the variance ``1 / I_part``
    (plus the sky level's share), and the two are independent.

    The error of the sky level moves every pixel together: the chi-square
    is that of the covariance ``diag(V) + e e^T`` (``e`` the level's
    error under each pixel), by Sherman-Morrison ``sum(r**2 / V) -
    sum(r e / V)**2 / (1 + sum(e**2 / V))``. Without it an annulus level
    (a few hundred pixels, its error shared by a stamp of as many) tips
    3% of the stars that match the PSF over the chi-square's 0.1% tail.

    The background variance is ``sky.std**2``, itself estimated from
    ``n_sky`` pixels (None: known, an uncertainty map or a sky map): the
    chi-square over ``dof`` is then F-distributed, its second degrees of
    freedom ``(n_sky - 1) / f**2`` for a background share ``f`` of the
    model variance (Satterthwaite: the estimate's relative variance
    ``2 / (n_sky - 1)`` scaled by ``f**2``). An annulus of 180 pixels
    under a stamp of 289 doubles the spread of ``chi2 / dof``.

    Parameters
    ----------
    resid : `~numpy.ndarray`
        The stamp's data less the sky level (0 where not used).
    pu : `~numpy.ndarray`
        The PSF on the stamp, 0 where not used.
    w : `~numpy.ndarray`
        The weights ``P / V``.
    flux : float
        The extracted flux.
    use : `~numpy.ndarray` of bool
        The usable pixels.
    error_on_mean : float or `~numpy.ndarray`
        The sky level's error (per pixel for a map).
    var_bg : `~numpy.ndarray`
        The background variance of each pixel.
    n_sky : int or None
        The pixels the background variance was measured from (None: known).

    Returns
    -------
    fit : dict
        ``chi2``, ``dof``, ``psf_z`` (NaN without wings), ``mismatch`` (the
        star does not match the PSF: ``|psf_z|`` above `PSF_Z_LIMIT`, a
        chi-square tail below `CHI2_P_LIMIT`, or no wings to test) and
        ``untestable`` (no wings).
    """
    inside = use & (pu > 0)
    var = np.where(inside, pu / np.where(inside, w, 1.0), np.inf)
    model = flux * pu
    r = np.where(inside, resid - model, 0.0)
    e = np.where(inside, np.broadcast_to(error_on_mean, w.shape), 0.0)
    shared = float(np.sum(r * e / var))
    chi2 = float(np.sum(r * r / var)) - shared * shared / (
        1.0 + float(np.sum(e * e / var)))
    dof = max(int(np.count_nonzero(inside)) - 1, 1)
    info = np.where(inside, pu * pu / var, 0.0)
    order = np.argsort(-pu, axis=None)
    cumulative = np.cumsum(info.ravel()[order])
    core = np.zeros(pu.size, dtype=bool)
    n_core = int(np.searchsorted(cumulative, 0.5 * cumulative[-1])) + 1
    core[order[:n_core]] = True
    core = core.reshape(pu.shape) & inside
    wings = inside & ~core
    psf_z = math.nan
    if wings.any():
        parts = []
        for part in (core, wings):
            wp = float(np.sum(w[part] * pu[part]))
            parts.append((float(np.sum(w[part] * resid[part])) / wp,
                          float(np.sum(info[part])),
                          float(np.sum(w[part] * np.broadcast_to(
                              error_on_mean, w.shape)[part])) / wp))
        (f_core, i_core, b_core), (f_wing, i_wing, b_wing) = parts
        psf_z = (f_core - f_wing) / math.sqrt(1.0 / i_core + 1.0 / i_wing
                                              + (b_core - b_wing) ** 2)
    tail = _chi2_tail(chi2, dof, n_sky, float(np.mean(
        var_bg[inside] / var[inside])) if inside.any() else 0.0)
    # a PSF without wings (all of it in the core's pixels) cannot be
    # tested, and a real star is wider than it: as doubtful as a mismatch
    untestable = not wings.any()
    mismatch = bool(untestable or abs(psf_z) > PSF_Z_LIMIT
                    or tail < CHI2_P_LIMIT)
    return {'chi2': chi2, 'dof': dof, 'psf_z': psf_z, 'mismatch': mismatch,
            'untestable': untestable}


def _chi2_tail(chi2, dof, n_sky, share):
    """
    The chance of a chi-square above ``chi2`` for a star that matches the
    PSF.

    Parameters
    ----------
    chi2 : float
        The fit's chi-square.
    dof : int
        Its degrees of freedom.
    n_sky : int or None
        The pixels the background variance was measured from (None: known).
    share : float
        The background's share of the model variance.

    Returns
    -------
    p : float
        The chi-square distribution's tail, or with a background variance
        measured from ``n_sky`` pixels the F distribution's of ``chi2 /
        dof`` with ``(n_sky - 1) / share**2`` denominator degrees of freedom.
    """
    from scipy.stats import chi2 as chi2_distribution  # slow to import
    from scipy.stats import f as f_distribution

    if n_sky is None or not n_sky > 1 or share <= 0:
        return chi2_distribution.sf(chi2, dof)
    df2 = (float(n_sky) - 1.0) / (share * share)
    if df2 > 1e7:  # a whole-frame scatter: the chi-square itself
        return chi2_distribution.sf(chi2, dof)
    return f_distribution.sf(chi2 / dof, dof, df2)


def _stamp(frame, slc, p, std, saturation, position):
    """
    The data under a PSF stamp and what can be used of it.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    slc : tuple of slice
        The stamp's place in the frame.
    p : `~numpy.ndarray`
        The PSF on the stamp.
    std : float or `~numpy.ndarray`
        The sky's per-pixel standard deviation there.
    saturation : float or None
        A used pixel at or above it flags the star.
    position : tuple of float
        The star's ``(x, y)``, for the error message.

    Returns
    -------
    d : `~numpy.ndarray`
        The data (float64).
    var_bg : `~numpy.ndarray`
        The background variance: ``std**2``, or the uncertainty map's.
    use : `~numpy.ndarray` of bool
        The good pixels under the PSF.
    flags : int
        `~ccdphot_ext.flags.FLAG_BAD_PIXELS` and
        `~ccdphot_ext.flags.FLAG_SATURATED` bits.

    Raises
    ------
    ValueError
        If no pixel under the PSF is usable, or a used pixel has no positive
        background variance.
    """
    d = frame.data[slc].astype(np.float64)
    bad = ~np.isfinite(d)
    if frame.mask is not None:
        bad |= frame.mask[slc]
    var_bg = np.broadcast_to(np.asarray(std, dtype=float) ** 2, d.shape)
    if frame.uncertainty is not None:
        sig = frame.uncertainty[slc].astype(np.float64)
        bad |= ~np.isfinite(sig)
        var_bg = np.where(bad, 0.0, sig) ** 2
    use = ~bad & (p > 0)
    flags = FLAG_BAD_PIXELS if np.any(bad & (p > 0)) else 0
    if not np.any(use):
        raise ValueError(f'no usable pixel under the PSF at {position!r}')
    if np.any(use & (var_bg <= 0)):
        raise ValueError('the background variance must be positive under '
                         'the PSF (sky.std or uncertainty is 0)')
    if saturation is not None and np.any(use & (d >= saturation)):
        flags |= FLAG_SATURATED
    return d, var_bg, use, flags


def _iterate_weights(resid, pu, var_bg, gain, n_iter):
    """
    Flux and weights ``P / V`` with ``V = var_bg + F P / g``, iterated from
    the background variance alone.

    Parameters
    ----------
    resid : `~numpy.ndarray`
        The data less the sky level (0 where not used).
    pu : `~numpy.ndarray`
        The PSF (0 where not used).
    var_bg : `~numpy.ndarray`
        The background variance (1 where not used).
    gain : float or None
        Electrons per data unit (None: the background variance alone).
    n_iter : int
        Passes after the first; fewer when the flux repeats.

    Returns
    -------
    flux : float
        The extracted flux.
    w : `~numpy.ndarray`
        The weights.
    norm : float
        Their normalisation ``sum(w P)``.
    """
    flux = 0.0
    for it in range(n_iter + 1):
        src = (np.clip(flux * pu, 0.0, None) / gain
               if gain is not None and it > 0 else 0.0)
        w = pu / (var_bg + src)
        norm = float(np.sum(w * pu))
        flux, before = float(np.sum(w * resid)) / norm, flux
        if it > 0 and flux == before:  # converged: further passes repeat
            break
    return flux, w, norm


def _optimal_options(budget):
    """
    ``budget`` checked for `optimal_extraction`.

    Its weights model the source's photon noise and take no pixel partly,
    so only the default ``uncertainty_model`` and ``fractional_variance``
    apply.

    Parameters
    ----------
    budget : `~ccdphot_ext.BudgetOptions` or None
        The budget options given (None: the defaults).

    Returns
    -------
    options : `~ccdphot_ext.BudgetOptions`

    Raises
    ------
    ValueError
        If ``uncertainty_model`` or ``fractional_variance`` is not the
        default.
    """
    options = check_options(budget, 'budget', BudgetOptions)
    default = BudgetOptions()
    for name in ('uncertainty_model', 'fractional_variance'):
        if getattr(options, name) != getattr(default, name):
            raise ValueError(
                f'budget: {name}={getattr(options, name)!r} does not apply '
                'to optimal extraction (its weights model the source\'s '
                'photon noise and take no pixel partly); leave it at '
                f'{getattr(default, name)!r}')
    return options


def _optimal_budget(flux, w, norm, pu, var_bg, error_on_mean, gain,
                    include_sky_mean):
    """
    The error budget of a weighted sum ``sum(w (D - B)) / sum(w P)``.

    Parameters
    ----------
    flux : float
        The extracted flux.
    w : `~numpy.ndarray`
        The weights.
    norm : float
        Their normalisation ``sum(w P)``.
    pu : `~numpy.ndarray`
        The PSF (0 where not used).
    var_bg : `~numpy.ndarray`
        The background variance (0 where not used).
    error_on_mean : float or `~numpy.ndarray`
        The sky level's error.
    gain : float or None
        Electrons per data unit (None: no source term, and a note says so).
    include_sky_mean : bool
        Whether the budget has the sky level's error term.

    Returns
    -------
    budget : `~ccdphot_ext.ErrorBudget`
        Terms ``sky``, ``source`` and ``sky_mean`` (as given), the notes,
        and the effective pixel count ``sum(w)**2 / sum(w**2)``.
    """
    terms = {'sky': float(np.sum(w ** 2 * var_bg)) / norm ** 2}
    notes = ['optimal extraction: weights P/V, flux = sum(w (D - B)) / '
             'sum(w P)']
    if gain is None:
        notes.append(NOTE_NO_GAIN)
    else:
        model_src = np.clip(flux * pu, 0.0, None)
        terms['source'] = float(np.sum(w ** 2 * model_src / gain)) / norm ** 2
    if include_sky_mean:
        terms['sky_mean'] = (float(np.sum(w * error_on_mean)) / norm) ** 2
    else:
        notes.append(NOTE_EXACT_SKY)
    n_eff = float(np.sum(w)) ** 2 / float(np.sum(w ** 2))
    return ErrorBudget(flux, terms, notes=notes, gain=gain, n_pix=n_eff)


def compare_extractions(data, aperture, psf_sigma, sky, *, gain=None,
                        detector=None, threshold=None, position=None,
                        size=None, uncertainty=None, mask=None,
                        fit_width=True):
    """
    Box sum, threshold mask and optimal extraction of one star, side by side.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The processed frame; a `CCDData`'s uncertainty, mask, unit and
        header are used.
    aperture : `~ccdphot_ext.BoxAperture` or photutils aperture
        The box (one position).
    psf_sigma : float, 2-D array, photutils PSF model or None
        The PSF: a Gaussian sigma in pixels, an array or a model (see
        `psf_stamp`); None fits an elliptical Moffat profile to the
        frame's bright isolated stars (``MoffatPRF``; with fewer
        than five of them a circular Gaussian's sigma, `fit_psf_sigma`).
    sky : `~ccdphot_ext.SkyEstimate`
        One level (global or this star's) or a 2-D map, in the data unit.
    gain : float or `~astropy.units.Quantity`, optional
        Electrons per data unit, as in `~ccdphot_ext.measure`; default
        ``detector.gain``, else the header's. Without it the budgets have
        no source term.
    detector : `~ccdphot_ext.DetectorParameters`, optional
        As in `~ccdphot_ext.measure`, for all three.
    threshold : `~ccdphot_ext.SigmaThreshold`, optional
        The mask; default ``SigmaThreshold(2.0)``, the package's 2-sigma
        mask, whose sum is unbiased for the flux inside it.
        ``SigmaThreshold(2.0, selection='pixel')`` is the notebook's mask,
        biased high (on a blank sky it sums the noise peaks it selects).
    position : (x, y), optional
        Star position for the PSF; default the aperture centre.
    size : int, optional
        PSF stamp side.
    uncertainty : array_like or `~astropy.nddata.NDUncertainty`, optional
        Per-pixel 1-sigma map, for all three (as in `~ccdphot_ext.measure`).
    mask : array_like of bool, optional
        Bad pixels (True), for all three.
    fit_width : bool, optional
        As in `optimal_extraction` (default True: the PSF's width scaled to
        the frame's stars; a star no star of the frame confirms the width
        for is flagged).

    Returns
    -------
    table : `~astropy.table.QTable`
        Rows ``box``, ``mask``, ``optimal`` with ``flux``, ``flux_err``,
        ``snr``, ``snr_gain`` (over the box) and ``flags`` (each
        measurement's own bits, :ref:`photometer-flags`: a truncated box,
        masked pixels, a PSF that does not fit, ...: compare only rows
        whose flags allow it), and ``meta['snr_gain_mask']`` (optimal over
        mask).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture, SkyEstimate, compare_extractions
    >>> from ccdphot_ext.datasets.sample import render_stars
    >>> star = render_stars((48, 48), [23.4], [24.2], [5000.0], sigma=1.5)
    >>> img = 100.0 + star + np.random.default_rng(1).normal(0, 5, (48, 48))
    >>> t = compare_extractions(img, BoxAperture((23.4, 24.2), 15, 15), 1.5,
    ...                         SkyEstimate(100.0, 5.0, 10_000), gain=1.0)
    >>> t['method'].tolist()
    ['box', 'mask', 'optimal']
    >>> bool(t['snr_gain'][2] > 1)  # optimal beats the box
    True
    """
    if threshold is None:
        threshold = SigmaThreshold(2.0)
    if position is None:
        position = aperture_position(aperture, 0)
    common = dict(gain=gain, detector=detector, uncertainty=uncertainty,
                  mask=mask)
    with warn_once():  # the three check the same frame: said once
        box = measure(data, aperture, sky, **common)
        masked = measure(data, aperture, sky, threshold=threshold, **common)
        opt = optimal_extraction(data, position, psf_sigma, sky, size=size,
                                 fit_width=fit_width, **common)
    rows = [(name, r.flux, r.flux_err, r.snr, r.snr / box.snr, int(r.flags))
            for name, r in (('box', box), ('mask', masked), ('optimal', opt))]
    table = QTable(rows=rows, names=('method', 'flux', 'flux_err', 'snr',
                                     'snr_gain', 'flags'))
    table.meta['snr_gain_mask'] = opt.snr / masked.snr
    table.meta['threshold'] = repr(threshold)
    return table
