# Licensed under a 3-clause BSD style license - see LICENSE
"""Optimal extraction against one whole-frame level on a tilted frame
carries the background's offset at each star as photometer does: the
budget's ``sky_offset`` term (`sky_offset_variance`, the weights' sum for
its pixels), so that every row's error bar covers it; flag 32 is still
judged on the error without it."""

import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning
from test_sky_offset import tilted_frame

from ccdphot_ext import BudgetOptions, SkyEstimate, optimal_extraction
from ccdphot_ext.flags import FLAG_NONPOSITIVE_FLUX, FLAG_RESIDUAL_BACKGROUND


def _rows(n_frames, n_rows, **kwargs):
    out = []
    for seed in range(n_frames):
        data, centres = tilted_frame(seed)
        sky = SkyEstimate.from_image(data)
        with warnings.catch_warnings():  # the gradient's warning
            warnings.simplefilter('ignore', AstropyUserWarning)
            out += [optimal_extraction(data, (x, y), 1.5, sky,
                                       fit_width=False, **kwargs)
                    for x, y in centres[:n_rows]]
    return out


def test_tilted_frames_every_row_covered():
    # blank positions on frames tilted 0.2-0.6 sigma to either side: all
    # rows' pulls spread 1.29 without the term (400 rows), 0.97 with it
    rows = _rows(3, 100)
    pulls = np.array([r.flux / r.flux_err for r in rows])
    assert abs(np.std(pulls) - 1.0) < 0.08, np.std(pulls)
    assert abs(np.mean(pulls)) < 0.1, np.mean(pulls)
    offset = np.array([r.budget.terms.get('sky_offset', 0.0) for r in rows])
    assert np.mean(offset > 0) > 0.5
    # the term covers the rows flag 32 marks; it does not clear them
    far = np.array([bool(r.flags & FLAG_RESIDUAL_BACKGROUND) for r in rows])
    assert far.sum() > 50 and np.all(offset[far] > 0)
    # the one-level rows left unflagged (flux <= 0 aside) are calibrated
    clear = np.array([(r.flags & ~FLAG_NONPOSITIVE_FLUX) == 0
                      for r in rows])
    assert clear.sum() > 50
    assert abs(np.std(pulls[clear]) - 1.0) < 0.15, np.std(pulls[clear])
    # the term is the sky level's: left out with it
    without = _rows(1, 20, budget=BudgetOptions(include_sky_mean=False))
    assert not any('sky_offset' in r.budget.terms for r in without)


def test_flat_frame_has_no_term():
    rng = np.random.default_rng(3)
    data = rng.normal(200.0, 10.0, (256, 256))
    sky = SkyEstimate.from_image(data)
    rows = [optimal_extraction(data, (x, y), 1.5, sky, fit_width=False)
            for x, y in rng.uniform(20, 236, (20, 2))]
    assert not any('sky_offset' in r.budget.terms for r in rows)
