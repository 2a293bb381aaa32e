"""
Helpers that give one home to what two places did alike: the note of a sky
measured again without the apertures' light (`measure` and
`optimal_extraction`), an aperture's angle in radians (the exact overlap
and the annulus curvature rule) and the robust-scatter factor.
"""

import math
import warnings
from types import SimpleNamespace

import astropy.units as u
import numpy as np
import pytest
from astropy.stats import mad_std
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    EllipticalAnnulus,
    EllipticalAperture,
    RectangularAnnulus,
)
from scipy.stats import norm

from ccdphot_ext import SkyEstimate, measure
from ccdphot_ext.aperture.circular import _Conic, exact_shape, radians
from ccdphot_ext.background.annuluscurvature import _shape
from ccdphot_ext.photometry.optimal import _psf_footprint, optimal_extraction
from ccdphot_ext.photometry.skychecks import note_sky_remeasured
from ccdphot_ext.utils.stats import MAD_TO_STD


def _star_frame():
    """A 48 x 48 frame of one bright star on a sky of 100 (gain 1)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:48, :48]
    light = 500.0 * np.exp(-((x - 24.2) ** 2 + (y - 23.7) ** 2) / 8.0) \
        / (2 * np.pi * 4.0)
    return rng.poisson(light + 100.0) + rng.normal(0.0, 5.0, (48, 48))


def test_measure_and_optimal_note_the_sky_measured_again():
    data = _star_frame()
    ap = CircularAperture((24.2, 23.7), 4.0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(data, gain=1.0)
        clean = sky.without_apertures(data, ap)
        stamp = sky.without_apertures(
            data, _psf_footprint(2.0, (24.2, 23.7), data.shape, None))
        m = measure(data, ap, sky, gain=1.0)
        kept = measure(data, ap, sky, gain=1.0, sky_without_apertures=False)
        o = optimal_extraction(data, (24.2, 23.7), 2.0, sky, gain=1.0)
        o_kept = optimal_extraction(data, (24.2, 23.7), 2.0, sky, gain=1.0,
                                    sky_without_apertures=False)
    note, o_note = clean.meta['aperture_note'], stamp.meta['aperture_note']
    assert note.startswith('the whole-frame sky was measured again without '
                           'the 1 apertures measured')
    assert note != o_note  # each against its own footprint
    assert m.budget.notes.count(note) == 1
    assert o.budget.notes.count(o_note) == 1
    for result in (kept, o_kept):
        assert not any('measured again' in n for n in result.budget.notes)
    # the notes otherwise the same, in the same order
    assert tuple(n for n in m.budget.notes if n != note) == \
        kept.budget.notes


def test_note_sky_remeasured_adds_only_a_note_that_is_there():
    budget = SimpleNamespace(notes=('first',))
    note_sky_remeasured(budget, SimpleNamespace(meta={}))
    note_sky_remeasured(budget, SimpleNamespace(meta={'aperture_note': None}))
    assert budget.notes == ('first',)
    note_sky_remeasured(budget, SimpleNamespace(meta={'aperture_note': 'x'}))
    assert budget.notes == ('first', 'x')


def test_radians_of_every_kind_of_theta():
    assert radians(90 * u.deg) == math.pi / 2
    assert radians(0.25 * u.rad) == 0.25
    assert radians(0.5) == 0.5
    assert radians(np.float32(0.5)) == 0.5
    assert radians(None) == 0.0
    assert isinstance(radians(30 * u.deg), float)


@pytest.mark.parametrize('theta', [30 * u.deg, 0.5235987755982988])
def test_the_exact_overlap_and_the_curvature_rule_read_one_angle(theta):
    want = (30 * u.deg).to_value(u.rad)
    conic = vars(_Conic(5.0, 3.0, want))
    assert vars(exact_shape(
        EllipticalAperture((10, 10), 5.0, 3.0, theta=theta)).outer) == conic
    ring = EllipticalAnnulus((10, 10), 3.0, 5.0, 3.0, theta=theta)
    shape = exact_shape(ring)
    assert vars(shape.outer) == conic
    assert vars(shape.inner) == vars(_Conic(3.0, 1.8, want))
    assert _shape(ring)[:4] == ('ellipse', (3.0, 1.8), (5.0, 3.0), want)
    box = RectangularAnnulus((10, 10), 6.0, 9.0, 6.0, theta=theta)
    assert _shape(box)[:4] == ('box', (3.0, 2.0), (4.5, 3.0), want)
    assert _shape(CircularAnnulus((10, 10), 6.0, 9.0))[3] == 0.0


def test_mad_to_std_is_astropys_factor():
    assert MAD_TO_STD == pytest.approx(1.0 / norm.ppf(0.75), rel=1e-15)
    values = np.random.default_rng(1).normal(0.0, 3.0, 1001)
    assert MAD_TO_STD * np.median(np.abs(values - np.median(values))) == \
        mad_std(values)
