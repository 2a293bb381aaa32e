"""The wings of the masked stars reach past a whole-frame sky's source
mask: their light there, measured from the frame's own brightest stars,
is counted in the level's lift (``meta['crowding_bias']``)."""

import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ccdphot_ext import BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.globalsky import WING_NSIGMA
from ccdphot_ext.datasets.sample import render_stars

GAIN, READ_NOISE, SKY = 2.23, 12.0, 1035.0
SHAPE = (512, 512)


def _moffat(x, y, flux, fwhm=4.2, beta=2.5):
    """Moffat stars sampled at the pixel centres, over the whole frame
    (their wings are not cut off)."""
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    img = np.zeros(SHAPE)
    for xi, yi, fi in zip(x, y, flux, strict=True):
        r2 = ((xx - xi) ** 2 + (yy - yi) ** 2) / alpha ** 2
        img += fi * (beta - 1.0) / (np.pi * alpha ** 2) * (1.0 + r2) ** -beta
    return img


def _bright_frame(seed, psf):
    """100 stars of 10**5 to 10**6 ADU on 512 x 512 pixels of a 1035 ADU
    Poisson sky: Moffat (beta 2.5, FWHM 4.2 px) or Gaussian (1.8 px)."""
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(5.0, 507.0, (2, 100))
    flux = 10 ** rng.uniform(5.0, 6.0, 100)
    model = (_moffat(x, y, flux) if psf == 'moffat'
             else render_stars(SHAPE, x, y, flux, sigma=1.8))
    data = (rng.poisson((model + SKY) * GAIN)
            + rng.normal(0.0, READ_NOISE, SHAPE)) / GAIN
    return data, model


def _blank_boxes():
    grid = np.arange(20.0, 492.0, 24.0)
    gx, gy = np.meshgrid(grid, grid)
    return BoxAperture(np.column_stack([gx.ravel(), gy.ravel()]), 15, 15)


def test_moffat_wings_past_the_mask_lift_the_level_and_are_flagged():
    """Moffat stars (beta 2.5, FWHM 4.2 px): their wings past the source
    mask held 0.32 and 0.27 ADU per unmasked pixel and read the level 3.4
    and 4.1 of its errors high, with flags 0 (no faint star on the frame:
    the faint light found and extrapolated is 0); the profile of the
    brightest isolated stars puts that light at 0.16 and 0.23 ADU (the law
    is not spread past the 40 pixels it was measured to), which is warned
    of and flags the rows it biases. The same stars with a Gaussian PSF:
    no wing light beyond its error, no warning."""
    for seed in (900, 901):
        data, model = _bright_frame(seed, 'moffat')
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter('always', AstropyUserWarning)
            sky = SkyEstimate.from_image(data, gain=GAIN)
        lift = float(sky.value) - SKY
        assert lift > 3.0 * sky.error_on_mean
        wing = sky.meta['wing_light']
        assert wing > WING_NSIGMA * sky.meta['wing_light_error']
        assert 0.4 * lift < wing < 2.5 * lift
        assert sky.meta['crowding_bias'] >= wing
        assert sky.meta['crowding_bias'] > 1.5 * sky.error_on_mean
        assert any('wings of the masked stars' in str(w.message)
                   for w in said)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            table = photometer(data, _blank_boxes(), sky, gain=GAIN)
        flagged = (np.asarray(table['flags']) & 32) != 0
        assert np.mean(flagged) > 0.9
    for seed in (900, 901):
        data, _ = _bright_frame(seed, 'gauss')
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter('always', AstropyUserWarning)
            sky = SkyEstimate.from_image(data, gain=GAIN)
        assert abs(float(sky.value) - SKY) < 1.5 * sky.error_on_mean
        assert not (sky.meta.get('wing_light', 0.0)
                    > WING_NSIGMA * sky.meta.get('wing_light_error', 0.0))
        assert sky.meta['crowding_bias'] == 0
        assert not any('wings' in str(w.message) for w in said)
