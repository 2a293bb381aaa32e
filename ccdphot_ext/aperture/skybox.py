# Licensed under a 3-clause BSD style license - see LICENSE
"""
Positions on the sky: photutils sky apertures and `SkyBoxAperture` turned
into pixel apertures with the frame's WCS, and the ``sky_centroid`` column.

`~ccdphot_ext.measure` and `~ccdphot_ext.photometer` accept any photutils
`~photutils.aperture.SkyAperture` (e.g.
`~photutils.aperture.SkyCircularAperture`,
`~photutils.aperture.SkyRectangularAperture`) or a `SkyBoxAperture` when the
data carry a celestial WCS (``CCDData.wcs``); each is converted with its
``to_pixel(wcs)``. Tables of frames with a celestial WCS get a
``sky_centroid`` column (`~astropy.coordinates.SkyCoord`) of the aperture
centres.
"""

import copy
import math

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from photutils.aperture import SkyAperture, SkyRectangularAperture
from photutils.aperture.attributes import SkyCoordPositions

from ..io.wcs import celestial_wcs, lonlat_text
from ..utils.inputs import positive_scalar
from .box import BoxAperture

__all__ = ['SkyBoxAperture']

_SNAP_RAD = 1e-7  # a WCS rotation this close to k * 90 deg is taken as exact


class SkyBoxAperture(SkyAperture):
    """
    A box at sky positions, converted to a `~ccdphot_ext.BoxAperture` with
    the frame's WCS: a photutils `~photutils.aperture.SkyAperture`, so
    photutils' `~photutils.aperture.aperture_photometry` and
    `~photutils.aperture.ApertureStats` take it with ``wcs=``.

    Parameters
    ----------
    positions : `~astropy.coordinates.SkyCoord`
        The centre or centres, scalar or array.
    width : `~astropy.units.Quantity`
        The full side, positive, in an angular unit (e.g. arcsec: it runs
        East-West when ``theta`` is 0) or in pixels (``u.pix``: along x, as
        `~ccdphot_ext.BoxAperture`, the box only centred from the sky).
    height : `~astropy.units.Quantity`
        The other full side, positive, in the same kind of unit as
        ``width`` (angular: it runs North-South when ``theta`` is 0;
        pixels: along y).
    theta : `~astropy.units.Quantity`, optional
        An angle (default 0 deg). With angular sizes: the position angle
        of the ``height`` side, East of North. With pixel sizes: the
        rotation counter-clockwise from the x axis (as
        `~ccdphot_ext.BoxAperture`).

    Raises
    ------
    TypeError
        If ``positions`` is not a `~astropy.coordinates.SkyCoord`, or a
        side is not a scalar Quantity.
    astropy.units.UnitsError
        If a side is neither angular nor in pixels, the two sides mix the
        two, or ``theta`` is not an angle Quantity.
    ValueError
        If a side is not positive and finite.

    Examples
    --------
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from astropy.wcs import WCS
    >>> from ccdphot_ext.aperture.skybox import SkyBoxAperture
    >>> wcs = WCS(naxis=2)
    >>> wcs.wcs.ctype = ['RA---TAN', 'DEC--TAN']
    >>> wcs.wcs.crval = [56.75, 24.12]
    >>> wcs.wcs.crpix = [384.0, 255.0]
    >>> wcs.wcs.cdelt = [-0.5 / 3600, 0.5 / 3600]
    >>> c = wcs.pixel_to_world(383.0, 254.0)  # the tangent point
    >>> box = SkyBoxAperture(c, 10 * u.arcsec, 5 * u.arcsec).to_pixel(wcs)
    >>> round(box.width, 4), round(box.height, 4), box.theta
    (20.0, 10.0, <Quantity 0. rad>)
    >>> box.positions.round(6)
    array([383., 254.])

    Away from the tangent point north turns slightly on a TAN projection
    (here by 1.3e-4 rad), and the box turns with it.
    """

    _params = ('positions', 'width', 'height', 'theta')
    positions = SkyCoordPositions('The centre position(s) on the sky.')

    def __init__(self, positions, width, height, theta=0.0 * u.deg):
        if not isinstance(positions, SkyCoord):
            raise TypeError('positions must be a SkyCoord, got '
                            f'{type(positions).__name__}')
        self.positions = positions
        kinds = []
        for name, value in (('width', width), ('height', height)):
            if not isinstance(value, u.Quantity) or not value.isscalar:
                raise TypeError(f'{name} must be a scalar Quantity in an '
                                f'angular unit or in pixels, got {value!r}')
            if value.unit.physical_type == 'angle':
                kinds.append('angle')
            elif value.unit == u.pix:
                kinds.append('pix')
            else:
                raise u.UnitsError(f'{name} must be in an angular unit or '
                                   f'in pixels, got {value.unit}')
            positive_scalar(value.value, name, allow_none=False)
        if kinds[0] != kinds[1]:
            raise u.UnitsError('width and height must both be angular or '
                               f'both in pixels, got {width.unit} and '
                               f'{height.unit}')
        if not isinstance(theta, u.Quantity) or theta.unit.physical_type \
                != 'angle':
            raise u.UnitsError(f'theta must be an angle Quantity, got '
                               f'{theta!r}')
        self.width = width
        self.height = height
        self.theta = theta
        self._angular = kinds[0] == 'angle'

    def __repr__(self):
        return (f'<SkyBoxAperture(n={self.positions.size}, width='
                f'{self.width}, height={self.height}, theta={self.theta})>')

    def to_pixel(self, wcs):
        """
        Convert to the `~ccdphot_ext.BoxAperture` on a frame with ``wcs``.

        A rotation within 1e-7 rad of a multiple of 90 degrees is snapped to
        it, so a north-up frame gives an axis-aligned (fast, exact) box.

        Parameters
        ----------
        wcs : WCS
            The frame's celestial WCS (an `~astropy.wcs.WCS` or any
            APE 14 WCS with celestial axes).

        Returns
        -------
        box : `~ccdphot_ext.BoxAperture`
            The box at the pixel positions of the centres, its sides in
            pixels (angular sizes converted with the WCS's local scale) and
            its rotation following the local direction of North.

        Raises
        ------
        ValueError
            If ``wcs`` has no celestial axes.
        """
        if celestial_wcs(wcs) is None:
            raise ValueError('wcs must be a celestial WCS to place sky '
                             'apertures on the frame')
        if not self._angular:
            x, y = wcs.world_to_pixel(self.positions)
            pos = np.column_stack([np.atleast_1d(x), np.atleast_1d(y)])
            return BoxAperture(pos[0] if self.positions.isscalar else pos,
                               self.width.value, self.height.value,
                               theta=self.theta)
        # photutils' w side lies at position angle theta: that is our height
        rect = SkyRectangularAperture(self.positions, w=self.height,
                                      h=self.width,
                                      theta=self.theta).to_pixel(wcs)
        theta = rect.theta.to_value(u.rad) - math.pi / 2
        quarter = round(theta / (math.pi / 2))
        if abs(theta - quarter * math.pi / 2) < _SNAP_RAD:
            theta = (quarter % 4) * math.pi / 2
        return BoxAperture(rect.positions, float(rect.h), float(rect.w),
                           theta=theta)


def to_pixel_apertures(apertures, data, *, wcs=None):
    """
    Convert sky apertures to pixel apertures with the frame's WCS.

    A sky position with no pixel position in the WCS (the far side of the
    sky for its projection) is placed just off the frame, where it sums
    nothing (a NaN row with flag 1, as any aperture off the frame), and is
    listed in ``unplaced``; the sizes of the others are converted as if it
    were not there.

    Parameters
    ----------
    apertures : aperture or list of apertures
        Any mix of photutils `~photutils.aperture.SkyAperture`,
        `SkyBoxAperture` and pixel apertures (returned unchanged).
    data : `~astropy.nddata.NDData` or array_like
        The frame; its ``wcs`` is used.
    wcs : WCS, optional
        Overrides the frame's WCS.

    Returns
    -------
    apertures : same structure, with pixel apertures only
    unplaced : dict
        ``{row: SkyCoord}`` of the positions with no pixel position, by
        their row among all the positions in order (empty when every
        position has one).

    Raises
    ------
    ValueError
        If a sky aperture is given but there is no celestial WCS.
    """
    is_list = isinstance(apertures, (list, tuple))
    items = list(apertures) if is_list else [apertures]
    if not any(isinstance(a, SkyAperture) for a in items):
        return apertures, {}
    frame_wcs = celestial_wcs(wcs if wcs is not None else data)
    if frame_wcs is None:
        raise ValueError('apertures are given on the sky but data has no '
                         'celestial WCS: pass a CCDData with a wcs (e.g. '
                         'from read_frame) or pixel apertures')
    out, unplaced, start = [], {}, 0
    for a in items:
        if isinstance(a, SkyAperture):
            a, lost = _placed(a, frame_wcs)
            unplaced.update({start + i: c for i, c in lost.items()})
        out.append(a)
        start += 1 if a.isscalar else len(a)
    return (out if is_list else out[0]), unplaced


def _placed(aperture, wcs):
    """
    ``aperture`` (a sky aperture) on the pixel grid of ``wcs``, and
    ``{index: SkyCoord}`` of its positions with no pixel position: those
    stand just off the frame (below pixel 0 on both axes, clear of it by
    the aperture's extent), the sizes converted at the other positions.
    """
    positions = aperture.positions
    x, y = wcs.world_to_pixel(positions)
    lost = ~(np.isfinite(np.atleast_1d(x)) & np.isfinite(np.atleast_1d(y)))
    if not lost.any():
        return aperture.to_pixel(wcs), {}
    if lost.all():  # sizes converted at the first pixel: nothing is summed
        kept = copy.copy(aperture)
        kept.positions = wcs.pixel_to_world(0.0, 0.0)
    else:
        kept = aperture[np.flatnonzero(~lost)]
    pixel = kept.to_pixel(wcs)
    box = pixel.bbox if pixel.isscalar else pixel.bbox[0]
    off = -2.0 - max(box.shape)  # the whole aperture below -0.5
    xy = np.full((lost.size, 2), off)
    xy[~lost] = np.atleast_2d(pixel.positions)
    params = {name: getattr(pixel, name) for name in pixel._params}
    params['positions'] = xy[0] if positions.isscalar else xy
    flat = positions.reshape((1,)) if positions.isscalar else positions
    return (type(pixel)(**params),
            {int(i): flat[i] for i in np.flatnonzero(lost)})


def mark_unplaced(table, unplaced):
    """
    Give the rows of sky positions with no pixel position (``unplaced``,
    from `to_pixel_apertures`) NaN ``x_center`` and ``y_center`` and their
    own sky position in ``sky_centroid``; ``table`` is changed in place.
    """
    if not unplaced:
        return table
    rows = list(unplaced)
    for name in ('x_center', 'y_center'):
        table[name][rows] = np.nan
    if 'sky_centroid' in table.colnames:
        column = table['sky_centroid']
        for row, coord in unplaced.items():
            column[row] = coord.transform_to(column.frame)
    return table


def sky_position(coord):
    """``coord`` (a scalar `~astropy.coordinates.SkyCoord`) for a message:
    its longitude and latitude in degrees and its frame."""
    return f'{coord.frame.name} {lonlat_text(coord)}'


def add_sky_centroid(table, data, *, after='y_center'):
    """
    Add a ``sky_centroid`` column (`~astropy.coordinates.SkyCoord`) of the
    ``x_center``, ``y_center`` columns when ``data`` has a celestial WCS.

    The table is changed in place and returned; without a celestial WCS it
    is returned unchanged.
    """
    wcs = celestial_wcs(data)
    if wcs is None or len(table) == 0:
        return table
    x = np.asarray(u.Quantity(table['x_center']).value, dtype=float)
    y = np.asarray(u.Quantity(table['y_center']).value, dtype=float)
    coords = wcs.pixel_to_world(x, y)
    index = (table.colnames.index(after) + 1 if after in table.colnames
             else len(table.colnames))
    table.add_column(coords, name='sky_centroid', index=index)
    return table
