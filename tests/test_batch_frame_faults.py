"""
A frame that never finishes costs only itself: a frame whose reading
hangs fails after the execution's ``frame_timeout`` and the run goes on;
a frame that is a named pipe or a device (which could block for ever or
never end) fails at once; the summary counts them and the exit code is 1.
"""

import os
import threading
import time

import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import QTable
from clirun import ccdphot

from ccdphot_ext import BatchExecution, BoxAperture, photometer_frames
from ccdphot_ext.batch.reading import FrameReading
from ccdphot_ext.datasets.sample import simulate_frame

X, Y = [18.0, 45.0, 70.0], [20.0, 34.0, 24.0]


@pytest.fixture
def frames(tmp_path):
    """Four small frames with three stars, and their positions table."""
    paths = []
    for k in range(4):
        data, _, _ = simulate_frame((48, 90), 300.0,
                                    {'x': X, 'y': Y,
                                     'flux': [2e4, 4e4, 3e4]},
                                    gain=1.5, read_noise=5.0, seed=k)
        path = tmp_path / f'f{k}.fits'
        CCDData(data, unit='adu', meta=fits.Header(
            {'GAIN': 1.5, 'MJD-OBS': 60400.0 + k / 48})).write(path)
        paths.append(str(path))
    positions = tmp_path / 'pos.csv'
    positions.write_text('x,y\n' + ''.join(f'{x},{y}\n' for x, y in
                                           zip(X, Y, strict=True)))
    return paths, positions


def test_a_frame_that_hangs_fails_alone_after_the_timeout(frames,
                                                          monkeypatch):
    """Reading frame 1 blocks (a hung network disk): it fails after the
    10 s limit with that reason, the three others are measured, and the
    run ends (before: it waited for ever)."""
    paths, _ = frames
    boxes = BoxAperture(list(zip(X, Y, strict=True)), 11, 11)
    photometer_frames(paths[:1], boxes)  # the modules loaded, not timed
    release = threading.Event()
    real = FrameReading.read

    def read(self, path):
        if os.fspath(path) == paths[1]:
            release.wait(120)
        return real(self, path)

    monkeypatch.setattr(FrameReading, 'read', read)
    start = time.monotonic()
    try:
        lc = photometer_frames(paths, boxes,
                               execution=BatchExecution(frame_timeout=10))
    finally:
        release.set()
        for thread in threading.enumerate():  # the frame left behind ends:
            if thread.name == 'ccdphot-frame':  # its warnings' filters too
                thread.join(60)
    assert time.monotonic() - start < 100
    status = {str(f): s for f, s in zip(lc['frame'], lc['status'],
                                        strict=True)}
    assert status == {paths[0]: 'ok', paths[1]: 'failed', paths[2]: 'ok',
                      paths[3]: 'ok'}
    failure, = lc.meta['failures']
    assert 'not measured within 10 s' in failure['error']
    assert 'frame_timeout' in failure['error']


def test_frame_timeout_is_checked():
    assert BatchExecution().frame_timeout == 600.0
    assert BatchExecution(frame_timeout=None).frame_timeout is None
    with pytest.raises(ValueError, match='frame_timeout'):
        BatchExecution(frame_timeout=0)
    with pytest.raises(TypeError, match='frame_timeout'):
        BatchExecution(frame_timeout='soon')


def test_a_pipe_or_a_device_as_a_frame_fails_at_once(frames, tmp_path):
    """A named pipe no one writes to blocked the run for ever, /dev/zero
    read until memory ran out: each fails at once; the other frames are
    in the table, the summary counts two failures, exit code 1."""
    paths, positions = frames
    pipe = tmp_path / 'pipe.fits'
    os.mkfifo(pipe)
    out = tmp_path / 'lc.ecsv'
    code, stdout, err = ccdphot('batch', paths[0], pipe, paths[1],
                                '/dev/zero', '--positions', positions,
                                '--size', '11', '-o', out, '-q')
    assert code == 1
    assert '2 of 4 frames failed' in err
    lc = QTable.read(out)
    assert [f['error'].split(': ', 1)[1] for f in lc.meta['failures']] == [
        'a pipe or a device, not a file: a batch reads each frame from a '
        'file (its size and time identify it for a resumed run)'] * 2
    assert sorted(set(lc['frame'][lc['status'] == 'ok'])) == sorted(
        [paths[0], paths[1]])
    assert len(lc) == 12
    assert stdout.startswith('ccdphot batch: 4 frames, 12 rows')


def test_an_endless_stream_is_not_read_as_a_frame(tmp_path):
    """``ccdphot measure /dev/zero`` read zeros until memory ran out (137 s
    under a 6 GiB limit); the first 80 bytes say it is not FITS."""
    code, _, err = ccdphot('measure', '/dev/zero', '--box', '1:5,1:5')
    assert code == 2
    assert err.strip() == ('ccdphot measure: error: IMAGE /dev/zero: not '
                           'FITS (a stream that does not start with SIMPLE, '
                           'nor with a gzip or bzip2 header)')
