# Licensed under a 3-clause BSD style license - see LICENSE
"""
A bundled, deterministic sample frame shaped like the notebook's.

`sample_frame` makes a processed (bias, dark and flat applied) 510 × 767
frame in ADU: sky ≈ 1035 ADU with a mild gradient (about +20 ADU at the
notebook's first star, so the notebook's "residual background" lesson
holds), EGAIN 2.23 e-/ADU, 30 s, read noise 12 e-, a slightly trailed PSF,
the notebook's four stars near its boxes, and a field of fainter stars.
`sample_truth` gives the true positions and fluxes.

The noise is simulated in electrons: Poisson on sky + dark + star, plus
Gaussian read noise, then converted to ADU and the (noiseless) dark level
subtracted. The attached uncertainty map is the *background* noise per pixel,
``sqrt((sky + dark) / g + (RN / g)**2)`` — the convention of a Source
Extractor RMS map — so a star's own Poisson noise is added from the gain and
never counted twice.

`simulate_frame` is the engine, usable for frames with other truth.
"""

import math
import os

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.table import QTable
from scipy.special import erf

from ..utils.numbers import (
    MAX_COUNT,
    check_shape,
    finite_number,
    positive_integer,
    positive_scalar,
    random_generator,
)

#: the largest mean of numpy's Poisson draws (beyond it numpy refuses)
MAX_POISSON_MEAN = 9.2e18

__all__ = ['sample_frame', 'sample_truth', 'simulate_frame', 'render_stars',
           'NOTEBOOK_BOXES', 'SAMPLE_PARAMETERS']

#: The notebook's four boxes, ``np.s_[y0:y1, x0:x1]`` (stars 3 and 4 are the
#: student's larger boxes).
NOTEBOOK_BOXES = {
    'star1': np.s_[158:178, 492:512],
    'star2': np.s_[240:260, 325:345],
    'star3': np.s_[220:250, 460:500],
    'star4': np.s_[115:145, 210:245],
}

#: The parameters `sample_frame` uses.
SAMPLE_PARAMETERS = {
    'shape': (510, 767),
    'sky': 1035.0,            # ADU, at the frame centre
    'gradient': (0.15, -0.05),  # ADU per pixel along x and y
    'gain': 2.23,             # e-/ADU (EGAIN)
    'read_noise': 12.0,       # e-
    'dark': 1900.0,           # ADU accumulated and subtracted
    'exptime': 30.0,          # s
    'saturation': 60000.0,    # ADU, processed
    'psf_sigma': 1.8,         # px, Gaussian core
    'trail': (4.0, 0.5),      # px length, angle (rad) of the tracking trail
    'seed': 1124,
}

_NOTEBOOK_STARS = [  # id name, x, y, flux [ADU]
    ('star1', 501.2, 167.9, 36000.0),
    ('star2', 334.3, 249.6, 41000.0),
    ('star3', 479.6, 234.8, 30000.0),
    ('star4', 227.4, 129.3, 6000.0),
]


def _pixel_integral(centers, start, stop, sigma):
    """Fraction of 1-D Gaussians falling in pixels start..stop-1."""
    edges = np.arange(start, stop + 1, dtype=float) - 0.5
    z = (edges[None, :] - np.asarray(centers)[:, None]) / (math.sqrt(2) * sigma)
    return 0.5 * np.diff(erf(z), axis=1)


#: the most Gaussians along a trail of `render_stars`
MAX_TRAIL_STEPS = 10_000


def _finite_values(values, name):
    """``values`` as a 1-D float array of finite numbers, else an error
    naming ``name``."""
    try:
        out = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        raise TypeError(f'{name} must be numbers, got {values!r}') from None
    if isinstance(values, (str, bytes)) or out.ndim != 1:
        raise TypeError(f'{name} must be a number or a 1-D sequence of '
                        f'them, got {values!r}')
    if not np.all(np.isfinite(out)):
        raise ValueError(f'{name} must be finite (NaN or inf found)')
    return out


def _trail(trail):
    """``(length, angle)`` of a trail: a length of at least 0 pixels and a
    finite angle, each named."""
    try:
        length, angle = trail
    except (TypeError, ValueError):
        raise TypeError('trail must be (length, angle), got '
                        f'{trail!r}') from None
    return (positive_scalar(length, 'trail length', allow_none=False,
                            allow_zero=True),
            finite_number(angle, 'trail angle'))


def render_stars(shape, x, y, flux, *, sigma=1.8, trail=(0.0, 0.0),
                 n_trail=9):
    """
    Render a noise-free image of stars, each integrated exactly over pixels.

    The PSF is a circular Gaussian smeared uniformly along a line of
    ``trail = (length, angle)`` (telescope tracking error), modelled as
    ``n_trail`` Gaussians along the line. Each star's total flux is
    ``flux`` (minus what falls off the frame).

    Parameters
    ----------
    shape : tuple of int
        The image's ``(ny, nx)`` in pixels.
    x : float or array_like
        The stars' x pixel positions (0-based; pixel ``i`` spans
        ``i - 0.5 ... i + 0.5``).
    y : float or array_like
        The stars' y pixel positions (same length as ``x``).
    flux : float or array_like
        The stars' total fluxes, in the image's unit (e.g. ADU; same
        length as ``x``).
    sigma : float, optional
        The Gaussian's standard deviation in pixels (default 1.8, the
        sample frame's).
    trail : tuple of float, optional
        ``(length, angle)``: the trail's length in pixels and its angle in
        radians counter-clockwise from the x axis (default ``(0, 0)``: no
        trail).
    n_trail : int, optional
        The number of Gaussians along a trail (default 9; one without a
        trail).

    Returns
    -------
    image : 2-D ndarray
        The ``shape`` image of the stars' light per pixel, without sky or
        noise.

    Examples
    --------
    >>> from ccdphot_ext import render_stars
    >>> image = render_stars((21, 21), [10.0], [10.0], [1000.0])
    >>> round(float(image.sum()), 6)
    1000.0
    """
    shape = check_shape(shape, max_pixels=MAX_COUNT)
    x, y, flux = (_finite_values(v, name) for v, name in
                  ((x, 'x'), (y, 'y'), (flux, 'flux')))
    if not x.size == y.size == flux.size:
        raise ValueError(f'x, y and flux must have one value per star, got '
                         f'{x.size}, {y.size} and {flux.size}')
    sigma = positive_scalar(sigma, 'sigma', allow_none=False)
    length, angle = _trail(trail)
    n_trail = positive_integer(n_trail, 'n_trail', maximum=MAX_TRAIL_STEPS,
                               bound_note='more steps than a trail needs')
    image = np.zeros(shape)
    steps = (np.linspace(-0.5, 0.5, n_trail) if length > 0
             else np.zeros(1))
    half = int(math.ceil(6 * sigma + length / 2)) + 1
    ny, nx = shape
    for xc, yc, f in zip(np.atleast_1d(x), np.atleast_1d(y),
                         np.atleast_1d(flux), strict=True):
        x0, x1 = max(int(xc) - half, 0), min(int(xc) + half + 1, nx)
        y0, y1 = max(int(yc) - half, 0), min(int(yc) + half + 1, ny)
        if x1 <= x0 or y1 <= y0:
            continue
        xs = xc + steps * length * math.cos(angle)
        ys = yc + steps * length * math.sin(angle)
        px = _pixel_integral(xs, x0, x1, sigma)
        py = _pixel_integral(ys, y0, y1, sigma)
        image[y0:y1, x0:x1] += f / len(steps) * (py.T @ px)
    return image


def simulate_frame(shape, sky, stars, *, gain, read_noise, dark=0.0,
                   psf_sigma=1.8, trail=(0.0, 0.0), saturation=None,
                   seed=None):
    """
    Simulate a processed frame with photon and read noise.

    The noise is drawn in electrons (Poisson on sky, dark and stars, plus
    Gaussian read noise), then converted to ADU and the noiseless dark
    level subtracted, as bias, dark and flat processing leaves a frame.

    Parameters
    ----------
    shape : tuple of int
        The frame's ``(ny, nx)`` in pixels.
    sky : float or 2-D array_like
        The sky level per pixel in ADU (a 2-D array of ``shape`` for a
        varying sky).
    stars : table-like
        The stars: a table (or dictionary of arrays) with columns ``x``,
        ``y`` (0-based pixel positions) and ``flux`` (total flux in ADU).
    gain : float
        The detector gain in e-/ADU.
    read_noise : float
        The read noise in electrons per pixel.
    dark : float, optional
        The dark signal per pixel in ADU (default 0): its Poisson noise is
        kept, its level subtracted.
    psf_sigma : float, optional
        The PSF's Gaussian standard deviation in pixels (default 1.8; see
        `render_stars`).
    trail : tuple of float, optional
        The PSF's tracking trail ``(length, angle)``: length in pixels,
        angle in radians (default ``(0, 0)``: no trail; see
        `render_stars`).
    saturation : float, optional
        Pixels are clipped at this processed level in ADU; None (default):
        no clipping.
    seed : int, `numpy.random.Generator` or None, optional
        The seed of the noise (a generator is used as is); None (default):
        fresh entropy, a different frame each call.

    Returns
    -------
    data : 2-D ndarray
        The noisy frame in ADU, sky not subtracted.
    background_sigma : 2-D ndarray
        The per-pixel background noise in ADU,
        ``sqrt((sky + dark) / gain + (read_noise / gain)**2)`` (the stars'
        own Poisson noise left out, as a Source Extractor RMS map).
    model : 2-D ndarray
        The noise-free model in ADU (sky + stars).

    Raises
    ------
    ValueError
        If a number is out of its rule, or the electrons expected in a
        pixel, ``(sky + stars + dark) * gain``, exceed `MAX_POISSON_MEAN`
        (more than a Poisson draw can hold).
    TypeError
        If an argument is of the wrong kind.
    """
    shape = check_shape(shape, max_pixels=MAX_COUNT)
    gain = positive_scalar(gain, 'gain', allow_none=False)
    read_noise = positive_scalar(read_noise, 'read_noise', allow_none=False,
                                 allow_zero=True)
    dark = positive_scalar(dark, 'dark', allow_none=False, allow_zero=True)
    psf_sigma = positive_scalar(psf_sigma, 'psf_sigma', allow_none=False)
    if saturation is not None:
        saturation = finite_number(saturation, 'saturation')
    rng = random_generator(seed)
    try:
        sky = np.broadcast_to(np.asarray(sky, dtype=float), shape)
    except (TypeError, ValueError):
        raise ValueError(f'sky must be a number or a 2-D array of shape '
                         f'{shape}, got {sky!r}') from None
    if not np.all(np.isfinite(sky) & (sky >= 0)):
        raise ValueError('sky must be finite and non-negative (a level of '
                         'photons)')
    try:
        stars = {k: stars[k] for k in ('x', 'y', 'flux')}
    except (TypeError, KeyError, IndexError, ValueError):
        raise TypeError('stars must be a table (or dictionary) with columns '
                        f'x, y and flux, got {type(stars).__name__}') from None
    stars_img = render_stars(shape, stars['x'], stars['y'], stars['flux'],
                             sigma=psf_sigma, trail=trail)
    model = sky + stars_img
    with np.errstate(over='ignore'):  # refused below
        expected = np.clip(model + dark, 0, None) * gain
    if not np.max(expected) <= MAX_POISSON_MEAN:
        raise ValueError(
            f'the electrons expected in a pixel, (sky + stars + dark) * gain '
            f'= {np.max(expected):.3g}, exceed the {MAX_POISSON_MEAN:.3g} a '
            'Poisson draw can hold: sky, dark, gain or the stars\' flux is '
            'too large')
    electrons = rng.poisson(expected)
    electrons = electrons + rng.normal(0.0, read_noise, shape)
    data = electrons / gain - dark
    if saturation is not None:
        np.minimum(data, saturation, out=data)
    background_sigma = np.sqrt((sky + dark) / gain + (read_noise / gain) ** 2)
    return data, background_sigma, model


def sample_truth():
    """
    True positions and fluxes of the stars in `sample_frame`.

    Returns
    -------
    truth : `~astropy.table.QTable`
        ``id``, ``name``, ``x``, ``y`` (0-based pixels), ``flux`` [ADU,
        total], ``peak`` [ADU above sky, noise-free] and ``saturated``.
    """
    p = SAMPLE_PARAMETERS
    rng = np.random.default_rng(p['seed'] + 1)
    names = [s[0] for s in _NOTEBOOK_STARS]
    xs = [s[1] for s in _NOTEBOOK_STARS]
    ys = [s[2] for s in _NOTEBOOK_STARS]
    fluxes = [s[3] for s in _NOTEBOOK_STARS]
    ny, nx = p['shape']
    # field stars, kept clear of the notebook boxes and the edges
    n_field = 0
    while n_field < 36:
        x, y = rng.uniform(15, nx - 15), rng.uniform(15, ny - 15)
        if min(math.hypot(x - a, y - b) for a, b in zip(xs, ys, strict=True)) < 30:
            continue
        xs.append(x)
        ys.append(y)
        fluxes.append(float(10 ** rng.uniform(3.0, 4.6)))
        names.append(f'field{n_field + 1}')
        n_field += 1
    table = QTable({'id': np.arange(1, len(names) + 1), 'name': names,
                    'x': np.array(xs), 'y': np.array(ys),
                    'flux': np.array(fluxes)})
    peaks = np.array([
        render_stars((9, 9), [4 + x - round(x)], [4 + y - round(y)], [f],
                     sigma=p['psf_sigma'], trail=p['trail']).max()
        for x, y, f in zip(table['x'], table['y'], table['flux'], strict=True)])
    table['peak'] = peaks
    gx, gy = p['gradient']
    sky_at = p['sky'] + gx * (table['x'] - nx / 2) + gy * (table['y'] - ny / 2)
    table['saturated'] = sky_at + peaks > p['saturation']
    table.meta['description'] = 'truth for ccdphot_ext.sample_frame()'
    return table


def sky_model(shape=None):
    """The noise-free sky of `sample_frame` [ADU per pixel]."""
    p = SAMPLE_PARAMETERS
    ny, nx = shape or p['shape']
    gx, gy = p['gradient']
    yy, xx = np.mgrid[0:ny, 0:nx]
    return p['sky'] + gx * (xx - nx / 2) + gy * (yy - ny / 2)


def sample_frame():
    """
    The bundled sample frame, as a `~astropy.nddata.CCDData`.

    Deterministic: the same pixels on every call on a given numpy.

    Returns
    -------
    ccd : `~astropy.nddata.CCDData`
        Data in ADU, a `~astropy.nddata.StdDevUncertainty` background map,
        and a header with EGAIN, RDNOISE, EXPTIME, SATURATE, BUNIT.

    Examples
    --------
    >>> from ccdphot_ext import sample_frame
    >>> ccd = sample_frame()
    >>> ccd.shape, ccd.header['EGAIN'], str(ccd.unit)
    ((510, 767), 2.23, 'adu')
    """
    p = SAMPLE_PARAMETERS
    truth = sample_truth()
    data, sigma, _ = simulate_frame(
        p['shape'], sky_model(), truth, gain=p['gain'],
        read_noise=p['read_noise'], dark=p['dark'], psf_sigma=p['psf_sigma'],
        trail=p['trail'], saturation=p['saturation'], seed=p['seed'])
    header = fits.Header()
    header['OBJECT'] = ('ccdphot_ext sample', 'synthetic Pleiades-like field')
    header['EGAIN'] = (p['gain'], '[e-/ADU] gain')
    header['RDNOISE'] = (p['read_noise'], '[e-] read noise')
    header['EXPTIME'] = (p['exptime'], '[s] exposure time')
    header['SATURATE'] = (p['saturation'], '[adu] saturation level')
    header['DATE-OBS'] = ('2023-11-24T03:14:15', 'UTC start of exposure')
    header['MJD-OBS'] = (60272.134896, '[d] MJD of start of exposure')
    header['BUNIT'] = 'adu'
    header['HISTORY'] = 'synthetic: bias, dark and flat applied'
    return CCDData(data, unit='adu', uncertainty=StdDevUncertainty(sigma),
                   meta=header)


def write_sample(path, *, overwrite=False):
    """
    Write `sample_frame` to a FITS file (data, then an UNCERT extension),
    atomically (`~ccdphot_ext.utils.atomic_write`).

    Returns
    -------
    path : str
    """
    from ..utils.files import atomic_write

    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f'{os.fspath(path)} exists (pass '
                              'overwrite=True to replace it)')
    frame = sample_frame()
    atomic_write(path, lambda tmp: frame.write(tmp, format='fits',
                                             overwrite=True),
                 label='path')
    return str(path)
