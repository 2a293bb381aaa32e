"""Photometry at the positions of detections that are not like a star
carries flag 512 (FLAG_NOT_STAR_LIKE), by the library (star_like_flags),
``ccdphot measure --find`` and ``measure --positions`` of a ``ccdphot
find`` table; saturated stars and plain stars do not."""
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import QTable, Table
from astropy.utils.exceptions import AstropyUserWarning
from clirun import ccdphot
from test_find_edge import _hostile, _nearest

from ccdphot_ext import (
    FLAG_DESCRIPTIONS,
    FLAG_NOT_STAR_LIKE,
    FLAG_SATURATED,
    SkyEstimate,
    decode_flags,
    find_stars,
    read_frame,
    read_positions,
    sample_frame,
    star_like_flags,
)
from ccdphot_ext.detection.findstars import not_star_like


def test_flag_bit_and_description():
    assert FLAG_NOT_STAR_LIKE == 512
    assert decode_flags(512 | 1) == [FLAG_DESCRIPTIONS[1],
                                      FLAG_DESCRIPTIONS[512]]
    assert 'not like a star' in FLAG_DESCRIPTIONS[512]


def test_library_flags_the_column_and_the_hit_not_the_saturated():
    data = _hostile()
    with pytest.warns(AstropyUserWarning, match="frame's edge"):
        stars = find_stars(data, SkyEstimate.from_image(data),
                           saturation=30000.0)
    flags = star_like_flags(stars)
    assert flags.dtype == np.int32 and flags.shape == (len(stars),)
    column = int(np.argmax(stars['roundness']))
    assert abs(stars['x_center'][column] - 120.0) < 5
    hit = _nearest(stars, 33.0, 77.0)
    saturated = _nearest(stars, 60.0, 140.0)
    assert stars['saturated'][saturated]
    assert flags[column] == 512 and flags[hit] == 512
    assert flags[saturated] == 0
    assert sorted(np.flatnonzero(flags).tolist()) == sorted([column, hit])


def test_star_like_flags_needs_the_columns():
    with pytest.raises(TypeError, match='star_like and saturated'):
        star_like_flags(Table({'id': [1, 2]}))
    table = Table({'star_like': [True, False, False],
                   'saturated': [False, False, True]})
    assert star_like_flags(table).tolist() == [0, 512, 0]


def test_measure_find_and_positions_rows_carry_the_flag(tmp_path):
    path = tmp_path / 'hostile.fits'
    header = fits.Header({'SATURATE': 30000.0, 'BUNIT': 'adu'})
    fits.writeto(path, _hostile(), header)
    out = tmp_path / 'm.ecsv'
    code, _, err = ccdphot('measure', path, '--find', '-o', out)
    assert code == 0, err
    assert 'flagged 512: 1 sharper than a star' in err
    t = QTable.read(out)
    odd = (t['flags'] & FLAG_NOT_STAR_LIKE) > 0
    assert odd.sum() == 2
    column = _nearest(t, 120.0, 100.0)
    assert odd[column] and odd[_nearest(t, 33.0, 77.0)]
    saturated = _nearest(t, 60.0, 140.0)
    assert t['flags'][saturated] & FLAG_SATURATED
    assert not t['flags'][saturated] & FLAG_NOT_STAR_LIKE
    # a circle of one's own: the same rows
    code, _, err = ccdphot('measure', path, '--find', '--radius', '4', '-o',
                           tmp_path / 'r.ecsv')
    assert code == 0, err
    r = QTable.read(tmp_path / 'r.ecsv')
    assert ((r['flags'] & 512) > 0).tolist() == odd.tolist()
    # find, then measure --positions: the saved table keeps the doubt
    found = tmp_path / 'found.ecsv'
    code, _, err = ccdphot('find', path, '-o', found)
    assert code == 0, err
    pos = read_positions(found)
    assert pos['star_like'].dtype == bool
    code, _, err = ccdphot('measure', path, '--positions', found,
                           '-o', tmp_path / 'p.ecsv')
    assert code == 0, err
    p = QTable.read(tmp_path / 'p.ecsv')
    assert p['flags'].tolist() == t['flags'].tolist()


def test_positions_without_boolean_star_like_are_not_flagged():
    table = Table({'x': [10.0, 20.0], 'y': [5.0, 6.0],
                   'star_like': ['no', 'yes'], 'saturated': [0, 1]})
    assert 'star_like' not in read_positions(table).colnames


def _count(frame):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        stars = find_stars(frame, SkyEstimate.from_image(frame))
    flags = star_like_flags(stars)
    return len(stars), int(np.count_nonzero(flags)), stars, flags


def test_real_frames_flag_few_rows(sextractor_dir):
    """Source Extractor's ESO frame: 10 of 67 detections (3 sharp, 4
    elongated, 1 wider, 2 narrower); the bundled sample: 5 of its 6 faintest
    stars, narrower than the bright ones."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        eso = read_frame(sextractor_dir / 'image.fits', unit='adu')
    n, flagged, stars, flags = _count(eso)
    assert (n, flagged) == (67, 10)
    assert flags.tolist() == np.where(stars['star_like'], 0, 512).tolist()
    n, flagged, stars, flags = _count(sample_frame())
    assert (n, flagged) == (34, 5)
    assert set(np.flatnonzero(flags)) < set(range(28, 34))  # the faintest


def test_saao_cosmic_ray_hits_and_m13_blends_are_flagged(saao, m13_path):
    """ccdproc's SAAO frame: its 18 sharp detections (cosmic-ray hits) and
    one narrower one, 19 of 24; astropy's M13: 133 of 487, as many as
    not_star_like names (79 elongated)."""
    n, flagged, stars, flags = _count(saao)
    assert (n, flagged) == (24, 19)
    assert np.all(flags[np.asarray(stars['sharpness']) > 0.4] == 512)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        m13 = read_frame(m13_path)
    n, flagged, stars, flags = _count(m13)
    assert (n, flagged) == (487, 133)
    odd = not_star_like(stars)
    assert len(odd['elongated (a blend, a trail, a bad column?)']) == 79
    named = np.isin(stars['id'], sum(odd.values(), []))
    assert (flags == 512).tolist() == named.tolist()
