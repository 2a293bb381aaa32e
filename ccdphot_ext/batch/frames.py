# Licensed under a 3-clause BSD style license - see LICENSE
"""
Light curves: the same apertures measured on many frames, serially or on a
Dask cluster.

`photometer_frames` reads each frame (a FITS path, or an in-memory
`~astropy.nddata.NDData`), estimates that frame's sky, optionally re-centres
every aperture on that frame (`recenter_positions`), runs `photometer` and
stacks the rows into one `~astropy.table.QTable` with the frame, the time of
the frame, the star ``id`` and every photometry column.

Faults never stop a run: a frame that cannot be read or measured gives rows
with ``status == 'failed'`` and the reason in ``error``, an entry in
``meta['failures']`` and one `~astropy.utils.exceptions.AstropyUserWarning`.
`~ccdphot_ext.utils.write_table_atomic` writes through a temporary file
and `os.replace`, so an interrupted write leaves the old file or the
complete new one, never half of one.

Time of a frame
    ``MJD-OBS`` if present, else ``DATE-OBS`` (ISO; a date-only
    ``DATE-OBS`` is completed by ``TIME-OBS``), in the scale named by
    ``TIMESYS`` (default UTC) and returned in UTC. It is the header's time
    (for most instruments the *start* of the exposure; the ``exptime``
    column lets you move to mid-exposure). A frame without either keyword
    gets a masked time, a warning and a ``note``.
"""

import math
import os
import time as _time
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import NDData
from astropy.table import QTable, vstack
from astropy.time import Time
from astropy.utils.decorators import deprecated_renamed_argument
from astropy.utils.exceptions import AstropyUserWarning

from ..aperture.utils import all_positions, split_apertures, with_positions
from ..background.sky import SKY_METHODS, SkyEstimate
from ..background.threshold import SigmaThreshold
from ..detection.recenter import RECENTER_METHODS, recenter_positions
from ..io.fits import _frame_size, read_frame
from ..io.header import detector_parameters
from ..photometry.general import OVERLAP_METHODS
from ..photometry.table import PHOTOMETRY_COLUMNS, photometer
from ..photometry.terms import UNCERTAINTY_MODELS
from ..utils.columns import unit_power
from ..utils.files import write_table_atomic
from ..utils.inputs import positive_scalar
from ..utils.provenance import versions
from .output import (
    _load_previous,
    _parameters,
    _Progress,
    _relay_warnings,
    frame_time,
)

__all__ = ['photometer_frames', 'AnnulusSky', 'frame_time']

_STATUS_OK, _STATUS_FAILED = 'ok', 'failed'
_UNSET = object()


# ----------------------------------------------------------- one frame ---

@dataclass(frozen=True)
class _Config:
    """Everything a worker needs, besides the frame (picklable)."""

    apertures: object
    sky: object
    recenter: str | None
    recenter_kwargs: dict
    photometer_kwargs: dict
    hdu: object = None
    n_rows: int = 0
    columns: tuple = field(default=PHOTOMETRY_COLUMNS)


class AnnulusSky:
    """
    A local sky for `photometer_frames`: one circular annulus per aperture.

    Called as ``sky(ccd, apertures)`` on every frame, it measures
    `SkyEstimate.from_annulus` in annuli of radii ``r_in``, ``r_out``
    centred on the apertures (after re-centring, when that is on).

    Parameters
    ----------
    r_in, r_out : float
        Inner and outer radii in pixels (``r_out > r_in >= 0``).
    method : {'sigma_clip', 'mean', 'median'}, optional
        The estimator in each annulus.

    Examples
    --------
    >>> from ccdphot_ext.batch.frames import AnnulusSky
    >>> AnnulusSky(8, 14)
    AnnulusSky(r_in=8.0, r_out=14.0, method='sigma_clip')
    """

    def __init__(self, r_in, r_out, *, method='sigma_clip'):
        self.r_in = positive_scalar(r_in, 'r_in', allow_none=False,
                                    allow_zero=True)
        self.r_out = positive_scalar(r_out, 'r_out', allow_none=False)
        if self.r_out <= self.r_in:
            raise ValueError(f'r_out ({self.r_out}) must exceed r_in '
                             f'({self.r_in})')
        if method not in SKY_METHODS:
            raise ValueError(f'method must be one of {SKY_METHODS}, got '
                             f'{method!r}')
        self.method = method

    def __call__(self, ccd, apertures):
        from photutils.aperture import CircularAnnulus
        annulus = CircularAnnulus(all_positions(apertures), self.r_in,
                                  self.r_out)
        return SkyEstimate.from_annulus(ccd, annulus, method=self.method,
                                        exclude=apertures)

    def __repr__(self):
        return (f'AnnulusSky(r_in={self.r_in}, r_out={self.r_out}, '
                f'method={self.method!r})')


def _make_sky(spec, ccd, apertures):
    if callable(spec):
        sky = spec(ccd, apertures)
        if not isinstance(sky, SkyEstimate):
            raise TypeError('the sky callable must return a SkyEstimate, '
                            f'got {type(sky).__name__}')
        return sky
    return SkyEstimate.from_image(ccd, method=spec)


def _measure_frame(frame, config):
    """Measure one frame; never raises (failures are returned)."""
    out = {'status': _STATUS_OK, 'error': '', 'notes': [], 'time': None,
           'columns': None, 'unit': None, 'exptime': math.nan,
           'positions': None, 'warnings': []}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        try:
            ccd = frame if isinstance(frame, NDData) else read_frame(
                frame, hdu=config.hdu)
            out['time'] = _header_time(ccd, frame, out['notes'])
            apertures = config.apertures
            sky = _make_sky(config.sky, ccd, apertures)
            if config.recenter is not None:
                nominal = all_positions(apertures)
                new, ok = recenter_positions(ccd, nominal, sky,
                                             method=config.recenter,
                                             **config.recenter_kwargs)
                apertures = with_positions(apertures, new)
                out['positions'] = nominal
                if not ok.all():
                    out['notes'].append(f'{int((~ok).sum())} aperture(s) '
                                        'not re-centred (kept nominal)')
                if callable(config.sky):
                    sky = _make_sky(config.sky, ccd, apertures)
            table = photometer(ccd, apertures, sky,
                               **config.photometer_kwargs)
            unit = table['aperture_sum'].unit if hasattr(
                table['aperture_sum'], 'unit') else None
            out['unit'] = None if unit is None else unit.to_string()
            out['columns'] = _plain_columns(table)
            exptime = table.meta.get('exptime')
            out['exptime'] = math.nan if exptime is None else float(exptime)
        except MemoryError:
            out['status'] = _STATUS_FAILED
            out['error'] = _out_of_memory(frame, config.hdu)
        except Exception as exc:  # one bad frame never stops the run
            out['status'] = _STATUS_FAILED
            text = ' '.join(str(exc).split())
            out['error'] = f'{type(exc).__name__}: {text}'
    out['warnings'] = list(dict.fromkeys(
        str(w.message) for w in caught
        if issubclass(w.category, (UserWarning, RuntimeWarning))))
    return out


def _plain_columns(table):
    """Columns as plain arrays; a sky position as (n, 2) ICRS degrees."""
    columns = {}
    for name in table.colnames:
        col = table[name]
        if isinstance(col, SkyCoord):
            icrs = col.icrs
            columns[name] = np.column_stack([icrs.ra.deg, icrs.dec.deg])
        else:
            columns[name] = np.asarray(getattr(col, 'value', col))
    return columns


def _out_of_memory(frame, hdu):
    if isinstance(frame, NDData):
        size = f'{np.asarray(frame.data).nbytes / 2**20:.1f} MiB of data'
    else:
        size = _frame_size(frame, hdu=hdu) or 'size unknown'
    return f'MemoryError: out of memory measuring this frame ({size})'


def _header_time(ccd, frame, notes):
    """(jd1, jd2) of the frame, or None with a note and a warning."""
    try:
        t, _ = frame_time(ccd.meta)
        if t is None and not isinstance(frame, NDData):
            # multi-extension files often keep the time in the primary
            t, _ = frame_time(fits.getheader(frame, 0))
        problem = 'no MJD-OBS or DATE-OBS'
    except ValueError as exc:  # a bad time never loses the photometry
        t, problem = None, f'unreadable time ({exc})'
    if t is None:
        notes.append(f'{problem}: time masked')
        warnings.warn(f'{problem} in the header; time masked',
                      AstropyUserWarning, stacklevel=3)
        return None
    return float(t.jd1), float(t.jd2)


def _failed(message):
    return {'status': _STATUS_FAILED, 'error': message, 'notes': [],
            'time': None, 'columns': None, 'unit': None,
            'exptime': math.nan, 'positions': None, 'warnings': []}


# ------------------------------------------------------------ running ---

def _run_serial(frames, config, record):
    for k, frame in enumerate(frames):
        record(k, _measure_frame(frame, config))


def _run_dask(client, frames, config, record):
    from distributed import as_completed

    [config_future] = client.scatter([config], broadcast=True)
    shipped = [f if not isinstance(f, NDData) else client.scatter(f)
               for f in frames]
    futures = [client.submit(_measure_frame, f, config_future, pure=False)
               for f in shipped]
    index = {fut.key: k for k, fut in enumerate(futures)}
    try:
        for fut in as_completed(futures):
            try:
                res = fut.result()
            except Exception as exc:  # a worker died or the task was lost
                res = _failed(f'{type(exc).__name__}: {exc}')
            record(index[fut.key], res)
            fut.release()
    finally:
        client.cancel(futures)


def _open_client(client, workers, scheduler):
    """Return (client, cleanup callables) for the requested execution."""
    given = [name for name, v in (('client', client), ('workers', workers),
                                  ('scheduler', scheduler)) if v is not None]
    if len(given) > 1:
        raise ValueError(f'give at most one of client, workers and scheduler '
                         f'(got {", ".join(given)})')
    if client is not None:
        return client, []
    if workers is None and scheduler is None:
        return None, []
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ImportError('workers= and scheduler= need Dask: pip install '
                          '"ccdphot_ext[distributed]"') from exc
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler:
            raise TypeError('scheduler must be an address such as '
                            f"'tcp://host:8786', got {scheduler!r}")
        new = Client(scheduler)
        return new, [new.close]
    if isinstance(workers, (bool, np.bool_)) or not isinstance(
            workers, (int, np.integer)) or workers < 1:
        raise ValueError(f'workers must be a positive integer, got {workers!r}')
    import dask

    # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off
    # glibc's adaptive mmap threshold: every frame-sized temporary is then
    # a fresh mmap, and a worker spends twice the CPU of a serial run
    # (page faults). Not for the clusters we start (see the docs, "Performance:
    # batches of frames").
    with dask.config.set({'distributed.nanny.pre-spawn-environ.'
                          'MALLOC_TRIM_THRESHOLD_': None}):
        cluster = LocalCluster(n_workers=int(workers), processes=True,
                               threads_per_worker=1, dashboard_address=':0')
    new = Client(cluster)
    return new, [new.close, cluster.close]


# ------------------------------------------------------------ assembly ---

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
                               f'not have one row per aperture ({n})'))
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


# ---------------------------------------------------------------- API ---

@deprecated_renamed_argument('recenter_nsigma', 'recenter_n_sigma', '0.1')
def photometer_frames(frames, apertures, *, sky='sigma_clip', ids=None,
                      client=None, workers=None, scheduler=None,
                      recenter=False, recenter_box=11, recenter_n_sigma=2.0,
                      max_shift=None, resume_from=None, output=None,
                      checkpoint_interval=60.0, progress=None, hdu=None,
                      **photometer_kwargs):
    """
    Photometry of the same apertures on many frames: one light-curve table.

    Parameters
    ----------
    frames : sequence of str, path-like or `~astropy.nddata.NDData`
        FITS paths (read on the workers with `~ccdphot_ext.io.fits.read_frame`:
        only paths travel, with their uncertainty and mask extensions) or
        in-memory frames.
    apertures : `BoxAperture`, `~photutils.aperture.PixelAperture` or list
        The nominal apertures, as for `photometer`.
    sky : {'sigma_clip', 'mean', 'median'}, `AnnulusSky` or callable, optional
        A whole-frame `SkyEstimate.from_image` method, measured on each
        frame; an `AnnulusSky` (local annuli around each aperture); or any
        ``sky(ccd, apertures) -> SkyEstimate`` (a module-level function,
        so that it can travel to Dask workers).
    ids : sequence of int, optional
        Star ids, one per position; default 1..N.
    client : `distributed.Client`, optional
        Run on this Dask client.
    workers : int, optional
        Start a `distributed.LocalCluster` with this many single-threaded
        worker processes for this call (closed afterwards).
    scheduler : str, optional
        Address of a running Dask scheduler (``'tcp://host:8786'``).
        Without ``client``, ``workers`` or ``scheduler`` the frames are
        measured serially in this process (no Dask import).
    recenter : bool or {'com', '2dg'}, optional
        Re-centre every aperture on each frame with `recenter_positions`
        (True means ``'com'``); the nominal positions are kept in
        ``x_nominal`` and ``y_nominal``.
    recenter_box, recenter_n_sigma, max_shift : optional
        ``box_size``, ``n_sigma`` and ``max_shift`` of
        `recenter_positions` (``recenter_nsigma`` is the deprecated name of
        ``recenter_n_sigma``).
    resume_from : str, path-like or `~astropy.table.QTable`, optional
        A previous output (same parameters): its successful frames are kept
        and not measured again; its failed frames are retried.
    output : str or path-like, optional
        Also write the table here (ECSV, with
        `~ccdphot_ext.utils.write_table_atomic`), every
        ``checkpoint_interval`` seconds while running, on an interrupt
        (Ctrl-C) and at the end, so that an interrupted run can be resumed.
    checkpoint_interval : float, optional
        Seconds between checkpoints of ``output`` (default 60).
    progress : bool, optional
        Print a progress line on stderr every ~10% (default: when there are
        more than 20 frames to measure).
    hdu : int or str, optional
        The FITS HDU of the image (default the first with data).
    **photometer_kwargs
        ``gain``, ``threshold``, ``saturation``, ``method``, ``subpixels``,
        ``read_noise``, ``uncertainty_model``, ``include_sky_mean``,
        ``exptime`` and ``zeropoint``, passed to `photometer` for every
        frame (header values are read per frame when not given).

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per frame and position: ``frame``, ``time`` (`~astropy.time.Time`,
        UTC, masked when the header has no time), ``id``, (``x_nominal``,
        ``y_nominal``), every `photometer` column, ``exptime``, ``status``
        (``'ok'`` or ``'failed'``), ``error`` and ``note``. ``meta`` holds
        versions, parameters, ``failures`` and run statistics.

    Warns
    -----
    `~astropy.utils.exceptions.AstropyUserWarning`
        One per failed frame, and each frame's own warnings prefixed by its
        name.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import NDData
    >>> from ccdphot_ext import BoxAperture
    >>> from ccdphot_ext.batch.frames import photometer_frames
    >>> rng = np.random.default_rng(0)
    >>> frames = []
    >>> for k in range(3):
    ...     img = rng.normal(100.0, 3.0, (40, 40))
    ...     img[18:21, 18:21] += 200.0 * (k + 1)
    ...     frames.append(NDData(img, meta={'MJD-OBS': 60000.0 + k,
    ...                                     'FILENAME': f'f{k}.fits'}))
    >>> lc = photometer_frames(frames, BoxAperture((19, 19), 9, 9),
    ...                        gain=2.0)
    >>> lc['frame'].tolist(), lc['status'].tolist()
    (['f0.fits', 'f1.fits', 'f2.fits'], ['ok', 'ok', 'ok'])
    >>> np.round(lc['aperture_sum'] / 1800.0).tolist()
    [1.0, 2.0, 3.0]
    """
    if isinstance(frames, (str, os.PathLike, NDData)):
        frames = [frames]
    frames = list(frames)
    if not frames:
        raise ValueError('frames is empty')
    for f in frames:
        if not isinstance(f, (str, os.PathLike, NDData)):
            raise TypeError('frames must be FITS paths or NDData objects, got '
                            f'{type(f).__name__}')
    pairs = split_apertures(apertures)
    if isinstance(apertures, tuple):
        apertures = list(apertures)
    if not (callable(sky) or sky in SKY_METHODS):
        raise ValueError(f'sky must be one of {SKY_METHODS} or a callable '
                         f'sky(ccd, apertures), got {sky!r}')
    ids = np.arange(1, len(pairs) + 1) if ids is None else np.asarray(ids)
    if ids.shape != (len(pairs),):
        raise ValueError(f'ids has shape {ids.shape}; give one id per '
                         f'aperture position ({len(pairs)})')
    if len(set(ids.tolist())) != len(ids):
        raise ValueError('ids must be unique')
    if recenter is True:
        recenter = 'com'
    if recenter is False or recenter is None:
        recenter = None
    elif recenter not in RECENTER_METHODS:
        raise ValueError(f'recenter must be True, False or one of '
                         f'{RECENTER_METHODS}, got {recenter!r}')
    recenter_kwargs = {}
    if recenter is not None:
        recenter_kwargs = {'box_size': recenter_box,
                           'n_sigma': recenter_n_sigma,
                           'max_shift': max_shift}
        # validate now, not once per frame on the workers
        recenter_positions(np.zeros((3, 3)), np.empty((0, 2)),
                           SkyEstimate(0.0, 1.0, 1), method=recenter,
                           **recenter_kwargs)
    allowed = {'gain', 'threshold', 'saturation', 'method', 'subpixels',
               'read_noise', 'uncertainty_model', 'include_sky_mean',
               'exptime', 'zeropoint'}
    unknown = sorted(set(photometer_kwargs) - allowed)
    if unknown:
        raise TypeError(f'photometer_frames got unexpected keyword(s) '
                        f'{", ".join(unknown)}')
    _validate_photometer_kwargs(photometer_kwargs)
    checkpoint_interval = positive_scalar(checkpoint_interval,
                                          'checkpoint_interval',
                                          allow_none=False)
    if progress is not None and not isinstance(progress, (bool, np.bool_)):
        raise TypeError(f'progress must be True, False or None, got '
                        f'{progress!r}')

    config = _Config(apertures=apertures, sky=sky, recenter=recenter,
                     recenter_kwargs=recenter_kwargs,
                     photometer_kwargs=dict(photometer_kwargs), hdu=hdu,
                     n_rows=len(pairs))
    parameters = _parameters(config, ids, sky)
    names = [_frame_name(f, i) for i, f in enumerate(frames)]

    old = None
    todo = list(range(len(frames)))
    if resume_from is not None:
        old = _load_previous(resume_from, parameters)
        done = {_frame_key(str(name)) for name, st in
                zip(old['frame'], old['status'], strict=True)
                if st == _STATUS_OK}
        todo = [i for i in todo if _frame_key(names[i]) not in done]
        rerun = {_frame_key(names[i]) for i in todo}
        keep = np.array([not (st != _STATUS_OK and _frame_key(str(n)) in rerun)
                         for n, st in zip(old['frame'], old['status'],
                                          strict=True)], dtype=bool)
        old = old[keep]

    todo_names = [names[i] for i in todo]
    # paths travel absolute: a worker's working directory may differ
    todo_frames = [frames[i] if isinstance(frames[i], NDData)
                   else os.path.abspath(frames[i]) for i in todo]
    old_unit = _UNSET
    if old is not None and len(old) and 'aperture_sum' in old.colnames:
        old_unit = getattr(old['aperture_sum'], 'unit', None)
        old_unit = None if old_unit is None else old_unit.to_string()
    results = [None] * len(todo)
    start = _time.perf_counter()

    def build(complete):
        done = [k for k, r in enumerate(results) if r is not None]
        if not done and old is not None:
            return _finish_meta(old, parameters, _time.perf_counter() - start,
                                mode, 0, complete)
        table = _assemble([todo_names[k] for k in done],
                          [results[k] for k in done], config, ids, old_unit)
        if old is not None and len(old):
            table = vstack([old, table], join_type='exact',
                           metadata_conflicts='silent') if len(table) else old
        return _finish_meta(table, parameters, _time.perf_counter() - start,
                            mode, len(done), complete)

    show = len(todo) > 20 if progress is None else bool(progress)
    counter = _Progress(len(todo), show and len(todo) > 0)
    next_save = start + checkpoint_interval

    def record(k, res):
        nonlocal next_save
        results[k] = res
        counter.update(res)
        if res['status'] == _STATUS_FAILED:
            warnings.warn(f'{todo_names[k]}: frame failed: {res["error"]}',
                          AstropyUserWarning, stacklevel=2)
        if output is not None and _time.perf_counter() >= next_save:
            write_table_atomic(build(False), output)
            next_save = _time.perf_counter() + checkpoint_interval

    run_client, cleanup = _open_client(client, workers, scheduler)
    mode = 'serial' if run_client is None else 'dask'
    try:
        if run_client is None:
            _run_serial(todo_frames, config, record)
        elif todo_frames:
            _run_dask(run_client, todo_frames, config, record)
    except KeyboardInterrupt:
        # keep what is done: a complete file of the measured frames
        if output is not None and any(r is not None for r in results):
            write_table_atomic(build(False), output)
        raise
    finally:
        for close in cleanup:
            close()
    _relay_warnings(todo_names, results)
    table = build(True)
    if output is not None:
        write_table_atomic(table, output)
    return table


def _validate_photometer_kwargs(kwargs):
    """Fail early on the client, naming the parameter."""
    detector_parameters(None, **{k: kwargs[k] for k in
                                 ('gain', 'read_noise', 'exptime',
                                  'saturation') if kwargs.get(k) is not None})
    threshold = kwargs.get('threshold')
    if threshold is not None and not isinstance(threshold, SigmaThreshold):
        raise TypeError('threshold must be a SigmaThreshold or None, got '
                        f'{type(threshold).__name__}')
    if kwargs.get('method', 'exact') not in OVERLAP_METHODS:
        raise ValueError(f'method must be one of {OVERLAP_METHODS}, '
                         f"got {kwargs['method']!r}")
    if kwargs.get('uncertainty_model', 'background') not in UNCERTAINTY_MODELS:
        raise ValueError(f'uncertainty_model must be one of '
                         f"{UNCERTAINTY_MODELS}, got "
                         f"{kwargs['uncertainty_model']!r}")
    zp = kwargs.get('zeropoint')
    if zp is not None and not (isinstance(zp, (int, float, np.number))
                               and math.isfinite(zp)):
        raise ValueError(f'zeropoint must be a finite number, got {zp!r}')


