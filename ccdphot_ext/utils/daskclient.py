# Licensed under a 3-clause BSD style license - see LICENSE
"""
Making a Dask `~distributed.Client` so that no stale client can deadlock it
(plain Python: the ``ccdphot`` command connects before it imports numpy,
astropy and photutils).

A client that failed to connect is left in a reference cycle with its
exception's traceback, for the garbage collector. When a collection
happens while another client starts its event loop, in the same thread,
the old client's ``__del__`` stops the loop runner that the new one is
starting, and waits for the lock the start holds: the thread waits on
itself for ever (``ccdphot batch --scheduler`` hung so in the test suite,
after a refused address). So every client is made here: with the
collector held off while it starts, and, when it fails, with the failed
client collected at once, before the error is raised.
"""

import gc
import threading
import traceback

__all__ = []  # internal module

_LOCK = threading.Lock()
#: clients starting now (the collector is held off while there are any),
#: and whether it was on before the first
_STARTING = {'count': 0, 'enabled': True}


def new_client(*args, **kwargs):
    """
    ``distributed.Client(*args, **kwargs)``, made with the garbage
    collector held off while it starts (see the module's docstring; the
    collector's state is restored when no client is starting). What
    `distributed.Client` raises is raised, its traceback's frames cleared
    and the failed client collected first.

    Parameters
    ----------
    *args, **kwargs
        What `distributed.Client` takes: a scheduler address or a
        cluster, ``timeout=``.

    Returns
    -------
    client : `distributed.Client`
    """
    from distributed import Client

    _hold()
    try:
        return Client(*args, **kwargs)
    except Exception as exc:
        traceback.clear_frames(exc.__traceback__)
        failure = exc
    finally:
        _release()
    gc.collect()  # the failed client, unreachable now: closed here
    raise failure


def quietly(call, *args):
    """
    Call a Dask clean-up that may fail once the scheduler is gone.

    Parameters
    ----------
    call : callable
        The clean-up (a client's ``close`` or ``cancel``, a future's
        ``release``).
    *args
        What ``call`` takes.
    """
    try:
        call(*args)
    except Exception:  # nothing left to clean
        pass


def _hold():
    with _LOCK:
        if _STARTING['count'] == 0:
            _STARTING['enabled'] = gc.isenabled()
        _STARTING['count'] += 1
        gc.disable()  # also if turned on meanwhile while another starts


def _release():
    with _LOCK:
        _STARTING['count'] -= 1
        if _STARTING['count'] == 0 and _STARTING['enabled']:
            gc.enable()
