# Licensed under a 3-clause BSD style license - see LICENSE
"""
ADU <-> electron conversions of results: a flux or a variance, an
`~ccdphot_ext.ErrorBudget` or a `~ccdphot_ext.photometer` table (fluxes
times the gain, variances times its square).
"""

import math

import astropy.units as u
import numpy as np
from astropy.table import QTable, Table

from ..io.units import GAIN_UNIT
from ..utils.columns import unit_power
from ..utils.inputs import positive_scalar
from .budget import ErrorBudget

__all__ = ['to_electron', 'to_adu']


def _gain_value(gain, name='gain'):
    """A gain (a number, or a Quantity in e-/ADU) as a positive float."""
    if isinstance(gain, u.Quantity):
        try:
            value = gain.to_value(GAIN_UNIT)
        except u.UnitConversionError as exc:
            raise u.UnitsError(f'{name} must be in {GAIN_UNIT}, got '
                               f'{gain.unit}') from exc
    else:
        if isinstance(gain, (bool, np.bool_, str, bytes)) or gain is None:
            raise TypeError(f'{name} must be a number or a Quantity in '
                            f'{GAIN_UNIT}, got {gain!r}')
        value = gain
    return positive_scalar(value, name, allow_none=False)


def _convert(obj, factor, unit_from, unit_to, note):
    """Scale fluxes by ``factor`` and variances by ``factor**2``."""
    if isinstance(obj, ErrorBudget):
        return obj.scaled(factor, note=note)
    if isinstance(obj, Table):
        out = QTable(obj, copy=True)
        for name in out.colnames:
            col = out[name]
            power = unit_power(name)  # flux columns scale with g, variances g**2
            if not power:
                continue
            if isinstance(col, u.Quantity):
                if unit_from is not None and col.unit != unit_from ** power:
                    raise u.UnitsError(f'column {name!r} is in {col.unit}, '
                                       f'expected {unit_from ** power}')
                out[name] = col.value * factor ** power * unit_to ** power
            else:
                out[name] = np.asarray(col) * factor ** power
        zp = out.meta.get('zeropoint')
        # magnitudes stay the same: the zero point of the new unit absorbs g
        out.meta['zeropoint'] = (zp or 0.0) + 2.5 * math.log10(factor)
        if 'gain' in out.meta and out.meta['gain'] is not None:
            out.meta['gain'] = out.meta['gain'] / factor
        out.meta.setdefault('notes', [])
        out.meta['notes'] = [*out.meta['notes'], note]
        return out
    if isinstance(obj, u.Quantity):
        for power in (1, 2):
            if obj.unit == unit_from ** power:
                return obj.value * factor ** power * unit_to ** power
        raise u.UnitsError(f'value in {obj.unit} cannot be converted with a '
                           f'gain: expected {unit_from} or {unit_from}**2')
    raise TypeError('obj must be a Quantity, a photometer table or an '
                    f'ErrorBudget, got {type(obj).__name__}')


def to_electron(obj, gain):
    """
    Convert ADU fluxes, variances, a budget or a photometry table to electrons.

    Fluxes are multiplied by the gain, variances by its square; SNR and
    magnitudes do not change (for a table, ``meta['zeropoint']`` becomes the
    zero point of electron fluxes, ``zeropoint + 2.5 log10(g)``).

    Parameters
    ----------
    obj : `~astropy.units.Quantity`, `~ccdphot_ext.ErrorBudget` or table
        A flux in ``adu`` or a variance in ``adu2``; a budget (plain numbers
        taken as ADU); or a `~ccdphot_ext.photometer` table (its flux and
        variance columns, plain or in ADU).
    gain : float or `~astropy.units.Quantity`
        The gain in e-/ADU (positive; a Quantity in a unit convertible to
        e-/ADU).

    Returns
    -------
    converted : Quantity, `~ccdphot_ext.ErrorBudget` or `~astropy.table.QTable`
        A new object of the same kind in electrons (a table as a
        `~astropy.table.QTable` copy); ``obj`` is not changed.

    Raises
    ------
    TypeError
        If ``obj`` is not a Quantity, a budget or a table, or ``gain`` is
        not a number.
    astropy.units.UnitsError
        If ``obj`` or a column is not in ADU (or its square), or ``gain``
        is in another unit.
    ValueError
        If ``gain`` is not positive and finite.

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext import ErrorBudget
    >>> from ccdphot_ext.photometry.conversion import to_electron
    >>> to_electron(1000 * u.adu, 1.9 * u.electron / u.adu)
    <Quantity 1900. electron>
    >>> b = ErrorBudget.from_aperture(1000.0, 25, 7.0, gain=1.9)
    >>> e = to_electron(b, 1.9)
    >>> print(f'{e.flux:.1f} {e.terms["source"]:.1f} {e.gain:g}')
    1900.0 1900.0 1
    >>> round(e.snr / b.snr, 12)
    1.0
    """
    g = _gain_value(gain)
    return _convert(obj, g, u.adu, u.electron,
                    f'converted adu -> electron with gain {g:g} e-/adu')


def to_adu(obj, gain):
    """
    Convert electron fluxes, variances, a budget or a table to ADU.

    The inverse of `to_electron`: fluxes are divided by the gain,
    variances by its square; SNR and magnitudes do not change (a table's
    ``meta['zeropoint']`` becomes the zero point of ADU fluxes).

    Parameters
    ----------
    obj : `~astropy.units.Quantity`, `~ccdphot_ext.ErrorBudget` or table
        A flux in ``electron`` or a variance in ``electron2``; a budget
        (plain numbers taken as electrons); or a `~ccdphot_ext.photometer`
        table in electrons.
    gain : float or `~astropy.units.Quantity`
        The gain in e-/ADU (positive; a Quantity in a unit convertible to
        e-/ADU).

    Returns
    -------
    converted : Quantity, `~ccdphot_ext.ErrorBudget` or `~astropy.table.QTable`
        A new object of the same kind in ADU; ``obj`` is not changed.

    Raises
    ------
    TypeError
        If ``obj`` is not a Quantity, a budget or a table, or ``gain`` is
        not a number.
    astropy.units.UnitsError
        If ``obj`` or a column is not in electrons (or their square), or
        ``gain`` is in another unit.
    ValueError
        If ``gain`` is not positive and finite.

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.photometry.conversion import to_adu
    >>> to_adu(3.61 * u.electron ** 2, 1.9)
    <Quantity 1. adu2>
    """
    g = _gain_value(gain)
    return _convert(obj, 1.0 / g, u.electron, u.adu,
                    f'converted electron -> adu with gain {g:g} e-/adu')
