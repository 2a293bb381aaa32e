# Licensed under a 3-clause BSD style license - see LICENSE
"""
ccdphot_ext: CCD aperture photometry with an honest, term-by-term error
budget, built on photutils and astropy.
"""

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - running from a bare source tree
    __version__ = '0.0.0'

from .analysis import differential_photometry, gradient_check, systematics_report
from .aperture import BoxAperture, SkyBoxAperture, write_ds9
from .background import SigmaThreshold, SkyEstimate
from .batch import AnnulusSky, photometer_frames
from .datasets import NOTEBOOK_BOXES, sample_frame, sample_truth
from .detection import find_stars, recenter_positions, star_boxes
from .flags import *  # noqa: F403
from .flags import __all__ as _flags_all
from .io import (
    FrameReadError,
    detector_parameters,
    read_frame,
    read_positions,
    to_adu,
    to_electron,
)
from .photometry import (
    PHOTOMETRY_COLUMNS,
    ApertureMeasurement,
    BudgetTerms,
    ErrorBudget,
    budget_terms,
    compare_extractions,
    measure,
    optimal_extraction,
    photometer,
)

__all__ = ['BoxAperture', 'ErrorBudget', 'budget_terms', 'BudgetTerms',
           'SkyEstimate', 'SigmaThreshold',
           'measure', 'ApertureMeasurement', 'photometer',
           'PHOTOMETRY_COLUMNS', 'detector_parameters', 'find_stars',
           'star_boxes',
           'sample_frame', 'sample_truth', 'NOTEBOOK_BOXES',
           'read_frame', 'read_positions', 'FrameReadError', 'SkyBoxAperture',
           'to_electron',
           'to_adu', 'write_ds9',
           'photometer_frames', 'AnnulusSky', 'differential_photometry',
           'recenter_positions',
           'systematics_report', 'gradient_check', 'optimal_extraction',
           'compare_extractions',
           *_flags_all]
