# Licensed under a 3-clause BSD style license - see LICENSE
"""
Re-centre apertures on the light of their stars, frame by frame.

Tracking drifts by a few pixels over a night; a `Recentering` (or its
function form `recenter_positions`) moves each nominal position to the
centroid of its star on the current frame (photutils centroids on
sky-subtracted, thresholded pixels), and keeps the nominal position where
that cannot be done safely.
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..background.sky import check_sky
from ..utils.inputs import as_frame, pixel_positions, positive_scalar
from ..utils.numbers import check_choice, iterations, positive_integer

__all__ = ['Recentering', 'recenter_positions', 'CENTROID_METHODS']

#: Centroid methods of `Recentering` (photutils centroid functions).
CENTROID_METHODS = ('com', '2dg')


@dataclass(frozen=True, kw_only=True)
class Recentering:
    """
    How to re-centre positions on the light of their stars.

    Checked when built, immutable, and called on a frame:
    ``recentering(data, positions, sky, *, mask=None)`` returns the new
    positions and which of them were re-centred (parameters and results
    as `recenter_positions`).

    For each position a ``box_size`` square around it is cut out, the sky
    level subtracted, and only pixels above ``n_sigma * sky.std`` (finite,
    unmasked) are kept; the centroid of those pixels is found with photutils
    (`~photutils.centroids.centroid_com` for ``'com'``, a 2-D Gaussian fit
    `~photutils.centroids.centroid_2dg` for ``'2dg'``) and the box is moved
    there, ``iterations`` times. A position whose box holds no significant
    light (a sky-subtracted sum below ``min_snr`` times its noise
    ``sky.std * sqrt(n)``, or fewer than 3 pixels above the threshold), or
    whose centroid moves more than ``max_shift`` from where it started,
    keeps its input value and is reported as not re-centred.

    Parameters
    ----------
    centroid : {'com', '2dg'}, optional
        Centroid method (default ``'com'``, the centre of mass).
    box_size : int, optional
        Side of the centroid box in pixels (at least 3; default 11).
    n_sigma : float, optional
        Pixel threshold above the sky in units of ``sky.std`` (default 2).
    min_snr : float, optional
        Least signal-to-noise of the box sum for a star to be followed
        (default 5; pure noise gives a standard normal value).
    max_shift : float, optional
        Largest accepted move in pixels; None (default): ``box_size / 2``.
    iterations : int, optional
        Centroid passes (the box follows the star; default 2).

    Raises
    ------
    ValueError
        If ``centroid`` is not one of `CENTROID_METHODS`, ``box_size`` is
        below 3 or a number is out of its range.
    TypeError
        If a number is not a number (or not whole where it must be).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> from ccdphot_ext.detection import Recentering
    >>> from ccdphot_ext.datasets.sample import render_stars
    >>> img = 100.0 + render_stars((40, 40), [20.3], [18.6], [5e4])
    >>> recenter = Recentering(centroid='2dg', box_size=9)
    >>> recenter
    Recentering(centroid='2dg', box_size=9, n_sigma=2.0, min_snr=5.0, \
max_shift=None, iterations=2)
    >>> pos, ok = recenter(img, [(19.0, 19.0)], SkyEstimate(100.0, 1.0, 1000))
    >>> np.round(pos, 1).tolist(), ok.tolist()
    ([[20.3, 18.6]], [True])
    """

    centroid: str = 'com'
    box_size: int = 11
    n_sigma: float = 2.0
    min_snr: float = 5.0
    max_shift: float | None = None
    iterations: int = 2

    def __post_init__(self):
        check_choice(self.centroid, 'centroid', CENTROID_METHODS)
        box_size = positive_integer(self.box_size, 'box_size')
        if box_size < 3:
            raise ValueError(f'box_size must be at least 3, got {box_size}')
        checked = {
            'box_size': box_size,
            'n_sigma': positive_scalar(self.n_sigma, 'n_sigma',
                                       allow_none=False, allow_zero=True),
            'min_snr': positive_scalar(self.min_snr, 'min_snr',
                                       allow_none=False, allow_zero=True),
            'max_shift': positive_scalar(self.max_shift, 'max_shift'),
            'iterations': iterations(self.iterations, 'iterations')}
        for name, value in checked.items():  # plain Python numbers
            object.__setattr__(self, name, value)

    def __call__(self, data, positions, sky, *, mask=None):
        """
        Re-centre ``positions`` on the stars of a frame.

        Parameters
        ----------
        data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
            The 2-D frame, sky not subtracted (an NDData's mask is used).
        positions : array_like
            The nominal ``(x, y)`` pixel positions, an ``(N, 2)`` array
            (one ``(x, y)`` pair is taken as ``N = 1``).
        sky : `~ccdphot_ext.SkyEstimate`
            The sky in the data unit: one global level, or one level per
            position.
        mask : array_like of bool, optional
            True for bad pixels, combined with an NDData's mask; None
            (default): only non-finite pixels are left out.

        Returns
        -------
        new_positions : `~numpy.ndarray`
            The ``(N, 2)`` re-centred positions (the input where a
            position could not be re-centred).
        recentered : `~numpy.ndarray` of bool
            False where the input position was kept.

        Raises
        ------
        TypeError
            If ``sky`` is not a `~ccdphot_ext.SkyEstimate`.
        ValueError
            If ``sky`` has neither one level nor one per position, or its
            unit does not match the frame's.
        """
        max_shift = (self.box_size / 2.0 if self.max_shift is None
                     else self.max_shift)
        frame = as_frame(data, mask=mask)
        pos = pixel_positions(positions, 'positions',
                              finite=False).reshape(-1, 2)
        check_sky(sky, unit=frame.unit, n_apertures=len(pos))
        out = pos.copy()
        ok = np.zeros(len(pos), dtype=bool)
        for i, (x0, y0) in enumerate(pos):
            level, std, _, _ = sky.at(0 if sky.is_global else i)
            x, y = x0, y0
            for _ in range(self.iterations):
                x, y = _centroid_step(frame, x, y, level, std, self.centroid,
                                      half=self.box_size // 2,
                                      n_sigma=self.n_sigma,
                                      min_snr=self.min_snr)
                if not math.isfinite(x):
                    break
            ok[i] = math.hypot(x - x0, y - y0) <= max_shift  # False for NaN
            if ok[i]:
                out[i] = x, y
        return out, ok


def recenter_positions(data, positions, sky, *, centroid='com', box_size=11,
                       n_sigma=2.0, min_snr=5.0, max_shift=None, iterations=2,
                       mask=None):
    """
    Re-centre positions on the light of the stars in a frame.

    The function form of `Recentering`:
    ``Recentering(centroid=..., ...)(data, positions, sky, mask=mask)``.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
        The 2-D frame, sky not subtracted (an NDData's mask is used).
    positions : array_like
        The nominal ``(x, y)`` pixel positions, an ``(N, 2)`` array (one
        ``(x, y)`` pair is taken as ``N = 1``).
    sky : `~ccdphot_ext.SkyEstimate`
        The sky in the data unit: one global level, or one level per
        position.
    centroid : {'com', '2dg'}, optional
        Centroid method (default ``'com'``, the centre of mass).
    box_size : int, optional
        Side of the centroid box in pixels (at least 3; default 11).
    n_sigma : float, optional
        Pixel threshold above the sky in units of ``sky.std`` (default 2).
    min_snr : float, optional
        Least signal-to-noise of the box sum for a star to be followed
        (default 5; pure noise gives a standard normal value).
    max_shift : float, optional
        Largest accepted move in pixels; None (default): ``box_size / 2``.
    iterations : int, optional
        Centroid passes (the box follows the star; default 2).
    mask : array_like of bool, optional
        True for bad pixels, combined with an NDData's mask; None
        (default): only non-finite pixels are left out.

    Returns
    -------
    new_positions : `~numpy.ndarray`
        The ``(N, 2)`` re-centred positions (the input where a position
        could not be re-centred).
    recentered : `~numpy.ndarray` of bool
        False where the input position was kept.

    Raises
    ------
    TypeError
        If a number is not a number (or not whole where it must be), or
        ``sky`` is not a `~ccdphot_ext.SkyEstimate`.
    ValueError
        If ``centroid`` is not one of `CENTROID_METHODS`, ``box_size`` is
        below 3, a number is out of its range, or ``sky`` does not fit the
        positions or the frame's unit.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> from ccdphot_ext.detection.recenter import recenter_positions
    >>> from ccdphot_ext.datasets.sample import render_stars
    >>> img = 100.0 + render_stars((40, 40), [20.3], [18.6], [5e4])
    >>> sky = SkyEstimate(100.0, 1.0, 1000)
    >>> pos, ok = recenter_positions(img, [(19.0, 19.0)], sky)
    >>> np.round(pos, 1).tolist(), ok.tolist()
    ([[20.3, 18.6]], [True])
    """
    recentering = Recentering(centroid=centroid, box_size=box_size,
                              n_sigma=n_sigma, min_snr=min_snr,
                              max_shift=max_shift, iterations=iterations)
    return recentering(data, positions, sky, mask=mask)


def _centroid_step(frame, x, y, level, std, method, *, half, n_sigma,
                   min_snr):
    """
    The centroid of the light above the threshold in a box around a
    position.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    x, y : float
        The box's centre.
    level, std : float
        The sky level and its per-pixel standard deviation there.
    method : {'com', '2dg'}
        The centroid method.
    half : int
        The box's half-side (pixels).
    n_sigma : float
        Pixels above ``n_sigma * std`` make the centroid.
    min_snr : float
        The least signal-to-noise of the box's sky-subtracted sum.

    Returns
    -------
    x, y : float
        The centroid; NaN when the box is cut to fewer than 3 pixels a
        side, holds fewer than 3 pixels above the threshold or a sum below
        ``min_snr`` times its noise.
    """
    ny, nx = frame.shape
    ix, iy = int(round(x)), int(round(y))
    xa, xb = max(ix - half, 0), min(ix + half + 1, nx)
    ya, yb = max(iy - half, 0), min(iy + half + 1, ny)
    if xb - xa < 3 or yb - ya < 3:
        return math.nan, math.nan
    cut = frame.data[ya:yb, xa:xb] - level
    usable = np.isfinite(cut)
    if frame.mask is not None:
        usable &= ~frame.mask[ya:yb, xa:xb]
    good = usable & (cut > n_sigma * std)
    signal = float(np.sum(cut[usable]))
    if (np.count_nonzero(good) < 3
            or signal <= min_snr * std * math.sqrt(np.count_nonzero(usable))):
        return math.nan, math.nan
    from photutils.centroids import centroid_2dg, centroid_com

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        if method == 'com':
            cx, cy = centroid_com(np.where(good, cut, 0.0))
        else:
            cx, cy = centroid_2dg(np.where(usable, cut, 0.0), mask=~usable)
    return xa + cx, ya + cy
