# Licensed under a 3-clause BSD style license - see LICENSE
"""
The saturation level of a header (SATURATE, SATLEVEL) in the data unit.

A header's SATURATE is the level at which the detector saturates, in the
raw unit of its readout (ADU, DN, counts), as camera software and raw-frame
pipelines write it. The data may no longer be in that unit: divided by the
exposure time (``adu / s``), gain-corrected (electrons), both, or
calibrated (MJy/sr); `~astropy.nddata.CCDData` arithmetic and ccdproc keep
the header as it was. The level is therefore read as a raw level and
converted to the data unit:

=====================  ==================================================
data unit              the level used for flag 4
=====================  ==================================================
adu, DN, count         SATURATE as it is
electron               SATURATE x the detector gain (e-/ADU)
adu / s                SATURATE / EXPTIME
electron / s           SATURATE x gain / EXPTIME
anything else          none (it cannot be known): a warning
=====================  ==================================================

A converted level is lowered by one part in a million, so that a pixel
clipped at the level and converted in single precision is still found.
A unit written at the start of the card's comment (``[adu]``, ``[e-]``,
the FITS convention) says which unit the level is in; without one the
raw unit is assumed, and every conversion that rests on that assumption
warns (`~astropy.utils.exceptions.AstropyUserWarning`), as does a level
that cannot be converted (no gain, no exposure time, a calibrated unit):
then no row is flagged from the header, and ``saturation=`` (in the data
unit) gives the level. A level given as an argument is in the data unit
and is used as it is.
"""

import re
import warnings
from dataclasses import dataclass

import astropy.units as u
from astropy.utils.exceptions import AstropyUserWarning

from .units import count_kind

__all__ = []  # internal module: the rules are documented with the flags

#: a unit in square brackets at the start of a card's comment
_BRACKETS = re.compile(r'^\s*\[([^\]]+)\]')

@dataclass(frozen=True)
class SaturationLevel:
    """
    A header's saturation level in the data unit.

    Parameters
    ----------
    value : float or None
        The level in the data unit; None when it cannot be worked out.
    note : str
        How it was worked out (``sources['saturation']`` of a resolved
        `~ccdphot_ext.DetectorParameters`).
    warning : str or None
        What to warn of: the conversion rests on the assumed raw unit, or
        the level could not be converted; None when there is nothing to
        say.
    """

    value: float | None
    note: str
    warning: str | None = None


def _comment_kind(comment):
    """The count kind of the unit in brackets at the start of a card's
    comment (``'adu'`` or ``'electron'``, with its rate flag), or None."""
    match = _BRACKETS.match(comment or '')
    if match is None:
        return None
    text = match.group(1).strip()
    try:
        unit = u.Unit({'e-': 'electron', 'e': 'electron', 'adu': 'adu',
                       'counts': 'count', 'dn': 'DN'}.get(text.lower(), text),
                      parse_strict='silent')
    except (ValueError, TypeError):
        return None
    kind = count_kind(unit)
    return None if kind[0] == 'other' else kind


def header_saturation(level, keyword, unit, *, gain=None, exptime=None,
                      comment=None):
    """
    A header's saturation level converted to the data unit.

    Parameters
    ----------
    level : float
        The value of the keyword (positive).
    keyword : str
        Where it came from (``'SATURATE'``, ``'SATURATE (primary HDU)'``),
        for the notes.
    unit : `~astropy.units.UnitBase` or None
        The data unit; None (plain numbers): the level is used as it is.
    gain : float, optional
        The detector gain in e-/ADU, for data in electrons.
    exptime : float, optional
        The exposure time in seconds, for rates.
    comment : str, optional
        The card's comment: a unit in square brackets at its start says
        which unit the level is in.

    Returns
    -------
    level : `SaturationLevel`
        The level in the data unit (None when it cannot be had), how, and
        what to warn of.

    Examples
    --------
    >>> import astropy.units as u
    >>> from ccdphot_ext.io.saturation import header_saturation
    >>> header_saturation(60000.0, 'SATURATE', u.adu).value
    60000.0
    >>> s = header_saturation(60000.0, 'SATURATE', u.adu / u.s,
    ...                       exptime=100.0)
    >>> round(s.value, 3), s.note
    (599.999, 'SATURATE 60000 adu (assumed) / EXPTIME 100 s = 600 adu / s')
    >>> header_saturation(6e4, 'SATURATE', u.electron, gain=2.0,
    ...                   comment='[adu] full well').warning is None
    True
    """
    if unit is None:
        return SaturationLevel(level, keyword)
    kind, rate = count_kind(unit)
    name = unit.to_string()
    stated = _comment_kind(comment)
    raw = 'adu' if stated is None else stated[0]
    said = (f'{keyword} {level:g} {raw}'
            + (' (assumed)' if stated is None else ' (from its comment)'))
    if stated is not None and stated[1]:  # a level already per second
        if rate and kind == raw:
            return SaturationLevel(float(level), f'{said}: per second')
        return _unusable(level, keyword, name, 'its comment gives a rate')
    if kind == 'other':
        return _unusable(level, keyword, name, f'data in {name} are not '
                         'counts or electrons: the level in them cannot be '
                         'known')
    value, steps = float(level), []
    if kind != raw:
        if gain is None:
            return _unusable(level, keyword, name, 'no detector gain to '
                             f'turn {raw} into {kind}')
        value = value * gain if kind == 'electron' else value / gain
        steps.append(f'x GAIN {gain:g} e-/adu' if kind == 'electron'
                     else f'/ GAIN {gain:g} e-/adu')
    if rate:
        if exptime is None:
            return _unusable(level, keyword, name, 'no EXPTIME to turn it '
                             'into a rate')
        value /= exptime
        steps.append(f'/ EXPTIME {exptime:g} s')
    if not steps:  # the data are in the level's unit: as written
        return SaturationLevel(value, keyword if stated is None else said)
    note = f'{said} {" ".join(steps)} = {value:g} {name}'
    # a saturated pixel converted in float32 may round a part in 1e7 below
    # the level converted in float64: the level is lowered by 1e-6
    value *= 1.0 - 1e-6
    warning = None
    if stated is None:
        warning = (f'{note}: the header does not say the unit of '
                   f'{keyword.split()[0]} (a raw level in adu is assumed); '
                   f'if it is already in {name}, pass saturation= (or '
                   '--saturation) in the data unit')
    return SaturationLevel(value, note, warning)


def _unusable(level, keyword, name, why):
    note = f'{keyword} {level:g} not used: {why}'
    return SaturationLevel(None, note, (
        f'{note}; no row is flagged saturated from the header (pass '
        f'saturation= or --saturation in {name})'))


def warn_saturation(detector, meta, unit, *, stacklevel=3):
    """
    Warn when the resolved ``detector``'s saturation level came from the
    header by an assumed conversion, or could not be had (the warning of
    `header_saturation`); nothing otherwise.
    """
    source = detector.sources['saturation']
    keyword = source.split(' ')[0]
    if source in ('argument', 'missing') or source.startswith('invalid') \
            or keyword not in (meta or {}):
        return
    comments = getattr(meta, 'comments', None)
    try:
        comment = None if comments is None else str(comments[keyword])
    except (KeyError, IndexError):
        comment = None
    try:
        raw = float(meta[keyword])
    except (TypeError, ValueError):
        return
    level = header_saturation(raw, keyword, unit,
                              gain=detector.detector_gain,
                              exptime=detector.exptime, comment=comment)
    if level.warning is not None:
        warnings.warn(level.warning, AstropyUserWarning,
                      stacklevel=stacklevel)
