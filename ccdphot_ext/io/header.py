# Licensed under a 3-clause BSD style license - see LICENSE
"""
Read detector parameters from FITS headers with a documented precedence.

Precedence for every parameter: an explicit argument wins, then the first
header keyword found in the order listed below, then ``None`` (the caller
decides whether that is an error). Missing gain is never silently 1: the
source Poisson term is then absent and the budget says so.

==============  =====================================  ============
parameter       header keywords (first found wins)     unit
==============  =====================================  ============
gain            GAIN, EGAIN, CCDGAIN                   e-/ADU
read_noise      RDNOISE, READNOIS, RON                 e-
exptime         EXPTIME, EXPOSURE, ITIME               s
saturation      SATURATE, SATLEVEL                     data unit
unit            BUNIT                                  --
==============  =====================================  ============

Given the data unit, the gain used for the source term is the number of
electrons per *data unit* (see `ccdphot_ext.units`): the gain itself for
ADU, 1 for electrons, times the exposure time for rates.
"""

import warnings

import astropy.units as u
import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..utils.inputs import positive_scalar
from .units import GAIN_UNIT, electrons_per_data_unit

__all__ = ['HEADER_KEYWORDS', 'DetectorParameters', 'detector_parameters',
           'unit_from_header', 'INHERITED_TAG']

#: Start of the comment of a card that `~ccdphot_ext.read_frame` copied
#: from the primary header of a multi-extension file.
INHERITED_TAG = '[primary HDU]'

HEADER_KEYWORDS = {
    'gain': ('GAIN', 'EGAIN', 'CCDGAIN'),
    'read_noise': ('RDNOISE', 'READNOIS', 'RON'),
    'exptime': ('EXPTIME', 'EXPOSURE', 'ITIME'),
    'saturation': ('SATURATE', 'SATLEVEL'),
}

_UNITS = {'gain': u.electron / u.adu, 'read_noise': u.electron,
          'exptime': u.s, 'saturation': None}


class DetectorParameters(dict):
    """
    Gain, read noise, exposure time and saturation with their origin.

    A `dict` of the values (``None`` when unknown) whose `sources`
    attribute says where each came from: ``'argument'``, the header
    keyword (``'GAIN (primary HDU)'`` when `~ccdphot_ext.read_frame`
    inherited it from the primary header of a multi-extension file), or
    ``'missing'``. When the data unit was given,
    ``self['gain']`` is in electrons per data unit, `detector_gain` keeps
    the e-/ADU value it came from and `gain_note` says how.
    """

    def __init__(self, values, sources, *, detector_gain=None,
                 gain_note=None):
        super().__init__(values)
        self.sources = dict(sources)
        self.detector_gain = (values.get('gain') if detector_gain is None
                              else detector_gain)
        self.gain_note = gain_note

    def __repr__(self):
        items = ', '.join(f'{k}={v!r} ({self.sources[k]})'
                          for k, v in self.items())
        return f'<DetectorParameters {items}>'


def _header_value(meta, keys, name):
    """The first valid value of ``keys`` and where it came from; a key
    present with an invalid value is skipped with a warning (and named in
    the source when no other key gives a value)."""
    rejected = []
    for key in keys:
        if key in meta:
            raw = meta[key]
            try:
                value = positive_scalar(raw, f'{name} (header {key})',
                                        allow_none=False,
                                        allow_zero=(name == 'read_noise'))
            except (TypeError, ValueError) as exc:
                warnings.warn(f'ignoring header keyword {key}={raw!r}: '
                              f'{exc}', AstropyUserWarning, stacklevel=2)
                rejected.append(f'{key}={raw!r}')
                continue
            return value, _keyword_origin(meta, key)
    if rejected:
        return None, f"invalid {', '.join(rejected)} ignored"
    return None, 'missing'


def _keyword_origin(meta, key):
    """``key``, or ``'key (primary HDU)'`` for an inherited card."""
    comments = getattr(meta, 'comments', None)
    try:
        inherited = str(comments[key]).startswith(INHERITED_TAG)
    except (KeyError, TypeError, IndexError):
        inherited = False
    return f'{key} (primary HDU)' if inherited else key


def _argument_value(value, name):
    unit = _UNITS[name]
    if name == 'gain' and isinstance(value, u.Quantity):
        # electrons per data unit (or per ADU, DN, count): checked against
        # the data unit by electrons_per_data_unit
        base = value.unit.decompose()
        if dict(zip(base.bases, base.powers, strict=True)).get(u.electron) != 1:
            raise u.UnitsError(f'gain must be in electrons per data unit, '
                               f'got {value.unit}')
        positive_scalar(value.value, name, allow_none=False)
        return value
    if isinstance(value, u.Quantity):
        if unit is None:
            raise TypeError(f'{name} must be a plain number in the data '
                            'unit (pass saturation in the data unit)')
        try:
            value = value.to_value(unit)
        except u.UnitConversionError as exc:
            raise u.UnitsError(f'{name} must be in {unit}, got '
                               f'{value.unit}') from exc
    return positive_scalar(value, name, allow_none=False,
                           allow_zero=(name == 'read_noise'))


def detector_parameters(meta=None, *, gain=None, read_noise=None,
                        exptime=None, saturation=None, unit=None):
    """
    Resolve detector parameters from explicit arguments and a header.

    Parameters
    ----------
    meta : dict-like or None
        A FITS header or any mapping (e.g. ``CCDData.meta``).
    gain, read_noise, exptime, saturation : float, Quantity or None, optional
        Explicit values; they win over the header. ``gain`` in e-/ADU,
        ``read_noise`` in e-, ``exptime`` in s, ``saturation`` in the data
        unit.
    unit : `~astropy.units.UnitBase`, optional
        The data unit. When given, the returned ``'gain'`` is in electrons
        per data unit (1 for electrons, ``gain * exptime`` for ``adu / s``;
        see `ccdphot_ext.io.units.electrons_per_data_unit`) and
        ``sources['gain']`` says how it was found.

    Returns
    -------
    params : `DetectorParameters`

    Raises
    ------
    ValueError, TypeError
        If an explicit value is zero, negative, not finite or not a number.

    Examples
    --------
    >>> from ccdphot_ext.io.header import detector_parameters
    >>> p = detector_parameters({'EGAIN': 2.23, 'EXPTIME': 30.0})
    >>> p['gain'], p.sources['gain']
    (2.23, 'EGAIN')
    >>> p['read_noise'] is None, p.sources['read_noise']
    (True, 'missing')
    >>> detector_parameters({'EGAIN': 2.23}, gain=1.0)['gain']
    1.0

    Data already in electrons have a gain of 1 e-/e-, whatever the header:

    >>> import astropy.units as u
    >>> p = detector_parameters({'GAIN': 1.9}, unit=u.electron)
    >>> p['gain'], p.detector_gain
    (1.0, 1.9)
    """
    meta = {} if meta is None else meta
    args = {'gain': gain, 'read_noise': read_noise, 'exptime': exptime,
            'saturation': saturation}
    values, sources = {}, {}
    for name, arg in args.items():
        if arg is not None:
            values[name] = _argument_value(arg, name)
            sources[name] = 'argument'
        else:
            values[name], sources[name] = _header_value(
                meta, HEADER_KEYWORDS[name], name)
    if unit is None and not isinstance(values['gain'], u.Quantity):
        return DetectorParameters(values, sources)
    detector_gain = values['gain']
    g_eff, note = electrons_per_data_unit(
        unit, gain=detector_gain, exptime=values['exptime'],
        gain_is_explicit=sources['gain'] == 'argument', meta=meta)
    if isinstance(detector_gain, u.Quantity):
        sources['gain'] = f'argument: {note}'
        try:  # a detector gain only if it is one
            detector_gain = detector_gain.to_value(GAIN_UNIT)
        except u.UnitConversionError:
            detector_gain = None
    elif g_eff != detector_gain:
        sources['gain'] = f'{sources["gain"]}: {note}'
    values['gain'] = g_eff
    return DetectorParameters(values, sources, detector_gain=detector_gain,
                              gain_note=note)


#: Common BUNIT spellings that astropy does not parse as they are
_BUNIT_ALIASES = {
    'adu': 'adu', 'adus': 'adu', 'dn': 'DN', 'count': 'count',
    'counts': 'count', 'cts': 'count', 'e': 'electron', 'e-': 'electron',
    'electron': 'electron', 'electrons': 'electron', 's': 's', 'sec': 's',
    'secs': 's', 'second': 's', 'seconds': 's'}


def unit_from_header(meta):
    """
    Return the unit named by BUNIT, or None.

    A blank BUNIT means no unit; common spellings astropy does not parse
    (``ADU``, ``e-/s``, ``ELECTRONS/S``, ``counts``) are understood; an
    unparseable value warns and gives None.

    Examples
    --------
    >>> from ccdphot_ext.io.header import unit_from_header
    >>> unit_from_header({'BUNIT': 'ELECTRONS/S'})
    Unit("electron / s")
    >>> unit_from_header({'BUNIT': '        '}) is None
    True
    """
    if meta is None or 'BUNIT' not in meta:
        return None
    raw = str(meta['BUNIT']).strip()
    if not raw:
        return None
    try:
        return u.Unit(raw, parse_strict='raise')
    except ValueError:
        pass
    parts = raw.replace(' ', '').split('/')
    fixed = [_BUNIT_ALIASES.get(p.lower(), p) for p in parts]
    try:
        unit = u.Unit('/'.join(fixed), parse_strict='raise')
        if isinstance(unit, u.UnitBase) and np.isfinite(unit.scale):
            return unit
    except ValueError:
        pass
    warnings.warn(f'ignoring unparseable BUNIT={raw!r}', AstropyUserWarning,
                  stacklevel=2)
    return None


