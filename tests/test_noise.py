"""ApertureNoise: blank-sky apertures, noise= in measure/photometer, the
correlated-noise warning, and the real frames' blank-sky scatter."""

import math
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
from ccdphot_ext.background.noise import (
    _blank_sums,
    _robust_std,
    _source_mask,
    trend_image,
)


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


def _blank_ratio(data, sky, noise, sizes=(3, 5, 7, 9, 11), trend=None):
    """Scatter of independent blank-sky box sums over the predicted error
    (less the sky's large-scale ``trend``, the coefficients of
    `trend_image`, where given: each row's bias, flagged, not noise)."""
    resid = np.asarray(data, float) - sky.value
    bad = ~np.isfinite(resid)
    bad |= _source_mask(resid, sky.std, bad)
    if trend is not None:
        resid = resid - trend_image(trend, resid.shape)
    rng = np.random.default_rng(99)
    return {s: _robust_std(_blank_sums(resid, bad, s, 1500, rng))
            / noise(s * s) for s in sizes}


def test_real_frames_blank_sky_scatter_is_predicted(sextractor_dir, saao):
    with pytest.warns(AstropyUserWarning, match='non-standard header card'):
        eso = read_frame(sextractor_dir / 'image.fits', unit='adu')
    for data in (np.asarray(eso.data, float), np.asarray(saao.data, float)):
        with warnings.catch_warnings():  # ESO: its faint sources' lift
            warnings.filterwarnings('ignore', 'crowded frame',
                                    AstropyUserWarning)
            sky = SkyEstimate.from_image(data)
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
        trend = noise.meta['trend']  # (both have one: a bias, flagged)
        white = _blank_ratio(data, sky, lambda n, s=sky.std: s * np.sqrt(n),
                             trend=trend)
        ratios = _blank_ratio(data, sky, noise, trend=trend)
        # n_pix * sigma**2 is too small there (ESO 1.49, SAAO 1.16 about
        # their large-scale trends)
        assert white[11] > 1.1
        assert all(0.85 <= r <= 1.2 for r in ratios.values()), ratios


# -- correlated or white: every size, honest errors ---------------------------

def _exact_boxcar_sigma(side, sigma=15.0):
    """The exact scatter of a side x side sum of 3 x 3-boxcar noise."""
    from scipy.signal import convolve2d
    w = convolve2d(np.ones((side, side)), np.ones((3, 3)) / 9.0)
    return sigma * float(np.sqrt(np.sum(w * w)))


@pytest.mark.parametrize('seed', [13, 18, 19])
def test_crowded_correlated_frames_never_fall_back_to_white(seed):
    """1000 stars on a 300 x 300 frame of 3 x 3-correlated noise: the
    largest blank apertures are few and overlapping, and deciding from them
    alone called these three seeds white (sigma at 15 x 15 a third of the
    truth)."""
    from ccdphot_ext.datasets.sample import render_stars

    rng = np.random.default_rng(seed)
    noise = uniform_filter(rng.normal(0.0, 15.0, (300, 300)), 3)
    x, y = rng.uniform(0, 300, (2, 1000))
    img = 100.0 + noise + render_stars((300, 300), x, y,
                                       10 ** rng.uniform(2, 4.5, 1000),
                                       sigma=1.5)
    with warnings.catch_warnings():  # 'sources cover' most of the frame
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(img)
    model = ApertureNoise.from_blank_apertures(img, sky, seed=seed)
    assert model.correlated
    stat, dof = model.chi2
    assert dof == model.n_pix.size and stat > 100
    # overlapping apertures count as the area they cover
    assert np.all(model.n_independent <= model.n_apertures)
    assert model.n_independent[-1] < 0.5 * model.n_apertures[-1]
    # the noise's own 15 x 15 scatter, within the faint stars' share and
    # the extrapolation beyond the largest blank aperture (121 or 225
    # pixels here); the white line is a third of it
    assert 0.6 < model(225.0) / _exact_boxcar_sigma(15) < 1.5


def test_m13_is_correlated_at_every_seed(m13):
    """astropy's M13: 9-pixel sums scatter 2.6 times the white noise (of
    its blank sky less the cluster light's dome, which the model leaves
    out); a few overlapping 21-pixel apertures came out low and were once
    taken to mean white noise."""
    ccd, sky = m13
    data = np.asarray(ccd.data, float)
    for seed in range(4):
        with pytest.warns(AstropyUserWarning, match='pixel noise among'):
            model = ApertureNoise.from_blank_apertures(data, sky, seed=seed)
        assert model.correlated and model.trend_removed
        assert model(9.0) > 2.0 * model.sigma1 * 3.0


def test_white_noise_stays_white_at_every_seed():
    for seed in range(6):
        img = np.random.default_rng(seed).normal(100.0, 5.0, (200, 200))
        sky = SkyEstimate(100.0, 5.0, img.size)
        model = ApertureNoise.from_blank_apertures(img, sky, seed=seed)
        assert not model.correlated
        assert model(225.0) == 5.0 * 15.0


def _faint_star_frame(rng, shape=(192, 192), step=24):
    """White Poisson noise (sky 200 e-, 5 e- read noise, 2 e-/ADU) with
    49 Gaussian stars (1.5 px) of 300-3000 e- 24 px apart: ADU, the
    noise-free stars (ADU) and their positions."""
    from ccdphot_ext.datasets.sample import render_stars

    g = np.arange(step / 2 + 6, shape[0] - 6, step)
    x, y = (a.ravel() + rng.uniform(-0.5, 0.5, a.size)
            for a in np.meshgrid(g, g))
    flux = 10 ** rng.uniform(np.log10(300.0), np.log10(3000.0), x.size)
    stars = render_stars(shape, x, y, flux / 2.0, sigma=1.5)
    electrons = rng.poisson(200.0 + 2.0 * stars) + rng.normal(0, 5.0, shape)
    return electrons / 2.0, stars, np.column_stack([x, y])


def test_faint_stars_on_white_noise_are_masked():
    """Stars of a few times the sky noise at their peak (a 1000 e- star
    peaks at 4.7 sigma in one pixel), missed by a pixel-by-pixel 4-sigma
    mask, put their wings into the blank sums: white frames came out
    correlated in 15 of 15 frames and the pulls with noise= spread 0.88.
    The matched filter masks them: white, and unit pulls."""
    from photutils.aperture import (
        CircularAnnulus,
        CircularAperture,
        aperture_photometry,
    )

    rng = np.random.default_rng(8)
    pulls, n_correlated = [], 0
    for seed in range(12):
        data, stars, pos = _faint_star_frame(rng)
        circles = CircularAperture(pos, 4.0)
        truth = aperture_photometry(stars, circles, method='exact')[
            'aperture_sum']
        with warnings.catch_warnings():  # annuli reaching a neighbour
            warnings.simplefilter('ignore', AstropyUserWarning)
            sky = SkyEstimate.from_annulus(data, CircularAnnulus(pos, 8, 14),
                                           gain=2.0, exclude=circles)
            noise = ApertureNoise.from_blank_apertures(data, sky, seed=seed)
            t = photometer(data, circles, sky, gain=2.0, noise=noise)
        n_correlated += noise.correlated
        ok = np.asarray(t['flags']) == 0
        pulls.append(((t['aperture_sum'] - truth) / t['aperture_sum_err'])[
            ok])
    pulls = np.concatenate(pulls)
    assert n_correlated <= 1
    assert pulls.size > 500
    assert abs(pulls.mean()) < 0.1
    assert np.std(pulls) == pytest.approx(1.0, abs=0.05)


def _cluster_frame(seed, glow):
    """300 stars (1.5 px, 10**3-10**4.5 e-) around the centre of a
    300 x 300 Poisson sky of 100 e- (5 e- read noise), on the unresolved
    light of a cluster peaking at ``glow`` e- (60 px): its photon noise is
    up to 3 times the blank sky's where the stars are."""
    from ccdphot_ext.datasets.sample import render_stars

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:300, :300]
    light = glow * np.exp(-((xx - 150.0) ** 2 + (yy - 150.0) ** 2)
                          / (2 * 60.0 ** 2))
    x, y = np.clip(rng.normal(150.0, 60.0, (2, 300)), 5, 295)
    stars = render_stars((300, 300), x, y, 10 ** rng.uniform(3, 4.5, 300),
                         sigma=1.5)
    return (rng.poisson(100.0 + light + stars)
            + rng.normal(0.0, 5.0, (300, 300)))


@pytest.mark.parametrize('seed', [0, 1])
def test_noisier_sky_among_the_sources_is_warned(seed):
    """Blank apertures can only be placed away from the sources; where a
    cluster's unresolved light makes the sky among them noisier, the model
    is too small there, and says so (the same stars without that light:
    no warning)."""
    data = _cluster_frame(seed, 900.0)
    sky = SkyEstimate.from_image(data)
    with pytest.warns(AstropyUserWarning, match='pixel noise among the '
                      'masked sources is 1.[4-9] times'):
        model = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    assert model.noise_near_sources > 1.3
    assert 'scaled by the local pixel noise' in model.note
    flat = _cluster_frame(seed, 0.0)
    sky = SkyEstimate.from_image(flat)
    model = ApertureNoise.from_blank_apertures(flat, sky, seed=1)
    assert model.noise_near_sources == pytest.approx(1.0, abs=0.05)
    assert 'local pixel noise' not in model.note
    # no block significantly noisier: every sky term as the model gives it
    assert np.all(model.local_noise == 1.0)


def test_thin_apertures_on_correlated_noise_are_warned(rng):
    """The model holds the covariance of compact apertures: a 1 x 40 box
    on 3 x 3-correlated noise holds less, and its sky term is too large
    (by the factor the warning gives, within 10% of the exact one);
    squares and circles are not warned about."""
    from photutils.aperture import CircularAperture
    from scipy.signal import convolve2d

    from ccdphot_ext.background.noise import thin_factor

    img = _correlated(rng, (400, 400))
    sky = SkyEstimate(100.0, float(img.std()), img.size)
    model = ApertureNoise.from_blank_apertures(img, sky, seed=3)
    exact = 15.0 * math.sqrt(np.sum(convolve2d(
        np.ones((1, 40)), np.ones((3, 3)) / 9.0) ** 2))
    factor = thin_factor(model, 1.0, 40.0)
    assert factor == pytest.approx(exact / model(40.0), rel=0.1)
    assert exact / model(40.0) < 0.8
    for w, h in ((40, 1), (1, 40)):
        with pytest.warns(AstropyUserWarning,
                          match=r'BoxAperture of 1.0 x 40.0 pixels is much '
                                r'thinner.* about 1\.\d\d times too large'):
            photometer(img, BoxAperture((200.0, 200.0), w, h), sky,
                       noise=model)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        measure(img, BoxAperture((200.0, 200.0), 15, 15), sky, noise=model)
        photometer(img, CircularAperture([(100.0, 100.0), (200.0, 200.0)],
                                         4.0), sky, noise=model)


# -- the sky route -------------------------------------------------------------

def _gradient_frame(seed, shape=(512, 512)):
    """White noise (sigma 10) with a gradient of +-0.4 sigma across."""
    rng = np.random.default_rng(seed)
    xx = np.arange(shape[1])[None, :]
    return 100.0 + rng.normal(0.0, 10.0, shape) + 4.0 * (
        2.0 * xx / (shape[1] - 1) - 1.0)


def test_large_scale_background_is_no_noise_on_any_route():
    from photutils.aperture import CircularAnnulus
    from photutils.background import Background2D, MeanBackground

    img = _gradient_frame(1)
    glob = SkyEstimate.from_image(img)
    model = ApertureNoise.from_blank_apertures(img, glob, seed=1)
    # against one level the gradient scatters 25-pixel boxes many times
    # the white noise; it biases each flux by its position, which the
    # whole-frame sky flags (flag 32): the model leaves it out
    assert model.route == 'global' and model.trend_removed
    assert not model.correlated
    assert model(625.0) == model.sigma1 * 25.0 < glob.std * 25.0
    bkg = Background2D(img, 64, filter_size=3, bkg_estimator=MeanBackground())
    with pytest.warns(AstropyUserWarning, match='median filter'):
        bkg_sky = SkyEstimate.from_background2d(bkg)
    mapped = ApertureNoise.from_blank_apertures(img, bkg_sky, seed=1)
    assert mapped.route == 'map' and not mapped.correlated
    ann = SkyEstimate.from_annulus(img, CircularAnnulus((50.0, 50.0), 12, 18))
    local = ApertureNoise.from_blank_apertures(img, ann, seed=1)
    assert local.route == 'annulus' and not local.correlated
    assert local.level_factor == pytest.approx(1.0, abs=0.1)
    assert local.level_scale(400) == 1.0
    # a model measured one way, used another, is warned about
    boxes = BoxAperture([(100.0, 100.0)], 9, 9)
    sky = SkyEstimate.from_annulus(img, CircularAnnulus((100.0, 100.0), 12,
                                                        18))
    with pytest.warns(AstropyUserWarning, match='global sky but the '
                      'photometry uses the annulus sky'):
        photometer(img, boxes, sky, noise=model)
    t = photometer(img, boxes, sky, noise=local)
    assert t['var_sky_mean'][0] == pytest.approx(
        (81 * sky.error_on_mean[0]) ** 2, rel=1e-12)


def test_annulus_route_measures_the_level_error_of_correlated_noise(rng):
    """3 x 3-correlated noise: an annulus level is less certain than its
    white-noise error; with noise= the sky_mean term carries the measured
    factor, and photometer's errors of annulus-subtracted blank sums are
    calibrated."""
    from photutils.aperture import CircularAnnulus

    img = _correlated(rng, (400, 400))
    ring = CircularAnnulus((50.0, 50.0), 8, 12)
    model = ApertureNoise.from_blank_apertures(
        img, SkyEstimate.from_annulus(img, ring), seed=2)
    assert model.route == 'annulus' and model.correlated
    assert 2.0 < model.level_factor < 3.5  # boxcar noise: ~3 on large sums
    centres = np.column_stack(
        [np.tile(np.arange(20, 381, 30.0), 13),
         np.repeat(np.arange(20, 381, 30.0), 13)])
    sky = SkyEstimate.from_annulus(img, ring.copy().__class__(centres, 8, 12))
    t = photometer(img, BoxAperture(centres, 7, 7), sky, noise=model)
    # the annuli's error holds the frame's correlation factor (the sum of
    # the 3 x 3 boxcar's autocorrelation, 9 up to the measurement's reach),
    # as large as the blank annuli's measured level factor
    factor = sky.meta['noise_correlation_factor']
    assert math.sqrt(factor) == pytest.approx(model.level_factor, rel=0.25)
    white = sky.error_on_mean / math.sqrt(factor)
    assert np.all(t['var_sky_mean'] > 4.0 * (49 * white) ** 2)
    # noise= replaces the factor by the model's, not on top of it
    np.testing.assert_allclose(
        t['var_sky_mean'], (49 * white * model.level_scale(sky.n_pix)) ** 2,
        rtol=1e-9)
    pulls = np.asarray(t['aperture_sum'] / t['aperture_sum_err'])
    assert _robust_std(pulls) == pytest.approx(1.0, abs=0.15)


# -- fractional pixels with noise= ----------------------------------------------

def test_noise_keeps_the_squared_weights_of_fractional_pixels(rng):
    """White noise, r = 3 circles at sub-pixel positions: with noise= the
    sky term is sum(w**2) sigma**2 (it was sigma**2 sum(w), 4% too large)
    and the pulls have unit spread."""
    from photutils.aperture import CircularAperture

    from ccdphot_ext.aperture.utils import aperture_weights

    pulls = []
    for seed in range(8):
        img = np.random.default_rng(seed).normal(100.0, 10.0, (256, 256))
        sky = SkyEstimate(100.0, 10.0, 10 ** 9)
        model = ApertureNoise.from_blank_apertures(img, sky, seed=seed)
        assert not model.correlated
        circles = CircularAperture(rng.uniform(10, 246, (500, 2)), 3.0)
        t = photometer(img, circles, sky, noise=model)
        pulls.append(np.asarray(t['aperture_sum'] / t['aperture_sum_err']))
    _, w, _ = aperture_weights(circles[0], img.shape)
    assert t['var_sky'][0] == pytest.approx(100.0 * np.sum(w * w),
                                            rel=1e-12)
    pulls = np.concatenate(pulls)  # 4000 apertures: std known to 1.1%
    assert abs(pulls.mean()) < 0.05
    assert pulls.std() == pytest.approx(1.0, abs=0.05)
