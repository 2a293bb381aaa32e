# Licensed under a 3-clause BSD style license - see LICENSE
"""
Is a frame's uncertainty the noise of its data?

A per-pixel uncertainty read from a file (an ERR extension, the variance
arrays of a data product, an ``uncertainty=`` map) is taken as the noise
of every aperture sum. A map that is not the data's noise makes every
error bar wrong by the same factor: an ERR holding the variance instead of
the sigma, an ERR in the wrong units or scaled, a VAR_POISSON left at
zero, an integer placeholder of ones. The frame itself says so: its sky
pixels scatter by the sky estimate's measured standard deviation
(``SkyEstimate.std``, robust, the sources masked), and on those pixels the
map's sigma must agree with it.

`check_uncertainty_scale` compares the two where a frame's uncertainty is
first used for photometry (`~ccdphot_ext.photometer`,
`~ccdphot_ext.measure`): the ratio of the measured sky scatter to the
median sigma of the map over the sky pixels (those within three measured
sigma of the sky level). Outside ``[1 / UNCERTAINTY_RATIO_LIMIT,
UNCERTAINTY_RATIO_LIMIT]`` it warns, naming the arrays and the ratio.
Noise, a moderately crowded field, a drizzled frame (whose per-pixel
scatter is that of its per-pixel ERR) and the correlation of resampled
pixels stay well inside; the faults above give ratios of 0.24 to 18.
"""

import math
import warnings

import numpy as np
from astropy.stats import mad_std
from astropy.utils.exceptions import AstropyUserWarning

__all__ = []  # internal module: the rule is documented on the calibrated page

#: A measured sky scatter this many times above or below the map's median
#: sigma over the sky pixels is warned about.
UNCERTAINTY_RATIO_LIMIT = 2.0

#: Fewer sky pixels than this: no check (too few to tell).
_MIN_SKY_PIXELS = 100


def _map_name(frame, explicit):
    """The uncertainty in words, for the warning."""
    if explicit:
        return 'the uncertainty= map'
    if frame.variance_arrays:
        names = ' + '.join(frame.variance_arrays)
        return f'the variance arrays ({names}) of the frame'
    return "the frame's uncertainty"


def uncertainty_scale_ratio(frame, sky):
    """
    ``(ratio, n)``: the robust standard deviation (`~astropy.stats.mad_std`)
    of the frame's pixels less the sky level, each divided by its 1-sigma
    from ``frame.uncertainty``, over the usable pixels (the sources, a
    minority, do not move a median absolute deviation), and how many
    pixels that is: 1 when the map is the data's noise, however uneven the
    depth. None when the frame has no uncertainty, the sky was not
    measured (a `~ccdphot_ext.SkyEstimate` given by numbers) or too few
    pixels are usable.
    """
    if frame.uncertainty is None or sky.method == 'user':
        return None
    level = np.asarray(sky.value, dtype=float)
    level = level[np.isfinite(level)]
    if level.size == 0:
        return None
    good = (np.isfinite(frame.data) & np.isfinite(frame.uncertainty)
            & (frame.uncertainty > 0))
    if frame.mask is not None:
        good &= ~frame.mask
    n = int(np.count_nonzero(good))
    if n < _MIN_SKY_PIXELS:
        return None
    z = (frame.data[good] - float(np.median(level))) / frame.uncertainty[good]
    ratio = float(mad_std(z))
    if not (math.isfinite(ratio) and ratio > 0):
        return None
    return ratio, n


def check_uncertainty_scale(frame, sky, *, explicit=False):
    """
    Warn when ``frame``'s uncertainty disagrees with its measured sky
    scatter beyond `UNCERTAINTY_RATIO_LIMIT`; return the note said (for
    the table's ``meta['notes']``), else None.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame, its uncertainty as a 1-sigma map.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky estimate of the measurement (its measured ``std``).
    explicit : bool, optional
        Whether the uncertainty was given as ``uncertainty=`` (for the
        wording).

    Returns
    -------
    note : str or None
        The warning's text when it warned.
    """
    found = uncertainty_scale_ratio(frame, sky)
    if found is None:
        return None
    ratio, n = found
    if 1.0 / UNCERTAINTY_RATIO_LIMIT <= ratio <= UNCERTAINTY_RATIO_LIMIT:
        return None
    way = 'too small' if ratio > 1 else 'too large'
    note = (f'uncertainty check: {_map_name(frame, explicit)} is not the '
            f'noise of the data: the pixels less the sky scatter {ratio:.3g} '
            f'times their sigma (robust, {n} pixels; 1 expected), so the '
            f'error bars are about {way} by that '
            'factor (an ERR holding a variance, another unit or scale, an '
            'empty VAR_POISSON?); check the file, or pass the right '
            'uncertainty= (or none: the budget then measures the sky noise)')
    warnings.warn(note, AstropyUserWarning, stacklevel=4)
    return note
