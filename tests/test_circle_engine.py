# Licensed under a 3-clause BSD style license - see LICENSE
"""The vectorised engine for circles, ellipses and annuli against the
per-aperture engine: every column, bit for bit."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from numpy.testing import assert_allclose, assert_array_equal
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    EllipticalAnnulus,
    EllipticalAperture,
    aperture_photometry,
)

from ccdphot_ext import (
    BoxAperture,
    BudgetOptions,
    DetectorParameters,
    SkyEstimate,
    photometer,
)

SHAPE = (90, 110)


def _frame(rng, *, nan=40, hot=30):
    img = rng.normal(100.0, 5.0, SHAPE)
    img[rng.integers(0, SHAPE[0], nan), rng.integers(0, SHAPE[1], nan)] = np.nan
    img[rng.integers(0, SHAPE[0], 3), rng.integers(0, SHAPE[1], 3)] = np.inf
    img[rng.integers(0, SHAPE[0], hot), rng.integers(0, SHAPE[1], hot)] = 5e4
    return img


def _apertures(rng, n=300):
    xy = np.column_stack([rng.uniform(-8, SHAPE[1] + 8, n),
                          rng.uniform(-8, SHAPE[0] + 8, n)])
    xy[::7] = np.round(xy[::7] * 2) / 2  # on pixel edges and corners
    return [CircularAperture(xy, 4.3), CircularAperture(xy[:40], 0.3),
            EllipticalAperture(xy[:80], 6.1, 2.4, theta=0.7),
            CircularAnnulus(xy[:60], 3.0, 7.5),
            EllipticalAnnulus(xy[:50], 2.0, 6.0, 4.0, theta=-1.2)]


def _assert_same(a, b):
    assert a.colnames == b.colnames
    for name in a.colnames:
        if name == 'id':
            continue
        assert_array_equal(np.asarray(a[name]), np.asarray(b[name]),
                           err_msg=name)


def _both(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        fast = photometer(*args, engine='ellipse', **kwargs)
        slow = photometer(*args, engine='general', **kwargs)
    return fast, slow


def test_bit_for_bit_plain_frame():
    """NaN, inf, saturated pixels, edge and off-frame apertures, one sky
    level: every column equal; every flag bit the engine sets is seen."""
    rng = np.random.default_rng(5)
    img = _frame(rng)
    fast, slow = _both(img, _apertures(rng), SkyEstimate(100.0, 5.0, 10 ** 4),
                       gain=2.0, detector=DetectorParameters(saturation=3e4))
    _assert_same(fast, slow)
    flags = np.bitwise_or.reduce(np.asarray(fast['flags']))
    assert flags & 15 == 15  # truncated, bad pixels, saturated, flux <= 0
    assert np.isnan(fast['aperture_sum']).any()  # off the frame
    assert fast.meta['engine'] == 'ellipse'


@pytest.mark.parametrize('fractional_variance', ['squared', 'linear'])
def test_bit_for_bit_mask_uncertainty_and_per_aperture_sky(
        fractional_variance):
    rng = np.random.default_rng(6)
    img = _frame(rng)
    aps = _apertures(rng, 120)
    n = sum(len(a) for a in aps)
    sky = SkyEstimate(rng.normal(100, 1, n), rng.uniform(4, 6, n),
                      np.full(n, 400))
    mask = rng.random(SHAPE) < 0.02
    sigma = rng.uniform(4.0, 6.0, SHAPE).astype(np.float32)
    fast, slow = _both(img, aps, sky, gain=2.0,
                       detector=DetectorParameters(saturation=3e4),
                       budget=BudgetOptions(
                           fractional_variance=fractional_variance),
                       mask=mask, uncertainty=sigma)
    _assert_same(fast, slow)


def test_bit_for_bit_sky_map_float32():
    rng = np.random.default_rng(7)
    img = _frame(rng).astype(np.float32)
    level = 100 + np.linspace(0, 3, SHAPE[1])[None, :] * np.ones(SHAPE)
    sky = SkyEstimate.from_maps(level, np.full(SHAPE, 5.0), error_on_mean=0.1)
    fast, slow = _both(img, _apertures(rng, 100), sky, gain=2.0,
                       detector=DetectorParameters(saturation=3e4))
    _assert_same(fast, slow)
    assert np.all(np.isfinite(fast['sky'][np.isfinite(fast['aperture_sum'])]))


def test_sums_equal_numpy_and_photutils():
    """On a clean frame: photutils' exact aperture sums, and plain numpy over
    the weights, to 1e-10."""
    rng = np.random.default_rng(8)
    img = rng.normal(100.0, 5.0, SHAPE)
    xy = np.column_stack([rng.uniform(10, 100, 50), rng.uniform(10, 80, 50)])
    for ap in (CircularAperture(xy, 5.5),
               EllipticalAperture(xy, 5.0, 3.0, theta=0.3),
               CircularAnnulus(xy, 2.0, 6.0)):
        t = photometer(img, ap, SkyEstimate(0.0, 5.0, 10 ** 6))
        ref = aperture_photometry(img, ap, method='exact')['aperture_sum']
        assert_allclose(np.asarray(t['aperture_sum']), np.asarray(ref),
                        rtol=1e-10)
        assert_allclose(np.asarray(t['n_pix']), ap.area, rtol=1e-12)


def test_engine_choice():
    img = np.ones((30, 30))
    sky = SkyEstimate(0.0, 1.0, 100)
    circle = CircularAperture((15, 15), 3.0)
    assert photometer(img, circle, sky).meta['engine'] == 'auto'
    with pytest.raises(ValueError, match="engine='ellipse'"):
        photometer(img, BoxAperture((15, 15), 3, 3), sky, engine='ellipse')
    with pytest.raises(ValueError, match="engine='ellipse'"):
        photometer(img, circle, sky, engine='ellipse', sum_method='center')
    with pytest.raises(ValueError, match="engine='box'"):
        photometer(img, circle, sky, engine='box')
    # other methods fall back to the per-aperture engine under 'auto'
    t = photometer(img, circle, sky, sum_method='center')
    assert t['n_pix'][0] == 25.0  # pixel centres within 3 px


def test_peak_memory_is_a_small_part_of_the_frame():
    """No full-frame temporaries, chunks that scale with the frame: 3,000
    circles on a 1024**2 frame peak below a third of it (tracemalloc)."""
    import tracemalloc

    rng = np.random.default_rng(9)
    img = rng.normal(100.0, 5.0, (1024, 1024))
    ap = CircularAperture(rng.uniform(-5, 1030, (3000, 2)), 7.5)
    sky = SkyEstimate(100.0, 5.0, 10 ** 4)
    photometer(img, ap, sky, gain=2.0)  # warm-up
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        t = photometer(img, ap, sky, gain=2.0)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert len(t) == 3000
    assert peak < 0.3 * img.nbytes  # measured 0.21
