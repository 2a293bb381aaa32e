"""Annuli of few pixels: the ``std`` the sky and level terms take is
measured on the annulus' own pixels, so that a blank flux over its error
follows Student's t, not a Gaussian (pulls 1.16 at 12 pixels, 1.06 at
44, 1.02 at 196 with the clipped mean). The ``sky_sample`` term raises
the two terms to their mean square (`small_sample_factors`), for the
clipped mean, the mean and the median."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus, CircularAperture

from ccdphot_ext import SkyEstimate, measure, photometer
from ccdphot_ext.background.annulus import small_sample_factors

#: annulus radii about a 1.5 px circle and the pixels each keeps
ANNULI = {12: (2.2, 3.0), 44: (3.0, 4.6), 196: (6.0, 10.0)}


def _pulls(n_sky, method, n_frames, seed):
    """Blank white-noise fluxes over their errors against annuli of
    ``n_sky`` pixels (324 a frame), and over the white terms alone."""
    rng = np.random.default_rng(seed)
    xy = [(x, y) for x in range(14, 390, 22) for y in range(14, 390, 22)]
    pulls, white = [], []
    for _ in range(n_frames):
        img = rng.normal(100.0, 5.0, (400, 400))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            sky = SkyEstimate.from_annulus(
                img, CircularAnnulus(xy, *ANNULI[n_sky]), method=method)
            t = photometer(img, CircularAperture(xy, 1.5), sky)
        assert np.median(sky.n_pix) == n_sky  # (a clip takes one or two)
        flux = np.asarray(t['aperture_sum'])
        pulls.append(flux / np.asarray(t['aperture_sum_err']))
        white.append(flux / np.sqrt(np.asarray(t['var_sky'])
                                    + np.asarray(t['var_sky_mean'])))
    return np.concatenate(pulls), np.concatenate(white)


@pytest.mark.parametrize('n_sky', sorted(ANNULI))
def test_small_annulus_pulls(n_sky):
    """Clipped mean (the default), six frames of 324 blank circles a
    size: pull std 1 +- 0.05, mean 0 +- 0.05 at 12, 44 and 196 annulus
    pixels: 1.01, 1.02, 1.01 (the white terms alone: 1.16, 1.06,
    1.02)."""
    pulls, white = _pulls(n_sky, 'sigma_clip', 6, n_sky)
    assert abs(np.std(pulls) - 1.0) < 0.05
    assert abs(np.mean(pulls)) < 0.05
    if n_sky == 12:
        assert np.std(white) > 1.1


@pytest.mark.parametrize('method', ['median', 'mean'])
def test_small_annulus_pulls_other_estimators(method):
    """The median's normalized MAD measures the std worse (its white
    terms alone 1.33 at 12 pixels; the mean's 1.19): pull std 1 +- 0.05
    at 12 pixels (1.00 and 1.03)."""
    pulls, white = _pulls(12, method, 6, 5)
    assert abs(np.std(pulls) - 1.0) < 0.05
    assert abs(np.mean(pulls)) < 0.05
    assert np.std(white) > (1.2 if method == 'median' else 1.1)


def test_small_sample_term_and_factors():
    """The factors: ``m / (m - 3)`` for the mean and the clip, the MAD's
    ``m / (m - 5.5)`` with the median's efficiency of ``m`` values; the
    term is the two terms times the factor less them, `measure`'s the
    same, bit for bit; none with an uncertainty map."""
    c2, q = small_sample_factors([12, 44, 0], 'mean', 1.0)
    np.testing.assert_allclose(c2, [12 / 9, 44 / 41, 1.0])
    np.testing.assert_allclose(q, 1.0)
    c2, q = small_sample_factors([12], 'median', np.sqrt(np.pi / 2))
    np.testing.assert_allclose(c2, [12 / 6.5])
    assert 0.85 < q[0] < 0.95
    img = np.random.default_rng(2).normal(100.0, 5.0, (60, 60))
    xy = [(20.0, 20.0), (40.0, 35.0)]
    sky = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 3.0, 4.6))
    np.testing.assert_allclose(sky.meta['small_sample_factor'],
                               44 / 41)
    t = photometer(img, CircularAperture(xy, 1.5), sky)
    white = np.asarray(t['var_sky']) + np.asarray(t['var_sky_mean'])
    np.testing.assert_allclose(np.asarray(t['var_sky_sample']),
                               white * 3 / 41, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(t['aperture_sum_err']) ** 2,
                               white * 44 / 41, rtol=1e-12)
    one = SkyEstimate.from_annulus(img, CircularAnnulus(xy[:1], 3.0, 4.6))
    m = measure(img, CircularAperture(xy[0], 1.5), one)
    assert m.flux_err == t['aperture_sum_err'][0]
    assert m.budget.terms['sky_sample'] == t['var_sky_sample'][0]
    assert m.compare_numpy().meta['max_abs_rel_diff'] < 1e-12
    mapped = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 3.0, 4.6),
                                      uncertainty=np.full(img.shape, 5.0))
    assert 'small_sample_factor' not in mapped.meta
    t = photometer(img, CircularAperture(xy, 1.5), mapped,
                   uncertainty=np.full(img.shape, 5.0))
    assert 'var_sky_sample' not in t.colnames
