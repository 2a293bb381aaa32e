"""``noise=`` on a glow above a whole-frame sky: the local pixel noise
there is partly the glow's own photon noise, which the flux of an aperture
(measured against the whole-frame level) holds and the ``source`` term
counts; with a gain the sky term leaves that part out
(`ApertureNoise.local_ratio` with ``gain`` and ``sky``), so the error bars
are not counted twice. Without a gain, with an annulus or a map sky, and
where the local noise is not higher, nothing changes."""

import warnings

import numpy as np
import pytest
from photutils.aperture import CircularAnnulus, CircularAperture

from ccdphot_ext import (
    ApertureNoise,
    SkyEstimate,
    measure,
    photometer,
    psf_stamp,
)

GAIN, SKY, READ = 2.0, 200.0, 5.0  # e-/ADU, ADU, e-


def _model(local_noise, local_level):
    """A white model of sigma1 5 on a 64 x 64 frame with the given 4 x 4
    blocks."""
    return ApertureNoise(5.0, 1.0, 0.5, n_pix=[9.0, 25.0],
                         sigma=[15.0, 25.0], sigma_err=[0.5, 0.8],
                         n_apertures=[100, 100], local_noise=local_noise,
                         local_level=local_level, shape=(64, 64))


def test_local_ratio_leaves_the_photon_noise_of_the_glow_out():
    ratio = np.ones((4, 4))
    ratio[:, 2:] = 1.5
    level = np.full((4, 4), 100.0)
    level[:, 2:] = 150.0
    noise = _model(ratio, level)
    sky = SkyEstimate(100.0, 5.0, 4096)
    x, y = [8.0, 56.0], [8.0, 8.0]  # block centres: blank, glow
    assert noise.local_ratio(x, y).tolist() == [1.0, 1.5]
    # 50 ADU above the level over gain 2: 25 ADU**2 of photon noise, one
    # sigma1**2: the ratio squared 2.25 - 1 = 1.25
    out = noise.local_ratio(x, y, gain=2.0, sky=sky)
    assert out.tolist() == [1.0, pytest.approx(np.sqrt(1.25), rel=1e-14)]
    # a larger gain: less photon noise in ADU**2
    assert noise.local_ratio(56.0, 8.0, gain=5.0, sky=sky) == pytest.approx(
        np.sqrt(2.25 - 50.0 / (5.0 * 25.0)), rel=1e-14)
    # all of it photon noise, or more: the ratio is 1, never below
    assert noise.local_ratio(56.0, 8.0, gain=0.5, sky=sky) == 1.0
    # a glow below the sky level holds no light to count twice
    assert noise.local_ratio(56.0, 8.0, gain=2.0, sky=SkyEstimate(
        160.0, 5.0, 4096)) == 1.5
    # no gain, no sky, an annulus sky or a map: the ratio taken whole
    annulus = SkyEstimate([100.0, 100.0], [5.0, 5.0], [200, 200])
    skymap = SkyEstimate(np.full((64, 64), 100.0), np.full((64, 64), 5.0),
                         4096)
    for kwargs in ({'gain': 2.0}, {'sky': sky},
                   {'gain': 2.0, 'sky': annulus},
                   {'gain': 2.0, 'sky': skymap}):
        assert noise.local_ratio(x, y, **kwargs).tolist() == [1.0, 1.5]
    # a model without the levels (made before they were measured) as well
    assert _model(ratio, None).local_ratio(
        x, y, gain=2.0, sky=sky).tolist() == [1.0, 1.5]
    with pytest.raises(ValueError, match='gain'):
        noise.local_ratio(x, y, gain=-1.0, sky=sky)
    with pytest.raises(ValueError, match='local_level must hold'):
        _model(ratio, np.ones((3, 4)))
    with pytest.raises(ValueError, match='local_level must be finite'):
        _model(ratio, np.where(level > 120, np.nan, level))


def _glow_frame(seed, n=512):
    """Sky 200 ADU, gain 2, read noise 5 e-, and a glow of 200 ADU (as
    much photon noise as the sky's) over the right 40% of the frame,
    smooth (a tanh edge 8 pixels wide); a star of 3000 ADU (a Gaussian of
    sigma 1.5 integrated over pixels) on every other point of a grid of
    24 pixels. Returns the frame, its expectation, the positions of a
    grid of 12 pixels (on the stars and between them) and which hold a
    star."""
    rng = np.random.default_rng(seed)
    xx = np.arange(n, dtype=float)[None, :]
    truth = np.broadcast_to(SKY + 100.0 * (1 + np.tanh((xx - 0.6 * n) / 8.0)),
                            (n, n)).copy()
    g = np.arange(12.0, n - 6, 12.0)
    pos = np.column_stack([a.ravel() for a in np.meshgrid(g, g)])
    star = (pos % 24 == 12).all(axis=1) & ((pos // 24).sum(axis=1) % 2 == 0)
    for x, y in pos[star]:
        slices, stamp, _ = psf_stamp(1.5, (x, y), (n, n))
        truth[slices] += 3000.0 * stamp
    data = (rng.poisson(truth * GAIN) + rng.normal(0.0, READ, truth.shape)) \
        / GAIN
    return data, truth, pos, star


def test_glow_pulls_with_a_gain():
    """Monte Carlo, two frames: r = 4 circles in the glow (blank and on
    stars) have pulls of unit spread with the photon noise left to the
    source term; taken whole, the local noise counted it twice (spread
    0.83). Off the glow, and without a gain, the error bars are the
    model's as before."""
    after, before, off = [], [], []
    lifted = 0
    for seed in (11, 12):
        data, truth, pos, star = _glow_frame(seed)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            sky = SkyEstimate.from_image(data)
            noise = ApertureNoise.from_blank_apertures(data, sky, seed=seed)
            aps = CircularAperture(pos, 4.0)
            t = photometer(data, aps, sky, gain=GAIN, noise=noise)
            plain = photometer(data, aps, sky, noise=noise)
        # the truth against the level photometer measured against (the
        # level without its apertures' light, where that lifted it)
        true = photometer(truth, aps, SkyEstimate(float(t['sky'][0]), 1.0,
                                                  10 ** 6))['aperture_sum']
        diff = np.asarray(t['aperture_sum'] - true)
        measured = noise.local_ratio(pos[:, 0], pos[:, 1])
        ratio = np.asarray(t['sky_noise_ratio'])
        var, var_sky = (np.asarray(t[c]) for c in ('aperture_sum_err',
                                                    'var_sky'))
        # the truth holds the glow's offset from the one level: the
        # noise alone is judged here, the error less the sky_offset term
        # that covers that bias (test_sky_offset.py)
        var = var ** 2 - (np.asarray(t['var_sky_offset'])
                          if 'var_sky_offset' in t.colnames else 0.0)
        # the sky term taken whole (as before): times (measured / ratio)**2
        whole = var - var_sky + var_sky * (measured / ratio) ** 2
        glow = pos[:, 0] > 0.6 * 512 + 24
        after.extend(diff[glow] / np.sqrt(var[glow]))
        before.extend(diff[glow] / np.sqrt(whole[glow]))
        away = pos[:, 0] < 0.6 * 512 - 24
        off.extend(diff[away] / np.sqrt(var[away]))
        # in the glow the local noise is 1.39 times the blank sky's (the
        # square root of (100 + 6.25 + 100) / 106.25), nearly all photon
        # noise of the glow: the sky term keeps next to none of it
        assert np.median(measured[glow]) == pytest.approx(1.39, abs=0.05)
        assert np.median(ratio[glow]) < 1.05
        assert np.all(ratio <= measured)
        assert 'taken out of the local noise' in t.meta['sky_noise_local']
        # without a gain: the local noise taken whole (no source term)
        assert np.array_equal(np.asarray(plain['sky_noise_ratio']),
                              measured)
        # where the local noise is not higher, the model's own sky term
        one = measured == 1.0
        assert one.sum() > 300
        assert np.array_equal(np.asarray(plain['var_sky'])[one], var_sky[one])
        # measure agrees with photometer on a glow row, against the sky
        # photometer measured against: the level without the light of all
        # its apertures' pixels (measure takes out only its own, which
        # here does not lift it: a flux error 104.984, not 104.848)
        i = int(np.flatnonzero(glow & star)[0])
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            used = sky.without_apertures(data, aps)
            assert float(t['sky'][0]) == used.value
            if used.value != sky.value:
                lifted += 1
                assert (t.meta['sky_aperture_lift']
                        == used.meta['aperture_lift'])
            m = measure(data, CircularAperture(pos[i], 4.0), used,
                        gain=GAIN, noise=noise)
        assert m.flux_err == pytest.approx(float(t['aperture_sum_err'][i]),
                                           rel=1e-12)
        assert any('photon noise of the light above' in note
                   for note in m.budget.notes)
    # the level measured again without the apertures' light on a frame at
    # least (the truth is summed against the level photometer used)
    assert lifted >= 1
    after, before, off = map(np.asarray, (after, before, off))
    assert len(after) > 600
    assert np.std(after) == pytest.approx(1.0, abs=0.05)
    assert np.std(before) < 0.88
    assert np.std(off) == pytest.approx(1.0, abs=0.06)


def test_an_annulus_sky_keeps_the_local_noise_whole():
    """With an annulus the glow is subtracted and its photon noise is in
    no flux: the local ratio of the model scales the sky term whole, gain
    or not."""
    data, _, pos, _ = _glow_frame(13)
    pos = pos[(pos[:, 0] > 360) & (pos % 24 == 0).all(axis=1)][:8]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        sky = SkyEstimate.from_annulus(data, CircularAnnulus(pos, 7.0, 11.0))
        noise = ApertureNoise.from_blank_apertures(
            data, SkyEstimate.from_image(data), seed=1)
        t = photometer(data, CircularAperture(pos, 4.0), sky, gain=GAIN,
                       noise=noise)
    measured = noise.local_ratio(pos[:, 0], pos[:, 1])
    assert np.all(measured > 1.15)
    assert np.array_equal(np.asarray(t['sky_noise_ratio']), measured)
