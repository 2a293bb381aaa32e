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
    the threshold mask, and its significance ``sum / sqrt(n sky_std**2 +
    n**2 error_on_mean**2)``; more than `RESIDUAL_NSIGMA` (5) sets
    `FLAG_RESIDUAL_BACKGROUND` (32), the rule `measure` applies
    (`residual_background` does the notebook's arithmetic from sums).
flux lost by the mask
    ``(box - mask) / box``, the notebook's 14.6%.
curve of growth
    the flux in the aperture scaled by `GROWTH_SCALES`, and the aperture
    correction ``F(largest) / F(aperture)`` with the error of the ring
    between them. A curve that keeps rising is a sky left in the data.
gradient check
    `gradient_check`: a plane fitted to sigma-clipped medians of a coarse
    grid of meshes (``gradient_box_size`` pixels) over the frame; it
    reports the gradient, the sky range across the frame in units of the
    per-pixel noise and of the global level's error, and the largest
    aperture over which a global sky leaves no significant residual
    anywhere. At the aperture, the residual the plane predicts for a global
    sky is tested with the same 5-sigma rule (flag 32).
"""

import math
from dataclasses import dataclass

import numpy as np
from astropy.table import QTable
from photutils.aperture import PixelAperture

from ..background.threshold import SigmaThreshold
from ..flags import FLAG_RESIDUAL_BACKGROUND
from ..photometry.measurement import measure
from ..photometry.residual import (
    RESIDUAL_NSIGMA,
    residual_error,
    residual_is_significant,
)
from ..utils.inputs import positive_scalar
from ..utils.numbers import finite_number, positive_integer
from ..utils.warnonce import warn_once
from .gradient import GradientCheck, gradient_check  # noqa: F401
from .growth import GROWTH_SCALES, aperture_correction, growth_curve

__all__ = ['systematics_report', 'SystematicsReport', 'residual_background',
           'ResidualBackground']


@dataclass(frozen=True)
class ResidualBackground:
    """
    Sky-subtracted signal in the aperture pixels outside the mask.

    Made by `residual_background`; each parameter is an attribute of the
    same name.

    Parameters
    ----------
    n_pix : float
        The (weighted) number of aperture pixels the mask leaves out.
    sum : float
        Their summed sky-subtracted signal (data unit).
    mean : float
        Their mean signal per pixel, ``sum / n_pix`` (NaN without pixels).
    error : float
        The error of ``sum`` for pure sky,
        ``sqrt(n_pix * sky_std**2 + n_pix**2 * sky_error_on_mean**2)``.
    significance : float
        ``sum / error`` (NaN without an error).
    significant : bool
        Whether ``|sum| > n_sigma * error``: what sets
        `~ccdphot_ext.FLAG_RESIDUAL_BACKGROUND`.
    lost_fraction : float
        ``(box_sum - mask_sum) / box_sum``, the share of the box's flux the
        mask leaves out (NaN for a zero box sum).
    """

    n_pix: float
    sum: float
    mean: float
    error: float
    significance: float
    significant: bool
    lost_fraction: float


def residual_background(box_sum, mask_sum, box_n_pix, mask_n_pix, sky_std, *,
                        sky_error_on_mean=0.0, n_sigma=RESIDUAL_NSIGMA):
    """
    Do the notebook's residual-background arithmetic from the two sums.

    Parameters
    ----------
    box_sum : float
        The sky-subtracted sum over the whole box (data unit, finite).
    mask_sum : float
        The sky-subtracted sum over the threshold mask inside the box (data
        unit, finite).
    box_n_pix : float
        The box's pixel count (positive).
    mask_n_pix : float
        The mask's pixel count (from 0 to ``box_n_pix``).
    sky_std : float
        The per-pixel sky noise (data unit, non-negative).
    sky_error_on_mean : float, optional
        The error of the subtracted sky level (data unit per pixel,
        non-negative; default 0).
    n_sigma : float, optional
        The significance above which the residual is flagged (default 5,
        as flag 32 of `~ccdphot_ext.measure`).

    Returns
    -------
    residual : `ResidualBackground`
        The residual's sum, mean, error and significance, and the share of
        the box's flux the mask leaves out.

    Raises
    ------
    ValueError
        If a sum is not finite, a count or noise is negative (or the box's
        zero), or ``mask_n_pix`` exceeds ``box_n_pix``.

    Examples
    --------
    The notebook's numbers:

    >>> from ccdphot_ext.analysis import residual_background
    >>> r = residual_background(41349.2, 35316.2, 400, 100, 53.139)
    >>> print(f'{r.sum:.1f} over {r.n_pix:.0f} pixels, mean {r.mean:.1f}, '
    ...       f'{100 * r.lost_fraction:.1f}% of the box, '
    ...       f'{r.significance:.1f} sigma')
    6033.0 over 300 pixels, mean 20.1, 14.6% of the box, 6.6 sigma
    >>> r.significant
    True
    """
    box_sum = finite_number(box_sum, 'box_sum')
    mask_sum = finite_number(mask_sum, 'mask_sum')
    box_n_pix = positive_scalar(box_n_pix, 'box_n_pix', allow_none=False)
    mask_n_pix = positive_scalar(mask_n_pix, 'mask_n_pix', allow_none=False,
                                 allow_zero=True)
    if mask_n_pix > box_n_pix:
        raise ValueError(f'mask_n_pix ({mask_n_pix}) exceeds box_n_pix '
                         f'({box_n_pix})')
    sky_std = positive_scalar(sky_std, 'sky_std', allow_none=False,
                              allow_zero=True)
    error_on_mean = positive_scalar(sky_error_on_mean, 'sky_error_on_mean',
                          allow_none=False, allow_zero=True)
    n_sigma = positive_scalar(n_sigma, 'n_sigma', allow_none=False)
    n = box_n_pix - mask_n_pix
    total = box_sum - mask_sum
    error = residual_error(n, sky_std, error_on_mean)
    sig = total / error if error > 0 else math.nan
    return ResidualBackground(
        n_pix=n, sum=total, mean=total / n if n > 0 else math.nan,
        error=error, significance=sig,
        significant=residual_is_significant(total, n, sky_std, error_on_mean,
                                            n_sigma=n_sigma),
        lost_fraction=total / box_sum if box_sum != 0 else math.nan)


class SystematicsReport:
    """
    The systematics of one measurement (made by `systematics_report`).

    Parameters
    ----------
    box : `~ccdphot_ext.ApertureMeasurement`
        The measurement of the whole aperture (an attribute of the same
        name).
    masked : `~ccdphot_ext.ApertureMeasurement`
        The measurement inside the threshold mask (attribute ``masked``).
    residual : `ResidualBackground`
        The background left in the aperture outside the mask (attribute
        ``residual``).
    curve : `~astropy.table.QTable` or None
        The curve of growth from `growth_curve` (attribute
        ``curve_of_growth``); None when not measured.
    gradient : `GradientCheck` or None
        The frame-level plane fit (attribute ``gradient``); None when not
        run.
    n_sigma : float
        The significance of the flag-32 rule (attribute ``n_sigma``).

    Attributes
    ----------
    aperture_correction : float
        ``F(largest scale) / F(aperture)`` from the curve of growth (NaN
        without a curve, if the aperture is not among the scales or its
        flux is not positive).
    aperture_correction_err : float
        The error of the ring flux between the two over ``F(aperture)``
        (NaN likewise).
    gradient_residual : float
        For a global sky: the residual sum the fitted plane predicts in
        this aperture (data unit; NaN without ``gradient``).
    gradient_significance : float
        Its significance (NaN without ``gradient``).
    flags : int
        `~ccdphot_ext.FLAG_RESIDUAL_BACKGROUND` when the residual outside
        the mask or the residual the gradient predicts is significant,
        else 0.
    """

    def __init__(self, box, masked, residual, curve, gradient, n_sigma):
        self.box = box
        self.masked = masked
        self.residual = residual
        self.curve_of_growth = curve
        self.gradient = gradient
        self.n_sigma = n_sigma
        self.aperture_correction, self.aperture_correction_err = (
            aperture_correction(curve) if curve is not None
            else (math.nan, math.nan))
        self.gradient_residual = math.nan
        self.gradient_significance = math.nan
        if gradient is not None:
            x, y = box.position
            self.gradient_residual, self.gradient_significance = \
                gradient.residual_at(x, y, box.n_pix, sky_std=box.sky_std)
        flags = 0
        if residual.significant or abs(self.gradient_significance) > n_sigma:
            flags |= FLAG_RESIDUAL_BACKGROUND
        self.flags = flags

    @property
    def lost_fraction(self):
        """Flux of the box the mask leaves out, ``(box - mask) / box``."""
        return self.residual.lost_fraction

    def to_table(self):
        """
        Tabulate the report.

        Returns
        -------
        table : `~astropy.table.QTable`
            One row per number, with columns ``quantity`` (its name),
            ``value`` and ``note`` (what it is); the gradient's rows only
            when the gradient check was run.
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
             f'flag 32 above {self.n_sigma:g} sigma'),
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
                 f'flag 32 above {self.n_sigma:g} sigma'),
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


def systematics_report(data, aperture, sky, *, threshold=None, gain=None,
                       scales=GROWTH_SCALES, gradient=True,
                       gradient_box_size=32, n_sigma=RESIDUAL_NSIGMA,
                       **kwargs):
    """
    Check one measurement for the systematics its error budget leaves out.

    Residual background outside the threshold mask, the flux the mask
    loses, the curve of growth and, for a global sky, a plane fitted to
    the frame's sky; each warning is said once.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
        The processed 2-D frame, sky not subtracted (as in
        `~ccdphot_ext.measure`).
    aperture : `~ccdphot_ext.BoxAperture` or `~photutils.aperture.PixelAperture`
        One position (the curve of growth needs a box, circle, ellipse or
        rectangle).
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted (one level or a 2-D map, in the data unit); the
        gradient check runs only for one global level.
    threshold : `~ccdphot_ext.SigmaThreshold`, optional
        The mask compared with the whole aperture; None (default):
        ``SigmaThreshold(2.0, selection='pixel')``, the notebook's mask
        (biased high: see `~ccdphot_ext.SigmaThreshold`).
    gain : float or `~astropy.units.Quantity`, optional
        The detector gain in e-/ADU, as in `~ccdphot_ext.measure`; None
        (default): ``detector``'s, else the header's, else no source
        Poisson term.
    scales : sequence of float or None, optional
        The curve-of-growth scale factors (default `GROWTH_SCALES`); None
        skips the curve (and the aperture correction is NaN).
    gradient : bool, optional
        Whether to run `gradient_check` on the frame (default True; only
        for a global one-level sky).
    gradient_box_size : int, optional
        The mesh side of `gradient_check` in pixels (its ``box_size``;
        default 32).
    n_sigma : float, optional
        The significance of the flag-32 rule (default 5, as
        `~ccdphot_ext.measure`).
    **kwargs
        Passed to every `~ccdphot_ext.measure`: ``noise``, ``detector``,
        ``budget``, ``sum_method``, ``subpixels``, ``uncertainty`` and
        ``mask`` (``mask`` also to `gradient_check`).

    Returns
    -------
    report : `SystematicsReport`
        The two measurements, the residual background, the curve of growth
        and aperture correction, the gradient check and the flags.

    Raises
    ------
    TypeError
        If ``aperture`` is not a pixel aperture, or a keyword is not one of
        `~ccdphot_ext.measure`'s.
    ValueError
        If ``n_sigma`` is not positive, or `~ccdphot_ext.measure` refuses
        an input.

    Examples
    --------
    The notebook's first star on the bundled sample, with the global mean
    sky:

    >>> import numpy as np
    >>> from ccdphot_ext import BoxAperture, SkyEstimate, sample_frame
    >>> from ccdphot_ext import systematics_report
    >>> ccd = sample_frame()
    >>> sky = SkyEstimate.from_image(ccd.data, method='mean',
    ...                              mask_sources=False)
    >>> box = BoxAperture.from_slices(np.s_[158:178, 492:512])
    >>> rep = systematics_report(ccd.data, box, sky,
    ...                          gain=2.23)  # doctest: +SHOW_WARNINGS
    AstropyUserWarning: the background varies across the frame: for 1 of ...
    >>> r = rep.residual
    >>> print(f'{r.sum:.0f} ADU over {r.n_pix:.0f} pixels, mean {r.mean:.1f}')
    9039 ADU over 326 pixels, mean 27.7
    >>> rep.flags
    32
    """
    if threshold is None:
        threshold = SigmaThreshold(2.0, selection='pixel')
    if not isinstance(aperture, PixelAperture):
        raise TypeError('aperture must be a BoxAperture or a photutils '
                        f'PixelAperture, got {type(aperture).__name__}')
    n_sigma = positive_scalar(n_sigma, 'n_sigma', allow_none=False)
    gradient_box_size = positive_integer(gradient_box_size,
                                         'gradient_box_size')
    with warn_once():  # the steps measure one aperture, and would repeat
        box = measure(data, aperture, sky, gain=gain, **kwargs)
        masked = measure(data, aperture, sky, gain=gain, threshold=threshold,
                         **kwargs)
        residual = residual_background(
            box.flux, masked.flux, box.n_pix, masked.n_pix, box.sky_std,
            sky_error_on_mean=box.sky_error_on_mean, n_sigma=n_sigma)
        curve = None
        if scales is not None:
            curve = growth_curve(data, aperture, sky, scales=scales,
                                 gain=gain, **kwargs)
        check = None
        if gradient and np.ndim(sky.value) == 0:
            check = gradient_check(data, sky=sky,
                                   box_size=gradient_box_size,
                                   n_sigma=n_sigma, mask=kwargs.get('mask'))
    return SystematicsReport(box, masked, residual, curve, check, n_sigma)
