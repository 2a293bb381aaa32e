"""
Measured work is never lost: every frame is in the table or listed as
failed with its reason. Resumes match frames by file identity (not the
name as typed) and keep only complete, unchanged frames; a table without
its recorded parameters or identities is refused; frames with and without
a WCS stack in a resumed run as in one run; a bad time costs only that
frame's time; the final write completes under SIGINT and SIGTERM (real
signals to a real process); ids that do not fit 64 bits are refused.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS
from clirun import ccdphot

from ccdphot_ext import BoxAperture, photometer_frames
from ccdphot_ext.datasets.sample import simulate_frame

X, Y = [18.0, 45.0, 70.0], [20.0, 34.0, 24.0]
IDS = [7, 8, 9]


def _wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [1.0, 1.0]
    w.wcs.cdelt = [-1e-4, 1e-4]
    return w


def _write_frame(path, k, header=None, wcs=False):
    data, sigma, _ = simulate_frame((48, 90), 300.0,
                                    {'x': X, 'y': Y,
                                     'flux': [2e4, 4e4, 3e4]},
                                    gain=1.5, read_noise=5.0, seed=k)
    meta = {'GAIN': 1.5, 'EXPTIME': 30.0, 'MJD-OBS': 60400.0 + k / 48}
    meta.update(header or {})
    CCDData(data, unit='adu', uncertainty=StdDevUncertainty(sigma),
            meta=fits.Header(meta), wcs=_wcs() if wcs else None).write(
        path, overwrite=True)


@pytest.fixture
def night(tmp_path):
    """Six frames in ``night/``, three stars."""
    d = tmp_path / 'night'
    d.mkdir()
    for k in range(6):
        _write_frame(d / f'frame{k}.fits', k)
    return d


def _boxes(size=15):
    return BoxAperture(np.c_[X, Y], size, size)


def _names(table):
    return list(dict.fromkeys(str(n) for n in table['frame']))


def _same_numbers(a, b):
    for name in ('aperture_sum', 'aperture_sum_err', 'flags'):
        np.testing.assert_array_equal(
            np.asarray(getattr(a[name], 'value', a[name])),
            np.asarray(getattr(b[name], 'value', b[name])))


# -- resume: frames matched by identity, done only when complete -------------

def test_resume_from_another_folder_matches_frames_by_identity(
        night, tmp_path, monkeypatch):
    out = tmp_path / 'lc.ecsv'
    monkeypatch.chdir(night)
    names = [f'frame{k}.fits' for k in range(3)]
    photometer_frames(names, _boxes(), ids=IDS, output=out)
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # every frame, spelled from another folder
    frames = [f'../night/frame{k}.fits' for k in range(6)]
    lc = photometer_frames(frames, _boxes(), ids=IDS, output=out,
                           resume_from=out)
    assert lc.meta['last_run']['frames_measured'] == 3
    assert len(lc) == 18 and _names(lc) == frames
    fresh = photometer_frames(frames, _boxes(), ids=IDS)
    _same_numbers(lc, fresh)
    # the identities hold absolute paths: a third folder matches too
    monkeypatch.chdir(tmp_path)
    again = photometer_frames([str(night / f'frame{k}.fits')
                               for k in range(6)], _boxes(), ids=IDS,
                              resume_from=out)
    assert again.meta['last_run']['frames_measured'] == 0
    assert len(again) == 18


def test_resume_after_the_folder_moved(night, tmp_path):
    out = tmp_path / 'lc.ecsv'
    photometer_frames([str(night / f'frame{k}.fits') for k in range(3)],
                      _boxes(), ids=IDS, output=out)
    moved = tmp_path / 'archive' / 'night'
    moved.parent.mkdir()
    night.rename(moved)  # the files keep their size and modification time
    frames = [str(moved / f'frame{k}.fits') for k in range(6)]
    lc = photometer_frames(frames, _boxes(), ids=IDS, output=out,
                           resume_from=out)
    assert lc.meta['last_run']['frames_measured'] == 3
    assert _names(lc) == frames and len(lc) == 18
    assert [e['path'] for e in lc.meta['frame_files']] == frames


def test_resume_measures_a_changed_file_again(night, tmp_path):
    out = tmp_path / 'lc.ecsv'
    frames = [str(night / f'frame{k}.fits') for k in range(3)]
    photometer_frames(frames, _boxes(), ids=IDS, output=out)
    _write_frame(frames[1], 40)  # re-reduced after it was measured
    with pytest.warns(AstropyUserWarning, match='frame1.fits: the file '
                                                'changed since it was '
                                                'measured'):
        lc = photometer_frames(frames, _boxes(), ids=IDS, output=out,
                               resume_from=out)
    assert lc.meta['last_run']['frames_measured'] == 1
    _same_numbers(lc, photometer_frames(frames, _boxes(), ids=IDS))


@pytest.mark.parametrize('damage', ['row_removed', 'row_doubled'])
def test_resume_measures_a_frame_with_missing_rows_again(night, tmp_path,
                                                         damage):
    out = tmp_path / 'lc.ecsv'
    frames = [str(night / f'frame{k}.fits') for k in range(3)]
    photometer_frames(frames, _boxes(), ids=IDS, output=out)
    table = QTable.read(out)  # another tool truncates the table
    if damage == 'row_removed':
        table.remove_row(4)
    else:
        table.insert_row(4, table[4])
    table.write(out, overwrite=True)
    with pytest.warns(AstropyUserWarning, match=r'frame1.fits: .* holds '
                      rf'{2 if damage == "row_removed" else 4} row\(s\) '
                      r'of this frame, not one per star \(3\): measured'):
        lc = photometer_frames(frames, _boxes(), ids=IDS, output=out,
                               resume_from=out)
    assert lc.meta['last_run']['frames_measured'] == 1
    assert lc['id'].tolist() == IDS * 3
    _same_numbers(lc, photometer_frames(frames, _boxes(), ids=IDS))


@pytest.mark.parametrize('key', ['parameters', 'frame_files'])
def test_resume_without_recorded_parameters_is_refused(night, tmp_path,
                                                       key):
    out = tmp_path / 'lc.ecsv'
    frames = [str(night / f'frame{k}.fits') for k in range(3)]
    photometer_frames(frames, _boxes(9), ids=IDS, output=out)
    table = QTable.read(out)  # re-saved by another tool, meta stripped
    del table.meta[key]
    table.write(out, overwrite=True)
    before = out.read_bytes()
    words = ('records no parameters' if key == 'parameters'
             else 'records no file identity')
    with pytest.raises(ValueError, match=f'resume_from: {out} {words}'):
        photometer_frames(frames, _boxes(15 if key == 'parameters' else 9),
                          ids=IDS, output=out, resume_from=out)
    positions = tmp_path / 'stars.ecsv'
    QTable({'id': IDS, 'x': X, 'y': Y}).write(positions)
    code, _, err = ccdphot('batch', *frames, '--positions', positions,
                           '--size', '9' if key == 'frame_files' else '15',
                           '-o', out, '--resume')
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert words in err and str(out) in err
    assert out.read_bytes() == before


def test_resume_with_and_without_wcs_frames_as_in_one_run(tmp_path):
    paths = []
    for k, with_wcs in enumerate([True, True, False, False, True]):
        paths.append(str(tmp_path / f'f{k}.fits'))
        _write_frame(paths[-1], k, wcs=with_wcs)
    one_run = photometer_frames(paths, _boxes(), ids=IDS)
    for first in (paths[:2], paths[2:4]):  # WCS first, then no WCS first
        out = tmp_path / f'lc{len(first)}{first[0][-6]}.ecsv'
        photometer_frames(first, _boxes(), ids=IDS, output=out)
        lc = photometer_frames(paths, _boxes(), ids=IDS, output=out,
                               resume_from=out)
        assert set(lc['status']) == {'ok'} and len(lc) == 15
        assert lc.colnames == one_run.colnames  # the same layout
        _same_numbers(lc, one_run)
        ra = lc['sky_centroid'].ra.deg
        np.testing.assert_array_equal(np.isnan(ra),
                                      np.isnan(one_run['sky_centroid'].ra.deg))
        assert np.isnan(ra).sum() == 6
        assert len(QTable.read(out)) == 15


# -- a bad time costs only that frame's time ---------------------------------

def test_a_bad_time_costs_only_that_frames_time(night, tmp_path):
    bad = night / 'seconds.fits'
    _write_frame(bad, 9, header={'MJD-OBS': 5.2e9})
    frames = [str(night / 'frame0.fits'), str(bad),
              str(night / 'frame1.fits')]
    out = tmp_path / 'lc.ecsv'
    with pytest.warns(AstropyUserWarning, match=r'seconds.fits: unreadable '
                      r'time \(MJD-OBS=5200000000.0 is not a time of the '
                      'years 1000 to 2999'):
        lc = photometer_frames(frames, _boxes(), ids=IDS, output=out)
    assert set(lc['status']) == {'ok'}
    rows = lc['frame'] == str(bad)
    assert lc['time'].mask[rows].all() and not lc['time'].mask[~rows].any()
    assert all('MJD-OBS' in note for note in lc['note'][rows])
    assert np.isfinite(lc['aperture_sum'][rows].value).all()
    back = QTable.read(out)  # written, and read back
    assert len(back) == 9 and back['time'].mask.sum() == 3
    positions = tmp_path / 'stars.ecsv'
    QTable({'id': IDS, 'x': X, 'y': Y}).write(positions)
    code, _, err = ccdphot('batch', *frames, '--positions', positions,
                           '--size', '15', '-q', '-o', tmp_path / 'cli.ecsv')
    assert code == 0, err
    assert 'seconds.fits' in err and 'MJD-OBS' in err


@pytest.mark.parametrize('header, words', [
    ({'MJD-OBS': 5.2e9}, 'MJD-OBS=5200000000.0 is not a time of the years'),
    ({'MJD-OBS': 2460000.5}, 'a Julian date, instead of a modified'),
    ({'MJD-OBS': True}, 'MJD-OBS=True is not a number'),
    ({'DATE-OBS': '9999-01-01T00:00:00'}, 'DATE-OBS=.* is not a time of'),
    ({'MJD-OBS': 60000.0, 'TIMESYS': 'GPS'}, 'TIMESYS'),
], ids=['seconds', 'julian_date', 'logical', 'year_9999', 'no_scale'])
def test_frame_time_names_the_keyword_of_a_bad_time(header, words):
    from ccdphot_ext.batch import frame_time

    with pytest.raises(ValueError, match=words):
        frame_time(header)


# -- ids ---------------------------------------------------------------------

def test_ids_that_do_not_fit_are_refused_and_text_is_kept(night):
    frames = [str(night / 'frame0.fits')]
    with pytest.raises(ValueError, match=r'ids: 1e\+20 \(position 1\) is '
                                         'not an id kept exactly'):
        photometer_frames(frames, _boxes(), ids=[1, 1e20, 3])
    big = np.array([1, 2**63 + 1, 3], dtype=np.uint64)
    with pytest.raises(ValueError, match='does not fit a 64-bit integer'):
        photometer_frames(frames, _boxes(), ids=big)
    with pytest.raises(ValueError, match='not an id kept exactly'):
        photometer_frames(frames, _boxes(), ids=[1.0, 2.0**53, 3.0])
    lc = photometer_frames(frames, _boxes(), ids=[1.0, 2.0**52, 3.0])
    assert lc['id'].dtype == np.int64 and lc['id'][1] == 2**52
    lc = photometer_frames(frames, _boxes(), ids=[1, 2**62 + 1, 3])
    assert lc['id'][1] == 2**62 + 1
    lc = photometer_frames(frames, _boxes(), ids=['HD 1', 'HD 2', 'HD 3'])
    assert lc['id'].tolist() == ['HD 1', 'HD 2', 'HD 3']


# -- SIGINT and SIGTERM during the final write -------------------------------

def _default_signals():
    """In the child, before Python starts: the default SIGINT, SIGTERM
    and SIGHUP, as in a terminal."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM,
                                    signal.SIGHUP], ids=['SIGINT', 'SIGTERM',
                                                         'SIGHUP'])
def test_signal_during_the_final_write_keeps_every_frame(night, tmp_path,
                                                         signum):
    frames = [str(night / f'frame{k}.fits') for k in range(6)]
    out = tmp_path / 'lc.ecsv'
    marker = tmp_path / 'writing'
    # the final write (no checkpoint comes before it) is slowed down just
    # before its temporary file replaces the output
    code = textwrap.dedent(f'''
        import os, time
        import numpy as np
        from ccdphot_ext import BoxAperture, photometer_frames
        replace = os.replace
        def slow(*args, **kwargs):
            open({str(marker)!r}, 'w').close()
            time.sleep(3)
            replace(*args, **kwargs)
        os.replace = slow
        photometer_frames({frames!r}, BoxAperture(np.c_[{X}, {Y}], 15, 15),
                          output={str(out)!r})
    ''')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}
    # the run as from a terminal: a background job (a CI script's ``&``)
    # inherits an ignored SIGINT, which the run rightly leaves ignored
    proc = subprocess.Popen([sys.executable, '-c', code], env=env,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_signals)
    try:
        end = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < end
            time.sleep(0.02)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode != 0  # interrupted, after the write
    assert 'KeyboardInterrupt' in err or 'terminated (SIG' in err, err
    table = QTable.read(out)
    assert table.meta['last_run']['complete'] is True
    assert _names(table) == frames and len(table) == 18
    assert sorted(p.name for p in tmp_path.iterdir()) == ['lc.ecsv', 'night',
                                                          'writing']


# -- a checkpoint that cannot be written -------------------------------------

def test_a_failed_checkpoint_warns_and_the_run_goes_on(night, tmp_path,
                                                       monkeypatch):
    import ccdphot_ext.batch.frames as batch

    real, calls = batch.write_table_atomic, []

    def full_once(table, path, **kwargs):
        calls.append(table.meta['last_run']['complete'])
        if len(calls) == 1:
            raise OSError(28, f'output {path}: cannot write (No space left '
                              'on device)')
        real(table, path, **kwargs)

    monkeypatch.setattr(batch, 'write_table_atomic', full_once)
    frames = [str(night / f'frame{k}.fits') for k in range(3)]
    out = tmp_path / 'lc.ecsv'
    from ccdphot_ext.batch import BatchExecution
    with pytest.warns(AstropyUserWarning, match='No space left on device.*'
                                                'checkpoint not written'):
        lc = photometer_frames(frames, _boxes(), ids=IDS, output=out,
                               execution=BatchExecution(
                                   checkpoint_interval=1e-9))
    assert calls[-1] is True and len(calls) == 4
    assert len(QTable.read(out)) == len(lc) == 9


# -- the channels that report on a run cannot abort it -----------------------

def test_warnings_as_errors_never_cost_the_output(night, tmp_path):
    broken = tmp_path / 'broken.fits'
    broken.write_text('not a FITS file\n')
    frames = [str(night / 'frame0.fits'), str(broken),
              str(night / 'frame1.fits')]
    out = tmp_path / 'lc.ecsv'
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # as python -W error
        with pytest.raises(AstropyUserWarning, match='broken.fits: frame '
                                                     'failed'):
            photometer_frames(frames, _boxes(), ids=IDS, output=out)
    table = QTable.read(out)  # written before the warning was raised
    assert table.meta['last_run']['complete'] is True
    assert _names(table) == [frames[0], frames[2], frames[1]]
    assert table['status'].tolist() == ['ok'] * 6 + ['failed'] * 3


def test_a_closed_stderr_never_costs_the_output(night, tmp_path):
    broken = tmp_path / 'broken.fits'
    broken.write_text('not a FITS file\n')
    frames = [str(broken), *(str(night / f'frame{k}.fits')
                             for k in range(6))]
    positions = tmp_path / 'stars.ecsv'
    QTable({'id': IDS, 'x': X, 'y': Y}).write(positions)
    out = tmp_path / 'lc.ecsv'
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), 'ccdphot'), 'batch',
         *frames, '--positions', str(positions), '--size', '15', '-o',
         str(out), '-q'], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc.stderr.close()  # the reader went away (| head)
    proc.wait(120)
    table = QTable.read(out)
    assert table.meta['last_run']['complete'] is True
    assert len(table) == 21 and sorted(set(table['frame'])) == sorted(frames)
