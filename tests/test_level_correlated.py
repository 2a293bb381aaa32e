"""The error of a whole-frame sky level on frames whose noise is
correlated: exposures of a known Poisson sky combined with STScI's
``drizzle`` as a pipeline would, and a smoothed frame. The level is the
mean of many pixels that share their noise, so it scatters
``sqrt(sum(rho))`` times more than white noise of the same pixel
variance would; ``SkyEstimate.from_image`` measures that factor
(``meta['noise_correlation_factor']``) and its ``error_on_mean`` holds
it. White frames are untouched."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from scipy.ndimage import uniform_filter

from ccdphot_ext import ApertureNoise, BoxAperture, SkyEstimate, measure
from ccdphot_ext.background.noisecheck import mean_variance_factor

pytest.importorskip('drizzle')


def drizzled_sky(rng, shape, *, sky_e=20.0, read_noise=3.0, exptime=500.0,
                 n_exposures=4, pixfrac=0.8, subtract=False):
    """``n_exposures`` dithered exposures of a flat Poisson sky (electrons,
    then e-/s; the sky taken away with ``subtract`` as a pipeline's sky
    matching does) drizzled onto one grid; the edges, not covered by every
    exposure, cut off. Returns the mosaic in e-/s."""
    from drizzle.resample import Drizzle

    ny, nx = shape[0] + 4, shape[1] + 4
    driz = Drizzle(out_shape=(ny, nx), fillval=np.nan)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    for _ in range(n_exposures):
        dx, dy = rng.uniform(-0.5, 0.5, 2)
        electrons = (rng.poisson(sky_e, (ny, nx))
                     + rng.normal(0.0, read_noise, (ny, nx)))
        rate = (electrons - (sky_e if subtract else 0.0)) / exptime
        driz.add_image(rate.astype(np.float32), exptime=exptime,
                       pixmap=np.dstack([xx + dx, yy + dy]),
                       pixfrac=pixfrac, in_units='cps')
    return np.asarray(driz.out_img[2:-2, 2:-2], dtype=float)


def _block_factor(data, side):
    """The factor measured plainly: the variance of side x side block
    means over the white-noise variance of such a mean."""
    ny, nx = (n // side * side for n in data.shape)
    means = data[:ny, :nx].reshape(ny // side, side, nx // side,
                                   side).mean(axis=(1, 3))
    return means.var() * side * side / data.var()


def test_factor_of_white_smoothed_and_drizzled_noise():
    rng = np.random.default_rng(4)
    white = rng.normal(0.0, 1.0, (400, 400))
    # a 3 x 3 boxcar: sum(rho) = 9 (up to the measurement's source mask)
    smooth = uniform_filter(rng.normal(0.0, 1.0, (600, 600)), 3)
    mosaic = drizzled_sky(rng, (600, 600))
    f_white, err_white = mean_variance_factor(white)
    assert f_white == pytest.approx(1.0, abs=3 * err_white)
    f_smooth, err = mean_variance_factor(smooth)
    assert 7.5 < f_smooth < 9.5 and err < 0.6
    f_mosaic, err = mean_variance_factor(mosaic)
    assert f_mosaic == pytest.approx(_block_factor(mosaic, 16), rel=0.15)
    assert 1.3 < f_mosaic < 2.6 and err < 0.2


def test_white_frames_keep_their_level_error_bit_for_bit():
    data = np.random.default_rng(8).normal(100.0, 5.0, (300, 300))
    sky = SkyEstimate.from_image(data)
    assert 'noise_correlation_factor' not in sky.meta
    assert sky.error_on_mean == pytest.approx(
        sky.efficiency * sky.std / np.sqrt(sky.n_pix), rel=1e-12)


@pytest.mark.parametrize('subtract', [False, True])
def test_drizzled_level_pulls(subtract):
    """Tiles of drizzled mosaics, each a frame of its own: the pulls of
    their levels (against the true sky, 0 once subtracted) with the
    gain (EXPTIME, for e-/s) have spread 1; the white error alone gave
    1.3-1.6."""
    rng = np.random.default_rng(21 if subtract else 20)
    truth = 0.0 if subtract else 20.0 / 500.0
    pulls, white = [], []
    for _ in range(3):
        mosaic = drizzled_sky(rng, (600, 600), subtract=subtract)
        for tile in (mosaic[y:y + 150, x:x + 150]
                     for y in range(0, 600, 150) for x in range(0, 600, 150)):
            with warnings.catch_warnings():
                warnings.simplefilter('error')  # no doubt about the gain
                if subtract:  # a tile's third moment may not show it
                    warnings.filterwarnings(
                        'ignore', 'gain=2000: a level of .* is not the '
                        'photons', AstropyUserWarning)
                sky = SkyEstimate.from_image(tile, gain=2000.0)
            factor = sky.meta['noise_correlation_factor']
            pulls.append((sky.value - truth) / sky.error_on_mean)
            white.append(pulls[-1] * np.sqrt(factor))
    pulls, white = np.array(pulls), np.array(white)
    assert abs(pulls.mean()) < 0.35  # 48 levels: +-0.15 statistical
    assert 0.8 < pulls.std() < 1.2
    assert white.std() > 1.25


def test_noise_model_replaces_the_level_factor():
    """With noise= the sky level's error takes the blank-aperture model's
    inflation, instead of (not on top of) the frame's own factor."""
    rng = np.random.default_rng(5)
    mosaic = drizzled_sky(rng, (300, 300)) * 500.0  # electrons
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(mosaic)
        noise = ApertureNoise.from_blank_apertures(mosaic, sky, seed=2)
        box = BoxAperture((150.0, 150.0), 9, 9)
        with_noise = measure(mosaic, box, sky, noise=noise)
        plain = measure(mosaic, box, sky)
    factor = sky.meta['noise_correlation_factor']
    assert factor > 1.5 and noise.correlated
    white = sky.error_on_mean / np.sqrt(factor)
    assert plain.budget.terms['sky_mean'] == pytest.approx(
        (81 * sky.error_on_mean) ** 2, rel=1e-12)
    n_sky = float(sky.n_pix)
    assert with_noise.budget.terms['sky_mean'] == pytest.approx(
        (81 * white * noise.level_scale(n_sky)) ** 2, rel=1e-9)


def test_drizzled_annulus_level_pulls():
    """Annulus levels on drizzled mosaics carry the frame's factor too:
    their pulls (the plain mean, no Poisson skew to remove) have spread
    0.9-1 (a 6 px wide ring holds a little less of the correlation than a
    large area, whose factor it takes), against 1.3-1.5 with the white
    error."""
    from photutils.aperture import CircularAnnulus

    rng = np.random.default_rng(30)
    centres = [(x, y) for y in range(20, 580, 30) for x in range(20, 580, 30)]
    pulls, white = [], []
    for _ in range(2):
        mosaic = drizzled_sky(rng, (600, 600))
        with warnings.catch_warnings():
            # a resampled pixel's variance is below its photons': the gain
            # fits once the variance is scaled back by the factor
            warnings.simplefilter('error')
            sky = SkyEstimate.from_annulus(
                mosaic, CircularAnnulus(centres, 6.0, 12.0), method='mean',
                gain=2000.0)
        factor = sky.meta['noise_correlation_factor']
        p = (np.asarray(sky.value) - 20.0 / 500.0) / np.asarray(
            sky.error_on_mean)
        pulls.extend(p)
        white.extend(p * np.sqrt(factor))
    pulls, white = np.array(pulls), np.array(white)
    assert abs(pulls.mean()) < 0.1  # 722 levels: +-0.04 statistical
    assert 0.85 < pulls.std() < 1.05
    assert white.std() > 1.2


def test_real_frames_level_factor(m13, saao_raw, sextractor_dir):
    """On real frames: astropy's crowded M13, whose sky pixels hold the
    cluster's unresolved light (neighbours correlated), gets a large
    factor in its level's error; ccdproc's raw SAAO frame and the Source
    Extractor ESO frame, whose neighbouring pixels the check finds
    uncorrelated, keep the white error exactly."""
    from ccdphot_ext import read_frame

    ccd, sky = m13
    factor = sky.meta['noise_correlation_factor']
    assert 20.0 < factor < 60.0
    assert sky.error_on_mean == pytest.approx(
        sky.efficiency * sky.std / np.sqrt(sky.n_pix) * np.sqrt(factor),
        rel=1e-12)
    with warnings.catch_warnings():  # ESO's header cards, SAAO's gradient
        warnings.simplefilter('ignore', AstropyUserWarning)
        frames = (saao_raw, read_frame(sextractor_dir / 'image.fits'))
        for frame in frames:
            white = SkyEstimate.from_image(frame)
            assert 'noise_correlation_factor' not in white.meta
            assert white.error_on_mean == pytest.approx(
                white.efficiency * white.std / np.sqrt(white.n_pix),
                rel=1e-12)
