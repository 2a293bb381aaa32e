# Licensed under a 3-clause BSD style license - see LICENSE
"""
Figures of the notebook's steps, drawn with matplotlib.

matplotlib is an optional dependency (``pip install "ccdphot_ext[plot]"``)
imported only when a figure is drawn. Every function draws into the
``ax`` (or ``fig``) it is given, or into a new pyplot figure, and returns
what it drew into, so figures compose and can be inspected:

============================  ===============================================
`plot_cutout`                 the box cutout and its pixel histogram
`plot_threshold_contour`      the n-sigma contour (the mask) on the cutout
`plot_residual_background`    histogram of box pixels left out by the mask
`plot_budget`                 one flux's variance terms as shares
`plot_budget_table`           the shares for every row of a `photometer` table
`plot_curve_of_growth`        flux against aperture size
`plot_frame`                  the frame (z-scale) with apertures and ids
`plot_star_summary`           one star's six panels on one page
============================  ===============================================

`notebook_figures` draws them all for one star and `save_figures` writes
them as PNG files (each written atomically).
"""

import math
import os
import tempfile

import numpy as np
from photutils.aperture import PixelAperture

from ..aperture.box import BoxAperture
from ..aperture.utils import aperture_list, aperture_size, aperture_weights
from ..background.sky import SkyEstimate
from ..background.threshold import SigmaThreshold
from ..photometry.budget import ErrorBudget
from ..photometry.measurement import measure
from ..utils.inputs import as_frame, positive_scalar

__all__ = ['plot_cutout', 'plot_threshold_contour', 'plot_residual_background',
           'plot_budget', 'plot_budget_table', 'plot_curve_of_growth',
           'plot_frame', 'plot_star_summary', 'budget_from_row',
           'notebook_figures', 'save_figures', 'GROWTH_SCALES']

_INSTALL_HINT = 'pip install "ccdphot_ext[plot]"'

#: Colours of the budget terms (stable across figures).
_TERM_COLORS = {'sky': '#4c72b0', 'map': '#4c72b0', 'source': '#dd8452',
                'sky_mean': '#55a868', 'flat': '#c44e52'}


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
    if not isinstance(sky, SkyEstimate):
        raise TypeError('sky must be a SkyEstimate, got '
                        f'{type(sky).__name__}')
    if sky.is_global:
        return sky
    value, std, n_pix, eom = sky.at(index)
    return SkyEstimate(value, std, n_pix, error_on_mean=eom,
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


def plot_cutout(data, aperture, *, sky=None, bins=50, fig=None):
    """
    The notebook's cutout figure: the pixels of a box and their histogram.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The frame.
    aperture : `BoxAperture`, `~photutils.aperture.PixelAperture` or tuple
        The box (``np.s_[y0:y1, x0:x1]`` is accepted).
    sky : `SkyEstimate`, optional
        If given, its level is subtracted first (the notebook's second
        cutout figure).
    bins : int, optional
        Histogram bins (the notebook's 50).
    fig : `~matplotlib.figure.Figure`, optional
        Draw into this figure (its contents are kept); default a new pyplot
        figure.

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        With the image axes, its colour bar and the histogram axes.

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
    ax_hist.hist(finite, bins=int(bins), color='0.4')
    ax_hist.set_xlabel(f'Pixel value [{unit}]')
    ax_hist.set_ylabel('Number of pixels')
    ax_hist.set_title(f'{finite.size} pixels')


def plot_threshold_contour(data, aperture, sky, *, threshold=None, ax=None):
    """
    The threshold contour (the notebook's 2-sigma mask) on the cutout.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The frame.
    aperture : `BoxAperture`, `~photutils.aperture.PixelAperture` or tuple
        The box.
    sky : `SkyEstimate`
        Level subtracted and ``std`` setting the contour level.
    threshold : `SigmaThreshold` or float, optional
        Default ``SigmaThreshold(2.0, selection='pixel')`` (the
        notebook's); a number is ``n_sigma`` (pixel selection).
    ax : `~matplotlib.axes.Axes`, optional
        Default a new pyplot figure.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The contour is drawn at ``n_sigma * sky.std``; the title gives the
        pixels selected and their sum (as `measure` with this threshold).
    """
    frame = as_frame(data)
    aperture = _as_aperture(aperture)
    sky = _scalar_sky(sky)
    threshold = _as_threshold(threshold)
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
        ax.contour(res.mask > 0, levels=[0.5], colors=['r'])
    ax.set_xlabel(f'X pixel of cutout (frame X={slc[1].start} + x)')
    ax.set_ylabel(f'Y pixel of cutout (frame Y={slc[0].start} + y)')
    ax.set_title(f'{threshold.n_sigma:g}-sigma mask: {res.n_pix:.0f} pixels, '
                 f'sum {res.flux:.1f}')
    return ax


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
    Histogram of the box pixels the threshold mask left out.

    The notebook's systematic-error check: those pixels should scatter about
    zero once the sky is subtracted; a shifted histogram means background
    the global sky missed.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The frame.
    aperture : `BoxAperture`, `~photutils.aperture.PixelAperture` or tuple
        The box.
    sky : `SkyEstimate`
        The level subtracted.
    threshold : `SigmaThreshold` or float, optional
        Default ``SigmaThreshold(2.0, selection='pixel')`` (the notebook's).
    bins : int, optional
        Histogram bins.
    ax : `~matplotlib.axes.Axes`, optional
        Default a new pyplot figure.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        Vertical lines at zero and at the mean; the title gives the number
        of pixels, their mean and their sum.
    """
    frame = as_frame(data)
    aperture = _as_aperture(aperture)
    sky = _scalar_sky(sky)
    threshold = _as_threshold(threshold)
    res = measure(frame, aperture, sky, threshold=threshold)
    _, weights, cut = _cutout(frame, aperture)
    left = (weights > 0) & (res.mask == 0) & np.isfinite(cut)
    if frame.mask is not None:
        left &= ~frame.mask[res.slices]
    values = cut[left] - sky.at(0)[0]
    ax = _axes(ax, figsize=(7, 5))
    unit = _unit_label(frame)
    if values.size:
        ax.hist(values, bins=int(bins), color='0.5')
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


def plot_budget(budget, *, ax=None):
    """
    An error budget as variance shares: one bar per term.

    Parameters
    ----------
    budget : `ErrorBudget`
    ax : `~matplotlib.axes.Axes`, optional
        Default a new pyplot figure.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        One bar per term, its height the term's share of the variance in
        percent, annotated with the percentage.

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
    colors = [_TERM_COLORS.get(name, '0.5') for name in names]
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


def plot_budget_table(table, *, ax=None, max_rows=40):
    """
    Variance shares of every row of a `photometer` table (stacked bars).

    Parameters
    ----------
    table : `~astropy.table.QTable`
        With ``id``, ``var_sky``, ``var_source``, ``var_sky_mean`` columns
        (a missing term, NaN, counts as zero).
    ax : `~matplotlib.axes.Axes`, optional
        Default a new pyplot figure.
    max_rows : int, optional
        Draw at most this many rows (the first ones).

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        One horizontal bar per row, one colour per term.
    """
    names = ('var_sky', 'var_source', 'var_sky_mean')
    missing = [n for n in ('id', *names) if n not in table.colnames]
    if missing:
        raise ValueError(f'table lacks the column(s) {missing}; pass a '
                         'photometer() table')
    rows = table[:int(max_rows)]
    var = np.array([np.nan_to_num(_plain(rows[n])) for n in names])
    total = var.sum(axis=0)
    with np.errstate(invalid='ignore', divide='ignore'):
        share = np.where(total > 0, 100.0 * var / total, 0.0)
    ax = _axes(ax, figsize=(8, max(3.0, 1.2 + 0.3 * len(rows))))
    ypos = np.arange(len(rows))
    left = np.zeros(len(rows))
    for name, values in zip(names, share, strict=True):
        term = name[4:]
        ax.barh(ypos, values, left=left, color=_TERM_COLORS[term], label=term)
        left += values
    ax.set_yticks(ypos, [str(i) for i in rows['id']])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel('Share of the flux variance [%]')
    ax.set_ylabel('id')
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0))
    ax.set_title('Error budget per aperture')
    return ax


def _plain(column):
    return np.asarray(getattr(column, 'value', column), dtype=float)


#: Default scales of `plot_curve_of_growth`: 0.1 to 2 times the aperture.
GROWTH_SCALES = tuple(i / 10 for i in range(1, 21))


def plot_curve_of_growth(data, aperture, sky, *, scales=GROWTH_SCALES,
                         mark=True, ax=None, **kwargs):
    """
    The curve of growth: flux against aperture size, with error bars.

    The fluxes are `~ccdphot_ext.analysis.systematics.growth_curve`'s: the aperture
    scaled by each of ``scales`` about its centre, each measured with
    `measure`. A curve that keeps rising beyond the star means background
    the sky estimate missed (the notebook's systematic error); one that
    flattens gives the aperture correction.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The frame.
    aperture : `BoxAperture`, photutils aperture or tuple
        One position (``np.s_[y0:y1, x0:x1]`` is accepted).
    sky : `SkyEstimate`
        One level.
    scales : sequence of float, optional
        Size factors (default 0.1 to 2 in steps of 0.1).
    mark : bool, optional
        Mark the aperture's own size (scale 1) with a vertical line.
    ax : `~matplotlib.axes.Axes`, optional
        Default a new pyplot figure.
    **kwargs
        Passed to `measure` (e.g. ``gain``).

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


def plot_frame(data, apertures=None, *, ids=None, ax=None, color='#ff7f0e'):
    """
    The frame with z-scale normalisation, apertures and their ids.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The frame.
    apertures : `BoxAperture`, `~photutils.aperture.PixelAperture` or list
        Drawn with photutils' ``plot``; ids are placed beside each position.
    ids : sequence, optional
        Labels, one per position (default 1, 2, ...).
    ax : `~matplotlib.axes.Axes`, optional
        Default a new pyplot figure.
    color : str, optional
        Aperture and label colour.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The image is normalised with `~astropy.visualization.ImageNormalize`
        and `~astropy.visualization.ZScaleInterval`.
    """
    from astropy.visualization import ImageNormalize, ZScaleInterval

    frame = as_frame(data)
    image = frame.data
    finite = image[np.isfinite(image)]
    norm = ImageNormalize(finite if finite.size else None,
                          interval=ZScaleInterval())
    ax = _axes(ax, figsize=_frame_figsize(image.shape))
    im = ax.imshow(image, cmap='gray', origin='lower', norm=norm,
                   interpolation='nearest')
    ax.figure.colorbar(im, ax=ax, label=_unit_label(frame), shrink=0.8)
    ax.set_xlabel('x [pixel]')
    ax.set_ylabel('y [pixel]')
    if apertures is None:
        return ax
    corners = []  # labels go beside the upper right corner of each box
    for ap in aperture_list(apertures):
        phot = _as_aperture(ap)
        phot.plot(ax=ax, color=color, lw=1.2)
        boxes = phot.bbox if isinstance(phot.bbox, list) else [phot.bbox]
        corners.extend((b.ixmax - 0.5, b.iymax - 0.5) for b in boxes)
    if ids is None:
        ids = range(1, len(corners) + 1)
    ids = list(ids)
    if len(ids) != len(corners):
        raise ValueError(f'ids has {len(ids)} labels for {len(corners)} '
                         'aperture positions')
    for label, corner in zip(ids, corners, strict=True):
        ax.annotate(str(label), corner, xytext=(2, 2),
                    textcoords='offset points', color=color, fontsize=9)
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(-0.5, image.shape[0] - 0.5)
    return ax


def _frame_figsize(shape, width=9.0):
    """Width and height (inches) of a frame figure with a colour bar."""
    ny, nx = shape
    return width, max(3.0, 0.85 * width * ny / nx + 0.6)


def notebook_figures(data=None, aperture=None, sky=None, *, threshold=None,
                     gain=None, overview=None, ids=None):
    """
    Every figure of the notebook for one star, without pyplot.

    Parameters
    ----------
    data : frame, optional
        Default the bundled `~ccdphot_ext.sample_frame`.
    aperture : `BoxAperture` or tuple, optional
        Default the notebook's first box, ``np.s_[158:178, 492:512]``.
    sky : `SkyEstimate`, optional
        Default the plain mean and standard deviation of the frame (the
        notebook's).
    threshold : `SigmaThreshold` or float, optional
        Default ``SigmaThreshold(2.0, selection='pixel')`` (the notebook's).
    gain : float, optional
        Default from the header.
    overview : list of apertures, optional
        Apertures drawn on the ``overview`` figure (default ``aperture``),
        labelled with ``ids`` (default 1, 2, ...).
    ids : sequence, optional
        Labels for ``overview``.

    Returns
    -------
    figures : dict
        Name to `~matplotlib.figure.Figure`: ``cutout``, ``mask_contour``,
        ``residual_background``, ``budget``, ``curve_of_growth``,
        ``overview``. They are not registered with pyplot; write them with
        `save_figures`.
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


def save_figures(figures, outdir, *, dpi=100, prefix=''):
    """
    Write figures as PNG files, each atomically.

    Each file is written to a temporary name in ``outdir`` and then renamed,
    so an existing file is never left half-written.

    Parameters
    ----------
    figures : dict
        Name to `~matplotlib.figure.Figure`; files are ``{prefix}{name}.png``.
    outdir : str or path-like
        Created if missing.
    dpi : int, optional
        Resolution.
    prefix : str, optional
        File name prefix.

    Returns
    -------
    paths : list of str
    """
    outdir = os.fspath(outdir)
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = os.path.join(outdir, f'{prefix}{name}.png')
        fd, tmp = tempfile.mkstemp(prefix=f'.{prefix}{name}.', suffix='.tmp',
                                   dir=outdir)
        os.close(fd)
        try:
            fig.savefig(tmp, format='png', dpi=dpi)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        paths.append(path)
    return paths


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def plot_star_summary(data, aperture, sky, *, budget=None, threshold=None,
                      gain=None, title=None, fig=None):
    """
    One star on one page: cutout, histogram, mask contour, residual
    background, curve of growth and budget shares.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The frame.
    aperture : `BoxAperture`, `~photutils.aperture.PixelAperture` or tuple
        One position.
    sky : `SkyEstimate`
        One level (the star's).
    budget : `ErrorBudget`, optional
        Default the budget of `measure` with ``gain``.
    threshold : `SigmaThreshold` or float, optional
        Default ``SigmaThreshold(2.0, selection='pixel')`` (the notebook's).
    gain : float, optional
        Default from the header.
    title : str, optional
        Figure title.
    fig : `~matplotlib.figure.Figure`, optional
        Default a new pyplot figure.

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


def budget_from_row(row):
    """
    The `ErrorBudget` of one row of a `photometer` table.

    Parameters
    ----------
    row : `~astropy.table.Row`
        With ``aperture_sum``, ``n_pix`` and the ``var_*`` columns; NaN
        terms (absent from the budget) are left out.

    Returns
    -------
    budget : `ErrorBudget`
    """
    terms = {}
    for col, name in (('var_sky', 'sky'), ('var_source', 'source'),
                      ('var_sky_mean', 'sky_mean')):
        value = float(_plain(row[col]))
        if math.isfinite(value):
            terms[name] = value
    flux = float(_plain(row['aperture_sum']))
    if not terms or not math.isfinite(flux):
        raise ValueError(f'row {row["id"]} has no budget (aperture off the '
                         'frame?)')
    return ErrorBudget(flux, terms, n_pix=float(row['n_pix']))
