# Licensed under a 3-clause BSD style license - see LICENSE
"""The bundled synthetic sample frame and its truth."""

from .sample import *  # noqa: F403
