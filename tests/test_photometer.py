"""photometer(): table contract and agreement with measure()."""

import astropy.units as u
import numpy as np
import pytest
from expected_warnings import gradient_warning, sharp_pixel_warning
from photutils.aperture import CircularAperture

from ccdphot_ext import (
    FLAG_TRUNCATED,
    NOTEBOOK_BOXES,
    PHOTOMETRY_COLUMNS,
    BoxAperture,
    SigmaThreshold,
    SkyEstimate,
    measure,
    photometer,
)


def test_columns_units_and_meta(sample_ccd):
    sky = SkyEstimate.from_image(sample_ccd)
    boxes = [BoxAperture.from_slices(s) for s in NOTEBOOK_BOXES.values()]
    with gradient_warning():
        t = photometer(sample_ccd, boxes, sky)
    # the frame's gradient against its one level: each box's offset is a
    # term of its own, after var_sky_mean
    names = list(PHOTOMETRY_COLUMNS)
    names.insert(names.index('var_sky_mean') + 1, 'var_sky_offset')
    assert tuple(t.colnames) == tuple(names)
    assert np.all(t['var_sky_offset'] > 0 * u.adu ** 2)
    assert len(t) == 4
    assert t['aperture_sum'].unit == u.adu
    assert t['var_sky'].unit == u.adu ** 2
    assert t.meta['gain'] == 2.23 and t.meta['gain_source'] == 'EGAIN'
    assert t.meta['exptime'] == 30.0
    assert set(t.meta['versions']) >= {'ccdphot_ext', 'photutils', 'astropy'}
    ok = t['aperture_sum'] > 0 * u.adu
    np.testing.assert_allclose(
        t['mag'][ok], -2.5 * np.log10(t['aperture_sum'][ok].value / 30.0))


@pytest.mark.parametrize('threshold', [None, SigmaThreshold(2.0)])
def test_rows_equal_measure(sample_ccd, threshold):
    sky = SkyEstimate.from_image(sample_ccd)
    boxes = [BoxAperture.from_slices(s) for s in NOTEBOOK_BOXES.values()]
    with gradient_warning():
        t = photometer(sample_ccd, boxes, sky, threshold=threshold)
    for row, box in zip(t, boxes, strict=True):
        with gradient_warning():
            res = measure(sample_ccd, box, sky, threshold=threshold)
        assert row['aperture_sum'].value == res.flux
        assert row['aperture_sum_err'].value == res.flux_err
        assert row['n_pix'] == res.n_pix
        assert row['flags'] == res.flags
        assert row['var_sky_mean'].value == res.budget.terms['sky_mean']


def test_off_frame_row_is_flagged_not_raised(rng):
    img = rng.normal(10, 1, (30, 30))
    sky = SkyEstimate.from_image(img)
    t = photometer(img, BoxAperture([(15, 15), (-40, 5)], 5, 5), sky)
    assert t['flags'][1] & FLAG_TRUNCATED
    assert np.isnan(t['aperture_sum'][1]) and t['n_pix'][1] == 0
    assert np.isnan(t['mag'][1])


def test_circles_and_per_aperture_sky(rng):
    img = rng.normal(10, 1, (40, 40))
    aps = CircularAperture([(10, 10), (30, 30)], r=3)
    sky = SkyEstimate([9.0, 11.0], [1.0, 1.0], [100, 100])
    t = photometer(img, aps, sky)
    assert t['sky'].tolist() == [9.0, 11.0]
    with pytest.raises(ValueError, match='sky has 2 levels'):
        photometer(img, CircularAperture([(10, 10)] * 3, r=3), sky)


def test_bad_apertures():
    img = np.ones((10, 10))
    sky = SkyEstimate(1.0, 1.0, 100)
    with pytest.raises(TypeError, match='apertures'):
        photometer(img, [(1, 2)], sky)
    with pytest.raises(ValueError, match='apertures is empty'):
        photometer(img, [], sky)
    # a photutils aperture of no positions (a filtered catalog of none)
    none = CircularAperture(np.zeros((0, 2)), r=3)
    for apertures in (none, [none, none]):
        with pytest.raises(ValueError, match='apertures holds no positions'):
            photometer(img, apertures, sky)
    with pytest.raises(ValueError, match='takes one aperture position'):
        measure(img, none, sky)


# --------------------------------------------------------------------------
# The vectorised engine for axis-aligned boxes (ccdphot_ext.photometry.boxengine)
# --------------------------------------------------------------------------

import importlib  # noqa: E402
import tracemalloc  # noqa: E402
import warnings  # noqa: E402

from astropy.io import fits  # noqa: E402
from astropy.nddata import CCDData, StdDevUncertainty  # noqa: E402
from photutils.aperture import (  # noqa: E402
    RectangularAperture,
    aperture_photometry,
)
from photutils.segmentation import detect_sources  # noqa: E402

from ccdphot_ext import (  # noqa: E402
    FLAG_BAD_PIXELS,
    FLAG_EMPTY_THRESHOLD,
    FLAG_NO_SOURCE_TERM,
    FLAG_NONPOSITIVE_FLUX,
    FLAG_RESIDUAL_BACKGROUND,
    FLAG_SATURATED,
    BudgetOptions,
    DetectorParameters,
)
from ccdphot_ext.datasets.sample import render_stars  # noqa: E402

PHOT = importlib.import_module('ccdphot_ext.photometry.table')
SAT = 4000.0
#: The saturation level as photometer takes it.
SATURATED = DetectorParameters(saturation=SAT)


def _general(*args, **kwargs):
    """photometer with every aperture on the per-aperture engine."""
    return photometer(*args, engine='general', **kwargs)


def _assert_tables_equal(fast, slow):
    assert fast.colnames == slow.colnames
    for name in fast.colnames:
        a = np.asarray(getattr(fast[name], 'value', fast[name]))
        b = np.asarray(getattr(slow[name], 'value', slow[name]))
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.fixture(scope='module')
def star_field():
    """Stars, a faint patch, NaN, +-inf, masked and saturated pixels."""
    rng = np.random.default_rng(77)
    ny, nx = 96, 128
    x, y = rng.uniform(0, nx, 25), rng.uniform(0, ny, 25)
    img = rng.normal(100.0, 5.0, (ny, nx))
    img += render_stars((ny, nx), x, y, 10 ** rng.uniform(2.5, 4.5, 25))
    img[10:50, 20:70] += 8.0   # faint, extended: residual background (32)
    spots = rng.choice(img.size, 60, replace=False)
    img.flat[spots[:25]] = np.nan
    img.flat[spots[25:32]] = np.inf
    img.flat[spots[32:38]] = -np.inf
    img.flat[spots[38:50]] = SAT + 10.0
    img[40:43, 60:63] = SAT                    # exactly at the level
    mask = np.zeros(img.shape, dtype=bool)
    mask.flat[rng.choice(img.size, 40, replace=False)] = True
    unc = np.full(img.shape, 5.0) + rng.uniform(0, 1, img.shape)
    unc.flat[rng.choice(img.size, 15, replace=False)] = np.nan
    return img, mask, unc


def _random_boxes(rng, shape, n, aligned):
    ny, nx = shape
    if aligned:
        pos = np.column_stack([rng.integers(-12, nx + 12, n) + 0.5,
                               rng.integers(-12, ny + 12, n) + 0.5])
        return BoxAperture(pos, 8, 6)
    pos = np.column_stack([rng.uniform(-12, nx + 12, n),
                           rng.uniform(-12, ny + 12, n)])
    return BoxAperture(pos, 7.3, 5.6)


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('threshold', [None, SigmaThreshold(2.0)])
@pytest.mark.parametrize('extra', ['none', 'mask', 'map', 'map_total'])
@pytest.mark.parametrize('per_aperture_sky', [False, True])
def test_fast_path_equals_general_path(star_field, aligned, threshold, extra,
                                       per_aperture_sky):
    img, mask, unc = star_field
    rng = np.random.default_rng([aligned, ['none', 'mask', 'map',
                                           'map_total'].index(extra)])
    box = _random_boxes(rng, img.shape, 300, aligned)
    if per_aperture_sky:
        sky = SkyEstimate(rng.normal(100, 3, 300), rng.uniform(3, 6, 300),
                          rng.integers(50, 500, 300))
    else:
        sky = SkyEstimate(100.0, 5.0, 10000)
    kwargs = {'gain': 2.0, 'threshold': threshold, 'detector': SATURATED}
    kwargs.update({'none': {}, 'mask': {'mask': mask},
                   'map': {'uncertainty': unc},
                   'map_total': {'uncertainty': unc,
                                 'budget': BudgetOptions(
                                     uncertainty_model='total')}}[extra])
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # no RuntimeWarning storm either
        # the map's NaN pixels are announced once, as bad pixels
        warnings.filterwarnings('ignore', message='.*zero, NaN or inf sigma')
        fast = photometer(img, box, sky, **kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='.*zero, NaN or inf sigma')
        slow = _general(img, box, sky, **kwargs)
    _assert_tables_equal(fast, slow)
    # the random boxes do exercise every case
    flags = np.asarray(fast['flags'])
    seen = np.bitwise_or.reduce(flags)
    assert seen & FLAG_TRUNCATED and seen & FLAG_BAD_PIXELS
    assert seen & FLAG_SATURATED and seen & FLAG_NONPOSITIVE_FLUX
    assert np.isnan(fast['aperture_sum'][fast['n_pix'] == 0]).any()
    if threshold is not None:
        assert seen & FLAG_EMPTY_THRESHOLD
        assert seen & FLAG_RESIDUAL_BACKGROUND


@pytest.mark.parametrize('dtype', ['>f8', '<f4', '<i4'])
def test_fast_path_dtypes(star_field, dtype):
    img = np.nan_to_num(star_field[0], nan=0, posinf=0, neginf=0)
    img = img.astype(dtype)
    box = _random_boxes(np.random.default_rng(3), img.shape, 100, True)
    sky = SkyEstimate(100.0, 5.0, 1000)
    _assert_tables_equal(photometer(img, box, sky, detector=SATURATED),
                         _general(img, box, sky, detector=SATURATED))


def test_sums_equal_plain_numpy_on_the_same_pixels(star_field):
    """Sums, n_pix and flags against numpy slices (pixel-aligned boxes)."""
    img = star_field[0]
    ny, nx = img.shape
    rng = np.random.default_rng(11)
    y0 = rng.integers(-5, ny - 1, 400)
    x0 = rng.integers(-5, nx - 1, 400)
    h, w = 9, 11
    box = BoxAperture(np.column_stack([x0 + (w - 1) / 2, y0 + (h - 1) / 2]),
                      w, h)
    sky = SkyEstimate(99.0, 5.0, 5000)
    t = photometer(img, box, sky, detector=SATURATED)
    for row, a, b in zip(t, y0, x0, strict=True):
        cut = img[max(a, 0):a + h, max(b, 0):b + w]
        good = np.isfinite(cut)
        flux = np.sum(cut[good] - 99.0)
        flags = ((a < 0 or b < 0 or a + h > ny or b + w > nx)
                 * FLAG_TRUNCATED
                 | (not good.all()) * FLAG_BAD_PIXELS
                 | bool(np.any(cut[good] >= SAT)) * FLAG_SATURATED
                 | (flux <= 0) * FLAG_NONPOSITIVE_FLUX)
        assert row['n_pix'] == good.sum()
        assert row['flags'] & ~FLAG_NO_SOURCE_TERM == flags  # 2048: no gain
        assert row['aperture_sum'] == pytest.approx(flux, rel=1e-10)
        assert row['var_sky'] == pytest.approx(good.sum() * 25.0, rel=1e-14)


def test_non_integer_boxes_against_photutils(rng):
    """
    Exact separable overlaps vs photutils' rectangle masks: its 'exact'
    rectangle is a 32x32 sub-pixel approximation (a pixel crossed by an edge
    is off by up to 1/16), and 'subpixel' converges to our weights.
    """
    from ccdphot_ext.aperture.utils import aperture_weights
    img = rng.normal(100.0, 5.0, (60, 70))
    pos = np.column_stack([rng.uniform(12, 58, 12), rng.uniform(12, 48, 12)])
    box = BoxAperture(pos, 9.37, 6.81)
    t = photometer(img, box, SkyEstimate(0.0, 5.0, 5000))  # raw sums
    np.testing.assert_allclose(t['n_pix'], 9.37 * 6.81, rtol=1e-12)
    rect = RectangularAperture(pos, 9.37, 6.81)
    coarse = rect.to_mask(method='exact')
    fine = rect.to_mask(method='subpixel', subpixels=128)
    for i in range(len(pos)):
        slc, ours, _ = aperture_weights(box, img.shape, index=i)
        for mask, tol in ((coarse[i], 1 / 16), (fine[i], 1 / 64)):
            theirs = mask.to_image(img.shape)[slc]
            assert np.max(np.abs(ours - theirs)) <= tol
            assert np.sum(mask.to_image(img.shape)) == pytest.approx(
                np.sum(theirs))  # no photutils weight outside our cutout
        assert t['aperture_sum'][i] == pytest.approx(
            np.sum(ours * img[slc]), rel=1e-12)
    ref = aperture_photometry(img, rect, method='subpixel', subpixels=128)
    np.testing.assert_allclose(t['aperture_sum'], ref['aperture_sum'],
                               rtol=2e-3)


def test_pixel_aligned_boxes_against_photutils_center(rng):
    img = rng.normal(100.0, 5.0, (60, 70))
    pos = np.column_stack([rng.integers(5, 60, 40) + 0.5,
                           rng.integers(5, 50, 40) + 0.5])
    box = BoxAperture(pos, 8, 6)
    t = photometer(img, box, SkyEstimate(0.0, 5.0, 5000))
    rect = RectangularAperture(pos, 8, 6)
    for method in ('center', 'exact'):
        ref = aperture_photometry(img, rect, method=method)
        np.testing.assert_allclose(t['aperture_sum'], ref['aperture_sum'],
                                   rtol=1e-12)


def test_rotated_boxes_and_circles_use_photutils(rng):
    img = rng.normal(100.0, 5.0, (60, 70))
    pos = [(20.3, 30.1), (40.7, 22.2)]
    sky = SkyEstimate(0.0, 5.0, 5000)
    rotated = BoxAperture(pos, 8, 6, theta=0.4)
    t = photometer(img, rotated, sky, sum_method='exact')
    # the box's own exact overlaps through photutils' photometry
    ref = aperture_photometry(img, rotated, method='exact')
    np.testing.assert_allclose(t['aperture_sum'], ref['aperture_sum'],
                               rtol=1e-12)
    # photutils' rectangle approximates them with 32 x 32 sub-pixels
    approx = aperture_photometry(img, rotated.aperture, method='exact')
    np.testing.assert_allclose(t['aperture_sum'], approx['aperture_sum'],
                               rtol=1e-4)
    circles = CircularAperture(pos, r=4.0)
    t = photometer(img, circles, sky, sum_method='subpixel', subpixels=7)
    ref = aperture_photometry(img, circles, method='subpixel', subpixels=7)
    np.testing.assert_allclose(t['aperture_sum'], ref['aperture_sum'],
                               rtol=1e-12)
    assert t.meta['sum_method'] == 'subpixel' and t.meta['subpixels'] == 7


def test_mixed_list_keeps_order_and_per_aperture_sky(star_field):
    img = star_field[0]
    items = [BoxAperture([(20.5, 30.5), (50.5, 60.5)], 8, 8),
             CircularAperture([(70, 40)], r=3),
             BoxAperture((90.2, 20.7), 5.5, 7.25),
             BoxAperture([(30, 40), (60, 50)], 6, 4, theta=0.3)]
    sky = SkyEstimate([99.0, 100.0, 101.0, 98.0, 102.0, 100.5],
                      [5.0] * 6, [400] * 6)
    fast = photometer(img, items, sky, gain=1.5, detector=SATURATED)
    _assert_tables_equal(fast, _general(img, items, sky, gain=1.5,
                                        detector=SATURATED))
    assert fast['id'].tolist() == [1, 2, 3, 4, 5, 6]
    assert fast['sky'].tolist() == [99.0, 100.0, 101.0, 98.0, 102.0, 100.5]
    assert fast['x_center'].tolist() == [20.5, 50.5, 70.0, 90.2, 30.0, 60.0]


def test_threshold_all_is_a_strict_comparison(rng):
    """
    SigmaThreshold(segment='all') keeps exactly the valid pixels strictly
    above n_sigma * std: photutils' detect_sources with n_pixels=1 and the
    plain comparison the fast path uses agree.
    """
    for _ in range(20):
        cut = rng.normal(0.0, 5.0, (15, 17))
        cut[rng.random(cut.shape) < 0.05] = np.nan
        cut[3, 4] = 10.0  # exactly at 2 sigma: not selected
        valid = rng.random(cut.shape) > 0.1
        level = 2.0 * 5.0
        usable = valid & np.isfinite(cut)
        expected = usable & (np.where(usable, cut, 0.0) > level)
        segm = detect_sources(np.where(usable, cut, level), level,
                              n_pixels=1, mask=~usable)
        labels = np.zeros(cut.shape, int) if segm is None else segm.data
        np.testing.assert_array_equal(labels > 0, expected)
        got = SigmaThreshold(2.0, selection='pixel').select(cut, 5.0, valid=valid)
        np.testing.assert_array_equal(got, expected)


def test_flags_one_by_one():
    img = np.full((40, 50), 100.0)
    img[5:10, 5:10] += 50.0             # a faint star
    img[20, 22] = np.nan                 # bad pixel in box 2
    img[30, 32] = 60000.0                # saturated pixel in box 3
    hdr = fits.Header({'SATURATE': 50000.0})
    ccd = CCDData(img, unit='adu', meta=hdr)
    boxes = BoxAperture([(7, 7), (22, 20), (32, 30), (45, 7), (1, 1),
                         (200, 200)], 5, 5)
    sky = SkyEstimate(100.0, 1.0, 2000)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        t = photometer(ccd, boxes, sky)
    assert t.meta['saturation'] == 50000.0
    # no gain: the stars' missing photon noise could matter (2048; a sky
    # of 100 scattering 1 allows a gain down to 100 e-/ADU)
    assert t['flags'].tolist() == [
        FLAG_NO_SOURCE_TERM, FLAG_BAD_PIXELS | FLAG_NONPOSITIVE_FLUX,
        FLAG_SATURATED | FLAG_NO_SOURCE_TERM,
        FLAG_NONPOSITIVE_FLUX, FLAG_TRUNCATED | FLAG_NONPOSITIVE_FLUX,
        FLAG_TRUNCATED]
    assert t['n_pix'].tolist() == [25, 24, 25, 25, 16, 0]
    assert np.isnan(t['mag'][1]) and np.isnan(t['mag'][3])
    assert np.isfinite(t['mag'][0])
    # the threshold flags: nothing above 2 sigma in an empty box (16); a
    # ring below 2 sigma around the star is left out, and significant (32)
    img2 = img.copy()
    img2[4:11, 4:11] += 1.5
    img2[5:10, 5:10] -= 1.5
    t = photometer(img2, BoxAperture([(7, 7), (45, 7)], 7, 7), sky,
                   threshold=SigmaThreshold(2.0, selection='pixel'),
                   detector=DetectorParameters(saturation=50000.0))
    assert t['flags'].tolist() == [
        FLAG_RESIDUAL_BACKGROUND | FLAG_NO_SOURCE_TERM,
        FLAG_EMPTY_THRESHOLD | FLAG_NONPOSITIVE_FLUX]
    assert t['n_pix'].tolist() == [25, 0]
    assert t['aperture_sum'][0] == 25 * 50.0
    assert t['aperture_sum_err'][1] == 0


def test_input_frame_is_not_modified(star_field):
    img = star_field[0].copy()
    before = img.copy()
    box = _random_boxes(np.random.default_rng(5), img.shape, 200, True)
    photometer(img, box, SkyEstimate(100.0, 5.0, 1000),
               threshold=SigmaThreshold(2.0),
               detector=SATURATED)
    np.testing.assert_array_equal(img, before)


def test_peak_memory_is_small_and_nothing_is_cached(rng):
    img = rng.normal(1000.0, 10.0, (1024, 1024))
    img.flat[rng.choice(img.size, 200, replace=False)] = np.nan
    pos = np.column_stack([rng.integers(0, 1014, 3000) + 9.5,
                           rng.integers(0, 1014, 3000) + 9.5])
    box = BoxAperture(pos, 20, 20)
    sky = SkyEstimate(1000.0, 10.0, 10 ** 6)
    first = photometer(img, box, sky,
                       detector=DetectorParameters(saturation=2000.0))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        second = photometer(img, box, sky,
                            detector=DetectorParameters(saturation=2000.0))
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < img.nbytes / 2
    # a new frame gives new numbers: no result is reused across calls
    img[:] += 1.0
    third = photometer(img, box, sky,
                       detector=DetectorParameters(saturation=2000.0))
    _assert_tables_equal(first, second)
    finite = np.isfinite(first['aperture_sum'])
    np.testing.assert_allclose(third['aperture_sum'][finite],
                               first['aperture_sum'][finite]
                               + first['n_pix'][finite], rtol=1e-9)


def test_ccddata_units_uncertainty_and_header(sample_ccd):
    sky = SkyEstimate.from_image(sample_ccd)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    with gradient_warning():
        t = photometer(sample_ccd, box, sky)
    with gradient_warning():
        res = measure(sample_ccd, box, sky)
    assert t['aperture_sum'][0] == res.flux * u.adu
    assert t['var_sky'][0] == res.budget.terms['sky'] * u.adu ** 2
    assert t.meta['uncertainty_model'] == 'background'
    bare = CCDData(sample_ccd.data, unit='adu',
                   uncertainty=StdDevUncertainty(sample_ccd.uncertainty.array),
                   meta=sample_ccd.meta)
    with gradient_warning():
        _assert_tables_equal(photometer(bare, box, sky), t)


def test_sky_maps_go_through_the_per_aperture_engine(star_field):
    img = star_field[0]
    ny, nx = img.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = SkyEstimate.from_maps(100.0 + 0.02 * xx, np.full(img.shape, 5.0),
                                n_pix=400)
    box = _random_boxes(np.random.default_rng(8), img.shape, 40, True)
    assert not PHOT.box_engine_eligible(box, sky, None)
    t = photometer(img, box, sky, gain=2.0, detector=SATURATED)
    _assert_tables_equal(t, _general(img, box, sky, gain=2.0,
                                     detector=SATURATED))
    inside = np.flatnonzero(t['n_pix'] == 48)
    k = inside[0]
    res = measure(img, box[k], sky, gain=2.0,
                  detector=SATURATED)
    assert t['aperture_sum'][k] == res.flux
    assert t['aperture_sum_err'][k] == res.flux_err


@pytest.mark.parametrize('box', [
    BoxAperture([(100, 100), (-50, 5)], 5, 5),        # all off the frame
    BoxAperture((20, 15), 100, 80),                   # larger than the frame
    BoxAperture((20.3, 15.2), 100.5, 80.7),
    BoxAperture((19.5, 14.5), 40, 30),                # exactly the frame
    BoxAperture([(0, 0), (39, 29)], 1, 1),            # corner pixels
    BoxAperture((5.2, 5.7), 0.3, 0.4),                # inside one pixel
    BoxAperture([(10, 10)] * 3, 4, 6, theta=np.pi / 2),  # 90 degrees
], ids=['off', 'huge', 'huge-frac', 'frame', 'corners', 'subpixel', 'rot90'])
@pytest.mark.parametrize('threshold', [None, SigmaThreshold(1.0)])
@pytest.mark.parametrize('masked', [False, True])
def test_fast_path_odd_geometries(box, threshold, masked):
    rng = np.random.default_rng(0)
    img = rng.normal(10.0, 1.0, (30, 40))
    img[3, 4] = np.nan
    mask = rng.random(img.shape) < 0.1 if masked else None
    sky = SkyEstimate(10.0, 1.0, 1200)
    kwargs = {'threshold': threshold, 'mask': mask,
              'detector': DetectorParameters(saturation=12.0)}
    _assert_tables_equal(photometer(img, box, sky, **kwargs),
                         _general(img, box, sky, **kwargs))


def test_fast_path_property_random_frames():
    """Random frames, sizes, positions and bad pixels: engines agree."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(seed=st.integers(0, 2 ** 32 - 1),
           width=st.one_of(st.integers(1, 9), st.floats(0.2, 9.0)),
           height=st.one_of(st.integers(1, 9), st.floats(0.2, 9.0)),
           aligned=st.booleans(), thresh=st.booleans())
    def check(seed, width, height, aligned, thresh):
        rng = np.random.default_rng(seed)
        ny, nx = rng.integers(5, 40, 2)
        img = rng.normal(0.0, 1.0, (ny, nx)) * rng.uniform(0.1, 1e4)
        img.flat[rng.choice(img.size, img.size // 20, replace=False)] = (
            rng.choice([np.nan, np.inf, -np.inf, 1e6], img.size // 20))
        pos = rng.uniform(-5, max(nx, ny) + 5, (30, 2))
        if aligned:  # edges on pixel boundaries k + 0.5
            width, height = max(round(width), 1), max(round(height), 1)
            pos = np.floor(pos) + 0.5 + np.array([width, height]) / 2
        box = BoxAperture(pos, width, height)
        assert box.is_pixel_aligned or not aligned
        sky = SkyEstimate(rng.normal(0, 1, 30), rng.uniform(0.5, 2, 30),
                          rng.integers(10, 1000, 30))
        kwargs = {'threshold': SigmaThreshold(1.5) if thresh else None,
                  'detector': DetectorParameters(saturation=1e5),
                  'gain': 1.5}
        _assert_tables_equal(photometer(img, box, sky, **kwargs),
                             _general(img, box, sky, **kwargs))

    check()


def test_engine_keyword(star_field):
    img = star_field[0]
    sky = SkyEstimate(100.0, 5.0, 10000)
    box = _random_boxes(np.random.default_rng(3), img.shape, 30, False)
    t_box = photometer(img, box, sky, gain=2.0, engine='box')
    assert t_box.meta['engine'] == 'box'
    _assert_tables_equal(t_box, photometer(img, box, sky, gain=2.0))
    _assert_tables_equal(t_box, photometer(img, box, sky, gain=2.0,
                                           engine='general'))
    rotated = BoxAperture([(30.0, 40.0)], 7, 5, theta=0.3)
    with pytest.raises(ValueError, match="engine='box'"):
        photometer(img, rotated, sky, engine='box')
    # the general engine takes anything the box engine takes, and more
    t = photometer(img, rotated, sky, gain=2.0, engine='general')
    assert t['aperture_sum'][0] == measure(img, rotated, sky,
                                           gain=2.0).flux
    with pytest.raises(ValueError, match='engine must be one of'):
        photometer(img, box, sky, engine='fast')


def test_column_units_and_versions_have_one_home(sample_ccd):
    from ccdphot_ext.utils.columns import unit_power
    from ccdphot_ext.utils.provenance import versions
    sky = SkyEstimate.from_image(sample_ccd)
    with gradient_warning():
        t = photometer(sample_ccd, BoxAperture([(60.0, 60.0)], 9, 9), sky)
    for name in PHOTOMETRY_COLUMNS:
        power = unit_power(name)
        if power:
            assert t[name].unit == u.adu ** power, name
        else:
            assert getattr(t[name], 'unit', None) in (None, u.one), name
    assert t.meta['versions'] == versions()
    assert set(versions()) == {'ccdphot_ext', 'photutils', 'astropy',
                               'numpy'}


@pytest.mark.parametrize('model', ['background', 'total'])
@pytest.mark.parametrize('fractional', ['squared', 'linear'])
def test_budget_columns_are_budget_terms_of_the_sums(star_field, model,
                                                     fractional):
    from ccdphot_ext import budget_terms
    from ccdphot_ext.aperture.utils import aperture_weights
    img = star_field[0]
    sigma = np.full(img.shape, 5.0)
    box = _random_boxes(np.random.default_rng(12), img.shape, 40, False)
    with sharp_pixel_warning():  # its saturated spots, no level given
        t = photometer(img, box, SkyEstimate(100.0, 5.0, 4000), gain=2.0,
                       uncertainty=sigma,
                       budget=BudgetOptions(uncertainty_model=model,
                                            fractional_variance=fractional))
    plain = {name: np.asarray(getattr(t[name], 'value', t[name]))
             for name in t.colnames}
    power = 1 if fractional == 'linear' else 2

    def w_sum(i):  # the weights of the finite pixels, to that power
        slc, w, _ = aperture_weights(box[i], img.shape)
        return 0.0 if slc is None else np.sum(
            np.where(np.isfinite(img[slc]), w, 0.0) ** power)

    def source_sum(i):  # sum(w**2 (D - B)): the weighted sum's photon noise
        slc, w, _ = aperture_weights(box[i], img.shape)
        if slc is None:
            return np.nan
        good = np.isfinite(img[slc])
        return np.sum(np.where(good, w ** 2 * (img[slc] - 100.0), 0.0))

    w_sum = np.array([w_sum(i) for i in range(len(t))])
    source = (None if fractional == 'linear'
              else np.array([source_sum(i) for i in range(len(t))]))
    sigma2 = np.where(np.isnan(plain['aperture_sum']), 0.0, w_sum * 25.0)
    rows = budget_terms(plain['aperture_sum'], plain['n_pix'],
                        plain['sky_std'], gain=2.0,
                        sky_error_on_mean=plain['sky_error_on_mean'],
                        sky_variance=sigma2, uncertainty_model=model,
                        source_flux=source)
    np.testing.assert_allclose(plain['var_sky'], rows.sky, rtol=1e-13)
    np.testing.assert_array_equal(np.isnan(plain['var_source']),
                                  model == 'total' or np.isnan(rows.source))
    np.testing.assert_allclose(plain['aperture_sum_err'], rows.error,
                               rtol=1e-13)
    np.testing.assert_allclose(plain['snr'], rows.snr, rtol=1e-13)
