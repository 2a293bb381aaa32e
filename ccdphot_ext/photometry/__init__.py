# Licensed under a 3-clause BSD style license - see LICENSE
"""Sums, the error budget, single and many-aperture photometry, optimal
extraction.

The public names (in the type stub ``__init__.pyi``) are imported on first
use, as the top-level package's are, so that a light module of this
package (`ccdphot_ext.photometry.terms`, the budget options a batch's
configuration holds) loads neither the photometer nor astropy.modeling.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
