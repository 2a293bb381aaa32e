"""Aperture noise on real correlated noise: astropy's M13, ccdproc's SAAO
frame, the Source Extractor ESO frame and dithered exposures of known
truth combined with ``drizzle`` as a pipeline would. The scatter of
independent blank-sky sums over the error ``photometer`` predicts with
``noise=`` must be 0.85-1.2 at 3, 7 and 11 pixels, against an annulus per
aperture and against the whole-frame sky (less the blank sky's large-scale
trend where the model took it out, and its error less the ``sky_offset``
term that carries that trend: the noise model's own prediction; the rows
as they are, with that term, in ``test_sky_offset.py``)."""

import warnings

import numpy as np
import pytest
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import CircularAnnulus

from ccdphot_ext import (
    ApertureNoise,
    BoxAperture,
    SkyEstimate,
    photometer,
    read_frame,
)
from ccdphot_ext.background.noise import (
    _blank_corners,
    _robust_std,
    _source_mask,
    trend_image,
)
from ccdphot_ext.datasets.sample import render_stars

#: Box sides checked, and the annulus of the annulus route (it clears the
#: 11-pixel box's corners).
SIDES = (3, 7, 11)
R_IN, R_OUT = 9.0, 15.0


def drizzled_mosaic(rng, shape=(300, 300), *, n_exposures=6, scale=1.0,
                    pixfrac=0.8, sky=100.0, sigma=5.0, n_stars=40):
    """
    Dithered exposures of a known sky and stars, combined onto one grid
    with STScI's ``drizzle`` (each input pixel ``scale`` output pixels a
    side, shrunk to ``pixfrac``), as a pipeline makes a mosaic: the
    output's neighbouring pixels share input pixels, so their noise is
    correlated. Returns the mosaic (data per output pixel).
    """
    from drizzle.resample import Drizzle

    ny, nx = shape
    x = rng.uniform(10, nx - 10, n_stars)
    y = rng.uniform(10, ny - 10, n_stars)
    flux = 10 ** rng.uniform(3.0, 4.5, n_stars)
    pad = 4
    in_shape = (int(ny / scale) + 2 * pad, int(nx / scale) + 2 * pad)
    yy, xx = np.mgrid[0:in_shape[0], 0:in_shape[1]].astype(float)
    driz = Drizzle(out_shape=shape, fillval=np.nan)
    for _ in range(n_exposures):
        dx, dy = rng.uniform(-3.0, 3.0, 2)  # the dither, input pixels
        # input pixel centre (x, y) lands on output ((x - pad + dx) scale, .)
        pixmap = np.dstack([(xx - pad + dx) * scale,
                            (yy - pad + dy) * scale])
        stars = render_stars(in_shape, x / scale + pad - dx,
                             y / scale + pad - dy, flux,
                             sigma=1.5 / scale)
        exposure = (sky / scale ** 2 + stars
                    + rng.normal(0.0, sigma, in_shape))
        driz.add_image(exposure.astype(np.float32), exptime=1.0,
                       pixmap=pixmap, pixfrac=pixfrac, in_units='cps')
    return np.asarray(driz.out_img, dtype=float)


def blank_scatter(data, route, *, near_sources=False, as_they_are=False):
    """
    Scatter of ``photometer``'s blank-sky box sums over their predicted
    error (``noise=`` a model measured on the same frame against the same
    sky), for each of `SIDES`: the boxes at independent random blank
    positions (another seed than the model's); on the whole-frame route
    less the sum of the blank sky's large-scale trend the model took out
    (`~ccdphot_ext.ApertureNoise.trend_removed`; the share of it the
    blank sums carry, `~ccdphot_ext.ApertureNoise.trend_carried`), the
    bias of each row by its position, over the error less its
    ``sky_offset`` term, which carries that bias. ``near_sources``: the
    model warns that the pixel noise among the sources is higher.
    ``as_they_are``: the rows as they are (no trend taken out, the whole
    error), and the scatter of the rows without flags (8, reaching the
    frame's edge, aside) too.
    """
    with warnings.catch_warnings():  # M13: 'sources cover 88% of the frame'
        warnings.simplefilter('ignore', AstropyUserWarning)
        glob = SkyEstimate.from_image(data)
    resid = data - glob.value
    bad = ~np.isfinite(resid)
    bad |= _source_mask(resid, glob.std, bad)
    rng = np.random.default_rng(99)
    out, clear, noise = {}, {}, None
    for side in SIDES:
        y0, x0 = _blank_corners(bad, side, 800, rng)
        centres = np.column_stack([x0, y0]) + (side - 1) / 2.0
        if route == 'global':
            sky = glob
        else:
            with warnings.catch_warnings():  # annuli reaching masked pixels
                warnings.simplefilter('ignore', AstropyUserWarning)
                sky = SkyEstimate.from_annulus(
                    data, CircularAnnulus(centres, R_IN, R_OUT))
        if noise is None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always', AstropyUserWarning)
                noise = ApertureNoise.from_blank_apertures(data, sky, seed=1)
            said = [str(w.message) for w in caught]
            assert said == said[:1] and bool(said) == near_sources, said
            assert not said or said[0].startswith('the pixel noise among')
            assert noise.route == route
        with warnings.catch_warnings():
            # M13 and the raw SAAO frame vary across the frame: photometer
            # warns about the whole-frame level, which is the point here
            warnings.simplefilter('ignore', AstropyUserWarning)
            t = photometer(data, BoxAperture(centres, side, side), sky,
                           noise=noise)
        sums = np.asarray(t['aperture_sum'])
        error = np.asarray(t['aperture_sum_err'])
        if noise.trend_removed and route == 'global' and not as_they_are:
            # (the share of it the blank sums carry)
            trend = (trend_image(noise.meta['trend'], data.shape)
                     * noise.trend_carried(side * side))
            with warnings.catch_warnings():  # (a smooth surface: correlated)
                warnings.simplefilter('ignore', AstropyUserWarning)
                sums = sums - np.asarray(photometer(
                    trend, BoxAperture(centres, side, side),
                    SkyEstimate(0.0, 1.0, data.size))['aperture_sum'])
            # and the error less the trend's own term (sky_offset)
            error = np.sqrt(error ** 2 - np.asarray(t['var_sky_offset']))
        pulls = sums / error
        out[side] = _robust_std(pulls[np.isfinite(pulls)])
        kept = np.isfinite(pulls) & ((np.asarray(t['flags']) & ~8) == 0)
        clear[side] = (_robust_std(pulls[kept]) if np.count_nonzero(kept)
                       > 20 else np.nan)  # (M13's rows are all flagged)
    return (out, noise, clear) if as_they_are else (out, noise)


def _frames(m13, saao, sextractor_dir):
    with warnings.catch_warnings():  # its header's non-standard cards
        warnings.simplefilter('ignore', AstropyUserWarning)
        eso = read_frame(sextractor_dir / 'image.fits')
    yield 'M13', np.asarray(m13[0].data, dtype=float)
    yield 'SAAO', np.asarray(saao.data, dtype=float)
    yield 'ESO', np.asarray(eso.data, dtype=float)
    rng = np.random.default_rng(2)
    yield 'drizzle', drizzled_mosaic(rng)
    yield 'drizzle x1.7', drizzled_mosaic(rng, scale=1.7, pixfrac=0.7)


@pytest.mark.parametrize('route', ['global', 'annulus'])
def test_blank_sky_scatter_is_predicted(route, m13, saao, sextractor_dir):
    for name, data in _frames(m13, saao, sextractor_dir):
        # M13's unresolved cluster light adds noise among its stars: the
        # model, measured on its blank outskirts, says so
        ratios, noise = blank_scatter(data, route,
                                      near_sources=name == 'M13')
        assert (noise.noise_near_sources > 1.3) == (name == 'M13'), name
        assert all(0.85 <= r <= 1.2 for r in ratios.values()), (
            name, ratios)
        if route == 'global':
            # every one of these frames has correlated noise against its
            # whole-frame level (white-noise errors 1.1-7 times too small)
            assert noise.correlated, name


def test_drizzled_noise_is_correlated_and_white_errors_too_small():
    data = drizzled_mosaic(np.random.default_rng(3), scale=1.7,
                           pixfrac=0.7)
    sky = SkyEstimate.from_image(data)
    noise = ApertureNoise.from_blank_apertures(data, sky, seed=4)
    assert noise.correlated and noise.beta > 0.55
    # sums of 11 x 11 pixels scatter well beyond sqrt(N) sigma
    assert noise(121.0) > 1.4 * sky.std * 11.0
