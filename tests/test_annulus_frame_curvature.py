"""An annulus sky on a frame whose sky curves (vignetting): the annulus
reads the sky around the aperture, not under it. The frame's annulus
levels together measure the curvature; each level is corrected by the
fitted surface's mean over its annulus less that over its aperture, and
its std loses the surface's spread over the ring. Flat frames, frames of
few annuli and skies no quadratic fits are left alone."""

import numpy as np
import pytest
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    EllipticalAnnulus,
    aperture_photometry,
)

from ccdphot_ext import SkyEstimate, photometer
from ccdphot_ext.background.annulusframe import (
    aperture_means,
    frame_surface,
)
from ccdphot_ext.utils.inputs import as_frame

N = 384
GAIN = 2.0
READ_NOISE = 5.0  # e-


def _sky(depth, *, bump=0.0):
    """150 ADU, vignetted by ``depth`` at the frame's half-size, plus a
    Gaussian bump of ``bump`` ADU (sigma 40 px) off centre."""
    yy, xx = np.mgrid[:N, :N].astype(float)
    r2 = ((xx - N / 2) ** 2 + (yy - N / 2) ** 2) / (N / 2) ** 2
    sky = 150.0 * (1.0 - depth * r2)
    if bump:
        sky += bump * np.exp(-((xx - 120) ** 2 + (yy - 250) ** 2)
                             / (2 * 40.0 ** 2))
    return sky


def _frame(rng, sky):
    """Poisson photons at ``GAIN`` plus read noise (ADU)."""
    return (rng.poisson(sky * GAIN)
            + rng.normal(0.0, READ_NOISE, sky.shape)) / GAIN


def _grid(rng, spacing):
    g = np.arange(24, N - 20, spacing, dtype=float)
    x, y = (a.ravel() + rng.uniform(-3, 3, a.size)
            for a in np.meshgrid(g, g))
    return np.column_stack([x, y])


def _truth(sky, apertures):
    """The true sky under each aperture (its exact-weight mean)."""
    t = aperture_photometry(sky, apertures, method='exact')
    return np.asarray(t['aperture_sum']) / apertures.area


def test_vignetted_levels_are_the_sky_under_the_aperture():
    rng = np.random.default_rng(3)
    sky = _sky(0.4)
    img = _frame(rng, sky)
    xy = _grid(rng, 36)
    ap = CircularAperture(xy, 4.0)
    est = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 10, 20),
                                   exclude=ap, gain=GAIN)
    surface = est.meta['frame_surface']
    assert surface['applied'] and surface['n_levels'] == len(xy) == 100
    assert surface['aperture_known'] == 100
    # 150 * 0.4 / 192**2 per px**2 along each axis, times
    # <rho**2> 250 (the ring) less 8 (the r = 4 circle): 0.394 ADU
    correction = est.meta['surface_correction']
    assert np.median(correction) == pytest.approx(-0.394, rel=0.03)
    # the correction's own error is a small part of a level's
    assert np.all(est.meta['surface_correction_error']
                  < 0.05 * est.error_on_mean)
    # the inner halves of the rings read brighter by the curvature (0.4 of
    # a test's error): not a star's light, the rows are not flagged
    assert abs(est.meta['shared_lift']) < 3
    assert np.all(est.meta['flags'] == 0)
    offset = est.value - _truth(sky, ap)
    # uncorrected the levels read 0.39 ADU low (12 of their mean's errors)
    assert abs(offset.mean()) < 3 * offset.std() / np.sqrt(len(offset))
    assert abs(offset.mean()) < 0.1
    # the ring's pixels spread with the sky's gradient (up to 8 ADU rms at
    # the corners), which is no noise of the aperture's pixels: the std is
    # the photons' and the read noise's
    noise = np.sqrt(_truth(sky, ap) / GAIN + (READ_NOISE / GAIN) ** 2)
    ratio = est.std / noise
    assert np.median(ratio) == pytest.approx(1.0, abs=0.03)
    assert ratio.max() < 1.15
    corner = np.argmax(np.hypot(*(xy - N / 2).T))
    assert np.sqrt(est.meta['surface_spread'][corner]) > 0.8 * noise[corner]


def test_rings_cut_by_the_edge():
    # rings cut by the frame's edge on a vignetted sky: the inner-half test
    # sees the gradient over the missing pixels (and the shared lift the
    # curvature), the per-star curvature check the curvature; both discount
    # the surface, and the level's correction takes in the gradient's part
    rng = np.random.default_rng(4)
    sky = _sky(0.4)
    img = _frame(rng, sky)
    g = np.arange(12, N - 10, 36, dtype=float)
    xy = np.column_stack([a.ravel() for a in np.meshgrid(g, g)])
    ap = CircularAperture(xy, 4.0)
    est = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 10, 20),
                                   exclude=ap, gain=GAIN)
    assert est.meta['frame_surface']['applied']
    assert abs(est.meta['shared_lift']) < 3
    assert np.all(est.meta['flags'] == 0)
    t = photometer(img, ap, est, gain=GAIN)
    assert np.all(np.asarray(t['flags']) & ~8 == 0)
    cut = ((xy < 20) | (xy > N - 21)).any(axis=1)
    gradient_part = est.meta['surface_correction'] - est.meta['surface_bend']
    assert np.all(np.abs(gradient_part[~cut]) < 0.01)
    assert np.all(np.abs(gradient_part[cut]) > 0.1)
    offset = est.value - _truth(sky, ap)
    assert abs(offset[cut].mean()) < 4 * offset[cut].std() / np.sqrt(
        cut.sum())


def test_vignetted_flux_pulls_centred():
    rng = np.random.default_rng(5)
    sky = _sky(0.4)
    pulls = []
    for _ in range(3):
        img = _frame(rng, sky)
        xy = _grid(rng, 36)
        ap = CircularAperture(xy, 4.0)
        est = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 10, 20),
                                       exclude=ap, gain=GAIN)
        t = photometer(img, ap, est, gain=GAIN)
        assert np.all(np.asarray(t['flags']) & ~8 == 0)
        pulls.append(np.asarray(t['aperture_sum'])
                     / np.asarray(t['aperture_sum_err']))
    pulls = np.concatenate(pulls)
    # uncorrected: +0.23 and std 0.89 (the std lifted by the spread);
    # 108 pulls: their std's own error is 0.07 (0.919 here, with the
    # annuli's sky_sample term; 0.960 over 8 frames)
    assert abs(pulls.mean()) < 0.12
    assert pulls.std() == pytest.approx(1.0, abs=0.09)


def test_elliptical_annuli_through_their_masks():
    # annuli of other shapes are gathered through photutils' masks: a
    # circle as an ellipse gets the circle's correction
    rng = np.random.default_rng(6)
    sky = _sky(0.4)
    img = _frame(rng, sky)
    xy = _grid(rng, 36)
    ap = CircularAperture(xy, 4.0)
    kwargs = {'exclude': ap, 'gain': GAIN}
    circle = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 10, 20),
                                      **kwargs)
    ellipse = SkyEstimate.from_annulus(
        img, EllipticalAnnulus(xy, 10, 20, 20, b_in=10), **kwargs)
    assert ellipse.meta['frame_surface']['applied']
    assert ellipse.meta['surface_correction'] == pytest.approx(
        circle.meta['surface_correction'], rel=0.02)
    assert np.median(ellipse.meta['surface_correction']) == pytest.approx(
        -0.394, rel=0.03)
    offset = ellipse.value - _truth(sky, ap)
    assert abs(offset.mean()) < 0.1


def test_flat_frame_left_alone():
    rng = np.random.default_rng(7)
    img = _frame(rng, _sky(0.0))
    xy = _grid(rng, 24)
    ap = CircularAperture(xy, 4.0)
    est = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 7, 12),
                                   exclude=ap, gain=GAIN)
    surface = est.meta['frame_surface']
    assert not surface['applied']
    assert surface['curvature_chi2'] < 16.3
    assert 'no significant curvature' in surface['note']
    assert 'surface_correction' not in est.meta


def test_few_annuli_not_fitted():
    rng = np.random.default_rng(8)
    img = _frame(rng, _sky(0.4))
    xy = _grid(rng, 24)[:20]
    est = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 7, 12),
                                   exclude=CircularAperture(xy, 4.0),
                                   gain=GAIN)
    surface = est.meta['frame_surface']
    assert not surface['applied'] and surface['n_levels'] == 20
    assert 'fewer than 24' in surface['note']


def test_sky_no_quadratic_fits_is_not_corrected():
    # a Gaussian bump of 15 ADU, 40 px wide: the levels curve, but not
    # as a quadratic surface over the frame
    rng = np.random.default_rng(9)
    img = _frame(rng, _sky(0.0, bump=15.0))
    xy = _grid(rng, 24)
    est = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 7, 12),
                                   exclude=CircularAperture(xy, 4.0),
                                   gain=GAIN)
    surface = est.meta['frame_surface']
    assert not surface['applied']
    assert surface['curvature_chi2'] > 16.3  # significant at 0.1%
    assert surface['chi2'] > 1.5 * surface['dof']
    assert 'not corrected' in surface['note']


def test_aperture_means_use_the_aperture_area():
    # a circle of r = 4 about (10, 20): <dx**2> = <dy**2> = r**2 / 4
    ann = CircularAnnulus([(10.0, 20.0), (30.0, 40.0)], 7, 12)
    mean, known = aperture_means(ann, CircularAperture(
        [(10.0, 20.0), (30.0, 40.0)], 4.0), (100, 100))
    assert known.tolist() == [True, True]
    s = 50.0
    u, v = (10.0 - 49.5) / s, (20.0 - 49.5) / s
    assert mean[0].tolist() == pytest.approx(
        [u, v, u * u + 4.0 / s ** 2, v * v + 4.0 / s ** 2, u * v])
    mean, known = aperture_means(ann, None, (100, 100))
    assert known.tolist() == [False, False]
    assert mean[0, 2] == pytest.approx(u * u)


def test_frame_surface_recovers_the_curvature():
    # noiseless levels of a known surface, at the annuli's exact pixels
    rng = np.random.default_rng(11)
    sky = _sky(0.2)
    xy = _grid(rng, 24)
    ann = CircularAnnulus(xy, 7, 12)
    frame = as_frame(sky)
    stats = SkyEstimate.from_annulus(sky + rng.normal(0, 0.01, sky.shape),
                                     ann, method='mean')
    # the levels as measured: the sky's own correction added back
    assert stats.meta['frame_surface']['applied']
    level = stats.value + stats.meta['surface_correction']
    res = frame_surface(frame, ann, None, level,
                        np.full(len(xy), 0.01), np.ones(len(xy), bool))
    assert res['applied']
    # 150 * (1 - 0.2 r**2 / 192**2): the coefficients of u**2 and v**2 in
    # coordinates scaled by s = 192 (about the frame's centre, 191.5)
    assert res['coef'][3:5] == pytest.approx([-30.0, -30.0], rel=1e-3)
    assert res['coef'][5] == pytest.approx(0.0, abs=0.01)
