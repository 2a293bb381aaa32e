# Licensed under a 3-clause BSD style license - see LICENSE
"""Optimal extraction measures the PSF's width on the frame's bright stars
and carries its error: a PSF a little off biases no flux on a frame of few
bright stars, where the frame's median test cannot tell."""

import math
import warnings

import numpy as np
import pytest
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import SkyEstimate
from ccdphot_ext.datasets.sample import render_stars, simulate_frame
from ccdphot_ext.photometry.optimal import WIDTH_STEP, optimal_extraction

GAIN = 2.0
SKY = 50.0
SIGMA = 1.5


def _sparse_frame(rng, *, n_bright=2, bright=(1.5e4, 3e4)):
    """A 96 x 96 frame (gain 2, 50 ADU of sky) of nine stars on a grid:
    ``n_bright`` of them bright, the others 200-900 ADU (SNR 6-20, peaks
    below 15 sky sigma)."""
    grid = np.arange(16.0, 96.0, 32.0)
    gx, gy = np.meshgrid(grid, grid)
    x = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    y = gy.ravel() + rng.uniform(-0.5, 0.5, gy.size)
    flux = 10 ** rng.uniform(math.log10(200), math.log10(900), x.size)
    flux[:n_bright] = rng.uniform(*bright, n_bright)
    stars = Table({'x': x, 'y': y, 'flux': flux})
    data, _, _ = simulate_frame((96, 96), SKY, stars, gain=GAIN,
                                read_noise=5.0, psf_sigma=SIGMA, seed=rng)
    sky = SkyEstimate(SKY, math.sqrt(SKY / GAIN + 2.5 ** 2), 10 ** 9)
    return data, sky, x, y, flux


def _faint_pulls(scale, fit_width, n_frames=6, n_bright=2):
    rng = np.random.default_rng(71)
    pulls, checks = [], []
    for _ in range(n_frames):
        data, sky, x, y, flux = _sparse_frame(rng, n_bright=n_bright)
        for i in range(2, x.size):  # the faint stars
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', AstropyUserWarning)
                res = optimal_extraction(data, (x[i], y[i]), scale * SIGMA,
                                         sky, gain=GAIN, fit_width=fit_width)
            if res.flags == 0:
                pulls.append((res.flux - flux[i]) / res.flux_err)
        checks.append(res.frame_psf)
    return np.array(pulls), checks


def test_a_width_off_on_a_frame_of_two_bright_stars_biases_no_flux():
    """Two bright stars cannot vote on a sigma 15% too wide (the median
    test needs three), and the faint stars' own tests pass it: measured
    with the width as given, 200-900 ADU stars read pulls of about +1.5.
    The two stars measure the width to about 1.5%: with it, the pulls are
    centred and of unit spread."""
    biased, checks = _faint_pulls(1.15, False, n_frames=3)
    assert all(c['fits'] is None for c in checks)
    assert biased.size > 15 and biased.mean() > 1.0
    pulls, checks = _faint_pulls(1.15, True)
    assert pulls.size > 30  # most rows unflagged
    # 42 rows sharing 6 widths: the mean known to about 0.2
    assert abs(pulls.mean()) < 0.4
    assert 0.7 < pulls.std() < 1.4
    scales = np.array([c['width_scale'] for c in checks])
    errors = np.array([c['width_scale_err'] for c in checks])
    assert np.all(errors < 0.03)
    assert np.all(np.abs(scales - 1 / 1.15) < 4 * errors)


@pytest.mark.parametrize('scale', [0.8, 1.2])
def test_the_faint_stars_measure_a_width_off_when_none_is_bright(scale):
    """Frames of faint stars alone (200-900 ADU, filtered signal-to-noise
    6-20): measured with the width as given, a PSF 20% off reads the
    pulls -1.0 (narrow) / +0.6 (wide); the stars measure the width
    jointly (each by its information) and the pulls are centred."""
    biased, _ = _faint_pulls(scale, False, n_frames=2, n_bright=0)
    assert abs(biased.mean()) > 0.4
    pulls, checks = _faint_pulls(scale, True, n_frames=8, n_bright=0)
    assert pulls.size > 50  # most rows unflagged
    # 56 rows sharing 8 widths: the mean known to about 0.15
    assert abs(pulls.mean()) < 0.3
    assert 0.8 < pulls.std() < 1.2
    scales = np.array([c['width_scale'] for c in checks])
    errors = np.array([c['width_scale_err'] for c in checks])
    assert np.all(np.abs(scales - 1 / scale) < 4 * errors)


def test_the_width_term_is_the_flux_slope_times_the_width_error():
    """``psf_width`` is the change of the flux with the width times the
    width's error, squared: the change of the star's model (not its noisy
    data) measured at the fitted width times 1 -+ 2%, which on a frame
    without noise is the change of the measured fluxes; the flux is the
    one measured with the fitted width."""
    rng = np.random.default_rng(72)
    data, sky, x, y, flux = _sparse_frame(rng)
    res = optimal_extraction(data, (x[4], y[4]), SIGMA, sky, gain=GAIN)
    s = res.frame_psf['width_scale']
    err = res.frame_psf['width_scale_err']
    assert abs(s - 1.0) < 4 * err
    same = optimal_extraction(data, (x[4], y[4]), SIGMA * s, sky, gain=GAIN,
                              fit_width=False)
    assert res.flux == pytest.approx(same.flux, rel=1e-9)
    assert 'psf_width' not in same.budget.terms
    assert any('PSF width' in note for note in res.budget.notes)
    # the same frame without noise
    clean = SKY + render_stars(data.shape, x, y, flux, sigma=SIGMA)
    res = optimal_extraction(clean, (x[4], y[4]), SIGMA, sky, gain=GAIN)
    s = res.frame_psf['width_scale']
    err = res.frame_psf['width_scale_err']
    lo, hi = (optimal_extraction(clean, (x[4], y[4]), SIGMA * s * f, sky,
                                 gain=GAIN, fit_width=False).flux
              for f in (1 - WIDTH_STEP, 1 + WIDTH_STEP))
    slope = (hi - lo) / (2 * WIDTH_STEP * s)
    assert res.budget.terms['psf_width'] == pytest.approx(
        (slope * err) ** 2, rel=0.01)


def test_the_width_error_shrinks_with_the_bright_stars_signal():
    """The width's error goes as one over the root of the bright stars'
    summed squared signal-to-noise ratios: stars four times brighter
    (background-limited: four times the SNR) measure it about four times
    better (three to five, as the source's photon noise grows)."""
    errors = []
    for bright in ((4e3, 4.0001e3), (1.6e4, 1.60004e4)):
        rng = np.random.default_rng(73)
        data, sky, x, y, flux = _sparse_frame(rng, bright=bright)
        res = optimal_extraction(data, (x[4], y[4]), SIGMA, sky, gain=GAIN)
        errors.append(res.frame_psf['width_scale_err'])
    assert 2.5 < errors[0] / errors[1] < 4.5


def test_a_frame_without_bright_stars_measures_the_width_on_its_faint_ones():
    """No bright star (peaks below 15 sky sigma): the nine faint stars
    (filtered signal-to-noise 6-20) measure the width, to about 3%."""
    rng = np.random.default_rng(74)
    data, sky, x, y, flux = _sparse_frame(rng, n_bright=0)
    res = optimal_extraction(data, (x[4], y[4]), SIGMA, sky, gain=GAIN)
    check = res.frame_psf
    assert check['n_stars'] == 0 and check['width_stars'] == 9
    assert abs(check['width_scale'] - 1.0) < 3 * check['width_scale_err']
    assert 0.01 < check['width_scale_err'] < 0.05
    assert 'psf_width' in res.budget.terms and res.flags == 0
