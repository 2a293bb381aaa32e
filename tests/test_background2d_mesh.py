"""A Background2D mesh that fits the frame and its sources: any frame
size, crowded frames where photutils' default leaves out every mesh, the
choice said in meta and on the command line."""

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot, installed_ccdphot
from photutils.background import Background2D

from ccdphot_ext import SkyEstimate
from ccdphot_ext.background.maps import (
    DEFAULT_MESH,
    EXCLUDE_PERCENTILES,
    frame_background2d,
)


def _sky(shape):
    """A sky with a gradient (the truth) and Gaussian noise of 3."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return 100.0 + 0.01 * xx + 0.02 * yy


@pytest.mark.parametrize('shape', [(513, 1025), (40, 300), (65, 65),
                                   (7, 500), (30, 30)])
def test_any_frame_size(shape):
    """The default mesh is cut to the frame: every size gets a map, equal
    to photutils' own on that mesh, and close to the true sky."""
    truth = _sky(shape)
    img = truth + np.random.default_rng(4).normal(0.0, 3.0, shape)
    bkg, note = frame_background2d(img)
    box = (min(DEFAULT_MESH, shape[0]), min(DEFAULT_MESH, shape[1]))
    assert tuple(int(b) for b in bkg.box_size) == box and note is None
    ref = Background2D(img, box, filter_size=3)
    np.testing.assert_array_equal(bkg.background, ref.background)
    assert np.median(np.abs(bkg.background - truth)) < 1.0


def test_crowded_frame_gets_a_map():
    """A fifth of every mesh's pixels unusable (bad columns and rows, and
    sources clipped): photutils' default gives up; the mesh rule of
    Source Extractor (half the pixels) makes the map, says so, and the
    level is the true sky."""
    shape = (256, 320)
    rng = np.random.default_rng(5)
    truth = _sky(shape)
    img = truth + rng.normal(0.0, 3.0, shape)
    img[:, ::8] = np.nan  # 12.5% of every mesh
    img[::10, :] = np.nan  # and 10% more
    with pytest.raises(ValueError, match='exclude_percentile'):
        Background2D(img, DEFAULT_MESH, filter_size=3,
                     mask=~np.isfinite(img))
    bkg, note = frame_background2d(img)
    assert bkg.exclude_percentile == EXCLUDE_PERCENTILES[1] == 50.0
    assert 'more than 10% of its pixels masked, NaN or sigma clipped' in note
    good = np.isfinite(img)
    assert np.median(np.abs(bkg.background - truth)[good]) < 0.5
    # the gradient is 10 times the meshes' noise from mesh to mesh
    with pytest.warns(AstropyUserWarning, match='median filter'):
        sky = SkyEstimate.from_background2d(bkg)
    assert sky.meta['exclude_percentile'] == 50.0
    # nothing left to measure: an error naming the mesh and the frame
    img[:, 1::2] = np.nan
    with pytest.raises(ValueError, match=r'no 64 x 64 mesh of the 256 x '
                                         r'320 frame has half'):
        frame_background2d(img)
    with pytest.raises(ValueError, match='larger than the 256 x 320'):
        frame_background2d(img, box_size=300)


def test_cli_crowded_real_frame(m13_path, tmp_path):
    """astropy's M13 (300 x 300, crowded): ``--sky background2d`` exited 2
    with photutils' message about exclude_percentile (not an option); it
    now measures, saying the mesh and the rule on stdout and in meta."""
    code, out, err = installed_ccdphot(
        'measure', m13_path, '--unit', 'adu', '--box', '140:160,140:160',
        '--sky', 'background2d', '-o', tmp_path / 'm13.ecsv')
    assert code == 0, err
    assert ('Background2D map, box 64x64, filter 3x3, exclude_percentile '
            '50') in out
    assert 'note      every 64 x 64 mesh has more than 10%' in out
    table = QTable.read(tmp_path / 'm13.ecsv')
    mesh = table.meta['sky_mesh']
    assert mesh['box_size'] == (64, 64) and mesh['exclude_percentile'] == 50
    data = fits.getdata(m13_path).astype(float)
    bkg, _ = frame_background2d(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        # one mesh left out; the command line gives the frame, whose
        # sources' light leaves the level (4.8 ADU at the cluster's core)
        sky = SkyEstimate.from_background2d(bkg, data=data)
    # the cluster's light is a hump that photutils' filter flattens
    said = ' '.join(str(w.message) for w in caught)
    assert 'interpolation error' in said and 'median filter' in said
    assert mesh['source_lift'] == pytest.approx(sky.meta['source_lift'])
    level = sky.value[140:160, 140:160]
    assert float(table['sky'][0].value) == pytest.approx(float(
        np.mean(level)), rel=1e-6)


def test_cli_small_frame_and_no_map(tmp_path):
    """A frame smaller than the default mesh gets a map (it was refused as
    '--box-size 64,64 larger than the image' without --box-size); a frame
    with no usable mesh is one line, exit 2."""
    img = _sky((40, 50)) + np.random.default_rng(6).normal(0, 3, (40, 50))
    fits.PrimaryHDU(img).writeto(tmp_path / 'small.fits')
    code, out, err = ccdphot('measure', tmp_path / 'small.fits', '--unit',
                             'adu', '--box', '10:20,10:20', '--sky',
                             'background2d')
    assert code == 0, err
    assert 'box 40x50' in out
    img[:, ::2] = np.nan
    fits.PrimaryHDU(img).writeto(tmp_path / 'holes.fits')
    code, _, err = ccdphot('measure', tmp_path / 'holes.fits', '--unit',
                           'adu', '--box', '10:20,10:20', '--sky',
                           'background2d')
    assert code == 2
    assert '--sky background2d: no 40 x 50 mesh' in err
    assert '(--box-size)' in err


@pytest.mark.parametrize('level, dtype', [(0, np.float64), (65535, np.uint16),
                                          (1, np.int16)])
def test_meshes_of_zero_rms_take_no_interpolation_error(level, dtype):
    # a constant (saturated, zeroed or coarsely digitised) sky: every mesh
    # has rms 0, and the chi-square of the interpolation divided by it
    data = np.full((47, 35), level, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        bkg = Background2D(data.astype(float), (10, 10))
    with warnings.catch_warnings():
        warnings.simplefilter('error', RuntimeWarning)
        with pytest.warns(AstropyUserWarning, match='doubtful sky'):
            sky = SkyEstimate.from_background2d(bkg, gain=2.0)
    assert sky.meta['interpolation_error'] == 0.0
    assert np.all(sky.value == level) and np.all(sky.std == 0)
    assert np.all(sky.error_on_mean == 0)
