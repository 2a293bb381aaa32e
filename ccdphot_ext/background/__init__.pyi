# Licensed under a 3-clause BSD style license - see LICENSE
"""
The public names of ``ccdphot_ext.background`` (imported on first use by
``lazy_loader.attach_stub`` in ``__init__.py``, so that a module of this
package loads only what it imports).
"""

from .estimators import (
    clip_factors,
)
from .globalsky import (
    BackgroundVariation,
)
from .maps import (
    BACKGROUND2D_EFFICIENCY,
)
from .noise import (
    ApertureNoise,
)
from .sky import (
    SKY_METHODS,
    SkyEstimate,
)
from .threshold import (
    SigmaThreshold,
)

__all__ = [
    'BACKGROUND2D_EFFICIENCY',
    'ApertureNoise',
    'BackgroundVariation',
    'SKY_METHODS',
    'SigmaThreshold',
    'SkyEstimate',
    'clip_factors',
]
