# Licensed under a 3-clause BSD style license - see LICENSE
"""
Surface brightness to flux density: what a frame's unit means for an
aperture sum, and the pixel solid angle that turns one into the other.

A frame's unit falls in one of five families (`unit_family`):

======================  ==============================  ====================
family                  examples                        an aperture sum is
======================  ==============================  ====================
``'counts'``            adu, DN, count, electron        counts
                        (also per pixel)
``'rate'``              adu / s, electron / s,          a count rate
                        electron / (s pix)
``'surface brightness'`` MJy/sr, Jy/sr, uJy/arcsec2,    a flux density, once
                        erg/s/cm2/AA/arcsec2            each pixel's value is
                                                        multiplied by its
                                                        solid angle
``'flux density'``      Jy, mJy/pix, erg/s/cm2/AA       a flux density
``'other'``             anything else                   the data unit
======================  ==============================  ====================

The pixel solid angle (`pixel_solid_angle`) comes from the header's
``PIXAR_SR`` (steradians) or ``PIXAR_A2`` (square arcseconds), as JWST and
HST products carry it (the nominal area of their resampled pixels), else
from the celestial WCS at each aperture's position, so that non-square or
distorted pixels, and projections whose pixel area changes across the
frame, come out right.

`FluxConversion` turns aperture sums in the data unit into the flux unit
asked for (by default Jy for surface brightness, the data unit
otherwise); a surface-brightness flux unit asks for the mean surface
brightness inside each aperture instead.
"""

import warnings
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..utils.numbers import check_choice, positive_scalar
from .units import FLUX_TYPES, checked_unit, count_kind

__all__ = ['UNIT_FAMILIES', 'unit_family', 'pixel_solid_angle',
           'FluxConversion', 'flux_conversion']

#: The unit families, see `unit_family`.
UNIT_FAMILIES = ('counts', 'rate', 'surface brightness', 'flux density',
                 'other')

#: Units an aperture sum of surface brightness is converted to by default
DEFAULT_FLUX_UNIT = u.Jy


def _power(unit, base):
    """The power of ``base`` (``u.rad`` or ``u.pix``) in ``unit``."""
    decomposed = unit.decompose()
    return dict(zip(decomposed.bases, decomposed.powers, strict=True)).get(base, 0)


def _is_flux_density(unit):
    """Spectral flux density per frequency or per wavelength (or a flux,
    erg/s/cm2), not per solid angle or pixel."""
    return unit.physical_type in FLUX_TYPES


def unit_family(unit):
    """
    Classify a data unit into its family.

    Surface brightness is anything per solid angle whose product with a
    solid angle is a flux density (``MJy / sr``, ``uJy / arcsec2``,
    ``erg / (s cm2 AA arcsec2)``); a flux density, counts and a count
    rate may be per pixel (``Jy / pix``, ``electron / (s pix)``).

    Parameters
    ----------
    unit : `~astropy.units.UnitBase`, str or None
        The data unit (a string is parsed by astropy); None (plain
        numbers) counts as ADU.

    Returns
    -------
    family : str
        ``'counts'`` (ADU, electrons, photons, counts), ``'rate'`` (counts
        per second), ``'surface brightness'``, ``'flux density'`` or
        ``'other'`` (one of `UNIT_FAMILIES`).

    Raises
    ------
    ValueError
        If a string is not a unit astropy can parse.
    TypeError
        If ``unit`` is neither a unit, a string nor None (a number).

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.io.fluxdensity import unit_family
    >>> [unit_family(x) for x in (u.adu, u.electron / u.s, u.MJy / u.sr,
    ...                           u.mJy / u.pix, u.K)]
    ['counts', 'rate', 'surface brightness', 'flux density', 'other']
    """
    if unit is None:
        return 'counts'
    unit = checked_unit(unit, 'unit')
    kind, rate = count_kind(unit)
    if kind != 'other':
        return 'rate' if rate else 'counts'
    if _power(unit, u.rad) == -2 and _is_flux_density(unit * u.sr):
        return 'surface brightness'
    if _power(unit, u.pix) == -1 and _is_flux_density(unit * u.pix):
        return 'flux density'
    if _power(unit, u.pix) == 0 and _is_flux_density(unit):
        return 'flux density'
    return 'other'


def pixel_solid_angle(meta, wcs, x, y):
    """
    Find the solid angle of the pixels at ``(x, y)``, and where it came from.

    ``PIXAR_SR`` (sr) wins, then ``PIXAR_A2`` (arcsec²): the nominal pixel
    area of JWST and HST products, the same for every position. Without
    them, the celestial WCS at each position: the area spanned by the
    pixel's sides on the sphere (half a pixel either side of the centre,
    along x and along y), which follows non-square pixels, distortion
    and projections whose pixel area changes across the frame.

    Parameters
    ----------
    meta : dict-like or None
        The header (``PIXAR_SR``, ``PIXAR_A2``); None: no keywords.
    wcs : `~astropy.wcs.WCS` or None
        The frame's celestial WCS; None: none (then a keyword is needed).
    x : array_like
        The pixel x positions (0-based).
    y : array_like
        The pixel y positions (0-based; broadcast with ``x``).

    Returns
    -------
    omega : `~astropy.units.Quantity`
        Steradians, one per position.
    source : str
        ``'PIXAR_SR'``, ``'PIXAR_A2'`` or ``'WCS pixel area at each
        position'``.

    Raises
    ------
    ValueError
        If neither keyword is usable and there is no celestial WCS.

    Examples
    --------
    >>> from ccdphot_ext.io.fluxdensity import pixel_solid_angle
    >>> omega, source = pixel_solid_angle({'PIXAR_A2': 0.0036}, None,
    ...                                   [1.0, 2.0], [3.0, 4.0])
    >>> print(omega.to('arcsec2').round(6), source)
    [0.0036 0.0036] arcsec2 PIXAR_A2
    """
    x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
    meta = {} if meta is None else meta
    for key, unit in (('PIXAR_SR', u.sr), ('PIXAR_A2', u.arcsec ** 2)):
        value = _positive_keyword(meta, key)
        if value is not None:
            omega = (value * unit).to(u.sr)
            return np.full(x.shape, omega.value) * u.sr, key
    if wcs is None or not getattr(wcs, 'has_celestial', False):
        raise ValueError('the pixel solid angle is unknown: the header has '
                         'no usable PIXAR_SR or PIXAR_A2 and the frame no '
                         'celestial WCS')
    if wcs.naxis != 2:
        wcs = wcs.celestial  # (drops any SIP distortion: 2-D frames keep it)
    return _wcs_pixel_area(wcs, x, y) * u.sr, (
        'WCS pixel area at each position')


def _positive_keyword(meta, key, what='the pixel solid angle'):
    """The keyword as a positive number (the one number rule's scale);
    None when missing, and with a warning naming ``what`` it gives when
    present but not one (0, negative, NaN, text, 1e-320, 1e308)."""
    if key not in meta:
        return None
    try:
        return positive_scalar(float(meta[key]), key, allow_none=False)
    except (TypeError, ValueError):
        pass
    warnings.warn(f'ignoring header keyword {key}={meta[key]!r}: {what} '
                  'must be a positive number', AstropyUserWarning,
                  stacklevel=3)
    return None


def _wcs_pixel_area(wcs, x, y):
    """|(r(x+1/2) - r(x-1/2)) x (r(y+1/2) - r(y-1/2))| for unit vectors r
    on the sphere: the solid angle of the pixel's parallelogram."""
    def unit_vectors(px, py):
        lon, lat = (np.radians(v) for v in wcs.all_pix2world(px, py, 0))
        return np.stack([np.cos(lat) * np.cos(lon),
                         np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)

    along_x = unit_vectors(x + 0.5, y) - unit_vectors(x - 0.5, y)
    along_y = unit_vectors(x, y + 0.5) - unit_vectors(x, y - 0.5)
    return np.linalg.norm(np.cross(along_x, along_y), axis=-1)


@dataclass(frozen=True)
class FluxConversion:
    """
    How aperture sums in the data unit become the flux unit of a table.

    Made by `flux_conversion`; each parameter is an attribute of the same
    name.

    Parameters
    ----------
    factor : `~numpy.ndarray`
        One factor per aperture: the flux-unit value of a sum of 1 data
        unit over the aperture (``mean`` False), or of a mean of 1 data
        unit per pixel (``mean`` True).
    unit : `~astropy.units.UnitBase` or None
        The flux unit (None: plain numbers).
    mean : bool, optional
        True when the flux unit is a surface brightness: the table holds
        the mean surface brightness inside each aperture (the sum divided
        by ``n_pix``). Default False.
    note : str or None, optional
        What was done, for ``meta``; None (default) when nothing was.
    solid_angle : `~astropy.units.Quantity` or None, optional
        The pixel solid angle used, one per aperture (surface brightness
        to flux density only); None (default) otherwise.
    """

    factor: np.ndarray
    unit: object
    mean: bool = False
    note: str | None = None
    solid_angle: object = None

    def apply(self, values, n_pix=None, power=1):
        """
        Convert values in the data unit to the flux unit, as plain numbers.

        A mean surface brightness divides sums by ``n_pix``; a level is one
        pixel's share either way.

        Parameters
        ----------
        values : float or array_like
            Sums over ``n_pix`` pixels (or their variances, with ``power``
            2), or per-pixel levels (a sky) without ``n_pix``; one per
            aperture, or broadcast with `factor`.
        n_pix : float or array_like, optional
            The apertures' pixel counts, for sums; None (default): the
            values are per-pixel levels.
        power : {1, 2}, optional
            The power of the data unit in ``values`` (default 1; 2 for
            variances).

        Returns
        -------
        converted : `~numpy.ndarray`
            The values in the flux unit (its ``power``), without the unit.
        """
        power = check_choice(power, 'power', (1, 2))
        values = np.asarray(values, dtype=float) * self.factor ** power
        if self.mean and n_pix is not None:
            with np.errstate(divide='ignore', invalid='ignore'):
                values = values / np.asarray(n_pix, float) ** power
        return values


def flux_conversion(unit, *, flux_unit=None, meta=None, wcs=None, x=(),
                    y=()):
    """
    Work out how aperture sums in ``unit`` become the flux unit.

    Parameters
    ----------
    unit : `~astropy.units.UnitBase` or None
        The data unit (None: plain numbers).
    flux_unit : `~astropy.units.UnitBase` or str, optional
        The unit asked for. A surface-brightness unit asks for the mean
        surface brightness inside each aperture; a flux density for
        surface brightness or flux density (per pixel) data. None
        (default): Jy for surface brightness, the data unit (no
        conversion) otherwise.
    meta : dict-like, optional
        The header (``PIXAR_SR``, ``PIXAR_A2``); None (default): no
        keywords.
    wcs : `~astropy.wcs.WCS`, optional
        The celestial WCS, for the pixel solid angle without those
        keywords; None (default): none.
    x : array_like, optional
        The apertures' x positions (0-based pixels), one factor each
        (default none).
    y : array_like, optional
        The apertures' y positions (0-based pixels), as many as ``x``.

    Returns
    -------
    conversion : `FluxConversion`
        The factor per aperture, the flux unit and a note of what was
        done.

    Raises
    ------
    `~astropy.units.UnitsError`
        If ``flux_unit`` is not a flux density or surface brightness the
        data can be turned into.
    ValueError
        If surface brightness must become a flux density and the pixel
        solid angle is unknown.

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.io.fluxdensity import flux_conversion
    >>> c = flux_conversion(u.MJy / u.sr, meta={'PIXAR_SR': 1e-13},
    ...                     x=[10.0], y=[20.0])
    >>> c.unit, c.factor.tolist()
    (Unit("Jy"), [1e-07])
    >>> print(c.note)
    MJy / sr x pixel solid angle (PIXAR_SR: 1e-13 sr) -> Jy
    """
    x = np.atleast_1d(np.asarray(x, float))
    ones = np.ones(x.shape)
    family = unit_family(unit)
    if flux_unit is None:
        if family != 'surface brightness':
            # a sum of values per pixel over pixels is in the unit itself
            unit_out = (unit * u.pix if unit is not None and family !=
                        'other' and _power(unit, u.pix) == -1 else unit)
            return FluxConversion(ones, unit_out)
        flux_unit = DEFAULT_FLUX_UNIT
    flux_unit = _checked_flux_unit(flux_unit)
    target = unit_family(flux_unit)
    if target == 'surface brightness':
        return _mean_surface_brightness(unit, family, flux_unit, ones)
    if target != 'flux density' or _power(flux_unit, u.pix):
        raise u.UnitsError(f'flux_unit={flux_unit} is not a flux density '
                           '(Jy, erg / (s cm2 AA)) or a surface brightness '
                           '(MJy / sr)')
    if family == 'flux density':
        per_pixel = unit * u.pix if _power(unit, u.pix) == -1 else unit
        return FluxConversion(ones * _factor(per_pixel, flux_unit, meta),
                              flux_unit, note=_note(unit, flux_unit))
    if family != 'surface brightness':
        raise u.UnitsError(f'flux_unit={flux_unit}: data in '
                           f'{_name(unit)} are not a flux density or a '
                           'surface brightness; give no flux_unit')
    omega, source = pixel_solid_angle(meta, wcs, x,
                                      np.atleast_1d(np.asarray(y, float)))
    per_sr = _factor(unit * u.sr, flux_unit, meta)
    shown = (f'{omega[0].value:.6g} sr' if source.startswith('PIXAR')
             else f'{omega.value.min():.6g} to {omega.value.max():.6g} sr'
             if omega.size else 'no position')
    note = (f'{_name(unit)} x pixel solid angle ({source}: {shown}) -> '
            f'{flux_unit}')
    if meta is not None and 'AREAVAR' in meta:  # a pixel-area map left out
        note += (f' (AREA extension not applied: pixel areas '
                 f'{100 * float(meta["AREAVAR"]):.3g}% apart taken as equal)')
    return FluxConversion(omega.to_value(u.sr) * per_sr, flux_unit,
                          solid_angle=omega, note=note)


def _name(unit):
    return 'adu' if unit is None else unit.to_string()


def _note(unit, flux_unit):
    return f'{_name(unit)} -> {flux_unit}'


def _checked_flux_unit(flux_unit):
    return checked_unit(flux_unit, 'flux_unit')


def _factor(unit, flux_unit, meta):
    """The value in ``flux_unit`` of 1 ``unit``: directly, or between flux
    densities per frequency and per wavelength at the header's pivot
    wavelength (PHOTPLAM, in angstrom)."""
    try:
        return (1.0 * unit).to_value(flux_unit)
    except u.UnitConversionError:
        pass
    pivot = _positive_keyword(meta or {}, 'PHOTPLAM',
                              'the pivot wavelength')
    if pivot is None:
        raise u.UnitsError(f'cannot convert {unit} to {flux_unit}: per '
                           'frequency and per wavelength need the pivot '
                           'wavelength (PHOTPLAM) in the header')
    return (1.0 * unit).to_value(flux_unit,
                                 u.spectral_density(pivot * u.AA))


def _mean_surface_brightness(unit, family, flux_unit, ones):
    if family != 'surface brightness':
        raise u.UnitsError(f'flux_unit={flux_unit} is a surface brightness; '
                           f'data in {_name(unit)} are not')
    return FluxConversion(
        ones * _factor(unit, flux_unit, None), flux_unit, mean=True,
        note=(f'mean surface brightness inside each aperture (sum / '
              f'n_pix), {_name(unit)} -> {flux_unit}'))
