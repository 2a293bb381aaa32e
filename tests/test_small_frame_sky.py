"""A whole-frame level on a small frame (fewer than 4 x 4 background
cells a side) whose sources cover most of it: the background map's few
cells cannot show the level lifted above the blank sky by the sources'
faint light, so every row is flagged 32 and warned about instead of
returning biased sums unflagged."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.data import get_pkg_data_filename
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import ApertureNoise, BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.globalsky import SPARSE_SKY_KEY
from ccdphot_ext.background.noise import _blank_corners, _source_mask
from ccdphot_ext.flags import FLAG_RESIDUAL_BACKGROUND
from ccdphot_ext.photometry.residual import SPARSE_SMALL_SKY
from ccdphot_ext.utils.inputs import as_frame


@pytest.fixture(scope='module')
def acs_cutout():
    """astropy's HST ACS cut-out of 100 x 100 pixels (dist_lookup.fits.gz,
    extension 1), its whole-frame level, the blank-sky noise model and
    the blank pixels (the noise model's source mask inverted)."""
    path = get_pkg_data_filename('data/dist_lookup.fits.gz',
                                 package='astropy.wcs.tests')
    data = np.asarray(fits.getdata(path, 1), dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(data)
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    resid = data - sky.value
    bad = _source_mask(resid, sky.std, np.zeros(data.shape, dtype=bool))
    return data, sky, noise, bad


@pytest.mark.parametrize('side', [3, 7, 11])
def test_acs_cutout_blank_boxes_not_silently_biased(acs_cutout, side):
    """800 blank boxes on the ACS cut-out against its whole-frame level
    (measured again without them: sources then cover 86-88% of the frame
    and the level rests on 420 to 570 pixels, 1.5 to 2.8 data units above
    the blank sky). Unflagged, their pulls averaged -0.42, -0.96 and -0.44
    at 3, 7 and 11 px (628, 556 and 455 of 800 rows); now every row is
    flagged 32 and the warning says so. Rows left unflagged must average
    within 0.25."""
    data, sky, noise, bad = acs_cutout
    rng = np.random.default_rng(99)
    y0, x0 = _blank_corners(bad, side, 800, rng)
    centres = np.column_stack([x0, y0]) + (side - 1) / 2.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always', AstropyUserWarning)
        t = photometer(data, BoxAperture(centres, side, side), sky,
                       noise=noise)
    pulls = np.asarray(t['aperture_sum']) / np.asarray(t['aperture_sum_err'])
    flags = np.asarray(t['flags'])
    clean = (flags & ~8) == 0
    assert not clean.any() or abs(np.mean(pulls[clean])) < 0.25
    assert np.all(flags & FLAG_RESIDUAL_BACKGROUND)
    assert any('cannot be checked against the level' in str(w.message)
               for w in caught)


@pytest.mark.parametrize('size', [64, 100])
def test_small_white_frames_not_flagged(size):
    """Flat white frames of 64 x 64 and 100 x 100 pixels (10 each, 30
    boxes of 7 px): the level's source mask leaves most of the frame, no
    row is flagged 32 (under 1% allowed)."""
    n_flagged = n_rows = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        data = rng.normal(100.0, 10.0, (size, size))
        centres = rng.uniform(4.0, size - 5.0, (30, 2))
        with warnings.catch_warnings():
            warnings.simplefilter('error', AstropyUserWarning)
            sky = SkyEstimate.from_image(data)
        assert SPARSE_SKY_KEY not in sky.meta
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            t = photometer(data, BoxAperture(centres, 7, 7), sky)
        n_flagged += np.count_nonzero(np.asarray(t['flags'])
                                      & FLAG_RESIDUAL_BACKGROUND)
        n_rows += len(t)
    assert n_flagged < 0.01 * n_rows


@pytest.mark.parametrize(('size', 'doubted'), [(100, True), (256, False)])
def test_sparse_sky_rule_judges_small_frames_only(size, doubted):
    """The rule flags every row of a sky carrying the coverage warning on
    a frame of fewer than 4 background cells a side (100 px: 2 cells) and
    leaves larger frames (256 px: 4 cells) to the map's offsets; without
    the warning it flags nothing."""
    rng = np.random.default_rng(3)
    data = rng.normal(100.0, 10.0, (size, size))
    sky = SkyEstimate.from_image(data)
    frame = as_frame(data)
    x = np.array([20.0, 40.0, 60.0])
    rows, _ = SPARSE_SMALL_SKY.doubt(sky, frame, x, x, 49.0, 80.0)
    assert not np.any(rows)
    sky.meta[SPARSE_SKY_KEY] = 'sources cover 90% of the frame'
    rows, _ = SPARSE_SMALL_SKY.doubt(sky, frame, x, x, 49.0, 80.0)
    assert rows.tolist() == [doubted] * 3
