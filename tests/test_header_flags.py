"""Header keyword precedence and flag decoding."""

import astropy.units as u
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import FLAG_SATURATED, FLAG_TRUNCATED, DetectorParameters
from ccdphot_ext.flags import FLAG_DESCRIPTIONS, decode_flags


def test_precedence_argument_header_missing():
    hdr = fits.Header({'GAIN': 1.9, 'EGAIN': 2.23, 'RDNOISE': 5.0,
                       'EXPOSURE': 150.04, 'SATLEVEL': 60000})
    p = DetectorParameters().resolve(hdr)
    assert p.gain == 1.9 and p.sources['gain'] == 'GAIN'
    assert p.read_noise == 5.0
    assert p.exptime == 150.04 and p.sources['exptime'] == 'EXPOSURE'
    assert p.saturation == 60000
    p = DetectorParameters(gain=3.0).resolve(hdr)
    assert p.gain == 3.0 and p.sources['gain'] == 'argument'
    p = DetectorParameters().resolve({})
    assert p.gain is None and p.sources['gain'] == 'missing'


def test_gain_quantity_units():
    p = DetectorParameters(gain=2.0 * u.electron / u.adu)
    assert p.gain == 2.0 * u.electron / u.adu  # as given, until resolved
    assert p.resolve().gain == 2.0
    with pytest.raises(u.UnitsError, match='gain'):
        DetectorParameters(gain=2.0 * u.m)


def test_bad_header_values_warn_and_are_ignored():
    with pytest.warns(AstropyUserWarning, match='GAIN'):
        p = DetectorParameters().resolve({'GAIN': 0.0, 'EGAIN': 2.2})
    assert p.gain == 2.2 and p.sources['gain'] == 'EGAIN'
    with pytest.warns(AstropyUserWarning, match='EXPTIME'):
        assert DetectorParameters().resolve({'EXPTIME': 'long'}).exptime is None


@pytest.mark.parametrize('kwargs, exc', [
    ({'gain': 0}, ValueError), ({'gain': -1.5}, ValueError),
    ({'gain': 'abc'}, TypeError), ({'exptime': 0}, ValueError),
    ({'read_noise': -1}, ValueError), ({'dark': -0.5}, ValueError),
    ({'dark': 2.0 * u.adu}, TypeError), ({'saturation': True}, TypeError),
    ({'exptime': float('nan')}, ValueError)])
def test_bad_arguments(kwargs, exc):
    name = next(iter(kwargs))
    with pytest.raises(exc, match=name):
        DetectorParameters(**kwargs)


def test_detector_parameters_are_keyword_only_and_immutable():
    with pytest.raises(TypeError):
        DetectorParameters(2.0)
    p = DetectorParameters(gain=2.0, dark=0.0)
    with pytest.raises(AttributeError, match='immutable'):
        p.gain = 3.0
    assert (p.gain, p.read_noise, p.dark) == (2.0, None, 0.0)
    assert p.sources == {'gain': 'argument', 'read_noise': 'missing',
                         'dark': 'argument', 'saturation': 'missing',
                         'exptime': 'missing'}
    p.sources['gain'] = 'edited'  # a copy: the object keeps its own
    assert p.sources['gain'] == 'argument'
    assert repr(p) == 'DetectorParameters(gain=2.0, dark=0.0)'
    assert eval(repr(p)) == p


def test_resolve_is_a_copy_and_resolving_again_starts_from_the_arguments():
    p = DetectorParameters(read_noise=4.0)
    r = p.resolve({'GAIN': 1.9, 'EXPTIME': 10.0, 'RDNOISE': 7.0},
                  unit=u.adu / u.s)
    assert p.gain is None and p.sources['gain'] == 'missing'
    assert r.read_noise == 4.0 and r.sources['read_noise'] == 'argument'
    assert r.detector_gain == 1.9 and r.exptime == 10.0
    # rate data: electrons per adu / s, the gain times the exposure time
    assert r.gain == pytest.approx(19.0) and 'exptime' in r.gain_note
    assert r.sources['gain'].startswith('GAIN: ')
    # a second resolution never multiplies by the exposure time again
    assert r.resolve({'GAIN': 1.9, 'EXPTIME': 10.0},
                     unit=u.adu / u.s).gain == r.gain
    q = DetectorParameters(gain=1.9).resolve({'EXPTIME': 10.0},
                                            unit=u.adu / u.s)
    assert q.resolve({'EXPTIME': 10.0}, unit=u.adu / u.s) == q
    assert '[argument' in repr(q) and '[EXPTIME]' in repr(q)


def test_detector_parameters_pickle_and_hash():
    import pickle
    r = DetectorParameters(gain=2.0).resolve({'SATURATE': 6e4})
    back = pickle.loads(pickle.dumps(r))
    assert back == r and back.sources == r.sources
    assert back.saturation == 6e4 and hash(back) == hash(r)


def test_gain_keyword_beside_detector():
    from ccdphot_ext.io.header import detector_with_gain
    det = DetectorParameters(read_noise=5.0)
    merged = detector_with_gain(det, 2.0)
    assert (merged.gain, merged.read_noise) == (2.0, 5.0)
    same = DetectorParameters(gain=2.0)
    assert detector_with_gain(same, 2.0 * u.electron / u.adu) is same
    assert detector_with_gain(same, None) is same
    with pytest.raises(ValueError, match=r'gain=3.0 and detector='):
        detector_with_gain(same, 3.0)
    mjy = 31.3 * u.electron / (u.MJy / u.sr)
    with pytest.raises(ValueError, match='disagree'):
        detector_with_gain(same, mjy)
    assert detector_with_gain(DetectorParameters(gain=mjy), mjy).gain == mjy
    with pytest.raises(TypeError, match='detector'):
        detector_with_gain({'gain': 2.0}, None)


def test_decode_flags():
    assert decode_flags(0) == []
    assert decode_flags(FLAG_TRUNCATED | FLAG_SATURATED) == [
        FLAG_DESCRIPTIONS[1], FLAG_DESCRIPTIONS[4]]
    assert sorted(FLAG_DESCRIPTIONS) == [1, 2, 4, 8, 16, 32, 64, 128, 256,
                                         512, 1024, 2048]
    with pytest.raises(ValueError, match='flags'):
        decode_flags(-1)


def test_check_choice_is_the_one_rule_for_choices():
    import numpy as np

    from ccdphot_ext.utils.numbers import check_choice
    assert check_choice('exact', 'sum_method', ('exact', 'center')) == 'exact'
    assert check_choice(np.str_('center'), 'x', ('exact', 'center'))
    for bad in ('sum', None, 1, np.array(['exact', 'exact'])):
        with pytest.raises(ValueError, match=r"sum_method must be one of "
                                             r"\('exact', 'center'\)"):
            check_choice(bad, 'sum_method', ('exact', 'center'))
    # True is a choice of its own, not the number 1
    with pytest.raises(ValueError, match='recenter'):
        check_choice(1, 'recenter', (False, True))


def test_check_choice_numbers_and_numpy_scalars():
    import numpy as np

    from ccdphot_ext.utils.numbers import check_choice
    assert check_choice(np.int64(8), 'connectivity', (4, 8)) == 8
    assert check_choice(np.bool_(False), 'flag', ('auto', True, False)) \
        is not None
    for bad in (True, 6, '8', None):
        with pytest.raises(ValueError, match='connectivity'):
            check_choice(bad, 'connectivity', (4, 8))
