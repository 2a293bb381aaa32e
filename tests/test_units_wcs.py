"""Input kinds, units through the gain, and positions on the sky."""

import math

import astropy.units as u
import ccdproc
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.nddata import (
    CCDData,
    InverseVariance,
    NDData,
    StdDevUncertainty,
    VarianceUncertainty,
)
from astropy.wcs import WCS
from expected_warnings import gradient_warning, no_gain_warning
from photutils.aperture import (
    CircularAperture,
    SkyCircularAperture,
    SkyRectangularAperture,
)

from ccdphot_ext import (
    NOTEBOOK_BOXES,
    BoxAperture,
    BudgetOptions,
    ErrorBudget,
    SkyBoxAperture,
    SkyEstimate,
    measure,
    photometer,
    to_adu,
    to_electron,
)
from ccdphot_ext.io.header import DetectorParameters
from ccdphot_ext.io.units import electrons_per_data_unit

GAIN = 2.23  # the sample frame's EGAIN
FLUX_COLS = ('sky', 'sky_std', 'sky_error_on_mean', 'aperture_sum',
             'aperture_sum_err')
VAR_COLS = ('var_sky', 'var_source', 'var_sky_mean')
#: The sample frame's gradient against its whole-frame level: the rows'
#: ``sky_offset`` term, from the sky's background variation map, whose
#: float32 cells hold a frame and its scaled copy alike to about 1e-5
#: (their offsets are differences of levels near 1000 ADU)
OFFSET_RTOL = 3e-5


def _apertures():
    boxes = [BoxAperture.from_slices(s) for s in NOTEBOOK_BOXES.values()]
    circles = CircularAperture([(501.2, 167.7), (334.3, 249.6)], r=7.5)
    return [*boxes, circles]


def _values(table, name):
    return np.asarray(u.Quantity(table[name]).value, dtype=float)


@pytest.fixture(scope='module')
def sky_adu(sample_ccd):
    return SkyEstimate.from_image(sample_ccd, method='mean')


def test_every_input_kind_gives_the_same_table(sample_ccd, sky_adu):
    data = sample_ccd.data
    sigma = sample_ccd.uncertainty.array
    header = sample_ccd.meta
    aps = _apertures()
    kinds = {
        'ccddata': sample_ccd,
        'ccddata variance': CCDData(data, unit='adu', meta=header,
                                    uncertainty=VarianceUncertainty(
                                        sigma ** 2)),
        'ccddata inverse variance': CCDData(
            data, unit='adu', meta=header,
            uncertainty=InverseVariance(1.0 / sigma ** 2)),
        'nddata': NDData(data, unit='adu', meta=header,
                         uncertainty=StdDevUncertainty(sigma)),
    }
    with gradient_warning():
        ref = photometer(sample_ccd, aps, sky_adu)
    assert ref['aperture_sum'].unit == u.adu
    assert ref['var_sky'].unit == u.adu ** 2
    assert ref.meta['gain'] == GAIN and ref.meta['gain_source'] == 'EGAIN'
    for name, frame in kinds.items():
        with gradient_warning():
            t = photometer(frame, aps, sky_adu)
        for col in (*FLUX_COLS, *VAR_COLS, 'snr', 'mag', 'mag_err'):
            np.testing.assert_allclose(_values(t, col), _values(ref, col),
                                       rtol=1e-12, err_msg=f'{name} {col}')
        assert t['aperture_sum'].unit == u.adu, name
    # plain arrays and Quantities: parameters explicit, same numbers
    params = {'gain': GAIN, 'detector': DetectorParameters(
        exptime=30.0, saturation=60000.0)}
    with gradient_warning():
        t_np = photometer(data, aps, sky_adu, uncertainty=sigma, **params)
    with gradient_warning():
        t_q = photometer(data * u.adu, aps, sky_adu,
                         uncertainty=sigma * u.adu, **params)
    assert not isinstance(t_np['aperture_sum'], u.Quantity)
    assert t_q['aperture_sum'].unit == u.adu
    for t in (t_np, t_q):
        for col in (*FLUX_COLS, *VAR_COLS, 'mag'):
            np.testing.assert_allclose(_values(t, col), _values(ref, col),
                                       rtol=1e-12)
    # measure agrees with the table row for row
    for i, ap in enumerate(aps[:4]):
        with gradient_warning():
            m = measure(kinds['ccddata variance'], ap, sky_adu)
        assert m.flux == pytest.approx(_values(ref, 'aperture_sum')[i],
                                       rel=1e-12)
        assert m.flux_err == pytest.approx(
            _values(ref, 'aperture_sum_err')[i], rel=1e-12)


def test_electron_frame_from_ccdproc_gain_correct(sample_ccd):
    """Same photons in electrons: fluxes x g, variances x g**2, gain 1."""
    ccd_e = ccdproc.gain_correct(sample_ccd, GAIN * u.electron / u.adu)
    assert ccd_e.unit == u.electron and ccd_e.meta['EGAIN'] == GAIN
    aps = _apertures()
    with gradient_warning():
        t_adu = photometer(sample_ccd, aps,
                           SkyEstimate.from_image(sample_ccd, method='mean'))
    with gradient_warning():
        t_e = photometer(ccd_e, aps, SkyEstimate.from_image(ccd_e, method='mean'))
    assert t_e.meta['gain'] == 1.0
    assert 'data in electron' in t_e.meta['gain_source']
    assert t_e['aperture_sum'].unit == u.electron
    # the source term of electron data is the (squared-weight) flux itself:
    # the flux of whole-pixel boxes, and under photutils' convention
    pos = _values(t_e, 'aperture_sum') > 0
    boxes = np.arange(len(t_e)) < len(NOTEBOOK_BOXES)
    np.testing.assert_allclose(_values(t_e, 'var_source')[pos & boxes],
                               _values(t_e, 'aperture_sum')[pos & boxes],
                               rtol=1e-15)
    with gradient_warning():
        t_lin = photometer(ccd_e, aps, SkyEstimate.from_image(
            ccd_e, method='mean'), budget=BudgetOptions(
                fractional_variance='linear'))
    np.testing.assert_allclose(_values(t_lin, 'var_source')[pos],
                               _values(t_lin, 'aperture_sum')[pos],
                               rtol=1e-15)
    conv = to_electron(t_adu, GAIN * u.electron / u.adu)
    for col in (*FLUX_COLS, *VAR_COLS, 'var_sky_offset'):
        assert conv[col].unit == t_e[col].unit
        rtol = (OFFSET_RTOL if col in ('aperture_sum_err', 'var_sky_offset')
                else 1e-10)
        np.testing.assert_allclose(_values(conv, col), _values(t_e, col),
                                   rtol=rtol, err_msg=col)
    np.testing.assert_allclose(conv['snr'], t_e['snr'], rtol=OFFSET_RTOL)
    # magnitudes keep their value; the zero point of electron fluxes moves
    np.testing.assert_allclose(conv['mag'], t_adu['mag'], rtol=1e-15)
    zp = conv.meta['zeropoint']
    assert zp == pytest.approx(2.5 * math.log10(GAIN), rel=1e-15)
    np.testing.assert_allclose(t_e['mag'] + zp, t_adu['mag'], atol=1e-12)
    back = to_adu(conv, GAIN)
    for col in (*FLUX_COLS, *VAR_COLS, 'var_sky_offset'):
        np.testing.assert_allclose(_values(back, col), _values(t_adu, col),
                                   rtol=1e-12)
    assert back.meta['zeropoint'] == pytest.approx(0.0, abs=1e-12)


def test_rate_frame_uses_gain_times_exptime(sample_ccd):
    t = sample_ccd.meta['EXPTIME']
    rate = CCDData(sample_ccd.data / t, unit=u.adu / u.s,
                   uncertainty=StdDevUncertainty(
                       sample_ccd.uncertainty.array / t),
                   meta=sample_ccd.meta)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    with gradient_warning():
        m_adu = measure(sample_ccd, box, SkyEstimate.from_image(sample_ccd))
    with gradient_warning():
        m_rate = measure(rate, box, SkyEstimate.from_image(rate))
    assert m_rate.budget.gain == pytest.approx(GAIN * t, rel=1e-15)
    assert m_rate.flux == pytest.approx(m_adu.flux / t, rel=1e-12)
    for name in ('sky', 'source'):
        assert m_rate.budget.terms[name] == pytest.approx(
            m_adu.budget.terms[name] / t ** 2, rel=1e-10)
    # the level's error is solved under the Poisson model (its efficiency)
    # on the frame less its gradient's fitted surface: a scaled copy's
    # agrees to the solver's tolerance (8e-11 in the error, 2e-10 here)
    assert m_rate.budget.terms['sky_mean'] == pytest.approx(
        m_adu.budget.terms['sky_mean'] / t ** 2, rel=1e-9)
    assert m_rate.budget.terms['sky_offset'] == pytest.approx(
        m_adu.budget.terms['sky_offset'] / t ** 2, rel=OFFSET_RTOL)
    assert m_rate.snr == pytest.approx(m_adu.snr, rel=OFFSET_RTOL)
    # without an exposure time the rate's source term cannot be formed
    g, why = electrons_per_data_unit(u.electron / u.s, gain=None)
    assert g is None and 'exposure time' in why


def test_gain_rules_per_unit():
    assert electrons_per_data_unit(None, gain=1.9)[0] == 1.9
    assert electrons_per_data_unit(u.DN, gain=1.9)[0] == 1.9
    assert electrons_per_data_unit(u.electron, gain=None)[0] == 1.0
    assert electrons_per_data_unit(u.electron / u.s, exptime=150.04)[0] \
        == 150.04
    assert electrons_per_data_unit(u.adu / u.s, gain=1.9,
                                   exptime=10.0)[0] == pytest.approx(19.0)
    # a header gain in e-/adu means nothing for data in Jy
    g, why = electrons_per_data_unit(u.Jy, gain=1.9)
    assert g is None and 'does not apply' in why
    # an explicit gain for data in Jy must say it is electrons per Jy
    with pytest.raises(ValueError, match='bare number.*electron / Jy'):
        electrons_per_data_unit(u.Jy, gain=1e5, gain_is_explicit=True)
    assert electrons_per_data_unit(u.Jy, gain=1e5 * u.electron / u.Jy,
                                   gain_is_explicit=True)[0] == 1e5
    p = DetectorParameters().resolve({'GAIN': 1.9}, unit=u.Jy)
    assert p.gain is None and p.detector_gain == 1.9
    with pytest.raises(ValueError, match='gain=1.9 given for data in '
                                         'electron'):
        DetectorParameters(gain=1.9).resolve({}, unit=u.electron)


def test_missing_gain_is_never_one(sample_ccd):
    header = sample_ccd.meta.copy()
    del header['EGAIN']
    ccd = CCDData(sample_ccd.data, unit='adu', meta=header,
                  uncertainty=sample_ccd.uncertainty)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    sky = SkyEstimate.from_image(ccd)
    # the header names the detector (EXPTIME, RDNOISE) but no gain: warned
    with gradient_warning(), no_gain_warning():
        m = measure(ccd, box, sky)
    assert 'source' not in m.budget.terms
    assert any('no gain' in note for note in m.budget.notes)
    with gradient_warning(), no_gain_warning():
        t = photometer(ccd, box, sky)
    assert np.isnan(_values(t, 'var_source')).all()
    assert t.meta['gain'] is None and t.meta['gain_source'] == 'missing'
    assert any('source Poisson term absent' in n for n in t.meta['notes'])
    # the error is the quadrature sum of the remaining terms (the sky's
    # offset from the background here among them)
    assert m.flux_err == pytest.approx(math.sqrt(
        m.budget.terms['sky'] + m.budget.terms['sky_mean']
        + m.budget.terms['sky_offset']), rel=1e-14)


def test_wrong_units_name_the_parameter(sample_ccd):
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    sky = SkyEstimate.from_image(sample_ccd)
    sigma = sample_ccd.uncertainty.array
    with pytest.raises(u.UnitsError, match='uncertainty'):
        measure(sample_ccd, box, sky, uncertainty=sigma * u.electron)
    with pytest.raises(u.UnitsError, match='uncertainty'):
        photometer(CCDData(sample_ccd.data, unit='adu',
                           uncertainty=StdDevUncertainty(sigma,
                                                         unit='electron')),
                   box, sky)
    sky_e = SkyEstimate.from_image(sample_ccd.data * GAIN * u.electron)
    with pytest.raises(u.UnitsError, match='sky'):
        measure(sample_ccd, box, sky_e)
    with pytest.raises(u.UnitsError, match='sky'):
        photometer(sample_ccd, box, sky_e)
    with pytest.raises(u.UnitsError, match='gain'):
        measure(sample_ccd, box, sky, gain=2.0 * u.electron)


def test_unit_conversions_of_values_and_budgets():
    g = 1.9 * u.electron / u.adu
    assert to_electron(100 * u.adu, g) == 190 * u.electron
    assert to_electron(100 * u.adu ** 2, g).to_value(u.electron ** 2) \
        == pytest.approx(361.0)
    assert to_adu(to_electron(123.4 * u.adu, g), g).to_value(u.adu) \
        == pytest.approx(123.4, rel=1e-15)
    b = ErrorBudget.from_aperture(41349.20439525999, 400,
                                  53.139015422503746, gain=2.23,
                                  sky_error_on_mean=0.0669)
    e = to_electron(b, 2.23)
    assert e.flux == pytest.approx(41349.20439525999 * 2.23, rel=1e-15)
    assert e.terms['source'] == pytest.approx(e.flux, rel=1e-15)
    assert e.error == pytest.approx(b.error * 2.23, rel=1e-15)
    assert e.snr == pytest.approx(b.snr, rel=1e-15)
    assert e.fractions == pytest.approx(b.fractions, rel=1e-12)
    with pytest.raises(u.UnitsError, match='adu'):
        to_electron(5 * u.electron, g)
    with pytest.raises(u.UnitsError, match='gain'):
        to_electron(5 * u.adu, 2 * u.m)
    with pytest.raises(ValueError, match='gain'):
        to_electron(5 * u.adu, -1.0)
    with pytest.raises(TypeError, match='gain'):
        to_electron(5 * u.adu, 'two')
    with pytest.raises(TypeError, match='ErrorBudget'):
        to_electron([1, 2], 2.0)


# -- WCS -------------------------------------------------------------------

SCALE = 0.5  # arcsec / pixel


def _tan_wcs(rotation_deg=0.0):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    wcs.wcs.crval = [56.75, 24.1167]
    wcs.wcs.crpix = [384.0, 255.5]
    s = SCALE / 3600
    a = math.radians(rotation_deg)
    wcs.wcs.cd = [[-s * math.cos(a), s * math.sin(a)],
                  [s * math.sin(a), s * math.cos(a)]]
    return wcs


@pytest.fixture(scope='module')
def ccd_wcs(sample_ccd):
    header = sample_ccd.meta.copy()
    header.update(_tan_wcs().to_header())
    ccd = CCDData(sample_ccd.data, unit='adu', meta=header,
                  uncertainty=sample_ccd.uncertainty, wcs=_tan_wcs())
    return ccd


def test_pixel_sky_pixel_round_trip():
    wcs = _tan_wcs(17.0)
    x = np.array([0.0, 100.25, 383.0, 766.9])
    y = np.array([0.0, 400.5, 254.5, 509.0])
    xb, yb = wcs.world_to_pixel(wcs.pixel_to_world(x, y))
    np.testing.assert_allclose(xb, x, atol=1e-8)
    np.testing.assert_allclose(yb, y, atol=1e-8)


def test_sky_circles_equal_pixel_circles(ccd_wcs):
    truth_xy = np.array([(501.2, 167.7), (334.3, 249.6), (479.6, 233.9),
                         (227.4, 130.2)])
    coords = ccd_wcs.wcs.pixel_to_world(truth_xy[:, 0], truth_xy[:, 1])
    sky = SkyEstimate.from_image(ccd_wcs)
    sky_ap = SkyCircularAperture(coords, r=3.5 * u.arcsec)
    pix_ap = sky_ap.to_pixel(ccd_wcs.wcs)
    assert pix_ap.r == pytest.approx(3.5 / SCALE, rel=1e-5)
    with gradient_warning():
        t_sky = photometer(ccd_wcs, sky_ap, sky)
    with gradient_warning():
        t_pix = photometer(ccd_wcs, CircularAperture(truth_xy, r=pix_ap.r), sky)
    np.testing.assert_allclose(t_sky['x_center'], truth_xy[:, 0], atol=1e-8)
    np.testing.assert_allclose(t_sky['y_center'], truth_xy[:, 1], atol=1e-8)
    np.testing.assert_allclose(_values(t_sky, 'aperture_sum'),
                               _values(t_pix, 'aperture_sum'), rtol=1e-9)
    # the sky_centroid column, right after y_center, gives the coordinates
    assert t_sky.colnames[3] == 'sky_centroid'
    assert isinstance(t_sky['sky_centroid'], SkyCoord)
    sep = t_sky['sky_centroid'].separation(coords).to_value(u.arcsec)
    assert np.max(sep) < 1e-6
    # measure takes sky apertures too
    with gradient_warning():
        m = measure(ccd_wcs, sky_ap[0], sky)
    assert m.flux == pytest.approx(_values(t_pix, 'aperture_sum')[0],
                                   rel=1e-9)


def test_sky_boxes(ccd_wcs, sample_ccd):
    wcs = ccd_wcs.wcs
    sky = SkyEstimate.from_image(ccd_wcs)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    center = wcs.pixel_to_world(*box.positions)
    # a 20 x 20 pixel box centred from the sky: the notebook's box exactly
    pix_box = SkyBoxAperture(center, 20 * u.pix, 20 * u.pix)
    with gradient_warning():
        m_sky = measure(ccd_wcs, pix_box, sky)
    with gradient_warning():
        m_pix = measure(ccd_wcs, box, sky)
    assert m_sky.n_pix == 400.0
    assert m_sky.flux == pytest.approx(m_pix.flux, rel=1e-12)
    # angular sides: 10" x 6" at 0.5"/px is 20 x 12 pixels, width along x
    ang = SkyBoxAperture(center, 10 * u.arcsec, 6 * u.arcsec).to_pixel(wcs)
    assert (ang.width, ang.height) == pytest.approx((20.0, 12.0), rel=1e-5)
    assert abs(ang.theta.to_value(u.rad)) < 1e-3
    # photutils' SkyRectangularAperture goes through as well
    rect = SkyRectangularAperture(center, 10 * u.arcsec, 10 * u.arcsec)
    with gradient_warning():
        t = photometer(ccd_wcs, rect, sky)
    assert _values(t, 'aperture_sum')[0] == pytest.approx(m_pix.flux,
                                                         rel=1e-3)


def test_rotated_wcs_box_sides_point_where_they_should():
    wcs = _tan_wcs(30.0)
    center = wcs.pixel_to_world(300.2, 200.7)
    box = SkyBoxAperture(center, 10 * u.arcsec, 4 * u.arcsec,
                         theta=20 * u.deg).to_pixel(wcs)
    x, y = box.positions
    theta = box.theta.to_value(u.rad)
    for length, angle, pa in [(box.width, theta, 110.0),
                              (box.height, theta + math.pi / 2, 20.0)]:
        end = wcs.pixel_to_world(x + length / 2 * math.cos(angle),
                                 y + length / 2 * math.sin(angle))
        got = center.position_angle(end).deg % 180.0
        assert got == pytest.approx(pa, abs=1e-4)
        assert center.separation(end).arcsec == pytest.approx(
            length / 2 * SCALE, rel=1e-5)


def test_sky_apertures_need_a_celestial_wcs(sample_ccd):
    coords = SkyCoord(56.75 * u.deg, 24.1167 * u.deg)
    sky = SkyEstimate.from_image(sample_ccd)
    with pytest.raises(ValueError, match='celestial WCS'):
        photometer(sample_ccd, SkyCircularAperture(coords, 3 * u.arcsec),
                   sky)
    with gradient_warning():
        t = photometer(sample_ccd, BoxAperture.from_slices(
            NOTEBOOK_BOXES['star1']), sky)
    assert 'sky_centroid' not in t.colnames
    with pytest.raises(TypeError, match='positions'):
        SkyBoxAperture((1, 2), 3 * u.pix, 3 * u.pix)
    with pytest.raises(u.UnitsError, match='width'):
        SkyBoxAperture(coords, 3 * u.m, 3 * u.pix)
    with pytest.raises(u.UnitsError, match='both'):
        SkyBoxAperture(coords, 3 * u.arcsec, 3 * u.pix)
    with pytest.raises(ValueError, match='height'):
        SkyBoxAperture(coords, 3 * u.pix, -3 * u.pix)


def test_gain_quantities_whose_electrons_cancel_the_data_unit():
    """Data in electrons cancel the gain's electrons: 1 e-/e- is
    dimensionless and e- per (e-/s) is seconds; photometer takes both as
    the gain they are (it refused them, naming no unit), and refuses a
    dimensionless gain for data in adu, naming it."""
    rng = np.random.default_rng(3)
    counts = rng.poisson(50.0, (80, 80)).astype(float)
    circle = CircularAperture([(40.0, 40.0)], r=4)
    sky = SkyEstimate(50.0, 7.0, 6000)
    ccd = CCDData(counts, unit='electron')
    plain = photometer(ccd, circle, sky)
    with_unit = photometer(ccd, circle, sky, gain=1 * u.electron / u.electron)
    assert with_unit['var_source'][0] == plain['var_source'][0]
    rate = CCDData(counts / 400.0, unit='electron/s', meta={'EXPTIME': 400.0})
    sky_rate = SkyEstimate(50.0 / 400.0, 7.0 / 400.0, 6000)
    auto = photometer(rate, circle, sky_rate)
    assert auto.meta['gain'] == 400.0
    for gain in (400.0 * u.electron / (u.electron / u.s),
                 1 * u.electron / u.electron):
        t = photometer(rate, circle, sky_rate, gain=gain)
        assert t.meta['gain'] == pytest.approx(400.0, rel=1e-12)
        assert t['var_source'][0] == pytest.approx(auto['var_source'][0],
                                                   rel=1e-12)
    with pytest.raises(u.UnitsError, match=r'gain in electron / electron '
                       r'\(dimensionless\) does not apply to data in adu'):
        photometer(CCDData(counts, unit='adu'), circle, sky,
                   gain=1 * u.electron / u.electron)
