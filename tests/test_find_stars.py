"""find_stars() and star_boxes(): positions against known truth."""

import re
import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import (
    FLAG_SATURATED,
    NOTEBOOK_BOXES,
    BoxAperture,
    DetectorParameters,
    SkyEstimate,
    find_stars,
    photometer,
    sample_truth,
    star_boxes,
)
from ccdphot_ext.datasets.sample import render_stars, simulate_frame
from ccdphot_ext.detection.findstars import STAR_COLUMNS


def _match(stars, x, y):
    """Distance from each true star to the nearest detection, and back."""
    d = np.hypot(np.asarray(stars['x_center'])[:, None] - np.asarray(x),
                 np.asarray(stars['y_center'])[:, None] - np.asarray(y))
    return d.min(axis=0), d.min(axis=1)


@pytest.fixture(scope='module')
def simulated():
    """A frame with a sky gradient and stars at known positions."""
    rng = np.random.default_rng(2024)
    ny, nx = 220, 260
    n = 24
    # on a grid with jitter: well separated, away from the edges
    gx, gy = np.meshgrid(np.linspace(25, nx - 25, 6),
                         np.linspace(25, ny - 25, 4))
    truth = {'x': gx.ravel() + rng.uniform(-3, 3, n),
             'y': gy.ravel() + rng.uniform(-3, 3, n),
             'flux': 10 ** rng.uniform(3.7, 5.0, n)}
    truth['flux'][0] = 3e6  # saturates
    yy, xx = np.mgrid[0:ny, 0:nx]
    sky = 800.0 + 0.1 * (xx - nx / 2) - 0.05 * (yy - ny / 2)
    data, sigma, _ = simulate_frame((ny, nx), sky, truth, gain=2.0,
                                    read_noise=6.0, psf_sigma=1.5,
                                    saturation=50000.0, seed=rng)
    return data, truth


def test_sample_frame_against_truth(sample_ccd):
    truth = sample_truth()
    sky = SkyEstimate.from_image(sample_ccd)
    stars = find_stars(sample_ccd, sky)
    assert tuple(stars.colnames) == STAR_COLUMNS
    found, nearest = _match(stars, truth['x'], truth['y'])
    # the four notebook stars, and most field stars, within 1 pixel
    assert np.all(found[:4] < 1.0)
    assert np.mean(found < 1.0) >= 0.8
    # bright stars to a tenth of a pixel or so
    bright = truth['flux'] > 1e4
    assert np.all(found[bright] < 0.15)
    # nothing spurious (the faintest found, of ~700 ADU, a star of 2900
    # ADU 1.5 px away), brightest first, ids 1..N
    assert np.all(nearest < np.where(stars['flux'].value > 1e3, 1.0, 2.0))
    assert np.all(np.diff(stars['flux'].value) <= 0)
    assert stars['id'].tolist() == list(range(1, len(stars) + 1))
    assert stars['flux'].unit == 'adu'
    assert stars.meta['n_sigma'] == 5.0 and stars.meta['fwhm'] == 3.0
    # each notebook star's suggested box holds the star, centred
    for name, slc in NOTEBOOK_BOXES.items():
        row = truth[truth['name'] == name][0]
        k = np.argmin(np.hypot(stars['x_center'] - row['x'],
                               stars['y_center'] - row['y']))
        s = stars[k]
        assert s['box_x0'] <= row['x'] < s['box_x1'] - 1
        assert s['box_y0'] <= row['y'] < s['box_y1'] - 1
        assert abs((s['box_x0'] + s['box_x1'] - 1) / 2 - s['x_center']) <= 0.5
        assert slc[0].start - 10 < s['box_y0'] < slc[0].stop


def test_simulated_frame_positions_and_photometry(simulated):
    data, truth = simulated
    sky = SkyEstimate.from_image(data)
    stars = find_stars(data, sky, saturation=50000.0)
    found, nearest = _match(stars, truth['x'], truth['y'])
    assert len(stars) == len(truth['x'])
    assert np.all(found < 0.2) and np.all(nearest < 0.2)
    # the saturated star is marked, and photometer flags its box
    k = np.argmin(np.hypot(stars['x_center'] - truth['x'][0],
                           stars['y_center'] - truth['y'][0]))
    assert stars['saturated'].tolist() == [i == k for i in range(len(stars))]
    boxes = star_boxes(stars)
    assert boxes.is_pixel_aligned and boxes.width == stars.meta['box_side']
    # with the true sky level at each box (the sky is a plane, so its mean
    # over a box is its value at the centre), the box fluxes of the
    # unsaturated stars match the truth within their errors
    x, y = boxes.positions.T
    local = SkyEstimate(800.0 + 0.1 * (x - 130) - 0.05 * (y - 110),
                        np.full(len(x), sky.std), np.full(len(x), 10 ** 9))
    t = photometer(data, boxes, local, gain=2.0,
                   detector=DetectorParameters(saturation=50000.0))
    assert bool(t['flags'][k] & FLAG_SATURATED)
    order = np.argmin(np.hypot(np.asarray(truth['x'])[:, None]
                               - stars['x_center'],
                               np.asarray(truth['y'])[:, None]
                               - stars['y_center']), axis=0)
    ok = np.arange(len(stars)) != k
    pull = ((t['aperture_sum'] - truth['flux'][order]) / t['aperture_sum_err'])
    assert np.all(np.abs(pull[ok]) < 4)
    assert abs(np.mean(pull[ok])) < 1


def test_fits_roundtrip_and_mask(tmp_path, simulated):
    data, truth = simulated
    path = tmp_path / 'frame.fits'
    CCDData(data, unit='adu', meta={'SATURATE': 50000.0}).write(path)
    ccd = CCDData.read(path)
    sky = SkyEstimate.from_image(ccd)
    stars = find_stars(ccd, sky)
    assert stars.meta['saturation'] == 50000.0
    assert int(np.sum(stars['saturated'])) == 1
    # masking a star (and NaN pixels) removes it, and nothing else
    x, y = int(round(truth['x'][5])), int(round(truth['y'][5]))
    mask = np.zeros(data.shape, dtype=bool)
    mask[y - 8:y + 9, x - 8:x + 9] = True
    holes = ccd.data.copy()
    holes[10:12, 100:140] = np.nan
    fewer = find_stars(holes, sky, mask=mask)
    assert len(fewer) == len(stars) - 1
    found, _ = _match(fewer, truth['x'], truth['y'])
    assert found[5] > 5 and np.sum(found < 0.2) == len(stars) - 1


def test_no_smoothing_and_deblending(rng):
    img = rng.normal(100.0, 3.0, (60, 80))
    img += render_stars(img.shape, [30.0, 35.5, 60.0], [30.0, 30.5, 20.0],
                        [20000.0, 15000.0, 5000.0], sigma=1.3)
    sky = SkyEstimate(100.0, 3.0, img.size)
    blended = find_stars(img, sky)
    assert len(blended) == 2
    split = find_stars(img, sky, deblend=True)
    assert len(split) == 3
    found, _ = _match(split, [30.0, 35.5, 60.0], [30.0, 30.5, 20.0])
    assert np.all(found < 0.5)
    raw = find_stars(img, sky, fwhm=None, box_side=9)
    assert raw.meta['fwhm'] is None and raw.meta['box_side'] == 9
    assert np.all(raw['box_x1'] - raw['box_x0'] == 9)


def test_nothing_found_warns_and_returns_an_empty_table(rng):
    img = rng.normal(100.0, 3.0, (40, 40))
    with pytest.warns(AstropyUserWarning, match='no star found'):
        stars = find_stars(img, SkyEstimate(100.0, 3.0, 1600), n_sigma=50)
    assert len(stars) == 0 and tuple(stars.colnames) == STAR_COLUMNS
    with pytest.raises(ValueError, match='stars is empty'):
        star_boxes(stars)


def test_bad_arguments_name_the_parameter(rng):
    img = rng.normal(100.0, 3.0, (30, 30))
    sky = SkyEstimate(100.0, 3.0, 900)
    with pytest.raises(ValueError, match='n_sigma'):
        find_stars(img, sky, n_sigma=-1)
    # the one rule for counts: 2.5 and 0 are refused, True is no number
    with pytest.raises(ValueError, match='n_pixels must be a whole number'):
        find_stars(img, sky, n_pixels=2.5)
    with pytest.raises(ValueError, match='n_pixels must be positive'):
        find_stars(img, sky, n_pixels=0)
    with pytest.raises(TypeError, match='n_pixels'):
        find_stars(img, sky, n_pixels=True)
    with pytest.raises(ValueError, match='fwhm'):
        find_stars(img, sky, fwhm=0)
    with pytest.raises(ValueError, match='box_side'):
        find_stars(img, sky, box_side=0)
    with pytest.raises(ValueError, match='box_side must be a whole number'):
        find_stars(img, sky, box_side=7.5)
    with pytest.raises(TypeError, match='box_side'):
        find_stars(img, sky, box_side='7')
    with pytest.raises(TypeError, match='sky'):
        find_stars(img, 100.0)
    with pytest.raises(ValueError, match='per aperture'):
        find_stars(img, SkyEstimate([100.0, 101.0], [3.0, 3.0], [50, 50]))
    with pytest.raises(TypeError, match='stars'):
        star_boxes({'x': [1]})
    table = {'box_x0': np.array([0, 0]), 'box_x1': np.array([5, 6]),
             'box_y0': np.array([0, 0]), 'box_y1': np.array([5, 5])}
    with pytest.raises(ValueError, match='different sizes'):
        star_boxes(table)


def test_star_boxes_cover_the_slices():
    table = {'box_x0': np.array([3, -2]), 'box_x1': np.array([10, 5]),
             'box_y0': np.array([4, 20]), 'box_y1': np.array([9, 25])}
    boxes = star_boxes(table)
    assert isinstance(boxes, BoxAperture) and boxes.is_pixel_aligned
    np.testing.assert_array_equal(boxes.bounds(), [[3, 10, 4, 9],
                                                   [-2, 5, 20, 25]])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        t = photometer(np.ones((30, 30)), boxes, SkyEstimate(0.0, 1.0, 900))
    assert t['n_pix'].tolist() == [35.0, 25.0]


# -- the vectorised measurements against photutils ---------------------------

@pytest.fixture(scope='module')
def field():
    rng = np.random.default_rng(3)
    img = rng.normal(100.0, 5.0, (300, 300))
    x, y = rng.uniform(10, 290, 40), rng.uniform(10, 290, 40)
    img += render_stars(img.shape, x, y, 10 ** rng.uniform(3, 4.5, 40),
                        sigma=1.5)
    return img, SkyEstimate.from_image(img), x, y


def test_detection_image_is_the_lowered_gaussian_convolution(field):
    from photutils.segmentation import make_2dgaussian_kernel
    from scipy import ndimage

    from ccdphot_ext.detection.strips import Kernel, SkyRows

    img, sky, _, _ = field
    image = img - sky.value
    rows = SkyRows(img, np.asarray(sky.value, float), None)
    for fwhm in (1.5, 3.0, 4.2):
        size = 2 * int(np.ceil(2.0 * fwhm)) + 1
        kernel = make_2dgaussian_kernel(fwhm, size=size).array
        lowered = kernel - kernel.mean()
        direct = ndimage.convolve(image, lowered, mode='nearest')
        fast_kernel = Kernel(fwhm)
        half = fast_kernel.half
        # rows beyond the frame repeat its edge rows ('nearest')
        fast = fast_kernel.apply(rows.rows(-half, img.shape[0] + half)[0])
        factor = fast_kernel.factor
        np.testing.assert_allclose(fast, direct, rtol=0,
                                   atol=1e-11 * np.abs(direct).max())
        assert factor == pytest.approx(np.sqrt(np.sum(lowered ** 2)),
                                       rel=1e-12)


def test_measurements_equal_photutils_source_catalog(field):
    from photutils.segmentation import SourceCatalog, detect_sources

    from ccdphot_ext.detection.strips import Kernel, SkyRows

    img, sky, x, y = field
    stars = find_stars(img, sky)
    image = img - sky.value
    kernel = Kernel(3.0)
    padded = SkyRows(img, np.asarray(sky.value, float), None).rows(
        -kernel.half, img.shape[0] + kernel.half)[0]
    det, factor = kernel.apply(padded), kernel.factor
    cat = SourceCatalog(image, detect_sources(det, 5 * sky.std * factor, 5))
    assert len(stars) == len(cat) == 38
    order = np.argsort(-np.asarray(cat.segment_flux), kind='stable')
    np.testing.assert_allclose(stars['flux'], np.asarray(
        cat.segment_flux)[order], rtol=1e-12)
    np.testing.assert_allclose(stars['area'].value,
                               cat.area.value[order], rtol=0)
    np.testing.assert_allclose(stars['peak'], cat.max_value[order],
                               rtol=1e-12)
    # the same moments (photutils regularises a few faint, near-singular
    # covariances: 0.1% on one source here)
    rel = np.abs(stars['fwhm'].value / cat.fwhm.value[order] - 1)
    assert np.sum(rel > 1e-9) <= 1 and np.max(rel) < 0.002
    # Source Extractor's windowed centroid, as photutils computes it
    dx = stars['x_center'] - cat.x_centroid_win[order]
    dy = stars['y_center'] - cat.y_centroid_win[order]
    assert np.median(np.hypot(dx, dy)) < 0.005
    assert np.percentile(np.hypot(dx, dy), 90) < 0.02
    # and against the truth: as good as photutils
    ours, _ = _match(stars, x, y)
    theirs = np.hypot(np.asarray(cat.x_centroid_win)[:, None] - x,
                      np.asarray(cat.y_centroid_win)[:, None] - y).min(0)
    assert np.median(ours) < 0.02 and np.median(theirs) < 0.02
    # all star-like but a blend of two (FWHM 5.1 px against 3.4 px)
    like = np.asarray(stars['star_like'])
    assert like.sum() == 37 and stars['fwhm'][~like][0].value > 5.0
    assert stars.meta['psf_fwhm'] == pytest.approx(3.35, abs=0.1)


def test_progress_bar_on_a_terminal(field, monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    img, sky, _, _ = field
    out = Terminal()
    monkeypatch.setattr(sys, 'stderr', out)
    find_stars(img, sky, progress=True)
    assert '100.00%' in out.getvalue()
    out.truncate(0)
    find_stars(img, sky)  # a small frame: no progress by default
    assert out.getvalue() == ''


def test_only_hot_pixels_is_said(rng):
    img = rng.normal(100.0, 5.0, (100, 100))
    img[rng.integers(5, 95, 20), rng.integers(5, 95, 20)] += 3000.0
    with pytest.warns(AstropyUserWarning, match='no star-like detection'):
        stars = find_stars(img, SkyEstimate(100.0, 5.0, img.size))
    assert len(stars) >= 15 and not stars['star_like'].any()
    assert np.all(stars['sharpness'] > 0.9)  # one pixel each
    assert stars.meta['box_check']['fraction'] is None


@pytest.mark.parametrize('value', [200.0, 1e4, 1e30])
def test_detections_without_a_fwhm_size_the_boxes_by_the_kernel(value):
    # a frame whose only detection is one hot pixel (a cosmic-ray hit):
    # its second moments give no FWHM, and the box size fell on a NaN
    img = np.random.default_rng(0).normal(10.0, 5.0, (25, 40))
    img[12, 20] = value
    sky = SkyEstimate.from_image(img)
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)
        with pytest.warns(AstropyUserWarning,
                          match=r'detection kernel \(3 pixels FWHM\)'):
            stars = find_stars(img, sky)
    assert len(stars) == 1 and not np.isfinite(stars['fwhm'][0])
    assert abs(stars['x_center'][0] - 20.0) < 0.5
    assert abs(stars['y_center'][0] - 12.0) < 0.5
    # 4 kernel FWHM, rounded up to an odd side, as for a measured PSF
    assert stars.meta['box_side'] == 13
    assert stars['box_x1'][0] - stars['box_x0'][0] == 13


@pytest.mark.parametrize('fwhm, words', [
    (1e5, 'fwhm 100000.0 pixels is more than the frame (40, 50)'),
    (1e308, 'fwhm must be between 1.49e-154 and 6.7e+153'),
    (1e-6, 'fwhm must be at least 0.1 pixels, got 1e-06'),
    (1e-320, 'fwhm must be between 1.49e-154 and 6.7e+153'),
])
def test_a_smoothing_kernel_beyond_the_frame_or_a_pixel_is_named(fwhm,
                                                                 words):
    # a kernel far larger than the frame asked for terabytes (MemoryError)
    # or overflowed its size; a far narrower one than a pixel sums to zero
    img = np.random.default_rng(0).normal(100.0, 5.0, (40, 50))
    img[19:23, 20:23] += 2000.0
    with pytest.raises(ValueError, match=re.escape(words)):
        find_stars(img, SkyEstimate(100.0, 5.0, 1000), fwhm=fwhm)
    # the default kernel still smooths the smallest frames
    with pytest.warns(AstropyUserWarning):  # no star on a 2 x 2 frame
        assert len(find_stars(img[:2, :2], SkyEstimate(100.0, 5.0, 4))) == 0
