# Licensed under a 3-clause BSD style license - see LICENSE
"""Sums, the error budget, single and many-aperture photometry, optimal extraction."""

from .boxengine import *  # noqa: F403
from .budget import *  # noqa: F403
from .conversion import *  # noqa: F403
from .magnitudes import *  # noqa: F403
from .measurement import *  # noqa: F403
from .optimal import *  # noqa: F403
from .table import *  # noqa: F403
from .terms import *  # noqa: F403
