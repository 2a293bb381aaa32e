"""A Background2D map of a sky that curves between its meshes: photutils'
median filter flattens the peaks and its interpolation cuts the bends, so
the map misses the sky by more than the meshes' noise, which was all its
level error held. The error is raised to what the map misses of the blank
sky about each pixel; on white frames and drizzled mosaics (whose blank
means scatter beyond white noise only by their pixels' correlation) it
is left as it was. The map's rms is checked against the blank pixels'
scatter."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.background import Background2D
from test_noise_real import drizzled_mosaic

from ccdphot_ext import BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.maps import (
    blank_mean_noise_factor,
    check_rms_against_blank,
)
from ccdphot_ext.background.noise import _blank_corners


def _map(data):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        return SkyEstimate.from_background2d(Background2D(data, 32),
                                             data=data)


def _wave(seed):
    """A sine of 6 ADU (periods 140 and 120 px, about four 32 px meshes)
    on a sky of 100 with white noise 5, and the sky."""
    yy, xx = np.mgrid[:256, :256]
    truth = 100.0 + 6.0 * np.sin(2 * np.pi * xx / 140 + seed) * np.cos(
        2 * np.pi * yy / 120)
    rng = np.random.default_rng(seed)
    return truth + rng.normal(0.0, 5.0, truth.shape), truth


@pytest.mark.parametrize('seed', [1, 2])
def test_sky_curving_between_meshes(seed):
    # the level's error was the meshes' noise, 0.15, where the map missed
    # the sky by 2.8: level pulls std 18, blank 7 / 11 px sums 3.5-4.3
    # times their errors, flags 0; now level pulls std 1.02 / 1.02
    data, truth = _wave(seed)
    sky = _map(data)
    assert sky.meta['map_miss_raised'] > 5.0
    pulls = (np.asarray(sky.value) - truth) / np.asarray(sky.error_on_mean)
    assert np.std(pulls) == pytest.approx(1.0, abs=0.1)
    assert abs(np.mean(pulls)) < 0.1
    for side in (7, 11):
        y0, x0 = _blank_corners(np.zeros(data.shape, dtype=bool), side, 400,
                                np.random.default_rng(side))
        centres = np.column_stack([x0, y0]) + (side - 1) / 2.0
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            t = photometer(data, BoxAperture(centres, side, side), sky)
        # (the sine is sky: the boxes hold none of the sources' light)
        ratio = np.std(np.asarray(t['aperture_sum'])
                       / np.asarray(t['aperture_sum_err']))
        assert 0.85 < ratio < 1.2, (side, ratio)


def test_white_frame_not_raised():
    # white noise on a flat sky: the blank means scatter as their error
    # and their own noise say, and nothing is raised
    data = np.random.default_rng(0).normal(100.0, 5.0, (256, 256))
    sky = _map(data)
    assert sky.meta['map_miss_raised'] is None
    assert sky.meta.get('map_miss') is None
    assert np.median(sky.error_on_mean) < 0.2
    assert sky.meta['blank_scatter_ratio'] == pytest.approx(1.0, abs=0.02)
    assert 'blank_scatter_note' not in sky.meta


def test_mosaic_blank_means_correlated_not_raised():
    # a drizzled mosaic's blank means scatter 2.7 times the white noise's
    # variance about the map (its pixels correlate): taken for a miss, the
    # level's error was raised 1.9 times (level pulls std 0.67); the
    # banded halves of each mesh measure that noise
    data = drizzled_mosaic(np.random.default_rng(5), (300, 300),
                           n_exposures=4, scale=2.0, pixfrac=0.7,
                           n_stars=0)
    sky = _map(data)
    assert sky.meta['map_miss_raised'] is None
    assert sky.meta['map_miss_noise_factor'] > 2.0
    resid = data - np.asarray(sky.value)
    blank = np.ones(data.shape, dtype=bool)
    white = resid + np.random.default_rng(1).normal(0.0, 30.0, data.shape)
    assert blank_mean_noise_factor(white, blank, np.full(data.shape, 30.0),
                                   (32, 32)) < 1.3


def test_rms_against_blank_scatter():
    # an rms 0.8 of the pixels' noise: warned, the rms kept and the ratio
    # recorded; the right rms: quiet
    rng = np.random.default_rng(2)
    data = rng.normal(0.0, 5.0, (256, 256))
    level = np.zeros(data.shape)
    blank = np.ones(data.shape, dtype=bool)
    meta = {}
    with pytest.warns(AstropyUserWarning, match=r'scatter 1\.2.* uses the rms'):
        check_rms_against_blank(data, level, np.full(data.shape, 4.0),
                                blank, (32, 32), meta)
    assert meta['blank_scatter_ratio'] == pytest.approx(1.25, abs=0.03)
    assert meta['blank_scatter_ratio_error'] < 0.02
    meta = {}
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        check_rms_against_blank(data, level, np.full(data.shape, 5.0),
                                blank, (32, 32), meta)
    assert meta['blank_scatter_ratio'] == pytest.approx(1.0, abs=0.02)
    assert 'blank_scatter_note' not in meta
