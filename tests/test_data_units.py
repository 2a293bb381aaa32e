"""Data units: which add up into an aperture's light, how BUNIT is read
whatever its case, and values per pixel (real FITS files, real numbers)."""

import re
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot
from photutils.aperture import CircularAperture

from ccdphot_ext import (
    FrameReadError,
    SkyEstimate,
    measure,
    photometer,
    read_frame,
)

EXPTIME, GAIN, SKY = 10.0, 2.0, 10.0


def _star_frame(seed=0):
    """A star of 1000 on a sky of 10 with a scatter of 0.5."""
    yy, xx = np.mgrid[0:100, 0:100]
    star = 1000 * np.exp(-((xx - 50) ** 2 + (yy - 50) ** 2) / 8) / (
        2 * np.pi * 4)
    rng = np.random.default_rng(seed)
    return SKY + star + rng.normal(0, 0.5, (100, 100))


def _write(path, bunit, **cards):
    fits.writeto(path, _star_frame().astype('f4'), fits.Header(
        {'BUNIT': bunit, 'EXPTIME': EXPTIME, 'GAIN': GAIN, **cards}),
        overwrite=True)
    return path


def _source_variance(ccd, g_eff, sky=SKY):
    """Plain numpy: the photon variance of the sum, sum(w^2 (d - sky)) /
    g_eff in the data unit, w the exact aperture weights."""
    mask = CircularAperture((50.0, 50.0), 5.0).to_mask(method='exact')
    weighted = mask.get_values(np.asarray(ccd.data, float) - sky)  # w (d-B)
    weights = mask.get_values(np.ones(ccd.shape))
    return np.sum(weights * weighted) / g_eff


def _photometer(ccd):
    return photometer(ccd, CircularAperture((50.0, 50.0), 5.0),
                      SkyEstimate(SKY, 0.5, 10000, unit=ccd.unit))


@pytest.mark.parametrize('bunit, what', [
    ('mag', 'a logarithmic unit'), ('mag/arcsec2', 'a logarithmic unit'),
    ('dB', 'a logarithmic unit'), ('%', 'a ratio'), ('pct', 'a ratio'),
    ('K', 'a temperature'), ('m', 'a length')])
def test_a_bunit_whose_values_do_not_add_up_is_refused(tmp_path, bunit,
                                                       what):
    """A magnitude image summed is no magnitude; a percentage, a
    temperature, a length are no light: refused, naming BUNIT."""
    path = _write(tmp_path / 'f.fits', bunit)
    with pytest.raises(FrameReadError, match=(
            rf"f.fits: BUNIT='{re.escape(bunit)}': data in .* \({what}.*"
            r"cannot be added up into an aperture's light.*pass unit=")):
        read_frame(path)
    # a wrong BUNIT is overridden
    assert read_frame(path, unit='adu').unit == u.adu


@pytest.mark.parametrize('unit', ['mag', '%', 'K'])
def test_the_api_refuses_the_same_units(tmp_path, unit):
    with pytest.raises(ValueError, match=r'^unit: data in '):
        read_frame(_write(tmp_path / 'f.fits', 'adu'), unit=unit)
    ccd = CCDData(_star_frame(), unit=unit)
    aperture = CircularAperture((50.0, 50.0), 5.0)
    sky = SkyEstimate(SKY, 0.5, 10000, unit=unit)
    for call in (photometer, measure):
        with pytest.raises(ValueError, match=r'^data: data in '):
            call(ccd, aperture, sky)


def test_plain_numbers_and_other_summable_units_pass(tmp_path):
    for bunit, unit in (('Jy/beam', u.Jy / u.beam),
                        ('nanomaggy', u.nanomaggy),
                        ('adu/arcsec2', u.adu / u.arcsec ** 2)):
        path = _write(tmp_path / 'f.fits', bunit)
        assert read_frame(path).unit == unit
    # a dimensionless unit: plain numbers, summed (no gain known for them)
    with pytest.warns(AstropyUserWarning, match='no source photon noise'):
        t = _photometer(CCDData(_star_frame(), unit=''))
    np.testing.assert_allclose(t['aperture_sum'][0], np.sum(
        CircularAperture((50.0, 50.0), 5.0).to_mask(method='exact').multiply(
            _star_frame() - SKY)), rtol=1e-12)


def test_cli_refuses_them_with_exit_2(tmp_path):
    image = _write(tmp_path / 'f.fits', 'mag')
    positions = tmp_path / 'p.csv'
    Table({'x': [50.0], 'y': [50.0]}).write(positions)
    out = tmp_path / 'o.ecsv'
    args = ['measure', image, '--positions', positions, '--radius', 5,
            '-o', out]
    code, _, err = ccdphot(*args)
    assert code == 2 and not out.exists()
    assert "error: IMAGE" in err and "BUNIT='mag': data in mag" in err
    assert 'Traceback' not in err
    code, _, err = ccdphot(*args, '--unit', 'K')
    assert code == 2 and 'Traceback' not in err
    assert re.search(r'argument --unit: data unit: data in K \(a '
                     'temperature\\)', err)
    code, _, err = ccdphot(*args, '--unit', 'adu', '--gain', GAIN)
    assert code == 0 and Table.read(out)['aperture_sum'].unit == u.adu


@pytest.mark.parametrize('bunit, unit', [
    ('MJY/SR', u.MJy / u.sr), ('UJY/ARCSEC2', u.uJy / u.arcsec ** 2)])
def test_a_surface_brightness_in_upper_case_is_read(tmp_path, bunit, unit):
    """``MJY/SR`` was unparseable: taken as adu with the header GAIN
    (var_source 472 for a star of 1000). It is MJy/sr, said with a
    warning, and measured as the same frame in ``MJy/sr`` is: in Jy, the
    source term from GAIN x EXPTIME / FLUXCONV."""
    cards = {'PIXAR_SR': 1e-11, 'FLUXCONV': 0.1}
    upper = _write(tmp_path / 'upper.fits', bunit, **cards)
    with pytest.warns(AstropyUserWarning, match=(
            rf"BUNIT='{re.escape(bunit)}' read as "
            rf"'{re.escape(unit.to_string())}'.*a first capital M is mega")):
        ccd = read_frame(upper)
    assert ccd.unit == unit
    t = _photometer(ccd)
    ref = _photometer(read_frame(_write(tmp_path / 'ref.fits',
                                        unit.to_string(), **cards)))
    assert t['aperture_sum'].unit == u.Jy
    for name in ('aperture_sum', 'aperture_sum_err', 'var_source'):
        assert t[name][0] == ref[name][0]
    # the source term: F / g_eff, g_eff = GAIN x EXPTIME / FLUXCONV per
    # MJy/sr, F in the data unit, both in Jy
    to_jy = (1.0 * unit * u.sr).to_value(u.Jy) * 1e-11
    per_mjy_sr = (1.0 * unit).to_value(u.MJy / u.sr)
    g_eff = GAIN * EXPTIME / 0.1 * per_mjy_sr
    np.testing.assert_allclose(t['var_source'][0].value,
                               _source_variance(ccd, g_eff) * to_jy ** 2,
                               rtol=1e-9)


def test_jy_per_beam_in_upper_case_is_read(tmp_path):
    with pytest.warns(AstropyUserWarning, match="BUNIT='JY/BEAM' read as "
                      "'Jy / beam'"):
        assert read_frame(_write(tmp_path / 'f.fits', 'JY/BEAM')).unit == (
            u.Jy / u.beam)


@pytest.mark.parametrize('bunit, rate, g_eff', [
    ('e/s/pix', 'electron / s', EXPTIME),
    ('DN/S/PIX', 'DN / s', GAIN * EXPTIME),
    ('electron/pixel', 'electron', 1.0)])
def test_values_per_pixel_have_their_source_term(tmp_path, bunit, rate,
                                                 g_eff):
    """An electron rate per pixel and EXPTIME give the gain, as e-/s does
    (and DN/s per pixel with GAIN and EXPTIME as DN/s): var_source was NaN
    ('the header gain does not apply'). The sums are those of the frame
    in the unit without '/pix', bit for bit, and in that unit."""
    ccd = read_frame(_write(tmp_path / 'pix.fits', bunit))
    t = _photometer(ccd)
    ref = _photometer(read_frame(_write(tmp_path / 'ref.fits', rate)))
    assert t['aperture_sum'].unit == u.Unit(rate)
    for name in ('aperture_sum', 'aperture_sum_err', 'var_source', 'mag'):
        assert t[name][0] == ref[name][0], name
    np.testing.assert_allclose(t['var_source'][0].value,
                               _source_variance(ccd, g_eff), rtol=1e-9)


# -- BUNIT and --unit as astronomers write them --------------------------

@pytest.mark.parametrize('bunit, unit', [
    ('counts s-1', u.count / u.s), ('counts/s', u.count / u.s),
    ('COUNTS/S', u.count / u.s), ('electrons s^-1', u.electron / u.s),
    ('DN/s', u.DN / u.s), ('e-/s', u.electron / u.s),
    ('photons', u.ph), ('photon/s', u.ph / u.s), ('PHOTONS/S', u.ph / u.s),
    ('counts/s/pixel', u.count / u.s / u.pix)])
def test_written_spellings_are_read_as_their_unit(tmp_path, bunit, unit):
    """Each spelling is read as the unit it names (plural, any case,
    factors joined by a blank with their powers): a rate stays a rate."""
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # read as they are: nothing to say
        assert read_frame(_write(tmp_path / 'f.fits', bunit)).unit == unit


@pytest.mark.parametrize('bunit, g_eff', [
    ('counts s-1', GAIN * EXPTIME), ('COUNTS/S', GAIN * EXPTIME),
    ('DN/s', GAIN * EXPTIME), ('e-/s', EXPTIME), ('counts', GAIN)])
def test_a_count_rate_has_the_gain_times_the_exposure_time(tmp_path, bunit,
                                                           g_eff):
    """The source term of a rate is F / (GAIN x EXPTIME) (EXPTIME for an
    electron rate), of counts F / GAIN: computed here with plain numpy.
    ``counts s-1`` was unparseable and taken as adu counts (F / GAIN, 10
    times too large)."""
    ccd = read_frame(_write(tmp_path / 'f.fits', bunit))
    t = _photometer(ccd)
    np.testing.assert_allclose(t['var_source'][0].value,
                               _source_variance(ccd, g_eff), rtol=1e-9)
    assert t['aperture_sum'].unit == ccd.unit


def test_a_rate_without_exposure_time_has_no_source_term(tmp_path):
    """Never taken as counts: without EXPTIME the rate's source term is
    absent (NaN), and said."""
    path = tmp_path / 'f.fits'
    fits.writeto(path, _star_frame().astype('f4'),
                 fits.Header({'BUNIT': 'counts s-1', 'GAIN': GAIN}))
    ccd = read_frame(path)
    with pytest.warns(AstropyUserWarning, match='no source photon noise'):
        t = _photometer(ccd)
    assert np.isnan(t['var_source'][0])
    assert 'need the exposure time' in t.meta['gain_source']


def test_photons_need_a_gain_in_electrons_per_photon(tmp_path):
    """A detector gain in e-/ADU does not describe photons: the source
    term is absent with the header GAIN, there with a gain in e-/ph."""
    ccd = read_frame(_write(tmp_path / 'f.fits', 'photons'))
    with pytest.warns(AstropyUserWarning, match='gain 2 e-/adu does not '
                      'apply'):
        assert np.isnan(_photometer(ccd)['var_source'][0])
    t = photometer(ccd, CircularAperture((50.0, 50.0), 5.0),
                   SkyEstimate(SKY, 0.5, 10000, unit=ccd.unit),
                   gain=0.8 * u.electron / u.ph)
    np.testing.assert_allclose(t['var_source'][0].value,
                               _source_variance(ccd, 0.8), rtol=1e-9)


@pytest.mark.parametrize('bunit', ['furlongs', 'counts per second',
                                   'adu/', 'DN/foo'])
def test_an_unreadable_bunit_is_refused_not_taken_as_adu(tmp_path, bunit):
    """An unreadable BUNIT was taken as adu with the header GAIN (a
    source term in the wrong unit, and columns labelled adu); it is
    refused in one line naming it, and ``unit=`` reads the frame."""
    path = _write(tmp_path / 'f.fits', bunit)
    with pytest.raises(FrameReadError) as info:
        read_frame(path)
    text = str(info.value)
    assert text.startswith(f'{path}: BUNIT={bunit!r} is not a unit')
    assert 'pass unit=' in text and '\n' not in text
    assert read_frame(path, unit='adu').unit == u.adu


def test_an_unreadable_bunit_of_the_uncertainty_map_is_refused(tmp_path):
    path = tmp_path / 'f.fits'
    fits.HDUList([
        fits.PrimaryHDU(_star_frame(), fits.Header({'BUNIT': 'adu'})),
        fits.ImageHDU(np.full((100, 100), 0.5), fits.Header(
            {'BUNIT': 'furlongs'}), name='ERR')]).writeto(path)
    with pytest.raises(FrameReadError, match=r"ERR.*BUNIT='furlongs' is "
                       'not a unit.*correct that BUNIT card'):
        read_frame(path)


def test_cli_refuses_an_unreadable_bunit_in_one_line(tmp_path):
    image = _write(tmp_path / 'f.fits', 'furlongs')
    positions = tmp_path / 'p.csv'
    Table({'x': [50.0], 'y': [50.0]}).write(positions)
    out = tmp_path / 'o.ecsv'
    args = ['measure', image, '--positions', positions, '--radius', 5,
            '-o', out]
    code, _, err = ccdphot(*args)
    assert code == 2 and not out.exists()
    assert err.count('\n') == 1 and 'Traceback' not in err
    assert "BUNIT='furlongs' is not a unit" in err and '--unit' in err
    code, _, err = ccdphot(*args, '--unit', 'adu')
    assert code == 0 and Table.read(out)['aperture_sum'].unit == u.adu


@pytest.mark.parametrize('text, unit, g_eff, warned', [
    ('ELECTRON/S', u.electron / u.s, EXPTIME, None),
    ('electrons s-1', u.electron / u.s, EXPTIME, None),
    ('ADU', u.adu, GAIN, None), ('adu', u.adu, GAIN, None),
    ('DN/S', u.DN / u.s, GAIN * EXPTIME,
     "--unit 'DN/S' read as 'DN / s' (rate) by the header convention")])
def test_cli_unit_is_read_as_bunit_is(tmp_path, text, unit, g_eff, warned):
    """``--unit`` is read whatever its case, as BUNIT is, with the same
    warnings (one line each), and overrides BUNIT: the sums are in that
    unit and the source term follows it (numpy reference)."""
    image = _write(tmp_path / 'f.fits', 'mag')  # a wrong BUNIT, overridden
    positions = tmp_path / 'p.csv'
    Table({'x': [50.0], 'y': [50.0]}).write(positions)
    out = tmp_path / 'o.ecsv'
    code, _, err = ccdphot('measure', image, '--positions', positions,
                           '--radius', 5, '-o', out, '--unit', text)
    assert code == 0, err
    t = Table.read(out)
    assert t['aperture_sum'].unit == unit
    np.testing.assert_allclose(
        t['var_source'][0], _source_variance(read_frame(image, unit=unit),
                                             g_eff, t['sky'][0]), rtol=1e-9)
    said = [line for line in err.splitlines() if '--unit' in line]
    if warned is None:
        assert said == []
    else:
        assert len(said) == 1 and warned in said[0]
        assert said[0].startswith('ccdphot measure: warning: ')


def test_cli_unit_in_another_case_is_warned_as_bunit_is(tmp_path):
    from ccdphot_ext.cli.common import data_unit_type

    with pytest.warns(AstropyUserWarning, match="--unit 'MJY/SR' read as "
                      "'MJy / sr'.*a first capital M is mega"):
        assert data_unit_type('MJY/SR') == u.MJy / u.sr
    with pytest.warns(AstropyUserWarning, match="BUNIT='MJY/SR' read as "
                      "'MJy / sr'.*a first capital M is mega"):
        assert read_frame(_write(tmp_path / 'f.fits', 'MJY/SR')).unit == (
            u.MJy / u.sr)


# -- one reader: unit= in Python reads a unit as --unit and BUNIT do ---------

_SPELLINGS = [
    # (as written, the unit, the warning's reading or None)
    ('ADU', u.adu, None),
    ('Electrons', u.electron, None),
    ('ELECTRONS/S', u.electron / u.s, None),
    ('e-/s', u.electron / u.s, None),
    ('counts s-1', u.ct / u.s, None),
    ('MJY/SR', u.MJy / u.sr, "read as 'MJy / sr'"),
    ('DN/S', u.DN / u.s, "read as 'DN / s' (rate) by the header convention"),
    ('erg/s/cm2/A', u.erg / u.s / u.cm ** 2 / u.AA,
     "Angstrom"),
]


def _read_with(reader, text):
    """``reader(text)``'s unit and the warnings it gave."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        unit = reader(text)
    return unit, [str(w.message) for w in record
                  if issubclass(w.category, AstropyUserWarning)]


@pytest.mark.parametrize('text, unit, warned', _SPELLINGS)
def test_python_unit_is_read_as_the_cli_reads_it(tmp_path, text, unit,
                                                 warned):
    """``read_frame(unit=...)`` and ``FrameReading(unit=...)`` read a unit
    whatever its case and header spelling, as ``--unit`` (and BUNIT) do:
    the same unit, the same warning naming the parameter."""
    from ccdphot_ext import FrameReading
    from ccdphot_ext.cli.common import data_unit_type

    path = _write(tmp_path / 'f.fits', 'mag')  # a wrong BUNIT, overridden
    readings = {
        'read_frame': _read_with(lambda t: read_frame(path, unit=t).unit,
                                 text),
        'FrameReading': _read_with(lambda t: FrameReading(unit=t).unit,
                                   text),
        '--unit': _read_with(data_unit_type, text)}
    names = {'read_frame': f'unit={text!r}', 'FrameReading':
             f'unit={text!r}', '--unit': f'--unit {text!r}'}
    for who, (got, said) in readings.items():
        assert got == unit, who
        if warned is None:
            assert said == [], (who, said)
        else:
            assert len(said) == 1 and warned in said[0], (who, said)
            assert said[0].startswith(names[who]), (who, said)
    # the frame read in that unit is the frame of the unit written out
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        ccd = read_frame(path, unit=text)
    plain = read_frame(path, unit=unit)
    assert ccd.unit == plain.unit
    np.testing.assert_array_equal(ccd.data, plain.data)


def test_python_unit_refusals_name_the_parameter(tmp_path):
    from ccdphot_ext import FrameReading

    path = _write(tmp_path / 'f.fits', 'adu')
    for reader in (lambda t: read_frame(path, unit=t),
                   lambda t: FrameReading(unit=t)):
        with pytest.raises(ValueError, match="^unit='furlongs' is not a "
                           'unit .*neither astropy nor the header'):
            reader('furlongs')
        # a unit whose values are no light: refused once read, in any case
        with pytest.raises(ValueError, match=r'^unit: data in K \(a '
                           'temperature\\)'):
            reader('K')
        with pytest.raises(ValueError, match=r'^unit: data in mag'):
            reader('mag')
        with pytest.raises(ValueError, match="^unit='  ': an empty text"):
            reader('  ')
        with pytest.raises(TypeError, match='^unit must be an astropy unit '
                           'or a unit string, got float 2.0'):
            reader(2.0)
