# Licensed under a 3-clause BSD style license - see LICENSE
"""Validators and helpers shared by every layer (input checks, atomic
output files, HTML for Jupyter)."""

from .files import *  # noqa: F403
from .html import *  # noqa: F403
from .inputs import *  # noqa: F403
