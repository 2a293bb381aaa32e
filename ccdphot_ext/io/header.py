# Licensed under a 3-clause BSD style license - see LICENSE
"""
Detector parameters (`DetectorParameters`): explicit values, completed
from a FITS header with a documented precedence.

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
saturation      SATURATE, SATLEVEL                     raw (adu)
dark            (none: an argument only)               data unit
unit            BUNIT                                  --
==============  =====================================  ============

Given the data unit, the gain used for the source term is the number of
electrons per *data unit* (see `ccdphot_ext.io.units`): the gain itself for
ADU, 1 for electrons, times the exposure time for rates.
"""

import functools
import re
import warnings

import astropy.units as u
import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..utils.inputs import positive_scalar
from ..utils.numbers import check_options
from .saturation import header_saturation
from .units import (
    GAIN_UNIT,
    check_data_unit,
    data_unit_problem,
    electrons_per_data_unit,
    parse_unit,
)

__all__ = ['HEADER_KEYWORDS', 'DetectorParameters', 'unit_from_header']

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
          'exptime': u.s, 'saturation': None, 'dark': None}


class DetectorParameters:
    """
    Gain, read noise, dark, saturation and exposure time of a detector.

    The values given here are checked when the object is built; those left
    out are read from a frame's header by `resolve`, which also says where
    each came from. `~ccdphot_ext.measure`, `~ccdphot_ext.photometer` and
    `~ccdphot_ext.photometer_frames` take one as ``detector=`` and resolve
    it against each frame's header.

    Parameters
    ----------
    gain : float or `~astropy.units.Quantity`, optional
        The detector gain in e-/ADU (positive); None (default): the
        header's GAIN, EGAIN or CCDGAIN. For data in other units
        (calibrated products) a Quantity in electrons per data unit, e.g.
        ``31.3 * u.electron / (u.MJy / u.sr)`` (see
        `~ccdphot_ext.electrons_per_data_unit`).
        Missing gain is never silently 1: the source Poisson term is then
        absent and the budget says so.
    read_noise : float or `~astropy.units.Quantity`, optional
        The read noise in electrons per pixel (0 allowed); None (default):
        the header's RDNOISE, READNOIS or RON.
    dark : float, optional
        The dark signal accumulated per pixel during the exposure, in the
        data unit (already subtracted from the data; 0 allowed); None
        (default): unknown (no header keyword is read). With
        ``read_noise`` it is used only in the budget's decomposition of
        the ``sky`` term.
    saturation : float, optional
        The saturation level in the data unit (positive; pixels at or
        above it set flag 4); None (default): the header's SATURATE or
        SATLEVEL, a raw level (adu, unless a ``[unit]`` starting its
        comment says electrons) that `resolve` given the data unit turns
        into that unit with the gain and exposure time (:ref:`saturation`;
        ``sources['saturation']`` says how).
    exptime : float or `~astropy.units.Quantity`, optional
        The exposure time in seconds (positive); None (default): the
        header's EXPTIME, EXPOSURE or ITIME.

    Attributes
    ----------
    sources : dict
        Where each value came from: ``'argument'``, the header keyword
        (``'GAIN (primary HDU)'`` when `~ccdphot_ext.read_frame` inherited it
        from the primary header of a multi-extension file), or
        ``'missing'``.
    detector_gain : float or None
        The gain in e-/ADU the value of `gain` was worked out from (they
        differ when `resolve` was given a data unit other than ADU).
    gain_note : str or None
        How `resolve` worked out the gain for the data unit.

    Raises
    ------
    ValueError, TypeError
        If a value is zero (``read_noise`` and ``dark`` may be),
        negative, not finite or not a number.
    `~astropy.units.UnitsError`
        If a `~astropy.units.Quantity` has the wrong unit.

    Examples
    --------
    >>> from ccdphot_ext import DetectorParameters
    >>> p = DetectorParameters().resolve({'EGAIN': 2.23, 'EXPTIME': 30.0})
    >>> p.gain, p.sources['gain']
    (2.23, 'EGAIN')
    >>> p.read_noise is None, p.sources['read_noise']
    (True, 'missing')
    >>> DetectorParameters(gain=1.0).resolve({'EGAIN': 2.23}).gain
    1.0

    Data already in electrons have a gain of 1 e-/e-, whatever the header:

    >>> import astropy.units as u
    >>> p = DetectorParameters().resolve({'GAIN': 1.9}, unit=u.electron)
    >>> p.gain, p.detector_gain
    (1.0, 1.9)
    """

    #: The parameters, in order.
    NAMES = ('gain', 'read_noise', 'dark', 'saturation', 'exptime')

    __slots__ = ('_given', '_values', '_sources', '_detector_gain',
                 '_gain_note')

    def __init__(self, *, gain=None, read_noise=None, dark=None,
                 saturation=None, exptime=None):
        given = {'gain': gain, 'read_noise': read_noise, 'dark': dark,
                 'saturation': saturation, 'exptime': exptime}
        given = {name: None if value is None else _argument_value(value, name)
                 for name, value in given.items()}
        sources = {name: 'missing' if value is None else 'argument'
                   for name, value in given.items()}
        self._set(given, given, sources, given['gain'], None)

    def _set(self, given, values, sources, detector_gain, gain_note):
        for slot, value in (('_given', given), ('_values', values),
                            ('_sources', sources),
                            ('_detector_gain', detector_gain),
                            ('_gain_note', gain_note)):
            object.__setattr__(self, slot, value)

    def __setattr__(self, name, value):
        raise AttributeError(f'DetectorParameters is immutable: make a new '
                             f'one instead of setting {name}')

    def __reduce__(self):  # immutable, so pickled through its state
        return (_rebuild, (self._given, self._values, self._sources,
                           self._detector_gain, self._gain_note))

    @property
    def gain(self):
        """
        The gain: e-/ADU, or after `resolve` with a unit electrons per data
        unit (None when unknown).
        """
        return self._values['gain']

    @property
    def read_noise(self):
        """Read noise in e- (None when unknown)."""
        return self._values['read_noise']

    @property
    def dark(self):
        """Dark signal per pixel in the data unit (None when not given)."""
        return self._values['dark']

    @property
    def saturation(self):
        """Saturation level in the data unit (None when unknown)."""
        return self._values['saturation']

    @property
    def exptime(self):
        """Exposure time in seconds (None when unknown)."""
        return self._values['exptime']

    @property
    def sources(self):
        """Where each value came from (a new dict each time)."""
        return dict(self._sources)

    @property
    def detector_gain(self):
        """The gain in e-/ADU that `gain` was worked out from."""
        return self._detector_gain

    @property
    def gain_note(self):
        """How the gain was worked out for the data unit (or None)."""
        return self._gain_note

    def resolve(self, meta=None, *, unit=None):
        """
        Complete these values from a header, in a new `DetectorParameters`.

        Every value given to the constructor wins; the others are the
        first valid header keyword (a keyword present with an invalid value
        is skipped with an `~astropy.utils.exceptions.AstropyUserWarning`),
        else None. A resolved copy resolves again from its own arguments,
        so resolving twice never converts the gain twice.

        Parameters
        ----------
        meta : dict-like or None, optional
            A FITS header or any mapping (e.g. ``CCDData.meta``); None
            (default): no header, so only the constructor's values.
        unit : `~astropy.units.UnitBase`, optional
            The data unit. When given, `gain` is in electrons per data unit
            (1 for electrons, ``gain * exptime`` for ``adu / s``; see
            `~ccdphot_ext.electrons_per_data_unit`), `detector_gain` keeps
            the e-/ADU value and ``sources['gain']`` says how. None
            (default): the gain stays in e-/ADU.

        Returns
        -------
        resolved : `DetectorParameters`
            Every value from the constructor, else the header, else None,
            with `sources` saying where each came from.

        Raises
        ------
        ValueError
            If an explicit gain other than 1 is given for data in
            electrons.

        Examples
        --------
        >>> from ccdphot_ext import DetectorParameters
        >>> p = DetectorParameters(read_noise=5.0).resolve({'GAIN': 1.9})
        >>> p.gain, p.sources['gain'], p.sources['read_noise']
        (1.9, 'GAIN', 'argument')
        """
        meta = {} if meta is None else meta
        values, sources = dict(self._given), {}
        for name, value in self._given.items():
            if value is not None:
                sources[name] = 'argument'
            elif name in HEADER_KEYWORDS:
                values[name], sources[name] = _header_value(
                    meta, HEADER_KEYWORDS[name], name)
            else:
                sources[name] = 'missing'
        detector_gain, note = values['gain'], None
        if unit is not None or isinstance(detector_gain, u.Quantity):
            g_eff, note = electrons_per_data_unit(
                unit, gain=detector_gain, exptime=values['exptime'],
                gain_is_explicit=sources['gain'] == 'argument', meta=meta)
            if isinstance(detector_gain, u.Quantity):
                sources['gain'] = f'argument: {note}'
                detector_gain = _in_gain_unit(detector_gain)
                if isinstance(detector_gain, u.Quantity):
                    detector_gain = None  # not a detector gain
            elif g_eff != detector_gain:
                sources['gain'] = f'{sources["gain"]}: {note}'
            values['gain'] = g_eff
        if self._given['saturation'] is None and \
                values['saturation'] is not None:  # a raw level: converted
            level = header_saturation(
                values['saturation'], sources['saturation'], unit,
                gain=detector_gain, exptime=values['exptime'],
                comment=_card_comment(meta, sources['saturation']))
            values['saturation'], sources['saturation'] = (level.value,
                                                           level.note)
        resolved = object.__new__(DetectorParameters)
        resolved._set(self._given, values, sources, detector_gain, note)
        return resolved

    def __eq__(self, other):
        if not isinstance(other, DetectorParameters):
            return NotImplemented
        return ((self._given, self._values, self._sources,
                 self._detector_gain, self._gain_note)
                == (other._given, other._values, other._sources,
                    other._detector_gain, other._gain_note))

    def __hash__(self):  # a Quantity gain is not hashable: by its text
        return hash(tuple((name, repr(value))
                          for name, value in self._values.items()))

    def __repr__(self):
        if self._values == self._given and all(
                s in ('argument', 'missing') for s in self._sources.values()):
            items = [f'{name}={value!r}' for name, value in
                     self._given.items() if value is not None]
        else:  # resolved: every value and where it came from
            items = [f'{name}={value!r} [{self._sources[name]}]'
                     for name, value in self._values.items()]
        return f'DetectorParameters({", ".join(items)})'


def detector_with_gain(detector, gain):
    """
    The `DetectorParameters` of a call that takes ``gain=`` beside
    ``detector=`` (`~ccdphot_ext.measure`, `~ccdphot_ext.photometer`,
    `~ccdphot_ext.photometer_frames`), not yet resolved.

    ``detector`` None gives ``DetectorParameters(gain=gain)``; a ``gain``
    equal to the detector's, or None, gives ``detector`` itself.

    Raises
    ------
    TypeError
        If ``detector`` is not a `DetectorParameters` or None.
    ValueError
        If ``gain`` and ``detector.gain`` are both given and differ.
    """
    detector = check_options(detector, 'detector', DetectorParameters)
    if gain is None:
        return detector
    gain = _argument_value(gain, 'gain')
    given = detector._given['gain']
    if given is None:
        return DetectorParameters(**{**detector._given, 'gain': gain})
    if _in_gain_unit(given) != _in_gain_unit(gain):
        raise ValueError(f'gain={gain} and detector=DetectorParameters('
                         f'gain={given}) disagree; give the gain once')
    return detector


def _in_gain_unit(gain):
    """A gain as a number in e-/ADU when it is one (a Quantity in
    electrons per another unit stays as it is)."""
    if isinstance(gain, u.Quantity):
        try:
            return gain.to_value(GAIN_UNIT)
        except u.UnitConversionError:
            return gain
    return gain


def _rebuild(given, values, sources, detector_gain, gain_note):
    """A `DetectorParameters` from its pickled state."""
    params = object.__new__(DetectorParameters)
    params._set(given, values, sources, detector_gain, gain_note)
    return params


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
            _warn_repeated(meta, key)
            return value, _keyword_origin(meta, key)
    if rejected:
        return None, f"invalid {', '.join(rejected)} ignored"
    return None, 'missing'


def _warn_repeated(meta, key):
    """Warn when a FITS header holds ``key`` more than once with
    different values (astropy gives the first): which one the writer
    meant cannot be told."""
    cards = getattr(meta, 'cards', None)
    if cards is None:
        return
    values = [card.value for card in cards if card.keyword == key]
    if len({repr(v) for v in values}) > 1:
        warnings.warn(f'header keyword {key} appears {len(values)} times '
                      f'with different values ({", ".join(map(repr, values))}'
                      f'); the first, {values[0]!r}, is used',
                      AstropyUserWarning, stacklevel=3)


def _card_comment(meta, origin):
    """The comment of the card a value came from (``origin``: ``'KEY'``
    or ``'KEY (primary HDU)'``), None for a mapping without comments."""
    comments = getattr(meta, 'comments', None)
    try:
        return None if comments is None else str(comments[origin.split()[0]])
    except (KeyError, TypeError, IndexError):
        return None


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
        # the data unit by electrons_per_data_unit. Data in electrons
        # cancel them: 1 e-/e- is dimensionless, e- per (e-/s) seconds
        base = value.unit.decompose()
        power = dict(zip(base.bases, base.powers, strict=True)).get(
            u.electron, 0)
        if power != 1 and not (value.unit.is_equivalent(u.one)
                               or value.unit.is_equivalent(u.s)):
            raise u.UnitsError(f'gain must be in electrons per data unit, '
                               f'got {value.unit}')
        positive_scalar(value.value, name, allow_none=False)
        return value
    if isinstance(value, u.Quantity):
        if unit is None:
            raise TypeError(f'{name} must be a plain number in the data '
                            f'unit (pass {name} in the data unit)')
        try:
            value = value.to_value(unit)
        except u.UnitConversionError as exc:
            raise u.UnitsError(f'{name} must be in {unit}, got '
                               f'{value.unit}') from exc
    return positive_scalar(value, name, allow_none=False,
                           allow_zero=name in ('read_noise', 'dark'))


#: Common spellings of count words (any case) that astropy does not parse
#: as they are, in BUNIT and ``--unit``
_BUNIT_ALIASES = {
    'adu': 'adu', 'adus': 'adu', 'dn': 'DN', 'count': 'count',
    'counts': 'count', 'cts': 'count', 'e': 'electron', 'e-': 'electron',
    'electron': 'electron', 'electrons': 'electron', 'photon': 'ph',
    'photons': 'ph', 's': 's', 'sec': 's', 'secs': 's', 'second': 's',
    'seconds': 's', 'pixel': 'pix', 'pixels': 'pix', 'ergs': 'erg',
    'angstrom': 'Angstrom', 'angstroms': 'Angstrom'}

#: Units astropy reads in a BUNIT where header writers mean another: an
#: S after a count or flux unit is a second (``DN/S``), not a siemens; an
#: A in a flux density is an Angstrom (HST's ``ERGS/CM**2/S/A``), not an
#: ampere. Used only where the reading turns a unit whose values cannot be
#: summed (`~ccdphot_ext.io.units.check_data_unit`) into one whose can.
_HEADER_CONVENTIONS = {u.S: u.s, u.A: u.AA}


@functools.cache
def _names_by_lower_case():
    """Every unit name astropy knows, by its lower-case spelling."""
    names = {}
    for name in u.get_current_unit_registry().registry:
        names.setdefault(name.lower(), []).append(name)
    return names


#: A unit name and its power as headers write it: ``CM**2``, ``s-1``,
#: ``s^-1``, ``cm2``
_POWER = re.compile(r'^([A-Za-z]+)(?:\*\*|\^)?\(?([-+]?\d+)?\)?$')

#: What separates the factors of a unit (``counts s-1``, ``DN*s**-1``):
#: blanks, or a ``*`` that is not a power's ``**``
_TIMES = re.compile(r'\s+|(?<!\*)\*(?!\*)')


def _any_case(name):
    """A unit name read whatever its case (``MJY``, ``JY``): the one unit
    whose name matches it but for case, else the one of those whose first
    letter has the case written (a capital M is mega, a small m milli);
    None when none or several."""
    names = _names_by_lower_case().get(name.lower(), [])
    if len(names) > 1:
        names = [n for n in names if n[0] == name[0]]
    return names[0] if len(names) == 1 else None


def _strict(text):
    """astropy's reading of ``text``, or None."""
    try:
        return u.Unit(text, parse_strict='raise')
    except ValueError:
        return None


def _factor(text):
    """``(unit, by_case)``: one factor of a written unit (``COUNTS``,
    ``s-1``, ``CM**2``, ``1E-17``) read with the count words of
    `_BUNIT_ALIASES` (any case), as astropy reads it or lower-cased, else
    whatever its case (``by_case`` True); ``(None, False)`` when not."""
    try:
        return u.Unit(float(text)), False  # a scale
    except ValueError:
        pass
    alias = _BUNIT_ALIASES.get(text.lower())
    if alias is not None:
        return u.Unit(alias), False
    for reading in (text, text.lower()):
        unit = _strict(reading)
        if unit is not None:
            return unit, False
    match = _POWER.match(text)
    if match is None:
        return None, False
    name, power = match.group(1), int(match.group(2) or 1)
    unit, by_case = _strict(_BUNIT_ALIASES.get(name.lower(), name)), False
    if unit is None:
        unit = _strict(name.lower())
    if unit is None:
        by_case = (read := _any_case(name)) is not None
        unit = None if read is None else u.Unit(read)
    return (None, False) if unit is None else (unit ** power, by_case)


def _lenient(raw):
    """``(unit, by_case)``: ``raw`` read part by part: its ``/``-separated
    parts, each a product of `_factor` (``counts s-1``, ``ERGS/CM**2/S/A``,
    ``MJY/SR``); ``(None, False)`` when a factor is no unit."""
    unit, by_case = u.one, False
    for k, part in enumerate(raw.split('/')):
        factors = [f for f in _TIMES.split(part.strip()) if f]
        if not factors:
            return None, False
        for text in factors:
            factor, case = _factor(text)
            if factor is None:
                return None, False
            by_case = by_case or case
            unit = unit / factor if k else unit * factor
    return unit, by_case


def written_unit(text, *, name):
    """
    Read a data unit as astronomers write it in a header's BUNIT.

    As astropy reads it (`~ccdphot_ext.io.units.parse_unit`), else part by
    part: count words in any case and plural (``ADU``, ``COUNTS``,
    ``ELECTRONS``, ``e-``, ``photons``, ``sec``), upper-case unit names
    lowered (``CM**2``), factors joined by blanks with their powers
    (``counts s-1``, ``electrons s^-1``), and other unit names read
    whatever their case (``MJY/SR``: a first capital M is mega, a small m
    milli) with a warning naming the reading. Then the header conventions:
    an ``S`` that astropy would take for a siemens after a count or flux
    unit is a second (``DN/S``), and an ``A`` that it would take for an
    ampere in a flux density is an Angstrom (``erg/s/cm2/A``), with a
    warning naming the reading. A rate stays a rate (``counts/s`` is
    ``ct / s``).

    Parameters
    ----------
    text : str
        The unit as written.
    name : str
        Where it was written, for the messages (``"BUNIT='DN/S'"``,
        ``"--unit 'MJY/SR'"``).

    Returns
    -------
    unit : `~astropy.units.UnitBase`
        The unit. One whose values cannot be summed into light (a
        magnitude, a temperature, ...) is returned as read:
        `~ccdphot_ext.io.units.check_data_unit` refuses it.

    Raises
    ------
    ValueError
        If ``text`` is blank or cannot be read as a unit; the message
        names ``name``.

    Warns
    -----
    AstropyUserWarning
        When a unit name is read whatever its case, and when an S or A is
        read as a second or an Angstrom.

    Examples
    --------
    >>> from ccdphot_ext.io.header import written_unit
    >>> written_unit('counts s-1', name='BUNIT'), written_unit(
    ...     'ELECTRONS/S', name='--unit')
    (Unit("ct / s"), Unit("electron / s"))
    >>> written_unit('furlongs', name="BUNIT='furlongs'")
    Traceback (most recent call last):
    ...
    ValueError: BUNIT='furlongs' is not a unit ...
    """
    raw = str(text).strip()
    if not raw:
        raise ValueError(f'{name}: an empty text is not a unit (e.g. adu, '
                         'electron / s, MJy / sr)')
    try:
        with warnings.catch_warnings():  # "multiple slashes": as written
            warnings.simplefilter('ignore', u.UnitsWarning)
            unit = parse_unit(raw)
    except ValueError:
        unit, by_case = _lenient(raw)
        if unit is None or not np.isfinite(unit.scale):
            raise ValueError(
                f'{name} is not a unit (neither astropy nor the header '
                'spellings read it: adu, DN, electron, count, photon and '
                'their rates such as e-/s or counts s-1, Jy, MJy/sr, '
                'erg/s/cm2/A ...)') from None
        if by_case:
            warnings.warn(
                f'{name} read as {unit.to_string()!r}: astropy reads unit '
                'names in their own case only; each part matched but for '
                'case is the unit of that name (a first capital M is mega, '
                'a small m milli); write it in that spelling to silence '
                'this', AstropyUserWarning, stacklevel=3)
    return _as_astronomers_write(unit, name)


def read_data_unit(unit, name, *, as_written=None):
    """
    Read a data unit given in place of BUNIT, as BUNIT is read: the one
    reader of `~ccdphot_ext.read_frame`'s and
    `~ccdphot_ext.FrameReading`'s ``unit=`` and of ``ccdphot --unit``.

    An astropy unit is taken as it is; a text is read by `written_unit`
    (whatever its case, the header spellings, with the same warnings);
    then a unit whose values cannot be summed into light is refused
    (`~ccdphot_ext.io.units.check_data_unit`).

    Parameters
    ----------
    unit : `~astropy.units.UnitBase` or str
        The unit.
    name : str
        The parameter, for the messages (``'unit'``).
    as_written : str, optional
        How a text is named in the messages and warnings; None (default):
        ``name=text`` (``"unit='ELECTRONS/S'"``).

    Returns
    -------
    unit : `~astropy.units.UnitBase`
        The unit.

    Raises
    ------
    TypeError
        If ``unit`` is neither a unit nor a text (astropy would read a
        number as a scaled dimensionless unit).
    ValueError
        If the text is blank or not a unit, or the unit's values cannot be
        summed into light; the message names the parameter.

    Warns
    -----
    AstropyUserWarning
        As `written_unit`: a unit name read whatever its case, an S or A
        read as a second or an Angstrom.

    Examples
    --------
    >>> from ccdphot_ext.io.header import read_data_unit
    >>> read_data_unit('ELECTRONS/S', 'unit'), read_data_unit('counts s-1',
    ...                                                        'unit')
    (Unit("electron / s"), Unit("ct / s"))
    >>> read_data_unit('K', 'unit')
    Traceback (most recent call last):
    ...
    ValueError: unit: data in K (a temperature) cannot be added up ...
    """
    if isinstance(unit, str):
        unit = written_unit(unit, name=(f'{name}={unit!r}' if as_written
                                        is None else as_written))
    elif not isinstance(unit, u.UnitBase):
        raise TypeError(f'{name} must be an astropy unit or a unit string, '
                        f'got {type(unit).__name__} {unit!r}')
    return check_data_unit(unit, name)


def _as_astronomers_write(unit, name):
    """
    ``unit`` (astropy's reading of the unit written in ``name``) read by
    the header conventions of `_HEADER_CONVENTIONS` when that makes a unit
    whose values can be summed of one whose cannot, with a warning saying
    the reading chosen; any other unit is kept as it is (`read_frame`
    refuses one whose values cannot be summed).
    """
    from .fluxdensity import unit_family  # fluxdensity imports units

    if data_unit_problem(unit) is None:
        return unit
    read = u.CompositeUnit(unit.scale, [
        _HEADER_CONVENTIONS.get(base, base) for base in unit.bases],
        unit.powers)
    if read == unit or data_unit_problem(read) is not None:
        return unit
    warnings.warn(
        f'{name} read as {read.to_string()!r} ({unit_family(read)})'
        ' by the header convention that S after a count or flux unit is '
        'a second and A in a flux density an Angstrom (astropy alone '
        f'reads {unit.to_string()!r}, with siemens or ampere); write it '
        'with s and Angstrom to silence this', AstropyUserWarning,
        stacklevel=3)
    return read


def unit_from_header(meta):
    """
    Return the unit named by BUNIT, or None when there is none.

    BUNIT is read as astronomers write it (as ``ccdphot --unit`` is): count
    words in any case and plural (``ADU``, ``e-/s``, ``ELECTRONS/S``,
    ``counts s-1``, ``photons``), unit names written in another case (``MJY/SR``,
    ``JY/BEAM``: a first capital M is mega, a small m milli), an ``S``
    after a count or flux unit as a second (``DN/S``) and an ``A`` in a
    flux density as an Angstrom (``ERGS/CM**2/S/A``), the last three with a
    warning naming the reading chosen. A BUNIT that cannot be read is an
    error, not a missing unit: the values are in a unit, and taking them
    for ADU would give the source term and every column a unit they are
    not in. A unit whose values cannot be summed into light (a magnitude,
    a temperature, an electric current, ...:
    `~ccdphot_ext.io.units.check_data_unit`) is returned as read;
    `~ccdphot_ext.read_frame` refuses it.

    Parameters
    ----------
    meta : dict-like or None
        A FITS header or any mapping (e.g. ``CCDData.meta``); None has no
        unit.

    Returns
    -------
    unit : `~astropy.units.UnitBase` or None
        The unit, or None when BUNIT is missing or blank.

    Raises
    ------
    ValueError
        If BUNIT cannot be read as a unit (the message names it).

    Warns
    -----
    AstropyUserWarning
        When a unit name is read whatever its case, and when an S or A is
        read as a second or an Angstrom.

    Examples
    --------
    >>> import warnings
    >>> from ccdphot_ext.io.header import unit_from_header
    >>> unit_from_header({'BUNIT': 'ELECTRONS/S'})
    Unit("electron / s")
    >>> unit_from_header({'BUNIT': '        '}) is None
    True
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter('always')
    ...     unit = unit_from_header({'BUNIT': 'ERGS/CM**2/S/A'})
    >>> unit, 'Angstrom' in str(caught[0].message)
    (Unit("erg / (Angstrom s cm2)"), True)
    """
    if meta is None or 'BUNIT' not in meta:
        return None
    raw = str(meta['BUNIT']).strip()
    if not raw:
        return None
    return written_unit(raw, name=f'BUNIT={raw!r}')
