"""
The uneven-noise flag (64) on real frames: astropy's crowded M13, whose
cluster light raises the pixel noise among its stars and leaves its
outskirts quieter than the frame's one ``std``, is flagged on a sizeable
fraction of its stars; Source Extractor's ESO frame and ccdproc's SAAO
frame (reduced, without its map), of even noise, flag nothing.
"""

import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty
from photutils.aperture import CircularAperture

from ccdphot_ext import FLAG_SKY_ANNULUS, SkyEstimate, photometer, read_frame
from ccdphot_ext.background.noisevariation import (
    NOISE_CELL,
    NOISE_TOLERANCE,
    NoiseVariation,
)
from ccdphot_ext.detection.findstars import find_stars

NOISE_WARNING = 'the pixel noise varies across the frame'


def _recorded(call, *args, **kwargs):
    """``call``'s result and the texts of the warnings it gave."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter('always')
        result = call(*args, **kwargs)
    return result, [str(w.message) for w in record]


def _flagged(table):
    return (np.asarray(table['flags']) & FLAG_SKY_ANNULUS) > 0


def _cell_ratio(noise, xy):
    iy = (np.floor(xy[:, 1] + 0.5) // NOISE_CELL).astype(int)
    ix = (np.floor(xy[:, 0] + 0.5) // NOISE_CELL).astype(int)
    return noise.ratio[iy, ix]


@pytest.fixture(scope='module')
def m13_stars(m13):
    """M13's stars at 5 sigma of its masked whole-frame sky (487 when
    this was written), measured in r = 4 circles against that sky."""
    ccd, sky = m13
    stars, _ = _recorded(find_stars, ccd, sky, n_sigma=5)
    xy = np.column_stack([stars['x_center'], stars['y_center']])
    table, said = _recorded(photometer, ccd, CircularAperture(xy, 4.0), sky)
    return xy, table, said


def test_m13_noise_varies_among_its_stars(m13):
    """The noise of M13's 64-pixel cells, over the frame's: up to 1.7
    among the cluster's stars (its unresolved light), half of it on the
    outskirts; the cells the cluster covers hold too few sky pixels to be
    judged."""
    _, sky = m13
    noise = sky.background_variation.noise
    assert isinstance(noise, NoiseVariation)
    assert noise.ratio.shape == (5, 5) and noise.uneven
    lo, hi = noise.extremes
    assert 0.4 < lo < 0.6 and 1.5 < hi < 2.0  # measured 0.48 and 1.74
    # the core (most of its pixels masked as sources): not judged
    assert 2 <= np.isnan(noise.ratio).sum() <= 8  # measured 5
    judged = noise.ratio[np.isfinite(noise.ratio)]
    assert np.mean(np.abs(judged - 1) > NOISE_TOLERANCE) > 0.5


def test_m13_flags_a_sizeable_fraction_of_its_stars(m13, m13_stars):
    _, sky = m13
    xy, table, said = m13_stars
    noise = sky.background_variation.noise
    flagged = _flagged(table)
    assert 400 < len(xy) < 600  # measured 487
    # measured 185 of 487 (0.38)
    assert 0.25 < flagged.mean() < 0.55
    # the rows flagged are those in the cells the variation judges
    # doubtful: their cell's noise is over 10% off the frame's
    np.testing.assert_array_equal(flagged,
                                  noise.doubtful(xy[:, 0], xy[:, 1]))
    ratio = _cell_ratio(noise, xy)
    assert np.all(np.abs(ratio[flagged] - 1) > NOISE_TOLERANCE)
    # on both sides: noisier among the stars, quieter on the outskirts
    assert np.sum(ratio[flagged] > 1) > 20 and np.sum(ratio[flagged] < 1) > 20
    # one warning says how many, and the table's notes keep it
    noise_said = [m for m in said if m.startswith(NOISE_WARNING)]
    assert len(noise_said) == 1
    assert f'for {flagged.sum()} of {len(xy)} aperture(s)' in noise_said[0]
    assert noise_said[0] in table.meta['notes']


def test_m13_with_an_uncertainty_map_is_not_judged(m13, m13_stars):
    """With an uncertainty map each pixel brings its own noise: no row is
    flagged 64, and no warning says the noise varies."""
    ccd, sky = m13
    xy, _, _ = m13_stars
    sigma = np.full(ccd.shape, sky.std)
    mapped = CCDData(ccd.data, unit=ccd.unit, meta=ccd.meta,
                     uncertainty=StdDevUncertainty(sigma))
    table, said = _recorded(photometer, mapped, CircularAperture(xy, 4.0),
                            sky)
    assert not _flagged(table).any()
    assert not any(m.startswith(NOISE_WARNING) for m in said)


def _even(ccd, xy, radius):
    """The whole-frame sky of a frame of even noise and the photometry at
    ``xy``: the cells' noise within 5% of the frame's, nothing flagged or
    warned."""
    sky, _ = _recorded(SkyEstimate.from_image, ccd)
    noise = sky.background_variation.noise
    assert ccd.uncertainty is None  # judged: no map
    assert noise.shape == ccd.shape and not noise.uneven
    lo, hi = noise.extremes
    assert 0.95 <= lo <= hi <= 1.05, (lo, hi)
    table, said = _recorded(photometer, ccd,
                            CircularAperture(xy, radius), sky)
    assert len(table) == len(xy)
    assert not _flagged(table).any()
    assert not any(m.startswith(NOISE_WARNING) for m in said)
    assert not any(NOISE_WARNING in n for n in table.meta['notes'])


def test_eso_frame_flags_nothing(sextractor_dir):
    """Source Extractor's ESO frame, at its catalogue's 65 sources (cell
    noise 0.96-1.03 of the frame's when measured)."""
    ccd, _ = _recorded(read_frame, sextractor_dir / 'image.fits')
    cat = np.loadtxt(sextractor_dir / 'image.cat')
    _even(ccd, cat[:, 1:3] - 1.0, 5.0)  # FITS to 0-based


def test_saao_frame_flags_nothing(saao_trimmed):
    """ccdproc's SAAO frame, overscan-subtracted and trimmed, without an
    uncertainty map (which would take it out of the judging), at its
    stars found at 5 sigma (24 when measured; cell noise 0.95-1.04)."""
    reduced = saao_trimmed[:511]  # its 8 unexposed rows cut
    ccd = CCDData(reduced.data, unit=reduced.unit, meta=reduced.meta)
    sky, _ = _recorded(SkyEstimate.from_image, ccd)
    stars, _ = _recorded(find_stars, ccd, sky, n_sigma=5)
    xy = np.column_stack([stars['x_center'], stars['y_center']])
    assert 15 < len(xy) < 40
    _even(ccd, xy, 6.0)
