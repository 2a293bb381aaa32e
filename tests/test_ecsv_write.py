"""ECSV tables written faster: the same text as astropy's writer."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, QTable, Table
from astropy.time import Time

from ccdphot_ext.utils.ecsv import write_ecsv
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
