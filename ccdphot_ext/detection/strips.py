# Licensed under a 3-clause BSD style license - see LICENSE
"""
Detection in strips of rows (internal to `find_stars`).

The frame is never copied whole: the sky-subtracted image, the smoothed
detection image and the threshold mask exist one strip of rows at a time
(with a halo of rows above and below for the convolution), and the
segmentation is kept sparse, as the detected pixels' flat indices and
labels, strip by strip. Groups that cross a strip border are joined with
the connected components of the graph of labels that touch across the
border (8-connectivity, as photutils' `~photutils.segmentation.
detect_sources`), and the labels are renumbered in raster order of each
group's first pixel, as `scipy.ndimage.label` numbers them. Every pixel's
detection value is computed the same way whatever the strip height, so the
segmentation does not depend on it.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = []  # internal module

#: Pixels of one strip (float64 arrays of 1 MiB at most).
_STRIP_PIXELS = 1 << 17
#: A strip holds at most this fraction of the frame's pixels.
_STRIP_FRACTION = 1 / 64
_EIGHT = np.ones((3, 3), dtype=bool)


def strip_rows(shape, halo):
    """
    Rows per strip.

    Parameters
    ----------
    shape : tuple of int
        The frame's ``(ny, nx)``.
    halo : int
        The rows of the halo above and below a strip.

    Returns
    -------
    rows : int
        About `_STRIP_PIXELS` pixels, at most a 64th of the frame, at least
        16 rows and twice the halo (at most the frame's rows).
    """
    ny, nx = shape
    pixels = min(_STRIP_PIXELS, int(ny * nx * _STRIP_FRACTION))
    return int(min(max(pixels // max(nx, 1), 16, 2 * halo), max(ny, 1)))


class Kernel:
    """
    The zero-sum ("lowered") Gaussian of ``fwhm``, as DAOFIND's: blind to a
    constant or linear residual background such as a sky gradient.

    photutils' `~photutils.segmentation.make_2dgaussian_kernel` is
    separable, so the smoothing is two 1-D passes less the mean over the
    kernel's footprint: along the columns, each output row is one small
    matrix product of the kernel line and the kernel's box (two rows) with
    the ``size`` input rows around it (a batch of products over the rows,
    each of one shape: a pixel's value does not depend on the strip it is
    computed in); along the rows `scipy.ndimage.correlate1d` and
    `scipy.ndimage.uniform_filter1d`. ``factor`` is ``sqrt(sum(k**2))`` of
    the lowered kernel ``k``: the noise of the detection image per unit
    pixel noise.

    Parameters
    ----------
    fwhm : float
        The Gaussian's full width at half maximum (pixels); the kernel's
        side is ``2 ceil(2 fwhm) + 1``.
    """

    def __init__(self, fwhm):
        # photutils.segmentation (scipy.signal, scipy.stats): slow to import
        from photutils.segmentation import make_2dgaussian_kernel

        size = 2 * int(math.ceil(2.0 * fwhm)) + 1
        kernel = make_2dgaussian_kernel(fwhm, size=size).array
        self.line = kernel.sum(axis=0)  # the kernel is outer(line, line)
        self.half = size // 2
        self.size = size
        #: the column pass: the kernel line and the mean over a column
        self._columns = np.vstack([self.line, np.full(size, 1.0 / size)])
        lowered = kernel - kernel.mean()
        self.factor = math.sqrt(float(np.sum(lowered ** 2)))

    def apply(self, padded):
        """
        The detection image of the rows of ``padded`` less its halo.

        Parameters
        ----------
        padded : `~numpy.ndarray`
            Rows of the sky-subtracted image with `half` rows of halo above
            and below.

        Returns
        -------
        detection : `~numpy.ndarray`
            The rows without the halo, smoothed by the lowered kernel.
        """
        windows = np.moveaxis(sliding_window_view(padded, self.size, axis=0),
                              -1, 1)  # (rows, size, columns): views
        both = np.matmul(self._columns, windows)
        out = ndimage.correlate1d(both[:, 0], self.line, axis=1,
                                  mode='nearest')
        box = ndimage.uniform_filter1d(both[:, 1], self.size, axis=1,
                                       mode='nearest')
        out -= box
        return out


class SkyRows:
    """
    Rows of the sky-subtracted float64 image, ``data - value`` with bad
    pixels (NaN, inf, masked) set to 0, made on demand.

    Parameters
    ----------
    data : `~numpy.ndarray`
        The frame.
    value : `~numpy.ndarray`
        The sky level: 0-d, or a map of the frame's shape.
    mask : `~numpy.ndarray` of bool or None
        The bad pixels (None: only non-finite ones).
    """

    def __init__(self, data, value, mask):
        self.data, self.value, self.mask = data, value, mask
        self.shape = data.shape

    def rows(self, lo, hi):
        """
        Rows of the sky-subtracted image.

        Parameters
        ----------
        lo, hi : int
            Rows ``lo:hi``; rows off the frame repeat the edge rows (as
            ``mode='nearest'``).

        Returns
        -------
        image : `~numpy.ndarray`
            float64, bad pixels 0.
        bad : `~numpy.ndarray` of bool
            The bad pixels (NaN, inf, masked).
        """
        ny = self.shape[0]
        if lo >= 0 and hi <= ny:
            idx = slice(lo, hi)
        else:
            idx = np.clip(np.arange(lo, hi), 0, ny - 1)
        image = np.subtract(self.data[idx], self.value[idx]
                            if self.value.ndim == 2 else self.value,
                            dtype=np.float64)
        bad = ~np.isfinite(image)
        if self.mask is not None:
            bad |= self.mask[idx]
        if bad.any():
            image[bad] = 0.0
        return image, bad

    def at(self, flat):
        """
        The sky-subtracted image at some good pixels.

        Parameters
        ----------
        flat : `~numpy.ndarray` of int
            Flat pixel indices.

        Returns
        -------
        values : `~numpy.ndarray`
            float64.
        """
        y, x = np.divmod(flat, self.shape[1])
        values = self.data[y, x].astype(np.float64)
        values -= self.value[y, x] if self.value.ndim == 2 else self.value
        return values


class Segments:
    """
    A sparse segmentation image: per strip of rows ``(y0, y1, flat,
    labels)``, the flat indices (sorted) of its labelled pixels and their
    labels 1..n.

    Parameters
    ----------
    shape : tuple of int
        The frame's ``(ny, nx)``.
    pieces : list of tuple
        The strips' ``(y0, y1, flat, labels)``.
    n : int
        The number of labels.
    """

    def __init__(self, shape, pieces, n):
        self.shape, self.pieces, self.n = shape, pieces, n

    @classmethod
    def from_image(cls, labels, n):
        """
        A `Segments` of a dense segmentation image.

        Parameters
        ----------
        labels : `~numpy.ndarray` of int
            The image, 0 or a label 1..n.
        n : int
            The number of labels.

        Returns
        -------
        segments : `Segments`
            One piece, the whole frame.
        """
        flat = np.flatnonzero(labels)
        return cls(labels.shape, [(0, labels.shape[0], flat,
                                   labels.ravel()[flat])], n)

    def label_rows(self, lo, hi):
        """
        The dense label image of some rows.

        Parameters
        ----------
        lo, hi : int
            Rows ``lo:hi`` of the frame.

        Returns
        -------
        labels : `~numpy.ndarray` of int32
        """
        nx = self.shape[1]
        out = np.zeros((hi - lo, nx), dtype=np.int32)
        view = out.ravel()
        for y0, y1, flat, labels in self.pieces:
            if y1 <= lo or y0 >= hi:
                continue
            i0, i1 = np.searchsorted(flat, [lo * nx, hi * nx])
            view[flat[i0:i1] - lo * nx] = labels[i0:i1]
        return out


def _offset(labels, count):
    """
    A row of a strip's labels numbered after the labels before it.

    Parameters
    ----------
    labels : `~numpy.ndarray` of int
        The row (0: none).
    count : int
        The labels before the strip.

    Returns
    -------
    labels : `~numpy.ndarray` of int
    """
    return np.where(labels > 0, labels + count, 0).astype(labels.dtype)


def _touching(up, down):
    """
    The pairs of labels of two adjacent rows that touch (8-connected).

    Parameters
    ----------
    up, down : `~numpy.ndarray` of int
        The two rows of labels (0: none).

    Returns
    -------
    pairs : `~numpy.ndarray` of int
        ``(n, 2)``: a label of ``up`` and one of ``down``.
    """
    pairs = []
    for a, b in ((up, down), (up[1:], down[:-1]), (up[:-1], down[1:])):
        both = (a > 0) & (b > 0)
        pairs.append(np.column_stack([a[both], b[both]]))
    return np.concatenate(pairs)


def _final_labels(count, areas, pairs, n_pixels):
    """
    The final label of each provisional label.

    Parameters
    ----------
    count : int
        The provisional labels, 1..count.
    areas : list of `~numpy.ndarray`
        Their pixel counts, strip by strip.
    pairs : list of `~numpy.ndarray`
        The pairs of provisional labels that touch across strip borders.
    n_pixels : int
        Groups of fewer pixels are dropped.

    Returns
    -------
    final : `~numpy.ndarray` of int32
        Indexed by provisional label (0 too): the group's label, numbered in
        raster order of each group's first pixel, or 0 for a group too
        small.
    n : int
        The number of final labels.
    """
    pairs = np.concatenate(pairs) - 1 if pairs else np.zeros((0, 2), int)
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8),
                        (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    n_comp, comp = connected_components(graph, directed=False)
    area = np.bincount(comp, np.concatenate(areas), minlength=n_comp)
    # components numbered by their first provisional label: raster order
    _, first = np.unique(comp, return_index=True)
    rank = np.empty(n_comp, dtype=np.int64)
    rank[np.argsort(first, kind='stable')] = np.arange(n_comp)
    keep = area[np.argsort(rank)] >= n_pixels  # in raster order
    final = np.zeros(n_comp, dtype=np.int32)
    final[keep] = np.arange(1, int(keep.sum()) + 1)
    out = np.zeros(count + 1, dtype=np.int32)
    out[1:] = final[rank[comp]]
    return out, int(keep.sum())


def detect_segments(sky_rows, threshold_rows, *, kernel, n_pixels,
                    rows=None):
    """
    The `Segments` of the pixels above the threshold.

    Parameters
    ----------
    sky_rows : `SkyRows`
        The sky-subtracted frame.
    threshold_rows : callable
        ``threshold_rows(y0, y1)``: the threshold of rows ``y0:y1`` (a scalar
        or an array).
    kernel : `Kernel` or None
        The smoothing (None: none).
    n_pixels : int
        Groups of fewer pixels are dropped.
    rows : int, optional
        Rows per strip (default: `strip_rows`).

    Returns
    -------
    segments : `Segments` or None
        None when no group is left.
    """
    ny, nx = sky_rows.shape
    halo = 0 if kernel is None else kernel.half
    rows = rows or strip_rows(sky_rows.shape, halo)
    index_type = np.int32 if ny * nx < 2 ** 31 else np.int64
    pieces, areas, pairs, count, last = [], [], [], 0, None
    for y0 in range(0, ny, rows):
        y1 = min(y0 + rows, ny)
        image, bad = sky_rows.rows(y0 - halo, y1 + halo)
        detection = image if kernel is None else kernel.apply(image)
        del image
        above = detection > threshold_rows(y0, y1)
        above &= ~bad[halo:halo + y1 - y0]
        labels, k = ndimage.label(above, structure=_EIGHT)
        if last is not None:
            pairs.append(_touching(last, _offset(labels[0], count)))
        last = _offset(labels[-1], count)
        flat = np.flatnonzero(above)  # the labelled pixels
        lab = labels.ravel()[flat]
        areas.append(np.bincount(lab, minlength=k + 1)[1:])
        lab += count
        pieces.append((y0, y1, (flat + y0 * nx).astype(index_type), lab))
        count += k
    if count == 0:
        return None
    final, n = _final_labels(count, areas, pairs, n_pixels)
    if n == 0:
        return None
    kept = []
    for y0, y1, flat, labels in pieces:
        labels = final[labels]
        good = labels > 0
        kept.append((y0, y1, flat[good], labels[good]))
    return Segments((ny, nx), kept, n)
