"""A whole-frame level on a tilted sky is measured about the frame's trend:
its level, scatter, error and coarse map, and the level measured again
without the apertures, are those of the same noise on a flat sky."""

import warnings

import numpy as np
import pytest
from photutils.aperture import CircularAperture

from ccdphot_ext import SkyEstimate


def _frames(seed, n=160, tilt=(0.2, 0.05)):
    """The same Gaussian noise (sigma 10) on a flat sky of 100 and on that
    sky tilted by ``tilt`` (per pixel in x, y), and the tilt's mean."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    plane = tilt[0] * xx + tilt[1] * yy
    flat = rng.normal(100.0, 10.0, (n, n))
    return flat, flat + plane, float(plane.mean())


def _grid(n, spacing=12.0, r=4.0, seed=0):
    """Circles of radius ``r`` on a grid ``spacing`` px apart (they and
    their grown discs cover ~85% of the frame, leaving its top and right
    edges and the gaps between the discs)."""
    rng = np.random.default_rng(seed)
    g = np.arange(r, n - r, spacing)
    gx, gy = np.meshgrid(g, g)
    pos = np.column_stack([gx.ravel(), gy.ravel()])
    return CircularAperture(pos + rng.uniform(-1, 1, pos.shape), r)


def test_flat_frame_has_no_trend():
    """A flat frame is measured as before: no trend, no meta entries."""
    flat = _frames(1)[0]
    sky = SkyEstimate.from_image(flat)
    assert sky._trend is None
    assert 'trend_variance' not in sky.meta
    assert 'std_with_trend' not in sky.meta


@pytest.mark.parametrize('seed', [2, 3])
def test_tilted_level_and_scatter_are_the_flat_frames(seed):
    """The tilt (51 ADU across the frame against a noise of 10) made the
    scatter 1.4 times the noise, the level's error and the coarse map's
    error with it (their pulls spread 0.53-0.65 on Poisson frames tilted
    so); measured about the frame's trend, the level less the tilt's mean
    is the flat frame's to a tenth of its error, and the scatter and
    error are the flat frame's to 1%."""
    flat, tilted, shift = _frames(seed)
    a = SkyEstimate.from_image(flat)
    b = SkyEstimate.from_image(tilted)
    assert b._trend is not None
    assert b.meta['std_with_trend'] > 1.3 * b.std
    assert b.std == pytest.approx(a.std, rel=0.01)
    assert b.error_on_mean == pytest.approx(a.error_on_mean, rel=0.01)
    assert abs(b.value - shift - a.value) < 0.1 * a.error_on_mean
    # the coarse map's error, scaled by the scatter: the flat frame's
    x = np.array([10.0, 80.0, 150.0])
    y = np.array([150.0, 80.0, 10.0])
    err = b.background_variation.error(b.std, x, y)
    assert np.allclose(err, a.background_variation.error(a.std, x, y),
                       rtol=0.05)


def test_poisson_tilted_level_pulls():
    """Poisson sky of 100 e- tilted by 0.2 and 0.05 e- per pixel (gain
    1): over 8 frames the level's pulls against the mean true sky of its
    pixels have a mean within 0.6 (3 standard errors) and a spread within
    0.6-1.4 (before: a spread of the error's 1.4-fold overstatement:
    std/noise 1.68 on 256 x 256)."""
    rng = np.random.default_rng(7)
    n = 128
    yy, xx = np.mgrid[:n, :n]
    true = 100.0 + 0.2 * xx + 0.05 * yy
    pulls, ratio = [], []
    for _ in range(8):
        sky = SkyEstimate.from_image(rng.poisson(true).astype(float),
                                     gain=1.0)
        pulls.append((sky.value - true.mean()) / sky.error_on_mean)
        ratio.append(sky.std / np.sqrt(true.mean()))
    assert abs(np.mean(pulls)) < 0.6
    assert 0.6 < np.std(pulls) < 1.4
    assert np.allclose(ratio, 1.0, atol=0.03)


def test_without_apertures_on_a_tilted_frame_is_the_flat_frames():
    """Circles on a grid that leave the level the frame's top and right
    edges: measured again without them, the tilted frame's level (less
    the tilt's mean) is the flat frame's to a tenth of its error (before:
    the coarse map's mean over those edges, extrapolated, moved it by
    0.03-0.06 ADU per 0.05 ADU per pixel of tilt, a level pull of -0.6 on
    Poisson frames)."""
    flat, tilted, shift = _frames(4, n=192, tilt=(0.3, 0.1))
    ap = _grid(192)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        a = SkyEstimate.from_image(flat)
        b = SkyEstimate.from_image(tilted)
        a2 = a.without_apertures(flat, ap)
        b2 = b.without_apertures(tilted, ap)
    assert a2 is not a and b2 is not b
    assert 'aperture_gradient_shift' not in b2.meta
    assert b2.meta['n_aperture_pixels'] > 0.8 * tilted.size
    assert b2._trend is b._trend
    assert b2.std == pytest.approx(a2.std, rel=0.02)
    assert abs(b2.value - shift - a2.value) < 0.1 * a2.error_on_mean


def test_trend_needs_significance():
    """A trend within the noise of a small frame is not taken out."""
    flat = _frames(5, n=40, tilt=(0.0, 0.0))[0]
    sky = SkyEstimate.from_image(flat)
    assert sky._trend is None
    flat, tilted, _ = _frames(5, n=40, tilt=(0.5, 0.0))
    assert SkyEstimate.from_image(tilted)._trend is not None
