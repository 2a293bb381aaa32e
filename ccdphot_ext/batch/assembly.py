# Licensed under a 3-clause BSD style license - see LICENSE
"""
Assembling a batch's results (internal): one light-curve table from the
frames' results and a previous table being resumed, in time order, with
provenance in ``meta``.
"""

import os
import warnings

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.nddata import NDData
from astropy.table import QTable, vstack
from astropy.time import Time
from astropy.utils.exceptions import AstropyUserWarning

from ..aperture.utils import all_positions
from ..utils.columns import unit_power
from ..utils.provenance import versions
from .worker import _STATUS_FAILED, _STATUS_OK, _failed

__all__ = []

_UNSET = object()


def _frame_name(frame, i):
    if isinstance(frame, NDData):
        return str((frame.meta or {}).get('FILENAME', f'frame{i}'))
    return os.fspath(frame)


def _frame_key(name):
    return os.path.abspath(name)


def _harmonise_units(results, names, unit=_UNSET):
    """Convert every frame to ``unit`` (default: the first frame's)."""
    import astropy.units as u

    if unit is _UNSET:
        unit = next((r['unit'] for r in results
                     if r['status'] == _STATUS_OK), None)
    target = None if unit is None else u.Unit(unit)
    for name, res in zip(names, results, strict=True):
        if res['status'] != _STATUS_OK or res['unit'] == unit:
            continue
        this = None if res['unit'] is None else u.Unit(res['unit'])
        try:
            if this is None or target is None:
                raise u.UnitConversionError('no unit')
            scale = this.to(target)
        except u.UnitConversionError:
            res.update(_failed(f'UnitsError: data unit {res["unit"]} differs '
                               f'from {unit} of the other frames'))
            warnings.warn(f'{name}: frame unit {res["unit"]} differs from '
                          f'{unit}', AstropyUserWarning, stacklevel=3)
            continue
        for col in res['columns']:
            power = unit_power(col)
            if power:
                res['columns'][col] = res['columns'][col] * scale ** power
        res['unit'] = unit
    return target


def _blank(name, n):
    """A measured-nothing block: flags 0, NaN values (NaN sky positions)."""
    if name == 'flags':
        return np.zeros(n, dtype=np.int32)
    return np.full((n, 2) if name == 'sky_centroid' else n, np.nan)


def _checked_columns(names, results, n):
    """
    The union of the measured frames' columns, in order of appearance.

    Frames may differ in their columns (``sky_centroid`` only with a
    celestial WCS); a frame whose columns do not have one row per aperture
    becomes a failed frame rather than stopping the run.
    """
    colnames = []
    for name, res in zip(names, results, strict=True):
        cols = res['columns']
        if res['status'] != _STATUS_OK or cols is None:
            continue
        wrong = [c for c, v in cols.items() if len(v) != n]
        if wrong:
            res.update(_failed(f'ValueError: columns {", ".join(wrong)} do '
                               f'not have one row per aperture ({n})'),
                       time=res['time'])
            warnings.warn(f'{name}: frame failed: {res["error"]}',
                          AstropyUserWarning, stacklevel=3)
            continue
        colnames += [c for c in cols if c not in colnames]
    return colnames


def _assemble(names, results, config, ids, unit=_UNSET):
    import astropy.units as u

    unit = _harmonise_units(results, names, unit)
    n = config.n_rows
    colnames = _checked_columns(names, results, n) or list(config.columns)
    nominal = all_positions(config.apertures)
    blocks = {c: [] for c in colnames}
    frame_col, jd1, jd2, status, error, note, exptime = ([] for _ in range(7))
    xnom, ynom = [], []
    for name, res in zip(names, results, strict=True):
        cols = res['columns'] or {'x_center': nominal[:, 0],
                                  'y_center': nominal[:, 1]}
        for c in colnames:
            blocks[c].append(cols[c] if c in cols else _blank(c, n))
        t = res['time']
        jd1.append(np.full(n, np.nan if t is None else t[0]))
        jd2.append(np.full(n, np.nan if t is None else t[1]))
        frame_col += [name] * n
        status += [res['status']] * n
        error += [res['error']] * n
        note += ['; '.join(res['notes'])] * n
        exptime.append(np.full(n, res['exptime']))
        pos = res['positions'] if res['positions'] is not None else nominal
        xnom.append(pos[:, 0])
        ynom.append(pos[:, 1])

    table = QTable()
    table['frame'] = np.array(frame_col, dtype=str)
    jd1, jd2 = np.concatenate(jd1), np.concatenate(jd2)
    missing = ~np.isfinite(jd1)
    times = Time(np.where(missing, 2451545.0, jd1),
                 np.where(missing, 0.0, jd2), format='jd', scale='utc')
    times.format = 'isot'
    times.precision = 6
    if missing.any():
        times[missing] = np.ma.masked
    table['time'] = times
    table['id'] = np.tile(np.asarray(ids), len(names))
    if config.recenter is not None:
        table['x_nominal'] = np.concatenate(xnom)
        table['y_nominal'] = np.concatenate(ynom)
    for c in colnames:
        if c == 'id':
            continue
        value = np.concatenate(blocks[c])
        if c == 'sky_centroid':
            value = SkyCoord(value[:, 0] * u.deg, value[:, 1] * u.deg,
                             frame='icrs')
        elif unit is not None and unit_power(c):
            value = value * unit ** unit_power(c)
        table[c] = value
    table['exptime'] = np.concatenate(exptime) * u.s
    table['status'] = np.array(status, dtype=str)
    table['error'] = np.array(error, dtype=str)
    table['note'] = np.array(note, dtype=str)
    return table


def _finish_meta(table, parameters, seconds, mode, n_measured, complete):
    failed = table['status'] == _STATUS_FAILED
    failures = {}
    for name, err in zip(table['frame'][failed], table['error'][failed],
                         strict=True):
        failures.setdefault(str(name), str(err))
    table.meta.clear()
    table.meta.update({
        'versions': versions(),
        'parameters': parameters,
        'n_frames': len(set(table['frame'])),
        'n_failed': len(failures),
        'failures': [{'frame': k, 'error': v} for k, v in failures.items()],
        'last_run': {'execution': mode, 'frames_measured': n_measured,
                     'complete': complete, 'seconds': round(seconds, 3)},
        'time_note': 'header time (MJD-OBS, else DATE-OBS) in UTC',
    })
    return table


def _time_order(table):
    """Rows in order of frame time (stable; frames without a time last)."""
    if len(table) < 2:
        return table
    times = table['time']
    jd = np.asarray(np.ma.filled(times.jd1, np.nan), dtype=float) + \
        np.asarray(np.ma.filled(times.jd2, np.nan), dtype=float)
    masked = np.broadcast_to(np.asarray(getattr(times, 'mask', False)),
                             jd.shape)
    key = np.where(masked | ~np.isfinite(jd), np.inf, jd)
    order = np.argsort(key, kind='stable')
    if np.all(order[1:] > order[:-1]):
        return table
    return table[order]


def _split_previous(old, names, todo):
    """
    What a previous table still holds: (frames still to measure, its
    successful rows, its failed frames not measured again as results).

    Only valid content is kept: a failed frame carries no numbers (an
    all-failed table has no units to impose), only its name, time and
    reason; it is measured again when it is in ``names``.
    """
    keys = [_frame_key(str(n)) for n in old['frame']]
    ok = np.asarray(old['status']) == _STATUS_OK
    done = {k for k, good in zip(keys, ok, strict=True) if good}
    todo = [i for i in todo if _frame_key(names[i]) not in done]
    rerun = {_frame_key(names[i]) for i in todo}
    kept = [not good and k not in rerun
            for k, good in zip(keys, ok, strict=True)]
    failed_names, failed = [], []
    for row in old[np.array(kept, dtype=bool)]:
        if failed_names and failed_names[-1] == str(row['frame']):
            continue  # one result per frame (its rows are consecutive)
        res = _failed(str(row['error']))
        note = str(row['note']) if 'note' in old.colnames else ''
        res['notes'] = [note] if note else []
        if not np.any(getattr(row['time'], 'mask', False)):
            res['time'] = (float(row['time'].jd1), float(row['time'].jd2))
        failed_names.append(str(row['frame']))
        failed.append(res)
    return todo, old[ok], (failed_names, failed)


def _previous_unit(old_ok):
    """The data unit of a previous table's successful rows (or unset)."""
    if old_ok is None or not len(old_ok) or 'aperture_sum' not in (
            old_ok.colnames):
        return _UNSET
    unit = getattr(old_ok['aperture_sum'], 'unit', None)
    return None if unit is None else unit.to_string()


def _combine(old_ok, names, results, config, ids, unit):
    """The previous successful rows and the new results, in time order."""
    if not names:
        return old_ok if old_ok is not None else QTable()
    table = _assemble(names, results, config, ids, unit)
    if old_ok is not None and len(old_ok):
        table = vstack([old_ok, table], join_type='exact',
                       metadata_conflicts='silent')
    return _time_order(table)
