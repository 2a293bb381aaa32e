# Licensed under a 3-clause BSD style license - see LICENSE
"""
Sky (background) level, its per-pixel scatter, and the error of the level.

The estimators (``'sigma_clip'``, the default; ``'mean'``; ``'median'``),
their corrections and the factor ``k`` of ``error_on_mean = k * std /
sqrt(n_pix)`` are described in :ref:`sky-estimators`; with a per-pixel
uncertainty map ``error_on_mean`` is ``k`` times the propagated
``sqrt(sum(sigma_i**2)) / n_pix`` (exactly that for the mean), while
``std`` stays the measured scatter.

Four ways to get a sky:

`SkyEstimate.from_image`
    one level for the whole frame (the notebook).
`SkyEstimate.from_annulus`
    one level per aperture, from the whole pixels (``method='center'``) of
    any photutils annulus (circular, elliptical or rectangular), with the
    same estimators and factors ``k``. A small annulus gives a large
    ``error_on_mean``, and the ``sky_mean`` term ``n_pix**2 *
    error_on_mean**2`` of the error budget carries it into the flux error (photutils'
    ``sum_err`` and Source Extractor leave it out; IRAF ``phot``,
    AstroImageJ and SEP's ``bkgann`` keep it).
`SkyEstimate.from_background2d`
    a 2-D map from photutils' `~photutils.background.Background2D`.
`SkyEstimate.from_maps`
    2-D background and RMS maps made elsewhere (e.g. Source Extractor's
    BACKGROUND and BACKGROUND_RMS check images).

For a map (`SkyEstimate.is_map`) the error of the level and how it enters
the budget are described in :ref:`local-sky` (and in the docstring of the
map route, ``background/maps.py``).
"""

import copy
import dataclasses
import math
import warnings

import astropy.units as u
import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..aperture.utils import all_positions, aperture_groups
from ..io.units import checked_unit
from ..utils.html import html_table
from ..utils.inputs import as_frame, overflow_culprits
from ..utils.numbers import (
    check_bool,
    check_choice,
    check_index,
    positive_integer,
    positive_scalar,
)
from ..utils.stats import skew_ratio
from .annulus import annulus_statistics, check_annulus, usable_centroids
from .annulusframe import (
    MAX_SPREAD_FRACTION,
    surface_corrections,
)
from .estimators import (
    ANNULUS_EXACT_MAX,
    EXACT_POISSON_MAX,
    MIN_PEDESTAL_SIGNIFICANCE,
    MIN_SKY_PIXELS,
    checked_gain,
    clip_factors,
    estimator_efficiency,
    estimator_statistics,
    is_digitised,
    pedestal_level,
    pedestal_test,
    poisson_level,
    poisson_skew_ratio,
    skew_bias_factor,
)
from .globalsky import (
    UNSEEN_SKY_KEY,
    check_crowding,
    faint_light_beside,
    global_sky,
    store_light,
)
from .maps import (
    MeshStatistics,
    background2d_parts,
    kept_mesh_levels,
    maps_parts,
)
from .methods import SKY_METHODS
from .skylift import WholeFrame, discrete_level
from .skytrend import frame_trend

__all__ = ['SkyEstimate', 'SKY_METHODS']


def _unmeasured(value, n_pix):
    """True where one level per aperture had no usable sky pixel
    (``n_pix`` 0: a NaN level, its photometry row NaN and flagged)."""
    if n_pix is not None and value.ndim == 1:
        return np.asarray(n_pix) == 0
    return np.zeros(value.shape, bool)


def _check_error_on_mean(error_on_mean, value, unmeasured):
    """``error_on_mean`` finite and non-negative; for a map, a scalar or a
    map of the level's shape."""
    unmeasured = (unmeasured if error_on_mean.shape == unmeasured.shape
                  else np.zeros(error_on_mean.shape, bool))
    if (not np.all(np.isfinite(error_on_mean) | unmeasured)
            or np.any(error_on_mean[~unmeasured] < 0)):
        raise ValueError('error_on_mean must be finite and non-negative')
    if value.ndim == 2 and error_on_mean.ndim not in (0, 2):
        raise ValueError('error_on_mean of a map must be a scalar or a '
                         f'map, got shape {error_on_mean.shape}')
    if (value.ndim == 2 and error_on_mean.ndim == 2
            and error_on_mean.shape != value.shape):
        raise ValueError(f'error_on_mean map shape {error_on_mean.shape} '
                         f'does not match value {value.shape}')


def _sky_unit(unit, value, std, error_on_mean):
    """The unit of a sky: ``unit`` if given, else that of the first
    Quantity among ``value``, ``std`` and ``error_on_mean`` (None without
    one)."""
    if unit is not None:
        return checked_unit(unit, 'unit')
    for given in (value, std, error_on_mean):
        if isinstance(given, u.Quantity):
            return given.unit
    return None


def _in_unit(given, unit, name):
    """``given`` as plain numbers in the sky's ``unit``: a Quantity
    converted (a UnitConversionError, a ValueError, naming ``name`` when
    it cannot be), plain numbers taken to be in it."""
    if not isinstance(given, u.Quantity):
        return given
    try:
        return given.to_value(unit)
    except u.UnitConversionError as exc:
        raise u.UnitConversionError(f'{name} is in {given.unit}, not '
                                    f'convertible to the sky unit {unit}'
                                    ) from exc


def _check_n_pix(n_pix, value):
    """``n_pix`` non-negative, not all 0, and for levels (not a map) whole
    numbers; returned as an array (0-d for a scalar)."""
    n_pix = np.asarray(n_pix)
    if n_pix.dtype.kind not in 'biuf':
        raise TypeError('n_pix must be a number of pixels, got '
                        f'{n_pix.dtype} values')
    if np.any(n_pix < 0) or np.all(n_pix == 0):
        raise ValueError('n_pix must be positive (no sky pixels)')
    if value.ndim != 2 and not np.all(np.isfinite(n_pix)
                                      & (n_pix == np.round(n_pix))):
        raise ValueError('n_pix (pixels in the estimate) must be whole '
                         f'numbers, got {n_pix.tolist()}')
    return n_pix[()]


def _real_array(values, name):
    """``values`` as a float array; text, objects, booleans and complex
    numbers are a TypeError naming ``name``."""
    arr = np.asarray(values)
    if arr.dtype.kind not in 'iuf':
        raise TypeError(f'{name} must be a number or an array of numbers, '
                        f'got {values!r:.80}')
    return arr.astype(float, copy=False)


def check_sky_arrays(value, std, n_pix, error_on_mean, efficiency):
    """
    Validate the arrays of a sky estimate.

    Returns ``value``, ``std``, ``n_pix`` and ``error_on_mean`` as float
    arrays (0-d for a scalar; ``n_pix`` None for a map without pixel
    counts). ``error_on_mean`` defaults to ``efficiency * std /
    sqrt(n_pix)``, 0 for a map without ``n_pix`` (the level taken as
    exact), NaN for an aperture whose sky had no usable pixel.
    """
    value = _real_array(value, 'value')
    std = _real_array(std, 'std')
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
        n_pix = _check_n_pix(n_pix, value)
    if error_on_mean is None:
        with np.errstate(divide='ignore', invalid='ignore'):
            error_on_mean = (0.0 if n_pix is None else np.where(
                unmeasured, np.nan, efficiency * std / np.sqrt(n_pix)))
    error_on_mean = _real_array(error_on_mean, 'error_on_mean')
    _check_error_on_mean(error_on_mean, value, unmeasured)
    return value[()], std[()], n_pix, error_on_mean[()]


def sky_doubts(value, std, n_pix, *, reported=None):
    """
    Where a sky is doubtful, and why.

    A level whose per-pixel scatter is 0 (every pixel alike, a scatter that
    underflows, a noiseless simulation) gives error bars without the sky's
    noise; one from fewer than `MIN_SKY_PIXELS` pixels rests on a scatter
    that few pixels cannot measure. Levels without pixels (``n_pix`` 0, a
    NaN level) are not counted: their rows are NaN already. ``reported``
    (bool, shaped like ``value``): the levels already flagged, and warned
    about, where they were estimated (an annulus sky's ``meta['flags']``);
    they are doubtful but give no reason again.

    Returns
    -------
    doubtful : ndarray of bool
        Shaped like ``value`` (0-d for one level).
    reasons : list of str
        One phrase per kind of doubt not yet reported (empty when none).
    """
    unmeasured = _unmeasured(value, n_pix)
    # a std whose square underflows gives the error bars no sky noise too
    with np.errstate(over='ignore'):  # a square beyond floats is not 0
        zero = (np.square(np.asarray(std, dtype=float)) == 0) & ~unmeasured
    few = np.zeros(np.shape(value), bool)
    if n_pix is not None and np.ndim(value) != 2:
        few = (np.asarray(n_pix) < MIN_SKY_PIXELS) & ~unmeasured
    doubtful = zero | few
    if reported is not None:
        zero, few = zero & ~reported, few & ~reported
    reasons = []
    what = 'pixels of the map' if np.ndim(value) == 2 else 'levels'
    if np.any(zero):
        tiny = '' if np.all(np.asarray(std)[zero] == 0) else (
            ' or its square underflows')
        reasons.append(
            f'std is 0{tiny} ({int(np.count_nonzero(zero))} of {zero.size} '
            f'{what}'
            '; equal pixels, a scatter that underflows, or a noiseless '
            'simulation), so the error bars measured against it leave out '
            'the sky noise')
    if np.any(few):
        reasons.append(
            f'{int(np.count_nonzero(few))} of {few.size} levels come from '
            f'fewer than {MIN_SKY_PIXELS} pixels, too few to measure the '
            'scatter')
    return doubtful, reasons


def sky_doubt_flags(sky, sky_std):
    """
    `~ccdphot_ext.flags.FLAG_SKY_ANNULUS` for each photometry row measured
    against a doubtful sky (`sky_doubts`), else 0.

    ``sky_std`` is each row's per-pixel sky scatter: for a map, its
    weighted summary over the row's pixels, and a row is flagged where it
    is 0; one level, or one per aperture, flags the rows of its doubtful
    levels.
    """
    from ..flags import FLAG_SKY_ANNULUS
    sky_std = np.asarray(sky_std, dtype=float)
    if sky.is_map:  # (a row on some zero-RMS pixels: `zero_rms`)
        doubtful = np.square(sky_std) == 0
    else:
        doubtful = np.broadcast_to(
            sky_doubts(sky.value, sky.std, sky.n_pix)[0], sky_std.shape)
    return np.where(doubtful, FLAG_SKY_ANNULUS, 0).astype(np.int32)


def zero_rms(rms, used, axis=None):
    """
    True where a ``used`` pixel of a sky map's ``rms`` (its cutout under
    an aperture) is 0, or so small that its square underflows: that
    pixel's sky noise is left out of the row's error, which then gets
    `~ccdphot_ext.flags.FLAG_SKY_ANNULUS` as a row on a wholly zero RMS
    does. ``axis``: as in `numpy.any` (1 for one row per aperture).
    """
    return np.any(used & (np.square(rms) == 0), axis=axis)


def check_estimator(method, sigma):
    """The estimator's name checked; the clipping ``sigma`` validated."""
    check_choice(method, 'method', SKY_METHODS)
    return positive_scalar(sigma, 'sigma', allow_none=False)


def check_maxiters(maxiters):
    """``maxiters`` of a sigma clip: a positive integer or None (until
    convergence), else an error naming it."""
    return None if maxiters is None else positive_integer(maxiters,
                                                           'maxiters')


def _html_rows(sky):
    """The (quantity, value) rows of the HTML table."""
    un = '' if sky.unit is None else f' [{sky.unit}]'
    if sky.is_map:
        return [('shape', str(sky.shape)),
                (f'median level{un}', float(np.median(sky.value))),
                (f'median std per pixel{un}', float(np.median(sky.std))),
                *((key, str(sky.meta[key])) for key in
                  ('bkg_estimator', 'box_size', 'filter_size')
                  if key in sky.meta)]
    if sky.isscalar:
        return [(f'level{un}', sky.value),
                (f'std per pixel{un}', sky.std),
                ('pixels', sky.n_pix),
                (f'error of the level{un}', sky.error_on_mean)]
    return [('apertures', len(sky)),
            (f'median level{un}', float(np.nanmedian(sky.value))),
            (f'median std per pixel{un}', sky.pixel_std),
            (f'median error of the level{un}',
             float(np.nanmedian(sky.error_on_mean)))]


def sky_html(sky):
    """The estimate as a compact HTML table (Jupyter)."""
    return html_table(f'SkyEstimate ({sky.method})', ('quantity', 'value'),
                      _html_rows(sky))


def sky_repr(sky):
    """The estimate in one line."""
    if sky.is_map:
        return (f'<SkyEstimate method={sky.method!r} map shape='
                f'{sky.shape} median={np.median(sky.value):.6g}>')
    if sky.isscalar:
        return (f'<SkyEstimate method={sky.method!r} value={sky.value:.6g}'
                f' std={sky.std:.6g} n_pix={sky.n_pix} '
                f'error_on_mean={sky.error_on_mean:.3g}>')
    return (f'<SkyEstimate method={sky.method!r} per-aperture '
            f'(n={len(sky)})>')


def check_sky(sky, *, unit=None, n_apertures=None):
    """
    ``sky`` a `SkyEstimate` in the data ``unit`` with one level, one level
    per aperture (``n_apertures`` of them) or a map; TypeError, UnitsError
    or ValueError naming ``sky`` otherwise.
    """
    if not isinstance(sky, SkyEstimate):
        raise TypeError('sky must be a SkyEstimate (e.g. '
                        'SkyEstimate.from_image(data)), got '
                        f'{type(sky).__name__}')
    if sky.unit is not None and unit is not None and sky.unit != unit:
        raise u.UnitsError(f'sky is in {sky.unit} but data is in {unit}')
    if (n_apertures is not None and not sky.is_global
            and len(sky) != n_apertures):
        raise ValueError(f'sky has {len(sky)} levels for {n_apertures} '
                         'apertures; give one level or one per aperture')


def _error_on_mean_source(propagated):
    """Where the error of the level came from, for ``meta``."""
    return 'measured std' if propagated is None else 'uncertainty map'


def _error_on_mean(propagated, efficiency):
    """The error of a level from an uncertainty map: the estimator's
    efficiency times the propagated ``sqrt(sum(sigma_i**2)) / n`` (a median
    or a clipped mean scatters more than the mean of the same pixels);
    None (from the measured scatter) without a map."""
    return None if propagated is None else efficiency * propagated


def _scatter_error(res, efficiency):
    """The error of the levels of ``res`` (`global_sky`'s or
    `annulus_statistics`'): from the uncertainty map (`_error_on_mean`),
    else ``efficiency * std / sqrt(n_pix)`` (NaN for a level without
    pixels), the error `SkyEstimate` takes by default."""
    error = _error_on_mean(res['propagated'], efficiency)
    if error is not None:
        return error
    n_pix = np.asarray(res['n_pix'])
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(n_pix > 0, efficiency * np.asarray(res['std'])
                        / np.sqrt(np.maximum(n_pix, 1)), np.nan)[()]


def _annulus_meta(res, annulus, method, sigma, maxiters):
    """The ``meta`` of an annulus sky: the statistics' counts and flags,
    the annulus and the estimator's parameters."""
    meta = res['meta']
    meta.update(method=method, annulus=type(annulus).__name__,
                overlap='center', annulus_aperture=annulus,
                error_on_mean_from=_error_on_mean_source(
                    res['propagated']))
    if method == 'sigma_clip':
        meta.update(sigma=sigma, maxiters=maxiters,
                    std_factor=clip_factors(sigma)[0])
    return meta


#: A sky level whose photon noise at the given gain, ``level / gain``,
#: exceeds this many times its measured variance ``std**2`` cannot be all
#: photons at that gain.
MAX_PHOTON_SHARE = 1.5
#: Standard errors of a measured variance (``sqrt(2 / (n - 1))`` of it,
#: from ``n`` pixels) allowed above `MAX_PHOTON_SHARE`, so that a level of
#: few pixels (a small sky region, an annulus) is not refused for the
#: scatter of its own variance.
MISFIT_VARIANCE_ERRORS = 4.0


def _photon_misfit(level, std, gain, n_pix=None, warn=True):
    """
    True for levels that cannot be all photons at ``gain``: their photon
    variance ``level / gain`` exceeds `MAX_PHOTON_SHARE` times the measured
    ``std**2`` (also where that square underflows), that variance taken
    `MISFIT_VARIANCE_ERRORS` of its standard errors high where measured from
    ``n_pix`` pixels, as in count rates given the gain of counts, or with
    the bias left in. Warns, naming ``gain`` (unless not to ``warn``).
    """
    level = np.asarray(level, dtype=float)
    var = np.square(np.asarray(std, dtype=float))
    if n_pix is not None:
        var = var * (1.0 + MISFIT_VARIANCE_ERRORS * np.sqrt(
            2.0 / np.maximum(np.asarray(n_pix, dtype=float) - 1.0, 1.0)))
    with np.errstate(invalid='ignore'):
        misfit = ((level > 0) & (np.asarray(std) > 0)
                  & (level > MAX_PHOTON_SHARE * gain * var))
    if warn and np.any(misfit):
        first = np.flatnonzero(np.ravel(misfit))[0]
        lv, sd = np.ravel(level)[first], np.ravel(np.asarray(std))[first]
        warnings.warn(
            f'gain={gain:g} does not fit the sky: a level of {lv:.4g} would '
            f'have a photon noise of {math.sqrt(lv / gain):.4g} per pixel, '
            f'more than its measured std {sd:.4g} '
            f'({int(np.count_nonzero(misfit))} of {misfit.size} levels; '
            'data in count rates given the gain of counts, or a bias left '
            'in?): the Poisson bias of the estimator is not removed from '
            'those levels', AstropyUserWarning, stacklevel=4)
    return misfit


def _poisson_corrected(level, std, gain, method, sigma, meta, misfit=None,
                       offset=0.0):
    """
    The level with the estimator's Poisson-skew bias removed (``gain``
    given), else as measured: ``level + skew_bias_factor * mu3 / var``,
    ``mu3 / var`` from `poisson_skew_ratio` of the photons, ``level -
    offset`` (``offset``: a pedestal the levels share); ``meta`` records
    the bias (a float for one level, a list for one per annulus) and a
    note. Levels that are not photons at ``gain`` (``misfit``, from
    `_photon_misfit`; None: found here) keep their value.
    """
    if gain is None:
        return level
    bias = -skew_bias_factor(method, sigma) * poisson_skew_ratio(
        level - offset, std, gain)
    if misfit is None:
        misfit = _photon_misfit(level, std, gain)
    bias = np.where(np.isfinite(level) & ~misfit, bias, 0.0)
    if np.ndim(level) == 0:
        bias = float(bias)
    meta['estimator_bias'] = bias if np.ndim(bias) == 0 else bias.tolist()
    meta['estimator_bias_note'] = (
        f'the {method} estimator reads a Poisson sky low by '
        f'{skew_bias_factor(method, sigma):.4f} times its third '
        'moment over its variance (level / (gain**2 std**2)); '
        'removed from the level')
    return level - bias


def _estimator_statistics(res, method, sigma):
    """What the whole-frame estimator measured (`clip_statistics`,
    `median_statistics`), from the statistics of `global_sky`."""
    if 'window' in res:  # a large frame's clip: bounds and sums
        return res['window']
    return estimator_statistics(*res['pixels'], method, sigma)


def _noise_correlation(frame, meta, method, mask=None):
    """
    The factor by which correlated noise makes a sky level scatter more
    than white noise (`mean_variance_factor`, on the pixels not in
    ``mask``, the frame's own mask by default: for a whole-frame level
    those it may use, its sources masked), where neighbouring pixels'
    noise is significantly correlated (`is_correlated`: a resampled
    mosaic, a smoothed frame), else 1; recorded in
    ``meta['noise_correlation_factor']`` with its error. A median's factor
    is that of the signs of the deviations (``method``).
    """
    from .noisecheck import (
        is_correlated,
        mean_variance_factor,
        pixel_correlation,
    )

    if not is_correlated(*pixel_correlation(frame.data, mask=frame.mask)):
        return 1.0
    median = method == 'median'
    factor, err = mean_variance_factor(
        frame.data, mask=frame.mask if mask is None else mask,
        median=median)
    if mask is not None and not math.isfinite(factor):
        # too few pixels between the sources: measured on whole blocks,
        # their sources masked by the blocks' own test, the stars' wings
        # in (an overestimate)
        factor, err = mean_variance_factor(frame.data, mask=frame.mask,
                                           median=median)
        warnings.warn(
            'the sky level\'s error is uncertain: the source mask leaves too '
            'few pixels to measure how much the frame\'s correlated noise '
            'inflates it; '
            + (f'the factor {factor:.3g} measured with the stars\' wings in '
               '(an overestimate) was used' if math.isfinite(factor) else
               'it was left out (white noise assumed, an underestimate)')
            + '. Measure the noise on blank sky (ApertureNoise) or use '
            'a local sky', AstropyUserWarning, stacklevel=3)
        meta['noise_correlation_factor_note'] = (
            'measured with the sources in: too few pixels between them')
    if not math.isfinite(factor):
        return 1.0
    meta['noise_correlation_factor'] = factor
    meta['noise_correlation_factor_error'] = err
    return factor


def _correlated_error(error, res, efficiency, factor):
    """The error of the levels (None: from the scatter, `_scatter_error`
    of ``res``) times the square root of the `_noise_correlation`
    ``factor``; as given where the noise is white (factor 1)."""
    if factor == 1.0:
        return error
    if error is None:
        error = _scatter_error(res, efficiency)
    return error * math.sqrt(factor)


def _whole_frame_level(res, gain, method, sigma, meta, factor=1.0,
                       plain=False):
    """
    The level, std, efficiency and error of the level (None: from the std)
    of a whole-frame sky. With the gain, a sigma-clipped or median level
    is solved under the exact distribution of a Poisson sky
    (`poisson_level`: ``meta['estimator_bias']`` the shift, ``std`` the
    model's, ``meta['std_measured']`` the estimator's); without it, for
    the mean, or where the model does not apply, as `_poisson_corrected`.
    ``factor`` (`_noise_correlation`) scales the pixel variance back to
    the photons' before resampling when their fit is checked. Without the
    gain, `_skew_corrected` (unless ``plain``: the plain statistic asked
    for, ``mask_sources=False``, is the estimator's).
    """
    sol = None
    if gain is None and plain:
        return (res['level'], res['std'], res['efficiency'],
                _error_on_mean(res['propagated'], res['efficiency']))
    if gain is None:
        return _skew_corrected(res, method, sigma, meta)
    if _photon_misfit(
            res['level'], res['std'] * math.sqrt(factor), gain,
            res['n_pix']):
        # not photons at this gain: neither model nor correction applies
        meta.update(estimator_bias=0.0, estimator_bias_note=(
            f'gain={gain:g} does not fit the sky (more photon noise than '
            'its scatter): the level is the estimator\'s'))
        return (res['level'], res['std'], res['efficiency'],
                _error_on_mean(res['propagated'], res['efficiency']))
    if gain is not None and method != 'mean':
        stats = _estimator_statistics(res, method, sigma)
        if factor > 1.0:
            return _resampled_level(stats, gain, res, method, meta)
        sol = poisson_level(stats, gain, res['level'], res['std'])
        pedestal = _pedestal(stats, gain, sol, res, method, sigma, meta)
        if pedestal is not None:
            return pedestal
    if sol is None:
        level = _poisson_corrected(res['level'], res['std'], gain, method,
                                   sigma, meta, misfit=False)
        return (level, res['std'], res['efficiency'],
                _error_on_mean(res['propagated'], res['efficiency']))
    efficiency = sol['error_on_mean'] * math.sqrt(res['n_pix']) / sol['std']
    meta.update(
        estimator_bias=float(res['level'] - sol['level']),
        estimator_bias_note=(
            f'the {method} estimator reads a Poisson sky low; the level is '
            'solved under the exact distribution of its pixels (photons '
            'plus Gaussian read noise, over the gain'
            + (', in whole data units' if _digitised(res) else '') + ')'),
        std_measured=float(res['std']),
        poisson_electrons=sol['lam'], poisson_read_noise=sol['read_noise'])
    error = (sol['error_on_mean'] if res['propagated'] is None
             else efficiency * res['propagated'])
    return sol['level'], sol['std'], efficiency, error


#: Without the gain, a whole-frame level is corrected for its estimator's
#: Poisson bias where the pixels' third moment over their variance
#: exceeds this many of its sampling errors (`_skew_corrected`); a sky
#: of white noise is left as its estimator measured it (a skew that
#: large by chance: 1 frame in 740).
SKEW_NSIGMA = 3.0
#: Where a crowded frame's source mask leaves too few pixels to show even
#: a sky of photons alone skewed (its largest ratio, ``std**2 / level``,
#: within `SKEW_NSIGMA` sampling errors), the level keeps its estimator's
#: bias, and `_skew_corrected` warns where that bias, were the sky all
#: photons, could exceed this share of the level's error (300 stars of
#: 300-10**4 ADU on a 1035 ADU sky at 2.23 e-/ADU, 512 x 512, 60% masked:
#: the clipped mean 0.32 of its errors low).
SKEW_HIDDEN_SHARE = 0.25


def _skew_corrected(res, method, sigma, meta):
    """
    The level, std, efficiency and error of a whole-frame sky measured
    without the gain: a median or a clipped mean reads a skewed (Poisson)
    sky low by `skew_bias_factor` times its third central moment over its
    variance, the ratio here measured on the frame itself (the pixels'
    mean cubed deviation in the estimator's wide window,
    ``stats['m3']``, over ``std**2``: `skew_ratio`, as a Background2D
    map's skew is read), at most ``std**2 / level`` where
    the level is positive (a sky of photons alone, read noise and faint
    stars no more skewed: the light of stars too faint for the source
    mask skews the pixels too), and removed: ``meta['estimator_bias']``
    the shift (negative: the estimator read low) and
    ``meta['estimator_bias_error']`` its error, ``skew_bias_factor *
    sqrt(6 / n) * std`` (the sampling error of a third moment of ``n``
    pixels), added in quadrature to the level's error (0.12 of it for a
    clipped mean, 0.33 for a median). Only where the ratio exceeds
    `SKEW_NSIGMA` times that sampling error (a sky of white noise keeps
    its estimator's level); as measured for the mean, or without a third
    moment or scatter.
    """
    efficiency = res['efficiency']
    error = _error_on_mean(res['propagated'], efficiency)
    factor = skew_bias_factor(method, sigma)
    stats = (_estimator_statistics(res, method, sigma) if factor > 0
             else {})
    var = float(res['std']) ** 2
    m3 = stats.get('m3')
    if m3 is None or not (var > 0 and math.isfinite(m3)):
        return res['level'], res['std'], efficiency, error
    n = max(int(stats.get('n_window') or stats['n']), 2)
    # a median's pixels are cubed about the median, ``factor * mu3 / var``
    # below the mean: ``mu3 (1 + 3 factor)`` to first order
    ratio, spread = skew_ratio(
        m3, var, n, response=1.0 + 3.0 * factor if method == 'median'
        else 1.0)  # spread: the ratio's sampling error
    if res['level'] > 0:  # no more skewed than photons alone
        ratio = min(ratio, var / float(res['level']))
    if not ratio > SKEW_NSIGMA * spread:  # not shown to be skewed
        _warn_hidden_skew(res, method, factor, spread, error)
        return res['level'], res['std'], efficiency, error
    bias = -factor * ratio
    spread *= factor
    meta.update(
        estimator_bias=float(bias), estimator_bias_error=float(spread),
        estimator_bias_note=(
            f'no gain: the {method} estimator reads a skewed sky low by '
            f'{factor:.4f} times its third moment over its variance, '
            'measured on the frame\'s pixels (at most their variance over '
            'the level, as photons alone); removed, its error added to the '
            'level\'s'))
    if error is None:
        error = _scatter_error(res, efficiency)
    return (res['level'] - bias, res['std'], efficiency,
            math.hypot(float(error), spread))


def _warn_hidden_skew(res, method, factor, spread, error):
    """
    Warn, naming ``gain``, where a crowded frame (its source mask's
    matched filter ran, ``meta['matched_filter']``) measured without the
    gain leaves too few pixels to show a sky of photons alone skewed (its
    ratio ``std**2 / level`` within `SKEW_NSIGMA` of the ratio's sampling
    error ``spread``: the level keeps its estimator's Poisson bias), and
    that bias, ``factor * std**2 / level`` were the sky all photons
    (``meta['estimator_bias_bound']``), exceeds `SKEW_HIDDEN_SHARE` of
    the level's ``error`` (None: from the scatter). The faint stars'
    light skews those pixels too, so their skew cannot stand for the
    photons'.
    """
    meta = res['meta']
    level = float(res['level'])
    if meta.get('matched_filter') is None or not level > 0:
        return
    var = float(res['std']) ** 2
    if var / level > SKEW_NSIGMA * spread:  # photons alone would show
        return
    if error is None:
        error = _scatter_error(res, res['efficiency'])
    bound = factor * var / level
    if not bound > SKEW_HIDDEN_SHARE * float(error):
        return
    meta['estimator_bias_bound'] = bound
    note = (
        f'no gain: the {method} estimator reads a Poisson sky low by up '
        f'to {bound:.3g} ({bound / float(error):.2g} times the level\'s '
        'error, were its noise all photons), and the source mask of this '
        'crowded frame leaves too few pixels to tell its skew from the '
        'faint stars\' light: the level keeps that bias (meta'
        '["estimator_bias_bound"]); pass gain= to have it removed')
    meta['estimator_bias_note'] = note
    warnings.warn(note, AstropyUserWarning, stacklevel=5)


def _pedestal(stats, gain, sol, res, method, sigma, meta):
    """
    The level, std, efficiency and error of a whole-frame sky whose third
    moment holds more photons than its level allows (`pedestal_evidence`
    against the exact model's solution ``sol``, or against no photons
    where it has none, a level not above 0 among them): a sky-subtracted
    frame, solved with a pedestal
    (`pedestal_level`); None where the evidence is short of
    `MIN_PEDESTAL_SIGNIFICANCE` (``meta['pedestal_significance']`` records
    it). Warns (`_warn_pedestal`) when the pedestal model has no solution,
    and for a level not above 0 without evidence of its photons, where
    the bias that may be left (up to `skew_bias_factor` over the gain)
    exceeds half the level's error.
    """
    z, ped = pedestal_test(stats, gain, sol, res['level'], res['std'])
    if not math.isfinite(z):
        return None
    meta['pedestal_significance'] = z
    if ped is None:
        error = _scatter_error(res, res['efficiency'])
        if (z > MIN_PEDESTAL_SIGNIFICANCE or res['level'] * gain <= 0.0) and (
                skew_bias_factor(method, sigma) / gain > 0.5 * error):
            _warn_pedestal(res['level'], z, gain, method, sigma)
        return None
    return _pedestal_solution(ped, res, meta, (
        f'the {method} estimator reads a Poisson sky low; its third '
        f'moment shows more photons than the level allows ({z:.1f} '
        'standard errors: a pedestal subtracted), so the level is '
        'solved under the exact distribution of its pixels with a '
        'pedestal (photons from the third moment, plus Gaussian read '
        'noise, over the gain, plus an offset'
        + (', in whole data units' if _digitised(res) else '') + ')'))


def _resampled_level(stats, gain, res, method, meta):
    """
    The level, std, efficiency and error of a whole-frame sky whose noise
    is correlated (a resampled mosaic, a smoothed frame): each pixel a
    weighted sum of several pixels' photons, less skewed than the photons
    of one pixel at the gain, so the exact model of a Poisson sky would
    remove too much. Its level is solved with the pedestal model
    (`pedestal_level`: the photons from the third moment, so its skewness
    is the pixels' own, whatever the level); where that has no solution,
    the estimator's level, not corrected (said in ``meta``).
    """
    ped = pedestal_level(stats, gain, res['level'], res['std'])
    if ped is None:
        meta.update(estimator_bias=0.0, estimator_bias_note=(
            f'the noise is correlated (a resampled frame?) and the {method} '
            "level's Poisson skew could not be solved from its third "
            'moment: the level is the estimator\'s'))
        return (res['level'], res['std'], res['efficiency'],
                _error_on_mean(res['propagated'], res['efficiency']))
    return _pedestal_solution(ped, res, meta, (
        f'the {method} estimator reads a Poisson sky low; the noise is '
        'correlated (a resampled frame?), its pixels less skewed than '
        'photons at the gain, so the level is solved with the skewness of '
        'its third moment (photons from that moment, plus Gaussian noise, '
        'over the gain, plus an offset'
        + (', in whole data units' if _digitised(res) else '') + ')'))


def _pedestal_solution(ped, res, meta, note):
    """The level, std, efficiency and error of a whole-frame sky solved
    with the pedestal model (`pedestal_level`'s ``ped``), and its ``meta``
    (the shift removed, and ``note`` saying why)."""
    efficiency = ped['error_on_mean'] * math.sqrt(res['n_pix']) / ped['std']
    meta.update(
        estimator_bias=float(res['level'] - ped['level']),
        estimator_bias_note=note, std_measured=float(res['std']),
        poisson_electrons=ped['lam'], poisson_read_noise=ped['read_noise'],
        pedestal=ped['offset'])
    error = (ped['error_on_mean'] if res['propagated'] is None
             else efficiency * res['propagated'])
    return ped['level'], ped['std'], efficiency, error


def _warn_pedestal(level, z, gain, method, sigma):
    """Warn, naming ``gain``, that a whole-frame level is not the sky's
    photons and keeps its estimator's Poisson bias: a level not above 0
    (a sky-subtracted frame) whose third moment does not tell the
    photons (``z`` of `pedestal_evidence` not beyond
    `MIN_PEDESTAL_SIGNIFICANCE`), or one whose pedestal model has no
    solution."""
    why = (f'its third moment shows more ({z:.1f} standard errors), but no '
           f'pedestal model solves it (a sky above {EXACT_POISSON_MAX:g} '
           'e- a pixel?)' if z > MIN_PEDESTAL_SIGNIFICANCE else
           f'its third moment does not tell how many ({z:.1f} standard '
           f'errors, at most {MIN_PEDESTAL_SIGNIFICANCE:g} taken as none)')
    warnings.warn(
        f'gain={gain:g}: a level of {level:.4g} is not the photons of the '
        f'sky (a sky-subtracted frame?), and {why}: the level keeps its '
        f'estimator\'s Poisson bias, up to '
        f'{skew_bias_factor(method, sigma) / gain:.3g} low',
        AstropyUserWarning, stacklevel=5)


def _annulus_levels(res, gain, method, sigma, efficiency, meta, factor=1.0):
    """
    The levels, std and errors of the levels (None: from the std) of an
    annulus sky: those `annulus_statistics` solved under the exact model
    of a Poisson sky (the photon-starved annuli, with the gain), the
    others as `_poisson_corrected`; ``meta['estimator_bias']`` the shift
    of each, ``meta['n_poisson_model']`` how many were solved. ``factor``
    (`_noise_correlation`) scales the pixel variance back to the photons'
    before resampling when their fit is checked.
    """
    misfit, offset = False, 0.0
    if gain is not None:  # levels that are not photons at this gain
        z, pedestal = res['pedestal'] or (math.nan, None)
        if math.isfinite(z):
            meta['pedestal_significance'] = z
        if pedestal is not None:
            offset = meta['pedestal'] = pedestal
        misfit = _photon_misfit(res['level'] - offset,
                                res['std'] * math.sqrt(factor), gain,
                                res['n_pix'], warn=pedestal is None)
        if pedestal is not None and np.any(misfit):
            _warn_varying_pedestal(misfit, offset, gain, method, sigma)
        if pedestal is None:
            _warn_unsubtracted_annuli(res, gain, method, sigma, efficiency,
                                      z)
    level = _poisson_corrected(res['level'], res['std'], gain, method, sigma,
                               meta, misfit, offset)
    if offset:
        meta['estimator_bias_note'] += (
            f'; the annuli\'s pooled third moment shows more photons than '
            f'their levels allow ({z:.1f} standard errors: a pedestal '
            f'subtracted), so each level\'s photons are it less the '
            f'pedestal, {offset:.4g}')
    error = _error_on_mean(res['propagated'], efficiency)
    if res['poisson'] is None:
        return level, res['std'], error
    model_level, model_std, model_error = res['poisson']
    solved = np.isfinite(model_level) & ~misfit
    meta['n_poisson_model'] = int(np.count_nonzero(solved))
    if not solved.any():
        return level, res['std'], error
    n_pix = np.maximum(res['n_pix'], 1)
    if error is None:
        error, model = _scatter_error(res, efficiency), model_error
    else:  # the model's efficiency times the propagated error
        with np.errstate(divide='ignore', invalid='ignore'):
            model = model_error * np.sqrt(n_pix) / model_std * error / (
                efficiency)
    level = np.where(solved, model_level, level)
    bias = np.where(np.isfinite(res['level']), res['level'] - level, 0.0)
    meta['estimator_bias'] = bias.tolist()
    meta['estimator_bias_note'] += (
        f"; {meta['n_poisson_model']} photon-starved annuli (up to "
        f'{ANNULUS_EXACT_MAX:g} e- a pixel) solved under the exact '
        'distribution of their pixels instead')
    return (level, np.where(solved, model_std, res['std']),
            np.where(solved, model, error))


def _frame_surface(frame, annulus, exclude, res, meta):
    """
    The frame's curvature under its annulus levels
    (`~ccdphot_ext.background.annulusframe.frame_surface`, fitted by
    `annulus_statistics`), in ``meta['frame_surface']``; where it is
    significant and fits, ``meta`` gains the per-annulus
    ``'surface_correction'``, ``'surface_correction_error'``,
    ``'surface_spread'`` and ``'surface_bend'`` (the correction's part
    from the curvature alone).

    Returns
    -------
    bend : tuple or None
        ``(correction, error, spread)`` per annulus for
        `_surface_corrected`; None where nothing is corrected.
    """
    surface = res['surface']
    record = {key: surface[key] for key in ('applied', 'note', 'n_levels',
                                            'curvature_chi2', 'chi2', 'dof')
              if key in surface}
    meta['frame_surface'] = record
    if not surface['applied']:
        return None
    correction, corr_error, spread, known, bend = surface_corrections(
        surface, annulus, exclude, frame.shape)
    record['coef'] = surface['coef'].tolist()
    record['aperture_known'] = int(np.count_nonzero(known))
    meta['surface_correction'] = correction
    meta['surface_correction_error'] = corr_error
    meta['surface_spread'] = spread
    meta['surface_bend'] = bend
    return correction, corr_error, spread


def _surface_corrected(level, std, error_on_mean, n_pix, efficiency, bend,
                       from_scatter):
    """
    The levels less the surface's corrections (`_frame_surface`), their
    std less the surface's spread over the annulus (at most
    `MAX_SPREAD_FRACTION` of the variance), and their errors: those from
    the scatter (``from_scatter``) scaled with the std, all widened by the
    corrections' errors.
    """
    correction, corr_error, spread = bend
    std = np.asarray(std, dtype=float)
    if error_on_mean is None:
        with np.errstate(divide='ignore', invalid='ignore'):
            error_on_mean = np.where(
                np.asarray(n_pix) > 0, efficiency * std
                / np.sqrt(np.maximum(n_pix, 1)), np.nan)
    with np.errstate(invalid='ignore', divide='ignore'):
        spread = np.nan_to_num(np.minimum(spread, MAX_SPREAD_FRACTION
                                          * std * std))
        narrowed = np.sqrt(std * std - spread)
        if from_scatter:
            error_on_mean = np.where(std > 0, error_on_mean * narrowed / std,
                                     error_on_mean)
    level = np.asarray(level, dtype=float) - correction
    return level, narrowed, np.hypot(error_on_mean, corr_error)


def _warn_varying_pedestal(misfit, offset, gain, method, sigma):
    """Warn, naming ``gain``, of annuli that cannot hold the photons the
    pedestal their annuli share (``offset``) leaves them (``misfit``, of
    `_photon_misfit`): the pedestal varies over the frame (a background
    map subtracted); those levels keep their estimator's bias."""
    warnings.warn(
        f'gain={gain:g}: {int(np.count_nonzero(misfit))} of {misfit.size} '
        'annuli hold fewer photons than the pedestal their annuli share '
        f'({offset:.4g}) leaves them (more photon noise than their '
        'scatter): the pedestal varies over the frame (a background map '
        'subtracted?). Those levels keep their estimator\'s Poisson bias, '
        f'up to {skew_bias_factor(method, sigma) / gain:.3g} low, and the '
        'others are corrected for the photons of one pedestal; measure the '
        'annuli with the map added back', AstropyUserWarning, stacklevel=4)


#: Annulus levels whose mean is not above 0 by this many of its errors
#: are not shown to be photons (a sky-subtracted frame), each of them.
MIN_PHOTON_SIGNIFICANCE = 3.0


def _warn_unsubtracted_annuli(res, gain, method, sigma, efficiency, z):
    """Warn, naming ``gain``, of annulus levels not shown to be the sky's
    photons where their pooled third moment (``z`` of `annulus_pedestal`)
    shows no pedestal: a level not above 0, or any level where their mean
    is not above 0 by `MIN_PHOTON_SIGNIFICANCE` of its errors (a
    sky-subtracted frame, whose levels straddle 0). Such a level keeps its
    estimator's Poisson bias, up to `skew_bias_factor` over the gain; said
    where that exceeds half the level's error."""
    if method == 'mean':
        return
    level = np.asarray(res['level'], dtype=float)
    error = np.asarray(_scatter_error(res, efficiency), dtype=float)
    bound = skew_bias_factor(method, sigma) / gain
    finite = np.isfinite(level) & np.isfinite(error)
    if not finite.any():
        return
    mean_error = (math.sqrt(float(np.sum(error[finite] ** 2)))
                  / np.count_nonzero(finite))
    unshown = not (np.mean(level[finite])
                   > MIN_PHOTON_SIGNIFICANCE * mean_error)
    with np.errstate(invalid='ignore'):
        doubtful = (finite & ((level <= 0.0) | unshown)
                    & (bound > 0.5 * error))
    if np.any(doubtful):
        told = ('' if not math.isfinite(z) else
                f' ({z:.1f} standard errors, but no pedestal model solves '
                'it)' if z > MIN_PEDESTAL_SIGNIFICANCE else
                f' ({z:.1f} standard errors, at most '
                f'{MIN_PEDESTAL_SIGNIFICANCE:g} taken as none)')
        warnings.warn(
            f'gain={gain:g}: {int(np.count_nonzero(doubtful))} of '
            f'{doubtful.size} annulus levels are not shown to be the '
            'photons of the sky (not above 0, or their mean not above 0 '
            f'by {MIN_PHOTON_SIGNIFICANCE:g} of its errors: a '
            'sky-subtracted frame?), and the third moment of the annuli '
            f'pooled does not tell the photons{told}: they keep their '
            f'estimator\'s Poisson bias, up to {bound:.3g} low',
            AstropyUserWarning, stacklevel=4)


def _digitised(res):
    """True when the whole-frame pixels were taken as whole data units."""
    if 'window' in res:
        return res['window']['digitised']
    return is_digitised(res['pixels'][0])


def _frame_sky(cls, frame, method, sigma, maxiters, mask_sources, gain,
               known=None, stacklevel=3, trend=None, fit_trend=True):
    """The whole-frame `SkyEstimate` of ``frame`` (`SkyEstimate.from_image`,
    its arguments checked) and the statistics of `global_sky` behind it;
    ``known``: the source mask of an earlier estimate of the frame
    (`global_sky`). Where the frame's sky has a significant trend
    (`~ccdphot_ext.background.skytrend.frame_trend`; ``trend``: that of
    an earlier estimate, taken as it is; none is looked for unless
    ``fit_trend``), the level and its scatter are measured on the frame
    less it (plus its mean over the level's pixels); the sky's ``_trend``
    keeps it."""
    given = trend is not None
    if given:
        frame = dataclasses.replace(frame, data=trend.flatten(frame.data))
    with np.errstate(over='ignore', invalid='ignore'):
        # sums that overflow are found below, with the pixels to blame
        res = global_sky(frame, method=method, sigma=sigma,
                         maxiters=maxiters,
                         mask_sources=mask_sources,
                         third_moment=method != 'mean',
                         known=known)
    if not (np.isfinite(res['level']) and np.isfinite(res['std'])):
        raise ValueError('data: the sky statistics overflow: '
                         f'{overflow_culprits(frame.data)}')
    if given:
        res['meta'].update(trend_variance=trend.variance,
                           trend_note=trend.note())
    elif mask_sources and fit_trend:
        trend = frame_trend(frame, res)
        if trend is not None:
            frame, res = _detrended(frame, res, trend, method, sigma,
                                    maxiters, gain)
    if res['n_bad']:
        warnings.warn(f"{res['n_bad']} masked/NaN/inf pixels excluded "
                      'from the sky estimate', AstropyUserWarning,
                      stacklevel=stacklevel)
    meta = res['meta']
    meta['error_on_mean_from'] = _error_on_mean_source(
        res['propagated'])
    factor = _noise_correlation(
        frame, meta, method,
        mask=~res['usable'].rows(0, frame.shape[0]))
    estimator = method
    if discrete_level(frame, res, gain, method, stacklevel=stacklevel + 1):
        estimator = 'mean'  # of the pixels within its wide window
    level, std, efficiency, error_on_mean = _whole_frame_level(
        res, gain, estimator, sigma, meta, factor, plain=not mask_sources)
    error_on_mean = _correlated_error(error_on_mean, res, efficiency,
                                      factor)
    sky = cls(level, std, res['n_pix'], error_on_mean=error_on_mean,
              method=method,
              n_rejected=frame.data.size - res['n_pix'],
              efficiency=efficiency, meta=meta, unit=frame.unit,
              background_variation=res['variation'])
    sky._trend = trend
    check_crowding(sky.meta, sky.std, sky.error_on_mean,
                   warn=not res['mask_warned'], stacklevel=stacklevel + 1)
    return sky, res


def _detrended(frame, res, trend, method, sigma, maxiters, gain):
    """``frame`` less its ``trend`` (`SkyTrend.flatten`) and the
    statistics of `global_sky` on it, with the source mask, coarse
    background and faint light of ``res`` (measured on ``frame``): what
    its first measure said is not said again."""
    flat = dataclasses.replace(frame, data=trend.flatten(frame.data))
    variation = res['variation']
    known = (res['usable'].blocks,
             None if variation is None else copy.copy(variation),
             res['meta'].get('faint_source_density', 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        with np.errstate(over='ignore', invalid='ignore'):
            again = global_sky(flat, method=method, sigma=sigma,
                               maxiters=maxiters, mask_sources=True,
                               third_moment=method != 'mean', known=known)
    meta = again['meta']
    for key, value in res['meta'].items():
        meta.setdefault(key, value)
    meta.update(trend_variance=trend.variance, trend_note=trend.note(),
                level_with_trend=float(res['level']),
                std_with_trend=float(res['std']))
    again.update(mask_warned=res['mask_warned'], n_bad=res['n_bad'])
    return flat, again


class SkyEstimate:
    """
    A sky level with its per-pixel scatter and its own error.

    Usually made with `from_image` (one level for the frame),
    `from_annulus` (one level per aperture), `from_background2d` or
    `from_maps` (a 2-D map). Values may be scalars, 1-D arrays with one
    entry per aperture, or 2-D maps the shape of the frame.

    Parameters
    ----------
    value : float, array_like or `~astropy.units.Quantity`
        The sky level per pixel (data unit, finite): a scalar, one per
        aperture (1-D) or a map (2-D, the frame's shape).
    std : float, array_like or `~astropy.units.Quantity`
        The per-pixel standard deviation of the background (data unit,
        finite, non-negative), shaped like ``value``. A std of 0 (or a
        level from fewer than 5 pixels) is allowed, for a
        noiseless simulation, but doubtful: it warns, and the photometry
        rows measured against it get `~ccdphot_ext.flags.FLAG_SKY_ANNULUS`.
    n_pix : int or array_like, optional
        The number of pixels that entered the estimate (whole numbers,
        non-negative, not all 0: an aperture with 0 has no sky, NaN level
        allowed; for a map: per mesh, scalar or 2-D, any non-negative
        number). Required unless ``value`` is a map.
    error_on_mean : float, array_like or `~astropy.units.Quantity`, optional
        The error of ``value`` (data unit); None (default):
        ``efficiency * std / sqrt(n_pix)``, or 0 for a map without
        ``n_pix`` (the level is then taken as exact).
    method : str, optional
        How the level was measured, for the record (default ``'user'``).
    n_rejected : int or array_like, optional
        The pixels excluded (masked, NaN/inf, clipped), for the record
        (default 0).
    efficiency : float, optional
        The factor ``k`` of the default ``error_on_mean`` (default 1, the
        mean's; see :ref:`sky-estimators`).
    meta : dict, optional
        Provenance (method parameters, pixels excluded); copied. None
        (default): empty.
    unit : `~astropy.units.Unit`, optional
        The unit of ``value`` and ``std`` (the data unit); a Quantity
        ``value``, ``std`` or ``error_on_mean`` is converted to it, and
        plain numbers are taken to be in it. None (default): the unit of
        the first Quantity among ``value``, ``std`` and ``error_on_mean``;
        without one, the data's unit, unchecked.
    background_variation : callable, optional
        How far the background under each pixel is from the level: a
        `~ccdphot_ext.BackgroundVariation` or any callable of pixel
        positions ``x, y``. `from_image` keeps it, and photometry against
        one level warns where it biases a flux. None (default) when
        unknown.

    Raises
    ------
    TypeError
        If ``n_pix`` is missing for levels, ``background_variation`` is
        not callable, or ``unit`` is neither a unit nor a unit string.
    ValueError
        If ``value`` has more than two dimensions, ``std`` does not match a
        map, a measured level or scatter is not finite (or the scatter
        negative), ``n_pix`` is negative, all 0 or (for levels) not whole,
        ``error_on_mean`` is not finite and non-negative, ``unit`` is text
        that is not a unit, or a Quantity is in a unit not convertible to
        the sky's
        (`~astropy.units.UnitConversionError`, naming it).

    Warns
    -----
    AstropyUserWarning
        If the sky is doubtful: its std is 0, or a level came from fewer
        than 5 pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> img = np.arange(1.0, 10.0).reshape(3, 3)
    >>> sky = SkyEstimate.from_image(img, method='mean', mask_sources=False)
    >>> float(sky.value), float(sky.std), int(sky.n_pix)
    (5.0, 2.581988897471611, 9)
    >>> print(f'{sky.error_on_mean:.6f}')
    0.860663
    """

    def __init__(self, value, std, n_pix=None, *, error_on_mean=None,
                 method='user', n_rejected=0, efficiency=1.0, meta=None,
                 unit=None, background_variation=None):
        self.efficiency = positive_scalar(efficiency, 'efficiency',
                                          allow_none=False)
        unit = _sky_unit(unit, value, std, error_on_mean)
        self.value, self.std, self.n_pix, self.error_on_mean = (
            check_sky_arrays(_in_unit(value, unit, 'value'),
                             _in_unit(std, unit, 'std'), n_pix,
                             _in_unit(error_on_mean, unit, 'error_on_mean'),
                             self.efficiency))
        self.method = method
        self.n_rejected = np.asarray(n_rejected)[()]
        self.meta = dict(meta or {})
        self.unit = unit
        reasons = sky_doubts(self.value, self.std, self.n_pix,
                             reported=self._flagged_levels())[1]
        if reasons:
            warnings.warn('doubtful sky: ' + '; '.join(reasons) + ' (its '
                          'photometry rows get FLAG_SKY_ANNULUS)',
                          AstropyUserWarning, stacklevel=2)
        if background_variation is not None and not callable(
                background_variation):
            raise TypeError('background_variation must be a callable of '
                            'pixel positions (x, y) or None, got '
                            f'{type(background_variation).__name__}')
        self.background_variation = background_variation
        #: How a Background2D map measured its meshes
        #: (`~ccdphot_ext.background.maps.MeshStatistics`, kept by
        #: `from_background2d` for the photometry's check of the sources'
        #: light in the map); None for other skies.
        self.mesh_statistics = None
        #: How a whole-frame level was measured (`from_image`), for
        #: `without_apertures`; None for other skies.
        self._whole_frame = None
        self._trend = None  # the frame's trend a whole-frame level is about
        #: A Background2D map before its sources' light was taken out
        #: (`from_background2d` with ``data=``), for `without_apertures`;
        #: None for other skies.
        self._map_sources = None

    @classmethod
    def from_image(cls, data, *, method='sigma_clip', mask=None,
                   uncertainty=None, sigma=3.0, maxiters=10,
                   mask_sources=True, gain=None):
        """
        Estimate one sky level for the whole frame.

        Parameters
        ----------
        data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
            The 2-D frame. An NDData's ``mask`` and ``uncertainty`` are
            used; NaN/inf pixels are excluded (with a warning).
        method : {'sigma_clip', 'mean', 'median'}, optional
            The estimator (default ``'sigma_clip'``; see
            :ref:`sky-estimators`).
        mask : array_like of bool, optional
            True for pixels to exclude (e.g. stars), combined with an
            NDData's mask; None (default): none beyond the NDData's.
        uncertainty : array_like or `~astropy.nddata.NDUncertainty`, optional
            A per-pixel 1-sigma map in the data unit; ``error_on_mean`` is
            then the estimator's efficiency times the propagated
            ``sqrt(sum(sigma_i**2)) / n_pix``. Wins over an NDData's own.
            None (default): the NDData's, else ``error_on_mean`` from the
            scatter.
        sigma : float, optional
            The clipping threshold of ``'sigma_clip'`` in standard
            deviations (default 3; positive).
        maxiters : int or None, optional
            The most clipping iterations of ``'sigma_clip'`` (default 10;
            positive); None: until convergence.
        mask_sources : bool, optional
            Exclude the stars and their faint wings, found on a binned copy
            of the frame, before the statistic (default True; ``meta``
            records the mask and ``meta['n_masked_sources']`` the pixels
            it took out). The wings of many stars bias a whole-frame level
            high, and the fluxes measured against it low, even after a
            sigma clip. ``mask_sources=False`` gives the plain whole-frame
            statistic (``method='mean'``: the notebook's ``image.mean()``
            and ``image.std()``).
        gain : float or `~astropy.units.Quantity`, optional
            The gain in electrons per data unit (a Quantity such as ``1.9 *
            u.electron / u.adu`` is worked out for the data's unit as the
            photometry does: 1 for data in electrons, times ``EXPTIME``
            for data in ``adu / s``); None (default): the gain the
            photometry takes from the data's unit and header (1 for data in
            electrons, ``EXPTIME`` for electrons per second, ``GAIN`` or
            ``EGAIN`` for adu; `~ccdphot_ext.DetectorParameters.resolve`),
            no bias correction where neither gives one (an array without
            unit or header). A median or a sigma-clipped mean reads a Poisson
            sky low, by `~ccdphot_ext.background.estimators.skew_bias_factor`
            times its third moment over its variance (0.048 and 1/6 of it):
            on a 1035 ADU sky at 2.23 e-/ADU the clipped mean by 0.020 ADU,
            about half the error of a 512 x 512 frame's level and nearly
            twice that of a 2048 x 2048 one; on a sky of a few electrons a
            pixel, with little read noise, far more than that first-order
            estimate. With the gain the level is solved under the exact
            distribution of a sky pixel (Poisson photons plus Gaussian read
            noise, over the gain, in whole data units when every pixel is
            a whole number), the photons and the read noise both from the
            estimator's own statistics
            (`~ccdphot_ext.background.estimators.poisson_level`): ``std``
            and ``error_on_mean`` are then the model's, and ``meta`` keeps
            ``'estimator_bias'`` (the shift removed), ``'std_measured'``,
            ``'poisson_electrons'`` and ``'poisson_read_noise'``. Above
            10**4 e- a pixel, or where the model does not fit (a scatter
            below the photons'), the first-order bias (``level / (gain**2
            std**2)``, the sky photons' share, as `from_background2d`) is
            removed instead. Without the gain the skew is measured on
            the frame's pixels (their third moment over their variance,
            at most their variance over the level, as photons alone) and
            its bias removed where it exceeds 3 of its sampling errors
            (``meta['estimator_bias']`` and ``'estimator_bias_error'``,
            added in quadrature to the level's error); a sky of white
            noise, or one whose skew is not shown, keeps the estimator's
            level, as does the plain statistic (``mask_sources=False``);
            where the source mask of a crowded frame leaves too few pixels
            to show even a sky of photons alone skewed, and the bias so
            kept, were the sky's noise all photons (``factor * std**2 /
            level``, ``meta['estimator_bias_bound']``), exceeds a quarter
            of the level's error, an
            `~astropy.utils.exceptions.AstropyUserWarning` says so.
            The level must be the photons' (bias and overscan
            subtracted): a level with more photon noise at this gain than
            its scatter allows warns and is not corrected. A sky-subtracted
            frame (a level near 0, its photons still there), whose third
            moment shows more photons than its level allows (beyond 3
            standard errors, ``meta['pedestal_significance']``), is
            solved with a pedestal
            (`~ccdphot_ext.background.estimators.pedestal_level`: the
            photons from that moment, ``meta['pedestal']`` the offset);
            where a level not above 0 shows none, it keeps the
            estimator's bias and warns when that may exceed half its
            error.

        Returns
        -------
        sky : `SkyEstimate`
            One level, with the coarse `background_variation` of the frame
            around it.

        Raises
        ------
        ValueError
            If ``method`` is not one of `SKY_METHODS`, ``sigma`` or
            ``maxiters`` is not positive, or no usable pixel is left.

        Notes
        -----
        In a crowded frame (sources cover a fifth of it) the sky between
        them is searched once more with a matched filter
        (``meta['matched_filter']``), which masks stars several times
        fainter than the binned mask finds. The light of stars too faint
        for either still lifts the level. From the light of the faint
        stars a slightly deeper search finds off the mask
        (``meta['faint_light']``, measured on the frame with its error),
        ``meta['crowding_bias']`` estimates by how much (data unit per
        pixel; 0 where that light is within its noise), the light the
        masked stars' wings spread past the mask added
        (``meta['wing_light']``, from the profile of the frame's brightest
        isolated stars, where it exceeds 2.5 times its error,
        ``meta['wing_light_error']``); when the estimate
        exceeds 1.5 times ``error_on_mean`` an
        `~astropy.utils.exceptions.AstropyUserWarning` says so, and
        ``meta['crowding_note']`` keeps the message. The level is not
        changed by the estimate.

        Where neighbouring pixels' noise is correlated (a resampled
        mosaic, a smoothed frame: the check behind the photometry's
        correlated-noise warning), the level, the mean of pixels that
        share their noise, scatters more than white noise of their
        variance: ``error_on_mean`` is multiplied by the square root of
        the sum of the noise's autocorrelation over lags up to 5 pixels,
        measured on the pixels the level may use
        (``meta['noise_correlation_factor']`` and its ``_error``; 1 and
        absent for white noise, whose numbers are unchanged). With the
        gain, such a frame's pixels are less skewed than one pixel's
        photons, and the level is solved with the skewness of its own
        third moment (the pedestal model, ``meta['pedestal']`` near 0
        unless a sky was subtracted).

        Stars too faint for the source mask keep their light in the level;
        `~ccdphot_ext.photometer`, `~ccdphot_ext.measure` and optimal
        extraction take out that of the stars they measure
        (`without_apertures`). Where the mask's growth of 3 blocks takes
        most of the frame but its segments little of it, and nearly all
        of them are faint (faint stars on a faint sky), the segments are
        grown by their brightness instead (``meta['source_mask_growth']``).
        A sky of whole electrons without read noise (under 25 e-, with the
        gain) is the mean of its pixels within 10 standard deviations of
        their median (no correction applies to a median or a clipped mean
        of such pixels), with a warning (``meta['discrete_note']``;
        :ref:`sky-apertures`).

        On a tilted or vignetted frame the level's pixels mix a spread of
        sky levels, which their scatter would hold as noise (and the
        level's error and the coarse map's with it). Where a quadratic
        surface of those pixels is significant and holds more than 6% of
        their variance (`~ccdphot_ext.background.skytrend.frame_trend`),
        the level and ``std`` are measured on the frame less that surface
        plus its mean over the level's pixels (the same mean sky):
        ``meta['trend_variance']``, ``'std_with_trend'``,
        ``'level_with_trend'`` (the frame's own) and ``'trend_note'`` say
        so, and `without_apertures` measures again about the same
        surface (:ref:`local-sky`).

        On frames of more than a million usable pixels the ``'sigma_clip'``
        bounds come from a strided subsample and the statistics from one
        pass over the frame, so a 64-megapixel frame is neither sorted nor
        copied; the error of the level includes the subsample's share (see
        :ref:`performance`).
        """
        sigma = check_estimator(method, sigma)
        maxiters = check_maxiters(maxiters)
        mask_sources = check_bool(mask_sources, 'mask_sources')
        frame = as_frame(data, uncertainty=uncertainty, mask=mask)
        gain = checked_gain(gain, frame.unit, frame.meta)
        sky, res = _frame_sky(cls, frame, method, sigma, maxiters,
                              mask_sources, gain)
        sky._whole_frame = WholeFrame.of(frame, res, method=method,
                                         sigma=sigma, maxiters=maxiters,
                                         mask_sources=mask_sources,
                                         gain=gain)
        return sky

    def without_apertures(self, data, apertures):
        """
        The sky without the light of the stars measured.

        A level from `from_image` keeps the light of stars too faint for
        its source mask; measured against it, their fluxes read low by
        their apertures' area times that lift (faint stars on a 100 e- sky:
        pulls of -0.2). Where the pixels of ``apertures`` were used by the
        level, the lift of their discs grown for the stars' wings (1.5
        times each aperture's half size, at least 2 pixels beyond it; 2
        pixels only where that would leave fewer than a quarter of the
        level's pixels) is estimated from those pixels (their excess over
        the frame's coarse background: their stars' light and their
        noise); where it exceeds a tenth of ``error_on_mean``, up or down,
        the level is measured again with them added to its mask (the same
        source mask, estimator, clip and Poisson correction; a source mask
        that covered the frame and was dropped, ``meta['source_mask_dropped']``,
        is not searched for again: the apertures mask the sources
        measured; :ref:`sky-apertures`). `~ccdphot_ext.photometer`,
        `~ccdphot_ext.measure` and optimal extraction call it on the sky
        they are given, unless asked not to
        (``sky_without_apertures=False``).

        A Background2D map made with the frame (`from_background2d` with
        ``data=``) keeps the same light in its meshes (121 stars of 300
        ADU on 384 x 384 pixels of a 300 ADU sky, 48 px meshes: their
        fluxes read 0.10 of their errors low). Its meshes are measured
        again as they were without the frame's sources
        (`~ccdphot_ext.background.maps.source_lift`), the apertures' grown
        discs added to the source mask: a mesh the discs leave fewer
        pixels has a larger error, and one they (all but) empty is
        handled as one the sources empty. That is done where the discs'
        pixels the meshes used lift the map by more than a tenth of its
        error at an aperture, their excess over the map estimated first
        per mesh; the new map's ``meta`` holds the same three entries
        (``'aperture_lift'``: the mean level taken away over the discs'
        pixels the meshes used), and its ``'source_lift'`` the lift of the
        sources and the apertures together. A map made without ``data=``
        (or by `from_maps`) cannot be measured again: it is returned
        unchanged, and the photometry flags the rows that the light of
        the frame's sources in it biases
        (`~ccdphot_ext.photometry.residual.check_map_sky`).

        Parameters
        ----------
        data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
            The frame measured; a frame other than the one the level was
            estimated on (its shape, a sample of its pixels to a relative
            1e-6: a single-precision copy is the same frame) is not looked
            at.
        apertures : `~ccdphot_ext.BoxAperture`, photutils aperture or list
            The pixel apertures measured.

        Returns
        -------
        sky : `SkyEstimate`
            This sky, unchanged (the same object), when it is neither a
            whole-frame level nor a map made with ``data=`` of this frame,
            when it was made without a
            source mask (``mask_sources=False``: the plain statistic of
            every pixel, as asked for), when the source mask already
            covered the apertures' pixels, or when their lift is below
            that; a copy whose ``meta['aperture_light_kept']`` says so (the
            photometry warns with it and flags every row
            `~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`) when the
            apertures cover every pixel the level used; else a new one,
            whose ``meta`` holds
            ``'aperture_lift'`` (the level taken away), ``'n_aperture_pixels'``
            (the pixels of the grown apertures the level had used) and
            ``'aperture_note'``.

        Examples
        --------
        >>> import numpy as np
        >>> from photutils.aperture import CircularAperture
        >>> from ccdphot_ext import SkyEstimate
        >>> rng = np.random.default_rng(2)
        >>> y, x = np.mgrid[:128, :128]
        >>> stars = [(20.0 + 24 * i, 20.0 + 24 * j) for i in range(5)
        ...          for j in range(5)]
        >>> light = sum(150.0 * np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / 4.5)
        ...             / (2 * np.pi * 2.25) for sx, sy in stars)
        >>> img = rng.poisson(100.0 + light).astype(float)
        >>> sky = SkyEstimate.from_image(img, gain=1.0)
        >>> clean = sky.without_apertures(img, CircularAperture(stars, 4.0))
        >>> bool(clean.value < sky.value), clean.meta['n_aperture_pixels'] > 0
        (True, True)
        """
        from .skylift import (
            LIFT_FLUX,
            LIFT_FRACTION,
            MIN_LEFT_FRACTION,
            REMNANT_KEY,
            aperture_pixels,
            remnant_note,
        )
        aperture_groups(apertures)  # checked, whatever is done
        if self._map_sources is not None:
            return self._map_without_apertures(data, apertures)
        record = self._whole_frame
        dropped = 'source_mask_dropped' in self.meta
        if (record is None or not record.mask_sources
                or (record.known is None and not dropped)
                or not self.error_on_mean > 0):
            return self  # no source mask
        frame = as_frame(data)
        if not record.same_frame(frame):
            return self
        # the level's clip was about the frame's trend, where it had one
        looked = (frame.data if self._trend is None
                  else self._trend.flatten(frame.data))
        ys, xs, own, largest = aperture_pixels(apertures, frame.shape)
        used = record.used(looked, ys, xs)[1]
        if not np.any(used & own):
            return self
        if (record.n_used - np.count_nonzero(used)
                < MIN_LEFT_FRACTION * record.n_used):  # most of the frame
            ys, xs, own, largest = aperture_pixels(apertures, frame.shape,
                                                   growth=1.0)
            used = record.used(looked, ys, xs)[1]
        values = np.asarray(frame.data[ys, xs], dtype=np.float64)
        if np.count_nonzero(used) >= record.n_used:  # no pixel left
            return self._keeping_aperture_light(len(all_positions(
                apertures)))
        lift = abs(record.lift(values, used, ys, xs))
        if not (lift > LIFT_FRACTION * float(self.error_on_mean)
                and lift * math.sqrt(largest) > LIFT_FLUX * record.raw_std):
            return self
        grown = np.zeros(frame.shape, dtype=bool)
        grown[ys, xs] = True
        again = dataclasses.replace(
            frame, uncertainty=record.uncertainty,
            mask=grown if record.mask is None else record.mask | grown)
        known = None
        if record.known is not None:
            blocks, variation, density = record.known
            known = (blocks, copy.copy(variation), density)
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter('always')
            try:
                # a source mask that took every pixel is not searched
                # again: the apertures' discs mask the sources measured
                sky, res = _frame_sky(type(self), again, record.method,
                                      record.sigma, record.maxiters,
                                      record.mask_sources and not dropped,
                                      record.gain, known=known,
                                      trend=self._trend, fit_trend=False)
            except ValueError:  # the apertures leave no sky pixel
                return self._keeping_aperture_light(len(all_positions(
                    apertures)))
        says = ('doubtful sky',) if record.warned else ('sources cover',
                                                          'doubtful sky')
        for found in said:  # what the first estimate did not say
            if str(found.message).startswith(says):
                warnings.warn(found.message, found.category, stacklevel=2)
        if record.matched_filter is not None:
            sky.meta.setdefault('matched_filter', record.matched_filter)
        if record.known is not None and not dropped:
            # the faint light off the source mask, the stars measured left
            # out: they are neither faint stars the mask missed nor
            # evidence of them
            xy = all_positions(apertures)
            light = faint_light_beside(
                dataclasses.replace(frame, uncertainty=record.uncertainty,
                                    mask=record.mask),
                xy[:, 0], xy[:, 1], blocks=record.known[0])
            store_light(sky.meta, light)
            check_crowding(sky.meta, sky.std, sky.error_on_mean, warn=False)
        if UNSEEN_SKY_KEY in self.meta:  # the frame's blank sky, as before
            sky.meta[UNSEEN_SKY_KEY] = self.meta[UNSEEN_SKY_KEY]
        # the frame's background and its noise, as measured with the
        # sources masked: the apertures' pixels change neither
        sky.background_variation = self.background_variation
        # the level of the pixels left, as a level of the whole frame (a
        # level about the frame's trend is one: the trend's mean over all
        # the pixels the first level used was added back)
        shift = (record.gradient_shift(ys[used], xs[used])
                 if self._trend is None else 0.0)
        if shift:
            sky.value = sky.value - shift
            sky.meta['aperture_gradient_shift'] = shift
        n_used = int(np.count_nonzero(used))
        taken = float(self.value - sky.value)
        sky.meta.update(
            aperture_lift=taken, n_aperture_pixels=n_used,
            aperture_note=(
                f'the whole-frame sky was measured again without the '
                f'{len(all_positions(apertures))} apertures measured '
                f'(grown for their wings): {n_used} of its pixels held '
                f'their stars\' light, which lifted it by {taken:.4g} per '
                f'pixel, {taken / float(self.error_on_mean):.2g} times its '
                'error'))
        note = remnant_note(shift, float(sky.error_on_mean), float(sky.std),
                            int(sky.n_pix), len(all_positions(apertures)))
        if note is not None:  # (the photometry flags its rows)
            sky.meta[REMNANT_KEY] = note
            warnings.warn(note, AstropyUserWarning, stacklevel=2)
        sky._whole_frame = WholeFrame.of(
            again, res, method=record.method, sigma=record.sigma,
            maxiters=record.maxiters, mask_sources=record.mask_sources,
            gain=record.gain)
        return sky

    def _map_without_apertures(self, data, apertures):
        """`without_apertures` of a Background2D map made with ``data=``
        (`~ccdphot_ext.background.skylift.map_without_apertures`)."""
        from .skylift import map_without_apertures

        parts = map_without_apertures(self._map_sources, self.value,
                                      self.error_on_mean, self.std,
                                      as_frame(data), apertures)
        if parts is None:
            return self
        if isinstance(parts, str):  # the discs cover every mesh pixel
            return self._keeping_aperture_light(len(all_positions(
                apertures)))
        level, rms, error_on_mean, meta, record = parts
        sky = type(self)(level, rms, self.n_pix, error_on_mean=error_on_mean,
                         method=self.method, n_rejected=self.n_rejected,
                         efficiency=self.efficiency, meta=meta,
                         unit=self.unit,
                         background_variation=self.background_variation)
        sky.mesh_statistics = self.mesh_statistics
        sky._map_sources = record
        return sky

    def _keeping_aperture_light(self, n_apertures):
        """This level, marked (``meta['aperture_light_kept']``, the note
        the photometry warns with as it flags the rows) to keep the light
        of ``n_apertures`` apertures that left it no pixel to be measured
        again from."""
        from ..flags import FLAG_RESIDUAL_BACKGROUND
        what = ("the Background2D map's meshes" if self.is_map
                else 'the whole-frame sky')
        note = (f'the {n_apertures} aperture(s) measured, with a margin for '
                f'their wings, cover every pixel {what} used: '
                'it could not be measured without their stars\' light, so '
                'their fluxes may read low (flagged '
                f'{FLAG_RESIDUAL_BACKGROUND}): use an annulus sky or a '
                'larger frame')
        kept = copy.copy(self)
        kept.meta = dict(self.meta, aperture_light_kept=note)
        return kept

    @classmethod
    def from_annulus(cls, data, annulus, *, method='sigma_clip', mask=None,
                     uncertainty=None, sigma=3.0, maxiters=10, exclude=None,
                     gain=None):
        """
        Estimate one sky level per aperture, from a photutils annulus.

        The statistics use the annulus' whole pixels (``method='center'``,
        as photutils' `~photutils.aperture.ApertureStats`); NaN/inf and
        masked pixels are excluded and counted; the estimators are those of
        `from_image` (:ref:`sky-estimators`). Give the measured apertures as
        ``exclude``: their pixels are left out of every annulus, and an
        annulus another star's aperture reaches into (a measured star's or
        a neighbour's given in ``exclude`` besides), that holds a star no
        aperture lists (circular annuli), or that keeps fewer
        than half of its pixels (those off the frame's edge counted as
        lost), gets `~ccdphot_ext.flags.FLAG_SKY_ANNULUS`
        in ``meta['flags']`` and a warning (:ref:`annulus-exclude`); its own
        aperture's pixels, left out, are no doubt by themselves (an annulus
        from the aperture's radius outwards is the standard geometry).

        On a sky that curves over the frame (vignetting, scattered light)
        an annulus reads the sky around its aperture, not under it: the
        levels are fitted with a quadratic surface over the frame
        (`~ccdphot_ext.background.annulusframe.frame_surface`), and where
        its curvature is significant and it fits them, each level loses
        the surface's mean over its annulus less that over its aperture
        (the one of ``exclude`` at its centre), its ``error_on_mean``
        gains that correction's error and its ``std`` loses the spread of
        the surface's gradient over the ring
        (:ref:`annulus-frame-curvature`).

        On a frame whose noise correlates
        (``meta['noise_correlation_factor']``), `~ccdphot_ext.photometer`
        without ``noise=`` gives each row a signed ``sky_correlation``
        term measured on the frame's blank sums of the aperture's shape
        less their annulus mean (:ref:`correlated annulus sky <annulus-correlated>`).

        Parameters
        ----------
        data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
            The 2-D frame. An NDData's ``mask`` and ``uncertainty`` are
            used.
        annulus : photutils annulus aperture
            A `~photutils.aperture.CircularAnnulus`,
            `~photutils.aperture.EllipticalAnnulus` or
            `~photutils.aperture.RectangularAnnulus`, one or many positions;
            one sky level per position, in order.
        method : {'sigma_clip', 'mean', 'median'}, optional
            The estimator (default ``'sigma_clip'``; see
            :ref:`sky-estimators`).
        mask : array_like of bool, optional
            True for pixels to exclude (e.g. neighbouring stars), combined
            with an NDData's mask; None (default): none beyond the
            NDData's.
        uncertainty : array_like or `~astropy.nddata.NDUncertainty`, optional
            A per-pixel 1-sigma map in the data unit; ``error_on_mean`` is
            then the estimator's efficiency times the propagated
            ``sqrt(sum(sigma_i**2)) / n_pix``. Wins over an NDData's own.
            None (default): the NDData's, else ``error_on_mean`` from the
            scatter.
        sigma : float, optional
            The clipping threshold of ``'sigma_clip'`` in standard
            deviations (default 3; positive).
        maxiters : int or None, optional
            The most clipping iterations of ``'sigma_clip'`` (default 10;
            positive); None: until convergence.
        exclude : `~ccdphot_ext.BoxAperture`, photutils aperture or list, optional
            Apertures whose pixels are left out of the annuli; when their
            positions are the annuli's (in order), or begin with them or
            hold them in a row (the measured apertures, then unmeasured
            neighbours', or the other way round), each annulus is also
            checked for the other apertures reaching into it. None
            (default): every annulus pixel is used.
        gain : float or `~astropy.units.Quantity`, optional
            The gain in electrons per data unit (a Quantity such as ``1.9 *
            u.electron / u.adu`` is worked out for the data's unit as the
            photometry does: 1 for data in electrons, times ``EXPTIME``
            for data in ``adu / s``); None (default): the gain of the
            data's unit and header, as in `from_image`. As in
            `from_image`, a median or a sigma-clipped
            mean reads a Poisson sky low (by 1/6 and 0.048 times its third
            moment over its variance); with the gain that bias is computed
            for each annulus (``level / (gain**2 std**2)``) and removed
            from its level (``meta['estimator_bias']``, one per annulus).
            It matters for a faint sky: an r = 6 circle with a 10–16 px
            annulus on a 20 e- sky reads fluxes 0.12 (median) and 0.04
            (clipped mean) error bars high without it. Annuli of up to 10
            e- a pixel, too skewed for that first order, are solved under
            the exact distribution of their pixels, as in `from_image`
            (their ``std`` and ``error_on_mean`` the model's;
            ``meta['n_poisson_model']`` counts them). The level must be
            the photons' (bias and overscan subtracted): a level with more
            photon noise at this gain than its scatter allows warns and is
            not corrected. On a sky-subtracted frame (levels near 0, the
            photons still there) the constant subtracted is every
            annulus': the annuli's pixels pooled (each less its annulus'
            level) show its photons in their third moment, as in
            `from_image` (``meta['pedestal_significance']``), and where
            they do each annulus is corrected for its own photons, its
            level less that pedestal (``meta['pedestal']``). Where they
            do not, levels not above 0, or all of them where their mean
            is not above 0 by 3 of its errors, keep their estimator's
            bias and warn where it may exceed half their error; a
            background map subtracted (a pedestal varying over the
            frame) warns for the annuli it leaves fewer photons than the
            pooled pedestal (:ref:`local-sky`).

        Returns
        -------
        sky : `SkyEstimate`
            One entry per annulus position in ``value``, ``std``,
            ``n_pix``, ``error_on_mean`` and ``n_rejected`` (1-D even for one
            position, so that it cannot be taken for a global sky); per
            position, ``meta`` counts the pixels excluded
            (``'n_excluded_bad'``, ``'n_excluded_apertures'``,
            ``'n_clipped'``), those its own aperture touches
            (``'n_own_overlap'``) and those of the other apertures
            (``'n_excluded_neighbours'``), and holds its ``'flags'``;
            ``meta['annulus_centroid']`` holds x and y of each annulus'
            usable pixels' centroid (off its position where the frame's
            edge, a NaN border or a mask cuts it: the ``sky_offset`` term
            of a noise model measured on this route,
            :ref:`annuli off their aperture <annulus-offset>`);
            ``meta['frame_surface']`` says whether the frame's surface was
            used (and why), and where it was ``'surface_correction'``,
            ``'surface_correction_error'``, ``'surface_spread'`` and
            ``'surface_bend'`` hold each level's correction.

        Raises
        ------
        TypeError
            If ``annulus`` is not a photutils annulus.
        ValueError
            If no annulus holds a finite, unmasked pixel (one annulus
            without one gets a NaN level, ``n_pix`` 0 and the flag), an
            annulus is far larger than the frame, or an option is out of
            its range.

        Examples
        --------
        >>> import numpy as np
        >>> from photutils.aperture import CircularAnnulus
        >>> from ccdphot_ext import SkyEstimate
        >>> img = np.random.default_rng(0).normal(100.0, 5.0, (60, 60))
        >>> ann = CircularAnnulus([(20, 20), (40, 35)], r_in=6, r_out=9)
        >>> sky = SkyEstimate.from_annulus(img, ann, method='mean')
        >>> sky.n_pix.tolist()
        [140, 140]
        >>> bool(np.allclose(sky.error_on_mean, sky.std / np.sqrt(140)))
        True
        """
        sigma = check_estimator(method, sigma)
        maxiters = check_maxiters(maxiters)
        frame = as_frame(data, uncertainty=uncertainty, mask=mask)
        check_annulus(annulus, frame.shape)
        if exclude is not None:
            aperture_groups(exclude, 'exclude', allow_empty=True)
        gain = checked_gain(gain, frame.unit, frame.meta)
        correlation = {}
        factor = _noise_correlation(frame, correlation, method)
        res = annulus_statistics(frame, annulus, exclude, method=method,
                                 sigma=sigma, maxiters=maxiters, gain=gain,
                                 noise_factor=factor)
        meta = _annulus_meta(res, annulus, method, sigma, maxiters)
        meta.update(correlation)
        usable = np.isfinite(frame.data)
        if frame.mask is not None:
            usable &= ~frame.mask
        meta['annulus_centroid'] = usable_centroids(annulus, usable)
        efficiency = estimator_efficiency(method, sigma)
        bend = _frame_surface(frame, annulus, exclude, res, meta)
        level, std, error_on_mean = _annulus_levels(res, gain, method, sigma,
                                                    efficiency, meta, factor)
        error_on_mean = _correlated_error(error_on_mean, res, efficiency,
                                          factor)
        if bend is not None:
            level, std, error_on_mean = _surface_corrected(
                level, std, error_on_mean, res['n_pix'], efficiency, bend,
                res['propagated'] is None)
        return cls(level, std, res['n_pix'], error_on_mean=error_on_mean,
                   method=method,
                   n_rejected=(meta['n_excluded_bad'] + meta['n_clipped']
                               + meta['n_excluded_apertures']),
                   efficiency=efficiency, meta=meta,
                   unit=frame.unit)

    @classmethod
    def from_background2d(cls, bkg, *, efficiency=None, gain=None,
                          data=None, mask=None):
        """
        Make a 2-D sky map from photutils' `~photutils.background.Background2D`.

        ``value`` is ``bkg.background``, ``std`` is ``bkg.background_rms``
        corrected for photutils' sigma clipping (as `from_image`;
        ``meta['rms_clip_factor']``) and ``error_on_mean`` is the error of
        each mesh, ``k_est * rms / sqrt(n_mesh)`` (``n_mesh`` its pixels,
        ``k_est`` the efficiency of the mesh estimator), put through
        photutils' median filter and interpolator by a seeded Monte Carlo
        on the mesh grid, pixel by pixel: lower between mesh centres,
        where the interpolation averages neighbouring meshes, higher at
        the grid's edges, where the filter's window holds fewer (see
        :ref:`local-sky`). Meshes
        that photutils excluded (``exclude_percentile``) and filled by
        interpolation are never given an error from their own pixel
        counts: when there are any, every mesh's error is propagated from
        the measured meshes through photutils' interpolation and filter by
        a seeded Monte Carlo on the mesh grid, and ``meta['n_mesh_note']``
        says how many were excluded.

        Parameters
        ----------
        bkg : `~photutils.background.Background2D`
            The background of the frame to be measured.
        efficiency : float, optional
            ``k_est`` (positive); None (default): from
            `~ccdphot_ext.BACKGROUND2D_EFFICIENCY` by the class of
            ``bkg.bkg_estimator`` (the median's for estimators not listed).
        gain : float or `~astropy.units.Quantity`, optional
            The gain in electrons per data unit (a Quantity in
            ``u.electron / u.adu`` is taken for a map in ADU; with
            ``data`` of a unit or a header, a Quantity in electrons per
            that unit is worked out as `from_image` does); None (default):
            the gain the unit and header of ``data`` give (1 for
            electrons, ``EXPTIME`` for electrons per second, ``GAIN`` or
            ``EGAIN`` for adu; `~ccdphot_ext.DetectorParameters.resolve`),
            else the one the frame's skewness gives (below). Each of
            photutils' estimators (``a * median - b * mean`` of the
            sigma-clipped mesh: the default ``SExtractorBackground`` 2.5
            and 1.5, ``MedianBackground`` 1 and 0, ``MeanBackground`` 0
            and -1, ``MMMBackground``) reads a Poisson sky low, by ``a *
            b_median - b * b_mean`` times its third moment over its
            variance, with ``b_median`` the clipped median's factor (0.185
            at photutils' 3-sigma clip, 1/6 unclipped) and ``b_mean`` the
            clipped mean's (0.048): 0.39 for the default, 0.21 ADU (1.9
            of the level's error at a mesh centre) on a sky of 200 e- at
            2 e-/ADU with 64-pixel meshes. With the gain that bias is
            computed from the map (``level / (gain**2 rms**2)``, the sky
            photons' share, of the level once corrected) and removed from
            the level (``meta['estimator_bias']``). With ``data=`` and no
            gain known, the third moment of the frame's pixels off its
            source mask, within 4 rms of the map, gives the gain the sky's
            photons would have (``meta['skew_gain']``, ``meta['skew']``
            the noise's skewness and ``meta['skew_error']`` its error),
            the bias is removed at that gain, and the bias's uncertainty
            from that skewness is in the level's error. With neither, the
            level is photutils' (:ref:`sky-estimators`), and an
            `~astropy.utils.exceptions.AstropyUserWarning` naming
            ``gain`` says so where the bias could reach the level's
            error (``meta['estimator_bias_bound']``, the bias were the
            sky's noise all photons).
        data : array_like or `~astropy.nddata.NDData`, optional
            The frame ``bkg`` was made from. With it, the light of its
            sources that photutils' sigma clip keeps (star wings, faint
            stars: 100 stars of 300 to 10**4 on 512 x 512 pixels lifted
            the level by 1 to 3 of its errors) is removed: each mesh is
            measured again by photutils' steps without the whole-frame
            sky's source mask, the difference (``meta['source_lift']``,
            its median) is taken from the level, and the error becomes that
            of the level without the masked pixels. On a crowded frame
            (the source mask covering a fifth of it or more) the map is
            also checked against the frame's blank sky, outside the
            source mask and the faint stars a matched filter finds, and
            moved to it where it sits above or below by more than that
            level's error (``meta['blank_sky_offset']``,
            ``meta['blank_sky_note']``; a warning when the move is
            large): there the mask leaves each mesh few pixels, and a
            star it misses lifts its mesh. None (default): nothing can
            be checked here; the level is photutils', and the photometry
            flags the rows that its lift biases
            (`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`), judged with
            the whole-frame source mask of the frame it measures (not
            checked when Background2D was given a mask, nor for a map
            made from another frame or by `from_maps`).
        mask : array_like of bool, optional
            With ``data``: the pixels ``bkg`` left out (True), as given to
            Background2D (NaN and inf pixels are left out anyway).

        Returns
        -------
        sky : `SkyEstimate`
            A map (`is_map` True); ``n_pix`` is the ``n_pixels_map``.

        Notes
        -----
        With excluded meshes, the error of an interpolated level also holds
        the interpolation's own error, measured on the measured meshes
        (each predicted from the others as photutils interpolates): a sky
        that varies more than the interpolation follows (a slope across
        few measured meshes) is not passed off as known to its noise, and
        an `~astropy.utils.exceptions.AstropyUserWarning` says when that
        error dominates; on a sloped or curved sky, whose fitted surface
        takes the filling's misfit from the level, it is the surface's
        own misfit at the excluded meshes; with ``data=`` they are read
        again without their sources, and where they show the map
        missing the sky there (a vignetted peak filled from the meshes
        around it) that misfit is added to the level's error, with a
        warning (``meta['unmeasured_mesh_misfit']``). Without excluded
        meshes, a sky that changes from
        mesh to mesh beyond the noise (a quadratic surface fitted to the
        mesh levels, significant at 1%) has its error propagated through
        photutils' median filter (``meta['filter_error']``, the largest
        offset of the filtered level from the surface: the filter flattens
        a slope at the grid's edges), with a warning where that offset
        dominates; between mesh centres the offset of photutils' own
        interpolation from the surface is taken pixel by pixel
        (``meta['interpolation_offset']``). With excluded meshes the
        surface is fitted to the measured ones and also put through
        photutils' filling of the excluded ones; the larger error is
        kept.

        With ``data=``, where photutils excluded meshes (those that hold
        the most stars) and the measured meshes leave the sky's surface
        unknown over them (a curved sky, such as a vignetted peak
        photutils filled from the meshes around it, or fewer measured
        meshes than a quadratic needs), the excluded meshes are read
        again with their sources' pixels replaced in place, put on the
        measured meshes' scale and fitted together with them (up to a
        quartic where the meshes allow;
        ``meta['unmeasured_meshes_fitted']``, how many were read and
        fitted); that surface replaces photutils' filling there, and its
        uncertainty is in the level's error.

        The surface is fitted to the mesh levels photutils measured,
        which it frees once both of its maps have been read
        (``bkg.background`` and ``bkg.background_rms``): ``bkg`` is left
        with them here, and where they are gone ``data=`` measures them
        again (exactly); without it the median-filtered grid stands in,
        with a warning on a sloped sky (``meta['mesh_levels_from']``).

        Examples
        --------
        >>> import numpy as np
        >>> from photutils.background import Background2D, MeanBackground
        >>> from ccdphot_ext import SkyEstimate
        >>> img = np.random.default_rng(3).normal(50.0, 4.0, (64, 64))
        >>> bkg = Background2D(img, 16, filter_size=1,
        ...                    bkg_estimator=MeanBackground())
        >>> sky = SkyEstimate.from_background2d(bkg)
        >>> sky.is_map, sky.shape, sky.efficiency
        (True, (64, 64), 1.0)
        """
        with kept_mesh_levels(bkg):
            (level, rms, n_mesh, error_on_mean, efficiency, meta, unit,
             record) = background2d_parts(bkg, efficiency, gain, data, mask)
        sky = cls(level, rms, n_mesh, error_on_mean=error_on_mean,
                  method='Background2D', efficiency=efficiency, meta=meta,
                  unit=unit)
        sky.mesh_statistics = (MeshStatistics.of(bkg) if record is None
                               else record.meshes)
        sky._map_sources = record
        return sky

    @classmethod
    def from_maps(cls, background, rms, *, error_on_mean=None, n_pix=None,
                  efficiency=1.0):
        """
        Make a 2-D sky map from background and RMS maps made elsewhere.

        Parameters
        ----------
        background : 2-D array_like or `~astropy.units.Quantity`
            The background level per pixel, the shape of the frame (e.g.
            Source Extractor's BACKGROUND check image), in the data unit.
        rms : 2-D array_like or `~astropy.units.Quantity`
            The per-pixel background noise, the shape of ``background``
            (e.g. Source Extractor's BACKGROUND_RMS check image), in the
            same unit.
        error_on_mean : float or 2-D array_like, optional
            The error of the background level (scalar or map, in the data
            unit); None (default): from ``n_pix``.
        n_pix : float or 2-D array_like, optional
            The pixels per mesh that made the level; without
            ``error_on_mean`` it gives ``efficiency * rms / sqrt(n_pix)``.
            With neither (the default), the level is taken as exact
            (``error_on_mean`` 0, so the ``sky_mean`` term is 0) and
            ``meta`` says so.
        efficiency : float, optional
            ``k`` for ``n_pix`` (default 1, the mean's; e.g. 2.1372 for
            Source Extractor's mode estimator, see
            `~ccdphot_ext.BACKGROUND2D_EFFICIENCY`).

        Returns
        -------
        sky : `SkyEstimate`
            A map (`is_map` True).

        Examples
        --------
        >>> import numpy as np
        >>> from ccdphot_ext import SkyEstimate
        >>> sky = SkyEstimate.from_maps(np.full((8, 8), 100.0),
        ...                             np.full((8, 8), 5.0), n_pix=64 * 64)
        >>> print(f'{sky.error_on_mean.max():.5f}')
        0.07812
        """
        level, rms, error_on_mean, efficiency, meta, unit = maps_parts(
            background, rms, error_on_mean, n_pix, efficiency)
        return cls(level, rms, n_pix, error_on_mean=error_on_mean,
                   method='maps', efficiency=efficiency, meta=meta, unit=unit)

    def _flagged_levels(self):
        """The levels an annulus sky already flagged doubtful (and warned
        about) where it was estimated, or None."""
        from ..flags import FLAG_SKY_ANNULUS
        flags = self.meta.get('flags')
        if flags is None or np.shape(flags) != np.shape(self.value):
            return None
        return (np.asarray(flags) & FLAG_SKY_ANNULUS) != 0

    @property
    def is_map(self):
        """True when the level is a 2-D map (`from_maps`, `from_background2d`)."""
        return np.ndim(self.value) == 2

    @property
    def shape(self):
        """Shape of a map (None for levels)."""
        return np.shape(self.value) if self.is_map else None

    @property
    def isscalar(self):
        """
        True for a single sky level (as ``numpy.isscalar``); False for one
        level per aperture and for a 2-D map (see `is_map`, `is_global`).
        """
        return np.ndim(self.value) == 0

    @property
    def is_global(self):
        """
        True when one estimate serves every aperture: a single level or a
        2-D map; False for one level per aperture.
        """
        return np.ndim(self.value) in (0, 2)

    @property
    def pixel_std(self):
        """
        The sky's pixel noise: the median of the finite ``std`` values
        (in the data unit, as a float; NaN when none is finite). One
        number for a level, for one level per aperture and for a map.
        """
        std = np.atleast_1d(np.asarray(self.std, dtype=float))
        finite = std[np.isfinite(std)]
        return float(np.median(finite)) if finite.size else math.nan

    def __len__(self):
        if self.is_global:
            raise TypeError('a global SkyEstimate (one level or a map) has no '
                            'len()')
        return len(self.value)

    def at(self, index):
        """
        Give the sky of one aperture.

        Parameters
        ----------
        index : int
            The aperture's index (ignored for a single level).

        Returns
        -------
        value : float
            The sky level per pixel (data unit).
        std : float
            The per-pixel standard deviation of the background.
        n_pix : float
            The pixels behind the level.
        error_on_mean : float
            The error of the level.

        Raises
        ------
        TypeError
            If the sky is a map (use `cutout`), or ``index`` is not an
            integer.
        IndexError
            If ``index`` is beyond the per-aperture levels (also a
            ValueError).
        """
        if self.is_map:
            raise TypeError('a sky map has no single level; use '
                            'SkyEstimate.cutout(slices) for its pixels')

        if not self.isscalar:
            index = check_index(index, 'index', len(self))

        def pick(v):
            return float(v) if np.ndim(v) == 0 else float(np.asarray(v)[index])
        return (pick(self.value), pick(self.std), pick(self.n_pix),
                pick(self.error_on_mean))

    def cutout(self, slices):
        """
        Cut the level, RMS and error-of-level pixels of a map.

        Parameters
        ----------
        slices : tuple of slices
            The pixels, ``np.s_[y0:y1, x0:x1]`` in the frame.

        Returns
        -------
        level : 2-D ndarray
            The map's level under ``slices`` (data unit).
        rms : 2-D ndarray
            The per-pixel background noise there.
        error_on_mean : 2-D ndarray
            The error of the level there (a scalar error broadcast).

        Raises
        ------
        TypeError
            If the sky is not a map.
        """
        if not self.is_map:
            raise TypeError('cutout() needs a sky map (is_map True)')
        level = self.value[slices]
        error_on_mean = self.error_on_mean
        error_on_mean = (np.full(level.shape, float(error_on_mean))
                         if np.ndim(error_on_mean) == 0
                         else error_on_mean[slices])
        return level, self.std[slices], error_on_mean

    def summarize(self, slices, weights):
        """
        Average a map's level, RMS and error of the level over weighted pixels.

        For ``n_pix = sum(w)`` the ``sky`` term ``n_pix * std**2`` is then
        ``sum(w * rms**2)`` and the ``sky_mean`` term ``n_pix**2 *
        error_on_mean**2`` is ``(sum(w * error_on_mean))**2``.

        Parameters
        ----------
        slices : tuple of slices
            The pixels, ``np.s_[y0:y1, x0:x1]`` in the frame.
        weights : 2-D array_like
            The weight ``w`` of each pixel under ``slices`` (e.g. an
            aperture's overlaps, in [0, 1]).

        Returns
        -------
        value : float
            ``sum(w * level) / sum(w)`` (NaN when the weights sum to 0).
        std : float
            ``sqrt(sum(w * rms**2) / sum(w))`` (NaN likewise).
        error_on_mean : float
            ``sum(w * error_on_mean) / sum(w)`` (NaN likewise).

        Raises
        ------
        TypeError
            If the sky is not a map.
        """
        level, rms, error_on_mean = self.cutout(slices)
        total = float(np.sum(weights))
        if total <= 0:
            return math.nan, math.nan, math.nan
        return (float(np.sum(weights * level)) / total,
                math.sqrt(float(np.sum(weights * rms ** 2)) / total),
                float(np.sum(weights * error_on_mean)) / total)

    def _repr_html_(self):
        """The estimate as a compact HTML table (Jupyter)."""
        return sky_html(self)

    def __repr__(self):
        return sky_repr(self)
