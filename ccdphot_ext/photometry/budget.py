# Licensed under a 3-clause BSD style license - see LICENSE
"""
The error budget: every variance term of an aperture flux, kept apart.

Notation: data in ADU after bias/dark/flat; ``g`` the gain in e-/ADU; an
aperture of ``n_pix`` pixels (fractional overlaps allowed); a sky level
``B`` per pixel with per-pixel scatter ``sigma_sky``; ``F`` the
sky-subtracted sum over the aperture. The terms, each a variance in ADU²:

``sky``
    ``sum(w_i**2) * sigma_sky**2``: per-pixel background noise (read + dark
    + sky photons + anything else) as *measured*, or
    ``sum(w_i**2 * sigma_i**2)`` from an uncertainty map (named ``map``
    when the map is taken as the total per-pixel error). ``w_i`` is the
    fraction of pixel ``i`` inside the aperture: with whole pixels
    ``sum(w_i**2)`` is ``n_pix``, and the term is ``n_pix * sigma_sky**2``;
    a pixel half inside adds half its value to the flux and a quarter of
    its variance (the variance of a weighted sum of independent pixels).
``source``
    ``F / g`` for ``F > 0`` (0 otherwise): the star's photon noise. Absent
    when no gain is known (the budget's `notes` say so).
``sky_mean``
    ``n_pix**2 * error_on_mean**2``: the error of the sky level itself
    (IRAF ``phot``'s A²σ²/n_sky). Absent when the sky level is exact.
``flat``
    ``(flat_error * F)**2`` for a fractional flat-field error, if given.

Read noise and dark are *inside* a measured ``sigma_sky``; when gain, sky
level, read noise and dark are known the budget shows a `decomposition` of
the sky term into sky photons, read noise, dark and an ``excess``, which is
never added to the variance.

All of it is computed in one place, `budget_terms`, for one aperture or
for many at once: `ErrorBudget` is one row of it, and `measure` and
`photometer` (with either of its engines) both call it, so their numbers
are the same to the last bit.
"""

import math
import warnings

import numpy as np
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

from ..io.fluxdensity import unit_family
from ..io.header import HEADER_KEYWORDS
from ..utils.inputs import positive_scalar
from ..utils.numbers import check_choice, check_index, finite_number
from ..utils.warnonce import user_stacklevel
from .terms import (
    MAG_FACTOR,
    SIGNED_TERMS,
    UNCERTAINTY_MODELS,
    noiseless,
    sum_terms,
    unchecked_budget_terms,
)

__all__ = ['ErrorBudget']

#: Notes a budget carries, one home for their wording.
NOTE_NO_GAIN = 'no gain given: source Poisson term absent'
NOTE_EXACT_SKY = 'sky level taken as exact: sky_mean term absent'
NOTE_MAP = 'sky term from the uncertainty map: sum(w_i**2 * sigma_i**2)'
NOTE_TOTAL = ('uncertainty map taken as the total per-pixel error: no '
               'separate source term')
NOTE_EMPTY = 'no pixel selected'


def warn_unknown_source_term(frame, detector, uncertainty_model):
    """
    Warn that no error bar of ``frame`` holds the sources' photon noise
    when its unit is not a count (a rate, a surface brightness, a flux
    density), nothing gives a gain for it (``detector.gain`` None) and no
    uncertainty holds that noise already (variance arrays, or a map taken
    as the total error). Such error bars are too small for stars bright
    against the sky. Data in ADU (or counts) without a gain are warned
    about where the frame's header names the detector (its read noise or
    exposure time) but no GAIN, EGAIN or CCDGAIN (`warn_headerless_gain`):
    the file was meant to say it. A bare array (no header, no ``gain=``)
    is measured without the term on purpose (the notebook's convention):
    the budget's notes and ``meta['gain_source']`` say so. A header gain
    that is invalid has been warned about where it was read, and a gain
    argument that cannot apply (a rate without an exposure time) where it
    was resolved.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The measured frame.
    detector : `~ccdphot_ext.DetectorParameters`
        Resolved against the frame (``sources['gain']`` says why no gain).
    uncertainty_model : {'background', 'total'}
        How the frame's uncertainty map is taken.
    """
    if detector.gain is not None or frame.variance_arrays:
        return
    if frame.uncertainty is not None and uncertainty_model == 'total':
        return
    why = detector.sources['gain']
    if unit_family(frame.unit) == 'counts':
        warn_headerless_gain(frame, why)
        return
    if why.startswith('argument'):
        return  # a gain argument that cannot apply: warned
    if why == 'missing':
        why = f'no gain for data in {frame.unit}'
    warnings.warn(
        f'no source photon noise in any error bar: {why}'
        ' (var_source NaN; the errors of stars bright against the sky are '
        'too small). Pass gain= in electrons per data unit, or give the '
        'header what derives it (FLUXCONV beside GAIN and EXPTIME for MJy/sr;'
        ' EXPTIME for a rate), or an uncertainty that holds the photon '
        "noise (variance arrays, or uncertainty_model='total')",
        AstropyUserWarning, stacklevel=user_stacklevel())


def warn_headerless_gain(frame, why):
    """
    Warn that the header of a frame in ADU (or counts) describes a
    detector, naming its read noise or exposure time, but no gain: the
    source Poisson term is absent from every error bar (``var_source``
    NaN), which is then too small for stars bright against the sky
    (1.06-1.34 times for 3,000-20,000 ADU stars in 15 x 15 pixel boxes
    over a 100 ADU sky at 2 e-/ADU).

    A frame whose header says nothing of a detector (a bare array, a
    `~astropy.nddata.CCDData` with empty ``meta``, a scanned plate) only
    notes it: nothing but the call could have said the gain. A header
    gain that was invalid has been warned about already (``why`` names
    it).

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The measured frame, in a count unit (or none).
    why : str
        ``detector.sources['gain']``: ``'missing'`` when no keyword was
        found.
    """
    if why != 'missing' or not frame.meta:
        return
    described = [key for name in ('read_noise', 'exptime')
                 for key in HEADER_KEYWORDS[name] if key in frame.meta]
    if not described:
        return
    keys = '/'.join(HEADER_KEYWORDS['gain'])
    warnings.warn(
        f'no gain: the header names the detector ({described[0]}) but no '
        f'{keys}, so no error bar holds the source photon noise '
        '(var_source NaN; the errors of stars bright against the sky are '
        'too small). Pass gain= in e-/ADU (--gain), or add a GAIN card',
        AstropyUserWarning, stacklevel=user_stacklevel())


#: the share of a row's variance that the largest source term its sky
#: allows may reach before the row is flagged `FLAG_NO_SOURCE_TERM`: the
#: error bar is then at most sqrt(1.1), about 5%, too small
SOURCE_BOUND_SHARE = 0.1

#: fluxes of at most this many errors are not judged: a blank or faint
#: aperture's flux is mostly noise
SOURCE_SIGNIFICANCE = 3.0


def source_term_doubt(flux, variance, sky_level, sky_std):
    """
    The rows whose error bar leaves out a source photon noise that could
    matter, when no gain is known (`~ccdphot_ext.flags.FLAG_NO_SOURCE_TERM`).

    Without a gain the sky still bounds it: a sky of level ``B`` above the
    bias whose pixels scatter ``sigma`` holds at most ``sigma**2`` of
    photon variance, ``B / g``, so the gain is at least ``B / sigma**2``
    (equal where all of the sky's noise is photon noise; read noise, dark
    and flat-field noise only raise the bound) and the source's term,
    ``F / g``, is at most ``F * sigma**2 / B``. A row whose flux exceeds
    `SOURCE_SIGNIFICANCE` (3) errors is flagged where that exceeds
    `SOURCE_BOUND_SHARE` of its variance (the missing term could make its
    error over 5% too small). A level at or below 0 (a sky-subtracted
    frame) bounds nothing: every row of significant flux is flagged
    (unless its variance is NaN: its error is unknown already). Fluxes
    within 3 errors are not judged: flagging the positive half of the
    blank-sky sums would leave their negative half unflagged. A level
    that holds an unsubtracted bias or pedestal makes the
    bound too small (the gain looks larger than it is).

    Parameters
    ----------
    flux : array-like
        The rows' sky-subtracted fluxes, in the data unit.
    variance : array-like
        Their variances without a source term, in the data unit squared.
    sky_level, sky_std : array-like
        The sky level per pixel under each row and its pixel scatter, in
        the data unit.

    Returns
    -------
    doubtful : `~numpy.ndarray` of bool
        True where the missing term could matter.

    Examples
    --------
    >>> from ccdphot_ext.photometry.budget import source_term_doubt
    >>> # a 100 ADU sky scattering 10 ADU: the gain is at least 1 e-/ADU
    >>> source_term_doubt([400.0, 5000.0], [4500.0, 4500.0], 100.0, 10.0)
    array([False,  True])
    """
    flux, variance, level, std = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (flux, variance, sky_level,
                                                sky_std)))
    with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
        bound = np.where(level > 0, flux * std ** 2 / level, np.inf)
        # a NaN variance (no sky noise known) is an error bar said
        # unknown already, not one too small; a flux within its noise is
        # not judged (blank sky: flagging its positive half would leave
        # the negative one unflagged)
        return ((flux > SOURCE_SIGNIFICANCE * np.sqrt(variance))
                & (bound > SOURCE_BOUND_SHARE * variance))


def warn_unused_gain(frame, detector):
    """
    Warn, naming ``gain``, that a gain given as an argument (``gain=``,
    ``detector=DetectorParameters(gain=...)``, ``--gain``) is not used:
    the frame's variance arrays hold the sources' photon noise, and no
    source term is formed from a gain (:ref:`variance-arrays`). A gain
    from the header is not warned about. (With an uncertainty map taken
    as the total error, ``uncertainty_model='total'``, the model given
    says so, and the budget's notes.)

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The measured frame.
    detector : `~ccdphot_ext.DetectorParameters`
        Resolved against the frame (``sources['gain']`` says where the
        gain came from).
    """
    if (detector.gain is None or not frame.variance_arrays
            or not detector.sources['gain'].startswith('argument')):
        return
    names = ' + '.join(frame.variance_arrays)
    warnings.warn(f'gain={detector.gain:.6g} is not used: the variance '
                  f'arrays of the frame ({names}) hold the sources\' photon '
                  'noise, and no source term is formed from a gain; leave '
                  'gain out', AstropyUserWarning, stacklevel=user_stacklevel())


def _checked_aperture_inputs(*, flux, n_pix, noise_pix, sky_std, gain, n_sky,
                             sky_error_on_mean, sky_variance, sky_level,
                             read_noise, dark, flat_error, uncertainty_model,
                             extra_terms, source_flux=None):
    """`ErrorBudget.from_aperture`'s numbers validated, by name."""
    flux = finite_number(flux, 'flux')
    v = {'flux': flux,
         'n_pix': positive_scalar(n_pix, 'n_pix', allow_none=False),
         'sky_std': positive_scalar(sky_std, 'sky_std', allow_none=False,
                                    allow_zero=True),
         'gain': positive_scalar(gain, 'gain'),
         'n_sky': positive_scalar(n_sky, 'n_sky'),
         'noise_pix': positive_scalar(noise_pix, 'noise_pix')}
    if v['noise_pix'] is not None and v['noise_pix'] > v['n_pix'] * (
            1 + 1e-12):
        raise ValueError(f'noise_pix (sum of squared weights, {noise_pix}) '
                         f'cannot exceed n_pix ({n_pix}): weights are at '
                         'most 1')
    for name, value in (('sky_error_on_mean', sky_error_on_mean),
                        ('sky_variance', sky_variance),
                        ('read_noise', read_noise), ('dark', dark),
                        ('flat_error', flat_error)):
        v[name] = positive_scalar(value, name, allow_zero=True)
    v['sky_level'] = (None if sky_level is None
                      else finite_number(sky_level, 'sky_level'))
    v['source_flux'] = (None if source_flux is None
                        else finite_number(source_flux, 'source_flux'))
    if v['read_noise'] is not None and v['gain'] is None:
        raise ValueError('read_noise is in electrons and needs gain to '
                         'be converted to ADU; pass gain')
    check_choice(uncertainty_model, 'uncertainty_model', UNCERTAINTY_MODELS)
    for name in extra_terms or {}:
        if name in _BUILT_IN_TERMS:
            raise ValueError(f'extra_terms: {name!r} would replace a '
                             'built-in term')
    return v


#: The inputs of each variance term of `ErrorBudget.from_aperture`, to
#: name those too large to square together
_TERM_INPUTS = {'sky': ('n_pix', 'noise_pix', 'sky_std', 'sky_variance'),
                'map': ('sky_variance',),
                'source': ('flux', 'source_flux', 'gain'),
                'sky_mean': ('n_pix', 'sky_std', 'sky_error_on_mean',
                             'n_sky'),
                'flat': ('flux', 'flat_error')}


def _refuse_overflow(rows, v):
    """Refuse a one-row budget whose term overflows (inputs each within
    the number rule, too large to square together), naming its inputs."""
    for name, values in ((rows.sky_name, rows.sky), ('source', rows.source),
                         ('sky_mean', rows.sky_mean), ('flat', rows.flat)):
        if values[0] == np.inf:
            given = ', '.join(f'{k}={v[k]:.6g}' for k in _TERM_INPUTS[name]
                              if v.get(k) is not None)
            raise ValueError(f'variance term {name!r} overflows (beyond the '
                             f'largest float): {given} are too large to '
                             'square together; scale the data')


def _aperture_notes(rows, v):
    """The notes of a one-row budget (what is absent, where the sky term
    came from) and the decomposition of its sky term."""
    total_map = rows.sky_name == 'map'
    notes = []
    if total_map:
        notes.append(NOTE_TOTAL)
    elif v['sky_variance'] is not None:
        notes.append(NOTE_MAP)
    if v['gain'] is None and not total_map:
        notes.append(NOTE_NO_GAIN)
    if np.isnan(rows.sky_mean[0]):
        notes.append(NOTE_EXACT_SKY)
    decomposition = None
    if not total_map:
        noise_pix = v['n_pix'] if v['noise_pix'] is None else v['noise_pix']
        decomposition = _decompose(float(rows.sky[0]), noise_pix, v['gain'],
                                   v['sky_level'], v['read_noise'], v['dark'])
        if decomposition is None and (v['read_noise'] is not None
                                      or v['dark'] is not None):
            notes.append('decomposition needs gain and sky_level')
    return notes, decomposition


def _decompose(sky_var, n_pix, gain, sky_level, read_noise, dark):
    # ``n_pix`` here counts the pixels the sky noise adds up over
    # (``noise_pix``)
    """Split the measured sky variance into modelled parts + excess."""
    if gain is None or sky_level is None:
        return None
    parts = {'sky_photons': n_pix * max(sky_level, 0.0) / gain}
    if read_noise is not None:
        parts['read'] = n_pix * (read_noise / gain) ** 2
    if dark is not None:
        parts['dark'] = n_pix * dark / gain
    parts['excess'] = sky_var - sum(parts.values())
    return parts


_BUILT_IN_TERMS = ('sky', 'map', 'source', 'sky_mean', 'flat')


class ErrorBudget:
    """
    Variance terms of one aperture flux, their total, SNR and magnitude
    error.

    Parameters
    ----------
    flux : float
        The sky-subtracted flux ``F`` (ADU or the data unit).
    terms : dict
        Mapping of term name to variance (flux unit squared). Each must be
        finite and non-negative, except a threshold mask's ``selection``
        term, which may be negative (its mask-growth adjustment:
        `~ccdphot_ext.SigmaThreshold.selection_variance`) while the total
        is not.
    decomposition : dict, optional
        Modelled parts of the ``sky`` term (variance), shown but never added.
    notes : sequence of str, optional
        What was assumed or left out (e.g. "no gain: source term absent").
    gain : float or None, optional
        The gain used for the ``source`` term, for the record.
    n_pix : float or None, optional
        The number of pixels summed, for the record.

    Examples
    --------
    The notebook's first star with the gain of 1 the notebook used:

    >>> from ccdphot_ext import ErrorBudget
    >>> b = ErrorBudget.from_aperture(41349.20439525999, 400,
    ...                               53.139015422503746, gain=1.0)
    >>> print(f'{b.error:.4f} {b.snr:.3f}')
    1082.0588 38.213
    >>> sorted(b.terms)
    ['sky', 'source']
    """

    def __init__(self, flux, terms, *, decomposition=None, notes=(),
                 gain=None, n_pix=None):
        flux = finite_number(flux, 'flux')
        if not isinstance(terms, dict) or not terms:
            raise TypeError('terms must be a non-empty dict of name -> '
                            'variance')
        clean = {}
        for name, var in terms.items():
            var = float(var)
            if var == np.inf:
                raise ValueError(f'variance term {name!r} overflows (beyond '
                                 'the largest float): its inputs are too '
                                 'large to square; scale the data')
            if not np.isfinite(var) or (var < 0
                                        and name not in SIGNED_TERMS):
                raise ValueError(f'variance term {name!r} must be finite and '
                                 f'non-negative, got {var}')
            clean[name] = var
        if sum(clean.values()) < 0:
            raise ValueError('the variance terms must add up to a '
                             f'non-negative total, got {clean}')
        self.flux = flux
        self.terms = clean
        self.decomposition = dict(decomposition or {})
        self.notes = tuple(notes)
        self.gain = gain
        self.n_pix = n_pix

    @classmethod
    def from_terms(cls, terms, index=0, *, notes=(), decomposition=None,
                   gain=None):
        """
        Row ``index`` of a `BudgetTerms` (from `budget_terms`) as a budget.

        The numbers are the row's, bit for bit: `variance` adds the same
        terms in the same order.

        Parameters
        ----------
        terms : `~ccdphot_ext.BudgetTerms`
            The terms of one or many fluxes, from `budget_terms`.
        index : int, optional
            The row to take (default 0, the only row of one flux). Its flux
            must be finite (a row that was measured).
        notes : sequence of str, optional
            What was assumed or left out, as in the constructor.
        decomposition : dict, optional
            Modelled parts of the ``sky`` term, as in the constructor.
        gain : float, optional
            The gain used for the ``source`` term, for the record.

        Returns
        -------
        budget : `ErrorBudget`
            The row's terms (those present: absent terms are left out),
            with its flux and ``n_pix``.

        Raises
        ------
        ValueError
            If the row's flux is not finite (a row that was not measured).

        Examples
        --------
        >>> from ccdphot_ext import ErrorBudget, budget_terms
        >>> rows = budget_terms([900.0, 1600.0], 100, 2.0, gain=1.0)
        >>> b = ErrorBudget.from_terms(rows, 1)
        >>> b.terms, bool(b.error == rows.error[1])
        ({'sky': 400.0, 'source': 1600.0}, True)
        """
        index = check_index(index, 'index', len(terms.flux))
        return cls(terms.flux[index], terms.row(index), notes=notes,
                   decomposition=decomposition, gain=gain,
                   n_pix=float(terms.n_pix[index]))

    @classmethod
    def from_aperture(cls, flux, n_pix, sky_std, *, noise_pix=None,
                      gain=None, n_sky=None,
                      sky_error_on_mean=None, sky_variance=None,
                      sky_level=None,
                      read_noise=None, dark=None, flat_error=None,
                      extra_terms=None, uncertainty_model='background',
                      source_flux=None):
        """
        The CCD equation, term by term (one row of `budget_terms`).

        Parameters
        ----------
        flux : float
            Sky-subtracted aperture flux ``F`` [ADU].
        n_pix : float
            Number of pixels in the aperture (may be fractional). Must be
            positive.
        sky_std : float
            Per-pixel standard deviation of the background ``sigma_sky``
            [ADU], non-negative.
        noise_pix : float, optional
            ``sum(w_i**2)``: the sky term is ``noise_pix * sky_std**2``
            (default ``n_pix``: whole pixels).
        gain : float, optional
            Gain ``g`` [e-/ADU]. Without it the ``source`` term is absent.
        n_sky : float, optional
            Number of pixels the sky level was measured from (the
            `SkyEstimate`'s ``n_pix``); gives ``sky_mean = n_pix**2 *
            sky_std**2 / n_sky``.
        sky_error_on_mean : float, optional
            The error of the sky level [ADU] (e.g.
            `SkyEstimate.error_on_mean`); wins over ``n_sky``.
        sky_variance : float, optional
            The ``sky`` term itself, e.g. ``sum(w_i**2 * sigma_i**2)`` from
            an uncertainty map; replaces ``noise_pix * sky_std**2``.
        sky_level : float, optional
            The sky level ``B`` [ADU per pixel], needed for the decomposition.
        read_noise : float, optional
            Read noise [e-]; needs ``gain``. Used only in the decomposition.
        dark : float, optional
            Dark signal accumulated per pixel during the exposure [ADU],
            already subtracted from the data. Used only in the decomposition.
        flat_error : float, optional
            Fractional flat-field error; adds ``(flat_error * F)**2``.
        extra_terms : dict, optional
            Further user terms, name -> variance [ADU²].
        uncertainty_model : {'background', 'total'}, optional
            With ``sky_variance``: ``'total'`` takes it as the whole
            per-pixel error (a ``map`` term and no source term).
        source_flux : float, optional
            ``sum(w_i**2 (D_i - B))`` [ADU]: with fractional pixels the
            ``source`` term is ``max(source_flux, 0) / g``, the photon
            noise of the weighted sum (default ``flux``: whole pixels).

        Returns
        -------
        budget : `ErrorBudget`

        Examples
        --------
        >>> from ccdphot_ext import ErrorBudget
        >>> b = ErrorBudget.from_aperture(41349.20439525999, 400,
        ...                               53.139015422503746)
        >>> print(f'{b.error:.6f}')
        1062.780308
        >>> b.notes[0]
        'no gain given: source Poisson term absent'
        """
        v = _checked_aperture_inputs(
            flux=flux, n_pix=n_pix, noise_pix=noise_pix, sky_std=sky_std,
            gain=gain, n_sky=n_sky,
            sky_error_on_mean=sky_error_on_mean, sky_variance=sky_variance,
            sky_level=sky_level, read_noise=read_noise, dark=dark,
            flat_error=flat_error, uncertainty_model=uncertainty_model,
            extra_terms=extra_terms, source_flux=source_flux)
        rows = unchecked_budget_terms(
            v['flux'], v['n_pix'], v['sky_std'], noise_pix=v['noise_pix'],
            gain=v['gain'],
            sky_error_on_mean=v['sky_error_on_mean'], n_sky=v['n_sky'],
            sky_variance=v['sky_variance'], uncertainty_model=uncertainty_model,
            flat_error=v['flat_error'], extra_terms=extra_terms,
            source_flux=v['source_flux'])
        _refuse_overflow(rows, v)
        notes, decomposition = _aperture_notes(rows, v)
        return cls.from_terms(rows, notes=notes, decomposition=decomposition,
                              gain=v['gain'])

    def scaled(self, factor, *, note):
        """
        Express this budget in another unit.

        The flux is multiplied by ``factor``, every variance (terms and
        decomposition) by ``factor**2`` and the gain (electrons per unit)
        divided by it; SNR and magnitude errors do not change.

        Parameters
        ----------
        factor : float
            Positive and finite: the value in the new unit of 1 old unit.
        note : str
            What was done, added to `notes`.

        Returns
        -------
        budget : `ErrorBudget`
            A new budget (this one is not changed).

        Examples
        --------
        >>> from ccdphot_ext import ErrorBudget
        >>> b = ErrorBudget.from_aperture(1000.0, 25, 7.0, gain=2.0)
        >>> j = b.scaled(1e-6, note='adu -> uJy')
        >>> print(f'{j.flux:.6g} {j.terms["source"]:.6g} {j.gain:.6g}')
        0.001 5e-10 2e+06
        >>> bool(abs(j.snr - b.snr) < 1e-12 * b.snr)
        True
        """
        factor = positive_scalar(factor, 'factor', allow_none=False)
        f2 = factor ** 2
        return ErrorBudget(
            self.flux * factor, {k: v * f2 for k, v in self.terms.items()},
            decomposition={k: v * f2 for k, v in self.decomposition.items()},
            notes=[*self.notes, note],
            gain=None if self.gain is None else self.gain / factor,
            n_pix=self.n_pix)

    @property
    def variance(self):
        """
        Total variance: the sum of `terms` (never the decomposition); NaN
        where pixels were summed (``n_pix > 0``) yet every term is 0 (no
        sky noise at all: the error is unknown, not 0).
        """
        total = float(sum_terms(self.terms.values()))
        if self.n_pix is not None and noiseless(total, self.n_pix):
            return math.nan
        return total

    @property
    def error(self):
        """Total 1-sigma error ``sqrt(variance)``."""
        return math.sqrt(self.variance)

    @property
    def snr(self):
        """Signal-to-noise ratio ``flux / error`` (NaN if error is 0)."""
        err = self.error
        return self.flux / err if err > 0 else math.nan

    @property
    def mag_err(self):
        """
        Symmetric magnitude error ``2.5/ln(10) * error / flux``.

        NaN when the flux is zero or negative. ``1/snr`` is its
        small-error approximation (1.0857/snr exactly).
        """
        if self.flux <= 0:
            return math.nan
        return MAG_FACTOR * self.error / self.flux

    @property
    def mag_err_bright(self):
        """Magnitude step to ``flux + error``: ``2.5 log10(1 + 1/snr)``."""
        if self.flux <= 0:
            return math.nan
        # log1p: no cancellation in 1 + r at high SNR
        return MAG_FACTOR * math.log1p(self.error / self.flux)

    @property
    def mag_err_faint(self):
        """
        Magnitude step to ``flux - error``: ``-2.5 log10(1 - 1/snr)``.

        Infinite when ``snr <= 1`` (the faint side is then only a limit).
        """
        if self.flux <= 0:
            return math.nan
        ratio = self.error / self.flux
        if ratio >= 1:
            return math.inf
        return -MAG_FACTOR * math.log1p(-ratio)

    @property
    def fractions(self):
        """Each term's share of the total variance (they sum to 1)."""
        total = self.variance
        if total == 0:
            return {name: math.nan for name in self.terms}
        return {name: var / total for name, var in self.terms.items()}

    def to_table(self):
        """
        The budget as a `~astropy.table.QTable`.

        One row per term with ``variance``, its square root ``error`` and its
        ``fraction`` of the total, then a ``total`` row; decomposition rows
        (prefixed ``sky:``) follow with ``included`` False.

        Returns
        -------
        table : `~astropy.table.QTable`
            Columns ``term``, ``variance``, ``error``, ``fraction`` and
            ``included``; ``meta`` holds the ``flux``, the ``snr`` and the
            ``notes``.

        Examples
        --------
        >>> from ccdphot_ext import ErrorBudget
        >>> b = ErrorBudget(1600.0, {'sky': 400.0, 'source': 1600.0})
        >>> t = b.to_table()
        >>> t['term'].tolist(), t['error'].tolist(), t['fraction'].tolist()
        (['sky', 'source', 'total'], [20.0, 40.0, 44.721359549995796], \
[0.2, 0.8, 1.0])
        """
        names, var, frac, included = [], [], [], []
        fractions = self.fractions
        for name, value in self.terms.items():
            names.append(name)
            var.append(value)
            frac.append(fractions[name])
            included.append(True)
        names.append('total')
        var.append(self.variance)
        frac.append(1.0 if self.variance > 0 else math.nan)
        included.append(True)
        total = self.variance
        for name, value in self.decomposition.items():
            names.append(f'sky:{name}')
            var.append(value)
            frac.append(value / total if total > 0 else math.nan)
            included.append(False)
        var = np.array(var)
        table = QTable({'term': names, 'variance': var,
                        'error': np.sqrt(np.abs(var)) * np.sign(var),
                        'fraction': np.array(frac),
                        'included': included})
        table.meta['flux'] = self.flux
        table.meta['snr'] = self.snr
        table.meta['notes'] = list(self.notes)
        return table

    def _html_rows(self):
        """Rows (term, variance, error), shares and muted flags of the
        HTML table: the terms, the total, then the decomposition."""
        fractions = self.fractions
        total = self.variance
        rows = [(name, var, math.sqrt(var)) for name, var in self.terms.items()]
        shares = [fractions[name] for name in self.terms]
        rows.append(('total', total, self.error))
        shares.append(1.0 if total > 0 else math.nan)
        for name, var in self.decomposition.items():
            rows.append((f'sky: {name} (shown, not added)', var,
                         math.copysign(math.sqrt(abs(var)), var)))
            shares.append(var / total if total > 0 else math.nan)
        muted = [False] * (len(self.terms) + 1) + [True] * len(
            self.decomposition)
        return rows, shares, muted

    def _repr_html_(self):
        """The budget as a compact HTML table (Jupyter): each term's
        variance, error and share of the variance with an inline bar."""
        from ..utils.html import html_table

        rows, shares, muted = self._html_rows()
        title = (f'ErrorBudget: flux {self.flux:.6g} +/- {self.error:.6g}, '
                 f'SNR {self.snr:.4g}, mag_err {self.mag_err:.4g}')
        return html_table(title, ('term', 'variance', 'error'), rows,
                          shares=shares, muted=muted, notes=self.notes)

    def __repr__(self):
        lines = [f'<ErrorBudget flux={self.flux:.6g} error={self.error:.6g} '
                 f'snr={self.snr:.4g} mag_err={self.mag_err:.4g}']
        for name, frac in self.fractions.items():
            lines.append(f'  {name:<10s} variance={self.terms[name]:<12.6g} '
                         f'({100 * frac:5.1f}%)')
        for name, value in self.decomposition.items():
            lines.append(f'  [sky:{name}] {value:.6g} (shown, not added)')
        for note in self.notes:
            lines.append(f'  note: {note}')
        return '\n'.join(lines) + '>'
