"""Pixels sharper than the frame's stars (cosmic rays, hot pixels) inside
apertures: flag 1024 and one warning, never a silent number; the blank
apertures of ApertureNoise leave them out."""
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.data import get_pkg_data_filename
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import ApertureNoise, BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.noise import (
    _blank_corners,
    _robust_std,
    _source_mask,
)
from ccdphot_ext.background.outliers import SharpPixels
from ccdphot_ext.flags import FLAG_DESCRIPTIONS, FLAG_SHARP_PIXEL


def _blank_pulls(data, side, noise=None, n=800, seed=99):
    sky = SkyEstimate.from_image(data)
    resid = data - sky.value
    bad = ~np.isfinite(resid)
    bad |= _source_mask(resid, sky.std, bad)
    y0, x0 = _blank_corners(bad, side, n, np.random.default_rng(seed))
    c = np.column_stack([x0, y0]) + (side - 1) / 2.0
    kw = {} if noise is None else {'noise': noise}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        t = photometer(data, BoxAperture(c, side, side), sky, **kw)
    pull = np.asarray(t['aperture_sum'], float) / np.asarray(
        t['aperture_sum_err'], float)
    return pull, np.asarray(t['flags'])


def _hits(shape, fraction, rng, sigma, largest=4):
    """Hot pixels and cosmic rays of 1 to ``largest`` pixels, 6 to 100
    sigma."""
    image = np.zeros(shape)
    n = int(fraction * image.size)
    ys = rng.integers(0, shape[0] - 1, n)
    xs = rng.integers(0, shape[1] - 1, n)
    amp = sigma * np.exp(rng.uniform(np.log(6), np.log(100), n))
    size = rng.integers(1, largest + 1, n)
    shapes = [(0, 0), (0, 1), (1, 0), (1, 1)]
    for y, x, a, k in zip(ys, xs, amp, size, strict=True):
        for dy, dx in shapes[:k]:
            image[y + dy, x + dx] += a
    return image


def _star_frame(fwhm, rng, shape=(200, 200), n=60, sigma=10.0):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = rng.normal(1000.0, sigma, shape)
    s = fwhm / 2.3548
    xy = rng.uniform(8, shape[0] - 8, (n, 2))
    flux = np.exp(rng.uniform(np.log(300), np.log(3e4), n))
    from scipy.special import erf
    for (x, y), f in zip(xy, flux, strict=True):
        ex = (erf((xx + 0.5 - x) / (s * np.sqrt(2)))
              - erf((xx - 0.5 - x) / (s * np.sqrt(2)))) / 2
        ey = (erf((yy + 0.5 - y) / (s * np.sqrt(2)))
              - erf((yy - 0.5 - y) / (s * np.sqrt(2)))) / 2
        image += f * ex * ey
    return image, xy


def test_flag_is_documented():
    assert FLAG_SHARP_PIXEL == 1024
    assert 'cosmic ray' in FLAG_DESCRIPTIONS[FLAG_SHARP_PIXEL]


def test_real_apogee_frame():
    """A raw Apogee Alta frame (astropy's test data) keeps 2-3% hot pixels:
    the rows holding them are flagged and warned, the others' blank sums
    scatter as their errors say; the noise model no longer counts the hot
    pixels as the sky's noise (white: sigma(9 px) = 3 sigma1)."""
    path = get_pkg_data_filename('data/sip-wcs.fits',
                                 package='astropy.nddata.tests')
    data = fits.getdata(path).astype(float)
    found = SharpPixels.from_image(data)
    assert found.as_class and 0.015 < found.count / data.size < 0.05
    with pytest.warns(AstropyUserWarning, match='sharper than the frame'):
        photometer(data, BoxAperture([(20.0, 20.0), (60.0, 30.0)], 7, 7),
                   SkyEstimate.from_image(data))
    noise = ApertureNoise.from_blank_apertures(
        data, SkyEstimate.from_image(data), seed=1)
    assert noise(9.0) / (3 * noise.sigma1) < 1.1  # was 1.44
    for side in (3, 7):
        for model in (None, noise):
            pull, flags = _blank_pulls(data, side, model)
            clean = (flags & FLAG_SHARP_PIXEL) == 0
            # the hot pixels flag the rows whose sums they lift
            assert 0.1 < 1 - clean.mean() < 0.9
            assert np.median(pull[~clean]) > np.median(pull[clean])
            assert 0.85 < _robust_std(pull[clean]) < 1.2
            assert abs(np.median(pull[clean])) < 0.5


def test_synthetic_hits_flagged():
    """White noise with 1% hot pixels (single pixels): every row holding
    one is flagged; the unflagged rows' pulls are unit normal."""
    rng = np.random.default_rng(3)
    sigma = 10.0
    shape = (256, 256)
    hits = _hits(shape, 0.01, rng, sigma, largest=1)
    data = rng.normal(500.0, sigma, shape) + hits
    side = 5
    y0 = rng.integers(0, shape[0] - side, 3000)
    x0 = rng.integers(0, shape[1] - side, 3000)
    c = np.column_stack([x0, y0]) + (side - 1) / 2.0
    sky = SkyEstimate(500.0, sigma, data.size)
    with pytest.warns(AstropyUserWarning, match='flag 1024'):
        t = photometer(data, BoxAperture(c, side, side), sky,
                       budget=None)
    flagged = (np.asarray(t['flags']) & FLAG_SHARP_PIXEL) > 0
    holds = np.array([hits[y:y + side, x:x + side].max() > 0
                      for y, x in zip(y0, x0, strict=True)])
    bright = np.array([hits[y:y + side, x:x + side].max() > 8 * sigma
                       for y, x in zip(y0, x0, strict=True)])
    assert flagged[bright].mean() > 0.93
    assert flagged[~holds].mean() < 0.05
    pull = (np.asarray(t['aperture_sum'], float)
            / np.asarray(t['aperture_sum_err'], float))[~flagged]
    assert abs(np.std(pull) - 1) < 0.1
    assert abs(np.mean(pull)) < 0.1


@pytest.mark.parametrize('fwhm', [1.0, 1.5])
def test_undersampled_stars_not_hits(fwhm):
    """Stars of FWHM 1.0-1.5 px are not taken for hits."""
    data, xy = _star_frame(fwhm, np.random.default_rng(int(fwhm * 10)))
    found = SharpPixels.from_image(data)
    assert not found.as_class
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        t = photometer(data, BoxAperture(xy, 7, 7),
                       SkyEstimate(1000.0, 10.0, data.size))
    assert not np.any(np.asarray(t['flags']) & FLAG_SHARP_PIXEL)
