"""An uncertainty map that holds the sources' photon noise (ccdproc's
``create_deviation``, the usual uncertainty of a CCDData) is the total
error: taken as the background noise alone (the default model) the stars'
photon noise was counted twice. Such a map is found (its variance rises
with the signal by 1 / gain, pixel against pixel) and taken as total, with
a warning; maps of the background alone (constant, following a sloping
sky, a Background2D rms map, noisy) are not. Frames are written to FITS
by astropy/ccdproc and read back; pulls against the noise-free truth."""

import warnings

import astropy.units as u
import ccdproc
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot
from photutils.aperture import CircularAperture
from photutils.background import Background2D
from test_pulls_regimes import GAIN, READ_NOISE, SHAPE, _frame, _model, _stars, _truth

from ccdphot_ext import BudgetOptions, SkyEstimate, measure, photometer, read_frame
from ccdphot_ext.photometry.uncertaintycheck import (
    MAP_RISE_FRACTION,
    map_photon_rise,
)
from ccdphot_ext.utils.inputs import as_frame

FOUND = "the uncertainty map holds the sources' photon noise"
SKY_E = 200.0
TOTAL = BudgetOptions(uncertainty_model='total')


def _scene(rng, *, fluxes=(300.0, 1e5)):
    """Stars of log-uniform fluxes (ADU) on a flat sky: ADU data, the
    noise-free model and the positions."""
    x, y = _stars(rng)
    flux = 10 ** rng.uniform(*np.log10(fluxes), x.size)
    model = _model(SHAPE, x, y, flux)
    return _frame(rng, model, SKY_E), model, np.c_[x, y]


def _written(tmp_path, data, sigma=None, *, name='frame.fits', total=False):
    """``data`` written as a CCDData FITS file (GAIN and RDNOISE in the
    header) with ``sigma`` as its UNCERT extension, or with ccdproc's
    ``create_deviation`` map (``total``); read back with read_frame."""
    ccd = CCDData(data, unit='adu', meta={'GAIN': GAIN,
                                          'RDNOISE': READ_NOISE})
    if total:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # negative pixels: NaN
            ccd = ccdproc.create_deviation(
                ccd, gain=GAIN * u.electron / u.adu,
                readnoise=READ_NOISE * u.electron, disregard_nan=True)
    elif sigma is not None:
        ccd.uncertainty = StdDevUncertainty(sigma)
    path = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # ccdproc's HIERARCH history card
        ccd.write(path, overwrite=True)
    return read_frame(path)


def _photometer(ccd, aps, **kwargs):
    """photometer with a whole-frame sky; the table and the warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        sky = SkyEstimate.from_image(ccd, gain=GAIN)
        t = photometer(ccd, aps, sky, **kwargs)
    return t, [str(w.message) for w in caught]


def test_a_create_deviation_map_is_found_and_taken_as_total(tmp_path):
    rng = np.random.default_rng(3)
    data, model, xy = _scene(rng)
    ccd = _written(tmp_path, data, total=True)
    # Var = max(D, 0) / g + RN**2 / g**2: it rises by 1 / g exactly
    rise, significance, n = map_photon_rise(as_frame(ccd), GAIN)
    assert rise == pytest.approx(1.0, rel=1e-9)
    assert significance > 100 and n > 100
    aps = CircularAperture(xy, 4.0)
    t, said = _photometer(ccd, aps)
    found = [m for m in said if FOUND in m]
    assert len(found) == 1 and 'gain 2' in found[0]
    assert t.meta['uncertainty_model'] == 'total'
    assert found[0] in t.meta['notes']
    assert np.all(np.isnan(t['var_source']))
    # the same numbers as the model given, which warns of nothing
    given, said = _photometer(ccd, aps, budget=TOTAL)
    assert not [m for m in said if 'uncertainty check' in m]
    np.testing.assert_array_equal(t['aperture_sum_err'],
                                  given['aperture_sum_err'])
    # the map term is the map summed with squared weights: plain numpy
    sigma = np.asarray(ccd.uncertainty.array, dtype=float)
    from ccdphot_ext.aperture.utils import aperture_weights

    slc, w, _ = aperture_weights(aps, SHAPE, index=0, sum_method='exact',
                                 subpixels=5)
    assert t['var_sky'][0].value == pytest.approx(
        np.sum(w ** 2 * sigma[slc] ** 2), rel=1e-9)
    # measure() takes it so too, and its budget says why
    with pytest.warns(AstropyUserWarning, match=FOUND):
        one = measure(ccd, aps[0], SkyEstimate.from_image(ccd, gain=GAIN))
    assert sorted(one.budget.terms) == ['map', 'sky_mean']
    assert any(FOUND in note for note in one.budget.notes)


def _background_maps(data, model):
    """Uncertainty maps of the background alone (ADU): a constant, one
    following a sky that slopes by 40%, Background2D's rms map, a map
    holding noise of its own (each pixel's variance scattered by 70%)."""
    ny, nx = SHAPE
    slope = 1 + 0.4 * (np.arange(nx)[None, :] / nx - 0.5)
    sky_var = SKY_E / GAIN ** 2 + (READ_NOISE / GAIN) ** 2
    rng = np.random.default_rng(4)
    yield 'constant', np.full(SHAPE, np.sqrt(sky_var))
    yield 'sloping', np.broadcast_to(np.sqrt(
        SKY_E * slope / GAIN ** 2 + (READ_NOISE / GAIN) ** 2), SHAPE)
    yield 'background2d', Background2D(data, 32,
                                       filter_size=3).background_rms
    yield 'noisy', np.sqrt(sky_var * rng.chisquare(4, SHAPE) / 4)


def test_a_map_of_the_background_alone_is_not_taken_as_total(tmp_path):
    rng = np.random.default_rng(5)
    data, model, xy = _scene(rng)
    aps = CircularAperture(xy, 4.0)
    for name, sigma in _background_maps(data, model):
        ccd = _written(tmp_path, data, sigma, name=f'{name}.fits')
        rise, significance, _ = map_photon_rise(as_frame(ccd), GAIN)
        assert abs(rise) < MAP_RISE_FRACTION / 10, name
        t, said = _photometer(ccd, aps)
        assert not [m for m in said if FOUND in m], name
        assert t.meta['uncertainty_model'] == 'background', name
        assert np.all(t['var_source'] > 0), name


def test_without_a_gain_the_map_is_not_asked(tmp_path):
    """No gain: no source term is added, so nothing is counted twice."""
    rng = np.random.default_rng(6)
    data, _, xy = _scene(rng)
    ccd = _written(tmp_path, data, total=True)
    del ccd.meta['GAIN']
    assert map_photon_rise(as_frame(ccd), None) is None
    t, said = _photometer(ccd, CircularAperture(xy, 4.0))
    assert not [m for m in said if FOUND in m]
    assert t.meta['uncertainty_model'] == 'background'
    assert np.all(np.isnan(t['var_source']))


def _pulls(tmp_path, seed, n_frames, make_map, budget=None):
    """Pulls of 49 stars (300 to 1e5 ADU, radius 4) on ``n_frames``
    frames, each written with ``make_map(data, model)`` (None:
    create_deviation) as its UNCERT extension; and the warnings."""
    rng = np.random.default_rng(seed)
    pulls, bright, said = [], [], set()
    for i in range(n_frames):
        data, model, xy = _scene(rng)
        sigma = make_map(data, model)
        ccd = _written(tmp_path, data, sigma, name=f'f{i}.fits',
                       total=sigma is None)
        aps = CircularAperture(xy, 4.0)
        truth = _truth(aps, model)
        t, caught = _photometer(ccd, aps, budget=budget)
        said |= {m[:60] for m in caught}
        pulls.append((t['aperture_sum'].value - truth)
                     / t['aperture_sum_err'].value)
        bright.append(truth > 1e4)
    return np.concatenate(pulls), np.concatenate(bright), said


def _std(pulls):
    return float(np.std(pulls, ddof=1))


@pytest.mark.parametrize('budget', [None, TOTAL],
                         ids=['found', 'given'])
def test_pulls_of_a_create_deviation_map(tmp_path, budget):
    """20 frames (980 stars, 250 brighter than 1e4 ADU): calibrated
    whether the total map is found (the default model) or said; counted
    twice, the bright stars' pulls spread by 0.76."""
    pulls, bright, said = _pulls(tmp_path, 11, 20, lambda d, m: None,
                                 budget)
    assert (budget is None) == any(FOUND[:40] in m for m in said)
    assert abs(pulls.mean()) < 0.08
    assert _std(pulls) == pytest.approx(1.0, abs=0.05)
    assert _std(pulls[bright]) == pytest.approx(1.0, abs=0.08)


def test_pulls_of_a_background_map_not_taken_as_total(tmp_path):
    """The same frames with a map of the background alone: not found as
    total, the source term added from the gain, calibrated."""
    def background(data, model):
        return np.full(SHAPE, np.sqrt(SKY_E / GAIN ** 2
                                      + (READ_NOISE / GAIN) ** 2))
    pulls, bright, said = _pulls(tmp_path, 11, 20, background)
    assert not any(FOUND[:40] in m for m in said)
    assert abs(pulls.mean()) < 0.08
    assert _std(pulls) == pytest.approx(1.0, abs=0.05)
    assert _std(pulls[bright]) == pytest.approx(1.0, abs=0.08)


@pytest.mark.parametrize('option', [[], ['--uncertainty-model', 'total']])
def test_cli_takes_a_create_deviation_map_as_total(tmp_path, option):
    rng = np.random.default_rng(7)
    data, model, xy = _scene(rng)
    ccd = _written(tmp_path, data, total=True)
    pos = tmp_path / 'pos.csv'
    Table({'x': xy[:, 0], 'y': xy[:, 1]}).write(pos)
    out = tmp_path / 'out.ecsv'
    code, _, err = ccdphot('measure', tmp_path / 'frame.fits', '--positions',
                           pos, '--radius', 4, '-o', out, *option)
    assert code == 0, err
    assert (FOUND in err) == (not option)
    t = Table.read(out)
    assert t.meta['uncertainty_model'] == 'total'
    assert np.all(np.isnan(t['var_source']))
    # the library's numbers
    ref, _ = _photometer(ccd, CircularAperture(xy, 4.0), budget=TOTAL)
    np.testing.assert_allclose(t['aperture_sum_err'],
                               ref['aperture_sum_err'].value, rtol=1e-12)


def test_cli_background_model_adds_the_source_term(tmp_path):
    """--uncertainty-model background (the default) on a map of the
    background alone: the source term added, as the library does."""
    rng = np.random.default_rng(8)
    data, model, xy = _scene(rng)
    sigma = np.full(SHAPE, np.sqrt(SKY_E / GAIN ** 2
                                   + (READ_NOISE / GAIN) ** 2))
    fits.HDUList([fits.PrimaryHDU(data, fits.Header(
        {'BUNIT': 'adu', 'GAIN': GAIN})),
        fits.ImageHDU(sigma, name='UNCERT')]).writeto(tmp_path / 'f.fits')
    pos = tmp_path / 'pos.csv'
    Table({'x': xy[:, 0], 'y': xy[:, 1]}).write(pos)
    code, _, err = ccdphot('measure', tmp_path / 'f.fits', '--positions', pos,
                           '--radius', 4, '--uncertainty-model', 'background',
                           '-o', tmp_path / 'o.ecsv')
    assert code == 0 and FOUND not in err, err
    t = Table.read(tmp_path / 'o.ecsv')
    assert t.meta['uncertainty_model'] == 'background'
    assert np.all(t['var_source'] > 0)


def test_cli_uncertainty_model_names_the_library_choices():
    from ccdphot_ext.cli.main import build_parser
    from ccdphot_ext.photometry.terms import UNCERTAINTY_MODELS

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == 'command'
               or getattr(a, 'choices', None) and 'measure' in a.choices)
    measure_parser = sub.choices['measure']
    action = next(a for a in measure_parser._actions
                  if a.dest == 'uncertainty_model')
    assert tuple(action.choices) == UNCERTAINTY_MODELS
    assert action.default == BudgetOptions().uncertainty_model


def test_optimal_extraction_warns_of_a_total_map(tmp_path):
    """Optimal extraction takes a map as the background noise (its
    weights model the star's photon noise): a total map warns, a map of
    the background alone does not."""
    from ccdphot_ext import optimal_extraction

    rng = np.random.default_rng(9)
    data, model, xy = _scene(rng)
    star = tuple(xy[int(np.argmax(_truth(CircularAperture(xy, 4.0),
                                         model)))])
    for total, sigma in ((True, None), (False, next(
            _background_maps(data, model))[1])):
        ccd = _written(tmp_path, data, sigma, name=f'o{total}.fits',
                       total=total)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            optimal_extraction(ccd, star, 1.5,
                               SkyEstimate.from_image(ccd, gain=GAIN))
        said = [str(w.message) for w in caught
                if FOUND in str(w.message)]
        assert len(said) == total
        if total:
            assert 'optimal extraction takes it as the background' in said[0]


def test_compare_numpy_sums_a_total_map(tmp_path):
    """measure's plain-numpy check redoes the map term of a map taken as
    the total error (found or given), as it does the sky term."""
    rng = np.random.default_rng(10)
    data, model, xy = _scene(rng)
    ccd = _written(tmp_path, data, total=True)
    sky = SkyEstimate.from_image(ccd, gain=GAIN)
    for budget in (None, TOTAL):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            m = measure(ccd, CircularAperture(xy[0], 4.0), sky, budget=budget)
        table = m.compare_numpy()
        assert 'var_map' in list(table['quantity'])
        assert table.meta['max_abs_rel_diff'] < 1e-10
