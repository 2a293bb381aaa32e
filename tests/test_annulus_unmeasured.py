"""One sky annulus without a usable pixel costs only its own row."""


import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus, CircularAperture

from ccdphot_ext import (
    FLAG_BAD_PIXELS,
    FLAG_SKY_ANNULUS,
    BoxAperture,
    SkyEstimate,
    photometer,
)


@pytest.fixture
def frame():
    img = np.random.default_rng(1).normal(100.0, 5.0, (80, 80))
    img[0:20, 0:20] = np.nan  # the first star's whole annulus
    return img


POSITIONS = [(9, 9), (40, 40), (60, 60)]


@pytest.mark.parametrize('apertures', [
    CircularAperture(POSITIONS, r=3),
    BoxAperture(POSITIONS, 5, 5),
])
def test_empty_annulus_flags_its_row_only(frame, apertures):
    annulus = CircularAnnulus(POSITIONS, r_in=4, r_out=7)
    with (pytest.warns(AstropyUserWarning, match='flagged doubtful'),
          pytest.warns(AstropyUserWarning,
                       match='excluded from the sky annuli')):
        sky = SkyEstimate.from_annulus(frame, annulus, exclude=apertures)
    assert sky.n_pix[0] == 0 and np.isnan(sky.value[0])
    assert np.all(np.isfinite(sky.value[1:])) and np.all(sky.n_pix[1:] > 0)
    table = photometer(frame, apertures, sky, gain=2.0)
    assert np.isnan(table['aperture_sum'][0])
    assert np.isnan(table['aperture_sum_err'][0])
    assert table['flags'][0] & FLAG_SKY_ANNULUS
    assert table['flags'][0] & FLAG_BAD_PIXELS
    # the other stars are measured as if the first were not there
    good = photometer(frame, apertures[1:], SkyEstimate(
        sky.value[1:], sky.std[1:], sky.n_pix[1:]), gain=2.0)
    np.testing.assert_allclose(table['aperture_sum'][1:],
                               good['aperture_sum'], rtol=1e-12)
    assert np.all(table['flags'][1:] == 0)


def test_every_annulus_empty_is_refused(frame):
    annulus = CircularAnnulus([(9, 9), (10, 10)], r_in=4, r_out=7)
    with pytest.raises(ValueError, match='no sky annulus holds'):
        SkyEstimate.from_annulus(frame, annulus)


def test_sky_level_nan_needs_zero_pixels():
    with pytest.raises(ValueError, match='must be finite'):
        SkyEstimate([np.nan, 1.0], [1.0, 1.0], [10, 10])
    with pytest.raises(ValueError, match='n_pix must be positive'):
        SkyEstimate([np.nan], [np.nan], [0])
