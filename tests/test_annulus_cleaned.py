"""A circular annulus holding a star the apertures do not list is measured
again without the star's pixels: the flag stays, the level loses the
lift of the star's light, and n_pix and the error follow the pixels
used; where too few would be left the level is kept."""

import numpy as np
import pytest
from astropy.nddata import NDData, StdDevUncertainty
from astropy.stats import SigmaClip
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import (
    ApertureStats,
    CircularAnnulus,
    CircularAperture,
    aperture_photometry,
)

from ccdphot_ext import FLAG_SKY_ANNULUS, SkyEstimate, photometer

N = 100
POS = np.array([(20.3 + 30 * i, 20.7 + 30 * j)
                for i in range(3) for j in range(3)])
FLUX = np.array([1000.0, 3000.0, 10000.0] * 3)
YY, XX = np.mgrid[:N, :N]
BETA = 4.0
ALPHA = 3.5 / (2 * np.sqrt(2 ** (1 / BETA) - 1))  # FWHM 3.5 px


def _gauss(x, y, flux, s=1.5):
    return flux * np.exp(-((XX - x) ** 2 + (YY - y) ** 2)
                         / (2 * s * s)) / (2 * np.pi * s * s)


def _moffat(x, y, flux):
    return flux * (BETA - 1) / (np.pi * ALPHA ** 2) * (
        1 + ((XX - x) ** 2 + (YY - y) ** 2) / ALPHA ** 2) ** -BETA


@pytest.mark.parametrize('psf, radii, low', [
    ('gauss', (8.0, 15.0), 0.2), ('moffat', (10.0, 17.0), 0.3)])
def test_neighbours_masked_give_unbiased_pulls(psf, radii, low):
    """1000-10000 ADU targets (r = 5) each with an unmeasured 2000-20000
    ADU neighbour at a random place in its annulus, on a sky of 100 e-:
    the flux pulls had a mean of -0.41 (Gaussian PSF) and -0.83 (Moffat,
    beta = 4), every row flagged; now the rows stay flagged and the pulls
    are about standard normal (the Moffat's wings beyond the annuli are
    the rest: -0.12 in 1080 rows)."""
    profile = _gauss if psf == 'gauss' else _moffat
    rng = np.random.default_rng(41)
    ap = CircularAperture(POS, 5.0)
    ann = CircularAnnulus(POS, *radii)
    base = sum(profile(x, y, f) for (x, y), f in zip(POS, FLUX, strict=True))
    pulls, flags, masked = [], [], []
    for _ in range(16):
        light = base.copy()
        for x, y in POS:
            r = np.sqrt(rng.uniform(radii[0] ** 2, radii[1] ** 2))
            t = rng.uniform(0.0, 2 * np.pi)
            light += profile(x + r * np.cos(t), y + r * np.sin(t),
                             np.exp(rng.uniform(np.log(2000.0),
                                                np.log(20000.0))))
        true = np.asarray(aperture_photometry(light, ap, method='exact')
                          ['aperture_sum'])
        img = rng.poisson(100.0 + light) + rng.normal(0.0, 5.0, light.shape)
        with pytest.warns(AstropyUserWarning, match='hold a source'):
            sky = SkyEstimate.from_annulus(img, ann, exclude=ap, gain=1.0)
        table = photometer(img, ap, sky, gain=1.0)
        pulls.append((np.asarray(table['aperture_sum']) - true)
                     / np.asarray(table['aperture_sum_err']))
        flags.append(np.asarray(table['flags']))
        masked.append(sky.meta['source_masked'])
    pulls, flags = np.concatenate(pulls), np.concatenate(flags)
    masked = np.concatenate(masked)
    assert np.all(flags & FLAG_SKY_ANNULUS)  # the row says it
    assert np.mean(masked > 0) > 0.9
    assert abs(np.mean(pulls)) < low
    assert np.std(pulls) == pytest.approx(1.0, abs=0.15)


def test_too_few_pixels_left_keep_the_level(monkeypatch):
    """A Moffat star whose mask would take more than half of the annulus (its
    profile's light asked to lift the level by a billionth of its error
    at most): the annulus keeps the sky photutils' sigma-clipped
    statistics give (flagged, warned)."""
    from ccdphot_ext.background import annulus as annulus_module

    rng = np.random.default_rng(42)
    light = _gauss(50.3, 50.7, 3000.0) + _moffat(60.3, 51.2, 20000.0)
    img = rng.poisson(100.0 + light) + rng.normal(0.0, 5.0, light.shape)
    ap = CircularAperture([(50.3, 50.7)], 5.0)
    ann = CircularAnnulus([(50.3, 50.7)], 8.0, 12.0)
    with monkeypatch.context() as patch:
        patch.setattr(annulus_module, 'CLEAN_TAIL', 1e-9)
        with pytest.warns(AstropyUserWarning, match='0 measured again '
                          "without the star's pixels.*1 keep their level"):
            sky = SkyEstimate.from_annulus(img, ann, exclude=ap)
    assert sky.meta['source_held'].tolist() == [True]
    assert sky.meta['source_masked'].tolist() == [0]
    assert sky.meta['source_mask_radius'][0] > 10.0
    assert sky.meta['flags'].tolist() == [FLAG_SKY_ANNULUS]
    stats = ApertureStats(img, ann, sum_method='center',
                          sigma_clip=SigmaClip(sigma=3.0, maxiters=10))
    assert sky.value[0] == pytest.approx(float(stats.mean[0]), rel=1e-12)
    assert sky.n_pix[0] == stats.sum_aper_area.value[0]
    # by a twentieth: measured again without the star
    with pytest.warns(AstropyUserWarning, match='1 measured again'):
        wide = SkyEstimate.from_annulus(img, ann, exclude=ap)
    assert 40 < wide.meta['source_masked'][0] < 0.5 * sky.n_pix[0]
    assert abs(wide.value[0] - 100.0) < 2 * wide.error_on_mean[0]


def test_n_pix_and_error_follow_the_pixels_used():
    """With an uncertainty map the cleaned annulus' error is that of the
    pixels kept: the counts add up to the annulus' pixels and the error
    is the map's sigma over the square root of n_pix. A photon-starved
    sky (2 e- a pixel) is solved on the cleaned pixels too."""
    rng = np.random.default_rng(43)
    pos = [(30.3, 30.7), (70.3, 70.7)]
    light = (_gauss(30.3, 30.7, 3000.0) + _gauss(70.3, 70.7, 3000.0)
             + _gauss(40.3, 31.7, 20000.0))  # a neighbour of the first
    img = rng.normal(100.0 + light, 10.0)
    ap = CircularAperture(pos, 5.0)
    ann = CircularAnnulus(pos, 8.0, 15.0)
    frame = NDData(img, uncertainty=StdDevUncertainty(np.full(img.shape,
                                                              10.0)))
    with pytest.warns(AstropyUserWarning, match='1 measured again'):
        sky = SkyEstimate.from_annulus(frame, ann, exclude=ap)
    m = sky.meta
    assert m['source_masked'][0] > 40 and m['source_masked'][1] == 0
    total = (sky.n_pix + m['n_clipped'] + m['source_masked']
             + m['n_excluded_apertures'] + m['n_excluded_bad'])
    assert total[0] == total[1]
    assert sky.n_pix[0] < sky.n_pix[1]
    assert sky.error_on_mean == pytest.approx(
        10.0 / np.sqrt(sky.n_pix), rel=0.02)
    # photon-starved: levels solved under the Poisson model, cleaned
    starved = rng.poisson(2.0 + light).astype(float)
    with pytest.warns(AstropyUserWarning, match='1 measured again'):
        low = SkyEstimate.from_annulus(starved, ann, exclude=ap, gain=1.0)
    assert low.meta['source_masked'][0] > 20
    assert np.all(np.abs(low.value - 2.0) < 3 * low.error_on_mean)
