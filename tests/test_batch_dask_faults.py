"""
Dask batches survive dying workers and a dying scheduler: a real ``dask
scheduler`` and ``dask worker`` processes (loopback only, random free
ports), one worker killed by its PID early in the run, or the scheduler
killed once frames came back. Every frame is then measured on the surviving
worker, or fails with a reason; what came back is kept; nothing hangs.

No limit here is a guess at how fast the machine is (the suite runs on
loaded CI machines, where a run can take ten times longer than on an idle
one): a batch is hung when it goes on with no live worker busy for several
times its execution's timeout (the time in which it must see that no worker
is left), and each limit counts from the moment the fault was made.
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
from clirun import ccdphot

from ccdphot_ext import BatchExecution, BoxAperture, photometer_frames

pytest.importorskip('distributed')

DASK = os.path.join(os.path.dirname(sys.executable), 'dask')
HOST = '127.0.0.1'

#: seconds a process may take to start and to connect (the scheduler and
#: the workers), or a batch to get its first task to a worker: a backstop
#: only, each wait ends as soon as it is met (a second on an idle machine)
STARTUP = 300.0
#: a batch counts as hung when it runs on this many times its execution's
#: timeout after a fault with no live worker busy: time for the scheduler
#: and the client to see the fault and for the client to build the table
#: on a loaded machine, far below for ever
HUNG = 6
#: seconds a batch may keep its workers busy after a fault: a backstop
#: against one that resubmits its frames for ever (a livelock); 16 frames
#: take 7 s on an idle machine
LIVELOCK = 600.0


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


#: fresh ports a scheduler is started on before the test gives up: the
#: port `_free_port` found can be taken by another process (another test
#: run's workers) before the scheduler binds it, and the scheduler exits
PORT_ATTEMPTS = 5


def _start_scheduler():
    """A ``dask scheduler`` process on a free port, and its address."""
    for _ in range(PORT_ATTEMPTS):
        port = _free_port()
        proc = subprocess.Popen([DASK, 'scheduler', '--host', HOST, '--port',
                                 str(port), '--no-dashboard', '--no-show'],
                                env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP
        while proc.poll() is None:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                return proc, f'tcp://{HOST}:{port}'
            except OSError:
                if time.monotonic() > deadline:
                    _stop(proc)
                    pytest.fail('the dask scheduler did not start in '
                                f'{STARTUP:.0f} s')
                time.sleep(0.2)
        _stop(proc)  # exited: its port was taken; try another
    pytest.fail(f'the dask scheduler exited on {PORT_ATTEMPTS} free ports')


@pytest.fixture(scope='module')
def scheduler():
    proc, address = _start_scheduler()
    try:
        yield address
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
    client = Client(scheduler, timeout=STARTUP)
    try:
        client.wait_for_workers(2, timeout=STARTUP)
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


def _kill_when_busy(client, pids, which, thread):
    """SIGKILL worker ``which`` as soon as it holds a task of the batch
    running in ``thread``; its address."""
    address = sorted(pids)[which]
    end = time.monotonic() + STARTUP
    while not client.processing().get(address):
        assert thread.is_alive(), 'the batch ended before the worker was busy'
        assert time.monotonic() < end, 'the worker never got a task'
        time.sleep(0.02)
    os.kill(pids[address], signal.SIGKILL)
    return address


def _join_while_busy(thread, client, timeout, dead):
    """
    Wait for the batch in ``thread`` to end after a fault; fail if it runs
    on for ``HUNG`` times its execution's ``timeout`` with no worker busy
    but the ``dead`` ones (it hangs), or for ``LIVELOCK`` seconds in all.
    """
    end = time.monotonic() + LIVELOCK
    idle_since = time.monotonic()
    while thread.is_alive():
        now = time.monotonic()
        if any(tasks for address, tasks in client.processing().items()
               if address not in dead):
            idle_since = now
        assert now - idle_since < HUNG * timeout, (
            f'the batch hung: no worker busy for {now - idle_since:.0f} s')
        assert now < end, f'the batch still runs after {LIVELOCK:g} s'
        thread.join(0.1)


def test_worker_killed_early_costs_no_frame(scheduler, workers, frames):
    client, pids, _ = workers
    names, boxes = frames
    # a short timeout: a loaded worker often returns nothing for longer,
    # which must not count as a stall while it is alive
    execution = BatchExecution(scheduler=scheduler, progress=False,
                               timeout=5.0)
    thread, box = _in_thread(lambda: photometer_frames(
        names, boxes, gain=2.0, execution=execution))
    killed = _kill_when_busy(client, pids, 0, thread)
    _join_while_busy(thread, client, execution.timeout, {killed})
    assert 'error' not in box, box.get('error')
    table = box['table']
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
    execution = BatchExecution(scheduler=scheduler, progress=False,
                               timeout=3.0)

    def run():
        with warnings.catch_warnings():  # one per failed frame, expected
            warnings.simplefilter('ignore', AstropyUserWarning)
            return photometer_frames(names, boxes, gain=2.0,
                                     execution=execution)

    thread, box = _in_thread(run)
    _kill_when_busy(client, pids, 0, thread)
    for pid in pids.values():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _join_while_busy(thread, client, execution.timeout, set(pids))
    assert 'error' not in box, box.get('error')
    table = box['table']
    failed = table[table['status'] == 'failed']
    assert len(failed) > 0
    assert all('no Dask worker left' in e or 'KilledWorker' in e
               for e in failed['error'])
    assert table.meta['n_failed'] == len(set(failed['frame']))


# -- the scheduler dies ------------------------------------------------------

#: a worker preload that makes each frame take 0.4 s more (a run long
#: enough to kill its scheduler in the middle)
_SLOW = """
import time
from ccdphot_ext.photometry import table
if not hasattr(table, 'unslowed'):  # Dask may import a preload twice
    table.unslowed = table.photometer
def slow(*args, **kwargs):
    time.sleep(0.4)
    return table.unslowed(*args, **kwargs)
table.photometer = slow
"""
#: the execution timeout of the runs whose scheduler dies
DASK_TIMEOUT = 10.0


@pytest.fixture
def doomed(tmp_path):
    """A scheduler of its own (the test kills it) and one slow worker."""
    preload = tmp_path / 'slow_frames.py'
    preload.write_text(_SLOW)
    proc, address = _start_scheduler()
    worker = subprocess.Popen([DASK, 'worker', address, '--host', HOST,
                               '--nthreads', '1', '--no-nanny',
                               '--no-dashboard', '--preload', str(preload)],
                              env=_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        from distributed import Client

        with Client(address, timeout=STARTUP) as client:
            client.wait_for_workers(1, timeout=STARTUP)
        yield proc, address
    finally:
        _stop(worker)
        _stop(proc)


def _kill_once_written(proc, out, batch):
    """SIGKILL the scheduler ``proc`` once ``out`` holds measured frames."""
    end = time.monotonic() + STARTUP
    while not os.path.exists(out):
        assert batch.poll() is None, batch.communicate()
        assert time.monotonic() < end, 'no frame came back'
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_scheduler_killed_keeps_what_came_back(doomed, frames, tmp_path):
    from astropy.table import QTable

    proc, address = doomed
    names, boxes = frames
    positions = tmp_path / 'stars.ecsv'
    QTable({'x': boxes.positions[:, 0],
            'y': boxes.positions[:, 1]}).write(positions)
    out = tmp_path / 'lc.ecsv'
    batch = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), 'ccdphot'), 'batch',
         *names, '--positions', str(positions), '--size', '11', '--gain',
         '2', '-o', str(out), '--scheduler', address, '--checkpoint',
         '0.01', '--dask-timeout', str(DASK_TIMEOUT), '-q'],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        _kill_once_written(proc, out, batch)
        stdout, err = batch.communicate(timeout=HUNG * DASK_TIMEOUT)
    finally:
        if batch.poll() is None:
            batch.kill()
            batch.communicate()
    assert batch.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    assert 'lost the Dask scheduler' in lines[0]
    table = QTable.read(out)
    assert table.meta['last_run']['complete'] is True
    # every frame: measured before the scheduler died, or failed with why
    assert sorted(set(table['frame'])) == names
    ok = table['status'] == 'ok'
    assert ok.any() and not ok.all()
    assert all(e.startswith(f'lost the Dask scheduler {address}')
               for e in table['error'][~ok])
    assert f'{int(ok.sum()) // 40} measured now' in stdout
    # --resume (serially, in this process) measures only the frames it cost
    code, stdout, err = ccdphot('batch', *names, '--positions', positions,
                                '--size', '11', '--gain', '2', '-o', out,
                                '--resume', '-q')
    assert code == 0, err
    assert f'{16 - int(ok.sum()) // 40} measured now' in stdout
    assert set(QTable.read(out)['status']) == {'ok'}


def test_scheduler_killed_in_a_call_returns_the_table(doomed, frames,
                                                      tmp_path):
    from ccdphot_ext.batch import FramesNotMeasuredWarning

    proc, address = doomed
    names, boxes = frames
    out = tmp_path / 'lc.ecsv'

    def run():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            table = photometer_frames(
                names, boxes, gain=2.0, output=out,
                execution=BatchExecution(scheduler=address,
                                         timeout=DASK_TIMEOUT,
                                         checkpoint_interval=0.01,
                                         progress=False))
        return table, caught

    thread, box = _in_thread(run)
    end = time.monotonic() + STARTUP
    while not out.exists():
        assert thread.is_alive() and time.monotonic() < end, box
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    thread.join(HUNG * DASK_TIMEOUT)
    assert not thread.is_alive(), 'the batch hung after its scheduler died'
    assert 'error' not in box, box.get('error')
    table, caught = box['table']
    failed = table['status'] == 'failed'
    assert failed.any() and not failed.all()
    assert sorted(set(table['frame'])) == names
    lost = [w for w in caught if w.category is FramesNotMeasuredWarning]
    assert len(lost) == 1
    n_lost = len(set(table['frame'][failed]))
    assert str(lost[0].message).startswith(f'{n_lost} of 16 frames not '
                                           'measured: lost the Dask '
                                           'scheduler')
