"""ErrorBudget: the notebook's numbers, invariants and validation."""

import math

import numpy as np
import pytest

from ccdphot_ext import ErrorBudget, budget_terms

FLUX1 = 41349.20439525999
SKY_STD = 53.139015422503746


def test_notebook_sky_only():
    b = ErrorBudget.from_aperture(FLUX1, 400, SKY_STD)
    assert b.error == pytest.approx(1062.780308450075, rel=1e-12)
    assert b.snr == pytest.approx(38.906633917184976, rel=1e-12)
    assert set(b.terms) == {'sky'}
    assert 'no gain given: source Poisson term absent' in b.notes
    assert any('sky_mean term absent' in n for n in b.notes)


def test_notebook_gain_one():
    b = ErrorBudget.from_aperture(FLUX1, 400, SKY_STD, gain=1.0)
    assert b.error == pytest.approx(1082.0587730915988, rel=1e-12)
    assert b.snr == pytest.approx(38.2134551500556, rel=1e-12)
    assert b.terms['source'] == FLUX1


def test_notebook_egain():
    b = ErrorBudget.from_aperture(FLUX1, 400, SKY_STD, gain=2.23)
    assert b.error == pytest.approx(1071.4682581171835, rel=1e-12)
    assert b.terms['source'] == pytest.approx(FLUX1 / 2.23, rel=1e-15)


def test_notebook_masked():
    b = ErrorBudget.from_aperture(35316.2, 100, SKY_STD, gain=1.0)
    assert b.error == pytest.approx(563.64, abs=0.005)
    assert b.snr == pytest.approx(62.7, abs=0.05)


def test_notebook_star2_masked():
    b = ErrorBudget.from_aperture(40898.35182370345, 98, SKY_STD, gain=1.0)
    assert b.error == pytest.approx(563.5834790968116, rel=1e-12)


def test_notebook_star3_unsubtracted():
    flux = 1271062.6995635987
    b0 = ErrorBudget.from_aperture(flux, 1200, SKY_STD)
    b1 = ErrorBudget.from_aperture(flux, 1200, SKY_STD, gain=1.0)
    assert b0.error == pytest.approx(1840.789491519253, rel=1e-12)
    assert b1.error == pytest.approx(2158.6034030482087, rel=1e-12)


def test_mag_err_exact_and_approx():
    b = ErrorBudget(40.0, {'sky': 1.0})
    assert b.snr == 40.0
    assert 1 / b.snr == pytest.approx(0.025)
    assert b.mag_err == pytest.approx(2.5 / math.log(10) / 40, rel=1e-15)
    # asymmetric: the faint side is larger than the bright side
    assert b.mag_err_bright == pytest.approx(2.5 * math.log10(1 + 1 / 40))
    assert b.mag_err_faint == pytest.approx(-2.5 * math.log10(1 - 1 / 40))
    assert b.mag_err_bright < b.mag_err < b.mag_err_faint


def test_mag_err_low_snr_and_negative_flux():
    low = ErrorBudget(1.0, {'sky': 4.0})  # snr 0.5
    assert math.isinf(low.mag_err_faint)
    assert np.isfinite(low.mag_err_bright)
    neg = ErrorBudget(-5.0, {'sky': 4.0})
    assert math.isnan(neg.mag_err)
    assert math.isnan(neg.mag_err_faint)


def test_source_term_zero_for_negative_flux():
    b = ErrorBudget.from_aperture(-100.0, 25, 3.0, gain=2.0)
    assert b.terms['source'] == 0.0
    assert b.variance == pytest.approx(25 * 9.0)


def test_sky_mean_from_n_sky_and_from_error_on_mean():
    b = ErrorBudget.from_aperture(1000.0, 50, 4.0, gain=2.0, n_sky=200)
    assert b.terms['sky_mean'] == pytest.approx(50 ** 2 * 16.0 / 200)
    b2 = ErrorBudget.from_aperture(1000.0, 50, 4.0, gain=2.0, n_sky=200,
                                   sky_error_on_mean=0.5)
    assert b2.terms['sky_mean'] == pytest.approx(50 ** 2 * 0.25)


@pytest.mark.parametrize('kwargs', [
    {}, {'gain': 2.23}, {'gain': 1.0, 'n_sky': 100},
    {'gain': 3.0, 'n_sky': 10, 'flat_error': 0.01,
     'extra_terms': {'user': 12.0}}])
def test_invariants(kwargs):
    b = ErrorBudget.from_aperture(5000.0, 77.5, 9.5, **kwargs)
    assert b.variance == pytest.approx(sum(b.terms.values()), rel=1e-15)
    assert sum(b.fractions.values()) == pytest.approx(1.0, rel=1e-14)
    assert b.snr * b.error == pytest.approx(b.flux, rel=1e-14)
    table = b.to_table()
    total = table[table['term'] == 'total'][0]
    assert total['variance'] == pytest.approx(b.variance)
    assert list(table['term'][:len(b.terms)]) == list(b.terms)


def test_decomposition_shown_not_added():
    b = ErrorBudget.from_aperture(10000.0, 100, 30.0, gain=2.0,
                                  sky_level=1000.0, read_noise=10.0,
                                  dark=50.0)
    d = b.decomposition
    assert d['sky_photons'] == pytest.approx(100 * 1000.0 / 2.0)
    assert d['read'] == pytest.approx(100 * 25.0)
    assert d['dark'] == pytest.approx(100 * 25.0)
    assert sum(d.values()) == pytest.approx(b.terms['sky'])
    assert set(b.terms) == {'sky', 'source', 'sky_mean'} - {'sky_mean'}
    # read noise is inside the measured sky std: never added on top
    b0 = ErrorBudget.from_aperture(10000.0, 100, 30.0, gain=2.0)
    assert b.variance == b0.variance
    rows = b.to_table()
    assert not any(rows['included'][[t.startswith('sky:')
                                     for t in rows['term']]])


def test_repr_names_terms():
    text = repr(ErrorBudget.from_aperture(FLUX1, 400, SKY_STD, gain=1.0))
    assert 'sky' in text and 'source' in text and '%' in text


@pytest.mark.parametrize('name, kwargs, exc', [
    ('n_pix', {'n_pix': 0}, ValueError),
    ('n_pix', {'n_pix': -3}, ValueError),
    ('sky_std', {'sky_std': -1.0}, ValueError),
    ('sky_std', {'sky_std': np.nan}, ValueError),
    ('gain', {'gain': 0.0}, ValueError),
    ('gain', {'gain': -2.0}, ValueError),
    ('gain', {'gain': 'two'}, TypeError),
    ('gain', {'gain': np.inf}, ValueError),
    ('flux', {'flux': np.nan}, ValueError),
    ('read_noise', {'read_noise': 5.0}, ValueError),  # without gain
])
def test_bad_arguments_name_the_parameter(name, kwargs, exc):
    args = {'flux': 100.0, 'n_pix': 10, 'sky_std': 2.0}
    args.update(kwargs)
    with pytest.raises(exc, match=name):
        ErrorBudget.from_aperture(args.pop('flux'), args.pop('n_pix'),
                                  args.pop('sky_std'), **args)


def test_direct_construction_validates_terms():
    with pytest.raises(ValueError, match="'sky'"):
        ErrorBudget(1.0, {'sky': -1.0})
    with pytest.raises(TypeError, match='terms'):
        ErrorBudget(1.0, {})


# --- one formula: budget_terms, vectorised and one row at a time ------------

def _old_scalar_formula(flux, n_pix, sky_std, gain, error_on_mean, flat):
    """The CCD equation as plain Python floats, term by term."""
    terms = [n_pix * sky_std ** 2]
    if gain is not None:
        terms.append(max(flux, 0.0) / gain)
    if error_on_mean is not None:
        terms.append(n_pix ** 2 * error_on_mean ** 2)
    if flat is not None:
        terms.append((flat * flux) ** 2)
    return math.sqrt(math.fsum(terms))


@pytest.mark.parametrize('gain, error_on_mean, flat', [
    (None, None, None), (2.23, None, None), (1.0, 0.37, None),
    (3.0, 0.5, 0.01), (None, 0.2, 0.02)])
def test_budget_terms_rows_equal_error_budget(gain, error_on_mean, flat):
    rng = np.random.default_rng(5)
    flux = rng.normal(2e4, 3e4, 300)
    n_pix = rng.uniform(1, 2000, 300)
    n_pix[::4] = np.round(n_pix[::4])
    std = rng.uniform(0.1, 80.0, 300)
    rows = budget_terms(flux, n_pix, std, gain=gain,
                        sky_error_on_mean=error_on_mean, flat_error=flat)
    for i in range(flux.size):
        b = ErrorBudget.from_aperture(flux[i], n_pix[i], std[i], gain=gain,
                                      sky_error_on_mean=error_on_mean,
                                      flat_error=flat)
        # the same function: the same bits, term by term and in total
        assert b.terms == rows.row(i)
        assert b.variance == rows.variance[i]
        assert b.error == rows.error[i]
        assert b.snr == rows.snr[i] or (math.isnan(b.snr)
                                        and math.isnan(rows.snr[i]))
        assert (b.mag_err == rows.mag_err[i]
                or (math.isnan(b.mag_err) and math.isnan(rows.mag_err[i])))
        # and the plain-Python CCD equation to rounding
        assert rows.error[i] == pytest.approx(
            _old_scalar_formula(flux[i], n_pix[i], std[i], gain,
                                error_on_mean, flat),
            rel=1e-14)


def test_budget_terms_notebook_numbers():
    rows = budget_terms([FLUX1, FLUX1, FLUX1, 40898.35182370345],
                        [400, 400, 400, 98], SKY_STD,
                        gain=np.array([np.inf, 1.0, 2.23, 1.0]))
    assert rows.error.tolist() == pytest.approx(
        [1062.780308450075, 1082.0587730915988, 1071.4682581171835,
         563.5834790968116], rel=1e-12)
    assert rows.source[0] == 0.0  # an infinite gain: no photon noise
    assert rows.snr[1] == pytest.approx(38.2134551500556, rel=1e-12)


def test_budget_terms_absent_empty_and_unmeasured_rows():
    rows = budget_terms([100.0, 0.0, np.nan], [25, 0, 0], 3.0, gain=2.0,
                        sky_error_on_mean=0.5)
    assert rows.sky.tolist()[:2] == [225.0, 0.0]
    assert rows.source[0] == 50.0 and rows.sky_mean[0] == 625 * 0.25
    # no pixel selected: a zero sky term only
    assert rows.row(1) == {'sky': 0.0}
    assert rows.variance[1] == 0.0 and np.isnan(rows.snr[1])
    # not measured: NaN throughout, no term present
    assert rows.row(2) == {}
    assert np.isnan([rows.variance[2], rows.error[2], rows.sky[2]]).all()
    no_gain = budget_terms([100.0], 25, 3.0)
    assert np.isnan(no_gain.source[0]) and no_gain.variance[0] == 225.0


def test_budget_terms_uncertainty_map_models():
    back = budget_terms([400.0], 16, 2.0, gain=4.0, sky_variance=80.0)
    assert back.row(0) == {'sky': 80.0, 'source': 100.0}
    total = budget_terms([400.0], 16, 2.0, gain=4.0, sky_variance=80.0,
                         uncertainty_model='total')
    assert total.row(0) == {'map': 80.0}
    b = ErrorBudget.from_aperture(400.0, 16, 2.0, gain=4.0, sky_variance=80.0,
                                  uncertainty_model='total')
    assert b.terms == {'map': 80.0} and b.error == math.sqrt(80.0)
    assert any('total per-pixel error' in n for n in b.notes)
    assert not b.decomposition
    with pytest.raises(ValueError, match='uncertainty_model'):
        ErrorBudget.from_aperture(400.0, 16, 2.0, uncertainty_model='all')


def test_budget_terms_extra_terms_and_from_terms():
    rows = budget_terms([900.0, 1600.0], 100, 2.0, gain=1.0,
                        extra_terms={'psf': [10.0, 20.0]})
    assert rows.variance.tolist() == [400 + 900 + 10.0, 400 + 1600 + 20.0]
    b = ErrorBudget.from_terms(rows, 1, notes=['x'], gain=1.0)
    assert b.terms == {'sky': 400.0, 'source': 1600.0, 'psf': 20.0}
    assert b.n_pix == 100 and b.notes == ('x',)
    assert b.variance == rows.variance[1]
    with pytest.raises(ValueError, match='built-in'):
        ErrorBudget.from_aperture(1.0, 1, 1.0, extra_terms={'flat': 1.0})
