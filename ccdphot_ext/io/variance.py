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

from types import MappingProxyType

import numpy as np
from astropy.nddata import VarianceUncertainty

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
    Slicing slices every array. Arithmetic on a `~astropy.nddata.CCDData`
    propagates the total only (the arrays no longer describe the result).
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

    def __getitem__(self, item):
        return type(self)(self.array[item], unit=self.unit, copy=False,
                          arrays={k: v[item] for k, v in
                                  self._arrays.items()})

    def __repr__(self):
        names = ', '.join(self._arrays) or 'total only'
        return (f'{type(self).__name__}({names}; shape '
                f'{np.shape(self.array)})')
