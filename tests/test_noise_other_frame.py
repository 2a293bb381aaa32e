"""A noise model measured on one frame and used on another: sky terms off
by the ratio of their pixel noise squared, warned about."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import ApertureNoise, BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.noise import _robust_std


def _frame(seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return scale * rng.normal(100.0, 8.0, (200, 200))


@pytest.fixture(scope='module')
def model():
    data = _frame(1)
    return ApertureNoise.from_blank_apertures(
        data, SkyEstimate.from_image(data), seed=1)


def _pulls(data, sky, noise):
    centres = np.random.default_rng(4).uniform(10.0, 190.0, (300, 2))
    t = photometer(data, BoxAperture(centres, 7, 7), sky, noise=noise)
    return _robust_std(np.asarray(t['aperture_sum'], dtype=float)
                       / np.asarray(t['aperture_sum_err'], dtype=float))


@pytest.mark.parametrize('scale', [100.0, 0.1, 2.0 * u.electron])
def test_model_of_another_frame_is_warned(model, scale):
    # a frame 100 / 0.1 / 2 times the one measured (electrons against a
    # model of data units): blank sums scatter far from their errors
    # (18 / 0.1 / 1.9 here), which the warning says
    data = _frame(2) * scale
    sky = SkyEstimate.from_image(data)
    with pytest.warns(AstropyUserWarning, match='noise was measured '
                      'against a sky of pixel noise'):
        ratio = _pulls(data, sky, model)
    factor = float(getattr(scale, 'value', scale))
    assert ratio > 1.5 if factor > 1.0 else ratio < 0.5


def test_model_of_a_like_frame_is_not_warned(model):
    # another exposure of the same sky: no warning, pulls as white
    data = _frame(3)
    sky = SkyEstimate.from_image(data)
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        ratio = _pulls(data, sky, model)
    assert 0.85 < ratio < 1.15
    assert model.meta['sky_std'] == pytest.approx(8.0, rel=0.05)
