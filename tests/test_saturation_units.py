"""
The header's SATURATE is a raw level (adu): converted to the data unit
with the gain and exposure time (a warning when the header does not say
its unit), refused with a warning where it cannot be known. Frames made by
CCDData arithmetic and ccdproc (which keep the header) and written to FITS
by astropy.
"""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture

from ccdphot_ext import (
    DetectorParameters,
    SkyEstimate,
    find_stars,
    measure,
    photometer,
    read_frame,
)
from ccdphot_ext.flags import FLAG_SATURATED

LEVEL, GAIN, EXPTIME = 60000.0, 2.0, 100.0
APS = CircularAperture([(50, 50), (25, 25)], 4.0)


def _raw(seed=0):
    """A raw frame in adu clipped at LEVEL: a star of peak 2e5 adu
    (saturated) and one of peak 4e4 adu (not)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:100, :100]
    star = 2e5 * np.exp(-((xx - 50) ** 2 + (yy - 50) ** 2) / 4.5)
    faint = 4e4 * np.exp(-((xx - 25) ** 2 + (yy - 25) ** 2) / 4.5)
    noise = rng.normal(0, np.sqrt(1000 * GAIN) / GAIN, (100, 100))
    data = np.minimum(1000 + star + faint + noise, LEVEL)
    return CCDData(data, unit='adu', meta={'GAIN': GAIN, 'EXPTIME': EXPTIME,
                                           'SATURATE': LEVEL})


def _flags(ccd, match=None):
    sky = SkyEstimate.from_image(ccd)
    if match is None:
        t = photometer(ccd, APS, sky)
    else:
        with pytest.warns(AstropyUserWarning, match=match):
            t = photometer(ccd, APS, sky)
    return list(np.asarray(t['flags']) & FLAG_SATURATED), t


def test_raw_frame_is_flagged_as_before():
    flags, t = _flags(_raw())
    assert flags == [FLAG_SATURATED, 0]
    assert t.meta['saturation'] == LEVEL


def test_rate_frame_divides_the_level_by_exptime(tmp_path):
    """adu/s by CCDData arithmetic (the header kept), written to FITS and
    read back: the saturated star (data peak 600) is flagged."""
    rate = _raw().divide(EXPTIME * u.s, handle_meta='first_found')
    assert rate.unit == u.adu / u.s and rate.data.max() == LEVEL / EXPTIME
    assert rate.meta['SATURATE'] == LEVEL
    path = tmp_path / 'rate.fits'
    rate.write(path)
    ccd = read_frame(path)
    flags, t = _flags(ccd, match=r'SATURATE 60000 adu \(assumed\) / '
                      r'EXPTIME 100 s = 600 adu / s: the header does not '
                      'say the unit')
    assert flags == [FLAG_SATURATED, 0]
    assert t.meta['saturation'] == pytest.approx(LEVEL / EXPTIME, rel=2e-6)
    # in single precision too
    flags32, _ = _flags(CCDData(rate.data.astype(np.float32),
                                unit=rate.unit, meta=rate.meta),
                        match='assumed')
    assert flags32 == [FLAG_SATURATED, 0]


def test_gain_corrected_frame_multiplies_the_level_by_the_gain():
    """ccdproc.gain_correct keeps SATURATE in adu: the star of 80000 e-
    (40000 adu) is not saturated, the clipped one (120000 e-) is."""
    ccdproc = pytest.importorskip('ccdproc')
    electrons = ccdproc.gain_correct(_raw(), GAIN * u.electron / u.adu)
    assert electrons.unit == u.electron
    flags, t = _flags(electrons, match=r'x GAIN 2 e-/adu = 120000 '
                      'electron')
    assert flags == [FLAG_SATURATED, 0]
    resolved = DetectorParameters().resolve(electrons.meta,
                                            unit=electrons.unit)
    assert resolved.sources['saturation'] == (
        'SATURATE 60000 adu (assumed) x GAIN 2 e-/adu = 120000 electron')
    # e-/s: both
    rate = electrons.divide(EXPTIME * u.s, handle_meta='first_found')
    flags, _ = _flags(rate, match=r'x GAIN 2 e-/adu / EXPTIME 100 s = 1200 '
                      'electron / s')
    assert flags == [FLAG_SATURATED, 0]


def test_a_unit_in_the_comment_is_used_without_a_warning(tmp_path):
    """``[adu]`` or ``[e-]`` starting the card's comment (the FITS
    convention) says the unit: converted, or not, with no warning."""
    ccdproc = pytest.importorskip('ccdproc')
    electrons = ccdproc.gain_correct(_raw(), GAIN * u.electron / u.adu)
    header = fits.Header({k: v for k, v in electrons.meta.items()
                          if len(k) <= 8})
    header['SATURATE'] = (LEVEL, '[adu] saturation level')
    path = tmp_path / 'e.fits'
    CCDData(electrons.data, unit='electron', meta=header).write(path)
    flags, t = _flags(read_frame(path))
    assert flags == [FLAG_SATURATED, 0]
    assert t.meta['saturation'] == pytest.approx(LEVEL * GAIN, rel=2e-6)
    # a level already in electrons: as it is
    header['SATURATE'] = (LEVEL * GAIN, '[e-] full well')
    resolved = DetectorParameters().resolve(header, unit=u.electron)
    assert resolved.saturation == LEVEL * GAIN
    assert resolved.sources['saturation'] == (
        'SATURATE 120000 electron (from its comment)')


@pytest.mark.parametrize('unit, scale, meta, why', [
    ('MJy / sr', 0.01, {}, 'data in MJy / sr are not counts or electrons'),
    ('electron', GAIN, {'GAIN': None}, 'no detector gain to turn adu into '
     'electron'),
    ('adu / s', 0.01, {'EXPTIME': None}, 'no EXPTIME to turn it into a '
     'rate'),
])
def test_a_level_that_cannot_be_known_warns_and_flags_nothing(unit, scale,
                                                              meta, why):
    raw = _raw()
    header = {k: v for k, v in {**raw.meta, **meta}.items()
              if v is not None}
    header['PIXAR_SR'] = 1e-13
    ccd = CCDData(raw.data * scale, unit=unit, meta=header)
    sky = SkyEstimate.from_image(ccd, mask_sources=False, method='median')
    # a gain that fits the frame's noise (the source term is not tested)
    gain = None if unit == 'electron' else (
        GAIN / scale * u.electron / u.Unit(unit))
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='no source photon noise')
        with pytest.warns(AstropyUserWarning, match=(
                f'SATURATE 60000 not used: {why}.*; no row is flagged '
                'saturated')):
            t = photometer(ccd, APS, sky, gain=gain)
        assert not np.any(np.asarray(t['flags']) & FLAG_SATURATED)
        assert t.meta['saturation'] is None
        # measure says it too; a level given in the data unit is used as
        # it is, without a word
        with pytest.warns(AstropyUserWarning, match='not used'):
            measure(ccd, APS[0], sky, gain=gain)
        t = photometer(ccd, APS, sky, gain=gain, detector=DetectorParameters(
            saturation=LEVEL * scale))
    assert list(np.asarray(t['flags']) & FLAG_SATURATED) == [
        FLAG_SATURATED, 0]


def test_find_stars_converts_the_level_too():
    rate = _raw().divide(EXPTIME * u.s, handle_meta='first_found')
    sky = SkyEstimate.from_image(rate)
    with pytest.warns(AstropyUserWarning, match='assumed'):
        found = find_stars(rate, sky, n_sigma=10)
    near = np.hypot(found['x_center'] - 50, found['y_center'] - 50) < 2
    assert found['saturated'][near].all()
    assert not found['saturated'][~near].any()
