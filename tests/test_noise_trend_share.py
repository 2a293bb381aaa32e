"""The share of the blank sky's large-scale trend that blank sums carry
(``ApertureNoise.trend_carried``): the slope of the sums on the trend's
sums, at most 1; the model's points are the sums' scatter about that
share, and the ``sky_offset`` term is that share of the trend."""

import numpy as np
import pytest

from ccdphot_ext import ApertureNoise
from ccdphot_ext.background.noise import _robust_std, _trend_carried


def _sums(rng, share, n=1000, outliers=0):
    trend = rng.uniform(-300.0, 300.0, n)
    sums = share * trend + rng.normal(0.0, 100.0, n)
    if outliers:  # faint stars in a few boxes
        sums[:outliers] += rng.uniform(1000.0, 5000.0, outliers)
    return sums, trend


@pytest.mark.parametrize('share', [0.0, 0.5, 0.8, 1.0])
def test_share_is_the_slope_of_the_sums_on_the_trend(share):
    rng = np.random.default_rng(1)
    found = [_trend_carried(*_sums(rng, share)) for _ in range(20)]
    # the slope's error: 100 / (173 sqrt(1000)) = 0.018
    assert abs(np.mean(found) - min(share, 1.0)) < 0.015, found
    assert all(0.0 <= f <= 1.0 for f in found)


def test_outliers_are_clipped_as_in_the_scatter():
    rng = np.random.default_rng(2)
    sums, trend = _sums(rng, 0.8, outliers=30)
    share = _trend_carried(sums, trend)
    assert share == pytest.approx(0.8, abs=0.05)
    # without the clip the 30 bright boxes would have moved it
    t = trend - trend.mean()
    assert abs(np.sum(t * sums) / np.sum(t * t) - 0.8) > abs(share - 0.8)
    # and the scatter about it is the noise's
    assert _robust_std(sums - share * trend) == pytest.approx(100.0, rel=0.1)


def test_share_is_at_most_one_and_one_without_spread():
    rng = np.random.default_rng(3)
    assert _trend_carried(*_sums(rng, 1.4)) == 1.0
    assert _trend_carried(*_sums(rng, -0.5)) == 0.0
    flat = np.full(500, 40.0)
    assert _trend_carried(rng.normal(0.0, 1.0, 500) + flat, flat) == 1.0


def _model(carried, trend_removed=True):
    n_pix = np.array([1.0, 9.0, 49.0, 121.0])
    return ApertureNoise(
        2.0, 1.0, 0.5, n_pix=n_pix, sigma=2.0 * np.sqrt(n_pix),
        sigma_err=0.1 * np.sqrt(n_pix), n_apertures=[500] * 4,
        meta={'trend_removed': trend_removed,
              'trend': [1.0, 0.5, 0.0, 0.0, 0.0, 0.0],
              'trend_carried': carried})


def test_trend_carried_is_interpolated_in_log_n():
    noise = _model([1.0, 1.0, 0.8, 0.8])
    assert noise.trend_carried(9.0) == 1.0
    assert noise.trend_carried(49.0) == pytest.approx(0.8)
    # halfway between 9 and 49 pixels in log N
    assert noise.trend_carried(21.0) == pytest.approx(0.9, abs=1e-12)
    # the nearest size's beyond them
    np.testing.assert_allclose(noise.trend_carried([0.5, 441.0]),
                               [1.0, 0.8])
    # no trend taken out (or a model made by hand): all of it, 1
    assert _model([0.5] * 4, trend_removed=False).trend_carried(49.0) == 1.0
    assert _model(None).trend_carried(49.0) == 1.0
