# Licensed under a 3-clause BSD style license - see LICENSE
"""The PSF's width fitted on stars whose stamps hold their neighbours'
wings: each star's fit keeps to the pixels nearer to it than to the
other stars found, so that a neighbour's light at one edge of its stamp,
which its own pedestal took up, does not read it narrow."""

import math
import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import SkyEstimate
from ccdphot_ext.photometry.framepsf import MoffatPRF
from ccdphot_ext.photometry.optimal import optimal_extraction

SKY = 2000.0  # e-, gain 1, read noise 5 e-
FWHM = 1.6 * 2.0 * math.sqrt(2.0 * math.log(2.0))


def _psf(fwhm=FWHM):
    return MoffatPRF(flux=1.0, x_0=0.0, y_0=0.0, fwhm_a=fwhm, fwhm_b=fwhm,
                     theta=0.0, eta=1.0 / 3.0, subpixels=5)


def _frame(rng, low=1e3, high=1e4):
    """Forty Moffat stars (beta 3) of ``low``-``high`` e- on a 16-pixel grid of a
    128 x 128 frame (its 25-pixel stamps hold the neighbours' wings)."""
    grid = np.arange(12.0, 117.0, 16.0)
    gx, gy = (g.ravel() for g in np.meshgrid(grid, grid))
    pick = rng.choice(gx.size, 40, replace=False)
    x = gx[pick] + rng.uniform(-0.5, 0.5, 40)
    y = gy[pick] + rng.uniform(-0.5, 0.5, 40)
    flux = np.exp(rng.uniform(math.log(low), math.log(high), 40))
    img = np.zeros((128, 128))
    model = _psf()
    for xi, yi, fi in zip(x, y, flux, strict=True):
        iy, ix = int(round(yi)), int(round(xi))
        y0, y1 = max(iy - 30, 0), min(iy + 31, 128)
        x0, x1 = max(ix - 30, 0), min(ix + 31, 128)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        model.x_0, model.y_0 = xi, yi
        img[y0:y1, x0:x1] += fi * model(xx, yy)
    data = rng.poisson(SKY + img) + rng.normal(0.0, 5.0, img.shape)
    return data, SkyEstimate(SKY, math.sqrt(SKY + 25.0), 10 ** 9), x, y


def test_neighbours_wings_do_not_narrow_the_width():
    # stars of 2e4-5e4 e- (the width to 0.2%): the whole stamp read them
    # 0.976 +- 0.002 of their width; each star's own pixels 0.999. (On
    # 24 frames of 1e3-1e4 e- stars: 0.976 -> 0.99, unflagged pulls of
    # the 3e3-1e4 e- stars -0.27 -> -0.01, docs/optimal.rst)
    rng = np.random.default_rng(17)
    scales, errors = [], []
    for _ in range(2):
        data, sky, x, y = _frame(rng, 2e4, 5e4)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            res = optimal_extraction(data, (x[0], y[0]), _psf(), sky,
                                     gain=1.0)
        assert res.frame_psf['width_stars'] == 40
        scales.append(res.frame_psf['width_scale'])
        errors.append(res.frame_psf['width_scale_err'])
    assert max(errors) < 0.004
    assert abs(np.mean(scales) - 1.0) < 0.006, scales
