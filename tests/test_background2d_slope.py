# Licensed under a 3-clause BSD style license - see LICENSE
"""Background2D on a sky that slopes across the frame: the level, its
error and the blank-aperture noise measured against the map (Monte Carlo
on seeded frames, a few seconds each)."""

import math
import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture, aperture_photometry

from ccdphot_ext import ApertureNoise, SkyEstimate, photometer
from ccdphot_ext.background.estimators import (
    clipped_median_skew_factor,
    skew_bias_factor,
)
from ccdphot_ext.background.maps import frame_background2d

SHAPE = (256, 256)
READ_NOISE = 5.0


def _sky(slope):
    """A sky of 50 e- rising by ``slope`` times that across x."""
    xx = np.mgrid[:SHAPE[0], :SHAPE[1]][1]
    return 50.0 * (1.0 + slope * xx / SHAPE[1])


def _frame(truth, rng):
    return (rng.poisson(truth)
            + rng.normal(0.0, READ_NOISE, truth.shape)).astype(float)


def _map(data):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        bkg, _ = frame_background2d(data, box_size=32)
        return SkyEstimate.from_background2d(
            bkg, data=CCDData(data, unit='electron'), gain=1.0)


def test_mesh_estimator_reads_a_sloped_poisson_sky_low_by_the_mixture():
    """A mesh on a slope holds pixels of different levels, and those on its
    bright side scatter more (Poisson): the third moment of its pixels
    gains three times the level's variance over the mesh, and photutils'
    Source Extractor estimator reads 0.5 to 0.7 e- low (sky 50 to 250 e-
    across 256 pixels, 32-pixel meshes), where the photons' skewness alone
    gives 0.2 to 0.3."""
    truth = _sky(4.0)
    true_mesh = truth.reshape(8, 32, 8, 32).mean(axis=(1, 3))
    rng = np.random.default_rng(3)
    offsets = []
    for _ in range(16):
        bkg, _ = frame_background2d(_frame(truth, rng), box_size=32)
        offsets.append(np.asarray(bkg._bkg_stats) - true_mesh)
    measured = np.mean(offsets, axis=(0, 1))
    factor = (2.5 * clipped_median_skew_factor(3.0)
              - 1.5 * skew_bias_factor('sigma_clip', 3.0))
    spread = (50.0 * 4.0 / 256.0) ** 2 * (32 ** 2 - 1) / 12.0
    level = true_mesh.mean(axis=0)
    photons = -factor * level / (level + READ_NOISE ** 2 + spread)
    mixture = -factor * (level + 3.0 * spread) / (level + READ_NOISE ** 2
                                                  + spread)
    assert np.mean(measured) < 2.0 * np.mean(photons)
    # (the outermost columns: photutils' clip at the frame's edge)
    assert np.mean(measured[1:]) == pytest.approx(np.mean(mixture[1:]),
                                                  abs=0.06)
    np.testing.assert_allclose(measured[1:], mixture[1:], atol=0.2)


@pytest.mark.parametrize('slope, bar', [(2.0, 0.1), (4.0, 0.15)])
def test_level_on_a_sloped_sky_is_unbiased_and_its_error_honest(slope, bar):
    """photutils' median filter flattens the slope at the grid's edges and
    its spline carries that inwards: the level was 13 e- off at the edge
    meshes (counted as error, not removed) and 0.3 e- low inside (the
    mixture's skewness), pulls -0.27 (interior -0.39). The offset from the
    fitted quadratic sky now leaves the level, the mixture's skewness is
    in the estimator's bias: pulls -0.05, spread 0.95 at 4 times the sky
    across the frame (20 frames; -0.11 over these 12, whose mean has an
    error of about 0.05)."""
    truth = _sky(slope)
    rng = np.random.default_rng(3)
    pulls = []
    for _ in range(12):
        sky = _map(_frame(truth, rng))
        assert sky.meta['slope_fits']
        pulls.append(((sky.value - truth) / sky.error_on_mean)[::8, ::8])
    pulls = np.concatenate(pulls).ravel()
    assert abs(np.mean(pulls)) < bar
    assert 0.85 < np.std(pulls) < 1.1


def test_flat_sky_map_is_untouched_by_the_slope_terms():
    """No slope beyond the noise: no offset, no spread, photutils' rms."""
    rng = np.random.default_rng(4)
    data = _frame(_sky(0.0), rng)
    sky = _map(data)
    assert 'slope_offset' not in sky.meta
    assert 'slope_spread_rms' not in sky.meta


def test_blank_noise_against_a_sloped_map_is_white():
    """White noise on a sky rising from 50 to 250 e-: the blank sums
    against the map hold the map's own error (the photometry's sky_mean
    term), which the noise model read as correlated noise (sigma(N) up to
    1.38 times the white one at 380 pixels) and the budget counted twice
    (blank sums over their error 0.75 at r = 11). With the map's share
    left out of the blank sums, 0.87 to 1.0 and 0.93 to 1.11."""
    truth = _sky(4.0)
    rng = np.random.default_rng(0)
    data = _frame(truth, rng)
    ccd = CCDData(data, unit='electron')
    sky = _map(data)
    noise = ApertureNoise.from_blank_apertures(ccd, sky, seed=0)
    assert noise.meta['map_error_removed']
    white = math.sqrt(np.mean(truth) + READ_NOISE ** 2)
    level = np.asarray(sky.value)
    for r in (3, 7, 11):
        n = math.pi * r * r
        assert 0.85 < noise(n) / (white * math.sqrt(n)) < 1.1
        pos = np.c_[rng.uniform(15, 241, 300), rng.uniform(15, 241, 300)]
        aps = CircularAperture(pos, r)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            table = photometer(ccd, aps, sky, gain=1.0, noise=noise)
        sums = np.asarray(aperture_photometry(data - level, aps)[
            'aperture_sum'])
        ratio = np.std(sums / np.asarray(table['aperture_sum_err'].value))
        assert 0.85 < ratio < 1.2, (r, ratio)
