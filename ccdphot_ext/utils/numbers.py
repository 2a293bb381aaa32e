# Licensed under a 3-clause BSD style license - see LICENSE
"""
The one rule for a value a user gives: a number (a gain, a threshold, a
size) is a real, finite number, positive or at least zero where asked; a
positive scale lies within `SCALE_RANGE` (its square neither underflows to
0 nor overflows: no subnormal, no 1e308); a count is a whole positive number
of at most `MAX_COUNT` (or the bound its caller knows, such as the pixels of
the frame); a choice is one of the listed values, and an options object of
its class (None for its defaults); each refused with a message naming it.
Plain Python (no numpy import), so that the ``ccdphot`` command's argument
types use the same rule as the library without loading numpy at
``ccdphot --help``.
"""

import math
import numbers
import sys

__all__ = []  # internal module

#: the range of a positive scale (a gain, a sigma, a size, a time, a factor):
#: its square and the square of its inverse are normal floats, so that no
#: variance built from it underflows to 0 (a subnormal such as 1e-320 is
#: refused) or overflows to inf (1e308 is refused)
SCALE_RANGE = (2.0 ** -511, 2.0 ** 511)

#: the most iterations of a loop that converges in a few (the optimal
#: weights, the re-centring of positions): more only costs time
MAX_ITERATIONS = 1000

#: the largest count (of iterations, apertures, pixels along a side, workers)
#: the package accepts: beyond it an array of that many would not fit in
#: memory, and 64-bit integer arithmetic may overflow
MAX_COUNT = 2 ** 31 - 1


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


def positive_scalar(value, name, *, allow_none=True, allow_zero=False,
                    maximum=None, bound_note=''):
    """
    Validate a positive finite scalar (gain, n_sigma, ...).

    None is returned as it is when ``allow_none``, else a TypeError;
    ``allow_zero`` accepts 0 (a non-negative number, such as a measured
    sky noise; -0.0 comes back as 0.0, and a value below `SCALE_RANGE`,
    whose square is 0 as that of 0, is taken as it is). A value above
    `SCALE_RANGE` (1e308), or below it where a positive scale is needed
    (a subnormal such as 1e-320), is a ValueError, as is one above
    ``maximum`` (the bound its caller knows, e.g. the frame's size;
    ``bound_note`` says what it is).

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import positive_scalar
    >>> positive_scalar(2, 'gain'), positive_scalar(None, 'gain')
    (2.0, None)
    >>> positive_scalar(0, 'gain')
    Traceback (most recent call last):
    ...
    ValueError: gain must be positive, got 0.0
    >>> positive_scalar(1e-320, 'gain')
    Traceback (most recent call last):
    ...
    ValueError: gain must be between 1.49e-154 and 6.7e+153 (its square
    must be a normal float), got 9.99989e-321
    """
    if value is None:
        if allow_none:
            return None
        raise TypeError(f'{name} is required')
    out = finite_number(value, name) + 0.0  # -0.0 is 0.0
    if out < 0 or (out == 0 and not allow_zero):
        bound = 'non-negative' if allow_zero else 'positive'
        raise ValueError(f'{_what(name)}must be {bound}, got {out}')
    if maximum is not None and out > maximum:
        raise ValueError(f'{_what(name)}must be at most {maximum:g}'
                         f'{_note(bound_note)}, got {out:.6g}')
    low, high = SCALE_RANGE
    if out > high or (out < low and not allow_zero):
        raise ValueError(
            f'{_what(name)}must be between {low:.3g} and {high:.3g} (its '
            f'square must be a normal float), got {out:.6g}')
    return out


def real_array(values, name):
    """
    ``values`` (a number or an array_like of them) as a float
    `~numpy.ndarray`: real numbers of any sign, NaN and inf included (the
    caller says what they mean); a text, a bool, a complex number, None or
    an object is a TypeError naming ``name``. (numpy is imported here.)

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import real_array
    >>> real_array([1, -2.5], 'flux').tolist()
    [1.0, -2.5]
    >>> real_array('3', 'flux')
    Traceback (most recent call last):
    ...
    TypeError: flux must be a number or an array of numbers, got '3'
    """
    import numpy as np

    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):  # ragged sequences
        arr = None
    if arr is None or arr.dtype.kind not in 'iuf':
        raise TypeError(f'{_what(name)}must be a number or an array of '
                        f'numbers, got {values!r}')
    return arr.astype(float)


def scale_array(values, name, *, allow_zero=False, allow_nan=False):
    """
    `positive_scalar` element by element: ``values`` (a number or an
    array_like of them) as a float `~numpy.ndarray` of positive (or with
    ``allow_zero`` non-negative) scales within `SCALE_RANGE`; NaN (an
    absent value, where the caller gives it a meaning) only with
    ``allow_nan``. The first element out of the rule is refused with the
    message `positive_scalar` gives for it; a non-number is a TypeError
    (`real_array`).

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import scale_array
    >>> scale_array([25, 0], 'n_pix', allow_zero=True).tolist()
    [25.0, 0.0]
    >>> scale_array([25, 1e308], 'n_pix', allow_zero=True)
    Traceback (most recent call last):
    ...
    ValueError: n_pix must be between 1.49e-154 and 6.7e+153 (its square
    must be a normal float), got 1e+308
    """
    import numpy as np

    arr = real_array(values, name)
    low, high = SCALE_RANGE
    # as positive_scalar: a value that may be 0 may be below the range
    good = (arr >= 0 if allow_zero else arr >= low) & (arr <= high)
    if allow_nan:
        good |= np.isnan(arr)
    if not good.all():
        first = float(arr[~good].flat[0])
        positive_scalar(first, name, allow_none=False, allow_zero=allow_zero)
    return arr + 0.0  # -0.0 is 0.0


def positive_integer(value, name, *, maximum=MAX_COUNT, bound_note='',
                     allow_zero=False):
    """
    ``value`` as a positive int; a float with a fraction (2.5) is refused
    rather than truncated, and a count above ``maximum`` (by default
    `MAX_COUNT`; a caller passes the bound it knows, such as the pixels of
    the frame, and says what it is in ``bound_note``) too. ``allow_zero``
    accepts 0 (a count of none).

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import positive_integer
    >>> positive_integer(5.0, 'subpixels')
    5
    >>> positive_integer(2.5, 'subpixels')
    Traceback (most recent call last):
    ...
    ValueError: subpixels must be a whole number, got 2.5
    >>> positive_integer(2**63, 'n_apertures')
    Traceback (most recent call last):
    ...
    ValueError: n_apertures must be at most 2147483647, got 9223372036854775808
    """
    if (isinstance(value, numbers.Integral) and not _is_bool(value)
            and value >= (0 if allow_zero else 1)):
        out = int(value)  # exact: 2**63 + 1 is not rounded to a float
        shown = out
    else:
        out = finite_number(value, name) + 0.0  # -0.0 is 0.0
        if out < 0 or (out == 0 and not allow_zero):
            # the message of a positive (or non-negative) number
            positive_scalar(out, name, allow_none=False,
                            allow_zero=allow_zero)
        shown = f'{out:.6g}'  # 1e+308, not its 309 digits
    if out > maximum:
        raise ValueError(f'{_what(name)}must be at most {maximum}'
                         f'{_note(bound_note)}, got {shown}')
    if out != int(out):
        raise ValueError(f'{_what(name)}must be a whole number, got {out}')
    return int(out)


def iterations(value, name):
    """
    ``value`` as a count of iterations: a whole number from 1 to
    `MAX_ITERATIONS` (they converge in a few).

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import iterations
    >>> iterations(3, 'n_iter')
    3
    >>> iterations(10**6, 'n_iter')
    Traceback (most recent call last):
    ...
    ValueError: n_iter must be at most 1000 (the iterations converge in a
    few), got 1000000
    """
    return positive_integer(value, name, maximum=MAX_ITERATIONS,
                            bound_note='the iterations converge in a few')


def random_generator(seed, name='seed'):
    """
    A `numpy.random.Generator` from ``seed``: None (fresh entropy), a
    non-negative int, a sequence of them, a `numpy.random.SeedSequence` or
    a Generator (used as it is); a negative int is a ValueError and
    anything else a TypeError, naming ``name``. (numpy is imported here,
    when a generator is made.)

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import random_generator
    >>> a, b = random_generator(1), random_generator(1)
    >>> float(a.random()) == float(b.random())
    True
    >>> random_generator(-1)
    Traceback (most recent call last):
    ...
    ValueError: seed must be None, a non-negative int, a sequence of them or
    a numpy Generator, got -1
    """
    import numpy as np

    what = (f'{name} must be None, a non-negative int, a sequence of them '
            f'or a numpy Generator, got {seed!r}')
    if _is_bool(seed) or isinstance(seed, (str, bytes, float)):
        raise TypeError(what)
    try:
        return np.random.default_rng(seed)
    except ValueError:
        raise ValueError(what) from None
    except TypeError:
        raise TypeError(what) from None


def whole_number(value, name):
    """
    ``value`` as an int of any sign (a pixel index, a grid's first pixel):
    a real finite whole number (7.0 is 7), else a TypeError (a bool, a
    text) or ValueError (NaN, inf, 2.5) naming ``name``.

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import whole_number
    >>> whole_number(-3.0, 'start')
    -3
    """
    if isinstance(value, numbers.Integral) and not _is_bool(value):
        return int(value)
    out = finite_number(value, name)
    if out != int(out):
        raise ValueError(f'{_what(name)}must be a whole number, got {out}')
    return int(out)


def check_shape(value, name='shape', *, max_pixels=None):
    """
    ``value`` as a frame's ``(ny, nx)``: two whole positive numbers (each
    at most `MAX_COUNT`, and their product at most ``max_pixels`` when
    given: a frame to be made), as a tuple of ints; else an error naming
    ``name``.

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import check_shape
    >>> check_shape([64, 80.0])
    (64, 80)
    >>> check_shape(64)
    Traceback (most recent call last):
    ...
    TypeError: shape must be a (ny, nx) pair of whole numbers, got 64
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f'{name} must be a (ny, nx) pair of whole numbers, '
                        f'got {value!r}')
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f'{name} must be a (ny, nx) pair of whole numbers, '
                        f'got {value!r}') from None
    if len(items) != 2:
        raise ValueError(f'{name} must be a (ny, nx) pair, got {len(items)} '
                         f'value(s): {value!r}')
    out = tuple(positive_integer(v, name) for v in items)
    if max_pixels is not None and out[0] * out[1] > max_pixels:
        raise ValueError(f'{name} {out} holds {out[0] * out[1]} pixels, more '
                         f'than the {max_pixels} a frame may have')
    return out


def check_index(value, name, size):
    """
    ``value`` as an int index into ``size`` items (negative ones count
    from the end, as in Python): an integer (not a bool, a float or a
    text; a TypeError) within range (an IndexError that is also a
    ValueError), each naming ``name``.

    Examples
    --------
    >>> from ccdphot_ext.utils.numbers import check_index
    >>> check_index(-1, 'index', 3)
    2
    >>> check_index(3, 'index', 3)
    Traceback (most recent call last):
    ...
    ccdphot_ext.utils.numbers.IndexOutOfRange: index 3 is out of range for 3 item(s)
    """
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f'{_what(name)}must be an integer, got {value!r}')
    out = int(value)
    if not -size <= out < size:
        raise IndexOutOfRange(f'{_what(name)}{out} is out of range for '
                              f'{size} item(s)')
    return out % size if size else out


class IndexOutOfRange(IndexError, ValueError):
    """An index beyond the items: an IndexError (as Python's sequences
    raise) that is also the package's ValueError for a bad argument."""


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


def _note(text):
    """`` (text)`` for a bound's explanation, or ''."""
    return f' ({text})' if text else ''


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
