# Licensed under a 3-clause BSD style license - see LICENSE
"""
Data-quality (DQ) arrays: which bits make a pixel unusable.

Calibrated data products (JWST, HST) carry a DQ extension of bit flags
beside the science array. `~ccdphot_ext.read_frame` masks the pixels in
which any of the chosen bits is set; masked pixels are excluded from the
sums and the sky, and a row with one in its aperture is flagged 2
(:ref:`photometer-flags`). The default is DO_NOT_USE (bit value 1), the
bit the JWST pipeline sets on every pixel that must not be used (and, on
HST, the Reed-Solomon decoding error of bit 1: data lost in transmission).
Other bits (saturated, jump, hot, ...) describe pixels that may still be
good and are masked only when asked for.

Bits are given as an integer (the sum of the bit values), or as a string
of bit values and JWST flag names joined by ``+`` or ``,``:
``'DO_NOT_USE+SATURATED'``, ``'1,2'`` and ``3`` are the same. ``0`` masks
nothing, ``'all'`` every pixel with any bit set.
"""

import re

import numpy as np
from astropy.nddata import bitmask

__all__ = ['DQ_FLAGS', 'DEFAULT_DQ_BITS', 'dq_bits', 'dq_mask',
           'describe_dq_bits']

#: The JWST pixel DQ flags (name -> bit value), as STScI's data models
#: define them.
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

#: The bits masked by default: DO_NOT_USE.
DEFAULT_DQ_BITS = DQ_FLAGS['DO_NOT_USE']

_NAME_MAP = bitmask.extend_bit_flag_map('JWSTPixelDQ', **DQ_FLAGS)
_MAX_BITS = 2 ** 32


def dq_bits(value, name='dq_bits'):
    """
    Interpret the DQ bits to mask as one integer.

    Parameters
    ----------
    value : int or str
        An integer (the sum of bit values), or bit values and JWST flag
        names (`DQ_FLAGS`) joined by ``+`` or ``,``, or ``'all'`` (any
        bit).
    name : str, optional
        The parameter name for error messages (default ``'dq_bits'``).

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
        If ``value`` is an empty string, starts with ``~``, names an
        unknown flag, or is out of the range 0 to ``2**32 - 1``.

    Examples
    --------
    >>> from ccdphot_ext.io.dq import dq_bits
    >>> dq_bits('DO_NOT_USE+SATURATED'), dq_bits('1,4'), dq_bits(0)
    (3, 5, 0)
    >>> dq_bits('all') == 2**32 - 1
    True
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, np.integer, str)):
        raise TypeError(f'{name} must be an integer or a string of bit '
                        f'values and DQ flag names, got {value!r}')
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f'{name} is empty: give bit values or DQ flag '
                             "names, or 0 to mask nothing")
        if text.lower() == 'all':
            return _MAX_BITS - 1
        if text.startswith('~'):
            raise ValueError(f'{name}={value!r}: give the bits that make a '
                             'pixel bad (no ~)')
        parts = [p.strip() for p in re.split('[+,]', text)]
        unknown = [p for p in parts if not p.isdigit()
                   and p.upper() not in DQ_FLAGS]
        if unknown:
            raise ValueError(f'{name}={value!r}: unknown DQ flag name(s) '
                             f'{", ".join(unknown)} (known: '
                             f'{", ".join(DQ_FLAGS)})')
        if all(p == '0' for p in parts):
            return 0
        value = bitmask.interpret_bit_flags(
            ','.join(p.upper() for p in parts if p != '0'),
            flag_name_map=_NAME_MAP)
    value = int(value)
    if not 0 <= value < _MAX_BITS:
        raise ValueError(f'{name} must be between 0 and 2**32 - 1, got '
                         f'{value}')
    return value


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


def describe_dq_bits(bits):
    """
    Describe DQ bits in words, for notes: ``'1 (DO_NOT_USE)'``.

    Parameters
    ----------
    bits : int or str
        The bits, as `dq_bits` takes them (an integer, or bit values and
        flag names joined by ``+`` or ``,``, or ``'all'``).

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
    >>> from ccdphot_ext.io.dq import describe_dq_bits
    >>> describe_dq_bits(5)
    '1 (DO_NOT_USE) + 4 (JUMP_DET)'
    """
    bits = dq_bits(bits)
    if bits == 0:
        return 'none'
    if bits == _MAX_BITS - 1:
        return 'all'
    names = {v: k for k, v in DQ_FLAGS.items()}
    return ' + '.join(f'{1 << i} ({names[1 << i]})'
                      for i in range(32) if bits & (1 << i))
