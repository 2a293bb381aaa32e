# Licensed under a 3-clause BSD style license - see LICENSE
"""Background2D maps made with photutils' own estimator on a Poisson sky of
whole counts (``rng.poisson(mu)``, gain 1): the median of whole counts is
a whole count, so photutils' Source Extractor level moves with the sky's
place between two counts (a sky of exactly 3 counts read 0.05 high, one of
3.5 counts 1.1 low), and the first-order Poisson correction, removed from
that, left the level 0.45 / 0.45 / 0.37 counts high at 3 / 10 / 50 counts
(flags 0; its error raised to the map's miss of the blank sky, 0.46 / 0.45
/ 0.34, 10 to 1.7 times the honest one). The map is measured again with
the median interpolated within the count and the bias taken from the exact
distribution of whole counts."""

import warnings

import numpy as np
import pytest
from astropy.stats import SigmaClip
from astropy.utils.exceptions import AstropyUserWarning
from photutils.background import Background2D, SExtractorBackground

from ccdphot_ext import SkyEstimate
from ccdphot_ext.background.estimators import PoissonSkyModel
from ccdphot_ext.background.maps import (
    LatticeSExtractorBackground,
    digitised_estimator_reading,
    frame_background2d,
    grouped_median,
)


def _mesh_pulls(mu, n_frames, filter_size=1, seed=0):
    """The level pulls at the mesh centres of ``n_frames`` 512 x 512
    Poisson skies of ``mu`` counts (32 px meshes), their frames' mean
    level less ``mu``, and the last map."""
    pulls, offsets = [], []
    for i in range(n_frames):
        rng = np.random.default_rng(seed * 100 + i)
        data = rng.poisson(mu, (512, 512)).astype(float)
        bkg = Background2D(data, 32, filter_size=filter_size)
        sky = SkyEstimate.from_background2d(bkg, gain=1.0, data=data)
        level = np.asarray(sky.value)
        error = np.asarray(sky.error_on_mean)
        pulls.append(((level - mu) / error)[16::32, 16::32].ravel())
        offsets.append(float(np.mean(level)) - mu)
    return np.concatenate(pulls), np.array(offsets), sky


@pytest.mark.parametrize('mu', [3.0, 10.0, 50.0])
def test_level_pulls_of_whole_count_poisson_sky(mu):
    """photutils' default map (Source Extractor's estimator, 3-sigma
    clip), gain 1, data=: level pulls at 1024 mesh centres (filter 1:
    meshes independent) mean within 0.1, spread within 0.05 of 1
    (measured over 8 frames: +0.05 / -0.03 / -0.05, std 0.98 / 0.99 /
    1.03; before the level was 0.45 / 0.45 / 0.37 counts high); no
    lattice warning (the map is made again, meta['lattice_note'])."""
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        pulls, offsets, sky = _mesh_pulls(mu, 4, seed=int(mu))
    assert 'made again with LatticeSExtractorBackground' in \
        sky.meta['lattice_note']
    assert sky.meta['bkg_estimator'] == 'SExtractorBackground'
    assert abs(pulls.mean()) < 0.1
    assert abs(pulls.std() - 1.0) < 0.05
    # the level itself: within 0.02 counts (0.45 / 0.45 / 0.37 before)
    assert abs(offsets.mean()) < 0.02
    # the interpolated median scatters less than a continuous one: k
    # below Source Extractor's 2.137 (1.78 / 1.93 / 2.01)
    assert 1.7 < sky.efficiency < 2.1


def test_default_filter_map_of_whole_counts():
    """The same with photutils' 3 x 3 median filter: the level within
    0.02 counts of 3 (its error 0.04; a frame's mean pull scatters by
    0.12 with the filter, so the pulls' spread is checked here, their
    mean above), where the map made with photutils' own median read
    +0.45 counts high."""
    pulls, offsets, sky = _mesh_pulls(3.0, 2, filter_size=3, seed=7)
    assert abs(offsets.mean()) < 0.02
    assert 0.85 < pulls.std() < 1.15
    assert sky.meta['estimator_bias'] == pytest.approx(-0.373, abs=0.005)


def test_exact_reading_of_whole_counts():
    """digitised_estimator_reading, the Source Extractor estimator's
    reading of many whole-count Poisson pixels after photutils' clip:
    -0.373 counts at 3 counts for meshes of 1024 pixels (-0.3775 for
    infinite ones: the clip's bound near 8 counts) against -0.375 +-
    0.001 over 12 000 meshes (the first order: -0.391), and what 2000
    meshes read here."""
    model = PoissonSkyModel(3.0, 0.05, 1.0, True)
    exact = digitised_estimator_reading(model, (2.5, 1.5), True, 3.0, 10,
                                        1024)
    assert exact - 3.0 == pytest.approx(-0.373, abs=5e-4)
    limit = digitised_estimator_reading(model, (2.5, 1.5), True, 3.0, 10)
    assert limit - 3.0 == pytest.approx(-0.3775, abs=5e-4)
    rng = np.random.default_rng(1)
    pixels = rng.poisson(3.0, (2000, 1024)).astype(float)
    kept = SigmaClip(sigma=3.0, maxiters=10)(pixels, axis=-1, masked=False)
    read = LatticeSExtractorBackground(1.0).calc_background(kept, axis=-1)
    assert np.mean(read) == pytest.approx(exact, abs=3 * np.std(read)
                                          / np.sqrt(read.size) + 0.003)
    # photutils' own median sits on the counts: a sky of 3.5 counts
    # reads 1.1 low, the grouped median 0.39 (the Poisson bias alone)
    pixels = rng.poisson(3.5, (200, 1024)).astype(float)
    kept = SigmaClip(sigma=3.0, maxiters=10)(pixels, axis=-1, masked=False)
    plain = SExtractorBackground(sigma_clip=None)(kept, axis=-1)
    grouped = LatticeSExtractorBackground(1.0)(kept, axis=-1)
    assert np.mean(plain) - 3.5 < -0.9
    assert np.mean(grouped) - 3.5 == pytest.approx(-0.39, abs=0.03)
    assert grouped_median(np.array([3.0, 4.0, 4.0, 5.0, 6.0]), 1.0) == 4.25


def test_dithered_and_adu_skies_keep_their_level():
    """A sky not on a lattice (the whole counts plus uniform(-0.5, 0.5))
    and one in ADU with read noise (gain 2, 3 e-) are not made again:
    no lattice note, the first-order correction as before."""
    rng = np.random.default_rng(3)
    counts = rng.poisson(10.0, (256, 256))
    dithered = counts + rng.uniform(-0.5, 0.5, counts.shape)
    sky = SkyEstimate.from_background2d(Background2D(dithered, 32),
                                        gain=1.0, data=dithered)
    assert 'lattice_note' not in sky.meta
    assert sky.meta['estimator_bias'] == pytest.approx(-0.3906, abs=1e-3)
    assert float(np.mean(sky.value)) == pytest.approx(10.0, abs=0.06)
    adu = (rng.poisson(20.0, (256, 256))
           + rng.normal(0.0, 3.0, (256, 256))) / 2.0
    sky = SkyEstimate.from_background2d(Background2D(adu, 32), gain=2.0,
                                        data=adu)
    assert 'lattice_note' not in sky.meta
    assert float(np.mean(sky.value)) == pytest.approx(10.0, abs=0.06)


def test_whole_count_frame_background2d_gets_exact_bias():
    """frame_background2d measures such a frame with the interpolated
    median already: the exact bias applies there too."""
    data = np.random.default_rng(4).poisson(3.0, (256, 256)).astype(float)
    bkg, _ = frame_background2d(data, box_size=32)
    sky = SkyEstimate.from_background2d(bkg, gain=1.0, data=data)
    assert 'lattice_note' not in sky.meta  # nothing to make again
    assert 'exact distribution' in sky.meta['estimator_bias_note']
    assert float(np.mean(sky.value)) == pytest.approx(3.0, abs=0.02)
