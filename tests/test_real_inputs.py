"""
Inputs a real user hands over, on real frames: multi-extension files whose
detector keywords live in the primary header, count-rate frames, numpy
masked arrays and unusable uncertainty maps.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from astropy.utils.masked import Masked
from clirun import ccdphot
from expected_warnings import (
    correlated_warning,
    gradient_warning,
    sharp_pixel_warning,
    unseen_sky_warning,
)

from ccdphot_ext import (
    BoxAperture,
    BudgetOptions,
    DetectorParameters,
    SkyEstimate,
    find_stars,
    measure,
    photometer,
    photometer_frames,
    read_frame,
)


def _values(table, name):
    return np.asarray(u.Quantity(table[name]).value, dtype=float)


@pytest.fixture(scope='module')
def saao_boxes(saao):
    sky = SkyEstimate.from_image(saao)
    stars = find_stars(saao, sky, n_sigma=10, box_side=25)
    keep = ~stars['saturated']
    xy = np.column_stack([stars['x_center'], stars['y_center']])[keep]
    return sky, BoxAperture(np.round(xy[:8]), 25, 25)


# -- multi-extension files: the primary header's keywords -------------------

_STRUCTURAL = ('SIMPLE', 'BITPIX', 'NAXIS', 'NAXIS1', 'NAXIS2', 'BSCALE',
               'BZERO', 'EXTEND')


def _write_mef(saao, path, **extension_cards):
    """The SAAO frame as a MEF: its header in the primary, data in SCI."""
    primary = fits.Header([c for c in saao.meta.cards
                           if c.keyword not in _STRUCTURAL])
    sci = fits.Header({'BUNIT': 'adu', 'EXTNAME': 'SCI', **extension_cards})
    unc = fits.Header({'EXTNAME': 'UNCERT', 'UTYPE': 'StdDevUncertainty'})
    fits.HDUList([fits.PrimaryHDU(header=primary),
                  fits.ImageHDU(saao.data, sci),
                  fits.ImageHDU(saao.uncertainty.array, unc)]).writeto(path)
    return path


def test_multi_extension_inherits_primary_keywords(saao, saao_boxes,
                                                   tmp_path):
    path = _write_mef(saao, tmp_path / 'mef.fits')
    ccd = read_frame(path)
    # as CCDData.read: the primary's keywords complete the extension's
    ref = CCDData.read(path, unit='adu')
    for key in ('GAIN', 'RDNOISE', 'EXPTIME', 'DATE-OBS', 'MJD-OBS'):
        assert ccd.meta[key] == ref.meta[key] == saao.meta[key]
    assert ccd.meta['EXTNAME'] == 'SCI' and 'SIMPLE' not in ccd.meta
    p = DetectorParameters().resolve(ccd.meta)
    assert (p.gain, p.sources['gain']) == (1.9, 'GAIN (primary HDU)')
    assert p.sources['read_noise'] == 'RDNOISE (primary HDU)'
    assert (p.exptime, p.sources['exptime']) == (150.04,
                                                    'EXPTIME (primary HDU)')
    # the same photometry as the single-HDU frame, the origin in meta
    sky, boxes = saao_boxes
    with gradient_warning(), sharp_pixel_warning():
        t = photometer(ccd, boxes, sky,
                       budget=BudgetOptions(uncertainty_model='total'))
    with gradient_warning(), sharp_pixel_warning():
        t_ref = photometer(saao, boxes, sky,
                           budget=BudgetOptions(uncertainty_model='total'))
    assert t.meta['gain'] == 1.9
    assert t.meta['gain_source'] == 'GAIN (primary HDU)'
    assert t.meta['exptime_source'] == 'EXPTIME (primary HDU)'
    for name in ('aperture_sum', 'aperture_sum_err', 'mag', 'mag_err'):
        np.testing.assert_array_equal(_values(t, name), _values(t_ref, name))


def test_extension_keyword_wins_and_inherit_false(saao, tmp_path):
    ccd = read_frame(_write_mef(saao, tmp_path / 'a.fits', EXPTIME=75.0))
    p = DetectorParameters().resolve(ccd.meta)
    assert (p.exptime, p.sources['exptime']) == (75.0, 'EXPTIME')
    assert p.sources['gain'] == 'GAIN (primary HDU)'
    ccd = read_frame(_write_mef(saao, tmp_path / 'b.fits', INHERIT=False))
    assert 'GAIN' not in ccd.meta
    assert DetectorParameters().resolve(ccd.meta).sources['gain'] == 'missing'


def test_multi_extension_on_the_command_line_and_batch(saao, saao_boxes,
                                                       tmp_path):
    path = _write_mef(saao, tmp_path / 'mef.fits')
    out = tmp_path / 'out.ecsv'
    code, _, err = ccdphot('measure', path, '--box', '200:215,300:315', '-o',
                           out)
    assert code == 0, err
    t = QTable.read(out)
    assert t.meta['gain'] == 1.9 and t.meta['exptime'] == 150.04
    assert t.meta['gain_source'] == 'GAIN (primary HDU)'
    cut = saao.data[200:215, 300:315]
    sky = SkyEstimate.from_image(saao, gain=1.9)  # the primary's GAIN
    assert _values(t, 'aperture_sum')[0] == pytest.approx(
        np.sum(cut - sky.value), rel=1e-10)
    # batch: gain, exposure time and DATE-OBS/MJD-OBS from the primary (the
    # UNCERT map, ccdproc's, holds the stars' photon noise: with the
    # primary's gain it is found so, and taken as the total error)
    _, boxes = saao_boxes
    with gradient_warning(), sharp_pixel_warning(), pytest.warns(
            AstropyUserWarning, match=r"photon noise .* gain 1\.9\)"):
        lc = photometer_frames([str(path)], boxes)
    assert set(lc['status']) == {'ok'}
    assert np.all(lc['exptime'].value == 150.04)
    assert lc['time'][0].mjd == pytest.approx(56486.0)
    assert np.all(np.isnan(_values(lc, 'var_source')))


# -- count-rate frames -------------------------------------------------------

@pytest.mark.parametrize('unit', ['adu / s', 'electron / s'])
def test_count_rate_magnitudes_not_divided_twice(saao, saao_boxes, unit):
    _, boxes = saao_boxes
    to_unit = 1.9 if unit.startswith('electron') else 1.0
    adu = CCDData(saao.data, unit='adu', meta=saao.meta)
    with gradient_warning(), sharp_pixel_warning():
        t_adu = photometer(adu, boxes, SkyEstimate.from_image(adu))
    rate = CCDData(saao.data * to_unit / 150.04, unit=unit, meta=saao.meta)
    with gradient_warning(), sharp_pixel_warning():
        t = photometer(rate, boxes, SkyEstimate.from_image(rate))
    flux = _values(t, 'aperture_sum')
    np.testing.assert_allclose(flux, _values(t_adu, 'aperture_sum')
                               * to_unit / 150.04, rtol=1e-9)
    # a rate is per second already: -2.5 log10(rate), nothing more
    np.testing.assert_allclose(t['mag'], -2.5 * np.log10(flux), rtol=1e-12)
    offset = 2.5 * np.log10(to_unit)
    np.testing.assert_allclose(t['mag'], np.asarray(t_adu['mag']) - offset,
                               rtol=0, atol=1e-9)
    # the same budget: gain x exptime electrons per data unit (the
    # sky_offset term to the 1e-5 to which the float32 cells of the two
    # frames' background variation maps agree)
    np.testing.assert_allclose(t['mag_err'], t_adu['mag_err'], rtol=1e-5)
    np.testing.assert_allclose(t['snr'], t_adu['snr'], rtol=1e-5)
    assert any('rate' in note for note in t.meta['notes'])
    with gradient_warning(), sharp_pixel_warning():
        t_zp = photometer(rate, boxes, SkyEstimate.from_image(rate),
                          zeropoint=25.0)
    np.testing.assert_allclose(t_zp['mag'], -2.5 * np.log10(flux) + 25.0,
                               rtol=1e-12)


# -- numpy masked arrays -----------------------------------------------------

def test_masked_arrays_are_honoured_on_m13(m13):
    ccd, _ = m13
    data = ccd.data.astype(float)
    bad = np.zeros(data.shape, dtype=bool)
    bad[140:160, 140:145] = True  # part of the cluster's core
    bad[10, 10] = True
    ma = np.ma.MaskedArray(data.copy(), mask=bad.copy())
    ma.data[bad] = 1e9  # what a masked pixel holds must not matter
    before = ma.copy()
    # the cluster leaves the whole-frame sky few pixels, and it says so
    with (pytest.warns(AstropyUserWarning, match='101 masked'),
          pytest.warns(AstropyUserWarning, match='sources cover')):
        sky_ma = SkyEstimate.from_image(ma)
    with (pytest.warns(AstropyUserWarning, match='101 masked'),
          pytest.warns(AstropyUserWarning, match='sources cover')):
        sky = SkyEstimate.from_image(data, mask=bad)
    assert (sky_ma.value, sky_ma.std, sky_ma.n_pix) == (sky.value, sky.std,
                                                        sky.n_pix)
    boxes = BoxAperture([[150.0, 150.0], [100.0, 200.0], [10.0, 10.0]], 15,
                        15)
    with correlated_warning(), gradient_warning(), unseen_sky_warning():
        t_ma = photometer(ma, boxes, sky_ma, gain=2.0)
    with correlated_warning(), gradient_warning(), unseen_sky_warning():
        t = photometer(data, boxes, sky, gain=2.0, mask=bad)
    for name in t.colnames:
        np.testing.assert_array_equal(t_ma[name], t[name])
    # 2: the masked pixels; 32: the cluster's background, which the
    # whole-frame sky's map sees (the gradient warning)
    assert t_ma['flags'].tolist() == [34, 32, 34]
    assert t_ma['n_pix'].tolist() == [225 - 30, 225, 224]
    cut, keep = data[143:158, 143:158], ~bad[143:158, 143:158]
    assert _values(t_ma, 'aperture_sum')[0] == pytest.approx(
        np.sum(cut[keep] - sky.value), rel=1e-10)
    # measure, find_stars and astropy's Masked class: the same
    with correlated_warning(), gradient_warning(), unseen_sky_warning():
        m = measure(ma, BoxAperture((150.0, 150.0), 15, 15), sky_ma, gain=2.0)
    assert m.flux == pytest.approx(_values(t, 'aperture_sum')[0], rel=1e-12)
    assert m.flags & 2
    with pytest.warns(AstropyUserWarning, match="frame's edge"):
        stars_ma = find_stars(ma, sky_ma)
    with pytest.warns(AstropyUserWarning, match="frame's edge"):
        stars = find_stars(data, sky, mask=bad)
    np.testing.assert_array_equal(stars_ma['x_center'], stars['x_center'])
    with correlated_warning(), gradient_warning(), unseen_sky_warning():
        t_q = photometer(Masked(ma.data * u.adu, mask=bad), boxes, sky_ma,
                         gain=2.0)
    np.testing.assert_array_equal(t_q['aperture_sum'].value,
                                  _values(t, 'aperture_sum'))
    # the caller's array is left as it was
    assert np.array_equal(ma.mask, before.mask)
    assert np.array_equal(ma.data, before.data)


def test_masked_uncertainty_and_ndata_mask_combine(m13):
    ccd, sky = m13
    data = ccd.data.astype(float)
    sigma = np.ma.MaskedArray(np.full(data.shape, 7.0),
                              mask=np.zeros(data.shape, dtype=bool))
    sigma.mask[150, 150] = True
    boxes = BoxAperture((150.0, 150.0), 9, 9)
    # M13's noise is correlated: a per-pixel map does not hold that either
    with correlated_warning(), gradient_warning(), unseen_sky_warning():
        t = photometer(data, boxes, sky, uncertainty=sigma)
    assert t['flags'][0] == 2 | 32 and t['n_pix'][0] == 80  # 32: gradient
    assert _values(t, 'var_sky')[0] == pytest.approx(80 * 49.0, rel=1e-12)


# -- unusable uncertainty maps -----------------------------------------------

@pytest.mark.parametrize('fill', [0.0, np.nan, np.inf])
def test_unusable_uncertainty_map_is_refused(saao, saao_boxes, fill):
    sky, boxes = saao_boxes
    empty = np.full(saao.shape, fill)
    with pytest.raises(ValueError, match='^uncertainty has no positive'):
        photometer(saao, boxes, sky, uncertainty=empty)
    bad = CCDData(saao.data, unit='adu', meta=saao.meta,
                  uncertainty=StdDevUncertainty(empty))
    with pytest.raises(ValueError, match=r'^data\.uncertainty has no'):
        photometer(bad, boxes, sky)
    with pytest.raises(ValueError, match=r'^data\.uncertainty has no'):
        measure(bad, BoxAperture((300.0, 200.0), 15, 15), sky)
    with pytest.raises(ValueError, match='uncertainty must be non-negative'):
        photometer(saao, boxes, sky, uncertainty=-saao.uncertainty.array)


def test_unusable_uncertainty_extension_on_the_command_line(saao,
                                                            tmp_path):
    ccd = CCDData(saao.data, unit='adu', meta=saao.meta,
                  uncertainty=StdDevUncertainty(np.zeros(saao.shape)))
    path = tmp_path / 'zero_unc.fits'
    ccd.write(path)
    code, _, err = ccdphot('measure', path, '--box', '200:215,300:315')
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert 'uncertainty has no positive finite value' in err
    assert 'Traceback' not in err



# -- the README's first example, on a real frame without BUNIT ---------------

def test_readme_example_reads_a_real_frame(saao_path, capsys):
    import re
    import warnings
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / 'README.md').read_text()
    code = re.search(r'```python\n(.*?)```', readme, re.S).group(1)
    assert 'read_frame(' in code
    code = code.replace("'frame.fits'", repr(str(saao_path)))
    namespace = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        exec(compile(code, 'README.md', 'exec'), namespace)
    assert any('no usable BUNIT' in str(w.message) for w in caught)
    ccd, res = namespace['ccd'], namespace['res']
    assert ccd.unit == u.adu and ccd.shape == (520, 536)
    cut = ccd.data[158:178, 492:512].astype(float)
    assert res.flux == pytest.approx(np.sum(cut - namespace['sky'].value),
                                     rel=1e-10)
    assert res.snr > 0 and capsys.readouterr().out.count('\n') >= 3
