# Licensed under a 3-clause BSD style license - see LICENSE
"""
Running the frames of a batch: serially in this process or on a Dask
cluster.

On Dask every task is self-sufficient: it carries the (small) run
configuration and the paths of a few frames, which the worker reads itself,
so no task depends on data held by one worker. The scheduler moves the
tasks of a worker that dies to the surviving workers; a task that still
fails is split into one task per frame, so a frame that kills its worker
costs only itself, and its row names the worker. If no worker is left, or
the scheduler stops answering, for ``timeout`` seconds, the frames not yet
measured fail with that reason instead of waiting for ever.
"""

import math
import os
import sys

import numpy as np

from .worker import FrameResult, measure_frame

__all__ = []

#: frames per Dask task at most (small frames are grouped to cut the
#: per-task overhead; a few tasks per worker keep the load balanced)
_MAX_CHUNK = 8


def run_serial(frames, config, record):
    for k, frame in enumerate(frames):
        record(k, measure_frame(frame, config))


def _measure_chunk(frames, config):
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


def _chunks(n_frames, n_workers):
    """
    Index groups, large first and single frames at the end (guided
    scheduling): few tasks for many small frames, and no worker left idle
    while another finishes a big last group.
    """
    groups, start = [], 0
    while start < n_frames:
        size = max(1, min(_MAX_CHUNK,
                          math.ceil((n_frames - start) / (4 * n_workers))))
        groups.append(list(range(start, min(start + size, n_frames))))
        start += size
    return groups


def _n_workers(client):
    return len(client.scheduler_info(n_workers=-1)['workers'])


def run_dask(client, frames, config, record, *, timeout=60.0):
    from distributed import wait

    pending = {}

    def submit(indices):
        fut = client.submit(_measure_chunk, [frames[i] for i in indices],
                            config, pure=False, retries=2)
        pending[fut] = indices

    for indices in _chunks(len(frames), max(1, _n_workers(client))):
        submit(indices)
    try:
        while pending:
            try:
                done = wait(list(pending), timeout=timeout,
                            return_when='FIRST_COMPLETED').done
            except TimeoutError:
                reason = _stalled(client)
                if reason is None:
                    continue  # workers are busy with long frames
                for indices in pending.values():
                    for i in indices:
                        record(i, FrameResult.failed(reason))
                pending.clear()
                return
            for fut in done:
                _collect(fut, pending.pop(fut), submit, record)
    finally:
        client.cancel(list(pending))


def _collect(fut, indices, submit, record):
    try:
        results = fut.result()
    except Exception as exc:  # the task was lost (its workers died)
        if len(indices) > 1:  # isolate the frame that kills its worker
            for i in indices:
                submit([i])
            return
        text = ' '.join(str(exc).split())
        results = [FrameResult.failed(f'{type(exc).__name__}: {text}')]
    finally:
        fut.release()
    for i, res in zip(indices, results, strict=True):
        record(i, res)


def _stalled(client):
    """Why nothing can finish (None: workers are alive, keep waiting)."""
    try:
        n = _n_workers(client)
    except Exception as exc:  # any failure to reach the scheduler counts
        return f'lost the Dask scheduler ({type(exc).__name__}: {exc})'
    if n == 0:
        return 'no Dask worker left (all died or none connected)'
    return None


def open_client(client, workers, scheduler, timeout=60.0):
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
        try:
            new = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise OSError(f'scheduler {scheduler}: cannot connect within '
                          f'{timeout:g} s ({exc})') from None
        return new, [new.close]
    if isinstance(workers, (bool, np.bool_)) or not isinstance(
            workers, (int, np.integer)) or workers < 1:
        raise ValueError(f'workers must be a positive integer, got {workers!r}')
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
        cluster = LocalCluster(n_workers=int(workers), processes=True,
                               threads_per_worker=1, dashboard_address=None)
    new = Client(cluster)
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
