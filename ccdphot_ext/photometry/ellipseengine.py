# Licensed under a 3-clause BSD style license - see LICENSE
"""
Vectorised engine for circles, ellipses and their annuli (internal;
`~ccdphot_ext.photometer` calls it).

Any aperture with a closed-form exact shape
(`~ccdphot_ext.aperture.circular.exact_shape`: photutils'
`~photutils.aperture.CircularAperture`,
`~photutils.aperture.EllipticalAperture` and their annuli) is measured
here for all its positions at once, with the numbers of the per-aperture
engine (``ccdphot_ext.photometry.general.measure_one``) to the last bit:
the same window of pixels per position (the shape fixes its size), the
same weights (`~ccdphot_ext.aperture.circular.EllipseShape.weights`, the
function `~ccdphot_ext.aperture.aperture_weights` calls for one position),
the same bad-pixel, saturation and sky rules and the same order of
summation.

How it stays fast:

* Every position's window has one size, so the windows are gathered as
  the box engine gathers boxes (``utils.windows.box_rows``: one element of raw
  bytes per window row), in memory order and in chunks that stay in the
  CPU cache.
* Only the pixels the boundary crosses are computed in closed form; the
  others weigh exactly 1 or 0.
* Whole windows on a frame without mask, uncertainty map or sky map take
  the short route: ``max`` of the window (saturation; only windows at or
  above the level are checked pixel by pixel inside the aperture),
  ``data - sky`` in place, ``sum(w * (data - sky))`` and ``sum(w)``; a
  non-finite sum marks a window with NaN/inf pixels. Windows cut by the
  frame edge, those with NaN/inf pixels and every window when there is a
  mask, an uncertainty map or a 2-D sky map take the general route, which
  follows ``measure_one`` step by step in a compact layout (each window's
  on-frame pixels first, in row-major order).
* Circles and circular annuli on a float32 or float64 frame take the
  short route in the compiled kernel (``aperture._exact.circle_sums``):
  each window's weights and sums in one pass over its pixels, read in
  place, added in numpy's pairwise order (the numbers of the numpy short
  route given the same weights; ``circular.COMPILED = False`` selects the
  numpy route).

Besides ``sum(w)`` and ``sum(w * sigma**2)`` (an uncertainty map) it
returns ``sum(w**2)`` and ``sum(w**2 * sigma**2)``, the pixel counts of
the independent-pixel variance of a weighted sum. Nothing is cached between
calls; no array the size of the frame is made.
"""

from types import SimpleNamespace

import numpy as np

from ..aperture import circular  # first: says how to build _exact
from ..aperture._exact import circle_sums
from ..aperture.circular import exact_shape
from ..aperture.utils import aperture_positions
from ..background.sky import zero_rms
from ..flags import (
    FLAG_BAD_PIXELS,
    FLAG_NONPOSITIVE_FLUX,
    FLAG_SATURATED,
    FLAG_SKY_ANNULUS,
    FLAG_TRUNCATED,
)
from ..utils.windows import as_pixels, box_rows
from .boxlayout import (
    CHUNK_PIXELS,
    GENERAL_CHUNK_PIXELS,
    chunks,
    compact,
    pick,
    row_sums,
)
from .sums import ApertureSums

__all__ = []  # internal module

#: At most this fraction of the frame's pixels is gathered per chunk (so a
#: small frame's peak of extra memory stays a small part of it).
CHUNK_FRACTION = 1 / 128


def _chunk_pixels(data, most):
    return max(min(most, int(data.size * CHUNK_FRACTION)), 1024)



def ellipse_engine_eligible(aperture, threshold, sum_method):
    """
    True when `measure_ellipses` can do this aperture: a closed-form shape
    (circle, ellipse, annulus of either) with ``sum_method='exact'`` and no
    threshold mask.
    """
    return (sum_method == 'exact' and threshold is None
            and exact_shape(aperture) is not None)


class _Windows:
    """Where each position's window lies on the frame."""

    def __init__(self, shape, pos, frame_shape):
        ny, nx = frame_shape
        self.shape = shape
        self.x, self.y = pos[:, 0].copy(), pos[:, 1].copy()
        self.wx, self.wy = shape.corners(self.x, self.y)
        hy, hx = shape.window
        self.truncated = shape.truncated(self.x, self.y, frame_shape)
        # the clipped windows, as the box layout wants them
        self.clip = SimpleNamespace(
            x0=np.maximum(self.wx, 0), x1=np.minimum(self.wx + hx, nx),
            y0=np.maximum(self.wy, 0), y1=np.minimum(self.wy + hy, ny))
        c = self.clip
        self.off = (c.x1 <= c.x0) | (c.y1 <= c.y0)
        self.whole = ((self.wx >= 0) & (self.wy >= 0) & (self.wx + hx <= nx)
                      & (self.wy + hy <= ny))

    def memory_order(self, select, frame_width):
        """Indices where ``select``, sorted by first pixel (row-major on a
        frame ``frame_width`` pixels wide; ties in any order)."""
        idx = np.flatnonzero(select)
        key = self.wy[idx].astype(np.int64) * frame_width + self.wx[idx]
        return idx[np.argsort(key)]

    def weights(self, idx):
        """``(m, pixels)`` weights of the whole windows ``idx``."""
        w = self.shape.weights(self.x[idx], self.y[idx])
        return w.reshape(len(idx), -1)


def measure_ellipses(frame, aperture, sky, sky_rows, *, saturation):
    """
    Flux, pixel counts, sky numbers and flags of every position of a
    closed-form aperture (see `ellipse_engine_eligible`).

    Parameters
    ----------
    frame : `ccdphot_ext.utils.inputs.Frame`
    aperture : photutils aperture with an `exact_shape`
    sky : `SkyEstimate`
        One level, one per position, or a 2-D map.
    sky_rows : tuple or None
        Level, std and error of the level for these positions (floats or
        arrays); None for a 2-D map.
    saturation : float or None

    Returns
    -------
    sums : `~ccdphot_ext.photometry.sums.ApertureSums`
        One element per position.
    """
    win = _Windows(exact_shape(aperture), aperture_positions(aperture),
                   frame.shape)
    n = win.x.size
    out = ApertureSums.empty(n, uncertainty=frame.uncertainty is not None)
    out.flags[:] = np.where(win.truncated, FLAG_TRUNCATED, 0)
    if sky_rows is not None:  # a map: summarised over each aperture's pixels
        out.sky[:], out.sky_std[:], out.sky_error_on_mean[:] = sky_rows
    level = None if sky_rows is None else sky_rows[0]
    plain = (frame.mask is None and frame.uncertainty is None
             and sky_rows is not None)
    with np.errstate(invalid='ignore', over='ignore'):
        redo = [np.flatnonzero(~win.off & ~(win.whole & plain))]
        if plain:
            order = win.memory_order(win.whole, frame.shape[1])
            redo.append(_short_route(frame.data, win, order, level,
                                     saturation, out))
        _general_route(frame, sky, win, np.concatenate(redo), level,
                       saturation, out)
    measured = np.isfinite(out.flux)
    out.flags[measured & (out.flux <= 0)] |= FLAG_NONPOSITIVE_FLUX
    return out


def _short_route(data, win, order, level, saturation, out):
    """
    Whole windows ``order`` (memory order), no mask, uncertainty or sky
    map. Returns the windows with NaN/inf pixels, for the general route.
    """
    if order.size == 0:
        return order
    if _compiled_sums(data, win.shape):
        return _kernel_route(data, win, order, level, saturation, out)
    hy, hx = win.shape.window
    view = box_rows(data, hy, hx)
    ys, xs = win.wy[order], win.wx[order]
    redo = []
    for s, e in chunks(ys, hy, hy * hx, data,
                       chunk_pixels=_chunk_pixels(data, CHUNK_PIXELS)):
        idx = order[s:e]
        cut = as_pixels(view[ys[s:e], xs[s:e]], data.dtype).astype(
            np.float64, copy=False)
        w = win.weights(idx)
        hot = None
        if saturation is not None:
            hot = np.maximum.reduce(cut, axis=1) >= saturation
            rows = np.flatnonzero(hot)
            hot[rows] = np.any((w[rows] > 0) & (cut[rows] >= saturation),
                               axis=1)
        np.subtract(cut, pick(level, idx), out=cut)
        w2 = w * w
        # (w * w) * resid, as every engine forms it
        flux_sq = np.add.reduce(w2 * cut, axis=1)
        cut *= w
        flux = np.add.reduce(cut, axis=1)
        n_pix = np.add.reduce(w, axis=1)
        noise_pix = np.add.reduce(w2, axis=1)
        redo.append(_store(out, idx, (flux, n_pix, noise_pix, flux_sq),
                           hot))
    return np.concatenate(redo)


def _compiled_sums(data, shape):
    """True when the compiled kernel sums whole windows of this shape on
    this frame: a circle or a circular annulus on a float32 or float64
    frame in native byte order."""
    return (circular.COMPILED and shape.outer.is_circle
            and (shape.inner is None or shape.inner.is_circle)
            and data.dtype.isnative
            and data.dtype in (np.float32, np.float64)
            and data.flags.aligned)


def _kernel_route(data, win, order, level, saturation, out):
    """`_short_route` for circles and circular annuli by the compiled
    kernel: each window's weights and sums in one pass, the sums in numpy's
    order of summation (the same numbers as the numpy route given the same
    weights)."""
    hy, hx = win.shape.window
    x0, y0 = win.wx[order], win.wy[order]
    inner = win.shape.inner
    sums, hot = circle_sums(
        data, win.shape.outer.X, 0.0 if inner is None else inner.X, x0, y0,
        win.x[order] - x0, win.y[order] - y0,
        np.broadcast_to(level, win.x.shape)[order], hy, hx,
        saturation is not None,
        0.0 if saturation is None else float(saturation))
    return _store(out, order, sums, hot)


def _store(out, idx, sums, hot):
    """Put the finite ``sums`` (flux, n_pix, noise_pix, flux_sq) of the
    apertures ``idx`` into ``out``, flag the saturated ones (``hot``, or
    None); return the apertures whose flux is not finite, to redo."""
    flux, n_pix, noise_pix, flux_sq = sums
    good = np.isfinite(flux)
    keep = idx[good]
    out.flux[keep] = flux[good]
    out.n_pix[keep] = n_pix[good]
    out.noise_pix[keep] = noise_pix[good]
    out.flux_sq[keep] = flux_sq[good]
    if hot is not None:
        out.flags[idx[good & hot]] |= FLAG_SATURATED
    return idx[~good]


def _gather(frame, sky, win, idx):
    """
    The pixels of windows ``idx`` in the compact layout: data, bad-pixel
    mask, uncertainty (0 where bad), sky-map planes, weights and the
    number of pixels of each window.
    """
    c = win.clip
    rows, cols, pad, n_pix = compact(c, idx)
    hy, hx = win.shape.window
    flat = (rows + (c.y0 - win.wy)[idx, None]) * hx + (
        cols + (c.x0 - win.wx)[idx, None])
    weights = np.take_along_axis(win.weights(idx), flat, axis=1)
    weights[pad] = 0.0
    rows += c.y0[idx, None]
    cols += c.x0[idx, None]
    raw = frame.data[rows, cols].astype(np.float64, copy=False)
    bad = ~np.isfinite(raw)
    if frame.mask is not None:
        bad |= frame.mask[rows, cols]
    sigma = None
    if frame.uncertainty is not None:
        sigma = frame.uncertainty[rows, cols].astype(np.float64, copy=False)
        bad |= ~np.isfinite(sigma)
        sigma = np.where(bad, 0.0, sigma)
    maps = None
    if sky.is_map:
        error_on_mean = sky.error_on_mean
        maps = (sky.value[rows, cols], sky.std[rows, cols],
                error_on_mean if np.ndim(error_on_mean) == 0
                else error_on_mean[rows, cols])
    return raw, bad, sigma, maps, weights, n_pix


def _general_route(frame, sky, win, part, level, saturation, out):
    """Windows ``part``: edges, NaN/inf pixels, masks, uncertainty and sky
    maps, as ``measure_one`` does one at a time."""
    hy, hx = win.shape.window
    part = part[np.argsort(win.wy[part], kind='stable')]
    for s, e in chunks(win.wy[part], hy, hy * hx, frame.data, stream=False,
                       chunk_pixels=_chunk_pixels(frame.data,
                                                  GENERAL_CHUNK_PIXELS)):
        idx = part[s:e]
        raw, bad, sigma, maps, weights, n_pix = _gather(frame, sky, win, idx)
        inside = weights > 0
        flags = out.flags
        flags[idx[np.any(bad & inside, axis=1)]] |= FLAG_BAD_PIXELS
        usable = np.any(inside & ~bad, axis=1)
        if saturation is not None:
            hot = np.any(inside & ~bad & (raw >= saturation), axis=1)
            flags[idx[hot & usable]] |= FLAG_SATURATED
        w = np.where(bad, 0.0, weights)
        sub = pick(level, idx) if maps is None else maps[0]
        resid = np.where(bad, 0.0, raw - sub)
        sums = [w * resid, w, w * w, (w * w) * resid]
        if sigma is not None:
            sigma2 = sigma ** 2
            sums += [w * sigma2, (w * w) * sigma2]
        if maps is not None:
            sums += [w * maps[0], w * maps[1] ** 2, w * maps[2]]
        sums = row_sums(sums, n_pix)
        keep = idx[usable]
        out.flux[keep] = sums[0][usable]
        out.n_pix[keep] = sums[1][usable]
        out.noise_pix[keep] = sums[2][usable]
        out.flux_sq[keep] = sums[3][usable]
        if sigma is not None:
            out.sigma2[keep] = sums[4][usable]
            out.sigma2_sq[keep] = sums[5][usable]
        if maps is not None:
            flags[idx[usable & zero_rms(maps[1], inside & ~bad, axis=1)]] \
                |= FLAG_SKY_ANNULUS
            total = sums[1][usable]
            out.sky[keep] = sums[-3][usable] / total
            out.sky_std[keep] = np.sqrt(sums[-2][usable] / total)
            out.sky_error_on_mean[keep] = sums[-1][usable] / total
