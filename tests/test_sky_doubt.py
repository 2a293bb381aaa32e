# Licensed under a 3-clause BSD style license - see LICENSE
"""
A SkyEstimate keeps the unit of its Quantities and refuses mixed ones and
fractional pixel counts; a doubtful sky (std 0, fewer than 5 pixels) warns
and flags the rows measured against it instead of giving silent zero error
bars with flags 0.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import (
    FLAG_SKY_ANNULUS,
    BoxAperture,
    SkyEstimate,
    measure,
    photometer,
)
from ccdphot_ext.flags import FLAG_NO_SOURCE_TERM, decode_flags


@pytest.fixture
def img():
    img = np.random.default_rng(1).normal(100, 5, (60, 80))
    img[20:25, 30:35] += 500
    return img


@pytest.fixture
def box():
    return BoxAperture.from_slices(np.s_[15:30, 25:40])


# ------------------------------------------------------------------ units

def test_quantity_level_keeps_its_unit():
    sky = SkyEstimate(100 * u.electron, 5 * u.electron, 100)
    assert sky.unit == u.electron
    assert (sky.value, sky.std) == (100.0, 5.0)
    assert sky.error_on_mean == 0.5
    assert not isinstance(sky.value, u.Quantity)


def test_quantity_sky_is_refused_on_data_of_another_unit(img, box):
    sky = SkyEstimate(100 * u.electron, 5 * u.electron, 100)
    with pytest.raises(u.UnitsError, match='sky is in electron but data '
                                           'is in adu'):
        photometer(CCDData(img, unit='adu'), box, sky)


def test_quantities_are_converted_to_one_unit():
    sky = SkyEstimate(1 * u.electron / u.s, 60 * u.electron / u.min, 100,
                      error_on_mean=6 * u.electron / u.min)
    assert sky.unit == u.electron / u.s
    assert sky.std == pytest.approx(1.0, rel=1e-15)
    assert sky.error_on_mean == pytest.approx(0.1, rel=1e-15)
    # the unit given wins; the level is converted to it
    sky = SkyEstimate(1 * u.electron / u.s, 1 * u.electron / u.s, 100,
                      unit=u.electron / u.min)
    assert (sky.unit, sky.value, sky.std) == (u.electron / u.min, 60.0,
                                              60.0)


@pytest.mark.parametrize('kwargs, name', [
    ({'value': 100 * u.adu, 'std': 5 * u.electron}, 'std'),
    ({'value': 100 * u.adu, 'std': 5 * u.adu,
      'error_on_mean': 1 * u.electron}, 'error_on_mean'),
    ({'value': 100 * u.adu, 'std': 5 * u.adu, 'unit': u.electron}, 'value'),
])
def test_mixed_units_are_refused_naming_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=f'^{name} is in .* not '
                                         'convertible to the sky unit'):
        SkyEstimate(n_pix=100, **kwargs)


def test_plain_numbers_keep_working_without_a_unit():
    sky = SkyEstimate(100.0, 5.0, 100, unit=u.adu)
    assert (sky.unit, sky.value, sky.std) == (u.adu, 100.0, 5.0)
    assert SkyEstimate(100.0, 5.0, 100).unit is None


# ------------------------------------------------------------------ n_pix

@pytest.mark.parametrize('n_pix', [2.5, [100, 2.5], np.nan])
def test_fractional_pixel_counts_are_refused(n_pix):
    value = 100.0 if np.ndim(n_pix) == 0 else [100.0, 100.0]
    std = 5.0 if np.ndim(n_pix) == 0 else [5.0, 5.0]
    with pytest.raises(ValueError, match='n_pix'):
        SkyEstimate(value, std, n_pix)


def test_whole_float_counts_and_map_counts_are_accepted():
    assert SkyEstimate(100.0, 5.0, 100.0).error_on_mean == 0.5
    # a map's n_pix is per mesh and may be any non-negative number
    sky = SkyEstimate.from_maps(np.full((4, 4), 100.0), np.full((4, 4), 5.0),
                                n_pix=2.5)
    np.testing.assert_allclose(sky.error_on_mean, 5.0 / np.sqrt(2.5))


# ------------------------------------------------------------ doubtful sky

def test_zero_rms_map_warns_and_flags_its_rows(img, box):
    with pytest.warns(AstropyUserWarning, match='doubtful sky: std is 0'):
        sky = SkyEstimate.from_maps(np.full(img.shape, 100.0),
                                    np.zeros(img.shape))
    table = photometer(img, box, sky)
    # no sky noise at all: the error is unknown (NaN), never 0 ...
    assert np.isnan(table['aperture_sum_err'][0])
    assert table['flags'][0] == FLAG_SKY_ANNULUS  # ... and so flagged
    assert measure(img, box, sky).flags == FLAG_SKY_ANNULUS


def test_map_flags_only_rows_on_zero_rms(img):
    rms = np.full(img.shape, 5.0)
    rms[:, 60:] = 0.0
    with pytest.warns(AstropyUserWarning, match='1200 of 4800 pixels'):
        sky = SkyEstimate.from_maps(np.full(img.shape, 100.0), rms)
    boxes = BoxAperture([(30.0, 30.0), (70.0, 30.0)], 5, 5)
    assert photometer(img, boxes, sky)['flags'].tolist() == [
        0, FLAG_SKY_ANNULUS]


@pytest.mark.parametrize('method', ['sigma_clip', 'mean', 'median'])
def test_underflowing_scatter_is_measured_and_flagged(img, box, method):
    # the variance (1e-199)**2 underflows to 0: the std is measured on the
    # pixels scaled by a power of two (exactly img's, times 1e-200), but
    # the error bars built from its square still lose the sky noise
    tiny = img * 1e-200
    reference = SkyEstimate.from_image(img, method=method)
    with pytest.warns(AstropyUserWarning,
                      match='std is 0 or its square underflows'):
        sky = SkyEstimate.from_image(tiny, method=method)
    assert sky.std == pytest.approx(reference.std * 1e-200, rel=1e-12)
    assert sky.value == pytest.approx(reference.value * 1e-200, rel=1e-12)
    assert sky.meta['n_masked_sources'] == reference.meta['n_masked_sources']
    table = photometer(tiny, box, sky)
    assert table['flags'][0] & FLAG_SKY_ANNULUS
    assert measure(tiny, box, sky).flags & FLAG_SKY_ANNULUS


@pytest.mark.parametrize('method', ['sigma_clip', 'mean', 'median'])
def test_underflowing_annulus_scatter_is_measured_and_flagged(img, method):
    from photutils.aperture import CircularAnnulus, CircularAperture
    annulus = CircularAnnulus([(32, 22)], 8, 14)
    reference = SkyEstimate.from_annulus(img, annulus, method=method)
    with pytest.warns(AstropyUserWarning,
                      match='std is 0 or its square underflows'):
        sky = SkyEstimate.from_annulus(img * 1e-200, annulus, method=method)
    np.testing.assert_allclose(sky.std, reference.std * 1e-200, rtol=1e-12)
    np.testing.assert_allclose(sky.value, reference.value * 1e-200,
                               rtol=1e-12)
    assert sky.n_pix.tolist() == reference.n_pix.tolist()
    table = photometer(img * 1e-200, CircularAperture([(32, 22)], 5), sky)
    assert table['flags'][0] & FLAG_SKY_ANNULUS


def test_map_flags_rows_on_some_zero_rms_pixels(img):
    rms = np.full(img.shape, 5.0)
    rms[:, :40] = 0.0
    with pytest.warns(AstropyUserWarning, match='2400 of 4800 pixels'):
        sky = SkyEstimate.from_maps(np.full(img.shape, 100.0), rms)
    from photutils.aperture import CircularAperture
    # straddling x = 40 (part of the pixels on a zero RMS), wholly beyond
    boxes = BoxAperture([(40.0, 30.0), (60.0, 30.0)], 10, 10)
    circles = CircularAperture([(40.0, 30.0), (60.0, 30.0)], 4)
    for aperture in (boxes, circles):
        for engine in ('auto', 'general'):
            flags = photometer(img, aperture, sky, engine=engine)['flags']
            assert (flags & FLAG_SKY_ANNULUS).tolist() == [
                FLAG_SKY_ANNULUS, 0]
        assert measure(img, aperture[0], sky).flags & FLAG_SKY_ANNULUS
        assert not measure(img, aperture[1], sky).flags & FLAG_SKY_ANNULUS


def test_optimal_extraction_flags_a_level_from_few_pixels():
    from ccdphot_ext import optimal_extraction, psf_stamp
    # the star is the extraction's own (pixel-integrated) PSF: a Gaussian
    # sampled at pixel centres is narrower and reads as a PSF mismatch
    slices, stamp, _ = psf_stamp(1.5, (32, 22), (60, 80))
    img = np.random.default_rng(3).normal(100, 5, (60, 80))
    img[slices] += 7068.6 * stamp
    with pytest.warns(AstropyUserWarning, match='fewer than 5 pixels'):
        sky = SkyEstimate(100.0, 5.0, 3)
    res = optimal_extraction(img, (32, 22), 1.5, sky)
    assert res.flags & FLAG_SKY_ANNULUS
    good = optimal_extraction(img, (32, 22), 1.5, SkyEstimate(100.0, 5.0,
                                                              3000))
    assert not good.flags & FLAG_SKY_ANNULUS


def test_whole_frame_sky_from_one_pixel_warns_and_flags(img, box):
    data = np.full(img.shape, np.nan)
    data[3, 3] = 100.0
    with pytest.warns(AstropyUserWarning) as record:
        sky = SkyEstimate.from_image(data, method='mean',
                                     mask_sources=False)
    text = ' '.join(str(w.message) for w in record)
    assert 'fewer than 5 pixels' in text and 'std is 0' in text
    assert sky.n_pix == 1
    frame = data.copy()
    frame[15:30, 25:40] = img[15:30, 25:40]
    assert photometer(frame, box, sky)['flags'][0] == FLAG_SKY_ANNULUS


def test_few_pixels_with_a_scatter_still_flag(img, box):
    with pytest.warns(AstropyUserWarning, match='1 of 1 levels come from '
                                                'fewer than 5 pixels'):
        sky = SkyEstimate(100.0, 5.0, 4)
    assert photometer(img, box, sky)['flags'][0] == FLAG_SKY_ANNULUS
    assert measure(img, box, sky).flags == FLAG_SKY_ANNULUS


def test_a_noiseless_simulation_warns_but_is_measured(img, box):
    model = np.full(img.shape, 100.0)
    model[20:25, 30:35] += 500
    with pytest.warns(AstropyUserWarning, match='noiseless simulation'):
        sky = SkyEstimate(100.0, 0.0, 10 ** 6)
    row = photometer(model, box, sky)[0]
    assert row['aperture_sum'] == 500 * 25
    assert row['flags'] == FLAG_SKY_ANNULUS
    assert 'sky std is 0' in decode_flags(row['flags'])[0]


def test_per_aperture_levels_flag_only_their_doubtful_rows(img):
    boxes = BoxAperture([(32.0, 22.0), (60.0, 40.0), (10.0, 10.0)], 7, 7)
    with pytest.warns(AstropyUserWarning, match='std is 0 \\(1 of 3'):
        sky = SkyEstimate([100.0, 100.0, 100.0], [5.0, 0.0, 5.0],
                          [100, 100, 3])
    flags = photometer(img, boxes, sky)['flags']
    assert (flags & FLAG_SKY_ANNULUS).tolist() == [0, FLAG_SKY_ANNULUS,
                                                   FLAG_SKY_ANNULUS]


def test_a_normal_sky_neither_warns_nor_flags(img, box):
    # filterwarnings is 'error': any warning would fail here
    sky = SkyEstimate.from_image(img)
    assert sky.std > 0 and sky.n_pix > 1000
    table = photometer(img, box, sky)
    assert table['flags'][0] & ~FLAG_NO_SOURCE_TERM == 0  # 2048: no gain
    assert measure(img, box, sky).flags == 0
    # the error is the budget's, from plain numpy
    n = 15 * 15
    expected = np.sqrt(n * sky.std ** 2 + n ** 2 * sky.error_on_mean ** 2)
    assert table['aperture_sum_err'][0] == pytest.approx(expected,
                                                         rel=1e-12)


# ------------------------------------------------- annulus flags in measure

def test_measure_carries_the_flag_of_a_doubtful_annulus(img):
    from photutils.aperture import CircularAnnulus, CircularAperture
    mask = np.zeros(img.shape, bool)
    mask[:, :33] = True  # most of the annulus is masked
    with pytest.warns(AstropyUserWarning) as record:
        sky = SkyEstimate.from_annulus(img, CircularAnnulus([(32, 22)], 6, 10),
                                       mask=mask)
    assert any('fewer than 50%' in str(w.message) for w in record)
    assert sky.meta['flags'].tolist() == [FLAG_SKY_ANNULUS]
    ap = CircularAperture((32, 22), 4)
    assert photometer(img, ap, sky)['flags'][0] & ~FLAG_NO_SOURCE_TERM == (
        FLAG_SKY_ANNULUS)
    assert measure(img, ap, sky).flags == FLAG_SKY_ANNULUS


@pytest.mark.parametrize('aperture', ['circle', 'box'])
def test_measure_flags_an_annulus_reaching_into_its_aperture(img, aperture):
    from photutils.aperture import CircularAnnulus, CircularAperture
    ap = (CircularAperture((32, 22), 6) if aperture == 'circle'
          else BoxAperture((32, 22), 11, 11))
    sky = SkyEstimate.from_annulus(img, CircularAnnulus([(32, 22)], 3, 12))
    match = '1 of 1 sky annuli reach into their own aperture'
    with pytest.warns(AstropyUserWarning, match=match):
        expected = photometer(img, ap, sky)
    with pytest.warns(AstropyUserWarning, match=match):
        res = measure(img, ap, sky)
    # (2048, no gain, is photometer's alone)
    assert res.flags == expected['flags'][0] & ~FLAG_NO_SOURCE_TERM == (
        FLAG_SKY_ANNULUS)
    assert res.flux == expected['aperture_sum'][0]  # numbers unchanged
    # an annulus clear of the aperture is not flagged
    clear = SkyEstimate.from_annulus(img, CircularAnnulus([(32, 22)], 9, 14))
    assert measure(img, ap, clear).flags == 0


def test_a_degenerate_annulus_is_warned_about_once(img):
    from photutils.aperture import CircularAnnulus
    mask = np.ones(img.shape, bool)
    mask[22, 38:41] = False  # three usable annulus pixels
    with pytest.warns(AstropyUserWarning) as record:
        sky = SkyEstimate.from_annulus(img, CircularAnnulus([(32, 22)], 6, 10),
                                       mask=mask)
    doubts = [str(w.message) for w in record if 'fewer than 5' in
              str(w.message)]
    assert len(doubts) == 1 and 'sky annuli flagged doubtful' in doubts[0]
    assert int(sky.n_pix[0]) == 3
    assert sky.meta['flags'].tolist() == [FLAG_SKY_ANNULUS]
    # the same level given by hand, without the annulus' flags, is warned
    with pytest.warns(AstropyUserWarning, match='doubtful sky: 1 of 1 '
                      'levels come from fewer than 5 pixels'):
        SkyEstimate(sky.value, sky.std, sky.n_pix)


def test_unit_is_checked_by_the_one_unit_rule():
    # a number is not a unit (astropy would read 3 as a scaled
    # dimensionless unit); a text that is no unit names the parameter
    with pytest.raises(TypeError, match='unit must be an astropy unit or a '
                                        'unit string, got int 3'):
        SkyEstimate(1.0, 1.0, 100, unit=3)
    with pytest.raises(ValueError, match="^unit: 'bogus' is not a unit"):
        SkyEstimate(1.0, 1.0, 100, unit='bogus')
    assert SkyEstimate(1.0, 1.0, 100, unit='adu').unit == u.adu
