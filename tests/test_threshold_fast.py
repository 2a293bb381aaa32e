"""The fast smoothed threshold (banded-matrix convolution, one significance
shared by the selection and its variance, cached noise) gives the numbers
of the direct formulas to 1e-12, and the same bits for one cutout or a
stack."""

import math

import numpy as np
import pytest

from ccdphot_ext import SigmaThreshold
from ccdphot_ext.background.threshold import (
    GROWTH_BIAS,
    GROWTH_CLIP,
    GROWTH_FLOOR,
    GROWTH_SHARE,
    GROWTH_WIDTHS,
    KDE_WIDTH,
    MATMUL_SIDE,
    _convolve,
)


def _shift_add(a, g):
    """The direct zero-padded separable convolution (the former code)."""
    r = g.size // 2
    ny, nx = a.shape[-2:]
    pad = np.zeros(a.shape[:-2] + (ny, nx + 2 * r))
    pad[..., r:r + nx] = a
    rows = sum(g[t] * pad[..., t:t + nx] for t in range(g.size))
    pad = np.zeros(a.shape[:-2] + (ny + 2 * r, nx))
    pad[..., r:r + ny, :] = rows
    return sum(g[t] * pad[..., t:t + ny, :] for t in range(g.size))


def _reference(thr, cutouts, valid, std, weights=None):
    """Selection and selection variance by the documented formulas."""
    g = thr.kernel_1d
    k0 = g[g.size // 2] ** 2
    x = np.where(valid, cutouts, 0.0)
    v = valid.astype(float)
    signal = _shift_add(x, g) - k0 * x
    noise = np.sqrt(np.maximum(_shift_add(v, g * g) - k0 * k0 * v, 0.0))
    std_px = np.asarray(std, float).reshape(-1, 1, 1)
    sel = valid & (signal > thr.n_sigma * std_px * noise)
    h = KDE_WIDTH
    with np.errstate(divide='ignore', invalid='ignore'):
        z = (signal / (std_px * noise) - thr.n_sigma) / h
        b = np.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * h * noise)
    b = np.where(valid & (noise > 0) & np.isfinite(b), b, 0.0)
    if weights is not None:
        b = b * weights
    g2 = g * g
    pairs = b * (_shift_add(b, g2) - g2[g2.size // 2] ** 2 * b)
    total = pairs.reshape(len(b), -1).sum(axis=1)
    return sel, math.sqrt(1 + h * h) * np.asarray(std) ** 2 * total


def _reference_growth(thr, cutouts, valid, std, sel, plain, weights=None):
    """The mask-growth adjustment by its documented formula, pixel by
    pixel: the mask's growth D, the best Gaussian's fit (with a constant,
    by least squares) and the clipped excess, tapered below GROWTH_BIAS
    of predicted pull bias (``plain`` the selection term without it)."""
    g = thr.kernel_1d
    h = KDE_WIDTH
    x = np.where(valid, cutouts, 0.0)
    v = valid.astype(float)
    w = v if weights is None else np.where(valid, weights, 0.0)
    signal = _shift_add(x, g) - x
    noise = np.sqrt(np.maximum(_shift_add(v, g * g) - v, 0.0))
    ny, nx = cutouts.shape[-2:]
    yy, xx = np.mgrid[:ny, :nx]
    s0 = thr.fwhm / (2 * math.sqrt(2 * math.log(2)))
    out = []
    for i in range(len(cutouts)):
        with np.errstate(divide='ignore', invalid='ignore'):
            z = (signal[i] / (std[i] * noise[i]) - thr.n_sigma) / h
            rho = (np.exp(-0.5 * z * z) * math.sqrt(1 + h * h)
                   / (math.sqrt(2 * math.pi) * h * noise[i] * std[i]))
        rho = np.where(valid[i] & np.isfinite(rho), rho, 0.0)
        u = np.where(sel[i], w[i], 0.0)
        growth = (rho * w[i] ** 2 * (_shift_add(u, g) - u)).sum()
        # the Gaussian (with a constant) of the highest matched-filter
        # signal-to-noise ratio, then u less its projection on the two
        ok = valid[i]
        best = None
        for width in GROWTH_WIDTHS * s0:
            p = np.exp(-0.5 * ((yy - (ny - 1) / 2) ** 2
                               + (xx - (nx - 1) / 2) ** 2) / width ** 2)
            q = p[ok] - p[ok].mean()
            snr = (q * x[i][ok]).sum() / math.sqrt((q * q).sum())
            if best is None or snr > best[0]:
                best = (snr, p[ok])
        design = np.column_stack([best[1], np.ones(ok.sum())])
        coef = np.linalg.lstsq(design, u[ok], rcond=None)[0]
        rest = u[ok] - design @ coef
        free = (rest * rest).sum()
        excess = (rest * x[i][ok]).sum()
        r = np.clip(excess / (std[i] * math.sqrt(free)), -GROWTH_CLIP,
                    GROWTH_CLIP)
        e2 = std[i] ** 2 * (u * u).sum() + max(plain[i], 0.0)
        bias = std[i] ** 4 * growth / (2 * e2 ** 1.5)
        out.append(-GROWTH_SHARE * std[i] ** 3 * growth * r
                   / math.sqrt(free) * min(bias / GROWTH_BIAS, 1.0))
    return np.array(out)


def _stack(rng, m, ny, nx):
    yy, xx = np.mgrid[:ny, :nx]
    star = np.exp(-0.5 * ((xx - nx / 2) ** 2 + (yy - ny / 2) ** 2) / 1.3 ** 2)
    amp = rng.uniform(0, 60, m)[:, None, None]
    return amp * star + rng.normal(0, 5.0, (m, ny, nx))


@pytest.mark.parametrize('side', [1, 3, 7, 20, MATMUL_SIDE, MATMUL_SIDE + 9])
def test_convolution_routes_match_the_direct_sum(side):
    rng = np.random.default_rng(side)
    g = SigmaThreshold(2.0, fwhm=3.0).kernel_1d
    a = rng.normal(0, 1, (4, side, side + 2))
    ref = _shift_add(a, g)
    assert np.allclose(_convolve(a, g), ref, rtol=0, atol=1e-13 * abs(ref).max())


@pytest.mark.parametrize('shape', [(20, 20), (13, 17), (60, 55)])
@pytest.mark.parametrize('kind', ['all_valid', 'holes', 'weights'])
def test_selection_and_variance_match_the_formulas(shape, kind):
    rng = np.random.default_rng(sum(shape))
    thr = SigmaThreshold(2.0)
    m = 40
    cut = _stack(rng, m, *shape)
    valid = np.ones(cut.shape, bool)
    weights = None
    if kind == 'holes':
        valid = rng.uniform(size=cut.shape) > 0.05
    if kind == 'weights':
        weights = rng.uniform(0.2, 1.0, cut.shape)
    std = rng.uniform(4.0, 6.0, m)
    ref_sel, ref_var = _reference(thr, cut, valid, std, weights)
    sel, var = thr.select_with_variance(cut, valid, std, weights=weights)
    assert np.array_equal(sel, ref_sel)
    assert ref_sel.any() and (~ref_sel & valid).any()
    plain = thr.selection_variance(cut, valid, std, weights=weights)
    np.testing.assert_allclose(plain, ref_var, rtol=1e-12)
    assert np.all(plain > 0)
    # with the mask: the mask-growth adjustment, of either sign, and the
    # sky and selection terms together at least GROWTH_FLOOR of the sky's
    adjust = _reference_growth(thr, cut, valid, std, ref_sel, ref_var,
                               weights)
    u2 = np.where(ref_sel, 1.0 if weights is None else weights, 0.0) ** 2
    sky = std ** 2 * u2.reshape(m, -1).sum(axis=1)
    want = np.maximum(ref_var + adjust, -GROWTH_FLOOR * sky)
    np.testing.assert_allclose(var, want, rtol=1e-9, atol=1e-9 * sky.max())
    assert (adjust < 0).any() and (adjust > 0).any()
    # the separate calls (the general engine) give the same bits
    assert np.array_equal(thr.select_stack(cut, valid, std), sel)
    assert np.array_equal(
        thr.selection_variance(cut, valid, std, weights=weights,
                               selected=sel), var)


def test_one_cutout_equals_its_row_in_a_stack():
    rng = np.random.default_rng(3)
    thr = SigmaThreshold(2.0)
    cut = _stack(rng, 25, 20, 20)
    valid = np.ones(cut.shape, bool)
    valid[4, 3, 5] = False
    std = rng.uniform(4.0, 6.0, 25)
    sel, var = thr.select_with_variance(cut, valid, std)
    for i in (0, 4, 24):
        one_sel, one_var = thr.select_with_variance(cut[i:i + 1],
                                                    valid[i:i + 1], std[i])
        assert np.array_equal(one_sel[0], sel[i])
        assert one_var[0] == var[i]


def test_cached_noise_is_read_only_and_not_shared_between_widths():
    thr = SigmaThreshold(2.0)
    cut = np.zeros((2, 9, 9))
    sig, noise = thr.significance(cut, np.ones(cut.shape, bool))
    with pytest.raises(ValueError):
        noise[0, 0, 0] = 1.0
    other = SigmaThreshold(2.0, fwhm=5.0).significance(
        cut, np.ones(cut.shape, bool))[1]
    assert other[0, 4, 4] > noise[0, 4, 4]
