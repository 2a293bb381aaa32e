# Licensed under a 3-clause BSD style license - see LICENSE
"""
Figures of one star: the cutout and its histogram, the threshold contour,
the residual background, the curve of growth, and all of them on one page.
"""

import math

import numpy as np

from ..aperture.utils import aperture_size
from ..background.threshold import SigmaThreshold
from ..photometry.measurement import measure
from ..utils.inputs import as_frame, positive_scalar
from ._base import (
    _as_aperture,
    _axes,
    _check_bins,
    _cutout,
    _new_figure,
    _plain,
    _scalar_sky,
    _unit_label,
)
from .budget import plot_budget

__all__ = ['plot_cutout', 'plot_threshold_contour', 'plot_residual_background',
           'plot_curve_of_growth', 'plot_star_summary', 'PLOT_GROWTH_SCALES']


def plot_cutout(data, aperture, *, sky=None, bins=50, fig=None):
    """
    Plot the notebook's cutout figure: the pixels of a box and their histogram.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
        The 2-D frame, sky not subtracted (a `~astropy.nddata.CCDData`'s
        mask and unit are used).
    aperture : `~ccdphot_ext.BoxAperture`, `~photutils.aperture.PixelAperture` or tuple
        One position: a box, a photutils pixel aperture, or
        ``np.s_[y0:y1, x0:x1]`` for the box over those pixels.
    sky : `~ccdphot_ext.SkyEstimate`, optional
        If given, its level (a global level, or the first level of a
        per-aperture sky) is subtracted first (the notebook's second
        cutout figure); None (default): the raw pixels.
    bins : int, optional
        The number of histogram bins (default 50, the notebook's).
    fig : `~matplotlib.figure.Figure`, optional
        The figure to draw into (its contents are kept); None (default): a
        new 12 x 5 inch pyplot figure.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        With the image axes, its colour bar and the histogram axes.

    Raises
    ------
    TypeError
        If ``aperture`` is not a pixel aperture or a tuple of slices, or
        ``sky`` is not a `~ccdphot_ext.SkyEstimate`.
    ValueError
        If the aperture lies entirely off the frame.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import sample_frame
    >>> from ccdphot_ext.visualization.figures import plot_cutout
    >>> fig = plot_cutout(sample_frame(), np.s_[158:178, 492:512])
    >>> [ax.get_xlabel() for ax in fig.axes]
    ['Cutout X-position relative to X=492', 'Pixel value [adu]', '']
    """
    frame = as_frame(data)
    aperture = _as_aperture(aperture)
    if sky is not None:
        sky = _scalar_sky(sky)
    if fig is None:
        fig = _new_figure(None, figsize=(12, 5), layout='constrained')
    _draw_cutout(frame, aperture, sky, fig.add_subplot(1, 2, 1),
                 fig.add_subplot(1, 2, 2), bins=bins)
    return fig


def _draw_cutout(frame, aperture, sky, ax_img, ax_hist, *, bins=50):
    slc, _, cut = _cutout(frame, aperture)
    if sky is not None:
        cut = cut - sky.at(0)[0]
    unit = _unit_label(frame)
    im = ax_img.imshow(cut, cmap='gray', origin='lower')
    ax_img.figure.colorbar(im, ax=ax_img, label=unit)
    ax_img.set_xlabel(f'Cutout X-position relative to X={slc[1].start}')
    ax_img.set_ylabel(f'Cutout Y-position relative to Y={slc[0].start}')
    what = 'sky-subtracted ' if sky is not None else ''
    ax_img.set_title(f'{what}cutout [{slc[0].start}:{slc[0].stop}, '
                     f'{slc[1].start}:{slc[1].stop}]')
    finite = cut[np.isfinite(cut)]
    ax_hist.hist(finite, bins=_check_bins(bins), color='0.4')
    ax_hist.set_xlabel(f'Pixel value [{unit}]')
    ax_hist.set_ylabel('Number of pixels')
    ax_hist.set_title(f'{finite.size} pixels')


def plot_threshold_contour(data, aperture, sky, *, threshold=None, ax=None):
    """
    Plot the threshold contour (the notebook's 2-sigma mask) on the cutout.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
        The 2-D frame, sky not subtracted (a `~astropy.nddata.CCDData`'s
        mask and unit are used).
    aperture : `~ccdphot_ext.BoxAperture`, `~photutils.aperture.PixelAperture` or tuple
        One position: a box, a photutils pixel aperture, or
        ``np.s_[y0:y1, x0:x1]`` for the box over those pixels.
    sky : `~ccdphot_ext.SkyEstimate`
        Its level is subtracted and its ``std`` sets the contour level (a
        global sky, or the first level of a per-aperture sky).
    threshold : `~ccdphot_ext.SigmaThreshold` or float, optional
        The mask: a threshold, or a number ``n_sigma`` for the pixel
        selection ``SigmaThreshold(n_sigma, selection='pixel')``. None
        (default): ``SigmaThreshold(2.0, selection='pixel')``, the
        notebook's (biased high: see `~ccdphot_ext.SigmaThreshold`).
    ax : `~matplotlib.axes.Axes`, optional
        The axes to draw in; None (default): a new pyplot figure.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The contour is drawn at ``n_sigma * sky.std``; the title gives the
        pixels selected and their sum (as `measure` with this threshold).
    """
    frame, aperture, sky, threshold = _star_inputs(data, aperture, sky,
                                                   threshold)
    slc, _, cut = _cutout(frame, aperture)
    level_sky, std = sky.at(0)[:2]
    cut = cut - level_sky
    level = threshold.n_sigma * std
    res = measure(frame, aperture, sky, threshold=threshold)
    ax = _axes(ax, figsize=(7, 6))
    im = ax.imshow(cut, cmap='gray', origin='lower')
    ax.figure.colorbar(im, ax=ax, label=f'Counts [{_unit_label(frame)}]')
    if threshold.biased:  # the notebook's contour, at n_sigma * sky.std
        ax.contour(cut, levels=[level], colors=['r'])
    else:  # the smoothed selection: the outline of the pixels kept
        ax.contour(res.weights > 0, levels=[0.5], colors=['r'])
    ax.set_xlabel(f'X pixel of cutout (frame X={slc[1].start} + x)')
    ax.set_ylabel(f'Y pixel of cutout (frame Y={slc[0].start} + y)')
    ax.set_title(f'{threshold.n_sigma:g}-sigma mask: {res.n_pix:.0f} pixels, '
                 f'sum {res.flux:.1f}')
    return ax


def _star_inputs(data, aperture, sky, threshold):
    """The frame, the pixel aperture, the one-level sky and the threshold
    (the notebook's 2-sigma pixel mask by default) of a star's panel."""
    return (as_frame(data), _as_aperture(aperture), _scalar_sky(sky),
            _as_threshold(threshold))


def _as_threshold(threshold):
    """The notebook's (biased) 2-sigma pixel mask unless told otherwise."""
    if threshold is None:
        return SigmaThreshold(2.0, selection='pixel')
    if isinstance(threshold, SigmaThreshold):
        return threshold
    return SigmaThreshold(positive_scalar(threshold, 'threshold',
                                          allow_none=False),
                          selection='pixel')


def plot_residual_background(data, aperture, sky, *, threshold=None, bins=30,
                             ax=None):
    """
    Plot the histogram of the box pixels the threshold mask left out.

    The notebook's systematic-error check: those pixels should scatter about
    zero once the sky is subtracted; a shifted histogram means background
    the global sky missed.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
        The 2-D frame, sky not subtracted (a `~astropy.nddata.CCDData`'s
        mask and unit are used).
    aperture : `~ccdphot_ext.BoxAperture`, `~photutils.aperture.PixelAperture` or tuple
        One position: a box, a photutils pixel aperture, or
        ``np.s_[y0:y1, x0:x1]`` for the box over those pixels.
    sky : `~ccdphot_ext.SkyEstimate`
        The level subtracted (a global sky, or the first level of a
        per-aperture sky).
    threshold : `~ccdphot_ext.SigmaThreshold` or float, optional
        The mask: a threshold, or a number ``n_sigma`` for the pixel
        selection ``SigmaThreshold(n_sigma, selection='pixel')``. None
        (default): ``SigmaThreshold(2.0, selection='pixel')``, the
        notebook's (biased high: see `~ccdphot_ext.SigmaThreshold`).
    bins : int, optional
        The number of histogram bins (default 30).
    ax : `~matplotlib.axes.Axes`, optional
        The axes to draw in; None (default): a new pyplot figure.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        Vertical lines at zero and at the mean; the title gives the number
        of pixels, their mean and their sum.
    """
    frame, aperture, sky, threshold = _star_inputs(data, aperture, sky,
                                                   threshold)
    res = measure(frame, aperture, sky, threshold=threshold)
    _, weights, cut = _cutout(frame, aperture)
    left = (weights > 0) & (res.weights == 0) & np.isfinite(cut)
    if frame.mask is not None:
        left &= ~frame.mask[res.slices]
    values = cut[left] - sky.at(0)[0]
    ax = _axes(ax, figsize=(7, 5))
    unit = _unit_label(frame)
    if values.size:
        ax.hist(values, bins=_check_bins(bins), color='0.5')
        mean = float(values.mean())
        ax.axvline(mean, color='r', label=f'mean {mean:.1f}')
    else:
        mean = math.nan
    ax.axvline(0.0, color='k', ls='--', label='zero')
    ax.legend()
    ax.set_xlabel(f'Sky-subtracted pixel value [{unit}]')
    ax.set_ylabel('Number of pixels')
    ax.set_title(f'Outside the mask: {values.size} pixels, mean {mean:.1f}, '
                 f'sum {values.sum():.1f}')
    return ax


#: Default scales of `plot_curve_of_growth`: 0.1 to 2 times the aperture,
#: finer than `~ccdphot_ext.analysis.GROWTH_SCALES` (the scales measured
#: for the aperture correction) so that the curve is drawn smooth.
PLOT_GROWTH_SCALES = tuple(i / 10 for i in range(1, 21))


def plot_curve_of_growth(data, aperture, sky, *, scales=PLOT_GROWTH_SCALES,
                         mark=True, ax=None, **kwargs):
    """
    Plot the curve of growth: flux against aperture size, with error bars.

    The fluxes are `~ccdphot_ext.growth_curve`'s: the aperture scaled by
    each of ``scales`` about its centre, each measured with
    `~ccdphot_ext.measure`. A curve that keeps rising beyond the star means background
    the sky estimate missed (the notebook's systematic error); one that
    flattens gives the aperture correction.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
        The 2-D frame, sky not subtracted (a `~astropy.nddata.CCDData`'s
        mask and unit are used).
    aperture : `~ccdphot_ext.BoxAperture`, photutils aperture or tuple
        One position: a box, a photutils circular, elliptical or
        rectangular pixel aperture, or ``np.s_[y0:y1, x0:x1]`` for the box
        over those pixels.
    sky : `~ccdphot_ext.SkyEstimate`
        The level subtracted (a global sky, or the first level of a
        per-aperture sky).
    scales : sequence of float, optional
        The positive size factors (default `PLOT_GROWTH_SCALES`: 0.1 to 2
        in steps of 0.1).
    mark : bool, optional
        Whether to mark the aperture's own size (scale 1) with a vertical
        line (default True).
    ax : `~matplotlib.axes.Axes`, optional
        The axes to draw in; None (default): a new pyplot figure.
    **kwargs
        Passed to every `~ccdphot_ext.measure`: ``gain``, ``noise``,
        ``threshold``, ``detector``, ``budget``, ``sum_method``,
        ``subpixels``, ``uncertainty`` and ``mask``.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The first line holds ``size`` and ``flux`` of the growth table.
    """
    from ..analysis.systematics import growth_curve

    aperture = _as_aperture(aperture)
    sky = _scalar_sky(sky)
    table = growth_curve(data, aperture, sky, scales=scales, **kwargs)
    ax = _axes(ax, figsize=(7, 5))
    ax.errorbar(table['size'], _plain(table['flux']),
                yerr=_plain(table['flux_err']), marker='o', ms=4, capsize=2,
                label='flux')
    size, name = aperture_size(aperture)
    if mark:
        ax.axvline(size, color='r', ls=':', label=f'aperture ({size:g})')
    ax.axhline(0.0, color='k', lw=0.5)
    unit = _unit_label(as_frame(data))
    ax.set_xlabel(f'{name} [pixels]')
    ax.set_ylabel(f'Flux [{unit}]')
    ax.set_title('Curve of growth')
    ax.legend(loc='lower right')
    return ax


def plot_star_summary(data, aperture, sky, *, budget=None, threshold=None,
                      gain=None, title=None, fig=None):
    """
    Plot one star on one page.

    Its cutout, histogram, mask contour, residual background, curve of
    growth and budget shares.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
        The 2-D frame, sky not subtracted (a `~astropy.nddata.CCDData`'s
        mask and unit are used).
    aperture : `~ccdphot_ext.BoxAperture`, `~photutils.aperture.PixelAperture` or tuple
        One position: a box, a photutils pixel aperture, or
        ``np.s_[y0:y1, x0:x1]`` for the box over those pixels.
    sky : `~ccdphot_ext.SkyEstimate`
        The star's sky (a global level, or the first level of a
        per-aperture sky).
    budget : `~ccdphot_ext.ErrorBudget`, optional
        The budget drawn; None (default): the budget of
        `~ccdphot_ext.measure` with ``gain``.
    threshold : `~ccdphot_ext.SigmaThreshold` or float, optional
        The mask: a threshold, or a number ``n_sigma`` for the pixel
        selection ``SigmaThreshold(n_sigma, selection='pixel')``. None
        (default): ``SigmaThreshold(2.0, selection='pixel')``, the
        notebook's (biased high: see `~ccdphot_ext.SigmaThreshold`).
    gain : float or `~astropy.units.Quantity`, optional
        The detector gain in e-/ADU for the budget and the curve of growth;
        None (default): the header's (GAIN/EGAIN/CCDGAIN), else no source
        Poisson term.
    title : str, optional
        The figure's title; None (default): none.
    fig : `~matplotlib.figure.Figure`, optional
        The figure to draw in (it should be empty); None (default): a new
        16 x 9 inch pyplot figure.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        Six panels (plus colour bars) in a 2 x 3 grid.
    """
    frame = as_frame(data)
    aperture = _as_aperture(aperture)
    sky = _scalar_sky(sky)
    if budget is None:
        budget = measure(frame, aperture, sky, gain=gain).budget
    if fig is None:
        fig = _new_figure(None, figsize=(16, 9), layout='constrained')
    grid = fig.add_gridspec(2, 3)
    panels = [fig.add_subplot(grid[i, j]) for i in (0, 1) for j in (0, 1, 2)]
    _draw_cutout(frame, aperture, sky, panels[0], panels[1])
    plot_threshold_contour(frame, aperture, sky, threshold=threshold,
                           ax=panels[2])
    plot_residual_background(frame, aperture, sky, threshold=threshold,
                             ax=panels[3])
    plot_curve_of_growth(frame, aperture, sky, gain=gain, ax=panels[4])
    plot_budget(budget, ax=panels[5])
    if title:
        fig.suptitle(title)
    return fig
