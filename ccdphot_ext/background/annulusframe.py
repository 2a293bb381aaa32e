# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The frame's large-scale curvature under annulus skies.

A sky that curves over the whole frame (vignetting, scattered light) is
higher, or lower, over an annulus than over the aperture inside it: for a
quadratic sky the annulus mean exceeds the aperture's by :math:`(S_{xx} +
S_{yy}) / 4 \\, (\\langle\\rho^2\\rangle_{annulus} -
\\langle\\rho^2\\rangle_{aperture})`. One annulus cannot see that from its
own pixels (`~ccdphot_ext.background.annuluscurvature` flags only the
cases large enough to show), but the annulus levels of the frame together
can: their positions span the frame, and a quadratic surface fitted to
them measures its curvature to a small fraction of any one level's error.

`frame_surface` fits that surface (the design of
`~ccdphot_ext.utils.stats.surface_design`, each level's row the mean of the
terms over the pixels its annulus used) and keeps it when its curvature is
significant and it explains the levels; `surface_corrections` turns it
into each annulus' correction (the surface's mean over the annulus' pixels
less its mean over the aperture's), that correction's error, and the
surface's spread over the annulus (a gradient across a ring widens its
pixels' scatter, which is no noise of the aperture's pixels).
"""

import math

import numpy as np
from photutils.aperture import CircularAnnulus

from ..aperture.circular import radians
from ..aperture.utils import aperture_positions, n_positions
from ..utils.inputs import Frame
from ..utils.stats import surface_design, surface_terms, weighted_lstsq
from .annulus import annulus_pixels, own_apertures

__all__ = ['frame_surface', 'surface_corrections', 'wing_offsets']

#: At least this many annulus levels (unflagged, finite) to fit a surface,
MIN_LEVELS = 24
#: and at least this fraction of the annuli with a level (a surface from
#: the few clear annuli of a crowded frame would be extrapolated to the
#: others).
MIN_LEVEL_FRACTION = 0.5
#: The quadratic terms must be significant at this chance (chi-square of
#: their three coefficients against their covariance) ...
CURVATURE_CHANCE = 1e-3
#: ... and the surface must leave the levels scattered within their errors
#: at this chance.
FIT_CHANCE = 0.01
#: A first fit at the annuli's centres gates the exact one at this chance.
PRECHECK_CHANCE = 0.05
#: Levels off the surface by more than this many of their errors are left
#: out of the fit (a star in the annulus), `OUTLIER_PASSES` times.
OUTLIER_SIGMA = 5.0
OUTLIER_PASSES = 3
#: The spread removed from an annulus' variance is at most this fraction
#: of it.
MAX_SPREAD_FRACTION = 0.75


def _scaled(frame_shape):
    """The centre and half-size of the frame (pixels): the surface's
    coordinates are ``(x - xc) / s`` and ``(y - yc) / s``."""
    ny, nx = frame_shape
    return (nx - 1) / 2.0, (ny - 1) / 2.0, max(ny, nx) / 2.0


def _terms(x, y, frame_shape):
    """The surface's five non-constant terms at pixel positions, stacked
    on a last axis (`~ccdphot_ext.utils.stats.surface_terms`)."""
    xc, yc, s = _scaled(frame_shape)
    terms = surface_terms((np.asarray(x, dtype=float) - xc) / s,
                          (np.asarray(y, dtype=float) - yc) / s,
                          quadratic=True)
    return np.stack(np.broadcast_arrays(*terms[1:]), axis=-1)


def _offset_sums(weights, dx, dy):
    """
    Per row, the sums of ``1, dx, dy, dx**2, dy**2, dx dy`` over the pixels
    of weight 1 (``weights`` ``(m, k)``; ``dx``, ``dy`` broadcast to it).
    """
    w = weights.astype(float)
    dx, dy = np.broadcast_arrays(dx, dy)
    return np.stack([w.sum(axis=1)] + [
        np.einsum('mk,mk->m', w, t) for t in (dx, dy, dx * dx, dy * dy,
                                              dx * dy)], axis=1)


def _ring_sums(weights, ring, frac):
    """
    `_offset_sums` for circular annuli, through the ring's candidate
    offsets: each row's offsets are the candidates' plus its centre's
    ``frac`` (``floor(position) - position``, ``(m, 2)``, x and y), so the
    sums are the candidates' moments (one matrix product) shifted.
    """
    ox, oy = ring.ox.astype(float), ring.oy.astype(float)
    base = weights.astype(float) @ np.column_stack(
        [np.ones_like(ox), ox, oy, ox * ox, oy * oy, ox * oy])
    n, sx, sy, sxx, syy, sxy = base.T
    fx, fy = frac[:, 0], frac[:, 1]
    return np.column_stack([
        n, sx + fx * n, sy + fy * n,
        sxx + 2 * fx * sx + fx * fx * n,
        syy + 2 * fy * sy + fy * fy * n,
        sxy + fy * sx + fx * sy + fx * fy * n])


def annulus_moments(frame, annulus, excluded):
    """
    Per annulus, the moments of the offsets from its centre of the pixels
    its level used.

    The pixels are those `~ccdphot_ext.background.annulus.annulus_pixels`
    gives the statistics (finite, unmasked, with a finite uncertainty, not
    excluded); the estimator's clipped pixels are not known here (a few
    per thousand on a clean sky).

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    annulus : photutils annulus
        The annuli.
    excluded : `~numpy.ndarray` of bool or None
        The pixels left out (`~ccdphot_ext.background.annulus.exclusion_map`).

    Returns
    -------
    moments : `~numpy.ndarray`
        ``(n, 5)``: the means of ``dx, dy, dx**2, dy**2, dx dy`` (pixels;
        NaN without a pixel).
    halves : tuple or None
        For circular annuli, ``(inner, outer, n_inner, n_outer)``: the
        same over the pixels of each annulus' inner half by area and of
        its outer half (``(n, 5)``), and their counts; None for other
        annuli.
    """
    positions = aperture_positions(annulus)
    n = len(positions)
    sums = np.zeros((n, 6))
    halves = None
    if isinstance(annulus, CircularAnnulus):
        inner_sums = np.zeros((n, 6))
        for idx, _, good, _, part in annulus_pixels(frame, annulus,
                                                    excluded, None):
            pos = positions[idx]
            frac = np.floor(pos) - pos
            sums[idx] = _ring_sums(good, part['ring'], frac)
            inner_sums[idx] = _ring_sums(good & part['inner'], part['ring'],
                                         frac)
        with np.errstate(invalid='ignore', divide='ignore'):
            outer_sums = sums - inner_sums
            halves = (inner_sums[:, 1:] / inner_sums[:, :1],
                      outer_sums[:, 1:] / outer_sums[:, :1],
                      inner_sums[:, 0], outer_sums[:, 0])
    else:
        ny, nx = frame.shape
        bad = ~np.isfinite(frame.data)
        if frame.mask is not None:
            bad |= np.asarray(frame.mask, dtype=bool)
        if frame.uncertainty is not None:
            bad |= ~np.isfinite(frame.uncertainty)
        # each pixel's flat index as the data (NaN where unusable): the
        # same gathering as the statistics' gives the pixels' places
        index = np.arange(ny * nx, dtype=float).reshape(ny, nx)
        index[bad] = np.nan
        for idx, values, good, _, _ in annulus_pixels(
                Frame(data=index), annulus, excluded, None):
            ys, xs = np.divmod(np.where(good, values, 0.0).astype(np.intp),
                               nx)
            pos = positions[idx]
            sums[idx] = _offset_sums(good, xs - pos[:, :1], ys - pos[:, 1:])
    with np.errstate(invalid='ignore', divide='ignore'):
        return sums[:, 1:] / sums[:, :1], halves


def _term_means(moments, positions, frame_shape):
    """
    The means of the surface's five non-constant terms (`_terms`) over
    pixels whose offsets from their annulus' centre have the ``moments``
    of `annulus_moments` (``(n, 5)``).
    """
    u0, v0 = _terms(positions[:, 0], positions[:, 1], frame_shape)[:, :2].T
    s = _scaled(frame_shape)[2]
    mx, my, mxx, myy, mxy = (moments[:, k] / s ** (1 + (k > 1))
                             for k in range(5))
    return np.column_stack([u0 + mx, v0 + my,
                            u0 * u0 + 2 * u0 * mx + mxx,
                            v0 * v0 + 2 * v0 * my + myy,
                            u0 * v0 + u0 * my + v0 * mx + mxy])


def _fit(design, level, error, rows):
    """
    The weighted least-squares surface of the levels of ``rows``, levels
    off it by more than `OUTLIER_SIGMA` of their errors left out.

    Returns
    -------
    coef, cov : `~numpy.ndarray`
        The coefficients and their covariance (scaled up by the reduced
        chi-square where that exceeds 1).
    chi2, dof : float, int
        The levels' chi-square about the surface and its degrees of
        freedom.
    used : `~numpy.ndarray` of bool
        The levels fitted.
    """
    used = rows.copy()
    n_par = design.shape[1]
    for _ in range(OUTLIER_PASSES + 1):
        coef = weighted_lstsq(design[used], level[used], 1.0 / error[used])
        with np.errstate(invalid='ignore', divide='ignore'):
            z = (level - design @ coef) / error  # (rows left out: any)
        keep = rows & (np.abs(z) <= OUTLIER_SIGMA)
        if np.array_equal(keep, used) or keep.sum() < 2 * n_par:
            break
        used = keep
    w = 1.0 / error[used]
    a = design[used] * w[:, None]
    cov = np.linalg.pinv(a.T @ a)
    chi2 = float(np.sum(z[used] ** 2))
    dof = int(used.sum()) - n_par
    cov = cov * max(1.0, chi2 / max(dof, 1))
    return coef, cov, chi2, dof, used


def _curvature_chi2(coef, cov):
    """The chi-square of the three quadratic coefficients against their
    covariance."""
    q = coef[3:6]
    try:
        return float(q @ np.linalg.solve(cov[3:6, 3:6], q))
    except np.linalg.LinAlgError:
        return 0.0


def frame_surface(frame, annulus, excluded, level, error, usable):
    """
    The quadratic surface of the frame's sky from its annulus levels, when
    its curvature is significant and it fits them.

    The levels of the ``usable`` annuli (finite, with a finite positive
    error; at least `MIN_LEVELS` of them and `MIN_LEVEL_FRACTION` of the
    finite levels) are fitted by a quadratic surface in the frame's coordinates,
    each weighted by its error, levels off it by more than `OUTLIER_SIGMA`
    errors left out; each level's design row is the mean of the surface's
    terms over its annulus' pixels (`annulus_moments`), so that a ring cut
    by the frame's edge or by excluded apertures is fitted as it was
    measured. The covariance is scaled up by the reduced chi-square where
    that exceeds 1. The surface is kept when the chi-square of its three
    quadratic coefficients exceeds the chance `CURVATURE_CHANCE` (3
    degrees of freedom) and the levels' chi-square about it stays within
    `FIT_CHANCE`; a first fit with the terms at the centres (the ring's
    own curvature term is then the same for every whole annulus and the
    constant takes it up) skips the rest below `PRECHECK_CHANCE`.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    annulus : photutils annulus
        The annuli.
    excluded : `~numpy.ndarray` of bool or None
        The pixels left out of the annuli
        (`~ccdphot_ext.background.annulus.exclusion_map`).
    level, error : `~numpy.ndarray`
        Per annulus, the level and its error.
    usable : `~numpy.ndarray` of bool
        The annuli whose levels may be fitted (unflagged).

    Returns
    -------
    surface : dict
        ``applied`` (bool), ``note`` (why, or why not), ``n_levels``,
        ``curvature_chi2`` and ``chi2``, ``dof`` where fitted; when
        applied also ``halves`` (of `annulus_moments`), ``coef`` and
        ``cov`` (of the constant and the terms of
        `~ccdphot_ext.utils.stats.surface_design`, quadratic, in the
        coordinates ``(x - xc) / s``, ``(y - yc) / s`` about the frame's
        centre, ``s`` half its larger side) and ``moments`` (of
        `annulus_moments`).
    """
    from scipy.stats import chi2 as chi2_distribution  # slow to import

    level = np.asarray(level, dtype=float)
    error = np.asarray(error, dtype=float)
    with np.errstate(invalid='ignore'):
        rows = (np.asarray(usable, dtype=bool) & np.isfinite(level)
                & np.isfinite(error) & (error > 0))
    n_rows = int(rows.sum())
    out = {'applied': False, 'n_levels': n_rows}
    need = max(MIN_LEVELS, MIN_LEVEL_FRACTION * np.count_nonzero(
        np.isfinite(level)))
    if n_rows < need:
        out['note'] = (f'{n_rows} usable annulus levels, fewer than '
                       f'{math.ceil(need)} (at least {MIN_LEVELS}, and '
                       f'{MIN_LEVEL_FRACTION:.0%} of the levels): no surface '
                       'fitted')
        return out
    positions = aperture_positions(annulus)
    centre = surface_design(*(_terms(positions[:, 0], positions[:, 1],
                                     frame.shape)[:, :2].T),
                            quadratic=True)
    coef, cov, chi2, dof, _ = _fit(centre, level, error, rows)
    q2 = _curvature_chi2(coef, cov)
    if not q2 > chi2_distribution.isf(PRECHECK_CHANCE, 3):
        out.update(curvature_chi2=q2, chi2=chi2, dof=dof,
                   note='no significant curvature of the levels over the '
                        f'frame (chi-square {q2:.3g}, 3 degrees of freedom)')
        return out
    moments, halves = annulus_moments(frame, annulus, excluded)
    mean = _term_means(moments, positions, frame.shape)
    rows &= np.isfinite(mean).all(axis=1)
    design = np.column_stack([np.ones(len(level)), np.nan_to_num(mean)])
    coef, cov, chi2, dof, used = _fit(design, level, error, rows)
    q2 = _curvature_chi2(coef, cov)
    out.update(curvature_chi2=q2, chi2=chi2, dof=dof,
               n_levels=int(used.sum()))
    if not q2 > chi2_distribution.isf(CURVATURE_CHANCE, 3):
        out['note'] = ('no significant curvature of the levels over the '
                       f'frame (chi-square {q2:.3g}, 3 degrees of freedom)')
        return out
    if not chi2 <= chi2_distribution.isf(FIT_CHANCE, max(dof, 1)):
        out['note'] = (
            f'the levels curve over the frame (chi-square {q2:.3g}) but a '
            f'quadratic surface leaves them scattered (chi-square {chi2:.4g} '
            f'for {dof} degrees of freedom): a sky shaped otherwise, not '
            'corrected')
        return out
    out.update(applied=True, coef=coef, cov=cov, moments=moments,
               halves=halves, positions=positions, shape=frame.shape,
               note=('a quadratic surface fitted to the annulus levels '
                     f'curves significantly (chi-square {q2:.3g}, 3 '
                     'degrees of freedom) and fits them (chi-square '
                     f'{chi2:.4g} for {dof}): each level corrected by the '
                     "surface's mean over its annulus less that over its "
                     'aperture'))
    return out


def wing_offsets(surface, std):
    """
    The inner-half test's significance the surface alone gives each
    circular annulus.

    Parameters
    ----------
    surface : dict
        `frame_surface`'s, applied.
    std : `~numpy.ndarray`
        Each annulus' std (as the test measured it).

    Returns
    -------
    z : `~numpy.ndarray` or None
        Per annulus, the surface's mean over the inner half of its pixels
        less that over its outer half (a ring cut by the frame's edge or by
        excluded apertures included: a gradient then enters), over the
        test's error ``std * sqrt(1 / n_inner + 1 / n_outer)`` (0 where a
        half is empty); None for other annuli.
    """
    if surface.get('halves') is None:
        return None
    inner, outer, n_in, n_out = surface['halves']
    positions, shape = surface['positions'], surface['shape']
    coef = surface['coef'][1:]
    with np.errstate(invalid='ignore', divide='ignore'):
        diff = (_term_means(inner, positions, shape)
                - _term_means(outer, positions, shape)) @ coef
        z = diff / (np.asarray(std, dtype=float)
                    * np.sqrt(1.0 / n_in + 1.0 / n_out))
    return np.where(np.isfinite(z), z, 0.0)


def _aperture_second_moments(aperture):
    """
    The second moments ``<dx**2>, <dy**2>, <dx dy>`` (pixels squared) of
    an aperture's area about its centre, or None for a shape not known.
    """
    name = type(aperture).__name__
    if name == 'CircularAperture':
        a = b = float(aperture.r)
        u2, v2 = a * a / 4.0, b * b / 4.0
    elif name == 'EllipticalAperture':
        a, b = float(aperture.a), float(aperture.b)
        u2, v2 = a * a / 4.0, b * b / 4.0
    elif isinstance(getattr(aperture, 'w', None), (int, float)) or name in (
            'RectangularAperture', 'BoxAperture'):
        w, h = float(aperture.w), float(aperture.h)
        u2, v2 = w * w / 12.0, h * h / 12.0
    else:
        return None
    theta = radians(getattr(aperture, 'theta', None))
    cos, sin = math.cos(theta), math.sin(theta)
    return (u2 * cos * cos + v2 * sin * sin,
            u2 * sin * sin + v2 * cos * cos,
            (u2 - v2) * sin * cos)


def aperture_means(annulus, exclude, frame_shape):
    """
    Per annulus, the means of the surface's terms over its own aperture
    (the one of ``exclude`` at its centre): the terms at the centre plus
    the aperture's second moments (those of its area; an aperture's
    pixel weights differ by a small fraction of a pixel squared), or at
    the centre alone where the aperture is not known.

    Returns
    -------
    mean : `~numpy.ndarray`
        ``(n, 5)``.
    known : `~numpy.ndarray` of bool
        The annuli whose aperture was known.
    """
    positions = aperture_positions(annulus)
    n = len(positions)
    mean = _terms(positions[:, 0], positions[:, 1], frame_shape)
    known = np.zeros(n, dtype=bool)
    own = None if exclude is None else own_apertures(exclude, n, positions)
    _, _, s = _scaled(frame_shape)
    for aperture, start in own or ():
        moments = _aperture_second_moments(aperture)
        if moments is None:
            continue
        rows = np.arange(start, start + n_positions(aperture))
        rows = rows[(rows >= 0) & (rows < n)]
        mxx, myy, mxy = (m / (s * s) for m in moments)
        mean[rows, 2] += mxx
        mean[rows, 3] += myy
        mean[rows, 4] += mxy
        known[rows] = True
    return mean, known


def surface_corrections(surface, annulus, exclude, frame_shape):
    """
    Each annulus level's correction for the frame's surface.

    Parameters
    ----------
    surface : dict
        `frame_surface`'s, applied.
    annulus, exclude
        The annuli and the apertures left out of them.
    frame_shape : tuple of int
        The frame's shape.

    Returns
    -------
    correction : `~numpy.ndarray`
        Per annulus, the surface's mean over its pixels less its mean over
        its aperture (data unit): subtracted from the level, it is the
        sky under the aperture.
    error : `~numpy.ndarray`
        The correction's standard error (from the surface's covariance).
    spread : `~numpy.ndarray`
        The surface's variance over the annulus' pixels from its gradient
        (data unit squared).
    known : `~numpy.ndarray` of bool
        The annuli whose own aperture was known (the others corrected to
        the surface at their centre).
    bend : `~numpy.ndarray`
        The part of ``correction`` the surface's curvature makes: its
        quadratic terms over the second moments of the annulus' pixels
        and of the aperture about the centre (without the gradient's part
        on a ring cut by the frame's edge or by excluded apertures).
    """
    coef, cov = surface['coef'][1:], surface['cov'][1:, 1:]
    moments = surface['moments']
    mean = _term_means(moments, surface['positions'], frame_shape)
    ap_mean, known = aperture_means(annulus, exclude, frame_shape)
    d = mean - ap_mean
    correction = d @ coef
    error = np.sqrt(np.maximum(np.einsum('nj,jk,nk->n', d, cov, d), 0.0))
    # the spread: the surface's gradient at the centre (per pixel) over the
    # covariance of the pixels' offsets (its curvature's own spread over a
    # ring, a few hundredths of a data unit squared here, left out)
    s = _scaled(frame_shape)[2]
    u0, v0 = ap_mean[:, 0], ap_mean[:, 1]
    gx = (coef[0] + 2 * coef[2] * u0 + coef[4] * v0) / s
    gy = (coef[1] + 2 * coef[3] * v0 + coef[4] * u0) / s
    mx, my, mxx, myy, mxy = moments.T
    spread = np.maximum(gx * gx * (mxx - mx * mx) + gy * gy * (myy - my * my)
                        + 2 * gx * gy * (mxy - mx * my), 0.0)
    # the curvature's part: its terms over the second moments about the
    # centre, the annulus' pixels' less the aperture's
    bend = (coef[2] * (mxx / s ** 2 - (ap_mean[:, 2] - u0 * u0))
            + coef[3] * (myy / s ** 2 - (ap_mean[:, 3] - v0 * v0))
            + coef[4] * (mxy / s ** 2 - (ap_mean[:, 4] - u0 * v0)))
    return correction, error, spread, known, bend
