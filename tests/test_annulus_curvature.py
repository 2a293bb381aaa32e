"""An annulus sky on a background that curves about the star (a star on a
galaxy's bulge, a nebula): the annulus level misses the aperture's
background and the row is flagged 64 with a warning naming it; flat and
linearly sloping skies, bright Gaussian stars and the real frames are not
flagged."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    EllipticalAnnulus,
    RectangularAnnulus,
)
from scipy.special import erf

from ccdphot_ext import (
    FLAG_SKY_ANNULUS,
    SkyEstimate,
    measure,
    optimal_extraction,
    photometer,
    read_frame,
)
from ccdphot_ext.background.annuluscurvature import (
    annulus_curvature,
    check_annulus_curvature,
)
from ccdphot_ext.utils.inputs import as_frame

SIZE = 256
GAIN = 2.0
GRID = (48, 128, 208)


def _stars(xy, flux, sigma=1.5):
    """Pixel-integrated Gaussian stars (e-)."""
    img = np.zeros((SIZE, SIZE))
    edges = np.arange(SIZE + 1) - 0.5
    for (x, y), f in zip(xy, flux, strict=True):
        cx = np.diff(0.5 * erf((edges - x) / (np.sqrt(2) * sigma)))
        cy = np.diff(0.5 * erf((edges - y) / (np.sqrt(2) * sigma)))
        img += f * np.outer(cy, cx)
    return img


def _frames(rng, n_frames, *, blob=0.0, width=10.0, slope=0.0,
            flux=(2000.0, 20000.0)):
    """Nine stars on a 100 e- sky (read noise 5 e-, gain 2), each on a
    Gaussian blob of peak ``blob`` e- and sigma ``width`` px, or a plane of
    ``slope`` e-/px at a random angle; r = 4 circles, 8-14 px annuli.
    Yields the frame (ADU), the apertures, the annuli and the true flux
    bias of each annulus sky (ADU)."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for _ in range(n_frames):
        xy = (np.array([[x, y] for y in GRID for x in GRID], float)
              + rng.uniform(-0.5, 0.5, (9, 2)))
        light = _stars(xy, rng.uniform(*flux, 9))
        back = np.zeros((SIZE, SIZE))
        for x, y in xy:
            back += blob * np.exp(-((xx - x) ** 2 + (yy - y) ** 2)
                                  / (2 * width ** 2))
        angle = rng.uniform(0, 2 * np.pi)
        plane = 100.0 + slope * ((xx - SIZE / 2) * np.cos(angle)
                                 + (yy - SIZE / 2) * np.sin(angle))
        data = (rng.poisson(light + back + plane)
                + rng.normal(0.0, 5.0, xx.shape)) / GAIN
        ap = CircularAperture(xy, 4)
        ann = CircularAnnulus(xy, 8, 14)
        on_ap = ap.do_photometry(back / GAIN, method='exact')[0]
        in_ann = np.array([m.get_values(back / GAIN).mean()
                           for m in ann.to_mask(method='center')])
        yield data, ap, ann, on_ap - ap.area * in_ann


def _measure(data, ap, ann):
    sky = SkyEstimate.from_annulus(data, ann, gain=GAIN)
    return photometer(data, ap, sky, gain=GAIN)


def test_stars_on_blobs_flagged_and_warned():
    """The audit's case: stars on Gaussian blobs of 10 e- and 10 px (true
    biases 1-2 flux errors, pulls +1.5 with flags 0 before) are flagged,
    and the warning names the rows and the estimated bias."""
    rng = np.random.default_rng(11)
    flagged, ratio = [], []
    for data, ap, ann, bias in _frames(rng, 4, blob=10.0):
        with pytest.warns(AstropyUserWarning,
                          match=r'the background curves about \d+ of 9 '
                                r'aperture\(s\) \(id 1, ') as caught:
            t = _measure(data, ap, ann)
        flagged.append((np.asarray(t['flags']) & FLAG_SKY_ANNULUS) > 0)
        ratio.append(bias / np.asarray(t['aperture_sum_err']))
        assert any('curves' in note for note in t.meta['notes'])
        text = str(caught[-1].message)
        assert 'flux errors (flagged 64' in text
    flagged, ratio = np.concatenate(flagged), np.concatenate(ratio)
    assert np.all(ratio > 0.5)  # each row truly biased
    assert flagged.mean() > 0.9  # measured: 36 of 36


def test_estimated_bias_and_its_error():
    """The implied bias is a quadratic's: on a Gaussian blob of 30 e- and
    20 px (true bias ~1.5 flux errors) it reads ~1 flux error, its own
    error ~0.05 of a flux error (the flag's threshold is 5 of them)."""
    rng = np.random.default_rng(12)
    data, ap, ann, bias = next(_frames(rng, 1, blob=30.0, width=20.0))
    with pytest.warns(AstropyUserWarning, match='background curves'):
        t = _measure(data, ap, ann)
    err = np.asarray(t['aperture_sum_err'])
    res = annulus_curvature(as_frame(data), ann, np.asarray(t['n_pix']))
    assert np.all(res['checked'])
    est = res['bias'] / err
    assert np.median(bias / err) == pytest.approx(1.5, abs=0.2)
    assert np.median(est) == pytest.approx(1.0, abs=0.2)
    assert np.all(res['error'] / err < 0.08)
    assert np.all(est < bias / err)  # the quadratic underestimates


@pytest.mark.parametrize('slope', [0.0, 0.3])
def test_flat_and_sloped_skies_not_flagged(slope):
    """Flat and linearly sloping skies (0.3 e-/px: 77 e- across the
    frame), faint stars and bright ones (to 10^6 e-): no row flagged, no
    warning (the suite turns warnings into errors), and the implied
    biases are within their errors."""
    rng = np.random.default_rng(13)
    z = []
    for flux in ((2000.0, 20000.0), (1e5, 1e6)):
        for data, ap, ann, _ in _frames(rng, 6, slope=slope, flux=flux):
            t = _measure(data, ap, ann)
            assert np.all(np.asarray(t['flags']) & FLAG_SKY_ANNULUS == 0)
            res = annulus_curvature(as_frame(data), ann,
                                    np.asarray(t['n_pix']))
            z.append(res['bias'] / res['error'])
    z = np.concatenate(z)
    assert np.std(z) == pytest.approx(1.0, abs=0.3)
    assert np.max(np.abs(z)) < 4.0


def test_linear_gradient_on_a_partial_ring_does_not_enter():
    """A plane (no noise) under a star near the frame's corner, its wide
    ring partly off the frame: the implied bias is 0; a quadratic bowl
    gives n_pix * c * (<r2>_aperture - <r2>_annulus)."""
    yy, xx = np.mgrid[:120, :120]
    ann = CircularAnnulus([(20.0, 22.0), (60.3, 59.6)], 8, 14)
    plane = as_frame(50.0 + 0.8 * xx - 0.5 * yy)
    res = annulus_curvature(plane, ann, 50.0)
    assert np.all(res['checked'])
    np.testing.assert_allclose(res['bias'], 0.0, atol=1e-3)  # single precision
    bowl = as_frame(50.0 + 0.8 * xx + 0.02 * ((xx - 60.3) ** 2
                                              + (yy - 59.6) ** 2))
    res = annulus_curvature(bowl, ann[1], 50.0)
    # <r2> of the 8-14 annulus' pixel centres ~128.3, of the aperture 8.0
    assert res['bias'][0] == pytest.approx(50 * 0.02 * (8.0 - 128.3),
                                           rel=0.01)


def test_rings_off_the_frame_are_not_checked_and_noted():
    """A star whose wider ring is mostly unusable (NaN but for a sector of
    60 degrees) is not checked: no flag, and the table's notes say how
    many rows were not checked."""
    rng = np.random.default_rng(14)
    data = (rng.poisson(np.full((SIZE, SIZE), 100.0))
            + rng.normal(0.0, 5.0, (SIZE, SIZE))) / GAIN
    xy = [(60.0, 60.0), (180.0, 180.0)]
    yy, xx = np.mgrid[:SIZE, :SIZE]
    r = np.hypot(xx - 180.0, yy - 180.0)
    angle = np.arctan2(yy - 180.0, xx - 180.0)
    data[(r > 14.5) & (r < 29) & (np.abs(angle) > np.pi / 6)] = np.nan
    ann = CircularAnnulus(xy, 8, 14)
    res = annulus_curvature(as_frame(data), ann, 50.0)
    assert res['checked'].tolist() == [True, False]
    assert np.isnan(res['bias'][1])
    sky = SkyEstimate.from_annulus(data, ann, gain=GAIN)
    t = photometer(data, CircularAperture(xy, 4), sky, gain=GAIN)
    assert t['flags'].tolist() == [0, 0]
    assert any('background curvature not checked for 1 of 2' in note
               for note in t.meta['notes'])


def test_other_annuli_and_skies():
    """Elliptical and rectangular annuli are checked the same way; a
    whole-frame sky, or an annulus sky measured at other positions, is
    not."""
    yy, xx = np.mgrid[:160, :160]
    bowl = as_frame(100.0 - 0.01 * ((xx - 80.0) ** 2 + (yy - 80.0) ** 2))
    for ann in (EllipticalAnnulus((80, 80), 8, 14, 10, b_in=6, theta=0.5),
                RectangularAnnulus((80, 80), 16, 28, 24, h_in=12,
                                   theta=0.3)):
        res = annulus_curvature(bowl, ann, 50.0)
        assert res['checked'][0] and res['bias'][0] > 40  # peaked: too high
    rng = np.random.default_rng(15)
    img = rng.normal(100.0, 5.0, (160, 160))
    frame = as_frame(img)
    whole = SkyEstimate.from_image(img)
    assert check_annulus_curvature(whole, frame, 80.0, 80.0, 50.0,
                                   40.0) == (False, [])
    sky = SkyEstimate.from_annulus(img, CircularAnnulus((80, 80), 8, 14))
    assert check_annulus_curvature(sky, frame, 40.0, 40.0, 50.0,
                                   40.0) == (False, [])


def test_measure_and_optimal_extraction_flag_the_same_star():
    """measure and optimal_extraction apply the same rule to one star."""
    rng = np.random.default_rng(16)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    xy = (128.3, 127.6)
    light = _stars([xy], [8000.0])
    back = 12.0 * np.exp(-((xx - xy[0]) ** 2 + (yy - xy[1]) ** 2) / 200.0)
    data = (rng.poisson(light + back + 100.0)
            + rng.normal(0.0, 5.0, xx.shape)) / GAIN
    sky = SkyEstimate.from_annulus(data, CircularAnnulus(xy, 8, 14),
                                   gain=GAIN)
    with pytest.warns(AstropyUserWarning, match=r'curves about 1 of 1 '
                      r'aperture\(s\) \(id 1\)'):
        res = measure(data, CircularAperture(xy, 4), sky, gain=GAIN)
    assert res.flags & FLAG_SKY_ANNULUS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        opt = optimal_extraction(data, xy, 1.5, sky, gain=GAIN)
    assert opt.flags & FLAG_SKY_ANNULUS
    assert any('background curves' in str(w.message) for w in caught)


@pytest.mark.parametrize('radii', [(6, 10), (8, 14), (10, 18)])
def test_real_frames(radii, sample_ccd, sextractor_dir):
    """The bundled sample frame (38 stars above 5 sigma): no row flagged
    with 6-10, 8-14 or 10-18 px annuli. The ESO frame: the few rows
    flagged (at most 2 of its 67 stars above 5 sigma) sit on a background
    that falls away from them: the median 14-20 px from the star is below
    the annulus sky."""
    from ccdphot_ext.detection.findstars import find_stars

    with pytest.warns(AstropyUserWarning, match='non-standard header'):
        eso = read_frame(sextractor_dir / 'image.fits', unit='adu')
    for name, ccd in (('sample', sample_ccd), ('eso', eso)):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # the frames' other doubts
            stars = find_stars(ccd, SkyEstimate.from_image(ccd), n_sigma=5)
            xy = np.column_stack([stars['x_center'], stars['y_center']])
            ap = CircularAperture(xy, 3.0)
            sky = SkyEstimate.from_annulus(ccd, CircularAnnulus(xy, *radii),
                                           exclude=ap)
            t = photometer(ccd, ap, sky)
            frame = as_frame(ccd)
            curved, _ = check_annulus_curvature(
                sky, frame, xy[:, 0], xy[:, 1], np.asarray(t['n_pix']),
                np.asarray(t['aperture_sum_err'], dtype=float))
        if name == 'sample':
            assert len(xy) == 38 and not curved.any()
            continue
        assert len(xy) == 67 and curved.sum() <= 2
        yy, xx = np.mgrid[:frame.data.shape[0], :frame.data.shape[1]]
        for i in np.flatnonzero(curved):
            r = np.hypot(xx - xy[i, 0], yy - xy[i, 1])
            far = np.median(frame.data[(r >= 14) & (r < 20)])
            assert far < sky.value[i] - 5 * sky.error_on_mean[i]
