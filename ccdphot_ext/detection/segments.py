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
from photutils.segmentation import make_2dgaussian_kernel
from scipy import ndimage

__all__ = []  # internal module

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: Cutout pixels gathered in one array operation (bounds the memory).
_CUTOUT_BUDGET = 1 << 21
#: Iterations of the windowed centroid (Source Extractor's XWIN).
_WIN_ITERATIONS = 16


def detection_image(image, fwhm):
    """
    ``image`` convolved with a zero-sum ("lowered") Gaussian of ``fwhm``.

    The Gaussian of photutils' `~photutils.segmentation.make_2dgaussian_kernel`
    is separable, so the convolution is two 1-D passes; subtracting its mean
    is a running mean over the kernel's footprint. Returns the image and
    the noise factor ``sqrt(sum(k**2))`` of the lowered kernel ``k``.
    """
    size = 2 * int(math.ceil(2.0 * fwhm)) + 1
    kernel = make_2dgaussian_kernel(fwhm, size=size).array
    line = kernel.sum(axis=0)  # the kernel is outer(line, line)
    out = ndimage.correlate1d(image, line, axis=0, mode='nearest')
    ndimage.correlate1d(out, line, axis=1, mode='nearest', output=out)
    out -= ndimage.uniform_filter(image, size, mode='nearest')
    lowered = kernel - kernel.mean()
    return out, math.sqrt(float(np.sum(lowered ** 2)))


def segment_moments(image, labels, n):
    """
    Per-label sums over the labelled pixels of ``image``.

    ``labels`` holds 1..n (0 = background). Returns a dict of arrays of
    length ``n``: ``area``, ``flux``, ``peak`` and its pixel ``peak_x``,
    ``peak_y``, the first-moment centroid ``x``, ``y`` and the second
    central moments ``cxx``, ``cyy``, ``cxy`` (pixels**2, weighted by the
    pixel values as photutils' `~photutils.segmentation.SourceCatalog`).
    """
    nx = labels.shape[1]
    flat = np.flatnonzero(labels)
    lab = labels.ravel()[flat] - 1
    values = image.ravel()[flat]
    area = np.bincount(lab, minlength=n)
    flux = np.bincount(lab, values, minlength=n)
    order = np.lexsort((values, lab))  # by label, then value
    last = order[np.cumsum(area) - 1]
    peak_y, peak_x = np.divmod(flat[last], nx)
    # moments about the peak pixel (small numbers: no cancellation)
    ys, xs = np.divmod(flat, nx)
    dx = (xs - peak_x[lab]).astype(np.float64)
    dy = (ys - peak_y[lab]).astype(np.float64)
    with np.errstate(divide='ignore', invalid='ignore'):
        mx = np.bincount(lab, values * dx, minlength=n) / flux
        my = np.bincount(lab, values * dy, minlength=n) / flux
        cxx = np.bincount(lab, values * dx * dx, minlength=n) / flux - mx ** 2
        cyy = np.bincount(lab, values * dy * dy, minlength=n) / flux - my ** 2
        cxy = np.bincount(lab, values * dx * dy, minlength=n) / flux - mx * my
    return {'area': area, 'flux': flux, 'peak': values[last],
            'peak_x': peak_x, 'peak_y': peak_y,
            'x': peak_x + mx, 'y': peak_y + my,
            'cxx': cxx, 'cyy': cyy, 'cxy': cxy}


def shape_parameters(m):
    """
    ``fwhm``, ``roundness`` and the semi-axes from second moments.

    ``fwhm`` is photutils' circularised FWHM,
    ``2 sqrt(2 ln 2) sqrt((a**2 + b**2) / 2)``; ``roundness`` is
    ``1 - b/a`` (0 for a round source, towards 1 for a streak).
    """
    half_sum = 0.5 * (m['cxx'] + m['cyy'])
    root = np.sqrt((0.5 * (m['cxx'] - m['cyy'])) ** 2 + m['cxy'] ** 2)
    with np.errstate(invalid='ignore', divide='ignore'):
        a = np.sqrt(half_sum + root)
        b = np.sqrt(np.maximum(half_sum - root, 0.0))
        fwhm = _FWHM_PER_SIGMA * np.sqrt(half_sum)
        roundness = 1.0 - b / a
    return fwhm, roundness


def sharpness(image, peak_x, peak_y):
    """
    The peak pixel over the sum of the 3 x 3 pixels around it.

    About 0.12 for a star of FWHM 6 px, 0.23 for FWHM 2 px, 0.46 for
    FWHM 1.2 px and 1 for a lone hot pixel or a cosmic-ray hit (pixels off
    the frame count as 0).
    """
    ny, nx = image.shape
    total = np.zeros(peak_x.size)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            yy, xx = peak_y + dy, peak_x + dx
            inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
            total += np.where(inside, image[np.clip(yy, 0, ny - 1),
                                            np.clip(xx, 0, nx - 1)], 0.0)
    with np.errstate(divide='ignore', invalid='ignore'):
        return image[peak_y, peak_x] / total


def _gather(array, cy, cx, radius, fill):
    """Cutouts ``array[cy-r:cy+r+1, cx-r:cx+r+1]`` for many centres."""
    ny, nx = array.shape
    offsets = np.arange(-radius, radius + 1)
    yy = cy[:, None, None] + offsets[None, :, None]
    xx = cx[:, None, None] + offsets[None, None, :]
    inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
    cut = array[np.clip(yy, 0, ny - 1), np.clip(xx, 0, nx - 1)]
    return np.where(inside, cut, fill), offsets


def _windowed_chunk(image, labels, idx, start, sigma, radius):
    """Windowed centroids of the sources ``idx`` (0-based labels)."""
    cy = np.rint(start[1]).astype(np.int64)
    cx = np.rint(start[0]).astype(np.int64)
    cut, off = _gather(image, cy, cx, radius, 0.0)
    lab, _ = _gather(labels, cy, cx, radius, 0)
    # pixels of other sources do not pull the centroid
    cut[(lab != 0) & (lab != idx[:, None, None] + 1)] = 0.0
    del lab
    x, y = start[0] - cx, start[1] - cy
    s2 = (2.0 * sigma ** 2)[:, None]
    ok = np.ones(idx.size, dtype=bool)
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
        ok &= (norm > 0) & np.isfinite(step_x) & np.isfinite(step_y)
        x = np.where(ok, x + step_x, x)
        y = np.where(ok, y + step_y, y)
        ok &= (np.abs(x) <= radius) & (np.abs(y) <= radius)
        done = (np.abs(step_x) < 2e-4) & (np.abs(step_y) < 2e-4)
        if np.all(done | ~ok):
            break
    return np.where(ok, x + cx, np.nan), np.where(ok, y + cy, np.nan)


def _chunks(sigma):
    """(sources, cutout radius) groups, each within a memory budget."""
    radius = np.clip(np.ceil(4.0 * sigma), 2, 25).astype(np.int64)
    order = np.argsort(radius, kind='stable')
    groups = []
    for r in np.unique(radius):
        members = order[radius[order] == r]
        step = max(_CUTOUT_BUDGET // (2 * int(r) + 1) ** 2, 16)
        groups += [(members[i:i + step], int(r))
                   for i in range(0, members.size, step)]
    return groups


def windowed_centroids(image, labels, x, y, fwhm, *, progress=False):
    """
    Source Extractor's windowed centroids (XWIN_IMAGE) of every source.

    Iterates ``x <- x + 2 sum(w I dx) / sum(w I)`` with a Gaussian window
    of ``sigma = fwhm / 2.3548`` (0.5 to 6 px) on a cutout around
    ``(x, y)``, with other sources' pixels set to 0. Sources are processed
    in groups of equal cutout size, a bounded number of pixels at a time;
    NaN where the iteration fails (the caller falls back to the moments).
    With ``progress``, an `~astropy.utils.console.ProgressBar` on stderr.
    """
    n = x.size
    sigma = np.clip(np.nan_to_num(fwhm / _FWHM_PER_SIGMA, nan=0.5), 0.5,
                    6.0)
    out_x, out_y = np.full(n, np.nan), np.full(n, np.nan)
    good = np.isfinite(x) & np.isfinite(y)
    groups = _chunks(sigma)
    bar = (ProgressBar(len(groups), file=sys.stderr) if progress
           else contextlib.nullcontext())
    with bar:
        for members, radius in groups:
            members = members[good[members]]
            if members.size:
                out_x[members], out_y[members] = _windowed_chunk(
                    image, labels, members, (x[members], y[members]),
                    sigma[members], radius)
            if progress:
                bar.update()
    return out_x, out_y
