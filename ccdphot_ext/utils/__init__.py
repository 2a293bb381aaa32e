# Licensed under a 3-clause BSD style license - see LICENSE
"""Validators and helpers shared by every layer (input checks, atomic
output files, HTML for Jupyter).

The public names (in the type stub ``__init__.pyi``) are imported on first
use, as the top-level package's are, so that a light module of this
package (`ccdphot_ext.utils.numbers`, used by the ``ccdphot`` command's
argument types) loads no astropy.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
