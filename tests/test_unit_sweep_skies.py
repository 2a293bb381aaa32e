# Licensed under a 3-clause BSD style license - see LICENSE
"""The frames that trigger the sky checks of a glow the median filter
hides, of a mostly-masked crowded frame, and of Background2D meshes
excluded round a vignetted peak (read without their stars and fitted),
measured as CCDData in five units: adu (gain given), electron, electron /
s (EXPTIME), MJy/sr (Spitzer's GAIN x EXPTIME / FLUXCONV, PIXAR_SR: sums
in Jy) and Jy / pix (a gain with its unit). Every check is in noise
units or scales with the data, so the flags, warnings and pulls are
those of the frame in adu, and the sums, errors and sky numbers that
times the unit's factor (1e-6 relative; the whole-frame map is float32,
its numbers to 1e-6 of the level)."""

import re
import warnings
from functools import cache

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot
from photutils.aperture import CircularAperture, aperture_photometry

from ccdphot_ext import FLAG_RESIDUAL_BACKGROUND, SkyEstimate, photometer
from ccdphot_ext.background.maps import frame_background2d
from ccdphot_ext.datasets.sample import render_stars

GAIN, EXPTIME, FLUXCONV, PIXAR_SR, JY_PER_ADU = (
    2.0, 100.0, 0.1069, 2.35e-11, 3.7e-7)
UNITS = ('adu', 'electron', 'electron / s', 'MJy / sr', 'Jy / pix')


def _in_unit(adu, unit):
    """The frame ``adu`` (in ADU, gain `GAIN`) as a CCDData in ``unit``;
    the gain to pass (None: from the unit and header), the data unit per
    ADU, the result unit per ADU of a sum (Jy for MJy/sr) and the
    electrons per data unit."""
    mjy_sr = FLUXCONV / EXPTIME  # MJy/sr per ADU: DN/s times FLUXCONV
    header = {'GAIN': GAIN, 'EXPTIME': EXPTIME, 'FLUXCONV': FLUXCONV,
              'PIXAR_SR': PIXAR_SR}
    gain, per_adu, sum_per_adu = {
        'adu': (GAIN, 1.0, 1.0),
        'electron': (None, GAIN, GAIN),
        'electron / s': (None, GAIN / EXPTIME, GAIN / EXPTIME),
        'MJy / sr': (None, mjy_sr, mjy_sr * PIXAR_SR * 1e6),
        'Jy / pix': (GAIN / JY_PER_ADU * u.electron / (u.Jy / u.pix),
                     JY_PER_ADU, JY_PER_ADU)}[unit]
    ccd = CCDData(adu * per_adu, unit=unit, meta=dict(header))
    return ccd, gain, per_adu, sum_per_adu, GAIN / per_adu


def _kinds(messages):
    """The warnings without their numbers (which are in the data unit)."""
    return sorted({re.sub(r'[-+]?\d[\d.e+-]*', '#', m) for m in messages})


def _measured(adu, xy, light, unit, route, radius):
    """Sky, rows, pulls (against the exact sums of ``light``) and the
    warnings' kinds of the frame ``adu`` in ``unit``."""
    ccd, gain, per_adu, sum_per_adu, g_eff = _in_unit(adu, unit)
    apertures = CircularAperture(xy, radius)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        if route == 'global':
            sky = SkyEstimate.from_image(ccd, gain=gain)
        else:
            sky = SkyEstimate.from_background2d(
                frame_background2d(np.asarray(ccd.data))[0], gain=g_eff,
                data=ccd)
        rows = photometer(ccd, apertures, sky, gain=gain)
    truth = np.asarray(aperture_photometry(light, apertures, method='exact')[
        'aperture_sum']) * sum_per_adu
    sums = np.asarray(rows['aperture_sum'])
    errors = np.asarray(rows['aperture_sum_err'])
    return {'sky': sky, 'per_adu': per_adu, 'sums': sums / sum_per_adu,
            'errors': errors / sum_per_adu, 'flags': np.asarray(rows['flags']),
            'pulls': (sums - truth) / errors, 'unit': rows['aperture_sum'].unit,
            'warnings': _kinds(str(w.message) for w in said
                               if issubclass(w.category, AstropyUserWarning))}


#: Errors across units: against a whole-frame level they hold the
#: ``sky_offset`` term, from the background variation map, whose float32
#: cells agree between a frame and its scaled copy to about 1e-5 (offsets
#: are differences of levels far larger than them)
ERROR_RTOL = 1e-5


def _assert_same_rows(got, ref):
    np.testing.assert_array_equal(got['flags'], ref['flags'])
    np.testing.assert_allclose(got['sums'], ref['sums'], rtol=1e-6)
    np.testing.assert_allclose(got['errors'], ref['errors'], rtol=ERROR_RTOL)
    np.testing.assert_allclose(got['pulls'], ref['pulls'], rtol=0, atol=1e-5)
    assert got['warnings'] == ref['warnings']


def _glow_frame():
    """A 20 ADU, 25 px glow at the centre of a flat 256 x 256 sky of 100
    ADU (gain 2, read noise 5 e-) with 40 stars."""
    rng = np.random.default_rng(33)
    yy, xx = np.mgrid[:256, :256]
    sky = 100.0 + 20.0 * np.exp(-((xx - 127.5) ** 2 + (yy - 127.5) ** 2)
                                / (2 * 25.0 ** 2))
    x, y = rng.uniform(8, 248, (2, 40))
    light = render_stars(sky.shape, x, y, 10 ** rng.uniform(3, 4.5, 40),
                         sigma=1.6)
    img = (rng.poisson((sky + light) * GAIN)
           + rng.normal(0, 5, sky.shape)) / GAIN
    return img, np.column_stack([x, y]), light


def _crowded_frame():
    """6000 stars of 100 to 10**5 e- (dN/dF ~ F**-1.8) on a 2000 e- sky,
    512 x 512 (90% masked); the positions of those above 1000 e-."""
    rng = np.random.default_rng(1)
    flux = 100.0 * (1.0 - rng.uniform(0.0, 1.0, 6000)
                    * (1.0 - 1e3 ** -0.8)) ** (-1.0 / 0.8)
    x, y = rng.uniform(5.0, 507.0, (2, 6000))
    light = render_stars((512, 512), x, y, flux / GAIN, sigma=1.6)
    img = (rng.poisson(2000.0 + GAIN * light)
           + rng.normal(0.0, 5.0, light.shape)) / GAIN
    bright = flux > 1000.0
    return img, np.column_stack([x[bright], y[bright]]), light


def _vignetted_frame():
    """120 stars within the central 240 px of a 384 x 384 sky of 150 ADU
    that falls 30% to the corners (photutils excludes the 15 central
    meshes)."""
    n, psf = 384, 2.0
    yy, xx = np.mgrid[0:n, 0:n]
    r2 = ((xx - n / 2) ** 2 + (yy - n / 2) ** 2) / (n / 2) ** 2
    truth = 150.0 * (1.0 + ((0.7 ** -0.5 - 1.0) / 4.0) * r2) ** -2
    rng = np.random.default_rng(1)
    x, y = rng.uniform(72, n - 72, 120), rng.uniform(72, n - 72, 120)
    flux = 10 ** rng.uniform(np.log10(300.0), 4.0, 120) * 2 * np.pi * psf ** 2
    light = render_stars(truth.shape, x, y, flux, sigma=psf)
    img = (rng.poisson((truth + light) * GAIN)
           + rng.normal(0.0, 5.0, truth.shape)) / GAIN
    return img, np.column_stack([x, y]), light


FRAMES = {'glow': _glow_frame, 'crowded': _crowded_frame,
          'vignetted': _vignetted_frame}


@cache
def _frame(name):
    return FRAMES[name]()


ROUTES = {'glow': ('global', 4.0), 'crowded': ('global', 4.0),
          'vignetted': ('background2d', 5.0)}


@cache
def _api(frame, unit):
    """`_measured` of ``frame`` in ``unit``, with its sky's numbers in
    ADU."""
    img, xy, light = _frame(frame)
    got = _measured(img, xy, light, unit, *ROUTES[frame])
    sky, k = got['sky'], got['per_adu']
    got['level'] = np.asarray(sky.value) / k
    got['error'] = np.asarray(sky.error_on_mean) / k
    if frame == 'glow':
        variation = sky.background_variation
        got['taken'] = variation.filtered_out(sky.std, 127.5, 127.5) / k
        got['map'] = variation(127.5, 127.5) / k
        got['unfiltered'] = variation.unfiltered_error(
            sky.std, 127.5, 127.5) / k
    elif frame == 'crowded':
        got['bias'] = sky.meta['crowding_bias'] / k
        got['note'] = sky.meta.get('faint_light_unmeasured', '')
    else:
        got['excluded'] = sky.meta['n_excluded_meshes']
        got['fitted'] = sky.meta['unmeasured_meshes_fitted']
        got['misfit'] = sky.meta.get('unmeasured_mesh_misfit')
    return got


@pytest.mark.parametrize('unit', UNITS[1:])
def test_glow_hidden_by_the_filter_in_every_unit(unit):
    """What the median filter took out of the glow's cells
    (`filtered_out`, 3.33 ADU at the centre) and the rows it flags (22 of
    40) are the same in every unit."""
    ref, got = _api('glow', 'adu'), _api('glow', unit)
    assert 2.5 < ref['taken'] < 4.5
    assert np.count_nonzero(ref['flags'] & FLAG_RESIDUAL_BACKGROUND) > 15
    assert any('background varies' in w for w in ref['warnings'])
    _assert_same_rows(got, ref)
    assert got['level'] == pytest.approx(ref['level'], rel=1e-9)
    assert got['error'] == pytest.approx(ref['error'], rel=1e-9)
    # the map and its filter's take are float32: to 1e-6 of the level
    for name in ('taken', 'map', 'unfiltered'):
        assert got[name] == pytest.approx(ref[name], abs=1e-6 * ref['level'])
    assert str(got['unit']) == ('Jy' if 'Jy' in unit else unit)


@pytest.mark.parametrize('unit', UNITS[1:])
def test_unseen_sky_note_in_every_unit(unit):
    """The crowded frame of faint stars on a bright sky, 90% masked: the
    note ``faint_light_unmeasured`` (with its warning) and flag 32 on all
    942 rows in every unit; the level (1002.05 ADU, 14 errors above the
    sky) and ``crowding_bias`` (1.22 ADU, 0.59 of the lift) scale with
    the unit (1e-6: the faint light's fit converges to its tolerance,
    sums within 3e-7)."""
    ref, got = _api('crowded', 'adu'), _api('crowded', unit)
    assert ref['level'] - 1000.0 > 5 * ref['error']
    assert np.mean(ref['pulls']) < -0.5  # biased, and flagged
    for rows in (ref, got):
        assert 'may fall short of their lift' in rows['note']
        assert np.all(rows['flags'] & FLAG_RESIDUAL_BACKGROUND)
    _assert_same_rows(got, ref)
    for name in ('level', 'error', 'bias'):
        assert got[name] == pytest.approx(ref[name], rel=1e-6)


@pytest.mark.parametrize('unit', UNITS[1:])
def test_unmeasured_meshes_fitted_in_every_unit(unit):
    """Background2D (the electrons per data unit given) on the vignetted
    sky with its stars round the peak: 15 meshes excluded, each read
    without its stars and fitted with the measured ones (no misfit left
    to add to the level's error, no warning of it), the same rows in
    every unit and the level and its error times the unit's factor."""
    ref, got = _api('vignetted', 'adu'), _api('vignetted', unit)
    assert ref['excluded'] == got['excluded'] == 15
    assert ref['fitted'] == got['fitted'] == 15
    assert ref['misfit'] is None and got['misfit'] is None
    assert not any('excluded and filled' in w for w in ref['warnings'])
    assert abs(np.mean(ref['pulls'])) < 0.3
    assert np.std(ref['pulls']) == pytest.approx(1.0, abs=0.15)
    _assert_same_rows(got, ref)
    for name in ('level', 'error'):
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-6)


@cache
def _cli_rows(frame, unit, sky, folder):
    """The CLI's rows for ``frame`` written in ``unit`` (BUNIT and the
    header's GAIN, EXPTIME, FLUXCONV, PIXAR_SR; Jy / pix with --gain),
    in ADU of the frame; its warnings' kinds."""
    img, xy, _ = _frame(frame)
    ccd, gain, _, sum_per_adu, _ = _in_unit(img, unit)
    path = f'{folder}/{frame}_{unit.replace(" / ", "_per_")}.fits'
    header = fits.Header(ccd.meta)
    header['BUNIT'] = unit
    fits.writeto(path, np.asarray(ccd.data), header, overwrite=True)
    positions = f'{folder}/{frame}.csv'
    Table({'x': xy[:, 0], 'y': xy[:, 1]}).write(positions, overwrite=True)
    args = ['measure', path, '--positions', positions, '--radius', 5,
            '--sky', sky, '-o', path + '.ecsv']
    if isinstance(gain, u.Quantity):
        args += ['--gain', gain.to_string()]
    code, _, err = ccdphot(*args)
    assert code == 0, err
    rows = Table.read(path + '.ecsv')
    lines = [line.split('warning: ', 1)[1] for line in err.splitlines()
             if 'warning: ' in line]
    return (np.asarray(rows['aperture_sum']) / sum_per_adu,
            np.asarray(rows['aperture_sum_err']) / sum_per_adu,
            np.asarray(rows['flags']), _kinds(lines),
            str(rows['aperture_sum'].unit))


@pytest.mark.parametrize('frame, sky, kind', [
    ('glow', 'sigma_clip', 'background varies'),
    ('crowded', 'sigma_clip', 'may fall short of their lift'),
    ('vignetted', 'background2d', 'flattens the sky')])
@pytest.mark.parametrize('unit', UNITS[1:])
def test_cli_in_every_unit(tmp_path_factory, frame, sky, kind, unit):
    """``ccdphot measure`` on the three frames written as FITS in each
    unit (the gain from the header, --gain for Jy / pix): the rows of the
    frame in adu (flags, sums and errors times the unit's factor)."""
    folder = tmp_path_factory.getbasetemp() / 'unit_sweep_cli'
    folder.mkdir(exist_ok=True)
    folder = str(folder)
    ref = _cli_rows(frame, 'adu', sky, folder)
    got = _cli_rows(frame, unit, sky, folder)
    assert any(kind in w for w in ref[3])
    assert np.any(ref[2] & FLAG_RESIDUAL_BACKGROUND) == (frame != 'vignetted')
    np.testing.assert_array_equal(got[2], ref[2])
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-6)
    np.testing.assert_allclose(got[1], ref[1], rtol=ERROR_RTOL)
    assert got[3] == ref[3]
    assert got[4] == ('Jy' if unit in ('MJy / sr', 'Jy / pix') else unit)
