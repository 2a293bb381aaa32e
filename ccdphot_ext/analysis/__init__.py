# Licensed under a 3-clause BSD style license - see LICENSE
"""Systematics, differential photometry and Monte Carlo calibration."""

from .calibration import *  # noqa: F403
from .calibration_regimes import *  # noqa: F403
from .differential import *  # noqa: F403
from .gradient import *  # noqa: F403
from .growth import *  # noqa: F403
from .systematics import *  # noqa: F403
