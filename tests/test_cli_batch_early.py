"""
``ccdphot batch --scheduler`` sends its frames to the running cluster
before it imports the measuring code and checks its arguments: the output
is still the serial run's, byte for byte; a worker whose configuration is
not the command's has its frames measured again; a refused argument
cancels the tasks, writes nothing, and leaves the cluster usable.
"""

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.table import QTable
from batchframes import write_frames
from clirun import ccdphot

import ccdphot_ext.batch.frames as frames_module
import ccdphot_ext.cli.batch as cli_batch
import ccdphot_ext.cli.batch_config as batch_config
import ccdphot_ext.cli.batch_early as batch_early
from ccdphot_ext.batch.frames import run_parameters
from ccdphot_ext.cli.main import build_parser
from ccdphot_ext.utils.ecsv import LineCache

pytest.importorskip('distributed')

@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Six frames (one without a time) and a file that is not a frame."""
    frames, bad, positions = write_frames(
        tmp_path_factory.mktemp('cli_batch_early'), 6, untimed=(3,))
    frames.insert(2, bad)
    return {'frames': frames, 'positions': positions}


@pytest.fixture(scope='module')
def cluster():
    """A running 2-worker cluster (its scheduler's address), and a client
    that looks at it."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=':0') as local, \
            Client(local) as client:
        yield local.scheduler_address, client


def _args(files, out, *extra):
    return ['batch', *files['frames'], '--positions', files['positions'],
            '--radius', '5', '--sky', 'annulus', '--annulus', '9,13',
            '--recenter', '-q', '-o', str(out), *extra]


def _body(path):
    """The file's lines, but the run's timing and execution line, and the
    Dask worker a failed frame names."""
    with open(path) as fh:
        text = re.sub(r", worker: '[^']*'", '', fh.read())
    return [line for line in text.splitlines() if 'last_run:' not in line]


@pytest.fixture
def watched(monkeypatch):
    """Every early task's outcome on the client (accepted or measured
    again), the tasks sent once the command reaches its checks."""
    seen = {'accepted': [], 'sent': [], 'made_here': 0}
    accept, checked_run = batch_early.EarlyTasks.accept, cli_batch._checked_run
    prepare_text = frames_module._Run.prepare_text

    def made_here(self, k):
        seen['made_here'] += 1
        prepare_text(self, k)

    def accepting(self, value):
        results = accept(self, value)
        seen['accepted'].append(results is not None)
        return results

    def sent_first(args, frames, early):
        # the connection and the tasks before the checks (the checks are
        # instant here: this process has imported everything already)
        if early is not None:
            early.thread.join()
            seen['sent'].append(len(early.futures or ()))
        return checked_run(args, frames, early)

    monkeypatch.setattr(batch_early.EarlyTasks, 'accept', accepting)
    monkeypatch.setattr(frames_module._Run, 'prepare_text', made_here)
    monkeypatch.setattr(cli_batch, '_checked_run', sent_first)
    return seen


def _idle(client, deadline=20.0):
    """True once the scheduler holds no task (cancelled ones released)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if not client.run_on_scheduler(
                lambda dask_scheduler: len(dask_scheduler.tasks)):
            return True
        time.sleep(0.05)
    return False


def test_early_tasks_write_the_serial_file(files, cluster, watched,
                                          tmp_path):
    address, client = cluster
    serial, dask = tmp_path / 'serial.ecsv', tmp_path / 'dask.ecsv'
    code, _, err_serial = ccdphot(*_args(files, serial))
    assert code == 1, err_serial  # the corrupt frame
    code, stdout, err = ccdphot(*_args(files, dask, '--scheduler', address))
    assert code == 1, err
    assert 'dask' in stdout
    assert watched['sent'] and watched['sent'][0] > 0
    assert watched['accepted'] and all(watched['accepted'])
    assert watched['made_here'] == 0  # every row's text came with it
    assert _body(dask) == _body(serial)
    # the same one-line reports (the failed frame names its worker)
    assert err.replace(err[err.index(' (on Dask'):err.index('):') + 1],
                       '') == err_serial
    meta = QTable.read(dask).meta
    assert meta['failures'][0]['worker'].startswith('tcp://127.0.0.1:')
    assert _idle(client)


#: ``ccdphot ARGV`` in a fresh process, then the photutils modules it
#: imported
_CLIENT = ('import sys\n'
           'from ccdphot_ext.cli.main import main\n'
           'code = main(sys.argv[1:])\n'
           "print(sorted(m for m in sys.modules if m.split('.')[0] == "
           "'photutils'))\n"
           'sys.exit(code)\n')


@pytest.mark.parametrize('shape', [('--size', '9,7'), ('--radius', '5')])
def test_the_client_imports_no_photutils(files, cluster, tmp_path, shape):
    # the command's own process describes and checks the circles and
    # boxes and collects the workers' rows without building an aperture
    # or importing photutils; its file is the serial run's
    address, _ = cluster
    argv = ['batch', *files['frames'], '--positions', files['positions'],
            *shape, '-q']
    serial, dask = tmp_path / 'serial.ecsv', tmp_path / 'dask.ecsv'
    code, _, err = ccdphot(*argv, '-o', serial)
    assert code == 1, err  # the corrupt frame
    run = subprocess.run([sys.executable, '-c', _CLIENT, *argv, '-o',
                          str(dask), '--scheduler', address],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert 'dask' in run.stdout
    assert run.stdout.splitlines()[-1] == '[]'
    assert _body(dask) == _body(serial)


def test_a_worker_configured_otherwise_measures_again(files, cluster,
                                                     watched, tmp_path,
                                                     monkeypatch):
    """The workers' results are kept only with the command's own
    configuration: here the command's key never matches."""
    address, client = cluster
    serial, dask = tmp_path / 'serial.ecsv', tmp_path / 'dask.ecsv'
    ccdphot(*_args(files, serial))
    monkeypatch.setattr(batch_early, 'key', lambda parameters: 'the client')
    code, _, err = ccdphot(*_args(files, dask, '--scheduler', address))
    assert code == 1, err
    assert watched['sent'][0] > 0
    assert watched['accepted'] and not any(watched['accepted'])
    assert watched['made_here'] == len(files['frames'])
    assert _body(dask) == _body(serial)
    assert _idle(client)


@pytest.mark.parametrize('extra, words', [
    (['--targets', '7', '--comparisons', '8,99'],
     '--comparisons: no star with id 99'),
    (['--radius', '5000'], '--radius 5000'),
    (['--hdu', '3'], '--hdu 3'),
], ids=['unknown_star', 'huge_aperture', 'missing_hdu'])
def test_a_refused_argument_cancels_the_tasks(files, cluster, watched,
                                              tmp_path, extra, words):
    address, client = cluster
    out = tmp_path / 'lc.ecsv'
    code, _, err_serial = ccdphot(*_args(files, out, *extra))
    assert code == 2 and words in err_serial
    code, stdout, err = ccdphot(*_args(files, out, *extra, '--scheduler',
                                       address))
    assert watched['sent'][-1] > 0  # sent, then refused
    assert (code, stdout, err) == (2, '', err_serial)
    assert len(err.splitlines()) == 1
    assert os.listdir(tmp_path) == []  # nothing written, not even a lock
    assert _idle(client)
    # the cluster measures the next run
    code, _, err = ccdphot(*_args(files, out, '--scheduler', address))
    assert code == 1, err
    table = QTable.read(out)
    assert len(table) == 3 * len(files['frames'])
    assert np.sum(table['status'] == 'ok') == 3 * (len(files['frames']) - 1)


def test_an_unreachable_scheduler_never_delays_a_refusal(files, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    out = tmp_path / 'lc.ecsv'
    start = time.monotonic()
    code, _, err = ccdphot(*_args(files, out, '--targets', '7',
                                  '--comparisons', '99', '--scheduler',
                                  f'tcp://127.0.0.1:{port}',
                                  '--dask-timeout', '30'))
    assert code == 2 and '--comparisons: no star with id 99' in err
    assert time.monotonic() - start < 10
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('extra, refused', [
    ([], False),
    (['--radius', '5000'], True),
    (['--hdu', '3'], True),
    (['--sky', 'mean', '--annulus', '9,13'], True),
], ids=['accepted', 'huge_aperture', 'missing_hdu', 'annulus_unused'])
def test_a_worker_measures_nothing_the_command_refuses(files, tmp_path,
                                                       extra, refused):
    """The task itself, here: a worker builds the command's configuration
    (the same parameters) or measures nothing (a huge aperture would
    exhaust its memory before the command refuses it)."""
    args = build_parser().parse_args(_args(files, tmp_path / 'lc.ecsv',
                                           *extra))
    frames = [os.path.abspath(f) for f in files['frames']]
    settings = batch_early.task_settings(args, frames[0])
    value = batch_early.measure_early(frames[:2], files['frames'][:2],
                                      settings)
    if refused:
        assert value is None
        return
    config, ids = batch_config.frame_configuration(args, frames[0])
    key, results = value
    assert key == batch_early.key(run_parameters(config, ids))
    assert [r.status for r in results] == ['ok', 'ok']
    assert np.all(np.isfinite(results[0].columns['aperture_sum']))
    # the rows made into the output's text on the worker: the text the
    # command writes for them
    cache = LineCache(3)
    for res in results:
        cache.merge(res.text)
    out = tmp_path / 'two.ecsv'
    code, _, err = ccdphot(*_args({**files, 'frames': files['frames'][:2]},
                                  out))
    assert code == 0, err
    with open(out) as fh:
        rows = [line for line in fh.read().splitlines()
                if not line.startswith('#')][1:]
    assert sorted(cache.texts().values()) == sorted(
        '\n'.join(rows[3 * k:3 * k + 3]) for k in range(2))


def test_quietly_calls_and_swallows_a_failed_clean_up():
    """The one Dask clean-up of the batch run and the early tasks: called
    with its arguments; an error (the scheduler gone) is swallowed."""
    from ccdphot_ext.utils.daskclient import quietly

    calls = []
    quietly(calls.append, 'closed')
    assert calls == ['closed']

    def gone(*args):
        calls.append(args)
        raise OSError('the scheduler is gone')

    assert quietly(gone, 1, 2) is None
    assert calls == ['closed', (1, 2)]
