"""A whole-frame level on a frame whose sky falls away (a vignette's
corners, a halo's outskirts): the source mask masks the noise's lows to
balance its highs, but not the sky's own large low ground
(``LOW_SKY_BLOCKS``), which masked lifted the level above the frame's
blank sky; the blank sums against the level then scatter as their errors
say (the offsets of the background carried in the ``sky_offset`` term)."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.data import get_pkg_data_filename
from astropy.utils.exceptions import AstropyUserWarning
from scipy.ndimage import gaussian_filter
from test_noise_real import blank_scatter

from ccdphot_ext import ApertureNoise, BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background import globalsky
from ccdphot_ext.background.noise import (
    _blank_corners,
    _robust_std,
    _source_mask,
)

SIDES = (3, 7, 11)


def vignetted_frame(seed, depth, size=256, sigma=5.0):
    """White noise of ``sigma`` on a sky of 100 that falls by ``depth`` to
    the corners as the fourth power of the distance from the centre (a
    vignette), and the true sky."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / (size / 2.0) - 1.0
    truth = 100.0 - depth * (np.hypot(x, y) / np.sqrt(2.0)) ** 4
    return truth + rng.normal(0.0, sigma, truth.shape), truth


def test_ngc1316_scan_global_route_every_row_within_criterion():
    """astropy's scan of NGC 1316 (comp.fits, extension 1: a galaxy's halo
    over the whole frame, neighbouring pixels correlated at 0.97) against
    its whole-frame level, every row as it is (all but a few flagged 32):
    its blank sums scatter 0.85-1.2 times their errors at 3, 7 and 11 px
    (0.77, 0.78, 0.58 when the mask took its corners, 509 blocks of sky
    12 data units below the rest, out of the level)."""
    path = get_pkg_data_filename('data/comp.fits',
                                 package='astropy.io.fits.tests')
    data = np.asarray(fits.getdata(path, 1), dtype=float)
    ratios, noise, _ = blank_scatter(data, 'global', as_they_are=True)
    assert noise.trend_removed and noise.correlated
    assert all(0.85 <= r <= 1.2 for r in ratios.values()), ratios
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(data)
    # the level is that of the blank sky between the halo and the corners
    resid = data - sky.value
    blank = ~_source_mask(resid, sky.std, np.zeros(data.shape, dtype=bool))
    assert abs(np.mean(resid[blank])) < 3.0 * sky.std  # it was 3.8


@pytest.mark.parametrize('depth', [10.0, 20.0, 40.0])
def test_vignetted_level_is_the_mean_sky(depth):
    """Monte Carlo, 4 frames a depth: corners 2, 4 and 8 pixel standard
    deviations below the centre. The level's pulls on the true sky's mean
    average -0.2, 0.0 and 1.4 (with the corners masked 26, 62 and 128),
    and none of the sky's low ground is masked."""
    pulls = []
    for seed in range(4):
        data, truth = vignetted_frame(seed, depth)
        sky = SkyEstimate.from_image(data)
        pulls.append((sky.value - truth.mean()) / sky.error_on_mean)
        assert sky.meta.get('n_masked_sources', 0) < 0.02 * data.size
    assert abs(np.mean(pulls)) < (0.6 if depth < 30 else 2.5), pulls


def test_vignetted_frames_blank_sums_pull_test():
    """Monte Carlo, 4 vignetted frames (corners 2 and 4 pixel standard
    deviations down), 300 blank boxes each, against the whole-frame level
    with the noise model measured there: every row's pull (the bias of
    the background at the row carried in its sky_offset term) spreads by
    1 +- 0.1 at 3, 7 and 11 px: 0.96, 0.93, 0.95, root mean square 0.97,
    0.94, 1.02 (with the corners masked 0.92, 0.84, 0.87 and 0.92, 0.84,
    0.86: the errors too large)."""
    pulls = {side: [] for side in SIDES}
    for seed, depth in enumerate((10.0, 10.0, 20.0, 20.0)):
        data, _ = vignetted_frame(seed, depth)
        rng = np.random.default_rng(100 + seed)
        sky = SkyEstimate.from_image(data)
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
        assert noise.trend_removed
        resid = data - sky.value
        bad = _source_mask(resid, sky.std, np.zeros(data.shape, dtype=bool))
        for side in SIDES:
            y0, x0 = _blank_corners(bad, side, 300, rng)
            centres = np.column_stack([x0, y0]) + (side - 1) / 2.0
            with warnings.catch_warnings():  # the background varies
                warnings.simplefilter('ignore', AstropyUserWarning)
                t = photometer(data, BoxAperture(centres, side, side), sky,
                               noise=noise)
            pulls[side].append(np.asarray(t['aperture_sum'])
                               / np.asarray(t['aperture_sum_err']))
    for side, p in pulls.items():
        p = np.concatenate(p)
        assert _robust_std(p) == pytest.approx(1.0, abs=0.1), side
        assert 0.9 < np.sqrt(np.mean(p * p)) < 1.2, side


@pytest.mark.parametrize('smooth', [0.0, 2.0, 4.0])
def test_noise_makes_no_low_ground(smooth, monkeypatch):
    """Flat frames of white and of smoothed noise (Gaussians of 2 and 4
    px; their low segments were at most 11 blocks on 20 frames of 256 x
    256): the level is what it was with every low segment masked; a
    vignetted frame's is not."""
    levels = []
    for seed in range(4):
        rng = np.random.default_rng(seed)
        img = rng.normal(0.0, 1.0, (256, 256))
        if smooth:
            img = gaussian_filter(img, smooth)
            img /= img.std()
        levels.append(SkyEstimate.from_image(100.0 + 5.0 * img).value)
    vignetted = SkyEstimate.from_image(vignetted_frame(0, 20.0)[0]).value
    monkeypatch.setattr(globalsky, 'LOW_SKY_BLOCKS', 10 ** 9)
    for seed, level in enumerate(levels):
        rng = np.random.default_rng(seed)
        img = rng.normal(0.0, 1.0, (256, 256))
        if smooth:
            img = gaussian_filter(img, smooth)
            img /= img.std()
        assert SkyEstimate.from_image(100.0 + 5.0 * img).value == level
    masked = SkyEstimate.from_image(vignetted_frame(0, 20.0)[0]).value
    assert masked - vignetted > 1.0  # 1.4: the corners' 400 blocks out
