"""
The box `find_stars` suggests, on ccdproc's SAAO frame: most detections are
cosmic-ray hits and hot pixels, the stars have a FWHM of about 6 px.
"""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot
from expected_warnings import gradient_warning, sharp_pixel_warning

from ccdphot_ext import (
    FLAG_SMALL_APERTURE,
    BoxAperture,
    BudgetOptions,
    SkyEstimate,
    box_flags,
    find_stars,
    photometer,
    star_boxes,
)
from ccdphot_ext.flags import FLAG_NO_SOURCE_TERM

#: the SAAO frame's map is ccdproc's: the total noise
TOTAL = BudgetOptions(uncertainty_model='total')


@pytest.fixture(scope='module')
def saao_found(saao):
    sky = SkyEstimate.from_image(saao)
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)  # check passes
        stars = find_stars(saao, sky)
    return sky, stars


def _sums(table):
    return np.asarray(u.Quantity(table['aperture_sum']).value, dtype=float)


def test_saao_box_is_sized_from_the_stars(saao, saao_found):
    sky, stars = saao_found
    assert len(stars) == 24
    like = np.asarray(stars['star_like'])
    sharp = np.asarray(stars['sharpness'])
    # most detections are sharper than any star: hits and hot pixels
    assert np.sum(sharp > 0.4) >= 12 and not np.any(like & (sharp > 0.4))
    assert np.nanmedian(stars['fwhm'][sharp > 0.4].value) < 1.5
    # the PSF comes from the star-like ones (the two bright stars: 6.0 px)
    assert 5 <= like.sum() <= 8
    assert stars.meta['psf_fwhm'] == pytest.approx(6.0, abs=0.3)
    assert stars.meta['box_side'] == 25
    check = stars.meta['box_check']
    assert check['passed'] and check['n_stars'] >= 1
    assert 0.93 < check['fraction'] <= 1.02  # measured 0.96
    # the brightest star: the suggested box holds what a 25-px box holds
    # (the old 5-px box held 23%: 25,870 ADU)
    with gradient_warning(), sharp_pixel_warning():  # its cosmic rays
        t = photometer(saao, star_boxes(stars), sky, budget=TOTAL)
    x0, y0 = int(stars['box_x0'][0]), int(stars['box_y0'][0])
    # against the level it subtracted: the whole-frame one without the
    # boxes' pixels (SkyEstimate.without_apertures)
    level = float(u.Quantity(t['sky'][0]).value)
    assert level != sky.value
    assert level == sky.without_apertures(saao, star_boxes(stars)).value
    cut = saao.data[y0:y0 + 25, x0:x0 + 25] - level
    assert _sums(t)[0] == pytest.approx(cut.sum(), rel=1e-10)
    assert _sums(t)[0] == pytest.approx(112460.0, rel=1e-3)
    assert not np.any(t['flags'] & FLAG_SMALL_APERTURE)
    assert not np.any(box_flags(stars))


def test_saao_small_box_is_flagged(saao, saao_found):
    sky, _ = saao_found
    with pytest.warns(AstropyUserWarning, match='5-pixel boxes hold'):
        small = find_stars(saao, sky, box_side=5)
    check = small.meta['box_check']
    assert check['passed'] is False and check['fraction'] < 0.6
    assert box_flags(small).tolist() == [FLAG_SMALL_APERTURE] * len(small)
    # its flux: about a quarter of the 25-px box's (the background map
    # shows a few of the small boxes biased by half a flux error: flag 32)
    with gradient_warning(), sharp_pixel_warning():
        t = photometer(saao, star_boxes(small), sky, budget=TOTAL)
    assert 0.15 < _sums(t)[0] / 112460.0 < 0.3


def test_the_growth_check_sees_a_linear_sky_gradient_through(saao,
                                                             saao_found):
    # a sky gradient left by a global sky does not fake a missing plateau
    sky, stars = saao_found
    yy, xx = np.mgrid[0:saao.shape[0], 0:saao.shape[1]]
    tilted = saao.data + 0.05 * (xx - 256) - 0.03 * (yy - 256)
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        again = find_stars(tilted, sky)
    assert again.meta['box_side'] == 25
    assert again.meta['box_check']['fraction'] == pytest.approx(
        stars.meta['box_check']['fraction'], abs=0.02)


def test_find_then_measure_equals_measure_find(saao, tmp_path):
    frame = tmp_path / 'saao.fits'
    saao.write(frame)
    stars, out1, out2 = (tmp_path / n for n in ('stars.ecsv', 'm1.ecsv',
                                                'm2.ecsv'))
    code, text, err = ccdphot('find', frame, '-o', stars)
    assert code == 0, err
    assert 'boxes     25 px (PSF FWHM 6.03 px' in text
    assert ccdphot('measure', frame, '--positions', stars, '-o', out1)[0] == 0
    assert ccdphot('measure', frame, '--find', '-o', out2)[0] == 0
    a, b = QTable.read(out1), QTable.read(out2)
    np.testing.assert_array_equal(_sums(a), _sums(b))
    np.testing.assert_array_equal(a['flags'], b['flags'])
    assert a['aperture_sum'][0].value == pytest.approx(112460.0, rel=1e-3)
    # a 5-px box is checked too: every row flagged, one warning line
    out3 = tmp_path / 'm3.ecsv'
    code, _, err = ccdphot('measure', frame, '--find', '--size', '5', '-o',
                           out3)
    assert code == 0, err
    assert 'boxes hold' in err
    c = QTable.read(out3)
    assert np.all(c['flags'] & FLAG_SMALL_APERTURE)
    # and a table written with a small box keeps its verdict
    small = tmp_path / 'small.ecsv'
    with pytest.warns(AstropyUserWarning, match='boxes hold'):
        find_stars(saao, SkyEstimate.from_image(saao),
                   box_side=5).write(small)
    assert ccdphot('measure', frame, '--positions', small, '-o',
                   out3)[0] == 0
    assert np.all(QTable.read(out3)['flags'] & FLAG_SMALL_APERTURE)


def test_box_check_needs_an_isolated_star():
    from ccdphot_ext.datasets.sample import render_stars

    rng = np.random.default_rng(5)
    img = rng.normal(100.0, 5.0, (40, 40))
    img += render_stars(img.shape, [20.0], [20.0], [20000.0], sigma=2.5)
    stars = find_stars(img, SkyEstimate(100.0, 5.0, img.size))
    # the 2.5 x ring would leave the frame: not checked, not flagged
    check = stars.meta['box_check']
    assert check['fraction'] is None and 'not checked' in check['note']
    assert box_flags(stars).tolist() == [0]
    side = stars.meta['box_side']
    assert side == 2 * int(np.ceil(4 * stars.meta['psf_fwhm']) // 2) + 1
    t = photometer(img, BoxAperture((20.0, 20.0), side, side),
                   SkyEstimate(100.0, 5.0, img.size))
    assert t['flags'][0] & ~FLAG_NO_SOURCE_TERM == 0  # 2048: no gain


def test_m13_and_eso_boxes_pass_their_check(m13, sextractor_dir):
    from ccdphot_ext import read_frame

    ccd, sky = m13
    with pytest.warns(AstropyUserWarning, match="frame's edge"):
        stars = find_stars(ccd, sky)
    # crowded: hundreds of star-like sources, one isolated enough to check
    assert stars.meta['n_star_like'] > 300
    assert stars.meta['psf_fwhm'] == pytest.approx(3.3, abs=0.3)
    assert stars.meta['box_side'] == 15
    assert stars.meta['box_check']['passed']
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)  # ESO cards
        eso = read_frame(sextractor_dir / 'image.fits', unit='adu')
    with pytest.warns(AstropyUserWarning, match='crowded frame'):
        sky = SkyEstimate.from_image(eso)  # its faint sources' lift
    with pytest.warns(AstropyUserWarning, match="frame's edge"):
        stars = find_stars(eso, sky)
    check = stars.meta['box_check']
    assert stars.meta['box_side'] == 13 and check['n_stars'] >= 5
    assert check['passed'] and check['fraction'] > 0.97  # measured 0.998
