# Licensed under a 3-clause BSD style license - see LICENSE
"""
Figures of error budgets: one flux's terms, the rows of a `photometer`
table (the highest-SNR ones when there are many) and the distribution of
the term shares over all rows.
"""

import math

import numpy as np

from ..photometry.budget import ErrorBudget
from ..photometry.terms import FIXED_TERMS
from ..utils.columns import VARIANCE_COLUMNS
from ..utils.numbers import positive_integer
from ._base import (
    _EXTRA_COLORS,
    _TERM_COLORS,
    _axes,
    _check_bins,
    _new_figure,
    _plain,
)

__all__ = ['plot_budget', 'plot_budget_table', 'plot_budget_shares',
           'plot_budget_overview', 'budget_from_row']


def plot_budget(budget, *, ax=None):
    """
    Plot an error budget as variance shares: one bar per term.

    Parameters
    ----------
    budget : `~ccdphot_ext.ErrorBudget`
        The budget of one flux (e.g. ``measure(...).budget``).
    ax : `~matplotlib.axes.Axes`, optional
        The axes to draw in; None (default): a new 6 x 4.5 inch pyplot
        figure.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        One bar per term, its height the term's share of the variance in
        percent, annotated with the percentage; the title gives the flux,
        its error and SNR.

    Raises
    ------
    TypeError
        If ``budget`` is not an `~ccdphot_ext.ErrorBudget`.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> from ccdphot_ext import ErrorBudget
    >>> from ccdphot_ext.visualization.figures import plot_budget
    >>> b = ErrorBudget.from_aperture(41349.2, 400, 53.139, gain=2.23)
    >>> ax = plot_budget(b)
    >>> [t.get_text() for t in ax.texts]
    ['98.4%', '1.6%']
    """
    if not isinstance(budget, ErrorBudget):
        raise TypeError('budget must be an ErrorBudget, got '
                        f'{type(budget).__name__}')
    ax = _axes(ax, figsize=(6, 4.5))
    names = list(budget.terms)
    shares = [100.0 * budget.fractions[name] for name in names]
    colors = [_term_color(name, i) for i, name in enumerate(names)]
    bars = ax.bar(names, shares, color=colors)
    for bar, share in zip(bars, shares, strict=True):
        ax.annotate(f'{share:.1f}%', (bar.get_x() + bar.get_width() / 2,
                                      bar.get_height()),
                    ha='center', va='bottom')
    ax.set_ylim(0, 110)
    ax.set_ylabel('Share of the flux variance [%]')
    ax.set_xlabel('Budget term')
    ax.set_title(f'flux {budget.flux:.1f} +/- {budget.error:.1f} '
                 f'(SNR {budget.snr:.1f})')
    return ax


#: The budget columns every `photometer` table has.
_REQUIRED_COLUMNS = VARIANCE_COLUMNS


def _term_columns(table):
    """
    The budget columns of a table and their term names: every ``var_*``
    column, in the order the budget adds its terms (`FIXED_TERMS`, then
    the table's further terms, ``var_selection``, ``var_sky_offset``, ...,
    in table order). Checks the columns every table has.
    """
    missing = [n for n in ('id', *_REQUIRED_COLUMNS)
               if n not in table.colnames]
    if missing:
        raise ValueError(f'table lacks the column(s) {missing}; pass a '
                         'photometer() table')
    found = [c for c in table.colnames if c.startswith('var_')]
    fixed = [f'var_{name}' for name in FIXED_TERMS]
    ordered = ([c for c in fixed if c in found]
               + [c for c in found if c not in fixed])
    return [(c, c[len('var_'):]) for c in ordered]


def _shares(table):
    """The term names and each row's share (percent) of each term, shape
    (terms, rows), NaN for rows without a budget. A signed term (the
    ``selection`` term may be negative) has a negative share; the shares
    of a row sum to 100."""
    columns = _term_columns(table)
    var = np.array([np.nan_to_num(np.asarray(_plain(table[c]), float))
                    for c, _ in columns])
    total = var.sum(axis=0)
    with np.errstate(invalid='ignore', divide='ignore'):
        share = np.where(total > 0, 100.0 * var / total, np.nan)
    return [term for _, term in columns], share


def _term_color(term, index):
    """A term's colour: fixed for the known terms, else from a palette by
    its place in the figure."""
    return _TERM_COLORS.get(term, _EXTRA_COLORS[index % len(_EXTRA_COLORS)])


def _chosen_rows(table, max_rows):
    """The rows to draw, in table order: all, or the ``max_rows`` of
    highest SNR (rows without an SNR last)."""
    n = len(table)
    if n <= max_rows:
        return np.arange(n)
    snr = (_plain(table['snr']) if 'snr' in table.colnames
           else np.zeros(n))
    key = np.where(np.isfinite(snr), snr, -np.inf)
    return np.sort(np.argsort(-key, kind='stable')[:max_rows])


def plot_budget_table(table, *, ax=None, max_rows=40):
    """
    Plot the variance shares of the rows of a photometry table.

    One stacked horizontal bar per row of a `~ccdphot_ext.photometer`
    table, one segment per budget column (every ``var_*`` column, in the
    order the budget adds its terms: ``sky``, ``source``, ``sky_mean``,
    ``flat``, then the table's further terms such as ``selection`` and
    ``sky_offset``). A negative share (a threshold mask's ``selection``
    term may be negative) is drawn leftwards from 0; each row's shares
    sum to 100%.

    Parameters
    ----------
    table : `~astropy.table.QTable`
        With ``id``, ``var_sky``, ``var_source``, ``var_sky_mean`` columns
        and any further ``var_*`` columns (a missing term, NaN, counts as
        zero) and ``snr`` (needed only when there are more than
        ``max_rows`` rows).
    ax : `~matplotlib.axes.Axes`, optional
        The axes to draw in; None (default): a new pyplot figure sized for
        the rows drawn.
    max_rows : int, optional
        Draw at most this many rows (default 40): with more, the
        ``max_rows`` rows of highest SNR (in table order), and the title
        says how many of how many rows are shown and which were left out.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        One horizontal bar per row drawn, one colour per term (the
        legend names them).

    Raises
    ------
    ValueError
        If a budget column is missing or ``max_rows`` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import QTable
    >>> from ccdphot_ext.visualization.figures import plot_budget_table
    >>> t = QTable({'id': np.arange(1, 101), 'snr': np.arange(100.0),
    ...             'var_sky': np.full(100, 9.0),
    ...             'var_source': np.full(100, 1.0),
    ...             'var_sky_mean': np.zeros(100)})
    >>> plot_budget_table(t, max_rows=10).get_title()
    'Error budget of the 10 rows of highest SNR (90 of 100 rows not shown)'
    """
    max_rows = positive_integer(max_rows, 'max_rows')
    terms, share = _shares(table)
    rows = _chosen_rows(table, max_rows)
    share = np.nan_to_num(share[:, rows])
    ax = _axes(ax, figsize=(8, max(3.0, 1.2 + 0.3 * len(rows))))
    ypos = np.arange(len(rows))
    # positive shares stack rightwards from 0, negative ones leftwards
    right = np.zeros(len(rows))
    left = np.zeros(len(rows))
    for i, (term, values) in enumerate(zip(terms, share, strict=True)):
        start = np.where(values < 0, left, right)
        ax.barh(ypos, values, left=start, color=_term_color(term, i),
                label=term)
        right += np.maximum(values, 0.0)
        left += np.minimum(values, 0.0)
    ax.set_yticks(ypos, [str(i) for i in table['id'][rows]])
    ax.invert_yaxis()
    ax.set_xlim(min(0.0, float(np.min(left, initial=0.0))),
                max(100.0, float(np.max(right, initial=0.0))))
    if np.any(left < 0):
        ax.axvline(0.0, color='k', lw=0.8)
    ax.set_xlabel('Share of the flux variance [%]')
    ax.set_ylabel('id')
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0))
    if len(rows) < len(table):
        ax.set_title(f'Error budget of the {len(rows)} rows of highest SNR '
                     f'({len(table) - len(rows)} of {len(table)} rows not '
                     'shown)')
    else:
        ax.set_title('Error budget per aperture')
    return ax


def plot_budget_shares(table, *, ax=None, bins=20):
    """
    Plot histograms of each term's share of the variance over every row.

    One histogram per budget column, as `plot_budget_table` takes them.

    Parameters
    ----------
    table : `~astropy.table.QTable`
        A `~ccdphot_ext.photometer` table, with ``id``, ``var_sky``,
        ``var_source`` and ``var_sky_mean`` columns and any further
        ``var_*`` columns.
    ax : `~matplotlib.axes.Axes`, optional
        The axes to draw in; None (default): a new 6 x 4.5 inch pyplot
        figure.
    bins : int, optional
        The number of histogram bins between 0 and 100% (default 20;
        the range widens to take a negative share).

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        One step histogram per term; the title counts the rows used and
        those left out (no budget: off the frame or no pixel left).

    Raises
    ------
    ValueError
        If a budget column is missing.
    """
    terms, share = _shares(table)
    good = np.all(np.isfinite(share), axis=0)
    ax = _axes(ax, figsize=(6, 4.5))
    # 0-100%, widened to take a negative share (or one above 100%)
    low = min(0.0, float(np.min(share[:, good], initial=0.0)))
    high = max(100.0, float(np.max(share[:, good], initial=0.0)))
    edges = np.linspace(low, high, _check_bins(bins) + 1)
    for i, (term, values) in enumerate(zip(terms, share, strict=True)):
        ax.hist(values[good], bins=edges, histtype='step', lw=1.8,
                color=_term_color(term, i), label=term)
    ax.set_xlabel('Share of the flux variance [%]')
    ax.set_ylabel('Number of rows')
    ax.legend()
    left_out = int(np.sum(~good))
    note = f' ({left_out} without a budget left out)' if left_out else ''
    ax.set_title(f'Term shares over all {int(good.sum())} rows{note}')
    return ax


def plot_budget_overview(table, *, fig=None, max_rows=40):
    """
    Plot the budgets of many stars: ``budget.png`` of the command line.

    The rows of highest SNR (`plot_budget_table`) beside the histograms of
    the term shares over all rows (`plot_budget_shares`).

    Parameters
    ----------
    table : `~astropy.table.QTable`
        A `~ccdphot_ext.photometer` table, with ``id``, ``snr``,
        ``var_sky``, ``var_source`` and ``var_sky_mean`` columns and any
        further ``var_*`` columns.
    fig : `~matplotlib.figure.Figure`, optional
        The figure to draw in (it should be empty); None (default): a new
        pyplot figure sized for the rows drawn.
    max_rows : int, optional
        The most rows the left panel draws (default 40): with more, those
        of highest SNR, and its title says how many were left out.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        Two panels; each title says what was left out.
    """
    shown = min(len(table), positive_integer(max_rows, 'max_rows'))
    if fig is None:
        fig = _new_figure(None, figsize=(14, max(4.5, 1.2 + 0.3 * shown)),
                          layout='constrained')
    grid = fig.add_gridspec(1, 2, width_ratios=(3, 2))
    plot_budget_table(table, ax=fig.add_subplot(grid[0]), max_rows=max_rows)
    plot_budget_shares(table, ax=fig.add_subplot(grid[1]))
    return fig


def budget_from_row(row):
    """
    Rebuild the `~ccdphot_ext.ErrorBudget` of one row of a photometry table.

    Parameters
    ----------
    row : `~astropy.table.Row`
        A row of a `~ccdphot_ext.photometer` table, with ``id``,
        ``aperture_sum``, ``n_pix`` and the ``var_sky``, ``var_source``
        and ``var_sky_mean`` columns; every further ``var_*`` column
        (``var_selection``, ``var_sky_offset``, ...) is a term too. NaN
        terms (absent from the budget) are left out.

    Returns
    -------
    budget : `~ccdphot_ext.ErrorBudget`
        The row's flux, its variance terms (in the table's unit squared)
        and pixel count.

    Raises
    ------
    ValueError
        If the row has no budget (no finite term or flux: an aperture off
        the frame).
    """
    terms = {}
    for col, name in _term_columns(row.table):
        value = float(_plain(row[col]))
        if math.isfinite(value):
            terms[name] = value
    flux = float(_plain(row['aperture_sum']))
    if not terms or not math.isfinite(flux):
        raise ValueError(f'row {row["id"]} has no budget (aperture off the '
                         'frame?)')
    return ErrorBudget(flux, terms, n_pix=float(row['n_pix']))
