# Licensed under a 3-clause BSD style license - see LICENSE
"""
How many items of work go into each task of a cluster: guided scheduling
(plain Python, no numpy: the ``ccdphot`` command sends a batch's first tasks
before it imports numpy, astropy and photutils).
"""

import math

__all__ = []  # internal module

#: items per task at most (small items are grouped to cut the per-task
#: overhead; a few tasks per worker keep the load balanced)
MAX_CHUNK = 8


def guided_chunks(n_items, n_workers, *, max_size=MAX_CHUNK):
    """
    Index groups of ``n_items`` for ``n_workers``, large first and single
    items at the end: few tasks for many small items, and no worker left
    idle while another finishes a big last group.

    Parameters
    ----------
    n_items : int
        The number of items (frames).
    n_workers : int
        The number of workers (at least 1).
    max_size : int, optional
        The most items in one group (default `MAX_CHUNK`).

    Returns
    -------
    groups : list of list of int
        The indices ``0 .. n_items - 1`` in order, in groups.

    Examples
    --------
    >>> from ccdphot_ext.utils.tasks import guided_chunks
    >>> [len(g) for g in guided_chunks(20, 2)]
    [3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]
    """
    groups, start = [], 0
    while start < n_items:
        size = max(1, min(max_size,
                          math.ceil((n_items - start) / (4 * n_workers))))
        groups.append(list(range(start, min(start + size, n_items))))
        start += size
    return groups
