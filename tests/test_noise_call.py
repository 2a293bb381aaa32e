"""`ApertureNoise` called with a pixel count that is no aperture's: a
negative, zero, NaN or infinite count is refused, naming the parameter
(a negative count gave 0 before); the budget's ``variance`` keeps 0 for
an empty row and NaN for an absent one."""

import math

import numpy as np
import pytest

from ccdphot_ext import ApertureNoise


def _model():
    return ApertureNoise(2.0, 1.0, 0.5, n_pix=[1, 9, 25, 49],
                         sigma=[2.0, 6.0, 10.0, 14.0],
                         sigma_err=[0.05, 0.2, 0.4, 0.6],
                         n_apertures=[1000, 1000, 1000, 1000])


@pytest.mark.parametrize('n_pix', [-4, 0, -0.5, math.nan, math.inf,
                                   [9.0, -1.0], [25.0, math.nan]])
def test_call_refuses_what_is_no_pixel_count(n_pix):
    with pytest.raises(ValueError, match='n_pix must be'):
        _model()(n_pix)


def test_call_refuses_text():
    with pytest.raises(TypeError, match='n_pix'):
        _model()('nine')


def test_call_and_variance_of_counts():
    noise = _model()
    assert noise(9.0) == 6.0  # white: 2 sqrt(9)
    np.testing.assert_array_equal(noise([1.0, 25.0]), [2.0, 10.0])
    # the budget's term: 0 for an empty row, NaN for an absent one
    np.testing.assert_array_equal(noise.variance([0.0, 9.0]), [0.0, 36.0])
    assert np.isnan(noise.variance(math.nan))
    with pytest.raises(ValueError, match='n_pix must be'):
        noise.variance(-4.0)
