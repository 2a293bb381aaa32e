"""The frame-level trust checks reach every measurement route: a frame
whose uncertainty is not its noise, whose pixel noise is correlated, in a
rate without a gain, or whose background a global sky misses is warned
about (and flagged) alike by measure, photometer, optimal_extraction, the
curve of growth and photometer_frames, each check from its one home."""

import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus, CircularAperture
from scipy.ndimage import gaussian_filter

from ccdphot_ext import (
    FLAG_RESIDUAL_BACKGROUND,
    FLAG_SKY_ANNULUS,
    BoxAperture,
    SkyEstimate,
    growth_curve,
    measure,
    optimal_extraction,
    photometer,
    photometer_frames,
)
from ccdphot_ext.datasets.sample import render_stars
from ccdphot_ext.flags import FLAG_NO_SOURCE_TERM

N = 256
XS = np.array([60.3, 128.2, 190.7, 70.6, 180.1])
YS = np.array([64.1, 128.5, 60.2, 190.4, 185.9])
PSF_SIGMA = 1.6


def _frame(fault, seed=3):
    """A 256 x 256 frame of five bright stars on a sky of 100 with one
    fault (or none: ``'right'``), observed at MJD 60000."""
    rng = np.random.default_rng(seed)
    meta = {'MJD-OBS': 60000.0}
    stars = render_stars((N, N), XS, YS, np.full(5, 20000.0),
                         sigma=PSF_SIGMA)
    white = rng.normal(0.0, 5.0, (N, N))
    if fault == 'right':
        return CCDData(100.0 + stars + white, unit='adu', meta=meta,
                       uncertainty=StdDevUncertainty(np.full((N, N), 5.0)))
    if fault == 'uncertainty':  # three times the noise
        return CCDData(100.0 + stars + white, unit='adu', meta=meta,
                       uncertainty=StdDevUncertainty(np.full((N, N), 15.0)))
    if fault == 'correlated':  # resampled: neighbours share their noise
        smooth = gaussian_filter(rng.normal(0.0, 10.0, (N, N)), 1.0)
        return CCDData(100.0 + stars + smooth, unit='adu', meta=meta)
    if fault == 'rate':  # counts per second, no gain, no exposure time
        return CCDData((100.0 + stars + white) / 100.0, unit=u.adu / u.s,
                       meta=meta)
    yy, xx = np.mgrid[:N, :N]  # 'gradient': a tilted background
    return CCDData(100.0 + stars + white + 0.3 * (xx - N / 2), unit='adu',
                   meta=meta)


WORDS = {'uncertainty': 'uncertainty check: .* too large',
         'correlated': 'pixel noise is correlated',
         'rate': 'no source photon noise in any error bar',
         'gradient': 'the background varies across the frame'}


def _boxes():
    return BoxAperture(np.column_stack([XS, YS]), 15, 15)


def _route(route, ccd):
    """The flags each route gives the five stars (the curve of growth: its
    scales of the first star)."""
    sky = SkyEstimate.from_image(ccd)
    if route == 'measure':
        return [measure(ccd, BoxAperture((x, y), 15, 15), sky).flags
                for x, y in zip(XS, YS, strict=True)]
    if route == 'photometer':
        return list(photometer(ccd, _boxes(), sky)['flags'])
    if route == 'optimal_extraction':
        return [optimal_extraction(ccd, (x, y), PSF_SIGMA, sky).flags
                for x, y in zip(XS, YS, strict=True)]
    if route == 'growth_curve':
        return list(growth_curve(ccd, BoxAperture((XS[0], YS[0]), 15, 15),
                                 sky, scales=(1.0,))['flags'])
    return list(photometer_frames([ccd], _boxes())['flags'])


ROUTES = ('measure', 'photometer', 'optimal_extraction', 'growth_curve',
          'photometer_frames')


@pytest.mark.parametrize('fault', list(WORDS))
@pytest.mark.parametrize('route', ROUTES)
def test_every_route_warns_about_a_frame_it_cannot_trust(route, fault):
    with warnings.catch_warnings():
        if fault == 'correlated':  # its coarse map is as correlated: it
            # may see a gradient in the noise (said, not this test's point)
            warnings.filterwarnings('ignore', '.*the background varies')
        if fault == 'gradient':  # the tilt under the stars' stamps fails
            # their PSF's profile tests (said, not this test's point)
            warnings.filterwarnings('ignore', '.*the PSF does not fit')
            warnings.filterwarnings('ignore', ".*its shape is not theirs")
        with pytest.warns(AstropyUserWarning, match=WORDS[fault]):
            flags = _route(route, _frame(fault))
    if fault == 'gradient':  # the stars far from the middle are biased
        # (the middle star's bias, 0.2 of its error, may be flagged too:
        # the map's cells near it read the tilt's mean over their area)
        flagged = [bool(f & FLAG_RESIDUAL_BACKGROUND) for f in flags]
        if route == 'growth_curve':
            assert flagged == [True]
        else:
            assert [flagged[i] for i in (0, 2, 3, 4)] == [True] * 4


@pytest.mark.parametrize('route', ROUTES)
def test_no_route_warns_about_a_right_frame(route):
    """The same stars on a frame whose uncertainty is its noise, white, in
    ADU on a flat sky: nothing to say (any warning fails the suite)."""
    # (2048: no gain given, the stars' photon noise could matter)
    assert not any(f & ~FLAG_NO_SOURCE_TERM
                   for f in _route(route, _frame('right')))


def test_optimal_extraction_warning_says_where_noise_is_modelled():
    """Optimal extraction takes no noise=: its correlated-noise warning
    sends the user to measure/photometer with one, which keep theirs."""
    ccd = _frame('correlated')
    sky = SkyEstimate.from_image(ccd)
    with warnings.catch_warnings():
        # its coarse map is as correlated: it may see a gradient in the
        # noise (said, not this test's point)
        warnings.filterwarnings('ignore', '.*the background varies')
        with pytest.warns(AstropyUserWarning,
                          match='Optimal extraction takes no noise model'):
            optimal_extraction(ccd, (XS[0], YS[0]), PSF_SIGMA, sky)
        with pytest.warns(AstropyUserWarning, match='and pass noise=$'):
            measure(ccd, BoxAperture((XS[0], YS[0]), 15, 15), sky)


def test_optimal_uncertainty_warning_names_the_argument():
    img = _frame('right')
    sky = SkyEstimate.from_image(img)
    with pytest.warns(AstropyUserWarning,
                      match='the uncertainty= map is not the noise'):
        optimal_extraction(img, (XS[1], YS[1]), PSF_SIGMA, sky,
                           uncertainty=np.full((N, N), 15.0))


def test_a_gain_silences_the_unknown_source_term():
    ccd = _frame('rate')
    sky = SkyEstimate.from_image(ccd)
    res = optimal_extraction(ccd, (XS[1], YS[1]), PSF_SIGMA, sky,
                             gain=200.0 * u.electron / (u.adu / u.s))
    assert 'source' in res.budget.terms


def test_optimal_sky_bias_is_the_weights_sum_times_the_offset():
    """The pixel count the sky-bias rules give optimal extraction, the sum
    of its weights, is how far a sky offset moves its flux: the tilted
    frame less the flat one (same noise) under the same weights is the
    local background times that sum, to the tilt's curvature (none). The
    width as given (``fit_width=False``): the tilt moves the width the
    bright stars show, and with it the weights."""
    tilted, flat = _frame('gradient'), _frame('right')
    x, y = XS[2], YS[2]
    sky = SkyEstimate.from_image(flat)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)  # tilted: said
        res_t = optimal_extraction(tilted.data, (x, y), PSF_SIGMA, sky,
                                   fit_width=False)
    res_f = optimal_extraction(flat.data, (x, y), PSF_SIGMA, sky,
                               fit_width=False)
    np.testing.assert_allclose(res_t.weights, res_f.weights, rtol=1e-12)
    offset = 0.3 * (np.round(x) - N / 2)  # the tilt at the stamp's centre
    shift = res_t.flux - res_f.flux
    assert shift == pytest.approx(offset * np.sum(res_f.weights), rel=0.02)


def test_optimal_flags_an_annulus_sky_as_photometer_does():
    """An annulus more than half masked: photometer flags its row, and
    optimal extraction against the same level now does too."""
    img = np.asarray(_frame('right').data)
    x, y = XS[1], YS[1]
    mask = np.zeros(img.shape, bool)
    mask[:, : int(x) + 5] = True  # most of the annulus, not the star
    annulus = CircularAnnulus((x, y), 8.0, 14.0)
    with pytest.warns(AstropyUserWarning, match='annul'):
        sky = SkyEstimate.from_annulus(img, annulus, mask=mask)
    assert sky.meta['flags'][0] == FLAG_SKY_ANNULUS
    row = photometer(img, CircularAperture((x, y), 4.0), sky)
    res = optimal_extraction(img, (x, y), PSF_SIGMA, sky)
    # (2048, no gain, is photometer's alone)
    assert row['flags'][0] & ~FLAG_NO_SOURCE_TERM == res.flags == FLAG_SKY_ANNULUS
