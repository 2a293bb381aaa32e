# Licensed under a 3-clause BSD style license - see LICENSE
"""
Data-quality (DQ) arrays: which bits make a pixel unusable, by mission.

Calibrated data products (JWST, HST) carry a DQ extension of bit flags
beside the science array. The same bit means different things on
different missions (bit 256 is JWST's RESERVED but HST's full-well
saturation; bit 4 JWST's JUMP_DET but HST's bad detector pixel), and on
HST between instruments (bit 128 is a bad column on ACS but a bad bias
value on WFC3), so `~ccdphot_ext.read_frame` reads the DQ by the
convention of the file's mission (`dq_convention`, from TELESCOP,
INSTRUME and DETECTOR):

==============  ============================================  ===========
convention      bits masked by default                        saturation
==============  ============================================  ===========
JWST            1 DO_NOT_USE                                  2
HST ACS         1, 2, 4, 8, 16, 32, 128, 512, 1024, 2048,     256, 2048
                4096, 8192, 16384 (32447)
HST WFC3/UVIS   1, 2, 4, 8, 16, 128, 512, 1024, 2048, 4096,   256, 2048
                8192, 32768 (48799)
HST WFC3/IR     1, 2, 4, 8, 16, 32, 128, 4096, 8192, 32768    256
                (45247)
other           every bit                                     none
==============  ============================================  ===========

The HST bits left unmasked (warm pixels, full-well saturation, UVIS CTE
tails, WFC3's 16384, and on the IR the flat's blobs, CR-spike and
zero-read corrections) describe pixels whose value the pipeline kept or
corrected; any of them summed inside an aperture is warned of.

Masked pixels are excluded from the sums and the sky, and a row with one in
its aperture is flagged 2 (:ref:`photometer-flags`). A pixel whose DQ holds
one of the convention's saturation bits sets flag 4 on every row whose
aperture covers it. ``dq_bits=`` chooses other bits: an integer (the sum
of the bit values), or bit values and the convention's flag names joined
by ``+`` or ``,`` (``'DO_NOT_USE+SATURATED'``, ``'1,2'`` and ``3`` are the
same on JWST), ``0`` for none, ``'all'`` for any bit.
"""

import re
from dataclasses import dataclass, field

import numpy as np

__all__ = ['DQ_FLAGS', 'HST_ACS_DQ_FLAGS', 'HST_WFC3_DQ_FLAGS',
           'DEFAULT_DQ_BITS', 'DQConvention', 'DQ_CONVENTIONS',
           'dq_convention', 'dq_bits', 'dq_bits_spec', 'dq_mask',
           'describe_dq_bits']

#: The JWST pixel DQ flags (name -> bit value), as STScI's data models
#: define them (``stdatamodels.jwst.datamodels.dqflags.pixel``).
DQ_FLAGS = {
    'DO_NOT_USE': 1, 'SATURATED': 2, 'JUMP_DET': 4, 'DROPOUT': 8,
    'OUTLIER': 16, 'PERSISTENCE': 32, 'AD_FLOOR': 64, 'CHARGELOSS': 128,
    'RESERVED': 256, 'NON_SCIENCE': 512, 'DEAD': 1024, 'HOT': 2048,
    'WARM': 4096, 'LOW_QE': 8192, 'RC': 16384, 'TELEGRAPH': 32768,
    'NONLINEAR': 65536, 'BAD_REF_PIXEL': 131072, 'NO_FLAT_FIELD': 262144,
    'NO_GAIN_VALUE': 524288, 'NO_LIN_CORR': 1048576,
    'NO_SAT_CHECK': 2097152, 'UNRELIABLE_BIAS': 4194304,
    'UNRELIABLE_DARK': 8388608, 'UNRELIABLE_SLOPE': 16777216,
    'UNRELIABLE_FLAT': 33554432, 'OPEN': 67108864, 'ADJ_OPEN': 134217728,
    'FLUX_ESTIMATED': 268435456, 'MSA_FAILED_OPEN': 536870912,
    'OTHER_BAD_PIXEL': 1073741824, 'REFERENCE_PIXEL': 2147483648}

#: The DQ flags of HST ACS images (name -> bit value): the meanings of
#: the ACS Data Handbook's table of DQ flags, under the short names of
#: STScI's ``stginga`` (its ``data/dqflags_acs.txt``).
HST_ACS_DQ_FLAGS = {
    'LOST': 1,          # lost during compression
    'FILLED': 2,        # replaced by a fill value
    'BADPIX': 4,        # bad detector pixel, or beyond the aperture
    'MASKED': 8,        # masked by an aperture feature (HRC: the finger)
    'HOT': 16,          # hot pixel
    'UNSTABLE': 32,     # unstable pixel (earlier: CTE tail)
    'WARM': 64,         # warm pixel
    'BADCOL': 128,      # bad column
    'SATURATED': 256,   # full-well or A-to-D saturated
    'BADREF': 512,      # bad in a reference file (flat, polarizer, dust)
    'TRAP': 1024,       # charge trap
    'ATODSAT': 2048,    # A-to-D saturated
    'CRDRIZ': 4096,     # cosmic ray or detector artifact (AstroDrizzle)
    'CRREJ': 8192,      # cosmic ray (ACSREJ)
    'USER': 16384,      # flagged by hand
    'UNUSED': 32768}    # not used

#: The DQ flags of HST WFC3 images, one table for UVIS and IR (name -> bit
#: value): the meanings of the WFC3 Data Handbook's table of DQ flags,
#: under the short names of STScI's ``stginga`` (its
#: ``data/dqflags_wfc3.txt``). Where the detectors differ the comment
#: gives UVIS; IR.
HST_WFC3_DQ_FLAGS = {
    'LOST': 1,          # lost during compression
    'FILLED': 2,        # replaced by a fill value
    'BADPIX': 4,        # bad detector pixel, or beyond the aperture
    'MASKED': 8,        # UVIS occulting bar; IR pixel deviant in zero read
    'HOT': 16,          # hot pixel
    'CTE': 32,          # UVIS CTE tail; IR unstable pixel
    'WARM': 64,         # warm pixel
    'BADBIAS': 128,     # bad bias value
    'SATURATED': 256,   # full-well or A-to-D saturated
    'BADREF': 512,      # bad in the flat (IR: the blobs)
    'TRAP': 1024,       # UVIS charge trap or sink pixel; IR CR spike
    'ATODSAT': 2048,    # UVIS A-to-D saturated; IR zero-read correction
    'CRDRIZ': 4096,     # cosmic ray or detector artifact (AstroDrizzle)
    'CRREJ': 8192,      # cosmic ray (image combination; IR ramp fit)
    'CRMAX': 16384,     # more cosmic rays than allowed, ghost, crosstalk
    'USER': 32768}      # flagged by hand

#: JWST's default: DO_NOT_USE, the bit the JWST pipeline sets on every
#: pixel that must not be used.
DEFAULT_DQ_BITS = DQ_FLAGS['DO_NOT_USE']

_MAX_BITS = 2 ** 32
_ALL = _MAX_BITS - 1


@dataclass(frozen=True)
class DQConvention:
    """
    What the bits of one mission's DQ arrays mean.

    Parameters
    ----------
    name : str
        The mission and instrument (``'JWST'``, ``'HST WFC3/UVIS'``, ...,
        ``'unknown'``).
    flags : dict
        Flag name -> bit value (empty when the bits go by value only).
    bad_bits : int
        The bits that mask a pixel by default.
    saturation_bits : int
        The bits that say a pixel is saturated: a row whose aperture
        covers one is flagged 4, masked or not.
    source : str
        Where the meanings and the default come from.

    Examples
    --------
    >>> from ccdphot_ext.io.dq import DQ_CONVENTIONS
    >>> DQ_CONVENTIONS['JWST'].bad_bits, DQ_CONVENTIONS['JWST'].saturation_bits
    (1, 2)
    """

    name: str
    flags: dict = field(repr=False)
    bad_bits: int
    saturation_bits: int
    source: str = field(repr=False)

    @property
    def rule(self):
        """The default in words: ``'HST WFC3/UVIS default'``."""
        if self.bad_bits == _ALL:
            return f'{self.name}: every bit (no known default)'
        return f'{self.name} default'


_HST_SOURCE = ("the {0} Data Handbook's table of DQ flags, as STScI's "
               "stginga lists it (data/dqflags_{1}.txt)")

#: The known conventions, by name.
DQ_CONVENTIONS = {c.name: c for c in (
    DQConvention('JWST', DQ_FLAGS, DEFAULT_DQ_BITS, DQ_FLAGS['SATURATED'],
                 "STScI's data models (stdatamodels.jwst.datamodels."
                 'dqflags.pixel, the JWST pipeline documentation\'s "Data '
                 'Quality Flags")'),
    # masked: no data (1, 2, 4, 8), values the dark, bias or flat cannot
    # correct (16, 32, 128, 512, 1024), clipped (2048), cosmic rays (4096,
    # 8192), flagged by hand (16384)
    DQConvention('HST ACS', HST_ACS_DQ_FLAGS, 32447, 256 + 2048,
                 _HST_SOURCE.format('ACS', 'acs')),
    # as ACS, but 32 (a CTE tail) and 16384 (ghost, crosstalk) left in;
    # flagged by hand is 32768
    DQConvention('HST WFC3/UVIS', HST_WFC3_DQ_FLAGS, 48799, 256 + 2048,
                 _HST_SOURCE.format('WFC3', 'wfc3')),
    # 32 is an unstable pixel (masked); left in: 512 (blobs, which the
    # flat corrects), 1024 and 2048 (corrections the ramp fit made),
    # 16384; 256 is the only saturation (the slope comes from the
    # unsaturated reads)
    DQConvention('HST WFC3/IR', HST_WFC3_DQ_FLAGS, 45247, 256,
                 _HST_SOURCE.format('WFC3', 'wfc3')),
    DQConvention('unknown', {}, _ALL, 0,
                 'none: a DQ of unknown meaning masks every bit'),
)}


def _card(meta, key):
    """A header card's value as upper-case text ('' when absent)."""
    if meta is None:
        return ''
    try:
        value = meta.get(key, '')
    except (AttributeError, TypeError):
        return ''
    return str(value).strip().upper() if value is not None else ''


def dq_convention(meta):
    """
    The DQ convention of a frame, from its header.

    TELESCOP ``'JWST'`` is JWST's; ``'HST'`` with INSTRUME ``'ACS'``, or
    ``'WFC3'`` with DETECTOR ``'UVIS'`` or ``'IR'``, HST's of that
    instrument. Any other header (another telescope, another HST
    instrument, WFC3 without DETECTOR, no TELESCOP) is of unknown
    convention: every bit masks its pixel and none says saturation.

    Parameters
    ----------
    meta : dict-like or None
        A FITS header or any mapping (``CCDData.meta``).

    Returns
    -------
    convention : `DQConvention`
        The convention; ``name`` says which (an unknown HST instrument is
        named, e.g. ``'HST STIS'``).

    Examples
    --------
    >>> from ccdphot_ext.io.dq import dq_convention
    >>> dq_convention({'TELESCOP': 'HST', 'INSTRUME': 'WFC3',
    ...                'DETECTOR': 'IR'}).name
    'HST WFC3/IR'
    >>> dq_convention({}).rule
    'unknown: every bit (no known default)'
    """
    telescope = _card(meta, 'TELESCOP')
    instrument = _card(meta, 'INSTRUME')
    detector = _card(meta, 'DETECTOR')
    if telescope == 'JWST':
        return DQ_CONVENTIONS['JWST']
    if telescope == 'HST':
        if instrument == 'ACS':
            return DQ_CONVENTIONS['HST ACS']
        if instrument == 'WFC3' and detector in ('UVIS', 'IR'):
            return DQ_CONVENTIONS[f'HST WFC3/{detector}']
        unknown = DQ_CONVENTIONS['unknown']
        name = ' '.join(p for p in ('HST', instrument, detector) if p)
        return DQConvention(name, {}, _ALL, 0, unknown.source)
    return DQ_CONVENTIONS['unknown']


def _all_names():
    names = {}
    for convention in DQ_CONVENTIONS.values():
        for name in convention.flags:
            names.setdefault(name, []).append(convention.name)
    return names


def _check_type(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer, str)):
        raise TypeError(f'{name} must be an integer or a string of bit '
                        f'values and DQ flag names, got {value!r}')


def _in_range(value, name):
    value = int(value)
    if not 0 <= value < _MAX_BITS:
        raise ValueError(f'{name} must be between 0 and 2**32 - 1, got '
                         f'{value}')
    return value


def _parse(value, name):
    """
    The first reading of DQ bits, shared by `dq_bits` and `dq_bits_spec`:
    an integer (checked for range; ``'all'`` is every bit) when the value
    is settled without flag names, else its ``+``/``,``-separated parts in
    upper case (checked for emptiness and ``~``), names still to resolve.
    """
    _check_type(value, name)
    if not isinstance(value, str):
        return _in_range(value, name)
    text = value.strip()
    if not text:
        raise ValueError(f'{name} is empty: give bit values or DQ flag '
                         "names, or 0 to mask nothing")
    if text.lower() == 'all':
        return _ALL
    if text.startswith('~'):
        raise ValueError(f'{name}={value!r}: give the bits that make a '
                         'pixel bad (no ~)')
    parts = [p.strip().upper() for p in re.split('[+,]', text)]
    if not all(parts):
        raise ValueError(f'{name}={value!r}: an empty part between '
                         "'+' or ','")
    return parts


def _sum_bits(values, name):
    """The sum of bit values given as text: one value is the sum itself,
    several must each be a power of two."""
    values = [int(v) for v in values if int(v) != 0]
    if len(values) > 1:
        odd = [v for v in values if v & (v - 1)]
        if odd:
            raise ValueError(f'{name}: {", ".join(map(str, odd))} is not '
                             'one bit (a power of two); give each bit, or '
                             'their sum alone')
    total = 0
    for value in values:
        total |= _in_range(value, name)
    return total


def dq_bits_spec(value, name='dq_bits'):
    """
    Check DQ bits given before the file they apply to is known.

    Names are checked against every convention's flags (`DQ_CONVENTIONS`)
    and kept as text: which bit a name is depends on the file's mission
    (``'SATURATED'`` is 2 on JWST, 256 on HST); `dq_bits` turns them
    into bits with the file's `dq_convention`.

    Parameters
    ----------
    value : None, int or str
        None (each file's default), an integer, or bit values and flag
        names joined by ``+`` or ``,``, or ``'all'``.
    name : str, optional
        The parameter name for error messages (default ``'dq_bits'``).

    Returns
    -------
    spec : None, int or str
        None; the bits as an integer when ``value`` names none; else the
        text normalized (upper case, joined by ``+``).

    Raises
    ------
    TypeError, ValueError
        As `dq_bits`; a name unknown to every convention is a ValueError.

    Examples
    --------
    >>> from ccdphot_ext.io.dq import dq_bits_spec
    >>> dq_bits_spec(' badpix + 16'), dq_bits_spec('4+16')
    ('BADPIX+16', 20)
    >>> dq_bits_spec(None) is None
    True
    """
    if value is None:
        return None
    parts = _parse(value, name)
    if isinstance(parts, int):
        return parts
    known = _all_names()
    unknown = [p for p in parts if not p.isdigit() and p not in known]
    if unknown:
        raise ValueError(f'{name}={value!r}: unknown DQ flag name(s) '
                         f'{", ".join(unknown)} (known: JWST '
                         f'{", ".join(DQ_FLAGS)}; HST ACS '
                         f'{", ".join(HST_ACS_DQ_FLAGS)}; HST WFC3 '
                         f'{", ".join(HST_WFC3_DQ_FLAGS)})')
    if all(p.isdigit() for p in parts):
        return _sum_bits(parts, name)
    return '+'.join(parts)


def dq_bits(value, name='dq_bits', *, convention=None):
    """
    Interpret the DQ bits to mask as one integer.

    Parameters
    ----------
    value : int or str
        An integer (the sum of bit values), or bit values and flag names
        of ``convention`` joined by ``+`` or ``,``, or ``'all'`` (any
        bit).
    name : str, optional
        The parameter name for error messages (default ``'dq_bits'``).
    convention : `DQConvention`, optional
        Whose flag names (`dq_convention` of the file); default JWST's
        (`DQ_FLAGS`).

    Returns
    -------
    bits : int
        The sum of the bit values, from 0 (mask nothing) to ``2**32 - 1``
        (``'all'``).

    Raises
    ------
    TypeError
        If ``value`` is not an integer or a string.
    ValueError
        If ``value`` is an empty string, starts with ``~``, names a flag
        the convention does not have, lists a value that is not a power
        of two, or is out of the range 0 to ``2**32 - 1``.

    Examples
    --------
    >>> from ccdphot_ext.io.dq import DQ_CONVENTIONS, dq_bits
    >>> dq_bits('DO_NOT_USE+SATURATED'), dq_bits('1,4'), dq_bits(0)
    (3, 5, 0)
    >>> dq_bits('SATURATED', convention=DQ_CONVENTIONS['HST ACS'])
    256
    >>> dq_bits('all') == 2**32 - 1
    True
    """
    convention = DQ_CONVENTIONS['JWST'] if convention is None else convention
    parts = _parse(value, name)
    if isinstance(parts, int):
        return parts
    flags = convention.flags
    unknown = [p for p in parts if not p.isdigit() and p not in flags]
    if unknown:
        known = (f'known: {", ".join(flags)}' if flags else
                 'it has no flag names: give bit values')
        raise ValueError(f'{name}={value!r}: unknown {convention.name} DQ '
                         f'flag name(s) {", ".join(unknown)} ({known})')
    return _sum_bits([p if p.isdigit() else str(flags[p]) for p in parts],
                     name)


def dq_mask(dq, bits=DEFAULT_DQ_BITS):
    """
    Find the pixels in which any of ``bits`` is set.

    Parameters
    ----------
    dq : array_like of int
        The DQ array (integers, any shape).
    bits : int or str, optional
        The bits that make a pixel bad: an integer (the sum of bit values)
        or bit values and JWST flag names (`DQ_FLAGS`) joined by ``+`` or
        ``,``, or ``'all'`` (default `DEFAULT_DQ_BITS`, DO_NOT_USE).

    Returns
    -------
    mask : `~numpy.ndarray` of bool
        True for a pixel to exclude, shaped like ``dq``.

    Raises
    ------
    TypeError
        If ``dq`` does not hold integers, or ``bits`` is neither an integer
        nor a string.
    ValueError
        If ``bits`` names an unknown flag or is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext.io.dq import dq_mask
    >>> dq_mask(np.array([0, 1, 4, 5])).tolist()
    [False, True, False, True]
    >>> dq_mask(np.array([0, 1, 4, 5]), 'JUMP_DET').tolist()
    [False, False, True, True]
    """
    bits = dq_bits(bits)
    dq = np.asarray(dq)
    if dq.dtype.kind not in 'iu':
        raise TypeError(f'a DQ array holds integers, got dtype {dq.dtype}')
    if bits == 0:
        return np.zeros(dq.shape, bool)
    return (dq.astype(np.uint64, copy=False) & np.uint64(bits)) != 0


def describe_dq_bits(bits, convention=None):
    """
    Describe DQ bits in words, for notes: ``'1 (DO_NOT_USE)'``.

    Parameters
    ----------
    bits : int or str
        The bits, as `dq_bits` takes them (an integer, or bit values and
        flag names joined by ``+`` or ``,``, or ``'all'``).
    convention : `DQConvention`, optional
        Whose flag names (default JWST's); a bit without a name is given
        by its value alone.

    Returns
    -------
    text : str
        Each bit set as ``'value (NAME)'`` joined by ``' + '``; ``'none'``
        for 0 and ``'all'`` for every bit.

    Raises
    ------
    TypeError, ValueError
        If ``bits`` is not valid, as `dq_bits`.

    Examples
    --------
    >>> from ccdphot_ext.io.dq import DQ_CONVENTIONS, describe_dq_bits
    >>> describe_dq_bits(5)
    '1 (DO_NOT_USE) + 4 (JUMP_DET)'
    >>> describe_dq_bits(260, DQ_CONVENTIONS['HST WFC3/UVIS'])
    '4 (BADPIX) + 256 (SATURATED)'
    """
    convention = DQ_CONVENTIONS['JWST'] if convention is None else convention
    bits = dq_bits(bits, convention=convention)
    if bits == 0:
        return 'none'
    if bits == _ALL:
        return 'all'
    names = {v: k for k, v in convention.flags.items()}
    return ' + '.join(f'{1 << i} ({names[1 << i]})' if (1 << i) in names
                      else str(1 << i) for i in range(32) if bits & (1 << i))
