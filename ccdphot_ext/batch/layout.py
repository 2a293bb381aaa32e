# Licensed under a 3-clause BSD style license - see LICENSE
"""
The apertures of a batch run as plain values: how many positions, where,
what shapes (as ``meta['parameters']`` describes them) and whether they
fit a frame, without photutils.

A run of ``ccdphot batch --scheduler`` whose frames the workers measure
never builds a photutils aperture in the command's own process: building
one imports photutils (and the parts of scipy it loads), a CPU cost the
command would pay while sharing the machine's cores with the workers.
`ApertureLayout` holds the command line's circles or boxes as their
shape and positions, and builds the apertures (`ApertureLayout.apertures`)
only when this process measures frames itself. Apertures given built
(`ApertureLayout.of`) are described from their own parameters, so the two
kinds of layout describe the same apertures identically.
"""

import hashlib
from functools import cached_property

import numpy as np

from ..utils.windows import extent_limit

__all__ = []  # internal module

#: The shape parameters a layout's apertures are built with, by shape:
#: the photutils aperture class and its parameter names (in order).
_SHAPES = {'circle': ('CircularAperture', ('r',)),
           'box': ('BoxAperture', ('w', 'h', 'theta'))}


class ApertureLayout:
    """
    The apertures of a run: circles or axis-aligned boxes given by their
    size and positions (`circles`, `boxes`), built on first use; or
    apertures given built (`of`).

    Parameters
    ----------
    shape : {'circle', 'box'} or None
        The shape of every aperture; None for apertures given built.
    positions : array-like
        The ``(N, 2)`` pixel positions (None for apertures given built).
    params : dict
        The shape's parameters by name (``r``; ``w``, ``h``, ``theta``).
    built : pixel aperture or list of them, optional
        Apertures already built.

    Examples
    --------
    >>> from ccdphot_ext.batch.layout import ApertureLayout
    >>> layout = ApertureLayout.circles([(10.0, 12.0), (30.0, 5.0)], 4.0)
    >>> layout.n_rows, layout.parts
    (2, [{'type': 'CircularAperture', 'r': 4.0}])
    """

    def __init__(self, shape, positions, params, built=None):
        self.shape, self.params = shape, dict(params)
        self._positions = (None if positions is None
                           else np.atleast_2d(np.asarray(positions, float)))
        if built is not None:
            self.__dict__['apertures'] = built

    @classmethod
    def circles(cls, positions, r):
        """Circles of radius ``r`` pixels at ``positions`` (``(N, 2)``)."""
        return cls('circle', positions, {'r': float(r)})

    @classmethod
    def boxes(cls, positions, w, h):
        """Axis-aligned boxes ``w`` x ``h`` pixels at ``positions``."""
        return cls('box', positions, {'w': float(w), 'h': float(h),
                                      'theta': 0.0})

    @classmethod
    def of(cls, apertures):
        """
        The layout of apertures given built, described from their own
        parameters.

        Parameters
        ----------
        apertures : pixel aperture or list or tuple of them
            A `~ccdphot_ext.BoxAperture` or photutils pixel aperture, or a
            non-empty list of them.

        Returns
        -------
        layout : `ApertureLayout`

        Raises
        ------
        TypeError, ValueError
            If ``apertures`` is not one pixel aperture or a non-empty list
            of them.
        """
        from ..aperture.utils import split_apertures

        split_apertures(apertures)
        if isinstance(apertures, tuple):
            apertures = list(apertures)
        return cls(None, None, {}, built=apertures)

    @cached_property
    def apertures(self):
        """The photutils apertures (a `~ccdphot_ext.BoxAperture` or a
        `~photutils.aperture.CircularAperture` with every position),
        built on first use."""
        if self.shape == 'circle':
            from photutils.aperture import CircularAperture

            return CircularAperture(self._positions, self.params['r'])
        from ..aperture.box import BoxAperture

        return BoxAperture(self._positions, self.params['w'],
                           self.params['h'], self.params['theta'])

    @property
    def built(self):
        """True once the photutils apertures exist in this process."""
        return 'apertures' in self.__dict__

    @cached_property
    def positions(self):
        """The ``(N, 2)`` nominal positions, in order."""
        if self._positions is not None:
            return self._positions
        from ..aperture.utils import all_positions

        return all_positions(self.apertures)

    @property
    def n_rows(self):
        """The number of positions (rows of a frame)."""
        return len(self.positions)

    @cached_property
    def parts(self):
        """Each aperture's type name and shape parameters (the values as
        the apertures hold them: an angle may be a Quantity)."""
        if self.shape is not None:
            kind, names = _SHAPES[self.shape]
            return [{'type': kind, **{n: self.params[n] for n in names}}]
        from ..aperture.utils import aperture_list

        # every photutils aperture (BoxAperture included) names its shape
        # parameters in _params
        return [{'type': type(ap).__name__,
                 **{name: getattr(ap, name) for name in ap._params
                    if name != 'positions'}}
                for ap in aperture_list(self.apertures)]

    def describe(self, ids):
        """
        The apertures as a run's parameters describe them: each one's
        type and shape, and a digest of the positions and ``ids``.

        Parameters
        ----------
        ids : array-like
            The star ids, one per position.

        Returns
        -------
        description : dict
            ``apertures`` (`parts`) and ``positions_sha1``.
        """
        digest = hashlib.sha1(np.round(self.positions, 6).tobytes()
                              + np.asarray(ids).astype(str).tobytes())
        return {'apertures': self.parts, 'positions_sha1': digest.hexdigest()}

    def check_extent(self, shape, name='apertures'):
        """
        Refuse apertures far larger than a frame of ``shape``
        (`ccdphot_ext.aperture.utils.check_extent`, naming ``name``).
        Circles and boxes surely within `extent_limit` (their bounding box
        at most two pixels wider than their size) pass without building
        them.

        Parameters
        ----------
        shape : tuple of int
            The frame's ``(ny, nx)``.
        name : str, optional
            How to name the apertures in the message.

        Raises
        ------
        ValueError
            If an aperture spans far more than the frame.
        """
        if not self.built and self.shape is not None:
            if self.shape == 'circle':
                side_x = side_y = 2 * self.params['r'] + 2
            else:
                side_x, side_y = self.params['w'] + 2, self.params['h'] + 2
            if side_x * side_y <= extent_limit(shape):
                return
        from ..aperture.utils import check_extent

        check_extent(self.apertures, shape, name)

    def __getstate__(self):
        # circles and boxes travel as their sizes and positions: a worker
        # builds them once it measures
        state = dict(self.__dict__)
        if self.shape is not None:
            state.pop('apertures', None)
        return state
