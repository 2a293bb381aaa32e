"""Uncertainty maps with unusable pixels (zero, NaN, inf, negative sigma):
the unusable pixels are bad pixels in every engine and in the CLI, and a
negative or mismatched map is refused naming ``uncertainty``."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, InverseVariance, StdDevUncertainty
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot
from photutils.aperture import CircularAperture, aperture_photometry

from ccdphot_ext import (
    FLAG_BAD_PIXELS,
    BoxAperture,
    SkyEstimate,
    measure,
    photometer,
)

SHAPE = (60, 70)
SKY = 100.0
SIGMA = 5.0
#: (y, x) of the unusable sigma pixels: zero, inf, NaN.
BAD = {(20, 20): 0.0, (21, 22): np.inf, (22, 19): np.nan}


@pytest.fixture
def frame():
    rng = np.random.default_rng(7)
    img = rng.normal(SKY, SIGMA, SHAPE)
    img[18:24, 17:24] += 300.0  # a flat 'star' under the bad pixels
    sigma = np.full(SHAPE, SIGMA)
    for (y, x), value in BAD.items():
        sigma[y, x] = value
    return img, sigma


def _good(sigma):
    return np.isfinite(sigma) & (sigma > 0)


def _sky():
    return SkyEstimate(SKY, SIGMA, 1000)


def _photometer(img, aperture, sigma, engine):
    with pytest.warns(AstropyUserWarning, match=r'uncertainty: 3 pixel'):
        return photometer(img, aperture, _sky(), uncertainty=sigma,
                          engine=engine)


@pytest.mark.parametrize('engine', ['auto', 'box', 'general'])
def test_aligned_box_excludes_bad_sigma_pixels(frame, engine):
    img, sigma = frame
    box = BoxAperture.from_slices((slice(15, 25), slice(15, 25)))
    t = _photometer(img, box, sigma, engine)
    good = _good(sigma)[15:25, 15:25]
    cut = img[15:25, 15:25] - SKY
    assert t['n_pix'][0] == 97
    assert t['aperture_sum'][0] == pytest.approx(cut[good].sum(), rel=1e-12)
    # the sky term is the good pixels' sigma**2, not pulled down by zeros
    assert t['var_sky'][0] == pytest.approx(97 * SIGMA ** 2, rel=1e-12)
    assert t['flags'][0] & FLAG_BAD_PIXELS


@pytest.mark.parametrize('engine', ['auto', 'general'])
def test_circle_excludes_bad_sigma_pixels(frame, engine):
    img, sigma = frame
    circ = CircularAperture((20.3, 21.1), 5.0)
    t = _photometer(img, circ, sigma, engine)
    # photutils' exact overlap on the data with the bad pixels masked
    ref = aperture_photometry(img - SKY, circ, mask=~_good(sigma))
    area = circ.area_overlap(img, mask=~_good(sigma))
    assert t['aperture_sum'][0] == pytest.approx(
        float(ref['aperture_sum'][0]), rel=1e-10)
    assert t['n_pix'][0] == pytest.approx(float(area), rel=1e-10)
    assert t['n_pix'][0] < circ.area - 2.5  # three whole pixels left out
    assert t['flags'][0] & FLAG_BAD_PIXELS


def test_measure_and_sky_agree(frame):
    img, sigma = frame
    box = BoxAperture.from_slices((slice(15, 25), slice(15, 25)))
    with pytest.warns(AstropyUserWarning, match='uncertainty'):
        res = measure(img, box, _sky(), uncertainty=sigma)
    assert res.n_pix == 97
    assert res.flags & FLAG_BAD_PIXELS
    with pytest.warns(AstropyUserWarning, match='uncertainty'), \
            pytest.warns(AstropyUserWarning, match='3 masked'):
        sky = SkyEstimate.from_image(img, method='mean', mask_sources=False,
                                     uncertainty=sigma)
    assert sky.n_pix == img.size - 3


def test_zero_pixel_outside_apertures_does_not_flag(frame):
    img, sigma = frame
    box = BoxAperture.from_slices((slice(40, 50), slice(40, 50)))
    t = _photometer(img, box, sigma, 'auto')
    assert t['flags'][0] & FLAG_BAD_PIXELS == 0
    assert t['n_pix'][0] == 100


def test_masked_bad_sigma_pixels_do_not_warn(frame):
    img, sigma = frame
    mask = ~_good(sigma)
    box = BoxAperture.from_slices((slice(15, 25), slice(15, 25)))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        t = photometer(img, box, _sky(), uncertainty=sigma, mask=mask)
    assert t['n_pix'][0] == 97


def test_inverse_variance_zero_weight_is_bad_pixel(frame):
    img, _ = frame
    ivar = np.full(SHAPE, SIGMA ** -2)
    ivar[20, 20] = 0.0  # the usual 'no data' weight
    ccd = CCDData(img, unit='adu', uncertainty=InverseVariance(ivar))
    box = BoxAperture.from_slices((slice(15, 25), slice(15, 25)))
    with pytest.warns(AstropyUserWarning, match=r'data.uncertainty: 1 pixel'):
        t = photometer(ccd, box, _sky())
    assert t['n_pix'][0] == 99
    assert t['flags'][0] & FLAG_BAD_PIXELS


def test_no_warning_for_a_clean_map(frame):
    img, _ = frame
    box = BoxAperture.from_slices((slice(15, 25), slice(15, 25)))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        t = photometer(img, box, _sky(), uncertainty=np.full(SHAPE, SIGMA))
    assert t['n_pix'][0] == 100
    assert t['flags'][0] & FLAG_BAD_PIXELS == 0


# -- hostile maps: refused, naming the parameter -----------------------------

def test_negative_sigma_pixels_refused(frame):
    img, sigma = frame
    sigma = sigma.copy()
    sigma[5, 7] = -1.0
    sigma[6, 7] = -2.0
    box = BoxAperture.from_slices((slice(40, 50), slice(40, 50)))
    with pytest.raises(ValueError,
                       match=r'uncertainty must be non-negative: 2 negative'
                             r'.*\(x, y\) = \(7, 5\)'):
        photometer(img, box, _sky(), uncertainty=sigma)


def test_wrong_shape_refused(frame):
    img, _ = frame
    box = BoxAperture.from_slices((slice(40, 50), slice(40, 50)))
    with pytest.raises(ValueError, match=r'uncertainty shape \(60, 69\)'):
        photometer(img, box, _sky(), uncertainty=np.ones((60, 69)))


def test_unit_mismatch_refused(frame):
    img, sigma = frame
    ccd = CCDData(img, unit='adu')
    box = BoxAperture.from_slices((slice(40, 50), slice(40, 50)))
    with pytest.raises(u.UnitsError, match='uncertainty unit m'):
        photometer(ccd, box, _sky(), uncertainty=np.full(SHAPE, 5.0) * u.m)
    other = StdDevUncertainty(np.full(SHAPE, 5.0), unit='s')
    with pytest.raises(u.UnitsError, match='uncertainty unit s'):
        photometer(ccd, box, _sky(), uncertainty=other)


def test_convertible_unit_is_converted(frame):
    img, _ = frame
    ccd = CCDData(img, unit='adu')
    box = BoxAperture.from_slices((slice(40, 50), slice(40, 50)))
    sky = SkyEstimate(SKY, SIGMA, 1000, unit=u.adu)
    t = photometer(ccd, box, sky,
                   uncertainty=StdDevUncertainty(np.full(SHAPE, 500.0),
                                                 unit=u.adu / 100))
    assert t['var_sky'][0].value == pytest.approx(100 * 25.0, rel=1e-12)


# -- the command line --------------------------------------------------------

def _write(tmp_path, img, sigma):
    CCDData(img, unit='adu', meta={'GAIN': 2.0}).write(tmp_path / 'img.fits')
    fits.writeto(tmp_path / 'err.fits', sigma)
    return tmp_path / 'img.fits', tmp_path / 'err.fits'


def test_cli_zero_sigma_pixels_flag_rows(frame, tmp_path):
    img, sigma = frame
    image, err = _write(tmp_path, img, sigma)
    out = tmp_path / 'out.ecsv'
    code, _, stderr = ccdphot('measure', image, '--uncertainty', err,
                              '--box', '15:25,15:25', '--box', '40:50,40:50',
                              '--sky', 'mean', '-o', out)
    assert code == 0
    assert 'Traceback' not in stderr
    lines = [ln for ln in stderr.splitlines() if 'zero, NaN or inf' in ln]
    assert len(lines) == 1
    assert lines[0].startswith('ccdphot measure: warning: ')
    assert 'uncertainty: 3 pixel(s)' in lines[0]
    from astropy.table import QTable
    t = QTable.read(out)
    assert list(t['n_pix']) == [97, 100]
    assert t['flags'][0] & FLAG_BAD_PIXELS
    assert t['flags'][1] & FLAG_BAD_PIXELS == 0


def test_cli_negative_sigma_refused(frame, tmp_path):
    img, sigma = frame
    sigma = np.abs(np.nan_to_num(sigma, nan=5.0, posinf=5.0)) + 1.0
    sigma[3, 4] = -5.0
    image, err = _write(tmp_path, img, sigma)
    code, _, stderr = ccdphot('measure', image, '--uncertainty', err,
                              '--box', '15:25,15:25')
    assert code == 2
    assert stderr.count('\n') == 1
    assert 'cannot be negative' in stderr and 'Traceback' not in stderr
    assert f'--uncertainty {err}: ' in stderr
