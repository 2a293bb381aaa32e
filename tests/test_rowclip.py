"""The sorted-row sigma clip against astropy's sigma_clip, row by row."""

import warnings

import numpy as np
import pytest
from astropy.stats import sigma_clip
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext.background.rowclip import blank, clip_rows, count_rows


def _astropy(rows, sigma, maxiters):
    """astropy's kept pixels, and numpy's mean and std of them."""
    with warnings.catch_warnings():  # the NaN are the left-out pixels
        warnings.simplefilter('ignore', AstropyUserWarning)
        kept = sigma_clip(rows, sigma=sigma, maxiters=maxiters,
                          cenfunc='median', stdfunc='std', axis=1,
                          masked=True, copy=True)
    keep = ~np.ma.getmaskarray(kept) & np.isfinite(rows)
    level = np.array([row[k].mean() if k.any() else np.nan
                      for row, k in zip(rows, keep, strict=True)])
    std = np.array([row[k].std() if k.any() else np.nan
                    for row, k in zip(rows, keep, strict=True)])
    return keep, level, std


def _rows(kind, rng, m=120, k=300):
    if kind == 'gauss':
        rows = rng.normal(1000.0, 30.0, (m, k))
    elif kind == 'poisson':  # many ties
        rows = rng.poisson(5.0, (m, k)).astype(float)
    elif kind == 'outliers':  # stars and cold pixels far out
        rows = (rng.normal(0.0, 1.0, (m, k))
                + (rng.random((m, k)) < 0.05) * rng.exponential(30.0, (m, k))
                - (rng.random((m, k)) < 0.02) * rng.exponential(300.0, (m, k)))
    elif kind == 'flat':  # all equal but one: a scatter of 0 once clipped
        rows = np.full((m, k), 7.0)
        rows[:, 0] = 8.0
    else:  # heavy tails on a large level
        rows = rng.standard_cauchy((m, k)) * 10.0 + 1e6
    rows[rng.random((m, k)) < rng.uniform(0.0, 0.6, (m, 1))] = np.nan
    rows[:3] = np.nan  # rows without a pixel
    rows[3, 1:] = np.nan  # and with one
    return rows


@pytest.mark.parametrize('kind', ['gauss', 'poisson', 'outliers', 'flat',
                                  'cauchy'])
@pytest.mark.parametrize('sigma, maxiters', [(3.0, 10), (2.5, None),
                                             (3.0, 1), (1.0, 3)])
def test_clip_rows_keeps_astropys_pixels(kind, sigma, maxiters):
    rows = _rows(kind, np.random.default_rng(len(kind)))
    keep, level, std = _astropy(rows, sigma, maxiters)
    clip = clip_rows(rows, sigma, maxiters)
    np.testing.assert_array_equal(clip.keep(rows), keep)
    np.testing.assert_array_equal(clip.n_kept, keep.sum(axis=1))
    some = keep.any(axis=1)
    assert np.all(np.isnan(clip.level[~some]))
    np.testing.assert_allclose(clip.level[some], level[some], rtol=1e-13,
                               atol=1e-13 * np.nanmax(std))
    np.testing.assert_allclose(clip.std[some], std[some], rtol=1e-12,
                               atol=1e-13 * np.nanmax(std))


def test_clip_rows_sorted_in_float32_gives_the_same():
    rng = np.random.default_rng(3)
    rows = rng.normal(500.0, 9.0, (50, 200)).astype(np.float32)
    rows[rng.random(rows.shape) < 0.2] = np.nan
    n = np.isfinite(rows).sum(axis=1)
    fast = clip_rows(rows, 3.0, 10, ordered=np.sort(rows, axis=1), n=n)
    ref = clip_rows(rows.astype(np.float64), 3.0, 10)
    np.testing.assert_array_equal(fast.keep(rows), ref.keep(rows))
    np.testing.assert_array_equal(fast.level, ref.level)
    np.testing.assert_array_equal(fast.std, ref.std)


def test_count_rows_and_blank():
    rng = np.random.default_rng(4)
    mask = rng.random((7, 13)) < 0.4
    np.testing.assert_array_equal(count_rows(mask), mask.sum(axis=1))
    for dtype in (np.float32, np.float64):
        values = rng.normal(0.0, 1.0, (7, 13)).astype(dtype)
        values[0, 0] = -np.inf
        expect = np.where(mask, np.nan, values)
        blank(values, mask)
        np.testing.assert_array_equal(values, expect)


def test_clip_rows_of_rows_longer_than_a_block(monkeypatch):
    # a row longer than a block is summed a block of columns at a time
    # (the deviations of a whole frame as one row would be a float64 copy
    # of the frame); the kept pixels stay astropy's
    from ccdphot_ext.background import rowclip

    monkeypatch.setattr(rowclip, 'BLOCK_PIXELS', 1000)
    rng = np.random.default_rng(5)
    rows = rng.normal(0.0, 1.0, (3, 4500))
    rows += (rng.random(rows.shape) < 0.05) * rng.exponential(30.0,
                                                              rows.shape)
    rows[1, 4000:] = np.nan  # a row whose finite pixels end mid-block
    keep, level, std = _astropy(rows, 3.0, 10)
    clip = clip_rows(rows, 3.0, 10)
    np.testing.assert_array_equal(clip.keep(rows), keep)
    np.testing.assert_allclose(clip.level, level, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(clip.std, std, rtol=1e-12)
