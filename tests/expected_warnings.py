"""
The warnings tests expect, by name: the suite turns every other warning
into an error (``filterwarnings = error`` in setup.cfg).
"""

import pytest
from astropy.utils.exceptions import AstropyUserWarning

__all__ = ['gradient_warning', 'correlated_warning', 'unseen_sky_warning',
           'sharp_pixel_warning', 'no_gain_warning']


def gradient_warning():
    """A whole-frame sky on a frame whose background varies (the bundled
    sample's gradient): ``check_global_sky`` says the fluxes are biased."""
    return pytest.warns(AstropyUserWarning,
                        match='the background varies across the frame')


def correlated_warning():
    """Photometry without ``noise=`` on a frame whose pixel noise is
    correlated (astropy's M13 plate): ``n_pix * sky_std**2``, or the sum of
    an uncertainty map's per-pixel variances, underestimates the noise, and
    the warning says so."""
    return pytest.warns(AstropyUserWarning,
                        match='pixel noise is correlated')


def unseen_sky_warning():
    """A whole-frame sky of a crowded frame whose source mask leaves too
    little sky to measure the light of the stars too faint for it
    (astropy's M13: 88% masked): every row measured against it is flagged
    32, and the warning says so."""
    return pytest.warns(AstropyUserWarning,
                        match='leaves too little sky to measure')


def sharp_pixel_warning():
    """Photometry of a raw frame whose apertures hold cosmic rays or hot
    pixels (ccdproc's SAAO frame): their rows are flagged 1024 and the
    warning says how many."""
    return pytest.warns(AstropyUserWarning,
                        match="sharper than the frame's stars")


def no_gain_warning():
    """Photometry of a frame in ADU whose header names the detector (read
    noise, exposure time) but no gain (the ESO frame of Source
    Extractor's tests: EXPTIME only): no error bar holds the stars'
    photon noise, and the warning says so."""
    return pytest.warns(AstropyUserWarning,
                        match='no gain: the header names the detector')
