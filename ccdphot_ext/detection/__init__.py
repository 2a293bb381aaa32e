# Licensed under a 3-clause BSD style license - see LICENSE
"""Finding stars and recentring positions."""

from .findstars import *  # noqa: F403
from .recenter import *  # noqa: F403
