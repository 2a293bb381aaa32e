# Licensed under a 3-clause BSD style license - see LICENSE
"""``python -m ccdphot_ext.cli``: the ``ccdphot`` command."""

import sys

from .main import main

sys.exit(main())
