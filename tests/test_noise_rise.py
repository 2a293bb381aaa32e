"""The correlated-or-white decision of `ApertureNoise` on a rise of every
size by 1-2 errors (a real raw frame with row offsets) and on white
frames."""
import numpy as np
from astropy.io import fits
from astropy.utils.data import get_pkg_data_filename

from ccdphot_ext import ApertureNoise, BoxAperture, SkyEstimate, photometer
from ccdphot_ext.background.noise import (
    _blank_corners,
    _rises,
    _robust_std,
    _source_mask,
)


def _stis():
    """HST STIS raw frame of astropy's test data (44 x 62, uint16; row
    offsets: row means scatter 0.48 ADU against 0.25 for white noise)."""
    path = get_pkg_data_filename('data/o4sp040b0_raw.fits',
                                 package='astropy.io.fits.tests')
    return np.asarray(fits.getdata(path, 1), dtype=float)


def test_stis_row_offsets_are_correlated_and_followed():
    # its points read 1.06 / 1.22 / 1.42 / 1.50 times the white noise at
    # 3 / 7 / 9 / 11 px (chi2 20.9 for 8 sizes, 1.3-2.2 errors each): the
    # model said white and blank sums scattered 1.030 / 1.352 / 1.449 of
    # their errors at 3 / 7 / 11 px with flags 0; now 0.96 / 1.13 / 1.07
    data = _stis()
    sky = SkyEstimate.from_image(data)
    noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
    assert noise.correlated
    ratio = noise(np.array([49.0, 121.0])) / (noise.sigma1
                                               * np.array([7.0, 11.0]))
    assert np.all(ratio > 1.15)
    resid = data - sky.value
    bad = _source_mask(resid, sky.std, ~np.isfinite(resid))
    rng = np.random.default_rng(99)
    for side in (3, 7, 11):
        y0, x0 = _blank_corners(bad, side, 800, rng)
        centres = np.column_stack([x0, y0]) + (side - 1) / 2.0
        t = photometer(data, BoxAperture(centres, side, side), sky,
                       noise=noise, sky_without_apertures=False)
        assert np.all(np.asarray(t['flags']) & ~8 == 0)
        pull = (np.asarray(t['aperture_sum'])
                / np.asarray(t['aperture_sum_err']))
        assert 0.85 < _robust_std(pull) < 1.2, side


def test_white_frames_read_white():
    # 100 white frames each of 44 x 62, 64 x 64, 128 x 128, 60 of 256 x 256
    # and 40 of 512 x 512 read correlated 1, 1, 2, 1.7 and 0% of the time
    # (the 128 x 128 ones at 2% before the rise was counted too)
    hits = 0
    for k in range(12):
        shape = (44, 62) if k % 2 else (128, 128)
        data = np.random.default_rng(1000 + k).normal(100.0, 5.0, shape)
        sky = SkyEstimate.from_image(data)
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=k)
        hits += noise.correlated
    assert hits <= 1


def test_rise_needs_every_part():
    n_pix = np.array([1.0, 9.0, 49.0, 121.0])
    err = np.full(4, 0.1)
    rise = np.array([0.0, 0.13, 0.15, 0.22])   # mean 1.67 errors, chi2 8.8
    assert _rises(rise, err, rise, n_pix)
    # the chi-square within its 10% tail
    assert not _rises(rise * 0.8, err, rise * 0.8, n_pix)
    # on average below one error above the line
    low = np.array([0.0, -0.1, 0.05, 0.32])
    assert not _rises(low, err, low, n_pix)
    # no point 5% above it
    assert not _rises(rise, err, rise / 5.0, n_pix)
    # no point 2 errors above it (mean 1.63 errors, chi2 8.1)
    short = np.array([0.0, 0.15, 0.15, 0.19])
    assert not _rises(short, err, short, n_pix)
    # the 1 pixel point is sigma1's own: it does not count in the mean
    one = np.array([0.3, 0.1, 0.1, 0.1])
    assert not _rises(one, err, one, n_pix)
