# Licensed under a 3-clause BSD style license - see LICENSE
"""
The flag of a detection that is not like a star, from the ``star_like``
and ``saturated`` columns of a `~ccdphot_ext.find_stars` table (or of
``ccdphot find`` output read back). A light module: it loads no star
finder (and no photutils), so that ``ccdphot batch`` can flag the rows
of a positions table where the frames are not measured.
"""

import numpy as np

from ..flags import FLAG_NOT_STAR_LIKE

__all__ = ['star_like_flags']


def star_like_flags(stars):
    """
    `FLAG_NOT_STAR_LIKE` for each detection that is neither star-like nor
    saturated.

    A `find_stars` detection sharper than a star (a cosmic-ray hit, a hot
    pixel), elongated (a blend, a trail, a bad column merged with a star),
    or wider or narrower than the stars is kept (see ``not_star_like`` for
    the reasons); OR the result into the ``flags`` of the photometry at its
    positions so that the table keeps the doubt. Saturated stars are stars
    (their photometry is flagged 4): 0.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        A `find_stars` table, or any table with boolean ``star_like`` and
        ``saturated`` columns (``ccdphot find`` output read back).

    Returns
    -------
    flags : ndarray of int32
        `FLAG_NOT_STAR_LIKE` (512) or 0, one per row.

    Raises
    ------
    TypeError
        If ``stars`` has no ``star_like`` and ``saturated`` columns.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate, find_stars, star_like_flags
    >>> from ccdphot_ext.datasets.sample import render_stars
    >>> rng = np.random.default_rng(2)
    >>> img = rng.normal(100.0, 5.0, (80, 90))
    >>> img += render_stars(img.shape, [20.3, 61.8], [30.6, 50.2],
    ...                     [20000.0, 8000.0])
    >>> img[60, 10] += 3000.0  # a cosmic-ray hit
    >>> star_like_flags(find_stars(img, SkyEstimate.from_image(img))).tolist()
    [0, 0, 512]
    """
    try:
        like, saturated = (np.asarray(stars[name], dtype=bool)
                           for name in ('star_like', 'saturated'))
    except (KeyError, TypeError, IndexError, ValueError):
        raise TypeError('stars must be a table with star_like and saturated '
                        'columns (see find_stars)') from None
    return np.where(~like & ~saturated, FLAG_NOT_STAR_LIKE,
                    0).astype(np.int32)
