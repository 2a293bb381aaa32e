"""The error of a Background2D level, pixel by pixel: each mesh's noise
put through photutils' median filter and its interpolator. Seeded
realisations of star-free frames against the known sky: level pulls at
pixels spread over the frame (mesh centres, between them and beyond the
outer ones)."""

import math
import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.background import (
    Background2D,
    MeanBackground,
    MedianBackground,
    SExtractorBackground,
)

from ccdphot_ext import SkyEstimate
from ccdphot_ext.background.maps import BACKGROUND2D_EFFICIENCY

SIZE = 256
#: Pixels spread over a 256 x 256 frame (every 7th, offset from the mesh
#: grid): mesh centres, the points between them and the edges.
SAMPLE = np.ix_(np.arange(3, SIZE, 7), np.arange(5, SIZE, 7))
ESTIMATORS = {'SExtractor': SExtractorBackground, 'Median': MedianBackground,
              'Mean': MeanBackground}


def _frames(n, seed, *, sky=100.0, gain=1.0, poisson=False, slope=0.0):
    """Star-free frames: a sky of ``sky`` data units (plus ``slope``
    times its pixel noise across x), Gaussian of the Poisson noise or
    Poisson photons at ``gain`` with 2 e- of read noise."""
    rng = np.random.default_rng(seed)
    noise = math.sqrt(sky / gain)
    xx = np.arange(SIZE) / (SIZE - 1.0) - 0.5
    truth = np.broadcast_to(sky + slope * noise * xx, (SIZE, SIZE))
    for _ in range(n):
        if poisson:
            data = (rng.poisson(truth * gain)
                    + rng.normal(0.0, 2.0, truth.shape)) / gain
        else:
            data = rng.normal(truth, noise)
        yield data, truth


def _pulls(estimator='SExtractor', box=32, filter_size=3, *, n=16, seed=0,
           gain=None, with_data=False, mask=None, **frame):
    """Level pulls at the `SAMPLE` pixels, and those of one error per
    mesh, ``k_est sqrt(pi / (2 m)) rms / sqrt(n_mesh)`` (as before)."""
    pulls, per_mesh = [], []
    m = filter_size * filter_size
    f_filter = math.sqrt(math.pi / (2.0 * m)) if m > 1 else 1.0
    for data, truth in _frames(n, seed, gain=gain or 1.0, **frame):
        bkg = Background2D(data, box, filter_size=filter_size, mask=mask,
                           bkg_estimator=ESTIMATORS[estimator]())
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            sky = SkyEstimate.from_background2d(
                bkg, gain=gain, data=data if with_data else None,
                mask=mask if with_data else None)
        offset = (sky.value - truth)[SAMPLE]
        pulls.append(offset / sky.error_on_mean[SAMPLE])
        with np.errstate(divide='ignore', invalid='ignore'):
            analytic = (sky.efficiency * f_filter * sky.std
                        / np.sqrt(sky.n_pix))
            per_mesh.append(offset / analytic[SAMPLE])
    return np.array(pulls), np.array(per_mesh)


def _assert_calibrated(pulls):
    """Pulls (one frame a row) spread 1 +- 0.07 (16 frames: the spread's
    own error is 2-3%; fuller runs, in the docs, hold 1 +- 0.05) and
    centred within three errors of their mean, which the frames' means
    give (the level's error is common to a mesh's pixels, and a frame of
    large meshes has few: 0.03 for 64 meshes unfiltered, 0.16 for 16
    filtered ones; fuller runs hold the mean to 0.1)."""
    assert np.std(pulls) == pytest.approx(1.0, abs=0.07)
    means = pulls.reshape(len(pulls), -1).mean(axis=1)
    error = np.std(means, ddof=1) / math.sqrt(len(means))
    assert error < 0.2
    assert abs(np.mean(pulls)) < 3.0 * error


@pytest.mark.parametrize(('estimator', 'box', 'filter_size', 'before'), [
    ('SExtractor', 32, 1, (0.83, 0.92)),
    ('SExtractor', 32, 5, (1.08, 1.18)),
    ('SExtractor', 16, 3, (0.90, 0.97)),
    ('Median', 64, 3, (0.95, 1.08)),
    ('Mean', 32, 3, (0.98, 1.10)),
])
def test_flat_sky_level_pulls(estimator, box, filter_size, before):
    """One error per mesh left the pulls spread 0.87 without a filter
    (between mesh centres the spline averages the meshes: 0.5 of the
    error there) and 1.13 with a 5 x 5 one (at the edges the window is
    cut); the error propagated through the filter and interpolator gives
    0.95-1.00 in these regimes."""
    # (16 px meshes: 256 a frame, 8 frames are enough)
    pulls, per_mesh = _pulls(estimator, box, filter_size, seed=box,
                             n=8 if box == 16 else 16)
    assert before[0] < np.std(per_mesh) < before[1]
    _assert_calibrated(pulls)


def test_error_between_mesh_centres_follows_the_spline():
    """Without a filter, midway between four mesh centres photutils' spline
    averages them: the level scatters about 0.6 as much as at a centre,
    and so does its error (one error per mesh gave both the same)."""
    centres = np.ix_(np.arange(16, SIZE, 32), np.arange(16, SIZE, 32))
    between = np.ix_(np.arange(32, SIZE - 16, 32),
                     np.arange(32, SIZE - 16, 32))
    offsets, errors = [], []
    for data, truth in _frames(24, 5):
        bkg = Background2D(data, 32, filter_size=1)
        sky = SkyEstimate.from_background2d(bkg)
        offsets.append(sky.value - truth)
        errors.append(sky.error_on_mean)
    offsets, errors = np.array(offsets), np.array(errors)
    for where in (centres, between):
        scatter = np.std(offsets[:, where[0], where[1]])
        assert scatter == pytest.approx(
            np.sqrt(np.mean(errors[:, where[0], where[1]] ** 2)), rel=0.07)
    ratio = (np.mean(errors[:, between[0], between[1]])
             / np.mean(errors[:, centres[0], centres[1]]))
    assert 0.5 < ratio < 0.75


@pytest.mark.parametrize(('gain', 'sky', 'with_data'), [
    (2.0, 100.0, False), (0.5, 20.0, True)])
def test_poisson_sky_level_pulls(gain, sky, with_data):
    """Poisson skies with ``gain=`` (the estimator's bias removed), with
    and without the frame: calibrated pulls."""
    pulls, _ = _pulls(gain=gain, sky=sky, poisson=True, with_data=with_data,
                      seed=int(sky))
    _assert_calibrated(pulls)


def test_excluded_meshes_level_pulls():
    """A masked disc excludes meshes (photutils fills them by
    interpolation): the propagated error holds at every pixel, the
    interpolated ones too."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    mask = np.hypot(yy - 100.0, xx - 140.0) < 40.0
    pulls, _ = _pulls(mask=mask, seed=40)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_background2d(Background2D(
            next(_frames(1, 0))[0], 32, filter_size=3, mask=mask))
    assert sky.meta['n_excluded_meshes'] >= 2
    _assert_calibrated(pulls)


@pytest.mark.parametrize('slope', [0.8, 6.0])
def test_sloped_sky_level_pulls(slope):
    """A gentle (+-0.4 sigma across the frame) and a steep (+-3 sigma)
    slope: calibrated pulls (the filter's offset from the fitted slope
    taken from the level)."""
    pulls, _ = _pulls(slope=slope, seed=60 + int(slope))
    _assert_calibrated(pulls)


def test_mesh_level_error_is_the_estimators():
    """At mesh centres without a filter the error is the estimator's own,
    ``k_est rms / sqrt(n)`` (the spline passes through the meshes)."""
    data = next(_frames(1, 3))[0]
    bkg = Background2D(data, 32, filter_size=1)
    sky = SkyEstimate.from_background2d(bkg)
    centre = np.ix_(np.arange(48, 208, 32), np.arange(48, 208, 32))
    expected = (BACKGROUND2D_EFFICIENCY['SExtractorBackground']
                * sky.meta['rms_clip_factor']
                * np.asarray(bkg.background_rms_mesh)[1:-2, 1:-2]
                / np.sqrt(np.asarray(bkg.n_pixels_mesh)[1:-2, 1:-2]))
    np.testing.assert_allclose(sky.error_on_mean[centre], expected,
                               rtol=0.1)


def _sloped_frame():
    return next(_frames(1, 9, slope=6.0))[0]


def test_a_second_call_keeps_the_measured_mesh_levels():
    """photutils frees its measured mesh levels once both maps are read;
    a second `from_background2d` on the same map fitted the slope to the
    filtered grid (the level 1.5 errors off at the edges). Now both
    calls give the same map."""
    data = _sloped_frame()
    bkg = Background2D(data, 32, filter_size=3)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        first = SkyEstimate.from_background2d(bkg)
        second = SkyEstimate.from_background2d(bkg)
    assert second.meta['mesh_levels_from'] == 'photutils'
    np.testing.assert_array_equal(first.value, second.value)
    np.testing.assert_array_equal(first.error_on_mean, second.error_on_mean)


def test_maps_read_first_measure_the_meshes_again():
    """With the maps read first, the frame (``data=``) gives the measured
    mesh levels again, exactly; without it the filtered grid stands in,
    with a warning on a sloped sky."""
    data = _sloped_frame()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        fresh = SkyEstimate.from_background2d(
            Background2D(data, 32, filter_size=3), data=data)
    bkg = Background2D(data, 32, filter_size=3)
    _ = (bkg.background, bkg.background_rms)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        again = SkyEstimate.from_background2d(bkg, data=data)
    assert again.meta['mesh_levels_from'] == 'measured again'
    np.testing.assert_array_equal(fresh.value, again.value)
    bkg = Background2D(data, 32, filter_size=3)
    _ = (bkg.background, bkg.background_rms)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        filtered = SkyEstimate.from_background2d(bkg)
    assert filtered.meta['mesh_levels_from'] == 'filtered grid'
    assert any('freed its measured mesh levels' in str(w.message)
               and w.category is AstropyUserWarning for w in caught)
