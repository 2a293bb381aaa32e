"""The uncertainty check asks a frame's photon-noise array (VAR_POISSON,
else ERR) whether it rises with the signal: a VAR_POISSON left at zero or
holding the sky alone gives bright stars error bars without their photon
noise, which the sky's pixels (the scale check) cannot see. Right arrays
on flat, sloped, crowded and drizzled frames are not warned about."""

import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning
from calibrated_products import hst_image, jwst_image
from photutils.aperture import CircularAnnulus, CircularAperture
from test_resampled_arrays import drizzled_frame

from ccdphot_ext import SkyEstimate, VarianceArrays, optimal_extraction, photometer
from ccdphot_ext.photometry.uncertaintycheck import (
    UNCERTAINTY_RATIO_LIMIT,
    photon_array_rise,
    uncertainty_scale_ratio,
)
from ccdphot_ext.utils.inputs import as_frame

SHAPE = (64, 96)
RISE = 'photon-noise array VAR_POISSON of the frame does not rise'


def _jwst(variances=None, *, n_stars=24, slope=0.0, seed=31):
    """A JWST-like frame in MJy/sr (its noise the right arrays'), with
    ``variances`` (name -> array, or a callable of the right arrays) as
    its variance arrays; the product."""
    product = jwst_image(shape=SHAPE, n_stars=n_stars, seed=seed)
    if slope:  # a sky sloping across the frame, its photon noise with it
        xx = np.mgrid[:SHAPE[0], :SHAPE[1]][1]
        extra = slope * (xx - SHAPE[1] / 2) / SHAPE[1]
        product.model = product.model + extra
        product.variances = dict(
            product.variances,
            VAR_POISSON=product.model / product.extra['g_eff'])
    data = product.realize(np.random.default_rng(seed))
    arrays = (product.variances if variances is None
              else variances(product.variances))
    mask = (product.dq & 1) > 0
    return CCDData(data, unit=product.unit, mask=mask, meta=product.header,
                   uncertainty=VarianceArrays(arrays=arrays)), product


def _zero(v):
    return dict(v, VAR_POISSON=np.zeros(SHAPE))


def _sky_only(v):
    return dict(v, VAR_POISSON=np.full(SHAPE, np.median(v['VAR_POISSON'])))


def _sky(ccd):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)  # DO_NOT_USE
        return SkyEstimate.from_image(ccd, method='median')


@pytest.mark.parametrize('fault', [_zero, _sky_only])
def test_a_photon_array_without_the_sources_is_warned(fault):
    ccd, product = _jwst(fault)
    sky = _sky(ccd)
    frame = as_frame(ccd)
    # the sky's pixels do not tell (1.8 and 1.1, under the limit of 2)
    low, high, _ = uncertainty_scale_ratio(frame, sky)
    assert 1 / UNCERTAINTY_RATIO_LIMIT < low and high < UNCERTAINTY_RATIO_LIMIT
    name, rise, n = photon_array_rise(frame, sky)
    assert name == 'VAR_POISSON' and rise == 0.0 and n >= 10
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    with pytest.warns(AstropyUserWarning, match=RISE) as said:
        t = photometer(ccd, aps, sky)
    assert len([w for w in said if RISE in str(w.message)]) == 1
    assert any(RISE in note for note in t.meta['notes'])
    # optimal extraction, of the frame in Jy per pixel, warns as well
    factor = product.header['PIXAR_SR'] * 1e6
    arrays = {k: v * factor ** 2 for k, v in ccd.uncertainty.arrays.items()}
    jy = CCDData(ccd.data * factor, unit='Jy/pix', mask=ccd.mask,
                 uncertainty=VarianceArrays(arrays=arrays))
    sky = SkyEstimate(sky.value * factor, sky.std * factor, sky.n_pix)
    with warnings.catch_warnings():  # (a star of this mock may not fit)
        warnings.filterwarnings('ignore', 'optimal extraction at')
        with pytest.warns(AstropyUserWarning, match=RISE):
            optimal_extraction(jy, (product.x[0], product.y[0]),
                               product.psf_sigma, sky)


def _right_frames():
    yield 'flat', _jwst()[0]
    yield 'sloped', _jwst(slope=0.5)[0]
    yield 'crowded', _jwst(n_stars=150, seed=33)[0]
    hst = hst_image(shape=(80, 96), seed=37)
    yield 'hst ERR', CCDData(hst.realize(np.random.default_rng(8)),
                             unit=hst.unit, mask=(hst.dq & 4) > 0,
                             uncertainty=VarianceArrays(
                                 arrays={'ERR': hst.variance}))
    yield 'drizzled', drizzled_frame(np.random.default_rng(5),
                                     flux=20000.0)[0]


@pytest.mark.parametrize('name, ccd', list(_right_frames()))
def test_a_right_photon_array_is_not_warned(name, ccd):
    """The array rises on the source pixels (by its median excess over
    the sky over their median signal, 1/gain: plain numpy on the same
    pixels), and photometry warns of nothing about the uncertainty."""
    sky = _sky(ccd)
    frame = as_frame(ccd)
    found = photon_array_rise(frame, sky)
    assert found is not None and found[1] > 0
    array = frame.variance_arrays[found[0]]
    good = (~frame.mask if frame.mask is not None
            else np.ones(frame.shape, bool))
    signal = frame.data - np.median(sky.value)
    source = good & (signal > 20 * np.median(frame.uncertainty[good]))
    expected = (np.median(array[source] - np.median(array[good]))
                / np.median(signal[source]))
    assert found[1] == pytest.approx(expected, rel=1e-9)
    aps = CircularAperture([(30.0, 30.0)], 4.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        t = photometer(ccd, aps, sky)
    assert not [w for w in caught if 'uncertainty check' in str(w.message)]
    assert not any('uncertainty check' in n for n in t.meta['notes'])


def _pulls(variances, n=60):
    """Pulls of the 24 stars (annulus sky) over ``n`` realisations of the
    right noise, measured with ``variances`` as the arrays; their true
    sums in Jy."""
    product = jwst_image(shape=SHAPE, n_stars=24, seed=31)
    arrays = variances(product.variances)
    aps = CircularAperture(np.c_[product.x, product.y], 4.0)
    annulus = CircularAnnulus(aps.positions, 6.0, 10.0)
    mask = (product.dq & 1) > 0
    factor = product.header['PIXAR_SR'] * 1e6  # MJy/sr to Jy per pixel
    model = np.where(mask, 0.0, product.model - product.sky)
    truth = np.array([np.sum(m.multiply(model)) for m in
                      aps.to_mask(method='exact')]) * factor
    rng = np.random.default_rng(1)
    pulls = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        for _ in range(n):
            ccd = CCDData(product.realize(rng), unit=product.unit, mask=mask,
                          meta=product.header,
                          uncertainty=VarianceArrays(arrays=arrays))
            t = photometer(ccd, aps, SkyEstimate.from_annulus(ccd, annulus))
            pulls.append((t['aperture_sum'].value - truth)
                         / t['aperture_sum_err'].value)
    bright = np.argsort(truth)[-8:]
    return np.array(pulls), bright


def test_the_warned_arrays_give_bright_stars_too_small_errors():
    """Monte Carlo: with the right arrays the pulls spread by 1 (all
    stars and the 8 brightest); without the sources' photon noise the
    bright stars' spread by 1.2 (sky only) and 1.9 (zero)."""
    right, bright = _pulls(lambda v: v)
    assert abs(right.std() - 1) < 0.05 and abs(right.mean()) < 0.05
    assert abs(right[:, bright].std() - 1) < 0.1
    assert _pulls(_sky_only)[0][:, bright].std() > 1.15
    assert _pulls(_zero)[0][:, bright].std() > 1.8
