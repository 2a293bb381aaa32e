"""Systematics report: residual background outside the mask (the
notebook's arithmetic), mask flux loss, curve of growth and aperture
correction, frame gradient check and flag 32."""

import math

import numpy as np
import pytest
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from expected_warnings import gradient_warning
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    EllipticalAperture,
    RectangularAnnulus,
)

from ccdphot_ext import (
    FLAG_RESIDUAL_BACKGROUND,
    FLAG_SKY_ANNULUS,
    NOTEBOOK_BOXES,
    BoxAperture,
    SigmaThreshold,
    SkyEstimate,
    measure,
    sample_frame,
)
from ccdphot_ext.analysis.systematics import (
    gradient_check,
    growth_curve,
    residual_background,
    systematics_report,
)
from ccdphot_ext.datasets.sample import render_stars, simulate_frame
from ccdphot_ext.photometry.residual import residual_is_significant

NB_SKY_STD = 53.139015422503746


def test_notebook_residual_background_arithmetic():
    """41349.2 - 35316.2 = 6033.0 over 300 pixels, mean 20.1; 14.6% lost."""
    r = residual_background(41349.20439525999, 35316.2, 400, 100, NB_SKY_STD)
    assert r.sum == pytest.approx(6033.00439525999, rel=1e-12)
    assert r.n_pix == 300
    assert round(r.mean, 1) == 20.1
    assert round(100 * r.lost_fraction, 1) == 14.6
    assert r.error == pytest.approx(math.sqrt(300) * NB_SKY_STD, rel=1e-12)
    assert r.significance == pytest.approx(6.5547, abs=1e-3)
    assert r.significant
    # the same rule as measure's flag 32
    assert r.significant == residual_is_significant(r.sum, 300, NB_SKY_STD,
                                                    0.0)
    small = residual_background(41349.2, 40749.2, 400, 100, NB_SKY_STD)
    assert not small.significant
    # the sky level's own error widens the residual's error
    wide = residual_background(41349.2, 35316.2, 400, 100, NB_SKY_STD,
                               sky_error_on_mean=5.0)
    assert wide.error == pytest.approx(math.hypot(math.sqrt(300) * NB_SKY_STD,
                                                  1500.0))


@pytest.mark.parametrize('kwargs, match', [
    ({'box_n_pix': 0}, 'box_n_pix'),
    ({'mask_n_pix': 500}, 'mask_n_pix'),
    ({'sky_std': -1}, 'sky_std'),
    ({'box_sum': math.nan}, 'box_sum'),
])
def test_residual_background_validation(kwargs, match):
    args = {'box_sum': 100.0, 'mask_sum': 50.0, 'box_n_pix': 400,
            'mask_n_pix': 100, 'sky_std': 5.0} | kwargs
    with pytest.raises(ValueError, match=match):
        residual_background(**args)


def test_report_on_sample_equals_numpy(sample_ccd):
    image = sample_ccd.data
    sky = SkyEstimate.from_image(image, method='mean', mask_sources=False)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    with gradient_warning() as record:
        rep = systematics_report(image, box, sky, gain=2.23)
    # said once, though each of its ten measurements sees it
    assert len(record) == 1
    cutout = image[158:178, 492:512] - image.mean()
    mask = cutout > 2 * image.std()
    r = rep.residual
    assert r.n_pix == (~mask).sum()
    assert r.sum == pytest.approx(cutout[~mask].sum(), rel=1e-9)
    assert r.mean == pytest.approx(cutout[~mask].mean(), rel=1e-9)
    assert r.lost_fraction == pytest.approx(
        1 - cutout[mask].sum() / cutout.sum(), rel=1e-9)
    assert r.significance > 5
    # flag 32: the same rule as measure's threshold measurement
    with gradient_warning():
        masked = measure(image, box, sky,
                         threshold=SigmaThreshold(2.0, selection='pixel'))
    assert masked.flags & FLAG_RESIDUAL_BACKGROUND
    assert rep.flags & FLAG_RESIDUAL_BACKGROUND
    table = rep.to_table()
    assert table['value'][list(table['quantity']).index('residual_sum')] \
        == pytest.approx(r.sum)
    assert 'flags=32' in repr(rep)


def test_local_sky_clears_the_residual_and_flattens_the_curve(sample_ccd):
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    ann = RectangularAnnulus(box.positions, 40, 60, 60)
    local = SkyEstimate.from_annulus(sample_ccd, ann)
    # the curve's largest boxes reach into the annulus: flagged
    with pytest.warns(AstropyUserWarning, match='1 of 1 sky annuli reach '
                      'into their own aperture'):
        rep = systematics_report(sample_ccd, box, local, gain=2.23)
    curve = rep.curve_of_growth
    assert (curve['flags'] & FLAG_SKY_ANNULUS).astype(bool).tolist() == [
        s > 2.0 for s in curve['scale']]
    assert rep.gradient is None  # a local sky: the frame check is moot
    assert not rep.flags
    assert abs(rep.residual.significance) < 3
    assert rep.lost_fraction < 0.03
    # the curve of growth is flat beyond the box: correction 1 within error
    assert abs(rep.aperture_correction - 1) < 3 * rep.aperture_correction_err
    with gradient_warning():
        glob = systematics_report(sample_ccd, box,
                                  SkyEstimate.from_image(sample_ccd, method='mean',
                                                         mask_sources=False),
                                  gain=2.23)
    assert glob.aperture_correction > 1.5  # the global sky's residual grows


def test_growth_curve_rows_equal_measure(sample_ccd):
    sky = SkyEstimate.from_image(sample_ccd)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star2'])
    with gradient_warning():
        curve = growth_curve(sample_ccd, box, sky, scales=[1.5, 0.5, 1.0])
    assert list(curve['scale']) == [0.5, 1.0, 1.5]
    assert list(curve['size']) == [10.0, 20.0, 30.0]
    with gradient_warning():
        one = measure(sample_ccd, BoxAperture(box.positions, 30, 30), sky)
    assert curve['flux'][2] == pytest.approx(one.flux, rel=1e-12)
    assert curve['flux_err'][2] == pytest.approx(one.flux_err, rel=1e-12)
    assert curve['var_sky_mean'][2] == pytest.approx(
        one.budget.terms['sky_mean'], rel=1e-12)
    with gradient_warning():
        circ = growth_curve(sample_ccd, CircularAperture((334.3, 249.6), 6), sky,
                            scales=[1, 2])
    assert list(circ['size']) == [6.0, 12.0]
    assert circ['n_pix'][1] == pytest.approx(math.pi * 144, rel=1e-9)
    with gradient_warning():
        ell = growth_curve(sample_ccd, EllipticalAperture((334.3, 249.6), 6, 4),
                           sky, scales=[2])
    assert ell['n_pix'][0] == pytest.approx(math.pi * 12 * 8, rel=1e-9)
    with pytest.raises(ValueError, match='scales'):
        growth_curve(sample_ccd, box, sky, scales=[0, 1])
    with pytest.raises(TypeError, match='curve of'):
        growth_curve(sample_ccd, CircularAnnulus((30, 30), 3, 5), sky)


def test_aperture_correction_against_truth():
    """A bright isolated star on a flat sky: the correction from a small box
    to a large one is the true flux ratio within its error."""
    stars = Table({'x': [60.3], 'y': [59.8], 'flux': [4.0e5]})
    data, _, model = simulate_frame((120, 120), 150.0, stars, gain=2.23,
                                    read_noise=8.0, psf_sigma=2.0, seed=8)
    star = model - 150.0
    box = BoxAperture((60, 60), 7, 7)
    ann = CircularAnnulus((60, 60), 35, 50)
    sky = SkyEstimate.from_annulus(data, ann)
    rep = systematics_report(data, box, sky, gain=2.23, gradient=False,
                             scales=[1.0, 2.0, 4.0])
    true_ratio = star[41:80, 41:80].sum() / star[57:64, 57:64].sum()
    assert true_ratio > 1.15
    assert rep.aperture_correction == pytest.approx(
        true_ratio, abs=3 * rep.aperture_correction_err)
    assert rep.aperture_correction_err < 0.01
    # every pixel of the small box on a bright star is above 2 sigma
    assert rep.residual.n_pix == 0 and rep.lost_fraction == 0
    assert not rep.residual.significant and not rep.flags


def test_gradient_check_recovers_the_sample_gradient(sample_ccd):
    g = gradient_check(sample_ccd)
    assert g.gx == pytest.approx(0.15, abs=3 * g.gx_err + 1e-3)
    assert g.gy == pytest.approx(-0.05, abs=3 * g.gy_err + 1e-3)
    assert g.gradient_significance > 50
    ny, nx = sample_ccd.shape
    assert g.sky_range == pytest.approx(abs(g.gx) * (nx - 1)
                                        + abs(g.gy) * (ny - 1), rel=1e-12)
    # background noise of the sample, sqrt((sky + dark)/g + (RN/g)**2)
    assert g.pixel_noise == pytest.approx(
        math.sqrt((1035 + 1900) / 2.23 + (12 / 2.23) ** 2), rel=0.03)
    assert g.max_safe_n_pix == pytest.approx(
        (5 * g.pixel_noise / g.max_offset) ** 2, rel=1e-12)
    assert g.is_unsafe(400) and not g.is_unsafe(g.max_safe_n_pix * 0.9)
    total, sig = g.residual_at(501.5, 167.5, 400)
    assert total == pytest.approx(400 * (g.plane(501.5, 167.5)
                                         - g.global_level), rel=1e-12)
    assert sig > 5
    assert 'GradientCheck' in repr(g)


def test_gradient_check_on_a_flat_sky_is_safe(rng):
    stars = Table({'x': rng.uniform(10, 290, 15), 'y': rng.uniform(10, 190, 15),
                   'flux': np.full(15, 2e4)})
    data, _, _ = simulate_frame((200, 300), 800.0, stars, gain=2.23,
                                read_noise=10.0, seed=rng)
    g = gradient_check(data, box_size=25)
    assert g.gradient_significance < 4
    assert g.n_mesh == 8 * 12 and g.n_used >= g.n_mesh - 15
    assert not g.is_unsafe(400)
    assert g.max_safe_n_pix > 400


def test_gradient_check_validation(sample_ccd):
    with pytest.raises(ValueError, match='box_size'):
        gradient_check(sample_ccd, box_size=400)
    with pytest.raises(ValueError, match='box_size'):
        gradient_check(sample_ccd, box_size=0)
    with pytest.raises(TypeError, match='sky'):
        gradient_check(sample_ccd, sky=SkyEstimate([1.0, 2.0], [1, 1],
                                                   [10, 10]))


def test_report_validation(sample_ccd):
    sky = SkyEstimate.from_image(sample_ccd)
    with pytest.raises(TypeError, match='aperture'):
        systematics_report(sample_ccd, (10, 10), sky)
    with pytest.raises(ValueError, match='n_sigma'):
        systematics_report(sample_ccd, BoxAperture((30, 30), 5, 5), sky,
                           n_sigma=0)
    with gradient_warning():
        rep = systematics_report(sample_ccd, BoxAperture((30, 30), 5, 5), sky,
                                 scales=None, gradient=False)
    assert rep.curve_of_growth is None and math.isnan(rep.aperture_correction)


def test_mask_loss_matches_truth_with_a_local_sky(sample_ccd):
    """Star 2: the 2-sigma mask loses the star's faint wings, no more."""
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star2'])
    local = SkyEstimate.from_annulus(
        sample_ccd, RectangularAnnulus(box.positions, 40, 60, 60))
    rep = systematics_report(sample_ccd, box, local, gain=2.23, scales=None)
    truth = render_stars(sample_ccd.shape, [334.3], [249.6], [41000.0],
                         sigma=1.8, trail=(4.0, 0.5))
    mask = rep.masked.mask > 0
    cut = truth[rep.masked.slices]
    true_lost = 1 - cut[mask].sum() / cut.sum()
    err = rep.residual.error / rep.box.flux
    assert rep.lost_fraction == pytest.approx(true_lost, abs=3 * err)


def test_unreleased_names_are_refused(sample_ccd):
    """``mesh`` and ``nsigma`` (never released) are not accepted: box_size
    and n_sigma are the only names."""
    g = gradient_check(sample_ccd, box_size=40, n_sigma=4.0)
    assert (g.box_size, g.n_sigma) == (40, 4.0)
    assert not hasattr(g, 'mesh') and not hasattr(g, 'nsigma')
    with pytest.raises(TypeError, match='mesh'):
        gradient_check(sample_ccd, mesh=40)
    with pytest.raises(TypeError, match='nsigma'):
        residual_background(41349.2, 35316.2, 400, 100, 53.139, nsigma=7.0)
    with pytest.raises(TypeError, match='nsigma'):
        residual_is_significant(6033.0, 300, 53.139, 0.0, nsigma=7.0)
    r = residual_background(41349.2, 35316.2, 400, 100, 53.139, n_sigma=7.0)
    assert r.significance == pytest.approx(6.55, abs=0.01)
    assert not r.significant  # 6.6 sigma is below 7


def test_report_gradient_box_size_is_the_gradient_checks(sample_ccd):
    """systematics_report's gradient_box_size (not box_size: the aperture
    may be a box) is the mesh of its gradient_check."""
    sky = SkyEstimate.from_image(sample_ccd)
    box = BoxAperture.from_slices(np.s_[158:178, 492:512])
    with gradient_warning():
        rep = systematics_report(sample_ccd, box, sky, gain=2.23,
                                 scales=None, gradient_box_size=40)
    g = gradient_check(sample_ccd, sky=sky, box_size=40)
    assert rep.gradient.box_size == 40
    assert (rep.gradient.gx, rep.gradient.gy) == (g.gx, g.gy)
    with pytest.raises(TypeError, match='box_size'):
        systematics_report(sample_ccd, box, sky, box_size=40)


def test_gradient_check_reads_the_whole_frame_sky_map():
    """map_offset is the coarse background map the whole-frame sky keeps
    (the one the global-sky warning uses); on the sample's linear gradient
    it follows the fitted plane, and without a map it is NaN."""
    ccd = sample_frame()
    sky = SkyEstimate.from_image(ccd)
    g = gradient_check(ccd, sky=sky)
    assert g.background_variation is sky.background_variation
    xs, ys = np.array([100.0, 650.0, 300.0]), np.array([100.0, 450.0, 400.0])
    np.testing.assert_array_equal(g.map_offset(xs, ys),
                                  sky.background_variation(xs, ys))
    offsets = g.map_offset(xs, ys) - g.map_offset(383.0, 254.5)
    planes = g.plane(xs, ys) - g.plane(383.0, 254.5)
    np.testing.assert_allclose(offsets, planes, atol=0.1 * np.ptp(planes))
    assert isinstance(g.map_offset(10.0, 10.0), float)
    flat = SkyEstimate(float(sky.value), float(sky.std), int(sky.n_pix))
    assert np.isnan(gradient_check(ccd, sky=flat).map_offset(10.0, 10.0))
