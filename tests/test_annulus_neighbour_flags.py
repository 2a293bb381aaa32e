"""A neighbour in a sky annulus flags the annulus: an unmeasured star
whatever its lift test says (the light around its core that the clip
keeps lifts the level by about one of its errors), and a neighbour
whose aperture is given in exclude= among more apertures than annuli."""

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus, CircularAperture

from ccdphot_ext import FLAG_SKY_ANNULUS, SkyEstimate, photometer

N = 100
POS = np.array([(20.3 + 30 * i, 20.7 + 30 * j)
                for i in range(3) for j in range(3)])
YY, XX = np.mgrid[:N, :N]


def _stars(pos, flux, s=1.5):
    img = np.zeros((N, N))
    for x, y in pos:
        img += flux * np.exp(-((XX - x) ** 2 + (YY - y) ** 2)
                             / (2 * s * s)) / (2 * np.pi * s * s)
    return img


def _frame(rng, light):
    return rng.poisson(100.0 + light) + rng.normal(0.0, 5.0, light.shape)


@pytest.mark.parametrize('flux', [20000.0, 5000.0, 2000.0])
def test_unmeasured_neighbour_in_annulus_flags_every_row(flux):
    """3000 ADU stars, r = 5, annuli 8-15 px, an unmeasured neighbour
    7 px (straddling the inner edge), 9 and 12 px (inside) and 15 px
    (straddling the outer edge) away: the lift test flagged 28% of the
    20000 ADU neighbours' rows, whose levels all read about one error
    high; now every row, and the level is measured again without the
    neighbour's pixels (it read 1.2 errors high, now within 0.25 of the
    sky on average)."""
    rng = np.random.default_rng(5)
    ap = CircularAperture(POS, 5.0)
    ann = CircularAnnulus(POS, 8.0, 15.0)
    flags, lift, masked = [], [], []
    for d in (7.0, 9.0, 12.0, 15.0):
        light = _stars(POS, 3000.0) + _stars(POS + [d, 1.0], flux)
        for _ in range(2):
            img = _frame(rng, light)
            with pytest.warns(AstropyUserWarning, match='hold a source'):
                sky = SkyEstimate.from_annulus(img, ann, exclude=ap,
                                               gain=1.0)
            assert np.all(sky.meta['source_held'])
            masked.append(sky.meta['source_masked'])
            table = photometer(img, ap, sky, gain=1.0)
            flags.append(np.asarray(table['flags']))
            lift.append((sky.value - 100.0) / sky.error_on_mean)
    flags, lift = np.concatenate(flags), np.concatenate(lift)
    masked = np.concatenate(masked)
    assert np.all(flags & FLAG_SKY_ANNULUS)
    # the neighbour's pixels left out (a 12-15 px annulus of 530 pixels
    # keeps more than half of them), and the level no longer lifted
    assert np.all(masked >= 15)
    assert np.all(masked <= 265)
    assert abs(np.mean(lift)) < 0.25


def test_clean_annuli_and_a_cosmic_ray_are_not_flagged():
    """The same stars without neighbours: no annulus holds a source and
    none is flagged; a one-pixel cosmic ray in an annulus (no wings, the
    clip takes it all) is no star's light either."""
    rng = np.random.default_rng(6)
    ap = CircularAperture(POS, 5.0)
    ann = CircularAnnulus(POS, 8.0, 15.0)
    light = _stars(POS, 3000.0)
    for k in range(12):
        img = _frame(rng, light)
        if k % 2:
            img[int(POS[4, 1]), int(POS[4, 0]) + 11] += 5000.0
        sky = SkyEstimate.from_annulus(img, ann, exclude=ap, gain=1.0)
        assert not np.any(sky.meta['source_held'])
        assert not np.any(sky.meta['flags'])
        assert not np.any(photometer(img, ap, sky, gain=1.0)['flags'])


@pytest.mark.parametrize('own_first', [True, False])
def test_excluded_neighbours_among_more_apertures_flag(own_first):
    """exclude= holds the 9 measured apertures and 9 neighbours' whose
    circles reach into the annuli: the rows were all unflagged (the
    neighbours' pixels were not told from the annuli's own); now each is
    flagged, in whichever order the apertures come, and its neighbour's
    pixels are counted."""
    nb = POS + [9.0, 1.0]
    light = _stars(POS, 3000.0) + _stars(nb, 20000.0)
    img = np.random.default_rng(1).poisson(100.0 + light) + 0.0
    ap = CircularAperture(POS, 5.0)
    both = CircularAperture(np.vstack([POS, nb] if own_first
                                      else [nb, POS]), 5.0)
    ann = CircularAnnulus(POS, 8.0, 15.0)
    with pytest.warns(AstropyUserWarning, match="9 hold pixels of another "
                                                "star's aperture"):
        sky = SkyEstimate.from_annulus(img, ann, exclude=both, gain=1.0)
    assert sky.meta['flags'].tolist() == [FLAG_SKY_ANNULUS] * 9
    with pytest.warns(AstropyUserWarning, match='hold a source'):
        own = SkyEstimate.from_annulus(img, ann, exclude=ap, gain=1.0)
    # the neighbours' pixels: those left out beyond the own apertures'
    assert np.all(sky.meta['n_excluded_neighbours']
                  == sky.meta['n_excluded_apertures']
                  - own.meta['n_excluded_apertures'])
    assert np.all(sky.meta['n_excluded_neighbours'] > 40)
    table = photometer(img, ap, sky, gain=1.0)
    assert np.all(table['flags'] & FLAG_SKY_ANNULUS)


def test_own_apertures_alone_in_exclude_are_no_neighbours():
    """exclude= with the measured apertures only, on a clean frame: no
    neighbour pixels, no flag (also when the same apertures are given
    twice: the second copy's pixels are the annuli's own)."""
    img = _frame(np.random.default_rng(2), _stars(POS, 3000.0))
    ann = CircularAnnulus(POS, 8.0, 15.0)
    twice = CircularAperture(np.vstack([POS, POS]), 8.5)
    sky = SkyEstimate.from_annulus(img, ann, exclude=twice, gain=1.0)
    assert not np.any(sky.meta['n_excluded_neighbours'])
    assert not np.any(sky.meta['flags'])
