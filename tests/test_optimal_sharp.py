# Licensed under a 3-clause BSD style license - see LICENSE
"""Optimal extraction on frames with cosmic-ray hits: the pixels sharper
than the frame's stars (background/outliers.py, photometer's flag 1024)
are left out of the weights, and a star with one in its footprint is
flagged 1024 (not 2), as photometer flags the aperture holding one."""

import math
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import SkyEstimate
from ccdphot_ext.datasets.sample import render_stars
from ccdphot_ext.flags import (
    FLAG_BAD_PIXELS,
    FLAG_PSF_MISMATCH,
    FLAG_SHARP_PIXEL,
)
from ccdphot_ext.photometry.optimal import optimal_extraction

SIGMA = 1.6


def _frame(seed):
    """A 128 x 128 frame (sky 500 e-, gain 1, read noise 5) of 25 stars
    of 1000-3000 e- 20 pixels apart; a hit of 1500-4000 e- (a second
    pixel beside it on odd stars) two pixels from each even star."""
    rng = np.random.default_rng(seed)
    grid = np.arange(20, 110, 20.0)
    gx, gy = np.meshgrid(grid, grid)
    x = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    y = gy.ravel() + rng.uniform(-0.5, 0.5, gy.size)
    flux = rng.uniform(1000.0, 3000.0, x.size)
    model = 500.0 + render_stars((128, 128), x, y, flux, sigma=SIGMA)
    data = rng.poisson(model) + rng.normal(0.0, 5.0, model.shape)
    hit = np.zeros(x.size, dtype=bool)
    hit[::2] = True
    for i in np.flatnonzero(hit):
        hx, hy = int(round(x[i])) + 2, int(round(y[i])) + 1
        data[hy, hx] += rng.uniform(1500.0, 4000.0)
        if i % 4 == 2:  # a hit of two pixels
            data[hy, hx + 1] += rng.uniform(500.0, 1500.0)
    return data, SkyEstimate(500.0, math.sqrt(525.0), 10 ** 9), x, y, flux, hit


def _extract(data, sky, x, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', AstropyUserWarning)
        rows = [optimal_extraction(data, (a, b), SIGMA, sky, gain=1.0)
                for a, b in zip(x, y, strict=True)]
    return rows, [str(w.message) for w in caught]


@pytest.mark.parametrize('seed', [3, 4])
def test_hits_left_out_of_the_weights_and_flagged(seed):
    """Summed with the stars' weights, the hits read the 13 stars beside
    them +7 to +34 of their errors high and the width of the frame's stars
    half the PSF's (every row flagged 256 and none 1024); left out, their
    pulls are those of clean stars (here within +-2.1), flagged 1024."""
    data, sky, x, y, flux, hit = _frame(seed)
    rows, said = _extract(data, sky, x, y)
    flags = np.array([r.flags for r in rows])
    pulls = np.array([(r.flux - f) / r.flux_err
                      for r, f in zip(rows, flux, strict=True)])
    assert np.all(flags[hit] & FLAG_SHARP_PIXEL)
    assert not np.any(flags[~hit] & FLAG_SHARP_PIXEL)
    # the pixels left out are no bad pixels of the frame
    assert not np.any(flags & FLAG_BAD_PIXELS)
    # nor do the hits spoil the frame's PSF check or its width
    assert not np.any(flags & FLAG_PSF_MISMATCH)
    # (summed, the hits read the stars' width at the fit's bound, 0.5)
    assert rows[0].frame_psf['width_scale'] == pytest.approx(1.0, abs=0.04)
    assert np.max(np.abs(pulls)) < 3.5
    assert abs(np.mean(pulls[hit])) < 0.8
    assert any('sharper than the frame' in s and 'flag 1024' in s
               for s in said)


def test_no_hit_no_flag():
    """Without hits no row is flagged 1024 and no pixel is left out."""
    rng = np.random.default_rng(3)
    x, y = np.meshgrid(np.arange(20, 110, 20.0), np.arange(20, 110, 20.0))
    x, y = x.ravel() + 0.3, y.ravel() - 0.2
    data = rng.poisson(500.0 + render_stars(
        (128, 128), x, y, rng.uniform(1e3, 3e4, x.size), sigma=SIGMA)) \
        + rng.normal(0.0, 5.0, (128, 128))
    rows, said = _extract(data, SkyEstimate(500.0, math.sqrt(525.0), 10 ** 9),
                          x, y)
    assert not any(r.flags & FLAG_SHARP_PIXEL for r in rows)
    assert not any('sharper than the frame' in s for s in said)
    assert all(np.all(r.weights[r.psf > 0] > 0) for r in rows)
