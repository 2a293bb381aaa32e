# Licensed under a 3-clause BSD style license - see LICENSE
"""
Box apertures: a photutils `~photutils.aperture.PixelAperture` with exact
pixel overlaps, axis-aligned or rotated.

Pixel convention (as photutils): pixel ``i`` spans ``i - 0.5 ... i + 0.5``,
so ``data[y0:y1, x0:x1]`` is the box centred on
``((x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2)`` with width ``x1 - x0`` and height
``y1 - y0``.
"""

import math

import astropy.units as u
import numpy as np
from astropy.utils import lazyproperty
from photutils.aperture import ApertureMask, RectangularAperture
from photutils.aperture.attributes import (
    PixelPositions,
    PositiveScalar,
    ScalarAngleOrValue,
)
from photutils.geometry import rectangular_overlap_grid

from ..utils.inputs import pixel_positions, positive_scalar
from ..utils.numbers import (
    SCALE_RANGE,
    check_index,
    check_shape,
    finite_number,
)
from ..utils.windows import whole_pixels
from .overlap import (
    _overlap_1d,
    _rectangle_overlap,
    axis_sides,
    is_axis_aligned,
)

__all__ = ['BoxAperture']

_LONG_NAMES = {'w': 'width', 'h': 'height'}


def _as_positions(position):
    if isinstance(position, u.Quantity):
        raise TypeError("'positions' must not be a Quantity (pixels)")
    return pixel_positions(position, 'position')


class _Positions(PixelPositions):
    """Pixel positions, validated with messages naming ``position``."""

    def _validate(self, value):
        return _as_positions(value)


class _Side(PositiveScalar):
    """A positive finite side length; messages name ``w`` and ``width``."""

    def _validate(self, value):
        long = _LONG_NAMES[self.name]
        try:
            positive_scalar(value, f"'{self.name}' ({long})",
                            allow_none=False)
        except ValueError:
            low, high = SCALE_RANGE
            raise ValueError(f"'{self.name}' must be a positive scalar (the "
                             f'box {long}, finite, between {low:.3g} and '
                             f'{high:.3g}), got {value!r}') from None


class _Theta(ScalarAngleOrValue):
    """A finite rotation: angle Quantity, or a float in radians."""

    def _validate(self, value):
        if isinstance(value, u.Quantity):
            if not value.isscalar or value.unit.physical_type != 'angle':
                raise u.UnitConversionError(
                    f'theta must be a scalar angle, got {value!r}')
            number = value.to_value(u.rad)
        else:
            number = value
        try:
            if not np.isscalar(number):
                raise TypeError
            finite_number(number, 'theta')
        except TypeError:
            raise TypeError(f'theta must be a number (radians) or an angle '
                            f'Quantity, got {value!r}') from None


def _one_of(name, value, alias, alias_value, *, default=None):
    if value is not None and alias_value is not None:
        raise TypeError(f'give {name} or {alias}, not both')
    value = value if value is not None else alias_value
    if value is None:
        if default is not None:
            return default
        raise TypeError(f'BoxAperture needs {name} (or {alias})')
    return value


def _check_slice(s, axis):
    if not isinstance(s, slice):
        raise TypeError(f'slices: axis {axis} must be a slice such as '
                        f'np.s_[y0:y1, x0:x1], got {s!r}')
    if s.step not in (None, 1):
        raise ValueError(f'slices: axis {axis} has step {s.step}; a box '
                         'needs contiguous pixels (step 1)')
    for end in (s.start, s.stop):
        if end is None:
            raise ValueError(f'slices: axis {axis} needs explicit start and '
                             f'stop, got {s}')
        if isinstance(end, (bool, np.bool_)) or not isinstance(
                end, (int, np.integer)):
            raise TypeError(f'slices: axis {axis} bounds must be integers, '
                            f'got {s}')
        if end < 0:
            raise ValueError(f'slices: axis {axis} has a negative bound in '
                             f'{s}; use absolute pixel indices')
    if s.stop <= s.start:
        raise ValueError(f'slices: axis {axis} is empty or reversed ({s}); '
                         'stop must exceed start')
    return int(s.start), int(s.stop)


class BoxAperture(RectangularAperture):
    """
    A rectangular aperture with exact pixel overlaps, one or many
    positions, of one size: a photutils
    `~photutils.aperture.RectangularAperture` (so a
    `~photutils.aperture.PixelAperture`) whose masks are exact.

    Every box, axis-aligned or rotated, weighs each pixel by the exact
    area of the pixel inside it (``to_mask(method='exact')``, the
    default), so photutils' `~photutils.aperture.aperture_photometry` and
    `~photutils.aperture.ApertureStats` give exact sums on it.
    ``method='center'`` and ``'subpixel'`` are photutils' own.

    Parameters
    ----------
    positions : array_like
        The ``(x, y)`` pixel position of the box centre, or an ``(N, 2)``
        array of positions, as in photutils (zero-based pixel coordinates,
        finite; not a Quantity). Required, here or as ``position``.
    w : float
        The full side length in pixels along x before rotation (positive,
        finite). Required, here or as ``width``.
    h : float
        The full side length in pixels along y before rotation (positive,
        finite). Required, here or as ``height``.
    theta : float or `~astropy.units.Quantity`, optional
        The rotation counter-clockwise from the x axis: a float in radians
        (as photutils) or an angle Quantity (default 0, axis-aligned).
        Stored as a Quantity in radians.
    position : array_like, optional
        Another name for ``positions`` (give one of the two).
    width : float, optional
        Another name for ``w`` (give one of the two).
    height : float, optional
        Another name for ``h`` (give one of the two).

    Raises
    ------
    TypeError
        If a required size or position is missing, given under both of
        its names, or not a number (``positions`` as a Quantity included).
    ValueError
        If a position is not finite or not ``(x, y)``-shaped, or a side is
        not positive and finite.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture
    >>> box = BoxAperture.from_slices(np.s_[158:178, 492:512])
    >>> box.positions
    array([501.5, 167.5])
    >>> box.width, box.height, box.n_pix
    (20.0, 20.0, 400.0)
    >>> data = np.arange(767 * 510.0).reshape(510, 767)
    >>> bool(np.all(box.cutout(data) == data[158:178, 492:512]))
    True

    A rotated box is exact too: the weights of its mask add up to its area.

    >>> import astropy.units as u
    >>> turned = BoxAperture((20.3, 19.6), w=6, h=3, theta=30 * u.deg)
    >>> round(float(turned.to_mask(method='exact').data.sum()), 12)
    18.0
    """

    _params = ('positions', 'w', 'h', 'theta')
    positions = _Positions('The centre pixel position(s).')
    w = _Side('The full width in pixels (along x before rotation).')
    h = _Side('The full height in pixels (along y before rotation).')
    theta = _Theta('The counter-clockwise rotation from the x axis, as an '
                   'angle Quantity (a float is taken in radians).')
    #: Name of the size a curve of growth and its figure report.
    size_label = 'Box side'
    _is_rectangle = False  # exact masks, not photutils' 32 x 32 sampling

    def __init__(self, positions=None, w=None, h=None, theta=0.0, *,
                 position=None, width=None, height=None):
        self.positions = _one_of('positions', positions, 'position', position)
        self.w = _one_of('w', w, 'width', width)
        self.h = _one_of('h', h, 'height', height)
        self.theta = theta

    @classmethod
    def from_slices(cls, slices):
        """
        The box covering exactly the pixels of ``data[y0:y1, x0:x1]``.

        Parameters
        ----------
        slices : tuple of two slices
            ``np.s_[y0:y1, x0:x1]`` with non-negative integer bounds and
            step 1.

        Returns
        -------
        box : `BoxAperture`
            The axis-aligned box centred on
            ``((x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2)`` with width
            ``x1 - x0`` and height ``y1 - y0`` (pixels).

        Raises
        ------
        TypeError
            If ``slices`` is not a tuple of two slices with integer bounds.
        ValueError
            If a slice has no start or stop, a step other than 1, a
            negative bound, or is empty.
        """
        if not isinstance(slices, tuple) or len(slices) != 2:
            raise TypeError('slices must be a tuple of two slices, '
                            f'np.s_[y0:y1, x0:x1], got {slices!r}')
        y0, y1 = _check_slice(slices[0], 0)
        x0, x1 = _check_slice(slices[1], 1)
        return cls(((x0 + x1 - 1) / 2.0, (y0 + y1 - 1) / 2.0),
                   x1 - x0, y1 - y0)

    def __eq__(self, other):
        # a RectangularAperture of the same shape has other masks: unequal
        # whichever side the comparison starts from
        return isinstance(other, BoxAperture) and super().__eq__(other)

    __hash__ = None

    @property
    def width(self):
        """The full width in pixels (``w``)."""
        return self.w

    @width.setter
    def width(self, value):
        self.w = value

    @property
    def height(self):
        """The full height in pixels (``h``)."""
        return self.h

    @height.setter
    def height(self, value):
        self.h = value

    @lazyproperty
    def _theta_rad(self):
        return float(self.theta.to_value(u.rad))

    @lazyproperty
    def area(self):
        """The exact geometric area, ``w * h``."""
        return self.w * self.h

    @property
    def n_pix(self):
        """
        The pixels the box covers: its `area` ``w * h`` (what
        `~ccdphot_ext.measure` counts as ``n_pix``, to rounding, for a box
        wholly on the frame without bad pixels or a threshold).
        """
        return self.area

    @lazyproperty
    def aperture(self):
        """
        The equivalent photutils `~photutils.aperture.RectangularAperture`,
        with photutils' 32 x 32 sub-pixel rectangle overlaps (the box
        itself is a photutils aperture with exact overlaps).
        """
        return RectangularAperture(self.positions, self.w, self.h,
                                   theta=self.theta)

    @lazyproperty
    def is_axis_aligned(self):
        """True when the rotation is within 1e-12 rad of k * 90 degrees."""
        return is_axis_aligned(self._theta_rad)

    @lazyproperty
    def _sides(self):
        """Extents along x and y in the frame (swapped at 90 degrees)."""
        return axis_sides(self.w, self.h, self._theta_rad)

    @lazyproperty
    def is_pixel_aligned(self):
        """True when every edge falls on a pixel boundary (``k + 0.5``)."""
        if not self.is_axis_aligned:
            return False
        wx, wy = self._sides
        pos = self._positions
        edges = np.concatenate([pos[:, 0] - wx / 2, pos[:, 0] + wx / 2,
                                pos[:, 1] - wy / 2, pos[:, 1] + wy / 2])
        frac = edges + 0.5 - np.round(edges + 0.5)
        return bool(np.all(np.abs(frac) < 1e-9))

    @lazyproperty
    def _xy_extents(self):
        cos, sin = math.cos(self._theta_rad), math.sin(self._theta_rad)
        return (abs(self.w / 2 * cos) + abs(self.h / 2 * sin),
                abs(self.w / 2 * sin) + abs(self.h / 2 * cos))

    @lazyproperty
    def _bbox(self):
        if not self.is_axis_aligned:
            return super()._bbox
        from photutils.aperture import BoundingBox
        return [BoundingBox(int(x0), int(x1), int(y0), int(y1))
                for x0, x1, y0, y1 in self.bounds()]

    def bounds(self):
        """
        Integer pixel ranges touched by each box, before clipping to a frame.

        Only defined for axis-aligned boxes; an edge within 1e-9 pixel of a
        pixel boundary is taken on it.

        Returns
        -------
        bounds : `~numpy.ndarray` of int
            An ``(N, 4)`` array of ``x0, x1, y0, y1`` per position (stop
            exclusive: the box touches ``data[y0:y1, x0:x1]``).

        Raises
        ------
        ValueError
            If the box is rotated (not a multiple of 90 degrees).
        """
        if not self.is_axis_aligned:
            raise ValueError('bounds() needs an axis-aligned box; use bbox '
                             'for a rotated one')
        wx, wy = self._sides
        pos = self._positions
        edges = np.empty((len(pos), 4))
        edges[:, 0] = np.floor(pos[:, 0] - wx / 2 + 0.5 + 1e-9)
        edges[:, 1] = np.ceil(pos[:, 0] + wx / 2 + 0.5 - 1e-9)
        edges[:, 2] = np.floor(pos[:, 1] - wy / 2 + 0.5 + 1e-9)
        edges[:, 3] = np.ceil(pos[:, 1] + wy / 2 + 0.5 - 1e-9)
        # edges beyond 64-bit integers (a side of 1e20, a position of
        # 1e308) stay far away instead of wrapping around to the frame
        return whole_pixels(edges, np.int64)

    def _exact_weights(self, index, x0, x1, y0, y1):
        """Exact weights of box ``index`` over pixels ``[y0:y1, x0:x1]``."""
        if self.is_pixel_aligned:
            return np.ones((y1 - y0, x1 - x0))
        x, y = self._positions[index]
        if self.is_axis_aligned:
            wx, wy = self._sides
            return np.outer(_overlap_1d(y - wy / 2, y + wy / 2, y0, y1),
                            _overlap_1d(x - wx / 2, x + wx / 2, x0, x1))
        return _rectangle_overlap(x0 - 0.5 - x, y0 - 0.5 - y, x1 - x0,
                                 y1 - y0, self.w, self.h, self._theta_rad)

    def _compute_overlap(self, edges, nx, ny, use_exact, subpixels):
        xmin, _, ymin, _ = edges
        if use_exact:
            return _rectangle_overlap(xmin, ymin, nx, ny, self.w, self.h,
                                     self._theta_rad)
        return rectangular_overlap_grid(*edges, nx, ny, self.w, self.h,
                                        self._theta_rad, 0, subpixels)

    def to_mask(self, method='exact', subpixels=5):
        """
        Pixel masks of the boxes.

        Parameters
        ----------
        method : {'exact', 'center', 'subpixel'}, optional
            ``'exact'`` (default): the exact area of each pixel inside the
            box (for every box, rotated or not). ``'center'`` (a pixel
            weighs 1 when its centre is inside, else 0) and ``'subpixel'``:
            as photutils.
        subpixels : int, optional
            The sub-sampling factor per pixel side of
            ``method='subpixel'`` (default 5; ignored by the other
            methods).

        Returns
        -------
        mask : `~photutils.aperture.ApertureMask` or list of them
            One mask for a scalar box, else a list.
        """
        use_exact, subpixels = self._translate_mask_method(method, subpixels)
        masks = []
        for index, (bbox, edges) in enumerate(
                zip(self._bbox, self._centered_edges, strict=True)):
            if use_exact:
                data = self._exact_weights(index, bbox.ixmin, bbox.ixmax,
                                           bbox.iymin, bbox.iymax)
            else:
                data = self._compute_overlap(edges, *reversed(bbox.shape),
                                             use_exact, subpixels)
            masks.append(ApertureMask(data, bbox))
        return masks[0] if self.isscalar else masks

    def frame_weights(self, shape, *, index=0):
        """
        Exact weights of box ``index`` on a frame of ``shape``.

        Parameters
        ----------
        shape : tuple of int
            The frame's ``(ny, nx)`` in pixels.
        index : int, optional
            Which position of a many-position box (default 0, the first).

        Returns
        -------
        slices : tuple of slices or None
            Where the weights sit in the frame (None if wholly off it).
        weights : `~numpy.ndarray`
            The overlaps of those pixels, in [0, 1].
        truncated : bool
            True when part of the box falls outside the frame.
        """
        ny, nx = check_shape(shape)
        index = check_index(index, 'index', len(self._positions))
        if self.is_axis_aligned:
            x0, x1, y0, y1 = (int(v) for v in self.bounds()[index])
        else:
            box = self._bbox[index]
            x0, x1, y0, y1 = box.ixmin, box.ixmax, box.iymin, box.iymax
        truncated = bool(x0 < 0 or y0 < 0 or x1 > nx or y1 > ny)
        cx0, cx1 = max(x0, 0), min(x1, nx)
        cy0, cy1 = max(y0, 0), min(y1, ny)
        if cx1 <= cx0 or cy1 <= cy0:
            return None, np.zeros((0, 0)), True
        weights = self._exact_weights(index, cx0, cx1, cy0, cy1)
        if truncated and not self.is_axis_aligned:
            # the corners of a rotated box's bounding box weigh nothing
            truncated = bool(np.sum(weights) < self.area * (1 - 1e-12))
        return (slice(cy0, cy1), slice(cx0, cx1)), weights, truncated

    def cutout(self, data):
        """
        The pixels each box touches, cut from ``data``.

        For a pixel-aligned box fully inside the frame this is exactly
        ``data[y0:y1, x0:x1]``; otherwise the bounding pixels clipped to the
        frame.

        Parameters
        ----------
        data : 2-D array_like, `~astropy.nddata.NDData` or `~astropy.units.Quantity`
            The frame (an object with a ``.data`` array, such as a
            `~astropy.nddata.CCDData`, is cut through its ``data``).

        Returns
        -------
        cutout : `~numpy.ndarray` or list of `~numpy.ndarray`
            A view of the touched pixels (empty for a box wholly off the
            frame): one array for a single position, else a list.

        Raises
        ------
        ValueError
            If ``data`` is not 2-D.
        """
        arr = np.asanyarray(getattr(data, 'data', data))
        if arr.ndim != 2:
            raise ValueError(f'data must be 2-D, got shape {arr.shape}')
        out = []
        for index in range(len(self._positions)):
            slc, _, _ = self.frame_weights(arr.shape, index=index)
            out.append(arr[slc] if slc is not None else arr[0:0, 0:0])
        return out[0] if self.isscalar else out
