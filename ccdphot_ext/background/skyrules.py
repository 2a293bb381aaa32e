# Licensed under a 3-clause BSD style license - see LICENSE
"""
The shape of a per-row sky rule: which photometry rows the sky subtracted
serves wrongly, the flag bit they get and the warning said of them.

A rule is one `SkyRowRule` subclass: its `~SkyRowRule.doubt` is its own
test, its `~SkyRowRule.message` the warning's text; counting the rows,
warning once for all of them and collecting the notes are the base
class's, in one place. The rules live beside what they judge (the
background's bias in ``photometry.residual``, the noise's variation in
`~ccdphot_ext.background.noisevariation`, the annulus' curvature in
`~ccdphot_ext.background.annuluscurvature`);
`~ccdphot_ext.photometry.skychecks.sky_row_checks` runs them all
(``SKY_ROW_RULES``) on the rows of `~ccdphot_ext.photometer`,
`~ccdphot_ext.measure` and `~ccdphot_ext.optimal_extraction`.
"""

import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

__all__ = []  # internal: the hook of the per-row sky rules


class SkyRowRule:
    """
    One per-row sky rule: a subclass sets `flag` and implements `doubt`
    and `message` (and `notes`, if it has any to say).

    Attributes
    ----------
    flag : int
        The bit set on the rows the rule doubts (a ``FLAG_*`` of
        `ccdphot_ext.flags`).
    """

    flag = 0

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        """
        The rows this rule finds the sky serves wrongly.

        Parameters
        ----------
        sky : `~ccdphot_ext.SkyEstimate`
            The sky subtracted.
        frame : Frame
            The frame measured.
        x, y : float or array_like
            The apertures' centres (pixels).
        n_pix : float or array_like
            Their (weighted) pixel counts: what a sky offset of one per
            pixel moves the flux by.
        flux_err : float or array_like
            Their flux errors (in the data unit).
        scaled : float or array_like, optional
            Per aperture, the factor an empirical noise model (``noise=``,
            `~ccdphot_ext.ApertureNoise.local_ratio`) scaled the sky term's
            noise by; rows above 1 follow the local noise already. None
            (default): none scaled.

        Returns
        -------
        rows : bool or `~numpy.ndarray` of bool
            Per aperture (the broadcast shape of the inputs the rule
            reads; a bool for scalars): True where the row is doubtful.
        context : object or None
            What `message` and `notes` need to describe the rows; None
            when the rule does not apply to this sky and frame (then
            ``rows`` is all False and nothing is said).
        """
        raise NotImplementedError

    def message(self, rows, n_bad, context):
        """
        The warning's text.

        Parameters
        ----------
        rows : bool or `~numpy.ndarray` of bool
            As `doubt` returned them (at least one True).
        n_bad : int
            How many are True.
        context : object
            As `doubt` returned it.

        Returns
        -------
        message : str
        """
        raise NotImplementedError

    def notes(self, rows, context):
        """
        Notes said after the warning but not warned (none by default).

        Parameters
        ----------
        rows : bool or `~numpy.ndarray` of bool
            As `doubt` returned them.
        context : object
            As `doubt` returned it (not None).

        Returns
        -------
        notes : list of str
        """
        return []

    def report(self, rows, context, *, stacklevel=2):
        """
        Warn once for the doubtful rows and say the notes.

        Parameters
        ----------
        rows : bool or `~numpy.ndarray` of bool
            As `doubt` returned them.
        context : object or None
            As `doubt` returned it: None says nothing.
        stacklevel : int, optional
            As in `warnings.warn`, counted from the caller of this method
            (1 names the caller).

        Returns
        -------
        rows : bool or `~numpy.ndarray` of bool
            ``rows``, unchanged.
        messages : list of str
            The warning (an `~astropy.utils.exceptions.AstropyUserWarning`,
            when a row is doubtful), then the notes.
        """
        if context is None:
            return rows, []
        messages = []
        n_bad = int(np.count_nonzero(rows))
        if n_bad:
            message = self.message(rows, n_bad, context)
            warnings.warn(message, AstropyUserWarning,
                          stacklevel=stacklevel + 1)
            messages.append(message)
        return rows, [*messages, *self.notes(rows, context)]

    def check(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None,
              stacklevel=2):
        """
        `doubt`, then `report`: the rows and what is said of them.

        Parameters
        ----------
        sky, frame, x, y, n_pix, flux_err, scaled
            As in `doubt`.
        stacklevel : int, optional
            As in `report`.

        Returns
        -------
        rows, messages
            As `report` returns them.
        """
        rows, context = self.doubt(sky, frame, x, y, n_pix, flux_err,
                                   scaled=scaled)
        return self.report(rows, context, stacklevel=stacklevel + 1)


def no_rows(*inputs):
    """
    No row doubted: all False, one per row.

    Parameters
    ----------
    *inputs : float or array_like
        The per-row inputs a rule reads (``x``, ``y``, ``n_pix``, ...).

    Returns
    -------
    rows : bool or `~numpy.ndarray` of bool
        False, in the broadcast shape of ``inputs`` (a bool for scalars).
    """
    return np.zeros(np.broadcast_shapes(*(np.shape(a) for a in inputs)),
                    dtype=bool)[()]


def check_rules(rules, sky, frame, x, y, n_pix, flux_err, *, scaled=None,
                stacklevel=2):
    """
    Run sky rules in order, each warning once for the rows it doubts.

    The rules share one whole-frame analysis of each frame
    (`~ccdphot_ext.background.globalsky.one_analysis`).

    Parameters
    ----------
    rules : sequence of `SkyRowRule`
        The rules.
    sky, frame, x, y, n_pix, flux_err, scaled
        As in `SkyRowRule.doubt`.
    stacklevel : int, optional
        As in `warnings.warn`, counted from the caller of this function
        (1 names the caller).

    Returns
    -------
    rows : list
        Each rule's doubtful rows (`SkyRowRule.doubt`), in order.
    messages : list of str
        Every rule's warning and notes, in order.
    """
    from .globalsky import one_analysis

    rows, messages = [], []
    with one_analysis():  # the rules share the frame's source mask
        for rule in rules:
            doubtful, said = rule.check(sky, frame, x, y, n_pix, flux_err,
                                        scaled=scaled,
                                        stacklevel=stacklevel + 1)
            rows.append(doubtful)
            messages += said
    return rows, messages


def first_message(result):
    """
    A rule's rows and its one warning, as the single-rule checks return
    them.

    Parameters
    ----------
    result : tuple
        ``(rows, messages)``, as `SkyRowRule.check` returns them.

    Returns
    -------
    rows : bool or `~numpy.ndarray` of bool
        As given.
    message : str or None
        The first message, or None when there is none.
    """
    rows, messages = result
    return rows, (messages[0] if messages else None)
