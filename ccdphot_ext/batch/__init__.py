# Licensed under a 3-clause BSD style license - see LICENSE
"""Photometry of many frames (light curves), serial or on Dask."""

from .execution import *  # noqa: F403
from .frames import *  # noqa: F403
from .lock import *  # noqa: F403
from .reading import *  # noqa: F403
from .worker import *  # noqa: F403
