# Licensed under a 3-clause BSD style license - see LICENSE
"""
Shared pieces of the figures: matplotlib on demand, axes, term colours,
apertures and skies as the figures take them.
"""

import numpy as np
from photutils.aperture import PixelAperture

from ..aperture.box import BoxAperture
from ..aperture.utils import aperture_weights
from ..background.sky import SkyEstimate, check_sky
from ..utils.numbers import positive_integer

__all__ = []

_INSTALL_HINT = 'pip install "ccdphot_ext[plot]"'


#: The most histogram bins a figure takes (more than its pixels across).
MAX_BINS = 10_000


def _check_bins(bins):
    """``bins`` of a histogram: a whole number from 1 to `MAX_BINS`."""
    return positive_integer(bins, 'bins', maximum=MAX_BINS,
                            bound_note='more bins than a figure has pixels')


#: Colours of the budget terms (stable across figures).
_TERM_COLORS = {'sky': '#4c72b0', 'map': '#4c72b0', 'source': '#dd8452',
                'sky_mean': '#55a868', 'flat': '#c44e52',
                'selection': '#8172b3', 'sky_offset': '#937860',
                'rnoise': '#da8bc3'}

#: Colours of further terms, by their place in a figure.
_EXTRA_COLORS = ('#8c8c8c', '#ccb974', '#64b5cd', '#2f4b7c', '#a05195')


def _new_figure(kind=None, **kwargs):
    """A pyplot figure, or a bare `~matplotlib.figure.Figure` for files."""
    try:
        if kind == 'file':
            from matplotlib.figure import Figure
            return Figure(**kwargs)
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError('figures need matplotlib, an optional dependency: '
                          f'{_INSTALL_HINT}') from exc
    return plt.figure(**kwargs)


def _axes(ax, **kwargs):
    if ax is None:
        ax = _new_figure(None, layout='constrained', **kwargs).add_subplot()
    return ax


def _as_aperture(aperture):
    """A `BoxAperture` from ``np.s_[y0:y1, x0:x1]``, else the aperture."""
    if isinstance(aperture, tuple):
        return BoxAperture.from_slices(aperture)
    if not isinstance(aperture, PixelAperture):
        raise TypeError('aperture must be a BoxAperture, a photutils '
                        'PixelAperture or np.s_[y0:y1, x0:x1], got '
                        f'{type(aperture).__name__}')
    return aperture


def _scalar_sky(sky, index=0):
    """A global `SkyEstimate`: ``sky`` itself or its level ``index``."""
    check_sky(sky)
    if sky.is_global:
        return sky
    value, std, n_pix, error_on_mean = sky.at(index)
    return SkyEstimate(value, std, n_pix, error_on_mean=error_on_mean,
                       method=sky.method, unit=sky.unit)


def _unit_label(frame):
    return str(frame.unit) if frame.unit is not None else 'ADU'


def _cutout(frame, aperture):
    """Slices, weights and the data under an aperture (sky not removed)."""
    slc, weights, _ = aperture_weights(aperture, frame.shape)
    if slc is None:
        raise ValueError('aperture lies entirely off the frame of shape '
                         f'{frame.shape}')
    return slc, weights, np.asarray(frame.data[slc], dtype=float)


def _plain(column):
    return np.asarray(getattr(column, 'value', column), dtype=float)


def _frame_figsize(shape, width=9.0):
    """Width and height (inches) of a frame figure with a colour bar."""
    ny, nx = shape
    return width, max(3.0, 0.85 * width * ny / nx + 0.6)
