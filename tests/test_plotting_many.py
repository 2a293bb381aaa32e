"""Figures for many stars: the budget figure shows the highest-SNR rows and
the term shares of all rows and says what it left out; the overview stays
readable with hundreds of apertures."""

import os

import matplotlib

matplotlib.use('Agg')

import matplotlib.image as mpimg
import numpy as np
from astropy.table import QTable, Table
from clirun import ccdphot
from photutils.aperture import CircularAperture

from ccdphot_ext.visualization.figures import (
    plot_budget_overview,
    plot_budget_shares,
    plot_budget_table,
    plot_frame,
)


def _table(n=100, seed=3):
    rng = np.random.default_rng(seed)
    snr = rng.uniform(1, 200, n)
    snr[5] = np.nan  # a row without a budget
    var_sky = rng.uniform(1, 10, n)
    var_source = rng.uniform(0, 5, n)
    var_sky_mean = rng.uniform(0, 1, n)
    for col in (var_sky, var_source, var_sky_mean):
        col[5] = np.nan
    return QTable({'id': np.arange(101, 101 + n), 'snr': snr,
                   'var_sky': var_sky, 'var_source': var_source,
                   'var_sky_mean': var_sky_mean})


def test_budget_table_shows_highest_snr_and_says_so():
    table = _table()
    ax = plot_budget_table(table, max_rows=40)
    top = np.argsort(-np.nan_to_num(table['snr'], nan=-1))[:40]
    expected_ids = [str(i) for i in table['id'][np.sort(top)]]
    assert [t.get_text() for t in ax.get_yticklabels()] == expected_ids
    assert len(ax.patches) == 3 * 40
    assert ax.get_title() == ('Error budget of the 40 rows of highest SNR '
                              '(60 of 100 rows not shown)')
    # widths are the chosen rows' shares
    widths = np.array([p.get_width() for p in ax.patches]).reshape(3, -1)
    rows = np.sort(top)
    var = np.array([np.asarray(table[c])[rows] for c in
                    ('var_sky', 'var_source', 'var_sky_mean')])
    np.testing.assert_allclose(widths, 100 * var / var.sum(axis=0),
                               rtol=1e-12)


def test_budget_shares_histograms_count_every_row():
    table = _table()
    ax = plot_budget_shares(table, bins=10)
    assert ax.get_title() == ('Term shares over all 99 rows (1 without a '
                              'budget left out)')
    sky_share = 100 * table['var_sky'] / (table['var_sky']
                                          + table['var_source']
                                          + table['var_sky_mean'])
    counts, _ = np.histogram(sky_share[np.isfinite(sky_share)],
                             bins=np.linspace(0, 100, 11))
    # the first step patch is the sky term: its heights are the counts
    heights = ax.patches[0].get_path().vertices[1:-1:2, 1]
    np.testing.assert_array_equal(heights[:len(counts)], counts)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        'sky', 'source', 'sky_mean']


def test_budget_overview_two_panels():
    fig = plot_budget_overview(_table(), max_rows=25)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].endswith('(75 of 100 rows not shown)')
    assert titles[1].startswith('Term shares over all 99 rows')


def test_overview_with_hundreds_of_apertures():
    rng = np.random.default_rng(4)
    img = rng.normal(100.0, 5.0, (300, 300))
    xy = rng.uniform(10, 290, (361, 2))
    snr = rng.uniform(0, 100, 361)
    ax = plot_frame(img, CircularAperture(xy, 4), ids=np.arange(1, 362),
                    priority=snr, priority_name='SNR', max_labels=20)
    assert len(ax.patches) == 0  # markers, not 361 outlines
    marks = ax.lines[0]
    np.testing.assert_array_equal(marks.get_xdata(), xy[:, 0])
    labels = [t.get_text() for t in ax.texts[:-1]]
    top = np.sort(np.argsort(-snr)[:20]) + 1
    assert labels == [str(i) for i in top]
    assert ax.texts[-1].get_text() == ('361 apertures drawn as markers; ids '
                                       'shown for the 20 of highest SNR')
    few = plot_frame(img, CircularAperture(xy[:5], 4))
    assert len(few.patches) == 5 and len(few.texts) == 5  # no note


def test_cli_plots_for_many_stars(tmp_path, sample_ccd):
    """``measure --plot`` with 150 positions: both figures written."""
    sample_ccd.write(tmp_path / 'sample.fits')
    rng = np.random.default_rng(5)
    Table({'x': rng.uniform(20, 740, 150), 'y': rng.uniform(20, 490, 150)}
          ).write(tmp_path / 'pos.csv')
    code, _, err = ccdphot('measure', tmp_path / 'sample.fits',
                           '--positions', tmp_path / 'pos.csv', '--size',
                           '9', '--plot', tmp_path / 'plots',
                           '--plot-stars', '1', '-o', tmp_path / 'out.ecsv')
    assert code == 0, err
    names = sorted(os.listdir(tmp_path / 'plots'))
    assert names[:2] == ['budget.png', 'overview.png'] and len(names) == 3
    budget = mpimg.imread(tmp_path / 'plots' / 'budget.png')
    assert budget.shape[1] == 1400  # two panels, 14 inches at 100 dpi
