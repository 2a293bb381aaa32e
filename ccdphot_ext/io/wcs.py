# Licensed under a 3-clause BSD style license - see LICENSE
"""
The celestial WCS of a frame: what turns sky positions (apertures, the
``ra``/``dec`` columns of a positions table) into pixels.
"""

from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

__all__ = ['celestial_wcs']


def celestial_wcs(data):
    """
    The celestial WCS of ``data`` (an `~astropy.nddata.NDData` or any object
    with a ``wcs`` attribute, or a WCS itself), or None.

    A WCS without celestial axes (e.g. a linear pixel WCS) gives None.
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


def _is_wcs(obj):
    """A WCS itself (astropy's, or any with ``world_to_pixel``)."""
    return isinstance(obj, WCS) or hasattr(obj, 'world_to_pixel')
