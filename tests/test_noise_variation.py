"""The whole-frame sky's one per-pixel std on frames whose noise varies
across them: rows measured where it does not hold are flagged 64 and
warned about; frames of even noise are left alone."""

import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture
from scipy.ndimage import uniform_filter

from ccdphot_ext import FLAG_SKY_ANNULUS, SkyEstimate, photometer
from ccdphot_ext.background.noisevariation import NoiseVariation


def _grid(n, step, rng):
    g = np.arange(step / 2, n, step, dtype=float)
    x, y = (a.ravel() + rng.uniform(-0.5, 0.5, a.size)
            for a in np.meshgrid(g, g))
    return np.c_[x, y]


def _uneven(rng, n=256):
    """Noise 4 on the left half, 8 on the right (a mosaic of uneven
    depth), level 100."""
    sig = np.where(np.arange(n) < n // 2, 4.0, 8.0)[None, :]
    return 100.0 + rng.normal(0.0, 1.0, (n, n)) * sig


def test_ratio_and_error_of_a_two_level_frame():
    rng = np.random.default_rng(40)
    noise = NoiseVariation.measure(_uneven(rng), std=6.3)
    whole = np.sqrt((16.0 + 64.0) / 2.0)
    assert noise.ratio[:, :2] == pytest.approx(4.0 / whole, rel=0.05)
    assert noise.ratio[:, 2:] == pytest.approx(8.0 / whole, rel=0.05)
    # the error of white noise's ratio: 1 / sqrt(2 n) of 64 x 32 pairs
    assert noise.error[0, 0] == pytest.approx(
        noise.ratio[0, 0] / np.sqrt(2 * 64 * 32))
    assert noise.uneven


def test_uneven_depth_flags_the_rows_the_std_misses():
    """Pulls of r = 4 circles on blank sky (truth 0), against the
    whole-frame sky: the sky term of one std is 37% too large on the left
    and 26% too small on the right; every row there is flagged and the
    call warns."""
    rng = np.random.default_rng(41)
    img = _uneven(rng)
    pos = _grid(256, 16, rng)
    sky = SkyEstimate.from_image(img)
    with pytest.warns(AstropyUserWarning, match='pixel noise varies across '
                      r'the frame .*flagged 64'):
        t = photometer(img, CircularAperture(pos, 4.0), sky)
    flagged = (np.asarray(t['flags']) & FLAG_SKY_ANNULUS) > 0
    assert flagged.all()
    assert any('pixel noise varies' in n for n in t.meta['notes'])
    pulls = np.asarray(t['aperture_sum'] / t['aperture_sum_err'])
    left = pos[:, 0] < 128
    assert np.std(pulls[left]) < 0.8 < 1.15 < np.std(pulls[~left])


@pytest.mark.parametrize('kind', ['white', 'poisson', 'integer',
                                  'correlated', 'stars'])
def test_even_noise_flags_nothing(kind):
    """White, Poisson (with a gain), integer-valued, 3 x 3-correlated
    noise and a frame of stars (the source mask's holes): no row flagged
    64, no warning, pulls of blank circles as before."""
    rng = np.random.default_rng(42)
    n = 512
    pos = _grid(n, 16, rng)
    for _ in range(3):
        img = {'white': lambda: rng.normal(100.0, 5.0, (n, n)),
               'poisson': lambda: rng.poisson(200.0, (n, n)) / 2.0,
               'integer': lambda: np.round(rng.normal(1000.0, 3.0, (n, n))),
               'correlated': lambda: uniform_filter(
                   rng.normal(0.0, 9.0, (n, n)), 3) + 50.0,
               'stars': lambda: _stars(rng, n)}[kind]()
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter('always')  # (correlated: said, as before)
            sky = SkyEstimate.from_image(img)
            t = photometer(img, CircularAperture(pos, 4.0), sky)
        assert not sky.background_variation.noise.uneven, repr(
            sky.background_variation.noise)
        assert not any('pixel noise varies' in str(w.message)
                       for w in record)
        assert not np.any(np.asarray(t['flags']) & FLAG_SKY_ANNULUS)


def _stars(rng, n):
    yy, xx = np.mgrid[:n, :n]
    img = rng.normal(100.0, 5.0, (n, n))
    for x, y, f in zip(*rng.uniform(0, n, (2, 300)),
                       10 ** rng.uniform(2.5, 4.5, 300), strict=True):
        sl = (slice(max(int(y) - 8, 0), int(y) + 9),
              slice(max(int(x) - 8, 0), int(x) + 9))
        img[sl] += f / (2 * np.pi * 2.25) * np.exp(
            -((xx[sl] - x) ** 2 + (yy[sl] - y) ** 2) / 4.5)
    return img


def test_a_vignetted_flat_fielded_frame():
    """Flat-fielding a frame whose illumination falls to 0.4 in its corners
    raises the noise there by up to 1 / sqrt(0.4) (the level stays): 1.2
    times the whole frame's in the corner cells, whose rows are flagged;
    rows where it is near the frame's are not."""
    rng = np.random.default_rng(43)
    n = 512
    yy, xx = np.mgrid[:n, :n]
    r2 = ((xx - n / 2) ** 2 + (yy - n / 2) ** 2) / (n / 2) ** 2
    flat = 1.0 - 0.3 * r2
    img = rng.poisson(400.0 * flat) / flat / 2.0
    pos = np.array([(20.0, 20.0), (490.0, 20.0), (96.0, 160.0),
                    (416.0, 416.0)])
    with pytest.warns(AstropyUserWarning, match='pixel noise varies'):
        t = photometer(img, CircularAperture(pos, 4.0),
                       SkyEstimate.from_image(img))
    assert ((np.asarray(t['flags']) & FLAG_SKY_ANNULUS) > 0).tolist() == [
        True, True, False, False]


def test_no_check_with_an_uncertainty_map():
    """Each pixel's own noise enters from the map: nothing to flag."""
    rng = np.random.default_rng(44)
    img = _uneven(rng)
    sig = np.where(np.arange(256) < 128, 4.0, 8.0)[None, :].repeat(256, 0)
    ccd = CCDData(img, unit='adu', uncertainty=StdDevUncertainty(sig))
    t = photometer(ccd, CircularAperture(_grid(256, 32, rng), 4.0),
                   SkyEstimate.from_image(ccd))
    assert not np.any(np.asarray(t['flags']) & FLAG_SKY_ANNULUS)


def test_a_sky_of_another_frame_is_not_judged():
    rng = np.random.default_rng(45)
    img = _uneven(rng)
    sky = SkyEstimate.from_image(img)
    t = photometer(img[:, :200], CircularAperture(_grid(200, 32, rng), 4.0),
                   sky)
    assert not np.any(np.asarray(t['flags']) & FLAG_SKY_ANNULUS)


def test_rows_a_noise_model_scales_are_not_flagged():
    """With ``noise=``, the sky term of a row where the frame is noisier
    than its blank sky follows the local noise (the model's local ratio):
    such rows are no longer judged; the quieter half's, whose error the
    model does not lower, still are."""
    from ccdphot_ext import ApertureNoise

    rng = np.random.default_rng(46)
    img = _uneven(rng, 320)
    sky = SkyEstimate.from_image(img)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # how the model was measured
        noise = ApertureNoise.from_blank_apertures(img, sky, seed=2)
    pos = _grid(320, 32, rng)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        t = photometer(img, CircularAperture(pos, 4.0), sky, noise=noise)
    flagged = (np.asarray(t['flags']) & FLAG_SKY_ANNULUS) > 0
    scaled = np.asarray(t['sky_noise_ratio']) > 1.0
    left = pos[:, 0] < 160
    assert scaled[~left].mean() > 0.5
    assert not np.any(flagged & scaled)
    assert flagged[left].mean() > 0.5
    assert any('pixel noise varies' in str(w.message) for w in record)


@pytest.mark.parametrize('nx', [65, 129, 193])
def test_a_frame_one_pixel_past_the_cells(nx):
    """A frame 64 k + 1 pixels wide: its last cell column holds one pixel,
    no pair; the noise is measured (no broadcasting error) and that
    column keeps no pairs."""
    rng = np.random.default_rng(nx)
    img = rng.normal(100.0, 5.0, (130, nx))
    noise = NoiseVariation.measure(img, std=5.0)
    assert noise.ratio.shape == (3, nx // 64 + 1)
    assert noise.ratio[:2, :-1] == pytest.approx(1.0, abs=0.08)
    assert np.all(np.isnan(noise.ratio[:, -1]))
    sky = SkyEstimate.from_image(img)
    assert sky.std == pytest.approx(5.0, rel=0.05)
