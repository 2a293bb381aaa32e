# Licensed under a 3-clause BSD style license - see LICENSE
"""A Background2D map made with the frame, measured again without the light
of the stars the photometry measures (`SkyEstimate.without_apertures`)."""

import warnings

import numpy as np
import pytest
from photutils.aperture import CircularAperture
from photutils.background import Background2D

from ccdphot_ext import SkyEstimate, photometer
from ccdphot_ext.background.maps import frame_background2d
from ccdphot_ext.datasets.sample import render_stars
from ccdphot_ext.flags import FLAG_RESIDUAL_BACKGROUND

N = 384
SKY = 300.0
NOISE = 18.0


def _grid(rng):
    g = np.arange(24, N - 20, 32.0)
    x, y = (a.ravel() + rng.uniform(-0.5, 0.5, a.size)
            for a in np.meshgrid(g, g))
    return x, y


def _map(img, box=48):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return SkyEstimate.from_background2d(
            frame_background2d(img, box_size=box)[0], data=img)


@pytest.fixture(scope='module')
def faint_pair():
    """121 stars of 300 ADU, too faint for the source mask, on a 32 px
    grid, and the same noise without them."""
    rng = np.random.default_rng(7)
    x, y = _grid(rng)
    noise = rng.normal(0.0, NOISE, (N, N))
    stars = render_stars((N, N), x, y, np.full(x.size, 300.0), sigma=1.2)
    return x, y, SKY + stars + noise, SKY + noise


def test_listed_faint_stars_leave_the_map(faint_pair):
    """Each frame's map less the star-free frame's, at the apertures: the
    stars' light lifts it by 0.2 ADU (about 0.6 of its error, 0.1 of each
    flux's error), and measured again without the apertures the map is
    that of the frame without them."""
    x, y, img, blank = faint_pair
    ap = CircularAperture(np.c_[x, y], 4.0)
    iy, ix = np.rint(y).astype(int), np.rint(x).astype(int)
    sky, clean = _map(img), _map(blank)
    again, clean_again = (s.without_apertures(d, ap)
                          for s, d in ((sky, img), (clean, blank)))
    assert again is not sky
    before = float(np.mean(sky.value[iy, ix] - clean.value[iy, ix]))
    after = float(np.mean(again.value[iy, ix] - clean_again.value[iy, ix]))
    assert before > 0.12
    assert abs(after) < 0.03
    # the light taken away, over the discs' pixels the meshes used
    assert 0.12 < again.meta['aperture_lift'] < 0.25
    assert again.meta['n_aperture_pixels'] > 100 * 100
    assert 'measured again without the 121' in again.meta['aperture_note']
    # the meshes lost a tenth of their pixels to the discs: a larger error
    ratio = np.median(again.error_on_mean / sky.error_on_mean)
    assert 1.02 < ratio < 1.12
    assert np.all(np.isfinite(again.value))
    assert np.all(np.isfinite(again.error_on_mean))
    # measured again with the same apertures: nothing left to take out
    assert again.without_apertures(img, ap) is again


def test_photometer_uses_the_map_without_apertures(faint_pair):
    x, y, img, _ = faint_pair
    ap = CircularAperture(np.c_[x, y], 4.0)
    sky = _map(img)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        kept = photometer(img, ap, sky, sky_without_apertures=False)
        table = photometer(img, ap, sky)
    shift = np.asarray(table['aperture_sum']) - np.asarray(
        kept['aperture_sum'])
    # about the stars' light per pixel times the aperture's area
    assert 4.0 < np.median(shift) < 12.0
    assert table.meta['sky_aperture_lift'] > 0.1
    assert any('Background2D sky was measured again' in n
               for n in table.meta['notes'])
    assert not np.any(np.asarray(table['flags']) & FLAG_RESIDUAL_BACKGROUND)


def test_bright_stars_masked_already():
    """Stars the source mask covers leave the map as it is."""
    rng = np.random.default_rng(8)
    x, y = _grid(rng)
    img = (SKY + render_stars((N, N), x, y, np.full(x.size, 2e4), sigma=1.2)
           + rng.normal(0.0, NOISE, (N, N)))
    sky = _map(img)
    assert sky.without_apertures(img, CircularAperture(np.c_[x, y], 4.0)) \
        is sky


def test_map_without_data_or_other_frame_unchanged(faint_pair):
    x, y, img, blank = faint_pair
    ap = CircularAperture(np.c_[x, y], 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        bare = SkyEstimate.from_background2d(Background2D(img, 48))
    assert bare.without_apertures(img, ap) is bare
    sky = _map(img)
    assert sky.without_apertures(blank, ap) is sky  # another frame


def test_apertures_covering_every_mesh_pixel():
    rng = np.random.default_rng(9)
    img = rng.normal(SKY, NOISE, (96, 96))
    sky = _map(img, box=32)
    g = np.arange(4.0, 96.0, 8.0)
    gx, gy = np.meshgrid(g, g)
    kept = sky.without_apertures(
        img, CircularAperture(np.c_[gx.ravel(), gy.ravel()], 6.0))
    assert "Background2D map's meshes" in kept.meta['aperture_light_kept']
    assert np.array_equal(kept.value, sky.value)
