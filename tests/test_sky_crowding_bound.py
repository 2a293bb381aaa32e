# Licensed under a 3-clause BSD style license - see LICENSE
"""The largest lift of a whole-frame level that the stars too faint for
its source mask may give (``meta['crowding_bias_bound']``), and its
warning."""

import warnings

import numpy as np
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture

from ccdphot_ext import SkyEstimate, photometer, simulate_frame
from ccdphot_ext.background.globalsky import global_sky
from ccdphot_ext.flags import FLAG_RESIDUAL_BACKGROUND
from ccdphot_ext.utils.inputs import Frame

SKY, GAIN = 1000.0, 2.23


def _crowded(seed, n_stars=300, size=512):
    """``n_stars`` Gaussian stars (1.8 px) of 300 to 10**4 ADU, as many per
    decade of flux, on a ``size`` x ``size`` frame of a 1000 ADU sky."""
    rng = np.random.default_rng(900 + seed)
    x, y = rng.uniform(5.0, size - 5.0, (2, n_stars))
    stars = Table({'x': x, 'y': y,
                   'flux': 10 ** rng.uniform(np.log10(300.0), 4.0, n_stars)})
    data, _, model = simulate_frame((size, size), SKY, stars, gain=GAIN,
                                    read_noise=5.0, psf_sigma=1.8, seed=rng)
    return data, model


def _sky(data):
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        sky = SkyEstimate.from_image(data, gain=GAIN)
    notes = [str(w.message) for w in said if 'crowded frame' in str(w.message)]
    assert all(w.category is AstropyUserWarning for w in said)
    return sky, notes


def _lift(sky, data, model):
    """How far the stars lift the clipped mean of the pixels ``sky`` used:
    its level less that of the frame without them (the same mask)."""
    kwargs = {'method': 'sigma_clip', 'sigma': 3.0, 'maxiters': 10,
              'mask_sources': True, 'known': sky._whole_frame.known}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        return (global_sky(Frame(data), **kwargs)['level']
                - global_sky(Frame(data - (model - SKY)), **kwargs)['level'])


def test_crowded_level_bound_covers_the_faint_stars_lift():
    """300 stars of 300-10**4 ADU on 512 x 512 pixels: the stars below the
    source mask's reach lift the level by 1.18 +- 0.32 of its errors (16
    frames, the same frames without their stars and the same mask), and
    the level read +0.93 +- 0.30 errors high, warned on 2 of 16 frames
    (``crowding_bias``, from the faint light a deeper search finds, is
    within its noise on the others). The frame cannot tell where the
    stars stop below the reach: the largest lift the sources at it allow
    is 1.1-11 times the actual lift (median 3.5), and is warned of on 15
    of 16 (its lift 1.4 errors on the 16th). ``crowding_bias`` is
    unchanged (the rows are judged by the bound: below)."""
    n_warned = 0
    for seed in range(6):
        data, model = _crowded(seed)
        sky, notes = _sky(data)
        error = float(sky.error_on_mean)
        lift = _lift(sky, data, model)
        assert lift > 0.5 * error  # 0.81-1.83 errors
        bound = sky.meta['crowding_bias_bound']
        assert bound >= sky.meta['crowding_bias']
        assert bound > lift  # 1.07-8.2 times
        warned = bound > 1.5 * error
        n_warned += warned
        assert bool(notes) == warned
        if warned and sky.meta['crowding_bias'] <= 1.5 * error:
            assert len(notes) == 1 and 'may lift the sky by up to' in notes[0]
            assert sky.meta['crowding_note'] == notes[0]
    assert n_warned == 6  # was 1 of 6


def test_crowded_level_bound_nulls(rng):
    """A blank frame: no bound, no warning. 300 stars of 1000-3000 ADU,
    nothing fainter (the source mask takes them all): the bound is 0-1.4
    of the level's errors on 16 frames, never warned of; a level of the
    same stars without a source mask records none."""
    blank = (rng.poisson(SKY * GAIN, (384, 384))
             + rng.normal(0.0, 5.0, (384, 384))) / GAIN
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        sky = SkyEstimate.from_image(blank, gain=GAIN)
    assert sky.meta['crowding_bias_bound'] == 0.0
    assert 'crowding_note' not in sky.meta
    for seed in range(3):
        r = np.random.default_rng(seed)
        x, y = r.uniform(0, 512, (2, 300))
        stars = Table({'x': x, 'y': y, 'flux': 10 ** r.uniform(3, 3.5, 300)})
        data, _, _ = simulate_frame((512, 512), 1035.0, stars, gain=GAIN,
                                    read_noise=12.0, psf_sigma=1.8, seed=r)
        sky, notes = _sky(data)
        assert not notes
        assert sky.meta['crowding_bias_bound'] < 1.5 * sky.error_on_mean
    plain = SkyEstimate.from_image(data, mask_sources=False)
    assert 'crowding_bias_bound' not in plain.meta



def _circles(seed, n_stars, r=15.0, size=512):
    """Circles of radius ``r`` about the stars of ``_crowded(seed,
    n_stars)`` above 1000 ADU, 20 px or more inside the frame."""
    rng = np.random.default_rng(900 + seed)
    x, y = rng.uniform(5.0, size - 5.0, (2, n_stars))
    flux = 10 ** rng.uniform(np.log10(300.0), 4.0, n_stars)
    inside = ((x > 20) & (x < size - 20) & (y > 20) & (y < size - 20)
              & (flux > 1000))
    return CircularAperture(np.column_stack([x[inside], y[inside]]), r)


def test_rows_the_bound_may_bias_are_flagged():
    """A crowded frame whose faint light reads none beyond its noise
    (``crowding_bias`` 0) but whose bound is warned of: the rows the bound
    may bias by more than 0.05 of their errors are flagged 32 (on 16 such
    frames the 15 px circles of the stars above 1000 ADU read -0.072 +-
    0.020, flags 0: silent; now those of 3 frames, whose bound is within
    1.5 of the level's errors, +0.008 +- 0.042, the rest flagged). 40
    stars on the same frame, whose bound is warned of too (2.9 of the
    level's errors), are not crowded: no faint light is measured and no
    row is flagged."""
    data, _ = _crowded(1)
    sky, _ = _sky(data)
    assert sky.meta['crowding_bias'] == 0.0
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        table = photometer(data, _circles(1, 300), sky, gain=GAIN)
    assert np.all(np.asarray(table['flags']) & FLAG_RESIDUAL_BACKGROUND)
    assert any('may lift the whole-frame sky by up to' in str(w.message)
               for w in said)
    sparse, _ = _crowded(0, n_stars=40)
    sky, notes = _sky(sparse)
    assert notes and 'faint_light' not in sky.meta
    assert sky.meta['crowding_bias_bound'] > 2.5 * sky.error_on_mean
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        table = photometer(sparse, _circles(0, 40), sky, gain=GAIN)
    assert len(table) > 10
    assert not np.any(np.asarray(table['flags']) & FLAG_RESIDUAL_BACKGROUND)
