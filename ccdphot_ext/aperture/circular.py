# Licensed under a 3-clause BSD style license - see LICENSE
"""
Exact overlap of circles, ellipses and their annuli with the pixels of a
grid, in closed form and for many apertures at once.

An ellipse centred on the origin meets the vertical line ``x = t`` (for
``|t| <= X``, its half-extent along x) in the segment
``m t - c s(t) ... m t + c s(t)`` with ``s(t) = sqrt(X**2 - t**2)``; a
circle of radius ``r`` has ``X = r``, ``m = 0`` and ``c = 1``. The area of
the ellipse inside the pixel ``[x0, x1] x [y0, y1]`` is ``H(y1) - H(y0)``
with

    H(y) = integral over [x0, x1] of clip(y, m t - c s(t), m t + c s(t)) dt,

which is, in closed form, ``y`` times the length of the chord of the ellipse
at height ``y`` inside ``[x0, x1]`` plus, on either side of the chord,
the integral of ``m t +- c s(t)``. The integral of ``s`` between ``a`` and
``b`` is computed without subtracting large antiderivatives (the difference
of the two angles from its sine and cosine, each without cancellation), so
a pixel's weight is exact to about ``1e-16`` times the aperture's size in
pixels, whatever its radius.

Only pixels the boundary crosses are computed: per row of pixels, the
columns wholly inside (weight exactly 1) and those touched at all follow
from the chords at the row's two edges; the others weigh exactly 0. An
annulus is the outer shape minus the inner one, on the same pixels.
Circles are computed by a compiled kernel (``_exact.c``) that ports the
numpy code of ``quadrant`` operation by operation (``COMPILED``).

Every aperture position gets the same window of pixels (the aperture's
shape fixes its size), starting at the first pixel its bounding box can
touch. The per-aperture route (`~ccdphot_ext.aperture.aperture_weights`)
and the vectorised engine call the same functions, pixel by pixel the same
operations, so their weights agree to the last bit.

Pixel convention (as photutils): pixel ``i`` spans ``i - 0.5 ... i + 0.5``.
"""

import math
from functools import singledispatch

import numpy as np
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    EllipticalAnnulus,
    EllipticalAperture,
)

from ..utils.numbers import (
    MAX_COUNT,
    check_shape,
    finite_number,
    positive_scalar,
)
from ..utils.windows import whole_pixels
from .quadrant import (
    angle_minus_sine,
    circle_folds,
    circle_pixels,
    circle_ranges,
    circle_splits,
)

try:
    from . import _exact
except ImportError as exc:  # a source tree whose extension is not built
    raise ImportError(
        "ccdphot_ext's compiled extension ccdphot_ext.aperture._exact is "
        "missing: install the package with pip, or build it in the source "
        "tree with 'python setup.py build_ext --inplace'") from exc

__all__ = ['EllipseShape', 'ellipse_overlap']


#: Boundary pixels computed per pass (arrays of 32 KiB stay in the cache).
PIECES = 4096

#: Circles' overlaps (and the ellipse engine's sums over whole windows of
#: circles) come from the compiled kernel ``_exact``, which ports the numpy
#: reference (``quadrant``, ``_Conic.weights``)
#: operation by operation; False switches every caller to the numpy
#: reference, whose weights agree to a few units in the last place (the
#: platform's ``atan2`` against numpy's). Tests compare the two.
COMPILED = True


def _inside_rows(lo, hi, n):
    """``(..., n)`` rows of weights, 1 in columns ``[lo, hi)`` and 0
    elsewhere: from a table of every row pattern when there are many rows,
    else by comparison."""
    cols = np.arange(n)
    if lo.size <= (n + 1) ** 2:
        return ((cols >= lo[..., None]) & (cols < hi[..., None])).astype(
            np.float64)
    edges = np.arange(n + 1)
    table = ((cols >= edges[:, None, None])
             & (cols < edges[None, :, None])).astype(np.float64)
    return table[lo, hi]


class _Conic:
    """
    An ellipse of semi-axes ``a``, ``b`` turned by ``theta`` (radians),
    as ``X`` (half-extent along x), ``Y`` (along y), the slope ``m`` of the
    centres of its vertical chords and the factor ``c`` of their
    half-lengths (see the module's docstring).
    """

    def __init__(self, a, b, theta):
        a, b, theta = float(a), float(b), float(theta)
        self.radius = max(a, b)  # no point of the ellipse is farther
        if a == b:  # a circle: exactly X = Y = r, m = 0, c = 1
            self.X = self.Y = a
            self.m, self.c = 0.0, 1.0
        else:
            cos, sin = math.cos(theta), math.sin(theta)
            x2 = (a * cos) ** 2 + (b * sin) ** 2
            self.X = math.sqrt(x2)
            self.Y = math.sqrt((a * sin) ** 2 + (b * cos) ** 2)
            self.m = sin * cos * (a * a - b * b) / x2
            self.c = a * b / x2
        self.q = self.m * self.m + self.c * self.c  # (Y / X)**2
        self.is_circle = self.m == 0.0 and self.c == 1.0

    def chord(self, y):
        """Ends of the horizontal chord at heights ``y`` and where it exists
        (elsewhere both ends are ``X``)."""
        inside = np.abs(y) < self.Y
        half = np.sqrt(np.maximum((self.Y - y) * (self.Y + y), 0.0))
        half *= self.c / self.q
        mid = y * (self.m / self.q)
        return (np.where(inside, mid - half, self.X),
                np.where(inside, mid + half, self.X), inside)

    def integral_s(self, a, b):
        """
        ``integral of sqrt(X**2 - t**2) dt`` from ``a`` to ``b``
        (``-X <= a <= b <= X``): the trapezoid under the chord plus the
        circular segment between chord and arc, each without cancellation.
        """
        X = self.X
        sa = np.sqrt(np.maximum((X - a) * (X + a), 0.0))
        sb = np.sqrt(np.maximum((X - b) * (X + b), 0.0))
        trapezoid = (b - a) * (sa + sb)
        # the angle between the radii to a and b, from its sine and cosine
        # (times X**2), the sine without cancellation
        same = a * b > 0
        den = b * sa + a * sb
        den = np.where(same & (den != 0), den, 1.0)
        sine = np.where(same, (X * X) * ((b - a) * (a + b)) / den,
                        b * sa - a * sb)
        angle = np.arctan2(sine, sa * sb + a * b)
        return 0.5 * trapezoid + (0.5 * X * X) * angle_minus_sine(angle)

    def column_integral(self, x0, x1, y):
        """``H(y)`` over the columns ``[x0, x1]`` (see the module)."""
        X = self.X
        t1, t2, inside = self.chord(y)
        middle = np.maximum(np.minimum(x1, t2) - np.maximum(x0, t1), 0.0)
        middle = np.where(inside, middle, 0.0)
        # left of the chord (or everywhere without one), then right of it
        a_l = np.clip(x0, -X, X)
        b_l = np.clip(np.minimum(x1, t1), a_l, X)
        b_r = np.clip(x1, -X, X)
        a_r = np.clip(np.maximum(x0, t2), -X, b_r)
        out = y * middle
        for a, b, sign in ((a_l, b_l, np.sign(y + self.m * X)),
                           (a_r, b_r, np.sign(y - self.m * X))):
            part = self.integral_s(a, b)
            if self.c != 1.0:
                part *= self.c
            out += sign * part
            if self.m != 0.0:
                out += (0.5 * self.m) * ((b - a) * (b + a))
        return out

    def column_ranges(self, u, v, ny, nx):
        """
        For windows of ``ny`` x ``nx`` pixels whose first pixel's centre is
        at ``(-u, -v)`` from the centre: per window and row, the columns
        touched ``[out_lo, out_hi)`` and wholly inside ``[in_lo, in_hi)``
        (clipped to the window), each ``(n, ny)`` int arrays.
        """
        rows = np.arange(ny, dtype=float)
        y0 = (rows - 0.5) - v[:, None]
        y1 = (rows + 0.5) - v[:, None]
        u = u[:, None]
        lo0, hi0, in0 = self.chord(y0)
        lo1, hi1, in1 = self.chord(y1)
        both = in0 & in1
        in_lo = np.ceil(np.maximum(lo0, lo1) + 0.5 + u)
        in_hi = np.floor(np.minimum(hi0, hi1) - 0.5 + u) + 1
        touched = (y1 > -self.Y) & (y0 < self.Y)
        left = self.chord(np.clip(-self.m * self.X, y0, y1))[0]
        right = self.chord(np.clip(self.m * self.X, y0, y1))[1]
        out_lo = np.floor(left + u - 0.5) + 1
        out_hi = np.ceil(right + u + 0.5)
        out_lo = np.where(touched, np.clip(out_lo, 0, nx), 0).astype(np.intp)
        out_hi = np.where(touched, np.clip(out_hi, out_lo, nx),
                          0).astype(np.intp)
        in_lo = np.where(both, np.clip(in_lo, out_lo, out_hi),
                         out_lo).astype(np.intp)
        in_hi = np.where(both, np.clip(in_hi, in_lo, out_hi),
                         in_lo).astype(np.intp)
        return out_lo, out_hi, in_lo, in_hi

    def weights(self, u, v, ny, nx):
        """``(n, ny, nx)`` overlaps of windows (as `column_ranges`)."""
        n = u.size
        circle = self.is_circle
        if circle and COMPILED:
            return _exact.circle_weights(self.X, u, v, ny, nx)
        if circle:
            folds = circle_folds(self.X, u, v, ny, nx)
            ranges = circle_ranges(self.X, folds[1], u, ny, nx)
        else:
            ranges = [a.ravel() for a in self.column_ranges(u, v, ny, nx)]
        out_lo, out_hi, in_lo, in_hi = ranges
        # the inside of each row (exactly 1) from a table of row patterns
        w = _inside_rows(in_lo, in_hi, nx).reshape(n, ny, nx)
        # the boundary pixels: two runs per row, left and right of the inside
        lengths = np.stack([in_lo - out_lo, out_hi - in_hi], axis=1)
        total = int(lengths.sum())
        if total == 0:
            return w
        rows = np.arange(n * ny)
        # per run: its first pixel (over all windows) minus its rank
        start = (rows * nx)[:, None] + np.stack([out_lo, in_hi], axis=1)
        start -= (np.cumsum(lengths) - lengths.ravel()).reshape(-1, 2)
        lengths = lengths.ravel()
        flat = np.repeat(start.ravel(), lengths)
        flat += np.arange(total)  # the pixel, over all windows
        row = np.repeat(rows, lengths[::2] + lengths[1::2])
        col = flat - (row - row // ny) * nx  # window * nx + column
        area = np.empty(total)
        for k in range(0, total, PIECES):  # small arrays stay in the cache
            part = slice(k, k + PIECES)
            if circle:
                area[part] = circle_pixels(self.X, folds, col[part],
                                           row[part])
                continue
            at = row[part] // ny
            x0 = (col[part] - at * nx - 0.5) - u[at]
            x1 = (col[part] - at * nx + 0.5) - u[at]
            y = row[part] - at * ny - v[at]
            area[part] = (self.column_integral(x0, x1, y + 0.5)
                          - self.column_integral(x0, x1, y - 0.5))
        if circle:
            circle_splits(self.X, folds, col, row, area)
        np.clip(area, 0.0, 1.0, out=area)
        w.ravel()[flat] = area
        return w


class EllipseShape:
    """
    The exact pixel overlaps of a circle, an ellipse or an annulus of
    either, for any number of centres.

    Parameters
    ----------
    outer : tuple of float
        ``(a, b, theta)``: the semi-axes in pixels (``a`` along x before
        rotation; ``a == b`` is a circle) and the rotation in radians,
        counter-clockwise from the x axis, of the shape, or of an
        annulus's outer edge.
    inner : tuple of float, optional
        The same for an annulus's inner edge; None (default) for a filled
        circle or ellipse.

    Examples
    --------
    A circle of radius 1 centred on a pixel covers ``pi`` pixels:

    >>> import numpy as np
    >>> from ccdphot_ext.aperture.circular import EllipseShape
    >>> shape = EllipseShape((1.0, 1.0, 0.0))
    >>> slc, w, truncated = shape.frame_weights((5.0, 5.0), (10, 10))
    >>> w.shape, round(float(w.sum()), 14), w[1, 1], truncated
    ((3, 3), 3.14159265358979, np.float64(1.0), False)
    """

    def __init__(self, outer, inner=None):
        self.outer = _Conic(*_semi_axes(outer, 'outer'))
        self.inner = (None if inner is None
                      else _Conic(*_semi_axes(inner, 'inner')))
        #: ``(ny, nx)`` pixels of every position's window.
        self.window = (int(math.ceil(2 * self.outer.Y + 1)),
                       int(math.ceil(2 * self.outer.X + 1)))

    def corners(self, x, y):
        """
        The first column and row of the windows centred on ``x``, ``y``.

        Parameters
        ----------
        x : float or array_like
            The x pixel coordinates of the centres.
        y : float or array_like
            The y pixel coordinates of the centres (same shape as ``x``).

        Returns
        -------
        x0 : `~numpy.ndarray` of int
            The first column of each window (`window` pixels wide).
        y0 : `~numpy.ndarray` of int
            The first row of each window.
        """
        # clipped far beyond any frame first: a position of 1e30 would not
        # fit the integers (numpy's "invalid value encountered in cast")
        x0 = whole_pixels(np.floor(x - self.outer.X - 0.5)) + 1
        y0 = whole_pixels(np.floor(y - self.outer.Y - 0.5)) + 1
        return x0, y0

    def truncated(self, x, y, shape):
        """
        Say where the shape reaches beyond a frame of ``shape``.

        Parameters
        ----------
        x : float or array_like
            The x pixel coordinates of the centres.
        y : float or array_like
            The y pixel coordinates of the centres (same shape as ``x``).
        shape : tuple of int
            The frame's ``(ny, nx)`` in pixels.

        Returns
        -------
        truncated : bool or `~numpy.ndarray` of bool
            True where part of the shape's bounding box falls off the frame.
        """
        ny, nx = shape
        X, Y = self.outer.X, self.outer.Y
        return ((x - X < -0.5) | (x + X > nx - 0.5)
                | (y - Y < -0.5) | (y + Y > ny - 0.5))

    def weights(self, x, y):
        """
        Compute the exact overlaps of the windows centred on ``x``, ``y``.

        Parameters
        ----------
        x : 1-D array_like of float
            The x pixel coordinates of the ``n`` centres.
        y : 1-D array_like of float
            The y pixel coordinates of the ``n`` centres.

        Returns
        -------
        weights : `~numpy.ndarray`
            An ``(n, ny, nx)`` array (``(ny, nx)`` the `window`) of the
            area of each pixel inside the shape, in [0, 1]; the first pixel
            of each window is at `corners`.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        x0, y0 = self.corners(x, y)
        u, v = x - x0, y - y0
        w = self.outer.weights(u, v, *self.window)
        if self.inner is not None:
            w -= self.inner.weights(u, v, *self.window)
            np.maximum(w, 0.0, out=w)
        return w

    @property
    def reach(self):
        """
        The largest distance from the centre to the centre of a pixel the
        shape touches (pixels).
        """
        return self.outer.radius + math.sqrt(0.5)

    @property
    def half_extent(self):
        """
        Half the side of a square around the centre that holds every pixel
        the shape touches, with a pixel to spare (pixels).
        """
        return max(self.outer.X, self.outer.Y) + 1.0

    def touches(self, x, y, ys, xs):
        """
        Say where the shapes overlap given pixels by a positive area.

        Parameters
        ----------
        x : 1-D array_like of float
            The x pixel coordinates of the ``m`` centres.
        y : 1-D array_like of float
            The y pixel coordinates of the ``m`` centres.
        ys : `~numpy.ndarray` of int
            The rows of the pixels, one leading row per centre, broadcast
            with ``xs`` (for example ``(m, ny, 1)``).
        xs : `~numpy.ndarray` of int
            The columns of the pixels (for example ``(m, 1, nx)``).

        Returns
        -------
        touched : `~numpy.ndarray` of bool
            The broadcast shape of ``ys`` and ``xs``: True where the shape
            centred on the row's centre covers part of the pixel.
        """
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        inner = (slice(None),) + (None,) * (np.ndim(ys) - 1)
        if self.inner is None and self.outer.m == 0 and self.outer.c == 1:
            # a circle: the nearest point of the pixel square is inside
            dx = np.maximum(np.abs(xs - x[inner]) - 0.5, 0.0)
            dy = np.maximum(np.abs(ys - y[inner]) - 0.5, 0.0)
            return dx * dx + dy * dy < self.outer.X ** 2
        x0, y0 = self.corners(x, y)
        ny, nx = self.window
        ry, rx = ys - y0[inner], xs - x0[inner]
        on = (ry >= 0) & (ry < ny) & (rx >= 0) & (rx < nx)
        hit = self.weights(x, y) > 0
        which = np.arange(x.size)[inner]
        return on & hit[which, np.clip(ry, 0, ny - 1), np.clip(rx, 0, nx - 1)]

    def covers(self, x, y, ys, xs):
        """
        Say where the centres of given pixels lie inside the shapes.

        This is photutils' ``method='center'`` membership.

        Parameters
        ----------
        x : 1-D array_like of float
            The x pixel coordinates of the ``m`` centres.
        y : 1-D array_like of float
            The y pixel coordinates of the ``m`` centres.
        ys : `~numpy.ndarray` of int
            The rows of the pixels, one leading row per centre, broadcast
            with ``xs`` (for example ``(m, ny, 1)``).
        xs : `~numpy.ndarray` of int
            The columns of the pixels (for example ``(m, 1, nx)``).

        Returns
        -------
        covered : `~numpy.ndarray` of bool
            The broadcast shape of ``ys`` and ``xs``: True where the
            pixel's centre is inside the shape (for an annulus, inside the
            outer edge and not inside the inner one).
        """
        inner = (slice(None),) + (None,) * (np.ndim(ys) - 1)
        dx = xs - np.asarray(x, dtype=np.float64)[inner]
        dy = ys - np.asarray(y, dtype=np.float64)[inner]

        def within(conic):
            t1, t2, inside = conic.chord(dy)
            return inside & (dx >= t1) & (dx < t2)

        out = within(self.outer)
        if self.inner is not None:
            out &= ~within(self.inner)
        return out

    def frame_weights(self, position, shape):
        """
        Compute the exact weights of one centre on a frame.

        Parameters
        ----------
        position : tuple of float
            The ``(x, y)`` pixel position of the centre.
        shape : tuple of int
            The frame's ``(ny, nx)`` in pixels.

        Returns
        -------
        slices : tuple of slices or None
            Where the weights sit in the frame (None if wholly off it).
        weights : `~numpy.ndarray`
            The overlaps of those pixels, in [0, 1].
        truncated : bool
            True when part of the shape falls outside the frame.
        """
        shape = check_shape(shape)
        x, y = _one_position(position)
        x0, y0 = (int(c[0]) for c in self.corners(x, y))
        truncated = bool(self.truncated(x, y, shape)[0])
        ny, nx = self.window
        ys = slice(max(y0, 0), min(y0 + ny, shape[0]))
        xs = slice(max(x0, 0), min(x0 + nx, shape[1]))
        if ys.stop <= ys.start or xs.stop <= xs.start:
            return None, np.zeros((0, 0)), True
        w = self.weights(x, y)[0]
        return ((ys, xs), w[ys.start - y0:ys.stop - y0,
                            xs.start - x0:xs.stop - x0], truncated)


def ellipse_overlap(xmin, ymin, nx, ny, a, b, theta=0.0):
    """
    Exact overlap of an ellipse centred on the origin with a pixel grid.

    Parameters
    ----------
    xmin : float
        The left edge of the grid relative to the ellipse's centre, in
        pixels (pixel ``(0, 0)`` of the grid spans ``xmin ... xmin + 1``
        along x).
    ymin : float
        The lower edge of the grid relative to the ellipse's centre, in
        pixels.
    nx : int
        The number of grid columns.
    ny : int
        The number of grid rows.
    a : float
        The semi-axis along x before rotation, in pixels (positive).
    b : float
        The semi-axis along y before rotation, in pixels (positive);
        ``a == b`` is a circle.
    theta : float, optional
        The rotation in radians, counter-clockwise from the x axis
        (default 0).

    Returns
    -------
    weights : `~numpy.ndarray`
        The ``(ny, nx)`` areas of the grid's pixels inside the ellipse, in
        [0, 1].

    Examples
    --------
    >>> from ccdphot_ext.aperture.circular import ellipse_overlap
    >>> w = ellipse_overlap(-2.0, -2.0, 4, 4, 2.0, 2.0)
    >>> round(float(w.sum()), 13), round(float(w[0, 0]), 6)
    (12.5663706143592, 0.315146)
    """
    ny, nx = check_shape((ny, nx), '(ny, nx)', max_pixels=MAX_COUNT)
    conic = _Conic(*_semi_axes((a, b, theta), 'ellipse'))
    u = np.array([-finite_number(xmin, 'xmin') - 0.5])
    v = np.array([-finite_number(ymin, 'ymin') - 0.5])
    return conic.weights(u, v, ny, nx)[0]


def _semi_axes(value, name):
    """``(a, b, theta)`` of an ellipse checked: two positive lengths (the
    one number rule) and a finite angle, named by ``name``."""
    try:
        a, b, theta = value
    except (TypeError, ValueError):
        raise TypeError(f'{name} must be (a, b, theta): two semi-axes and '
                        f'an angle in radians, got {value!r}') from None
    return (positive_scalar(a, f'{name} semi-axis a', allow_none=False),
            positive_scalar(b, f'{name} semi-axis b', allow_none=False),
            finite_number(theta, f'{name} theta'))


def _one_position(position):
    """``(x, y)`` of one centre as two 1-element float64 arrays (finite
    numbers, else an error naming position)."""
    try:
        x, y = position
    except (TypeError, ValueError):
        raise TypeError('position must be one (x, y) pair of numbers, got '
                        f'{position!r}') from None
    return (np.array([finite_number(x, 'position')]),
            np.array([finite_number(y, 'position')]))


@singledispatch
def exact_shape(aperture):
    """
    The `EllipseShape` of an aperture with closed-form exact overlaps
    (photutils' circles, ellipses and their annuli), else None.

    Examples
    --------
    >>> from photutils.aperture import CircularAperture
    >>> from ccdphot_ext.aperture.circular import exact_shape
    >>> exact_shape(CircularAperture((3, 4), r=2.5)).window
    (6, 6)
    """
    return None


def radians(theta):
    """
    An aperture's angle as a float in radians.

    Parameters
    ----------
    theta : float, `~astropy.units.Quantity` or None
        The ``theta`` of a photutils aperture: an angle Quantity, or a
        number in radians; None (an aperture with no angle) is 0.

    Returns
    -------
    radians : float
        The angle in radians.

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.aperture.circular import radians
    >>> radians(90 * u.deg), radians(0.5), radians(None)
    (1.5707963267948966, 0.5, 0.0)
    """
    if theta is None:
        return 0.0
    return float(getattr(theta, 'to_value', lambda unit: theta)('rad'))


@exact_shape.register
def _(aperture: CircularAperture):
    r = float(aperture.r)
    return EllipseShape((r, r, 0.0))


@exact_shape.register
def _(aperture: EllipticalAperture):
    return EllipseShape((aperture.a, aperture.b, radians(aperture.theta)))


@exact_shape.register
def _(aperture: CircularAnnulus):
    r_in, r_out = float(aperture.r_in), float(aperture.r_out)
    return EllipseShape((r_out, r_out, 0.0), (r_in, r_in, 0.0))


@exact_shape.register
def _(aperture: EllipticalAnnulus):
    theta = radians(aperture.theta)
    return EllipseShape((aperture.a_out, aperture.b_out, theta),
                        (aperture.a_in, aperture.b_in, theta))
