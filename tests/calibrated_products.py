# Licensed under a 3-clause BSD style license - see LICENSE
"""
Calibrated data products with known truth, written by real producers
(internal test helper).

Three kinds of product, each small (fast tests) and each with the true
position and flux of every star:

`jwst_image`
    A JWST level-3-like image in MJy/sr written by STScI's own data-model
    library (``stdatamodels.jwst.datamodels.ImageModel``): SCI, ERR, DQ,
    VAR_POISSON, VAR_RNOISE, VAR_FLAT, PIXAR_SR/PIXAR_A2, PHOTMJSR and a
    celestial WCS. The noise of each pixel is drawn from the variance
    arrays, so pulls can be checked; DO_NOT_USE pixels hold garbage.
`hst_image`
    An HST-style multi-extension file (SCI/ERR/DQ, optionally WHT) in
    electrons, electrons/s or counts with PHOTFLAM/PHOTPLAM/PHOTZPT.
`spitzer_mosaic`
    A Spitzer-like mosaic in MJy/sr on a galactic ``GLON-CAR`` grid with
    GAIN (e-/DN), FLUXCONV (MJy/sr per DN/s) and EXPTIME; optionally
    resampled with ``drizzle`` from dithered exposures (correlated noise).

Each function returns a `Product`: the noiseless model, the per-pixel
variance, the truth table and a ``realize(rng)`` that draws noisy data.
``write(path, rng)`` writes one realization as its producer would.
"""

import math
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ccdphot_ext.datasets.sample import render_stars

__all__ = []  # internal module

#: arcsec per radian
ARCSEC_PER_RAD = 180.0 * 3600.0 / math.pi

#: JWST DQ bits used here (stdatamodels' dqflags.pixel values)
DO_NOT_USE, JUMP_DET = 1, 4


@dataclass
class Product:
    """A product's noiseless model, per-pixel variances and truth."""

    kind: str
    model: np.ndarray           # noiseless data, data unit
    variances: dict             # name -> per-pixel variance (data unit**2)
    x: np.ndarray               # true positions (0-based pixels)
    y: np.ndarray
    flux: u.Quantity            # true total fluxes
    unit: u.UnitBase            # data unit
    header: dict                # science-header cards
    primary: dict = field(default_factory=dict)
    dq: np.ndarray | None = None
    garbage: float = 0.0        # value of DO_NOT_USE pixels
    wcs: WCS | None = None
    psf_sigma: float = 1.2
    sky: float = 0.0            # true sky level, data unit
    extra: dict = field(default_factory=dict)

    @property
    def shape(self):
        return self.model.shape

    @property
    def variance(self):
        """The total per-pixel variance (sum of the arrays)."""
        return sum(self.variances.values())

    def realize(self, rng, n=None):
        """Noisy data: ``model + N(0, variance)`` (``n`` realizations
        stacked on a first axis when given); bad DQ pixels hold garbage."""
        shape = self.shape if n is None else (n, *self.shape)
        data = self.model + rng.standard_normal(shape) * np.sqrt(
            self.variance)
        if self.dq is not None:
            data = np.where(self.dq & DO_NOT_USE, self.garbage, data)
        return data

    def write(self, path, rng):
        """Write one realization as its producer would; return the data."""
        data = self.realize(rng)
        WRITERS[self.kind](self, path, data)
        return data


def _stars(shape, n, flux_range, rng, margin=7):
    """``n`` well-separated star positions on a jittered grid and fluxes
    spread geometrically over ``flux_range``."""
    ny, nx = shape
    cols = int(math.ceil(math.sqrt(n * nx / ny)))
    rows = int(math.ceil(n / cols))
    gx = np.linspace(margin, nx - 1 - margin, cols)
    gy = np.linspace(margin, ny - 1 - margin, rows)
    xx, yy = np.meshgrid(gx, gy)
    x = xx.ravel()[:n] + rng.uniform(-0.5, 0.5, n)
    y = yy.ravel()[:n] + rng.uniform(-0.5, 0.5, n)
    flux = np.geomspace(*flux_range, n)
    return x, y, flux


def _tan_wcs(shape, scale_arcsec, crval=(53.16, -27.79)):
    w = WCS(naxis=2)
    w.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    w.wcs.crval = crval
    w.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    w.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    w.wcs.cunit = ['deg', 'deg']
    return w


# -- JWST ---------------------------------------------------------------------

def jwst_image(*, shape=(40, 56), n_stars=8, seed=21, scale=0.063,
               flux_range=(0.02, 3.0), sky=0.25, g_eff=400.0,
               read_noise=8.0, flat_error=0.004, psf_sigma=1.2,
               n_bad=6):
    """
    A JWST level-3-like NIRCam image in MJy/sr.

    Parameters
    ----------
    flux_range : (float, float)
        Star fluxes, microjansky.
    sky : float
        MJy/sr.
    g_eff : float
        Electrons per MJy/sr (VAR_POISSON = signal / g_eff).
    read_noise : float
        Electrons (VAR_RNOISE = (read_noise / g_eff)**2).
    flat_error : float
        Fractional (VAR_FLAT = (flat_error * signal)**2).
    n_bad : int
        DO_NOT_USE pixels holding garbage, on the brightest stars.
    """
    rng = np.random.default_rng(seed)
    pixar_sr = (scale / ARCSEC_PER_RAD) ** 2
    x, y, flux_ujy = _stars(shape, n_stars, flux_range, rng)
    # flux density per pixel [Jy] -> surface brightness [MJy/sr]
    per_pixel = render_stars(shape, x, y, flux_ujy * 1e-6, sigma=psf_sigma)
    signal = sky + per_pixel / pixar_sr / 1e6
    variances = {'VAR_POISSON': signal / g_eff,
                 'VAR_RNOISE': np.full(shape, (read_noise / g_eff) ** 2),
                 'VAR_FLAT': (flat_error * signal) ** 2}
    dq = np.zeros(shape, np.uint32)
    # bad pixels next to the centres of the brightest stars, and jumps
    for i in range(n_bad):
        k = n_stars - 1 - (i % 2)
        dq[int(round(y[k])) + (i // 2) - 1, int(round(x[k])) + 1] = (
            DO_NOT_USE)
    dq[int(round(y[0])), int(round(x[0]))] |= JUMP_DET
    wcs = _tan_wcs(shape, scale)
    header = {'BUNIT': 'MJy/sr', 'PIXAR_SR': pixar_sr,
              'PIXAR_A2': scale ** 2, 'PHOTMJSR': 0.4, 'TELESCOP': 'JWST'}
    return Product('jwst', signal, variances, x, y, flux_ujy * u.uJy,
                   u.MJy / u.sr, header, dq=dq, garbage=3.0e4, wcs=wcs,
                   psf_sigma=psf_sigma, sky=sky,
                   extra={'g_eff': g_eff, 'scale': scale})


def _write_jwst(product, path, data):
    from stdatamodels.jwst import datamodels

    var = {k: v.astype(np.float32) for k, v in product.variances.items()}
    model = datamodels.ImageModel(
        data=data.astype(np.float32), dq=product.dq,
        err=np.sqrt(sum(var.values())).astype(np.float32),
        var_poisson=var['VAR_POISSON'], var_rnoise=var['VAR_RNOISE'],
        var_flat=var['VAR_FLAT'])
    meta = model.meta
    meta.telescope = 'JWST'
    meta.instrument.name = 'NIRCAM'
    meta.instrument.detector = 'NRCBLONG'
    meta.instrument.filter = 'F444W'
    meta.instrument.pupil = 'CLEAR'
    meta.exposure.exposure_time = 1000.0
    meta.bunit_data = 'MJy/sr'
    meta.bunit_err = 'MJy/sr'
    meta.photometry.pixelarea_steradians = product.header['PIXAR_SR']
    meta.photometry.pixelarea_arcsecsq = product.header['PIXAR_A2']
    meta.photometry.conversion_megajanskys = product.header['PHOTMJSR']
    w = product.wcs.wcs
    info = meta.wcsinfo
    info.ctype1, info.ctype2 = w.ctype
    info.crval1, info.crval2 = (float(v) for v in w.crval)
    info.crpix1, info.crpix2 = (float(v) for v in w.crpix)
    info.cdelt1, info.cdelt2 = (float(v) for v in w.cdelt)
    info.cunit1 = info.cunit2 = 'deg'
    info.pc1_1, info.pc1_2, info.pc2_1, info.pc2_2 = 1.0, 0.0, 0.0, 1.0
    model.save(str(path))
    model.close()


# -- HST ----------------------------------------------------------------------

#: HST DQ bits used here: 4 bad detector pixel, 16 hot pixel
HST_BAD, HST_HOT = 4, 16


def hst_image(*, unit='ELECTRONS', shape=(40, 56), n_stars=8, seed=22,
              exptime=500.0, sky=60.0, read_noise=3.0, gain=1.5,
              flux_range=(300.0, 3.0e5), psf_sigma=1.3, weight=False,
              n_bad=4):
    """
    An HST-style flt/drc image: SCI, ERR, DQ (and WHT with ``weight``).

    Parameters
    ----------
    unit : {'ELECTRONS', 'ELECTRONS/S', 'COUNTS'}
        BUNIT. ``COUNTS`` are ADU with gain ``gain`` e-/ADU (CCDGAIN).
    sky, flux_range, read_noise : float
        Electrons (per exposure of ``exptime`` s).
    weight : bool
        Add a WHT extension (an exposure-time map, 0 in an uncovered
        corner whose SCI is 0).
    """
    rng = np.random.default_rng(seed)
    x, y, flux_e = _stars(shape, n_stars, flux_range, rng)
    electrons = sky + render_stars(shape, x, y, flux_e, sigma=psf_sigma)
    var_e = electrons + read_noise ** 2
    scale = {'ELECTRONS': 1.0, 'ELECTRONS/S': 1.0 / exptime,
             'COUNTS': 1.0 / gain}[unit]
    unit_obj = {'ELECTRONS': u.electron, 'ELECTRONS/S': u.electron / u.s,
                'COUNTS': u.count}[unit]
    dq = np.zeros(shape, np.uint16)
    for i in range(n_bad):
        k = n_stars - 1 - (i % 2)
        dq[int(round(y[k])) + (i // 2), int(round(x[k])) - 1] = HST_BAD
    dq[int(round(y[0])), int(round(x[0]))] |= HST_HOT
    flux = flux_e * scale * unit_obj
    header = {'BUNIT': unit, 'PHOTFLAM': 1.5e-19, 'PHOTPLAM': 6000.0,
              'PHOTZPT': -21.1}
    primary = {'TELESCOP': 'HST', 'INSTRUME': 'WFC3', 'DETECTOR': 'UVIS',
               'FILTER': 'F606W', 'EXPTIME': exptime, 'CCDGAIN': gain,
               'READNSEA': read_noise}
    product = Product('hst', electrons * scale, {'ERR': var_e * scale ** 2},
                      x, y, flux, unit_obj, header, primary=primary, dq=dq,
                      garbage=5.0e5 * scale, wcs=_tan_wcs(shape, 0.04),
                      psf_sigma=psf_sigma, sky=sky * scale,
                      extra={'exptime': exptime, 'gain': gain})
    if weight:
        wht = np.full(shape, exptime, np.float32)
        wht[:4, :6] = 0.0  # not covered
        product.extra['wht'] = wht
    return product


def _write_hst(product, path, data):
    hdr = product.wcs.to_header()
    for key, value in product.header.items():
        hdr[key] = value
    data = data.astype(np.float32)
    hdus = [fits.PrimaryHDU(header=fits.Header(list(product.primary.items())))]
    wht = product.extra.get('wht')
    if wht is not None:
        data = np.where(wht > 0, data, 0.0).astype(np.float32)
    hdus.append(fits.ImageHDU(data, hdr, name='SCI'))
    err_hdr = fits.Header([('BUNIT', product.header['BUNIT'])])
    hdus.append(fits.ImageHDU(np.sqrt(product.variances['ERR']).astype(
        np.float32), err_hdr, name='ERR'))
    hdus.append(fits.ImageHDU(product.dq, name='DQ'))
    if wht is not None:
        hdus.append(fits.ImageHDU(wht, name='WHT'))
    fits.HDUList(hdus).writeto(path, overwrite=True)


# -- Spitzer ------------------------------------------------------------------

def _car_wcs(shape, scale_arcsec, crval=(24.72, 0.41)):
    """A plate carree grid whose reference point is on the equator (as
    Spitzer's galactic mosaics), the frame centred at ``crval``."""
    w = WCS(naxis=2)
    w.wcs.ctype = ['GLON-CAR', 'GLAT-CAR']
    w.wcs.crval = [crval[0], 0.0]
    # the reference on the equator (as Spitzer's galactic mosaics): the
    # frame sits at latitude crval[1]
    w.wcs.crpix = [(shape[1] + 1) / 2,
                   (shape[0] + 1) / 2 - crval[1] * 3600.0 / scale_arcsec]
    w.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    w.wcs.cunit = ['deg', 'deg']
    return w


def spitzer_mosaic(*, shape=(40, 56), n_stars=8, seed=23, scale=0.6,
                   flux_range=(0.02, 4.0), sky=4.0, gain=3.7,
                   fluxconv=0.1069, exptime=10.4, read_noise=7.8,
                   psf_sigma=1.1, latitude=0.41):
    """
    A Spitzer/IRAC-like mosaic in MJy/sr on a ``GLON-CAR`` grid.

    Parameters
    ----------
    flux_range : (float, float)
        Star fluxes, millijansky.
    sky : float
        MJy/sr.
    gain, fluxconv, exptime, read_noise : float
        e-/DN, MJy/sr per DN/s, s and e-: each pixel's noise is that of one
        frame, variance ``signal / g_eff + (read_noise / g_eff)**2`` with
        ``g_eff = gain * exptime / fluxconv`` electrons per MJy/sr.
    latitude : float
        Galactic latitude of the frame centre, degrees: far from the
        equator the pixels of a CAR grid cover cos(latitude) of their
        nominal solid angle.
    """
    rng = np.random.default_rng(seed)
    wcs = _car_wcs(shape, scale, crval=(24.72, latitude))
    x, y, flux_mjy = _stars(shape, n_stars, flux_range, rng)
    # each pixel's flux density over its own solid angle (from the WCS)
    omega = wcs_pixel_area(wcs, *np.mgrid[0:shape[0], 0:shape[1]][::-1])
    per_pixel = render_stars(shape, x, y, flux_mjy * 1e-3, sigma=psf_sigma)
    signal = sky + per_pixel / omega / 1e6
    g_eff = gain * exptime / fluxconv
    variances = {'poisson': signal / g_eff,
                 'read': np.full(shape, (read_noise / g_eff) ** 2)}
    header = {'BUNIT': 'MJy/sr', 'GAIN': gain, 'FLUXCONV': fluxconv,
              'EXPTIME': exptime, 'RONOISE': read_noise,
              'TELESCOP': 'Spitzer', 'INSTRUME': 'IRAC', 'CHNLNUM': 1}
    return Product('spitzer', signal, variances, x, y, flux_mjy * u.mJy,
                   u.MJy / u.sr, header, wcs=wcs, psf_sigma=psf_sigma,
                   sky=sky, extra={'g_eff': g_eff, 'omega': omega})


def wcs_pixel_area(wcs, x, y):
    """The solid angle [sr] of pixels at (x, y): the cross product of the
    unit vectors half a pixel either side (an independent reference)."""
    x, y = np.asarray(x, float), np.asarray(y, float)

    def vec(px, py):
        lon, lat = wcs.all_pix2world(px, py, 0)
        lon, lat = np.radians(lon), np.radians(lat)
        return np.stack([np.cos(lat) * np.cos(lon),
                         np.cos(lat) * np.sin(lon), np.sin(lat)], -1)

    dx = vec(x + 0.5, y) - vec(x - 0.5, y)
    dy = vec(x, y + 0.5) - vec(x, y - 0.5)
    return np.linalg.norm(np.cross(dx, dy), axis=-1)


def _write_spitzer(product, path, data):
    hdr = product.wcs.to_header()
    for key, value in product.header.items():
        hdr[key] = value
    fits.PrimaryHDU(data.astype(np.float32), hdr).writeto(path,
                                                         overwrite=True)


def drizzled_mosaic(product, rng, *, n_exposures=4, pixfrac=0.8):
    """
    ``product`` resampled as a mosaic is: ``n_exposures`` dithered
    exposures (each with the per-pixel noise of ``product`` times
    sqrt(n_exposures)) drizzled onto its grid with ``drizzle``. Returns
    the mosaic (neighbouring pixels' noise correlated) and its weight map.
    """
    from drizzle.resample import Drizzle

    ny, nx = product.shape
    driz = Drizzle(out_shape=product.shape, fillval=np.nan)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    for _ in range(n_exposures):
        dx, dy = rng.uniform(-0.5, 0.5, 2)
        # the exposure samples the sky at positions shifted by (dx, dy)
        pixmap = np.dstack([xx + dx, yy + dy])
        exposure = _shifted_model(product, dx, dy) + rng.standard_normal(
            product.shape) * np.sqrt(product.variance * n_exposures)
        driz.add_image(exposure.astype(np.float32), exptime=1.0,
                       pixmap=pixmap, pixfrac=pixfrac, in_units='cps')
    return driz.out_img, driz.out_wht


def _shifted_model(product, dx, dy):
    """The noiseless model of an exposure whose pixel (i, j) lands at
    (i + dx, j + dy) on the mosaic grid."""
    per_pixel = render_stars(product.shape, product.x - dx, product.y - dy,
                             product.flux.to_value(u.Jy),
                             sigma=product.psf_sigma)
    return product.sky + per_pixel / product.extra['omega'] / 1e6


def as_flux_density(product):
    """``product`` (in MJy/sr, with PIXAR_SR) in Jy per pixel: each pixel
    times its solid angle, the variances times its square."""
    factor = product.header['PIXAR_SR'] * 1e6
    header = {k: v for k, v in product.header.items()
              if not k.startswith('PIXAR')}
    header['BUNIT'] = 'Jy/pix'
    return Product('jwst', product.model * factor,
                   {k: v * factor ** 2 for k, v in product.variances.items()},
                   product.x, product.y, product.flux, u.Jy / u.pix, header,
                   dq=product.dq, garbage=product.garbage * factor,
                   wcs=product.wcs, psf_sigma=product.psf_sigma,
                   sky=product.sky * factor, extra=dict(product.extra))


WRITERS = {'jwst': _write_jwst, 'hst': _write_hst,
           'spitzer': _write_spitzer}
