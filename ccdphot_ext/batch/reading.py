# Licensed under a 3-clause BSD style license - see LICENSE
"""
How the FITS frames of a batch are read: which image HDU, in what unit,
which data-quality bits mask a pixel (`FrameReading`).
"""

from dataclasses import dataclass

import numpy as np

from ..io.dq import dq_bits_spec
from ..io.fits import read_frame
from ..io.header import read_data_unit

__all__ = ['FrameReading']


@dataclass(frozen=True, kw_only=True)
class FrameReading:
    """
    How `~ccdphot_ext.photometer_frames` reads its FITS frames.

    The image HDU, the data unit and the data-quality bits that mask a
    pixel, as `~ccdphot_ext.read_frame` takes them, for every FITS frame
    of a batch (in-memory `~astropy.nddata.NDData` frames are measured as
    they are). Checked when built; immutable.

    Parameters
    ----------
    hdu : int, str or tuple, optional
        The image HDU of each frame: an index, an EXTNAME or (EXTNAME,
        EXTVER); None (default): the first HDU with image data.
    unit : `~astropy.units.UnitBase` or str, optional
        The data unit of every frame, instead of its header's BUNIT (a
        frame without a usable BUNIT is otherwise taken to be in adu, with
        a warning), a text read as `~ccdphot_ext.read_frame` reads it
        (whatever its case: ``'ELECTRONS/S'``); None (default): each
        frame's BUNIT.
    dq_bits : int or str, optional
        The data-quality bits that mask a pixel of a frame with a DQ
        extension: an integer, or bit values and flag names joined by
        ``+`` (`~ccdphot_ext.io.dq.dq_bits`; the names are read by each
        frame's mission, so they are kept as text); None (default): each
        frame's mission's default (`~ccdphot_ext.io.dq.dq_convention`).

    Raises
    ------
    TypeError
        If ``hdu`` is not an index, a name or a (name, version) pair, or
        ``unit`` not a unit or text.
    ValueError
        If ``hdu`` is a negative index or an empty name, ``unit`` is text
        that is not a unit or a unit whose values cannot be summed into
        light (a magnitude, a temperature ...), or ``dq_bits`` is not
        valid.

    Examples
    --------
    >>> from ccdphot_ext import FrameReading
    >>> FrameReading(hdu='SCI', unit='electron / s')
    FrameReading(hdu='SCI', unit=Unit("electron / s"), dq_bits=None)
    >>> FrameReading(dq_bits='do_not_use + saturated').dq_bits
    'DO_NOT_USE+SATURATED'
    >>> FrameReading(dq_bits='1+4').dq_bits
    5
    """

    hdu: object = None
    unit: object = None
    dq_bits: object = None

    def __post_init__(self):
        object.__setattr__(self, 'hdu', _checked_hdu(self.hdu))
        object.__setattr__(self, 'unit', None if self.unit is None
                           else read_data_unit(self.unit, 'unit'))
        object.__setattr__(self, 'dq_bits', dq_bits_spec(self.dq_bits))

    def read(self, path):
        """
        Read one frame as these settings say.

        Parameters
        ----------
        path : str or path-like
            The FITS file.

        Returns
        -------
        frame : `~astropy.nddata.CCDData`
            As `~ccdphot_ext.read_frame` returns it.
        """
        return read_frame(path, hdu=self.hdu, unit=self.unit,
                          dq_bits=self.dq_bits)


def _checked_hdu(hdu):
    """An HDU index, name or (name, version), as `read_frame` takes it."""
    if hdu is None:
        return None
    if isinstance(hdu, (bool, np.bool_)):
        raise TypeError(f'hdu must be an index, a name or (name, version), '
                        f'got {hdu!r}')
    if isinstance(hdu, (int, np.integer)):
        if hdu < 0:
            raise ValueError(f'hdu must be a non-negative index, got {hdu}')
        return int(hdu)
    if isinstance(hdu, str):
        if not hdu.strip():
            raise ValueError('hdu is an empty name')
        return hdu
    if (isinstance(hdu, tuple) and len(hdu) == 2
            and isinstance(hdu[0], str) and hdu[0].strip()
            and isinstance(hdu[1], (int, np.integer))
            and not isinstance(hdu[1], (bool, np.bool_))):
        return (hdu[0], int(hdu[1]))
    raise TypeError('hdu must be an index, a name or (name, version), got '
                    f'{hdu!r}')

