# Licensed under a 3-clause BSD style license - see LICENSE
"""
The error budget from a data product's variance arrays.

A frame whose uncertainty is a `~ccdphot_ext.VarianceArrays` (JWST's
VAR_POISSON, VAR_RNOISE and VAR_FLAT; HST's or JWST's ERR) carries its
noise measured by the pipeline that made it. The budget then takes its
terms from the arrays instead of modelling them, each array summed over the
aperture like an uncertainty map (``sum(w_i**2 V_i)``, or ``sum(w_i V_i)``
with ``fractional_variance='linear'``):

==============  ==========================================================
term            from
==============  ==========================================================
``source``      the photon-noise array (VAR_POISSON, else ERR) less its
                sky share: the photon noise of the source itself
``sky``         the photon-noise array's sky share: ``sum(w_i**2)`` times
                the array's median over the frame's usable pixels (the
                photon noise of the background)
``rnoise``      VAR_RNOISE
``flat``        VAR_FLAT
``sky_mean``    the error of the sky level, as for any frame
==============  ==========================================================

Any other array ``VAR_X`` gives a term ``x``. The arrays are the total
per-pixel variance: no source term is added from a gain, and nothing is
counted twice. With blank-sky aperture noise (``noise=``) the background
and, on a frame whose neighbouring pixels' noise is correlated (a
resampled frame: resampling correlates the source's photon noise as it
does the sky's), the source share are multiplied by the model's
correlation ratio ``R(N) = sigma(N)**2 / (N sigma1**2)``
(`~ccdphot_ext.ApertureNoise.variance_ratio`, measured on blank sky
against the arrays' own variance): the arrays keep each aperture's depth
and the model adds the covariance they leave out. VAR_FLAT stays.

The split of the photon-noise array is exact in total and approximate in
its parts where the background's photon noise changes across the frame
(a mosaic of uneven depth): the budget's notes say how it was made.
"""

from dataclasses import dataclass

import numpy as np

from ..background.noise import FLAT_ARRAY as _FLAT

__all__ = []  # internal module: the rules are documented in the budget

#: The arrays holding photon noise, split between source and sky: the
#: first present is used.
PHOTON_ARRAYS = ('VAR_POISSON', 'ERR')



def array_term_name(array):
    """
    The budget term of a variance array other than the photon-noise one:
    ``'VAR_RNOISE'`` -> ``'rnoise'``, ``'VAR_FLAT'`` -> ``'flat'``.

    Examples
    --------
    >>> from ccdphot_ext.photometry.arrayterms import array_term_name
    >>> array_term_name('VAR_RNOISE'), array_term_name('VAR_FLAT')
    ('rnoise', 'flat')
    """
    name = array.lower()
    return name[4:] if name.startswith('var_') else name


def photon_sky_level(frame):
    """
    ``(array name, level)``: the photon-noise array of a frame with
    variance arrays and its median over the usable pixels (unmasked,
    finite), the photon-noise variance of the background per pixel; None
    when the frame has no such array.
    """
    arrays = frame.variance_arrays or {}
    for name in PHOTON_ARRAYS:
        if name in arrays:
            values = arrays[name]
            good = np.isfinite(values) & np.isfinite(frame.data)
            if frame.mask is not None:
                good &= ~frame.mask
            level = float(np.median(values[good])) if good.any() else 0.0
            return name, level
    return None


@dataclass(frozen=True)
class ArrayBudget:
    """
    The budget terms of many rows taken from variance arrays.

    Attributes
    ----------
    source, sky, flat : ndarray or None
        The source and sky shares of the photon-noise array and VAR_FLAT
        (None when absent).
    extra : dict
        Further terms, name -> ndarray (``rnoise``, ...).
    origins : dict
        Term name -> where it came from, in words (for ``meta`` and the
        budget's notes).
    """

    source: np.ndarray | None
    sky: np.ndarray | None
    flat: np.ndarray | None
    extra: dict
    origins: dict

    @property
    def notes(self):
        """One note per term: ``'var_source: VAR_POISSON ...'``."""
        return tuple(f'{name}: {origin}' for name, origin in
                     self.origins.items())


def array_budget(sums, noise_pix, photon_level, *, ratio=None,
                 source_ratio=None, noise_note=None):
    """
    The budget terms of many rows from their variance-array sums.

    Parameters
    ----------
    sums : dict
        Array name -> per-row ``sum(w_i**2 V_i)`` (or ``sum(w_i V_i)``).
    noise_pix : array_like
        Per row ``sum(w_i**2)`` (or ``n_pix``), the pixels the sky share
        adds up over.
    photon_level : (str, float) or None
        `photon_sky_level` of the frame.
    ratio : array_like, optional
        Per row, the blank-sky correlation ratio ``R(N)``
        (`~ccdphot_ext.ApertureNoise.variance_ratio`) that multiplies the
        background terms (all but the source share and VAR_FLAT).
    source_ratio : array_like, optional
        Per row, the ratio that multiplies the source share (with
        ``ratio``; None: 1).
    noise_note : str, optional
        Where ``ratio`` came from.

    Returns
    -------
    budget : `ArrayBudget`

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext.photometry.arrayterms import array_budget
    >>> b = array_budget({'VAR_POISSON': np.array([30.0]),
    ...                   'VAR_RNOISE': np.array([5.0])},
    ...                  np.array([10.0]), ('VAR_POISSON', 2.0))
    >>> b.source.tolist(), b.sky.tolist(), b.extra['rnoise'].tolist()
    ([10.0], [20.0], [5.0])
    """
    noise_pix = np.asarray(noise_pix, float)
    origins, extra = {}, {}
    source = sky = flat = None
    if photon_level is not None and photon_level[0] in sums:
        name, level = photon_level
        total = np.asarray(sums[name], float)
        with np.errstate(invalid='ignore'):
            sky = np.minimum(total, noise_pix * level)
        source = total - sky
        origins['source'] = (f'{name}, source share: sum over the aperture '
                             f'less the sky share')
        origins['sky'] = (f'{name}, sky share: the sum of squared weights '
                          f'times the median {name} of the frame '
                          f'({level:.6g} per pixel)')
    for array, values in sums.items():
        if photon_level is not None and array == photon_level[0]:
            continue
        if array == _FLAT:
            flat = np.asarray(values, float)
            origins['flat'] = _FLAT
        else:
            extra[array_term_name(array)] = np.asarray(values, float)
            origins[array_term_name(array)] = array
    if ratio is not None:
        ratio = np.asarray(ratio, float)
        scaled = f' times R(N) of {noise_note or "blank-sky aperture noise"}'
        extra = {name: values * ratio for name, values in extra.items()}
        names = list(extra) + (['sky'] if sky is not None else [])
        if sky is not None:
            sky = sky * ratio
        if source is not None and source_ratio is not None:
            source = source * np.asarray(source_ratio, float)
            if not np.all(np.asarray(source_ratio) == 1.0):
                names.append('source')
        for name in names:
            origins[name] += scaled
    return ArrayBudget(source, sky, flat, extra, origins)
