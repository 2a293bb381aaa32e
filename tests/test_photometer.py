"""photometer(): table contract and agreement with measure()."""

import astropy.units as u
import numpy as np
import pytest
from photutils.aperture import CircularAperture

from ccdphot_ext import (
    FLAG_TRUNCATED,
    NOTEBOOK_BOXES,
    PHOTOMETRY_COLUMNS,
    BoxAperture,
    SigmaThreshold,
    SkyEstimate,
    measure,
    photometer,
)


def test_columns_units_and_meta(sample_ccd):
    sky = SkyEstimate.from_image(sample_ccd)
    boxes = [BoxAperture.from_slices(s) for s in NOTEBOOK_BOXES.values()]
    t = photometer(sample_ccd, boxes, sky)
    assert tuple(t.colnames) == PHOTOMETRY_COLUMNS
    assert len(t) == 4
    assert t['aperture_sum'].unit == u.adu
    assert t['var_sky'].unit == u.adu ** 2
    assert t.meta['gain'] == 2.23 and t.meta['gain_source'] == 'EGAIN'
    assert t.meta['exptime'] == 30.0
    assert set(t.meta['versions']) >= {'ccdphot_ext', 'photutils', 'astropy'}
    ok = t['aperture_sum'] > 0 * u.adu
    np.testing.assert_allclose(
        t['mag'][ok], -2.5 * np.log10(t['aperture_sum'][ok].value / 30.0))


@pytest.mark.parametrize('threshold', [None, SigmaThreshold(2.0)])
def test_rows_equal_measure(sample_ccd, threshold):
    sky = SkyEstimate.from_image(sample_ccd)
    boxes = [BoxAperture.from_slices(s) for s in NOTEBOOK_BOXES.values()]
    t = photometer(sample_ccd, boxes, sky, threshold=threshold)
    for row, box in zip(t, boxes, strict=True):
        res = measure(sample_ccd, box, sky, threshold=threshold)
        assert row['aperture_sum'].value == res.flux
        assert row['aperture_sum_err'].value == res.flux_err
        assert row['n_pix'] == res.n_pix
        assert row['flags'] == res.flags
        assert row['var_sky_mean'].value == res.budget.terms['sky_mean']


def test_off_frame_row_is_flagged_not_raised(rng):
    img = rng.normal(10, 1, (30, 30))
    sky = SkyEstimate.from_image(img)
    t = photometer(img, BoxAperture([(15, 15), (-40, 5)], 5, 5), sky)
    assert t['flags'][1] & FLAG_TRUNCATED
    assert np.isnan(t['aperture_sum'][1]) and t['n_pix'][1] == 0
    assert np.isnan(t['mag'][1])


def test_circles_and_per_aperture_sky(rng):
    img = rng.normal(10, 1, (40, 40))
    aps = CircularAperture([(10, 10), (30, 30)], r=3)
    sky = SkyEstimate([9.0, 11.0], [1.0, 1.0], [100, 100])
    t = photometer(img, aps, sky)
    assert t['sky'].tolist() == [9.0, 11.0]
    with pytest.raises(ValueError, match='sky has 2 levels'):
        photometer(img, CircularAperture([(10, 10)] * 3, r=3), sky)


def test_bad_apertures():
    img = np.ones((10, 10))
    sky = SkyEstimate(1.0, 1.0, 100)
    with pytest.raises(TypeError, match='apertures'):
        photometer(img, [(1, 2)], sky)
    with pytest.raises(ValueError, match='apertures is empty'):
        photometer(img, [], sky)
