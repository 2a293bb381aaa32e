"""
``find_stars`` leaves out the rings and spikes of bright stars: an Airy
pattern (astropy's AiryDisk2D) and the diffraction pattern of a pupil with
a cross-shaped spider (the squared modulus of its Fourier transform) are one
star each, a real companion on a ring or a spike is kept, and real frames
(Source Extractor's ESO frame, the crowded M13 frame) lose nothing.
"""

import math
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.modeling.models import AiryDisk2D, Gaussian2D
from astropy.utils.exceptions import AstropyUserWarning
from clirun import installed_ccdphot

from ccdphot_ext import SkyEstimate, find_stars

SHAPE = (301, 301)
CENTRE = (150.3, 149.6)
RADIUS = 8.0  # the Airy pattern's first dark ring, pixels


def _airy(amplitude, *, companions=(), seed=1):
    """A bright Airy star (integrated over each pixel by 5 x 5 sampling)
    with Gaussian companions ``(x, y, flux)``, on a sky of 100 with
    Poisson noise and a read noise of 3."""
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    model = AiryDisk2D(amplitude, *CENTRE, RADIUS)
    image = np.zeros(SHAPE)
    for i in range(5):
        for j in range(5):
            image += model(xx + (j + 0.5) / 5 - 0.5, yy + (i + 0.5) / 5 - 0.5)
    image /= 25
    for x, y, flux in companions:
        image += Gaussian2D(flux / (2 * np.pi * 1.5 ** 2), x, y, 1.5, 1.5)(
            xx, yy)
    rng = np.random.default_rng(seed)
    return rng.poisson(image + 100.0) + rng.normal(0.0, 3.0, SHAPE)


def _cross(flux, *, companions=(), seed=2):
    """A star seen through a circular pupil with a central obstruction and
    a four-vane spider: its PSF the squared modulus of the pupil's Fourier
    transform (Airy rings and four spikes), with Gaussian companions, on a
    sky of 100 with Poisson noise."""
    n, d = 512, 128
    yy, xx = np.mgrid[:n, :n] - n / 2
    r = np.hypot(xx, yy)
    pupil = (r <= d / 2) & (r >= 0.3 * d / 2)
    pupil &= (np.abs(xx) > 1.5) & (np.abs(yy) > 1.5)
    psf = np.fft.fftshift(np.abs(np.fft.fft2(pupil)) ** 2)
    psf /= psf.sum()
    c = n // 2
    image = flux * psf[c - 150:c + 151, c - 150:c + 151]
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    for x, y, f in companions:
        image = image + Gaussian2D(f / (2 * np.pi * 2.0 ** 2), x, y, 2.0,
                                   2.0)(xx, yy)
    rng = np.random.default_rng(seed)
    return rng.poisson(image + 100.0).astype(float)


def _both(image, **kwargs):
    """Every detection, and the stars (the box check and the sky's notes on
    these frames of one bright star are not under test)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_image(image)
        return (find_stars(image, sky, reject_artifacts=False, **kwargs),
                find_stars(image, sky, **kwargs))


def _nearest(stars, x, y):
    return float(np.min(np.hypot(stars['x_center'] - x,
                                 stars['y_center'] - y)))


@pytest.mark.parametrize('amplitude', [2e4, 2e5, 2e6])
def test_airy_star_is_one_star(amplitude):
    every, stars = _both(_airy(amplitude))
    # segmentation cuts the rings into arcs: each arc was a "star"
    assert len(every) >= 9
    assert len(stars) == 1
    assert _nearest(stars, *CENTRE) < 0.05
    assert stars.meta['reject_artifacts'] is True
    assert stars.meta['n_rejected_artifacts'] == len(every) - 1
    assert every.meta['n_rejected_artifacts'] == 0


@pytest.mark.parametrize('flux', [3e8, 1e9])
def test_spike_pattern_is_one_star(flux):
    image = _cross(flux)
    every, stars = _both(image)
    assert len(every) > 300  # rings and four spikes, cut into pieces
    assert len(stars) == 1
    assert _nearest(stars, 150.0, 150.0) < 0.05
    assert stars.meta['n_rejected_artifacts'] == len(every) - 1


@pytest.mark.parametrize('flux', [3e7, 1e8])
def test_spike_pattern_pieces_at_the_detection_limit(flux):
    # measured: one or two pieces at the detection limit, where the
    # pattern's light is not significant, stay (of over 100)
    every, stars = _both(_cross(flux))
    assert len(every) > 100
    assert 1 <= len(stars) <= 3
    assert _nearest(stars, 150.0, 150.0) < 0.05
    assert np.all(stars['flux'][1:] < 2e-5 * stars['flux'][0])


def test_companions_on_rings_are_kept():
    # real stars on the 5th and 6th bright rings (radii 37.6 and 44.2 px),
    # each found as its own detection: they do not repeat around the ring
    companions = [(CENTRE[0] + r * math.cos(a), CENTRE[1] + r * math.sin(a),
                   3000.0) for r, a in ((37.6, 0.7), (44.2, 2.5))]
    every, stars = _both(_airy(2e5, companions=companions))
    for x, y, _ in companions:
        assert _nearest(every, x, y) < 0.3
        assert _nearest(stars, x, y) < 0.3
    # the bright star and its two companions; at most one ring piece at
    # the detection limit stays (measured: none or one), of about 30
    assert 3 <= len(stars) <= 4
    assert stars.meta['n_rejected_artifacts'] == len(every) - len(stars)
    assert stars.meta['n_rejected_artifacts'] >= 25
    assert np.all(stars['flux'][3:] < 0.3 * stars['flux'][2])


def test_companions_on_and_beside_spikes_are_kept():
    on_spike, beside = (190.0, 150.0, 3000.0), (100.0, 120.0, 3000.0)
    every, stars = _both(_cross(1e7, companions=[on_spike, beside]))
    for x, y, _ in (on_spike, beside):
        assert _nearest(every, x, y) < 1.0
        assert _nearest(stars, x, y) < 1.0
    assert stars.meta['n_rejected_artifacts'] > 100


def test_sextractor_frame_loses_no_catalogue_star(sextractor_dir):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)  # ESO-LOG cards
        image = fits.getdata(sextractor_dir / 'image.fits').astype(float)
    catalogue = np.loadtxt(sextractor_dir / 'image.cat')
    with pytest.warns(AstropyUserWarning, match='crowded frame'):
        sky = SkyEstimate.from_image(image)  # its faint sources' lift
    for n_sigma in (1.5, 3.0, 5.0):
        with warnings.catch_warnings():  # the detections at the edge
            warnings.filterwarnings('ignore', ".*frame's edge",
                                    AstropyUserWarning)
            every = find_stars(image, sky, n_sigma=n_sigma,
                               reject_artifacts=False)
            stars = find_stars(image, sky, n_sigma=n_sigma)
        matched = [
            int(np.sum(np.hypot(catalogue[:, 1:2] - 1 - t['x_center'],
                                catalogue[:, 2:3] - 1 - t['y_center'])
                       .min(axis=1) < 1.5)) for t in (every, stars)]
        assert matched[0] >= 0.9 * len(catalogue)
        assert matched[1] == matched[0]
        # measured: nothing is taken for a ring or a spike on this frame
        assert len(stars) == len(every)
        assert stars.meta['n_rejected_artifacts'] == 0


def test_crowded_cluster_loses_no_star(m13):
    ccd, sky = m13
    for kwargs in ({}, {'deblend': True}):
        with pytest.warns(AstropyUserWarning, match="frame's edge"):
            every = find_stars(ccd, sky, reject_artifacts=False, **kwargs)
        with pytest.warns(AstropyUserWarning, match="frame's edge"):
            stars = find_stars(ccd, sky, **kwargs)
        assert len(every) > 300
        assert len(stars) == len(every)
        assert stars.meta['n_rejected_artifacts'] == 0


def test_crowded_gaussian_field_loses_no_star():
    # 4,000 Gaussian stars (no rings, no spikes) on 512 x 512 pixels:
    # many faint stars beside much brighter ones, none is a pattern's piece
    from ccdphot_ext.datasets.sample import render_stars

    rng = np.random.default_rng(3)
    n = 4000
    image = render_stars((512, 512), rng.uniform(3, 509, n),
                         rng.uniform(3, 509, n),
                         10 ** rng.uniform(3.0, 5.5, n), sigma=1.3)
    image = rng.poisson(image + 200.0).astype(float)
    every, stars = _both(image)
    assert len(every) > 1200
    assert len(stars) == len(every)


@pytest.mark.parametrize('value', [1, 0, 'yes', None, np.array([True])])
def test_reject_artifacts_must_be_a_bool(value):
    image = _airy(2e4)
    with pytest.raises(TypeError, match='reject_artifacts must be True or '
                                        'False'):
        find_stars(image, SkyEstimate.from_image(image),
                   reject_artifacts=value)
    assert len(find_stars(image, SkyEstimate.from_image(image),
                          reject_artifacts=np.True_)) == 1


def test_cli_find_and_measure_report_the_rejected(tmp_path):
    path = tmp_path / 'airy.fits'
    fits.writeto(path, _airy(2e5).astype(np.float32))
    every = find_stars(fits.getdata(path).astype(float),
                       SkyEstimate.from_image(fits.getdata(path)),
                       reject_artifacts=False)
    n = len(every) - 1
    code, out, err = installed_ccdphot('find', path)
    assert code == 0, err
    assert ': 1 star(s) above 5 sigma' in out
    assert f'rejected  {n} detection(s) as rings or spikes' in out
    code, out, err = installed_ccdphot('find', path, '--keep-artifacts')
    assert code == 0, err
    assert f': {n + 1} star(s) above 5 sigma' in out
    assert 'rejected  none' in out
    table = tmp_path / 'phot.ecsv'
    code, out, err = installed_ccdphot('measure', path, '--find', '-o', table)
    assert code == 0, err
    assert (f'find      {n} detection(s) left out as rings or spikes'
            in out)
    from astropy.table import QTable
    written = QTable.read(table)
    assert len(written) == 1
    assert written.meta['find_n_rejected_artifacts'] == n
    # measure --find keeps them when asked, as find does
    code, out, err = installed_ccdphot('measure', path, '--find',
                                       '--keep-artifacts', '-o', table)
    assert code == 0, err
    assert 'kept (--keep-artifacts)' in out and 'left out' not in out
    written = QTable.read(table)
    assert len(written) == n + 1
    assert written.meta['find_kept_artifacts'] is True
    assert 'find_n_rejected_artifacts' not in written.meta


def test_a_noiseless_sky_reaches_the_whole_frame():
    # a digitised noiseless simulation: the sky std is 0 (warned of), the
    # detection threshold 0, and a parent's reach flux / threshold divided
    # by it; both stars are kept, neither taken for the other's ring
    from ccdphot_ext.datasets.sample import render_stars

    img = 100.0 + np.round(render_stars((60, 80), [20.3, 55.8], [30.6, 25.2],
                                        [20000.0, 800.0]))
    with pytest.warns(AstropyUserWarning, match='doubtful sky'):
        sky = SkyEstimate.from_image(img)
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)
        stars = find_stars(img, sky)
    assert stars.meta['n_rejected_artifacts'] == 0
    assert np.allclose(stars['x_center'], [20.3, 55.8], atol=0.01)
    assert np.allclose(stars['y_center'], [30.6, 25.2], atol=0.01)
