"""
Property-based tests (hypothesis) of the invariants the package promises.

Every expected value is recomputed here with plain numpy (or scipy) from the
pixels and the box geometry, never taken from the package:

- `photometer` on random frames (NaN/inf, masks, uncertainty maps, uint16
  near 65535) and random boxes (inside, over the edge, off the frame,
  fractional) equals numpy for the sums, ``n_pix``, every budget term and
  every flag, with and without a `SigmaThreshold`;
- the 'central' threshold segment equals `scipy.ndimage.label`;
- `ErrorBudget` invariants: variance = sum of the terms, fractions sum to 1,
  snr * error = flux, the magnitude errors;
- non-integer axis-aligned boxes have the analytic overlap (product of 1-D
  overlaps, total ``width * height`` inside the frame) and agree with
  photutils' exact rectangle;
- `measure` and `photometer` agree row by row;
- results are deterministic and the same from several threads at once.
"""

import contextlib
import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from photutils.aperture import RectangularAperture
from scipy import ndimage

from ccdphot_ext import (
    FLAG_BAD_PIXELS,
    FLAG_EMPTY_THRESHOLD,
    FLAG_NO_SOURCE_TERM,
    FLAG_NONPOSITIVE_FLUX,
    FLAG_RESIDUAL_BACKGROUND,
    FLAG_SATURATED,
    FLAG_SKY_ANNULUS,
    FLAG_TRUNCATED,
    BoxAperture,
    DetectorParameters,
    ErrorBudget,
    SigmaThreshold,
    SkyEstimate,
    measure,
    photometer,
)
from ccdphot_ext.aperture.utils import aperture_weights

#: Fast and reproducible: a fixed example sequence, no example database
#: written into the repository.
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.data_too_large])

#: Residual-background significance used by flag 32.
RESIDUAL_NSIGMA = 5.0
MAG_FACTOR = 2.5 / math.log(10.0)


# ---------------------------------------------------------------- strategies

@st.composite
def frames(draw, *, max_side=22, allow_bad=True):
    """A random frame: sky offset + noise + one blob, some NaN/inf pixels,
    optionally uint16 near 65535, a bad-pixel mask, an uncertainty map."""
    ny = draw(st.integers(3, max_side))
    nx = draw(st.integers(3, max_side))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    offset = draw(st.sampled_from([0.0, 100.0, 1035.0, 65000.0]))
    noise = draw(st.sampled_from([0.5, 5.0, 60.0]))
    data = offset + rng.normal(0.0, noise, (ny, nx))
    yy, xx = np.mgrid[:ny, :nx]
    cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
    amp = draw(st.sampled_from([0.0, 10.0, 300.0, 5000.0]))
    data += amp * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 4.0)
    uint16 = draw(st.booleans())
    if uint16:
        data = np.clip(np.round(data), 0, 65535).astype(np.uint16)
    elif allow_bad:
        n_bad = draw(st.integers(0, 4))
        for _ in range(n_bad):
            value = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
            data[draw(st.integers(0, ny - 1)), draw(st.integers(0, nx - 1))] \
                = value
    mask = None
    if allow_bad and draw(st.booleans()):
        mask = rng.random((ny, nx)) < 0.08
    sigma = None
    if draw(st.booleans()):
        sigma = rng.uniform(0.5, 2.0, (ny, nx)) * noise
        if allow_bad and draw(st.booleans()):
            sigma[rng.integers(0, ny), rng.integers(0, nx)] = np.nan
    return data, mask, sigma


def _eighths(lo, hi):
    """Numbers on a 1/8 pixel grid in [lo, hi]: exact binary fractions keep
    the analytic overlaps free of rounding, and edges can still fall exactly
    on pixel boundaries."""
    return st.integers(int(lo * 8), int(hi * 8)).map(lambda k: k / 8.0)


@st.composite
def boxes(draw, shape, *, pixel_aligned=None):
    """One box: pixel-aligned (integer slices, any may leave the frame) or
    fractional; returns (BoxAperture, x_lo, x_hi, y_lo, y_hi) edges."""
    ny, nx = shape
    aligned = (draw(st.booleans()) if pixel_aligned is None
               else pixel_aligned)
    if aligned:
        w = draw(st.integers(1, nx + 4))
        h = draw(st.integers(1, ny + 4))
        # mostly overlapping the frame; wholly off it now and then
        x0 = draw(st.integers(-(w // 2) - 2, nx))
        y0 = draw(st.integers(-(h // 2) - 2, ny))
        box = BoxAperture((x0 + (w - 1) / 2, y0 + (h - 1) / 2), w, h)
        return box, x0 - 0.5, x0 + w - 0.5, y0 - 0.5, y0 + h - 0.5
    w = draw(_eighths(1 / 8, nx))
    h = draw(_eighths(1 / 8, ny))
    x = draw(_eighths(-3, nx + 2))
    y = draw(_eighths(-3, ny + 2))
    turn = draw(st.sampled_from([0, 1, 2, -1]))  # multiples of 90 degrees
    box = BoxAperture((x, y), w, h, theta=turn * math.pi / 2)
    wx, wy = (w, h) if turn % 2 == 0 else (h, w)
    return box, x - wx / 2, x + wx / 2, y - wy / 2, y + wy / 2


@st.composite
def scenes(draw, *, max_boxes=5, allow_bad=True):
    data, mask, sigma = draw(frames(allow_bad=allow_bad))
    n = draw(st.integers(1, max_boxes))
    geoms = [draw(boxes(data.shape)) for _ in range(n)]
    finite = np.asarray(data, dtype=float)
    finite = finite[np.isfinite(finite)]
    level = float(np.median(finite)) if finite.size else 0.0
    with warnings.catch_warnings():
        # a std of 0 or under 5 sky pixels: doubtful (FLAG_SKY_ANNULUS)
        warnings.filterwarnings('ignore', 'doubtful sky',
                                AstropyUserWarning)
        sky = SkyEstimate(level + draw(st.sampled_from([0.0, -2.5, 7.0])),
                          draw(st.sampled_from([0.0, 0.7, 4.0, 60.0])),
                          draw(st.integers(1, 10 ** 6)))
    gain = draw(st.sampled_from([None, 0.5, 2.23, 10.0]))
    saturation = draw(st.sampled_from([None, 'p95', 65535.0]))
    if saturation == 'p95':
        saturation = float(np.percentile(finite, 95)) if finite.size else None
    return data, mask, sigma, geoms, sky, gain, saturation


# ---------------------------------------------------------------- reference

def overlap_1d(lo, hi, n):
    """Overlap of [lo, hi] with each pixel [i - 0.5, i + 0.5], i < n."""
    i = np.arange(n, dtype=float)
    return np.clip(np.minimum(hi, i + 0.5) - np.maximum(lo, i - 0.5), 0, 1)


def reference_row(data, mask, sigma, geom, sky, gain, saturation,
                  threshold=None):
    """Plain-numpy photometry of one box on the whole frame."""
    _, xlo, xhi, ylo, yhi = geom
    ny, nx = data.shape
    d = np.asarray(data, dtype=np.float64)
    weight = np.outer(overlap_1d(ylo, yhi, ny), overlap_1d(xlo, xhi, nx))
    inside = weight > 0
    good = np.isfinite(d)
    if mask is not None:
        good &= ~mask
    if sigma is not None:
        good &= np.isfinite(sigma)
    truncated = xlo < -0.5 or ylo < -0.5 or xhi > nx - 0.5 or yhi > ny - 0.5
    flags = FLAG_TRUNCATED if truncated else 0
    if sky.std == 0 or sky.n_pix < 5:  # a doubtful sky
        flags |= FLAG_SKY_ANNULUS
    if np.any(inside & ~good):
        flags |= FLAG_BAD_PIXELS
    used = inside & good
    if not used.any():
        return {'flux': math.nan, 'n_pix': 0.0, 'flags': flags}
    value, std = float(sky.value), float(sky.std)
    error_on_mean = float(sky.error_on_mean)
    resid = np.where(used, d - value, 0.0)
    if saturation is not None and np.any(used & (d >= saturation)):
        flags |= FLAG_SATURATED
    sel = used
    if threshold is not None:
        sel = used & (resid > threshold * std)
        rest = used & ~sel
        n_rest = weight[rest].sum()
        if not sel.any():
            flags |= FLAG_EMPTY_THRESHOLD
        if n_rest > 0:
            r_sum = (weight[rest] * resid[rest]).sum()
            r_err = math.sqrt(n_rest * std ** 2
                              + (n_rest * error_on_mean) ** 2)
            if (abs(r_sum) > RESIDUAL_NSIGMA * r_err if r_err > 0
                    else r_sum != 0):
                flags |= FLAG_RESIDUAL_BACKGROUND
    flux = float((weight[sel] * resid[sel]).sum())
    n_pix = float(weight[sel].sum())
    if flux <= 0:
        flags |= FLAG_NONPOSITIVE_FLUX
    out = {'flux': flux, 'n_pix': n_pix, 'flags': flags,
           # magnitude of what was summed, for a fair rounding tolerance
           'scale': float((weight[sel] * (np.abs(d[sel]) + abs(value))).sum())}
    if n_pix == 0:
        out.update(var_sky=0.0, var_source=math.nan, var_sky_mean=math.nan)
        return out
    # a weighted sum of independent pixels: each adds w**2 * sigma**2
    w2 = weight[sel] ** 2
    out['var_sky'] = (float((w2 * sigma[sel] ** 2).sum())
                      if sigma is not None else float(w2.sum()) * std ** 2)
    # the photon noise of the weighted sum: sum(w**2 (D - B)) / g
    source = float((w2 * resid[sel]).sum())
    out['var_source'] = (math.nan if gain is None
                         else max(source, 0.0) / gain if flux > 0 else 0.0)
    out['var_sky_mean'] = n_pix ** 2 * error_on_mean ** 2
    return out


def assert_row_matches(row, ref):
    # (2048, no gain given: photometer's alone)
    assert row['flags'] & ~FLAG_NO_SOURCE_TERM == ref['flags'], (
        row['flags'], ref['flags'])
    assert row['n_pix'] == pytest.approx(ref['n_pix'], rel=1e-12, abs=1e-12)
    if math.isnan(ref['flux']):
        assert np.isnan(row['aperture_sum'])
        assert np.isnan(row['aperture_sum_err'])
        assert np.isnan(row['mag'])
        return
    tol = 1e-10 * ref['scale'] + 1e-12
    assert abs(row['aperture_sum'] - ref['flux']) <= tol
    variance = 0.0
    for name in ('var_sky', 'var_source', 'var_sky_mean'):
        if math.isnan(ref[name]):
            assert np.isnan(row[name]), name
        else:
            # var_source = flux / gain inherits the flux tolerance
            assert row[name] == pytest.approx(ref[name], rel=1e-10,
                                              abs=2 * tol), name
            variance += ref[name]
    if variance == 0 and ref['n_pix'] > 0:
        # pixels summed, every term 0 (no sky noise, no source term): the
        # error is unknown, never 0
        assert np.isnan(row['aperture_sum_err']) and np.isnan(row['snr'])
        return
    err = math.sqrt(variance)
    assert row['aperture_sum_err'] == pytest.approx(err, rel=1e-10, abs=1e-12)
    if err > 0:
        assert row['snr'] == pytest.approx(row['aperture_sum'] / err,
                                           rel=1e-9, abs=1e-9)


def _sigma_warning(sigma, mask):
    """A zero, NaN or inf sigma on a pixel not already masked is said in
    a warning (such pixels are treated as bad)."""
    if sigma is None:
        return contextlib.nullcontext()
    bad = ~(np.isfinite(sigma) & (sigma > 0))
    if mask is not None:
        bad &= ~mask
    if not bad.any():
        return contextlib.nullcontext()
    return pytest.warns(AstropyUserWarning, match='zero, NaN or inf sigma')


def _photometer_unitless(data, mask, sigma, geoms, sky, gain, saturation,
                         threshold=None):
    with _sigma_warning(sigma, mask):
        return photometer(data, [g[0] for g in geoms], sky, gain=gain,
                          mask=mask, uncertainty=sigma,
                          detector=DetectorParameters(saturation=saturation),
                          threshold=threshold)


# ---------------------------------------------------------------- photometer

@SETTINGS
@given(scene=scenes())
def test_photometer_equals_numpy(scene):
    data, mask, sigma, geoms, sky, gain, saturation = scene
    table = _photometer_unitless(data, mask, sigma, geoms, sky, gain,
                                 saturation)
    assert len(table) == len(geoms)
    for row, geom in zip(table, geoms, strict=True):
        assert_row_matches(row, reference_row(data, mask, sigma, geom, sky,
                                              gain, saturation))


@SETTINGS
@given(scene=scenes(max_boxes=3), n_sigma=st.sampled_from([0.5, 2.0, 5.0]))
def test_photometer_threshold_equals_numpy(scene, n_sigma):
    """Mask sums: ``cutout > n * sigma`` on the finite pixels of the box."""
    data, mask, sigma, geoms, sky, gain, saturation = scene
    table = _photometer_unitless(data, mask, sigma, geoms, sky, gain,
                                 saturation, SigmaThreshold(n_sigma, selection='pixel'))
    for row, geom in zip(table, geoms, strict=True):
        assert_row_matches(row, reference_row(
            data, mask, sigma, geom, sky, gain, saturation,
            threshold=n_sigma))


@SETTINGS
@given(data=st.data())
def test_central_segment_equals_scipy_label(data):
    """segment='central': the 8-connected segment under the box centre, or
    the one with the largest signal when the centre is below threshold."""
    frame, _, _ = data.draw(frames(allow_bad=False))
    ny, nx = frame.shape
    # odd sides, centre pixel inside the frame: the centre is unambiguous
    w = data.draw(st.integers(0, nx // 2)) * 2 + 1
    h = data.draw(st.integers(0, ny // 2)) * 2 + 1
    xc = data.draw(st.integers(0, nx - 1))
    yc = data.draw(st.integers(0, ny - 1))
    box = BoxAperture((xc, yc), w, h)
    d = np.asarray(frame, dtype=float)
    level = float(np.median(d))
    std = float(np.std(d)) or 1.0
    sky = SkyEstimate(level, std, d.size)
    res = measure(frame, box, sky, threshold=SigmaThreshold(
        1.0, segment='central', selection='pixel'))
    y0, x0 = max(yc - h // 2, 0), max(xc - w // 2, 0)
    cut = d[y0:yc + h // 2 + 1, x0:xc + w // 2 + 1] - level
    labels, n = ndimage.label(cut > std, structure=np.ones((3, 3)))
    if n == 0:
        expected = np.zeros(cut.shape, dtype=bool)
    else:
        label = labels[yc - y0, xc - x0]
        if label == 0:
            sums = ndimage.sum_labels(cut, labels, index=np.arange(1, n + 1))
            label = int(np.argmax(sums)) + 1
        expected = labels == label
    np.testing.assert_array_equal(res.mask > 0, expected)
    assert res.n_pix == expected.sum()
    assert res.flux == pytest.approx(cut[expected].sum(), rel=1e-10,
                                     abs=1e-9 * np.abs(cut).sum())


# ---------------------------------------------------------------- geometry

@SETTINGS
@given(data=st.data())
def test_fractional_boxes_have_analytic_overlap(data):
    ny = data.draw(st.integers(2, 30))
    nx = data.draw(st.integers(2, 30))
    box, xlo, xhi, ylo, yhi = data.draw(boxes((ny, nx), pixel_aligned=False))
    slc, weights, truncated = aperture_weights(box, (ny, nx))
    expected = np.outer(overlap_1d(ylo, yhi, ny), overlap_1d(xlo, xhi, nx))
    full = np.zeros((ny, nx))
    if slc is not None:
        full[slc] = weights
    np.testing.assert_allclose(full, expected, rtol=0, atol=1e-12)
    assert truncated == (xlo < -0.5 or ylo < -0.5 or xhi > nx - 0.5
                         or yhi > ny - 0.5)
    if not truncated:
        assert weights.sum() == pytest.approx(box.width * box.height,
                                              rel=1e-12)
        # and photutils' exact (polygon) overlap of the same rectangle
        rect = RectangularAperture(box.positions, box.width, box.height,
                                   theta=box.theta)
        pmask = rect.to_mask(method='exact')
        pfull = pmask.to_image((ny, nx))
        np.testing.assert_allclose(full, pfull, rtol=0, atol=1e-6)


@SETTINGS
@given(flux=st.one_of(st.just(0.0), st.floats(1e-6, 1e7),
                      st.floats(-1e6, -1e-6)),
       n_pix=st.floats(0.01, 1e5),
       sky_std=st.floats(0.0, 1e3),
       gain=st.one_of(st.none(), st.floats(0.05, 100.0)),
       n_sky=st.one_of(st.none(), st.floats(1.0, 1e7)),
       error_on_mean=st.one_of(st.none(), st.floats(0.0, 10.0)),
       flat=st.one_of(st.none(), st.floats(0.0, 0.1)))
def test_budget_invariants(flux, n_pix, sky_std, gain, n_sky, error_on_mean,
                           flat):
    b = ErrorBudget.from_aperture(flux, n_pix, sky_std, gain=gain,
                                  n_sky=n_sky, sky_error_on_mean=error_on_mean,
                                  flat_error=flat)
    expected = {'sky': n_pix * sky_std ** 2}
    if gain is not None:
        expected['source'] = max(flux, 0.0) / gain
    if error_on_mean is not None:
        expected['sky_mean'] = n_pix ** 2 * error_on_mean ** 2
    elif n_sky is not None:
        expected['sky_mean'] = n_pix ** 2 * sky_std ** 2 / n_sky
    if flat is not None:
        expected['flat'] = (flat * flux) ** 2
    assert b.terms.keys() == expected.keys()
    for name, var in expected.items():
        assert b.terms[name] == pytest.approx(var, rel=1e-12, abs=0)
    assert (gain is None) == any('no gain' in note for note in b.notes)
    if math.fsum(expected.values()) == 0:
        # pixels summed (n_pix > 0), every term 0: the error is unknown
        assert math.isnan(b.variance) and math.isnan(b.error)
        assert math.isnan(b.snr) and math.isnan(b.mag_err)
        assert math.isnan(b.to_table()['variance'][-1])
        return
    assert b.variance == pytest.approx(math.fsum(expected.values()),
                                       rel=1e-12, abs=0)
    assert b.error == pytest.approx(math.sqrt(b.variance), rel=1e-15)
    table = b.to_table()
    assert table['variance'][list(table['term']).index('total')] == b.variance
    if b.variance == 0:
        assert math.isnan(b.snr)
        return
    assert math.fsum(b.fractions.values()) == pytest.approx(1.0, abs=1e-12)
    assert all(0 <= f <= 1 for f in b.fractions.values())
    assert b.snr * b.error == pytest.approx(flux, rel=1e-12, abs=1e-300)
    if flux > 0:
        assert b.mag_err * b.snr == pytest.approx(MAG_FACTOR, rel=1e-12)
        assert b.mag_err_bright <= b.mag_err * (1 + 1e-12)
        assert b.mag_err <= b.mag_err_faint * (1 + 1e-12)
    else:
        assert math.isnan(b.mag_err)


# ---------------------------------------------------------------- agreement

@SETTINGS
@given(scene=scenes(max_boxes=3),
       n_sigma=st.sampled_from([None, 1.0, 3.0]))
def test_measure_and_photometer_agree(scene, n_sigma):
    data, mask, sigma, geoms, sky, gain, saturation = scene
    threshold = None if n_sigma is None else SigmaThreshold(n_sigma)
    table = _photometer_unitless(data, mask, sigma, geoms, sky, gain,
                                 saturation, threshold)
    for row, geom in zip(table, geoms, strict=True):
        kwargs = {'gain': gain, 'mask': mask, 'uncertainty': sigma,
                  'detector': DetectorParameters(saturation=saturation),
                  'threshold': threshold}
        if np.isnan(row['aperture_sum']):
            # nothing to sum: measure refuses, naming the aperture
            with (_sigma_warning(sigma, mask),
                  pytest.raises(ValueError, match='aperture')):
                measure(data, geom[0], sky, **kwargs)
            assert row['flags'] & (FLAG_TRUNCATED | FLAG_BAD_PIXELS)
            continue
        with _sigma_warning(sigma, mask):
            res = measure(data, geom[0], sky, **kwargs)
        assert res.flags == row['flags'] & ~FLAG_NO_SOURCE_TERM
        assert res.n_pix == pytest.approx(row['n_pix'], rel=1e-12, abs=1e-12)
        scale = 1e-12 * (np.nansum(np.abs(np.asarray(data, float)))
                         + res.n_pix * abs(sky.value)) + 1e-12
        assert abs(res.flux - row['aperture_sum']) <= scale
        assert res.flux_err == pytest.approx(row['aperture_sum_err'],
                                             rel=1e-12, abs=1e-12,
                                             nan_ok=True)
        terms = res.budget.terms
        for col, name in (('var_sky', 'sky'), ('var_source', 'source'),
                          ('var_sky_mean', 'sky_mean')):
            if name in terms:
                assert terms[name] == pytest.approx(row[col], rel=1e-12,
                                                    abs=1e-12)
            else:
                assert np.isnan(row[col])
        if res.n_pix > 0:
            assert res.compare_numpy().meta['max_abs_rel_diff'] < 1e-10


# ---------------------------------------------------------------- determinism

def _table_arrays(table):
    return {name: np.asarray(table[name]) for name in table.colnames}


def _assert_same_tables(a, b):
    arrays_a, arrays_b = _table_arrays(a), _table_arrays(b)
    assert arrays_a.keys() == arrays_b.keys()
    for name, col in arrays_a.items():
        np.testing.assert_array_equal(col, arrays_b[name], err_msg=name)


@pytest.fixture(scope='module')
def busy_scene():
    """A 200 x 240 frame with NaN pixels, 150 boxes (some over the edge)."""
    rng = np.random.default_rng(8)
    img = rng.normal(1000.0, 10.0, (200, 240))
    img[rng.integers(0, 200, 40), rng.integers(0, 240, 40)] = np.nan
    y, x = np.mgrid[:200, :240]
    for cx, cy in rng.uniform(0, 240, (30, 2)) * (1, 200 / 240):
        img += 3000 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 5.0)
    pos = np.column_stack([rng.uniform(-3, 243, 150), rng.uniform(-3, 203, 150)])
    sky = SkyEstimate(1000.0, 10.0, 40000)
    return img, BoxAperture(np.round(pos), 9, 9), sky


def test_deterministic_and_thread_safe(busy_scene):
    img, boxes_, sky = busy_scene
    kwargs = {'gain': 2.0, 'detector': DetectorParameters(saturation=4000.0),
              'threshold': SigmaThreshold(2.0)}
    first = photometer(img, boxes_, sky, **kwargs)
    _assert_same_tables(first, photometer(img, boxes_, sky, **kwargs))
    assert np.count_nonzero(first['flags'] & FLAG_TRUNCATED) > 0
    assert np.count_nonzero(first['flags'] & FLAG_BAD_PIXELS) > 0
    single = measure(img, boxes_[0], sky, **kwargs)

    def work(i):
        if i % 2:
            return photometer(img, boxes_, sky, **kwargs)
        return measure(img, boxes_[0], sky, **kwargs)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(8)))
    for i, res in enumerate(results):
        if i % 2:
            _assert_same_tables(first, res)
        else:
            assert (res.flux, res.flux_err, res.n_pix, res.flags) == (
                single.flux, single.flux_err, single.n_pix, single.flags)
            np.testing.assert_array_equal(res.mask, single.mask)
