"""`read_positions`: the column names of photutils (3.0 and older), Source
Extractor/SEP, AstroImageJ and RA/Dec tables; 1-based catalogues shifted;
blank cells refused with the row number; ids kept."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, QTable, Table
from astropy.wcs import WCS

from ccdphot_ext import read_positions
from ccdphot_ext.io.positions import PIXEL_COLUMNS

X, Y = np.array([10.25, 40.0, 7.5]), np.array([20.0, 3.75, 30.0])


@pytest.mark.parametrize('xname,yname,origin', PIXEL_COLUMNS)
def test_every_pixel_name(xname, yname, origin, tmp_path):
    table = Table({xname: X + origin, yname: Y + origin})
    path = tmp_path / 'pos.ecsv'
    table.write(path)
    for source in (table, path):
        pos = read_positions(source)
        np.testing.assert_array_equal(pos['x_center'], X)
        np.testing.assert_array_equal(pos['y_center'], Y)
        assert pos['id'].tolist() == [1, 2, 3]
        assert pos.meta['x_column'] == xname
        assert pos.meta['origin'] == origin


def test_photutils3_preferred_over_older_names():
    table = Table({'x_centroid': X, 'y_centroid': Y, 'x': X + 5,
                   'y': Y + 5})
    pos = read_positions(table)
    np.testing.assert_array_equal(pos['x_center'], X)


def test_names_ignore_case():
    pos = read_positions(Table({'X': X, 'Y': Y}))
    np.testing.assert_array_equal(pos['x_center'], X)


def test_error_names_every_accepted_name():
    with pytest.raises(ValueError) as info:
        read_positions(Table({'col1': X, 'col2': Y}))
    text = str(info.value)
    for xname, yname, _ in PIXEL_COLUMNS:
        assert f'{xname}/{yname}' in text
    for name in ('ra/dec', 'ALPHA_J2000/DELTA_J2000', 'sky_centroid',
                 "['col1', 'col2']"):
        assert name in text


def test_sextractor_catalogue_is_one_based(shared_dir):
    """The real Source Extractor catalogue: X_IMAGE - 1, NUMBER as id."""
    path = shared_dir / 'reference' / 'sextractor' / 'image.cat'
    pos = read_positions(path)
    cat = Table.read(path, format='ascii.sextractor')
    assert len(pos) == len(cat) == 65
    assert pos.meta['x_column'] == 'XWIN_IMAGE'  # windowed preferred
    np.testing.assert_allclose(pos['x_center'],
                               np.asarray(cat['XWIN_IMAGE']) - 1, rtol=0,
                               atol=0)
    np.testing.assert_allclose(pos['y_center'],
                               np.asarray(cat['YWIN_IMAGE']) - 1, rtol=0,
                               atol=0)
    assert pos['id'].tolist() == list(cat['NUMBER'])
    explicit = read_positions(path, columns=('X_IMAGE', 'Y_IMAGE'))
    np.testing.assert_array_equal(explicit['x_center'],
                                  np.asarray(cat['X_IMAGE']) - 1)


def test_astroimagej_table(tmp_path):
    """AstroImageJ's measurement table: tab-separated, X(FITS) 1-based."""
    path = tmp_path / 'Measurements.xls'
    path.write_text(' \tLabel\tX(FITS)\tY(FITS)\tSource-Sky_T1\n'
                    '1\tT1\t101.5\t51.0\t1234.5\n'
                    '2\tC2\t12.0\t201.25\t999.0\n')
    pos = read_positions(path)
    assert pos['x_center'].tolist() == [100.5, 11.0]
    assert pos['y_center'].tolist() == [50.0, 200.25]


def test_ra_dec_with_wcs():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    wcs.wcs.crval = [56.75, 24.1]
    wcs.wcs.crpix = [50.0, 60.0]
    wcs.wcs.cdelt = [-1e-4, 1e-4]
    coords = wcs.pixel_to_world(X, Y)
    plain = Table({'ra': coords.ra.deg, 'dec': coords.dec.deg})
    with_units = QTable({'RA': coords.ra.to(u.hourangle),
                         'DEC': coords.dec})
    packed = QTable({'sky_centroid': coords})
    sex = Table({'ALPHA_J2000': coords.ra.deg,
                 'DELTA_J2000': coords.dec.deg})
    for table in (plain, with_units, packed, sex):
        pos = read_positions(table, wcs=wcs)
        np.testing.assert_allclose(pos['x_center'], X, atol=1e-8)
        np.testing.assert_allclose(pos['y_center'], Y, atol=1e-8)
    with pytest.raises(ValueError, match='no celestial WCS'):
        read_positions(plain)
    assert isinstance(coords, SkyCoord)


def test_blank_cell_refused_with_row_number(tmp_path):
    """A blank cell is never read as 0."""
    path = tmp_path / 'pos.csv'
    path.write_text('id,x,y\n1,10.0,20.0\n2,,5.0\n3,7.0,8.0\n4,1.0,nan\n')
    with pytest.raises(ValueError, match=r'column x is blank or NaN in '
                                         r'row\(s\) 2 '):
        read_positions(path)
    table = Table({'x': MaskedColumn(X, mask=[False, False, True]),
                   'y': Y})
    with pytest.raises(ValueError, match=r'row\(s\) 3 '):
        read_positions(table)


def test_ids_kept_and_checked():
    pos = read_positions(Table({'id': [7, 3, 11], 'x': X, 'y': Y}))
    assert pos['id'].tolist() == [7, 3, 11]
    pos = read_positions(Table({'label': [5, 6, 8], 'xcentroid': X,
                                'ycentroid': Y}))
    assert pos['id'].tolist() == [5, 6, 8]
    with pytest.raises(ValueError, match='unique integers'):
        read_positions(Table({'id': [1, 1, 2], 'x': X, 'y': Y}))


def test_box_columns_kept():
    table = Table({'x_center': X, 'y_center': Y, 'box_x0': [0, 1, 2],
                   'box_x1': [5, 6, 7], 'box_y0': [3, 3, 3],
                   'box_y1': [8, 8, 8]})
    pos = read_positions(table)
    assert pos['box_x1'].tolist() == [5, 6, 7]


@pytest.mark.parametrize('bad,exc,match', [
    (Table({'x': [], 'y': []}), ValueError, 'no rows'),
    (3.0, TypeError, 'file name or an astropy Table'),
    ('/nonexistent/pos.ecsv', OSError, 'no such file'),
])
def test_bad_input(bad, exc, match):
    with pytest.raises(exc, match=match):
        read_positions(bad)
