# Licensed under a 3-clause BSD style license - see LICENSE
"""Figures (matplotlib, optional)."""

from .figures import *  # noqa: F403
