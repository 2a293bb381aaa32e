"""Header keyword precedence and flag decoding."""

import astropy.units as u
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import FLAG_SATURATED, FLAG_TRUNCATED, detector_parameters
from ccdphot_ext.flags import FLAG_DESCRIPTIONS, decode_flags


def test_precedence_argument_header_missing():
    hdr = fits.Header({'GAIN': 1.9, 'EGAIN': 2.23, 'RDNOISE': 5.0,
                       'EXPOSURE': 150.04, 'SATLEVEL': 60000})
    p = detector_parameters(hdr)
    assert p['gain'] == 1.9 and p.sources['gain'] == 'GAIN'
    assert p['read_noise'] == 5.0
    assert p['exptime'] == 150.04 and p.sources['exptime'] == 'EXPOSURE'
    assert p['saturation'] == 60000
    p = detector_parameters(hdr, gain=3.0)
    assert p['gain'] == 3.0 and p.sources['gain'] == 'argument'
    p = detector_parameters({})
    assert p['gain'] is None and p.sources['gain'] == 'missing'


def test_gain_quantity_units():
    p = detector_parameters(None, gain=2.0 * u.electron / u.adu)
    assert p['gain'] == 2.0
    with pytest.raises(u.UnitsError, match='gain'):
        detector_parameters(None, gain=2.0 * u.m)


def test_bad_header_values_warn_and_are_ignored():
    with pytest.warns(AstropyUserWarning, match='GAIN'):
        p = detector_parameters({'GAIN': 0.0, 'EGAIN': 2.2})
    assert p['gain'] == 2.2 and p.sources['gain'] == 'EGAIN'
    with pytest.warns(AstropyUserWarning, match='EXPTIME'):
        assert detector_parameters({'EXPTIME': 'long'})['exptime'] is None


@pytest.mark.parametrize('kwargs, exc', [
    ({'gain': 0}, ValueError), ({'gain': -1.5}, ValueError),
    ({'gain': 'abc'}, TypeError), ({'exptime': 0}, ValueError),
    ({'read_noise': -1}, ValueError)])
def test_bad_arguments(kwargs, exc):
    name = next(iter(kwargs))
    with pytest.raises(exc, match=name):
        detector_parameters(None, **kwargs)


def test_decode_flags():
    assert decode_flags(0) == []
    assert decode_flags(FLAG_TRUNCATED | FLAG_SATURATED) == [
        FLAG_DESCRIPTIONS[1], FLAG_DESCRIPTIONS[4]]
    assert sorted(FLAG_DESCRIPTIONS) == [1, 2, 4, 8, 16, 32, 64, 128]
    with pytest.raises(ValueError, match='flags'):
        decode_flags(-1)
