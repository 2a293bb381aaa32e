# Licensed under a 3-clause BSD style license - see LICENSE
"""
Photometric zero points carried by a header.

Calibrated products say how their count rates become physical fluxes:

================  ===========================================  ==========
keywords          zero point of ``-2.5 log10(rate)``            system
================  ===========================================  ==========
PHOTFLAM,         ``-2.5 log10(PHOTFLAM) - 5 log10(PHOTPLAM)    AB
PHOTPLAM          - 2.408`` (HST: PHOTFLAM in erg/s/cm²/Å per
                  unit rate, PHOTPLAM the pivot wavelength in Å)
PHOTFLAM,         ``-2.5 log10(PHOTFLAM) + PHOTZPT``            ST
PHOTZPT           (PHOTZPT = -21.10)
PHOTMJSR,         ``-2.5 log10(PHOTMJSR * 1e6 * PIXAR_SR /      AB
PIXAR_SR          3631)`` (JWST count rates: PHOTMJSR in MJy/sr
                  per DN/s)
================  ===========================================  ==========

These apply to counts and count rates (a count sum is divided by the
exposure time first). Data already in a flux density or a surface
brightness need no zero point: their magnitudes are AB from the flux
itself (`~ccdphot_ext.photometry.magnitudes`).
"""

import math

__all__ = ['ZEROPOINT_KEYWORDS', 'header_zeropoint']

#: The zero-point keywords, in the order they are tried.
ZEROPOINT_KEYWORDS = (('PHOTFLAM', 'PHOTPLAM'), ('PHOTFLAM', 'PHOTZPT'),
                      ('PHOTMJSR', 'PIXAR_SR'))

#: AB magnitude of a flux density of 1 erg/s/cm²/Hz: -2.5 log10(3631 Jy)
#: in those units is 48.60; per wavelength at a pivot wavelength L [Å],
#: f_nu = f_lambda L**2 / c, which gives the -2.408 of the PHOTFLAM rule.
_AB_PHOTFLAM = -2.408


def _number(meta, key):
    try:
        value = float(meta[key])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def header_zeropoint(meta):
    """
    The zero point of count-rate magnitudes from header keywords.

    Parameters
    ----------
    meta : dict-like or None
        The header.

    Returns
    -------
    (zeropoint, source, system) or None
        ``source`` names the keywords (``'PHOTFLAM, PHOTPLAM'``),
        ``system`` is ``'AB'`` or ``'ST'``; None when no rule applies.

    Examples
    --------
    >>> from ccdphot_ext.io.zeropoints import header_zeropoint
    >>> zp, source, system = header_zeropoint({'PHOTFLAM': 1.5e-19,
    ...                                        'PHOTPLAM': 5887.0})
    >>> print(f'{zp:.3f}', source, system)
    25.802 PHOTFLAM, PHOTPLAM AB
    """
    if meta is None:
        return None
    flam = _number(meta, 'PHOTFLAM')
    if flam is not None and flam > 0:
        plam = _number(meta, 'PHOTPLAM')
        if plam is not None and plam > 0:
            zp = -2.5 * math.log10(flam) - 5 * math.log10(plam) + _AB_PHOTFLAM
            return zp, 'PHOTFLAM, PHOTPLAM', 'AB'
        zpt = _number(meta, 'PHOTZPT')
        if zpt is not None:
            return -2.5 * math.log10(flam) + zpt, 'PHOTFLAM, PHOTZPT', 'ST'
    mjsr, pixar = _number(meta, 'PHOTMJSR'), _number(meta, 'PIXAR_SR')
    if mjsr is not None and mjsr > 0 and pixar is not None and pixar > 0:
        zp = -2.5 * math.log10(mjsr * 1e6 * pixar / 3631.0)
        return zp, 'PHOTMJSR, PIXAR_SR', 'AB'
    return None
