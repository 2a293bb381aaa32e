"""
Every command-line argument is checked before the first frame, naming its
option; outputs are checked before the work (a folder name, a name too long
for the file system, a full disk at the lock); ``measure -o`` and ``find
-o`` take the same output lock as a batch and clean the temporary files of
killed writers; frame lists with a byte-order mark, binary frame lists.
"""

import hashlib
import os
import pathlib
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import QTable
from clirun import ccdphot
from photutils.aperture import CircularAperture

from ccdphot_ext import BoxAperture, SkyEstimate, measure, photometer
from ccdphot_ext.batch import (
    AnnulusSky,
    FrameReading,
    output_lock,
    photometer_frames,
)

X, Y = [18.0, 45.0], [20.0, 30.0]


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('hostile_outputs')
    rng = np.random.default_rng(5)
    frames = []
    for k in range(2):
        img = rng.normal(100.0, 3.0, (48, 64))
        img[18:23, 16:21] += 500.0
        path = d / f'frame{k}.fits'
        CCDData(img, unit='adu', meta=fits.Header(
            {'MJD-OBS': 60000.0 + k})).write(path)
        frames.append(str(path))
    QTable({'id': [1, 2], 'x': X, 'y': Y}).write(d / 'stars.ecsv')
    return d, frames


def _cli(args):
    return ccdphot(*args)


def _one_line_error(code, err, *words, expected=2):
    assert code == expected, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    for word in words:
        assert word in lines[0], lines[0]


def _batch(files, *extra, out='lc.ecsv'):
    d, frames = files
    return ['batch', *frames, '--positions', str(d / 'stars.ecsv'), '-q',
            '-o', str(d / out), *extra]


# -- arguments checked before the first frame, naming the option -------------

@pytest.mark.parametrize('extra, words', [
    (['--radius', '5', '--sky', 'annulus', '--annulus', '0,12'],
     ['--annulus', "'0,12'", 'RIN']),
    (['--radius', '1e5'], ['--radius 100000', 'far more than the frame']),
    (['--size', '9', '--sky', 'annulus', '--annulus', '5,1e6'],
     ['--annulus 5,1e+06', 'far more than the frame']),
    (['--size', '9', '--checkpoint', '0'], ['--checkpoint']),
    (['--size', '9', '--dask-timeout', '-1'], ['--dask-timeout']),
    # an HDU the first frame lacks would fail every frame the same way
    (['--size', '9', '--hdu', 'SCI'], ['--hdu SCI', "hdu='SCI' not found",
                                       'the first frame']),
    (['--size', '9', '--hdu', '7'], ['--hdu 7', 'hdu=7 not found']),
], ids=['annulus_zero', 'radius_huge', 'annulus_huge', 'checkpoint_zero',
        'dask_timeout_negative', 'hdu_name_missing', 'hdu_index_missing'])
def test_batch_arguments_are_checked_before_any_frame(files, extra,
                                                      words):
    d, _ = files
    start = time.monotonic()
    code, _, err = _cli(_batch(files, *extra, out='args.ecsv'))
    _one_line_error(code, err, *words)
    assert time.monotonic() - start < 20
    assert not (d / 'args.ecsv').exists()


@pytest.mark.parametrize('extra, words', [
    (['--positions', 'stars.ecsv', '--radius', '1e9'],
     ['--radius 1e+09', 'far more than the frame (48, 64)']),
    (['--positions', 'stars.ecsv', '--radius', '3', '--sky', 'annulus',
      '--annulus', '0,12'], ['--annulus', "'0,12'"]),
    (['--positions', 'stars.ecsv', '--radius', '3', '--sky', 'annulus',
      '--annulus', '5,1e7'], ['--annulus 5,1e+07', 'far more than']),
], ids=['radius_huge', 'annulus_zero', 'annulus_huge'])
def test_measure_arguments_name_their_option(files, monkeypatch,
                                             extra, words):
    d, frames = files
    monkeypatch.chdir(d)
    code, _, err = _cli(['measure', frames[0], *extra])
    _one_line_error(code, err, *words)


def test_apertures_far_larger_than_the_frame_are_refused_before_any_work(
        files, tmp_path):
    _, frames = files
    img = np.zeros((48, 64))
    sky = SkyEstimate(0.0, 1.0, 100)
    huge = CircularAperture([(10.0, 10.0), (20.0, 20.0)], 1e6)
    with pytest.raises(ValueError, match=r'apertures: aperture 0 spans '
                                         '2000001 x 2000001 pixels'):
        photometer(img, huge, sky)
    with pytest.raises(ValueError, match='aperture spans 2000001'):
        measure(img, CircularAperture((10.0, 10.0), 1e6), sky)
    out = tmp_path / 'lc.ecsv'
    with pytest.raises(ValueError, match='far more than the frame'):
        photometer_frames(frames, huge, output=out)
    with pytest.raises(ValueError, match='sky annulus spans .* is r_out'):
        photometer_frames(frames, BoxAperture((10, 10), 5, 5), output=out,
                          sky=AnnulusSky(5, 1e6))
    assert not out.exists()
    with pytest.raises(ValueError, match='r_in must be positive'):
        AnnulusSky(0, 12)
    with pytest.raises(ValueError, match=r"reading: .*hdu='SCI' not found "
                                         r'.*\(the first frame\)'):
        photometer_frames(frames, BoxAperture((10, 10), 5, 5),
                          reading=FrameReading(hdu='SCI'), output=out)
    assert not out.exists()
    # boxes whose edges do not fit 64-bit integers: refused, not wrapped
    # around onto the frame (a side of 1e20 summed the whole frame)
    with pytest.raises(ValueError, match=f'spans {re.escape("9.22e+18 x 9.22e+18")} '):
        photometer(img, BoxAperture((10.0, 10.0), 1e20, 1e20), sky)
    # a side whose square overflows is no length (the one number rule)
    with pytest.raises(ValueError, match=re.escape(
            "'w' must be a positive scalar (the box width, finite, between")):
        BoxAperture((10.0, 10.0), 1e308, 5)
    far = photometer(img, BoxAperture((1e308, 10.0), 5, 5), sky)
    assert far['flags'][0] & 1 and np.isnan(far['aperture_sum'][0])
    code, _, err = _cli(['measure', frames[0], '--box', '1:5,1:5'])
    assert code == 0, err
    code, _, err = _cli(['measure', frames[0], '--positions',
                         str(files[0] / 'stars.ecsv'), '--size', '1e308'])
    _one_line_error(code, err, 'argument --size', 'must be between')
    code, _, err = _cli(['measure', frames[0], '--positions',
                         str(files[0] / 'stars.ecsv'), '--size', '1e100'])
    _one_line_error(code, err, '--size 1e+100,1e+100', 'far more than')


def test_a_dead_scheduler_is_reported_within_dask_timeout(files):
    pytest.importorskip('distributed')
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    code, _, err = _cli(_batch(files, '--size', '9', '--scheduler',
                               f'tcp://127.0.0.1:{port}', '--dask-timeout',
                               '2', out='dead.ecsv'))
    _one_line_error(code, err, f'tcp://127.0.0.1:{port}', 'within 2 s')
    assert time.monotonic() - start < 15


@pytest.fixture
def not_a_scheduler():
    """The address of a TCP server that answers as an HTTP server does
    (not a Dask scheduler), and stops with the test."""
    import socket
    import threading

    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen()
    server.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:  # the timeout: look at stop again
                continue
            with conn:
                conn.sendall(b'HTTP/1.0 400 Bad Request\r\n\r\n' * 8)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f'tcp://127.0.0.1:{server.getsockname()[1]}'
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.mark.parametrize('kind', ['http', 'no_port'])
def test_a_scheduler_that_is_not_one_is_one_line(files, not_a_scheduler,
                                                 kind):
    pytest.importorskip('distributed')
    address = not_a_scheduler if kind == 'http' else 'nonsense:xyz'
    start = time.monotonic()
    code, _, err = _cli(_batch(files, '--size', '9', '--scheduler', address,
                               '--dask-timeout', '5', out='x.ecsv'))
    _one_line_error(code, err, f'scheduler {address}', 'not a Dask')
    assert time.monotonic() - start < 20


# -- frame lists -------------------------------------------------------------

def test_frame_list_with_a_byte_order_mark(files, tmp_path):
    _, frames = files
    listing = tmp_path / 'frames.txt'
    listing.write_bytes('\ufeff'.encode() + '\r\n'.join(
        [frames[0], '# a comment', '', frames[1]]).encode() + b'\r\n')
    out = tmp_path / 'lc.ecsv'
    code, _, err = _cli(['batch', '--frame-list', str(listing),
                         '--positions', str(files[0] / 'stars.ecsv'),
                         '--size', '9', '-q', '-o', str(out)])
    assert code == 0, err
    assert QTable.read(out)['frame'].tolist() == [frames[0]] * 2 + [
        frames[1]] * 2


@pytest.mark.parametrize('content, words', [
    (b'frame0.fits\n\xff\xfe\x00bad', ['NUL bytes']),
    (b'frame0.fits\n\xc3\x28\n', ['not a UTF-8 text file', 'offset 12']),
    (None, ['is a FITS file']),
], ids=['nul_bytes', 'not_utf8', 'fits_file'])
def test_binary_frame_list_is_refused(files, tmp_path, content,
                                      words):
    listing = tmp_path / 'frames.txt'
    if content is None:
        listing.write_bytes(pathlib.Path(files[1][0]).read_bytes())
    else:
        listing.write_bytes(content)
    code, _, err = _cli(['batch', '--frame-list', str(listing),
                         '--positions', str(files[0] / 'stars.ecsv'),
                         '--size', '9', '-o', str(tmp_path / 'lc.ecsv')])
    _one_line_error(code, err, f'--frame-list {listing}', *words)


# -- output names ------------------------------------------------------------

@pytest.mark.parametrize('command', ['measure', 'batch'])
def test_output_with_a_trailing_slash_is_refused(files, tmp_path,
                                                 command):
    _, frames = files
    out = str(tmp_path / 'out.ecsv') + '/'
    args = (['measure', frames[0], '--box', '10:20,10:20', '-o', out]
            if command == 'measure' else
            ['batch', *frames, '--positions', str(files[0] / 'stars.ecsv'),
             '--size', '9', '-o', out])
    code, _, err = _cli(args)
    _one_line_error(code, err, out, 'names a folder')
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match='names a folder'):
        photometer_frames(frames, BoxAperture((10, 10), 5, 5), output=out)
    with pytest.raises(ValueError, match='cannot hold a NUL byte'):
        photometer_frames(frames, BoxAperture((10, 10), 5, 5),
                          output=str(tmp_path / 'a\0b.ecsv'))


def test_long_output_names_work_and_too_long_ones_are_refused(files,
                                                              tmp_path):
    _, frames = files
    limit = os.pathconf(tmp_path, 'PC_NAME_MAX')
    # the longest valid name: the lock and temporary files are shortened
    name = 'x' * (limit - len('.ecsv')) + '.ecsv'
    # a killed writer's temporary file: the name's start, a hash, 8 random
    # characters; the whole fits the file system's limit
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    stale = tmp_path / f'.{name[:limit - 23]}~{digest}.k9x_2abc.tmp'
    assert len(stale.name) == limit
    stale.write_text('# left by a kill -9')
    code, _, err = _cli(['batch', *frames, '--positions',
                         str(files[0] / 'stars.ecsv'), '--size', '9', '-q',
                         '-o', str(tmp_path / name)])
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert len(QTable.read(tmp_path / name)) == 4
    # one byte more is refused before any work, naming -o and the limit
    longer = 'x' * (limit + 1 - len('.ecsv')) + '.ecsv'
    code, _, err = _cli(['batch', *frames, '--positions',
                         str(files[0] / 'stars.ecsv'), '--size', '9',
                         '-o', str(tmp_path / longer)])
    _one_line_error(code, err, '-o', f'{limit + 1} bytes long',
                    f'at most {limit}')


def test_full_disk_when_taking_the_lock_names_the_paths(files,
                                                        tmp_path,
                                                        monkeypatch):
    def full(fd, data):
        raise OSError(28, 'No space left on device')

    out = tmp_path / 'lc.ecsv'
    monkeypatch.setattr(os, 'write', full)
    with pytest.raises(OSError, match=f'output {out}: cannot take its lock '
                       rf'{tmp_path}/\.lc\.ecsv\.lock \(No space left'):
        with output_lock(out):
            pass
    _, frames = files
    code, _, err = _cli(['measure', frames[0], '--box', '10:20,10:20', '-o',
                         str(out)])
    monkeypatch.undo()
    # the machine failed, not the input: exit 1, 'failed'
    _one_line_error(code, err, str(out), '.lc.ecsv.lock', 'No space left',
                    'failed:', expected=1)
    assert list(tmp_path.iterdir()) == []


# -- measure -o and find -o take the batch's lock ----------------------------

def test_measure_and_find_take_the_output_lock(files, tmp_path):
    _, frames = files
    out = tmp_path / 'lc.ecsv'
    out.write_text('# a running batch writes this\n')
    code = textwrap.dedent(f'''
        import time
        from ccdphot_ext.batch.lock import output_lock
        with output_lock({str(out)!r}):
            print('locked', flush=True)
            time.sleep(60)
    ''')
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, '-c', code], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'locked'
        for args in (['measure', frames[0], '--box', '10:20,10:20'],
                     ['find', frames[0]]):
            status, _, err = _cli([*args, '-o', str(out)])
            _one_line_error(status, err, str(out),
                            'being written by another run', f'pid {proc.pid}')
            assert out.read_text() == '# a running batch writes this\n'
        os.kill(proc.pid, signal.SIGKILL)  # the writer dies mid-write
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    stale = tmp_path / '.lc.ecsv.zz9_1abc.tmp'  # its temporary file
    stale.write_text('# half a table')
    status, _, err = _cli(['measure', frames[0], '--box', '10:20,10:20',
                           '-o', str(out)])
    assert status == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['lc.ecsv']
    assert len(QTable.read(out)) == 1


def test_errors_name_the_image(tmp_path):
    img = np.random.default_rng(0).normal(100.0, 5.0, (60, 60))
    img[5:7, 5:7] = 1e308  # the clipped sky overflows
    path = tmp_path / 'huge_values.fits'
    CCDData(img, unit='adu').write(path)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable),
                                       'ccdphot'), 'measure', str(path),
                          '--box', '20:30,20:30'], capture_output=True,
                         text=True, env=env, timeout=120)
    assert run.returncode == 2 and 'Traceback' not in run.stderr
    # one line (no numpy overflow warnings), naming the file and the pixels
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and ': error: ' in lines[0], run.stderr
    assert f'{path}: ' in lines[0] and 'sky statistics overflow' in lines[0]
    assert '4 pixel(s) of magnitude up to 1e+308' in lines[0]
    assert '(x, y) = (5, 5)' in lines[0]


def test_an_output_never_replaces_a_frame_and_says_when_it_replaces(
        files, tmp_path):
    # -o naming another frame (not an input of the run): a FITS image,
    # plain or tile-compressed, is never replaced by a table
    d, frames = files
    other = tmp_path / 'other_night.fits'
    packed = tmp_path / 'other_night_fz.fits'
    img = np.random.default_rng(1).normal(100.0, 3.0, (20, 30))
    fits.PrimaryHDU(img).writeto(other)
    fits.HDUList([fits.PrimaryHDU(),
                  fits.CompImageHDU(img.astype(np.float32))]).writeto(packed)
    before = {p: p.read_bytes() for p in (other, packed)}
    for out, where in ((other, 'HDU 0, 20 x 30'), (packed, 'HDU 1, 20 x 30')):
        for args in (['measure', frames[0], '--box', '10:20,10:20'],
                     ['find', frames[0]],
                     [*_batch(files)[:-2], '--size', '9']):
            status, _, err = _cli([*args, '-o', str(out)])
            _one_line_error(status, err, f'-o {out}: is a FITS image '
                            f'({where}), not a table; refusing to replace it')
    assert all(p.read_bytes() == b for p, b in before.items())
    # a table (FITS or text) is replaced, and the summary line says so
    table = tmp_path / 'res.fits'
    args = ['measure', frames[0], '--box', '10:20,10:20', '-o', str(table)]
    status, out, err = _cli(args)
    assert status == 0 and out.splitlines()[-1].endswith('(fits, 1 rows)')
    status, out, err = _cli(args)
    assert status == 0, err
    assert out.splitlines()[-1].endswith(
        '(fits, 1 rows; replaced the existing file)')
    status, out, err = _cli(_batch(files, '--size', '9', out='lc_twice.ecsv'))
    assert status == 0 and 'replaced' not in out, err
    status, out, err = _cli(_batch(files, '--size', '9', out='lc_twice.ecsv'))
    assert status == 0 and out.strip().endswith(
        's; replaced the existing file)'), out
    status, out, err = _cli(_batch(files, '--size', '9', '--resume',
                                   out='lc_twice.ecsv'))
    assert status == 0 and '(0 measured now' in out and 'replaced' not in out
