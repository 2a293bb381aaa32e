# Licensed under a 3-clause BSD style license - see LICENSE
"""
A digest of arrays' contents, the key of the caches that remember a result
per frame (the correlated-noise check, the optimal extraction's PSF check):
a frame changed in place gets a new key.
"""

import hashlib

import numpy as np

__all__ = []  # internal module


def array_digest(*arrays):
    """
    A 16-byte digest of the arrays' types, shapes and contents, in order
    (None counted as no array).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext.utils.digest import array_digest
    >>> a = np.arange(4.0)
    >>> array_digest(a, None) == array_digest(a.copy(), None)
    True
    >>> array_digest(a) == array_digest(a.astype(np.float32))
    False
    """
    digest = hashlib.blake2b(digest_size=16)
    for arr in arrays:
        if arr is None:
            digest.update(b'none')
            continue
        arr = np.ascontiguousarray(arr)
        digest.update(f'{arr.dtype.str}{arr.shape}'.encode())
        digest.update(arr.view(np.uint8).ravel())
    return digest.digest()
