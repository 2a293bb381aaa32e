"""Dask clients are made so that no stale client deadlocks them: the
collector held off while one starts, a failed one collected at once."""

import gc
import weakref

import pytest

from ccdphot_ext.utils import daskclient

pytest.importorskip('distributed')


class _Recorder:
    """Stands in for distributed.Client: records whether the collector
    was on while it was made; refuses the address 'refused', leaving
    itself in a reference cycle (as a real client's failed start does)."""

    seen = []
    closed = []

    def __init__(self, address, timeout=None):
        self.seen.append(gc.isenabled())
        self.address = address
        if address == 'refused':
            self.cycle = self
            weakref.finalize(self, self.closed.append, address)
            raise OSError('cannot connect')

    def close(self):
        self.address = None


@pytest.fixture
def recorder(monkeypatch):
    import distributed

    _Recorder.seen, _Recorder.closed = [], []
    monkeypatch.setattr(distributed, 'Client', _Recorder)
    return _Recorder


def test_no_collection_while_a_client_starts(recorder):
    client = daskclient.new_client('tcp://127.0.0.1:1', timeout=1)
    assert client.address == 'tcp://127.0.0.1:1'
    assert recorder.seen == [False]


def test_a_failed_client_is_collected_before_the_error(recorder):
    with pytest.raises(OSError, match='cannot connect') as info:
        daskclient.new_client('refused')
    assert recorder.seen == [False]
    # gone already: no later collection can meet it inside another start
    assert recorder.closed == ['refused']
    assert info.value.__traceback__ is not None


def test_the_collector_comes_back_as_it_was(recorder):
    """With no other client starting, the collector's state is restored:
    on stays on, off stays off."""
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            daskclient.new_client('tcp://127.0.0.1:1')
            if daskclient._STARTING['count'] == 0:
                assert gc.isenabled() is enabled
        finally:
            gc.enable()


def test_every_client_of_a_batch_is_made_there(recorder):
    """The batch's own client (a scheduler address) comes from
    new_client: the collector is off while it is made."""
    from ccdphot_ext.batch.execution import BatchExecution, open_client

    client, cleanup = open_client(BatchExecution(scheduler='tcp://h:1'))
    assert isinstance(client, _Recorder)
    assert recorder.seen == [False]
    assert cleanup == [client.close]
