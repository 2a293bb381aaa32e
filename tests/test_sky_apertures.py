"""The whole-frame level without the light of the stars measured
(`SkyEstimate.without_apertures`), the flag of rows the faint stars'
light may still bias, and skies of whole electrons."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture
from scipy.special import erf

from ccdphot_ext import (
    FLAG_NONPOSITIVE_FLUX,
    FLAG_RESIDUAL_BACKGROUND,
    SkyEstimate,
    photometer,
)
from ccdphot_ext.photometry.residual import check_crowded_sky

SHAPE = (192, 192)


def _stars(xy, flux, sigma=1.5):
    """Gaussian stars integrated over the pixels (erf), the frame's
    shape."""
    ny, nx = SHAPE
    edges_x = np.arange(nx + 1) - 0.5
    edges_y = np.arange(ny + 1) - 0.5
    s = np.sqrt(2.0) * sigma
    cx = np.diff(0.5 * erf((edges_x[None, :] - xy[:, :1]) / s), axis=1)
    cy = np.diff(0.5 * erf((edges_y[None, :] - xy[:, 1:]) / s), axis=1)
    return np.einsum('k,ky,kx->yx', flux, cy, cx)


def _grid(rng):
    """64 positions 24 px apart, each moved by up to half a pixel."""
    ys, xs = np.mgrid[12:181:24, 12:181:24]
    xy = np.c_[xs.ravel(), ys.ravel()].astype(float)
    return xy + rng.uniform(-0.5, 0.5, xy.shape)


def _pulls(sky_e, read_noise, r, n_frames, clean, fmin=20.0, fmax=400.0,
           seed=5):
    """Flux pulls (flags 0, or 8 for a flux not above 0) of faint stars
    measured with photometer against from_image(gain=1) (``clean``: its
    without_apertures), the truth the noise-free flux under the same pixel
    weights; and the level's lift taken out, per frame."""
    rng = np.random.default_rng(seed)
    pulls, lifts, flagged = [], [], 0
    for _ in range(n_frames):
        xy = _grid(rng)
        light = _stars(xy, rng.uniform(fmin, fmax, len(xy)))
        data = (rng.poisson(light + sky_e).astype(float)
                + rng.normal(0.0, read_noise, SHAPE))
        apertures = CircularAperture(xy, r)
        truth = apertures.do_photometry(light, method='exact')[0]
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)  # crowding
            sky = SkyEstimate.from_image(data, gain=1.0)
            used = sky.without_apertures(data, apertures) if clean else sky
            t = photometer(data, apertures, used, gain=1.0)
        ok = (np.asarray(t['flags']) & ~FLAG_NONPOSITIVE_FLUX) == 0
        flagged += int(np.count_nonzero(~ok))
        pulls.extend(((np.asarray(t['aperture_sum']) - truth)
                      / np.asarray(t['aperture_sum_err']))[ok])
        lifts.append(t.meta.get('sky_aperture_lift', 0.0)
                     / sky.error_on_mean)
    return np.array(pulls), np.array(lifts), flagged


def test_faint_stars_are_measured_against_a_level_without_their_light():
    """64 stars of 20-400 e- on a 100 e- sky, all below the source mask's
    reach: against from_image the pulls are -0.215 (the level +5.6 of its
    errors high), against its without_apertures centred."""
    pulls, lifts, flagged = _pulls(100.0, 5.0, 4.0, 20, clean=False)
    assert pulls.mean() < -0.15 and not lifts.any()
    pulls, lifts, flagged = _pulls(100.0, 5.0, 4.0, 20, clean=True)
    assert pulls.size >= 1270 and flagged <= 10
    assert abs(pulls.mean()) < 0.05
    assert abs(pulls.std() - 1.0) < 0.05
    assert np.all(lifts > 3.0)  # measured again in every frame


def test_a_level_whose_mask_covers_the_apertures_is_not_touched(rng):
    """Bright stars masked by the source mask: the same sky, bit for
    bit."""
    xy = _grid(rng)[::5]
    light = _stars(xy, np.full(len(xy), 2e4))
    data = rng.poisson(light + 100.0) + rng.normal(0.0, 5.0, SHAPE)
    sky = SkyEstimate.from_image(data, gain=1.0)
    apertures = CircularAperture(xy, 4.0)
    assert sky.without_apertures(data, apertures) is sky


def test_without_apertures_is_faithful_and_idempotent(rng):
    xy = _grid(rng)
    light = _stars(xy, rng.uniform(20.0, 400.0, len(xy)))
    data = rng.poisson(light + 100.0) + rng.normal(0.0, 5.0, SHAPE)
    sky = SkyEstimate.from_image(data, gain=1.0)
    apertures = CircularAperture(xy, 4.0)
    clean = sky.without_apertures(data, apertures)
    assert clean is not sky
    assert clean.method == sky.method == 'sigma_clip'
    assert clean.meta['aperture_lift'] == pytest.approx(sky.value
                                                        - clean.value)
    assert clean.meta['aperture_lift'] > 3 * sky.error_on_mean
    assert clean.n_pix < sky.n_pix
    assert 'estimator_bias' in clean.meta  # the Poisson model again
    # its own apertures are out: nothing more to take
    assert clean.without_apertures(data, apertures) is clean
    # another frame, or a sky made without a source mask: untouched
    other = data + 1.0
    assert sky.without_apertures(other, apertures) is sky
    plain = SkyEstimate.from_image(data, method='mean', mask_sources=False)
    assert plain.without_apertures(data, apertures) is plain
    with pytest.raises(TypeError, match='apertures'):
        sky.without_apertures(data, 'not an aperture')


def test_rows_the_faint_stars_light_may_bias_are_flagged():
    sky = SkyEstimate(100.0, 10.0, 10000, meta={'crowding_bias': 0.2})
    with pytest.warns(AstropyUserWarning, match=r'for 1 of 2 aperture\(s\)'
                      r' by more than 0.5 flux errors'):
        biased, message = check_crowded_sky(sky, [50.0, 400.0],
                                            [75.0, 150.0])
    assert biased.tolist() == [False, True]
    assert 'flagged 32' in message
    # no estimate (an annulus sky, a map, a level without a source mask)
    assert not check_crowded_sky(SkyEstimate(100.0, 10.0, 10000), 400.0,
                                 1.0)[0]
    # through photometer
    img = np.random.default_rng(2).normal(100.0, 10.0, (64, 64))
    sky = SkyEstimate(100.0, 10.0, 4096, meta={'crowding_bias': 2.0})
    with pytest.warns(AstropyUserWarning, match='too faint for the source'):
        t = photometer(img, CircularAperture([(20.0, 20.0)], 8.0), sky)
    assert t['flags'][0] & FLAG_RESIDUAL_BACKGROUND


@pytest.mark.parametrize('sky_e, gain', [(2.0, 2.0), (2.0, 1.0),
                                         (0.5, 1.0)])
@pytest.mark.parametrize('method', ['sigma_clip', 'median', 'mean'])
def test_a_sky_of_whole_electrons_is_its_pixels_mean(sky_e, gain, method):
    """No read noise: a clipped mean read a 2 e- sky 1.2-2.3 of its
    errors high, a 0.5 e- one 44 low; a median 0 with an error of 0. The
    level is the pixels' mean now, warned every time (the mean was that
    already: no warning)."""
    rng = np.random.default_rng(11)
    pulls = []
    for _ in range(40):
        data = rng.poisson(sky_e, (48, 48)) / gain
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter('always')
            sky = SkyEstimate.from_image(data, method=method, gain=gain)
        told = any('whole electrons' in str(w.message) for w in said)
        assert told == (method != 'mean')
        assert ('discrete_window' in sky.meta) == told
        # the mean and scatter of the pixels off the source mask (every
        # pixel within the window), the mean's error
        used = data.size - sky.meta.get('n_masked_sources', 0)
        assert sky.n_pix == used and sky.efficiency == 1.0
        if used == data.size:
            assert sky.value == pytest.approx(data.mean(), rel=1e-12)
            assert sky.std == pytest.approx(data.std(), rel=1e-9)
        assert sky.error_on_mean == pytest.approx(
            sky.std / np.sqrt(used), rel=1e-12)
        assert sky.error_on_mean > 0
        pulls.append((sky.value - sky_e / gain) / sky.error_on_mean)
    assert abs(np.mean(pulls)) < 0.4 and 0.75 < np.std(pulls) < 1.25


def test_read_noise_or_no_gain_is_not_discrete(rng):
    # whole ADU without a gain: the level as before, no warning
    data = rng.poisson(5.0, (64, 64)).astype(float)
    sky = SkyEstimate.from_image(data)
    assert 'discrete_window' not in sky.meta
    # 1 e- of read noise: continuous, the exact model as before
    data = rng.poisson(2.0, (64, 64)) + rng.normal(0.0, 1.0, (64, 64))
    sky = SkyEstimate.from_image(data, gain=1.0)
    assert 'discrete_window' not in sky.meta
