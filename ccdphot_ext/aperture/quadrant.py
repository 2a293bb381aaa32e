# Licensed under a 3-clause BSD style license - see LICENSE
"""
A circle's exact overlap with its boundary pixels, folded into its first
quadrant (internal; `~ccdphot_ext.aperture.circular` uses it).

A circle is symmetric about both axes through its centre, so a pixel's
overlap equals that of its mirror image in the first quadrant; a pixel
across an axis is the sum of its two parts there. In the first quadrant
the circle's area in ``[xl, xh] x [yl, yh]`` needs one closed-form integral
of the arc (`quadrant_area`), whose circular segment comes from a short
series in the tangent of its half-angle (`segment_series`) where the arc
is short, as on every boundary pixel of a circle of radius 3 or more.
The functions work on flat arrays of a few thousand pixels at a time and
give each pixel the same operations whatever the others, so many windows
and one window get the same bits.

These functions are the numpy reference of the compiled kernel
(``_exact.c``), which ports them operation by operation and which the
package uses for circles (``circular.COMPILED``).
"""

import math

import numpy as np

__all__ = []  # internal module


#: Below this angle ``angle - sin(angle)`` is its Taylor series (six terms:
#: relative error below 1e-18).
_SERIES_ANGLE = 0.25


def angle_minus_sine(angle):
    """``angle - sin(angle)`` without cancellation for small angles."""
    a2 = angle * angle
    out = a2 * (-1.0 / math.factorial(13))
    for k in (11, 9, 7, 5, 3):
        out += (-1) ** (k // 2 + 1) / math.factorial(k)
        out *= a2
    out *= angle
    big = np.flatnonzero(angle >= _SERIES_ANGLE)
    if big.size:
        out[big] = angle[big] - np.sin(angle[big])
    return out


#: Below this tangent of half the angle, ``angle - sin(angle)`` is a series
#: in the tangent (`segment_series`): every boundary pixel of a circle of
#: radius 3 or more (an arc of at most sqrt(2) pixels) without a call of
#: ``arctan2``.
SERIES_TANGENT = 0.25

#: The series' coefficients: ``(angle - sin(angle)) / 2`` is ``t**3`` times
#: the sum over n >= 1 of ``(-1)**(n + 1) * 2n / (2n + 1) * t**(2n - 2)``
#: (``angle = 2 atan(t)``, ``sin(angle) = 2t / (1 + t**2)``); fourteen terms:
#: relative error below 1e-17 for ``t < SERIES_TANGENT``.
TANGENT_COEFFS = tuple((-1) ** (n + 1) * (2 * n) / (2 * n + 1)
                       for n in range(1, 15))


def segment_series(t):
    """
    Half of ``angle - sin(angle)`` from ``t``, the tangent of half the
    angle (``0 <= t < SERIES_TANGENT``), by Horner's rule: only products
    and sums, so the compiled kernel gets the same bits.
    """
    z = t * t
    p = np.full_like(t, TANGENT_COEFFS[-1])
    for c in TANGENT_COEFFS[-2::-1]:
        p *= z
        p += c
    z *= t
    p *= z
    return p


def circle_folds(r, u, v, ny, nx):
    """
    Each window's columns and rows folded onto the circle's first quadrant
    (`_fold`), flattened over the windows: for columns ``(low, high,
    split, half)``; for rows ``(low, high, s(low), s(high), None, split,
    half, s(half))`` with ``s(y) = sqrt(r**2 - y**2)`` the circle's
    half-width at ``y``.
    """
    xs = _fold((np.arange(nx) - 0.5) - u[:, None],
               (np.arange(nx) + 0.5) - u[:, None])
    yl, yh, split, half = _fold((np.arange(ny) - 0.5) - v[:, None],
                                (np.arange(ny) + 0.5) - v[:, None])
    s_lo, s_hi, s_half = (np.sqrt(np.maximum((r - y) * (r + y), 0.0))
                          for y in (yl, yh, half))
    return ([a.ravel() for a in xs],
            [None if a is None else a.ravel()
             for a in (yl, yh, s_lo, s_hi, None, split, half, s_half)])


def circle_ranges(r, rows, u, ny, nx):
    """
    A circle's column ranges (as ``_Conic.column_ranges`` of ``circular``)
    from its folded rows (`circle_folds`): a row's pixels are touched within
    the half-width at its edge nearer to the centre and wholly inside within
    that at the farther edge. Flat ``(n * ny)`` arrays.
    """
    yl, yh, s_lo, s_hi = rows[:4]
    u = np.repeat(u, ny)
    out_lo = np.where(yl < r, np.clip(np.floor(u - 0.5 - s_lo) + 1, 0, nx),
                      0).astype(np.intp)
    out_hi = np.where(yl < r, np.clip(np.ceil(s_lo + u + 0.5), out_lo, nx),
                      0).astype(np.intp)
    both = yh < r
    in_lo = np.where(both, np.clip(np.ceil(-s_hi + 0.5 + u), out_lo, out_hi),
                     out_lo).astype(np.intp)
    in_hi = np.where(both, np.clip(np.floor(s_hi - 0.5 + u) + 1, in_lo,
                                   out_hi), in_lo).astype(np.intp)
    return out_lo, out_hi, in_lo, in_hi


def _fold(lo, hi):
    """
    Intervals ``[lo, hi]`` folded onto ``x >= 0``: ``(low, high, split,
    half)`` with ``[low, high]`` the fold of the interval (of the part
    right of 0 for an interval across 0, whose mirrored left part is then
    ``[0, half]``, ``split`` True).
    """
    return (np.maximum(np.maximum(lo, -hi), 0.0), np.maximum(hi, -lo),
            (lo < 0) & (hi > 0), np.minimum(hi, -lo))


def quadrant_area(r, xl, xh, yl, yh, s_lo, s_hi):
    """
    A circle's area in the rectangles ``[xl, xh] x [yl, yh]`` of its first
    quadrant (``0 <= xl``, ``0 <= yl``, ``yh - yl <= 1``), given its
    half-widths ``s_lo`` at ``yl`` and ``s_hi`` at ``yh``: the full height
    left of ``s_hi``, the arc minus ``yl`` from there to ``s_lo``, nothing
    beyond. The integral of the arc is the trapezoid under its chord plus
    the circular segment above it, without cancellation (as
    ``_Conic.integral_s`` of ``circular``); in place, on small arrays.
    """
    a = np.maximum(s_hi, xl)
    np.minimum(a, xh, out=a)
    b = np.maximum(s_lo, xl)
    np.minimum(b, xh, out=b)
    sa, sb = r - a, r - b
    sa *= r + a
    sb *= r + b
    np.maximum(sa, 0.0, out=sa)
    np.maximum(sb, 0.0, out=sb)
    np.sqrt(sa, out=sa)
    np.sqrt(sb, out=sb)
    d = b - a
    # the sine (times r**2) of the angle between the radii to a and b is
    # num / den ...
    den = b * sa
    den += a * sb
    np.maximum(den, 1e-300, out=den)  # 0 only where d == 0
    num = a + b
    num *= d
    num *= r * r
    # ... its cosine (times r**2) ...
    cosine = sa * sb
    cosine += a * b
    # ... and the tangent of half the angle, sine / (1 + cosine)
    t = cosine + r * r
    t *= den
    np.divide(num, t, out=t)
    seg = segment_series(t)
    seg *= r * r
    big = np.flatnonzero(t >= SERIES_TANGENT)
    if big.size:
        seg[big] = angle_minus_sine(np.arctan2(num[big] / den[big],
                                               cosine[big])) * (0.5 * r * r)
    sa += sb
    sa *= d
    sa *= 0.5  # the trapezoid
    seg += sa
    a -= xl
    a *= yh - yl  # the full-height part
    seg += a
    d *= yl
    seg -= d
    return seg


def circle_pixels(r, folds, col, row):
    """
    A circle's overlap with boundary pixels (column ``col`` and row
    ``row`` counted over all windows), folded into the first quadrant
    (`circle_folds`).
    """
    return quadrant_area(r, folds[0][0][col], folds[0][1][col],
                          *(a[row] for a in folds[1][:4]))

def circle_splits(r, folds, col, row, area):
    """
    Add to ``area`` the mirrored parts of the boundary pixels that lie
    across an axis of the circle (`_fold`).
    """
    x_split, y_split = folds[0][2][col], folds[1][5][row]
    for k, x_mirror, y_mirror in ((np.flatnonzero(x_split), True, False),
                                  (np.flatnonzero(y_split), False, True),
                                  (np.flatnonzero(x_split & y_split), True,
                                   True)):
        if k.size == 0:
            continue
        c, w = col[k], row[k]
        zero = np.zeros(k.size)
        xpart = ((zero, folds[0][3][c]) if x_mirror
                 else (folds[0][0][c], folds[0][1][c]))
        ypart = ((zero, folds[1][6][w], np.full(k.size, r),
                  folds[1][7][w]) if y_mirror
                 else tuple(a[w] for a in folds[1][:4]))
        area[k] += quadrant_area(r, *xpart, *ypart)
