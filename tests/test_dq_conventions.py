"""
DQ bits read by the convention of the file's mission: HST files mask HST's
unusable pixels by default (bits that mean something else on JWST), the
saturation bits of each mission set flag 4, a file of unknown mission masks
every bit, and any flagged pixel summed inside an aperture is announced.
Files written by astropy (HST layout) and by STScI's stdatamodels (JWST).
"""

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from calibrated_products import HST_BAD, HST_HOT, hst_image, jwst_image
from clirun import installed_ccdphot
from photutils.aperture import CircularAperture, aperture_photometry

from ccdphot_ext import SkyEstimate, measure, photometer, read_frame
from ccdphot_ext.flags import FLAG_BAD_PIXELS, FLAG_SATURATED, FLAG_SHARP_PIXEL
from ccdphot_ext.io.dq import (
    DQ_CONVENTIONS,
    describe_dq_bits,
    dq_bits,
    dq_bits_spec,
    dq_convention,
)

GARBAGE = 1.0e4  # electrons in a flagged pixel


@pytest.fixture(scope='module')
def hst(tmp_path_factory):
    """A WFC3/UVIS-like FLT: DQ 4 (bad detector) and 16 (hot) pixels next
    to the centres of stars, each holding GARBAGE electrons more."""
    product = hst_image(shape=(48, 64), seed=5)
    path = tmp_path_factory.mktemp('hst') / 'x_flt.fits'
    data = product.write(path, np.random.default_rng(2))
    with fits.open(path, mode='update') as hdul:
        hdul['SCI'].data[product.dq > 0] += GARBAGE
    return product, path, data


def _aps(product, r=4.0):
    return CircularAperture(np.c_[product.x, product.y], r)


def _touched(product, aps, bits):
    bad = (product.dq & bits) > 0
    return np.array([np.any(bad & (m.to_image(bad.shape) > 0))
                     for m in aps.to_mask(method='exact')])


def _sky(ccd):
    with pytest.warns(AstropyUserWarning, match='masked/NaN/inf'):
        return SkyEstimate.from_image(ccd, method='median',
                                      mask_sources=False)


def test_hst_default_masks_bad_and_hot_pixels(hst):
    product, path, _ = hst
    ccd = read_frame(path)
    assert ccd.meta['DQMASK'] == DQ_CONVENTIONS['HST WFC3/UVIS'].bad_bits
    assert ccd.meta['DQRULE'] == 'HST WFC3/UVIS default'
    np.testing.assert_array_equal(ccd.mask, product.dq > 0)
    aps = _aps(product)
    touched = _touched(product, aps, HST_BAD | HST_HOT)
    assert touched.sum() == 3
    t = photometer(ccd, aps, _sky(ccd))  # nothing summed unmasked: silent
    np.testing.assert_array_equal((t['flags'] & FLAG_BAD_PIXELS) > 0,
                                  touched)
    assert t.meta['dq_mask'] == 48799
    # the garbage is left out: each flux within 5 sigma of the truth over
    # the usable pixels (photutils on the noiseless model)
    truth = np.asarray(aperture_photometry(
        product.model - product.sky, aps, mask=product.dq > 0,
        method='exact')['aperture_sum'])
    pulls = (t['aperture_sum'].value - truth) / t['aperture_sum_err'].value
    assert np.all(np.abs(pulls) < 5), pulls


def test_flagged_pixels_summed_are_announced(hst):
    """With the mask off (dq_bits=0) the garbage is summed: the rows keep
    flags 0 (they were asked for), but a warning names the HST bits and
    the rows, and the table's notes keep it."""
    product, path, _ = hst
    raw = read_frame(path, dq_bits=0)
    aps = _aps(product)
    sky = SkyEstimate.from_image(raw, method='median', mask_sources=False)
    with pytest.warns(AstropyUserWarning) as caught:
        t = photometer(raw, aps, sky)
    text = str(caught[0].message)
    # the hot pixel summed is also sharper than the stars: flag 1024
    assert len(caught) == 2
    assert 'sharper than the frame' in str(caught[1].message)
    hot = _touched(product, aps, HST_HOT)
    assert np.all(t['flags'][hot] & FLAG_SHARP_PIXEL)
    assert 'DQ (HST WFC3/UVIS) flags 5 pixel(s) summed' in text
    assert '4 (BADPIX) in 2 row(s)' in text
    assert '16 (HOT) in 1 row(s)' in text
    ids = t['id'][_touched(product, aps, HST_BAD | HST_HOT)]
    assert f'(id {", ".join(str(i) for i in ids)})' in text
    assert 'the DQ bits masked were none (dq_bits=0' in text
    assert text in t.meta['notes']
    assert not np.any(t['flags'] & FLAG_BAD_PIXELS)
    # measure says it too
    k = int(np.flatnonzero(_touched(product, aps, HST_HOT))[0])
    with pytest.warns(AstropyUserWarning) as caught:
        m = measure(raw, aps[k], sky)
    texts = [str(w.message) for w in caught]
    assert any('16 (HOT) in 1 row' in text for text in texts)
    assert m.flags & FLAG_SHARP_PIXEL
    assert m.flux == pytest.approx(t['aperture_sum'][k].value, rel=1e-12)


def test_hst_saturation_bit_sets_flag_4(tmp_path):
    """HST's full-well bit (256) is not masked (the charge is kept; the
    star may still be measured in a large aperture) but sets flag 4, as
    does the A-to-D bit (2048), which is masked; JWST's 256 means
    nothing of the kind (RESERVED)."""
    product = hst_image(n_bad=0, seed=9)
    product.dq[:] = 0
    k, j = 3, 5
    product.dq[int(round(product.y[k])), int(round(product.x[k]))] = 256
    product.dq[int(round(product.y[j])), int(round(product.x[j]))] = 2048
    path = tmp_path / 'sat_flt.fits'
    product.write(path, np.random.default_rng(1))
    ccd = read_frame(path)
    aps = _aps(product)
    sky = _sky(ccd)  # the A-to-D pixel is masked
    with pytest.warns(AstropyUserWarning,
                      match=r'256 \(SATURATED\) in 1 row'):
        t = photometer(ccd, aps, sky)
    flags = np.asarray(t['flags'])
    assert flags[k] == FLAG_SATURATED
    assert flags[j] == FLAG_SATURATED | FLAG_BAD_PIXELS
    assert not np.any(np.delete(flags, [k, j]))
    # the same bits on a JWST file: 256 is RESERVED, 2048 HOT; neither is
    # saturation, neither masked by default
    with fits.open(path, mode='update') as hdul:
        hdul[0].header['TELESCOP'] = 'JWST'
    jw = read_frame(path)
    assert jw.meta['DQRULE'] == 'JWST default' and not jw.mask.any()
    with pytest.warns(AstropyUserWarning,
                      match=r'256 \(RESERVED\) in 1 row.*2048 \(HOT\)'):
        t = photometer(jw, aps, SkyEstimate.from_image(
            jw, method='median', mask_sources=False))
    assert not np.any(t['flags'])


def test_jwst_saturated_bit_sets_flag_4(tmp_path):
    """A JWST image written by stdatamodels: SATURATED (2) on a star sets
    flag 4; with DO_NOT_USE too the pixel is masked (flags 4 and 2)."""
    pytest.importorskip('stdatamodels')
    product = jwst_image(n_bad=0)
    product.dq[:] = 0
    k, j = 6, 7
    product.dq[int(round(product.y[k])), int(round(product.x[k]))] = 2
    product.dq[int(round(product.y[j])), int(round(product.x[j]))] = 3
    path = tmp_path / 'sat_cal.fits'
    product.write(path, np.random.default_rng(4))
    ccd = read_frame(path)
    aps = _aps(product, 3.0)
    sky = _sky(ccd)
    with pytest.warns(AstropyUserWarning,
                      match=r'DQ \(JWST\) flags 1 pixel.*2 \(SATURATED\)'):
        t = photometer(ccd, aps, sky)
    flags = np.asarray(t['flags'])
    assert flags[k] == FLAG_SATURATED
    assert flags[j] == FLAG_SATURATED | FLAG_BAD_PIXELS
    assert not np.any(flags[:6] & (FLAG_SATURATED | FLAG_BAD_PIXELS))


def test_unknown_mission_masks_every_bit(tmp_path):
    """A DQ extension without a known TELESCOP: every set bit masks its
    pixel, and the header says so."""
    dq = np.zeros((20, 30), np.int16)
    dq[5, 6], dq[10, 12] = 64, 1 << 14
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((20, 30)),
                                                   name='SCI'),
                  fits.ImageHDU(dq, name='DQ')]).writeto(tmp_path / 'u.fits')
    ccd = read_frame(tmp_path / 'u.fits', unit='electron')
    np.testing.assert_array_equal(ccd.mask, dq != 0)
    assert ccd.meta['DQMASK'] == 2 ** 32 - 1
    assert ccd.meta['DQRULE'] == 'unknown: every bit (no known default)'
    # names need a mission that has them
    with pytest.raises(ValueError, match='unknown unknown DQ flag.*no flag '
                       'names: give bit values'):
        read_frame(tmp_path / 'u.fits', unit='electron', dq_bits='HOT')
    assert read_frame(tmp_path / 'u.fits', unit='electron',
                      dq_bits=64).mask.sum() == 1


@pytest.mark.parametrize('header, name, bad', [
    ({'TELESCOP': 'JWST', 'INSTRUME': 'NIRCAM'}, 'JWST', 1),
    ({'TELESCOP': 'HST', 'INSTRUME': 'ACS', 'DETECTOR': 'WFC'}, 'HST ACS',
     32447),
    ({'TELESCOP': 'HST', 'INSTRUME': 'WFC3', 'DETECTOR': 'UVIS'},
     'HST WFC3/UVIS', 48799),
    ({'TELESCOP': 'HST', 'INSTRUME': 'WFC3', 'DETECTOR': 'IR'},
     'HST WFC3/IR', 45247),
    ({'TELESCOP': 'HST', 'INSTRUME': 'STIS', 'DETECTOR': 'CCD'},
     'HST STIS CCD', 2 ** 32 - 1),
    ({'TELESCOP': 'HST', 'INSTRUME': 'WFC3'}, 'HST WFC3', 2 ** 32 - 1),
    ({'TELESCOP': 'Spitzer'}, 'unknown', 2 ** 32 - 1),
    ({}, 'unknown', 2 ** 32 - 1),
])
def test_the_convention_comes_from_the_header(header, name, bad):
    convention = dq_convention(fits.Header(header))
    assert (convention.name, convention.bad_bits) == (name, bad)


# STScI's stginga, data/dqflags_acs.txt and data/dqflags_wfc3.txt (short
# names of the ACS and WFC3 Data Handbooks' tables of DQ flags), bit by bit
STGINGA_ACS = ['LOST', 'FILLED', 'BADPIX', 'MASKED', 'HOT', 'UNSTABLE',
               'WARM', 'BADCOL', 'SATURATED', 'BADREF', 'TRAP', 'ATODSAT',
               'CRDRIZ', 'CRREJ', 'USER', 'UNUSED']
STGINGA_WFC3 = ['LOST', 'FILLED', 'BADPIX', 'MASKED', 'HOT', 'CTE', 'WARM',
                'BADBIAS', 'SATURATED', 'BADREF', 'TRAP', 'ATODSAT',
                'CRDRIZ', 'CRREJ', 'CRMAX', 'USER']


def _bits(*values):
    return sum(values)


def test_hst_tables_are_stscis():
    """Each of the 16 HST bits has STScI's name, ACS and WFC3 apart; UVIS
    and IR share WFC3's table."""
    acs = DQ_CONVENTIONS['HST ACS']
    uvis, ir = DQ_CONVENTIONS['HST WFC3/UVIS'], DQ_CONVENTIONS['HST WFC3/IR']
    assert acs.flags == {n: 1 << i for i, n in enumerate(STGINGA_ACS)}
    assert uvis.flags == {n: 1 << i for i, n in enumerate(STGINGA_WFC3)}
    assert ir.flags is uvis.flags
    assert 'stginga' in acs.source and 'dqflags_acs.txt' in acs.source
    assert 'WFC3 Data Handbook' in ir.source
    # the bits whose meanings differ between ACS and WFC3
    assert describe_dq_bits(32 + 128 + 16384 + 32768, acs) == (
        '32 (UNSTABLE) + 128 (BADCOL) + 16384 (USER) + 32768 (UNUSED)')
    assert describe_dq_bits(32 + 128 + 16384 + 32768, uvis) == (
        '32 (CTE) + 128 (BADBIAS) + 16384 (CRMAX) + 32768 (USER)')
    assert dq_bits('USER', convention=acs) == 16384
    assert dq_bits('USER', convention=ir) == 32768
    with pytest.raises(ValueError, match='unknown HST ACS DQ flag name.*CTE'):
        dq_bits('CTE', convention=acs)


def test_hst_defaults_mask_what_cannot_be_used():
    """Masked by default: no data, values no reference file corrects,
    clipped values, cosmic rays, bits set by hand. Left in (and warned of
    when summed): warm pixels, full-well saturation (flag 4), UVIS CTE
    tails, WFC3's ghosts/crosstalk, and the IR corrections the ramp fit
    made and its flat's blobs."""
    acs = DQ_CONVENTIONS['HST ACS']
    uvis, ir = DQ_CONVENTIONS['HST WFC3/UVIS'], DQ_CONVENTIONS['HST WFC3/IR']
    assert acs.bad_bits == _bits(1, 2, 4, 8, 16, 32, 128, 512, 1024, 2048,
                                 4096, 8192, 16384)
    assert uvis.bad_bits == _bits(1, 2, 4, 8, 16, 128, 512, 1024, 2048,
                                  4096, 8192, 32768)
    assert ir.bad_bits == _bits(1, 2, 4, 8, 16, 32, 128, 4096, 8192, 32768)
    for convention in (acs, uvis, ir):
        assert not convention.bad_bits & (64 | 256)  # warm, full well
    assert not uvis.bad_bits & (32 | 16384)
    assert not ir.bad_bits & (512 | 1024 | 2048 | 16384)
    assert not acs.bad_bits & 32768  # unused
    assert acs.saturation_bits == uvis.saturation_bits == 256 | 2048
    assert ir.saturation_bits == 256  # IR 2048: zero-read correction
    assert (describe_dq_bits(uvis.bad_bits, uvis).split(' + ')[:4] ==
            ['1 (LOST)', '2 (FILLED)', '4 (BADPIX)', '8 (MASKED)'])


def test_bit_names_are_the_missions():
    acs, ir = DQ_CONVENTIONS['HST ACS'], DQ_CONVENTIONS['HST WFC3/IR']
    # the bits the JWST names would give are other pixels on HST
    assert describe_dq_bits(256 + 8192, acs) == (
        '256 (SATURATED) + 8192 (CRREJ)')
    assert describe_dq_bits(256 + 8192) == '256 (RESERVED) + 8192 (LOW_QE)'
    assert dq_bits('SATURATED+HOT', convention=acs) == 256 + 16
    assert dq_bits('SATURATED+HOT') == 2 + 2048
    assert describe_dq_bits(8 + 2048, ir) == '8 (MASKED) + 2048 (ATODSAT)'
    # a name known to no mission is refused before any file is read
    with pytest.raises(ValueError, match='unknown DQ flag name.*NOPE'):
        dq_bits_spec('HOT+NOPE')
    assert dq_bits_spec('crrej + 4') == 'CRREJ+4'
    # a name of one instrument passes the spec; the file decides
    assert dq_bits_spec('unstable') == 'UNSTABLE'


@pytest.mark.parametrize('func', [dq_bits, dq_bits_spec])
def test_both_readers_parse_alike(func):
    """dq_bits and dq_bits_spec read values by one parser: the same
    integers, the same refusals naming the parameter."""
    assert func(' 4 + 16 ', 'bits') == 20 and func('1,2', 'bits') == 3
    assert func(0, 'bits') == 0 and func('0', 'bits') == 0
    assert func(np.uint16(8), 'bits') == 8
    assert func('All', 'bits') == 2 ** 32 - 1
    for bad, error, match in [
            ('', ValueError, 'bits is empty'),
            ('  ', ValueError, 'bits is empty'),
            ('~4', ValueError, r"bits='~4'.*no ~"),
            ('4+', ValueError, r"bits='4\+'.*empty part"),
            ('1,,2', ValueError, 'empty part'),
            ('3+4', ValueError, 'bits'),
            (-1, ValueError, 'bits must be between 0'),
            (2 ** 32, ValueError, 'bits must be between 0'),
            (True, TypeError, 'bits must be an integer'),
            (2.0, TypeError, 'bits must be an integer')]:
        with pytest.raises(error, match=match):
            func(bad, 'bits')


def test_cli_names_hst_bits_by_hst_meanings(hst, tmp_path):
    product, path, _ = hst
    from astropy.table import QTable
    QTable({'x': product.x, 'y': product.y}).write(tmp_path / 'pos.ecsv')
    code, out, err = installed_ccdphot(
        'measure', path, '--positions', tmp_path / 'pos.ecsv', '--radius',
        '4', '-o', tmp_path / 'out.ecsv')
    assert code == 0, err
    assert ('dq        5 pixel(s) masked (DQ bits 1 (LOST) + 2 '
            '(FILLED) + 4 (BADPIX)') in out
    assert 'HST WFC3/UVIS default)' in out
    code, out, err = installed_ccdphot(
        'measure', path, '--positions', tmp_path / 'pos.ecsv', '--radius',
        '4', '--dq-bits', 'BADPIX+SATURATED', '-o',
        tmp_path / 'out2.ecsv')
    assert code == 0, err
    assert ('(DQ bits 4 (BADPIX) + 256 (SATURATED): '
            'dq_bits=BADPIX+SATURATED (HST WFC3/UVIS))') in out
    assert 'DQ (HST WFC3/UVIS) flags 1 pixel(s) summed' in err
    assert '16 (HOT) in 1 row(s)' in err
