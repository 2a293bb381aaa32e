"""
The bad-input catalogue of ``docs/robustness.rst``, row by row.

Each row of `bad_input_catalogue.CATALOGUE` is one test here: Python rows
call the API and check the documented outcome (the exception and the
parameter its message names, the flag bit, the warning, or the correct
result); command-line rows run the installed ``ccdphot`` command on real
files written to a temporary folder and check the exit code, the single
stderr line and that no traceback is ever shown. The docs table is checked
to be exactly the one generated from the same list.
"""

import shlex
import shutil
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from bad_input_catalogue import (
    ASSUMPTIONS,
    CATALOGUE,
    assumptions_rst,
    catalogue_rst,
)
from clirun import ccdphot
from photutils.aperture import CircularAnnulus, CircularAperture

from ccdphot_ext import (
    ApertureNoise,
    BoxAperture,
    BudgetOptions,
    DetectorParameters,
    ErrorBudget,
    SigmaThreshold,
    SkyEstimate,
    measure,
    photometer,
)
from ccdphot_ext.background.skylift import aperture_pixels
from ccdphot_ext.io.fits import FrameReadError, read_frame

REPO = Path(__file__).resolve().parents[1]
DOCS_PAGE = REPO / 'docs' / 'robustness.rst'

EXCEPTIONS = {'ValueError': ValueError, 'TypeError': TypeError,
              'UnitsError': u.UnitsError, 'FrameReadError': FrameReadError,
              'AstropyUserWarning': AstropyUserWarning}

SHAPE = (40, 50)
BOX = np.s_[10:20, 10:20]


# ---------------------------------------------------------------- fixtures

def _frame():
    rng = np.random.default_rng(8)
    img = rng.normal(100.0, 5.0, SHAPE)
    img[13:17, 13:17] += 400.0
    return img


def _u16():
    """uint16 frame near 65535: sky 65500 +- 10, a saturated star."""
    rng = np.random.default_rng(16)
    data = np.clip(np.round(rng.normal(65500.0, 10.0, SHAPE)), 0, 65535)
    data[13:17, 13:17] = 65535
    return data.astype(np.uint16)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Real files for the file and command-line rows."""
    folder = tmp_path_factory.mktemp('bad_inputs')
    img = _frame()
    header = fits.Header({'BUNIT': 'adu', 'EXPTIME': 30.0})
    fits.PrimaryHDU(img.astype(np.float32), header).writeto(
        folder / 'frame.fits')
    fits.PrimaryHDU(np.ones((5, 5), np.float32)).writeto(
        folder / 'small.fits')
    fits.PrimaryHDU(np.ones((3, *SHAPE), np.float32), header).writeto(
        folder / 'cube.fits')
    (folder / 'empty.fits').write_bytes(b'')
    (folder / 'notes.fits').write_text('observing notes, not FITS\n' * 20)
    (folder / 'folder').mkdir()
    whole = (folder / 'frame.fits').read_bytes()
    (folder / 'cut.fits').write_bytes(whole[:2880 + 3000])
    bad = fits.Header({'BUNIT': 'adu', 'GAIN': 'abc'})
    fits.PrimaryHDU(img, bad).writeto(folder / 'badgain.fits')
    fits.PrimaryHDU(_u16(), fits.Header({'BUNIT': 'adu'})).writeto(
        folder / 'u16.fits')
    return folder


@pytest.fixture
def ctx(request, files):
    img = _frame()
    return SimpleNamespace(img=img, box=BoxAperture.from_slices(BOX),
                           sky=SkyEstimate.from_image(img), files=files,
                           request=request)


# ---------------------------------------------------------------- actions
# One function per Python row: it makes the call the docs table shows.
# Errors and warnings are checked by the harness; 'flag' actions return the
# flags after their own checks; 'result' actions check the result.

ACTIONS = {}


def action(key):
    def register(func):
        ACTIONS[key] = func
        return func
    return register


def _row_flags(table, index=0):
    return int(table['flags'][index])


@action('cube')
def _(c):
    measure(np.ones((3, *SHAPE)), c.box, c.sky)


@action('empty_array')
def _(c):
    measure(np.ones((0, 50)), c.box, c.sky)


@action('text_array')
def _(c):
    measure(np.array([['a', 'b'], ['c', 'd']]), c.box, c.sky)


@action('no_data')
def _(c):
    measure(None, c.box, c.sky)


@action('all_nan_sky')
def _(c):
    SkyEstimate.from_image(np.full(SHAPE, np.nan))


@action('all_nan_photometer')
def _(c):
    t = photometer(np.full(SHAPE, np.nan), c.box, c.sky, gain=2.0)
    assert np.isnan(t['aperture_sum'][0]) and t['n_pix'][0] == 0
    assert np.isnan(t['aperture_sum_err'][0]) and np.isnan(t['mag'][0])
    return _row_flags(t)


@action('all_nan_measure')
def _(c):
    measure(np.full(SHAPE, np.nan), c.box, c.sky)


@action('nan_in_box')
def _(c):
    img = c.img.copy()
    img[12, 12], img[13, 13] = np.nan, np.inf
    t = photometer(img, c.box, c.sky)
    cut = img[BOX] - c.sky.value
    good = np.isfinite(cut)
    assert t['n_pix'][0] == good.sum() == 98
    assert t['aperture_sum'][0] == pytest.approx(cut[good].sum(), rel=1e-12)
    return _row_flags(t)


@action('masked_in_box')
def _(c):
    mask = np.zeros(SHAPE, bool)
    mask[15, 10:13] = True
    t = photometer(c.img, c.box, c.sky, mask=mask)
    cut = c.img[BOX] - c.sky.value
    keep = ~mask[BOX]
    assert t['n_pix'][0] == 97
    assert t['aperture_sum'][0] == pytest.approx(cut[keep].sum(), rel=1e-12)
    return _row_flags(t)


@action('uncertainty_zero')
def _(c):
    for fill in (np.nan, np.inf):
        with pytest.raises(ValueError, match='uncertainty has no positive'):
            photometer(c.img, c.box, c.sky, uncertainty=np.full(SHAPE, fill))
    photometer(c.img, c.box, c.sky, uncertainty=np.zeros(SHAPE))


@action('numpy_masked_array')
def _(c):
    mask = np.zeros(SHAPE, bool)
    mask[15, 10:13] = True
    data = np.ma.MaskedArray(c.img.copy(), mask=mask.copy())
    t = photometer(data, c.box, c.sky)
    ref = photometer(c.img, c.box, c.sky, mask=mask)
    assert t['n_pix'][0] == 97
    assert t['aperture_sum'][0] == ref['aperture_sum'][0]
    assert np.array_equal(data.mask, mask)
    return _row_flags(t)


def _bad_sigma_case(c, value):
    sigma = np.full(SHAPE, 5.0)
    sigma[11, 11] = value
    t = photometer(c.img, c.box, c.sky, uncertainty=sigma)
    cut = c.img[BOX] - c.sky.value
    keep = np.isfinite(sigma[BOX]) & (sigma[BOX] > 0)
    assert t['n_pix'][0] == 99
    assert t['aperture_sum'][0] == pytest.approx(cut[keep].sum(), rel=1e-12)
    assert t['var_sky'][0] == pytest.approx(99 * 25.0, rel=1e-12)
    assert t['flags'][0] & 2
    return _row_flags(t)


@action('nan_in_uncertainty')
def _(c):
    _bad_sigma_case(c, np.inf)
    return _bad_sigma_case(c, np.nan)


@action('zero_in_uncertainty')
def _(c):
    return _bad_sigma_case(c, 0.0)


def _check_u16_photometry(data, table, sky):
    """The float64 numpy truth for a uint16 frame."""
    wide = np.asarray(data, dtype=np.float64)
    assert sky.value == pytest.approx(wide.mean(), rel=1e-14)
    assert sky.std == pytest.approx(wide.std(), rel=1e-12)
    cut = wide[BOX] - wide.mean()
    flux, var_sky = (u.Quantity(table[name][0]).value
                     for name in ('aperture_sum', 'var_sky'))
    assert flux == pytest.approx(cut.sum(), rel=1e-10, abs=1e-6)
    assert var_sky == pytest.approx(100 * wide.std() ** 2, rel=1e-12)


@action('uint16')
def _(c):
    data = _u16()
    sky = SkyEstimate.from_image(data, method='mean', mask_sources=False)
    t = photometer(CCDData(data, unit='adu'), c.box, sky,
                   detector=DetectorParameters(saturation=65535))
    _check_u16_photometry(data, t, sky)
    # a threshold mask on the same pixels: cut > 2 sigma, in float64
    tm = photometer(data, c.box, sky, threshold=SigmaThreshold(2.0, selection='pixel'))
    cut = data[BOX].astype(np.float64) - sky.value
    sel = cut > 2 * sky.std
    assert tm['n_pix'][0] == sel.sum() >= 16  # the star and a few noise peaks
    assert tm['aperture_sum'][0] == pytest.approx(cut[sel].sum(), rel=1e-10)
    # a local sky from an annulus: float64 mean and std of its pixels
    annulus = CircularAnnulus((14.5, 14.5), 8.0, 14.0)
    local = SkyEstimate.from_annulus(data, annulus, method='mean')
    ring = annulus.to_mask(method='center').to_image(SHAPE) > 0
    assert float(local.value[0]) == pytest.approx(
        data[ring].astype(np.float64).mean(), rel=1e-14)
    assert float(local.std[0]) == pytest.approx(
        data[ring].astype(np.float64).std(), rel=1e-12)
    return _row_flags(t)


@action('uncertainty_shape')
def _(c):
    measure(c.img, c.box, c.sky, uncertainty=np.ones((3, 3)))


@action('uncertainty_negative')
def _(c):
    measure(c.img, c.box, c.sky, uncertainty=-np.ones(SHAPE))


@action('mask_shape')
def _(c):
    measure(c.img, c.box, c.sky, mask=np.ones((3, 3), bool))


# -- FITS files

@action('file_missing')
def _(c):
    read_frame(c.files / 'nope.fits')


@action('file_directory')
def _(c):
    read_frame(c.files / 'folder')


@action('file_empty')
def _(c):
    read_frame(c.files / 'empty.fits')


@action('file_text')
def _(c):
    read_frame(c.files / 'notes.fits')


@action('file_truncated')
def _(c):
    read_frame(c.files / 'cut.fits')


@action('file_cube')
def _(c):
    read_frame(c.files / 'cube.fits')


@action('file_nonstandard_cards')
def _(c):
    ref = c.request.getfixturevalue('sextractor_dir')
    ccd = read_frame(ref / 'image.fits')
    assert ccd.shape == (256, 256)
    assert any(str(k).startswith('ESO') or 'ESO-LOG' in str(v)
               for k, v in ccd.meta.items())


@action('file_uint16')
def _(c):
    ccd = read_frame(c.files / 'u16.fits')
    data = _u16()
    np.testing.assert_array_equal(np.asarray(ccd.data), data)
    assert np.max(ccd.data) == 65535
    sky = SkyEstimate.from_image(ccd, method='mean', mask_sources=False)
    _check_u16_photometry(data, photometer(ccd, c.box, sky), sky)


# -- apertures

@action('box_over_edge')
def _(c):
    t = photometer(c.img, BoxAperture.from_slices(np.s_[35:45, 10:20]), c.sky)
    assert t['n_pix'][0] == 50
    assert t['aperture_sum'][0] == pytest.approx(
        (c.img[35:40, 10:20] - t['sky'][0]).sum(), rel=1e-12)
    return _row_flags(t)


@action('box_off_frame_photometer')
def _(c):
    t = photometer(c.img, BoxAperture((-50, -50), 5, 5), c.sky)
    assert np.isnan(t['aperture_sum'][0]) and t['n_pix'][0] == 0
    assert np.isnan(t['aperture_sum_err'][0]) and np.isnan(t['mag'][0])
    return _row_flags(t)


@action('box_off_frame_measure')
def _(c):
    measure(c.img, BoxAperture((-50, -50), 5, 5), c.sky)


@action('box_larger_than_frame')
def _(c):
    t = photometer(c.img, BoxAperture((24.5, 19.5), 100, 100), c.sky)
    assert t['n_pix'][0] == c.img.size
    # the box covers every pixel the level used: it keeps them (flag 32)
    assert t['sky'][0] == c.sky.value
    assert t['flags'][0] & 33 == 33
    assert t['aperture_sum'][0] == pytest.approx(
        (c.img - c.sky.value).sum(), rel=1e-10)
    return _row_flags(t)


@action('box_reversed')
def _(c):
    BoxAperture.from_slices(np.s_[20:10, 10:20])


@action('box_step')
def _(c):
    BoxAperture.from_slices(np.s_[10:20:2, 10:20])


@action('box_negative')
def _(c):
    BoxAperture.from_slices(np.s_[-5:5, 0:10])


@action('box_open')
def _(c):
    BoxAperture.from_slices(np.s_[:10, 0:10])


@action('box_zero_width')
def _(c):
    BoxAperture((10, 10), 0, 5)


@action('box_nan_position')
def _(c):
    BoxAperture((np.nan, 10), 5, 5)


@action('not_an_aperture')
def _(c):
    measure(c.img, (10, 10), c.sky)


@action('measure_many')
def _(c):
    measure(c.img, BoxAperture([(10, 10), (20, 20)], 5, 5), c.sky)


@action('no_apertures')
def _(c):
    photometer(c.img, [], c.sky)


# -- detector parameters and headers

@action('gain_zero')
def _(c):
    measure(c.img, c.box, c.sky, gain=0)


@action('gain_negative')
def _(c):
    photometer(c.img, c.box, c.sky, gain=-2)


@action('gain_text')
def _(c):
    measure(c.img, c.box, c.sky, gain='abc')


@action('gain_nan')
def _(c):
    measure(c.img, c.box, c.sky, gain=np.nan)


@action('read_noise_negative')
def _(c):
    DetectorParameters(read_noise=-5)


@action('exptime_zero')
def _(c):
    DetectorParameters(exptime=0)


@action('saturation_negative')
def _(c):
    DetectorParameters(saturation=-1)


@action('header_gain_text')
def _(c):
    ccd = CCDData(c.img, unit='adu', meta={'GAIN': 'abc', 'EGAIN': 2.0})
    res = measure(ccd, c.box, SkyEstimate.from_image(ccd))
    assert res.detector.gain == 2.0
    assert res.detector.sources['gain'] == 'EGAIN'
    assert res.budget.terms['source'] == pytest.approx(res.flux / 2.0)


@action('header_gain_negative')
def _(c):
    ccd = CCDData(c.img, unit='adu', meta={'GAIN': -1})
    t = photometer(ccd, c.box, SkyEstimate.from_image(ccd))
    assert t.meta['gain'] is None
    assert np.isnan(t['var_source'][0])
    assert any('no gain' in note for note in t.meta['notes'])


@action('header_without_gain')
def _(c):
    ccd = CCDData(c.img, unit='adu', meta={'EXPTIME': 30.0, 'RDNOISE': 5.0})
    t = photometer(ccd, c.box, SkyEstimate.from_image(ccd))
    assert t.meta['gain'] is None and t.meta['gain_source'] == 'missing'
    assert np.isnan(t['var_source'][0])


@action('read_noise_without_gain')
def _(c):
    res = measure(c.img, c.box, c.sky,
                  detector=DetectorParameters(read_noise=5))
    assert 'source' not in res.budget.terms
    assert any('read_noise ignored' in n for n in res.budget.notes)
    assert any('no gain' in n for n in res.budget.notes)


# -- sky and threshold

@action('sky_method')
def _(c):
    SkyEstimate.from_image(c.img, method='mode')


@action('sky_not_estimate')
def _(c):
    measure(c.img, c.box, 100.0)


@action('sky_negative_std')
def _(c):
    SkyEstimate(100.0, -1.0, 500)


@action('sky_levels')
def _(c):
    photometer(c.img, c.box, SkyEstimate([1, 2], [1, 1], [9, 9]))


@action('sky_nan_pixels')
def _(c):
    img = c.img.copy()
    img[0, :7] = np.nan
    sky = SkyEstimate.from_image(img, method='mean', mask_sources=False)
    assert sky.meta['n_excluded_bad'] == 7
    assert sky.n_pix == img.size - 7 and sky.n_rejected == 7
    assert sky.value == pytest.approx(np.nanmean(img), rel=1e-12)


@action('threshold_negative')
def _(c):
    SigmaThreshold(-2)


@action('sky_maxiters')
def _(c):
    ann = CircularAnnulus((25, 20), 4, 8)
    with pytest.raises(TypeError, match='maxiters'):
        SkyEstimate.from_annulus(c.img, ann, maxiters='2')
    with pytest.raises(ValueError, match='maxiters'):
        SkyEstimate.from_annulus(c.img, ann, maxiters=2.5)
    with pytest.raises(ValueError, match='maxiters'):
        SkyEstimate.from_annulus(c.img, ann, maxiters=-1)
    SkyEstimate.from_image(c.img, maxiters=0)


@action('annulus_all_masked')
def _(c):
    ann = CircularAnnulus((25, 20), 4, 8)
    SkyEstimate.from_annulus(c.img, ann, mask=np.ones(SHAPE, bool))


@action('annulus_off_frame')
def _(c):
    sky = SkyEstimate.from_annulus(c.img, CircularAnnulus(
        [(-500, 20), (25, 20)], 4, 8))
    assert np.isnan(sky.value[0]) and sky.n_pix[0] == 0
    assert list(sky.meta['flags']) == [64, 0]
    assert sky.value[1] == pytest.approx(100.0, abs=3.0)


@action('annulus_radii')
def _(c):
    CircularAnnulus((20, 20), r_in=8, r_out=8)


@action('annulus_huge')
def _(c):
    SkyEstimate.from_annulus(c.img, CircularAnnulus((20, 20), 4, 1e5))


@action('annulus_degenerate')
def _(c):
    ann = CircularAnnulus([(25, 20), (12, 30)], 4, 8)
    flat = c.img.copy()
    flat[10:31, 14:37] = 7.0  # the first annulus on a flat patch
    sky = SkyEstimate.from_annulus(flat, ann)
    assert sky.std[0] == 0.0 and list(sky.meta['flags']) == [64, 0]
    tiny = SkyEstimate.from_annulus(c.img, CircularAnnulus((25, 20), 1.0,
                                                           1.2))
    assert tiny.n_pix[0] == 4 and list(tiny.meta['flags']) == [64]


@action('blank_no_sky')
def _(c):
    with pytest.raises(ValueError, match='no blank sky'):
        ApertureNoise.from_blank_apertures(c.img, c.sky,
                                           mask=np.ones(SHAPE, bool))
    ApertureNoise.from_blank_apertures(np.full(SHAPE, np.nan), c.sky)


@action('blank_constant')
def _(c):
    ApertureNoise.from_blank_apertures(np.full(SHAPE, 100.0), c.sky)


@action('blank_sizes')
def _(c):
    with pytest.raises(ValueError, match='two different sides'):
        ApertureNoise.from_blank_apertures(c.img, c.sky, sizes=[3, 3])
    ApertureNoise.from_blank_apertures(c.img, c.sky, sizes=[2.5, 3])


@action('blank_n_apertures')
def _(c):
    ApertureNoise.from_blank_apertures(c.img, c.sky, n_apertures=5)


@action('blank_seed')
def _(c):
    ApertureNoise.from_blank_apertures(c.img, c.sky, seed='x')


@action('blank_sky_unit')
def _(c):
    sky = SkyEstimate(100.0, 5.0, 1000, unit=u.adu)
    ApertureNoise.from_blank_apertures(CCDData(c.img, unit='electron'), sky)


@action('threshold_number')
def _(c):
    measure(c.img, c.box, c.sky, threshold=2.0)


# -- error budget

@action('budget_npix_zero')
def _(c):
    ErrorBudget.from_aperture(100.0, 0, 5.0)


@action('budget_negative_sigma')
def _(c):
    ErrorBudget.from_aperture(100.0, 10, -5.0)


@action('budget_nan_flux')
def _(c):
    ErrorBudget.from_aperture(np.nan, 10, 5.0)


@action('budget_constant_frame')
def _(c):
    flat = np.full(SHAPE, 100.0)
    with pytest.warns(AstropyUserWarning, match='doubtful sky: std is 0'):
        sky = SkyEstimate.from_image(flat)
        t = photometer(flat, c.box, sky, gain=2.0)
        res = measure(flat, c.box, sky, gain=2.0)
    assert int(t['flags'][0]) == int(res.flags) == 72
    assert t['n_pix'][0] == 100 and t['var_sky'][0] == 0.0
    assert np.isnan(t['aperture_sum_err'][0]) and np.isnan(t['snr'][0])
    assert np.isnan(res.flux_err) and np.isnan(res.snr)


@action('budget_negative_term')
def _(c):
    ErrorBudget(100.0, {'sky': -1.0})


@action('uncertainty_model')
def _(c):
    BudgetOptions(uncertainty_model='mixed')


@action('overlap_method_measure')
def _(c):
    measure(c.img, c.box, c.sky, sum_method='foo')


@action('overlap_method_photometer')
def _(c):
    photometer(c.img, c.box, c.sky, sum_method='foo')


# -- units

@action('unit_sky_measure')
def _(c):
    measure(c.img * u.electron, c.box, SkyEstimate.from_image(c.img * u.adu))


@action('unit_sky_photometer')
def _(c):
    photometer(c.img * u.electron, c.box,
               SkyEstimate.from_image(c.img * u.adu))


@action('unit_uncertainty')
def _(c):
    measure(c.img * u.adu, c.box, SkyEstimate.from_image(c.img * u.adu),
            uncertainty=np.ones(SHAPE) * u.s)


@action('unit_uncertainty_plain')
def _(c):
    measure(c.img, c.box, c.sky, uncertainty=np.ones(SHAPE) * u.adu)


@action('unit_gain')
def _(c):
    measure(c.img, c.box, c.sky, gain=2 * u.s)


@action('unit_saturation')
def _(c):
    DetectorParameters(saturation=6e4 * u.adu)


# ---------------------------------------------------------------- assumptions
# One check per row of ASSUMPTIONS: the decision is visible where the docs
# say.

VISIBLE = {}


def visible(key):
    def register(func):
        VISIBLE[key] = func
        return func
    return register


@visible('sky_method')
def _(c):
    sky = SkyEstimate.from_image(c.img)
    assert sky.method == sky.meta['method'] == 'sigma_clip'
    assert photometer(c.img, c.box, sky).meta['sky_method'] == 'sigma_clip'
    code, out, err = ccdphot('measure', 'frame.fits', '--box', '10:20,10:20',
                             cwd=c.files)
    assert code == 0, err
    assert 'sky       sigma_clip' in out


@visible('sky_excluded')
def _(c):
    img = c.img.copy()
    img[0, :3] = np.inf
    img[30, 40] = 1e4  # clipped
    with pytest.warns(AstropyUserWarning, match='3 masked/NaN/inf'):
        sky = SkyEstimate.from_image(img)
    assert sky.meta['n_excluded_bad'] == 3
    assert sky.meta['n_clipped'] >= 1
    assert sky.meta['n_masked_sources'] > 0  # the star and its wings
    assert sky.n_rejected == (3 + sky.meta['n_clipped']
                              + sky.meta['n_masked_sources']
                              ) == img.size - sky.n_pix
    assert sky.meta['std_factor'] == pytest.approx(1.0136, abs=1e-4)


@visible('missing_gain')
def _(c):
    res = measure(c.img, c.box, c.sky)
    assert 'source' not in res.budget.terms
    assert any('no gain' in n for n in res.budget.notes)
    t = photometer(c.img, c.box, c.sky)
    assert np.isnan(t['var_source'][0])
    assert t.meta['gain'] is None and t.meta['gain_source'] == 'missing'
    assert any('no gain' in n for n in t.meta['notes'])
    # a bare array only notes it (no warning: the suite raises any); a
    # header naming the detector but no gain warns
    ccd = CCDData(c.img, unit='adu', meta={'EXPTIME': 30.0})
    with pytest.warns(AstropyUserWarning, match='no gain: the header names '
                      r'the detector \(EXPTIME\) but no GAIN/EGAIN/CCDGAIN'):
        res = measure(ccd, c.box, SkyEstimate.from_image(ccd))
    assert 'source' not in res.budget.terms


@visible('header_gain')
def _(c):
    ccd = CCDData(c.img, unit='adu', meta={'EGAIN': 2.23})
    sky = SkyEstimate.from_image(ccd)
    res = measure(ccd, c.box, sky)
    assert res.detector.gain == 2.23
    assert res.detector.sources['gain'] == 'EGAIN'
    t = photometer(ccd, c.box, sky)
    assert (t.meta['gain'], t.meta['gain_source']) == (2.23, 'EGAIN')


@visible('bad_pixels')
def _(c):
    mask = np.zeros(SHAPE, bool)
    mask[10, 10] = True
    t = photometer(c.img, c.box, c.sky, mask=mask)
    assert t['flags'][0] & 2 and t['n_pix'][0] == 99
    full = photometer(c.img, c.box, c.sky)
    assert t['aperture_sum'][0] == pytest.approx(
        full['aperture_sum'][0] - (c.img[10, 10] - c.sky.value), rel=1e-12)


@visible('edge')
def _(c):
    t = photometer(c.img, BoxAperture((0.0, 20.0), 6, 6), c.sky)
    assert t['flags'][0] & 1 and t['n_pix'][0] == 3.5 * 6


@visible('exptime')
def _(c):
    t = photometer(c.img, c.box, c.sky)
    assert t.meta['exptime'] is None
    assert t.meta['exptime_source'] == 'missing'
    assert any('exposure time' in n for n in t.meta['notes'])
    assert t['mag'][0] == pytest.approx(-2.5 * np.log10(t['aperture_sum'][0]))
    timed = photometer(c.img, c.box, c.sky,
                       detector=DetectorParameters(exptime=30.0))
    assert timed.meta['exptime_source'] == 'argument'
    assert timed['mag'][0] == pytest.approx(
        -2.5 * np.log10(t['aperture_sum'][0] / 30.0))


@visible('zeropoint')
def _(c):
    t = photometer(c.img, c.box, c.sky)
    assert t.meta['zeropoint'] is None
    assert photometer(c.img, c.box, c.sky, zeropoint=25.0)['mag'][0] == \
        pytest.approx(t['mag'][0] + 25.0)


@visible('uncertainty_model')
def _(c):
    sigma = np.full(SHAPE, 5.0)
    t = photometer(c.img, c.box, c.sky, uncertainty=sigma, gain=2.0)
    assert t.meta['uncertainty_model'] == 'background'
    assert t['var_sky'][0] == pytest.approx(100 * 25.0)
    assert t['var_source'][0] > 0
    res = measure(c.img, c.box, c.sky, uncertainty=sigma, gain=2.0)
    assert any('uncertainty map' in n for n in res.budget.notes)
    total = measure(c.img, c.box, c.sky, uncertainty=sigma, gain=2.0,
                    budget=BudgetOptions(uncertainty_model='total'))
    assert any('total' in n for n in total.budget.notes)


@visible('sky_mean')
def _(c):
    t = photometer(c.img, c.box, c.sky)
    assert t.meta['include_sky_mean'] is True
    assert t['var_sky_mean'][0] == pytest.approx(
        100 ** 2 * c.sky.error_on_mean ** 2)
    res = measure(c.img, c.box, c.sky,
                  budget=BudgetOptions(include_sky_mean=False))
    assert 'sky_mean' not in res.budget.terms
    assert any('taken as exact' in n for n in res.budget.notes)


@visible('read_noise_no_gain')
def _(c):
    res = measure(c.img, c.box, c.sky,
                  detector=DetectorParameters(read_noise=5.0))
    assert any('read_noise ignored' in n for n in res.budget.notes)
    assert not res.budget.decomposition


@visible('overlap_method')
def _(c):
    t = photometer(c.img, CircularAperture((15.0, 15.0), 4.0), c.sky)
    assert t.meta['sum_method'] == 'exact'
    assert t['n_pix'][0] == pytest.approx(np.pi * 16, rel=1e-10)


@visible('saturation')
def _(c):
    assert photometer(c.img, c.box, c.sky).meta['saturation'] is None
    peak = float(c.img[BOX].max())
    ccd = CCDData(c.img, unit='adu', meta={'SATURATE': peak})
    t = photometer(ccd, c.box, SkyEstimate.from_image(ccd))
    assert t.meta['saturation'] == peak and t['flags'][0] & 4


@visible('bunit')
def _(c):
    path = c.files / 'no_bunit.fits'
    if not path.exists():
        fits.PrimaryHDU(c.img).writeto(path)
    with pytest.warns(AstropyUserWarning, match='BUNIT'):
        ccd = read_frame(path)
    assert ccd.unit == u.adu


@pytest.mark.parametrize('item', ASSUMPTIONS, ids=lambda a: a.key)
def test_assumption_is_visible(item, ctx):
    VISIBLE[item.key](ctx)


# ---------------------------------------------------------------- harness

def _param(case):
    marks = ([pytest.mark.xfail(strict=True, reason=case.gap)] if case.gap
             else [])
    return pytest.param(case, id=case.key, marks=marks)


PY_CASES = [_param(c) for c in CATALOGUE if not c.cli]
CLI_CASES = [_param(c) for c in CATALOGUE if c.cli]


def test_every_row_is_checked():
    keys = [c.key for c in CATALOGUE]
    assert len(keys) == len(set(keys)), 'duplicate catalogue keys'
    assert set(ACTIONS) == {c.key for c in CATALOGUE if not c.cli}
    assert set(CLI_RESULTS) == {c.key for c in CATALOGUE
                                if c.cli and c.outcome == 'result'}
    assert set(VISIBLE) == {a.key for a in ASSUMPTIONS}


@pytest.mark.parametrize('name, render', [('catalogue', catalogue_rst),
                                          ('assumptions', assumptions_rst)])
def test_docs_tables_are_generated_from_the_lists(name, render):
    text = DOCS_PAGE.read_text()
    start = text.index(f'.. {name}-start')
    end = text.index(f'.. {name}-end')
    table = text[text.index('\n', start) + 1:end].strip('\n') + '\n'
    assert table == render(), (
        f'docs/robustness.rst is out of date: paste the output of '
        f'bad_input_catalogue.{render.__name__}() between the {name} '
        'comments')


@pytest.mark.parametrize('case', PY_CASES)
def test_python_api(case, ctx):
    run = ACTIONS[case.key]
    if case.outcome == 'error':
        with pytest.raises(EXCEPTIONS[case.exception]) as info:
            run(ctx)
        message = str(info.value)
        assert case.names in message, message
        assert '\n' not in message.strip()
    elif case.outcome == 'warning':
        with pytest.warns(EXCEPTIONS[case.exception]) as record:
            run(ctx)
        texts = [str(w.message) for w in record
                 if issubclass(w.category, EXCEPTIONS[case.exception])]
        assert any(case.names in t for t in texts), texts
    elif case.outcome == 'flag':
        with warnings.catch_warnings():
            warnings.simplefilter('error', AstropyUserWarning)  # a flag, no warning
            flags = run(ctx)
        assert flags & case.flag == case.flag, flags
    else:
        run(ctx)


# ---------------------------------------------------------------- command line
# Every command-line row runs in this process through ccdphot_ext.cli.main.main
# (the function the ``ccdphot`` console script calls), and two rows (an
# error, a warning) also through the installed command in a subprocess:
# starting Python and importing astropy/photutils costs ~1.5 s a run, too
# slow to repeat for every row. Both routes get the same checks.

#: Rows also run through the installed ``ccdphot`` command.
SUBPROCESS_KEYS = ('cli_box_reversed', 'cli_nonstandard_cards')

CLI_RESULTS = {}


def cli_result(key):
    def register(func):
        CLI_RESULTS[key] = func
        return func
    return register


def _stderr_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.strip()]


def _copy_eso_frame(request, folder):
    """The real ESO frame with ESO-LOG cards (tests/data/sextractor)."""
    target = folder / 'image.fits'
    if not target.exists():
        shutil.copy(request.getfixturevalue('sextractor_dir') / 'image.fits',
                    target)


@cli_result('cli_nonstandard_cards')
def _(proc, folder):
    lines = _stderr_lines(proc)
    assert lines, 'the non-standard cards should be reported'
    assert all(line.startswith('ccdphot measure: warning:') for line in lines)
    assert 'aperture_sum' in proc.stdout


@cli_result('cli_header_without_gain')
def _(proc, folder):
    warned = [line for line in _stderr_lines(proc) if 'no gain' in line]
    assert len(warned) == 1, proc.stderr
    assert warned[0].startswith('ccdphot measure: warning: no gain: the '
                                'header names the detector (EXPTIME)')
    assert 'no gain: source Poisson term absent' in proc.stdout


@cli_result('cli_header_gain_text')
def _(proc, folder):
    warned = [line for line in _stderr_lines(proc) if 'GAIN' in line]
    assert len(warned) == 1
    assert warned[0].startswith('ccdphot measure: warning:')
    assert 'no gain' in proc.stdout


@cli_result('cli_uint16')
def _(proc, folder):
    table = QTable.read(folder / 'out.ecsv')
    wide = _u16().astype(np.float64)
    # the level is the mean of the pixels outside the measured box grown
    # for its star's wings: the saturated star's light (560 ADU) lifted
    # the frame's mean by 1.3 of its error (65500.1955 -> 65499.8889)
    ys, xs = aperture_pixels(BoxAperture((14.5, 14.5), 10, 10),
                             wide.shape)[:2]
    outside = np.ones(wide.shape, dtype=bool)
    outside[ys, xs] = False
    level = wide[outside].mean()
    assert table['sky'][0].value == pytest.approx(level, rel=1e-14)
    assert table.meta['sky_aperture_lift'] == pytest.approx(
        wide.mean() - level, rel=1e-9)
    assert 0.25 < table.meta['sky_aperture_lift'] < 0.35
    cut = wide[BOX] - level
    assert table['aperture_sum'][0].value == pytest.approx(
        cut.sum(), rel=1e-10, abs=1e-6)
    assert table['n_pix'][0] == 100


def _check_cli(case, proc, folder):
    assert 'Traceback' not in proc.stderr + proc.stdout
    lines = _stderr_lines(proc)
    if case.outcome == 'error':
        assert proc.returncode == 2, proc.stderr
        errors = [line for line in lines if ': error:' in line]
        assert len(errors) == 1, proc.stderr
        assert errors[0].startswith('ccdphot measure: error:'), errors[0]
        assert case.names in errors[0], errors[0]
        # nothing else but one-line warnings
        assert all(': error:' in line or ': warning:' in line
                   for line in lines), proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        CLI_RESULTS[case.key](proc, folder)


@pytest.mark.parametrize('case', CLI_CASES)
def test_command_line(case, files, request):
    if case.key == 'cli_nonstandard_cards':
        _copy_eso_frame(request, files)
    argv = shlex.split(case.passes)
    assert argv[0] == 'ccdphot'
    code, out, err = ccdphot(*argv[1:], cwd=files)
    _check_cli(case, SimpleNamespace(returncode=code, stdout=out, stderr=err),
               files)


def _ccdphot():
    """The installed console script beside this Python, else on PATH."""
    here = Path(sys.executable).parent / 'ccdphot'
    found = str(here) if here.exists() else shutil.which('ccdphot')
    if found is None:
        pytest.fail('the ccdphot command is not installed')
    return found


@pytest.fixture(scope='module')
def installed_runs(files, tmp_path_factory, request):
    """Run the SUBPROCESS_KEYS rows with the installed command, two at a
    time, in a copy of the files folder."""
    folder = tmp_path_factory.mktemp('installed') / 'files'
    shutil.copytree(files, folder)
    _copy_eso_frame(request, folder)
    exe = _ccdphot()

    def run(case):
        argv = shlex.split(case.passes)
        return case.key, subprocess.run(
            [exe, *argv[1:]], cwd=folder, capture_output=True, text=True,
            timeout=120)

    cases = [c for c in CATALOGUE if c.key in SUBPROCESS_KEYS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return folder, dict(pool.map(run, cases))


@pytest.mark.parametrize('case', [c for c in CLI_CASES
                                  if c.values[0].key in SUBPROCESS_KEYS])
def test_installed_command(case, installed_runs):
    folder, runs = installed_runs
    _check_cli(case, runs[case.key], folder)
