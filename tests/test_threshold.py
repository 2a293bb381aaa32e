"""SigmaThreshold: the smoothed (unbiased) and pixel (notebook) selections."""

import numpy as np
import pytest
from photutils.segmentation import detect_sources

from ccdphot_ext import SigmaThreshold


def test_strictly_greater(rng):
    cut = rng.normal(0, 10, (25, 25))
    cut[5, 5] = 20.0  # exactly 2 sigma: excluded, as `cutout > 2*sigma`
    sel = SigmaThreshold(2.0, selection='pixel').select(cut, 10.0)
    np.testing.assert_array_equal(sel, cut > 20.0)
    assert not sel[5, 5]


def test_all_equals_photutils_segmentation(rng):
    cut = rng.normal(0, 5, (30, 30))
    cut[10:14, 10:14] += 60
    sel = SigmaThreshold(3.0, selection='pixel').select(cut, 5.0)
    segm = detect_sources(cut, 15.0, n_pixels=1)
    np.testing.assert_array_equal(sel, segm.data > 0)


def test_central_keeps_only_the_star():
    cut = np.zeros((21, 21))
    cut[9:12, 9:12] = 100.0      # the star, under the centre
    cut[0:2, 0:2] = 500.0        # a brighter neighbour in the corner
    pixel = {'selection': 'pixel'}
    sel_all = SigmaThreshold(2.0, **pixel).select(cut, 1.0)
    sel_c = SigmaThreshold(2.0, segment='central', **pixel).select(cut, 1.0)
    assert sel_all.sum() == 13
    assert sel_c.sum() == 9 and sel_c[10, 10]
    # centre below threshold: the segment with the largest signal wins
    cut[10, 10] = 0.0
    sel_c = SigmaThreshold(2.0, segment='central', **pixel).select(cut, 1.0)
    assert sel_c.sum() == 4 and sel_c[0, 0]


def test_valid_and_nan_pixels_never_selected():
    cut = np.full((5, 5), 50.0)
    cut[2, 2] = np.nan
    valid = np.ones((5, 5), bool)
    valid[0] = False
    sel = SigmaThreshold(1.0).select(cut, 1.0, valid=valid)
    assert not sel[2, 2] and not sel[0].any()
    assert sel.sum() == 19


def test_nothing_above_threshold_is_empty_not_a_warning(recwarn):
    sel = SigmaThreshold(5.0).select(np.zeros((6, 6)), 1.0)
    assert sel.shape == (6, 6) and not sel.any()
    assert len(recwarn) == 0


@pytest.mark.parametrize('kwargs, exc, match', [
    ({'n_sigma': 0}, ValueError, 'n_sigma'),
    ({'n_sigma': -2}, ValueError, 'n_sigma'),
    ({'n_sigma': 'two'}, TypeError, 'n_sigma'),
    ({'segment': 'middle'}, ValueError, 'segment'),
    ({'connectivity': 6}, ValueError, 'connectivity'),
    ({'selection': 'model'}, ValueError, 'selection'),
    ({'fwhm': 0}, ValueError, 'fwhm'),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SigmaThreshold(**kwargs)


def test_smoothed_selection_ignores_the_pixels_own_value(rng):
    """The default selection of a pixel never depends on its own value:
    the source of its freedom from selection bias."""
    thr = SigmaThreshold(2.0)
    cut = rng.normal(0, 1, (15, 15))
    cut[5:10, 5:10] += 2.0
    sel = thr.select(cut, 1.0)
    for (i, j) in [(7, 7), (5, 9), (3, 3), (10, 4), (0, 14)]:
        for value in (-100.0, 0.0, 100.0):
            other = cut.copy()
            other[i, j] = value
            assert thr.select(other, 1.0)[i, j] == sel[i, j]


def test_smoothed_selection_finds_a_faint_star_and_little_noise(rng):
    thr = SigmaThreshold(2.0)
    noise = [thr.select(rng.normal(0, 1, (21, 21)), 1.0).mean()
             for _ in range(20)]
    assert 0.005 < np.mean(noise) < 0.05  # a 2-sigma tail of a smooth field
    yy, xx = np.mgrid[:21, :21]
    star = 3.0 * np.exp(-0.5 * ((xx - 10) ** 2 + (yy - 10) ** 2) / 2.0 ** 2)
    sel = thr.select(star + rng.normal(0, 1, star.shape), 1.0)
    assert sel[8:13, 8:13].all()  # the core, although 3 sigma at most


def test_selection_variance():
    cut = np.zeros((11, 11))
    valid = np.ones(cut.shape, bool)
    assert SigmaThreshold(2.0, selection='pixel').selection_variance(
        cut, valid, 1.0) == 0.0
    thr = SigmaThreshold(2.0)
    # far below the threshold: no crossing, no variance
    assert thr.selection_variance(cut - 50, valid, 1.0) == pytest.approx(
        0.0, abs=1e-12)
    # a field at the threshold: every pixel may cross; the term scales
    # as sigma**2 and a stack gives each cutout's own value
    sig, noise = thr.significance(cut + 1.0, valid)
    at = cut + 1.0 * (2.0 * noise / sig)
    v1 = thr.selection_variance(at, valid, 1.0)
    v3 = thr.selection_variance(3 * at, valid, 3.0)
    assert v1 > 1.0 and v3 == pytest.approx(9 * v1, rel=1e-12)
    stack = thr.selection_variance(np.stack([at, cut - 50]),
                                   np.stack([valid, valid]), [1.0, 1.0])
    assert stack[0] == v1 and stack[1] == pytest.approx(0.0, abs=1e-12)


def test_repr_and_note():
    assert repr(SigmaThreshold(2.0)) == (
        "SigmaThreshold(n_sigma=2.0, segment='all', selection='smoothed', "
        'fwhm=3)')
    assert SigmaThreshold(2.0).note is None
    assert 'biased' in SigmaThreshold(2.0, selection='pixel').note
