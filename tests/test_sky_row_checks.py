"""The per-row sky checks in one home: the bias rule (flag 32) and the
uneven-noise rule (flag 64) give photometer, measure and
optimal_extraction the same bits and warnings, said at the user's line."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import (
    FLAG_RESIDUAL_BACKGROUND,
    FLAG_SKY_ANNULUS,
    BoxAperture,
    SkyEstimate,
    measure,
    optimal_extraction,
    photometer,
)
from ccdphot_ext.background.noisevariation import check_sky_noise
from ccdphot_ext.photometry.residual import check_sky_bias
from ccdphot_ext.photometry.skychecks import sky_row_checks
from ccdphot_ext.utils.inputs import as_frame

POSITIONS = np.array([[40.0, 256.0], [256.0, 256.0], [470.0, 256.0]])


def _frame(seed=5):
    """A gradient of 0.2 per column (the outer boxes biased by a global
    level) and noise 15 on the left half, 30 on the right. The source
    mask takes 9% of the noisier half (its noise against one level) and
    1% of the other: the level, of the pixels left, is 0.9 below the sky
    at the centre, and the centre box (441 px) is biased by about 0.9 of
    its flux error too."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:512, :512]
    sig = np.where(xx < 256, 15.0, 30.0)
    return 1000.0 + 0.2 * (xx - 255.5) + rng.normal(0.0, 1.0, xx.shape) * sig


@pytest.fixture(scope='module')
def scene():
    img = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(img, method='mean')
    return img, sky


def test_one_call_gives_both_rules_bits(scene):
    img, sky = scene
    frame = as_frame(img)
    n_pix, err = np.full(3, 441.0), np.full(3, 500.0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        flags, messages = sky_row_checks(sky, frame, POSITIONS[:, 0],
                                         POSITIONS[:, 1], n_pix, err)
    # the outer boxes: 441 px * 0.2 * 216 ADU = 19,051 ADU of bias, the
    # centre's 441 * 0.9 (`_frame`); the left half's noise is 0.63, the
    # right's 1.26 of the frame's std
    assert flags.tolist() == [32 | 64, 32 | 64, 32 | 64]
    assert flags.dtype == np.int64
    assert len(messages) == 2
    assert 'background varies' in messages[0]
    assert 'pixel noise varies' in messages[1]
    assert [str(w.message) for w in record] == messages
    # the same bits as the two rules called apart
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        biased, _ = check_sky_bias(sky, frame, POSITIONS[:, 0],
                                   POSITIONS[:, 1], n_pix, err)
        uneven, _ = check_sky_noise(sky, frame, POSITIONS[:, 0],
                                    POSITIONS[:, 1])
    assert flags.tolist() == (np.where(biased, 32, 0)
                              | np.where(uneven, 64, 0)).tolist()
    # a row scaled for the local noise (noise=) is not judged by the noise
    # rule; scalars give an int
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        scaled, _ = sky_row_checks(sky, frame, POSITIONS[:, 0],
                                   POSITIONS[:, 1], n_pix, err,
                                   scaled=[1.0, 1.0, 1.3])
        one, notes = sky_row_checks(sky, frame, 40.0, 256.0, 441.0, 500.0)
    assert scaled.tolist() == [32 | 64, 32 | 64, 32]
    assert one == 96 and isinstance(one, int) and len(notes) == 2


def test_a_plain_sky_flags_nothing():
    frame = as_frame(np.zeros((64, 64)))
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        flags, messages = sky_row_checks(SkyEstimate(0.0, 1.0, 4096), frame,
                                         [10.0, 30.0], [10.0, 30.0],
                                         [9.0, 9.0], [3.0, 3.0])
    assert flags.tolist() == [0, 0] and messages == []


def test_engines_agree_and_warn_at_the_callers_line(scene):
    img, sky = scene
    here = __file__
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        table = photometer(img, BoxAperture(POSITIONS, 21, 21), sky)
    sky_bits = FLAG_RESIDUAL_BACKGROUND | FLAG_SKY_ANNULUS
    assert (table['flags'] & sky_bits).tolist() == [96, 96, 96]
    texts = [str(w.message) for w in record]
    assert [w.filename for w in record
            if 'varies' in str(w.message)] == [here, here]
    assert sum(t in table.meta['notes'] for t in texts if 'varies' in t) == 2
    for i, want in enumerate([96, 96, 96]):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter('always')
            res = measure(img, BoxAperture(POSITIONS[i], 21, 21), sky)
        assert res.flags & sky_bits == want
        assert all(w.filename == here for w in record
                   if 'varies' in str(w.message))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        opt = optimal_extraction(img, tuple(POSITIONS[2]), 1.5, sky)
    assert opt.flags & sky_bits == 96
    varies = [w for w in record if 'varies' in str(w.message)]
    assert len(varies) == 2 and all(w.filename == here for w in varies)
