"""ECSV tables written faster: the same text as astropy's writer."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, QTable, Table
from astropy.time import Time

from ccdphot_ext.utils.ecsv import LineCache, write_ecsv
from ccdphot_ext.utils.files import write_table_atomic


def _table(n=240):
    rng = np.random.default_rng(0)
    t = QTable()
    f = rng.normal(0, 1, n) * 10.0 ** rng.integers(-320, 300, n)
    f[:12] = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e16, 1e-5, 1e15,
              5e-324, 1.7976931348623157e308, 0.1, 123456789012345678.0]
    t['f'] = f
    t['f32'] = (rng.normal(0, 1, n) * 1e3).astype(np.float32)
    t['f32'][:3] = [np.nan, 1e-8, 3.4e38]
    t['i'] = rng.integers(-2 ** 62, 2 ** 62, n)
    t['u8'] = rng.integers(0, 255, n).astype(np.uint8)
    t['b'] = rng.random(n) < 0.5
    t['s'] = np.array(['', 'a b', 'x"y', ' lead', 'trail ', 'é ü', 'tab\tin',
                       "q'"] * (n // 8 + 1))[:n]
    t['m'] = MaskedColumn(rng.normal(0, 1, n), mask=rng.random(n) < 0.3)
    t['ms'] = MaskedColumn(np.array(['ok', '', 'a b'] * (n // 3 + 1))[:n],
                           mask=rng.random(n) < 0.3)
    t['mi'] = MaskedColumn(rng.integers(0, 9, n), mask=rng.random(n) < 0.3)
    t['q'] = rng.normal(0, 1, n) * u.adu
    t['v'] = rng.normal(0, 1, (n, 2))
    t['time'] = Time(60000 + rng.random(n), format='mjd')
    t['c'] = SkyCoord(rng.uniform(0, 360, n) * u.deg,
                      rng.uniform(-90, 90, n) * u.deg)
    t.meta['run'] = {'frames': 3, 'note': 'a b'}
    return t


@pytest.mark.parametrize('rows', [slice(None), slice(0, 0), slice(0, 1)])
@pytest.mark.parametrize('cls', [QTable, Table])
def test_write_ecsv_gives_astropys_text(tmp_path, rows, cls):
    table = cls(_table()[rows])
    ref, fast = tmp_path / 'ref.ecsv', tmp_path / 'fast.ecsv'
    table.write(ref, format='ascii.ecsv')
    write_ecsv(table, fast)
    assert fast.read_bytes() == ref.read_bytes()


def test_write_ecsv_values_with_line_breaks(tmp_path):
    table = Table({'s': ['a\nb', 'c', 'd\r\ne'], 'x': [1.0, 2.0, 3.0]})
    ref, fast = tmp_path / 'ref.ecsv', tmp_path / 'fast.ecsv'
    table.write(ref, format='ascii.ecsv')
    write_ecsv(table, fast)
    assert fast.read_bytes() == ref.read_bytes()
    assert Table.read(fast)['s'].tolist()[:2] == ['a\nb', 'c']


def test_write_table_atomic_ecsv_reads_back(tmp_path):
    table = _table()
    path = tmp_path / 'out.ecsv'
    write_table_atomic(table, path)
    back = QTable.read(path)
    for name in ('f', 'f32', 'i', 'b', 'q'):
        np.testing.assert_array_equal(np.asarray(back[name]),
                                      np.asarray(table[name]))
    assert back['m'].mask.tolist() == table['m'].mask.tolist()
    assert back.meta['run'] == {'frames': 3, 'note': 'a b'}


# -- rows kept as text between writes ----------------------------------------

def _plain_table():
    """``_table`` without its 2-D column (a table the cache serves)."""
    table = _table()
    del table['v']
    return table


def _astropy_text(table, path):
    table.write(path, format='ascii.ecsv', overwrite=True)
    return path.read_bytes()


def test_line_cache_gives_astropys_text_block_by_block(tmp_path):
    table, cache = _plain_table(), LineCache(8)
    fast = tmp_path / 'fast.ecsv'
    write_ecsv(table, fast, cache=cache)
    assert fast.read_bytes() == _astropy_text(table, tmp_path / 'ref.ecsv')
    assert len(cache._text) == 240 // 8
    # the blocks in another order, one value changed (its block made anew)
    order = np.concatenate([np.arange(k, k + 8) for k in
                            range(232, -1, -8)])
    moved = table[order]
    moved['f'][3] = 42.0
    moved['m'].mask[20] = not moved['m'].mask[20]
    write_ecsv(moved, fast, overwrite=True, cache=cache)
    assert fast.read_bytes() == _astropy_text(moved, tmp_path / 'ref.ecsv')
    assert len(cache._text) == 240 // 8 + 2


def test_line_cache_add_ahead_then_write(tmp_path):
    table, cache = _plain_table(), LineCache(8)
    # blocks made into text ahead, one table per block, names narrower
    for k in range(0, 240, 8):
        part = table[k:k + 8]
        part['s'] = np.array(part['s'].tolist())
        cache.add(part)
    made = dict(cache._text)
    fast = tmp_path / 'fast.ecsv'
    write_ecsv(table, fast, cache=cache)
    assert fast.read_bytes() == _astropy_text(table, tmp_path / 'ref.ecsv')
    assert cache._text == made  # every block taken from the cache


@pytest.mark.parametrize('rows', [7, 1000])
def test_line_cache_not_used_where_it_cannot_serve(tmp_path, rows):
    table, cache = _table(), LineCache(rows)  # a 2-D column
    fast = tmp_path / 'fast.ecsv'
    write_ecsv(table, fast, cache=cache)
    assert fast.read_bytes() == _astropy_text(table, tmp_path / 'ref.ecsv')
    plain = _plain_table()  # 240 rows: not a multiple of either
    write_ecsv(plain, fast, overwrite=True, cache=cache)
    assert fast.read_bytes() == _astropy_text(plain, tmp_path / 'ref.ecsv')
    assert cache._text == {}


def test_line_cache_arguments(tmp_path):
    with pytest.raises(ValueError, match='rows'):
        LineCache(0)
    with pytest.raises(ValueError, match='text_cache'):
        write_table_atomic(QTable({'a': [1]}), tmp_path / 'a.fits',
                           text_cache=LineCache(1))
