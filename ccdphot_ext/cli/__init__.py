# Licensed under a 3-clause BSD style license - see LICENSE
"""The ``ccdphot`` command line: one module per subcommand."""

from .main import *  # noqa: F403
