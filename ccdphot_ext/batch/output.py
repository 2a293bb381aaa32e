# Licensed under a 3-clause BSD style license - see LICENSE
"""
Input and output for batches of frames (internal; the public names are
re-exported by `ccdphot_ext.batch`): the time of a frame from its header,
provenance and resume, progress and warnings, and writing a table
atomically.
"""

import hashlib
import math
import os
import sys
import time
import warnings

import astropy.units as u
import numpy as np
from astropy.table import QTable
from astropy.time import Time
from astropy.utils.exceptions import AstropyUserWarning

from ..aperture.utils import all_positions, aperture_list

__all__ = ['frame_time']


def frame_time(header):
    """
    The time of a frame from its header, in UTC.

    Parameters
    ----------
    header : dict-like
        A FITS header (or ``NDData.meta``).

    Returns
    -------
    time : `~astropy.time.Time` or None
        None when the header has neither ``MJD-OBS`` nor ``DATE-OBS``.
    source : str
        The keyword used, or ``'missing'``.

    Raises
    ------
    ValueError
        If the keyword holds something that is not a time.

    Examples
    --------
    >>> from ccdphot_ext.batch.frames import frame_time
    >>> t, key = frame_time({'DATE-OBS': '2023-11-24T03:14:15'})
    >>> t.isot, key
    ('2023-11-24T03:14:15.000', 'DATE-OBS')
    >>> float(frame_time({"MJD-OBS": 60272.5})[0].mjd)
    60272.5
    """
    header = {} if header is None else header
    scale = str(header.get('TIMESYS', 'UTC')).strip().lower() or 'utc'
    if scale not in Time.SCALES:
        raise ValueError(f'TIMESYS={scale!r} is not a time scale')
    if 'MJD-OBS' in header:
        raw = header['MJD-OBS']
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f'MJD-OBS={raw!r} is not a number') from None
        if not math.isfinite(value):
            raise ValueError(f'MJD-OBS={raw!r} is not finite')
        return Time(value, format='mjd', scale=scale).utc, 'MJD-OBS'
    if 'DATE-OBS' in header:
        raw = str(header['DATE-OBS']).strip()
        if 'T' not in raw and 'TIME-OBS' in header:
            raw = f"{raw}T{str(header['TIME-OBS']).strip()}"
        try:
            return Time(raw, format='isot', scale=scale).utc, 'DATE-OBS'
        except ValueError:
            try:
                return Time(raw, scale=scale).utc, 'DATE-OBS'
            except ValueError:
                raise ValueError(f'DATE-OBS={raw!r} is not an ISO '
                                 'time') from None
    return None, 'missing'


# -- provenance and resume --------------------------------------------------

def _json_safe(value):
    """``value`` in plain JSON types (an angle Quantity in radians, other
    quantities by their value; anything else unknown by its repr)."""
    if isinstance(value, u.Quantity) and value.isscalar:
        return float(value.to_value(u.rad) if value.unit.physical_type
                     == 'angle' else value.value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _describe_apertures(apertures, ids):
    parts = []
    for ap in aperture_list(apertures):
        # every photutils aperture (BoxAperture included) names its shape
        # parameters in _params
        shape = {name: _json_safe(getattr(ap, name))
                 for name in ap._params if name != 'positions'}
        parts.append({'type': type(ap).__name__, **shape})
    digest = hashlib.sha1(np.round(all_positions(apertures), 6).tobytes()
                          + np.asarray(ids).astype(str).tobytes()).hexdigest()
    return {'apertures': parts, 'positions_sha1': digest}


def _parameters(config, ids, sky):
    if isinstance(sky, str):
        sky_text = sky
    elif hasattr(sky, '__name__'):
        sky_text = f'callable {sky.__module__}.{sky.__name__}'
    else:
        sky_text = repr(sky)
    params = {'sky': sky_text,
              'recenter': config.recenter,
              'recenter_kwargs': config.recenter_kwargs,
              'hdu': config.hdu,
              **config.photometer_kwargs}
    params['threshold'] = (None if params.get('threshold') is None
                           else repr(params['threshold']))
    params.update(_describe_apertures(config.apertures, ids))
    return _json_safe(params)


def _load_previous(resume_from, parameters):
    if isinstance(resume_from, QTable):
        old = resume_from
        label = 'the given table'
    else:
        path = os.fspath(resume_from)
        if not os.path.exists(path):
            raise ValueError(f'resume_from: {path} does not exist')
        label = path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                old = QTable.read(path, format='ascii.ecsv')
        except Exception as exc:  # astropy raises many kinds for bad files
            reason = ' '.join(str(exc).split())[:200] or type(exc).__name__
            raise ValueError(f'resume_from: cannot read {path} as a light-'
                             f'curve table ({reason}); move it away or write '
                             'to a new output') from None
    if 'status' not in old.colnames or 'frame' not in old.colnames:
        raise ValueError(f'resume_from: {label} is not a photometer_frames '
                         'table (no frame/status columns)')
    before = old.meta.get('parameters')
    if before is not None and _json_safe(before) != parameters:
        diff = sorted(k for k in set(before) | set(parameters)
                      if _json_safe(before.get(k)) != parameters.get(k))
        raise ValueError(f'resume_from: {label} was measured with other '
                         f'parameters ({", ".join(diff)}); start a new file')
    return old


# -- reporting ---------------------------------------------------------------

class _Progress:
    """A plain progress counter on stderr (a line per ~10%)."""

    def __init__(self, total, enabled):
        self.total, self.enabled = total, enabled
        self.done = self.failed = 0
        self._next = 0.1
        self._start = time.perf_counter()

    def update(self, result):
        self.done += 1
        self.failed += result['status'] == 'failed'
        if not self.enabled:
            return
        frac = self.done / self.total
        if frac >= self._next or self.done == self.total:
            while self._next <= frac:
                self._next += 0.1
            rate = self.done / max(time.perf_counter() - self._start, 1e-9)
            print(f'ccdphot batch: {self.done}/{self.total} frames '
                  f'({self.failed} failed, {rate:.2f} frames/s)',
                  file=sys.stderr, flush=True)


def _relay_warnings(names, results):
    """Re-issue the frames' warnings here, one per distinct message."""
    by_text = {}
    for name, res in zip(names, results, strict=True):
        for text in res['warnings']:
            by_text.setdefault(text, []).append(name)
    for text, where in by_text.items():
        shown = ', '.join(where[:3]) + (', ...' if len(where) > 3 else '')
        label = where[0] if len(where) == 1 else f'{len(where)} frames ({shown})'
        warnings.warn(f'{label}: {text}', AstropyUserWarning, stacklevel=3)
