"""The ``sky_offset`` term: the offset of the background at a row from the
one whole-frame level subtracted, measured (the noise model's trend, or
the sky's background variation map) but not subtracted, carried in the
row's error so that every row's error bar covers it; flag 32 still marks
the rows it makes doubtful."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus
from test_noise_real import blank_scatter

from ccdphot_ext import (
    ApertureNoise,
    BoxAperture,
    SkyEstimate,
    measure,
    photometer,
)
from ccdphot_ext.flags import FLAG_RESIDUAL_BACKGROUND
from ccdphot_ext.photometry.residual import GLOBAL_SKY, sky_offset_variance

SIGMA = 10.0


def tilted_frame(seed, size=256, tilt=None):
    """White noise of `SIGMA` on a sky of 200 tilted by ``tilt`` sigma to
    either side of the centre (default 0.2 to 0.6, drawn) in a random
    direction, with 300 random box centres."""
    rng = np.random.default_rng(700 + seed)
    if tilt is None:
        tilt = rng.uniform(0.2, 0.6)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    y, x = np.mgrid[0:size, 0:size] / (size - 1.0) * 2.0 - 1.0
    ramp = ((np.cos(angle) * x + np.sin(angle) * y)
            / (abs(np.cos(angle)) + abs(np.sin(angle))))
    data = 200.0 + tilt * SIGMA * ramp + rng.normal(0.0, SIGMA, (size, size))
    centres = np.column_stack([rng.uniform(15, size - 15, 300),
                               rng.uniform(15, size - 15, 300)])
    return data, centres


def pulls(frames, side, *, with_noise):
    """The blank boxes' sums over their errors (all rows) and whether each
    row is unflagged (flag 8, the box reaching the edge, aside)."""
    out, clear = [], []
    for data, centres in frames:
        sky = SkyEstimate.from_image(data)
        noise = (ApertureNoise.from_blank_apertures(data, sky, seed=1)
                 if with_noise else None)
        with warnings.catch_warnings():  # the gradient's warning
            warnings.simplefilter('ignore', AstropyUserWarning)
            t = photometer(data, BoxAperture(centres, side, side), sky,
                           noise=noise)
        out.append(np.asarray(t['aperture_sum'] / t['aperture_sum_err']))
        clear.append((np.asarray(t['flags']) & ~8) == 0)
    return np.concatenate(out), np.concatenate(clear)


@pytest.mark.parametrize('with_noise', [True, False])
def test_tilted_frames_every_row_covered(with_noise):
    # the one level leaves each box biased by its position; over 60 such
    # frames, with noise=, all rows' pulls spread 1.4, 2.3 and 4.7 at 5,
    # 11 and 25 px before the term (the unflagged ones 1.03, 1.01, 1.10),
    # 1.00, 1.00, 1.00 with it (0.99, 0.97, 1.02); without noise= 0.99,
    # 0.99, 1.00 (0.98, 0.96, 1.04)
    frames = [tilted_frame(seed) for seed in range(4)]
    for side in (5, 11, 25):
        p, clear = pulls(frames, side, with_noise=with_noise)
        assert abs(np.std(p) - 1.0) < 0.06, (side, np.std(p))
        assert abs(np.mean(p)) < 0.06, (side, np.mean(p))
        if side == 5:  # (larger boxes leave few rows unflagged here)
            assert abs(np.std(p[clear]) - 1.0) < 0.1, np.std(p[clear])


def test_flat_frame_has_no_term():
    # white noise on a flat sky: no trend taken out, no map offset beyond
    # its noise: no term, the numbers as before
    data, centres = tilted_frame(1, tilt=0.0)
    sky = SkyEstimate.from_image(data)
    noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    assert not noise.trend_removed
    for model in (noise, None):
        t = photometer(data, BoxAperture(centres, 25, 25), sky, noise=model)
        assert 'var_sky_offset' not in t.colnames
    assert not np.any(sky_offset_variance(sky, data.shape, centres[:, 0],
                                          centres[:, 1], 625.0, noise))


def test_term_is_the_trend_and_flags_are_kept():
    data, centres = tilted_frame(2, tilt=0.5)
    sky = SkyEstimate.from_image(data)
    noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    assert noise.trend_removed
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        t = photometer(data, BoxAperture(centres, 11, 11), sky, noise=noise)
    term = np.asarray(t['var_sky_offset'])
    # the trend at each centre, times the pixels and the share of it the
    # blank sums carry (a gradient: all of it, within its noise), squared
    u = 2.0 * centres[:, 0] / 255.0 - 1.0
    v = 2.0 * centres[:, 1] / 255.0 - 1.0
    c = noise.meta['trend']
    trend = (c[0] + c[1] * u + c[2] * v + c[3] * u * u + c[4] * v * v
             + c[5] * u * v)
    carried = noise.trend_carried(121.0)
    assert 0.95 <= carried <= 1.0
    np.testing.assert_allclose(term, (121.0 * carried * trend) ** 2,
                               rtol=1e-10)
    # the rest of the error is the one without the term
    rest = np.asarray(t['var_sky'] + t['var_sky_mean'])
    np.testing.assert_allclose(np.asarray(t['aperture_sum_err']) ** 2,
                               rest + term, rtol=1e-12)
    # flag 32 where the rule flags on the error without the term
    biased, _ = GLOBAL_SKY.doubt_on(sky, data.shape, centres[:, 0],
                                    centres[:, 1], 121.0, np.sqrt(rest))
    flagged = (np.asarray(t['flags']) & FLAG_RESIDUAL_BACKGROUND) != 0
    assert biased.any() and np.array_equal(flagged, biased)


def test_measure_agrees_with_photometer():
    data, centres = tilted_frame(3, tilt=0.5)
    sky = SkyEstimate.from_image(data)
    noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    box = BoxAperture(centres[:3], 15, 15)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        t = photometer(data, box, sky, noise=noise)
        for model in (noise, None):
            tab = photometer(data, box, sky, noise=model)
            for i in range(3):
                res = measure(data, BoxAperture(centres[i], 15, 15), sky,
                              noise=model)
                assert res.flux_err == pytest.approx(
                    tab['aperture_sum_err'][i], rel=1e-12)
                assert res.flags == tab['flags'][i]
                if 'var_sky_offset' in tab.colnames:
                    assert res.budget.terms.get('sky_offset', 0.0) == (
                        pytest.approx(tab['var_sky_offset'][i], rel=1e-12))
                assert res.compare_numpy().meta['max_abs_rel_diff'] < 1e-9
    assert np.all(np.asarray(t['var_sky_offset']) > 0)


def test_other_routes_have_no_term():
    data, centres = tilted_frame(4, tilt=0.5)
    annulus = SkyEstimate.from_annulus(data, CircularAnnulus(centres, 20, 30))
    assert sky_offset_variance(annulus, data.shape, centres[:, 0],
                               centres[:, 1], 121.0) is None
    sky = SkyEstimate.from_image(data)
    # a whole-frame sky of another frame (a cutout) says nothing here
    assert sky_offset_variance(sky, (100, 100), 50.0, 50.0, 121.0) is None
    t = photometer(data, BoxAperture(centres, 11, 11), annulus)
    assert 'var_sky_offset' not in t.colnames


def test_m13_every_row_within_criterion(m13):
    # astropy's M13 frame against its whole-frame level: its cluster glow
    # is the trend the model takes out, but a quadratic overshoots it
    # where blank boxes fit (they carry 0.80-0.82 of it at 7-15 px): with
    # the whole trend in the term its rows' blank sums scattered 0.91,
    # 0.84 and 0.83 times their errors at 3, 7 and 11 px (all rows
    # flagged)
    data = np.asarray(m13[0].data, dtype=float)
    ratios, noise, _ = blank_scatter(data, 'global', near_sources=True,
                                     as_they_are=True)
    assert noise.trend_removed and noise.correlated
    carried = noise.trend_carried(np.array([9.0, 49.0, 121.0]))
    assert 0.85 <= carried[0] <= 1.0 and np.all(carried[1:] < 0.9), carried
    assert all(0.85 <= r <= 1.2 for r in ratios.values()), ratios


def test_saao_every_row_within_criterion(saao):
    # ccdproc's raw SAAO frame against its whole-frame level: before the
    # term its rows' blank sums scattered 1.10, 1.23 and 1.45 times their
    # errors at 3, 7 and 11 px (the unflagged ones 1.06, 0.99, 0.97)
    data = np.asarray(saao.data, dtype=float)
    ratios, noise, clear = blank_scatter(data, 'global', as_they_are=True)
    assert noise.trend_removed
    assert all(0.9 <= r <= 1.1 for r in ratios.values()), ratios
    assert all(0.85 <= r <= 1.2 for r in clear.values()), clear
