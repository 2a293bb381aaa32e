"""A gain given (``gain=``, ``--gain``) is used or a warning says why not:
on a frame whose variance arrays hold the photon noise (an HST ERR, JWST's
VAR_POISSON) no source term is formed from a gain; the warning names
``gain``. A gain from the header is not warned about."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from calibrated_products import _write_hst, hst_image
from clirun import ccdphot
from photutils.aperture import CircularAperture

from ccdphot_ext import SkyEstimate, measure, photometer, read_frame

UNUSED = r'gain=\S+ is not used'


@pytest.fixture
def hst(tmp_path):
    """An HST-like flt (SCI, ERR, DQ) in electrons, written and read."""
    product = hst_image(seed=41)
    path = tmp_path / 'flt.fits'
    _write_hst(product, path, product.realize(np.random.default_rng(3)))
    return path, read_frame(path), CircularAperture(
        np.c_[product.x, product.y], 3.0)


def _run(call, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        result = call(*args, **kwargs)
    return result, [str(w.message) for w in caught]


def test_a_gain_given_beside_variance_arrays_warns(hst):
    _, ccd, aps = hst
    sky, _ = _run(SkyEstimate.from_image, ccd, method='median')
    plain, said = _run(photometer, ccd, aps, sky)
    assert not [m for m in said if 'is not used' in m]
    given, said = _run(photometer, ccd, aps, sky, gain=1.0)
    unused = [m for m in said if 'is not used' in m]
    assert len(unused) == 1
    assert unused[0].startswith('gain=1 is not used: the variance arrays '
                                'of the frame (ERR)')
    # not used indeed: the same errors, bit for bit
    np.testing.assert_array_equal(given['aperture_sum_err'],
                                  plain['aperture_sum_err'])
    with pytest.warns(AstropyUserWarning, match=UNUSED):
        measure(ccd, aps[0], sky, gain=1.0)


def test_cli_gain_beside_variance_arrays_warns(hst, tmp_path):
    path, _, aps = hst
    box = '10:20,10:20'
    code, _, err = ccdphot('measure', path, '--box', box, '--gain', 1,
                           '-o', tmp_path / 'o.ecsv')
    assert code == 0, err
    assert [ln for ln in err.splitlines() if 'gain=1 is not used' in ln]
    # the header's gain (CCDGAIN) is not warned about
    code, _, err = ccdphot('measure', path, '--box', box, '-o',
                           tmp_path / 'p.ecsv')
    assert code == 0 and 'is not used' not in err, err
    assert fits.getheader(path, 0)['CCDGAIN'] == 1.5
