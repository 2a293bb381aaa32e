"""Data units: which add up into an aperture's light, how BUNIT is read
whatever its case, and values per pixel (real FITS files, real numbers)."""

import re

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot
from photutils.aperture import CircularAperture

from ccdphot_ext import (
    FrameReadError,
    SkyEstimate,
    measure,
    photometer,
    read_frame,
)

EXPTIME, GAIN, SKY = 10.0, 2.0, 10.0


def _star_frame(seed=0):
    """A star of 1000 on a sky of 10 with a scatter of 0.5."""
    yy, xx = np.mgrid[0:100, 0:100]
    star = 1000 * np.exp(-((xx - 50) ** 2 + (yy - 50) ** 2) / 8) / (
        2 * np.pi * 4)
    rng = np.random.default_rng(seed)
    return SKY + star + rng.normal(0, 0.5, (100, 100))


def _write(path, bunit, **cards):
    fits.writeto(path, _star_frame().astype('f4'), fits.Header(
        {'BUNIT': bunit, 'EXPTIME': EXPTIME, 'GAIN': GAIN, **cards}),
        overwrite=True)
    return path


def _source_variance(ccd, g_eff):
    """Plain numpy: the photon variance of the sum, sum(w^2 (d - sky)) /
    g_eff in the data unit, w the exact aperture weights."""
    mask = CircularAperture((50.0, 50.0), 5.0).to_mask(method='exact')
    weighted = mask.get_values(np.asarray(ccd.data, float) - SKY)  # w (d-B)
    weights = mask.get_values(np.ones(ccd.shape))
    return np.sum(weights * weighted) / g_eff


def _photometer(ccd):
    return photometer(ccd, CircularAperture((50.0, 50.0), 5.0),
                      SkyEstimate(SKY, 0.5, 10000, unit=ccd.unit))


@pytest.mark.parametrize('bunit, what', [
    ('mag', 'a logarithmic unit'), ('mag/arcsec2', 'a logarithmic unit'),
    ('dB', 'a logarithmic unit'), ('%', 'a ratio'), ('pct', 'a ratio'),
    ('K', 'a temperature'), ('m', 'a length')])
def test_a_bunit_whose_values_do_not_add_up_is_refused(tmp_path, bunit,
                                                       what):
    """A magnitude image summed is no magnitude; a percentage, a
    temperature, a length are no light: refused, naming BUNIT."""
    path = _write(tmp_path / 'f.fits', bunit)
    with pytest.raises(FrameReadError, match=(
            rf"f.fits: BUNIT='{re.escape(bunit)}': data in .* \({what}.*"
            r"cannot be added up into an aperture's light.*pass unit=")):
        read_frame(path)
    # a wrong BUNIT is overridden
    assert read_frame(path, unit='adu').unit == u.adu


@pytest.mark.parametrize('unit', ['mag', '%', 'K'])
def test_the_api_refuses_the_same_units(tmp_path, unit):
    with pytest.raises(ValueError, match=r'^unit: data in '):
        read_frame(_write(tmp_path / 'f.fits', 'adu'), unit=unit)
    ccd = CCDData(_star_frame(), unit=unit)
    aperture = CircularAperture((50.0, 50.0), 5.0)
    sky = SkyEstimate(SKY, 0.5, 10000, unit=unit)
    for call in (photometer, measure):
        with pytest.raises(ValueError, match=r'^data: data in '):
            call(ccd, aperture, sky)


def test_plain_numbers_and_other_summable_units_pass(tmp_path):
    for bunit, unit in (('Jy/beam', u.Jy / u.beam),
                        ('nanomaggy', u.nanomaggy),
                        ('adu/arcsec2', u.adu / u.arcsec ** 2)):
        path = _write(tmp_path / 'f.fits', bunit)
        assert read_frame(path).unit == unit
    # a dimensionless unit: plain numbers, summed (no gain known for them)
    with pytest.warns(AstropyUserWarning, match='no source photon noise'):
        t = _photometer(CCDData(_star_frame(), unit=''))
    np.testing.assert_allclose(t['aperture_sum'][0], np.sum(
        CircularAperture((50.0, 50.0), 5.0).to_mask(method='exact').multiply(
            _star_frame() - SKY)), rtol=1e-12)


def test_cli_refuses_them_with_exit_2(tmp_path):
    image = _write(tmp_path / 'f.fits', 'mag')
    positions = tmp_path / 'p.csv'
    Table({'x': [50.0], 'y': [50.0]}).write(positions)
    out = tmp_path / 'o.ecsv'
    args = ['measure', image, '--positions', positions, '--radius', 5,
            '-o', out]
    code, _, err = ccdphot(*args)
    assert code == 2 and not out.exists()
    assert "error: IMAGE" in err and "BUNIT='mag': data in mag" in err
    assert 'Traceback' not in err
    code, _, err = ccdphot(*args, '--unit', 'K')
    assert code == 2 and 'Traceback' not in err
    assert re.search(r'argument --unit: data unit: data in K \(a '
                     'temperature\\)', err)
    code, _, err = ccdphot(*args, '--unit', 'adu', '--gain', GAIN)
    assert code == 0 and Table.read(out)['aperture_sum'].unit == u.adu


@pytest.mark.parametrize('bunit, unit', [
    ('MJY/SR', u.MJy / u.sr), ('UJY/ARCSEC2', u.uJy / u.arcsec ** 2)])
def test_a_surface_brightness_in_upper_case_is_read(tmp_path, bunit, unit):
    """``MJY/SR`` was unparseable: taken as adu with the header GAIN
    (var_source 472 for a star of 1000). It is MJy/sr, said with a
    warning, and measured as the same frame in ``MJy/sr`` is: in Jy, the
    source term from GAIN x EXPTIME / FLUXCONV."""
    cards = {'PIXAR_SR': 1e-11, 'FLUXCONV': 0.1}
    upper = _write(tmp_path / 'upper.fits', bunit, **cards)
    with pytest.warns(AstropyUserWarning, match=(
            rf"BUNIT='{re.escape(bunit)}' read as "
            rf"'{re.escape(unit.to_string())}'.*a first capital M is mega")):
        ccd = read_frame(upper)
    assert ccd.unit == unit
    t = _photometer(ccd)
    ref = _photometer(read_frame(_write(tmp_path / 'ref.fits',
                                        unit.to_string(), **cards)))
    assert t['aperture_sum'].unit == u.Jy
    for name in ('aperture_sum', 'aperture_sum_err', 'var_source'):
        assert t[name][0] == ref[name][0]
    # the source term: F / g_eff, g_eff = GAIN x EXPTIME / FLUXCONV per
    # MJy/sr, F in the data unit, both in Jy
    to_jy = (1.0 * unit * u.sr).to_value(u.Jy) * 1e-11
    per_mjy_sr = (1.0 * unit).to_value(u.MJy / u.sr)
    g_eff = GAIN * EXPTIME / 0.1 * per_mjy_sr
    np.testing.assert_allclose(t['var_source'][0].value,
                               _source_variance(ccd, g_eff) * to_jy ** 2,
                               rtol=1e-9)


def test_jy_per_beam_in_upper_case_is_read(tmp_path):
    with pytest.warns(AstropyUserWarning, match="BUNIT='JY/BEAM' read as "
                      "'Jy / beam'"):
        assert read_frame(_write(tmp_path / 'f.fits', 'JY/BEAM')).unit == (
            u.Jy / u.beam)


@pytest.mark.parametrize('bunit, rate, g_eff', [
    ('e/s/pix', 'electron / s', EXPTIME),
    ('DN/S/PIX', 'DN / s', GAIN * EXPTIME),
    ('electron/pixel', 'electron', 1.0)])
def test_values_per_pixel_have_their_source_term(tmp_path, bunit, rate,
                                                 g_eff):
    """An electron rate per pixel and EXPTIME give the gain, as e-/s does
    (and DN/s per pixel with GAIN and EXPTIME as DN/s): var_source was NaN
    ('the header gain does not apply'). The sums are those of the frame
    in the unit without '/pix', bit for bit, and in that unit."""
    ccd = read_frame(_write(tmp_path / 'pix.fits', bunit))
    t = _photometer(ccd)
    ref = _photometer(read_frame(_write(tmp_path / 'ref.fits', rate)))
    assert t['aperture_sum'].unit == u.Unit(rate)
    for name in ('aperture_sum', 'aperture_sum_err', 'var_source', 'mag'):
        assert t[name][0] == ref[name][0], name
    np.testing.assert_allclose(t['var_source'][0].value,
                               _source_variance(ccd, g_eff), rtol=1e-9)
