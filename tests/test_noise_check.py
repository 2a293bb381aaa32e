"""The cheap correlated-noise check (`pixel_correlation`): stars, clusters,
gradients and integer frames do not look like correlated noise; 3x3
correlated noise is caught, with or without stars."""

import time
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from scipy.ndimage import uniform_filter

from ccdphot_ext import BoxAperture, SkyEstimate, photometer, read_frame
from ccdphot_ext.background.noisecheck import (
    CORRELATION_WARN,
    pixel_correlation,
)
from ccdphot_ext.datasets.sample import render_stars

FWHM_SIGMA = 3.0 / 2.3548


def _stars(rng, shape, n, *, cluster=None, flux=(1e3, 1e6)):
    """Gaussian stars (FWHM 3 px), uniform or in a central cluster of
    ``cluster`` pixels' spread; log-uniform fluxes."""
    if cluster:
        x, y = rng.normal(shape[1] / 2, cluster, (2, n))
    else:
        x, y = rng.uniform(0, shape[1], n), rng.uniform(0, shape[0], n)
    f = np.exp(rng.uniform(*np.log(flux), n))
    return render_stars(shape, x, y, f, sigma=FWHM_SIGMA)


def _white_star_field(seed, shape=(512, 512)):
    """White noise, stars everywhere, a dense central cluster and a
    gradient: everything that is not correlated noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    img = 1000.0 + 0.2 * xx - 0.1 * yy
    img += _stars(rng, shape, 300)
    img += _stars(rng, shape, 600, cluster=shape[0] / 8)
    return img + rng.normal(0.0, 10.0, shape)


def _correlated_star_field(seed, shape=(512, 512)):
    rng = np.random.default_rng(seed)
    noise = uniform_filter(rng.normal(0.0, 30.0, shape), 3)
    return 1000.0 + noise + _stars(rng, shape, 300)


@pytest.mark.parametrize('seed', range(8))
def test_star_rich_white_noise_is_not_correlated(seed):
    corr, err = pixel_correlation(_white_star_field(seed))
    # before: the central 160 x 160 patch of the cluster read 0.3-0.9
    assert abs(corr) < 4 * err + 0.01
    assert corr < CORRELATION_WARN
    assert 0.003 < err < 0.02


@pytest.mark.parametrize('seed', range(4))
def test_3x3_correlated_noise_is_caught(seed):
    corr, err = pixel_correlation(_correlated_star_field(seed))
    assert corr == pytest.approx(0.5, abs=0.04)  # (rho1 - rho2)/(1 - rho2)
    assert corr > 5 * err


def test_false_and_true_positive_rates_through_photometer():
    box = BoxAperture((100, 100), 15, 15)
    sky = SkyEstimate(1000.0, 10.0, 10000)
    warned = {'white': 0, 'correlated': 0}
    for seed in range(6):
        for kind, make in (('white', _white_star_field),
                           ('correlated', _correlated_star_field)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                photometer(make(100 + seed, (256, 256)), box, sky)
            warned[kind] += any('correlated' in str(w.message)
                                for w in caught)
    assert warned == {'white': 0, 'correlated': 6}


def test_big_star_rich_frame():
    """The reported case: 2048^2 white noise with thousands of FWHM-3
    stars (a cluster among them)."""
    rng = np.random.default_rng(2048)
    shape = (2048, 2048)
    img = 1000.0 + _stars(rng, shape, 2000) + _stars(rng, shape, 1500,
                                                       cluster=150)
    img += rng.normal(0.0, 10.0, shape)
    start = time.perf_counter()
    corr, err = pixel_correlation(img)
    first = time.perf_counter() - start
    assert abs(corr) < 0.03 and corr < 5 * err
    start = time.perf_counter()
    assert pixel_correlation(img) == (corr, err)  # cached by content
    assert time.perf_counter() - start < first
    img[1000, 1000] += 1.0  # a new frame: a new estimate
    assert pixel_correlation(img)[0] == pytest.approx(corr, abs=0.02)


def test_integer_frames_are_not_quantised():
    """A MAD of integer differences jumps by whole steps (the old check
    read exactly 0 on the real integer frames, even for correlated
    noise)."""
    rng = np.random.default_rng(5)
    white = np.round(rng.normal(300.0, 2.0, (400, 400)))
    corr_noise = np.round(300.0 + uniform_filter(rng.normal(0, 6.0,
                                                            (400, 400)), 3))
    c_white, e_white = pixel_correlation(white)
    c_corr, e_corr = pixel_correlation(corr_noise)
    assert abs(c_white) < 4 * e_white
    # quantisation noise (1/12 ADU^2 a pixel) dilutes it a little
    assert 0.4 < c_corr < 0.52 and c_corr > 5 * e_corr


def test_masked_and_nan_pixels_are_ignored():
    rng = np.random.default_rng(9)
    img = rng.normal(100.0, 5.0, (300, 300))
    img[100:200, 100:200] = uniform_filter(
        rng.normal(100.0, 15.0, (100, 100)), 3)
    mask = np.zeros(img.shape, bool)
    mask[90:210, 90:210] = True
    img[20:40, 20:40] = np.nan
    corr, err = pixel_correlation(img, mask=mask)
    assert abs(corr) < 4 * err
    assert all(np.isnan(pixel_correlation(np.ones((5, 5)))))


def test_real_frames(sample_ccd, saao, sextractor_dir, m13):
    """The bundled sample, ccdproc's SAAO frame and the Source Extractor
    ESO frame read white; astropy's M13 (a scanned plate, whose blank
    apertures grow as N**0.9) reads correlated."""
    with pytest.warns(AstropyUserWarning, match='non-standard header card'):
        eso = read_frame(sextractor_dir / 'image.fits', unit='adu')
    for frame in (sample_ccd, saao, eso):
        corr, err = pixel_correlation(frame.data)
        assert abs(corr) < 0.03, corr
        assert not corr > 5 * err
    corr, err = pixel_correlation(m13[0].data)
    assert corr > 0.5 and corr > 5 * err


def test_cache_is_safe_across_threads():
    """Batches measure frames in threads: the shared cache never mixes up
    frames nor fails while another thread evicts an entry."""
    from concurrent.futures import ThreadPoolExecutor

    frames = [np.random.default_rng(i).normal(0.0, 1.0, (200, 200))
              for i in range(12)]
    frames[3] = uniform_filter(frames[3], 3)
    serial = [pixel_correlation(f) for f in frames]
    with ThreadPoolExecutor(6) as pool:
        threaded = list(pool.map(pixel_correlation, frames * 4))
    assert threaded == serial * 4
    assert threaded[3][0] > 0.4 and abs(threaded[0][0]) < 0.05
