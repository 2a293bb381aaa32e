"""
photutils' own tests of `RectangularAperture`, ported to `BoxAperture`
(photutils 3.0: aperture/tests/test_rectangle.py, test_aperture_common.py,
test_photometry.py, test_stats.py), with the exact-flux checks photutils
skips for its sub-pixel rectangles switched on.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.tests.helper import assert_quantity_allclose
from numpy.testing import assert_allclose, assert_equal
from photutils.aperture import (
    ApertureStats,
    PixelAperture,
    RectangularAperture,
    SkyRectangularAperture,
    aperture_photometry,
)
from photutils.datasets import make_wcs

from ccdphot_ext import BoxAperture

POSITIONS = [(10, 20), (30, 40), (50, 60), (70, 80)]
RADII = (0.0, -1.0, -np.inf)


class TestBoxApertureCommon:
    """photutils' BaseTestAperture and TestRectangularAperture."""

    aperture = BoxAperture(POSITIONS, w=10.0, h=5.0, theta=np.pi / 2.0)
    index = 2
    slc = slice(0, 2)
    expected_slc_len = 2

    def test_is_a_photutils_pixel_aperture(self):
        assert isinstance(self.aperture, PixelAperture)
        assert isinstance(self.aperture, RectangularAperture)
        # same shape, other masks: not equal, from either side
        rect = RectangularAperture(POSITIONS, w=10.0, h=5.0,
                                   theta=np.pi / 2.0)
        assert rect != self.aperture and self.aperture != rect

    def test_to_region(self):
        from photutils.aperture import aperture_to_region, region_to_aperture

        regs = aperture_to_region(self.aperture)
        assert len(regs) == len(POSITIONS)
        back = region_to_aperture(regs[1])
        assert_allclose(back.positions, POSITIONS[1])
        assert (back.w, back.h) == (10.0, 5.0)

    def test_index(self):
        aper = self.aperture[self.index]
        assert isinstance(aper, self.aperture.__class__)
        assert aper.isscalar
        expected_positions = self.aperture.positions[self.index]
        for param in aper._params:
            if param == 'positions':
                assert_equal(getattr(aper, param), expected_positions)
            else:
                assert getattr(aper, param) == getattr(self.aperture, param)

    def test_slice(self):
        aper = self.aperture[self.slc]
        assert isinstance(aper, self.aperture.__class__)
        assert len(aper) == self.expected_slc_len
        expected_positions = self.aperture.positions[self.slc]
        for param in aper._params:
            if param == 'positions':
                assert_equal(getattr(aper, param), expected_positions)
            else:
                assert getattr(aper, param) == getattr(self.aperture, param)

    def test_iteration(self):
        items = list(self.aperture)
        assert len(items) == len(POSITIONS)
        assert all(ap.isscalar for ap in items)
        assert_equal([ap.positions for ap in items], POSITIONS)

    @staticmethod
    @pytest.mark.parametrize('radius', RADII)
    def test_invalid_params(radius):
        with pytest.raises(ValueError, match="'w' must be a positive scalar"):
            BoxAperture(POSITIONS, w=radius, h=5.0, theta=np.pi / 2.0)
        match = "'h' must be a positive scalar"
        with pytest.raises(ValueError, match=match):
            BoxAperture(POSITIONS, w=10.0, h=radius, theta=np.pi / 2.0)

    def test_copy_eq(self):
        aper = self.aperture.copy()
        assert aper == self.aperture
        aper.w = 20.0
        assert aper != self.aperture
        assert aper.width == 20.0 and aper.area == 100.0

    def test_theta(self):
        assert isinstance(self.aperture.theta, u.Quantity)
        assert self.aperture.theta.unit == u.rad

    def test_to_patch_nonscalar(self):
        patches = self.aperture._to_patch()
        assert isinstance(patches, list)
        assert len(patches) == len(POSITIONS)

    def test_repr_str(self):
        aper = BoxAperture((10, 20), w=5.0, h=3.0, theta=15.0)
        assert '<BoxAperture(' in repr(aper)
        assert 'Aperture: BoxAperture' in str(aper)


def test_theta_quantity():
    aper1 = BoxAperture(POSITIONS, w=10.0, h=5.0, theta=np.pi / 2.0)
    aper2 = BoxAperture(POSITIONS, w=10.0, h=5.0, theta=90 * u.deg)
    aper3 = BoxAperture(POSITIONS, w=10.0, h=5.0, theta=Angle(90 * u.deg))
    assert_quantity_allclose(aper1.theta, aper2.theta)
    assert_quantity_allclose(aper1.theta, aper3.theta)


def test_names_of_both_libraries():
    ours = BoxAperture(position=(3.0, 4.0), width=6.0, height=2.0)
    theirs = BoxAperture((3.0, 4.0), w=6.0, h=2.0)
    assert ours == theirs
    with pytest.raises(TypeError, match='not both'):
        BoxAperture((3.0, 4.0), w=6.0, width=6.0, h=2.0)
    with pytest.raises(TypeError, match='height'):
        BoxAperture((3.0, 4.0), 6.0)


@pytest.mark.parametrize('params', [{'w': 5, 'h': 8, 'theta': np.pi / 4},
                                    {'w': 5, 'h': 8, 'theta': 0.0},
                                    {'w': 5.5, 'h': 8.25, 'theta': 0.3}])
def test_outside_array(params):
    data = np.ones((10, 10), dtype=float)
    fluxtable = aperture_photometry(data, BoxAperture((-60, 60), **params))
    assert np.isnan(fluxtable['aperture_sum'])


@pytest.mark.parametrize('params', [{'w': 5, 'h': 8, 'theta': np.pi / 4},
                                    {'w': 5.3, 'h': 8.1, 'theta': 0.0},
                                    {'w': 5.3, 'h': 8.1, 'theta': -2.0}])
def test_inside_array_simple(params):
    data = np.ones((40, 40), dtype=float)
    aperture = BoxAperture((20.0, 20.0), **params)
    table1 = aperture_photometry(data, aperture, method='center',
                                 subpixels=10)
    table2 = aperture_photometry(data, aperture, method='subpixel',
                                 subpixels=10)
    table3 = aperture_photometry(data, aperture, method='exact',
                                 subpixels=10)
    if params['w'] == 5:  # photutils' own case
        assert table1['aperture_sum'] < table3['aperture_sum']
    # the check photutils skips for its rectangles, to 1e-12
    assert_allclose(table3['aperture_sum'], aperture.area, rtol=1e-12)
    # 'subpixel' is photutils' own sampling (10 x 10 here)
    assert_allclose(table2['aperture_sum'], table3['aperture_sum'],
                    rtol=0.02)


def test_aperture_plots():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    patches = BoxAperture((20.0, 20.0), w=5, h=8, theta=np.pi / 4).plot(ax=ax)
    assert len(patches) == 1
    plt.close(fig)


@pytest.mark.parametrize('positions, mask', [
    ((20.0, 20.0), None),
    (((20.0, 20.0), (21.5, 19.25)), None),
    ((20.0, 20.0), 'one'),
])
def test_array_error(positions, mask):
    """photutils' BaseTestAperturePhotometry on a rotated 8 x 5 box."""
    data = np.ones((40, 40), dtype=float)
    error = np.ones(data.shape, dtype=float)
    aperture = BoxAperture(positions, 8.0, 5.0, theta=np.pi / 4.0)
    area = 40.0
    if mask == 'one':
        mask = np.zeros(data.shape, dtype=bool)
        mask[20, 20] = True  # wholly inside the box
        area -= 1
    tables = [aperture_photometry(data, aperture, method=method, mask=mask,
                                  error=error, subpixels=12)
              for method in ('center', 'subpixel', 'exact')]
    center, subpixel, exact = tables
    assert_allclose(exact['aperture_sum'], area, rtol=1e-12)
    # photutils' own 12 x 12 sampling of the rectangle (photutils' test
    # skips this for rectangles: its 0.1 tolerance is too tight for them)
    assert_allclose(subpixel['aperture_sum'], exact['aperture_sum'],
                    atol=0.2)
    assert np.all(center['aperture_sum'] < exact['aperture_sum'])
    assert_allclose(exact['aperture_sum_err'], np.sqrt(area), rtol=1e-12)
    assert_allclose(subpixel['aperture_sum_err'], exact['aperture_sum_err'],
                    atol=0.1)
    assert np.all(center['aperture_sum_err'] < exact['aperture_sum_err'])


def test_rectangular_bbox():
    width, height = 7, 3
    a = BoxAperture((50, 50), w=width, h=height, theta=0)
    assert a.bbox.shape == (height, width)
    a = BoxAperture((50.5, 50.5), w=width, h=height, theta=0)
    assert a.bbox.shape == (height + 1, width + 1)
    a = BoxAperture((50, 50), w=width, h=height, theta=np.deg2rad(90.0))
    assert a.bbox.shape == (width, height)
    width, height = 8, 4
    a = BoxAperture((50, 50), w=width, h=height, theta=0)
    assert a.bbox.shape == (height + 1, width + 1)
    a = BoxAperture((50.5, 50.5), w=width, h=height, theta=0)
    assert a.bbox.shape == (height, width)
    a = BoxAperture((50.5, 50.5), w=width, h=height, theta=np.deg2rad(90.0))
    assert a.bbox.shape == (width, height)


def test_to_sky_pixel():
    wcs = make_wcs((100, 100))
    ap = BoxAperture(((12.3, 15.7), (48.19, 98.14)), w=3.14, h=5.32,
                     theta=np.deg2rad(103.0))
    sky = ap.to_sky(wcs)
    assert isinstance(sky, SkyRectangularAperture)
    ap2 = sky.to_pixel(wcs)
    assert_allclose(ap.positions, ap2.positions)
    assert_allclose(ap.w, ap2.w)
    assert_allclose(ap.h, ap2.h)
    assert_allclose(ap.theta, ap2.theta)


def test_region_matches_aperture():
    """photutils' TestRectangleRegionPhotometry, sums now exact."""
    from regions import PixCoord, RectanglePixelRegion

    data = np.ones((40, 40), dtype=float)
    error = np.ones(data.shape, dtype=float)
    theta = (np.pi / 4.0) * u.rad
    region = RectanglePixelRegion(PixCoord(20.0, 20.0), 8.0, 5.0, theta)
    aperture = BoxAperture((20.0, 20.0), 8.0, 5.0, theta=theta)
    for method in ('center', 'subpixel'):
        reg = aperture_photometry(data, region, method=method, subpixels=12,
                                  error=error)
        ap = aperture_photometry(data, aperture, method=method,
                                 subpixels=12, error=error)
        assert_allclose(reg['aperture_sum'], ap['aperture_sum'], rtol=1e-14)
        assert_allclose(reg['aperture_sum_err'], ap['aperture_sum_err'],
                        rtol=1e-14)
    # the region's rectangle is photutils' 32 x 32 approximation
    reg = aperture_photometry(data, region, error=error)
    ap = aperture_photometry(data, aperture, error=error)
    assert_allclose(ap['aperture_sum'], 40.0, rtol=1e-12)
    assert_allclose(reg['aperture_sum'], ap['aperture_sum'], rtol=0.01)


def test_center_and_subpixel_are_photutils_own(rng):
    data = rng.uniform(0, 10, (50, 50))
    box = BoxAperture([(20.3, 21.7), (30.1, 28.8)], 7.3, 4.1, theta=0.7)
    rect = RectangularAperture(box.positions, 7.3, 4.1, theta=0.7)
    for method in ('center', 'subpixel'):
        ours = aperture_photometry(data, box, method=method, subpixels=7)
        theirs = aperture_photometry(data, rect, method=method, subpixels=7)
        assert_equal(ours['aperture_sum'], theirs['aperture_sum'])


class TestApertureStats:
    """photutils' ApertureStats tests that concern the aperture."""

    data = np.ones((50, 50))
    xypos = list(zip([10, 20, 33], [13, 25, 30], strict=True))
    aperture = BoxAperture(xypos, 10, 5, theta=30 * u.deg)

    def test_exact_sum_and_area(self):
        stats = ApertureStats(self.data, self.aperture, sum_method='exact')
        assert_allclose(stats.sum, 50.0, rtol=1e-12)
        assert_allclose(stats.sum_aper_area.value, 50.0, rtol=1e-12)
        assert_allclose(self.aperture.area_overlap(self.data), 50.0,
                        rtol=1e-12)

    def test_sum_method_photometry(self):
        error = np.ones(self.data.shape)
        for method in ('center', 'exact', 'subpixel'):
            stats = ApertureStats(self.data, self.aperture, error=error,
                                  sum_method=method, subpixels=4)
            apsum, apsum_err = self.aperture.do_photometry(
                self.data, error=error, method=method, subpixels=4)
            assert_allclose(stats.sum, apsum)
            assert_allclose(stats.sum_err, apsum_err)

    def test_aperture_metadata(self):
        tbl = ApertureStats(self.data, self.aperture).to_table()
        assert tbl.meta['aperture'] == 'BoxAperture'
        for param in self.aperture._params:
            if param != 'positions':
                assert (tbl.meta[f'aperture_{param}']
                        == getattr(self.aperture, param))

    def test_slicing(self):
        stats = ApertureStats(self.data, self.aperture)
        assert stats[1].n_apertures == 1
        for i, one in enumerate(stats):
            assert one.isscalar and one.id == i + 1


def test_sky_box_is_a_photutils_sky_aperture():
    from astropy.wcs import WCS
    from photutils.aperture import SkyAperture

    from ccdphot_ext import SkyBoxAperture

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    wcs.wcs.crval = [56.75, 24.12]
    wcs.wcs.crpix = [51.0, 51.0]
    wcs.wcs.cdelt = [-0.5 / 3600, 0.5 / 3600]
    centres = wcs.pixel_to_world([50.0, 30.0], [50.0, 60.0])
    sky_box = SkyBoxAperture(centres, 10 * u.arcsec, 5 * u.arcsec)
    assert isinstance(sky_box, SkyAperture)
    assert len(sky_box) == 2 and sky_box[1].isscalar
    assert sky_box.copy() == sky_box
    box = sky_box.to_pixel(wcs)
    assert isinstance(box, BoxAperture)
    assert_allclose(box.positions, [(50.0, 50.0), (30.0, 60.0)], atol=1e-9)
    data = np.ones((100, 100))
    table = aperture_photometry(data, sky_box, wcs=wcs)
    # 20 x 10 pixels; off the tangent point the projection turns the box
    # by ~1e-4 rad and stretches it by ~1e-9
    assert_allclose(table['aperture_sum'], 200.0, rtol=1e-8)
    assert_allclose(ApertureStats(data, sky_box, wcs=wcs).sum,
                    table['aperture_sum'], rtol=1e-12)
