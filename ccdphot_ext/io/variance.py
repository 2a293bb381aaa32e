# Licensed under a 3-clause BSD style license - see LICENSE
"""
The per-pixel variance arrays of a calibrated data product.

A JWST image carries its total variance split by origin: VAR_POISSON (the
photon noise of everything in the pixel, sky and sources), VAR_RNOISE
(read noise) and VAR_FLAT (the flat field's error); HST and JWST images
carry ERR, the total 1-sigma error. `VarianceArrays` holds such arrays: it
*is* the total per-pixel variance (a `~astropy.nddata.VarianceUncertainty`
of their sum, so any astropy tool sees the right uncertainty) and keeps
each named array, so that the error budget can report one term per array
(:ref:`variance-arrays`) instead of modelling the noise.

The arrays are the *total* per-pixel variance: the source's own photon
noise is inside VAR_POISSON (or ERR), never added again from a gain.
"""

import warnings
from types import MappingProxyType

import numpy as np
from astropy.nddata import VarianceUncertainty
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ['VarianceArrays', 'ARRAY_NAMES']

#: The variance arrays known by name, each with what it holds; ERR is a
#: 1-sigma error (its square enters).
ARRAY_NAMES = {
    'VAR_POISSON': 'photon (Poisson) noise of sky and sources',
    'VAR_RNOISE': 'read noise',
    'VAR_FLAT': 'flat-field error',
    'ERR': 'total error (squared)',
}


class VarianceArrays(VarianceUncertainty):
    """
    A total per-pixel variance and the named arrays it is the sum of.

    Parameters
    ----------
    array : array_like, optional
        The total per-pixel variance; None (default): the sum of
        ``arrays``.
    copy : bool, optional
        Whether to copy ``array`` (default True), as
        `~astropy.nddata.VarianceUncertainty`.
    unit : `~astropy.units.UnitBase`, optional
        The variance unit (the data unit squared); None (default): the
        parent NDData's unit squared, as astropy's uncertainties.
    arrays : dict, optional
        The named per-pixel variances, name to array (same shape, same
        unit), e.g. ``{'VAR_POISSON': ..., 'VAR_RNOISE': ...,
        'VAR_FLAT': ...}`` (`ARRAY_NAMES` are the known names). None
        (default): a plain total variance.

    Raises
    ------
    TypeError
        If a name of ``arrays`` is not a non-empty string.
    ValueError
        If the arrays differ in shape from each other or from ``array``.

    Notes
    -----
    Slicing slices every array; copying (`copy.deepcopy`,
    `~astropy.nddata.CCDData.copy`) and pickling keep them. Arithmetic on a
    `~astropy.nddata.CCDData` propagates them where they still describe
    the result and never lets a total pass for a background-only map:

    - with an operand that has no uncertainty (a number, a Quantity, a
      noiseless image: ``ccd.multiply(2.0)``, ``ccd.divide(exptime)``,
      ``ccd.subtract(sky)``), each array is scaled as the total is (times
      the operand squared, divided by it squared, or unchanged);
    - with an operand that has its own uncertainty (``ccd.add(other)``)
      and after a collapsing operation (``ccd.sum(axis=0)``), the arrays'
      split no longer describes the result: the propagated total is kept
      as one total-error array, ``ERR``, with an
      `~astropy.utils.exceptions.AstropyUserWarning`.

    `~astropy.nddata.CCDData.write` saves known uncertainty classes only:
    write ``VarianceUncertainty(ccd.uncertainty.array)`` instead.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext.io.variance import VarianceArrays
    >>> v = VarianceArrays(arrays={'VAR_POISSON': np.full((2, 3), 4.0),
    ...                            'VAR_RNOISE': np.ones((2, 3))})
    >>> v.array[0, 0], sorted(v.arrays)
    (np.float64(5.0), ['VAR_POISSON', 'VAR_RNOISE'])
    >>> v[:, :2].arrays['VAR_RNOISE'].shape
    (2, 2)

    Arithmetic with a number scales every array:

    >>> from astropy.nddata import CCDData
    >>> ccd = CCDData(np.ones((2, 3)), unit='MJy/sr', uncertainty=v)
    >>> ccd.multiply(2.0).uncertainty.arrays['VAR_POISSON'][0, 0]
    np.float64(16.0)
    """

    def __init__(self, array=None, copy=True, unit=None, *, arrays=None):
        if arrays is None and isinstance(array, VarianceArrays):
            arrays = array.arrays  # astropy re-wraps uncertainties it adopts
        named = {}
        for name, values in (arrays or {}).items():
            if not isinstance(name, str) or not name:
                raise TypeError(f'arrays: names must be non-empty strings, '
                                f'got {name!r}')
            named[name] = np.asarray(values, dtype=np.float64)
        shapes = {a.shape for a in named.values()}
        if len(shapes) > 1:
            raise ValueError(f'arrays: every array must have one shape, got '
                             f'{sorted(shapes)}')
        if array is None and named:
            array = sum(named.values())
        elif named and np.shape(getattr(array, 'array', array)) != \
                shapes.pop():
            raise ValueError('arrays: their shape differs from the total '
                             'variance array')
        super().__init__(array, copy=copy, unit=unit)
        self._arrays = MappingProxyType(named)

    @property
    def arrays(self):
        """
        The named per-pixel variances, name to array.

        A read-only mapping; empty for a plain total.
        """
        return self._arrays

    def __getstate__(self):
        # astropy's state (array, unit, parent) and the named arrays, so
        # that copies and pickles (dask workers) keep them
        return (*super().__getstate__(), dict(self._arrays))

    def __setstate__(self, state):
        if len(state) != 4:
            raise TypeError(f'{type(self).__name__}: the state should '
                            f'contain 4 items, got {len(state)}')
        super().__setstate__(tuple(state[:3]))
        self._arrays = MappingProxyType(dict(state[3]))

    def propagate(self, operation, other_nddata, result_data, correlation,
                  axis=None):
        """
        The uncertainty of an arithmetic result, as
        `~astropy.nddata.NDUncertainty.propagate`, with the named arrays
        scaled where they still describe it (an operand without
        uncertainty), else kept as one total array ``ERR`` with a warning.

        Parameters
        ----------
        operation : callable
            The operation on the data (`numpy.add`, `numpy.subtract`,
            `numpy.multiply`, `numpy.true_divide`, or a collapsing one).
        other_nddata : `~astropy.nddata.NDData` or None
            The second operand; None for a collapsing operation.
        result_data : `~astropy.units.Quantity` or ndarray
            The result of the operation on the data.
        correlation : `numpy.ndarray` or number
            The correlation between the operands' uncertainties.
        axis : int or tuple of ints, optional
            The axis of a collapsing operation.

        Returns
        -------
        uncertainty : `VarianceArrays`
            The total variance of the result and its named arrays.
        """
        result = super().propagate(operation, other_nddata, result_data,
                                   correlation, axis=axis)
        other = (None if other_nddata is None
                 else other_nddata.uncertainty)
        noisy = [unc for unc in (self, other)
                 if unc is not None and unc.array is not None]
        named = [unc for unc in noisy if getattr(unc, 'arrays', None)]
        if not named:
            return result
        if other_nddata is not None and len(noisy) == 1:
            return type(self)(result.array, copy=False,
                              arrays=_scaled(named[0], result.array))
        what = ('a collapsing operation' if other_nddata is None else
                f'{operation.__name__} with an operand that has its own '
                'uncertainty')
        warnings.warn(
            f'variance arrays ({", ".join(named[0].arrays)}) after {what}: '
            'their split no longer describes the result; its propagated '
            "total variance is kept as one total-error array, 'ERR' (the "
            'error budget takes it as the total error, the photon noise '
            'of the sources included)', AstropyUserWarning, stacklevel=6)
        return type(self)(result.array, copy=False,
                          arrays={'ERR': result.array})

    def __getitem__(self, item):
        return type(self)(self.array[item], unit=self.unit, copy=False,
                          arrays={k: v[item] for k, v in
                                  self._arrays.items()})

    def __repr__(self):
        names = ', '.join(self._arrays) or 'total only'
        return (f'{type(self).__name__}({names}; shape '
                f'{np.shape(self.array)})')


def _scaled(source, total):
    """The named arrays of ``source`` scaled as its total variance was
    into ``total`` (an operand without uncertainty multiplies every
    variance by one factor per pixel); pixels of zero variance stay 0."""
    before = np.asarray(source.array, dtype=np.float64)
    total = np.asarray(total, dtype=np.float64)
    with np.errstate(invalid='ignore', divide='ignore'):
        factor = np.where(before != 0, total / np.where(before != 0,
                                                        before, 1.0), 0.0)
    return {name: values * factor for name, values in source.arrays.items()}
