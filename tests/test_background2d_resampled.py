"""A Background2D map of a resampled frame (a drizzled mosaic, whose
neighbouring pixels share their input pixels' noise).

On a sloped sky the map's std is the pixels' noise measured beside the
slope from differences of pixels along rows: neighbours' differences are
narrower than the noise there, so the pixels are taken as far apart as the
noise is correlated. The map measured again without the apertures' pixels
grows the meshes' noise, not the interpolation error of the meshes
photutils excluded (on a mosaic, large: its meshes wander beyond their
white error)."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.background import Background2D
from test_noise_map_route import map_scatter
from test_noise_real import drizzled_mosaic

from ccdphot_ext import BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.maps import mesh_pixel_noise
from ccdphot_ext.background.noise import _blank_corners


def _tilted(data, amplitude):
    """``data`` plus a plane rising by ``amplitude`` across it."""
    ny, nx = data.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    return data + amplitude * (xx / nx + 0.5 * yy / ny)


def _map(data, box_size=32):
    with warnings.catch_warnings():  # excluded meshes, interpolation
        warnings.simplefilter('ignore', AstropyUserWarning)
        return SkyEstimate.from_background2d(Background2D(data, box_size),
                                             data=data)


@pytest.mark.parametrize('seed, scale, pixfrac, blank', [
    (5, 2.0, 0.7, True), (6, 2.2, 1.0, False)])
def test_sloped_mosaic_std(seed, scale, pixfrac, blank):
    # output pixels 0.5 / 0.45 of the input's: neighbours' differences
    # read 0.4-0.6 of the noise, and the map's std was taken down to it
    # (0.38-0.72 of the pixels' scatter on 6 of 24 such mosaics)
    flat = drizzled_mosaic(np.random.default_rng(seed), (300, 300),
                           n_exposures=4, scale=scale, pixfrac=pixfrac,
                           n_stars=0)
    data = _tilted(flat, 40.0)
    noise = np.std(flat[5:-5, 5:-5])
    sky = _map(data)
    assert 'slope_offset' in sky.meta
    assert sky.meta['pixel_noise_lag'] >= 2
    assert np.median(sky.std) / noise == pytest.approx(1.0, abs=0.05)
    bkg = Background2D(data, 32)
    assert np.nanmedian(mesh_pixel_noise(bkg, data, lag=1)) < 0.8 * noise
    assert np.nanmedian(mesh_pixel_noise(bkg, data)) == pytest.approx(
        noise, rel=0.05)
    with pytest.raises(ValueError, match='lag'):
        mesh_pixel_noise(bkg, data, lag=1.5)
    if not blank:
        return
    # the ApertureNoise model against that map: blank sums as predicted
    _, model, out = map_scatter(data, 32, sky=sky)
    assert model.correlated
    assert abs(model.meta['map_std_ratio'] - 1.0) < 0.1
    for side, ratio in out.items():
        assert 0.85 < ratio < 1.2, (side, out)


def test_sloped_white_frame():
    # white noise: neighbours' differences are the noise, kept (lag 1), and
    # blank sums without noise= scatter as their errors say
    rng = np.random.default_rng(11)
    truth = _tilted(np.full((300, 300), 500.0), 60.0)
    data = truth + rng.normal(0.0, 10.0, truth.shape)
    sky = _map(data)
    assert 'slope_offset' in sky.meta
    assert 'pixel_noise_lag' not in sky.meta
    assert np.median(sky.std) == pytest.approx(10.0, rel=0.03)
    for side in (3, 7, 11):
        y0, x0 = _blank_corners(np.zeros(data.shape, dtype=bool), side, 400,
                                np.random.default_rng(side))
        centres = np.column_stack([x0, y0]) + (side - 1) / 2.0
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            t = photometer(data, BoxAperture(centres, side, side), sky)
        pulls = np.asarray(t['aperture_sum']) / np.asarray(
            t['aperture_sum_err'])
        assert np.std(pulls) == pytest.approx(1.0, abs=0.08), side
        assert abs(np.mean(pulls)) < 0.15, side


@pytest.mark.parametrize('seed', [4, 1])
def test_mosaic_without_apertures(seed):
    # 600 blank 11 px boxes leave the map's meshes few of their pixels:
    # the interpolation error of the 31-35 meshes photutils excluded grew
    # with the meshes' noise, and the level's error read 1.8 times its
    # scatter (blank sums 0.78 / 0.81 of their predicted errors, flags 0)
    data = drizzled_mosaic(np.random.default_rng(seed), scale=1.7,
                           pixfrac=1.0)
    sky, _, out = map_scatter(data, 32)
    assert sky.meta['n_excluded_meshes'] > 20
    assert 0.85 < out[11] < 1.2, out
