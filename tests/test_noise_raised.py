"""ApertureNoise on crowded frames: a large blank-aperture size that reads
significantly lower, for its pixel count, than a smaller one (the few blank
corners of a crowded frame are where the source mask found no positive
fluctuation) is taken at the smaller size's ratio in the model's curve."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from scipy.ndimage import uniform_filter
from scipy.signal import convolve2d

from ccdphot_ext import ApertureNoise, SkyEstimate
from ccdphot_ext.background.noise import DIP_NSIGMA, _log_curve
from ccdphot_ext.datasets.sample import render_stars


def _model(ratio, rel_err, sigma1=2.0):
    n_pix = np.array([1.0, 4.0, 9.0, 25.0, 49.0, 81.0, 121.0])
    white = sigma1 * np.sqrt(n_pix)
    ratio = np.asarray(ratio, dtype=float)
    return ApertureNoise(sigma1, 1.0, 0.5, n_pix=n_pix, sigma=ratio * white,
                         sigma_err=rel_err * ratio * white,
                         n_apertures=np.full(n_pix.size, 100))


def test_a_significant_dip_is_raised_in_the_curve_only():
    ratio = [1.0, 1.6, 2.0, 2.4, 2.6, 1.5, 1.2]
    noise = _model(ratio, 0.05)
    assert noise.raised_sizes.tolist() == [81.0, 121.0]
    # the measured points, the test of correlation and the power law keep
    # the measured values
    assert np.allclose(noise.sigma / noise.white, ratio)
    assert noise.correlated
    # the curve goes through 2.6 at 81 and 121 pixels, not down to 1.2
    assert noise(121.0) / noise.white[-1] == pytest.approx(2.6, rel=0.03)
    assert noise(225.0) >= 2.55 * 2.0 * 15.0
    assert 'the 9 and 11 pixel blank apertures' in noise.note


def test_dips_within_their_errors_are_kept_bit_for_bit():
    # 2.6 -> 2.3 with 10% errors: 0.3 against 2 * hypot(0.26, 0.23) = 0.69
    ratio = [1.0, 1.6, 2.0, 2.4, 2.6, 2.3, 2.5]
    noise = _model(ratio, 0.10)
    assert noise.raised_sizes.size == 0
    coef = _log_curve(noise.n_pix, noise.sigma / noise.white,
                      noise.sigma / noise.sigma_err)
    assert np.array_equal(noise._curve, coef)
    assert 'read low' not in noise.note
    # beyond DIP_NSIGMA combined errors it is raised
    e = 0.02
    just = 2.6 - 1.05 * DIP_NSIGMA * e * np.hypot(2.6, 2.0)
    assert _model([1.0, 1.6, 2.0, 2.4, 2.6, 2.6, just], e
                  ).raised_sizes.size == 0
    assert _model([1.0, 1.6, 2.0, 2.4, 2.6, 2.6, 2.0], e
                  ).raised_sizes.tolist() == [121.0]


def test_white_noise_is_white_whatever_its_dips():
    # white noise: the model is the white line, whichever point dips
    noise = _model([1.0, 1.01, 0.99, 1.0, 1.02, 0.85, 1.0], 0.04)
    assert noise.raised_sizes.tolist() == [81.0]
    assert not noise.correlated
    assert noise(225.0) == pytest.approx(2.0 * 15.0, rel=1e-12)


def _exact_boxcar_sigma(side, sigma=15.0):
    w = convolve2d(np.ones((side, side)), np.ones((3, 3)) / 9.0)
    return sigma * float(np.sqrt(np.sum(w * w)))


def _crowded(seed):
    rng = np.random.default_rng(1000 + seed)
    x, y = rng.uniform(0, 300, (2, 1000))
    flux = 10 ** rng.uniform(2.5, 4.5, 1000)
    img = (100.0 + render_stars((300, 300), x, y, flux, sigma=1.5)
           + uniform_filter(rng.normal(0.0, 15.0, (300, 300)), 3))
    with warnings.catch_warnings():  # 'sources cover' most of the frame
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(img)
    return ApertureNoise.from_blank_apertures(img, sky, seed=seed)


def test_crowded_correlated_frames_keep_their_large_apertures():
    """1000 stars on 300 x 300 of 3 x 3-correlated noise: at these seeds
    the 9- and 11-pixel blank apertures (the largest placed) read 0.46-0.86
    of the exact scatter, 2.4-4.5 of their errors below the 7-pixel ratio,
    and the model gave 0.58-0.75 of the exact 15 x 15 scatter; over 16
    seeds the blank sums of 11-21 pixel boxes would have scattered 1.10-1.12
    times their error bars (1.01-1.02 with the raise). The pixel-pair sums
    now take those points (`test_noise_pairs.py`): the model is what they
    read, at seed 0 0.94 and 0.99 of the exact scatter at 11 and 15
    pixels, at seed 8 1.07 and 1.11 (0.87 and 0.84, 1.11 and 1.16 while
    the pair covariance kept its far lags, chance products of a few
    thousand blank pixels: `_tapered`; 0.89 at seed 0 with the raise
    alone). Beyond the largest blank aperture (11 pixels here) the pair
    sums are not scaled below themselves."""
    for seed in (0, 8):
        noise = _crowded(seed)
        assert noise.correlated
        # the pixel-pair sums take the low point up before the dip test;
        # the points alone have it raised
        assert noise.raised_sizes.size == 0
        alone = ApertureNoise(
            noise.sigma1, noise.alpha, noise.beta, n_pix=noise.n_pix,
            sigma=noise.sigma, sigma_err=noise.sigma_err,
            n_apertures=noise.n_apertures,
            n_independent=noise.n_independent)
        assert 121.0 in alone.raised_sizes
        # the measured point stays what it was
        assert noise.sigma[-1] < 0.65 * _exact_boxcar_sigma(11)
        for side in (11, 15):
            assert 0.9 < noise(side * side) / _exact_boxcar_sigma(side) < 1.15
            scale = (noise.pair_scale if side * side <= noise.n_max
                     else max(noise.pair_scale, 1.0))
            assert noise(side * side) == pytest.approx(
                noise.pair_sigma(side * side) * scale, rel=0.01)
