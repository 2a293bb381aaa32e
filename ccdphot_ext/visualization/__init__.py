# Licensed under a 3-clause BSD style license - see LICENSE
"""Figures (matplotlib, optional): one star, budgets, the frame overview."""

from .budget import *  # noqa: F403
from .figures import *  # noqa: F403
from .frame import *  # noqa: F403
from .noise import *  # noqa: F403
from .star import *  # noqa: F403
