# Licensed under a 3-clause BSD style license - see LICENSE
"""
Sky annuli for many apertures at once (internal; `SkyEstimate.from_annulus`
calls it).

Pixels of an annulus are its whole pixels (``method='center'``: a pixel
belongs when its centre does, ``r_in <= d < r_out`` for a circular annulus).
For circular annuli they are gathered for a chunk of annuli at a time from
a square around each centre (no photutils mask per position); other annuli
use photutils' masks. Left out of every annulus, and counted:

* NaN/inf and masked pixels (``n_excluded_bad``);
* with ``exclude``, every pixel that an aperture of ``exclude`` touches
  (any overlap with the pixel's square, so no aperture light is left):
  the star's own aperture and its neighbours' (``n_excluded_apertures``).

An annulus is *doubtful* (`~ccdphot_ext.flags.FLAG_SKY_ANNULUS`, and an
`~astropy.utils.exceptions.AstropyUserWarning`) when its own aperture
reaches into it, when fewer than `MIN_USED_FRACTION` of its pixels are
left for the statistic, or when fewer than `MIN_PIXELS` are left or they
are all equal (a scatter of 0 would give the sky no error).
"""

import math
import warnings

import numpy as np
from astropy.stats import mad_std, sigma_clip
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import (
    CircularAnnulus,
    EllipticalAnnulus,
    RectangularAnnulus,
)

from ..aperture.touch import touch_shape
from ..aperture.utils import (
    aperture_list,
    aperture_positions,
    check_extent,
    n_positions,
)
from .estimators import clip_factors

__all__ = []  # internal module

#: Annuli whose used pixels are fewer than this fraction of their pixels
#: are flagged.
MIN_USED_FRACTION = 0.5
#: Annuli with fewer usable pixels than this (or whose pixels are all
#: equal) are flagged: their scatter, hence the sky error, is no estimate.
MIN_PIXELS = 5
#: Annulus pixels gathered per chunk (float64: 1 MiB; a dozen arrays), at
#: most `CHUNK_FRACTION` of the frame's pixels.
CHUNK_PIXELS = 2 ** 17
CHUNK_FRACTION = 1 / 64

_ANNULUS_TYPES = (CircularAnnulus, EllipticalAnnulus, RectangularAnnulus)


def _chunk_pixels(shape):
    return max(min(CHUNK_PIXELS, int(shape[0] * shape[1] * CHUNK_FRACTION)),
               1024)


def touched(aperture, idx, ys, xs):
    """
    True where aperture positions ``idx`` touch the pixels of rows ``ys``
    and columns ``xs`` (arrays of ``len(idx)`` rows, broadcast together,
    e.g. ``(m, ny, 1)`` and ``(m, 1, nx)``); None for an aperture type
    without a closed form.
    """
    shape = touch_shape(aperture)  # boxes, circles, ellipses, annuli
    if shape is None:
        return None
    pos = aperture_positions(aperture)[idx]
    return shape.touches(pos[:, 0], pos[:, 1], ys, xs)


def exclusion_map(exclude, shape):
    """Boolean map of the pixels any aperture of ``exclude`` touches."""
    out = np.zeros(shape, dtype=bool)
    for ap in aperture_list(exclude):
        pos = aperture_positions(ap)
        half = _half_extent(ap)
        if half is None:
            _paint_masks(out, ap)
            continue
        side = 2 * int(math.ceil(half)) + 2
        corner = np.floor(pos - half).astype(int)
        per_chunk = max(1, _chunk_pixels(shape) // (side * side))
        order = np.lexsort((corner[:, 0], corner[:, 1]))  # row by row
        for s in range(0, len(pos), per_chunk):
            idx = order[s:s + per_chunk]
            xs = corner[idx, :1] + np.arange(side)
            ys = corner[idx, 1:] + np.arange(side)
            hit = touched(ap, idx, ys[:, :, None], xs[:, None, :])
            hit &= _inside(ys, shape[0])[:, :, None]
            hit &= _inside(xs, shape[1])[:, None, :]
            m, yy, xx = np.nonzero(hit)
            out[ys[m, yy], xs[m, xx]] = True
    return out


def _half_extent(aperture):
    shape = touch_shape(aperture)
    return None if shape is None else shape.half_extent


def _paint_masks(out, aperture):
    """Any other aperture: photutils' exact masks, one position at a time."""
    masks = aperture.to_mask(method='exact')
    for amask in masks if isinstance(masks, list) else [masks]:
        large, small = amask.get_overlap_slices(out.shape)
        if large is not None:
            out[large] |= amask.data[small] > 0


def _inside(index, n):
    return (index >= 0) & (index < n)


def annulus_pixels(frame, annulus, excluded, own):
    """
    Yield ``(idx, rows, sigmas, counts)`` for chunks of annulus positions:
    the pixels of each annulus as rows, NaN where a pixel is not usable,
    their sigmas (or None) and a dict of per-position counts (``n_total``,
    ``n_bad``, ``n_apertures``, ``n_own``).
    """
    if isinstance(annulus, CircularAnnulus):
        yield from _circular_chunks(frame, annulus, excluded, own)
        return
    masks = annulus.to_mask(method='center')
    masks = masks if isinstance(masks, list) else [masks]
    per_chunk = max(1, _chunk_pixels(frame.shape)
                    // max(masks[0].data.size, 1))
    for s in range(0, len(masks), per_chunk):
        idx = np.arange(s, min(s + per_chunk, len(masks)))
        parts = [_mask_pixels(frame, masks[i], excluded) for i in idx]
        counts = {key: np.array([p[2][key] for p in parts])
                  for key in ('n_total', 'n_bad', 'n_apertures')}
        counts['n_own'] = _own_overlap(own, idx, masks)
        sig = (None if frame.uncertainty is None
               else _pad([p[1] for p in parts]))
        yield idx, _pad([p[0] for p in parts]), sig, counts


def _mask_pixels(frame, amask, excluded):
    large, small = amask.get_overlap_slices(frame.shape)
    if large is None:
        zero = {'n_total': 0, 'n_bad': 0, 'n_apertures': 0}
        return np.empty(0), np.empty(0), zero
    inside = amask.data[small] > 0
    vals = frame.data[large][inside].astype(np.float64)
    good = np.isfinite(vals)
    if frame.mask is not None:
        good &= ~frame.mask[large][inside]
    unc = np.empty(0)
    if frame.uncertainty is not None:
        unc = frame.uncertainty[large][inside].astype(np.float64)
        good &= np.isfinite(unc)
    n_bad = int(vals.size - np.count_nonzero(good))
    n_ap = 0
    if excluded is not None:
        hit = excluded[large][inside] & good
        n_ap = int(np.count_nonzero(hit))
        good &= ~hit
    return (vals[good], unc[good] if unc.size else unc,
            {'n_total': int(vals.size), 'n_bad': n_bad, 'n_apertures': n_ap})


def _own_overlap(own, idx, masks):
    """Pixels of annuli ``idx`` touched by their own aperture."""
    out = np.zeros(len(idx), dtype=int)
    for k, i in enumerate(idx.tolist()):
        bbox = masks[i].bbox
        ys = np.arange(bbox.iymin, bbox.iymax)[None, :, None]
        xs = np.arange(bbox.ixmin, bbox.ixmax)[None, None, :]
        hit = _own_hits(own, np.array([i]), ys, xs, masks[i].data[None] > 0)
        out[k] = hit[0]
    return out


def _touch_reach(aperture):
    """Largest distance from a position to the centre of a pixel its
    aperture touches (None without a closed form)."""
    shape = touch_shape(aperture)
    return None if shape is None else shape.reach


def _out_of_reach(aperture, ap_idx, ring, sel):
    """True when no aperture ``ap_idx`` can touch a pixel of its ring."""
    reach = _touch_reach(aperture)
    if ring is None or reach is None:
        return False
    centres, r_min = ring
    shift = np.hypot(*(aperture_positions(aperture)[ap_idx]
                       - centres[sel]).T)
    return bool(np.all(reach + shift < r_min))


def _own_hits(own, idx, ys, xs, member, ring=None):
    """Count, per annulus ``idx``, its ``member`` pixels that its own
    aperture touches (0 where that aperture has no closed form); ``ys``,
    ``xs`` and ``member`` as for `touched`. With ``ring=(centres, r_min)``
    (members at least ``r_min`` from the annuli's ``centres``), apertures
    that cannot reach so far are skipped."""
    out = np.zeros(len(idx), dtype=int)
    for ap, start in own or ():
        sel = np.flatnonzero((idx >= start)
                             & (idx < start + n_positions(ap)))
        if sel.size == 0 or _out_of_reach(ap, idx[sel] - start, ring, sel):
            continue
        hit = touched(ap, idx[sel] - start, ys[sel], xs[sel])
        if hit is not None:
            hit &= member[sel]
            out[sel] = hit.reshape(sel.size, -1).sum(axis=1)
    return out


def ring_offsets(r_in, r_out):
    """
    Pixel offsets ``(oy, ox)`` from ``floor(position)`` that can hold the
    centre of a pixel of a ``r_in``-``r_out`` annulus for some position in
    that pixel (the union over sub-pixel positions): about
    ``pi ((r_out + 1)**2 - (r_in - 1)**2)`` pixels instead of the square's
    ``(2 r_out + 2)**2``.
    """
    reach = int(math.ceil(r_out)) + 1
    o = np.arange(-reach, reach + 1)
    # the offset of a pixel centre from the position is o - f, f in [0, 1)
    near = np.where(o >= 1, o - 1, np.where(o <= 0, -o, 0)).astype(float)
    far = np.maximum(np.abs(o), np.abs(o - 1)).astype(float)
    d_min = np.hypot(near[:, None], near[None, :])
    d_max = np.hypot(far[:, None], far[None, :])
    oy, ox = np.nonzero((d_min < r_out + 1e-9) & (d_max >= r_in - 1e-9))
    return o[oy], o[ox], reach


def ring_pixels(annulus, idx, offsets=None):
    """Rows, columns ``(m, k)`` of the candidate pixels (`ring_offsets`)
    of circular annuli ``idx``, and which are members (pixel centre at
    ``r_in <= d < r_out``)."""
    oy, ox, _ = offsets or ring_offsets(float(annulus.r_in),
                                        float(annulus.r_out))
    pos = aperture_positions(annulus)[idx]
    base = np.floor(pos).astype(np.int64)
    frac = pos - base
    d = np.sqrt((oy - frac[:, 1:]) ** 2 + (ox - frac[:, :1]) ** 2)
    member = (d < float(annulus.r_out)) & ~(d < float(annulus.r_in))
    return base[:, 1:] + oy, base[:, :1] + ox, member


def _circular_chunks(frame, annulus, excluded, own):
    """Circular annuli: the candidate pixels around each centre (see
    `ring_offsets`), gathered for a chunk of annuli at a time."""
    ny, nx = frame.shape
    offsets = ring_offsets(float(annulus.r_in), float(annulus.r_out))
    reach = offsets[2]
    base = np.floor(aperture_positions(annulus)).astype(np.int64)
    inner = ((base[:, 0] >= reach) & (base[:, 0] < nx - reach)
             & (base[:, 1] >= reach) & (base[:, 1] < ny - reach))
    contiguous = frame.data.flags.c_contiguous
    per_chunk = max(1, _chunk_pixels(frame.shape) // offsets[0].size)
    # row by row: a chunk's pixels then lie in a few bands of the frame,
    # which stay in the cache while they are gathered
    order = np.lexsort((base[:, 0], base[:, 1]))
    for s in range(0, len(base), per_chunk):
        idx = order[s:s + per_chunk]
        ys, xs, member = ring_pixels(annulus, idx, offsets)
        whole = contiguous and inner[idx].all()
        if not whole:
            member &= _inside(ys, ny) & _inside(xs, nx)
        take = _taker(ys, xs, frame.shape, whole)
        vals = take(frame.data).astype(np.float64)
        good = member & np.isfinite(vals)
        if frame.mask is not None:
            good &= ~take(frame.mask)
        sig = None
        if frame.uncertainty is not None:
            sig = take(frame.uncertainty).astype(np.float64)
            good &= np.isfinite(sig)
        counts = {'n_total': member.sum(axis=1),
                  'n_bad': (member & ~good).sum(axis=1)}
        if excluded is not None:
            hit = good & take(excluded)
            counts['n_apertures'] = hit.sum(axis=1)
            good &= ~hit
        else:
            counts['n_apertures'] = np.zeros(idx.size, dtype=int)
        counts['n_own'] = _own_hits(own, idx, ys, xs, member, (
            aperture_positions(annulus)[idx], float(annulus.r_in)))
        vals[~good] = np.nan  # the statistics skip NaN
        if sig is not None:
            sig[~good] = np.nan
        yield idx, vals, sig, counts


def _taker(ys, xs, shape, whole):
    """A function gathering an array of ``shape`` at pixels ``ys, xs``:
    by flat index when ``whole`` (every pixel on the frame), else with
    the indices clipped to the frame (the caller masks those off it)."""
    ny, nx = shape
    if whole:
        flat = ys * nx + xs

        def take(a):
            return (a.ravel()[flat] if a.flags.c_contiguous
                    else a[ys, xs])
    else:
        yc, xc = np.clip(ys, 0, ny - 1), np.clip(xs, 0, nx - 1)

        def take(a):
            return a[yc, xc]
    return take


def _pad(arrays):
    """Stack 1-D arrays into rows, padded with NaN."""
    width = max(max((a.size for a in arrays), default=0), 1)
    out = np.full((len(arrays), width), np.nan)
    for row, a in zip(out, arrays, strict=True):
        row[:a.size] = a
    return out


def _kept_mean_std(rows, keep):
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


def row_statistics(rows, method, sigma, maxiters):
    """
    Level, std, kept-pixel mask and clipped count of each NaN-padded row
    (``rows`` is overwritten).
    """
    finite = np.isfinite(rows)
    if method == 'sigma_clip':
        with warnings.catch_warnings():
            # the NaN padding of shorter rows is ours, not the data's
            warnings.filterwarnings('ignore', 'Input data contains '
                                    'invalid values', AstropyUserWarning)
            clipped = sigma_clip(rows, sigma=sigma, maxiters=maxiters,
                                 cenfunc='median', stdfunc='std', axis=1,
                                 masked=False, copy=False)
        keep = np.isfinite(clipped)
        level, std = _kept_mean_std(clipped, keep)
        std *= clip_factors(sigma)[0]
        n_clipped = finite.sum(axis=1) - keep.sum(axis=1)
        return level, std, keep, n_clipped
    if method == 'mean':
        level, std = _kept_mean_std(rows, finite)
    else:  # robust, as the level: 1.4826 * median absolute deviation
        level = np.nanmedian(rows, axis=1)
        std = mad_std(rows, axis=1, ignore_nan=True)
    return level, std, finite, np.zeros(len(rows), dtype=int)


def own_apertures(exclude, n):
    """``[(aperture, first row), ...]`` when the positions of ``exclude``
    are the ``n`` annuli's own, in order; else None."""
    groups = aperture_list(exclude)
    own, start = [], 0
    for ap in groups:
        own.append((ap, start))
        start += n_positions(ap)
    return own if start == n else None


def annulus_statistics(frame, annulus, exclude, *, method, sigma, maxiters):
    """Level, std, n_pix and error of the level of every annulus."""
    from ..flags import FLAG_SKY_ANNULUS
    n = n_positions(annulus)
    excluded = None if exclude is None else exclusion_map(exclude,
                                                          frame.shape)
    own = None if exclude is None else own_apertures(exclude, n)
    out = {name: np.zeros(n) for name in ('level', 'std', 'n_pix', 'var')}
    counts = {name: np.zeros(n, dtype=int) for name in
              ('n_total', 'n_bad', 'n_apertures', 'n_own', 'n_clipped')}
    for idx, rows, sigmas, part in annulus_pixels(frame, annulus, excluded,
                                                  own):
        empty = ~np.isfinite(rows).any(axis=1)
        rows[empty] = 0.0  # statistics of a placeholder, replaced by NaN
        level, std, keep, n_clipped = row_statistics(rows, method, sigma,
                                                     maxiters)
        level[empty], std[empty], keep[empty] = np.nan, np.nan, False
        out['level'][idx], out['std'][idx] = level, std
        out['n_pix'][idx] = keep.sum(axis=1)
        if sigmas is not None:
            out['var'][idx] = np.sum(np.where(keep, sigmas, 0.0) ** 2,
                                     axis=1)
        for key, value in part.items():
            counts[key][idx] = value
        counts['n_clipped'][idx] = n_clipped
    n_pix = out['n_pix'].astype(int)
    if not n_pix.any():
        raise ValueError('no sky annulus holds a finite, unmasked pixel to '
                         'estimate the sky from' + (
                             '' if exclude is None
                             else ' outside the excluded apertures'))
    used = np.where(counts['n_total'] > 0,
                    n_pix / np.maximum(counts['n_total'], 1), 0.0)
    degenerate = (n_pix > 0) & ((n_pix < MIN_PIXELS) | (out['std'] == 0))
    doubtful = ((counts['n_own'] > 0) | (used < MIN_USED_FRACTION)
                | (n_pix == 0) | degenerate)
    _warn(counts, doubtful & ~degenerate, n)
    if degenerate.any():
        warnings.warn(f'{int(degenerate.sum())} of {n} sky annuli flagged '
                      f'doubtful: fewer than {MIN_PIXELS} usable pixels, or '
                      'pixels all equal (a scatter of 0): their sky error '
                      'cannot be trusted', AstropyUserWarning, stacklevel=3)
    meta = {'n_excluded_bad': counts['n_bad'],
            'n_excluded_apertures': counts['n_apertures'],
            'n_own_overlap': counts['n_own'], 'n_clipped': counts['n_clipped'],
            'flags': np.where(doubtful, FLAG_SKY_ANNULUS, 0).astype(np.int32),
            'exclude': None if exclude is None else 'apertures touched'}
    with np.errstate(divide='ignore', invalid='ignore'):
        error_on_mean = (None if frame.uncertainty is None
               else np.where(n_pix > 0, np.sqrt(out['var']) / n_pix, np.nan))
    return {'level': out['level'], 'std': out['std'], 'n_pix': n_pix,
            'error_on_mean': error_on_mean, 'meta': meta}


def _warn(counts, doubtful, n):
    n_bad = counts['n_bad']
    if n_bad.sum():
        warnings.warn(f'{int(n_bad.sum())} masked/NaN/inf pixels excluded '
                      f'from the sky annuli ({int(np.count_nonzero(n_bad))} '
                      f'of {n} positions)', AstropyUserWarning, stacklevel=4)
    if doubtful.any():
        n_own = int(np.count_nonzero(counts['n_own']))
        warnings.warn(f'{int(doubtful.sum())} of {n} sky annuli flagged '
                      f'doubtful: {n_own} reach into their own aperture '
                      '(its pixels left out), the others keep fewer than '
                      f'{MIN_USED_FRACTION:.0%} of their pixels; make the '
                      'annulus larger than the aperture', AstropyUserWarning,
                      stacklevel=4)


def sky_row_flags(sky, apertures, n_rows):
    """
    Flags the sky gives each photometry row: those of an annulus sky
    (``meta['flags']``), and, for annuli measured without ``exclude``, the
    annuli that the measured apertures reach into (with a warning).
    """
    from ..flags import FLAG_SKY_ANNULUS
    flags = sky.meta.get('flags')
    if sky.isscalar or flags is None:
        return 0
    flags = np.asarray(flags, dtype=np.int32)
    annulus = sky.meta.get('annulus_aperture')
    own = own_apertures(apertures, n_rows)
    if sky.meta.get('exclude') is None and annulus is not None and own:
        if isinstance(annulus, CircularAnnulus):
            idx = np.arange(n_positions(annulus))
            ys, xs, member = ring_pixels(annulus, idx)
            hits = _own_hits(own, idx, ys, xs, member)
        else:
            masks = annulus.to_mask(method='center')
            masks = masks if isinstance(masks, list) else [masks]
            hits = _own_overlap(own, np.arange(len(masks)), masks)
        if np.any(hits):
            warnings.warn(f'{int(np.count_nonzero(hits))} of {n_rows} sky '
                          'annuli reach into their own aperture, whose light '
                          'then lifts the sky (flagged); give the apertures '
                          'as SkyEstimate.from_annulus(..., exclude=...) or '
                          'make the annuli larger', AstropyUserWarning,
                          stacklevel=3)
            flags = flags | np.where(hits > 0, FLAG_SKY_ANNULUS, 0)
    return flags.astype(np.int32)


def check_annulus(annulus, shape):
    """A photutils annulus no larger than a few frames, or an error naming
    the parameter (a mistyped outer size would exhaust the memory)."""
    if not isinstance(annulus, _ANNULUS_TYPES):
        raise TypeError('annulus must be a photutils CircularAnnulus, '
                        'EllipticalAnnulus or RectangularAnnulus, got '
                        f'{type(annulus).__name__}')
    check_extent(annulus, shape, 'annulus', hint='its outer size')
