"""differential_photometry(): ratios to an ensemble, errors from the budgets."""

import functools
import math
import warnings

import numpy as np
import pytest
from astropy.nddata import NDData
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import FLAG_SATURATED, BatchExecution, BoxAperture, SkyEstimate
from ccdphot_ext.analysis.differential import differential_photometry
from ccdphot_ext.batch import AnnulusSky, photometer_frames
from ccdphot_ext.datasets.sample import simulate_frame

SHAPE = (41, 211)
XS = np.array([25.0, 65.0, 105.0, 145.0, 185.0])
YS = np.full(5, 20.0)
#: id 1 and 5 are targets (variable), 2-4 the constant comparison stars
FLUX = np.array([8000.0, 20000.0, 12000.0, 30000.0, 6000.0])
COMPS = [2, 3, 4]


def _sky_from(ccd, apertures, *, mask):
    return SkyEstimate.from_image(ccd, method='mean', mask=mask)


def _light_curve(n_frames, *, small_sky, seed):
    """Frames with a varying transparency, sky and two variable targets."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(SHAPE, dtype=bool)
    for x in XS:
        mask[:, int(x) - 12:int(x) + 13] = True  # stars out of the sky
    if small_sky:
        mask[:] = True
        mask[0:6, 0:10] = False  # 60 sky pixels: the sky level is uncertain
    frames, truth = [], []
    for k in range(n_frames):
        flux = FLUX * rng.uniform(0.6, 1.0)  # clouds: every star alike
        flux[0] *= 1 + 0.1 * math.sin(2 * math.pi * k / 37)
        flux[4] *= 1 - 0.05 * math.cos(2 * math.pi * k / 23)
        data, _, _ = simulate_frame(SHAPE, rng.uniform(200, 400),
                                    {'x': XS, 'y': YS, 'flux': flux},
                                    gain=2.0, read_noise=6.0, psf_sigma=1.5,
                                    seed=rng)
        frames.append(NDData(data, meta={'MJD-OBS': 60000 + k / 1000,
                                         'GAIN': 2.0, 'FILENAME': f'f{k}'}))
        truth.append(flux)
    boxes = BoxAperture(np.c_[XS, YS], 21, 21)  # 7 sigma: no flux lost
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        lc = photometer_frames(frames, boxes,
                               sky=functools.partial(_sky_from, mask=mask),
                               execution=BatchExecution(progress=False))
    # the skies left the masked star columns out (one warning for the
    # batch); the sky is flat, yet the whole-frame gradient check may flag
    # a frame by chance (1 row of the big-sky run's 1500, none of the
    # small-sky run's, whose cells are mostly masked): never more than 3%
    assert all(w.category is AstropyUserWarning for w in caught)
    texts = [str(w.message) for w in caught]
    masked = [t for t in texts if 'masked/NaN/inf pixels' in t]
    varies = [t for t in texts if 'the background varies' in t]
    assert len(masked) + len(varies) == len(texts), texts
    assert len(masked) == 1 and masked[0].startswith(f'{n_frames} frames')
    assert len(varies) <= 0.03 * n_frames, varies
    return lc, np.array(truth)


@pytest.fixture(scope='module')
def big_sky():
    return _light_curve(300, small_sky=False, seed=1)


@pytest.fixture(scope='module')
def small_sky():
    return _light_curve(300, small_sky=True, seed=2)


def _pulls(diff, truth, tid):
    a = np.array([diff.meta['coefficients'][c] for c in COMPS])
    true_ratio = truth[:, tid - 1] / (truth[:, 1:4] @ a)
    sel = diff['id'] == tid
    return (diff['rel_flux'][sel] - true_ratio) / diff['rel_flux_err'][sel]


@pytest.mark.parametrize('weighting', ['sum', 'inverse_variance'])
@pytest.mark.parametrize('case', ['big_sky', 'small_sky'])
def test_errors_match_the_scatter_over_realisations(request, case,
                                                    weighting):
    lc, truth = request.getfixturevalue(case)
    diff = differential_photometry(lc, [1, 5], COMPS, weighting=weighting)
    assert np.all(diff['sky_correlated'])  # one frame-wide sky level
    for tid in (1, 5):
        pull = _pulls(diff, truth, tid)
        assert len(pull) == 300 and np.all(np.isfinite(pull))
        assert abs(np.mean(pull)) < 0.2  # 3.5 sigma for 300 frames
        assert np.std(pull) == pytest.approx(1.0, abs=0.1)


def test_ignoring_the_shared_sky_error_overstates_the_error(small_sky):
    lc, truth = small_sky
    honest = differential_photometry(lc, [1, 5], COMPS)
    naive = differential_photometry(lc, [1, 5], COMPS, sky_correlated=False)
    assert np.all(naive['rel_flux'] == honest['rel_flux'])
    ratio = naive['rel_flux_err'] / honest['rel_flux_err']
    assert np.median(ratio) > 1.2
    for tid in (1, 5):
        assert np.std(_pulls(naive, truth, tid)) < 0.85


def test_clouds_cancel_and_the_variation_is_recovered(big_sky):
    lc, truth = big_sky
    diff = differential_photometry(lc, 1, COMPS)
    raw = lc[lc['id'] == 1]['aperture_sum'].value
    rel = diff['rel_flux']
    k = np.arange(300)
    shape = 1 + 0.1 * np.sin(2 * np.pi * k / 37)
    # the raw flux follows the clouds, the relative flux the star
    assert abs(np.corrcoef(raw, shape)[0, 1]) < 0.5
    # 4.4% errors on a 7% rms signal: a correlation of about 0.85
    assert np.corrcoef(rel, shape)[0, 1] > 0.75
    slope, _ = np.polyfit(shape, rel / np.median(rel / shape), 1)
    assert slope == pytest.approx(1.0, abs=0.12)  # 3 sigma


def test_formula_against_a_full_covariance_matrix():
    """var(R) = J C J^T with the budget covariances, in plain numpy."""
    flux = np.array([900.0, 4000.0, 2500.0, 1500.0])  # target, 3 comps
    var = np.array([1300.0, 5200.0, 3900.0, 2600.0])
    n_pix = np.array([100.0, 100.0, 64.0, 144.0])
    sigma_b = 0.4
    lc = QTable({'frame': ['a'] * 4, 'id': [1, 2, 3, 4],
                 'aperture_sum': flux, 'aperture_sum_err': np.sqrt(var),
                 'var_sky_mean': (n_pix * sigma_b) ** 2,
                 'sky': [300.0] * 4, 'sky_error_on_mean': [sigma_b] * 4,
                 'flags': [0] * 4, 'status': ['ok'] * 4})
    d = differential_photometry(lc, 1, [2, 3, 4])
    cov = np.diag(var) + np.outer(n_pix, n_pix) * sigma_b ** 2
    np.fill_diagonal(cov, var)
    ens = flux[1:].sum()
    jac = np.concatenate([[1 / ens], -flux[0] / ens ** 2 * np.ones(3)])
    assert d['rel_flux'][0] == pytest.approx(flux[0] / ens, rel=1e-14)
    assert d['rel_flux_err'][0] == pytest.approx(
        math.sqrt(jac @ cov @ jac), rel=1e-12)
    assert d['ensemble_flux_err'][0] == pytest.approx(
        math.sqrt(np.ones(3) @ cov[1:, 1:] @ np.ones(3)), rel=1e-12)
    assert d['dmag'][0] == pytest.approx(-2.5 * math.log10(flux[0] / ens))
    assert d['dmag_err'][0] == pytest.approx(
        2.5 / math.log(10) * d['rel_flux_err'][0] / d['rel_flux'][0])
    # without a common sky level the same rows are independent
    indep = differential_photometry(lc, 1, [2, 3, 4], sky_correlated=False)
    cov0 = np.diag(var)
    assert indep['rel_flux_err'][0] == pytest.approx(
        math.sqrt(jac @ cov0 @ jac), rel=1e-12)


def test_inverse_variance_coefficients():
    lc = QTable({'frame': ['a', 'a', 'a', 'b', 'b', 'b'],
                 'id': [1, 2, 3] * 2,
                 'aperture_sum': [100.0, 400.0, 600.0, 110.0, 400.0, 600.0],
                 'aperture_sum_err': [10.0, 40.0, 20.0, 10.0, 40.0, 20.0],
                 'flags': [0] * 6})
    d = differential_photometry(lc, 1, [2, 3], weighting='inverse_variance')
    a = d.meta['coefficients']
    w2, w3 = (400 / 40) ** 2, (600 / 20) ** 2
    assert a[2] == pytest.approx(w2 / 400 * 1000 / (w2 + w3))
    assert a[3] == pytest.approx(w3 / 600 * 1000 / (w2 + w3))
    assert a[2] * 400 + a[3] * 600 == pytest.approx(1000.0)
    assert d['rel_flux'].tolist() == pytest.approx([0.1, 0.11])


def test_an_unusable_comparison_blanks_only_its_frame(big_sky):
    lc, _ = big_sky
    lc = lc.copy()
    hit = (lc['frame'] == 'f7') & (lc['id'] == 3)
    lc['flags'][hit] |= FLAG_SATURATED
    d = differential_photometry(lc, 1, COMPS)
    bad = d['frame'] == 'f7'
    assert np.isnan(d['rel_flux'][bad][0])
    assert 'comparison(s) [3] unusable' in d['note'][bad][0]
    assert d['flags'][bad][0] & FLAG_SATURATED
    assert np.all(np.isfinite(d['rel_flux'][~bad]))
    # the flag can be tolerated on purpose
    kept = differential_photometry(lc, 1, COMPS, bad_flags=0)
    assert np.isfinite(kept['rel_flux'][bad][0])


def test_local_skies_are_not_correlated(tmp_path):
    rng = np.random.default_rng(5)
    data, _, _ = simulate_frame(SHAPE, 300.0, {'x': XS, 'y': YS,
                                               'flux': FLUX},
                                gain=2.0, read_noise=6.0, seed=rng)
    frame = NDData(data, meta={'GAIN': 2.0, 'MJD-OBS': 60000.0})
    lc = photometer_frames([frame], BoxAperture(np.c_[XS, YS], 11, 11),
                           sky=AnnulusSky(8, 14))
    d = differential_photometry(lc, 1, COMPS)
    assert not d['sky_correlated'][0]
    forced = differential_photometry(lc, 1, COMPS, sky_correlated=True)
    assert forced['rel_flux_err'][0] != d['rel_flux_err'][0]


def test_failed_frames_give_nan_rows():
    lc = QTable({'frame': ['a'] * 3 + ['b'] * 3, 'id': [1, 2, 3] * 2,
                 'aperture_sum': [10.0, 20.0, 30.0] + [np.nan] * 3,
                 'aperture_sum_err': [1.0, 1.0, 1.0] + [np.nan] * 3,
                 'flags': [0] * 6, 'status': ['ok'] * 3 + ['failed'] * 3})
    d = differential_photometry(lc, 1, [2, 3])
    assert d['rel_flux'][0] == pytest.approx(0.2)
    assert np.isnan(d['rel_flux'][1]) and 'unusable' in d['note'][1]


@pytest.mark.parametrize('args, kwargs, exc, match', [
    ((1, [1, 2]), {}, ValueError, 'comparisons must not include'),
    ((9, [2]), {}, ValueError, 'targets: no rows'),
    ((1, [2, 8]), {}, ValueError, 'comparisons: no rows'),
    ((1, []), {}, ValueError, 'comparisons'),
    ((1, ['a']), {}, TypeError, 'comparisons'),
    (('1', [2]), {}, TypeError, 'targets'),
    ((1, [2, 2]), {}, ValueError, 'comparisons has repeated'),
    ((1, [2]), {'weighting': 'median'}, ValueError, 'weighting'),
    ((1, [2]), {'bad_flags': -1}, ValueError, 'bad_flags'),
    ((1, [2]), {'bad_flags': 2.5}, TypeError, 'bad_flags'),
    ((1, [2]), {'bad_flags': 2 ** 63}, ValueError, 'bad_flags'),
    ((1, [2]), {'sky_correlated': 'yes'}, ValueError, 'sky_correlated'),
])
def test_bad_arguments_name_the_parameter(args, kwargs, exc, match):
    lc = QTable({'frame': ['a', 'a'], 'id': [1, 2],
                 'aperture_sum': [1.0, 2.0], 'aperture_sum_err': [0.1, 0.1],
                 'flags': [0, 0]})
    with pytest.raises(exc, match=match):
        differential_photometry(lc, *args, **kwargs)


def test_bad_tables():
    with pytest.raises(ValueError, match='lacks column.*aperture_sum_err'):
        differential_photometry(QTable({'frame': ['a'], 'id': [1],
                                        'aperture_sum': [1.0],
                                        'flags': [0]}), 1, [2])
    twice = QTable({'frame': ['a'] * 3, 'id': [1, 2, 2],
                    'aperture_sum': [1.0, 2.0, 2.0],
                    'aperture_sum_err': [0.1] * 3, 'flags': [0] * 3})
    with pytest.raises(ValueError, match='two rows for star 2'):
        differential_photometry(twice, 1, [2])
