# Licensed under a 3-clause BSD style license - see LICENSE
"""One whole-frame source mask per frame for the sky rules of one
photometry call (`one_analysis`): the same numbers as each rule's own."""

import contextlib
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture

from ccdphot_ext import SkyEstimate, photometer
from ccdphot_ext.background import globalsky
from ccdphot_ext.background.maps import frame_background2d
from ccdphot_ext.datasets.sample import render_stars
from ccdphot_ext.utils.inputs import as_frame


def _frame(seed=3, n=256):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    sky = 100.0 + 0.05 * xx + 20.0 * np.exp(
        -((xx - 127.5) ** 2 + (yy - 127.5) ** 2) / (2 * 25.0 ** 2))
    x, y = rng.uniform(8, n - 8, (2, 40))
    light = render_stars(sky.shape, x, y, 10 ** rng.uniform(3, 4.5, 40),
                         sigma=1.6)
    img = (rng.poisson((sky + light) * 2.0)
           + rng.normal(0, 5, sky.shape)) / 2.0
    return img, np.column_stack([x, y])


@pytest.fixture
def analyses(monkeypatch):
    """Counts `_frame_blocks`' calls."""
    calls = []
    frame_blocks = globalsky._frame_blocks

    def counted(*args, **kwargs):
        calls.append(kwargs.get('with_map', True))
        return frame_blocks(*args, **kwargs)

    monkeypatch.setattr(globalsky, '_frame_blocks', counted)
    return calls


def test_the_rules_share_one_analysis(analyses):
    """In `one_analysis` the mask is found once for `source_pixels`,
    `frame_variation` and `faint_light_beside`, with the numbers each
    finds alone; outside, each finds it again (and a new frame object is
    analysed anew)."""
    img, xy = _frame()
    frame = as_frame(img)
    alone = globalsky.source_pixels(frame)
    variation, blocks = globalsky.frame_variation(frame)
    beside = globalsky.faint_light_beside(frame, *xy.T)
    assert analyses == [False, True, False]
    del analyses[:]
    with globalsky.one_analysis():
        shared = globalsky.source_pixels(frame)
        with globalsky.one_analysis():  # nested: the outer's analyses
            variation2, blocks2 = globalsky.frame_variation(frame)
        beside2 = globalsky.faint_light_beside(frame, *xy.T)
        assert len(analyses) == 1
        globalsky.source_pixels(as_frame(img))  # another frame object
        assert len(analyses) == 2
    globalsky.source_pixels(frame)
    assert len(analyses) == 3
    for a, b in zip(alone, shared, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(blocks, blocks2)
    np.testing.assert_array_equal(beside, beside2)
    pos = (np.array([10.0, 127.5, 200.0]), np.array([30.0, 127.5, 90.0]))
    np.testing.assert_array_equal(variation(*pos), variation2(*pos))
    np.testing.assert_array_equal(variation.filtered_out(2.5, *pos),
                                  variation2.filtered_out(2.5, *pos))
    assert np.any(variation.filtered_out(2.5, *pos) != 0)  # the glow


def test_photometry_of_a_background2d_sky_analyses_the_frame_once(
        analyses, monkeypatch):
    """A Background2D sky made without the frame: its rules (the map's
    lift, `check_map_sky`, and its features, `check_map_features`)
    found the mask twice per call; once now, the rows unchanged."""
    img, xy = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_background2d(frame_background2d(img)[0],
                                            gain=2.0)
        del analyses[:]
        t = photometer(img, CircularAperture(xy, 4.0), sky, gain=2.0)
        assert analyses == [True]
        monkeypatch.setattr(globalsky, 'one_analysis', contextlib.nullcontext)
        t2 = photometer(img, CircularAperture(xy, 4.0), sky, gain=2.0)
    assert analyses == [True, False, True]
    assert np.count_nonzero(np.asarray(t['flags']) & 32) > 0  # the glow
    for name in ('aperture_sum', 'aperture_sum_err', 'flags'):
        np.testing.assert_array_equal(t[name], t2[name])
