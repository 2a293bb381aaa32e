"""The whole-frame level without the light of the stars measured
(`SkyEstimate.without_apertures`), the flag of rows the faint stars'
light may still bias, and skies of whole electrons."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture
from scipy.special import erf

from ccdphot_ext import (
    FLAG_NONPOSITIVE_FLUX,
    FLAG_RESIDUAL_BACKGROUND,
    BoxAperture,
    SkyEstimate,
    photometer,
)
from ccdphot_ext.photometry.residual import check_crowded_sky

SHAPE = (192, 192)


def _stars(xy, flux, sigma=1.5):
    """Gaussian stars integrated over the pixels (erf), the frame's
    shape."""
    ny, nx = SHAPE
    edges_x = np.arange(nx + 1) - 0.5
    edges_y = np.arange(ny + 1) - 0.5
    s = np.sqrt(2.0) * sigma
    cx = np.diff(0.5 * erf((edges_x[None, :] - xy[:, :1]) / s), axis=1)
    cy = np.diff(0.5 * erf((edges_y[None, :] - xy[:, 1:]) / s), axis=1)
    return np.einsum('k,ky,kx->yx', flux, cy, cx)


def _grid(rng):
    """64 positions 24 px apart, each moved by up to half a pixel."""
    ys, xs = np.mgrid[12:181:24, 12:181:24]
    xy = np.c_[xs.ravel(), ys.ravel()].astype(float)
    return xy + rng.uniform(-0.5, 0.5, xy.shape)


def _pulls(sky_e, read_noise, r, n_frames, remeasure=True, fmin=20.0,
           fmax=400.0, seed=5):
    """Flux pulls (flags 0, or 8 for a flux not above 0) of faint stars
    measured with photometer against from_image(gain=1) (by default its
    level without the apertures' light; ``remeasure=False``: as given),
    the truth the noise-free flux under the same pixel weights; and the
    level's lift taken out, per frame."""
    rng = np.random.default_rng(seed)
    pulls, lifts, flagged = [], [], 0
    for _ in range(n_frames):
        xy = _grid(rng)
        light = _stars(xy, rng.uniform(fmin, fmax, len(xy)))
        data = (rng.poisson(light + sky_e).astype(float)
                + rng.normal(0.0, read_noise, SHAPE))
        apertures = CircularAperture(xy, r)
        truth = apertures.do_photometry(light, method='exact')[0]
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)  # crowding
            sky = SkyEstimate.from_image(data, gain=1.0)
            t = photometer(data, apertures, sky, gain=1.0,
                           sky_without_apertures=remeasure)
        ok = (np.asarray(t['flags']) & ~FLAG_NONPOSITIVE_FLUX) == 0
        flagged += int(np.count_nonzero(~ok))
        pulls.extend(((np.asarray(t['aperture_sum']) - truth)
                      / np.asarray(t['aperture_sum_err']))[ok])
        lifts.append(t.meta.get('sky_aperture_lift', 0.0)
                     / sky.error_on_mean)
    return np.array(pulls), np.array(lifts), flagged


def test_faint_stars_keep_their_light_in_the_level_when_asked():
    """64 stars of 20-400 e- on a 100 e- sky, all below the source mask's
    reach, measured against the level as given: pulls -0.2 (the level
    +5.6 of its errors high)."""
    pulls, lifts, _ = _pulls(100.0, 5.0, 4.0, 10, remeasure=False)
    assert pulls.mean() < -0.15 and not lifts.any()
    with pytest.raises(TypeError, match='sky_without_apertures'):
        photometer(np.ones((8, 8)), CircularAperture((4, 4), 2.0),
                   SkyEstimate(1.0, 1.0, 100), sky_without_apertures='no')


@pytest.mark.parametrize('sky_e, read_noise, r, lifted', [
    # as given: pull mean -0.215, the level +5.6 of its errors high
    (100.0, 5.0, 4.0, 20),
    # as given: -0.35 and -0.59, the mask 90% of the frame, the level +3
    # high; the segments grown by their brightness leave a level near the
    # truth, measured again in a few frames
    (2.0, 1.0, 4.0, 3),
    (2.0, 1.0, 6.0, 3),
])
def test_faint_stars_are_measured_against_a_level_without_their_light(
        sky_e, read_noise, r, lifted):
    """photometer's default: 1280 rows, pulls centred within 0.05 and of
    spread 1 within 0.05 (their own error of the mean is 0.03). On the 2
    e- sky the source mask covers most of the frame (a crowded frame) and
    the stars, at its reach, allow a lift by fainter ones of 1.6 of the
    level's errors on one of the 20 frames (``crowding_bias_bound``, warned
    of): its 64 rows are flagged."""
    pulls, lifts, flagged = _pulls(sky_e, read_noise, r, 20)
    most = 10 if sky_e > 50 else 64 + 10
    assert pulls.size >= 1280 - most and flagged <= most
    assert abs(pulls.mean()) < 0.05
    assert abs(pulls.std() - 1.0) < 0.05
    # the level was measured again (and lowered) where the stars lift it
    assert np.count_nonzero(lifts > 0.3) >= lifted
    if sky_e == 100.0:
        assert np.all(lifts > 3.0)


def test_a_level_whose_mask_covers_the_apertures_is_not_touched(rng):
    """Bright stars masked by the source mask: the same sky, bit for
    bit."""
    xy = _grid(rng)[::5]
    light = _stars(xy, np.full(len(xy), 2e4))
    data = rng.poisson(light + 100.0) + rng.normal(0.0, 5.0, SHAPE)
    sky = SkyEstimate.from_image(data, gain=1.0)
    apertures = CircularAperture(xy, 4.0)
    assert sky.without_apertures(data, apertures) is sky
    t = photometer(data, apertures, sky, gain=1.0)
    assert np.all(np.asarray(t['sky']) == sky.value)
    assert 'sky_aperture_lift' not in t.meta
    kept = photometer(data, apertures, sky, gain=1.0,
                      sky_without_apertures=False)
    assert np.array_equal(np.asarray(kept['aperture_sum']),
                          np.asarray(t['aperture_sum']))


def test_measure_and_optimal_extraction_take_the_same_route():
    """A star whose own light lifts the level (500 e- spread wide, too
    faint for the source mask, on a 48 x 48 frame): measure and optimal
    extraction subtract the level without it, as photometer does, and
    say so; asked not to, the level as given."""
    from ccdphot_ext import measure
    from ccdphot_ext.photometry.optimal import (
        _psf_footprint,
        optimal_extraction,
    )
    rng = np.random.default_rng(0)
    shape = (48, 48)
    y, x = np.mgrid[:48, :48]
    light = 500.0 * np.exp(-((x - 24.2) ** 2 + (y - 23.7) ** 2) / 8.0) \
        / (2 * np.pi * 4.0)
    data = rng.poisson(light + 100.0) + rng.normal(0.0, 5.0, shape)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(data, gain=1.0)
        ap = CircularAperture((24.2, 23.7), 4.0)
        clean = sky.without_apertures(data, ap)
        m = measure(data, ap, sky, gain=1.0)
        t = photometer(data, ap, sky, gain=1.0)
        kept = measure(data, ap, sky, gain=1.0, sky_without_apertures=False)
        # the PSF's width as given: the two levels would fit it apart
        o = optimal_extraction(data, (24.2, 23.7), 2.0, sky, gain=1.0,
                               fit_width=False)
        o_kept = optimal_extraction(data, (24.2, 23.7), 2.0, sky, gain=1.0,
                                    sky_without_apertures=False,
                                    fit_width=False)
    if clean is sky:  # the mask took the star: nothing to take out
        pytest.fail('the frame no longer lifts its level')
    assert m.sky == float(t['sky'][0]) == clean.value < sky.value
    assert kept.sky == sky.value
    assert m.flux == pytest.approx(float(t['aperture_sum'][0]), rel=1e-12)
    assert any('measured again' in note for note in m.budget.notes)
    # against the level without the light of the PSF's core (the circle
    # holding 90% of it: 4.29 px for a sigma of 2; grown for the wings)
    core = _psf_footprint(2.0, (24.2, 23.7), shape, None)
    assert core.r == pytest.approx(2.0 * np.sqrt(2 * np.log(10.0)),
                                   abs=0.3)
    stamp = sky.without_apertures(data, core)
    assert o.flux != o_kept.flux  # (the weights follow the flux: not exact)
    assert (o.flux - o_kept.flux) == pytest.approx(
        (sky.value - stamp.value) * float(np.sum(o.weights)), rel=0.05)
    assert any('measured again' in note for note in o.budget.notes)


def test_faint_sky_mask_keeps_the_sky_between_sparse_stars(rng):
    """64 stars of 20-400 e- on a 2 e- sky: grown by 3 blocks each, the
    mask took 83-89% of the frame (their light covers 13%), leaving the
    sky around the stars it missed, and the level read +3 of its errors
    high; the segments are grown by their brightness now. A blank frame
    keeps every pixel."""
    pulls = []
    for _ in range(10):
        xy = _grid(rng)
        light = _stars(xy, rng.uniform(20.0, 400.0, len(xy)))
        data = rng.poisson(light + 2.0) + rng.normal(0.0, 1.0, SHAPE)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)  # crowding
            sky = SkyEstimate.from_image(data, gain=1.0)
        assert sky.meta['n_masked_sources'] < 0.8 * data.size
        assert 'source_mask_growth' in sky.meta
        pulls.append((sky.value - 2.0) / sky.error_on_mean)
    assert abs(np.mean(pulls)) < 0.6
    blank = rng.poisson(2.0, SHAPE) + rng.normal(0.0, 1.0, SHAPE)
    sky = SkyEstimate.from_image(blank, gain=1.0)
    assert sky.meta['n_masked_sources'] == 0
    assert 'source_mask_growth' not in sky.meta


def test_a_crowded_frame_of_brighter_stars_keeps_its_mask(rng):
    """64 stars of 300 to 10**5 e- on a 100 e- sky: the 3-block growth
    takes 87-98% of the frame and, mostly, the segments less than an
    eighth, but a third or more of them are bright: the mask is grown as before (grown
    by brightness, the sky beside the bright stars' wings would enter the
    level and a Background2D map's blank sky)."""
    from ccdphot_ext.background import globalsky
    by_rule = 0
    for _ in range(4):
        xy = _grid(rng)
        light = _stars(xy, 10 ** rng.uniform(np.log10(300.0), 5.0,
                                              len(xy)))
        data = rng.poisson(light + 100.0) + rng.normal(0.0, 5.0, SHAPE)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            sky = SkyEstimate.from_image(data, gain=1.0)
            assert 'source_mask_growth' not in sky.meta
            assert sky.meta['n_masked_sources'] > 0.85 * data.size
            # the brightness rule alone keeps it
            bright = globalsky.OVERGROWN_BRIGHT
            try:
                globalsky.OVERGROWN_BRIGHT = 1.1
                grown = SkyEstimate.from_image(data, gain=1.0)
            finally:
                globalsky.OVERGROWN_BRIGHT = bright
        by_rule += 'source_mask_growth' in grown.meta
    assert by_rule >= 2  # measured 3 of 4 (the 4th: segments over 1/8)


def test_without_apertures_is_faithful_and_idempotent(rng):
    xy = _grid(rng)
    light = _stars(xy, rng.uniform(20.0, 400.0, len(xy)))
    data = rng.poisson(light + 100.0) + rng.normal(0.0, 5.0, SHAPE)
    sky = SkyEstimate.from_image(data, gain=1.0)
    apertures = CircularAperture(xy, 4.0)
    clean = sky.without_apertures(data, apertures)
    assert clean is not sky
    assert clean.method == sky.method == 'sigma_clip'
    assert clean.meta['aperture_lift'] == pytest.approx(sky.value
                                                        - clean.value)
    assert clean.meta['aperture_lift'] > 3 * sky.error_on_mean
    assert clean.n_pix < sky.n_pix
    assert 'estimator_bias' in clean.meta  # the Poisson model again
    # its own apertures are out: nothing more to take
    assert clean.without_apertures(data, apertures) is clean
    # another frame, or a sky made without a source mask: untouched
    other = data + 1.0
    assert sky.without_apertures(other, apertures) is sky
    plain = SkyEstimate.from_image(data, method='mean', mask_sources=False)
    assert plain.without_apertures(data, apertures) is plain
    with pytest.raises(TypeError, match='apertures'):
        sky.without_apertures(data, 'not an aperture')


def test_rows_the_faint_stars_light_may_bias_are_flagged():
    sky = SkyEstimate(100.0, 10.0, 10000, meta={'crowding_bias': 0.2})
    # 50 * 0.2 = 10 against 0.05 * 250; 400 * 0.2 against 0.05 * 150
    with pytest.warns(AstropyUserWarning, match=r'for 1 of 2 aperture\(s\)'
                      r' by more than 0.05 flux errors'):
        biased, message = check_crowded_sky(sky, [50.0, 400.0],
                                            [250.0, 150.0])
    assert biased.tolist() == [False, True]
    assert 'flagged 32' in message
    # no estimate (an annulus sky, a map, a level without a source mask)
    assert not check_crowded_sky(SkyEstimate(100.0, 10.0, 10000), 400.0,
                                 1.0)[0]
    # through photometer
    img = np.random.default_rng(2).normal(100.0, 10.0, (64, 64))
    sky = SkyEstimate(100.0, 10.0, 4096, meta={'crowding_bias': 2.0})
    with pytest.warns(AstropyUserWarning, match='too faint for the source'):
        t = photometer(img, CircularAperture([(20.0, 20.0)], 8.0), sky)
    assert t['flags'][0] & FLAG_RESIDUAL_BACKGROUND


@pytest.mark.parametrize('sky_e, gain', [(2.0, 2.0), (2.0, 1.0),
                                         (0.5, 1.0)])
@pytest.mark.parametrize('method', ['sigma_clip', 'median', 'mean'])
def test_a_sky_of_whole_electrons_is_its_pixels_mean(sky_e, gain, method):
    """No read noise: a clipped mean read a 2 e- sky 1.2-2.3 of its
    errors high, a 0.5 e- one 44 low; a median 0 with an error of 0. The
    level is the pixels' mean now, warned every time (the mean was that
    already: no warning)."""
    rng = np.random.default_rng(11)
    pulls = []
    for _ in range(40):
        data = rng.poisson(sky_e, (48, 48)) / gain
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter('always')
            sky = SkyEstimate.from_image(data, method=method, gain=gain)
        told = any('whole electrons' in str(w.message) for w in said)
        assert told == (method != 'mean')
        assert ('discrete_window' in sky.meta) == told
        # the mean and scatter of the pixels off the source mask (every
        # pixel within the window), the mean's error
        used = data.size - sky.meta.get('n_masked_sources', 0)
        assert sky.n_pix == used and sky.efficiency == 1.0
        if used == data.size:
            assert sky.value == pytest.approx(data.mean(), rel=1e-12)
            assert sky.std == pytest.approx(data.std(), rel=1e-9)
        assert sky.error_on_mean == pytest.approx(
            sky.std / np.sqrt(used), rel=1e-12)
        assert sky.error_on_mean > 0
        pulls.append((sky.value - sky_e / gain) / sky.error_on_mean)
    assert abs(np.mean(pulls)) < 0.4 and 0.75 < np.std(pulls) < 1.25


def test_read_noise_or_no_gain_is_not_discrete(rng):
    # whole ADU without a gain: the level as before, no warning
    data = rng.poisson(5.0, (64, 64)).astype(float)
    sky = SkyEstimate.from_image(data)
    assert 'discrete_window' not in sky.meta
    # 1 e- of read noise: continuous, the exact model as before
    data = rng.poisson(2.0, (64, 64)) + rng.normal(0.0, 1.0, (64, 64))
    sky = SkyEstimate.from_image(data, gain=1.0)
    assert 'discrete_window' not in sky.meta


def test_command_line_measures_against_the_level_without_its_stars(
        tmp_path):
    """``ccdphot measure`` takes the measured stars' light out of a
    whole-frame level, as photometer does; ``--sky-with-apertures`` keeps
    the level as measured."""
    from astropy.io import fits
    from astropy.table import QTable
    from clirun import ccdphot

    rng = np.random.default_rng(4)
    xy = _grid(rng)
    light = _stars(xy, rng.uniform(20.0, 400.0, len(xy)))
    data = rng.poisson(light + 100.0) + rng.normal(0.0, 5.0, SHAPE)
    fits.PrimaryHDU(data.astype(np.float32), fits.Header(
        {'BUNIT': 'electron'})).writeto(tmp_path / 'frame.fits')
    np.savetxt(tmp_path / 'stars.csv', xy, delimiter=',', header='x,y',
               comments='')
    tables = {}
    for extra in ((), ('--sky-with-apertures',)):
        out = tmp_path / f'out{len(extra)}.ecsv'
        code, _, err = ccdphot('measure', tmp_path / 'frame.fits',
                               '--positions', tmp_path / 'stars.csv',
                               '--radius', 4, '-o', out, *extra)
        assert code == 0, err
        tables[len(extra)] = QTable.read(out)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        frame = data.astype(np.float32).astype(float)
        sky = SkyEstimate.from_image(frame, gain=1.0)
        t = photometer(frame, CircularAperture(xy, 4.0), sky, gain=1.0)
    default, kept = tables[0], tables[1]
    # (the level measured again sheds the coarse background's share,
    # whose blocks the command line averages in the file's single
    # precision: 4e-8 here, 2e-6 of the level's error)
    assert default['sky'][0].value == pytest.approx(float(t['sky'][0]),
                                                    abs=1e-6)
    assert default.meta['sky_aperture_lift'] > 3 * sky.error_on_mean
    assert kept['sky'][0].value == pytest.approx(sky.value, rel=1e-12)
    assert 'sky_aperture_lift' not in kept.meta


def _small_frame_pulls(shape, centres, r, flux, n_frames, remeasure=True,
                       sky_gain=1.0, seed=11):
    """Flux pulls of ``flux``-ADU Gaussian stars (sigma 1.5 px) at
    ``centres`` of a small frame of a 100 ADU Poisson sky (gain 1), in
    r-circles against from_image's level (with ``gain=sky_gain``; default:
    without the apertures' light), the truth the noise-free flux under the
    same pixel weights; and the rows' flags."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    s = np.sqrt(2.0) * 1.5
    cx = np.diff(0.5 * erf((np.arange(nx + 1) - 0.5 - centres[:, :1]) / s),
                 axis=1)
    cy = np.diff(0.5 * erf((np.arange(ny + 1) - 0.5 - centres[:, 1:]) / s),
                 axis=1)
    light = flux * np.einsum('ky,kx->yx', cy, cx)
    apertures = CircularAperture(centres, r)
    truth = apertures.do_photometry(light, method='exact')[0]
    pulls, flags = [], []
    for _ in range(n_frames):
        data = rng.poisson(light + 100.0).astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            sky = SkyEstimate.from_image(data, gain=sky_gain)
            t = photometer(data, apertures, sky, gain=1.0,
                           sky_without_apertures=remeasure)
        pulls.append((np.asarray(t['aperture_sum']) - truth)
                     / np.asarray(t['aperture_sum_err']))
        flags.append(np.asarray(t['flags']))
    return np.concatenate(pulls), np.concatenate(flags)


def test_a_faint_star_alone_on_a_stamp_is_measured_without_its_light():
    """Within the noise of its pixels, a 300 ADU star still lifts a 25 x 25
    stamp's level by about its error (pulls -0.18 when only a significant
    excess made the level be measured again; -0.30 as given). The level
    is taken without the gain (its Poisson model costs 7 times more on
    such stamps)."""
    centre = np.array([[12.3, 12.3]])
    pulls, flags = _small_frame_pulls((25, 25), centre, 4.0, 300.0, 500,
                                      sky_gain=None)
    assert abs(pulls.mean()) < 0.1  # +-0.045
    assert abs(pulls.std() - 1.0) < 0.08
    assert np.all(flags & ~FLAG_NONPOSITIVE_FLUX == 0)
    kept, _ = _small_frame_pulls((25, 25), centre, 4.0, 300.0, 500,
                                 remeasure=False, sky_gain=None)
    assert kept.mean() < -0.12


@pytest.mark.parametrize('r', [6.0, 9.0])
def test_apertures_covering_most_of_a_small_frame(r):
    """Nine stars whose grown discs would cover most (r = 6) or all (r =
    9) of a 64 x 64 frame: their discs are grown by 2 pixels only, and
    the level measured from the rest (pulls -0.47 and -0.94 before). At r
    = 9 the rest is about 630 pixels, too few for the level's clip and
    scatter, and its error 0.55 of each row's: the nine rows share that
    offset, and are flagged 32 (`ThinLevelRule`); their pulls across
    frames are as honest as at r = 6 (1387 pixels left, unflagged)."""
    centres = np.array([(12.0 + 20 * i, 12.0 + 20 * j) for i in range(3)
                        for j in range(3)]) + 0.3
    pulls, flags = _small_frame_pulls((64, 64), centres, r, 300.0, 40)
    assert abs(pulls.mean()) < 0.13  # 360 rows: +-0.053
    assert abs(pulls.std() - 1.0) < 0.1
    doubtful = (flags & FLAG_RESIDUAL_BACKGROUND) != 0
    assert np.all(doubtful) if r == 9.0 else not np.any(doubtful)
    kept, _ = _small_frame_pulls((64, 64), centres, r, 300.0, 40,
                                 remeasure=False)
    assert kept.mean() < -0.35


def test_apertures_covering_every_sky_pixel_flag_their_rows(rng):
    """One r = 10 circle over a 15 x 15 stamp leaves the level no pixel to
    be measured again from: it keeps the star's light, said and flagged."""
    y, x = np.mgrid[:15, :15]
    light = 300.0 * np.exp(-((x - 7.2) ** 2 + (y - 7.2) ** 2) / 4.5) / (
        2 * np.pi * 2.25)
    data = rng.poisson(light + 100.0).astype(float)
    sky = SkyEstimate.from_image(data, gain=1.0)
    aperture = CircularAperture((7.2, 7.2), 10.0)
    kept = sky.without_apertures(data, aperture)
    assert kept is not sky and kept.value == sky.value
    assert 'cover every pixel' in kept.meta['aperture_light_kept']
    with pytest.warns(AstropyUserWarning, match='cover every pixel'):
        t = photometer(data, aperture, sky, gain=1.0)
    assert t['flags'][0] & FLAG_RESIDUAL_BACKGROUND
    assert float(t['sky'][0]) == sky.value
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)  # as asked
        t = photometer(data, aperture, sky, gain=1.0,
                       sky_without_apertures=False)
    assert not t['flags'][0] & FLAG_RESIDUAL_BACKGROUND


def test_a_single_precision_copy_is_the_frame_the_sky_was_measured_on(rng):
    xy = _grid(rng)
    light = _stars(xy, rng.uniform(20.0, 400.0, len(xy)))
    data = rng.poisson(light + 100.0) + rng.normal(0.0, 5.0, SHAPE)
    sky = SkyEstimate.from_image(data, gain=1.0)
    apertures = CircularAperture(xy, 4.0)
    clean = sky.without_apertures(data, apertures)
    single = sky.without_apertures(data.astype(np.float32), apertures)
    assert clean is not sky and single is not sky
    assert single.value == pytest.approx(clean.value, abs=1e-5)
    # a frame that differs by more than rounding is another frame
    assert sky.without_apertures(data * (1 + 1e-4), apertures) is sky


def test_apertures_covering_most_of_a_frame_share_one_level_error():
    """800 blank 11 px boxes on a 150 x 150 white frame: the level measured
    without them rests on the few pixels left, and its error
    (``var_sky_mean``) is one offset common to every row: the boxes
    scatter well under their errors, and as their errors without that
    common term. The level rests on fewer than 1000 pixels and its error
    is more than 0.45 of each row's: every row is flagged 32."""
    rng = np.random.default_rng(5)
    data = rng.normal(100.0, 10.0, (150, 150))
    centres = rng.uniform(5.0, 144.0, (800, 2))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(data)
        t = photometer(data, BoxAperture(centres, 11, 11), sky)
    sums = np.asarray(t['aperture_sum'])
    err = np.asarray(t['aperture_sum_err'])
    common = np.asarray(t['var_sky_mean'])
    assert np.allclose(common, common[0])  # one level for every row
    assert np.median(common / err ** 2) > 0.2
    assert np.std(sums / err) < 0.9  # 0.81
    own = sums - np.median(sums)  # the common offset taken out
    assert 0.85 < np.std(own / np.sqrt(err ** 2 - common)) < 1.15  # 0.92
    # the common offset is a draw of the level's error
    assert abs(np.median(sums) / np.sqrt(common[0])) < 3.0
    assert np.all(np.asarray(t['flags']) & FLAG_RESIDUAL_BACKGROUND)
