# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Does the background curve around the stars an annulus sky is measured for?

An annulus level is the background at the star only where the background
is flat or a plane about it: a linear gradient cancels in any ring, a
curvature does not. For a background :math:`B = a + c\\,r^2` about the
star (a star on a galaxy's bulge, on a nebula: the supernova on its
host) the annulus level misses the aperture's mean background by
:math:`c\\,(\\langle r^2\\rangle_{\\rm annulus} - \\langle r^2\\rangle_{\\rm
aperture})` per pixel, and the flux by ``n_pix`` times that. The annulus
alone cannot tell ``c`` from its noise; the annulus and a wider ring about
it (out to `WIDE_RING_FACTOR` times its outer size) can: a plane plus
:math:`c\\,r^2` fitted to their pixels (sigma clipped, the star's own
aperture and the other listed stars left out) measures ``c`` with an
error that makes the implied flux bias's error about 0.05 of a faint
star's flux error.

`annulus_curvature` measures that implied bias for each annulus;
`check_annulus_curvature` flags the rows where it is both significant and
a meaningful part of the flux error. The flag says the sky is doubtful;
nothing is corrected: the background's true shape is unknown, and a
peaked one (a Gaussian bulge) curves more near the star than the ring's
average, so its true bias is larger than the quadratic's.
"""

import math

import numpy as np

from ..aperture.circular import radians
from ..flags import FLAG_SKY_ANNULUS
from ..utils.stats import MAD_TO_STD, surface_design
from .skyrules import SkyRowRule, no_rows

__all__ = ['annulus_curvature', 'check_annulus_curvature']

#: The wider ring reaches this many times the annulus' outer size.
WIDE_RING_FACTOR = 2.0
#: A row is flagged where the implied flux bias exceeds this many of its
#: own standard errors ...
CURVATURE_NSIGMA = 5.0
#: ... and this fraction of the row's flux error.
CURVATURE_FRACTION = 0.15
#: Fewer usable pixels than this fraction of a ring's (the annulus', the
#: wider ring's: off the frame, masked): the row is not checked.
MIN_RING_FRACTION = 0.25
#: Nor with fewer than this many usable pixels in either ring.
MIN_RING_PIXELS = 20
#: Residuals beyond this many standard deviations of the fit are left
#: out, and the fit redone, `CLIP_PASSES` times.
CLIP_SIGMA = 3.0
CLIP_PASSES = 2
#: The variance of a unit Gaussian cut at `CLIP_SIGMA`: the kept residuals'
#: mean square is that fraction of the noise's variance.
CLIPPED_VARIANCE = 0.97334
#: Annuli fitted together (the memory of a batch grows with it).
BATCH = 512


def _shape(annulus):
    """
    The annulus' geometry.

    Parameters
    ----------
    annulus : photutils annulus
        A circular, elliptical or rectangular annulus (other kinds are not
        checked).

    Returns
    -------
    geometry : tuple or None
        ``(kind, inner, outer, theta, mask_radius, reach)``: ``'ellipse'``
        or ``'box'``, the inner and outer half-sizes, the angle (radians),
        the radius of the listed stars' masks (its smallest outer
        half-size) and the half-extent of the wider ring (pixels); None
        for an annulus of another kind.
    """
    name = type(annulus).__name__
    if name == 'CircularAnnulus':
        inner = (float(annulus.r_in),) * 2
        outer = (float(annulus.r_out),) * 2
        kind = 'ellipse'
    elif name == 'EllipticalAnnulus':
        inner = (float(annulus.a_in), float(annulus.b_in))
        outer = (float(annulus.a_out), float(annulus.b_out))
        kind = 'ellipse'
    elif name == 'RectangularAnnulus':
        inner = (float(annulus.w_in) / 2, float(annulus.h_in) / 2)
        outer = (float(annulus.w_out) / 2, float(annulus.h_out) / 2)
        kind = 'box'
    else:
        return None
    theta = radians(getattr(annulus, 'theta', None))
    corner = math.hypot(*outer) if kind == 'box' else max(outer)
    reach = int(math.ceil(WIDE_RING_FACTOR * corner)) + 1
    return kind, inner, outer, theta, min(outer), reach


def _norm(kind, u, v, size):
    """
    The scaled radius of offsets for a boundary.

    Parameters
    ----------
    kind : {'ellipse', 'box'}
        The boundary's kind.
    u, v : `~numpy.ndarray`
        Offsets along the annulus' axes (pixels).
    size : tuple of float
        The boundary's half-sizes along those axes.

    Returns
    -------
    norm : `~numpy.ndarray`
        Below 1 inside the boundary, 1 on it.
    """
    if kind == 'box':
        return np.maximum(np.abs(u) / size[0], np.abs(v) / size[1])
    return np.sqrt((u / size[0]) ** 2 + (v / size[1]) ** 2)


def _half_pixels(radii):
    """
    Radii rounded up to half a pixel.

    Parameters
    ----------
    radii : float or `~numpy.ndarray`
        Radii (pixels).

    Returns
    -------
    rounded : float or `~numpy.ndarray`
        Each rounded up to a multiple of 0.5.
    """
    return np.ceil(2 * radii) / 2


def _source_count(shape, positions, radii):
    """
    Per pixel, how many of the listed stars' disks cover it.

    Parameters
    ----------
    shape : tuple of int
        The frame's shape.
    positions : `~numpy.ndarray`
        The stars' ``(x, y)`` centres, shape ``(n, 2)`` (non-finite ones
        left out).
    radii : `~numpy.ndarray`
        One disk radius per position, rounded up to half a pixel, about
        the position's nearest pixel (not positive: no disk).

    Returns
    -------
    count : `~numpy.ndarray` of int
        The count per pixel, flattened (``shape[0] * shape[1]``).
    """
    ny, nx = shape
    keep = np.isfinite(positions).all(axis=1) & (radii > 0)
    positions = positions[keep]
    radii = _half_pixels(radii[keep])
    hits = []
    for radius in np.unique(radii):
        pos = positions[radii == radius]
        r = int(math.ceil(radius))
        oy, ox = np.mgrid[-r:r + 1, -r:r + 1]
        disk = oy * oy + ox * ox < radius * radius
        xs = np.round(pos[:, 0:1]).astype(np.intp) + ox[disk]
        ys = np.round(pos[:, 1:2]).astype(np.intp) + oy[disk]
        on = (xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
        hits.append(ys[on] * nx + xs[on])
    hits = np.concatenate(hits) if hits else np.zeros(0, dtype=np.intp)
    return np.bincount(hits, minlength=ny * nx)


def _robust_scale(resid, keep):
    """
    Per row, a standard deviation of the residuals that bright pixels do
    not lift: `MAD_TO_STD` times the median absolute residual of every
    fourth pixel kept.

    Parameters
    ----------
    resid : `~numpy.ndarray`
        The residuals, rows by pixels.
    keep : `~numpy.ndarray` of bool
        The pixels kept (the shape of ``resid``).

    Returns
    -------
    scale : `~numpy.ndarray`
        Per row (NaN for a row without a pixel kept).
    """
    sub = np.where(keep[:, ::4], np.abs(resid[:, ::4]), np.inf)
    sub.sort(axis=1)
    count = keep[:, ::4].sum(axis=1)
    mid = np.take_along_axis(sub, np.maximum(count - 1, 0)[:, None] // 2,
                             axis=1)[:, 0]
    return np.where(count > 0, MAD_TO_STD * mid, np.nan)


def _solve(keep, values, features, columns, products, total):
    """
    The least-squares fit of each row's kept pixels.

    The normal matrix is ``total`` less the pixels left out (few: a sparse
    product).

    Parameters
    ----------
    keep : `~numpy.ndarray` of bool
        The pixels kept, rows by pixels.
    values : `~numpy.ndarray`
        The pixels' values (the shape of ``keep``).
    features : `~numpy.ndarray`
        The design, pixels by parameters (the dtype of ``values``).
    columns : `~numpy.ndarray`
        Its transpose, contiguous.
    products : `~numpy.ndarray`
        Per pixel, the products of its parameter pairs (pixels by
        parameters squared).
    total : `~numpy.ndarray`
        ``products`` summed over every pixel.

    Returns
    -------
    beta : `~numpy.ndarray`
        The coefficients, rows by parameters (float64).
    ata : `~numpy.ndarray`
        The normal matrices (the identity for rows without enough pixels).
    bad : `~numpy.ndarray` of bool
        The rows with no more than twice as many pixels as parameters.
    resid : `~numpy.ndarray`
        The residuals (the shape and dtype of ``values``).
    """
    from scipy import sparse

    n_par = features.shape[1]
    rows, cols = np.nonzero(~keep)
    dropped = sparse.csr_matrix(
        (np.ones(len(rows), dtype=values.dtype), (rows, cols)),
        shape=keep.shape)
    ata = (total - dropped @ products).reshape(-1, n_par, n_par).astype(
        float)
    atb = (values * keep) @ features
    bad = ~(ata[:, 0, 0] > 2 * n_par)
    ata[bad] = np.eye(n_par)
    atb = atb.astype(float)
    atb[bad] = 0.0
    beta = np.linalg.solve(ata, atb[..., None])[..., 0]
    coef = beta.astype(values.dtype)
    resid = np.subtract(values, coef[:, :1])
    for k in range(1, n_par):
        resid -= coef[:, k:k + 1] * columns[k]
    return beta, ata, bad, resid


def _fit(values, usable, features):
    """
    Per row, a plane plus ``r**2`` fitted to the usable pixels, residuals
    beyond `CLIP_SIGMA` standard deviations left out (`CLIP_PASSES` times:
    the first by the median absolute residual, then by the kept pixels'
    rms).

    Parameters
    ----------
    values : `~numpy.ndarray`
        The pixels' values, rows by pixels (0 where not usable).
    usable : `~numpy.ndarray` of bool
        The usable pixels (the shape of ``values``).
    features : `~numpy.ndarray`
        The design shared by the rows, pixels by parameters, ``r**2``
        last.

    Returns
    -------
    c : `~numpy.ndarray`
        Per row, the coefficient of ``r**2``.
    var_c : `~numpy.ndarray`
        Its variance (NaN for a row without enough pixels).
    """
    n_par = features.shape[1]
    features = features.astype(values.dtype)
    columns = np.ascontiguousarray(features.T)
    products = (features[:, :, None] * features[:, None, :]).reshape(
        len(features), -1)
    total = products.sum(axis=0, dtype=float).astype(values.dtype)
    keep = usable
    for it in range(CLIP_PASSES + 1):
        beta, ata, bad, resid = _solve(keep, values, features, columns,
                                       products, total)
        if it == CLIP_PASSES:
            break
        with np.errstate(invalid='ignore', divide='ignore'):
            if it == 0:
                scale = _robust_scale(resid, keep)
            else:
                scale = np.sqrt(_kept_squares(resid, keep) / ata[:, 0, 0])
            keep = usable & (np.abs(resid) <= (CLIP_SIGMA * scale[:, None]
                                               ).astype(values.dtype))
    with np.errstate(invalid='ignore', divide='ignore'):
        var = (_kept_squares(resid, keep) / (ata[:, 0, 0] - n_par)
               / CLIPPED_VARIANCE)
        var_c = var * np.linalg.inv(ata)[:, -1, -1]
    var_c[bad] = np.nan
    return beta[:, -1], var_c


def _kept_squares(resid, keep):
    """
    Per row, the sum of the kept residuals' squares.

    Parameters
    ----------
    resid, keep : `~numpy.ndarray`
        As in `_robust_scale`.

    Returns
    -------
    squares : `~numpy.ndarray`
        Per row (float64).
    """
    resid = np.where(keep, resid, 0)
    return np.einsum('np,np->n', resid, resid, dtype=float)


def _ring_offsets(kind, inner, outer, theta, reach):
    """
    The pixel offsets, about a star's nearest pixel, of the annulus and of
    the wider ring.

    Parameters
    ----------
    kind, inner, outer, theta, reach
        The annulus' geometry, as `_shape` gives it.

    Returns
    -------
    dx, dy : `~numpy.ndarray`
        The offsets (pixels) of the pixels of either ring.
    in_annulus : `~numpy.ndarray` of bool
        Which of them are the annulus'.
    """
    offsets = np.arange(-reach, reach + 1, dtype=float)
    dy, dx = (a.ravel() for a in np.meshgrid(offsets, offsets,
                                              indexing='ij'))
    cos, sin = math.cos(theta), math.sin(theta)
    u = dx * cos + dy * sin
    v = dy * cos - dx * sin
    out_norm = _norm(kind, u, v, outer)
    in_ann = (_norm(kind, u, v, inner) >= 1.0) & (out_norm <= 1.0)
    in_wide = (out_norm > 1.0) & (
        _norm(kind, u, v, tuple(WIDE_RING_FACTOR * s for s in outer)) <= 1.0)
    ring = in_ann | in_wide
    return dx[ring], dy[ring], in_ann[ring]


def annulus_curvature(frame, annulus, n_pix, *, noise_factor=1.0):
    """
    The flux bias a curved background makes of each annulus' sky level.

    About each annulus, a plane plus :math:`c\\,r^2` (``r`` the distance
    from its centre) is fitted to the usable pixels of the annulus and of a
    wider ring from its outer boundary out to `WIDE_RING_FACTOR` times it
    (both about the pixel nearest the centre; usable: finite, unmasked, on
    the frame, outside the circle of the star's aperture's area, and off
    the other listed stars: farther from their centres than the annulus'
    smallest outer size or their aperture's radius, whichever is larger;
    residuals beyond `CLIP_SIGMA` standard deviations left out). The
    implied bias of a flux over ``n_pix`` pixels with that annulus' sky
    subtracted is ``n_pix * c * (<r**2>_aperture - <r**2>_annulus)``, the
    aperture taken as the circle of its area (``<r**2> = n_pix / (2
    pi)``). Positive: the flux is too high (the
    background peaks at the star). A linear gradient does not enter, in a
    whole ring or a partial one.

    Parameters
    ----------
    frame : Frame
        The frame (its ``data`` and ``mask``).
    annulus : photutils annulus
        `~photutils.aperture.CircularAnnulus`,
        `~photutils.aperture.EllipticalAnnulus` or
        `~photutils.aperture.RectangularAnnulus`, one or more positions.
    n_pix : float or array_like
        The apertures' pixel counts (one, or one per annulus position).
    noise_factor : float, optional
        The factor by which correlated noise inflates the variance of a
        mean of pixels (1 for white noise).

    Returns
    -------
    result : dict of `~numpy.ndarray` or None
        ``bias`` (data unit) and ``error`` (its standard error) per
        annulus position, NaN where not checked; ``checked`` (bool): the
        rows with enough usable pixels in both rings (`MIN_RING_FRACTION`
        of each ring's, at least `MIN_RING_PIXELS`). None for an annulus
        of another kind.

    Examples
    --------
    A star on a background that peaks at it:

    >>> import numpy as np
    >>> from photutils.aperture import CircularAnnulus
    >>> from ccdphot_ext.utils.inputs import as_frame
    >>> from ccdphot_ext.background.annuluscurvature import (
    ...     annulus_curvature)
    >>> yy, xx = np.mgrid[0:101, 0:101]
    >>> img = 100.0 - 0.01 * ((xx - 50.0) ** 2 + (yy - 50.0) ** 2)
    >>> res = annulus_curvature(as_frame(img), CircularAnnulus((50, 50), 8, 14),
    ...                         50.0)
    >>> round(float(res['bias'][0]))  # 50 * 0.01 * (128.3 - 8.0)
    60
    """
    geometry = _shape(annulus)
    if geometry is None:
        return None
    kind, inner, outer, theta, mask_radius, reach = geometry
    data = np.asarray(frame.data)
    ny, nx = data.shape
    positions = np.atleast_2d(np.asarray(annulus.positions, dtype=float))
    n = len(positions)
    n_pix = np.broadcast_to(np.asarray(n_pix, dtype=float), (n,))
    usable = np.isfinite(data)
    if frame.mask is not None:
        usable &= ~np.asarray(frame.mask, dtype=bool)
    # a star's own aperture (the circle of its area) is left out of its
    # rings, and its neighbours out to their annulus' outer size (or their
    # aperture's, if larger): their light, wings too
    r_ap = np.sqrt(np.where(np.isfinite(n_pix), n_pix, 0.0) / math.pi)
    r_star = _half_pixels(np.maximum(r_ap, mask_radius))
    count = _source_count(data.shape, positions, r_star)
    flat = data.ravel()
    usable = usable.ravel()
    dx, dy, in_ann = _ring_offsets(kind, inner, outer, theta, reach)
    order = np.argsort(~in_ann, kind='stable')  # the annulus' pixels first
    dx, dy = dx[order], dy[order]
    n_ann_full = int(in_ann.sum())
    n_wide_full = len(dx) - n_ann_full
    steps = (dy * nx + dx).astype(np.intp)
    # r**2 about the pixel nearest the centre: about the centre itself it
    # differs by a plane, which the fit's plane takes up
    scale = float(reach)
    features = np.column_stack([surface_design(dx / scale, dy / scale),
                                (dx * dx + dy * dy) / scale ** 2])
    # the annulus' <r**2> about a centre off its nearest pixel by (fx, fy)
    ann_r2 = np.mean(dx[:n_ann_full] ** 2 + dy[:n_ann_full] ** 2)
    ann_x, ann_y = np.mean(dx[:n_ann_full]), np.mean(dy[:n_ann_full])
    need_ann = max(MIN_RING_FRACTION * n_ann_full, MIN_RING_PIXELS)
    need_wide = max(MIN_RING_FRACTION * n_wide_full, MIN_RING_PIXELS)
    bias = np.full(n, np.nan)
    error = np.full(n, np.nan)
    checked = np.zeros(n, dtype=bool)
    for lo in range(0, n, BATCH):
        pos = positions[lo:lo + BATCH]
        rows = slice(lo, lo + len(pos))
        finite = np.isfinite(pos).all(axis=1)
        centre = np.where(finite[:, None], np.round(pos), 0.0).astype(np.intp)
        cx, cy = centre[:, 0], centre[:, 1]
        edge = ~finite | (cx < reach) | (cx >= nx - reach) | (cy < reach) | (
            cy >= ny - reach)
        index = (cy * nx + cx)[:, None] + steps
        if edge.any():
            xs = cx[edge, None] + dx.astype(np.intp)
            ys = cy[edge, None] + dy.astype(np.intp)
            on = ((xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
                  & finite[edge, None])
            index[edge] = np.where(on, ys * nx + xs, 0)
        r2 = dx * dx + dy * dy
        own = r2 < r_star[rows, None] ** 2
        good = (usable[index] & (count[index] == own)
                & (r2 >= r_ap[rows, None] ** 2))
        if edge.any():
            good[edge] &= on
        values = np.where(good, flat[index], 0.0)
        n_ann = good[:, :n_ann_full].sum(axis=1)
        n_wide = good[:, n_ann_full:].sum(axis=1)
        ok = (n_ann >= need_ann) & (n_wide >= need_wide)
        # about each row's mean (every eighth pixel's), in single
        # precision: the fit's sums
        with np.errstate(invalid='ignore', divide='ignore'):
            ref = (values[:, ::8].sum(axis=1)
                   / np.maximum(good[:, ::8].sum(axis=1), 1))
        values -= ref[:, None]
        values = values.astype(np.float32)
        values *= good
        good &= ok[:, None]
        c, var_c = _fit(values, good, features)
        c = c / scale ** 2
        err_c = np.sqrt(var_c * noise_factor) / scale ** 2
        fx, fy = (pos - centre).T
        r2_ann = ann_r2 - 2 * fx * ann_x - 2 * fy * ann_y + fx * fx + fy * fy
        npx = n_pix[rows]
        lever = npx * (npx / (2 * math.pi) - r2_ann)
        good_rows = ok & np.isfinite(c) & np.isfinite(err_c)
        bias[rows] = np.where(good_rows, lever * c, np.nan)
        error[rows] = np.where(good_rows, np.abs(lever) * err_c, np.nan)
        checked[rows] = good_rows
    return {'bias': bias, 'error': error, 'checked': checked}


def _annulus_of(sky, x, y):
    """
    The annulus of an annulus sky whose centres are the rows'.

    Parameters
    ----------
    sky, x, y
        As in `~ccdphot_ext.background.skyrules.SkyRowRule.doubt`.

    Returns
    -------
    annulus : photutils annulus or None
        The sky's annulus, when it has one per row centred within half a
        pixel of each (non-finite centres match any); else None.
    """
    annulus = sky.meta.get('annulus_aperture') if sky.meta else None
    if annulus is None or sky.is_global:
        return None
    positions = np.atleast_2d(np.asarray(annulus.positions, dtype=float))
    xy = np.column_stack([np.atleast_1d(np.asarray(x, dtype=float)).ravel(),
                          np.atleast_1d(np.asarray(y, dtype=float)).ravel()])
    if positions.shape != xy.shape:
        return None
    with np.errstate(invalid='ignore'):
        near = np.abs(positions - xy) <= 0.5
    if not np.all(near | ~np.isfinite(xy)):
        return None
    return annulus


def check_annulus_curvature(sky, frame, x, y, n_pix, flux_err, *,
                            stacklevel=3):
    """
    Which rows a curved background about their stars biases through their
    annulus sky, and a warning naming them.

    For a sky of one level per annulus (`~ccdphot_ext.SkyEstimate.from_annulus`)
    whose annuli are centred on the rows, `annulus_curvature` estimates
    each row's flux bias, less what the sky corrected already for the
    frame's own curvature (``meta['surface_bend']``, see
    :ref:`annulus-frame-curvature`); a row is flagged where it exceeds both
    `CURVATURE_NSIGMA` of its own standard error and `CURVATURE_FRACTION`
    of the row's flux error. An `~astropy.utils.exceptions.AstropyUserWarning`
    names the rows (their ``id``, counted from 1) and the estimated bias.
    Rows whose annulus the sky doubted already where it was made (a
    neighbour's aperture in it, a star's light, few usable pixels: flagged
    and warned of then) are not flagged again. Other skies, and an annulus
    sky measured at other positions, are not checked.

    Parameters
    ----------
    sky, frame, x, y, n_pix, flux_err
        The sky subtracted, the frame measured, the apertures' centres,
        their (weighted) pixel counts and flux errors (data unit), as in
        `~ccdphot_ext.background.skyrules.SkyRowRule.doubt`.
    stacklevel : int, optional
        As in `warnings.warn`, counted from the caller of this function.

    Returns
    -------
    curved : bool or `~numpy.ndarray` of bool
        Per aperture: True where the curvature's bias is flagged.
    messages : list of str
        The warning said (when a row is flagged) and a note of the rows not
        checked (their rings off the frame or masked), if any.
    """
    return ANNULUS_CURVATURE.check(sky, frame, x, y, n_pix, flux_err,
                                   stacklevel=stacklevel + 1)


class AnnulusCurvatureRule(SkyRowRule):
    """`check_annulus_curvature`'s rule: an annulus sky on a background
    that curves about the stars (flag 64), with a note of the rows not
    checked."""

    flag = FLAG_SKY_ANNULUS

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        none = no_rows(x, y, n_pix, flux_err)
        shape = np.shape(none)
        annulus = _annulus_of(sky, x, y)
        if annulus is None:
            return none, None
        factor = float(sky.meta.get('noise_correlation_factor', 1.0) or 1.0)
        n_pix = np.broadcast_to(np.asarray(n_pix, dtype=float),
                                shape).ravel()
        flux_err = np.broadcast_to(np.asarray(flux_err, dtype=float),
                                   shape).ravel()
        res = annulus_curvature(frame, annulus, n_pix,
                                noise_factor=factor if factor > 0 else 1.0)
        if res is None:
            return none, None
        bias, error = res['bias'], res['error']
        applied = sky.meta.get('surface_bend')
        if applied is not None:  # the frame's curvature, corrected already
            bias = bias + n_pix * np.ravel(applied)
        with np.errstate(invalid='ignore', divide='ignore'):
            ratio = bias / flux_err
            curved = (res['checked']
                      & (np.abs(bias) > CURVATURE_NSIGMA * error)
                      & (np.abs(ratio) > CURVATURE_FRACTION))
        doubted = sky._flagged_levels()
        if doubted is not None:  # flagged, and warned of, where it was made
            curved &= ~np.ravel(doubted)
        return curved.reshape(shape)[()], (ratio, res['checked'])

    def message(self, rows, n_bad, context):
        ratio = context[0]
        curved = np.ravel(rows)
        ids = np.flatnonzero(curved) + 1
        shown = ', '.join(str(i) for i in ids[:10]) + (
            ', ...' if n_bad > 10 else '')
        lo, hi = np.min(ratio[curved]), np.max(ratio[curved])
        size = (f'{lo:+.2f}' if lo == hi else f'{lo:+.2f} to {hi:+.2f}')
        return (
            f'the background curves about {n_bad} of {curved.size} '
            f'aperture(s) (id {shown}): fitted over the annulus and a ring '
            f'out to {WIDE_RING_FACTOR:g} times its size, the curvature '
            f'biases their annulus sky by an estimated {size} flux errors '
            f'(flagged {FLAG_SKY_ANNULUS}; a positive bias: the flux is too '
            'high). The estimate is a quadratic\'s; a background peaked at '
            'the star (a galaxy, a nebula) biases it more. Nothing was '
            'corrected: model the background (a galaxy model, a '
            'difference image) or use an annulus nearer the star')

    def notes(self, rows, context):
        checked = context[1]
        unchecked = int((~checked).sum())
        if not unchecked:
            return []
        return [
            f'background curvature not checked for {unchecked} of '
            f'{checked.size} aperture(s): fewer than '
            f'{MIN_RING_FRACTION:.0%} of the pixels of their annulus or of '
            f'the ring out to {WIDE_RING_FACTOR:g} times it usable (the '
            'frame\'s edge, masked pixels, other stars)']


ANNULUS_CURVATURE = AnnulusCurvatureRule()
