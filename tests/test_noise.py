"""ApertureNoise: blank-sky apertures, noise= in measure/photometer, the
correlated-noise warning, and the real frames' blank-sky scatter."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from scipy.ndimage import uniform_filter

from ccdphot_ext import (
    ApertureNoise,
    BoxAperture,
    SkyEstimate,
    measure,
    photometer,
    read_frame,
)
from ccdphot_ext.background.noise import _blank_sums, _robust_std, _source_mask


def _correlated(rng, shape=(300, 300)):
    return uniform_filter(rng.normal(0.0, 15.0, shape), 3) + 100.0


def test_white_noise_model_is_exactly_white(rng):
    img = rng.normal(100.0, 5.0, (300, 300))
    sky = SkyEstimate(100.0, 5.0, img.size)
    noise = ApertureNoise.from_blank_apertures(img, sky, seed=1)
    assert not noise.correlated
    assert noise(225.0) == 5.0 * 15.0  # never inflated
    assert noise.beta == pytest.approx(0.5, abs=0.05)
    assert noise.meta['mask'] == 'segmentation'
    assert list(noise.n_pix) == [s * s for s in noise.meta['sizes']]


def test_correlated_noise_is_measured(rng):
    img = _correlated(rng)
    sky = SkyEstimate(100.0, float(np.std(img)), img.size)
    noise = ApertureNoise.from_blank_apertures(img, sky, seed=1)
    assert noise.correlated and noise.beta > 0.6
    # a 3x3 boxcar: the sum of a large box has ~3x the white-noise scatter
    assert 2.5 < noise(225) / (sky.std * 15) < 3.2
    assert 'blank-sky apertures' in noise.note
    html = noise._repr_html_()
    assert '<table' in html and 'correlated noise' in html


def test_measure_and_photometer_use_it_and_agree(rng):
    img = _correlated(rng)
    sky = SkyEstimate(100.0, float(np.std(img)), img.size)
    noise = ApertureNoise.from_blank_apertures(img, sky, seed=2)
    box = BoxAperture((150, 150), 15, 15)
    with pytest.warns(AstropyUserWarning, match='correlated'):
        plain = measure(img, box, sky, gain=2.0)
    res = measure(img, box, sky, gain=2.0, noise=noise)
    assert res.budget.terms['sky'] == noise(225) ** 2
    assert res.budget.terms['sky'] > 5 * plain.budget.terms['sky']
    assert any('blank-sky' in n for n in res.budget.notes)
    assert res.compare_numpy().meta['max_abs_rel_diff'] < 1e-10
    boxes = BoxAperture([(60, 60), (150, 150)], 15, 15)
    for engine in ('box', 'general'):
        t = photometer(img, boxes, sky, gain=2.0, noise=noise, engine=engine)
        assert t['aperture_sum_err'][1] == res.flux_err
        assert t.meta['sky_noise'] == repr(noise)


def test_no_warning_on_white_noise_with_stars(rng):
    img = rng.normal(100.0, 5.0, (200, 200))
    yy, xx = np.mgrid[:200, :200]
    for x, y in rng.uniform(20, 180, (30, 2)):
        img += 2000 * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        measure(img, BoxAperture((100, 100), 9, 9),
                SkyEstimate(100.0, 5.0, img.size))


def test_bad_input(rng):
    img = rng.normal(100.0, 5.0, (100, 100))
    sky = SkyEstimate(100.0, 5.0, img.size)
    with pytest.raises(TypeError, match='sky'):
        ApertureNoise.from_blank_apertures(img, 100.0)
    with pytest.raises(ValueError, match='sizes'):
        ApertureNoise.from_blank_apertures(img, sky, sizes=[3])
    with pytest.raises(ValueError, match='blank sky'):
        ApertureNoise.from_blank_apertures(img, sky,
                                           mask=np.ones(img.shape, bool))
    with pytest.raises(TypeError, match='noise'):
        measure(img, BoxAperture((50, 50), 5, 5), sky, noise=3.0)


def _blank_ratio(data, sky, noise, sizes=(3, 5, 7, 9, 11)):
    """Scatter of independent blank-sky box sums over the predicted error."""
    resid = np.asarray(data, float) - sky.value
    bad = ~np.isfinite(resid)
    bad |= _source_mask(resid, sky.std, bad)
    rng = np.random.default_rng(99)
    return {s: _robust_std(_blank_sums(resid, bad, s, 1500, rng))
            / noise(s * s) for s in sizes}


def test_real_frames_blank_sky_scatter_is_predicted(sextractor_dir, saao):
    with pytest.warns(AstropyUserWarning, match='non-standard header card'):
        eso = read_frame(sextractor_dir / 'image.fits', unit='adu')
    for data in (np.asarray(eso.data, float), np.asarray(saao.data, float)):
        sky = SkyEstimate.from_image(data)
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
        white = _blank_ratio(data, sky, lambda n, s=sky.std: s * np.sqrt(n))
        ratios = _blank_ratio(data, sky, noise)
        assert white[11] > 1.25  # n_pix * sigma**2 is too small there
        assert all(0.85 <= r <= 1.2 for r in ratios.values()), ratios
