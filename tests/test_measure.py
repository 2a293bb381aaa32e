"""measure(): sums and every budget term equal plain numpy on the same
pixels; flags; NDData/CCDData inputs; the notebook's steps on the sample."""

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import CCDData, NDData, StdDevUncertainty
from astropy.utils.exceptions import AstropyUserWarning
from expected_warnings import gradient_warning
from photutils.aperture import ApertureStats, CircularAperture

from ccdphot_ext import (
    FLAG_BAD_PIXELS,
    FLAG_EMPTY_THRESHOLD,
    FLAG_NONPOSITIVE_FLUX,
    FLAG_SATURATED,
    FLAG_TRUNCATED,
    NOTEBOOK_BOXES,
    BoxAperture,
    BudgetOptions,
    DetectorParameters,
    SigmaThreshold,
    SkyEstimate,
    measure,
    sample_truth,
)
from ccdphot_ext.datasets.sample import render_stars


@pytest.fixture
def truth_frame(rng):
    """Sky 200 ADU, sigma 8, one star of known flux at (30.2, 25.7)."""
    shape = (60, 70)
    star = render_stars(shape, [30.2], [25.7], [20000.0], sigma=1.5)
    noise = rng.normal(0, 8.0, shape)
    return 200.0 + star + noise, star, noise


def test_box_sum_and_terms_equal_numpy(truth_frame):
    img, star, noise = truth_frame
    sky = SkyEstimate.from_image(img, method='mean', mask_sources=False)
    res = measure(img, BoxAperture.from_slices(np.s_[15:36, 20:41]), sky,
                  gain=2.5)
    cut = img[15:36, 20:41] - img.mean()
    assert res.flux == pytest.approx(cut.sum(), rel=1e-10)
    assert res.n_pix == cut.size
    t = res.budget.terms
    assert t['sky'] == pytest.approx(cut.size * img.std() ** 2, rel=1e-10)
    assert t['source'] == pytest.approx(cut.sum() / 2.5, rel=1e-10)
    assert t['sky_mean'] == pytest.approx(
        cut.size ** 2 * img.std() ** 2 / img.size, rel=1e-10)
    assert res.flux_err == pytest.approx(
        math.sqrt(t['sky'] + t['source'] + t['sky_mean']), rel=1e-14)
    # the known truth: star flux in the box plus the noise and sky error
    expected = star[15:36, 20:41].sum() + noise[15:36, 20:41].sum() \
        + cut.size * (200.0 - img.mean())
    assert res.flux == pytest.approx(expected, rel=1e-10)
    assert res.flags == 0


def test_mask_sum_equals_numpy(truth_frame):
    img = truth_frame[0]
    sky = SkyEstimate.from_image(img, method='mean', mask_sources=False)
    box = BoxAperture.from_slices(np.s_[15:36, 20:41])
    res = measure(img, box, sky, gain=1.0,
                  threshold=SigmaThreshold(2.0, selection='pixel'),
                  budget=BudgetOptions(include_sky_mean=False))
    cut = img[15:36, 20:41] - img.mean()
    mask = cut > 2 * img.std()
    assert res.n_pix == mask.sum()
    assert res.flux == pytest.approx(cut[mask].sum(), rel=1e-10)
    # the notebook's masked error formula with gain 1
    assert res.flux_err == pytest.approx(
        (cut[mask].sum() + img.std() ** 2 * mask.sum()) ** 0.5, rel=1e-10)
    np.testing.assert_array_equal(res.weights > 0, mask)
    assert res.mask is res.weights  # the former name


def test_compare_numpy_reports_agreement(truth_frame):
    img = truth_frame[0]
    sky = SkyEstimate.from_image(img)
    res = measure(img, BoxAperture((30.0, 25.0), 9.4, 8.2), sky, gain=2.0)
    table = res.compare_numpy()
    assert set(table['quantity']) >= {'flux', 'n_pix', 'var_sky',
                                      'var_source', 'var_sky_mean',
                                      'flux_err'}
    assert table.meta['max_abs_rel_diff'] < 1e-10
    assert res.n_pix == pytest.approx(9.4 * 8.2, rel=1e-12)


def test_circle_equals_photutils(truth_frame):
    img = truth_frame[0]
    sky = SkyEstimate.from_image(img, method='median')
    ap = CircularAperture((30.2, 25.7), r=6.0)
    res = measure(img, ap, sky)
    stats = ApertureStats(img - sky.value, ap, sum_method='exact')
    assert res.flux == pytest.approx(stats.sum, rel=1e-10)
    assert res.n_pix == pytest.approx(math.pi * 36, rel=1e-10)


def test_nan_pixels_excluded_and_flagged(truth_frame):
    img = truth_frame[0].copy()
    img[20, 25] = np.nan
    img[21, 26] = np.inf
    sky = SkyEstimate.from_image(img[:10], method='mean', mask_sources=False)
    res = measure(img, BoxAperture.from_slices(np.s_[15:36, 20:41]), sky)
    cut = img[15:36, 20:41] - sky.value
    good = np.isfinite(cut)
    assert res.flags & FLAG_BAD_PIXELS
    assert res.n_pix == good.sum() == cut.size - 2
    assert res.flux == pytest.approx(cut[good].sum(), rel=1e-10)  # not scaled


def test_edge_truncation_flag(truth_frame):
    img = truth_frame[0]
    sky = SkyEstimate.from_image(img, method='mean', mask_sources=False)
    res = measure(img, BoxAperture((1.0, 30.0), 8, 8), sky)
    assert res.flags & FLAG_TRUNCATED
    assert res.n_pix == 8 * 5.5  # x spans -3 .. 5: 5.5 pixels in frame
    with pytest.raises(ValueError, match='off the frame'):
        measure(img, BoxAperture((-50.0, 30.0), 8, 8), sky)


def test_saturation_flag_from_argument_and_header(truth_frame):
    img = truth_frame[0]
    sky = SkyEstimate.from_image(img, method='mean', mask_sources=False)
    box = BoxAperture.from_slices(np.s_[15:36, 20:41])
    peak = img[15:36, 20:41].max()
    assert measure(img, box, sky, detector=DetectorParameters(
        saturation=peak)).flags & FLAG_SATURATED
    assert not measure(img, box, sky,
                       detector=DetectorParameters(saturation=peak + 1)).flags
    ccd = CCDData(img, unit='adu', meta={'SATURATE': peak})
    sky_c = SkyEstimate.from_image(ccd, method='mean', mask_sources=False)
    assert measure(ccd, box, sky_c).flags & FLAG_SATURATED


def test_nonpositive_and_empty_threshold_flags(rng):
    img = rng.normal(100, 5, (30, 30))
    sky = SkyEstimate(200.0, 5.0, 900)
    res = measure(img, BoxAperture((15, 15), 5, 5), sky)
    assert res.flags & FLAG_NONPOSITIVE_FLUX
    assert math.isnan(res.mag_err)
    empty = measure(img, BoxAperture((15, 15), 5, 5), sky,
                    threshold=SigmaThreshold(2.0))
    assert empty.flags & FLAG_EMPTY_THRESHOLD
    assert empty.n_pix == 0 and empty.flux == 0.0


def test_ccddata_gain_from_header_and_uncertainty_map(truth_frame):
    img = truth_frame[0]
    sigma = np.full(img.shape, 8.0)
    ccd = CCDData(img, unit='adu', uncertainty=StdDevUncertainty(sigma),
                  meta={'EGAIN': 2.23})
    sky = SkyEstimate.from_image(ccd, method='mean', mask_sources=False)
    box = BoxAperture.from_slices(np.s_[15:36, 20:41])
    res = measure(ccd, box, sky)
    cut = img[15:36, 20:41] - img.mean()
    assert res.budget.gain == 2.23
    assert res.budget.terms['source'] == pytest.approx(cut.sum() / 2.23)
    assert res.budget.terms['sky'] == pytest.approx(cut.size * 64.0)
    assert res.unit == u.adu
    # 'total' map: no separate source term
    tot = measure(ccd, box, sky,
                  budget=BudgetOptions(uncertainty_model='total'))
    assert 'source' not in tot.budget.terms
    assert tot.budget.terms['map'] == pytest.approx(cut.size * 64.0)


def test_missing_gain_is_not_silently_one(truth_frame):
    img = truth_frame[0]
    sky = SkyEstimate.from_image(img)
    res = measure(img, BoxAperture.from_slices(np.s_[15:36, 20:41]), sky)
    assert 'source' not in res.budget.terms
    assert any('no gain' in n for n in res.budget.notes)


def test_quantity_and_nddata_inputs(truth_frame):
    img = truth_frame[0]
    box = BoxAperture.from_slices(np.s_[15:36, 20:41])
    sky = SkyEstimate.from_image(img, method='mean', mask_sources=False)
    plain = measure(img, box, sky)
    q = measure(img * u.adu, box, SkyEstimate.from_image(
        img * u.adu, method='mean', mask_sources=False))
    nd = measure(NDData(img), box, sky)
    assert q.flux == plain.flux == nd.flux
    with pytest.raises(u.UnitsError, match='sky'):
        measure(img * u.electron, box,
                SkyEstimate.from_image(img * u.adu, method='mean', mask_sources=False))


@pytest.mark.parametrize('kwargs, exc, match', [
    ({'gain': 0}, ValueError, 'gain'),
    ({'gain': -2.0}, ValueError, 'gain'),
    ({'gain': 'x'}, TypeError, 'gain'),
    ({'threshold': 2.0}, TypeError, 'threshold'),
    ({'sum_method': 'sum'}, ValueError, 'sum_method'),
    ({'subpixels': 2.5}, ValueError, 'subpixels'),
    ({'budget': {'uncertainty_model': 'total'}}, TypeError, 'budget'),
    ({'detector': {'gain': 2.0}}, TypeError, 'detector'),
    ({'gain': 2.0, 'detector': DetectorParameters(gain=3.0)}, ValueError,
     r'gain=2.0 and detector=DetectorParameters\(gain=3.0\)'),
    ({'method': 'exact'}, TypeError, 'method'),
    ({'saturation': 10.0}, TypeError, 'saturation'),
])
def test_bad_arguments(truth_frame, kwargs, exc, match):
    img = truth_frame[0]
    sky = SkyEstimate.from_image(img)
    with pytest.raises(exc, match=match):
        measure(img, BoxAperture((20, 20), 5, 5), sky, **kwargs)


def test_bad_positional_arguments(truth_frame):
    img = truth_frame[0]
    sky = SkyEstimate.from_image(img)
    box = BoxAperture((20, 20), 5, 5)
    with pytest.raises(TypeError, match='aperture'):
        measure(img, (20, 20), sky)
    with pytest.raises(TypeError, match='sky'):
        measure(img, box, 100.0)
    with pytest.raises(ValueError, match='one aperture position'):
        measure(img, BoxAperture([(5, 5), (9, 9)], 3, 3), sky)
    with pytest.raises(ValueError, match='2-D'):
        measure(img[None], box, sky)


# --- the notebook on the bundled sample frame --------------------------------

def test_notebook_steps_on_sample(sample_ccd):
    image = sample_ccd.data
    sky = SkyEstimate.from_image(image, method='mean', mask_sources=False)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    cutout = image[158:178, 492:512] - image.mean()
    sky_stddev = image.std()
    with gradient_warning():
        res = measure(image, box, sky, gain=1.0,
                      budget=BudgetOptions(include_sky_mean=False))
    assert res.flux == pytest.approx(cutout.sum(), rel=1e-12)
    assert res.flux_err == pytest.approx(
        ((cutout + sky_stddev ** 2).sum()) ** 0.5, rel=1e-12)
    with gradient_warning():
        masked = measure(image, box, sky, gain=1.0,
                         budget=BudgetOptions(include_sky_mean=False),
                         threshold=SigmaThreshold(2.0, selection='pixel'))
    mask = cutout > 2 * sky_stddev
    assert masked.flux == pytest.approx(cutout[mask].sum(), rel=1e-12)
    assert masked.flux_err == pytest.approx(
        (cutout[mask].sum() + sky_stddev ** 2 * mask.sum()) ** 0.5, rel=1e-12)
    assert masked.snr > res.snr  # the mask improves the SNR
    # with a local sky the box recovers the true flux within its error; the
    # 2-sigma mask misses only the faint wings
    truth = sample_truth()
    star = truth[truth['name'] == 'star1'][0]
    true_in_box = render_stars(image.shape, [star['x']], [star['y']],
                               [star['flux']], sigma=1.8,
                               trail=(4.0, 0.5))[158:178, 492:512].sum()
    with pytest.warns(AstropyUserWarning, match='excluded'):
        local_sky = SkyEstimate.from_image(image[130:210, 460:545],
                                           mask=_central_mask(), method='mean',
                                           mask_sources=False)
    local = measure(image, box, local_sky, gain=2.23)
    assert abs(local.flux - true_in_box) < 3 * local.flux_err
    lost = measure(image, box, local_sky, gain=2.23,
                   threshold=SigmaThreshold(2.0))
    assert 0.97 * true_in_box < lost.flux < true_in_box


def _central_mask():
    mask = np.zeros((80, 85), bool)
    mask[20:56, 22:62] = True  # the star's box and a margin
    return mask


def test_star_boxes_summed_after_sky_subtraction(sample_ccd):
    """The notebook summed stars 3 and 4 before subtracting the sky."""
    sky = SkyEstimate.from_image(sample_ccd, method='mean', mask_sources=False)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star3'])
    with gradient_warning():
        res = measure(sample_ccd, box, sky, gain=2.23)
    raw_sum = sample_ccd.data[220:250, 460:500].sum()
    assert res.flux < 0.05 * raw_sum  # mostly sky in the raw sum
    assert res.flux == pytest.approx(raw_sum - 1200 * sky.value, rel=1e-10)


def test_residual_background_flag(sample_ccd):
    """The notebook's systematics: a gradient under star 1 left by the
    global sky is flagged; a local sky clears it."""
    from ccdphot_ext import FLAG_RESIDUAL_BACKGROUND
    from ccdphot_ext.photometry.residual import residual_is_significant

    image = sample_ccd.data
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    thr = SigmaThreshold(2.0)
    global_sky = SkyEstimate.from_image(image, method='mean', mask_sources=False)
    with gradient_warning():
        res = measure(image, box, global_sky, threshold=thr)
    assert res.flags & FLAG_RESIDUAL_BACKGROUND
    local = SkyEstimate.from_image(image[140:200, 470:540], method='median')
    assert not measure(image, box, local, threshold=thr).flags \
        & FLAG_RESIDUAL_BACKGROUND
    # the notebook's own numbers: 6033.0 ADU over 300 pixels, sigma 53.1
    assert residual_is_significant(6033.0, 300, 53.139015422503746, 0.0)
    assert not residual_is_significant(600.0, 300, 53.139015422503746, 0.0)


def test_residual_rule_one_row_and_many_agree():
    from ccdphot_ext.photometry.residual import (
        residual_error,
        residual_is_significant,
    )
    rng = np.random.default_rng(4)
    rest = rng.normal(0, 800, 500)
    n_rest = rng.uniform(0, 400, 500)
    n_rest[::50] = 0.0
    std, error_on_mean = rng.uniform(1, 60, 500), rng.uniform(0, 2, 500)
    many = residual_is_significant(rest, n_rest, std, error_on_mean)
    one = [residual_is_significant(*args) for args in zip(
        rest.tolist(), n_rest.tolist(), std.tolist(), error_on_mean.tolist(),
        strict=True)]
    assert many.tolist() == one
    assert not many[::50].any()  # no pixels: never significant
    err = residual_error(n_rest, std, error_on_mean)
    np.testing.assert_allclose(err, np.sqrt(n_rest * std ** 2
                                            + n_rest ** 2 * error_on_mean ** 2),
                               rtol=1e-15)
    assert many.tolist() == ((np.abs(rest) > 5 * err) & (n_rest > 0)).tolist()
    assert not residual_is_significant(6033.0, 300, 53.139, 0.0, n_sigma=7.0)
    assert residual_is_significant(6033.0, 300, 53.139, 0.0, n_sigma=6.0)
