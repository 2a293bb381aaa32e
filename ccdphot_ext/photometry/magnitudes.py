# Licensed under a 3-clause BSD style license - see LICENSE
"""
Magnitudes of aperture fluxes, in the system their unit allows.

=====================  ======================================================
flux unit              ``mag``
=====================  ======================================================
flux density           AB: ``-2.5 log10(F / 3631 Jy)`` (per wavelength: AB
(Jy, erg/s/cm²/Å)      at the header's pivot wavelength PHOTPLAM, else ST:
                       ``-2.5 log10(F / (erg/s/cm²/Å)) - 21.10``)
surface brightness     AB per square arcsecond: ``-2.5 log10(I / (3631 Jy /
(a mean inside the     arcsec²))``
aperture)
counts (adu, DN,       ``-2.5 log10(F / exptime) + zeropoint``
count, electron)
count rates            ``-2.5 log10(F) + zeropoint`` (not divided again)
anything else          ``-2.5 log10(F) + zeropoint``, an instrumental
                       magnitude, with a note
=====================  ======================================================

The zero point of counts and rates is the ``zeropoint`` argument, else the
header's (PHOTFLAM/PHOTPLAM, PHOTFLAM/PHOTZPT, PHOTMJSR:
`~ccdphot_ext.io.zeropoints`), else 0 (instrumental magnitudes). A
``zeropoint`` argument on a flux density or surface brightness is added
to ``-2.5 log10`` of the flux in its unit instead of the AB rule. The
result always says which rule and which zero point were used.
"""

import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np

from ..io.fluxdensity import unit_family
from ..io.zeropoints import header_zeropoint
from ..utils.numbers import finite_number, positive_scalar

__all__ = ['Magnitudes', 'magnitudes', 'AB_ZERO_FLUX']

#: The AB system's zero-magnitude flux density.
AB_ZERO_FLUX = 3631.0 * u.Jy

#: ST magnitude of 1 erg/s/cm²/Å: ``-2.5 log10(F_lambda) - 21.10``.
_ST_OFFSET = -21.10


@dataclass(frozen=True)
class Magnitudes:
    """
    Magnitudes and how they were made (the result of `magnitudes`).

    Parameters
    ----------
    mag : ndarray
        NaN where the flux is not positive.
    system : str
        ``'AB'``, ``'AB per arcsec2'``, ``'ST'`` or ``'instrumental'``.
    zeropoint : float or None
        The zero point added to ``-2.5 log10`` of the flux (or rate); None
        for instrumental magnitudes (none added) and for AB and ST
        magnitudes made from the flux unit itself.
    zeropoint_source : str or None
        ``'argument'``, the header keywords, or None.
    note : str
        The rule, in words.
    usual : bool
        True for the usual instrumental magnitudes of counts,
        ``-2.5 log10(F / exptime)``: a table's notes leave the rule out
        then.
    """

    mag: np.ndarray
    system: str
    zeropoint: float | None
    zeropoint_source: str | None
    note: str
    usual: bool = False


def _log_mag(values):
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    good = values > 0
    out[good] = -2.5 * np.log10(values[good])
    return out


def magnitudes(flux, unit, *, exptime=None, zeropoint=None, meta=None):
    """
    Compute the magnitudes of fluxes in ``unit``.

    Parameters
    ----------
    flux : array_like
        Aperture fluxes (plain numbers in ``unit``), or mean surface
        brightnesses when ``unit`` is one.
    unit : `~astropy.units.UnitBase`, str or None
        Their unit (None: plain numbers, taken as counts).
    exptime : float, optional
        Seconds: counts are divided by it (rates and fluxes never are).
    zeropoint : float, optional
        Added to ``-2.5 log10``; default the header's, for counts and rates
        (`~ccdphot_ext.io.zeropoints.header_zeropoint`), else none.
    meta : dict-like, optional
        The header (zero-point keywords, PHOTPLAM).

    Returns
    -------
    mags : `Magnitudes`
        The magnitudes (NaN where the flux is not positive), the system,
        the zero point and where it came from, and the rule in words.

    Raises
    ------
    TypeError
        If ``unit`` is not a unit, a unit string or None (an error bar
        passed as the second argument).

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.photometry.magnitudes import magnitudes
    >>> m = magnitudes([3631e-6, 0.0], u.Jy)
    >>> m.mag.round(6).tolist(), m.system
    ([15.0, nan], 'AB')
    >>> m = magnitudes([3000.0], u.electron, exptime=30.0)
    >>> m.mag.round(6).tolist(), m.system, m.zeropoint
    ([-5.0], 'instrumental', None)
    """
    family = unit_family(unit)
    unit = None if unit is None else u.Unit(unit)
    flux = np.atleast_1d(np.asarray(flux, dtype=float))
    exptime = positive_scalar(exptime, 'exptime')
    zeropoint = None if zeropoint is None else finite_number(zeropoint,
                                                             'zeropoint')
    if zeropoint is not None and family in ('flux density',
                                            'surface brightness'):
        return Magnitudes(_log_mag(flux) + zeropoint, 'zeropoint argument',
                          float(zeropoint), 'argument',
                          f'mag = -2.5 log10(aperture_sum / ({unit})) + '
                          f'zeropoint {zeropoint:g} (argument)')
    if family == 'flux density':
        return _flux_density_mag(flux, unit, meta)
    if family == 'surface brightness':
        return _surface_brightness_mag(flux, unit, meta)
    return _count_mag(flux, unit, family, exptime, zeropoint, meta)


def _pivot(meta):
    try:
        pivot = float((meta or {})['PHOTPLAM'])
    except (KeyError, TypeError, ValueError):
        return None
    return pivot if math.isfinite(pivot) and pivot > 0 else None


def _to_ab(values, unit, meta):
    """``values`` in ``unit`` as a fraction of ``target`` (3631 Jy, or its
    per-solid-angle version), or None when they are per wavelength and no
    pivot wavelength is known."""
    target = AB_ZERO_FLUX.unit
    per_area = unit_family(unit) == 'surface brightness'
    if per_area:
        target = target / u.arcsec ** 2
    try:
        scale = (1.0 * unit).to_value(target)
    except u.UnitConversionError:
        pivot = _pivot(meta)
        if pivot is None:
            return None
        scale = (1.0 * unit).to_value(target,
                                      u.spectral_density(pivot * u.AA))
    return values * scale / AB_ZERO_FLUX.value


def _flux_density_mag(flux, unit, meta):
    ratio = _to_ab(flux, unit, meta)
    if ratio is not None:
        via = ('' if (1.0 * unit).unit.is_equivalent(u.Jy) else
               f' (at the pivot wavelength PHOTPLAM {_pivot(meta):g} AA)')
        return Magnitudes(_log_mag(ratio), 'AB', None, None,
                          f'mag = -2.5 log10(aperture_sum / 3631 Jy): AB'
                          f'{via}')
    flam = flux * (1.0 * unit).to_value(u.erg / u.s / u.cm ** 2 / u.AA)
    return Magnitudes(_log_mag(flam) + _ST_OFFSET, 'ST', None, None,
                      'mag = -2.5 log10(aperture_sum / (erg / (s cm2 AA))) '
                      '- 21.10: ST (no PHOTPLAM for AB)')


def _surface_brightness_mag(flux, unit, meta):
    ratio = _to_ab(flux, unit, meta)
    if ratio is None:
        raise u.UnitsError(f'AB magnitudes of a surface brightness in {unit} '
                           'need the pivot wavelength (PHOTPLAM)')
    return Magnitudes(_log_mag(ratio), 'AB per arcsec2', None, None,
                      'mag = -2.5 log10(mean surface brightness / (3631 Jy / '
                      'arcsec2)): AB magnitudes per square arcsecond')


def _count_mag(flux, unit, family, exptime, zeropoint, meta):
    divide = family == 'counts' and exptime
    rate = flux / exptime if divide else flux
    source = 'argument' if zeropoint is not None else None
    system = 'instrumental'
    if zeropoint is None and family in ('counts', 'rate'):
        found = header_zeropoint(meta)
        if found is not None and (divide or family == 'rate'):
            zeropoint, source, system = found
    zp = 0.0 if zeropoint is None else float(zeropoint)
    if source == 'argument':
        system = 'zeropoint argument'
    name = 'adu' if unit is None else unit.to_string()
    what = (f'aperture_sum / exptime ({exptime:g} s)' if divide
            else 'aperture_sum')
    note = f'mag = -2.5 log10({what}) + {zp:g}'
    usual = False
    if source is not None:
        note += f' (zero point from {source}: {system})'
    elif family == 'other':
        note += (f': an instrumental magnitude of data in {name}, not a '
                 'flux density')
    elif family == 'rate':
        note += (f': data are a rate ({name}), not divided by the exposure '
                 'time')
    elif not exptime:
        note += ': no exposure time, counts not divided'
    else:
        note += ': instrumental'
        usual = True
    return Magnitudes(_log_mag(rate) + zp, system,
                      None if source is None else zp, source, note, usual)
