# Licensed under a 3-clause BSD style license - see LICENSE
"""
Every variance term of many aperture fluxes at once: the one formula
behind `ErrorBudget`, `measure` and `photometer`.
"""

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..utils.numbers import (
    check_bool,
    check_choice,
    check_index,
    real_array,
    scale_array,
)

__all__ = ['BudgetOptions', 'BudgetTerms', 'budget_terms',
           'UNCERTAINTY_MODELS', 'FRACTIONAL_VARIANCES']

#: ``2.5 / ln(10)``: magnitude error per unit relative flux error.
MAG_FACTOR = 2.5 / math.log(10.0)

#: How an uncertainty map enters the budget: ``'background'`` (it replaces
#: the measured sky scatter, the source term is still added) or ``'total'``
#: (it is the whole per-pixel error: no separate source term).
UNCERTAINTY_MODELS = ('background', 'total')

#: Extra terms that may be negative (their total with the others may not):
#: a smoothed threshold mask's ``selection`` term, which holds the
#: mask-growth adjustment (`~ccdphot_ext.SigmaThreshold.selection_variance`),
#: and an annulus sky's ``sky_correlation`` term on correlated noise
#: (`~ccdphot_ext.background.annuluscorrelation.annulus_correlation_term`).
SIGNED_TERMS = ('selection', 'sky_correlation')

#: The terms every budget has a place for, in the order the total adds
#: them (``'sky'``: the per-pixel term, named ``'map'`` in a budget for an
#: uncertainty map taken as the total error); its further terms
#: (`BudgetTerms.extra`: ``selection``, ``sky_offset``, a variance array's
#: ``rnoise``, ...) follow in the order they were given.
FIXED_TERMS = ('sky', 'source', 'sky_mean', 'flat')

#: How a pixel partly inside an aperture (weight ``w``) enters the sky term:
#: ``'squared'`` adds ``w**2 * sigma**2`` (the variance of a weighted sum of
#: independent pixels), ``'linear'`` adds ``w * sigma**2`` (the convention
#: of photutils, Source Extractor and IRAF, which overstates the variance of
#: small apertures). The same for whole pixels (``w`` 0 or 1).
FRACTIONAL_VARIANCES = ('squared', 'linear')


@dataclass(frozen=True, kw_only=True)
class BudgetOptions:
    """
    How the error budget of `~ccdphot_ext.measure`,
    `~ccdphot_ext.photometer` and `~ccdphot_ext.photometer_frames` is
    formed. Checked when built; immutable.

    Parameters
    ----------
    uncertainty_model : {'background', 'total'}, optional
        How an uncertainty map enters the budget: ``'background'``
        (default) takes it as the background noise only and adds the
        source term from the gain; ``'total'`` as the whole per-pixel
        error (a ``map`` term, no separate source term). See
        :ref:`uncertainty-model`.
    include_sky_mean : bool, optional
        Add the errors of the sky level subtracted (default True): its own
        error (the ``sky_mean`` term) and, against one whole-frame level,
        its offset from the background at each aperture (the
        ``sky_offset`` term,
        `~ccdphot_ext.photometry.residual.sky_offset_variance`). False
        takes the level as exact (as the notebook did).
    fractional_variance : {'squared', 'linear'}, optional
        A pixel partly inside an aperture (weight ``w``) adds ``w**2``
        (default: the variance of a weighted sum) or ``w`` (the convention
        of photutils, Source Extractor and IRAF) times its variance to the
        sky term. See :ref:`fractional-pixels`.

    Raises
    ------
    ValueError
        If a choice is not one of those listed.
    TypeError
        If ``include_sky_mean`` is not a bool.

    Examples
    --------
    >>> from ccdphot_ext import BudgetOptions
    >>> BudgetOptions(fractional_variance='linear')
    BudgetOptions(uncertainty_model='background', include_sky_mean=True, \
fractional_variance='linear')
    """

    uncertainty_model: str = 'background'
    include_sky_mean: bool = True
    fractional_variance: str = 'squared'

    def __post_init__(self):
        check_choice(self.uncertainty_model, 'uncertainty_model',
                     UNCERTAINTY_MODELS)
        check_choice(self.fractional_variance, 'fractional_variance',
                     FRACTIONAL_VARIANCES)
        # a numpy bool as a plain one (meta, repr, JSON)
        object.__setattr__(self, 'include_sky_mean', check_bool(
            self.include_sky_mean, 'include_sky_mean'))

    def source_term_input(self, flux_sq):
        """
        ``source_flux`` for `budget_terms` under `fractional_variance`: the
        squared-weight sum ``sum(w**2 (D - B))`` (the photon noise of a
        weighted sum), or None (``F / g``) for ``'linear'``.

        Parameters
        ----------
        flux_sq : float or ndarray
            ``sum(w**2 (D - B))`` of each aperture.

        Returns
        -------
        source_flux : float, ndarray or None
            ``flux_sq``, or None under ``'linear'``.
        """
        return None if self.fractional_variance == 'linear' else flux_sq

    def sky_term_inputs(self, noise_pix, sigma2, sigma2_sq):
        """
        ``(noise_pix, sky_variance)`` for `budget_terms` under
        `fractional_variance`: the squared-weight sums ``sum(w**2)`` and
        ``sum(w**2 * sigma**2)``, or for ``'linear'`` ``(None, sigma2)``
        (``n_pix`` and ``sum(w * sigma**2)``).

        Parameters
        ----------
        noise_pix : float or ndarray
            ``sum(w**2)`` of each aperture.
        sigma2 : float, ndarray or None
            ``sum(w * sigma**2)`` of an uncertainty map over each aperture
            (None without a map).
        sigma2_sq : float, ndarray or None
            ``sum(w**2 * sigma**2)`` of an uncertainty map over each
            aperture (None without a map).

        Returns
        -------
        noise_pix : float, ndarray or None
            The ``noise_pix`` argument of `budget_terms`: ``noise_pix``
            for ``'squared'``, None (``n_pix`` is used) for ``'linear'``.
        sky_variance : float, ndarray or None
            The ``sky_variance`` argument of `budget_terms`:
            ``sigma2_sq`` for ``'squared'``, ``sigma2`` for ``'linear'``
            (None without a map).

        Examples
        --------
        >>> from ccdphot_ext import BudgetOptions
        >>> BudgetOptions().sky_term_inputs(9.5, None, None)
        (9.5, None)
        >>> linear = BudgetOptions(fractional_variance='linear')
        >>> linear.sky_term_inputs(9.5, 40.0, 38.0)
        (None, 40.0)
        """
        if self.fractional_variance == 'linear':
            return None, sigma2
        return noise_pix, sigma2_sq


class BudgetTerms(NamedTuple):
    """
    Every variance term of one or many aperture fluxes, one row each.

    The result of `budget_terms` (a named tuple: each parameter is a field
    of the same name). A term absent from a row (no gain, an exact sky
    level, no pixel selected, ...) is NaN there; rows that were not measured
    (NaN flux) are NaN throughout. Variances are in the square of the flux
    unit.

    Parameters
    ----------
    flux : ndarray
        The sky-subtracted fluxes, one per row.
    n_pix : ndarray
        The pixels summed (sum of weights).
    sky : ndarray
        The per-pixel noise term, ``noise_pix * sky_std**2`` or the
        uncertainty map's ``sum(w_i**2 * sigma_i**2)``.
    source : ndarray
        The source's photon noise ``max(source_flux, 0) / gain`` (``F /
        gain`` for whole pixels; NaN where absent: no gain, or a map taken
        as the total error).
    sky_mean : ndarray
        The error of the sky level, ``n_pix**2 * error_on_mean**2`` (NaN
        where absent).
    flat : ndarray
        The flat-field term (NaN where absent).
    extra : dict
        Further named terms, name -> ndarray.
    variance : ndarray
        The sum of the terms present in each row; NaN for a row not
        measured, and for one that summed pixels with every term 0 (no
        sky noise at all, `noiseless`: its error is unknown, not 0).
    error : ndarray
        The square root of ``variance``: the 1-sigma flux error.
    snr : ndarray
        ``flux / error`` (NaN for a zero error).
    mag_err : ndarray
        ``2.5/ln(10) * error / flux`` (NaN for flux <= 0).
    sky_name : str
        The name of the per-pixel term: ``'sky'``, or ``'map'`` for an
        uncertainty map taken as the total per-pixel error.

    Examples
    --------
    >>> from ccdphot_ext import budget_terms
    >>> terms = budget_terms([900.0, 1600.0], 100, 2.0, gain=1.0)
    >>> terms.sky_name, terms.variance.tolist()
    ('sky', [1300.0, 2000.0])
    """

    flux: np.ndarray
    n_pix: np.ndarray
    sky: np.ndarray
    source: np.ndarray
    sky_mean: np.ndarray
    flat: np.ndarray
    extra: dict
    variance: np.ndarray
    error: np.ndarray
    snr: np.ndarray
    mag_err: np.ndarray
    sky_name: str

    def row(self, index=0):
        """
        The terms present in one row, by name.

        Parameters
        ----------
        index : int, optional
            The row (default 0, the only row of one flux).

        Returns
        -------
        terms : dict
            Term name -> variance (a float), in the order the total adds
            them: the per-pixel term (`sky_name`), ``source``,
            ``sky_mean``, ``flat``, then the extra terms; terms absent
            from the row (NaN) are left out.

        Examples
        --------
        >>> from ccdphot_ext import budget_terms
        >>> budget_terms([900.0, 1600.0], 100, 2.0, gain=1.0).row(1)
        {'sky': 400.0, 'source': 1600.0}
        """
        index = check_index(index, 'index', len(self.flux))
        named = [(self.sky_name if name == 'sky' else name,
                  getattr(self, name)) for name in FIXED_TERMS]
        named += self.extra.items()
        return {name: float(values[index]) for name, values in named
                if not np.isnan(values[index])}


def sum_terms(terms):
    """
    The total variance: the terms added one after the other in their order,
    an absent (NaN) term counting as 0. The same sequence of additions for
    one row or for many, so both give the same bits.
    """
    total = 0.0
    for term in terms:
        total = total + np.where(np.isnan(term), 0.0, term)
    return total


def noiseless(variance, n_pix):
    """
    True where a row summed pixels (``n_pix > 0``) yet every term of its
    variance is 0 or absent: a sky scatter of 0 (a constant frame, a zero
    rms map) and no source term. Such a row's error is unknown, not 0 (a
    zero error would weigh it infinitely): its total variance is NaN. A
    row with no pixel keeps its exact 0.
    """
    with np.errstate(invalid='ignore'):
        return (np.asarray(variance) == 0) & (np.asarray(n_pix) > 0)


def _check_term_inputs(flux, n_pix, sky_std, gain):
    """Refuse what would give a wrong error bar rather than a NaN one: a
    negative pixel count, sky scatter or gain, and a measured row (finite
    flux, pixels summed) whose sky scatter is NaN (an absent term counts as
    0: its error would come out too small)."""
    with np.errstate(invalid='ignore'):
        for values, name in ((n_pix, 'n_pix'), (sky_std, 'sky_std')):
            if np.any(values < 0):
                raise ValueError(f'{name} must be non-negative')
        if gain is not None and np.any(~(np.asarray(gain, float) > 0)):
            raise ValueError('gain must be positive and finite')
        unknown = np.isfinite(flux) & (n_pix > 0) & np.isnan(sky_std)
    if unknown.any():
        raise ValueError('sky_std is NaN for a measured flux (row(s) '
                         f'{np.flatnonzero(unknown)[:5].tolist()}): its '
                         'error bar would leave the sky out')


def _sky_term(n_pix, noise_pix, sky_std, sky_variance, shape):
    """``noise_pix * sky_std**2`` (``noise_pix`` defaulting to ``n_pix``),
    or an uncertainty map's ``sky_variance``."""
    if sky_variance is not None:
        return np.broadcast_to(np.asarray(sky_variance, float), shape)
    if noise_pix is not None:
        n_pix = np.broadcast_to(np.asarray(noise_pix, float), shape)
    return n_pix * (sky_std * sky_std)


def _source_term(flux, gain, source_flux=None):
    """The source's photon noise ``F / g``, or with fractional pixels
    ``max(sum(w**2 (D - B)), 0) / g`` (``source_flux``); 0 for
    ``F <= 0``."""
    counts = (flux if source_flux is None
              else np.maximum(np.asarray(source_flux, float), 0.0))
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(flux > 0, counts / gain, 0.0)


def _sky_mean_term(n_pix, sky_std, sky_error_on_mean, n_sky, nan):
    """``n_pix**2 * error_on_mean**2``: from the error of the sky level,
    else from the pixels it was measured from; ``nan`` (absent) with
    neither."""
    n2 = n_pix * n_pix
    if sky_error_on_mean is not None:
        error_on_mean = np.asarray(sky_error_on_mean, float)
        return n2 * (error_on_mean * error_on_mean)
    if n_sky is not None:
        return n2 * (sky_std * sky_std) / n_sky
    return nan


def _error_snr_mag(flux, error):
    """The total error, ``flux / error`` (NaN for a zero error) and the
    magnitude error (NaN for flux <= 0)."""
    with np.errstate(invalid='ignore', divide='ignore'):
        return {'error': error,
                'snr': np.where(error > 0, flux / error, np.nan),
                'mag_err': np.where(flux > 0, MAG_FACTOR * error / flux,
                                    np.nan)}


def budget_terms(flux, n_pix, sky_std, *, noise_pix=None, gain=None,
                 sky_error_on_mean=None, n_sky=None, sky_variance=None,
                 uncertainty_model='background', flat_error=None,
                 extra_terms=None, source_flux=None, source_variance=None,
                 flat_variance=None):
    """
    The CCD equation, term by term, for many apertures at once (arguments
    broadcast against ``flux``; `ErrorBudget.from_aperture` validates).

    Parameters
    ----------
    flux : float or array_like
        Sky-subtracted aperture fluxes ``F``; NaN marks a row that was not
        measured (every output is NaN there).
    n_pix : float or array_like
        Pixels summed (sum of weights). A row with ``n_pix == 0`` (no pixel
        selected) has only a zero ``sky`` term.
    sky_std : float or array_like
        Per-pixel background scatter ``sigma_sky``.
    noise_pix : float or array_like, optional
        ``sum(w_i**2)``: ``sky = noise_pix * sky_std**2`` (default
        ``n_pix``, right when every weight is 0 or 1).
    gain : float or array_like, optional
        Gain in e-/ADU; without it the source term is absent (an infinite
        gain: a source term of 0, no photon noise).
    sky_error_on_mean : float or array_like, optional
        Error of the sky level (a `SkyEstimate`'s ``error_on_mean``):
        ``sky_mean = n_pix**2 * sky_error_on_mean**2``. Wins over
        ``n_sky``.
    n_sky : float or array_like, optional
        Pixels the sky level was measured from (a `SkyEstimate`'s
        ``n_pix``): ``sky_mean = n_pix**2 * sky_std**2 / n_sky``.
    sky_variance : float or array_like, optional
        An uncertainty map's ``sum(w_i**2 * sigma_i**2)``; replaces
        ``noise_pix * sky_std**2``.
    uncertainty_model : {'background', 'total'}, optional
        With ``sky_variance``: ``'total'`` takes it as the whole per-pixel
        error (term ``map``, no source term).
    flat_error : float or array_like, optional
        Fractional flat-field error: ``flat = (flat_error * F)**2``.
    extra_terms : dict, optional
        Further terms, name -> variance, added to the total.
    source_flux : float or array_like, optional
        ``sum(w_i**2 (D_i - B))``: with fractional pixels the source term
        is the photon noise of the weighted sum, ``max(source_flux, 0) /
        g`` (default ``flux``, right when every weight is 0 or 1).
    source_variance : float or array_like, optional
        The ``source`` term itself (from a data product's Poisson variance
        array, :ref:`variance-arrays`); replaces ``F / gain`` (or
        ``source_flux / gain``).
    flat_variance : float or array_like, optional
        The ``flat`` term itself (from a data product's flat-field
        variance array, :ref:`variance-arrays`); replaces ``(flat_error *
        F)**2``.

    Returns
    -------
    terms : `BudgetTerms`
        1-D arrays, one row per flux.

    Raises
    ------
    ValueError
        If a number is out of the package's rule for it (a pixel count,
        ``sky_std``, ``sky_error_on_mean``, ``flat_error`` or a variance
        negative, NaN where it is not an absent value, infinite or beyond
        the range whose square is a float; ``gain`` or ``n_sky`` not
        positive; ``noise_pix`` above ``n_pix``); if ``n_pix``,
        ``sky_std`` or ``sky_variance`` is NaN on a measured row (the error
        would leave the sky out), or a row with no pixel (``n_pix`` 0) has
        a flux; or ``uncertainty_model`` is not one of those listed.
    TypeError
        If an argument is not a number or an array of numbers.

    Warns
    -----
    AstropyUserWarning
        When the variance of a measured row overflows (its inputs, each
        within the rule, are too large to square together): its error is
        inf.

    Examples
    --------
    >>> from ccdphot_ext import budget_terms
    >>> t = budget_terms([41349.2, 35316.2], [400, 100], 53.139, gain=1.0)
    >>> t.error.round(2).tolist()
    [1082.06, 563.64]
    >>> t.sky_mean.tolist()  # no sky-level error given: absent
    [nan, nan]
    """
    checked = _checked_term_arguments(
        flux=flux, n_pix=n_pix, sky_std=sky_std, noise_pix=noise_pix,
        gain=gain, sky_error_on_mean=sky_error_on_mean, n_sky=n_sky,
        sky_variance=sky_variance, flat_error=flat_error,
        source_flux=source_flux, source_variance=source_variance,
        flat_variance=flat_variance)
    extra_terms = {name: (_signed_term(var, f'extra_terms[{name!r}]')
                          if name in SIGNED_TERMS else
                          scale_array(var, f'extra_terms[{name!r}]',
                                      allow_zero=True, allow_nan=True))
                   for name, var in (extra_terms or {}).items()}
    check_choice(uncertainty_model, 'uncertainty_model', UNCERTAINTY_MODELS)
    terms = unchecked_budget_terms(
        **checked, uncertainty_model=uncertainty_model,
        extra_terms=extra_terms)
    _warn_overflow(terms)
    return terms


def _signed_term(values, name):
    """A term of `SIGNED_TERMS` as a float array: any sign, NaN for an
    absent value, its magnitude within `SCALE_RANGE` (or 0)."""
    arr = scale_array(np.abs(real_array(values, name)), name,
                      allow_zero=True, allow_nan=True)
    return np.copysign(arr, real_array(values, name)) + 0.0


def unchecked_budget_terms(flux, n_pix, sky_std, *, noise_pix=None,
                           gain=None, sky_error_on_mean=None, n_sky=None,
                           sky_variance=None, uncertainty_model='background',
                           flat_error=None, extra_terms=None,
                           source_flux=None, source_variance=None,
                           flat_variance=None):
    """`budget_terms` of numbers its callers have checked (the engines'
    and `ErrorBudget`'s call): a term beyond the largest float is inf,
    which they flag or refuse."""
    flux = np.atleast_1d(np.asarray(flux, dtype=float))
    n_pix, sky_std = np.broadcast_arrays(flux, np.asarray(n_pix, float),
                                         np.asarray(sky_std, float))[1:]
    _check_term_inputs(flux, n_pix, sky_std, gain)
    # a term beyond the largest float is inf, not a RuntimeWarning: the
    # callers flag (photometer) or refuse (ErrorBudget) such a row
    with np.errstate(over='ignore'):
        return _terms(flux, n_pix, sky_std, noise_pix=noise_pix, gain=gain,
                      sky_error_on_mean=sky_error_on_mean, n_sky=n_sky,
                      sky_variance=sky_variance,
                      uncertainty_model=uncertainty_model,
                      flat_error=flat_error, extra_terms=extra_terms,
                      source_flux=source_flux,
                      source_variance=source_variance,
                      flat_variance=flat_variance)


def _checked_term_arguments(*, flux, n_pix, sky_std, noise_pix, gain,
                            sky_error_on_mean, n_sky, sky_variance,
                            flat_error, source_flux, source_variance,
                            flat_variance):
    """The numbers of `budget_terms` by the package's rule, by name: NaN
    only where it marks a row not measured or a term absent."""
    flux = np.atleast_1d(real_array(flux, 'flux'))
    out = {'flux': flux,
           'n_pix': scale_array(n_pix, 'n_pix', allow_zero=True,
                                allow_nan=True),
           'sky_std': scale_array(sky_std, 'sky_std', allow_zero=True,
                                  allow_nan=True)}
    for name, value, options in (
            ('noise_pix', noise_pix, {'allow_zero': True}),
            ('sky_error_on_mean', sky_error_on_mean, {'allow_zero': True}),
            ('n_sky', n_sky, {}),
            ('sky_variance', sky_variance, {'allow_zero': True,
                                            'allow_nan': True}),
            ('flat_error', flat_error, {'allow_zero': True}),
            ('source_variance', source_variance, {'allow_zero': True,
                                                  'allow_nan': True}),
            ('flat_variance', flat_variance, {'allow_zero': True,
                                              'allow_nan': True})):
        out[name] = (None if value is None
                     else scale_array(value, name, **options))
    if gain is not None:  # an infinite gain: no photon noise (source 0)
        out['gain'] = real_array(gain, 'gain')
        scale_array(np.where(out['gain'] == np.inf, 1.0, out['gain']),
                    'gain')
    out['source_flux'] = (None if source_flux is None
                          else real_array(source_flux, 'source_flux'))
    try:
        rows = np.broadcast_arrays(flux, *(
            v for v in out.values() if v is not None))
    except ValueError:
        raise ValueError('the arguments of budget_terms do not broadcast '
                         'against flux: shapes ' + ', '.join(
                             f'{k} {np.shape(v)}' for k, v in out.items()
                             if v is not None)) from None
    flux, n_pix = rows[0], np.broadcast_to(out['n_pix'], flux.shape)
    measured = np.isfinite(flux)
    if out['noise_pix'] is not None and np.any(
            out['noise_pix'] > n_pix * (1 + 1e-12)):
        raise ValueError('noise_pix (sum of squared weights) cannot exceed '
                         'n_pix: weights are at most 1')
    for name in ('n_pix', 'sky_variance'):
        if out[name] is not None and np.any(
                measured & np.isnan(np.broadcast_to(out[name], flux.shape))):
            raise ValueError(f'{name} is NaN for a measured flux: its error '
                             'bar would leave the sky out')
    if np.any(measured & (n_pix == 0) & (flux != 0)):
        raise ValueError('n_pix is 0 (no pixel) for a non-zero flux')
    return out


def _warn_overflow(terms):
    """Warn when the variance of a measured row of `budget_terms` is
    beyond the largest float, naming its rows and terms."""
    overflow = np.isfinite(terms.flux) & (terms.variance == np.inf)
    if overflow.any():
        rows = ', '.join(str(i) for i in np.flatnonzero(overflow)[:5])
        big = [name for name, values in (
            (terms.sky_name, terms.sky), ('source', terms.source),
            ('sky_mean', terms.sky_mean), ('flat', terms.flat),
            *terms.extra.items())
            if np.any(np.broadcast_to(values, overflow.shape)[overflow]
                      == np.inf)]
        warnings.warn(f'the variance of row(s) {rows} overflows: its term(s) '
                      f'{", ".join(big) or "total"} lie beyond the largest '
                      'float (inputs too large to square together; scale '
                      'the data): its error is inf', AstropyUserWarning,
                      stacklevel=3)


def _terms(flux, n_pix, sky_std, *, noise_pix, gain, sky_error_on_mean,
           n_sky, sky_variance, uncertainty_model, flat_error, extra_terms,
           source_flux, source_variance, flat_variance):
    """`budget_terms` on checked, broadcast inputs."""
    nan = np.full(flux.shape, np.nan)
    total_map = sky_variance is not None and uncertainty_model == 'total'
    sky = _sky_term(n_pix, noise_pix, sky_std, sky_variance, flux.shape)
    source = (nan if gain is None or total_map
              else _source_term(flux, gain, source_flux))
    if source_variance is not None:
        source = np.broadcast_to(np.asarray(source_variance, float),
                                 flux.shape)
    sky_mean = _sky_mean_term(n_pix, sky_std, sky_error_on_mean, n_sky, nan)
    flat = nan if flat_error is None else (flat_error * flux) ** 2
    if flat_variance is not None:
        flat = np.broadcast_to(np.asarray(flat_variance, float), flux.shape)
    extra = {name: np.broadcast_to(np.asarray(var, float), flux.shape)
             for name, var in (extra_terms or {}).items()}
    # no pixel selected: a zero sky term only; not measured: NaN throughout
    unmeasured = ~np.isfinite(flux)
    sky = np.where(unmeasured, np.nan, np.where(n_pix == 0, 0.0, sky))
    gone = (n_pix == 0) | unmeasured
    source, sky_mean, flat = (np.where(gone, np.nan, t)
                              for t in (source, sky_mean, flat))
    extra = {name: np.where(gone, np.nan, t) for name, t in extra.items()}
    variance = sum_terms([sky, source, sky_mean, flat, *extra.values()])
    variance = np.where(unmeasured | noiseless(variance, n_pix), np.nan,
                        variance)
    return BudgetTerms(flux=flux, n_pix=n_pix, sky=sky, source=source,
                       sky_mean=sky_mean, flat=flat, extra=extra,
                       variance=variance,
                       **_error_snr_mag(flux, np.sqrt(variance)),
                       sky_name='map' if total_map else 'sky')

