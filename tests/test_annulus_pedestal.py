"""Annulus levels of a sky-subtracted frame with ``gain=``: the exact
Poisson model never takes an implausible point for the level, and the
pedestal the frame's annuli share tells their photons."""

import math

import numpy as np
from astropy.stats import sigma_clip
from photutils.aperture import CircularAnnulus

from ccdphot_ext import SkyEstimate
from ccdphot_ext.background.estimators import (
    MAX_LEVEL_SHIFT,
    clip_factors,
    clip_statistics,
    poisson_level,
)

#: 100 annuli of 10-16 px on a 24 px grid of a 256 x 256 frame.
GRID = [(x, y) for x in range(20, 240, 24) for y in range(20, 240, 24)]


def _subtracted(sky_e, read_noise, gain, size, rng):
    """A frame of ``sky_e`` photo-electrons and ``read_noise`` in data
    units at ``gain``, its sky subtracted: a level of 0."""
    return (rng.poisson(sky_e, (size, size))
            + rng.normal(0.0, read_noise, (size, size)) - sky_e) / gain


def test_empty_window_is_no_solution():
    """A clipped mean's equations are moments inside its window: a model
    with nothing there meets them (0 = 0). An annulus of a frame with 20
    e- subtracted (level 1e-4, std 4.5: read noise, as the level reads)
    was 'solved' at 438 e- with an infinite error, and from_annulus
    raised. The solution is now the read noise the level reads."""
    rng = np.random.default_rng(1)
    for _ in range(3):
        data = rng.poisson(20, (256, 256)) + rng.normal(0, 1, (256, 256)) - 20
    ann = CircularAnnulus(GRID, 10, 16)
    pixels = ann[33].to_mask(method='center').get_values(data)
    # the annulus' own 3-sigma clip (as from_annulus clips)
    kept = ~np.ma.getmaskarray(sigma_clip(pixels, sigma=3, maxiters=None,
                                          cenfunc='median', stdfunc='std'))
    stats = clip_statistics(pixels[kept], pixels.size, 3.0)
    std = math.sqrt(stats['var']) * clip_factors(3.0)[0]
    sol = poisson_level(stats, 1.0, stats['mean'], std)
    assert sol is not None
    assert abs(sol['level'] - stats['mean']) < MAX_LEVEL_SHIFT * std
    assert sol['level'] < 1.0
    assert 0 < sol['error_on_mean'] < 2 * std / math.sqrt(pixels.size)
    sky = SkyEstimate.from_annulus(data, ann, gain=1.0)
    assert np.all(np.isfinite(sky.error_on_mean) & (sky.error_on_mean > 0))
    assert np.all(np.abs(sky.value) < 5 * sky.error_on_mean)
