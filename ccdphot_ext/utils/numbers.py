# Licensed under a 3-clause BSD style license - see LICENSE
"""
The one rule for a value a user gives: a number (a gain, a threshold, a
size) is a real, finite number, positive or at least zero where asked, a
count a whole positive number, a choice one of the listed values, and an
options object of its class (None for its defaults); each refused with a
message naming it. Plain Python (no numpy import), so that
the ``ccdphot`` command's argument types use the same rule as the library
without loading numpy at ``ccdphot --help``.
"""

import math
import numbers
import sys

__all__ = []  # internal module


def _what(name):
    return f'{name} ' if name else ''


def finite_number(value, name=None):
    """
    ``value`` as a finite float.

    Raises TypeError for anything that is not a real number (a bool, a
    complex number, a string and bytes included) and ValueError for NaN or
    inf; the messages start with ``name`` when given.

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import finite_number
    >>> finite_number(3, 'gain')
    3.0
    >>> finite_number(float('nan'), 'gain')
    Traceback (most recent call last):
    ...
    ValueError: gain must be finite, got nan
    """
    if (isinstance(value, (str, bytes)) or _is_bool(value)
            or (isinstance(value, numbers.Complex)
                and not isinstance(value, numbers.Real))):
        raise TypeError(f'{_what(name)}must be a number, got {value!r}')
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f'{_what(name)}must be a number, got '
                        f'{value!r}') from None
    if not math.isfinite(out):
        raise ValueError(f'{_what(name)}must be finite, got {out}')
    return out


def positive_scalar(value, name, *, allow_none=True, allow_zero=False):
    """
    Validate a positive finite scalar (gain, n_sigma, ...).

    None is returned as it is when ``allow_none``, else a TypeError;
    ``allow_zero`` accepts 0 (a non-negative number).

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import positive_scalar
    >>> positive_scalar(2, 'gain'), positive_scalar(None, 'gain')
    (2.0, None)
    >>> positive_scalar(0, 'gain')
    Traceback (most recent call last):
    ...
    ValueError: gain must be positive, got 0.0
    """
    if value is None:
        if allow_none:
            return None
        raise TypeError(f'{name} is required')
    out = finite_number(value, name)
    if out < 0 or (out == 0 and not allow_zero):
        bound = 'non-negative' if allow_zero else 'positive'
        raise ValueError(f'{_what(name)}must be {bound}, got {out}')
    return out


def positive_integer(value, name):
    """
    ``value`` as a positive int; a float with a fraction (2.5) is refused
    rather than truncated.

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import positive_integer
    >>> positive_integer(5.0, 'subpixels')
    5
    >>> positive_integer(2.5, 'subpixels')
    Traceback (most recent call last):
    ...
    ValueError: subpixels must be a whole number, got 2.5
    """
    out = positive_scalar(value, name, allow_none=False)
    if out != int(out):
        raise ValueError(f'{_what(name)}must be a whole number, got {out}')
    return int(out)


def check_choice(value, name, choices):
    """
    ``value`` if it is one of ``choices``, else a ValueError naming
    ``name`` and the choices.

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import check_choice
    >>> check_choice('exact', 'sum_method', ('exact', 'center'))
    'exact'
    >>> check_choice('sum', 'sum_method', ('exact', 'center'))
    Traceback (most recent call last):
    ...
    ValueError: sum_method must be one of ('exact', 'center'), got 'sum'
    """
    if not any(_same_kind(value, choice) and value == choice
               for choice in choices):
        raise ValueError(f'{_what(name)}must be one of {tuple(choices)}, got '
                         f'{value!r}')
    return value


def check_options(value, name, cls):
    """
    ``value`` if it is an options object of class ``cls`` (such as
    `~ccdphot_ext.BudgetOptions`), ``cls()`` (the defaults) for None, else a
    TypeError naming ``name``.

    Examples
    --------
    >>> from fractions import Fraction
    >>> from ccdphot_ext.utils.numbers import check_options
    >>> check_options(None, 'ratio', Fraction)
    Fraction(0, 1)
    >>> check_options('1/2', 'ratio', Fraction)
    Traceback (most recent call last):
    ...
    TypeError: ratio must be a Fraction or None, got str
    """
    if value is None:
        return cls()
    if not isinstance(value, cls):
        raise TypeError(f'{name} must be a {cls.__name__} or None, got '
                        f'{type(value).__name__}')
    return value


def check_bool(value, name):
    """
    ``value`` as a plain bool if it is a Python or numpy bool, else a
    TypeError naming ``name`` (1, 'yes' and None are not flags).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext.utils.numbers import check_bool
    >>> check_bool(np.True_, 'deblend')
    True
    >>> check_bool(1, 'deblend')
    Traceback (most recent call last):
    ...
    TypeError: deblend must be True or False, got 1
    """
    if not _is_bool(value):
        raise TypeError(f'{name} must be True or False, got {value!r}')
    return bool(value)


def _same_kind(value, choice):
    """True when ``value`` may equal ``choice``: a text for a text, a bool
    for a bool, a number (not a bool) for a number, itself otherwise (so 1
    is not True, and an array is never a choice)."""
    if isinstance(choice, str):
        return isinstance(value, str)
    if isinstance(choice, bool):
        return _is_bool(value)
    if isinstance(choice, numbers.Number):
        return isinstance(value, numbers.Number) and not _is_bool(value)
    return value is choice


def _is_bool(value):
    """True for Python and numpy booleans (numpy's is not a bool; when
    numpy is not loaded, no value can be one of its)."""
    numpy = sys.modules.get('numpy')
    return isinstance(value, bool) or (
        numpy is not None and isinstance(value, numpy.bool_))
