# Licensed under a 3-clause BSD style license - see LICENSE
"""
Systematic errors of one measurement: what the random error budget leaves
out.

The notebook's "Systematic errors" section found that the box pixels left
out by the 2-sigma mask still held 6033.0 ADU over 300 pixels (mean 20.1
ADU, the box sum being 14.6% above the mask sum), from a gradient the global
sky missed. `systematics_report` makes that check, and three more, for any
measurement:

residual background
    the sky-subtracted sum, mean and number of the aperture pixels outside
    the threshold mask, and its significance ``sum / sqrt(n sigma_sky**2 +
    n**2 sigma_B**2)``; more than `RESIDUAL_NSIGMA` (5) sets
    `FLAG_RESIDUAL_BACKGROUND` (32), the rule `measure` applies
    (`residual_background` does the notebook's arithmetic from sums).
flux lost by the mask
    ``(box - mask) / box``, the notebook's 14.6%.
curve of growth
    the flux in the aperture scaled by `DEFAULT_SCALES`, and the aperture
    correction ``F(largest) / F(aperture)`` with the error of the ring
    between them. A curve that keeps rising is a sky left in the data.
gradient check
    `gradient_check`: a plane fitted to sigma-clipped medians of a coarse
    grid of meshes over the frame; it reports the gradient, the sky range
    across the frame in units of the per-pixel noise and of the global
    level's error, and the largest aperture over which a global sky leaves
    no significant residual anywhere. At the aperture, the residual the
    plane predicts for a global sky is tested with the same 5-sigma rule
    (flag 32).
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clipped_stats
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import (
    CircularAperture,
    EllipticalAperture,
    PixelAperture,
    RectangularAperture,
)

from ..aperture.box import BoxAperture
from ..background.sky import SkyEstimate
from ..background.threshold import SigmaThreshold
from ..flags import FLAG_RESIDUAL_BACKGROUND
from ..photometry.measurement import measure
from ..photometry.residual import (
    RESIDUAL_NSIGMA,
    residual_error,
    residual_is_significant,
)
from ..utils.inputs import as_frame, positive_scalar

__all__ = ['systematics_report', 'SystematicsReport', 'residual_background',
           'ResidualBackground', 'gradient_check', 'GradientCheck',
           'growth_curve', 'DEFAULT_SCALES']

#: Aperture scale factors of the curve of growth.
DEFAULT_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


@dataclass(frozen=True)
class ResidualBackground:
    """
    Sky-subtracted signal in the aperture pixels outside the mask.

    Attributes
    ----------
    n_pix, sum, mean : float
        Pixels left out by the mask, their summed and mean signal.
    error : float
        ``sqrt(n_pix * sky_std**2 + n_pix**2 * sky_error_on_mean**2)``.
    significance : float
        ``sum / error`` (NaN without pixels or error).
    significant : bool
        ``|significance| > nsigma``: `FLAG_RESIDUAL_BACKGROUND`.
    lost_fraction : float
        ``(box_sum - mask_sum) / box_sum``, the flux the mask leaves out.
    """

    n_pix: float
    sum: float
    mean: float
    error: float
    significance: float
    significant: bool
    lost_fraction: float


def residual_background(box_sum, mask_sum, box_n_pix, mask_n_pix, sky_std, *,
                        sky_error_on_mean=0.0, nsigma=RESIDUAL_NSIGMA):
    """
    The notebook's residual-background arithmetic, from the two sums.

    Parameters
    ----------
    box_sum, mask_sum : float
        Sky-subtracted sums over the box and over the mask inside it.
    box_n_pix, mask_n_pix : float
        Their pixel counts.
    sky_std : float
        Per-pixel sky noise.
    sky_error_on_mean : float, optional
        Error of the subtracted sky level.
    nsigma : float, optional
        Significance above which the residual is flagged.

    Returns
    -------
    residual : `ResidualBackground`

    Examples
    --------
    The notebook's numbers:

    >>> from ccdphot_ext.analysis.systematics import residual_background
    >>> r = residual_background(41349.2, 35316.2, 400, 100, 53.139)
    >>> print(f'{r.sum:.1f} over {r.n_pix:.0f} pixels, mean {r.mean:.1f}, '
    ...       f'{100 * r.lost_fraction:.1f}% of the box, '
    ...       f'{r.significance:.1f} sigma')
    6033.0 over 300 pixels, mean 20.1, 14.6% of the box, 6.6 sigma
    >>> r.significant
    True
    """
    box_sum, mask_sum = float(box_sum), float(mask_sum)
    if not (math.isfinite(box_sum) and math.isfinite(mask_sum)):
        raise ValueError('box_sum and mask_sum must be finite')
    box_n_pix = positive_scalar(box_n_pix, 'box_n_pix', allow_none=False)
    mask_n_pix = positive_scalar(mask_n_pix, 'mask_n_pix', allow_none=False,
                                 allow_zero=True)
    if mask_n_pix > box_n_pix:
        raise ValueError(f'mask_n_pix ({mask_n_pix}) exceeds box_n_pix '
                         f'({box_n_pix})')
    sky_std = positive_scalar(sky_std, 'sky_std', allow_none=False,
                              allow_zero=True)
    eom = positive_scalar(sky_error_on_mean, 'sky_error_on_mean',
                          allow_none=False, allow_zero=True)
    nsigma = positive_scalar(nsigma, 'nsigma', allow_none=False)
    n = box_n_pix - mask_n_pix
    total = box_sum - mask_sum
    error = residual_error(n, sky_std, eom)
    sig = total / error if error > 0 else math.nan
    return ResidualBackground(
        n_pix=n, sum=total, mean=total / n if n > 0 else math.nan,
        error=error, significance=sig,
        significant=residual_is_significant(total, n, sky_std, eom,
                                            n_sigma=nsigma),
        lost_fraction=total / box_sum if box_sum != 0 else math.nan)


class GradientCheck:
    """
    A plane fitted to the sky of a frame: is one global sky level safe?

    Made by `gradient_check`. Coordinates are 0-based pixels; the plane is
    ``level + gx * (x - x_c) + gy * (y - y_c)`` about the frame centre.

    Attributes
    ----------
    level, gx, gy : float
        Plane coefficients (data unit, per pixel).
    gx_err, gy_err : float
        Their 1-sigma errors, from the scatter of the mesh levels about the
        plane.
    gradient, gradient_significance : float
        ``hypot(gx, gy)`` and its chi (the gradient over its error, with the
        covariance of ``gx`` and ``gy``).
    sky_range : float
        Plane maximum minus minimum over the frame.
    pixel_noise : float
        Per-pixel noise (median clipped standard deviation of the meshes).
    global_level, global_error : float
        The global sky compared with the plane and its error.
    max_offset : float
        Largest ``|plane - global_level|`` over the frame.
    max_safe_n_pix : float
        Largest aperture (pixels) for which a global sky leaves less than
        ``nsigma`` residual everywhere: ``(nsigma * pixel_noise /
        max_offset)**2`` (inf for a flat sky).
    n_mesh, n_used : int
        Meshes in the grid and meshes kept in the fit.
    """

    def __init__(self, *, level, gx, gy, cov, shape, pixel_noise,
                 global_level, global_error, nsigma, n_mesh, n_used, mesh):
        self.level, self.gx, self.gy = level, gx, gy
        self.cov = cov
        self.gx_err = math.sqrt(cov[0, 0])
        self.gy_err = math.sqrt(cov[1, 1])
        self.shape = shape
        self.pixel_noise = pixel_noise
        self.global_level = global_level
        self.global_error = global_error
        self.nsigma = nsigma
        self.n_mesh, self.n_used, self.mesh = n_mesh, n_used, mesh
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
        self.max_safe_n_pix = ((nsigma * pixel_noise / self.max_offset) ** 2
                               if self.max_offset > 0 else math.inf)

    def plane(self, x, y):
        """The fitted sky level at pixel ``(x, y)``."""
        ny, nx = self.shape
        return (self.level + self.gx * (x - (nx - 1) / 2.0)
                + self.gy * (y - (ny - 1) / 2.0))

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
        What a global sky leaves in an aperture of ``n_pix`` pixels at
        ``(x, y)``: the predicted sum ``n_pix * (plane - global_level)`` and
        its significance against ``sqrt(n_pix * sigma**2 + n_pix**2 *
        global_error**2)``.

        Returns
        -------
        residual_sum, significance : float
        """
        n_pix = positive_scalar(n_pix, 'n_pix', allow_none=False)
        sigma = self.pixel_noise if sky_std is None else float(sky_std)
        total = n_pix * (self.plane(x, y) - self.global_level)
        err = residual_error(n_pix, sigma, self.global_error)
        return total, (total / err if err > 0 else math.inf)

    def is_unsafe(self, n_pix):
        """
        True when the gradient is significant and an aperture of ``n_pix``
        pixels somewhere on the frame would keep a residual above
        ``nsigma`` after a global sky subtraction.
        """
        n_pix = positive_scalar(n_pix, 'n_pix', allow_none=False)
        return bool(self.gradient_significance > self.nsigma
                    and n_pix > self.max_safe_n_pix)

    def __repr__(self):
        return (f'<GradientCheck gx={self.gx:.4g}+-{self.gx_err:.2g} '
                f'gy={self.gy:.4g}+-{self.gy_err:.2g} per pixel '
                f'({self.gradient_significance:.1f} sigma), range '
                f'{self.sky_range:.4g} = {self.range_in_pixel_noise:.2f} '
                f'pixel sigma, safe up to {self.max_safe_n_pix:.4g} pixels>')


def gradient_check(data, *, sky=None, mesh=32, mask=None, sigma=3.0,
                   nsigma=RESIDUAL_NSIGMA):
    """
    Fit a plane to the sky of a frame and say when a global sky is unsafe.

    The frame (trimmed to whole meshes, from the lower-left corner) is cut
    into ``mesh`` × ``mesh`` boxes; each gives a sigma-clipped median. A plane
    is fitted to these levels by least squares, rejecting meshes more than
    ``sigma`` robust standard deviations away (bright stars) until none is
    rejected; the coefficient errors come from the scatter about the plane.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The frame.
    sky : `SkyEstimate`, optional
        The global sky to be judged (one level); default
        ``SkyEstimate.from_image(data)``.
    mesh : int, optional
        Mesh side in pixels.
    mask : array_like of bool, optional
        Pixels to leave out (combined with an NDData's mask).
    sigma : float, optional
        Clipping threshold inside meshes and between meshes.
    nsigma : float, optional
        Significance of the rule (default 5, as flag 32).

    Returns
    -------
    check : `GradientCheck`

    Examples
    --------
    >>> from ccdphot_ext import sample_frame
    >>> from ccdphot_ext.analysis.systematics import gradient_check
    >>> g = gradient_check(sample_frame())
    >>> print(f'{g.gx:.3f} {g.gy:.3f} ADU/pixel '
    ...       f'({g.gradient_significance:.0f} sigma)')
    0.150 -0.050 ADU/pixel (397 sigma)
    >>> print(f'range {g.sky_range:.0f} ADU = {g.range_in_pixel_noise:.1f} '
    ...       f'pixel sigma = {g.range_in_sky_error:.0f} sky-level errors')
    range 140 ADU = 3.8 pixel sigma = 2383 sky-level errors
    >>> print(f'a global sky is safe up to {g.max_safe_n_pix:.1f} pixels')
    a global sky is safe up to 6.8 pixels
    >>> g.is_unsafe(400)
    True
    """
    mesh = int(positive_scalar(mesh, 'mesh', allow_none=False))
    sigma = positive_scalar(sigma, 'sigma', allow_none=False)
    nsigma = positive_scalar(nsigma, 'nsigma', allow_none=False)
    frame = as_frame(data, mask=mask)
    ny, nx = frame.shape
    nby, nbx = ny // mesh, nx // mesh
    if nby * nbx < 4 or min(nby, nbx) < 2:
        raise ValueError(f'mesh={mesh} leaves fewer than 2 x 2 meshes on a '
                         f'frame of shape {frame.shape}')
    if sky is None:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            sky = SkyEstimate.from_image(frame)
    if not isinstance(sky, SkyEstimate) or np.ndim(sky.value) != 0:
        raise TypeError('sky must be a global SkyEstimate (one level)')
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
    yc, xc = np.mgrid[0:nby, 0:nbx]
    xs = (xc.ravel() + 0.5) * mesh - 0.5 - (nx - 1) / 2.0
    ys = (yc.ravel() + 0.5) * mesh - 0.5 - (ny - 1) / 2.0
    z = np.asarray(med, dtype=float).ravel()
    use = np.isfinite(z)
    design = np.column_stack([np.ones_like(xs), xs, ys])
    for _ in range(10):
        if use.sum() < 4:
            raise ValueError('too few usable meshes to fit a plane; use a '
                             'smaller mesh')
        coef, *_ = np.linalg.lstsq(design[use], z[use], rcond=None)
        resid = z - design @ coef
        scale = 1.4826 * np.median(np.abs(resid[use]))
        new = np.isfinite(z) & (np.abs(resid) <= sigma * max(scale, 1e-300))
        if np.array_equal(new, use):
            break
        use = new
    dof = max(int(use.sum()) - 3, 1)
    s2 = float(np.sum(resid[use] ** 2)) / dof
    cov = s2 * np.linalg.inv(design[use].T @ design[use])
    pixel_noise = float(np.nanmedian(std)) * _clip_std_factor(sigma)
    return GradientCheck(level=float(coef[0]), gx=float(coef[1]),
                         gy=float(coef[2]), cov=cov[1:, 1:],
                         shape=frame.shape, pixel_noise=pixel_noise,
                         global_level=float(sky.value),
                         global_error=float(sky.error_on_mean),
                         nsigma=nsigma, n_mesh=nby * nbx,
                         n_used=int(use.sum()), mesh=mesh)


def _clip_std_factor(sigma):
    from ..background.sky import clip_factors
    return clip_factors(sigma)[0]


def _scaled(aperture, scale):
    """The aperture with every linear size multiplied by ``scale``."""
    if isinstance(aperture, BoxAperture):
        return BoxAperture(aperture.positions[0], aperture.width * scale,
                           aperture.height * scale, aperture.theta)
    pos = np.atleast_2d(aperture.positions)[0]
    if isinstance(aperture, CircularAperture):
        return CircularAperture(pos, aperture.r * scale)
    if isinstance(aperture, EllipticalAperture):
        return EllipticalAperture(pos, aperture.a * scale, aperture.b * scale,
                                  theta=aperture.theta)
    if isinstance(aperture, RectangularAperture):
        return RectangularAperture(pos, aperture.w * scale,
                                   aperture.h * scale, theta=aperture.theta)
    raise TypeError('aperture must be a BoxAperture or a photutils Circular-, '
                    'Elliptical- or RectangularAperture for a curve of '
                    f'growth, got {type(aperture).__name__}')


def _size(aperture):
    if isinstance(aperture, BoxAperture):
        return aperture.width
    if isinstance(aperture, CircularAperture):
        return float(aperture.r)
    if isinstance(aperture, EllipticalAperture):
        return float(aperture.a)
    return float(aperture.w)


def growth_curve(data, aperture, sky, *, scales=DEFAULT_SCALES, **kwargs):
    """
    Flux in the aperture scaled by each of ``scales`` (curve of growth).

    Parameters
    ----------
    data, sky
        As in `measure`.
    aperture : `BoxAperture`, or photutils Circular-, Elliptical- or RectangularAperture
        One position; every linear size is multiplied by each scale.
    scales : sequence of float, optional
        Positive scale factors (1 is the aperture itself).
    **kwargs
        Passed to `measure` (``gain``, ``uncertainty``, ...).

    Returns
    -------
    table : `~astropy.table.QTable`
        ``scale``, ``size`` (box width, radius, semi-major axis or width),
        ``n_pix``, ``flux``, ``flux_err``, ``var_sky``, ``var_source``,
        ``var_sky_mean`` and ``flags``, in increasing scale.
    """
    scales = np.sort(np.atleast_1d(np.asarray(scales, dtype=float)))
    if scales.ndim != 1 or not np.all(np.isfinite(scales)) or np.any(
            scales <= 0):
        raise ValueError('scales must be positive finite numbers')
    rows = []
    for s in scales:
        ap = _scaled(aperture, float(s))
        res = measure(data, ap, sky, **kwargs)
        t = res.budget.terms
        rows.append((float(s), _size(ap), res.n_pix, res.flux, res.flux_err,
                     t.get('sky', t.get('map', 0.0)), t.get('source', 0.0),
                     t.get('sky_mean', 0.0), res.flags))
    return QTable(rows=rows, names=('scale', 'size', 'n_pix', 'flux',
                                    'flux_err', 'var_sky', 'var_source',
                                    'var_sky_mean', 'flags'))


class SystematicsReport:
    """
    The systematics of one measurement (made by `systematics_report`).

    Attributes
    ----------
    box, masked : `~ccdphot_ext.ApertureMeasurement`
        The whole aperture and its threshold mask.
    residual : `ResidualBackground`
        Background left in the aperture outside the mask.
    curve_of_growth : `~astropy.table.QTable`
        From `growth_curve`.
    aperture_correction, aperture_correction_err : float
        ``F(largest scale) / F(aperture)`` and the error of the ring flux
        between them over ``F(aperture)`` (NaN if the aperture is not among
        the scales or its flux is not positive).
    gradient : `GradientCheck` or None
        Frame-level check (None when not requested).
    gradient_residual, gradient_significance : float
        For a global sky: the residual sum the fitted plane predicts in this
        aperture, and its significance (NaN otherwise).
    flags : int
        `FLAG_RESIDUAL_BACKGROUND` when the residual outside the mask or the
        residual the gradient predicts is significant.
    """

    def __init__(self, box, masked, residual, curve, gradient, nsigma):
        self.box = box
        self.masked = masked
        self.residual = residual
        self.curve_of_growth = curve
        self.gradient = gradient
        self.nsigma = nsigma
        self.aperture_correction, self.aperture_correction_err = (
            _aperture_correction(curve) if curve is not None
            else (math.nan, math.nan))
        self.gradient_residual = math.nan
        self.gradient_significance = math.nan
        if gradient is not None:
            x, y = box.position
            self.gradient_residual, self.gradient_significance = \
                gradient.residual_at(x, y, box.n_pix, sky_std=box.sky_std)
        flags = 0
        if residual.significant or abs(self.gradient_significance) > nsigma:
            flags |= FLAG_RESIDUAL_BACKGROUND
        self.flags = flags

    @property
    def lost_fraction(self):
        """Flux of the box the mask leaves out, ``(box - mask) / box``."""
        return self.residual.lost_fraction

    def to_table(self):
        """
        The report as a `~astropy.table.QTable` of ``quantity``, ``value``
        and ``note``.
        """
        r = self.residual
        rows = [
            ('box_flux', self.box.flux, 'sky-subtracted box sum'),
            ('mask_flux', self.masked.flux, 'sum over the threshold mask'),
            ('lost_fraction', r.lost_fraction, '(box - mask) / box'),
            ('residual_n_pix', r.n_pix, 'box pixels outside the mask'),
            ('residual_sum', r.sum, 'their sky-subtracted sum'),
            ('residual_mean', r.mean, 'their mean'),
            ('residual_significance', r.significance,
             f'flag 32 above {self.nsigma:g} sigma'),
            ('aperture_correction', self.aperture_correction,
             'F(largest) / F(aperture)'),
            ('aperture_correction_err', self.aperture_correction_err,
             'ring error / F(aperture)'),
        ]
        if self.gradient is not None:
            g = self.gradient
            rows += [
                ('gradient_x', g.gx, 'per pixel'),
                ('gradient_y', g.gy, 'per pixel'),
                ('gradient_significance', g.gradient_significance, 'sigma'),
                ('sky_range', g.sky_range, 'across the frame'),
                ('sky_range_in_pixel_noise', g.range_in_pixel_noise, ''),
                ('sky_range_in_sky_error', g.range_in_sky_error,
                 'global level error'),
                ('max_safe_n_pix', g.max_safe_n_pix,
                 'largest aperture a global sky suits everywhere'),
                ('gradient_residual', self.gradient_residual,
                 'predicted in this aperture'),
                ('gradient_residual_significance', self.gradient_significance,
                 f'flag 32 above {self.nsigma:g} sigma'),
            ]
        rows.append(('flags', float(self.flags), 'bit 32: residual'))
        table = QTable(rows=rows, names=('quantity', 'value', 'note'))
        table['value'].info.format = '.6g'
        return table

    def __repr__(self):
        r = self.residual
        return (f'<SystematicsReport residual {r.sum:.6g} over {r.n_pix:g} '
                f'pixels (mean {r.mean:.4g}, {r.significance:.1f} sigma), '
                f'mask loses {100 * r.lost_fraction:.1f}%, aperture '
                f'correction {self.aperture_correction:.4f}, '
                f'flags={self.flags}>')


def _aperture_correction(curve):
    scales = np.asarray(curve['scale'])
    ref = np.flatnonzero(np.isclose(scales, 1.0))
    if ref.size == 0 or scales[-1] <= 1.0:
        return math.nan, math.nan
    i, j = int(ref[0]), len(scales) - 1
    f_ap = float(curve['flux'][i])
    if f_ap <= 0:
        return math.nan, math.nan
    dn = float(curve['n_pix'][j] - curve['n_pix'][i])
    var_ring = (float(curve['var_sky'][j] - curve['var_sky'][i])
                + float(curve['var_source'][j] - curve['var_source'][i]))
    n_j = float(curve['n_pix'][j])
    if n_j > 0 and curve['var_sky_mean'][j] > 0:
        eom2 = float(curve['var_sky_mean'][j]) / n_j ** 2
        var_ring += dn ** 2 * eom2
    return (float(curve['flux'][j]) / f_ap,
            math.sqrt(max(var_ring, 0.0)) / f_ap)


def systematics_report(data, aperture, sky, *, threshold=None, gain=None,
                       scales=DEFAULT_SCALES, gradient=True, mesh=32,
                       nsigma=RESIDUAL_NSIGMA, **kwargs):
    """
    Residual background, mask loss, curve of growth and gradient check for
    one measurement.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The frame.
    aperture : `BoxAperture` or photutils aperture
        One position (the curve of growth needs a box, circle, ellipse or
        rectangle).
    sky : `SkyEstimate`
        As in `measure`.
    threshold : `SigmaThreshold`, optional
        The mask; default ``SigmaThreshold(2.0)`` (the notebook's).
    gain : float, optional
        As in `measure`.
    scales : sequence of float or None, optional
        Curve-of-growth scale factors; None skips the curve.
    gradient : bool, optional
        Run `gradient_check` on the frame (for a global one-level sky).
    mesh : int, optional
        Mesh side for `gradient_check`.
    nsigma : float, optional
        Significance of the flag-32 rule (default 5, as `measure`).
    **kwargs
        Passed to `measure` (``uncertainty``, ``mask``, ``read_noise``, ...).

    Returns
    -------
    report : `SystematicsReport`

    Examples
    --------
    The notebook's first star on the bundled sample, with the global mean
    sky:

    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture, SkyEstimate, sample_frame
    >>> from ccdphot_ext.analysis.systematics import systematics_report
    >>> ccd = sample_frame()
    >>> sky = SkyEstimate.from_image(ccd.data, method='mean')
    >>> box = BoxAperture.from_slices(np.s_[158:178, 492:512])
    >>> rep = systematics_report(ccd.data, box, sky, gain=2.23)
    >>> r = rep.residual
    >>> print(f'{r.sum:.0f} ADU over {r.n_pix:.0f} pixels, mean {r.mean:.1f}')
    9039 ADU over 326 pixels, mean 27.7
    >>> rep.flags
    32
    """
    if threshold is None:
        threshold = SigmaThreshold(2.0)
    if not isinstance(aperture, (BoxAperture, PixelAperture)):
        raise TypeError('aperture must be a BoxAperture or a photutils '
                        f'PixelAperture, got {type(aperture).__name__}')
    nsigma = positive_scalar(nsigma, 'nsigma', allow_none=False)
    box = measure(data, aperture, sky, gain=gain, **kwargs)
    masked = measure(data, aperture, sky, gain=gain, threshold=threshold,
                     **kwargs)
    residual = residual_background(
        box.flux, masked.flux, box.n_pix, masked.n_pix, box.sky_std,
        sky_error_on_mean=box.sky_error_on_mean, nsigma=nsigma)
    curve = None
    if scales is not None:
        curve = growth_curve(data, aperture, sky, scales=scales, gain=gain,
                             **kwargs)
    check = None
    if gradient and np.ndim(sky.value) == 0:
        check = gradient_check(data, sky=sky, mesh=mesh, nsigma=nsigma,
                               mask=kwargs.get('mask'))
    return SystematicsReport(box, masked, residual, curve, check, nsigma)
