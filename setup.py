# Licensed under a 3-clause BSD style license - see LICENSE
"""The compiled extension; the metadata is in setup.cfg and the build
configuration in pyproject.toml."""

import sys

import numpy
from setuptools import Extension, setup

# the exact overlaps must add and multiply as the numpy reference does: no
# fused multiply-add (GCC and Clang contract by default on some machines)
ARGS = [] if sys.platform == 'win32' else ['-ffp-contract=off']

setup(ext_modules=[
    Extension('ccdphot_ext.aperture._exact',
              ['ccdphot_ext/aperture/_exact.c'],
              include_dirs=[numpy.get_include()],
              extra_compile_args=ARGS,
              define_macros=[('NPY_NO_DEPRECATED_API',
                              'NPY_1_7_API_VERSION')]),
    Extension('ccdphot_ext.background._sharp',
              ['ccdphot_ext/background/_sharp.c'],
              include_dirs=[numpy.get_include()],
              define_macros=[('NPY_NO_DEPRECATED_API',
                              'NPY_1_7_API_VERSION')]),
])
