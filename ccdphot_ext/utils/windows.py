# Licensed under a 3-clause BSD style license - see LICENSE
"""
Windows of one size gathered from a frame at many corners, a window row at
a time (internal; the box and ellipse engines and the sky annuli use it).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = []  # internal module

#: pixel coordinates beyond this magnitude are off every frame
FAR_PIXELS = 2.0 ** 62


def extent_limit(shape):
    """
    The most pixels an aperture's bounding box (its window) may span on a
    frame of ``shape``: four times the frame, and always 4 million pixels.

    Parameters
    ----------
    shape : tuple of int
        The frame's ``(ny, nx)``.

    Returns
    -------
    limit : int

    Examples
    --------
    >>> from ccdphot_ext.utils.windows import extent_limit
    >>> extent_limit((1024, 2048))
    8388608
    """
    return max(4 * int(shape[0]) * int(shape[1]), 4_000_000)


def whole_pixels(values, dtype=np.intp):
    """
    Whole-valued floats (pixel edges, window corners) as integers, those
    beyond `FAR_PIXELS` (a position of 1e30, a side of 1e20) clipped there,
    and NaN put there too: off every frame, never cast to an undefined
    integer (numpy's "invalid value encountered in cast", a wrap-around
    onto the frame).
    """
    values = np.asarray(values)
    if values.dtype.kind == 'f' and np.isnan(values).any():
        values = np.where(np.isnan(values), FAR_PIXELS, values)
    return np.clip(values, -FAR_PIXELS, FAR_PIXELS).astype(dtype)


def box_rows(data, height, width):
    """
    The boxes of ``height`` x ``width`` pixels of ``data``, indexed by their
    corners: ``view[ys, xs]`` gathers (copies) the pixels of
    ``data[y:y + height, x:x + width]`` for each corner; `as_pixels` turns
    the result into an ``(m, height * width)`` array in row-major order.

    On a C-contiguous frame each row of a box is one element of raw bytes,
    so gathering a box copies ``height`` blocks of memory instead of
    ``height * width`` pixels one at a time (about 1.5 times faster from
    the cache). Other frames get a
    `~numpy.lib.stride_tricks.sliding_window_view`. A box larger than the
    frame has no corner inside it: the view is then empty (numpy refuses
    to make it), and its callers take such boxes on their edge path.
    """
    ny, nx = data.shape
    corners = (max(ny - height + 1, 0), max(nx - width + 1, 0))
    if not data.flags.c_contiguous:
        if 0 in corners:
            return np.empty(corners + (height, width), dtype=data.dtype)
        return sliding_window_view(data, (height, width))
    size = data.itemsize
    view = np.ndarray(corners + (height,),
                      dtype=np.dtype((np.void, width * size)), buffer=data,
                      strides=(nx * size, size, nx * size))
    view.flags.writeable = False
    return view


def as_pixels(cut, dtype):
    """Boxes gathered from `box_rows` as a ``(m, pixels)`` array."""
    if cut.dtype.kind == 'V':
        cut = cut.view(dtype)
    return cut.reshape(len(cut), -1)
