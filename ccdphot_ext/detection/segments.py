# Licensed under a 3-clause BSD style license - see LICENSE
"""
Measure every detected source at once (internal to `find_stars`).

The detection image is a separable convolution (a Gaussian minus its mean,
two 1-D passes and a running mean); the sources are the labels of a
segmentation image; every per-source quantity is a `numpy.bincount` over
the labelled pixels or an array operation on cutouts gathered for many
sources at a time. There is no per-source Python loop.
"""

import contextlib
import math
import sys

import numpy as np
from astropy.utils.console import ProgressBar

from ..utils.windows import as_pixels, box_rows
from .strips import strip_rows

__all__ = []  # internal module

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Cutout pixels gathered in one array operation (bounds the memory).
_CUTOUT_BUDGET = 1 << 21
#: Largest cutout radius of the windowed centroid (pixels).
_MAX_RADIUS = 25
#: Iterations of the windowed centroid (Source Extractor's XWIN).
_WIN_ITERATIONS = 16


def _peaks(segments, values):
    """
    Area, flux and the highest pixel of every label.

    Parameters
    ----------
    segments : `~ccdphot_ext.detection.strips.Segments`
        The sparse segmentation.
    values : list of `~numpy.ndarray`
        The sky-subtracted image at each piece's pixels.

    Returns
    -------
    area : `~numpy.ndarray` of int64
        Pixels per label.
    flux : `~numpy.ndarray`
        The sum of each label's pixels.
    peak : `~numpy.ndarray`
        Each label's highest value.
    peak_flat : `~numpy.ndarray` of int64
        Its flat pixel index (ties go to the last pixel in raster order).
    """
    n = segments.n
    area = np.zeros(n, dtype=np.int64)
    flux = np.zeros(n)
    for (_, _, flat, labels), value in zip(segments.pieces, values,
                                           strict=True):
        if flat.size:  # flux summed piece by piece, then added
            area += np.bincount(labels - 1, minlength=n)
            flux += np.bincount(labels - 1, value, minlength=n)
    flat = np.concatenate([piece[2] for piece in segments.pieces])
    lab = np.concatenate([piece[3] for piece in segments.pieces]) - 1
    value = np.concatenate(values)
    peak = np.full(n, -np.inf)
    np.maximum.at(peak, lab, value)
    at_top = value == peak[lab]
    peak_flat = np.zeros(n, dtype=np.int64)  # the last top pixel
    np.maximum.at(peak_flat, lab[at_top], flat[at_top].astype(np.int64))
    return area, flux, peak, peak_flat


def segment_moments(segments, values_at):
    """
    Per-label sums over the labelled pixels of a `Segments`.

    Two passes over the strips: the peaks, then the moments about them
    (the image is read once at the labelled pixels).

    Parameters
    ----------
    segments : `~ccdphot_ext.detection.strips.Segments`
        The sparse segmentation.
    values_at : callable
        ``values_at(flat)``: the sky-subtracted image at flat pixel indices.

    Returns
    -------
    moments : dict of `~numpy.ndarray`
        Of length ``segments.n``: ``area``, ``flux``, ``peak`` and its pixel
        ``peak_x``, ``peak_y``, the first-moment centroid ``x``, ``y`` and
        the second central moments ``cxx``, ``cyy``, ``cxy`` (pixels**2,
        weighted by the pixel values as photutils'
        `~photutils.segmentation.SourceCatalog`).
    """
    n, nx = segments.n, segments.shape[1]
    pixels = [values_at(flat) for _, _, flat, _ in segments.pieces]
    area, flux, peak, peak_flat = _peaks(segments, pixels)
    peak_y, peak_x = np.divmod(peak_flat, nx)
    sums = np.zeros((5, n))
    for (_, _, flat, labels), values in zip(segments.pieces, pixels,
                                            strict=True):
        if flat.size == 0:
            continue
        lab = labels - 1
        # moments about the peak pixel (small numbers: no cancellation)
        ys, xs = np.divmod(flat, nx)
        dx = (xs - peak_x[lab]).astype(np.float64)
        dy = (ys - peak_y[lab]).astype(np.float64)
        vdx, vdy = values * dx, values * dy
        for row, term in enumerate((vdx, vdy, vdx * dx, vdy * dy, vdx * dy)):
            sums[row] += np.bincount(lab, term, minlength=n)
    with np.errstate(divide='ignore', invalid='ignore'):
        mx, my, sxx, syy, sxy = sums / flux
        cxx, cyy, cxy = sxx - mx ** 2, syy - my ** 2, sxy - mx * my
    return {'area': area, 'flux': flux, 'peak': peak,
            'peak_x': peak_x, 'peak_y': peak_y,
            'x': peak_x + mx, 'y': peak_y + my,
            'cxx': cxx, 'cyy': cyy, 'cxy': cxy}


def shape_parameters(m):
    """
    ``fwhm`` and ``roundness`` from second moments.

    Parameters
    ----------
    m : dict of `~numpy.ndarray`
        The second central moments ``cxx``, ``cyy``, ``cxy``
        (`segment_moments`).

    Returns
    -------
    fwhm : `~numpy.ndarray`
        photutils' circularised FWHM, ``2 sqrt(2 ln 2) sqrt((a**2 + b**2) /
        2)`` (pixels).
    roundness : `~numpy.ndarray`
        ``1 - b/a``: 0 for a round source, towards 1 for a streak.
    """
    half_sum = 0.5 * (m['cxx'] + m['cyy'])
    root = np.sqrt((0.5 * (m['cxx'] - m['cyy'])) ** 2 + m['cxy'] ** 2)
    with np.errstate(invalid='ignore', divide='ignore'):
        a = np.sqrt(half_sum + root)
        b = np.sqrt(np.maximum(half_sum - root, 0.0))
        fwhm = _FWHM_PER_SIGMA * np.sqrt(half_sum)
        roundness = 1.0 - b / a
    return fwhm, roundness


def sharpness(sky_rows, peak_x, peak_y):
    """
    The peak pixel over the sum of the 3 x 3 pixels around it.

    About 0.12 for a star of FWHM 6 px, 0.23 for FWHM 2 px, 0.46 for
    FWHM 1.2 px and 1 for a lone hot pixel or a cosmic-ray hit (pixels off
    the frame count as 0).

    Parameters
    ----------
    sky_rows : `~ccdphot_ext.detection.strips.SkyRows`
        The sky-subtracted frame.
    peak_x, peak_y : `~numpy.ndarray` of int
        The peak pixels.

    Returns
    -------
    sharpness : `~numpy.ndarray`
    """
    around = _image_cutouts(sky_rows, peak_y, peak_x, 1)
    total = np.zeros(peak_x.size)
    for dy in range(3):
        for dx in range(3):
            total += around[:, dy, dx]
    with np.errstate(divide='ignore', invalid='ignore'):
        return around[:, 1, 1] / total


def _image_cutouts(sky_rows, cy, cx, radius):
    """
    Cutouts of the sky-subtracted float64 image, gathered from the frame
    itself (no strip of the image is made).

    Parameters
    ----------
    sky_rows : `~ccdphot_ext.detection.strips.SkyRows`
        The frame, its sky and its mask.
    cy, cx : `~numpy.ndarray` of int
        The cutouts' centres.
    radius : int
        Their half-side.

    Returns
    -------
    cutouts : `~numpy.ndarray`
        ``(n, 2 radius + 1, 2 radius + 1)``: the values of
        ``SkyRows.rows`` (bad pixels 0), 0 off the frame.
    """
    ny, nx = sky_rows.shape
    raw, off = _gather(sky_rows.data, cy, cx, radius, 0)
    cut = raw.astype(np.float64)
    del raw
    value = sky_rows.value
    cut -= _gather(value, cy, cx, radius, 0.0)[0] if value.ndim == 2 \
        else value
    bad = ~np.isfinite(cut)
    if sky_rows.mask is not None:
        bad |= _gather(sky_rows.mask, cy, cx, radius, True)[0]
    yy, xx = cy[:, None] + off, cx[:, None] + off
    bad |= ~((yy >= 0) & (yy < ny))[:, :, None]
    bad |= ~((xx >= 0) & (xx < nx))[:, None, :]
    cut[bad] = 0.0
    return cut


def _gather(array, cy, cx, radius, fill, *, row0=0, ny=None):
    """
    Cutouts ``frame[cy-r:cy+r+1, cx-r:cx+r+1]`` for many centres.

    Cutouts inside ``array`` are gathered a cutout row at a time
    (`box_rows`), the others pixel by pixel.

    Parameters
    ----------
    array : `~numpy.ndarray`
        The frame's rows from ``row0``.
    cy, cx : `~numpy.ndarray` of int
        The centres (frame pixels).
    radius : int
        The half-side ``r``.
    fill : scalar
        The value off the frame.
    row0 : int, optional
        The frame row of ``array``'s first row (default 0).
    ny : int, optional
        The frame's rows (default: ``array``'s).

    Returns
    -------
    cutouts : `~numpy.ndarray`
        ``(n, 2 r + 1, 2 r + 1)``, of ``array``'s dtype.
    offsets : `~numpy.ndarray` of int
        ``-r .. r``.
    """
    rows, nx = array.shape
    ny = rows if ny is None else ny
    offsets = np.arange(-radius, radius + 1)
    side = offsets.size
    top, left = cy - radius - row0, cx - radius
    inside = ((top >= 0) & (top + side <= rows) & (left >= 0)
              & (left + side <= nx))
    if not array.flags.c_contiguous:
        inside[:] = False
    out = np.empty((cy.size, side, side), dtype=array.dtype)
    if inside.any():
        out[inside] = as_pixels(box_rows(array, side, side)[
            top[inside], left[inside]], array.dtype).reshape(-1, side, side)
    edge = ~inside
    if edge.any():
        yy = cy[edge, None, None] + offsets[None, :, None]
        xx = cx[edge, None, None] + offsets[None, None, :]
        on = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
        cut = array[np.clip(yy - row0, 0, rows - 1), np.clip(xx, 0, nx - 1)]
        out[edge] = np.where(on, cut, fill)
    return out, offsets


def _masked_cutouts(sky_rows, labels, idx, cx, cy, radius, row0):
    """
    Cutouts of the sky-subtracted image around some sources, other
    sources' pixels set to 0 (they do not pull the centroid).

    Parameters
    ----------
    sky_rows : `~ccdphot_ext.detection.strips.SkyRows`
        The sky-subtracted frame.
    labels : `~numpy.ndarray` of int
        The label image of the frame's rows from ``row0``.
    idx : `~numpy.ndarray` of int
        The sources (0-based labels).
    cx, cy : `~numpy.ndarray` of int
        The cutouts' centres.
    radius : int
        Their half-side.
    row0 : int
        The frame row of ``labels``' first row.

    Returns
    -------
    cutouts : `~numpy.ndarray`
        ``(n, 2 radius + 1, 2 radius + 1)``.
    """
    cut = _image_cutouts(sky_rows, cy, cx, radius)
    lab, _ = _gather(labels, cy, cx, radius, 0, row0=row0,
                     ny=sky_rows.shape[0])
    cut[(lab != 0) & (lab != idx[:, None, None] + 1)] = 0.0
    return cut


def _windowed(cut, x, y, sigma, radius):
    """
    The windowed centroid iteration on masked cutouts.

    A source stops when it has converged or failed, so its result does not
    depend on the sources iterated with it; the sources still moving are
    taken out into smaller arrays once they are fewer than half of those
    iterated (every source's arithmetic is the same either way).

    Parameters
    ----------
    cut : `~numpy.ndarray`
        ``(n, side, side)`` masked cutouts.
    x, y : `~numpy.ndarray`
        The start, as offsets from the cutouts' centres.
    sigma : `~numpy.ndarray`
        The Gaussian window's sigma of each source (pixels).
    radius : int
        The cutouts' half-side.

    Returns
    -------
    x, y : `~numpy.ndarray`
        The final offsets.
    ok : `~numpy.ndarray` of bool
        Whether each converged inside its cutout.
    """
    off = np.arange(-radius, radius + 1)
    out_x, out_y = x.copy(), y.copy()
    out_ok = np.ones(x.size, dtype=bool)
    s2 = (2.0 * sigma ** 2)[:, None]
    which = np.arange(x.size)  # the sources iterated
    ok = np.ones(x.size, dtype=bool)
    active = ok.copy()
    for _ in range(_WIN_ITERATIONS):
        # the Gaussian window is separable: two passes over the cutouts
        ddx, ddy = off - x[:, None], off - y[:, None]
        ex, ey = np.exp(-ddx ** 2 / s2), np.exp(-ddy ** 2 / s2)
        rows = np.einsum('nyx,nx->ny', cut, ex)
        cols = np.einsum('nyx,ny->nx', cut, ey)
        norm = np.einsum('ny,ny->n', rows, ey)
        with np.errstate(divide='ignore', invalid='ignore'):
            step_x = 2.0 * np.einsum('nx,nx->n', cols, ex * ddx) / norm
            step_y = 2.0 * np.einsum('ny,ny->n', rows, ey * ddy) / norm
        ok &= ~active | ((norm > 0) & np.isfinite(step_x)
                         & np.isfinite(step_y))
        active &= ok
        x = np.where(active, x + step_x, x)
        y = np.where(active, y + step_y, y)
        ok &= (np.abs(x) <= radius) & (np.abs(y) <= radius)
        active &= ok & ((np.abs(step_x) >= 2e-4) | (np.abs(step_y) >= 2e-4))
        n_active = np.count_nonzero(active)
        if n_active == 0:
            break
        if 2 * n_active < active.size:  # keep the moving sources only
            done = ~active
            out_x[which[done]], out_y[which[done]] = x[done], y[done]
            out_ok[which[done]] = ok[done]
            which, x, y, s2, cut, ok = (a[active] for a in (which, x, y, s2,
                                                            cut, ok))
            active = np.ones(n_active, dtype=bool)
    out_x[which], out_y[which], out_ok[which] = x, y, ok
    return out_x, out_y, out_ok


class _Cutouts:
    """
    Masked cutouts gathered strip by strip and held, by radius, until
    they fill ``budget`` pixels; then the largest group goes through the
    windowed centroid iteration at once (few large array operations
    instead of many small ones).

    Parameters
    ----------
    x, y : `~numpy.ndarray`
        The sources' starting centroids (frame pixels).
    sigma : `~numpy.ndarray`
        Their window sigmas (pixels).
    budget : int
        The most pixels held.
    """

    def __init__(self, x, y, sigma, budget):
        self.x, self.y, self.sigma, self.budget = x, y, sigma, budget
        self.out_x = np.full(x.size, np.nan)
        self.out_y = np.full(x.size, np.nan)
        self.held, self.size = {}, 0

    def add(self, members, cut, cx, cy, radius):
        """
        Hold the cutouts of some sources (the largest group is iterated once
        more than ``budget`` pixels are held).

        Parameters
        ----------
        members : `~numpy.ndarray` of int
            The sources.
        cut : `~numpy.ndarray`
            Their masked cutouts.
        cx, cy : `~numpy.ndarray` of int
            The cutouts' centres.
        radius : int
            Their half-side.
        """
        self.held.setdefault(radius, []).append((members, cut, cx, cy))
        self.size += cut.size
        while self.size > self.budget:
            self.flush(max(self.held, key=lambda r: sum(
                part[1].size for part in self.held[r])))

    def flush(self, radius):
        """
        Iterate the windowed centroids of the group of one cutout radius.

        Parameters
        ----------
        radius : int
            The group's cutout half-side.
        """
        members, cut, cx, cy = (np.concatenate(a) for a in zip(
            *self.held.pop(radius), strict=True))
        self.size -= cut.size
        x, y, ok = _windowed(cut, self.x[members] - cx,
                             self.y[members] - cy, self.sigma[members],
                             radius)
        self.out_x[members] = np.where(ok, x + cx, np.nan)
        self.out_y[members] = np.where(ok, y + cy, np.nan)

    def results(self):
        """
        The windowed centroids of every source (the groups still held are
        iterated first).

        Returns
        -------
        x, y : `~numpy.ndarray`
            NaN where the iteration failed or the source was not measured.
        """
        for radius in sorted(self.held):
            self.flush(radius)
        return self.out_x, self.out_y


def _chunks(sigma, budget):
    """
    The sources grouped by cutout radius.

    Parameters
    ----------
    sigma : `~numpy.ndarray`
        The window sigma of each source (pixels): the radius is ``4
        sigma``, 2 to `_MAX_RADIUS`.
    budget : int
        The most pixels of one group's cutouts (at least 16 cutouts).

    Returns
    -------
    groups : list of tuple
        ``(sources, radius)``.
    """
    radius = np.clip(np.ceil(4.0 * sigma), 2, _MAX_RADIUS).astype(np.int64)
    order = np.argsort(radius, kind='stable')
    groups = []
    for r in np.unique(radius):
        members = order[radius[order] == r]
        step = max(budget // (2 * int(r) + 1) ** 2, 16)
        groups += [(members[i:i + step], int(r))
                   for i in range(0, members.size, step)]
    return groups


def _strip_of(y, ny, rows):
    """
    The strip holding each source's row.

    Parameters
    ----------
    y : `~numpy.ndarray`
        The sources' rows (non-finite ones are clipped to the frame).
    ny : int
        The frame's rows.
    rows : int
        Rows per strip.

    Returns
    -------
    strip : `~numpy.ndarray` of int64
        The index of the strip holding ``rint(y)``.
    """
    cy = np.rint(np.nan_to_num(y, nan=0.0, posinf=ny, neginf=-1.0))
    return (np.clip(cy, 0, ny - 1) // rows).astype(np.int64)


def measure_strips(sky_rows, segments, m, fwhm, *, progress=False):
    """
    Source Extractor's windowed centroids (XWIN_IMAGE) and the sharpness
    of every source, a strip of rows at a time.

    Iterates ``x <- x + 2 sum(w I dx) / sum(w I)`` with a Gaussian window
    of ``sigma = fwhm / 2.3548`` (0.5 to 6 px) on a cutout around the
    moments' centroid, with other sources' pixels set to 0; NaN where the
    iteration fails (the caller falls back to the moments). The cutouts
    are gathered from the frame (sky subtracted in them alone), and the
    labels from those of a strip of rows (with a halo of the largest
    cutout radius) made from the sparse segmentation; the cutouts of the
    strip's sources are held by cutout size, over the strips, and iterated
    a group of equal size at a time, a bounded number of pixels held at
    once (`_Cutouts`).

    Parameters
    ----------
    sky_rows : `~ccdphot_ext.detection.strips.SkyRows`
        The sky-subtracted frame.
    segments : `~ccdphot_ext.detection.strips.Segments`
        The sparse segmentation.
    m : dict of `~numpy.ndarray`
        The sources' moments (`segment_moments`).
    fwhm : `~numpy.ndarray`
        Their FWHMs (pixels).
    progress : bool, optional
        Show an `~astropy.utils.console.ProgressBar` on stderr, a step per
        strip (default False).

    Returns
    -------
    x, y : `~numpy.ndarray`
        The windowed centroids (NaN where the iteration failed).
    sharpness : `~numpy.ndarray`
        As `sharpness`.
    """
    ny, nx = segments.shape
    x, y = m['x'], m['y']
    sigma = np.clip(np.nan_to_num(fwhm / _FWHM_PER_SIGMA, nan=0.5), 0.5,
                    6.0)
    sharp = sharpness(sky_rows, m['peak_x'], m['peak_y'])
    good = np.isfinite(x) & np.isfinite(y)
    halo = int(np.clip(np.ceil(4.0 * sigma.max(initial=0.5)), 2, _MAX_RADIUS))
    # strips of a 16th of the frame: many sources per array operation
    rows = max(strip_rows((ny, nx), halo), 2 * halo, -(-ny // 16))
    budget = int(min(_CUTOUT_BUDGET, max(ny * nx // 64, 1 << 14)))
    cutouts = _Cutouts(x, y, sigma, budget)
    where = _strip_of(y, ny, rows)
    n_strips = -(-ny // rows)
    bar = (ProgressBar(n_strips, file=sys.stderr) if progress
           else contextlib.nullcontext())
    with bar:
        for k in range(n_strips):
            lo, hi = max(k * rows - halo, 0), min((k + 1) * rows + halo, ny)
            mine = np.flatnonzero((where == k) & good)
            if mine.size:
                labels = segments.label_rows(lo, hi)
                for members, radius in _chunks(sigma[mine], budget):
                    members = mine[members]
                    cx = np.rint(x[members]).astype(np.int64)
                    cy = np.rint(y[members]).astype(np.int64)
                    cutouts.add(members, _masked_cutouts(
                        sky_rows, labels, members, cx, cy, radius, lo),
                        cx, cy, radius)
            if progress:
                bar.update()
    return *cutouts.results(), sharp
