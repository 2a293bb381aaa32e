# Licensed under a 3-clause BSD style license - see LICENSE
"""
HTML for Jupyter: the one helper behind the ``_repr_html_`` of budgets,
measurements, sky estimates and noise models.

`html_table` renders a compact table (a title line, a few columns and an
optional share column drawn as a percentage with a small inline bar), as
astropy tables render in a notebook; ``repr`` stays the plain text.
"""

import html
import math

__all__ = []  # internal: the HTML of the objects' _repr_html_

#: Width in pixels of a 100% share bar.
_BAR_PX = 80
_CELL = 'padding:1px 8px;text-align:{align}'


def _bar(share):
    """A percentage and an inline bar ``share`` (0-1) of `_BAR_PX` wide."""
    if share is None or not math.isfinite(share):
        return '', ''
    width = round(_BAR_PX * min(max(share, 0.0), 1.0))
    bar = (f'<span style="display:inline-block;width:{width}px;height:0.75em;'
           'background:#4c72b0;vertical-align:middle"></span>')
    return f'{100 * share:.1f}%', bar


def html_table(title, columns, rows, *, shares=None, muted=None, notes=()):
    """
    A compact HTML table with an optional share column and bar.

    Parameters
    ----------
    title : str
        One line above the table (escaped).
    columns : sequence of str
        Column headings (escaped).
    rows : sequence of sequence
        Cell values, one sequence per row; numbers are shown with ``{:.6g}``,
        anything else as ``str`` (escaped).
    shares : sequence of float or None, optional
        One fraction (0-1) per row, shown as a percentage and an inline bar
        in two extra columns ``share``; None or NaN leaves them empty.
    muted : sequence of bool, optional
        Rows shown in grey italics (e.g. parts shown but not added).
    notes : sequence of str, optional
        Lines below the table.

    Returns
    -------
    html : str

    Examples
    --------
    >>> from ccdphot_ext.utils.html import html_table
    >>> text = html_table('budget', ['term', 'variance'],
    ...                   [('sky', 900.0), ('source', 100.0)],
    ...                   shares=[0.9, 0.1])
    >>> '90.0%' in text and 'width:72px' in text
    True
    """
    muted = muted or [False] * len(rows)
    heads = [*columns, *(('share', '') if shares is not None else ())]
    out = ['<div class="ccdphot-repr">',
           f'<div style="font-weight:bold">{html.escape(title)}</div>',
           '<table style="border-collapse:collapse;font-size:90%">',
           '<tr>' + ''.join(
               f'<th style="{_CELL.format(align="left")}">{html.escape(h)}'
               '</th>' for h in heads) + '</tr>']
    for i, row in enumerate(rows):
        cells = [_cell(value) for value in row]
        if shares is not None:
            cells.extend(_bar(shares[i]))
        style = ' style="color:#777;font-style:italic"' if muted[i] else ''
        out.append(f'<tr{style}>' + ''.join(
            f'<td style="{_CELL.format(align=_align(c, j))}">{c}</td>'
            for j, c in enumerate(cells)) + '</tr>')
    out.append('</table>')
    out.extend(f'<div style="font-size:85%">{html.escape(note)}</div>'
               for note in notes)
    out.append('</div>')
    return '\n'.join(out)


def _cell(value):
    if isinstance(value, (bool, str)) or value is None:
        return html.escape(str(value))
    try:
        return f'{float(value):.6g}'
    except (TypeError, ValueError):
        return html.escape(str(value))


def _align(cell, index):
    return 'left' if index == 0 or cell.startswith('<span') else 'right'
