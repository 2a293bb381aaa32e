# Licensed under a 3-clause BSD style license - see LICENSE
"""Digitised frames in a scaled unit (whole ADU times 0.02: electron/s of
100 s at gain 2; 0.1, 1/30, 3.7e-7): the lattice of the pixels'
differences is found although float rounding makes near-duplicates of
its values (0.1 * 101 - 0.1 * 100 != 0.1 * 51 - 0.1 * 50). Without it
the whole-step MAD rule came back (1.048 for any noise) and blank pulls
spread 0.72 / 1.28 instead of 0.95 / 1.01."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture

from ccdphot_ext import SkyEstimate, photometer
from ccdphot_ext.background.maps import (
    frame_background2d,
    lattice_step,
    mesh_pixel_noise,
)


def _curved(seed, noise, depth=0.2, n=256):
    y, x = np.mgrid[:n, :n]
    c = (n - 1) / 2
    sky = 100.0 * (1.0 - depth * ((x - c) ** 2 + (y - c) ** 2) / c ** 2)
    raw = sky + np.random.default_rng(seed).normal(0.0, noise, sky.shape)
    return np.round(raw), sky


@pytest.mark.parametrize('noise', [0.7, 1.3])
@pytest.mark.parametrize('per_adu', [0.02, 0.1, 1 / 30.0, 3.7e-7])
def test_digitised_noise_in_a_scaled_unit(noise, per_adu):
    """The frame in whole ADU times ``per_adu``: the same noise per mesh
    and blank-sky pulls as in ADU."""
    img, sky = _curved(0, noise)
    truth = np.std(img - sky)
    grid = np.arange(20.0, 236.0, 12.0)
    apertures = CircularAperture([(x, y) for x in grid for y in grid], 3.0)
    spread = []
    for data, k in ((img, 1.0), (img * per_adu, per_adu)):
        bkg = frame_background2d(data)[0]
        found = np.nanmedian(mesh_pixel_noise(bkg, data)) / k
        assert found == pytest.approx(truth, rel=0.03)  # was 1.048
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            rows = photometer(data, apertures,
                              SkyEstimate.from_background2d(bkg, data=data))
        spread.append(np.std(rows['aperture_sum'] / rows['aperture_sum_err']))
    assert spread[1] == pytest.approx(spread[0], abs=0.05)


def test_lattice_step_of_scaled_differences():
    """The differences of whole ADU times 0.1 lie on a lattice of step 0.1
    (their float near-duplicates merged)."""
    img, _ = _curved(0, 1.3)
    diff = np.diff(img * 0.1, axis=1)
    step, _ = lattice_step(diff)
    assert step == pytest.approx(0.1, rel=1e-9)
    assert lattice_step(np.random.default_rng(1).normal(0, 1, 1000)) is None
