"""
Photometry of calibrated images: surface brightness summed into flux
densities, AB magnitudes and zero-point keywords, the gain in electrons per
data unit, DQ masks and the budget from variance arrays; fluxes right in
value and unit and error bars checked by Monte Carlo in every unit family
(counts, rates, surface brightness, flux density per pixel).
"""

import math
import os
import re
import subprocess
import sys
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from calibrated_products import (
    as_flux_density,
    hst_image,
    jwst_image,
    spitzer_mosaic,
)
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    aperture_photometry,
)

from ccdphot_ext import (
    BudgetOptions,
    DetectorParameters,
    SkyEstimate,
    VarianceArrays,
    measure,
    photometer,
    read_frame,
)
from ccdphot_ext.utils.stats import MAD_TO_STD

pytest.importorskip('stdatamodels')

MJY_SR = u.MJy / u.sr


def _true_sums(product, apertures, mask=None, factor=1.0):
    """photutils' exact sums of the noiseless model less the true sky over
    the usable pixels, each pixel times ``factor`` (a number or a map: the
    data unit to the flux unit): an independent reference."""
    return np.asarray(aperture_photometry(
        (product.model - product.sky) * factor, apertures, mask=mask,
        method='exact')['aperture_sum'])


def _sky(ccd):
    """A whole-frame median sky without a source mask (these small frames
    are mostly sky); the masked pixels it leaves out are announced."""
    if ccd.mask is None or not ccd.mask.any():
        return SkyEstimate.from_image(ccd, method='median',
                                      mask_sources=False)
    with pytest.warns(AstropyUserWarning, match='masked/NaN/inf pixels '
                      'excluded from the sky'):
        return SkyEstimate.from_image(ccd, method='median',
                                      mask_sources=False)


def _jump_summed():
    """The warning of photometry on `jwst_image` with the default DQ bits:
    its JUMP_DET pixel (not masked on JWST) is summed inside star 1."""
    return pytest.warns(AstropyUserWarning,
                        match=r'DQ \(JWST\) flags 1 pixel.*4 \(JUMP_DET\) in 1 row')


def _frame(product, data, *, arrays=True):
    """The product as a CCDData (its variance arrays, DQ mask and header),
    as read_frame gives it, without a file."""
    mask = None if product.dq is None else (product.dq & 1) > 0
    unc = VarianceArrays(arrays=product.variances) if arrays else None
    return CCDData(data, unit=product.unit, uncertainty=unc, mask=mask,
                   meta=dict(product.header, **product.primary),
                   wcs=product.wcs)


def _pulls(product, apertures, factor, n, seed, *, arrays=True, **kwargs):
    """(measured - true) / error of every star over ``n`` noise
    realizations (a local sky in a 6-10 pixel annulus, sigma-clipped,
    measured on each), the measured fluxes, the truth and the last
    table."""
    rng = np.random.default_rng(seed)
    mask = None if product.dq is None else (product.dq & 1) > 0
    truth = _true_sums(product, apertures, mask, factor)
    annulus = CircularAnnulus(apertures.positions, 6.0, 10.0)
    sums, errs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        for _ in range(n):
            ccd = _frame(product, product.realize(rng), arrays=arrays)
            sky = SkyEstimate.from_annulus(ccd, annulus)
            table = photometer(ccd, apertures, sky, **kwargs)
            sums.append(table['aperture_sum'].value)
            errs.append(table['aperture_sum_err'].value)
    sums, errs = np.array(sums), np.array(errs)
    return (sums - truth) / errs, sums, truth, table


def _check_pulls(pulls):
    pulls = pulls.ravel()
    assert abs(pulls.mean()) < 0.05, pulls.mean()
    assert abs(pulls.std() - 1) < 0.05, pulls.std()


# -- surface brightness to flux density -------------------------------------

@pytest.fixture(scope='module')
def jwst(tmp_path_factory):
    product = jwst_image()
    path = tmp_path_factory.mktemp('jwst') / 'image_i2d.fits'
    data = product.write(path, np.random.default_rng(11))
    return product, path, data


def test_surface_brightness_sums_are_flux_densities(jwst):
    product, path, data = jwst
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    sky = _sky(ccd)
    with _jump_summed():
        t = photometer(ccd, aps, sky)
    pixar = product.header['PIXAR_SR']
    assert t['aperture_sum'].unit == u.Jy
    assert t['aperture_sum_err'].unit == u.Jy
    assert t['var_sky'].unit == u.Jy ** 2
    # the sky levels in the same unit: one pixel's flux density
    assert t['sky'].unit == u.Jy
    np.testing.assert_allclose(t['sky'].value, sky.value * pixar * 1e6,
                               rtol=1e-12)
    # an independent reference: photutils on the same pixels, times the
    # pixel solid angle
    ref = aperture_photometry(np.asarray(data, np.float32) - sky.value,
                              aps, mask=ccd.mask, method='exact')
    np.testing.assert_allclose(t['aperture_sum'].to_value(u.Jy),
                               ref['aperture_sum'] * pixar * 1e6,
                               rtol=1e-6)
    assert 'PIXAR_SR' in t.meta['flux_conversion']
    assert t.meta['flux_unit'] == 'Jy' and t.meta['data_unit'] == 'MJy / sr'
    # measure gives the same numbers, in the same unit
    m = measure(ccd, aps[5], sky)
    assert m.unit == u.Jy
    assert m.flux == pytest.approx(t['aperture_sum'][5].value, rel=1e-12)
    assert m.flux_err == pytest.approx(t['aperture_sum_err'][5].value,
                                       rel=1e-12)
    assert m.compare_numpy().meta['max_abs_rel_diff'] < 1e-10
    # another flux density on request
    with _jump_summed():
        t_mjy = photometer(ccd, aps, sky, flux_unit='mJy')
    np.testing.assert_allclose(t_mjy['aperture_sum'].to_value(u.Jy),
                               t['aperture_sum'].value, rtol=1e-12)
    assert t_mjy['aperture_sum'].unit == u.mJy


def test_mean_surface_brightness_is_one_keyword_away(jwst):
    product, path, _ = jwst
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    sky = _sky(ccd)
    with _jump_summed():
        t = photometer(ccd, aps, sky)
    with _jump_summed():
        mean = photometer(ccd, aps, sky, flux_unit='MJy / sr')
    omega = product.header['PIXAR_SR']
    n_pix = t['n_pix'].value
    np.testing.assert_allclose(
        mean['aperture_sum'].to_value(MJY_SR),
        t['aperture_sum'].to_value(u.Jy) / 1e6 / omega / n_pix, rtol=1e-10)
    np.testing.assert_allclose(mean['snr'], t['snr'], rtol=1e-12)
    assert 'mean surface brightness' in mean.meta['flux_conversion']
    # AB magnitudes per square arcsecond
    assert mean.meta['mag_system'] == 'AB per arcsec2'
    sb = mean['aperture_sum'].to_value(u.Jy / u.arcsec ** 2)
    good = sb > 0
    np.testing.assert_allclose(mean['mag'][good],
                               -2.5 * np.log10(sb[good] / 3631), rtol=1e-12)
    m = measure(ccd, aps[5], sky, flux_unit='uJy / arcsec2')
    assert m.unit == u.uJy / u.arcsec ** 2
    assert m.flux == pytest.approx(
        mean['aperture_sum'][5].to_value(m.unit), rel=1e-10)
    assert m.compare_numpy().meta['max_abs_rel_diff'] < 1e-10


def test_a_flux_unit_the_data_cannot_reach_is_refused(jwst):
    product, path, _ = jwst
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    sky = _sky(ccd)
    with pytest.raises(u.UnitsError, match='flux_unit=K'):
        photometer(ccd, aps, sky, flux_unit='K')
    counts = CCDData(np.ones((20, 20)), unit='adu')
    with pytest.warns(AstropyUserWarning, match='std is 0'):
        flat = SkyEstimate.from_image(counts, method='mean')
    with pytest.raises(u.UnitsError, match='data in adu'):
        photometer(counts, CircularAperture((10, 10), 3), flat,
                   flux_unit='Jy')


def test_wcs_pixel_area_at_each_aperture():
    """No PIXAR keyword: the WCS area where each aperture is. At galactic
    latitude 60 deg a CAR pixel covers half its nominal solid angle; the
    nominal area would double every flux."""
    product = spitzer_mosaic(latitude=60.0, shape=(48, 64), n_stars=12)
    aps = CircularAperture(np.c_[product.x, product.y], 5.0)
    pulls, sums, _, t = _pulls(product, aps, product.extra['omega'] * 1e6,
                               30, 3, arrays=False)
    assert t['aperture_sum'].unit == u.Jy
    assert t.meta['flux_conversion'].startswith(
        'MJy / sr x pixel solid angle (WCS pixel area at each position')
    # against the true fluxes (the model's per-pixel solid angles; r = 5
    # holds all of a sigma 1.1 star)
    mean = sums.mean(axis=0)
    err = sums.std(axis=0) / math.sqrt(len(sums))
    truth = product.flux.to_value(u.Jy)
    assert np.all(np.abs(mean - truth) < 4 * err + 1e-3 * truth)
    nominal = (0.6 * u.arcsec).to_value(u.rad) ** 2
    omega = product.extra['omega']
    assert omega.mean() / nominal == pytest.approx(0.5, rel=1e-3)


# -- magnitudes ---------------------------------------------------------------

def test_flux_densities_get_ab_magnitudes_not_divided_by_exptime(tmp_path):
    """A Spitzer mosaic has EXPTIME; MJy/sr are not counts: AB magnitudes
    of the flux density, never -2.5 log10(F / EXPTIME)."""
    product = spitzer_mosaic()
    path = tmp_path / 'mosaic.fits'
    product.write(path, np.random.default_rng(4))
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 3.0)
    t = photometer(ccd, aps, _sky(ccd))
    flux = t['aperture_sum'].to_value(u.Jy)
    good = flux > 0
    np.testing.assert_allclose(t['mag'][good],
                               -2.5 * np.log10(flux[good] / 3631.0),
                               rtol=1e-12)
    assert t.meta['mag_system'] == 'AB' and t.meta['zeropoint'] is None
    assert any('3631 Jy' in note for note in t.meta['notes'])
    assert t.meta['exptime'] == 10.4  # known, and rightly not used


@pytest.mark.parametrize('unit, divide', [('ELECTRONS', True),
                                          ('ELECTRONS/S', False)])
def test_counts_and_rates_with_hst_zero_points(tmp_path, unit, divide):
    product = hst_image(unit=unit)
    path = tmp_path / 'flt.fits'
    product.write(path, np.random.default_rng(5))
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    t = photometer(ccd, aps, _sky(ccd))
    assert t['aperture_sum'].unit == product.unit
    zp = -2.5 * math.log10(1.5e-19) - 5 * math.log10(6000.0) - 2.408
    rate = t['aperture_sum'].value / (500.0 if divide else 1.0)
    good = rate > 0
    np.testing.assert_allclose(t['mag'][good],
                               -2.5 * np.log10(rate[good]) + zp, rtol=1e-12)
    assert t.meta['zeropoint'] == pytest.approx(zp)
    assert t.meta['zeropoint_source'] == 'PHOTFLAM, PHOTPLAM'
    assert t.meta['mag_system'] == 'AB'
    # the zero point argument wins, and says so
    t0 = photometer(ccd, aps, _sky(ccd),
                    zeropoint=25.0)
    np.testing.assert_allclose(t0['mag'][good],
                               -2.5 * np.log10(rate[good]) + 25.0,
                               rtol=1e-12)
    assert t0.meta['zeropoint_source'] == 'argument'


def test_other_zero_point_keywords_and_units():
    from ccdphot_ext import magnitudes

    flux = np.array([100.0, -1.0])
    # PHOTFLAM with PHOTZPT only: ST magnitudes of the rate
    m = magnitudes(flux, u.electron / u.s,
                   meta={'PHOTFLAM': 2e-18, 'PHOTZPT': -21.1})
    assert m.system == 'ST' and m.zeropoint_source == 'PHOTFLAM, PHOTZPT'
    assert m.mag[0] == pytest.approx(-2.5 * math.log10(100 * 2e-18) - 21.1)
    assert np.isnan(m.mag[1])
    # JWST count rates with PHOTMJSR: AB through PIXAR_SR
    m = magnitudes(flux, u.DN / u.s, meta={'PHOTMJSR': 0.4,
                                           'PIXAR_SR': 2e-14})
    jy = 100 * 0.4 * 1e6 * 2e-14
    assert m.mag[0] == pytest.approx(-2.5 * math.log10(jy / 3631))
    assert m.zeropoint_source == 'PHOTMJSR, PIXAR_SR'
    # counts without an exposure time are not divided, and say so
    m = magnitudes(flux, u.adu)
    assert m.mag[0] == pytest.approx(-5.0) and 'not divided' in m.note
    # a flux density per wavelength: AB at the pivot, else ST
    flam = u.erg / u.s / u.cm ** 2 / u.AA
    m = magnitudes([1e-17], flam, meta={'PHOTPLAM': 5000.0})
    fnu = (1e-17 * flam).to_value(u.Jy, u.spectral_density(5000 * u.AA))
    assert m.system == 'AB'
    assert m.mag[0] == pytest.approx(-2.5 * math.log10(fnu / 3631))
    m = magnitudes([1e-17], flam)
    assert m.system == 'ST'
    assert m.mag[0] == pytest.approx(-2.5 * math.log10(1e-17) - 21.10)
    # any other unit: an instrumental magnitude, with a note
    m = magnitudes(flux, u.K)
    assert m.system == 'instrumental' and 'not a flux density' in m.note


# -- DQ and variance arrays ---------------------------------------------------

def test_do_not_use_pixels_are_masked_and_flagged(jwst):
    """Garbage under DO_NOT_USE: masked, flag 2; with the mask off (dq_bits
    0) it is summed, as it was before DQ was read."""
    product, path, data = jwst
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    bad = (product.dq & 1) > 0
    ccd = read_frame(path)
    sky = _sky(ccd)
    with _jump_summed():
        t = photometer(ccd, aps, sky)
    touched = np.array([np.any(bad & (m.to_image(bad.shape) > 0))
                        for m in aps.to_mask(method='exact')])
    assert touched.sum() == 2
    np.testing.assert_array_equal((t['flags'] & 2) > 0, touched)
    truth = _true_sums(product, aps, bad) * product.header['PIXAR_SR'] * 1e6
    pulls = (t['aperture_sum'].value - truth) / t['aperture_sum_err'].value
    assert np.all(np.abs(pulls) < 4)
    raw = read_frame(path, dq_bits=0)
    with pytest.warns(AstropyUserWarning,
                      match=r'7 pixel.*1 \(DO_NOT_USE\) in 2 row'):
        t0 = photometer(raw, aps, _sky(raw))
    assert np.all(t0['aperture_sum'][touched] > 100 * t['aperture_sum'][
        touched])


def test_budget_terms_come_from_the_variance_arrays(jwst):
    product, path, data = jwst
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    sky = _sky(ccd)
    with pytest.warns(AstropyUserWarning, match=r'gain=5 is not used: the '
                      r'variance arrays of the frame \(VAR_POISSON'), \
            _jump_summed():
        t = photometer(ccd, aps, sky, gain=5.0 * u.electron / MJY_SR)
    factor2 = (product.header['PIXAR_SR'] * 1e6) ** 2
    # each array's sum(w**2 V) over the usable pixels, with numpy
    masks = aps.to_mask(method='exact')
    usable = ~ccd.mask
    sums = {}
    for name, values in ccd.uncertainty.arrays.items():
        sums[name] = np.array([np.sum(m.to_image(values.shape) ** 2
                                      * np.where(usable, values, 0.0))
                               for m in masks]) * factor2
    np.testing.assert_allclose(
        (t['var_source'] + t['var_sky']).to_value(u.Jy ** 2),
        sums['VAR_POISSON'], rtol=1e-9)
    np.testing.assert_allclose(t['var_rnoise'].to_value(u.Jy ** 2),
                               sums['VAR_RNOISE'], rtol=1e-9)
    np.testing.assert_allclose(t['var_flat'].to_value(u.Jy ** 2),
                               sums['VAR_FLAT'], rtol=1e-9)
    # the sky share: sum(w**2) times the median VAR_POISSON of the frame
    level = np.median(ccd.uncertainty.arrays['VAR_POISSON'][usable])
    w2 = np.array([np.sum(m.to_image(usable.shape) ** 2 * usable)
                   for m in masks])
    np.testing.assert_allclose(t['var_sky'].to_value(u.Jy ** 2),
                               np.minimum(w2 * level * factor2,
                                          sums['VAR_POISSON']), rtol=1e-9)
    total = sum(t[c].to_value(u.Jy ** 2) for c in
                ('var_sky', 'var_source', 'var_sky_mean', 'var_rnoise',
                 'var_flat'))
    np.testing.assert_allclose(t['aperture_sum_err'].to_value(u.Jy),
                               np.sqrt(total), rtol=1e-12)
    # named in meta; the gain is not used for the source term
    assert t.meta['variance_arrays']['var_rnoise'] == 'VAR_RNOISE'
    assert t.meta['variance_arrays']['var_source'].startswith('VAR_POISSON')
    assert t.meta['uncertainty_model'] == 'variance arrays'
    assert any('no source term from a gain' in n for n in t.meta['notes'])
    # measure: the same terms, by name
    m = measure(ccd, aps[4], sky)
    assert set(m.budget.terms) == {'sky', 'source', 'sky_mean', 'rnoise',
                                   'flat'}
    assert m.budget.terms['rnoise'] == pytest.approx(
        t['var_rnoise'][4].value, rel=1e-12)
    assert m.compare_numpy().meta['max_abs_rel_diff'] < 1e-10
    # an explicit uncertainty replaces the arrays
    # (a background map in MJy/sr with no gain: the source term is absent)
    with pytest.warns(AstropyUserWarning, match='no source photon noise'), \
            _jump_summed():
        plain = photometer(ccd, aps, sky, uncertainty=np.sqrt(
            ccd.uncertainty.array))
    assert 'var_rnoise' not in plain.colnames
    assert 'variance_arrays' not in plain.meta


def test_hst_err_is_split_into_source_and_sky(tmp_path):
    product = hst_image()
    path = tmp_path / 'flt.fits'
    product.write(path, np.random.default_rng(6))
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    t = photometer(ccd, aps, _sky(ccd))
    err2 = ccd.uncertainty.arrays['ERR']
    ref = aperture_photometry(err2, aps, method='exact')  # w, not w**2
    assert np.all((t['var_sky'] + t['var_source']).value
                  <= ref['aperture_sum'] * (1 + 1e-9))
    assert 'var_rnoise' not in t.colnames and 'var_flat' not in t.colnames
    assert t.meta['variance_arrays']['var_sky'].startswith('ERR')
    # bright stars: the source share dominates
    assert t['var_source'][-1] > 10 * t['var_sky'][-1]


def test_copies_and_scaled_frames_keep_the_total_error(tmp_path):
    """An HST ERR is a total error: a copy, a pickle or a scaled frame
    must not take it for a background map and add the source again."""
    import copy
    import pickle

    product = hst_image()
    path = tmp_path / 'flt.fits'
    product.write(path, np.random.default_rng(6))
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    sky = _sky(ccd)
    ref = photometer(ccd, aps, sky)
    assert ref.meta['uncertainty_model'] == 'variance arrays'
    for frame in (copy.deepcopy(ccd), ccd.copy(),
                  pickle.loads(pickle.dumps(ccd)), ccd.multiply(1.0)):
        t = photometer(frame, aps, sky)
        assert t.meta['uncertainty_model'] == 'variance arrays'
        np.testing.assert_array_equal(t['aperture_sum_err'],
                                      ref['aperture_sum_err'])
    # twice the data: twice every sum and error (the sky scaled with it)
    t = photometer(ccd.multiply(2.0), aps, SkyEstimate(
        2 * sky.value, 2 * sky.std, sky.n_pix,
        error_on_mean=2 * sky.error_on_mean, unit=sky.unit))
    np.testing.assert_allclose(t['aperture_sum'], 2 * ref['aperture_sum'],
                               rtol=1e-12)
    np.testing.assert_allclose(t['aperture_sum_err'],
                               2 * ref['aperture_sum_err'], rtol=1e-6)


def test_blank_sky_noise_scales_the_background_arrays(jwst):
    from ccdphot_ext import ApertureNoise

    product, path, _ = jwst
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 3.0)
    sky = _sky(ccd)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        noise = ApertureNoise.from_blank_apertures(ccd, sky, seed=1,
                                                   sizes=[2, 3, 4])
    with _jump_summed():
        t = photometer(ccd, aps, sky, noise=noise)
    with _jump_summed():
        plain = photometer(ccd, aps, sky)
    assert 'var_rnoise' in t.colnames and 'var_flat' in t.colnames
    # each blank sum against its own arrays' variance: this product's noise
    # is drawn from its arrays, white, so the ratio is 1
    assert noise.array_ratio.shape == noise.n_pix.shape
    assert np.all(np.abs(noise.array_ratio - 1.0)
                  < 3.0 * noise.array_ratio_err)
    # the background arrays times R(N), the source and VAR_FLAT as they are
    ratio = noise.variance_ratio(np.asarray(t['n_pix']))
    for name in ('var_sky', 'var_rnoise'):
        np.testing.assert_allclose(t[name].value, plain[name].value * ratio,
                                   rtol=1e-12)
    for name in ('var_source', 'var_flat'):
        np.testing.assert_array_equal(t[name].value, plain[name].value)
    m = measure(ccd, aps[2], sky, noise=noise)
    assert m.budget.terms['sky'] == pytest.approx(t['var_sky'][2].value)
    assert m.compare_numpy().meta['max_abs_rel_diff'] < 1e-10


def test_a_budget_without_the_source_term_is_warned(tmp_path):
    """MJy/sr with GAIN and EXPTIME but no FLUXCONV: no gain can be
    derived, so no error bar holds the stars' photon noise: said."""
    product = spitzer_mosaic(seed=36)
    path = tmp_path / 'bcd.fits'
    product.write(path, np.random.default_rng(7))
    with fits.open(path, mode='update') as hdul:
        del hdul[0].header['FLUXCONV']
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 3.0)
    sky = _sky(ccd)
    match = (r'no source photon noise in any error bar: GAIN: data in '
             r'MJy / sr.*Pass gain=.*FLUXCONV.*uncertainty')
    with pytest.warns(AstropyUserWarning, match=match):
        t = photometer(ccd, aps, sky)
    assert np.all(np.isnan(t['var_source']))
    with pytest.warns(AstropyUserWarning, match=match):
        measure(ccd, aps[0], sky)
    # each way of giving it silences the warning (warnings are errors here)
    g_eff = product.extra['g_eff']
    t = photometer(ccd, aps, sky, gain=g_eff * u.electron / MJY_SR)
    assert np.all(np.isfinite(t['var_source']))
    assert np.nanmax(t['var_source'] / t['var_sky']) > 1  # bright stars
    photometer(read_frame(tmp_path / 'bcd.fits', unit='MJy/sr'), aps, sky,
               uncertainty=np.sqrt(sum(product.variances.values())),
               budget=BudgetOptions(uncertainty_model='total'))
    # data in ADU without a gain: noted, not warned (unchanged)
    t = photometer(CCDData(ccd.data, unit='adu'), aps, SkyEstimate(
        sky.value, sky.std, sky.n_pix))
    assert 'no gain' in t.meta['notes'][0]


@pytest.mark.parametrize('fault, ratio', [
    (None, 1.0), ('variance', 1 / 7.9), ('3 sigma', 1 / 3), ('ones', 7.9)])
def test_an_err_that_is_not_the_noise_is_warned(tmp_path, fault, ratio):
    """An ERR holding the variance, three sigma or an int16 placeholder of
    ones disagrees with the frame's own scatter: warned, named, noted."""
    product = hst_image(shape=(80, 96), seed=37)
    path = tmp_path / 'flt.fits'
    product.write(path, np.random.default_rng(8))
    with fits.open(path, mode='update') as hdul:
        err = hdul['ERR'].data.astype(float)
        if fault == 'variance':
            hdul['ERR'].data = (err ** 2).astype(np.float32)
        elif fault == '3 sigma':
            hdul['ERR'].data = (3 * err).astype(np.float32)
        elif fault == 'ones':
            hdul['ERR'].data = np.ones(err.shape, np.int16)
    ccd = read_frame(path)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    sky = _sky(ccd)
    # the independent reference: plain numpy's robust scatter, in units of
    # the file's ERR, of the pixels less the sky (a map too large) or of
    # the differences of pixels two columns apart (a map too small)
    sig = np.sqrt(ccd.uncertainty.array)
    if ratio <= 1:
        z = ((ccd.data - sky.value) / sig)[~ccd.mask]
    else:
        pair = ~ccd.mask[:, 2:] & ~ccd.mask[:, :-2]
        z = ((ccd.data[:, 2:] - ccd.data[:, :-2])[pair]
             / np.hypot(sig[:, 2:], sig[:, :-2])[pair])
    expected = MAD_TO_STD * np.median(np.abs(z - np.median(z)))
    assert expected == pytest.approx(ratio, rel=0.2)
    if fault is None:
        t = photometer(ccd, aps, sky)  # (warnings are errors here)
        assert not any('uncertainty check' in n for n in t.meta['notes'])
        return
    match = (r'uncertainty check: the variance arrays \(ERR\) of the frame '
             rf'is not the noise of the data: .* scatter {expected:.3g} ')
    # (error bars 8 times too small also make the global sky's residual
    # significant: that check may warn too)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        t = photometer(ccd, aps, sky)
        measure(ccd, aps[0], sky)
    said = [w for w in caught if w.category is AstropyUserWarning
            and re.search(match, str(w.message))]
    assert len(said) == 2  # once by each call
    assert any('uncertainty check' in n for n in t.meta['notes'])


# -- known truth in every unit family: values, units and pulls ---------------

N_STARS = dict(shape=(64, 96), n_stars=24)


def test_pulls_surface_brightness_with_variance_arrays():
    product = jwst_image(**N_STARS, seed=31)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    pulls, sums, truth, t = _pulls(product, aps,
                                   product.header['PIXAR_SR'] * 1e6, 80, 1)
    assert t['aperture_sum'].unit == u.Jy
    _check_pulls(pulls)


def test_pulls_flux_density_per_pixel():
    product = as_flux_density(jwst_image(**N_STARS, seed=32))
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    pulls, sums, truth, t = _pulls(product, aps, 1.0, 80, 2)
    assert t['aperture_sum'].unit == u.Jy  # Jy / pix summed over pixels
    assert t.meta['mag_system'] == 'AB'
    _check_pulls(pulls)


def test_pulls_surface_brightness_with_a_header_gain():
    """A Spitzer mosaic: no variance arrays, the source term from GAIN x
    EXPTIME / FLUXCONV, the sky term from the measured scatter."""
    product = spitzer_mosaic(**N_STARS, seed=33)
    aps = CircularAperture(np.c_[product.x, product.y], 3.0)
    pulls, sums, truth, t = _pulls(product, aps, product.extra['omega'] * 1e6,
                                   80, 3, arrays=False)
    assert 'FLUXCONV' in t.meta['gain_source']
    _check_pulls(pulls)


@pytest.mark.parametrize('unit', ['ELECTRONS', 'ELECTRONS/S'])
def test_pulls_counts_and_rates_with_err(unit):
    product = hst_image(unit=unit, **N_STARS, seed=34)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    pulls, sums, truth, t = _pulls(product, aps, 1.0, 80, 4)
    assert t['aperture_sum'].unit == product.unit
    _check_pulls(pulls)


def test_pulls_counts_without_arrays():
    """Electrons with no uncertainty: the source term F / 1 and the sky
    term from the measured scatter."""
    product = hst_image(**N_STARS, seed=35)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    pulls, sums, truth, t = _pulls(product, aps, 1.0, 80, 5, arrays=False)
    assert t.meta['gain'] == 1.0
    _check_pulls(pulls)


# -- the command line (the installed ccdphot) ---------------------------------

EXE = os.path.join(os.path.dirname(sys.executable), 'ccdphot')


def _ccdphot(*argv):
    return subprocess.run([EXE, *map(str, argv)], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope='module')
def mosaic_files(tmp_path_factory):
    product = spitzer_mosaic()
    d = tmp_path_factory.mktemp('mosaic')
    product.write(d / 'mosaic.fits', np.random.default_rng(9))
    QTable({'x': product.x, 'y': product.y}).write(d / 'stars.ecsv')
    return product, d


def test_cli_measures_a_mosaic_in_jy(mosaic_files):
    product, d = mosaic_files
    out = d / 'out.ecsv'
    proc = _ccdphot('measure', d / 'mosaic.fits', '--positions',
                    d / 'stars.ecsv', '--radius', 3, '-o', out)
    assert proc.returncode == 0, proc.stderr
    assert 'median flux' in proc.stdout and ' Jy' in proc.stdout
    assert 'MJy / sr' not in proc.stdout.split('rows')[1]
    # the gain in electrons per MJy/sr, and where it came from
    assert 'gain 359.963 e- / (MJy / sr)' in proc.stdout
    assert 'GAIN x EXPTIME / FLUXCONV' in proc.stdout
    t = QTable.read(out)
    assert t['aperture_sum'].unit == u.Jy and t.meta['mag_system'] == 'AB'
    ccd = read_frame(d / 'mosaic.fits')
    gain = DetectorParameters().resolve(ccd.meta, unit=ccd.unit).gain
    assert gain == pytest.approx(359.963, abs=5e-4)
    with pytest.warns(AstropyUserWarning, match='sources cover'):
        # ccdphot measure's default, with the gain it printed (the level
        # measured again without the apertures says it again)
        sky = SkyEstimate.from_image(ccd, gain=gain)
        ref = photometer(ccd, CircularAperture(np.c_[product.x, product.y],
                                               3.0), sky)
    np.testing.assert_allclose(t['aperture_sum'].value,
                               ref['aperture_sum'].value, rtol=1e-12)
    # the mean surface brightness on request
    proc = _ccdphot('measure', d / 'mosaic.fits', '--positions',
                    d / 'stars.ecsv', '--radius', 3, '--flux-unit',
                    'MJy / sr')
    assert proc.returncode == 0, proc.stderr
    assert 'mean surface brightness' in proc.stdout


def test_cli_gain_needs_its_unit_on_a_mosaic(mosaic_files):
    product, d = mosaic_files
    proc = _ccdphot('measure', d / 'mosaic.fits', '--positions',
                    d / 'stars.ecsv', '--radius', 3, '--gain', 3.7)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if 'error:' in line]
    assert len(errors) == 1  # one line, no traceback
    assert 'bare number' in errors[0] and 'MJy / sr' in errors[0]
    assert 'electron / (MJy / sr)' in errors[0]
    proc = _ccdphot('measure', d / 'mosaic.fits', '--positions',
                    d / 'stars.ecsv', '--radius', 3, '--gain',
                    '31.3 electron / (MJy / sr)')
    assert proc.returncode == 0, proc.stderr
    assert 'gain 31.3 e- / (MJy / sr) (argument' in proc.stdout


def test_cli_jwst_file_masks_dq_and_uses_the_arrays(jwst, tmp_path):
    product, path, _ = jwst
    QTable({'x': product.x, 'y': product.y}).write(tmp_path / 'pos.ecsv')
    proc = _ccdphot('measure', path, '--positions', tmp_path / 'pos.ecsv',
                    '--radius', 4, '-o', tmp_path / 'out.ecsv')
    assert proc.returncode == 0, proc.stderr
    assert 'variance arrays VAR_POISSON, VAR_RNOISE, VAR_FLAT' in proc.stdout
    assert ('6 pixel(s) masked (DQ bits 1 (DO_NOT_USE): JWST default)'
            in proc.stdout)
    assert 'DQ (JWST) flags 1 pixel(s) summed' in proc.stderr
    t = QTable.read(tmp_path / 'out.ecsv')
    assert {'var_rnoise', 'var_flat'} <= set(t.colnames)
    assert ((t['flags'] & 2) > 0).sum() == 2
    proc = _ccdphot('measure', path, '--positions', tmp_path / 'pos.ecsv',
                    '--radius', 4, '--dq-bits', 'DO_NOT_USE+JUMP_DET')
    assert proc.returncode == 0, proc.stderr
    assert '7 pixel(s) masked' in proc.stdout
    proc = _ccdphot('find', path, '--dq-bits', 'NOPE')
    assert proc.returncode == 2 and 'NOPE' in proc.stderr


def test_batch_of_jwst_files(tmp_path):
    """photometer_frames reads each file's arrays and DQ: Jy (or the flux
    unit asked for) in every unit-carrying column, DO_NOT_USE rows flagged,
    the array terms kept."""
    from ccdphot_ext import photometer_frames

    product = jwst_image()
    paths = []
    for k in range(3):
        paths.append(tmp_path / f'jw{k}_i2d.fits')
        product.write(paths[-1], np.random.default_rng(40 + k))
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        lc = photometer_frames(paths, aps, sky='median', flux_unit='uJy')
    assert (lc['status'] == 'ok').all()
    for name in ('aperture_sum', 'aperture_sum_err', 'sky'):
        assert lc[name].unit == u.uJy
    assert lc['var_rnoise'].unit == u.uJy ** 2
    assert lc.meta['parameters']['flux_unit'] == 'uJy'
    one = read_frame(paths[1])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        ref = photometer(one, aps, SkyEstimate.from_image(one,
                                                          method='median'),
                         flux_unit='uJy')
    rows = lc['frame'] == str(paths[1])
    np.testing.assert_allclose(lc['aperture_sum'][rows].value,
                               ref['aperture_sum'].value, rtol=1e-12)
    np.testing.assert_array_equal(lc['flags'][rows], ref['flags'])
    assert ((ref['flags'] & 2) > 0).sum() == 2


def test_a_right_uncertainty_on_a_sloping_sky_is_not_warned():
    # a sky sloping by +-6 pixel sigma across the frame: the pixels less
    # one level scatter 3.6 times sigma, the pixel differences 1
    from astropy.nddata import StdDevUncertainty

    from ccdphot_ext.photometry.uncertaintycheck import (
        uncertainty_scale_ratio,
    )
    from ccdphot_ext.utils.inputs import as_frame

    rng = np.random.default_rng(41)
    yy, xx = np.mgrid[:256, :256]
    img = rng.normal(100.0 + 30.0 * (xx - 127.5) / 127.5, 5.0)
    ccd = CCDData(img, unit='adu',
                  uncertainty=StdDevUncertainty(np.full(img.shape, 5.0)))
    sky = SkyEstimate.from_image(ccd)
    low, high, n = uncertainty_scale_ratio(as_frame(ccd), sky)
    assert low > 2.0  # the slope left in the pixels less one level
    assert high == pytest.approx(1.0, abs=0.03) and n == 256 * 256
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        t = photometer(ccd, CircularAperture([(60.0, 60.0)], 4.0), sky)
    assert not any('uncertainty check' in str(w.message) for w in caught)
    assert not any('uncertainty check' in n for n in t.meta['notes'])
