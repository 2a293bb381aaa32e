# Licensed under a 3-clause BSD style license - see LICENSE
"""
Box apertures: a thin, validated layer over photutils'
`~photutils.aperture.RectangularAperture`.

Pixel convention (as photutils): pixel ``i`` spans ``i - 0.5 ... i + 0.5``,
so ``data[y0:y1, x0:x1]`` is the box centred on
``((x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2)`` with width ``x1 - x0`` and height
``y1 - y0``.
"""

import math
from functools import cached_property

import astropy.units as u
import numpy as np
from photutils.aperture import RectangularAperture

__all__ = ['BoxAperture', 'aperture_weights']


def _positive(value, name):
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f'{name} must be a number, got {value!r}')
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f'{name} must be a number, got {value!r}') from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f'{name} must be positive and finite, got {value}')
    return value


def _positions(position):
    try:
        pos = np.array(position, dtype=float)
    except (TypeError, ValueError):
        raise TypeError('position must be (x, y) or an (N, 2) array of '
                        f'numbers, got {position!r}') from None
    if pos.ndim not in (1, 2) or pos.shape[-1] != 2 or pos.size == 0:
        raise ValueError('position must be (x, y) or an (N, 2) array, got '
                         f'shape {pos.shape}')
    if not np.all(np.isfinite(pos)):
        raise ValueError('position must be finite (NaN or inf found)')
    return pos


def _theta_radians(theta):
    if isinstance(theta, u.Quantity):
        try:
            return float(theta.to_value(u.rad))
        except u.UnitConversionError as exc:
            raise u.UnitsError(f'theta must be an angle, got unit '
                               f'{theta.unit}') from exc
    if isinstance(theta, (bool, np.bool_, str, bytes)):
        raise TypeError(f'theta must be a number or angle, got {theta!r}')
    try:
        value = float(theta)
    except (TypeError, ValueError):
        raise TypeError(f'theta must be a number or angle, got {theta!r}'
                        ) from None
    if not math.isfinite(value):
        raise ValueError(f'theta must be finite, got {value}')
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


class BoxAperture:
    """
    A rectangular aperture, one or many positions, of one size.

    Parameters
    ----------
    position : array_like
        ``(x, y)`` pixel position, or an ``(N, 2)`` array of positions, as in
        photutils.
    width, height : float
        Full side lengths in pixels along x and y (before rotation).
    theta : float or `~astropy.units.Quantity`, optional
        Rotation counter-clockwise from the x axis; a float is in radians
        (as photutils), or pass an angle Quantity.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture
    >>> box = BoxAperture.from_slices(np.s_[158:178, 492:512])
    >>> box.positions
    array([[501.5, 167.5]])
    >>> box.width, box.height, box.n_pix
    (20.0, 20.0, 400.0)
    >>> data = np.arange(767 * 510.0).reshape(510, 767)
    >>> bool(np.all(box.cutout(data) == data[158:178, 492:512]))
    True
    """

    def __init__(self, position, width, height, theta=0.0):
        self._positions = _positions(position)
        self._isscalar = self._positions.ndim == 1
        self.width = _positive(width, 'width')
        self.height = _positive(height, 'height')
        self.theta = _theta_radians(theta)

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
        """
        if not isinstance(slices, tuple) or len(slices) != 2:
            raise TypeError('slices must be a tuple of two slices, '
                            f'np.s_[y0:y1, x0:x1], got {slices!r}')
        y0, y1 = _check_slice(slices[0], 0)
        x0, x1 = _check_slice(slices[1], 1)
        return cls(((x0 + x1 - 1) / 2.0, (y0 + y1 - 1) / 2.0),
                   x1 - x0, y1 - y0)

    @property
    def positions(self):
        """Positions as an ``(N, 2)`` array of ``(x, y)``."""
        return np.atleast_2d(self._positions)

    @property
    def isscalar(self):
        """True when built from one ``(x, y)`` position."""
        return self._isscalar

    def __len__(self):
        if self._isscalar:
            raise TypeError('a single-position BoxAperture has no len()')
        return len(self._positions)

    def __getitem__(self, index):
        if self._isscalar:
            raise TypeError('a single-position BoxAperture is not '
                            'subscriptable')
        return BoxAperture(self._positions[index], self.width, self.height,
                           self.theta)

    def __repr__(self):
        pos = self._positions.tolist()
        return (f'<BoxAperture(position={pos}, width={self.width}, '
                f'height={self.height}, theta={self.theta})>')

    @cached_property
    def aperture(self):
        """The equivalent photutils `~photutils.aperture.RectangularAperture`."""
        return RectangularAperture(self._positions, self.width, self.height,
                                   theta=self.theta * u.rad)

    @property
    def n_pix(self):
        """Geometric area in pixels, ``width * height``."""
        return self.width * self.height

    @property
    def is_axis_aligned(self):
        """True when the rotation is a multiple of 90 degrees."""
        return math.isclose(math.remainder(self.theta, math.pi / 2), 0.0,
                            abs_tol=1e-12)

    @property
    def _sides(self):
        """Extents along x and y in the frame (swapped at 90 degrees)."""
        if math.isclose(math.remainder(self.theta, math.pi), 0.0,
                        abs_tol=1e-12):
            return self.width, self.height
        return self.height, self.width

    @property
    def is_pixel_aligned(self):
        """True when every edge falls on a pixel boundary (``k + 0.5``)."""
        if not self.is_axis_aligned:
            return False
        wx, wy = self._sides
        pos = self.positions
        edges = np.concatenate([pos[:, 0] - wx / 2, pos[:, 0] + wx / 2,
                                pos[:, 1] - wy / 2, pos[:, 1] + wy / 2])
        frac = edges + 0.5 - np.round(edges + 0.5)
        return bool(np.all(np.abs(frac) < 1e-9))

    def bounds(self):
        """
        Integer pixel ranges touched by each box, before clipping to a
        frame: an ``(N, 4)`` array of ``x0, x1, y0, y1`` (stop exclusive).
        Only defined for axis-aligned boxes.
        """
        if not self.is_axis_aligned:
            raise ValueError('bounds() needs an axis-aligned box; rotated '
                             'boxes go through photutils masks')
        wx, wy = self._sides
        pos = self.positions
        out = np.empty((len(pos), 4), dtype=np.int64)
        out[:, 0] = np.floor(pos[:, 0] - wx / 2 + 0.5 + 1e-9)
        out[:, 1] = np.ceil(pos[:, 0] + wx / 2 + 0.5 - 1e-9)
        out[:, 2] = np.floor(pos[:, 1] - wy / 2 + 0.5 + 1e-9)
        out[:, 3] = np.ceil(pos[:, 1] + wy / 2 + 0.5 - 1e-9)
        return out

    def cutout(self, data):
        """
        The pixels each box touches, cut from ``data``.

        For a pixel-aligned box fully inside the frame this is exactly
        ``data[y0:y1, x0:x1]``; otherwise the bounding pixels clipped to the
        frame. Returns one array for a single position, else a list.
        """
        arr = np.asanyarray(getattr(data, 'data', data))
        if arr.ndim != 2:
            raise ValueError(f'data must be 2-D, got shape {arr.shape}')
        out = []
        for index in range(len(self.positions)):
            slc, _, _ = aperture_weights(self, arr.shape, index=index)
            out.append(arr[slc] if slc is not None else arr[0:0, 0:0])
        return out[0] if self._isscalar else out


def _overlap_1d(lo, hi, start, stop):
    """Fractional overlap of [lo, hi] with pixels start..stop-1."""
    edges = np.arange(start, stop, dtype=float)
    return np.clip(np.minimum(hi, edges + 0.5) - np.maximum(lo, edges - 0.5),
                   0.0, 1.0)


def aperture_weights(aperture, shape, *, index=0, method='exact',
                     subpixels=5):
    """
    Pixel weights of one aperture position on a frame of ``shape``.

    Axis-aligned `BoxAperture` weights are exact: the overlap of a pixel with
    an axis-aligned rectangle is the product of two 1-D overlaps (exactly 1
    inside a pixel-aligned box). Other apertures use the photutils mask with
    ``method`` and ``subpixels``.

    Returns
    -------
    slices : tuple of slices or None
        Where the weights sit in the frame (None if fully off the frame).
    weights : ndarray
        Weights in [0, 1] over those pixels.
    truncated : bool
        True when part of the aperture falls outside the frame.
    """
    ny, nx = shape
    if isinstance(aperture, BoxAperture) and aperture.is_axis_aligned:
        x, y = aperture.positions[index]
        wx, wy = aperture._sides
        x0, x1, y0, y1 = aperture.bounds()[index]
        truncated = bool(x0 < 0 or y0 < 0 or x1 > nx or y1 > ny)
        cx0, cx1 = max(x0, 0), min(x1, nx)
        cy0, cy1 = max(y0, 0), min(y1, ny)
        if cx1 <= cx0 or cy1 <= cy0:
            return None, np.zeros((0, 0)), True
        if aperture.is_pixel_aligned:
            weights = np.ones((cy1 - cy0, cx1 - cx0))
        else:
            wxs = _overlap_1d(x - wx / 2, x + wx / 2, cx0, cx1)
            wys = _overlap_1d(y - wy / 2, y + wy / 2, cy0, cy1)
            weights = np.outer(wys, wxs)
        return (slice(cy0, cy1), slice(cx0, cx1)), weights, truncated

    phot = aperture.aperture if isinstance(aperture, BoxAperture) else aperture
    kwargs = {'method': method}
    if method == 'subpixel':
        kwargs['subpixels'] = subpixels
    masks = phot.to_mask(**kwargs)
    mask = masks if not isinstance(masks, list) else masks[index]
    large, small = mask.get_overlap_slices(shape)
    if large is None:
        return None, np.zeros((0, 0)), True
    weights = np.asarray(mask.data[small], dtype=float)
    full = float(np.sum(mask.data))
    truncated = bool(np.sum(weights) < full * (1 - 1e-12))
    return large, weights, truncated
