"""A Background2D mesh the size of the stars: the map holds their light.
With the frame (``data=``) the meshes in a star's footprint are filled from
their neighbours; rows whose aperture is not small beside the mesh are
flagged 32 with a warning naming box_size, on the command line too."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot
from photutils.aperture import CircularAperture
from photutils.background import Background2D

from ccdphot_ext import SkyEstimate, photometer
from ccdphot_ext.background.maps import _filled_lift
from ccdphot_ext.flags import FLAG_RESIDUAL_BACKGROUND
from ccdphot_ext.photometry.residual import SMALL_MESH_FACTOR, check_small_mesh


def _star_frame(seed, size=64, flux=5000.0, sigma=1.5):
    """Sky 100 (noise 5) and one Gaussian star near the centre; the star
    alone (the truth) and its position."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cx, cy = size / 2 + rng.uniform(-0.5, 0.5, 2)
    star = flux * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2)
                         / (2 * sigma ** 2)) / (2 * np.pi * sigma ** 2)
    return rng.normal(100.0, 5.0, (size, size)) + star, star, (cx, cy)


def _map_under(sky, position, r=3.0):
    """The map's mean over a circle."""
    mask = CircularAperture(position, r).to_mask(method='exact')
    return float(mask.get_values(sky.value).sum() / mask.data.sum())


def _quiet_sky(img, box, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        return SkyEstimate.from_background2d(
            Background2D(img, box, filter_size=1), **kwargs)


def test_three_pixel_meshes_lose_the_star_light_with_data():
    """3 px meshes on a 5000 ADU star: the map under it read 150 to 250
    for a sky of 100; with data= it is filled from the meshes around."""
    img, _, pos = _star_frame(0)
    assert _map_under(_quiet_sky(img, 3), pos) > 140.0  # photutils' map
    assert _map_under(_quiet_sky(img, 3, data=img), pos) == pytest.approx(
        100.0, abs=3.0)


def test_mesh_of_star_size_level_under_the_star():
    """16 px meshes (no filter), star on the corner of four: the meshes
    the source mask empties kept their level (map under the star 0.46 ADU
    rms about the sky over 8 frames); filled from their neighbours, 0.2."""
    off = [_map_under(_quiet_sky(img, 16, data=img), pos) - 100.0
           for img, _, pos in map(_star_frame, range(8))]
    assert np.sqrt(np.mean(np.square(off))) < 0.3


def test_filled_lift():
    """A mesh the mask leaves under a quarter of its pixels takes its
    level without sources from the others (inverse distance); the others
    keep their lift."""
    raw = np.full((3, 3), 10.0)
    raw[1, 1] = 50.0
    lift = np.zeros((3, 3))
    n_usable = np.full((3, 3), 16.0)
    n_clean = n_usable.copy()
    n_clean[1, 1] = 3.0
    out, filled = _filled_lift(raw, lift, n_clean, n_usable)
    assert filled.tolist() == [[False] * 3, [False, True, False],
                               [False] * 3]
    assert out[1, 1] == pytest.approx(40.0)
    assert np.all(out[~filled] == 0.0)
    n_clean[1, 1] = 4.0  # a quarter: measured on them
    assert not np.any(_filled_lift(raw, lift, n_clean, n_usable)[1])


FILLED = 'is filled from the meshes around'
SMALL = 'smaller than 3 times the diameter'


@pytest.mark.parametrize('box, data, said', [
    (4, True, FILLED), (16, True, FILLED), (24, True, FILLED),
    (32, True, None), (4, False, SMALL), (16, False, SMALL)])
def test_rows_on_a_small_mesh_are_flagged(box, data, said):
    """With the frame, a mesh the star's source mask empties is filled
    from its neighbours and its rows flagged 32; without it, meshes under
    three aperture diameters (and 32 px). One warning naming box_size; 32
    px meshes (the star on the corner of four, each kept three quarters
    of its pixels) are measured and not flagged."""
    img, star, pos = _star_frame(1)
    ap = CircularAperture(pos, 3.0)
    sky = _quiet_sky(img, box, data=img if data else None)
    assert ('filled_meshes' in sky.meta) is (data and box < 32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        t = photometer(img, ap, sky)
    messages = [str(w.message) for w in caught
                if 'box_size' in str(w.message)]
    assert bool(t['flags'][0] & FLAG_RESIDUAL_BACKGROUND) is (said is not None)
    if said is None:
        assert not messages
    else:
        assert len(messages) == 1
        assert f'box_size={box}x{box}' in messages[0] and said in messages[0]
    # with the frame the flux is right (the map filled across the star)
    true = ap.do_photometry(star)[0][0]
    if data:
        assert abs(t['aperture_sum'][0] - true) < 3 * t['aperture_sum_err'][0]
    elif box == 4:  # the map keeps the star's light
        assert t['aperture_sum'][0] < 0.8 * true


def test_a_masked_background2d_is_judged_by_its_mask():
    """Background2D given a source mask of its own keeps the star out of
    its meshes: 16 px meshes, r = 3, without data=, not flagged (its
    excluded meshes are filled by photutils and their error propagated)."""
    img, star, pos = _star_frame(2)
    yy, xx = np.mgrid[:64, :64]
    mask = (xx - pos[0]) ** 2 + (yy - pos[1]) ** 2 < 10.0 ** 2
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        sky = SkyEstimate.from_background2d(
            Background2D(img, 16, filter_size=1, mask=mask))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        t = photometer(img, CircularAperture(pos, 3.0), sky)
    assert not [w for w in caught if 'box_size' in str(w.message)]
    assert not t['flags'][0] & FLAG_RESIDUAL_BACKGROUND
    true = CircularAperture(pos, 3.0).do_photometry(star)[0][0]
    assert abs(t['aperture_sum'][0] - true) < 3 * t['aperture_sum_err'][0]


def test_check_small_mesh_uses_the_shorter_side():
    sky = SkyEstimate(100.0, 5.0, 1000, meta={'method': 'Background2D',
                                              'box_size': (64, 12)})
    xy = [30.0, 30.0]
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        # diameters 2 and 4 px: 3 x 4 = 12 is not above 12
        small, message = check_small_mesh(sky, xy, xy, [np.pi, 4 * np.pi],
                                          [1.0, 1.0])
    assert small.tolist() == [False, False] and message is None
    with pytest.warns(AstropyUserWarning, match='box_size=64x12'):
        small, message = check_small_mesh(sky, xy, xy,
                                          [np.pi, 4.4 * np.pi], [1.0, 1.0])
    assert small.tolist() == [False, True]
    assert 'at least 13 px' in message and SMALL_MESH_FACTOR == 3.0
    # meshes of 32 px and more are measured without the sources' light
    # whatever the aperture: a 20 x 20 box on 64 px meshes is not doubted
    large = SkyEstimate(100.0, 5.0, 1000, meta={'method': 'Background2D',
                                                'box_size': (64, 64)})
    assert check_small_mesh(large, 30.0, 30.0, 400.0, 1.0) == (False, None)
    # a sky that is not a Background2D map is not judged
    plain = SkyEstimate(100.0, 5.0, 1000, meta={'box_size': (4, 4)})
    assert check_small_mesh(plain, 5.0, 5.0, 100.0, 1.0) == (False, None)


def test_check_small_mesh_reaches_filled_meshes():
    """A circle of diameter 4 px flagged when its disc reaches a filled
    mesh's box (mesh (1, 1) of 32 px: pixels 32 to 63, from 31.5),
    not beyond."""
    sky = SkyEstimate(100.0, 5.0, 1000, meta={
        'method': 'Background2D', 'box_size': (32, 32),
        'filled_meshes': ((1, 1),)})
    with pytest.warns(AstropyUserWarning, match='is filled from the meshes'):
        small, _ = check_small_mesh(sky, [40.0, 29.6, 29.4, 5.0],
                                    [40.0, 40.0, 40.0, 5.0],
                                    [4 * np.pi] * 4, [1.0] * 4)
    assert small.tolist() == [True, True, False, False]


def test_default_mesh_on_a_large_frame_is_not_flagged():
    """64 px meshes (filter 3) on 512 x 512 with 16 stars: no row flagged
    by the mesh rule."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:512, :512]
    img = rng.normal(100.0, 5.0, (512, 512))
    pos = [(x, y) for y in range(64, 512, 128) for x in range(64, 512, 128)]
    for x, y in pos:
        img += 5000 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.5) / (
            2 * np.pi * 2.25)
    sky = SkyEstimate.from_background2d(Background2D(img, 64), data=img)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        t = photometer(img, CircularAperture(pos, 4.0), sky)
    assert not [w for w in caught if 'box_size' in str(w.message)]
    assert not np.any(t['flags'] & FLAG_RESIDUAL_BACKGROUND)


def test_cli_small_mesh_one_warning(tmp_path):
    """The audit's frame: --box-size 3 --filter-size 1 read a flux of 1354
    for 4320 with flags 0; now about the truth, flagged 32, one warning
    naming box_size, no traceback."""
    img, star, pos = _star_frame(0)
    fits.PrimaryHDU(img).writeto(tmp_path / 'star.fits')
    (tmp_path / 'pos.csv').write_text(f'x,y\n{pos[0]},{pos[1]}\n')
    code, out, err = ccdphot('measure', tmp_path / 'star.fits', '--unit',
                             'adu', '--positions', tmp_path / 'pos.csv',
                             '--radius', '3', '--sky', 'background2d',
                             '--box-size', '3', '--filter-size', '1', '-o',
                             tmp_path / 'out.ecsv')
    assert code == 0, err
    assert 'Traceback' not in err
    assert err.count('box_size=3x3') == 1
    from astropy.table import QTable
    t = QTable.read(tmp_path / 'out.ecsv')
    assert int(t['flags'][0]) & FLAG_RESIDUAL_BACKGROUND
    true = CircularAperture(pos, 3.0).do_photometry(star)[0][0]
    assert float(t['aperture_sum'][0].value) == pytest.approx(true, rel=0.03)
