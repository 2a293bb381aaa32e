"""A whole-frame level whose source mask covers the frame: a grid of
bright stars whose grown segments meet. The mask is dropped and the level
is the clipped statistic of every pixel, the stars' included (12-23 of
its errors high): the photometry measures it again without the
apertures, and rows measured against it as it is are flagged 32 with a
warning. A mask that leaves a few pixels between the stars only warns
(the rows' pulls there are honest: test_resampled_arrays)."""

import warnings

import numpy as np
import pytest
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAperture, aperture_photometry

from ccdphot_ext import SkyEstimate, photometer
from ccdphot_ext.datasets.sample import simulate_frame
from ccdphot_ext.flags import FLAG_RESIDUAL_BACKGROUND


def _grid(spacing, flux, seed=1):
    centres = np.arange(spacing / 2, 256, float(spacing))
    x, y = (a.ravel() for a in np.meshgrid(centres, centres))
    stars = Table({'x': x, 'y': y, 'flux': np.full(x.size, float(flux))})
    data, _, model = simulate_frame((256, 256), 200.0, stars, gain=1.0,
                                    read_noise=5.0, psf_sigma=1.6,
                                    seed=seed)
    apertures = CircularAperture(np.c_[x, y], 4.0)
    true = np.asarray(aperture_photometry(model - 200.0,
                                          apertures)['aperture_sum'])
    return data, apertures, true


def _sky(data):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        return SkyEstimate.from_image(data, gain=1.0)


def test_a_level_without_its_mask_is_measured_without_the_apertures():
    """The photometry's default measures the level again without the
    apertures' discs (the stars measured): pulls centred, flags 0 (-0.22
    over 20 frames before); asked not to, every row is flagged 32."""
    pulls = []
    for seed in range(6):
        data, apertures, true = _grid(32, 2e4, seed=seed)
        sky = _sky(data)
        assert 'covered the whole frame' in sky.meta['source_mask_dropped']
        assert (sky.value - 200.0) / sky.error_on_mean > 5  # the stars' light
        clean = sky.without_apertures(data, apertures)
        assert abs(clean.value - 200.0) < 3 * clean.error_on_mean
        assert 'source_mask_dropped' not in clean.meta
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            table = photometer(data, apertures, sky, gain=1.0)
        assert set(np.asarray(table['flags']).tolist()) == {0}
        assert np.all(np.asarray(table['sky']) == clean.value)
        pulls.append((np.asarray(table['aperture_sum']) - true)
                     / np.asarray(table['aperture_sum_err']))
        with pytest.warns(AstropyUserWarning,
                          match=rf'annulus sky .*\({len(true)} aperture\(s\) '
                                'flagged 32'):
            kept = photometer(data, apertures, sky, gain=1.0,
                              sky_without_apertures=False)
        assert np.all(np.asarray(kept['flags']) & FLAG_RESIDUAL_BACKGROUND)
    assert abs(np.mean(pulls)) < 0.1
    assert np.std(pulls) == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize('spacing, flux', [(30, 2e4), (32, 3e3)])
def test_a_mask_leaving_sky_is_not_flagged_by_the_rule(spacing, flux):
    """30 px apart the mask leaves 125 pixels (a warning of its own),
    fainter stars tens of thousands: no note, no flag 32 from it."""
    data, apertures, _ = _grid(spacing, flux)
    sky = _sky(data)
    assert 'source_mask_dropped' not in sky.meta
    assert (sky.n_pix < 1000) == (spacing == 30)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        table = photometer(data, apertures, sky, gain=1.0)
    assert not np.any(np.asarray(table['flags']) & FLAG_RESIDUAL_BACKGROUND)
