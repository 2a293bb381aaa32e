"""Annulus skies on strip frames (2000 x 100 pixels and 100 x 2000),
vignetted by 5% from the centre to the ends, as ``ccdphot measure --sky
annulus`` measures them (`AnnulusSky`: 6-16 px annuli about r = 4
circles, every aperture left out): the frame-wide checks (the annuli's
shared lift, the frame's surface under their levels, the background's
curvature about each star) see no doubt on a strip's annuli, and a row is
flagged only for a neighbour's aperture in its annulus."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture, aperture_photometry

from ccdphot_ext import FLAG_SKY_ANNULUS, photometer
from ccdphot_ext.batch import AnnulusSky
from ccdphot_ext.datasets.sample import render_stars

SKY, DEPTH, RADIUS = 300.0, 0.05, 4.0
GAIN = 1.5


def _strip(rng, shape, x, y):
    """A strip of ``shape`` on a sky of `SKY` ADU (gain `GAIN`, 5 e- read
    noise) falling by `DEPTH` to the ends of its long side, with Gaussian
    stars (1.6 px) of 1e3 to 1e5 e- at ``x, y``: the frame and the stars'
    light."""
    ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx]
    half = max(ny, nx) / 2.0
    sky = SKY * (1.0 - DEPTH * ((xx - (nx - 1) / 2.0) ** 2
                                + (yy - (ny - 1) / 2.0) ** 2) / half ** 2)
    flux = 10 ** rng.uniform(3.0, 5.0, x.size) / GAIN
    light = render_stars(shape, x, y, flux, sigma=1.6)
    data = (rng.poisson((sky + light) * GAIN)
            + rng.normal(0.0, 5.0, shape)) / GAIN
    return data, light


def _rows(data, light, x, y, *, warned='ignore'):
    """The flux pulls and flags of r = 4 circles at ``x, y`` with the
    CLI's annuli, and the sky (its warnings met with ``warned``, a
    `warnings.simplefilter` action)."""
    aperture = CircularAperture(np.column_stack([x, y]), RADIUS)
    with warnings.catch_warnings():
        warnings.simplefilter(warned, AstropyUserWarning)
        sky = AnnulusSky(6.0, 16.0)(data, aperture)
        table = photometer(data, aperture, sky, gain=GAIN)
    truth = aperture_photometry(light, aperture,
                                method='exact')['aperture_sum']
    pulls = ((np.asarray(table['aperture_sum']) - truth)
             / np.asarray(table['aperture_sum_err']))
    return pulls, np.asarray(table['flags']), sky


@pytest.mark.parametrize('shape', [(100, 2000), (2000, 100)])
def test_isolated_stars_on_a_strip_are_not_flagged(shape):
    """48 stars 40 px apart along the strip's middle (their annuli hold no
    other aperture), 3 frames: no row is flagged, no check of the frame's
    annuli warns, and the flux pulls are unbiased."""
    rng = np.random.default_rng(31 if shape[0] < shape[1] else 32)
    along = np.arange(60.0, 1960.0, 40.0)
    pulls = []
    for _ in range(3):
        across = rng.uniform(40.0, 60.0, along.size)
        x, y = (along, across) if shape[0] < shape[1] else (across, along)
        x, y = x + rng.uniform(-2, 2, x.size), y + rng.uniform(-2, 2, y.size)
        data, light = _strip(rng, shape, x, y)
        p, flags, sky = _rows(data, light, x, y, warned='error')
        assert not np.any(flags)
        assert not np.any(sky.meta['n_excluded_neighbours'])
        pulls.append(p)
    pulls = np.concatenate(pulls)
    assert abs(np.mean(pulls)) < 0.2
    assert np.std(pulls) == pytest.approx(1.0, abs=0.15)


def test_strip_rows_flag_only_neighbours():
    """60 stars placed at random on a 2000 x 100 strip (the flagged rows
    of the earlier report, 20 to 27 a frame): every flagged row is one
    whose annulus another star's aperture reaches into, and the others
    are unbiased."""
    rng = np.random.default_rng(33)
    kept = []
    for _ in range(2):
        x, y = rng.uniform(15.0, 1984.0, 60), rng.uniform(15.0, 84.0, 60)
        data, light = _strip(rng, (100, 2000), x, y)
        pulls, flags, sky = _rows(data, light, x, y)
        neighbours = np.asarray(sky.meta['n_excluded_neighbours']) > 0
        assert np.array_equal(flags != 0, neighbours)
        assert np.all(flags[neighbours] == FLAG_SKY_ANNULUS)
        kept.append(pulls[~neighbours])
    kept = np.concatenate(kept)
    assert kept.size > 40
    assert abs(np.mean(kept)) < 0.3
    assert np.std(kept) == pytest.approx(1.0, abs=0.2)
