# Licensed under a 3-clause BSD style license - see LICENSE
"""
Is one global sky level safe on this frame? A plane fitted to the sky of
a coarse grid of meshes, and the largest aperture a global sky suits.
"""

import math
import warnings

import numpy as np
from astropy.stats import sigma_clipped_stats
from astropy.utils.exceptions import AstropyUserWarning

from ..background.estimators import clip_factors
from ..background.sky import SkyEstimate, check_sky
from ..photometry.residual import RESIDUAL_NSIGMA, residual_error
from ..utils.inputs import (
    as_frame,
    pixel_coordinates,
    positive_scalar,
    power_of_two_scale,
)
from ..utils.numbers import positive_integer
from ..utils.stats import MAD_TO_STD, surface_design

__all__ = ['gradient_check', 'GradientCheck']


class GradientCheck:
    """
    A plane fitted to the sky of a frame, to judge a global sky level.

    Is one global sky level safe on this frame? Made by `gradient_check`.
    Coordinates are 0-based pixels; the plane is
    ``level + gx * (x - x_c) + gy * (y - y_c)`` about the frame centre
    ``(x_c, y_c)``. Every parameter is an attribute of the same name.

    Parameters
    ----------
    level : float
        The plane's level at the frame centre (data unit per pixel).
    gx : float
        The plane's slope along x (data unit per pixel, per pixel).
    gy : float
        The plane's slope along y (data unit per pixel, per pixel).
    cov : `~numpy.ndarray`
        The 2 x 2 covariance of ``gx`` and ``gy``, from the scatter of the
        mesh levels about the plane.
    shape : tuple of int
        The frame's ``(ny, nx)`` in pixels.
    pixel_noise : float
        The per-pixel noise (the median clipped standard deviation of the
        meshes, corrected for the clipping; data unit).
    global_level : float
        The global sky level compared with the plane (data unit per
        pixel).
    global_error : float
        The error of ``global_level`` (its error on the mean).
    n_sigma : float
        The significance of the rule (positive).
    n_mesh : int
        The number of meshes in the grid.
    n_used : int
        The number of meshes kept in the fit (bright stars rejected).
    box_size : int
        The side of the meshes the frame was cut into, in pixels.
    background_variation : `~ccdphot_ext.BackgroundVariation`, optional
        The coarse background variation the whole-frame sky keeps (see
        `map_offset`); None (default) when the sky has none.

    Attributes
    ----------
    gx_err : float
        The 1-sigma error of ``gx``.
    gy_err : float
        The 1-sigma error of ``gy``.
    gradient : float
        ``hypot(gx, gy)``, data unit per pixel, per pixel.
    gradient_significance : float
        The gradient over its error (its chi, with the covariance of ``gx``
        and ``gy``).
    sky_range : float
        The plane's maximum minus its minimum over the frame.
    max_offset : float
        The largest ``|plane - global_level|`` over the frame.
    max_safe_n_pix : float
        The largest aperture (pixels) for which a global sky leaves less
        than ``n_sigma`` residual everywhere: ``(n_sigma * pixel_noise /
        max_offset)**2`` (inf for a flat sky).
    """

    def __init__(self, *, level, gx, gy, cov, shape, pixel_noise,
                 global_level, global_error, n_sigma, n_mesh, n_used,
                 box_size, background_variation=None):
        self.level, self.gx, self.gy = level, gx, gy
        self.cov = cov
        self.gx_err = math.sqrt(cov[0, 0])
        self.gy_err = math.sqrt(cov[1, 1])
        self.shape = shape
        self.pixel_noise = pixel_noise
        self.global_level = global_level
        self.global_error = global_error
        self.n_sigma = n_sigma
        self.n_mesh, self.n_used, self.box_size = n_mesh, n_used, box_size
        self.background_variation = background_variation
        self.gradient = math.hypot(gx, gy)
        g = np.array([gx, gy])
        try:
            chi2 = float(g @ np.linalg.solve(cov, g))
        except np.linalg.LinAlgError:
            chi2 = math.inf
        self.gradient_significance = math.sqrt(max(chi2, 0.0))
        ny, nx = shape
        corners = [self.plane(x, y) for x in (0, nx - 1) for y in (0, ny - 1)]
        self.sky_range = max(corners) - min(corners)
        self.max_offset = max(abs(c - global_level) for c in corners)
        self.max_safe_n_pix = ((n_sigma * pixel_noise / self.max_offset) ** 2
                               if self.max_offset > 0 else math.inf)

    def plane(self, x, y):
        """
        Evaluate the fitted sky level at pixel ``(x, y)``.

        Parameters
        ----------
        x : float or array_like
            The x pixel coordinate (0-based).
        y : float or array_like
            The y pixel coordinate (0-based; broadcast with ``x``).

        Returns
        -------
        level : float or `~numpy.ndarray`
            The plane's sky level there (data unit per pixel).
        """
        ny, nx = self.shape
        x, y = pixel_coordinates(x, 'x'), pixel_coordinates(y, 'y')
        out = (self.level + self.gx * (x - (nx - 1) / 2.0)
               + self.gy * (y - (ny - 1) / 2.0))
        return float(out) if out.ndim == 0 else out

    def map_offset(self, x, y):
        """
        Say how far the whole-frame sky's background map is from its median.

        The map (medians of 64-pixel cells with the stars masked, median
        filtered and interpolated) is the one `~ccdphot_ext.measure` and
        `~ccdphot_ext.photometer` use to warn when a global sky is wrong
        under an aperture; unlike `plane` it follows a background that is
        not a plane (a cluster's unresolved light, vignetting).

        Parameters
        ----------
        x : float or array_like
            As in `plane`.
        y : float or array_like
            As in `plane`.

        Returns
        -------
        offset : float or `~numpy.ndarray`
            The map minus its median over the frame, at each position (data
            unit per pixel); NaN when the sky has no map.
        """
        if self.background_variation is None:
            return np.full(np.broadcast(x, y).shape, np.nan)[()]
        return self.background_variation(x, y)[()]

    @property
    def range_in_pixel_noise(self):
        """`sky_range` in units of the per-pixel noise."""
        return self.sky_range / self.pixel_noise

    @property
    def range_in_sky_error(self):
        """`sky_range` in units of the global level's own error."""
        return (self.sky_range / self.global_error if self.global_error > 0
                else math.inf)

    def residual_at(self, x, y, n_pix, *, sky_std=None):
        """
        Predict what a global sky leaves in an aperture at ``(x, y)``.

        Parameters
        ----------
        x : float
            The x pixel coordinate of the aperture's centre.
        y : float
            The y pixel coordinate of the aperture's centre.
        n_pix : float
            The aperture's pixel count (positive).
        sky_std : float, optional
            The per-pixel noise ``sigma`` to judge the residual against
            (data unit); None (default): `pixel_noise`.

        Returns
        -------
        residual_sum : float
            The predicted residual sum ``n_pix * (plane - global_level)``
            (data unit).
        significance : float
            The residual over its error ``sqrt(n_pix * sigma**2 +
            n_pix**2 * global_error**2)`` (inf when that error is 0).

        Raises
        ------
        ValueError
            If ``n_pix`` is not positive and finite.
        """
        n_pix = positive_scalar(n_pix, 'n_pix', allow_none=False)
        sky_std = positive_scalar(sky_std, 'sky_std', allow_zero=True)
        sigma = self.pixel_noise if sky_std is None else sky_std
        total = n_pix * (self.plane(x, y) - self.global_level)
        err = residual_error(n_pix, sigma, self.global_error)
        return total, (total / err if err > 0 else math.inf)

    def is_unsafe(self, n_pix):
        """
        Say whether a global sky is unsafe for an aperture of ``n_pix`` pixels.

        Parameters
        ----------
        n_pix : float
            The aperture's pixel count (positive).

        Returns
        -------
        unsafe : bool
            True when the gradient is significant (above ``n_sigma``) and
            an aperture of ``n_pix`` pixels somewhere on the frame would
            keep a residual above ``n_sigma`` after a global sky
            subtraction (``n_pix > max_safe_n_pix``).

        Raises
        ------
        ValueError
            If ``n_pix`` is not positive and finite.
        """
        n_pix = positive_scalar(n_pix, 'n_pix', allow_none=False)
        return bool(self.gradient_significance > self.n_sigma
                    and n_pix > self.max_safe_n_pix)

    def __repr__(self):
        return (f'<GradientCheck gx={self.gx:.4g}+-{self.gx_err:.2g} '
                f'gy={self.gy:.4g}+-{self.gy_err:.2g} per pixel '
                f'({self.gradient_significance:.1f} sigma), range '
                f'{self.sky_range:.4g} = {self.range_in_pixel_noise:.2f} '
                f'pixel sigma, safe up to {self.max_safe_n_pix:.4g} pixels>')


def gradient_check(data, *, sky=None, box_size=32, mask=None, sigma=3.0,
                   n_sigma=RESIDUAL_NSIGMA):
    """
    Fit a plane to the sky of a frame and say when a global sky is unsafe.

    The frame (trimmed to whole meshes, from the lower-left corner) is cut
    into ``box_size`` x ``box_size`` meshes; each gives a sigma-clipped
    median. A plane is fitted to these levels by least squares, rejecting
    meshes more than ``sigma`` robust standard deviations away (bright
    stars) until none is rejected; the coefficient errors come from the
    scatter about the plane.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
        The 2-D frame (sky not subtracted).
    sky : `~ccdphot_ext.SkyEstimate`, optional
        The global sky to be judged (one level); None (default):
        ``SkyEstimate.from_image(data)``.
    box_size : int, optional
        The mesh side in pixels (default 32; as photutils'
        ``Background2D``); the frame must hold at least 2 x 2 meshes.
    mask : array_like of bool, optional
        Pixels to leave out (True = bad), combined with an NDData's mask;
        None (default): only non-finite pixels are left out.
    sigma : float, optional
        The clipping threshold, in standard deviations, inside meshes and
        between meshes (default 3).
    n_sigma : float, optional
        The significance of the rule (default 5, as flag 32).

    Returns
    -------
    check : `GradientCheck`
        The fitted plane, its significance and the largest aperture a
        global sky suits.

    Raises
    ------
    TypeError
        If ``sky`` is not a global `~ccdphot_ext.SkyEstimate`.
    ValueError
        If ``box_size`` leaves fewer than 2 x 2 meshes or fewer than 4
        usable ones, or meshes with no pixel scatter (``box_size=1``, a
        constant frame), or an option is not positive.

    Examples
    --------
    >>> from ccdphot_ext import sample_frame
    >>> from ccdphot_ext import gradient_check
    >>> g = gradient_check(sample_frame())
    >>> print(f'{g.gx:.3f} {g.gy:.3f} ADU/pixel '
    ...       f'({g.gradient_significance:.0f} sigma)')
    0.150 -0.050 ADU/pixel (397 sigma)
    >>> print(f'range {g.sky_range:.0f} ADU = {g.range_in_pixel_noise:.1f} '
    ...       f'pixel sigma = {g.range_in_sky_error:.0f} sky-level errors')
    range 140 ADU = 3.8 pixel sigma = 2216 sky-level errors
    >>> print(f'a global sky is safe up to {g.max_safe_n_pix:.1f} pixels')
    a global sky is safe up to 6.8 pixels
    >>> g.is_unsafe(400)
    True
    """
    mesh = positive_integer(box_size, 'box_size')
    sigma = positive_scalar(sigma, 'sigma', allow_none=False)
    n_sigma = positive_scalar(n_sigma, 'n_sigma', allow_none=False)
    frame = as_frame(data, mask=mask)
    ny, nx = frame.shape
    nby, nbx = ny // mesh, nx // mesh
    if nby * nbx < 4 or min(nby, nbx) < 2:
        raise ValueError(f'box_size={mesh} leaves fewer than 2 x 2 meshes on a '
                         f'frame of shape {frame.shape}')
    if sky is None:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            sky = SkyEstimate.from_image(frame)
    check_sky(sky)
    if not sky.isscalar:
        raise TypeError('sky must be a global SkyEstimate (one level)')
    if power_of_two_scale(frame.data, high=math.inf) < 1.0:
        # the plane's covariance is the square of the scatter: 0
        raise ValueError('data: its pixel values are too small for a '
                         'gradient check (the squares of their scatter '
                         'underflow to 0); scale the frame by a power of ten')
    med, std = _mesh_levels(frame, mesh, sigma)
    coef, cov, use = _fit_plane(med, mesh, frame.shape, sigma)
    pixel_noise = float(np.nanmedian(std)) * clip_factors(sigma)[0]
    if not pixel_noise > 0:
        # every range and safe size is in units of this noise
        raise ValueError(f'box_size={mesh}: the meshes show no pixel scatter '
                         '(their median standard deviation is 0): use '
                         'larger meshes (a frame that is constant has no '
                         'gradient to check)')
    return GradientCheck(level=float(coef[0]), gx=float(coef[1]),
                         gy=float(coef[2]), cov=cov[1:, 1:],
                         shape=frame.shape, pixel_noise=pixel_noise,
                         global_level=float(sky.value),
                         global_error=float(sky.error_on_mean),
                         n_sigma=n_sigma, n_mesh=nby * nbx,
                         n_used=int(use.sum()), box_size=mesh,
                         background_variation=sky.background_variation)


def _mesh_levels(frame, mesh, sigma):
    """
    Sigma-clipped median and standard deviation of each whole ``mesh`` x
    ``mesh`` mesh from the lower-left corner.

    Parameters
    ----------
    frame : Frame
        The frame (its data and mask).
    mesh : int
        The meshes' side (pixels).
    sigma : float
        The clip, in standard deviations.

    Returns
    -------
    median, std : `~numpy.ndarray`
        Shaped like the grid of meshes (NaN where a mesh has no usable
        pixel).
    """
    ny, nx = frame.shape
    nby, nbx = ny // mesh, nx // mesh
    img = frame.data[:nby * mesh, :nbx * mesh].astype(np.float64)
    bad = ~np.isfinite(img)
    if frame.mask is not None:
        bad |= frame.mask[:nby * mesh, :nbx * mesh]
    img = np.where(bad, np.nan, img)
    blocks = img.reshape(nby, mesh, nbx, mesh).swapaxes(1, 2).reshape(
        nby, nbx, mesh * mesh)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        warnings.simplefilter('ignore', RuntimeWarning)
        _, med, std = sigma_clipped_stats(blocks, sigma=sigma, maxiters=5,
                                          axis=2)
    return np.asarray(med, dtype=float), np.asarray(std, dtype=float)


def _fit_plane(levels, mesh, shape, sigma):
    """
    Least-squares plane through the mesh levels (coordinates about the
    frame centre), rejecting meshes more than ``sigma`` robust standard
    deviations off until none is.

    Parameters
    ----------
    levels : 2-D `~numpy.ndarray`
        Each mesh's level (NaN: not usable), as `_mesh_levels` gives them.
    mesh : int
        The meshes' side (pixels).
    shape : tuple of int
        The frame's shape.
    sigma : float
        The rejection threshold, in robust standard deviations.

    Returns
    -------
    coef : `~numpy.ndarray`
        The plane's level at the frame's centre and its x and y slopes.
    cov : `~numpy.ndarray`
        Their covariance, from the scatter about the plane.
    use : `~numpy.ndarray` of bool
        The meshes used (flattened).

    Raises
    ------
    ValueError
        Fewer than 4 meshes usable.
    """
    ny, nx = shape
    nby, nbx = levels.shape
    yc, xc = np.mgrid[0:nby, 0:nbx]
    xs = (xc.ravel() + 0.5) * mesh - 0.5 - (nx - 1) / 2.0
    ys = (yc.ravel() + 0.5) * mesh - 0.5 - (ny - 1) / 2.0
    z = levels.ravel()
    use = np.isfinite(z)
    design = surface_design(xs, ys)
    for _ in range(10):
        if use.sum() < 4:
            raise ValueError('too few usable meshes to fit a plane; use a '
                             'smaller box_size')
        coef, *_ = np.linalg.lstsq(design[use], z[use], rcond=None)
        resid = z - design @ coef
        scale = MAD_TO_STD * np.median(np.abs(resid[use]))
        new = np.isfinite(z) & (np.abs(resid) <= sigma * max(scale, 1e-300))
        if np.array_equal(new, use):
            break
        use = new
    dof = max(int(use.sum()) - 3, 1)
    s2 = float(np.sum(resid[use] ** 2)) / dof
    cov = s2 * np.linalg.inv(design[use].T @ design[use])
    return coef, cov, use
