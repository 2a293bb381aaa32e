"""
Outputs never destroy data: ``-o`` onto an input, a link, a FIFO, a device
or a directory, the mode of a replaced file, FITS output, a full disk and
running out of memory.

The command-line cases run ``ccdphot`` in this process (``clirun``), two
of them through the installed command in child processes started at once.
"""

import hashlib
import os
import stat
import subprocess

import numpy as np
import pytest
from astropy.table import QTable
from clirun import EXE, ccdphot, child_env

from ccdphot_ext.utils.files import atomic_write, check_output, write_table_atomic

BOX = '158:178,492:512'
#: cases run by the installed command in a child process (the rest in
#: process): a user's command refusing to overwrite its image, and the FIFO
#: (a child is timed out if opening it ever blocked)
SUBPROCESS = {'measure_onto_image', 'fifo'}


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def runs(tmp_path_factory, sample_ccd):
    """Build the files, start every command at once, collect the results."""
    d = tmp_path_factory.mktemp('outputs')
    frame = d / 'v.fits'
    sample_ccd.write(frame)
    QTable({'x_center': [501.5], 'y_center': [167.5]}).write(
        d / 'pos.ecsv')
    os.link(frame, d / 'hard.fits')
    os.symlink(frame, d / 'link.fits')
    os.mkfifo(d / 'pipe')
    (d / 'adir').mkdir()
    os.symlink(d / 'loop_a', d / 'loop_b')
    os.symlink(d / 'loop_b', d / 'loop_a')
    os.symlink(d / 'target.ecsv', d / 'out_link.ecsv')
    (d / 'private.ecsv').write_text('# old\n')
    os.chmod(d / 'private.ecsv', 0o600)
    measure = [EXE, 'measure', 'v.fits', '--box', BOX]
    cases = {
        'measure_onto_image': [*measure, '-o', './adir/../v.fits'],
        'measure_onto_hard_link': [*measure, '-o', 'hard.fits'],
        'measure_onto_symlink_to_image': [*measure, '-o', 'link.fits'],
        'find_onto_image': [EXE, 'find', 'v.fits', '-o', 'v.fits'],
        'measure_onto_positions': [EXE, 'measure', 'v.fits', '--positions',
                                   'pos.ecsv', '--size', '9', '-o',
                                   'pos.ecsv'],
        'measure_onto_uncertainty': [*measure, '--uncertainty', 'hard.fits',
                                     '-o', 'link.fits'],
        'fifo': [*measure, '-o', 'pipe'],
        'device': [*measure, '-o', os.devnull],
        'directory': [*measure, '-o', 'adir'],
        'loop_output': [*measure, '-o', 'loop_a'],
        'loop_input': [EXE, 'find', 'loop_a'],
        'loop_positions': [EXE, 'measure', 'v.fits', '--positions', 'loop_a',
                           '--size', '9'],
        'through_symlink': [*measure, '-o', 'out_link.ecsv'],
        'keeps_mode': [*measure, '-o', 'private.ecsv'],
        'fits_table': [*measure, '-o', 'res.fits'],
        'ecsv_table': [*measure, '-o', 'res.ecsv'],
        'fits_name_csv_format': [*measure, '-o', 'x.fits', '--format',
                                 'csv'],
    }
    before = {name: _sha(d / name) for name in ('v.fits', 'pos.ecsv')}
    procs = {name: subprocess.Popen(argv, cwd=d, env=child_env(), text=True,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
             for name, argv in cases.items() if name in SUBPROCESS}
    results = {name: ccdphot(*argv[1:], cwd=d)
               for name, argv in cases.items() if name not in SUBPROCESS}
    for name, proc in procs.items():
        with proc:
            out, err = proc.communicate(timeout=120)
        results[name] = (proc.returncode, out, err)
    return d, results, before


def _refused(runs, case, *words):
    d, results, before = runs
    code, _, err = results[case]
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert 'Traceback' not in err
    for word in words:
        assert word in err, err
    # the inputs are untouched, byte for byte
    assert {n: _sha(d / n) for n in before} == before
    return d, err


@pytest.mark.parametrize('case, what', [
    ('measure_onto_image', 'IMAGE'),
    ('measure_onto_hard_link', 'IMAGE'),
    ('measure_onto_symlink_to_image', 'IMAGE'),
    ('find_onto_image', 'IMAGE'),
    ('measure_onto_positions', '--positions'),
    ('measure_onto_uncertainty', 'IMAGE'),
])
def test_output_that_is_an_input_is_refused(runs, case, what):
    d, err = _refused(runs, case, 'same file as', what)
    assert os.path.islink(d / 'link.fits')
    assert os.stat(d / 'hard.fits').st_nlink == 2


@pytest.mark.parametrize('case, kind', [('fifo', 'FIFO'),
                                        ('device', 'character device'),
                                        ('directory', 'directory')])
def test_special_files_are_refused(runs, case, kind):
    d, err = _refused(runs, case, kind)
    assert stat.S_ISFIFO(os.stat(d / 'pipe').st_mode)
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert (d / 'adir').is_dir()


def test_symlink_loops_read_as_loops(runs):
    d, err = _refused(runs, 'loop_output', 'symbolic link loop', 'loop_a')
    d, err = _refused(runs, 'loop_input', 'symbolic link loop', 'loop_a')
    assert 'no such file' not in err
    d, err = _refused(runs, 'loop_positions', '--positions loop_a: '
                      'symbolic link loop')
    assert os.path.islink(d / 'loop_a') and os.path.islink(d / 'loop_b')


def test_output_symlink_is_written_through(runs):
    d, results, _ = runs
    code, _, err = results['through_symlink']
    assert code == 0, err
    assert os.path.islink(d / 'out_link.ecsv')
    assert len(QTable.read(d / 'target.ecsv')) == 1


def test_replaced_file_keeps_its_mode(runs):
    d, results, _ = runs
    code, _, err = results['keeps_mode']
    assert code == 0, err
    assert stat.S_IMODE(os.stat(d / 'private.ecsv').st_mode) == 0o600
    assert len(QTable.read(d / 'private.ecsv')) == 1


def test_fits_name_gives_a_fits_table(runs):
    d, results, _ = runs
    for case in ('fits_table', 'ecsv_table'):
        assert results[case][0] == 0, results[case][2]
    assert (d / 'res.fits').read_bytes()[:6] == b'SIMPLE'
    fits_rows = QTable.read(d / 'res.fits')
    ecsv_rows = QTable.read(d / 'res.ecsv')
    for name in ('aperture_sum', 'aperture_sum_err', 'sky'):
        np.testing.assert_allclose(fits_rows[name].value,
                                   ecsv_rows[name].value, rtol=1e-12)
        assert fits_rows[name].unit == ecsv_rows[name].unit
    assert 'photutils' in fits_rows.meta['VERSIONS']  # provenance kept
    _refused(runs, 'fits_name_csv_format', 'does not match')
    assert not (d / 'x.fits').exists()


# -- the writer itself (in process) -----------------------------------------

def test_full_disk_names_the_path_and_keeps_the_old_file(tmp_path):
    out = tmp_path / 'lc.ecsv'
    out.write_text('old\n')

    def fill_disk(tmp):
        with open(tmp, 'w') as fh:
            fh.write('half')
        raise OSError(28, 'No space left on device')

    with pytest.raises(OSError, match='No space left on device') as info:
        atomic_write(out, fill_disk, label='-o')
    assert str(out) in str(info.value) and info.value.errno == 28
    assert out.read_text() == 'old\n'
    assert [p.name for p in tmp_path.iterdir()] == ['lc.ecsv']


def test_new_file_gets_the_umask_mode(tmp_path):
    mask = os.umask(0o027)
    try:
        write_table_atomic(QTable({'a': [1]}), tmp_path / 'new.ecsv')
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / 'new.ecsv').st_mode) == 0o640


def test_ds9_file_gets_the_umask_mode_not_0600(tmp_path):
    from photutils.aperture import CircularAperture

    from ccdphot_ext import write_ds9
    mask = os.umask(0o022)
    try:
        write_ds9(CircularAperture([(3, 4)], r=2), tmp_path / 's.reg')
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(tmp_path / 's.reg').st_mode) == 0o644


def test_check_output_returns_the_link_target(tmp_path):
    os.symlink(tmp_path / 'real.ecsv', tmp_path / 'alias.ecsv')
    target = check_output(tmp_path / 'alias.ecsv')
    assert target == os.path.realpath(tmp_path / 'real.ecsv')
    with pytest.raises(ValueError, match='folder .* does not exist'):
        check_output(tmp_path / 'no' / 'x.ecsv')


# -- out of memory names the frame and its size -----------------------------

def test_cli_memory_error_names_the_image_and_its_size(runs, monkeypatch,
                                                       capsys):
    from ccdphot_ext.cli.main import main
    from ccdphot_ext.photometry import table

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(table, 'photometer', exhausted)
    d = runs[0]
    code = main(['measure', str(d / 'v.fits'), '--box', BOX])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == (f'ccdphot measure: failed: out of memory on '
                           f'{d / "v.fits"} (767 x 510 float64 pixels, '
                           '3.0 MiB in memory)')
