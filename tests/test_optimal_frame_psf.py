# Licensed under a 3-clause BSD style license - see LICENSE
"""Optimal extraction with no PSF given: the elliptical Moffat profile
fitted to the frame's bright stars (photometry/framepsf.py), on frames of
Moffat, elliptical and Gaussian stars with known truth, and the circular
Gaussian kept for frames of too few bright stars."""

import math
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.psf import CircularGaussianPRF

from ccdphot_ext import SkyEstimate
from ccdphot_ext.flags import FLAG_PSF_MISMATCH
from ccdphot_ext.photometry.framepsf import (
    MOFFAT_MIN_STARS,
    FramePSF,
    MoffatPRF,
    fit_frame_psf,
)
from ccdphot_ext.photometry.optimal import optimal_extraction
from ccdphot_ext.utils.inputs import as_frame


def _profile(kind, u, v):
    """Unit-flux profiles at offsets u, v (pixels)."""
    if kind == 'moffat':  # alpha 2, beta 2.5: FWHM 2.26
        return 1.5 / (np.pi * 4.0) * (1 + (u * u + v * v) / 4.0) ** -2.5
    if kind == 'elliptical':  # sigma 2.2 x 1.3 at 0.6 rad
        c, s = math.cos(0.6), math.sin(0.6)
        up, vp = c * u + s * v, -s * u + c * v
        return np.exp(-0.5 * (up * up / 2.2 ** 2 + vp * vp / 1.3 ** 2)) / (
            2 * np.pi * 2.2 * 1.3)
    return np.exp(-0.5 * (u * u + v * v) / 1.5 ** 2) / (2 * np.pi * 1.5 ** 2)


def _frame(rng, kind, *, n_bright=None):
    """A 200 x 200 frame (sky 100 e-, gain 1, read noise 5) of 25 stars
    on a 40-pixel grid, 500-1e5 e- (or ``n_bright`` of 3e4 e- and faint
    ones of 300-800 e-), integrated over pixels on 5 x 5 points; the
    exact sky."""
    grid = np.arange(20, 200, 40.0)
    gx, gy = np.meshgrid(grid, grid)
    x = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    y = gy.ravel() + rng.uniform(-0.5, 0.5, gy.size)
    flux = 10 ** rng.uniform(math.log10(500), 5, x.size)
    if n_bright is not None:
        flux = 10 ** rng.uniform(math.log10(300), math.log10(800), x.size)
        flux[:n_bright] = 3e4
    img = np.zeros((200, 200))
    off = (np.arange(5) + 0.5) / 5 - 0.5
    for xi, yi, fi in zip(x, y, flux, strict=True):
        ix, iy = int(round(xi)), int(round(yi))
        yy, xx = np.mgrid[iy - 19:iy + 20, ix - 19:ix + 20]
        u = xx[..., None, None] + off[None, :] - xi
        v = yy[..., None, None] + off[:, None] - yi
        img[iy - 19:iy + 20, ix - 19:ix + 20] += fi * _profile(
            kind, u, v).mean(axis=(2, 3))
    data = rng.poisson(100.0 + img) + rng.normal(0, 5.0, img.shape)
    sky = SkyEstimate(100.0, math.sqrt(125.0), 10 ** 9)
    return data, sky, x, y, flux


def _measure(data, sky, x, y, psf=None):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        return [optimal_extraction(data, (xi, yi), psf, sky, gain=1.0)
                for xi, yi in zip(x, y, strict=True)]


def test_moffat_prf_holds_unit_flux_and_is_a_gaussian_at_small_eta():
    yy, xx = np.mgrid[-60:61, -60:61]
    m = MoffatPRF(flux=1.0, x_0=0.3, y_0=-0.2, fwhm_a=2.26, fwhm_b=2.26,
                  theta=0.0, eta=0.4)
    # beta 2.5, alpha 2: 3.6e-5 of the light lies beyond 60.5 pixels, a
    # little less outside the 121-pixel square
    assert m(xx, yy).sum() == pytest.approx(1.0 - 2.7e-5, abs=3e-6)
    g = MoffatPRF(flux=1.0, x_0=0.3, y_0=-0.2, fwhm_a=0.7 * 2.35482,
                  fwhm_b=0.7 * 2.35482, theta=0.0, eta=0.005)
    ref = CircularGaussianPRF(flux=1.0, x_0=0.3, y_0=-0.2,
                              fwhm=0.7 * 2.35482)
    # sigma 0.7 (undersampled): the 7 x 7 point integral over each pixel
    # and beta 200 against photutils' exact pixel integral
    assert np.max(np.abs(g(xx, yy) - ref(xx, yy))) < 3e-3 * ref(xx, yy).max()


#: The true profiles as `MoffatPRF` numbers (fwhm_a, fwhm_b, theta, eta).
TRUE = {'moffat': (2.26, 2.26, 0.0, 0.4),
        'elliptical': (2.2 * 2.35482, 1.3 * 2.35482, 0.6, 0.005)}


@pytest.mark.parametrize('kind', ['moffat', 'elliptical'])
def test_psf_none_measures_stars_of_other_shapes(kind):
    """A circular Gaussian read Moffat stars 0.85 of their flux (pulls -3
    to -28, every row flagged 256) and elliptical ones 0.97: the fitted
    elliptical Moffat reads them as their true profile does, unflagged."""
    rng = np.random.default_rng(51)
    fa, fb, theta, eta = TRUE[kind]
    true = FramePSF(MoffatPRF(fwhm_a=fa, fwhm_b=fb, theta=theta, eta=eta),
                    0, 21)
    pulls, flags, ratios, shift = [], [], [], []
    for _ in range(2):
        data, sky, x, y, flux = _frame(rng, kind)
        res = _measure(data, sky, x, y)
        exact = _measure(data, sky, x, y, psf=true)
        shift += [(r.flux - e.flux) / e.flux_err
                  for r, e in zip(res, exact, strict=True)]
        pulls += [(r.flux - f) / r.flux_err for r, f in zip(res, flux,
                                                            strict=True)]
        flags += [r.flags for r in res]
        ratios += [r.flux / f for r, f in zip(res, flux, strict=True)
                   if f > 1e4]
        check = res[0].frame_psf
        assert check['model'] == 'moffat' and check['fits'] is True
        assert check['psf_stars'] >= MOFFAT_MIN_STARS
        assert "fitted to" in res[0].budget.notes[-2]
    fitted = fit_frame_psf(as_frame(data), sky, gain=1.0).shape
    assert fitted[0] == pytest.approx(fa, rel=0.03)
    assert fitted[1] == pytest.approx(fb, rel=0.03)
    if kind == 'moffat':
        assert fitted[3] == pytest.approx(2.5, rel=0.1)
    else:  # a Gaussian (infinite beta), the axis at 0.6 rad
        assert math.isinf(fitted[3])
        assert fitted[2] == pytest.approx(0.6, abs=0.05)
    flags = np.array(flags)
    assert np.count_nonzero(flags & FLAG_PSF_MISMATCH) <= 2
    # the fitted profile reads each star as the true one does (means
    # +0.08 and -0.08 of an error bar here, the profile's own noise shared
    # by a frame's stars; a circular Gaussian: -0.6 to -28)
    assert abs(np.mean(shift)) < 0.2 and np.max(np.abs(shift)) < 0.5
    pulls = np.array(pulls)[flags == 0]
    # 50 stars: +-0.14 (+-0.2 from the two frames' sums); the Moffat
    # stars read +0.40 here, and +0.33 with their true profile: these two
    # frames' noise (16 frames more of the same kind: -0.01 +- 0.05
    # fitted, -0.02 +- 0.05 with the true profile, spreads 1.0-1.13)
    assert abs(np.mean(pulls)) < 0.5
    assert 0.75 < np.std(pulls) < 1.25
    assert np.median(ratios) == pytest.approx(1.0, abs=0.004)


def test_psf_none_on_gaussian_stars_reads_as_the_sigma_given():
    """On circular Gaussian stars the fitted profile is a Gaussian (the
    Moffat does not lower the chi-square enough) of their width; fluxes
    agree with the true sigma's to a tenth of their error bars."""
    rng = np.random.default_rng(52)
    data, sky, x, y, flux = _frame(rng, 'gaussian')
    fitted = _measure(data, sky, x, y)
    given = _measure(data, sky, x, y, psf=1.5)
    assert fitted[0].frame_psf['model'] == 'moffat'
    assert given[0].frame_psf['model'] == 'given'
    fa, fb, _, beta = fit_frame_psf(as_frame(data), sky, gain=1.0).shape
    assert math.isinf(beta)  # the Moffat lowers the chi-square by little
    assert fa == pytest.approx(1.5 * 2.35482, rel=0.02)
    assert fb == pytest.approx(1.5 * 2.35482, rel=0.02)
    shift = [(a.flux - b.flux) / b.flux_err
             for a, b in zip(fitted, given, strict=True)]
    assert np.max(np.abs(shift)) < 0.15
    # flagged as often as with the true sigma (a star's own 0.4% chance)
    assert (sum(bool(r.flags & FLAG_PSF_MISMATCH) for r in fitted)
            <= sum(bool(r.flags & FLAG_PSF_MISMATCH) for r in given) + 1)


def test_too_few_bright_stars_keep_the_circular_gaussian():
    """Three bright stars are too few for four shape numbers: the circular
    Gaussian's width is fitted, as before, and the result says so."""
    rng = np.random.default_rng(53)
    data, sky, x, y, flux = _frame(rng, 'gaussian', n_bright=3)
    assert fit_frame_psf(as_frame(data), sky) is None
    res = _measure(data, sky, x[:2], y[:2])
    assert res[0].frame_psf['model'] == 'gaussian'
    assert res[0].frame_psf['psf_stars'] is None
    assert res[0].psf_sigma == pytest.approx(1.5, rel=0.05)
    assert f'fewer than {MOFFAT_MIN_STARS}' in ' '.join(res[0].budget.notes)
