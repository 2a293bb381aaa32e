"""The default 2-sigma threshold mask's error bars over the regimes of
faint and moderate stars: 100-2000 ADU on skies of 100-2000 ADU, gains of
1-4 e-/ADU and PSFs of 1-2.5 px. The pulls (masked sum less the true light
inside the mask, over the budget's error) are centred and of unit spread
once the ``selection`` term takes out the mask's growth; without that
adjustment they are low."""

import math

import numpy as np
import pytest
from scipy.special import erf

from ccdphot_ext import SigmaThreshold, budget_terms

SIDE = 15
FLUXES = (100.0, 300.0, 1000.0, 2000.0)
N_STARS = 12000

#: sky [ADU], gain [e-/ADU], read noise [e-], PSF sigma [px]
REGIMES = {
    'dark, gain 1': (100.0, 1.0, 5.0, 1.5),
    'bright, gain 1': (2000.0, 1.0, 5.0, 1.5),
    'dark, gain 4': (100.0, 4.0, 5.0, 1.5),
    'bright, gain 4': (2000.0, 4.0, 5.0, 1.5),
    'narrow PSF': (500.0, 2.0, 8.0, 1.0),
    'broad PSF': (500.0, 2.0, 8.0, 2.5),
}


def _cutouts(rng, n, flux, psf_sigma):
    """``n`` noiseless 15 x 15 cutouts of a pixel-integrated Gaussian star
    within half a pixel of the middle, and the star centres."""
    dx, dy = rng.uniform(-0.5, 0.5, (2, n))
    edges = np.arange(SIDE + 1) - 0.5 - SIDE // 2
    s = math.sqrt(2.0) * psf_sigma
    px = np.diff(0.5 * erf((edges - dx[:, None]) / s), axis=1)
    py = np.diff(0.5 * erf((edges - dy[:, None]) / s), axis=1)
    centre = np.column_stack([dy + SIDE // 2, dx + SIDE // 2])
    return flux * py[:, :, None] * px[:, None, :], centre


def _pulls(regime, flux, n, seed):
    """Pulls with the budget's error (sky, source, selection terms; the
    sky level exact) and with the selection term before the mask-growth
    adjustment."""
    sky, gain, read_noise, psf_sigma = REGIMES[regime]
    rng = np.random.default_rng(seed)
    clean, centre = _cutouts(rng, n, flux, psf_sigma)
    electrons = (rng.poisson((clean + sky) * gain)
                 + rng.normal(0.0, read_noise, clean.shape))
    cut = electrons / gain - sky
    std = math.sqrt(sky * gain + read_noise ** 2) / gain
    valid = np.ones(cut.shape, bool)
    thr = SigmaThreshold(2.0)
    sel, selection = thr.select_with_variance(cut, valid, std, centre=centre)
    plain = thr.selection_variance(cut, valid, std)
    n_pix = sel.sum(axis=(1, 2))
    flux_sum = np.where(sel, cut, 0.0).sum(axis=(1, 2))
    true = np.where(sel, clean, 0.0).sum(axis=(1, 2))
    keep = n_pix > 0
    pulls = []
    for term in (selection, plain):
        t = budget_terms(flux_sum[keep], n_pix[keep], std, gain=gain,
                         extra_terms={'selection': term[keep]})
        pulls.append((flux_sum - true)[keep] / t.error)
    return pulls


@pytest.mark.parametrize('regime', list(REGIMES))
def test_pulls_are_centred_in_every_regime(regime):
    """12000 stars a flux (pull means +-0.009, spreads +-0.008; a faint
    star's mask may be empty, no error bar): each within 0.05 of 0 and 1,
    the regime's mean over its four fluxes within 0.03; the faint stars'
    pulls before the adjustment are low."""
    means, before = [], []
    for k, flux in enumerate(FLUXES):
        seed = 1000 * k + sum(map(ord, regime))
        after, plain = _pulls(regime, flux, N_STARS, seed)
        assert after.size > 0.85 * N_STARS
        assert abs(np.mean(after)) < 0.05
        assert np.std(after) == pytest.approx(1.0, abs=0.05)
        means.append(np.mean(after))
        before.append(np.mean(plain))
    assert abs(np.mean(means)) < 0.03
    # the faint stars' error bars followed the mask's growth
    assert before[0] < -0.05 and before[0] < means[0] - 0.04
