# Licensed under a 3-clause BSD style license - see LICENSE
"""
The curve of growth: the flux in an aperture scaled up and down, and the
aperture correction it gives.
"""

import math

import numpy as np
from astropy.table import QTable

from ..aperture.utils import aperture_size, scaled_aperture
from ..photometry.measurement import measure
from ..utils.warnonce import warn_once

__all__ = ['growth_curve', 'GROWTH_SCALES']

#: Aperture scale factors of the curve of growth measured by `growth_curve`
#: and `~ccdphot_ext.systematics_report` (its largest scale gives the
#: aperture correction).
GROWTH_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)


def growth_curve(data, aperture, sky, *, scales=GROWTH_SCALES, **kwargs):
    """
    Flux in the aperture scaled by each of ``scales`` (curve of growth).

    Parameters
    ----------
    data, sky
        As in `measure`.
    aperture : `BoxAperture`, or photutils Circular-, Elliptical- or RectangularAperture
        One position; every linear size is multiplied by each scale.
    scales : sequence of float, optional
        Positive scale factors (1 is the aperture itself).
    **kwargs
        Passed to `measure` (``gain``, ``uncertainty``, ...).

    Returns
    -------
    table : `~astropy.table.QTable`
        ``scale``, ``size`` (box width, radius, semi-major axis or width),
        ``n_pix``, ``flux``, ``flux_err``, ``var_sky``, ``var_source``,
        ``var_sky_mean`` and ``flags``, in increasing scale.
    """
    scales = np.sort(np.atleast_1d(np.asarray(scales, dtype=float)))
    if scales.ndim != 1 or not np.all(np.isfinite(scales)) or np.any(
            scales <= 0):
        raise ValueError('scales must be positive finite numbers')
    rows = []
    with warn_once():  # each scale would repeat the same warnings
        for s in scales:
            ap = scaled_aperture(aperture, float(s))
            res = measure(data, ap, sky, **kwargs)
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
