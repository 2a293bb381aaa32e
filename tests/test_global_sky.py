"""The whole-frame sky: source mask and the large-frame (subsample) path."""

import warnings

import numpy as np
import pytest
from astropy.stats import sigma_clip
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background import globalsky
from ccdphot_ext.background.estimators import (
    clip_factors,
    median,
    window_shift_factor,
)


def _star_field(rng, n=256, n_stars=80, fwhm=3.0):
    """Noise-free stars (Gaussian PSF), their positions, and pixel variance
    (read noise 8 ADU, gain 1, sky 100)."""
    s = fwhm / 2.3548
    yy, xx = np.mgrid[:n, :n]
    pos = rng.uniform(10, n - 10, (n_stars, 2))
    flux = 10 ** rng.uniform(2.7, 4.5, n_stars)
    model = np.zeros((n, n))
    for (px, py), f in zip(pos, flux, strict=True):
        model += f / (2 * np.pi * s * s) * np.exp(
            -((xx - px) ** 2 + (yy - py) ** 2) / (2 * s * s))
    return model, pos, 64.0 + model + 100.0


def _pulls(mask_sources):
    rng = np.random.default_rng(3)
    model, pos, var = _star_field(rng)
    centres = np.round(pos).astype(int)
    boxes = BoxAperture(centres, 11, 11)
    # each 11 x 11 box covers whole pixels: its true sum, plain numpy
    truth = np.array([model[y - 5:y + 6, x - 5:x + 6].sum()
                      for x, y in centres])
    pulls = []
    for _ in range(20):
        img = model + 100.0 + rng.normal(0.0, np.sqrt(var))
        sky = SkyEstimate.from_image(img, mask_sources=mask_sources)
        with warnings.catch_warnings():
            # the stars' light moves the background map: one row of these
            # 1600 is flagged 32 (a flat frame)
            warnings.filterwarnings('ignore', 'the background varies',
                                    AstropyUserWarning)
            t = photometer(img, boxes, sky, gain=1.0)
        pulls.append((t['aperture_sum'] - truth) / t['aperture_sum_err'])
    return np.concatenate(pulls), sky


def test_default_sky_masks_sources_in_a_star_rich_frame():
    pulls, sky = _pulls(True)
    assert abs(pulls.mean()) < 0.1
    assert pulls.std() == pytest.approx(1.0, abs=0.05)
    assert sky.meta['mask_sources'] is True
    assert 'binned' in sky.meta['source_mask']
    assert 0.3 < sky.meta['n_masked_sources'] / sky.n_rejected <= 1.0
    # the same frames with the whole-frame clipped level: star wings lift
    # the sky and every flux comes out low
    biased, _ = _pulls(False)
    assert biased.mean() < -0.25


def test_mask_sources_false_is_the_notebooks_whole_frame_mean(rng):
    img = rng.normal(1000.0, 30.0, (80, 90))
    img[30:36, 40:46] += 5000.0
    sky = SkyEstimate.from_image(img, method='mean', mask_sources=False)
    assert sky.value == img.mean() and sky.std == img.std()
    assert sky.n_pix == img.size and sky.meta['mask_sources'] is False
    masked = SkyEstimate.from_image(img, method='mean')
    assert masked.meta['n_masked_sources'] >= 36
    assert abs(masked.value - 1000.0) < 3 * masked.error_on_mean
    assert masked.value < sky.value - 10


def test_a_gradient_is_not_taken_for_sources(rng):
    yy, xx = np.mgrid[:400, :400]
    img = rng.normal(0.0, 5.0, (400, 400)) + 0.1 * xx  # 8 sigma across
    sky = SkyEstimate.from_image(img, method='mean')
    assert sky.meta['n_masked_sources'] < 0.1 * img.size
    assert sky.value == pytest.approx((0.1 * xx).mean(), abs=0.2)


def test_mask_does_not_bias_pure_noise():
    rng = np.random.default_rng(11)
    pulls = [(s.value / s.error_on_mean) for s in
             (SkyEstimate.from_image(rng.normal(0.0, 1.0, (512, 512)))
              for _ in range(20))]
    # as many low as high segments are masked: mean 0 within 3/sqrt(20)
    assert abs(np.mean(pulls)) < 0.67
    assert np.std(pulls) == pytest.approx(1.0, abs=0.35)


def test_large_frame_path_is_calibrated(monkeypatch):
    """Clip bounds from a subsample, statistics from every pixel: the
    level's scatter matches error_on_mean (subsample share included)."""
    monkeypatch.setattr(globalsky, 'SUBSAMPLE_PIXELS', 1000)
    rng = np.random.default_rng(5)
    values, errors, diffs = [], [], []
    for _ in range(300):
        img = rng.normal(0.0, 1.0, (80, 80))
        sky = SkyEstimate.from_image(img, mask_sources=False)
        assert 'subsample' in sky.meta
        values.append(sky.value)
        errors.append(sky.error_on_mean)
        full = sigma_clip(img.ravel(), sigma=3, maxiters=10,
                          cenfunc='median', stdfunc='std')
        diffs.append(sky.value - full.mean())
    assert np.std(values) / np.mean(errors) == pytest.approx(1.0, abs=0.1)
    # the same estimate as clipping the whole frame, to a fraction of its
    # error
    assert np.std(diffs) < 0.3 * np.mean(errors)
    assert sky.std == pytest.approx(1.0, abs=0.05)
    assert sky.n_pix + sky.meta['n_clipped'] == img.size


def test_large_frame_path_with_uncertainty_map_and_nan(monkeypatch, rng):
    monkeypatch.setattr(globalsky, 'SUBSAMPLE_PIXELS', 1000)
    img = rng.normal(50.0, 2.0, (100, 100))
    img[0, :5] = np.nan
    sigma = np.full(img.shape, 2.0)
    with pytest.warns(Warning, match='5 masked/NaN/inf'):
        sky = SkyEstimate.from_image(img, uncertainty=sigma,
                                     mask_sources=False)
    lo, hi = sky.meta['clip_bounds']
    kept = img[np.isfinite(img) & (img >= lo) & (img <= hi)]
    assert sky.n_pix == kept.size
    assert sky.value == pytest.approx(kept.mean(), rel=1e-12)
    assert sky.std == pytest.approx(kept.std() * clip_factors(3)[0],
                                    rel=1e-9)
    # the measured path's error (kept pixels plus the subsample's share of
    # the centre), scaled from the measured scatter to the map's sigma = 2
    share = (window_shift_factor(3) ** 2 * np.pi / 2
             * sky.std ** 2 / sky.meta['n_subsample'])
    measured = np.sqrt(kept.std() ** 2 / kept.size + share)
    assert sky.error_on_mean == pytest.approx(measured * 2.0 / sky.std,
                                              rel=1e-9)
    assert sky.meta['error_on_mean_from'] == 'uncertainty map'


def test_small_subsample_is_calibrated(monkeypatch):
    """A subsample of a 32nd of the pixels (the default share) keeps the
    level's scatter equal to its error_on_mean."""
    monkeypatch.setattr(globalsky, 'SUBSAMPLE_PIXELS', 1000)
    monkeypatch.setattr(globalsky, 'SUBSAMPLE_MIN', 100)
    rng = np.random.default_rng(8)
    values, errors = [], []
    for _ in range(300):
        img = rng.normal(0.0, 1.0, (80, 80))
        sky = SkyEstimate.from_image(img, mask_sources=False)
        values.append(sky.value)
        errors.append(sky.error_on_mean)
    assert sky.meta['n_subsample'] <= 6400 / 32
    assert np.std(values) / np.mean(errors) == pytest.approx(1.0, abs=0.1)
    assert abs(np.mean(values)) < 3 * np.mean(errors) / np.sqrt(300)


def test_large_frame_memory_scales_with_the_frame():
    """Subsample, bands and binned mask: the memory that grows with the
    frame is well under half the frame (a fixed few megabytes, such as the
    correlated-noise check's sampled blocks, aside)."""
    import tracemalloc

    rng = np.random.default_rng(4)
    SkyEstimate.from_image(rng.normal(0.0, 1.0, (300, 300)))  # imports
    peaks, sizes = [], []
    for side in (1100, 1600):
        img = rng.normal(1000.0, 20.0, (side, side)).astype(np.float32)
        img[rng.integers(0, side, side), rng.integers(0, side, side)] += 3e3
        tracemalloc.start()
        try:
            sky = SkyEstimate.from_image(img)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        sizes.append(img.size)
        assert 'subsample' in sky.meta
        assert sky.meta['n_subsample'] < img.size / 16
        assert sky.value == pytest.approx(1000.0, abs=0.1)
    # per pixel added: well under the frame as float64
    assert (peaks[1] - peaks[0]) < 0.3 * (sizes[1] - sizes[0]) * 8
    assert peaks[0] < 0.3 * sizes[0] * 8 + 8e6


@pytest.mark.parametrize('mask_sources', [True, False])
def test_background_variation_is_the_block_background_minus_its_median(
        mask_sources):
    """The whole-frame sky's background_variation, with or without the
    source mask: on a frame of constant 4 x 4 blocks (no noise, a linear
    ramp in x) it is each block's level minus the median of the blocks,
    read at any pixel of the block; other skies have none."""
    blocks = np.tile(np.arange(32.0), (32, 1))  # 64 x 64 blocks of 4 px
    img = 100.0 + np.kron(blocks, np.ones((4, 4)))
    sky = SkyEstimate.from_image(img, method='mean', mask_sources=mask_sources)
    assert isinstance(sky.background_variation, globalsky.BackgroundVariation)
    assert 'background_variation' not in sky.meta
    x = np.array([0.0, 3.0, 4.0, 61.0, 127.0, 500.0])
    # cells of 16 blocks: a ramp's cell medians, filtered and interpolated
    # between cell centres, give back the ramp inside the cells
    expected = blocks[0, np.clip(x // 4, 0, 31).astype(int)] - np.median(
        blocks)
    np.testing.assert_allclose(sky.background_variation(x, np.full(6, 9.0)),
                               expected, atol=0.5)
    assert SkyEstimate(1.0, 1.0, 100).background_variation is None


def test_background_variation_must_be_callable():
    with pytest.raises(TypeError, match='background_variation'):
        SkyEstimate(1.0, 1.0, 100, background_variation=np.zeros((4, 4)))


@pytest.mark.parametrize('shape', [(1030, 1027), (2050, 1201)])
def test_fast_passes_equal_the_masked_passes(shape):
    """Without a mask or non-finite pixel the sky skips the masked copies
    (block sums in place, the clip pass by multiplication): the same bits
    as the masked passes (an all-False mask forces those), on a crowded
    float32 frame whose sides are not multiples of the block."""
    rng = np.random.default_rng(8)
    img = rng.normal(500.0, 12.0, shape).astype(np.float32)
    yy, xx = np.mgrid[-8:9, -8:9]
    star = (4000.0 * np.exp(-(xx ** 2 + yy ** 2) / 6.0)).astype(np.float32)
    for x, y in rng.integers(8, min(shape) - 9, (300, 2)):
        img[y - 8:y + 9, x - 8:x + 9] += star
    fast = SkyEstimate.from_image(img)
    masked = SkyEstimate.from_image(img, mask=np.zeros(shape, bool))
    assert fast.meta['n_masked_sources'] > 0
    for name in ('value', 'std', 'n_pix', 'error_on_mean'):
        assert getattr(fast, name) == getattr(masked, name)
    np.testing.assert_array_equal(fast.background_variation.offsets,
                                  masked.background_variation.offsets)


def test_mask_helpers_equal_scipy_and_numpy():
    """The whole-frame sky's own dilation, neighbour extremes and medians
    against scipy.ndimage and numpy."""
    from scipy import ndimage
    rng = np.random.default_rng(9)
    found = rng.random((61, 47)) < 0.03
    np.testing.assert_array_equal(
        globalsky._dilated(found),
        ndimage.binary_dilation(found, structure=np.ones((3, 3), bool),
                                iterations=globalsky.MASK_DILATE))
    image = rng.normal(0.0, 1.0, (33, 29)).astype(np.float32)
    ring = np.ones((3, 3), bool)
    ring[1, 1] = False
    np.testing.assert_array_equal(
        globalsky._neighbours(image, np.maximum),
        ndimage.maximum_filter(image, footprint=ring, mode='constant'))
    np.testing.assert_array_equal(
        globalsky._neighbours(image, np.minimum),
        ndimage.minimum_filter(image, footprint=ring, mode='constant'))
    for n in (255, 256):
        cells = rng.normal(0.0, 1.0, (5, 7, n)).astype(np.float32)
        np.testing.assert_array_equal(median(cells, axis=-1),
                                      np.median(cells, axis=-1))
        assert median(cells[0, 0]) == np.median(cells[0, 0])


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_gaussian_filter_equals_scipy(monkeypatch, dtype):
    """The source search's Gaussian filter against scipy's
    ``gaussian_filter(mode='constant')``, to the map's rounding, with
    strips of a few rows (halos across strip borders) and one strip; its
    noise against the filtered impulse's."""
    from scipy import ndimage
    rng = np.random.default_rng(12)
    tol = 2e-6 if dtype == np.float32 else 1e-14
    for strip in (64, globalsky.FILTER_STRIP_PIXELS):
        monkeypatch.setattr(globalsky, 'FILTER_STRIP_PIXELS', strip)
        for shape in ((57, 13), (3, 5), (1, 1), (40, 1)):
            image = rng.normal(0.0, 1.0, shape).astype(dtype)
            for sigma in (globalsky.MASK_FILTER, globalsky.MATCHED_SIGMA / 2):
                out = globalsky._gaussian(image, sigma)
                assert out.dtype == dtype
                np.testing.assert_allclose(
                    out, ndimage.gaussian_filter(image.astype(np.float64),
                                                 sigma, mode='constant'),
                    rtol=0, atol=tol)
    impulse = np.zeros((17, 17))
    impulse[8, 8] = 1.0
    filtered = ndimage.gaussian_filter(impulse, globalsky.MASK_FILTER,
                                       mode='constant')
    assert globalsky._filter_noise() == pytest.approx(
        np.sqrt(np.sum(filtered ** 2)), rel=1e-14)


def test_block_sums_are_reduceat_bit_for_bit():
    """The binned mask's block sums against numpy's reduceat, bit for bit,
    for groups of rows and columns, whole and partial; half floats along
    the columns by reduceat itself."""
    rng = np.random.default_rng(13)
    for dtype in (np.float32, np.float64, np.float16):
        for shape in ((16, 23), (7, 4), (2, 3), (13, 1)):
            data = (rng.normal(0.0, 1.0, shape)
                    * 10.0 ** rng.integers(-3, 4, shape)).astype(dtype)
            for axis in (0, 1):
                if axis == 0 and dtype == np.float16:
                    continue  # summed in half precision, not reduceat's
                starts = np.arange(0, shape[axis], globalsky.MASK_BIN)
                np.testing.assert_array_equal(
                    globalsky._block_sums(data, axis),
                    np.add.reduceat(data, starts, axis=axis), strict=True)


def test_float32_bounds_keep_the_same_pixels():
    """Clip bounds in single precision keep exactly the float32 pixels the
    float64 bounds keep, at the bounds' float32 neighbours, beyond float32's
    range and with non-finite pixels."""
    rng = np.random.default_rng(14)
    pixels = np.concatenate([
        rng.normal(1000.0, 30.0, 10000).astype(np.float32),
        np.float32([np.inf, -np.inf, np.nan, 3e38, -3e38, 0.0, 1e-45])])
    edge = np.float64(np.float32(950.5))
    for lo, hi in ((930.0000001, 1070.0000001),
                   (np.nextafter(edge, 0.0), np.nextafter(edge, 2e3)),
                   (edge, edge), (-1e39, 1e39), (1e39, 2e39), (np.nan, 5.0)):
        lo, hi = np.float64(lo), np.float64(hi)
        low, high = globalsky._bounds_in(np.dtype(np.float32), lo, hi)
        assert low.dtype == high.dtype == np.float32
        near = [np.nextafter(np.float32(b), np.float32(s))
                for b in (lo, hi) if abs(b) < 3e38
                for s in (-np.inf, np.inf)]
        values = np.concatenate([pixels, np.float32(near)])
        np.testing.assert_array_equal((values >= low) & (values <= high),
                                      (values >= lo) & (values <= hi))
    assert globalsky._bounds_in(np.dtype(np.float64), lo, hi) == (lo, hi)


def _star_grid(rng, n, spacing, fmax, sky=50.0):
    """Gaussian stars (sigma 1.5 px) of 300 to ``fmax`` e- on a grid
    ``spacing`` px apart, on a Poisson sky of ``2 * sky`` e- with 5 e-
    read noise, in ADU at 2 e-/ADU: the frame and the stars' light."""
    from ccdphot_ext.datasets.sample import render_stars

    centres = np.arange(spacing / 2 + 6, n - 6, spacing)
    x, y = (a.ravel() + rng.uniform(-0.5, 0.5, a.size)
            for a in np.meshgrid(centres, centres))
    light = render_stars((n, n), x, y, 10 ** rng.uniform(
        np.log10(300), np.log10(fmax), x.size), sigma=1.5)
    electrons = rng.poisson(light + 2 * sky) + rng.normal(0, 5, (n, n))
    return electrons / 2.0, light / 2.0


def test_a_mask_grown_around_isolated_stars_is_not_called_crowded():
    """Stars 24 px apart: the mask's growth covers more than 80% of the
    frame, but only a few percent of its pixels hold star light and the
    level is right. 'sources cover ... rests on few pixels' fired on every
    such frame; no warning now (filterwarnings is 'error')."""
    rng = np.random.default_rng(3)
    for fmax in (3e4, 1e5):
        data, light = _star_grid(rng, 192, 24, fmax)
        sky = SkyEstimate.from_image(data, gain=2.0)
        assert sky.meta['n_masked_sources'] > 0.8 * data.size
        # plain numpy: pixels more than 3 sky sigma above the true level
        # (50 ADU), less the normal tail; and with star light at all
        above = np.mean(data > 50.0 + 3 * sky.std) - 0.00135
        assert sky.meta['source_light_fraction'] == pytest.approx(
            np.mean(data > sky.value + 3 * sky.std) - 0.00135, abs=1e-3)
        assert 0.02 < above < 0.1
        assert np.mean(light > 0.2 * sky.std) < 0.12
        assert abs(sky.value - 50.0) < 3 * sky.error_on_mean


def test_crowded_frames_and_few_pixels_are_warned():
    """Stars 12 px apart: their light covers a fifth of the pixels, the
    warning says so. A 64 px frame of isolated stars leaves fewer than
    1000 pixels: said too, as that."""
    rng = np.random.default_rng(4)
    data, _ = _star_grid(rng, 192, 12, 1e5)
    with pytest.warns(AstropyUserWarning, match=r'sources cover 9\d% of the '
                      r'frame and their light \d\d% of its pixels .*between '
                      'crowded sources'):
        sky = SkyEstimate.from_image(data, gain=2.0)
    assert sky.meta['source_light_fraction'] > 0.1
    data, _ = _star_grid(rng, 64, 24, 1e5)
    with pytest.warns(AstropyUserWarning, match=r'sources cover \d\d% of the '
                      r'frame: the global sky rests on \d{3} pixels, too few'):
        sky = SkyEstimate.from_image(data, gain=2.0)
    assert sky.meta['source_light_fraction'] < 0.1
