# Licensed under a 3-clause BSD style license - see LICENSE
"""Optimal extraction with cosmic-ray hits on bright stars' cores: the
frame's sharp-pixel rule cannot see them (the star's light fills the
neighbours), the star's own model does: a pixel far above the fitted
``F P`` (in the model's noise, the star's photon noise in it) and above
its neighbours' residuals is left out of the weights and the row flagged
1024."""

import math
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import SkyEstimate
from ccdphot_ext.datasets.sample import render_stars
from ccdphot_ext.flags import FLAG_PSF_MISMATCH, FLAG_SHARP_PIXEL
from ccdphot_ext.photometry.optimal import optimal_extraction

SIGMA = 1.6


def _frame(seed, hits=True):
    """A 128 x 128 frame (sky 500 e-, gain 1, read noise 5) of 25 stars
    of 1e4-1e6 e- 24 pixels apart; on every other star a hit of
    2000-30000 e- on the star's peak pixel or one beside it."""
    rng = np.random.default_rng(seed)
    grid = np.arange(16, 120, 24.0)
    gx, gy = np.meshgrid(grid, grid)
    x = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    y = gy.ravel() + rng.uniform(-0.5, 0.5, gy.size)
    flux = np.exp(rng.uniform(math.log(1e4), math.log(1e6), x.size))
    model = 500.0 + render_stars((128, 128), x, y, flux, sigma=SIGMA)
    data = rng.poisson(model) + rng.normal(0.0, 5.0, model.shape)
    hit = np.zeros(x.size, dtype=bool)
    if hits:
        hit[::2] = True
    for i in np.flatnonzero(hit):
        hx = int(round(x[i])) + int(rng.integers(-1, 2))
        hy = int(round(y[i])) + int(rng.integers(-1, 2))
        data[hy, hx] += math.exp(rng.uniform(math.log(2e3), math.log(3e4)))
    sky = SkyEstimate(500.0, math.sqrt(525.0), 10 ** 9)
    return data, sky, x, y, flux, hit


def _rows(data, sky, x, y, flux, gain=1.0):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', AstropyUserWarning)
        rows = [optimal_extraction(data, (a, b), SIGMA, sky, gain=gain)
                for a, b in zip(x, y, strict=True)]
    flags = np.array([r.flags for r in rows])
    pulls = np.array([(r.flux - f) / r.flux_err
                      for r, f in zip(rows, flux, strict=True)])
    return rows, flags, pulls, [str(w.message) for w in caught]


def test_core_hits_left_out_and_flagged():
    """Weighted, the 13 hits read their stars -1.4 to +78 errors high (10
    of them beyond +5), the stars' width 0.990 of the PSF's and fail the
    frame's PSF check (every row flagged 256, 2 of the hits 1024): now
    each is left out, its star flagged 1024 and read within its errors
    (-2.0 to +1.3), the frame's PSF and width (1.000) those of its stars,
    the clean stars unflagged."""
    data, sky, x, y, flux, hit = _frame(11)
    rows, flags, pulls, said = _rows(data, sky, x, y, flux)
    assert np.all(flags[hit] & FLAG_SHARP_PIXEL)
    assert not np.any(flags[~hit])
    assert not np.any(flags & FLAG_PSF_MISMATCH)
    assert rows[0].frame_psf['fits']
    assert rows[0].frame_psf['width_scale'] == pytest.approx(1.0, abs=0.003)
    assert np.max(np.abs(pulls)) < 3.0
    # each hit star lost a pixel or two of its weights, the clean none
    lost = np.array([np.count_nonzero(r.weights[r.psf > 0] == 0)
                     for r in rows])
    assert np.all((lost[hit] >= 1) & (lost[hit] <= 2))
    assert not np.any(lost[~hit])
    assert any("far above this star's model" in s and 'flag 1024' in s
               for s in said)


@pytest.mark.parametrize('seed', [12, 13])
def test_clean_bright_cores_not_flagged(seed):
    """Without hits no star of 1e4-1e6 e- loses a pixel or a flag: the
    pulls of the 50 stars spread as their errors say."""
    data, sky, x, y, flux, _ = _frame(seed, hits=False)
    rows, flags, pulls, said = _rows(data, sky, x, y, flux)
    assert not np.any(flags)
    assert all(np.all(r.weights[r.psf > 0] > 0) for r in rows)
    assert np.max(np.abs(pulls)) < 3.5
    assert not any('sharper than the frame' in s for s in said)


def test_no_gain_no_judgement():
    """Without a gain the model's noise holds no photon noise of the
    star: nothing is judged against it (the hits stay in the weights,
    the frame's check flags them 256)."""
    data, sky, x, y, flux, hit = _frame(11)
    rows, flags, _, _ = _rows(data, sky, x[:3], y[:3], flux[:3], gain=None)
    assert not np.any(flags & FLAG_SHARP_PIXEL)
    assert np.all(flags & FLAG_PSF_MISMATCH)
    assert all(np.all(r.weights[r.psf > 0] > 0) for r in rows)
