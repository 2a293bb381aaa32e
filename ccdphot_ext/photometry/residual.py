# Licensed under a 3-clause BSD style license - see LICENSE
"""
The residual-background rules: is the signal left in aperture pixels that a
threshold mask leaves out significant, and does the frame's background
differ from a global sky enough to bias a flux?

One home for them: both photometry engines set
`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND` with them, and the systematics
checks report them.
"""

import functools
import math
import operator

import numpy as np

from ..background.noise import annulus_offset_term
from ..background.skyrules import (
    SkyRowRule,
    check_rules,
    first_message,
    no_rows,
)
from ..flags import FLAG_RESIDUAL_BACKGROUND
from ..utils.stats import frame_surface

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

    Parameters
    ----------
    n_pix : float or array_like
        The pixels summed (sum of weights).
    sky_std : float or array_like
        The per-pixel sky noise.
    sky_error_on_mean : float or array_like
        The error of the sky level subtracted.

    Returns
    -------
    error : float or `~numpy.ndarray`
        The sum's error (broadcast; a float for scalars).

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

    Returns
    -------
    significant : bool or `~numpy.ndarray` of bool
        Per sum (a bool for scalars).

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
    aperture is biased when that, with ``d`` widened by the map's own
    error there, exceeds `GRADIENT_NSIGMA` times its flux error and ``d``
    itself exceeds `MAP_NSIGMA` times that error (its noise on a flat
    frame, `~ccdphot_ext.background.BackgroundVariation.error` of the
    sky's ``std`` at the aperture: larger where few pixels are usable and
    at the frame's edges, where the map extrapolates beyond its outer
    cells; a map without one is taken at its word). The same rule is
    applied to the map's least-squares plane
    (`~ccdphot_ext.background.BackgroundVariation.plane_offset`, of
    ``plane_error``) where the map's offset has its sign: at the edges the
    plane knows a gentle gradient the map's noisy offset cannot show (on a
    grid of fewer than 4 cells a side, whose plane is the map, it is not
    judged again). Where the map's median filter replaced cells far off
    their neighbours (a glow or a large galaxy over a few cells,
    `~ccdphot_ext.background.BackgroundVariation.filtered_out`), the map
    plus what the filter took out is judged by the same rule, with a
    cell's whole error
    (`~ccdphot_ext.background.BackgroundVariation.unfiltered_error`).
    The photometry
    engines set `~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND` on those
    rows; an `~astropy.utils.exceptions.AstropyUserWarning` says how many
    apertures are affected and suggests a local sky (an annulus, or a
    background map). The fluxes are not changed. A sky estimated on
    another frame (a cutout, another exposure) has nothing to say about
    this one: no check.

    Parameters
    ----------
    sky, x, y, n_pix, flux_err
        As in `~ccdphot_ext.background.skyrules.SkyRowRule.doubt`.
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
    return first_message(GLOBAL_SKY.report(
        *GLOBAL_SKY.doubt_on(sky, shape, x, y, n_pix, flux_err),
        stacklevel=stacklevel))


class GlobalSkyRule(SkyRowRule):
    """`check_global_sky`'s rule: a whole-frame level on a frame whose
    background map shows the rows biased (flag 32)."""

    flag = FLAG_RESIDUAL_BACKGROUND

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        return self.doubt_on(sky, frame.data.shape, x, y, n_pix, flux_err)

    def doubt_on(self, sky, shape, x, y, n_pix, flux_err):
        """
        `doubt` on a frame of ``shape`` (None: any).

        Parameters
        ----------
        sky : `~ccdphot_ext.SkyEstimate`
            The sky subtracted.
        shape : tuple of int or None
            The measured frame's shape.
        x, y, n_pix, flux_err : float or array_like
            As in `SkyRowRule.doubt`.

        Returns
        -------
        rows : bool or `~numpy.ndarray` of bool
            The biased rows.
        context : `~numpy.ndarray` or None
            The background map's offset at each row (None: not checked).
        """
        n_pix = np.asarray(n_pix, dtype=float)
        flux_err = np.asarray(flux_err, dtype=float)
        unchecked = no_rows(x, y, n_pix, flux_err)
        variation = sky.background_variation
        if variation is None or not sky.isscalar:
            return unchecked, None
        made_on = getattr(variation, 'shape', None)
        if (shape is not None and made_on is not None
                and tuple(shape) != made_on):
            return unchecked, None
        offset = variation(x, y)
        error = getattr(variation, 'error', None)
        if error is None:  # a map without an error is taken at its word
            biased = _shows_bias(offset, 0.0, n_pix, flux_err)
        else:
            biased = _shows_bias(offset, error(sky.std, x, y), n_pix,
                                 flux_err)
        plane = getattr(variation, 'plane_offset', None)
        if plane is not None:
            # where the map extrapolates (the frame's edges) its offset is
            # noisy; its plane tells a gradient there, where the map agrees
            tilt = plane(x, y)
            with np.errstate(invalid='ignore'):
                agrees = tilt * offset > 0
            biased |= agrees & _shows_bias(
                tilt, variation.plane_error(sky.std, x, y), n_pix, flux_err)
        taken = getattr(variation, 'filtered_out', None)
        if taken is not None:
            # cells far off their neighbours, which the map's median filter
            # replaced (a glow over a few cells): the map plus what it
            # took out there, with a cell's whole error
            taken = np.asarray(taken(sky.std, x, y), dtype=float)
            with np.errstate(invalid='ignore'):
                near = taken != 0
            if np.any(near):
                widened = np.fmax(error(sky.std, x, y),
                                  variation.unfiltered_error(sky.std, x, y))
                biased |= near & _shows_bias(offset + taken, widened, n_pix,
                                             flux_err)
        return (unchecked | biased)[()], offset

    def message(self, rows, n_bad, context):
        return (
            f'the background varies across the frame: for {n_bad} of '
            f'{np.size(rows)} aperture(s) the local background differs '
            f'from the global sky by more than {GRADIENT_NSIGMA:g} flux '
            f'errors (up to {float(np.nanmax(np.abs(context))):.3g} per '
            'pixel); their fluxes are biased (flagged '
            f'{FLAG_RESIDUAL_BACKGROUND}): use a local sky (annulus or '
            'background map)')


def _shows_bias(offset, error, n_pix, flux_err):
    """
    Where a background offset shows an aperture biased: ``n_pix`` times
    the offset widened by one error exceeds `GRADIENT_NSIGMA` times
    ``flux_err`` (an offset noisy where the map extrapolates cannot clear
    a row it may bias), and the offset is beyond `MAP_NSIGMA` errors
    (within them it can be the map's own noise).

    Parameters
    ----------
    offset : float or `~numpy.ndarray`
        The background's offset from the level subtracted (per pixel).
    error : float or `~numpy.ndarray`
        The offset's error (0: taken at its word).
    n_pix, flux_err : float or `~numpy.ndarray`
        The apertures' pixel counts and flux errors.

    Returns
    -------
    biased : `~numpy.ndarray` of bool
        Per aperture (broadcast).
    """
    offset = np.abs(offset)
    with np.errstate(invalid='ignore', divide='ignore'):
        return ((n_pix * (offset + error) > GRADIENT_NSIGMA * flux_err)
                & (offset > MAP_NSIGMA * error))


#: The budget term that carries the offset of the background at a row
#: from the one whole-frame level subtracted (`sky_offset_variance`).
SKY_OFFSET_TERM = 'sky_offset'

#: Significance (in units of its own error,
#: `~ccdphot_ext.background.BackgroundVariation.plane_error`) beyond which
#: the background variation map's least-squares plane gives a row's
#: ``sky_offset`` term where the map's own offset is within `MAP_NSIGMA`
#: errors. White noise with gradients of 0.2 to 0.6 sigma to either side
#: of 256 x 256 frames (60 frames): the unflagged rows' pulls at 25 px
#: spread 1.08 with the map's offset alone, 1.04 with the plane's beyond
#: 3 errors (1.02 beyond 2); on 30 flat frames the term was 0.1% of the
#: rows' variance at 25 px (0.5% beyond 2 errors).
PLANE_NSIGMA = 3.0


def sky_offset_variance(sky, shape, x, y, n_pix, noise=None):
    """
    The variance a whole-frame level's offset from the background at each
    aperture adds to its flux: the budget's ``sky_offset`` term.

    One level for the frame (`~ccdphot_ext.SkyEstimate.from_image`) is not
    the background under every aperture: where the background lies ``d``
    per pixel above it, a flux of ``n_pix`` pixels reads ``n_pix * d``
    high. That offset is measured but not subtracted (the flux is against
    the one level asked for); it is carried in the error instead, as the
    term ``(n_pix * d)**2``, so that the error bar covers the bias
    (`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND` still marks the rows it
    makes doubtful, judged on the error without it). ``d`` is

    - with a noise model ``noise`` measured on this frame's whole-frame
      route that took the blank sky's large-scale trend out of its blank
      sums (`~ccdphot_ext.ApertureNoise.trend_removed`): that trend
      (`~ccdphot_ext.background.noise.trend_image`, significant over the
      frame) at the aperture, times the share of it the blank sums of the
      aperture's size carry (`~ccdphot_ext.ApertureNoise.trend_carried`,
      at most 1: all of a gradient; the model's noise is their scatter
      about that share). A model that took no trend out holds any
      gradient in its noise, and the term is 0;
    - without one: the sky's background variation map at the aperture
      (`~ccdphot_ext.background.BackgroundVariation`), where it is beyond
      `MAP_NSIGMA` times its own error ``e`` there (within it the offset
      can be the map's noise), as ``(n_pix * d)**2 - (n_pix * e)**2``,
      the square less its noise; elsewhere the map's least-squares plane
      (``plane_offset``, of error ``plane_error``) the same way where it
      is beyond `PLANE_NSIGMA` errors (a gentle gradient the map's noisy
      offset cannot show).

    Both are the background's offsets from the level the sky was measured
    at (a level measured again without the apertures' light,
    `~ccdphot_ext.SkyEstimate.without_apertures`, took that light away,
    not background).

    Parameters
    ----------
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    shape : tuple of int
        The measured frame's shape.
    x, y, n_pix : float or array_like
        The apertures' centres and (weighted) pixel counts.
    noise : `~ccdphot_ext.ApertureNoise`, optional
        The noise model of the sky term, if any.

    Returns
    -------
    variance : `~numpy.ndarray` or None
        Per aperture (the broadcast shape of the inputs; data unit
        squared); None when the sky is not a whole-frame level of this
        frame with a background variation map (no term).

    Examples
    --------
    A tilt of 0.2 per pixel along x: the outer 21 x 21 boxes are about
    441 * 0.2 * 216 = 19000 off the level, the centre box not:

    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> from ccdphot_ext.photometry.residual import sky_offset_variance
    >>> y, x = np.mgrid[:512, :512]
    >>> img = np.random.default_rng(5).normal(1000.0 + 0.2 * (x - 255.5),
    ...                                       20.0)
    >>> sky = SkyEstimate.from_image(img)
    >>> var = sky_offset_variance(sky, img.shape, [40.0, 256.0, 470.0],
    ...                           256.0, 441.0)
    >>> (np.sqrt(var) / 1000).round().tolist()
    [19.0, 0.0, 19.0]
    """
    if not sky.isscalar and not sky.is_map:  # an annulus per aperture
        return annulus_offset_term(sky, x, y, n_pix, noise)
    variation = getattr(sky, 'background_variation', None)
    if variation is None or not sky.isscalar:
        return None
    made_on = getattr(variation, 'shape', None)
    if made_on is not None and tuple(shape) != tuple(made_on):
        return None
    x, y, n_pix = np.broadcast_arrays(np.asarray(x, dtype=float),
                                      np.asarray(y, dtype=float),
                                      np.asarray(n_pix, dtype=float))
    if noise is not None and noise.route == 'global' and (
            noise.shape is None or tuple(noise.shape) == tuple(shape)):
        if not noise.trend_removed:
            return np.zeros(x.shape)
        offset = frame_surface(noise.meta['trend'], shape, x, y)
        with np.errstate(invalid='ignore', over='ignore'):
            offset = offset * noise.trend_carried(n_pix)
            return np.where(np.isfinite(offset), (n_pix * offset) ** 2, 0.0)
    offset = np.asarray(variation(x, y), dtype=float)
    error = getattr(variation, 'error', None)
    error = (np.zeros(x.shape) if error is None
             else np.asarray(error(sky.std, x, y), dtype=float))
    with np.errstate(invalid='ignore', over='ignore'):
        var = n_pix * n_pix * (offset * offset - error * error)
        var = np.where(np.abs(offset) > MAP_NSIGMA * error,
                       np.fmax(var, 0.0), 0.0)
    plane = getattr(variation, 'plane_offset', None)
    if plane is not None:
        # where the map's offset is within its noise, its plane may still
        # tell a gentle gradient
        tilt = np.asarray(plane(x, y), dtype=float)
        tilt_err = np.asarray(variation.plane_error(sky.std, x, y),
                              dtype=float)
        with np.errstate(invalid='ignore', over='ignore'):
            by_plane = n_pix * n_pix * (tilt * tilt - tilt_err * tilt_err)
            var = np.where(
                (var == 0) & (np.abs(tilt) > PLANE_NSIGMA * tilt_err),
                np.fmax(by_plane, 0.0), var)
    return var


def error_without_offset(error, variance, offset):
    """
    The flux error less the `sky_offset_variance` term: the error the sky
    rules judge a row by (the term must not clear the rows it covers).

    Parameters
    ----------
    error, variance : float or array_like
        The flux error and variance, the term included.
    offset : float or array_like or None
        The ``sky_offset`` term (None, NaN or 0: none).

    Returns
    -------
    error : float or `~numpy.ndarray`
        ``error`` where there is no term, else ``sqrt(variance - offset)``.
    """
    if offset is None:
        return error
    offset = np.asarray(offset, dtype=float)
    with np.errstate(invalid='ignore'):
        held = offset > 0
        out = np.where(held, np.sqrt(np.fmax(
            np.asarray(variance, dtype=float) - np.where(held, offset, 0.0),
            0.0)), error)
    return out[()]


#: A flux whose Background2D sky the light of the frame's sources lifts
#: (`check_map_sky`) by more than this many flux errors is flagged: rows
#: left unflagged keep their pull means within about this.
MAP_LIFT_NSIGMA = 0.05


def check_map_sky(sky, frame, x, y, n_pix, flux_err, *, stacklevel=3):
    """
    Which apertures a Background2D map's level, lifted by the light of the
    frame's sources, biases, and a warning naming them.

    photutils' sigma clip keeps the wings of stars and the faint stars in
    each mesh, which lift the map (its level pulls were +0.4 to +2.9 with
    100 stars on 512 x 512 pixels). For a map made by
    `~ccdphot_ext.SkyEstimate.from_background2d` on a frame of this shape
    without ``data``, the meshes are measured again without the
    whole-frame sky's source mask
    (`~ccdphot_ext.background.maps.source_lift`) and the stars too faint
    for the mask are added
    (`~ccdphot_ext.background.globalsky.crowding_bias`; no check when the
    frame's pixels do not reproduce the map's meshes, as when Background2D
    was given a mask); a map with ``data``, whose level is already without
    the sources found, keeps only the faint stars' share. An aperture of
    ``n_pix`` pixels is biased low by about ``n_pix`` times that lift (the
    larger of the lift at its centre and the median over the frame: the
    one is noisy, the other may miss a cluster):
    where this exceeds `MAP_LIFT_NSIGMA` times the flux error, the row is
    flagged (`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`) and an
    `~astropy.utils.exceptions.AstropyUserWarning` says how many. The
    fluxes are not changed.

    Parameters
    ----------
    sky, frame, x, y, n_pix, flux_err
        As in `~ccdphot_ext.background.skyrules.SkyRowRule.doubt` (any
        sky: only a Background2D map of a frame of this shape is checked).
    stacklevel : int, optional
        As in `warnings.warn`.

    Returns
    -------
    biased : bool or `~numpy.ndarray` of bool
        Per aperture (the broadcast shape of the inputs): True where the
        lift biases the flux.
    message : str or None
        The warning's text, or None when no aperture is biased.
    """
    return first_message(MAP_SKY.check(sky, frame, x, y, n_pix, flux_err,
                                       stacklevel=stacklevel))


class MapSkyRule(SkyRowRule):
    """`check_map_sky`'s rule: a Background2D map lifted by the sources'
    light (flag 32)."""

    flag = FLAG_RESIDUAL_BACKGROUND

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        from ..background.globalsky import (
            crowding_bias,
            faint_light_beside,
            source_pixels,
            stored_light,
        )
        from ..background.maps import FILL_MESH, source_lift
        from ..utils.windows import whole_pixels

        n_pix = np.asarray(n_pix, dtype=float)
        flux_err = np.asarray(flux_err, dtype=float)
        meshes = getattr(sky, 'mesh_statistics', None)
        if meshes is None or meshes.shape != tuple(frame.data.shape):
            return no_rows(x, y, n_pix, flux_err), None

        def faint(light):
            # the faint light's lift, measured again with the apertures'
            # own stars left out (they are measured, not evidence of
            # fainter ones) where it lifts the sky with them
            if not crowding_bias(light) > 0:
                return 0.0
            return crowding_bias(faint_light_beside(frame, x, y))

        if 'source_lift' in sky.meta:  # the sources found are out already
            light = stored_light(sky.meta)
            lift = np.broadcast_to(faint(light), frame.data.shape)
            what = 'the light of stars too faint for the source mask'
            cure = 'an annulus sky'
        else:
            sources, usable, _, light = source_pixels(frame)
            lift = source_lift(sky.value, meshes,
                               np.asarray(frame.data, dtype=float), sources,
                               usable,
                               fill=min(meshes.box_size) < FILL_MESH)
            if lift is None:  # Background2D had a mask: its pixels unknown
                return no_rows(x, y, n_pix, flux_err), None
            # each mesh's lift is noisy: a row is judged by its own or by
            # the frame's typical one, whichever is larger
            lift = lift[0] + faint(light)
            lift = np.maximum(lift, np.median(lift))
            what = "the light of the sources photutils' clip keeps"
            cure = ('give SkyEstimate.from_background2d the frame (data=) '
                    'to remove it, or use an annulus sky')
        ny, nx = lift.shape
        iy = np.clip(whole_pixels(np.floor(np.asarray(y, dtype=float)
                                           + 0.5)), 0, ny - 1)
        ix = np.clip(whole_pixels(np.floor(np.asarray(x, dtype=float)
                                           + 0.5)), 0, nx - 1)
        offset = lift[iy, ix]
        with np.errstate(invalid='ignore'):
            biased = np.asarray(np.abs(n_pix * offset)
                                > MAP_LIFT_NSIGMA * flux_err)[()]
        return biased, (what, cure, offset)

    def message(self, rows, n_bad, context):
        what, cure, offset = context
        return (
            f'{what} lifts the Background2D sky: for {n_bad} of '
            f'{np.size(rows)} aperture(s) by more than {MAP_LIFT_NSIGMA:g} '
            f'flux errors (up to {float(np.max(np.abs(offset))):.3g} per '
            'pixel); their fluxes are biased low (flagged '
            f'{FLAG_RESIDUAL_BACKGROUND}): {cure}')


#: Significance (in units of its error) the frame's pixels' offset from
#: a Background2D map about an aperture must reach before
#: `check_map_features` blames a feature the map passes over. Flat frames
#: of 256 x 256 pixels with 40 stars of 10**3 to 10**4.5 ADU (10 frames,
#: 400 rows) had none flagged; the 20 ADU glow's frames left their
#: unflagged rows at pulls of +0.09 +- 1.13 (3.5 at most); the
#: vignetted ESO and the SAAO frames had none flagged.
FEATURE_NSIGMA = 3.0

#: The disc about each aperture, in aperture radii
#: (``sqrt(n_pix / pi)``), whose blocks `check_map_features` leaves out
#: of the frame's pixels about the apertures: the stars' own light.
FEATURE_AVOID = 2.0


def check_map_features(sky, frame, x, y, n_pix, flux_err, *, stacklevel=3):
    """
    Which apertures a Background2D map biases where the frame's
    background has a feature smaller than its meshes, and a warning
    naming them.

    photutils' median filter over its meshes replaces a mesh far off its
    neighbours, as the whole-frame sky's map does its cells: a glow or a
    large galaxy over a few meshes is neither followed nor seen (a
    Gaussian glow of 20 ADU and 25 pixels at the centre of a 256 x 256
    frame of 64 px meshes left the fluxes near it at pulls of +5.4, up
    to 15). Where the whole-frame sky's map of the frame
    (`~ccdphot_ext.background.globalsky.frame_variation`) shows such a
    feature (its filter took something out there,
    `~ccdphot_ext.background.BackgroundVariation.filtered_out`), the
    frame's pixels less the Background2D level about each aperture
    (`~ccdphot_ext.background.globalsky.local_residual`: the median of
    the blocks of 4 x 4 pixels in a window of 36 pixels, the stars
    measured, within `FEATURE_AVOID` aperture radii, and the source
    mask's star segments left out) are the offset the map leaves at the
    aperture, known to the error of that median (of the map's ``std``
    there) and the map's ``error_on_mean`` there, combined. The row is
    biased when ``n_pix`` times the offset widened by its error exceeds
    `GRADIENT_NSIGMA` times the flux error and the offset exceeds
    `FEATURE_NSIGMA` errors. The photometry engines set
    `~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND` on those rows; an
    `~astropy.utils.exceptions.AstropyUserWarning` says how many and
    suggests an annulus sky or smaller meshes. The fluxes are not
    changed.

    Parameters
    ----------
    sky, frame, x, y, n_pix, flux_err
        As in `~ccdphot_ext.background.skyrules.SkyRowRule.doubt` (only a
        Background2D map of a frame of this shape is checked).
    stacklevel : int, optional
        As in `warnings.warn`.

    Returns
    -------
    biased : bool or `~numpy.ndarray` of bool
        Per aperture: True where the feature biases the flux.
    message : str or None
        The warning's text, or None when no aperture is biased.
    """
    return first_message(MAP_FEATURE.check(sky, frame, x, y, n_pix,
                                           flux_err, stacklevel=stacklevel))


class MapFeatureRule(SkyRowRule):
    """`check_map_features`'s rule: a Background2D map that passes over a
    feature of the background smaller than its meshes (flag 32)."""

    flag = FLAG_RESIDUAL_BACKGROUND

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        from ..background.globalsky import frame_variation, local_residual
        from ..utils.windows import whole_pixels

        n_pix = np.asarray(n_pix, dtype=float)
        flux_err = np.asarray(flux_err, dtype=float)
        unchecked = no_rows(x, y, n_pix, flux_err)
        shape = tuple(frame.data.shape)
        if (sky.meta.get('method') != 'Background2D' or sky.isscalar
                or np.shape(sky.value) != shape):
            return unchecked, None
        variation, blocks = frame_variation(frame)
        std = np.broadcast_to(np.asarray(sky.std, dtype=float), shape)
        pixel_std = sky.pixel_std
        if variation is None or not pixel_std > 0:
            return unchecked, None
        taken = np.asarray(variation.filtered_out(pixel_std, x, y),
                           dtype=float)
        with np.errstate(invalid='ignore'):
            near = np.isfinite(taken) & (taken != 0)
        if not np.any(near):
            return unchecked, None
        ny, nx = shape
        iy = np.clip(whole_pixels(np.floor(np.asarray(y, dtype=float)
                                           + 0.5)), 0, ny - 1)
        ix = np.clip(whole_pixels(np.floor(np.asarray(x, dtype=float)
                                           + 0.5)), 0, nx - 1)
        # the frame less the map about each aperture, the stars' own
        # light (within FEATURE_AVOID radii of the apertures) left out
        offset, noise = local_residual(
            frame, np.asarray(sky.value, dtype=float), blocks, x, y,
            avoid=FEATURE_AVOID * np.sqrt(np.maximum(n_pix, 0.0) / np.pi))
        # the median's error (of the map's pixel noise there) and the
        # map's own, combined
        error = np.hypot(noise * std[iy, ix], np.broadcast_to(
            np.asarray(sky.error_on_mean, dtype=float), shape)[iy, ix])
        with np.errstate(invalid='ignore'):
            size = np.abs(offset)
            biased = (near
                      & (n_pix * (size + error) > GRADIENT_NSIGMA * flux_err)
                      & (size > FEATURE_NSIGMA * error))
        return (unchecked | biased)[()], np.where(near, offset, np.nan)

    def message(self, rows, n_bad, context):
        return (
            'the background has a feature smaller than the Background2D '
            f'meshes (a glow, a large galaxy): for {n_bad} of '
            f'{np.size(rows)} aperture(s) the frame\'s pixels there differ '
            'from the map by more than '
            f'{GRADIENT_NSIGMA:g} flux errors (up to '
            f'{float(np.nanmax(np.abs(context))):.3g} per pixel); their '
            f'fluxes are biased (flagged {FLAG_RESIDUAL_BACKGROUND}): use '
            'an annulus sky or a smaller box_size')


#: A Background2D map whose mesh (its shorter side) is under this many
#: times an aperture's diameter, and under
#: `~ccdphot_ext.background.maps.FILL_MESH` pixels (a mesh one star's
#: source mask can empty), can hold that aperture's star's own light
#: (`check_small_mesh`): its meshes are the star's size, so that the light
#: is in their levels rather than beside them. Larger meshes are measured
#: without the sources' light (`check_map_sky`) whatever the aperture (a
#: 20 px box on 64 px meshes is not doubted).
SMALL_MESH_FACTOR = 3.0


def check_small_mesh(sky, x, y, n_pix, flux_err, *, frame=None,
                     stacklevel=3):
    """
    Which apertures a Background2D map's mesh is too small for, and a
    warning naming ``box_size``.

    photutils measures each mesh by a sigma-clipped estimator and its
    map interpolates between the mesh centres. Where a mesh is not much
    larger than a star, the star's light is most of its pixels: the clip
    does not remove it, the mesh's level holds it, and the map under the
    aperture rises with the star. A 5000 ADU star in 3 px meshes (no
    filter) read a sky of 204 for 100 and a flux of 1354 for 4320, flags
    0; in 4 to 6 px meshes its flux pulls were -1.2 to -2.4. With the
    frame (``data=``) the meshes the star's source mask (all but) empties
    are filled from the meshes around them
    (`~ccdphot_ext.background.maps.source_lift`,
    ``meta['filled_meshes']``), which leaves the map under the star
    unbiased, but its error there is then not the map's scatter (an
    interpolation across the star's footprint; with meshes of the star's
    size photutils' own interpolation error of meshes that held the
    star, several times the scatter); without the frame the map keeps
    the light. A row is flagged
    (`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`) where it reaches a
    filled mesh, or, on a map made without the frame and without a mask
    of Background2D's own (the ``frame``'s pixels reproduce its meshes),
    where its aperture's diameter (``2 sqrt(n_pix / pi)``, ``n_pix`` its
    pixels) is more than 1 / `SMALL_MESH_FACTOR` of the mesh's shorter
    side, on meshes under `~ccdphot_ext.background.maps.FILL_MESH`
    pixels, and an
    `~astropy.utils.exceptions.AstropyUserWarning` naming ``box_size``
    says how many. The fluxes are not changed.

    Parameters
    ----------
    sky, x, y, n_pix, flux_err
        As in `~ccdphot_ext.background.skyrules.SkyRowRule.doubt` (only a
        Background2D map, ``sky.meta['box_size']``, is checked).
    frame : Frame, optional
        The frame measured: a map whose meshes its pixels do not
        reproduce (Background2D was given a mask) is judged by its filled
        meshes only. None (default): the mesh's size is judged.
    stacklevel : int, optional
        As in `warnings.warn`.

    Returns
    -------
    small : bool or `~numpy.ndarray` of bool
        Per aperture: True where the mesh is too small for it.
    message : str or None
        The warning's text, or None when no aperture is flagged.

    Examples
    --------
    >>> import warnings
    >>> from ccdphot_ext import SkyEstimate
    >>> from ccdphot_ext.photometry.residual import check_small_mesh
    >>> sky = SkyEstimate(100.0, 5.0, 1000,
    ...                   meta={'method': 'Background2D', 'box_size': (8, 8)})
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter('ignore')  # the warning is the message
    ...     small, message = check_small_mesh(sky, [10.0, 30.0],
    ...                                       [10.0, 30.0], [3.0, 28.3],
    ...                                       [5.0, 30.0])
    >>> small.tolist()
    [False, True]
    """
    return first_message(SMALL_MESH.check(sky, frame, x, y, n_pix,
                                          flux_err, stacklevel=stacklevel))


def _holds_light(sky, frame):
    """Whether a Background2D map can still hold its stars' light: made
    without the frame (``data=`` takes it out, `source_lift`, and fills
    the meshes the stars empty) and, when the frame is at hand, without a
    mask of photutils' own (its meshes measured again on the frame's
    usable pixels keep photutils' pixels: a source mask given to
    Background2D keeps the stars out of its meshes)."""
    if 'source_lift' in sky.meta:
        return False
    meshes = getattr(sky, 'mesh_statistics', None)
    if frame is None or meshes is None or (
            meshes.shape != tuple(frame.data.shape)):
        return True
    return meshes.levels_of(frame) is not None


class SmallMeshRule(SkyRowRule):
    """`check_small_mesh`'s rule: a Background2D mesh not much larger
    than the aperture can hold its star's light, and a mesh filled from
    its neighbours has no error of its own (flag 32)."""

    flag = FLAG_RESIDUAL_BACKGROUND

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        from ..background.maps import FILL_MESH

        n_pix = np.asarray(n_pix, dtype=float)
        box = sky.meta.get('box_size')
        if sky.meta.get('method') != 'Background2D' or box is None:
            return no_rows(x, y, n_pix, flux_err), None
        by, bx = (int(b) for b in np.broadcast_to(box, 2))
        shape = np.broadcast_shapes(np.shape(x), np.shape(y), n_pix.shape,
                                    np.shape(flux_err))
        with np.errstate(invalid='ignore'):
            diameter = np.broadcast_to(
                2.0 * np.sqrt(np.maximum(n_pix, 0.0) / np.pi), shape)
            small = ((SMALL_MESH_FACTOR * diameter > min(by, bx))
                     & (min(by, bx) < FILL_MESH)
                     & _holds_light(sky, frame))
        filled = np.zeros(shape, dtype=bool)
        meshes = sky.meta.get('filled_meshes')
        if meshes:
            cx = np.broadcast_to(np.asarray(x, dtype=float), shape)
            cy = np.broadcast_to(np.asarray(y, dtype=float), shape)
            half = np.where(np.isfinite(diameter), diameter / 2.0, 0.0)
            for i, j in meshes:
                # the aperture's disc reaches the mesh's box
                dy = np.maximum(np.maximum(i * by - 0.5 - cy,
                                           cy - ((i + 1) * by - 0.5)), 0.0)
                dx = np.maximum(np.maximum(j * bx - 0.5 - cx,
                                           cx - ((j + 1) * bx - 0.5)), 0.0)
                with np.errstate(invalid='ignore'):
                    filled |= dx * dx + dy * dy < half * half
        rows = np.asarray(small | filled)
        return rows[()], ((by, bx), diameter, small & rows, filled & ~small)

    def message(self, rows, n_bad, context):
        from ..background.maps import FILL_MESH

        box, diameter, small, filled = context
        size = f'box_size={box[0]}x{box[1]}'
        parts = []
        if np.any(small):
            largest = float(np.nanmax(np.where(small, diameter, np.nan)))
            parts.append(
                f'Background2D {size} is smaller than '
                f'{SMALL_MESH_FACTOR:g} times the diameter of '
                f'{int(np.count_nonzero(small))} of {np.size(rows)} '
                f'aperture(s) (up to {largest:.3g} px): its meshes are the '
                "stars' size and its map holds their own light (give "
                'from_background2d the frame, data=, to take it out)')
            need = min(int(math.ceil(SMALL_MESH_FACTOR * largest)),
                       FILL_MESH)
        else:
            need = None
        if np.any(filled):
            parts.append(
                f'{"the map" if parts else "Background2D " + size + ": the map"}'
                f' under {int(np.count_nonzero(filled))} of {np.size(rows)} '
                "aperture(s) is filled from the meshes around their stars' "
                'source mask (meta["filled_meshes"]): its error there is '
                "not the map's scatter")
        cure = ('a box_size of at least '
                f'{need} px' if need else 'a larger box_size')
        return (f'{"; ".join(parts)}. Flagged {FLAG_RESIDUAL_BACKGROUND}: '
                f'use {cure} or an annulus sky')


#: A flux whose whole-frame sky the light of stars too faint for its
#: source mask may lift (``meta['crowding_bias']``, per pixel) by more than
#: this many flux errors over its pixels is flagged by `check_crowded_sky`.
CROWDING_FLUX_NSIGMA = 0.05


def check_crowded_sky(sky, n_pix, flux_err, *, stacklevel=3):
    """
    Which apertures the faint stars' light in a whole-frame level may bias,
    and a warning naming them.

    A whole-frame level (`~ccdphot_ext.SkyEstimate.from_image`) is
    measured without its source mask and without the apertures measured
    (`~ccdphot_ext.SkyEstimate.without_apertures`); the light of the stars
    too faint for either still lifts it, by about
    ``meta['crowding_bias']`` per pixel
    (`~ccdphot_ext.background.globalsky.check_crowding`: measured from
    the faint light the frame shows off the mask, 0 where it shows none
    beyond its noise; on a crowded frame the largest lift it allows where
    that is warned of, `crowding_lift`). An aperture of ``n_pix`` pixels
    is biased low by about ``n_pix`` times that: where
    this exceeds `CROWDING_FLUX_NSIGMA` times its flux error the row is
    flagged (`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`) and an
    `~astropy.utils.exceptions.AstropyUserWarning` says how many. The
    fluxes are not changed.

    Parameters
    ----------
    sky, n_pix, flux_err
        As in `~ccdphot_ext.background.skyrules.SkyRowRule.doubt` (only a
        whole-frame level is checked).
    stacklevel : int, optional
        As in `warnings.warn`.

    Returns
    -------
    biased : bool or `~numpy.ndarray` of bool
        Per aperture: True where the faint stars' light may bias the flux.
    message : str or None
        The warning's text, or None when no aperture is biased.

    Examples
    --------
    >>> from ccdphot_ext import SkyEstimate
    >>> from ccdphot_ext.photometry.residual import check_crowded_sky
    >>> sky = SkyEstimate(100.0, 10.0, 10000, meta={'crowding_bias': 0.2})
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter('ignore')  # the warning is the message
    ...     biased, message = check_crowded_sky(sky, [50.0, 400.0],
    ...                                         [250.0, 150.0])
    >>> biased.tolist()
    [False, True]
    """
    return first_message(CROWDED_SKY.check(sky, None, None, None, n_pix,
                                           flux_err, stacklevel=stacklevel))


class CrowdedSkyRule(SkyRowRule):
    """`check_crowded_sky`'s rule: a whole-frame level the light of stars
    too faint to mask may lift (flag 32; it reads neither the frame nor the
    positions)."""

    flag = FLAG_RESIDUAL_BACKGROUND

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        n_pix = np.asarray(n_pix, dtype=float)
        flux_err = np.asarray(flux_err, dtype=float)
        lift, bound = crowding_lift(sky.meta)
        if not sky.isscalar or not lift > 0:
            return no_rows(n_pix, flux_err), None
        with np.errstate(invalid='ignore'):
            biased = np.asarray(n_pix * lift
                                > CROWDING_FLUX_NSIGMA * flux_err)[()]
        return biased, (lift, bound)

    def message(self, rows, n_bad, context):
        lift, bound = context
        how = ('may lift the whole-frame sky by up to' if bound else
               'lifts the whole-frame sky by about')
        return (
            f'the light of stars too faint for the source mask {how} '
            f'{lift:.3g} per pixel: for {n_bad} of {np.size(rows)} '
            f'aperture(s) by more than {CROWDING_FLUX_NSIGMA:g} flux errors; '
            'their fluxes may be biased low (flagged '
            f'{FLAG_RESIDUAL_BACKGROUND}): use an annulus sky or a background '
            'map')


def crowding_lift(meta):
    """
    The lift of a whole-frame level by the stars too faint for its source
    mask that `CrowdedSkyRule` judges the rows by.

    On a crowded frame, whose faint light off the source mask was measured
    (``meta['faint_light']``), the largest lift the frame allows
    (``meta['crowding_bias_bound']``) where it is warned of, above
    `~ccdphot_ext.background.globalsky.CROWDING_NSIGMA` times the level's
    error (``meta['crowding_note']``): where ``crowding_bias`` reads none
    beyond its noise the stars below the mask's reach may still lift the
    level by 0.8-1.8 of its errors (300 Gaussian stars of 300-10**4 ADU
    on 512 x 512 pixels of a 1000 ADU sky: 14 of 16 frames read 0, and
    the fluxes of 15 px circles read 0.07 of their errors low with flags
    0). The frame does not show how far below the reach they go: the
    bound was 1.1-11 times that lift. A bound within 1.5 errors is not
    taken: 64 stars of 20-400 e- on a grid of a 2 e- sky, all measured
    and at the reach, gave bounds of 0.5-0.9 of the level's errors on 4
    of 20 frames, which would have flagged a fifth of their rows at r = 6.
    Elsewhere (fewer, sparser stars, no faint light measured; a bound
    within 1.5 errors) ``crowding_bias``.

    Parameters
    ----------
    meta : dict
        The sky's ``meta``.

    Returns
    -------
    lift : float
        Data unit per pixel (0: none).
    bound : bool
        True where ``lift`` is the bound rather than ``crowding_bias``.
    """
    bias = float(meta.get('crowding_bias', 0.0) or 0.0)
    bound = float(meta.get('crowding_bias_bound', 0.0) or 0.0)
    if 'faint_light' in meta and 'crowding_note' in meta and bound > bias:
        return bound, True
    return bias, False


def check_sky_bias(sky, frame, x, y, n_pix, flux_err, *, stacklevel=3):
    """
    The rows a sky biases, by twelve rules: a global level on a frame
    whose background varies (`check_global_sky`), one of a small frame
    that rests on too few pixels (`SparseSmallSkyRule`), one on too few
    pixels whose error is most of a row's (`ThinLevelRule`), a
    Background2D map
    lifted
    by the sources' light (`check_map_sky`), a Background2D map that
    passes over a feature smaller than its meshes
    (`check_map_features`), a Background2D mesh too
    small for the aperture or filled across its star
    (`check_small_mesh`), a whole-frame level the
    light of stars too faint to mask may lift (`check_crowded_sky`), one
    the apertures measured left no pixel to be measured again without
    their light, one whose source mask covered the frame and was
    dropped, a map of too few meshes to follow the sky, a
    whole-frame level whose mask left too little sky to measure that
    light, and one measured again without the apertures on a few pixels
    no fair sample of the sky (the five `SkyNoteRule`); the one home both
    photometry engines flag
    `~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND` from.

    Parameters
    ----------
    sky, frame, x, y, n_pix, flux_err
        As in `~ccdphot_ext.background.skyrules.SkyRowRule.doubt`.
    stacklevel : int, optional
        As in `warnings.warn`.

    Returns
    -------
    biased : bool or `~numpy.ndarray` of bool
        Per aperture: True where any rule finds the flux biased.
    messages : list of str
        The warnings said (none when no aperture is biased).
    """
    rows, messages = check_rules(SKY_BIAS_RULES, sky, frame, x, y, n_pix,
                                 flux_err, stacklevel=stacklevel)
    return functools.reduce(operator.or_, map(np.asarray, rows))[()], messages


class SkyNoteRule(SkyRowRule):
    """Every row measured against a sky that carries a note in its
    ``meta`` under ``key`` is doubtful (flag 32; the note is the warning).

    Five notes mark such a sky: ``'aperture_light_kept'``, a whole-frame
    level the apertures measured left no pixel to be measured again
    without their stars' light
    (`~ccdphot_ext.SkyEstimate.without_apertures`);
    ``'source_mask_dropped'``, a whole-frame level whose source mask
    covered the frame (a grid of bright stars whose grown segments meet)
    and was dropped, so it is the clipped statistic of every pixel, the
    sources' included; ``'coarse_map'``, a Background2D map of too few
    meshes to follow the sky, which the frame's pixels show
    (`~ccdphot_ext.background.maps.check_coarse_map`); and
    ``'faint_light_unmeasured'``, a whole-frame level of a crowded frame
    whose source mask left too little sky to measure the light of the
    stars too faint for it
    (`~ccdphot_ext.background.globalsky.unseen_sky_note`); and
    ``'aperture_remnant_doubtful'``, a whole-frame level measured again
    without the apertures on the few pixels they leave, which the frame's
    coarse background puts far off its mean
    (`~ccdphot_ext.background.skylift.remnant_note`).

    Parameters
    ----------
    key : str
        The ``meta`` key of the note.
    """

    flag = FLAG_RESIDUAL_BACKGROUND

    def __init__(self, key):
        self.key = key

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        note = sky.meta.get(self.key)
        rows = no_rows(n_pix, flux_err)
        if note is None:
            return rows, None
        return np.logical_not(rows)[()], note

    def message(self, rows, n_bad, context):
        return f'{context} ({n_bad} aperture(s) flagged {self.flag})'


class SparseSmallSkyRule(SkyRowRule):
    """
    Every row measured against a whole-frame level of a small frame whose
    source mask left the level too few pixels (fewer than
    `~ccdphot_ext.background.globalsky.MIN_SKY_PIXELS`: the level's own
    warning, ``meta['sparse_sky']``) is doubtful (flag 32).

    On a frame of fewer than
    `~ccdphot_ext.background.globalsky.PLANE_MIN_CELLS` background cells a
    side (under 256 pixels a side) `check_global_sky` cannot see the
    background at the apertures depart from the level: the map's offsets
    are about its own median, and its few cells hold the sources' light
    as the level does. With the sources over most of such a frame the faint light
    between them lifts the level above the blank sky by more than its
    error: astropy's ACS cut-out of 100 x 100 pixels (sources over 88%
    of it once 800 blank 7 px boxes are left out) read the level 2.8
    data units (4 of its errors) above the blank sky, and the boxes'
    pulls -0.96 on average, unflagged. Larger frames are judged by
    `check_global_sky`.
    """

    flag = FLAG_RESIDUAL_BACKGROUND

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        from ..background.globalsky import SPARSE_SKY_KEY

        rows = no_rows(x, y, n_pix, flux_err)
        note = sky.meta.get(SPARSE_SKY_KEY)
        variation = sky.background_variation
        if (note is None or variation is None or not sky.isscalar
                or not variation.too_few_cells
                or variation.shape not in (None, tuple(frame.data.shape))):
            return rows, None
        return np.logical_not(rows)[()], note

    def message(self, rows, n_bad, context):
        return (f'{context}; on a frame this small the background at the '
                'apertures cannot be checked against the level: '
                f'{n_bad} aperture(s) flagged {self.flag}')


#: A row measured against a whole-frame level measured again without the
#: apertures that rests on fewer than
#: `~ccdphot_ext.background.globalsky.MIN_SKY_PIXELS` pixels is doubtful
#: where the level's error over its pixels, ``n_pix * error_on_mean``,
#: exceeds this fraction of its flux error: one offset shared by every row
#: then carries a fifth of each row's variance or more (a quarter where a
#: blank-sky noise model, ``noise=``, inflates the level's error by a
#: tenth, as on drizzled and combined frames), and blank apertures scatter
#: less than 0.87-0.9 of their errors about it.
THIN_LEVEL_FRACTION = 0.45


class ThinLevelRule(SkyRowRule):
    """
    The rows a whole-frame level on too few pixels serves with most of
    their error: the level, measured again without the apertures
    (`~ccdphot_ext.SkyEstimate.without_apertures`), rests on fewer than
    `~ccdphot_ext.background.globalsky.MIN_SKY_PIXELS` pixels (too few for
    its clip and scatter), and its error over the row's pixels is more
    than `THIN_LEVEL_FRACTION` of the row's flux error (flag 32). A level
    used as it was measured (``sky_without_apertures=False``, or one the
    apertures did not lift) is not judged here: a small frame's is judged
    by `SparseSmallSkyRule`.

    Hundreds of apertures over most of a frame leave the level measured
    again the few pixels between them, next to the sources' masks: 800
    blank boxes of 7 px on a drizzled, 2 x 2-binned frame of 148 x 148
    pixels left it 21 pixels, whose error was 0.81 of each row's (its
    share of the variance 0.66), and 11 px boxes on a 40 x 40 WFPC2 chip
    157 (share 0.44): one offset for every row, so the boxes scattered
    0.61 and 0.79 of their errors (0.58 and 0.75 predicted from that
    share), flags 0. Rows whose level error is a smaller part of their
    own (bright stars, small apertures) are not flagged. The rule reads
    the level's own error: a blank-sky noise model (``noise=``) that
    inflates it does so for the row's sky term too (by 1.1-1.2 on
    drizzled and combined frames), hence a fraction below one half.
    """

    flag = FLAG_RESIDUAL_BACKGROUND

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        from ..background.globalsky import MIN_SKY_PIXELS

        rows = no_rows(x, y, n_pix, flux_err)
        if (getattr(sky, '_whole_frame', None) is None or not sky.isscalar
                or 'aperture_lift' not in sky.meta  # not measured again
                or not sky.n_pix < MIN_SKY_PIXELS):
            return rows, None
        error = float(sky.error_on_mean)
        if not error > 0:
            return rows, None
        level = np.abs(np.asarray(n_pix, dtype=np.float64)) * error
        with np.errstate(invalid='ignore'):
            bad = level > THIN_LEVEL_FRACTION * np.asarray(flux_err,
                                                           dtype=np.float64)
        bad = np.broadcast_to(bad, np.shape(rows))
        return (np.array(bad, dtype=bool)[()],
                (int(sky.n_pix), error, MIN_SKY_PIXELS))

    def message(self, rows, n_bad, context):
        n_sky, error, fewest = context
        return (f'the whole-frame sky rests on {n_sky} pixels (fewer than '
                f'{fewest}: apertures or sources cover most of '
                f'the frame) and its error ({error:.3g} per pixel) over '
                f'the pixels of {n_bad} aperture(s) is more than '
                f'{THIN_LEVEL_FRACTION:g} of their flux error: one offset '
                'shared by those rows, from pixels '
                'too few for its clip and scatter; they are flagged '
                f'{self.flag} (blank apertures scatter less than such '
                'errors): measure fewer or smaller apertures, or use a '
                'local sky (annuli)')


GLOBAL_SKY = GlobalSkyRule()
SPARSE_SMALL_SKY = SparseSmallSkyRule()
THIN_LEVEL = ThinLevelRule()
MAP_SKY = MapSkyRule()
MAP_FEATURE = MapFeatureRule()
SMALL_MESH = SmallMeshRule()
CROWDED_SKY = CrowdedSkyRule()
KEPT_LIGHT = SkyNoteRule('aperture_light_kept')
DROPPED_MASK = SkyNoteRule('source_mask_dropped')
COARSE_MAP = SkyNoteRule('coarse_map')
UNSEEN_SKY = SkyNoteRule('faint_light_unmeasured')
REMNANT_SKY = SkyNoteRule('aperture_remnant_doubtful')
#: The rules of `check_sky_bias`, in the order they warn.
SKY_BIAS_RULES = (GLOBAL_SKY, SPARSE_SMALL_SKY, THIN_LEVEL, MAP_SKY,
                  MAP_FEATURE, SMALL_MESH, CROWDED_SKY, KEPT_LIGHT, DROPPED_MASK,
                  COARSE_MAP, UNSEEN_SKY, REMNANT_SKY)
