"""``ccdphot batch``: light curves from the command line."""

import shutil
import subprocess
import sys

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable
from batchframes import FLUX, X, Y, write_frames
from clirun import ccdphot, child_env

from ccdphot_ext.cli.main import main
from ccdphot_ext.datasets.sample import simulate_frame


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('cli_batch')
    frames, bad, positions = write_frames(d, 5)
    return {'dir': d, 'frames': frames, 'bad': bad, 'positions': positions}


def _run(args):
    """``ccdphot batch ARGS`` in this process: (exit code, stdout, stderr)."""
    return ccdphot('batch', *args)


def test_batch_writes_the_light_curve(files, tmp_path):
    out = tmp_path / 'lc.ecsv'
    code, stdout, err = _run([*files['frames'], '--positions',
                              files['positions'], '--size', '15', '-o',
                              str(out)])
    assert code == 0, err
    assert err == ''
    assert f'5 frames, 15 rows -> {out}' in stdout
    lc = QTable.read(out)
    assert lc['id'].tolist() == [7, 8, 9] * 5
    assert set(lc['status']) == {'ok'}
    assert lc['time'][3].mjd == pytest.approx(60400.0 + 1 / 48, abs=1e-9)
    np.testing.assert_allclose(lc['x_center'][:3], X)
    assert lc.meta['parameters']['apertures'][0]['w'] == 15.0
    assert [p.name for p in tmp_path.iterdir()] == ['lc.ecsv']


def test_a_corrupt_frame_is_one_line_and_exit_1(files, tmp_path):
    out = tmp_path / 'lc.ecsv'
    frames = [files['frames'][0], files['bad'], files['frames'][1]]
    code, stdout, err = _run([*frames, '--positions', files['positions'],
                              '--size', '15,11', '-o', str(out)])
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith('ccdphot batch: warning: ')
    assert 'corrupt.fits: frame failed' in lines[0]
    assert '1 of 3 frames failed' in lines[1]
    assert 'Traceback' not in err
    lc = QTable.read(out)
    # time order: the unreadable frame has no time and comes last
    assert lc['status'].tolist() == ['ok'] * 6 + ['failed'] * 3
    # --resume retries the failed frame only (still corrupt: still failed)
    code, stdout, err = _run([*frames, '--positions', files['positions'],
                              '--size', '15,11', '-o', str(out), '--resume'])
    assert code == 1
    assert '(1 measured now' in stdout


def test_resume_measures_only_new_frames(files, tmp_path):
    out = tmp_path / 'lc.ecsv'
    common = ['--positions', files['positions'], '--radius', '6', '-o',
              str(out), '--resume']
    code, stdout, err = _run([*files['frames'][:2], *common])
    assert code == 0
    assert 'does not exist yet' in err
    code, stdout, _ = _run([*files['frames'], *common])
    assert code == 0
    assert '5 frames, 15 rows' in stdout and '(3 measured now' in stdout
    fresh = tmp_path / 'fresh.ecsv'
    assert _run([*files['frames'], '--positions', files['positions'],
                 '--radius', '6', '-o', str(fresh)])[0] == 0
    a, b = QTable.read(out), QTable.read(fresh)
    np.testing.assert_array_equal(a['aperture_sum'], b['aperture_sum'])
    np.testing.assert_array_equal(a['frame'], b['frame'])
    # other apertures than the file's: refused, file untouched
    before = out.read_bytes()
    code, _, err = _run([*files['frames'], '--positions', files['positions'],
                         '--radius', '5', '-o', str(out), '--resume'])
    assert code == 2 and err.startswith('ccdphot batch: error: --resume: ')
    assert out.read_bytes() == before


def test_workers_start_a_local_cluster(files, tmp_path):
    serial, dask = tmp_path / 'serial.ecsv', tmp_path / 'dask.ecsv'
    args = [*files['frames'], files['bad'], '--positions',
            files['positions'], '--size', '13', '--recenter', '-q']
    assert _run([*args, '-o', str(serial)])[0] == 1
    code, stdout, err = _run([*args, '-o', str(dask), '--workers', '2',
                              '--targets', '7', '--comparisons', '8,9'])
    assert code == 1
    assert 'dask' in stdout
    assert err.count('frame failed') == 1
    a, b = QTable.read(serial), QTable.read(dask)
    assert a.colnames == b.colnames
    for name in a.colnames:
        if name == 'time':
            assert np.array_equal(a[name].mask, b[name].mask)
        else:
            assert np.array_equal(np.asarray(a[name]), np.asarray(b[name]),
                                  equal_nan=a[name].dtype.kind == 'f')
    diff = QTable.read(tmp_path / 'dask_diff.ecsv')
    assert diff['id'].tolist() == [7] * 6
    assert diff.meta['comparisons'] == [8, 9]
    ok = np.isfinite(diff['rel_flux'])
    assert ok.sum() == 5  # the corrupt frame has no ratio
    assert np.all(np.abs(diff['rel_flux'][ok] - 20000 / 70000) < 0.02)


def test_frame_list_and_annulus_sky(files, tmp_path):
    listing = tmp_path / 'frames.txt'
    listing.write_text('# tonight\n' + '\n'.join(files['frames'][:3]) + '\n')
    out = tmp_path / 'lc.ecsv'
    code, _, err = _run(['--frame-list', str(listing), '--positions',
                         files['positions'], '--radius', '5', '--sky',
                         'annulus', '--annulus', '8,12', '-o', str(out)])
    assert code == 0, err
    lc = QTable.read(out)
    assert len(lc) == 9
    assert lc.meta['parameters']['sky'].startswith('AnnulusSky(r_in=8.0')
    assert len(set(lc['sky'].value[:3])) == 3  # one level per star


@pytest.mark.parametrize('extra, message', [
    (['--size', '15', '--radius', '4'], 'not allowed with'),
    (['--size', '15', '--workers', '0'], 'must be positive'),
    (['--size', '15', '--annulus', '5,9'], '--annulus needs --sky annulus'),
    (['--size', '15', '--sky', 'annulus'], '--sky annulus needs --annulus'),
    (['--size', '15', '--targets', '7'], 'go together'),
    (['--size', '0,5'], 'must be positive'),
    (['--size', '15', '--targets', 'a'], 'star ids'),
    (['--size', '15', '--differential', 'd.ecsv'],
     '--differential needs --targets and --comparisons'),
])
def test_bad_usage_is_one_line_exit_2(files, tmp_path, extra,
                                      message):
    out = tmp_path / 'lc.ecsv'
    code, _, err = _run([files['frames'][0], '--positions',
                         files['positions'], '-o', str(out), *extra])
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_sky_positions_are_refused_saying_how_to_convert(files, tmp_path):
    table = tmp_path / 'radec.ecsv'
    QTable({'id': [1], 'ra': [150.1] * u.deg, 'dec': [2.2] * u.deg}).write(
        table)
    out = tmp_path / 'lc.ecsv'
    code, _, err = _run([files['frames'][0], '--positions', str(table),
                         '--size', '15', '-o', str(out)])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f'--positions {table}: the table gives sky positions' in err
    assert 'same pixel positions (x, y) on every frame' in err
    assert not out.exists()


def test_bad_inputs_are_one_line_exit_2(files, tmp_path):
    cases = [
        ([files['frames'][0], '--positions', str(tmp_path / 'no.ecsv'),
          '--size', '9', '-o', str(tmp_path / 'a.ecsv')], 'no such file'),
        (['--positions', files['positions'], '--size', '9', '-o',
          str(tmp_path / 'a.ecsv')], 'no frames given'),
        ([files['frames'][0], '--positions', files['positions'], '--size',
          '9', '-o', str(tmp_path / 'nodir' / 'a.ecsv')], 'does not exist'),
        (['--frame-list', str(tmp_path / 'none.txt'), '--positions',
          files['positions'], '--size', '9', '-o',
          str(tmp_path / 'a.ecsv')], '--frame-list'),
    ]
    for args, message in cases:
        code, _, err = _run(args)
        assert code == 2, args
        assert message in err and err.startswith('ccdphot batch: error:')
        assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_help_and_console_script(files, tmp_path, capsys):
    out = tmp_path / 'lc.ecsv'
    proc = subprocess.run(
        [sys.executable, '-m', 'ccdphot_ext.cli', 'batch',
         files['frames'][0], files['bad'], '--positions', files['positions'],
         '--size', '15', '-o', str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 2
    assert len(QTable.read(out)) == 6
    assert main(['batch', '--help']) == 0
    helptext = capsys.readouterr().out
    for word in ('--workers', '--scheduler', '--resume', 'examples:',
                 'exit codes'):
        assert word in helptext


@pytest.mark.parametrize('unit, flux_unit, factor', [
    ('adu', 'adu', 1.0),
    ('electron', 'electron', 1.0),
    # a surface brightness: the sums are flux densities (pixel solid angle
    # from PIXAR_SR, MJy to Jy)
    ('MJy/sr', 'Jy', 2.5e-13 * 1e6),
])
def test_unit_for_frames_without_bunit(files, tmp_path, unit, flux_unit,
                                       factor):
    frames = []
    for k in range(2):
        data, _, _ = simulate_frame((48, 90), 300.0,
                                    {'x': X, 'y': Y, 'flux': FLUX},
                                    gain=1.5, read_noise=5.0, seed=20 + k)
        header = fits.Header({'EXPTIME': 30.0, 'PIXAR_SR': 2.5e-13,
                              'MJD-OBS': 60400.0 + k / 48})
        path = tmp_path / f'nobunit{k}.fits'
        fits.PrimaryHDU(data, header).writeto(path)
        frames.append((str(path), data))
    out = tmp_path / 'lc.ecsv'
    args = [*(p for p, _ in frames), '--positions', files['positions'],
            '--size', '15', '--sky', 'median', '-o', str(out)]
    code, _, err = _run([*args, '--unit', unit])
    assert code == 0, err
    assert 'BUNIT' not in err  # --unit said what the data are
    lc = QTable.read(out)
    assert lc['aperture_sum'].unit == u.Unit(flux_unit)
    assert lc.meta['parameters']['unit'] == str(u.Unit(unit))
    # plain numpy: each 15 x 15 box's pixels less the row's sky, in the
    # flux unit
    for path, data in frames:
        rows = lc[lc['frame'] == path]
        for row, x, y in zip(rows, X, Y, strict=True):
            box = data[int(y) - 7:int(y) + 8, int(x) - 7:int(x) + 8]
            expected = box.sum() * factor - 225 * row['sky'].value
            assert row['aperture_sum'].value == pytest.approx(expected,
                                                              rel=1e-9)
    # without --unit: adu, and the warning says where --unit is
    code, _, err = _run([*args, '-o', str(tmp_path / 'adu.ecsv')])
    assert code == 0, err
    assert 'no usable BUNIT' in err
    assert '--unit to ccdphot measure, find or batch' in err


def test_bad_unit_is_refused_in_one_line(files, tmp_path):
    code, _, err = _run([*files['frames'], '--positions', files['positions'],
                         '--size', '15', '-o', str(tmp_path / 'lc.ecsv'),
                         '--unit', 'furlong/xyz'])
    assert code == 2
    assert err.count('\n') == 1 and 'Traceback' not in err
    assert "--unit: 'furlong/xyz' is not a unit" in err
    assert not (tmp_path / 'lc.ecsv').exists()


def test_collector_left_alone_until_the_process_ends(files, tmp_path):
    # the command spares the process the collector's last walk over every
    # object at exit (gc.freeze then), never while the process goes on
    import gc

    code, _, err = _run([*files['frames'][:2], '--positions',
                         files['positions'], '--size', '15', '-o',
                         str(tmp_path / 'lc.ecsv')])
    assert code == 0, err
    assert gc.get_freeze_count() == 0
    script = ('import atexit, gc, sys; from ccdphot_ext.cli.main import '
              'main; code = main(sys.argv[1:]); '
              'frozen = gc.get_freeze_count(); atexit._run_exitfuncs(); '
              'print(code, frozen, gc.get_freeze_count() > 0)')
    proc = subprocess.run(
        [sys.executable, '-c', script, 'batch', *files['frames'][:2],
         '--positions', files['positions'], '--size', '15', '-o',
         str(tmp_path / 'lc2.ecsv')],
        capture_output=True, text=True, env=child_env(), check=True)
    assert proc.stdout.split()[-3:] == ['0', '0', 'True']


def test_dq_bits_of_jwst_frames(tmp_path):
    """``--dq-bits`` as for measure, on JWST-format frames written by STScI's
    stdatamodels: DO_NOT_USE pixels (garbage) are masked and their rows
    flagged by default, summed with ``--dq-bits 0``, and the bits are
    recorded in the table's parameters."""
    from calibrated_products import DO_NOT_USE, JUMP_DET, jwst_image
    from clirun import installed_ccdphot

    from ccdphot_ext import read_frame

    product = jwst_image()
    frames = []
    for seed in (1, 2):
        path = tmp_path / f'frame{seed}_i2d.fits'
        product.write(path, np.random.default_rng(seed))
        frames.append(path)
    positions = tmp_path / 'stars.csv'
    QTable({'x_center': product.x, 'y_center': product.y}).write(positions)
    # the rows whose 4-pixel circle holds a DO_NOT_USE (or JUMP_DET) pixel
    yy, xx = np.mgrid[:product.shape[0], :product.shape[1]]
    near = np.hypot(xx[None] - product.x[:, None, None],
                    yy[None] - product.y[:, None, None]) < 4.5
    garbage = np.any(near & ((product.dq & DO_NOT_USE) > 0), axis=(1, 2))
    jump = np.any(near & ((product.dq & JUMP_DET) > 0), axis=(1, 2))
    assert garbage.sum() == 2 and jump.sum() == 1
    assert read_frame(frames[0]).mask.sum() == (product.dq & 1).sum() > 0

    def run(name, *options):
        out = tmp_path / name
        code, _, err = installed_ccdphot(
            'batch', *frames, '--positions', positions, '--radius', '4',
            '-o', out, '-q', *options)
        assert code == 0, err
        lc = QTable.read(out)
        rows = [lc[lc['frame'] == str(f)] for f in frames]
        return lc, rows

    lc, masked = run('default.ecsv')
    raw_lc, raw = run('raw.ecsv', '--dq-bits', '0')
    both_lc, both = run('both.ecsv', '--dq-bits', 'DO_NOT_USE+JUMP_DET')
    # None: each frame's mission's default (DO_NOT_USE on JWST); names
    # are kept as given, read by each frame's mission
    assert lc.meta['parameters']['dq_bits'] is None
    assert raw_lc.meta['parameters']['dq_bits'] == 0
    assert both_lc.meta['parameters']['dq_bits'] == 'DO_NOT_USE+JUMP_DET'
    for m, r, b in zip(masked, raw, both, strict=True):
        np.testing.assert_array_equal((m['flags'] & 2) > 0, garbage)
        np.testing.assert_array_equal((b['flags'] & 2) > 0, garbage | jump)
        assert not np.any(r['flags'] & 2)
        # the garbage (3e4 MJy/sr) is summed only without the mask
        ratio = (r['aperture_sum'] / m['aperture_sum']).value
        assert np.all(ratio[garbage] > 100)
        np.testing.assert_allclose(ratio[~garbage], 1.0, rtol=0.02)


def test_frame_warnings_name_each_frame_once(sextractor_dir, tmp_path):
    """The same warning from several frames is one line naming them, the
    frame's path not repeated inside it."""
    for name in ('a.fits', 'b.fits'):
        shutil.copy(sextractor_dir / 'image.fits', tmp_path / name)
    code, _, err = ccdphot('batch', 'a.fits', 'b.fits', '--positions',
                           sextractor_dir / 'image.cat', '--size', 9, '-o',
                           'lc.ecsv', cwd=tmp_path)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if 'non-standard header' in ln]
    assert len(lines) == 1, err
    assert '2 frames (a.fits, b.fits): 4 non-standard' in lines[0]
    assert str(tmp_path) not in err


def _option(subcommand, flag):
    """The argparse action of ``flag`` in ``ccdphot SUBCOMMAND``."""
    import argparse

    from ccdphot_ext.cli.main import build_parser

    subparsers = next(a for a in build_parser()._actions
                      if isinstance(a, argparse._SubParsersAction))
    return next(a for a in subparsers.choices[subcommand]._actions
                if flag in a.option_strings)


def test_uncertainty_model_is_measures_option():
    """``batch --uncertainty-model`` is ``measure``'s, one definition: the
    same choices (BudgetOptions'), default and help."""
    from ccdphot_ext.photometry.terms import UNCERTAINTY_MODELS

    batch = _option('batch', '--uncertainty-model')
    measure = _option('measure', '--uncertainty-model')
    assert tuple(batch.choices) == UNCERTAINTY_MODELS == ('background',
                                                          'total')
    for field in ('choices', 'default', 'help', 'metavar', 'dest'):
        assert getattr(batch, field) == getattr(measure, field), field
    assert batch.default == 'background'


def test_uncertainty_model_total_on_every_frame(files, tmp_path):
    """``--uncertainty-model total`` reaches every frame: the map (here
    the background noise of each simulated frame) is taken as the whole
    error, so no source term is added, each star's variance is the
    background run's less its source term, and the table's provenance
    records the model; a resumed run with the other model is refused."""
    frames = files['frames'][:3]
    base = [*frames, '--positions', files['positions'], '--size', '15']
    runs = {}
    for model in ('background', 'total'):
        out = tmp_path / f'lc_{model}.ecsv'
        code, _, err = _run([*base, '-o', str(out), '--uncertainty-model',
                             model])
        assert code == 0 and err == '', err
        runs[model] = QTable.read(out)
        assert runs[model].meta['parameters']['budget'] == {
            'uncertainty_model': model, 'include_sky_mean': True,
            'fractional_variance': 'squared'}
    bg, total = runs['background'], runs['total']
    assert len(total) == 9 and set(total['frame']) == set(frames)
    np.testing.assert_array_equal(total['aperture_sum'], bg['aperture_sum'])
    source = bg['var_source'].value
    assert np.all(source > 0.9 * np.repeat([FLUX], 3, axis=0).ravel() / 1.5)
    assert np.all(np.isnan(total['var_source']))
    np.testing.assert_allclose(total['aperture_sum_err'].value ** 2,
                               bg['aperture_sum_err'].value ** 2 - source,
                               rtol=1e-10)
    # a map of the background: every star of a frame gets the same error
    for frame in set(total['frame']):
        err = total['aperture_sum_err'][total['frame'] == frame].value
        assert np.ptp(err) < 1e-9 * err[0]
    assert np.all(total['aperture_sum_err'] < 0.92 * bg['aperture_sum_err'])
    # the default is background
    out = tmp_path / 'lc_default.ecsv'
    assert _run([*base, '-o', str(out)])[0] == 0
    assert QTable.read(out).meta['parameters']['budget'][
        'uncertainty_model'] == 'background'
    # resuming a 'total' table with the default model is refused
    code, _, err = _run([*base, '-o', str(tmp_path / 'lc_total.ecsv'),
                         '--resume'])
    assert code == 2 and 'measured with other parameters (budget)' in err
    assert len(err.strip().splitlines()) == 1
    # the command's flag is named, not the API's resume_from
    assert err.startswith('ccdphot batch: error: --resume: '), err
    code, _, err = _run([*base, '-o', str(tmp_path / 'x.ecsv'),
                         '--uncertainty-model', 'mixed'])
    assert code == 2 and "invalid choice: 'mixed'" in err
    assert not (tmp_path / 'x.ecsv').exists()


def test_fractional_variance_is_measures_option():
    """``batch --fractional-variance`` is ``measure``'s, one definition:
    the same choices (BudgetOptions'), default and help."""
    from ccdphot_ext.photometry.terms import FRACTIONAL_VARIANCES

    batch = _option('batch', '--fractional-variance')
    measure = _option('measure', '--fractional-variance')
    assert tuple(batch.choices) == FRACTIONAL_VARIANCES == ('squared',
                                                            'linear')
    for field in ('choices', 'default', 'help', 'metavar', 'dest'):
        assert getattr(batch, field) == getattr(measure, field), field
    assert batch.default == 'squared'


def test_fractional_variance_rows_equal_measures(files, tmp_path):
    """``--fractional-variance`` reaches every frame: with circles (pixels
    partly inside) each frame's rows equal ``ccdphot measure``'s with the
    same rule, 'linear' gives the larger sky variance, the table records
    the rule, and a resumed run with the other rule is refused."""
    frames = files['frames'][:2]
    base = [*frames, '--positions', files['positions'], '--radius', '4']
    cols = ('aperture_sum', 'aperture_sum_err', 'var_sky', 'var_source',
            'var_sky_mean', 'n_pix', 'sky', 'flags')
    runs = {}
    for rule in ('squared', 'linear'):
        out = tmp_path / f'lc_{rule}.ecsv'
        code, _, err = _run([*base, '-o', str(out), '--fractional-variance',
                             rule])
        assert code == 0 and err == '', err
        lc = runs[rule] = QTable.read(out)
        assert lc.meta['parameters']['budget']['fractional_variance'] == rule
        for frame in frames:
            one = tmp_path / f'm_{rule}.ecsv'
            code, _, err = ccdphot('measure', frame, '--positions',
                                   files['positions'], '--radius', '4',
                                   '--fractional-variance', rule, '-o', one)
            assert code == 0, err
            m, rows = QTable.read(one), lc[lc['frame'] == frame]
            assert rows['id'].tolist() == m['id'].tolist() == [7, 8, 9]
            for name in cols:
                np.testing.assert_allclose(
                    np.asarray(getattr(rows[name], 'value', rows[name])),
                    np.asarray(getattr(m[name], 'value', m[name])),
                    rtol=1e-12, err_msg=name)
    squared, linear = runs['squared'], runs['linear']
    np.testing.assert_array_equal(squared['aperture_sum'],
                                  linear['aperture_sum'])
    assert np.all(linear['var_sky'] > 1.01 * squared['var_sky'])
    code, _, err = _run([*base, '-o', str(tmp_path / 'lc_linear.ecsv'),
                         '--resume'])
    assert code == 2 and 'measured with other parameters (budget)' in err
    code, _, err = _run([*base, '-o', str(tmp_path / 'x.ecsv'),
                         '--fractional-variance', 'area'])
    assert code == 2 and "invalid choice: 'area'" in err


def test_sky_with_apertures_is_measures_option():
    """``batch --sky-with-apertures`` is ``measure``'s, one definition:
    the same flag, default and help."""
    batch = _option('batch', '--sky-with-apertures')
    measure = _option('measure', '--sky-with-apertures')
    for field in ('const', 'default', 'help', 'nargs', 'dest'):
        assert getattr(batch, field) == getattr(measure, field), field
    assert batch.default is False and batch.const is True


def _faint_frames(directory):
    """Two 48 x 96 frames of 15 faint stars (400 e- each, sigma 2 px) on a
    sky of 100 e-: too faint for the sky's source mask, their light lifts
    the whole-frame level (by about 1 e-, several tenths of its error);
    and their positions table."""
    x = np.tile([12.0, 30.0, 48.0, 66.0, 84.0], 3)
    y = np.repeat([10.0, 24.0, 38.0], 5)
    yy, xx = np.mgrid[:48, :96]
    light = sum(400.0 * np.exp(-((xx - a) ** 2 + (yy - b) ** 2) / 8.0)
                / (8.0 * np.pi) for a, b in zip(x, y, strict=True))
    frames = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        data = rng.poisson(light + 100.0) + rng.normal(0.0, 5.0, light.shape)
        path = directory / f'faint{seed}.fits'
        fits.PrimaryHDU(data, fits.Header({
            'BUNIT': 'adu', 'GAIN': 1.0, 'EXPTIME': 30.0,
            'MJD-OBS': 60400.0 + seed})).writeto(path)
        frames.append(str(path))
    positions = directory / 'faint.ecsv'
    QTable({'id': np.arange(1, 16), 'x_center': x,
            'y_center': y}).write(positions)
    return frames, str(positions)


def test_sky_with_apertures_rows_equal_measures(tmp_path):
    """``--sky-with-apertures`` reaches every frame: each frame's rows
    equal ``ccdphot measure``'s with and without it; by default the
    whole-frame level is measured again without the stars' light (lower),
    with it kept as measured; the table records the flag only when given,
    and ``--resume`` refuses a table made with the other setting, both
    ways."""
    frames, positions = _faint_frames(tmp_path)
    base = [*frames, '--positions', positions, '--size', '9']
    cols = ('aperture_sum', 'aperture_sum_err', 'var_sky', 'var_source',
            'var_sky_mean', 'n_pix', 'sky', 'flags')
    runs = {}
    for flag in ((), ('--sky-with-apertures',)):
        out = tmp_path / f'lc_{len(flag)}.ecsv'
        code, _, err = _run([*base, '-o', str(out), *flag])
        assert code == 0 and err == '', err
        lc = runs[flag] = QTable.read(out)
        params = lc.meta['parameters']
        assert params.get('sky_without_apertures', True) is not bool(flag)
        assert ('sky_without_apertures' in params) is bool(flag)
        for frame in frames:
            one = tmp_path / f'm_{len(flag)}.ecsv'
            code, _, err = ccdphot('measure', frame, '--positions',
                                   positions, '--size', '9', *flag, '-o',
                                   one)
            assert code == 0, err
            m, rows = QTable.read(one), lc[lc['frame'] == frame]
            assert rows['id'].tolist() == m['id'].tolist() == list(
                range(1, 16))
            for name in cols:
                np.testing.assert_array_equal(
                    np.asarray(getattr(rows[name], 'value', rows[name])),
                    np.asarray(getattr(m[name], 'value', m[name])),
                    err_msg=name)
    without, kept = runs[()], runs[('--sky-with-apertures',)]
    lift = (kept['sky'] - without['sky']).value
    assert np.all((lift > 0.5) & (lift < 2.0))
    assert np.all(without['aperture_sum'] > kept['aperture_sum'])
    for made, other in (('lc_0.ecsv', ['--sky-with-apertures']),
                        ('lc_1.ecsv', [])):
        code, _, err = _run([*base, '-o', str(tmp_path / made), '--resume',
                             *other])
        assert code == 2, err
        assert 'measured with other parameters (sky_without_apertures)' \
            in err
    code, _, err = _run([*base, '-o', str(tmp_path / 'lc_1.ecsv'),
                         '--resume', '--sky-with-apertures'])
    assert code == 0, err
