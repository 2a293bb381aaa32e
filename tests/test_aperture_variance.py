"""How fractional pixels enter the sky variance, and the pulls of small
fractional apertures on white noise under each convention:
``sum(w**2 * sigma**2)`` (the default, calibrated) and ``sum(w * sigma**2)``
(``fractional_variance='linear'``, photutils' convention, conservative)."""

import math

import numpy as np
import pytest
from astropy.table import Table
from photutils.aperture import CircularAperture

from ccdphot_ext import (
    BoxAperture,
    BudgetOptions,
    SkyEstimate,
    measure,
    photometer,
)
from ccdphot_ext.aperture.utils import aperture_weights

SIGMA = 10.0
EXACT_SKY = SkyEstimate(0.0, SIGMA, 10 ** 12)  # the level is known exactly


def _grid(rng, n, spacing):
    centres = (np.arange(n) + 0.5) * spacing
    grid = np.array([(x, y) for x in centres for y in centres])
    return grid + rng.uniform(-0.5, 0.5, grid.shape)


def _pulls(rng, make, size, *, fractional_variance='squared', n_frames=3,
           n=40):
    """Pulls of ``make(xy)`` apertures on pure white noise, and the
    sqrt of mean sum(w) / sum(w**2) over the first 100 apertures."""
    spacing = int(size * 1.5) + 4
    frame = (n * spacing, n * spacing)
    pulls, ratios = [], []
    for _ in range(n_frames):
        img = rng.normal(0.0, SIGMA, frame)
        aperture = make(_grid(rng, n, spacing))
        t = photometer(img, aperture, EXACT_SKY, budget=BudgetOptions(
            fractional_variance=fractional_variance))
        pulls.append(np.asarray(t['aperture_sum'] / t['aperture_sum_err']))
        w = [aperture_weights(aperture[i], frame)[1] for i in range(100)]
        ratios.extend(np.sum(x) / np.sum(x ** 2) for x in w)
    return np.concatenate(pulls), float(np.sqrt(np.mean(ratios)))


def _box(theta):
    return lambda xy: BoxAperture(xy, 3.37, 3.61, theta=theta)


def _circle(r):
    return lambda xy: CircularAperture(xy, r)


def test_fractional_pixels_add_w_squared_to_the_sky_term():
    box = BoxAperture((10.3, 9.8), 3.37, 3.61)
    img = np.zeros((20, 20))
    t = photometer(img, box, EXACT_SKY)
    _, w, _ = aperture_weights(box, (20, 20))
    assert t['n_pix'][0] == pytest.approx(w.sum(), rel=1e-12)
    assert t['var_sky'][0] == pytest.approx(np.sum(w ** 2) * SIGMA ** 2,
                                            rel=1e-12)
    assert t.meta['fractional_variance'] == 'squared'
    linear = photometer(img, box, EXACT_SKY,
                        budget=BudgetOptions(fractional_variance='linear'))
    assert linear['var_sky'][0] == pytest.approx(w.sum() * SIGMA ** 2,
                                                 rel=1e-12)
    assert w.sum() > np.sum(w ** 2) * 1.1
    # measure agrees, and its plain-numpy cross-check follows the choice
    for choice in ('squared', 'linear'):
        res = measure(img + 1.0, box, EXACT_SKY,
                      budget=BudgetOptions(fractional_variance=choice))
        assert res.compare_numpy().meta['max_abs_rel_diff'] < 1e-12


def test_whole_pixels_are_the_same_under_both_conventions(rng):
    img = rng.normal(100.0, SIGMA, (60, 60))
    box = BoxAperture([(20.5, 20.5), (40.5, 30.5)], 8, 6)
    assert box.is_pixel_aligned
    sq, lin = (photometer(img, box, EXACT_SKY, gain=2.0,
                          uncertainty=np.full(img.shape, SIGMA),
                          budget=BudgetOptions(fractional_variance=c))
               for c in ('squared', 'linear'))
    np.testing.assert_array_equal(sq['aperture_sum_err'],
                                  lin['aperture_sum_err'])


def test_uncertainty_map_takes_w_squared(rng):
    img = rng.normal(0.0, 1.0, (40, 40))
    sigma = rng.uniform(1.0, 3.0, img.shape)
    circ = CircularAperture((20.3, 19.6), 4.2)
    slc, w, _ = aperture_weights(circ, img.shape)
    for engine in ('auto', 'general'):
        t = photometer(img, circ, EXACT_SKY, uncertainty=sigma, engine=engine)
        assert t['var_sky'][0] == pytest.approx(
            np.sum(w ** 2 * sigma[slc] ** 2), rel=1e-12)
        t = photometer(img, circ, EXACT_SKY, uncertainty=sigma, engine=engine,
                       budget=BudgetOptions(fractional_variance='linear'))
        assert t['var_sky'][0] == pytest.approx(
            np.sum(w * sigma[slc] ** 2), rel=1e-12)


def test_fractional_variance_is_validated():
    with pytest.raises(ValueError, match='fractional_variance'):
        photometer(np.zeros((9, 9)), BoxAperture((4, 4), 3, 3), EXACT_SKY,
                   budget=BudgetOptions(fractional_variance='area'))
    with pytest.raises(ValueError, match='fractional_variance'):
        measure(np.zeros((9, 9)), BoxAperture((4, 4), 3, 3), EXACT_SKY,
                budget=BudgetOptions(fractional_variance=None))


@pytest.mark.parametrize('make, size', [(_box(0.0), 3.6), (_box(0.5), 3.6),
                                        (_circle(2.0), 4.0),
                                        (_circle(3.0), 6.0)])
def test_small_fractional_apertures_are_calibrated(rng, make, size):
    pulls, ratio = _pulls(rng, make, size)
    # the linear convention would over-state these errors by 4-12%
    assert ratio > 1.03
    assert abs(pulls.mean()) < 0.05
    assert pulls.std() == pytest.approx(1.0, abs=0.04)


def test_linear_convention_is_conservative_for_small_boxes(rng):
    pulls, ratio = _pulls(rng, _box(0.0), 3.6, fractional_variance='linear')
    # sum(w sigma^2) over sum(w^2 sigma^2): the over-estimate of the error
    assert 1.08 < ratio < 1.13
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
    t = photometer(img, box, EXACT_SKY)
    pulls = np.asarray(t['aperture_sum'] / t['aperture_sum_err'])
    assert pulls.std() == pytest.approx(1.0, abs=0.05)
    assert abs(pulls.mean()) < 0.07


def test_star_and_sky_regime_with_a_measured_sky_is_calibrated(rng):
    """Stars of 3,000 e- (FWHM 2.5 px) in r = 3 circles, gain 2, an
    annulus-sized sky error: every term of the budget matters."""
    n, spacing, gain, level = 24, 16, 2.0, 200.0
    yy, xx = np.mgrid[:n * spacing, :n * spacing]
    s = 2.5 / 2.3548
    pulls = []
    for _ in range(4):
        xy = _grid(rng, n, spacing)
        model = np.full(xx.shape, level)
        for x, y in xy:
            sl = np.s_[int(y) - 8:int(y) + 9, int(x) - 8:int(x) + 9]
            model[sl] += 1500.0 * np.exp(
                -((xx[sl] - x) ** 2 + (yy[sl] - y) ** 2) / (2 * s * s)) / (
                2 * np.pi * s * s)
        img = rng.poisson(model * gain) / gain
        circ = CircularAperture(xy, 3.0)
        true = []
        for i in range(len(xy)):
            slc, w, _ = aperture_weights(circ[i], img.shape)
            true.append(np.sum(w * (model[slc] - level)))
        true = np.array(true)
        # the sky level measured from 200 pixels (an annulus' worth)
        n_sky = 200
        std = np.sqrt(level / gain)
        measured = level + rng.normal(0.0, std / np.sqrt(n_sky), len(xy))
        sky = SkyEstimate(measured, std, n_sky)
        t = photometer(img, circ, sky, gain=gain)
        pulls.append((np.asarray(t['aperture_sum']) - true)
                     / np.asarray(t['aperture_sum_err']))
        assert np.all(np.isfinite(pulls[-1]))
    pulls = np.concatenate(pulls)
    assert abs(pulls.mean()) < 0.1
    assert pulls.std() == pytest.approx(1.0, abs=0.05)


def test_source_term_is_the_photon_noise_of_the_weighted_sum():
    """Bright stars (2e5 ADU, sigma 1.8 px) in r = 1.5 circles: much of
    their light falls on the circle's partial pixels, whose photon noise
    enters the weighted sum as w**2, not w. F / g gave pulls of spread
    0.91; sum(w**2 (D - B)) / g, 1."""
    from photutils.aperture import aperture_photometry

    from ccdphot_ext.datasets.sample import simulate_frame

    rng = np.random.default_rng(5)
    pulls, linear = [], []
    grid = (np.arange(6) + 0.5) * 40.0
    gx, gy = np.meshgrid(grid, grid)
    for _ in range(45):
        x = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size)
        y = gy.ravel() + rng.uniform(-0.5, 0.5, gy.size)
        data, _, model = simulate_frame(
            (240, 240), 50.0, Table({'x': x, 'y': y,
                                     'flux': np.full(x.size, 2e5)}),
            gain=2.23, read_noise=5.0, psf_sigma=1.8, seed=rng)
        sky = SkyEstimate(50.0, math.sqrt(50.0 / 2.23 + (5.0 / 2.23) ** 2),
                          10 ** 9)
        circles = CircularAperture(np.column_stack([x, y]), 1.5)
        true = np.asarray(aperture_photometry(model - 50.0, circles,
                                              method='exact')['aperture_sum'])
        for out, fractional in ((pulls, 'squared'), (linear, 'linear')):
            t = photometer(data, circles, sky, gain=2.23,
                           budget=BudgetOptions(fractional_variance=fractional))
            out.append((np.asarray(t['aperture_sum']) - true)
                       / np.asarray(t['aperture_sum_err']))
    pulls, linear = np.concatenate(pulls), np.concatenate(linear)
    # 1620 stars: std known to 1.8%
    assert abs(pulls.mean()) < 0.1
    assert pulls.std() == pytest.approx(1.0, abs=0.05)
    assert linear.std() < 0.94  # photutils' convention overstates it
