"""
Rows measured without a gain: the source's photon noise is absent from
their error bars, and the rows where it could matter are flagged
`FLAG_NO_SOURCE_TERM` (2048). The bound comes from the sky: a level ``B``
whose pixels scatter ``sigma`` allows a gain no smaller than
``B / sigma**2``, so the missing term is at most ``F * sigma**2 / B``;
a row is flagged where that exceeds a tenth of its variance. The
missing-gain warning names the line that called the package.
"""

import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import (
    FLAG_NO_SOURCE_TERM,
    BoxAperture,
    BudgetOptions,
    SkyEstimate,
    decode_flags,
    measure,
    optimal_extraction,
    photometer,
    render_stars,
)
from ccdphot_ext.photometry.budget import SOURCE_BOUND_SHARE

#: Poisson sky of 150 ADU at 2 e-/ADU, read noise 4 e- (2 ADU): the pixel
#: variance 79 ADU**2, so the sky allows a gain down to 150 / 79 = 1.9
LEVEL, GAIN, READ = 150.0, 2.0, 4.0
STD = np.sqrt(LEVEL / GAIN + (READ / GAIN) ** 2)


def _night(seed, n_side=14, spacing=36, level=LEVEL):
    """A frame of ``n_side**2`` isolated stars of 300-30,000 ADU (log
    uniform, sigma 1.5 px) on a grid, photons and read noise at ``GAIN``;
    their 15 x 15 boxes and the noise-free sums in them."""
    rng = np.random.default_rng(seed)
    size = n_side * spacing
    grid = np.arange(spacing // 2, size, spacing, dtype=float)
    x, y = (g.ravel() for g in np.meshgrid(grid, grid))
    flux = 10 ** rng.uniform(2.5, 4.5, x.size)
    model = render_stars((size, size), x, y, flux, sigma=1.5)
    data = (rng.poisson((level + model) * GAIN)
            + rng.normal(0.0, READ, model.shape)) / GAIN
    boxes = BoxAperture(np.column_stack([x, y]), 15, 15)
    truth = np.array([model[int(b) - 7:int(b) + 8, int(a) - 7:int(a) + 8]
                      .sum() for a, b in zip(x, y, strict=True)])
    return data, boxes, truth


def _sky(level=LEVEL):
    """The level and pixel scatter as measured (known here, so the pulls
    are the source term's alone)."""
    return SkyEstimate(level, STD, 10 ** 5, error_on_mean=0.0)


def test_rows_whose_missing_source_term_could_matter_are_flagged():
    """Without a gain, every error bar leaves out the stars' photon noise:
    over 12 frames (2352 rows) the pulls spread 1.101 with every row
    flags 0 (before). The rows whose bound exceeds a tenth of their
    variance (stars above about 3,400 ADU here) are flagged: 1166 rows,
    spread 1.158; the other 1186 spread 1.040 (mean -0.058; -0.03 over 24
    frames, as with the gain), their errors within 4.6% of those the
    gain gives."""
    pulls, flagged, ratio = [], [], []
    for seed in range(12):
        data, boxes, truth = _night(seed)
        rows = photometer(data, boxes, _sky())
        flux = np.asarray(rows['aperture_sum'])
        err = np.asarray(rows['aperture_sum_err'])
        pulls.append((flux - truth) / err)
        flagged.append((np.asarray(rows['flags']) & FLAG_NO_SOURCE_TERM) > 0)
        # the error the gain gives: the source term F / g added
        ratio.append(np.sqrt(1 + np.maximum(flux, 0) / GAIN / err ** 2))
    pulls, flagged, ratio = map(np.concatenate, (pulls, flagged, ratio))
    assert np.std(pulls) > 1.08  # the whole set: errors too small
    kept = pulls[~flagged]
    assert kept.size > 1100
    assert abs(np.mean(kept)) < 0.1  # -0.03 over 24 frames, as with the gain
    assert np.std(kept) == pytest.approx(1.0, abs=0.05)
    assert ratio[~flagged].max() < 1.05
    assert ratio[flagged].min() > 1.03  # flagged where it begins to tell
    assert np.std(pulls[flagged]) > 1.15
    data, boxes, _ = _night(0, n_side=4)
    assert not np.any(np.asarray(photometer(data, boxes, _sky(), gain=GAIN)[
        'flags']) & FLAG_NO_SOURCE_TERM)


def test_the_flag_follows_the_sky_bound_row_by_row():
    """The rule on one frame: flux * sigma**2 / level against a tenth of
    the row's variance; the notes count the rows; with the gain, with a
    map taken as the total error, nothing is flagged."""
    data, boxes, _ = _night(1, n_side=6)
    rows = photometer(data, boxes, _sky())
    flux = np.asarray(rows['aperture_sum'])
    variance = np.asarray(rows['aperture_sum_err']) ** 2
    expect = ((flux * STD ** 2 / LEVEL > SOURCE_BOUND_SHARE * variance)
              & (flux > 3 * np.sqrt(variance)))
    got = (np.asarray(rows['flags']) & FLAG_NO_SOURCE_TERM) > 0
    assert 5 < expect.sum() < 31
    np.testing.assert_array_equal(got, expect)
    assert any(f'{expect.sum()} rows flagged 2048' in note
               for note in rows.meta['notes'])
    assert decode_flags(FLAG_NO_SOURCE_TERM) == [
        'no gain: the missing source photon noise could raise the error '
        'by over 5%']
    total = photometer(data, boxes, _sky(),
                       uncertainty=np.full(data.shape, 30.0),
                       budget=BudgetOptions(uncertainty_model='total'))
    assert not np.any(np.asarray(total['flags']) & FLAG_NO_SOURCE_TERM)


def test_a_sky_subtracted_frame_bounds_nothing():
    """A level at or below 0 allows any gain: every row of significant
    flux (over 3 errors) is flagged; blank sky is not judged (its
    positive half flagged, its negative half would pass)."""
    data, boxes, _ = _night(2, n_side=4)
    rows = photometer(data - LEVEL, boxes, SkyEstimate(0.0, STD, 10 ** 5,
                                                      error_on_mean=0.0))
    flux = np.asarray(rows['aperture_sum'])
    got = (np.asarray(rows['flags']) & FLAG_NO_SOURCE_TERM) > 0
    np.testing.assert_array_equal(
        got, flux > 3 * np.asarray(rows['aperture_sum_err']))
    assert got.sum() >= 14  # all but the faintest stars
    blank = photometer(data - LEVEL, BoxAperture(
        [(x, 2.0) for x in range(3, 140, 5)], 5, 5), SkyEstimate(
            0.0, STD, 10 ** 5, error_on_mean=0.0))
    assert (np.asarray(blank['aperture_sum']) > 0).sum() > 5
    assert not np.any(np.asarray(blank['flags']) & FLAG_NO_SOURCE_TERM)


def _described_frame():
    """A frame in ADU whose header names the read noise but no gain."""
    rng = np.random.default_rng(4)
    data = rng.normal(100.0, 5.0, (60, 60))
    data[28:33, 28:33] += 400.0
    return CCDData(data, unit='adu', meta={'RDNOISE': 5.0, 'EXPTIME': 30.0})


@pytest.mark.parametrize('call', ['photometer', 'measure', 'optimal'])
def test_the_missing_gain_warning_names_the_callers_line(call):
    """The warning points at the user's line (it pointed into ``sys`` from
    ``photometer``, one frame too far, as deep calls reach it at another
    depth than ``measure``)."""
    ccd = _described_frame()
    sky = SkyEstimate(100.0, 5.0, 3000, error_on_mean=0.0)
    box = BoxAperture([[30.0, 30.0]], 15, 15)
    with pytest.warns(AstropyUserWarning) as record:
        if call == 'photometer':
            line = _line(); photometer(ccd, box, sky)  # noqa: E702
        elif call == 'measure':
            line = _line(); measure(ccd, box, sky)  # noqa: E702
        else:
            line = _line(); optimal_extraction(ccd, (30.0, 30.0), 1.5, sky)  # noqa: E702
    gain = [w for w in record
            if 'no gain: the header names the detector' in str(w.message)]
    assert len(gain) == 1
    assert gain[0].filename == __file__
    assert gain[0].lineno == line


def _line():
    """The line number of the caller."""
    import inspect

    return inspect.currentframe().f_back.f_lineno
