# Licensed under a 3-clause BSD style license - see LICENSE
"""
ccdphot_ext: CCD aperture photometry with an honest, term-by-term error
budget, built on photutils and astropy.

Every public name is importable from here (``from ccdphot_ext import
measure``). The names, and the subpackage each comes from, are in the type
stub ``__init__.pyi`` beside this file, which editors and type checkers
read; at run time `lazy_loader` imports each on first use, so ``import
ccdphot_ext`` and the ``ccdphot`` command start without loading numpy,
astropy or photutils.
"""

import pkgutil

import lazy_loader as _lazy

from .utils import provenance as _provenance

__version__ = _provenance.PACKAGE_VERSION

__getattr__, __dir__, _names = _lazy.attach_stub(__name__, __file__)

#: Every public name; the subpackages are attributes (imported on first use
#: too) but not part of ``from ccdphot_ext import *``.
__all__ = sorted(set(_names) - {module.name for module in
                                pkgutil.iter_modules(__path__)})
