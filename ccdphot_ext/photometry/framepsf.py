# Licensed under a 3-clause BSD style license - see LICENSE
"""
The frame's PSF, fitted to its bright stars, for optimal extraction with
no PSF given.

An elliptical Moffat profile integrated over the pixels (`MoffatPRF`):
widths along two axes, their angle and ``1 / beta`` are fitted jointly to
the frame's bright, isolated, unsaturated stars (those
`~ccdphot_ext.fit_psf_sigma` fits), each star with its own flux and
position. The family holds the Moffat profiles of seeing-limited stars
(beta 2.5-4 and more), elliptical ones (tracking, focus) and, as ``1 /
beta`` goes to 0, the Gaussian, circular or elliptical, well sampled or
not; its total flux is 1 in closed form, so the flux is the star's whole
flux with no extrapolated wings.
"""

import math
import warnings
from collections import OrderedDict

import numpy as np
from astropy.modeling import Fittable2DModel, Parameter

from ..utils.digest import array_digest
from .dqcheck import saturated_pixels

__all__ = ['MoffatPRF']

#: Fewer bright stars than this: the circular Gaussian's width is fitted
#: instead (the profile has four shape numbers; with fewer stars 1 / beta
#: and the widths trade off, and a faint star's flux moves with them).
MOFFAT_MIN_STARS = 5
#: Points per pixel (along each axis) of the integration over a pixel,
#: by the width (sigma, pixels) of the stars: a Gaussian of sigma 0.7 on
#: 7 x 7 points is within 0.3% of its peak of the exact integral.
SUBPIXELS = ((1.0, 7), (2.0, 5), (np.inf, 3))
#: ``1 / beta`` is fitted within these bounds (0.8: a beta of 1.25).
ETA_BOUNDS = (0.0, 0.8)
#: The Moffat profile is kept when it lowers the chi-square of the
#: elliptical Gaussian (``1 / beta`` at 0) by more than this; else the
#: Gaussian. ``1 / beta`` cannot go below 0, so on Gaussian stars its fit
#: strays above, and a profile of heavier wings read them 0.13% bright
#: (pulls +0.2 at 2e4-1e5 e-).
MOFFAT_CHI2_GAIN = 25.0
#: The default stamp holds this share of the light (as an array PSF's).
STAMP_LIGHT = 0.99
#: The widest default stamp.
STAMP_MAX = 51


def _subpixels(sigma):
    """The points per pixel (each axis) for stars of width ``sigma``."""
    return next(n for limit, n in SUBPIXELS if sigma < limit)


def _moffat_prf(x, y, x_0, y_0, fwhm_a, fwhm_b, theta, eta, n_sub):
    """The unit-flux elliptical Moffat integrated over the pixel at x, y
    on ``n_sub`` by ``n_sub`` points."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    off = (np.arange(n_sub) + 0.5) / n_sub - 0.5
    u = (x - x_0)[..., None, None] + off[None, :]
    v = (y - y_0)[..., None, None] + off[:, None]
    c, s = math.cos(theta), math.sin(theta)
    up = c * u + s * v
    vp = -s * u + c * v
    if eta <= 0.0:  # the Gaussian
        sa = fwhm_a / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        sb = fwhm_b / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        p = np.exp(-0.5 * ((up / sa) ** 2 + (vp / sb) ** 2)) / (
            2.0 * math.pi * sa * sb)
        return p.mean(axis=(-2, -1))
    scale = 2.0 * math.sqrt(2.0 ** eta - 1.0)
    a = fwhm_a / scale
    b = fwhm_b / scale
    beta = 1.0 / eta
    q = (up / a) ** 2 + (vp / b) ** 2
    p = (beta - 1.0) / (math.pi * a * b) * np.exp(-beta * np.log1p(q))
    return p.mean(axis=(-2, -1))


class MoffatPRF(Fittable2DModel):
    """
    An elliptical Moffat PSF integrated over the pixels, of total flux
    ``flux``.

    ``(beta - 1) / (pi a b) (1 + (u / a)**2 + (v / b)**2)**-beta`` with
    ``u, v`` along axes at ``theta`` (radians, counter-clockwise from x),
    ``a = fwhm_a / (2 sqrt(2**(1 / beta) - 1))`` (so ``fwhm_a`` is the
    full width at half maximum along ``u``) and ``beta = 1 / eta``; as
    ``eta`` goes to 0 it is the Gaussian of those widths. Integrated over
    each pixel on ``subpixels`` by ``subpixels`` points.

    Parameters
    ----------
    flux : float
        Total flux.
    x_0, y_0 : float
        Centre (pixels).
    fwhm_a, fwhm_b : float
        Full widths at half maximum along the two axes (pixels).
    theta : float
        Angle of the ``fwhm_a`` axis (radians).
    eta : float
        ``1 / beta``.
    subpixels : int, optional
        Points per pixel along each axis of the integral over a pixel
        (default 7).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext.photometry.framepsf import MoffatPRF
    >>> m = MoffatPRF(flux=1.0, x_0=0.3, y_0=-0.2, fwhm_a=2.3, fwhm_b=2.3,
    ...               theta=0.0, eta=0.4)
    >>> yy, xx = np.mgrid[-60:61, -60:61]
    >>> print(f'{m(xx, yy).sum():.5f}')  # 3e-5 beyond the square
    0.99997
    """

    flux = Parameter(default=1.0)
    x_0 = Parameter(default=0.0)
    y_0 = Parameter(default=0.0)
    fwhm_a = Parameter(default=2.0)
    fwhm_b = Parameter(default=2.0)
    theta = Parameter(default=0.0)
    eta = Parameter(default=0.3)

    def __init__(self, *args, subpixels=7, **kwargs):
        super().__init__(*args, **kwargs)
        self.subpixels = int(subpixels)

    def evaluate(self, x, y, flux, x_0, y_0, fwhm_a, fwhm_b, theta, eta):
        """
        The model at ``x, y`` (see the class).

        Parameters
        ----------
        x, y : array_like
            Pixel centres.
        flux, x_0, y_0, fwhm_a, fwhm_b, theta, eta : float
            The parameters.

        Returns
        -------
        values : `~numpy.ndarray`
            The flux in each pixel.
        """
        return np.ravel(flux)[0] * _moffat_prf(
            x, y, float(np.ravel(x_0)[0]), float(np.ravel(y_0)[0]),
            float(np.ravel(fwhm_a)[0]), float(np.ravel(fwhm_b)[0]),
            float(np.ravel(theta)[0]), float(np.ravel(eta)[0]),
            self.subpixels)


class FramePSF:
    """
    The PSF fitted to a frame's bright stars.

    Parameters
    ----------
    model : `MoffatPRF`
        The profile, unit flux.
    n_stars : int
        The stars it was fitted to.
    stamp : int
        The odd stamp side holding `STAMP_LIGHT` of its light.
    """

    def __init__(self, model, n_stars, stamp):
        self.model = model
        self.n_stars = n_stars
        self.stamp = stamp

    @property
    def shape(self):
        """``(fwhm_a, fwhm_b, theta, beta)`` of the profile."""
        m = self.model
        eta = float(m.eta.value)
        return (float(m.fwhm_a.value), float(m.fwhm_b.value),
                float(m.theta.value), 1.0 / eta if eta > 0 else math.inf)

    @property
    def content(self):
        """The profile's numbers, as an array (a key for caches)."""
        m = self.model
        return np.array([m.fwhm_a.value, m.fwhm_b.value, m.theta.value,
                         m.eta.value, m.subpixels], dtype=float)

    def scaled(self, scale):
        """
        The profile with both widths times ``scale`` (its shape kept).

        Parameters
        ----------
        scale : float
            The factor, positive.

        Returns
        -------
        psf : `FramePSF`
            A new profile (its stamp grown or shrunk with it).
        """
        fa, fb, theta, _ = self.shape
        eta = float(self.model.eta.value)
        model = MoffatPRF(flux=1.0, x_0=0.0, y_0=0.0, fwhm_a=fa * scale,
                          fwhm_b=fb * scale, theta=theta, eta=eta,
                          subpixels=self.model.subpixels)
        return FramePSF(model, self.n_stars,
                        _stamp_side(fa * scale, fb * scale, eta))

    def describe(self):
        """A phrase naming the profile."""
        fa, fb, theta, beta = self.shape
        text = (f'FWHM {fa:.3f} x {fb:.3f} pixels at '
                f'{math.degrees(theta) % 180:.0f} degrees')
        if math.isinf(beta):
            return 'an elliptical Gaussian (a Moffat of infinite beta) of ' \
                + text
        return f'an elliptical Moffat of {text}, beta {beta:.3g}'

    def __repr__(self):
        return f'<FramePSF {self.describe()}, {self.n_stars} stars>'


def _stamp_side(fwhm_a, fwhm_b, eta):
    """The odd side of the square about the circle of `STAMP_LIGHT`."""
    if eta <= 0.0:  # the Gaussian: 3.03 sigma
        radius = max(fwhm_a, fwhm_b) / (2.0 * math.sqrt(2.0 * math.log(
            2.0))) * math.sqrt(-2.0 * math.log(1.0 - STAMP_LIGHT))
        return int(min(max(2 * math.ceil(radius) + 1, 5), STAMP_MAX))
    scale = 2.0 * math.sqrt(2.0 ** eta - 1.0)
    a = max(fwhm_a, fwhm_b) / scale
    beta = 1.0 / eta
    q = (1.0 - STAMP_LIGHT) ** (1.0 / (1.0 - beta)) - 1.0
    radius = a * math.sqrt(q)
    return int(min(max(2 * math.ceil(radius) + 1, 5), STAMP_MAX))


def _chi2(stars, var, p, n_sub):
    """The chi-square of profile numbers ``p`` (four, then each star's
    flux, x, y) over the stars' pixels."""
    total = 0.0
    for i, (xs, ys, d, _, _) in enumerate(stars):
        f, x, y = p[4 + 3 * i:7 + 3 * i]
        model = f * _moffat_prf(xs, ys, x, y, p[0], p[1], p[2], p[3], n_sub)
        total += float(np.sum((d - model) ** 2 / var[i]))
    return total


def _fit_profile(stars, var, p, n_shape, std, gain, n_sub):
    """
    The profile fitted to the stars jointly: ``n_shape`` of its numbers
    (4, or None: 1 / beta held at 0, three) and each star's flux and
    position, twice (the second time weighted by the first's model).

    Returns the fitted numbers (as given: without 1 / beta when held), the
    model's variances and the chi-square on them.
    """
    from scipy.optimize import least_squares
    from scipy.sparse import lil_matrix

    k = 3 if n_shape is None else 4

    def full(q):
        return q if k == 4 else np.concatenate([q[:3], [0.0], q[3:]])

    n = len(stars)
    p = np.asarray(p, dtype=float)
    lower = [0.3, 0.3, -np.inf] + ([ETA_BOUNDS[0]] if k == 4 else []) + \
        [-np.inf] * (3 * n)
    upper = [50.0, 50.0, np.inf] + ([ETA_BOUNDS[1]] if k == 4 else []) + \
        [np.inf] * (3 * n)
    sizes = [s[2].size for s in stars]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    sparsity = lil_matrix((starts[-1], p.size), dtype=int)
    for i in range(n):
        sparsity[starts[i]:starts[i + 1], :k] = 1
        sparsity[starts[i]:starts[i + 1], k + 3 * i:k + 3 + 3 * i] = 1

    def models(q):
        q = full(q)
        return [q[4 + 3 * i] * _moffat_prf(
            xs, ys, q[5 + 3 * i], q[6 + 3 * i], q[0], q[1], q[2], q[3],
            n_sub) for i, (xs, ys, _, _, _) in enumerate(stars)]

    def residuals(q):
        return np.concatenate([(s[2] - m) / np.sqrt(v) for s, m, v in zip(
            stars, models(q), var, strict=True)])

    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)
            fit = least_squares(residuals, np.clip(p, lower, upper),
                                jac_sparsity=sparsity,
                                bounds=(lower, upper), x_scale='jac',
                                method='trf')
        p = fit.x
        # the weights from the model, not from the noisy pixels
        var = [np.full(m.shape, std * std) + (
            np.clip(m, 0.0, None) / gain if gain else 0.0)
            for m in models(p)]
    return p, var, _chi2(stars, var, full(p), n_sub)


def fit_frame_psf(frame, sky, *, saturation=None, gain=None):
    """
    An elliptical Moffat PSF fitted to a frame's bright stars.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The checked frame.
    sky : `~ccdphot_ext.SkyEstimate`
        Its sky: one level or a 2-D map.
    saturation : float, optional
        Stars with a pixel at or above it are left out.
    gain : float, optional
        Electrons per data unit: the stars' photon noise in the fit's
        weights.

    Returns
    -------
    psf : `FramePSF` or None
        None when fewer than `MOFFAT_MIN_STARS` stars qualify.
    """
    from .optimal import (
        _FWHM_PER_SIGMA,
        _bright_stars,
        _fit_position,
        fit_psf_sigma,
    )

    xy, resid, bad = _bright_stars(frame, sky, saturation)
    if len(xy) < MOFFAT_MIN_STARS:
        return None
    sigma = fit_psf_sigma(frame, sky, saturation=saturation)
    std = sky.pixel_std
    half = int(min(max(5, math.ceil(4.5 * sigma)), 20))
    n_sub = _subpixels(sigma)
    ny, nx = resid.shape
    stars = []
    for x0, y0 in xy:
        x, y = _fit_position(resid, bad, sigma, x0, y0, None)
        ix, iy = int(round(x)), int(round(y))
        ys, xs = slice(max(iy - half, 0), min(iy + half + 1, ny)), \
            slice(max(ix - half, 0), min(ix + half + 1, nx))
        yy, xx = np.mgrid[ys, xs]
        use = ~bad[ys, xs]
        d = resid[ys, xs][use]
        stars.append((xx[use].astype(float), yy[use].astype(float), d, x, y))
    n = len(stars)
    fwhm0 = sigma * _FWHM_PER_SIGMA
    flux0 = []
    for _, _, d, x, y in stars:
        flux0 += [max(float(d.sum()), std), x, y]
    var = [np.full(s[2].shape, std * std) + (
        np.clip(s[2], 0.0, None) / gain if gain else 0.0) for s in stars]
    # an elliptical Gaussian first (1 / beta held at 0), from the circular
    # Gaussian's width; then the Moffat, from the Gaussian
    gauss, var, chi2_gauss = _fit_profile(
        stars, var, [fwhm0, fwhm0 * 1.05, 0.3] + flux0, None, std, gain,
        n_sub)
    p = np.concatenate([gauss[:3], [0.2], gauss[3:]])
    moffat, var_m, chi2_moffat = _fit_profile(stars, var, p, 4, std, gain,
                                              n_sub)
    # the Gaussian's chi-square on the Moffat's weights, as the Moffat's
    chi2_gauss = _chi2(stars, var_m, np.concatenate(
        [gauss[:3], [0.0], gauss[3:]]), n_sub)
    if chi2_gauss - chi2_moffat > MOFFAT_CHI2_GAIN:
        p = moffat
    else:  # the wings do not tell a Moffat: 1 / beta is 0
        p = np.concatenate([gauss[:3], [0.0], gauss[3:]])
    fa, fb, theta, eta = (float(v) for v in p[:4])
    if fb > fa:  # the first axis the wider
        fa, fb, theta = fb, fa, theta + math.pi / 2.0
    theta = math.remainder(theta, math.pi)
    model = MoffatPRF(flux=1.0, x_0=0.0, y_0=0.0, fwhm_a=fa, fwhm_b=fb,
                      theta=theta, eta=eta, subpixels=n_sub)
    return FramePSF(model, n, _stamp_side(fa, fb, eta))


_FITTED = OrderedDict()
_FITTED_KEPT = 4


def frame_psf_fit(frame, sky, *, saturation=None, gain=None):
    """
    `fit_frame_psf`, remembered for the last few frames by their content:
    a frame measured star by star is fitted once.

    Parameters
    ----------
    frame, sky, saturation, gain
        As for `fit_frame_psf`.

    Returns
    -------
    psf : `FramePSF` or None
        As `fit_frame_psf` returns it.
    """
    uncertainty = (None if frame.uncertainty is None
                   else np.asarray(frame.uncertainty, dtype=float))
    key = (array_digest(np.asarray(frame.data), frame.mask, uncertainty,
                        saturated_pixels(frame),
                        *(np.asarray(np.nan if v is None else v, dtype=float)
                          for v in (sky.value, sky.std))),
           saturation, gain)
    if key not in _FITTED:
        _FITTED[key] = fit_frame_psf(frame, sky, saturation=saturation,
                                     gain=gain)
        while len(_FITTED) > _FITTED_KEPT:
            _FITTED.popitem(last=False)
    _FITTED.move_to_end(key)
    return _FITTED[key]
