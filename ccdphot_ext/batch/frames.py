# Licensed under a 3-clause BSD style license - see LICENSE
"""
Light curves: the same apertures measured on many frames, serially or on a
Dask cluster.

`photometer_frames` reads each frame (a FITS path, or an in-memory
`~astropy.nddata.NDData`), estimates that frame's sky, optionally re-centres
every aperture on that frame (`~ccdphot_ext.detection.Recentering`), runs
`photometer` and stacks the rows into one `~astropy.table.QTable` with the
frame, the time of the frame, the star ``id`` and every photometry column.

Faults never stop a run: a frame that cannot be read or measured gives rows
with ``status == 'failed'`` and the reason in ``error``, an entry in
``meta['failures']`` and one `~astropy.utils.exceptions.AstropyUserWarning`.
The output is written atomically
(`~ccdphot_ext.utils.write_table_atomic`), under a lock
that keeps a second run from writing the same file (`output_lock`), and
checkpointed, also on Ctrl-C and ``SIGTERM``, so that a stopped run resumes
where it stopped. On Dask each task carries what it needs; a worker that
dies costs at most a retry of its frames.

The run lives here: every argument checked before the first frame, the
frames a resumed table already holds, checkpoints on a timer and on an
interrupt, and the assembly of the table (units made one, rows in time
order, provenance in ``meta``). One frame's measurement is in
`ccdphot_ext.batch.worker`, where the frames run (here or on Dask) in
`ccdphot_ext.batch.execution`, and the output lock in
`ccdphot_ext.batch.lock`.
"""

import os
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, replace

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.nddata import NDData
from astropy.table import QTable, vstack
from astropy.time import Time
from astropy.utils.exceptions import AstropyUserWarning

from ..background.methods import SKY_METHODS
from ..io.fitsfile import hdu_problem, image_shape
from ..io.header import detector_with_gain
from ..io.positions import inexact_ids
from ..photometry.terms import BudgetOptions
from ..utils.columns import unit_power
from ..utils.ecsv import LineCache
from ..utils.files import check_output, table_format, write_table_atomic
from ..utils.numbers import (
    check_bool,
    check_choice,
    check_options,
    finite_number,
)
from ..utils.provenance import versions
from .execution import (
    BatchExecution,
    connect_error,
    open_client,
    run_dask,
    run_serial,
)
from .layout import ApertureLayout
from .lock import output_lock
from .reading import FrameReading
from .resume import Resumed, frame_identity, load_previous
from .worker import (
    STATUS_FAILED,
    STATUS_OK,
    AnnulusSky,
    FrameConfig,
    FrameResult,
    plausible_jd,
)

__all__ = ['photometer_frames', 'FramesNotMeasuredWarning']


class FramesNotMeasuredWarning(AstropyUserWarning):
    """
    Frames a batch could not measure at all, with the one reason (the Dask
    scheduler died, no worker was left): one warning for them all. Their
    rows are in the table with ``status == 'failed'`` and that reason; the
    frames measured before are kept, and ``resume_from`` measures the rest.
    """

#: no unit decided yet (the first measured frame's unit is the run's)
_UNSET = object()


def photometer_frames(frames, apertures, *, sky='sigma_clip', ids=None,
                      gain=None, threshold=None, detector=None, budget=None,
                      zeropoint=None, recenter=None, reading=None,
                      output=None, resume_from=None, execution=None,
                      flux_unit=None, sky_without_apertures=True):
    """
    Measure the same apertures on many frames: one light-curve table.

    Each frame is read, its sky measured and its apertures measured with
    `~ccdphot_ext.photometer`; a frame that fails is listed in the table
    with its reason and never stops the run.

    Parameters
    ----------
    frames : sequence of str, path-like or `~astropy.nddata.NDData`
        FITS paths (read with `~ccdphot_ext.read_frame`) or NDData frames,
        each listed once (a single path or frame is one frame).
    apertures : `~ccdphot_ext.BoxAperture`, `~photutils.aperture.PixelAperture` or list
        The nominal apertures, one row per position on every frame, as for
        `~ccdphot_ext.photometer`.
    sky : {'sigma_clip', 'mean', 'median'}, `AnnulusSky` or callable, optional
        The sky of each frame: a `SkyEstimate.from_image
        <ccdphot_ext.SkyEstimate.from_image>` method measured on the whole
        frame with the frame's gain (below; default ``'sigma_clip'``),
        local annuli (`AnnulusSky`, with the same gain), or a
        module-level function ``sky(ccd, apertures) -> SkyEstimate`` (so
        that Dask workers can run it).
    ids : sequence of int or str, optional
        The star ids, one per aperture position, unique; None (default):
        1 to N.
    gain : float or `~astropy.units.Quantity`, optional
        Electrons per data unit for every frame: e-/ADU for counts, a
        Quantity for data in other units (as `~ccdphot_ext.photometer`).
        None (default): ``detector.gain``, else each frame's header
        (GAIN/EGAIN/CCDGAIN), else no source Poisson term. Giving it here
        and a different one in ``detector`` is an error.
    threshold : `~ccdphot_ext.SigmaThreshold`, optional
        Keep only the pixels above ``n_sigma * sky_std`` in each aperture;
        None (default): every aperture pixel.
    detector : `~ccdphot_ext.DetectorParameters`, optional
        Detector values for every frame (saturation, exposure time, read
        noise, gain); those not given are read from each frame's header.
        None (default): every value from the headers.
    budget : `~ccdphot_ext.BudgetOptions`, optional
        How the budget is formed; None (default): ``BudgetOptions()``.
    zeropoint : float, optional
        The magnitude zero point of counts and count rates, for every
        frame; None (default): each frame's header (PHOTFLAM/PHOTPLAM,
        PHOTFLAM/PHOTZPT or PHOTMJSR), else 0. Flux densities have AB
        magnitudes.
    recenter : bool or `~ccdphot_ext.Recentering`, optional
        Re-centre each aperture on its star on each frame: a
        `~ccdphot_ext.Recentering`, or True for ``Recentering()``; None or
        False (default) keeps the nominal positions
        (:ref:`batch-each-frame`).
    reading : `FrameReading`, optional
        How the FITS frames are read: the image HDU, the data unit (instead
        of BUNIT) and the data-quality bits that mask a pixel; None
        (default): ``FrameReading()``, the first image HDU, each frame's
        BUNIT and DO_NOT_USE.
    output : str or path-like, optional
        Also write the table here (an ``.ecsv`` name; atomically, under a
        lock), every ``execution.checkpoint_interval`` seconds and on an
        interrupt (:ref:`batch-output`); None (default): no file.
    resume_from : str, path-like or `~astropy.table.QTable`, optional
        A previous table of these frames: its completely measured,
        unchanged frames are kept and only the others measured
        (:ref:`batch-output`); None (default): measure every frame.
    execution : `BatchExecution`, optional
        Where the frames run (serially here, or on Dask), the Dask
        timeout, the checkpoint interval and the progress line
        (:ref:`batch-dask`); None (default): ``BatchExecution()``, serially
        in this process.
    flux_unit : `~astropy.units.UnitBase` or str, optional
        The unit of the sums of surface-brightness or flux-density frames
        (as `~ccdphot_ext.photometer`); None (default): Jy for a surface
        brightness, the data unit otherwise.
    sky_without_apertures : bool, optional
        True (default): a whole-frame sky of each frame is measured again
        without the light of the apertures measured where that light lifts
        its level by more than a tenth of its error, as
        `~ccdphot_ext.photometer` does (:ref:`sky-apertures`); False keeps
        the level as measured. An annulus sky is not changed. Recorded in
        ``meta['parameters']`` when False.

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per frame and position: ``frame``, ``time`` (UTC), ``id``,
        every `~ccdphot_ext.photometer` column, ``exptime``, ``status``,
        ``error`` and ``note``; ``meta`` holds the parameters and
        ``failures`` (a failed frame also warns: :ref:`batch-faults`).

    Raises
    ------
    TypeError, ValueError
        For a bad argument, named, before any frame is measured (frames
        listed twice, ids not one per position, an output that is a frame
        or not ECSV, apertures far larger than the first frame, ...).
    OutputLockedError
        If another run is writing ``output``.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.nddata import NDData
    >>> from ccdphot_ext import BoxAperture, photometer_frames
    >>> rng, star = np.random.default_rng(0), np.zeros((40, 40))
    >>> star[18:21, 18:21] = 200.0
    >>> frames = [NDData(rng.normal(100.0, 8.0, (40, 40)) + k * star,
    ...                  meta={'MJD-OBS': 6e4 + k, 'FILENAME': f'f{k}.fits'})
    ...           for k in (1, 2, 3)]
    >>> lc = photometer_frames(frames, BoxAperture((19, 19), 9, 9), gain=2.0)
    >>> lc['frame'].tolist(), np.round(lc['aperture_sum'] / 1800.0).tolist()
    (['f1.fits', 'f2.fits', 'f3.fits'], [1.0, 2.0, 3.0])
    """
    frames, names = check_frames(frames)
    config, ids = configure(
        ApertureLayout.of(apertures), sky, ids, gain=gain, threshold=threshold,
        detector=detector, budget=budget, zeropoint=zeropoint,
        recenter=recenter, reading=reading, flux_unit=flux_unit,
        sky_without_apertures=sky_without_apertures)
    return measure_configured(frames, names, config, ids, output=output,
                              resume_from=resume_from, execution=execution)


def configure(layout, sky, ids, *, gain, threshold, detector, budget,
              zeropoint, recenter, reading, flux_unit,
              sky_without_apertures=True):
    """
    Check `photometer_frames`' measuring arguments (as it documents them;
    the apertures as their `~ccdphot_ext.batch.layout.ApertureLayout`);
    return the `FrameConfig` every frame is measured with, and the ids.
    """
    return _configure(
        layout, sky, ids, recenter=recenter, threshold=threshold,
        detector=detector_with_gain(detector, gain),
        budget=check_options(budget, 'budget', BudgetOptions),
        zeropoint=zeropoint, flux_unit=flux_unit,
        reading=check_options(reading, 'reading', FrameReading),
        sky_without_apertures=check_bool(sky_without_apertures,
                                         'sky_without_apertures'))


def measure_configured(frames, names, config, ids, *, output, resume_from,
                       execution, submitted=None):
    """
    `photometer_frames` once its frames (`check_frames`) and its measuring
    arguments (`configure`) are checked.

    ``submitted``, for ``ccdphot batch --scheduler``, holds the tasks the
    command sent for these frames before it built ``config`` (with the
    client they run on): a `ccdphot_ext.cli.batch_early.EarlyTasks`. What
    they return is kept only when they were measured with this ``config``
    (`run_parameters` equal); else those frames are measured again.
    """
    execution = check_options(execution, 'execution', BatchExecution)
    config = replace(config, frame_timeout=execution.frame_timeout)
    _check_first_frame(frames, config)
    if output is not None:
        _check_batch_output(output, frames)
    run = _Run(frames, names, config, ids, run_parameters(config, ids),
               output=output, execution=execution, submitted=submitted)
    with nullcontext() if output is None else output_lock(output):
        run.resume(resume_from)
        return run.execute()


def check_frames(frames):
    """The frames as a list, and their names (each listed once)."""
    if isinstance(frames, (str, os.PathLike, NDData)):
        frames = [frames]
    frames = list(frames)
    if not frames:
        raise ValueError('frames is empty')
    for f in frames:
        if not isinstance(f, (str, os.PathLike, NDData)):
            raise TypeError('frames must be FITS paths or NDData objects, got '
                            f'{type(f).__name__}')
    names = [_frame_name(f, i) for i, f in enumerate(frames)]
    seen = {}
    for i, name in enumerate(names):
        j = seen.setdefault(_frame_key(name), i)
        if j != i:
            raise ValueError(f'frames: {name} is listed twice (positions {j} '
                             f'and {i}); each frame may appear once')
    return frames, names


def _check_first_frame(frames, config):
    """Refuse, before any work, an HDU the first frame does not have
    as an image and apertures (and sky annuli) far larger than that frame:
    every frame would fail the same way, or exhaust the memory. Skipped
    when that frame cannot be read here (it fails alone, or a remote
    cluster reads it)."""
    first = frames[0]
    if not isinstance(first, NDData):
        problem = hdu_problem(first, config.reading.hdu)
        if problem:  # every frame would fail the same way
            raise ValueError(f'reading: {problem} (the first frame)')
    shape = (np.shape(first.data) if isinstance(first, NDData)
             else image_shape(first, hdu=config.reading.hdu))
    if shape is None or len(shape) != 2:
        return
    config.layout.check_extent(shape)
    if isinstance(config.sky, AnnulusSky):
        config.sky.check_extent(shape)


def _check_batch_output(output, frames):
    """Refuse an output that is a frame or not an ECSV name, before work."""
    check_output(output, label='output', inputs=[
        (f, 'frame') for f in frames if not isinstance(f, NDData)])
    if table_format(output) != 'ascii.ecsv':
        raise ValueError(f'output {os.fspath(output)}: a batch writes ECSV '
                         '(resume reads it back); give a name ending in '
                         '.ecsv')


def _configure(layout, sky, ids, *, recenter, threshold, detector,
               budget, zeropoint, flux_unit, reading, sky_without_apertures):
    """Validate everything a worker will use; return (config, ids)."""
    if not callable(sky):
        check_choice(sky, 'sky', SKY_METHODS)
    ids = _check_ids(ids, layout.n_rows)
    _check_threshold(threshold)
    config = FrameConfig(
        layout=layout, sky=sky, recenter=_check_recenter(recenter),
        detector=detector, budget=budget, threshold=threshold,
        zeropoint=(None if zeropoint is None
                   else finite_number(zeropoint, 'zeropoint')),
        flux_unit=_check_flux_unit(flux_unit), reading=reading,
        n_rows=layout.n_rows, sky_without_apertures=sky_without_apertures)
    return config, ids


def _check_threshold(threshold):
    """A `SigmaThreshold` or None (its module, which imports photutils,
    is loaded only when a threshold is given: a run whose frames Dask
    workers measure never loads photutils in its own process)."""
    if threshold is None:
        return
    from ..background.threshold import SigmaThreshold

    if not isinstance(threshold, SigmaThreshold):
        raise TypeError('threshold must be a SigmaThreshold or None, got '
                        f'{type(threshold).__name__}')


def _check_ids(ids, n):
    """One unique id per aperture position: integers kept exactly (int64),
    or text; numbers that are not whole or do not fit 64 bits are
    refused (an id of 1e20 would be written as -2**63)."""
    if ids is None:
        return np.arange(1, n + 1)
    ids = np.asarray(ids)
    if ids.shape != (n,):
        raise ValueError(f'ids has shape {ids.shape}; give one id per '
                         f'aperture position ({n})')
    if ids.dtype.kind == 'f':
        bad = inexact_ids(ids)
        if bad.any():
            raise ValueError(f'ids: {ids[bad][0]:g} (position '
                             f'{int(np.flatnonzero(bad)[0])}) is not an id '
                             'kept exactly: give whole numbers below '
                             '2**53, integers within int64, or text')
        ids = ids.astype(np.int64)
    elif ids.dtype.kind == 'u' and inexact_ids(ids).any():
        raise ValueError('ids: an id does not fit a 64-bit integer: give '
                         'integers within int64, or text')
    elif ids.dtype.kind in 'US':
        ids = ids.astype(str)
    elif ids.dtype.kind not in 'iu':
        raise TypeError(f'ids must be integers or text, got {ids.dtype}')
    if len(set(ids.tolist())) != len(ids):
        raise ValueError('ids must be unique')
    return ids.astype(np.int64) if ids.dtype.kind in 'iu' else ids


def _check_flux_unit(flux_unit):
    """The flux unit as a unit (None stays None), refused before any
    frame is measured when it is not one."""
    if flux_unit is None:
        return None
    try:
        return u.Unit(flux_unit)
    except (ValueError, TypeError) as exc:
        raise ValueError(f'flux_unit: {flux_unit!r} is not a unit '
                         f'({exc})') from None


def _check_recenter(recenter):
    """The `Recentering` of ``recenter`` (True: ``Recentering()``); None
    without re-centring."""
    if recenter is None or recenter is False:
        return None
    from ..detection.recenter import Recentering

    if recenter is True:
        return Recentering()
    if not isinstance(recenter, Recentering):
        hint = (f"; use Recentering(centroid={recenter!r})"
                if isinstance(recenter, str) else '')
        raise TypeError('recenter must be None, False, True or a '
                        f'Recentering, got {recenter!r}{hint}')
    return recenter


def _frame_name(frame, i):
    if isinstance(frame, NDData):
        return str((frame.meta or {}).get('FILENAME', f'frame{i}'))
    return os.fspath(frame)


def _frame_key(name):
    return os.path.abspath(name)


# -- the run ----------------------------------------------------------------

class _Terminated(KeyboardInterrupt):
    """``SIGTERM`` or ``SIGHUP`` received: checkpoint, then stop like
    Ctrl-C."""


class _Signals:
    """
    Ctrl-C (``SIGINT``), ``SIGTERM`` and ``SIGHUP`` as interrupts of the
    run, except
    while the output is written: a signal then waits for the write to end,
    so that every write (checkpoint or final) completes, and the interrupt
    follows it. Installed in the main thread only; a signal that is ignored
    (a background job's ``SIGINT``) or handled by someone else stays so.
    """

    def __init__(self):
        self.writing, self.pending = False, None

    def _handler(self, signum, frame):
        exc = (KeyboardInterrupt() if signum == signal.SIGINT else
               _Terminated(f'terminated ({signal.Signals(signum).name})'))
        if self.writing:
            self.pending = exc
            return
        raise exc

    @contextmanager
    def installed(self):
        previous = {}
        if threading.current_thread() is threading.main_thread():
            stops = [(signal.SIGINT, signal.default_int_handler),
                     (signal.SIGTERM, None)]
            if hasattr(signal, 'SIGHUP'):  # the terminal was closed
                stops.append((signal.SIGHUP, None))
            for sig, ours in stops:
                current = signal.getsignal(sig)
                if current is signal.SIG_IGN or (
                        ours is not None and current is not ours):
                    continue
                previous[sig] = signal.signal(sig, self._handler)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextmanager
    def deferred(self):
        """A write no signal cuts short; a signal received meanwhile is
        raised when it ends."""
        self.writing = True
        try:
            yield
        finally:
            self.writing = False
        if self.pending is not None:
            exc, self.pending = self.pending, None
            raise exc


class _Run:
    """Frames to measure, results so far, and how to write them."""

    def __init__(self, frames, names, config, ids, parameters, *, output,
                 execution, submitted=None):
        self.frames, self.names = frames, names
        self.config, self.ids, self.parameters = config, ids, parameters
        self.output, self.execution = output, execution
        self.submitted = submitted
        self.interval = execution.checkpoint_interval
        self.progress = execution.progress
        self.todo = list(range(len(frames)))
        self.old_ok, self.old_failed = None, ([], [])
        self.old_identities = {}
        self.unit = _previous_unit(None)
        self.mode = 'serial'
        self.signals = _Signals()
        self.saved_complete = False
        self.checkpoints = 0  # tables this run wrote to the output
        self.raised = None  # a warning raised as an error, for the end
        # the output's rows already made into text, a block per frame
        self.lines = (None if output is None or not config.n_rows
                      else LineCache(config.n_rows))

    def resume(self, resume_from):
        """Keep what a previous table holds that is valid."""
        if resume_from is None:
            return
        old, label = load_previous(resume_from, self.parameters)
        previous = Resumed(old, label, self.frames, self.names, self.ids)
        self.todo, self.old_ok = previous.todo, previous.ok_rows
        self.old_failed = (previous.failed_names, previous.failed)
        self.old_identities = previous.identities
        self.unit = _previous_unit(self.old_ok)
        # refused now, not after the work: the kept rows must stack with
        # this run's (columns of the same kind and unit)
        try:
            _stack(self.old_ok, _assemble(
                ['(this run)'], [FrameResult.failed('')], self.config,
                self.ids, self.unit))
        except (TypeError, ValueError, u.UnitsError) as exc:
            reason = ' '.join(str(exc).split())[:200]
            raise ValueError(f'resume_from: the rows of {label} do not fit '
                             f'this run\'s ({reason}); start a new output'
                             ) from None

    def _prepare(self):
        self.todo_names = [self.names[i] for i in self.todo]
        # paths travel absolute: a worker's working directory may differ
        self.todo_frames = [
            self.frames[i] if isinstance(self.frames[i], NDData)
            else os.path.abspath(self.frames[i]) for i in self.todo]
        self.results = [None] * len(self.todo)
        self.lost = set()  # frames the execution could not measure at all
        self.failed_on = {}  # frame name -> Dask worker address
        self.start = time.perf_counter()
        self.next_save = self.start + self.interval
        show = len(self.todo) > 20 if self.progress is None else bool(
            self.progress)
        self.counter = _Progress(len(self.todo), show and len(self.todo) > 0)

    def build(self, complete):
        done = [k for k, r in enumerate(self.results) if r is not None]
        names = [self.todo_names[k] for k in done] + self.old_failed[0]
        results = [self.results[k] for k in done] + self.old_failed[1]
        table = _combine(self.old_ok, names, results, self.config, self.ids,
                         self.unit, self.tell)
        identities = dict(self.old_identities)
        for k in done:
            identities[self.todo_names[k]] = frame_identity(
                self.todo_frames[k], self.todo_names[k],
                self.results[k].fingerprint)
        table = _finish_meta(table, self.parameters,
                             time.perf_counter() - self.start, self.mode,
                             len(set(done) - self.lost), complete,
                             identities)
        for entry in table.meta['failures']:
            if entry['frame'] in self.failed_on:
                entry['worker'] = self.failed_on[entry['frame']]
        return table

    def record(self, k, res, *, announce=True):
        self.results[k] = res
        self.counter.update(res)
        if res.status == STATUS_FAILED and announce:
            where = res.worker
            if where:
                self.failed_on[self.todo_names[k]] = where
            on = f' (on Dask worker {where})' if where else ''
            self.tell(f'{self.todo_names[k]}: frame failed{on}: '
                      f'{res.error}')
        if self.lines is not None:
            if res.text:  # made on the worker
                self.lines.merge(res.text)
                res.text = None
            elif self.mode == 'dask':
                self.prepare_text(k)
        if self.output is not None and time.perf_counter() >= self.next_save:
            self.checkpoint()
            self.next_save = time.perf_counter() + self.interval

    def prepare_text(self, k):
        """
        Make the rows of frame ``k`` into the output's text now, while the
        workers measure the other frames, rather than all at the end
        (`frames_text`, in the unit of the run when one is known).
        """
        text = head_start_text([self.todo_names[k]], [self.results[k]],
                               self.config, self.ids, self.unit)
        if text is not None:
            self.lines.merge(text)

    def checkpoint(self):
        """Write the frames measured so far; a write that fails (a full
        disk) warns and the run goes on (the next write tries again)."""
        try:
            self.write(self.build(False))
        except OSError as exc:
            self.tell(f'{exc}; checkpoint not written, the run goes on')

    def tell(self, text, category=AstropyUserWarning):
        """
        Warn about the run. Where warnings are errors (``-W error``) the
        first one is raised once the output is written, not before: a
        warning never costs the measured frames.
        """
        try:
            warnings.warn(text, category, stacklevel=3)
        except Warning as exc:
            self.raised = self.raised or exc

    def write(self, table):
        """Write ``table`` whole, whatever signal arrives meanwhile."""
        with self.signals.deferred():
            write_table_atomic(table, self.output, format='ascii.ecsv',
                               text_cache=self.lines)
            self.saved_complete = table.meta['last_run']['complete']
            self.checkpoints += 1

    def write_final(self, table):
        """Write the finished table; where that fails (a full disk), say
        that the output keeps its last checkpoint and how to go on."""
        try:
            self.write(table)
        except OSError as exc:
            kept = ('the output keeps the frames of its last checkpoint: '
                    'free space, then rerun with --resume' if
                    self.checkpoints else 'nothing was written')
            # strerror: the message without its "[Errno N]", which the
            # new error's own str() puts in front once
            raise OSError(exc.errno, f'{exc.strerror or exc}; {kept}'
                          ) from exc

    def not_measured(self, reason):
        """The frames without a result fail with ``reason``: one warning
        for them all."""
        lost = [k for k, r in enumerate(self.results) if r is None]
        self.lost.update(lost)
        for k in lost:
            self.record(k, FrameResult.failed(reason), announce=False)
        if lost:
            self.tell(f'{len(lost)} of {len(self.results)} frames not '
                      f'measured: {reason}', FramesNotMeasuredWarning)

    def measure(self):
        """Measure the frames still to do, here or on Dask."""
        early = self.submitted
        if early is None:
            run_client, cleanup = open_client(self.execution)
            sent = None
        else:  # the tasks ccdphot batch sent, and its client
            sent = early.tasks(self.todo_frames, self.parameters)
            run_client, cleanup = early.client, [early.close]
            self.start = min(self.start, early.started)  # the run's time
            if run_client is None:
                raise connect_error(self.execution, early.error)
        self.mode = 'serial' if run_client is None else 'dask'
        try:
            if run_client is None:
                run_serial(self.todo_frames, self.config, self.record)
            elif self.todo_frames:
                stopped = run_dask(
                    run_client, self.todo_frames, self.config, self.record,
                    timeout=self.execution.timeout, submitted=sent,
                    accept=None if early is None else early.accept)
                if stopped is not None:
                    self.not_measured(stopped)
        finally:
            for close in cleanup:
                close()

    def execute(self):
        """Measure the frames still to do; return the whole table, also
        written to the output (like every checkpoint, whole even when a
        signal arrives meanwhile)."""
        self._prepare()
        with self.signals.installed():
            try:
                self.measure()
                _relay_warnings(self.todo_names, self.results, self.tell)
                table = self.build(True)
                if self.output is not None:
                    self.write_final(table)
            except KeyboardInterrupt:
                # keep what is done: a complete file of the measured frames
                if self.output is not None and not self.saved_complete \
                        and any(r is not None for r in self.results):
                    self.write(self.build(False))
                raise
        if self.raised is not None:
            raise self.raised
        return table


# -- resume and provenance --------------------------------------------------

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


def run_parameters(config, ids):
    """The run's parameters for ``meta`` (a resumed run must match them),
    in plain JSON values: the sky, the re-centring, the detector values
    given (each frame's header completes them), the budget options, the
    threshold, the zero point, the HDU, the apertures and a whole-frame
    sky kept with the apertures' light."""
    sky = config.sky
    if isinstance(sky, str):
        sky_text = sky
    elif hasattr(sky, '__name__'):
        sky_text = f'callable {sky.__module__}.{sky.__name__}'
    else:
        sky_text = repr(sky)
    detector, reading = config.detector, config.reading
    params = {
        'sky': sky_text,
        'recenter': (None if config.recenter is None
                     else asdict(config.recenter)),
        'hdu': reading.hdu,
        'dq_bits': reading.dq_bits,
        **({} if reading.unit is None else {'unit': str(reading.unit)}),
        'detector': {name: getattr(detector, name)
                     for name in detector.NAMES},
        'budget': asdict(config.budget),
        'threshold': (None if config.threshold is None
                      else repr(config.threshold)),
        # the positions table's own flags (none: unrecorded, as before)
        **({'row_flags': list(config.row_flags)} if config.row_flags
           else {}),
        'zeropoint': config.zeropoint,
        **({} if config.flux_unit is None
           else {'flux_unit': str(config.flux_unit)}),
        # the default (True) unrecorded: tables of before it still resume
        **({} if config.sky_without_apertures
           else {'sky_without_apertures': False}),
        **config.layout.describe(ids)}
    return _json_safe(params)


def _previous_unit(old_ok):
    """The data unit of a previous table's successful rows (or unset)."""
    if old_ok is None or not len(old_ok) or 'aperture_sum' not in (
            old_ok.colnames):
        return _UNSET
    unit = getattr(old_ok['aperture_sum'], 'unit', None)
    return None if unit is None else unit.to_string()


# -- assembling the table ---------------------------------------------------

def _harmonise_units(results, names, unit=_UNSET, tell=None):
    """Convert every frame to ``unit`` (default: the first frame's); a
    frame in another unit fails, and ``tell`` says so."""
    if unit is _UNSET:
        unit = next((r.unit for r in results if r.status == STATUS_OK),
                    None)
    target = None if unit is None else u.Unit(unit)
    for name, res in zip(names, results, strict=True):
        if res.status != STATUS_OK or res.unit == unit:
            continue
        this = None if res.unit is None else u.Unit(res.unit)
        try:
            if this is None or target is None:
                raise u.UnitConversionError('no unit')
            scale = this.to(target)
        except u.UnitConversionError:
            (tell or _warn)(f'{name}: frame unit {res.unit} differs from '
                            f'{unit}')
            res.fail(f'UnitsError: data unit {res.unit} differs from {unit} '
                     'of the other frames')
            continue
        for col, value in res.columns.items():
            power = unit_power(col)
            if power:
                res.columns[col] = value * scale ** power
        res.unit = unit
    return target


def _blank(name, n):
    """A measured-nothing block: flags 0, NaN values (NaN sky positions)."""
    if name == 'flags':
        return np.zeros(n, dtype=np.int32)
    return np.full((n, 2) if name == 'sky_centroid' else n, np.nan)


def _column_names(results):
    """
    The union of the measured frames' columns, in order of appearance
    (frames may differ in their columns: ``sky_centroid`` only with a
    celestial WCS).
    """
    colnames = []
    for res in results:
        if res.status == STATUS_OK:
            colnames += [c for c in res.columns if c not in colnames]
    return colnames


def _warn(text):
    warnings.warn(text, AstropyUserWarning, stacklevel=4)


def frames_text(names, results, config, ids, unit=_UNSET):
    """
    The output's text of frames' rows (`FrameResult` objects measured with
    ``config``, in the order of ``names``), for the
    `~ccdphot_ext.utils.ecsv.LineCache` of a run that writes them
    (``LineCache.merge``): each frame's block of the table as the whole
    table will have it (in ``unit``, when the run's is known). A block
    that turns out different (another unit, other columns) is made into
    text again when written. The frames of a Dask task are made into text
    together: the table and writer set up once, not once a frame.
    """
    results = [replace(result, notes=list(result.notes), columns=(
        None if result.columns is None else dict(result.columns)))
        for result in results]
    cache = LineCache(config.n_rows)
    cache.add(_assemble(list(names), results, config, ids, unit,
                        lambda text: None))
    return cache.texts()


def head_start_text(names, results, config, ids, unit=_UNSET):
    """
    `frames_text`, or None where it cannot be made now: text made ahead is
    only a head start (the write makes the text of every row it lacks), so
    that nothing about it may stop the run.
    """
    try:
        return frames_text(names, results, config, ids, unit)
    except Exception:  # only a head start: the write makes it anyway
        return None


def _assemble(names, results, config, ids, unit=_UNSET, tell=None):
    unit = _harmonise_units(results, names, unit, tell)
    n = config.n_rows
    colnames = _column_names(results) or list(config.columns)
    nominal = config.layout.positions
    blocks = {c: [] for c in colnames}
    frame_col, jd1, jd2, status, error, note, exptime = ([] for _ in range(7))
    xnom, ynom = [], []
    for name, res in zip(names, results, strict=True):
        cols = res.columns or {'x_center': nominal[:, 0],
                                  'y_center': nominal[:, 1]}
        for c in colnames:
            blocks[c].append(cols[c] if c in cols else _blank(c, n))
        t = res.time
        jd1.append(np.full(n, np.nan if t is None else t[0]))
        jd2.append(np.full(n, np.nan if t is None else t[1]))
        frame_col += [name] * n
        status += [res.status] * n
        error += [res.error] * n
        note += ['; '.join(res.notes)] * n
        exptime.append(np.full(n, res.exptime))
        pos = res.positions if res.positions is not None else nominal
        xnom.append(pos[:, 0])
        ynom.append(pos[:, 1])

    table = QTable()
    table['frame'] = np.array(frame_col, dtype=str)
    jd1, jd2 = np.concatenate(jd1), np.concatenate(jd2)
    # a time that could not be written (or read back) is never kept
    missing = ~plausible_jd(jd1 + jd2)
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


def _finish_meta(table, parameters, seconds, mode, n_measured, complete,
                 identities):
    failed = table['status'] == STATUS_FAILED
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
        # what a resumed run matches frames by (not the names as typed)
        'frame_files': [identities[name] for name in
                        dict.fromkeys(str(n) for n in table['frame'])],
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


def _combine(old_ok, names, results, config, ids, unit, tell=None):
    """The previous successful rows and the new results, in time order."""
    if not names:
        return old_ok if old_ok is not None else QTable()
    table = _assemble(names, results, config, ids, unit, tell)
    if old_ok is not None and len(old_ok):
        table = _stack(old_ok, table)
    return _time_order(table)


def _stack(old, new):
    """
    The rows of ``old`` then ``new``: a column only one of them has is
    blank in the other (NaN, a NaN sky position, flags 0, ''), so that
    frames with and without a celestial WCS, in one run or resumed, give
    one table.
    """
    old, new = old.copy(copy_data=False), new.copy(copy_data=False)
    # the columns in the order of the table that has more of them (as in
    # one run: sky_centroid where a frame with a WCS puts it)
    wide, narrow = ((old, new) if len(old.colnames) >= len(new.colnames)
                    else (new, old))
    order = wide.colnames + [n for n in narrow.colnames
                             if n not in wide.colnames]
    for first, second in ((old, new), (new, old)):
        for name in first.colnames:
            if name not in second.colnames:
                second[name] = _blank_like(first[name], len(second))
    return vstack([old[order], new[order]], join_type='exact',
                  metadata_conflicts='silent')


def _blank_like(column, n):
    """``n`` blank values of the kind of ``column``."""
    if isinstance(column, SkyCoord):
        return SkyCoord(np.full(n, np.nan) * u.deg, np.full(n, np.nan) * u.deg,
                        frame='icrs')
    if isinstance(column, u.Quantity):
        return np.full(n, np.nan) * column.unit
    kind = np.asarray(column).dtype.kind
    if kind in 'iub':
        return np.zeros(n, dtype=np.asarray(column).dtype)
    if kind in 'US':
        return np.full(n, '', dtype=str)
    return np.full(n, np.nan)


# -- reporting --------------------------------------------------------------

class _Progress:
    """A plain progress counter on stderr (a line per ~10%)."""

    def __init__(self, total, enabled):
        self.total, self.enabled = total, enabled
        self.done = self.failed = 0
        self._next = 0.1
        self._start = time.perf_counter()

    def update(self, result):
        self.done += 1
        self.failed += result.status == STATUS_FAILED
        if not self.enabled:
            return
        frac = self.done / self.total
        if frac >= self._next or self.done == self.total:
            while self._next <= frac:
                self._next += 0.1
            rate = self.done / max(time.perf_counter() - self._start, 1e-9)
            try:
                print(f'ccdphot batch: {self.done}/{self.total} frames '
                      f'({self.failed} failed, {rate:.2f} frames/s)',
                      file=sys.stderr, flush=True)
            except (OSError, ValueError):  # stderr closed: the run goes on
                self.enabled = False


def _relay_warnings(names, results, tell):
    """Re-issue the frames' warnings here (with ``tell``), one per distinct
    message (a message that starts with its frame's name is grouped
    without it, and the name said once)."""
    by_text = {}
    for name, res in zip(names, results, strict=True):
        for text in res.warnings:
            for spelling in (name, os.path.abspath(name)):
                text = text.removeprefix(f'{spelling}: ')
            by_text.setdefault(text, []).append(name)
    for text, where in by_text.items():
        shown = ', '.join(where[:3]) + (', ...' if len(where) > 3 else '')
        label = where[0] if len(where) == 1 else f'{len(where)} frames ({shown})'
        tell(f'{label}: {text}')
