# Licensed under a 3-clause BSD style license - see LICENSE
"""
The per-row sky checks: is a row's flux biased by the sky subtracted
(`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`), is its error bar off
because the frame's pixel noise is not the sky's one ``std`` there, and
does the background curve about the star so that its annulus sky misses
the aperture's (both `~ccdphot_ext.flags.FLAG_SKY_ANNULUS`)?

One home for them: `~ccdphot_ext.photometer`, `~ccdphot_ext.measure` and
`~ccdphot_ext.optimal_extraction` flag and note their rows with
`sky_row_checks`, so the three agree on every row.
"""

import numpy as np

from ..background.annuluscurvature import check_annulus_curvature
from ..background.noisevariation import check_sky_noise
from ..flags import FLAG_RESIDUAL_BACKGROUND, FLAG_SKY_ANNULUS
from .residual import check_sky_bias

__all__ = []  # internal: the sky rules of the photometry engines


def sky_row_checks(sky, frame, x, y, n_pix, flux_err, *, scaled=None,
                   stacklevel=3):
    """
    The flag bits the sky earns each photometry row, and the warnings
    said about them.

    Three rules, each warning once for all rows it names
    (`~astropy.utils.exceptions.AstropyUserWarning`):

    - the sky biases the flux (`~ccdphot_ext.photometry.residual.check_sky_bias`:
      a global level on a frame whose background varies, a Background2D
      map lifted by the sources' light, a whole-frame level the light of
      stars too faint to mask may lift) → `~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`;
    - a whole-frame sky's one ``std`` is off the frame's local pixel noise
      by more than its tolerance
      (`~ccdphot_ext.background.noisevariation.check_sky_noise`), unless
      the row's sky term was scaled for the local noise already →
      `~ccdphot_ext.flags.FLAG_SKY_ANNULUS`;
    - an annulus sky's background curves about the star enough to bias the
      flux (`~ccdphot_ext.background.annuluscurvature.check_annulus_curvature`:
      a star on a galaxy or a nebula) → `~ccdphot_ext.flags.FLAG_SKY_ANNULUS`.

    Parameters
    ----------
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted.
    frame : Frame
        The frame measured.
    x, y : float or array_like
        The apertures' centres (pixels).
    n_pix : float or array_like
        Their (weighted) pixel counts: what a sky offset of one per pixel
        moves the flux by.
    flux_err : float or array_like
        Their flux errors (in the data unit).
    scaled : float or array_like, optional
        Per aperture, the factor an empirical noise model (``noise=``,
        `~ccdphot_ext.ApertureNoise.local_ratio`) scaled the sky term's
        noise by; rows above 1 follow the local noise already. None
        (default): none scaled.
    stacklevel : int, optional
        As in `warnings.warn`, counted from the caller of this function
        (the default 3 names the caller's caller: the user of a public
        function that calls this one).

    Returns
    -------
    flags : int or `~numpy.ndarray` of int64
        Per aperture (the broadcast shape of ``x``, ``y``, ``n_pix`` and
        ``flux_err``; an int for scalars): the bits set, 0 where neither
        rule applies.
    messages : list of str
        The warnings said, bias first, and a note of the rows whose
        background curvature could not be checked (empty when no row is
        flagged and every row was checked).

    Examples
    --------
    A sky without a frame-wide noise or background map flags nothing:

    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> from ccdphot_ext.utils.inputs import as_frame
    >>> from ccdphot_ext.photometry.skychecks import sky_row_checks
    >>> sky = SkyEstimate(100.0, 5.0, 1000)
    >>> sky_row_checks(sky, as_frame(np.zeros((20, 20))), [5.0, 9.0],
    ...                [5.0, 9.0], [9.0, 9.0], [15.0, 15.0])
    (array([0, 0]), [])
    """
    biased, messages = check_sky_bias(sky, frame, x, y, n_pix, flux_err,
                                      stacklevel=stacklevel + 1)
    uneven, message = check_sky_noise(sky, frame, x, y, scaled=scaled,
                                      stacklevel=stacklevel)
    if message is not None:
        messages = [*messages, message]
    curved, notes = check_annulus_curvature(sky, frame, x, y, n_pix,
                                            flux_err, stacklevel=stacklevel)
    messages = [*messages, *notes]
    flags = (np.where(biased, FLAG_RESIDUAL_BACKGROUND, 0)
             | np.where(uneven | curved, FLAG_SKY_ANNULUS, 0)
             ).astype(np.int64)
    return (int(flags) if flags.ndim == 0 else flags), messages
