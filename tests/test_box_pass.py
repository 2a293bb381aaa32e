# Licensed under a 3-clause BSD style license - see LICENSE
"""The box engine's compiled pass (sums and the sharp-pixel search's first
cut in one pass down the frame) against the numpy route and the search on
its own."""

import warnings

import numpy as np
import pytest

from ccdphot_ext import (
    BoxAperture,
    DetectorParameters,
    SkyEstimate,
    photometer,
)
from ccdphot_ext.background import _sharp, outliers
from ccdphot_ext.flags import FLAG_SHARP_PIXEL
from ccdphot_ext.photometry import boxengine


def _frame(seed, shape=(150, 170), dtype=float, n_hits=60, n_nan=12):
    """Gaussian stars, cosmic-ray hits of 1-3 pixels, some NaN pixels."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    im = rng.normal(300.0, 8.0, shape)
    yy, xx = np.mgrid[:ny, :nx]
    for _ in range(25):
        x, y = rng.uniform(4, nx - 4), rng.uniform(4, ny - 4)
        im += rng.uniform(300, 2e4) / (2 * np.pi * 1.6 ** 2) * np.exp(
            -((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.6 ** 2))
    for _ in range(n_hits):
        y, x = rng.integers(0, ny), rng.integers(0, nx - 3)
        im[y, x:x + rng.integers(1, 4)] += rng.uniform(80, 2000)
    im.flat[rng.choice(im.size, n_nan, replace=False)] = np.nan
    return im.astype(dtype), rng


def _boxes(rng, shape, n=120, side=9):
    """Pixel-aligned boxes, some cut by the frame's edges."""
    ny, nx = shape
    x0 = rng.integers(-4, nx - side + 4, n)
    y0 = rng.integers(-4, ny - side + 4, n)
    return BoxAperture(np.column_stack([x0 + (side - 1) / 2,
                                        y0 + (side - 1) / 2]), side, side)


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_box_pass_sums_and_first_cut(dtype):
    # each box's sum of data - sky is numpy's to the last bit (per-box
    # skies too), its largest pixel numpy's where the sum is finite, and
    # the first cut is `candidates`' over the same rectangles
    im, rng = _frame(1, dtype=dtype)
    ny, nx = im.shape
    y0 = np.sort(rng.integers(0, ny - 11, 300))
    x0 = rng.integers(0, nx - 13, 300)
    sky = rng.normal(300.0, 5.0, 300)
    rects = np.clip(np.column_stack([y0 - 2, y0 + 13, x0 - 2, x0 + 15]),
                    0, [ny, ny, nx, nx]).astype(np.intp)
    flux, peak, found = _sharp.box_pass(im, y0, x0, 11, 13, sky, rects, 32.0, 28.0)
    cut = np.stack([im[a:a + 11, b:b + 13].astype(float).ravel()
                    for a, b in zip(y0, x0, strict=True)])
    expected = np.add.reduce(cut - sky[:, None], axis=1)
    assert np.isnan(expected).sum() > 5  # some boxes hold a NaN
    assert np.array_equal(flux, expected, equal_nan=True)
    good = np.isfinite(expected)
    assert np.array_equal(peak[good], np.max(cut, axis=1)[good])
    ref = _sharp.candidates(im, None, rects, 32.0, 28.0)
    assert ref[0].size > 20
    for got, want in zip(found, ref, strict=True):
        assert np.array_equal(got, want, equal_nan=True)
    # one sky for all, no rectangles: the same sums
    flux1, _, none = _sharp.box_pass(im, y0, x0, 11, 13, 300.0, None, 0.0, 0.0)
    assert none is None
    assert np.array_equal(flux1, np.add.reduce(cut - 300.0, axis=1),
                          equal_nan=True)


def test_box_pass_refuses_bad_boxes():
    im = np.zeros((20, 20))
    with pytest.raises(ValueError, match='whole on the frame'):
        _sharp.box_pass(im, np.array([15]), np.array([0]), 9, 9, 0.0, None, 1, 1)
    with pytest.raises(ValueError, match='sorted by y0'):
        _sharp.box_pass(im, np.array([5, 2]), np.array([0, 0]), 3, 3, 0.0, None,
                 1, 1)
    with pytest.raises(ValueError, match='hold their box'):
        _sharp.box_pass(im, np.array([5]), np.array([5]), 3, 3, 0.0,
                 np.array([[6, 9, 4, 9]]), 1, 1)
    with pytest.raises(TypeError, match='float32 or float64'):
        _sharp.box_pass(np.zeros((20, 20), int), np.array([1]), np.array([1]), 3,
                 3, 0.0, None, 1, 1)


def _reference(monkeypatch, call):
    """``call()`` with the numpy route and the search on its own."""
    with monkeypatch.context() as m:
        m.setattr(boxengine, 'fused_route', boxengine._short_route)
        return call()


@pytest.mark.parametrize('seed', range(6))
def test_photometer_fused_equals_reference(monkeypatch, seed):
    # cosmic rays, edge boxes, NaN pixels, float32 and masked frames: the
    # same table (fluxes to the last bit, every flag, the warning's words)
    # from the fused pass as from the numpy route plus the search alone
    dtype = np.float32 if seed % 2 else np.float64
    im, rng = _frame(seed + 10, dtype=dtype, n_hits=20 + 30 * seed)
    mask = None
    if seed == 4:
        mask = np.zeros(im.shape, bool)
        mask[rng.integers(0, im.shape[0], 40),
             rng.integers(0, im.shape[1], 40)] = True
    boxes = _boxes(rng, im.shape)
    sky = SkyEstimate(300.0, 8.0, 10_000)

    def run():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            table = photometer(im, boxes, sky, mask=mask, detector=DetectorParameters(
                saturation=float(np.nanpercentile(im, 99.9))))
        return table, [str(w.message) for w in caught]

    got, got_warnings = run()
    want, want_warnings = _reference(monkeypatch, run)
    flags = np.asarray(got['flags'])
    assert np.array_equal(flags, np.asarray(want['flags']))
    assert np.any(flags & FLAG_SHARP_PIXEL)
    assert np.any(flags & 1)  # edge boxes
    assert np.any(flags & 2)  # NaN pixels (or masked ones)
    for name in ('aperture_sum', 'aperture_sum_err', 'var_sky'):
        assert np.array_equal(np.asarray(got[name]), np.asarray(want[name]),
                              equal_nan=True)
    assert got_warnings == want_warnings
    assert got.meta['notes'] == want.meta['notes']


def test_fused_pass_records_the_rows_it_looked_at(monkeypatch):
    # the whole boxes of a float frame are looked at in the summing pass,
    # the edge boxes by the search itself; both together find what the
    # search finds alone
    im, rng = _frame(3, n_hits=120)
    boxes = _boxes(rng, im.shape)
    sky = SkyEstimate(300.0, 8.0, 10_000)
    seen = {}
    real = outliers.sharp_rows

    def spy(frame, apertures, *args, scan=None, **kw):
        seen['done'] = scan.done.copy()
        seen['alone'] = real(frame, apertures, *args, **kw)
        return real(frame, apertures, *args, scan=scan, **kw)

    monkeypatch.setattr('ccdphot_ext.photometry.table.sharp_rows', spy)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        table = photometer(im, boxes, sky)
    truncated = (np.asarray(table['flags']) & 1) > 0
    assert np.array_equal(seen['done'], ~truncated)
    sharp = (np.asarray(table['flags']) & FLAG_SHARP_PIXEL) > 0
    assert sharp.sum() > 10
    assert np.array_equal(sharp, seen['alone'][0])


def test_fused_pass_bounded_memory(monkeypatch):
    # where the boxes on one row would hold more than FUSED_BYTES the numpy
    # route sums them and the search looks on its own: the same table
    im, rng = _frame(5, n_hits=100)
    boxes = _boxes(rng, im.shape)
    sky = SkyEstimate(300.0, 8.0, 10_000)
    seen = []
    real = outliers.sharp_rows

    def spy(frame, apertures, *args, scan=None, **kw):
        seen.append(int(scan.done.sum()))
        return real(frame, apertures, *args, scan=scan, **kw)

    monkeypatch.setattr('ccdphot_ext.photometry.table.sharp_rows', spy)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        fused = photometer(im, boxes, sky)
        monkeypatch.setattr(boxengine, 'FUSED_BYTES', 81 * 8 * 3)
        bounded = photometer(im, boxes, sky)
    assert seen[0] > 50
    assert seen[1] == 0
    for name in ('aperture_sum', 'flags'):
        assert np.array_equal(np.asarray(fused[name]),
                              np.asarray(bounded[name]), equal_nan=True)
    assert np.any(np.asarray(fused['flags']) & FLAG_SHARP_PIXEL)
