"""An independent audit of the error bars on frames the other tests do not
make: frames of other sizes, skies and gains, pixel-integrated stars drawn
here, mosaics drizzled onto a finer grid than the input (two output pixels
per input pixel, pixfrac 0.7), a gentle gradient measured against annuli,
data in e-/s and MJy/sr with an uncertainty map, fractional-pixel circles
with ``noise=``, optimal extraction with a wrong PSF and ccdproc's SAAO
frame with a photutils segmentation mask. Each regime's criterion is the
package's: pull mean within 0.05 and spread 1 +- 0.05 (wider where the
sample is small, as said), blank-sky scatter over the predicted error
0.85-1.2 at 3, 7 and 11 pixels, a wrong PSF flagged."""

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty
from astropy.stats import sigma_clip, sigma_clipped_stats
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    aperture_photometry,
)
from scipy import ndimage
from scipy.special import erf

from ccdphot_ext import (
    ApertureNoise,
    BoxAperture,
    SkyEstimate,
    optimal_extraction,
    photometer,
)
from ccdphot_ext.flags import FLAG_NONPOSITIVE_FLUX, FLAG_PSF_MISMATCH

SIDES = (3, 7, 11)


def _gaussians(shape, x, y, flux, sigma):
    """Circular Gaussians integrated over each pixel (pixel i spans
    i - 0.5 .. i + 0.5), flux ``flux`` each."""
    img = np.zeros(shape)
    half = int(np.ceil(6 * sigma)) + 2
    s2 = np.sqrt(2.0) * sigma
    for xc, yc, f in zip(x, y, flux, strict=True):
        x0, x1 = max(int(xc) - half, 0), min(int(xc) + half + 1, shape[1])
        y0, y1 = max(int(yc) - half, 0), min(int(yc) + half + 1, shape[0])
        if x0 >= x1 or y0 >= y1:
            continue
        px = np.diff(0.5 * erf((np.arange(x0, x1 + 1) - 0.5 - xc) / s2))
        py = np.diff(0.5 * erf((np.arange(y0, y1 + 1) - 0.5 - yc) / s2))
        img[y0:y1, x0:x1] += f * np.outer(py, px)
    return img


def _grid(rng, shape, step, margin):
    """Star positions on a grid, each moved by up to half a pixel."""
    ys, xs = np.mgrid[margin:shape[0] - margin:step,
                      margin:shape[1] - margin:step]
    xs = xs.ravel() + rng.uniform(-0.5, 0.5, xs.size)
    ys = ys.ravel() + rng.uniform(-0.5, 0.5, ys.size)
    return xs, ys


def _exposure(rng, electrons, gain, read_noise):
    """Poisson photons and Gaussian read noise, in ADU."""
    counts = rng.poisson(np.clip(electrons, 0, None)).astype(float)
    return (counts + rng.normal(0.0, read_noise, counts.shape)) / gain


def _values(column):
    return np.asarray(getattr(column, 'value', column), dtype=float)


def _blank_boxes(mask, side, rng, n_max=200):
    """Non-overlapping boxes of ``side`` pixels (and a 2-pixel margin) on
    pixels ``mask`` leaves, at least 14 pixels from the edges."""
    busy = mask.copy()
    half = side // 2
    ny, nx = mask.shape
    found = []
    for _ in range(60 * n_max):
        x = int(rng.integers(half + 14, nx - half - 14))
        y = int(rng.integers(half + 14, ny - half - 14))
        b = half + 2
        if busy[y - b:y + b + 1, x - b:x + b + 1].any():
            continue
        busy[y - half - 1:y + half + 2, x - half - 1:x + half + 2] = True
        found.append((x, y))
        if len(found) == n_max:
            break
    return np.array(found, dtype=float)


def _blank_scatter(data, mask, route, seed):
    """Scatter of blank-box sums over their predicted error (``noise=``
    measured on the same sky route), each side; a 4-sigma clip keeps one
    unmasked faint source from deciding it."""
    rng = np.random.default_rng(seed + 1000)  # not the frame's stream
    ratios = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        level = SkyEstimate.from_image(data)
        for side in SIDES:
            xy = _blank_boxes(mask, side, rng)
            assert len(xy) >= 80, (side, len(xy))
            if route == 'global':
                sky = level
            else:
                r_in = side / np.sqrt(2) + 3
                sky = SkyEstimate.from_annulus(
                    data, CircularAnnulus(xy, r_in, r_in + 8))
            noise = ApertureNoise.from_blank_apertures(data, sky, seed=seed)
            assert noise.route == route
            table = photometer(data, BoxAperture(xy, side, side), sky,
                               noise=noise)
            z = _values(table['aperture_sum']) / _values(
                table['aperture_sum_err'])
            ratios[side] = float(np.std(sigma_clip(z, sigma=4).compressed()))
    return ratios


def _drizzled(rng, n_exposures=4, out_per_in=2.0, pixfrac=0.7):
    """Dithered 160 x 160 exposures (sky 300 e-, read noise 5 e-, 30
    stars of 500-2e4 e-, Gaussian sigma 1.3 input pixels) drizzled onto a
    grid of ``out_per_in`` output pixels per input pixel; returns the
    mosaic and the pixels where the stars' noiseless light exceeds 5% of
    the mosaic's pixel noise (grown by 2)."""
    from drizzle.resample import Drizzle

    shape_in, pad, n = (160, 160), 6, 30
    x = rng.uniform(12, 148, n)
    y = rng.uniform(12, 148, n)
    flux = np.exp(rng.uniform(np.log(500.0), np.log(2e4), n))
    side = int((shape_in[0] - 2 * pad) * out_per_in)
    driz = Drizzle(kernel='square', out_shape=(side, side), fillval=0.0)
    yy, xx = np.mgrid[0:shape_in[0], 0:shape_in[1]].astype(float)
    for dx, dy in rng.uniform(0.0, 1.0, (n_exposures, 2)):
        img = _exposure(rng, 300.0 + _gaussians(shape_in, x - dx, y - dy,
                                                flux, 1.3), 1.0, 5.0)
        pixmap = np.dstack([(xx + dx - pad) * out_per_in,
                            (yy + dy - pad) * out_per_in])
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            driz.add_image(img, exptime=1.0, pixmap=pixmap, pixfrac=pixfrac,
                           in_units='cps',
                           weight_map=np.ones(shape_in, np.float32))
    clean = _gaussians((side, side), (x - pad) * out_per_in,
                       (y - pad) * out_per_in, flux / out_per_in ** 2,
                       1.3 * out_per_in)
    stars = clean > 0.05 * np.sqrt(305.0 / n_exposures) / out_per_in
    m = 4
    return (driz.out_img[m:-m, m:-m].copy(),
            ndimage.binary_dilation(stars, iterations=2)[m:-m, m:-m])


@pytest.mark.parametrize('route', ['global', 'annulus'])
def test_drizzled_onto_a_finer_grid_blank_scatter(route):
    """Four dithered exposures drizzled onto two output pixels per input
    pixel with pixfrac 0.7 (neighbouring output pixels share most of their
    input): blank sums scatter 0.85-1.2 times the error predicted with
    ``noise=``, on both routes (0.97-1.05 against the whole-frame level,
    0.99-1.06 against annuli; the mask is the stars' known light, so the
    blank boxes are not chosen by the noise; a 2-sigma segmentation mask
    leaves sky below the noise's peaks and reads 0.86-0.93 at 11 pixels
    on such mosaics)."""
    data, mask = _drizzled(np.random.default_rng(6))
    ratios = _blank_scatter(data, mask, route, seed=6)
    for side, ratio in ratios.items():
        assert 0.85 <= ratio <= 1.2, (route, side, ratios)


def test_gradient_against_annuli_is_white():
    """White noise with a gradient of +-0.4 sigma across a 512 x 384
    frame, measured against an annulus per blank box: the model sees no
    correlated noise and the blank sums scatter as predicted (0.92-1.06;
    against the whole-frame level the gradient is read as correlated noise
    and the rows the residual-background rule leaves unflagged scatter only
    0.44-0.80 of their error: not asserted here)."""
    rng = np.random.default_rng(2)
    ny, nx = 384, 512
    xx = np.mgrid[0:ny, 0:nx][1]
    data = rng.normal(500.0, 10.0, (ny, nx)) + 4.0 * (2 * xx / nx - 1)
    ratios = _blank_scatter(data, np.zeros(data.shape, bool), 'annulus', 2)
    for side, ratio in ratios.items():
        assert 0.85 <= ratio <= 1.2, (side, ratios)


def test_fractional_circles_noise_on_white_frames():
    """Circles of r = 1.5 to 6 pixels on white frames (sky 200 e-, gain 2,
    read noise 5 e-, 196 stars of 2e3-2e5 e- per 256^2 frame, four frames):
    ``noise=`` measured on the frame finds it white and leaves every error
    bar as it is (no inflation of fractional pixels), and the pulls have
    mean within 0.05 and spread 1 +- 0.05 at each radius."""
    gain, sky_e, rn = 2.0, 200.0, 5.0
    radii = (1.5, 3.0, 6.0)
    pulls = {r: [] for r in radii}
    for seed in range(4):
        rng = np.random.default_rng(40 + seed)
        x, y = _grid(rng, (256, 256), 16, 16)
        flux = np.exp(rng.uniform(np.log(2e3), np.log(2e5), x.size))
        light = _gaussians((256, 256), x, y, flux, 1.4)
        data = _exposure(rng, sky_e + light, gain, rn)
        sky = SkyEstimate(sky_e / gain, np.sqrt(sky_e + rn ** 2) / gain,
                          10 ** 6)
        noise = ApertureNoise.from_blank_apertures(data, sky, seed=seed)
        assert not noise.correlated
        for r in radii:
            circles = CircularAperture(np.c_[x, y], r=r)
            truth = aperture_photometry(light / gain, circles,
                                        method='exact')['aperture_sum'].value
            plain = photometer(data, circles, sky, gain=gain)
            with_noise = photometer(data, circles, sky, gain=gain,
                                    noise=noise)
            err = _values(with_noise['aperture_sum_err'])
            np.testing.assert_allclose(
                err, _values(plain['aperture_sum_err']), rtol=1e-12)
            assert not np.any(np.asarray(with_noise['flags'])
                              & ~FLAG_NONPOSITIVE_FLUX & ~128)
            pulls[r].extend((_values(with_noise['aperture_sum']) - truth)
                            / err)
    for r, p in pulls.items():
        p = np.asarray(p)
        assert abs(p.mean()) < 0.05, (r, p.mean())
        assert abs(p.std() - 1) < 0.05, (r, p.std())


@pytest.fixture(scope='module')
def unit_frames():
    """One 256^2 frame (sky 400 e-, read noise 6 e-, 64 stars of 500-5e5
    e-) in adu (gain 1), e-/s (120 s) and MJy/sr (3.2e-4 MJy/sr per e-,
    PIXAR_SR given), each a CCDData with a background 1-sigma map."""
    rng = np.random.default_rng(301)
    x, y = _grid(rng, (256, 256), 28, 20)
    flux = np.exp(rng.uniform(np.log(500.0), np.log(5e5), x.size))
    light = _gaussians((256, 256), x, y, flux, 1.5)
    electrons = _exposure(rng, 400.0 + light, 1.0, 6.0)
    frames = {}
    for name, scale, unit, meta in (
            ('adu', 1.0, u.adu, {}),
            ('e-/s', 1 / 120.0, u.electron / u.s, {}),
            ('MJy/sr', 3.2e-4, u.MJy / u.sr, {'PIXAR_SR': 2.35e-13})):
        frames[name] = (CCDData(
            electrons * scale, unit=unit, meta=meta,
            uncertainty=StdDevUncertainty(
                np.full(electrons.shape, np.sqrt(436.0) * scale))),
            scale, (1 / scale) * u.electron / unit)
    return frames, x, y, light


@pytest.mark.parametrize('route', ['global', 'annulus'])
def test_units_give_one_pull(unit_frames, route):
    """The same frame in adu, e-/s and MJy/sr (an uncertainty map, the
    gain as a Quantity): each row's pull is the same to 1e-9 in every
    unit, and on the annulus route the pulls are calibrated with and
    without ``noise=`` (64 circles: mean within 0.25, spread 1 +- 0.2;
    pooled over six such frames the audit measured +0.07 and 1.00-1.02)."""
    frames, x, y, light = unit_frames
    circles = CircularAperture(np.c_[x, y], r=4)
    pulls = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name, (ccd, scale, gain) in frames.items():
            if route == 'global':
                sky = SkyEstimate.from_image(ccd, gain=gain)
            else:
                sky = SkyEstimate.from_annulus(
                    ccd, CircularAnnulus(np.c_[x, y], 9, 14), gain=gain)
            truth = aperture_photometry(light * scale, circles,
                                        method='exact')['aperture_sum'].value
            table = photometer(ccd, circles, sky, gain=gain)
            col = table['aperture_sum']
            k = 1.0
            if name == 'MJy/sr':
                k = (u.MJy / u.sr * 2.35e-13 * u.sr).to_value(col.unit)
            pulls[name] = ((_values(col) / k - truth)
                           / (_values(table['aperture_sum_err']) / k))
            if route == 'annulus':
                noise = ApertureNoise.from_blank_apertures(ccd, sky, seed=1)
                with_noise = photometer(ccd, circles, sky, gain=gain,
                                        noise=noise)
                pn = ((_values(with_noise['aperture_sum']) / k - truth)
                      / (_values(with_noise['aperture_sum_err']) / k))
                for p in (pulls[name], pn):
                    assert abs(p.mean()) < 0.25 and abs(p.std() - 1) < 0.2
    np.testing.assert_allclose(pulls['e-/s'], pulls['adu'], rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(pulls['MJy/sr'], pulls['adu'], rtol=1e-9,
                               atol=1e-9)


@pytest.fixture(scope='module')
def psf_frame():
    """256^2, 100 Gaussian stars (sigma 1.6) of 300-1e5 e- on a 24-pixel
    grid, sky 200 e-, gain 2, read noise 5 e-."""
    rng = np.random.default_rng(9000)
    x, y = _grid(rng, (256, 256), 24, 14)
    flux = np.exp(rng.uniform(np.log(300.0), np.log(1e5), x.size))
    data = _exposure(rng, 200.0 + _gaussians((256, 256), x, y, flux, 1.6),
                     2.0, 5.0)
    sky = SkyEstimate(100.0, np.sqrt(225.0) / 2.0, 10 ** 6)
    return data, sky, x, y, flux / 2.0


@pytest.mark.parametrize('factor', [0.9, 1.3])
def test_optimal_wrong_psf_is_flagged(psf_frame, factor):
    """A Gaussian PSF 10% too narrow or 30% too wide, its width kept as
    given: the frame's bright stars show it, and every star measured with
    it is flagged 256 and warned about (their pulls -0.6 to -8 and +0.5
    to +18). With the width fitted (the default) the stars' width is
    measured instead, unflagged, and the warning says the width given was
    wrong."""
    data, sky, x, y, truth = psf_frame
    pick = slice(None, None, 5)
    with pytest.warns(Warning, match='PSF'):
        flags = [optimal_extraction(data, (xc, yc), 1.6 * factor, sky,
                                    gain=2.0, fit_width=False).flags
                 for xc, yc in zip(x[pick], y[pick], strict=True)]
    assert all(int(f) & FLAG_PSF_MISMATCH for f in flags)
    with pytest.warns(Warning, match='width as given does not fit'):
        res = [optimal_extraction(data, (xc, yc), 1.6 * factor, sky,
                                  gain=2.0)
               for xc, yc in zip(x[pick], y[pick], strict=True)]
    assert not any(r.flags & FLAG_PSF_MISMATCH for r in res)
    assert res[0].frame_psf['given_width_scale'] == pytest.approx(
        1 / factor, rel=0.02)
    pulls = [(r.flux - f) / r.flux_err
             for r, f in zip(res, truth[pick], strict=True)]
    assert max(abs(p) for p in pulls) < 3.5


@pytest.mark.parametrize('psf_sigma', [1.6, None])
def test_optimal_right_or_fitted_psf_is_calibrated(psf_frame, psf_sigma):
    """The right PSF, given or fitted from the frame (``psf_sigma=None``):
    no star flagged for its PSF, pulls of the 100 stars with mean within
    0.2 and spread 1 +- 0.15 (the audit's 4 frames: means -0.07..+0.16,
    spreads 0.92-1.01)."""
    data, sky, x, y, truth = psf_frame
    pulls, flags = [], []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for xc, yc, f in zip(x, y, truth, strict=True):
            res = optimal_extraction(data, (xc, yc), psf_sigma, sky, gain=2.0)
            pulls.append(float(res.flux - f) / float(res.flux_err))
            flags.append(int(res.flags))
    assert not any(f & FLAG_PSF_MISMATCH for f in flags)
    pulls = np.asarray(pulls)
    assert abs(pulls.mean()) < 0.2 and abs(pulls.std() - 1) < 0.15


def _segmentation_mask(data, n_sigma=3.0, n_pixels=10, grow=4):
    """A photutils segmentation mask of the kind a user makes: sources
    above ``n_sigma`` of a 1-pixel Gaussian-smoothed frame, grown."""
    from photutils.segmentation import detect_sources

    _, median, _ = sigma_clipped_stats(data, sigma=3)
    smooth = ndimage.gaussian_filter(data - median, 1.0)
    _, _, std = sigma_clipped_stats(smooth, sigma=3)
    seg = detect_sources(smooth, n_sigma * std, n_pixels=n_pixels)
    mask = np.zeros(data.shape, bool) if seg is None else seg.data > 0
    return ndimage.binary_dilation(mask, iterations=grow)


def test_saao_blank_scatter_with_a_segmentation_mask(saao_trimmed):
    """ccdproc's SAAO frame (overscan and trim only), blank boxes where a
    3-sigma, 10-pixel segmentation mask grown by 4 leaves sky, each with
    its own annulus: scatter over the ``noise=`` prediction 0.85-1.2
    (0.93-1.06). Against the whole-frame level the frame's large-scale
    structure decides it: all rows read 0.90-1.04 but the rows left
    unflagged 0.59-0.79 at 7 and 11 pixels; a model without the trend
    moves them to 0.88-0.94 and all rows to 1.21: not asserted here."""
    route = 'annulus'
    data = np.asarray(saao_trimmed.data, float)[:-8]
    ratios = _blank_scatter(data, _segmentation_mask(data), route, seed=0)
    for side, ratio in ratios.items():
        assert 0.85 <= ratio <= 1.2, (route, side, ratios)


@pytest.mark.parametrize('sky_e, mesh', [(20.0, 64), (5.0, 32)])
def test_background2d_on_faint_poisson_skies(sky_e, mesh):
    """photutils' Background2D with its defaults (SExtractorBackground) on
    Poisson skies of 20 and 5 e- (gain 1, read noise 3 and 2 e-), taken
    with ``from_background2d(gain=, data=)``: 2400 r = 4 circles at random
    on eight 512^2 frames have pulls of mean within 0.05 and spread
    1 +- 0.05, none flagged (-0.017 and -0.008, 0.981 and 0.985)."""
    from photutils.background import Background2D

    rn = 3.0 if sky_e > 10 else 2.0
    pulls = []
    for seed in range(8):
        rng = np.random.default_rng(700 + seed)
        data = _exposure(rng, np.full((512, 512), sky_e), 1.0, rn)
        sky = SkyEstimate.from_background2d(Background2D(data, mesh),
                                            gain=1.0, data=data)
        xy = np.random.default_rng(seed).uniform(12, 500, (300, 2))
        table = photometer(data, CircularAperture(xy, 4), sky, gain=1.0)
        assert not np.any(np.asarray(table['flags'])
                          & ~FLAG_NONPOSITIVE_FLUX)
        pulls.extend(_values(table['aperture_sum'])
                     / _values(table['aperture_sum_err']))
    pulls = np.asarray(pulls)
    assert abs(pulls.mean()) < 0.05, pulls.mean()
    assert abs(pulls.std() - 1) < 0.05, pulls.std()
