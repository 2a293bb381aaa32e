# Licensed under a 3-clause BSD style license - see LICENSE
"""
Normalisation and validation of the image-like inputs every public call
accepts: `~numpy.ndarray`, `~astropy.units.Quantity`,
`~astropy.nddata.NDData` and `~astropy.nddata.CCDData`.
"""

import math
import warnings
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.nddata import (
    InverseVariance,
    NDData,
    NDUncertainty,
    StdDevUncertainty,
    VarianceUncertainty,
)
from astropy.utils.exceptions import AstropyUserWarning
from astropy.utils.masked import Masked

from .numbers import positive_scalar  # noqa: F401  (the rule lives in numbers)

__all__ = []  # internal module


@dataclass
class Frame:
    """A 2-D image split into plain parts (internal)."""

    data: np.ndarray
    unit: u.UnitBase | None = None
    uncertainty: np.ndarray | None = None  # per-pixel 1-sigma, data unit
    mask: np.ndarray | None = None  # True = bad pixel
    meta: dict = field(default_factory=dict)
    wcs: object = None
    # a data product's named variance arrays (data unit**2) whose sum is
    # the uncertainty, e.g. VAR_POISSON, VAR_RNOISE, VAR_FLAT; None without
    variance_arrays: dict | None = None
    # a data product's DQ bit flags (integers, the frame's shape; the
    # ``flags`` of an NDData such as `~ccdphot_ext.read_frame` makes), kept
    # to flag saturation and warn of flagged pixels left unmasked
    dq: np.ndarray | None = None

    @property
    def shape(self):
        return self.data.shape


def _as_2d_array(value, name):
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f'{name} must be a 2-D numeric array, got '
                        f'{type(value).__name__}')
    arr = np.asanyarray(value)
    _check_real_dtype(arr, name)
    if arr.ndim != 2:
        raise ValueError(f'{name} must be 2-D, got {arr.ndim}-D with shape '
                         f'{arr.shape}')
    if arr.size == 0:
        raise ValueError(f'{name} is empty (shape {arr.shape})')
    if arr.dtype.kind in 'biu':
        # integer frames (uint16 near 65535) are widened so that no
        # subtraction or sum can overflow
        arr = arr.astype(np.float64)
    return arr


def _check_real_dtype(arr, name):
    """
    Refuse an array that is not of real numbers (integers or floats):
    text, objects, complex numbers and booleans (a mask passed as an image
    or an error map) are a TypeError naming ``name``.
    """
    if arr.dtype.kind not in 'iuf':
        kind = ' (a mask? pass it as mask=)' if arr.dtype.kind == 'b' else ''
        raise TypeError(f'{name} must be numeric, got dtype {arr.dtype}'
                        f'{kind}')


def _uncertainty_to_std(unc, data_unit, name='uncertainty'):
    """Return a 1-sigma ndarray (in the data unit) from any uncertainty."""
    if isinstance(unc, (str, bytes)):
        raise TypeError(f'{name} must be a 2-D numeric array or an '
                        f'NDUncertainty, got {type(unc).__name__}')
    if isinstance(unc, NDUncertainty):
        _check_real_dtype(np.asanyarray(unc.array), name)
        arr = np.asarray(unc.array, dtype=float)
        unc_unit = unc.unit
        if not isinstance(unc, StdDevUncertainty):
            _refuse_negative(arr, f'{name} ({type(unc).__name__})')
        if isinstance(unc, StdDevUncertainty):
            std = arr
        elif isinstance(unc, VarianceUncertainty):
            std = np.sqrt(arr)
            unc_unit = None if unc_unit is None else unc_unit ** 0.5
        elif isinstance(unc, InverseVariance):
            with np.errstate(divide='ignore'):
                std = 1.0 / np.sqrt(arr)
            unc_unit = None if unc_unit is None else unc_unit ** -0.5
        else:
            raise TypeError(f'{name}: unsupported uncertainty type '
                            f'{type(unc).__name__}; use StdDevUncertainty, '
                            'VarianceUncertainty or InverseVariance')
        if unc_unit is not None and data_unit is not None:
            try:
                std = (std * unc_unit).to_value(data_unit)
            except u.UnitConversionError as exc:
                raise u.UnitsError(f'{name} unit {unc.unit} does not match '
                                   f'the data unit {data_unit}') from exc
        return std
    std = np.asanyarray(strip_unit(unc, data_unit, name,
                                   allow_dimensionless=False))
    _check_real_dtype(std, name)
    return np.asarray(std, dtype=float)


def _split_masked(value):
    """
    ``(plain values, mask or None)`` of a `numpy.ma.MaskedArray` or an
    astropy ``Masked`` array/Quantity; other values come back unchanged.

    The mask is copied: nothing done later can change the caller's array.
    """
    if isinstance(value, np.ma.MaskedArray):
        return np.ma.getdata(value), np.ma.getmaskarray(value).copy()
    if isinstance(value, Masked):
        return value.unmasked, np.array(value.mask, dtype=bool)
    return value, None


def negative_pixels(values):
    """
    The negative values of an image, for a message: ``(count, (x, y) of
    the first)``, or None when there is none (NaN is not negative).
    """
    negative = np.asarray(values) < 0
    if not np.any(negative):
        return None
    first = tuple(int(i) for i in np.argwhere(negative)[0][::-1])
    return int(negative.sum()), first


#: pixel values beyond this magnitude make sums of squares overflow
OVERFLOW_MAGNITUDE = 1e150


#: finite values whose largest magnitude lies outside this range are
#: scaled by a power of two for statistics: below it squares of their
#: scatter underflow to 0 in float64, above it they overflow float32
SAFE_MAGNITUDE = (2.0 ** -256, 2.0 ** 100)


def power_of_two_scale(values, *, low=SAFE_MAGNITUDE[0],
                       high=SAFE_MAGNITUDE[1]):
    """
    A power of two to divide ``values`` by so that their largest finite
    magnitude lies in ``[0.5, 1)``; 1.0 when it lies in ``[low, high]``
    already or every value is 0 or not finite. Dividing by a power of two
    changes no digit of a normal float, so statistics of scaled values,
    scaled back, are those of the values wherever these do not underflow
    or overflow.
    """
    values = np.asarray(values)
    if values.size == 0:
        return 1.0
    # the extremes, NaN left out (fmax/fmin), in two fast passes; only
    # infinite values need the slower search for the largest finite one
    big = max(abs(float(np.fmax.reduce(values, axis=None))),
              abs(float(np.fmin.reduce(values, axis=None))))
    if not math.isfinite(big):
        with np.errstate(invalid='ignore'):
            big = float(np.max(np.abs(values), initial=0.0,
                               where=np.isfinite(values)))
    if big == 0 or low <= big <= high:
        return 1.0
    return math.ldexp(1.0, math.frexp(big)[1])


def overflow_culprits(values):
    """
    Why statistics of finite pixels came out infinite or NaN, for a
    message: the pixels too large to add up or square (how many, the
    largest, the first), and what to do.
    """
    values = np.asarray(values)
    with np.errstate(invalid='ignore'):
        huge = np.isfinite(values) & (np.abs(values) > OVERFLOW_MAGNITUDE)
    if not huge.any():
        largest = np.nanmax(np.abs(np.where(np.isfinite(values), values,
                                            np.nan)))
        return (f'pixels up to {largest:.3g} in magnitude add up beyond the '
                'largest float; set such pixels to NaN or mask them')
    first = tuple(int(i) for i in np.argwhere(huge)[0][::-1])
    return (f'{int(huge.sum())} pixel(s) of magnitude up to '
            f'{np.abs(values[huge]).max():.3g} (the first at (x, y) = '
            f'{first}) are too large to add up or square; set them to NaN '
            'or mask them')


def _refuse_negative(values, name, what='value'):
    """Refuse negative values of an uncertainty (a sigma, a variance or an
    inverse variance), naming ``name`` and the first such pixel."""
    found = negative_pixels(values)
    if found:
        raise ValueError(f'{name} must be non-negative: {found[0]} negative '
                         f'{what}(s), the first at (x, y) = {found[1]}; a '
                         f'negative {what} is not an error bar (mask those '
                         'pixels instead)')


#: the smallest 1-sigma whose square (a variance) is a normal float64
SIGMA_FLOOR = 2.0 ** -511


def check_uncertainty_values(unc, name):
    """Refuse a 1-sigma map that is negative or has no usable value."""
    _refuse_negative(unc, name, 'sigma value')
    if not np.any(np.isfinite(unc) & (unc >= SIGMA_FLOOR)):
        if np.any(np.isfinite(unc) & (unc > 0)):
            raise ValueError(
                f'{name}: every sigma is below {SIGMA_FLOOR:.3g}, too small '
                'to square (the variances underflow to 0 and the error '
                'bars would be 0); scale the data and the uncertainty')
        raise ValueError(f'{name} has no positive finite value (all zero, '
                         'NaN or inf): the error bars would be too small '
                         'or undefined; give a real 1-sigma map, or none '
                         'and a gain')


def _unusable_sigma(unc, mask, name):
    """
    Pixels whose 1-sigma is zero, NaN or inf, as a bad-pixel mask (or None).

    A sigma below `SIGMA_FLOOR` counts as zero: its square underflows. A
    zero sigma would claim a noiseless pixel (the aperture's error would
    come out too small) and a NaN/inf one an undefined error: such pixels
    are treated as bad pixels (excluded, flag 2), with a warning counting
    those not already masked.
    """
    bad = ~(np.isfinite(unc) & (unc >= SIGMA_FLOOR))
    if not bad.any():
        return None
    new = bad if mask is None else (bad & ~mask)
    n_new = int(new.sum())
    if n_new:
        first = tuple(int(i) for i in np.argwhere(new)[0][::-1])
        warnings.warn(
            f'{name}: {n_new} pixel(s) ({100.0 * n_new / unc.size:.3g}% of '
            f'the frame; the first at (x, y) = {first}) have a zero, NaN or '
            'inf sigma; they are treated as bad pixels (excluded from sums '
            'and sky, flag 2)', AstropyUserWarning, stacklevel=4)
    return bad


def as_frame(data, *, uncertainty=None, mask=None, name='data'):
    """
    Split any supported image input into a `Frame`.

    Explicit ``uncertainty`` and ``mask`` arguments take precedence over
    those carried by an `~astropy.nddata.NDData`; an NDData mask is combined
    (logical or) with an explicit one. The mask of a `numpy.ma.MaskedArray`
    (or astropy ``Masked``) data array is used as if given as ``mask``, as
    is the mask of a masked uncertainty array. Pixels whose uncertainty is
    zero, NaN or inf join the mask (with a warning): such a sigma is no
    error bar, and summing the pixel would shrink or void the aperture's.
    """
    if isinstance(data, Frame):
        return data
    unit = None
    meta = {}
    wcs = None
    nd_unc = None
    nd_mask = None
    dq = None
    data, data_mask = _split_masked(data)
    if isinstance(data, NDData):
        dq = getattr(data, 'flags', None)
        unit = data.unit
        meta = data.meta if data.meta is not None else {}
        wcs = data.wcs
        nd_unc = data.uncertainty
        nd_mask = data.mask
        arr, data_mask = _split_masked(data.data)
    elif isinstance(data, u.Quantity):
        unit = data.unit
        arr = data.value
    else:
        arr = data
    arr = _as_2d_array(arr, name)
    if isinstance(arr, u.Quantity):  # pragma: no cover - defensive
        arr = arr.value

    unc = uncertainty if uncertainty is not None else nd_unc
    unc_name = 'uncertainty' if uncertainty is not None else (
        f'{name}.uncertainty')
    unc, unc_mask = _split_masked(unc)
    arrays = None
    if unc is not None:
        arrays = _variance_arrays(unc, unit, arr.shape, unc_name)
        unc = _uncertainty_to_std(unc, unit, unc_name)
        if unc.shape != arr.shape:
            raise ValueError(f'uncertainty shape {unc.shape} does not match '
                             f'{name} shape {arr.shape}')
        check_uncertainty_values(
            unc if unc_mask is None else unc[~unc_mask], unc_name)

    masks = [m for m in (data_mask, unc_mask, nd_mask, mask) if m is not None]
    full_mask = None
    for m in masks:
        m = np.asarray(m)
        if m.dtype.kind not in 'biuf':  # text, objects: not a mask
            raise TypeError(f'mask must be booleans (True for bad pixels) '
                            f'or numbers, got {m.dtype} values')
        if m.shape != arr.shape:
            raise ValueError(f'mask shape {m.shape} does not match {name} '
                             f'shape {arr.shape}')
        m = m.astype(bool)
        full_mask = m if full_mask is None else (full_mask | m)
    if unc is not None:
        bad_sigma = _unusable_sigma(unc, full_mask, unc_name)
        if bad_sigma is not None:
            full_mask = bad_sigma if full_mask is None else (
                full_mask | bad_sigma)
    return Frame(data=arr, unit=unit, uncertainty=unc, mask=full_mask,
                 meta=meta, wcs=wcs, variance_arrays=arrays,
                 dq=_dq_flags(dq, arr.shape))


def _dq_flags(flags, shape):
    """An NDData's ``flags`` as DQ bit flags: integers of the frame's
    shape, else None (flags of another kind say nothing of DQ bits)."""
    if flags is None:
        return None
    flags = np.asarray(flags)
    if flags.dtype.kind not in 'iu' or flags.shape != shape:
        return None
    return flags


def _variance_arrays(unc, data_unit, shape, name):
    """The named variance arrays (data unit**2) of an uncertainty that
    carries them (`~ccdphot_ext.io.variance.VarianceArrays`: its ``arrays``
    mapping), else None. The class is asked, not the object: a damaged
    one raises rather than passing for a plain (background-only)
    uncertainty."""
    named = unc.arrays if hasattr(type(unc), 'arrays') else None
    if not named:
        return None
    scale = 1.0
    if unc.unit is not None and data_unit is not None:
        try:
            scale = (1.0 * unc.unit).to_value(data_unit ** 2)
        except u.UnitConversionError as exc:
            raise u.UnitsError(f'{name} unit {unc.unit} does not match the '
                               f'data unit squared {data_unit ** 2}') from exc
    out = {}
    for key, values in named.items():
        values = np.asarray(values, dtype=float)
        if values.shape != shape:
            raise ValueError(f'{name}: array {key} has shape {values.shape}, '
                             f'the data {shape}')
        out[key] = values * scale if scale != 1.0 else values
    return out


def pixel_coordinates(value, name):
    """
    ``value`` as pixel coordinates along one axis: a number or an array of
    them (NaN allowed: no position), as a float array; text, None and
    objects are a TypeError naming ``name``.
    """
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f'{name} must be a number or an array of numbers, '
                        f'got {value!r}')
    out = np.asarray(value)
    if out.dtype.kind not in 'iuf':
        raise TypeError(f'{name} must be a number or an array of numbers, '
                        f'got {value!r}')
    return out.astype(float)


def pixel_positions(value, name, *, finite=True):
    """
    ``value`` as pixel positions: ``(x, y)`` or an ``(N, 2)`` array of
    numbers (finite ones unless ``finite`` is False), as a float array of
    that shape; else an error naming ``name``.
    """
    if isinstance(value, (str, bytes)):
        raise TypeError(f'{name} must be (x, y) or an (N, 2) array of '
                        f'numbers, got {value!r}')
    try:
        pos = np.array(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f'{name} must be (x, y) or an (N, 2) array of '
                        f'numbers, got {value!r}') from None
    if pos.ndim not in (1, 2) or pos.shape[-1] != 2 or pos.size == 0:
        raise ValueError(f'{name} must be (x, y) or an (N, 2) array, got '
                         f'shape {pos.shape}')
    if finite and not np.all(np.isfinite(pos)):
        raise ValueError(f'{name} must be finite (NaN or inf found)')
    return pos


def strip_unit(value, unit, name, *, allow_dimensionless=True):
    """
    Return a float (or array) in ``unit`` from a number or Quantity.

    A Quantity for data without a unit is refused, unless it is
    dimensionless and ``allow_dimensionless``.
    """
    if isinstance(value, u.Quantity):
        if unit is None:
            if (allow_dimensionless
                    and value.unit == u.dimensionless_unscaled):
                return value.value
            raise u.UnitsError(f'{name} has unit {value.unit} but the data '
                               'has no unit')
        try:
            return value.to_value(unit)
        except u.UnitConversionError as exc:
            raise u.UnitsError(f'{name} unit {value.unit} is not '
                               f'convertible to the data unit {unit}') from exc
    return value
