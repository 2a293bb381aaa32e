# Licensed under a 3-clause BSD style license - see LICENSE
"""
Helpers every module uses on pixel apertures (`BoxAperture` or any
photutils `~photutils.aperture.PixelAperture`): positions, groups of
apertures, sizes, and the pixel weights of one position on a frame.
"""

from functools import singledispatch

import numpy as np
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    EllipticalAnnulus,
    EllipticalAperture,
    PixelAperture,
)

from ..utils.numbers import check_index, check_shape, positive_scalar
from ..utils.windows import extent_limit
from .box import BoxAperture
from .circular import exact_shape

__all__ = ['aperture_weights', 'aperture_positions', 'split_apertures',
           'scaled_aperture']

#: Linear size parameters of one-piece apertures (not annuli), scaled
#: together by `scaled_aperture`.
_SIZE_PARAMS = ('r', 'a', 'b', 'w', 'h')
#: The size a curve of growth reports, by parameter, and its name.
_SIZE_NAMES = (('r', 'Radius'), ('a', 'Semi-major axis'), ('w', 'Width'))


def aperture_positions(aperture):
    """
    Give the positions of an aperture as an ``(N, 2)`` float array.

    Parameters
    ----------
    aperture : `~photutils.aperture.PixelAperture`
        A `~ccdphot_ext.BoxAperture` or any photutils pixel aperture, with
        one or many positions.

    Returns
    -------
    positions : `~numpy.ndarray`
        The ``(x, y)`` pixel positions, one row per position (one row for
        a scalar aperture).

    Examples
    --------
    >>> from ccdphot_ext import BoxAperture
    >>> from ccdphot_ext.aperture.utils import aperture_positions
    >>> aperture_positions(BoxAperture((3, 4), 2, 2))
    array([[3., 4.]])
    """
    return np.atleast_2d(aperture.positions).astype(float)


def n_positions(aperture):
    """The number of positions of a pixel aperture (1 when scalar)."""
    return 1 if aperture.isscalar else len(aperture)


def aperture_position(aperture, index):
    """Position ``index`` of ``aperture`` as an ``(x, y)`` tuple (an
    ``index`` that is not an integer, or beyond the positions, refused
    naming it)."""
    positions = aperture_positions(aperture)
    return tuple(positions[check_index(index, 'index', len(positions))])


def aperture_list(apertures):
    """One pixel aperture, or a list or tuple of them, as a list."""
    if isinstance(apertures, PixelAperture):
        return [apertures]
    return list(apertures)


def all_positions(apertures):
    """
    The positions of one aperture or a list of them, concatenated into an
    ``(N, 2)`` array in order.
    """
    return np.concatenate([aperture_positions(ap)
                           for ap in aperture_list(apertures)])


def aperture_groups(apertures, name='apertures', *, allow_empty=False):
    """
    Validate one pixel aperture or a list of them; return
    ``[(aperture, n_positions), ...]`` in order.

    Raises
    ------
    TypeError
        If ``apertures`` is not a pixel aperture or a list of them (the
        message names ``name``).
    ValueError
        If the list is empty or its apertures hold no position (unless
        ``allow_empty``).
    """
    groups = _aperture_groups(apertures, name)
    if not allow_empty and not sum(n for _, n in groups):
        raise ValueError(f'{name} is empty' if not groups else
                         f'{name} holds no positions')
    return groups


def _aperture_groups(apertures, name):
    if isinstance(apertures, PixelAperture):
        return [(apertures, n_positions(apertures))]
    if not isinstance(apertures, (list, tuple)):
        raise TypeError(f'{name} must be a BoxAperture, a photutils '
                        'PixelAperture or a list of them, got '
                        f'{type(apertures).__name__}')
    for ap in apertures:
        if not isinstance(ap, PixelAperture):
            raise TypeError(f'{name} must be BoxAperture or photutils '
                            'PixelAperture objects, got '
                            f'{type(ap).__name__}')
    return [(ap, n_positions(ap)) for ap in apertures]


def split_apertures(apertures):
    """
    List one ``(aperture, index)`` pair per position of pixel apertures.

    Parameters
    ----------
    apertures : `~photutils.aperture.PixelAperture` or list of them
        One pixel aperture (`~ccdphot_ext.BoxAperture` or photutils') or a
        non-empty list or tuple of them, each with one or many positions.

    Returns
    -------
    pairs : list of tuple
        ``(aperture, index)`` for every position, in order: the aperture
        that holds it and the position's index in that aperture.

    Raises
    ------
    TypeError
        If ``apertures`` is not a pixel aperture or a list of them.
    ValueError
        If the list is empty.

    Examples
    --------
    >>> from ccdphot_ext import BoxAperture
    >>> from ccdphot_ext.aperture.utils import split_apertures
    >>> pairs = split_apertures([BoxAperture([(3, 4), (8, 9)], 2, 2),
    ...                          BoxAperture((5, 5), 3, 3)])
    >>> [(ap.w, index) for ap, index in pairs]
    [(2.0, 0), (2.0, 1), (3.0, 0)]
    """
    return [(ap, i) for ap, n in aperture_groups(apertures)
            for i in range(n)]


def with_positions(apertures, positions):
    """
    The same apertures (types and sizes) at new ``positions`` (an
    ``(N, 2)`` array over all of them, in order).
    """
    out, start = [], 0
    for ap in aperture_list(apertures):
        n = n_positions(ap)
        new = positions[start:start + n]
        start += n
        copy = ap.copy()
        copy.positions = new[0] if ap.isscalar else new
        out.append(copy)
    return out if isinstance(apertures, (list, tuple)) else out[0]


def _digits(n):
    """A pixel count for a message: 1e+308 rather than 309 digits."""
    text = str(n)
    return text if len(text) <= 12 else f'{text[0]}.{text[1:3]}e+{len(text) - 1}'


def check_extent(apertures, shape, name='apertures', *, hint='its size'):
    """
    Refuse an aperture far larger than the frame, naming it, before any
    pixel is touched: its masks would exhaust the memory (a radius of 1e9
    needs exabytes).

    The bounding box of each aperture (its first position: the size is the
    same at every position) may span at most four times the frame's pixels
    (and always 4 million pixels).

    Parameters
    ----------
    apertures : pixel aperture or list of them
    shape : tuple of int
        The frame's ``(ny, nx)``.
    name : str, optional
        How to name ``apertures`` in the message.
    hint : str, optional
        What to check, for the message (``'its outer size'`` of an annulus).

    Raises
    ------
    ValueError
        Naming ``name``, the aperture's index and its extent.

    Examples
    --------
    >>> from photutils.aperture import CircularAperture
    >>> from ccdphot_ext.aperture.utils import check_extent
    >>> check_extent(CircularAperture((5, 5), 1e6), (100, 200))
    Traceback (most recent call last):
    ...
    ValueError: apertures: aperture 0 spans 2000001 x 2000001 pixels, far more
    than the frame (100, 200): is its size right?
    """
    shape = check_shape(shape)
    limit = extent_limit(shape)
    items = aperture_list(apertures)
    for k, ap in enumerate(items):
        label = (f'{name}: aperture {k}' if name == 'apertures'
                 or len(items) > 1 else name)
        _check_finite_size(ap, label)
        if not n_positions(ap):
            continue
        first = ap if ap.isscalar else ap[0]
        try:
            h, w = first.bbox.shape
        except (ValueError, TypeError, OverflowError):  # NaN positions
            continue
        if h * w > limit:
            h, w = (_digits(n) for n in (h, w))
            raise ValueError(f'{label} spans {h} x {w} pixels, far more '
                             f'than the frame {tuple(shape)}: is {hint} '
                             'right?')


def _check_finite_size(aperture, label):
    """Refuse a NaN or infinite size or angle of a photutils aperture
    (photutils accepts ``r=nan``, which failed later with an unnamed
    error), naming it."""
    for param in getattr(aperture, '_params', ()):
        if param == 'positions':
            continue
        value = getattr(aperture, param, None)
        try:
            finite = bool(np.all(np.isfinite(value)))
        except TypeError:  # not a number: photutils' own checks
            continue
        if not finite:
            raise ValueError(f'{label}: its {param} must be finite, got '
                             f'{value}')


def aperture_size(aperture):
    """
    The linear size a curve of growth reports for ``aperture`` and its name:
    a box's side, a circle's radius, an ellipse's semi-major axis, a
    rectangle's width (NaN, 'Size' for other shapes).
    """
    for param, name in _SIZE_NAMES:
        if param in aperture._params:
            return (float(getattr(aperture, param)),
                    getattr(aperture, 'size_label', name))
    return float('nan'), 'Size'


def scaled_aperture(aperture, scale):
    """
    Scale the linear sizes of an aperture's first position.

    Parameters
    ----------
    aperture : `~photutils.aperture.PixelAperture`
        A `~ccdphot_ext.BoxAperture` or a photutils circle, ellipse or
        rectangle (not an annulus); only its first position is used.
    scale : float
        The factor every linear size (radius, semi-axes, sides) is
        multiplied by; the rotation is kept.

    Returns
    -------
    aperture : `~photutils.aperture.PixelAperture`
        A new aperture of the same type at the first position.

    Raises
    ------
    TypeError
        If the aperture has no size to scale.

    Examples
    --------
    >>> from photutils.aperture import CircularAperture
    >>> from ccdphot_ext.aperture.utils import scaled_aperture
    >>> scaled_aperture(CircularAperture([(3, 4), (8, 9)], r=2.0), 1.5)
    <CircularAperture([3., 4.], r=3.0)>
    """
    sizes = [p for p in getattr(aperture, '_params', ())
             if p in _SIZE_PARAMS]
    if not isinstance(aperture, PixelAperture) or not sizes:
        raise TypeError('aperture must be a BoxAperture or a photutils '
                        'aperture with a size (r, a, w) for a curve of '
                        f'growth, got {type(aperture).__name__}')
    scale = positive_scalar(scale, 'scale', allow_none=False)
    params = {p: getattr(aperture, p) for p in aperture._params}
    params['positions'] = aperture_positions(aperture)[0]
    for p in sizes:
        params[p] = params[p] * scale
    return type(aperture)(**params)


def frame_box(aperture, index, shape):
    """The bounding box of position ``index`` of ``aperture`` clipped to a
    frame of ``shape``, as ``(y0, y1, x0, x1)`` (possibly empty), or None
    when the aperture has none (NaN or overflowing sizes)."""
    one = aperture if aperture.isscalar else aperture[index]
    try:
        box = one.bbox
        x0, x1 = np.clip([box.ixmin, box.ixmax], 0, shape[1])
        y0, y1 = np.clip([box.iymin, box.iymax], 0, shape[0])
    except (ValueError, TypeError, OverflowError):
        return None
    return y0, y1, x0, x1


def _off_frame(aperture, shape):
    """True when the bounding box of ``aperture`` (one position) lies
    wholly off a frame of ``shape``; False also when it has none (NaN)."""
    try:
        box = aperture.bbox
    except (ValueError, TypeError, OverflowError):
        return False
    return (box.ixmax <= 0 or box.iymax <= 0 or box.ixmin >= shape[1]
            or box.iymin >= shape[0])


def _mask_weights(aperture, shape, index, sum_method, subpixels):
    kwargs = {'method': sum_method}  # photutils' name
    if sum_method == 'subpixel':
        kwargs['subpixels'] = subpixels
    shape = check_shape(shape)
    index = check_index(index, 'index', len(aperture_positions(aperture)))
    one = aperture if aperture.isscalar else aperture[index]
    if _off_frame(one, shape):  # photutils' masks fail far away (1e30)
        return None, np.zeros((0, 0)), True
    mask = one.to_mask(**kwargs)
    large, small = mask.get_overlap_slices(shape)
    if large is None:
        return None, np.zeros((0, 0)), True
    weights = np.asarray(mask.data[small], dtype=float)
    full = float(np.sum(mask.data))
    truncated = bool(np.sum(weights) < full * (1 - 1e-12))
    return large, weights, truncated


@singledispatch
def aperture_weights(aperture, shape, *, index=0, sum_method='exact',
                     subpixels=5):
    """
    Compute the pixel weights of one aperture position on a frame.

    Boxes (`BoxAperture`) are exact: axis-aligned ones whatever
    ``sum_method`` (their overlap is the product of two 1-D overlaps,
    exactly 1 inside a pixel-aligned box), rotated ones with
    ``sum_method='exact'``. Circles, ellipses and their annuli with
    ``sum_method='exact'`` use the closed-form overlaps of
    `~ccdphot_ext.aperture.circular.EllipseShape` (the vectorised engine
    uses the same function, so both agree to the last bit). Other
    apertures use their photutils mask with ``sum_method`` and
    ``subpixels``.

    Parameters
    ----------
    aperture : `~photutils.aperture.PixelAperture`
        The aperture (one or many positions).
    shape : tuple of int
        The frame's ``(ny, nx)`` in pixels.
    index : int, optional
        Which position of a many-position aperture (default 0, the first).
    sum_method : {'exact', 'center', 'subpixel'}, optional
        The pixel-overlap method, photutils' ``method``: ``'exact'``
        (default) the area of each pixel inside the aperture,
        ``'center'`` 1 for pixels whose centre is inside, ``'subpixel'``
        the fraction of ``subpixels**2`` sub-pixel centres inside.
    subpixels : int, optional
        The sub-sampling factor per pixel side of
        ``sum_method='subpixel'`` (default 5; ignored otherwise).

    Returns
    -------
    slices : tuple of slices or None
        Where the weights sit in the frame (None if fully off the frame).
    weights : `~numpy.ndarray`
        The weights in [0, 1] over those pixels.
    truncated : bool
        True when part of the aperture falls outside the frame.

    Examples
    --------
    >>> from ccdphot_ext import BoxAperture
    >>> from ccdphot_ext.aperture.utils import aperture_weights
    >>> slc, w, truncated = aperture_weights(BoxAperture((2.0, 1.0), 2, 1),
    ...                                      (5, 5))
    >>> slc, w.tolist(), truncated
    ((slice(1, 2, None), slice(1, 4, None)), [[0.5, 1.0, 0.5]], False)
    """
    return _mask_weights(aperture, shape, index, sum_method, subpixels)


@aperture_weights.register
def _(aperture: BoxAperture, shape, *, index=0, sum_method='exact',
      subpixels=5):
    if aperture.is_axis_aligned or sum_method == 'exact':
        return aperture.frame_weights(shape, index=index)
    return _mask_weights(aperture, shape, index, sum_method, subpixels)


def _ellipse_weights(aperture, shape, *, index=0, sum_method='exact',
                     subpixels=5):
    if sum_method == 'exact':
        return exact_shape(aperture).frame_weights(
            aperture_position(aperture, index), shape)
    return _mask_weights(aperture, shape, index, sum_method, subpixels)


for _shape in (CircularAperture, EllipticalAperture, CircularAnnulus,
               EllipticalAnnulus):
    aperture_weights.register(_shape, _ellipse_weights)
