"""The budget figures draw every term a photometry table carries (the
threshold mask's ``selection``, the whole-frame level's ``sky_offset``,
...), in the order the budget adds them; a negative ``selection`` share
is drawn leftwards and the shares of a row still sum to 100%."""

import matplotlib

matplotlib.use('Agg')

import numpy as np
import pytest
from astropy.table import QTable
from expected_warnings import gradient_warning

from ccdphot_ext import (
    NOTEBOOK_BOXES,
    BoxAperture,
    SigmaThreshold,
    SkyEstimate,
    photometer,
)
from ccdphot_ext.photometry.terms import FIXED_TERMS
from ccdphot_ext.visualization.figures import (
    budget_from_row,
    plot_budget,
    plot_budget_overview,
    plot_budget_shares,
    plot_budget_table,
)

#: The terms of a thresholded photometer table against the whole-frame
#: level, in the budget's order.
TERMS = ['sky', 'source', 'sky_mean', 'selection', 'sky_offset']


@pytest.fixture(scope='module')
def masked_table(sample_ccd):
    boxes = [BoxAperture.from_slices(s) for s in NOTEBOOK_BOXES.values()]
    with gradient_warning():
        return photometer(sample_ccd, boxes,
                          SkyEstimate.from_image(sample_ccd), gain=2.23,
                          threshold=SigmaThreshold(2.0))


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _signed_widths(ax, n_terms):
    return np.array([p.get_width() for p in ax.patches]).reshape(n_terms, -1)


def test_table_figure_draws_every_term(masked_table):
    table = masked_table
    columns = [f'var_{t}' for t in TERMS]
    assert [c for c in table.colnames if c.startswith('var_')] == columns
    ax = plot_budget_table(table)
    assert _legend(ax) == TERMS
    widths = _signed_widths(ax, len(TERMS))
    var = np.array([table[c].value for c in columns])
    np.testing.assert_allclose(widths, 100 * var / var.sum(axis=0),
                               rtol=1e-12)
    np.testing.assert_allclose(widths.sum(axis=0), 100.0, rtol=1e-12)
    # the new terms are drawn and matter: the offset dominates star 3
    assert np.all(widths[3] > 0) and np.all(widths[4] > 0)
    assert widths[4].max() > 90.0
    # the figure's total is the error bar's: sum of the terms = err**2
    np.testing.assert_allclose(var.sum(axis=0),
                               table['aperture_sum_err'].value ** 2,
                               rtol=1e-12)


def test_shares_figure_draws_every_term(masked_table):
    ax = plot_budget_shares(masked_table, bins=10)
    assert _legend(ax) == TERMS
    assert len(ax.patches) == len(TERMS)
    var = np.array([masked_table[f'var_{t}'].value for t in TERMS])
    share = 100 * var / var.sum(axis=0)
    # each step histogram counts every row once, the offset's included
    for patch, values in zip(ax.patches, share, strict=True):
        heights = patch.get_path().vertices[1:-1:2, 1]
        assert heights.sum() == len(masked_table)
        counts, _ = np.histogram(values, bins=np.linspace(0, 100, 11))
        np.testing.assert_array_equal(heights[:10], counts)
    fig = plot_budget_overview(masked_table)
    assert [_legend(a) for a in fig.axes] == [TERMS, TERMS]


def test_budget_from_row_takes_every_term(masked_table):
    row = masked_table[2]
    b = budget_from_row(row)
    assert list(b.terms) == TERMS
    assert b.error == pytest.approx(row['aperture_sum_err'].value, rel=1e-12)
    ax = plot_budget(b)
    assert [t.get_text() for t in ax.get_xticklabels()] == TERMS
    heights = np.array([p.get_height() for p in ax.patches])
    assert heights.sum() == pytest.approx(100.0, rel=1e-12)


def _odd_table():
    """A negative ``selection`` share, a flat-field term, an array term
    and columns out of the budget's order."""
    return QTable({
        'id': np.arange(1, 5), 'snr': np.array([5.0, 20.0, 50.0, np.nan]),
        'var_sky_offset': np.array([10.0, 0.0, 5.0, np.nan]),
        'var_rnoise': np.array([4.0, 4.0, 4.0, np.nan]),
        'var_selection': np.array([-30.0, 20.0, -5.0, np.nan]),
        'var_sky': np.array([100.0, 50.0, 80.0, np.nan]),
        'var_flat': np.array([1.0, 2.0, 3.0, np.nan]),
        'var_source': np.array([10.0, 200.0, 900.0, np.nan]),
        'var_sky_mean': np.array([5.0, 5.0, 5.0, np.nan])})


def test_order_and_negative_shares():
    table = _odd_table()
    expected = [*FIXED_TERMS, 'sky_offset', 'rnoise', 'selection']
    assert expected[:4] == ['sky', 'source', 'sky_mean', 'flat']
    ax = plot_budget_table(table)
    assert _legend(ax) == expected
    widths = _signed_widths(ax, len(expected))
    lefts = np.array([p.get_x() for p in ax.patches]).reshape(widths.shape)
    var = np.nan_to_num(np.array([table[f'var_{t}'] for t in expected]))
    total = var.sum(axis=0)
    np.testing.assert_allclose(widths[:, :3], 100 * var[:, :3] / total[:3],
                               rtol=1e-12)
    np.testing.assert_allclose(widths[:, :3].sum(axis=0), 100.0, rtol=1e-12)
    assert np.all(widths[:, 3] == 0.0)  # a row without a budget
    # row 1: the negative selection share is drawn leftwards from 0, the
    # others stacked rightwards to 100% plus its size
    sel = expected.index('selection')
    assert widths[sel, 0] == pytest.approx(-100 * 30 / total[0])
    assert lefts[sel, 0] == 0.0
    ends = lefts[:, 0] + widths[:, 0]
    assert ends.max() == pytest.approx(100 * (total[0] + 30) / total[0])
    lo, hi = ax.get_xlim()
    assert lo == pytest.approx(widths[sel, 0]) and hi == pytest.approx(
        ends.max())
    # row 2: all positive, the stack ends at 100%
    assert (lefts[:, 1] + widths[:, 1]).max() == pytest.approx(100.0)

    ax = plot_budget_shares(table, bins=5)
    assert _legend(ax) == expected
    assert ax.get_title() == ('Term shares over all 3 rows (1 without a '
                              'budget left out)')
    # the bins take the negative share
    xs = ax.patches[sel].get_path().vertices[:, 0]
    assert xs.min() == pytest.approx(widths[sel, 0])
    heights = ax.patches[sel].get_path().vertices[1:-1:2, 1]
    assert heights.sum() == 3


def test_missing_budget_columns_are_named():
    table = _odd_table()
    del table['var_sky_mean']
    with pytest.raises(ValueError, match='var_sky_mean'):
        plot_budget_table(table)
    with pytest.raises(ValueError, match='var_sky_mean'):
        plot_budget_shares(table)
