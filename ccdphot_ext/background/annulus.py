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
`~astropy.utils.exceptions.AstropyUserWarning`) when another star's
aperture reaches into it (its pixels are left out, but the star's light
beyond its aperture is not), when fewer than `MIN_USED_FRACTION` of its
pixels are left for the statistic (those off the frame's edge counted
as lost, `whole_counts`), or when fewer than
`~ccdphot_ext.background.estimators.MIN_SKY_PIXELS` are
left or they are all equal (a scatter of 0 would give the sky no error).
A circular annulus is also doubtful when a star's light lifts it that the
apertures do not account for: when its inner half is brighter than its
outer half (`_wing_significance`: the star's own wings, or a neighbour's),
or when it holds a source (`_source_significance`: a star not among the
apertures, or a neighbour's without ``exclude``) whose light around its
core, which the clip keeps, lifts the level: measurably, or being a
star's (some pixels wide), by about a level's error whether or not that
is measurable. ``exclude`` may hold more apertures than the annuli (the
neighbours' besides the measured ones): those at the annuli's positions
are their own (`own_apertures`). An annulus holding a star the apertures
do not list is measured again without the star's pixels (`HeldStars`),
where at least `MIN_USED_FRACTION` of its pixels are left; it stays
flagged.
Its own aperture's pixels, left out, are no doubt by themselves: an
annulus from the aperture's radius outwards (the r = 3, 3-7 pixel aperture
of Spitzer/IRAC's calibration) is the standard geometry. Measured without
``exclude``, an annulus is doubtful when pixel centres of it lie inside its
own aperture (`sky_row_flags`).
"""

import math
import warnings
from functools import cached_property

import numpy as np
from astropy.stats import mad_std
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
from ..utils.inputs import power_of_two_scale
from ..utils.stats import surface_design, weighted_lstsq
from ..utils.windows import as_pixels, box_rows, whole_pixels
from .estimators import (
    ANNULUS_EXACT_MAX,
    MIN_SKY_PIXELS,
    clip_factors,
    estimator_efficiency,
    estimator_statistics,
    is_digitised,
    pedestal_test,
    poisson_level,
)
from .rowclip import blank, clip_rows, count_rows, kept_mean_std

__all__ = []  # internal module

#: Annuli whose used pixels are fewer than this fraction of their pixels
#: are flagged.
MIN_USED_FRACTION = 0.5
#: Circular annuli whose inner half (by area) is brighter than their outer
#: half by more than this many standard errors hold a star's light, and
#: are flagged (`_wing_significance`).
WING_SIGNIFICANCE = 5.0
#: Circular annuli holding a source (a pixel above `SOURCE_PEAK` std of the
#: level, its neighbours above the clip's 3 std) whose level falls by more
#: than this many standard errors when the pixels within `SOURCE_GROW`
#: pixels of it are left out are flagged (`_source_significance`).
SOURCE_SIGNIFICANCE = 3.5
SOURCE_PEAK = 5.0
SOURCE_GROW = 3.0
#: Circular annuli holding a source of at least this many pixels above
#: 3 std (its seed and its neighbours: a star's profile is some pixels
#: wide; a lone hot pixel, a cosmic ray of a pixel or two, or the skewed
#: tail of a photon-starved sky is not) are flagged whatever their lift
#: test says (`_source_significance`).
SOURCE_MIN_PIXELS = 3
#: Circular annuli none of which the wing test flags may still share a lift:
#: the faint wings of their stars, or their neighbours' faint light, each
#: below the test's reach. Their wing significances, standard normal on a
#: flat or sloping sky, then share a mean; where that mean, over the
#: annuli the wing test does not flag, differs from 0 by more than
#: `LIFT_SIGNIFICANCE` standard errors the annuli are warned about, and
#: where it is also beyond `LIFT_SIZE` (about the lift in standard errors
#: of a level) every annulus of the call is flagged (`_SharedLift`; at
#: least `LIFT_MIN_ANNULI` annuli).
LIFT_SIGNIFICANCE = 4.0
LIFT_SIZE = 0.1
LIFT_MIN_ANNULI = 10
#: The shared lift is told apart annulus by annulus (each one's lift
#: predicted from its own star's peak) where the slope of the wing
#: significances on the peaks is beyond this many of its standard errors;
#: else one lift holds for every annulus.
SLOPE_SIGNIFICANCE = 3.0
#: Annulus pixels whose statistics are formed together (a few arrays of
#: float32 and bytes), at most `CHUNK_FRACTION` of the frame's pixels.
CHUNK_PIXELS = 2 ** 21
CHUNK_FRACTION = 1 / 32
#: Annulus pixels gathered per block (a chunk is gathered block by block,
#: each block's arrays in the CPU cache).
BLOCK_PIXELS = 2 ** 16

_ANNULUS_TYPES = (CircularAnnulus, EllipticalAnnulus, RectangularAnnulus)


def _chunk_pixels(shape):
    """
    Annulus pixels whose statistics are formed together.

    Parameters
    ----------
    shape : tuple of int
        The frame's ``(ny, nx)``.

    Returns
    -------
    n : int
        `CHUNK_PIXELS`, at most `CHUNK_FRACTION` of the frame's pixels, at
        least 1024.
    """
    return max(min(CHUNK_PIXELS, int(shape[0] * shape[1] * CHUNK_FRACTION)),
               1024)


def _block_pixels(shape):
    """
    Annulus pixels gathered per block.

    Parameters
    ----------
    shape : tuple of int
        The frame's ``(ny, nx)``.

    Returns
    -------
    n : int
        `BLOCK_PIXELS`, at most a chunk's (`_chunk_pixels`).
    """
    return min(BLOCK_PIXELS, _chunk_pixels(shape))


def touched(aperture, idx, ys, xs, how='touches'):
    """
    Where some aperture positions touch (or cover) given pixels.

    Parameters
    ----------
    aperture : photutils aperture or `~ccdphot_ext.BoxAperture`
        The apertures.
    idx : `~numpy.ndarray` of int
        The positions, ``m`` of them.
    ys, xs : `~numpy.ndarray` of int
        The pixels' rows and columns, ``m`` leading rows, broadcast together
        (for example ``(m, ny, 1)`` and ``(m, 1, nx)``).
    how : {'touches', 'covers'}, optional
        ``'touches'`` (default): the aperture overlaps the pixel by a
        positive area; ``'covers'``: it holds the pixel's centre.

    Returns
    -------
    hit : `~numpy.ndarray` of bool or None
        The broadcast shape of ``ys`` and ``xs``; None for an aperture type
        without a closed form.
    """
    shape = touch_shape(aperture)  # boxes, circles, ellipses, annuli
    if shape is None:
        return None
    pos = aperture_positions(aperture)[idx]
    return getattr(shape, how)(pos[:, 0], pos[:, 1], ys, xs)


def exclusion_map(exclude, shape):
    """
    The pixels any aperture of ``exclude`` touches.

    Parameters
    ----------
    exclude : aperture or list of apertures
        The apertures (a closed form where there is one, else photutils'
        exact masks).
    shape : tuple of int
        The frame's ``(ny, nx)``.

    Returns
    -------
    excluded : `~numpy.ndarray` of bool
        A map of ``shape``.
    """
    out = np.zeros(shape, dtype=bool)
    for ap in aperture_list(exclude):
        pos = aperture_positions(ap)
        half = _extent(ap, 'half_extent')
        if half is None:
            _paint_masks(out, ap)
            continue
        side = 2 * int(math.ceil(half)) + 2
        corner = whole_pixels(np.floor(pos - half))
        per_chunk = max(1, _block_pixels(shape) // (side * side))
        order = np.lexsort((corner[:, 0], corner[:, 1]))  # row by row
        flat = out.ravel()
        stencil = np.arange(side)[:, None] * shape[1] + np.arange(side)
        for s in range(0, len(pos), per_chunk):
            idx = order[s:s + per_chunk]
            xs = corner[idx, :1] + np.arange(side)
            ys = corner[idx, 1:] + np.arange(side)
            hit = touched(ap, idx, ys[:, :, None], xs[:, None, :])
            hit &= _inside(ys, shape[0])[:, :, None]
            hit &= _inside(xs, shape[1])[:, None, :]
            first = ys[:, 0] * shape[1] + xs[:, 0]
            flat[(first[:, None, None] + stencil)[hit]] = True
    return out


def _extent(aperture, name):
    """
    How far an aperture's pixels reach from its position.

    Parameters
    ----------
    aperture : photutils aperture or `~ccdphot_ext.BoxAperture`
        The aperture.
    name : {'half_extent', 'reach'}
        ``'half_extent'``: half the side of a square about a position that
        holds every pixel the aperture touches; ``'reach'``: the largest
        distance from a position to the centre of a pixel it touches.

    Returns
    -------
    extent : float or None
        Pixels; None for an aperture type without a closed form.
    """
    shape = touch_shape(aperture)
    return None if shape is None else getattr(shape, name)


def _paint_masks(out, aperture):
    """
    Mark the pixels an aperture without a closed form touches, with
    photutils' exact masks, one position at a time.

    Parameters
    ----------
    out : `~numpy.ndarray` of bool
        The map to mark (in place).
    aperture : photutils aperture
        The aperture.
    """
    masks = aperture.to_mask(method='exact')
    for amask in masks if isinstance(masks, list) else [masks]:
        large, small = amask.get_overlap_slices(out.shape)
        if large is not None:
            out[large] |= amask.data[small] > 0


def _inside(index, n):
    """
    Whether indices lie on an axis of ``n`` pixels.

    Parameters
    ----------
    index : `~numpy.ndarray` of int
        The indices.
    n : int
        The axis' length.

    Returns
    -------
    inside : `~numpy.ndarray` of bool
    """
    return (index >= 0) & (index < n)


def annulus_pixels(frame, annulus, excluded, own):
    """
    The pixels of the annuli, a chunk of positions at a time.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    annulus : photutils annulus
        The annuli (circular ones through `Ring`, the others through
        photutils' ``'center'`` masks).
    excluded : `~numpy.ndarray` of bool or None
        The pixels left out (`exclusion_map`).
    own : list of tuple or None
        Each annulus' own aperture (`own_apertures`).

    Yields
    ------
    idx : `~numpy.ndarray` of int
        The chunk's positions.
    rows : `~numpy.ndarray`
        The pixels of each annulus as a row.
    good : `~numpy.ndarray` of bool
        Which of them are usable.
    sigmas : `~numpy.ndarray` or None
        Their sigmas (float64; None without an uncertainty map).
    counts : dict of `~numpy.ndarray`
        Per position: ``n_total``, ``n_bad``, ``n_apertures``, ``n_own``
        (pixels its own aperture touches) and ``n_own_usable`` (those of
        them finite and unmasked); for circular annuli also ``inner`` (the
        pixels of the inner half by area) and the ``ring``.

    Raises
    ------
    ValueError
        If a position is too far off the frame for photutils' mask.
    """
    if isinstance(annulus, CircularAnnulus):
        yield from _circular_chunks(frame, annulus, excluded, own)
        return
    try:
        masks = annulus.to_mask(method='center')
    except ZeroDivisionError:  # photutils' overlap of a position at 1e30
        far = float(np.max(np.abs(aperture_positions(annulus))))
        raise ValueError(f'annulus: a position {far:.3g} pixels away is '
                         'too far for its mask (photutils divides by zero); '
                         'leave out positions so far off the frame') from None
    masks = masks if isinstance(masks, list) else [masks]
    per_chunk = max(1, _chunk_pixels(frame.shape)
                    // max(masks[0].data.size, 1))
    for s in range(0, len(masks), per_chunk):
        idx = np.arange(s, min(s + per_chunk, len(masks)))
        parts = [_mask_pixels(frame, masks[i], excluded) for i in idx]
        counts = {key: np.array([p[2][key] for p in parts])
                  for key in ('n_total', 'n_bad', 'n_apertures')}
        counts['n_own'], counts['n_own_usable'] = _own_overlap(
            own, idx, masks, [p[3] for p in parts])
        sig = (None if frame.uncertainty is None
               else _pad([p[1] for p in parts]))
        rows = _pad([p[0] for p in parts])
        yield idx, rows, np.isfinite(rows), sig, counts


def _mask_pixels(frame, amask, excluded):
    """
    The usable pixels of one annulus mask.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    amask : `~photutils.aperture.ApertureMask`
        The annulus' ``'center'`` mask.
    excluded : `~numpy.ndarray` of bool or None
        The pixels left out.

    Returns
    -------
    values : `~numpy.ndarray`
        The usable pixels (float64).
    sigmas : `~numpy.ndarray`
        Theirs (empty without an uncertainty map).
    counts : dict
        ``n_total``, ``n_bad`` and ``n_apertures``.
    usable : `~numpy.ndarray` of bool
        The usable pixels before ``excluded``, as a map of the mask's box.
    """
    usable = np.zeros(amask.data.shape, dtype=bool)
    large, small = amask.get_overlap_slices(frame.shape)
    if large is None:
        zero = {'n_total': 0, 'n_bad': 0, 'n_apertures': 0}
        return np.empty(0), np.empty(0), zero, usable
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
    usable[small][inside] = good
    n_ap = 0
    if excluded is not None:
        hit = excluded[large][inside] & good
        n_ap = int(np.count_nonzero(hit))
        good &= ~hit
    return (vals[good], unc[good] if unc.size else unc,
            {'n_total': int(vals.size), 'n_bad': n_bad, 'n_apertures': n_ap},
            usable)


def _own_overlap(own, idx, masks, usable=None, how='touches'):
    """
    The pixels of some annuli that their own aperture touches (or covers).

    Parameters
    ----------
    own : list of tuple or None
        Each annulus' own aperture (`own_apertures`).
    idx : `~numpy.ndarray` of int
        The annuli.
    masks : list of `~photutils.aperture.ApertureMask`
        Their ``'center'`` masks (indexed by annulus).
    usable : list of `~numpy.ndarray`, optional
        Maps of the masks' boxes: also count those of the pixels usable.
    how : {'touches', 'covers'}, optional
        As for `touched` (default ``'touches'``).

    Returns
    -------
    counts : `~numpy.ndarray` of int or list of two
        Per annulus; with ``usable``, the counts of all and of the usable
        pixels.
    """
    kinds = [None] if usable is None else [None, usable]
    out = [np.zeros(len(idx), dtype=int) for _ in kinds]
    for k, i in enumerate(idx.tolist()):
        bbox = masks[i].bbox
        ys = np.arange(bbox.iymin, bbox.iymax)[None, :, None]
        xs = np.arange(bbox.ixmin, bbox.ixmax)[None, None, :]
        member = masks[i].data[None] > 0
        hits = _own_hits(own, np.array([i]), lambda ys=ys, xs=xs: (ys, xs),
                         [member if m is None else member & m[k][None]
                          for m in kinds], how=how)
        for count, hit in zip(out, hits, strict=True):
            count[k] = hit[0]
    return out if usable is not None else out[0]


def _out_of_reach(aperture, ap_idx, ring, sel):
    """
    Whether no aperture can touch a pixel of its ring.

    Parameters
    ----------
    aperture : photutils aperture or `~ccdphot_ext.BoxAperture`
        The apertures.
    ap_idx : `~numpy.ndarray` of int
        Their positions.
    ring : tuple or None
        ``(centres, r_min)``: the annuli's centres and their inner radius
        (None: not known, so not out of reach).
    sel : `~numpy.ndarray` of int
        The annuli's rows in ``centres``.

    Returns
    -------
    out : bool
    """
    reach = _extent(aperture, 'reach')
    if ring is None or reach is None:
        return False
    centres, r_min = ring
    shift = np.hypot(*(aperture_positions(aperture)[ap_idx]
                       - centres[sel]).T)
    return bool(np.all(reach + shift < r_min))


def _own_hits(own, idx, pixels, members, ring=None, how='touches'):
    """
    Count the pixels of some annuli that their own aperture touches (or
    covers).

    Parameters
    ----------
    own, idx
        As for `_own_overlap`.
    pixels : callable
        ``pixels()``: the rows and columns ``ys``, ``xs`` of their pixels (as
        for `touched`), made only when an aperture can reach them.
    members : list of `~numpy.ndarray` of bool
        The pixel sets to count in.
    ring : tuple, optional
        ``(centres, r_min)``: the members lie at least ``r_min`` from the
        annuli's ``centres``, and apertures that cannot reach so far are
        skipped.
    how : {'touches', 'covers'}, optional
        As for `touched` (default ``'touches'``).

    Returns
    -------
    counts : list of `~numpy.ndarray` of int
        One per pixel set, per annulus (0 where the aperture has no closed
        form).
    """
    out = [np.zeros(len(idx), dtype=int) for _ in members]
    ys = xs = None
    for ap, start in own or ():
        sel = np.flatnonzero((idx >= start)
                             & (idx < start + n_positions(ap)))
        if sel.size == 0 or _out_of_reach(ap, idx[sel] - start, ring, sel):
            continue
        if ys is None:
            ys, xs = pixels()
        hit = touched(ap, idx[sel] - start, ys[sel], xs[sel], how)
        if hit is not None:
            for count, member in zip(out, members, strict=True):
                count[sel] = (hit & member[sel]).reshape(sel.size,
                                                         -1).sum(axis=1)
    return out


class Ring:
    """
    The candidate pixels of circular annuli ``r_in``-``r_out``: the offsets
    ``(oy, ox)`` from ``floor(position)`` that can hold the centre of an
    annulus pixel for some position in that pixel (the union over
    sub-pixel positions), about ``pi ((r_out + 1)**2 - (r_in - 1)**2)``
    pixels instead of the square's ``(2 r_out + 2)**2``. Those that are
    members for every sub-pixel position come first; only the others are
    computed for each position.

    Parameters
    ----------
    r_in, r_out : float
        The annuli's radii (pixels).
    """

    def __init__(self, r_in, r_out):
        self.r_in, self.r_out = float(r_in), float(r_out)
        self.reach = reach = int(math.ceil(self.r_out)) + 1
        o = np.arange(-reach, reach + 1)
        # the offset of a pixel centre from the position is o - f, f in
        # [0, 1): its smallest and largest distance over f
        near = np.where(o >= 1, o - 1, np.where(o <= 0, -o, 0)).astype(float)
        far = np.maximum(np.abs(o), np.abs(o - 1)).astype(float)
        d_min = np.hypot(near[:, None], near[None, :])
        d_max = np.hypot(far[:, None], far[None, :])
        candidate = (d_min < self.r_out + 1e-9) & (d_max >= self.r_in - 1e-9)
        sure = (d_max < self.r_out - 1e-9) & (d_min >= self.r_in + 1e-9)
        oy, ox = np.nonzero(candidate)
        first = np.argsort(~sure[oy, ox], kind='stable')  # sure ones first
        self.oy, self.ox = o[oy[first]], o[ox[first]]
        self.n_sure = int(np.count_nonzero(sure))
        self.side = 2 * reach + 1
        #: the candidates' places in the ``side`` x ``side`` window whose
        #: corner is ``floor(position) - reach``
        self.columns = (self.oy + reach) * self.side + (self.ox + reach)

    @property
    def size(self):
        """Candidate pixels per annulus."""
        return self.oy.size

    @cached_property
    def neighbourhoods(self):
        """Sparse ``(size, size)`` matrices of the candidates that are a
        candidate's 8 neighbours or itself, and those within `SOURCE_GROW`
        pixels of it."""
        return self._within(2), self._within(SOURCE_GROW ** 2)

    def _within(self, d2):
        """
        Which candidates lie near each other.

        Found through the window's places, one offset at a time (no ``size`` x
        ``size`` array: an annulus of 50 pixels has 8,000 candidates).

        Parameters
        ----------
        d2 : float
            The squared distance (pixels**2).

        Returns
        -------
        near : `scipy.sparse.csr_matrix`
            ``(size, size)``, 1 where two candidates lie within ``sqrt(d2)``
            pixels.
        """
        from scipy.sparse import csr_matrix

        k, side, reach = self.size, self.side, self.reach
        place = np.full(side * side, -1)
        place[self.columns] = np.arange(k)
        r = math.isqrt(int(d2))
        rows, cols = [], []
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if dy * dy + dx * dx > d2:
                    continue
                ty, tx = self.oy + reach + dy, self.ox + reach + dx
                inside = (ty >= 0) & (ty < side) & (tx >= 0) & (tx < side)
                other = np.full(k, -1)
                other[inside] = place[ty[inside] * side + tx[inside]]
                hit = np.flatnonzero(other >= 0)
                rows.append(hit)
                cols.append(other[hit])
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        return csr_matrix((np.ones(rows.size, dtype=np.float32),
                           (rows, cols)), shape=(k, k))

    def members(self, pos):
        """
        Which candidates are annulus pixels.

        Parameters
        ----------
        pos : `~numpy.ndarray`
            ``(m, 2)`` positions, x and y.

        Returns
        -------
        members : `~numpy.ndarray` of bool
            ``(m, size)``: True where a candidate's centre lies at ``r_in <= d <
            r_out`` from the position.
        """
        frac = pos - np.floor(pos)
        out = np.empty((len(pos), self.size), dtype=bool)
        out[:, :self.n_sure] = True
        oy, ox = self.oy[self.n_sure:], self.ox[self.n_sure:]
        d = np.sqrt((oy - frac[:, 1:]) ** 2 + (ox - frac[:, :1]) ** 2)
        out[:, self.n_sure:] = (d < self.r_out) & ~(d < self.r_in)
        return out

    def inner(self, pos):
        """
        Which candidates lie in the annulus' inner half by area.

        Parameters
        ----------
        pos : `~numpy.ndarray`
            ``(m, 2)`` positions, x and y.

        Returns
        -------
        inner : `~numpy.ndarray` of bool
            ``(m, size)``: True where a candidate's centre lies nearer than the
            radius that halves the annulus' area, ``sqrt((r_in**2 + r_out**2) /
            2)``.
        """
        frac = (pos - np.floor(pos)).astype(np.float32)
        r_mid2 = 0.5 * (self.r_in ** 2 + self.r_out ** 2)
        dy = self.oy.astype(np.float32) - frac[:, 1:]
        dx = self.ox.astype(np.float32) - frac[:, :1]
        dy *= dy
        dx *= dx
        dy += dx
        return dy < r_mid2

    def pixels(self, pos):
        """
        The frame pixels of the candidates.

        Parameters
        ----------
        pos : `~numpy.ndarray`
            ``(m, 2)`` positions, x and y.

        Returns
        -------
        ys, xs : `~numpy.ndarray` of int64
            ``(m, size)`` rows and columns.
        """
        base = whole_pixels(np.floor(pos), np.int64)
        return base[:, 1:] + self.oy, base[:, :1] + self.ox


def _circular_chunks(frame, annulus, excluded, own):
    """
    The pixels of circular annuli, a chunk at a time, as `annulus_pixels`.

    The candidate pixels around each centre (see `Ring`) are gathered for a
    chunk of annuli at a time, row by row of the frame; whole windows of a
    C-contiguous frame a window row at a time (`box_rows`).

    Parameters
    ----------
    frame, excluded, own
        As for `annulus_pixels`.
    annulus : `~photutils.aperture.CircularAnnulus`
        The annuli.

    Yields
    ------
    idx, rows, good, sigmas, counts
        As `annulus_pixels`, with ``inner`` and ``ring`` in ``counts``.
    """
    ny, nx = frame.shape
    ring = Ring(annulus.r_in, annulus.r_out)
    pos_all = aperture_positions(annulus)
    base = whole_pixels(np.floor(pos_all), np.int64)
    reach, side = ring.reach, ring.side
    whole = ((base[:, 0] >= reach) & (base[:, 0] < nx - reach)
             & (base[:, 1] >= reach) & (base[:, 1] < ny - reach))
    views = _Windows(frame, excluded, side) if frame.data.flags.c_contiguous \
        else None
    per_chunk = max(1, _chunk_pixels(frame.shape) // ring.size)
    per_block = max(1, min(_block_pixels(frame.shape) // ring.size,
                           per_chunk))
    # row by row: a chunk's pixels then lie in a few bands of the frame,
    # which stay in the cache while they are gathered; whole windows and
    # the others (near the edges) in chunks of their own
    for windows, select in ((views is not None, whole), (False, ~whole)):
        order = np.flatnonzero(select)
        order = order[np.lexsort((base[order, 0], base[order, 1]))]
        for s in range(0, order.size, per_chunk):
            idx = order[s:s + per_chunk]
            pos = pos_all[idx]
            out = _ChunkArrays(frame, idx.size, ring.size)
            for b in range(0, idx.size, per_block):
                rows = slice(b, b + per_block)
                member = out.member[rows]
                member[...] = ring.members(pos[rows])
                out.inner[rows] = ring.inner(pos[rows])
                if windows:
                    take = views.taker(base[idx[rows]] - reach, ring.columns)
                else:
                    ys, xs = ring.pixels(pos[rows])
                    member &= _inside(ys, ny) & _inside(xs, nx)
                    take = _clipped_taker(ys, xs, frame.shape)
                    del ys, xs
                out.fill(rows, frame, excluded, take)
            del take  # its indices and windows, before the statistics
            out.counts['n_own'], out.counts['n_own_usable'] = _own_hits(
                own, idx, lambda pos=pos: ring.pixels(pos),
                [out.member, out.usable], (pos, ring.r_in))
            out.counts['inner'] = out.inner
            out.counts['usable'] = out.usable
            out.counts['ring'] = ring
            yield idx, out.values, out.good, out.sigmas, out.counts


class _ChunkArrays:
    """
    The candidate pixels of a chunk of annuli, filled block by block:
    ``values`` (the frame's dtype), ``member``, ``usable`` (finite,
    unmasked members), ``good`` (usable and not excluded), ``sigmas``
    (float64, or None) and the counts of `annulus_pixels`.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame (its dtype, and whether it has an uncertainty map).
    m : int
        The chunk's annuli.
    k : int
        Candidate pixels per annulus.
    """

    def __init__(self, frame, m, k):
        self.values = np.empty((m, k), dtype=frame.data.dtype)
        self.member = np.empty((m, k), dtype=bool)
        self.good = np.empty((m, k), dtype=bool)
        self.usable = np.empty((m, k), dtype=bool)
        self.sigmas = (None if frame.uncertainty is None
                       else np.empty((m, k)))
        self.counts = {key: np.zeros(m, dtype=int)
                       for key in ('n_total', 'n_bad', 'n_apertures')}
        self.inner = np.empty((m, k), dtype=bool)

    def fill(self, rows, frame, excluded, take):
        """
        Gather one block of annuli and count its pixels.

        Parameters
        ----------
        rows : slice
            The block's rows of the chunk.
        frame : `~ccdphot_ext.utils.inputs.Frame`
            The frame.
        excluded : `~numpy.ndarray` of bool or None
            The pixels left out.
        take : callable
            ``take(array)``: the block's candidate pixels of an array of the
            frame's shape.
        """
        vals, good = self.values[rows], self.good[rows]
        member = self.member[rows]
        vals[...] = take(frame.data)
        np.isfinite(vals, out=good)
        good &= member
        if frame.mask is not None:
            good &= ~take(frame.mask)
        if self.sigmas is not None:
            sig = self.sigmas[rows]
            sig[...] = take(frame.uncertainty)
            good &= np.isfinite(sig)
        n_total = count_rows(member)
        n_good = count_rows(good)
        self.usable[rows] = good
        counts = self.counts
        counts['n_total'][rows] = n_total
        counts['n_bad'][rows] = n_total - n_good
        if excluded is not None:
            good &= ~take(excluded)
            counts['n_apertures'][rows] = n_good - count_rows(good)


class _Windows:
    """
    Square windows of the frame (and of the exclusion map) gathered a
    window row at a time.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame: its data, mask and uncertainty.
    excluded : `~numpy.ndarray` of bool or None
        The exclusion map.
    side : int
        The windows' side.
    """

    def __init__(self, frame, excluded, side):
        self.side = side
        self.arrays = {}
        for array in (frame.data, frame.mask, frame.uncertainty, excluded):
            if array is not None and array.flags.c_contiguous:
                self.arrays[id(array)] = box_rows(array, side, side)

    def taker(self, corners, columns):
        """
        A function gathering some pixels of some windows.

        Parameters
        ----------
        corners : `~numpy.ndarray` of int
            ``(m, 2)``: the windows' corners, x and y.
        columns : `~numpy.ndarray` of int
            The pixels' places in a window (flat).

        Returns
        -------
        take : callable
            ``take(array)``: ``(m, len(columns))`` values of an array of the
            frame.
        """
        ys, xs = corners[:, 1], corners[:, 0]
        side = self.side

        def take(a):
            view = self.arrays.get(id(a))
            if view is None:
                oy, ox = np.divmod(columns, side)
                return a[ys[:, None] + oy, xs[:, None] + ox]
            # take keeps the rows C-contiguous (a[:, columns] would not)
            return np.take(as_pixels(view[ys, xs], a.dtype), columns, axis=1)
        return take


def _clipped_taker(ys, xs, shape):
    """
    A function gathering an array at given pixels, clipped to the frame
    (the caller masks those off it).

    Parameters
    ----------
    ys, xs : `~numpy.ndarray` of int
        The pixels' rows and columns.
    shape : tuple of int
        The frame's ``(ny, nx)``.

    Returns
    -------
    take : callable
        ``take(array)``: the values of an array of ``shape`` there.
    """
    ny, nx = shape
    flat = np.clip(ys, 0, ny - 1) * nx
    flat += np.clip(xs, 0, nx - 1)

    def take(a):
        if a.flags.c_contiguous:
            return a.ravel()[flat]
        return a[np.divmod(flat, nx)]
    return take


def _pad(arrays):
    """
    Stack 1-D arrays into rows, padded with NaN.

    Parameters
    ----------
    arrays : list of `~numpy.ndarray`
        The rows.

    Returns
    -------
    rows : `~numpy.ndarray`
        ``(len(arrays), width)``, ``width`` the longest's (at least 1).
    """
    width = max(max((a.size for a in arrays), default=0), 1)
    out = np.full((len(arrays), width), np.nan)
    for row, a in zip(out, arrays, strict=True):
        row[:a.size] = a
    return out


class RowStatistics:
    """
    The statistics of each row of a chunk: ``level``, ``std`` (corrected
    for the clipping), ``n_pix`` (pixels kept) and ``n_clipped``, and
    `keep` for the kept pixels.

    Parameters
    ----------
    level, std, n_pix, n_clipped : `~numpy.ndarray`
        Per row.
    keep : callable
        ``keep()``: the ``(m, k)`` kept pixels, made when asked for.
    """

    def __init__(self, level, std, n_pix, n_clipped, keep):
        self.level, self.std = level, std
        self.n_pix, self.n_clipped = n_pix, n_clipped
        self._keep = keep

    @property
    def keep(self):
        """``(m, k)`` True for the kept pixels."""
        return self._keep()


def summarise_rows(values, good, method, sigma, maxiters):
    """
    The statistics of the good pixels of each row.

    Parameters
    ----------
    values : `~numpy.ndarray`
        ``(m, k)`` rows (float32 or float64; any values where not ``good``;
        overwritten).
    good : `~numpy.ndarray` of bool
        The pixels to use.
    method : {'sigma_clip', 'mean', 'median'}
        The estimator (:ref:`sky-estimators`).
    sigma : float
        The clip's limit in standard deviations.
    maxiters : int or None
        The clip's most iterations.

    Returns
    -------
    stats : `RowStatistics`
        A row without a good pixel gets a NaN level and std.
    """
    rows = np.ascontiguousarray(values)
    blank(rows, ~good)
    n_good = count_rows(good)
    # values so small that the squares of their scatter underflow: their
    # statistics on the values divided by a power of two, scaled back
    scale = power_of_two_scale(rows, high=math.inf)
    if scale != 1.0:
        rows = rows / scale
    if method == 'sigma_clip':
        # sorted in the frame's precision (the same values), NaN last
        clip = clip_rows(rows, sigma, maxiters,
                         ordered=np.sort(rows, axis=1), n=n_good)
        return RowStatistics(clip.level * scale,
                             clip.std * clip_factors(sigma)[0] * scale,
                             clip.n_kept, n_good - clip.n_kept,
                             lambda: clip.keep(rows))
    rows = rows.astype(np.float64, copy=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN rows
        if method == 'mean':
            level, std = kept_mean_std(rows, good)
        else:  # robust, as the level: 1.4826 * median absolute deviation
            level = np.nanmedian(rows, axis=1)
            std = mad_std(rows, axis=1, ignore_nan=True)
    return RowStatistics(level * scale, std * scale, n_good,
                         np.zeros(len(rows), dtype=int), lambda: good)


def row_statistics(rows, method, sigma, maxiters):
    """
    The statistics of each NaN-padded row.

    Parameters
    ----------
    rows : `~numpy.ndarray`
        ``(m, k)`` rows, NaN where no pixel (overwritten).
    method, sigma, maxiters
        As for `summarise_rows`.

    Returns
    -------
    level, std : `~numpy.ndarray`
        Per row.
    keep : `~numpy.ndarray` of bool
        ``(m, k)``: the kept pixels.
    n_clipped : `~numpy.ndarray` of int
        Per row.
    """
    stats = summarise_rows(rows, np.isfinite(rows), method, sigma, maxiters)
    return stats.level, stats.std, stats.keep, stats.n_clipped


def own_apertures(exclude, n, centres=None):
    """
    Each annulus' own aperture, when the positions of ``exclude`` are the
    annuli's own, in order, or (given the annuli's ``centres``) hold them
    in a row among others (the neighbours').

    Parameters
    ----------
    exclude : aperture or list of apertures
        The apertures left out of the annuli.
    n : int
        The number of annuli.
    centres : array_like, optional
        ``(n, 2)``: the annuli's positions. With them, ``exclude`` may
        hold more positions than ``n``: where ``n`` of them in a row are
        the centres, those are the annuli's own (an aperture's positions
        before and after them are no annulus' own: their rows fall
        outside ``0 ... n - 1``). None (default): only ``n`` positions.

    Returns
    -------
    own : list of tuple or None
        ``[(aperture, first row), ...]``; None when ``exclude`` has
        neither ``n`` positions nor, with ``centres``, the centres in a
        row.
    """
    groups = aperture_list(exclude)
    own, start = [], 0
    for ap in groups:
        own.append((ap, start))
        start += n_positions(ap)
    if start == n:
        return own
    if centres is None or start < n or n == 0:
        return None
    pos = np.concatenate([aperture_positions(ap) for ap in groups])
    centres = np.asarray(centres, dtype=float)
    scale = 1e-9 * max(1.0, float(np.max(np.abs(centres))))
    for first in np.flatnonzero(np.all(np.abs(pos - centres[0]) <= scale,
                                       axis=1)):
        run = pos[first:first + n]
        if len(run) == n and np.all(np.abs(run - centres) <= scale):
            return [(ap, begin - int(first)) for ap, begin in own]
    return None


def _poisson_rows(values, good, keep, level, gain, method, sigma, std,
                  offset=0.0):
    """
    The level, std and error of the level of each row under the exact
    model of a Poisson sky (`poisson_level`).

    Rows of up to `ANNULUS_EXACT_MAX` electrons a pixel above the pedestal
    are solved.

    Parameters
    ----------
    values : `~numpy.ndarray`
        ``(m, k)`` rows of pixels.
    good : `~numpy.ndarray` of bool
        The usable pixels.
    keep : `~numpy.ndarray` of bool
        The pixels the estimator kept.
    level : `~numpy.ndarray`
        The rows' levels as estimated.
    gain : float
        Electrons per data unit.
    method : {'sigma_clip', 'mean', 'median'}
        The estimator.
    sigma : float
        The clip's limit.
    std : `~numpy.ndarray`
        The rows' standard deviations as estimated.
    offset : float, optional
        The pedestal under the photons (data unit; default 0).

    Returns
    -------
    solved : `~numpy.ndarray`
        ``(3, m)``: level, std and error of the level; NaN where not solved.
    """
    out = np.full((3, len(values)), np.nan)
    for i, row in enumerate(values):
        if not 0.0 < (level[i] - offset) * gain <= ANNULUS_EXACT_MAX:
            continue
        pixels = row[good[i]].astype(np.float64)
        kept = keep[i][good[i]]
        sol = poisson_level(estimator_statistics(pixels, kept, method,
                                                 sigma),
                            gain, level[i], std[i], offset=offset)
        if sol is not None:
            out[:, i] = sol['level'], sol['std'], sol['error_on_mean']
    return out


#: The most pixels the annuli pool to test for a pedestal
#: (`annulus_pedestal`): beyond them, every so many annuli.
POOL_PIXELS = 2 ** 18


def annulus_pedestal(frame, annulus, excluded, level, *, method, sigma,
                     maxiters, gain):
    """
    The pedestal the annuli share (a sky-subtracted frame: the constant
    subtracted is every annulus'), from their pooled pixels.

    One annulus' third moment is far too noisy to tell its photons; the
    pedestal, common to all, is told by all together. The usable pixels
    of the annuli (each frame pixel once, from the first annulus that
    holds it; every so many annuli beyond `POOL_PIXELS`), each less its
    own annulus' ``level`` plus the mean level (in whole data units for
    whole-number pixels), are one sky of that mean level: the estimator
    measures it as a whole frame, and `pedestal_test` weighs its third
    moment as `SkyEstimate.from_image` does.

    Parameters
    ----------
    frame, annulus, excluded
        As for `annulus_pixels`.
    level : `~numpy.ndarray`
        The annuli's levels.
    method, sigma, maxiters
        The estimator, as for `summarise_rows`.
    gain : float
        Electrons per data unit.

    Returns
    -------
    significance : float
        ``z`` of `~ccdphot_ext.background.estimators.pedestal_evidence`
        (NaN where not measured).
    offset : float or None
        The pedestal (data unit) where it is shown and solved, else None.
    """
    finite = np.flatnonzero(np.isfinite(level))
    if finite.size == 0:
        return math.nan, None
    # pixels an annulus holds, from the first: every so many annuli
    per = int(np.count_nonzero(_center_masks(annulus, finite[:1])[0].data))
    chosen = finite[::max(math.ceil(per * finite.size / POOL_PIXELS), 1)]
    masks = _center_masks(annulus, chosen)
    claimed = np.zeros(frame.shape, dtype=bool)
    usable = np.isfinite(frame.data)
    for other in (frame.mask, excluded):
        if other is not None:
            usable &= ~other
    if frame.uncertainty is not None:
        usable &= np.isfinite(frame.uncertainty)
    parts, shifts = [], []
    for i, amask in zip(chosen, masks, strict=True):
        large, small = amask.get_overlap_slices(frame.shape)
        if large is None:
            continue
        take = (amask.data[small] > 0) & usable[large] & ~claimed[large]
        claimed[large] |= take
        parts.append(frame.data[large][take])
        shifts.append(np.full(parts[-1].size, level[i]))
    pixels = np.concatenate(parts) if parts else np.empty(0)
    if pixels.size < MIN_SKY_PIXELS:
        return math.nan, None
    shift = np.concatenate(shifts)
    mean_level = float(np.mean(level[finite]))
    whole = is_digitised(pixels)
    if whole:  # whole values stay whole
        shift, mean_level = np.round(shift), round(mean_level)
    pooled = pixels.astype(np.float64) - shift + mean_level
    stats = summarise_rows(pooled[None, :].copy(),
                           np.ones((1, pooled.size), bool), method, sigma,
                           maxiters)
    kept = stats.keep[0]
    estimator = estimator_statistics(pooled, kept, method, sigma)
    pooled_level, pooled_std = float(stats.level[0]), float(stats.std[0])
    solution = poisson_level(estimator, gain, pooled_level, pooled_std)
    z, ped = pedestal_test(estimator, gain, solution, pooled_level,
                           pooled_std)
    return z, (None if ped is None else ped['offset'])


def _center_masks(annulus, idx):
    """
    photutils' ``'center'`` masks of some annuli.

    Parameters
    ----------
    annulus : photutils annulus
        The annuli.
    idx : `~numpy.ndarray` of int
        Which.

    Returns
    -------
    masks : list of `~photutils.aperture.ApertureMask`
        A list, also for one position.
    """
    chosen = annulus if annulus.isscalar else annulus[idx]
    masks = chosen.to_mask(method='center')
    return masks if isinstance(masks, list) else [masks]


def annulus_statistics(frame, annulus, exclude, *, method, sigma, maxiters,
                       gain=None, noise_factor=1.0):
    """
    The sky of every annulus, with its doubts.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    annulus : photutils annulus
        The annuli.
    exclude : aperture, list of apertures or None
        The apertures whose pixels are left out of every annulus.
    method, sigma, maxiters
        The estimator, as for `summarise_rows`.
    gain : float, optional
        Electrons per data unit (validated); with it the photon-starved
        annuli are also solved under the exact model of a Poisson sky.
    noise_factor : float, optional
        How much more than white noise the mean of many pixels scatters
        (correlated noise), which the tests of a star's light in the annuli
        (`_wing_significance`, `_source_significance`) divide their standard
        errors' squares by (default 1).

    Returns
    -------
    stats : dict
        ``level``, ``std``, ``n_pix`` (per annulus), ``propagated`` (the
        level's error from the uncertainty map, or None), ``meta`` (the
        counts, the tests' significances and ``flags``), ``poisson``
        (``(3, n)``: the level, std and error of the level of the
        photon-starved annuli under the exact model of a Poisson sky,
        `_poisson_rows`, NaN for the others; None without a gain) and
        ``pedestal`` (the significance and the offset of a pedestal the
        annuli share, `annulus_pedestal`, or None).

    Raises
    ------
    ValueError
        If no annulus holds a usable pixel.
    """
    from ..flags import FLAG_SKY_ANNULUS
    n = n_positions(annulus)
    excluded = None if exclude is None else exclusion_map(exclude,
                                                          frame.shape)
    own = None if exclude is None else own_apertures(
        exclude, n, aperture_positions(annulus))
    out = {name: np.zeros(n) for name in ('level', 'std', 'n_pix', 'var')}
    exact = gain is not None and method != 'mean'
    counts = {name: np.zeros(n, dtype=int) for name in
              ('n_total', 'n_bad', 'n_apertures', 'n_own', 'n_own_usable',
               'n_clipped')}
    wings = np.full(n, np.nan)
    sources = np.full(n, np.nan)
    held = np.zeros(n, dtype=bool)
    # the annuli to measure again without the stars they hold
    stars = HeldStars()
    for idx, values, good, sigmas, part in annulus_pixels(
            frame, annulus, excluded, own):
        inner = part.pop('inner', None)
        usable = part.pop('usable', None)
        ring = part.pop('ring', None)
        stats = summarise_rows(values, good, method, sigma, maxiters)
        if inner is not None:
            wings[idx] = _wing_significance(values, good, stats, inner)
            sources[idx], held[idx], star = _source_significance(
                values, good, stats, ring, method,
                aperture_positions(annulus)[idx], usable, noise_factor)
            stars.add(ring, idx, values, good, sigmas, stats, star,
                      part['n_total'])
        out['level'][idx], out['std'][idx] = stats.level, stats.std
        out['n_pix'][idx] = stats.n_pix
        if sigmas is not None:
            out['var'][idx] = np.sum(np.where(stats.keep, sigmas, 0.0) ** 2,
                                     axis=1)
        for key, value in part.items():
            counts[key][idx] = value
        counts['n_clipped'][idx] = stats.n_clipped
    cleaned, radius = _clean(stars, out, counts, n, method=method,
                             sigma=sigma, maxiters=maxiters)
    n_pix = out['n_pix'].astype(int)
    if not n_pix.any():
        covered = exclude is not None and bool(counts['n_apertures'].any())
        raise ValueError('no sky annulus holds a finite, unmasked pixel to '
                         'estimate the sky from' + (
                             '' if exclude is None
                             else ' outside the excluded apertures') + (
                             ': the pixels the apertures touch cover the '
                             'annuli (give a larger r_out)' if covered
                             else ''))
    whole = whole_counts(annulus, frame.shape, counts['n_total'])
    used = np.where(whole > 0, n_pix / np.maximum(whole, 1), 0.0)
    # pixels of the other apertures (their own aperture's are not a doubt:
    # left out, as photutils' standard annulus at the aperture's radius)
    neighbours = (counts['n_apertures'] - counts['n_own_usable']
                  if own is not None else np.zeros(n, dtype=int))
    degenerate = (n_pix > 0) & ((n_pix < MIN_SKY_PIXELS) | (out['std'] == 0))
    few = (used < MIN_USED_FRACTION) | (n_pix == 0)
    # (the wing significances less the surface's, in place)
    surface = _frame_surface(frame, annulus, excluded, out, n_pix,
                             ~((neighbours > 0) | few | degenerate),
                             method, sigma, noise_factor, wings)
    # correlated noise makes the means the tests compare scatter more
    wings /= math.sqrt(noise_factor)
    sources /= math.sqrt(noise_factor)
    with np.errstate(invalid='ignore'):
        lit = wings > WING_SIGNIFICANCE
        # (a neighbour whose aperture reaches in is flagged as that)
        holds = (held | (sources > SOURCE_SIGNIFICANCE)) & ~(neighbours > 0)
    doubtful = (neighbours > 0) | few | degenerate | lit | holds
    # (the annuli a source or a neighbour's aperture is in are lifted by
    # its light besides: they share that of fainter ones too)
    lift = _SharedLift(wings, ~(few | degenerate | lit), ~(few | degenerate),
                       _centre_peaks(frame, aperture_positions(annulus),
                                     out['level'], out['std']))
    # (said where it flags annuli no other test did, or flags none)
    tell = lift.significant and not (lift.flagged.any()
                                     and doubtful[lift.flagged].all())
    doubtful |= lift.flagged
    _warn(counts['n_bad'], neighbours > 0, few & ~degenerate, n)
    if tell:
        lift.warn()
    if lit.any():
        warnings.warn(
            f'{int(lit.sum())} of {n} sky annuli flagged doubtful: their '
            'inner half is brighter than their outer half by more than '
            f'{WING_SIGNIFICANCE:g} standard errors (up to '
            f'{float(np.nanmax(wings)):.3g}): a star\'s light (its wings, '
            'or a neighbour\'s) lifts their sky and lowers the flux; start '
            'the annuli further out', AstropyUserWarning, stacklevel=3)
    was_cleaned = np.zeros(n, dtype=bool)
    was_cleaned[list(cleaned)] = True
    if holds.any():
        warnings.warn(
            f'{int(holds.sum())} of {n} sky annuli flagged doubtful: they '
            'hold a source (a pixel above '
            f'{SOURCE_PEAK:g} standard deviations of the sky and a neighbour '
            'above 3) whose light around its core, which the clip keeps, '
            'lifts their sky (lift test up to '
            f'{float(np.nanmax(sources)):.3g} standard errors): a '
            'star the apertures do not list, or a neighbour without '
            f'exclude=. {int((holds & was_cleaned).sum())} measured again '
            "without the star's pixels (meta['source_masked']); "
            f'{int((holds & ~was_cleaned).sum())} keep their level, which '
            'its light lifts (not a star, or too few pixels would be '
            'left), and lower the flux: give its aperture in exclude=, or '
            'place the annuli elsewhere', AstropyUserWarning, stacklevel=3)
    if degenerate.any():
        warnings.warn(f'{int(degenerate.sum())} of {n} sky annuli flagged '
                      f'doubtful: fewer than {MIN_SKY_PIXELS} usable pixels, or '
                      'pixels all equal (a scatter of 0): their sky error '
                      'cannot be trusted', AstropyUserWarning, stacklevel=3)
    meta = {'n_excluded_bad': counts['n_bad'],
            'n_excluded_apertures': counts['n_apertures'],
            'n_excluded_neighbours': neighbours,
            'n_own_overlap': counts['n_own'], 'n_clipped': counts['n_clipped'],
            'wing_significance': wings,
            'shared_lift': lift.significance,
            'source_significance': sources,
            'source_held': held,
            'source_masked': np.array([int(np.count_nonzero(cleaned[i]))
                                       if i in cleaned else 0
                                       for i in range(n)]),
            'source_mask_radius': radius,
            'flags': np.where(doubtful, FLAG_SKY_ANNULUS, 0).astype(np.int32),
            'exclude': None if exclude is None else 'apertures touched'}
    with np.errstate(divide='ignore', invalid='ignore'):
        propagated = (None if frame.uncertainty is None
                      else np.where(n_pix > 0, np.sqrt(out['var']) / n_pix,
                                    np.nan))
    pedestal = poisson = None
    if exact:  # the pedestal first: the photon-starved annuli on it
        pedestal = annulus_pedestal(frame, annulus, excluded, out['level'],
                                    method=method, sigma=sigma,
                                    maxiters=maxiters, gain=gain)
        offset = pedestal[1] or 0.0
        with np.errstate(invalid='ignore'):
            photons = (out['level'] - offset) * gain
        poisson = np.full((3, n), np.nan)
        if np.any((photons > 0) & (photons <= ANNULUS_EXACT_MAX)):
            poisson = _exact_rows(frame, annulus, excluded, own, offset,
                                  method=method, sigma=sigma,
                                  maxiters=maxiters, gain=gain,
                                  cleaned=cleaned)
    return {'level': out['level'], 'std': out['std'], 'n_pix': n_pix,
            'propagated': propagated, 'meta': meta, 'poisson': poisson,
            'pedestal': pedestal, 'surface': surface}


def _frame_surface(frame, annulus, excluded, out, n_pix, usable, method,
                   sigma, noise_factor, wings):
    """The frame's quadratic surface under the annulus levels
    (`~ccdphot_ext.background.annulusframe.frame_surface`), the levels'
    errors from their scatter; where it applies to circular annuli, the
    ``wings`` significances lose the surface's
    (`~ccdphot_ext.background.annulusframe.wing_offsets`), in place: the
    frame's curvature makes the inner half of every ring differ from its
    outer half, and so does its gradient where a ring is cut, which is no
    star's light."""
    from .annulusframe import frame_surface, wing_offsets

    with np.errstate(divide='ignore', invalid='ignore'):
        error = (estimator_efficiency(method, sigma) * out['std']
                 * math.sqrt(noise_factor) / np.sqrt(n_pix))
    surface = frame_surface(frame, annulus, excluded, out['level'], error,
                            usable & (n_pix > 0))
    if surface['applied']:
        offset = wing_offsets(surface, out['std'])
        if offset is not None:
            wings -= offset
    return surface


def _clean(stars, out, counts, n, *, method, sigma, maxiters):
    """
    Measure the annuli holding a star again without its pixels
    (`HeldStars.clean`), in place.

    Parameters
    ----------
    stars : `HeldStars`
        The annuli holding a star.
    out : dict
        ``level``, ``std``, ``n_pix`` and ``var`` per annulus (updated).
    counts : dict
        The counts per annulus (``n_clipped`` updated).
    n : int
        The number of annuli.
    method, sigma, maxiters
        The estimator, as for `summarise_rows`.

    Returns
    -------
    cleaned : dict
        ``{annulus: mask}``: the candidate pixels left out.
    radius : `~numpy.ndarray`
        The largest radius masked about a star per annulus (pixels; inf
        where none would leave enough pixels, NaN without a star).
    """
    radius = np.full(n, np.nan)
    res = stars.clean(method=method, sigma=sigma, maxiters=maxiters)
    if res is None:
        return {}, radius
    radius[res['radius'][0]] = res['radius'][1]
    idx = res['idx']
    for name in ('level', 'std', 'n_pix'):
        out[name][idx] = res[name]
    if res['var'] is not None:
        out['var'][idx] = res['var']
    counts['n_clipped'][idx] = res['n_clipped']
    return dict(zip(idx.tolist(), res['masks'], strict=True)), radius


def _wing_significance(values, good, stats, inner):
    """
    How much brighter the inner half of each annulus is than its outer
    half.

    For each row, how many standard errors the mean of its pixels in the
    annulus' inner half (by area) exceeds that of its outer half, the
    pixels those within 3 ``std`` of the level (what a clip or a median
    leaves out, a compact star's core, does not count): star light
    falling off outwards makes it positive; a flat sky, or one sloping
    linearly across the annulus, gives a standard normal deviate.

    Parameters
    ----------
    values : `~numpy.ndarray`
        ``(m, k)`` rows of pixels.
    good : `~numpy.ndarray` of bool
        The usable pixels.
    stats : `RowStatistics`
        The rows' statistics.
    inner : `~numpy.ndarray` of bool
        The pixels of the inner half.

    Returns
    -------
    z : `~numpy.ndarray`
        Per row; NaN where a half keeps fewer than `MIN_SKY_PIXELS`.
    """
    level = np.asarray(stats.level, dtype=float)[:, None]
    reach = 3.0 * np.asarray(stats.std, dtype=float)[:, None]
    with np.errstate(invalid='ignore'):
        keep = good & (np.abs(values - level) <= reach)
    k_in = keep & inner
    n_in = count_rows(k_in)
    n_out = count_rows(keep) - n_in
    s_in = np.sum(values, axis=1, where=k_in, dtype=np.float64)
    s_out = np.sum(values, axis=1, where=keep, dtype=np.float64) - s_in
    with np.errstate(invalid='ignore', divide='ignore'):
        diff = s_in / n_in - s_out / n_out
        err = np.asarray(stats.std, dtype=float) * np.sqrt(
            1.0 / n_in + 1.0 / n_out)
        z = diff / err
    few = (n_in < MIN_SKY_PIXELS) | (n_out < MIN_SKY_PIXELS) | ~(err > 0)
    return np.where(few, np.nan, z)


class _SharedLift:
    """
    The lift the circular annuli of one call share, and the annuli it
    lifts.

    The mean of the wing significances of the annuli ``clear`` of the wing
    test's flag and of too few pixels (standard normal deviates on a flat
    or sloping sky; the mean is about the lift in standard errors of a
    level) and its significance (the mean times the square root of their
    number; 0 for fewer than `LIFT_MIN_ANNULI`) say whether the annuli
    share a lift. Which of them it lifts follows from a line fitted to
    the wing significances of the ``measured`` annuli against the peak of
    each annulus' own star: a star's own wings lift its annulus in
    proportion to its flux (the slope), the faint light of neighbours or
    of stars too faint to be found lifts every annulus alike (the
    intercept). Where the slope is significant (`SLOPE_SIGNIFICANCE`) the
    annuli whose lift the line predicts beyond `LIFT_SIZE`, and beyond two
    of its errors, are flagged, and those without a peak (their centre
    masked or off the frame) when any is; else every annulus is flagged
    where the mean is beyond `LIFT_SIZE`.

    Parameters
    ----------
    wings : `~numpy.ndarray`
        The annuli's wing significances (`_wing_significance`).
    clear : `~numpy.ndarray` of bool
        The annuli to average.
    measured : `~numpy.ndarray` of bool
        The annuli to fit the line to (those with enough pixels, the ones
        the wing test flags as well: they pin the slope).
    peaks : `~numpy.ndarray`
        The peak of each annulus' own star in standard deviations of its
        sky (`_centre_peaks`; NaN where none is measured).
    """

    def __init__(self, wings, clear, measured, peaks):
        z = wings[clear & np.isfinite(wings)]
        self.n = z.size
        self.mean = float(np.mean(z)) if self.n >= LIFT_MIN_ANNULI else 0.0
        self.significance = self.mean * math.sqrt(self.n)
        self.flagged = np.zeros(wings.size, dtype=bool)
        if self.significant:
            self.flagged = self._lifted(wings, measured, peaks)

    def _lifted(self, wings, measured, peaks):
        """The annuli whose predicted lift is beyond `LIFT_SIZE`."""
        # (no line, or no star lifting its own annulus more than another:
        # the mean is every annulus' lift)
        shared = np.full(wings.size, abs(self.mean) > LIFT_SIZE)
        use = measured & np.isfinite(wings) & np.isfinite(peaks)
        if use.sum() < LIFT_MIN_ANNULI:
            return shared
        design = np.c_[np.ones(use.sum()), peaks[use]]
        coef = weighted_lstsq(design, wings[use], np.ones(use.sum()))
        resid = wings[use] - design @ coef
        scale = max(float(np.mean(resid ** 2)), 1.0)
        cov = scale * np.linalg.pinv(design.T @ design)
        if abs(coef[1]) <= SLOPE_SIGNIFICANCE * math.sqrt(cov[1, 1]):
            return shared
        known = np.isfinite(peaks)
        peak = np.where(known, peaks, 0.0)
        lift = coef[0] + coef[1] * peak
        err = np.sqrt(cov[0, 0] + 2.0 * cov[0, 1] * peak
                      + cov[1, 1] * peak ** 2)
        lifted = (np.abs(lift) > LIFT_SIZE) & (np.abs(lift) > 2.0 * err)
        return np.where(known, lifted, lifted[known].any())

    @property
    def significant(self):
        """
        Whether the mean differs from 0 by more than `LIFT_SIGNIFICANCE`
        standard errors.
        """
        return abs(self.significance) > LIFT_SIGNIFICANCE

    def warn(self):
        """
        Say the lift (`~astropy.utils.exceptions.AstropyUserWarning`): its
        size, its direction and how many annuli it flags.
        """
        own = self.mean > 0
        n_flagged = int(self.flagged.sum())
        warnings.warn(
            'the sky annuli share a lift: their inner halves read '
            f'{"brighter" if own else "fainter"} than their outer halves by '
            f'{abs(self.mean):.2g} standard errors on average over '
            f'{self.n} annuli ({abs(self.significance):.3g} standard errors '
            'from 0): ' + ('the faint wings of their stars' if own
                           else "their neighbours' faint light")
            + ' lift their sky and lower the fluxes' + (
                f'; {n_flagged} of {self.flagged.size} annuli flagged '
                'doubtful (those the lift, fitted against the brightness of '
                f'their own star, raises by more than {LIFT_SIZE:g} of a '
                "level's error). Place the annuli "
                + ('further out' if own else 'clear of the neighbours')
                + ', or use the whole-frame sky' if n_flagged
                else f', by less than {LIFT_SIZE:g} of a level\'s error '
                '(not flagged)'), AstropyUserWarning, stacklevel=4)


def _centre_peaks(frame, centres, level, std):
    """
    The peak of each annulus' own star: the highest usable pixel of the 3 x
    3 about its centre, less the annulus' level, in its sky's standard
    deviations.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    centres : `~numpy.ndarray`
        ``(n, 2)`` x, y of the annuli.
    level, std : `~numpy.ndarray`
        The annuli's levels and standard deviations.

    Returns
    -------
    peaks : `~numpy.ndarray`
        NaN where no pixel of the 3 x 3 is usable or the level is not.
    """
    ny, nx = frame.shape
    centres = np.asarray(centres, dtype=float)
    # (a centre far off the frame, or not finite, is put one beyond it)
    ix = np.rint(np.clip(np.nan_to_num(centres[:, 0], nan=-2.0), -2, nx + 1))
    iy = np.rint(np.clip(np.nan_to_num(centres[:, 1], nan=-2.0), -2, ny + 1))
    ix, iy = ix.astype(int), iy.astype(int)
    best = np.full(ix.size, -np.inf)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            y, x = iy + dy, ix + dx
            inside = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
            yc, xc = np.clip(y, 0, ny - 1), np.clip(x, 0, nx - 1)
            value = frame.data[yc, xc].astype(float)
            ok = inside & np.isfinite(value)
            if frame.mask is not None:
                ok &= ~frame.mask[yc, xc]
            best = np.where(ok, np.maximum(best, value), best)
    with np.errstate(invalid='ignore', divide='ignore'):
        peaks = (best - level) / std
    return np.where(np.isfinite(peaks), peaks, np.nan)


def _source_significance(values, good, stats, ring, method, centres=None,
                         usable=None, noise_factor=1.0):
    """
    How far each annulus' level falls when the light around a source in
    it is left out, whether the source is another star, and its pixels.

    A source is a pixel above `SOURCE_PEAK` std of the level and its
    neighbours above 3 std (pure noise makes a pixel above 5 std once in 3
    million); left out are the pixels within `SOURCE_GROW` pixels of those,
    which hold the light of its profile that a clip or a median keeps. The
    level rests on the pixels within 3 std of it (a plain ``method='mean'``
    on every pixel). The lift is measured about a plane fitted to the
    pixels left (a sky sloping across the annulus lifts the side a source
    is on); its error is that of the difference between a mean of the kept
    pixels and of the kept pixels less those: the std times ``sqrt(1 /
    n_left - 1 / n_kept)``.

    The source is a star (``held``) when at least `SOURCE_MIN_PIXELS` of
    its pixels lie above 3 std of that plane too (not a sky sloping up to
    them), its seed above `SOURCE_PEAK` std and its 3 x 3 pixels' light
    above `SOURCE_PEAK` std of their sum, outside the 1-pixel rings about
    the annuli's ``centres`` that their own star lifts all round
    (`_own_rings`) and not beside pixels an aperture covers (those
    ``usable`` but not ``good``); some of them below half its peak, or
    the pixels beside them above the plane by 1 std on average (a
    profile; a flat-topped block or a cosmic ray far above the sky the
    clip takes whole is none). A star's profile goes on below 3 std,
    where the clip keeps it: about ``2 pi s**2`` times 3 std of light for
    a profile of width ``s``, a lift of the level by a sizeable part of
    its error whether or not the lift test, whose noise is of that size,
    can tell it.

    Parameters
    ----------
    values, good, stats
        As for `_wing_significance`.
    ring : `Ring`
        The annuli's candidate pixels (their neighbourhoods).
    method : {'sigma_clip', 'mean', 'median'}
        The estimator.
    centres : array_like, optional
        ``(m, 2)``: the annuli's positions (for `_own_rings`); None
        (default): no ring is taken for the own star's.
    usable : array_like of bool, optional
        ``(m, size)``: the finite, unmasked pixels before the apertures'
        were left out; None (default): none left out.
    noise_factor : float, optional
        How much more than white noise the sum of many pixels scatters
        (correlated noise): the 3 x 3 light's threshold is raised by its
        square root (default 1).

    Returns
    -------
    z : `~numpy.ndarray`
        The fall in standard errors, per row; 0 where the row holds no
        source, NaN where too few pixels are left.
    held : `~numpy.ndarray` of bool
        Per row: True where the source is a star.
    star : `~numpy.ndarray` of bool
        ``(m, size)``: the pixels above 3 std of the plane of the stars
        held (False elsewhere).
    """
    level = np.asarray(stats.level, dtype=float)[:, None]
    std = np.asarray(stats.std, dtype=float)[:, None]
    with np.errstate(invalid='ignore'):
        seeds = good & (values > level + SOURCE_PEAK * std)
    out = np.zeros(len(values))
    held = np.zeros(len(values), dtype=bool)
    rows = np.flatnonzero(seeds.any(axis=1))
    star_map = np.zeros(values.shape, dtype=bool)
    if rows.size == 0:
        return out, held, star_map
    near, grow = ring.neighbourhoods
    values, good, level, std = (values[rows], good[rows], level[rows],
                                std[rows])
    with np.errstate(invalid='ignore'):
        high = good & (values > level + 3.0 * std)
        # the pixels the level rests on: a mean's all, a clip's or a
        # median's those within 3 std (`_wing_significance`)
        kept = good if method == 'mean' else good & ~high & (
            values >= level - 3.0 * std)
    source = high & _reaches(seeds[rows], near)
    left = kept & ~_reaches(source, grow)
    n_kept, n_left = count_rows(kept), count_rows(left)
    # about a plane fitted to the pixels left (a sky sloping across the
    # annulus is no lift, though the source's surroundings lie on one side)
    design = surface_design(ring.ox, ring.oy)
    weights = left.astype(np.float64)
    centred = np.where(kept, values - level, 0.0)
    normal = np.einsum('rk,ki,kj->rij', weights, design, design)
    few = n_left < MIN_SKY_PIXELS
    # pixels left in a line (the rest masked) fix no plane: a level only
    flat = few | ~(np.linalg.cond(normal) < 1e8)
    n_flat = np.maximum(n_left[flat], 1)[:, None, None]
    normal[flat] = np.diag([1.0, 0.0, 0.0]) * n_flat + np.diag([0, 1.0, 1.0])
    right = np.einsum('rk,ki->ri', weights * centred, design)
    right[flat, 1:] = 0.0
    coef = np.linalg.solve(normal, right[..., None])[..., 0]
    plane = coef @ design.T
    residual = centred - plane
    with np.errstate(invalid='ignore', divide='ignore'):
        # the pixels left average 0 about their plane
        lift = np.sum(residual, axis=1, where=kept) / n_kept
        err = std[:, 0] * np.sqrt(1.0 / n_left - 1.0 / n_kept)
        z = np.where(err > 0, lift / err, 0.0)
        # the source's pixels above the plane, not only above the level
        above = values - level - plane
        star = source & (above > 3.0 * std)
        if centres is not None:
            # the annulus' own star: the rings from the inner edge out
            # that its light lifts all round are not another star
            star &= ~_own_rings(star | (good & (above > 3.0 * std)), good,
                                ring, centres[rows])
        if usable is not None:
            # nor the light beside the pixels apertures cover (the
            # annulus' own star's beyond its aperture; a neighbour whose
            # aperture reaches in is flagged as that)
            star &= ~_reaches(usable[rows] & ~good, near)
        peak = star & seeds[rows] & (above > SOURCE_PEAK * std)
        # and the light of the seed's 3 x 3 pixels together above
        # `SOURCE_PEAK` std of their sum (the skewed tail of a
        # photon-starved sky lifts single pixels, seldom nine)
        box = _box_sums(np.where(good, above, 0.0), near)
        n_box = _box_sums(good.astype(np.float64), near)
        peak &= box > SOURCE_PEAK * std * np.sqrt(n_box * noise_factor)
        # a profile: some of its pixels below half its peak (and below
        # `SOURCE_PEAK` std), not a flat-topped block or a cosmic ray's
        # pixels, all far above the sky, that the clip takes whole
        top = np.max(np.where(star, above, 0.0), axis=1, initial=0.0)
        graded = np.any(star & (above < np.maximum(
            0.5 * top, SOURCE_PEAK * std[:, 0])[:, None]), axis=1)
        # or its light going on around it: the pixels beside it above
        # the plane by 1 std on average
        rim = good & _reaches(star, near) & ~star
        graded |= (np.sum(np.where(rim, above, 0.0), axis=1)
                   > std[:, 0] * count_rows(rim))
    out[rows] = np.where(few, np.nan, z)
    held[rows] = (peak.any(axis=1) & (count_rows(star) >= SOURCE_MIN_PIXELS)
                  & graded & ~few)
    star_map[rows] = star & held[rows][:, None]
    return out, held, star_map


#: The fraction of a 1-pixel ring's pixels above 3 std beyond which
#: the annulus' own star lifts it all round (`_own_rings`); pure noise
#: puts 0.13% there, a neighbour's core a sector.
OWN_RING_FRACTION = 0.25


def _own_rings(high, good, ring, centres):
    """``(m, size)``: True for the candidates of the `Ring` ``ring`` about
    ``centres`` in the 1-pixel rings (distance less ``r_in``, rounded
    down) from the inner edge out, each with more than
    `OWN_RING_FRACTION` of its ``good`` pixels ``high``: the annulus' own
    star's light, all round it."""
    frac = centres - np.floor(centres)
    d = np.hypot(ring.oy - frac[:, 1:], ring.ox - frac[:, :1])
    ring_of = np.floor(d - ring.r_in)
    out = np.zeros(high.shape, dtype=bool)
    going = np.ones(len(high), dtype=bool)
    for b in range(int(math.ceil(ring.r_out - ring.r_in)) + 1):
        member = good & (ring_of == b)
        n = count_rows(member)
        lifted = going & (count_rows(high & member)
                          > OWN_RING_FRACTION * np.maximum(n, 1))
        if not lifted.any():
            break
        out |= member & lifted[:, None]
        going = lifted
    return out


def _box_sums(values, neighbourhood):
    """``(m, size)``: the sum of ``values`` over each pixel's
    ``neighbourhood`` (a symmetric sparse ``(size, size)`` matrix)."""
    return np.asarray(neighbourhood @ values.T.astype(np.float64)).T


def _reaches(mask, neighbourhood):
    """
    Where a pixel's neighbourhood holds a marked pixel.

    Parameters
    ----------
    mask : `~numpy.ndarray` of bool
        ``(m, size)``: the marked candidates of each annulus.
    neighbourhood : `scipy.sparse.csr_matrix`
        A symmetric ``(size, size)`` matrix of the candidates' neighbours
        (`Ring.neighbourhoods`).

    Returns
    -------
    reached : `~numpy.ndarray` of bool
        ``(m, size)``.
    """
    return np.asarray(neighbourhood @ mask.T.astype(np.float32)).T > 0


def _exact_rows(frame, annulus, excluded, own, offset, *, method, sigma,
                maxiters, gain, cleaned=None):
    """
    `_poisson_rows` of every annulus, on a pedestal: a second pass over the
    annuli, after `annulus_pedestal` has pooled them.

    Parameters
    ----------
    frame, annulus, excluded, own
        As for `annulus_pixels`.
    offset : float
        The pedestal (data unit).
    method, sigma, maxiters
        The estimator, as for `summarise_rows`.
    gain : float
        Electrons per data unit.
    cleaned : dict, optional
        ``{annulus: mask}``: the pixels left out of the annuli measured
        again without the stars they hold (`_clean_sources`).

    Returns
    -------
    solved : `~numpy.ndarray`
        ``(3, n)``: level, std and error of the level; NaN where not solved.
    """
    poisson = np.full((3, n_positions(annulus)), np.nan)
    for idx, values, good, _, _ in annulus_pixels(frame, annulus, excluded,
                                                  own):
        for r, i in enumerate(idx.tolist()):
            if cleaned and i in cleaned:
                good[r] &= ~cleaned[i]
        stats = summarise_rows(values, good, method, sigma, maxiters)
        poisson[:, idx] = _poisson_rows(values, good, stats.keep,
                                        stats.level, gain, method, sigma,
                                        stats.std, offset)
    return poisson


def whole_counts(annulus, shape, n_total):
    """
    Each annulus' whole pixels (``method='center'``), those off the frame
    included: ``n_total`` (its pixels on the frame) where its bounding box
    lies on the frame, else the count of its photutils mask, so that an
    annulus the frame's edge cuts keeps the share of its pixels it has.

    Parameters
    ----------
    annulus : photutils annulus aperture
        One or many positions.
    shape : tuple of int
        The frame's shape.
    n_total : `~numpy.ndarray` of int
        Per position, its pixels on the frame.

    Returns
    -------
    counts : `~numpy.ndarray` of float
        Per position, at least ``n_total``.
    """
    whole = np.asarray(n_total, dtype=float).copy()
    boxes = annulus.bbox
    boxes = [boxes] if annulus.isscalar else boxes
    ny, nx = shape
    for i, box in enumerate(boxes):
        # (an annulus wholly off the frame keeps none: no mask needed)
        if whole[i] > 0 and (box.ixmin < 0 or box.iymin < 0
                             or box.ixmax > nx or box.iymax > ny):
            one = annulus if annulus.isscalar else annulus[i]
            mask = one.to_mask(method='center')
            whole[i] = max(whole[i], float(np.count_nonzero(mask.data)))
    return whole


def _warn(n_bad, neighbours, few, n):
    """
    Say the pixels left out of the annuli and the annuli flagged for a
    neighbour's aperture or too few pixels
    (`~astropy.utils.exceptions.AstropyUserWarning`).

    Parameters
    ----------
    n_bad : `~numpy.ndarray` of int
        Masked, NaN or inf pixels per annulus.
    neighbours : `~numpy.ndarray` of bool
        The annuli holding pixels of another star's aperture.
    few : `~numpy.ndarray` of bool
        The annuli keeping fewer than `MIN_USED_FRACTION` of their pixels.
    n : int
        The number of annuli.
    """
    if n_bad.sum():
        warnings.warn(f'{int(n_bad.sum())} masked/NaN/inf pixels excluded '
                      f'from the sky annuli ({int(np.count_nonzero(n_bad))} '
                      f'of {n} positions)', AstropyUserWarning, stacklevel=4)
    if (neighbours | few).any():
        warnings.warn(f'{int((neighbours | few).sum())} of {n} sky annuli '
                      f'flagged doubtful: {int(neighbours.sum())} hold '
                      "pixels of another star's aperture (left out; the "
                      "star's light beyond its aperture still lifts the "
                      f'sky), {int(few.sum())} keep fewer than '
                      f'{MIN_USED_FRACTION:.0%} of their pixels (off the '
                      'frame, masked, NaN, apertures, clipped)',
                      AstropyUserWarning,
                      stacklevel=4)


def annulus_flags(sky):
    """
    The flags of the levels of a sky measured in annuli.

    Parameters
    ----------
    sky : `~ccdphot_ext.SkyEstimate`
        The sky.

    Returns
    -------
    flags : int or `~numpy.ndarray` of int32
        One per level (``meta['flags']``: a neighbour's aperture in the
        annulus, mostly masked, too few pixels); 0 for a sky without them.
    """
    flags = sky.meta.get('flags')
    if sky.is_global or flags is None:
        return 0
    return np.asarray(flags, dtype=np.int32)


def sky_row_flags(sky, apertures, n_rows):
    """
    Flags the sky gives each photometry row.

    Those of an annulus sky (``meta['flags']``), and, for annuli measured
    without ``exclude``, the annuli that overlap their measured aperture
    (pixels of the annulus whose centres lie inside the aperture; with a
    warning). An annulus that starts at the aperture's edge (photutils'
    r = 3, 3-7 pixels) only touches it: not flagged.

    Parameters
    ----------
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    apertures : aperture or list of apertures
        The measured apertures.
    n_rows : int
        The photometry's rows.

    Returns
    -------
    flags : int or `~numpy.ndarray` of int32
        0 for a sky of one level, else one per row.
    """
    from ..flags import FLAG_SKY_ANNULUS
    flags = annulus_flags(sky)
    if np.ndim(flags) == 0:
        return flags
    annulus = sky.meta.get('annulus_aperture')
    own = own_apertures(apertures, n_rows)
    if sky.meta.get('exclude') is None and annulus is not None and own:
        if isinstance(annulus, CircularAnnulus):
            hits = _ring_own_hits(annulus, own)
        else:
            masks = annulus.to_mask(method='center')
            masks = masks if isinstance(masks, list) else [masks]
            hits = _own_overlap(own, np.arange(len(masks)), masks,
                                how='covers')
        if np.any(hits):
            warnings.warn(f'{int(np.count_nonzero(hits))} of {n_rows} sky '
                          'annuli reach into their own aperture (pixel '
                          'centres inside it), whose light then lifts the '
                          'sky (flagged); give the apertures as '
                          'SkyEstimate.from_annulus(..., exclude=...) or '
                          'start the annuli at the aperture\'s edge',
                          AstropyUserWarning, stacklevel=3)
            flags = flags | np.where(hits > 0, FLAG_SKY_ANNULUS, 0)
    return flags.astype(np.int32)


def _ring_own_hits(annulus, own):
    """
    The pixels of every circular annulus whose centres its own aperture
    covers (`_own_hits`), a chunk at a time.

    Parameters
    ----------
    annulus : `~photutils.aperture.CircularAnnulus`
        The annuli.
    own : list of tuple
        Each annulus' own aperture (`own_apertures`).

    Returns
    -------
    hits : `~numpy.ndarray` of int
        Per annulus.
    """
    ring = Ring(annulus.r_in, annulus.r_out)
    pos = aperture_positions(annulus)
    hits = np.zeros(len(pos), dtype=int)
    per_chunk = max(1, CHUNK_PIXELS // ring.size)
    for s in range(0, len(pos), per_chunk):
        idx = np.arange(s, min(s + per_chunk, len(pos)))
        part = pos[idx]
        hits[idx] = _own_hits(own, idx, lambda part=part: ring.pixels(part),
                              [ring.members(part)], (part, ring.r_in),
                              how='covers')[0]
    return hits


def usable_centroids(annulus, usable):
    """
    The centroid of each annulus' usable pixels: where its level is read
    from. An annulus the frame's edge, a NaN border or a mask cuts is no
    longer around its position: its level is the sky's at that centroid,
    off the aperture by ``centroid_offset``.

    Parameters
    ----------
    annulus : photutils annulus
        The annuli (their whole pixels, ``method='center'``).
    usable : `~numpy.ndarray` of bool
        The frame's usable pixels (finite and unmasked).

    Returns
    -------
    centroids : `~numpy.ndarray`
        ``(m, 2)``: x and y of each annulus' usable pixels' mean (NaN for
        an annulus without one).
    """
    pos = aperture_positions(annulus)
    out = np.full((len(pos), 2), np.nan)
    ny, nx = usable.shape
    if isinstance(annulus, CircularAnnulus):
        ring = Ring(annulus.r_in, annulus.r_out)
        per_chunk = max(1, _chunk_pixels(usable.shape) // ring.size)
        # (an annulus that cannot reach the frame has no usable pixel)
        near = np.flatnonzero(np.all(np.isfinite(pos), axis=1)
                              & (pos[:, 0] > -ring.reach - 1)
                              & (pos[:, 0] < nx + ring.reach)
                              & (pos[:, 1] > -ring.reach - 1)
                              & (pos[:, 1] < ny + ring.reach))
        for s in range(0, near.size, per_chunk):
            idx = near[s:s + per_chunk]
            part = pos[idx]
            corner = np.floor(part).astype(np.int64)
            ys = corner[:, 1:] + ring.oy
            xs = corner[:, :1] + ring.ox
            inside = _inside(ys, ny) & _inside(xs, nx)
            good = ring.members(part) & inside & usable[
                np.clip(ys, 0, ny - 1), np.clip(xs, 0, nx - 1)]
            out[idx] = pixel_centroid(ys, xs, good)
        return out
    masks = annulus.to_mask(method='center')
    for i, amask in enumerate(masks if isinstance(masks, list) else [masks]):
        large, small = amask.get_overlap_slices(usable.shape)
        if large is None:
            continue
        iy, ix = np.nonzero((amask.data[small] > 0) & usable[large])
        out[i] = pixel_centroid(iy + large[0].start, ix + large[1].start,
                                np.ones(iy.shape, dtype=bool))
    return out


def pixel_centroid(ys, xs, good):
    """
    The mean column and row of the ``good`` pixels of each row.

    Parameters
    ----------
    ys, xs : `~numpy.ndarray`
        The pixels' rows and columns (broadcast with ``good``; the last
        axis the pixels).
    good : `~numpy.ndarray` of bool
        The pixels counted.

    Returns
    -------
    centroid : `~numpy.ndarray`
        ``(..., 2)``: x and y (NaN where no pixel is good).
    """
    n = np.count_nonzero(good, axis=-1)
    with np.errstate(invalid='ignore', divide='ignore'):
        cx = np.sum(np.where(good, xs, 0), axis=-1) / n
        cy = np.sum(np.where(good, ys, 0), axis=-1) / n
    return np.stack([cx, cy], axis=-1)


def check_annulus(annulus, shape):
    """
    Refuse what is not a photutils annulus, or one larger than a few
    frames (a mistyped outer size would exhaust the memory).

    Parameters
    ----------
    annulus : object
        The annulus given.
    shape : tuple of int
        The frame's ``(ny, nx)``.

    Raises
    ------
    TypeError
        If ``annulus`` is not a circular, elliptical or rectangular
        photutils annulus.
    ValueError
        If it is far larger than the frame, naming its outer size.
    """
    if not isinstance(annulus, _ANNULUS_TYPES):
        raise TypeError('annulus must be a photutils CircularAnnulus, '
                        'EllipticalAnnulus or RectangularAnnulus, got '
                        f'{type(annulus).__name__}')
    check_extent(annulus, shape, 'annulus', hint='its outer size')


#: A circular annulus holding a star the apertures do not list
#: (``held``, `_source_significance`) is measured again without the
#: star's pixels (`clean_held`): those nearer to the star than a radius
#: beyond which a profile fitted to its light lifts the level by at most
#: `CLEAN_TAIL` of its standard error (the profile summed over the pixels
#: left, over their std times the square root of their number). At most
#: `CLEAN_MAX_SOURCES` stars an annulus.
CLEAN_TAIL = 0.05
CLEAN_MAX_SOURCES = 8
#: The profile fitted to the held stars (`_fit_shape`), one shape for all
#: of a call's (one frame, one PSF), each with its own amplitude: a
#: Moffat profile ``A (1 + d**2 / alpha**2)**-beta`` with ``beta`` within
#: these (wings as heavy as ``beta = 2``; a Gaussian is the limit of large
#: ``beta``).
CLEAN_BETA = (2.0, 40.0)


class HeldStars:
    """
    The annuli holding a star the apertures do not list, gathered chunk
    by chunk (`add`) to be measured again without the stars' pixels
    (`clean`).
    """

    def __init__(self):
        self.ring = None
        self.idx, self.values, self.good, self.star = [], [], [], []
        self.sigmas, self.level, self.std, self.n_total = [], [], [], []

    def add(self, ring, idx, values, good, sigmas, stats, star, n_total):
        """
        Keep the rows of a chunk that hold a star.

        Parameters
        ----------
        ring : `Ring`
            The annuli's candidate pixels.
        idx : `~numpy.ndarray` of int
            The chunk's annuli.
        values, good, sigmas
            As `annulus_pixels` yields them.
        stats : `RowStatistics`
            The rows' statistics.
        star : `~numpy.ndarray` of bool
            ``(m, size)``: the pixels of the stars held.
        n_total : `~numpy.ndarray` of int
            The rows' annulus pixels.
        """
        rows = np.flatnonzero(star.any(axis=1))
        if rows.size == 0:
            return
        self.ring = ring
        self.idx.append(idx[rows])
        self.values.append(np.array(values[rows], copy=True))
        self.good.append(good[rows])
        self.star.append(star[rows])
        self.sigmas.append(None if sigmas is None else sigmas[rows])
        self.level.append(np.asarray(stats.level, dtype=float)[rows])
        self.std.append(np.asarray(stats.std, dtype=float)[rows])
        self.n_total.append(np.asarray(n_total)[rows])

    def clean(self, *, method, sigma, maxiters):
        """
        Measure the rows again without the pixels of their stars.

        Each star (a connected group of its pixels, brightest first) is
        left out to the radius where the profile fitted to the stars
        (`_fit_shape`) lifts the level by at most `CLEAN_TAIL` of its
        standard error (`_tail_radius`); the statistics are formed from
        the pixels left, twice (the second time fitting the stars' light
        above the first cleaned levels). A row keeps its statistics where
        fewer than `MIN_USED_FRACTION` of its pixels, or fewer than
        `MIN_SKY_PIXELS`, would be left.

        Parameters
        ----------
        method, sigma, maxiters
            The estimator, as for `summarise_rows`.

        Returns
        -------
        result : dict or None
            None without rows; else ``idx`` (the annuli cleaned),
            ``level``, ``std``, ``n_pix``, ``n_clipped``, ``var`` (the
            kept pixels' summed variance, or None), ``masks`` (``(k,
            size)``, the pixels left out), ``refused`` (the annuli
            holding a star that keep their statistics) and ``radius``
            (``idx_all``, ``radius``: the largest radius masked about a
            star of every annulus holding one, inf where none would do).
        """
        if not self.idx:
            return None
        ring = self.ring
        idx = np.concatenate(self.idx)
        values = np.concatenate(self.values)
        good = np.concatenate(self.good)
        star = np.concatenate(self.star)
        level = np.concatenate(self.level)
        std = np.concatenate(self.std)
        n_total = np.concatenate(self.n_total)
        sources = _star_groups(values, good, level, star, ring)
        for _ in range(2):
            above = np.where(good, values.astype(np.float64)
                             - level[:, None], 0.0)
            shape = _fit_shape(sources, above, good, std)
            masks = np.zeros(good.shape, dtype=bool)
            radius = np.full(len(idx), np.nan)
            for row, d, extent, fit in sources:
                if np.all(masks[row][fit] | ~good[row][fit]):
                    continue  # within an earlier star's mask
                amp = _amplitude(above[row], d, fit, shape)
                r = _tail_radius(amp, shape, d, good[row] & ~masks[row],
                                 std[row], extent)
                masks[row] |= good[row] & (d < r)
                radius[row] = np.fmax(radius[row], r)
            again = summarise_rows(values.copy(), good & ~masks, method,
                                   sigma, maxiters)
            level = np.asarray(again.level, dtype=float)
            std = np.asarray(again.std, dtype=float)
        with np.errstate(invalid='ignore'):
            ok = ((again.n_pix >= MIN_SKY_PIXELS)
                  & (again.n_pix >= MIN_USED_FRACTION * n_total)
                  & np.isfinite(level) & (std > 0))
        var = None
        if self.sigmas[0] is not None:
            sig = np.concatenate(self.sigmas)
            var = np.sum(np.where(again.keep, sig, 0.0) ** 2, axis=1)[ok]
        return {'idx': idx[ok], 'level': level[ok], 'std': std[ok],
                'n_pix': np.asarray(again.n_pix)[ok],
                'n_clipped': np.asarray(again.n_clipped)[ok], 'var': var,
                'masks': masks[ok], 'refused': idx[~ok],
                'radius': (idx, radius)}


def _star_groups(values, good, level, star, ring):
    """
    The stars of the rows: connected groups of their pixels, brightest
    first, at most `CLEAN_MAX_SOURCES` a row.

    Parameters
    ----------
    values, good : `~numpy.ndarray`
        ``(k, size)``: the rows' pixels, and the usable ones.
    level : `~numpy.ndarray`
        Their levels.
    star : `~numpy.ndarray` of bool
        The stars' pixels.
    ring : `Ring`
        The candidate pixels.

    Returns
    -------
    sources : list of tuple
        ``(row, d, extent, fit)``: the candidates' distances from the
        star's centroid (weighted by its light), the distance of its
        farthest pixel, and the pixels its profile is fitted to (usable,
        within ``3 extent + 3`` pixels, not another star's).
    """
    near = ring.neighbourhoods[0]
    oy, ox = ring.oy.astype(np.float64), ring.ox.astype(np.float64)
    sources = []
    for row in range(len(values)):
        above = np.where(good[row], values[row].astype(np.float64)
                         - level[row], 0.0)
        todo = star[row] & good[row]
        groups = []
        while todo.any() and len(groups) < CLEAN_MAX_SOURCES:
            group = np.zeros(todo.shape, dtype=bool)
            group[np.argmax(np.where(todo, above, -np.inf))] = True
            while True:  # its connected pixels
                grown = todo & (np.asarray(
                    near @ group.astype(np.float32)) > 0)
                if np.count_nonzero(grown) == np.count_nonzero(group):
                    break
                group = grown
            todo &= ~group
            groups.append(group)
        every = np.logical_or.reduce(groups)
        for group in groups:
            weight = np.maximum(above[group], 0.0)
            if not weight.sum() > 0:
                weight = np.ones(np.count_nonzero(group))
            cy = float(np.sum(weight * oy[group]) / weight.sum())
            cx = float(np.sum(weight * ox[group]) / weight.sum())
            d = np.hypot(oy - cy, ox - cx)
            extent = float(np.max(d[group]))
            fit = good[row] & (d < 3.0 * extent + 3.0) & ~(every & ~group)
            sources.append((row, d, extent, fit))
    return sources


def _moffat(r2, shape):
    """The unit-peak Moffat profile of ``shape`` (``alpha``, ``beta``) at
    squared distances ``r2``."""
    alpha, beta = shape
    return (1.0 + r2 / (alpha * alpha)) ** -beta


def _amplitude(above, d, fit, shape):
    """The least-squares amplitude (at least 0) of the profile ``shape``
    to the pixels ``fit`` at distances ``d``."""
    f = _moffat(d[fit] ** 2, shape)
    norm = float(np.dot(f, f))
    return max(float(np.dot(above[fit], f)) / norm, 0.0) if norm > 0 \
        else 0.0


def _fit_shape(sources, above, good, std):
    """
    The Moffat shape (``alpha``, ``beta``) fitted by least squares to the
    light of all the stars, each with its own amplitude.

    Parameters
    ----------
    sources : list of tuple
        As `_star_groups` returns.
    above : `~numpy.ndarray`
        ``(k, size)``: the rows' pixels less their levels.
    good : `~numpy.ndarray` of bool
        Their usable pixels.
    std : `~numpy.ndarray`
        The rows' std.

    Returns
    -------
    shape : tuple of float
        ``alpha`` (pixels) and ``beta`` (within `CLEAN_BETA`).
    """
    from scipy.optimize import least_squares

    parts = [(above[row][fit], d[fit] ** 2, std[row])
             for row, d, _, fit in sources
             if np.any(fit) and std[row] > 0 and np.isfinite(std[row])]
    extent = float(np.median([e for _, _, e, _ in sources]))
    lo, hi = CLEAN_BETA
    start = [math.log(min(max(extent, 1.0), 50.0)), 3.0]
    if not parts:
        return math.exp(start[0]), start[1]

    def residual(p):
        shape = (math.exp(p[0]), p[1])
        out = []
        for y, r2, s in parts:
            f = _moffat(r2, shape)
            norm = float(np.dot(f, f))
            amp = max(float(np.dot(y, f)) / norm, 0.0) if norm > 0 else 0.0
            out.append((y - amp * f) / s)
        return np.concatenate(out)

    sol = least_squares(residual, start, bounds=(
        [math.log(0.3), lo], [math.log(100.0), hi]))
    return math.exp(sol.x[0]), float(sol.x[1])


def _tail_radius(amp, shape, d, good, std, extent):
    """
    The radius about a star beyond which its profile lifts a level by at
    most `CLEAN_TAIL` of its standard error: the smallest, on a
    half-pixel grid from ``extent + 1``, where the profile summed over the
    ``good`` pixels beyond it is at most `CLEAN_TAIL` times ``std`` times
    the square root of their number.

    Parameters
    ----------
    amp : float
        The star's amplitude.
    shape : tuple of float
        The profile's ``alpha`` and ``beta``.
    d : `~numpy.ndarray`
        The candidates' distances from the star.
    good : `~numpy.ndarray` of bool
        The pixels that would be left.
    std : float
        The level's std.
    extent : float
        The distance of the star's farthest pixel above 3 std.

    Returns
    -------
    radius : float
        Pixels; inf where no radius inside the annulus leaves so little.
    """
    order = np.argsort(d)
    dist = d[order]
    light = (amp * _moffat(dist ** 2, shape) * good[order])[::-1]
    beyond = np.cumsum(light)[::-1]
    n_beyond = np.cumsum(good[order][::-1])[::-1]
    for r in np.arange(extent + 1.0, float(dist[-1]) + 1.0, 0.5):
        k = int(np.searchsorted(dist, r))
        if k >= dist.size:
            return float(r)
        if beyond[k] <= CLEAN_TAIL * std * math.sqrt(max(n_beyond[k], 1)):
            return float(r)
    return math.inf
