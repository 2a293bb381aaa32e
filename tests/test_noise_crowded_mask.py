"""ApertureNoise on crowded frames: the matched filter of the blank
apertures' source mask reads the filtered sky's level and scatter again
without the bright sources (on a crowded frame they held the lower half
it reads them from, and its thresholds were several times the noise), so
that the faint stars' light stays out of the blank sums and the pixel
pairs; beyond the largest blank aperture the pixel-pair sums are not
scaled down to the blank sums, which the source mask selects low."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from scipy.ndimage import uniform_filter
from scipy.signal import convolve2d

from ccdphot_ext import ApertureNoise, SkyEstimate
from ccdphot_ext.background.noise import _source_mask
from ccdphot_ext.datasets.sample import render_stars

SIGMA = 15.0


def _exact(side, k):
    """The scatter of a side x side sum of uniform_filter(white, k)."""
    w = convolve2d(np.ones((side, side)), np.ones((k, k)) / (k * k))
    return SIGMA * float(np.sqrt(np.sum(w * w)))


def _crowded(seed, k=3):
    """1000 stars of 300-30000 ADU (1.5 px) on 300 x 300 pixels of k x
    k-correlated noise (pixel noise 5 for k = 3): the stars, the frame
    and its whole-frame sky."""
    rng = np.random.default_rng(1000 + seed)
    x, y = rng.uniform(0, 300, (2, 1000))
    flux = 10 ** rng.uniform(2.5, 4.5, 1000)
    stars = render_stars((300, 300), x, y, flux, sigma=1.5)
    img = 100.0 + stars + uniform_filter(rng.normal(0.0, SIGMA, (300, 300)),
                                         k)
    with warnings.catch_warnings():  # 'sources cover' most of the frame
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(img)
    return (x, y, flux, stars), img, sky


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_faint_stars_of_a_crowded_frame_are_masked(seed):
    """Stars of 300-600 ADU (peaks 4-8 times the pixel noise) whose
    centre the mask covered: 0.87-0.93 before, 0.94-0.99 now; the light
    of all stars left on the blank pixels, root mean square 1.9-2.7 ADU
    (against a pixel noise of 5) before, 0.9-1.5 now."""
    (x, y, flux, stars), img, sky = _crowded(seed)
    resid = img - sky.value
    mask = _source_mask(resid, sky.std, np.zeros(img.shape, dtype=bool))
    inside = (x > 5) & (x < 295) & (y > 5) & (y < 295)
    faint = inside & (flux < 600)
    found = mask[y[faint].round().astype(int),
                 x[faint].round().astype(int)].mean()
    assert found > 0.935
    assert np.sqrt(np.mean(stars[~mask] ** 2)) < 1.6
    # the mask grows little (82-83% of the frame before)
    assert mask.mean() < 0.85


def test_crowded_correlated_frames_pull_test():
    """The sky term's error bars on 3 x 3-correlated crowded frames at
    2000 random positions (where the stars of such a frame lie; the sky
    term times the local noise ratio there squared, as the photometry
    takes it): over these 4 frames the sums of pure noise would scatter
    0.95, 0.88 and 0.88 times their error at 3, 7 and 11 pixels before,
    0.99, 0.96 and 1.00 now (frames 0-3: 0.98, 0.95, 0.97 before, 1.00,
    0.99, 1.02 now; frames 8-11: 0.93, 0.86, 0.83 before, 0.98, 0.95,
    0.95 now; 16 frames of another rendering: 0.95, 0.90, 0.90 before,
    0.99, 0.97, 0.99 now)."""
    pos = np.random.default_rng(7).uniform(10, 290, (2, 2000))
    pulls = {side: [] for side in (3, 7, 11)}
    for seed in range(4, 8):
        _, img, sky = _crowded(seed)
        noise = ApertureNoise.from_blank_apertures(img, sky, seed=seed)
        local = noise.local_ratio(pos[0], pos[1])
        for side, spread in pulls.items():
            # the exact scatter over the error bars, every position
            spread.append(_exact(side, 3) / (noise(side * side) * local))
    for side, spread in pulls.items():
        std = float(np.sqrt(np.mean(np.square(spread))))
        assert abs(std - 1.0) < 0.05, (side, std)
