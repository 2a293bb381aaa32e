# Licensed under a 3-clause BSD style license - see LICENSE
"""
Data-quality bits inside apertures: saturation, and flagged pixels summed.

A frame read from a data product keeps its DQ array (the ``flags`` of the
`~astropy.nddata.CCDData` `~ccdphot_ext.read_frame` returns). The bits
chosen by ``dq_bits`` mask their pixels when the frame is read; the others
are summed like any pixel. For each photometry row, the pixels its
aperture covers (weight above 0) are then looked at:

* a pixel holding one of the mission's saturation bits
  (`~ccdphot_ext.io.dq.DQConvention.saturation_bits`: JWST's SATURATED,
  HST's full-well and A-to-D saturation), masked or not, sets flag 4
  (saturated): a saturated star's flux is wrong whether its saturated
  pixels are summed or left out;
* a pixel with any DQ bit set that was summed (not masked, finite) is
  reported: one `~astropy.utils.exceptions.AstropyUserWarning` per call
  names the bits by the mission's flag names and how many rows hold them,
  so that no flagged pixel is summed without a word, whatever ``dq_bits``
  chose.

`~ccdphot_ext.photometer` and `~ccdphot_ext.measure` look at the pixels of
their apertures (`dq_rows`), `~ccdphot_ext.optimal_extraction` at those
its PSF stamp weights (`dq_stamp`); both through `DQPixels`, so the rules
are one.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..aperture.utils import aperture_weights, frame_box, split_apertures
from ..io.dq import describe_dq_bits, dq_convention

__all__ = []  # internal module: the rules are documented with the flags


@dataclass
class DQRows:
    """What the DQ says of each row's pixels."""

    saturated: np.ndarray       # bool: a saturation bit inside
    summed_bits: np.ndarray     # uint64: the bits of the flagged pixels
    n_summed: np.ndarray        # int: how many flagged pixels were summed
    convention: object          # the frame's DQConvention


class DQPixels:
    """
    The pixels of a frame's DQ array that matter to a photometry row: those
    holding a saturation bit of the mission (``saturated``, masked or not)
    and the flagged ones summed (``summed``: not masked, finite).

    Use `from_frame`; `rows` then fills a `DQRows` row from the pixels a
    row uses.
    """

    def __init__(self, dq, summed, saturated, convention):
        self.dq = dq
        self.summed = summed
        self.saturated = saturated
        self.convention = convention

    @classmethod
    def from_frame(cls, frame):
        """The frame's `DQPixels`, or None for a frame without a DQ array
        or whose DQ flags nothing that matters here."""
        dq = frame.dq
        if dq is None:
            return None
        convention = dq_convention(frame.meta)
        dq = dq.astype(np.uint64, copy=False)
        flagged = dq != 0
        if not flagged.any():
            return None
        summed = flagged & np.isfinite(frame.data)
        if frame.mask is not None:
            summed &= ~frame.mask
        saturated = ((dq & np.uint64(convention.saturation_bits)) != 0
                     if convention.saturation_bits
                     else np.zeros_like(flagged))
        if not (summed | saturated).any():
            return None
        return cls(dq, summed, saturated, convention)

    def empty_rows(self, n):
        """A `DQRows` of ``n`` rows holding nothing."""
        return DQRows(np.zeros(n, bool), np.zeros(n, np.uint64),
                      np.zeros(n, int), self.convention)

    def fill(self, rows, row, slices, inside):
        """Set row ``row`` of ``rows`` from the pixels ``inside`` (bool,
        the shape of the cutout ``slices``) the row uses."""
        rows.saturated[row] = bool(self.saturated[slices][inside].any())
        left_in = self.dq[slices][inside & self.summed[slices]]
        rows.n_summed[row] = left_in.size
        if left_in.size:
            rows.summed_bits[row] = np.bitwise_or.reduce(left_in)


def dq_rows(frame, apertures, *, sum_method='exact', subpixels=5):
    """
    The DQ bits inside each row's aperture (`DQRows`), or None for a frame
    without a DQ array or whose DQ flags nothing that matters here.

    Only the rows whose bounding box holds a flagged pixel (counted on a
    summed-area table) have their pixel weights worked out.
    """
    pixels = DQPixels.from_frame(frame)
    if pixels is None:
        return None
    pairs = split_apertures(apertures)
    rows = pixels.empty_rows(len(pairs))
    table = np.pad((pixels.summed | pixels.saturated).cumsum(0).cumsum(1),
                   ((1, 0), (1, 0)))
    for row, (ap, index) in enumerate(pairs):
        if not _box_holds(table, ap, index, frame.shape):
            continue
        slices, weights, _ = aperture_weights(
            ap, frame.shape, index=index, sum_method=sum_method,
            subpixels=subpixels)
        if slices is None:
            continue
        pixels.fill(rows, row, slices, weights > 0)
    return rows


def dq_stamp(frame, slices, weights):
    """
    The DQ bits under one weighted stamp (`DQRows` of one row: an optimal
    extraction's PSF on the frame's ``slices``, the pixels of positive
    ``weights``), or None as for `dq_rows`.
    """
    pixels = DQPixels.from_frame(frame)
    if pixels is None:
        return None
    rows = pixels.empty_rows(1)
    pixels.fill(rows, 0, slices, np.asarray(weights) > 0)
    return rows


def saturated_pixels(frame):
    """The frame's pixels holding a saturation bit of its mission's DQ
    (bool, the frame's shape), or None when none does."""
    pixels = DQPixels.from_frame(frame)
    if pixels is None or not pixels.saturated.any():
        return None
    return pixels.saturated


def _box_holds(table, aperture, index, shape):
    """Whether the bounding box of position ``index`` holds a pixel of the
    summed-area ``table``; True when the box cannot be had (let the
    weights decide)."""
    box = frame_box(aperture, index, shape)
    if box is None:
        return True
    y0, y1, x0, x1 = box
    return (table[y1, x1] - table[y0, x1] - table[y1, x0]
            + table[y0, x0]) > 0


def dq_note(rows, frame, ids):
    """
    The words for the flagged pixels summed (None when there are none):
    the bits by the mission's names, the number of rows of each and the
    first ``ids`` (the rows' ids; None: not named), what was masked and
    how to leave them out.
    """
    if rows is None or not rows.n_summed.any():
        return None
    convention = rows.convention
    per_bit = []
    for i in range(32):  # DQ arrays are 32-bit (dq_bits' range)
        bit = np.uint64(1 << i)
        hit = (rows.summed_bits & bit) != 0
        if hit.any():
            per_bit.append(f'{describe_dq_bits(1 << i, convention)} in '
                           f'{int(hit.sum())} row(s)')
    hit = np.flatnonzero(rows.n_summed)
    which = ''
    if ids is not None:
        which = (' (id ' + ', '.join(str(ids[i]) for i in hit[:5])
                 + (', ...' if hit.size > 5 else '') + ')')
    masked = frame.meta.get('DQMASK') if frame.meta is not None else None
    how = ('' if masked is None else f'; the DQ bits masked were '
           f'{describe_dq_bits(int(masked), convention)} '
           f'({frame.meta.get("DQRULE", "given")})')
    return (f'DQ ({convention.name}) flags {int(rows.n_summed.sum())} '
            f'pixel(s) summed inside the apertures of {hit.size} row(s)'
            f'{which}: {"; ".join(per_bit)}. They are summed as '
            f'they are{how}; to leave them out, add their bits to dq_bits '
            '(--dq-bits)')


def warn_dq(rows, frame, ids, *, stacklevel=3):
    """Warn with `dq_note` when flagged pixels were summed; return the
    note (None when there is none)."""
    note = dq_note(rows, frame, ids)
    if note is not None:
        warnings.warn(note, AstropyUserWarning, stacklevel=stacklevel)
    return note
