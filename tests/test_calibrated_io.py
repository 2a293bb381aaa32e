"""
Calibrated data products through read_frame: JWST files written by
STScI's stdatamodels, HST-style SCI/ERR/DQ/WHT files, a Spitzer-like
galactic mosaic; DQ bits, variance arrays, unit families, the pixel solid
angle and the gain in electrons per data unit.
"""

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS
from calibrated_products import (
    DO_NOT_USE,
    HST_BAD,
    JUMP_DET,
    hst_image,
    jwst_image,
    spitzer_mosaic,
    wcs_pixel_area,
)

from ccdphot_ext import FrameReadError, read_frame
from ccdphot_ext.io.dq import describe_dq_bits, dq_bits, dq_mask
from ccdphot_ext.io.fluxdensity import (
    flux_conversion,
    pixel_solid_angle,
    unit_family,
)
from ccdphot_ext.io.units import electrons_per_data_unit, header_effective_gain
from ccdphot_ext.io.variance import VarianceArrays
from ccdphot_ext.utils.inputs import as_frame

stdatamodels = pytest.importorskip('stdatamodels')


@pytest.fixture(scope='module')
def jwst_file(tmp_path_factory):
    product = jwst_image()
    path = tmp_path_factory.mktemp('jwst') / 'image_i2d.fits'
    data = product.write(path, np.random.default_rng(5))
    return product, path, data


def test_jwst_file_from_stdatamodels_reads_every_array(jwst_file):
    from stdatamodels.jwst import datamodels

    product, path, data = jwst_file
    # the producer reads its own file back
    with datamodels.open(path) as model:
        assert type(model).__name__ == 'ImageModel'
        np.testing.assert_array_equal(model.dq, product.dq)
        np.testing.assert_allclose(model.var_rnoise,
                                   product.variances['VAR_RNOISE'],
                                   rtol=1e-6)
        assert model.meta.bunit_data == 'MJy/sr'
    ccd = read_frame(path)
    assert ccd.unit == u.MJy / u.sr
    np.testing.assert_allclose(ccd.data, data.astype(np.float32))
    assert isinstance(ccd.uncertainty, VarianceArrays)
    assert list(ccd.uncertainty.arrays) == ['VAR_POISSON', 'VAR_RNOISE',
                                            'VAR_FLAT']
    for name, values in product.variances.items():
        np.testing.assert_allclose(ccd.uncertainty.arrays[name], values,
                                   rtol=1e-6)
    # the total is the sum of the arrays (not ERR), a variance
    np.testing.assert_allclose(ccd.uncertainty.array, product.variance,
                               rtol=1e-6)
    # DO_NOT_USE masks, JUMP_DET does not; the DQ array is kept as flags
    np.testing.assert_array_equal(ccd.mask, (product.dq & DO_NOT_USE) > 0)
    assert ccd.mask.sum() == 6
    np.testing.assert_array_equal(ccd.flags, product.dq)
    assert ccd.meta['PIXAR_SR'] == pytest.approx(product.header['PIXAR_SR'])
    assert ccd.wcs is not None and ccd.wcs.has_celestial
    # the frame the photometry sees: the arrays in the data unit squared
    frame = as_frame(ccd)
    assert set(frame.variance_arrays) == set(product.variances)
    np.testing.assert_allclose(frame.uncertainty ** 2, product.variance,
                               rtol=1e-6)


@pytest.mark.parametrize('hdu', ['VAR_POISSON', 'DQ', 'ERR', 2,
                                 ('VAR_RNOISE', 1)])
def test_an_array_of_the_science_image_is_not_measured(jwst_file, hdu):
    # hdu= naming the errors, variances or DQ of the SCI image would read
    # them as a frame, with SCI's other arrays as their errors: refused
    _, path, _ = jwst_file
    with pytest.raises(FrameReadError, match=r"is the (VAR_POISSON|DQ|ERR|"
                       r"VAR_RNOISE) array that goes with a science image, "
                       r"not an image to measure; measure SCI,1"):
        read_frame(path, hdu=hdu)
    # the science image itself, named or by number, is read as before
    default = read_frame(path)
    for science in ('SCI', 1, ('SCI', 1)):
        frame = read_frame(path, hdu=science)
        np.testing.assert_array_equal(frame.data, default.data)
        assert set(frame.uncertainty.arrays) == {
            'VAR_POISSON', 'VAR_RNOISE', 'VAR_FLAT'}


def test_an_array_named_like_a_companion_is_read_when_alone(tmp_path):
    # a file whose only image is called ERR is that image (nothing to go
    # with): read, not refused
    path = tmp_path / 'err_only.fits'
    image = np.arange(12.0).reshape(3, 4)
    fits.HDUList([fits.PrimaryHDU(),
                  fits.ImageHDU(image, name='ERR')]).writeto(path)
    np.testing.assert_array_equal(
        read_frame(path, hdu='ERR', unit='adu').data, image)


def test_dq_bits_are_configurable(jwst_file):
    product, path, _ = jwst_file
    both = read_frame(path, dq_bits='DO_NOT_USE+JUMP_DET')
    np.testing.assert_array_equal(
        both.mask, (product.dq & (DO_NOT_USE | JUMP_DET)) > 0)
    assert both.mask.sum() == 7
    assert not read_frame(path, dq_bits=0).mask.any()
    assert read_frame(path, dq_bits='1,4').mask.sum() == 7
    with pytest.raises(ValueError, match='dq_bits.*unknown DQ flag.*BAD'):
        read_frame(path, dq_bits='DO_NOT_USE+BAD')
    with pytest.raises(TypeError, match='dq_bits'):
        read_frame(path, dq_bits=1.5)


def test_dq_helpers():
    assert dq_bits('do_not_use') == 1 and dq_bits(' 2 + 4 ') == 6
    assert dq_bits('all') == 2 ** 32 - 1
    with pytest.raises(ValueError, match='no ~'):
        dq_bits('~4')
    with pytest.raises(ValueError, match='between 0'):
        dq_bits(-1)
    dq = np.array([[0, 1], [2, 2 ** 31 + 1]], np.uint32)
    assert dq_mask(dq).tolist() == [[False, True], [False, True]]
    assert dq_mask(dq, 'REFERENCE_PIXEL').tolist() == [[False, False],
                                                       [False, True]]
    with pytest.raises(TypeError, match='integers'):
        dq_mask(dq.astype(float))
    assert describe_dq_bits(3) == '1 (DO_NOT_USE) + 2 (SATURATED)'


def test_hst_err_is_a_total_error_and_wht_zero_is_no_data(tmp_path):
    product = hst_image(weight=True)
    path = tmp_path / 'hst_flt.fits'
    product.write(path, np.random.default_rng(3))
    ccd = read_frame(path)
    assert ccd.unit == u.electron
    assert isinstance(ccd.uncertainty, VarianceArrays)
    assert list(ccd.uncertainty.arrays) == ['ERR']
    np.testing.assert_allclose(ccd.uncertainty.array,
                               product.variances['ERR'], rtol=1e-6)
    wht = product.extra['wht']
    # the uncovered corner (weight 0) is masked, and so are HST's bad
    # detector (4) and hot (16) pixels: an HST WFC3/UVIS file's default
    np.testing.assert_array_equal(ccd.mask, (wht == 0) | (product.dq > 0))
    assert ccd.meta['DQMASK'] == 48799
    assert ccd.meta['DQRULE'] == 'HST WFC3/UVIS default'
    assert ccd.meta['EXPTIME'] == 500.0 and ccd.meta['PHOTFLAM'] == 1.5e-19
    bad = read_frame(path, dq_bits=HST_BAD)
    np.testing.assert_array_equal(bad.mask,
                                  (wht == 0) | ((product.dq & HST_BAD) > 0))
    # names are HST's on an HST file
    named = read_frame(path, dq_bits='BADPIX')
    np.testing.assert_array_equal(named.mask, bad.mask)
    assert named.meta['DQRULE'] == 'dq_bits=BADPIX (HST WFC3/UVIS)'
    with pytest.raises(FrameReadError, match='unknown HST WFC3/UVIS DQ flag '
                       'name.*DO_NOT_USE'):
        read_frame(path, dq_bits='DO_NOT_USE')


def test_plain_err_extension_keeps_its_old_meaning(tmp_path):
    """An ERR beside a primary-HDU image (no SCI name) is a 1-sigma map as
    before, not a product's total error."""
    path = tmp_path / 'plain.fits'
    fits.HDUList([fits.PrimaryHDU(np.ones((5, 6)), fits.Header(
        {'BUNIT': 'adu'})), fits.ImageHDU(np.full((5, 6), 2.0),
                                          name='ERR')]).writeto(path)
    ccd = read_frame(path)
    assert type(ccd.uncertainty) is StdDevUncertainty
    assert as_frame(ccd).variance_arrays is None


def test_variance_arrays_object():
    arrays = {'VAR_POISSON': np.full((3, 4), 4.0),
              'VAR_RNOISE': np.ones((3, 4))}
    v = VarianceArrays(arrays=arrays)
    np.testing.assert_array_equal(v.array, 5.0)
    ccd = CCDData(np.zeros((3, 4)), unit='MJy/sr', uncertainty=v)
    # astropy re-wraps the uncertainty it adopts: the arrays survive, and
    # slicing slices them
    assert set(ccd.uncertainty.arrays) == set(arrays)
    assert ccd[1:, :2].uncertainty.arrays['VAR_POISSON'].shape == (2, 2)
    with pytest.raises(TypeError, match='read-only|not support'):
        v.arrays['X'] = 1
    with pytest.raises(ValueError, match='one shape'):
        VarianceArrays(arrays={'A': np.ones((2, 2)), 'B': np.ones((2, 3))})
    # an explicit uncertainty replaces the arrays
    frame = as_frame(ccd, uncertainty=np.ones((3, 4)))
    assert frame.variance_arrays is None
    # arrays in another unit are converted to the data unit squared
    ccd = CCDData(np.zeros((3, 4)), unit='MJy/sr', uncertainty=VarianceArrays(
        arrays={'VAR_POISSON': np.full((3, 4), 1e12)},
        unit=(u.Jy / u.sr) ** 2))
    np.testing.assert_allclose(as_frame(ccd).variance_arrays['VAR_POISSON'],
                               1.0)


def _arrays_frame():
    arrays = {'VAR_POISSON': np.arange(12.0).reshape(3, 4) + 1.0,
              'VAR_RNOISE': np.full((3, 4), 0.5)}
    return arrays, CCDData(np.ones((3, 4)), unit='MJy/sr',
                           uncertainty=VarianceArrays(arrays=arrays))


@pytest.mark.parametrize('how', ['copy', 'deepcopy', 'pickle'])
def test_variance_arrays_survive_copies_and_pickles(how):
    import copy
    import pickle

    arrays, ccd = _arrays_frame()
    out = {'copy': lambda c: c.copy(), 'deepcopy': copy.deepcopy,
           'pickle': lambda c: pickle.loads(pickle.dumps(c))}[how](ccd)
    assert type(out.uncertainty) is VarianceArrays
    assert out.uncertainty.parent_nddata is out
    assert set(out.uncertainty.arrays) == set(arrays)
    for name, values in arrays.items():
        np.testing.assert_array_equal(out.uncertainty.arrays[name], values)
        # a copy, not a view of the original's arrays
        assert not np.shares_memory(out.uncertainty.arrays[name],
                                    ccd.uncertainty.arrays[name])
    np.testing.assert_array_equal(
        as_frame(out).variance_arrays['VAR_POISSON'], arrays['VAR_POISSON'])


@pytest.mark.parametrize('op, operand, factor', [
    ('multiply', 2.0, 4.0), ('divide', 4.0, 1 / 16),
    ('multiply', 3 * u.s, 9.0), ('add', 1 * u.MJy / u.sr, 1.0),
    ('subtract', np.full((3, 4), 0.2) * u.MJy / u.sr, 1.0)])
def test_variance_arrays_scale_with_noiseless_arithmetic(op, operand,
                                                         factor):
    arrays, ccd = _arrays_frame()
    out = getattr(ccd, op)(operand)
    assert type(out.uncertainty) is VarianceArrays
    for name, values in arrays.items():
        np.testing.assert_allclose(out.uncertainty.arrays[name],
                                   values * factor, rtol=1e-14)
    np.testing.assert_allclose(out.uncertainty.array,
                               sum(arrays.values()) * factor, rtol=1e-14)
    # the same from the other side: a noiseless frame times the product
    if op == 'multiply' and not isinstance(operand, u.Quantity):
        plain = CCDData(np.full((3, 4), operand), unit='')
        np.testing.assert_allclose(
            plain.multiply(ccd).uncertainty.arrays['VAR_RNOISE'],
            arrays['VAR_RNOISE'] * factor, rtol=1e-14)


def test_variance_arrays_with_an_uncertain_operand_become_one_total():
    from astropy.nddata import VarianceUncertainty

    arrays, ccd = _arrays_frame()
    other = CCDData(np.ones((3, 4)), unit='MJy/sr',
                    uncertainty=VarianceUncertainty(np.full((3, 4), 2.0)))
    with pytest.warns(AstropyUserWarning, match=r"VAR_POISSON, VAR_RNOISE.*"
                      r"add with an operand.*'ERR'"):
        out = ccd.add(other)
    assert list(out.uncertainty.arrays) == ['ERR']
    np.testing.assert_allclose(out.uncertainty.arrays['ERR'],
                               sum(arrays.values()) + 2.0, rtol=1e-14)
    # still a total: the budget splits it, never adds a source term to it
    assert set(as_frame(out).variance_arrays) == {'ERR'}


def test_a_broken_variance_arrays_is_not_taken_for_a_plain_map():
    _, ccd = _arrays_frame()
    del ccd.uncertainty._arrays  # what a lossy copy used to leave
    with pytest.raises(AttributeError, match='_arrays'):
        as_frame(ccd)


@pytest.mark.parametrize('unit, family', [
    ('adu', 'counts'), ('DN', 'counts'), ('electron', 'counts'),
    ('ct', 'counts'), ('adu / s', 'rate'), ('electron / s', 'rate'),
    ('MJy / sr', 'surface brightness'), ('uJy / arcsec2', 'surface brightness'),
    ('erg / (s cm2 AA arcsec2)', 'surface brightness'),
    ('W / (m2 Hz sr)', 'surface brightness'), ('Jy', 'flux density'),
    ('mJy / pix', 'flux density'), ('erg / (s cm2 AA)', 'flux density'),
    ('K', 'other'), ('mag', 'other'), ('adu / arcsec2', 'other')])
def test_unit_families(unit, family):
    assert unit_family(u.Unit(unit)) == family


def _corner_area(wcs, x, y):
    """The solid angle of the pixel polygon through its four corners
    (spherical excess of two triangles): an independent reference."""
    corners = np.array([[x - .5, y - .5], [x + .5, y - .5], [x + .5, y + .5],
                        [x - .5, y + .5]])
    lon, lat = np.radians(wcs.all_pix2world(corners, 0)).T
    r = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon),
                  np.sin(lat)], -1)

    def triangle(a, b, c):  # Van Oosterom & Strackee
        num = abs(np.dot(a, np.cross(b, c)))
        den = 1 + a @ b + b @ c + c @ a
        return 2 * math.atan2(num, den)

    return triangle(r[0], r[1], r[2]) + triangle(r[0], r[2], r[3])


def test_pixel_solid_angle_from_keywords_and_wcs():
    omega, source = pixel_solid_angle({'PIXAR_SR': 2e-13, 'PIXAR_A2': 9.0},
                                      None, [1.0, 2.0], [1.0, 2.0])
    assert source == 'PIXAR_SR' and omega.unit == u.sr
    np.testing.assert_array_equal(omega.value, 2e-13)
    omega, source = pixel_solid_angle({'PIXAR_A2': 0.0036}, None, 1.0, 1.0)
    assert source == 'PIXAR_A2'
    assert omega.to_value(u.arcsec ** 2) == pytest.approx(0.0036)
    with (pytest.warns(AstropyUserWarning, match='PIXAR_SR=-1.0'),
          pytest.raises(ValueError, match='PIXAR_SR or PIXAR_A2.*WCS')):
        pixel_solid_angle({'PIXAR_SR': -1.0}, None, 1.0, 1.0)
    # a CAR grid at latitude 60 deg: pixels have half the nominal area
    w = WCS(naxis=2)
    w.wcs.ctype = ['GLON-CAR', 'GLAT-CAR']
    w.wcs.crval = [30.0, 0.0]
    w.wcs.cdelt = [-1e-3, 2e-3]  # non-square pixels
    w.wcs.crpix = [50.0, 1.0 - 60.0 / 2e-3]
    omega, source = pixel_solid_angle({}, w, [10.0, 80.0], [0.0, 40.0])
    assert source.startswith('WCS')
    nominal = math.radians(1e-3) * math.radians(2e-3)
    lat = np.radians([60.0, 60.0 + 40 * 2e-3])
    np.testing.assert_allclose(omega.value, nominal * np.cos(lat), rtol=1e-6)
    # a distorted (SIP) TAN grid: against the corner polygon (the two
    # approximations of the curved pixel differ by 3e-5 here, where the
    # distortion changes the pixel area by 7% across the frame)
    sip = WCS(naxis=2)
    sip.wcs.ctype = ['RA---TAN-SIP', 'DEC--TAN-SIP']
    sip.wcs.crval = [150.0, 2.0]
    sip.wcs.crpix = [500.0, 500.0]
    sip.wcs.cd = [[-1.4e-5, 2e-7], [3e-7, 1.4e-5]]
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[2, 0], a[0, 2], b[1, 1], a[3, 0] = 2e-5, -1e-5, 3e-5, 1e-8
    from astropy.wcs import Sip
    sip.sip = Sip(a, b, None, None, sip.wcs.crpix)
    xs, ys = np.array([0.0, 300.0, 999.0]), np.array([0.0, 800.0, 999.0])
    omega = pixel_solid_angle({}, sip, xs, ys)[0].value
    ref = [_corner_area(sip, x, y) for x, y in zip(xs, ys, strict=True)]
    np.testing.assert_allclose(omega, ref, rtol=1e-4)
    assert omega.max() / omega.min() > 1.05  # the distortion shows
    # the test helper's reference agrees
    np.testing.assert_allclose(wcs_pixel_area(sip, xs, ys), ref, rtol=1e-4)


def test_flux_conversion_per_family():
    c = flux_conversion(u.MJy / u.sr, meta={'PIXAR_SR': 1e-13},
                        x=[1.0, 2.0], y=[1.0, 2.0])
    assert c.unit == u.Jy and not c.mean
    np.testing.assert_allclose(c.factor, 1e-13 * 1e6)
    assert 'PIXAR_SR' in c.note
    # ask for mJy; or for the mean surface brightness
    c = flux_conversion(u.MJy / u.sr, flux_unit='mJy',
                        meta={'PIXAR_A2': 0.0036}, x=[1.0], y=[1.0])
    omega = (0.0036 * u.arcsec ** 2).to_value(u.sr)
    assert c.factor[0] == pytest.approx(omega * 1e9)
    c = flux_conversion(u.MJy / u.sr, flux_unit='uJy / arcsec2', x=[1.0],
                        y=[1.0])
    assert c.mean and c.unit == u.uJy / u.arcsec ** 2
    assert c.factor[0] == pytest.approx((1 * u.MJy / u.sr).to_value(
        u.uJy / u.arcsec ** 2))
    assert c.apply([10.0], n_pix=[4.0])[0] == pytest.approx(
        2.5 * c.factor[0])
    # per wavelength needs the pivot wavelength
    with pytest.raises(u.UnitsError, match='PHOTPLAM'):
        flux_conversion(u.MJy / u.sr, flux_unit='erg / (s cm2 AA)',
                        meta={'PIXAR_SR': 1e-13}, x=[1.0], y=[1.0])
    c = flux_conversion(u.MJy / u.sr, flux_unit='erg / (s cm2 AA)',
                        meta={'PIXAR_SR': 1e-13, 'PHOTPLAM': 35500.0},
                        x=[1.0], y=[1.0])
    fnu = 1e-7 * u.Jy
    assert c.factor[0] == pytest.approx(fnu.to_value(
        'erg / (s cm2 AA)', u.spectral_density(35500 * u.AA)))
    # flux density per pixel is summed as it is
    c = flux_conversion(u.mJy / u.pix, x=[1.0], y=[1.0])
    assert c.unit == u.mJy and c.factor[0] == 1.0
    c = flux_conversion(u.mJy / u.pix, flux_unit='Jy', x=[1.0], y=[1.0])
    assert c.factor[0] == pytest.approx(1e-3)
    # counts stay counts; a flux unit for them is refused
    c = flux_conversion(u.adu, x=[1.0], y=[1.0])
    assert c.unit == u.adu and c.note is None
    with pytest.raises(u.UnitsError, match='adu.*not a flux density'):
        flux_conversion(u.adu, flux_unit='Jy', x=[1.0], y=[1.0])
    with pytest.raises(u.UnitsError, match='flux_unit=K'):
        flux_conversion(u.MJy / u.sr, flux_unit='K', x=[1.0], y=[1.0])
    with pytest.raises(ValueError, match='flux_unit'):
        flux_conversion(u.MJy / u.sr, flux_unit='not a unit', x=[1.0],
                        y=[1.0])


def test_spitzer_mosaic_wcs_pixel_area(tmp_path):
    product = spitzer_mosaic()
    path = tmp_path / 'mosaic.fits'
    product.write(path, np.random.default_rng(1))
    ccd = read_frame(path)
    assert ccd.unit == u.MJy / u.sr and ccd.uncertainty is None
    assert ccd.wcs.wcs.ctype[0] == 'GLON-CAR'
    omega, source = pixel_solid_angle(ccd.meta, ccd.wcs, product.x,
                                      product.y)
    assert source.startswith('WCS')
    nominal = (0.6 * u.arcsec).to_value(u.rad) ** 2
    lat = np.radians(ccd.wcs.pixel_to_world_values(product.x, product.y)[1])
    np.testing.assert_allclose(omega.value, nominal * np.cos(lat),
                               rtol=1e-6)


def test_gain_is_electrons_per_data_unit():
    mjy_sr = u.MJy / u.sr
    # a bare number for data not in counts is refused, naming both units
    with pytest.raises(ValueError, match=r'gain=3\.7 is a bare number but '
                       r'the data are in MJy / sr.*electron / \(MJy / sr\)'):
        electrons_per_data_unit(mjy_sr, gain=3.7, gain_is_explicit=True)
    with pytest.raises(ValueError, match='data are in Jy'):
        electrons_per_data_unit(u.Jy, gain=1e5, gain_is_explicit=True)
    # a Quantity in electrons per data unit is the effective gain
    g, why = electrons_per_data_unit(mjy_sr,
                                     gain=31.3 * u.electron / mjy_sr)
    assert g == pytest.approx(31.3) and 'electron / (MJy / sr)' in why
    g, _ = electrons_per_data_unit(mjy_sr,
                                   gain=31.3e-6 * u.electron / (u.Jy / u.sr))
    assert g == pytest.approx(31.3)
    with pytest.raises(u.UnitsError, match=r'electron / \(MJy / sr\)'):
        electrons_per_data_unit(mjy_sr, gain=3.7 * u.electron / u.adu)
    # counts take a detector gain as a number or a Quantity in e- per
    # ADU, DN or count; a rate multiplies it by the exposure time
    assert electrons_per_data_unit(u.DN, gain=2.0 * u.electron / u.DN)[0] \
        == 2.0
    assert electrons_per_data_unit(u.adu / u.s, gain=2.0 * u.electron
                                   / u.count, exptime=10.0)[0] == 20.0
    assert electrons_per_data_unit(
        u.adu / u.s, gain=20.0 * u.electron / (u.adu / u.s))[0] == 20.0
    # a header gain in e-/DN does not apply to MJy/sr ...
    g, why = electrons_per_data_unit(mjy_sr, gain=3.7)
    assert g is None and 'header gain 3.7' in why
    # ... but Spitzer's keywords give the conversion, and say so
    hdr = {'GAIN': 3.7, 'EXPTIME': 10.4, 'FLUXCONV': 0.1069}
    g, why = electrons_per_data_unit(mjy_sr, gain=3.7, meta=hdr,
                                     exptime=10.4)
    assert g == pytest.approx(3.7 * 10.4 / 0.1069)
    assert why.startswith('GAIN x EXPTIME / FLUXCONV')
    # in other surface-brightness units it scales with the unit
    g_kjy, _ = header_effective_gain(hdr, u.kJy / u.sr)
    assert g_kjy == pytest.approx(g / 1000)
    assert header_effective_gain(hdr, u.adu) is None
    assert header_effective_gain({'GAIN': 3.7, 'FLUXCONV': 0.1},
                                 mjy_sr) is None  # no exposure time


def test_photometer_gain_rules_on_a_mosaic(tmp_path):
    from photutils.aperture import CircularAperture

    from ccdphot_ext import SkyEstimate, photometer

    product = spitzer_mosaic()
    path = tmp_path / 'mosaic.fits'
    product.write(path, np.random.default_rng(2))
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 3.0)
    sky = SkyEstimate.from_image(ccd, method='median')
    with pytest.raises(ValueError, match=r'bare number.*MJy / sr.*'
                       r'electron / \(MJy / sr\)'):
        photometer(ccd, aps, sky, gain=3.7)
    # the header's GAIN x EXPTIME / FLUXCONV, named
    t = photometer(ccd, aps, sky)
    g_eff = 3.7 * 10.4 / 0.1069
    assert t.meta['gain'] == pytest.approx(g_eff)
    assert 'GAIN x EXPTIME / FLUXCONV' in t.meta['gain_source']
    # a gain with its unit wins
    t2 = photometer(ccd, aps, sky, gain=31.3 * u.electron / (u.MJy / u.sr))
    assert t2.meta['gain'] == pytest.approx(31.3)
    ratio = (t2['var_source'] / t['var_source']).to_value(u.one)
    np.testing.assert_allclose(ratio[np.isfinite(ratio)], g_eff / 31.3)


def test_gain_and_unit_text_of_the_command_line():
    import argparse

    from ccdphot_ext.cli.common import dq_bits_type, gain_type, unit_type
    from ccdphot_ext.io.units import parse_quantity, parse_unit

    assert parse_unit('electron / (MJy / sr)') == u.electron / (u.MJy / u.sr)
    assert parse_unit('erg / (s cm2 AA arcsec2)').is_equivalent(
        u.erg / u.s / u.cm ** 2 / u.AA / u.arcsec ** 2)
    assert parse_quantity('2.5') == 2.5
    assert parse_quantity('1e3 electron / adu') == 1e3 * u.electron / u.adu
    with pytest.raises(ValueError, match='not a unit'):
        parse_unit('electron / (MJy / __import__)')
    gain = gain_type('31.3 electron / (MJy / sr)')
    assert gain.to_value(u.electron / (u.MJy / u.sr)) == pytest.approx(31.3)
    for bad, why in (('two', 'not a number'), ('-2 electron / adu',
                                                'positive'),
                     ('3 foo', 'not a unit')):
        with pytest.raises(argparse.ArgumentTypeError, match=why):
            gain_type(bad)
    assert unit_type('MJy / sr') == u.MJy / u.sr
    assert dq_bits_type('5') == 5
    # names are kept as text: read by each file's mission
    assert dq_bits_type('do_not_use+HOT') == 'DO_NOT_USE+HOT'
    with pytest.raises(argparse.ArgumentTypeError, match='unknown DQ'):
        dq_bits_type('BAD')
