"""find_stars marks detections at the frame's edge (centroids pulled
inward) and names the detections that are not like a star; the commands
warn of both."""
import warnings

import numpy as np
from astropy.io import fits
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot

from ccdphot_ext import SkyEstimate, find_stars
from ccdphot_ext.datasets.sample import simulate_frame
from ccdphot_ext.detection.findstars import not_star_like


def _edge_frame(x0, seed):
    xs = np.array([x0, x0, x0, 60.0])
    ys = np.array([20.0, 50.0, 80.0, 50.0])
    data, _, _ = simulate_frame((100, 100), 300.0,
                                {'x': xs, 'y': ys, 'flux': [2e4] * 4},
                                gain=2.0, read_noise=5.0, psf_sigma=1.8,
                                seed=seed)
    return data


def _nearest(stars, x, y):
    return int(np.argmin(np.hypot(stars['x_center'] - x,
                                  stars['y_center'] - y)))


def test_edge_column_marks_the_biased_centroids():
    # measured (20 frames x 3 stars, sigma 1.8 px, 2e4 ADU): mean x offset
    # +0.69 at 0.3 px from the first pixel's centre, +0.36 at 1, +0.09 at
    # 2, +0.012 at 3, under 0.003 from 4 px; edge True up to 4 px, False
    # from 5
    for x0, low, high, edge in ((1.0, 0.3, 0.42, True),
                                (2.0, 0.04, 0.14, True),
                                (6.0, -0.05, 0.05, False)):
        data = _edge_frame(x0, seed=1)
        stars = find_stars(data, SkyEstimate.from_image(data))
        assert stars.colnames[11] == 'edge'
        assert stars.meta['n_edge'] == (3 if edge else 0)
        for y in (20.0, 50.0, 80.0):
            i = _nearest(stars, x0, y)
            assert low < stars['x_center'][i] - x0 < high
            assert bool(stars['edge'][i]) is edge
        assert not stars['edge'][_nearest(stars, 60.0, 50.0)]


def _hostile():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(15, 185, 30), rng.uniform(15, 185, 30)
    f = 10 ** rng.uniform(3.5, 4.5, 30)
    x, y, f = np.r_[x, 60.0], np.r_[y, 140.0], np.r_[f, 5e6]
    data, _, _ = simulate_frame((200, 200), 300.0,
                                {'x': x, 'y': y, 'flux': f}, gain=2.0,
                                read_noise=5.0, saturation=30000.0, seed=3)
    data = data.copy()
    data[:, 120] += 400.0  # a hot column
    data[77, 33] += 5000.0  # a cosmic-ray hit
    return data


def test_not_star_like_names_the_column_and_the_hit_not_the_saturated():
    data = _hostile()
    stars = find_stars(data, SkyEstimate.from_image(data),
                       saturation=30000.0)
    odd = not_star_like(stars)
    (column,) = odd['elongated (a blend, a trail, a bad column?)']
    row = np.flatnonzero(stars['id'] == column)[0]
    assert abs(stars['x_center'][row] - 120.0) < 5
    assert stars['roundness'][row] > 0.9 and stars['fwhm'][row].value > 50
    hit = stars['id'][_nearest(stars, 33.0, 77.0)]
    assert odd['sharper than a star (a cosmic-ray hit, a hot pixel?)'] == [
        hit]
    saturated = stars['id'][_nearest(stars, 60.0, 140.0)]
    assert stars['saturated'][_nearest(stars, 60.0, 140.0)]
    assert saturated not in sum(odd.values(), [])
    assert set(odd) == {'elongated (a blend, a trail, a bad column?)',
                        'sharper than a star (a cosmic-ray hit, a hot '
                        'pixel?)'}


def test_commands_warn_of_edge_and_of_detections_not_like_a_star(tmp_path):
    path = tmp_path / 'hostile.fits'
    fits.writeto(path, _hostile())
    code, _, err = ccdphot('measure', path, '--find', '--saturation',
                           '30000', '-o', tmp_path / 'm.ecsv')
    assert code == 0, err
    assert ('1 elongated (a blend, a trail, a bad column?): id ' in err
            and '1 sharper than a star' in err)
    data = _edge_frame(1.0, seed=2)
    edge = tmp_path / 'edge.fits'
    fits.writeto(edge, data)
    code, _, err = ccdphot('find', edge, '-o', tmp_path / 'f.ecsv')
    assert code == 0, err
    assert "3 detection(s) at the frame's edge (column edge)" in err
    found = QTable.read(tmp_path / 'f.ecsv')
    assert found['edge'].tolist().count(True) == 3
    assert found.meta['n_edge'] == 3


def test_no_warning_on_plain_stars():
    data = _edge_frame(30.0, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        stars = find_stars(data, SkyEstimate.from_image(data))
    assert not stars['edge'].any() and not_star_like(stars) == {}
