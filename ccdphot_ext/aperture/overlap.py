# Licensed under a 3-clause BSD style license - see LICENSE
"""
Exact overlap of a rectangle with the pixels of a grid.

An axis-aligned rectangle overlaps a pixel by the product of two 1-D
overlaps. A rotated rectangle is clipped against each pixel square it may
cross (Sutherland-Hodgman, all pixels at once in numpy) and the area of the
clipped polygon is the pixel's weight; pixels wholly inside weigh exactly 1
and pixels wholly outside exactly 0.

Pixel convention (as photutils): pixel ``i`` spans ``i - 0.5 ... i + 0.5``.
"""

import math

import numpy as np

from ..utils.numbers import (
    MAX_COUNT,
    check_shape,
    finite_number,
    positive_integer,
    positive_scalar,
    whole_number,
)

__all__ = ['overlap_1d', 'rectangle_overlap']

#: A rotation within this of a multiple of 90 degrees is axis-aligned.
AXIS_ALIGNED_ATOL = 1e-12


def overlap_1d(lo, hi, start, stop):
    """
    Compute the overlap of an interval with a run of pixels along one axis.

    Pixel ``i`` spans ``i - 0.5 ... i + 0.5`` (photutils' convention).

    Parameters
    ----------
    lo : float
        The lower end of the interval, in pixel coordinates.
    hi : float
        The upper end of the interval, in pixel coordinates (an interval
        with ``hi <= lo`` overlaps nothing).
    start : int
        The first pixel index.
    stop : int
        One past the last pixel index.

    Returns
    -------
    weights : `~numpy.ndarray`
        The ``stop - start`` lengths of each pixel inside ``[lo, hi]``, in
        [0, 1].

    Examples
    --------
    >>> from ccdphot_ext.aperture.overlap import overlap_1d
    >>> overlap_1d(0.25, 2.0, 0, 4)
    array([0.25, 1.  , 0.5 , 0.  ])
    """
    start, stop = whole_number(start, 'start'), whole_number(stop, 'stop')
    positive_integer(stop - start, 'stop - start', allow_zero=True)
    return _overlap_1d(finite_number(lo, 'lo'), finite_number(hi, 'hi'),
                       start, stop)


def _overlap_1d(lo, hi, start, stop):
    """`overlap_1d` of checked numbers (the engines' call)."""
    edges = np.arange(start, stop, dtype=float)
    return np.clip(np.minimum(hi, edges + 0.5) - np.maximum(lo, edges - 0.5),
                   0.0, 1.0)


def axis_sides(w, h, theta):
    """
    Extents ``(along x, along y)`` of a ``w`` x ``h`` rectangle rotated by
    an axis-aligned ``theta`` (radians): swapped at odd multiples of 90
    degrees, else ``(w, h)``.
    """
    if math.isclose(math.remainder(theta, math.pi), 0.0,
                    abs_tol=AXIS_ALIGNED_ATOL):
        return w, h
    return h, w


def is_axis_aligned(theta):
    """True when ``theta`` (radians) is within 1e-12 of k * 90 degrees."""
    return math.isclose(math.remainder(theta, math.pi / 2), 0.0,
                        abs_tol=AXIS_ALIGNED_ATOL)


def _clip(px, py, bound, axis, sign):
    """
    Clip polygons ``(px, py)`` (``(m, n)`` vertices each) to the half-plane
    ``sign * (coord - bound) <= 0`` where ``coord`` is x (axis 0) or y.

    Every edge emits two vertices, so the shapes stay rectangular arrays:
    an edge from outside to inside emits (crossing, end), inside to outside
    (crossing, crossing), inside to inside (end, end) and outside to outside
    the end projected on the clip line twice. Repeated vertices and
    vertices on the clip line between two crossings add no area, so the
    shoelace area of the result is the clipped area.
    """
    c, o = (px, py) if axis == 0 else (py, px)
    c_end, o_end = np.roll(c, -1, axis=1), np.roll(o, -1, axis=1)
    f_start, f_end = sign * (c - bound), sign * (c_end - bound)
    in_start, in_end = f_start <= 0, f_end <= 0
    cross = in_start != in_end
    denom = np.where(cross, f_start - f_end, 1.0)
    o_cross = o + np.where(cross, f_start / denom, 0.0) * (o_end - o)
    bound = np.broadcast_to(bound, c.shape)
    first_c = np.where(cross, bound, np.where(in_end, c_end, bound))
    first_o = np.where(cross, o_cross, o_end)
    second_c = np.where(in_end, c_end, bound)
    second_o = np.where(in_end | ~in_start, o_end, o_cross)
    new_c = np.stack([first_c, second_c], axis=2).reshape(len(c), -1)
    new_o = np.stack([first_o, second_o], axis=2).reshape(len(c), -1)
    return (new_c, new_o) if axis == 0 else (new_o, new_c)


def _clipped_areas(corners_x, corners_y, cx, cy):
    """
    Area of a convex polygon (``corners_x``, ``corners_y``, counter-
    clockwise) inside each unit pixel centred on ``(cx, cy)``.
    """
    px = corners_x[None, :] - cx[:, None]
    py = corners_y[None, :] - cy[:, None]
    for axis, sign, bound in ((0, -1.0, -0.5), (0, 1.0, 0.5),
                              (1, -1.0, -0.5), (1, 1.0, 0.5)):
        px, py = _clip(px, py, bound, axis, sign)
    area = 0.5 * np.sum(px * np.roll(py, -1, axis=1)
                        - np.roll(px, -1, axis=1) * py, axis=1)
    return np.clip(area, 0.0, 1.0)


def rectangle_overlap(xmin, ymin, nx, ny, w, h, theta):
    """
    Exact overlap of a rectangle centred on the origin with a pixel grid.

    Parameters
    ----------
    xmin : float
        The left edge of the grid relative to the rectangle's centre, in
        pixels (pixel ``(0, 0)`` of the grid spans ``xmin ... xmin + 1``
        along x).
    ymin : float
        The lower edge of the grid relative to the rectangle's centre, in
        pixels.
    nx : int
        The number of grid columns.
    ny : int
        The number of grid rows.
    w : float
        The full side of the rectangle along x before rotation, in pixels.
    h : float
        The full side of the rectangle along y before rotation, in pixels.
    theta : float
        The rotation in radians, counter-clockwise from the x axis (within
        1e-12 of a multiple of 90 degrees counts as axis-aligned).

    Returns
    -------
    weights : `~numpy.ndarray`
        The ``(ny, nx)`` overlaps in [0, 1]: exactly 1 for pixels wholly inside,
        exactly 0 for pixels wholly outside, and for the others the area of
        the pixel inside the rectangle (to ~1e-15).

    Examples
    --------
    A 2 x 1 box turned by 90 degrees minus a hair still covers the two
    pixels it covered unrotated (now stacked in y):

    >>> import numpy as np
    >>> from ccdphot_ext.aperture.overlap import rectangle_overlap
    >>> w = rectangle_overlap(-1.5, -1.5, 3, 3, 2.0, 1.0, np.pi / 2 - 1e-9)
    >>> np.round(w, 6)
    array([[0. , 0.5, 0. ],
           [0. , 1. , 0. ],
           [0. , 0.5, 0. ]])
    >>> float(w.sum())
    2.0
    """
    ny, nx = check_shape((ny, nx), '(ny, nx)', max_pixels=MAX_COUNT)
    return _rectangle_overlap(
        finite_number(xmin, 'xmin'), finite_number(ymin, 'ymin'), nx, ny,
        positive_scalar(w, 'w', allow_none=False),
        positive_scalar(h, 'h', allow_none=False),
        finite_number(theta, 'theta'))


def _rectangle_overlap(xmin, ymin, nx, ny, w, h, theta):
    """`rectangle_overlap` of checked numbers (the engines' call)."""
    cx = xmin + 0.5 + np.arange(nx, dtype=float)
    cy = ymin + 0.5 + np.arange(ny, dtype=float)
    if is_axis_aligned(theta):
        sx, sy = axis_sides(w, h, theta)
        wx = np.clip(np.minimum(sx / 2, cx + 0.5)
                     - np.maximum(-sx / 2, cx - 0.5), 0.0, 1.0)
        wy = np.clip(np.minimum(sy / 2, cy + 0.5)
                     - np.maximum(-sy / 2, cy - 0.5), 0.0, 1.0)
        return np.outer(wy, wx)
    cos, sin = math.cos(theta), math.sin(theta)
    a, b = w / 2.0, h / 2.0
    gx, gy = np.meshgrid(cx, cy)
    # the pixel's centre in the rectangle's frame, and its half-extent
    # along the rectangle's axes (separating axis test: inside / outside)
    u = gx * cos + gy * sin
    v = -gx * sin + gy * cos
    half = 0.5 * (abs(cos) + abs(sin))
    ext_x = abs(a * cos) + abs(b * sin)
    ext_y = abs(a * sin) + abs(b * cos)
    weights = np.zeros((ny, nx))
    inside = (np.abs(u) + half <= a) & (np.abs(v) + half <= b)
    weights[inside] = 1.0
    outside = ((np.abs(u) - half >= a) | (np.abs(v) - half >= b)
               | (np.abs(gx) - 0.5 >= ext_x) | (np.abs(gy) - 0.5 >= ext_y))
    edge = ~inside & ~outside
    if np.any(edge):
        corners_x = np.array([a * cos - b * sin, -a * cos - b * sin,
                              -a * cos + b * sin, a * cos + b * sin])
        corners_y = np.array([a * sin + b * cos, -a * sin + b * cos,
                              -a * sin - b * cos, a * sin - b * cos])
        weights[edge] = _clipped_areas(corners_x, corners_y, gx[edge],
                                       gy[edge])
    return weights
