"""
A file or folder option given an empty name is refused, naming the
option (``-o ''`` printed the table and wrote nothing with exit code 0,
``--positions ''`` measured no star, ``--regions ''`` and ``--plot ''``
wrote nothing, ``--differential ''`` wrote the default file); a frame the
user may not read is named with the reason.
"""

import os

import numpy as np
import pytest
from astropy.nddata import CCDData
from clirun import ccdphot


@pytest.fixture
def frame(tmp_path):
    img = np.random.default_rng(3).normal(100.0, 5.0, (40, 50))
    path = tmp_path / 'f.fits'
    CCDData(img, unit='adu', meta={'GAIN': 2.0}).write(path)
    (tmp_path / 'pos.csv').write_text('x,y\n20,20\n')
    return path


@pytest.mark.parametrize('option', ['-o', '--regions', '--plot',
                                    '--positions', '--uncertainty'])
def test_an_empty_path_is_refused_naming_the_option(frame, tmp_path, option):
    code, stdout, err = ccdphot('measure', frame, '--box', '10:20,10:20',
                                option, '', cwd=tmp_path)
    assert code == 2
    assert stdout == ''
    line, = err.strip().splitlines()
    assert line.startswith('ccdphot measure: error: argument ')
    assert option in line and line.endswith('an empty path (give a file '
                                            'name)')
    assert sorted(os.listdir(tmp_path)) == ['f.fits', 'pos.csv']


@pytest.mark.parametrize('argv', [
    ['find', 'FRAME', '-o', ''],
    ['demo', '--outdir', ''],
    ['batch', 'FRAME', '--positions', 'POS', '--size', '5', '-o', ''],
    ['batch', 'FRAME', '--positions', '', '--size', '5', '-o', 'lc.ecsv'],
    ['batch', 'FRAME', '--positions', 'POS', '--size', '5', '-o',
     'lc.ecsv', '--differential', '', '--targets', '1',
     '--comparisons', '1'],
    ['batch', '--frame-list', '', '--positions', 'POS', '--size', '5',
     '-o', 'lc.ecsv']], ids=['find', 'demo', 'batch_o', 'batch_positions',
                             'batch_differential', 'batch_frame_list'])
def test_other_commands_refuse_empty_paths(frame, tmp_path, argv):
    argv = [str(frame) if a == 'FRAME' else str(tmp_path / 'pos.csv')
            if a == 'POS' else a for a in argv]
    code, _, err = ccdphot(*argv, cwd=tmp_path)
    assert code == 2
    assert err.strip().endswith('an empty path (give a file name)')
    assert sorted(os.listdir(tmp_path)) == ['f.fits', 'pos.csv']


def test_an_unreadable_frame_is_named(frame, monkeypatch):
    """As a user without read permission (here: ``os.access`` says so),
    the message named no option: ``error: [Errno 13] Permission denied:
    '...'``."""
    real = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode, **kw: False
                        if os.fspath(path) == str(frame)
                        else real(path, mode, **kw))
    code, _, err = ccdphot('measure', frame, '--box', '10:20,10:20')
    assert code == 2
    assert err.strip() == (f'ccdphot measure: error: IMAGE {frame}: not '
                           'readable (permission denied)')
