"""Stars wider than the matched filter (Moffat wings) put the mask's reach
higher in flux: the light of the unmasked stars below it lifts a
whole-frame level even where their luminosity function is flat at the
reach, and is counted in ``meta['crowding_bias']``."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import BoxAperture, SkyEstimate, photometer

GAIN, READ_NOISE, SKY = 2.23, 5.0, 1000.0
SIZE = 512


def _moffat_frame(seed, n_stars, fwhm=4.2, beta=2.5, reach=40):
    """``n_stars`` Moffat stars (sampled at the pixel centres out to
    ``reach`` pixels) of 300 to 10**4 ADU, as many per decade, on a
    ``SIZE`` x ``SIZE`` Poisson sky of ``SKY`` ADU."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(5.0, SIZE - 5.0, (2, n_stars))
    flux = 10 ** rng.uniform(np.log10(300.0), 4.0, n_stars)
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    model = np.zeros((SIZE, SIZE))
    for xi, yi, fi in zip(x, y, flux, strict=True):
        x0, y0 = max(int(xi) - reach, 0), max(int(yi) - reach, 0)
        x1, y1 = min(int(xi) + reach + 1, SIZE), min(int(yi) + reach + 1, SIZE)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        r2 = ((xx - xi) ** 2 + (yy - yi) ** 2) / alpha ** 2
        model[y0:y1, x0:x1] += (fi * (beta - 1.0) / (np.pi * alpha ** 2)
                                * (1.0 + r2) ** -beta)
    data = (rng.poisson((model + SKY) * GAIN)
            + rng.normal(0.0, READ_NOISE, model.shape)) / GAIN
    return data


def _sky(data):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        sky = SkyEstimate.from_image(data, gain=GAIN)
    warned = [w for w in caught if 'crowded frame' in str(w.message)]
    assert all(w.category is AstropyUserWarning for w in warned)
    return sky, bool(warned)


def test_wide_stars_flat_at_the_reach_lift_the_level_and_are_flagged():
    """300 Moffat stars (beta 2.5, FWHM 4.2 px): the level reads more than
    2 of its errors high from the unmasked stars of 300 to ~1000 ADU,
    whose luminosity function is flat at the reach (as many per decade,
    fitted as F**-0.63): 0.199 +- 0.053 ADU, where nothing was counted
    (crowding_bias 0, no warning, flags 0). The lift is extrapolated
    (0.142 ADU, 2.7 errors), warned of, and the rows measured against it
    are flagged 32."""
    data = _moffat_frame(903, 300)
    sky, warned = _sky(data)
    actual = sky.value - SKY
    assert actual > 2.0 * sky.error_on_mean  # the bias is real
    assert sky.meta['faint_slope'] < 1.0  # flat at the reach
    assert warned
    assert sky.meta['crowding_bias'] > 1.5 * sky.error_on_mean
    assert actual / 2.5 < sky.meta['crowding_bias'] < 2.5 * actual
    assert sky.meta['crowding_note'].startswith('crowded frame')
    boxes = BoxAperture([(128.0, 128.0), (384.0, 384.0)], 15, 15)
    with pytest.warns(AstropyUserWarning, match='flagged 32'):
        table = photometer(data, boxes, sky, gain=GAIN,
                           sky_without_apertures=False)
    assert np.all(np.asarray(table['flags']) & 32)


def test_sparse_wide_stars_and_blank_frames_are_not_flagged():
    """30 such stars: nothing extrapolated below the reach (its lift not
    beyond its error), no row flagged; the stars below the reach still
    lift the level by 0.83 of its errors (against the frame without them,
    the same mask), and the largest lift the sources at the reach allow
    (2.8 errors) is noted and warned of. A blank frame: nothing."""
    for data, bounded in ((_moffat_frame(901, 30), True),
                          (_moffat_frame(902, 0), False)):
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter('always')
            sky = SkyEstimate.from_image(data, gain=GAIN)
        assert sky.meta.get('crowding_bias', 0.0) == 0.0
        assert (sky.meta['crowding_bias_bound']
                > 1.5 * sky.error_on_mean) == bounded
        if bounded:
            note = sky.meta['crowding_note']
            assert 'may lift the sky by up to' in note
            assert [str(w.message) for w in said] == [note]
        else:
            assert 'crowding_note' not in sky.meta and not said
        assert abs(sky.value - SKY) < 2.0 * sky.error_on_mean
        table = photometer(data, BoxAperture((256.0, 256.0), 15, 15), sky,
                           gain=GAIN, sky_without_apertures=False)
        assert not np.asarray(table['flags'])[0] & 32
