# Licensed under a 3-clause BSD style license - see LICENSE
"""Reading frames (FITS files, header keywords, units) and positions tables."""

from .dq import *  # noqa: F403
from .fits import *  # noqa: F403
from .fluxdensity import *  # noqa: F403
from .header import *  # noqa: F403
from .positions import *  # noqa: F403
from .units import *  # noqa: F403
from .variance import *  # noqa: F403
from .wcs import *  # noqa: F403
from .zeropoints import *  # noqa: F403
