# Licensed under a 3-clause BSD style license - see LICENSE
"""A whole-frame level measured again without the apertures
(`SkyEstimate.without_apertures`) from the few pixels they leave, which
the frame's coarse background puts far off its mean: warned of, and its
rows flagged."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from scipy.special import erf

from ccdphot_ext import BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.noise import _blank_corners, _source_mask
from ccdphot_ext.background.skylift import REMNANT_KEY
from ccdphot_ext.flags import FLAG_RESIDUAL_BACKGROUND

SIZE, NOISE = 256, 10.0


def _cluster(seed, amplitude=1.5, core=60.0, n_stars=1000):
    """A cluster's glow (``amplitude`` times the noise at its centre,
    falling off past ``core`` px), ``n_stars`` Gaussian stars (1.5 px) of
    10**2.5-10**4.5 ADU concentrated like it, on a 1000 ADU sky with
    white noise of 10 ADU."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    r2 = (xx - 127.5) ** 2 + (yy - 127.5) ** 2
    glow = amplitude * NOISE / (1.0 + r2 / core ** 2)
    u = rng.uniform(0.0, 0.97, n_stars)
    r = core * np.sqrt(u / (1.0 - u))
    angle = rng.uniform(0.0, 2.0 * np.pi, n_stars)
    x = 127.5 + r * np.cos(angle)
    y = 127.5 + r * np.sin(angle)
    flux = 10 ** rng.uniform(2.5, 4.5, n_stars)
    stars = np.zeros((SIZE, SIZE))
    s = np.sqrt(2.0) * 1.5
    for xi, yi, fi in zip(x, y, flux, strict=True):
        x0, x1 = max(int(xi) - 10, 0), min(int(xi) + 11, SIZE)
        y0, y1 = max(int(yi) - 10, 0), min(int(yi) + 11, SIZE)
        if x0 >= x1 or y0 >= y1:
            continue
        px = np.diff(0.5 * erf((np.arange(x0, x1 + 1) - 0.5 - xi) / s))
        py = np.diff(0.5 * erf((np.arange(y0, y1 + 1) - 0.5 - yi) / s))
        stars[y0:y1, x0:x1] += fi * np.outer(py, px)
    return 1000.0 + glow + stars + rng.normal(0.0, NOISE, (SIZE, SIZE))


def _blank_boxes(data, sky, sides, n_boxes):
    """``n_boxes`` random boxes off the sources of each of ``sides`` px
    (one random sequence)."""
    resid = data - sky.value
    bad = _source_mask(resid, sky.std, ~np.isfinite(resid))
    rng = np.random.default_rng(99)
    for side in sides:
        y0, x0 = _blank_corners(bad, side, n_boxes, rng)
        centres = np.column_stack([x0, y0]) + (side - 1) / 2.0
        yield BoxAperture(centres, side, side)


def test_a_level_measured_again_on_few_unfair_pixels_is_flagged():
    """800 blank boxes of 7 and 11 px on a cluster frame leave the level
    about 100 of the 4370 pixels it used, between the stars near the
    glow's peak, clipped about the first level: the coarse background
    moves it by 3.5 and 5.0 ADU (0.4 and 0.5 of the noise, 4 and 5 of its
    errors), and it falls 3.3 and 4.6 ADU, 22 and 30 of the first level's
    errors, for boxes that hold no star. Once said only in
    ``meta['aperture_note']``; now warned, and every row is flagged 32.
    3 px boxes leave 880 pixels, which the map moves by 0.1 ADU (0.3 of
    the level's error): no note."""
    data = _cluster(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(data)
    error = float(sky.error_on_mean)
    small, *large = _blank_boxes(data, sky, (3, 7, 11), 800)
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        again = sky.without_apertures(data, small)
    assert again.n_pix > 800
    assert REMNANT_KEY not in again.meta
    for boxes in large:
        with pytest.warns(AstropyUserWarning,
                          match='no fair sample of the sky') as said:
            again = sky.without_apertures(data, boxes)
        shift = again.meta['aperture_gradient_shift']
        assert 0.3 * again.std < shift < 0.6 * again.std
        assert again.n_pix < 120
        assert again.meta['aperture_lift'] > 20 * error
        assert again.meta[REMNANT_KEY] in [str(w.message) for w in said]
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        table = photometer(data, boxes, sky)
    assert np.all(np.asarray(table['flags']) & FLAG_RESIDUAL_BACKGROUND)
    assert any('no fair sample' in str(w.message) for w in said)
