# Licensed under a 3-clause BSD style license - see LICENSE
"""
The celestial WCS of a frame: what turns sky positions (apertures, the
``ra``/``dec`` columns of a positions table) into pixels.
"""

from astropy.coordinates import SkyCoord, UnitSphericalRepresentation
from astropy.wcs import WCS

__all__ = ['celestial_wcs']


def celestial_wcs(data):
    """
    Find the celestial WCS of a frame.

    A WCS without celestial axes (e.g. a linear pixel WCS) gives None.

    Parameters
    ----------
    data : `~astropy.nddata.NDData`, WCS or object
        An `~astropy.nddata.NDData` (a `~astropy.nddata.CCDData` from
        `~ccdphot_ext.read_frame`) or any object with a ``wcs`` attribute,
        or a WCS itself (an `~astropy.wcs.WCS` or any APE 14 WCS with
        ``world_to_pixel``); anything else (a plain array) has none.

    Returns
    -------
    wcs : WCS or None
        The WCS when it has celestial axes, else None.

    Examples
    --------
    >>> from astropy.wcs import WCS
    >>> from ccdphot_ext import celestial_wcs
    >>> sky = WCS(naxis=2)
    >>> sky.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    >>> celestial_wcs(sky) is sky, celestial_wcs(WCS(naxis=2))
    (True, None)
    """
    wcs = data if _is_wcs(data) else getattr(data, 'wcs', None)
    if wcs is None:
        return None
    if isinstance(wcs, WCS):
        return wcs if wcs.has_celestial else None
    try:
        classes = wcs.low_level_wcs.world_axis_object_classes
    except AttributeError:
        return None
    if any(issubclass(spec[0], SkyCoord) for spec in classes.values()
           if isinstance(spec[0], type)):
        return wcs
    return None


def lonlat_text(coord):
    """A scalar `~astropy.coordinates.SkyCoord`'s longitude and latitude
    for a message: ``'236.75, -24.12 deg'``."""
    sph = coord.represent_as(UnitSphericalRepresentation)
    return f'{sph.lon.deg:.6g}, {sph.lat.deg:.6g} deg'


def _is_wcs(obj):
    """A WCS itself (astropy's, or any with ``world_to_pixel``)."""
    return isinstance(obj, WCS) or hasattr(obj, 'world_to_pixel')
