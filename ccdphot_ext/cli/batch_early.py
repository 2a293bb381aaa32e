# Licensed under a 3-clause BSD style license - see LICENSE
"""
``ccdphot batch --scheduler``: the frames sent to the running Dask cluster
as soon as the command line is parsed.

Importing numpy, astropy, photutils, scipy and ccdphot_ext's measuring code
takes about a second, as long as measuring 40 small frames on two workers.
So the command connects (in a thread) and sends its frames first, in tasks
that carry only plain settings: the frame paths, the parsed options and
the bytes of the ``--positions`` file. Each worker builds the run's
configuration from them once, with the command's own code
(`ccdphot_ext.cli.batch_config.frame_configuration`), and measures. Meanwhile the
command imports the rest and checks every argument as it always does; a
refused argument cancels the tasks, before anything is written. The
results of a task are kept only if the worker's configuration is the
command's (the run's parameters, as written in the output's ``meta``, are
equal); otherwise those frames are measured again with the command's.

This module imports nothing heavy: the tasks are sent before numpy,
astropy or photutils are loaded here.
"""

import json
import os
import threading
import time
from contextlib import contextmanager

from ..utils.daskclient import quietly

__all__ = []  # internal module

#: the largest ``--positions`` file sent with each early task (bytes); with
#: a larger one the frames go out once the command has checked everything
MAX_POSITIONS_BYTES = 4 * 2**20

#: options the workers do not need (the frames travel one task at a time)
_NOT_SENT = ('func', 'frames', 'frame_list')


@contextmanager
def early_tasks(args, frames):
    """
    Send the frames of ``ccdphot batch`` to its running cluster now, when
    the command line allows it; yield the `EarlyTasks` (or None), and
    cancel what is left of them at the end (a refused argument included).

    Parameters
    ----------
    args : `argparse.Namespace`
        The parsed ``ccdphot batch`` command line.
    frames : list of str
        The frame paths (FRAME arguments and ``--frame-list``).
    """
    early = EarlyTasks.send(args, frames)
    try:
        yield early
    finally:
        if early is not None:
            early.close()


def key(parameters):
    """The text that identifies a run's configuration: its parameters
    (`ccdphot_ext.batch.frames.run_parameters`) as sorted JSON."""
    return json.dumps(parameters, sort_keys=True)


def task_settings(args, first):
    """
    What every early task carries besides its frames (plain values): a
    token naming the run, the parsed options, the run's first frame and
    the ``--positions`` file's name and bytes; None when that file is not
    a regular file (a pipe is read once, by the checks), is larger than
    `MAX_POSITIONS_BYTES` or cannot be read.

    Parameters
    ----------
    args : `argparse.Namespace`
        The parsed command line.
    first : str
        The absolute path of the run's first frame.

    Returns
    -------
    settings : dict or None
    """
    try:
        if not os.path.isfile(args.positions) or os.path.getsize(
                args.positions) > MAX_POSITIONS_BYTES:
            return None
        with open(args.positions, 'rb') as fh:
            content = fh.read(MAX_POSITIONS_BYTES + 1)
    except OSError:  # the checks say why
        return None
    return {'token': os.urandom(12).hex(),
            'args': {name: value for name, value in vars(args).items()
                     if name not in _NOT_SENT},
            'first': first,
            'positions_name': os.path.basename(args.positions),
            'positions': content}


class EarlyTasks:
    """
    The tasks sent for a batch's frames before the command checked its
    arguments, and the client they run on.

    Made by `send`, which connects in a thread of its own (a scheduler
    that does not answer never delays a refusal); `tasks` waits for that
    thread and hands the tasks to the run; `close` cancels the tasks not
    handed over and closes the client.

    Parameters
    ----------
    frames : list of str
        The absolute frame paths, as the tasks carry them.
    names : list of str
        The frames' names in the output (as listed).
    """

    def __init__(self, frames, names):
        self.frames, self.names = frames, names
        self.client = self.error = None
        self.futures = {}  # future -> the indices of its frames
        self.expected = None
        self.closed = False
        self.lock = threading.Lock()
        self.thread = None
        self.started = time.perf_counter()

    @classmethod
    def send(cls, args, frames):
        """
        Start sending the frames of ``args`` (a ``--scheduler`` run that
        does not resume) to the cluster; None when this run does not send
        its frames early.

        Parameters
        ----------
        args : `argparse.Namespace`
            The parsed command line.
        frames : list of str
            The frame paths.

        Returns
        -------
        early : `EarlyTasks` or None
        """
        if args.scheduler is None or args.resume:
            return None
        paths = [os.path.abspath(f) for f in frames]
        if len(set(paths)) != len(paths):  # refused by the checks
            return None
        settings = task_settings(args, paths[0])
        if settings is None:
            return None
        try:
            import distributed  # noqa: F401
        except ImportError:  # the run says what to install
            return None
        early = cls(paths, [os.fspath(f) for f in frames])
        early.thread = threading.Thread(
            target=early._connect_and_send, args=(args, settings),
            name='ccdphot-batch-early', daemon=True)
        early.thread.start()
        return early

    def _connect_and_send(self, args, settings):
        from ..utils.daskclient import new_client
        from ..utils.tasks import guided_chunks

        try:
            client = new_client(args.scheduler, timeout=args.dask_timeout)
        except Exception as exc:  # named by the run, after the checks
            self.error = exc
            return
        with self.lock:
            if self.closed:  # refused meanwhile
                quietly(client.close)
                return
            self.client = client
            try:
                n = len(client.scheduler_info(n_workers=-1)['workers'])
                for indices in guided_chunks(len(self.frames), max(1, n)):
                    fut = client.submit(
                        measure_early, [self.frames[i] for i in indices],
                        [self.names[i] for i in indices], settings,
                        pure=False, retries=2)
                    self.futures[fut] = indices
            except Exception:  # the scheduler went away: the run sees it
                quietly(client.cancel, list(self.futures))
                self.futures = None

    def tasks(self, frames, parameters):
        """
        Wait for the connection; hand over the tasks sent, for the run of
        ``frames`` measured with ``parameters``.

        Parameters
        ----------
        frames : list of str
            The absolute paths of the frames the run measures.
        parameters : dict
            The run's parameters (`ccdphot_ext.batch.frames.run_parameters`).

        Returns
        -------
        tasks : dict or None
            Future -> the indices of its frames in ``frames``; None when
            no task covers them (the run sends its own). `client` is the
            client to use (None: `error` says why it could not connect).
        """
        self.thread.join()
        with self.lock:
            futures, self.futures = self.futures, None
        if not futures or list(frames) != self.frames:
            if futures:
                quietly(self.client.cancel, list(futures))
            return None
        self.expected = key(parameters)
        return futures

    def accept(self, value):
        """
        The frames' results of what an early task returned, or None when
        the worker's configuration was not the run's (measure them again).

        Parameters
        ----------
        value : tuple or None
            What `measure_early` returned.

        Returns
        -------
        results : list of `~ccdphot_ext.batch.worker.FrameResult` or None
        """
        if isinstance(value, tuple) and len(value) == 2 \
                and value[0] == self.expected:
            return value[1]
        return None

    def close(self):
        """Cancel the tasks not handed over and close the client (once)."""
        with self.lock:
            self.closed = True
            client, futures = self.client, self.futures
            self.client = self.futures = None
        if client is None:
            return
        if futures:
            quietly(client.cancel, list(futures))
        quietly(client.close)


# -- on the worker ------------------------------------------------------------

#: the configuration of the run this worker process measures (one entry:
#: token -> (config, key) or None), built once per run
_BUILT = {}


def measure_early(frames, names, settings):
    """
    A Dask task sent before the command checked its arguments: build the
    run's configuration from ``settings`` (once per run in this worker
    process), measure ``frames`` and make their rows into the output's
    text (the command, busy with its imports meanwhile, then only writes).

    Parameters
    ----------
    frames : list of str
        Absolute frame paths.
    names : list of str
        The frames' names in the output (as the command lists them).
    settings : dict
        ``token`` (the run), ``args`` (the parsed options), ``first``
        (the run's first frame, checked as the command checks it),
        ``positions_name`` and ``positions`` (the ``--positions`` file's
        name and bytes).

    Returns
    -------
    value : tuple or None
        ``(key, results)``: the `key` of the configuration used and the
        frames' results; None when no configuration could be built (the
        command refuses its arguments, or measures these frames itself).
    """
    from ..batch.execution import measure_chunk
    from ..batch.frames import head_start_text

    token = settings['token']
    if token not in _BUILT:
        _BUILT.clear()
        _BUILT[token] = _configured(settings)
    built = _BUILT[token]
    if built is None:
        return None
    config, ids, config_key = built
    results = measure_chunk(frames, config)
    if config.n_rows:  # the text of the task's frames, made together
        text = head_start_text(names, results, config, ids)
        for res in results:
            res.text = text
    return config_key, results


def _configured(settings):
    """(config, ids, key) from the settings, or None when they are
    refused."""
    import argparse
    import tempfile
    import warnings

    from ..batch.frames import run_parameters
    from .batch_config import frame_configuration

    args = argparse.Namespace(**settings['args'])
    try:
        with tempfile.TemporaryDirectory(prefix='ccdphot-early-') as folder, \
                warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the command says them
            args.positions = os.path.join(folder, settings['positions_name'])
            with open(args.positions, 'wb') as fh:
                fh.write(settings['positions'])
            config, ids = frame_configuration(args, settings['first'])
    except Exception:  # refused: the command says why
        return None
    return config, ids, key(run_parameters(config, ids))
