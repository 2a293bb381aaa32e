# Licensed under a 3-clause BSD style license - see LICENSE
"""
The per-row sky checks: is a row's flux biased by the sky subtracted
(`~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`), is its error bar off
because the frame's pixel noise is not the sky's one ``std`` there, and
does the background curve about the star so that its annulus sky misses
the aperture's (both `~ccdphot_ext.flags.FLAG_SKY_ANNULUS`)?

One home for them: `~ccdphot_ext.photometer`, `~ccdphot_ext.measure` and
`~ccdphot_ext.optimal_extraction` flag and note their rows with
`sky_row_checks`, so the three agree on every row. Each rule is a
`~ccdphot_ext.background.skyrules.SkyRowRule` (its own test, its flag bit,
its warning) kept beside what it judges; `SKY_ROW_RULES` lists them in
the order they warn. A new rule is one subclass, added there.
"""

import functools
import operator

import numpy as np

from ..background.annuluscurvature import ANNULUS_CURVATURE
from ..background.noisevariation import SKY_NOISE
from ..background.skyrules import check_rules
from .residual import SKY_BIAS_RULES

__all__ = []  # internal: the sky rules of the photometry engines

#: The per-row sky rules, in the order they warn: the sky's bias (flag 32:
#: a global level on a varying background, a lifted Background2D map, a
#: Background2D mesh too small for the aperture, the light of stars too
#: faint to mask), the noise's variation and an annulus
#: sky's curved background (flag 64).
SKY_ROW_RULES = (*SKY_BIAS_RULES, SKY_NOISE, ANNULUS_CURVATURE)


def sky_row_checks(sky, frame, x, y, n_pix, flux_err, *, scaled=None,
                   stacklevel=3):
    """
    The flag bits the sky earns each photometry row, and the warnings
    said about them.

    The rules of `SKY_ROW_RULES`, each warning once for all rows it names
    (`~astropy.utils.exceptions.AstropyUserWarning`):

    - the sky biases the flux (`~ccdphot_ext.photometry.residual.check_sky_bias`:
      a global level on a frame whose background varies, a Background2D
      map lifted by the sources' light or with meshes too small for the
      aperture, a whole-frame level the light of
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
    sky, frame, x, y, n_pix, flux_err, scaled
        As in `~ccdphot_ext.background.skyrules.SkyRowRule.doubt`: the sky
        subtracted, the frame measured, the apertures' centres, (weighted)
        pixel counts and flux errors, and the factor a noise model scaled
        each row's sky term by (``scaled``, optional; None: none).
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
    rows, messages = check_rules(SKY_ROW_RULES, sky, frame, x, y, n_pix,
                                 flux_err, scaled=scaled,
                                 stacklevel=stacklevel)
    flags = functools.reduce(operator.or_, (
        np.where(doubtful, rule.flag, 0)
        for rule, doubtful in zip(SKY_ROW_RULES, rows, strict=True))
    ).astype(np.int64)
    return (int(flags) if flags.ndim == 0 else flags), messages


def note_sky_remeasured(budget, sky):
    """
    Add to a budget's notes how the sky was measured again without the
    measured apertures' light, when it was.

    `~ccdphot_ext.measure` and `~ccdphot_ext.optimal_extraction` both say
    it in their budget (`~ccdphot_ext.photometer` in its table's notes).

    Parameters
    ----------
    budget : `~ccdphot_ext.ErrorBudget`
        The budget of the one measurement; its ``notes`` get the note.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted: a whole-frame level measured again without the
        apertures holds the note in ``meta['aperture_note']``; any other
        sky leaves the notes as they are.
    """
    note = sky.meta.get('aperture_note')
    if note is not None:
        budget.notes += (note,)
