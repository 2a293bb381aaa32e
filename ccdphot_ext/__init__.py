# Licensed under a 3-clause BSD style license - see LICENSE
"""
ccdphot_ext: CCD aperture photometry with an honest, term-by-term error
budget, built on photutils and astropy.
"""

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - running from a bare source tree
    __version__ = '0.0.0'

from .aperture import BoxAperture
from .budget import ErrorBudget
from .flags import *  # noqa: F403
from .flags import __all__ as _flags_all
from .header import detector_parameters
from .measure import ApertureMeasurement, measure
from .photometer import PHOTOMETRY_COLUMNS, photometer
from .sample import NOTEBOOK_BOXES, sample_frame, sample_truth
from .sky import SkyEstimate
from .threshold import SigmaThreshold

__all__ = ['BoxAperture', 'ErrorBudget', 'SkyEstimate', 'SigmaThreshold',
           'measure', 'ApertureMeasurement', 'photometer',
           'PHOTOMETRY_COLUMNS', 'detector_parameters',
           'sample_frame', 'sample_truth', 'NOTEBOOK_BOXES',
           *_flags_all]
