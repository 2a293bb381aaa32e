"""``ccdphot batch``'s second output, ``--differential``: replaced with
the note ``-o`` gives, refused where it would destroy an input or another
run's light curve; a full disk named once."""

import os
import resource
import subprocess

import pytest
from astropy.table import QTable
from batchframes import write_frames
from clirun import EXE, ccdphot, child_env


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('cli_batch_outputs')
    frames, _, positions = write_frames(d, 3)
    return {'dir': d, 'frames': frames, 'positions': positions}


def _batch(files, out, *options):
    return ccdphot('batch', *files['frames'], '--positions',
                   files['positions'], '--size', '15', '-o', out, '-q',
                   *options)


def test_differential_replacing_a_file_says_so_as_o_does(files, tmp_path):
    out, diff = tmp_path / 'lc.ecsv', tmp_path / 'd.ecsv'
    code, stdout, err = _batch(files, out, '--differential', diff,
                               '--targets', '7', '--comparisons', '8,9')
    assert code == 0, err
    assert stdout.splitlines()[-1].endswith(f'-> {diff}')
    first = QTable.read(diff)
    code, stdout, err = _batch(files, out, '--differential', diff,
                               '--targets', '7', '--comparisons', '8,9')
    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[0].endswith('; replaced the existing file)')
    assert lines[-1] == (f'ccdphot batch: differential photometry of [7] '
                         f'against [8, 9] -> {diff}; replaced the existing '
                         'file')
    assert QTable.read(diff)['id'].tolist() == first['id'].tolist()


def test_differential_never_replaces_a_light_curve_or_an_input(files,
                                                              tmp_path):
    """A finished batch's light curve named as ``--differential`` (the
    auditor's case: replaced by a 3-row differential table, exit 0) is
    refused before any work, and left as it was; so are an input and the
    run's own ``-o``, as ``-o`` refuses them."""
    lc = tmp_path / 'lc.ecsv'
    assert _batch(files, lc)[0] == 0
    before = lc.read_bytes()
    other = tmp_path / 'other.ecsv'
    code, stdout, err = _batch(files, other, '--differential', lc,
                               '--targets', '7', '--comparisons', '8,9')
    assert code == 2
    assert err.strip() == (
        f'ccdphot batch: error: --differential {lc}: is the light-curve '
        'table of a ccdphot batch run (its measurements, which --resume '
        'reads); give another name, or move it away')
    assert lc.read_bytes() == before and not other.exists()
    for target, what in ((files['positions'], '--positions'),
                         (other, '-o')):
        code, _, err = _batch(files, other, '--differential', target,
                              '--targets', '7', '--comparisons', '8,9')
        assert code == 2
        assert f'is the same file as {what}' in err
    # a table of another kind (a differential table) is no light curve
    diff = tmp_path / 'd.ecsv'
    assert _batch(files, other, '--differential', diff, '--targets', '7',
                  '--comparisons', '8,9')[0] == 0
    code, stdout, err = _batch(files, other, '--differential', diff,
                               '--targets', '7', '--comparisons', '8,9')
    assert code == 0, err
    assert stdout.splitlines()[-1].endswith('; replaced the existing file')



@pytest.mark.parametrize('command', ['measure', 'find'])
def test_measure_and_find_never_replace_a_light_curve(files, tmp_path,
                                                      command):
    """``ccdphot measure -o`` and ``ccdphot find -o`` naming a finished
    batch's light curve (the auditor's case: 120 rows replaced by 6, exit
    0) are refused before any work, as ``--differential`` is; a table of
    another kind is still replaced with a note."""
    lc = tmp_path / 'lc.ecsv'
    assert _batch(files, lc)[0] == 0
    before = lc.read_bytes()
    args = ([command, files['frames'][0], '--positions', files['positions'],
             '--size', '15'] if command == 'measure'
            else [command, files['frames'][0]])
    code, stdout, err = ccdphot(*args, '-o', lc)
    assert code == 2
    assert err.strip() == (
        f'ccdphot {command}: error: -o {lc}: is the light-curve table of a '
        'ccdphot batch run (its measurements, which --resume reads); give '
        'another name, or move it away')
    assert lc.read_bytes() == before
    other = tmp_path / 'other.ecsv'
    assert ccdphot(*args, '-o', other)[0] == 0
    code, stdout, err = ccdphot(*args, '-o', other)
    assert code == 0, err
    assert stdout.splitlines()[-1].endswith('; replaced the existing file)')


def test_a_full_disk_is_named_with_one_errno(files, tmp_path):
    """A file-size limit (EFBIG, as a full disk): the message said
    ``[Errno 27] [Errno 27] output ...``."""
    out = tmp_path / 'big.ecsv'

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    run = subprocess.run(
        [EXE, 'batch', *map(str, files['frames']), '--positions',
         str(files['positions']), '--size', '15', '-o', str(out), '-q'],
        capture_output=True, text=True, env=child_env(), timeout=120,
        preexec_fn=small_files)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        f'ccdphot batch: failed: [Errno 27] output {out}: cannot write '
        '(File too large); nothing was written')
    assert not os.path.exists(out)
