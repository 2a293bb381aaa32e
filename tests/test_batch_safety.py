"""
Batches never lose data: a locked output, outputs that are inputs, every
argument checked before the first frame, resume from any valid state (an
all-failed table, a corrupt file named), SIGTERM checkpoints, stale
temporary files, time order, and out-of-memory frames.

Command-line cases run ``ccdphot`` in this process (``clirun``) while the
installed command in a child process finds the output locked by this one.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot, installed_ccdphot

from ccdphot_ext import BoxAperture, photometer_frames
from ccdphot_ext.batch import OutputLockedError, output_lock
from ccdphot_ext.datasets.sample import simulate_frame

X, Y = [18.0, 45.0, 70.0], [20.0, 34.0, 24.0]


def _write_frame(path, k, mjd):
    data, sigma, _ = simulate_frame((48, 90), 300.0,
                                    {'x': X, 'y': Y,
                                     'flux': [2e4, 4e4, 3e4]},
                                    gain=1.5, read_noise=5.0, seed=k)
    CCDData(data, unit='adu', uncertainty=StdDevUncertainty(sigma),
            meta=fits.Header({'GAIN': 1.5, 'EXPTIME': 30.0,
                              'MJD-OBS': mjd})).write(path)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('batch_safety')
    frames = []
    for k in range(6):
        path = d / f'frame{k}.fits'
        _write_frame(path, k, 60400.0 + k / 48)
        frames.append(str(path))
    QTable({'id': [7, 8, 9], 'x_center': X, 'y_center': Y}).write(
        d / 'stars.ecsv')
    return d, frames


def _boxes():
    return BoxAperture(np.c_[X, Y], 15, 15)


def _failing(*args, **kwargs):
    """photometer_frames on frames that fail: each says so in a warning."""
    with pytest.warns(AstropyUserWarning, match='frame failed'):
        return photometer_frames(*args, **kwargs)


def _sha(path):
    import hashlib
    with open(path, 'rb') as fh:
        return hashlib.sha256(fh.read()).hexdigest()


# -- command line: every refusal before any work -----------------------------

@pytest.fixture(scope='module')
def cli(files):
    d, frames = files
    (d / 'corrupt.ecsv').write_text('# %ECSV 1.0\n# ---\n# not: [yaml\n')
    (d / 'busy.ecsv').write_text('# held by another run\n')
    batch = ['batch', *frames[:3], '--positions', 'stars.ecsv', '--size',
             '15', '-q']
    cases = {
        'busy': [*batch, '-o', 'busy.ecsv'],
        'onto_frame': [*batch, '-o', frames[1]],
        'onto_positions': [*batch, '-o', './stars.ecsv'],
        'fits_name': [*batch, '-o', 'lc.fits'],
        'unknown_target': [*batch, '-o', 'diff_src.ecsv', '--targets', '99',
                           '--comparisons', '8,9'],
        'frame_twice': [*batch[:4], frames[0].replace(str(d), '.'),
                        *batch[4:], '-o', 'twice.ecsv'],
        'corrupt_resume': [*batch, '-o', 'corrupt.ecsv', '--resume'],
    }
    before = {p: _sha(p) for p in [*frames, d / 'stars.ecsv',
                                   d / 'corrupt.ecsv', d / 'busy.ecsv']}
    with output_lock(d / 'busy.ecsv'):  # another run holds this output
        results = {name: ccdphot(*argv, cwd=d)
                   for name, argv in cases.items()}
        results['busy (installed)'] = installed_ccdphot(*cases['busy'],
                                                        cwd=d)
    return d, results, before


@pytest.mark.parametrize('case, words', [
    ('busy', ['busy.ecsv', 'being written by another run', 'pid']),
    ('busy (installed)', ['busy.ecsv', 'being written by another run',
                          'pid']),
    ('onto_frame', ['same file as FRAME', 'frame1.fits']),
    ('onto_positions', ['same file as --positions']),
    ('fits_name', ['lc.fits', 'ECSV']),
    ('unknown_target', ['--targets', '99']),
    ('frame_twice', ['frame0.fits', 'listed twice']),
    ('corrupt_resume', ['corrupt.ecsv', 'cannot read']),
])
def test_cli_refuses_before_any_work(cli, case, words):
    d, results, before = cli
    code, stdout, err = results[case]
    assert code == 2, (stdout, err)
    assert len(err.strip().splitlines()) == 1 and 'Traceback' not in err
    for word in words:
        assert word in err, err
    assert {p: _sha(p) for p in before} == before  # nothing touched
    for name in ('lc.fits', 'diff_src.ecsv', 'diff_src_diff.ecsv',
                 'twice.ecsv'):
        assert not (d / name).exists()
    assert not list(d.glob('.*.tmp')) and not list(d.glob('.*.lock'))


# -- the lock ---------------------------------------------------------------

def test_second_writer_is_refused_and_lock_released(files, tmp_path):
    _, frames = files
    out = tmp_path / 'lc.ecsv'
    with output_lock(out) as lock_path:
        with pytest.raises(OutputLockedError, match='another run'):
            photometer_frames(frames[:2], _boxes(), output=out)
        assert not out.exists()
        with open(lock_path) as fh:
            assert fh.read().startswith(f'pid {os.getpid()}')
    table = photometer_frames(frames[:2], _boxes(), output=out)
    assert len(QTable.read(out)) == len(table) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ['lc.ecsv']


def test_lock_of_a_killed_run_does_not_block(files, tmp_path):
    out = tmp_path / 'lc.ecsv'
    code = textwrap.dedent(f'''
        import sys, time
        from ccdphot_ext.batch.lock import output_lock
        with output_lock({str(out)!r}):
            print('locked', flush=True)
            time.sleep(60)
    ''')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, '-c', code], env=env,
                          stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout.readline().strip() == 'locked'
            with pytest.raises(OutputLockedError, match=f'pid {proc.pid}'):
                with output_lock(out):
                    pass
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    # the kernel dropped the dead run's lock: the output is free
    table = photometer_frames(files[1][:1], _boxes(), output=out)
    assert len(table) == 3


def test_stale_temporary_files_of_the_output_are_removed(files, tmp_path):
    out = tmp_path / 'lc.ecsv'
    stale = tmp_path / '.lc.ecsv.k9x_2abc.tmp'  # left by a kill -9
    other = tmp_path / '.other.ecsv.k9x_2abc.tmp'
    stale.write_text('# half a table')
    other.write_text('# another output, not ours')
    photometer_frames(files[1][:1], _boxes(), output=out)
    assert not stale.exists() and other.exists()


# -- arguments, resume, order ------------------------------------------------

def test_frame_listed_twice_is_refused_before_any_frame(files, tmp_path):
    _, frames = files
    out = tmp_path / 'lc.ecsv'
    spelled = os.path.join(os.path.dirname(frames[2]), '.',
                           os.path.basename(frames[2]))
    with pytest.raises(ValueError, match='frame2.fits is listed twice '
                                         r'\(positions 2 and 3\)'):
        photometer_frames([*frames[:3], spelled], _boxes(), output=out)
    assert not out.exists()


def test_output_that_is_a_frame_is_refused(files):
    _, frames = files
    before = _sha(frames[0])
    with pytest.raises(ValueError, match='same file as frame'):
        photometer_frames(frames[:2], _boxes(), output=frames[0])
    assert _sha(frames[0]) == before


def test_resume_after_an_all_failed_table(files, tmp_path):
    d, frames = files
    late = [str(tmp_path / f'late{k}.fits') for k in range(2)]
    out = tmp_path / 'lc.ecsv'
    first = _failing(late, _boxes(), output=out)
    assert set(first['status']) == {'failed'}
    for k, path in enumerate(late):
        _write_frame(path, 10 + k, 60401.0 + k / 48)
    lc = photometer_frames(late, _boxes(), resume_from=out, output=out)
    assert set(lc['status']) == {'ok'}
    assert str(lc['aperture_sum'].unit) == 'adu'
    fresh = photometer_frames(late, _boxes())
    np.testing.assert_array_equal(lc['aperture_sum'], fresh['aperture_sum'])


def test_resume_keeps_other_failed_frames_without_their_numbers(files,
                                                                tmp_path):
    _, frames = files
    out = tmp_path / 'lc.ecsv'
    missing = str(tmp_path / 'missing.fits')
    _failing([missing], _boxes(), output=out)
    lc = photometer_frames(frames[:2], _boxes(), resume_from=out, output=out)
    assert lc['status'].tolist() == ['ok'] * 6 + ['failed'] * 3
    assert 'no such file' in lc['error'][-1]
    assert lc.meta['n_failed'] == 1


def test_corrupt_resume_file_is_named(files, tmp_path):
    bad = tmp_path / 'lc.ecsv'
    bad.write_bytes(b'\x00\x01 not a table at all')
    with pytest.raises(ValueError, match=f'resume_from: cannot read {bad}'):
        photometer_frames(files[1][:1], _boxes(), resume_from=bad)


def test_resumed_table_is_in_time_order(files, tmp_path):
    _, frames = files
    out = tmp_path / 'lc.ecsv'
    photometer_frames(frames[3:], _boxes(), output=out)
    lc = photometer_frames(frames, _boxes(), resume_from=out, output=out)
    assert lc.meta['last_run']['frames_measured'] == 3
    mjd = lc['time'].mjd
    assert np.all(np.diff(mjd) >= 0)
    assert list(dict.fromkeys(lc['frame'])) == frames


# -- SIGTERM -----------------------------------------------------------------

def test_sigterm_checkpoints_and_the_run_resumes(files, tmp_path):
    _, frames = files
    out = tmp_path / 'lc.ecsv'
    marker = tmp_path / 'two_done'
    code = textwrap.dedent(f'''
        import time
        import numpy as np
        from ccdphot_ext import BatchExecution, BoxAperture, photometer_frames
        from ccdphot_ext.photometry import table
        measure, seen = table.photometer, []
        def slow(*args, **kwargs):  # the third frame takes long
            seen.append(1)
            if len(seen) == 3:
                open({str(marker)!r}, 'w').close()
                time.sleep(20)
            return measure(*args, **kwargs)
        table.photometer = slow
        photometer_frames({frames!r}, BoxAperture(np.c_[{X}, {Y}], 15, 15),
                          output={str(out)!r},
                          execution=BatchExecution(checkpoint_interval=1000))
    ''')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, '-c', code], env=env,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            end = time.monotonic() + 40
            while not marker.exists():
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < end
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert proc.returncode != 0
    partial = QTable.read(out)
    assert partial.meta['last_run']['complete'] is False
    assert sorted(set(partial['frame'])) == frames[:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['lc.ecsv',
                                                          'two_done']
    lc = photometer_frames(frames, _boxes(), resume_from=out, output=out)
    assert lc.meta['last_run']['frames_measured'] == 4
    assert set(lc['status']) == {'ok'} and len(lc) == 18


# -- out of memory -----------------------------------------------------------

def test_memory_error_names_the_frame_size(files, monkeypatch):
    from ccdphot_ext.photometry import table

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(table, 'photometer', exhausted)
    with pytest.warns(AstropyUserWarning, match='out of memory'):
        lc = photometer_frames(files[1][:1], _boxes())
    assert lc['error'][0] == ('MemoryError: out of memory measuring this '
                              'frame (90 x 48 float64 pixels, 34 KiB in '
                              'memory)')
