# Licensed under a 3-clause BSD style license - see LICENSE
"""
The frame overview: the image (z-scale) with the apertures and their ids,
readable with hundreds of apertures (small markers, the top ids only, and
a note on the figure saying what was left out).
"""

import numpy as np

from ..aperture.utils import aperture_list
from ..utils.inputs import as_frame
from ..utils.numbers import positive_integer
from ._base import _as_aperture, _axes, _frame_figsize, _unit_label

__all__ = ['plot_frame']


def _centres_and_corners(apertures):
    """The photutils apertures, each position's centre and the upper right
    corner of its bounding box (where its label goes)."""
    phots, centres, corners = [], [], []
    for ap in aperture_list(apertures):
        phot = _as_aperture(ap)
        phots.append(phot)
        centres.extend(np.atleast_2d(phot.positions).tolist())
        boxes = phot.bbox if isinstance(phot.bbox, list) else [phot.bbox]
        corners.extend((b.ixmax - 0.5, b.iymax - 0.5) for b in boxes)
    return phots, np.array(centres, dtype=float), corners


def _labelled(n, priority, max_labels):
    """Indices of the positions that get their id: all, or the
    ``max_labels`` of highest ``priority`` (default the first ones)."""
    if max_labels is None or n <= max_labels:
        return np.arange(n)
    if priority is None:
        return np.arange(max_labels)
    key = np.asarray(priority, dtype=float)
    if key.shape != (n,):
        raise ValueError(f'priority has {key.size} values for {n} aperture '
                         'positions')
    key = np.where(np.isfinite(key), key, -np.inf)
    return np.sort(np.argsort(-key, kind='stable')[:max_labels])


def plot_frame(data, apertures=None, *, ids=None, ax=None, color='#ff7f0e',
               max_apertures=100, max_labels=30, priority=None,
               priority_name='priority'):
    """
    Plot the frame with z-scale normalisation, apertures and their ids.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
        The 2-D frame.
    apertures : `~photutils.aperture.PixelAperture` or list, optional
        `~ccdphot_ext.BoxAperture` or photutils pixel apertures, drawn
        with photutils' ``plot``, their ids beside each position; None
        (default): the frame alone.
    ids : sequence, optional
        The labels, one per position; None (default): 1, 2, ...
    ax : `~matplotlib.axes.Axes`, optional
        The axes to draw in; None (default): a new pyplot figure.
    color : str, optional
        The aperture and label colour (default ``'#ff7f0e'``, orange).
    max_apertures : int or None, optional
        With more positions than this (default 100), each is drawn as a
        small marker at its centre instead of its outline; None: always
        outlines.
    max_labels : int or None, optional
        Label at most this many positions (default 30): those of highest
        ``priority``, else the first ones; None: all.
    priority : sequence of float, optional
        One value per position (e.g. the SNR) choosing the labelled ones;
        None (default): the first ones are labelled.
    priority_name : str, optional
        What ``priority`` is, for the note on the figure (default
        ``'priority'``).

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The image is normalised with `~astropy.visualization.ImageNormalize`
        and `~astropy.visualization.ZScaleInterval`. When markers replace
        outlines or ids are left out, a note at the bottom of the axes
        says so.

    Raises
    ------
    ValueError
        If ``ids`` or ``priority`` does not hold one entry per position, or
        ``data`` has no finite pixel.

    Examples
    --------
    >>> import numpy as np
    >>> from photutils.aperture import CircularAperture
    >>> from ccdphot_ext.visualization.figures import plot_frame
    >>> img = np.random.default_rng(0).normal(100.0, 5.0, (300, 300))
    >>> xy = np.random.default_rng(1).uniform(10, 290, (361, 2))
    >>> ax = plot_frame(img, CircularAperture(xy, 4), priority=xy[:, 0],
    ...                 priority_name='x')
    >>> len(ax.patches), len(ax.texts) - 1
    (0, 30)
    >>> print(ax.texts[-1].get_text())
    361 apertures drawn as markers; ids shown for the 30 of highest x
    """
    frame = as_frame(data)
    ax = _show_image(frame, ax)
    if apertures is None:
        return ax
    phots, centres, corners = _centres_and_corners(apertures)
    ids = list(range(1, len(corners) + 1) if ids is None else ids)
    if len(ids) != len(corners):
        raise ValueError(f'ids has {len(ids)} labels for {len(corners)} '
                         'aperture positions')
    if max_apertures is not None:
        max_apertures = positive_integer(max_apertures, 'max_apertures',
                                         allow_zero=True)
    if max_labels is not None:
        max_labels = positive_integer(max_labels, 'max_labels',
                                      allow_zero=True)
    markers = max_apertures is not None and len(corners) > max_apertures
    if markers:
        ax.plot(centres[:, 0], centres[:, 1], ls='none', marker='o', ms=3,
                mfc='none', mec=color, mew=0.8)
    else:
        for phot in phots:
            phot.plot(ax=ax, color=color, lw=1.2)
    shown = _labelled(len(ids), priority, max_labels)
    for i in shown:
        where = tuple(centres[i]) if markers else corners[i]
        ax.annotate(str(ids[i]), where, xytext=(2, 2),
                    textcoords='offset points', color=color, fontsize=9)
    _note_left_out(ax, len(ids), len(shown), markers,
                   priority_name if priority is not None else None)
    ax.set_xlim(-0.5, frame.shape[1] - 0.5)
    ax.set_ylim(-0.5, frame.shape[0] - 0.5)
    return ax


def _show_image(frame, ax):
    """The frame, z-scale normalised, with its colour bar; the axes."""
    from astropy.visualization import ImageNormalize, ZScaleInterval

    image = frame.data
    finite = image[np.isfinite(image)]
    if not finite.size:
        raise ValueError('data has no finite pixel to show (all NaN or '
                         'inf)')
    norm = ImageNormalize(finite, interval=ZScaleInterval())
    ax = _axes(ax, figsize=_frame_figsize(image.shape))
    im = ax.imshow(image, cmap='gray', origin='lower', norm=norm,
                   interpolation='nearest')
    ax.figure.colorbar(im, ax=ax, label=_unit_label(frame), shrink=0.8)
    ax.set_xlabel('x [pixel]')
    ax.set_ylabel('y [pixel]')
    return ax


def _note_left_out(ax, n_ids, n_shown, markers, priority_name):
    """A note at the bottom of the axes when markers replace outlines or
    ids are left out (``priority_name`` None: the first ones shown)."""
    notes = []
    if markers:
        notes.append(f'{n_ids} apertures drawn as markers')
    if n_shown < n_ids:
        chosen = (f'the {n_shown} of highest {priority_name}'
                  if priority_name is not None else f'the first {n_shown}')
        notes.append(f'ids shown for {chosen}')
    if notes:
        ax.text(0.01, 0.01, '; '.join(notes), transform=ax.transAxes,
                color='w', fontsize=9, va='bottom',
                bbox={'facecolor': 'k', 'alpha': 0.6, 'lw': 0})
