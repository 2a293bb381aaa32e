"""
Files of several chips (HST's SCI,1 and SCI,2, each with its ERR and DQ):
which HDU is measured is said and recorded, and the ERR and DQ read with a
chip are that chip's own.
"""

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot

from ccdphot_ext import read_frame


def _chip(value, ver, shape=(30, 40)):
    sci = fits.ImageHDU(np.full(shape, value, np.float32), name='SCI',
                        ver=ver)
    sci.header['BUNIT'] = 'ELECTRONS'
    err = fits.ImageHDU(np.full(shape, 2.0 * ver, np.float32), name='ERR',
                        ver=ver)
    err.header['BUNIT'] = 'ELECTRONS'
    dq = np.zeros(shape, np.uint16)
    dq[5 * ver, 7 * ver] = 4  # a bad detector pixel, at another place
    return [sci, err, fits.ImageHDU(dq, name='DQ', ver=ver)]


@pytest.fixture
def two_chips(tmp_path):
    primary = fits.PrimaryHDU()
    primary.header.update(TELESCOP='HST', INSTRUME='WFC3', DETECTOR='UVIS',
                          EXPTIME=100.0)
    path = tmp_path / 'two_chips_flt.fits'
    fits.HDUList([primary, *_chip(200.0, 1), *_chip(50.0, 2)]).writeto(path)
    return path


def test_the_first_chip_is_measured_and_the_others_are_named(two_chips):
    with pytest.warns(AstropyUserWarning, match=r'1 more 2-D image HDU\(s\) '
                      r'named like the one measured \(SCI,2\); only HDU '
                      r'SCI,1 is measured'):
        ccd = read_frame(two_chips)
    assert ccd.meta['SCIHDU'] == 'SCI,1'
    assert ccd.data[0, 0] == 200.0
    assert np.all(ccd.uncertainty.arrays['ERR'] == 4.0)
    assert np.argwhere(ccd.mask).tolist() == [[5, 7]]


def test_each_chip_reads_its_own_err_and_dq(two_chips):
    ccd = read_frame(two_chips, hdu=('SCI', 2))  # chosen: no warning
    assert ccd.meta['SCIHDU'] == 'SCI,2'
    assert ccd.data[0, 0] == 50.0
    # ERR,2 (4 e-), not ERR,1 (2 e-); DQ,2's pixel, not DQ,1's
    assert np.all(ccd.uncertainty.arrays['ERR'] == 16.0)
    assert np.argwhere(ccd.mask).tolist() == [[10, 14]]
    assert ccd.flags[10, 14] == 4 and ccd.flags[5, 7] == 0


def test_a_chip_without_its_own_dq_takes_no_other_chips(tmp_path):
    primary = fits.PrimaryHDU()
    primary.header.update(TELESCOP='HST', INSTRUME='WFC3', DETECTOR='UVIS')
    sci2 = _chip(50.0, 2)[0]
    path = tmp_path / 'partial.fits'
    fits.HDUList([primary, *_chip(200.0, 1), sci2]).writeto(path)
    ccd = read_frame(path, hdu=('SCI', 2))
    assert ccd.mask is None and ccd.flags is None
    assert ccd.uncertainty is None


def test_the_cli_says_and_records_the_hdu(two_chips, tmp_path):
    positions = tmp_path / 'pos.csv'
    positions.write_text('x,y\n20,15\n')
    out = tmp_path / 'out.ecsv'
    code, stdout, err = ccdphot('measure', str(two_chips), '--positions',
                                str(positions), '--radius', '3', '-o',
                                str(out))
    assert code == 0, err
    assert f'image     {two_chips}[SCI,1] (30 x 40' in stdout
    assert 'only HDU SCI,1 is measured' in err
    assert QTable.read(out).meta['hdu'] == 'SCI,1'
    out2 = tmp_path / 'out2.ecsv'
    code, stdout, err = ccdphot('measure', str(two_chips), '--hdu', 'SCI,2',
                                '--positions', str(positions), '--radius',
                                '3', '-o', str(out2))
    assert code == 0, err
    assert 'only HDU' not in err
    table = QTable.read(out2)
    assert table.meta['hdu'] == 'SCI,2'
    assert table['sky'][0].value == pytest.approx(50.0)
