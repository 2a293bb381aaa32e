# Licensed under a 3-clause BSD style license - see LICENSE
"""Sky level and its error: global, local (annulus) and map skies; threshold
masks.

The public names (in the type stub ``__init__.pyi``) are imported on first
use, as the top-level package's are, so that a module of this package
loads only what it imports (the ``ccdphot batch`` command's client, which
checks the sky options, loads no aperture-noise model).
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
