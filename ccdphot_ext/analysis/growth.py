# Licensed under a 3-clause BSD style license - see LICENSE
"""
The curve of growth: the flux in an aperture scaled up and down, and the
aperture correction it gives.
"""

import math

import numpy as np
from astropy.table import QTable

from ..aperture.utils import aperture_size, check_extent, scaled_aperture
from ..background.skylift import sky_for_apertures
from ..photometry.measurement import measure
from ..utils.inputs import as_frame
from ..utils.numbers import positive_scalar
from ..utils.warnonce import warn_once

__all__ = ['growth_curve', 'GROWTH_SCALES']

#: Aperture scale factors of the curve of growth measured by `growth_curve`
#: and `~ccdphot_ext.systematics_report` (its largest scale gives the
#: aperture correction).
GROWTH_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


def growth_curve(data, aperture, sky, *, scales=GROWTH_SCALES, **kwargs):
    """
    Measure the flux in the aperture scaled by each of ``scales``.

    This is the curve of growth: one `~ccdphot_ext.measure` per scale,
    each warning said once.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
        The processed 2-D frame, sky not subtracted (as in
        `~ccdphot_ext.measure`: a `~astropy.nddata.CCDData`'s uncertainty,
        mask, unit and header are used).
    aperture : `~ccdphot_ext.BoxAperture` or photutils aperture
        A box, or a photutils circular, elliptical or rectangular pixel
        aperture (not an annulus); only its first position is used. Every
        linear size is multiplied by each scale, the rotation kept.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted from every scaled aperture: one level or a 2-D
        map, in the data unit. The same level at every scale: a
        whole-frame level without the star's light in the largest
        aperture, unless ``sky_without_apertures=False`` is passed
        (:ref:`sky-apertures`).
    scales : sequence of float, optional
        The positive scale factors (1 is the aperture itself; default
        `GROWTH_SCALES`, 0.5 to 3). Measured in increasing order.
    **kwargs
        Passed to `~ccdphot_ext.measure` for every scale: ``gain``,
        ``noise``, ``threshold``, ``detector``, ``budget``,
        ``sum_method``, ``subpixels``, ``uncertainty``, ``mask`` and
        ``sky_without_apertures``.

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per scale, in increasing scale: ``scale``, ``size`` (box
        width, radius, semi-major axis or rectangle width, in pixels),
        ``n_pix``, ``flux``, ``flux_err``, the variance terms ``var_sky``
        (the background-map term for a map sky), ``var_source`` and
        ``var_sky_mean`` (0 where the budget has no such term), and
        ``flags``.

    Raises
    ------
    TypeError
        If the aperture has no size to scale, or a keyword is not one of
        `~ccdphot_ext.measure`'s.
    ValueError
        If a scale is not positive and finite or makes the aperture far
        larger than the frame, or `~ccdphot_ext.measure` refuses an
        input.
    """
    try:
        scales = np.sort(np.atleast_1d(np.asarray(scales, dtype=float)))
    except (TypeError, ValueError):
        scales = None  # text: named below, not by numpy
    if (scales is None or scales.ndim != 1 or not scales.size
            or not np.all(np.isfinite(scales)) or np.any(scales <= 0)):
        raise ValueError('scales must be positive finite numbers (at least '
                         'one)')
    scales = [positive_scalar(s, 'scales') for s in scales]
    remeasure = kwargs.pop('sky_without_apertures', True)
    rows = []
    with warn_once():  # each scale would repeat the same warnings
        shape = as_frame(data).shape
        for s in scales:
            check_extent(scaled_aperture(aperture, float(s)), shape,
                         'scales', hint=f'the scale {s:g}')
        # one level for every scale: without the star's light in the
        # largest aperture (measure's default), or as given
        sky = sky_for_apertures(sky, data,
                                scaled_aperture(aperture, float(scales[-1])),
                                remeasure)
        for s in scales:
            ap = scaled_aperture(aperture, float(s))
            res = measure(data, ap, sky, sky_without_apertures=False,
                          **kwargs)
            t = res.budget.terms
            rows.append((float(s), aperture_size(ap)[0], res.n_pix, res.flux,
                         res.flux_err, t.get('sky', t.get('map', 0.0)),
                         t.get('source', 0.0), t.get('sky_mean', 0.0),
                         res.flags))
    return QTable(rows=rows, names=('scale', 'size', 'n_pix', 'flux',
                                    'flux_err', 'var_sky', 'var_source',
                                    'var_sky_mean', 'flags'))


def aperture_correction(curve):
    """
    ``F(largest scale) / F(aperture)`` of a `growth_curve` table and the
    error of the ring between them over ``F(aperture)`` (NaN when the
    aperture is not among the scales or its flux is not positive).
    """
    scales = np.asarray(curve['scale'])
    ref = np.flatnonzero(np.isclose(scales, 1.0))
    if ref.size == 0 or scales[-1] <= 1.0:
        return math.nan, math.nan
    i, j = int(ref[0]), len(scales) - 1
    f_ap = float(curve['flux'][i])
    if f_ap <= 0:
        return math.nan, math.nan
    dn = float(curve['n_pix'][j] - curve['n_pix'][i])
    var_ring = (float(curve['var_sky'][j] - curve['var_sky'][i])
                + float(curve['var_source'][j] - curve['var_source'][i]))
    n_j = float(curve['n_pix'][j])
    if n_j > 0 and curve['var_sky_mean'][j] > 0:
        error_on_mean_sq = float(curve['var_sky_mean'][j]) / n_j ** 2
        var_ring += dn ** 2 * error_on_mean_sq
    return (float(curve['flux'][j]) / f_ap,
            math.sqrt(max(var_ring, 0.0)) / f_ap)
