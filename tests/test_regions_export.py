"""DS9 region export through the optional regions package."""

import sys

import astropy.units as u
import numpy as np
import pytest
from astropy.wcs import WCS
from expected_warnings import gradient_warning
from photutils.aperture import (
    CircularAnnulus,
    CircularAperture,
    EllipticalAperture,
    SkyCircularAperture,
)

from ccdphot_ext import (
    NOTEBOOK_BOXES,
    BoxAperture,
    SkyBoxAperture,
    SkyEstimate,
    photometer,
    write_ds9,
)
from ccdphot_ext.aperture.regions import aperture_regions

regions = pytest.importorskip('regions')  # the optional extra


def _wcs():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    wcs.wcs.crval = [250.4226, 36.4602]
    wcs.wcs.crpix = [150.5, 150.5]
    wcs.wcs.cdelt = [-0.00027770002, 0.00027770002]
    wcs.wcs.radesys = 'FK5'
    wcs.wcs.equinox = 2000.0
    return wcs


def test_pixel_regions_round_trip(tmp_path):
    boxes = [BoxAperture.from_slices(s) for s in NOTEBOOK_BOXES.values()]
    circles = CircularAperture([(10.0, 20.0), (30.5, 40.25)], r=5)
    ellipse = EllipticalAperture((50, 60), a=6, b=3, theta=0.5 * u.rad)
    annulus = CircularAnnulus((70, 80), r_in=8, r_out=12)
    path = tmp_path / 'stars.reg'
    aps = [*boxes, circles, ellipse, annulus]
    labels = [f'S{i}' for i in range(8)]
    assert write_ds9(aps, path, labels=labels, color='green') == str(path)
    text = path.read_text()
    lines = [ln for ln in text.splitlines() if '(' in ln]
    assert len(lines) == 8
    # DS9 image coordinates are 1-based: the notebook's first box
    # data[158:178, 492:512] is centred on (502.5, 168.5)
    assert lines[0].startswith('box(502.50000000,168.50000000,20.00000000,'
                               '20.00000000,')
    assert 'text={S0}' in lines[0]
    assert lines[4].startswith('circle(11.00000000,21.00000000,5.00000000)')
    assert lines[7].startswith('annulus(71.00000000,81.00000000,'
                               '8.00000000,12.00000000)')
    back = regions.Regions.read(path, format='ds9')
    assert len(back) == 8
    np.testing.assert_allclose([back[0].center.x, back[0].center.y],
                               boxes[0].positions, atol=1e-8)
    assert (back[0].width, back[0].height) == (20.0, 20.0)
    np.testing.assert_allclose([back[5].center.x, back[5].center.y],
                               [30.5, 40.25], atol=1e-8)
    assert back[6].width == 12 and back[6].height == 6
    assert back[6].angle.to_value(u.rad) == pytest.approx(0.5, abs=1e-8)
    assert [r.meta['text'] for r in back] == labels
    assert back[3].visual['edgecolor'] == 'green'


def test_sky_regions_with_wcs(tmp_path):
    wcs = _wcs()
    pos = np.array([(120.3, 88.1), (200.0, 150.0)])
    coords = wcs.pixel_to_world(pos[:, 0], pos[:, 1])
    path = tmp_path / 'sky.reg'
    write_ds9([CircularAperture(pos, r=4.0),
               SkyCircularAperture(coords, r=2 * u.arcsec),
               SkyBoxAperture(coords[0], 6 * u.arcsec, 4 * u.arcsec)],
              path, wcs=wcs)
    text = path.read_text()
    assert '\nj2000\n' in text  # DS9's name for fk5 at equinox J2000
    back = regions.Regions.read(path, format='ds9')
    assert len(back) == 5
    for reg, c in zip(back[:2], coords, strict=True):
        assert reg.center.separation(c).to_value(u.arcsec) < 1e-4
        # 4 px at 0.99972 arcsec/px
        assert reg.radius.to_value(u.arcsec) == pytest.approx(
            4 * 0.99972007, rel=1e-4)
    assert back[2].radius.to_value(u.arcsec) == pytest.approx(2.0, rel=1e-4)
    assert back[4].width.to_value(u.arcsec) == pytest.approx(6.0, rel=1e-4)
    assert back[4].height.to_value(u.arcsec) == pytest.approx(4.0, rel=1e-4)


def test_photometer_table_labels(tmp_path, sample_ccd):
    boxes = BoxAperture([(501.5, 167.5), (334.5, 249.5)], 20, 20)
    with gradient_warning():
        t = photometer(sample_ccd, boxes, SkyEstimate.from_image(sample_ccd))
    regs = aperture_regions(boxes, labels=t['id'])
    assert [r.meta['text'] for r in regs] == ['1', '2']


def test_errors(tmp_path):
    path = tmp_path / 'x.reg'
    path.write_text('keep me\n')
    with pytest.raises(FileExistsError, match='overwrite'):
        write_ds9(CircularAperture((1, 2), r=3), path)
    assert path.read_text() == 'keep me\n'
    with pytest.raises(ValueError, match='labels'):
        write_ds9(CircularAperture([(1, 2), (3, 4)], r=3), path,
                  labels=['a'], overwrite=True)
    assert path.read_text() == 'keep me\n'  # nothing half-written
    write_ds9(CircularAperture((1, 2), r=3), path, overwrite=True)
    assert 'circle(2.00000000,3.00000000,3.00000000)' in path.read_text()
    assert not list(tmp_path.glob('.ccdphot-*'))  # no temporary left over
    coords = _wcs().pixel_to_world(10, 10)
    with pytest.raises(ValueError, match='wcs='):
        aperture_regions(SkyBoxAperture(coords, 3 * u.pix, 3 * u.pix))
    plain = WCS(naxis=2)
    with pytest.raises(ValueError, match='celestial'):
        aperture_regions(CircularAperture((1, 2), r=3), wcs=plain)
    with pytest.raises(TypeError, match='apertures'):
        aperture_regions([(1, 2)])
    with pytest.raises(ValueError, match='empty'):
        aperture_regions([])
    with pytest.raises(TypeError, match='color'):
        aperture_regions(CircularAperture((1, 2), r=3), color=3)


def test_missing_regions_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, 'regions', None)  # import fails
    with pytest.raises(ImportError, match=r"ccdphot_ext\[regions\]"):
        write_ds9(CircularAperture((1, 2), r=3), tmp_path / 'a.reg')
    assert not (tmp_path / 'a.reg').exists()


def test_flags_colour_label_and_tag_each_region():
    """Flagged apertures red with their flags in the label and one tag per
    bit; unflagged green (what a user checks in DS9)."""
    from ccdphot_ext import BoxAperture
    from ccdphot_ext.aperture.regions import FLAG_COLORS, aperture_regions

    boxes = BoxAperture([(10.0, 10.0), (40.0, 40.0), (70.0, 5.0)], 8, 8)
    regs = aperture_regions(boxes, labels=['7', '8', '9'], flags=[0, 4, 33])
    assert [r.visual['color'] for r in regs] == [
        FLAG_COLORS['ok'], FLAG_COLORS['flagged'], FLAG_COLORS['flagged']]
    assert [r.meta['text'] for r in regs] == ['7', '8 [flags 4]',
                                              '9 [flags 33]']
    assert regs[2].meta['tag'] == ['truncated', 'residual_background']
    assert 'tag' not in regs[0].meta
    with pytest.raises(ValueError, match='one integer per aperture'):
        aperture_regions(boxes, flags=[0, 1])
