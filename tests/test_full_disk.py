"""
An output the machine cannot write (a full disk): the command fails with
exit 1, not 2 (a bad input), and says what the output still holds.
"""

import errno

import pytest
from astropy.table import QTable
from batchframes import write_frames
from clirun import ccdphot

from ccdphot_ext.batch import frames as batch_frames


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp('full_disk')
    frames, _, positions = write_frames(d, 5)
    return {'frames': frames, 'positions': positions}


def _run(args):
    return ccdphot('batch', *args)


@pytest.mark.parametrize('checkpointed', [False, True])
def test_a_full_disk_is_a_failure_not_a_bad_input(files, tmp_path,
                                                  monkeypatch, checkpointed):
    # the final write meets a full disk: exit 1 ('failed'), not 2 (which
    # means a bad input), and the message says what the output still holds
    real = batch_frames.write_table_atomic
    calls = []

    def full_disk(table, path, **kwargs):
        calls.append(table.meta['last_run']['complete'])
        if checkpointed and len(calls) == 1:
            return real(table, path, **kwargs)
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(batch_frames, 'write_table_atomic', full_disk)
    if checkpointed:  # a checkpoint before the final write succeeds
        monkeypatch.setattr(batch_frames._Run, 'write_final',
                            _checkpoint_then(batch_frames._Run.write_final))
    out = tmp_path / 'lc.ecsv'
    code, stdout, err = _run([*files['frames'], '--positions',
                              files['positions'], '--size', '15', '-o',
                              str(out)])
    assert code == 1
    assert err.startswith('ccdphot batch: failed: ')
    assert 'No space left on device' in err and 'Traceback' not in err
    if checkpointed:
        assert 'keeps the frames of its last checkpoint' in err
        assert '--resume' in err
        assert len(QTable.read(out)) == 15
    else:
        assert 'nothing was written' in err
        assert not out.exists()


def _checkpoint_then(write_final):
    """``_Run.write_final`` that first writes a checkpoint, as the timer
    would have during a long run."""
    def wrapped(self, table):
        self.checkpoint()
        return write_final(self, table)
    return wrapped
