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
    ``flux``: electrons per exposure of each star (or of all). The last
    ``partial`` exposures cover the left half only (uneven
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
                                   np.broadcast_to(flux, x.shape),
                                   sigma=1.6 * scale)
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
    with pytest.warns(AstropyUserWarning, match='n_pix \\* sky_std'), \
            pytest.warns(AstropyUserWarning, match='no source photon noise'):
        photometer(frame, aps, sky)  # (e-/s, no exposure time: no gain)


def test_white_frame_with_arrays_is_not_warned_about():
    rng = np.random.default_rng(2)
    shape = (160, 160)
    var = np.full(shape, 25.0)
    # electrons whose noise is all read noise: a sky-subtracted level (no
    # photons for the sky's Poisson model at the unit's gain of 1)
    frame = CCDData(rng.normal(0.0, 5.0, shape), unit='electron',
                    uncertainty=VarianceArrays(arrays={'VAR_RNOISE': var}))
    aps = CircularAperture([(40.0, 40.0), (120.0, 100.0)], 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        t = photometer(frame, aps, SkyEstimate.from_image(frame))
    w2 = [np.sum(m.data ** 2) for m in aps.to_mask(method='exact')]
    np.testing.assert_allclose(np.asarray(t['var_rnoise']), 25.0 * np.array(w2),
                               rtol=1e-12)


def noise_pulls(seed, n_frames, *, route='annulus', **kwargs):
    """Pulls with ``noise=`` (blank apertures measured on each frame
    against the photometry's sky) over ``n_frames`` drizzled frames; with
    ``partial`` exposures, those of the shallow (left) and deep halves."""
    from ccdphot_ext import ApertureNoise

    rng = np.random.default_rng(seed)
    out, noise = [], None
    for k in range(n_frames):
        frame, aps, true = drizzled_frame(rng, **kwargs)
        with warnings.catch_warnings():  # the global sky on a starry frame
            warnings.simplefilter('ignore', AstropyUserWarning)
            sky = (annulus_sky(frame, aps) if route == 'annulus'
                   else SkyEstimate.from_image(frame))
            noise = ApertureNoise.from_blank_apertures(frame, sky, seed=k)
            p = pulls(frame, aps, true, sky, noise=noise)
        out.append((p, aps.positions[:, 0] < frame.shape[1] / 2))
    p = np.concatenate([o[0] for o in out])
    left = np.concatenate([o[1] for o in out])
    return p, left, noise


def test_blank_noise_scales_the_arrays_and_the_source_share():
    """Bright stars (3e4 e- per exposure) on a drizzled frame (pixfrac
    0.8, output pixels 0.7 input pixels): the source's photon noise is
    correlated as the sky's. Before, ``noise=`` replaced the background
    arrays only: pull spread 1.22-1.49; now R(N) times every array but
    VAR_FLAT."""
    p, _, noise = noise_pulls(1, 7, size=240, spacing=30, flux=3e4,
                              pixfrac=0.8, scale=0.7)
    assert p.size == 448
    assert abs(np.mean(p)) < 0.15
    assert np.std(p) == pytest.approx(1.0, abs=0.05)
    assert noise.arrays_correlated
    assert noise.variance_ratio(50.0) > 1.5  # the covariance the arrays lack


def test_blank_noise_keeps_the_depth_of_each_aperture():
    """Uneven depth: the left half of 6 exposures, the right of 2 (the
    arrays say so). One blank-sky curve for the frame gave the shallow
    half pulls spreading 1.15-1.23 and the deep half 0.75-0.84; the
    curve's ratio times each aperture's own arrays gives both about 1
    (the halves' correlations differ a little: one ratio for the frame)."""
    p, left, _ = noise_pulls(6, 6, route='global', size=240, spacing=30,
                             n_exposures=6, partial=4)
    assert 0.88 < np.std(p[left]) < 1.12
    assert 0.88 < np.std(p[~left]) < 1.12
    assert np.std(p) == pytest.approx(1.0, abs=0.05)


def test_white_frame_with_arrays_keeps_its_budget_under_blank_noise():
    """White noise the arrays describe: ``noise=`` changes nothing (its
    ratio is exactly 1), where it used to put one curve in place of the
    arrays."""
    from ccdphot_ext import ApertureNoise

    rng = np.random.default_rng(3)
    shape = (200, 200)
    var = np.where(np.arange(shape[1]) < 100, 25.0, 100.0) * np.ones(shape)
    frame = CCDData(rng.standard_normal(shape) * np.sqrt(var),
                    unit='electron',
                    uncertainty=VarianceArrays(arrays={'VAR_RNOISE': var}))
    aps = CircularAperture([(40.0, 40.0), (160.0, 100.0)], 4.0)
    sky = SkyEstimate.from_image(frame)
    noise = ApertureNoise.from_blank_apertures(frame, sky, seed=1)
    assert not noise.arrays_correlated
    assert noise.variance_ratio(49.0) == 1.0
    t = photometer(frame, aps, sky, noise=noise)
    plain = photometer(frame, aps, sky)
    np.testing.assert_array_equal(np.asarray(t['var_rnoise']),
                                  np.asarray(plain['var_rnoise']))


def test_dense_mosaic_level_factor_is_bounded_and_warned():
    """A star every 30 px on a drizzled mosaic: the whole-frame level's
    source mask leaves a few pixels between the stars, on which the
    correlated-noise factor read 1000-2800 (the starless mosaic's is
    about 2), the level's error 33-49 times the white one. Now the factor
    is measured on whole blocks (their own source masking) and the level's
    error is said to be uncertain."""
    from ccdphot_ext.background.noisecheck import mean_variance_factor

    for seed in range(2):
        rng = np.random.default_rng(seed)
        frame, _, _ = drizzled_frame(rng, size=240, spacing=30,
                                     flux=10 ** rng.uniform(2.5, 4.5, 64))
        # the mask's growth covers 95% of the frame, but the stars are
        # isolated (5% of the pixels hold their light) and 2000 pixels
        # are left: not 'sources cover'
        with pytest.warns(AstropyUserWarning, match="the sky level's "
                          'error is uncertain'):
            sky = SkyEstimate.from_image(frame.data)
        assert sky.meta['n_masked_sources'] > 0.9 * frame.data.size
        assert sky.meta['source_light_fraction'] < 0.1
        factor = sky.meta['noise_correlation_factor']
        assert factor == mean_variance_factor(frame.data)[0]
        assert 1.5 < factor < 4.0
        white = sky.efficiency * sky.std / np.sqrt(sky.n_pix)
        assert sky.error_on_mean == pytest.approx(white * np.sqrt(factor),
                                                  rel=1e-12)
