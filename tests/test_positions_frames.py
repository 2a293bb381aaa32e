"""Positions in any celestial frame and table format: galactic l/b and
GLON/GLAT, SkyCoord columns in their own frame, VOTable UCDs, any frame
astropy knows, VOTable and FITS tables for the command line, a table none
of whose positions lies on the frame, angles refused as pixels."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import FK5
from astropy.io import fits
from astropy.io.votable import from_table, writeto
from astropy.nddata import CCDData
from astropy.table import QTable, Table
from astropy.wcs import WCS
from clirun import ccdphot, installed_ccdphot
from photutils.aperture import CircularAperture, aperture_photometry

from ccdphot_ext import read_positions
from ccdphot_ext.io.positions import OffFrameError

NY, NX = 120, 200
#: the true pixel positions of the stars (0-based)
X = np.array([20.3, 61.7, 100.0, 151.2, 180.9])
Y = np.array([15.5, 90.2, 60.0, 30.8, 100.4])


def _wcs(kind):
    wcs = WCS(naxis=2)
    if kind == 'galactic':  # a Spitzer/Herschel-style mosaic
        wcs.wcs.ctype = ['GLON-CAR', 'GLAT-CAR']
        wcs.wcs.crval = [30.0, 0.0]
    else:
        wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
        wcs.wcs.crval = [266.40, -28.94]
    wcs.wcs.crpix = [NX / 2, NY / 2]
    wcs.wcs.cdelt = [-1.2 / 3600, 1.2 / 3600]
    wcs.pixel_shape = (NX, NY)
    return wcs


def _truth(wcs):
    return wcs.pixel_to_world(X, Y)


def _check(pos, atol=1e-6):
    np.testing.assert_allclose(pos['x_center'], X, atol=atol)
    np.testing.assert_allclose(pos['y_center'], Y, atol=atol)


@pytest.mark.parametrize('kind', ['galactic', 'equatorial'])
def test_galactic_columns_are_galactic(kind):
    """l/b, GLON/GLAT (any case, with or without a unit), on a galactic and
    on an equatorial frame: the true pixels, meta naming the frame."""
    wcs = _wcs(kind)
    gal = _truth(wcs).galactic
    tables = [Table({'l': gal.l.deg, 'b': gal.b.deg}),
              Table({'GLON': gal.l.deg, 'GLAT': gal.b.deg}),
              QTable({'glon': gal.l.to(u.arcmin), 'glat': gal.b}),
              Table({'LII': gal.l.deg, 'BII': gal.b.deg})]
    for table in tables:
        pos = read_positions(table, wcs=wcs)
        _check(pos)
        assert pos.meta['frame'] == 'galactic'
        assert pos.meta['origin'] == 'sky'
    # the explicit columns of the issue: galactic, not RA/Dec
    _check(read_positions(tables[0], wcs=wcs, columns=('l', 'b')))


def test_skycoord_columns_keep_their_frame(tmp_path):
    wcs = _wcs('equatorial')
    for frame in ('galactic', 'fk4', 'supergalactic'):
        coords = _truth(wcs).transform_to(frame)
        table = QTable({'id': [4, 5, 6, 7, 8], 'sky_centroid': coords})
        table.write(tmp_path / f'{frame}.ecsv', overwrite=True)
        for source in (table, tmp_path / f'{frame}.ecsv'):
            pos = read_positions(source, wcs=wcs)
            _check(pos)
            assert pos.meta['frame'] == frame
    # any SkyCoord column, not only photutils' name
    other = QTable({'where': _truth(wcs).galactic})
    _check(read_positions(other, wcs=wcs))
    with pytest.raises(ValueError, match='keeps its own frame'):
        read_positions(other, wcs=wcs, frame='icrs')


def test_any_astropy_frame():
    """frame= names any astropy frame (or gives an instance); the frame's
    own component names are found; a bad frame names the parameter."""
    wcs = _wcs('equatorial')
    sg = _truth(wcs).supergalactic
    _check(read_positions(Table({'sgl': sg.sgl.deg, 'sgb': sg.sgb.deg}),
                          wcs=wcs))
    ecl = _truth(wcs).transform_to('geocentricmeanecliptic')
    table = Table({'lon': ecl.lon.deg, 'lat': ecl.lat.deg})
    pos = read_positions(table, wcs=wcs, frame='geocentricmeanecliptic')
    _check(pos)
    # an equinox other than the WCS's: precessed, not taken as ICRS
    b1950 = _truth(wcs).transform_to(FK5(equinox='B1950'))
    old = Table({'ra': b1950.ra.deg, 'dec': b1950.dec.deg})
    _check(read_positions(old, wcs=wcs, frame=FK5(equinox='B1950')))
    with pytest.raises(OffFrameError):  # read as ICRS: 0.7 deg away
        read_positions(old, wcs=wcs)
    # unnamed angle columns: the frame must be said
    angles = QTable({'p': ecl.lon, 'q': ecl.lat})
    with pytest.raises(ValueError, match='give frame='):
        read_positions(angles, wcs=wcs, columns=('p', 'q'))
    _check(read_positions(angles, wcs=wcs, columns=('p', 'q'),
                          frame='geocentricmeanecliptic'))
    with pytest.raises(ValueError, match='frame must be a celestial frame'):
        read_positions(table, wcs=wcs, frame='nowhere')


def _votable(table, path, ucds):
    vot = from_table(table)
    for field, ucd in zip(vot.get_first_table().fields, ucds, strict=True):
        field.ucd = ucd
    writeto(vot, str(path))


def test_votable_ucds_say_the_frame(tmp_path):
    wcs = _wcs('galactic')
    gal, eq = _truth(wcs).galactic, _truth(wcs).icrs
    table = Table({'id': [1, 2, 3, 4, 5], 'pos1': gal.l.deg,
                   'pos2': gal.b.deg})
    _votable(table, tmp_path / 'gal.xml',
             ['meta.id', 'pos.galactic.lon', 'pos.galactic.lat'])
    _check(read_positions(tmp_path / 'gal.xml', wcs=wcs))
    table = Table({'RAdeg': eq.ra.deg, 'DEdeg': eq.dec.deg})
    _votable(table, tmp_path / 'eq.vot', ['pos.eq.ra;meta.main',
                                          'pos.eq.dec;meta.main'])
    pos = read_positions(tmp_path / 'eq.vot', wcs=wcs)
    _check(pos)
    assert pos.meta['frame'] == 'icrs'
    ecl = Table({'elon': [1.0], 'elat': [2.0]})
    _votable(ecl, tmp_path / 'ecl.xml', ['pos.ecliptic.lon',
                                         'pos.ecliptic.lat'])
    with pytest.raises(ValueError, match='ecliptic.*give frame='):
        read_positions(tmp_path / 'ecl.xml', wcs=wcs)


def test_formats_from_extension_identified_or_given(tmp_path):
    """VOTable and FITS tables by extension, by astropy's identification
    when the extension says nothing, or by format=."""
    wcs = _wcs('galactic')
    gal = _truth(wcs).galactic
    table = Table({'l': gal.l.deg, 'b': gal.b.deg})
    table.write(tmp_path / 'cat.vot', format='votable')
    table.write(tmp_path / 'cat.fits.gz')
    table.write(tmp_path / 'cat.dat', format='votable')
    table.write(tmp_path / 'cat.txt', format='fits')
    for name in ('cat.vot', 'cat.fits.gz', 'cat.dat', 'cat.txt'):
        _check(read_positions(tmp_path / name, wcs=wcs))
    table.write(tmp_path / 'plain.xml', format='ascii.csv')
    with pytest.raises(ValueError, match=r'cannot read the table as votable '
                                         r'\(\S.*give its format'):
        read_positions(tmp_path / 'plain.xml', wcs=wcs)
    _check(read_positions(tmp_path / 'plain.xml', wcs=wcs,
                          format='ascii.csv'))


def test_no_position_on_the_frame_is_refused():
    """Positions that all miss the frame are an error naming the table, the
    frame and where the positions fell; some off the frame are measured
    (and flagged by the photometry)."""
    wcs = _wcs('galactic')
    gal = _truth(wcs).galactic
    far = Table({'l': gal.l.deg + 2.0, 'b': gal.b.deg})
    with pytest.raises(OffFrameError, match=r'none of its 5 positions '
                                            r'\(galactic l/b\) lies on the '
                                            r'120 x 200 frame'):
        read_positions(far, wcs=wcs)
    frame = CCDData(np.zeros((NY, NX)), unit='adu', wcs=_wcs('galactic'))
    frame.wcs.pixel_shape = None  # the frame gives its size
    with pytest.raises(OffFrameError):
        read_positions(far, wcs=frame)
    pixels = Table({'x': X + NX, 'y': Y})
    with pytest.raises(OffFrameError, match='x 220.3 to 380.9'):
        read_positions(pixels, wcs=frame)
    partly = Table({'l': np.r_[gal.l.deg[:4], gal.l.deg[4] + 2.0],
                    'b': gal.b.deg})
    pos = read_positions(partly, wcs=wcs)
    assert pos['x_center'][4] < -1000
    np.testing.assert_allclose(pos['x_center'][:4], X[:4], atol=1e-6)
    # without a known frame size, nothing to check against
    assert len(read_positions(pixels)) == 5


def test_pixel_columns_with_an_angle_unit_are_refused():
    table = QTable({'x': X * u.deg, 'y': Y * u.deg})
    with pytest.raises(ValueError, match='column x has unit deg, but pixel '
                                         'positions are in pixels'):
        read_positions(table)
    with pytest.raises(ValueError, match='column x_center has unit mm'):
        read_positions(QTable({'x_center': X * u.mm, 'y_center': Y * u.mm}))
    pos = read_positions(QTable({'x_center': X * u.pix,
                                 'y_center': Y * u.pix}))
    _check(pos, atol=0)


@pytest.fixture(scope='module')
def mosaic(tmp_path_factory):
    """A galactic frame with five Gaussian stars of known flux, and its
    catalogue (l, b) as VOTable, FITS table and SkyCoord ECSV."""
    d = tmp_path_factory.mktemp('galactic')
    wcs = _wcs('galactic')
    yy, xx = np.mgrid[:NY, :NX]
    data = np.random.default_rng(3).normal(10.0, 1.0, (NY, NX))
    for x, y in zip(X, Y, strict=True):
        data += 500.0 / (2 * np.pi * 1.5 ** 2) * np.exp(
            -((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))
    header = wcs.to_header()
    header['BUNIT'], header['GAIN'] = 'electron', 1.0
    fits.PrimaryHDU(data, header).writeto(d / 'mosaic.fits')
    gal = _truth(wcs).galactic
    cat = Table({'id': [11, 12, 13, 14, 15], 'l': gal.l.deg,
                 'b': gal.b.deg})
    cat['l'].unit = cat['b'].unit = u.deg
    cat.write(d / 'cat.xml', format='votable')
    cat.write(d / 'cat.fits')
    QTable({'sky_centroid': gal}).write(d / 'sky.ecsv')
    Table({'l': gal.l.deg + 1.0, 'b': gal.b.deg}).write(d / 'far.csv')
    return d, data


def test_cli_galactic_catalogues(mosaic):
    """VOTable (installed console script), FITS table and SkyCoord ECSV:
    the rows of photutils at the true positions."""
    d, data = mosaic
    ref = aperture_photometry(data - 10.0, CircularAperture(
        np.column_stack([X, Y]), 3.0))['aperture_sum']
    code, out, err = installed_ccdphot('measure', d / 'mosaic.fits',
                                       '--positions', d / 'cat.xml',
                                       '--radius', '3', '-o', d / 'a.ecsv')
    assert code == 0, err
    for name, extra in (('cat.fits', ()), ('sky.ecsv', ()),
                        ('cat.xml', ('--positions-format', 'votable',
                                     '--positions-frame', 'galactic'))):
        code, _, err = ccdphot('measure', d / 'mosaic.fits', '--positions',
                               d / name, *extra, '--radius', '3', '-o',
                               d / 'b.ecsv')
        assert code == 0, err
        for path in (d / 'a.ecsv', d / 'b.ecsv'):
            table = QTable.read(path)
            np.testing.assert_allclose(table['x_center'], X, atol=1e-6)
            np.testing.assert_allclose(table['y_center'], Y, atol=1e-6)
            sky = table['sky'].value
            np.testing.assert_allclose(table['aperture_sum'].value,
                                       ref.value + 10.0 * np.pi * 9
                                       - sky * np.pi * 9, rtol=1e-9)
            assert np.all(table['flags'] == 0)
    assert QTable.read(d / 'a.ecsv')['id'].tolist() == [11, 12, 13, 14, 15]


def test_cli_catalogue_off_the_frame(mosaic):
    d, _ = mosaic
    code, out, err = ccdphot('measure', d / 'mosaic.fits', '--positions',
                             d / 'far.csv', '--radius', '3')
    assert code == 2
    assert (f'--positions {d / "far.csv"}: none of its 5 positions '
            f'(galactic l/b) lies on the 120 x 200 frame IMAGE '
            f'{d / "mosaic.fits"}') in err
    code, _, err = ccdphot('measure', d / 'mosaic.fits', '--positions',
                           d / 'cat.xml', '--positions-frame', 'elsewhere')
    assert code == 2 and 'argument --positions-frame' in err
