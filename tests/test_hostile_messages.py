"""
Hostile inputs and what they are told: a header that names the detector
but no gain warns (API and command line), a frame with no sky noise gets
a NaN error bar (never 0), a Background2D mesh too small for a level is
refused, an option value starting with a minus reaches its own check, a
resumed batch names the command's flag, a frame scaled near 1e-30 prints
its sky in significant digits, and +-inf pixels under a Background2D map
give one clear warning (no numpy warning).
"""

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot

from ccdphot_ext import BoxAperture, SkyEstimate, measure, photometer
from ccdphot_ext.background.estimators import MIN_SKY_PIXELS, check_mesh_box
from ccdphot_ext.cli.common import level_text
from ccdphot_ext.datasets.sample import render_stars
from ccdphot_ext.flags import FLAG_NO_SOURCE_TERM

SHAPE = (120, 120)
X = np.array([30.0, 60.0, 90.0, 40.0])
Y = np.array([30.0, 60.0, 90.0, 85.0])
FLUX = np.array([3.0e3, 1.0e4, 2.0e4, 5.0e3])


def _frame(seed=0, gain=2.0, sky=100.0, read_noise=2.5):
    """Sky ``sky`` ADU, Poisson at ``gain`` e-/ADU plus read noise (ADU),
    four stars of 3e3-2e4 ADU."""
    rng = np.random.default_rng(seed)
    truth = sky + render_stars(SHAPE, X, Y, FLUX, sigma=1.8)
    return (rng.poisson(truth * gain) / gain
            + rng.normal(0.0, read_noise, SHAPE))


def _boxes():
    return BoxAperture(np.column_stack([X, Y]), 15, 15)


def _write(path, data, **cards):
    fits.PrimaryHDU(data, fits.Header({'BUNIT': 'adu', **cards})).writeto(
        path)
    return path


def _positions(path):
    QTable({'x': X, 'y': Y}).write(path, format='ascii.csv')
    return path


def _warnings(err):
    return [line for line in err.splitlines() if ': warning:' in line]


# ------------------------------------------------------------ missing gain

def test_a_header_naming_the_detector_but_no_gain_warns():
    """The source term is absent without a gain: on stars of 3e3-2e4 ADU
    over a 100 ADU sky at 2 e-/ADU the errors are 1.06-1.34x too small, so a
    header that names the detector (EXPTIME, RDNOISE) and no gain warns;
    the same frame with its GAIN card gets the term."""
    img = _frame()
    header = {'EXPTIME': 30.0, 'RDNOISE': 5.0}
    ccd = CCDData(img, unit='adu', meta=header)
    sky = SkyEstimate.from_image(ccd)
    match = (r'no gain: the header names the detector \(RDNOISE\) but no '
             'GAIN/EGAIN/CCDGAIN')
    with pytest.warns(AstropyUserWarning, match=match):
        bare = photometer(ccd, _boxes(), sky)
    with pytest.warns(AstropyUserWarning, match=match):
        one = measure(ccd, BoxAperture((X[2], Y[2]), 15, 15), sky)
    assert np.all(np.isnan(bare['var_source']))
    assert 'source' not in one.budget.terms
    # the rows whose missing source term could matter are flagged
    assert bare['flags'].tolist() == [FLAG_NO_SOURCE_TERM] * 4
    gained = CCDData(img, unit='adu', meta={**header, 'GAIN': 2.0})
    full = photometer(gained, _boxes(), sky)
    ratio = (full['aperture_sum_err'] / bare['aperture_sum_err']).value
    # F / g against 225 pixels of 100 / 2 + 2.5**2 ADU**2: the errors
    # without a gain are 1.06 (3e3 ADU) ... 1.34 (2e4 ADU) times too small
    expected = np.sqrt(1.0 + FLUX / 2.0 / (225 * (100.0 / 2.0 + 2.5 ** 2)))
    np.testing.assert_allclose(ratio, expected, atol=0.02)
    assert ratio[0] > 1.04 and ratio[2] > 1.3


def test_a_bare_array_or_a_header_without_detector_cards_only_notes():
    """No header (the notebook's bare array) or a header naming no
    detector (a scanned plate: WCS only): no warning (the suite raises
    any), the table's notes say the term is absent."""
    img = _frame(1)
    sky = SkyEstimate.from_image(img)
    t = photometer(img, _boxes(), sky)
    plate = CCDData(img, unit='adu', meta={'CTYPE1': 'RA---TAN'})
    p = photometer(plate, _boxes(), SkyEstimate.from_image(plate))
    for table in (t, p):
        assert np.all(np.isnan(table['var_source']))
        assert any('no gain' in note for note in table.meta['notes'])


def test_the_command_warns_of_a_missing_gain_once(tmp_path):
    image = _write(tmp_path / 'nogain.fits', _frame(2), EXPTIME=30.0,
                   RDNOISE=5.0)
    pos = _positions(tmp_path / 'pos.csv')
    code, out, err = ccdphot('measure', image, '--positions', pos, '--size',
                             '15', '-o', tmp_path / 'out.ecsv')
    assert code == 0, err
    warned = [w for w in _warnings(err) if 'no gain' in w]
    assert len(warned) == 1, err
    assert 'no error bar holds the source photon noise' in warned[0]
    assert '(--gain)' in warned[0]
    assert 'no gain: source Poisson term absent' in out
    assert np.all(np.isnan(QTable.read(tmp_path / 'out.ecsv')['var_source']))
    # --gain silences it, and the term is there
    code, out, err = ccdphot('measure', image, '--positions', pos, '--size',
                             '15', '--gain', '2', '-o', tmp_path / 'g.ecsv')
    assert code == 0 and 'no gain' not in err + out, err
    assert np.all(QTable.read(tmp_path / 'g.ecsv')['var_source'].value > 0)


# ------------------------------------------------------- no sky noise at all

def test_a_constant_frame_gets_nan_errors_never_zero():
    flat = np.full(SHAPE, 100.0)
    with pytest.warns(AstropyUserWarning) as said:
        sky = SkyEstimate.from_image(flat)
        t = photometer(flat, _boxes(), sky, gain=2.0)
        one = measure(flat, BoxAperture((60.0, 60.0), 15, 15), sky,
                      gain=2.0)
    assert any('doubtful sky: std is 0' in str(w.message) for w in said)
    # every row flagged 64 (the sky) and 8 (flux 0); no error bar is 0:
    # the rows whose every term is 0 get NaN (row 0 keeps the 3e-12 of
    # the whole-frame level's rounding-noise offset, and its flag 32)
    assert np.all(t['flags'] & 72 == 72)
    assert not np.any(t['aperture_sum_err'] == 0)
    noiseless = np.array([t[name][1:] for name in
                          ('var_sky', 'var_source', 'var_sky_mean')])
    assert np.all(noiseless == 0.0)
    assert np.all(np.isnan(t['aperture_sum_err'][1:]))
    assert np.all(np.isnan(t['snr'][1:]))
    assert np.isnan(one.flux_err) and np.isnan(one.snr)
    assert one.budget.terms == {'sky': 0.0, 'source': 0.0, 'sky_mean': 0.0}


def test_a_star_on_a_zero_rms_map_keeps_its_source_term():
    """Only a row with every term 0 loses its error: a star measured with
    a gain against a zero-rms map keeps F / g (and flag 64)."""
    img = _frame(3)
    with pytest.warns(AstropyUserWarning, match='doubtful sky: std is 0'):
        sky = SkyEstimate.from_maps(np.full(SHAPE, 100.0), np.zeros(SHAPE))
    t = photometer(img, _boxes(), sky, gain=2.0)
    np.testing.assert_allclose(t['aperture_sum_err'] ** 2,
                               t['aperture_sum'] / 2.0, rtol=1e-12)
    assert np.all(t['flags'] & 64)


def test_the_command_writes_nan_errors_for_a_constant_frame(tmp_path):
    image = _write(tmp_path / 'const.fits', np.full(SHAPE, 100.0), GAIN=2.0,
                   RDNOISE=5.0)
    code, out, err = ccdphot('measure', image, '--positions',
                             _positions(tmp_path / 'pos.csv'), '--size',
                             '15', '-o', tmp_path / 'out.ecsv')
    assert code == 0, err
    assert 'doubtful sky: std is 0' in err
    t = QTable.read(tmp_path / 'out.ecsv')
    assert np.all(t['flags'] & 72 == 72)
    assert not np.any(t['aperture_sum_err'] == 0)
    assert np.count_nonzero(np.isnan(t['aperture_sum_err'])) >= 3


# ------------------------------------------------------ Background2D mesh

@pytest.mark.parametrize('box, pixels', [(1, 1), (2, 4), ((1, 4), 4)])
def test_a_mesh_too_small_for_a_level_is_refused(box, pixels):
    with pytest.raises(ValueError, match=f'box_size .* holds {pixels} pixel'):
        check_mesh_box(box)
    assert MIN_SKY_PIXELS == 5
    assert check_mesh_box(3) == (3, 3)
    assert check_mesh_box((1, 5), (10, 10)) == (1, 5)
    with pytest.raises(ValueError, match='box_size 20 x 3 is larger than'):
        check_mesh_box((20, 3), (10, 10))


def test_the_command_refuses_a_one_pixel_mesh_at_once(tmp_path):
    """``--box-size 1`` ran over 180 s on a 200 x 200 frame; now one line,
    exit code 2, before any map is made."""
    image = _write(tmp_path / 'f.fits', _frame(4), GAIN=2.0)
    for size in ('1', '2', '1,4'):
        code, out, err = ccdphot('measure', image, '--box', '10:20,10:20',
                                 '--sky', 'background2d', '--box-size', size,
                                 '-o', tmp_path / 'out.ecsv')
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith('ccdphot measure: error: --box-size ')
        assert 'a mesh needs at least 5' in lines[0]
    assert not (tmp_path / 'out.ecsv').exists()


# ------------------------------------------------------------- messages

@pytest.mark.parametrize('option, value, said', [
    ('--box', '-5:10,-5:10', 'negative pixel index in the y range'),
    ('--box', '-5:10', 'is not Y0:Y1,X0:X1 (two ranges separated by a '
     'comma)'),
])
def test_a_value_starting_with_a_minus_reaches_its_check(tmp_path, option,
                                                         value, said):
    """argparse took ``-5:10,-5:10`` for an option ("expected one
    argument"); now the box's own check speaks."""
    image = _write(tmp_path / 'f.fits', _frame(5), GAIN=2.0)
    code, out, err = ccdphot('measure', image, option, value)
    assert code == 2
    assert err.strip().splitlines() == [
        f'ccdphot measure: error: argument {option}: {value!r}'
        + ('' if said.startswith('is not') else ':') + f' {said}']


def test_a_negative_annulus_radius_is_named(tmp_path):
    image = _write(tmp_path / 'f.fits', _frame(5), GAIN=2.0)
    code, out, err = ccdphot('measure', image, '--positions',
                             _positions(tmp_path / 'pos.csv'), '--radius',
                             '3', '--sky', 'annulus', '--annulus', '-1,5')
    assert code == 2
    assert err.strip().splitlines() == [
        "ccdphot measure: error: argument --annulus: '-1,5': must be "
        'positive, got -1.0 (RIN and ROUT are radii, 0 < RIN < ROUT)']


def test_a_tiny_scaled_frame_prints_its_sky_in_significant_digits(tmp_path):
    """A frame scaled by 1e-30 printed 'std 0.000 adu'."""
    img = (_frame(6) - 100.0) * 1e-30
    image = _write(tmp_path / 'tiny.fits', img, GAIN=2.0)
    code, out, err = ccdphot('measure', image, '--positions',
                             _positions(tmp_path / 'pos.csv'), '--size', '15')
    assert code == 0, err
    line = next(li for li in out.splitlines() if li.startswith('sky '))
    std = float(line.split(', std ')[1].split()[0])
    sky = SkyEstimate.from_image(img)
    assert std == pytest.approx(sky.std, rel=1e-3)
    assert 1e-30 < std < 1e-29
    assert level_text(36.6391) == '36.639'
    assert level_text(-4.2e-33) == '-4.2e-33'
    assert level_text(2.5e12) == '2.5e+12'


def test_infinite_pixels_under_a_map_give_one_clear_warning(tmp_path):
    """+-inf blocks under ``--sky background2d`` leaked numpy's "invalid
    value encountered in subtract/add"; now one warning says how many
    pixels were left out, and the rows away from them are measured."""
    img = _frame(7)
    img[5:15, 100:110] = np.inf
    img[100:105, 5:10] = -np.inf
    image = _write(tmp_path / 'inf.fits', img, GAIN=2.0)
    code, out, err = ccdphot('measure', image, '--positions',
                             _positions(tmp_path / 'pos.csv'), '--size',
                             '15', '--sky', 'background2d', '--box-size',
                             '24', '-o', tmp_path / 'out.ecsv')
    assert code == 0, err
    assert 'invalid value' not in err and 'RuntimeWarning' not in err
    inf = [w for w in _warnings(err) if '+-inf' in w]
    assert inf == ['ccdphot measure: warning: 125 pixel(s) of the frame are '
                   '+-inf: left out of the Background2D map as NaN pixels '
                   'are (the apertures holding them are flagged 2)']
    t = QTable.read(tmp_path / 'out.ecsv')
    assert np.all(np.isfinite(t['aperture_sum_err']))
    # the stars' sums about their truth (a 15 px box holds all the light)
    pulls = (t['aperture_sum'].value - FLUX) / t['aperture_sum_err'].value
    assert np.all(np.abs(pulls) < 4), pulls
