# Licensed under a 3-clause BSD style license - see LICENSE
"""Validators and helpers shared by every layer (input checks, atomic
output files, HTML for Jupyter).

The public names are imported on first use (as the top-level package
does), so that a light module of this package (`ccdphot_ext.utils.numbers`,
used by the ``ccdphot`` command's argument types) loads no astropy.
"""

import importlib

#: Public names by the module that owns them.
_PUBLIC = {
    'files': ('atomic_write', 'check_output', 'write_table_atomic',
              'table_format'),
    'html': ('html_table',),
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = list(_HOME)


def __getattr__(name):
    """Import a public name on first use."""
    if name not in _HOME:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    value = getattr(importlib.import_module(f'{__name__}.{_HOME[name]}'),
                    name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__})
