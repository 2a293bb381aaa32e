# Licensed under a 3-clause BSD style license - see LICENSE
"""
Which pixels an aperture touches (any overlap) or covers (their centres
inside), in closed form, for many positions at once (internal): the hook
sky annuli use to leave apertures out and to find an annulus reaching into
an aperture.
"""

import math
from functools import singledispatch

import numpy as np

from .box import BoxAperture
from .circular import exact_shape

__all__ = []  # internal module


class AlignedBoxShape:
    """The touch geometry of an axis-aligned box of sides ``(w, h)``, with
    the interface of `~ccdphot_ext.aperture.circular.EllipseShape`."""

    def __init__(self, sides):
        self.w, self.h = (float(s) for s in sides)

    @property
    def reach(self):
        """The largest distance from the centre to the centre of a pixel
        the box touches."""
        return math.hypot(self.w / 2 + 0.5, self.h / 2 + 0.5)

    @property
    def half_extent(self):
        """Half the side of a square around the centre that holds every
        pixel the box touches, with a pixel to spare."""
        return max(self.w, self.h) / 2 + 1.0

    def touches(self, x, y, ys, xs):
        """True where boxes centred on ``x``, ``y`` overlap the pixels of
        rows ``ys`` and columns ``xs`` by a positive area (as
        `EllipseShape.touches`)."""
        inner = (slice(None),) + (None,) * (np.ndim(ys) - 1)
        dx = np.abs(xs - np.asarray(x, dtype=np.float64)[inner]) - 0.5
        dy = np.abs(ys - np.asarray(y, dtype=np.float64)[inner]) - 0.5
        return (dx < self.w / 2) & (dy < self.h / 2)

    def covers(self, x, y, ys, xs):
        """True where the centres of the pixels of rows ``ys`` and columns
        ``xs`` lie inside boxes centred on ``x``, ``y`` (as
        `EllipseShape.covers`)."""
        inner = (slice(None),) + (None,) * (np.ndim(ys) - 1)
        dx = np.abs(xs - np.asarray(x, dtype=np.float64)[inner])
        dy = np.abs(ys - np.asarray(y, dtype=np.float64)[inner])
        return (dx < self.w / 2) & (dy < self.h / 2)


@singledispatch
def touch_shape(aperture):
    """
    The closed-form touch geometry of ``aperture`` (``reach``,
    ``half_extent``, ``touches``, ``covers``), or None when there is none
    (its masks are used instead).
    """
    return exact_shape(aperture)  # circles, ellipses and their annuli


@touch_shape.register
def _(aperture: BoxAperture):
    return AlignedBoxShape(aperture._sides) if aperture.is_axis_aligned \
        else None
