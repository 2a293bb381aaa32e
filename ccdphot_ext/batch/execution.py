# Licensed under a 3-clause BSD style license - see LICENSE
"""
Running the frames of a batch: serially in this process or on a Dask
cluster, as a `BatchExecution` says.

On Dask every task is self-sufficient: it carries the (small) run
configuration and the paths of a few frames, which the worker reads itself,
so no task depends on data held by one worker. The scheduler moves the
tasks of a worker that dies to the surviving workers; a task that still
fails is split into one task per frame, so a frame that kills its worker
costs only itself, and its row names the worker. If no worker is left, or
the scheduler stops answering, for ``timeout`` seconds, the frames not yet
measured fail with that reason instead of waiting for ever; if the
scheduler dies, the frames that came back are kept and the others fail
with that reason (the run never ends in Dask's exception).
"""

import os
import sys
from dataclasses import dataclass

import numpy as np

from ..utils.daskclient import new_client, quietly
from ..utils.numbers import positive_integer, positive_scalar
from ..utils.tasks import guided_chunks
from .worker import FrameResult, measure_frame

__all__ = ['BatchExecution']


@dataclass(frozen=True, kw_only=True)
class BatchExecution:
    """
    Where and how the frames of `~ccdphot_ext.photometer_frames` run.

    Serially here (the default), on local Dask worker processes or on a
    running Dask cluster; how long to wait for it, how often to checkpoint
    the output and whether to show progress. Checked when built; immutable.
    Give at most one of ``client``, ``workers`` and ``scheduler``; with
    none, the frames run one after the other in this process.

    Parameters
    ----------
    client : `distributed.Client`, optional
        A Dask client to run the frames on (left open); None (default):
        no client.
    workers : int, optional
        Start a local Dask cluster of this many worker processes (closed
        at the end); None (default): no local cluster.
    scheduler : str, optional
        The address of a running Dask scheduler (``'tcp://host:8786'``);
        None (default): no scheduler.
    timeout : float, optional
        Seconds to wait for the scheduler, or for a worker when none is
        left, before the frames not yet measured fail (default 60).
    checkpoint_interval : float, optional
        Seconds between writes of the output while the run goes on
        (default 60; it is also written on an interrupt and at the end).
    progress : bool, optional
        Whether to print a progress line on standard error every ~10% of
        the frames; None (default): when there are over 20 frames.
    frame_timeout : float or None, optional
        Seconds one frame may take to be read and measured (default 600):
        a frame that takes longer fails with that reason, and the run goes
        on (a file that never finishes reading, on a hung network disk,
        would stop it for ever). None: no limit. A frame that is a pipe or
        a device, not a file, fails at once.

    Raises
    ------
    ValueError
        If more than one of ``client``, ``workers`` and ``scheduler`` is
        given, or a number is not positive.
    TypeError
        If ``workers`` is not a whole number, ``scheduler`` not an address,
        or ``progress`` not True, False or None.

    Examples
    --------
    >>> from ccdphot_ext import BatchExecution
    >>> BatchExecution(workers=2, checkpoint_interval=30)
    BatchExecution(client=None, workers=2, scheduler=None, timeout=60.0, \
checkpoint_interval=30.0, progress=None, frame_timeout=600.0)
    """

    client: object = None
    workers: int | None = None
    scheduler: str | None = None
    timeout: float = 60.0
    checkpoint_interval: float = 60.0
    progress: bool | None = None
    frame_timeout: float | None = 600.0

    def __post_init__(self):
        given = [name for name in ('client', 'workers', 'scheduler')
                 if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError('give at most one of client, workers and '
                             f'scheduler (got {", ".join(given)})')
        if self.scheduler is not None and (
                not isinstance(self.scheduler, str) or not self.scheduler):
            raise TypeError('scheduler must be an address such as '
                            f"'tcp://host:8786', got {self.scheduler!r}")
        if self.progress is not None and not isinstance(
                self.progress, (bool, np.bool_)):
            raise TypeError('progress must be True, False or None, got '
                            f'{self.progress!r}')
        checked = {
            'workers': (None if self.workers is None
                        else positive_integer(self.workers, 'workers')),
            'timeout': positive_scalar(self.timeout, 'timeout',
                                       allow_none=False),
            'checkpoint_interval': positive_scalar(
                self.checkpoint_interval, 'checkpoint_interval',
                allow_none=False),
            'progress': None if self.progress is None else bool(self.progress),
            'frame_timeout': positive_scalar(self.frame_timeout,
                                             'frame_timeout')}
        for name, value in checked.items():  # plain Python values
            object.__setattr__(self, name, value)


def run_serial(frames, config, record):
    for k, frame in enumerate(frames):
        record(k, measure_frame(frame, config))


def measure_chunk(frames, config):
    """A Dask task: measure a few frames on this worker."""
    from distributed import get_worker

    try:
        where = get_worker().address
    except ValueError:  # not on a worker (a local test)
        where = None
    results = [measure_frame(frame, config) for frame in frames]
    for res in results:
        res.worker = where
    return results


def n_workers(client):
    """The number of workers the scheduler of ``client`` has now."""
    return len(client.scheduler_info(n_workers=-1)['workers'])


def run_dask(client, frames, config, record, *, timeout=60.0,
             submitted=None, accept=None):
    """
    Measure ``frames`` on the cluster of ``client``, calling ``record(k,
    result)`` for each frame as it comes back.

    ``submitted`` (a dict: future -> the indices of its frames) holds
    tasks already sent for these frames (by ``ccdphot batch``, before it
    built ``config``); ``accept(value)`` turns what such a task returned
    into its frames' results, or None when they must be measured again
    with ``config``. None (default): every frame is sent here.

    Returns
    -------
    stopped : str or None
        Why the frames not recorded could not be measured (the scheduler
        died, or no worker was left for ``timeout`` seconds); None when
        every frame came back.
    """
    from distributed import wait

    pending, early = {}, set()

    def submit(indices):
        fut = client.submit(measure_chunk, [frames[i] for i in indices],
                            config, pure=False, retries=2)
        pending[fut] = indices

    try:
        if submitted is None:
            for indices in guided_chunks(len(frames),
                                         max(1, n_workers(client))):
                submit(indices)
        else:
            pending.update(submitted)
            early.update(submitted)
        while pending:
            try:
                done = wait(list(pending), timeout=timeout,
                            return_when='FIRST_COMPLETED').done
            except TimeoutError:
                reason = _stalled(client)
                if reason is None:
                    continue  # workers are busy with long frames
                return reason
            for fut in done:
                _collect(client, fut, pending.pop(fut), submit, record,
                         accept if fut in early else None)
    except _SchedulerLost as exc:
        return str(exc)
    except Exception as exc:  # the client lost its scheduler mid-call
        if _scheduler_state(client) is None:
            raise  # not a lost scheduler: a real error
        return _lost_reason(client, exc)
    finally:
        quietly(client.cancel, list(pending))
    return None


class _SchedulerLost(Exception):
    """The scheduler went away while frames were still to come back."""


def _collect(client, fut, indices, submit, record, accept=None):
    try:
        results = fut.result()
        if accept is not None:
            results = accept(results)
            if results is None:  # not measured as this run asks
                for i in indices:
                    submit([i])
                return
    except Exception as exc:  # the task was lost (its workers died)
        if _scheduler_state(client) is not None:
            raise _SchedulerLost(_lost_reason(client, exc)) from None
        if len(indices) > 1:  # isolate the frame that kills its worker
            for i in indices:
                submit([i])
            return
        text = ' '.join(str(exc).split())
        results = [FrameResult.failed(f'{type(exc).__name__}: {text}')]
    finally:
        quietly(fut.release)
    for i, res in zip(indices, results, strict=True):
        record(i, res)


def _scheduler_state(client):
    """None while the client is connected to its scheduler, else its
    status ('connecting' while it tries to reconnect, 'closed' ...)."""
    status = str(getattr(client, 'status', 'running'))
    return None if status in ('running', 'newly-created') else status


def _lost_reason(client, exc):
    """Why the frames still out are lost, in one line."""
    from concurrent.futures import CancelledError

    what = type(exc).__name__
    if not isinstance(exc, CancelledError):  # its text: Dask's long advice
        text = ' '.join(str(exc).split())
        what += ': ' + (text if len(text) <= 100 else text[:97] + '...')
    return (f'lost the Dask scheduler {_address(client)}(client '
            f'{_scheduler_state(client) or "disconnected"}; {what})')


def _address(client):
    try:
        return f'{client.scheduler.address} '
    except AttributeError:
        return ''


def _stalled(client):
    """Why nothing can finish (None: workers are alive, keep waiting)."""
    state = _scheduler_state(client)
    if state is not None:
        return (f'lost the Dask scheduler {_address(client)}(no answer for '
                f'the timeout; client {state})')
    try:
        n = n_workers(client)
    except Exception as exc:  # any failure to reach the scheduler counts
        return f'lost the Dask scheduler ({type(exc).__name__}: {exc})'
    if n == 0:
        return 'no Dask worker left (all died or none connected)'
    return None


def _brief(exc):
    """An exception in a few words: its type, and its message cut short
    (a garbled answer can make Dask ask for exabytes)."""
    text = str(exc).splitlines()[0] if str(exc) else ''
    text = text if len(text) <= 80 else text[:77] + '...'
    return f'{type(exc).__name__}: {text}' if text else type(exc).__name__


def connect_error(execution, exc):
    """The `OSError` that says why the client of ``execution`` could not
    connect to its scheduler (``exc``: what `distributed.Client` raised)."""
    if isinstance(exc, (OSError, TimeoutError)):
        return OSError(f'scheduler {execution.scheduler}: cannot connect '
                       f'within {execution.timeout:g} s ({exc})')
    # not an address, or not a Dask scheduler
    return OSError(f'scheduler {execution.scheduler}: not a Dask scheduler '
                   'address, or what answers there is not a Dask scheduler '
                   f'({_brief(exc)})')


def open_client(execution):
    """Return (client, cleanup callables) for a `BatchExecution` (client
    None: serially here)."""
    if execution.client is not None:
        return execution.client, []
    if execution.workers is None and execution.scheduler is None:
        return None, []
    try:
        from distributed import LocalCluster
    except ImportError as exc:
        raise ImportError('workers= and scheduler= need Dask: pip install '
                          '"ccdphot_ext[distributed]"') from exc
    if execution.scheduler is not None:
        try:
            new = new_client(execution.scheduler, timeout=execution.timeout)
        except Exception as exc:  # any failure to connect is named
            raise connect_error(execution, exc) from None
        return new, [new.close]
    import dask

    # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off
    # glibc's adaptive mmap threshold: every frame-sized temporary is then
    # a fresh mmap, and a worker spends twice the CPU of a serial run
    # (page faults). Not for the clusters we start (see the docs, "Performance:
    # batches of frames"). On Linux the workers are forked from this
    # process, which has imported everything they need: they start in a
    # fraction of a second instead of seconds (spawn re-imports numpy,
    # astropy, photutils and ccdphot_ext in each). No dashboard and no
    # statistical profiler (it samples every worker 100 times a second).
    settings = {'distributed.nanny.pre-spawn-environ.'
                'MALLOC_TRIM_THRESHOLD_': None,
                'distributed.worker.profile.enabled': False}
    if sys.platform.startswith('linux'):
        settings['distributed.worker.multiprocessing-method'] = 'fork'
    with dask.config.set(settings):
        # the scheduler's HTTP routes (metrics, health) on a free port:
        # its default 8787 may be another cluster's dashboard
        cluster = LocalCluster(n_workers=execution.workers, processes=True,
                               threads_per_worker=1, dashboard_address=None,
                               scheduler_kwargs={'dashboard_address': ':0'})
    new = new_client(cluster)
    if hasattr(os, 'setsid'):
        new.run(_own_session)
    return new, [new.close, cluster.close]


def _own_session():
    """
    Make this worker process a session of its own, as a ``dask worker``
    started from its own terminal is. With Linux's autogroup scheduling
    (the default on most desktops) all processes of one session share one
    session's CPU time: without this, the workers and the calling process
    would together get what one process gets on a busy machine.
    """
    try:
        os.setsid()
    except OSError:  # already a session or group leader
        pass
