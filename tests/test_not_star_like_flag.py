"""Photometry at the positions of detections that are not like a star
carries flag 512 (FLAG_NOT_STAR_LIKE), by the library (star_like_flags),
``ccdphot measure --find`` and ``measure --positions`` of a ``ccdphot
find`` table; saturated stars and plain stars do not."""
import shutil
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


def test_positions_star_like_spellings_are_read_as_booleans():
    """A CSV's True/False and the other plain spellings are booleans; a
    table without ``saturated`` counts no row as saturated."""
    table = Table({'x': [10.0, 20.0, 30.0, 40.0], 'y': [5.0, 6.0, 7.0, 8.0],
                   'star_like': ['no', ' YES ', 'False', 't'],
                   'saturated': [0, 1, 0, 0]})
    pos = read_positions(table)
    assert pos['star_like'].tolist() == [False, True, False, True]
    assert pos['saturated'].tolist() == [False, True, False, False]
    assert star_like_flags(pos).tolist() == [512, 0, 512, 0]
    alone = read_positions(Table({'x': [1.0, 2.0], 'y': [1.0, 2.0],
                                  'star_like': [1, 0]}))
    assert alone['saturated'].tolist() == [False, False]
    assert star_like_flags(alone).tolist() == [0, 512]


@pytest.mark.parametrize('column, values, shown', [
    ('star_like', ['True', 'maybe'], "row(s) 2; row 2 holds 'maybe'"),
    ('star_like', [0.5, 1.0], 'row(s) 1, 2; row 1 holds 0.5'),
    ('star_like', [1, 2], 'row(s) 2; row 2 holds 2'),
    ('saturated', ['x', 'False'], "row(s) 1; row 1 holds 'x'"),
])
def test_positions_star_like_not_boolean_is_refused(column, values, shown):
    table = Table({'x': [10.0, 20.0], 'y': [5.0, 6.0],
                   'star_like': [True, False], 'saturated': [False, False]})
    table[column] = values
    with pytest.raises(ValueError, match=f'column {column} is not boolean'
                       ) as info:
        read_positions(table)
    assert shown in str(info.value)


def _cr_frame(path):
    """Two stars, a cosmic-ray hit, a short trail and an edge artefact
    (1 + 512 at the edge, 512 at the hit and the trail; the photometry
    adds 1024 to the rows of all three, each one pixel wide: sharper than
    the stars)."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:100, :100]
    img = 1000.0 + sum(
        f * np.exp(-((x - a) ** 2 + (y - b) ** 2) / (2 * 1.8 ** 2))
        / (2 * np.pi * 1.8 ** 2)
        for a, b, f in [(30.2, 40.3, 2e4), (70, 70, 1e4)])
    img = rng.normal(img, np.sqrt(img))
    img[20, 80] += 3000
    img[21, 80] += 1500
    img[60, 10:14] += 2000
    img[0:3, 50] += 1e4
    fits.writeto(path, img, fits.Header({'BUNIT': 'adu', 'GAIN': 1.0}))


def test_find_csv_and_batch_rows_carry_the_flag_as_measure(tmp_path):
    """``measure --positions`` of a ``find --format csv`` table flags the
    rows as the ECSV table does (the CSV's True/False was text, dropped:
    flags 1, 0, 0, 0, 0), and ``ccdphot batch --positions`` flags each
    frame's rows exactly as ``measure`` (it never set 512)."""
    frame, copy = tmp_path / 'cr.fits', tmp_path / 'cr2.fits'
    _cr_frame(frame)
    shutil.copy(frame, copy)
    flags = {}
    for fmt in ('ecsv', 'csv'):
        found = tmp_path / f'found.{fmt}'
        code, _, err = ccdphot('find', frame, '-o', found, '--format', fmt)
        assert code == 0, err
        out = tmp_path / f'm_{fmt}.ecsv'
        code, _, err = ccdphot('measure', frame, '--positions', found,
                               '--radius', '4', '-o', out)
        assert code == 0, err
        flags[fmt] = QTable.read(out)['flags'].tolist()
        out = tmp_path / f'b_{fmt}.ecsv'
        code, _, err = ccdphot('batch', frame, copy, '--positions', found,
                               '--radius', '4', '-o', out, '-q')
        assert code == 0, err
        batch = QTable.read(out)
        assert len(batch) == 10
        for name in (frame, copy):
            rows = batch[[str(f).endswith('/' + name.name)
                          or str(f) == name.name for f in batch['frame']]]
            assert rows['flags'].tolist() == flags[fmt]
    assert flags['ecsv'] == [513 | 1024, 0, 0, 512 | 1024, 512 | 1024]
    assert flags['csv'] == flags['ecsv']


def test_batch_flags_resume_only_with_the_same_table(tmp_path):
    """The table's flags are a parameter of the run: a table of other
    flags does not resume it."""
    frame = tmp_path / 'cr.fits'
    _cr_frame(frame)
    found = tmp_path / 'found.ecsv'
    assert ccdphot('find', frame, '-o', found)[0] == 0
    out = tmp_path / 'lc.ecsv'
    code, _, err = ccdphot('batch', frame, '--positions', found, '--radius',
                           '4', '-o', out, '-q')
    assert code == 0, err
    assert QTable.read(out).meta['parameters']['row_flags'] == [
        512, 0, 0, 512, 512]
    plain = Table.read(found)
    plain['star_like'] = True
    plain.write(tmp_path / 'plain.ecsv')
    code, _, err = ccdphot('batch', frame, '--positions',
                           tmp_path / 'plain.ecsv', '--radius', '4',
                           '-o', out, '-q', '--resume')
    assert code == 2 and 'row_flags' in err


def test_cli_refuses_a_star_like_column_it_cannot_read(tmp_path):
    frame = tmp_path / 'cr.fits'
    _cr_frame(frame)
    table = Table({'x': [30.2, 70.0], 'y': [40.3, 70.0],
                   'star_like': ['True', 'perhaps'],
                   'saturated': ['False', 'False']})
    table.write(tmp_path / 'pos.csv')
    for command in (('measure', frame), ('batch', frame, '-o',
                                         tmp_path / 'b.ecsv')):
        code, _, err = ccdphot(*command, '--positions', tmp_path / 'pos.csv',
                               '--radius', '4')
        assert code == 2
        assert 'column star_like is not boolean' in err
        assert "row 2 holds 'perhaps'" in err


def _count(frame):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        stars = find_stars(frame, SkyEstimate.from_image(frame))
    flags = star_like_flags(stars)
    return len(stars), int(np.count_nonzero(flags)), stars, flags


def test_real_frames_flag_few_rows(sextractor_dir):
    """Source Extractor's ESO frame: 10 of 67 detections (3 sharp, 4
    elongated, 1 wider, 2 narrower); the bundled sample: 4 of its 6 faintest
    stars, narrower than the bright ones."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', AstropyUserWarning)
        eso = read_frame(sextractor_dir / 'image.fits', unit='adu')
    n, flagged, stars, flags = _count(eso)
    assert (n, flagged) == (67, 10)
    assert flags.tolist() == np.where(stars['star_like'], 0, 512).tolist()
    n, flagged, stars, flags = _count(sample_frame())
    assert (n, flagged) == (38, 4)
    assert set(np.flatnonzero(flags)) < set(range(32, 38))  # the faintest


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
