"""An uncertainty map in a file of its own, read by `read_frame` (and by
``ccdphot measure --uncertainty FILE`` through it, one path): its BUNIT is
checked against the data's (a map in electrons beside data in adu is
refused, naming both units and what would fit), and a BUNIT of the data
unit squared says the map is a variance."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.table import Table
from clirun import ccdphot
from photutils.aperture import CircularAperture

from ccdphot_ext import SkyEstimate, photometer, read_frame
from ccdphot_ext.io.fits import FrameReadError

GAIN, SHAPE = 1.9, (64, 64)


@pytest.fixture
def files(tmp_path):
    """An adu image (GAIN 1.9) and its background sigma written as maps
    in adu, in electrons (times the gain), as a variance in adu2 and an
    inverse variance in 1 / adu2; the positions of two stars."""
    rng = np.random.default_rng(2)
    sky_e, rn = 150.0, 5.0
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    stars = [(20.3, 22.1, 2e4), (44.6, 40.2, 5e3)]
    model = sum(f / (2 * np.pi * 1.5 ** 2) * np.exp(
        -((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))
        for x, y, f in stars)
    adu = (rng.poisson(sky_e + model) + rng.normal(0, rn, SHAPE)) / GAIN
    sigma = np.full(SHAPE, np.sqrt(sky_e + rn ** 2) / GAIN)
    paths = {name: tmp_path / f'{name}.fits' for name in
             ('image', 'adu', 'electron', 'var', 'ivar')}
    fits.writeto(paths['image'], adu, fits.Header(
        {'BUNIT': 'adu', 'GAIN': GAIN, 'RDNOISE': rn}))
    for name, values, bunit in (('adu', sigma, 'adu'),
                                ('electron', sigma * GAIN, 'electron'),
                                ('var', sigma ** 2, 'adu2'),
                                ('ivar', sigma ** -2, '1 / adu2')):
        fits.writeto(paths[name], values, fits.Header({'BUNIT': bunit}))
    pos = tmp_path / 'pos.csv'
    Table({'x': [s[0] for s in stars], 'y': [s[1] for s in stars]}).write(pos)
    paths['positions'] = pos
    return paths, sigma


@pytest.mark.parametrize('name, kind', [
    ('adu', StdDevUncertainty), ('var', VarianceUncertainty),
    ('ivar', InverseVariance)])
def test_read_frame_takes_the_kind_a_map_unit_says(files, name, kind):
    paths, sigma = files
    ccd = read_frame(paths['image'], uncertainty=paths[name])
    assert type(ccd.uncertainty) is kind
    np.testing.assert_allclose(
        ccd.uncertainty.represent_as(StdDevUncertainty).array, sigma,
        rtol=1e-12)


def test_a_kind_said_wins_over_the_unit(files, tmp_path):
    """uncertainty_type= (or a UTYPE card) says what the map holds; a VAR
    extension whose BUNIT was copied from the data (adu) is a variance by
    its name, and a variance in adu does not fit data in adu: refused,
    saying what would (astropy said "Unit adu of uncertainty incompatible
    with unit adu of data")."""
    paths, sigma = files
    ccd = read_frame(paths['image'], uncertainty=paths['var'],
                     uncertainty_type='var')
    assert type(ccd.uncertainty) is VarianceUncertainty
    data = fits.getdata(paths['image'])
    path = tmp_path / 'mef.fits'
    fits.HDUList([fits.PrimaryHDU(data, fits.Header({'BUNIT': 'adu'})),
                  fits.ImageHDU(sigma ** 2, fits.Header({'BUNIT': 'adu'}),
                                name='VAR')]).writeto(path)
    with pytest.raises(FrameReadError, match='in adu, which does not fit a '
                       'variance of data in adu'):
        read_frame(path)


def test_a_map_in_another_unit_is_refused_naming_both(files):
    paths, _ = files
    with pytest.raises(FrameReadError) as said:
        read_frame(paths['image'], uncertainty=paths['electron'])
    text = str(said.value)
    assert ('the uncertainty map is in electron, which does not fit a '
            'standard deviation of data in adu') in text
    assert 'a variance in adu2' in text and 'divide by the gain' in text


def _cli_errors(paths, name, tmp_path):
    out = tmp_path / f'{name}.ecsv'
    code, _, err = ccdphot('measure', paths['image'], '--uncertainty',
                           paths[name], '--positions', paths['positions'],
                           '--radius', 4, '-o', out)
    return code, err, out


@pytest.mark.parametrize('name', ['adu', 'var', 'ivar'])
def test_cli_reads_the_map_as_read_frame(files, name, tmp_path):
    """A map in adu, a variance in adu2, an inverse variance: the same
    errors, those of the library on read_frame's frame."""
    paths, _ = files
    code, err, out = _cli_errors(paths, name, tmp_path)
    assert code == 0, err
    t = Table.read(out)
    ccd = read_frame(paths['image'], uncertainty=paths['adu'])
    xy = np.c_[np.asarray(t['x_center']), np.asarray(t['y_center'])]
    ref = photometer(ccd, CircularAperture(xy, 4.0),
                     SkyEstimate.from_image(ccd, gain=GAIN))
    np.testing.assert_allclose(t['aperture_sum_err'],
                               ref['aperture_sum_err'].value, rtol=1e-9)


def test_cli_refuses_a_map_in_electrons_beside_adu(files, tmp_path):
    paths, _ = files
    code, err, out = _cli_errors(paths, 'electron', tmp_path)
    assert code == 2 and not out.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err
    assert lines[0].startswith(
        f'ccdphot measure: error: --uncertainty {paths["electron"]}: ')
    assert 'is in electron, which does not fit' in lines[0]
