# Licensed under a 3-clause BSD style license - see LICENSE
"""The error of a sky level from an uncertainty map carries the estimator's
efficiency: a median (or clipped mean) of the pixels scatters more than
their mean, whose error is the propagated sqrt(sum(sigma**2)) / n."""

import math

import numpy as np
import pytest
from photutils.aperture import CircularAnnulus

from ccdphot_ext import SkyEstimate


def _pulls(method, n_frames=400, seed=11):
    rng = np.random.default_rng(seed)
    glob, ann = [], []
    annulus = CircularAnnulus([(20, 20), (44, 40)], 6, 10)
    for _ in range(n_frames):
        sigma = np.full((64, 64), 5.0)
        img = 100.0 + rng.normal(size=sigma.shape) * sigma
        sky = SkyEstimate.from_image(img, method=method, uncertainty=sigma,
                                     mask_sources=False)
        glob.append((float(sky.value) - 100.0) / float(sky.error_on_mean))
        local = SkyEstimate.from_annulus(img, annulus, method=method,
                                         uncertainty=sigma)
        ann.extend((local.value - 100.0) / local.error_on_mean)
    return np.array(glob), np.array(ann)


@pytest.mark.parametrize('method', ['median', 'sigma_clip'])
def test_level_pulls_with_an_uncertainty_map(method):
    glob, ann = _pulls(method)
    for pulls in (glob, ann):
        assert abs(pulls.mean()) < 0.1
        assert 0.92 < pulls.std() < 1.08  # a median without k: 1.25


def test_mean_keeps_the_propagated_error():
    rng = np.random.default_rng(2)
    sigma = rng.uniform(4.0, 6.0, (40, 50))
    img = 100.0 + rng.normal(size=sigma.shape) * sigma
    sky = SkyEstimate.from_image(img, method='mean', uncertainty=sigma,
                                 mask_sources=False)
    assert sky.error_on_mean == math.sqrt(np.sum(sigma ** 2)) / sigma.size
    med = SkyEstimate.from_image(img, method='median', uncertainty=sigma,
                                 mask_sources=False)
    assert med.error_on_mean == pytest.approx(
        math.sqrt(math.pi / 2) * sky.error_on_mean, rel=1e-12)
    assert med.meta['error_on_mean_from'] == 'uncertainty map'
