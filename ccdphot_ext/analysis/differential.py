# Licensed under a 3-clause BSD style license - see LICENSE
"""
Differential photometry: each target relative to an ensemble of comparison
stars on the same frames, with the error propagated from the budgets.

For frame ``k`` the ensemble flux is ``C = sum_j a_j F_j`` over the
comparison stars, with coefficients ``a_j`` fixed for the whole light curve,
and the relative flux of a target is ``R = F_t / C``. Anything that
multiplies every star of a frame by the same factor (transparency, airmass,
an exposure-time error) cancels in ``R``; that is the point of the method,
and none of it is in the budgets.

Weighting
    ``'sum'``: ``a_j = 1`` (the ensemble is the summed flux of the
    comparison stars; brighter stars weigh more, which is close to optimal
    when photon noise dominates). ``'inverse_variance'``: each comparison
    enters normalised by its median flux ``M_j`` and weighted by its median
    ``(M_j / sigma_j)**2`` (inverse relative variance), scaled so that
    ``sum_j a_j M_j = sum_j M_j``; ``R`` is then on the same scale as with
    ``'sum'``. Coefficients never change from frame to frame, so a noisy
    frame cannot re-weight the ensemble.

Errors
    With ``V`` the budget variance of a row (``aperture_sum_err**2``),

    ``var(R) = (V_t + R**2 var(C) - 2 R cov(F_t, C)) / C**2``,
    ``var(C) = sum_j a_j**2 V_j + sum_{j != k} a_j a_k cov(F_j, F_k)``.

    Photon, read and sky noise of different apertures are independent. The
    one budget term shared by the stars of a frame is the error of a *single
    frame-wide* sky level (``var_sky_mean = n_pix**2 error_on_mean**2``):
    the same error ``dB`` shifts every flux by ``-n_pix dB``, so
    ``cov(F_i, F_j) = sqrt(var_sky_mean_i * var_sky_mean_j)``. It is used
    when the rows of a frame share one sky level (``sky_correlated='auto'``
    checks that ``sky`` and ``sky_error_on_mean`` are the same for every
    star of the frame); local annulus skies are independent and get no
    covariance. Only this term is treated as common: nothing else is
    assumed to cancel.

Comparison stars that are unusable on a frame (failed frame, non-finite
flux, or any of ``bad_flags`` set) make the whole frame's relative fluxes
NaN with a ``note``, rather than silently changing the ensemble.
"""

import math

import astropy.units as u
import numpy as np
from astropy.table import QTable, Table

from ..flags import (
    FLAG_BAD_PIXELS,
    FLAG_NONPOSITIVE_FLUX,
    FLAG_SATURATED,
    FLAG_TRUNCATED,
    flag_bits,
)
from ..utils.numbers import check_choice

__all__ = ['differential_photometry', 'DEFAULT_BAD_FLAGS',
           'ENSEMBLE_WEIGHTINGS']

#: Flags that make a comparison star unusable on a frame by default.
DEFAULT_BAD_FLAGS = (FLAG_TRUNCATED | FLAG_BAD_PIXELS | FLAG_SATURATED
                     | FLAG_NONPOSITIVE_FLUX)

#: Ensemble weightings of `differential_photometry`.
ENSEMBLE_WEIGHTINGS = ('sum', 'inverse_variance')

_MAG = 2.5 / math.log(10.0)
_REQUIRED = ('frame', 'id', 'aperture_sum', 'aperture_sum_err', 'flags')


def _ids(value, name):
    if isinstance(value, (str, bytes)):
        raise TypeError(f'{name} must be star ids (integers), got {value!r}')
    arr = np.atleast_1d(np.asarray(value))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f'{name} must be one id or a non-empty list of ids')
    if arr.dtype.kind not in 'iu':
        raise TypeError(f'{name} must be integer star ids, got dtype '
                        f'{arr.dtype}')
    if len(set(arr.tolist())) != arr.size:
        raise ValueError(f'{name} has repeated ids')
    return [int(v) for v in arr]


def _plain(column):
    return np.asarray(getattr(column, 'value', column), dtype=float)


def _pivot(table, star_ids):
    """Frames (in order of appearance) x stars arrays of each quantity."""
    frames = list(dict.fromkeys(str(f) for f in table['frame']))
    frow = {f: i for i, f in enumerate(frames)}
    scol = {s: j for j, s in enumerate(star_ids)}
    shape = (len(frames), len(star_ids))
    out = {name: np.full(shape, np.nan) for name in
           ('flux', 'var', 'var_sky_mean', 'sky', 'sky_error_on_mean')}
    out['flags'] = np.zeros(shape, dtype=np.int64)
    out['ok'] = np.zeros(shape, dtype=bool)
    seen = np.zeros(shape, dtype=bool)
    status = (np.asarray(table['status']).astype(str)
              if 'status' in table.colnames else np.full(len(table), 'ok'))
    cols = {'flux': _plain(table['aperture_sum']),
            'var': _plain(table['aperture_sum_err']) ** 2,
            'var_sky_mean': (_plain(table['var_sky_mean'])
                             if 'var_sky_mean' in table.colnames
                             else np.zeros(len(table))),
            'sky': (_plain(table['sky']) if 'sky' in table.colnames
                    else np.full(len(table), np.nan)),
            'sky_error_on_mean': (_plain(table['sky_error_on_mean'])
                        if 'sky_error_on_mean' in table.colnames
                        else np.full(len(table), np.nan))}
    flags = np.asarray(table['flags'], dtype=np.int64)
    ids = np.asarray(table['id'])
    for r, (frame, sid) in enumerate(zip(table['frame'], ids, strict=True)):
        j = scol.get(int(sid))
        if j is None:
            continue
        i = frow[str(frame)]
        if seen[i, j]:
            raise ValueError(f'lightcurve has two rows for star {int(sid)} '
                             f'on frame {frame}')
        seen[i, j] = True
        for name, col in cols.items():
            out[name][i, j] = col[r]
        out['flags'][i, j] = flags[r]
        out['ok'][i, j] = status[r] == 'ok'
    times = None
    if 'time' in table.colnames:
        first = {}
        for r, frame in enumerate(table['frame']):
            first.setdefault(str(frame), r)
        times = table['time'][[first[f] for f in frames]]
    return frames, times, out


def _coefficients(flux, var, usable, weighting):
    n_comp = flux.shape[1]
    if weighting == 'sum':
        return np.ones(n_comp)
    good = np.where(usable, flux, np.nan)
    med = np.nanmedian(good, axis=0) if np.any(usable) else np.full(
        n_comp, np.nan)
    err = np.nanmedian(np.where(usable, np.sqrt(var), np.nan), axis=0) \
        if np.any(usable) else np.full(n_comp, np.nan)
    if not np.all(np.isfinite(med) & (med > 0) & np.isfinite(err)
                  & (err > 0)):
        raise ValueError('comparisons: every comparison star needs a '
                         'positive median flux and error over the usable '
                         "frames for weighting='inverse_variance'")
    w = (med / err) ** 2
    return (w / med) * med.sum() / w.sum()


def differential_photometry(lightcurve, targets, comparisons, *,
                            weighting='sum', bad_flags=DEFAULT_BAD_FLAGS,
                            sky_correlated='auto'):
    """
    Compute each target's flux relative to an ensemble of comparison stars.

    Parameters
    ----------
    lightcurve : `~astropy.table.Table`
        A `~ccdphot_ext.photometer_frames` table (at least ``frame``,
        ``id``, ``aperture_sum``, ``aperture_sum_err`` and ``flags``;
        ``time``, ``status``, ``var_sky_mean``, ``sky`` and
        ``sky_error_on_mean`` are used when present), one row per frame
        and star.
    targets : int or sequence of int
        The star ids to measure, each giving one row per frame.
    comparisons : int or sequence of int
        The star ids of the comparison ensemble (disjoint from
        ``targets``).
    weighting : {'sum', 'inverse_variance'}, optional
        How the comparison fluxes are combined, with coefficients fixed for
        the whole light curve. ``'sum'`` (default): the summed flux of the
        comparison stars. ``'inverse_variance'``: each normalised by its
        median flux and weighted by its median inverse relative variance,
        on the same scale as ``'sum'``.
    bad_flags : int, optional
        A comparison with any of these flag bits set on a frame makes that
        frame's relative fluxes NaN, with a ``note`` (default
        `DEFAULT_BAD_FLAGS`: truncated, bad pixels, saturated, flux <= 0).
    sky_correlated : {'auto', True, False}, optional
        Whether the ``var_sky_mean`` terms of a frame are one shared error
        (a frame-wide sky level), correlated between the stars.
        ``'auto'`` (default) decides per frame: True when ``sky`` and
        ``sky_error_on_mean`` are the same for every star of the frame.

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per frame and target: ``frame``, ``time`` (if present),
        ``id``, ``flux``, ``flux_err``, ``ensemble_flux``,
        ``ensemble_flux_err``, ``rel_flux``, ``rel_flux_err``, ``dmag``
        (``-2.5 log10 rel_flux``), ``dmag_err``, ``n_comp``,
        ``sky_correlated``, ``flags`` (target's and comparisons' or-ed) and
        ``note``. ``meta`` records the ensemble and its coefficients.

    Raises
    ------
    TypeError
        If an id is not an integer, or an option has the wrong type.
    ValueError
        If a column is missing, an id is repeated, missing from the table
        or both a target and a comparison, a star has two rows on a frame,
        ``weighting`` or ``sky_correlated`` is not one of its choices, or
        ``'inverse_variance'`` finds a comparison without a positive median
        flux and error.

    Examples
    --------
    >>> from astropy.table import QTable
    >>> from ccdphot_ext.analysis.differential import differential_photometry
    >>> lc = QTable({'frame': ['a', 'a', 'a', 'b', 'b', 'b'],
    ...              'id': [1, 2, 3, 1, 2, 3],
    ...              'aperture_sum': [100.0, 400.0, 600.0, 55.0, 200.0, 300.0],
    ...              'aperture_sum_err': [10.0, 20.0, 20.0, 10.0, 20.0, 20.0],
    ...              'flags': [0, 0, 0, 0, 0, 0]})
    >>> d = differential_photometry(lc, 1, [2, 3])
    >>> d['rel_flux'].tolist()
    [0.1, 0.11]
    >>> print(f"{d['rel_flux_err'][0]:.5f}")
    0.01039
    """
    targets, comparisons = _validate(lightcurve, targets, comparisons,
                                     weighting, bad_flags, sky_correlated)
    frames, times, p = _pivot(lightcurve, comparisons + targets)
    ens = _Ensemble(p, comparisons, weighting, bad_flags, sky_correlated)
    rows = _target_rows(p, frames, targets, ens)
    out = _table(rows, times, getattr(lightcurve['aperture_sum'], 'unit',
                                      None), len(comparisons))
    out.meta.update({
        'targets': targets, 'comparisons': comparisons,
        'weighting': weighting,
        'coefficients': {int(c): float(v) for c, v in
                         zip(comparisons, ens.coefficients, strict=True)},
        'bad_flags': int(bad_flags),
        'sky_correlated': sky_correlated,
        'error_model': 'var(R) = (V_t + R^2 var(C) - 2 R cov(F_t, C)) / C^2; '
                       'only a shared frame-wide sky level is correlated',
    })
    return out


def _validate(lightcurve, targets, comparisons, weighting, bad_flags,
              sky_correlated):
    """Check the arguments; return the target and comparison id lists."""
    if not isinstance(lightcurve, Table):
        raise TypeError('lightcurve must be an astropy Table (e.g. the '
                        'output of photometer_frames), got '
                        f'{type(lightcurve).__name__}')
    missing = [c for c in _REQUIRED if c not in lightcurve.colnames]
    if missing:
        raise ValueError(f'lightcurve lacks column(s) {", ".join(missing)}')
    errors = np.asarray(getattr(lightcurve['aperture_sum_err'], 'value',
                                lightcurve['aperture_sum_err']), dtype=float)
    negative = errors < 0
    if negative.any():
        rows = ', '.join(str(i + 1) for i in np.flatnonzero(negative)[:5])
        raise ValueError(f'lightcurve: column aperture_sum_err is negative '
                         f'in {int(negative.sum())} row(s) (the first: '
                         f'{rows}; rows counted from 1): not an error bar')
    targets = _ids(targets, 'targets')
    comparisons = _ids(comparisons, 'comparisons')
    common = sorted(set(targets) & set(comparisons))
    if common:
        raise ValueError(f'comparisons must not include the targets (ids '
                         f'{common})')
    present = set(int(i) for i in np.asarray(lightcurve['id']))
    for name, ids in (('targets', targets), ('comparisons', comparisons)):
        absent = [i for i in ids if i not in present]
        if absent:
            raise ValueError(f'{name}: no rows for id(s) {absent}')
    check_choice(weighting, 'weighting', ENSEMBLE_WEIGHTINGS)
    flag_bits(bad_flags, 'bad_flags')
    check_choice(sky_correlated, 'sky_correlated', ('auto', True, False))
    return targets, comparisons


class _Ensemble:
    """The comparison ensemble of every frame, with its variance."""

    def __init__(self, p, comparisons, weighting, bad_flags, sky_correlated):
        nc = len(comparisons)
        cflux, cvar = p['flux'][:, :nc], p['var'][:, :nc]
        usable = (p['ok'][:, :nc] & np.isfinite(cflux) & np.isfinite(cvar)
                  & ((p['flags'][:, :nc] & int(bad_flags)) == 0))
        a = _coefficients(cflux, cvar, usable, weighting)
        if sky_correlated == 'auto':
            sky, error_on_mean = p['sky'], p['sky_error_on_mean']
            corr = (np.all(np.isfinite(sky) & np.isfinite(error_on_mean),
                           axis=1)
                    & np.all(sky == sky[:, :1], axis=1)
                    & np.all(error_on_mean == error_on_mean[:, :1], axis=1))
        else:
            corr = np.full(len(cflux), bool(sky_correlated))
        s = np.sqrt(np.nan_to_num(p['var_sky_mean'], nan=0.0))
        #: per-star shared sky-level error (0 where frames are independent)
        self.shared = np.where(corr[:, None], s, 0.0)
        self.coefficients = a
        self.correlated = corr
        self.flux = cflux @ a
        self.shared_sum = self.shared[:, :nc] @ a
        self.var = (((cvar - self.shared[:, :nc] ** 2) @ (a ** 2))
                    + self.shared_sum ** 2)
        self.flags = np.bitwise_or.reduce(p['flags'][:, :nc], axis=1)
        self.frame_ok = usable.all(axis=1) & (self.flux > 0)
        self.notes = []
        for k, ok in enumerate(self.frame_ok):
            bad = [comparisons[j] for j in range(nc) if not usable[k, j]]
            self.notes.append('' if ok else (
                f'comparison(s) {bad} unusable' if bad
                else 'ensemble flux <= 0'))


def _target_rows(p, frames, targets, ens):
    """Columns (lists) of the output, one entry per frame and target."""
    rows = {name: [] for name in ('frame', 'index', 'id', 'flux', 'flux_err',
                                  'ens', 'ens_err', 'rel', 'rel_err', 'corr',
                                  'flags', 'note')}
    nc = len(ens.coefficients)
    ens_err = np.sqrt(np.where(ens.var >= 0, ens.var, np.nan))
    for t_index, tid in enumerate(targets):
        j = nc + t_index
        ft, vt = p['flux'][:, j], p['var'][:, j]
        cov = ens.shared[:, j] * ens.shared_sum
        with np.errstate(divide='ignore', invalid='ignore'):
            rel = ft / ens.flux
            rel_var = (vt + rel ** 2 * ens.var - 2 * rel * cov) / ens.flux ** 2
        valid = ens.frame_ok & p['ok'][:, j] & np.isfinite(ft)
        rows['rel'].extend(np.where(valid, rel, np.nan))
        rows['rel_err'].extend(np.where(
            valid, np.sqrt(np.clip(rel_var, 0, None)), np.nan))
        rows['frame'].extend(frames)
        rows['index'].extend(range(len(frames)))
        rows['id'].extend([tid] * len(frames))
        rows['flux'].extend(ft)
        rows['flux_err'].extend(np.sqrt(np.where(vt >= 0, vt, np.nan)))
        rows['ens'].extend(ens.flux)
        rows['ens_err'].extend(ens_err)
        rows['corr'].extend(bool(c) for c in ens.correlated)
        rows['flags'].extend(int(f) for f in p['flags'][:, j] | ens.flags)
        rows['note'].extend(
            ens.notes[k] or ('' if valid[k] else 'target not measured')
            for k in range(len(frames)))
    return rows


def _table(rows, times, unit, n_comp):
    """The output QTable from the row lists."""
    scale = (lambda v: v * unit) if isinstance(unit, u.UnitBase) else (
        lambda v: v)
    out = QTable()
    out['frame'] = np.array(rows['frame'], dtype=str)
    if times is not None:
        out['time'] = times[rows['index']]
    out['id'] = np.array(rows['id'])
    out['flux'] = scale(np.array(rows['flux'], dtype=float))
    out['flux_err'] = scale(np.array(rows['flux_err'], dtype=float))
    out['ensemble_flux'] = scale(np.array(rows['ens'], dtype=float))
    out['ensemble_flux_err'] = scale(np.array(rows['ens_err'], dtype=float))
    rel = np.array(rows['rel'], dtype=float)
    rel_err = np.array(rows['rel_err'], dtype=float)
    out['rel_flux'] = rel
    out['rel_flux_err'] = rel_err
    with np.errstate(divide='ignore', invalid='ignore'):
        pos = rel > 0
        out['dmag'] = np.where(pos, -2.5 * np.log10(np.where(pos, rel, 1.0)),
                               np.nan)
        out['dmag_err'] = np.where(pos, _MAG * rel_err / np.where(
            pos, rel, 1.0), np.nan)
    out['n_comp'] = np.full(len(rel), n_comp)
    out['sky_correlated'] = np.array(rows['corr'], dtype=bool)
    out['flags'] = np.array(rows['flags'], dtype=np.int32)
    out['note'] = np.array(rows['note'], dtype=str)
    return out
