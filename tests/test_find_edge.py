"""find_stars marks detections at the frame's edge (centroids pulled
inward) and names the detections that are not like a star; the commands
warn of both."""
import warnings

import numpy as np
import pytest
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


def test_edge_positions_are_refitted_to_the_truth():
    """The windowed centroid of a star the frame cuts is pulled inward
    (measured, 20 frames x 3 stars, sigma 1.8 px, 2e4 ADU: +0.69 px at 0.3
    px from the first pixel's centre, +0.36 at 1, +0.09 at 2, +0.012 at 3,
    +0.003 at 4); find_stars refits them with the cut modelled: the mean
    offset over 5 frames x 3 stars is within 0.03 px of the truth from 0.3
    to 4 px, each star's within 0.15 px. Stars 6 px in are not at the
    edge, and not refitted."""
    for x0, edge in ((0.3, True), (1.0, True), (2.0, True), (3.0, True),
                     (4.0, True), (6.0, False)):
        offsets = []
        for seed in range(5):
            data = _edge_frame(x0, seed=seed)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                stars = find_stars(data, SkyEstimate.from_image(data))
            said = [str(w.message) for w in caught
                    if "frame's edge" in str(w.message)]
            assert stars.colnames[11] == 'edge'
            assert stars.meta['n_edge'] == (3 if edge else 0)
            assert stars.meta['n_edge_fitted'] == (3 if edge else 0)
            assert len(said) == (1 if edge else 0)
            for y in (20.0, 50.0, 80.0):
                i = _nearest(stars, x0, y)
                assert bool(stars['edge'][i]) is edge
                offsets.append(stars['x_center'][i] - x0)
                assert abs(stars['y_center'][i] - y) < 0.15
            assert not stars['edge'][_nearest(stars, 60.0, 50.0)]
        assert abs(np.mean(offsets)) < 0.03, (x0, np.mean(offsets))
        assert np.max(np.abs(offsets)) < 0.15, (x0, offsets)


def test_library_warns_once_naming_the_edge_detections():
    data = _edge_frame(1.0, seed=2)
    with pytest.warns(AstropyUserWarning) as caught:
        stars = find_stars(data, SkyEstimate.from_image(data))
    said = [str(w.message) for w in caught if "frame's edge" in
            str(w.message)]
    ids = ', '.join(str(i) for i in stars['id'][stars['edge']])
    assert said == [
        "3 detection(s) at the frame's edge (column edge): the frame cuts "
        'them, so their windowed centroids are pulled inward (up to 0.7 '
        'pixels); positions of 3 refitted with the cut modelled; apertures '
        f'about them usually run off the frame (flag 1): id {ids}']
    assert caught[0].filename == __file__


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
    with pytest.warns(AstropyUserWarning, match="1 detection.s. at the "
                      "frame's edge"):  # the column
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
    # the library's one warning, not a second copy
    assert err.count("detection(s) at the frame's edge") == 1
    assert "3 detection(s) at the frame's edge (column edge)" in err
    found = QTable.read(tmp_path / 'f.ecsv')
    assert found['edge'].tolist().count(True) == 3
    assert found.meta['n_edge'] == found.meta['n_edge_fitted'] == 3
    # measure --find: warned once too, the edge rows' boxes truncated
    code, _, err = ccdphot('measure', edge, '--find', '-o',
                           tmp_path / 'e.ecsv')
    assert code == 0, err
    assert err.count("detection(s) at the frame's edge") == 1
    rows = QTable.read(tmp_path / 'e.ecsv')
    at_edge = rows['x_center'] < 5
    assert at_edge.sum() == 3
    assert np.all(rows['flags'][at_edge] & 1)
    assert not np.any(rows['flags'][~at_edge] & 1)


def test_no_warning_on_plain_stars():
    data = _edge_frame(30.0, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter('error', AstropyUserWarning)
        stars = find_stars(data, SkyEstimate.from_image(data))
    assert not stars['edge'].any() and not_star_like(stars) == {}
