"""Faint stars in the default threshold mask: the error bar's mask-growth
adjustment centres their pulls (against the true flux inside the reported
mask) without moving the flux, in two regimes of sky, gain and PSF."""

import numpy as np
import pytest
from astropy.table import Table

from ccdphot_ext import BoxAperture, SigmaThreshold, SkyEstimate, photometer
from ccdphot_ext.datasets.sample import SAMPLE_PARAMETERS, simulate_frame

#: The calibration frames' detector and PSF (``'sky'`` regime), and a
#: second regime: a dark sky, gain 1, a narrow untrailed PSF.
REGIMES = {
    'sample': dict(sky=1035.0, gain=SAMPLE_PARAMETERS['gain'],
                   read_noise=SAMPLE_PARAMETERS['read_noise'],
                   psf_sigma=SAMPLE_PARAMETERS['psf_sigma'],
                   trail=SAMPLE_PARAMETERS['trail']),
    'narrow': dict(sky=300.0, gain=1.0, read_noise=5.0, psf_sigma=1.2,
                   trail=(0.0, 0.0)),
}


def _pulls(regime, flux, seed, n_frames):
    """Pulls after and before the adjustment, and the flux's own bias in
    error bars (sum over the mask less the true light in it)."""
    kw = REGIMES[regime]
    rng = np.random.default_rng(seed)
    thr = SigmaThreshold(2.0)
    after, before, diff = [], [], []
    for _ in range(n_frames):
        grid = np.arange(16) * 32 + 15.5
        gx, gy = np.meshgrid(grid, grid)
        x = np.round(gx.ravel() + rng.uniform(-0.5, 0.5, gx.size))
        y = np.round(gy.ravel() + rng.uniform(-0.5, 0.5, gx.size))
        stars = Table({'x': x + rng.uniform(-0.5, 0.5, x.size),
                       'y': y + rng.uniform(-0.5, 0.5, x.size),
                       'flux': np.full(x.size, flux)})
        data, _, model = simulate_frame(
            (512, 576), kw['sky'], stars, gain=kw['gain'],
            read_noise=kw['read_noise'], psf_sigma=kw['psf_sigma'],
            trail=kw['trail'], seed=rng)
        sky = SkyEstimate.from_image(data[:, -64:])
        t = photometer(data, BoxAperture(np.column_stack([x, y]), 15, 15),
                       sky, gain=kw['gain'], threshold=thr,
                       sky_without_apertures=False)
        # the engine's mask (the same calls on the same pixels)
        rows = (y[:, None, None] + np.arange(-7, 8)[None, :, None]).astype(int)
        cols = (x[:, None, None] + np.arange(-7, 8)[None, None, :]).astype(int)
        cut = data[rows, cols] - sky.value
        valid = np.ones(cut.shape, bool)
        sel = thr.select_stack(cut, valid, sky.std)
        true = np.sum(np.where(sel, model[rows, cols] - kw['sky'], 0.0),
                      axis=(1, 2))
        flux_sum = np.asarray(t['aperture_sum'])
        assert np.allclose(flux_sum, np.sum(np.where(sel, cut, 0.0),
                                            axis=(1, 2)), rtol=1e-12)
        keep = sel.any(axis=(1, 2))  # an empty mask has no error bar
        err = np.asarray(t['aperture_sum_err'])[keep]
        var_plain = err ** 2 - np.asarray(t['var_selection'])[keep] + (
            thr.selection_variance(cut, valid, sky.std)[keep])
        resid = (flux_sum - true)[keep]
        after.append(resid / err)
        before.append(resid / np.sqrt(var_plain))
        diff.append(resid / np.mean(err))
    return (np.concatenate(after), np.concatenate(before),
            np.concatenate(diff))


@pytest.mark.parametrize('regime, fluxes', [
    ('sample', (300.0, 400.0, 500.0)), ('narrow', (300.0, 500.0))])
def test_faint_star_pulls_are_centred(regime, fluxes):
    """About 4000 stars a flux (pull means +-0.016): within +-0.05 at
    each flux, and their mean within +-0.03; before the adjustment (the
    realised mask's error bar) they are low by 0.05-0.15."""
    means = []
    for flux in fluxes:
        after, before, diff = _pulls(regime, flux, seed=int(flux),
                                     n_frames=16)
        assert after.size > 3900
        # the flux is the masked sum, unbiased; only its error bar changed
        assert abs(np.mean(diff)) < 3.0 / np.sqrt(diff.size)
        assert np.mean(before) < -0.04
        assert abs(np.mean(after)) < 0.05
        assert np.std(after) == pytest.approx(1.0, abs=0.05)
        means.append(np.mean(after))
    assert abs(np.mean(means)) < 0.03


def test_the_selection_term_may_be_negative_the_total_may_not():
    from ccdphot_ext import ErrorBudget, budget_terms

    b = ErrorBudget(100.0, {'sky': 100.0, 'selection': -36.0})
    assert b.error == 8.0
    with pytest.raises(ValueError, match="'sky' must be finite and non-neg"):
        ErrorBudget(100.0, {'sky': -1.0, 'selection': 2.0})
    with pytest.raises(ValueError, match='non-negative total'):
        ErrorBudget(100.0, {'sky': 10.0, 'selection': -30.0})
    t = budget_terms([100.0], [4], 5.0, extra_terms={'selection': [-36.0]})
    assert t.error[0] == 8.0
    with pytest.raises(ValueError, match="extra_terms\\['other'\\]"):
        budget_terms([100.0], [4], 5.0, extra_terms={'other': [-36.0]})


def test_adjustment_leaves_other_masks_alone():
    """No adjustment for segment='central', for the separate variance call
    without the mask, or for the notebook's pixel selection; a cutout of
    pure noise gets a finite term."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:15, :15]
    cut = 8.0 * np.exp(-0.5 * ((xx - 7) ** 2 + (yy - 7) ** 2) / 1.8 ** 2)
    cut = cut[None] + rng.normal(0.0, 5.0, (30, 15, 15))
    valid = np.ones(cut.shape, bool)
    thr = SigmaThreshold(2.0)
    sel, var = thr.select_with_variance(cut, valid, 5.0)
    plain = thr.selection_variance(cut, valid, 5.0)
    assert not np.allclose(var, plain)
    central = SigmaThreshold(2.0, segment='central')
    assert np.array_equal(
        central.selection_variance(cut, valid, 5.0, selected=sel), plain)
    pixel = SigmaThreshold(2.0, selection='pixel')
    assert np.all(pixel.select_with_variance(cut, valid, 5.0)[1] == 0.0)
    noise = rng.normal(0.0, 5.0, (30, 15, 15))
    sel, var = thr.select_with_variance(noise, valid, 5.0)
    assert np.all(np.isfinite(var))
    # the sky and selection terms together stay at least half the sky's
    assert np.all(var >= -0.5 * 25.0 * sel.sum(axis=(1, 2)))
