"""ApertureNoise's pixel-pair covariance: the sum of the blank sky's
covariances over an aperture's pixel pairs bounds the model (beyond the
largest blank aperture on every route, at every size on the whole-frame
and map routes) and replaces the few-aperture points of a crowded frame."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from scipy.ndimage import uniform_filter
from scipy.signal import convolve2d

from ccdphot_ext import ApertureNoise, BoxAperture, SkyEstimate, measure
from ccdphot_ext.background.noise import (
    PAIR_LAG,
    PAIR_TILES,
    pair_covariance,
    pair_variance,
)
from ccdphot_ext.datasets.sample import render_stars

SIGMA = 15.0


def _exact(side, k, sigma=SIGMA):
    """The scatter of a side x side sum of uniform_filter(white, k)."""
    w = convolve2d(np.ones((side, side)), np.ones((k, k)) / (k * k))
    return sigma * float(np.sqrt(np.sum(w * w)))


def _crowded(seed, k):
    """1000 stars on 300 x 300 pixels of k x k-correlated noise."""
    rng = np.random.default_rng(1000 + seed)
    x, y = rng.uniform(0, 300, (2, 1000))
    flux = 10 ** rng.uniform(2.5, 4.5, 1000)
    img = (100.0 + render_stars((300, 300), x, y, flux, sigma=1.5)
           + uniform_filter(rng.normal(0.0, SIGMA, (300, 300)), k))
    with warnings.catch_warnings():  # 'sources cover' most of the frame
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(img)
    return img, sky


@pytest.mark.parametrize('k', [1, 3, 5])
def test_pair_sums_give_the_noise_of_any_square(k):
    rng = np.random.default_rng(k)
    noise = uniform_filter(rng.normal(0.0, SIGMA, (400, 400)), k)
    bad = np.zeros(noise.shape, dtype=bool)
    bad[100:180, 50:300] = True  # a masked galaxy: gaps do not bias it
    cov, n = pair_covariance(noise, bad, float(noise.std()))
    assert cov.shape == (2 * PAIR_LAG + 1,) * 2
    assert n == noise.size - 80 * 250
    assert np.allclose(cov, cov[::-1, ::-1])  # C(d) = C(-d)
    for side in (1, 3, 7, 11, 21):
        ratio = np.sqrt(pair_variance(cov, side * side)) / _exact(side, k)
        assert abs(ratio - 1.0) < 0.05, (side, ratio)
    # no covariance beyond the boxcar's reach
    far = np.abs(cov).copy()
    far[PAIR_LAG - k + 1:PAIR_LAG + k, PAIR_LAG - k + 1:PAIR_LAG + k] = 0.0
    assert far.max() < 0.05 * cov[PAIR_LAG, PAIR_LAG]


def test_the_mean_subtraction_bias_is_added_back():
    """Against their own mean the pixels of a 64 x 64 white frame covary
    by -1/4096 of their variance at every lag: 21 x 21 sums would come
    out 7.5% low in variance; on average over 400 frames they do not
    (+-1.6%; 0.9996 over 2000)."""
    rng = np.random.default_rng(3)
    bad = np.zeros((64, 64), dtype=bool)
    var = [pair_variance(pair_covariance(rng.normal(5.0, 1.0, (64, 64)),
                                         bad, 1.0)[0], 441.0)
           for _ in range(400)]
    assert abs(np.mean(var) / 441.0 - 1.0) < 0.04


def test_large_frames_are_measured_on_tiles_spread_over_them():
    rng = np.random.default_rng(4)
    img = rng.normal(0.0, 2.0, (1100, 1100))
    img[500, 500] = 1e4  # a cosmic ray: left out with its neighbours
    cov, n = pair_covariance(img, np.zeros(img.shape, dtype=bool), 2.0)
    # 5 x 5 tiles of 220 pixels; 16 of them
    assert n == PAIR_TILES * 220 * 220 or n == PAIR_TILES * 220 * 220 - 9
    assert abs(cov[PAIR_LAG, PAIR_LAG] / 4.0 - 1.0) < 0.01


@pytest.mark.parametrize('k, seeds', [(5, (2, 3)), (3, (3,))])
def test_crowded_correlated_frames_beyond_their_largest_apertures(k, seeds):
    """Their largest blank apertures are 11 pixels, few (6-10
    independent) and low: the curve through them alone gave 0.64-0.69 of
    the exact scatter of 11- to 21-pixel boxes at these seeds, the model
    0.86-1.01 now."""
    for seed in seeds:
        img, sky = _crowded(seed, k)
        noise = ApertureNoise.from_blank_apertures(img, sky, seed=seed)
        assert noise.correlated and noise.n_max <= 121.0
        assert noise.meta['pair_lag'] == PAIR_LAG
        assert noise.meta['pair_pixels'] > 5000
        alone = ApertureNoise(
            noise.sigma1, noise.alpha, noise.beta, n_pix=noise.n_pix,
            sigma=noise.sigma, sigma_err=noise.sigma_err,
            n_apertures=noise.n_apertures,
            n_independent=noise.n_independent)
        for side in (11, 15, 21):
            exact = _exact(side, k)
            assert 0.82 < noise(side * side) / exact < 1.1, (seed, side)
            assert alone(side * side) / exact < 0.75
            assert noise(side * side) >= noise.pair_sigma(side * side) * (
                noise.pair_scale - 1e-12)
        # the small apertures, hundreds of them, keep their values
        assert noise(9.0) == pytest.approx(alone(9.0), rel=0.03)


def test_the_warning_says_which_estimator_continues_the_model():
    img, sky = _crowded(0, 5)
    noise = ApertureNoise.from_blank_apertures(img, sky, seed=0)
    with pytest.warns(AstropyUserWarning, match='pixel-pair covariance '
                      r'summed over the aperture \(lags up to 12 pixels\)'):
        res = measure(img, BoxAperture((150.0, 150.0), 21, 21), sky,
                      noise=noise)
    # (times the local noise's ratio squared where it is higher)
    assert res.budget.terms['sky'] >= noise(441.0) ** 2
    assert 'is the blank sky' in noise.extrapolation(441.0)
    assert noise.extrapolation(441.0, arrays=True) == (
        'continues the measured curve with its local slope')


def test_white_noise_stays_white():
    rng = np.random.default_rng(7)
    img = rng.normal(100.0, 5.0, (300, 300))
    noise = ApertureNoise.from_blank_apertures(
        img, SkyEstimate(100.0, 5.0, img.size), seed=1)
    assert not noise.correlated
    assert noise(625.0) == 5.0 * 25.0
    assert np.allclose(noise.meta['pair_ratio'], 1.0, atol=0.04)


def _points(route):
    """A model whose points follow 3 x 3 boxcar noise up to 7 pixels and
    then read low with large errors (few apertures), with the exact
    covariance of that noise."""
    cov = np.zeros((2 * PAIR_LAG + 1,) * 2)
    c = PAIR_LAG
    w = convolve2d(np.ones((3, 3)), np.ones((3, 3))) / 81.0  # lags -2..2
    cov[c - 2:c + 3, c - 2:c + 3] = w * SIGMA ** 2
    sides = np.array([1, 2, 3, 5, 7, 9, 11])
    exact = np.array([_exact(s, 3) for s in sides])
    ratio_low = np.array([1, 1, 1, 1, 1, 0.7, 0.6])
    err = np.array([0.02, 0.02, 0.03, 0.04, 0.06, 0.2, 0.3])
    sigma1 = SIGMA / 3.0
    return ApertureNoise(
        sigma1, 1.0, 0.5, n_pix=sides ** 2.0, sigma=exact * ratio_low,
        sigma_err=exact * ratio_low * err, n_apertures=[500] * 7,
        route=route, pair_covariance=cov,
        meta={'pair_pixels': 20000})


def test_few_aperture_points_combine_with_the_pairs():
    noise = _points('global')
    assert noise.pair_scale == pytest.approx(1.0, abs=0.01)
    for side in (9, 11, 21):
        assert noise(side * side) / _exact(side, 3) == pytest.approx(
            1.0, abs=0.03)
    # (the points themselves stay as measured)
    assert noise.sigma[-1] == pytest.approx(0.6 * _exact(11, 3))


def test_annulus_route_keeps_its_curve_within_its_apertures():
    """Annuli follow structure the pairs keep: on the annulus route the
    pairs bound the model only beyond the largest blank aperture."""
    noise = _points('annulus')
    assert noise(121.0) < 0.8 * _exact(11, 3)
    assert noise(122.0) / _exact(11, 3) > 0.99


@pytest.mark.parametrize('bad', [np.zeros((4, 4)), np.zeros((3, 5)),
                                 np.full((3, 3), np.nan), np.zeros(3)])
def test_pair_covariance_is_checked(bad):
    with pytest.raises(ValueError, match='pair_covariance'):
        ApertureNoise(1.0, 1.0, 0.5, n_pix=[1, 4], sigma=[1, 2],
                      sigma_err=[0.1, 0.2], n_apertures=[50, 50],
                      pair_covariance=bad)


def test_a_trend_is_taken_out_before_the_pairs():
    rng = np.random.default_rng(5)
    noise_img = uniform_filter(rng.normal(0.0, SIGMA, (256, 256)), 3)
    y, x = np.mgrid[:256, :256] / 255.0
    models = []
    for tilt in (0.0, 4.0):
        data = 100.0 + noise_img + tilt * (x - 0.5 + 0.6 * (y - 0.5))
        sky = SkyEstimate.from_image(data)
        models.append(ApertureNoise.from_blank_apertures(data, sky, seed=2))
    flat, tilted = models
    assert tilted.trend_removed and not flat.trend_removed
    for side in (11, 21):
        assert tilted.pair_sigma(side * side) == pytest.approx(
            flat.pair_sigma(side * side), rel=0.03)
