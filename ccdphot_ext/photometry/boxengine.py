# Licensed under a 3-clause BSD style license - see LICENSE
"""
Vectorised engine for axis-aligned `~ccdphot_ext.BoxAperture` photometry
(internal; `~ccdphot_ext.photometer` calls it).

It gives the same numbers as the general (per-aperture) engine
(``ccdphot_ext.photometry.general.measure_one``): the same pixels, the
same weights (exactly 1 inside a pixel-aligned box; the product of two 1-D
overlaps for a non-integer box, as
`~ccdphot_ext.aperture.aperture_weights`), the same
bad-pixel, saturation and threshold rules and the same order of summation,
but for thousands of boxes at a time and without a Python loop per box.

How it stays fast:

* In a `photometer` call, whole pixel-aligned boxes of a float frame
  without mask, uncertainty map or threshold (nearly all of them) take
  one compiled pass down the frame (`fused_route`,
  ``background/_sharp.c``): each box's pixels read once, rows read in
  order a few rows ahead, summed in numpy's order, and in the same pass
  the sharp-pixel search's first cut around the box
  (`~ccdphot_ext.background.outliers.BoxScan`) while the rows are in the
  cache. The other routes are plain numpy:

* Every box of a `BoxAperture` has the same size, so a whole box is one
  element of a view of the frame indexed by corners (`box_rows`: on a
  C-contiguous frame each box row is one element of raw bytes, so a box
  is copied as ``ny_box`` blocks of memory); fancy indexing with the
  boxes' corners gathers only the boxes' pixels, ``(m, ny_box * nx_box)``,
  in chunks of about 512 KiB that stay in the CPU cache while they are
  reduced.
* Boxes are processed in memory order (sorted by corner, two radix sorts)
  in bands of rows. When a band's boxes cover at least `TOUCH_COVERAGE` of
  it, the band is first read once sequentially ("touch"): scattered reads
  of short box rows from memory cost more per byte than a sequential read,
  reads from the cache far less.
* Routes. Whole pixel-aligned boxes otherwise take the short
  route: ``max`` (saturation), ``data - sky`` in place and one row sum; a
  non-finite sum marks a box with NaN/inf pixels. Edge-truncated
  pixel-aligned boxes take the same steps in a compact layout (each box's
  pixels first, in row-major order, then padding). Whole non-integer boxes
  are grouped by shape and weighted. Boxes with NaN/inf pixels, a mask or
  an uncertainty map take the general route, which follows
  ``measure_one`` step by step.
* Sums are numpy's pairwise sums over each box's pixels in row-major
  order, exactly as ``np.sum`` over the box's cutout: the two engines agree
  to the last bit. The budget is not computed here: `photometer` passes
  the sums of either engine to the one formula,
  `~ccdphot_ext.photometry.terms.budget_terms`.

The memory layout (gathering, chunks, row sums) lives in
``ccdphot_ext.photometry.boxlayout``. Nothing is cached between calls; no
array the size of the frame is made.
"""

import numpy as np

from ..flags import (
    FLAG_BAD_PIXELS,
    FLAG_EMPTY_THRESHOLD,
    FLAG_NONPOSITIVE_FLUX,
    FLAG_RESIDUAL_BACKGROUND,
    FLAG_SATURATED,
    FLAG_TRUNCATED,
)
from ..utils.windows import as_pixels, box_rows
from .boxlayout import (
    GENERAL_CHUNK_PIXELS,
    TOUCH_COVERAGE,
    BoxGeometry,
    chunks,
    compact,
    largest,
    pick,
    row_sums,
)
from .residual import residual_is_significant
from .sums import ApertureSums

__all__ = []  # internal module

#: The most bytes the compiled pass holds at once: the pixels (float64) of
#: all the boxes on one row of the frame.
FUSED_BYTES = 2 ** 23


def box_engine_eligible(aperture, sky, threshold):
    """
    True when `measure_boxes` can do this aperture (else: another engine).

    Axis-aligned boxes, a sky that is one level or one level per aperture
    (not a 2-D map), no threshold or ``segment='all'``.
    """
    # an axis-aligned BoxAperture says so itself (photutils' shapes have no
    # such property)
    if not getattr(aperture, 'is_axis_aligned', False):
        return False
    if getattr(sky, 'is_map', False) or np.ndim(sky.value) > 1:
        return False
    return threshold is None or threshold.segment == 'all'


def measure_boxes(frame, box, sky_value, sky_std, sky_error_on_mean, *,
                  threshold, saturation, sharp=None):
    """
    Flux, pixel count and flags of every position of an axis-aligned box.

    Parameters
    ----------
    frame : `ccdphot_ext.utils.inputs.Frame`
    box : `BoxAperture`
        Axis-aligned (see `box_engine_eligible`).
    sky_value, sky_std, sky_error_on_mean : float or 1-D array
        Sky level, per-pixel scatter and error of the level, one value or
        one per position.
    threshold : `SigmaThreshold` or None
        ``segment='all'`` only.
    saturation : float or None
    sharp : `~ccdphot_ext.background.outliers.BoxPart`, optional
        Where the sharp-pixel search looks around these boxes: its first
        cut is then found in the same compiled pass that sums the whole
        pixel-aligned boxes of a float frame without mask, uncertainty map
        or threshold (`fused_route`), and recorded there (without it,
        those boxes take the numpy route).

    Returns
    -------
    sums : `~ccdphot_ext.photometry.sums.ApertureSums`
        One element per position (the sky values as given, one per
        position).
    """
    data = frame.data
    geom = BoxGeometry(box, data.shape)
    n = geom.off.size
    out = {'flux': np.full(n, np.nan), 'n_pix': np.zeros(n),
           'flags': np.where(geom.truncated, FLAG_TRUNCATED,
                             0).astype(np.int32),
           'sigma2': None if frame.uncertainty is None else np.zeros(n),
           'noise_pix': np.zeros(n), 'flux_sq': np.full(n, np.nan),
           'sigma2_sq': None if frame.uncertainty is None else np.zeros(n),
           'rest': np.zeros(n), 'n_rest': np.zeros(n), 'n_sel': np.zeros(n),
           'selection': np.zeros(n)}
    sky = {'value': _as_float(sky_value), 'std': _as_float(sky_std),
           'error_on_mean': _as_float(sky_error_on_mean)}
    level = None if threshold is None else threshold.n_sigma * sky['std']
    if threshold is not None and not threshold.biased:
        level = _Smoothed(threshold, sky['std'], out, geom)
    maps = {'data': data, 'mask': frame.mask, 'sigma': frame.uncertainty}
    maps = {k: v for k, v in maps.items() if v is not None}

    with np.errstate(invalid='ignore', over='ignore'):
        redo = _short_routes(data, geom, sky, level, saturation, out,
                             plain=len(maps) == 1, sharp=sharp)
        _general_routes(maps, geom, redo, sky, level, saturation, out)

    measured = np.isfinite(out['flux'])
    flags = out['flags']
    flags[measured & (out['flux'] <= 0)] |= FLAG_NONPOSITIVE_FLUX
    if threshold is not None:
        flags[measured & (out['n_sel'] == 0)] |= FLAG_EMPTY_THRESHOLD
        significant = measured & residual_is_significant(
            np.where(measured, out['rest'], 0.0), out['n_rest'], sky['std'],
            sky['error_on_mean'])
        flags[significant] |= FLAG_RESIDUAL_BACKGROUND
    # whole pixels: the squared weights sum to the pixel count, and the
    # squared-weight sum of the data is the flux
    noise_pix = out['n_pix'] if geom.pixel_aligned else out['noise_pix']
    flux_sq = out['flux'] if geom.pixel_aligned else out['flux_sq']
    return ApertureSums(
        flux=out['flux'], n_pix=out['n_pix'], noise_pix=noise_pix,
        flux_sq=flux_sq,
        flags=flags, sky=np.broadcast_to(sky['value'], (n,)),
        sky_std=np.broadcast_to(sky['std'], (n,)),
        sky_error_on_mean=np.broadcast_to(sky['error_on_mean'], (n,)),
        sigma2=out['sigma2'], sigma2_sq=out['sigma2_sq'],
        selection=(out['selection'] if isinstance(level, _Smoothed)
                   else None))


def _short_routes(data, geom, sky, level, saturation, out, *, plain,
                  sharp=None):
    """
    The short routes (no mask or uncertainty map): whole pixel-aligned
    boxes (one shape), edge-truncated ones, whole non-integer boxes (by
    shape). Returns the boxes left for the general route.
    """
    on = ~geom.off
    whole = on & ~geom.truncated
    redo = [np.zeros(0, dtype=np.intp)]
    if plain and geom.pixel_aligned:
        if np.any(whole):
            # the compiled pass where the search rides along (alone, its
            # sums are no faster than numpy's gathers)
            route = (fused_route if sharp is not None and level is None
                     and _compiled_ok(data) else _short_route)
            redo.append(route(data, geom, geom.memory_order(whole), sky,
                              level, saturation, out, sharp=sharp))
        edge = np.flatnonzero(on & geom.truncated)
        edge = edge[np.argsort((geom.y1 - geom.y0)[edge]
                               * (geom.x1 - geom.x0)[edge],
                               kind='stable')]  # by size: see row_sums
        for s, e in chunks(geom.y0[edge], 0, largest(geom, edge), data,
                           stream=False):
            redo.append(_edge_route(data, geom, edge[s:e], sky, level,
                                    saturation, out))
    elif plain:
        heights = geom.y1 - geom.y0
        widths = geom.x1 - geom.x0
        shapes = set(zip(heights[whole].tolist(), widths[whole].tolist(),
                         strict=True))
        for h, w in sorted(shapes):
            group = whole & (heights == h) & (widths == w)
            redo.append(_weighted_route(data, geom, geom.memory_order(group),
                                        sky, level, saturation, out))
        redo.append(geom.memory_order(on & geom.truncated))
    else:
        redo.append(geom.memory_order(on))
    return np.concatenate(redo)


def _general_routes(maps, geom, redo, sky, level, saturation, out):
    """
    The general route for boxes ``redo`` (NaN/inf pixels, a mask or an
    uncertainty map); a chunk holds either whole boxes or edge boxes.
    """
    whole = ~geom.off & ~geom.truncated
    data = maps['data']
    for part in (redo[whole[redo]], redo[~whole[redo]]):
        per_box = largest(geom, part)
        stream = part.size * per_box >= TOUCH_COVERAGE * data.size
        height = int(np.max(geom.y1[part] - geom.y0[part], initial=0))
        for s, e in chunks(geom.y0[part], height, per_box, data,
                           stream=stream, chunk_pixels=GENERAL_CHUNK_PIXELS):
            _general_route(maps, geom, part[s:e], sky, level, saturation,
                           out)


def _as_float(value):
    return float(value) if np.ndim(value) == 0 else np.asarray(value, float)


class _Smoothed:
    """
    The smoothed (unbiased) selection of a `SigmaThreshold` on gathered box
    pixels, with its ``selection`` variance written to ``out``: the same
    `SigmaThreshold` calls on the same ``(m, ny, nx)`` values as `measure`.
    """

    def __init__(self, threshold, std, out, geom):
        self.threshold = threshold
        self.std = std
        self.out = out
        self.geom = geom

    def whole(self, cut, valid, idx, height, width, *, weights=None):
        """Rows ``(m, height * width)`` of whole boxes ``idx``."""
        m = cut.shape[0]
        stack = cut.reshape(m, height, width)
        valid = (np.ones(stack.shape, dtype=bool) if valid is None
                 else valid.reshape(stack.shape))
        std = self.std if np.ndim(self.std) == 0 else self.std[idx]
        geom = self.geom
        # the aperture centres in their cutouts, as the general engine's
        centre = np.column_stack([
            geom._box._positions[idx, 1] - geom.y0[idx],
            geom._box._positions[idx, 0] - geom.x0[idx]])
        sel, self.out['selection'][idx] = self.threshold.select_with_variance(
            stack, valid, std,
            weights=None if weights is None else weights.reshape(
                stack.shape), centre=centre)
        return sel.reshape(m, -1)

    def compact(self, cut, valid, weights, idx, geom):
        """Rows of boxes ``idx`` in the compact layout (`compact`)."""
        heights = geom.y1[idx] - geom.y0[idx]
        widths = geom.x1[idx] - geom.x0[idx]
        sel = np.zeros(cut.shape, dtype=bool)
        for h, w in set(zip(heights.tolist(), widths.tolist(), strict=True)):
            rows = np.flatnonzero((heights == h) & (widths == w))
            n = h * w
            sel[rows, :n] = self.whole(
                cut[rows, :n], valid[rows, :n], idx[rows], h, w,
                weights=None if weights is None else weights[rows, :n])
        return sel


def _compiled_ok(data):
    """Whether the compiled pass reads ``data`` as it is (float32 or
    float64, aligned, native byte order)."""
    return (data.dtype in (np.float32, np.float64) and data.dtype.isnative
            and data.flags.aligned)


def fused_route(data, geom, order, sky, level, saturation, out, *,
                sharp=None):
    """
    Whole pixel-aligned boxes ``order`` (in memory order, one shape) of a
    float frame, no mask, uncertainty map or threshold, in one compiled
    pass (``_sharp.box_pass``) down the frame: each box's pixels read once
    (prefetched rows ahead), its sum of ``data - sky`` in numpy's pairwise
    order over its pixels in row-major order (`_short_route`'s sums, to
    the last bit), its largest pixel, and with ``sharp`` (a `BoxPart`)
    the sharp-pixel search's first cut in the rectangles around the boxes
    while their rows are in the cache (the numpy route where the boxes on
    one row hold more than `FUSED_BYTES`). Returns the boxes with NaN/inf
    pixels, for the general route.
    """
    from ..background._sharp import box_pass

    height = int(geom.y1[order[0]] - geom.y0[order[0]])
    width = int(geom.x1[order[0]] - geom.x0[order[0]])
    y0, x0 = geom.y0[order].astype(np.intp), geom.x0[order].astype(np.intp)
    # the pass holds the pixels of every box on a row at once
    ny = data.shape[0]
    live = np.cumsum(np.bincount(y0, minlength=ny + 1)
                     - np.bincount(y0 + height, minlength=ny + 1))
    if int(live.max()) * height * width * 8 > FUSED_BYTES:
        return _short_route(data, geom, order, sky, level, saturation, out)
    value = sky['value']
    value = (float(value) if np.ndim(value) == 0
             else np.ascontiguousarray(value[order], dtype=float))
    rects = None if sharp is None else sharp.rects(order, data.shape)
    if rects is not None and not (
            np.all(np.diff(rects[:, 0]) >= 0)
            and np.all(rects[:, 0] <= y0) & np.all(rects[:, 1] >= y0 + height)
            & np.all(rects[:, 2] <= x0) & np.all(rects[:, 3] >= x0 + width)):
        rects = sharp = None  # the search looks there on its own
    cut, first = (0.0, 0.0) if sharp is None else (sharp.cut, sharp.first)
    flux, peak, found = box_pass(data, y0, x0, height, width, value, rects,
                                 cut, first)
    if sharp is not None:
        sharp.record(order, found)
    good = np.isfinite(flux)
    if saturation is not None:
        out['flags'][order[good & (peak >= saturation)]] |= FLAG_SATURATED
    out['flux'][order] = np.where(good, flux, np.nan)
    out['n_pix'][order] = height * width
    out['n_sel'][order] = height * width
    return order[~good]


def _short_route(data, geom, order, sky, level, saturation, out, *,
                 sharp=None):
    """
    Whole pixel-aligned boxes ``order`` (in memory order, one shape), no
    mask or uncertainty map (``sharp`` not used: the sharp-pixel search
    looks on its own). Returns the boxes with NaN/inf pixels, for the
    general route.
    """
    height = int(geom.y1[order[0]] - geom.y0[order[0]])
    width = int(geom.x1[order[0]] - geom.x0[order[0]])
    win = box_rows(data, height, width)
    ys, xs = geom.y0[order], geom.x0[order]
    value = pick(sky['value'], order)
    smooth = isinstance(level, _Smoothed)
    lvl = None if level is None or smooth else pick(level, order)
    m = order.size
    flux = np.empty(m)
    peak = np.empty(m) if saturation is not None else None
    if level is not None:
        rest, n_sel = np.empty(m), np.empty(m)
    scalar = np.ndim(value) == 0 and (lvl is None or np.ndim(lvl) == 0)
    for s, e in chunks(ys, height, height * width, data):
        cut = as_pixels(win[ys[s:e], xs[s:e]], data.dtype).astype(
            np.float64, copy=False)
        if peak is not None:
            np.maximum.reduce(cut, axis=1, out=peak[s:e])
        np.subtract(cut, value if scalar else value[s:e], out=cut)
        if level is None:
            np.add.reduce(cut, axis=1, out=flux[s:e])
        else:
            sel = (level.whole(cut, None, order[s:e], height, width) if smooth
                   else cut > (lvl if scalar else lvl[s:e]))
            part = np.where(sel, cut, 0.0)
            np.add.reduce(part, axis=1, out=flux[s:e])
            np.subtract(cut, part, out=part)  # the unselected pixels, 0 else
            np.add.reduce(part, axis=1, out=rest[s:e])
            n_sel[s:e] = np.count_nonzero(sel, axis=1)
    good = np.isfinite(flux)
    n_used = height * width
    if level is not None:
        good &= np.isfinite(rest)
        out['rest'][order] = rest
        out['n_rest'][order] = n_used - n_sel
        n_used = n_sel
    if peak is not None:
        out['flags'][order[good & (peak >= saturation)]] |= FLAG_SATURATED
    out['flux'][order] = np.where(good, flux, np.nan)
    out['n_pix'][order] = n_used
    out['n_sel'][order] = n_used
    return order[~good]


def _edge_route(data, geom, idx, sky, level, saturation, out):
    """
    Pixel-aligned boxes cut by the frame edge, no mask or uncertainty map,
    in the compact layout (each box's pixels first, then padding). Returns
    the boxes with NaN/inf pixels, for the general route.
    """
    rows, cols, pad, n_pix = compact(geom, idx)
    rows += geom.y0[idx][:, None]
    cols += geom.x0[idx][:, None]
    cut = data[rows, cols].astype(np.float64)
    cut[pad] = -np.inf  # never the peak, never selected, never summed
    hot = (None if saturation is None
           else np.maximum.reduce(cut, axis=1) >= saturation)
    cut -= pick(sky['value'], idx)
    if level is None:
        sums = row_sums([cut], n_pix)
        return _store(out, idx, sums, hot, n_pix, n_pix)
    sel = (level.compact(np.where(pad, 0.0, cut), ~pad, None, idx, geom)
           if isinstance(level, _Smoothed) else cut > pick(level, idx))
    sums = row_sums([np.where(sel, cut, 0.0), np.where(sel, 0.0, cut)],
                    n_pix)
    n_sel = np.count_nonzero(sel, axis=1)
    return _store(out, idx, sums, hot, n_sel, n_sel, n_pix - n_sel)


def _store(out, idx, sums, hot, n_pix, n_sel, n_rest=None, noise_pix=None,
           flux_sq=None):
    """
    Record the sums of boxes ``idx`` (``sums``: flux, then with a
    threshold the sum left outside it) where every sum is finite, with the
    saturation flag where ``hot``; return the other boxes (NaN/inf pixels),
    for the general route.
    """
    good = np.all(np.isfinite(sums), axis=0)
    keep = idx[good]
    if noise_pix is not None:
        out['noise_pix'][keep] = noise_pix[good]
        out['flux_sq'][keep] = flux_sq[good]
    if hot is not None:
        out['flags'][idx[good & hot]] |= FLAG_SATURATED
    out['flux'][keep] = sums[0][good]
    out['n_pix'][keep] = np.broadcast_to(n_pix, good.shape)[good]
    out['n_sel'][keep] = np.broadcast_to(n_sel, good.shape)[good]
    if n_rest is not None:
        out['rest'][keep] = sums[-1][good]
        out['n_rest'][keep] = np.broadcast_to(n_rest, good.shape)[good]
    return idx[~good]


def _weighted_route(data, geom, order, sky, level, saturation, out):
    """
    Whole non-integer boxes ``order`` of one shape, no mask or uncertainty
    map: the weights of `aperture_weights` times the gathered pixels.
    Returns the boxes with NaN/inf pixels, for the general route.
    """
    height = int(geom.y1[order[0]] - geom.y0[order[0]])
    width = int(geom.x1[order[0]] - geom.x0[order[0]])
    win = box_rows(data, height, width)
    redo = []
    for s, e in chunks(geom.y0[order], height, height * width, data):
        idx = order[s:e]
        cut = as_pixels(win[geom.y0[idx], geom.x0[idx]],
                         data.dtype).astype(np.float64, copy=False)
        weights = (geom.weights_1d(idx, 0, height)[:, :, None]
                   * geom.weights_1d(idx, 1, width)[:, None, :]
                   ).reshape(e - s, -1)
        inside = weights > 0
        hot = (None if saturation is None
               else np.any(inside & (cut >= saturation), axis=1))
        cut -= pick(sky['value'], idx)
        if level is None:
            w2 = weights * weights
            flux, n_used, noise, flux_sq = row_sums(
                [weights * cut, weights, w2, w2 * cut], [cut.shape[1]])
            redo.append(_store(out, idx, [flux, n_used], hot, n_used,
                               n_used, noise_pix=noise, flux_sq=flux_sq))
            continue
        sel = (level.whole(np.where(inside, cut, 0.0), inside, idx, height,
                           width, weights=weights)
               if isinstance(level, _Smoothed)
               else inside & (cut > pick(level, idx)))
        w_rest = np.where(sel, 0.0, weights)
        weights = np.where(sel, weights, 0.0)
        w2 = weights * weights
        flux, n_used, rest, n_rest, noise, flux_sq = row_sums(
            [weights * cut, weights, w_rest * cut, w_rest, w2, w2 * cut],
            [cut.shape[1]])
        redo.append(_store(out, idx, [flux, n_used, n_rest, rest], hot,
                           n_used, np.count_nonzero(sel, axis=1), n_rest,
                           noise_pix=noise, flux_sq=flux_sq))
    return np.concatenate(redo)


def _general_route(maps, geom, idx, sky, level, saturation, out):
    """Any axis-aligned box: weights, bad pixels, mask and sigma map."""
    heights = geom.y1[idx] - geom.y0[idx]
    widths = geom.x1[idx] - geom.x0[idx]
    shape = None
    if np.all(heights == heights[0]) and np.all(widths == widths[0]):
        # one shape (e.g. whole boxes with a NaN): gather windows
        shape = (int(heights[0]), int(widths[0]))
        n_pix = np.full(idx.size, shape[0] * shape[1])
        where = (geom.y0[idx], geom.x0[idx])
        pixels = {name: as_pixels(box_rows(values, *shape)[where],
                                   values.dtype)
                  for name, values in maps.items()}
        if geom.pixel_aligned:
            weights = np.ones(pixels['data'].shape)
        else:
            weights = (geom.weights_1d(idx, 0, shape[0])[:, :, None]
                       * geom.weights_1d(idx, 1, shape[1])[:, None, :]
                       ).reshape(idx.size, -1)
    else:
        # compact layout: each box's pixels first, in row-major order
        rows, cols, pad, n_pix = compact(geom, idx)
        if geom.pixel_aligned:
            weights = np.where(pad, 0.0, 1.0)
        else:
            weights = (np.take_along_axis(
                geom.weights_1d(idx, 0, int(rows.max()) + 1), rows, axis=1)
                * np.take_along_axis(
                geom.weights_1d(idx, 1, int(cols.max()) + 1), cols, axis=1))
            weights[pad] = 0.0
        rows += geom.y0[idx][:, None]
        cols += geom.x0[idx][:, None]
        pixels = {name: values[rows, cols] for name, values in maps.items()}
    raw = pixels['data'].astype(np.float64, copy=False)
    inside = weights > 0
    bad = ~np.isfinite(raw)
    if 'mask' in pixels:
        bad |= pixels['mask']
    sigma = None
    if 'sigma' in pixels:
        sigma = pixels['sigma'].astype(np.float64, copy=False)
        bad |= ~np.isfinite(sigma)
        sigma = np.where(bad, 0.0, sigma)
    flags = out['flags']
    flags[idx[np.any(bad & inside, axis=1)]] |= FLAG_BAD_PIXELS
    usable = np.any(inside & ~bad, axis=1)
    if saturation is not None:
        hot = inside & ~bad & (raw >= saturation)
        flags[idx[np.any(hot, axis=1)]] |= FLAG_SATURATED
    w = np.where(bad, 0.0, weights)
    resid = np.where(bad, 0.0, raw - pick(sky['value'], idx))
    rest = []
    if isinstance(level, _Smoothed):
        sel = (level.whole(resid, w > 0, idx, *shape, weights=w)
               if shape is not None
               else level.compact(resid, w > 0, w, idx, geom))
    elif level is not None:
        sel = (w > 0) & (resid > pick(level, idx))
    if level is not None:
        w_rest = np.where(sel, 0.0, w)
        w = np.where(sel, w, 0.0)
        rest = [w_rest * resid, w_rest]
        out['n_sel'][idx] = np.count_nonzero(sel, axis=1)
    w2 = w * w
    sums = [w * resid, w, w2, w2 * resid]
    if sigma is not None:
        var = sigma ** 2
        sums += [w * var, w2 * var]
    sums = row_sums(sums + rest, n_pix)
    out['flux'][idx] = np.where(usable, sums[0], np.nan)
    out['n_pix'][idx] = np.where(usable, sums[1], 0.0)
    out['noise_pix'][idx] = np.where(usable, sums[2], 0.0)
    out['flux_sq'][idx] = np.where(usable, sums[3], np.nan)
    if level is None:
        out['n_sel'][idx] = sums[1]
    else:
        out['rest'][idx], out['n_rest'][idx] = sums[-2], sums[-1]
    if sigma is not None:
        out['sigma2'][idx] = np.where(usable, sums[4], 0.0)
        out['sigma2_sq'][idx] = np.where(usable, sums[5], 0.0)
