"""Background2D maps of frames with stars: photutils' sigma clip keeps the
stars' wings and the faint stars, which lift every mesh's level.
``from_background2d(..., data=)`` measures the meshes again without the
whole-frame sky's source mask and removes that lift; without ``data`` the
photometry flags the rows it biases. Seeded realisations against the known
sky and noise-free star sums."""

import warnings

import numpy as np
import pytest
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture, aperture_photometry
from photutils.background import (
    Background2D,
    MedianBackground,
    SExtractorBackground,
)

from ccdphot_ext import SkyEstimate, photometer
from ccdphot_ext.background.maps import MeshStatistics
from ccdphot_ext.datasets.sample import simulate_frame
from ccdphot_ext.flags import FLAG_RESIDUAL_BACKGROUND

SKY, READ_NOISE, SIZE = 100.0, 5.0, 512
#: Mesh centres of a 512 x 512 frame in 64-pixel meshes.
CENTRES = np.ix_(np.arange(32, SIZE, 64), np.arange(32, SIZE, 64))


def _frame(seed, n_stars=100):
    """``n_stars`` of 300 to 10**4 ADU (as many per decade of flux, 1.8 px
    Gaussian) on a 100 ADU Poisson sky (1 e-/ADU, 5 e- read noise); the
    frame, the star positions and their noise-free sums in r = 4
    circles."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(8, SIZE - 8, (2, n_stars))
    stars = Table({'x': x, 'y': y,
                   'flux': 10 ** rng.uniform(np.log10(300.0), 4.0,
                                             n_stars)})
    data, _, model = simulate_frame((SIZE, SIZE), SKY, stars, gain=1.0,
                                    read_noise=READ_NOISE, seed=rng)
    apertures = CircularAperture(np.column_stack([x, y]), r=4.0)
    truth = np.asarray(aperture_photometry(model - SKY, apertures,
                                           method='exact')['aperture_sum'])
    return data, apertures, truth


@pytest.fixture(scope='module')
def star_frames():
    return [_frame(seed) for seed in range(4)]


def _skies(data, estimator, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        return [SkyEstimate.from_background2d(
            Background2D(data, 64, filter_size=3, bkg_estimator=estimator),
            gain=1.0, **given) for given in ({}, {'data': data, **kwargs})]


def _pulls(sky):
    return ((sky.value[CENTRES] - SKY) / sky.error_on_mean[CENTRES]).ravel()


def test_mesh_levels_measured_again_are_photutils(star_frames):
    """Measured again on the same pixels, the meshes are photutils' own
    (no filter: its mesh grid is its measured levels)."""
    data = star_frames[0][0]
    bkg = Background2D(data, 64, filter_size=1,
                       bkg_estimator=SExtractorBackground())
    levels, kept = MeshStatistics.of(bkg).levels(
        data, np.zeros(data.shape, dtype=bool))
    np.testing.assert_allclose(levels, bkg.background_mesh, rtol=1e-12)
    np.testing.assert_array_equal(kept, bkg.n_pixels_mesh)


def test_star_light_is_taken_out_of_the_level(star_frames):
    """100 stars per 512 x 512 frame lift photutils' median meshes by about
    twice their error (+1.9 over 12 frames); with the frame, the level is
    within a fifth of its error of the sky (-0.13 +- 0.08 over 8 frames;
    +-0.3 allows for 4 frames' mean), the photometry's pulls centred
    (+0.03) and no row flagged."""
    plain, clean, fluxes = [], [], []
    for data, apertures, truth in star_frames:
        before, after = _skies(data, MedianBackground())
        plain.append(_pulls(before))
        clean.append(_pulls(after))
        assert after.meta['source_lift'] > 0.0
        with warnings.catch_warnings():
            warnings.simplefilter('error', AstropyUserWarning)
            table = photometer(data, apertures, after, gain=1.0)
        assert not np.any(table['flags'] & FLAG_RESIDUAL_BACKGROUND)
        fluxes.append((np.asarray(table['aperture_sum']) - truth)
                      / np.asarray(table['aperture_sum_err']))
    assert np.mean(plain) > 1.2
    assert abs(np.mean(clean)) < 0.3
    assert 0.7 < np.std(clean) < 1.35
    assert abs(np.mean(fluxes)) < 0.1
    assert 0.9 < np.std(fluxes) < 1.1


def test_rows_a_lifted_map_biases_are_flagged(star_frames):
    """Without the frame the map keeps the stars' light: the photometry
    measures it, warns and flags the rows it biases by more than a
    twentieth of their error (nearly all of them here)."""
    data, apertures, _ = star_frames[1]
    before, _ = _skies(data, SExtractorBackground())
    with pytest.warns(AstropyUserWarning,
                      match='lifts the Background2D sky: for'):
        table = photometer(data, apertures, before, gain=1.0)
    flagged = np.asarray(table['flags'] & FLAG_RESIDUAL_BACKGROUND) != 0
    assert flagged.mean() > 0.5
    assert any('data=' in note for note in table.meta['notes'])


def test_a_star_free_frame_keeps_its_level():
    """On noise alone the source mask finds (almost) nothing: the level
    moves by a small fraction of its error and the pulls stay 1."""
    rng = np.random.default_rng(42)
    pulls, moved = [], []
    for _ in range(4):
        data = (rng.poisson(SKY, (SIZE, SIZE))
                + rng.normal(0.0, READ_NOISE, (SIZE, SIZE)))
        before, after = _skies(data, SExtractorBackground())
        pulls.append(_pulls(after))
        moved.append(np.max(np.abs(after.value - before.value)
                            / before.error_on_mean))
    assert np.max(moved) < 0.5
    assert abs(np.mean(pulls)) < 0.25
    assert 0.8 < np.std(pulls) < 1.2


def test_a_masked_background2d_needs_its_mask():
    """Background2D given a mask keeps other pixels than the frame alone:
    from_background2d(data=) refuses to guess, the photometry does not
    check (the mask's pixels are unknown to it)."""
    rng = np.random.default_rng(3)
    data = rng.normal(SKY, 10.0, (256, 256))
    mask = np.zeros(data.shape, dtype=bool)
    mask[:, :40] = True
    bkg = Background2D(data, 64, mask=mask, exclude_percentile=80)
    with pytest.raises(ValueError, match='data, mask: the meshes'):
        SkyEstimate.from_background2d(bkg, data=data)
    sky = SkyEstimate.from_background2d(bkg, data=data, mask=mask)
    assert abs(sky.meta['source_lift']) < 0.1
    with pytest.warns(AstropyUserWarning, match='gain=None'):
        plain = SkyEstimate.from_background2d(bkg)  # neither gain nor frame
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        photometer(data, CircularAperture([(128.0, 128.0)], r=4.0), plain)
    with pytest.raises(ValueError, match='data: shape'):
        SkyEstimate.from_background2d(bkg, data=data[:200], mask=mask[:200])
