# Licensed under a 3-clause BSD style license - see LICENSE
"""
What a result was made with: the versions recorded in every table's
``meta``.
"""

__all__ = []  # internal module

try:
    from .._version import version as PACKAGE_VERSION
except ImportError:  # pragma: no cover - running from a bare source tree
    PACKAGE_VERSION = '0.0.0'


def versions():
    """
    The versions of ccdphot_ext and of the libraries behind its numbers,
    for a table's ``meta['versions']``.

    Examples
    --------
    >>> from ccdphot_ext.utils.provenance import versions
    >>> sorted(versions())
    ['astropy', 'ccdphot_ext', 'numpy', 'photutils']
    """
    # imported here: the package's version (above) is read by
    # ``import ccdphot_ext`` and ``ccdphot --version``, which load no numpy
    import astropy
    import numpy as np

    return {'ccdphot_ext': PACKAGE_VERSION,
            'photutils': _photutils_version(),
            'astropy': astropy.__version__,
            'numpy': np.__version__}


def _photutils_version():
    """photutils' version: the imported package's, or, in a process that
    has not imported it (the client of a Dask batch, which only collects
    results), its installed distribution's, read without importing it
    (photutils' import costs a few tenths of a second of CPU)."""
    import sys

    module = sys.modules.get('photutils')
    if module is not None:
        return module.__version__
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version('photutils')
    except PackageNotFoundError:  # a source tree on the path: import it
        import photutils

        return photutils.__version__
