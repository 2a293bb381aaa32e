"""Resampled (drizzled) frames whose uncertainty is per-pixel variance
arrays propagated through the resampling, as a pipeline writes them (the
variances through ``drizzle``'s second data planes, like JWST's i2d): the
arrays hold no covariance, so their sums under-predict aperture noise.
Checked by Monte Carlo pulls against known truth."""

import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    aperture_photometry,
)

from ccdphot_ext import SkyEstimate, photometer
from ccdphot_ext.datasets.sample import render_stars
from ccdphot_ext.io.variance import VarianceArrays

SKY, READ_NOISE, EXPTIME = 200.0, 10.0, 100.0


def drizzled_frame(rng, *, size=160, spacing=32, flux=3000.0,
                   n_exposures=4, pixfrac=1.0, scale=1.0, partial=0):
    """
    Dithered exposures (electrons: sky, Gaussian stars on a grid, photon
    and read noise) drizzled onto a ``size`` square grid in electrons/s,
    VAR_POISSON (the measured counts) and VAR_RNOISE drizzled with them.
    The last ``partial`` exposures cover the left half only (uneven
    depth). Returns the frame (`~astropy.nddata.CCDData` with
    `VarianceArrays`), the star positions and their true sums in a
    radius-4 aperture.
    """
    from drizzle.resample import Drizzle

    g = np.arange(spacing / 2, size - spacing / 2 + 1e-9, spacing)
    x, y = (a.ravel() + rng.uniform(-2, 2, a.size)
            for a in np.meshgrid(g, g))
    n_in = int(np.ceil(size * scale)) + 6
    yy, xx = np.mgrid[0:n_in, 0:n_in].astype(float)
    planes = [np.zeros((size, size), np.float32) for _ in range(2)]
    out = Drizzle(out_shape=(size, size), out_img2=planes)
    clean = Drizzle(out_shape=(size, size))
    for k, (dx, dy) in enumerate(rng.uniform(0, 1, (n_exposures, 2))):
        truth = SKY + render_stars((n_in, n_in), x * scale + 3 - dx,
                                   y * scale + 3 - dy,
                                   np.full(x.size, flux), sigma=1.6 * scale)
        counts = rng.poisson(truth) + rng.normal(0, READ_NOISE, truth.shape)
        pixmap = np.dstack([(xx - 3 + dx) / scale, (yy - 3 + dy) / scale])
        weight = np.full(truth.shape, 1.0, np.float32)
        if k >= n_exposures - partial:
            weight[:, n_in // 2:] = 0.0
        variances = [np.maximum(counts, 0) / EXPTIME ** 2,
                     np.full(truth.shape, READ_NOISE ** 2 / EXPTIME ** 2)]
        out.add_image((counts / EXPTIME).astype(np.float32),
                      exptime=EXPTIME, pixmap=pixmap, pixfrac=pixfrac,
                      in_units='cps', weight_map=weight,
                      data2=[v.astype(np.float32) for v in variances])
        clean.add_image((truth / EXPTIME).astype(np.float32),
                        exptime=EXPTIME, pixmap=pixmap, pixfrac=pixfrac,
                        in_units='cps', weight_map=weight)
    arrays = {'VAR_POISSON': out.out_img2[0].astype(float),
              'VAR_RNOISE': out.out_img2[1].astype(float)}
    frame = CCDData(out.out_img.astype(float), unit='electron/s',
                    uncertainty=VarianceArrays(arrays=arrays))
    aps = CircularAperture(np.c_[x, y], 4.0)
    true = np.asarray(aperture_photometry(
        clean.out_img - SKY / EXPTIME, aps)['aperture_sum'])
    return frame, aps, true


def annulus_sky(frame, aps):
    return SkyEstimate.from_annulus(
        frame, CircularAnnulus(aps.positions, 7.0, 15.0), exclude=aps)


def pulls(frame, aps, true, sky, **kwargs):
    t = photometer(frame, aps, sky, **kwargs)
    assert set(np.asarray(t['flags']).tolist()) == {0}
    return (np.asarray(t['aperture_sum']) - true) / np.asarray(
        t['aperture_sum_err'])


def test_correlated_arrays_are_warned_about():
    """Without ``noise=`` the arrays' sums are 1.2-1.6 times too small on a
    drizzled frame: photometry says so (it used to say nothing)."""
    rng = np.random.default_rng(1)
    frame, aps, true = drizzled_frame(rng)
    sky = annulus_sky(frame, aps)
    with pytest.warns(AstropyUserWarning, match='per-pixel variances leave '
                      'out the covariance'):
        p = pulls(frame, aps, true, sky)
    assert np.std(p) > 1.15  # the error bars the warning is about
    # the same frame without its arrays warns as before
    frame.uncertainty = None
    with pytest.warns(AstropyUserWarning, match='n_pix \\* sky_std'):
        photometer(frame, aps, sky)


def test_white_frame_with_arrays_is_not_warned_about():
    rng = np.random.default_rng(2)
    shape = (160, 160)
    var = np.full(shape, 25.0)
    frame = CCDData(rng.normal(100.0, 5.0, shape), unit='electron',
                    uncertainty=VarianceArrays(arrays={'VAR_RNOISE': var}))
    aps = CircularAperture([(40.0, 40.0), (120.0, 100.0)], 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        t = photometer(frame, aps, SkyEstimate.from_image(frame))
    w2 = [np.sum(m.data ** 2) for m in aps.to_mask(method='exact')]
    np.testing.assert_allclose(np.asarray(t['var_rnoise']), 25.0 * np.array(w2),
                               rtol=1e-12)
