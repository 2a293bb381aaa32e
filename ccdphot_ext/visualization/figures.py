# Licensed under a 3-clause BSD style license - see LICENSE
"""
Figures of the notebook's steps, drawn with matplotlib.

matplotlib is an optional dependency (``pip install "ccdphot_ext[plot]"``)
imported only when a figure is drawn. Every function draws into the
``ax`` (or ``fig``) it is given, or into a new pyplot figure, and returns
what it drew into, so figures compose and can be inspected. They live in
one module per family (one star, budgets, the frame) and are all
importable from here:

============================  ===============================================
`plot_cutout`                 the box cutout and its pixel histogram
`plot_threshold_contour`      the n-sigma contour (the mask) on the cutout
`plot_residual_background`    histogram of box pixels left out by the mask
`plot_curve_of_growth`        flux against aperture size
`plot_star_summary`           one star's six panels on one page
`plot_budget`                 one flux's variance terms as shares
`plot_budget_table`           the shares of a `photometer` table's rows (the
                              highest-SNR ones when there are many)
`plot_budget_shares`          histograms of each term's share over all rows
`plot_budget_overview`        both, on one page (``budget.png``)
`plot_frame`                  the frame (z-scale) with apertures and ids;
                              markers and the top ids only when crowded
============================  ===============================================

`notebook_figures` draws them all for one star and `save_figures` writes
them as PNG files (each written atomically).
"""

import os
from functools import partial

from ..background.sky import SkyEstimate
from ..photometry.measurement import measure
from ..utils.files import atomic_write
from ..utils.inputs import as_frame
from ..utils.numbers import positive_scalar
from ._base import _as_aperture, _frame_figsize, _new_figure
from .budget import *  # noqa: F403
from .budget import plot_budget
from .frame import *  # noqa: F403
from .frame import plot_frame
from .star import *  # noqa: F403
from .star import (
    _as_threshold,
    plot_curve_of_growth,
    plot_cutout,
    plot_residual_background,
    plot_threshold_contour,
)

__all__ = ['notebook_figures', 'save_figures']


def notebook_figures(data=None, aperture=None, sky=None, *, threshold=None,
                     gain=None, overview=None, ids=None):
    """
    Draw every figure of the notebook for one star, without pyplot.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`, optional
        The 2-D frame, sky not subtracted; None (default): the bundled
        `~ccdphot_ext.sample_frame`.
    aperture : `~photutils.aperture.PixelAperture` or tuple, optional
        One position: a `~ccdphot_ext.BoxAperture`, a photutils pixel
        aperture, or ``np.s_[y0:y1, x0:x1]`` for the box over those
        pixels; None (default): the notebook's first box,
        ``np.s_[158:178, 492:512]``.
    sky : `~ccdphot_ext.SkyEstimate`, optional
        The sky subtracted; None (default): the plain mean and standard
        deviation of the frame, stars not masked (the notebook's).
    threshold : `~ccdphot_ext.SigmaThreshold` or float, optional
        The mask of the contour and residual-background figures: a
        threshold, or a number ``n_sigma`` for the pixel selection. None
        (default): ``SigmaThreshold(2.0, selection='pixel')`` (the
        notebook's).
    gain : float or `~astropy.units.Quantity`, optional
        The detector gain in e-/ADU for the budget and the curve of growth;
        None (default): the header's (GAIN/EGAIN/CCDGAIN), else no source
        Poisson term.
    overview : `~photutils.aperture.PixelAperture` or list of them, optional
        The apertures drawn on the ``overview`` figure; None (default):
        ``aperture``.
    ids : sequence, optional
        The labels of the ``overview`` apertures, one per position; None
        (default): 1, 2, ...

    Returns
    -------
    figures : dict
        Name to `~matplotlib.figure.Figure`: ``cutout``, ``mask_contour``,
        ``residual_background``, ``budget``, ``curve_of_growth``,
        ``overview``. They are not registered with pyplot; write them with
        `save_figures`.

    Raises
    ------
    ImportError
        If matplotlib is not installed.
    """
    from ..datasets.sample import NOTEBOOK_BOXES, sample_frame

    data = sample_frame() if data is None else data
    aperture = _as_aperture(NOTEBOOK_BOXES['star1'] if aperture is None
                            else aperture)
    frame = as_frame(data)
    if sky is None:
        sky = SkyEstimate.from_image(frame.data, method='mean',
                                     mask_sources=False)
    threshold = _as_threshold(threshold)
    figs = {}
    figs['cutout'] = plot_cutout(frame, aperture, sky=sky,
                                 fig=_new_figure('file', figsize=(12, 5)))
    ax = _new_figure('file', figsize=(7, 6)).add_subplot()
    plot_threshold_contour(frame, aperture, sky, threshold=threshold, ax=ax)
    figs['mask_contour'] = ax.figure
    ax = _new_figure('file', figsize=(7, 5)).add_subplot()
    plot_residual_background(frame, aperture, sky, threshold=threshold, ax=ax)
    figs['residual_background'] = ax.figure
    res = measure(data, aperture, sky, gain=gain)
    ax = _new_figure('file', figsize=(6, 4.5)).add_subplot()
    plot_budget(res.budget, ax=ax)
    figs['budget'] = ax.figure
    ax = _new_figure('file', figsize=(7, 5)).add_subplot()
    plot_curve_of_growth(data, aperture, sky, gain=gain, ax=ax)
    figs['curve_of_growth'] = ax.figure
    ax = _new_figure('file', figsize=_frame_figsize(frame.shape)).add_subplot()
    plot_frame(frame, aperture if overview is None else overview, ids=ids,
               ax=ax)
    figs['overview'] = ax.figure
    for fig in figs.values():
        fig.set_layout_engine('tight')
    return figs


#: the largest resolution of `save_figures` (dots per inch)
MAX_DPI = 2400


def save_figures(figures, outdir, *, dpi=100, prefix=''):
    """
    Write figures as PNG files, each atomically.

    Each file is written to a temporary name in ``outdir`` and then renamed,
    so an existing file is never left half-written.

    Parameters
    ----------
    figures : dict
        The figures by name (`~matplotlib.figure.Figure` values, such as
        `notebook_figures` returns); each is written to
        ``{prefix}{name}.png``, replacing a file of that name.
    outdir : str or path-like
        The folder to write in, created if missing.
    dpi : int, optional
        The resolution in dots per inch (default 100).
    prefix : str, optional
        Prepended to every file name (default none).

    Returns
    -------
    paths : list of str
        The files written, in the order of ``figures``.

    Raises
    ------
    TypeError
        If a value of ``figures`` is not a figure (nothing is written).
    ValueError
        If a name is not a plain file name (``'../x'``, ``'a/b'``).
    """
    dpi = positive_scalar(dpi, 'dpi', allow_none=False, maximum=MAX_DPI,
                          bound_note='beyond print resolution a figure '
                          'takes gigabytes')
    for name, fig in figures.items():  # all checked before any is written
        if not hasattr(fig, 'savefig'):
            raise TypeError(f'figures[{name!r}] must be a matplotlib Figure, '
                            f'got {type(fig).__name__}')
        if not isinstance(name, str) or os.path.basename(name) != name or (
                name in ('', '.', '..')):
            raise ValueError(f'figures: name {name!r} is not a plain file '
                             'name (it would be written outside outdir)')
    outdir = os.fspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = os.path.join(outdir, f'{prefix}{name}.png')
        atomic_write(path, partial(fig.savefig, format='png', dpi=dpi),
                     label='figure')
        paths.append(path)
    return paths
