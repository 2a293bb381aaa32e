"""The Poisson bias of a Background2D level (photutils' estimators read a
skewed sky low) where no gain is given: taken from the frame's unit and
header, else read from the frame's skewness (``data=``), else warned
about. Seeded Poisson skies at 2 e-/ADU with 3 e- of read noise; level
pulls at the mesh centres (no filter: the spline passes through them)."""

import math
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning
from photutils.background import Background2D

from ccdphot_ext import SkyEstimate
from ccdphot_ext.background.maps import (
    estimator_skew_factor,
    window_skew_response,
)

GAIN = 2.0
SIZE = 256
BOX = 32
CENTRES = np.ix_(np.arange(BOX // 2, SIZE, BOX), np.arange(BOX // 2, SIZE, BOX))


def _frame(rng, sky_e, size=SIZE):
    """A star-free Poisson sky of ``sky_e`` electrons, in ADU."""
    return (rng.poisson(np.full((size, size), sky_e))
            + rng.normal(0.0, 3.0, (size, size))) / GAIN


def _sky(pixels, box=BOX, **kwargs):
    """Background2D of ``pixels`` (no filter) and its `SkyEstimate`."""
    bkg = Background2D(pixels, box, filter_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        return bkg, SkyEstimate.from_background2d(bkg, **kwargs)


@pytest.mark.parametrize('sky_e', [50.0, 200.0, 2000.0])
def test_level_without_gain_from_the_frames_skewness(sky_e):
    """With ``data=`` and no gain the skewness of the frame's sky (here
    within 3 of its errors of the photons' and the read noise's) gives
    the gain, and the level pulls are those with the gain: mean within
    +-0.1, spread 1 +- 0.05 (fuller runs, 30 frames of 512 x 512 with 64
    px meshes: 50 e- -0.073, 200 e- -0.051; 2000 e- with 32 px meshes
    -0.035; spreads 0.98-1.00). Before, photutils' level was left: here
    0.1 to 0.7 below; -3.1 / -1.9 / -0.34 on those fuller runs."""
    rng = np.random.default_rng(int(sky_e))
    truth = sky_e / GAIN
    pulls = {'gain': [], 'skew': [], 'photutils': []}
    skews, shifts = [], []
    for _ in range(8):
        data = _frame(rng, sky_e)
        bkg, with_gain = _sky(data, gain=GAIN, data=data)
        _, skewed = _sky(data, data=data)
        skews.append((skewed.meta['skew'], skewed.meta['skew_error']))
        shifts.append(np.mean(skewed.value - np.asarray(bkg.background)))
        error = skewed.error_on_mean[CENTRES]
        pulls['gain'].append((with_gain.value[CENTRES] - truth)
                             / with_gain.error_on_mean[CENTRES])
        pulls['skew'].append((skewed.value[CENTRES] - truth) / error)
        pulls['photutils'].append(
            (np.asarray(bkg.background)[CENTRES] - truth) / error)
    pulls = {k: np.array(v) for k, v in pulls.items()}
    # the noise's skewness, mu3 / sigma**3 of sky_e photons and 9 e- of
    # read-noise variance, within three of its errors
    skews = np.array(skews)
    expected = sky_e / (sky_e + 9.0) ** 1.5
    assert abs(np.mean(skews[:, 0]) - expected) < 3.0 * np.sqrt(
        np.mean(skews[:, 1] ** 2) / len(skews))
    # the bias removed is the estimator's at that skewness (noise 3%
    # below the rms: clipped)
    sigma = math.sqrt(sky_e + 9.0) / GAIN
    assert np.mean(shifts) == pytest.approx(
        estimator_skew_factor(bkg)[0] * np.mean(skews[:, 0]) * sigma,
        rel=0.05)
    for route in ('gain', 'skew'):
        assert abs(np.mean(pulls[route])) < 0.1
        assert np.std(pulls[route]) == pytest.approx(1.0, abs=0.05)
    assert np.mean(pulls['photutils']) < np.mean(pulls['skew']) - 0.1
    # the skewness's uncertainty is a small part of the level's error
    assert np.mean(skewed.error_on_mean) == pytest.approx(
        np.mean(with_gain.error_on_mean), rel=0.03)


def test_without_gain_or_frame_warns_naming_gain():
    """Given neither the gain nor the frame, the level is photutils' and
    a warning names ``gain`` where the bias could reach the level's
    error (here 1.9 of it: 200 e-, 64 px meshes, photutils' 3 x 3
    filter); ``meta`` holds that bound, the bias were the noise all
    photons."""
    data = _frame(np.random.default_rng(7), 200.0)
    bkg = Background2D(data, 64)
    with pytest.warns(AstropyUserWarning, match='gain=None'):
        sky = SkyEstimate.from_background2d(bkg)
    factor, _ = estimator_skew_factor(bkg)
    expected = factor * np.median(sky.std ** 2 / sky.value)
    assert sky.meta['estimator_bias_bound'] == pytest.approx(expected,
                                                             rel=0.01)
    # the true bias, 0.39 mu3 / sigma**2 (the noise 96% photons)
    true_bias = factor * 100.0 / (GAIN ** 2 * 209.0 / GAIN ** 2)
    assert sky.meta['estimator_bias_bound'] == pytest.approx(true_bias,
                                                             rel=0.1)
    assert np.median(sky.value) == pytest.approx(100.0 - true_bias,
                                                 abs=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        fixed = SkyEstimate.from_background2d(Background2D(data, 64),
                                              data=data)
    assert fixed.meta['skew_gain'] == pytest.approx(GAIN, rel=0.1)
    assert np.median(fixed.value) - np.median(sky.value) == pytest.approx(
        true_bias, abs=0.03)


def test_no_warning_where_the_bias_is_small():
    """A bright sky on small meshes: the bias could reach 0.1 of the
    level's error; no warning (the bound is still in ``meta``)."""
    data = _frame(np.random.default_rng(8), 2000.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        sky = SkyEstimate.from_background2d(Background2D(data, 16,
                                                         filter_size=1))
    bound = sky.meta['estimator_bias_bound']
    assert 0.0 < bound < 0.2 * np.median(sky.error_on_mean)


@pytest.mark.parametrize('unit, per_adu, meta, gain', [
    ('electron', GAIN, {}, None),
    ('electron/s', GAIN / 100.0, {'EXPTIME': 100.0}, None),
    ('MJy/sr', 0.1069 / 100.0, {},
     GAIN / (0.1069 / 100.0) * u.electron / (u.MJy / u.sr)),
    ('MJy/sr', 0.1069 / 100.0, {'GAIN': GAIN, 'EXPTIME': 100.0,
                                'FLUXCONV': 0.1069}, None),
])
def test_gain_of_the_frames_unit_and_header(unit, per_adu, meta, gain):
    """``data=`` a CCDData not in ADU: the gain comes from its unit and
    header (or a Quantity in electrons per its unit), as `from_image`
    takes it: the level reads as in ADU with the gain (before, the
    Quantity was refused, and without it the bias was left in)."""
    adu = _frame(np.random.default_rng(1), 280.0)
    _, ref = _sky(adu, gain=GAIN, data=CCDData(adu, unit='adu'))
    ccd = CCDData(adu * per_adu, unit=unit, meta=meta)
    _, sky = _sky(np.asarray(ccd.data), gain=gain, data=ccd)
    assert 'skew_gain' not in sky.meta
    np.testing.assert_allclose(np.asarray(sky.value) / per_adu,
                               np.asarray(ref.value), rtol=1e-9)
    assert ref.meta['estimator_bias'] < -0.1


def test_window_skew_response():
    """The window's share of the third moment, first order in the
    skewness: a Gram-Charlier density's, integrated numerically."""
    from scipy.integrate import quad
    from scipy.stats import norm

    c, factor, gamma = 4.0, 0.39, 1e-3

    def moment(k, t):
        return quad(lambda x: x ** k * norm.pdf(x)
                    * (1.0 + gamma / 6.0 * (x ** 3 - 3.0 * x)),
                    t - c, t + c)[0]

    t = -factor * gamma  # the reading's offset from the mean
    p, m1 = moment(0, t), moment(1, t) / moment(0, t)
    central = (moment(3, t) / p - 3.0 * m1 * moment(2, t) / p
               + 2.0 * m1 ** 3)
    assert central / gamma == pytest.approx(
        window_skew_response(c, factor), rel=1e-3)
    assert window_skew_response(50.0, 0.39) == pytest.approx(1.0,
                                                             rel=1e-9)
    assert not math.isnan(window_skew_response(1.0, 0.0))
