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
from .batch import AnnulusSky, photometer_frames
from .budget import ErrorBudget
from .differential import differential_photometry
from .findstars import find_stars, star_boxes
from .flags import *  # noqa: F403
from .flags import __all__ as _flags_all
from .header import detector_parameters
from .io import FrameReadError, read_frame
from .measure import ApertureMeasurement, measure
from .optimal import compare_extractions, optimal_extraction
from .photometer import PHOTOMETRY_COLUMNS, photometer
from .recenter import recenter_positions
from .regions_io import write_ds9
from .sample import NOTEBOOK_BOXES, sample_frame, sample_truth
from .sky import SkyEstimate
from .skycoords import SkyBoxAperture
from .systematics import gradient_check, systematics_report
from .threshold import SigmaThreshold
from .units import to_adu, to_electron

__all__ = ['BoxAperture', 'ErrorBudget', 'SkyEstimate', 'SigmaThreshold',
           'measure', 'ApertureMeasurement', 'photometer',
           'PHOTOMETRY_COLUMNS', 'detector_parameters', 'find_stars',
           'star_boxes',
           'sample_frame', 'sample_truth', 'NOTEBOOK_BOXES',
           'read_frame', 'FrameReadError', 'SkyBoxAperture', 'to_electron',
           'to_adu', 'write_ds9',
           'photometer_frames', 'AnnulusSky', 'differential_photometry',
           'recenter_positions',
           'systematics_report', 'gradient_check', 'optimal_extraction',
           'compare_extractions',
           *_flags_all]
