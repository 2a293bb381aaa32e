# Licensed under a 3-clause BSD style license - see LICENSE
"""
Many stars at once: one `~astropy.table.QTable` row per aperture.
"""

import warnings
from dataclasses import asdict, dataclass, replace

import numpy as np
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

from ..aperture.skybox import (
    add_sky_centroid,
    mark_unplaced,
    to_pixel_apertures,
)
from ..aperture.utils import all_positions, aperture_groups, check_extent
from ..background.annulus import sky_row_flags
from ..background.annuluscorrelation import annulus_sky_terms
from ..background.noise import (
    check_noise,
    noise_level_scale,
    noise_ratios,
    noise_variance,
)
from ..background.outliers import BoxScan, sharp_rows
from ..background.sky import check_sky, sky_doubt_flags
from ..background.skylift import sky_for_apertures
from ..flags import (
    FLAG_BAD_PIXELS,
    FLAG_NO_SOURCE_TERM,
    FLAG_SATURATED,
    FLAG_SHARP_PIXEL,
    FLAG_SKY_ANNULUS,
)
from ..io.fluxdensity import flux_conversion
from ..io.header import DetectorParameters, detector_with_gain
from ..io.saturation import warn_saturation
from ..io.units import check_data_unit
from ..utils.columns import PHOTOMETRY_COLUMNS, unit_power
from ..utils.inputs import as_frame, overflow_culprits
from ..utils.numbers import (
    check_choice,
    check_options,
    finite_number,
    positive_integer,
)
from ..utils.provenance import versions
from .arrayterms import array_budget, photon_sky_level
from .boxengine import box_engine_eligible, measure_boxes
from .budget import (
    source_term_doubt,
    warn_unknown_source_term,
    warn_unused_gain,
)
from .dqcheck import dq_rows, warn_dq
from .ellipseengine import ellipse_engine_eligible, measure_ellipses
from .general import check_photometry_inputs, measure_general
from .magnitudes import magnitudes
from .residual import (
    SKY_OFFSET_TERM,
    error_without_offset,
    sky_offset_variance,
)
from .skychecks import sky_row_checks
from .sums import ApertureSums
from .terms import BudgetOptions, unchecked_budget_terms
from .uncertaintycheck import (
    check_uncertainty_scale,
    resolve_uncertainty_model,
)

__all__ = ['photometer', 'PHOTOMETRY_COLUMNS']

#: The engines `photometer` can sum pixels with.
ENGINES = ('auto', 'box', 'ellipse', 'general')

#: The per-pixel columns: in the flux unit they are a pixel's share (its
#: flux density, or its surface brightness), never divided by ``n_pix``.
_LEVEL_COLUMNS = ('sky', 'sky_std', 'sky_error_on_mean')


def photometer(data, apertures, sky, *, gain=None, noise=None,
               threshold=None, detector=None, budget=None,
               sum_method='exact', subpixels=5, uncertainty=None, mask=None,
               engine='auto', zeropoint=None, flux_unit=None,
               sky_without_apertures=True):
    """
    Aperture photometry of many stars, with the full budget per row.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The processed frame; a `CCDData`'s uncertainty, mask, unit and header
        are used.
    apertures : `BoxAperture`, `~photutils.aperture.PixelAperture` or list
        One row per position, in order (`~photutils.aperture.SkyAperture`
        positions are converted with the frame's WCS; one with no pixel
        position there, on the far side of the sky, is off the frame: a
        NaN row with flag 1).
    sky : `SkyEstimate`
        One level, one level per row, or a 2-D map, in the data unit.
    gain : float or `~astropy.units.Quantity`, optional
        Electrons per data unit: e-/ADU for counts (default
        ``detector.gain``, else the header's GAIN/EGAIN/CCDGAIN); for data
        in other units a Quantity such as ``31.3 * u.electron / (u.MJy /
        u.sr)`` (a bare number is refused; :ref:`gain-units`). Without one
        the source term is absent (``var_source`` is NaN and ``meta`` says
        so). Giving it here and a different one in ``detector`` is an
        error. A frame with variance arrays needs none
        (:ref:`variance-arrays`): one given there is not used, with a
        warning.
    noise : `ApertureNoise`, optional
        Blank-sky aperture noise: ``var_sky = noise(n_pix)**2`` (on a frame
        with variance arrays, the arrays times
        `ApertureNoise.variance_ratio`); without it, a warning when pixels'
        noise is correlated (:ref:`noise`).
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
        Per-pixel 1-sigma map; wins over the NDData's own (and over its
        variance arrays).
    mask : array_like of bool, optional
        Bad pixels (True), combined with the NDData's mask.
    engine : {'auto', 'box', 'ellipse', 'general'}, optional
        Vectorised engines for axis-aligned `BoxAperture` positions and for
        exact circles, ellipses and annuli; `measure`'s for any aperture;
        ``'auto'`` (default) a vectorised one wherever it applies. Same
        numbers, bit for bit (:ref:`photometer-engines`).
    zeropoint : float, optional
        Zero point of counts and count rates: ``mag = -2.5 log10(flux /
        exptime) + zeropoint`` (rates are not divided by the exposure time);
        default the header's PHOTFLAM/PHOTPLAM, PHOTFLAM/PHOTZPT or PHOTMJSR,
        else 0. Flux densities have AB magnitudes (:ref:`magnitudes`).
    flux_unit : `~astropy.units.UnitBase` or str, optional
        The unit of ``aperture_sum`` and ``aperture_sum_err`` for data in a
        surface brightness or a flux density: default Jy for a surface
        brightness (each pixel times its solid angle:
        :ref:`pixel-solid-angle`), the data unit otherwise. A surface
        brightness unit (``'MJy / sr'``) gives the mean surface brightness
        inside each aperture instead.
    sky_without_apertures : bool, optional
        A whole-frame ``sky`` (`SkyEstimate.from_image`) keeps the light of
        stars too faint for its source mask, and every flux measured
        against it reads low by its aperture's area times that lift. By
        default (True) the level is measured again without the light of
        these apertures' stars where it lifts it by more than a tenth of
        its error (`SkyEstimate.without_apertures`; ``meta`` keeps
        ``'sky_aperture_lift'``, the level taken away, and a note says so);
        other skies are used as given. False: ``sky`` as given
        (:ref:`sky-apertures`).

    Returns
    -------
    table : `~astropy.table.QTable`
        Columns `PHOTOMETRY_COLUMNS` in the flux unit (the sky columns as a
        pixel's share: its flux density, or its surface brightness;
        ``var_flat``, ``var_rnoise``... after ``var_sky_mean`` when
        variance arrays give those terms), bit ``flags``
        (:ref:`photometer-flags`), ``meta`` with versions, parameters, the
        flux conversion and the magnitude system.

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
    # SkyAperture -> pixel
    apertures, unplaced = to_pixel_apertures(apertures, data)
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
    check_data_unit(frame.unit, 'data')
    check_extent(apertures, frame.shape)
    check_sky(sky, unit=frame.unit, n_apertures=sum(n for _, n in groups))
    check_noise(noise, frame, [ap for ap, _ in groups], sky)
    call = replace(call, detector=detector.resolve(frame.meta,
                                                   unit=frame.unit))
    warn_saturation(call.detector, frame.meta, frame.unit)
    positions = all_positions(apertures)
    conversion = flux_conversion(frame.unit, flux_unit=flux_unit,
                                 meta=frame.meta, wcs=frame.wcs,
                                 x=positions[:, 0], y=positions[:, 1])
    warn_unused_gain(frame, call.detector)
    options, model_note = resolve_uncertainty_model(
        frame, call.detector, call.budget, noise=noise)
    call = replace(call, budget=options)
    warn_unknown_source_term(frame, call.detector,
                             call.budget.uncertainty_model)
    scale_note = check_uncertainty_scale(
        frame, sky, explicit=uncertainty is not None)
    sky = sky_for_apertures(sky, frame, apertures, sky_without_apertures)
    scan = BoxScan(frame, apertures, sky.std)
    sums = _measure_groups(apertures, groups, frame, sky, call, scan)
    measured = local = None  # the local noise, and what scales the sky
    if noise is not None and not frame.variance_arrays:
        measured = noise.local_ratio(positions[:, 0], positions[:, 1],
                                     frame.shape)
        local = noise.local_ratio(positions[:, 0], positions[:, 1],
                                  frame.shape, gain=call.detector.gain,
                                  sky=sky)
    # the background's offset from a whole-frame level at each row: a
    # term of its own (none for other skies, nor for a level taken as
    # exact)
    offset, annulus_terms = _row_sky_terms(sky, frame, groups, positions,
                                           sums, call)
    terms, origins = _budget_terms(sums, frame, call, _array_sums(
        apertures, groups, frame, sky, call), sky, local, offset,
        annulus_terms)
    _flag_variance_overflow(sums, terms)
    table = mark_unplaced(_to_table(sums, terms, positions, frame, sky,
                                    call, conversion, origins), unplaced)
    _flag_missing_source(table, sums, terms, call, origins)
    for note in (model_note, scale_note):
        if note is not None:
            table.meta['notes'].append(note)
    if noise is not None:
        table.meta['sky_noise'] = repr(noise)
        table.meta['notes'].append(noise.note)
        _add_local_noise(table, noise, local, frame.shape, measured)
    sky_flags, messages = sky_row_checks(sky, frame, positions[:, 0],
                                         positions[:, 1], sums.n_pix,
                                         error_without_offset(
                                             terms.error, terms.variance,
                                             terms.extra.get(SKY_OFFSET_TERM)),
                                         scaled=measured)
    table['flags'] |= sky_flags.astype(table['flags'].dtype)
    table.meta['notes'].extend(messages)
    if frame.dq is not None and 'DQMASK' in frame.meta:
        table.meta['dq_mask'] = int(frame.meta['DQMASK'])
        table.meta['dq_rule'] = str(frame.meta.get('DQRULE', ''))
    dq = dq_rows(frame, apertures, sum_method=call.sum_method,
                 subpixels=call.subpixels)
    if dq is not None:
        table['flags'][dq.saturated] |= FLAG_SATURATED
        note = warn_dq(dq, frame, list(table['id']))
        if note is not None:
            table.meta['notes'].append(note)
    sharp, note = sharp_rows(frame, apertures, sky.std,
                             sum_method=call.sum_method,
                             subpixels=call.subpixels,
                             saturation=call.detector.saturation, scan=scan)
    table['flags'][sharp] |= FLAG_SHARP_PIXEL
    if note is not None:
        table.meta['notes'].append(note)
    for key in ('crowding_note', 'aperture_note'):  # said when made
        if sky.meta.get(key) is not None:
            table.meta['notes'].append(sky.meta[key])
    if 'aperture_lift' in sky.meta:
        table.meta['sky_aperture_lift'] = sky.meta['aperture_lift']
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


def _flag_missing_source(table, sums, terms, call, origins):
    """Flag `FLAG_NO_SOURCE_TERM` the rows whose missing source term (no
    gain, no variance array, no map taken as the total error) could
    matter (`source_term_doubt`), and say how many in the notes."""
    if (call.detector.gain is not None or origins
            or call.budget.uncertainty_model == 'total'):
        return
    doubtful = source_term_doubt(sums.flux, terms.variance, sums.sky,
                                 sums.sky_std)
    if not doubtful.any():
        return
    table['flags'][doubtful] |= FLAG_NO_SOURCE_TERM
    table.meta['notes'].append(
        f'{int(doubtful.sum())} rows flagged {FLAG_NO_SOURCE_TERM}: no gain, '
        'and the source photon noise the sky allows could raise their '
        'error by over 5%')


def _array_sums(apertures, groups, frame, sky, call):
    """Each variance array's per-row sum (``sum(w**2 V)``, or ``sum(w V)``
    for linear fractional variance) through the same engines and pixels as
    the fluxes; None for a frame without arrays."""
    if not frame.variance_arrays:
        return None
    sums = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # said once, by the flux pass
        for name, variance in frame.variance_arrays.items():
            one = replace(frame, uncertainty=np.sqrt(variance),
                          variance_arrays=None)
            found = _measure_groups(apertures, groups, one, sky, call)
            sums[name] = call.budget.sky_term_inputs(
                found.noise_pix, found.sigma2, found.sigma2_sq)[1]
    return sums


def _measure_groups(apertures, groups, frame, sky, call, scan=None):
    """The `ApertureSums` of every row, each group of ``apertures`` measured
    by its engine (the box engine finds the sharp-pixel search's first cut
    around its boxes as it sums them where given the call's `BoxScan`)."""
    n_rows = sum(n for _, n in groups)
    threshold = call.threshold
    sums = ApertureSums.empty(
        n_rows, uncertainty=frame.uncertainty is not None,
        selection=threshold is not None and not threshold.biased)
    start = 0
    for ap, n in groups:
        rows = slice(start, start + n)
        with np.errstate(over='ignore'):  # flagged by _flag_overflow
            sums.put(rows, _engine_sums(
                _engine(call, ap, sky), frame, ap, sky, rows, call,
                None if scan is None else scan.part(rows)))
        start += n
    sums.flags |= sky_row_flags(sky, apertures, n_rows)
    sums.flags |= sky_doubt_flags(sky, sums.sky_std)
    _flag_overflow(sums, frame)
    return sums


def _flag_overflow(sums, frame):
    """Flag and name the rows whose flux is not finite although pixels were
    summed: against a finite sky the sum of finite pixels overflowed (bad
    pixels); against a sky without a level there (a NaN sky) there is no
    flux to give (doubtful sky). An infinite or NaN flux is never returned
    with flags 0."""
    overflow = sums.overflowed
    if overflow.any():
        sums.flags[overflow] |= FLAG_BAD_PIXELS
        warnings.warn(f'the sum of aperture(s) {_first_rows(overflow)} '
                      f'overflows: {overflow_culprits(frame.data)}; '
                      f'flagged {FLAG_BAD_PIXELS}', AstropyUserWarning,
                      stacklevel=5)
    skyless = sums.skyless
    if skyless.any():
        sums.flags[skyless] |= FLAG_SKY_ANNULUS
        warnings.warn(f'aperture(s) {_first_rows(skyless)} have no sky '
                      'level (no usable sky pixel: an annulus wholly masked, '
                      'NaN or excluded, or a sky map that is NaN there), so '
                      f'their flux is NaN; flagged {FLAG_SKY_ANNULUS}',
                      AstropyUserWarning, stacklevel=5)


def _first_rows(rows):
    """The indices of the first five True ``rows``, for a message."""
    return ', '.join(str(i) for i in np.flatnonzero(rows)[:5])


def _flag_variance_overflow(sums, terms):
    """Flag (bad pixels) and name the rows whose error overflowed (a sky
    std, an uncertainty or a flux too large to square): an infinite error
    bar is never returned with flags 0."""
    overflow = np.isfinite(sums.flux) & (terms.variance == np.inf)
    if overflow.any():
        sums.flags[overflow] |= FLAG_BAD_PIXELS
        rows = _first_rows(overflow)
        big = [name for name in ('sky', 'source', 'sky_mean', 'flat')
               if np.any(getattr(terms, name)[overflow] == np.inf)]
        warnings.warn(f'the error of aperture(s) {rows} overflows: its '
                      f'variance term(s) {", ".join(big) or "total"} lie '
                      'beyond the largest float (inputs too large to '
                      f'square; scale the data); flagged {FLAG_BAD_PIXELS}',
                      AstropyUserWarning, stacklevel=3)


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


def _engine_sums(engine, frame, aperture, sky, rows, call, sharp=None):
    """The `ApertureSums` of the positions of ``aperture`` (table rows
    ``rows``) from ``engine`` (``sharp``: `measure_boxes`')."""
    saturation = call.detector.saturation
    if engine == 'box':
        return measure_boxes(frame, aperture, *_sky_rows(sky, rows),
                             threshold=call.threshold, saturation=saturation,
                             sharp=sharp)
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


def _add_local_noise(table, noise, local, shape, measured):
    """With ``noise=`` whose model has noisier blocks: where any row's
    local pixel noise is higher (``measured``), the ratio that scaled each
    row's sky term (``local``: 1 where not scaled, and less than
    ``measured`` where the photon noise of the light above a whole-frame
    sky was taken out of it) as column ``sky_noise_ratio``, and what was
    done in ``meta['sky_noise_local']``."""
    if noise.local_noise is None or not np.any(noise.local_noise > 1.0):
        return
    if noise.shape != tuple(shape) or local is None:
        table.meta['sky_noise_local'] = (
            'not applied: the noise model was measured on a frame of '
            f'another shape ({noise.shape})' if local is not None else
            'not applied: the variance arrays hold each pixel\'s noise')
        return
    if not np.any(measured > 1.0):
        table.meta['sky_noise_local'] = (
            'no aperture where the local pixel noise is significantly '
            'above the blank sky\'s: sky terms as the model gives them')
        return
    table['sky_noise_ratio'] = local
    scaled = int(np.count_nonzero(local > 1.0))
    table.meta['sky_noise_local'] = (
        f'{scaled} of {len(local)} rows have their sky term multiplied by '
        'the square of sky_noise_ratio, the local pixel noise over that '
        'of the blank sky the noise model was measured on (up to '
        f'{float(np.max(local)):.3g}; blocks of 16 pixels)')
    photon = int(np.count_nonzero(local < measured))
    if photon:
        table.meta['sky_noise_local'] += (
            f'; for {photon} rows the photon noise of the light above the '
            'whole-frame sky (its level over the gain), which their source '
            'term counts, was taken out of the local noise first')


def _row_sky_terms(sky, frame, groups, positions, sums, call):
    """Each row's ``sky_offset`` term (`sky_offset_variance`: the
    background's offset from a whole-frame level, or an annulus' from its
    aperture; None where a row has none) and an annulus sky's further
    terms (`annulus_sky_terms`: ``sky_correlation`` on correlated noise
    and ``sky_sample`` of few pixels, without ``noise=``; a dict)."""
    include = call.budget.include_sky_mean
    offset = (sky_offset_variance(sky, frame.shape, positions[:, 0],
                                  positions[:, 1], sums.n_pix, call.noise)
              if include else None)
    return offset, annulus_sky_terms(
        sky, frame, groups, sums.n_pix,
        call.budget.sky_term_inputs(sums.noise_pix, None, None)[0],
        sums.sky_std, sums.sky_error_on_mean, noise=call.noise,
        include_sky_mean=include)


def _budget_terms(sums, frame, call, array_sums, sky, local=None,
                  offset=None, annulus_terms=None):
    """Every row's budget terms at once, from `budget_terms`, and where the
    terms taken from variance arrays came from (empty without); ``local``:
    with ``noise=``, each row's local pixel noise over the blank sky's
    (`ApertureNoise.local_ratio`), which scales the model's sky term;
    ``offset``: each row's ``sky_offset`` term (`sky_offset_variance`),
    kept where any row has one; ``annulus_terms``: an annulus sky's
    further terms by name (`annulus_sky_terms`), or None."""
    noise_pix, sigma2 = call.budget.sky_term_inputs(
        sums.noise_pix, sums.sigma2, sums.sigma2_sq)
    has_map = frame.uncertainty is not None
    model = call.budget.uncertainty_model
    noise = call.noise
    error_on_mean = (sums.sky_error_on_mean if call.budget.include_sky_mean
                     else None)
    if noise is not None:  # blank-sky apertures: the sky term
        if array_sums is None:
            sigma2 = noise_variance(noise, sums.n_pix, noise_pix, local)
        scale = noise_level_scale(noise, sky)
        error_on_mean = (None if error_on_mean is None
                         else error_on_mean * scale)
        has_map, model = True, 'background'
    extra = {} if sums.selection is None else {'selection': sums.selection}
    arrays, origins, gain = {}, {}, call.detector.gain
    if array_sums is not None:
        ratio, source_ratio = (
            (None, None) if noise is None
            else noise_ratios(noise, frame, sums.n_pix))
        found = array_budget(
            array_sums, sums.n_pix if noise_pix is None else noise_pix,
            photon_sky_level(frame), ratio=ratio, source_ratio=source_ratio,
            noise_note=None if noise is None else noise.note)
        arrays = {name: values for name, values in
                  (('source_variance', found.source),
                   ('flat_variance', found.flat)) if values is not None}
        extra = {**found.extra, **extra}
        origins, gain, model = found.origins, None, 'background'
        has_map, sigma2 = found.sky is not None, found.sky
    if offset is not None and np.any(offset > 0):
        extra[SKY_OFFSET_TERM] = offset
    extra.update(annulus_terms or {})
    terms = unchecked_budget_terms(
        sums.flux, sums.n_pix, sums.sky_std,
        noise_pix=noise_pix, gain=gain,
        sky_error_on_mean=error_on_mean,
        sky_variance=sigma2 if has_map else None,
        uncertainty_model=model, extra_terms=extra or None,
        source_flux=call.budget.source_term_input(sums.flux_sq), **arrays)
    return terms, origins


def _to_table(sums, terms, positions, frame, sky, call, conversion,
              origins):
    """The photometry columns, from the sums, their budget terms and the
    positions, as a `~astropy.table.QTable`: sums, their variances and the
    sky levels in the flux unit (`FluxConversion`: one unit per table),
    magnitudes in the system the flux unit allows, and ``meta``."""
    cols = {
        'id': np.arange(1, len(sums) + 1),
        'x_center': positions[:, 0], 'y_center': positions[:, 1],
        'n_pix': sums.n_pix, 'sky': sums.sky, 'sky_std': sums.sky_std,
        'sky_error_on_mean': sums.sky_error_on_mean,
        'aperture_sum': sums.flux, 'aperture_sum_err': terms.error,
        'var_sky': terms.sky, 'var_source': terms.source,
        'var_sky_mean': terms.sky_mean, 'snr': terms.snr,
        'mag_err': terms.mag_err, 'flags': sums.flags}
    names = list(PHOTOMETRY_COLUMNS)
    more = {**({'var_flat': terms.flat} if 'flat' in origins else {}),
            **{f'var_{name}': values for name, values in
               terms.extra.items()}}  # var_rnoise, var_selection, ...
    cols.update(more)
    at = names.index('var_sky_mean') + 1
    names[at:at] = list(more)
    for name in names:
        if unit_power(name):
            cols[name] = conversion.apply(
                cols[name], n_pix=None if name in _LEVEL_COLUMNS
                else sums.n_pix, power=unit_power(name))
    mags = magnitudes(cols['aperture_sum'], conversion.unit,
                      exptime=call.detector.exptime,
                      zeropoint=call.zeropoint, meta=frame.meta)
    cols['mag'] = mags.mag
    table = QTable()
    for name in names:
        value = cols[name]
        power = unit_power(name)
        if conversion.unit is not None and power:
            value = value * conversion.unit ** power
        table[name] = value
    table.meta.update(_provenance(call, sky,
                                  has_map=frame.uncertainty is not None,
                                  origins=origins))
    units = _unit_meta(frame, conversion, mags)
    table.meta['notes'] += units.pop('notes')
    table.meta.update(units)
    return add_sky_centroid(table, frame)  # when the frame has a sky WCS


def _unit_meta(frame, conversion, mags):
    """``meta`` on the units: the flux unit and how the sums got there, the
    magnitude system and its zero point."""
    meta = {'data_unit': None if frame.unit is None else str(frame.unit),
            'flux_unit': (None if conversion.unit is None
                          else str(conversion.unit)),
            'flux_conversion': conversion.note,
            'mag_system': mags.system, 'zeropoint': mags.zeropoint,
            'zeropoint_source': mags.zeropoint_source}
    notes = [] if mags.usual else [mags.note]
    if conversion.note is not None:
        notes.insert(0, f'aperture sums: {conversion.note}')
    meta['notes'] = notes
    return meta


def _provenance(call, sky, *, has_map, origins):
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
        'engine': call.engine,
        **asdict(budget),  # every budget option, by its name
    }
    if origins:  # the arrays are the total variance: no model of a map
        meta['uncertainty_model'] = 'variance arrays'
    elif not has_map:  # no uncertainty map: no model of one was used
        meta['uncertainty_model'] = None
    notes = []
    if origins:
        meta['variance_arrays'] = {f'var_{name}': origin for name, origin
                                   in origins.items()}
        notes.append('budget from the variance arrays (' + '; '.join(
            f'var_{name}: {origin}' for name, origin in origins.items())
            + '): no source term from a gain')
    elif detector.gain is None:
        notes.append('no gain: source Poisson term absent (var_source NaN)')
    meta['notes'] = notes
    return meta
