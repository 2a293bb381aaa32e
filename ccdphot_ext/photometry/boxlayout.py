# Licensed under a 3-clause BSD style license - see LICENSE
"""
Where the pixels of many boxes lie in memory, and how the box engine
(`~ccdphot_ext.photometry.boxengine`) gathers and sums them (internal).

Every box of a `~ccdphot_ext.BoxAperture` has one size, so a whole box is
one element of a view of the frame indexed by corners (`box_rows`); boxes
are taken in memory order (`BoxGeometry.memory_order`) in chunks that stay
in the CPU cache (`chunks`); boxes cut by the frame edge use a compact
layout (`compact`); `row_sums` sums each box's pixels in the order
``np.sum`` uses on the box alone.
"""

import numpy as np

__all__ = []  # internal module

#: Pixels gathered per chunk (float64: 512 KiB, half an L2 cache).
CHUNK_PIXELS = 2 ** 16
#: Pixels per chunk on the general route (a dozen arrays per pixel).
GENERAL_CHUNK_PIXELS = 2 ** 15
#: Bytes of frame rows per band (a band is streamed through the cache once
#: when its boxes cover at least `TOUCH_COVERAGE` of it).
BAND_BYTES = 2 ** 22
#: Fraction of a band's pixels the boxes must cover before the band is
#: streamed ("touched") first.
TOUCH_COVERAGE = 0.1


class BoxGeometry:
    """Clipped pixel ranges and 1-D weights of many boxes on a frame."""

    def __init__(self, box, shape):
        ny, nx = shape
        x0, x1, y0, y1 = box.bounds().T
        self.truncated = (x0 < 0) | (y0 < 0) | (x1 > nx) | (y1 > ny)
        self.x0, self.x1 = np.maximum(x0, 0), np.minimum(x1, nx)
        self.y0, self.y1 = np.maximum(y0, 0), np.minimum(y1, ny)
        self.off = (self.x1 <= self.x0) | (self.y1 <= self.y0)
        self.pixel_aligned = box.is_pixel_aligned
        self._box = box

    def memory_order(self, select):
        """Indices of the boxes where ``select``, sorted by first pixel."""
        idx = np.flatnonzero(select)
        if idx.size == 0:
            return idx
        y0, x0 = self.y0[idx], self.x0[idx]
        if max(y0.max(), x0.max()) < 2 ** 16:
            # two stable radix sorts (numpy sorts 16-bit keys in O(n))
            idx = idx[np.argsort(x0.astype(np.uint16), kind='stable')]
            return idx[np.argsort(self.y0[idx].astype(np.uint16),
                                  kind='stable')]
        return idx[np.argsort(y0 * (self.x1.max() + 1) + x0,
                              kind='stable')]

    def weights_1d(self, idx, axis, n):
        """``(m, n)`` weights of the rows (axis 0) or columns of boxes."""
        start = (self.y0 if axis == 0 else self.x0)[idx]
        if self.pixel_aligned:
            return np.ones((idx.size, n))
        # the expressions of aperture_weights and _overlap_1d, vectorised
        centre = self._box._positions[idx, 1 - axis][:, None]
        side = self._box._sides[1 - axis]
        lo, hi = centre - side / 2, centre + side / 2
        centres = (start[:, None] + np.arange(n)).astype(float)
        return np.clip(np.minimum(hi, centres + 0.5)
                       - np.maximum(lo, centres - 0.5), 0.0, 1.0)


def chunks(rows, height, per_box, data, *, stream=True,
            chunk_pixels=None):
    """
    ``(start, stop)`` bounds splitting boxes whose first rows are ``rows``
    (sorted) into chunks of about ``chunk_pixels`` (default `CHUNK_PIXELS`)
    pixels.

    With ``stream``, chunks never straddle a band of frame rows, and a band
    whose boxes cover at least `TOUCH_COVERAGE` of it is first read once
    sequentially (each frame row at most once per call).
    """
    per_chunk = max(1, (chunk_pixels or CHUNK_PIXELS) // per_box)
    if not stream:
        for s in range(0, rows.size, per_chunk):
            yield s, min(s + per_chunk, rows.size)
        return
    ny, nx = data.shape
    band_rows = max(1, BAND_BYTES // max(1, nx * data.dtype.itemsize))
    band = rows // band_rows
    cuts = np.flatnonzero(np.diff(band)) + 1
    starts = np.concatenate([[0], cuts]).tolist()
    stops = np.concatenate([cuts, [rows.size]]).tolist()
    band_pixels = (band_rows + height) * nx
    touched = 0  # frame rows [0, touched) have been streamed already
    for start, stop in zip(starts, stops, strict=True):
        count = stop - start
        if count * per_box >= TOUCH_COVERAGE * band_pixels:
            lo = max(int(band[start]) * band_rows, touched)
            hi = min(int(band[start]) * band_rows + band_rows + height, ny)
            if hi > lo:
                np.maximum.reduce(data[lo:hi], axis=None)
                touched = hi
        n_chunks = -(-count // per_chunk)
        for k in range(n_chunks):
            yield (start + count * k // n_chunks,
                   start + count * (k + 1) // n_chunks)


def pick(value, idx):
    """A per-box value for boxes ``idx``, shaped to broadcast over pixels."""
    if np.ndim(value) == 0:
        return value
    return value[idx][:, None]


def largest(geom, idx):
    """Pixels of the largest of boxes ``idx`` (clipped), at least 1."""
    if idx.size == 0:
        return 1
    return int(np.max((geom.y1[idx] - geom.y0[idx])
                      * (geom.x1[idx] - geom.x0[idx])))


def compact(geom, idx):
    """
    Pixel coordinates of boxes ``idx``, each box's clipped pixels first and
    in row-major order (as ``data[y0:y1, x0:x1].ravel()``), then padding.

    Returns rows and columns within the box ``(m, p)``, the padding mask and
    the number of pixels of each box.
    """
    heights = geom.y1[idx] - geom.y0[idx]
    widths = geom.x1[idx] - geom.x0[idx]
    n_pix = heights * widths
    k = np.arange(int(n_pix.max()))
    rows, cols = np.divmod(k, widths[:, None])
    pad = k >= n_pix[:, None]
    rows[pad] = 0
    cols[pad] = 0
    return rows, cols, pad, n_pix


def row_sums(arrays, n_pix):
    """
    Sum each row of each ``(m, p)`` array over its first ``n_pix`` entries,
    the same pairwise summation numpy applies to the box on its own.
    Fastest when rows come sorted by ``n_pix``.
    """
    n_pix = np.asarray(n_pix)
    if n_pix.size == 0 or np.all(n_pix == arrays[0].shape[1]):
        return [np.add.reduce(a, axis=1) for a in arrays]
    sums = [np.empty(n_pix.size) for _ in arrays]
    if np.all(n_pix[1:] >= n_pix[:-1]):  # runs of one size: slices
        cuts = np.flatnonzero(np.diff(n_pix)) + 1
        starts = [0, *cuts.tolist()]
        stops = [*cuts.tolist(), n_pix.size]
        groups = [(slice(a, b), int(n_pix[a]))
                  for a, b in zip(starts, stops, strict=True)]
    else:
        groups = [(np.flatnonzero(n_pix == size), size)
                  for size in np.unique(n_pix).tolist()]
    for rows, size in groups:
        for total, a in zip(sums, arrays, strict=True):
            total[rows] = np.add.reduce(a[rows, :size], axis=1)
    return sums
