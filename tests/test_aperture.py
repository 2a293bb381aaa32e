"""BoxAperture: slices, photutils agreement, exact fractional overlap."""

import astropy.units as u
import numpy as np
import pytest
from photutils.aperture import (
    ApertureStats,
    CircularAperture,
    PixelAperture,
    RectangularAperture,
    aperture_photometry,
)

from ccdphot_ext import BoxAperture
from ccdphot_ext.aperture.utils import aperture_weights


def test_from_slices_geometry():
    box = BoxAperture.from_slices(np.s_[158:178, 492:512])
    assert box.isscalar
    np.testing.assert_array_equal(box.positions, [501.5, 167.5])
    assert (box.width, box.height, box.n_pix) == (20.0, 20.0, 400.0)
    assert (box.w, box.h, box.area) == (20.0, 20.0, 400.0)
    assert box.is_pixel_aligned
    assert isinstance(box, PixelAperture)
    assert isinstance(box.aperture, RectangularAperture)
    assert box.aperture.w == 20 and box.aperture.h == 20


@pytest.mark.parametrize('slices', [np.s_[158:178, 492:512],
                                    np.s_[0:7, 3:4], np.s_[220:250, 460:500]])
def test_from_slices_covers_exactly_the_slice(rng, slices):
    data = rng.normal(size=(300, 600))
    box = BoxAperture.from_slices(slices)
    np.testing.assert_array_equal(box.cutout(data), data[slices])
    slc, w, trunc = aperture_weights(box, data.shape)
    assert slc == slices
    assert not trunc
    assert np.all(w == 1.0)
    # photutils 'center' sees exactly the same pixels
    phot = aperture_photometry(data, box.aperture, method='center')
    assert phot['aperture_sum'][0] == pytest.approx(data[slices].sum(),
                                                    rel=1e-12)


def test_fractional_box_matches_analytic_overlap():
    box = BoxAperture((10.3, 7.8), 4.5, 3.2)
    slc, w, trunc = aperture_weights(box, (20, 30))
    assert not trunc
    assert w.sum() == pytest.approx(4.5 * 3.2, rel=1e-14)
    # column weights: box spans x 8.05 .. 12.55
    xs = np.arange(slc[1].start, slc[1].stop)
    expected = np.clip(np.minimum(12.55, xs + 0.5) - np.maximum(8.05, xs - 0.5),
                       0, 1)
    np.testing.assert_allclose(w.sum(axis=0) / 3.2, expected, rtol=1e-12)


def _brute_force_box_sum(data, x, y, width, height, n=200):
    """Sample every pixel n x n times: an independent overlap estimate."""
    sub = (np.arange(n) + 0.5) / n - 0.5
    total = 0.0
    for yy in range(data.shape[0]):
        fy = np.mean(np.abs(yy + sub - y) <= height / 2)
        if fy == 0:
            continue
        for xx in range(data.shape[1]):
            fx = np.mean(np.abs(xx + sub - x) <= width / 2)
            total += fx * fy * data[yy, xx]
    return total


def test_fractional_box_agrees_with_photutils_exact(rng):
    data = rng.uniform(0, 10, (40, 40))
    box = BoxAperture([(12.3, 17.6), (20.1, 20.9)], 5.7, 4.1)
    for i in range(2):
        slc, w, _ = aperture_weights(box, data.shape, index=i)
        ours = np.sum(w * data[slc])
        x, y = box.positions[i]
        # 200 x 200 samples per pixel resolve the edges to 1/400 pixel
        assert ours == pytest.approx(
            _brute_force_box_sum(data, x, y, 5.7, 4.1), rel=1e-12)
        ref = aperture_photometry(data, box[i].aperture,
                                  method='exact')['aperture_sum'][0]
        # photutils' "exact" rectangles are a 32x32 sub-pixel approximation
        assert ours == pytest.approx(ref, rel=5e-3)


def test_rotated_box_is_exact():
    box = BoxAperture((20, 20), 6, 3, theta=30 * u.deg)
    assert not box.is_axis_aligned
    assert box.theta == 30 * u.deg  # kept as given, as photutils
    assert box.theta.to_value(u.rad) == pytest.approx(np.pi / 6, rel=1e-15)
    slc, w, trunc = aperture_weights(box, (40, 40))
    assert not trunc
    assert w.sum() == pytest.approx(18.0, rel=1e-13)
    # photutils' 32 x 32 sub-pixel weights are close, not equal
    ref = box.aperture.to_mask(method='exact').data
    assert np.abs(w - ref).max() > 1e-6
    np.testing.assert_allclose(w, ref, atol=0.02)


def test_ninety_degrees_swaps_sides():
    box = BoxAperture((20, 20), 6, 2, theta=np.pi / 2)
    assert box.is_axis_aligned
    slc, w, _ = aperture_weights(box, (40, 40))
    # x spans 19 .. 21 (three columns, half pixels at the ends), y 17 .. 23
    assert w.shape == (7, 3)
    np.testing.assert_allclose(w.sum(axis=0), [3.0, 6.0, 3.0])
    assert w.sum() == pytest.approx(12.0)


def test_truncated_at_edge():
    box = BoxAperture.from_slices(np.s_[0:5, 0:5])
    inside = BoxAperture((2.0, 2.0), 5, 5)
    assert not aperture_weights(inside, (10, 10))[2]
    over = BoxAperture((0.0, 2.0), 5, 5)  # spans x -2.5 .. 2.5
    slc, w, trunc = aperture_weights(over, (10, 10))
    assert trunc and w.shape == (5, 3)
    assert not aperture_weights(box, (10, 10))[2]
    off = BoxAperture((-20.0, -20.0), 5, 5)
    assert aperture_weights(off, (10, 10))[0] is None


def test_multi_position():
    box = BoxAperture(np.array([[5.0, 5.0], [10.0, 12.0]]), 3, 3)
    assert len(box) == 2
    assert not box.isscalar
    assert box[1].positions.tolist() == [10.0, 12.0]
    assert box[1].isscalar
    cut = box.cutout(np.arange(400.0).reshape(20, 20))
    assert len(cut) == 2 and cut[1].shape == (3, 3)


def test_circle_weights_via_photutils(rng):
    data = rng.uniform(size=(30, 30))
    ap = CircularAperture((14.2, 15.7), r=4)
    slc, w, _ = aperture_weights(ap, data.shape)
    ref = ApertureStats(data, ap, sum_method='exact').sum
    assert np.sum(w * data[slc]) == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize('slices, exc, match', [
    (np.s_[178:158, 492:512], ValueError, 'reversed'),
    (np.s_[158:158, 492:512], ValueError, 'empty'),
    (np.s_[158:178:2, 492:512], ValueError, 'step'),
    (np.s_[-5:10, 0:3], ValueError, 'negative'),
    (np.s_[:10, 0:3], ValueError, 'explicit'),
    (np.s_[1.5:10, 0:3], TypeError, 'integers'),
    (np.s_[0:10], TypeError, 'slices'),
    ((slice(0, 3), 5), TypeError, 'slice'),
])
def test_bad_slices(slices, exc, match):
    with pytest.raises(exc, match=match):
        BoxAperture.from_slices(slices)


@pytest.mark.parametrize('args, exc, match', [
    (((1, 2), 0, 3), ValueError, 'width'),
    (((1, 2), 3, -1), ValueError, 'height'),
    (((1, 2), np.nan, 3), ValueError, 'width'),
    (((1, 2), 'a', 3), TypeError, 'width'),
    (((1, 2, 3), 3, 3), ValueError, 'position'),
    (((np.nan, 2), 3, 3), ValueError, 'position'),
    ((('a', 'b'), 3, 3), TypeError, 'position'),
])
def test_bad_constructor_arguments(args, exc, match):
    with pytest.raises(exc, match=match):
        BoxAperture(*args)


def test_bad_theta():
    with pytest.raises(u.UnitsError, match='theta'):
        BoxAperture((1, 1), 2, 2, theta=3 * u.m)
    with pytest.raises(TypeError, match='theta'):
        BoxAperture((1, 1), 2, 2, theta='north')
