# Licensed under a 3-clause BSD style license - see LICENSE
"""Validators and helpers shared by every layer."""

from .inputs import *  # noqa: F403
