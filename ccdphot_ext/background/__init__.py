# Licensed under a 3-clause BSD style license - see LICENSE
"""Sky level and its error: global, local (annulus) and map skies; threshold masks."""

from .estimators import *  # noqa: F403
from .globalsky import *  # noqa: F403
from .maps import *  # noqa: F403
from .noise import *  # noqa: F403
from .sky import *  # noqa: F403
from .threshold import *  # noqa: F403
