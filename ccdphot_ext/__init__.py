# Licensed under a 3-clause BSD style license - see LICENSE
"""
ccdphot_ext: CCD aperture photometry with an honest, term-by-term error
budget, built on photutils and astropy.

Every public name is importable from here (``from ccdphot_ext import
measure``). They are imported on first use, from the subpackage that owns
them (`_PUBLIC` below), so ``import ccdphot_ext`` and the ``ccdphot``
command start without loading photutils, scipy or matplotlib.
"""

import importlib

from .flags import *  # noqa: F403  (bit values only: no imports)
from .flags import __all__ as _flags_all
from .utils import provenance as _provenance

__version__ = _provenance.PACKAGE_VERSION

#: Public names by the subpackage that owns them (add new names here).
_PUBLIC = {
    'analysis': ('differential_photometry', 'gradient_check',
                 'systematics_report'),
    'aperture': ('BoxAperture', 'SkyBoxAperture', 'write_ds9'),
    'background': ('ApertureNoise', 'SigmaThreshold', 'SkyEstimate'),
    'batch': ('AnnulusSky', 'BatchExecution', 'photometer_frames'),
    'datasets': ('NOTEBOOK_BOXES', 'sample_frame', 'sample_truth'),
    'detection': ('Recentering', 'box_flags', 'find_stars',
                  'recenter_positions', 'star_boxes'),
    'io': ('DetectorParameters', 'FrameReadError', 'VarianceArrays',
           'pixel_solid_angle', 'read_frame', 'read_positions',
           'unit_family'),
    'photometry': ('PHOTOMETRY_COLUMNS', 'ApertureMeasurement',
                   'BudgetOptions', 'BudgetTerms', 'ErrorBudget',
                   'budget_terms', 'compare_extractions', 'measure',
                   'optimal_extraction', 'photometer', 'to_adu',
                   'to_electron'),
}
_HOME = {name: sub for sub, names in _PUBLIC.items() for name in names}
_SUBPACKAGES = ('analysis', 'aperture', 'background', 'batch', 'cli',
                'datasets', 'detection', 'io', 'photometry', 'utils',
                'visualization')

__all__ = [*_HOME, *_flags_all]


def __getattr__(name):
    """Import a public name (or a subpackage) on first use."""
    if name in _HOME:
        module = importlib.import_module(f'{__name__}.{_HOME[name]}')
        value = getattr(module, name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f'{__name__}.{name}')
    else:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *__all__, *_SUBPACKAGES})
