"""``ccdphot measure`` / ``find``: rows equal photometer, and every bad input
gives exit code 2 and one line on stderr, leaving earlier output intact."""

import importlib
import os
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use('Agg')

import matplotlib.image as mpimg
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import QTable, Table
from clirun import EXE, ccdphot
from expected_warnings import gradient_warning
from photutils.aperture import CircularAnnulus, CircularAperture

from ccdphot_ext import (
    FLAG_TRUNCATED,
    NOTEBOOK_BOXES,
    BoxAperture,
    BudgetOptions,
    DetectorParameters,
    SigmaThreshold,
    SkyEstimate,
    photometer,
    sample_truth,
)
from ccdphot_ext.cli.main import CLIError, build_parser, main
from ccdphot_ext.detection.findstars import (
    find_stars,
    star_boxes,
    star_like_flags,
)
from ccdphot_ext.flags import FLAG_NO_SOURCE_TERM

BOX1, BOX2 = '158:178,492:512', '240:260,325:345'
OLD = '# old content, must survive a failed run\n'


@pytest.fixture(scope='module')
def frames(tmp_path_factory, sample_ccd):
    """Real FITS files: the sample frame and a gallery of bad ones."""
    d = tmp_path_factory.mktemp('frames')
    sample_ccd.write(d / 'sample.fits')
    (d / 'empty.fits').write_bytes(b'')
    (d / 'text.fits').write_text('just a text file, not an image\n' * 50)
    raw = (d / 'sample.fits').read_bytes()
    (d / 'truncated.fits').write_bytes(raw[:len(raw) // 3])
    fits.writeto(d / 'cube.fits', np.zeros((3, 20, 20)))
    fits.writeto(d / 'sigma2.fits', 2 * sample_ccd.uncertainty.array)
    fits.writeto(d / 'small.fits', np.ones((10, 10)))
    return d


@pytest.fixture(scope='module')
def ccd(frames):
    return CCDData.read(frames / 'sample.fits')


def _run(argv):
    """``ccdphot ARGV`` in this process: (exit code, stdout, stderr)."""
    return ccdphot(*argv)


def _assert_same_rows(written, expected):
    assert written.colnames == expected.colnames
    for name in expected.colnames:
        a, b = written[name], expected[name]
        assert getattr(a, 'unit', None) == getattr(b, 'unit', None), name
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b),
                                      err_msg=name)


# -- measure: the rows are photometer's -------------------------------------

def test_measure_rows_equal_photometer(frames, ccd, tmp_path):
    out = tmp_path / 'stars.ecsv'
    code, stdout, err = _run(['measure', frames / 'sample.fits', '--box',
                              BOX1, '--box', BOX2, '--threshold', '2',
                              '-o', out])
    assert code == 0, err
    # the sample frame's sky gradient biases both boxes: said in one line
    assert err.count('\n') == 1 and 'background varies across the frame' in err
    boxes = [BoxAperture.from_slices(NOTEBOOK_BOXES[s])
             for s in ('star1', 'star2')]
    with gradient_warning():
        expected = photometer(ccd, boxes,
                              SkyEstimate.from_image(ccd, gain=2.23),
                              threshold=SigmaThreshold(2.0))
    written = QTable.read(out)
    _assert_same_rows(written, expected)
    # gain and exposure time came from the header
    assert written.meta['gain'] == 2.23
    assert written.meta['gain_source'] == 'EGAIN'
    assert written.meta['exptime'] == 30.0
    assert written.meta['image'] == str(frames / 'sample.fits')
    # with -o, stdout gets a summary, not the table
    assert 'rows      2: ' in stdout
    assert f'median SNR {np.median(expected["snr"]):.1f}' in stdout
    assert not any(ln.split()[:1] == ['1'] for ln in stdout.splitlines())
    assert f'wrote     {out} (ecsv, 2 rows)' in stdout
    # without -o the printed table shows the same numbers
    code, stdout, err = _run(['measure', frames / 'sample.fits', '--box',
                              BOX1, '--box', BOX2, '--threshold', '2'])
    assert code == 0, err
    for row in expected:
        line = next(ln for ln in stdout.splitlines()
                    if ln.split()[:1] == [str(row['id'])])
        assert f'{row["aperture_sum"].value:.1f}' in line
        assert f'{row["aperture_sum_err"].value:.1f}' in line
        assert f'{row["snr"]:.1f}' in line
    assert 'gain 2.23 e-/ADU (EGAIN)' in stdout


def test_measure_options_reach_photometer(frames, ccd, tmp_path):
    out = tmp_path / 'stars.csv'
    code, _, err = _run(['measure', frames / 'sample.fits', '--box', BOX1,
                         '--sky', 'median', '--gain', '1.5', '--read-noise',
                         '8', '--exptime', '60', '--saturation', '1200',
                         '--zeropoint', '25', '-o', out])
    assert code == 0, err
    with gradient_warning():
        expected = photometer(ccd,
                              BoxAperture.from_slices(NOTEBOOK_BOXES['star1']),
                              SkyEstimate.from_image(ccd, method='median',
                                                     gain=1.5),
                              gain=1.5,
                              detector=DetectorParameters(
                                  read_noise=8.0, exptime=60.0, saturation=1200.0),
                              zeropoint=25.0)
    written = Table.read(out, format='ascii.csv')  # csv from the extension
    assert written.colnames == expected.colnames
    for name in expected.colnames:
        np.testing.assert_array_equal(
            written[name], np.asarray(getattr(expected[name], 'value',
                                              expected[name])), err_msg=name)
    assert written['flags'][0] & 4  # the low saturation level flags it
    assert written['mag'][0] == pytest.approx(
        25 - 2.5 * np.log10(written['aperture_sum'][0] / 60), rel=1e-12)


def test_measure_fractional_variance_option(frames, ccd, tmp_path):
    """Circles (fractional edge pixels): each rule reaches photometer; a
    wrong rule is one error line naming the parameter."""
    pos = tmp_path / 'pos.csv'
    pos.write_text('x,y\n60.3,51.7\n')
    sky = SkyEstimate.from_image(ccd, gain=2.23)  # the header's EGAIN
    for rule in ('squared', 'linear'):
        out = tmp_path / f'{rule}.csv'
        code, _, err = _run(['measure', frames / 'sample.fits', '--positions',
                             pos, '--radius', '3', '--fractional-variance',
                             rule, '-o', out])
        assert code == 0, err
        with gradient_warning():
            expected = photometer(ccd, CircularAperture([(60.3, 51.7)], 3.0), sky,
                                  budget=BudgetOptions(fractional_variance=rule))
        assert Table.read(out)['var_sky'][0] == pytest.approx(
            expected['var_sky'][0].value, rel=1e-12)
    assert (Table.read(tmp_path / 'squared.csv')['var_sky'][0]
            < Table.read(tmp_path / 'linear.csv')['var_sky'][0])
    code, _, err = _run(['measure', frames / 'sample.fits', '--positions',
                         pos, '--radius', '3', '--fractional-variance',
                         'area'])
    assert code == 2
    assert err.strip().splitlines()[-1].startswith(
        "ccdphot measure: error: argument --fractional-variance: invalid "
        "choice: 'area'")


def test_measure_positions_table_and_size(frames, ccd, tmp_path):
    truth = sample_truth()[:6]
    table = Table({'x': truth['x'], 'y': truth['y']})
    table.write(tmp_path / 'pos.csv')
    QTable({'x_center': truth['x'], 'y_center': truth['y']}).write(
        tmp_path / 'pos.ecsv')
    xy = np.column_stack([truth['x'], truth['y']])
    with gradient_warning():
        expected = photometer(ccd, BoxAperture(xy, 15, 11),
                              SkyEstimate.from_image(ccd, gain=2.23))
    for name in ('pos.csv', 'pos.ecsv'):
        out = tmp_path / f'out_{name}.ecsv'
        code, _, err = _run(['measure', frames / 'sample.fits', '--positions',
                             tmp_path / name, '--size', '15,11', '-o', out])
        assert code == 0, err
        _assert_same_rows(QTable.read(out), expected)


def test_measure_annulus_sky_recovers_the_true_flux(frames, ccd, tmp_path):
    out = tmp_path / 'ann.ecsv'
    code, stdout, err = _run(['measure', frames / 'sample.fits', '--box',
                              BOX1, '--box', BOX2, '--sky', 'annulus',
                              '--annulus', '15,25', '-o', out])
    assert code == 0, err
    boxes = [BoxAperture.from_slices(NOTEBOOK_BOXES[s])
             for s in ('star1', 'star2')]
    annulus = CircularAnnulus([(501.5, 167.5), (334.5, 249.5)], 15, 25)
    # the header's gain (EGAIN) removes the estimator's Poisson-skew bias
    expected = photometer(ccd, boxes, SkyEstimate.from_annulus(
        ccd, annulus, gain=ccd.header['EGAIN']))
    written = QTable.read(out)
    _assert_same_rows(written, expected)
    assert 'annulus, one level per aperture' in stdout
    # the local sky removes the frame's gradient: fluxes agree with truth
    truth = sample_truth()
    for row, name in zip(written, ('star1', 'star2'), strict=True):
        true_flux = truth[truth['name'] == name]['flux'][0]
        pull = (row['aperture_sum'].value - true_flux) / \
            row['aperture_sum_err'].value
        assert abs(pull) < 3


def test_annulus_route_applies_the_gain(tmp_path):
    """On a faint Poisson sky (3 e-, read noise 2 e-, 2 e-/ADU) the clipped
    mean of each annulus reads low by a sixth of its error; ``measure
    --sky annulus`` with ``--gain`` and ``batch --sky annulus`` with the
    header's GAIN remove that bias (level pulls against each annulus'
    plain mean, which is unbiased and shares most of its noise: within
    0.05), and without a gain it stays."""
    rng = np.random.default_rng(12)
    size, gain = 1024, 2.0
    data = (rng.poisson(3.0, (size, size))
            + rng.normal(0.0, 2.0, (size, size))) / gain
    xy = np.arange(32.0, size - 31, 32.0)
    x, y = (v.ravel() for v in np.meshgrid(xy, xy))
    pos = tmp_path / 'pos.csv'
    Table({'x': x, 'y': y}).write(pos)
    fits.writeto(tmp_path / 'plain.fits', data)
    header = fits.Header({'GAIN': gain})
    fits.writeto(tmp_path / 'gain.fits', data, header)
    plain = SkyEstimate.from_annulus(
        data, CircularAnnulus(np.c_[x, y], 10, 16), method='mean',
        exclude=CircularAperture(np.c_[x, y], 3))

    def level_pulls(table):
        return ((np.asarray(table['sky']) - plain.value)
                / np.asarray(table['sky_error_on_mean']))

    common = ['--positions', pos, '--radius', '3', '--sky', 'annulus',
              '--annulus', '10,16']
    runs = {}
    for name, argv in (('gain', ['measure', tmp_path / 'plain.fits',
                                 '--gain', '2', *common]),
                       ('none', ['measure', tmp_path / 'plain.fits',
                                 *common]),
                       ('batch', ['batch', tmp_path / 'gain.fits',
                                  *common])):
        out = tmp_path / f'{name}.ecsv'
        code, _, err = _run([*argv, '-o', out])
        assert code == 0, err
        runs[name] = QTable.read(out)
    assert abs(np.mean(level_pulls(runs['gain']))) < 0.05
    assert np.mean(level_pulls(runs['none'])) < -0.1
    np.testing.assert_array_equal(runs['batch']['sky'], runs['gain']['sky'])


def test_annulus_route_on_a_sky_subtracted_frame(tmp_path):
    """A sky-subtracted frame (20 e- a pixel subtracted, 1 e- read noise,
    in float32 FITS) with ``--sky annulus --gain 1``: one annulus' level
    of 1e-4 sent the exact Poisson model to 438 e- with an infinite error
    and the command stopped ("error_on_mean must be finite"). It now
    measures every row against the annuli's levels on the pedestal their
    pixels pooled show: the levels of `SkyEstimate.from_annulus`, centred
    on the truth (0) within their errors."""
    rng = np.random.default_rng(1)
    for _ in range(3):
        data = (rng.poisson(20, (256, 256))
                + rng.normal(0, 1, (256, 256)) - 20).astype(np.float32)
    fits.writeto(tmp_path / 'sub.fits', data)
    x, y = (v.ravel() for v in np.meshgrid(np.arange(20.0, 240, 24),
                                           np.arange(20.0, 240, 24)))
    Table({'x': x, 'y': y}).write(tmp_path / 'pos.csv')
    out = tmp_path / 'sub.ecsv'
    code, _, err = _run(['measure', tmp_path / 'sub.fits', '--positions',
                         tmp_path / 'pos.csv', '--radius', '4', '--sky',
                         'annulus', '--annulus', '10,16', '--gain', '1',
                         '-o', out])
    assert code == 0, err
    table = QTable.read(out)
    sky = SkyEstimate.from_annulus(data, CircularAnnulus(np.c_[x, y], 10, 16),
                                   gain=1.0)
    assert sky.meta['pedestal'] == pytest.approx(-20.0, abs=1.0)
    np.testing.assert_array_equal(np.asarray(table['sky']), sky.value)
    error = np.asarray(table['sky_error_on_mean'])
    assert np.all(np.isfinite(error) & (error > 0))
    assert abs(np.mean(np.asarray(table['sky']) / error)) < 0.5
    pulls = (np.asarray(table['aperture_sum'])
             / np.asarray(table['aperture_sum_err']))
    assert abs(np.mean(pulls)) < 0.4 and 0.8 < np.std(pulls) < 1.2


def test_measure_default_annulus_clears_the_box(frames, ccd):
    code, stdout, err = _run(['measure', frames / 'sample.fits', '--box',
                              BOX1, '--sky', 'annulus'])
    assert code == 0, err
    # half-diagonal of a 20 x 20 box is 14.1: annulus 17 to 27 pixels
    annulus = CircularAnnulus([(501.5, 167.5)], 17.0, 27.0)
    sky = SkyEstimate.from_annulus(ccd, annulus, gain=ccd.header['EGAIN'])
    expected = photometer(ccd, BoxAperture.from_slices(NOTEBOOK_BOXES['star1']),
                          sky)
    assert f'{expected["aperture_sum"][0].value:.1f}' in stdout


def test_measure_uncertainty_file_wins(frames, ccd, tmp_path):
    out = tmp_path / 'unc.ecsv'
    code, _, err = _run(['measure', frames / 'sample.fits', '--box', BOX1,
                         '--uncertainty', frames / 'sigma2.fits', '-o', out])
    assert code == 0, err
    sigma2 = 2 * ccd.uncertainty.array
    with gradient_warning():
        expected = photometer(
            ccd, BoxAperture.from_slices(NOTEBOOK_BOXES['star1']),
            SkyEstimate.from_image(ccd, uncertainty=sigma2, gain=2.23),
            uncertainty=sigma2)
    written = QTable.read(out)
    _assert_same_rows(written, expected)
    # the map's variance, plain numpy: 4 x the file's own map
    assert written['var_sky'][0].value == pytest.approx(
        (sigma2[158:178, 492:512] ** 2).sum(), rel=1e-12)


def test_measure_warnings_are_one_line(frames, sample_ccd, tmp_path):
    data = sample_ccd.data.copy()
    data[:5] = np.nan
    path = tmp_path / 'nan.fits'
    CCDData(data, unit='adu', meta=sample_ccd.meta).write(path)
    code, _, err = _run(['measure', path, '--box', BOX1])
    assert code == 0
    lines = err.strip().splitlines()
    # the NaN rows and the sample frame's sky gradient, one line each
    assert len(lines) == 2
    assert all(line.startswith('ccdphot measure: warning: ')
               for line in lines)
    assert 'NaN' in lines[0]
    assert 'background varies across the frame' in lines[1]


def test_an_invalid_header_gain_is_said_once_and_named(frames, sample_ccd,
                                                       tmp_path):
    meta = sample_ccd.meta.copy()
    meta.pop('EGAIN', None)
    meta['GAIN'] = 0.0
    path = tmp_path / 'gain0.fits'
    CCDData(sample_ccd.data, unit='adu', meta=meta).write(path)
    code, out, err = _run(['measure', path, '--box', BOX1])
    assert code == 0
    gain_lines = [line for line in err.splitlines() if 'GAIN=0.0' in line]
    assert len(gain_lines) == 1  # read twice (summary and table), said once
    assert 'must be positive' in gain_lines[0]
    assert 'gain unknown (invalid GAIN=0.0 ignored)' in out


def test_measure_plots(frames, tmp_path):
    plots = tmp_path / 'plots'
    code, stdout, err = _run(['measure', frames / 'sample.fits', '--box',
                              BOX1, '--box', BOX2, '--box', '115:145,210:245',
                              '--plot', plots, '--plot-stars', '2'])
    assert code == 0, err
    names = sorted(p.name for p in plots.iterdir())
    # the two rows of highest SNR get a one-page figure
    assert names == ['budget.png', 'overview.png', 'star_1.png',
                     'star_2.png']
    assert 'wrote     4 figures' in stdout
    sheet = mpimg.imread(plots / 'star_1.png')
    assert sheet.shape[:2] == (900, 1600)
    assert sheet[..., :3].std() > 0.05
    overview = mpimg.imread(plots / 'overview.png')
    assert overview.shape[1] == 1000


def test_measure_plot_figures_show_the_rows(frames, ccd, monkeypatch,
                                            tmp_path):
    """Intercept the figures before they are written and inspect them."""
    import ccdphot_ext.visualization.figures as cplt

    seen = {}

    def keep(figures, outdir, **kwargs):
        seen.update(figures)
        return []

    monkeypatch.setattr(cplt, 'save_figures', keep)
    code, _, err = _run(['measure', frames / 'sample.fits', '--box', BOX1,
                         '--box', BOX2, '--threshold', '3', '--plot',
                         tmp_path / 'p'])
    assert code == 0, err
    overview = seen['overview'].axes[0]
    np.testing.assert_array_equal(overview.images[0].get_array(), ccd.data)
    assert [t.get_text() for t in overview.texts] == ['1', '2']
    assert len(overview.patches) == 2
    budget = seen['budget'].axes[0]
    # one bar per row for every budget term of the table: the threshold's
    # selection and the whole-frame level's offset too
    terms = ['sky', 'source', 'sky_mean', 'selection', 'sky_offset']
    assert [t.get_text() for t in budget.get_legend().get_texts()] == terms
    assert len(budget.patches) == 2 * len(terms)
    sheet = seen['star_2'].axes
    titles = [ax.get_title() for ax in sheet]
    assert any(t.startswith('3-sigma mask') for t in titles)
    assert seen['star_2']._suptitle.get_text() == 'id 2 at (334.5, 249.5)'


# -- find and --find -------------------------------------------------------

def test_find_lists_the_true_stars(frames, ccd, tmp_path):
    out = tmp_path / 'found.ecsv'
    code, stdout, err = _run(['find', frames / 'sample.fits', '--n-sigma',
                              '10', '-o', out])
    assert code == 0, err
    found = QTable.read(out)
    expected = find_stars(ccd, SkyEstimate.from_image(ccd), n_sigma=10)
    _assert_same_rows(found, expected)
    assert f'{len(found)} star(s) above 10 sigma' in stdout
    # against the truth: every star of 6000 ADU or more, within 1 pixel,
    # and nothing that is not a star
    truth = sample_truth()
    dist = np.hypot(np.asarray(found['x_center'])[:, None] - truth['x'],
                    np.asarray(found['y_center'])[:, None] - truth['y'])
    assert dist.min(axis=1).max() < 1.0
    bright = np.asarray(truth['flux']) >= 6000
    assert np.all(dist.min(axis=0)[bright] < 1.0)


def test_measure_find_uses_the_suggested_boxes(frames, ccd, tmp_path):
    sky = SkyEstimate.from_image(ccd)
    stars = find_stars(ccd, sky, n_sigma=10)
    for extra, boxes in (
            ([], star_boxes(stars)),
            (['--size', '9'], BoxAperture(
                np.column_stack([stars['x_center'], stars['y_center']]), 9,
                9))):
        out = tmp_path / 'fm.ecsv'
        code, _, err = _run(['measure', frames / 'sample.fits', '--find',
                             '--find-n-sigma', '10', *extra, '-o', out])
        assert code == 0, err
        with gradient_warning():
            # the photometry's sky has the header's gain (EGAIN)
            expected = photometer(ccd, boxes,
                                  SkyEstimate.from_image(ccd, gain=2.23))
        # the detections not like a star are flagged 512
        expected['flags'] |= star_like_flags(stars)
        _assert_same_rows(QTable.read(out), expected)


def test_measure_find_warns_of_a_hot_pixel(tmp_path):
    """A lone hot pixel (a cosmic-ray hit) that --find detects is measured
    with the stars, its row flagged 512: the command warns, naming its id;
    frames of stars alone get no such warning."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:200, :200]
    data = rng.normal(100.0, 5.0, (200, 200))
    for x, y in ((50.0, 60.0), (140.0, 120.0)):
        data += 3000.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 8.0) / (
            8.0 * np.pi)
    clean = tmp_path / 'stars.fits'
    fits.writeto(clean, data)
    data[150, 30] = 1.0e6
    hit = tmp_path / 'hit.fits'
    fits.writeto(hit, data)
    code, _, err = _run(['measure', clean, '--find', '-o',
                         tmp_path / 'clean.ecsv'])
    assert code == 0, err
    assert 'sharper than a star' not in err
    code, _, err = _run(['measure', hit, '--find', '-o',
                         tmp_path / 'hit.ecsv'])
    assert code == 0, err
    t = QTable.read(tmp_path / 'hit.ecsv')
    row = np.argmin(np.hypot(t['x_center'] - 30.0, t['y_center'] - 150.0))
    assert np.hypot(t['x_center'][row] - 30.0, t['y_center'][row] - 150.0) < 1
    assert "1 sharper than a star" in err
    assert t['flags'][row] & 512 and np.sum(t['flags'] & 512) == 512
    assert f"id {t['id'][row]};" in err or f"id {t['id'][row]} " in err


@pytest.mark.parametrize('command, old, new, dest', [
    ('find', '--nsigma', '--n-sigma', 'n_sigma'),
    ('measure', '--find-nsigma', '--find-n-sigma', 'find_n_sigma')])
def test_n_sigma_options_have_one_spelling(command, old, new, dest, capsys):
    """``--n-sigma`` and ``--find-n-sigma`` set the value (default 5) and
    are listed in --help; the unreleased spellings without the hyphen are
    errors."""
    parser = build_parser()
    args = parser.parse_args([command, 'f.fits', new, '7.5'])
    assert getattr(args, dest) == 7.5 and capsys.readouterr().err == ''
    assert getattr(parser.parse_args([command, 'f.fits']), dest) == 5.0
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([command, 'f.fits', old, '7.5'])
    assert exc.value.code == 2
    assert f'unrecognized arguments: {old} 7.5' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args([command, '--help'])
    out = capsys.readouterr().out
    assert new in out and old not in out


def test_find_bad_input(frames, tmp_path):
    for argv, expected in (
            (['find', frames / 'nope.fits'], 'no such file'),
            (['find', frames / 'sample.fits', '--n-sigma', '0'],
             'argument --n-sigma: must be positive'),
            (['find', frames / 'sample.fits', '-o', tmp_path / 'x' / 'y'],
             'does not exist')):
        code, stdout, err = _run(argv)
        assert code == 2
        assert err.count('\n') == 1 and err.startswith('ccdphot find: error:')
        assert expected in err


def test_closed_stdout_still_writes_the_file(frames, tmp_path):
    """``ccdphot measure ... -o out | head``: the file is complete."""
    out = tmp_path / 'out.ecsv'
    with subprocess.Popen([EXE, 'measure', str(frames / 'sample.fits'),
                           '--box', BOX1, '-o', str(out)],
                          stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0
    # only the warning about the sample frame's sky gradient
    assert err.count(b'\n') == 1 and b'background varies' in err
    assert len(QTable.read(out)) == 1


# -- help, exit codes, errors -----------------------------------------------

@pytest.mark.parametrize('command', ['demo', 'measure', 'find'])
def test_every_subcommand_has_help_with_examples(command, capsys):
    assert main([command, '--help']) == 0
    out = capsys.readouterr().out
    assert 'examples:' in out
    assert f'ccdphot {command}' in out.split('examples:')[1]


def test_top_level_help_lists_subcommands_and_exit_codes(capsys):
    assert main(['--help']) == 0
    out = capsys.readouterr().out
    for command in ('demo', 'measure', 'find'):
        assert command in out
    assert 'exit codes' in out


def _bad_cases(d, tmp):
    s = d / 'sample.fits'
    return {
        'missing file': (['measure', d / 'nope.fits', '--box', BOX1],
                         'no such file'),
        'empty file': (['measure', d / 'empty.fits', '--box', BOX1],
                       'empty'),
        'text file': (['measure', d / 'text.fits', '--box', BOX1],
                      'not a FITS file'),
        'truncated FITS': (['measure', d / 'truncated.fits', '--box', BOX1],
                           'truncated'),
        '3-D FITS': (['measure', d / 'cube.fits', '--box', '1:5,1:5'],
                     '3-D'),
        'reversed box': (['measure', s, '--box', '178:158,492:512'],
                         'reversed'),
        'box with step': (['measure', s, '--box', '158:178:2,492:512'],
                          'step'),
        'non-integer box': (['measure', s, '--box', '158.5:178,492:512'],
                            'integer'),
        'box off the frame': (['measure', s, '--box', '600:620,10:30'],
                              'outside'),
        'box larger than the frame': (['measure', s, '--box', '0:600,0:800'],
                                      'extends past'),
        'box without comma': (['measure', s, '--box', '158:178'],
                               'Y0:Y1,X0:X1'),
        'gain 0': (['measure', s, '--box', BOX1, '--gain', '0'],
                   'argument --gain: must be positive'),
        'negative gain': (['measure', s, '--box', BOX1, '--gain', '-2.2'],
                          'argument --gain: must be positive'),
        'non-numeric gain': (['measure', s, '--box', BOX1, '--gain', 'two'],
                             'argument --gain: not a number'),
        'missing positions': (['measure', s, '--positions',
                               tmp / 'none.ecsv'], '--positions'),
        'positions without x/y': (['measure', s, '--positions',
                                   tmp / 'bad_cols.csv'], 'x_center'),
        'no aperture': (['measure', s], 'no apertures'),
        'annulus without --sky annulus': (['measure', s, '--box', BOX1,
                                           '--annulus', '15,25'],
                                          '--annulus'),
        'unknown sky': (['measure', s, '--box', BOX1, '--sky', 'mode'],
                        'argument --sky'),
        'output folder missing': (['measure', s, '--box', BOX1, '-o',
                                   tmp / 'no' / 'dir' / 'out.ecsv'],
                                  'does not exist'),
        'output is a directory': (['measure', s, '--box', BOX1, '-o', tmp],
                                  'is a directory'),
        'unwritable output': (['measure', s, '--box', BOX1, '-o',
                               '/proc/out.ecsv'], '/proc/out.ecsv'),
        'uncertainty shape': (['measure', s, '--box', BOX1, '--uncertainty',
                               d / 'small.fits'], 'does not match'),
        'plot dir is a file': (['measure', s, '--box', BOX1, '--plot',
                                d / 'empty.fits'], '--plot'),
    }


@pytest.fixture
def bad_cases(frames, tmp_path):
    (tmp_path / 'bad_cols.csv').write_text('a,b\n1,2\n')
    return _bad_cases(frames, tmp_path)


@pytest.mark.parametrize('case', list(_bad_cases(Path(), Path())))
def test_bad_input_exit_2_one_line(case, bad_cases, tmp_path):
    argv, expected = bad_cases[case]
    out = tmp_path / 'kept.ecsv'
    out.write_text(OLD)
    if '-o' not in argv:
        argv = [*argv, '-o', out]
    code, stdout, err = _run(argv)
    assert code == 2, (case, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith('ccdphot measure: error: ')
    assert expected in lines[0]
    assert 'Traceback' not in err
    assert out.read_text() == OLD  # earlier output untouched
    assert [p.name for p in tmp_path.iterdir()
            if p.name.endswith('.tmp')] == []


def test_installed_script_bad_input(bad_cases):
    """The console script as a user types it: exit 2, one line, no trace
    (every case runs in process above)."""
    argv, expected = bad_cases['unwritable output']
    proc = subprocess.run([EXE, *map(str, argv)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert proc.stdout == ''


def test_installed_script_success_and_debug(frames, tmp_path):
    out = tmp_path / 'out.ecsv'
    proc = subprocess.run([EXE, 'measure', str(frames / 'sample.fits'),
                           '--box', BOX1, '-o', str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(QTable.read(out)) == 1
    proc = subprocess.run([EXE, 'measure', str(frames / 'nope.fits'),
                           '--box', BOX1, '--debug'],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'Traceback' in proc.stderr and 'CLIError' in proc.stderr


def test_debug_raises_in_process(frames):
    with pytest.raises(CLIError, match='no such file'):
        main(['--debug', 'measure', str(frames / 'nope.fits'), '--box',
              BOX1])


def test_unexpected_failure_exit_1(frames, monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise RuntimeError('the engine broke')

    engine = importlib.import_module('ccdphot_ext.photometry.table')
    monkeypatch.setattr(engine, 'photometer', broken)
    out = tmp_path / 'kept.ecsv'
    out.write_text(OLD)
    code, _, err = _run(['measure', frames / 'sample.fits', '--box', BOX1,
                         '-o', out])
    assert code == 1
    assert err.strip() == ('ccdphot measure: failed: RuntimeError: the '
                           'engine broke')
    assert out.read_text() == OLD


def test_failed_write_keeps_the_old_file(frames, monkeypatch, tmp_path):
    """A write that dies half-way leaves the previous file as it was."""
    def half_write(self, path, **kwargs):
        with open(path, 'w') as fh:
            fh.write('# %ECSV 1.0\n# half')
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(QTable, 'write', half_write)
    out = tmp_path / 'stars.ecsv'
    out.write_text(OLD)
    code, _, err = _run(['measure', frames / 'sample.fits', '--box', BOX1,
                         '-o', out])
    assert code == 1  # the machine failed, not the input: exit 1
    assert 'No space left on device' in err and str(out) in err
    assert out.read_text() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ['stars.ecsv']


def test_successful_write_replaces_the_file(frames, tmp_path):
    out = tmp_path / 'stars.ecsv'
    out.write_text(OLD)
    os.chmod(out, 0o640)
    code, _, err = _run(['measure', frames / 'sample.fits', '--box', BOX1,
                         '-o', out, '--format', 'ecsv'])
    assert code == 0, err
    assert len(QTable.read(out)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['stars.ecsv']
    assert os.stat(out).st_mode & 0o777 == 0o640  # the file's mode is kept


def test_plot_without_matplotlib(frames, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'matplotlib', None)
    code, _, err = _run(['measure', frames / 'sample.fits', '--box', BOX1,
                         '--plot', tmp_path / 'p'])
    assert code == 2
    assert 'pip install "ccdphot_ext[plot]"' in err


def test_usage_errors_are_one_line(capsys):
    for argv in (['measure'], ['measure', 'x.fits', '--nonsense'],
                 ['find'], ['frobnicate']):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err


def test_parser_has_a_subcommand_per_design():
    sub = next(a for a in build_parser()._actions
               if a.dest == 'command')
    assert {'demo', 'measure', 'find'} <= set(sub.choices)


def test_demo_outdir_writes_the_figures(tmp_path, capsys):
    assert main(['demo', '--outdir', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    pngs = sorted(p.name for p in tmp_path.glob('*.png'))
    assert pngs == ['budget.png', 'curve_of_growth.png', 'cutout.png',
                    'mask_contour.png', 'overview.png',
                    'residual_background.png']
    assert 'wrote cutout.png' in out
    for name in pngs:
        pixels = mpimg.imread(tmp_path / name)
        assert pixels[..., :3].std() > 0.05



@pytest.mark.parametrize('method', ['sigma_clip', 'median'])
def test_measure_whole_frame_sky_has_the_gain(tmp_path, method):
    """A faint Poisson sky (4 e-, 2 e-/ADU, 2 e- read noise): a median or
    clipped mean reads it low by many of its errors unless given the gain,
    which the command takes from the header as its photometry does."""
    rng = np.random.default_rng(11)
    gain, sky_e = 2.0, 4.0
    data = (rng.poisson(sky_e, (512, 512))
            + rng.normal(0.0, 2.0, (512, 512))) / gain
    header = fits.Header({'GAIN': gain, 'BUNIT': 'adu'})
    image, pos, out = (tmp_path / 'faint.fits', tmp_path / 'pos.csv',
                       tmp_path / 'out.ecsv')
    fits.writeto(image, data, header)
    pos.write_text('x,y\n100.0,100.0\n300.0,200.0\n')
    code, _, err = _run(['measure', image, '--positions', pos, '--radius',
                         '4', '--sky', method, '-o', out])
    assert code == 0, err
    t = QTable.read(out)
    level, error = t['sky'][0].value, t['sky_error_on_mean'][0].value
    truth = sky_e / gain
    assert abs(level - truth) < 3 * error
    # the estimator without the gain is the biased reading (its skew,
    # measured on the pixels, is removed to first order: the raw reading)
    plain = SkyEstimate.from_image(data, method=method)
    raw = plain.value + plain.meta.get('estimator_bias', 0.0)
    assert truth - raw > 4 * error


def test_real_frame_background2d_rows_are_kept(sextractor_dir, tmp_path):
    """Source Extractor's ESO frame, ``--sky background2d`` at its own
    catalogue: a sparse frame on a flat sky, so no row is flagged for the
    map's misfit; the light of the faint sources below the mask's reach
    lifts the map as it lifts the whole-frame level (2.3 ADU per pixel:
    ``test_sky_bias.py``, ``test_eso_frame_faint_sources_lift_its_sky``),
    and every row is flagged 32 for it; the five apertures the frame's
    edge cuts are flagged truncated too."""
    code, out, err = ccdphot('measure', sextractor_dir / 'image.fits',
                             '--positions', sextractor_dir / 'image.cat',
                             '--radius', 5, '--sky', 'background2d',
                             '-o', 'eso.ecsv', cwd=tmp_path)
    assert code == 0, err
    table = Table.read(tmp_path / 'eso.ecsv')
    assert len(table) == 65
    flags = np.asarray(table['flags'])
    assert np.count_nonzero(flags & FLAG_TRUNCATED) == 5
    # (2048 on the bright stars: the header gives no gain)
    assert set(np.unique(flags & ~FLAG_NO_SOURCE_TERM)) == {
        32, 32 | FLAG_TRUNCATED}
    assert 'rows      65: 0 unflagged' in out + err
    assert 'light of stars too faint for the source mask' in out + err
