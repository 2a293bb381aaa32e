"""Pixels sharper than the frame's stars (cosmic rays, hot pixels) inside
apertures: flag 1024 and one warning, never a silent number; the blank
apertures of ApertureNoise leave them out."""
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.data import get_pkg_data_filename
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import ApertureNoise, BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.noise import (
    _blank_corners,
    _robust_std,
    _source_mask,
)
from ccdphot_ext.background.outliers import SharpPixels
from ccdphot_ext.flags import FLAG_DESCRIPTIONS, FLAG_SHARP_PIXEL


def _blank_pulls(data, side, noise=None, n=800, seed=99):
    sky = SkyEstimate.from_image(data)
    resid = data - sky.value
    bad = ~np.isfinite(resid)
    bad |= _source_mask(resid, sky.std, bad)
    y0, x0 = _blank_corners(bad, side, n, np.random.default_rng(seed))
    c = np.column_stack([x0, y0]) + (side - 1) / 2.0
    kw = {} if noise is None else {'noise': noise}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        t = photometer(data, BoxAperture(c, side, side), sky, **kw)
    pull = np.asarray(t['aperture_sum'], float) / np.asarray(
        t['aperture_sum_err'], float)
    return pull, np.asarray(t['flags'])


def _hits(shape, fraction, rng, sigma, largest=4):
    """Hot pixels and cosmic rays of 1 to ``largest`` pixels, 6 to 100
    sigma."""
    image = np.zeros(shape)
    n = int(fraction * image.size)
    ys = rng.integers(0, shape[0] - 1, n)
    xs = rng.integers(0, shape[1] - 1, n)
    amp = sigma * np.exp(rng.uniform(np.log(6), np.log(100), n))
    size = rng.integers(1, largest + 1, n)
    shapes = [(0, 0), (0, 1), (1, 0), (1, 1)]
    for y, x, a, k in zip(ys, xs, amp, size, strict=True):
        for dy, dx in shapes[:k]:
            image[y + dy, x + dx] += a
    return image


def _star_frame(fwhm, rng, shape=(200, 200), n=60, sigma=10.0):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = rng.normal(1000.0, sigma, shape)
    s = fwhm / 2.3548
    xy = rng.uniform(8, shape[0] - 8, (n, 2))
    flux = np.exp(rng.uniform(np.log(300), np.log(3e4), n))
    from scipy.special import erf
    for (x, y), f in zip(xy, flux, strict=True):
        ex = (erf((xx + 0.5 - x) / (s * np.sqrt(2)))
              - erf((xx - 0.5 - x) / (s * np.sqrt(2)))) / 2
        ey = (erf((yy + 0.5 - y) / (s * np.sqrt(2)))
              - erf((yy - 0.5 - y) / (s * np.sqrt(2)))) / 2
        image += f * ex * ey
    return image, xy


def test_flag_is_documented():
    assert FLAG_SHARP_PIXEL == 1024
    assert 'cosmic ray' in FLAG_DESCRIPTIONS[FLAG_SHARP_PIXEL]


def test_real_apogee_frame():
    """A raw Apogee Alta frame (astropy's test data) keeps 2-3% hot pixels:
    the rows holding them are flagged and warned, the others' blank sums
    scatter as their errors say; the noise model no longer counts the hot
    pixels as the sky's noise (white: sigma(9 px) = 3 sigma1)."""
    path = get_pkg_data_filename('data/sip-wcs.fits',
                                 package='astropy.nddata.tests')
    data = fits.getdata(path).astype(float)
    found = SharpPixels.from_image(data)
    assert found.as_class and 0.015 < found.count / data.size < 0.05
    with pytest.warns(AstropyUserWarning, match='sharper than the frame'):
        photometer(data, BoxAperture([(20.0, 20.0), (60.0, 30.0)], 7, 7),
                   SkyEstimate.from_image(data))
    noise = ApertureNoise.from_blank_apertures(
        data, SkyEstimate.from_image(data), seed=1)
    assert noise(9.0) / (3 * noise.sigma1) < 1.1  # was 1.44
    for side in (3, 7):
        for model in (None, noise):
            pull, flags = _blank_pulls(data, side, model)
            clean = (flags & FLAG_SHARP_PIXEL) == 0
            # the hot pixels flag the rows whose sums they lift
            assert 0.1 < 1 - clean.mean() < 0.9
            assert np.median(pull[~clean]) > np.median(pull[clean])
            assert 0.85 < _robust_std(pull[clean]) < 1.2
            assert abs(np.median(pull[clean])) < 0.5


def test_synthetic_hits_flagged():
    """White noise with 1% hot pixels (single pixels): every row holding
    one is flagged; the unflagged rows' pulls are unit normal."""
    rng = np.random.default_rng(3)
    sigma = 10.0
    shape = (256, 256)
    hits = _hits(shape, 0.01, rng, sigma, largest=1)
    data = rng.normal(500.0, sigma, shape) + hits
    side = 5
    y0 = rng.integers(0, shape[0] - side, 3000)
    x0 = rng.integers(0, shape[1] - side, 3000)
    c = np.column_stack([x0, y0]) + (side - 1) / 2.0
    sky = SkyEstimate(500.0, sigma, data.size)
    with pytest.warns(AstropyUserWarning, match='flag 1024'):
        t = photometer(data, BoxAperture(c, side, side), sky,
                       budget=None)
    flagged = (np.asarray(t['flags']) & FLAG_SHARP_PIXEL) > 0
    holds = np.array([hits[y:y + side, x:x + side].max() > 0
                      for y, x in zip(y0, x0, strict=True)])
    bright = np.array([hits[y:y + side, x:x + side].max() > 8 * sigma
                       for y, x in zip(y0, x0, strict=True)])
    assert flagged[bright].mean() > 0.93
    assert flagged[~holds].mean() < 0.05
    pull = (np.asarray(t['aperture_sum'], float)
            / np.asarray(t['aperture_sum_err'], float))[~flagged]
    assert abs(np.std(pull) - 1) < 0.1
    assert abs(np.mean(pull)) < 0.1


@pytest.mark.parametrize('fwhm', [1.0, 1.5])
def test_undersampled_stars_not_hits(fwhm):
    """Stars of FWHM 1.0-1.5 px are not taken for hits."""
    data, xy = _star_frame(fwhm, np.random.default_rng(int(fwhm * 10)))
    found = SharpPixels.from_image(data)
    assert not found.as_class
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        t = photometer(data, BoxAperture(xy, 7, 7),
                       SkyEstimate(1000.0, 10.0, data.size))
    assert not np.any(np.asarray(t['flags']) & FLAG_SHARP_PIXEL)


def _cosmic_rays(shape, n, rng, sigma, sizes=(3, 4), low=8.0):
    """Cosmic rays of ``sizes`` pixels (tracks in 6 directions, 2 x 2
    blobs), the peak ``low`` to 100 sigma and the other pixels 0.3-1 of
    it; returns the image and each pixel's ray size (0: none)."""
    image = np.zeros(shape)
    size = np.zeros(shape, dtype=int)
    steps = [(0, 1), (1, 0), (1, 1), (1, -1), (1, 2), (2, 1)]
    for _ in range(n):
        k = int(rng.choice(sizes))
        y, x = rng.integers(3, np.array(shape) - 4)
        peak = sigma * np.exp(rng.uniform(np.log(low), np.log(100.0)))
        if k == 4 and rng.random() < 0.4:
            pixels = [(0, 0), (0, 1), (1, 0), (1, 1)]
        else:
            dy, dx = steps[rng.integers(len(steps))]
            m = max(abs(dy), abs(dx))
            pixels = [(round(j * dy / m), round(j * dx / m)) for j in range(k)]
        amps = peak * rng.uniform(0.3, 1.0, k)
        amps[rng.integers(k)] = peak
        for (dy, dx), a in zip(pixels, amps, strict=True):
            if 0 <= y + dy < shape[0] and 0 <= x + dx < shape[1]:
                image[y + dy, x + dx] += a
                size[y + dy, x + dx] = k
    return image, size


def _box_rows(shape, side, n, rng):
    y0 = rng.integers(0, shape[0] - side, n)
    x0 = rng.integers(0, shape[1] - side, n)
    return y0, x0, np.column_stack([x0, y0]) + (side - 1) / 2.0


def _naive_first_cut(image, unusable, cut):
    """The first cut's rule pixel by pixel (numpy): usable local maxima
    (5 usable neighbours, 8 usable ring pixels) more than ``cut`` above
    their ring's median."""
    ny, nx = image.shape
    usable = np.isfinite(image) & ~unusable
    out = np.zeros(image.shape, dtype=bool)
    ring = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
            if max(abs(dy), abs(dx)) == 2]
    near = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
            if (dy, dx) != (0, 0)]

    def values(y, x, offsets):
        return np.array([image[y + dy, x + dx] for dy, dx in offsets
                         if 0 <= y + dy < ny and 0 <= x + dx < nx
                         and usable[y + dy, x + dx]], dtype=float)

    for y, x in zip(*np.nonzero(usable), strict=True):
        v = float(image[y, x])
        n8, r16 = values(y, x, near), values(y, x, ring)
        out[y, x] = (n8.size >= 5 and np.all(n8 < v) and r16.size >= 8
                     and v - np.median(r16) > cut)
    return out


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_compiled_first_cut_is_the_rule(dtype):
    """The compiled first cut keeps exactly the pixels of the rule (no
    slack for the tile's level): NaN, inf and masked pixels, the frame's
    edges, float32 frames and non-contiguous views; within boxes, the
    same pixels restricted to them."""
    from ccdphot_ext.background.outliers import _first_cut

    rng = np.random.default_rng(5)
    big = rng.normal(100.0, 1.0, (70, 90))
    big[rng.integers(0, 70, 150), rng.integers(0, 90, 150)] += 6.0
    big[5, 7] = np.nan
    big[30, 30] = np.inf
    big[31, 31] = 50.0  # beside the inf
    big[0, 10] = 40.0   # on the edge
    image = big.astype(dtype)[:, ::1]
    unusable = np.zeros(image.shape, dtype=bool)
    unusable[40:43, 50:53] = True
    image[41, 51] = 90.0  # masked
    cut = 3.0
    want = _naive_first_cut(image.astype(float), unusable, cut)
    for view, mask in ((image, unusable), (image, None)):
        ys, xs = _first_cut(view, mask, None, cut, np.inf)[:2]
        got = np.zeros(image.shape, dtype=bool)
        got[ys, xs] = True
        expect = want if mask is not None else _naive_first_cut(
            image.astype(float), np.zeros(image.shape, dtype=bool), cut)
        assert np.array_equal(got, expect)
        assert want.sum() > 20
    strided = np.asarray(big.astype(dtype)[:, ::2])
    ys, xs = _first_cut(big.astype(dtype)[:, ::2], None, None, cut,
                        np.inf)[:2]
    got = np.zeros(strided.shape, dtype=bool)
    got[ys, xs] = True
    assert np.array_equal(got, _naive_first_cut(
        strided.astype(float), np.zeros(strided.shape, dtype=bool), cut))
    boxes = [[10, 30, 5, 40], [20, 50, 30, 60], [60, 70, 80, 90]]
    ys, xs = _first_cut(image, unusable, boxes, cut, np.inf)[:2]
    inside = np.zeros(image.shape, dtype=bool)
    for y0, y1, x0, x1 in boxes:
        inside[y0:y1, x0:x1] = True
    got = np.zeros(image.shape, dtype=bool)
    got[ys, xs] = True
    assert np.array_equal(got, want & inside)


@pytest.mark.parametrize('dtype', [np.float64, np.float32])
def test_compiled_candidates_are_numpys(dtype):
    """What the compiled pass returns with each pixel kept is what numpy
    gives, to the last bit: its 8 neighbours (NaN off the frame, where not
    finite and where masked), numpy.nanmedian of its usable ring and of
    the ring's absolute deviations from that median (odd and even counts
    at the edges and beside NaN and masked pixels)."""
    from ccdphot_ext.background.outliers import _first_cut

    rng = np.random.default_rng(11)
    image = rng.normal(100.0, 1.0, (60, 80))
    image[rng.integers(0, 60, 200), rng.integers(0, 80, 200)] += 7.0
    image[rng.integers(0, 60, 40), rng.integers(0, 80, 40)] = np.nan
    image[3, 3] = np.inf
    image = image.astype(dtype)
    unusable = np.zeros(image.shape, dtype=bool)
    unusable[rng.integers(0, 60, 60), rng.integers(0, 80, 60)] = True
    ys, xs, near, base, mad = _first_cut(image, unusable, None, 3.0, np.inf)
    assert ys.size > 50
    padded = np.full((64, 84), np.nan)
    padded[2:-2, 2:-2] = np.where(unusable | ~np.isfinite(image), np.nan,
                                  image.astype(float))
    cells = np.stack([padded[y:y + 5, x:x + 5]
                      for y, x in zip(ys, xs, strict=True)])
    edge = np.ones((5, 5), dtype=bool)
    edge[1:4, 1:4] = False
    inner = ~edge
    inner[2, 2] = False
    ring = cells[:, edge]
    want_base = np.nanmedian(ring, axis=1)
    counts = np.sum(np.isfinite(ring), axis=1)
    assert set(counts % 2) == {0, 1}  # both kinds of median met
    assert np.array_equal(near, cells[:, inner], equal_nan=True)
    assert np.array_equal(base, want_base)
    assert np.array_equal(
        mad, np.nanmedian(np.abs(ring - want_base[:, None]), axis=1))


def test_white_noise_false_flags():
    """Pure white noise: no row flagged; white noise with 1% single hot
    pixels (a class of hits: peaks from 4 noises judged): under 1% of the
    rows holding none flagged."""
    rng = np.random.default_rng(8)
    shape, sigma, side = (512, 512), 10.0, 11
    y0, x0, c = _box_rows(shape, side, 3000, rng)
    noise = rng.normal(500.0, sigma, shape)
    hits = _hits(shape, 0.01, rng, sigma, largest=1)
    sky = SkyEstimate(500.0, sigma, noise.size)
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        t = photometer(noise, BoxAperture(c, side, side), sky, budget=None)
    assert not np.any(np.asarray(t['flags']) & FLAG_SHARP_PIXEL)
    assert SharpPixels.from_image(noise).count == 0
    found = SharpPixels.from_image(noise + hits)
    assert found.as_class
    with pytest.warns(AstropyUserWarning, match='flag 1024'):
        t = photometer(noise + hits, BoxAperture(c, side, side), sky,
                       budget=None)
    flagged = (np.asarray(t['flags']) & FLAG_SHARP_PIXEL) > 0
    holds = np.array([hits[y:y + side, x:x + side].max() > 0
                      for y, x in zip(y0, x0, strict=True)])
    assert (~holds).sum() > 100
    assert flagged[~holds].mean() < 0.01
    assert flagged[holds].mean() > 0.9


def test_hits_on_a_steep_gradient():
    """Each pixel is cut against its tile's level, not the frame's: hits
    of 25 sigma on the low side of a sky rising by 200 sigma across the
    frame are found as on the high side."""
    rng = np.random.default_rng(4)
    shape, sigma = (200, 400), 10.0
    ramp = np.linspace(0.0, 200 * sigma, shape[1])[None, :]
    data = rng.normal(1000.0, sigma, shape) + ramp
    ys = rng.integers(5, shape[0] - 5, 60)
    xs = np.concatenate([rng.integers(5, 100, 30),
                         rng.integers(300, shape[1] - 5, 30)])
    data[ys, xs] += 25 * sigma
    found = SharpPixels.from_image(data, sigma=sigma)
    mask = found.mask
    assert mask[ys[:30], xs[:30]].all()  # the low side
    assert mask[ys[30:], xs[30:]].all()
    assert found.count <= 60 + 5


def test_judged_alike_whatever_is_measured(monkeypatch):
    """The reference and the class of hits come from the frame's bands,
    the first cut from the frame's tiles: `measure` flags a row as
    `photometer` does among many (here a frame larger than its bands)."""
    from ccdphot_ext import measure
    from ccdphot_ext.background import outliers

    monkeypatch.setattr(outliers, '_BAND_PIXELS', 2 ** 13)
    rng = np.random.default_rng(2)
    shape, sigma = (256, 256), 10.0
    stars, xy = _star_frame(2.5, rng, shape=shape, n=60, sigma=sigma)
    rays, _ = _cosmic_rays(shape, 150, rng, sigma)
    data = stars + rays
    assert len(outliers._band_boxes(shape)) > 1
    _, _, c = _box_rows(shape, 11, 80, rng)
    sky = SkyEstimate(1000.0, sigma, data.size)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        t = photometer(data, BoxAperture(c, 11, 11), sky, budget=None)
        one = [measure(data, BoxAperture(p, 11, 11), sky).flags for p in c]
    flags = np.asarray(t['flags']) & FLAG_SHARP_PIXEL
    assert 4 < np.count_nonzero(flags) < 70
    assert np.array_equal(flags, np.asarray(one) & FLAG_SHARP_PIXEL)
