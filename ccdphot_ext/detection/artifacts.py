# Licensed under a 3-clause BSD style license - see LICENSE
"""
Detections that are rings or spikes of a brighter star, not stars
(internal; `find_stars` leaves them out).

A bright star's diffraction pattern is unchanged when turned about the
star's centre: by any angle for its rings, by a quarter turn for the four
spikes of a cross-shaped spider, by a sixth of a turn for the six spikes
of a hexagonal pupil, and by a half turn for all of them. Image
segmentation cuts the rings into arcs and the spikes into pieces, and each
piece is a detection. Each detection is compared with the light at the
places where its peak and its centroid go when turned about a brighter
star:

* its *parent* is the star at least `MIN_FLUX_RATIO` times brighter whose
  light dominates at it (by ``flux / distance**2``), within the reach of
  that star's pattern, and symmetric itself (its core matches its
  half-turned image to `MAX_PARENT_ASYMMETRY` of its light: a blend of
  stars, a galaxy, is no parent);
* the frame is filtered as for detection, with a lowered (zero-sum)
  Gaussian of the PSF's FWHM (smooth light, a cluster's or a nebula's,
  gives no response), and evaluated at the point and at that point turned
  about the parent. Every pattern repeats under a half turn and under a
  quarter or a sixth turn: a point that is not lit itself, or whose image
  turned by a half turn, or by neither a quarter nor a sixth turn, is not
  lit (`LIT_SNR`), is no piece. Then the point is
  turned by `RING_ANGLES` angles around the whole circle (rings), by the
  three other quarter turns (four spikes), by the five other sixth turns
  (six spikes). The median of the turned values is the pattern's light
  there;
* the point is a piece of the pattern when, for one of the three, that
  light is significant (at least `MIN_PATTERN_SNR` times the noise of one
  value: a pattern that would be detected by itself), the turned values
  agree (their spread is at most `MAX_SPREAD` of the light, in quadrature
  with `SPREAD_NOISE` times their sky noise: in a crowd they hit stars
  here and there), and the detection does not stand out of it: the
  difference is within `KEEP_SNR` times the scatter of the turned values
  (their spread, which measures how symmetric the pattern really is, and
  the sky noise of the value and of the median) plus `ASYMMETRY` of the
  light.

A detection is a ring or spike when its peak or its centroid is a piece
(a faint arc's centroid lies inside its curve, between the rings; its
peak can be a noise spike beside the ring). A real star beside a bright
one, on a ring or not, stands out of the pattern by its own light at both,
and a field star would need look-alikes at several places turned about a
bright star. Filtering first makes the values at the turned points
independent of their sub-pixel phase (a Gaussian weight of every pixel,
evaluated at the exact point). Near the frame's edges and bad pixels the
filter uses the good pixels only; a point whose turned images leave the
frame is compared with those that do not (rings: at least half of them;
spikes: all of them), else it is no piece.
"""

import itertools
import math
import warnings

import numpy as np
from scipy.spatial import cKDTree

from ..utils.stats import MAD_TO_STD

__all__ = []  # internal module

#: A parent is at least this many times brighter (segment flux) than its
#: ring or spike pieces (the first Airy ring holds 7% of the light).
MIN_FLUX_RATIO = 10.0
#: Reach of a parent's pattern: this many times ``sqrt(flux / threshold)``
#: pixels (a spike's light falls as the inverse distance squared), at most
#: the frame.
REACH_SCALE = 1.0
#: A parent's core (this many PSF FWHM) matches its half-turned image to
#: this fraction of its light.
PARENT_CORE = 2.0
MAX_PARENT_ASYMMETRY = 0.1
#: The filtered frame is evaluated where at least this fraction of the
#: Gaussian's weight falls on good pixels (at the frame's edges, next to
#: bad pixels).
MIN_GOOD_WEIGHT = 0.5
#: Angles (evenly spaced around the circle) at which a ring is sampled.
RING_ANGLES = 24
#: Turns of the spike patterns: four spikes, six spikes.
SPIKE_TURNS = (4, 6)
#: The pattern's light at the turned points is at least this many times
#: the noise of one value.
MIN_PATTERN_SNR = 3.0
#: The turned values agree: their spread is at most this fraction of
#: their median ...
MAX_SPREAD = 0.3
#: ... in quadrature with this many times their sky noise (the spread of a
#: few noisy values is itself uncertain).
SPREAD_NOISE = 2.0
#: A point is lit where its filtered value is this many times its noise.
LIT_SNR = 1.0
#: A ring is lit at this fraction of its turned points at least (a crowd
#: of stars leaves gaps).
MIN_LIT_FRACTION = 0.75
#: A detection within this many times the scatter of the turned values
#: about their median ...
KEEP_SNR = 3.0
#: ... plus this fraction of the pattern's light (the parent's centre is
#: uncertain) is a piece of it.
ASYMMETRY = 0.05
#: Points filtered at a time (bounds the memory of the pixel windows).
_CHUNK = 256


def _median_variance(n):
    """
    Variance of the median of unit normal values.

    Parameters
    ----------
    n : int
        How many values.

    Returns
    -------
    variance : float
        Exact for up to 5 values, ``pi / (2 n)`` for more.
    """
    return {1: 1.0, 2: 0.5, 3: 0.449, 4: 0.343, 5: 0.287}.get(
        n, math.pi / (2 * n))


def _patterns():
    """
    The turns of the patterns a bright star makes.

    Returns
    -------
    patterns : list of tuple
        For the rings, the four spikes and the six spikes: the turns
        (radians, the identity left out) and the number of turned points
        that must be on good pixels.
    """
    rings = np.arange(1, RING_ANGLES) * (2 * math.pi / RING_ANGLES)
    out = [(rings, (RING_ANGLES - 1) // 2)]
    out += [(np.arange(1, n) * (2 * math.pi / n), n - 1)
            for n in SPIKE_TURNS]
    return out


class _Filtered:
    """
    The sky-subtracted frame filtered with a lowered (zero-sum) Gaussian of
    ``psf_fwhm``, as the detection image, and its noise, evaluated at any
    points: the kernel is centred on the exact point, over the good pixels
    within ``2 psf_fwhm`` of it (NaN where less than `MIN_GOOD_WEIGHT` of
    the Gaussian's weight falls on good pixels of the frame).

    Parameters
    ----------
    sky_rows : `~ccdphot_ext.detection.strips.SkyRows`
        The frame, its sky (a level or a 2-D map) and its mask.
    std : float or 2-D array_like
        The pixel noise (one value or a map).
    psf_fwhm : float
        The PSF's full width at half maximum (pixels).
    """

    def __init__(self, sky_rows, std, psf_fwhm):
        self.sky_rows, self.std = sky_rows, np.asarray(std, dtype=np.float64)
        self.sigma = max(psf_fwhm / (2 * math.sqrt(2 * math.log(2))), 1.0)
        self.radius = max(2.0 * psf_fwhm, 3.0 * self.sigma)
        half = int(math.ceil(self.radius))
        self.offsets = np.arange(-half, half + 2)  # floor(point) + offsets
        # cover the disc

    def _pixels(self, ys, xs):
        """
        Sky-subtracted values and noise at integer pixels.

        Parameters
        ----------
        ys, xs : `~numpy.ndarray` of int
            Per point, the rows and the columns, each ``(n, k)``.

        Returns
        -------
        values, noise : `~numpy.ndarray`
            Each ``(n, k, k)`` (values NaN off the frame or bad).
        """
        sky_rows = self.sky_rows
        ny, nx = sky_rows.shape
        flat = (np.clip(ys, 0, ny - 1) * nx)[:, :, None] \
            + np.clip(xs, 0, nx - 1)[:, None, :]
        value = sky_rows.value
        out = _take(sky_rows.data, flat).astype(np.float64)
        out -= _take(value, flat) if np.ndim(value) == 2 else value
        bad = ~np.isfinite(out)
        bad |= ~((ys >= 0) & (ys < ny))[:, :, None]
        bad |= ~((xs >= 0) & (xs < nx))[:, None, :]
        if sky_rows.mask is not None:
            bad |= _take(sky_rows.mask, flat)
        np.copyto(out, np.nan, where=bad)
        noise = (_take(self.std, flat) if self.std.ndim == 2
                 else np.full(out.shape, float(self.std)))
        return out, noise

    def _chunk(self, x, y):
        """
        Filtered values and noise at points.

        Parameters
        ----------
        x, y : 1-D `~numpy.ndarray`
            The points (pixels).

        Returns
        -------
        filtered, error : `~numpy.ndarray`
            Per point.
        """
        o, n = self.offsets, x.size
        xs = np.floor(x).astype(np.int64)[:, None] + o  # (n, k)
        ys = np.floor(y).astype(np.int64)[:, None] + o
        dx2, dy2 = (xs - x[:, None]) ** 2, (ys - y[:, None]) ** 2
        disc = (dy2[:, :, None] + dx2[:, None, :]).reshape(n, -1) \
            <= self.radius ** 2
        gauss = (np.exp(-dy2 / (2 * self.sigma ** 2))[:, :, None]
                 * np.exp(-dx2 / (2 * self.sigma ** 2))[:, None, :])
        values, noise = self._pixels(ys, xs)
        gauss, values, noise = (a.reshape(n, -1)
                                for a in (gauss, values, noise))
        np.copyto(gauss, 0.0, where=~disc)
        total = gauss.sum(axis=1)
        good = disc & ~np.isnan(values)
        bad = ~good
        np.copyto(gauss, 0.0, where=bad)
        np.copyto(values, 0.0, where=bad)
        kept = gauss.sum(axis=1)
        n_good = np.maximum(good.sum(axis=1), 1)
        weight = gauss / np.maximum(kept, 1e-300)[:, None]
        del gauss
        weight -= good / n_good[:, None]
        filtered = np.einsum('ij,ij->i', weight, values)
        del values
        weight *= weight  # (squares in place: memory)
        noise *= noise
        error = np.sqrt(np.einsum('ij,ij->i', weight, noise))
        filtered[kept < MIN_GOOD_WEIGHT * total] = np.nan
        return filtered, error

    def __call__(self, x, y):
        """
        Filtered values and their noise at points.

        Parameters
        ----------
        x, y : array_like
            The points (pixels; arrays of one shape).

        Returns
        -------
        filtered, noise : `~numpy.ndarray`
            Per point (the shape of ``x``).
        """
        shape = np.shape(x)
        x = np.ravel(x).astype(np.float64)
        y = np.ravel(y).astype(np.float64)
        value, noise = np.empty(x.size), np.empty(x.size)
        for lo in range(0, x.size, _CHUNK):
            part = slice(lo, lo + _CHUNK)
            value[part], noise[part] = self._chunk(x[part], y[part])
        return value.reshape(shape), noise.reshape(shape)


def _take(array, flat):
    """
    A 2-D array at flat pixel indices.

    Parameters
    ----------
    array : 2-D `~numpy.ndarray`
        The array.
    flat : `~numpy.ndarray` of int
        Flat indices into it.

    Returns
    -------
    values : `~numpy.ndarray`
        The shape of ``flat``.
    """
    if array.flags.c_contiguous:
        return array.ravel().take(flat)
    return array[np.divmod(flat, array.shape[1])]


def _parents(x, y, flux, threshold, shape):
    """
    The parent candidate of every detection: the detection at least
    `MIN_FLUX_RATIO` times brighter, within its reach, whose light
    dominates at it.

    Parameters
    ----------
    x, y : `~numpy.ndarray`
        The detections' centres (pixels).
    flux : `~numpy.ndarray`
        Their segment fluxes.
    threshold : float
        The detection threshold (per pixel): a parent's reach grows with
        ``sqrt(flux / threshold)``.
    shape : tuple of int
        The frame's shape (the longest reach is its diagonal).

    Returns
    -------
    parent : `~numpy.ndarray` of int64
        Per detection, its parent's index (-1 for none).
    """
    n = x.size
    parent = np.full(n, -1, dtype=np.int64)
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux) & (flux > 0)
    if ok.sum() < 2:
        return parent
    index = np.flatnonzero(ok)
    bright = index[flux[index] >= MIN_FLUX_RATIO * flux[index].min()]
    if bright.size == 0:
        return parent
    limit = float(np.hypot(*shape))
    # a threshold of 0 (a sky std of 0, already warned of), or one so
    # small the ratio overflows, reaches the whole frame
    with np.errstate(divide='ignore', over='ignore'):
        reach = np.minimum(REACH_SCALE * np.sqrt(flux[bright] / threshold),
                           limit)
    tree = cKDTree(np.column_stack([x[index], y[index]]))
    near = tree.query_ball_point(np.column_stack([x[bright], y[bright]]),
                                 reach)
    counts = [len(k) for k in near]
    pairs_i = np.repeat(bright, counts)
    pairs_j = index[np.fromiter(itertools.chain.from_iterable(near),
                                dtype=np.int64, count=sum(counts))]
    fainter = flux[pairs_j] * MIN_FLUX_RATIO <= flux[pairs_i]
    pairs_i, pairs_j = pairs_i[fainter], pairs_j[fainter]
    if pairs_i.size == 0:
        return parent
    d2 = np.maximum((x[pairs_j] - x[pairs_i]) ** 2
                    + (y[pairs_j] - y[pairs_i]) ** 2, 1.0)
    score = flux[pairs_i] / d2
    order = np.lexsort((-score, pairs_j))  # best parent first per child
    first = np.ones(order.size, dtype=bool)
    first[1:] = pairs_j[order][1:] != pairs_j[order][:-1]
    parent[pairs_j[order][first]] = pairs_i[order][first]
    return parent


def _turned(cx, cy, px, py, angles):
    """
    Points turned about centres.

    Parameters
    ----------
    cx, cy : `~numpy.ndarray`
        The centres, ``(n,)``.
    px, py : `~numpy.ndarray`
        The points, ``(n,)``.
    angles : `~numpy.ndarray`
        The turns (radians), ``(m,)``.

    Returns
    -------
    tx, ty : `~numpy.ndarray`
        The turned points, ``(n, m)``.
    """
    c, s = np.cos(angles), np.sin(angles)
    dx, dy = (px - cx)[:, None], (py - cy)[:, None]
    return cx[:, None] + c * dx - s * dy, cy[:, None] + s * dx + c * dy


def _symmetric(filtered, cx, cy, radius):
    """
    Which stars' filtered cores match their half-turned images: ``sum
    |difference| / sum |level|`` at most `MAX_PARENT_ASYMMETRY` (a few per
    cent for a star, of order one for a blend).

    Parameters
    ----------
    filtered : `_Filtered`
        The filtered frame.
    cx, cy : `~numpy.ndarray`
        The stars' centres.
    radius : float
        The core's radius (pixels).

    Returns
    -------
    symmetric : `~numpy.ndarray` of bool
        Per star (False next to bad pixels).
    """
    r = int(math.ceil(radius))
    dy, dx = (a.ravel() for a in np.mgrid[-r:r + 1, 0:r + 1])
    half = (np.hypot(dx, dy) <= radius) & ((dx > 0) | (dy > 0))
    dx, dy = dx[half], dy[half]
    here, _ = filtered(cx[:, None] + dx, cy[:, None] + dy)
    there, _ = filtered(cx[:, None] - dx, cy[:, None] - dy)
    with np.errstate(invalid='ignore'):
        asymmetry = (np.sum(np.abs(here - there), axis=1)
                     / np.sum(np.abs(here) + np.abs(there), axis=1))
    return asymmetry <= MAX_PARENT_ASYMMETRY


def _matches(value, noise, turned, turned_noise, n_needed, *, every):
    """
    Where a filtered value is one more of the turned values of a pattern
    (see the module).

    Parameters
    ----------
    value, noise : `~numpy.ndarray`
        The detections' filtered values and noise, ``(n,)``.
    turned, turned_noise : `~numpy.ndarray`
        The same at the turned points, ``(n, m)``.
    n_needed : int
        How many turned points must be on good pixels.
    every : bool
        True (spikes): every turned value at least half their median and
        their spread within `MAX_SPREAD`; False (rings):
        `MIN_LIT_FRACTION` of them lit.

    Returns
    -------
    matches : `~numpy.ndarray` of bool
        Per detection.
    """
    m = turned.shape[1]
    n_good = np.sum(np.isfinite(turned), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN rows
        light = np.nanmedian(turned, axis=1)
        spread = MAD_TO_STD * np.nanmedian(np.abs(turned - light[:, None]),
                                           axis=1)
        sky_var = np.nanmean(turned_noise ** 2, axis=1)
    light_noise = np.sqrt(sky_var * _median_variance(m))
    scatter = np.sqrt(noise ** 2 + light_noise ** 2 + spread ** 2)
    with np.errstate(invalid='ignore'):
        if every:  # each spike as bright as half the median at least
            enough = (np.nanmin(turned, axis=1) >= light / 2) & (
                spread ** 2 <= (MAX_SPREAD * light) ** 2
                + SPREAD_NOISE ** 2 * sky_var)
        else:
            enough = (np.sum(_lit(turned, turned_noise), axis=1)
                      >= MIN_LIT_FRACTION * n_good)
        return ((n_good >= n_needed) & (value > 0) & enough
                & (light >= MIN_PATTERN_SNR * np.hypot(noise, light_noise))
                & (np.abs(value - light)
                   <= KEEP_SNR * scatter + ASYMMETRY * light))


def _lit(value, noise):
    """
    Where a filtered value is lit: `LIT_SNR` times its noise at least.

    Parameters
    ----------
    value, noise : `~numpy.ndarray`
        Filtered values and their noise.

    Returns
    -------
    lit : `~numpy.ndarray` of bool
    """
    with np.errstate(invalid='ignore'):
        return value >= LIT_SNR * noise


def _pieces(filtered, cx, cy, px, py):
    """
    Which points are pieces of the pattern (rings, four or six spikes) of
    their stars.

    Parameters
    ----------
    filtered : `_Filtered`
        The filtered frame.
    cx, cy : `~numpy.ndarray`
        The stars' centres, ``(n,)``.
    px, py : `~numpy.ndarray`
        The points, ``(n,)``.

    Returns
    -------
    pieces : `~numpy.ndarray` of bool
        Per point.
    """
    value, noise = filtered(px, py)
    todo = np.flatnonzero(_lit(value, noise))
    for turns in ([math.pi], [math.pi / 2, math.pi / 3]):
        lit = np.zeros(todo.size, dtype=bool)
        for angle in turns:  # lit at one of these turns
            rest = np.flatnonzero(~lit)
            tx, ty = _turned(cx[todo[rest]], cy[todo[rest]], px[todo[rest]],
                             py[todo[rest]], np.array([angle]))
            lit[rest] = _lit(*filtered(tx[:, 0], ty[:, 0]))
        todo = todo[lit]
    piece = np.zeros(px.size, dtype=bool)
    for angles, n_needed in _patterns():
        if todo.size == 0:
            break
        tx, ty = _turned(cx[todo], cy[todo], px[todo], py[todo], angles)
        turned, turned_noise = filtered(tx, ty)
        found = _matches(value[todo], noise[todo], turned, turned_noise,
                         n_needed, every=angles.size < RING_ANGLES - 1)
        piece[todo[found]] = True
        todo = todo[~found]
    return piece


def ring_or_spike(sky_rows, std, cols, threshold, psf_fwhm):
    """
    The parent of every detection that is a ring or spike of a brighter
    star (see the module), else -1.

    Parameters
    ----------
    sky_rows : `~ccdphot_ext.detection.strips.SkyRows`
        The frame, its sky and its mask.
    std : float or 2-D array
        The sky noise per pixel.
    cols : dict
        The detections' ``x``, ``y``, ``flux``, ``peak_x``, ``peak_y``
        (arrays).
    threshold : float
        The detection threshold (data unit, per pixel).
    psf_fwhm : float
        The PSF FWHM in pixels (the width of the filter).

    Returns
    -------
    parent : ndarray of int64
        Index of the parent detection, -1 for a star.
    """
    x = np.asarray(cols['x'], dtype=np.float64)
    y = np.asarray(cols['y'], dtype=np.float64)
    parent = _parents(x, y, np.asarray(cols['flux'], dtype=np.float64),
                      threshold, sky_rows.shape)
    if not (parent >= 0).any():
        return parent
    filtered = _Filtered(sky_rows, std, psf_fwhm)
    js = np.flatnonzero(parent >= 0)
    cx, cy = x[parent[js]], y[parent[js]]
    px = np.asarray(cols['peak_x'][js], dtype=np.float64)
    py = np.asarray(cols['peak_y'][js], dtype=np.float64)
    piece = _pieces(filtered, cx, cy, px, py)
    rest = ~piece  # the centroid too
    piece[rest] = _pieces(filtered, cx[rest], cy[rest], x[js][rest],
                          y[js][rest])
    parent[js[~piece]] = -1
    stars = np.unique(parent[parent >= 0])
    if stars.size:
        asymmetric = stars[~_symmetric(filtered, x[stars], y[stars],
                                       PARENT_CORE * psf_fwhm)]
        parent[np.isin(parent, asymmetric)] = -1  # a blend or a galaxy
    return parent
