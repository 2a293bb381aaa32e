# Licensed under a 3-clause BSD style license - see LICENSE
"""
The public names of ``ccdphot_ext.utils`` (imported on first use by
``lazy_loader.attach_stub`` in ``__init__.py``, so that a light module of
this package, `ccdphot_ext.utils.numbers` for the ``ccdphot`` command's
argument types, loads no astropy).
"""

from .files import (
    atomic_write,
    write_table_atomic,
)

__all__ = ['atomic_write', 'write_table_atomic']
