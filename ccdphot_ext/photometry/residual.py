# Licensed under a 3-clause BSD style license - see LICENSE
"""
The residual-background rule: is the signal left in aperture pixels that a
threshold mask (or a global sky) leaves out significant?

One home for it: both photometry engines set
`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND` with it, and the systematics
checks report it.
"""

import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

__all__ = []  # internal: the rules behind flag 32 and the gradient warning

#: Bias of a flux, in units of its error, above which the variation of the
#: background across the frame makes `check_global_sky` warn that a single
#: global sky level is wrong for that aperture.
GRADIENT_NSIGMA = 2.0

#: Significance (in units of the map's own error,
#: `~ccdphot_ext.background.BackgroundVariation.error`) a background map's
#: offset must also reach before `check_global_sky` blames it: below it the
#: offset can be the map's own noise, which a large aperture would multiply
#: into a false alarm on a flat frame (at most 0.8% of flat frames reach it
#: anywhere).
MAP_NSIGMA = 3.0

#: Significance (in sigma) above which the background left outside a
#: threshold mask sets `~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`.
RESIDUAL_NSIGMA = 5.0


def residual_error(n_pix, sky_std, sky_error_on_mean):
    """
    The 1-sigma error of a sky-subtracted sum over ``n_pix`` pixels that
    should hold only sky: ``sqrt(n_pix * sky_std**2 + n_pix**2 *
    sky_error_on_mean**2)``, the pixels' own noise plus the error of the sky
    level subtracted from them.

    Scalars or arrays (broadcast); the result is a float or an array.

    Examples
    --------
    >>> from ccdphot_ext.photometry.residual import residual_error
    >>> float(residual_error(300, 53.139, 0.0))  # doctest: +FLOAT_CMP
    920.395
    """
    n = np.asarray(n_pix, dtype=float)
    std = np.asarray(sky_std, dtype=float)
    level_err = n * np.asarray(sky_error_on_mean, dtype=float)
    err = np.sqrt(n * (std * std) + level_err * level_err)
    return float(err) if err.ndim == 0 else err


def residual_is_significant(residual_sum, n_rest, sky_std, sky_error_on_mean,
                            n_sigma=RESIDUAL_NSIGMA):
    """
    True when the sky-subtracted sum of ``n_rest`` pixels that should hold
    only sky is more than ``n_sigma`` times its `residual_error` from zero.

    With a zero error any non-zero sum is significant; without pixels
    (``n_rest <= 0``) nothing is. Scalars give a bool, arrays a bool array
    (the same arithmetic, so one row and many agree).

    Parameters
    ----------
    residual_sum : float or array_like
        Sky-subtracted sum of the pixels left out.
    n_rest : float or array_like
        Their number (sum of weights).
    sky_std, sky_error_on_mean : float or array_like
        Per-pixel sky noise and the error of the subtracted sky level.
    n_sigma : float, optional
        The threshold (default `RESIDUAL_NSIGMA`).

    Examples
    --------
    The notebook's 6033 ADU left outside a 2-sigma mask, over 300 pixels:

    >>> from ccdphot_ext.photometry.residual import residual_is_significant
    >>> residual_is_significant(6033.0, 300, 53.139, 0.0)
    True
    """
    rest = np.asarray(residual_sum, dtype=float)
    n_rest = np.asarray(n_rest, dtype=float)
    err = residual_error(n_rest, sky_std, sky_error_on_mean)
    with np.errstate(invalid='ignore'):
        sig = np.where(err > 0, np.abs(rest) > n_sigma * err, rest != 0)
    sig = sig & (n_rest > 0)
    return bool(sig) if sig.ndim == 0 else sig


def check_global_sky(sky, x, y, n_pix, flux_err, *, shape=None,
                     stacklevel=3):
    """
    Warn when one global sky level is wrong for some apertures.

    A whole-frame sky (`~ccdphot_ext.SkyEstimate.from_image`) keeps a coarse
    map of the background (cells of 64 x 64 pixels, median filtered). Where
    that map differs from its median over the frame by ``d`` per pixel, an
    aperture of ``n_pix`` pixels is biased by about ``n_pix * d``; when that
    exceeds `GRADIENT_NSIGMA` times the flux error, and ``d`` itself
    exceeds `MAP_NSIGMA` times the map's own error (its noise on a flat
    frame, `~ccdphot_ext.background.BackgroundVariation.error` of the sky's
    ``std``; a map without one is taken at its word), an
    `~astropy.utils.exceptions.AstropyUserWarning` says how many apertures
    are affected and suggests a local sky (an annulus, or a background
    map). The fluxes are not changed. A sky estimated on another frame (a
    cutout, another exposure) has nothing to say about this one: no check.

    Parameters
    ----------
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    x, y : float or array_like
        The apertures' centres (pixels).
    n_pix : float or array_like
        Their (weighted) pixel counts.
    flux_err : float or array_like
        Their flux errors.
    shape : tuple of int, optional
        The shape of the measured frame; when it differs from the frame the
        sky was estimated on, nothing is checked.
    stacklevel : int, optional
        As in `warnings.warn`.

    Returns
    -------
    message : str or None
        The warning's text, or None when no aperture is affected (or the
        sky is not a whole-frame level of this frame that keeps a
        background map).
    """
    variation = sky.background_variation
    if variation is None or not sky.isscalar:
        return None
    made_on = getattr(variation, 'shape', None)
    if shape is not None and made_on is not None and tuple(shape) != made_on:
        return None
    offset = variation(x, y)
    bias = np.asarray(n_pix, dtype=float) * offset
    with np.errstate(invalid='ignore', divide='ignore'):
        worse = np.abs(bias) > GRADIENT_NSIGMA * np.asarray(flux_err,
                                                            dtype=float)
    # an offset within the map's own noise is no evidence of a gradient
    error = getattr(variation, 'error', None)
    if error is not None:
        worse &= np.abs(offset) > MAP_NSIGMA * error(sky.std)
    n_bad = int(np.count_nonzero(worse))
    if not n_bad:
        return None
    message = (
            f'the background varies across the frame: for {n_bad} of '
            f'{worse.size} aperture(s) the local background differs from the '
            f'global sky by more than {GRADIENT_NSIGMA:g} flux errors (up to '
            f'{float(np.nanmax(np.abs(variation(x, y)))):.3g} per pixel); '
            'their fluxes are biased: use a local sky (annulus or '
            'background map)')
    warnings.warn(message, AstropyUserWarning, stacklevel=stacklevel)
    return message
