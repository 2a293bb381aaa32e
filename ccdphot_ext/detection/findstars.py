# Licensed under a 3-clause BSD style license - see LICENSE
"""
Find the stars to measure: the notebook's "identify them yourself", done by
photutils image segmentation.

`find_stars` subtracts the sky, optionally smooths the frame with a Gaussian
of the seeing's FWHM, keeps the connected groups of at least ``n_pixels``
pixels above ``n_sigma`` times the noise (of the smoothed frame, when
smoothed), measures each group with photutils'
`~photutils.segmentation.SourceCatalog` and suggests a box per star.
`star_boxes` turns that table into the `BoxAperture` that `photometer`
takes.
"""

import math
import warnings

import astropy.units as u
import numpy as np
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from photutils.segmentation import (
    SourceCatalog,
    deblend_sources,
    detect_sources,
    make_2dgaussian_kernel,
)
from photutils.utils import NoDetectionsWarning
from scipy import ndimage

from ..aperture.box import BoxAperture
from ..background.sky import SkyEstimate
from ..io.header import detector_parameters
from ..utils.inputs import as_frame, positive_scalar
from ..utils.provenance import versions

__all__ = ['find_stars', 'star_boxes', 'STAR_COLUMNS']

#: Columns of every `find_stars` table, in order.
STAR_COLUMNS = ('id', 'x_center', 'y_center', 'flux', 'peak', 'area', 'fwhm',
                'saturated', 'box_x0', 'box_x1', 'box_y0', 'box_y1')


def _box_side(box_size, box_scale, fwhm):
    """One odd box side in pixels: given, or ``box_scale`` FWHM."""
    if box_size is not None:
        if isinstance(box_size, (bool, np.bool_)) or not isinstance(
                box_size, (int, np.integer)):
            raise TypeError(f'box_size must be an integer number of pixels, '
                            f'got {box_size!r}')
        if box_size < 1:
            raise ValueError(f'box_size must be at least 1, got {box_size}')
        return int(box_size)
    side = int(math.ceil(box_scale * fwhm))
    return max(side + (side + 1) % 2, 3)


def _sky_arrays(sky, shape):
    """Sky level and per-pixel std as scalars or maps of ``shape``."""
    if not isinstance(sky, SkyEstimate):
        raise TypeError('sky must be a SkyEstimate (e.g. '
                        'SkyEstimate.from_image(data)), got '
                        f'{type(sky).__name__}')
    value, std = np.asarray(sky.value, float), np.asarray(sky.std, float)
    if value.ndim == 1:
        raise ValueError('sky has one level per aperture; find_stars needs '
                         'a global sky or a 2-D sky map')
    if value.ndim == 2 and value.shape != shape:
        raise ValueError(f'sky map shape {value.shape} does not match the '
                         f'data shape {shape}')
    return value, std


def find_stars(data, sky, *, n_sigma=5.0, n_pixels=5, fwhm=3.0,
               deblend=False, mask=None, box_size=None, box_scale=4.0,
               saturation=None):
    """
    Detect stars above the sky with photutils segmentation.

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The processed frame; a `CCDData`'s mask and header are used.
    sky : `SkyEstimate`
        A global sky (or a 2-D sky map): its ``value`` is subtracted and its
        ``std`` sets the detection threshold.
    n_sigma : float, optional
        Detection threshold in units of the noise of the detection image:
        ``sky.std`` without smoothing, ``sky.std * sqrt(sum(k**2))`` after
        smoothing with the normalised kernel ``k`` (the noise of the smoothed
        image), so ``n_sigma`` stays a significance.
    n_pixels : int, optional
        Minimum number of connected pixels above the threshold (photutils'
        ``n_pixels``).
    fwhm : float or None, optional
        FWHM in pixels of the Gaussian used to smooth the frame before
        detection (about the seeing); None for no smoothing. Positions and
        fluxes are always measured on the unsmoothed, sky-subtracted frame.
    deblend : bool, optional
        Split blended stars with `~photutils.segmentation.deblend_sources`.
    mask : array_like of bool, optional
        True for pixels to ignore (combined with the NDData's mask; NaN and
        inf pixels are always ignored).
    box_size : int, optional
        Side of the suggested boxes in pixels. Default: ``box_scale`` times
        the median FWHM of the stars found, rounded up to an odd integer
        (at least 3).
    box_scale : float, optional
        Box side in units of the median measured FWHM when ``box_size`` is
        not given (4 keeps more than 99% of a Gaussian star's flux).
    saturation : float, optional
        Saturation level (data unit); default the header's SATURATE/SATLEVEL.
        Sets the ``saturated`` column (peak + sky at or above it).

    Returns
    -------
    stars : `~astropy.table.QTable`
        One row per star, brightest first, columns `STAR_COLUMNS`:
        ``x_center``, ``y_center`` (windowed centroid, 0-based pixels, as
        photutils), ``flux`` (sky-subtracted sum over the star's segment),
        ``peak`` (highest pixel above the sky), ``area`` (segment pixels,
        pix2), ``fwhm`` (from the second moments, pix; both with units, as
        photutils' `~photutils.segmentation.SourceCatalog`), ``saturated``,
        and the suggested box as integer slice bounds
        ``data[box_y0:box_y1, box_x0:box_x1]`` (they may run past the
        frame edge; `photometer` then sets flag 1).
        ``meta`` records the parameters, the threshold and the versions.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate, find_stars, star_boxes
    >>> from ccdphot_ext.datasets.sample import render_stars
    >>> rng = np.random.default_rng(2)
    >>> img = rng.normal(100.0, 5.0, (80, 90))
    >>> img += render_stars(img.shape, [20.3, 61.8], [30.6, 50.2],
    ...                     [20000.0, 8000.0])
    >>> stars = find_stars(img, SkyEstimate.from_image(img))
    >>> [round(float(x), 1) for x in stars['x_center']]
    [20.3, 61.8]
    >>> box = star_boxes(stars)
    >>> box.width, box.is_pixel_aligned
    (17.0, True)
    """
    frame = as_frame(data, mask=mask)
    n_sigma = positive_scalar(n_sigma, 'n_sigma', allow_none=False)
    if (isinstance(n_pixels, (bool, np.bool_))
            or not isinstance(n_pixels, (int, np.integer))):
        raise TypeError(f'n_pixels must be an integer, got {n_pixels!r}')
    if n_pixels < 1:
        raise ValueError(f'n_pixels must be at least 1, got {n_pixels}')
    fwhm = positive_scalar(fwhm, 'fwhm')
    box_scale = positive_scalar(box_scale, 'box_scale', allow_none=False)
    _box_side(box_size, box_scale, 1.0)  # validate early
    saturation = detector_parameters(frame.meta,
                                     saturation=saturation)['saturation']
    value, std = _sky_arrays(sky, frame.shape)

    image = frame.data.astype(np.float64) - value
    bad = ~np.isfinite(image)
    if frame.mask is not None:
        bad |= frame.mask
    image[bad] = 0.0
    noise = std
    detection = image
    if fwhm is not None:
        size = 2 * int(math.ceil(2.0 * fwhm)) + 1
        # a "lowered" Gaussian (zero sum, as DAOFIND's): blind to a
        # constant or linear residual background, e.g. a sky gradient
        kernel = make_2dgaussian_kernel(fwhm, size=size).array
        kernel = kernel - kernel.mean()
        detection = ndimage.convolve(image, kernel, mode='nearest')
        noise = std * math.sqrt(float(np.sum(kernel ** 2)))
    threshold = n_sigma * noise
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NoDetectionsWarning)
        segm = detect_sources(detection, threshold, n_pixels,
                              mask=bad if bad.any() else None)
        if segm is not None and deblend:
            segm = deblend_sources(detection, segm, n_pixels,
                                   progress_bar=False)
    meta = {'n_sigma': n_sigma, 'n_pixels': int(n_pixels), 'fwhm': fwhm,
            'deblend': deblend, 'threshold': float(np.mean(threshold)),
            'sky_method': sky.method, 'saturation': saturation,
            'versions': versions()}
    if segm is None:
        warnings.warn(f'no star found above {n_sigma} sigma with '
                      f'{n_pixels} connected pixels', AstropyUserWarning,
                      stacklevel=2)
        return _empty_table(frame.unit, meta)

    cat = SourceCatalog(image, segm, mask=bad if bad.any() else None)
    x = np.asarray(cat.x_centroid_win, dtype=float)
    y = np.asarray(cat.y_centroid_win, dtype=float)
    plain = ~(np.isfinite(x) & np.isfinite(y))  # windowed failed: moments
    x[plain] = np.asarray(cat.x_centroid, dtype=float)[plain]
    y[plain] = np.asarray(cat.y_centroid, dtype=float)[plain]
    flux = np.asarray(cat.segment_flux, dtype=float)
    peak = np.asarray(cat.max_value, dtype=float)
    star_fwhm = np.asarray(getattr(cat.fwhm, 'value', cat.fwhm), float)
    keep = np.isfinite(x) & np.isfinite(y)
    order = np.argsort(-np.where(keep, flux, -np.inf), kind='stable')
    order = order[keep[order]]
    side = _box_side(box_size, box_scale, float(np.nanmedian(star_fwhm[keep]))
                     if box_size is None else 1.0)
    x, y = x[order], y[order]
    x0 = np.rint(x - (side - 1) / 2).astype(np.int64)
    y0 = np.rint(y - (side - 1) / 2).astype(np.int64)
    level = np.broadcast_to(value, frame.shape)
    sat = np.zeros(order.size, dtype=bool)
    if saturation is not None:
        iy = np.asarray(cat.max_value_yindex)[order]
        ix = np.asarray(cat.max_value_xindex)[order]
        sat = peak[order] + level[iy, ix] >= saturation
    unit = 1.0 if frame.unit is None else frame.unit
    table = QTable({
        'id': np.arange(1, order.size + 1),
        'x_center': x, 'y_center': y,
        'flux': flux[order] * unit, 'peak': peak[order] * unit,
        'area': np.asarray(getattr(cat.area, 'value', cat.area),
                           float)[order] * u.pix ** 2,
        'fwhm': star_fwhm[order] * u.pix, 'saturated': sat,
        'box_x0': x0, 'box_x1': x0 + side, 'box_y0': y0, 'box_y1': y0 + side,
    })
    meta['box_size'] = side
    table.meta.update(meta)
    return table


def _empty_table(unit, meta):
    unit = 1.0 if unit is None else unit
    empty = np.zeros(0)
    table = QTable({
        'id': np.zeros(0, dtype=np.int64), 'x_center': empty,
        'y_center': empty, 'flux': empty * unit, 'peak': empty * unit,
        'area': empty * u.pix ** 2, 'fwhm': empty * u.pix,
        'saturated': np.zeros(0, dtype=bool),
        **{name: np.zeros(0, dtype=np.int64)
           for name in ('box_x0', 'box_x1', 'box_y0', 'box_y1')}})
    meta['box_size'] = None
    table.meta.update(meta)
    return table


def star_boxes(stars):
    """
    The suggested boxes of a `find_stars` table as one `BoxAperture`.

    Each box covers exactly ``data[box_y0:box_y1, box_x0:box_x1]`` (it is
    pixel-aligned, so `photometer` takes its fast exact path). For boxes
    centred on the centroids instead, use
    ``BoxAperture(np.column_stack([stars['x_center'], stars['y_center']]),
    side, side)``.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        With integer columns ``box_x0``, ``box_x1``, ``box_y0``,
        ``box_y1`` (e.g. from `find_stars`), all boxes of one size.

    Returns
    -------
    boxes : `BoxAperture`
        One position per row, in order.
    """
    try:
        x0, x1, y0, y1 = (np.asarray(stars[name])
                          for name in ('box_x0', 'box_x1', 'box_y0',
                                       'box_y1'))
    except (KeyError, TypeError, IndexError):
        raise TypeError('stars must be a table with box_x0, box_x1, box_y0 '
                        'and box_y1 columns (see find_stars)') from None
    if x0.size == 0:
        raise ValueError('stars is empty: no box to make')
    widths, heights = x1 - x0, y1 - y0
    if np.any(widths != widths[0]) or np.any(heights != heights[0]):
        raise ValueError('stars: boxes of different sizes; a BoxAperture has '
                         'one size (split the table by size)')
    if widths[0] < 1 or heights[0] < 1:
        raise ValueError('stars: box_x1 must exceed box_x0 and box_y1 '
                         'box_y0')
    positions = np.column_stack([(x0 + x1 - 1) / 2.0, (y0 + y1 - 1) / 2.0])
    return BoxAperture(positions, float(widths[0]), float(heights[0]))
