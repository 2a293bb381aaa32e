"""
Hostile inputs are refused with one line naming the file, the column and
the row (or read right): scaled 16-bit frames in float64, corrupt tiles of
compressed frames, negative variance maps, blank or tampered suggested-box
cells, ids too large for 64 bits, sky positions with no pixel position,
frames and tables read from a pipe.
"""

import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, InverseVariance, VarianceUncertainty
from astropy.table import QTable, Table
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot
from photutils.aperture import CircularAnnulus, CircularAperture

from ccdphot_ext import (
    ApertureNoise,
    BoxAperture,
    ErrorBudget,
    SkyEstimate,
    find_stars,
    photometer,
    read_frame,
)
from ccdphot_ext.flags import FLAG_NO_SOURCE_TERM
from ccdphot_ext.io.fits import FrameReadError
from ccdphot_ext.io.positions import read_positions

EXE = os.path.join(os.path.dirname(sys.executable), 'ccdphot')


def _cli(args):
    return ccdphot(*args)


def _one_line_error(code, err, *words):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    for word in words:
        assert word in lines[0], lines[0]


# -- scaled integers ---------------------------------------------------------

def test_scaled_16bit_frame_is_read_in_float64(tmp_path):
    rng = np.random.default_rng(4)
    raw = rng.integers(-30000, 30000, (40, 60)).astype(np.int16)
    raw[5, 7] = -32768  # BLANK
    hdu = fits.PrimaryHDU(raw)
    hdu.header.update({'BSCALE': 0.37, 'BZERO': 1234.5, 'BLANK': -32768,
                       'BUNIT': 'adu'})
    hdu.writeto(tmp_path / 's.fits')
    ccd = read_frame(tmp_path / 's.fits')
    expected = raw.astype(np.float64) * 0.37 + 1234.5
    expected[5, 7] = np.nan
    assert ccd.data.dtype == np.float64
    np.testing.assert_array_equal(ccd.data, expected)
    # the header describes the values read, not how they were stored
    assert 'BSCALE' not in ccd.meta and 'BZERO' not in ccd.meta
    # a sum matches numpy in float64 (astropy's float32 was off by ~1e-5)
    box = BoxAperture.from_slices(np.s_[10:30, 10:40])
    table = photometer(ccd, box, SkyEstimate(0.0, 1.0, 100))
    assert table['aperture_sum'][0].value == pytest.approx(
        expected[10:30, 10:40].sum(), rel=1e-14)


def test_blank_pixels_of_an_integer_image_are_bad_pixels(tmp_path):
    raw = np.full((20, 30), 1000, dtype=np.int16)
    raw[8, 12] = -32768  # BLANK: no value, in an unscaled image
    hdu = fits.PrimaryHDU(raw)
    hdu.header.update({'BLANK': -32768, 'BUNIT': 'adu'})
    hdu.writeto(tmp_path / 'blank.fits')
    ccd = read_frame(tmp_path / 'blank.fits')
    assert np.isnan(ccd.data[8, 12]) and np.nansum(ccd.data) == 1000 * 599
    box = BoxAperture.from_slices(np.s_[5:12, 10:15])
    table = photometer(ccd, box, SkyEstimate(0.0, 1.0, 100))
    # 2048: no gain, and a level of 0 bounds no source term
    assert table['flags'][0] == 2 | FLAG_NO_SOURCE_TERM
    assert table['n_pix'][0] == 34
    assert table['aperture_sum'][0].value == 34000.0
    hdu.header['BSCALE'] = 0.0
    hdu.writeto(tmp_path / 'zero.fits')
    with pytest.raises(FrameReadError, match='zero.fits: HDU 0: BSCALE = '
                                             '0.0 cannot scale the data'):
        read_frame(tmp_path / 'zero.fits')


def test_unsigned_convention_stays_exact_integers(tmp_path):
    raw = np.array([[0, 1, 65535], [32768, 40000, 7]], dtype=np.uint16)
    fits.PrimaryHDU(raw).writeto(tmp_path / 'u.fits')
    dq = np.array([[0, 1, 2**31], [2**32 - 1, 5, 0]], dtype=np.uint32)
    fits.HDUList([fits.PrimaryHDU(),
                  fits.ImageHDU(raw.astype(float), name='SCI'),
                  fits.ImageHDU(dq, name='DQ')]).writeto(tmp_path / 'p.fits')
    ccd = read_frame(tmp_path / 'u.fits', unit='adu')
    assert ccd.data.dtype == np.uint16
    np.testing.assert_array_equal(ccd.data, raw)
    product = read_frame(tmp_path / 'p.fits', unit='electron', dq_bits='all')
    assert product.flags.dtype == np.uint32
    np.testing.assert_array_equal(product.flags, dq)


# -- corrupt compressed tiles ------------------------------------------------

@pytest.fixture
def corrupt_fz(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.normal(100, 5, (256, 256)).astype(np.float32)
    path = tmp_path / 'tiles.fits.fz'
    fits.HDUList([fits.PrimaryHDU(),
                  fits.CompImageHDU(data)]).writeto(path)
    raw = bytearray(path.read_bytes())
    for i in range(len(raw) - 20000, len(raw) - 19000):  # inside the heap
        raw[i] = (raw[i] * 7 + 13) % 256
    path.write_bytes(bytes(raw))
    return path


def test_corrupt_fz_tile_is_bad_input(corrupt_fz):
    with pytest.raises(FrameReadError, match='tiles.fits.fz.*corrupt '
                                             'compressed image'):
        read_frame(corrupt_fz, unit='adu')
    code, _, err = _cli(['measure', str(corrupt_fz), '--box', '10:20,10:20',
                         '--unit', 'adu'])
    _one_line_error(code, err, 'tiles.fits.fz', 'tile')


# -- data changed after writing (DATASUM) ------------------------------------

def _star_frame(seed):
    """A 64 x 64 frame of sky 100 with a star at (32, 30), in float32."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:64, :64]
    star = 5000.0 * np.exp(-((x - 32) ** 2 + (y - 30) ** 2) / 8.0)
    return (rng.normal(100, 5, (64, 64)) + star).astype(np.float32)


def _write_summed(path, kind, data, header=None):
    """``data`` written with DATASUM and CHECKSUM, as a plain image
    ('image', HDU 0) or tile-compressed (HDU 1); returns the HDU index and
    the offset of the first byte of its data unit."""
    header = fits.Header(header or {})
    if kind == 'image':
        fits.PrimaryHDU(data, header).writeto(path, checksum=True)
    else:  # PLIO holds integers
        pixels = data.astype(np.int32) if kind == 'PLIO_1' else data
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(
            pixels, header, compression_type=kind)]).writeto(path,
                                                             checksum=True)
    index = 0 if kind == 'image' else 1
    with fits.open(path, disable_image_compression=True) as hdul:
        info = hdul.fileinfo(index)
        heap = (0 if kind == 'image' else
                hdul[index].header['NAXIS1'] * hdul[index].header['NAXIS2'])
    return index, info['datLoc'] + heap


@pytest.mark.parametrize('kind', ['image', 'RICE_1', 'PLIO_1'])
def test_data_that_do_not_match_their_datasum_are_refused(tmp_path, kind):
    data = _star_frame(3)
    path = tmp_path / f'{kind.lower()}.fits'
    index, start = _write_summed(path, kind, data, {'BUNIT': 'adu'})
    good = fits.getdata(path, index, memmap=False)
    raw = bytearray(path.read_bytes())
    raw[start + 105] ^= 0x10  # one bit of a pixel, or inside a tile
    path.write_bytes(bytes(raw))
    # the file still reads, to wrong pixels: astropy alone is silent
    # unless asked for checksums
    wrong = fits.getdata(path, index)
    assert wrong.shape == good.shape and (wrong != good).any()
    with pytest.raises(FrameReadError, match=rf'{path}: HDU {index}: the '
                       'data do not match their DATASUM .*corrupt'):
        read_frame(path)
    code, _, err = _cli(['measure', str(path), '--box', '25:40,22:38'])
    _one_line_error(code, err, str(path), 'DATASUM')


def test_a_frame_whose_data_changed_costs_only_that_frame(tmp_path):
    frames = []
    for k in range(3):
        path = tmp_path / f'f{k}.fits.fz'
        _, start = _write_summed(path, 'RICE_1', _star_frame(k),
                                 {'BUNIT': 'adu', 'MJD-OBS': 60400.0 + k})
        frames.append(path)
    raw = bytearray(frames[1].read_bytes())
    raw[start + 105] ^= 0x10
    frames[1].write_bytes(bytes(raw))
    positions = tmp_path / 'stars.ecsv'
    QTable({'id': [1], 'x_center': [32.0], 'y_center': [30.0]}).write(
        positions)
    out = tmp_path / 'lc.ecsv'
    code, _, err = _cli(['batch', *map(str, frames), '--positions',
                         str(positions), '--size', '15', '-o', str(out)])
    assert code == 1, err
    assert 'f1.fits.fz: frame failed' in err and 'DATASUM' in err
    lc = QTable.read(out)
    assert lc['status'].tolist() == ['ok', 'ok', 'failed']
    assert [os.path.basename(f) for f in lc['frame']] == [
        'f0.fits.fz', 'f2.fits.fz', 'f1.fits.fz']
    assert 'DATASUM' in lc['error'][2]


@pytest.mark.parametrize('dtype, shape', [
    (np.int16, (3, 3)), (np.uint16, (3, 5)), (np.uint8, (5, 7)),
    (np.float64, (4, 6))])
def test_valid_checksums_read_silently(tmp_path, dtype, shape):
    # odd byte counts: the padding of the last block sums at its offset
    pixels = (np.arange(np.prod(shape)) * 37 % 251).astype(dtype)
    pixels = pixels.reshape(shape)
    dq = np.zeros(shape, np.uint32)
    dq[1, 2] = 1
    path = tmp_path / 'ok.fits'
    fits.HDUList([fits.PrimaryHDU(),
                  fits.ImageHDU(pixels, name='SCI'),
                  fits.ImageHDU(np.full(shape, 2.0), name='ERR'),
                  fits.ImageHDU(dq, name='DQ')]).writeto(path, checksum=True)
    ccd = read_frame(path, unit='adu')  # any warning fails the suite
    np.testing.assert_array_equal(ccd.data, pixels)
    assert int(ccd.flags[1, 2]) == 1 and ccd.mask.sum() == 1


@pytest.mark.parametrize('kind', ['image', 'RICE_1'])
def test_a_header_edited_after_writing_stays_readable(tmp_path, kind):
    path = tmp_path / f'{kind.lower()}.fits'
    index, _ = _write_summed(path, kind, _star_frame(5),
                             {'BUNIT': 'adu', 'OBJECT': 'M31'})
    good = fits.getdata(path, index, memmap=False)
    # a tool that edits the header in place without updating CHECKSUM
    raw = path.read_bytes()
    assert raw.count(b"'M31     '") == 1
    path.write_bytes(raw.replace(b"'M31     '", b"'M33     '"))
    with pytest.warns(AstropyUserWarning, match=rf'{path}: HDU {index}: '
                      'the HDU does not match its CHECKSUM: the header was '
                      'edited .* the data match their DATASUM and are read'):
        ccd = read_frame(path)
    assert ccd.meta['OBJECT'] == 'M33'
    np.testing.assert_array_equal(ccd.data, good)
    # astropy's own fits.setval updates CHECKSUM: no warning at all
    if kind == 'image':
        fits.setval(path, 'OBSERVER', value='me')
        np.testing.assert_array_equal(read_frame(path).data, good)


def test_an_edited_primary_header_of_an_extension_image_warns(tmp_path):
    # the science image is in an extension; it inherits the primary
    # header's keywords (here GAIN), so an edit there is named too
    path = tmp_path / 'mef.fits'
    fits.HDUList([fits.PrimaryHDU(header=fits.Header({'GAIN': 2.5})),
                  fits.ImageHDU(_star_frame(6), fits.Header(
                      {'BUNIT': 'adu'}), name='SCI')]).writeto(
                          path, checksum=True)
    raw = path.read_bytes()
    card = fits.Card('GAIN', 2.5).image.encode()
    assert raw.count(card) == 1
    path.write_bytes(raw.replace(card, fits.Card('GAIN', 3.5).image.encode()))
    with pytest.warns(AstropyUserWarning, match=rf'{path}: primary HDU: '
                      'the HDU does not match its CHECKSUM: the header was '
                      'edited'):
        ccd = read_frame(path)
    assert ccd.meta['GAIN'] == 3.5 and ccd.data.shape == (64, 64)
    # the primary's keywords not inherited (INHERIT = F): not checked
    with fits.open(path, mode='update') as hdul:
        hdul[1].header['INHERIT'] = False
        hdul[1].add_checksum()
    assert 'GAIN' not in read_frame(path).meta  # and no warning


# -- negative variance maps --------------------------------------------------

@pytest.mark.parametrize('name, words', [
    ('VAR', 'a variance'), ('IVAR', 'an inverse variance'),
    ('ERR', 'a standard deviation'), ('WHT', 'a weight')])
def test_negative_variance_extension_is_refused(tmp_path, name, words):
    data = np.full((30, 30), 100.0)
    values = np.full((30, 30), 4.0 if name == 'VAR' else 0.25)
    values[12, 14] = -4.0  # on the star of the box below
    path = tmp_path / f'{name.lower()}.fits'
    fits.HDUList([fits.PrimaryHDU(data, fits.Header({'BUNIT': 'adu'})),
                  fits.ImageHDU(values, name=name)]).writeto(path)
    with pytest.raises(FrameReadError, match=rf'{path}: the {name} HDU '
                       r'holds 1 negative .*\(x, y\) = \(14, 12\); '
                       rf'{words} cannot be negative'):
        read_frame(path)
    code, _, err = _cli(['measure', str(path), '--box', '5:20,5:20'])
    _one_line_error(code, err, str(path), f'{name} HDU', 'negative')


def test_negative_uncertainty_file_names_the_option(tmp_path):
    image, sigma = tmp_path / 'image.fits', tmp_path / 'sigma.fits'
    fits.PrimaryHDU(np.full((30, 30), 100.0),
                    fits.Header({'BUNIT': 'adu'})).writeto(image)
    values = np.full((30, 30), 2.0)
    values[12, 14] = -2.0
    fits.PrimaryHDU(values).writeto(sigma)
    code, _, err = _cli(['measure', str(image), '--box', '5:20,5:20',
                         '--uncertainty', str(sigma)])
    # read as read_frame reads it (its one path), naming the option
    _one_line_error(code, err, f'--uncertainty {sigma}: ',
                    'holds 1 negative standard deviation value',
                    '(x, y) = (14, 12)')


@pytest.mark.parametrize('kind', [VarianceUncertainty, InverseVariance])
def test_negative_variance_in_memory_is_refused(kind):
    img = np.full((20, 20), 10.0)
    values = np.full((20, 20), 1.0)
    values[3, 4] = -1.0
    ccd = CCDData(img, unit='adu', uncertainty=kind(values))
    box = BoxAperture.from_slices(np.s_[2:6, 2:6])
    # refused before any square root (no "invalid value" RuntimeWarning)
    with pytest.raises(ValueError, match=rf'uncertainty \({kind.__name__}\)'
                                         r' must be non-negative.*\(4, 3\)'):
        photometer(ccd, box, SkyEstimate(10.0, 1.0, 100))


# -- a sky without a level under some apertures -------------------------

def test_a_row_without_a_sky_level_is_said_so_not_called_an_overflow():
    # annuli wholly covered by the apertures left out of them: those rows
    # have no sky, so no flux; said as such and flagged 64 (not 2, not an
    # overflow of pixels near 1)
    rng = np.random.default_rng(0)
    data = rng.normal(1.0, 0.1, (100, 100))
    pos = np.array([[50.0, 50.0], [50.0, 62.0], [50, 38], [62, 50],
                    [38, 50], [58.5, 58.5], [41.5, 41.5], [58.5, 41.5],
                    [41.5, 58.5]])
    apertures = CircularAperture(pos, 9.0)
    with pytest.warns(AstropyUserWarning, match='sky annuli flagged'):
        sky = SkyEstimate.from_annulus(
            data, CircularAnnulus(pos, 10, 14), exclude=apertures)
    assert np.isnan(sky.value[0]) and np.isfinite(sky.value[1:]).all()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        table = photometer(data, apertures, sky)
    messages = [str(w.message) for w in said]
    assert not any('overflow' in m for m in messages)
    assert any(m.startswith('aperture(s) 0 have no sky level') and
               m.endswith('flagged 64') for m in messages)
    assert np.isnan(table['aperture_sum'][0])
    assert table['flags'][0] == 64
    assert np.isfinite(table['aperture_sum'][1:]).all()


# -- pixels too large to add up ---------------------------------------------

def test_pixels_too_large_to_add_up_are_named_or_flagged():
    from ccdphot_ext import measure

    img = np.random.default_rng(4).normal(100.0, 5.0, (40, 50))
    img[30:32, 40:42] = 1e308  # finite, but their sum and squares are not
    with pytest.raises(ValueError, match=r'sky statistics overflow: 4 '
                       r'pixel\(s\) of magnitude up to 1e\+308 \(the first '
                       r'at \(x, y\) = \(40, 30\)\)'):
        SkyEstimate.from_image(img)
    sky = SkyEstimate(100.0, 5.0, 1000)
    boxes = BoxAperture([(10.0, 10.0), (40.5, 30.5)], 5, 5)
    for ap in (boxes, BoxAperture([(10.0, 10.0), (40.5, 30.5)], 5, 5,
                                  theta=0.3)):  # box and general engines
        with pytest.warns(AstropyUserWarning, match=r'sum of aperture\(s\) '
                          r'1 overflows: 4 pixel.*flagged 2'):
            table = photometer(img, ap, sky)
        assert table['flags'].tolist() == [0, 2]  # never inf with flags 0
        assert np.isfinite(table['aperture_sum'][0])
    with pytest.raises(ValueError, match='aperture: its sum overflows'):
        measure(img, BoxAperture((40.5, 30.5), 5, 5), sky)
    # float32's largest values add up in float64: no overflow, no warning
    img32 = np.where(img > 1e300, 0.0, img).astype(np.float32)
    img32[30:32, 40:42] = np.finfo(np.float32).max
    sky32 = SkyEstimate.from_image(img32, method='median')
    assert abs(sky32.value - 100.0) < 1.0


def test_error_bars_too_large_to_square_are_flagged_or_named():
    # finite inputs whose variance lies beyond the largest float: an inf
    # error bar is never returned with flags 0, and no numpy overflow
    # warning leaks (the suite turns RuntimeWarnings into errors)
    from ccdphot_ext import ErrorBudget, measure

    img = np.random.default_rng(4).normal(10.0, 5.0, (25, 40))
    img[10:15, 18:23] += 1000.0
    sky = SkyEstimate(10.0, 1e160, 1000)  # its std squares to inf
    with pytest.warns(AstropyUserWarning, match=r'error of aperture\(s\) '
                      r'0, 1 overflows: its variance term\(s\) sky, '
                      r'sky_mean .*flagged 2'):
        table = photometer(img, BoxAperture([(20, 12), (5, 5)], 5, 5), sky,
                           gain=2.0)
    assert np.all(table['flags'] & 2)
    assert np.isfinite(table['aperture_sum']).all()
    # one aperture's budget: the scale whose square overflows is named
    scale = r'sky_std must be between .* \(its square must be a normal'
    with pytest.raises(ValueError, match=scale):
        measure(img, BoxAperture((20, 12), 5, 5), sky, gain=2.0)
    with pytest.raises(ValueError, match=scale):
        ErrorBudget.from_aperture(5.0, 1e12, 1e200)
    with pytest.raises(ValueError, match="variance term 'sky' overflows"):
        ErrorBudget.from_aperture(5.0, 1e150, 1e150)
    # a flux so small that its magnitude error overflows: inf, silently
    budget = ErrorBudget.from_aperture(1e-306, 400, 3.0, gain=1.0, n_sky=10)
    assert budget.mag_err == np.inf and np.isfinite(budget.error)


@pytest.mark.parametrize('scale', [1e37, 1e100, 1e-150, 1e-300])
def test_whole_frame_sky_of_extreme_values_is_the_scaled_sky(scale):
    # the binned frame the source mask is found on is float32 (1e37 * 100
    # became inf, 1e-150 became 0: the mask and the variation were lost);
    # the sky of a frame times a power of ten is the frame's sky times it
    y, x = np.mgrid[:256, :256]
    img = (np.random.default_rng(7).normal(100.0, 5.0, (256, 256))
           + 2000.0 * np.exp(-((x - 128) ** 2 + (y - 128) ** 2) / 32.0)
           + 0.05 * x)
    ref = SkyEstimate.from_image(img)
    if scale >= 1e-150:
        sky = SkyEstimate.from_image(img * scale)
    else:  # measured, but its square underflows: doubtful
        with pytest.warns(AstropyUserWarning, match='square underflows'):
            sky = SkyEstimate.from_image(img * scale)
    assert sky.meta['n_masked_sources'] == ref.meta['n_masked_sources'] > 0
    assert sky.value == pytest.approx(ref.value * scale, rel=1e-12)
    assert sky.std == pytest.approx(ref.std * scale, rel=1e-12)
    assert sky.error_on_mean == pytest.approx(ref.error_on_mean * scale,
                                              rel=1e-12)
    offsets = ref.background_variation.offsets.astype(float) * scale
    np.testing.assert_allclose(sky.background_variation.offsets, offsets,
                               rtol=0, atol=1e-5 * np.abs(offsets).max())


def test_a_sigma_too_small_to_square_is_a_zero_sigma():
    img = np.random.default_rng(4).normal(100.0, 5.0, (40, 50))
    box = BoxAperture.from_slices(np.s_[10:20, 10:20])
    sky = SkyEstimate(100.0, 5.0, 1000)
    sigma = np.full(img.shape, 5.0)
    sigma[15, 15] = 1e-160  # its variance underflows to 0
    with pytest.warns(AstropyUserWarning, match=r'1 pixel\(s\) .* \(x, y\) '
                      r'= \(15, 15\)\) have a zero'):
        table = photometer(img, box, sky, uncertainty=sigma)
    assert table['n_pix'][0] == 99 and table['flags'][0] == 2
    with pytest.raises(ValueError, match='uncertainty: every sigma is below '
                       '.* too small to square'):
        photometer(img, box, sky, uncertainty=np.full(img.shape, 1e-160))


def test_a_nan_or_infinite_aperture_size_is_named():
    from photutils.aperture import (
        CircularAnnulus,
        CircularAperture,
        EllipticalAperture,
    )

    from ccdphot_ext import measure

    img = np.random.default_rng(4).normal(100.0, 5.0, (40, 50))
    sky = SkyEstimate(100.0, 5.0, 1000)
    # photutils accepts these; they failed later ("cannot convert float NaN
    # to integer", an OverflowError for inf)
    for ap, param in ((CircularAperture((15, 15), np.nan), 'r'),
                      (CircularAperture((15, 15), np.inf), 'r'),
                      (EllipticalAperture((15, 15), 3, 2, theta=np.nan),
                       'theta')):
        with pytest.raises(ValueError, match=f'^apertures: aperture 0: its '
                           f'{param} must be finite'):
            photometer(img, ap, sky)
        with pytest.raises(ValueError, match=f'^aperture: its {param} must '
                           'be finite'):
            measure(img, ap, sky)
    with pytest.raises(ValueError, match='^annulus: its r_out must be '
                       'finite'):
        SkyEstimate.from_annulus(img, CircularAnnulus((15, 15), 3, np.inf))


@pytest.mark.parametrize('far', [1e30, -1e300, 1e19])
def test_a_position_far_off_the_frame_is_an_off_frame_row(far):
    # filterwarnings is 'error': numpy's "invalid value encountered in
    # cast" (a window corner of 1e30 as an integer) would fail here, and
    # photutils' masks raised ZeroDivisionError that far away
    from photutils.aperture import (
        CircularAnnulus,
        CircularAperture,
        EllipticalAnnulus,
        RectangularAnnulus,
        RectangularAperture,
    )

    img = np.random.default_rng(4).normal(100.0, 5.0, (40, 50))
    sky = SkyEstimate(100.0, 5.0, 1000)
    xy = [(15.0, 15.0), (far, 20.0)]
    for ap in (CircularAperture(xy, 5), RectangularAperture(xy, 5, 5),
               EllipticalAnnulus(xy, 3, 6, 4), BoxAperture(xy, 5, 5),
               BoxAperture(xy, 5, 5, theta=0.2)):
        for method in ('exact', 'center'):
            table = photometer(img, ap, sky, sum_method=method)
            one = photometer(img, ap[0], sky, sum_method=method)
            assert table['flags'][1] == 1 and table['n_pix'][1] == 0
            assert np.isnan(table['aperture_sum'][1])
            assert table['aperture_sum'][0] == one['aperture_sum'][0]
    with pytest.warns(AstropyUserWarning, match='1 of 2 sky annuli'):
        local = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 5, 8))
    assert np.isnan(local.value[1]) and np.isfinite(local.value[0])
    with pytest.raises(ValueError, match='^annulus: a position .* too far'):
        SkyEstimate.from_annulus(img, RectangularAnnulus(
            [(15.0, 15.0), (1e30, 20.0)], 5, 9, 9))


def test_a_gain_given_for_rate_data_without_exposure_time_warns():
    from ccdphot_ext import DetectorParameters, measure

    img = np.random.default_rng(4).normal(100.0, 5.0, (40, 50))
    img[13:17, 13:17] += 400.0
    ccd = CCDData(img, unit='adu / s')
    box = BoxAperture.from_slices(np.s_[10:20, 10:20])
    sky = SkyEstimate(100.0, 5.0, 1000)
    match = 'gain=2 not applied: data in adu / s .* need the exposure time'
    with pytest.warns(AstropyUserWarning, match=match):
        table = photometer(ccd, box, sky, gain=2.0)
    assert np.isnan(table['var_source'][0])  # as noted in meta, now said
    with pytest.warns(AstropyUserWarning, match=match):
        assert np.isnan(measure(ccd, box, sky, gain=2.0).budget.terms.get(
            'source', np.nan))
    # with the exposure time the gain is used, silently
    table = photometer(ccd, box, sky, gain=2.0,
                       detector=DetectorParameters(exptime=10.0))
    assert table['var_source'][0].value == pytest.approx(
        table['aperture_sum'][0].value / 20.0)


def test_a_mask_of_text_or_objects_is_named():
    img = np.random.default_rng(4).normal(100.0, 5.0, (40, 50))
    box = BoxAperture.from_slices(np.s_[10:20, 10:20])
    sky = SkyEstimate(100.0, 5.0, 1000)
    # text '0' was True (a non-empty string): every pixel masked
    for mask in (np.full(img.shape, '0'), np.full(img.shape, None), 'abc'):
        with pytest.raises(TypeError, match='^mask must be booleans'):
            photometer(img, box, sky, mask=mask)
    for mask in (np.zeros(img.shape, np.uint8), np.zeros(img.shape, 'f4')):
        assert photometer(img, box, sky, mask=mask)['n_pix'][0] == 100


def test_a_gradient_check_of_values_too_small_to_square_is_named():
    from ccdphot_ext import gradient_check

    img = np.random.default_rng(4).normal(100.0, 5.0, (128, 128))
    # it said "too few usable meshes to fit a plane"
    with pytest.raises(ValueError, match='^data: its pixel values are too '
                       'small for a gradient check'):
        gradient_check(img * 1e-200, sky=SkyEstimate(1e-198, 5e-150, 10**4))
    small = gradient_check(img * 1e-70, sky=SkyEstimate(1e-68, 5e-70, 10**4))
    plain = gradient_check(img, sky=SkyEstimate(100.0, 5.0, 10**4))
    assert small.gx == pytest.approx(plain.gx * 1e-70, rel=1e-9)


@pytest.mark.parametrize('cards, reason', [
    ({'CTYPE1': 'RA---XYZ', 'CDELT1': -1e-4, 'CDELT2': 1e-4},
     r'Unrecognized projection code \(XYZ in CTYPE1\)'),
    ({'CDELT1': 0.0, 'CDELT2': 1e-4}, 'matrix is singular'),
])
def test_an_unusable_header_wcs_is_named_with_its_reason(tmp_path, cards,
                                                          reason):
    header = fits.Header({'BUNIT': 'adu', 'CTYPE1': 'RA---TAN',
                          'CTYPE2': 'DEC--TAN', 'CRVAL1': 150.0,
                          'CRVAL2': 20.0, 'CRPIX1': 25.0, 'CRPIX2': 20.0})
    header.update(cards)
    path = tmp_path / 'w.fits'
    fits.PrimaryHDU(np.random.default_rng(1).normal(100.0, 5.0, (40, 50)),
                    header).writeto(path)
    # wcslib's first line ("ERROR 4 in wcs_types() at line 3121 of file
    # cextern/wcslib/C/wcs.c:") was all the warning said
    code, _, err = _cli(['measure', str(path), '--box', '10:20,10:20'])
    assert code == 0, err
    lines = [line for line in err.splitlines() if 'header WCS' in line]
    assert len(lines) == 1
    assert re.search('ignoring the header WCS: .*' + reason, lines[0])
    assert 'wcslib' not in lines[0]


def test_a_background_map_of_values_too_small_to_square_is_named(tmp_path):
    from ccdphot_ext.background.maps import frame_background2d

    img = np.random.default_rng(4).normal(100.0, 5.0, (128, 128))
    # it said "no 64 x 64 mesh ... has half of its pixels unmasked"
    with pytest.raises(ValueError, match='^data: its pixel values are too '
                       'small for a background map'):
        frame_background2d(img * 1e-200)
    path = tmp_path / 'tiny.fits'
    fits.PrimaryHDU(img * 1e-200, fits.Header({'BUNIT': 'adu'})
                    ).writeto(path)
    code, _, err = _cli(['measure', str(path), '--box', '10:20,10:20',
                         '--sky', 'background2d'])
    _one_line_error(code, err, '--sky background2d', 'too small')
    bkg, _ = frame_background2d(img * 1e-70)
    assert np.median(bkg.background) == pytest.approx(
        np.median(frame_background2d(img)[0].background) * 1e-70, rel=1e-9)


# -- positions tables --------------------------------------------------------

def _find_table(**changes):
    table = Table({'id': [1, 2, 3], 'x_center': [20.0, 40.0, 60.0],
                   'y_center': [20.0, 25.0, 30.0],
                   'box_x0': [14, 34, 54], 'box_x1': [27, 47, 67],
                   'box_y0': [14, 19, 24], 'box_y1': [27, 32, 37]},
                  masked=True)
    for name, (row, value) in changes.items():
        if value is np.ma.masked:
            table[name].mask[row] = True
        else:
            table[name][row] = value
    return table


@pytest.mark.parametrize('changes, words', [
    ({'box_x0': (1, np.ma.masked)}, ['box_x0', 'row(s) 2', 'blank']),
    ({'box_x1': (2, 50)}, ['box_x1 must exceed box_x0', 'row(s) 3']),
    ({'box_y1': (0, 29)}, ['differ in size', 'row 1: 13 x 15']),
], ids=['blank_cell', 'reversed', 'mixed_sizes'])
def test_tampered_suggested_boxes_are_refused(tmp_path, changes,
                                              words):
    path = tmp_path / 'stars.ecsv'
    _find_table(**changes).write(path)
    with pytest.raises(ValueError) as info:
        read_positions(path)
    for word in [str(path), *words]:
        assert word in str(info.value)
    frame = tmp_path / 'f.fits'
    CCDData(np.full((50, 80), 10.0), unit='adu').write(frame)
    code, _, err = _cli(['measure', str(frame), '--positions', str(path)])
    _one_line_error(code, err, '--positions', str(path), *words)


def test_box_columns_come_all_four_or_none(tmp_path):
    table = _find_table()
    del table['box_y1']
    with pytest.raises(ValueError, match='box_x0, box_x1, box_y0 but not '
                                         'box_y1'):
        read_positions(table)
    assert read_positions(_find_table())['box_x1'].tolist() == [27, 47, 67]


@pytest.mark.parametrize('ids, what', [
    (np.array([1.0, 1e20, 3.0]), 'floating point'),
    # 2**53 + 1 read as a float is 2**53: no longer the id written
    (np.array([1.0, 2.0**53, 3.0]), 'floating point'),
    (np.array([1, 2**63 + 5, 3], dtype=np.uint64), '64-bit integer'),
    # whole numbers beyond 64 bits, kept as text by the table reader
    (np.array(['1', '100000000000000000000', '3']), '64-bit integer'),
], ids=['float_1e20', 'float_2**53', 'uint64', 'text_1e20'])
def test_ids_too_large_are_refused(ids, what):
    table = Table({'id': ids, 'x': [1.0, 2.0, 3.0], 'y': [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=rf'too large to keep exactly .*row'
                                         rf'\(s\) 2\): .*as (a )?{what}'):
        read_positions(table)
    # ids that fit are kept exactly
    table['id'] = np.array([1, 2**62 + 1, 3], dtype=np.uint64)
    assert read_positions(table)['id'][1] == 2**62 + 1
    table['id'] = np.array([1.0, 2.0**53 - 1, 3.0])
    assert read_positions(table)['id'][1] == 2**53 - 1
    table['id'] = np.array(['1', ' 9223372036854775807 ', '-3'])
    assert read_positions(table)['id'].tolist() == [1, 2**63 - 1, -3]


def test_ids_too_large_in_a_csv_file_are_refused(tmp_path):
    path = tmp_path / 'stars.csv'
    path.write_text('id,x,y\n100000000000000000000,18,20\n2,45,34\n')
    frame = tmp_path / 'f.fits'
    fits.PrimaryHDU(np.zeros((48, 90)), fits.Header({'BUNIT': 'adu'})
                    ).writeto(frame)
    code, _, err = _cli(['measure', str(frame), '--positions', str(path),
                         '--size', '9'])
    _one_line_error(code, err, str(path), '100000000000000000000',
                    'too large')


def test_sky_positions_without_a_pixel_position_are_refused():
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [1.0, 1.0]
    wcs.wcs.cdelt = [-1e-4, 1e-4]
    table = Table({'ra': [150.001, 330.0], 'dec': [2.001, -2.0]})
    with pytest.raises(ValueError, match=r'ra/dec of row\(s\) 2 .*330, -2 '
                                         'deg.*far side of the sky'):
        read_positions(table, wcs=wcs)


# -- pipes -------------------------------------------------------------------

def test_frame_and_positions_from_a_pipe(tmp_path):
    frame = tmp_path / 'f.fits'
    img = np.random.default_rng(2).normal(100.0, 3.0, (40, 50))
    CCDData(img, unit='adu').write(frame)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(sys.path)}
    out = tmp_path / 'out.ecsv'
    run = subprocess.run([EXE, 'measure', '/dev/stdin', '--box',
                          '10:20,10:20', '-o', str(out)],
                         input=frame.read_bytes(), capture_output=True,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert QTable.read(out)['aperture_sum'][0].value == pytest.approx(
        img[10:20, 10:20].sum() - 100 * QTable.read(out)['sky'][0].value)
    text = 'x_center,y_center\n15.0,14.0\n'
    run = subprocess.run([EXE, 'measure', str(frame), '--positions',
                          '/dev/stdin', '--size', '5'], input=text.encode(),
                         capture_output=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert b'15.00' in run.stdout
    run = subprocess.run([EXE, 'measure', '/dev/stdin', '--box', '1:2,1:2'],
                         input=b'', capture_output=True, env=env, timeout=120)
    assert run.returncode == 2
    assert b'/dev/stdin: nothing to read' in run.stderr


# -- wrong types named -------------------------------------------------------

def _frame_and_box():
    img = np.random.default_rng(5).normal(100.0, 5.0, (40, 50))
    return img, BoxAperture.from_slices(np.s_[10:20, 10:20])


@pytest.mark.parametrize('what', ['bool', 'complex', 'text', 'object'])
def test_data_and_uncertainty_of_the_wrong_dtype_are_named(what):
    img, box = _frame_and_box()
    sky = SkyEstimate(100.0, 5.0, 1000)
    bad = {'bool': img > 100, 'complex': img.astype(complex),
           'text': img.astype(str), 'object': img.astype(object)}[what]
    # a boolean frame is a mask passed as the image: its sums were
    # returned as fluxes; a complex error map lost its imaginary part
    with pytest.raises(TypeError, match='^data must be numeric'):
        photometer(bad, box, sky)
    sigma = bad
    with pytest.raises(TypeError, match='^uncertainty must be numeric'):
        photometer(img, box, sky, uncertainty=sigma)
    with pytest.raises(TypeError, match='^data.uncertainty must be numeric'):
        photometer(CCDData(img, unit='adu',
                           uncertainty=VarianceUncertainty(sigma)),
                   box, sky)
    # the numbers of a real-valued map are unchanged
    table = photometer(img, box, sky, uncertainty=np.full(img.shape, 5.0))
    assert table['aperture_sum'][0] == pytest.approx(
        img[10:20, 10:20].sum() - 100 * 100.0, rel=1e-12)


def test_uncertainty_given_as_text_is_named():
    img, box = _frame_and_box()
    with pytest.raises(TypeError, match='^uncertainty must be a 2-D numeric'):
        photometer(img, box, SkyEstimate(100.0, 5.0, 1000),
                   uncertainty='sigma.fits')


def test_a_number_as_the_unit_of_magnitudes_is_named():
    import astropy.units as u

    from ccdphot_ext import magnitudes
    # an error bar passed as the second argument: AttributeError or
    # UnitScaleError before
    for unit in (1.0, 0.0, np.float64(2.0)):
        with pytest.raises(TypeError, match='^unit must be an astropy unit'):
            magnitudes([100.0], unit)
    assert magnitudes([100.0], 'adu').mag[0] == pytest.approx(-5.0)
    assert magnitudes([100.0], u.adu).mag[0] == pytest.approx(-5.0)


def test_fit_psf_sigma_names_a_sky_that_is_not_one():
    from ccdphot_ext import fit_psf_sigma
    img, _ = _frame_and_box()
    with pytest.raises(TypeError, match='^sky must be a SkyEstimate'):
        fit_psf_sigma(img, (20, 20))


def test_an_empty_unit_is_refused(tmp_path):
    from ccdphot_ext import parse_unit
    with pytest.raises(ValueError, match='empty text is not a unit'):
        parse_unit('  ')
    path = tmp_path / 'f.fits'
    fits.PrimaryHDU(_frame_and_box()[0]).writeto(path)
    code, out, err = _cli(['measure', str(path), '--box', '10:20,10:20',
                           '--unit', ''])
    _one_line_error(code, err, '--unit', 'empty')


def test_a_number_as_a_unit_is_refused(tmp_path):
    import astropy.units as u
    path = tmp_path / 'f.fits'
    img = _frame_and_box()[0]
    fits.PrimaryHDU(img).writeto(path)
    # astropy reads u.Unit(3) as a dimensionless unit scaled by 3
    with pytest.raises(TypeError, match='^unit must be an astropy unit'):
        read_frame(path, unit=3)
    # read by the nested-parentheses parser: a gain's unit, no data unit
    with pytest.raises(ValueError, match=r'^unit: data in electron sr / MJy'):
        read_frame(path, unit='electron / (MJy / sr)')
    assert read_frame(path, unit='(electron / s) / pix').unit == (
        u.electron / u.s / u.pix)
    box = _frame_and_box()[1]
    with pytest.raises(TypeError, match='^flux_unit must be an astropy'):
        photometer(img * u.MJy / u.sr, box, SkyEstimate(100.0, 5.0, 1000,
                                                        unit=u.MJy / u.sr),
                   flux_unit=2.5)


@pytest.mark.parametrize('values', [[True, False], [1 + 2j, 3 + 0j]])
def test_position_columns_of_booleans_or_complex_are_refused(values):
    # True/False read as pixel 1/0; complex lost its imaginary part
    with pytest.raises(ValueError, match='columns x/y are not numbers'):
        read_positions(Table({'x': values, 'y': [1.0, 2.0]}))


def test_a_latitude_beyond_90_degrees_is_named():
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    wcs.wcs.crval = [150.0, 2.0]
    table = Table({'ra': [150.0, 2.0, 150.0], 'dec': [2.0, 150.0, 2.0]})
    with pytest.raises(ValueError, match=r'column dec is beyond \+-90 deg '
                                         r'in row\(s\) 2 '):
        read_positions(table, wcs=wcs)


@pytest.mark.parametrize('fill', [0.0, np.nan])
def test_an_unusable_uncertainty_file_names_the_option(tmp_path, fill):
    image, sigma = tmp_path / 'image.fits', tmp_path / 'sigma.fits'
    fits.PrimaryHDU(np.full((30, 30), 100.0),
                    fits.Header({'BUNIT': 'adu'})).writeto(image)
    fits.PrimaryHDU(np.full((30, 30), fill)).writeto(sigma)
    code, _, err = _cli(['measure', str(image), '--box', '5:20,5:20',
                         '--uncertainty', str(sigma)])
    # it named IMAGE and "data.uncertainty"
    _one_line_error(code, err, f'--uncertainty {sigma} has no positive '
                    'finite value')


def test_annulus_wider_than_the_frame_is_measured():
    import warnings

    from photutils.aperture import CircularAnnulus
    # the annulus window (37 pixels) is taller than the frame (30): numpy
    # refused the empty window view ("strides is incompatible"), so
    # ccdphot measure --find --sky annulus failed on small frames
    img = np.random.default_rng(3).normal(100.0, 5.0, (30, 40))
    centres = np.array([(20.0, 15.0), (10.0, 10.0)])
    sky = SkyEstimate.from_annulus(img, CircularAnnulus(centres, 8, 18))
    # the same pixels inside a larger frame of NaN give the same sky
    big = np.full((90, 100), np.nan)
    big[30:60, 30:70] = img
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        ref = SkyEstimate.from_annulus(big, CircularAnnulus(centres + 30,
                                                            8, 18))
    np.testing.assert_allclose(sky.value, ref.value, rtol=1e-13)
    np.testing.assert_allclose(sky.std, ref.std, rtol=1e-13)
    np.testing.assert_array_equal(sky.n_pix, ref.n_pix)


# -- public helpers named, never a bare AttributeError or ZeroDivision -------

def test_helpers_name_arguments_of_the_wrong_kind(tmp_path):
    from ccdphot_ext import (
        atomic_write,
        decode_flags,
        differential_photometry,
        growth_curve,
        optimal_extraction,
        plot_frame,
        psf_stamp,
        write_table_atomic,
    )
    img, box = _frame_and_box()
    sky = SkyEstimate(100.0, 5.0, 1000)
    with pytest.raises(TypeError, match='^lightcurve must be an astropy'):
        differential_photometry(np.ones((3, 3)), [1], [2])
    with pytest.raises(TypeError, match='^table must be an astropy Table'):
        write_table_atomic(np.ones(3), tmp_path / 'x.ecsv')
    with pytest.raises(ValueError, match="^format: astropy has no table "
                                         "writer 'foo'"):
        write_table_atomic(QTable({'a': [1]}), tmp_path / 'x.ecsv',
                           format='foo')
    with pytest.raises(TypeError, match='^write must be a function'):
        atomic_write(tmp_path / 'x.txt', 'hello')
    assert not list(tmp_path.iterdir())  # nothing written
    for scales in ('abc', (), (0.5, np.nan)):
        with pytest.raises(ValueError, match='^scales must be positive'):
            growth_curve(img, box, sky, scales=scales)
    for position in ([(10, 10), (20, 20)], (10, 10, 1), 'ab'):
        with pytest.raises(TypeError, match='^position must be one'):
            optimal_extraction(img, position, 1.5, sky, gain=2.0)
    with pytest.raises(ValueError, match=r'^shape must be a \(ny, nx\) pair'):
        psf_stamp(1.5, (10, 10), (40, 50, 3))
    for flags in (2.5, np.nan, '3'):
        with pytest.raises(TypeError, match='^flags must be an integer'):
            decode_flags(flags)
    assert decode_flags(np.int32(9)) == decode_flags(9.0) == [
        'aperture truncated by the frame edge',
        'flux <= 0 (magnitude undefined)']
    with pytest.raises(ValueError, match='^data has no finite pixel'):
        plot_frame(np.full((10, 10), np.nan))


def test_negative_errors_of_a_light_curve_are_refused():
    from ccdphot_ext import differential_photometry
    lc = QTable({'frame': ['a', 'a', 'b', 'b'], 'id': [1, 2, 1, 2],
                 'aperture_sum': [100.0, 200.0, 110.0, 190.0],
                 'aperture_sum_err': [5.0, 6.0, -5.0, 6.0],
                 'flags': [0, 0, 0, 0]})
    # a negative error entered the variance squared, as if positive
    with pytest.raises(ValueError, match=r'aperture_sum_err is negative in '
                                         r'1 row\(s\) \(the first: 3;'):
        differential_photometry(lc, [1], [2])


def test_a_gradient_check_without_pixel_scatter_is_refused():
    from ccdphot_ext import gradient_check
    img, _ = _frame_and_box()
    # meshes of one pixel have no scatter: its repr divided by zero
    with pytest.raises(ValueError, match='^box_size=1: the meshes show no '
                                         'pixel scatter'):
        gradient_check(img, box_size=1)
    assert gradient_check(img, box_size=8).pixel_noise > 0


def test_budget_terms_refuse_what_would_shrink_the_error():
    import astropy.units as u

    from ccdphot_ext import budget_terms, electrons_per_data_unit
    ok = budget_terms([100.0, np.nan], [10, 10], [5.0, np.nan], gain=2.0)
    assert ok.error[0] == pytest.approx(np.sqrt(10 * 25 + 50))
    assert np.isnan(ok.error[1])  # an unmeasured row stays NaN
    # a NaN sky scatter on a measured row gave the error of the source
    # term alone; negative counts or scatters gave negative variances
    with pytest.raises(ValueError, match=r'^sky_std is NaN for a measured '
                                         r'flux \(row\(s\) \[1\]\)'):
        budget_terms([100.0, 50.0], [10, 10], [5.0, np.nan], gain=2.0)
    with pytest.raises(ValueError, match='^n_pix must be non-negative'):
        budget_terms([100.0, 50.0], [10, -10], 5.0)
    with pytest.raises(ValueError, match='^sky_std must be non-negative'):
        budget_terms([100.0], [10], -5.0)
    with pytest.raises(ValueError, match='^gain must be positive'):
        budget_terms([100.0], [10], 5.0, gain=-2.0)
    # a negative gain was returned as the electrons per data unit
    with pytest.raises(ValueError, match='^gain must be positive'):
        electrons_per_data_unit(u.adu, gain=-1)
    with pytest.raises(ValueError, match='^exptime must be positive'):
        electrons_per_data_unit(u.adu / u.s, gain=2.0, exptime=0)


def test_a_keyword_repeated_with_different_values_warns(tmp_path):
    path = tmp_path / 'dup.fits'
    img, box = _frame_and_box()
    header = fits.Header({'BUNIT': 'adu'})
    header.append(('GAIN', 2.0))
    header.append(('GAIN', 3.0))
    header.append(('EXPTIME', 30.0))
    header.append(('EXPTIME', 30.0))  # the same value twice: no doubt
    fits.PrimaryHDU(img, header).writeto(path)
    ccd = read_frame(path)
    with pytest.warns(AstropyUserWarning, match=r'header keyword GAIN '
                      r'appears 2 times with different values \(2.0, 3.0\)'
                      r'; the first, 2.0, is used') as caught:
        table = photometer(ccd, box, SkyEstimate(100.0, 5.0, 1000,
                                                 unit=ccd.unit))
    assert not [w for w in caught if 'EXPTIME' in str(w.message)]
    assert table.meta['gain'] == 2.0


def test_save_figures_checks_every_figure_and_name_first(tmp_path):
    import matplotlib.pyplot as plt

    from ccdphot_ext import save_figures
    fig = plt.figure()
    try:
        # a non-figure raised AttributeError after the figures before it
        # were written; '../x' was written outside outdir
        with pytest.raises(TypeError, match=r"^figures\['b'\] must be a "
                                            'matplotlib Figure'):
            save_figures({'a': fig, 'b': 1}, tmp_path / 'out')
        for name in ('../x', 'a/b', ''):
            with pytest.raises(ValueError, match='not a plain file name'):
                save_figures({name: fig}, tmp_path / 'out')
        assert not (tmp_path / 'out').exists() and not (tmp_path
                                                        / 'x.png').exists()
        paths = save_figures({'a': fig}, tmp_path / 'out')
        assert [os.path.basename(p) for p in paths] == ['a.png']
    finally:
        plt.close(fig)


@pytest.mark.parametrize('name', ['overview.png', 'star_3.png'])
def test_a_figure_never_replaces_the_table_or_an_input(tmp_path, name):
    image = tmp_path / 'f.fits'
    fits.PrimaryHDU(_frame_and_box()[0],
                    fits.Header({'BUNIT': 'adu'})).writeto(image)
    plots = tmp_path / 'plots'
    plots.mkdir()
    out = plots / name
    # the table was written to plots/overview.png, then the overview
    # figure replaced it (the summary still said "wrote")
    code, _, err = _cli(['measure', str(image), '--box', '10:20,10:20',
                         '-o', str(out), '--format', 'ecsv', '--plot',
                         str(plots)])
    _one_line_error(code, err, f'-o {out} would be replaced by a figure')
    assert not list(plots.iterdir())
    code, _, err = _cli(['measure', str(image), '--box', '10:20,10:20',
                         '-o', str(plots / 'table.png'), '--format', 'ecsv',
                         '--plot', str(plots)])
    assert code == 0, err
    assert QTable.read(plots / 'table.png', format='ascii.ecsv')[
        'aperture_sum'].size == 1


def test_an_unusable_pixel_area_keyword_warns():
    from ccdphot_ext import pixel_solid_angle
    # PIXAR_SR = -1 was skipped without a word, and the error then said
    # the header had no PIXAR_SR
    with pytest.warns(AstropyUserWarning, match=r"ignoring header keyword "
                      r"PIXAR_SR=-1.0: the pixel solid angle must be a "
                      r"positive number"):
        omega, source = pixel_solid_angle(
            {'PIXAR_SR': -1.0, 'PIXAR_A2': 0.0036}, None, 1.0, 1.0)
    assert source == 'PIXAR_A2'
    assert omega.to_value('arcsec2')[()] == pytest.approx(0.0036)
    with pytest.warns(AstropyUserWarning, match='PIXAR_SR'):
        with pytest.raises(ValueError, match='no usable PIXAR_SR'):
            pixel_solid_angle({'PIXAR_SR': 'x'}, None, 1.0, 1.0)


def test_a_negative_max_rows_is_refused(tmp_path):
    path = tmp_path / 'star.fits'
    fits.writeto(path, _star_frame(8), fits.Header({'BUNIT': 'adu'}))
    code, _, err = _cli(['measure', str(path), '--box', '25:40,22:38',
                         '--max-rows', '-1'])
    _one_line_error(code, err, '--max-rows', 'must be non-negative')
    code, out, err = _cli(['measure', str(path), '--box', '25:40,22:38',
                           '--max-rows', '0'])
    assert code == 0, err


@pytest.mark.parametrize('call, words', [
    (lambda img, sky: SkyEstimate.from_image(img, mask_sources=np.ones(3)),
     'mask_sources must be True or False'),
    (lambda img, sky: find_stars(img, sky, deblend='yes'),
     'deblend must be True or False'),
    (lambda img, sky: find_stars(img, sky, progress=np.ones(2)),
     'progress must be True or False'),
    (lambda img, sky: SkyEstimate('abc', 1.0, 10), 'value must be a number'),
    (lambda img, sky: SkyEstimate(1.0, {'a': 1}, 10), 'std must be a number'),
    (lambda img, sky: SkyEstimate(1.0, 1.0 + 2j, 10), 'std must be a number'),
    (lambda img, sky: SkyEstimate(1.0, 1.0, 10, error_on_mean='0.1'),
     'error_on_mean must be a number'),
    (lambda img, sky: ErrorBudget.from_aperture('abc', 10, 1.0),
     'flux must be a number'),
    (lambda img, sky: ErrorBudget.from_aperture(5.0, 10, 1.0,
                                                gain=np.complex128(2 + 1j)),
     'gain must be a number'),
    (lambda img, sky: ApertureNoise.from_blank_apertures(
        img, sky, sizes=[np.complex128(3 + 1j)]), 'sizes must be a number'),
    (lambda img, sky: SkyEstimate.from_annulus(
        img, CircularAnnulus((20, 20), 6, 9), exclude='abc'),
     'exclude must be a BoxAperture, a photutils PixelAperture or a list'),
    (lambda img, sky: SkyEstimate.from_annulus(
        img, CircularAnnulus((20, 20), 6, 9), exclude=[1.0, 2.0]),
     'exclude must be BoxAperture or photutils PixelAperture objects, '
     'got float'),
], ids=['mask_sources', 'deblend', 'progress', 'sky_value_text',
        'sky_std_dict', 'sky_std_complex', 'sky_error_on_mean_text',
        'budget_flux_text', 'budget_gain_complex', 'blank_sizes_complex',
        'exclude_text', 'exclude_numbers'])
def test_flags_texts_and_complex_numbers_are_named(call, words):
    # a flag given an array (numpy's "truth value is ambiguous"), a number
    # given as text or a complex number (numpy's "could not convert" or a
    # ComplexWarning, dropping the imaginary part) are TypeErrors naming
    # the argument
    img = np.random.default_rng(0).normal(100.0, 5.0, (40, 50))
    img[20:24, 20:24] += 3000.0
    sky = SkyEstimate(100.0, 5.0, 1000)
    with pytest.raises(TypeError, match=re.escape(words)):
        call(img, sky)


def test_optimal_iterations_are_bounded_and_stop_when_converged():
    from ccdphot_ext import optimal_extraction

    img = np.random.default_rng(0).normal(100.0, 5.0, (40, 50))
    img[19:23, 20:23] += 2000.0
    sky = SkyEstimate(100.0, 5.0, 1000)
    with pytest.raises(ValueError, match='n_iter must be at most 1000'):
        optimal_extraction(img, (21.0, 20.5), 1.0, sky, n_iter=10 ** 9)
    # a box, not a star: the PSF fits neither it nor the frame
    with pytest.warns(AstropyUserWarning, match='does not (match|fit) the'):
        few = optimal_extraction(img, (21.0, 20.5), 1.0, sky, gain=2.0,
                                 n_iter=40)
        most = optimal_extraction(img, (21.0, 20.5), 1.0, sky, gain=2.0,
                                  n_iter=1000)
    assert few.flux == most.flux and few.flux_err == most.flux_err
