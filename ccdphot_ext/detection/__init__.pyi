# Licensed under a 3-clause BSD style license - see LICENSE
"""
The public names of ``ccdphot_ext.detection`` (imported on first use by
``lazy_loader.attach_stub`` in ``__init__.py``, so that a light module of
this package, `ccdphot_ext.detection.recenter` for a batch's
configuration, loads no star finder).
"""

from .findstars import (
    STAR_COLUMNS,
    box_flags,
    find_stars,
    star_boxes,
)
from .recenter import (
    CENTROID_METHODS,
    Recentering,
    recenter_positions,
)
from .starflags import star_like_flags

__all__ = [
    'CENTROID_METHODS',
    'Recentering',
    'STAR_COLUMNS',
    'box_flags',
    'find_stars',
    'recenter_positions',
    'star_boxes',
    'star_like_flags',
]
