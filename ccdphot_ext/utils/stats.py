# Licensed under a 3-clause BSD style license - see LICENSE
"""
Small statistical building blocks the sky and noise estimators share: the
factor that turns a median absolute deviation into a Gaussian standard
deviation, the error of a Gaussian sample's median over its mean's, and
the design matrix of a low-order surface (a plane, a quadratic) fitted by
least squares; the skew of a sky read in a window about its level (a
whole-frame level's and a Background2D map's, without the gain).
"""

import math

import numpy as np

__all__ = []  # internal module

#: The standard deviation of a Gaussian over its median absolute deviation,
#: ``1 / Phi**-1(3 / 4)``: the factor of `~astropy.stats.mad_std` (the same
#: float, so that a robust scatter computed here and one from astropy agree
#: to the bit).
MAD_TO_STD = 1.482602218505602

#: The standard error of the median of many Gaussian values over that of
#: their mean, ``sqrt(pi / 2)`` (1.2533...): the median's efficiency
#: factor (``var(median) = (pi / 2) sigma**2 / n`` for large ``n``).
MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2.0)


def lagged_differences(pixels, bad, lag=1, *, second=False):
    """
    The differences of pixels ``lag`` columns apart along the rows: the
    pixel noise without the sky's level or slope.

    Parameters
    ----------
    pixels : 2-D `~numpy.ndarray`
        The pixels.
    bad : 2-D `~numpy.ndarray` of bool
        The pixels to leave out.
    lag : int, optional
        The columns between the pixels differenced (positive, under half
        the width for ``second``).
    second : bool, optional
        Second differences, ``p(x + lag) - 2 p(x) + p(x - lag)``, at
        ``x``, which a slope does not enter; else first differences,
        ``p(x) - p(x - lag)``, at ``x``.

    Returns
    -------
    step : 2-D `~numpy.ndarray`
        The differences, the shape of ``pixels`` (NaN where a pixel
        differenced lies beyond the frame).
    left_out : 2-D `~numpy.ndarray` of bool
        True where a difference holds a ``bad`` pixel or none is taken.
    terms : float
        The variance of a difference over a pixel's for independent
        pixels of one noise (2, or 6 for second differences).
    """
    step = np.full(pixels.shape, np.nan)
    left_out = np.array(bad, dtype=bool, copy=True)
    # (infinite pixels give NaN or infinite differences, which the caller
    # leaves out: no numpy warning)
    with np.errstate(invalid='ignore', over='ignore'):
        if second:
            step[:, lag:-lag] = (pixels[:, 2 * lag:]
                                 - 2.0 * pixels[:, lag:-lag]
                                 + pixels[:, :-2 * lag])
            left_out[:, lag:-lag] |= bad[:, 2 * lag:] | bad[:, :-2 * lag]
            left_out[:, -lag:] = True
            terms = 6.0
        else:
            step[:, lag:] = pixels[:, lag:] - pixels[:, :-lag]
            left_out[:, lag:] |= bad[:, :-lag]
            terms = 2.0
    left_out[:, :lag] = True
    return step, left_out, terms


def difference_noise(differences, terms=2.0, axis=None):
    """
    The pixel noise that differences of pixels (`lagged_differences`)
    give: their median absolute deviation about their median, as a
    Gaussian sigma (`MAD_TO_STD`), over the root of ``terms``. NaN values
    are left out; NaN where none is left (``axis``: as in
    `numpy.nanmedian`).
    """
    import warnings

    differences = np.asarray(differences, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # none left
        centre = np.nanmedian(differences, axis=axis, keepdims=True)
        mad = np.nanmedian(np.abs(differences - centre), axis=axis)
    return MAD_TO_STD * mad / math.sqrt(terms)


def surface_design(u, v, *, quadratic=False, degree=None):
    """
    The design matrix of a least-squares surface in two coordinates.

    Parameters
    ----------
    u, v : array_like
        The two coordinates of each point (broadcast, then flattened), as
        floats (offsets from a centre, for a well-conditioned fit).
    quadratic : bool, optional
        False (default): the plane's columns ``1, u, v``; True: a quadratic
        surface's, ``1, u, v, u**2, v**2, u * v``.
    degree : int, optional
        A polynomial surface of this degree (1 or more; overrides
        ``quadratic``): the quadratic's columns, then for each higher
        degree ``d`` the terms ``u**d, u**(d - 1) v, ..., v**d``
        (`surface_terms`).

    Returns
    -------
    design : `~numpy.ndarray`
        Shape ``(n, 3)`` or ``(n, 6)`` (float64), ``n`` the points.

    Examples
    --------
    >>> from ccdphot_ext.utils.stats import surface_design
    >>> surface_design([0.0, 1.0], [2.0, 3.0]).tolist()
    [[1.0, 0.0, 2.0], [1.0, 1.0, 3.0]]
    """
    u, v = np.broadcast_arrays(np.asarray(u, dtype=float),
                               np.asarray(v, dtype=float))
    u, v = u.ravel(), v.ravel()
    terms = surface_terms(u, v, quadratic=quadratic, degree=degree)
    return np.column_stack([np.ones(u.size), *terms[1:]])


def weighted_lstsq(design, values, weights):
    """
    The weighted least-squares coefficients of a design (the fit of a
    surface to mesh levels, to annulus levels).

    Parameters
    ----------
    design : `~numpy.ndarray`
        ``(n, p)``, e.g. `surface_design`'s.
    values : `~numpy.ndarray`
        ``(n,)``: the values fitted.
    weights : `~numpy.ndarray`
        ``(n,)``: each value's weight, one over its error (0: left out).

    Returns
    -------
    coef : `~numpy.ndarray`
        ``(p,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext.utils.stats import surface_design, weighted_lstsq
    >>> u = np.array([0.0, 1.0, 2.0, 3.0])
    >>> design = surface_design(u, 0.0 * u)[:, :2]
    >>> weighted_lstsq(design, 1.0 + 2.0 * u, np.ones(4)).round(6).tolist()
    [1.0, 2.0]
    """
    return np.linalg.lstsq(design * weights[:, None], values * weights,
                           rcond=None)[0]


def surface_terms(u, v, *, quadratic=False, degree=None):
    """
    The terms of a low-order surface, to evaluate one from its
    coefficients: ``sum(c * t for c, t in zip(coef, terms))``.

    Parameters
    ----------
    u, v : float or array_like
        The two coordinates (numpy broadcasts them in the terms: an outer
        grid from a column and a row).
    quadratic : bool, optional
        False (default): the plane's terms ``1, u, v``; True: a quadratic
        surface's, ``1, u, v, u**2, v**2, u * v`` (the columns of
        `surface_design`, in its order).
    degree : int, optional
        A polynomial surface of this degree (1 or more; overrides
        ``quadratic``): beyond the quadratic's terms, ``u**d, u**(d - 1)
        v, ..., v**d`` for each degree ``d`` in turn.

    Returns
    -------
    terms : list
        The terms, the constant one as the float 1.

    Examples
    --------
    >>> from ccdphot_ext.utils.stats import surface_terms
    >>> surface_terms(2.0, 3.0, quadratic=True)
    [1.0, 2.0, 3.0, 4.0, 9.0, 6.0]
    >>> len(surface_terms(2.0, 3.0, degree=4))
    15
    """
    if degree is None:
        degree = 2 if quadratic else 1
    if int(degree) != degree or degree < 1:
        raise ValueError(f'degree must be a positive integer, got {degree}')
    terms = [1.0, u, v]
    if degree >= 2:
        terms += [u * u, v * v, u * v]
    for d in range(3, int(degree) + 1):
        terms += [u ** (d - k) * v ** k for k in range(d + 1)]
    return terms


def unit_coordinates(shape, x, y):
    """
    Pixel positions on a frame's unit axes: ``u`` (of the columns) and
    ``v`` (of the rows), each running from -1 at the first pixel to 1 at
    the last, the coordinates in which the frame's large-scale surfaces
    (its sky trend) are fitted and evaluated.

    Parameters
    ----------
    shape : tuple of int
        The frame's shape ``(ny, nx)``.
    x, y : float or array_like
        Column and row positions (pixel centres at integers).

    Returns
    -------
    u, v : float or `~numpy.ndarray`
        Shaped as ``x`` and ``y``.

    Examples
    --------
    >>> from ccdphot_ext.utils.stats import unit_coordinates
    >>> [float(c) for c in unit_coordinates((5, 11), 5.0, 4.0)]
    [0.0, 1.0]
    """
    ny, nx = shape
    return (2.0 * np.asarray(x, dtype=float) / max(nx - 1, 1) - 1.0,
            2.0 * np.asarray(y, dtype=float) / max(ny - 1, 1) - 1.0)


def frame_surface(coef, shape, x=None, y=None):
    """
    A quadratic surface on a frame's unit axes (`unit_coordinates`), at
    given positions or at every pixel.

    Parameters
    ----------
    coef : sequence of float
        Its six coefficients: of 1, ``u``, ``v``, ``u**2``, ``v**2`` and
        ``u v`` (`surface_terms`).
    shape : tuple of int
        The frame's shape ``(ny, nx)``.
    x, y : float or array_like, optional
        Column and row positions; both omitted: every pixel of the frame.

    Returns
    -------
    surface : float or `~numpy.ndarray`
        At the positions (their broadcast shape), or shaped ``shape``.

    Examples
    --------
    >>> from ccdphot_ext.utils.stats import frame_surface
    >>> coef = [1.0, 2.0, 0.0, 0.0, 0.0, 0.0]  # 1 + 2 u
    >>> frame_surface(coef, (3, 5)).tolist()[0]
    [-1.0, 0.0, 1.0, 2.0, 3.0]
    >>> float(frame_surface(coef, (3, 5), 4.0, 0.0))
    3.0
    """
    if x is None and y is None:
        x, y = np.arange(shape[1])[None, :], np.arange(shape[0])[:, None]
    u, v = unit_coordinates(shape, x, y)
    terms = surface_terms(u, v, quadratic=True)
    # (the constant's term is 1.0: the u v term gives the full shape)
    return sum(float(c) * t for c, t in zip(coef, terms, strict=True))


def skew_ratio(m3, var, n, *, response=1.0, spread=None):
    """
    The third central moment over the variance, ``mu3 / var``, of sky
    pixels read in a window about their level, and its sampling error:
    the one reading of a sky's skew behind a gain-less level's Poisson
    bias (``skew_bias_factor`` times it, for a whole-frame level and a
    Background2D map alike).

    Parameters
    ----------
    m3 : float
        The pixels' mean cubed deviation in the window (data unit cubed,
        or standardised pixels' with ``var=1``).
    var : float
        The variance the moment is read against (positive).
    n : int
        The pixels read.
    response : float, optional
        The share of the sky's moment ``m3`` holds (default 1): a window
        of ``+-c`` sigma keeps part of the tails' moment and is tilted by
        the estimator's offset (``window_skew_response``); a median's
        pixels cubed about the median hold ``1 + 3 b`` times it (``b``
        the median's bias factor, first order).
    spread : float, optional
        The standard deviation of the pixels' cubed deviations (less
        ``3 var`` times the deviations), measured; None (default): a
        Gaussian sample's, ``sqrt(6) var**1.5``.

    Returns
    -------
    ratio, error : float
        ``m3 / response / var`` and its error, ``spread / sqrt(n) /
        response / var`` (``sqrt(6 var / n)`` without ``spread``).

    Examples
    --------
    >>> from ccdphot_ext.utils.stats import skew_ratio
    >>> ratio, error = skew_ratio(4.0, 2.0, 600)
    >>> float(ratio), round(error, 6)
    (2.0, 0.141421)
    """
    ratio = m3 / response / var
    if spread is None:
        return ratio, math.sqrt(6.0 / n * var)
    return ratio, spread / math.sqrt(n) / response / var
