# Licensed under a 3-clause BSD style license - see LICENSE
"""
The state of one batch run (internal): what a resumed table already holds,
the results as they arrive, checkpoints of the output (on a timer, on
Ctrl-C and on ``SIGTERM``) and the final table.
"""

import os
import signal
import threading
import time
import warnings
from contextlib import contextmanager

from astropy.nddata import NDData
from astropy.utils.exceptions import AstropyUserWarning

from ..utils.files import write_table_atomic
from .assembly import (
    _combine,
    _finish_meta,
    _previous_unit,
    _split_previous,
)
from .execution import _open_client, _run_dask, _run_serial
from .output import _load_previous, _Progress, _relay_warnings
from .worker import _STATUS_FAILED

__all__ = []


class _Terminated(KeyboardInterrupt):
    """``SIGTERM`` received: checkpoint, then stop like Ctrl-C."""


@contextmanager
def _sigterm_interrupts():
    """Turn ``SIGTERM`` into `_Terminated` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated('terminated (SIGTERM)')

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Run:
    """Frames to measure, results so far, and how to write them."""

    def __init__(self, frames, names, config, ids, parameters, *, output,
                 checkpoint_interval, progress):
        self.frames, self.names = frames, names
        self.config, self.ids, self.parameters = config, ids, parameters
        self.output, self.interval = output, checkpoint_interval
        self.progress = progress
        self.todo = list(range(len(frames)))
        self.old_ok, self.old_failed = None, ([], [])
        self.unit = _previous_unit(None)
        self.mode = 'serial'

    def resume(self, resume_from):
        """Keep what a previous table holds that is valid."""
        if resume_from is None:
            return
        old = _load_previous(resume_from, self.parameters)
        self.todo, self.old_ok, self.old_failed = _split_previous(
            old, self.names, self.todo)
        self.unit = _previous_unit(self.old_ok)

    def _prepare(self):
        self.todo_names = [self.names[i] for i in self.todo]
        # paths travel absolute: a worker's working directory may differ
        self.todo_frames = [
            self.frames[i] if isinstance(self.frames[i], NDData)
            else os.path.abspath(self.frames[i]) for i in self.todo]
        self.results = [None] * len(self.todo)
        self.failed_on = {}  # frame name -> Dask worker address
        self.start = time.perf_counter()
        self.next_save = self.start + self.interval
        show = len(self.todo) > 20 if self.progress is None else bool(
            self.progress)
        self.counter = _Progress(len(self.todo), show and len(self.todo) > 0)

    def build(self, complete):
        done = [k for k, r in enumerate(self.results) if r is not None]
        names = [self.todo_names[k] for k in done] + self.old_failed[0]
        results = [self.results[k] for k in done] + [
            dict(r) for r in self.old_failed[1]]
        table = _combine(self.old_ok, names, results, self.config, self.ids,
                         self.unit)
        table = _finish_meta(table, self.parameters,
                             time.perf_counter() - self.start, self.mode,
                             len(done), complete)
        for entry in table.meta['failures']:
            if entry['frame'] in self.failed_on:
                entry['worker'] = self.failed_on[entry['frame']]
        return table

    def record(self, k, res):
        self.results[k] = res
        self.counter.update(res)
        if res['status'] == _STATUS_FAILED:
            where = res.get('worker')
            if where:
                self.failed_on[self.todo_names[k]] = where
            on = f' (on Dask worker {where})' if where else ''
            warnings.warn(f'{self.todo_names[k]}: frame failed{on}: '
                          f'{res["error"]}', AstropyUserWarning, stacklevel=2)
        if self.output is not None and time.perf_counter() >= self.next_save:
            self.write(self.build(False))
            self.next_save = time.perf_counter() + self.interval

    def write(self, table):
        write_table_atomic(table, self.output, format='ascii.ecsv')

    def execute(self, client, workers, scheduler, timeout):
        """Measure the frames still to do; return the whole table."""
        self._prepare()
        try:
            with _sigterm_interrupts():
                run_client, cleanup = _open_client(client, workers,
                                                   scheduler, timeout)
                self.mode = 'serial' if run_client is None else 'dask'
                try:
                    if run_client is None:
                        _run_serial(self.todo_frames, self.config,
                                    self.record)
                    elif self.todo_frames:
                        _run_dask(run_client, self.todo_frames, self.config,
                                  self.record, timeout=timeout)
                finally:
                    for close in cleanup:
                        close()
        except KeyboardInterrupt:
            # keep what is done: a complete file of the measured frames
            if self.output is not None and any(
                    r is not None for r in self.results):
                self.write(self.build(False))
            raise
        _relay_warnings(self.todo_names, self.results)
        table = self.build(True)
        if self.output is not None:
            self.write(table)
        return table
