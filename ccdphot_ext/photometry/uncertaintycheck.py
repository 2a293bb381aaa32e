# Licensed under a 3-clause BSD style license - see LICENSE
"""
Is a frame's uncertainty the noise of its data?

A per-pixel uncertainty read from a file (an ERR extension, the variance
arrays of a data product, an ``uncertainty=`` map) is taken as the noise
of every aperture sum. A map that is not the data's noise makes every
error bar wrong by the same factor: an ERR holding the variance instead of
the sigma, an ERR in the wrong units or scaled, a VAR_POISSON left at
zero, an integer placeholder of ones. The frame itself says so: its
pixels, each divided by its sigma from the map, must scatter by 1
(robustly: the sources, a minority of the pixels, do not move a median
absolute deviation; a frame of uneven depth is judged pixel by pixel).
A map too large is told by the pixels less the sky level (a sloping sky
only adds scatter), a map too small by the differences of pixels two
columns apart (which hold no smooth background; the correlation of
resampled pixels only lowers them).

`check_uncertainty_scale` measures that scatter where a frame's
uncertainty is first used for photometry (`~ccdphot_ext.photometer`,
`~ccdphot_ext.measure`, `~ccdphot_ext.optimal_extraction`), with
`uncertainty_scale_ratio`. Outside
``[1 / UNCERTAINTY_RATIO_LIMIT, UNCERTAINTY_RATIO_LIMIT]`` it warns,
naming the arrays and the ratio. The faults above give ratios of 0.24 to
18; a right map on a sky sloping by 6 pixel sigma, or on a drizzled or
smoothed frame, is not warned about.

The sky's pixels cannot tell whether the sources' photon noise is there:
a VAR_POISSON left at zero scores only 1.8 (the sky's photon noise is
missing, its read noise is not), one holding the sky's photon noise
alone scores 1.1, and bright stars' pulls spread by 1.9 and 1.2. The
photon-noise array (VAR_POISSON, else ERR) of a frame's variance arrays
is therefore also asked whether it rises with the signal
(`photon_array_rise`): on the pixels more than `SOURCE_NSIGMA` sigma
above the sky, photons are many more than on the sky, and so must be
their variance. When its median there is no larger than on the sky, the
check warns that the sources' photon noise is missing. A right array
always rises there (by ``signal / gain``), so the rule needs no gain and
cannot fire on it.

An uncertainty map (not variance arrays) is asked the converse: does it
hold the sources' photon noise? ccdproc's ``create_deviation`` map, the
usual uncertainty of a `~astropy.nddata.CCDData`, does: taken as the
background noise alone (``uncertainty_model='background'``, the default)
the stars' photon noise would be counted twice, once in the map and once
as ``F / g``. A map's variance that rises with the signal, pixel against
pixel, by ``1 / gain`` per data unit (`map_photon_rise`: pairs of pixels
`PAIR_OFFSET` apart whose data differ by more than `SOURCE_NSIGMA` times
their sigma, a star's core against its wing or the sky beside it; a map
of the background alone, constant or smooth or following the depth of a
mosaic, does not change across a few pixels) by at least
`MAP_RISE_FRACTION` of it, well above the map's own noise, is the total
error: `resolve_uncertainty_model` then takes it as such (``'total'``)
and warns. Without a gain no source term is added, so nothing is counted
twice and the map is not asked.
"""

import math
import warnings
from dataclasses import replace

import numpy as np
from astropy.stats import mad_std
from astropy.utils.exceptions import AstropyUserWarning

from ..utils.stats import MEDIAN_EFFICIENCY
from .arrayterms import photon_sky_level

__all__ = []  # internal module: the rule is documented on the calibrated page

#: Pixels that scatter this many times more than their sigma (their
#: differences), or this many times less (less the sky level), are warned
#: about.
UNCERTAINTY_RATIO_LIMIT = 2.0

#: Fewer sky pixels than this: no check (too few to tell).
_MIN_SKY_PIXELS = 100

#: The source pixels of `photon_array_rise`: this many times the median
#: pixel sigma above the sky level.
SOURCE_NSIGMA = 20.0

#: Fewer source pixels than this: the photon-noise array is not asked.
_MIN_SOURCE_PIXELS = 10

#: The pixel pairs of `map_photon_rise`: this many pixels apart along a
#: row or a column (a star's core against its wing: the depth of a frame
#: does not change across them).
PAIR_OFFSET = 4

#: An uncertainty map whose variance rises with the signal by at least
#: this fraction of ``1 / gain`` (`map_photon_rise`) holds the sources'
#: photon noise: it is the total error.
MAP_RISE_FRACTION = 0.5

#: ... and whose median rise on the pairs is this many times its own
#: noise (the map's scatter on quiet pairs over the square root of their
#: number).
MAP_RISE_NSIGMA = 5.0

#: Quiet pairs used for the map's own scatter (at most, evenly spaced).
_MAX_QUIET_PAIRS = 200_000


def _map_name(frame, explicit):
    """
    The uncertainty in words, for the warning.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    explicit : bool
        Whether the uncertainty was given as ``uncertainty=``.

    Returns
    -------
    name : str
    """
    if explicit:
        return 'the uncertainty= map'
    if frame.variance_arrays:
        names = ' + '.join(frame.variance_arrays)
        return f'the variance arrays ({names}) of the frame'
    return "the frame's uncertainty"


def uncertainty_scale_ratio(frame, sky):
    """
    ``(low, high, n)``: two robust standard deviations
    (`~astropy.stats.mad_std`) of the frame's usable pixels in units of
    their sigma from ``frame.uncertainty``, each 1 when the map is the
    data's noise, however uneven the depth (the sources, a minority of the
    pixels, do not move a median absolute deviation), and how many pixels
    there are. ``low``: of the pixels less the sky's median level, which a
    sloping or varying sky can only raise (so a ``low`` below 1 is not the
    sky's doing). ``high``: of the differences of pixels two columns
    apart (over ``sqrt(s_1**2 + s_2**2)``), which hold no smooth
    background and which the positive correlation of neighbouring pixels
    (a resampled or smoothed frame) can only lower (so a ``high`` above 1
    is not the correlation's doing). None when the frame has no
    uncertainty, the sky was not measured (a `~ccdphot_ext.SkyEstimate`
    given by numbers) or too few pixels are usable.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame, its uncertainty as a 1-sigma map.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky of the measurement (its level).

    Returns
    -------
    found : tuple of (float, float, int) or None
    """
    if frame.uncertainty is None or sky.method == 'user':
        return None
    level = np.asarray(sky.value, dtype=float)
    level = level[np.isfinite(level)]
    if level.size == 0:
        return None
    data, sigma, good = _usable(frame)
    n = int(np.count_nonzero(good))
    pair = good[:, 2:] & good[:, :-2]
    if n < _MIN_SKY_PIXELS or np.count_nonzero(pair) < _MIN_SKY_PIXELS:
        return None
    low = float(mad_std((data[good] - float(np.median(level)))
                        / sigma[good]))
    high = float(mad_std((data[:, 2:][pair] - data[:, :-2][pair])
                         / np.hypot(sigma[:, 2:][pair], sigma[:, :-2][pair])))
    if not all(math.isfinite(r) and r > 0 for r in (low, high)):
        return None
    return low, high, n


def _usable(frame):
    """
    The frame's data and sigma as floats, and its usable pixels.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame, its uncertainty as a 1-sigma map.

    Returns
    -------
    data, sigma : `~numpy.ndarray`
        float64.
    good : `~numpy.ndarray` of bool
        Finite, a positive sigma, not masked.
    """
    data = np.asarray(frame.data, dtype=float)
    sigma = np.asarray(frame.uncertainty, dtype=float)
    good = np.isfinite(data) & np.isfinite(sigma) & (sigma > 0)
    if frame.mask is not None:
        good &= ~frame.mask
    return data, sigma, good


def photon_array_rise(frame, sky):
    """
    ``(name, rise, n)``: the photon-noise array of a frame's variance
    arrays (`~ccdphot_ext.photometry.arrayterms.photon_sky_level`); the
    median of its excess over its sky median on the source pixels (more
    than `SOURCE_NSIGMA` times the median pixel sigma above the sky's
    median level) over their median signal, ``1 / gain`` for a right
    array (electrons per data unit), 0 for an array without the sources'
    photon noise; and how many source pixels there are. None when the
    frame has no photon-noise array, no finite sky level, or fewer than
    `_MIN_SOURCE_PIXELS` source pixels.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame, with its variance arrays.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky of the measurement (its level).

    Returns
    -------
    found : tuple of (str, float, int) or None
    """
    found = photon_sky_level(frame)
    if found is None:
        return None
    name, level = found
    sky_level = np.asarray(sky.value, dtype=float)
    sky_level = sky_level[np.isfinite(sky_level)]
    if sky_level.size == 0:
        return None
    data, sigma, good = _usable(frame)
    signal = data - float(np.median(sky_level))
    source = good & (signal > SOURCE_NSIGMA * float(np.median(sigma[good])))
    n = int(np.count_nonzero(source))
    if n < _MIN_SOURCE_PIXELS:
        return None
    excess = frame.variance_arrays[name][source] - level
    return name, float(np.median(excess) / np.median(signal[source])), n


def map_photon_rise(frame, gain):
    """
    ``(rise, significance, n)``: how an uncertainty map's variance rises
    with the signal. On the pairs of usable pixels `PAIR_OFFSET` apart
    along a row or a column whose data differ by more than
    `SOURCE_NSIGMA` times ``sqrt(2)`` times the median pixel sigma: the
    median of the variance difference over the data difference (brighter
    less fainter), times ``gain`` (1 for a map holding the photon noise
    of the signal, 0 for a map of the background alone); the median
    variance difference over its own noise (``sqrt(pi / 2) * mad_std`` of the
    variance differences of the other, quiet pairs over ``sqrt(n)``); and
    the number of pairs. None when the frame has no uncertainty map (no
    map, or variance arrays), ``gain`` is None, or fewer than
    `_MIN_SOURCE_PIXELS` pairs differ enough.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame, its uncertainty as a 1-sigma map.
    gain : float or None
        Electrons per data unit.

    Returns
    -------
    found : tuple of (float, float, int) or None
    """
    if frame.uncertainty is None or frame.variance_arrays or gain is None:
        return None
    data, sigma, good = _usable(frame)
    if not good.any():
        return None
    variance = sigma * sigma
    cut = SOURCE_NSIGMA * math.sqrt(2.0) * float(np.median(sigma[good]))
    k = PAIR_OFFSET
    steps, rises, quiet = [], [], []
    for a, b in ((np.s_[:, k:], np.s_[:, :-k]), (np.s_[k:, :], np.s_[:-k, :])):
        pair = good[a] & good[b]
        step = (data[a] - data[b])[pair]
        rise = (variance[a] - variance[b])[pair]
        big = np.abs(step) > cut
        steps.append(np.abs(step[big]))
        rises.append(rise[big] * np.sign(step[big]))
        quiet.append(rise[~big])
    steps, rises, quiet = (np.concatenate(x) for x in (steps, rises, quiet))
    n = steps.size
    if n < _MIN_SOURCE_PIXELS or quiet.size < _MIN_SKY_PIXELS:
        return None
    quiet = quiet[::max(1, quiet.size // _MAX_QUIET_PAIRS)]
    noise = MEDIAN_EFFICIENCY * float(mad_std(quiet)) / math.sqrt(n)
    median_rise = float(np.median(rises))
    significance = (math.inf if noise == 0 and median_rise > 0
                    else 0.0 if noise == 0 else median_rise / noise)
    return float(gain * np.median(rises / steps)), significance, n


def map_holds_photon_noise(frame, gain):
    """
    ``(rise, n)`` of `map_photon_rise` when the frame's uncertainty map
    holds the sources' photon noise (a rise of at least
    `MAP_RISE_FRACTION`, at least `MAP_RISE_NSIGMA` times its noise),
    else None.

    Parameters
    ----------
    frame, gain
        As in `map_photon_rise`.

    Returns
    -------
    found : tuple of (float, int) or None
    """
    found = map_photon_rise(frame, gain)
    if found is None:
        return None
    rise, significance, n = found
    if rise >= MAP_RISE_FRACTION and significance >= MAP_RISE_NSIGMA:
        return rise, n
    return None


def resolve_uncertainty_model(frame, detector, options, *, noise=None):
    """
    The `~ccdphot_ext.BudgetOptions` a measurement uses, and the warning
    said (None if none): ``options`` as given, or with
    ``uncertainty_model='total'`` when they say ``'background'`` of an
    uncertainty map that holds the sources' photon noise
    (`map_photon_rise`: a rise of at least `MAP_RISE_FRACTION`, at least
    `MAP_RISE_NSIGMA` times its noise), which warns. A map the blank-sky
    noise model replaces (``noise``) is not asked.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame measured.
    detector : `~ccdphot_ext.DetectorParameters`
        Resolved against the frame (its ``gain`` in electrons per data
        unit).
    options : `~ccdphot_ext.BudgetOptions`
        The budget options given.
    noise : `~ccdphot_ext.ApertureNoise`, optional
        The blank-sky noise model of the measurement.

    Returns
    -------
    options : `~ccdphot_ext.BudgetOptions`
        The options the budget uses.
    note : str or None
        The warning's text, for the notes.
    """
    if options.uncertainty_model == 'total' or noise is not None:
        return options, None
    found = map_holds_photon_noise(frame, detector.gain)
    if found is None:
        return options, None
    rise, n = found
    note = (f'uncertainty check: the uncertainty map holds the sources\' '
            'photon noise (a total error, as ccdproc\'s create_deviation '
            f'makes): its variance rises with the signal by {rise:.3g} / '
            f'gain ({n} pixel pairs, gain {detector.gain:.6g}), so it is '
            "taken as the total per-pixel error (uncertainty_model='total':"
            ' no separate source term; as background noise the stars\' '
            "photon noise would be counted twice). Pass "
            "budget=BudgetOptions(uncertainty_model='total') (ccdphot "
            'measure --uncertainty-model total) to say so, or give a map '
            'of the background noise alone')
    warnings.warn(note, AstropyUserWarning, stacklevel=4)
    return replace(options, uncertainty_model='total'), note


def _photon_note(frame, sky):
    """
    The warning's text when the photon-noise array does not rise with the
    signal (`photon_array_rise`).

    Parameters
    ----------
    frame, sky
        As in `photon_array_rise`.

    Returns
    -------
    note : str or None
        None when it rises, or nothing could be checked.
    """
    found = photon_array_rise(frame, sky)
    if found is None or not found[1] <= 0:
        return None
    name, _, n = found
    return (f'uncertainty check: the photon-noise array {name} of the '
            f'frame does not rise with the signal: on its {n} pixels more '
            f'than {SOURCE_NSIGMA:g} sigma above the sky it holds no more '
            'than on the sky, so no error bar holds the sources\' photon '
            'noise and those of stars bright against the sky are too '
            f'small (a {name} left at zero, or holding the sky alone?); '
            'check the file, or pass uncertainty= and gain= (the budget '
            'then adds the source term)')


def check_uncertainty_scale(frame, sky, *, explicit=False):
    """
    Warn when ``frame``'s uncertainty disagrees with its measured sky
    scatter beyond `UNCERTAINTY_RATIO_LIMIT`, or its photon-noise array
    does not rise with the signal (`photon_array_rise`); return the note
    said (for the table's ``meta['notes']``), else None.

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
    note = _scale_note(frame, sky, explicit)
    if note is None:
        note = _photon_note(frame, sky)
    if note is None:
        return None
    warnings.warn(note, AstropyUserWarning, stacklevel=4)
    return note


def _scale_note(frame, sky, explicit):
    """
    The warning's text when the pixels scatter beyond
    `UNCERTAINTY_RATIO_LIMIT` times their sigma
    (`uncertainty_scale_ratio`).

    Parameters
    ----------
    frame, sky
        As in `uncertainty_scale_ratio`.
    explicit : bool
        Whether the uncertainty was given as ``uncertainty=``.

    Returns
    -------
    note : str or None
        None when the scatter is within the limit, or nothing could be
        checked.
    """
    found = uncertainty_scale_ratio(frame, sky)
    if found is None:
        return None
    low, high, n = found
    if high > UNCERTAINTY_RATIO_LIMIT:
        ratio = high
    elif low < 1.0 / UNCERTAINTY_RATIO_LIMIT:
        ratio = low
    else:
        return None
    way = 'too small' if ratio > 1 else 'too large'
    return (f'uncertainty check: {_map_name(frame, explicit)} is not the '
            f'noise of the data: the pixels scatter {ratio:.3g} '
            f'times their sigma (robust, {n} pixels; 1 expected), so the '
            f'error bars are about {way} by that '
            'factor (an ERR holding a variance, another unit or scale, an '
            'empty VAR_POISSON?); check the file, or pass the right '
            'uncertainty= (or none: the budget then measures the sky noise)')
