"""Blank-sky aperture noise on the whole-frame route: a large-scale trend
of the blank sky (a gradient, a vignetted frame's curvature) biases each
flux by its position, which the photometry flags (flag 32); it is no
noise, and the model leaves it out (``ApertureNoise.trend_removed``)."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from scipy.ndimage import uniform_filter

from ccdphot_ext import (
    ApertureNoise,
    BoxAperture,
    SkyEstimate,
    measure,
    photometer,
)
from ccdphot_ext.background.noise import trend_image
from ccdphot_ext.flags import FLAG_NONPOSITIVE_FLUX, FLAG_RESIDUAL_BACKGROUND

SIGMA = 10.0
LEVEL = 200.0


def _ramp(size, angle):
    """A plane of -1 to 1 across a size x size frame along ``angle``."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1.0) * 2.0 - 1.0
    c, s = np.cos(angle), np.sin(angle)
    return (c * xx + s * yy) / (abs(c) + abs(s))


def _noise(rng, size, k=1):
    """White noise of SIGMA, or k x k boxcar-correlated noise whose sums
    of many pixels scatter as white noise of SIGMA would."""
    noise = rng.normal(0.0, SIGMA, (size, size))
    return noise if k == 1 else uniform_filter(noise, k) * k


def _grid(size, side, step):
    """Box centres on a grid ``step`` pixels apart (independent sums)."""
    c = np.arange(side, size - side, step) + 0.3
    return np.column_stack([a.ravel() for a in np.meshgrid(c, c)])


def test_gradient_on_white_noise_is_no_noise():
    # 0.2-0.6 sigma to either side of the frame's centre, in any direction:
    # against one level the gradient read as correlated noise (+-0.4 sigma
    # on 256 x 256: model 1.6 / 2.7 / 5.9 times the white noise at 5 / 11
    # / 25 pixels, unflagged rows' pulls spreading 0.68 / 0.45 / 0.31)
    rng = np.random.default_rng(11)
    size = 192
    pulls = {5: [], 11: []}
    steps = {5: 8, 11: 12}
    for seed in range(6):
        grad = rng.uniform(0.2, 0.6)
        tilt = grad * SIGMA * _ramp(size, rng.uniform(0.0, 2.0 * np.pi))
        data = LEVEL + tilt + _noise(rng, size)
        sky = SkyEstimate.from_image(data)
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=seed)
        assert noise.trend_removed and not noise.correlated, seed
        # sigma1 is the pixel noise, not the sky's std with the tilt in it
        assert abs(noise.sigma1 / SIGMA - 1.0) < 0.02, noise.sigma1
        assert sky.std ** 2 - noise.sigma1 ** 2 > 0.5 * np.var(tilt)
        surface = trend_image(noise.meta['trend'], data.shape)
        assert np.std(surface - tilt) < 0.1 * grad * SIGMA
        for side in pulls:
            box = BoxAperture(_grid(size, side, steps[side]), side, side)
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', AstropyUserWarning)
                t = photometer(data, box, sky, noise=noise)
                plain = photometer(data, box, sky) if side == 11 else t
            flags = np.asarray(t['flags'])
            biased = (flags & FLAG_RESIDUAL_BACKGROUND) > 0
            # smaller error bars: every row the plain budget flags for the
            # gradient stays flagged
            assert np.all(biased[(np.asarray(plain['flags'])
                                  & FLAG_RESIDUAL_BACKGROUND) > 0])
            ok = (flags & ~FLAG_NONPOSITIVE_FLUX) == 0
            pulls[side].extend((np.asarray(t['aperture_sum'])
                                / np.asarray(t['aperture_sum_err']))[ok])
    for side, p in pulls.items():
        p = np.asarray(p)
        assert p.size > 200, (side, p.size)
        assert abs(np.std(p) - 1.0) < 0.05, (side, np.std(p), p.size)
        # (the rows of a frame share its level's error: six levels)
        assert abs(np.mean(p)) < 0.1, (side, np.mean(p))


def test_vignetted_white_frame_is_no_noise():
    rng = np.random.default_rng(5)
    size = 256
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1.0) * 2.0 - 1.0
    data = LEVEL - 0.8 * SIGMA * (xx ** 2 + yy ** 2) + _noise(rng, size)
    sky = SkyEstimate.from_image(data)
    noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    assert noise.trend_removed and not noise.correlated
    assert abs(noise.sigma1 / SIGMA - 1.0) < 0.02
    assert abs(noise(441.0) / (SIGMA * 21.0) - 1.0) < 0.02


@pytest.mark.parametrize('k', [3, 5])
def test_correlated_noise_keeps_its_model_under_a_gradient(k):
    rng = np.random.default_rng(k)
    size = 256
    noise_img = _noise(rng, size, k)
    flat = LEVEL + noise_img
    tilted = flat + 0.5 * SIGMA * _ramp(size, 0.7)
    models = []
    for data in (flat, tilted):
        sky = SkyEstimate.from_image(data)
        models.append(ApertureNoise.from_blank_apertures(data, sky, seed=3))
    on_flat, on_tilt = models
    assert on_flat.correlated and on_tilt.correlated
    # block means see through correlated noise: a flat frame has no trend
    assert not on_flat.trend_removed and on_tilt.trend_removed
    # the same noise, the same model (within the 21-pixel point's own
    # error, 6%: the surface took some of the noise, which the blank sums
    # get back only on average); against one level the gradient read as
    # noise: 1.31 / 1.49 / 1.79 (3 x 3) and 1.11 / 1.17 / 1.27 (5 x 5)
    # times the flat frame's model at 11 / 15 / 21 pixels
    n = np.array([9.0, 49.0, 121.0, 225.0, 441.0])
    ratio = on_tilt(n) / on_flat(n)
    assert np.all(np.abs(ratio - 1.0) < 0.04), ratio
    # and the model is the noise's: sums of k x k boxcar noise of pixel
    # noise SIGMA scatter up to k times its white noise
    assert 0.8 * k < on_tilt(441.0) / (SIGMA * 21.0) < k


def test_flat_white_frame_keeps_the_sky_std():
    rng = np.random.default_rng(2)
    data = LEVEL + _noise(rng, 256)
    sky = SkyEstimate.from_image(data)
    noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    assert not noise.trend_removed and noise.meta['trend'] is None
    assert noise.sigma1 == sky.std
    box = BoxAperture((128.0, 128.0), 9, 9)
    assert (measure(data, box, sky, noise=noise).flux_err
            == measure(data, box, sky).flux_err)


def test_model_without_the_trend_warns_with_a_sky_without_its_map():
    rng = np.random.default_rng(4)
    data = LEVEL + 0.5 * SIGMA * _ramp(256, 0.0) + _noise(rng, 256)
    sky = SkyEstimate.from_image(data)
    noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    assert noise.trend_removed
    assert 'less its large-scale trend' in noise.note
    box = BoxAperture((128.0, 128.0), 9, 9)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        measure(data, box, sky, noise=noise)  # the map flags the rows
    bare = SkyEstimate(sky.value, sky.std, data.size)
    with pytest.warns(AstropyUserWarning, match='no background variation'):
        measure(data, box, bare, noise=noise)
    # measured with that sky, which flags nothing, the trend stays noise
    assert not ApertureNoise.from_blank_apertures(data, bare,
                                                  seed=1).trend_removed
