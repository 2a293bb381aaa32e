"""Optimal extraction reads a data product's DQ as photometer does, by the
same code (`~ccdphot_ext.photometry.dqcheck`): masked bits get no weight
(flag 2), a saturation bit under the PSF sets flag 4, flagged pixels
weighted are warned about; stars with a saturation bit are not fitted for
the PSF. On JWST-like images written by STScI's stdatamodels."""

import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning
from calibrated_products import JUMP_DET, jwst_image
from photutils.aperture import CircularAperture

from ccdphot_ext import (
    SkyEstimate,
    fit_psf_sigma,
    optimal_extraction,
    photometer,
    read_frame,
)
from ccdphot_ext.flags import FLAG_BAD_PIXELS, FLAG_SATURATED
from ccdphot_ext.photometry.optimal import _bright_stars
from ccdphot_ext.utils.inputs import as_frame

pytest.importorskip('stdatamodels')

SATURATED, DO_NOT_USE = 2, 1  # JWST DQ bits
DQ_BITS = FLAG_BAD_PIXELS | FLAG_SATURATED


def _flux_density(path):
    """An i2d read by read_frame, made a flux density per pixel (MJy) with
    its mask and DQ kept (CCDData arithmetic would drop the DQ)."""
    ccd = read_frame(path)
    return CCDData(ccd.data * ccd.meta['PIXAR_SR'], unit='MJy',
                   mask=ccd.mask, flags=ccd.flags, meta=ccd.meta)


def _quiet(call, *args, **kwargs):
    """``call`` with its warnings recorded; the gain warning (no photon
    noise for a flux density without a gain) left out."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter('always')
        out = call(*args, **kwargs)
    return out, [w for w in said if 'no source photon noise' not in
                 str(w.message)]


@pytest.fixture(scope='module')
def saturated_i2d(tmp_path_factory):
    """Star 6 with SATURATED on its central pixel, star 7 with
    DO_NOT_USE + SATURATED (masked), star 5 with JUMP_DET next to its
    centre (summed, warned about)."""
    product = jwst_image(n_bad=0)
    product.dq[:] = 0
    centre = [(int(round(y)), int(round(x)))
              for x, y in zip(product.x, product.y, strict=True)]
    product.dq[centre[6]] = SATURATED
    product.dq[centre[7]] = SATURATED | DO_NOT_USE
    product.dq[centre[5][0], centre[5][1] + 1] = JUMP_DET
    path = tmp_path_factory.mktemp('jwst') / 'sat_i2d.fits'
    product.write(path, np.random.default_rng(4))
    return product, path


def test_optimal_flags_and_warns_as_photometer(saturated_i2d):
    product, path = saturated_i2d
    data = _flux_density(path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(data, method='median',
                                     mask_sources=False)
    positions = np.column_stack([product.x, product.y])
    table, said = _quiet(photometer, data, CircularAperture(positions, 3.0),
                         sky)
    assert (np.asarray(table['flags']) & DQ_BITS).tolist() == [
        0, 0, 0, 0, 0, 0, 4, 6]
    assert len(said) == 1 and '2 (SATURATED) in 1 row' in str(said[0].message)
    # the width as given: no star of this small frame is isolated enough
    # to measure it (each row would be flagged and warned about for it)
    flags, notes = [], []
    for x, y in positions:
        res, said = _quiet(optimal_extraction, data, (x, y),
                           product.psf_sigma, sky, fit_width=False)
        flags.append(res.flags & DQ_BITS)
        notes.append([str(w.message) for w in said if 'DQ' in
                      str(w.message)])
        assert all(w.filename == __file__ for w in said)
    # the same bits as photometer's: the saturated star 4, the masked
    # saturated star 4 + 2
    assert flags == [0, 0, 0, 0, 0, 0, 4, 6]
    assert [len(n) for n in notes] == [0, 0, 0, 0, 0, 1, 1, 0]
    assert 'DQ (JWST) flags 1 pixel' in notes[5][0]
    assert '4 (JUMP_DET)' in notes[5][0]
    assert '2 (SATURATED)' in notes[6][0]
    # a frame that lost its DQ (CCDData arithmetic): the saturated star
    # goes unflagged, as optimal extraction left every frame before
    bare = CCDData(data.data, unit=data.unit, mask=data.mask, meta=data.meta)
    res, said = _quiet(optimal_extraction, bare, tuple(positions[6]),
                       product.psf_sigma, sky, fit_width=False)
    assert res.flags & DQ_BITS == 0 and not said
    # the masked pixel gets no weight
    res, _ = _quiet(optimal_extraction, data, tuple(positions[7]),
                    product.psf_sigma, sky, fit_width=False)
    iy, ix = (int(round(v)) for v in positions[7][::-1])
    sy, sx = res.slices
    assert res.weights[iy - sy.start, ix - sx.start] == 0.0


def test_saturated_stars_are_not_fitted_for_the_psf(tmp_path):
    """The bright stars the PSF is fitted to leave out one holding a
    saturation bit; the fit on the flux density (MJy per pixel, numbers of
    1e-13) finds the true sigma 1.2 (it stopped at its first guess, 1.0,
    on numbers that small)."""
    product = jwst_image(shape=(80, 120), n_stars=12, n_bad=0,
                         flux_range=(0.5, 3.0))
    product.dq[:] = 0
    path = tmp_path / 'big_i2d.fits'
    product.write(path, np.random.default_rng(4))
    data = _flux_density(path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(data, method='median',
                                     mask_sources=False)
    bright = _bright_stars(as_frame(data), sky, None)[0]
    assert bright.tolist() == [[86.0, 40.0], [59.0, 39.0], [33.0, 40.0]]
    assert fit_psf_sigma(data, sky) == pytest.approx(1.2, abs=0.03)
    flags = data.flags.copy()
    flags[40, 86] = SATURATED
    marked = CCDData(data.data, unit=data.unit, mask=data.mask,
                     flags=flags, meta=data.meta)
    assert _bright_stars(as_frame(marked), sky, None)[0].tolist() == [
        [59.0, 39.0], [33.0, 40.0]]
    with pytest.raises(ValueError, match='fewer than three bright'):
        fit_psf_sigma(marked, sky)
