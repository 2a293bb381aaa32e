"""Local sky: SkyEstimate.from_annulus, 2-D maps (from_background2d,
from_maps), the sky_mean term that carries their error into the flux error,
and the decomposition of the measured sky variance."""

import math
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.stats import SigmaClip, mad_std, sigma_clip
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from expected_warnings import gradient_warning
from photutils.aperture import (
    ApertureStats,
    CircularAnnulus,
    CircularAperture,
    EllipticalAnnulus,
    RectangularAnnulus,
)
from photutils.background import (
    Background2D,
    MeanBackground,
    MedianBackground,
    SExtractorBackground,
)

from ccdphot_ext import (
    FLAG_SKY_ANNULUS,
    BoxAperture,
    BudgetOptions,
    DetectorParameters,
    ErrorBudget,
    SigmaThreshold,
    SkyEstimate,
    measure,
    photometer,
)
from ccdphot_ext.background import BACKGROUND2D_EFFICIENCY
from ccdphot_ext.background.estimators import clip_factors
from ccdphot_ext.datasets.sample import simulate_frame


def _annulus_pixels(img, annulus, index):
    """Plain numpy: the whole pixels whose centre is in annulus ``index``."""
    masks = annulus.to_mask(method='center')
    masks = masks if isinstance(masks, list) else [masks]
    full = masks[index].to_image(img.shape) > 0
    return img[full]


ANNULI = [
    CircularAnnulus([(30.0, 25.0), (70.3, 60.8), (3.0, 50.0)], r_in=6,
                    r_out=11),
    EllipticalAnnulus([(40.0, 40.0), (61.2, 21.7)], a_in=5, a_out=12,
                      b_out=8, theta=0.4),
    RectangularAnnulus([(45.5, 35.5)], w_in=20, w_out=30, h_out=26),
]


@pytest.fixture
def field(rng):
    img = rng.normal(500.0, 12.0, (90, 100))
    img[24:27, 36:39] += 4000.0  # a star in the first annulus
    return img


@pytest.mark.parametrize('annulus', ANNULI,
                         ids=['circular', 'elliptical', 'rectangular'])
@pytest.mark.parametrize('method', ['mean', 'median', 'sigma_clip'])
def test_from_annulus_equals_numpy_on_same_pixels(field, annulus, method):
    if method == 'mean' and isinstance(annulus, CircularAnnulus):
        # the star lifts the plain mean of the first annulus: flagged
        with pytest.warns(AstropyUserWarning, match='1 of 3 sky annuli '
                          'flagged doubtful: they hold a source'):
            sky = SkyEstimate.from_annulus(field, annulus, method=method)
        assert sky.meta['flags'].tolist() == [FLAG_SKY_ANNULUS, 0, 0]
    else:
        sky = SkyEstimate.from_annulus(field, annulus, method=method)
    n = len(annulus) if not annulus.isscalar else 1
    assert np.shape(sky.value) == (n,)
    for i in range(n):
        pix = _annulus_pixels(field, annulus, i)
        if method == 'mean':
            level, std, k, used = pix.mean(), pix.std(), 1.0, pix
        elif method == 'median':
            level, std, k, used = (np.median(pix), mad_std(pix),
                                   math.sqrt(math.pi / 2), pix)
        else:
            kept = sigma_clip(pix, sigma=3, maxiters=10, masked=False)
            used = kept[np.isfinite(kept)]
            f_std, k = clip_factors(3.0)
            level, std = used.mean(), used.std() * f_std
        assert sky.value[i] == pytest.approx(level, rel=1e-12)
        assert sky.std[i] == pytest.approx(std, rel=1e-12)
        assert sky.n_pix[i] == used.size
        assert sky.error_on_mean[i] == pytest.approx(
            k * std / math.sqrt(used.size), rel=1e-12)
        assert sky.n_rejected[i] == pix.size - used.size
    assert sky.efficiency == pytest.approx(
        {'mean': 1.0, 'median': 1.2533141373155,
         'sigma_clip': 1.0136}[method], abs=1e-4)


@pytest.mark.parametrize('annulus', ANNULI[:2], ids=['circular', 'elliptical'])
def test_from_annulus_equals_photutils_aperturestats(field, annulus):
    clipped = SkyEstimate.from_annulus(field, annulus)
    stats = ApertureStats(field, annulus,
                          sigma_clip=SigmaClip(sigma=3.0, maxiters=10))
    np.testing.assert_allclose(clipped.value, stats.mean, rtol=1e-12)
    np.testing.assert_allclose(clipped.std / clipped.meta['std_factor'],
                               stats.std, rtol=1e-12)
    median = SkyEstimate.from_annulus(field, annulus, method='median')
    plain = ApertureStats(field, annulus)
    np.testing.assert_allclose(median.value, plain.median, rtol=1e-12)
    np.testing.assert_allclose(median.std, plain.mad_std, rtol=1e-12)


def test_the_star_in_the_annulus_is_clipped(field):
    ann = ANNULI[0]
    with pytest.warns(AstropyUserWarning, match='hold a source'):
        mean = SkyEstimate.from_annulus(field, ann, method='mean')
    # the clip leaves out the star (a box without wings): no lift, no flag
    clipped = SkyEstimate.from_annulus(field, ann)
    assert clipped.meta['flags'][0] == 0
    assert mean.value[0] > 540  # the star drags the plain mean up
    assert abs(clipped.value[0] - 500) < 3
    # the median's MAD-based scatter ignores the star too (noise is 12)
    median = SkyEstimate.from_annulus(field, ann, method='median')
    assert mean.std[0] > 200
    assert median.std[0] == pytest.approx(12.0, rel=0.15)
    assert clipped.meta['n_clipped'][0] >= 9
    # the partly off-frame annulus only counts pixels inside the frame
    assert clipped.n_pix[2] < clipped.n_pix[1]


def test_nan_and_masked_pixels_excluded_and_counted(field):
    img = field.copy()
    ann = CircularAnnulus([(30.0, 25.0), (70.0, 60.0)], r_in=6, r_out=11)
    img[25, 39] = np.nan  # (x=39, y=25): 9 px from the first centre
    img[25, 40] = np.inf
    mask = np.zeros(img.shape, bool)
    mask[60, 79:81] = True  # (x=79..80, y=60): 9-10 px from the second
    with pytest.warns(AstropyUserWarning, match='4 masked/NaN/inf'), \
            pytest.warns(AstropyUserWarning, match='hold a source'):
        sky = SkyEstimate.from_annulus(img, ann, method='mean', mask=mask)
    assert sky.meta['n_excluded_bad'].tolist() == [2, 2]
    pix = _annulus_pixels(field, ann, 0)
    assert sky.n_pix[0] == pix.size - 2
    good = _annulus_pixels(np.where(np.isfinite(img), img, np.nan), ann, 0)
    assert sky.value[0] == pytest.approx(np.nanmean(good), rel=1e-12)
    assert sky.n_rejected.tolist() == [2, 2]


def test_uncertainty_map_gives_propagated_error(field):
    sigma = np.full(field.shape, 3.0)
    sigma[:, 50:] = 6.0
    ccd = CCDData(field, unit='adu', uncertainty=StdDevUncertainty(sigma))
    ann = CircularAnnulus([(30.0, 25.0), (70.0, 60.0)], r_in=6, r_out=11)
    with pytest.warns(AstropyUserWarning, match='hold a source'):
        sky = SkyEstimate.from_annulus(ccd, ann, method='mean')
    for i, s in enumerate((3.0, 6.0)):
        n = sky.n_pix[i]
        assert sky.error_on_mean[i] == pytest.approx(math.sqrt(n * s ** 2) / n)
    assert sky.meta['error_on_mean_from'] == 'uncertainty map'
    assert sky.unit == u.adu


def test_single_position_gives_one_level_not_a_global_sky(field):
    ann = CircularAnnulus((30.0, 25.0), r_in=6, r_out=11)
    sky = SkyEstimate.from_annulus(field, ann)
    assert not sky.isscalar and len(sky) == 1
    # photometer refuses it for two apertures instead of reusing it silently
    with pytest.raises(ValueError, match='1 levels for 2 apertures'):
        photometer(field, BoxAperture([(30, 25), (60, 60)], 5, 5), sky)


def test_bad_annulus_arguments(field):
    with pytest.raises(TypeError, match='annulus'):
        SkyEstimate.from_annulus(field, CircularAperture((10, 10), 3))
    with pytest.raises(ValueError, match='method'):
        SkyEstimate.from_annulus(field, ANNULI[0], method='mode')
    img = field.copy()
    img[:30, :45] = np.nan
    with pytest.raises(ValueError, match='no sky annulus holds'):
        SkyEstimate.from_annulus(
            img, CircularAnnulus((20.0, 15.0), r_in=3, r_out=6))
    # one annulus off the frame: its level is NaN and flagged, not an error
    with pytest.warns(AstropyUserWarning, match='flagged doubtful'):
        sky = SkyEstimate.from_annulus(
            field, CircularAnnulus([(20, 15), (-50, -50)], r_in=3, r_out=6))
    assert sky.n_pix[1] == 0 and np.isnan(sky.value[1])
    assert sky.meta['flags'][1] == FLAG_SKY_ANNULUS
    assert sky.n_pix[0] > 0 and sky.meta['flags'][0] == 0


def test_annulus_error_on_mean_is_calibrated():
    """The scatter of the annulus level over realisations is its error."""
    rng = np.random.default_rng(11)
    ann = CircularAnnulus([(15.0, 15.0), (45.0, 15.0)], r_in=4, r_out=7)
    for method in ('mean', 'median', 'sigma_clip'):
        values, errors = [], []
        for _ in range(300):
            img = rng.normal(0.0, 1.0, (30, 60))
            sky = SkyEstimate.from_annulus(img, ann, method=method)
            values.append(sky.value)
            errors.append(sky.error_on_mean)
        ratio = np.std(values, axis=0) / np.mean(errors, axis=0)
        np.testing.assert_allclose(ratio, 1.0, atol=0.12)


# --- the sky_mean term flows into the flux error ------------------------------

def test_sky_mean_term_from_an_annulus_in_measure(field):
    box = BoxAperture.from_slices(np.s_[20:31, 32:43])
    ann = RectangularAnnulus(box.positions, 13, 15, 15)
    sky = SkyEstimate.from_annulus(field, ann, method='mean')
    res = measure(field, box, sky, gain=2.0)
    n_sky = _annulus_pixels(field, ann, 0).size
    assert n_sky == 15 ** 2 - 13 ** 2
    terms = res.budget.terms
    assert terms['sky_mean'] == pytest.approx(
        121 ** 2 * sky.std[0] ** 2 / n_sky, rel=1e-12)
    assert terms['sky_mean'] > terms['sky']  # a small annulus dominates
    assert res.compare_numpy().meta['max_abs_rel_diff'] < 1e-10
    assert res.flux == pytest.approx(
        (field[20:31, 32:43] - sky.value[0]).sum(), rel=1e-12)


def test_photutils_sum_err_leaves_the_sky_mean_term_out(field):
    """photutils' sum_err is the same with and without local_bkg; ours is
    its quadrature sum with the sky_mean term."""
    ap = CircularAperture((37.0, 25.0), r=4.0)
    ann = CircularAnnulus((37.0, 25.0), r_in=6, r_out=9)
    sky = SkyEstimate.from_annulus(field, ann, method='mean')
    err = np.full(field.shape, sky.std[0])
    with_bkg = ApertureStats(field, ap, error=err, local_bkg=sky.value[0])
    without = ApertureStats(field, ap, error=err)
    assert with_bkg.sum_err == without.sum_err
    # photutils adds w * sigma**2 for a pixel partly inside
    ours = measure(field, ap, sky, uncertainty=err,
                   budget=BudgetOptions(fractional_variance='linear'))
    assert ours.flux == pytest.approx(with_bkg.sum, rel=1e-10)
    assert math.sqrt(ours.budget.terms['sky']) == pytest.approx(
        with_bkg.sum_err, rel=1e-10)
    assert ours.flux_err ** 2 == pytest.approx(
        with_bkg.sum_err ** 2 + ours.budget.terms['sky_mean'], rel=1e-12)
    assert ours.flux_err > 1.1 * with_bkg.sum_err


def test_photometer_with_annulus_sky_per_row(field):
    pos = [(37.0, 25.0), (70.0, 60.0)]
    boxes = BoxAperture(pos, 7, 7)
    sky = SkyEstimate.from_annulus(field, CircularAnnulus(pos, 7, 11))
    t = photometer(field, boxes, sky, gain=2.0)
    for i in range(2):
        one = measure(field, boxes[i], SkyEstimate(
            sky.value[i], sky.std[i], sky.n_pix[i],
            error_on_mean=sky.error_on_mean[i]), gain=2.0)
        assert t['aperture_sum'][i] == pytest.approx(one.flux, rel=1e-12)
        assert t['var_sky_mean'][i] == pytest.approx(
            one.budget.terms['sky_mean'], rel=1e-12)
        assert t['sky'][i] == sky.value[i]


# --- 2-D maps -----------------------------------------------------------------

@pytest.fixture
def gradient_frame(rng):
    yy, xx = np.mgrid[0:128, 0:160]
    level = 300.0 + 0.4 * xx - 0.2 * yy
    img = level + rng.normal(0.0, 6.0, level.shape)
    return img, level


def test_from_background2d_values_and_error_formula(gradient_frame):
    img = gradient_frame[0]
    bkg = Background2D(img, 32, filter_size=3)
    # a slope of 13 ADU per mesh, 60 times the meshes' noise: the filter
    # is propagated (the analytic formula: test_sky_bias.py, flat sky)
    with pytest.warns(AstropyUserWarning, match='median filter'):
        sky = SkyEstimate.from_background2d(bkg)
    bkg_mean = Background2D(img, 32, filter_size=1,
                            bkg_estimator=MeanBackground())
    mean = SkyEstimate.from_background2d(bkg_mean)
    assert mean.efficiency == 1.0
    # on this slope photutils' spline bends at the grid's edges (it mirrors
    # the grid): with the analytic error pixel pulls reached 41 (spread
    # 6.4); that offset, from the fitted sloped sky, leaves the level
    analytic = mean.std / np.sqrt(bkg_mean.n_pixels_map)
    # at least the mesh's own error at the mesh centres; between them
    # photutils' spline averages neighbouring meshes (lower, not below half)
    centres = np.ix_([15, 16, 47, 48, 79, 80, 111, 112],
                     [15, 16, 47, 48, 79, 80, 111, 112, 143, 144])
    assert np.all(mean.error_on_mean[centres] >= analytic[centres])
    assert np.all(mean.error_on_mean >= 0.5 * analytic)
    level = gradient_frame[1]
    before = (bkg_mean.background - level) / analytic
    after = (mean.value - level) / mean.error_on_mean
    assert np.max(np.abs(before)) > 20 and np.std(before) > 4
    # (one frame: neighbouring pixels share their meshes' noise)
    assert np.max(np.abs(after)) < 4 and 0.6 < np.std(after) < 1.2
    assert mean.meta['interpolation_offset'] > 20 * np.max(analytic)
    # photutils' rms of 3-sigma clipped pixels, corrected as from_image does
    clip = clip_factors(3.0)[0]
    assert sky.meta['rms_clip_factor'] == clip > 1.01
    assert sky.meta['n_excluded_meshes'] == 0
    assert 1000 < np.min(bkg_mean.n_pixels_map) <= 1024  # a few clipped
    assert sky.is_map and sky.is_global and sky.shape == img.shape
    assert not sky.isscalar  # a map is not one level
    # photutils' level less the filter's and spline's offset from the
    # fitted sloped sky; its rms less the slope's spread over a mesh
    assert sky.meta['slope_fits']
    assert 0 < np.max(np.abs(sky.value - bkg.background)) <= (
        sky.meta['slope_offset'] + 1e-9)
    spread = sky.meta['slope_spread_rms']
    assert spread == pytest.approx(math.hypot(0.4, 0.2) * math.sqrt(
        (32 ** 2 - 1) / 12.0), rel=0.05)
    assert np.all(sky.std <= clip * bkg.background_rms)
    np.testing.assert_allclose(sky.std ** 2, (clip * bkg.background_rms) ** 2
                               - spread ** 2, rtol=0.05)
    k = BACKGROUND2D_EFFICIENCY['SExtractorBackground']
    assert k == pytest.approx(math.sqrt(2.5 ** 2 * math.pi / 2 - 7.5 + 2.25))
    assert sky.efficiency == k
    # no noise gain from the filter (the middle mesh's level), and at
    # the corners half a mesh step along x and along y: (0.4 + 0.2) * 16
    unfiltered = (k * clip * bkg.background_rms / np.sqrt(bkg.n_pixels_map))
    # between mesh centres the spline's bend towards the flattened edge
    # meshes (4 x 5 meshes: it reaches the interior) was added to the
    # error (1.1 to 1.7 times this); it now leaves the level instead. At
    # the interior mesh centres the error is the middle mesh's; midway
    # between four centres the spline averages them (0.65 of it)
    ratio = sky.error_on_mean / unfiltered
    centres = np.ix_([47, 48, 79, 80], [47, 48, 79, 80, 111, 112])
    midway = np.ix_([63, 64], [63, 64, 95, 96])
    assert 0.9 < np.median(ratio[centres]) < 1.1
    assert 0.55 < np.median(ratio[midway]) < 0.75
    pulls = (sky.value - gradient_frame[1]) / sky.error_on_mean
    assert 0.7 < np.std(pulls) < 1.3 and np.max(np.abs(pulls)) < 5
    assert sky.meta['filter_error'] == pytest.approx(0.6 * 16, rel=0.1)
    with pytest.raises(TypeError, match='no single level'):
        sky.at(0)
    with pytest.raises(TypeError, match='bkg'):
        SkyEstimate.from_background2d(img)


@pytest.mark.parametrize('estimator, filter_size', [
    (MedianBackground(), 1), (SExtractorBackground(), 1),
    (SExtractorBackground(), 3)])
def test_background2d_error_on_mean_matches_scatter(estimator, filter_size):
    """At interior mesh centres, the documented approximation is within 15%
    of the scatter of the Background2D level over noise realisations."""
    rng = np.random.default_rng(5)
    levels, errors = [], None
    centres = np.ix_([47, 79, 111], [47, 79, 111])  # interior mesh centres
    for _ in range(80):
        img = rng.normal(100.0, 10.0, (160, 160))
        bkg = Background2D(img, 32, filter_size=filter_size,
                           bkg_estimator=estimator)
        with warnings.catch_warnings():
            # Gaussian noise: no Poisson bias for the unknown gain to leave
            warnings.filterwarnings('ignore', 'gain=None',
                                    AstropyUserWarning)
            sky = SkyEstimate.from_background2d(bkg)
        levels.append(sky.value[centres])
        errors = sky.error_on_mean[centres] if errors is None else errors
    ratio = np.mean(np.std(levels, axis=0)) / np.mean(errors)
    assert ratio == pytest.approx(1.0, abs=0.15)


def test_measure_with_a_map_is_numpy_on_the_same_pixels(gradient_frame):
    img, level = gradient_frame
    rms = np.full(img.shape, 6.0)
    sky = SkyEstimate.from_maps(level, rms, n_pix=1024)
    assert sky.error_on_mean == pytest.approx(6.0 / 32)
    box = BoxAperture.from_slices(np.s_[40:61, 70:91])
    res = measure(img, box, sky, gain=2.0)
    cut = img[40:61, 70:91] - level[40:61, 70:91]
    assert res.flux == pytest.approx(cut.sum(), rel=1e-10)
    assert res.sky == pytest.approx(level[40:61, 70:91].mean(), rel=1e-12)
    t = res.budget.terms
    assert t['sky'] == pytest.approx(441 * 36.0, rel=1e-12)
    assert t['sky_mean'] == pytest.approx((441 * 6.0 / 32) ** 2, rel=1e-12)
    assert res.compare_numpy().meta['max_abs_rel_diff'] < 1e-10
    # a global level misses the gradient; the map does not
    with gradient_warning():
        flat = measure(img, box, SkyEstimate.from_image(img, method='mean',
                                                        mask_sources=False))
    assert abs(res.flux) < 3 * res.flux_err < abs(flat.flux)


def test_map_with_threshold_and_photometer(gradient_frame, rng):
    img, level = gradient_frame
    img = img.copy()
    img[50:53, 80:83] += 500.0
    sky = SkyEstimate.from_maps(level, np.full(img.shape, 6.0),
                                error_on_mean=0.1)
    box = BoxAperture.from_slices(np.s_[44:59, 74:89])
    res = measure(img, box, sky, threshold=SigmaThreshold(2.0, selection='pixel'))
    cut = img[44:59, 74:89] - level[44:59, 74:89]
    sel = cut > 12.0
    assert res.n_pix == sel.sum()
    assert res.flux == pytest.approx(cut[sel].sum(), rel=1e-10)
    assert res.budget.terms['sky'] == pytest.approx(sel.sum() * 36.0)
    assert res.budget.terms['sky_mean'] == pytest.approx(
        (sel.sum() * 0.1) ** 2)
    table = photometer(img, BoxAperture([(81, 51), (20, 100)], 15, 15), sky)
    assert table['aperture_sum'][0] == pytest.approx(
        (img[44:59, 74:89] - level[44:59, 74:89]).sum(), rel=1e-10)
    assert table['var_sky_mean'][1] == pytest.approx((225 * 0.1) ** 2)


def test_map_validation(gradient_frame):
    img, level = gradient_frame
    with pytest.raises(ValueError, match='rms shape'):
        SkyEstimate.from_maps(level, np.ones((5, 5)))
    with pytest.raises(ValueError, match='background must be a 2-D map'):
        SkyEstimate.from_maps(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match='std'):
        SkyEstimate.from_maps(level, -np.ones(level.shape))
    small = SkyEstimate.from_maps(level[:50], np.ones((50, 160)))
    assert small.error_on_mean == 0.0
    assert 'exact' in small.meta['error_on_mean_from']
    with pytest.raises(ValueError, match='sky map shape'):
        measure(img, BoxAperture((20, 20), 5, 5), small)
    with pytest.raises(TypeError, match='n_pix'):
        SkyEstimate([1.0, 2.0], [1.0, 1.0])
    q = SkyEstimate.from_maps(level * u.adu, np.ones(level.shape) * u.adu)
    assert q.unit == u.adu


def test_sextractor_maps_reproduce_flux_aper(sextractor_dir):
    """Source Extractor's own background and RMS maps through from_maps:
    a radius-5 circle reproduces FLUX_APER and (without the sky_mean term)
    FLUXERR_APER."""
    ref = sextractor_dir
    with warnings.catch_warnings():  # the frame's non-standard ESO header
        warnings.simplefilter('ignore', AstropyUserWarning)
        image, back, rms = (fits.getdata(ref / f'{name}.fits').astype(float)
                            for name in ('image', 'back', 'rms'))
    cat = Table.read(ref / 'image.cat', format='ascii.sextractor')
    cat = cat[cat['FLAGS'] == 0][:20]
    sky = SkyEstimate.from_maps(back, rms, n_pix=64 * 64,
                                efficiency=BACKGROUND2D_EFFICIENCY[
                                    'SExtractorBackground'])
    for row in cat:
        ap = CircularAperture((row['X_IMAGE'] - 1, row['Y_IMAGE'] - 1), 5.0)
        # Source Extractor adds w * sigma**2 for a pixel partly inside
        res = measure(image, ap, sky, sum_method='subpixel', subpixels=5,
                      budget=BudgetOptions(fractional_variance='linear'))
        assert res.flux == pytest.approx(row['FLUX_APER'], rel=1e-5)
        sky_only = math.sqrt(res.budget.terms['sky'])
        assert sky_only == pytest.approx(row['FLUXERR_APER'], rel=0.03)
        assert res.budget.terms['sky_mean'] > 0


# --- the sky-variance decomposition -------------------------------------------

def _blank_frame(sky, seed, *, dark=0.0):
    stars = Table({'x': [], 'y': [], 'flux': []})
    data, _, _ = simulate_frame((300, 300), sky, stars, gain=2.23,
                                read_noise=12.0, dark=dark, seed=seed)
    return data


def test_decomposition_matches_the_simulation():
    data = _blank_frame(1000.0, 1)
    ccd = CCDData(data, unit='adu', meta={'EGAIN': 2.23, 'RDNOISE': 12.0})
    sky = SkyEstimate.from_image(ccd, method='mean', mask_sources=False)
    res = measure(ccd, BoxAperture((149.5, 149.5), 20, 20), sky)
    dec = res.budget.decomposition
    assert dec['sky_photons'] == pytest.approx(400 * 1000.0 / 2.23, rel=2e-3)
    assert dec['read'] == pytest.approx(400 * (12.0 / 2.23) ** 2, rel=1e-12)
    sky_var = res.budget.terms['sky']
    assert sky_var == pytest.approx(400 * (1000 / 2.23 + (12 / 2.23) ** 2),
                                    rel=0.01)
    assert abs(dec['excess']) < 0.01 * sky_var  # nothing unmodelled
    # shown, never added
    assert res.budget.variance == pytest.approx(sum(res.budget.terms.values()))
    assert 'sky:excess' in list(res.budget.to_table()['term'])


def test_decomposition_with_dark_and_with_a_gradient():
    data = _blank_frame(800.0, 2, dark=300.0)
    sky = SkyEstimate.from_image(data, method='mean', mask_sources=False)
    box = BoxAperture((149.5, 149.5), 20, 20)  # 400 whole pixels
    plain = measure(data, box, sky, gain=2.23,
                    detector=DetectorParameters(read_noise=12.0))
    dark = measure(data, box, sky, gain=2.23,
                   detector=DetectorParameters(read_noise=12.0, dark=300.0))
    sky_var = plain.budget.terms['sky']
    # without the dark its Poisson noise shows up as excess
    assert plain.budget.decomposition['excess'] == pytest.approx(
        400 * 300.0 / 2.23, rel=0.05)
    assert dark.budget.decomposition['dark'] == pytest.approx(400 * 300 / 2.23)
    assert abs(dark.budget.decomposition['excess']) < 0.01 * sky_var
    assert dark.flux_err == plain.flux_err  # the decomposition adds nothing
    yy, xx = np.mgrid[0:300, 0:300]
    tilted = _blank_frame(800.0 + 0.3 * (xx - 150), 3)
    whole = SkyEstimate.from_image(tilted, method='mean', mask_sources=False)
    res = measure(tilted, box, whole, gain=2.23,
                  detector=DetectorParameters(read_noise=12.0))
    # a gradient inflates the measured sky scatter: positive excess
    assert res.budget.decomposition['excess'] > 0.5 * 400 * 0.3 ** 2 * 300 ** 2 / 12


def test_budget_decomposition_needs_gain():
    b = ErrorBudget.from_aperture(100.0, 10, 5.0, sky_level=50.0)
    assert b.decomposition == {}
    with pytest.raises(ValueError, match='read_noise'):
        ErrorBudget.from_aperture(100.0, 10, 5.0, read_noise=3.0)


def test_background2d_excluded_meshes_get_a_propagated_error():
    """Meshes photutils excluded (too many masked pixels) and filled by
    interpolation: their level error is propagated from the measured meshes
    (not taken from their own pixel counts), and the level scatters as
    reported over noise realisations."""
    rng = np.random.default_rng(11)
    levels, errors = [], []
    meshes = np.ones((8, 8), bool)
    meshes[:, 7] = False  # only the last column of meshes is measured
    # where the interpolation error dominates (some realisations) it is said
    with pytest.warns(AstropyUserWarning, match='interpolation error of the '
                      'excluded meshes'):
        for _ in range(40):
            img = rng.normal(100.0, 5.0, (128, 128))
            mask = (np.kron(meshes, np.ones((16, 16), bool))
                    & (rng.random(img.shape) < 0.2))
            bkg = Background2D(img, 16, mask=mask, filter_size=3)
            sky = SkyEstimate.from_background2d(bkg)
            centres = np.ix_(np.arange(8, 128, 16), np.arange(8, 128, 16))
            levels.append(sky.value[centres] - 100.0)
            errors.append(sky.error_on_mean[centres])
    assert sky.meta['n_excluded_meshes'] == 56
    assert '56 of 64 meshes' in sky.meta['n_mesh_note']
    pulls = np.array(levels) / np.array(errors)
    # the formula for measured meshes (filter gain, the excluded meshes'
    # own pixel counts) misjudges the interpolated levels
    naive = (BACKGROUND2D_EFFICIENCY['SExtractorBackground']
             * math.sqrt(math.pi / 18) * sky.std / np.sqrt(
                 bkg.n_pixels_map))[centres]
    naive_pulls = np.array(levels) / naive
    # interpolated meshes are as well calibrated as the measured column
    # (whose own approximation is good to about 15%)
    measured = np.std(pulls[:, :, 7])
    assert 0.8 < measured < 1.2
    assert np.std(pulls[:, :, :6]) / measured == pytest.approx(1.0, abs=0.1)
    assert np.std(naive_pulls[:, :, :6]) / measured < 0.85


def test_many_circular_annuli_equal_photutils(monkeypatch):
    """Hundreds of annuli in several chunks, some off the edges, some on
    the same rows: the pixels photutils' 'center' masks select."""
    from ccdphot_ext.background import annulus as annulus_module

    monkeypatch.setattr(annulus_module, 'CHUNK_PIXELS', 20000)
    rng = np.random.default_rng(7)
    img = rng.normal(300.0, 10.0, (200, 260))
    img[rng.integers(0, 200, 300), rng.integers(0, 260, 300)] += 500.0
    xy = np.column_stack([rng.uniform(-5, 265, 300),
                          rng.uniform(-5, 205, 300)])
    xy[:20, 1] = 100.0  # one row of centres
    ann = CircularAnnulus(xy, 4.3, 9.7)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_annulus(img, ann)
        stats = ApertureStats(img, ann, sum_method='center',
                              sigma_clip=SigmaClip(sigma=3.0, maxiters=10))
    # (a few annuli hold two hot pixels side by side with a noise pixel
    # above 3 std beside them, taken for a star and measured again
    # without them: the others are photutils')
    same = sky.meta['source_masked'] == 0
    assert same.sum() >= 290
    assert np.all(sky.meta['flags'][~same])
    np.testing.assert_allclose(sky.value[same], stats.mean[same],
                               rtol=1e-12)
    np.testing.assert_allclose((sky.std / sky.meta['std_factor'])[same],
                               stats.std[same], rtol=1e-12)
    np.testing.assert_array_equal(sky.n_pix[same],
                                  stats.sum_aper_area.value[same])
    assert np.all(sky.n_pix[~same] < stats.sum_aper_area.value[~same])
