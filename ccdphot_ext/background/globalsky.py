# Licensed under a 3-clause BSD style license - see LICENSE
"""
The one-level sky of a whole frame (internal; `SkyEstimate.from_image`
calls it): a source mask and the statistics, without sorting or copying a
large frame.

Source mask (``mask_sources=True``, the default)
    The frame is averaged in blocks of `MASK_BIN` x `MASK_BIN` pixels; in
    the binned image, segments of at least `MASK_NPIXELS` connected blocks
    (8-connected, as photutils' `~photutils.segmentation.detect_sources`)
    more than `MASK_NSIGMA` binned standard deviations above a coarse local
    background, holding at least one block above `MASK_SEED`, are found
    with `scipy.ndimage.label` and dilated by
    `MASK_DILATE` blocks. Segments as far *below* the level are masked too:
    on pure noise the mask then removes as many low as high fluctuations,
    so that masking does not bias the level low (a one-sided mask would,
    by a fraction of its error on large frames). Averaging
    16 pixels makes the block noise 4 times smaller, so the faint wings of
    stars, which a sigma clip keeps and which bias the level high, are
    masked; the binned image has 16 times fewer pixels, so this costs a
    small fraction of one pass over the frame. In a crowded frame (the
    mask covers `CROWDED_FRACTION` of it) segments are also searched in the
    binned image filtered with a Gaussian of `MASK_FILTER` blocks (scaled
    to unit noise): a faint star whose light falls on the corner of four
    blocks is missed by each block alone but found by the filter (300 stars
    of 1000 to 3000 ADU on a 512 x 512 frame left the level 0.3 ADU high,
    4.5 times its error, with the blocks alone; 0.02 ADU with the filter).
    Stars too faint to be found this way (below about a third of the sky
    noise at their peak) still lift the level.

Large frames (more than `SUBSAMPLE_PIXELS` usable pixels, ``'sigma_clip'``)
    `~astropy.stats.sigma_clip` runs on a strided subsample (every
    ``s``-th row and column) of about `SUBSAMPLE_FRACTION` of the usable
    pixels (at least `SUBSAMPLE_MIN`, at most `SUBSAMPLE_PIXELS`, so its
    memory scales with the frame) and gives the clip bounds; one pass over
    the whole frame, in bands of rows, then sums the pixels inside the
    bounds. The level is their mean, ``std`` their
    standard deviation times the clip correction, and the error of the level
    is that of a clipped mean with a window whose centre (the subsample's
    median) has its own error:
    ``error_on_mean**2 = std_kept**2 / n + t**2 (pi / 2) std**2 / n_sub``
    with ``t = 2 c phi(c) / P`` the change of a clipped mean per unit shift
    of the window (0.0267 at c = 3).
    Smaller frames are clipped whole with `~astropy.stats.sigma_clip`, as
    before.
"""

import functools
import math
import warnings

import numpy as np
from astropy.stats import mad_std, sigma_clip
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage

from .estimators import (
    clip_factors,
    estimator_efficiency,
    window_shift_factor,
)

__all__ = ['BackgroundVariation']

#: Usable pixels above which a ``'sigma_clip'`` sky clips a subsample,
#: and the largest subsample.
SUBSAMPLE_PIXELS = 2 ** 20
#: The subsample holds about this fraction of the usable pixels (at least
#: `SUBSAMPLE_MIN`), so that its memory scales with the frame.
SUBSAMPLE_FRACTION = 1 / 32
#: Smallest subsample (pixels) when `SUBSAMPLE_FRACTION` gives fewer.
SUBSAMPLE_MIN = 2 ** 16
#: Block size (pixels per side) of the binned image the source mask is
#: detected on.
MASK_BIN = 4
#: Detection threshold in binned standard deviations.
MASK_NSIGMA = 2.0
#: A segment is kept when one of its blocks exceeds this many binned
#: standard deviations (a faint wing is masked with its star's core; noise
#: rarely makes such a seed).
MASK_SEED = 4.0
#: Connected binned blocks a source must have.
MASK_NPIXELS = 3
#: Dilation of the detected segments, in binned blocks.
MASK_DILATE = 3
#: The binned image is also filtered with a Gaussian of this many blocks
#: (a matched filter for a star whose light falls on a few blocks), and
#: segments found in it at `FILTER_NSIGMA` with a block above `FILTER_SEED`
#: (its noise is correlated from block to block: higher thresholds keep
#: its false detections as rare as the binned image's).
MASK_FILTER = 0.7
FILTER_NSIGMA = 2.0
FILTER_SEED = 4.0
FILTER_CLIP = 4.0
#: The filtered copy is searched in crowded frames, whose binned mask
#: covers at least `CROWDED_FRACTION` of the blocks (there the light of
#: faint stars adds up to a bias of the level; in sparse frames it does
#: not), when the binned image has at least `FILTER_MIN_BLOCKS` blocks a
#: side (fewer give too noisy a binned sigma).
CROWDED_FRACTION = 0.2
FILTER_MIN_BLOCKS = 32
#: Cell of the local background the source mask is detected against, in
#: blocks (64 pixels, as Source Extractor's default mesh).
MESH = 16
#: Fraction of usable pixels below which the unmasked sky is doubtful.
MIN_UNMASKED_FRACTION = 0.2
#: Frame bytes (as float64) per band of rows in a full pass, at most
#: `BAND_FRACTION` of the frame.
BAND_BYTES = 2 ** 22
BAND_FRACTION = 1 / 32


class _Usable:
    """Which pixels may enter the sky: finite, unmasked, not a source."""

    def __init__(self, frame):
        self.frame = frame
        self.blocks = None  # binned source mask, or None

    def rows(self, lo, hi, cols=slice(None), step=1):
        """Boolean usable map of rows ``lo:hi:step`` and columns ``cols``."""
        frame = self.frame
        rows = slice(lo, hi, step)
        good = np.isfinite(frame.data[rows, cols])
        if frame.mask is not None:
            good &= ~frame.mask[rows, cols]
        if frame.uncertainty is not None:
            good &= np.isfinite(frame.uncertainty[rows, cols])
        if self.blocks is not None and step == 1 and cols == slice(None):
            top = lo // MASK_BIN
            src = self.blocks[top:-(-hi // MASK_BIN)]
            src = np.repeat(np.repeat(src, MASK_BIN, axis=0), MASK_BIN, axis=1)
            start = lo - top * MASK_BIN
            good &= ~src[start:start + hi - lo, :frame.shape[1]]
        elif self.blocks is not None:
            ys = np.arange(frame.shape[0])[rows] // MASK_BIN
            xs = np.arange(frame.shape[1])[cols] // MASK_BIN
            good &= ~self.blocks[ys[:, None], xs[None, :]]
        return good

    def bands(self):
        ny, nx = self.frame.shape
        band = min(BAND_BYTES, int(8 * ny * nx * BAND_FRACTION))
        step = max(MASK_BIN, band // (8 * nx) // MASK_BIN * MASK_BIN)
        for lo in range(0, ny, step):
            yield lo, min(lo + step, ny)

    def count_bad(self):
        """Pixels not finite or masked (sources not counted)."""
        blocks, self.blocks = self.blocks, None
        n_good = sum(int(np.count_nonzero(self.rows(lo, hi)))
                     for lo, hi in self.bands())
        self.blocks = blocks
        return self.frame.data.size - n_good


def _subsample(usable, n_target):
    """Usable pixels (and sigmas) on a grid of every ``s``-th row/column."""
    ny, nx = usable.frame.shape
    stride = max(1, int(math.ceil(math.sqrt(ny * nx / n_target))))
    sub = (slice(None, None, stride), slice(None, None, stride))
    good = usable.rows(0, ny, sub[1], stride)
    values = usable.frame.data[sub][good].astype(np.float64)
    unc = (None if usable.frame.uncertainty is None
           else usable.frame.uncertainty[sub][good].astype(np.float64))
    return values, unc, stride


def source_blocks(frame, usable):
    """Binned source mask: True for blocks holding (or near) a source;
    and the `BackgroundVariation` of the coarse local background it is
    detected against (None when no block holds a usable pixel).
    """
    mean, counts = _binned(frame, usable)
    if not np.any(counts > 0):
        return np.zeros(mean.shape, dtype=bool), None
    # residual from a smooth local background, scaled to one pixel's noise
    local = _local_background(mean)
    variation = BackgroundVariation(local, frame.data.shape)
    mean -= local
    del local
    np.sqrt(counts, out=counts)
    mean *= counts
    del counts
    sample = mean[::2, ::2] if mean.size > 2 ** 20 else mean
    sigma = mad_std(sample[np.isfinite(sample)])
    if not sigma > 0:
        return np.zeros(mean.shape, dtype=bool), variation
    mean /= sigma
    np.nan_to_num(mean, copy=False, nan=0.0)
    # segments above +MASK_NSIGMA, and as many below -MASK_NSIGMA: on pure
    # noise the mask then takes out as many low as high fluctuations and
    # leaves the level unbiased; the same in the matched-filtered copy
    found = (_segments(mean > MASK_NSIGMA, mean > MASK_SEED)
             | _segments(mean < -MASK_NSIGMA, mean < -MASK_SEED))
    mask = _dilated(found)
    if (min(mean.shape) >= FILTER_MIN_BLOCKS
            and np.mean(mask) >= CROWDED_FRACTION):
        mean = _filtered(mean)
        found |= (_segments(mean > FILTER_NSIGMA, mean > FILTER_SEED)
                  | _segments(mean < -FILTER_NSIGMA, mean < -FILTER_SEED))
        mask = _dilated(found)
    return mask, variation


def _dilated(found):
    """The segments grown by `MASK_DILATE` blocks."""
    if not MASK_DILATE:
        return found
    return ndimage.binary_dilation(found, structure=np.ones((3, 3), bool),
                                   iterations=MASK_DILATE)


def _filtered(significance):
    """The binned significance map filtered with a Gaussian of
    `MASK_FILTER` blocks and scaled to unit noise. Blocks beyond
    `FILTER_CLIP` are clipped there first, and those standing alone (six
    times their brightest neighbour: a cosmic ray or a hot pixel, or the
    core of a star the binned map finds anyway) are left out, so that they
    do not spread into segments."""
    size = np.ones((3, 3), dtype=bool)
    size[1, 1] = False
    high = ndimage.maximum_filter(significance, footprint=size,
                                  mode='constant')
    low = ndimage.minimum_filter(significance, footprint=size,
                                 mode='constant')
    alone = (((significance > FILTER_CLIP) & (high < significance / 6.0))
             | ((significance < -FILTER_CLIP) & (low > significance / 6.0)))
    clipped = np.clip(np.where(alone, 0.0, significance), -FILTER_CLIP,
                      FILTER_CLIP)
    smooth = ndimage.gaussian_filter(clipped, MASK_FILTER, mode='constant')
    smooth /= _filter_noise()
    return smooth


@functools.cache
def _filter_noise():
    """The standard deviation of `MASK_FILTER`-filtered unit white noise."""
    impulse = np.zeros((17, 17))
    impulse[8, 8] = 1.0
    return float(np.sqrt(np.sum(ndimage.gaussian_filter(
        impulse, MASK_FILTER, mode='constant') ** 2)))


class BackgroundVariation:
    """
    How far the background under each pixel is from its median over the
    frame: the coarse local background that a whole-frame sky
    (`~ccdphot_ext.SkyEstimate.from_image`) keeps as its
    ``background_variation``.

    The background is the median of cells of 64 x 64 pixels (blocks of
    4 x 4 pixels averaged, stars masked), median
    filtered over 3 x 3 cells and interpolated bilinearly between cell
    centres. `~ccdphot_ext.measure` and `~ccdphot_ext.photometer` warn
    where this variation biases a flux measured against the whole-frame
    level; `~ccdphot_ext.gradient_check` reports it (``map_offset``).

    Parameters
    ----------
    local : 2-D array_like
        The coarse background (data unit per pixel) on blocks of 4 x 4
        pixels, block ``(i, j)`` covering pixels ``[4 * i:4 * i + 4,
        4 * j:4 * j + 4]``.
    shape : tuple of int, optional
        The shape of the frame it was measured on: the variation describes
        that frame only (a sky estimated on a cutout says nothing of the
        frame around it).

    Attributes
    ----------
    offsets : 2-D ndarray
        ``local`` minus its median over the frame.
    shape : tuple of int or None
        The frame's shape, as given.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> y, x = np.mgrid[:256, :256]
    >>> img = np.random.default_rng(1).normal(100.0 + 0.05 * x, 3.0)
    >>> sky = SkyEstimate.from_image(img)
    >>> offset = sky.background_variation([10.0, 245.0], [128.0, 128.0])
    >>> bool(offset[0] < -3.0 < 3.0 < offset[1])
    True
    """

    def __init__(self, local, shape=None):
        self.offsets = local - np.nanmedian(local)
        self.shape = None if shape is None else tuple(shape)

    def __call__(self, x, y):
        """The variation (data unit per pixel) at pixel positions ``x``,
        ``y`` (scalars or arrays, broadcast); positions off the frame take
        the nearest block's."""
        by, bx = self.offsets.shape
        iy = np.clip(np.floor((np.asarray(y) + 0.5) / MASK_BIN).astype(int),
                     0, by - 1)
        ix = np.clip(np.floor((np.asarray(x) + 0.5) / MASK_BIN).astype(int),
                     0, bx - 1)
        return self.offsets[iy, ix].astype(float)

    def __repr__(self):
        return (f'<coarse background variation, {MASK_BIN * MESH} px cells: '
                f'{np.nanmin(self.offsets):+.4g} to '
                f'{np.nanmax(self.offsets):+.4g}>')


def _binned(frame, usable):
    """Mean (NaN where empty) and count of usable pixels per block."""
    ny, nx = frame.shape
    by, bx = -(-ny // MASK_BIN), -(-nx // MASK_BIN)
    sums = np.empty((by, bx))
    counts = np.empty((by, bx), dtype=np.float32)  # at most MASK_BIN**2
    cols = np.arange(0, nx, MASK_BIN)
    for lo, hi in usable.bands():  # bands start on a block row
        good = usable.rows(lo, hi)
        rows = np.arange(0, hi - lo, MASK_BIN)
        block = np.add.reduceat(np.where(good, frame.data[lo:hi], 0.0),
                                rows, axis=0)
        out = slice(lo // MASK_BIN, lo // MASK_BIN + rows.size)
        sums[out] = np.add.reduceat(block, cols, axis=1)
        counts[out] = np.add.reduceat(
            np.add.reduceat(good, rows, axis=0, dtype=np.float32),
            cols, axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        sums /= counts
    return sums.astype(np.float32), counts


def _local_background(mean):
    """
    Median of the block means in cells of `MESH` x `MESH` blocks (the last
    row and column of cells may be smaller), median filtered over 3 x 3
    cells and interpolated bilinearly between cell centres (a coarse
    Background2D), so that gradients are not taken for sources.
    """
    by, bx = mean.shape
    my, mx = -(-by // MESH), -(-bx // MESH)
    padded = np.full((my * MESH, mx * MESH), np.nan, dtype=np.float32)
    padded[:by, :bx] = mean
    cells = padded.reshape(my, MESH, mx, MESH).transpose(0, 2, 1, 3)
    cells = cells.reshape(my, mx, -1)
    whole = np.all(np.isfinite(cells), axis=-1)
    grid = np.empty((my, mx), dtype=np.float32)
    grid[whole] = np.median(cells[whole], axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN cells
        grid[~whole] = np.nanmedian(cells[~whole], axis=-1)
    del padded, cells
    if np.isnan(grid).any():
        grid[np.isnan(grid)] = np.nanmedian(grid)
    grid = ndimage.median_filter(grid, size=3, mode='nearest')
    return _bilinear(grid, (by, bx))


def _bilinear(grid, shape):
    """Interpolate cell-centre values ``grid`` onto ``shape`` blocks,
    linearly between cell centres and extrapolated beyond the outer ones."""
    def axis_weights(n_out, n_in):
        starts = np.arange(n_in) * MESH
        centres = (starts + np.minimum(starts + MESH, n_out) - 1) / 2.0
        pos = np.arange(n_out, dtype=float)
        i0 = np.clip(np.searchsorted(centres, pos) - 1, 0, max(n_in - 2, 0))
        i1 = np.minimum(i0 + 1, n_in - 1)
        span = np.where(i1 > i0, centres[i1] - centres[i0], 1.0)
        frac = np.where(i1 > i0, (pos - centres[i0]) / span, 0.0)
        return i0, i1, frac.astype(np.float32)
    y0, y1, fy = axis_weights(shape[0], grid.shape[0])
    x0, x1, fx = axis_weights(shape[1], grid.shape[1])
    rows = grid[y0] * (1 - fy[:, None]) + grid[y1] * fy[:, None]
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx


def _segments(found, seeds):
    """The 8-connected segments of ``found`` of at least `MASK_NPIXELS`
    blocks that hold a ``seeds`` block."""
    labels, n_found = ndimage.label(found, structure=np.ones((3, 3), bool))
    if n_found:
        sizes = np.bincount(labels.ravel(), minlength=n_found + 1)
        seeded = np.zeros(n_found + 1, dtype=bool)
        seeded[labels[seeds & found]] = True
        drop = (sizes < MASK_NPIXELS) | ~seeded
        drop[0] = True  # the background
        found[drop[labels]] = False
    return found


def global_sky(frame, *, method, sigma, maxiters, mask_sources):
    """
    Level, scatter and error of the level of a whole frame.

    Returns a dict with ``level``, ``std``, ``n_pix``, ``error_on_mean``
    (None unless an uncertainty map gives it), ``efficiency``, ``n_bad``,
    ``meta`` and ``variation`` (a `BackgroundVariation`, or None).
    """
    usable = _Usable(frame)
    n_total = frame.data.size
    n_bad = usable.count_bad()
    if n_bad == n_total:
        raise ValueError('data has no finite, unmasked pixel to estimate '
                         'the sky from')
    meta = {'method': method, 'n_excluded_bad': n_bad,
            'mask_sources': bool(mask_sources)}
    variation = None
    if mask_sources:
        blocks, variation = source_blocks(frame, usable)
        n_masked = _mask_sources(frame, usable, blocks, n_bad, meta)
    else:
        n_masked = 0
        mean = _binned(frame, usable)[0]
        if np.isfinite(mean).any():
            variation = BackgroundVariation(_local_background(mean),
                                            frame.data.shape)
        del mean
    n_usable = n_total - n_bad - n_masked
    if method == 'sigma_clip' and n_usable > SUBSAMPLE_PIXELS:
        n_sub = min(SUBSAMPLE_PIXELS,
                    max(int(n_usable * SUBSAMPLE_FRACTION), SUBSAMPLE_MIN))
        out = _clip_large(frame, usable, sigma, maxiters, meta, n_sub)
    else:
        out = _exact(frame, usable, method, sigma, maxiters, meta)
    out.update(n_bad=n_bad, meta=meta, variation=variation)
    return out


def _mask_sources(frame, usable, blocks, n_bad, meta):
    """Set ``usable.blocks`` to the source ``blocks``; return the usable
    pixels they mask."""
    usable.blocks = blocks
    n_masked = frame.data.size - n_bad - sum(
        int(np.count_nonzero(usable.rows(lo, hi))) for lo, hi in usable.bands())
    n_usable = frame.data.size - n_bad
    if n_masked == n_usable:
        usable.blocks = None
        warnings.warn('the source mask covers the whole frame: the sky is '
                      'estimated without it', AstropyUserWarning,
                      stacklevel=4)
        meta['source_mask'] = 'dropped: it covered every usable pixel'
        return 0
    if n_masked > (1 - MIN_UNMASKED_FRACTION) * n_usable:
        warnings.warn(f'sources cover {n_masked / n_usable:.0%} of the '
                      'frame: the global sky rests on few pixels and may be '
                      'biased by the sources; consider a local sky (annuli) '
                      'or a background map', AstropyUserWarning, stacklevel=4)
    meta['source_mask'] = (
        f'8-connected segments on the {MASK_BIN}x{MASK_BIN}-binned '
        f'frame at {MASK_NSIGMA} binned sigma with a block above '
        f'{MASK_SEED}, npixels={MASK_NPIXELS}, '
        f'dilated by {MASK_DILATE} blocks (as many low segments masked)')
    meta['n_masked_sources'] = n_masked
    return n_masked


def _exact(frame, usable, method, sigma, maxiters, meta):
    """All usable pixels in memory: the plain estimators."""
    ny = frame.shape[0]
    if usable.blocks is None and meta['n_excluded_bad'] == 0:
        values = frame.data.ravel()
        unc = (None if frame.uncertainty is None
               else frame.uncertainty.ravel())
    else:
        good = usable.rows(0, ny)
        values = frame.data[good]
        unc = None if frame.uncertainty is None else frame.uncertainty[good]
    values = values.astype(np.float64, copy=False)
    keep = None
    if method == 'sigma_clip':
        clipped = sigma_clip(values, sigma=sigma, maxiters=maxiters,
                             cenfunc='median', stdfunc='std',
                             masked=True, copy=False)
        keep = ~np.ma.getmaskarray(clipped)
        kept = values[keep]
        std_factor, _ = clip_factors(sigma)
        level, std, n_pix = kept.mean(), kept.std() * std_factor, kept.size
        meta.update(sigma=sigma, maxiters=maxiters,
                    n_clipped=int(values.size - n_pix),
                    std_factor=std_factor)
    elif method == 'mean':
        level, std, n_pix = values.mean(), values.std(), values.size
    else:  # robust, as the level: 1.4826 * median absolute deviation
        level, std, n_pix = np.median(values), mad_std(values), values.size
    k = estimator_efficiency(method, sigma)
    error_on_mean = None
    if unc is not None:
        if keep is not None:
            unc = unc[keep]
        error_on_mean = (math.sqrt(np.sum(unc.astype(np.float64) ** 2))
                         / unc.size)
    return {'level': level, 'std': std, 'n_pix': n_pix,
            'error_on_mean': error_on_mean, 'efficiency': k}


def _clip_large(frame, usable, sigma, maxiters, meta, n_target):
    """Bounds from a clipped subsample of about ``n_target`` pixels, then
    one pass over the frame."""
    values, _, stride = _subsample(usable, n_target)
    clipped, lo, hi = sigma_clip(values, sigma=sigma, maxiters=maxiters,
                                 cenfunc='median', stdfunc='std',
                                 masked=False, return_bounds=True)
    clipped = clipped[np.isfinite(clipped)]  # clipped pixels are NaN
    centre = float(np.median(clipped))
    n = s1 = s2 = su = 0.0
    for top, bottom in usable.bands():
        data = frame.data[top:bottom]
        keep = usable.rows(top, bottom)
        keep &= (data >= lo) & (data <= hi)
        d = np.subtract(data, centre, dtype=np.float64, where=keep,
                        out=np.zeros(data.shape))
        n += np.count_nonzero(keep)
        s1 += float(np.sum(d))
        s2 += float(np.sum(d * d))
        if frame.uncertainty is not None:
            unc = np.where(keep, frame.uncertainty[top:bottom], 0.0)
            su += float(np.sum(unc * unc))
    mean = s1 / n
    std_kept = math.sqrt(max(s2 / n - mean * mean, 0.0))
    std_factor, _ = clip_factors(sigma)
    std = std_kept * std_factor
    shift = window_shift_factor(sigma)
    n_sub = int(clipped.size)
    centre_var = shift ** 2 * (math.pi / 2.0) * std ** 2 / n_sub
    if frame.uncertainty is not None:
        error_on_mean = math.sqrt(su / n ** 2 + centre_var)
    else:
        error_on_mean = math.sqrt(std_kept ** 2 / n + centre_var)
    k = error_on_mean * math.sqrt(n) / std if std > 0 else 1.0
    meta.update(sigma=sigma, maxiters=maxiters, std_factor=std_factor,
                n_clipped=int(frame.data.size - meta['n_excluded_bad']
                              - meta.get('n_masked_sources', 0) - n),
                clip_bounds=(float(lo), float(hi)), n_subsample=n_sub,
                subsample=f'every {stride}th row and column '
                          f'({n_sub} pixels kept) for the clip bounds')
    return {'level': centre + mean, 'std': std, 'n_pix': int(n),
            'error_on_mean': (error_on_mean if frame.uncertainty is not None
                              else None),
            'efficiency': k}
