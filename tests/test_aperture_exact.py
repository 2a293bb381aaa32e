"""Exact overlaps of rotated boxes against an independent rational-arithmetic
polygon clipping, continuity with the axis-aligned path, exact sums through
photutils."""

import math
from fractions import Fraction

import astropy.units as u
import numpy as np
import pytest
from photutils.aperture import ApertureStats, aperture_photometry

from ccdphot_ext import BoxAperture, SkyEstimate, measure, photometer
from ccdphot_ext.aperture.overlap import rectangle_overlap
from ccdphot_ext.aperture.utils import aperture_weights


def _clip(poly, p, q):
    """Clip ``poly`` to the left of the directed line p -> q (exact)."""
    def side(v):
        return (q[0] - p[0]) * (v[1] - p[1]) - (q[1] - p[1]) * (v[0] - p[0])

    out = []
    for i, end in enumerate(poly):
        start = poly[i - 1]
        fs, fe = side(start), side(end)
        if fe >= 0:
            if fs < 0:
                t = fs / (fs - fe)
                out.append((start[0] + t * (end[0] - start[0]),
                            start[1] + t * (end[1] - start[1])))
            out.append(end)
        elif fs >= 0:
            t = fs / (fs - fe)
            out.append((start[0] + t * (end[0] - start[0]),
                        start[1] + t * (end[1] - start[1])))
    return out


def _area(poly):
    return sum(poly[i - 1][0] * poly[i][1] - poly[i][0] * poly[i - 1][1]
               for i in range(len(poly))) / 2


def reference_weights(x, y, w, h, theta, x0, x1, y0, y1):
    """
    Exact (rational) area of each pixel [y0:y1, x0:x1] inside the rotated
    rectangle: each pixel square is clipped by the rectangle's four edges
    in Fraction arithmetic, one pixel at a time.
    """
    c, s = math.cos(theta), math.sin(theta)
    a, b = w / 2, h / 2
    local = [(a, b), (-a, b), (-a, -b), (a, -b)]
    rect = [(Fraction(x + u * c - v * s), Fraction(y + u * s + v * c))
            for u, v in local]
    out = np.zeros((y1 - y0, x1 - x0))
    for j in range(y0, y1):
        for i in range(x0, x1):
            lo_x, lo_y = Fraction(2 * i - 1, 2), Fraction(2 * j - 1, 2)
            poly = [(lo_x, lo_y), (lo_x + 1, lo_y), (lo_x + 1, lo_y + 1),
                    (lo_x, lo_y + 1)]
            for k in range(4):
                poly = _clip(poly, rect[k - 1], rect[k])
                if not poly:
                    break
            out[j - y0, i - x0] = float(_area(poly)) if poly else 0.0
    return out


CASES = [((20.3, 19.6), 6.0, 3.0, np.pi / 6),
         ((12.0, 12.0), 4.0, 4.0, np.pi / 4),
         ((15.55, 14.05), 7.3, 1.2, -2.2),
         ((10.2, 11.9), 0.7, 0.4, 1.0),
         ((13.0, 12.5), 9.0, 5.0, 3 * np.pi / 2 + 0.05),
         ((12.49, 12.51), 2.0, 2.0, 1e-7)]


@pytest.mark.parametrize('position, w, h, theta', CASES)
def test_rotated_weights_match_exact_clipping(position, w, h, theta):
    box = BoxAperture(position, w, h, theta=theta)
    mask = box.to_mask(method='exact')
    b = mask.bbox
    ref = reference_weights(*position, w, h, theta, b.ixmin, b.ixmax,
                            b.iymin, b.iymax)
    np.testing.assert_allclose(mask.data, ref, rtol=0, atol=1e-12)
    assert mask.data.sum() == pytest.approx(w * h, rel=1e-12)
    # pixels wholly inside weigh exactly 1, wholly outside exactly 0
    assert np.all(mask.data[ref == 1.0] == 1.0)
    assert np.all(mask.data[ref == 0.0] == 0.0)


def test_random_rotated_boxes_match_exact_clipping():
    rng = np.random.default_rng(12)
    worst = 0.0
    for _ in range(12):
        x, y = rng.uniform(8, 9, 2)
        w, h = rng.uniform(0.3, 6, 2)
        theta = rng.uniform(-np.pi, np.pi)
        mask = BoxAperture((x, y), w, h, theta=theta).to_mask()
        b = mask.bbox
        ref = reference_weights(x, y, w, h, theta, b.ixmin, b.ixmax,
                                b.iymin, b.iymax)
        worst = max(worst, np.abs(mask.data - ref).max())
    assert worst < 1e-12


@pytest.mark.parametrize('base', [0.0, np.pi / 2, np.pi, -np.pi / 2])
def test_no_jump_between_axis_aligned_and_rotated(base):
    frame = (30, 30)
    aligned = BoxAperture((14.3, 15.8), 5.7, 3.3, theta=base)
    assert aligned.is_axis_aligned
    slc, w0, _ = aperture_weights(aligned, frame)
    for eps in (5e-13, -5e-13, 2e-12, -3e-12, 1e-10):
        box = BoxAperture((14.3, 15.8), 5.7, 3.3, theta=base + eps)
        assert box.is_axis_aligned == (abs(eps) <= 1e-12)
        s, w, _ = aperture_weights(box, frame)
        full = np.zeros(frame)
        full[s] = w
        ref = np.zeros(frame)
        ref[slc] = w0
        # the change is of the order of the rotation times the box size
        assert np.abs(full - ref).max() <= 10 * abs(eps) + 1e-15
        assert w.sum() == pytest.approx(5.7 * 3.3, rel=1e-13)


def test_overlap_function_axis_aligned_matches_rotated_limit():
    aligned = rectangle_overlap(-3.2, -2.7, 7, 6, 4.3, 3.1, 0.0)
    nearly = rectangle_overlap(-3.2, -2.7, 7, 6, 4.3, 3.1, 1e-11)
    np.testing.assert_allclose(aligned, nearly, atol=1e-9)
    assert aligned.sum() == pytest.approx(4.3 * 3.1, rel=1e-14)


def test_uniform_image_sums_are_the_area_through_photutils():
    data = np.ones((60, 60))
    boxes = BoxAperture([(20.3, 31.7), (29.5, 29.5), (40.1, 18.8)], 7.3,
                        4.6, theta=0.37)
    exact = aperture_photometry(data, boxes, method='exact')
    np.testing.assert_allclose(exact['aperture_sum'], 7.3 * 4.6, rtol=1e-13)
    stats = ApertureStats(data, boxes, sum_method='exact')
    np.testing.assert_allclose(stats.sum, 7.3 * 4.6, rtol=1e-13)
    # photutils' own rectangle: the 32 x 32 sub-pixel approximation
    approx = aperture_photometry(data, boxes.aperture, method='exact')
    assert np.abs(approx['aperture_sum'] / (7.3 * 4.6) - 1).max() > 1e-7


def test_rotated_measure_and_photometer_sums_equal_numpy(rng):
    img = rng.normal(100.0, 5.0, (60, 70))
    box = BoxAperture([(20.3, 30.1), (40.7, 22.2)], 8, 6, theta=0.4)
    sky = SkyEstimate(0.0, 5.0, 5000)
    table = photometer(img, box, sky)
    for i in range(2):
        mask = box[i].to_mask(method='exact')
        expected = np.sum(mask.multiply(img))
        assert table['aperture_sum'][i] == pytest.approx(expected, rel=1e-12)
        res = measure(img, box[i], sky)
        assert res.flux == pytest.approx(expected, rel=1e-12)
        assert res.n_pix == pytest.approx(48.0, rel=1e-12)


def test_rotated_box_truncation():
    box = BoxAperture((1.0, 10.0), 6, 2, theta=30 * u.deg)
    _, w, trunc = aperture_weights(box, (20, 20))
    assert trunc and w.sum() < 12.0
    # a corner of the box just inside the frame's first pixel column
    corner = BoxAperture((2.7, 10.0), 6, 2, theta=30 * u.deg)
    assert corner.bbox.ixmin == 0
    slc, w, trunc = aperture_weights(corner, (20, 20))
    assert not trunc and slc[1].start == 0
    assert w.sum() == pytest.approx(12.0, rel=1e-13)
