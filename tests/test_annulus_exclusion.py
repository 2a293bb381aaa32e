"""Sky annuli that overlap apertures: excluded pixels, flag 64, warnings."""

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot
from photutils.aperture import (
    ApertureStats,
    CircularAnnulus,
    CircularAperture,
    EllipticalAnnulus,
)

from ccdphot_ext import (
    FLAG_SKY_ANNULUS,
    BoxAperture,
    SkyEstimate,
    decode_flags,
    photometer,
)
from ccdphot_ext.flags import FLAG_NO_SOURCE_TERM


def _star_frame(rng, sky=86.2, flux=60000.0, shape=(120, 120), at=(60, 60)):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    s = 2.0
    star = flux / (2 * np.pi * s * s) * np.exp(
        -((xx - at[0]) ** 2 + (yy - at[1]) ** 2) / (2 * s * s))
    return sky + star + rng.normal(0.0, 5.0, shape), star


def test_annulus_inside_the_box_is_flagged_and_its_pixels_excluded(rng):
    """``--sky annulus --annulus 3,8`` around a 12-px box: the annulus
    lies in the star; without exclusion the sky is the star's light."""
    img, star = _star_frame(rng)
    box = BoxAperture((60, 60), 12, 12)
    ann = CircularAnnulus((60, 60), 3, 8)
    with pytest.warns(AstropyUserWarning) as caught:
        naive = photometer(img, box, SkyEstimate.from_annulus(img, ann))
    texts = ' '.join(str(w.message) for w in caught)
    assert 'own aperture' in texts
    # the star's light, falling off outwards, also shows in the annulus
    assert 'inner half is brighter' in texts
    assert naive['sky'][0] > 86.2 + 20  # as reported: the sky is starlight
    assert naive['flags'][0] & FLAG_SKY_ANNULUS
    # the apertures excluded: only the annulus pixels the box does not
    # touch are left, and the annulus is still flagged (its own box reaches
    # into it; most of its pixels are gone), never silent
    with pytest.warns(AstropyUserWarning, match='flagged doubtful'):
        sky = SkyEstimate.from_annulus(img, ann, exclude=box)
    assert sky.n_pix[0] + sky.meta['n_excluded_apertures'][0] + \
        sky.meta['n_clipped'][0] == 168  # the annulus' pixels
    assert sky.meta['n_own_overlap'][0] > 0
    assert sky.meta['flags'][0] == FLAG_SKY_ANNULUS
    t = photometer(img, box, sky)
    assert t['flags'][0] & FLAG_SKY_ANNULUS
    assert 'sky annulus overlaps the aperture' in ' '.join(
        decode_flags(t['flags'][0]))
    assert abs(t['sky'][0] - 86.2) < 5


def test_clean_annulus_is_not_flagged_and_equals_photutils(rng):
    img, _ = _star_frame(rng)
    box = BoxAperture((60, 60), 12, 12)
    ann = CircularAnnulus((60, 60), 12, 20)
    sky = SkyEstimate.from_annulus(img, ann, method='mean', exclude=box)
    assert sky.meta['flags'].tolist() == [0]
    assert sky.meta['n_excluded_apertures'].tolist() == [0]
    stats = ApertureStats(img, ann, sum_method='center')
    assert sky.value[0] == pytest.approx(stats.mean, rel=1e-12)
    assert sky.n_pix[0] == stats.sum_aper_area.value
    # (2048: no gain given, the star's photon noise could matter)
    assert photometer(img, box, sky)['flags'][0] & ~FLAG_NO_SOURCE_TERM == 0


def test_neighbours_apertures_are_left_out(rng):
    img, _ = _star_frame(rng)
    img2, _ = _star_frame(np.random.default_rng(1), sky=0.0, at=(75, 60))
    img = img + img2  # a neighbour 15 px away, inside the first annulus
    circles = CircularAperture([(60, 60), (75, 60)], r=5)
    ann = CircularAnnulus([(60, 60), (75, 60)], 8, 18)
    # without exclude: the neighbour is a source in each annulus, flagged,
    # and the level measured again without its pixels (150 of 812, to
    # 8.7 px from it, where its profile's light left is a twentieth of
    # the level's error)
    with pytest.warns(AstropyUserWarning, match='2 of 2 sky annuli flagged '
                                                'doubtful: they hold a source'):
        plain = SkyEstimate.from_annulus(img, ann, method='mean')
    assert plain.meta['flags'].tolist() == [FLAG_SKY_ANNULUS] * 2
    assert plain.meta['source_masked'].tolist() == [150, 150]
    assert np.all(plain.n_pix == 812 - 150)
    assert np.all(np.abs(plain.value - 86.2) < 2 * plain.error_on_mean)
    # left out, but flagged: the neighbour's light beyond its circle
    with pytest.warns(AstropyUserWarning, match="2 hold pixels of another "
                                                "star's aperture"):
        clean = SkyEstimate.from_annulus(img, ann, method='mean',
                                         exclude=circles)
    assert np.all(clean.meta['n_excluded_apertures'] > 0)
    assert clean.meta['flags'].tolist() == [FLAG_SKY_ANNULUS] * 2
    assert np.all(clean.meta['n_excluded_neighbours']
                  == clean.meta['n_excluded_apertures']
                  - clean.meta['n_own_overlap'])
    # the neighbour's light beyond its circle lifts the level left out
    # of the circles (0.7 to 1 above the sky) more than the mask's
    assert np.all(clean.value > plain.value + 0.5)
    assert np.all(np.abs(clean.value - 86.2) < 8)
    # the pixels left are exactly those no circle touches
    yy, xx = np.mgrid[:120, :120]
    touched = np.zeros(img.shape, bool)
    for x, y in circles.positions:
        dx = np.maximum(np.abs(xx - x) - 0.5, 0)
        dy = np.maximum(np.abs(yy - y) - 0.5, 0)
        touched |= dx ** 2 + dy ** 2 < 25
    d = np.hypot(xx - 60, yy - 60)
    use = (d >= 8) & (d < 18) & ~touched
    assert clean.n_pix[0] == use.sum()
    assert clean.value[0] == pytest.approx(img[use].mean(), rel=1e-12)


def test_vectorised_circular_annuli_equal_photutils_masks(rng):
    img = rng.normal(100.0, 5.0, (200, 200))
    pos = rng.uniform(-5, 205, (300, 2))
    ann = CircularAnnulus(pos, 4.3, 9.7)
    with pytest.warns(AstropyUserWarning, match=r'23 keep fewer than 50% '
                      r'of their pixels \(off the frame'):
        sky = SkyEstimate.from_annulus(img, ann, method='mean')
    # the annuli the frame's edge cuts to fewer than half their pixels
    whole = CircularAnnulus((100, 100), 4.3, 9.7).to_mask(
        method='center').data
    cut = np.asarray(sky.meta['flags']) == FLAG_SKY_ANNULUS
    assert (sky.n_pix[cut] < 0.5 * whole.sum() + 5).all()
    assert (sky.n_pix[~cut] > 0.5 * whole.sum() - 5).all()
    ref = ApertureStats(img, ann, sum_method='center')
    n = np.asarray(ref.sum_aper_area.value)
    np.testing.assert_array_equal(sky.n_pix, n)
    np.testing.assert_allclose(sky.value, ref.mean, rtol=1e-12)
    # an elliptical annulus (photutils masks) gets the exclusion too
    ell = EllipticalAnnulus((60, 60), 3, 9, 6, theta=0.3)
    with pytest.warns(AstropyUserWarning):
        out = SkyEstimate.from_annulus(img, ell,
                                       exclude=CircularAperture((60, 60), 5))
    assert out.meta['n_own_overlap'][0] > 0
    assert out.meta['flags'][0] == FLAG_SKY_ANNULUS


def test_cli_annulus_excludes_the_box(tmp_path, rng):
    from astropy.io import fits
    img, _ = _star_frame(rng)
    path = tmp_path / 'f.fits'
    fits.PrimaryHDU(img.astype(np.float32)).writeto(path)
    out = tmp_path / 'o.ecsv'
    code, _, err = ccdphot('measure', path, '--box', '54:66,54:66', '--sky',
                           'annulus', '--annulus', '3,12', '-o', out)
    assert code == 0, err
    assert 'no usable BUNIT' in err  # a bare array: adu assumed, and said
    from astropy.table import QTable
    t = QTable.read(out)
    # the box's pixels left out; enough sky left: no doubt (2048: no gain)
    assert t['flags'][0] & ~FLAG_NO_SOURCE_TERM == 0
    assert abs(float(np.asarray(t['sky'])[0]) - 86.2) < 5
    # most of the annulus in the box: too little sky left, flagged
    code, _, err = ccdphot('measure', path, '--box', '54:66,54:66', '--sky',
                           'annulus', '--annulus', '3,8', '-o', out)
    assert code == 0 and 'keep fewer than 50% of their pixels' in err
    assert QTable.read(out)['flags'][0] & ~FLAG_NO_SOURCE_TERM == (
        FLAG_SKY_ANNULUS)


def test_elliptical_aperture_in_its_own_annulus_is_flagged(rng):
    """An ellipse reaching into its own annulus is found (its exact
    overlaps) and its pixels excluded as photutils' exact mask says; with
    most of the annulus left, no doubt (a smaller ellipse touches none)."""
    from photutils.aperture import EllipticalAperture

    img, _ = _star_frame(rng)
    ann = CircularAnnulus((60.3, 59.8), 6, 14)
    big = EllipticalAperture((60.3, 59.8), 9.0, 4.0, theta=0.4)
    sky = SkyEstimate.from_annulus(img, ann, exclude=big)
    ring = ann.to_mask(method='center').to_image(img.shape) > 0
    touched = big.to_mask(method='exact').to_image(img.shape) > 0
    assert sky.meta['n_own_overlap'][0] == np.count_nonzero(ring & touched)
    assert sky.meta['n_excluded_apertures'][0] == np.count_nonzero(
        ring & touched)
    assert sky.meta['flags'][0] == 0
    small = EllipticalAperture((60.3, 59.8), 4.0, 2.5, theta=0.4)
    clean = SkyEstimate.from_annulus(img, ann, exclude=small)
    assert clean.meta['n_own_overlap'][0] == 0
    assert clean.meta['flags'][0] == 0


def test_many_annuli_extra_memory_under_half_the_frame():
    """Chunks scale with the frame: thousands of annuli with their
    apertures excluded stay well under half the frame's float64 size."""
    import tracemalloc

    rng = np.random.default_rng(12)
    img = rng.normal(300.0, 10.0, (1024, 1024)).astype(np.float32)
    xy = rng.uniform(0, 1024, (3000, 2))
    ann = CircularAnnulus(xy, 8.0, 14.0)
    tracemalloc.start()
    try:
        with pytest.warns(AstropyUserWarning, match='flagged doubtful'):
            sky = SkyEstimate.from_annulus(
                img, ann, exclude=CircularAperture(xy, 5.0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.nanmedian(sky.value) == pytest.approx(300.0, abs=0.5)
    assert peak < 0.4 * img.size * 8


def _isolated_stars(rng):
    """Six isolated stars (Gaussian, sigma 1 px) on a flat sky of 50."""
    xy = np.array([(20.3, 22.7), (61.0, 18.4), (99.6, 25.1), (24.8, 80.2),
                   (63.5, 95.9), (101.2, 70.6)])
    yy, xx = np.mgrid[:120, :120]
    img = rng.normal(50.0, 2.0, (120, 120))
    for x, y in xy:
        img += 3000.0 / (2 * np.pi) * np.exp(-((xx - x) ** 2
                                               + (yy - y) ** 2) / 2)
    return img, xy


def test_standard_aperture_geometry_is_not_flagged(rng):
    """A 3-pixel circle with a 3-7 pixel annulus (Spitzer/IRAC's
    calibration aperture): with the apertures excluded, the pixels the
    circle touches are left out (numpy reference) and no row is flagged;
    without exclusion (photutils' way) no row is flagged either; an annulus
    starting inside the circle is."""
    img, xy = _isolated_stars(rng)
    circles = CircularAperture(xy, r=3.0)
    ann = CircularAnnulus(xy, 3.0, 7.0)
    sky = SkyEstimate.from_annulus(img, ann, method='mean', exclude=circles)
    assert sky.meta['flags'].tolist() == [0] * 6
    assert np.all(sky.meta['n_own_overlap'] > 0)  # left out, no doubt
    assert sky.meta['n_excluded_neighbours'].tolist() == [0] * 6
    yy, xx = np.mgrid[:120, :120]
    for k, (x, y) in enumerate(xy):
        d = np.hypot(xx - x, yy - y)
        near_x = np.maximum(np.abs(xx - x) - 0.5, 0.0)
        near_y = np.maximum(np.abs(yy - y) - 0.5, 0.0)
        use = (d >= 3) & (d < 7) & (near_x ** 2 + near_y ** 2 >= 9)
        assert sky.n_pix[k] == use.sum()
        assert sky.value[k] == pytest.approx(img[use].mean(), rel=1e-12)
    table = photometer(img, circles, sky)
    assert (table['flags'] & ~FLAG_NO_SOURCE_TERM).tolist() == [0] * 6
    # photutils' way, the annulus measured as it is: no flag, no warning
    plain = photometer(img, circles, SkyEstimate.from_annulus(img, ann))
    assert (plain['flags'] & ~FLAG_NO_SOURCE_TERM).tolist() == [0] * 6
    # an annulus that starts inside the circle overlaps it: flagged
    inner = SkyEstimate.from_annulus(img, CircularAnnulus(xy, 2.0, 7.0))
    with pytest.warns(AstropyUserWarning, match='6 of 6 sky annuli reach '
                                                'into their own aperture'):
        overlapping = photometer(img, circles, inner)
    assert (overlapping['flags'] & ~FLAG_NO_SOURCE_TERM).tolist() == [
        FLAG_SKY_ANNULUS] * 6


def test_cli_standard_aperture_geometry(tmp_path, rng):
    """The installed ``ccdphot``: --radius 3 --sky annulus --annulus 3,7
    leaves every row unflagged (it flagged every one, "0 unflagged")."""
    from astropy.io import fits
    from astropy.table import Table
    from clirun import installed_ccdphot

    img, xy = _isolated_stars(rng)
    # in electrons the sky of 50 has a photon noise of sqrt(50): a scatter
    # of 2 would not fit gain 1 (and warn)
    img += rng.normal(0.0, np.sqrt(50.0 - 4.0), img.shape)
    fits.PrimaryHDU(img.astype(np.float32)).writeto(tmp_path / 'f.fits')
    Table({'x': xy[:, 0], 'y': xy[:, 1]}).write(tmp_path / 'pos.csv')
    code, out, err = installed_ccdphot(
        'measure', tmp_path / 'f.fits', '--unit', 'electron', '--positions',
        tmp_path / 'pos.csv', '--radius', '3', '--sky', 'annulus',
        '--annulus', '3,7')
    assert code == 0, err
    assert 'rows      6: 6 unflagged' in out
    assert 'warning' not in err


def test_covered_pixels_are_photutils_center_masks():
    """The pixels an aperture covers (their centres inside) are exactly
    photutils' ``method='center'`` masks: circles, ellipses, annuli and
    axis-aligned boxes."""
    from photutils.aperture import EllipticalAperture

    from ccdphot_ext.aperture.touch import touch_shape

    ys, xs = np.arange(41)[None, :, None], np.arange(41)[None, None, :]
    for ap in (EllipticalAperture((20.3, 19.8), 9, 4, theta=0.4),
               CircularAperture((20.5, 20.5), 3.0),
               EllipticalAnnulus((20.2, 20.7), 3, 9, 6, theta=1.1),
               BoxAperture((20.25, 19.5), 7, 4)):
        x, y = np.atleast_2d(ap.positions).T
        covered = touch_shape(ap).covers(x, y, ys, xs)[0]
        center = ap.to_mask(method='center').to_image((41, 41)) > 0
        assert covered.sum() > 20
        np.testing.assert_array_equal(covered, center)
