"""Background2D maps given ``data=`` on a curved sky crowded by stars:
each mesh is read without its sources, their pixels replaced in place by
pixels drawn from the rest (`replaced_mesh_levels`), so that a mesh's
level rests on the pixels the source mask leaves it and its noise grows
by ``n_all / n_clean``. A seeded frame and its star-free twin (the same
noise; a fuller run is in docs/calibration.rst)."""

import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import SkyEstimate
from ccdphot_ext.background.maps import (
    BACKGROUND2D_EFFICIENCY,
    _sources_leaving_pixels,
    frame_background2d,
    replaced_mesh_levels,
)
from ccdphot_ext.datasets.sample import render_stars

N, SKY, DEPTH, N_STARS = 512, 1000.0, 0.05, 300


def _twins(rng):
    """A 512 x 512 frame on a sky of `SKY` e- (gain 1, 5 e- read noise)
    falling by `DEPTH` from its centre to the edge midpoints, with
    `N_STARS` stars of 1e3 to 1e5 e- (two thirds of it masked), and the
    same frame without them: both frames, the positions."""
    yy, xx = np.mgrid[:N, :N]
    sky = SKY * (1.0 - DEPTH * ((xx - (N - 1) / 2.0) ** 2
                                + (yy - (N - 1) / 2.0) ** 2) / (N / 2.0) ** 2)
    x = rng.uniform(15.0, N - 16.0, N_STARS)
    y = rng.uniform(15.0, N - 16.0, N_STARS)
    light = render_stars((N, N), x, y, 10 ** rng.uniform(3.0, 5.0, N_STARS),
                         sigma=1.6)
    blank = rng.poisson(sky) + rng.normal(0.0, 5.0, sky.shape)
    return blank + rng.poisson(light), blank, x, y


def _sky(data):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        return SkyEstimate.from_background2d(frame_background2d(data)[0],
                                             gain=1.0, data=data)


def test_meshes_read_without_sources_rest_on_the_pixels_left():
    """The meshes read without their sources scatter about their
    star-free twins by ``k_est rms sqrt(1 / n_clean - 1 / n_all)`` (64
    meshes about half masked: 1.03 of it), and the level's error at the
    stars grows with them: 1.20 times the star-free frame's (1.04 when
    the readings were taken to scatter as the meshes without stars, the
    level pulls at the stars of such frames spreading 1.15 to 1.2)."""
    data, blank, x, y = _twins(np.random.default_rng(1))
    sky, twin = _sky(data), _sky(blank)
    record = sky._map_sources
    meshes, usable = record.meshes, record.usable
    sources = _sources_leaving_pixels(record.sources, usable,
                                      data - record.level, meshes.box_size)
    read, _ = replaced_mesh_levels(meshes, data, record.level, usable,
                                   sources, record.rms)
    star_free, n_all = meshes.levels(blank, ~usable)
    n_clean = (usable & ~sources).reshape(8, 64, 8, 64).sum(axis=(1, 3))
    assert 0.3 < np.mean(n_clean / n_all) < 0.7  # the regime
    rms = meshes.estimate(meshes._boxes(blank, ~usable))[1]
    k_est = (BACKGROUND2D_EFFICIENCY['SExtractorBackground']
             * sky.meta['rms_clip_factor'])
    difference = read - star_free
    z = (difference - np.median(difference)) / (
        k_est * rms * np.sqrt(1.0 / n_clean - 1.0 / n_all))
    assert 0.85 < np.std(z) < 1.2
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    grown = (np.asarray(sky.error_on_mean)
             / np.asarray(twin.error_on_mean))[iy, ix]
    assert 1.12 < np.mean(grown) < 1.3  # 1.04 before
