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
reaches into it, or when fewer than `MIN_USED_FRACTION` of its pixels are
left for the statistic.
"""

import math
import warnings

import numpy as np
from astropy.stats import mad_std, sigma_clip
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus, CircularAperture

from ..aperture.box import BoxAperture
from ..aperture.utils import aperture_list, aperture_positions, n_positions
from .clipping import clip_factors

__all__ = []  # internal module

#: Annuli whose used pixels are fewer than this fraction of their pixels
#: are flagged.
MIN_USED_FRACTION = 0.5
#: Annulus pixels gathered per chunk (float64: 1 MiB; a dozen arrays).
CHUNK_PIXELS = 2 ** 17


def touched(aperture, idx, ys, xs):
    """
    ``(m, ny, nx)`` True where aperture positions ``idx`` touch the pixels
    of rows ``ys`` ``(m, ny)`` and columns ``xs`` ``(m, nx)``; None for an
    aperture type without a closed form.
    """
    pos = aperture_positions(aperture)[idx]
    # distance from each position to the nearest point of each pixel square
    dx = np.maximum(np.abs(xs - pos[:, :1]) - 0.5, 0.0)[:, None, :]
    dy = np.maximum(np.abs(ys - pos[:, 1:]) - 0.5, 0.0)[:, :, None]
    if isinstance(aperture, CircularAperture):
        return dx * dx + dy * dy < aperture.r ** 2
    if isinstance(aperture, BoxAperture) and aperture.is_axis_aligned:
        wx, wy = aperture._sides
        return (dx < wx / 2) & (dy < wy / 2)
    return None


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
        per_chunk = max(1, CHUNK_PIXELS // (side * side))
        for s in range(0, len(pos), per_chunk):
            idx = np.arange(s, min(s + per_chunk, len(pos)))
            xs = corner[idx, :1] + np.arange(side)
            ys = corner[idx, 1:] + np.arange(side)
            hit = touched(ap, idx, ys, xs)
            hit &= _inside(ys, shape[0])[:, :, None]
            hit &= _inside(xs, shape[1])[:, None, :]
            m, yy, xx = np.nonzero(hit)
            out[ys[m, yy], xs[m, xx]] = True
    return out


def _half_extent(aperture):
    if isinstance(aperture, CircularAperture):
        return float(aperture.r) + 1.0
    if isinstance(aperture, BoxAperture) and aperture.is_axis_aligned:
        return max(aperture._sides) / 2 + 1.0
    return None


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
    per_chunk = max(1, CHUNK_PIXELS // max(masks[0].data.size, 1))
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
        ys = np.arange(bbox.iymin, bbox.iymax)[None, :]
        xs = np.arange(bbox.ixmin, bbox.ixmax)[None, :]
        hit = _own_hits(own, np.array([i]), ys, xs, masks[i].data[None] > 0)
        out[k] = hit[0]
    return out


def _own_hits(own, idx, ys, xs, member):
    """Count, per annulus ``idx``, its ``member`` pixels that its own
    aperture touches (0 where that aperture has no closed form)."""
    out = np.zeros(len(idx), dtype=int)
    for ap, start in own or ():
        sel = np.flatnonzero((idx >= start)
                             & (idx < start + n_positions(ap)))
        if sel.size == 0:
            continue
        hit = touched(ap, idx[sel] - start, ys[sel], xs[sel])
        if hit is not None:
            out[sel] = (hit & member[sel]).sum(axis=(1, 2))
    return out


def _circular_chunks(frame, annulus, excluded, own):
    """Circular annuli: a square of pixels around each centre, gathered."""
    ny, nx = frame.shape
    pos = aperture_positions(annulus)
    r_in, r_out = float(annulus.r_in), float(annulus.r_out)
    side = 2 * int(math.ceil(r_out)) + 2
    corner = np.floor(pos - r_out).astype(int)
    per_chunk = max(1, CHUNK_PIXELS // (side * side))
    offsets = np.arange(side)
    for s in range(0, len(pos), per_chunk):
        idx = np.arange(s, min(s + per_chunk, len(pos)))
        xs = corner[idx, :1] + offsets
        ys = corner[idx, 1:] + offsets
        dx = xs - pos[idx, :1]
        dy = ys - pos[idx, 1:]
        d2 = dy[:, :, None] ** 2 + dx[:, None, :] ** 2
        d = np.sqrt(d2)
        member = (d < r_out) & ~(d < r_in)
        on = _inside(ys, ny)[:, :, None] & _inside(xs, nx)[:, None, :]
        member &= on
        yc = np.clip(ys, 0, ny - 1)[:, :, None]
        xc = np.clip(xs, 0, nx - 1)[:, None, :]
        vals = frame.data[yc, xc].astype(np.float64)
        good = member & np.isfinite(vals)
        if frame.mask is not None:
            good &= ~frame.mask[yc, xc]
        sig = None
        if frame.uncertainty is not None:
            sig = frame.uncertainty[yc, xc].astype(np.float64)
            good &= np.isfinite(sig)
        counts = {'n_total': member.sum(axis=(1, 2)),
                  'n_bad': (member & ~good).sum(axis=(1, 2))}
        if excluded is not None:
            hit = good & excluded[yc, xc]
            counts['n_apertures'] = hit.sum(axis=(1, 2))
            good &= ~hit
        else:
            counts['n_apertures'] = np.zeros(idx.size, dtype=int)
        counts['n_own'] = _own_hits(own, idx, ys, xs, member)
        good = good.reshape(idx.size, -1)
        vals = vals.reshape(idx.size, -1)
        vals[~good] = np.nan  # the statistics skip NaN
        if sig is not None:
            sig = sig.reshape(idx.size, -1)
            sig[~good] = np.nan
        yield idx, vals, sig, counts


def _pad(arrays):
    """Stack 1-D arrays into rows, padded with NaN."""
    width = max(max((a.size for a in arrays), default=0), 1)
    out = np.full((len(arrays), width), np.nan)
    for row, a in zip(out, arrays, strict=True):
        row[:a.size] = a
    return out


def row_statistics(rows, method, sigma, maxiters):
    """
    Level, std, kept-pixel mask and clipped count of each NaN-padded row.
    """
    if method == 'sigma_clip':
        with warnings.catch_warnings():
            # the NaN padding of shorter rows is ours, not the data's
            warnings.filterwarnings('ignore', 'Input data contains '
                                    'invalid values', AstropyUserWarning)
            clipped = sigma_clip(rows, sigma=sigma, maxiters=maxiters,
                                 cenfunc='median', stdfunc='std', axis=1,
                                 masked=False, copy=True)
        keep = np.isfinite(clipped)
        std_factor = clip_factors(sigma)[0]
        level = np.nanmean(clipped, axis=1)
        std = np.nanstd(clipped, axis=1) * std_factor
        n_clipped = np.isfinite(rows).sum(axis=1) - keep.sum(axis=1)
        return level, std, keep, n_clipped
    keep = np.isfinite(rows)
    if method == 'mean':
        level, std = np.nanmean(rows, axis=1), np.nanstd(rows, axis=1)
    else:  # robust, as the level: 1.4826 * median absolute deviation
        level = np.nanmedian(rows, axis=1)
        std = mad_std(rows, axis=1, ignore_nan=True)
    return level, std, keep, np.zeros(len(rows), dtype=int)


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
    doubtful = ((counts['n_own'] > 0) | (used < MIN_USED_FRACTION)
                | (n_pix == 0))
    _warn(counts, doubtful, n)
    meta = {'n_excluded_bad': counts['n_bad'],
            'n_excluded_apertures': counts['n_apertures'],
            'n_own_overlap': counts['n_own'], 'n_clipped': counts['n_clipped'],
            'flags': np.where(doubtful, FLAG_SKY_ANNULUS, 0).astype(np.int32),
            'exclude': None if exclude is None else 'apertures touched'}
    with np.errstate(divide='ignore', invalid='ignore'):
        eom = (None if frame.uncertainty is None
               else np.where(n_pix > 0, np.sqrt(out['var']) / n_pix, np.nan))
    return {'level': out['level'], 'std': out['std'], 'n_pix': n_pix,
            'eom': eom, 'meta': meta}


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
            pos = aperture_positions(annulus)
            r_in, r_out = float(annulus.r_in), float(annulus.r_out)
            side = 2 * int(math.ceil(r_out)) + 2
            corner = np.floor(pos - r_out).astype(int)
            idx = np.arange(len(pos))
            xs = corner[:, :1] + np.arange(side)
            ys = corner[:, 1:] + np.arange(side)
            d = np.sqrt((ys - pos[:, 1:])[:, :, None] ** 2
                        + (xs - pos[:, :1])[:, None, :] ** 2)
            member = (d < r_out) & ~(d < r_in)
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
