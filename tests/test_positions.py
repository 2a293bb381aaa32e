"""`read_positions`: the column names of photutils (3.0 and older), Source
Extractor/SEP, AstroImageJ and RA/Dec tables; 1-based catalogues shifted;
blank cells refused with the row number; ids kept."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, QTable, Table
from astropy.wcs import WCS
from expected_warnings import no_gain_warning

from ccdphot_ext import BudgetOptions, read_positions
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


def test_sextractor_catalogue_is_one_based(sextractor_dir):
    """The real Source Extractor catalogue: X_IMAGE - 1, NUMBER as id."""
    path = sextractor_dir / 'image.cat'
    pos = read_positions(path)
    cat = Table.read(path, format='ascii.sextractor')
    assert len(pos) == len(cat) == 65
    assert pos.meta['x_column'] == 'X_IMAGE'  # where its apertures sit
    np.testing.assert_array_equal(pos['x_center'],
                                  np.asarray(cat['X_IMAGE']) - 1)
    np.testing.assert_array_equal(pos['y_center'],
                                  np.asarray(cat['Y_IMAGE']) - 1)
    assert pos['id'].tolist() == list(cat['NUMBER'])
    windowed = read_positions(path, columns=('XWIN_IMAGE', 'YWIN_IMAGE'))
    np.testing.assert_array_equal(windowed['x_center'],
                                  np.asarray(cat['XWIN_IMAGE']) - 1)


@pytest.mark.filterwarnings('ignore:.*non-standard header card')
def test_sextractor_positions_reproduce_flux_aper(sextractor_dir):
    """Circles of radius 5 at the catalogue's positions on image - back
    with the rms map: Source Extractor's FLUX_APER (FLAGS 0 sources, 5x5
    subpixel overlap as Source Extractor samples it)."""
    from photutils.aperture import CircularAperture

    from ccdphot_ext import SkyEstimate, photometer, read_frame

    ref = sextractor_dir
    pos = read_positions(ref / 'image.cat')
    cat = Table.read(ref / 'image.cat', format='ascii.sextractor')
    frame = read_frame(ref / 'image.fits', unit='adu')
    back = read_frame(ref / 'back.fits', unit='adu').data
    rms = read_frame(ref / 'rms.fits', unit='adu').data
    sky = SkyEstimate.from_maps(back, rms, n_pix=4096)
    xy = np.column_stack([pos['x_center'], pos['y_center']])
    with no_gain_warning():  # its header names EXPTIME, no gain
        table = photometer(frame, CircularAperture(xy, 5.0), sky,
                           sum_method='subpixel', subpixels=5,
                           budget=BudgetOptions(include_sky_mean=False))
    ok = np.asarray(cat['FLAGS']) == 0
    np.testing.assert_allclose(np.asarray(table['aperture_sum'])[ok],
                               np.asarray(cat['FLUX_APER'])[ok], rtol=1e-5)


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


def test_real_photutils3_finder_and_catalog_tables(sample_ccd, tmp_path):
    """Tables straight from photutils 3.0: DAOStarFinder and SourceCatalog
    (x_centroid, id/label), also through an ECSV file."""
    from photutils.detection import DAOStarFinder
    from photutils.segmentation import SourceCatalog, detect_sources

    data = sample_ccd.data - np.median(sample_ccd.data)
    found = DAOStarFinder(threshold=300.0, fwhm=4.0)(data)
    found.write(tmp_path / 'dao.ecsv')
    pos = read_positions(tmp_path / 'dao.ecsv')
    assert pos.meta['x_column'] == 'x_centroid'
    np.testing.assert_array_equal(pos['x_center'], found['x_centroid'])
    assert pos['id'].tolist() == list(found['id'])
    cat = SourceCatalog(data, detect_sources(data, 300.0, 10)).to_table()
    pos = read_positions(cat)
    np.testing.assert_array_equal(pos['y_center'], cat['y_centroid'])
    assert pos['id'].tolist() == list(cat['label'])
