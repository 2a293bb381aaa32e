"""Figures: what is drawn is checked against plain numpy on the same pixels."""

import sys

import matplotlib

matplotlib.use('Agg')

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
from astropy.visualization import ZScaleInterval
from expected_warnings import gradient_warning
from matplotlib.contour import ContourSet
from photutils.aperture import CircularAperture

from ccdphot_ext import (
    NOTEBOOK_BOXES,
    BoxAperture,
    ErrorBudget,
    SigmaThreshold,
    SkyEstimate,
    measure,
    photometer,
)
from ccdphot_ext.datasets.sample import render_stars
from ccdphot_ext.visualization import figures as cplt

STAR1 = NOTEBOOK_BOXES['star1']  # np.s_[158:178, 492:512]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close('all')


@pytest.fixture(scope='module')
def image(sample_ccd):
    return sample_ccd.data


@pytest.fixture(scope='module')
def mean_sky(image):
    return SkyEstimate.from_image(image, method='mean', mask_sources=False)


def _bar_heights(ax):
    return [p.get_height() for p in ax.patches]


def test_cutout_shows_the_box_and_its_histogram(image, mean_sky):
    fig = cplt.plot_cutout(image, STAR1, sky=mean_sky)
    ax_img, ax_hist, cbar = fig.axes[0], fig.axes[1], fig.axes[2]
    assert len(fig.axes) == 3  # image, histogram, colour bar
    expected = image[158:178, 492:512] - image.mean()
    np.testing.assert_allclose(ax_img.images[0].get_array(), expected,
                               rtol=0, atol=1e-9)
    assert ax_img.get_xlabel() == 'Cutout X-position relative to X=492'
    assert ax_img.get_ylabel() == 'Cutout Y-position relative to Y=158'
    assert 'sky-subtracted' in ax_img.get_title()
    assert ax_hist.get_xlabel() == 'Pixel value [ADU]'
    assert ax_hist.get_ylabel() == 'Number of pixels'
    # the histogram holds every one of the 400 pixels, in 50 bins
    assert len(ax_hist.patches) == 50
    assert sum(_bar_heights(ax_hist)) == 400
    counts, _ = np.histogram(expected, bins=50)
    assert _bar_heights(ax_hist) == counts.tolist()
    assert cbar.get_ylabel() == 'ADU'


def test_cutout_without_sky_and_with_unit(sample_ccd):
    fig = cplt.plot_cutout(sample_ccd, BoxAperture.from_slices(STAR1))
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(),
                                  sample_ccd.data[158:178, 492:512])
    assert fig.axes[1].get_xlabel() == 'Pixel value [adu]'
    assert not fig.axes[0].get_title().startswith('sky-subtracted')


def test_threshold_contour_is_the_notebook_mask(image, mean_sky):
    with gradient_warning():
        ax = cplt.plot_threshold_contour(image, STAR1, mean_sky)
    contours = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert len(contours) == 1
    # the notebook's level: 2 * sky_stddev
    np.testing.assert_allclose(contours[0].levels, [2 * image.std()],
                               rtol=1e-12)
    cutout = image[158:178, 492:512] - image.mean()
    np.testing.assert_allclose(ax.images[0].get_array(), cutout, atol=1e-9)
    mask = cutout > 2 * image.std()
    assert ax.get_title() == (f'2-sigma mask: {mask.sum()} pixels, '
                              f'sum {cutout[mask].sum():.1f}')
    assert ax.figure.axes[-1].get_ylabel() == 'Counts [ADU]'


def test_threshold_contour_level_follows_n_sigma(image, mean_sky):
    with gradient_warning():
        ax = cplt.plot_threshold_contour(
            image, STAR1, mean_sky,
            threshold=SigmaThreshold(3.0, selection='pixel'))
    (cs,) = [c for c in ax.collections if isinstance(c, ContourSet)]
    np.testing.assert_allclose(cs.levels, [3 * image.std()], rtol=1e-12)
    assert ax.get_title().startswith('3-sigma mask')


def test_residual_background_histogram(image, mean_sky):
    with gradient_warning():
        ax = cplt.plot_residual_background(image, STAR1, mean_sky)
    cutout = image[158:178, 492:512] - image.mean()
    rest = cutout[~(cutout > 2 * image.std())]
    assert sum(_bar_heights(ax)) == rest.size
    mean_line, zero_line = ax.lines
    assert mean_line.get_xdata()[0] == pytest.approx(rest.mean(), rel=1e-12)
    assert zero_line.get_xdata()[0] == 0.0
    assert ax.get_title() == (f'Outside the mask: {rest.size} pixels, mean '
                              f'{rest.mean():.1f}, sum {rest.sum():.1f}')
    # the sample frame's gradient leaves about +28 ADU per pixel here
    assert 20 < rest.mean() < 35


def test_budget_bars_are_the_variance_shares():
    # notebook star 1 with gain 1
    b = ErrorBudget.from_aperture(41349.20439525999, 400, 53.139015422503746,
                                  gain=1.0)
    ax = cplt.plot_budget(b)
    var_sky = 400 * 53.139015422503746 ** 2
    total = 1082.0587730915988 ** 2
    heights = _bar_heights(ax)
    assert len(heights) == 2
    np.testing.assert_allclose(heights, [100 * var_sky / total,
                                         100 * (1 - var_sky / total)],
                               rtol=1e-9)
    assert [t.get_text() for t in ax.get_xticklabels()] == ['sky', 'source']
    assert [t.get_text() for t in ax.texts] == [f'{h:.1f}%' for h in heights]
    assert ax.get_title() == 'flux 41349.2 +/- 1082.1 (SNR 38.2)'


def test_budget_table_stacks_one_bar_per_term(sample_ccd):
    boxes = [BoxAperture.from_slices(s) for s in NOTEBOOK_BOXES.values()]
    with gradient_warning():
        table = photometer(sample_ccd, boxes,
                           SkyEstimate.from_image(sample_ccd))
    ax = cplt.plot_budget_table(table)
    # every budget column: the whole-frame level adds its offset term
    columns = ('var_sky', 'var_source', 'var_sky_mean', 'var_sky_offset')
    assert [c for c in table.colnames if c.startswith('var_')] == list(
        columns)
    assert len(ax.patches) == 4 * len(table)
    widths = np.array([p.get_width() for p in ax.patches]).reshape(4, -1)
    np.testing.assert_allclose(widths.sum(axis=0), 100.0, rtol=1e-12)
    var = np.array([table[c].value for c in columns])
    np.testing.assert_allclose(widths, 100 * var / var.sum(axis=0),
                               rtol=1e-12)
    assert [t.get_text() for t in ax.get_yticklabels()] == ['1', '2', '3',
                                                            '4']
    with pytest.raises(ValueError, match='var_sky'):
        cplt.plot_budget_table(table['id', 'aperture_sum'])


def test_curve_of_growth_matches_numpy_box_sums(image, mean_sky):
    with gradient_warning():
        ax = cplt.plot_curve_of_growth(image, STAR1, mean_sky,
                                       scales=[0.1, 0.3, 0.5, 1.0, 1.5])
    line = ax.lines[0]
    sizes = [2, 6, 10, 20, 30]
    np.testing.assert_allclose(line.get_xdata(), sizes, rtol=1e-12)
    expected = []
    for size in sizes:
        h = size // 2
        cut = image[168 - h:168 + h, 502 - h:502 + h] - image.mean()
        expected.append(cut.sum())
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-10)
    marks = [ln for ln in ax.lines if list(ln.get_xdata()) == [20, 20]]
    assert len(marks) == 1  # the box itself
    assert ax.get_xlabel() == 'Box side [pixels]'
    assert ax.get_ylabel() == 'Flux [ADU]'


def test_curve_of_growth_reaches_the_true_flux():
    """Noise-free star on a zero sky: the curve converges to the truth."""
    img = render_stars((80, 80), [40.3], [39.6], [10000.0], sigma=1.8)
    sky = SkyEstimate(0.0, 1.0, 10000)
    ax = cplt.plot_curve_of_growth(img, BoxAperture((40.3, 39.6), 10, 10),
                                   sky, scales=[0.4, 1.0, 3.0])
    flux = ax.lines[0].get_ydata()
    assert flux[0] < 8000  # a 4-pixel box misses light
    assert flux[-1] == pytest.approx(10000.0, rel=1e-6)
    ax = cplt.plot_curve_of_growth(img, CircularAperture((40.3, 39.6), r=5),
                                   sky, scales=[0.4, 3.0], mark=False)
    assert ax.lines[0].get_ydata()[-1] == pytest.approx(10000.0, rel=1e-6)
    assert ax.get_xlabel() == 'Radius [pixels]'
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [2.0, 15.0])


def test_curve_of_growth_rejects_bad_scales(image, mean_sky):
    with pytest.raises(ValueError, match='scales'):
        cplt.plot_curve_of_growth(image, STAR1, mean_sky, scales=[1, -1])


def test_frame_overview_shows_apertures_and_ids(sample_ccd):
    boxes = [BoxAperture.from_slices(s) for s in NOTEBOOK_BOXES.values()]
    circle = CircularAperture([(100, 100), (200, 300)], r=6)
    ax = cplt.plot_frame(sample_ccd, [*boxes, circle],
                         ids=[*NOTEBOOK_BOXES, 'c1', 'c2'])
    np.testing.assert_array_equal(ax.images[0].get_array(), sample_ccd.data)
    assert len(ax.patches) == 6
    assert [t.get_text() for t in ax.texts] == [*NOTEBOOK_BOXES, 'c1', 'c2']
    vmin, vmax = ZScaleInterval().get_limits(sample_ccd.data)
    norm = ax.images[0].norm
    assert (norm.vmin, norm.vmax) == pytest.approx((vmin, vmax))
    assert ax.get_xlim() == (-0.5, 766.5)
    # the box outline sits on the pixel edges of image[158:178, 492:512]
    xy = ax.patches[0].get_xy()
    assert xy == pytest.approx((491.5, 157.5))
    with pytest.raises(ValueError, match='ids'):
        cplt.plot_frame(sample_ccd, boxes, ids=['a'])


def test_frame_overview_without_apertures_handles_nan(sample_ccd):
    img = sample_ccd.data.copy()
    img[:10] = np.nan
    ax = cplt.plot_frame(img)
    assert len(ax.patches) == 0
    vmin, vmax = ax.images[0].norm.vmin, ax.images[0].norm.vmax
    assert np.isfinite(vmin) and np.isfinite(vmax) and vmin < vmax


def test_star_summary_has_six_panels(sample_ccd):
    sky = SkyEstimate.from_image(sample_ccd)
    with gradient_warning():
        fig = cplt.plot_star_summary(sample_ccd, STAR1, sky, title='star 1')
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 8  # six panels and two colour bars
    assert any(t.startswith('2-sigma mask') for t in titles)
    assert any(t.startswith('Outside the mask') for t in titles)
    assert 'Curve of growth' in titles
    with gradient_warning():
        res = measure(sample_ccd, BoxAperture.from_slices(STAR1), sky)
    assert (f'flux {res.flux:.1f} +/- {res.flux_err:.1f} '
            f'(SNR {res.snr:.1f})') in titles
    assert fig._suptitle.get_text() == 'star 1'


def test_budget_from_row_equals_measure(sample_ccd):
    sky = SkyEstimate.from_image(sample_ccd)
    box = BoxAperture.from_slices(STAR1)
    with gradient_warning():
        row = photometer(sample_ccd, box, sky)[0]
    ours = cplt.budget_from_row(row)
    with gradient_warning():
        ref = measure(sample_ccd, box, sky).budget
    assert ours.terms == pytest.approx(ref.terms, rel=1e-12)
    assert ours.error == pytest.approx(ref.error, rel=1e-12)


def test_notebook_figures_saved_as_png(tmp_path, image, mean_sky):
    with gradient_warning():
        figs = cplt.notebook_figures(image, STAR1, mean_sky, gain=2.23)
    assert set(figs) == {'cutout', 'mask_contour', 'residual_background',
                         'budget', 'curve_of_growth', 'overview'}
    assert plt.get_fignums() == []  # nothing registered with pyplot
    (tmp_path / 'budget.png').write_text('old')
    paths = cplt.save_figures(figs, tmp_path, dpi=50)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f'{name}.png' for name in figs)
    for path, fig in zip(paths, figs.values(), strict=True):
        pixels = mpimg.imread(path)
        width, height = fig.get_size_inches() * 50
        assert pixels.shape[:2] == (round(height), round(width))
        assert pixels[..., :3].std() > 0.05  # not a blank page
    budget_ax = figs['budget'].axes[0]
    with gradient_warning():
        expected = measure(image, BoxAperture.from_slices(STAR1), mean_sky,
                           gain=2.23).budget
    np.testing.assert_allclose(
        _bar_heights(budget_ax),
        [100 * f for f in expected.fractions.values()], rtol=1e-12)


def test_bad_arguments_name_the_parameter(image, mean_sky):
    with pytest.raises(TypeError, match='budget'):
        cplt.plot_budget({'sky': 1.0})
    with pytest.raises(TypeError, match='aperture'):
        cplt.plot_cutout(image, [158, 178, 492, 512])
    with pytest.raises(TypeError, match='sky'):
        cplt.plot_threshold_contour(image, STAR1, 1035.0)
    with pytest.raises(ValueError, match='off the frame'):
        cplt.plot_cutout(image, BoxAperture((5000, 5000), 10, 10))
    with pytest.raises(ValueError, match='threshold'):
        cplt.plot_residual_background(image, STAR1, mean_sky, threshold=-1)


def test_missing_matplotlib_says_how_to_install(monkeypatch, image,
                                                mean_sky):
    for name in ('matplotlib', 'matplotlib.pyplot', 'matplotlib.figure'):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'ccdphot_ext\[plot\]'):
        cplt.plot_budget(ErrorBudget(1.0, {'sky': 1.0}))
    with pytest.raises(ImportError, match=r'ccdphot_ext\[plot\]'):
        cplt.notebook_figures(image, STAR1, mean_sky)
