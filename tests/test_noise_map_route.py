"""Aperture noise against a Background2D map on drizzled mosaics: the
map's share of the blank sums taken out of the model is the ``sky_mean``
term the photometry adds back, at the factor correlated noise inflates
the map's level error by for its mesh estimator (Source Extractor's mode:
its excess over the mean stays white). The scatter of independent
blank-sky box sums against the map over the error ``photometer``
predicts with ``noise=`` must be 0.9-1.1 at 3, 7 and 11 pixels."""

import math
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.background import Background2D
from test_noise_real import drizzled_mosaic

from ccdphot_ext import ApertureNoise, BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.noise import (
    _blank_corners,
    _robust_std,
    _source_mask,
    estimator_level_scale,
    sky_level_scale,
)

SIDES = (3, 7, 11)


def map_scatter(data, box_size, sky=None):
    """The map sky, its noise model and, per box side, the robust scatter
    of blank box sums against the map over their predicted errors (boxes
    at random blank positions of another seed than the model's); ``sky``:
    the map of ``data`` at ``box_size`` already made."""
    with warnings.catch_warnings():  # excluded meshes, interpolation
        warnings.simplefilter('ignore', AstropyUserWarning)
        if sky is None:
            sky = SkyEstimate.from_background2d(
                Background2D(data, box_size), data=data)
        glob = SkyEstimate.from_image(data)
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    resid = data - glob.value
    bad = ~np.isfinite(resid)
    bad |= _source_mask(resid, glob.std, bad)
    rng = np.random.default_rng(99)
    out = {}
    for side in SIDES:
        y0, x0 = _blank_corners(bad, side, 600, rng)
        centres = np.column_stack([x0, y0]) + (side - 1) / 2.0
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            t = photometer(data, BoxAperture(centres, side, side), sky,
                           noise=noise)
        assert np.all(np.asarray(t['flags']) & ~8 == 0)
        pulls = np.asarray(t['aperture_sum']) / np.asarray(
            t['aperture_sum_err'])
        out[side] = _robust_std(pulls[np.isfinite(pulls)])
    return sky, noise, out


@pytest.mark.parametrize('scale, pixfrac, box_size', [
    (2.2, 0.7, 32), (2.0, 1.0, 32), (2.2, 0.7, 64)])
def test_drizzled_mosaic_map_route(scale, pixfrac, box_size):
    # output pixels 0.45 or 0.5 of the input's: before the map's share was
    # taken at the estimator's factor, the model's sky_mean term took the
    # plain mean's (1.9 to 2.6) and the 11 px sums scattered 0.75-0.87 of
    # their predicted errors, flags 0
    data = drizzled_mosaic(np.random.default_rng(5), (300, 300),
                           n_exposures=5, scale=scale, pixfrac=pixfrac)
    sky, noise, out = map_scatter(data, box_size)
    assert noise.route == 'map' and noise.correlated
    mean_scale = float(noise.level_scale(np.nanmedian(sky.n_pix)))
    assert mean_scale > 1.5
    factor = noise.meta['map_level_scale']
    assert 1.0 < factor < 0.8 * mean_scale
    assert factor == pytest.approx(
        estimator_level_scale(mean_scale, sky.efficiency), rel=0.1)
    assert sky_level_scale(noise, sky) == pytest.approx(factor, rel=0.1)
    # (the 0.5 / 1.0 mosaic's map std is 0.62 of its pixels' noise: warned)
    off = abs(noise.meta['map_std_ratio'] - 1.0) > 0.2
    assert ('map_std_note' in noise.meta) == off
    for side, ratio in out.items():
        assert 0.9 < ratio < 1.1, (side, out)


def test_white_noise_map_route():
    data = np.random.default_rng(4).normal(500.0, 10.0, (300, 300))
    sky, noise, out = map_scatter(data, 32)
    assert not noise.correlated
    assert noise.meta['map_level_scale'] == 1.0
    assert noise.meta['map_std_ratio'] == pytest.approx(1.0, abs=0.03)
    assert 'map_std_note' not in noise.meta
    for side, ratio in out.items():
        assert 0.92 < ratio < 1.08, (side, out)


def test_estimator_level_scale():
    # Source Extractor's mode, k = 2.1372: its excess over the mean is
    # 1 - 1 / k**2 of its white variance and stays white
    k = 2.1372
    assert estimator_level_scale(1.91, k) == pytest.approx(
        math.sqrt(1.0 + (1.91 ** 2 - 1.0) / k ** 2))
    assert estimator_level_scale(1.91, k) == pytest.approx(1.257, abs=1e-3)
    assert estimator_level_scale(1.91, 1.0) == pytest.approx(1.91)
    assert estimator_level_scale(1.0, k) == 1.0
    assert estimator_level_scale(0.9, k) == 0.9


def test_map_std_off_warns():
    # a map whose std is half the pixels' noise (as from_background2d
    # reads some drizzled mosaics whose meshes scatter beyond their white
    # error: 0.38-0.72 of it on 6 of 24): its level error is doubtful
    data = np.random.default_rng(6).normal(500.0, 10.0, (200, 200))
    sky = SkyEstimate.from_maps(np.full(data.shape, 500.0),
                                np.full(data.shape, 5.0), n_pix=32 * 32)
    with pytest.warns(AstropyUserWarning, match='blank pixels scatter 2'):
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    assert noise.meta['map_std_ratio'] == pytest.approx(2.0, abs=0.05)
    right = SkyEstimate.from_maps(np.full(data.shape, 500.0),
                                  np.full(data.shape, 10.0), n_pix=32 * 32)
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        noise = ApertureNoise.from_blank_apertures(data, right, seed=1)
    assert noise.meta['map_std_ratio'] == pytest.approx(1.0, abs=0.03)
