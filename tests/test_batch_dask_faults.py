"""
Dask batches survive dying workers: a real ``dask scheduler`` and ``dask
worker`` processes (loopback only, random free ports), one worker killed by
its PID early in the run. Every frame is then measured on the surviving
worker, or fails with a reason; nothing hangs.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import BatchExecution, BoxAperture, photometer_frames

pytest.importorskip('distributed')

DASK = os.path.join(os.path.dirname(sys.executable), 'dask')
HOST = '127.0.0.1'


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _env():
    return {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path),
            'DASK_DISTRIBUTED__WORKER__DAEMON': 'False'}


@pytest.fixture(scope='module')
def scheduler():
    port = _free_port()
    proc = subprocess.Popen([DASK, 'scheduler', '--host', HOST, '--port',
                             str(port), '--no-dashboard', '--no-show'],
                            env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, 'dask scheduler exited'
                assert time.monotonic() < deadline, 'scheduler did not start'
                time.sleep(0.2)
        yield f'tcp://{HOST}:{port}'
    finally:
        _stop(proc)


@pytest.fixture
def workers(scheduler):
    """Two single-threaded worker processes (no nanny: the PID is the
    worker itself); the test may kill them, teardown always stops them."""
    from distributed import Client

    procs = [subprocess.Popen([DASK, 'worker', scheduler, '--host', HOST,
                               '--nthreads', '1', '--no-nanny',
                               '--no-dashboard', '--name', f'w{i}'],
                              env=_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for i in range(2)]
    client = Client(scheduler, timeout=30)
    try:
        client.wait_for_workers(2, timeout=40)
        pids = client.run(os.getpid)
        yield client, pids, procs
    finally:
        client.close()
        for proc in procs:
            _stop(proc)


@pytest.fixture(scope='module')
def frames(tmp_path_factory):
    """16 names of one real 768 x 768 frame with 40 stars."""
    from ccdphot_ext.datasets.sample import simulate_frame

    d = tmp_path_factory.mktemp('dask_frames')
    rng = np.random.default_rng(3)
    xy = rng.uniform(30, 738, (40, 2))
    data, _, _ = simulate_frame((768, 768), 500.0,
                                {'x': xy[:, 0], 'y': xy[:, 1],
                                 'flux': np.full(40, 2e4)},
                                gain=2.0, read_noise=5.0, seed=rng)
    fits.PrimaryHDU(data.astype(np.float32),
                    fits.Header({'GAIN': 2.0, 'MJD-OBS': 60000.0,
                                 'BUNIT': 'adu'})).writeto(
        d / 'frame.fits')
    names = []
    for k in range(16):
        os.symlink(d / 'frame.fits', d / f'f{k:02d}.fits')
        names.append(str(d / f'f{k:02d}.fits'))
    return names, BoxAperture(xy, 11, 11)


def _in_thread(fn):
    box = {}

    def run():
        try:
            box['table'] = fn()
        except BaseException as exc:  # reported by the test
            box['error'] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def _kill_when_busy(client, pids, which, deadline=20.0):
    """SIGKILL worker ``which`` as soon as it holds a task."""
    address = sorted(pids)[which]
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if client.processing().get(address):
            os.kill(pids[address], signal.SIGKILL)
            return address
        time.sleep(0.02)
    raise AssertionError('the worker never got a task')


def test_worker_killed_early_costs_no_frame(scheduler, workers, frames):
    client, pids, _ = workers
    names, boxes = frames
    start = time.monotonic()
    thread, box = _in_thread(lambda: photometer_frames(
        names, boxes, gain=2.0,
        execution=BatchExecution(scheduler=scheduler, progress=False)))
    killed = _kill_when_busy(client, pids, 0)
    thread.join(50)
    assert not thread.is_alive(), 'the batch hung after a worker died'
    assert 'error' not in box, box.get('error')
    table = box['table']
    assert time.monotonic() - start < 55
    # every frame measured on the surviving worker, with the same numbers
    assert set(table['status']) == {'ok'}, table.meta['failures']
    assert table.meta['n_frames'] == 16
    sums = np.asarray(table['aperture_sum']).reshape(16, -1)
    np.testing.assert_array_equal(sums, sums[:1].repeat(16, axis=0))
    assert killed not in client.scheduler_info()['workers']


def test_all_workers_dead_fails_frames_with_a_reason(scheduler, workers,
                                                     frames):
    client, pids, _ = workers
    names, boxes = frames
    start = time.monotonic()
    def run():
        with warnings.catch_warnings():  # one per failed frame, expected
            warnings.simplefilter('ignore', AstropyUserWarning)
            return photometer_frames(
                names, boxes, gain=2.0,
                execution=BatchExecution(scheduler=scheduler,
                                         progress=False, timeout=3.0))

    thread, box = _in_thread(run)
    _kill_when_busy(client, pids, 0)
    for pid in pids.values():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    thread.join(45)
    assert not thread.is_alive(), 'the batch hung with no worker left'
    assert time.monotonic() - start < 50
    table = box['table']
    failed = table[table['status'] == 'failed']
    assert len(failed) > 0
    assert all('no Dask worker left' in e or 'KilledWorker' in e
               for e in failed['error'])
    assert table.meta['n_failed'] == len(set(failed['frame']))
