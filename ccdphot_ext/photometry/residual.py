# Licensed under a 3-clause BSD style license - see LICENSE
"""
The residual-background rules: is the signal left in aperture pixels that a
threshold mask leaves out significant, and does the frame's background
differ from a global sky enough to bias a flux?

One home for them: both photometry engines set
`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND` with them, and the systematics
checks report them.
"""

import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..flags import FLAG_RESIDUAL_BACKGROUND

__all__ = []  # internal: the rules behind flag 32 and the gradient warning

#: Bias of a flux, in units of its error, above which the variation of the
#: background across the frame makes `check_global_sky` flag the row
#: (`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`) and warn that a single
#: global sky level is wrong for that aperture. Half a flux error: rows
#: left unflagged scatter as their error bars say. Frames of 256 to 1024
#: pixels with gradients of ±0.1 to ±1 sky sigma across them (r = 3 to 8
#: circles and 15 x 15 boxes, sky 100 and 1000 e-, none to 1200 stars)
#: left their unflagged rows with pull spreads of 0.91 to 1.09 (1.13 to
#: 1.56 at two flux errors, the bias below it added silently).
GRADIENT_NSIGMA = 0.5

#: Significance (in units of the map's own error at the aperture,
#: `~ccdphot_ext.background.BackgroundVariation.error`) a background map's
#: offset must also reach before `check_global_sky` blames it: below it the
#: offset can be the map's own noise, which a large aperture would multiply
#: into a false alarm on a flat frame. Flat frames of 128 to 1024 pixels
#: (strips of columns masked, none to 1200 stars, r = 3 to 8 circles, 15 x
#: 15 to 91 x 91 boxes) had 6 of 15,424 rows flagged (at 3 map errors, 67);
#: with 91 x 91 boxes, 2 of 100 flat frames warn (13 at 3 map errors).
MAP_NSIGMA = 4.0

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
    Which apertures one global sky level biases, and a warning naming them.

    A whole-frame sky (`~ccdphot_ext.SkyEstimate.from_image`) keeps a coarse
    map of the background (cells of 64 x 64 pixels, median filtered). Where
    that map differs from its median over the frame by ``d`` per pixel, an
    aperture of ``n_pix`` pixels is biased by about ``n_pix * d``. An
    aperture is biased when that exceeds `GRADIENT_NSIGMA` times its flux
    error and ``d`` itself exceeds `MAP_NSIGMA` times the map's own error
    there (its noise on a flat frame,
    `~ccdphot_ext.background.BackgroundVariation.error` of the sky's
    ``std`` at the aperture: larger at the frame's edges and where few
    pixels are usable; a map without one is taken at its word). The photometry
    engines set `~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND` on those
    rows; an `~astropy.utils.exceptions.AstropyUserWarning` says how many
    apertures are affected and suggests a local sky (an annulus, or a
    background map). The fluxes are not changed. A sky estimated on
    another frame (a cutout, another exposure) has nothing to say about
    this one: no check.

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
    biased : bool or `~numpy.ndarray` of bool
        Per aperture (the broadcast shape of the inputs; a bool for
        scalars): True where the background map shows the flux biased. All
        False when nothing is checked (the sky is not a whole-frame level
        of this frame that keeps a background map).
    message : str or None
        The warning's text, or None when no aperture is biased.

    Examples
    --------
    A tilt of 0.2 per pixel along x biases the outer 21 x 21 boxes by
    about 441 * 0.2 * 216 = 19000 (their flux errors are about 420), the
    centre box not:

    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> from ccdphot_ext.photometry.residual import check_global_sky
    >>> y, x = np.mgrid[:512, :512]
    >>> img = np.random.default_rng(5).normal(1000.0 + 0.2 * (x - 255.5),
    ...                                       20.0)
    >>> sky = SkyEstimate.from_image(img)
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter('ignore')  # the warning is the message
    ...     biased, message = check_global_sky(
    ...         sky, [40.0, 256.0, 470.0], 256.0, 441.0, 420.0,
    ...         shape=img.shape)
    >>> biased.tolist()
    [True, False, True]
    >>> message[:54]
    'the background varies across the frame: for 2 of 3 ape'
    """
    n_pix = np.asarray(n_pix, dtype=float)
    flux_err = np.asarray(flux_err, dtype=float)
    unchecked = np.zeros(np.broadcast_shapes(
        np.shape(x), np.shape(y), n_pix.shape, flux_err.shape), dtype=bool)
    unchecked = unchecked[()]
    variation = sky.background_variation
    if variation is None or not sky.isscalar:
        return unchecked, None
    made_on = getattr(variation, 'shape', None)
    if shape is not None and made_on is not None and tuple(shape) != made_on:
        return unchecked, None
    offset = variation(x, y)
    bias = n_pix * offset
    with np.errstate(invalid='ignore', divide='ignore'):
        biased = np.abs(bias) > GRADIENT_NSIGMA * flux_err
    # an offset within the map's own noise is no evidence of a gradient
    error = getattr(variation, 'error', None)
    if error is not None:
        biased &= np.abs(offset) > MAP_NSIGMA * error(sky.std, x, y)
    biased = (unchecked | biased)[()]
    n_bad = int(np.count_nonzero(biased))
    if not n_bad:
        return biased, None
    message = (
            f'the background varies across the frame: for {n_bad} of '
            f'{np.size(biased)} aperture(s) the local background differs '
            f'from the global sky by more than {GRADIENT_NSIGMA:g} flux '
            f'errors (up to {float(np.nanmax(np.abs(offset))):.3g} per '
            'pixel); their fluxes are biased (flagged '
            f'{FLAG_RESIDUAL_BACKGROUND}): use a local sky (annulus or '
            'background map)')
    warnings.warn(message, AstropyUserWarning, stacklevel=stacklevel)
    return biased, message
