# Licensed under a 3-clause BSD style license - see LICENSE
"""
Sigma-clipped statistics of many rows at once, on sorted rows (internal;
the sky annuli and the blank-sky apertures use it).

`clip_rows` keeps, in each row, the pixels that astropy's
`~astropy.stats.sigma_clip` keeps with ``cenfunc='median'``,
``stdfunc='std'`` and ``axis=1``, and gives their mean and standard
deviation. astropy's compiled loop selects a median and sums its buffer
twice per row and iteration; here every row is sorted once, and then the
pixels still in the clip's buffer are a contiguous range of it: an
iteration needs the range's median (one or two elements), its sums (the
row's sums less those of the pixels clipped so far, which are few and at
the ends) and the new range (a short scan from each end). The kept pixels
are, as astropy's, those within the last bounds.

The bounds are computed in another order than astropy's loop (running
sums of the sorted deviations, not a running sum in buffer order), so they
may differ from its in the last bits. Where a pixel lies so close to a
bound that the rounding could decide whether it is kept, the row is
clipped by `~astropy.stats.sigma_clip` itself: the kept pixels are always
astropy's. Their mean and standard deviation are summed in sorted order
(within a few units of the last bit of numpy's pairwise sums).
"""

import warnings

import numpy as np
from astropy.stats import sigma_clip
from astropy.utils.exceptions import AstropyUserWarning

__all__ = []  # internal module

#: Pixels looked at in the first step when a range's end moves (most rows
#: clip fewer; rows that clip more take further steps, each twice as long).
SCAN = 8
#: Rows whose kept mean lies further than ``sqrt(FAR)`` standard
#: deviations from the row's median, or whose clipped pixels' squared
#: deviations exceed ``RATIO`` times the kept ones', get a two-pass
#: variance (the one-pass sums would lose digits).
FAR = 4.0
RATIO = 10.0
#: Pixels per block when the rows' sums are formed (float64 deviations:
#: 1 MiB, in the cache).
BLOCK_PIXELS = 2 ** 17
#: Safety factor on the bound of the rounding error of a clip bound: a row
#: with a pixel nearer a bound than this goes to astropy.
ROUNDING_MARGIN = 64.0
EPS = np.finfo(np.float64).eps


def count_rows(mask):
    """The number of True entries in each row of a 2-D boolean array
    (summed as bytes: several times faster than `numpy.count_nonzero`
    along an axis)."""
    mask = np.ascontiguousarray(mask)
    dtype = np.uint16 if mask.shape[1] < 2 ** 16 else np.int64
    return mask.view(np.uint8).sum(axis=1, dtype=dtype).astype(np.intp)


def blank(values, bad):
    """Set ``values`` (float32 or float64, C-contiguous) to NaN where
    ``bad``, in place: the NaN bit pattern is or-ed into those entries
    (arithmetic on the bits, several times faster than a boolean
    assignment on a scattered mask)."""
    bits = values.view(np.uint32 if values.itemsize == 4 else np.uint64)
    nan = np.array(np.nan, dtype=values.dtype).view(bits.dtype)
    flag = np.asarray(bad).view(np.uint8).astype(bits.dtype)
    flag *= nan
    bits |= flag


class RowClip:
    """
    The clip of each row: the mean ``level`` and the standard deviation
    ``std`` (not corrected for the clipping) of its kept pixels, their
    number ``n_kept``, the smallest and largest kept value (``low``,
    ``high``; +inf and -inf for a row that keeps none), and ``doubt``: the
    rows whose bounds fall within rounding of a pixel (clipped by astropy
    itself when `clip_rows` resolves them).
    """

    def __init__(self, level, std, n_kept, low, high, doubt):
        self.level, self.std, self.n_kept = level, std, n_kept
        self.low, self.high, self.doubt = low, high, doubt

    def keep(self, rows):
        """The kept pixels of ``rows`` (the rows that were clipped)."""
        out = rows >= self.low[:, None]
        out &= rows <= self.high[:, None]
        return out


def _range_sums(values, start, stop):
    """Sum of entries ``[start, stop)`` of each row of ``values`` (in
    order)."""
    m, k = values.shape
    if m == 0:
        return np.zeros(0)
    base = np.arange(m) * k
    cuts = np.empty(2 * m, dtype=np.intp)
    cuts[0::2] = base + np.minimum(start, k - 1)
    cuts[1::2] = base + np.minimum(stop, k - 1)
    sums = np.add.reduceat(values.ravel(), cuts)[0::2]
    # reduceat gives the first entry for an empty range; a range to the
    # row's end stops one short of it
    sums[stop <= start] = 0.0
    full = (stop == k) & (stop > start)
    if full.any():
        sums[full] += values[full, -1]
    return sums


class _Sorted:
    """Sorted rows (NaN last; float32 or float64), their numbers of finite
    pixels, an inner pixel of each (the centre of the deviations, in
    float64) and the sums of the deviations of their finite pixels and of
    the squared deviations."""

    def __init__(self, ordered, n=None):
        self.values = ordered
        m, self.k = ordered.shape
        if n is None:
            n = self.k - count_rows(np.isnan(ordered))
        self.n = n
        centre = self.at(np.arange(m), np.maximum(n - 1, 0) // 2)
        centre[n == 0] = 0.0
        self.centre = centre
        self.s1, self.s2 = np.zeros(m), np.zeros(m)
        # a block of rows (or of a long row's columns) at a time: the
        # deviations stay in the cache; each row is summed in order
        step = max(1, BLOCK_PIXELS // max(self.k, 1))
        width = min(self.k, BLOCK_PIXELS)
        for lo in range(0, m, step):
            rows = slice(lo, min(lo + step, m))
            for c0 in range(0, self.k, width):
                part = ordered[rows, c0:c0 + width]
                dev = np.subtract(part, centre[rows, None], dtype=np.float64)
                zero = np.zeros(dev.shape[0], dtype=np.intp)
                count = np.clip(n[rows] - c0, 0, dev.shape[1])
                self.s1[rows] += _range_sums(dev, zero, count)
                np.multiply(dev, dev, out=dev)
                self.s2[rows] += _range_sums(dev, zero, count)

    def at(self, rows, index):
        """Values of rows ``rows`` at ``index`` (clipped into the row), in
        float64."""
        return self.values[rows, self.clip(index)].astype(np.float64,
                                                          copy=False)

    def clip(self, index):
        """``index`` clipped into a row."""
        return np.minimum(np.maximum(index, 0), self.k - 1)

    def scan(self, rows, start, limit, step, bound, strict):
        """
        From ``start``, moving by ``step`` (+1 or -1) and stopping at
        ``limit`` (excluded), the number of consecutive entries of rows
        ``rows`` on the near side of ``bound`` (below it moving up, above
        it moving down; ``strict`` or not), and the sums of their
        deviations and squared deviations.
        """
        if step > 0:
            def inside(v, b):
                return v < b if strict else v <= b
        else:
            def inside(v, b):
                return v > b if strict else v >= b
        count = np.zeros(rows.size, dtype=np.intp)
        s1 = np.zeros(rows.size)
        s2 = np.zeros(rows.size)
        # most rows stop at once: look at the first entry of every row
        ok = (start > limit) if step < 0 else (start < limit)
        todo = np.flatnonzero(ok & inside(self.at(rows, start), bound))
        width = SCAN
        while todo.size:
            # rows that go on look twice as far each step (a long row may
            # clip thousands of pixels)
            offsets = np.arange(width) * step
            pos = start[todo, None] + (count[todo, None] * step
                                       + offsets[None, :])
            ok = (pos < limit[todo, None]) if step > 0 else \
                (pos > limit[todo, None])
            r = rows[todo, None]
            value = self.values[r, self.clip(pos)].astype(np.float64)
            hit = ok & inside(value, bound[todo, None])
            # sorted: the entries that pass are a prefix of the scan
            got = count_rows(hit)
            dev = np.where(hit, value - self.centre[r], 0.0)
            s1[todo] += dev.sum(axis=1)
            s2[todo] += (dev * dev).sum(axis=1)
            count[todo] += got
            todo = todo[got == width]
            width *= 2
        return count, s1, s2


def _bounds(rows, srt, a, b, h1, h2, sigma):
    """Median -/+ sigma * std of the buffers ``[a, b)`` (``h1``, ``h2``:
    sums of the deviations outside them), and a bound on the rounding
    error of the bounds."""
    cnt = b - a
    half = a + cnt // 2
    upper = srt.at(rows, half)
    lower = srt.at(rows, half - 1)
    median = np.where(cnt % 2 == 1, upper, 0.5 * (upper + lower))
    s1 = srt.s1[rows] - h1
    s2 = srt.s2[rows] - h2
    mean = s1 / cnt
    var = np.maximum(s2 / cnt - mean * mean, 0.0)
    std = np.sqrt(var)
    # rounding: sums of k terms (the row's and the clipped ones)
    k = srt.k + 1
    total = srt.s2[rows] + h2
    var_err = 4.0 * k * EPS * (total + np.abs(mean) * np.sqrt(k * total)) \
        / cnt
    with np.errstate(divide='ignore', invalid='ignore'):
        std_err = np.where(std > 0, var_err / (2.0 * std), np.inf)
    tol = ROUNDING_MARGIN * (sigma * (std_err + k * EPS * std)
                             + 4.0 * EPS * np.abs(median))
    return median - std * sigma, median + std * sigma, tol


def _near(srt, rows, index, bound, tol):
    """True where a finite entry next to ``index`` (the place of
    ``bound`` in the row) lies within ``tol`` of ``bound``."""
    out = np.zeros(rows.size, dtype=bool)
    n = srt.n[rows]
    for at in (index - 1, index):
        ok = (at >= 0) & (at < n)
        out |= ok & (np.abs(srt.at(rows, at) - bound) <= tol)
    return out


def _iterate(srt, sigma, maxiters):
    """astropy's loop on every row: the last bounds, the last buffers and
    the sums outside them, the bounds' rounding tolerance and the rows to
    leave to astropy."""
    m = srt.values.shape[0]
    lo, hi = np.full(m, np.inf), np.full(m, -np.inf)
    tol = np.zeros(m)
    a = np.zeros(m, dtype=np.intp)
    b = srt.n.astype(np.intp)
    h1, h2 = np.zeros(m), np.zeros(m)
    doubt = np.zeros(m, dtype=bool)
    todo = np.flatnonzero(srt.n > 0)
    iteration = 0
    while todo.size:
        at, bt = a[todo], b[todo]
        lo_t, hi_t, tol_t = _bounds(todo, srt, at, bt, h1[todo], h2[todo],
                                    sigma)
        low, l1, l2 = srt.scan(todo, at, bt, 1, lo_t, strict=True)
        new_a = at + low
        high, u1, u2 = srt.scan(todo, bt - 1, new_a - 1, -1, hi_t,
                                strict=True)
        new_b = bt - high
        doubt[todo] |= (_near(srt, todo, new_a, lo_t, tol_t)
                        | _near(srt, todo, new_b, hi_t, tol_t))
        lo[todo], hi[todo], tol[todo] = lo_t, hi_t, tol_t
        a[todo], b[todo] = new_a, new_b
        h1[todo] += l1 + u1
        h2[todo] += l2 + u2
        iteration += 1
        done = ((new_b - new_a == bt - at) | (new_b == new_a)
                | (maxiters is not None and iteration >= maxiters))
        todo = todo[~done]
    return lo, hi, tol, a, b, h1, h2, doubt


def clip_rows(rows, sigma, maxiters, *, ordered=None, n=None, resolve=True):
    """
    astropy's sigma clip of each row, with the statistics of the kept
    pixels.

    Parameters
    ----------
    rows : (m, k) ndarray of float
        Finite pixels, or NaN for those left out.
    sigma : float
        The clip at median -/+ ``sigma`` standard deviations.
    maxiters : int or None
        Iterations at most (None: until no pixel is clipped).
    ordered : (m, k) ndarray, optional
        ``numpy.sort(rows, axis=1)`` when the caller has it, in float64 or
        (when ``rows`` holds float32 values) float32.
    n : (m,) ndarray of int, optional
        The number of finite pixels of each row, when the caller has it.
    resolve : bool, optional
        Clip the doubtful rows with astropy (default); with False they are
        left as they are, marked in ``doubt``, for the caller.

    Returns
    -------
    clip : `RowClip`
        The kept pixels of each row (those astropy's
        ``sigma_clip(rows, sigma=sigma, maxiters=maxiters,
        cenfunc='median', stdfunc='std', axis=1)`` keeps) and their
        statistics.
    """
    if ordered is None:
        ordered = np.sort(np.asarray(rows, dtype=np.float64), axis=1)
    srt = _Sorted(ordered, n)
    m = ordered.shape[0]
    lo, hi, tol, a, b, h1, h2, doubt = _iterate(srt, sigma, maxiters)
    # the kept pixels are those within the last bounds, also any clipped
    # earlier (astropy masks the data with the last bounds)
    every = np.arange(m)
    back, b1, b2 = srt.scan(every, a - 1, np.full(m, -1), -1, lo,
                            strict=False)
    fwd, f1, f2 = srt.scan(every, b, srt.n, 1, hi, strict=False)
    first, last = a - back, b + fwd
    n_kept = last - first
    doubt |= (_near(srt, every, first, lo, tol)
              | _near(srt, every, last, hi, tol))
    # the kept pixels' sums: the row's, less those clipped, plus those
    # back within the last bounds
    s1 = srt.s1 - h1 + b1 + f1
    s2 = srt.s2 - h2 + b2 + f2
    with np.errstate(invalid='ignore', divide='ignore'):
        mean = s1 / n_kept
        var = np.maximum(s2 / n_kept - mean * mean, 0.0)
        # where those differences or the one-pass variance lose digits
        # (pixels clipped far out, a mean far from the centre): two passes
        # over the kept pixels
        loose = (n_kept > 0) & ~((srt.s2 + h2 + b2 + f2 <= RATIO * s2)
                                 & (mean * mean <= FAR * var))
    if loose.any():
        which = np.flatnonzero(loose)
        inside = np.arange(srt.k)[None, :]
        keep = (inside >= first[which, None]) & (inside < last[which, None])
        values = srt.values[which].astype(np.float64)
        values -= srt.centre[which, None]
        mean[which], std_loose = kept_mean_std(values, keep)
        var[which] = std_loose ** 2
    std = np.sqrt(var)
    level = srt.centre + mean
    low = np.where(n_kept > 0, srt.at(every, first), np.inf)
    high = np.where(n_kept > 0, srt.at(every, last - 1), -np.inf)
    clip = RowClip(level, std, n_kept, low, high, doubt)
    if resolve and doubt.any():
        _astropy_rows(clip, np.asarray(rows, dtype=np.float64), doubt,
                      sigma, maxiters)
    return clip


def _astropy_rows(clip, rows, which, sigma, maxiters):
    """Rows ``which`` clipped by astropy (the reference), their statistics
    put into ``clip``."""
    sub = rows[which]
    with warnings.catch_warnings():
        # NaN marks the pixels left out
        warnings.filterwarnings('ignore', 'Input data contains invalid '
                                'values', AstropyUserWarning)
        clipped = sigma_clip(sub, sigma=sigma, maxiters=maxiters,
                             cenfunc='median', stdfunc='std', axis=1,
                             masked=False, copy=True)
    keep = np.isfinite(clipped)
    level, std = kept_mean_std(sub, keep)
    n_kept = keep.sum(axis=1)
    clip.level[which], clip.std[which] = level, std
    clip.n_kept[which] = n_kept
    some = n_kept > 0
    clip.low[which] = np.where(
        some, np.min(np.where(keep, sub, np.inf), axis=1), np.inf)
    clip.high[which] = np.where(
        some, np.max(np.where(keep, sub, -np.inf), axis=1), -np.inf)


def kept_mean_std(rows, keep):
    """``numpy.nanmean`` and ``numpy.nanstd`` along the rows of ``rows``
    with only the ``keep`` pixels (the same operations, one copy)."""
    arr = np.where(keep, rows, 0.0)
    cnt = np.count_nonzero(keep, axis=1)[:, None]
    with np.errstate(invalid='ignore', divide='ignore'):
        avg = arr.sum(axis=1, keepdims=True) / cnt
        arr -= avg
        arr[~keep] = 0.0
        arr *= arr
        var = arr.sum(axis=1) / cnt[:, 0]
    return avg[:, 0], np.sqrt(var)
