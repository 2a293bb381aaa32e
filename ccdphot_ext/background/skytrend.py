# Licensed under a 3-clause BSD style license - see LICENSE
"""
The large-scale trend of a whole-frame sky (internal;
`~ccdphot_ext.SkyEstimate.from_image` and
`~ccdphot_ext.SkyEstimate.without_apertures` use it).

A whole-frame level is one number for the mean sky of the pixels it used.
On a tilted (or vignetted) frame those pixels mix a spread of sky levels:
a clipped mean or a median of that mixture is neither the mean nor
efficient (its distribution is wider and, with photons, more skewed than
any pixel's), and its scatter ``std`` holds the trend as if it were
noise, so that the level's error and the coarse map's error (both scaled
by ``std``) are too large. Where a quadratic surface of the level's
pixels (fitted to their means in blocks of 4 x 4 pixels, or larger ones
on a large frame) is significant and adds more
than `MATERIAL_VARIANCE` of the pixels' variance, the level is measured on
the frame less that surface plus its mean over the level's pixels: the
same mean sky, measured on a distribution of the pixels' own noise.
"""

import dataclasses
import math

import numpy as np

from ..utils.stats import (
    frame_surface,
    surface_design,
    unit_coordinates,
    weighted_lstsq,
)
from .globalsky import MASK_BIN

__all__ = []

#: The surface is taken out where its terms beyond the constant reduce
#: the blocks' residuals by more than the chi-square of their degrees of
#: freedom at this significance (a flat frame takes it out once in 10**4)
#: ...
TREND_ALPHA = 1e-4
#: ... and where its variance over the level's pixels exceeds this
#: fraction of the pixels' variance about it: below it ``std`` and the
#: level's error are at most 3% too large, and the level measured
#: without the apertures (`~ccdphot_ext.SkyEstimate.without_apertures`,
#: which then sheds the coarse map's share of the pixels it keeps) within
#: about a tenth of its error (a 256 x 256 Poisson sky of 100 e- tilted by
#: 0.03 and 0.01 e- per pixel, a trend of 0.055, 87% of it covered:
#: pulls -0.09 +- 0.18, spread 1.19 over 42 frames). The
#: real frames of the tests (ESO 0.006, SAAO 0.013, M13 0.037) are below
#: it, the sample frame's gradient (0.88) far above.
MATERIAL_VARIANCE = 0.06
#: Blocks whose residual is beyond this many of their noise (a cosmic
#: ray, a star's core the source mask missed) are left out of the fit.
BLOCK_REJECT = 5.0
#: Blocks with fewer usable pixels than this are left out of the fit.
MIN_BLOCK_PIXELS = 4
#: Fewer blocks than this: no surface is fitted.
MIN_BLOCKS = 24
#: The blocks fitted are `MASK_BIN` pixels a side, or a multiple of it
#: that keeps them fewer than this (a large frame's fit costs little).
MAX_BLOCKS = 16384
#: Rows of the frame looked at at a time (bytes of float64; fewer than
#: a 32nd of the frame's).
BAND_BYTES = 2 ** 20


@dataclasses.dataclass
class SkyTrend:
    """A quadratic surface of a frame's sky and its mean over the pixels
    a whole-frame level used (``offset``): `flatten` gives the frame
    less the surface plus that mean."""

    shape: tuple
    coef: np.ndarray
    offset: float
    variance: float  # the surface's variance over the level's pixels
    pixel_variance: float  # the pixels' variance about it

    def image(self):
        """The surface less its mean over the level's pixels, on the
        frame's pixels (2-D float64)."""
        return frame_surface(self.coef, self.shape) - self.offset

    def flatten(self, data):
        """``data`` less the surface, plus its mean over the level's
        pixels (float64)."""
        return np.asarray(data, dtype=np.float64) - self.image()

    def note(self):
        """What was done, for a sky's ``meta``."""
        return (f'the frame\'s sky varies by a quadratic surface (variance '
                f'{self.variance:.4g} over the level\'s pixels, '
                f'{self.variance / self.pixel_variance:.3g} of their '
                'noise\'s): the level and its scatter were measured about '
                'it, the level being its mean over the pixels used')


def _block_sums(frame, usable, size):
    """The sums and counts of the usable pixels (off the source mask) of
    each block of ``size`` x ``size`` pixels (a multiple of `MASK_BIN`),
    a band of rows at a time (`BAND_BYTES`, at most a 32nd of the
    frame's float64 bytes)."""
    ny, nx = frame.shape
    nby, nbx = -(-ny // size), -(-nx // size)
    sums = np.zeros((nby, nbx))
    counts = np.zeros((nby, nbx))
    band = min(BAND_BYTES, ny * nx // 4)
    step = max(1, band // (8 * nx * size)) * size
    for lo in range(0, ny, step):
        hi = min(lo + step, ny)
        good = usable.rows(lo, hi)
        d = np.where(good, frame.data[lo:hi], 0.0).astype(np.float64)
        pad = ((0, -(hi - lo) % size), (0, -nx % size))
        shape = (-1, size, nbx, size)
        b0 = lo // size
        part = np.pad(d, pad).reshape(shape).sum(axis=(1, 3))
        sums[b0:b0 + part.shape[0]] = part
        counts[b0:b0 + part.shape[0]] = np.pad(good, pad).reshape(
            shape).sum(axis=(1, 3))
    return sums, counts


def frame_trend(frame, res):
    """
    The significant, material quadratic surface of the pixels a
    whole-frame level used.

    The surface (six terms) is fitted by weighted least squares to the
    means of those pixels (finite, unmasked, off the source mask) in
    blocks of `MASK_BIN` pixels a side, or a multiple of it on a large
    frame (`MAX_BLOCKS`; each weighted by its pixels, `MIN_BLOCK_PIXELS`
    at least), blocks beyond `BLOCK_REJECT` times the blocks' scatter
    about it left out (up to twice). It is taken where its five terms
    beyond the constant reduce the blocks' squared residuals by more than
    the chi-square tail `TREND_ALPHA` allows, and its variance over the
    level's pixels exceeds `MATERIAL_VARIANCE` of theirs about it. Block
    means are read a band of rows at a time: the memory it takes is that
    of the blocks, not of the frame.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame the level was measured on.
    res : dict
        `~ccdphot_ext.background.globalsky.global_sky`'s statistics of it
        (its ``'usable'`` pixels, with the source mask).

    Returns
    -------
    trend : `SkyTrend` or None
        None where the frame has no such trend (a flat frame: its level
        is left as measured), where its source mask was dropped, or where
        fewer than `MIN_BLOCKS` blocks are usable.
    """
    usable = res['usable']
    if usable.blocks is None or usable.frame is not frame:
        return None
    ny, nx = frame.shape
    size = MASK_BIN * max(1, math.ceil(math.sqrt(
        ny * nx / MASK_BIN ** 2 / MAX_BLOCKS)))
    sums, counts = _block_sums(frame, usable, size)
    keep = counts >= MIN_BLOCK_PIXELS
    if np.count_nonzero(keep) < MIN_BLOCKS:
        return None
    by, bx = np.nonzero(keep)
    n = counts[keep]
    mean = sums[keep] / n
    # block centres on the -1..1 axes of `SkyTrend`
    x = bx * size + (np.minimum(size, nx - bx * size) - 1) / 2.0
    y = by * size + (np.minimum(size, ny - by * size) - 1) / 2.0
    u, v = unit_coordinates(frame.shape, x, y)
    design = surface_design(u, v, quadratic=True)
    w = np.sqrt(n)
    good = np.isfinite(mean)
    for _ in range(3):  # fit, leave out the blocks far off it, again
        if np.count_nonzero(good) < MIN_BLOCKS:
            return None
        coef = weighted_lstsq(design[good], mean[good], w[good])
        z = (mean - design @ coef) * w  # in pixel noise units
        scale = 1.4826 * float(np.median(np.abs(z[good])))
        if not scale > 0:
            return None
        far = ~(np.abs(z) <= BLOCK_REJECT * scale)
        if not np.any(far & good):
            break
        good &= ~far
    dof = np.count_nonzero(good) - design.shape[1]
    if dof < 1:
        return None
    rss = float(np.sum(z[good] ** 2))
    flat = mean[good] - np.average(mean[good], weights=n[good])
    rss0 = float(np.sum((flat * w[good]) ** 2))
    pixel_variance = rss / dof
    from scipy.stats import chi2  # slow to import

    if not (rss0 - rss) / pixel_variance > chi2.isf(TREND_ALPHA,
                                                    design.shape[1] - 1):
        return None
    # its mean and variance over all the level's pixels (those of the
    # blocks left out of the fit too)
    surface = design @ coef
    offset = float(np.average(surface, weights=n))
    variance = float(np.average((surface - offset) ** 2, weights=n))
    if not variance > MATERIAL_VARIANCE * pixel_variance:
        return None
    return SkyTrend(shape=(ny, nx), coef=coef, offset=offset,
                    variance=variance, pixel_variance=pixel_variance)
