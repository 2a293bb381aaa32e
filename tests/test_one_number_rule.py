# Licensed under a 3-clause BSD style license - see LICENSE
"""
The one number rule at the edges of the floats: subnormal and huge scales,
counts beyond 64 bits or the frame, indices and shapes of the wrong kind are
refused naming the argument (found by fuzzing every public callable).
"""

import math
import re

import numpy as np
import pytest

from ccdphot_ext import (
    ApertureNoise,
    BoxAperture,
    ErrorBudget,
    SkyEstimate,
    aperture_weights,
    budget_terms,
    clip_factors,
    find_stars,
    optimal_extraction,
    psf_stamp,
    render_stars,
)
from ccdphot_ext.utils.numbers import (
    MAX_COUNT,
    SCALE_RANGE,
    check_index,
    check_shape,
    positive_integer,
    positive_scalar,
)

SUBNORMAL = 1e-320
INT64_MAX = 2 ** 63 - 1
SCALE = r'must be between .* \(its square must be a normal float\)'


@pytest.fixture(scope='module')
def frame():
    img = np.random.default_rng(1).normal(100.0, 5.0, (48, 56))
    img += render_stars(img.shape, [20.3], [24.6], [8000.0], sigma=1.6)
    return img, SkyEstimate(100.0, 5.0, 4000)


# -- the rule itself ---------------------------------------------------------
@pytest.mark.parametrize('value', [SUBNORMAL, 5e-324, 1e-200, 1e160, 1e308])
def test_scales_whose_square_is_not_a_normal_float_are_refused(value):
    with pytest.raises(ValueError, match='^gain ' + SCALE):
        positive_scalar(value, 'gain')


@pytest.mark.parametrize('value', [1e160, 1e308])
def test_amounts_that_may_be_zero_are_refused_only_when_huge(value):
    with pytest.raises(ValueError, match='^dark ' + SCALE):
        positive_scalar(value, 'dark', allow_zero=True)


@pytest.mark.parametrize('value', [SUBNORMAL, 1e-200])
def test_amounts_that_may_be_zero_take_tiny_values_as_they_are(value):
    # a measured sky noise of 1e-200 (data of tiny units) is measured and
    # flagged where its square underflows, as 0 is
    assert positive_scalar(value, 'sky_std', allow_zero=True) == value


def test_the_scale_range_ends_are_accepted_and_squares_stay_normal():
    low, high = SCALE_RANGE
    assert positive_scalar(low, 'gain') == low
    assert positive_scalar(high, 'gain') == high
    assert low ** 2 >= np.finfo(float).tiny and math.isfinite(high ** 2)
    assert math.isfinite((1 / low) ** 2)


def test_negative_zero_is_zero_or_refused():
    out = positive_scalar(-0.0, 'dark', allow_zero=True)
    assert out == 0.0 and math.copysign(1.0, out) == 1.0
    with pytest.raises(ValueError, match='^gain must be positive, got 0.0'):
        positive_scalar(-0.0, 'gain')


@pytest.mark.parametrize('value', [2 ** 31, INT64_MAX, 2 ** 63, 2 ** 64 + 1,
                                   1e308, np.uint64(2 ** 63)])
def test_counts_beyond_the_bound_are_refused_exactly(value):
    with pytest.raises(ValueError, match=rf'^n must be at most {MAX_COUNT}'):
        positive_integer(value, 'n')


def test_counts_bounded_by_the_caller_say_why():
    assert positive_integer(MAX_COUNT, 'n') == MAX_COUNT
    with pytest.raises(ValueError, match=re.escape(
            'n must be at most 10 (the pixels), got 11')):
        positive_integer(11, 'n', maximum=10, bound_note='the pixels')


@pytest.mark.parametrize('value, error, words', [
    (1.0, TypeError, 'index must be an integer, got 1.0'),
    (True, TypeError, 'index must be an integer, got True'),
    ('1', TypeError, "index must be an integer, got '1'"),
    (None, TypeError, 'index must be an integer, got None'),
    (3, IndexError, 'index 3 is out of range for 3 item(s)'),
    (-4, ValueError, 'index -4 is out of range for 3 item(s)'),
    (2 ** 63, ValueError, 'index 9223372036854775808 is out of range'),
])
def test_indices(value, error, words):
    with pytest.raises(error, match=re.escape(words)):
        check_index(value, 'index', 3)


def test_index_values():
    assert [check_index(i, 'index', 3) for i in (0, 2, -1, np.int64(1))] == [
        0, 2, 2, 1]


@pytest.mark.parametrize('value, error', [
    (64, TypeError), ('64', TypeError), (None, TypeError),
    ((64,), ValueError), ((1, 2, 3), ValueError), ((64, 0), ValueError),
    ((64, 2.5), ValueError), ((64, np.nan), ValueError),
    ((64, 2 ** 63), ValueError), ((True, 5), TypeError)])
def test_shapes(value, error):
    with pytest.raises(error, match='^shape '):
        check_shape(value)


# -- the call sites that raised raw errors -----------------------------------
@pytest.mark.parametrize('sigma', [SUBNORMAL, -0.0, 1e308])
def test_clip_factors_refuses_extreme_sigma(sigma):
    with pytest.raises(ValueError, match='^sigma '):
        clip_factors(sigma)


@pytest.mark.parametrize('sigma', ['3', True, None, [1, 2]])
def test_clip_factors_refuses_non_numbers(sigma):
    with pytest.raises(TypeError, match='^sigma '):
        clip_factors(sigma)


@pytest.mark.parametrize('sigma', [1e-2, 1.0001e-3, 0.9999e-3, 1e-5, 1e-9,
                                   1e-150, SCALE_RANGE[0]])
def test_clip_factors_of_small_sigma_are_finite_and_right(sigma):
    # p / (p - tail) = P(1/2, s^2/2) / P(3/2, s^2/2), regularised lower
    # incomplete gammas (scipy, an independent route to the same ratio)
    from scipy.special import gammainc

    std_factor, efficiency = clip_factors(sigma)
    assert efficiency == pytest.approx(std_factor, rel=1e-9)
    assert math.isfinite(std_factor)
    x = sigma * sigma / 2
    if x > 1e-300:
        truth = math.sqrt(gammainc(0.5, x) / gammainc(1.5, x))
        assert std_factor == pytest.approx(truth, rel=1e-7)
    else:
        assert std_factor == pytest.approx(math.sqrt(3.0) / sigma, rel=1e-12)


def test_clip_factors_keep_their_values_at_usual_sigma():
    assert clip_factors(3.0) == (1.013604197642207, 1.013604197642207)


@pytest.mark.parametrize('kwargs, words', [
    ({'sigma': SUBNORMAL}, 'sigma'), ({'sigma': 1e308}, 'sigma'),
    ({'gain': SUBNORMAL}, 'gain'), ({'gain': 1e308}, 'gain'),
    ({'maxiters': 2 ** 63}, 'maxiters'),
])
def test_annulus_and_image_skies_refuse_extremes(frame, kwargs, words):
    from photutils.aperture import CircularAnnulus

    img, _ = frame
    with pytest.raises(ValueError, match=f'^{words} '):
        SkyEstimate.from_annulus(img, CircularAnnulus((20, 24), 6, 10),
                                 **kwargs)
    with pytest.raises(ValueError, match=f'^{words} '):
        SkyEstimate.from_image(img, **kwargs)


@pytest.mark.parametrize('kwargs, words', [
    ({'box_side': 1e308}, 'box_side must be at most'),
    ({'box_side': 2 ** 63}, 'box_side must be at most'),
    ({'box_side': 113}, 'box_side must be at most 112 (twice the longer'),
    ({'box_scale': 1e308}, 'box_scale must be between'),
    ({'box_scale': SUBNORMAL}, 'box_scale must be between'),
    ({'box_scale': 1e9}, 'box_scale 1e+09 times the PSF FWHM'),
])
def test_find_stars_box_sizes(frame, kwargs, words):
    img, sky = frame
    with pytest.raises(ValueError, match='^' + re.escape(words)):
        find_stars(img, sky, **kwargs)


def test_find_stars_box_side_at_the_bound_still_works(frame):
    img, sky = frame
    stars = find_stars(img, sky, box_side=112)
    assert stars.meta['box_side'] == 112 and len(stars) == 1


@pytest.mark.parametrize('args, kwargs, words', [
    ((1e308,), {}, 'psf (Gaussian sigma) must be between'),
    ((SUBNORMAL,), {}, 'psf (Gaussian sigma) must be between'),
    ((57.0,), {}, 'psf (Gaussian sigma) 57 pixels is more than the frame'),
    ((1.6,), {'gain': SUBNORMAL}, 'gain must be between'),
    ((1.6,), {'gain': 1e308}, 'gain must be between'),
    ((1.6,), {'size': 2 ** 63}, 'size must be at most'),
    ((1.6,), {'n_iter': 1e308}, 'n_iter must be'),
])
def test_optimal_extraction_extremes(frame, args, kwargs, words):
    img, sky = frame
    with pytest.raises(ValueError, match='^' + re.escape(words)):
        optimal_extraction(img, (20.3, 24.6), *args, sky, **kwargs)


def test_psf_stamp_shape_is_checked():
    with pytest.raises(TypeError, match=r'^shape must be a \(ny, nx\)'):
        psf_stamp(1.5, (10.0, 10.0), 64)


@pytest.mark.parametrize('n_apertures', [1e308, 2 ** 63, np.inf, 2.5, -1])
def test_aperture_noise_counts(n_apertures):
    kwargs = dict(n_pix=[9.0, 25.0], sigma=[15.0, 25.0],
                  sigma_err=[1.0, 1.0])
    with pytest.raises(ValueError, match='^n_apertures '):
        ApertureNoise(5.0, 1.0, 0.5, n_apertures=[100, n_apertures],
                      **kwargs)
    noise = ApertureNoise(5.0, 1.0, 0.5, n_apertures=[100, 120], **kwargs)
    assert noise.n_apertures.tolist() == [100, 120]


def test_aperture_noise_beta_is_a_finite_number():
    with pytest.raises(ValueError, match='^beta must be finite'):
        ApertureNoise(5.0, 1.0, np.nan, n_pix=[9.0, 25.0], sigma=[15.0, 25.0],
                      sigma_err=[1.0, 1.0], n_apertures=[100, 100])


@pytest.mark.parametrize('n_apertures', [1e308, 2 ** 63, 200 * 200 + 1])
def test_blank_apertures_at_most_the_frame_pixels(n_apertures):
    img = np.random.default_rng(0).normal(100.0, 5.0, (200, 200))
    with pytest.raises(ValueError, match=r'^n_apertures must be at most '
                       r'(40000 \(the pixels of the \(200, 200\) frame\)|'
                       rf'{MAX_COUNT})'):
        ApertureNoise.from_blank_apertures(
            img, SkyEstimate(100.0, 5.0, img.size), n_apertures=n_apertures,
            seed=1)


@pytest.mark.parametrize('index', [np.nan, 1e308, 2 ** 63, -0.0, '1', [1, 2],
                                   True, 2, -3])
def test_indices_of_results_and_apertures(index):
    terms = budget_terms([900.0, 1600.0], 100, 2.0, gain=1.0)
    sky = SkyEstimate([100.0, 90.0], [5.0, 5.0], [400, 400])
    box = BoxAperture([(10.0, 10.0), (20.0, 20.0)], 5, 5)
    from photutils.aperture import CircularAperture
    circle = CircularAperture([(10.0, 10.0), (20.0, 20.0)], 3.0)
    calls = [lambda: terms.row(index),
             lambda: ErrorBudget.from_terms(terms, index),
             lambda: sky.at(index),
             lambda: box.frame_weights((40, 40), index=index),
             lambda: aperture_weights(box, (40, 40), index=index),
             lambda: aperture_weights(circle, (40, 40), index=index),
             lambda: aperture_weights(circle, (40, 40), index=index,
                                      sum_method='center')]
    for call in calls:
        with pytest.raises((TypeError, ValueError), match='^index '):
            call()


def test_good_indices_keep_their_results():
    terms = budget_terms([900.0, 1600.0], 100, 2.0, gain=1.0)
    assert terms.row(-1) == terms.row(1) == {'sky': 400.0, 'source': 1600.0}
    sky = SkyEstimate([100.0, 90.0], [5.0, 5.0], [400, 400])
    assert sky.at(np.int64(1))[0] == 90.0
    assert SkyEstimate(100.0, 5.0, 400).at(7)[0] == 100.0  # one level


@pytest.mark.parametrize('shape', [64, (64,), (64, 0), (64, np.inf), None,
                                   '64'])
def test_aperture_weights_shape_is_named(shape):
    from photutils.aperture import CircularAperture

    for aperture in (BoxAperture((10.0, 10.0), 5, 5),
                     CircularAperture((10.0, 10.0), 3.0)):
        with pytest.raises((TypeError, ValueError), match='^shape '):
            aperture_weights(aperture, shape)


# -- figures -------------------------------------------------------------------
@pytest.mark.parametrize('bins', [np.nan, np.inf, 1e308, 2 ** 63, 2.5, 0,
                                  10_001, '30', None])
def test_histogram_bins(frame, bins):
    from ccdphot_ext import plot_cutout

    img, _ = frame
    with pytest.raises((TypeError, ValueError), match='^bins '):
        plot_cutout(img, np.s_[20:30, 15:25], bins=bins)


@pytest.mark.parametrize('kwargs', [{'max_labels': np.nan},
                                    {'max_labels': -1},
                                    {'max_apertures': 2.5},
                                    {'max_apertures': np.inf}])
def test_plot_frame_counts(frame, kwargs):
    from ccdphot_ext import plot_frame

    img, _ = frame
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f'^{name} '):
        plot_frame(img, BoxAperture((20.0, 24.0), 5, 5), **kwargs)


# -- counts of iterations, bit flags, factors --------------------------------
@pytest.mark.parametrize('iterations', [1e308, 2 ** 63, 1001])
def test_recentering_iterations_are_bounded(iterations):
    from ccdphot_ext import Recentering

    with pytest.raises(ValueError, match='^iterations must be at most 1000'):
        Recentering(iterations=iterations)


@pytest.mark.parametrize('flags, error', [
    (np.inf, TypeError), (-np.inf, TypeError), (np.nan, TypeError),
    (2.5, TypeError), (True, TypeError), ('3', TypeError), (-1, ValueError),
    (2 ** 63, ValueError)])
def test_flag_bits(flags, error):
    from ccdphot_ext import decode_flags

    with pytest.raises(error, match='^flags must be'):
        decode_flags(flags)


def test_flag_bits_values():
    from ccdphot_ext import decode_flags

    assert decode_flags(9.0) == decode_flags(np.int64(9)) == decode_flags(9)
    assert decode_flags(2 ** 63 - 1)  # every bit, the descriptions of all


@pytest.mark.parametrize('factor', [0, -1.0, np.nan, 1e308, SUBNORMAL])
def test_budget_scale_factor(factor):
    with pytest.raises(ValueError, match='^factor must be'):
        ErrorBudget.from_aperture(1000.0, 25, 7.0, gain=2.0).scaled(
            factor, note='x')


@pytest.mark.parametrize('scale', [0, -1.0, np.inf, 1e308, SUBNORMAL])
def test_scaled_aperture_and_growth_curve_scales(frame, scale):
    from photutils.aperture import CircularAperture

    from ccdphot_ext import growth_curve, scaled_aperture

    with pytest.raises(ValueError, match='^scale must be'):
        scaled_aperture(CircularAperture((20.0, 24.0), 3.0), scale)
    img, sky = frame
    with pytest.raises(ValueError, match='^scales must be'):
        growth_curve(img, BoxAperture((20.3, 24.6), 9, 9), sky,
                     scales=(1.0, scale))


@pytest.mark.parametrize('kwargs, error, words', [
    ({'exptime': SUBNORMAL}, ValueError, 'exptime must be between'),
    ({'exptime': 0.0}, ValueError, 'exptime must be positive'),
    ({'exptime': '30'}, TypeError, 'exptime must be a number'),
    ({'zeropoint': np.nan}, ValueError, 'zeropoint must be finite'),
    ({'zeropoint': [1, 2]}, TypeError, 'zeropoint must be a number')])
def test_magnitudes_arguments(kwargs, error, words):
    import astropy.units as u

    from ccdphot_ext import magnitudes

    with pytest.raises(error, match='^' + words):
        magnitudes([3000.0], u.electron, **kwargs)


@pytest.mark.parametrize('saturation', [0, -1.0, np.nan, '3', SUBNORMAL])
def test_fit_psf_sigma_saturation_is_checked(frame, saturation):
    from ccdphot_ext import fit_psf_sigma

    img, sky = frame
    with pytest.raises((TypeError, ValueError), match='^saturation '):
        fit_psf_sigma(img, sky, saturation=saturation)


@pytest.mark.parametrize('outer, words', [
    (3.0, 'outer must be (a, b, theta)'),
    ((0.0, 1.0, 0.0), 'outer semi-axis a must be positive'),
    ((1.0, 1e308, 0.0), 'outer semi-axis b must be between'),
    ((1.0, 1.0, np.nan), 'outer theta must be finite')])
def test_ellipse_shape_axes(outer, words):
    from ccdphot_ext import EllipseShape

    with pytest.raises((TypeError, ValueError), match='^' + re.escape(words)):
        EllipseShape(outer)


@pytest.mark.parametrize('kwargs, words', [
    ({'shape': (2 ** 20, 2 ** 20)}, 'shape (1048576, 1048576) holds'),
    ({'shape': (2 ** 31, 5)}, 'shape must be at most 2147483647'),
    ({'shape': (64, 0)}, 'shape must be positive'),
    ({'x': [np.nan]}, 'x must be finite'),
    ({'flux': ['a']}, 'flux must be numbers'),
    ({'sigma': SUBNORMAL}, 'sigma must be between'),
    ({'trail': (1e308, 0.0)}, 'trail length must be between'),
    ({'trail': 3.0}, 'trail must be (length, angle)'),
    ({'n_trail': 2 ** 63}, 'n_trail must be at most 10000')])
def test_render_stars_arguments(kwargs, words):
    args = dict(shape=(21, 21), x=[10.0], y=[10.0], flux=[1000.0])
    args.update(kwargs)
    with pytest.raises((TypeError, ValueError), match='^' + re.escape(words)):
        render_stars(args.pop('shape'), args.pop('x'), args.pop('y'),
                     args.pop('flux'), **args)


@pytest.mark.parametrize('kwargs, words', [
    ({'gain': SUBNORMAL}, 'gain must be between'),
    ({'gain': None}, 'gain is required'),
    ({'read_noise': np.inf}, 'read_noise must be finite'),
    ({'dark': -1.0}, 'dark must be non-negative'),
    ({'psf_sigma': 0.0}, 'psf_sigma must be positive'),
    ({'saturation': np.nan}, 'saturation must be finite')])
def test_simulate_frame_arguments(kwargs, words):
    from ccdphot_ext import simulate_frame

    args = dict(gain=2.0, read_noise=5.0, seed=1)
    args.update(kwargs)
    with pytest.raises((TypeError, ValueError), match='^' + re.escape(words)):
        simulate_frame((32, 32), 100.0, {'x': [10.0], 'y': [12.0],
                                         'flux': [1000.0]}, **args)


@pytest.mark.parametrize('positions, error', [
    (0, ValueError), ('3', TypeError), (None, ValueError),
    ([(1.0, 2.0, 3.0)], ValueError)])
def test_recenter_positions_are_named(frame, positions, error):
    from ccdphot_ext import recenter_positions

    img, sky = frame
    with pytest.raises(error, match='^positions must be'):
        recenter_positions(img, positions, sky)


def test_systematics_report_names_its_own_box_size(frame):
    from ccdphot_ext import systematics_report

    img, sky = frame
    with pytest.raises(ValueError,
                       match='^gradient_box_size must be at most'):
        systematics_report(img, BoxAperture((20.3, 24.6), 9, 9), sky,
                           gradient_box_size=2 ** 63)


@pytest.mark.parametrize('text', [3.0, None, ['2.5']])
def test_parse_quantity_wants_text(text):
    from ccdphot_ext import parse_quantity

    with pytest.raises(TypeError, match='^text must be a str'):
        parse_quantity(text)


def test_unit_conversion_names_obj():
    from ccdphot_ext import to_adu

    with pytest.raises(TypeError, match='^obj must be a Quantity'):
        to_adu(3.0, 1.9)


# -- seeds, figures' resolution, shapes of maps, positions off every frame ---
@pytest.mark.parametrize('seed, error', [(-1, ValueError), (1.5, TypeError),
                                         ('x', TypeError), (True, TypeError)])
def test_seeds(seed, error):
    from ccdphot_ext import simulate_frame, simulate_regime_frame

    with pytest.raises(error, match='^seed must be None, a non-negative'):
        simulate_frame((16, 16), 100.0, {'x': [8.0], 'y': [8.0],
                                         'flux': [100.0]}, gain=2.0,
                       read_noise=5.0, seed=seed)
    with pytest.raises(error, match='^seed must be None, a non-negative'):
        simulate_regime_frame('sky', n_side=2, seed=seed)


def test_seeds_keep_their_streams():
    from ccdphot_ext.utils.numbers import random_generator

    assert random_generator(7).random() == np.random.default_rng(7).random()
    rng = np.random.default_rng(3)
    assert random_generator(rng) is rng


@pytest.mark.parametrize('dpi', [np.nan, 0, 1e308, 2401, '100'])
def test_save_figures_dpi(tmp_path, dpi):
    import matplotlib.pyplot as plt

    from ccdphot_ext import save_figures

    fig = plt.figure(figsize=(1, 1))
    try:
        with pytest.raises((TypeError, ValueError), match='^dpi '):
            save_figures({'f': fig}, tmp_path, dpi=dpi)
    finally:
        plt.close(fig)
    assert not list(tmp_path.iterdir())


def test_background_variation_shape():
    from ccdphot_ext import BackgroundVariation

    with pytest.raises(TypeError, match='^shape must be a'):
        BackgroundVariation(np.zeros((8, 8)), shape=64)


def test_nan_positions_fall_off_every_frame_without_a_cast_warning():
    from ccdphot_ext.utils.windows import FAR_PIXELS, whole_pixels

    out = whole_pixels(np.array([np.nan, 3.0, -np.inf]))
    assert out.tolist() == [FAR_PIXELS, 3, -FAR_PIXELS]


@pytest.mark.parametrize('kwargs, error, words', [
    ({'sky_level': [1, 2]}, TypeError, 'sky_level must be a number'),
    ({'source_flux': np.nan}, ValueError, 'source_flux must be finite')])
def test_budget_levels(kwargs, error, words):
    with pytest.raises(error, match='^' + words):
        ErrorBudget.from_aperture(1000.0, 25, 7.0, gain=2.0, **kwargs)


@pytest.mark.parametrize('value', [None, [1, 2]])
def test_residual_background_sums(value):
    from ccdphot_ext import residual_background

    with pytest.raises(TypeError, match='^box_sum must be a number'):
        residual_background(value, 35316.2, 400, 100, 53.139)


def test_unknown_regime_is_named():
    from ccdphot_ext import simulate_regime_frame

    with pytest.raises(ValueError, match="^regime must be one of"):
        simulate_regime_frame('white', n_side=2, seed=1)


# -- the public overlap kernels ----------------------------------------------
@pytest.mark.parametrize('kwargs, error, words', [
    ({'nx': np.inf}, ValueError, '(ny, nx) must be finite'),
    ({'nx': 2 ** 63}, ValueError, '(ny, nx) must be at most'),
    ({'ny': 2 ** 20, 'nx': 2 ** 20}, ValueError, '(ny, nx) (1048576, 1048576)'),
    ({'w': 1e308}, ValueError, 'w must be between'),
    ({'h': np.inf}, ValueError, 'h must be finite'),
    ({'xmin': np.nan}, ValueError, 'xmin must be finite'),
    ({'theta': '0'}, TypeError, 'theta must be a number')])
def test_rectangle_overlap_arguments(kwargs, error, words):
    from ccdphot_ext import rectangle_overlap

    args = dict(xmin=-1.5, ymin=-1.5, nx=3, ny=3, w=2.0, h=1.0, theta=0.3)
    args.update(kwargs)
    with pytest.raises(error, match='^' + re.escape(words)):
        rectangle_overlap(**args)


@pytest.mark.parametrize('kwargs, error, words', [
    ({'nx': 1e308}, ValueError, '(ny, nx) must be at most'),
    ({'a': 1e308}, ValueError, 'ellipse semi-axis a must be between'),
    ({'b': np.inf}, ValueError, 'ellipse semi-axis b must be finite'),
    ({'theta': np.nan}, ValueError, 'ellipse theta must be finite')])
def test_ellipse_overlap_arguments(kwargs, error, words):
    from ccdphot_ext import ellipse_overlap

    args = dict(xmin=-2.0, ymin=-2.0, nx=4, ny=4, a=2.0, b=2.0)
    args.update(kwargs)
    with pytest.raises(error, match='^' + re.escape(words)):
        ellipse_overlap(**args)


@pytest.mark.parametrize('args, error, words', [
    ((np.nan, 2.0, 0, 4), ValueError, 'lo must be finite'),
    ((0.25, 2.0, 0.5, 4), ValueError, 'start must be a whole number'),
    ((0.25, 2.0, 4, 0), ValueError, 'stop - start must be non-negative'),
    ((0.25, 2.0, 0, 2 ** 63), ValueError, 'stop - start must be at most')])
def test_overlap_1d_arguments(args, error, words):
    from ccdphot_ext import overlap_1d

    with pytest.raises(error, match='^' + re.escape(words)):
        overlap_1d(*args)


def test_kernels_keep_their_values():
    from ccdphot_ext import ellipse_overlap, overlap_1d, rectangle_overlap

    assert overlap_1d(0.25, 2.0, 0, 4).tolist() == [0.25, 1.0, 0.5, 0.0]
    assert float(rectangle_overlap(-1.5, -1.5, 3, 3, 2.0, 1.0,
                                   np.pi / 2 - 1e-9).sum()) == 2.0
    w = ellipse_overlap(-2.0, -2.0, 4.0, 4, 2.0, 2.0)
    assert w.shape == (4, 4) and abs(float(w.sum()) - 4 * np.pi) < 1e-12


@pytest.mark.parametrize('value', [1e308, 1e-320, 0.0, 'x'])
def test_pixel_area_keywords_out_of_the_rule_are_ignored_with_a_warning(
        value):
    import astropy.units as u
    from astropy.utils.exceptions import AstropyUserWarning

    from ccdphot_ext import pixel_solid_angle

    meta = {'PIXAR_SR': value, 'PIXAR_A2': 0.0036}
    with pytest.warns(AstropyUserWarning, match='ignoring header keyword '
                      'PIXAR_SR'):
        omega, source = pixel_solid_angle(meta, None, [1.0], [2.0])
    assert source == 'PIXAR_A2'
    assert omega.to_value(u.arcsec ** 2)[0] == pytest.approx(0.0036)


@pytest.mark.parametrize('x', ['3', None, [object()]])
def test_sky_plane_and_variation_coordinates_are_named(x):
    from ccdphot_ext import SkyEstimate, gradient_check, sample_frame

    data = sample_frame().data
    check = gradient_check(data)
    sky = SkyEstimate.from_image(data)
    for call in (lambda: check.plane(x, 20.0), lambda: check.map_offset(
            x, 20.0), lambda: sky.background_variation(x, 20.0)):
        with pytest.raises(TypeError, match='^x must be a number'):
            call()


def test_variation_at_a_nan_position_is_nan():
    from ccdphot_ext import SkyEstimate, sample_frame

    sky = SkyEstimate.from_image(sample_frame().data)
    out = sky.background_variation([np.nan, 100.0], [50.0, np.nan])
    assert np.isnan(out).all()
    assert np.isfinite(sky.background_variation(100.0, 50.0))


# -- arrays of numbers: the budget's terms, the aperture noise, the map error -
@pytest.mark.parametrize('value, error, words', [
    ([25.0, 1e308], ValueError, 'x must be between'),
    ([25.0, np.inf], ValueError, 'x must be finite'),
    ([25.0, -1.0], ValueError, 'x must be non-negative'),
    (np.nan, ValueError, 'x must be finite'),
    ('3', TypeError, 'x must be a number or an array of numbers'),
    ([True, False], TypeError, 'x must be a number or an array of numbers'),
    (None, TypeError, 'x must be a number or an array of numbers')])
def test_scale_arrays_take_the_rule_of_one_number(value, error, words):
    from ccdphot_ext.utils.numbers import scale_array

    with pytest.raises(error, match='^' + re.escape(words)):
        scale_array(value, 'x', allow_zero=True)


def test_scale_arrays_keep_their_values_and_nan_where_allowed():
    from ccdphot_ext.utils.numbers import scale_array

    out = scale_array([25.0, 0.0, -0.0, np.nan, SUBNORMAL], 'x',
                      allow_zero=True, allow_nan=True)
    assert out[:3].tolist() == [25.0, 0.0, 0.0] and np.isnan(out[3])
    assert math.copysign(1.0, out[2]) == 1.0 and out[4] == SUBNORMAL
    with pytest.raises(ValueError, match='^x must be between'):
        scale_array([2.0, SUBNORMAL], 'x')


BUDGET_ARGS = dict(gain=1.0, noise_pix=12.0, sky_error_on_mean=0.2,
                   n_sky=400, flat_error=0.01)


@pytest.mark.parametrize('kwargs, error, words', [
    ({'n_pix': 1e308}, ValueError, 'n_pix must be between'),
    ({'n_pix': np.inf}, ValueError, 'n_pix must be finite'),
    ({'n_pix': np.nan}, ValueError, 'n_pix is NaN for a measured flux'),
    ({'n_pix': 0, 'noise_pix': None}, ValueError,
     'n_pix is 0 (no pixel) for a non-zero flux'),
    ({'noise_pix': 200.0}, ValueError, 'noise_pix (sum of squared weights) '
     'cannot exceed n_pix'),
    ({'noise_pix': -1.0}, ValueError, 'noise_pix must be non-negative'),
    ({'sky_std': np.inf}, ValueError, 'sky_std must be finite'),
    ({'gain': SUBNORMAL}, ValueError, 'gain must be between'),
    ({'gain': '3'}, TypeError, 'gain must be a number'),
    ({'gain': True}, TypeError, 'gain must be a number'),
    ({'sky_error_on_mean': 1e308}, ValueError,
     'sky_error_on_mean must be between'),
    ({'n_sky': -1}, ValueError, 'n_sky must be positive'),
    ({'sky_variance': -1.0}, ValueError, 'sky_variance must be '
     'non-negative'),
    ({'sky_variance': [np.nan, 4.0]}, ValueError,
     'sky_variance is NaN for a measured flux'),
    ({'flat_error': 1e308}, ValueError, 'flat_error must be between'),
    ({'flat_error': '3'}, TypeError, 'flat_error must be a number'),
    ({'source_flux': 'x'}, TypeError, 'source_flux must be a number'),
    ({'source_variance': -np.inf}, ValueError,
     'source_variance must be finite'),
    ({'flat_variance': -1.0}, ValueError, 'flat_variance must be '
     'non-negative'),
    ({'extra_terms': {'dust': -2.0}}, ValueError,
     "extra_terms['dust'] must be non-negative"),
    ({'uncertainty_model': 'all'}, ValueError,
     'uncertainty_model must be one of'),
    ({'n_pix': [1.0, 2.0, 3.0]}, ValueError,
     'the arguments of budget_terms do not broadcast')])
def test_budget_terms_arguments(kwargs, error, words):
    args = dict(BUDGET_ARGS)
    args.update(kwargs)
    n_pix = args.pop('n_pix', 100)
    sky_std = args.pop('sky_std', 2.0)
    with pytest.raises(error, match='^' + re.escape(words)):
        budget_terms([900.0, 1600.0], n_pix, sky_std, **args)


def test_budget_terms_keep_the_numbers_of_the_engines():
    from ccdphot_ext.photometry.terms import unchecked_budget_terms

    flux = np.array([900.0, 1600.0, np.nan, 0.0])
    args = dict(BUDGET_ARGS, noise_pix=[12.0, 80.0, 5.0, 0.0])
    n_pix = np.array([100.0, 100.0, 100.0, 0.0])
    public = budget_terms(flux, n_pix, 2.0, **args)
    engine = unchecked_budget_terms(flux, n_pix, 2.0, **args)
    for name in ('sky', 'source', 'sky_mean', 'flat', 'variance', 'error'):
        assert np.array_equal(getattr(public, name), getattr(engine, name),
                              equal_nan=True)
    # the CCD equation by hand, row 1
    expected = (80.0 * 4.0 + 1600.0 + 100.0 ** 2 * 0.04
                + (0.01 * 1600.0) ** 2)
    assert public.variance[1] == pytest.approx(expected, rel=1e-15)


def test_budget_terms_overflow_warns_naming_the_term():
    from astropy.utils.exceptions import AstropyUserWarning

    with pytest.warns(AstropyUserWarning, match=r'the variance of row\(s\) '
                      r'1 overflows: its term\(s\) flat lie beyond'):
        rows = budget_terms([900.0, 1e200], 100, 2.0, gain=1.0,
                            flat_error=1e150)
    assert rows.variance[1] == np.inf and np.isfinite(rows.variance[0])


def test_error_budget_overflow_names_its_inputs():
    with pytest.raises(ValueError, match=r"^variance term 'flat' overflows "
                       r'.*: flux=1e\+308, flat_error=0.01 are too large'):
        ErrorBudget.from_aperture(1e308, 25, 7.0, gain=2.0, flat_error=0.01)


@pytest.mark.parametrize('kwargs, error, words', [
    ({'n_pix': 1e308}, ValueError, 'n_pix must be between'),
    ({'n_pix': -1.0}, ValueError, 'n_pix must be non-negative'),
    ({'n_pix': '3'}, TypeError, 'n_pix must be a number'),
    ({'noise_pix': 1e308}, ValueError, 'noise_pix must be between'),
    ({'noise_pix': 30.0}, ValueError, 'noise_pix (sum of squared weights) '
     'cannot exceed n_pix')])
def test_aperture_noise_variance_arguments(kwargs, error, words):
    noise = ApertureNoise(5.0, 1.0, 0.5, n_pix=np.array([9.0, 25.0]),
                          sigma=np.array([15.0, 25.0]),
                          sigma_err=np.array([1.0, 1.0]), n_apertures=100)
    args = {'n_pix': 25.0, **kwargs}
    with pytest.raises(error, match='^' + re.escape(words)):
        noise.variance(args.pop('n_pix'), **args)


def test_aperture_noise_variance_overflow_is_refused_and_values_kept():
    big = ApertureNoise(1e150, 1.0, 0.5, n_pix=np.array([9.0, 25.0]),
                        sigma=np.array([3e150, 5e150]),
                        sigma_err=np.array([1e149, 1e149]), n_apertures=100)
    with pytest.raises(ValueError, match='^n_pix: the sky term of an '
                       'aperture of up to 6.7039e\\+153 pixels overflows'):
        big.variance(SCALE_RANGE[1])
    noise = ApertureNoise(5.0, 1.0, 0.5, n_pix=np.array([9.0, 25.0]),
                          sigma=np.array([15.0, 25.0]),
                          sigma_err=np.array([1.0, 1.0]), n_apertures=100)
    # white noise: sigma1**2 * noise_pix
    assert noise.variance(25.0) == 625.0
    assert noise.variance(25.0, 20.0) == 500.0
    out = noise.variance([16.0, np.nan, 0.0])
    assert out[0] == 400.0 and np.isnan(out[1]) and out[2] == 0.0


@pytest.mark.parametrize('pixel_std, error, words', [
    (np.inf, ValueError, 'pixel_std must be finite'),
    (-1.0, ValueError, 'pixel_std must be non-negative'),
    (1e308, ValueError, 'pixel_std must be between'),
    ('3', TypeError, 'pixel_std must be a number'),
    ([1.0, 2.0], ValueError, 'pixel_std of shape (2,) does not broadcast')])
def test_background_variation_error_pixel_std(pixel_std, error, words):
    from ccdphot_ext import BackgroundVariation

    variation = BackgroundVariation(np.zeros((8, 8)))
    with pytest.raises(error, match='^' + re.escape(words)):
        variation.error(pixel_std)


def test_background_variation_error_keeps_its_values():
    from ccdphot_ext import BackgroundVariation

    variation = BackgroundVariation(np.zeros((128, 128)))
    err = variation.error(64.0, [256.0, 0.0], [256.0, 0.0])
    assert np.array_equal(err, 64.0 * variation.error(1.0, [256.0, 0.0],
                                                      [256.0, 0.0]))
    assert np.isnan(variation.error(np.nan, 10.0, 10.0))


def test_run_calibration_seed_is_named():
    from ccdphot_ext import run_calibration

    with pytest.raises(ValueError, match='^seed must be None, a non-negative'):
        run_calibration(['sky'], n_frames=1, n_side=2, seed=-1)


def test_run_calibration_seed_keeps_its_streams():
    from ccdphot_ext.utils.numbers import random_generator

    ours = random_generator(2024).bit_generator.seed_seq.spawn(3)
    before = np.random.SeedSequence(2024).spawn(3)
    assert [np.random.default_rng(s).random() for s in ours] == [
        np.random.default_rng(s).random() for s in before]


@pytest.mark.parametrize('sky, kwargs', [
    (1e308, {}), (2.0 ** 63, {}), (100.0, {'gain': 2.0 ** 63}),
    (100.0, {'dark': 2.0 ** 63})])
def test_simulate_frame_refuses_more_electrons_than_a_poisson_draw(sky,
                                                                   kwargs):
    from ccdphot_ext import simulate_frame

    args = dict(gain=2.0, read_noise=5.0, seed=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=r'^the electrons expected in a '
                       r'pixel, \(sky \+ stars \+ dark\) \* gain = .*: sky, '
                       "dark, gain or the stars' flux is too large"):
        simulate_frame((16, 16), sky, {'x': [8.0], 'y': [8.0],
                                       'flux': [100.0]}, **args)


def test_growth_curve_scale_beyond_the_frame_is_named(frame):
    from ccdphot_ext import growth_curve

    img, sky = frame
    with pytest.raises(ValueError, match=r'^scales spans .* pixels, far '
                       r'more than the frame \(48, 56\): is the scale '
                       r'9\.22337e\+18 right\?'):
        growth_curve(img, BoxAperture((20.3, 24.6), 9, 9), sky,
                     scales=(1.0, 2.0 ** 63))


@pytest.mark.parametrize('power', [None, 3, 1.5, True, '2'])
def test_flux_conversion_power(power):
    import astropy.units as u

    from ccdphot_ext import flux_conversion

    conversion = flux_conversion(u.MJy / u.sr, meta={'PIXAR_SR': 1e-13},
                                 x=[10.0], y=[20.0])
    with pytest.raises(ValueError, match=r'^power must be one of \(1, 2\)'):
        conversion.apply([1.0], 25.0, power)
    assert conversion.apply([1.0], 25.0, 2)[0] == pytest.approx(
        conversion.apply([1.0], 25.0, 1)[0] ** 2, rel=1e-15)
