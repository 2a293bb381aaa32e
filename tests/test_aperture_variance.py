"""How fractional pixels enter the sky variance (sum of w * sigma**2), and
what it does to the pulls of small fractional boxes on white noise."""

import numpy as np
import pytest

from ccdphot_ext import BoxAperture, SkyEstimate, photometer
from ccdphot_ext.aperture.utils import aperture_weights

SIGMA = 10.0


def _pulls(rng, side, theta, n_frames=3, n=40):
    spacing = int(side * 1.5) + 4
    frame = (n * spacing, n * spacing)
    sky = SkyEstimate(0.0, SIGMA, 10 ** 12)  # the level is known exactly
    centres = (np.arange(n) + 0.5) * spacing
    grid = np.array([(x, y) for x in centres for y in centres])
    pulls, ratios = [], []
    for _ in range(n_frames):
        img = rng.normal(0.0, SIGMA, frame)
        xy = grid + rng.uniform(-0.5, 0.5, grid.shape)
        box = BoxAperture(xy, side + 0.37, side + 0.61, theta=theta)
        t = photometer(img, box, sky)
        pulls.append(np.asarray(t['aperture_sum'] / t['aperture_sum_err']))
        w = [aperture_weights(box, frame, index=i)[1] for i in range(100)]
        ratios.extend(np.sum(x) / np.sum(x ** 2) for x in w)
    return np.concatenate(pulls), float(np.sqrt(np.mean(ratios)))


def test_fractional_pixels_count_as_w_pixels_in_the_sky_term():
    box = BoxAperture((10.3, 9.8), 3.37, 3.61)
    t = photometer(np.zeros((20, 20)), box, SkyEstimate(0.0, SIGMA, 10 ** 12))
    _, w, _ = aperture_weights(box, (20, 20))
    assert t['n_pix'][0] == pytest.approx(w.sum(), rel=1e-12)
    assert t['var_sky'][0] == pytest.approx(w.sum() * SIGMA ** 2, rel=1e-12)
    assert w.sum() > np.sum(w ** 2) * 1.1


@pytest.mark.parametrize('theta', [0.0, 0.5])
def test_small_fractional_boxes_are_conservative(rng, theta):
    pulls, ratio = _pulls(rng, 3.0, theta)
    # sum(w sigma^2) over sum(w^2 sigma^2): the over-estimate of the error
    assert 1.08 < ratio < 1.13
    assert abs(pulls.mean()) < 0.05
    assert 0.87 < pulls.std() < 0.95
    # scaled by that ratio the errors are calibrated
    assert pulls.std() * ratio == pytest.approx(1.0, abs=0.04)


def test_pixel_aligned_boxes_are_calibrated(rng):
    n, spacing = 40, 9
    img = rng.normal(0.0, SIGMA, (n * spacing, n * spacing))
    corners = np.arange(n) * spacing + 2
    xy = np.array([(x, y) for x in corners for y in corners]) + 1.5
    box = BoxAperture(xy, 4, 4)
    assert box.is_pixel_aligned
    t = photometer(img, box, SkyEstimate(0.0, SIGMA, 10 ** 12))
    pulls = np.asarray(t['aperture_sum'] / t['aperture_sum_err'])
    assert pulls.std() == pytest.approx(1.0, abs=0.05)
    assert abs(pulls.mean()) < 0.07
