"""Blank-sky apertures and annulus skies on hostile inputs: a clear error
naming the parameter or a flag, never a traceback or a silent number."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    RectangularAnnulus,
)
from scipy.ndimage import uniform_filter

from ccdphot_ext import FLAG_SKY_ANNULUS, ApertureNoise, SkyEstimate


@pytest.fixture
def img():
    return np.random.default_rng(4).normal(100.0, 5.0, (200, 200))


SKY = SkyEstimate(100.0, 5.0, 40000)


def test_blank_apertures_on_mostly_nan_frame(img):
    img = img.copy()
    img[:, :150] = np.nan  # three quarters of the frame
    noise = ApertureNoise.from_blank_apertures(img, SKY, seed=1)
    assert not noise.correlated
    assert noise(100) == pytest.approx(50.0)  # white: 5 * sqrt(100)


@pytest.mark.parametrize('kwargs, exc, match', [
    ({'sizes': [2.5, 3]}, ValueError, 'sizes must be a whole number'),
    ({'sizes': [4, 4]}, ValueError, 'two different sides'),
    ({'sizes': [3]}, ValueError, 'two different sides'),
    ({'sizes': [0, 3]}, ValueError, 'sizes must be positive'),
    ({'sizes': [3, 900]}, ValueError, 'sizes: 900 exceeds'),
    ({'n_apertures': 19}, ValueError, 'n_apertures must be a whole number'),
    ({'n_apertures': 50.5}, ValueError, 'n_apertures must be a whole number'),
    ({'seed': 'x'}, TypeError, 'seed must be'),
    ({'mask': np.ones((200, 200), bool)}, ValueError, 'no blank sky'),
])
def test_blank_apertures_bad_arguments(img, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ApertureNoise.from_blank_apertures(img, SKY, **kwargs)


def test_blank_apertures_degenerate_frames(img):
    with pytest.raises(ValueError, match='data has no finite'):
        ApertureNoise.from_blank_apertures(np.full(img.shape, np.inf), SKY)
    with pytest.raises(ValueError, match='do not scatter'):
        ApertureNoise.from_blank_apertures(np.full(img.shape, 100.0), SKY)
    with pytest.raises(u.UnitsError, match='sky unit adu'):
        ApertureNoise.from_blank_apertures(
            img * u.electron, SkyEstimate(100.0, 5.0, 100, unit=u.adu))


def test_white_noise_is_not_called_correlated_on_small_frames():
    """Overlapping apertures are not independent: on a 200 x 200 frame the
    21-pixel apertures' scatter has the error of ~70 apertures, not 1000.
    Counting all 1000 called white noise correlated in 2 of 20 seeds
    (inflating its errors by ~6%); 3x3-correlated noise is still found."""
    white, corr = 0, 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        w = rng.normal(100.0, 5.0, (200, 200))
        white += ApertureNoise.from_blank_apertures(w, SKY,
                                                    seed=seed).correlated
        c = uniform_filter(rng.normal(0.0, 15.0, (200, 200)), 3) + 100.0
        sky = SkyEstimate(100.0, float(np.std(c)), c.size)
        corr += ApertureNoise.from_blank_apertures(c, sky,
                                                   seed=seed).correlated
    assert (white, corr) == (0, 12)
    noise = ApertureNoise.from_blank_apertures(
        np.random.default_rng(0).normal(100.0, 5.0, (200, 200)), SKY, seed=1)
    big = noise.n_pix[-1]
    assert noise.n_independent[-1] == pytest.approx(200 * 200 / big,
                                                    rel=0.2)
    assert noise.n_apertures[-1] > 5 * noise.n_independent[-1]


def test_annulus_hostile_geometry(img):
    with pytest.raises(ValueError, match="'r_out' must be greater"):
        CircularAnnulus((50, 50), r_in=10, r_out=5)
    with pytest.raises(ValueError, match='annulus spans 200001 x 200001'):
        SkyEstimate.from_annulus(img, CircularAnnulus((50, 50), 3, 1e5))
    with pytest.raises(ValueError, match='no sky annulus holds'):
        SkyEstimate.from_annulus(img, CircularAnnulus((-500, 50), 3, 9))
    with pytest.raises(ValueError, match='no sky annulus holds'):
        SkyEstimate.from_annulus(img, CircularAnnulus((50, 50), 0.1, 0.2))
    # an annulus inside the pixels its aperture touches: said so
    with pytest.raises(ValueError, match=r'no sky annulus .*: the pixels the '
                                         r'apertures touch cover the annuli '
                                         r'\(give a larger r_out\)'):
        SkyEstimate.from_annulus(img, CircularAnnulus((50, 50), 3, 5),
                                 exclude=CircularAperture((50, 50), 4))


def test_annulus_nan_region_flags_its_row(img):
    img = img.copy()
    img[:, :150] = np.nan
    with (pytest.warns(AstropyUserWarning, match='doubtful'),
          pytest.warns(AstropyUserWarning,
                       match='excluded from the sky annuli')):
        sky = SkyEstimate.from_annulus(
            img, CircularAnnulus([(50, 100), (180, 100)], 5, 10))
    assert np.isnan(sky.value[0]) and sky.n_pix[0] == 0
    assert list(sky.meta['flags']) == [FLAG_SKY_ANNULUS, 0]
    assert sky.value[1] == pytest.approx(100.0, abs=2.0)


@pytest.mark.parametrize('make', ['flat', 'one_pixel', 'thin_rectangle'])
def test_degenerate_annuli_are_flagged(img, make):
    ann = CircularAnnulus((100, 100), 5, 10)
    mask = None
    data = img
    if make == 'flat':
        data = np.full(img.shape, 7.0)
    elif make == 'one_pixel':
        mask = np.ones(img.shape, bool)
        mask[100, 107] = False
    else:
        ann = RectangularAnnulus((50, 100), w_in=4, w_out=4.01, h_out=0.01)
    with pytest.warns(AstropyUserWarning,
                      match='doubtful|excluded from the sky annuli') as record:
        sky = SkyEstimate.from_annulus(data, ann, mask=mask)
    texts = [str(w.message) for w in record]
    assert any('doubtful' in text for text in texts)
    # the masked pixels are said too
    assert (make == 'one_pixel') == any(
        'excluded from the sky annuli' in text for text in texts)
    assert list(sky.meta['flags']) == [FLAG_SKY_ANNULUS]
    assert sky.n_pix[0] < 5 or sky.std[0] == 0.0


def test_healthy_annulus_is_not_flagged(img):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        sky = SkyEstimate.from_annulus(img, CircularAnnulus((100, 100), 5, 10))
    assert list(sky.meta['flags']) == [0]
    assert sky.n_pix[0] > 200


@pytest.mark.parametrize('maxiters, exc, match', [
    (0, ValueError, 'maxiters must be positive'),
    (-1, ValueError, 'maxiters must be positive'),
    (2.5, ValueError, 'maxiters must be a whole number'),
    (True, TypeError, 'maxiters must be a number')])
def test_maxiters_is_checked(img, maxiters, exc, match):
    ann = CircularAnnulus((100, 100), 5, 10)
    with pytest.raises(exc, match=match):
        SkyEstimate.from_annulus(img, ann, maxiters=maxiters)
    with pytest.raises(exc, match=match):
        SkyEstimate.from_image(img, maxiters=maxiters)
    assert SkyEstimate.from_image(img, maxiters=None).meta['maxiters'] is None
