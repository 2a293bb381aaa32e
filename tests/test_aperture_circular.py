# Licensed under a 3-clause BSD style license - see LICENSE
"""Closed-form exact overlaps of circles, ellipses and annuli with pixels."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    EllipticalAnnulus,
    EllipticalAperture,
    RectangularAperture,
)

from ccdphot_ext.aperture.circular import (
    EllipseShape,
    ellipse_overlap,
    exact_shape,
)
from ccdphot_ext.aperture.utils import aperture_weights

SHAPE = (48, 52)


def _ours(aperture, shape=SHAPE):
    slc, w, truncated = aperture_weights(aperture, shape)
    image = np.zeros(shape)
    if slc is not None:
        image[slc] = w
    return image, truncated


def _photutils(aperture, shape=SHAPE):
    image = aperture.to_mask(method='exact').to_image(shape)
    return np.zeros(shape) if image is None else image


def _random_apertures(rng, n):
    for i in range(n):
        r = [rng.uniform(0.02, 0.5), rng.uniform(0.5, 3.0),
             rng.uniform(3.0, 30.0)][i % 3]
        xy = rng.uniform(-6, 58, 2)
        if i % 4 == 1:  # centres on pixel edges and corners
            xy = np.round(xy * 2) / 2
        elif i % 4 == 2:
            xy = np.round(xy)
        a, b = sorted(rng.uniform(0.1, 20.0, 2), reverse=True)
        theta = rng.uniform(-4, 4)
        yield CircularAperture(xy, r)
        yield EllipticalAperture(xy, a, b, theta=theta)
        yield CircularAnnulus(xy, r, r + rng.uniform(0.05, 8.0))
        yield EllipticalAnnulus(xy, a, a + rng.uniform(0.1, 5), b + 1.0,
                                theta=theta)


def test_matches_photutils_exact_masks():
    """Random centres and sizes (tiny to 30 px, on pixel edges and corners,
    off the frame's edges): photutils' exact masks to 1e-12."""
    rng = np.random.default_rng(42)
    for aperture in _random_apertures(rng, 150):
        ours, _ = _ours(aperture)
        assert_allclose(ours, _photutils(aperture), rtol=0, atol=1e-12,
                        err_msg=repr(aperture))


@pytest.mark.parametrize('r', [1e-3, 0.1, 0.49, 0.5, 0.51, 1.0, 5.0, 11.3])
@pytest.mark.parametrize('xy', [(15.0, 15.0), (15.5, 15.5), (15.5, 15.0),
                                (15.25, 14.75)])
def test_circle_area_and_centres_on_edges(r, xy):
    """Whole circles sum to pi r**2 to 1e-14; interior pixels weigh exactly
    1, and pixels a circle cannot reach exactly 0."""
    ours, truncated = _ours(CircularAperture(xy, r), (32, 32))
    assert not truncated
    assert_allclose(ours.sum(), math.pi * r * r, rtol=1e-14)
    assert_allclose(ours, _photutils(CircularAperture(xy, r), (32, 32)),
                    atol=1e-14, rtol=0)
    yy, xx = np.mgrid[:32, :32]
    far = np.hypot(np.abs(xx - xy[0]) + 0.5, np.abs(yy - xy[1]) + 0.5)
    near = np.hypot(np.maximum(np.abs(xx - xy[0]) - 0.5, 0),
                    np.maximum(np.abs(yy - xy[1]) - 0.5, 0))
    assert np.all(ours[far < r * (1 - 1e-9)] == 1.0)
    assert np.all(ours[near > r * (1 + 1e-9)] == 0.0)


@pytest.mark.parametrize('r', [300.0, 1000.0])
def test_huge_radii(r):
    """Large circles: the area to 1e-14; photutils (whose own rounding grows
    as r**2 near the tangent points) to 1e-17 r**2."""
    xy = (0.3, 0.17)
    shape = EllipseShape((r, r, 0.0))
    w = shape.weights(np.array([xy[0]]), np.array([xy[1]]))[0]
    assert_allclose(w.sum(), math.pi * r * r, rtol=1e-14)
    mask = CircularAperture(xy, r).to_mask(method='exact')
    x0, y0 = (int(c[0]) for c in shape.corners(np.array([xy[0]]),
                                                np.array([xy[1]])))
    theirs = np.zeros_like(w)
    bbox = mask.bbox
    theirs[bbox.iymin - y0:bbox.iymax - y0,
           bbox.ixmin - x0:bbox.ixmax - x0] = mask.data
    assert_allclose(w, theirs, atol=1e-17 * r * r, rtol=0)
    # inside 1 and outside 0 exactly
    assert np.count_nonzero((w > 0) & (w < 1)) < 8 * 2 * math.pi * r / 4


def test_ellipse_area_and_rotation():
    """An ellipse sums to pi a b; turned by 90 degrees it is the transpose
    (to rounding); with a == b it is the circle whatever theta."""
    w = ellipse_overlap(-10.3, -9.8, 21, 21, 7.5, 3.2, theta=0.7)
    assert_allclose(w.sum(), math.pi * 7.5 * 3.2, rtol=1e-14)
    w0 = ellipse_overlap(-10.5, -10.5, 21, 21, 7.5, 3.2)
    w90 = ellipse_overlap(-10.5, -10.5, 21, 21, 7.5, 3.2, theta=math.pi / 2)
    assert_allclose(w90, w0.T, atol=1e-13)
    circle = ellipse_overlap(-10.5, -10.5, 21, 21, 4.0, 4.0)
    assert_array_equal(ellipse_overlap(-10.5, -10.5, 21, 21, 4.0, 4.0,
                                       theta=1.1), circle)


def test_annulus_is_outer_minus_inner():
    xy = (20.37, 18.91)
    ring, _ = _ours(CircularAnnulus(xy, 4.2, 9.5))
    outer, _ = _ours(CircularAperture(xy, 9.5))
    inner, _ = _ours(CircularAperture(xy, 4.2))
    assert_allclose(ring, outer - inner, atol=1e-15)
    assert_allclose(ring.sum(), math.pi * (9.5 ** 2 - 4.2 ** 2), rtol=1e-14)


def test_many_centres_equal_one_at_a_time():
    """The vectorised call gives every centre the bits of a call for that
    centre alone (what makes the two engines agree bit for bit)."""
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 100, 300), rng.uniform(0, 100, 300)
    for shape in (EllipseShape((5.3, 5.3, 0.0)),
                  EllipseShape((6.1, 2.2, 0.4)),
                  EllipseShape((9.0, 9.0, 0.0), (4.5, 4.5, 0.0))):
        many = shape.weights(x, y)
        for i in range(0, 300, 37):
            assert_array_equal(many[i],
                               shape.weights(x[i:i + 1], y[i:i + 1])[0])


def test_edges_of_the_frame():
    """Apertures cut by the frame edge are truncated and keep the pixels on
    the frame; wholly off the frame there is nothing."""
    slc, w, truncated = aperture_weights(CircularAperture((0.0, 10.0), 3.0),
                                         (20, 20))
    assert truncated and slc == (slice(7, 14), slice(0, 4))
    # half the circle and the strip -0.5 < x < 0
    strip = 0.5 * (-0.5 * math.sqrt(8.75) + 9 * math.asin(-0.5 / 3))
    assert_allclose(w.sum(), 4.5 * math.pi - 2 * strip, rtol=1e-14)
    slc, w, truncated = aperture_weights(CircularAperture((-9.0, 5.0), 3.0),
                                         (20, 20))
    assert slc is None and w.size == 0 and truncated
    # a circle reaching exactly to the frame's edge is not truncated
    assert not aperture_weights(CircularAperture((2.5, 10.0), 3.0),
                                (20, 20))[2]


def test_other_methods_and_shapes_use_photutils():
    circle = CircularAperture((10.2, 9.7), 3.3)
    _, w, _ = aperture_weights(circle, (20, 20), sum_method='center')
    assert set(np.unique(w).tolist()) == {0.0, 1.0}
    assert exact_shape(RectangularAperture((1, 1), 2, 3)) is None
    assert exact_shape(circle).window == (8, 8)
