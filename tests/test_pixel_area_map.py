"""
A distorted JWST image's pixel-area map (AREA, as stdatamodels writes it)
is not applied (the installed STScI data models document it only as a
"Pixel area map array" beside the "nominal pixel area" PIXAR_SR): reading
such a file warns by how much the areas differ and the flux conversion
says so; a uniform map or a resampled product is read without a word.
"""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, VarianceUncertainty
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus, CircularAperture

from ccdphot_ext import SkyEstimate, photometer, read_frame

pytest.importorskip('stdatamodels')

PIX = 9.33e-14  # sr
F_JY = 1e-4     # each star's flux density
POS = [(30.0, 50.0), (90.0, 50.0)]


def _cal(path, area, *, seed=0, resampled=False):
    """A level-2-like image in MJy/sr written by stdatamodels, whose stars
    have sum(SB * PIXAR_SR * AREA) = F_JY (the convention of a pixel-area
    map): the right one sits where AREA is 1.06."""
    from stdatamodels.jwst import datamodels

    ny, nx = area.shape
    yy, xx = np.mgrid[:ny, :nx]
    sb = np.full((ny, nx), 0.3)
    for x, y in POS:
        prof = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))
        sb += prof / prof.sum() * F_JY / (PIX * 1e6 * area)
    var = 1e-6 + sb * 1e-5
    sb = sb + np.random.default_rng(seed).normal(0, np.sqrt(var))
    m = datamodels.ImageModel(data=sb.astype(np.float32),
                              err=np.sqrt(var).astype(np.float32),
                              area=area.astype(np.float32),
                              dq=np.zeros((ny, nx), np.uint32))
    m.meta.telescope = 'JWST'
    m.meta.bunit_data = m.meta.bunit_err = 'MJy/sr'
    m.meta.photometry.pixelarea_steradians = PIX
    m.meta.photometry.pixelarea_arcsecsq = PIX * 4.2545e10
    if resampled:
        m.meta.cal_step.resample = 'COMPLETE'
    m.save(str(path))
    m.close()
    return sb


def _area(shape=(100, 120)):
    xx = np.mgrid[:shape[0], :shape[1]][1]
    return np.where(xx < 60, 1.0, 1.06)


def _photometry(ccd):
    aps = CircularAperture(POS, 8.0)
    sky = SkyEstimate.from_annulus(ccd, CircularAnnulus(POS, 12, 18))
    return photometer(ccd, aps, sky)


def test_area_map_of_a_cal_image_is_not_applied_and_said(tmp_path):
    path = tmp_path / 'x_cal.fits'
    area = _area()
    _cal(path, area)
    with pytest.warns(AstropyUserWarning, match=r'the AREA extension \(a '
                      r'pixel-area map: 1 to 1\.06, 6% apart\) is not '
                      'applied.*off by up to 6%'):
        ccd = read_frame(path)
    assert ccd.meta['AREAVAR'] == pytest.approx(0.06, rel=1e-5)
    t = _photometry(ccd)
    assert 'AREA extension not applied: pixel areas 6% apart' in (
        t.meta['flux_conversion'])
    # the sums are PIXAR_SR times the data, as without the map: the star
    # on the larger pixels comes out 1/1.06 of its flux (within errors)
    flux = t['aperture_sum'].to_value(u.Jy)
    err = t['aperture_sum_err'].to_value(u.Jy)
    assert abs(flux[0] - F_JY) < 4 * err[0]
    assert abs(flux[1] - F_JY / 1.06) < 4 * err[1]
    # the documented remedy, where the product's documentation asks for
    # it: the data (and errors) times AREA
    fixed = CCDData(ccd.data * area, unit=ccd.unit,
                    uncertainty=VarianceUncertainty(
                        ccd.uncertainty.array * area ** 2),
                    meta={'PIXAR_SR': PIX})
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)  # no gain
        t2 = _photometry(fixed)
    flux2 = t2['aperture_sum'].to_value(u.Jy)
    assert np.all(np.abs(flux2 - F_JY) < 4 * err)


def test_uniform_or_resampled_area_is_read_without_a_word(tmp_path):
    flat = np.ones((100, 120))
    _cal(tmp_path / 'flat_cal.fits', flat * (1 + 1e-4))
    ccd = read_frame(tmp_path / 'flat_cal.fits')  # warnings are errors
    assert 'AREAVAR' not in ccd.meta
    _cal(tmp_path / 'x_i2d.fits', _area(), resampled=True)
    assert fits.getval(tmp_path / 'x_i2d.fits', 'S_RESAMP', 'PRIMARY') == (
        'COMPLETE')
    ccd = read_frame(tmp_path / 'x_i2d.fits')
    assert 'AREAVAR' not in ccd.meta
