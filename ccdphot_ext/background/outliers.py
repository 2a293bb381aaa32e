# Licensed under a 3-clause BSD style license - see LICENSE
"""
Pixels sharper than the frame's stars inside apertures: the cosmic rays
and hot pixels a raw frame keeps (internal; the rule is documented with
`~ccdphot_ext.flags.FLAG_SHARP_PIXEL`).

A star spreads its light over its neighbours; a cosmic-ray hit or a hot
pixel does not. Each pixel at least `SHARP_NSIGMA` times the pixel noise
above its local background (the median of the 16 pixels two pixels away)
and above each of its 8 neighbours is judged by the light of those
neighbours, ``S8``, against its own, ``e0``: a star centred on the pixel
puts at least ``f e0`` into them, ``f`` that of the frame's sharpest stars
(`reference_spread`). The pixel is sharper than a star where

    ``S8 < f e0 - SHARP_Z * sigma * sqrt(8 + f**2)``

(its neighbours hold significantly less light than the sharpest star's
would; ``sigma`` the pixel noise), or where the 7 neighbours besides the
brightest, ``S7``, hold significantly less than such a star's ``f7 e0``
(a hit of two pixels). A faint hit cannot be told
from a faint undersampled star one by one, but a frame rich in hits shows
them as a class: where the faint peaks (`CLASS_NSIGMA` to
`REFERENCE_NSIGMA` noises, `CLASS_EXCESS` times more than white noise
gives) hold together less than half the neighbour light (``S8`` or
``S7``) of as many of the sharpest stars (by more than `SHARP_Z` of its
error), they are hits, and each peak holding less than a star's (or,
besides its brightest neighbour, less than half of it: a hit of two
pixels) is taken for one (the rule of `~ccdphot_ext.background.globalsky`
for its sharp sources: where most are, all are).

The reference and the class rule are the frame's (judged on its bands of
rows, `_band_boxes`); the pixels are looked for in the apertures' boxes
only, by a compiled pass (``_sharp.candidates``: a first cut against the
level of each pixel's tile of the frame, `TILE_SLACK`, then each peak's
neighbours and ring read), so a pixel is judged alike whatever else is
measured.

Nothing is taken out of any sum: a row whose aperture holds such a pixel is
flagged (`FLAG_SHARP_PIXEL`) and `photometer` warns once per frame; the
blank apertures of `~ccdphot_ext.ApertureNoise` leave the pixels out (they
are no noise of the sky).
"""

import math
import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..aperture.utils import (
    aperture_groups,
    aperture_weights,
    frame_box,
    split_apertures,
)
from ..utils.stats import MAD_TO_STD

__all__ = []  # internal module: the rule is documented with the flag

#: A candidate is at least this many pixel standard deviations above its
#: local background (a pixel of white noise, 3 in 10**7).
SHARP_NSIGMA = 5.0
#: How many of its errors the neighbours' light must fall short of a star's.
SHARP_Z = 3.0
#: The share of its peak pixel's light that a star centred on a pixel puts
#: into the 8 neighbours where the frame shows no star to measure it on:
#: that of a Gaussian of FWHM 0.9 px (a Gaussian of 1.0 px puts 0.73, one
#: of 1.5 px 2.0; real undersampled PSFs, with wings, more).
SHARPEST_SPREAD = 0.6
#: The same for the 7 neighbours besides the brightest (a star lights
#: more than one: a Gaussian of FWHM 1.0 px centred on the pixel puts 0.57
#: of the peak there, 0.63 centred on its edge; a hit of two pixels none).
SHARPEST_SPREAD7 = 0.45
#: The frame's stars give the reference where at least `REFERENCE_MIN`
#: peaks `REFERENCE_NSIGMA` pixel noises high spread at least half of
#: `SHARPEST_SPREAD` (sharper ones are hits): `REFERENCE_SCALE` times the
#: smallest of their spreads (a star centred on a pixel spreads least),
#: never below `SHARPEST_SPREAD`.
REFERENCE_NSIGMA = 20.0
REFERENCE_MIN = 5
REFERENCE_SCALE = 0.8
#: The class rule judges the peaks at least `CLASS_NSIGMA` pixel noises
#: high and below `REFERENCE_NSIGMA`; it needs `CLASS_MIN` of them and
#: more than `CLASS_EXCESS` times as many as white noise would give.
CLASS_NSIGMA = 4.0
#: A class of hits flags its peaks down to this many pixel noises.
CLASS_MIN = 10
CLASS_EXCESS = 10.0

_NEAR = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
         if (dy, dx) != (0, 0)]


#: The first cut takes the pixels more than ``nsigma - TILE_SLACK`` pixel
#: noises above the local level of their tile of the frame (32 x 32: the
#: third smallest of 36 pixels sampled on a grid, about its 8th
#: percentile) before each is judged against its own ring: only where
#: that ring lies more than `TILE_SLACK` noises below the tile's 8th
#: percentile (the low side of a steep gradient) can a faint peak be
#: missed.
TILE_SLACK = 0.5
#: The most pixels sampled for the noise.
_SAMPLE = 20_000
#: The frame's stars and its class of hits are judged on at most this many
#: pixels: `_BANDS` bands of rows spread over a larger frame (the whole
#: frame up to it), whichever apertures are measured.
_BAND_PIXELS = 2 ** 20
_BANDS = 16


def _sample_rows(shape):
    """At most `_SAMPLE` pixels' worth of rows spread over the frame."""
    n = max(1, min(shape[0], _SAMPLE // max(shape[1], 1)))
    return np.unique(np.linspace(0, shape[0] - 1, n).astype(int))


def pixel_noise(image, unusable=None):
    """The pixel noise of ``image``: the MAD of the differences of
    horizontally adjacent usable pixels over ``sqrt(2)``, on at most
    `_SAMPLE` pixels of rows spread over it (stars and a smooth sky
    cancel; NaN for fewer than 10 pairs)."""
    image = np.asarray(image)
    rows = _sample_rows(image.shape)
    part = np.asarray(image[rows], dtype=float)
    ok = np.isfinite(part)
    if unusable is not None:
        ok &= ~np.asarray(unusable)[rows]
    with np.errstate(invalid='ignore', over='ignore'):
        diff = (part[:, 1:] - part[:, :-1])[ok[:, 1:] & ok[:, :-1]]
    if diff.size < 10:
        return math.nan
    med = np.median(diff)
    return float(MAD_TO_STD * np.median(np.abs(diff - med)) / math.sqrt(2))


def _first_cut(image, unusable, boxes, cut, slack):
    """The usable local maxima of the ``boxes`` (rows ``y0, y1, x0, x1``;
    the whole frame when None) more than ``cut`` above the median of their
    ring, among the pixels more than ``cut - slack`` above their tile's
    local level (compiled, one pass down the frame over the boxes' rows:
    no temporary of the frame's size): their rows and columns, their 8
    neighbours (n, 8; NaN off the frame, where not finite and where
    ``unusable``), their ring's median and the median of its absolute
    deviations (the usable ring pixels; `numpy.nanmedian`'s to the last
    bit)."""
    from ._sharp import candidates

    data = image
    if (data.dtype not in (np.float32, np.float64)
            or not data.dtype.isnative or not data.flags.aligned):
        data = np.asarray(image, dtype=float)
    ny, nx = image.shape
    if boxes is None:
        boxes = [[0, ny, 0, nx]]
    boxes = np.clip(np.asarray(boxes, dtype=np.intp).reshape(-1, 4), 0,
                    [ny, ny, nx, nx])
    boxes = boxes[np.argsort(boxes[:, 0], kind='stable')]
    flat, near, base, mad = candidates(data, unusable, boxes, float(cut),
                                       float(cut) - float(slack))
    ys, xs = np.unravel_index(flat, image.shape)
    return ys, xs, near, base, mad


def _candidates(image, unusable, sigma, nsigma, boxes=None, found=None):
    """The local maxima of the ``boxes`` (whole frame: None) at least
    ``nsigma`` noises above their ring's
    median: rows, columns, their height ``e0`` over that median, their
    neighbours' light ``S8`` and that of the 7 besides the brightest,
    ``S7`` (the usable neighbours' mean times their number, at the edge
    and beside a bad pixel; not judged with fewer than 5 of them or half
    of the ring), the neighbours over the median (n, 8), and the noise
    each is judged with: ``sigma``, or the scatter of its ring (its MAD)
    where larger (a noisier part of the frame). ``found``: the first cut
    had already (`_first_cut`'s five arrays) instead of looking."""
    ys, xs, near, base, mad = (
        _first_cut(image, unusable, boxes, nsigma * sigma,
                   TILE_SLACK * sigma) if found is None else found)
    ys, xs = ys.astype(np.intp), xs.astype(np.intp)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # an empty ring
        near = near - base[:, None]
        s8 = np.nanmean(near, axis=1) * len(_NEAR)
        s7 = s8 - np.nanmax(near, axis=1)
    # the local noise, where the sky is noisier than the frame's
    noise = np.fmax(MAD_TO_STD * mad, sigma)
    e0 = np.asarray(image[ys, xs], dtype=float) - base
    keep = e0 > nsigma * noise
    return (ys[keep], xs[keep], e0[keep], s8[keep], s7[keep], near[keep],
            noise[keep])


def reference_spread(e0, s8, s7, sigma):
    """
    The shares of its peak's light the frame's sharpest stars put into the
    8 neighbours and into the 7 besides the brightest: `REFERENCE_SCALE`
    times the least of those of the bright peaks that are not sharper
    than half the defaults (`SHARPEST_SPREAD`, `SHARPEST_SPREAD7`), never
    below them, and how many peaks gave them; the defaults from fewer
    than `REFERENCE_MIN`.
    """
    bright = e0 >= REFERENCE_NSIGMA * sigma
    spread, spread7 = s8[bright] / e0[bright], s7[bright] / e0[bright]
    stars = ((spread >= SHARPEST_SPREAD / 2)
             & (spread7 >= SHARPEST_SPREAD7 / 2))
    n = int(np.count_nonzero(stars))
    if n < REFERENCE_MIN:
        return SHARPEST_SPREAD, SHARPEST_SPREAD7, n
    return (max(float(np.min(spread[stars])) * REFERENCE_SCALE,
                SHARPEST_SPREAD),
            max(float(np.min(spread7[stars])) * REFERENCE_SCALE,
                SHARPEST_SPREAD7), n)


def _band_boxes(shape):
    """The rows the frame's stars and class of hits are judged on
    (``y0, y1, x0, x1`` per band): the whole frame up to `_BAND_PIXELS`
    pixels, else `_BANDS` bands of rows spread evenly over it."""
    ny, nx = shape
    height = max(8, _BAND_PIXELS // (_BANDS * max(nx, 1)))
    if ny * nx <= _BAND_PIXELS or _BANDS * height >= ny:
        return np.array([[0, ny, 0, nx]], dtype=np.intp)
    starts = np.linspace(0, ny - height, _BANDS).astype(np.intp)
    return np.column_stack([starts, starts + height,
                            np.zeros(_BANDS, np.intp),
                            np.full(_BANDS, nx, np.intp)])


def _box_pixels(boxes):
    """The pixels of boxes that do not overlap."""
    b = np.asarray(boxes)
    return int(np.sum((b[:, 1] - b[:, 0]) * (b[:, 3] - b[:, 2])))


def _aperture_boxes(aperture, n, shape):
    """The bounding boxes of the ``n`` positions of one aperture as rows
    ``y0, y1, x0, x1`` (n, 4), a pixel wider on each side than photutils'
    (rounding); nothing for a position that is not finite, the whole frame
    where no box can be had (the weights decide)."""
    whole = [0, shape[0], 0, shape[1]]
    pos = np.atleast_2d(np.asarray(aperture.positions, dtype=float))
    ext = None
    if getattr(aperture, 'is_axis_aligned', False) and hasattr(
            aperture, '_sides'):
        ext = np.broadcast_to(np.asarray(aperture._sides, float) / 2,
                              (pos.shape[0], 2))
    elif hasattr(aperture, '_xy_extents'):
        try:
            ext = np.column_stack(np.broadcast_arrays(
                *np.asarray(aperture._xy_extents, dtype=float).reshape(2, -1),
                pos[:, 0]))[:, :2]
        except (ValueError, TypeError):
            ext = None
    if ext is None or pos.shape[0] != n:
        out = np.empty((n, 4), dtype=np.intp)
        for i in range(n):
            box = frame_box(aperture, i, shape)
            out[i] = whole if box is None else box
        return out
    with np.errstate(invalid='ignore', over='ignore'):
        lo = np.floor(pos - ext + 0.5) - 1
        hi = np.ceil(pos + ext + 0.5) + 1
    big = float(max(shape) + 4)
    out = np.column_stack([np.clip(lo[:, 1], -2, big),
                           np.clip(hi[:, 1], -2, big),
                           np.clip(lo[:, 0], -2, big),
                           np.clip(hi[:, 0], -2, big)])
    good = np.all(np.isfinite(pos), axis=1)
    out[~good] = 0
    out[good & ~np.all(np.isfinite(ext), axis=1)] = whole
    return out.astype(np.intp)


def row_boxes(apertures, shape):
    """Each row's bounding box (`split_apertures` order) as ``y0, y1, x0,
    x1`` (n, 4), a pixel wider than photutils' on each side (not
    clipped); empty for a position that is not finite."""
    return np.concatenate([_aperture_boxes(ap, n, shape)
                           for ap, n in aperture_groups(apertures)])


class _Peaks:
    """The candidates of some boxes (`_candidates`, the whole frame for
    None), those at or above ``saturation`` left out."""

    def __init__(self, image, unusable, sigma, saturation, boxes,
                 found=None):
        values = _candidates(image, unusable, sigma, CLASS_NSIGMA, boxes,
                             found)
        if saturation is not None:
            below = np.asarray(image[values[0], values[1]],
                               dtype=float) < saturation
            values = tuple(v[below] for v in values)
        (self.ys, self.xs, self.e0, self.s8, self.s7, self.near,
         self.noise) = values

    def hits_as_class(self, spread, spread7, n_pixels):
        """Whether the faint peaks (`CLASS_NSIGMA` to `REFERENCE_NSIGMA`
        noises), more than white noise gives on ``n_pixels``, hold
        significantly less than half the neighbour light of as many stars
        (the module)."""
        faint = self.e0 < REFERENCE_NSIGMA * self.noise
        n_faint = np.count_nonzero(faint)
        chance = CLASS_EXCESS * n_pixels * 0.5 * math.erfc(
            CLASS_NSIGMA / math.sqrt(2.0))
        if n_faint < CLASS_MIN or n_faint <= chance:
            return False
        total = float(np.sum(self.e0[faint]))
        error = math.sqrt(8.0 * float(np.sum(self.noise[faint] ** 2)))
        return ((float(np.sum(self.s8[faint])) + SHARP_Z * error
                 < spread * total / 2)
                or (float(np.sum(self.s7[faint])) + SHARP_Z * error
                    < spread7 * total / 2))

    def sharp(self, spread, spread7, as_class):
        """The rows and columns of the sharp pixels: the peaks sharper
        than the reference star (a class of hits: every peak holding less
        than it) and their neighbours above `CLASS_NSIGMA` noises (the
        rest of each hit)."""
        e0, s8, s7, noise = self.e0, self.s8, self.s7, self.noise
        margin = SHARP_Z * noise * math.sqrt(8.0 + spread * spread)
        margin7 = SHARP_Z * noise * math.sqrt(7.0 + spread7 * spread7)
        sharp = (s8 < spread * e0 - margin) | (s7 < spread7 * e0 - margin7)
        sharp &= e0 >= SHARP_NSIGMA * noise
        if as_class:
            # the bright peaks too; a hit of 2 pixels too (a star lights
            # more than one neighbour)
            sharp |= (s8 < spread * e0) | (s7 < spread7 * e0 / 2)
        out_y, out_x = [self.ys[sharp]], [self.xs[sharp]]
        for k, (dy, dx) in enumerate(_NEAR):
            lit = sharp & (self.near[:, k] > CLASS_NSIGMA * noise)
            out_y.append(self.ys[lit] + dy)
            out_x.append(self.xs[lit] + dx)
        return np.concatenate(out_y), np.concatenate(out_x)


class SharpPixels:
    """
    The pixels of a frame sharper than its stars (see the module).

    Attributes
    ----------
    ys, xs : 1-D `~numpy.ndarray` of int
        Their rows and columns (each pixel once, in increasing flat
        index).
    shape : tuple of int
        The frame's shape.
    sigma : float
        The pixel noise used.
    spread : float
        The reference neighbour share ``f``.
    n_stars : int
        The bright peaks that gave it (fewer than `REFERENCE_MIN`: the
        default `SHARPEST_SPREAD`).
    as_class : bool
        Whether the faint candidates were judged as a class.
    """

    def __init__(self, ys, xs, shape, sigma, spread, n_stars, as_class):
        flat = np.unique(np.ravel_multi_index((ys, xs), shape))
        self._flat = flat
        self.ys, self.xs = np.unravel_index(flat, shape)
        self.shape = tuple(shape)
        self.sigma = sigma
        self.spread = spread
        self.n_stars = n_stars
        self.as_class = as_class

    @property
    def count(self):
        """How many pixels."""
        return int(self._flat.size)

    @property
    def mask(self):
        """The pixels as a 2-D bool array of the frame's shape."""
        out = np.zeros(self.shape, dtype=bool)
        out[self.ys, self.xs] = True
        return out

    @classmethod
    def from_image(cls, image, unusable=None, sigma=None, saturation=None,
                   boxes=None, found=None):
        """
        Find them.

        Parameters
        ----------
        image : 2-D array_like
            The frame (any smooth background: each pixel is judged against
            its own ring). Read where needed, never copied whole.
        unusable : 2-D `~numpy.ndarray` of bool, optional
            Pixels not to use (masked); NaN and inf are not used either.
        sigma : float, optional
            The pixel noise; default `pixel_noise`.
        saturation : float, optional
            Pixels at or above it are not judged (saturated: flag 4 says
            so already).
        boxes : (n, 4) array_like of int, optional
            Look only in these rectangles (rows ``y0, y1, x0, x1``, stops
            exclusive); default the whole frame. The reference and the
            class rule come from the frame's bands (`_band_boxes`) either
            way, so a pixel is judged alike whatever else is looked at.
        found : `BoxScan`, optional
            The first cut of some of the ``boxes`` done already (by the
            box engine's pass, `BoxScan.remaining` the others).
        """
        image = np.asarray(image)
        if unusable is not None:
            unusable = np.asarray(unusable, dtype=bool)
        none = np.zeros(0, dtype=np.intp)
        if sigma is None:
            sigma = pixel_noise(image, unusable)
        if not (math.isfinite(sigma) and sigma > 0):
            return cls(none, none, image.shape, sigma, SHARPEST_SPREAD, 0,
                       False)
        bands = _band_boxes(image.shape)
        peaks = _Peaks(image, unusable, sigma, saturation, bands)
        spread, spread7, n_stars = reference_spread(
            peaks.e0, peaks.s8, peaks.s7, peaks.noise)
        as_class = peaks.hits_as_class(spread, spread7, _box_pixels(bands))
        if found is not None and boxes is not None:
            peaks = _Peaks(image, unusable, sigma, saturation, None,
                           found.first_cut(image, unusable, boxes))
        elif boxes is not None or len(bands) > 1:
            peaks = _Peaks(image, unusable, sigma, saturation, boxes)
        ys, xs = peaks.sharp(spread, spread7, as_class)
        return cls(ys, xs, image.shape, sigma, spread, n_stars, as_class)

    def rows(self, apertures, shape, *, sum_method='exact', subpixels=5,
             boxes=None):
        """Whether each row's aperture covers one of the pixels (weight
        above 0; bool, one per row in `split_apertures` order); ``boxes``
        the rows' bounding boxes (`row_boxes`) when had already."""
        pairs = split_apertures(apertures)
        out = np.zeros(len(pairs), dtype=bool)
        if not self.count:
            return out
        if boxes is None:
            boxes = row_boxes(apertures, shape)
        for row in np.flatnonzero(self._boxes_hold(boxes, shape)):
            ap, index = pairs[row]
            slices, weights, _ = aperture_weights(
                ap, shape, index=index, sum_method=sum_method,
                subpixels=subpixels)
            if slices is None:
                continue
            y0, x0 = slices[0].start or 0, slices[1].start or 0
            inside = ((self.ys >= y0) & (self.ys < y0 + weights.shape[0])
                      & (self.xs >= x0) & (self.xs < x0 + weights.shape[1]))
            out[row] = bool(np.any(
                weights[self.ys[inside] - y0, self.xs[inside] - x0] > 0))
        return out

    def _boxes_hold(self, boxes, shape):
        """Whether each box (rows ``y0, y1, x0, x1``, clipped to the frame
        here) holds one of the pixels: each of its rows looked up in the
        pixels' sorted flat indices, all boxes at once."""
        ny, nx = shape
        b = np.asarray(boxes, dtype=np.intp).reshape(-1, 4)
        y0, y1 = np.clip(b[:, 0], 0, ny), np.clip(b[:, 1], 0, ny)
        x0, x1 = np.clip(b[:, 2], 0, nx), np.clip(b[:, 3], 0, nx)
        height = np.where((y1 > y0) & (x1 > x0), y1 - y0, 0)
        owner = np.repeat(np.arange(b.shape[0]), height)
        first_row = np.cumsum(height) - height
        y = y0[owner] + np.arange(owner.size) - first_row[owner]
        starts = y * nx + x0[owner]
        first = np.searchsorted(self._flat, starts)
        last = np.searchsorted(self._flat, starts + (x1 - x0)[owner])
        out = np.zeros(b.shape[0], dtype=bool)
        out[owner[last > first]] = True
        return out

    def note(self, n_rows, n_total):
        """The words of the warning for ``n_rows`` of ``n_total`` rows."""
        how = (f"the sharpest of the frame's {self.n_stars} bright "
               'sources' if self.n_stars >= REFERENCE_MIN else
               'a star of FWHM 0.9 px (too few bright sources to measure '
               'it on)')
        most = '; most faint peaks are such hits' if self.as_class else ''
        size = self.shape[0] * self.shape[1]
        return (f'{n_rows} of {n_total} apertures hold a pixel sharper '
                f"than the frame's stars ({self.count} such pixels, "
                f'{self.count / size:.2%} of the frame: cosmic '
                f'rays or hot pixels, judged against {how}{most}). '
                'They are summed as they are (flag 1024): clean the frame '
                '(e.g. ccdproc.cosmicray_lacosmic) or pass a mask of them')


def judging_noise(image, unusable=None, sky_std=None):
    """
    The pixel noise sharp pixels are judged against: `pixel_noise`, or
    the median of the sky's per-pixel std ``sky_std`` where larger
    (correlated noise, whose neighbouring pixels' differences are smaller
    than its scatter; a map of it read at most `_SAMPLE` times).

    Parameters
    ----------
    image : 2-D array_like
        The frame.
    unusable : 2-D `~numpy.ndarray` of bool, optional
        Pixels not to use.
    sky_std : float or array_like, optional
        The sky's per-pixel std (one value or a map).

    Returns
    -------
    sigma : float
        The pixel noise (NaN where neither can be had).
    """
    sigma = pixel_noise(image, unusable)
    if sky_std is not None:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)
            std = np.ravel(np.asarray(sky_std, dtype=float))
            std = float(np.nanmedian(std[::max(1, std.size // _SAMPLE)]))
        if math.isfinite(std) and not std <= sigma:
            sigma = std
    return sigma


class BoxScan:
    """
    Where `sharp_rows` looks for sharp pixels in a `photometer` call (each
    row's box, a pixel wider: `row_boxes`; the whole frame where those
    hold as many pixels), with the pixel noise (`judging_noise`), and the
    first cut of the rows whose boxes the box engine looked in while it
    summed them (`part`: one pass over the pixels; the first cut is a
    pixel's own, so it is found alike by either pass).

    Parameters
    ----------
    frame : `ccdphot_ext.utils.inputs.Frame`
    apertures : aperture or list of them
    sky_std : float or array_like, optional
        The sky's per-pixel std (`judging_noise`).
    """

    def __init__(self, frame, apertures, sky_std=None):
        self.sigma = judging_noise(frame.data, frame.mask, sky_std)
        self.boxes = row_boxes(apertures, frame.shape)
        # the pixels one beyond: a hit peaking there lights the box's edge
        scan = self.boxes + np.array([-1, 1, -1, 1])
        if _box_pixels(np.clip(scan, 0, None)) >= frame.data.size:
            scan = None  # as cheap to look at the whole frame
        self.scan = scan
        self.done = np.zeros(len(self.boxes), dtype=bool)
        self._found = []
        self._shape = frame.shape

    def part(self, rows):
        """The `BoxPart` of table rows ``rows`` (a slice), or None where no
        box is looked at alone (the whole frame, or no pixel noise)."""
        if self.scan is None or not (math.isfinite(self.sigma)
                                     and self.sigma > 0):
            return None
        return BoxPart(self, rows)

    def first_cut(self, image, unusable, boxes):
        """`_first_cut`'s arrays over ``boxes`` (this scan's): the rows not
        done looked at now, joined to those found already (a pixel of
        overlapping boxes may come twice: judged alike)."""
        ys, xs, near, base, mad = _first_cut(
            image, unusable, boxes[~self.done], CLASS_NSIGMA * self.sigma,
            TILE_SLACK * self.sigma)
        parts = [(ys.astype(np.intp), xs.astype(np.intp), near, base, mad)]
        for flat, n8, b, m in self._found:
            y, x = np.unravel_index(flat, self._shape)
            parts.append((y.astype(np.intp), x.astype(np.intp), n8, b, m))
        return tuple(np.concatenate(k) for k in zip(*parts, strict=True))


class BoxPart:
    """The rows ``rows`` of a `BoxScan`: what the box engine needs to find
    the first cut while it sums (``cut``, ``first``: the heights over the
    ring's median and the tile's level, `_first_cut`)."""

    def __init__(self, scan, rows):
        self._scan = scan
        self._rows = np.arange(len(scan.done))[rows]
        self.cut = CLASS_NSIGMA * scan.sigma
        self.first = self.cut - TILE_SLACK * scan.sigma

    def rects(self, idx, shape):
        """The rectangles to look in of boxes ``idx`` (of this part), on
        the frame (``y0, y1, x0, x1``)."""
        ny, nx = shape
        return np.clip(self._scan.scan[self._rows[idx]], 0,
                       [ny, ny, nx, nx]).astype(np.intp)

    def record(self, idx, found):
        """Boxes ``idx`` looked at: ``found`` the compiled pass's first
        cut (flat indices, neighbours, ring median and MAD)."""
        self._scan.done[self._rows[idx]] = True
        self._scan._found.append(found)


def sharp_rows(frame, apertures, sky_std=None, *, sum_method='exact',
               subpixels=5, saturation=None, scan=None):
    """
    The rows holding a pixel sharper than the frame's stars (bool per row,
    in `split_apertures` order) and the warning's words (None when there
    is none); warns once.

    The pixel noise is `judging_noise`'s. Pixels at or above
    ``saturation`` are not judged. ``scan``: the call's `BoxScan` (the
    boxes the box engine looked in already).
    """
    if scan is None:
        scan = BoxScan(frame, apertures, sky_std)
    sigma, boxes = scan.sigma, scan.boxes
    found = SharpPixels.from_image(
        frame.data, unusable=frame.mask, sigma=sigma, saturation=saturation,
        boxes=scan.scan, found=scan if scan.done.any() else None)
    rows = found.rows(apertures, frame.shape, sum_method=sum_method,
                      subpixels=subpixels, boxes=boxes)
    note = None
    if rows.any():
        note = found.note(int(rows.sum()), rows.size)
        warnings.warn(note, AstropyUserWarning, stacklevel=3)
    return rows, note
