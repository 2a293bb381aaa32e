"""Sky annuli that hold a star's light: the inner-against-outer test of
wings, and the test of a source in the annulus."""

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus, CircularAperture

from ccdphot_ext import FLAG_SKY_ANNULUS, SkyEstimate, photometer, read_frame


def _grid(n, step, rng):
    g = np.arange(step, n - step / 2, step, dtype=float)
    x, y = (a.ravel() + rng.uniform(-1, 1, a.size) for a in np.meshgrid(g, g))
    return np.c_[x, y]


def _moffat(shape, pos, flux, fwhm=3.8, beta=3.0):
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    img = np.zeros(shape)
    for x, y in pos:
        r2 = ((xx - x) ** 2 + (yy - y) ** 2) / alpha ** 2
        img += flux * (beta - 1.0) / (np.pi * alpha ** 2) * (1 + r2) ** -beta
    return img


def test_flat_and_sloped_skies_give_standard_normal_and_no_flags():
    rng = np.random.default_rng(21)
    yy, xx = np.mgrid[:400, :400]
    z = []
    for slope in (0.0, 0.05):  # 0.05 per pixel: 20 sigma across the frame
        for _ in range(4):
            img = rng.normal(100.0 + slope * xx, 1.0)
            ann = CircularAnnulus(_grid(400, 20, rng), 6.0, 16.0)
            sky = SkyEstimate.from_annulus(img, ann)
            assert not np.any(sky.meta['flags'])
            z.append(sky.meta['wing_significance'])
    z = np.concatenate(z)
    assert abs(np.mean(z)) < 0.1
    assert np.std(z) == pytest.approx(1.0, abs=0.1)


def test_annuli_in_moffat_wings_are_flagged_and_so_are_those_further_out():
    rng = np.random.default_rng(22)
    pos = _grid(200, 40, rng)
    star = _moffat((200, 200), pos, 3e5)
    img = rng.poisson(200.0 + star) + rng.normal(0.0, 5.0, star.shape)
    circles = CircularAperture(pos, 4.0)
    with pytest.warns(AstropyUserWarning, match=r'inner half is brighter'), \
            pytest.warns(AstropyUserWarning, match='hold a source'):
        near = SkyEstimate.from_annulus(img, CircularAnnulus(pos, 6.0, 16.0),
                                        exclude=circles, gain=1.0)
    assert np.all(near.meta['flags'] & FLAG_SKY_ANNULUS)
    rows = photometer(img, circles, near, gain=1.0)
    assert np.all(rows['flags'] & FLAG_SKY_ANNULUS)
    # the wings' lift is large: these levels are biased, not noisy
    assert np.median(near.value - 200.0) > 5 * np.median(near.error_on_mean)
    # further out no annulus alone holds 5 standard errors of wing light,
    # but all hold some: 2 e- a pixel at 14-19 px, a level lifted by
    # about 2 of its errors, a 3e5 e- star's flux 0.2 of its error low
    with pytest.warns(AstropyUserWarning, match='share a lift: their inner '
                      'halves read brighter'):
        far = SkyEstimate.from_annulus(img, CircularAnnulus(pos, 14.0, 19.0),
                                       exclude=circles, gain=1.0)
    assert not np.any(far.meta['wing_significance'] > 5.0)
    assert far.meta['shared_lift'] > 4.0
    assert np.all(far.meta['flags'] & FLAG_SKY_ANNULUS)
    assert np.median(far.value - 200.0) > np.median(far.error_on_mean)


def test_real_frame_wing_flags_are_the_lifted_annuli(sextractor_dir):
    """Source Extractor's ESO frame, default annuli (6-16 px) around its
    catalogue: the annuli the wing and source tests flag are those of the
    brightest stars, and each reads its sky well above the same star's
    annulus further out (14-24 px), which their wings do not reach; no
    annulus left unflagged is lifted as far."""
    with pytest.warns(AstropyUserWarning,
                      match='no usable BUNIT|non-standard header'):
        ccd = read_frame(sextractor_dir / 'image.fits')
    cat = np.loadtxt(sextractor_dir / 'image.cat')
    pos, flux = cat[:, 1:3] - 1.0, cat[:, 15]  # FITS to 0-based; FLUX_AUTO
    circles = CircularAperture(pos, 5.0)
    # a crowded frame: most annuli also hold a neighbour's aperture
    with pytest.warns(AstropyUserWarning) as record:
        near = SkyEstimate.from_annulus(ccd, CircularAnnulus(pos, 6.0, 16.0),
                                        exclude=circles)
        far = SkyEstimate.from_annulus(ccd, CircularAnnulus(pos, 14.0, 24.0),
                                       exclude=circles)
    said = [str(w.message) for w in record]
    assert sum('inner half is brighter' in m for m in said) == 1
    # one per call: two stars' far annuli hold a faint source the
    # catalogue lacks (at 127, 228; 7 std at its peak)
    assert sum('hold a source' in m for m in said) == 2
    held = far.meta['source_held'] & ~(far.meta['n_excluded_neighbours']
                                       > 0)
    assert np.flatnonzero(held).tolist() == [8, 63]
    assert np.all(far.meta['flags'][held] & FLAG_SKY_ANNULUS)
    wings = near.meta['wing_significance'] > 5.0
    source = near.meta['source_significance'] > 3.5
    lit = wings | source
    assert np.all(near.meta['flags'][lit] & FLAG_SKY_ANNULUS)
    assert wings.sum() == 3
    # the frame's second brightest star (3e5 ADU): its wings reach the
    # annulus' outer half too (wing test 3.6), but its brightest pixels
    # there are a source
    assert np.count_nonzero(source & ~wings) == 1
    # among the ten brightest of 65 stars
    assert set(np.nonzero(lit)[0]) <= set(np.argsort(flux)[-10:])
    lift = (near.value - far.value) / near.error_on_mean
    # the 3e5 ADU star's source is measured again without its pixels
    # (193 of them, within 12 px of it): flagged still, its level 2.9
    # errors above the far annulus' (more than 5 without the mask)
    cleaned = near.meta['source_masked'] > 0
    assert np.flatnonzero(cleaned).tolist() == [47]
    assert np.all(lift[lit & ~cleaned] > 5.0)
    assert 1.0 < lift[47] < 4.0
    assert np.all(lift[~lit] < 4.0)
    # the neighbours' light the annuli share is too weak to flag them all
    # (2.7 and 1.4 standard errors here)
    assert abs(near.meta['shared_lift']) < 4.0
    assert abs(far.meta['shared_lift']) < 4.0
    # the far annuli's faint sources: a few pixels each
    assert np.all((far.meta['source_masked'][held] > 5)
                  & (far.meta['source_masked'][held] < 30))


def _gauss(shape, pos, flux, sigma=1.5):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    img = np.zeros(shape)
    for (x, y), f in zip(pos, flux, strict=True):
        img += f / (2 * np.pi * sigma ** 2) * np.exp(
            -((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    return img


def test_sources_in_annuli_are_flagged():
    """Stars 14 px apart measured against 8-14 px annuli without exclude=:
    each annulus holds its neighbours' cores, whose light around them (the
    clip keeps it) lifts the sky; the pull mean of their fluxes was -0.98
    with flags 0. At 24 px apart no annulus holds a source."""
    rng = np.random.default_rng(31)
    for spacing, lifted in ((14, True), (24, False)):
        g = np.arange(spacing, 200 - spacing / 2, spacing, dtype=float)
        pos = np.array([(x, y) for x in g for y in g])
        pos += rng.uniform(-0.5, 0.5, pos.shape)
        flux = 10 ** rng.uniform(3, 5, len(pos))
        img = (rng.poisson(100.0 + _gauss((200, 200), pos, flux))
               + rng.normal(0.0, 5.0, (200, 200))) / 2.0
        ann = CircularAnnulus(pos, 8.0, 14.0)
        if lifted:
            with pytest.warns(AstropyUserWarning, match='hold a source'):
                sky = SkyEstimate.from_annulus(img, ann, gain=2.0)
            z = sky.meta['source_significance']
            held = z > 3.5
            assert held.mean() > 0.8
            # every annulus holds a neighbour's core: all flagged (so the
            # lift they share is not said besides)
            assert np.all(sky.meta['source_held'])
            assert np.all(sky.meta['flags'] & FLAG_SKY_ANNULUS)
            # the flagged levels were lifted (a median of more than 3
            # errors); measured again without the neighbours' pixels (up
            # to 8 stars an annulus, where half its pixels are left), they
            # no longer are
            lift = (sky.value - 50.0) / sky.error_on_mean
            assert np.mean(sky.meta['source_masked'][held] > 0) > 0.9
            assert abs(np.median(lift[held])) < 0.5
        else:
            sky = SkyEstimate.from_annulus(img, ann, gain=2.0)
            assert not np.any(sky.meta['source_significance'] > 3.5)
            assert not np.any(sky.meta['flags'])


def test_a_star_the_apertures_do_not_list_is_flagged():
    """A field star beside a target, not among the apertures: exclude=
    cannot leave it out, and its annulus is flagged; the other targets'
    annuli are not."""
    rng = np.random.default_rng(32)
    targets = np.array([(40.0, 40.0), (120.0, 40.0), (40.0, 120.0),
                        (120.0, 120.0)])
    stars = (_moffat((160, 160), targets, 2e4)
             + _moffat((160, 160), [(52.0, 40.0)], 1e5))  # 12 px away
    img = rng.normal(200.0 + stars, 10.0)
    with pytest.warns(AstropyUserWarning, match='1 of 4 sky annuli flagged '
                      'doubtful: they hold a source'):
        sky = SkyEstimate.from_annulus(img, CircularAnnulus(targets, 8, 16),
                                       exclude=CircularAperture(targets, 4))
    assert sky.meta['flags'].tolist() == [FLAG_SKY_ANNULUS, 0, 0, 0]
    # its level is lifted far more than the others' (their own wings)
    lift = (sky.value - 200.0) / sky.error_on_mean
    assert lift[0] > 5.0
    assert np.all(lift[1:] < lift[0])


@pytest.mark.parametrize('kind', ['flat', 'sloped', 'starved', 'correlated'])
def test_no_source_flags_on_blank_skies(kind):
    """Pure noise holds no source: a flat and a steeply sloped white sky,
    a photon-starved Poisson sky (0.3 e- a pixel, skewed, in whole
    electrons) and 3 x 3-correlated noise, 361 annuli each."""
    from scipy.ndimage import uniform_filter

    rng = np.random.default_rng(33)
    yy, xx = np.mgrid[:400, :400]
    img = {'flat': lambda: rng.normal(100.0, 1.0, xx.shape),
           'sloped': lambda: rng.normal(100.0 + 0.05 * xx, 1.0),
           'starved': lambda: rng.poisson(0.3, xx.shape)
           + rng.normal(0.0, 0.5, xx.shape),
           'correlated': lambda: uniform_filter(
               rng.normal(0.0, 3.0, xx.shape), 3) + 100.0}[kind]()
    sky = SkyEstimate.from_annulus(img, CircularAnnulus(_grid(400, 20, rng),
                                                        6.0, 16.0))
    z = sky.meta['source_significance']
    assert not np.any(z > 3.5)
    assert not np.any(sky.meta['flags'])


def test_a_source_among_pixels_in_a_line():
    """An annulus masked but for one row of pixels, a source in it: the
    pixels left fix no plane, and the source is judged against their
    level (no linear-algebra error)."""
    rng = np.random.default_rng(34)
    img = rng.normal(100.0, 1.0, (60, 60))
    mask = np.ones(img.shape, bool)
    mask[30, :] = False
    img[30, 43:46] += [10.0, 50.0, 10.0]
    with pytest.warns(AstropyUserWarning, match='keep fewer than 50%'), \
            pytest.warns(AstropyUserWarning, match='masked/NaN/inf pixels'), \
            pytest.warns(AstropyUserWarning, match='hold a source'):
        sky = SkyEstimate.from_annulus(img, CircularAnnulus((30.2, 30.0), 5,
                                                            18), mask=mask)
    z = sky.meta['source_significance'][0]
    assert np.isfinite(z) and abs(z) < 3.5
    assert sky.meta['flags'][0] == FLAG_SKY_ANNULUS  # mostly masked


def _neighbour_frame(spacing, rng):
    g = np.arange(spacing, 200 - spacing / 2, spacing, dtype=float)
    pos = np.array([(x, y) for x in g for y in g])
    pos += rng.uniform(-0.5, 0.5, pos.shape)
    flux = 10 ** rng.uniform(3, 5, len(pos))
    img = (rng.poisson(100.0 + _gauss((200, 200), pos, flux))
           + rng.normal(0.0, 5.0, (200, 200))) / 2.0
    return img, pos


def test_a_lift_the_annuli_share_flags_them_all():
    """Stars 18 px apart against 8-14 px annuli: the faint light of the
    neighbours reaches each annulus' outer half, below the reach of the
    tests of one annulus (2 of 100 hold a source), and lifts every level
    by about half its error (flux pulls -0.1 with flags 0). Their wing
    significances share a mean, far from 0: every annulus is flagged. At
    26 px apart they do not, and none is."""
    rng = np.random.default_rng(35)
    img, pos = _neighbour_frame(18, rng)
    with pytest.warns(AstropyUserWarning) as record:
        sky = SkyEstimate.from_annulus(img, CircularAnnulus(pos, 8.0, 14.0),
                                       gain=2.0)
    said = [str(w.message) for w in record]
    assert sum('share a lift: their inner halves read fainter' in m
               and "neighbours' faint light" in m for m in said) == 1
    assert sum('hold a source' in m for m in said) <= 1
    assert sky.meta['shared_lift'] < -4.0
    assert np.all(sky.meta['flags'] & FLAG_SKY_ANNULUS)
    # the levels are lifted indeed (true sky 50 ADU)
    assert np.mean((sky.value - 50.0) / sky.error_on_mean) > 0.3
    img, pos = _neighbour_frame(26, rng)
    sky = SkyEstimate.from_annulus(img, CircularAnnulus(pos, 8.0, 14.0),
                                   gain=2.0)
    assert abs(sky.meta['shared_lift']) < 4.0
    assert not np.any(sky.meta['flags'])


def test_a_lift_from_the_bright_stars_own_wings_flags_their_annuli_only():
    """Stars of 300-30000 ADU (PSF sigma 1.8) and blank positions 30 px
    apart, r = 2 circles against 5-12 px annuli on white noise: the
    bright stars' own wings lift their annuli (flux pulls -0.25 to -0.3),
    below the one-annulus test's reach, so the annuli share a lift. Its
    size follows each annulus' own star: the bright stars' rows are
    flagged, the blank and faint ones (which every row was flagged with
    before) keep flags 0 and unbiased pulls."""
    from photutils.aperture import aperture_photometry
    rng = np.random.default_rng(15)
    pulls, flags, faint = [], [], []
    for _ in range(3):
        g = np.arange(20, 380, 30.0)
        x, y = (a.ravel() + rng.uniform(-3, 3, a.size)
                for a in np.meshgrid(g, g))
        flux = 10 ** rng.uniform(2.5, 4.5, x.size)
        flux[rng.uniform(0, 1, x.size) < 0.3] = 0.0
        model = _gauss((400, 400), np.c_[x, y], flux, sigma=1.8)
        img = 500.0 + model + rng.normal(0.0, 10.0, model.shape)
        circles = CircularAperture(np.c_[x, y], 2.0)
        with pytest.warns(AstropyUserWarning, match='share a lift'):
            sky = SkyEstimate.from_annulus(
                img, CircularAnnulus(circles.positions, 5.0, 12.0),
                exclude=circles)
        rows = photometer(img, circles, sky)
        truth = aperture_photometry(model, circles,
                                    method='exact')['aperture_sum']
        pulls.append((rows['aperture_sum'] - truth) / rows['aperture_sum_err'])
        flags.append(rows['flags'] & FLAG_SKY_ANNULUS)
        faint.append(flux)
    pulls, flags, flux = map(np.concatenate, (pulls, flags, faint))
    faint, bright = flux < 1000.0, flux > 1e4
    kept = flags == 0
    # the bright stars' fluxes are low indeed, and their rows flagged
    assert np.mean(pulls[bright]) < -0.15
    assert kept[bright].mean() < 0.1
    assert kept[faint].mean() > 0.7
    assert abs(np.mean(pulls[kept & faint])) < 0.15
    assert np.std(pulls[kept & faint]) == pytest.approx(1.0, abs=0.12)
    assert np.all(flags[~kept] == FLAG_SKY_ANNULUS)
