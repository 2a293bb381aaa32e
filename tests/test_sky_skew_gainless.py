"""A whole-frame level measured without the gain: a sigma-clipped mean or
a median reads a Poisson sky low by its skewness; the skew measured on
the frame's own pixels is removed where it shows, and a sky of white
noise keeps its estimator's level. Level offsets over seeded frames,
each against the plain mean of its own pixels (unbiased whatever the
skewness), which takes out most of the frame's noise."""

import warnings

import numpy as np
import pytest
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import SkyEstimate, simulate_frame
from ccdphot_ext.background.estimators import skew_bias_factor


def _offsets(frames, method):
    out, errors = [], []
    for data in frames:
        sky = SkyEstimate.from_image(data, method=method)
        out.append((sky.value - np.mean(data)) / sky.error_on_mean)
        errors.append(sky)
    return np.array(out), errors


@pytest.mark.parametrize('method', ['sigma_clip', 'median'])
def test_gainless_poisson_sky_level(method):
    """25 e- a pixel at 0.25 e-/ADU (100 ADU, read noise 2 e-; mu3 /
    sigma**2 = 3.45 ADU), 256 x 256, no gain given: the clipped mean read
    it 2.0 of its errors low and the median 5.8 (before); now within 0.3
    of its error (first order in a skewness of 0.16: the clipped mean
    0.15 high, the median 0.24 low), the shift the estimator's skew bias
    at the simulated skewness, the error grown by the third moment's
    sampling error."""
    rng = np.random.default_rng(11)
    frames = [(rng.poisson(25.0, (256, 256))
               + rng.normal(0.0, 2.0, (256, 256))) / 0.25 for _ in range(16)]
    offsets, skies = _offsets(frames, method)
    assert abs(np.mean(offsets)) < 0.3
    assert np.std(offsets) < 0.6
    factor = skew_bias_factor(method)
    biases = np.array([s.meta['estimator_bias'] for s in skies])
    # the photons' mu3 / sigma**2: 25 / 0.25**3 / (29 / 0.25**2) = 3.45
    assert np.mean(biases) == pytest.approx(-factor * 3.45, rel=0.15)
    before = np.array([(s.value + s.meta['estimator_bias'] - np.mean(d))
                       / s.error_on_mean for s, d in zip(skies, frames,
                                                           strict=True)])
    assert np.mean(before) < {'sigma_clip': -1.5, 'median': -4.0}[method]
    for sky in skies:
        plain = sky.efficiency * sky.std / np.sqrt(sky.n_pix)
        assert sky.error_on_mean == pytest.approx(
            np.hypot(plain, sky.meta['estimator_bias_error']), rel=1e-9)
        assert 'no gain' in sky.meta['estimator_bias_note']
    # pulls against the truth
    pulls = [(s.value - 100.0) / s.error_on_mean for s in skies]
    assert np.std(pulls) == pytest.approx(1.0, abs=0.35)


def test_gainless_bright_sky_level():
    """The sample frame's sky (1035 ADU at 2.23 e-/ADU, read noise 12 e-),
    512 x 512, no gain: the clipped mean read it 0.43 of its errors low;
    now 0.12 +- 0.06 (10 frames)."""
    rng = np.random.default_rng(12)
    frames = [(rng.poisson(1035.0 * 2.23, (512, 512))
               + rng.normal(0.0, 12.0, (512, 512))) / 2.23 for _ in range(10)]
    offsets, skies = _offsets(frames, 'sigma_clip')
    assert abs(np.mean(offsets)) < 0.2
    assert np.mean(offsets) > -0.3  # was -0.43
    # the skew shown (3.9 sampling errors on average) on most frames
    assert sum(s.meta.get('estimator_bias', 0.0) < 0 for s in skies) >= 7


def test_white_noise_keeps_the_estimators_level():
    """A Gaussian sky shows no skew: the level is the estimator's, no
    bias recorded, its error as before; so is the plain statistic
    (``mask_sources=False``) of a skewed one; with the gain nothing
    changes."""
    rng = np.random.default_rng(13)
    for _ in range(8):
        data = rng.normal(1000.0, 20.0, (256, 256))
        sky = SkyEstimate.from_image(data, method='median')
        assert sky.value == np.median(data)
        assert 'estimator_bias' not in sky.meta
    data = (rng.poisson(25.0, (128, 128))
            + rng.normal(0.0, 2.0, (128, 128))) / 0.25
    # the plain statistic asked for (no source mask) is the estimator's
    plain = SkyEstimate.from_image(data, method='median', mask_sources=False)
    assert plain.value == np.median(data)
    assert 'estimator_bias' not in plain.meta
    with_gain = SkyEstimate.from_image(data, gain=0.25)
    assert 'estimator_bias_error' not in with_gain.meta
    assert 'no gain' not in with_gain.meta['estimator_bias_note']


def _crowded(seed, n_stars):
    """``n_stars`` Gaussian stars (1.8 px) of 300 to 10**4 ADU on 512 x 512
    pixels of the sample frame's sky (1035 ADU at 2.23 e-/ADU, read noise
    12 e-)."""
    rng = np.random.default_rng(7000 + seed)
    x, y = rng.uniform(0.0, 512.0, (2, n_stars))
    stars = Table({'x': x, 'y': y,
                   'flux': 10 ** rng.uniform(np.log10(300.0), 4.0, n_stars)})
    return simulate_frame((512, 512), 1035.0, stars, gain=2.23,
                          read_noise=12.0, psf_sigma=1.8, seed=rng)[0]


def test_crowded_gainless_level_warns_of_the_skew_it_keeps():
    """300 stars: the source mask (about 60% of the frame) leaves too few
    pixels to show even a sky of photons alone skewed (its ratio std**2 /
    level under 3 sampling errors), and the faint stars' light skews them
    too: the clipped mean keeps its estimator's bias, 0.32 of its errors
    low on 12 frames (against the same mask's level of the star-less
    frame), and now warns of it (12 of 12 frames; 20-50 stars: none),
    naming the gain; the bound is that bias were the sky all photons."""
    data = _crowded(0, 300)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')  # (and the crowding bound's)
        sky = SkyEstimate.from_image(data)
    assert all(w.category is AstropyUserWarning for w in said)
    kept = [str(w.message) for w in said if 'pass gain=' in str(w.message)]
    assert len(kept) == 1
    assert kept[0].startswith('no gain: the sigma_clip estimator reads a '
                              'Poisson sky low by up to')
    assert 'estimator_bias' not in sky.meta  # the level is the estimator's
    bound = sky.meta['estimator_bias_bound']
    expected = skew_bias_factor('sigma_clip') * sky.std ** 2 / sky.value
    assert bound == pytest.approx(expected, rel=1e-9)
    # 0.35 of the level's error here (0.0229 ADU: the photons' own bias is
    # 0.0203, the sky's read noise keeping it under the bound)
    assert 0.25 < bound / sky.error_on_mean < 0.5
    # with the gain the level is solved under the photons' model: no bound
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)  # crowding
        with_gain = SkyEstimate.from_image(data, gain=2.23)
    assert 'estimator_bias_bound' not in with_gain.meta
    # a frame of 40 stars shows its skew: removed, not warned of
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')  # (the crowding bound's)
        few = SkyEstimate.from_image(_crowded(2, 40))
    assert not any('pass gain=' in str(w.message) for w in said)
    assert few.meta['estimator_bias'] < 0
    assert 'estimator_bias_bound' not in few.meta
