# Licensed under a 3-clause BSD style license - see LICENSE
"""Background2D maps of digitised frames (whole data units, as read off an
ADC): the mesh median interpolated within the data unit."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture
from photutils.background import (
    Background2D,
    MeanBackground,
    MedianBackground,
    MMMBackground,
    SExtractorBackground,
)

from ccdphot_ext import SkyEstimate, find_stars, photometer
from ccdphot_ext.background.maps import (
    LatticeSExtractorBackground,
    frame_background2d,
    lattice_step,
    mesh_pixel_noise,
)
from ccdphot_ext.flags import FLAG_SHARP_PIXEL
from ccdphot_ext.utils.stats import MAD_TO_STD


def _frame(seed, sky=40.4, shape=(256, 256), gain=2.0, read_noise=5.0):
    """A star-free flat frame of ``sky`` ADU in whole data units."""
    rng = np.random.default_rng(seed)
    electrons = rng.poisson(np.full(shape, sky * gain))
    return np.round((electrons + rng.normal(0.0, read_noise, shape)) / gain)


def test_lattice_step():
    img = _frame(0)
    assert lattice_step(img) == (1.0, 0.0)
    step, offset = lattice_step(img * 0.02)  # electron/s of 100 s at gain 2
    assert step == pytest.approx(0.02, rel=1e-9)
    assert offset == pytest.approx(0.0, abs=1e-12)
    step, offset = lattice_step(img + 0.3)  # a whole level less a float one
    assert step == pytest.approx(1.0) and offset == pytest.approx(0.3)
    rng = np.random.default_rng(1)
    assert lattice_step(rng.normal(40.4, 5.0, (64, 64))) is None
    assert lattice_step(rng.normal(4000.0, 5.0, (64, 64))
                        .astype(np.float32)) is None
    assert lattice_step(np.full((8, 8), 3.0)) is None


def test_lattice_estimator_follows_the_median_between_units():
    # 40 000 pixels of 40.4 +- 5 in whole units: photutils' median is 40,
    # so its Source Extractor level reads 2.5 x 0.4 = 1 unit low; the
    # grouped median follows the sky's
    rng = np.random.default_rng(2)
    raw = rng.normal(40.4, 5.0, 40000)
    whole = np.round(raw)
    plain = SExtractorBackground(sigma_clip=None)(whole)
    lattice = LatticeSExtractorBackground(1.0)(whole)
    truth = SExtractorBackground(sigma_clip=None)(raw)
    assert plain - truth < -0.8
    assert lattice == pytest.approx(truth, abs=0.1)
    # along an axis, with NaN left out, as Background2D and the mesh
    # statistics call it
    rows = np.vstack([whole[:20000], whole[20000:]])
    rows[0, :100] = np.nan
    per_row = LatticeSExtractorBackground(1.0)(rows, axis=1)
    assert per_row.shape == (2,)
    assert np.all(np.abs(per_row - truth) < 0.15)


@pytest.mark.parametrize('seed', [3, 4])
def test_background2d_level_of_digitised_frame(seed):
    img = _frame(seed)
    bkg, _ = frame_background2d(img, box_size=64)
    assert isinstance(bkg.bkg_estimator, LatticeSExtractorBackground)
    sky = SkyEstimate.from_background2d(bkg, gain=2.0, data=img)
    assert sky.meta['bkg_estimator'] == 'SExtractorBackground'
    level = float(np.mean(sky.value))
    # photutils' own estimator read 40.4 - 0.75 here (0.9 below its
    # float twin); the interpolated median reads as the float frame
    assert level == pytest.approx(40.4, abs=0.15)
    dithered = img + np.random.default_rng(seed).uniform(-0.5, 0.5,
                                                          img.shape)
    float_bkg, _ = frame_background2d(dithered, box_size=64)
    assert not isinstance(float_bkg.bkg_estimator,
                          LatticeSExtractorBackground)
    float_level = float(np.mean(SkyEstimate.from_background2d(
        float_bkg, gain=2.0, data=dithered).value))
    assert level == pytest.approx(float_level, abs=0.1)


def test_background2d_digitised_frame_in_other_units():
    # the same frame in electron/s (100 s, gain 2): the same level
    img = _frame(5)
    adu = SkyEstimate.from_background2d(frame_background2d(img)[0],
                                        gain=2.0, data=img)
    rate = img * 0.02
    per_s = SkyEstimate.from_background2d(frame_background2d(rate)[0],
                                          gain=100.0, data=rate)
    np.testing.assert_allclose(np.asarray(per_s.value) / 0.02,
                               np.asarray(adu.value), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(per_s.error_on_mean) / 0.02,
                               np.asarray(adu.error_on_mean), rtol=1e-6)


def test_a_map_made_by_hand_on_a_digitised_frame_is_made_again():
    """A Background2D made with photutils' own median-based estimator on
    whole-unit data, given with its frame: the map is made again with the
    median interpolated within the step (meta['lattice_note']), quietly,
    and reads as the map made with LatticeSExtractorBackground by hand
    (photutils' own read about 0.9 ADU low). Where it cannot be made
    again (an estimator without such a twin) a warning names the step and
    the bound on the level's offset (filterwarnings is 'error')."""
    img = _frame(6)
    plain = SkyEstimate.from_background2d(
        Background2D(img, 64, filter_size=3), gain=2.0, data=img)
    assert 'LatticeSExtractorBackground' in plain.meta['lattice_note']
    by_hand = SkyEstimate.from_background2d(
        Background2D(img, 64, filter_size=3,
                     bkg_estimator=LatticeSExtractorBackground(
                         *lattice_step(img))), gain=2.0, data=img)
    assert 'lattice_note' not in by_hand.meta
    np.testing.assert_allclose(plain.value, by_hand.value, rtol=1e-12)
    np.testing.assert_allclose(plain.error_on_mean, by_hand.error_on_mean,
                               rtol=1e-12)
    assert float(np.mean(plain.value)) == pytest.approx(40.4, abs=0.15)
    # photutils' own level: about 0.9 ADU low
    assert float(np.mean(Background2D(img, 64, filter_size=3).background)
                 ) < 40.4 - 0.5
    median = SkyEstimate.from_background2d(
        Background2D(img, 64, filter_size=3,
                     bkg_estimator=MedianBackground()), data=img)
    assert 'LatticeMedianBackground' in median.meta['lattice_note']
    with pytest.warns(AstropyUserWarning,
                      match=r'steps of 1 .*MMMBackground.* up to 1\.5 off'):
        SkyEstimate.from_background2d(
            Background2D(img, 64, filter_size=3,
                         bkg_estimator=MMMBackground()), gain=2.0, data=img)
    SkyEstimate.from_background2d(
        Background2D(img, 64, filter_size=3,
                     bkg_estimator=MeanBackground()), gain=2.0, data=img)
    dithered = img + np.random.default_rng(6).uniform(-0.5, 0.5, img.shape)
    SkyEstimate.from_background2d(Background2D(dithered, 64, filter_size=3),
                                  gain=2.0, data=dithered)
    # without the frame there is nothing to look at: no warning
    SkyEstimate.from_background2d(Background2D(img, 64, filter_size=3),
                                  gain=2.0)


def test_real_raw_frame_reads_as_its_dithered_twin(saao_raw):
    """ccdproc's raw SAAO frame in whole ADU, its overscan median (a whole
    unit) taken off as a user would, trimmed to its exposed 512 x 512
    pixels: frame_background2d's map and the fluxes of the frame's stars
    read as on its dithered twin (the same frame plus uniform(-0.5, 0.5),
    whose mesh medians are continuous). photutils' own estimator on the
    whole-unit frame reads up to 8 of the map's errors off the twin (its
    mesh medians whole units on a sky of 84-88 ADU)."""
    raw = np.asarray(saao_raw.data, dtype=float)
    gain = saao_raw.meta['GAIN']
    overscan = np.median(raw[:, 3:13])  # BIASSEC
    assert overscan == np.round(overscan)
    img = raw[:512, 16:528] - overscan  # TRIMSEC less 8 unexposed rows
    assert lattice_step(img) == (1.0, 0.0)
    twin = img + np.random.default_rng(0).uniform(-0.5, 0.5, img.shape)
    with warnings.catch_warnings():  # the raw frame's gradient
        warnings.simplefilter('ignore', AstropyUserWarning)
        whole = SkyEstimate.from_background2d(
            frame_background2d(img)[0], gain=gain, data=img)
        dithered = SkyEstimate.from_background2d(
            frame_background2d(twin)[0], gain=gain, data=twin)
    error = np.asarray(dithered.error_on_mean)
    off = (np.asarray(whole.value) - np.asarray(dithered.value)) / error
    # measured: mean -0.12, rms 0.31 (photutils' estimator -0.91, 3.2)
    assert abs(off.mean()) < 0.3
    assert np.sqrt(np.mean(off ** 2)) < 0.5
    plain = Background2D(img, 64, filter_size=3)
    plain_off = (plain.background - np.asarray(dithered.value)) / error
    assert np.sqrt(np.mean(plain_off ** 2)) > 2.0
    assert np.abs(plain_off).max() > 5.0
    # the frame's stars, with each map: within 0.25 of their flux errors
    # of the twin's (measured 0.21 at most; photutils' map up to 1.3)
    stars = find_stars(twin, dithered, n_sigma=5)
    assert 15 < len(stars) < 40
    apertures = CircularAperture(
        np.column_stack([stars['x_center'], stars['y_center']]), 6.0)
    # its cosmic rays, measured with the stars: flag 1024, the same rows
    with pytest.warns(AstropyUserWarning, match='sharper than the frame'):
        ref = photometer(twin, apertures, dithered, gain=gain)
    with pytest.warns(AstropyUserWarning, match='sharper than the frame'):
        rows = photometer(img, apertures, whole, gain=gain)
    assert not np.any(rows['flags'] & ~FLAG_SHARP_PIXEL)
    assert rows['flags'].tolist() == ref['flags'].tolist()
    moved = ((rows['aperture_sum'] - ref['aperture_sum'])
             / ref['aperture_sum_err'])
    assert np.abs(moved).max() < 0.25
    assert abs(np.mean(moved)) < 0.1
    plain_sky = SkyEstimate(plain.background, dithered.std,
                            error_on_mean=error)
    with pytest.warns(AstropyUserWarning, match='sharper than the frame'):
        plain_rows = photometer(img, apertures, plain_sky, gain=gain)
    plain_moved = ((plain_rows['aperture_sum'] - ref['aperture_sum'])
                   / ref['aperture_sum_err'])
    assert np.abs(plain_moved).max() > 1.0


def _curved(seed, noise, depth=0.2, n=256):
    """A sky of 100 units dropping by ``depth`` to the edge midpoints
    (a deep stack's vignette), Gaussian noise of ``noise`` units: the
    frame in whole units, its float twin and the sky."""
    y, x = np.mgrid[:n, :n]
    c = (n - 1) / 2
    sky = 100.0 * (1.0 - depth * ((x - c) ** 2 + (y - c) ** 2) / c ** 2)
    raw = sky + np.random.default_rng(seed).normal(0.0, noise, sky.shape)
    return np.round(raw), raw, sky


@pytest.mark.parametrize('noise', [0.7, 1.3])
def test_pixel_noise_of_a_digitised_curved_sky(noise):
    """The pixels' noise in each mesh, from neighbouring pixels'
    differences: on whole units their median absolute deviation is a
    whole unit (1.05 units of noise for any noise of 0.7 to 1.3, flux
    pulls of blank apertures std 0.71 and 1.20); taken as spread over
    the step, it is the digitised pixels' noise, sqrt(sigma**2 + 1/12)
    (that of the float twin, sigma, on it)."""
    img, raw, sky = _curved(0, noise)
    bkg, _ = frame_background2d(img)
    found = mesh_pixel_noise(bkg, img)
    truth = np.std(img - sky)  # sqrt(noise**2 + 1/12)
    assert truth == pytest.approx(np.hypot(noise, 12 ** -0.5), rel=0.01)
    # each mesh within 10% (the even spread over a step is a model: up to
    # 7% at a noise of 0.7), their median within 3%
    assert np.all(np.abs(found / truth - 1) < 0.1)
    assert abs(np.median(found) / truth - 1) < 0.03
    # the rule before: the MAD of whole differences, a whole unit
    step = np.diff(img, axis=1)
    mad = np.median(np.abs(step - np.median(step)))
    assert mad == 1.0 and abs(MAD_TO_STD / np.sqrt(2) / truth - 1) > 0.2
    assert np.median(mesh_pixel_noise(bkg, raw)) == pytest.approx(
        noise, rel=0.02)
    with pytest.warns(AstropyUserWarning, match='flattens the sky'):
        whole = SkyEstimate.from_background2d(bkg, data=img)
        twin = SkyEstimate.from_background2d(frame_background2d(raw)[0],
                                             data=raw)
    assert np.median(whole.std) == pytest.approx(truth, rel=0.03)
    # blank apertures: pulls spread as on the float twin (0.95 and 0.96
    # against 0.97, 3 frames each; whole units 0.71 and 1.20 before; one
    # frame's spread scatters by about 0.05: the curved sky's map error)
    grid = np.arange(20.0, 236.0, 12.0)
    apertures = CircularAperture(
        [(x, y) for x in grid for y in grid], 3.0)
    spread = []
    for frame, sky in ((img, whole), (raw, twin)):
        with warnings.catch_warnings():  # the bowl's pixels correlate
            warnings.simplefilter('ignore', AstropyUserWarning)
            rows = photometer(frame, apertures, sky)
        assert not np.any(rows['flags'] & ~8)  # (8: a sum below 0)
        spread.append(np.std(rows['aperture_sum']
                             / rows['aperture_sum_err']))
    assert spread[0] == pytest.approx(spread[1], abs=0.1)
