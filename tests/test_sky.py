"""SkyEstimate: estimators, Q1 propagation, efficiency factors."""

import math

import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import SkyEstimate
from ccdphot_ext.background.estimators import clip_factors
from ccdphot_ext.utils.stats import MAD_TO_STD


def test_mean_is_plain_numpy(rng):
    img = rng.normal(1000, 50, (60, 70))
    sky = SkyEstimate.from_image(img, method='mean')
    assert sky.value == img.mean()
    assert sky.std == img.std()  # ddof 0 as the notebook
    assert sky.n_pix == img.size
    assert sky.error_on_mean == pytest.approx(img.std() / math.sqrt(img.size),
                                              rel=1e-14)


def test_median_efficiency(rng):
    img = rng.normal(10, 2, (40, 40))
    sky = SkyEstimate.from_image(img, method='median')
    assert sky.value == np.median(img)
    # robust scatter: the median absolute deviation as a Gaussian sigma
    mad = MAD_TO_STD * np.median(np.abs(img - np.median(img)))
    assert sky.std == pytest.approx(mad, rel=1e-12)
    assert sky.efficiency == pytest.approx(math.sqrt(math.pi / 2))
    assert sky.error_on_mean == pytest.approx(
        math.sqrt(math.pi / 2) * mad / 40, rel=1e-12)
    # a bright star does not inflate it
    img[:3, :3] += 1e5
    assert SkyEstimate.from_image(img, method='median').std < 2.2


def test_notebook_q1_propagated_error():
    # 510 x 767 = 391170 pixels whose sum of sigma_i^2 is 26166.65562228448^2
    n = 510 * 767
    sigma = np.full((510, 767), 26166.65562228448 / math.sqrt(n))
    img = np.full((510, 767), 1035.0)
    with pytest.warns(AstropyUserWarning, match='std is 0'):
        sky = SkyEstimate.from_image(img, method='mean', uncertainty=sigma)
    assert sky.n_pix == 391170
    assert sky.error_on_mean == pytest.approx(0.06689330884854279, rel=1e-12)
    assert sky.meta['error_on_mean_from'] == 'uncertainty map'


def test_nan_inf_masked_excluded_and_counted(rng):
    img = rng.normal(100, 3, (30, 30))
    img[0, 0] = np.nan
    img[1, 1] = np.inf
    mask = np.zeros(img.shape, bool)
    mask[2, :] = True
    with pytest.warns(AstropyUserWarning, match='32 masked/NaN/inf'):
        sky = SkyEstimate.from_image(img, method='mean', mask=mask)
    good = np.isfinite(img) & ~mask
    assert sky.n_pix == good.sum() == 900 - 32
    assert sky.value == pytest.approx(img[good].mean(), rel=1e-14)
    assert sky.meta['n_excluded_bad'] == 32


def test_ccddata_mask_and_uncertainty_honoured(rng):
    img = rng.normal(100, 3, (20, 20))
    mask = np.zeros(img.shape, bool)
    mask[:5] = True
    ccd = CCDData(img, unit='adu', mask=mask,
                  uncertainty=VarianceUncertainty(np.full(img.shape, 4.0)))
    with pytest.warns(AstropyUserWarning):
        sky = SkyEstimate.from_image(ccd, method='mean')
    assert sky.value == pytest.approx(img[5:].mean())
    assert sky.error_on_mean == pytest.approx(math.sqrt(300 * 4.0) / 300)
    assert sky.unit == 'adu'


def test_sigma_clip_rejects_stars(rng):
    img = rng.normal(500, 10, (100, 100))
    img[40:45, 40:45] += 5000
    sky = SkyEstimate.from_image(img)
    assert sky.method == 'sigma_clip'
    assert abs(sky.value - 500) < 1.0
    assert sky.std == pytest.approx(10, rel=0.03)
    assert sky.n_pix < img.size - 25


def test_clip_factors_values():
    std_factor, k = clip_factors(3.0)
    assert std_factor == pytest.approx(1.01362, abs=5e-5)
    assert k == pytest.approx(1.01362, abs=5e-5)
    # wider clipping tends to the plain mean
    assert clip_factors(10.0) == pytest.approx((1.0, 1.0), abs=1e-12)


@pytest.mark.parametrize('method', ['mean', 'median', 'sigma_clip'])
def test_error_on_mean_is_calibrated(method):
    """The scatter of the level over realisations matches error_on_mean."""
    rng = np.random.default_rng(7)
    values, errors, stds = [], [], []
    for _ in range(400):
        img = rng.normal(0.0, 1.0, (30, 30))
        sky = SkyEstimate.from_image(img, method=method)
        values.append(sky.value)
        errors.append(sky.error_on_mean)
        stds.append(sky.std)
    ratio = np.std(values) / np.mean(errors)
    assert ratio == pytest.approx(1.0, abs=0.1)
    assert np.mean(stds) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize('kwargs, exc, match', [
    ({'method': 'mode'}, ValueError, 'method'),
    ({'sigma': 0}, ValueError, 'sigma'),
    ({'sigma': -1}, ValueError, 'sigma'),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SkyEstimate.from_image(np.ones((5, 5)), **kwargs)


def test_bad_data():
    with pytest.raises(ValueError, match='no finite'):
        SkyEstimate.from_image(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match='2-D'):
        SkyEstimate.from_image(np.ones((2, 3, 4)))
    with pytest.raises(TypeError, match='numeric'):
        SkyEstimate.from_image(np.array([['a', 'b']]))
    with pytest.raises(ValueError, match='uncertainty shape'):
        SkyEstimate.from_image(np.ones((4, 4)), uncertainty=np.ones((3, 3)))
    with pytest.raises(ValueError, match='uncertainty must be non-negative'):
        SkyEstimate.from_image(np.ones((4, 4)),
                               uncertainty=-np.ones((4, 4)))


def test_direct_construction_validation():
    with pytest.raises(ValueError, match='n_pix'):
        SkyEstimate(1.0, 1.0, 0)
    with pytest.raises(ValueError, match='std'):
        SkyEstimate(1.0, -1.0, 10)
    sky = SkyEstimate([1.0, 2.0], [0.5, 0.5], [100, 25])
    assert len(sky) == 2
    assert sky.at(1) == (2.0, 0.5, 25.0, 0.1)


def test_uint16_frame_no_overflow():
    img = np.full((10, 10), 65530, dtype=np.uint16)
    with pytest.warns(AstropyUserWarning, match='std is 0'):
        sky = SkyEstimate.from_image(img, method='mean')
    assert sky.value == 65530.0
    ccd = CCDData(img, unit='adu', uncertainty=StdDevUncertainty(np.ones((10, 10))))
    with pytest.warns(AstropyUserWarning, match='std is 0'):
        assert SkyEstimate.from_image(ccd, method='median').value == 65530.0


def test_isscalar_means_one_level_is_global_includes_maps():
    level = SkyEstimate(100.0, 5.0, 400)
    per_aperture = SkyEstimate([99.0, 101.0], [5.0, 5.0], [100, 100])
    sky_map = SkyEstimate.from_maps(np.full((8, 8), 100.0),
                                    np.full((8, 8), 5.0), n_pix=64)
    assert (level.isscalar, level.is_global) == (True, True)
    assert (per_aperture.isscalar, per_aperture.is_global) == (False, False)
    assert (sky_map.isscalar, sky_map.is_global) == (False, True)
    assert len(per_aperture) == 2
    with pytest.raises(TypeError, match='no len'):
        len(sky_map)


def test_one_sky_check_everywhere(rng):
    """Every function taking a sky refuses a number with the same message
    (one check, `check_sky`)."""
    from ccdphot_ext import (
        ApertureNoise,
        BoxAperture,
        find_stars,
        gradient_check,
        measure,
        photometer,
        recenter_positions,
    )
    from ccdphot_ext.visualization.star import plot_curve_of_growth

    img = rng.normal(100.0, 5.0, (64, 64))
    box = BoxAperture((30, 30), 9, 9)
    calls = [lambda s: measure(img, box, s),
             lambda s: photometer(img, box, s),
             lambda s: find_stars(img, s),
             lambda s: gradient_check(img, sky=s, box_size=16),
             lambda s: ApertureNoise.from_blank_apertures(img, s),
             lambda s: recenter_positions(img, [(30, 30)], s),
             lambda s: plot_curve_of_growth(img, box, s)]
    message = ('sky must be a SkyEstimate (e.g. SkyEstimate.from_image(data)),'
               ' got float')
    for call in calls:
        with pytest.raises(TypeError) as exc:
            call(100.0)
        assert str(exc.value) == message
