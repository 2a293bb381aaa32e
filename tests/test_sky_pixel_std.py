"""SkyEstimate.pixel_std: the sky's pixel noise as one number."""
import math

import numpy as np

from ccdphot_ext import SkyEstimate


def test_pixel_std_level():
    sky = SkyEstimate(100.0, 4.0, 1000)
    assert sky.pixel_std == 4.0


def test_pixel_std_per_aperture_skips_nan():
    sky = SkyEstimate([100.0, 101.0, 102.0], [3.0, 5.0, 9.0], [50, 50, 50])
    assert sky.pixel_std == 5.0


def test_pixel_std_map_median():
    std = np.arange(1.0, 17.0).reshape(4, 4)
    sky = SkyEstimate(np.zeros((4, 4)), std, error_on_mean=0.0)
    assert sky.pixel_std == float(np.median(std))
    assert isinstance(sky.pixel_std, float)


def test_pixel_std_quantity_in_data_unit():
    import astropy.units as u
    sky = SkyEstimate(10.0 * u.electron, 2.0 * u.electron, 100)
    assert sky.pixel_std == 2.0
    assert not math.isnan(sky.pixel_std)
