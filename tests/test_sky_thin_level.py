# Licensed under a 3-clause BSD style license - see LICENSE
"""A whole-frame level that rests on fewer than MIN_SKY_PIXELS pixels (the
apertures measured cover most of the frame) and whose error is most of a
row's: the rows it serves are flagged 32 and warned of
(`~ccdphot_ext.photometry.residual.ThinLevelRule`)."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.data import get_pkg_data_filename
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import ApertureNoise, BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.globalsky import MIN_SKY_PIXELS
from ccdphot_ext.background.noise import (
    _blank_corners,
    _robust_std,
    _source_mask,
)
from ccdphot_ext.flags import FLAG_RESIDUAL_BACKGROUND
from ccdphot_ext.photometry.residual import THIN_LEVEL, THIN_LEVEL_FRACTION
from ccdphot_ext.utils.inputs import as_frame


@pytest.fixture(scope='module')
def wfpc2_chip():
    """astropy's WFPC2 chip 1 of 40 x 40 pixels (test0.fits, extension 1),
    its whole-frame level, the blank-sky noise model and the blank pixels
    (the noise model's source mask)."""
    path = get_pkg_data_filename('data/test0.fits',
                                 package='astropy.io.fits.tests')
    data = np.asarray(fits.getdata(path, 1), dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(data)
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    bad = _source_mask(data - sky.value, sky.std,
                       np.zeros(data.shape, dtype=bool))
    return data, sky, noise, bad


@pytest.mark.parametrize(('side', 'flagged'), [(3, False), (7, True),
                                               (11, True)])
def test_wfpc2_blank_boxes_on_a_thin_level(wfpc2_chip, side, flagged):
    """800 blank boxes on the 40 x 40 WFPC2 chip: the level measured again
    without them rests on 124-157 of its 1582 pixels. At 7 and 11 px its
    error is 0.54 and 0.66 of each row's (shares 0.29 and 0.44 of the
    variance), one offset for every row: the boxes scattered 0.855 and
    0.785 of their errors with flags 0 (0.84 and 0.75 from that share);
    now every row is flagged 32 and warned of. At 3 px (share 0.08) the
    boxes scatter as their errors (0.99) and stay unflagged."""
    data, sky, noise, bad = wfpc2_chip
    rng = np.random.default_rng(99)
    for s in (3, 7, 11):  # one random sequence, as the boxes were drawn
        y0, x0 = _blank_corners(bad, s, 800, rng)
        if s == side:
            break
    centres = np.column_stack([x0, y0]) + (side - 1) / 2.0
    boxes = BoxAperture(centres, side, side)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always', AstropyUserWarning)
        again = sky.without_apertures(data, boxes)
        t = photometer(data, boxes, sky, noise=noise)
    assert again.n_pix < MIN_SKY_PIXELS
    err = np.asarray(t['aperture_sum_err'])
    pulls = np.asarray(t['aperture_sum']) / err
    share = np.median(np.asarray(t['var_sky_mean']) / err ** 2)
    doubtful = (np.asarray(t['flags']) & FLAG_RESIDUAL_BACKGROUND) != 0
    warned = any('rests on' in str(w.message)
                 and 'one offset shared' in str(w.message) for w in said)
    if flagged:
        assert share > 0.25
        assert _robust_std(pulls) < 0.88  # 0.855, 0.785: the shared offset
        assert np.all(doubtful)
        assert warned
    else:
        assert share < 0.1
        assert 0.9 < _robust_std(pulls) < 1.1  # 0.988
        assert not np.any(doubtful)
        assert not warned


def test_thin_level_rule_judges_each_row():
    """Only rows whose level error (``n_pix * error_on_mean``) exceeds
    `THIN_LEVEL_FRACTION` of their flux error are doubted, and only for a
    whole-frame level measured again on fewer than `MIN_SKY_PIXELS`
    pixels: a level of the whole 150 x 150 frame, a level given as
    numbers (no frame behind it) and rows of bright stars (large errors)
    are not."""
    rng = np.random.default_rng(5)
    data = rng.normal(100.0, 10.0, (150, 150))
    frame = as_frame(data)
    centres = rng.uniform(5.0, 144.0, (800, 2))
    boxes = BoxAperture(centres, 11, 11)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(data)
        again = sky.without_apertures(data, boxes)
    assert again.n_pix < MIN_SKY_PIXELS <= sky.n_pix
    level = 121.0 * float(again.error_on_mean)
    x = np.array([20.0, 40.0, 60.0])
    flux_err = np.array([1.5, 2.5, 10.0]) * level
    rows, context = THIN_LEVEL.doubt(again, frame, x, x, 121.0, flux_err)
    assert rows.tolist() == [True, False, False]
    assert context[0] == again.n_pix
    assert THIN_LEVEL_FRACTION * 1.5 < 1.0 < THIN_LEVEL_FRACTION * 2.5
    rows, context = THIN_LEVEL.doubt(sky, frame, x, x, 121.0, flux_err)
    assert not np.any(rows) and context is None
    given = SkyEstimate(100.0, 10.0, 50)  # numbers alone: not judged
    rows, context = THIN_LEVEL.doubt(given, frame, x, x, 121.0, flux_err)
    assert not np.any(rows) and context is None
