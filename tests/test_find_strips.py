"""find_stars works in strips of rows: the same catalogue whatever the
strip height, the same segmentation as photutils, little extra memory."""

import tracemalloc
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.segmentation import detect_sources

from ccdphot_ext import SkyEstimate, find_stars
from ccdphot_ext.datasets.sample import render_stars
from ccdphot_ext.detection import strips
from ccdphot_ext.detection.strips import Kernel, SkyRows, detect_segments


@pytest.fixture(scope='module')
def crowded():
    """Stars everywhere (many across any strip border), a long trail
    crossing many strips, NaN pixels and a masked block."""
    rng = np.random.default_rng(11)
    ny, nx = 300, 260
    n = 400
    x, y = rng.uniform(-3, nx + 3, n), rng.uniform(-3, ny + 3, n)
    # stars exactly on the borders of 16-row and 7-row strips
    x[:40] = rng.uniform(5, nx - 5, 40)
    y[:20] = np.arange(20) * 16 + 15.5
    y[20:40] = np.arange(20) * 7 + 6.5
    img = render_stars((ny, nx), x, y, 10 ** rng.uniform(3, 5, n),
                       sigma=1.3)
    img[40:260, 100:103] += 2000.0  # a trail over many strips
    img += rng.normal(200.0, 10.0, img.shape)
    img[rng.integers(0, ny, 30), rng.integers(0, nx, 30)] = np.nan
    mask = np.zeros(img.shape, bool)
    mask[150:170, 30:60] = True
    return img, mask, SkyEstimate(200.0, 10.0, img.size)


def _dense(segments):
    return segments.label_rows(0, segments.shape[0])


@pytest.mark.parametrize('fwhm', [3.0, None])
def test_segmentation_equals_photutils(crowded, fwhm):
    img, mask, sky = crowded
    rows = SkyRows(img, np.asarray(200.0), mask)
    kernel = None if fwhm is None else Kernel(fwhm)
    halo = 0 if kernel is None else kernel.half
    thr = 5.0 * 10.0 * (1.0 if kernel is None else kernel.factor)
    whole = detect_segments(rows, lambda y0, y1: thr, kernel=kernel,
                            n_pixels=5, rows=img.shape[0])
    padded, bad = rows.rows(-halo, img.shape[0] + halo)
    detection = padded if kernel is None else kernel.apply(padded)
    ref = detect_sources(detection, thr, 5, mask=bad[halo:halo + 300])
    assert whole.n == ref.n_labels > 200
    np.testing.assert_array_equal(_dense(whole), ref.data)
    # the trail is one source over some 200 rows: across many strips
    spans = [np.ptp(np.nonzero(ref.data == k)[0]) for k in ref.labels]
    assert max(spans) > 150
    for height in (7, 16, 33):
        part = detect_segments(rows, lambda y0, y1: thr, kernel=kernel,
                               n_pixels=5, rows=height)
        assert len(part.pieces) == -(-300 // height)
        np.testing.assert_array_equal(_dense(part), ref.data)


def test_strips_give_the_whole_frame_catalogue(crowded, monkeypatch):
    img, mask, sky = crowded
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        whole = find_stars(img, sky, mask=mask, saturation=30000.0)
        monkeypatch.setattr(strips, '_STRIP_PIXELS', 7 * img.shape[1])
        monkeypatch.setattr(strips, '_STRIP_FRACTION', 1.0)
        assert strips.strip_rows(img.shape, 0) == 16  # at least 16 rows
        part = find_stars(img, sky, mask=mask, saturation=30000.0)
    assert len(part) == len(whole) > 200
    assert part.meta['box_side'] == whole.meta['box_side']
    for name in whole.colnames:
        a = np.asarray(getattr(whole[name], 'value', whole[name]))
        b = np.asarray(getattr(part[name], 'value', part[name]))
        if a.dtype.kind == 'f':
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-9,
                                       err_msg=name)
        else:
            np.testing.assert_array_equal(b, a, err_msg=name)


def test_extra_memory_under_half_the_frame(monkeypatch):
    from ccdphot_ext.detection import findstars

    # the box check runs photometer on ten stars, whose noise check takes
    # a fixed few MiB (a large share of this small frame): measured apart
    monkeypatch.setattr(findstars, 'check_box',
                        lambda *args: {'passed': None})
    rng = np.random.default_rng(3)
    size = 1024
    img = render_stars((size, size), rng.uniform(0, size, 1500),
                       rng.uniform(0, size, 1500),
                       10 ** rng.uniform(3, 5, 1500), sigma=1.3)
    img += rng.normal(200.0, 10.0, img.shape)
    img = img.astype(np.float32)
    sky = SkyEstimate(200.0, 10.0, img.size)
    tracemalloc.start()
    try:
        with pytest.warns(AstropyUserWarning, match="frame's edge"):
            stars = find_stars(img, sky)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(stars) > 1000
    # the frame as float64 is 8 MiB; whole-frame float64 copies would
    # show as multiples of it
    assert peak < 0.4 * img.size * 8


def test_sky_maps_strip_by_strip(crowded, monkeypatch):
    """A 2-D sky map (value and std per pixel) is subtracted and thresholds
    strip by strip: a constant map gives the scalar sky's catalogue, and a
    gradient map the same catalogue in strips as whole."""
    img, mask, _ = crowded
    ny, nx = img.shape
    flat = SkyEstimate.from_maps(np.full(img.shape, 200.0),
                                 np.full(img.shape, 10.0))
    scalar = SkyEstimate(200.0, 10.0, img.size)
    yy, xx = np.mgrid[0:ny, 0:nx]
    ramp = 0.3 * xx - 0.2 * yy
    sloped = SkyEstimate.from_maps(200.0 + ramp, np.full(img.shape, 10.0))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        a = find_stars(img, scalar, mask=mask)
        b = find_stars(img, flat, mask=mask)
        whole = find_stars(img + ramp, sloped, mask=mask)
        monkeypatch.setattr(strips, '_STRIP_PIXELS', 7 * nx)
        monkeypatch.setattr(strips, '_STRIP_FRACTION', 1.0)
        part = find_stars(img + ramp, sloped, mask=mask)
    assert len(a) == len(b) > 200
    for name in ('x_center', 'y_center', 'flux', 'area'):
        np.testing.assert_array_equal(np.asarray(getattr(b[name], 'value',
                                                         b[name])),
                                      np.asarray(getattr(a[name], 'value',
                                                         a[name])))
    assert len(part) == len(whole) > 200
    np.testing.assert_allclose(part['x_center'], whole['x_center'],
                               rtol=0, atol=1e-9)
    np.testing.assert_allclose(part['flux'].value, whole['flux'].value,
                               rtol=1e-12)


def test_windowed_centroids_do_not_depend_on_grouping(crowded, monkeypatch):
    """The cutouts held for the windowed centroids are iterated in groups
    (by size, within a pixel budget), the sources still moving taken into
    smaller arrays: groups of a few sources give the same catalogue, bit
    for bit, as the default groups."""
    from ccdphot_ext.detection import segments

    img, mask, sky = crowded
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        whole = find_stars(img, sky, mask=mask)
        flushes = []
        flush = segments._Cutouts.flush
        monkeypatch.setattr(segments, '_CUTOUT_BUDGET', 1000)
        monkeypatch.setattr(segments._Cutouts, 'flush', lambda self, r: (
            flushes.append(r), flush(self, r)))
        small = find_stars(img, sky, mask=mask)
    assert len(flushes) > 20  # many small groups
    assert len(small) == len(whole) > 200
    for name in ('x_center', 'y_center', 'sharpness', 'flux'):
        np.testing.assert_array_equal(
            np.asarray(getattr(small[name], 'value', small[name])),
            np.asarray(getattr(whole[name], 'value', whole[name])),
            err_msg=name)
