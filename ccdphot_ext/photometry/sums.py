# Licensed under a 3-clause BSD style license - see LICENSE
"""
What the photometry engines return: the sums of many aperture positions,
one element per position (internal; `~ccdphot_ext.measure` and
`~ccdphot_ext.photometer` form the budget from it with the one formula,
`~ccdphot_ext.budget_terms`).

Every engine (the box engine, the ellipse engine and the per-aperture
general engine) fills an `ApertureSums`; `photometer` gathers those of its
groups of apertures into one with `ApertureSums.put`.
"""

from dataclasses import dataclass, fields

import numpy as np

__all__ = []  # internal module


@dataclass
class ApertureSums:
    """
    The sums of many aperture positions, one element per position.

    Attributes
    ----------
    flux : ndarray
        ``sum(w * (data - sky))`` over the pixels used; NaN where nothing
        could be summed (off the frame, no usable pixel).
    n_pix : ndarray
        ``sum(w)``: the pixels used (0 where nothing was summed).
    noise_pix : ndarray
        ``sum(w**2)`` (equal to ``n_pix`` when every weight is 0 or 1).
    flux_sq : ndarray
        ``sum(w**2 * (data - sky))``, whose photon noise is the source term
        of a weighted sum (equal to ``flux`` when every weight is 0 or 1).
    flags : ndarray of int32
        Bit flags (`ccdphot_ext.flags`).
    sky, sky_std, sky_error_on_mean : ndarray
        The sky used: its level, per-pixel scatter and the error of the
        level (a 2-D map's weighted summary over the pixels used).
    sigma2, sigma2_sq : ndarray or None
        ``sum(w * sigma**2)`` and ``sum(w**2 * sigma**2)`` of an uncertainty
        map; None without one.
    selection : ndarray or None
        The ``selection`` variance term of a smoothed threshold mask; None
        without one.
    """

    flux: np.ndarray
    n_pix: np.ndarray
    noise_pix: np.ndarray
    flux_sq: np.ndarray
    flags: np.ndarray
    sky: np.ndarray
    sky_std: np.ndarray
    sky_error_on_mean: np.ndarray
    sigma2: np.ndarray | None = None
    sigma2_sq: np.ndarray | None = None
    selection: np.ndarray | None = None

    @classmethod
    def empty(cls, n, *, uncertainty=False, selection=False):
        """
        ``n`` positions with nothing summed yet: NaN fluxes and sky values,
        zero counts and flags; ``sigma2`` and ``sigma2_sq`` (zeros) with an
        ``uncertainty`` map, ``selection`` (zeros) for a smoothed
        threshold mask.
        """
        return cls(flux=np.full(n, np.nan), n_pix=np.zeros(n),
                   noise_pix=np.zeros(n), flux_sq=np.full(n, np.nan),
                   flags=np.zeros(n, dtype=np.int32),
                   sky=np.full(n, np.nan), sky_std=np.full(n, np.nan),
                   sky_error_on_mean=np.full(n, np.nan),
                   sigma2=np.zeros(n) if uncertainty else None,
                   sigma2_sq=np.zeros(n) if uncertainty else None,
                   selection=np.zeros(n) if selection else None)

    def __len__(self):
        return len(self.flux)

    @property
    def overflowed(self):
        """True where pixels were summed, against a finite sky, and the sum
        is not finite: the finite pixels add up beyond the largest float."""
        return ((self.n_pix > 0) & np.isfinite(self.sky)
                & ~np.isfinite(self.flux))

    @property
    def skyless(self):
        """True where pixels were summed but the sky has no level there (an
        annulus without a usable pixel, a map that is NaN under the
        aperture): the flux is NaN for want of a sky, not an overflow."""
        return (self.n_pix > 0) & ~np.isfinite(self.sky)

    def put(self, rows, part):
        """
        Copy the sums of ``part`` (an `ApertureSums`) into ``rows`` (a
        slice) of these: each array present in both.
        """
        for field in fields(self):
            mine = getattr(self, field.name)
            theirs = getattr(part, field.name)
            if mine is not None and theirs is not None:
                mine[rows] = theirs

    def row(self, index):
        """
        The sums of position ``index`` as numbers: an `ApertureSums` of
        floats (an int for ``flags``; None for an absent array).
        """
        values = {}
        for field in fields(self):
            array = getattr(self, field.name)
            values[field.name] = (None if array is None
                                  else array[index].item())
        return ApertureSums(**values)
