# Licensed under a 3-clause BSD style license - see LICENSE
"""
Measure one star: the notebook's box sum, mask sum and error, in one call.
"""

import math
from functools import cached_property

import astropy.units as u
import numpy as np
from astropy.table import QTable
from photutils.aperture import PixelAperture

from ..aperture.box import BoxAperture, aperture_weights
from ..aperture.skybox import to_pixel_apertures
from ..background.sky import SkyEstimate
from ..background.threshold import SigmaThreshold
from ..flags import (
    FLAG_BAD_PIXELS,
    FLAG_EMPTY_THRESHOLD,
    FLAG_NONPOSITIVE_FLUX,
    FLAG_RESIDUAL_BACKGROUND,
    FLAG_SATURATED,
    FLAG_TRUNCATED,
    decode_flags,
)
from ..io.header import detector_parameters
from ..utils.inputs import as_frame, positive_scalar
from .budget import ErrorBudget
from .terms import UNCERTAINTY_MODELS, budget_terms

__all__ = ['measure', 'ApertureMeasurement']

_OVERLAP_METHODS = ('exact', 'center', 'subpixel')


def _check_common(aperture, sky, threshold, uncertainty_model,
                  method='exact'):
    if not isinstance(aperture, (BoxAperture, PixelAperture)):
        raise TypeError('aperture must be a BoxAperture or a photutils '
                        f'PixelAperture, got {type(aperture).__name__}')
    if not isinstance(sky, SkyEstimate):
        raise TypeError('sky must be a SkyEstimate (e.g. '
                        'SkyEstimate.from_image(data)), got '
                        f'{type(sky).__name__}')
    if threshold is not None and not isinstance(threshold, SigmaThreshold):
        raise TypeError('threshold must be a SigmaThreshold or None, got '
                        f'{type(threshold).__name__}')
    if method not in _OVERLAP_METHODS:
        raise ValueError(f'method must be one of {_OVERLAP_METHODS}, got '
                         f'{method!r}')
    if uncertainty_model not in UNCERTAINTY_MODELS:
        raise ValueError(f'uncertainty_model must be one of '
                         f'{UNCERTAINTY_MODELS}, got {uncertainty_model!r}')


def _n_positions(aperture):
    if isinstance(aperture, BoxAperture):
        return len(aperture.positions)
    return 1 if aperture.isscalar else len(aperture)


def _measure_one(frame, aperture, index, sky, *, sky_index, threshold,
                 saturation, method, subpixels, allow_off_frame=False):
    """
    Photometry of aperture position ``index``; returns a dict.

    A sky map (``sky.is_map``) is subtracted pixel by pixel; ``sky``,
    ``sky_std`` and ``sky_error_on_mean`` are then its weighted summary over
    the pixels used (`SkyEstimate.summarize`).

    An aperture wholly off the frame, or holding no finite unmasked pixel,
    raises, or with ``allow_off_frame`` gives a NaN flux, no budget and the
    truncation or bad-pixel flag.
    """
    slc, weights, truncated = aperture_weights(
        aperture, frame.shape, index=index, method=method,
        subpixels=subpixels)
    sky_map = sky.is_map  # issue 4: 2-D sky maps, summarised below
    b_value, b_std, b_npix, b_eom = ((math.nan,) * 4 if sky_map
                                     else sky.at(sky_index))
    flags = FLAG_TRUNCATED if truncated else 0
    if slc is None:
        if allow_off_frame:
            return {'flux': math.nan, 'n_pix': 0.0, 'flags': flags,
                    'sigma2': None, 'weights': weights, 'slices': None,
                    'sky': b_value, 'sky_std': b_std,
                    'sky_error_on_mean': b_eom, 'sigma_map': None}
        raise ValueError(f'aperture position {index} lies entirely off the '
                         f'frame of shape {frame.shape}')
    data = frame.data[slc].astype(np.float64, copy=False)
    inside = weights > 0
    bad = ~np.isfinite(data)
    if frame.mask is not None:
        bad |= frame.mask[slc]
    sigma_map = None
    if frame.uncertainty is not None:
        sigma_map = frame.uncertainty[slc].astype(np.float64, copy=False)
        bad |= ~np.isfinite(sigma_map)
        # excluded pixels must not poison sum(w * sigma**2) with 0 * NaN
        sigma_map = np.where(bad, 0.0, sigma_map)
    if np.any(bad & inside):
        flags |= FLAG_BAD_PIXELS
    if not np.any(inside & ~bad):
        # nothing to sum: a NaN row, never a silent 0 +- 0
        if allow_off_frame:
            return {'flux': math.nan, 'n_pix': 0.0, 'flags': flags,
                    'sigma2': None, 'weights': np.zeros_like(weights),
                    'slices': slc, 'sky': b_value, 'sky_std': b_std,
                    'sky_error_on_mean': b_eom, 'sigma_map': None}
        raise ValueError(f'aperture position {index} holds no finite, '
                         'unmasked pixel (all masked/NaN/inf)')
    if saturation is not None and np.any(
            inside & ~bad & (data >= saturation)):
        flags |= FLAG_SATURATED
    w = np.where(bad, 0.0, weights)
    sky_pixels = None
    if sky_map:  # issue 4: subtract the map pixel by pixel
        if sky.shape != frame.shape:
            raise ValueError(f'sky map shape {sky.shape} does not match the '
                             f'frame shape {frame.shape}')
        sky_pixels = sky.cutout(slc)[0]
        b_value, b_std, b_eom = sky.summarize(slc, w)
        resid = np.where(bad, 0.0, data - sky_pixels)
    else:
        resid = np.where(bad, 0.0, data - b_value)
    if threshold is not None:
        x, y = _position(aperture, index)
        row = int(round(y)) - slc[0].start
        col = int(round(x)) - slc[1].start
        center = ((row, col) if 0 <= row < w.shape[0]
                  and 0 <= col < w.shape[1] else None)
        sel = threshold.select(resid, b_std, valid=w > 0, center=center)
        w_rest = np.where(sel, 0.0, w)
        w = np.where(sel, w, 0.0)
        if not np.any(sel):
            flags |= FLAG_EMPTY_THRESHOLD
        if residual_is_significant(float(np.sum(w_rest * resid)),
                                   float(np.sum(w_rest)), b_std, b_eom):
            flags |= FLAG_RESIDUAL_BACKGROUND
    flux = float(np.sum(w * resid))
    n_pix = float(np.sum(w))
    if flux <= 0:
        flags |= FLAG_NONPOSITIVE_FLUX
    if sky_map and n_pix > 0:  # issue 4: the map over the pixels used
        b_value, b_std, b_eom = sky.summarize(slc, w)

    sigma2 = None if sigma_map is None else float(np.sum(w * sigma_map ** 2))
    return {'flux': flux, 'n_pix': n_pix, 'flags': flags, 'sigma2': sigma2,
            'weights': w, 'slices': slc, 'sky': b_value, 'sky_std': b_std,
            'sky_error_on_mean': b_eom, 'sigma_map': sigma_map,
            'sky_pixels': sky_pixels}


def _budget(result, *, gain, read_noise, dark, uncertainty_model,
            include_sky_mean):
    """The `ErrorBudget` of one measured aperture (`_measure_one`)."""
    eom = result['sky_error_on_mean'] if include_sky_mean else None
    if result['n_pix'] == 0:
        return ErrorBudget.from_terms(
            budget_terms(result['flux'], 0.0, result['sky_std']),
            notes=['no pixel selected'], gain=gain)
    budget = ErrorBudget.from_aperture(
        result['flux'], result['n_pix'], result['sky_std'], gain=gain,
        sky_variance=result['sigma2'], sky_error_on_mean=eom,
        uncertainty_model=uncertainty_model, sky_level=result['sky'],
        read_noise=read_noise if gain is not None else None,
        dark=dark if gain is not None else None)
    if read_noise is not None and gain is None:
        budget.notes += ('read_noise ignored: no gain to convert electrons '
                         'to ADU',)
    return budget


#: Significance (in sigma) above which the background left outside a
#: threshold mask sets `FLAG_RESIDUAL_BACKGROUND`.
RESIDUAL_NSIGMA = 5.0


def residual_is_significant(residual_sum, n_rest, sky_std, sky_error_on_mean,
                            nsigma=RESIDUAL_NSIGMA):
    """
    True when the sum of the aperture pixels left out by a threshold mask is
    more than ``nsigma`` from zero.

    Its error is ``sqrt(n_rest * sky_std**2 + n_rest**2 * sigma_B**2)``: the
    pixels' own noise plus the error of the sky level subtracted from them.
    """
    if n_rest <= 0:
        return False
    err = math.sqrt(n_rest * sky_std ** 2 + (n_rest * sky_error_on_mean) ** 2)
    return abs(residual_sum) > nsigma * err if err > 0 else residual_sum != 0


def _position(aperture, index):
    if isinstance(aperture, BoxAperture):
        return tuple(aperture.positions[index])
    pos = np.atleast_2d(aperture.positions)
    return tuple(pos[index])


class _BudgetedResult:
    """Error, SNR, magnitude error and flag words of a result that has a
    ``budget`` and ``flags``."""

    @property
    def flux_err(self):
        """Total 1-sigma flux error."""
        return self.budget.error

    @property
    def snr(self):
        """Signal-to-noise ratio."""
        return self.budget.snr

    @property
    def mag_err(self):
        """Magnitude error ``2.5/ln(10) * flux_err / flux``."""
        return self.budget.mag_err

    @property
    def flag_descriptions(self):
        """The flags in words."""
        return decode_flags(self.flags)


class ApertureMeasurement(_BudgetedResult):
    """
    The result of `measure`: flux, error, SNR and the budget behind them.

    Attributes
    ----------
    flux : float
        Sky-subtracted sum over the pixels used (weights applied).
    n_pix : float
        Pixels used (sum of weights; excluded and unselected pixels are not
        counted).
    budget : `ErrorBudget`
        The variance terms.
    mask : 2-D ndarray
        Weight of each pixel of the cutout in the sum (0 = not used).
    slices : tuple of slices
        Where the cutout sits in the frame.
    flags : int
        Bit flags (see `ccdphot_ext.flags`).
    sky, sky_std, sky_error_on_mean : float
        The sky values used.
    """

    def __init__(self, frame, aperture, index, result, params):
        self._frame = frame
        self.aperture = aperture
        self.position = _position(aperture, index)
        self.flux = result['flux']
        self.n_pix = result['n_pix']
        self.flags = result['flags']
        self.budget = result['budget']
        self.mask = result['weights']
        self.slices = result['slices']
        self.sky = result['sky']
        self.sky_std = result['sky_std']
        self.sky_error_on_mean = result['sky_error_on_mean']
        self._sigma_map = result['sigma_map']
        self._sky_pixels = result.get('sky_pixels')  # a sky map's cutout
        self.params = params
        self.unit = frame.unit

    @cached_property
    def cutout(self):
        """The data pixels under the aperture (before sky subtraction)."""
        return self._frame.data[self.slices]

    def compare_numpy(self):
        """
        Redo the notebook's hand-rolled numpy arithmetic on the same pixels.

        The notebook computed ``cutout = image[y0:y1, x0:x1] - sky``,
        ``cutout.sum()`` (or ``cutout[mask].sum()``),
        ``(n * sky_std**2)**0.5`` and ``(cutout.sum() / gain + n *
        sky_std**2)**0.5``. Here the same plain numpy expressions are
        evaluated on the pixels this measurement used (weights applied for
        fractional apertures) and set beside the package's numbers.

        Returns
        -------
        table : `~astropy.table.QTable`
            Columns ``quantity``, ``ccdphot``, ``numpy``, ``rel_diff``.
        """
        data = np.asarray(self._frame.data[self.slices], dtype=float)
        w = self.mask
        used = w > 0
        cut = data - (self.sky if self._sky_pixels is None
                      else self._sky_pixels)
        if np.all((w == 0) | (w == 1)):
            np_flux = cut[used].sum()
            np_n = used.sum()
        else:
            np_flux = (w[used] * cut[used]).sum()
            np_n = w[used].sum()
        rows = [('flux', self.flux, np_flux), ('n_pix', self.n_pix, np_n)]
        terms = self.budget.terms
        if self._sigma_map is not None and 'sky' in terms:
            rows.append(('var_sky', terms['sky'],
                         (w[used] * self._sigma_map[used] ** 2).sum()))
        elif 'sky' in terms:
            rows.append(('var_sky', terms['sky'], np_n * self.sky_std ** 2))
        gain = self.budget.gain
        if 'source' in terms:
            rows.append(('var_source', terms['source'],
                         max(np_flux, 0.0) / gain))
        if 'sky_mean' in terms:
            rows.append(('var_sky_mean', terms['sky_mean'],
                         np_n ** 2 * self.sky_error_on_mean ** 2))
        np_var = sum(r[2] for r in rows[2:])
        rows.append(('flux_err', self.flux_err, np_var ** 0.5))
        names = [r[0] for r in rows]
        ours = np.array([float(r[1]) for r in rows])
        theirs = np.array([float(r[2]) for r in rows])
        with np.errstate(divide='ignore', invalid='ignore'):
            rel = np.where(theirs != 0, (ours - theirs) / np.abs(theirs),
                           ours - theirs)
        table = QTable({'quantity': names, 'ccdphot': ours, 'numpy': theirs,
                        'rel_diff': rel})
        table.meta['max_abs_rel_diff'] = float(np.max(np.abs(rel)))
        return table

    def __repr__(self):
        return (f'<ApertureMeasurement flux={self.flux:.6g} '
                f'flux_err={self.flux_err:.6g} snr={self.snr:.4g} '
                f'n_pix={self.n_pix:g} flags={self.flags}>')


def measure(data, aperture, sky, *, gain=None, threshold=None,
            uncertainty=None, mask=None, saturation=None, read_noise=None,
            uncertainty_model='background', include_sky_mean=True,
            method='exact', subpixels=5, dark=None):
    """
    Photometry of one star with its full error budget.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The processed frame (bias, dark and flat applied). A `CCDData`'s
        ``uncertainty``, ``mask``, ``unit`` and header (``meta``) are used.
    aperture : `BoxAperture` or `~photutils.aperture.PixelAperture`
        One position.
    sky : `SkyEstimate`
        Global or per-aperture sky (one level for this aperture), or a 2-D
        map (`SkyEstimate.from_background2d`, `SkyEstimate.from_maps`)
        subtracted pixel by pixel.
    gain : float or `~astropy.units.Quantity`, optional
        e-/ADU. Default: the header's GAIN/EGAIN/CCDGAIN; otherwise the
        source Poisson term is absent (the budget's notes say so).
    threshold : `SigmaThreshold`, optional
        Keep only aperture pixels above ``n_sigma * sky.std``.
    uncertainty : array_like or `~astropy.nddata.NDUncertainty`, optional
        Per-pixel 1-sigma map (wins over the NDData's own).
    mask : array_like of bool, optional
        True for bad pixels (combined with the NDData's mask).
    saturation : float, optional
        Saturation level in the data unit; default the header's SATURATE.
    read_noise : float, optional
        e-; only used to decompose the measured sky variance (default the
        header's RDNOISE/READNOIS/RON). With the gain known, the budget's
        ``decomposition`` splits the ``sky`` term into sky photons, read
        noise, dark and an ``excess``, never added to the variance.
    uncertainty_model : {'background', 'total'}, optional
        How an uncertainty map enters the budget: ``'background'`` (default)
        replaces ``n_pix * sky_std**2`` by ``sum(w_i * sigma_i**2)`` and still
        adds the source term from the gain; ``'total'`` takes the map as the
        full per-pixel error (no separate source term, so nothing is counted
        twice).
    include_sky_mean : bool, optional
        Add the error of the sky level (``sky_mean`` term). Default True.
    method : {'exact', 'center', 'subpixel'}, optional
        Overlap method for photutils apertures (boxes aligned with the axes
        are always exact).
    subpixels : int, optional
        Sub-sampling for ``method='subpixel'``.
    dark : float, optional
        Dark signal per pixel accumulated in the exposure [data unit],
        already subtracted; only used in the decomposition.

    Returns
    -------
    result : `ApertureMeasurement`

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture, SkyEstimate, measure
    >>> rng = np.random.default_rng(0)
    >>> img = rng.normal(100.0, 5.0, (50, 50))
    >>> img[20:25, 20:25] += 400.0
    >>> sky = SkyEstimate.from_image(img, method='median')
    >>> res = measure(img, BoxAperture.from_slices(np.s_[18:27, 18:27]), sky,
    ...               gain=2.0)
    >>> sorted(res.budget.terms)
    ['sky', 'sky_mean', 'source']
    >>> bool(res.compare_numpy().meta['max_abs_rel_diff'] < 1e-10)
    True
    """
    aperture = to_pixel_apertures(aperture, data)  # SkyAperture -> pixel
    _check_common(aperture, sky, threshold, uncertainty_model, method)
    if _n_positions(aperture) != 1:
        raise ValueError('measure takes one aperture position; use '
                         'photometer for many')
    frame = as_frame(data, uncertainty=uncertainty, mask=mask)
    params = detector_parameters(frame.meta, gain=gain, saturation=saturation,
                                 read_noise=read_noise, unit=frame.unit)
    if (sky.unit is not None and frame.unit is not None
            and sky.unit != frame.unit):
        raise u.UnitsError(f'sky is in {sky.unit} but data is in '
                           f'{frame.unit}')
    if not sky.isscalar and len(sky) != 1:
        raise ValueError(f'sky has {len(sky)} levels but measure takes one '
                         'aperture')
    result = _measure_one(
        frame, aperture, 0, sky, sky_index=0, threshold=threshold,
        saturation=params['saturation'], method=method,
        subpixels=int(positive_scalar(subpixels, 'subpixels',
                                      allow_none=False)))
    result['budget'] = _budget(
        result, gain=params['gain'], read_noise=params['read_noise'],
        dark=positive_scalar(dark, 'dark', allow_zero=True),
        uncertainty_model=uncertainty_model,
        include_sky_mean=include_sky_mean)
    return ApertureMeasurement(frame, aperture, 0, result, params)
