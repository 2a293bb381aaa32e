"""read_frame: real FITS files written to tmp_path, good and bad."""

import gzip
import re
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import (
    CCDData,
    InverseVariance,
    StdDevUncertainty,
    VarianceUncertainty,
)
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS
from clirun import ccdphot

from ccdphot_ext import FrameReadError, read_frame
from ccdphot_ext.io.fluxdensity import unit_family


def _data(shape=(30, 40), seed=5):
    return np.random.default_rng(seed).normal(500.0, 10.0, shape)


def _tan_header():
    h = fits.Header()
    h['CTYPE1'], h['CTYPE2'] = 'RA---TAN', 'DEC--TAN'
    h['CRVAL1'], h['CRVAL2'] = 56.75, 24.12
    h['CRPIX1'], h['CRPIX2'] = 20.0, 15.0
    h['CDELT1'], h['CDELT2'] = -0.5 / 3600, 0.5 / 3600
    return h


@pytest.mark.parametrize('cls, values', [
    (StdDevUncertainty, 3.0), (VarianceUncertainty, 9.0),
    (InverseVariance, 1 / 9.0)])
def test_ccddata_round_trip(tmp_path, cls, values):
    data = _data()
    mask = np.zeros(data.shape, bool)
    mask[3, 4] = True
    ccd = CCDData(data, unit='electron', mask=mask,
                  uncertainty=cls(np.full(data.shape, values)),
                  meta={'GAIN': 1.9, 'EXPTIME': 30.0})
    path = tmp_path / 'frame.fits'
    ccd.write(path)
    out = read_frame(path)
    assert out.unit == u.electron
    assert type(out.uncertainty) is cls
    np.testing.assert_array_equal(out.data, data)
    np.testing.assert_allclose(out.uncertainty.array, values, rtol=1e-15)
    np.testing.assert_array_equal(out.mask, mask)
    assert out.meta['GAIN'] == 1.9 and out.meta['EXPTIME'] == 30.0
    assert out.wcs is None


def test_extension_names_pick_uncertainty_kind(tmp_path):
    data = _data()
    for name, arr, cls in [('ERR', 2.0, StdDevUncertainty),
                           ('VAR', 4.0, VarianceUncertainty),
                           ('IVAR', 0.25, InverseVariance)]:
        path = tmp_path / f'{name}.fits'
        hdr = fits.Header({'BUNIT': 'ADU'})
        fits.HDUList([fits.PrimaryHDU(data, hdr),
                      fits.ImageHDU(np.full(data.shape, arr), name=name),
                      fits.ImageHDU(np.eye(30, 40, dtype=np.uint8),
                                    name='BPM'),
                      fits.ImageHDU(np.full((30, 40), 4, np.int16),
                                    name='DQ')]).writeto(path)
        out = read_frame(path, dq_bits=1)
        assert type(out.uncertainty) is cls, name
        assert out.unit == u.adu
        np.testing.assert_allclose(out.uncertainty.array, arr)
        assert out.mask.sum() == 30 and out.mask[7, 7]
    # a DQ extension masks its dq_bits (here bit 1, not the 4s), named or
    # not; it replaces the BPM only when named
    assert not read_frame(tmp_path / 'ERR.fits', mask='DQ',
                          dq_bits=1).mask.any()
    dq = read_frame(tmp_path / 'ERR.fits', dq_bits=4)
    assert dq.mask.all() and (dq.flags == 4).all()
    # by default, a DQ of unknown mission (no TELESCOP) masks every bit
    out = read_frame(tmp_path / 'ERR.fits')
    assert out.mask.all() and out.meta['DQRULE'].startswith('unknown')
    # explicit choice wins over the name
    out = read_frame(tmp_path / 'ERR.fits', uncertainty='ERR',
                     uncertainty_type='var')
    assert type(out.uncertainty) is VarianceUncertainty


def test_uncertainty_and_mask_from_other_files_or_arrays(tmp_path):
    data = _data()
    fits.PrimaryHDU(data).writeto(tmp_path / 'sci.fits')
    fits.PrimaryHDU(np.full(data.shape, 9.0)).writeto(tmp_path / 'var.fits')
    bad = np.zeros(data.shape, np.int16)
    bad[0, :] = 4
    fits.PrimaryHDU(bad).writeto(tmp_path / 'bpm.fits')
    out = read_frame(tmp_path / 'sci.fits', unit='adu',
                     uncertainty=tmp_path / 'var.fits',
                     uncertainty_type='var', mask=str(tmp_path / 'bpm.fits'))
    assert type(out.uncertainty) is VarianceUncertainty
    assert out.mask.sum() == 40 and out.mask[0].all()
    out = read_frame(tmp_path / 'sci.fits', unit='adu',
                     uncertainty=np.full(data.shape, 3.0),
                     mask=np.zeros(data.shape))
    assert type(out.uncertainty) is StdDevUncertainty
    assert not out.mask.any()
    unc = InverseVariance(np.full(data.shape, 0.5))
    out = read_frame(tmp_path / 'sci.fits', unit='adu', uncertainty=unc)
    assert type(out.uncertainty) is InverseVariance
    np.testing.assert_array_equal(out.uncertainty.array, 0.5)


def test_unit_precedence_and_bunit_spellings(tmp_path):
    data = _data()
    for bunit, unit in [('ADU', u.adu), ('ELECTRONS/S', u.electron / u.s),
                        ('e-', u.electron), ('counts', u.count)]:
        path = tmp_path / f'{abs(hash(bunit))}.fits'
        fits.PrimaryHDU(data, fits.Header({'BUNIT': bunit})).writeto(path)
        assert read_frame(path).unit == unit
        assert read_frame(path, unit='electron').unit == u.electron
    path = tmp_path / 'blank.fits'
    fits.PrimaryHDU(data, fits.Header({'BUNIT': '        '})).writeto(path)
    with pytest.warns(AstropyUserWarning, match='BUNIT.*adu'):
        assert read_frame(path).unit == u.adu
    with pytest.raises(ValueError, match='unit'):
        read_frame(path, unit='not a unit')


@pytest.mark.parametrize('bunit, unit, family', [
    ('DN/S', u.DN / u.s, 'rate'),
    ('electron/S', u.electron / u.s, 'rate'),
    ('erg/s/cm2/A', u.erg / u.s / u.cm ** 2 / u.AA, 'flux density'),
    ('ERGS/CM**2/S/A', u.erg / u.s / u.cm ** 2 / u.AA, 'flux density'),
    ('erg s-1 cm-2 A-1 arcsec-2',
     u.erg / u.s / u.cm ** 2 / u.AA / u.arcsec ** 2, 'surface brightness')])
def test_bunit_read_as_astronomers_write_it(tmp_path, bunit, unit, family):
    """An S after a count unit is a second, an A in a flux density an
    Angstrom (astropy alone reads siemens and ampere), with a warning."""
    path = tmp_path / 'sci.fits'
    fits.PrimaryHDU(_data(), fits.Header({'BUNIT': bunit})).writeto(path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', u.UnitsWarning)  # astropy: slashes
        with pytest.warns(AstropyUserWarning,
                          match=rf"BUNIT='{re.escape(bunit)}' read as .*"
                                r"second.*Angstrom"):
            ccd = read_frame(path)
    assert ccd.unit == unit
    assert unit_family(ccd.unit) == family


@pytest.mark.parametrize('bunit', ['DN/s', 'ELECTRONS/S', 'COUNTS/S',
                                   'Electrons/s', 'MJy/sr', 'Jy/beam',
                                   'nanomaggy'])
def test_plain_bunits_read_silently(tmp_path, bunit):
    path = tmp_path / 'sci.fits'
    fits.PrimaryHDU(_data(), fits.Header({'BUNIT': bunit})).writeto(path)
    assert read_frame(path).unit is not None  # no warning (errors here)


@pytest.mark.parametrize('bunit, what', [
    ('mA', 'an electrical current'), ('V/s', 'a unit of no physical type'),
    ('S', 'an electrical conductance')])
def test_bunit_with_no_photometric_meaning_is_refused(tmp_path, bunit, what):
    """Not even the header conventions (S a second, A an Angstrom) make
    these a unit whose values add up to light."""
    path = tmp_path / 'sci.fits'
    fits.PrimaryHDU(_data(), fits.Header({'BUNIT': bunit})).writeto(path)
    with pytest.raises(FrameReadError, match=rf"BUNIT='{re.escape(bunit)}':"
                       rf" data in .* \({what}"):
        read_frame(path)
    assert read_frame(path, unit='adu').unit == u.adu  # an override wins


def test_dn_per_s_keeps_its_zero_point(tmp_path):
    """'DN/S' is a rate with an HST zero point, as 'DN/s' is."""
    from photutils.aperture import CircularAperture

    from ccdphot_ext import SkyEstimate, photometer

    img = np.ones((40, 40))
    img[18:23, 18:23] += 2.0
    mags = []
    for i, bunit in enumerate(['DN/s', 'DN/S']):
        path = tmp_path / f'{i}.fits'
        fits.PrimaryHDU(img, fits.Header({
            'BUNIT': bunit, 'PHOTFLAM': 1e-19, 'PHOTPLAM': 6000.0,
            'EXPTIME': 100.0})).writeto(path)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            ccd = read_frame(path)
            t = photometer(ccd, CircularAperture((20, 20), 5.0),
                           SkyEstimate(1.0, 0.01, 1000, unit=ccd.unit))
        mags.append(t['mag'][0])
        assert t.meta['zeropoint_source'] == 'PHOTFLAM, PHOTPLAM'
    zp = -2.5 * np.log10(1e-19) - 5 * np.log10(6000.0) - 2.408
    np.testing.assert_allclose(mags, -2.5 * np.log10(50.0) + zp, rtol=1e-12)


def test_hdu_selection_wcs_squeeze_and_byte_order(tmp_path):
    data = _data().astype('>f4')
    path = tmp_path / 'mef.fits'
    sci = fits.ImageHDU(data, _tan_header(), name='SCI')
    sci.header['BUNIT'] = 'adu'
    cube = fits.ImageHDU(np.zeros((1, 30, 40)), name='ONE')
    fits.HDUList([fits.PrimaryHDU(), sci, cube]).writeto(path)
    out = read_frame(path)  # first 2-D image: the empty primary is skipped
    assert out.data.dtype.byteorder in ('=', '|')
    np.testing.assert_array_equal(out.data, data)
    assert isinstance(out.wcs, WCS) and out.wcs.has_celestial
    ra, dec = out.wcs.pixel_to_world_values(19.0, 14.0)
    assert (ra, dec) == pytest.approx((56.75, 24.12), abs=1e-12)
    assert read_frame(path, hdu='SCI').shape == (30, 40)
    squeezed = read_frame(path, hdu='ONE', unit='adu')  # (1, ny, nx) -> 2-D
    assert squeezed.shape == (30, 40) and squeezed.wcs is None


def test_compressed_and_gzipped(tmp_path):
    data = np.arange(1200, dtype=np.int32).reshape(30, 40)
    path = tmp_path / 'frame.fits.fz'
    fits.HDUList([fits.PrimaryHDU(),
                  fits.CompImageHDU(data, fits.Header({'BUNIT': 'adu'}))]
                 ).writeto(path)
    np.testing.assert_array_equal(read_frame(path).data, data)
    gz = tmp_path / 'frame.fits.gz'
    raw = tmp_path / 'raw.fits'
    fits.PrimaryHDU(data, fits.Header({'BUNIT': 'adu'})).writeto(raw)
    gz.write_bytes(gzip.compress(raw.read_bytes()))
    np.testing.assert_array_equal(read_frame(gz).data, data)


def _bad_files(tmp_path):
    good = tmp_path / 'good.fits'
    fits.PrimaryHDU(_data().astype('f4')).writeto(good)
    raw = good.read_bytes()
    files = {}
    files['missing'] = (tmp_path / 'nope.fits', 'no such file')
    files['directory'] = (tmp_path, 'is a directory')
    (tmp_path / 'empty.fits').write_bytes(b'')
    files['empty'] = (tmp_path / 'empty.fits', 'empty file')
    (tmp_path / 'text.fits').write_text('x y\n1 2\n' * 50)
    files['text'] = (tmp_path / 'text.fits', 'not a FITS file')
    (tmp_path / 'trunc.fits').write_bytes(raw[:len(raw) // 2])
    files['truncated'] = (tmp_path / 'trunc.fits', 'truncated')
    (tmp_path / 'trunchdr.fits').write_bytes(raw[:1000])
    files['truncated header'] = (tmp_path / 'trunchdr.fits',
                                 'corrupt or truncated')
    bad = bytearray(raw)
    bad[240:250] = b'NAXIS1 = x'
    (tmp_path / 'corrupt.fits').write_bytes(bytes(bad))
    files['corrupt'] = (tmp_path / 'corrupt.fits', 'corrupt FITS header')
    fits.PrimaryHDU(np.zeros((3, 10, 12))).writeto(tmp_path / 'cube.fits')
    files['cube'] = (tmp_path / 'cube.fits', '3-D image of shape')
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column('a', 'E', array=np.ones(3))])]).writeto(
        tmp_path / 'table.fits')
    files['table'] = (tmp_path / 'table.fits', 'no 2-D image HDU')
    (tmp_path / 'gz.fits.gz').write_bytes(gzip.compress(raw)[:200])
    files['broken gzip'] = (tmp_path / 'gz.fits.gz', 'compressed file')
    return files


def test_bad_files_raise_one_line_errors(tmp_path):
    for kind, (path, match) in _bad_files(tmp_path).items():
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # nothing may leak as a warning
            with pytest.raises(FrameReadError, match=match) as info:
                read_frame(path, unit='adu')
        msg = str(info.value)
        assert '\n' not in msg, kind
        assert str(path) in msg, kind
        assert isinstance(info.value, OSError)
        assert isinstance(info.value, ValueError)


def test_bad_arguments_name_the_problem(tmp_path):
    data = _data()
    path = tmp_path / 'f.fits'
    fits.HDUList([fits.PrimaryHDU(data), fits.ImageHDU(data, name='ERR')]
                 ).writeto(path)
    with pytest.raises(FrameReadError, match=r"hdu=5 not found"):
        read_frame(path, hdu=5, unit='adu')
    with pytest.raises(FrameReadError, match=r"hdu='SCI' not found"):
        read_frame(path, hdu='SCI', unit='adu')
    with pytest.raises(FrameReadError, match='uncertainty shape'):
        read_frame(path, unit='adu', uncertainty=np.ones((3, 3)))
    with pytest.raises(FrameReadError, match='mask shape'):
        read_frame(path, unit='adu', mask=np.ones((3, 3)))
    with pytest.raises(FrameReadError, match="uncertainty='NOPE'"):
        read_frame(path, unit='adu', uncertainty='NOPE')
    with pytest.raises(FrameReadError, match='science HDU itself'):
        read_frame(path, unit='adu', uncertainty=0)
    with pytest.raises(ValueError, match='uncertainty_type'):
        read_frame(path, unit='adu', uncertainty_type='sigma')
    with pytest.raises(TypeError, match='file must be a path'):
        read_frame(12345)


def test_nonstandard_cards_one_warning(tmp_path):
    path = tmp_path / 'eso.fits'
    hdr = fits.Header({'BUNIT': 'adu', 'EXPTIME': 1200.0})
    fits.PrimaryHDU(_data(), hdr).writeto(path)
    raw = path.read_bytes()
    card = b'ESO-LOG 03:04:08>-START EXPO EMMI RED          / Start exp.'
    card = card.ljust(80)
    end = raw.index(b'END' + b' ' * 77)
    assert raw[end + 80:end + 160] == b' ' * 80  # room for one more card
    path.write_bytes(raw[:end] + card + raw[end:end + 80] + raw[end + 160:])
    with pytest.warns(AstropyUserWarning) as record:
        ccd = read_frame(path)
    messages = [str(w.message) for w in record]
    assert len(messages) == 1, messages
    assert '1 non-standard header card' in messages[0]
    assert ccd.meta['EXPTIME'] == 1200.0 and ccd.unit == u.adu


def test_cli_reports_bad_files_in_one_line(tmp_path):
    """``ccdphot measure`` on each bad file: exit 2, one stderr line."""
    for kind, (path, match) in _bad_files(tmp_path).items():
        if kind == 'directory':
            continue
        code, _, err = ccdphot('measure', path, '--box', '0:5,0:5')
        assert code == 2, kind
        assert err.count('\n') == 1 and 'Traceback' not in err, kind
        assert match in err, kind
