"""The sky term of ``noise=`` follows the local pixel noise: where the sky
among the sources is noisier than the blank sky the model was measured
on, each aperture's sky term is scaled by the square of the ratio
(`ApertureNoise.local_ratio`); elsewhere, and on frames without such sky,
the error bars are those of the model, bit for bit."""

import copy
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus
from scipy.ndimage import binary_dilation

from ccdphot_ext import (
    ApertureNoise,
    BoxAperture,
    SkyEstimate,
    measure,
    photometer,
)
from ccdphot_ext.background.noise import (
    _blank_corners,
    _local_cores,
    _robust_std,
)


def _half_noisy(seed):
    """White noise of 5 on the left half, sqrt(125) on the right half,
    whose many sources (every 12 pixels) leave no blank sky there: the
    model is measured on the left half. Boxes between the sources on the
    right have a true sum of 0 (the sky level 100 is exact)."""
    rng = np.random.default_rng(seed)
    img = rng.normal(100.0, 5.0, (320, 320))
    img[:, 160:] += rng.normal(0.0, 10.0, (320, 160))
    img[6::12, 166::12] += 3000.0
    return img


def _model(data, sky):
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always', AstropyUserWarning)
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    return noise, [str(w.message) for w in said]


def _unscaled(table):
    """The errors the model alone gives (the sky term without the local
    ratio's square)."""
    r = np.asarray(table['sky_noise_ratio'])
    var = np.asarray(table['aperture_sum_err']) ** 2
    sky = np.asarray(table['var_sky'])
    return np.sqrt(var - sky + sky / r ** 2)


def test_noisier_sky_among_sources_pulls():
    """Monte Carlo: blank 5 x 5 boxes among the sources of the noisy half,
    pulls of unit spread (2.2 without the local ratio); boxes on the
    blank half keep the model's error bit for bit."""
    pulls, unscaled = [], []
    sky = SkyEstimate(100.0, 5.0, 320 * 320)
    yy, xx = np.mgrid[12:300:12, 184:300:12]
    among = np.column_stack([xx.ravel(), yy.ravel()]).astype(float)
    blank = among - [160.0, 0.0]
    for seed in range(4):
        data = _half_noisy(seed)
        noise, said = _model(data, sky)
        assert len(said) == 1 and 'scales the sky term' in said[0]
        with warnings.catch_warnings():
            # its one-pixel sources are sharper than any star: flag 1024
            warnings.filterwarnings('ignore', message='.* sharper than')
            t = photometer(data, BoxAperture(among, 5, 5), sky,
                           noise=noise)
        assert 'sky_noise' in t.meta and 'sky_noise_local' in t.meta
        ratio = np.asarray(t['sky_noise_ratio'])
        assert np.all(ratio > 1.0) and 1.9 < np.median(ratio) < 2.5  # 2.24
        pulls.append(np.asarray(t['aperture_sum'] / t['aperture_sum_err']))
        unscaled.append(np.asarray(t['aperture_sum']) / _unscaled(t))
        # the blank half: ratio exactly 1, the model's own sky term
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='.* sharper than')
            tb = photometer(data, BoxAperture(blank, 5, 5), sky,
                            noise=noise)
        assert 'sky_noise_ratio' not in tb.colnames
        assert np.array_equal(tb['var_sky'], np.full(len(tb), noise.variance(
            25.0)))
    pulls, unscaled = np.concatenate(pulls), np.concatenate(unscaled)
    assert pulls.size > 600
    assert abs(pulls.mean()) < 0.1
    assert np.std(pulls) == pytest.approx(1.0, abs=0.05)
    assert np.std(unscaled) > 1.8


def test_measure_is_photometer_and_numpy_with_the_local_ratio():
    data = _half_noisy(5)
    sky = SkyEstimate(100.0, 5.0, data.size)
    noise, _ = _model(data, sky)
    box = BoxAperture((244.0, 120.0), 7, 7)
    res = measure(data, box, sky, noise=noise)
    t = photometer(data, box, sky, noise=noise)
    assert res.budget.terms['sky'] == t['var_sky'][0]
    assert res.flux_err == t['aperture_sum_err'][0]
    ratio = float(noise.local_ratio(244.0, 120.0))
    assert t['sky_noise_ratio'][0] == ratio > 1.5
    assert res.budget.terms['sky'] == pytest.approx(
        noise.variance(49.0) * ratio ** 2, rel=1e-12)
    assert any('local pixel noise' in n for n in res.budget.notes)
    assert res.compare_numpy().meta['max_abs_rel_diff'] < 1e-10
    # on a frame of another shape the blocks cannot be placed: warned
    with pytest.warns(AstropyUserWarning, match='not scaled by the local'):
        other = measure(data[:300], box, sky, noise=noise)
    assert other.budget.terms['sky'] == noise.variance(49.0)


def test_white_frame_with_stars_is_unchanged():
    """No sky noisier than the blank sky's: every block reads 1, and the
    table is the one of the model without a local map, bit for bit."""
    from ccdphot_ext.datasets.sample import render_stars

    rng = np.random.default_rng(4)
    x, y = rng.uniform(10, 290, (2, 60))
    data = rng.poisson(100.0 + render_stars(
        (300, 300), x, y, 10 ** rng.uniform(3, 4.5, 60), sigma=1.5)) * 1.0
    sky = SkyEstimate.from_image(data, gain=1.0)
    noise, said = _model(data, sky)
    assert not said and np.all(noise.local_noise == 1.0)
    bare = copy.copy(noise)
    bare.local_noise = None
    boxes = BoxAperture(np.column_stack([x, y]), 9, 9)
    t = photometer(data, boxes, sky, noise=noise, gain=1.0)
    t0 = photometer(data, boxes, sky, noise=bare, gain=1.0)
    assert t.colnames == t0.colnames and 'sky_noise_ratio' not in t.colnames
    for name in t.colnames:
        assert np.array_equal(np.asarray(t[name]), np.asarray(t0[name]))


def test_m13_among_the_stars(m13):
    """Astropy's M13: 7 x 7 boxes between its stars (clear of every source
    found against a local background, grown by 2 pixels) against an
    annulus each. Where the local pixel noise is significantly above the
    blank sky's (1723 of 3000 boxes), their sums scatter 1.30 times the
    model's error, and 1.14 times the error with the local ratio."""
    data = np.asarray(m13[0].data, dtype=float)
    glob = m13[1]
    resid = data - glob.value
    bad = ~np.isfinite(resid)
    clear = bad | binary_dilation(_local_cores(resid, glob.std, bad),
                                  iterations=2)
    y0, x0 = _blank_corners(clear, 7, 3000, np.random.default_rng(7))
    centres = np.column_stack([x0, y0]) + 3.0
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_annulus(data, CircularAnnulus(centres, 9, 15))
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
        t = photometer(data, BoxAperture(centres, 7, 7), sky, noise=noise)
    ratio = np.asarray(t['sky_noise_ratio'])
    scaled = ratio > 1.0
    assert 1000 < np.count_nonzero(scaled) < 2500
    flux = np.asarray(t['aperture_sum'])[scaled]
    before = _robust_std(flux / _unscaled(t)[scaled])
    after = _robust_std(flux / np.asarray(t['aperture_sum_err'])[scaled])
    assert before > 1.25
    assert 0.95 < after < before - 0.1
