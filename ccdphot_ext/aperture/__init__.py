# Licensed under a 3-clause BSD style license - see LICENSE
"""Apertures: exact boxes, exact circles and ellipses, sky-coordinate
boxes, region export."""

from .box import *  # noqa: F403
from .circular import *  # noqa: F403
from .overlap import *  # noqa: F403
from .regions import *  # noqa: F403
from .skybox import *  # noqa: F403
from .utils import *  # noqa: F403
