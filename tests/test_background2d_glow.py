# Licensed under a 3-clause BSD style license - see LICENSE
"""A feature of the background smaller than Background2D's meshes (a
glow over a few meshes), which photutils' median filter passes over: the
rows it biases are flagged (`check_map_features`, flag 32), as the
whole-frame sky flags them through what its own filter took out. Without
the rule the synthetic glow's 400 rows were all unflagged, those within
40 px of the glow at pulls of +5.4 (15.4 at most), and the ESO frame's
53 rows were moved by up to 35 / 93 errors unflagged."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture, aperture_photometry

from ccdphot_ext import SkyEstimate, photometer, read_frame
from ccdphot_ext.background.maps import frame_background2d
from ccdphot_ext.datasets.sample import render_stars
from ccdphot_ext.flags import FLAG_NO_SOURCE_TERM, FLAG_RESIDUAL_BACKGROUND


def _b2d_rows(img, xy, gain, radius):
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always', AstropyUserWarning)
        sky = SkyEstimate.from_background2d(frame_background2d(img)[0],
                                            gain=gain, data=img)
        t = photometer(img, CircularAperture(xy, radius), sky, gain=gain)
    feature = [str(w.message) for w in said
               if 'smaller than the Background2D meshes' in str(w.message)]
    # (2048: the ESO header gives no gain; not this test's subject)
    return (np.asarray(t['aperture_sum']), np.asarray(t['aperture_sum_err']),
            np.asarray(t['flags']) & ~FLAG_NO_SOURCE_TERM, feature)


@pytest.mark.parametrize('amplitude', [20.0, 0.0])
def test_synthetic_glow_background2d(amplitude):
    """Flat 256^2 sky of 100 ADU (gain 2), a glow of ``amplitude`` ADU and
    sigma 25 px at the centre, 40 stars, 10 frames. With the glow, the
    rows near it are flagged and the unflagged rows' pulls are +0.09 +-
    1.13 (3.5 at most); without it (a flat frame with stars) no row is
    flagged."""
    rng = np.random.default_rng(33)
    yy, xx = np.mgrid[:256, :256]
    pulls, near, flagged, warned = [], [], 0, 0
    for _ in range(10):
        sky = 100.0 + amplitude * np.exp(
            -((xx - 127.5) ** 2 + (yy - 127.5) ** 2) / (2 * 25.0 ** 2))
        x, y = rng.uniform(8, 248, (2, 40))
        light = render_stars(sky.shape, x, y, 10 ** rng.uniform(3, 4.5, 40),
                             sigma=1.6)
        img = (rng.poisson((sky + light) * 2.0)
               + rng.normal(0, 5, sky.shape)) / 2.0
        xy = np.column_stack([x, y])
        s, e, f, feature = _b2d_rows(img, xy, 2.0, 4.0)
        truth = np.asarray(aperture_photometry(
            light, CircularAperture(xy, 4.0), method='exact')['aperture_sum'])
        keep = f == 0
        flagged += int(np.count_nonzero(f & FLAG_RESIDUAL_BACKGROUND))
        warned += len(feature)
        pulls.append(((s - truth) / e)[keep])
        near.append((np.hypot(x - 127.5, y - 127.5) < 40)[keep])
    pulls, near = np.concatenate(pulls), np.concatenate(near)
    if amplitude:
        # measured: 55 of 400 flagged, 1 of the 40 within 40 px of the
        # glow left (pull +1.0); the unflagged at +0.09 +- 1.13, 3.5 at most
        assert 30 < flagged < 120
        assert warned >= 8
        assert np.count_nonzero(near) <= 3
        assert np.all(np.abs(pulls[near]) < 2.0)
        assert abs(np.mean(pulls)) < 0.2
        assert np.std(pulls) < 1.25
        assert np.all(np.abs(pulls) < 4.0)
    else:
        assert flagged == 0 and warned == 0
        assert np.std(pulls) == pytest.approx(1.0, abs=0.1)


@pytest.fixture
def _without_the_faint_sources_lift():
    """On the ESO frame the faint sources below the source mask's reach
    lift the Background2D level by 2.3 ADU and flag every row 32
    (``test_sky_bias.py``), which would leave no row to judge: its 29
    sources at the reach are set aside here (the slope taken from 30), as
    in ``test_real_frame_skies.py``."""
    from ccdphot_ext.background import globalsky
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(globalsky, 'REACH_MIN_SOURCES', 30)
        yield


@pytest.mark.usefixtures('_without_the_faint_sources_lift')
@pytest.mark.parametrize('amplitude', [5.0, 20.0])
def test_eso_glow_background2d(amplitude):
    """The ESO frame + a 25-px glow of 5 / 20 sky sigma at its centre:
    the rows it moves are flagged (measured: 9 / 10 of 53), the unflagged
    ones moved by 3.6 errors at most (a row at the glow's edge, and the
    frame's corners, where the glow moves the map's fitted surface); the
    unmodified frame has no row flagged."""
    path = 'tests/data/sextractor/'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        eso = np.asarray(read_frame(path + 'image.fits', unit='adu').data,
                         dtype=float)
        std = SkyEstimate.from_image(eso).std
    cat = np.loadtxt(path + 'image.cat')
    xy = cat[cat[:, 20] == 0][:, 1:3] - 1.0
    yy, xx = np.mgrid[:256, :256]
    glow = amplitude * std * np.exp(
        -((xx - 127.5) ** 2 + (yy - 127.5) ** 2) / (2 * 25.0 ** 2))
    s0, _, f0, said0 = _b2d_rows(eso, xy, None, 5.0)
    assert not np.any(f0) and not said0
    s, e, f, said = _b2d_rows(eso + glow, xy, None, 5.0)
    assert said
    kept = f == 0
    assert 5 <= np.count_nonzero(~kept) < 20
    moved = np.abs((s - s0) / e)[kept]
    # (the row at the glow's edge: 3.91; 4.00 with the pixels' noise from
    # differences two columns apart, where the frame's neighbours read
    # 0.4% narrow)
    assert np.all(moved < 4.1)  # without the rule: 35 / 93
    assert np.median(moved) < 1.0
