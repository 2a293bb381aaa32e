# Licensed under a 3-clause BSD style license - see LICENSE
"""The compiled exact-overlap kernel of circles against its numpy
reference (weights and whole photometry tables, to 1e-12), SEP's
``sum_circle(subpix=0)`` and photutils' exact method."""

import math
import warnings

import numpy as np
import pytest
import sep
from astropy.utils.exceptions import AstropyUserWarning
from numpy.testing import assert_allclose, assert_array_equal
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    EllipticalAperture,
    aperture_photometry,
)

from ccdphot_ext import DetectorParameters, SkyEstimate, photometer
from ccdphot_ext.aperture import _exact, circular
from ccdphot_ext.aperture.circular import EllipseShape

SHAPE = (120, 150)
RADII = (0.5, 0.8, 1.0, 1.7, 2.5, 3.3, 5.0, 7.25, 11.9, 20.0)


def _numpy_reference(monkeypatch):
    monkeypatch.setattr(circular, 'COMPILED', False)


def _centres(rng, n, lo, hi_x, hi_y):
    x, y = rng.uniform(lo, hi_x, n), rng.uniform(lo, hi_y, n)
    x[::4] = np.round(x[::4] * 2) / 2  # on pixel centres and edges
    y[1::4] = np.round(y[1::4] * 2) / 2
    return x, y


@pytest.mark.parametrize('r', RADII)
def test_weights_equal_numpy_reference(r, monkeypatch):
    rng = np.random.default_rng(int(r * 100))
    x, y = _centres(rng, 300, 0.0, 50.0, 50.0)
    shape = EllipseShape((r, r, 0.0))
    compiled = shape.weights(x, y)
    _numpy_reference(monkeypatch)
    reference = shape.weights(x, y)
    assert reference.shape == compiled.shape
    # each pixel's area to a few units in the last place
    assert_allclose(compiled, reference, rtol=0, atol=4e-15)
    # wholly inside is exactly 1 and wholly outside exactly 0, as numpy's
    assert_array_equal(compiled == 1.0, reference == 1.0)
    assert_array_equal(compiled == 0.0, reference == 0.0)
    assert_allclose(compiled.sum(axis=(1, 2)), math.pi * r * r, rtol=1e-13)


def test_segment_series_equals_exact_rational_series():
    """Half of ``angle - sin(angle)`` from the tangent of the half-angle,
    against its series summed in exact rational arithmetic (40 terms,
    from the same double ``t``): within 4e-16 relative (a few roundings);
    at the threshold too, where the fourteen terms are cut."""
    from fractions import Fraction

    from ccdphot_ext.aperture.quadrant import SERIES_TANGENT, segment_series

    t = np.concatenate([np.random.default_rng(15).uniform(0, SERIES_TANGENT,
                                                          100),
                        [1e-9, 1e-3, np.nextafter(SERIES_TANGENT, 0)]])
    ours = segment_series(t)
    for value, got in zip(t, ours, strict=True):
        x = Fraction(float(value))
        exact = sum(Fraction((-1) ** (n + 1) * 2 * n, 2 * n + 1)
                    * x ** (2 * n + 1) for n in range(1, 41))
        assert abs(Fraction(float(got)) - exact) <= 4e-16 * exact
    # and against angle - sin(angle) in floating point where that has no
    # cancellation to speak of
    angle = 2 * np.arctan(t[t > 0.05])
    assert_allclose(2 * segment_series(t[t > 0.05]),
                    angle - np.sin(angle), rtol=1e-13)


@pytest.mark.parametrize('r', [3.0, 3.3, 5.0, 7.25, 20.0])
def test_weights_equal_numpy_reference_bit_for_bit(r, monkeypatch):
    """From r = 3 on, every boundary pixel's arc is short enough for the
    series (products, sums, quotients and square roots only): the kernel's
    weights are the numpy reference's to the last bit."""
    rng = np.random.default_rng(int(r * 100) + 1)
    x, y = _centres(rng, 300, 0.0, 50.0, 50.0)
    shape = EllipseShape((r, r, 0.0))
    compiled = shape.weights(x, y)
    _numpy_reference(monkeypatch)
    assert_array_equal(compiled, shape.weights(x, y))


def _frame(rng, dtype=np.float64):
    img = rng.normal(200.0, 5.0, SHAPE)
    img[rng.integers(0, SHAPE[0], 30), rng.integers(0, SHAPE[1], 30)] = np.nan
    img[rng.integers(0, SHAPE[0], 2), rng.integers(0, SHAPE[1], 2)] = np.inf
    img[rng.integers(0, SHAPE[0], 25), rng.integers(0, SHAPE[1], 25)] = 6e4
    return img.astype(dtype)


def _tables(monkeypatch, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        compiled = photometer(*args, **kwargs)
        with monkeypatch.context() as m:
            m.setattr(circular, 'COMPILED', False)
            reference = photometer(*args, **kwargs)
    return compiled, reference


def _assert_close(a, b):
    assert a.colnames == b.colnames
    for name in a.colnames:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.dtype.kind == 'f':
            assert_array_equal(np.isfinite(x), np.isfinite(y), err_msg=name)
            assert_allclose(x, y, rtol=1e-12, atol=0, equal_nan=True,
                            err_msg=name)
        else:
            assert_array_equal(x, y, err_msg=name)


@pytest.mark.parametrize('dtype', [np.float64, np.float32, '>f8', np.int32])
def test_photometry_equals_numpy_reference(dtype, monkeypatch):
    """Thousands of circles of radii 0.5 to 20 (and circular annuli), at
    sub-pixel positions, many running off the frame, on NaN, inf and
    saturated pixels: every column of the table to 1e-12 and every flag.
    The frame's type chooses the kernel (float32, float64) or numpy (the
    others) for the sums."""
    rng = np.random.default_rng(11)
    img = _frame(rng, dtype if dtype != np.int32 else np.float64)
    if dtype == np.int32:
        img = np.nan_to_num(img, posinf=6e4).astype(np.int32)
    apertures = []
    for r in RADII:
        x, y = _centres(rng, 250, -r, SHAPE[1] + r, SHAPE[0] + r)
        apertures.append(CircularAperture(np.column_stack([x, y]), r))
    apertures.append(CircularAnnulus(np.column_stack([x, y])[:100], 3.2, 8.9))
    n = sum(len(a) for a in apertures)
    compiled, reference = _tables(
        monkeypatch, img, apertures, SkyEstimate(200.0, 5.0, 10 ** 4),
        gain=2.0, detector=DetectorParameters(saturation=3e4))
    _assert_close(compiled, reference)
    assert len(compiled) == n
    flags = np.bitwise_or.reduce(np.asarray(compiled['flags']))
    # truncated, bad pixels (NaN, inf: not in integers), saturated, flux <= 0
    assert flags & 15 == (13 if dtype == np.int32 else 15)
    assert np.isfinite(compiled['aperture_sum']).sum() > n // 2


def test_photometry_with_mask_uncertainty_and_annuli(monkeypatch):
    """The general route (mask, uncertainty map, per-position sky) and
    circular annuli use the compiled weights: the same to 1e-12."""
    rng = np.random.default_rng(12)
    img = _frame(rng)
    x, y = _centres(rng, 400, -6, SHAPE[1] + 6, SHAPE[0] + 6)
    xy = np.column_stack([x, y])
    apertures = [CircularAperture(xy, 4.4), CircularAnnulus(xy, 2.5, 6.3)]
    sky = SkyEstimate(rng.normal(200, 1, 800), rng.uniform(4, 6, 800),
                      np.full(800, 300))
    compiled, reference = _tables(
        monkeypatch, img, apertures, sky, gain=2.0,
        detector=DetectorParameters(saturation=3e4),
        mask=rng.random(SHAPE) < 0.02,
        uncertainty=rng.uniform(4.0, 6.0, SHAPE))
    _assert_close(compiled, reference)


def test_strided_frame_equals_contiguous():
    """A non-contiguous view of a frame gives the numbers of its copy."""
    rng = np.random.default_rng(13)
    big = rng.normal(200.0, 5.0, (SHAPE[0], 2 * SHAPE[1])).astype(np.float32)
    view = big[:, ::2]
    xy = np.column_stack(_centres(rng, 300, 6, SHAPE[1] - 6, SHAPE[0] - 6))
    args = (CircularAperture(xy, 5.0), SkyEstimate(200.0, 5.0, 10 ** 4))
    a = photometer(view, *args, gain=2.0)
    b = photometer(np.ascontiguousarray(view), *args, gain=2.0)
    for name in ('aperture_sum', 'aperture_sum_err', 'n_pix', 'flags'):
        assert_array_equal(np.asarray(a[name]), np.asarray(b[name]))


@pytest.mark.parametrize('r', RADII)
def test_sums_equal_sep_and_photutils(r):
    """Without sky: SEP's ``sum_circle(subpix=0)`` and photutils' exact
    sums (independent closed forms) on circles wholly on a float32 frame
    (SEP sums float32 pixels): equal to rounding."""
    rng = np.random.default_rng(int(r * 10))
    img = rng.normal(200.0, 5.0, SHAPE).astype(np.float32)
    x, y = _centres(rng, 400, r + 1, SHAPE[1] - r - 1, SHAPE[0] - r - 1)
    aperture = CircularAperture(np.column_stack([x, y]), r)
    ours = np.asarray(photometer(img, aperture, SkyEstimate(0.0, 1.0, 10 ** 4),
                                 gain=2.0)['aperture_sum'])
    theirs, _, sep_flags = sep.sum_circle(img, x, y, r, subpix=0)
    assert not sep_flags.any()
    assert_allclose(ours, theirs, rtol=1e-13)
    photutils_sums = aperture_photometry(img, aperture, method='exact')
    assert_allclose(ours, np.asarray(photutils_sums['aperture_sum']),
                    rtol=1e-13)
    # n_pix is the circle's area
    n_pix = photometer(np.ones(SHAPE), aperture, SkyEstimate(0.0, 1.0, 10 ** 4),
                       gain=2.0)['n_pix']
    assert_allclose(np.asarray(n_pix), math.pi * r * r, rtol=1e-13)


def test_engine_sums_circles_in_the_kernel(monkeypatch):
    """Whole windows of circles and circular annuli on a float frame are
    summed by the kernel (once per call, for all of them); with the numpy
    reference selected, or an ellipse, it is not called."""
    from ccdphot_ext.photometry import ellipseengine

    calls = []

    def spy(*args):
        calls.append(len(args[3]))
        return _exact.circle_sums(*args)

    monkeypatch.setattr(ellipseengine, 'circle_sums', spy)
    rng = np.random.default_rng(14)
    img = rng.normal(200.0, 5.0, SHAPE).astype(np.float32)
    xy = np.column_stack(_centres(rng, 50, 12, SHAPE[1] - 12, SHAPE[0] - 12))
    sky = SkyEstimate(200.0, 5.0, 10 ** 4)
    photometer(img, CircularAperture(xy, 5.0), sky, gain=2.0)
    photometer(img, CircularAnnulus(xy, 3.0, 6.0), sky, gain=2.0)
    assert calls == [50, 50]
    photometer(img, EllipticalAperture(xy, 5.0, 3.0), sky, gain=2.0)
    with monkeypatch.context() as m:
        m.setattr(circular, 'COMPILED', False)
        photometer(img, CircularAperture(xy, 5.0), sky, gain=2.0)
    assert calls == [50, 50]


def test_kernel_checks_its_arguments():
    data = np.zeros((20, 20))
    one = (np.array([2]), np.array([2]), np.array([3.0]), np.array([3.0]),
           np.array([0.0]), 7, 7, False, 0.0)
    sums, hot = _exact.circle_sums(data, 3.0, 0.0, *one)
    assert_allclose(sums[1], math.pi * 9.0, rtol=1e-14)
    assert not hot[0]
    with pytest.raises(ValueError, match='wholly on the frame'):
        _exact.circle_sums(data, 3.0, 0.0, np.array([15]), *one[1:])
    with pytest.raises(TypeError, match='float32 or float64'):
        _exact.circle_sums(data.astype(np.int16), 3.0, 0.0, *one)
    with pytest.raises(ValueError, match='one length'):
        _exact.circle_sums(data, 3.0, 0.0, np.array([2, 3]), *one[1:])
    with pytest.raises(ValueError, match='positive'):
        _exact.circle_weights(3.0, np.array([3.0]), np.array([3.0]), 0, 7)
