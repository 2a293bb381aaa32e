"""
`compare_extractions`: each row carries its measurement's flags, and the
default mask is the unbiased one (the notebook's pixel selection is not).
"""

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import (
    BoxAperture,
    SigmaThreshold,
    SkyEstimate,
    compare_extractions,
    measure,
)
from ccdphot_ext.datasets.sample import render_stars

SKY = SkyEstimate(100.0, 5.0, 10_000)


def _frame(x, y, flux, sigma, seed):
    star = render_stars((48, 48), [x], [y], [flux], sigma=sigma)
    return 100.0 + star + np.random.default_rng(seed).normal(0, 5, (48, 48))


def test_rows_carry_their_measurements_flags():
    # a star cut by the frame's edge: flag 1 on the box, the mask and the
    # optimal row, as each measurement sets it (the PSF's width as given:
    # no star of the frame can measure it)
    img = _frame(1.2, 24.2, 5000.0, 1.5, 1)
    box = BoxAperture((1.2, 24.2), 15, 15)
    table = compare_extractions(img, box, 1.5, SKY, gain=1.0,
                                fit_width=False)
    assert table['flags'].tolist() == [1, 1, 1]
    # measuring the width, the optimal row says the frame cannot (256)
    with pytest.warns(AstropyUserWarning, match='no star of the frame '
                      "measures the PSF's width"):
        table = compare_extractions(img, box, 1.5, SKY, gain=1.0)
    assert table['flags'].tolist() == [1, 1, 1 | 256]
    assert table['flags'][0] == measure(img, box, SKY, gain=1.0).flags
    # masked core pixels: flag 2 on every row, the box sum 16 sigma low
    img = _frame(23.4, 24.2, 50000.0, 2.0, 2)
    mask = np.zeros(img.shape, bool)
    mask[23:25, 23] = True
    table = compare_extractions(img, BoxAperture((23.4, 24.2), 15, 15), 2.0,
                                SKY, gain=1.0, mask=mask, fit_width=False)
    assert table['flags'].tolist() == [2, 2, 2]
    assert (table['flux'][0] - 50000.0) / table['flux_err'][0] < -10


def test_the_default_mask_is_unbiased_on_a_blank_sky():
    # 120 blank frames: the default mask's sum scatters about 0; the
    # notebook's pixel selection keeps its noise peaks and reads high
    box = BoxAperture((23.4, 24.2), 15, 15)
    default, pixel = [], []
    for seed in range(120):
        img = 100.0 + np.random.default_rng(seed).normal(0, 5, (48, 48))
        t = compare_extractions(img, box, 1.5, SKY, gain=1.0,
                                fit_width=False)  # no star: no width
        tp = compare_extractions(
            img, box, 1.5, SKY, gain=1.0, fit_width=False,
            threshold=SigmaThreshold(2.0, selection='pixel'))
        default.append(t['flux'][1])
        pixel.append(tp['flux'][1])
    default, pixel = np.array(default), np.array(pixel)
    sem = default.std() / np.sqrt(default.size)
    assert abs(default.mean()) < 3 * sem + 1.0
    assert pixel.mean() > 40.0  # the notebook's mask: biased high
    assert t.meta['threshold'].startswith("SigmaThreshold(n_sigma=2.0, "
                                          "segment='all', selection="
                                          "'smoothed'")
