"""
Real frames that install with the dependencies, and the Source Extractor
reference: astropy's M13 image, ccdproc's raw SAAO 1.0 m frame, and the
ESO frame with its Source Extractor catalog in tests/data/sextractor.
"""

import math

import astropy.units as u
import numpy as np
import pytest
import sep
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.utils.exceptions import AstropyUserWarning
from expected_warnings import (
    correlated_warning,
    gradient_warning,
    no_gain_warning,
    sharp_pixel_warning,
)
from photutils.aperture import CircularAperture

from ccdphot_ext import (
    FLAG_RESIDUAL_BACKGROUND,
    FLAG_SHARP_PIXEL,
    BoxAperture,
    BudgetOptions,
    DetectorParameters,
    SkyEstimate,
    measure,
    photometer,
    read_frame,
)
from ccdphot_ext.flags import FLAG_NO_SOURCE_TERM


def _values(table, name):
    return np.asarray(u.Quantity(table[name]).value, dtype=float)


# -- ccdproc's raw SAAO 1.0 m frame ------------------------------------------

def test_saao_header_and_reduction_against_numpy(saao_raw, saao_trimmed,
                                                 saao):
    assert saao_raw.shape == (520, 536) and saao_raw.unit == u.adu
    p = DetectorParameters().resolve(saao_raw.meta)
    assert (p.gain, p.sources['gain']) == (1.9, 'GAIN')
    assert (p.read_noise, p.sources['read_noise']) == (5.0, 'RDNOISE')
    assert (p.exptime, p.sources['exptime']) == (150.04, 'EXPTIME')
    # the reduction redone in numpy: BIASSEC [4:13, 1:520] is columns 3..12,
    # TRIMSEC [17:528, 1:520] columns 16..527 (FITS is 1-based, inclusive)
    raw = saao_raw.data.astype(float)
    rows = np.arange(raw.shape[0])
    fit = np.polyfit(rows, np.median(raw[:, 3:13], axis=1), 1)
    expected = raw[:, 16:528] - np.polyval(fit, rows)[:, None]
    trimmed = saao_trimmed
    assert trimmed.shape == (520, 512)
    np.testing.assert_allclose(trimmed.data, expected, rtol=0, atol=1e-9)
    # TRIMSEC keeps 8 unexposed rows at the top: at the overscan level
    rows_med = np.median(trimmed.data, axis=1)
    assert np.all(np.abs(rows_med[512:]) < 5)
    assert np.all(rows_med[:511] > 80)
    assert saao.shape == (511, 512)
    expected = expected[:511]
    np.testing.assert_allclose(saao.data, expected, rtol=0, atol=1e-9)
    assert np.all(expected > 0)  # no negative pixel left
    sigma2 = (expected * 1.9 + 5.0 ** 2) / 1.9 ** 2
    np.testing.assert_allclose(saao.uncertainty.array ** 2, sigma2,
                               rtol=1e-12)
    assert saao.meta['EXPTIME'] == 150.04


@pytest.fixture(scope='module')
def saao_stars(saao):
    sky = SkyEstimate.from_image(saao)
    stars = _find_stars(saao, sky, n_sigma=10)
    xy = np.column_stack([stars['x_center'], stars['y_center']])
    return sky, xy


def test_saao_stars_with_gain_and_exptime_from_header(saao, saao_stars):
    sky, xy = saao_stars
    assert len(xy) >= 20  # measured: 22 at 10 sigma
    circles = CircularAperture(xy, r=6.0)
    # (w * sigma**2 per pixel, so the map's sum has the closed form below)
    # the frame's background differs from the global level by -0.8 to +1.5
    # per pixel under the stars (annuli of 15-30 px read -1.3 to +3.8):
    # the rows it biases by more than half a flux error are flagged 32
    with gradient_warning(), sharp_pixel_warning():  # its cosmic rays
        t = photometer(saao, circles, sky,
                       budget=BudgetOptions(uncertainty_model='total',
                                            fractional_variance='linear'))
    assert t.meta['gain'] == 1.9 and t.meta['gain_source'] == 'GAIN'
    assert t.meta['exptime'] == 150.04
    assert t['aperture_sum'].unit == u.adu
    assert 0 < np.count_nonzero(t['flags'] & FLAG_RESIDUAL_BACKGROUND) < 20
    ok = (t['flags'] & ~(FLAG_RESIDUAL_BACKGROUND | FLAG_SHARP_PIXEL)) == 0
    assert ok.sum() >= 20
    flux = _values(t, 'aperture_sum')
    # magnitudes from the header's exposure time
    np.testing.assert_allclose(t['mag'][ok],
                               -2.5 * np.log10(flux[ok] / 150.04),
                               rtol=1e-13)
    # circles agree with SEP's exact overlap on the same sky-subtracted data
    d = np.ascontiguousarray(saao.data, dtype=float) - sky.value
    s, _, sflag = sep.sum_circle(d, xy[:, 0], xy[:, 1], 6.0, subpix=0)
    good = ok & (sflag == 0)
    np.testing.assert_allclose(flux[good], s[good], rtol=1e-6)
    # 'total': the ccdproc map holds sky + star photons + read noise, so the
    # budget takes sum(w sigma_i**2) and no separate source term; with no
    # negative pixel that sum is n (B/g + (RN/g)**2) + F/g exactly
    assert np.isnan(_values(t, 'var_source')).all()
    var_map = _values(t, 'var_sky')
    n_pix = t['n_pix']
    model = n_pix * (sky.value / 1.9 + (5.0 / 1.9) ** 2) + flux / 1.9
    np.testing.assert_allclose(var_map[ok], model[ok], rtol=1e-9)
    # and the background's offset from the global level, a term of its
    # own (var_sky_offset), on every row
    offset = _values(t, 'var_sky_offset')
    assert np.all(offset[~ok] > 0)
    np.testing.assert_allclose(
        _values(t, 'aperture_sum_err') ** 2,
        var_map + _values(t, 'var_sky_mean') + offset, rtol=1e-12)


# the first star's background lies 1.45 per pixel above the global level
# (its annulus: 3.8), a bias of 0.6 flux errors: every measure warns and
# flags 32, which this budget test asserts once
@pytest.mark.filterwarnings('ignore:the background varies:'
                            'astropy.utils.exceptions.AstropyUserWarning')
def test_saao_background_model_and_double_counting(saao, saao_stars):
    sky, xy = saao_stars
    box = BoxAperture((round(xy[0, 0]), round(xy[0, 1])), 15, 15)
    # measured sky scatter + F/g (no map): the CCD equation by hand
    plain = CCDData(saao.data, unit='adu', meta=saao.meta)
    m = measure(plain, box, sky)
    assert m.flags & FLAG_RESIDUAL_BACKGROUND
    x0, y0 = int(round(xy[0, 0])) - 7, int(round(xy[0, 1])) - 7
    cut = saao.data[y0:y0 + 15, x0:x0 + 15] - sky.value
    assert m.flux == pytest.approx(cut.sum(), rel=1e-10)
    assert m.budget.terms['sky'] == pytest.approx(225 * sky.std ** 2,
                                                  rel=1e-12)
    assert m.budget.terms['source'] == pytest.approx(cut.sum() / 1.9,
                                                     rel=1e-10)
    assert m.budget.terms['sky_mean'] == pytest.approx(
        225 ** 2 * sky.error_on_mean ** 2, rel=1e-12)
    assert m.compare_numpy().meta['max_abs_rel_diff'] < 1e-10
    # the measured sky variance is close to the CCD model B/g + (RN/g)**2
    # (the rest is the frame's excess: no flat field, bias structure)
    m_rn = measure(plain, box, sky)  # RDNOISE from the header
    dec = m_rn.budget.decomposition
    assert dec['read'] == pytest.approx(225 * (5.0 / 1.9) ** 2, rel=1e-12)
    assert dec['sky_photons'] == pytest.approx(225 * sky.value / 1.9,
                                               rel=1e-12)
    assert 0 < dec['excess'] / m_rn.budget.terms['sky'] < 0.15
    # the ccdproc map with the 'background' model would count the star
    # twice, once inside the map, once as F/g: it is found to hold the
    # star's photon noise (its variance rises by 1/g) and taken as total
    m_total = measure(saao, box, sky,
                      budget=BudgetOptions(uncertainty_model='total'))
    with pytest.warns(AstropyUserWarning,
                      match=r"holds the sources' photon noise.*by 1 / gain"):
        m_found = measure(saao, box, sky,
                          budget=BudgetOptions(uncertainty_model='background'))
    assert m_found.budget.terms == m_total.budget.terms
    assert 'source' not in m_found.budget.terms


def test_saao_boxes_equal_numpy(saao, saao_stars):
    sky, xy = saao_stars
    centres = np.round(xy).astype(int)
    boxes = BoxAperture(centres.astype(float), 11, 11)
    # the sums are compared whatever their flags
    with gradient_warning(), sharp_pixel_warning():
        t = photometer(saao, boxes, sky,
                       budget=BudgetOptions(uncertainty_model='total'))
    for (x, y), flux, flag in zip(centres, _values(t, 'aperture_sum'),
                                  t['flags'], strict=True):
        if flag & 1:
            continue
        ref = np.sum(saao.data[y - 5:y + 6, x - 5:x + 6] - sky.value)
        assert flux == pytest.approx(ref, rel=1e-10)


# -- Source Extractor reference ------------------------------------------------

@pytest.fixture(scope='module')
def sextractor(sextractor_dir):
    ref = sextractor_dir
    # its ESO-LOG cards are not standard FITS: one warning each, no failure
    with pytest.warns(AstropyUserWarning, match='non-standard header card'):
        image = read_frame(ref / 'image.fits', unit='adu')
    with pytest.warns(AstropyUserWarning, match='non-standard header card'):
        back = read_frame(ref / 'back.fits', unit='adu')
    with pytest.warns(AstropyUserWarning, match='non-standard header card'):
        rms = read_frame(ref / 'rms.fits', unit='adu')
    cat = np.loadtxt(ref / 'image.cat')
    return image, back, rms, cat


def test_sextractor_flux_aper(sextractor):
    image, back, rms, cat = sextractor
    assert image.shape == (256, 256) and image.meta['EXPTIME'] == 1200.0
    ccd = CCDData(image.data - back.data, unit='adu', meta=image.meta,
                  uncertainty=StdDevUncertainty(rms.data))
    flags0 = cat[:, 20] == 0
    assert flags0.sum() == 53
    xy = cat[flags0][:, 1:3] - 1.0  # 1-based catalogue -> 0-based pixels
    sky = SkyEstimate(0.0, float(np.median(rms.data)), ccd.size,
                      error_on_mean=0.0, method='Source Extractor map',
                      unit=u.adu)
    # Source Extractor's convention: w * sigma**2 for a pixel partly inside
    # (its header names EXPTIME but no gain: warned, as Source Extractor
    # ran with GAIN 0)
    with no_gain_warning():
        t = photometer(ccd, CircularAperture(xy, r=5.0), sky,
                       sum_method='subpixel', subpixels=5,
                       budget=BudgetOptions(include_sky_mean=False,
                                            fractional_variance='linear'))
    # 2048 only: the ESO header gives no gain
    assert (t['flags'] & ~FLAG_NO_SOURCE_TERM).tolist() == [0] * 53
    flux_rel = _values(t, 'aperture_sum') / cat[flags0][:, 12] - 1
    err_rel = _values(t, 'aperture_sum_err') / cat[flags0][:, 13] - 1
    # measured 1.5e-6: Source Extractor read the scaled 16-bit frame in
    # float32 (4.4e-7 when this package did too); here it is float64
    assert np.max(np.abs(flux_rel)) < 1e-5
    assert np.max(np.abs(err_rel)) < 0.03  # measured 2.8%
    assert np.median(np.abs(err_rel)) < 0.005  # measured 2.1e-3
    # SEP on the same arrays: the same sums and errors to SEP's float32
    # (it sums float32 pixels; measured 1.6e-8)
    d = np.ascontiguousarray(ccd.data, dtype=float)
    rms_map = np.ascontiguousarray(rms.data, dtype=float)
    s, serr, _ = sep.sum_circle(d, xy[:, 0], xy[:, 1], 5.0, err=rms_map,
                                subpix=5)
    np.testing.assert_allclose(_values(t, 'aperture_sum'), s, rtol=1e-7)
    np.testing.assert_allclose(_values(t, 'aperture_sum_err'), serr,
                               rtol=1e-7)
    # GAIN 0 in Source Extractor and no gain here: no source term
    assert np.isnan(_values(t, 'var_source')).all()
    # exact overlap: close, not 1e-5 (Source Extractor samples 5 x 5)
    with no_gain_warning():
        t_exact = photometer(ccd, CircularAperture(xy, r=5.0), sky,
                             budget=BudgetOptions(include_sky_mean=False))
    exact_rel = np.abs(_values(t_exact, 'aperture_sum') / cat[flags0][:, 12]
                       - 1)
    assert 1e-5 < np.max(exact_rel) < 0.02


# -- astropy's M13 image --------------------------------------------------------

def test_m13_frame(m13):
    ccd, sky = m13
    assert ccd.shape == (300, 300) and ccd.data.dtype == np.int16
    assert ccd.wcs is not None and ccd.wcs.has_celestial
    # the default sky masks the cluster's stars and their wings, faint
    # ones too (the matched-filtered binned frame): 1.7 below SEP's global
    # background (116.8), which keeps more of the wings; without the mask
    # the wings lift a clipped whole-frame level to 120.6
    assert sky.value == pytest.approx(115.1, abs=0.3)
    assert sky.meta['n_masked_sources'] > 0.3 * ccd.data.size
    whole = SkyEstimate.from_image(ccd, mask_sources=False)
    assert whole.value == pytest.approx(120.6, abs=0.5)


def _find_stars(data, sky, **kwargs):
    from ccdphot_ext.detection.findstars import find_stars
    return find_stars(data, sky, **kwargs)


def test_m13_find_stars_circles_and_boxes(m13):
    ccd, _ = m13
    # both detectors at 5 sigma of the whole-frame clipped level (std 7.4):
    # above the masked level's std (2.8) both reach deep into the crowding
    sky = SkyEstimate.from_image(ccd, mask_sources=False)
    with pytest.warns(AstropyUserWarning, match="frame's edge"):
        stars = _find_stars(ccd, sky, n_sigma=5)
    xy = np.column_stack([stars['x_center'], stars['y_center']])
    # an independent detection: SEP (Source Extractor's library) at 5 sigma
    d = np.ascontiguousarray(ccd.data, dtype=float) - sky.value
    objs = sep.extract(d, 5.0, err=sky.std, minarea=5)
    assert len(objs) > 150 and len(stars) > 150  # a crowded cluster
    dist = np.hypot(objs['x'][:, None] - xy[:, 0],
                    objs['y'][:, None] - xy[:, 1]).min(axis=1)
    # every bright, unblended SEP star is found (measured: all 48); over
    # all SEP objects, blends included, 85% are found within 1.5 px
    clean = (objs['flux'] > np.median(objs['flux'])) & (objs['flag'] == 0)
    assert clean.sum() > 40
    assert np.all(dist[clean] < 1.5)
    assert np.mean(dist < 1.5) > 0.8
    # circles: photutils exact overlap == SEP exact overlap
    with correlated_warning(), gradient_warning():
        t = photometer(ccd, CircularAperture(xy, r=4.0), sky,
                       budget=BudgetOptions(include_sky_mean=False,
                                            fractional_variance='linear'))
    s, serr, sflag = sep.sum_circle(d, xy[:, 0], xy[:, 1], 4.0,
                                    err=sky.std, subpix=0)
    # (the sums, not the sky: rows the gradient check flags 32 compare too)
    good = ((t['flags'] & ~(FLAG_RESIDUAL_BACKGROUND | FLAG_NO_SOURCE_TERM))
            == 0) & (sflag == 0)
    assert good.sum() > 100
    # (sums of ~50 pixels of ~115 ADU: a faint star's flux is a small
    # difference, so an absolute rounding allowance too)
    np.testing.assert_allclose(_values(t, 'aperture_sum')[good], s[good],
                               rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(np.sqrt(_values(t, 'var_sky')[good]),
                               serr[good], rtol=1e-6)
    # the frame's WCS gives each row its sky position
    sep_arcsec = t['sky_centroid'].separation(
        ccd.wcs.pixel_to_world(xy[:, 0], xy[:, 1])).to_value(u.arcsec)
    assert np.max(sep_arcsec) < 1e-6
    # boxes: the sum of data[y0:y1, x0:x1] - sky in numpy
    centres = np.round(xy[good]).astype(int)
    with correlated_warning(), gradient_warning():
        t_box = photometer(ccd, BoxAperture(centres.astype(float), 7, 7), sky)
    for (x, y), flux, flag in zip(centres, _values(t_box, 'aperture_sum'),
                                  t_box['flags'], strict=True):
        if flag & 1:
            continue
        ref = np.sum(ccd.data[y - 3:y + 4, x - 3:x + 4] - sky.value)
        assert flux == pytest.approx(ref, rel=1e-10)
    assert math.isfinite(float(np.nansum(t_box['mag'])))
