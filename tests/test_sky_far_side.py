"""
Sky apertures with a position on the far side of the sky for the frame's
projection (no pixel position in its WCS): that row is off the frame (a
NaN row with flag 1, as a pixel aperture off the frame), the others are
measured exactly as without it; `measure` refuses it, naming the position.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.nddata import CCDData
from astropy.wcs import WCS
from photutils.aperture import SkyCircularAperture

from ccdphot_ext import BoxAperture, SkyEstimate, measure, photometer
from ccdphot_ext.aperture.skybox import SkyBoxAperture
from ccdphot_ext.flags import FLAG_TRUNCATED

RA0, DEC0 = 56.75, 24.12
SKY = SkyEstimate(100.0, 5.0, 10000)


@pytest.fixture(scope='module')
def frame():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    wcs.wcs.crval = [RA0, DEC0]
    wcs.wcs.crpix = [40.0, 30.0]
    wcs.wcs.cdelt = [-1 / 3600, 1 / 3600]
    wcs.wcs.pc = [[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]
    # electrons: photon noise (10 e-) and read noise
    img = np.random.default_rng(5).normal(100.0, 11.0, (60, 80))
    img[25:34, 35:44] += 400.0
    return CCDData(img, unit='electron', wcs=wcs)


def _coords(ra, dec):
    return SkyCoord(np.array(ra) * u.deg, np.array(dec) * u.deg)


NEAR = ([RA0, RA0 + 12 / 3600], [DEC0, DEC0 - 5 / 3600])
FAR = (RA0 + 180.0, -DEC0)
MAKERS = {
    'circle': lambda c: SkyCircularAperture(c, 3 * u.arcsec),
    'box_angular': lambda c: SkyBoxAperture(c, 6 * u.arcsec, 4 * u.arcsec,
                                            theta=20 * u.deg),
    'box_pixels': lambda c: SkyBoxAperture(c, 5 * u.pix, 5 * u.pix),
}
COLUMNS = ('x_center', 'y_center', 'n_pix', 'aperture_sum',
           'aperture_sum_err', 'mag', 'flags')


def _values(table, column):
    return np.asarray(getattr(table[column], 'value', table[column]))


@pytest.mark.parametrize('far_row', [0, 1, 2])
@pytest.mark.parametrize('kind', sorted(MAKERS))
def test_far_side_position_is_an_off_frame_row(frame, kind, far_row):
    ra, dec = list(NEAR[0]), list(NEAR[1])
    ra.insert(far_row, FAR[0])
    dec.insert(far_row, FAR[1])
    assert not np.isfinite(frame.wcs.world_to_pixel(
        _coords(ra, dec))[0][far_row])  # the far side indeed
    make = MAKERS[kind]
    table = photometer(frame, make(_coords(ra, dec)), SKY)
    alone = photometer(frame, make(_coords(*NEAR)), SKY)  # without it
    near = [i for i in range(3) if i != far_row]
    for column in COLUMNS:  # the other rows bit for bit
        np.testing.assert_array_equal(_values(table, column)[near],
                                      _values(alone, column))
    row = table[far_row]
    assert row['flags'] == FLAG_TRUNCATED
    assert row['n_pix'] == 0
    for column in ('aperture_sum', 'aperture_sum_err', 'mag', 'x_center',
                   'y_center'):
        assert np.isnan(_values(table, column)[far_row]), column
    assert row['sky_centroid'].separation(
        _coords(*FAR)).to_value(u.arcsec) < 1e-6
    assert table['id'].tolist() == [1, 2, 3]


def test_every_engine_and_a_mixed_list(frame):
    # a pixel aperture ahead of the sky one shifts its rows
    pixel = BoxAperture((10.0, 12.0), 5, 5)
    sky = SkyCircularAperture(_coords([FAR[0], RA0], [FAR[1], DEC0]),
                              3 * u.arcsec)
    for engine in ('auto', 'general'):
        table = photometer(frame, [pixel, sky], SKY, engine=engine)
        assert table['flags'].tolist()[1] == FLAG_TRUNCATED
        assert np.isnan(_values(table, 'aperture_sum')[1])
        assert np.isfinite(_values(table, 'aperture_sum')[[0, 2]]).all()
        assert np.isnan(_values(table, 'x_center')[1])
        assert _values(table, 'x_center')[0] == 10.0


def test_every_position_on_the_far_side(frame):
    for positions in (_coords(*FAR), _coords([FAR[0]] * 2, [FAR[1], 10])):
        table = photometer(frame, SkyBoxAperture(positions, 6 * u.arcsec,
                                                 6 * u.arcsec), SKY)
        assert (table['flags'] == FLAG_TRUNCATED).all()
        assert np.isnan(_values(table, 'aperture_sum')).all()
        assert np.isnan(_values(table, 'aperture_sum_err')).all()


@pytest.mark.parametrize('kind', sorted(MAKERS))
def test_measure_refuses_a_far_side_position_naming_it(frame, kind):
    with pytest.raises(ValueError, match=r'aperture position 0 \(icrs '
                       r'236\.75, -24\.12 deg\).*far side of the sky.*'
                       'entirely off the frame'):
        measure(frame, MAKERS[kind](_coords(*FAR)), SKY)
    # as a pixel aperture off the frame
    with pytest.raises(ValueError, match='entirely off the frame'):
        measure(frame, BoxAperture((-50.0, -50.0), 5, 5), SKY)
    result = measure(frame, MAKERS[kind](_coords(RA0, DEC0)), SKY)
    assert result.flux > 0


@pytest.mark.parametrize('shape', [('--size', '9'), ('--radius', '4')])
def test_cli_positions_give_a_far_side_row_as_photometer(frame, tmp_path,
                                                         shape):
    from astropy.table import QTable, Table
    from clirun import ccdphot

    image, table, out = (tmp_path / 'f.fits', tmp_path / 'pos.csv',
                         tmp_path / 'out.ecsv')
    frame.write(image)
    ra, dec = list(NEAR[0]), list(NEAR[1])
    ra.insert(1, FAR[0])
    dec.insert(1, FAR[1])
    Table({'id': [7, 8, 9], 'ra': ra, 'dec': dec}).write(table)
    regions = tmp_path / 'stars.reg'
    code, _, err = ccdphot('measure', image, '--positions', table, *shape,
                           '--sky', 'median', '-o', out, '--regions',
                           regions)
    assert code == 0, err
    # no region at the made-up place of the far-side row
    text = regions.read_text()
    assert 'text={7' in text and 'text={9' in text
    assert 'text={8' not in text
    assert sum('# text=' in line for line in text.splitlines()) == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err
    assert (f'warning: --positions {table}: row(s) 2 (the first: icrs '
            '236.75, -24.12 deg) have no pixel position') in lines[0]
    got = QTable.read(out)
    assert got['id'].tolist() == [7, 8, 9]
    assert got['flags'][1] == FLAG_TRUNCATED and got['n_pix'][1] == 0
    for column in ('aperture_sum', 'aperture_sum_err', 'x_center'):
        assert np.isnan(_values(got, column)[1]), column
    assert got['sky_centroid'][1].separation(
        _coords(*FAR)).to_value(u.arcsec) < 1e-6
    # a table of nothing but far-side positions is refused, naming them
    Table({'ra': [FAR[0]] * 2, 'dec': [FAR[1], FAR[1] + 1]}).write(
        table, overwrite=True)
    code, _, err = ccdphot('measure', image, '--positions', table, *shape)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert 'icrs ra/dec of row(s) 1, 2 (the first: 236.75, -24.12 deg) ' \
           'has no pixel position' in err
    # the other rows as measured without it
    Table({'id': [7, 9], 'ra': NEAR[0], 'dec': NEAR[1]}).write(
        table, overwrite=True)
    assert ccdphot('measure', image, '--positions', table, *shape, '--sky',
                   'median', '-o', out)[0] == 0
    alone = QTable.read(out)
    for column in ('aperture_sum', 'aperture_sum_err', 'flags'):
        np.testing.assert_array_equal(_values(got, column)[[0, 2]],
                                      _values(alone, column))
