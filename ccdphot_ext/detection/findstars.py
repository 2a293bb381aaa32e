# Licensed under a 3-clause BSD style license - see LICENSE
"""
Find the stars to measure: the notebook's "identify them yourself", done by
image segmentation.

`find_stars` subtracts the sky, optionally smooths the frame with a zero-sum
Gaussian of the seeing's FWHM (a separable convolution), keeps the connected
groups of at least ``n_pixels`` pixels above ``n_sigma`` times the noise (of
the smoothed frame, when smoothed; photutils' `~photutils.segmentation.
detect_sources`), and measures every group at once: segment flux, peak,
second moments (FWHM, roundness), sharpness and Source Extractor's windowed
centroid, with array operations over all sources (no per-source loop). It
then suggests a box per star, sized from the star-like detections only and
checked against their curve of growth. `star_boxes` turns that table into
the `BoxAperture` that `photometer` takes; `box_flags` gives the flag of a
box that failed the check, `star_like_flags` that of a detection that is
not like a star.
"""

import math
import warnings

import astropy.units as u
import numpy as np
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning
from photutils.utils import NoDetectionsWarning

from ..aperture.box import BoxAperture
from ..background.sky import check_sky
from ..flags import FLAG_SMALL_APERTURE
from ..io.header import DetectorParameters
from ..io.saturation import warn_saturation
from ..utils.inputs import as_frame, positive_scalar
from ..utils.numbers import check_bool, positive_integer
from ..utils.provenance import versions
from .artifacts import ring_or_spike
from .boxsize import check_box, star_like
from .edgefit import refit_edge
from .segments import measure_strips, segment_moments, shape_parameters
from .starflags import star_like_flags
from .strips import Kernel, Segments, SkyRows, detect_segments

__all__ = ['find_stars', 'star_boxes', 'box_flags', 'star_like_flags',
           'STAR_COLUMNS']

#: Columns of every `find_stars` table, in order.
STAR_COLUMNS = ('id', 'x_center', 'y_center', 'flux', 'peak', 'area', 'fwhm',
                'roundness', 'sharpness', 'star_like', 'saturated', 'edge',
                'box_x0', 'box_x1', 'box_y0', 'box_y1')

#: A detection is at the edge when its centroid lies within this many PSF
#: sigmas (FWHM / 2.3548) of the frame's edge: the frame cuts off part of
#: the light its windowed centroid weighs, which pulls it inward.
EDGE_SIGMAS = 3.0

#: Frames of at least this many pixels show a progress bar by default.
_PROGRESS_PIXELS = 4096 * 4096


def _box_side(box_side, box_scale, fwhm):
    """
    One odd box side in pixels.

    Parameters
    ----------
    box_side : int or None
        The side given (kept as it is).
    box_scale : float
        Without ``box_side``: the side in FWHM.
    fwhm : float
        The PSF FWHM (pixels).

    Returns
    -------
    side : int
        ``box_side``, else ``box_scale * fwhm`` rounded up to an odd number
        of at least 3.
    """
    if box_side is not None:
        return box_side
    side = int(math.ceil(box_scale * fwhm))
    return max(side + (side + 1) % 2, 3)


def _median_fwhm(fwhm, default):
    """
    The median of the finite FWHMs of detections.

    A lone hot pixel, or a source whose second moments are not positive,
    has no FWHM.

    Parameters
    ----------
    fwhm : array_like
        The detections' FWHMs (pixels; NaN where none).
    default : float or None
        The FWHM when none is finite (None: 3 pixels).

    Returns
    -------
    fwhm : float
        Pixels.
    """
    fwhm = np.asarray(fwhm, dtype=float)
    fwhm = fwhm[np.isfinite(fwhm)]
    if fwhm.size:
        return float(np.median(fwhm))
    return 3.0 if default is None else float(default)


def _sky_arrays(sky, shape):
    """
    Sky level and per-pixel standard deviation, as scalars or maps.

    Parameters
    ----------
    sky : `~ccdphot_ext.SkyEstimate`
        A global sky or a 2-D sky map.
    shape : tuple of int
        The frame's ``(ny, nx)``.

    Returns
    -------
    value, std : `~numpy.ndarray`
        0-d, or 2-D maps of ``shape``.

    Raises
    ------
    ValueError
        If the sky has one level per aperture, or a map of another shape.
    """
    check_sky(sky)
    value, std = np.asarray(sky.value, float), np.asarray(sky.std, float)
    if value.ndim == 1:
        raise ValueError('sky has one level per aperture; find_stars needs '
                         'a global sky or a 2-D sky map')
    if value.ndim == 2 and value.shape != shape:
        raise ValueError(f'sky map shape {value.shape} does not match the '
                         f'data shape {shape}')
    return value, std


#: the narrowest smoothing kernel (pixels FWHM): all narrower ones are
#: one pixel, and far narrower ones underflow to nothing
MIN_KERNEL_FWHM = 0.1

#: a kernel up to this FWHM (pixels) smooths any frame, however small;
#: beyond it the kernel may be at most the frame's longer side
_MAX_KERNEL_FWHM_SMALL = 8.0


def _check_arguments(n_sigma, n_pixels, fwhm, box_side, box_scale, shape):
    """
    `find_stars`' numbers checked, by the one rule for numbers and counts.

    Parameters
    ----------
    n_sigma, n_pixels, fwhm, box_side, box_scale
        As `find_stars` takes them.
    shape : tuple of int
        The frame's ``(ny, nx)``: the smoothing kernel's ``fwhm`` and
        ``box_side`` are checked against it.

    Returns
    -------
    n_sigma, n_pixels, fwhm, box_side, box_scale
        Checked (plain numbers; ``fwhm`` and ``box_side`` may be None).

    Raises
    ------
    TypeError, ValueError
        Naming the argument.
    """
    n_sigma = positive_scalar(n_sigma, 'n_sigma', allow_none=False)
    n_pixels = positive_integer(n_pixels, 'n_pixels')
    fwhm = positive_scalar(fwhm, 'fwhm')
    if fwhm is not None and fwhm < MIN_KERNEL_FWHM:
        raise ValueError(f'fwhm must be at least {MIN_KERNEL_FWHM} pixels, '
                         f'got {fwhm} (fwhm=None smooths not at all)')
    if fwhm is not None and fwhm > max(*shape, _MAX_KERNEL_FWHM_SMALL):
        raise ValueError(f'fwhm {fwhm} pixels is more than the frame '
                         f'{shape}: is it in pixels?')
    box_scale = positive_scalar(box_scale, 'box_scale', allow_none=False)
    box_side = (None if box_side is None
                else positive_integer(box_side, 'box_side',
                                      maximum=_max_box_side(shape),
                                      bound_note=_BOX_BOUND))
    return n_sigma, n_pixels, fwhm, box_side, box_scale


#: why a box side is bounded by twice the frame's longer side
_BOX_BOUND = ('twice the longer side of the frame: a box centred on any '
              'of its pixels covers all of it')


def _max_box_side(shape):
    """
    The largest box side that means something on a frame.

    Parameters
    ----------
    shape : tuple of int
        The frame's ``(ny, nx)``.

    Returns
    -------
    side : int
        Twice the frame's longer side: a larger box covers no more of it.
    """
    return 2 * max(shape)


def find_stars(data, sky, *, n_sigma=5.0, n_pixels=5, fwhm=3.0,
               deblend=False, mask=None, box_side=None, box_scale=4.0,
               saturation=None, progress=None, reject_artifacts=True):
    """
    Detect stars above the sky with image segmentation (each step:
    :ref:`photometer`; memory and speed: :ref:`performance-find`).

    Parameters
    ----------
    data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
        The processed frame; a `CCDData`'s mask and header are used.
    sky : `SkyEstimate`
        A global sky or a 2-D map: ``value`` subtracted, ``std`` the noise.
    n_sigma : float, optional
        Threshold in units of the noise of the detection image (``sky.std``
        times ``sqrt(sum(k**2))`` of the smoothing kernel ``k``).
    n_pixels : int, optional
        Minimum number of connected pixels above the threshold.
    fwhm : float or None, optional
        FWHM (pixels) of the zero-sum Gaussian that smooths the frame for
        detection, from 0.1 pixels to the frame's longer side (or 8);
        None for none. Measurements use the unsmoothed frame.
    deblend : bool, optional
        Split blends (`~photutils.segmentation.deblend_sources`; this holds
        whole-frame images in memory).
    mask : array_like of bool, optional
        True for pixels to ignore (with the NDData's mask, NaN and inf).
    box_side : int, optional
        Side of the suggested boxes; default ``box_scale`` times the PSF
        FWHM, rounded up to an odd integer. Checked on the curve of growth
        of the brightest isolated stars: below 90% of the plateau, a
        warning and `box_flags` 128 for every row. At most twice the
        frame's longer side (a larger box covers no more of the frame).
    box_scale : float, optional
        Box side in units of the PSF FWHM (4 keeps over 99% of a Gaussian);
        the side it makes is bounded as ``box_side`` is.
    saturation : float, optional
        Saturation level (data unit); default the header's SATURATE/SATLEVEL.
    progress : bool or None, optional
        A progress bar on stderr while measuring; default for frames of
        4096 x 4096 pixels or more.
    reject_artifacts : bool, optional
        Leave out the detections that are pieces of a brighter star's
        diffraction pattern, its rings or spikes (they repeat when turned
        about the star's centre, a real star beside it does not; see
        :ref:`find-artifacts`), counted in ``meta['n_rejected_artifacts']``.
        False keeps every detection.

    Returns
    -------
    stars : `~astropy.table.QTable`
        One row per star, brightest first, columns `STAR_COLUMNS`; ``meta``
        records the parameters, threshold, ``psf_fwhm``, ``box_check``,
        ``n_rejected_artifacts``, ``n_edge`` and ``n_edge_fitted``.
        ``edge`` is True where the windowed centroid lies within 3 PSF
        sigmas (the larger of the PSF FWHM and the detection's own, over
        2.3548) of the frame's edge (pixel ``i`` spans ``i - 0.5`` to
        ``i + 0.5``): the frame cuts the star and pulls that centroid
        inward, by up to 0.7 pixels, so these positions come from a fit of
        a pixel-integrated Gaussian to the pixels inside the frame
        (``n_edge_fitted`` of them; a fit that fails or moves the centroid
        by more than a PSF sigma plus half a pixel keeps the centroid), and
        a warning names them (see :ref:`find-edge`). ``star_like`` is
        False for detections sharper
        than a star, elongated, of another width than the stars, or
        saturated (:ref:`find-not-star-like`).

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
    >>> star_boxes(stars).width  # boxes of 4 FWHM
    17.0
    """
    frame = as_frame(data, mask=mask)
    n_sigma, n_pixels, fwhm, box_side, box_scale = _check_arguments(
        n_sigma, n_pixels, fwhm, box_side, box_scale, frame.shape)
    reject_artifacts = check_bool(reject_artifacts, 'reject_artifacts')
    deblend = check_bool(deblend, 'deblend')
    progress = None if progress is None else check_bool(progress, 'progress')
    detector = DetectorParameters(saturation=saturation).resolve(
        frame.meta, unit=frame.unit)
    warn_saturation(detector, frame.meta, frame.unit)
    saturation = detector.saturation
    value, std = _sky_arrays(sky, frame.shape)
    sky_rows = SkyRows(frame.data, value, frame.mask)
    kernel = None if fwhm is None else Kernel(fwhm)
    segments = _segments(sky_rows, std, n_sigma, kernel, n_pixels, deblend)
    meta = _meta(n_sigma, n_pixels, kernel, std, sky, fwhm=fwhm,
                 deblend=deblend, saturation=saturation,
                 reject_artifacts=bool(reject_artifacts),
                 n_rejected_artifacts=0)
    if segments is None:
        warnings.warn(f'no star found above {n_sigma} sigma with '
                      f'{n_pixels} connected pixels', AstropyUserWarning,
                      stacklevel=2)
        return _empty_table(frame.unit, meta)
    cols = _measure(sky_rows, segments, value, saturation, progress)
    if reject_artifacts:
        cols = _without_artifacts(sky_rows, std, cols, n_sigma, fwhm, meta)
    table = _star_table(frame, sky, cols, meta, box_side=box_side,
                        box_scale=box_scale, sky_rows=sky_rows)
    _warn_edge(table)
    return table


def _warn_edge(stars):
    """
    Warn once, naming them, of the detections at the frame's edge.

    Parameters
    ----------
    stars : `~astropy.table.QTable`
        The `find_stars` table, with its ``edge`` column and
        ``meta['n_edge_fitted']``; nothing is said when no row is at the
        edge.
    """
    ids = stars['id'][stars['edge']].tolist()
    if not ids:
        return
    shown = ', '.join(str(i) for i in ids[:10])
    more = f' and {len(ids) - 10} more' if len(ids) > 10 else ''
    fitted = stars.meta['n_edge_fitted']
    warnings.warn(f"{len(ids)} detection(s) at the frame's edge (column "
                  'edge): the frame cuts them, so their windowed centroids '
                  'are pulled inward (up to 0.7 pixels); positions of '
                  f'{fitted} refitted with the cut modelled; apertures '
                  'about them usually run off the frame (flag 1): id '
                  f'{shown}{more}', AstropyUserWarning, stacklevel=3)


def _without_artifacts(sky_rows, std, cols, n_sigma, fwhm, meta):
    """
    The detections that are not rings or spikes of a brighter star.

    They are compared on the frame smoothed at the detection kernel's FWHM
    (else the detections' median FWHM).

    Parameters
    ----------
    sky_rows : `~ccdphot_ext.detection.strips.SkyRows`
        The sky-subtracted frame.
    std : `~numpy.ndarray`
        The sky's per-pixel standard deviation (0-d or a map).
    cols : dict of `~numpy.ndarray`
        The detections' columns (as `_measure` gives them).
    n_sigma : float
        The detection threshold in sky sigmas.
    fwhm : float or None
        The detection kernel's FWHM (None: no smoothing).
    meta : dict
        The table's meta: ``n_rejected_artifacts`` is set in it.

    Returns
    -------
    cols : dict of `~numpy.ndarray`
        The columns without the artifacts.
    """
    if fwhm is None:
        fwhm = _median_fwhm(cols['fwhm'], None)
    parent = ring_or_spike(sky_rows, std, cols,
                           n_sigma * float(np.mean(std)), fwhm)
    artifact = parent >= 0
    meta['n_rejected_artifacts'] = int(artifact.sum())
    return {k: v[~artifact] for k, v in cols.items()}


def _meta(n_sigma, n_pixels, kernel, std, sky, **params):
    """
    The star table's ``meta``.

    Parameters
    ----------
    n_sigma : float
        The detection threshold in sky sigmas.
    n_pixels : int
        The least number of connected pixels.
    kernel : `~ccdphot_ext.detection.strips.Kernel` or None
        The smoothing kernel (its noise factor scales the threshold).
    std : `~numpy.ndarray`
        The sky's per-pixel standard deviation.
    sky : `~ccdphot_ext.SkyEstimate`
        The sky (its method is recorded).
    **params
        Other parameters to record.

    Returns
    -------
    meta : dict
        The parameters, the mean threshold in the data unit, the sky method
        and the package versions.
    """
    factor = 1.0 if kernel is None else kernel.factor
    return {'n_sigma': n_sigma, 'n_pixels': int(n_pixels), **params,
            'threshold': float(n_sigma * factor * np.mean(std)),
            'sky_method': sky.method, 'versions': versions()}


def _segments(sky_rows, std, n_sigma, kernel, n_pixels, deblend):
    """
    The sparse segmentation of the pixels above the threshold.

    Parameters
    ----------
    sky_rows, std
        As for `_without_artifacts`.
    n_sigma : float
        The threshold in sky sigmas (of the smoothed image's noise).
    kernel : `~ccdphot_ext.detection.strips.Kernel` or None
        The smoothing kernel (None: none).
    n_pixels : int
        The least number of connected pixels.
    deblend : bool
        False: strip by strip; True: the whole frame, deblended with
        photutils' `~photutils.segmentation.deblend_sources`.

    Returns
    -------
    segments : `~ccdphot_ext.detection.strips.Segments` or None
        None when nothing is detected.
    """
    def threshold_rows(y0, y1):
        noise = std[y0:y1] if std.ndim == 2 else std
        return n_sigma * (noise if kernel is None else noise * kernel.factor)

    if not deblend:
        return detect_segments(sky_rows, threshold_rows, kernel=kernel,
                               n_pixels=n_pixels)
    ny, halo = sky_rows.shape[0], 0 if kernel is None else kernel.half
    image, bad = sky_rows.rows(-halo, ny + halo)
    detection = image if kernel is None else kernel.apply(image)
    bad = bad[halo:halo + ny]
    # photutils.segmentation (scipy.signal, scipy.stats) only when needed
    from photutils.segmentation import deblend_sources, detect_sources

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NoDetectionsWarning)
        segm = detect_sources(detection, threshold_rows(0, ny), n_pixels,
                              mask=bad if bad.any() else None)
        if segm is None:
            return None
        segm = deblend_sources(detection, segm, n_pixels, progress_bar=False)
    segm.relabel_consecutive()
    return Segments.from_image(segm.data, int(segm.n_labels))


def _measure(sky_rows, segments, level, saturation, progress):
    """
    Every column of every source, from the sparse segmentation.

    Parameters
    ----------
    sky_rows : `~ccdphot_ext.detection.strips.SkyRows`
        The sky-subtracted frame.
    segments : `~ccdphot_ext.detection.strips.Segments`
        The sources.
    level : `~numpy.ndarray`
        The sky level (0-d or a map), added back to a peak to compare it
        with ``saturation``.
    saturation : float or None
        The saturation level in the data unit (None: nothing saturated).
    progress : bool or None
        Show a progress bar (None: for frames of at least 4096 x 4096).

    Returns
    -------
    cols : dict of `~numpy.ndarray`
        ``x``, ``y`` (windowed centroids, the moments' where that fails),
        ``flux``, ``peak``, ``peak_x``, ``peak_y``, ``area``, ``fwhm``,
        ``roundness``, ``sharpness`` and ``saturated``.
    """
    if progress is None:
        progress = math.prod(segments.shape) >= _PROGRESS_PIXELS
    m = segment_moments(segments, sky_rows.at)
    fwhm, roundness = shape_parameters(m)
    x, y, sharp = measure_strips(sky_rows, segments, m, fwhm,
                                 progress=progress)
    plain = ~(np.isfinite(x) & np.isfinite(y))  # windowed failed: moments
    x[plain], y[plain] = m['x'][plain], m['y'][plain]
    saturated = np.zeros(segments.n, dtype=bool)
    if saturation is not None:
        sky_at_peak = (level[m['peak_y'], m['peak_x']] if level.ndim == 2
                       else level)
        saturated = m['peak'] + sky_at_peak >= saturation
    return {'x': x, 'y': y, 'flux': m['flux'], 'peak': m['peak'],
            'peak_x': m['peak_x'], 'peak_y': m['peak_y'],
            'area': m['area'].astype(float), 'fwhm': fwhm,
            'roundness': roundness, 'sharpness': sharp,
            'saturated': saturated}


def _star_table(frame, sky, cols, meta, *, box_side, box_scale, sky_rows):
    """
    The star table: the detections sorted, the boxes sized from the
    star-like ones, the positions at the frame's edge refitted and the box
    checked.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    sky : `~ccdphot_ext.SkyEstimate`
        Its sky.
    cols : dict of `~numpy.ndarray`
        The detections' columns (as `_measure` gives them).
    meta : dict
        The table's meta so far (updated here).
    box_side : int or None
        The box side given (None: ``box_scale`` PSF FWHM).
    box_scale : float
        The box side in PSF FWHM.
    sky_rows : `~ccdphot_ext.detection.strips.SkyRows`
        The sky-subtracted frame.

    Returns
    -------
    stars : `~astropy.table.QTable`
        As `find_stars` returns it.

    Raises
    ------
    ValueError
        If the boxes would be larger than twice the frame's longer side.
    """
    keep = np.isfinite(cols['x']) & np.isfinite(cols['y'])
    order = np.argsort(-np.where(keep, cols['flux'], -np.inf),
                       kind='stable')
    order = order[keep[order]]
    c = {k: v[order] for k, v in cols.items()}
    like, psf = star_like(c['flux'], c['fwhm'], c['roundness'],
                          c['sharpness'], c['saturated'])
    if box_side is None and not like.any():
        psf, source = 1.0, 'the median FWHM of all detections'
        if c['fwhm'].size:
            psf = _median_fwhm(c['fwhm'], meta['fwhm'])
        if c['fwhm'].size and not np.isfinite(c['fwhm']).any():
            source = (f'the detection kernel ({psf:g} pixels FWHM): no '
                      'detection has a measurable FWHM')
        warnings.warn('no star-like detection (all sharp, elongated or '
                      f'saturated): the box size comes from {source}',
                      AstropyUserWarning, stacklevel=3)
    side = _box_side(box_side, box_scale, psf if box_side is None else 1.0)
    if side > _max_box_side(frame.shape):
        raise ValueError(f'box_scale {box_scale:g} times the PSF FWHM '
                         f'({psf:.3g} pixels) makes boxes of {side} pixels, '
                         f'more than {_max_box_side(frame.shape)} '
                         f'({_BOX_BOUND})')
    edge = _at_edge(c['x'], c['y'], c['fwhm'], psf, frame.shape)
    c['x'], c['y'], n_fitted = refit_edge(
        sky_rows, c['x'], c['y'], c['flux'],
        _edge_sigma(c['fwhm'], psf), edge)
    x0 = np.rint(c['x'] - (side - 1) / 2).astype(np.int64)
    y0 = np.rint(c['y'] - (side - 1) / 2).astype(np.int64)
    unit = 1.0 if frame.unit is None else frame.unit
    table = QTable({
        'id': np.arange(1, order.size + 1),
        'x_center': c['x'], 'y_center': c['y'],
        'flux': c['flux'] * unit, 'peak': c['peak'] * unit,
        'area': c['area'] * u.pix ** 2, 'fwhm': c['fwhm'] * u.pix,
        'roundness': c['roundness'], 'sharpness': c['sharpness'],
        'star_like': like, 'saturated': c['saturated'],
        'edge': edge,
        'box_x0': x0, 'box_x1': x0 + side, 'box_y0': y0, 'box_y1': y0 + side,
    })
    meta.update(box_side=side, psf_fwhm=None if not math.isfinite(psf)
                else round(psf, 4), n_star_like=int(like.sum()),
                n_edge=int(np.count_nonzero(edge)), n_edge_fitted=n_fitted)
    meta['box_check'] = check_box(frame, sky, c['x'], c['y'], c['flux'],
                                  like, side)
    table.meta.update(meta)
    return table


def _edge_sigma(fwhm, psf):
    """
    The sigma of each detection for the frame's edge.

    Parameters
    ----------
    fwhm : array_like
        The detections' own FWHMs (pixels; NaN where none).
    psf : float
        The PSF FWHM (pixels; NaN when unknown).

    Returns
    -------
    sigma : `~numpy.ndarray`
        Pixels: from the larger of the two FWHMs, at least 1 pixel FWHM.
    """
    width = np.fmax(np.asarray(fwhm, float), psf if math.isfinite(psf)
                    else np.nan)
    width = np.fmax(np.nan_to_num(width, nan=1.0), 1.0)
    return width / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def _at_edge(x, y, fwhm, psf, shape):
    """
    Whether each centroid lies within `EDGE_SIGMAS` sigmas of the frame's
    edge.

    Parameters
    ----------
    x, y : `~numpy.ndarray`
        The centroids (pixel ``i`` spans ``i - 0.5`` to ``i + 0.5``).
    fwhm : `~numpy.ndarray`
        The detections' FWHMs (pixels).
    psf : float
        The PSF FWHM (pixels), as for `_edge_sigma`.
    shape : tuple of int
        The frame's ``(ny, nx)``.

    Returns
    -------
    edge : `~numpy.ndarray` of bool
    """
    ny, nx = shape
    reach = EDGE_SIGMAS * _edge_sigma(fwhm, psf)
    distance = np.minimum(np.minimum(x + 0.5, nx - 0.5 - x),
                          np.minimum(y + 0.5, ny - 0.5 - y))
    return distance < reach


def _empty_table(unit, meta):
    """
    The star table of a frame with no detection.

    Parameters
    ----------
    unit : `~astropy.units.UnitBase` or None
        The data unit (of ``flux`` and ``peak``).
    meta : dict
        The table's meta so far (completed here).

    Returns
    -------
    stars : `~astropy.table.QTable`
        No rows, the columns of `find_stars`.
    """
    unit = 1.0 if unit is None else unit
    empty = np.zeros(0)
    table = QTable({
        'id': np.zeros(0, dtype=np.int64), 'x_center': empty,
        'y_center': empty, 'flux': empty * unit, 'peak': empty * unit,
        'area': empty * u.pix ** 2, 'fwhm': empty * u.pix,
        'roundness': empty, 'sharpness': empty,
        'star_like': np.zeros(0, dtype=bool),
        'saturated': np.zeros(0, dtype=bool),
        'edge': np.zeros(0, dtype=bool),
        **{name: np.zeros(0, dtype=np.int64)
           for name in ('box_x0', 'box_x1', 'box_y0', 'box_y1')}})
    meta.update(box_side=None, psf_fwhm=None, n_star_like=0, box_check=None,
                n_edge=0, n_edge_fitted=0)
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
        raise ValueError(f'stars: empty or reversed boxes ({widths[0]} x '
                         f'{heights[0]} pixels): box_x1 must exceed box_x0, '
                         'and box_y1 must exceed box_y0')
    positions = np.column_stack([(x0 + x1 - 1) / 2.0, (y0 + y1 - 1) / 2.0])
    return BoxAperture(positions, float(widths[0]), float(heights[0]))


def not_star_like(stars):
    """
    The ids of the detections that are neither star-like nor saturated, by
    what sets them apart.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        A `find_stars` table (or one read back from a file, with its meta).

    Returns
    -------
    reasons : dict
        ``{reason: [id, ...]}`` for the reasons that occur, in this order:
        ``'sharper than a star (a cosmic-ray hit, a hot pixel?)'``
        (sharpness above 0.4), ``'elongated (a blend, a trail, a bad
        column?)'`` (roundness above 0.5), ``'wider than the stars'`` (FWHM
        above the PSF's), ``'narrower than the stars (a faint star?)'``.
        Saturated stars are stars (their photometry is flagged 4): left
        out.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate, find_stars
    >>> from ccdphot_ext.detection.findstars import not_star_like
    >>> from ccdphot_ext.datasets.sample import render_stars
    >>> rng = np.random.default_rng(2)
    >>> img = rng.normal(100.0, 5.0, (80, 90))
    >>> img += render_stars(img.shape, [20.3, 61.8], [30.6, 50.2],
    ...                     [20000.0, 8000.0])
    >>> img[60, 10] += 3000.0  # a cosmic-ray hit
    >>> not_star_like(find_stars(img, SkyEstimate.from_image(img)))
    {'sharper than a star (a cosmic-ray hit, a hot pixel?)': [3]}
    """
    from .boxsize import ROUNDNESS_MAX, SHARPNESS_MAX

    odd = ~np.asarray(stars['star_like'], bool) & ~np.asarray(
        stars['saturated'], bool)
    fwhm = np.asarray(getattr(stars['fwhm'], 'value', stars['fwhm']), float)
    psf = stars.meta.get('psf_fwhm')
    psf = np.nan if psf is None else float(psf)
    sharp = odd & (np.asarray(stars['sharpness'], float) > SHARPNESS_MAX)
    long = odd & ~sharp & (np.asarray(stars['roundness'], float)
                           > ROUNDNESS_MAX)
    rest = odd & ~sharp & ~long
    with np.errstate(invalid='ignore'):
        wide = rest & (fwhm > psf)
    ids = np.asarray(stars['id'])
    reasons = {
        'sharper than a star (a cosmic-ray hit, a hot pixel?)': sharp,
        'elongated (a blend, a trail, a bad column?)': long,
        'wider than the stars': wide,
        'narrower than the stars (a faint star?)': rest & ~wide}
    return {text: ids[which].tolist() for text, which in reasons.items()
            if which.any()}


def box_flags(stars):
    """
    `FLAG_SMALL_APERTURE` for each row whose suggested box failed its check.

    `find_stars` checks the box it suggests against the curve of growth of
    the frame's bright isolated stars (``stars.meta['box_check']``); when
    the box holds less than 90% of the plateau, every row's flux measured
    in it is an underestimate. OR the result into the ``flags`` of the
    photometry of `star_boxes`.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        A `find_stars` table (or one read back from a file, with its meta).

    Returns
    -------
    flags : ndarray of int32
        `FLAG_SMALL_APERTURE` (128) or 0, one per row.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate, box_flags, find_stars
    >>> from ccdphot_ext.datasets.sample import render_stars
    >>> rng = np.random.default_rng(2)
    >>> img = rng.normal(100.0, 5.0, (80, 90))
    >>> img += render_stars(img.shape, [20.3, 61.8], [30.6, 50.2],
    ...                     [20000.0, 8000.0], sigma=2.5)
    >>> sky = SkyEstimate.from_image(img)
    >>> box_flags(find_stars(img, sky)).tolist()
    [0, 0]
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter('always')
    ...     small = find_stars(img, sky, box_side=5)
    >>> round(small.meta['box_check']['fraction'], 2), box_flags(small).tolist()
    (0.57, [128, 128])
    """
    check = getattr(stars, 'meta', {}).get('box_check') or {}
    bit = FLAG_SMALL_APERTURE if check.get('passed') is False else 0
    return np.full(len(stars), bit, dtype=np.int32)
