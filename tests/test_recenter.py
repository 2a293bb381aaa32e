"""Recentering: options checked when built, immutable, and called on a frame
(recenter_positions is its function form)."""

import dataclasses
import pickle

import numpy as np
import pytest

from ccdphot_ext import Recentering, SkyEstimate, recenter_positions
from ccdphot_ext.datasets.sample import render_stars

TRUE_X = np.array([14.3, 40.8, 27.0])
TRUE_Y = np.array([15.6, 22.2, 38.4])


@pytest.fixture(scope='module')
def frame():
    """Three stars on a noisy sky of 100 (std 2)."""
    rng = np.random.default_rng(7)
    stars = render_stars((52, 56), TRUE_X, TRUE_Y, [4e4, 2e4, 3e4],
                         sigma=1.5)
    return 100.0 + stars + rng.normal(0.0, 2.0, stars.shape)


def test_defaults_and_repr():
    r = Recentering()
    assert (r.centroid, r.box_size, r.n_sigma, r.min_snr, r.max_shift,
            r.iterations) == ('com', 11, 2.0, 5.0, None, 2)
    assert repr(r) == ("Recentering(centroid='com', box_size=11, n_sigma=2.0, "
                       'min_snr=5.0, max_shift=None, iterations=2)')
    other = Recentering(centroid='2dg', box_size=9.0, n_sigma=3, max_shift=2,
                        iterations=np.int64(3))
    # numbers stored as plain Python numbers, so repr round-trips
    assert type(other.box_size) is int and type(other.iterations) is int
    assert type(other.n_sigma) is float and type(other.max_shift) is float
    assert eval(repr(other)) == other


@pytest.mark.parametrize('kwargs, error, match', [
    ({'centroid': 'peak'}, ValueError, r"centroid must be one of \('com', "),
    ({'centroid': None}, ValueError, 'centroid must be one of'),
    ({'box_size': 2}, ValueError, 'box_size must be at least 3'),
    ({'box_size': 7.5}, ValueError, 'box_size'),
    ({'box_size': 'big'}, TypeError, 'box_size'),
    ({'n_sigma': -1.0}, ValueError, 'n_sigma'),
    ({'min_snr': np.nan}, ValueError, 'min_snr'),
    ({'max_shift': 0.0}, ValueError, 'max_shift'),
    ({'iterations': 0}, ValueError, 'iterations'),
])
def test_checked_when_built(kwargs, error, match):
    with pytest.raises(error, match=match):
        Recentering(**kwargs)
    # the function form refuses the same values before touching the frame
    with pytest.raises(error, match=match):
        recenter_positions(None, [(1.0, 1.0)], None, **kwargs)


def test_immutable_and_picklable():
    r = Recentering(centroid='2dg', max_shift=3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.box_size = 5
    assert pickle.loads(pickle.dumps(r)) == r
    assert hash(r) == hash(Recentering(centroid='2dg', max_shift=3))


@pytest.mark.parametrize('centroid', ['com', '2dg'])
def test_finds_the_stars_and_matches_the_function_form(frame, centroid):
    sky = SkyEstimate(100.0, 2.0, frame.size)
    start = np.c_[TRUE_X + [1.4, -1.1, 0.6], TRUE_Y + [-0.9, 1.3, 1.2]]
    r = Recentering(centroid=centroid, box_size=9)
    new, ok = r(frame, start, sky)
    assert ok.tolist() == [True, True, True]
    np.testing.assert_allclose(new, np.c_[TRUE_X, TRUE_Y], atol=0.05)
    same, same_ok = recenter_positions(frame, start, sky, centroid=centroid,
                                       box_size=9)
    np.testing.assert_array_equal(same, new)
    np.testing.assert_array_equal(same_ok, ok)


def test_keeps_the_input_where_unsure(frame):
    sky = SkyEstimate(100.0, 2.0, frame.size)
    start = np.array([[TRUE_X[0] + 1.4, TRUE_Y[0]], [48.0, 45.0]])
    # a blank position, and a star farther than max_shift
    new, ok = Recentering()(frame, start, sky)
    assert ok.tolist() == [True, False]
    np.testing.assert_array_equal(new[1], start[1])
    new, ok = Recentering(max_shift=1.0)(frame, start[:1], sky)
    assert ok.tolist() == [False]
    np.testing.assert_array_equal(new, start[:1])
    # a masked star is not followed
    mask = np.zeros(frame.shape, bool)
    mask[10:22, 8:22] = True
    _, ok = Recentering()(frame, start[:1], sky, mask=mask)
    assert ok.tolist() == [False]
