# Licensed under a 3-clause BSD style license - see LICENSE
"""
Say each distinct warning once, from the caller's line: for a function
that measures one aperture many times (a curve of growth, a report), whose
every step would repeat the same warning from inside the package.
"""

import os
import sys
import warnings
from contextlib import contextmanager

__all__ = []  # internal helper


@contextmanager
def warn_once(stacklevel=2):
    """
    Collect the warnings raised in the block and, when it completes,
    re-issue each distinct one (message and category) once.

    Parameters
    ----------
    stacklevel : int, optional
        As in `warnings.warn`, counted from the function holding the
        ``with`` block: 2 points at its caller.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        yield
    for message, category in dict.fromkeys((str(w.message), w.category)
                                           for w in caught):
        # this generator and contextlib's __exit__ stand between
        warnings.warn(message, category, stacklevel=stacklevel + 2)


#: the package's folder: frames of files under it are not the user's
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_stacklevel():
    """
    The ``stacklevel`` of `warnings.warn`, called from the function that
    warns, that names the first caller outside this package: the user's
    line, however deep inside the package the warning is raised and by
    whichever public function (``photometer``, ``measure``,
    ``optimal_extraction`` reach a shared check at different depths).

    Returns
    -------
    stacklevel : int
        1 is the function that calls this one.
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(
            _PACKAGE + os.sep):
        frame = frame.f_back
        level += 1
    return level
