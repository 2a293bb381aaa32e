# Licensed under a 3-clause BSD style license - see LICENSE
"""
Positions of the detections the frame's edge cuts (internal to
`~ccdphot_ext.find_stars`).

The windowed centroid weighs the light inside the frame only, so the frame
pulls a star near its edge inward: by 0.69 pixels at 0.3 pixels from the
first pixel's centre for a PSF sigma of 1.8 pixels. `refit_edge` fits
those stars with a Gaussian integrated over each pixel (flux, position and
width free) on the pixels inside the frame: the model knows that the
pixels beyond the edge are missing, so the truncation does not pull it.
"""

import math

import numpy as np
from scipy.optimize import least_squares
from scipy.special import erf

__all__ = ['refit_edge']

#: the cutout of a fit reaches this many PSF sigmas from the centroid
FIT_SIGMAS = 4.0

#: a fit is kept when it moves the centroid by at most this many PSF
#: sigmas (plus half a pixel) per axis: the truncation moves it by 0.4 sigma
#: at most (0.69 pixels at sigma 1.8); a larger move is a neighbour's light
#: or a failed fit, and the windowed centroid is kept
MAX_SHIFT_SIGMAS = 1.0

_SQRT2 = math.sqrt(2.0)


def _pixel_profile(centre, sigma, lo, n):
    """
    A unit Gaussian integrated over a row of pixels.

    Parameters
    ----------
    centre : float
        Its centre (pixel ``i`` spans ``i - 0.5`` to ``i + 0.5``).
    sigma : float
        Its sigma (pixels).
    lo : int
        The first pixel.
    n : int
        The number of pixels.

    Returns
    -------
    profile : `~numpy.ndarray`
        The Gaussian's share in pixels ``lo .. lo + n - 1``.
    """
    edges = (np.arange(lo, lo + n + 1, dtype=float) - 0.5 - centre) / (
        _SQRT2 * sigma)
    return 0.5 * np.diff(erf(edges))


def _fit_one(image, bad, x0, y0, x, y, flux, sigma):
    """
    The position of one star fitted to its cutout.

    A pixel-integrated circular Gaussian (flux, centre, sigma) is fitted
    to the good pixels by least squares.

    Parameters
    ----------
    image : `~numpy.ndarray`
        The sky-subtracted cutout.
    bad : `~numpy.ndarray` of bool
        Its pixels to leave out.
    x0, y0 : int
        The frame pixel of the cutout's corner.
    x, y, flux, sigma : float
        The first guess (frame pixels).

    Returns
    -------
    xy : tuple of float or None
        The fitted ``(x, y)``, or None when the fit fails (no convergence,
        a flux that is not positive, a sigma off by more than 4 times).
    """
    ny, nx = image.shape
    good = ~bad

    def residuals(p):
        model = p[0] * np.outer(_pixel_profile(p[2], p[3], y0, ny),
                                _pixel_profile(p[1], p[3], x0, nx))
        return (model - image)[good]

    try:
        fit = least_squares(residuals, [flux, x, y, sigma], method='lm',
                            max_nfev=200)
    except (ValueError, np.linalg.LinAlgError):
        return None
    amp, fx, fy, fs = fit.x
    if not (fit.success and amp > 0 and 0.25 * sigma < fs < 4.0 * sigma
            and np.isfinite(fit.x).all()):
        return None
    return fx, fy


def refit_edge(sky_rows, x, y, flux, sigma, edge):
    """
    Fitted positions of the detections at the frame's edge.

    Parameters
    ----------
    sky_rows : `~ccdphot_ext.detection.strips.SkyRows`
        The sky-subtracted frame.
    x, y : ndarray
        The windowed centroids (0-based pixels).
    flux : ndarray
        The detections' segment fluxes (the fits' first guess).
    sigma : ndarray
        The PSF sigma (pixels) of each detection (the first guess of the
        fitted width; the cutout reaches `FIT_SIGMAS` of it).
    edge : ndarray of bool
        The detections to fit.

    Returns
    -------
    x, y : ndarray
        Copies of ``x`` and ``y`` with the fitted positions of the edge
        detections whose fit converged, moved by at most `MAX_SHIFT_SIGMAS`
        sigmas plus half a pixel per axis and stays on the frame.
    n_fitted : int
        How many positions were replaced.
    """
    x, y = np.array(x, dtype=float), np.array(y, dtype=float)
    ny_frame, nx_frame = sky_rows.shape
    n_fitted = 0
    for i in np.flatnonzero(edge):
        s = float(sigma[i])
        if not (math.isfinite(s) and s > 0 and math.isfinite(flux[i])):
            continue
        half = max(int(math.ceil(FIT_SIGMAS * s)), 3)
        cx, cy = int(round(x[i])), int(round(y[i]))
        x0, x1 = max(cx - half, 0), min(cx + half + 1, nx_frame)
        y0, y1 = max(cy - half, 0), min(cy + half + 1, ny_frame)
        image, bad = sky_rows.rows(y0, y1)
        image, bad = image[:, x0:x1], bad[:, x0:x1]
        if np.count_nonzero(~bad) < 8:
            continue
        fitted = _fit_one(image, bad, x0, y0, x[i], y[i], float(flux[i]), s)
        if fitted is None:
            continue
        fx, fy = fitted
        limit = MAX_SHIFT_SIGMAS * s + 0.5
        if (abs(fx - x[i]) > limit or abs(fy - y[i]) > limit
                or not (-0.5 <= fx <= nx_frame - 0.5)
                or not (-0.5 <= fy <= ny_frame - 0.5)):
            continue
        x[i], y[i] = fx, fy
        n_fitted += 1
    return x, y, n_fitted
