# Licensed under a 3-clause BSD style license - see LICENSE
"""
How a `~ccdphot_ext.SkyEstimate` shows itself: the one-line ``repr`` and
the HTML table of Jupyter, for one level, one level per aperture or a map.
"""

import numpy as np

from ..utils.html import html_table

__all__ = []  # internal module: used by background.sky


def _html_rows(sky):
    """The (quantity, value) rows of the HTML table."""
    un = '' if sky.unit is None else f' [{sky.unit}]'
    if sky.is_map:
        return [('shape', str(sky.shape)),
                (f'median level{un}', float(np.median(sky.value))),
                (f'median std per pixel{un}', float(np.median(sky.std))),
                *((key, str(sky.meta[key])) for key in
                  ('bkg_estimator', 'box_size', 'filter_size')
                  if key in sky.meta)]
    if sky.isscalar:
        return [(f'level{un}', sky.value),
                (f'std per pixel{un}', sky.std),
                ('pixels', sky.n_pix),
                (f'error of the level{un}', sky.error_on_mean)]
    return [('apertures', len(sky)),
            (f'median level{un}', float(np.nanmedian(sky.value))),
            (f'median std per pixel{un}', float(np.nanmedian(sky.std))),
            (f'median error of the level{un}',
             float(np.nanmedian(sky.error_on_mean)))]


def sky_html(sky):
    """The estimate as a compact HTML table (Jupyter)."""
    return html_table(f'SkyEstimate ({sky.method})', ('quantity', 'value'),
                      _html_rows(sky))


def sky_repr(sky):
    """The estimate in one line."""
    if sky.is_map:
        return (f'<SkyEstimate method={sky.method!r} map shape='
                f'{sky.shape} median={np.median(sky.value):.6g}>')
    if sky.isscalar:
        return (f'<SkyEstimate method={sky.method!r} value={sky.value:.6g}'
                f' std={sky.std:.6g} n_pix={sky.n_pix} '
                f'error_on_mean={sky.error_on_mean:.3g}>')
    return (f'<SkyEstimate method={sky.method!r} per-aperture '
            f'(n={len(sky)})>')
