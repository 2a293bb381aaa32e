# Licensed under a 3-clause BSD style license - see LICENSE
"""
Data units and the gain: what the gain means for a frame in a given unit
(converting results between ADU and electrons is
`ccdphot_ext.photometry.conversion`).

The gain is the number of electrons per *data unit*, ``g_eff``: the source
(photon) variance of a flux ``F`` is ``F / g_eff``. A detector gain ``g``
(``u.electron / u.adu``) gives it for data in counts; for other data it is
worked out from the unit, or given with its unit:

=====================================  ======================================
data unit                              electrons per data unit ``g_eff``
=====================================  ======================================
none, ``adu``, ``DN`` or ``count``     the gain ``g`` (argument or header)
``electron``                           1 (the header's GAIN is ignored: it
                                       described the raw frame)
``adu / s`` (and ``DN``, ``count``)    ``g * exptime``
``electron / s``                       ``exptime``
any of these per pixel (``e-/s/pix``)  the same: a value per pixel is what
                                       a pixel holds
anything else (Jy, MJy/sr, ...)        a gain given *with its unit*, in
                                       electrons per data unit
                                       (``31.3 * u.electron / (u.MJy /
                                       u.sr)``), else one derived from the
                                       header (Spitzer: ``GAIN * EXPTIME /
                                       FLUXCONV`` e- per MJy/sr)
=====================================  ======================================

A bare number given as the gain of data in other units is refused (the
error names the unit it must have): a detector gain in e-/ADU does not
describe them. When ``g_eff`` cannot be worked out the source term is
absent and the budget says so; it is never silently 1.

Aperture photometry adds pixel values, so the data unit must be one whose
values add up to light (`check_data_unit`): counts (ADU, DN, count,
electron, photon), their rates, a flux density (Jy, erg/s/cm2/AA, W/m2,
nanomaggy) or a surface brightness (MJy/sr), each possibly per pixel,
per area, per beam. Plain numbers (no unit, or a dimensionless unit)
pass. Anything else is refused: magnitudes and other
logarithmic units (a sum of magnitudes is no magnitude of a sum), a
percentage or another scaled ratio, a temperature, a length, an electric
current ...
"""

import ast
import operator
import re
import warnings

import astropy.units as u
from astropy.utils.exceptions import AstropyUserWarning

from ..utils.inputs import positive_scalar

__all__ = ['GAIN_UNIT', 'check_data_unit', 'electrons_per_data_unit',
           'header_effective_gain', 'parse_unit', 'parse_quantity']

#: The unit of a CCD gain.
GAIN_UNIT = u.electron / u.adu

_ADU_LIKE = (u.adu, u.DN, u.count)

#: Spitzer's surface-brightness calibration unit (FLUXCONV: MJy/sr per DN/s)
_MJY_SR = u.MJy / u.sr


#: The physical types of a flux: per frequency, per wavelength, or
#: integrated over the band (erg/s/cm2)
FLUX_TYPES = ('spectral flux density', 'spectral flux density wav',
              'energy flux')

#: Units whose values count light: detector counts, photons, and the
#: maggy (a linear flux, relative to 3631 Jy)
_LIGHT_COUNTS = (*_ADU_LIKE, u.electron, u.ph, u.mgy)

#: What a count of light may be per: time, area (and wavelength), solid
#: angle, pixel, beam
_PER = (u.s, u.m, u.rad, u.pix, u.beam)


def count_kind(unit):
    """
    ``('adu' | 'electron' | 'other', is_rate)`` for a data unit: counts
    (ADU, DN, count), electrons, or neither; per second or not. A value
    per pixel (``e-/s/pix``, ``DN/S/PIX``) is what the pixel holds: the
    same kind. None (plain numbers) is ADU; a dimensionless unit is
    neither.

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.io.units import count_kind
    >>> count_kind(u.electron / u.s / u.pix), count_kind(u.MJy / u.sr)
    (('electron', True), ('other', False))
    """
    if unit is None or unit == u.dimensionless_unscaled:
        return ('adu', False) if unit is None else ('other', False)
    unit = u.Unit(unit)
    for value in (unit, unit * u.pix):
        for rate, base in ((False, value), (True, value * u.s)):
            if base == u.electron:
                return 'electron', rate
            if any(base == a for a in _ADU_LIKE):
                return 'adu', rate
    return 'other', False


def data_unit_problem(unit):
    """
    Why values in ``unit`` cannot be added up into an aperture's light
    (what the unit is instead), or None when they can: the rule of
    `check_data_unit`.

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.io.units import data_unit_problem
    >>> data_unit_problem(u.K), data_unit_problem(u.Jy / u.beam)
    ('a temperature', None)
    """
    if unit is None or unit == u.dimensionless_unscaled:
        return None  # plain numbers
    base = u.Unit(unit).decompose()
    powers = dict(zip(base.bases, base.powers, strict=True))
    if u.dex in powers:
        return ('a logarithmic unit (magnitudes, dex, decibels: a sum of '
                'logarithms is no logarithm of a sum)')
    counts = [b for b in powers if any(b == c for c in _LIGHT_COUNTS)]
    if counts:
        if len(counts) == 1 and powers[counts[0]] == 1 and all(
                p < 0 and any(b == per for per in _PER)
                for b, p in powers.items() if b != counts[0]):
            return None  # a count, per time, area, solid angle, pixel
        return 'a count to a power, or per something else'
    core = base
    for per in (u.pix, u.rad, u.beam):  # per pixel, solid angle, beam
        if powers.get(per, 0) < 0:
            core = core * per ** -powers[per]
    if core.physical_type in FLUX_TYPES:
        return None
    kind = str(u.Unit(unit).physical_type)
    if kind == 'dimensionless':
        return 'a ratio (dimensionless, scaled: a percentage, ...)'
    if kind == 'unknown':
        return 'a unit of no physical type astropy knows'
    kind = kind.split('/')[0]
    return f'{"an" if kind[0] in "aeiou" else "a"} {kind}'


def check_data_unit(unit, name):
    """
    Refuse a data unit whose values cannot be added up into an aperture's
    light.

    Aperture photometry adds pixel values: they must count light (ADU,
    DN, count, electron, photon, maggies), or be a flux density (Jy,
    erg/s/cm2/AA, W/m2) or a surface brightness (MJy/sr), each possibly
    per second, per area, per solid angle, per pixel or per beam. Plain
    numbers (None, or a dimensionless unit) pass. Magnitudes and other
    logarithmic units, percentages, temperatures, lengths, electric
    currents ... are refused: their sums mean nothing.

    Parameters
    ----------
    unit : `~astropy.units.UnitBase` or None
        The data unit.
    name : str
        What gave the unit, for the message (``'unit'``, ``"BUNIT='K'"``).

    Returns
    -------
    unit : `~astropy.units.UnitBase` or None
        ``unit``, unchanged.

    Raises
    ------
    ValueError
        If the values of ``unit`` do not add up to light; the message
        names ``name`` and what the unit is.

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.io.units import check_data_unit
    >>> check_data_unit(u.electron / u.s / u.pix, 'unit')
    Unit("electron / (pix s)")
    >>> try:
    ...     check_data_unit(u.mag, 'unit')
    ... except ValueError as exc:
    ...     print(str(exc)[:37])
    unit: data in mag (a logarithmic unit
    """
    problem = data_unit_problem(unit)
    if problem is not None:
        raise ValueError(
            f'{name}: data in {u.Unit(unit).to_string()} ({problem}) cannot '
            "be added up into an aperture's light; aperture photometry needs "
            'counts (adu, DN, electron, photon) or their rates, a flux '
            'density (Jy, erg/s/cm2/AA, nanomaggy) or a surface brightness '
            '(MJy/sr), each possibly per pixel')
    return unit


def is_rate_unit(unit):
    """
    True for count-rate data units (``adu / s``, ``electron / s``, ...).

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.io.units import is_rate_unit
    >>> is_rate_unit(u.electron / u.s), is_rate_unit(u.adu)
    (True, False)
    """
    return count_kind(unit)[1]


def electrons_per_data_unit(unit, *, gain=None, exptime=None,
                            gain_is_explicit=False, meta=None):
    """
    Work out the electrons per data unit (``g_eff``) for data in ``unit``.

    Parameters
    ----------
    unit : `~astropy.units.UnitBase` or None
        The data unit (None: plain numbers, taken as ADU).
    gain : float, `~astropy.units.Quantity` or None, optional
        A number: the detector gain in e-/ADU (argument or header). A
        Quantity: electrons per data unit (``u.electron / unit``), or for
        data in counts or their rates a detector gain in electrons per
        ADU, DN or count. None (default): unknown (1 for data in
        electrons; from ``meta`` for calibrated units).
    exptime : float or None, optional
        The exposure time in seconds, needed for rate units (``adu / s``,
        ``electron / s``) and for a gain derived from the header; None
        (default): unknown.
    gain_is_explicit : bool, optional
        True when ``gain`` was passed by the user (not read from a header):
        a number other than 1 for electron data, or a bare number for data
        in other units, is then an error. Default False.
    meta : dict-like, optional
        The header, for a gain derived from its keywords when none is
        given (`header_effective_gain`); None (default): no header.

    Returns
    -------
    g_eff : float or None
        None when it cannot be worked out (the source term is then absent).
    reason : str
        How it was worked out (for the budget's notes and table meta).

    Raises
    ------
    ValueError
        If an explicit ``gain`` other than 1 is given for data in
        electrons, or a bare number for data not in counts; or ``gain`` or
        ``exptime`` is not a positive finite number.
    `~astropy.units.UnitsError`
        If a Quantity ``gain`` is in electrons per something else than the
        data unit.

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.io.units import electrons_per_data_unit
    >>> electrons_per_data_unit(u.adu, gain=1.9)
    (1.9, 'gain (data in adu)')
    >>> electrons_per_data_unit(u.electron, gain=1.9)
    (1.0, 'data in electron: 1 e-/e- (gain 1.9 e-/adu not applied)')
    >>> electrons_per_data_unit(u.electron / u.s, exptime=150.0)[0]
    150.0
    >>> mjy_sr = u.MJy / u.sr
    >>> electrons_per_data_unit(mjy_sr, gain=31.3 * u.electron / mjy_sr)[0]
    31.3
    """
    kind, rate = count_kind(unit)
    if isinstance(gain, u.Quantity):
        direct = _gain_per_data_unit(gain, unit)
        if direct is not None:
            return direct, f'gain argument in {_per_data_unit(unit)}'
        if kind == 'other':
            raise u.UnitsError(_gain_unit_message(gain.unit, unit))
        if kind == 'electron' and gain.unit.is_equivalent(u.one):
            gain = gain.to_value(u.one)  # 1 e-/e-, the rate's detector gain
        else:
            gain = _detector_gain(gain, unit)
    elif gain is not None:
        gain = positive_scalar(gain, 'gain')
    exptime = positive_scalar(exptime, 'exptime')
    if kind == 'electron':
        if gain_is_explicit and gain is not None and gain != 1.0:
            raise ValueError(f'gain={gain} given for data in {unit}: data in '
                             'electrons have a gain of 1 e-/e-; omit gain or '
                             'give the data in adu')
        value, reason = 1.0, f'data in {unit}: 1 e-/e-'
        if gain is not None and gain != 1.0:
            reason += f' (gain {gain:g} e-/adu not applied)'
    elif kind == 'adu':
        if gain is None:
            return None, 'no gain: source Poisson term absent'
        value, reason = gain, f'gain (data in {unit or "adu"})'
    else:
        return _other_unit_gain(unit, gain, gain_is_explicit, exptime, meta)
    if rate:
        if exptime is None:
            why = (f'data in {unit} (a rate) need the exposure time for the '
                   'source term: source Poisson term absent')
            if gain_is_explicit and gain is not None:
                # the user's gain cannot be used: said, not only noted
                warnings.warn(f'gain={gain:g} not applied: {why} (give '
                              'exptime, or --exptime, or an EXPTIME card)',
                              AstropyUserWarning, stacklevel=5)
            return None, why
        return value * exptime, reason + ' x exptime (rate data)'
    return value, reason


def _name(unit):
    return 'adu' if unit is None else unit.to_string()


def _per_data_unit(unit):
    """``'electron / (MJy / sr)'``: the unit of a gain, in words."""
    name = _name(unit)
    return f'electron / ({name})' if ' ' in name else f'electron / {name}'


def _gain_unit_message(gain_unit, unit):
    named = ('electron / electron (dimensionless)'
             if gain_unit.is_equivalent(u.one) else gain_unit)
    return (f'gain in {named} does not apply to data in {_name(unit)}: '
            f'the gain is electrons per data unit, in '
            f'{_per_data_unit(unit)}')


def _gain_per_data_unit(gain, unit):
    """A Quantity gain in electrons per data unit, as a float; None when it
    is in other units."""
    target = u.electron / (u.adu if unit is None else unit)
    try:
        value = gain.to_value(target)
    except u.UnitConversionError:
        return None
    return positive_scalar(value, 'gain', allow_none=False)


def _detector_gain(gain, unit):
    """A Quantity detector gain (electrons per ADU, DN or count) as a float
    in e-/adu, for data in counts or their rates."""
    for count in _ADU_LIKE:
        try:
            value = gain.to_value(u.electron / count)
        except u.UnitConversionError:
            continue
        return positive_scalar(value, 'gain', allow_none=False)
    raise u.UnitsError(_gain_unit_message(gain.unit, unit))


def _other_unit_gain(unit, gain, gain_is_explicit, exptime, meta):
    """``g_eff`` of data not in counts: never a bare number from the user;
    else derived from the header, or unknown."""
    if gain_is_explicit and gain is not None:
        raise ValueError(
            f'gain={gain:g} is a bare number but the data are in '
            f'{_name(unit)}: the gain must be in electrons per data unit, '
            f'{_per_data_unit(unit)} (a gain in e-/ADU does not apply); '
            f'give it with its unit, e.g. gain={gain:g} * u.electron / '
            f"u.Unit({_name(unit)!r}) (on the command line: --gain "
            f"'{gain:g} {_per_data_unit(unit)}')")
    derived = header_effective_gain(meta, unit, exptime=exptime)
    if derived is not None:
        return derived
    why = (f'data in {_name(unit)}: pass the gain in electrons per data '
           f'unit ({_per_data_unit(unit)}) for a source Poisson term')
    if gain is not None:
        why = (f'data in {_name(unit)}: the header gain {gain:g} e-/adu '
               f'does not apply; pass the gain in {_per_data_unit(unit)} '
               'for a source Poisson term')
    return None, why


def header_effective_gain(meta, unit, *, exptime=None):
    """
    Derive the electrons per data unit from header keywords.

    Spitzer's calibrated images (MJy/sr) carry the detector gain ``GAIN``
    (e-/DN), the exposure time ``EXPTIME`` and ``FLUXCONV`` (MJy/sr per
    DN/s): one MJy/sr is ``GAIN * EXPTIME / FLUXCONV`` electrons. For a
    mosaic of several frames per pixel this is the electrons of one frame
    (the source term is then overestimated, never underestimated).

    Parameters
    ----------
    meta : dict-like or None
        The header (``GAIN``, ``EXPTIME``, ``FLUXCONV``); None: no header.
    unit : `~astropy.units.UnitBase`
        The data unit (any surface brightness convertible to MJy/sr).
    exptime : float, optional
        The exposure time in seconds, which wins over EXPTIME; None
        (default): the header's EXPTIME.

    Returns
    -------
    result : tuple or None
        ``(g_eff, reason)``: the electrons per data unit and how they were
        derived (for the budget's notes); None when the header lacks a
        usable ``FLUXCONV``, ``GAIN`` or exposure time, or ``unit`` is not
        a surface brightness.

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.io.units import header_effective_gain
    >>> hdr = {'GAIN': 3.7, 'EXPTIME': 10.4, 'FLUXCONV': 0.1069}
    >>> g, why = header_effective_gain(hdr, u.MJy / u.sr)
    >>> print(f'{g:.2f}', why)
    359.96 GAIN x EXPTIME / FLUXCONV (3.7 e-/DN x 10.4 s / 0.1069 MJy/sr per DN/s)
    """
    if meta is None or unit is None or 'FLUXCONV' not in meta:
        return None
    try:
        per_mjy_sr = (1.0 * unit).to_value(_MJY_SR)
    except u.UnitConversionError:
        return None
    try:
        gain = positive_scalar(meta.get('GAIN'), 'GAIN', allow_none=False)
        fluxconv = positive_scalar(meta['FLUXCONV'], 'FLUXCONV',
                                   allow_none=False)
        if exptime is None:
            exptime = positive_scalar(meta.get('EXPTIME'), 'EXPTIME',
                                      allow_none=False)
    except (TypeError, ValueError):
        return None
    g_eff = gain * exptime / fluxconv * per_mjy_sr
    return g_eff, (f'GAIN x EXPTIME / FLUXCONV ({gain:g} e-/DN x '
                   f'{exptime:g} s / {fluxconv:g} MJy/sr per DN/s)')


_OPERATORS = {ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow}


def _unit_expression(node):
    """A unit from a parsed expression of unit names, ``*``, ``/``,
    ``**`` (numbers only as powers) and parentheses."""
    if isinstance(node, ast.Expression):
        return _unit_expression(node.body)
    if isinstance(node, ast.Name):
        return u.Unit(node.id, parse_strict='raise')
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left = _unit_expression(node.left)
        if isinstance(node.op, ast.Pow):
            if not (isinstance(node.right, ast.Constant)
                    and isinstance(node.right.value, (int, float))):
                raise ValueError('a power must be a number')
            return left ** node.right.value
        return _OPERATORS[type(node.op)](left, _unit_expression(node.right))
    raise ValueError('not a unit expression')


def parse_unit(text):
    """
    Read a unit from text, as astropy does or with nested parentheses.

    Astropy's parser refuses ``'electron / (MJy / sr)'``; unit names
    joined by ``*``, ``/``, ``**`` (or ``^``) and parentheses are read here.

    Parameters
    ----------
    text : str
        The unit.

    Returns
    -------
    unit : `~astropy.units.UnitBase`
        The unit.

    Raises
    ------
    ValueError
        If ``text`` is not a unit.

    Examples
    --------
    >>> from ccdphot_ext.io.units import parse_unit
    >>> parse_unit('electron / (MJy / sr)')
    Unit("electron sr / MJy")
    >>> parse_unit('uJy / arcsec2')
    Unit("uJy / arcsec2")
    """
    text = str(text).strip()
    if not text:
        raise ValueError('an empty text is not a unit (e.g. adu, MJy / sr, '
                         'electron / (MJy / sr))')
    try:
        return u.Unit(text, parse_strict='raise')
    except ValueError:
        pass
    try:
        return _unit_expression(ast.parse(text.replace('^', '**'),
                                          mode='eval'))
    except (ValueError, SyntaxError, TypeError):
        raise ValueError(f'{text!r} is not a unit astropy knows (e.g. adu, '
                         'MJy / sr, electron / (MJy / sr))') from None


def checked_unit(unit, name):
    """
    ``unit`` as an astropy unit: a `~astropy.units.UnitBase`, or a text
    `parse_unit` reads; a ValueError naming ``name`` for a text that is not
    a unit, a TypeError for anything else (astropy takes a number as a
    scaled dimensionless unit: ``u.Unit(3)`` would multiply the data by 3).

    >>> from ccdphot_ext.io.units import checked_unit
    >>> checked_unit('adu', 'unit')
    Unit("adu")
    >>> checked_unit(3, 'unit')
    Traceback (most recent call last):
    ...
    TypeError: unit must be an astropy unit or a unit string, got int 3
    """
    if isinstance(unit, u.UnitBase):
        return unit
    if isinstance(unit, str):
        try:
            return parse_unit(unit)
        except ValueError as exc:
            raise ValueError(f'{name}: {exc}') from None
    raise TypeError(f'{name} must be an astropy unit or a unit string, got '
                    f'{type(unit).__name__} {unit!r}')


_NUMBER = re.compile(r'^\s*([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*(.*)$')


def parse_quantity(text):
    """
    Read a number or a Quantity from text.

    Parameters
    ----------
    text : str
        A number (``'3.7'``), or a number and a unit as `parse_unit` reads
        it (``'31.3 electron / (MJy / sr)'``).

    Returns
    -------
    value : float or `~astropy.units.Quantity`
        The number, or the Quantity when a unit follows it.

    Raises
    ------
    ValueError
        If ``text`` does not start with a number or its unit is not one.

    Examples
    --------
    >>> from ccdphot_ext.io.units import parse_quantity
    >>> parse_quantity('31.3 electron / (MJy / sr)')
    <Quantity 31.3 electron sr / MJy>
    >>> parse_quantity('2.5')
    2.5
    """
    if not isinstance(text, str):
        raise TypeError(f'text must be a str, got {type(text).__name__}')
    match = _NUMBER.match(text)
    if match is None:
        raise ValueError(f'{text!r} does not start with a number')
    value, rest = float(match.group(1)), match.group(4).strip()
    return value if not rest else value * parse_unit(rest)
