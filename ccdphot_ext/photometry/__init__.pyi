# Licensed under a 3-clause BSD style license - see LICENSE
"""
The public names of ``ccdphot_ext.photometry`` (imported on first use by
``lazy_loader.attach_stub`` in ``__init__.py``, so that a light module of
this package, `ccdphot_ext.photometry.terms` for a batch's configuration,
loads neither the photometer nor astropy.modeling).
"""

from .budget import (
    ErrorBudget,
)
from .conversion import (
    to_adu,
    to_electron,
)
from .magnitudes import (
    AB_ZERO_FLUX,
    Magnitudes,
    magnitudes,
)
from .measurement import (
    ApertureMeasurement,
    measure,
)
from .optimal import (
    OptimalMeasurement,
    compare_extractions,
    fit_psf_sigma,
    optimal_extraction,
    psf_stamp,
)
from .table import (
    PHOTOMETRY_COLUMNS,
    photometer,
)
from .terms import (
    FRACTIONAL_VARIANCES,
    UNCERTAINTY_MODELS,
    BudgetOptions,
    BudgetTerms,
    budget_terms,
)

__all__ = [
    'AB_ZERO_FLUX',
    'ApertureMeasurement',
    'BudgetOptions',
    'BudgetTerms',
    'ErrorBudget',
    'FRACTIONAL_VARIANCES',
    'Magnitudes',
    'OptimalMeasurement',
    'PHOTOMETRY_COLUMNS',
    'UNCERTAINTY_MODELS',
    'budget_terms',
    'compare_extractions',
    'fit_psf_sigma',
    'magnitudes',
    'measure',
    'optimal_extraction',
    'photometer',
    'psf_stamp',
    'to_adu',
    'to_electron',
]
