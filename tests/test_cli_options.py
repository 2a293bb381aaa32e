"""``ccdphot measure``/``find`` options (run in process, as
``clirun.ccdphot``): positions tables of other tools, ids kept, find ->
measure equal to --find, --hdu, --unit, --radius, --sky background2d, the
summary with -o, the capped table, CSV ra/dec."""

import os
import re
import subprocess
import sys

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable, Table
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS
from clirun import ccdphot, installed_ccdphot
from expected_warnings import gradient_warning
from photutils.aperture import CircularAperture
from photutils.background import Background2D

from ccdphot_ext import SkyEstimate, photometer, read_frame


@pytest.fixture(scope='module')
def sample(tmp_path_factory, sample_ccd):
    d = tmp_path_factory.mktemp('cli_options')
    sample_ccd.write(d / 'sample.fits')
    return d


def _same(a, b, names=None):
    for name in names or b.colnames:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]),
                                      err_msg=name)


def test_find_then_measure_equals_measure_find(sample):
    """A ``ccdphot find`` table's suggested boxes are used by --positions."""
    d = sample
    code, out, err = ccdphot('find', d / 'sample.fits', '-o', d / 'f.ecsv')
    assert code == 0, err
    found = QTable.read(d / 'f.ecsv')
    assert found['area'].unit == u.pix ** 2 and found['fwhm'].unit == u.pix
    # units on the summary line
    assert re.search(r'std \d+\.\d{3} adu per pixel', out)
    code, _, err = ccdphot('measure', d / 'sample.fits', '--positions',
                           d / 'f.ecsv', '-o', d / 'a.ecsv')
    assert code == 0, err
    code, _, err = ccdphot('measure', d / 'sample.fits', '--find', '-o',
                           d / 'b.ecsv')
    assert code == 0, err
    a, b = QTable.read(d / 'a.ecsv'), QTable.read(d / 'b.ecsv')
    assert len(a) == len(found) > 20
    _same(a, b)
    assert a['id'].tolist() == found['id'].tolist()


def test_measure_keeps_ids_and_reads_sextractor_names(sample, sample_ccd):
    """A 1-based Source Extractor table with NUMBER ids, circles."""
    d = sample
    xy = np.array([[501.5, 167.5], [334.5, 249.5], [120.25, 300.75]])
    Table({'NUMBER': [17, 4, 230], 'X_IMAGE': xy[:, 0] + 1,
           'Y_IMAGE': xy[:, 1] + 1}).write(d / 'sex.csv', overwrite=True)
    code, out, err = ccdphot('measure', d / 'sample.fits', '--positions',
                             d / 'sex.csv', '--radius', '6', '-o',
                             d / 'sex.ecsv')
    assert code == 0, err
    got = QTable.read(d / 'sex.ecsv')
    assert got['id'].tolist() == [17, 4, 230]
    with gradient_warning():
        expected = photometer(sample_ccd, CircularAperture(xy, 6.0),
                              SkyEstimate.from_image(sample_ccd, gain=2.23))
    _same(got, expected, ['x_center', 'y_center', 'aperture_sum',
                          'aperture_sum_err', 'flags'])


def test_blank_position_is_refused_with_its_row(sample, tmp_path):
    (tmp_path / 'pos.csv').write_text('id,x,y\n1,501.5,167.5\n2,,249.5\n')
    out = tmp_path / 'never.ecsv'
    code, stdout, err = ccdphot('measure', sample / 'sample.fits',
                                '--positions', tmp_path / 'pos.csv', '-o',
                                out)
    assert code == 2
    assert err.count('\n') == 1 and 'Traceback' not in err
    assert 'column x is blank or NaN in row(s) 2' in err
    assert not out.exists()
    (tmp_path / 'bad.csv').write_text('a,b\n1,2\n')
    code, _, err = ccdphot('measure', sample / 'sample.fits',
                           '--positions', tmp_path / 'bad.csv')
    assert code == 2
    assert 'x_centroid/y_centroid' in err and 'X(FITS)/Y(FITS)' in err


def test_hdu_and_unit(sample_ccd, tmp_path):
    """The frame in the second extension, no BUNIT: --hdu and --unit."""
    path = tmp_path / 'mef.fits'
    header = fits.Header({'EXTNAME': 'SCI', 'EGAIN': 2.23, 'EXPTIME': 30.0})
    fits.HDUList([fits.PrimaryHDU(np.zeros((5, 5))),
                  fits.ImageHDU(sample_ccd.data, header=header)]).writeto(
        path)
    box = '158:178,492:512'
    for hdu in ('SCI,1', '1', 'SCI'):
        code, out, err = ccdphot('measure', path, '--hdu', hdu, '--unit',
                                 'electron', '--box', box, '-o',
                                 tmp_path / 'm.ecsv')
        assert code == 0, err
        assert 'BUNIT' not in err  # --unit said what the data are
        got = QTable.read(tmp_path / 'm.ecsv')
        assert got['aperture_sum'].unit == u.electron
        frame = read_frame(path, hdu=1, unit='electron')
        with gradient_warning():
            expected = photometer(frame, [_box(box)],
                                  SkyEstimate.from_image(frame, gain=1.0))
        _same(got, expected, ['aperture_sum', 'aperture_sum_err'])
    code, _, err = ccdphot('measure', path, '--hdu', 'NOPE', '--box', box)
    assert code == 2 and 'NOPE' in err
    code, _, err = ccdphot('find', path, '--hdu', 'SCI', '--unit', 'adu')
    assert code == 0, err
    code, _, err = ccdphot('measure', path, '--unit', 'furlong/xyz',
                           '--box', box)
    assert code == 2 and "--unit: 'furlong/xyz' is not a unit" in err


def _box(text):
    from ccdphot_ext import BoxAperture
    y, x = (tuple(int(v) for v in part.split(':'))
            for part in text.split(','))
    return BoxAperture.from_slices(np.s_[y[0]:y[1], x[0]:x[1]])


def test_sky_background2d(sample, sample_ccd):
    code, out, err = ccdphot('measure', sample / 'sample.fits', '--box',
                             '158:178,492:512', '--sky', 'background2d',
                             '--box-size', '64', '--filter-size', '3', '-o',
                             sample / 'bkg.ecsv', '--plot',
                             sample / 'bkg_plots')
    assert code == 0, err
    assert sorted(os.listdir(sample / 'bkg_plots')) == [
        'budget.png', 'overview.png', 'star_1.png']
    assert 'Background2D map, box 64x64, filter 3x3' in out
    bkg = Background2D(sample_ccd.data, 64, filter_size=3)
    # the sample's sky slopes by 10 ADU per mesh: the filter is propagated;
    # the command line gives the frame (the sources' light taken out)
    with pytest.warns(AstropyUserWarning, match='median filter'):
        sky = SkyEstimate.from_background2d(bkg, gain=2.23,
                                            data=sample_ccd.data,
                                            mask=sample_ccd.mask)
    expected = photometer(sample_ccd, [_box('158:178,492:512')], sky)
    _same(QTable.read(sample / 'bkg.ecsv'), expected,
          ['sky', 'aperture_sum', 'aperture_sum_err'])
    code, _, err = ccdphot('measure', sample / 'sample.fits', '--box',
                           '158:178,492:512', '--box-size', '64')
    assert code == 2 and 'need --sky background2d' in err


def test_summary_with_output_and_capped_table(sample):
    code, out, err = ccdphot('measure', sample / 'sample.fits', '--find',
                             '-o', sample / 'all.ecsv')
    assert code == 0, err
    table = QTable.read(sample / 'all.ecsv')
    lines = out.splitlines()
    assert len(lines) < 12 < len(table)  # a summary, not the table
    n_ok = int(np.sum(table['flags'] == 0))
    median = np.median(table['snr'][np.isfinite(table['snr'])])
    assert (f'rows      {len(table)}: {n_ok} unflagged, median SNR '
            f'{median:.1f}') in out
    assert f'wrote     {sample / "all.ecsv"} (ecsv, {len(table)} rows)' in out
    code, out, err = ccdphot('measure', sample / 'sample.fits', '--find',
                             '--max-rows', '4')
    assert code == 0, err
    assert f'... {len(table) - 4} more rows not shown' in out
    ids = [ln.split()[0] for ln in out.splitlines()
           if ln.split() and ln.split()[0].isdigit()]
    assert ids == ['1', '2', '3', '4']
    # ids that collide (a --box row and a find id 1) are renumbered, said
    code, out, err = ccdphot('measure', sample / 'sample.fits', '--find',
                             '--box', '158:178,492:512', '-o',
                             sample / 'mixed.ecsv')
    assert code == 0, err
    assert 'warning: the ids of the --box, --positions and --find rows ' \
        'collide' in err
    mixed = QTable.read(sample / 'mixed.ecsv')
    assert mixed['id'].tolist() == list(range(1, len(table) + 2))


def _write_wcs_frame(sample_ccd, path):
    """The sample frame with a TAN WCS, written to ``path``; its WCS."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    wcs.wcs.crval = [56.75, 24.1]
    wcs.wcs.crpix = [380.0, 250.0]
    wcs.wcs.cdelt = [-2e-4, 2e-4]
    ccd = sample_ccd.copy()
    ccd.wcs = wcs
    ccd.write(path)
    return wcs


def test_csv_writes_ra_dec_columns(sample_ccd, tmp_path):
    wcs = _write_wcs_frame(sample_ccd, tmp_path / 'wcs.fits')
    code, _, err = ccdphot('measure', tmp_path / 'wcs.fits', '--box',
                           '158:178,492:512', '-o', tmp_path / 'out.csv')
    assert code == 0, err
    text = (tmp_path / 'out.csv').read_text()
    table = Table.read(tmp_path / 'out.csv', format='ascii.csv')
    assert 'sky_centroid' not in table.colnames
    coord = wcs.pixel_to_world(501.5, 167.5)
    assert table['ra'][0] == pytest.approx(coord.ra.deg, abs=1e-9)
    assert table['dec'][0] == pytest.approx(coord.dec.deg, abs=1e-9)
    assert '"' not in text


def test_help_starts_without_heavy_imports():
    """``ccdphot --help`` loads no numpy/astropy/photutils/scipy/matplotlib:
    each subcommand imports what it needs when it runs."""
    code = ('import sys\n'
            'from ccdphot_ext.cli.main import build_parser\n'
            'parser = build_parser()\n'
            'for argv in ([], ["measure"], ["find"], ["batch"], ["demo"]):\n'
            '    try:\n'
            '        parser.parse_args([*argv, "--help"])\n'
            '    except SystemExit:\n'
            '        pass\n'
            'heavy = sorted({m.split(".")[0] for m in sys.modules} & {"numpy", '
            '"astropy", "photutils", "scipy", "matplotlib", "dask"})\n'
            'print("HEAVY", heavy)\n')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, env=os.environ.copy(), timeout=60)
    assert run.returncode == 0, run.stderr
    assert 'HEAVY []' in run.stdout
    # the installed console script as a user types it
    code, out, err = installed_ccdphot('--help')
    assert code == 0 and 'measure' in out and err == ''


def test_regions_show_flags(sample):
    # annulus skies: against the whole-frame level every box of the sample
    # frame, whose sky slopes, is flagged 32, and the file then has one
    # colour for all
    code, out, err = ccdphot('measure', sample / 'sample.fits', '--find',
                             '--sky', 'annulus', '-o', sample / 'reg.ecsv',
                             '--regions', sample / 'stars.reg')
    assert code == 0, err
    table = QTable.read(sample / 'reg.ecsv')
    lines = (sample / 'stars.reg').read_text().splitlines()[2:]
    assert len(lines) == len(table)
    for line, row in zip(lines, table, strict=True):
        if row['flags']:
            assert 'color=red' in line
            assert f'text={{{row["id"]} [flags {row["flags"]}]}}' in line
        else:
            assert 'color=green' in line and f'text={{{row["id"]}}}' in line
    assert int((table['flags'] > 0).sum()) > 0  # both colours are tested
    assert f'wrote     {sample / "stars.reg"}' in out


def _epilog_examples(text):
    """The ``ccdphot ...`` command lines of a help text (continuations
    joined)."""
    import shlex

    commands, current = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if current is not None:
            current += ' ' + stripped.rstrip('\\')
            if not stripped.endswith('\\'):
                commands.append(current)
                current = None
        elif stripped.startswith('ccdphot '):
            current = stripped.split('#')[0].rstrip().rstrip('\\')
            if not stripped.endswith('\\'):
                commands.append(current)
                current = None
    return [shlex.split(c)[1:] for c in commands]


def test_help_epilogs_show_the_new_options_in_examples_that_parse():
    from ccdphot_ext.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == 'command')
    texts = {name: p.format_help() for name, p in sub.choices.items()}
    texts['ccdphot'] = parser.format_help()
    examples = [argv for text in texts.values()
                for argv in _epilog_examples(text)]
    shown = ' '.join(' '.join(argv) for argv in examples)
    for option in ('--hdu', '--unit', '--radius', '--sky background2d',
                   '--box-size', '--filter-size', '--regions', '--find',
                   '--positions image.cat'):
        assert option in shown, option
    for argv in examples:  # every example is a valid command line
        args = parser.parse_args(argv)
        assert args.command == argv[0]


def test_ra_dec_positions_use_the_image_wcs(sample_ccd, tmp_path):
    wcs = _write_wcs_frame(sample_ccd, tmp_path / 'wcs.fits')
    sky = wcs.pixel_to_world([501.5, 334.5], [167.5, 249.5])
    Table({'id': [31, 32], 'ra': sky.ra.deg, 'dec': sky.dec.deg}).write(
        tmp_path / 'radec.csv')
    code, _, err = ccdphot('measure', tmp_path / 'wcs.fits', '--positions',
                           tmp_path / 'radec.csv', '-o',
                           tmp_path / 'out.ecsv')
    assert code == 0, err
    out = QTable.read(tmp_path / 'out.ecsv')
    assert out['id'].tolist() == [31, 32]
    np.testing.assert_allclose(out['x_center'], [501.5, 334.5], atol=1e-6)
    np.testing.assert_allclose(out['y_center'], [167.5, 249.5], atol=1e-6)
    code, _, err = ccdphot('measure', tmp_path / 'wcs.fits', '--hdu', '0',
                           '--positions', tmp_path / 'radec.csv')
    assert code == 0, err


@pytest.mark.parametrize('command', ['measure', 'batch'])
def test_measure_and_batch_share_the_detector_options(command, capsys):
    """One definition: the same names, types and bounds in both."""
    from ccdphot_ext.cli.main import build_parser

    parser = build_parser()
    argv = [command, 'f.fits', '--positions', 'p.ecsv', '-o', 'out.ecsv',
            '--size', '15',
            '--gain', '2.5',
            '--read-noise', '0', '--exptime', '30', '--saturation', '6e4',
            '--zeropoint', '-1.5']
    args = parser.parse_args(argv)
    assert (args.gain, args.read_noise, args.exptime, args.saturation,
            args.zeropoint) == (2.5, 0.0, 30.0, 60000.0, -1.5)
    bad = argv.copy()
    bad[bad.index('--read-noise') + 1] = '-1'
    with pytest.raises(SystemExit):
        parser.parse_args(bad)
    assert 'argument --read-noise: must be non-negative' in (
        capsys.readouterr().err)
