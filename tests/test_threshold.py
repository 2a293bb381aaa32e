"""SigmaThreshold: strict comparison, segments, photutils agreement."""

import numpy as np
import pytest
from photutils.segmentation import detect_sources

from ccdphot_ext import SigmaThreshold


def test_strictly_greater(rng):
    cut = rng.normal(0, 10, (25, 25))
    cut[5, 5] = 20.0  # exactly 2 sigma: excluded, as `cutout > 2*sigma`
    sel = SigmaThreshold(2.0).select(cut, 10.0)
    np.testing.assert_array_equal(sel, cut > 20.0)
    assert not sel[5, 5]


def test_all_equals_photutils_segmentation(rng):
    cut = rng.normal(0, 5, (30, 30))
    cut[10:14, 10:14] += 60
    sel = SigmaThreshold(3.0).select(cut, 5.0)
    segm = detect_sources(cut, 15.0, n_pixels=1)
    np.testing.assert_array_equal(sel, segm.data > 0)


def test_central_keeps_only_the_star():
    cut = np.zeros((21, 21))
    cut[9:12, 9:12] = 100.0      # the star, under the centre
    cut[0:2, 0:2] = 500.0        # a brighter neighbour in the corner
    sel_all = SigmaThreshold(2.0).select(cut, 1.0)
    sel_c = SigmaThreshold(2.0, segment='central').select(cut, 1.0)
    assert sel_all.sum() == 13
    assert sel_c.sum() == 9 and sel_c[10, 10]
    # centre below threshold: the segment with the largest signal wins
    cut[10, 10] = 0.0
    sel_c = SigmaThreshold(2.0, segment='central').select(cut, 1.0)
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
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SigmaThreshold(**kwargs)
