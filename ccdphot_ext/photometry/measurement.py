# Licensed under a 3-clause BSD style license - see LICENSE
"""
Measure one star: the notebook's box sum, mask sum and error, in one call.
"""

from functools import cached_property

import numpy as np
from astropy.table import QTable

from ..aperture.skybox import sky_position, to_pixel_apertures
from ..aperture.utils import (
    aperture_position,
    aperture_positions,
    check_extent,
    n_positions,
)
from ..background.annulus import sky_row_flags
from ..background.annuluscorrelation import (
    SKY_CORRELATION_TERM,
    SKY_SAMPLE_TERM,
    annulus_sky_terms,
)
from ..background.noise import (
    check_noise,
    noise_level_scale,
    noise_ratios,
    noise_variance,
    sky_level_scale,
)
from ..background.outliers import sharp_rows
from ..background.sky import check_sky, sky_doubt_flags
from ..background.skylift import sky_for_apertures
from ..flags import (
    FLAG_SATURATED,
    FLAG_SHARP_PIXEL,
    decode_flags,
)
from ..io.fluxdensity import flux_conversion
from ..io.header import detector_with_gain
from ..io.saturation import warn_saturation
from ..io.units import check_data_unit
from ..utils.inputs import as_frame, overflow_culprits
from ..utils.numbers import check_options, positive_integer
from .arrayterms import array_budget, photon_sky_level
from .budget import (
    NOTE_EMPTY,
    NOTE_MAP,
    ErrorBudget,
    warn_unknown_source_term,
    warn_unused_gain,
)
from .dqcheck import dq_rows, warn_dq
from .general import check_photometry_inputs, measure_one
from .residual import (
    SKY_OFFSET_TERM,
    error_without_offset,
    sky_offset_variance,
)
from .skychecks import note_sky_remeasured, sky_row_checks
from .sums import ApertureSums
from .terms import BudgetOptions, noiseless, unchecked_budget_terms
from .uncertaintycheck import (
    check_uncertainty_scale,
    resolve_uncertainty_model,
)

__all__ = ['measure', 'ApertureMeasurement']


def _budget(sums, cutout, frame, detector, options, noise, threshold,
            sky, local=1.0, offset=None, annulus_terms=None):
    """The `ErrorBudget` of one measured aperture (a row of an
    `ApertureSums` and its cutout), with the resolved `DetectorParameters`,
    the `BudgetOptions` and the threshold mask (for its note); from the
    frame's variance arrays when it has them. ``local``: with ``noise=``,
    the local pixel noise over the blank sky's at the aperture
    (`ApertureNoise.local_ratio`), which scales the model's sky term;
    ``offset``: its ``sky_offset`` term (`sky_offset_variance`), kept
    where positive; ``annulus_terms``: an annulus sky's further terms
    by name (`annulus_sky_terms`), or None."""
    gain, read_noise = detector.gain, detector.read_noise
    extra = {} if sums.selection is None else {'selection': sums.selection}
    if offset is not None and offset > 0:
        extra[SKY_OFFSET_TERM] = offset
    extra.update(annulus_terms or {})
    noise_pix, sky_variance = options.sky_term_inputs(
        sums.noise_pix, sums.sigma2, sums.sigma2_sq)
    uncertainty_model = options.uncertainty_model
    error_on_mean = (sums.sky_error_on_mean if options.include_sky_mean
                     else None)
    if noise is not None:  # blank-sky apertures: the sky term, not the map
        if not frame.variance_arrays:
            sky_variance = noise_variance(noise, sums.n_pix, noise_pix,
                                          local)
        scale = noise_level_scale(noise, sky)
        error_on_mean = (None if error_on_mean is None
                         else error_on_mean * scale)
        uncertainty_model = 'background'
    if sums.n_pix == 0:
        return ErrorBudget.from_terms(
            unchecked_budget_terms(sums.flux, 0.0, sums.sky_std),
            notes=[NOTE_EMPTY], gain=gain)
    if frame.variance_arrays:
        budget = _array_budget(sums, cutout, frame, options, noise,
                               error_on_mean, extra)
        if threshold is not None and threshold.note:
            budget.notes += (threshold.note,)
        return budget
    budget = ErrorBudget.from_aperture(
        sums.flux, sums.n_pix, sums.sky_std, noise_pix=noise_pix,
        gain=gain,
        sky_variance=sky_variance, sky_error_on_mean=error_on_mean,
        uncertainty_model=uncertainty_model, sky_level=sums.sky,
        read_noise=read_noise if gain is not None else None,
        dark=detector.dark if gain is not None else None,
        extra_terms=extra or None,
        source_flux=options.source_term_input(sums.flux_sq))
    if threshold is not None and threshold.note:
        budget.notes += (threshold.note,)
    if noise is not None:
        budget.notes = tuple(n for n in budget.notes if n != NOTE_MAP) + (
            noise.note,)
        if local > 1.0:
            budget.notes += (
                f'sky term multiplied by {local:.3g}**2: the local pixel '
                'noise over that of the blank sky the model was measured '
                'on',)
    if read_noise is not None and gain is None:
        budget.notes += ('read_noise ignored: no gain to convert electrons '
                         'to ADU',)
    return budget


def array_sums(frame, cutout, options):
    """Each variance array of ``frame`` summed over one measured aperture
    (``sum(w**2 V)``, or ``sum(w V)`` for linear fractional variance)."""
    w = cutout.weights
    w_var = w if options.fractional_variance == 'linear' else w * w
    used = w > 0
    return {name: float(np.sum(w_var[used] * values[cutout.slices][used]))
            for name, values in frame.variance_arrays.items()}


def _array_budget(sums, cutout, frame, options, noise, error_on_mean,
                  extra):
    """The budget of one aperture from the frame's variance arrays
    (``extra``: its terms beyond the arrays', by name)."""
    noise_pix = (sums.n_pix if options.fractional_variance == 'linear'
                 else sums.noise_pix)
    ratio, source_ratio = ((None, None) if noise is None
                           else noise_ratios(noise, frame, sums.n_pix))
    found = array_budget(
        array_sums(frame, cutout, options), np.array([noise_pix]),
        photon_sky_level(frame), ratio=ratio, source_ratio=source_ratio,
        noise_note=None if noise is None else noise.note)
    rows = unchecked_budget_terms(
        sums.flux, sums.n_pix, sums.sky_std, sky_error_on_mean=error_on_mean,
        sky_variance=found.sky, source_variance=found.source,
        flat_variance=found.flat,
        extra_terms={**found.extra, **extra} or None)
    return ErrorBudget.from_terms(rows, notes=list(found.notes))


class BudgetedResult:
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

    def _repr_html_(self):
        """The result as a compact HTML table (Jupyter): flux, error, SNR,
        flags, then each budget term with its share and an inline bar."""
        from ..utils.html import html_table

        unit = getattr(self, 'unit', None)
        un = '' if unit is None else f' {unit}'
        n_pix = getattr(self, 'n_pix', None)
        pixels = '' if n_pix is None else f', n_pix {n_pix:g}'
        flags = (f'flags {self.flags} ({"; ".join(self.flag_descriptions)})'
                 if self.flags else 'flags 0')
        title = (f'{type(self).__name__}: flux {self.flux:.6g} +/- '
                 f'{self.flux_err:.6g}{un}, SNR {self.snr:.4g}{pixels}, '
                 f'{flags}')
        rows, shares, muted = self.budget._html_rows()
        return html_table(title, ('term', 'variance', 'error'), rows,
                          shares=shares, muted=muted,
                          notes=self.budget.notes)


class ApertureMeasurement(BudgetedResult):
    """
    The result of `measure`: flux, error, SNR and the budget behind them.

    Built by `measure` from the pieces it has computed; the parameters are
    those pieces (internal objects, not meant to be built by hand). What a
    result offers is in its attributes, properties and `compare_numpy`.

    Parameters
    ----------
    frame : ``Frame``
        The checked frame that was measured (data, mask, unit, uncertainty
        map and variance arrays), as `measure` prepared it.
    aperture : `BoxAperture` or `~photutils.aperture.PixelAperture`
        The aperture measured.
    index : int
        Which position of ``aperture`` was measured (0 for one position).
    sums : ``ApertureSums``
        The sums of that position (one row): flux, pixels used, flags and
        the sky used.
    cutout : ``Cutout``
        The pixels behind the sums: the weight of each pixel of the cutout,
        where the cutout sits in the frame and the cutouts of an
        uncertainty map and of a sky map.
    budget : `ErrorBudget`
        The variance terms of the flux, in the data unit.
    detector : `DetectorParameters`
        The detector values used, resolved against the frame's header.
    options : `BudgetOptions`
        How the budget was formed (`compare_numpy` forms its sums the same
        way).

    Attributes
    ----------
    flux : float
        Sky-subtracted sum over the pixels used (weights applied), in
        `unit`.
    unit : `~astropy.units.UnitBase` or None
        The unit of ``flux`` and of the budget: the data unit, or the flux
        unit its sum was converted to (Jy for a surface brightness:
        ``conversion`` says how).
    conversion : `~ccdphot_ext.io.fluxdensity.FluxConversion`
        How the sum became ``flux`` (factor 1 for counts).
    n_pix : float
        Pixels used (sum of weights; excluded and unselected pixels are not
        counted).
    budget : `ErrorBudget`
        The variance terms.
    weights : 2-D ndarray
        Weight of each pixel of the cutout in the sum (0 = not used): the
        exact overlap, 0 for excluded and unselected pixels. `mask` holds
        the same array.
    slices : tuple of slices
        Where the cutout sits in the frame.
    flags : int
        Bit flags (see `ccdphot_ext.flags`).
    aperture : `BoxAperture` or `~photutils.aperture.PixelAperture`
        The aperture measured.
    position : tuple of float
        The ``(x, y)`` centre of the aperture measured.
    sky : float
        The sky level subtracted, per pixel, in the data unit (a sky map's
        weighted mean over the pixels used).
    sky_std : float
        The per-pixel sky scatter used, in the data unit.
    sky_error_on_mean : float
        The error of the sky level used, in the data unit.
    detector : `DetectorParameters`
        The detector values used, resolved against the frame's header
        (``detector.sources`` says where each came from).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture, SkyEstimate, measure
    >>> data = np.full((20, 20), 10.0)
    >>> data[8:12, 8:12] += 25.0
    >>> res = measure(data, BoxAperture((9.5, 9.5), 6, 6),
    ...               SkyEstimate(10.0, 1.0, 1000))
    >>> float(res.flux), float(res.n_pix), res.slices
    (400.0, 36.0, (slice(7, 13, None), slice(7, 13, None)))
    >>> bool(res.mask.all()), sorted(res.budget.terms)
    (True, ['sky', 'sky_mean'])
    """

    _noise = None  # an ApertureNoise used for the sky term
    _level_scale = 1.0  # and the factor it gives the sky level's error
    _local = 1.0  # and the local pixel noise over the blank sky's

    def __init__(self, frame, aperture, index, sums, cutout, budget,
                 detector, options):
        self._frame = frame
        self.aperture = aperture
        self.position = aperture_position(aperture, index)
        self.flux = sums.flux
        self.n_pix = sums.n_pix
        self.flags = sums.flags
        self.budget = budget
        self.weights = cutout.weights
        self.slices = cutout.slices
        self.sky = sums.sky
        self.sky_std = sums.sky_std
        self.sky_error_on_mean = sums.sky_error_on_mean
        self._sigma_map = cutout.sigma_map
        self._sky_pixels = cutout.sky_pixels  # a sky map's cutout
        self.detector = detector
        self._options = options  # the BudgetOptions of the budget
        self.unit = frame.unit
        self.conversion = None

    def _to_flux_unit(self, conversion):
        """Express ``flux`` and the budget in the conversion's unit."""
        self.conversion = conversion
        if conversion.note is None:  # nothing to do: counts, rates, ...
            return
        factor = self._factor
        self.flux = self.flux * factor
        self.budget = self.budget.scaled(
            factor, note=f'in {conversion.unit}: {conversion.note}')
        self.unit = conversion.unit

    @property
    def _factor(self):
        """The data-unit sum to `flux` factor (1 before conversion)."""
        if self.conversion is None or self.conversion.note is None:
            return 1.0
        factor = float(self.conversion.factor[0])
        if self.conversion.mean and self.n_pix > 0:
            factor /= self.n_pix
        return factor

    @property
    def mask(self):
        """
        The mask of the pixels in the aperture sum, on the cutout.

        The weight of each pixel of the cutout at `slices` in the sum: 1
        for a pixel wholly inside, the overlap for a pixel partly inside
        (exact overlaps), 0 for a pixel not used (outside, excluded, or
        not selected by a threshold). ``mask > 0`` is the boolean mask of
        the pixels summed. The same array as `weights`.
        """
        return self.weights

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
        fractional apertures: ``w`` to the flux, ``w**2`` to the sky
        variance unless ``fractional_variance='linear'``) and set beside the
        package's numbers.

        Returns
        -------
        table : `~astropy.table.QTable`
            Columns ``quantity``, ``ccdphot``, ``numpy``, ``rel_diff``;
            ``meta['notes']`` repeats the budget's notes (e.g. that the
            notebook's ``selection='pixel'`` mask is biased). A smoothed
            threshold mask's ``var_selection`` has no notebook counterpart
            and is carried over unchanged.
        """
        data = np.asarray(self._frame.data[self.slices], dtype=float)
        w = self.weights
        used = w > 0
        # the weights of the variance: w**2, or w by photutils' convention
        w_var = (w if self._options.fractional_variance == 'linear'
                 else w ** 2)
        cut = data - (self.sky if self._sky_pixels is None
                      else self._sky_pixels)
        if np.all((w == 0) | (w == 1)):
            np_flux = np_source = cut[used].sum()
            np_n = np_noise = used.sum()
        else:
            np_flux = (w[used] * cut[used]).sum()
            np_n = w[used].sum()
            np_noise = w_var[used].sum()
            # the photon noise of the weighted sum: sum(w**2 (D - B))
            np_source = (np_flux if self._options.fractional_variance
                         == 'linear' else (w_var[used] * cut[used]).sum())
        rows = [('flux', self.flux, np_flux), ('n_pix', self.n_pix, np_n)]
        terms = self.budget.terms
        if self._frame.variance_arrays:  # the arrays, summed by numpy
            rows += self._numpy_array_rows(w_var, used, np_noise)
        elif self._noise is not None:  # the noise model, not the notebook's
            rows.append(('var_sky', terms['sky'],
                         self._noise_variance(np_n, np_noise)))
        elif self._sigma_map is not None and ('sky' in terms
                                              or 'map' in terms):
            key = 'map' if 'map' in terms else 'sky'  # the total error
            rows.append((f'var_{key}', terms[key],
                         (w_var[used] * self._sigma_map[used] ** 2).sum()))
        elif 'sky' in terms:
            rows.append(('var_sky', terms['sky'],
                         np_noise * self.sky_std ** 2))
        gain = self.budget.gain
        if 'source' in terms and not self._frame.variance_arrays:
            rows.append(('var_source', terms['source'],
                         max(np_source, 0.0) / gain if np_flux > 0 else 0.0))
        if 'sky_mean' in terms:
            error_on_mean = self.sky_error_on_mean * self._level_scale
            rows.append(('var_sky_mean', terms['sky_mean'],
                         np_n ** 2 * error_on_mean ** 2))
        # numpy's sums are in the data unit: in the flux unit as ours
        f = self._factor
        rows = [(name, ours, theirs * (f if name == 'flux' else f * f
                                       if name.startswith('var_') else 1))
                for name, ours, theirs in rows]
        if 'selection' in terms:
            # not in the notebook (its mask is the biased pixel selection):
            # the smoothed mask's term is carried over as it is
            rows.append(('var_selection', terms['selection'],
                         terms['selection']))
        for name in (SKY_OFFSET_TERM, SKY_CORRELATION_TERM,
                     SKY_SAMPLE_TERM):
            # nor is the whole-frame level's offset from the background,
            # the correlated noise's share of an annulus sky (both
            # measured on the whole frame) or its few pixels' share:
            # carried over as they are
            if name in terms:
                rows.append((f'var_{name}', terms[name], terms[name]))
        np_var = sum(r[2] for r in rows[2:])
        # no noise at all in pixels summed: unknown (NaN) on both sides
        rows.append(('flux_err', self.flux_err,
                     np.nan if noiseless(np_var, self.n_pix)
                     else np_var ** 0.5))
        names = [r[0] for r in rows]
        ours = np.array([float(r[1]) for r in rows])
        theirs = np.array([float(r[2]) for r in rows])
        with np.errstate(divide='ignore', invalid='ignore'):
            rel = np.where(theirs != 0, (ours - theirs) / np.abs(theirs),
                           ours - theirs)
        rel = np.where(np.isnan(ours) & np.isnan(theirs), 0.0, rel)
        table = QTable({'quantity': names, 'ccdphot': ours, 'numpy': theirs,
                        'rel_diff': rel})
        table.meta['max_abs_rel_diff'] = float(np.max(np.abs(rel)))
        table.meta['notes'] = list(self.budget.notes)
        return table

    def _numpy_array_rows(self, w_var, used, np_noise):
        """The variance arrays' terms redone with plain numpy: each array
        summed with the variance weights; the photon-noise array's sky
        share is ``sum(w_var)`` times its median over the usable pixels."""
        frame, terms, rows = self._frame, self.budget.terms, []
        good = np.isfinite(frame.data) & (
            True if frame.mask is None else ~frame.mask)
        ratio = source_ratio = 1.0  # noise=: the model's correlation ratio
        if self._noise is not None:
            ratio, source_ratio = (float(r[0]) for r in noise_ratios(
                self._noise, frame, self.n_pix))
        for name, values in frame.variance_arrays.items():
            total = (w_var[used] * values[self.slices][used]).sum()
            if name in ('VAR_POISSON', 'ERR') and 'source' in terms:
                sky = min(total, np_noise * np.median(values[good]))
                rows.append(('var_sky', terms['sky'], sky * ratio))
                rows.append(('var_source', terms['source'],
                             (total - sky) * source_ratio))
            elif name == 'VAR_FLAT':
                rows.append(('var_flat', terms['flat'], total))
            else:
                key = name.lower().removeprefix('var_')
                rows.append((f'var_{key}', terms[key], total * ratio))
        return rows

    def _noise_variance(self, n_pix, noise_pix):
        """The noise model's sky term of ``n_pix`` pixels whose variance
        weights sum to ``noise_pix`` (plain pixel counts for linear
        fractional variance)."""
        var = self._noise.variance(
            n_pix, None if self._options.fractional_variance == 'linear'
            else noise_pix)
        return var * self._local ** 2 if self._local > 1.0 else var

    def __repr__(self):
        return (f'<ApertureMeasurement flux={self.flux:.6g} '
                f'flux_err={self.flux_err:.6g} snr={self.snr:.4g} '
                f'n_pix={self.n_pix:g} flags={self.flags}>')


def measure(data, aperture, sky, *, gain=None, noise=None, threshold=None,
            detector=None, budget=None, sum_method='exact', subpixels=5,
            uncertainty=None, mask=None, flux_unit=None,
            sky_without_apertures=True):
    """
    Photometry of one star with its full error budget.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The processed frame; a `CCDData`'s uncertainty, mask, unit and
        header are used.
    aperture : `BoxAperture` or `~photutils.aperture.PixelAperture`
        One position (a `~photutils.aperture.SkyAperture` is converted with
        the frame's WCS).
    sky : `SkyEstimate`
        One level (global or this aperture's) or a 2-D map, in the data
        unit.
    gain : float or `~astropy.units.Quantity`, optional
        Electrons per data unit: e-/ADU for counts (default
        ``detector.gain``, else the header's GAIN/EGAIN/CCDGAIN); for data
        in other units a Quantity such as ``31.3 * u.electron / (u.MJy /
        u.sr)`` (:ref:`gain-units`). Without one the source Poisson term is
        absent (the budget's notes say so). Giving it here and a different
        one in ``detector`` is an error. A frame with variance arrays needs
        none (:ref:`variance-arrays`): one given there is not used, with a
        warning.
    noise : `ApertureNoise`, optional
        Blank-sky aperture noise: ``sky`` term ``noise(n_pix)**2`` (on a
        frame with variance arrays, the arrays times
        `ApertureNoise.variance_ratio`); without it, a warning when
        pixels' noise is correlated (:ref:`noise`), and against an
        annulus sky there `photometer`'s ``sky_correlation`` term, the
        same number (:ref:`correlated annulus sky <annulus-correlated>`).
    threshold : `SigmaThreshold`, optional
        Keep only aperture pixels above ``n_sigma * sky.std``.
    detector : `DetectorParameters`, optional
        Read noise, dark, saturation (and gain, exposure time) of the
        detector; values not given are read from the frame's header
        (`DetectorParameters.resolve`). Read noise and dark are used only in
        the budget's ``decomposition`` of the ``sky`` term
        (:ref:`budget-decomposition`); saturation sets flag 4.
    budget : `BudgetOptions`, optional
        How the budget is formed: the uncertainty model of an uncertainty
        map (:ref:`uncertainty-model`), the error of the sky level
        (``sky_mean`` term) and the weight of pixels partly inside
        (:ref:`fractional-pixels`). Default ``BudgetOptions()``.
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
    flux_unit : `~astropy.units.UnitBase` or str, optional
        The unit of ``flux`` and its budget for data in a surface
        brightness or a flux density: default Jy for a surface brightness
        (:ref:`pixel-solid-angle`), the data unit otherwise; a surface
        brightness unit gives the mean surface brightness inside the
        aperture.
    sky_without_apertures : bool, optional
        A whole-frame ``sky`` (`SkyEstimate.from_image`) is measured again
        without this star's light where that light lifts it by more than a
        tenth of its error (`SkyEstimate.without_apertures`, as
        `photometer` does for all its apertures; the budget's notes say
        so); default True. False: ``sky`` as given
        (:ref:`sky-apertures`). Only this star's light is taken away: a
        loop of ``measure`` over the stars of a field leaves the others'
        light in each level (faint stars too faint for the source mask lift
        it; 121 stars of 300 ADU a frame read 0.1 of an error low), where
        `photometer` on all the apertures at once takes all of it away.
        Give the loop ``sky.without_apertures(data, apertures)`` of all the
        stars, or use `photometer`.

    Returns
    -------
    result : `ApertureMeasurement`
        The flux, its error, SNR and flags, the budget behind the error,
        and the pixels used (``weights`` on the cutout at ``slices``).

    Raises
    ------
    ValueError, TypeError
        A bad argument, named; an aperture wholly off the frame or with no
        usable pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture, SkyEstimate, measure
    >>> img = np.random.default_rng(0).normal(100.0, 5.0, (50, 50))
    >>> img[20:25, 20:25] += 400.0
    >>> sky = SkyEstimate.from_image(img, method='median')
    >>> res = measure(img, BoxAperture((22, 22), 9, 9), sky, gain=2.0)
    >>> sorted(res.budget.terms)
    ['sky', 'sky_mean', 'source']
    >>> bool(res.compare_numpy().meta['max_abs_rel_diff'] < 1e-10)
    True
    """
    aperture, frame, detector, options, subpixels, model_note = (
        _checked_inputs(
        data, aperture, sky, gain=gain, noise=noise, threshold=threshold,
        detector=detector, budget=budget, sum_method=sum_method,
        subpixels=subpixels, uncertainty=uncertainty, mask=mask))
    warn_saturation(detector, frame.meta, frame.unit)
    x, y = aperture_positions(aperture)[0]
    conversion = flux_conversion(frame.unit, flux_unit=flux_unit,
                                 meta=frame.meta, wcs=frame.wcs, x=[x], y=[y])
    sky = sky_for_apertures(sky, frame, aperture, sky_without_apertures)
    sums = ApertureSums.empty(
        1, uncertainty=frame.uncertainty is not None,
        selection=threshold is not None and not threshold.biased)
    with np.errstate(over='ignore', invalid='ignore'):  # refused below
        cutout = measure_one(frame, aperture, 0, sky, sums, 0, sky_index=0,
                             threshold=threshold,
                             saturation=detector.saturation,
                             sum_method=sum_method, subpixels=subpixels)
    sums.flags |= sky_row_flags(sky, aperture, 1)
    sums.flags |= sky_doubt_flags(sky, sums.sky_std)
    sums = sums.row(0)
    if sums.overflowed:
        raise ValueError('aperture: its sum overflows: '
                         f'{overflow_culprits(frame.data)}')
    if sums.skyless:
        raise ValueError('sky: it has no level under the aperture (no '
                         'usable sky pixel there), so there is no flux')
    measured = local = 1.0  # the local noise, and what scales the sky
    if noise is not None and not frame.variance_arrays:
        measured = float(noise.local_ratio(x, y, frame.shape))
        local = float(noise.local_ratio(x, y, frame.shape,
                                        gain=detector.gain, sky=sky))
    offset = (sky_offset_variance(sky, frame.shape, x, y, sums.n_pix, noise)
              if options.include_sky_mean else None)
    # an annulus sky's further terms: photometer's (one home)
    annulus_terms = {name: float(value[0]) for name, value in
                     annulus_sky_terms(
                         sky, frame, [(aperture, 1)], [sums.n_pix],
                         options.sky_term_inputs([sums.noise_pix], None,
                                                 None)[0],
                         [sums.sky_std], [sums.sky_error_on_mean],
                         noise=noise,
                         include_sky_mean=options.include_sky_mean).items()}
    result = ApertureMeasurement(
        frame, aperture, 0, sums, cutout,
        _budget(sums, cutout, frame, detector, options, noise, threshold,
                sky, local, None if offset is None else float(offset),
                annulus_terms),
        detector, options)
    if model_note is not None:
        result.budget.notes += (model_note,)
    note_sky_remeasured(result.budget, sky)
    if local < measured:
        result.budget.notes += (
            f'local pixel noise {measured:.3g} times the blank sky\'s, '
            f'{local:.3g} once the photon noise of the light above the '
            'whole-frame sky (its level over the gain), which the source '
            'term counts, is taken out',)
    result._noise = noise
    if noise is not None:  # the sky level's error under the noise model
        result._level_scale = sky_level_scale(noise, sky)
        result._local = local
    # checked against the frame's background variation when the sky is one
    # global level (in the data unit)
    result.flags |= sky_row_checks(sky, frame, x, y, result.n_pix,
                                   error_without_offset(
                                       result.flux_err,
                                       result.budget.variance,
                                       result.budget.terms.get(
                                           SKY_OFFSET_TERM)),
                                   scaled=measured)[0]
    dq = dq_rows(frame, aperture, sum_method=sum_method, subpixels=subpixels)
    if dq is not None:
        if dq.saturated[0]:
            result.flags |= FLAG_SATURATED
        warn_dq(dq, frame, None)
    if sharp_rows(frame, aperture, sky.std, sum_method=sum_method,
                  subpixels=subpixels, saturation=detector.saturation)[0][0]:
        result.flags |= FLAG_SHARP_PIXEL
    result._to_flux_unit(conversion)
    return result


def _checked_inputs(data, aperture, sky, *, gain, noise, threshold, detector,
                    budget, sum_method, subpixels, uncertainty, mask):
    """`measure`'s pixel aperture, frame, resolved detector parameters,
    budget options (`resolve_uncertainty_model`) and subpixels, every
    input checked once, and the note of a map taken as the total error."""
    # SkyAperture -> pixel
    aperture, unplaced = to_pixel_apertures(aperture, data)
    check_photometry_inputs(aperture, threshold, sum_method)
    if n_positions(aperture) != 1:
        raise ValueError('measure takes one aperture position; use '
                         'photometer for many')
    if unplaced:  # as a pixel aperture off the frame
        raise ValueError(f'aperture position 0 ({sky_position(unplaced[0])})'
                         " has no pixel position in the frame's WCS (the "
                         'far side of the sky for its projection): it lies '
                         'entirely off the frame')
    detector = detector_with_gain(detector, gain)
    options = check_options(budget, 'budget', BudgetOptions)
    subpixels = positive_integer(subpixels, 'subpixels')
    frame = as_frame(data, uncertainty=uncertainty, mask=mask)
    check_data_unit(frame.unit, 'data')
    check_extent(aperture, frame.shape, 'aperture')
    check_sky(sky, unit=frame.unit, n_apertures=1)
    check_noise(noise, frame, [aperture], sky)
    detector = detector.resolve(frame.meta, unit=frame.unit)
    warn_unused_gain(frame, detector)
    options, model_note = resolve_uncertainty_model(frame, detector, options,
                                                    noise=noise)
    warn_unknown_source_term(frame, detector, options.uncertainty_model)
    check_uncertainty_scale(frame, sky, explicit=uncertainty is not None)
    return aperture, frame, detector, options, subpixels, model_note
