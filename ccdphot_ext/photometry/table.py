# Licensed under a 3-clause BSD style license - see LICENSE
"""
Many stars at once: one `~astropy.table.QTable` row per aperture.
"""

from dataclasses import asdict, dataclass, replace

import numpy as np
from astropy.table import QTable

from ..aperture.skybox import add_sky_centroid, to_pixel_apertures
from ..aperture.utils import all_positions, aperture_groups, check_extent
from ..background.annulus import sky_row_flags
from ..background.noise import check_noise, noise_variance
from ..background.sky import check_sky
from ..io.header import DetectorParameters, detector_with_gain
from ..io.units import is_rate_unit
from ..utils.columns import PHOTOMETRY_COLUMNS, unit_power
from ..utils.inputs import as_frame
from ..utils.numbers import (
    check_choice,
    check_options,
    finite_number,
    positive_integer,
)
from ..utils.provenance import versions
from .boxengine import box_engine_eligible, measure_boxes
from .ellipseengine import ellipse_engine_eligible, measure_ellipses
from .general import check_photometry_inputs, measure_general
from .residual import check_global_sky
from .sums import ApertureSums
from .terms import BudgetOptions, budget_terms

__all__ = ['photometer', 'PHOTOMETRY_COLUMNS']

#: The engines `photometer` can sum pixels with.
ENGINES = ('auto', 'box', 'ellipse', 'general')



def instrumental_mag(flux, *, exptime=None, zeropoint=None):
    """
    ``-2.5 log10(flux / exptime) + zeropoint``; NaN where flux <= 0.

    Without ``exptime`` the flux is used as it is (as for count-rate data,
    already per second); without ``zeropoint`` the zero point is 0
    (instrumental magnitudes).
    """
    flux = np.asarray(flux, dtype=float)
    rate = flux / exptime if exptime else flux
    out = np.full(flux.shape, np.nan)
    good = rate > 0
    out[good] = -2.5 * np.log10(rate[good])
    if zeropoint is not None:
        out = out + zeropoint
    return out


def photometer(data, apertures, sky, *, gain=None, noise=None,
               threshold=None, detector=None, budget=None,
               sum_method='exact', subpixels=5, uncertainty=None, mask=None,
               engine='auto', zeropoint=None):
    """
    Aperture photometry of many stars, with the full budget per row.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The processed frame; a `CCDData`'s uncertainty, mask, unit and header
        are used.
    apertures : `BoxAperture`, `~photutils.aperture.PixelAperture` or list
        One row per position, in order (`~photutils.aperture.SkyAperture`
        positions are converted with the frame's WCS).
    sky : `SkyEstimate`
        One level, one level per row, or a 2-D map, in the data unit.
    gain : float or `~astropy.units.Quantity`, optional
        e-/ADU (default ``detector.gain``, else the header's
        GAIN/EGAIN/CCDGAIN); without one the source term is absent
        (``var_source`` is NaN and ``meta`` says so). Giving it here and a
        different one in ``detector`` is an error.
    noise : `ApertureNoise`, optional
        Blank-sky aperture noise: ``var_sky = noise(n_pix)**2``; without it,
        a note when pixels' noise is correlated (:ref:`noise`).
    threshold : `SigmaThreshold`, optional
        Keep only the pixels above ``n_sigma * sky_std`` in each aperture.
    detector : `DetectorParameters`, optional
        Saturation (flag 4), exposure time (``mag``), read noise (recorded
        in ``meta``) and gain of the detector; values not given are read
        from the frame's header (`DetectorParameters.resolve`).
    budget : `BudgetOptions`, optional
        How the budget is formed (uncertainty model, ``var_sky_mean``,
        weight of pixels partly inside); default ``BudgetOptions()``.
    sum_method : {'exact', 'center', 'subpixel'}, optional
        How photutils apertures overlap pixels (axis-aligned boxes are
        always exact), as photutils' ``method``.
    subpixels : int, optional
        Subpixels per pixel side with ``sum_method='subpixel'`` (default 5).
    uncertainty : array_like or `~astropy.nddata.NDUncertainty`, optional
        Per-pixel 1-sigma map; wins over the NDData's own.
    mask : array_like of bool, optional
        Bad pixels (True), combined with the NDData's mask.
    engine : {'auto', 'box', 'ellipse', 'general'}, optional
        Vectorised engines for axis-aligned `BoxAperture` positions and for
        exact circles, ellipses and annuli; `measure`'s for any aperture;
        ``'auto'`` (default) a vectorised one wherever it applies. Same
        numbers, bit for bit (:ref:`photometer-engines`).
    zeropoint : float, optional
        Zero point (default 0): ``mag = -2.5 log10(flux / exptime) +
        zeropoint``; count-rate data (``adu / s``) are not divided by the
        exposure time, nor is a frame without one.

    Returns
    -------
    table : `~astropy.table.QTable`
        Columns `PHOTOMETRY_COLUMNS` (fluxes in the data unit), bit
        ``flags`` (:ref:`photometer-flags`), ``meta`` with versions and
        parameters.

    Raises
    ------
    ValueError, TypeError
        A bad argument, named.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture, SkyEstimate, photometer
    >>> img = np.random.default_rng(1).normal(100, 4, (64, 64))
    >>> img[10:13, 10:13] += 300
    >>> boxes = BoxAperture([(11, 11), (40, 40)], 7, 7)
    >>> t = photometer(img, boxes, SkyEstimate.from_image(img), gain=2.0)
    >>> t['id'].tolist(), t['flags'].tolist()
    ([1, 2], [0, 0])
    """
    apertures = to_pixel_apertures(apertures, data)  # SkyAperture -> pixel
    groups = aperture_groups(apertures)
    check_photometry_inputs(groups[0][0], threshold, sum_method)
    detector = detector_with_gain(detector, gain)
    call = _Call(threshold=threshold, detector=detector,
                 budget=check_options(budget, 'budget', BudgetOptions),
                 sum_method=sum_method,
                 subpixels=positive_integer(subpixels, 'subpixels'),
                 engine=check_choice(engine, 'engine', ENGINES), noise=noise,
                 zeropoint=(None if zeropoint is None
                            else finite_number(zeropoint, 'zeropoint')))
    frame = as_frame(data, uncertainty=uncertainty, mask=mask)
    check_extent(apertures, frame.shape)
    check_sky(sky, unit=frame.unit, n_apertures=sum(n for _, n in groups))
    check_noise(noise, frame)
    call = replace(call, detector=detector.resolve(frame.meta,
                                                   unit=frame.unit))
    sums = _measure_groups(apertures, groups, frame, sky, call)
    terms = _budget_terms(sums, frame.uncertainty is not None, call)
    positions = all_positions(apertures)
    table = _to_table(sums, terms, positions, frame, sky, call)
    if noise is not None:
        table.meta['sky_noise'] = repr(noise)
        table.meta['notes'].append(noise.note)
    message = check_global_sky(sky, positions[:, 0], positions[:, 1],
                               sums.n_pix, terms.error,
                               shape=frame.data.shape)
    if message is not None:
        table.meta['notes'].append(message)
    return table


@dataclass(frozen=True)
class _Call:
    """The checked settings of one `photometer` call (``detector``
    resolved against the frame's header)."""

    threshold: object
    detector: DetectorParameters
    budget: BudgetOptions
    sum_method: str
    subpixels: int
    engine: str
    noise: object
    zeropoint: float | None


def _measure_groups(apertures, groups, frame, sky, call):
    """The `ApertureSums` of every row, each group of ``apertures`` measured
    by its engine."""
    n_rows = sum(n for _, n in groups)
    threshold = call.threshold
    sums = ApertureSums.empty(
        n_rows, uncertainty=frame.uncertainty is not None,
        selection=threshold is not None and not threshold.biased)
    start = 0
    for ap, n in groups:
        rows = slice(start, start + n)
        sums.put(rows, _engine_sums(_engine(call, ap, sky), frame, ap, sky,
                                    rows, call))
        start += n
    sums.flags |= sky_row_flags(sky, apertures, n_rows)
    return sums


def _engine(call, aperture, sky):
    """The engine measuring ``aperture``: the one ``call.engine`` asks
    for, or with ``'auto'`` the first that applies."""
    engine, threshold = call.engine, call.threshold
    if engine == 'general':
        return engine
    eligible = {'box': box_engine_eligible(aperture, sky, threshold),
                'ellipse': ellipse_engine_eligible(aperture, threshold,
                                                   call.sum_method)}
    if engine in eligible and not eligible[engine]:
        raise ValueError(
            f"engine={engine!r} measures "
            + ('axis-aligned BoxAperture positions with a sky of one level '
               "or one per aperture and no threshold or segment='all'"
               if engine == 'box' else
               "photutils' circles, ellipses and their annuli with "
               "sum_method='exact' and no threshold")
            + "; use engine='auto' or 'general' for "
            f'{type(aperture).__name__} here')
    return next((name for name in ('box', 'ellipse') if eligible[name]),
                'general')


def _engine_sums(engine, frame, aperture, sky, rows, call):
    """The `ApertureSums` of the positions of ``aperture`` (table rows
    ``rows``) from ``engine``."""
    saturation = call.detector.saturation
    if engine == 'box':
        return measure_boxes(frame, aperture, *_sky_rows(sky, rows),
                             threshold=call.threshold, saturation=saturation)
    if engine == 'ellipse':
        return measure_ellipses(
            frame, aperture, sky,
            None if sky.is_map else _sky_rows(sky, rows),
            saturation=saturation)
    return measure_general(frame, aperture, sky, rows,
                           threshold=call.threshold, saturation=saturation,
                           sum_method=call.sum_method,
                           subpixels=call.subpixels)


def _sky_rows(sky, rows):
    """Sky level, std and error of the level for ``rows`` (float or array)."""
    if sky.is_global:
        value, std, _, error_on_mean = sky.at(0)
        return value, std, error_on_mean
    n = np.size(sky.value)  # a scalar std or error: the same for every row
    return tuple(np.broadcast_to(np.asarray(v, dtype=float), (n,))[rows]
                 for v in (sky.value, sky.std, sky.error_on_mean))


def _budget_terms(sums, has_map, call):
    """Every row's budget terms at once, from `budget_terms`."""
    noise_pix, sigma2 = call.budget.sky_term_inputs(
        sums.noise_pix, sums.sigma2, sums.sigma2_sq)
    model = call.budget.uncertainty_model
    if call.noise is not None:  # blank-sky apertures: the sky term
        sigma2 = noise_variance(call.noise, sums.n_pix)
        has_map, model = True, 'background'
    return budget_terms(
        sums.flux, sums.n_pix, sums.sky_std,
        noise_pix=noise_pix, gain=call.detector.gain,
        sky_error_on_mean=(sums.sky_error_on_mean
                           if call.budget.include_sky_mean else None),
        sky_variance=sigma2 if has_map else None,
        uncertainty_model=model,
        extra_terms=(None if sums.selection is None
                     else {'selection': sums.selection}))


def _to_table(sums, terms, positions, frame, sky, call):
    """The photometry columns, from the sums, their budget terms and the
    positions, as a `~astropy.table.QTable` with units and ``meta``."""
    detector = call.detector
    # a count rate (adu / s, electron / s) is already per second
    rate = is_rate_unit(frame.unit)
    cols = {
        'id': np.arange(1, len(sums) + 1),
        'x_center': positions[:, 0], 'y_center': positions[:, 1],
        'n_pix': sums.n_pix, 'sky': sums.sky, 'sky_std': sums.sky_std,
        'sky_error_on_mean': sums.sky_error_on_mean,
        'aperture_sum': sums.flux, 'aperture_sum_err': terms.error,
        'var_sky': terms.sky, 'var_source': terms.source,
        'var_sky_mean': terms.sky_mean, 'snr': terms.snr,
        'mag': instrumental_mag(
            sums.flux, exptime=None if rate else detector.exptime,
            zeropoint=call.zeropoint),
        'mag_err': terms.mag_err, 'flags': sums.flags}
    names = list(PHOTOMETRY_COLUMNS)
    if sums.selection is not None:  # a smoothed threshold mask's term
        cols['var_selection'] = terms.extra['selection']
        names.insert(names.index('var_sky_mean') + 1, 'var_selection')
    table = QTable()
    unit = frame.unit
    for name in names:
        value = cols[name]
        power = unit_power(name)
        if unit is not None and power:
            value = value * unit ** power
        table[name] = value
    table.meta.update(_provenance(call, sky,
                                  has_map=frame.uncertainty is not None,
                                  rate_unit=frame.unit if rate else None))
    return add_sky_centroid(table, frame)  # when the frame has a sky WCS


def _provenance(call, sky, *, has_map, rate_unit):
    """``meta``: versions, every setting and where each detector value came
    from, and notes on the absent terms."""
    detector, budget = call.detector, call.budget
    meta = {
        'versions': versions(),
        'gain': detector.gain, 'gain_source': detector.sources['gain'],
        'read_noise': detector.read_noise,
        'exptime': detector.exptime,
        'exptime_source': detector.sources['exptime'],
        'saturation': detector.saturation,
        'sky_method': sky.method,
        'threshold': None if call.threshold is None
        else repr(call.threshold),
        'sum_method': call.sum_method, 'subpixels': call.subpixels,
        'zeropoint': call.zeropoint,
        'engine': call.engine,
        **asdict(budget),  # every budget option, by its name
    }
    if not has_map:  # no uncertainty map: no model of one was used
        meta['uncertainty_model'] = None
    notes = []
    if detector.gain is None:
        notes.append('no gain: source Poisson term absent (var_source NaN)')
    if rate_unit is not None:
        notes.append(f'data are a rate ({rate_unit}): mag = '
                     '-2.5 log10(aperture_sum), not divided by the '
                     'exposure time')
    elif detector.exptime is None:
        notes.append('no exposure time: mag = -2.5 log10(aperture_sum)')
    meta['notes'] = notes
    return meta
