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
    by a fraction of its error on large frames); but not those of
    `LOW_SKY_BLOCKS` blocks or more, the sky's own low ground. Averaging
    16 pixels makes the block noise 4 times smaller, so the faint wings of
    stars, which a sigma clip keeps and which bias the level high, are
    masked; the binned image has 16 times fewer pixels, so this costs a
    small fraction of one pass over the frame. In a crowded frame (the
    mask covers `CROWDED_FRACTION` of it) segments are also searched in the
    binned image filtered with a Gaussian of `MASK_FILTER` blocks (scaled
    to unit noise): a faint star whose light falls on the corner of four
    blocks is missed by each block alone but found by the filter (new
    segments only: around the stars already found the filter would only
    widen the mask; and high ones only: in a crowded frame the stars lift
    the coarse local background, so that low segments are sky) (300 stars
    of 1000 to 3000 ADU on a 512 x 512 frame left the level 0.3 ADU high,
    4.5 times its error, with the blocks alone; 0.04 ADU with the filter).
    A crowded frame is then searched once more with a matched filter at
    twice that resolution (`matched_blocks`): stars of 700-1500 ADU that
    the blocks missed, and parts of stars that a segment's edge cut off
    (the same frames: 0.00 ADU, with the gain). Stars too faint to be found
    this way (below about a fifth of the sky noise at their peak) still
    lift the level.

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

import contextlib
import contextvars
import copy
import dataclasses
import functools
import math
import warnings

import numpy as np
from astropy.stats import mad_std, sigma_clip
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage

from ..utils.inputs import (
    pixel_coordinates,
    positive_scalar,
    power_of_two_scale,
)
from ..utils.numbers import check_shape, positive_integer, scale_array
from ..utils.stats import MAD_TO_STD, surface_design, weighted_lstsq
from .estimators import (
    clip_factors,
    estimator_efficiency,
    is_digitised,
    median,
    median_efficiency,
    third_window,
    window_shift_factor,
    window_statistics,
)
from .noisevariation import NoiseAccumulator
from .rowclip import clip_rows

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
#: The `BackgroundVariation`'s cells leave out the source mask shrunk by
#: ``MASK_DILATE - MAP_MASK_DILATE`` blocks: the segments grown by this
#: many, which keeps their stars' wings out of the cells and more of their
#: blocks in (on 256 x 256 frames vignetted by 1% with a grid of stars,
#: the whole mask left the map's cells 2 to 2.8 times a whole cell's
#: error, and the rows it biased unflagged).
MAP_MASK_DILATE = 1
#: A segment below the coarse local background of at least this many
#: binned blocks is not masked: the mask takes out low segments to
#: balance the noise's highs, and the noise makes none so large (at most
#: 11 blocks on 20 frames of 256 x 256 pixels of white noise and of noise
#: smoothed by Gaussians of 2 to 4 pixels); a large one is the sky's own
#: low ground (a vignette's corners, a halo's outskirts, which fall away
#: faster than the coarse local background follows; corners 1, 2 and 4
#: pixel standard deviations down made segments of 8-36, 55-73 and
#: 96-107 blocks). Masked, it lifted the level above the frame's sky:
#: corners 2, 4 and 8 standard deviations down on 256 x 256 frames put it
#: 26, 62 and 128 times its error above the true sky's mean (-0.2, 0.0
#: and 1.4 with them kept); on astropy's scan of NGC 1316 (``comp.fits``,
#: a galaxy's halo over the whole frame) four segments of 509 blocks in
#: its corners put it 12 data units (3.8 pixel standard deviations) above
#: the mean of its blank pixels, and the blank boxes' sums against it
#: scattered 0.77, 0.78 and 0.58 times their errors (3, 7 and 11 px, all
#: rows): 1.01, 1.02 and 0.91 with them kept.
LOW_SKY_BLOCKS = 24
#: A segment of at least this many binned blocks (a quarter of a map
#: cell's) ...
EXTENDED_BLOCKS = 64
#: ... and at least this many per star in it (a peak above `FAINT_PEAK`
#: binned standard deviations, brighter than its 3 x 3 neighbours) is
#: extended light, a glow or a large galaxy, which the
#: `BackgroundVariation` keeps in its cells: taken out with the stars, a
#: glow of 20 ADU and 25 px would leave the map's cells flat. The
#: segments of 200 stars of 10**3 to 10**4.5 ADU blended on a 256 x 256
#: frame of 100 ADU hold 5 to 8 blocks per peak; a glow of 10 ADU and 25
#: px, with the stars on it, 24 to 58.
EXTENDED_PER_PEAK = 16
#: Where that growth covers more than `OVERGROWN_MASK` of the frame while
#: the segments cover less than `OVERGROWN_SEGMENTS`, a segment whose
#: brightest block is below each of `GROW_PEAKS` binned standard
#: deviations is grown by the blocks of `GROW_BLOCKS` instead (a faint
#: star's wing is below the noise a block or two beyond its segment's
#: edge), and the matched filter's regions (`matched_blocks`) take cells
#: above `TRIMMED_MATCHED_NSIGMA` (a smoothed cell draws on the pixels of
#: the blocks next to its own, so that a region grown by one block takes
#: out the noise's highs from the sky beyond it: at 2 sigma the 64 stars
#: below left that sky 0.9 of its error low). The 64 stars of 20 to 400 e-
#: of a 192 x 192 frame on a 2 e- sky, 24 px apart, whose light covers 13%
#: of it, found in 8% of its blocks, were masked with 83-89% of it: the
#: sky left was that around the stars the mask missed, and the level read
#: +3 of its errors high.
#: Only a frame of faint segments is so grown: fewer than
#: `OVERGROWN_BRIGHT` of them reach the first of `GROW_PEAKS` (the faint
#: sky's frames: none; crowded frames of brighter stars, whose 3-block
#: growth keeps their wings and the stars near them out of the sky and
#: of a Background2D map's blank sky, 12-85%).
OVERGROWN_MASK = 0.5
OVERGROWN_SEGMENTS = 0.125
OVERGROWN_BRIGHT = 0.05
GROW_PEAKS = (30.0, 300.0)
GROW_BLOCKS = (1, 2)
TRIMMED_MATCHED_NSIGMA = 2.5
#: The binned image is also filtered with a Gaussian of this many blocks
#: (a matched filter for a star whose light falls on a few blocks), and
#: segments found in it at `FILTER_NSIGMA` with a block above `FILTER_SEED`
#: (its noise is correlated from block to block: higher thresholds keep
#: its false detections as rare as the binned image's).
MASK_FILTER = 0.7
FILTER_NSIGMA = 2.0
FILTER_SEED = 4.0
FILTER_CLIP = 4.0
#: Pixels per strip of rows of `_gaussian`.
FILTER_STRIP_PIXELS = 2 ** 17
#: The filtered copy is searched in crowded frames (`is_crowded`), whose
#: binned mask covers at least `CROWDED_FRACTION` of the blocks (there the
#: light of faint stars adds up to a bias of the level; in sparse frames
#: it does not), when the binned image has at least `FILTER_MIN_BLOCKS`
#: blocks a side (fewer give too noisy a binned sigma).
CROWDED_FRACTION = 0.2
FILTER_MIN_BLOCKS = 32
#: In a crowded frame the sky is searched once more, at twice the binned
#: mask's resolution (cells of 2 x 2 pixels), in the frame filtered with a
#: Gaussian of `MATCHED_SIGMA` pixels (a matched filter for stars of about
#: that width; 10-20% less signal-to-noise for stars 1.5 times narrower or
#: wider): the 8-connected regions of `MASK_BIN` x `MASK_BIN` blocks
#: holding a cell above `MATCHED_NSIGMA` times the filtered sky's own
#: scatter (from its lower half: faint stars lift only the upper one),
#: with a block holding one above `MATCHED_SEED`, are masked, grown by
#: `MATCHED_DILATE` blocks. 300 stars of 300 to 10**4 ADU on a 512 x 512
#: frame (1.8 px) left the level 0.17 ADU high, 2.5 times its error; 0.07
#: with this search.
MATCHED_SIGMA = 1.8
MATCHED_NSIGMA = 2.0
MATCHED_SEED = 4.0
MATCHED_DILATE = 1
#: `matched_pixels` (the blank-sky apertures' source mask) grows its
#: regions by this many pixels.
MATCHED_GROW = 2
#: Fewest unmasked pixels (in the strided subsample) to search with it.
MATCHED_MIN_PIXELS = 4096
#: Cell of the local background the source mask is detected against, in
#: blocks (64 pixels, as Source Extractor's default mesh).
MESH = 16
#: Fraction of usable pixels below which the unmasked sky may be doubtful:
#: when the source mask leaves less, it is warned about if those pixels
#: are too few (`MIN_SKY_PIXELS`) or the sources crowd the frame
#: (`CROWDED_LIGHT_FRACTION`); a mask grown around isolated stars leaves
#: little but good sky.
MIN_UNMASKED_FRACTION = 0.2
#: Fewest pixels a whole-frame sky's clip and scatter rest on without a
#: warning, when the source mask leaves less than `MIN_UNMASKED_FRACTION`.
MIN_SKY_PIXELS = 1000
#: The sources crowd a frame when this fraction of its usable pixels or
#: more are `CROWDED_NSIGMA` sky standard deviations above the level
#: (beyond the normal tail): their light, not the mask's growth, covers
#: it (astropy's M13: 45%; 1000 stars on a 300 x 300 frame: 28%; stars of
#: 300 to 10**5 e- 24 px apart, 85% masked: 1.5-5%).
CROWDED_LIGHT_FRACTION = 0.1
CROWDED_NSIGMA = 3.0
#: The light of stars too faint for the source mask lifts the whole-frame
#: level by about this many times the light `faint_light` measures (the
#: faint stars off the mask that a search a little deeper finds): the
#: ratio was 2.4 to 10, median 5.5, on 512 x 512 frames of 1000 stars of
#: 100 to 10**5 e- (as F**-1.8), Gaussian PSFs of 1 to 1.6 px, skies of 20
#: and 200 e- (5 to 15 on skies of 1000 and 2000 e-, where the stars
#: continue further below the mask's reach, which the frame does not
#: show).
CROWDING_DEPTH = 5.0
#: ... where that light exceeds this many times its error (else the frame
#: shows no faint light beyond its noise, and the lift is taken as 0).
FAINT_LIGHT_NSIGMA = 2.5
#: `check_crowding` warns when that estimate exceeds this many times the
#: error of the level.
CROWDING_NSIGMA = 1.5
#: A source whose brightest binned block is below this many binned
#: standard deviations is faint: near the mask's reach, so that, in a rich
#: field, fainter ones are nearby and unmasked.
FAINT_PEAK = 10.0
#: `BackgroundVariation.error` carries the noise of the map's cells
#: through its median filter by simulating this many maps (the standard
#: deviation it gives is known to about 4%), drawn from this seed, in
#: chunks of about `NOISE_CHUNK` cell values.
NOISE_DRAWS = 256
NOISE_SEED = 20261205
NOISE_CHUNK = 2 ** 20
#: The simulated maps are interpolated, and the map's plane fitted, on at
#: most about this many blocks along each axis (every `_sample_step`-th).
SAMPLE_BLOCKS = 64
#: The cells' levels of a crowded frame (`CROWDED_FRACTION`) scatter
#: beyond their noise where unmasked stars lift them unequally (the map's
#: offsets spread 1.3 times its pure-noise error with 300 stars of 300 to
#: 10**4 ADU on a 512 x 512 frame, 2.1 times with 1000). Their scatter
#: about their least-squares quadratic surface (smooth structure is the
#: map's, not noise), each over its noise for a pixel noise of 1,
#: root-mean-square (a cell beyond `SCATTER_CLIP` robust standard
#: deviations, an extended source, counted at that distance), is the pixel
#: noise the cells imply; where it exceeds the frame's beyond chance
#: (chi-square at `SCATTER_ALPHA`), the map's error is computed with it
#: (`BackgroundVariation.scatter_std`). Frames of fewer than
#: `SCATTER_MIN_CELLS` cells, and frames that are not crowded (a
#: background that varies from cell to cell is then the sky's, which the
#: map must report: ccdproc's SAAO frame's cells scatter 2.5 times its
#: pixel noise, as its annuli confirm), keep their error.
#: A scatter beyond `SCATTER_MAX` times the pixel noise is the sky's own
#: structure, not the lift of stars (astropy's M13, whose cluster light
#: the cells cannot follow: 200 times; 1000 stars on 512 x 512: 2.2).
SCATTER_CLIP = 4.0
SCATTER_MAX = 4.0
#: `BackgroundVariation.plane_offset` needs a grid of at least this many
#: cells a side (on 192 x 192 pixels, 3 x 3 cells, the plane is the map,
#: and judging it again doubled the flat frames' false alarms). On such a
#: grid the map's offsets are also taken from the level
#: (`BackgroundVariation.centred_on`); a smaller grid keeps its median (on
#: 192 x 192 frames of 49 stars of 3000 ADU, whose light lifts the cells
#: unequally, that zero flagged up to 8 of 49 flat rows).
PLANE_MIN_CELLS = 4
#: The cells are median filtered about their quadratic surface
#: (`_median_filtered`) on a grid of at least this many cells a side, about
#: their plane on a smaller one (on astropy's M13, 5 x 5 cells, the
#: quadratic surface follows the cluster's light, and the blank-sky noise
#: model measured against the level read the scatter of blank boxes 0.82
#: to 0.88 of its prediction, 0.87 to 0.93 with the plane).
QUADRATIC_MIN_CELLS = 6
#: A cell this many times its noise from its filtered level is far off its
#: neighbours: the map leaves out what the filter took
#: (`BackgroundVariation.filtered_out`).
TAKEN_NSIGMA = 5.0
#: On a smaller grid of at least `PLANE_MIN_CELLS` cells a side, the cells
#: are filtered about their quadratic surface too where its curvature is
#: significant: where the variance ratio (F) of its three curvature terms
#: to the cells' scatter about it (`_cells_curved`) is beyond this
#: significance. The median filter about the plane leaves a 4 x 4 grid
#: little of a bowl (a 256 x 256 frame vignetted by 2% at its edge
#: midpoints: a tenth of its depth, so that no row was flagged while the
#: rows read 0.8 flux errors high); flat frames of 4 x 4 cells with 49
#: stars gave ratios of 0.5 to 4, the 1% vignette 19 to 39.
CURVATURE_P = 1e-3
SCATTER_ALPHA = 0.01
SCATTER_MIN_CELLS = 12
#: Frame bytes (as float64) per band of rows in a full pass, at most
#: `BAND_FRACTION` of the frame.
BAND_BYTES = 2 ** 22
BAND_FRACTION = 1 / 32


class _Usable:
    """Which pixels may enter the sky: finite, unmasked, not a source."""

    def __init__(self, frame):
        self.frame = frame
        self.blocks = None  # binned source mask, or None
        #: True when every pixel of the data is finite (set by `_binned`)
        self.all_finite = False

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
            _clear_blocks(good, self.blocks, lo)
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


def _clear_blocks(good, blocks, lo):
    """Clear in ``good`` (frame rows ``lo:lo + len(good)``, ``lo`` a
    multiple of `MASK_BIN`) the pixels of the True ``blocks``: the blocks'
    columns repeated once, broadcast over each block's rows."""
    h, nx = good.shape
    top = lo // MASK_BIN
    src = np.repeat(blocks[top:top - (-h // MASK_BIN)], MASK_BIN,
                    axis=1)[:, :nx]
    whole = h // MASK_BIN
    good[:whole * MASK_BIN].reshape(whole, MASK_BIN, nx)[...] &= \
        ~src[:whole, None, :]
    if whole * MASK_BIN < h:
        good[whole * MASK_BIN:] &= ~src[whole]


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


def source_blocks(mean, counts):
    """
    The binned source mask of a frame.

    Parameters
    ----------
    mean : 2-D `~numpy.ndarray`
        The mean of each `MASK_BIN` x `MASK_BIN` block's usable pixels
        (`_binned`; overwritten).
    counts : 2-D `~numpy.ndarray`
        The usable pixels of each block.

    Returns
    -------
    mask : 2-D `~numpy.ndarray` of bool
        True for blocks holding (or near) a source.
    deeper : bool
        The mask was searched again with the matched filter (crowded):
        the stars it leaves lift the map's cells unequally
        (`_sky_map`'s ``scatter``).
    density : float
        The faint sources found (high segments whose brightest block is
        below `FAINT_PEAK`) per block holding a usable pixel (reported
        as ``meta['faint_source_density']``).
    trimmed : 2-D `~numpy.ndarray` of bool or None
        The mask with its binned segments grown less where their growth
        takes most of the frame (`_trimmed`); None elsewhere.
    extended : 2-D `~numpy.ndarray` of bool
        The segments of extended light (`_extended`), dilated as the
        mask, which the map's cells keep (`_sky_map`).
    sigma : float
        The pixel noise (divided by `_binned`'s scale) the blocks'
        residuals from the coarse local background imply (NaN without
        any).
    """
    if not np.any(counts > 0):
        none = np.zeros(mean.shape, dtype=bool)
        return none, False, 0.0, None, none, np.nan
    # residual from a smooth local background, scaled to one pixel's noise
    local = _local_background(mean)
    mean -= local
    del local
    mean *= np.sqrt(counts)
    sample = mean[::2, ::2] if mean.size > 2 ** 20 else mean
    finite = sample[np.isfinite(sample)]
    # astropy's mad_std, by the sorting median (mad_std itself cannot take
    # a custom median: without bottleneck it passes ``overwrite_input``)
    sigma = np.nan if finite.size == 0 else (
        median(np.abs(finite - median(finite))) * MAD_TO_STD)
    if not sigma > 0:
        none = np.zeros(mean.shape, dtype=bool)
        return none, False, 0.0, None, none, sigma
    mean /= sigma
    np.nan_to_num(mean, copy=False, nan=0.0)
    # segments above +MASK_NSIGMA, and as many below -MASK_NSIGMA: on pure
    # noise the mask then takes out as many low as high fluctuations and
    # leaves the level unbiased; the same in the matched-filtered copy
    sources, n_faint = _segments(mean > MASK_NSIGMA, mean > MASK_SEED,
                                 faint=mean)
    found = sources | _low_segments(mean)
    del sources
    mask = _dilated(found)
    trimmed = _trimmed(found, mask, mean)
    deeper = _searched_deeper(mask)
    if deeper:
        # sources only: no pure-noise frame is crowded, and in a crowded
        # one the coarse local background is lifted by the stars, so that
        # low segments are sky
        # new segments only: around the stars already found the filter
        # would only widen the mask
        # (faint by their brightest block in the binned map: the filter
        # spreads a cosmic ray's block, which it leaves out, into a segment)
        smooth = _filtered(mean)
        more, n_more = _segments(smooth > FILTER_NSIGMA,
                                 smooth > FILTER_SEED, avoid=found,
                                 faint=mean)
        del smooth
        found |= more
        n_faint += n_more
        mask = _dilated(found)
        if trimmed is not None:  # the filter's segments grown as before
            trimmed |= _dilated(more)
    return (mask, deeper, n_faint / max(int(np.count_nonzero(counts)), 1),
            trimmed, _dilated(_extended(found, mean)), float(sigma))


def _low_segments(significance):
    """The segments more than `MASK_NSIGMA` binned standard deviations
    below the coarse local background (``significance``) that hold a block
    beyond `MASK_SEED`, as the sources above it, but those of
    `LOW_SKY_BLOCKS` blocks or more: the sky's own low ground, not the
    noise's lows the mask balances its highs with."""
    low = _segments(significance < -MASK_NSIGMA, significance < -MASK_SEED)
    labels, n_low = ndimage.label(low, structure=np.ones((3, 3), bool))
    if not n_low:
        return low
    size = np.bincount(labels.ravel(), minlength=n_low + 1)
    size[0] = 0
    return (size < LOW_SKY_BLOCKS)[labels] & low


def _extended(found, significance):
    """The 8-connected segments of ``found`` of at least
    `EXTENDED_BLOCKS` blocks and `EXTENDED_PER_PEAK` per peak of the
    binned ``significance`` (a block above `FAINT_PEAK` and its 3 x 3
    neighbours) in them."""
    labels, n_found = ndimage.label(found, structure=np.ones((3, 3), bool))
    if not n_found:
        return found
    size = np.bincount(labels.ravel(), minlength=n_found + 1)
    peaks = (found & (significance > FAINT_PEAK)
             & (significance >= ndimage.maximum_filter(significance, 3)))
    n_peaks = np.bincount(labels[peaks], minlength=n_found + 1)
    large = ((size >= EXTENDED_BLOCKS)
             & (size >= EXTENDED_PER_PEAK * np.maximum(n_peaks, 1)))
    large[0] = False
    return large[labels]


def _trimmed(found, mask, significance):
    """
    The binned segments ``found`` grown less than `MASK_DILATE` blocks
    where that growth (``mask``) takes most of the frame while they take
    little of it (more than `OVERGROWN_MASK` and less than
    `OVERGROWN_SEGMENTS`, fewer than `OVERGROWN_BRIGHT` of them reaching
    the first of `GROW_PEAKS`: faint stars that a faint sky makes
    significant, not a crowded frame); None elsewhere. Each is grown by the blocks of
    `GROW_BLOCKS` by its brightest block in ``significance`` (absolute):
    below the first of `GROW_PEAKS` by the first, ..., at or above the
    last by `MASK_DILATE`. (The binned blocks are each their own pixels'
    mean: a block beyond the growth did not make the segment, whatever
    its noise, so that any growth of at least one block leaves the sky
    between the segments unbiased.)
    """
    if not (np.mean(mask) > OVERGROWN_MASK
            and np.mean(found) < OVERGROWN_SEGMENTS):
        return None
    labels, n_found = ndimage.label(found, structure=np.ones((3, 3), bool))
    peaks = np.zeros(n_found + 1, dtype=significance.dtype)
    np.maximum.at(peaks, labels[found], np.abs(significance[found]))
    if not np.mean(peaks[1:] >= GROW_PEAKS[0]) < OVERGROWN_BRIGHT:
        return None  # brighter stars among them: grown as before
    by = np.full(n_found + 1, MASK_DILATE)
    for limit, blocks in zip(GROW_PEAKS[::-1], GROW_BLOCKS[::-1],
                             strict=True):
        by[peaks < limit] = blocks
    by[0] = 0
    trimmed = np.zeros(found.shape, dtype=bool)
    reach = by[labels]
    for blocks in np.unique(by[1:]):
        trimmed |= _dilated(reach == blocks, int(blocks))
    return trimmed


def _dilated(found, by=None):
    """The segments grown by ``by`` blocks (default `MASK_DILATE`): ``by``
    binary dilations by a 3 x 3 square (scipy's ``binary_dilation``), done
    as one by a square of ``2 by + 1`` blocks: or-ed shifted copies along
    each axis."""
    by = MASK_DILATE if by is None else by
    out = found
    for axis in (0, 1):
        grown = out.copy()
        ahead = [slice(None)] * 2
        behind = [slice(None)] * 2
        for shift in range(1, by + 1):
            ahead[axis], behind[axis] = slice(shift, None), slice(None, -shift)
            grown[tuple(ahead)] |= out[tuple(behind)]
            grown[tuple(behind)] |= out[tuple(ahead)]
        out = grown
    return out


def _filtered(significance):
    """The binned significance map filtered with a Gaussian of
    `MASK_FILTER` blocks and scaled to unit noise. Blocks beyond
    `FILTER_CLIP` are clipped there first, and those standing alone (six
    times their brightest neighbour: a cosmic ray or a hot pixel, or the
    core of a star the binned map finds anyway) are left out, so that they
    do not spread into segments."""
    high = _neighbours(significance, np.maximum)
    low = _neighbours(significance, np.minimum)
    alone = (((significance > FILTER_CLIP) & (high < significance / 6.0))
             | ((significance < -FILTER_CLIP) & (low > significance / 6.0)))
    clipped = significance * ~alone  # the lone blocks to 0
    np.clip(clipped, -FILTER_CLIP, FILTER_CLIP, out=clipped)
    smooth = _gaussian(clipped, MASK_FILTER)
    smooth /= _filter_noise()
    return smooth


def _neighbours(image, extreme):
    """The largest (``extreme=np.maximum``) or smallest of the 8
    neighbours of each pixel, 0 beyond the edges (scipy's
    ``maximum_filter`` with that footprint and ``mode='constant'``)."""
    pad = np.zeros((image.shape[0] + 2, image.shape[1] + 2),
                   dtype=image.dtype)
    pad[1:-1, 1:-1] = image
    rows = extreme(extreme(pad[:, :-2], pad[:, 1:-1]), pad[:, 2:])
    out = extreme(rows[:-2], rows[2:])  # the rows above and below
    extreme(out, pad[1:-1, :-2], out=out)
    extreme(out, pad[1:-1, 2:], out=out)
    return out


def _gaussian(image, sigma, *, in_place=False):
    """
    A 2-D ``image`` filtered with a Gaussian of ``sigma`` pixels, zero
    beyond its edges: ``scipy.ndimage.gaussian_filter(image, sigma,
    mode='constant')`` to rounding, computed in the image's precision
    (float32 maps: scipy's float64 arithmetic differs from it by about
    1e-7 of the noise). Two passes of weighted sums of shifted rows, then
    of shifted columns, on strips of rows of about `FILTER_STRIP_PIXELS`
    pixels with a halo of the kernel's radius, each strip in the cache
    (scipy's pass down the columns of a large image reads each pixel from
    memory, several times slower). With ``in_place``, the result is
    written over ``image`` (the rows above each strip kept as they were
    in a buffer of the kernel's radius) and returned.
    """
    ny, nx = image.shape
    weights = _kernel(sigma).astype(image.dtype)
    r = weights.size // 2
    step = max(FILTER_STRIP_PIXELS // (nx + 2 * r), 1)
    h = min(step, ny)
    pad = np.zeros((h + 2 * r, nx + 2 * r), dtype=image.dtype)
    columns = np.empty((h, nx + 2 * r), dtype=image.dtype)
    part = np.empty_like(columns)
    rows = np.empty((h, nx), dtype=image.dtype)
    in_place = in_place and step >= r  # (the halo within one strip)
    out = image if in_place else np.empty_like(image)
    above = np.empty((r, nx), dtype=image.dtype) if in_place else None
    for lo in range(0, ny, step):
        hi = min(lo + step, ny)
        h = hi - lo
        top, bottom = max(lo - r, 0), min(hi + r, ny)
        if top > lo - r or bottom < hi + r:  # zeros beyond the image
            pad[...] = 0.0
        if in_place and lo > 0:  # the rows above, filtered already
            pad[top - lo + r:r, r:r + nx] = above[r - (lo - top):]
            pad[r:bottom - lo + r, r:r + nx] = image[lo:bottom]
        else:
            pad[top - lo + r:bottom - lo + r, r:r + nx] = image[top:bottom]
        if in_place and h >= r:  # this strip's last rows, for the next
            above[...] = pad[h:h + r, r:r + nx]
        # down the columns, then along the rows: centre weight first, then
        # each symmetric pair of neighbours
        col, tmp = columns[:h], part[:h]
        np.multiply(pad[r:r + h], weights[r], out=col)
        for j in range(1, r + 1):
            np.add(pad[r - j:r - j + h], pad[r + j:r + j + h], out=tmp)
            tmp *= weights[r + j]
            col += tmp
        res, tmp = out[lo:hi], rows[:h]
        np.multiply(col[:, r:r + nx], weights[r], out=res)
        for j in range(1, r + 1):
            np.add(col[:, r - j:r - j + nx], col[:, r + j:r + j + nx],
                   out=tmp)
            tmp *= weights[r + j]
            res += tmp
    return out


def _kernel(sigma):
    """The normalised 1-D Gaussian of ``sigma`` to 4 sigma (scipy's
    ``gaussian_filter`` kernel), float64."""
    radius = int(4.0 * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 / float(sigma) ** 2 * x ** 2)
    return weights / weights.sum()


def _filter_noise():
    """The standard deviation of `MASK_FILTER`-filtered unit white noise
    (the 2-D kernel is the outer product of the 1-D one with itself:
    ``sqrt(sum(k2d**2)) = sum(k1d**2)``)."""
    return float(np.sum(_kernel(MASK_FILTER) ** 2))


def matched_blocks(frame, usable, blocks, scale=1.0, *,
                   nsigma=MATCHED_NSIGMA):
    """
    The source mask ``blocks`` of a crowded frame, deepened by a
    matched-filter search (`MATCHED_SIGMA`).

    Stars too faint for the binned mask (a 1000 ADU star of 1.8 px on a
    sky of 22 ADU rms spreads over four blocks, each below the seed, but
    stands 7 standard deviations high in the matched filter) and the parts
    of stars that a segment's edge cut off are found; each region is
    masked with the blocks around it (`MATCHED_DILATE`). The filter runs on
    the frame (less a median of the unmasked pixels) averaged in cells of
    2 x 2 pixels, in single precision (a quarter of the pixels, an eighth
    of the frame's float64 memory); its level and scatter are measured on
    the cells outside the mask, so that correlated noise, which a white
    noise model would underrate, raises the thresholds with it. A region
    is the blocks holding a cell above ``nsigma`` of that scatter.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    usable : `_Usable`
        Its usable pixels (its ``blocks`` are set and cleared here).
    blocks : 2-D `~numpy.ndarray` of bool
        The binned source mask (`source_blocks`).
    scale : float, optional
        `_binned`'s scale (the pixels are divided by it, so that single
        precision holds them).
    nsigma : float, optional
        The regions' threshold, in the filtered sky's standard deviations
        (default `MATCHED_NSIGMA`).

    Returns
    -------
    blocks : 2-D `~numpy.ndarray` of bool
        The mask with the blocks about the regions found (`MATCHED_DILATE`)
        added; ``blocks`` itself when the frame leaves fewer than
        `MATCHED_MIN_PIXELS` sky pixels to measure the filtered sky on.
    """
    usable.blocks = blocks
    values, _, _ = _subsample(usable, SUBSAMPLE_MIN)
    usable.blocks = None
    if values.size < MATCHED_MIN_PIXELS:
        return blocks
    zero = float(median(values))
    cells = _cells(frame, usable, zero, scale)
    smooth = _gaussian(cells, MATCHED_SIGMA / 2)
    del cells

    def outside(ys, xs):  # the cells off the mask (2 x 2 per block)
        return ~blocks[ys[:, None] // 2, xs[None, :] // 2]

    sky = _filtered_sky(smooth, outside, MATCHED_MIN_PIXELS // 4)
    if sky is None:
        return blocks
    centre, width = sky
    peaks = _block_peaks(smooth, blocks.shape)
    del smooth
    return blocks | _matched_regions(peaks, centre + nsigma * width,
                                     centre + MATCHED_SEED * width,
                                     MATCHED_DILATE)


#: `faint_light` measures the light of the regions a matched-filter
#: search with a seed `FAINT_LIGHT_SEED` filtered standard deviations high
#: finds off the source mask, in `FAINT_LIGHT_TILES` x `FAINT_LIGHT_TILES`
#: tiles (its error from their scatter).
FAINT_LIGHT_SEED = 3.5
FAINT_LIGHT_TILES = 8
#: A faint star's light is its filtered peak over the level times this
#: area (pixels): ``4 pi MATCHED_SIGMA**2``, a star as wide as the filter.
FAINT_LIGHT_AREA = 4 * math.pi * MATCHED_SIGMA ** 2
#: `faint_light` also extrapolates the luminosity function of the sources
#: at the mask's reach below it: their slope ``alpha`` (``dN/dF ~
#: F**-alpha``) is fitted to the filtered peaks of the sources from
#: `MATCHED_SEED` to `REACH_SPAN` times it, when there are at least
#: `REACH_MIN_SOURCES` of them; their light per unit of ``ln F`` at the
#: reach is that of the sources whose peaks lie within a factor
#: ``sqrt(2)`` above `MATCHED_SEED`.
REACH_SPAN = 8.0
REACH_MIN_SOURCES = 20
#: With fewer than `REACH_FEW_SOURCES` sources the slope must exceed
#: `RISING_SLOPE` by `REACH_FEW_NSIGMA` standard errors: one, as with
#: more. 300 stars as ``F**-1.8`` on 512 x 512 pixels of a 1000 e- sky
#: leave 32 to 56 sources at the reach (fewer than 50 on 35 of 40
#: frames), slopes 1.3 to 2.7 +- 0.3, and their level 2 to 7.7 of its
#: errors high: 38 of the 40 pass one error (29 passed two). Drawn as
#: ``F**-1`` (as many per decade), 30 to 40 sources pass one error on 2
#: to 3% of frames; such a false lift is that of a frame whose light at
#: the reach is faint, and flags only the rows it would bias (20 to 50
#: stars as many per decade on 512 x 512: 2 of 20 frames, 23 and 29
#: sources, a lift of 0.7 and 1.3 of the level's error, no row). The
#: Source Extractor ESO frame (256 x 256) holds 29 star-like sources at
#: its reach, rising as ``F**-1.74 +- 0.32``; its blank sky shows the
#: faint sources below (the means of 2 x 2 of its pixels far from every
#: catalogued source scatter 1.10 times as much as white noise, as a
#: population continuing below the reach would make them), and its lift
#: (2.3 ADU) is extrapolated. Below 20 the slope is not used: the bundled
#: sample frame, with no star below its reach, gives 1.69 +- 0.43 from
#: 16 sources.
REACH_FEW_SOURCES = 50
REACH_FEW_NSIGMA = 1.0
#: A slope fitted above `REACH_MAX_SLOPE` is not that of stars (a uniform
#: population's is 2.5; the steep frames above fit 1.3 to 2.7) but of the
#: noise's peaks, whose counts fall as ``exp(-z**2 / 2)`` (a local slope
#: of ``z**2 + 1``, 17 at the reach): it is not used. A pure-noise frame
#: of 128 x 192 pixels, two strips of columns masked, found 21 of them at
#: the reach (3.50 +- 0.15, at the top of the fit's range).
REACH_MAX_SLOPE = 3.0
#: A source whose filtered peak is less than `SHARP_RATIO` times that of
#: its brightest pixel alone (the pixel's excess times the filter's
#: central weight, over the 4 pixels of a cell) is sharper than a star: a
#: cosmic ray or a hot pixel (1.0 for one pixel, 1.7 for two; 3 to 12 for
#: stars of 0.7 to 2.5 px, fewer than 1% of those of 1 px or more below 2
#: at 4 filtered sigma, where the noise lifts the brightest pixel).
#: `faint_light` leaves such sources out of the light it finds and of the
#: luminosity function at the reach.
SHARP_RATIO = 2.0
#: A source is sharper than a star too where its filtered peak is less
#: than `SHARP_BOX_RATIO` times that of its brightest 2 x 2 pixels alone
#: and the 12 pixels round them, less the brightest of those, hold less
#: than `SHARP_RING` of their light: a cosmic ray of 3 or 4 pixels (a 2 x
#: 2 square, an L), which the filter takes for a star of 0.7 px (its
#: ratio to the brightest pixel 2.5 to 4). Such a hit has 0.6 to 1.0 and
#: about 0 (0 to 0.3 with the noise at the reach); stars of 1 and 2 px at
#: the reach 1.3 to 1.9 and 0.4 to 1.2, 1.6 to 2.9 and 0.1 to 1.6 (5 to
#: 95%); 0 to 3% of those of 1 px or more are taken for hits, and 40% of
#: those of 0.7 px, which a compact hit resembles.
SHARP_BOX_RATIO = 1.3
SHARP_RING = 0.3
#: Where more than `SHARP_MOST` of the sources found are sharper than a
#: star, they are cosmic rays (a raw frame rich in them) and none is taken
#: for a star: their blunter hits (a hit of 4 pixels, or one the noise
#: smooths; 5 to 15% of 3 to 4 pixel hits at the reach) cannot be told
#: from stars, and would make a luminosity function of their own.
SHARP_MOST = 0.5
#: `_sharper_than_stars` judges this many sources at a time.
SHARP_CHUNK = 512
#: The stars below the reach lift the level by `BELOW_DEPTH` times that
#: light per unit of ``ln F`` over ``2 - alpha`` (the light of a power
#: law continued below the reach, per unit of it), ``alpha`` taken at
#: most `BELOW_MAX_SLOPE`, where the slope, less its standard error
#: (`REACH_FEW_NSIGMA` of them for fewer than `REACH_FEW_SOURCES`
#: sources), exceeds `RISING_SLOPE`; else 0 (a luminosity function that
#: does not rise towards the reach, as many stars per decade or fewer,
#: leaves little light below it). A source at the reach whose region
#: touches that of a brighter source is found as part of it: from
#: `REACH_FEW_SOURCES` sources, the light at the reach is divided by the
#: fraction of the frame where such a source shows (`_visible`, at least
#: `BELOW_MIN_VISIBLE`), and the slope raised by the slope of that
#: fraction against the height (brighter sources are hidden by fewer;
#: `_hidden_slope`), half that rise (`BELOW_HIDDEN_ERROR`) added to its
#: error. Calibrated on 512 x 512 frames of 1000 to 6000 stars of 100 to
#: 10**5 e- (as F**-1.8), PSF 1.6 px, skies of 200 to 2000 e-, gain 2, 4
#: seeds (49 whose faint light was measured): 16-84% of the frame showed
#: a source at the reach, the slopes fitted (1.30-1.85, mean 1.57) rose
#: by 0.08-0.35 (to 1.58-2.12, mean 1.81), and the lift estimated was
#: 0.47-2.8 times the actual one (geometric mean 1.01; as found, without
#: the hidden sources, 0-2.1, geometric mean 0.47 where not 0); PSFs of
#: 1.2 and 2.2 px 0.44-3.4. A slope of 1.6 or more is not told from a
#: steeper one by the 60-170 sources at the reach (errors 0.13-0.25), and
#: a larger cap would only add their noise to the estimate (the scatter
#: of its log 0.38 with a cap of 1.6, 0.56 with 1.8). Frames of 300 stars
#: of 300 to 10**4 ADU, as many per decade, fit 0.8-1.1 (raised to
#: 0.95-1.24, less their errors at most 1.08) and extrapolate nothing;
#: grids of 1000 ADU stars with nothing fainter on 384 x 384 (10 seeds)
#: 1.32-1.52, less their errors 1.13-1.34, and on the 3 above 1.25 the
#: light at the reach (the noise's peaks less its troughs) is at most
#: 0.02 ADU, 0.3 of the level's error.
BELOW_DEPTH = 0.75
BELOW_MAX_SLOPE = 1.6
RISING_SLOPE = 1.25
BELOW_HIDDEN_ERROR = 0.5
BELOW_MIN_VISIBLE = 0.05
#: Stars wider than the filter (a Moffat profile's wings) hold more light
#: per filtered peak than `FAINT_LIGHT_AREA`, and the mask's reach lies
#: higher in flux, with more light below it: where the frame's stars
#: (`_psf_spread`) hold more than `BELOW_WIDE_SPREAD` times it, the light
#: at the reach is scaled by their ratio, and a luminosity function that
#: does not rise towards the reach is extrapolated too (as
#: ``F**-alpha``, ``alpha`` fitted), where that lift exceeds
#: `BELOW_WIDE_NSIGMA` times its error (the Poisson error of the sources
#: at the reach and the slope's, in quadrature). Gaussian stars as wide
#: as the filter (1.8 px) hold 1.08 to 1.10 times it, Moffat stars (beta
#: 2.5, FWHM 4.2 px) 1.30 to 1.31. 300 of those Moffat stars of 300 to
#: 10**4 ADU (as many per decade) on 512 x 512 pixels of a 1000 ADU sky
#: fit slopes 0.6 to 1.4 and read their level 2.9 +- 0.35 of its errors
#: high (16 frames), 14 with no warning; now 15 are warned, the lift
#: estimated 0.39 to 2.8 times the actual one (median 1.3). The Gaussian
#: frames of the same stars, whose extrapolation would be 8 times their
#: lift (0.03 ADU), are not extrapolated (2 of 24 warned, as before).
#: `_psf_spread` takes the median over at most `SPREAD_STARS` of the
#: brightest stars whose filtered peaks lie `SPREAD_PEAKS` filtered
#: standard deviations above the level, with no other peak above
#: `SPREAD_ISOLATION` of theirs within `SPREAD_RING[1]` cells; each
#: one's light is that within `SPREAD_CORE` cells less the median of the
#: ring `SPREAD_RING` (cells of 2 x 2 pixels); from at least
#: `SPREAD_MIN_STARS` stars, else the stars are not judged wide.
BELOW_WIDE_SPREAD = 1.2
BELOW_WIDE_NSIGMA = 2.0
#: The frame does not show how far below the reach its stars go, nor so
#: how far they lift the level where neither estimate above shows it: 300
#: Gaussian stars (1.8 px) of 300 to 10**4 ADU on 512 x 512 pixels of a
#: 1000 ADU sky are lifted 1.18 +- 0.32 of the level's errors (16 frames,
#: against the same frames without their stars and the same mask), and 14
#: of 16 were silent. `_below_reach` also gives the largest lift the
#: sources at the reach allow: their light per unit of ``ln F`` (as for
#: the lift) continued below the reach to no flux, ``F**-alpha`` with
#: ``alpha`` this many standard errors steeper than fitted (at most
#: `BELOW_MAX_SLOPE`), ``1 / (2 - alpha)`` times it; `check_crowding`
#: warns where that bound exceeds `CROWDING_NSIGMA` times the level's
#: error. On those frames it was 1.1 to 11 times the lift (median 3.5),
#: 15 of 16 warned; on frames whose stars stop at the reach (300 stars of
#: 1000 to 3000 ADU, 16 frames; 121 of 1000 ADU on a grid, 8) 0 to 1.4 of
#: the level's errors, none warned.
BOUND_NSIGMA = 1.0
SPREAD_PEAKS = (20.0, 300.0)
SPREAD_CORE = 4
SPREAD_RING = (5, 7)
SPREAD_ISOLATION = 0.3
SPREAD_STARS = 200
SPREAD_MIN_STARS = 10
#: The wings of the masked stars reach past the source mask and lift the
#: level too (a Moffat profile's light outside ``r`` falls only as
#: ``r**(2 - 2 beta)``): 512 x 512 frames of 100 stars of 10**5 to 10**6
#: ADU (beta 2.5, FWHM 4.2 px, nothing fainter) hold 0.23-0.32 ADU per
#: unmasked pixel of it and read their level up to 5 of its errors high,
#: flags 0. `faint_light` measures that light from the frame's own stars:
#: at most `WING_STARS` of the brightest isolated ones (peaks of 2 x 2
#: cells above `WING_PEAK` times a cell's noise, with no peak above
#: `WING_ISOLATION` of theirs within `WING_LOCAL` pixels and the cores of
#: fainter peaks, within `WING_CORE` pixels, left out) give the median
#: light of each ring of `WING_EDGES` less that of the unmasked sky from
#: the last edge to `WING_LOCAL`, per unit of their light within
#: `WING_CORE`; a power law ``r**-gamma`` and a constant (the best of
#: `WING_SLOPES`) fitted to it spreads each masked segment's light, put at
#: its brightest cell, over the unmasked pixels up to `WING_LOCAL` (where
#: the profile was measured: further wings are not counted). From at least
#: `WING_MIN_STARS` stars; its error is the fitted amplitude's and the
#: spread of the slopes within a chi-square of 1, in quadrature. On those
#: frames it gave 0.26 to 1.2 times the light (8 frames; 1 with too few
#: isolated stars), Gaussian stars of 1.8 px no light beyond its error
#: (10 frames); ccdproc's SAAO frame 0.014 +- 0.002 ADU (its level, with
#: the mask grown by 8 blocks, reads 0.04 lower). It is added to
#: `crowding_bias` where it exceeds `WING_NSIGMA` times its error.
WING_EDGES = (10.0, 13.0, 16.0, 20.0, 25.0, 32.0)
#: Each profile star's own background: the mean of the ring from
#: ``WING_EDGES[-1]`` to this radius (pixels), subtracted from its rings
#: and core (a sloped or uneven sky is not a wing).
WING_LOCAL = 40.0
WING_CORE = 6.0
WING_PEAK = 20.0
WING_ISOLATION = 0.3
WING_STARS = 30
WING_MIN_STARS = 3
WING_SLOPES = tuple(2.5 + 0.25 * i for i in range(31))
WING_NSIGMA = 2.5
#: Peaks above this many cells' noise are the neighbours judged.
WING_NEIGHBOUR = 5.0
#: Most peaks tried as profile stars, brightest first.
WING_CANDIDATES = 500


def faint_light(frame, usable, blocks, counts, scale=1.0, *, avoid=None):
    """
    The light of the faint sources off a source mask, per unmasked pixel,
    and its error, both measured on the frame.

    The light the search finds is measured on a crowded frame only
    (`is_crowded`: elsewhere the deeper search did not run, and the
    regions off the mask are the stars it would have masked). The frame,
    averaged in cells of 2 x 2 pixels and filtered with a Gaussian of
    `MATCHED_SIGMA` pixels (as `matched_blocks`), is searched for
    8-connected regions of blocks holding a cell above `MATCHED_NSIGMA`
    times the filtered sky's scatter and one above `FAINT_LIGHT_SEED`
    (below `MATCHED_SEED`, where `matched_blocks` stops: the faint stars a
    slightly deeper search would find), none of whose blocks the mask
    ``blocks`` covers (a masked star's wings are its own). Each region's
    light is its filtered peak over the level times `FAINT_LIGHT_AREA`;
    the light of the regions the same search finds in the negated frame
    (the noise's own troughs, selected as its peaks are) is subtracted,
    and the difference divided by the unmasked pixels: the light per pixel
    of the stars too faint for the mask, 0 on a frame with no star fainter
    than the mask's reach, whatever the number of stars masked. Its error
    is from the scatter of that sum between `FAINT_LIGHT_TILES` x
    `FAINT_LIGHT_TILES` tiles of the frame. That search sees only the
    stars just below the reach; those far below it, on a bright sky most
    of the faint light, are extrapolated from the sources at the reach
    (`_below_reach`, the stars measured included: they are sources of the
    frame), on any frame of at least `FILTER_MIN_BLOCKS` blocks a side
    (the faint stars' density, not the mask's, makes their lift). Sources
    sharper than a star (`_sharper_than_stars`: cosmic rays, hot pixels;
    all of them where most are) are left out of both, and of the negated
    frame's.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    usable : `_Usable`
        Its usable pixels (its ``blocks`` are set here and restored).
    blocks : 2-D `~numpy.ndarray` of bool
        The binned source mask.
    counts : 2-D `~numpy.ndarray`
        The usable pixels of each block (`_binned`): a region that reaches
        a block missing some (the apertures a level is measured again
        without, a user's mask) is left out too.
    scale : float, optional
        `_binned`'s scale.
    avoid : 2-D `~numpy.ndarray` of bool, optional
        More blocks whose regions are left out (`faint_light_beside`: the
        stars measured).

    Returns
    -------
    light : tuple of float or None
        The light and its error (data unit per pixel; NaN where the frame
        is not crowded), the lift of the stars below the search's reach
        extrapolated from the luminosity function of the sources at it
        (`_below_reach`; data unit per pixel, 0 where it does not rise
        towards the reach), that function's fitted slope (NaN for too
        few sources), and the light of the masked stars' wings past the
        mask and its error (`_wing_light`; data unit per pixel, NaN where
        too few stars show their profile), and the largest lift below the
        reach that the sources at it allow (`_below_reach`'s ``bound``,
        data unit per pixel); None when the frame has fewer
        than
        `FILTER_MIN_BLOCKS` blocks a side, leaves fewer than
        `MATCHED_MIN_PIXELS` sky pixels, or fewer than two tiles hold
        unmasked blocks.
    """
    if min(blocks.shape) < FILTER_MIN_BLOCKS:
        return None
    crowded = is_crowded(blocks)
    saved, usable.blocks = usable.blocks, blocks
    values, _, _ = _subsample(usable, SUBSAMPLE_MIN)
    usable.blocks = None
    try:
        if values.size < MATCHED_MIN_PIXELS:
            return None
        zero = float(median(values))
        cells = _cells(frame, usable, zero, scale)
    finally:
        usable.blocks = saved
    wings = _wing_light(cells, blocks, counts == _full_counts(frame.shape))
    wings = tuple(v * scale for v in wings)
    smooth = _gaussian(cells, MATCHED_SIGMA / 2, in_place=True)
    del cells
    avoid = (blocks | (counts < _full_counts(frame.shape))
             | (False if avoid is None else avoid))

    def outside(ys, xs):
        return ~blocks[ys[:, None] // 2, xs[None, :] // 2]

    sky = _filtered_sky(smooth, outside, MATCHED_MIN_PIXELS // 4)
    n_off = float(np.sum(counts[~blocks], dtype=np.float64))
    if sky is None or not n_off > 0:
        return None
    centre, width = sky

    sharp = functools.partial(_sharper_than_stars, frame, zero, scale)
    below, slope, bound = _below_reach(smooth, centre, width, blocks.shape,
                                       sharp=sharp)
    n_usable = float(np.sum(counts, dtype=np.float64))
    below = below / n_usable * scale
    bound = (bound / n_usable * scale,)
    if not crowded:
        # no deeper search ran: the regions off this mask are the stars it
        # would have masked, not the light of fainter ones
        return (math.nan, math.nan, below, slope) + wings + bound
    # each region's light at its brightest block: its filtered peak over
    # the level, times the area of the filter's Gaussian convolved with a
    # star of its width; the troughs' (negative) likewise
    light = np.zeros(blocks.shape)
    for sign in (1, -1):
        peaks = _block_peaks(sign * smooth, blocks.shape)
        found = _segments(peaks > sign * centre + MATCHED_NSIGMA * width,
                          peaks > sign * centre + FAINT_LIGHT_SEED * width,
                          avoid=avoid, npixels=1)
        labels, n = ndimage.label(found, structure=np.ones((3, 3), bool))
        if n:
            index = np.arange(1, n + 1)
            top = np.asarray(ndimage.maximum(peaks, labels, index))
            at = np.asarray(ndimage.maximum_position(peaks, labels, index),
                            dtype=np.intp).reshape(-1, 2)
            top = top - sign * centre
            star = ~sharp(at, top, sign)  # cosmic rays are not starlight
            np.add.at(light, (at[star, 0], at[star, 1]),
                      sign * top[star] * FAINT_LIGHT_AREA)
    del smooth
    ny, nx = blocks.shape
    sums = []
    for rows in np.array_split(np.arange(ny), FAINT_LIGHT_TILES):
        for cols in np.array_split(np.arange(nx), FAINT_LIGHT_TILES):
            tile = np.ix_(rows, cols)
            if np.any(~blocks[tile]):
                sums.append(float(np.sum(light[tile])))
    if len(sums) < 2:
        return None
    sums = np.asarray(sums) / n_off
    total = float(np.sum(sums))
    error = float(np.std(sums, ddof=1) * math.sqrt(sums.size))
    return (total * scale, error * scale, below, slope) + wings + bound


def _power_law_slope(z, low, high):
    """The maximum-likelihood slope ``alpha`` of values ``z`` drawn as
    ``z**-alpha`` between ``low`` and ``high``, and its standard error
    below it (where the log-likelihood has fallen by 1/2); both NaN where
    ``alpha`` exceeds `REACH_MAX_SLOPE` (noise peaks, not stars)."""
    alpha = np.linspace(0.0, 3.5, 701)
    span = math.log(high / low)
    with np.errstate(divide='ignore', invalid='ignore'):
        one = 1.0 - alpha
        norm = np.where(np.abs(one) < 1e-9, span,
                        (high ** one - low ** one) / np.where(
                            np.abs(one) < 1e-9, 1.0, one))
    like = -alpha * float(np.sum(np.log(z))) - z.size * np.log(norm)
    best = int(np.argmax(like))
    if alpha[best] > REACH_MAX_SLOPE:
        return math.nan, math.nan
    within = alpha[:best + 1][like[:best + 1] > like[best] - 0.5]
    return float(alpha[best]), float(alpha[best] - within.min())


def _sharper_than_stars(frame, zero, scale, at, top, sign=1):
    """
    Which matched-filter sources are sharper than a star (`SHARP_RATIO`,
    `SHARP_BOX_RATIO`, `SHARP_RING`).

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    zero, scale : float
        As in `_cells`.
    at : 2-D `~numpy.ndarray` of int
        Each source's brightest block (row, column), shape ``(n, 2)``.
    top : 1-D `~numpy.ndarray`
        Its filtered peak's height over the filtered sky's level (the
        cells' unit: the frame less ``zero``, over ``scale``; a trough's
        depth below it for ``sign`` -1).
    sign : int, optional
        1 (default) for peaks, -1 for the negated frame's (troughs).

    Returns
    -------
    sharp : 1-D `~numpy.ndarray` of bool
        True where the filtered peak is below `SHARP_RATIO` times that of
        the block's most extreme usable pixel alone, or below
        `SHARP_BOX_RATIO` times that of the brightest 2 x 2 pixels within
        2 pixels of the block alone while the 12 pixels round those hold,
        less their brightest, under `SHARP_RING` of their light (a
        compact cosmic ray; not judged where one of those 16 pixels is
        unusable or off the frame); True for all where more than
        `SHARP_MOST` of them are.
    """
    at = np.asarray(at, dtype=np.intp).reshape(-1, 2)
    top = np.asarray(top, dtype=float).ravel()
    sharp = np.zeros(len(at), dtype=bool)
    for start in range(0, len(at), SHARP_CHUNK):  # a few MB at most
        part = slice(start, start + SHARP_CHUNK)
        sharp[part] = _sharp_sources(frame, zero, scale, at[part],
                                     top[part], sign)
    if np.count_nonzero(sharp) > SHARP_MOST * sharp.size:
        sharp[:] = True  # cosmic rays: the rest are their blunter hits
    return sharp


def _sharp_sources(frame, zero, scale, at, top, sign):
    """`_sharper_than_stars` of some sources (as its arguments), each
    judged alone."""
    ny, nx = frame.shape
    # a window of 10 x 10 pixels: the block and 3 pixels round it
    step = np.arange(-3, MASK_BIN + 3)
    ys = (at[:, :1] * MASK_BIN + step)[:, :, None]
    xs = (at[:, 1:] * MASK_BIN + step)[:, None, :]
    off = (ys < 0) | (ys >= ny) | (xs < 0) | (xs >= nx)
    ys, xs = np.clip(ys, 0, ny - 1), np.clip(xs, 0, nx - 1)
    pixels = sign * (np.asarray(frame.data[ys, xs], dtype=float) - zero)
    bad = off | ~np.isfinite(pixels)
    if frame.mask is not None:
        bad |= np.asarray(frame.mask[ys, xs], dtype=bool)
    if frame.uncertainty is not None:
        bad |= ~np.isfinite(frame.uncertainty[ys, xs])
    pixels = np.where(bad, -np.inf, pixels) / scale
    weight = _kernel(MATCHED_SIGMA / 2)
    weight = float(weight[weight.size // 2]) ** 2 / 4.0
    block = slice(3, 3 + MASK_BIN)
    brightest = pixels[:, block, block].max(axis=(1, 2))
    with np.errstate(invalid='ignore'):
        sharp = top < SHARP_RATIO * weight * brightest
    # the brightest 2 x 2 pixels within 2 pixels of the block (``-inf``
    # where one is unusable), and the 4 x 4 pixels round them
    boxes = (pixels[:, :-1, :-1] + pixels[:, 1:, :-1] + pixels[:, :-1, 1:]
             + pixels[:, 1:, 1:])[:, 1:-1, 1:-1]
    n, side = boxes.shape[:2]
    best = np.argmax(boxes.reshape(n, -1), axis=1)
    box = boxes.reshape(n, -1)[np.arange(n), best]
    by, bx = np.divmod(best, side)  # the box's first pixel: 1 + by, 1 + bx
    grid = np.arange(MASK_BIN)
    round_y = (by[:, None] + grid)[:, :, None]
    round_x = (bx[:, None] + grid)[:, None, :]
    around = pixels[np.arange(n)[:, None, None], round_y, round_x]
    inner = np.zeros((MASK_BIN, MASK_BIN), dtype=bool)
    inner[1:3, 1:3] = True
    ring = np.where(inner, -np.inf, around).reshape(n, -1)
    with np.errstate(invalid='ignore'):
        light = np.sum(np.where(inner, 0.0, around), axis=(1, 2)) \
            - ring.max(axis=1)
        compact = ((top < SHARP_BOX_RATIO * weight * box)
                   & (light < SHARP_RING * box)
                   & np.all(np.isfinite(around), axis=(1, 2)))
    return sharp | compact


def _region_peaks(values, labels, found):
    """
    Each labelled region's largest value and its position, from the
    region's own elements (no temporaries the size of ``values``).

    Parameters
    ----------
    values : 2-D `~numpy.ndarray`
        The values.
    labels : 2-D `~numpy.ndarray` of int
        ``scipy.ndimage.label`` of ``found``: 1 to ``n`` on its elements.
    found : 2-D `~numpy.ndarray` of bool
        The regions' elements.

    Returns
    -------
    top : 1-D `~numpy.ndarray`
        The largest value of regions 1 to ``n``, in ``values``' dtype.
    at : 2-D `~numpy.ndarray` of int
        Its (row, column), shape ``(n, 2)``.
    """
    where = np.flatnonzero(found)
    if not where.size:
        return values.ravel()[:0], np.zeros((0, 2), dtype=np.intp)
    label = labels.ravel()[where]
    value = values.ravel()[where]
    order = np.lexsort((value, label))  # by region, then value
    last = order[np.append(np.flatnonzero(np.diff(label[order])),
                           order.size - 1)]
    rows, cols = np.unravel_index(where[last], values.shape)
    return value[last], np.column_stack([rows, cols]).astype(np.intp)


def _below_reach(smooth, centre, width, shape, *, sharp=None):
    """
    The lift of the stars below the reach of the matched search, from the
    luminosity function of the sources at it (`REACH_SPAN`,
    `BELOW_DEPTH`): sources sharper than a star left out (``sharp``), a
    slope fitted to fewer than `REACH_FEW_SOURCES` of them taken as rising
    only `REACH_FEW_NSIGMA` standard errors above `RISING_SLOPE`; from
    more, those that brighter sources hide allowed for (`_unhidden`).
    Stars wider than the filter (`_psf_spread` above `BELOW_WIDE_SPREAD`)
    scale the light at the reach, and a function that does not rise is
    extrapolated too where that lift exceeds `BELOW_WIDE_NSIGMA` times its
    error.

    Parameters
    ----------
    smooth : 2-D `~numpy.ndarray`
        The matched-filtered cells of the frame (`faint_light`).
    centre, width : float
        The filtered sky's level and scatter (`_filtered_sky`).
    shape : tuple of int
        The shape of the binned frame.
    sharp : callable, optional
        ``sharp(at, top, sign)``: True for the sources sharper than a star
        (`_sharper_than_stars`), given their brightest blocks, the heights
        of their filtered peaks over the level and the sign of the search;
        None (default): none.

    Returns
    -------
    below : float
        The lift times the frame's usable pixels, in the cells' unit (0
        where the luminosity function does not rise towards the reach, or
        holds too few sources to tell, unless the stars are wide).
    slope : float
        The fitted slope ``alpha`` (NaN for too few sources; before the
        hidden sources are allowed for).
    bound : float
        The largest lift the sources at the reach allow (`BOUND_NSIGMA`),
        as ``below`` (at least ``below``; 0 for too few sources, or no
        light at the reach).
    """
    low, step = MATCHED_SEED, math.sqrt(2.0)
    light, z, seen, n_reach = 0.0, None, None, 0
    for sign in (1, -1):  # the noise's troughs, found as its peaks
        peaks = _block_peaks(smooth, shape, sign)
        found = _segments(peaks > sign * centre + MATCHED_NSIGMA * width,
                          peaks > sign * centre + low * width, npixels=1)
        labels, n = ndimage.label(found, structure=np.ones((3, 3), bool))
        if not n:
            continue
        top, at = _region_peaks(peaks, labels, found)
        top = top.astype(float) - sign * centre
        if sign == 1:  # (every region hides, a cosmic ray's too)
            seen = _visible(labels, top / width, low, step)
        if sharp is not None:
            top = top[~sharp(at, top, sign)]
        at_reach = top < low * step * width
        light += sign * float(np.sum(top[at_reach])) * FAINT_LIGHT_AREA
        if sign == 1:
            n_reach = int(np.count_nonzero(at_reach))
            z = top / width
            z = z[(z >= low) & (z < low * REACH_SPAN)]
    if z is None or z.size < REACH_MIN_SOURCES:
        return 0.0, math.nan, 0.0
    slope, error = _power_law_slope(z, low, low * REACH_SPAN)
    if z.size < REACH_FEW_SOURCES:
        error *= REACH_FEW_NSIGMA
    alpha, error, seen = _unhidden(slope, error, seen, step, z.size)
    if not light > 0:
        return 0.0, slope, 0.0
    rising = alpha - error > RISING_SLOPE
    spread = _psf_spread(smooth, centre, width, shape)
    wide = spread > BELOW_WIDE_SPREAD
    per_ln = light / math.log(step) / seen * (spread if wide else 1.0)
    bound = per_ln / (2.0 - min(alpha + BOUND_NSIGMA * error,
                                BELOW_MAX_SLOPE))
    if not (rising or wide):
        return 0.0, slope, bound
    depth = 2.0 - min(alpha, BELOW_MAX_SLOPE)
    lift = BELOW_DEPTH * per_ln / depth
    if not rising and not (lift > BELOW_WIDE_NSIGMA * lift * math.hypot(
            1.0 / math.sqrt(max(n_reach, 1)), error / depth)):
        return 0.0, slope, bound
    return lift, slope, max(bound, lift)


def _psf_spread(smooth, centre, width, shape):
    """
    The light of the frame's stars per unit of their filtered peak over
    the level, in units of `FAINT_LIGHT_AREA` (`SPREAD_PEAKS`,
    `SPREAD_CORE`, `SPREAD_RING`, `SPREAD_ISOLATION`, `SPREAD_STARS`).

    Parameters
    ----------
    smooth : 2-D `~numpy.ndarray`
        The matched-filtered cells of the frame (`faint_light`).
    centre, width : float
        The filtered sky's level and scatter (`_filtered_sky`).
    shape : tuple of int
        The shape of the binned frame.

    Returns
    -------
    spread : float
        The median ratio; NaN from fewer than `SPREAD_MIN_STARS` stars.
    """
    height = _block_peaks(smooth, shape) - centre
    lo, hi = (v * width for v in SPREAD_PEAKS)
    candidates = np.flatnonzero(((height > lo) & (height < hi)).ravel())
    candidates = candidates[np.argsort(-height.ravel()[candidates],
                                       kind='stable')][:SPREAD_STARS]
    size = SPREAD_RING[1]
    yy, xx = np.mgrid[-size:size + 1, -size:size + 1]
    r = np.hypot(yy, xx)
    core, ring = r < SPREAD_CORE, (r >= SPREAD_RING[0]) & (r < size)
    ny, nx = smooth.shape
    ratios = []
    for k in candidates:
        by, bx = divmod(int(k), shape[1])
        block = smooth[2 * by:2 * by + 2, 2 * bx:2 * bx + 2]
        dy, dx = np.unravel_index(int(np.argmax(block)), block.shape)
        y, x = 2 * by + dy, 2 * bx + dx
        if y < size or x < size or y >= ny - size or x >= nx - size:
            continue
        stamp = smooth[y - size:y + size + 1, x - size:x + size + 1]
        top = stamp[size, size]
        if top < stamp.max():
            continue  # a brighter star's flank
        others = ((stamp == ndimage.maximum_filter(stamp, 3))
                  & (stamp - centre > SPREAD_ISOLATION * (top - centre)))
        if np.count_nonzero(others) > 1:
            continue
        sky = float(np.median(stamp[ring]))
        # cells are means of 2 x 2 pixels: 4 pixels' light each
        ratios.append(4.0 * float(np.sum(stamp[core] - sky))
                      / ((top - sky) * FAINT_LIGHT_AREA))
    if len(ratios) < SPREAD_MIN_STARS:
        return math.nan
    return float(np.median(ratios))


def _unhidden(slope, error, seen, step, n):
    """The slope of the luminosity function at the reach and its error,
    less the flattening of the sources the brighter ones hide, and the
    fraction of the frame where a source at the reach shows (`_visible`,
    ``seen``), from a slope fitted to ``n`` sources (`BELOW_HIDDEN_ERROR`;
    as fitted, and 1, for fewer than `REACH_FEW_SOURCES`)."""
    if n < REACH_FEW_SOURCES:
        return slope, error, 1.0
    hidden = _hidden_slope(seen, step)
    return (slope + hidden, math.hypot(error, BELOW_HIDDEN_ERROR * hidden),
            max(float(seen[1]), BELOW_MIN_VISIBLE))


def _visible(labels, z, low, step):
    """
    The fraction of a frame where a source of each height from ``low``
    to ``low * REACH_SPAN`` (by factors ``step``) would be found as a
    region of its own: off the regions of the sources at least as high,
    grown by a block (a region touching them merges with them).

    Parameters
    ----------
    labels : 2-D `~numpy.ndarray` of int
        The regions found (``scipy.ndimage.label``: 1 to ``n``).
    z : 1-D `~numpy.ndarray`
        The height of each region's peak (filtered standard deviations),
        region 1 first.
    low, step : float
        The lowest height and the factor between heights.

    Returns
    -------
    seen : 1-D `~numpy.ndarray`
        The fraction at each height, ``low`` first.
    """
    n = 1 + int(round(math.log(REACH_SPAN) / math.log(step)))
    grow = np.ones((3, 3), dtype=bool)
    seen = np.empty(n)
    keep = np.zeros(z.size + 1, dtype=bool)
    for i in range(n):
        keep[1:] = z >= low * step ** i
        seen[i] = 1.0 - float(np.mean(ndimage.binary_dilation(keep[labels],
                                                              grow)))
    return seen


def _hidden_slope(seen, step):
    """How much the regions of brighter sources flatten the luminosity
    function found: the slope of ``ln seen`` (`_visible`) against the log
    of the height, whose steps are factors ``step``."""
    at = np.arange(seen.size) * math.log(step)
    return float(np.polyfit(at, np.log(np.maximum(seen, BELOW_MIN_VISIBLE)),
                            1)[0])


def _wing_light(cells, blocks, full):
    """
    The light of the masked stars' wings per unmasked pixel, and its
    error, from the profile of the frame's brightest isolated stars
    (`WING_EDGES`).

    Parameters
    ----------
    cells : 2-D `~numpy.ndarray`
        The frame less its level, in cells of 2 x 2 pixels (`_cells`).
    blocks : 2-D `~numpy.ndarray` of bool
        The binned source mask.
    full : 2-D `~numpy.ndarray` of bool
        The blocks whose pixels are all usable (a profile star's window
        must hold only such blocks).

    Returns
    -------
    wings : tuple of float
        The light and its error (the cells' unit per pixel): the law best
        fitted, its amplitude's error and the spread of the light the
        slopes within a chi-square of 1 of it give, in quadrature; NaN
        where fewer than `WING_MIN_STARS` stars show a profile or the
        frame has no unmasked block.
    """
    off = ~blocks
    if not off.any() or not blocks.any():
        return math.nan, math.nan
    sky = _filtered_sky(cells[:2 * blocks.shape[0], :2 * blocks.shape[1]],
                        lambda ys, xs: off[ys[:, None] // 2, xs[None, :] // 2])
    profile = None if sky is None else _wing_profile(cells, off, full,
                                                     sky[1])
    if profile is None:
        return math.nan, math.nan
    fits = _wing_fits(*profile)
    best = min(fits)
    # the slopes the profile allows (chi-square within 1 of the best's)
    allowed = [fit for fit in fits if fit[0] <= best[0] + 1.0]
    spread = _wing_spread(cells, blocks)
    wing, error = spread(best)
    apart = max(abs(spread(fit)[0] - wing)
                for fit in (allowed[0], allowed[-1]))
    return wing, math.hypot(error, apart)


def _wing_profile(cells, off, full, noise):
    """
    The stacked profile of the brightest isolated stars (`_wing_light`).

    Parameters
    ----------
    cells : 2-D `~numpy.ndarray`
        The frame less its level, in cells of 2 x 2 pixels.
    off, full : 2-D `~numpy.ndarray` of bool
        The blocks off the source mask, and those whose pixels are all
        usable.
    noise : float
        A cell's standard deviation.

    Returns
    -------
    profile : tuple or None
        The mean light per cell in each ring of `WING_EDGES` (each star's
        median there, less that of the sky round it), its weight (inverse
        variance) and the stars' mean light within `WING_CORE` pixels;
        None for fewer than `WING_MIN_STARS` stars.
    """
    from scipy.spatial import cKDTree  # (not at start: a slow import)

    cy, cx = cells.shape
    edges = np.asarray(WING_EDGES)
    rc = int(math.ceil(WING_LOCAL / 2.0))  # the window's half side, cells
    # the local maxima above the neighbours' threshold, from the cells
    # above it alone (no temporaries of the frame's size but a mask)
    py, px = np.divmod(np.flatnonzero(cells > WING_NEIGHBOUR * noise), cx)
    height = cells[py, px].astype(float)
    top = np.ones(py.size, dtype=bool)
    for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1),
                   (1, 0), (1, 1)):
        top &= height >= cells[np.clip(py + dy, 0, cy - 1),
                               np.clip(px + dx, 0, cx - 1)]
    py, px, height = py[top], px[top], height[top]
    tree = cKDTree(np.column_stack([py, px]))
    grid = np.arange(-rc, rc + 1)
    r = 2.0 * np.hypot(grid[:, None], grid[None, :])
    ring = np.digitize(r, edges) - 1
    local = (r >= edges[-1]) & (r < WING_LOCAL)
    sums = np.zeros(edges.size - 1)
    n_pix = np.zeros(edges.size - 1)
    core_light, n_stars = 0.0, 0
    for i in np.argsort(-height)[:WING_CANDIDATES]:
        if height[i] < WING_PEAK * noise or n_stars == WING_STARS:
            break
        y, x = int(py[i]), int(px[i])
        if not (rc <= y < cy - rc and rc <= x < cx - rc and np.all(
                full[(y - rc) // 2:(y + rc) // 2 + 1,
                     (x - rc) // 2:(x + rc) // 2 + 1])):
            continue
        near = np.asarray(tree.query_ball_point((y, x), rc + WING_CORE),
                          dtype=np.intp)
        near = near[near != i]
        if np.any(height[near] > WING_ISOLATION * height[i]):
            continue
        keep = np.ones(r.shape, dtype=bool)
        for j in near:  # the fainter neighbours' cores
            keep &= 2.0 * np.hypot(grid[:, None] - (py[j] - y),
                                   grid[None, :] - (px[j] - x)) >= WING_CORE
        sky = keep & local & off[(y + grid[:, None]) // 2,
                                 (x + grid[None, :]) // 2]
        if not np.any(sky):
            continue
        win = cells[y - rc:y + rc + 1, x - rc:x + rc + 1].astype(float)
        # (medians: a neighbour's wing covers a side of a ring, not all)
        win -= float(np.median(win[sky]))
        core_light += 4.0 * float(np.sum(win[r < WING_CORE]))
        for k in range(sums.size):
            on = keep & (ring == k)
            if np.any(on):
                sums[k] += float(np.median(win[on])) * np.count_nonzero(on)
                n_pix[k] += np.count_nonzero(on)
        n_stars += 1
    if n_stars < WING_MIN_STARS or not core_light > 0 or not np.all(n_pix):
        return None
    # (a median of independent cells: pi / 2 times the mean's variance)
    return sums / n_pix, n_pix / noise ** 2 * (2.0 / math.pi), \
        core_light / n_stars


def _wing_fits(mean, weight, core):
    """The power laws of `WING_SLOPES` fitted to a stacked profile
    (`_wing_profile`), each with a constant (what the rings share: the
    sky round the stars, other stars' light), by weighted least squares:
    ``(chi2, gamma, amplitude, its error)`` each, the amplitude per unit
    of a star's light within `WING_CORE` pixels."""
    edges = np.asarray(WING_EDGES)
    mid = np.sqrt(edges[:-1] * edges[1:])
    root = np.sqrt(weight)
    fits = []
    for gamma in WING_SLOPES:
        design = np.column_stack([core * mid ** -gamma,
                                  np.ones_like(mid)]) * root[:, None]
        coef, _, _, _ = np.linalg.lstsq(design, mean * root, rcond=None)
        chi2 = float(np.sum((mean * root - design @ coef) ** 2))
        cov = np.linalg.inv(design.T @ design)
        fits.append((chi2, gamma, float(coef[0]), math.sqrt(cov[0, 0])))
    return fits


def _wing_spread(cells, blocks):
    """
    A function of a fit of `_wing_fits` giving the light it spreads over
    the unmasked pixels, and its error: each masked segment's light (the
    cells' sum over it, at its brightest cell's block) spread with the
    fitted law out to `WING_LOCAL` pixels (no further than the profile was
    measured), its mean over the unmasked blocks.
    """
    from scipy.signal import fftconvolve  # (not at start: a slow import)

    cy, cx = cells.shape
    ny, nx = blocks.shape
    labels, n = ndimage.label(blocks, structure=np.ones((3, 3), bool))
    sums = np.zeros(blocks.shape)  # the cells' sum in each block
    for dy in (0, 1):
        for dx in (0, 1):
            part = cells[dy::2, dx::2]
            sums[:part.shape[0], :part.shape[1]] += part
    light = 4.0 * np.bincount(labels[blocks], weights=sums[blocks],
                              minlength=n + 1)[1:]
    _, at = _region_peaks(_block_peaks(cells, blocks.shape), labels, blocks)
    sources = np.zeros(blocks.shape)
    np.add.at(sources, (at[:, 0], at[:, 1]), np.maximum(light, 0.0))
    reach = np.arange(-int(WING_LOCAL // MASK_BIN),
                      int(WING_LOCAL // MASK_BIN) + 1)
    dist = np.maximum(MASK_BIN * np.hypot(reach[:, None], reach[None, :]),
                      MASK_BIN)
    off = ~blocks

    def spread(fit):
        _, gamma, amplitude, error = fit
        law = np.where(dist < WING_LOCAL, dist ** -gamma, 0.0)
        unit = float(np.mean(fftconvolve(sources, law, mode='same')[off]))
        return amplitude * unit, error * unit

    return spread


def _full_counts(shape):
    """The pixels of each `MASK_BIN` x `MASK_BIN` block of a frame of
    ``shape`` (fewer in the last row and column of blocks when its sides
    are not multiples of it)."""
    sides = [np.diff(np.append(np.arange(0, n, MASK_BIN), n)) for n in shape]
    return np.outer(*sides)


#: The fraction of a Gaussian below one standard deviation under its
#: mean, ``Phi(-1)``: the quantile `_filtered_sky` takes its width from.
LOWER_SIGMA_QUANTILE = 0.158655


def _filtered_sky(smooth, keep, min_sample=0):
    """
    The level and scatter of matched-filtered sky, from its lower half.

    Parameters
    ----------
    smooth : 2-D `~numpy.ndarray`
        The matched-filtered frame (or its cells).
    keep : callable
        ``keep(ys, xs)``: the bool array of the sky among the rows ``ys``
        and columns ``xs`` (index arrays) of the grid sampled, every
        ``stride``-th row and column (about `SUBSAMPLE_MIN` values).
    min_sample : int, optional
        Fewest sky values to measure on (default 0: any).

    Returns
    -------
    sky : tuple of float or None
        The centre (the sample's median) and width (the median less the
        `LOWER_SIGMA_QUANTILE` quantile: the lower half's, which faint
        stars do not lift); None for fewer than ``min_sample`` values or a
        width that is not positive.
    """
    stride = max(1, int(math.sqrt(smooth.size / SUBSAMPLE_MIN)))
    ys = np.arange(0, smooth.shape[0], stride)
    xs = np.arange(0, smooth.shape[1], stride)
    sample = smooth[::stride, ::stride][keep(ys, xs)]
    if sample.size < min_sample:
        return None
    centre = float(median(sample))
    width = centre - float(np.quantile(sample, LOWER_SIGMA_QUANTILE))
    return (centre, width) if width > 0 else None


def _matched_regions(values, low, seed, grow):
    """The 8-connected regions of ``values`` above ``low`` that hold a
    value above ``seed``, grown by ``grow`` pixels (`_dilated`): the
    sources of the matched-filter search."""
    return _dilated(_segments(values > low, values > seed, npixels=1), grow)


def matched_pixels(image, bad, *, grow=MATCHED_GROW):
    """
    Sources found per pixel by the matched filter.

    ``image`` filtered with a Gaussian of `MATCHED_SIGMA` pixels, the
    8-connected regions above `MATCHED_NSIGMA` times the filtered sky's
    scatter that hold a pixel above `MATCHED_SEED` (the scatter and level
    from the lower half of the filtered good pixels, as `matched_blocks`:
    correlated noise raises the thresholds with it), grown. A star of 1000
    e- (1.5 px) on a sky of 15 e- rms peaks at 4.7 standard deviations in
    one pixel but at 12 in the filtered frame, and its wings are masked
    with it.

    Parameters
    ----------
    image : 2-D `~numpy.ndarray`
        A sky-subtracted frame.
    bad : 2-D `~numpy.ndarray` of bool
        Its pixels to leave out (taken as 0).
    grow : int, optional
        Grow the regions by this many pixels (default `MATCHED_GROW`; 0:
        the regions themselves).

    Returns
    -------
    sources : 2-D `~numpy.ndarray` of bool
        ``image``'s shape; all False where fewer than a quarter of
        `MATCHED_MIN_PIXELS` pixels are good.
    """
    good = ~bad
    if np.count_nonzero(good) < MATCHED_MIN_PIXELS // 4:
        return np.zeros(image.shape, dtype=bool)
    smooth = _gaussian(np.where(bad, 0.0, image), MATCHED_SIGMA)
    sky = _filtered_sky(smooth, lambda ys, xs: good[ys[:, None], xs])
    if sky is None:
        return np.zeros(image.shape, dtype=bool)
    centre, width = sky
    smooth -= centre
    smooth /= width
    return _matched_regions(smooth, MATCHED_NSIGMA, MATCHED_SEED, grow)


def _cells(frame, usable, zero, scale):
    """The frame less ``zero``, divided by ``scale``, averaged over the
    usable pixels of cells of 2 x 2 pixels (0 where none), float32; one
    pass in bands of rows."""
    ny, nx = frame.shape
    cy, cx = -(-ny // 2), -(-nx // 2)
    cells = np.empty((cy, cx), dtype=np.float32)
    plain = (usable.all_finite and frame.mask is None
             and frame.uncertainty is None)
    band = pairs = None
    for lo, hi in usable.bands():  # bands start on a block row
        h = hi - lo
        rows = -(-h // 2)
        if band is None:  # the first band is the tallest; the padding
            # column (odd nx) stays 0
            band = np.zeros((rows * 2, cx * 2), dtype=np.float32)
            pairs = np.empty((rows, cx * 2), dtype=np.float32)
        b = band[:rows * 2]
        b[h:] = 0.0  # the padding row (odd h)
        count = None
        if plain:
            if scale == 1.0:
                np.subtract(frame.data[lo:hi], zero, out=b[:h, :nx],
                            casting='unsafe')
            else:  # scaled before single precision
                b[:h, :nx] = (frame.data[lo:hi] - zero) / scale
            if h % 2 or nx % 2:
                count = np.zeros(b.shape, dtype=np.float32)
                count[:h, :nx] = 1.0
        else:
            good = usable.rows(lo, hi)
            b[:h, :nx] = np.where(good, (frame.data[lo:hi] - zero) / scale,
                                  0.0)
            count = np.zeros(b.shape, dtype=np.float32)
            count[:h, :nx] = good
        total = cells[lo // 2:lo // 2 + rows]
        _cell_sums(b, out=total, pairs=pairs[:rows])
        if count is None:
            total *= 0.25
        else:
            n = _cell_sums(count)
            np.divide(total, n, out=total, where=n > 0)
            total[n == 0] = 0.0
    return cells


def _cell_sums(image, *, out=None, pairs=None):
    """Sums of the 2 x 2 cells of ``image`` (even sides): the pairs of
    rows first (contiguous), then the pairs of their columns; ``out`` and
    ``pairs`` (half the rows) optional buffers."""
    pairs = np.add(image[0::2], image[1::2], out=pairs)
    return np.add(pairs[:, 0::2], pairs[:, 1::2], out=out)


def _block_peaks(cells, shape, sign=1):
    """The largest of the 2 x 2 ``cells`` in each block of ``shape``
    (-inf beyond the frame); with ``sign`` -1, that of the negated cells
    (without a negated copy of them)."""
    padded = cells
    if cells.shape != (shape[0] * 2, shape[1] * 2):
        padded = np.full((shape[0] * 2, shape[1] * 2), sign * -np.inf,
                         dtype=cells.dtype)
        padded[:cells.shape[0], :cells.shape[1]] = cells
    pick = np.maximum if sign > 0 else np.minimum
    out = pick(padded[0::2, 0::2], padded[1::2, 0::2])
    pick(out, padded[0::2, 1::2], out=out)
    pick(out, padded[1::2, 1::2], out=out)
    if sign < 0:
        np.negative(out, out=out)
    return out


class BackgroundVariation:
    """
    How far the background under each pixel is from its median over the frame.

    The coarse local background that a whole-frame sky
    (`~ccdphot_ext.SkyEstimate.from_image`) keeps as its
    ``background_variation``; calling it, ``variation(x, y)``, gives the
    variation (data unit per pixel) at pixel positions ``x``, ``y``
    (scalars or arrays, broadcast; positions off the frame take the
    value at its nearest edge), and `error` the map's own noise there.

    The background is the median of cells of 64 x 64 pixels (the means of
    their blocks of 4 x 4 pixels; the median passes over the few blocks
    that hold a star), median filtered over 3 x 3 cells about their
    least-squares quadratic surface (their plane on a grid of fewer than
    `QUADRATIC_MIN_CELLS` cells a side: a cell far off its neighbours is
    replaced, a gradient and a vignetted frame's curvature kept whole) and
    interpolated bilinearly between cell centres, at each position (not at
    the block of 4 x 4 pixels holding it: on a sky tilted by 0.3 ADU per
    pixel a block's value is up to 0.5 ADU off the value at a star in
    it). `offsets` holds its value at each block's centre. A map given as
    blocks (``local``) is interpolated between their centres.
    `~ccdphot_ext.measure` and
    `~ccdphot_ext.photometer` flag and warn where this variation biases a
    flux measured against the whole-frame level;
    `~ccdphot_ext.gradient_check` reports it (``map_offset``).

    Parameters
    ----------
    local : 2-D array_like
        The coarse background (data unit per pixel) on blocks of 4 x 4
        pixels, block ``(i, j)`` covering pixels ``[4 * i:4 * i + 4,
        4 * j:4 * j + 4]``.
    shape : tuple of int, optional
        The shape of the frame it was measured on: the variation describes
        that frame only (a sky estimated on a cutout says nothing of the
        frame around it). None (default): not recorded.
    counts : 2-D array_like, optional
        The usable pixels of each block (0 to 16: finite, unmasked, on the
        frame), the shape of ``local``; they set each cell's noise
        (`error`). None (default): every block whole.
    cell_std : float, optional
        The pixel noise (data unit) that the scatter of the map's cells
        about their quadratic surface implies (`scatter_std`); None
        (default): not measured.
    cell_dof : int, optional
        Its degrees of freedom (the cells less the surface's 6 terms;
        default 0).
    curved : bool, optional
        The cells were filtered about their quadratic surface on a grid of
        fewer than `QUADRATIC_MIN_CELLS` cells a side, whose cells showed
        the curvature of a vignetted sky (`CURVATURE_P`); the map's
        `error` is simulated through the same filter. Default False.

    Attributes
    ----------
    shape : tuple of int or None
        The frame's shape, as given.
    cell_std : float or None
        As given.
    cell_dof : int
        As given.
    curved : bool
        As given.

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

    def __init__(self, local, shape=None, *, counts=None, cell_std=None,
                 cell_dof=0, curved=False):
        self._local = np.asarray(local)
        if self._local.ndim != 2:
            raise ValueError(f'local must be a 2-D array, got '
                             f'{self._local.ndim} dimension(s)')
        self.shape = None if shape is None else check_shape(shape)
        if counts is None:
            counts = np.full(self._local.shape, float(MASK_BIN ** 2))
        counts = np.asarray(counts)
        if counts.shape != self._local.shape:
            raise ValueError(f'counts must have the shape of local, '
                             f'{self._local.shape}, got {counts.shape}')
        self._blocks = self._local.shape
        self._cell_noise = _cell_noise(counts)
        self.cell_std = positive_scalar(cell_std, 'cell_std',
                                        allow_zero=True)
        self.cell_dof = positive_integer(cell_dof, 'cell_dof', allow_zero=True)
        if not isinstance(curved, (bool, np.bool_)):
            raise TypeError(f'curved must be a bool, got '
                            f'{type(curved).__name__}')
        self.curved = bool(curved)
        #: How the frame's pixel noise varies across it (a
        #: `~ccdphot_ext.background.noisevariation.NoiseVariation`, set by
        #: the whole-frame sky for a frame without an uncertainty map), or
        #: None.
        self.noise = None
        # the map's cells and chord (`_cell_map`'s surface) when the
        # whole-frame sky made it: read at each position; None: the blocks
        # interpolated between their centres
        self._surface = None
        self._zero = 0.0  # subtracted from the map: its offsets
        # the error of each cell's level beside its noise (the lift of a
        # cell the source mask covers, `_lift_error`): added to `error`
        # where the map reads it; None: none
        self._lift_error = None

    @functools.cached_property
    def offsets(self):
        """
        ``local`` minus its median over the frame (2-D ndarray).

        Computed when first asked for: a sky whose variation is never
        looked at does not pay for the median.
        """
        local = self.__dict__.pop('_local')  # not kept twice
        self._zero = float(np.nanmedian(local))
        return local - self._zero

    def centred_on(self, weights):
        """
        Take this map's offsets from its mean over a level's pixels.

        A whole-frame level is the mean sky of the pixels it used, not of
        the frame: where a source mask leaves more sky in some parts of a
        curved frame than in others, the two differ. Offsets from the
        map's median miss that difference (a 384 x 384 frame of 150 ADU
        vignetted by 2% at its edge midpoints, stars on a grid short of
        its edges, so that the mask left more sky near them: the level
        read 0.7 ADU below the frame's mean sky, 14 times its error);
        offsets from the map's mean over the level's own pixels are the
        background under each pixel less the level subtracted.

        Parameters
        ----------
        weights : 2-D array_like
            The pixels the level used in each block of 4 x 4 pixels (the
            shape of `offsets`; 0 for a block it did not use).

        Returns
        -------
        variation : `BackgroundVariation`
            A new map (the same noise and shape); this map itself when no
            block with a finite offset has a positive weight.

        Raises
        ------
        ValueError
            If ``weights`` does not have the shape of `offsets`.
        """
        weights = np.asarray(weights, dtype=float)
        if weights.shape != self._blocks:
            raise ValueError(f'weights must have the shape of the map\'s '
                             f'blocks, {self._blocks}, got {weights.shape}')
        # (the map itself, or its offsets when computed: no median taken)
        local = self.__dict__.get('offsets', self.__dict__.get('_local'))
        good = np.isfinite(local) & (weights > 0)
        if not good.any():
            return self
        zero = np.average(local[good], weights=weights[good])
        centred = copy.copy(self)
        for moved in ('_plane', '_noise', '_local'):  # the level moves
            centred.__dict__.pop(moved, None)
        centred.offsets = local - zero
        # (local is the offsets when they were computed: from their zero)
        centred._zero = float(zero) + (
            self._zero if 'offsets' in self.__dict__ else 0.0)
        centred._weights = weights
        return centred

    @functools.cached_property
    def _noise(self):
        """The variances and neighbour covariances of the offsets at the
        cell centres for a pixel noise of 1 (`_map_noise`)."""
        return _map_noise(self._cell_noise, self._blocks,
                          weights=self.__dict__.get('_weights'),
                          quadratic=self.curved)

    def error(self, pixel_std, x=None, y=None):
        """
        The noise of the map itself at pixel positions, on a frame of pure
        noise.

        A cell's level is the median of its blocks' means: its error is
        ``k(n) * pixel_std * sqrt(n) / sum(sqrt(c_i))`` for the ``n``
        blocks holding ``c_i`` usable pixels
        (`~ccdphot_ext.background.estimators.median_efficiency`; a whole
        cell of 256 blocks of 16 pixels: ``1.25 * pixel_std / 64``), larger
        in a cell cut by the frame's edge or by a mask. This noise is
        carried through the 3 x 3 median filter, the subtraction of the
        map's median and the bilinear interpolation by simulating the map
        (`NOISE_DRAWS` maps of Gaussian cell levels, the same draws for
        every call): inside a frame of whole cells the map keeps about a
        third of a cell's error, at the frame's corners, where the filter
        repeats the outer cells and the map is extrapolated beyond the
        outer cell centres, about all of it; a cell without usable pixels
        takes the least-squares plane of the others (their quadratic
        surface where the map is filtered about it). On
        simulated flat frames (128 to 512 pixels a side, a strip of
        columns masked or not, and 41 x 211 and 130 x 300 pixels) the
        offsets over this error have a spread of 0.89 to 1.08. Stars that
        the source mask leaves add scatter of their own: on a crowded
        frame the pixel noise is `scatter_std`'s, which holds it (the
        offsets of flat frames with 300 and 1000 stars on 512 x 512
        pixels spread 1.3 and 2.1 times the pure-noise error, 1.1 and
        0.99 times this one). A cell the source mask covers, whose
        level is that of all its blocks less the median lift of the
        others, adds the spread of those lifts (`_lift_error`) where the
        map reads it.

        Parameters
        ----------
        pixel_std : float or array_like
            The per-pixel noise of the frame (data unit).
        x : float or array_like, optional
            Pixel columns (broadcast with ``y``, as when calling the map;
            off the frame, at its nearest edge; NaN: NaN). None (default),
            with ``y`` None: the error at every block's centre, the shape
            of `offsets`.
        y : float or array_like, optional
            Pixel rows, with ``x``.

        Returns
        -------
        error : float or `~numpy.ndarray`
            The error of the map's offset (data unit per pixel).

        Raises
        ------
        ValueError
            If ``pixel_std`` is negative, infinite or beyond the range
            whose square is a float (NaN gives NaN), or does not broadcast
            with the positions.
        TypeError
            If ``pixel_std`` is not a number or an array of numbers, or
            only one of ``x`` and ``y`` is given.

        Examples
        --------
        A cell's error is 1.25 / 64 per unit of pixel noise (1.25 for a
        noise of 64); on a 512 x 512 frame the map keeps about 0.3 of it at
        the centre, 1.15 at a corner:

        >>> from ccdphot_ext.background.globalsky import BackgroundVariation
        >>> import numpy as np
        >>> variation = BackgroundVariation(np.zeros((128, 128)))
        >>> err = variation.error(64.0, [256.0, 0.0], [256.0, 0.0])
        >>> [round(float(e), 2) for e in err]
        [0.37, 1.44]
        """
        std = scale_array(pixel_std, 'pixel_std', allow_zero=True,
                          allow_nan=True)
        if (x is None) != (y is None):
            raise TypeError('error takes both x and y, or neither')
        by, bx = self._blocks
        if x is None:
            uy = np.arange(by, dtype=float)[:, None]
            ux = np.arange(bx, dtype=float)[None, :]
            unplaced = False
        else:
            uy, ux, unplaced = self._block_coordinates(x, y)
        variance = _interpolated_variance(self._noise, uy, ux, self._blocks)
        try:
            np.broadcast_shapes(std.shape, np.shape(variance))
        except ValueError:
            raise ValueError(f'pixel_std of shape {std.shape} does not '
                             'broadcast with the positions (shape '
                             f'{np.shape(variance)})') from None
        error = self.scatter_std(std) * np.sqrt(variance)
        if self._lift_error is not None:
            error = np.hypot(error, _interpolated(self._lift_error,
                                                  self._blocks, uy, ux))
        return np.where(unplaced, np.nan, error)[()]

    @functools.cached_property
    def _plane(self):
        """The coefficients of the offsets' least-squares plane on the
        blocks `_plane_basis` samples (NaN blocks left out)."""
        by, bx = self._blocks
        sy, sx = _sample_step(by), _sample_step(bx)
        sample = self.offsets[::sy, ::sx]
        values = sample.ravel().astype(float)
        finite = np.isfinite(values)
        if finite.all():
            return _plane_basis(self._blocks) @ values
        iy, ix = np.nonzero(np.isfinite(sample))
        if iy.size < 3:
            return np.full(3, np.nan)
        design = surface_design(*_centred(iy * sy, ix * sx, self._blocks))
        return np.linalg.lstsq(design, values[finite], rcond=None)[0]

    def plane_offset(self, x, y):
        """
        The offset of the map's least-squares plane at pixel positions.

        Where the map extrapolates (beyond the outer cells' centres, at
        the frame's edges) its own offset is noisy: its `error` there is
        up to four times that inside. The plane of all its blocks is
        known there to about a quarter of a cell's error, and tells a
        gentle gradient that the map's offset at the edge cannot.

        Parameters
        ----------
        x : float or array_like
            Pixel columns (broadcast with ``y``; off the frame, at its
            nearest edge; NaN: NaN).
        y : float or array_like
            Pixel rows.

        Returns
        -------
        offset : float or `~numpy.ndarray`
            The plane less the map's median (data unit per pixel); NaN on
            a grid of fewer than `PLANE_MIN_CELLS` cells a side, whose
            plane is the map itself (its median filter over 3 x 3 cells
            about the plane leaves it little else).
        """
        uy, ux, unplaced = self._block_coordinates(x, y)
        cy, cx = _centred(uy, ux, self._blocks)
        level, slope_y, slope_x = self._plane
        out = level + slope_y * cy + slope_x * cx
        return np.where(unplaced | self._plane_is_map, np.nan, out)[()]

    @property
    def _plane_is_map(self):
        """True on a grid of fewer than `PLANE_MIN_CELLS` cells a side."""
        return min(self._cell_noise.shape) < PLANE_MIN_CELLS

    @property
    def too_few_cells(self):
        """
        True on a grid of fewer than `PLANE_MIN_CELLS` cells a side: the
        offsets are about the map's median, not the level, so that an
        offset of the whole background from the level goes unseen.
        """
        return self._plane_is_map

    def plane_error(self, pixel_std, x, y):
        """
        The noise of `plane_offset` at pixel positions, on a frame of pure
        noise of ``pixel_std`` (`scatter_std` where the cells scatter
        beyond it): the same simulated maps as `error`.

        Parameters
        ----------
        pixel_std : float or array_like
            The per-pixel noise of the frame (data unit).
        x : float or array_like
            Pixel columns (broadcast with ``y``, as `plane_offset`).
        y : float or array_like
            Pixel rows.

        Returns
        -------
        error : float or `~numpy.ndarray`
            The error of the plane's offset (data unit per pixel); NaN
            where `plane_offset` is.
        """
        uy, ux, unplaced = self._block_coordinates(x, y)
        cy, cx = _centred(uy, ux, self._blocks)
        terms = surface_design(cy, cx).reshape(cy.shape + (3,))
        var = np.einsum('...i,ij,...j->...', terms, self._noise['plane'],
                        terms)
        error = self.scatter_std(pixel_std) * np.sqrt(np.maximum(var, 0.0))
        return np.where(unplaced | self._plane_is_map, np.nan, error)[()]

    def scatter_std(self, pixel_std):
        """
        The pixel noise the map's error is scaled by: ``pixel_std``, or
        `cell_std` where the cells scatter beyond it.

        Unmasked stars lift the cells unequally: their levels then scatter
        about their surface more than a pixel noise of ``pixel_std``
        allows (the map's offsets spread 1.3 times its pure-noise error
        with 300 stars of 300 to 10**4 ADU on a 512 x 512 frame, 2.1 times
        with 1000). Where ``cell_std**2 * cell_dof / pixel_std**2``
        exceeds the chi-square of ``cell_dof`` degrees of freedom at the
        significance `SCATTER_ALPHA`, and `cell_std` is below
        `SCATTER_MAX` times ``pixel_std``, `cell_std` is taken instead.

        Parameters
        ----------
        pixel_std : float or array_like
            The per-pixel noise of the frame (data unit).

        Returns
        -------
        std : float or `~numpy.ndarray`
            The pixel noise for the map's error (data unit).
        """
        std = np.asarray(pixel_std, dtype=float)
        if self.cell_std is None or self.cell_dof == 0:
            return std[()]
        from scipy.stats import chi2  # slow to import

        limit = chi2.isf(SCATTER_ALPHA, self.cell_dof) / self.cell_dof
        with np.errstate(invalid='ignore', divide='ignore'):
            beyond = ((self.cell_std ** 2 > limit * std ** 2)
                      & (self.cell_std < SCATTER_MAX * std))
        return np.where(beyond, self.cell_std, std)[()]

    @functools.cached_property
    def _taken_out(self):
        """Each cell's level less its filtered one (`_cell_map`), over the
        cell's noise for a pixel noise of 1, and the pixel noise those
        distances imply (the median of their absolute values,
        `MAD_TO_STD` times: unmasked stars lift the cells unequally)."""
        return _taken_out(self._surface[2], self._surface[0],
                          self._cell_noise)

    def _taken_std(self, pixel_std):
        """The pixel noise a cell's distance from its filtered level is
        judged by: `scatter_std`'s, or the larger one the distances
        imply."""
        return np.fmax(self.scatter_std(pixel_std), self._taken_out[2])

    def filtered_out(self, pixel_std, x, y):
        """
        What the map's median filter took out of the cells far off their
        neighbours, at pixel positions.

        The median filter over 3 x 3 cells replaces a cell far off its
        neighbours: so a large galaxy, or a glow over a few cells, which
        biases the fluxes of the stars on it, leaves the map unmoved (a
        Gaussian glow of 20 ADU and 25 pixels at the centre of a 256 x
        256 frame lifts its four inner cells by 4.7 ADU; the filtered
        map kept 0.2 of it at the centre). Where a cell's level is beyond
        `TAKEN_NSIGMA` times its noise from its filtered one (of
        ``pixel_std``, `scatter_std`'s, or the larger pixel noise the
        cells' distances imply: the median of their absolute values,
        `MAD_TO_STD` times), its distance, interpolated bilinearly between
        the cells' centres, is what the map leaves out; the map's offset
        plus it is the background there, known to a cell's error
        (`unfiltered_error`).

        Parameters
        ----------
        pixel_std : float
            The per-pixel noise of the frame (data unit).
        x : float or array_like
            Pixel columns (broadcast with ``y``; off the frame, at its
            nearest edge; NaN: NaN).
        y : float or array_like
            Pixel rows.

        Returns
        -------
        taken : float or `~numpy.ndarray`
            The level taken out (data unit per pixel): 0 away from such
            cells; NaN for a map given as blocks, which keeps no cells.
        """
        uy, ux, unplaced = self._block_coordinates(x, y)
        if self._surface is None:
            return np.where(True, np.nan, uy)[()]
        distance, z, _ = self._taken_out
        std = float(self._taken_std(pixel_std))
        with np.errstate(invalid='ignore', divide='ignore'):
            far = np.abs(z) > TAKEN_NSIGMA * std
        out = _interpolated(np.where(far, distance, 0.0), self._blocks, uy,
                            ux)
        return np.where(unplaced, np.nan, out)[()]

    def unfiltered_error(self, pixel_std, x, y):
        """
        The noise of the map's cells before its median filter, at pixel
        positions: each cell's error (`error`'s, of ``pixel_std`` or
        `scatter_std`, or of the larger pixel noise the cells' distances
        from the filtered ones imply, `filtered_out`) through the
        bilinear interpolation, the cells independent, and the error of
        their zero (their mean).

        Parameters
        ----------
        pixel_std : float or array_like
            The per-pixel noise of the frame (data unit).
        x : float or array_like
            Pixel columns (broadcast with ``y``).
        y : float or array_like
            Pixel rows.

        Returns
        -------
        error : float or `~numpy.ndarray`
            The error (data unit per pixel); NaN where `filtered_out` is,
            and on cells without usable pixels.
        """
        uy, ux, unplaced = self._block_coordinates(x, y)
        noise = self._cell_noise.astype(float)
        (i0, i1, j0, j1), (a, b, c, d) = _corners(self._blocks, noise.shape,
                                                  uy, ux)
        square = noise ** 2
        var = (a * a * square[i0, j0] + b * b * square[i0, j1]
               + c * c * square[i1, j0] + d * d * square[i1, j1])
        finite = np.isfinite(noise)
        var = var + np.sum(square[finite]) / max(finite.sum(), 1) ** 2
        if self._surface is None:
            return np.where(True, np.nan, var)[()]
        error = self._taken_std(pixel_std) * np.sqrt(var)
        return np.where(unplaced, np.nan, error)[()]

    def _block_coordinates(self, x, y):
        """Pixel positions ``x``, ``y`` (broadcast) as block coordinates
        (floats, block ``b`` at ``b``: its centre, pixel ``MASK_BIN * b +
        (MASK_BIN - 1) / 2``), off the frame at its nearest edge, and
        where either is NaN (its coordinate 0)."""
        x, y = np.broadcast_arrays(pixel_coordinates(x, 'x'),
                                   pixel_coordinates(y, 'y'))
        unplaced = np.isnan(x) | np.isnan(y)
        out = []
        for pos, blocks, axis in ((y, self._blocks[0], 0),
                                  (x, self._blocks[1], 1)):
            size = (MASK_BIN * blocks if self.shape is None
                    else self.shape[axis])
            pos = np.clip(np.where(unplaced, 0.0, pos), -0.5, size - 0.5)
            out.append((pos - (MASK_BIN - 1) / 2.0) / MASK_BIN)
        return out[0], out[1], unplaced

    def __call__(self, x, y):
        """The variation (data unit per pixel) at pixel positions ``x``,
        ``y`` (scalars or arrays, broadcast): the map interpolated
        bilinearly between its cells' centres at each position, as its
        blocks' values were (a map given as blocks: between their
        centres); positions off the frame take its edge's value, NaN
        positions NaN."""
        uy, ux, unplaced = self._block_coordinates(x, y)
        offsets = self.offsets  # (sets the zero)
        if self._surface is None:
            out = _interpolated(offsets, self._blocks, uy, ux, mesh=1)
        else:
            out = _cell_map_at(self._surface, self._blocks, uy,
                               ux) - self._zero
        if unplaced.any():
            out = np.where(unplaced, np.nan, out)
        return out[()]

    def __repr__(self):
        return (f'<coarse background variation, {MASK_BIN * MESH} px cells: '
                f'{np.nanmin(self.offsets):+.4g} to '
                f'{np.nanmax(self.offsets):+.4g}>')


def _taken_out(raw, filtered, cell_noise):
    """The cell levels ``raw`` less their filtered ones ``filtered``
    (`_cell_map`), those distances over the cells' noise ``cell_noise``
    for a pixel noise of 1 (0 where not finite), and the pixel noise the
    distances imply (`MAD_TO_STD` times the median of their absolute
    values; 0 without any)."""
    distance = (np.asarray(raw, dtype=float)
                - np.asarray(filtered, dtype=float))
    with np.errstate(invalid='ignore', divide='ignore'):
        z = distance / cell_noise
    finite = np.isfinite(z)
    implied = (MAD_TO_STD * float(np.median(np.abs(z[finite])))
               if finite.any() else 0.0)
    return distance, np.where(finite, z, 0.0), implied


def _cell_noise(counts):
    """The error of each cell's median of block means for a pixel noise of
    1, from the usable pixels ``counts`` of its blocks (NaN for a cell
    without any): ``k(n) sqrt(n) / sum(sqrt(c_i))`` over its ``n`` blocks
    with pixels, the median of means of unequal noise (asymptotically, the
    density of their mixture at its centre)."""
    counts = np.fmax(np.asarray(counts, dtype=np.float32), 0.0)  # NaN: 0
    n = _cell_sums_of(counts > 0)
    root = _cell_sums_of(np.sqrt(counts, out=counts))
    return _median_of_means_noise(n, root)


def _median_of_means_noise(n, root):
    """The error of a median of ``n`` block means for a pixel noise of 1,
    ``root`` the sum of the square roots of their pixel counts (NaN
    without any)."""
    with np.errstate(invalid='ignore', divide='ignore'):
        return median_efficiency(n) * np.sqrt(n) / root


def _map_noise(cell_noise, blocks, n_draws=None, weights=None,
               quadratic=False):
    """
    The noise of the offsets of a map of cells of noise ``cell_noise``
    (NaN: empty) over ``blocks`` (the block grid's shape), by simulation:
    `NOISE_DRAWS` maps of independent Gaussian cell levels, each empty
    cell filled from the others (`_fill_empty`), median filtered over 3 x 3 cells
    about their surface (`_median_filtered`, as `_local_background`;
    ``quadratic`` as `_cells_curved` found) and less the median
    of their bilinear interpolation (on about `SAMPLE_BLOCKS` blocks a
    side at most; with ``weights``, the blocks' weights as
    `BackgroundVariation.centred_on`'s, less its weighted mean: the noise
    of the zero is the noise of the offsets too). Returns
    the mean squares of the cell values (``var``) and of the products of
    each cell with its neighbour to the right (``right``), below
    (``down``), below right (``diagonal``) and of its right neighbour with
    the one below it (``anti``), each the shape of ``cell_noise`` (0 where
    there is no such neighbour), and the covariance of the coefficients of
    the least-squares plane of the offsets (``plane``, 3 x 3,
    `_plane_basis`). Seeded: the same for every map.
    """
    n_draws = NOISE_DRAWS if n_draws is None else n_draws
    my, mx = cell_noise.shape
    empty = np.isnan(cell_noise)
    noise = np.where(empty, 0.0, cell_noise)
    by, bx = blocks
    y0, y1, fy = _axis_weights(by, my)
    x0, x1, fx = _axis_weights(bx, mx)
    sy, sx = _sample_step(by), _sample_step(bx)
    y0, y1, fy = y0[::sy], y1[::sy], fy[::sy, None].astype(float)
    x0, x1, fx = x0[::sx], x1[::sx], fx[::sx].astype(float)
    out = {k: np.zeros((my, mx))
           for k in ('var', 'right', 'down', 'diagonal', 'anti')}
    out['plane'] = np.zeros((3, 3))
    basis = _plane_basis(blocks)
    if weights is not None:
        w_sample = np.asarray(weights, dtype=float)[::sy, ::sx].ravel()
        if w_sample.sum() > 0:
            w_sample = w_sample / w_sample.sum()
        else:  # no sampled block used: the median, as without weights
            weights = None
    rng = np.random.default_rng(NOISE_SEED)
    chunk = max(NOISE_CHUNK // (my * mx), 1)
    for start in range(0, n_draws, chunk):
        k = min(chunk, n_draws - start)
        grid = rng.standard_normal((k, my, mx)) * noise
        if empty.any():
            _fill_empty(grid, empty, quadratic=(
                quadratic or min(my, mx) >= QUADRATIC_MIN_CELLS))
        grid = _median_filtered(grid, quadratic=quadratic)
        rows = grid[:, y0] * (1 - fy) + grid[:, y1] * fy
        level = rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx
        if weights is None:
            centre = np.median(level.reshape(k, -1), axis=1)
        else:
            centre = level.reshape(k, -1) @ w_sample
        grid -= centre[:, None, None]
        coef = level.reshape(k, -1) @ basis.T
        coef[:, 0] -= centre
        out['plane'] += coef.T @ coef
        out['var'] += np.einsum('kij,kij->ij', grid, grid)
        out['right'][:, :-1] += np.einsum('kij,kij->ij', grid[:, :, :-1],
                                          grid[:, :, 1:])
        out['down'][:-1] += np.einsum('kij,kij->ij', grid[:, :-1],
                                      grid[:, 1:])
        out['diagonal'][:-1, :-1] += np.einsum(
            'kij,kij->ij', grid[:, :-1, :-1], grid[:, 1:, 1:])
        out['anti'][:-1, :-1] += np.einsum('kij,kij->ij', grid[:, :-1, 1:],
                                           grid[:, 1:, :-1])
    for value in out.values():
        value /= n_draws
    return out


def _plane_basis(blocks):
    """The least-squares operator (3 x n) that takes the offsets of the
    blocks ``blocks`` (the grid's shape) on the grid `_map_noise` samples
    (every `_sample_step`-th block along each axis) to the
    coefficients of their plane, ``(1, iy - cy, ix - cx)`` with ``c`` the
    grid's centre (`_centred`)."""
    by, bx = blocks
    iy = np.arange(0, by, _sample_step(by))
    ix = np.arange(0, bx, _sample_step(bx))
    iy, ix = np.meshgrid(iy, ix, indexing='ij')
    return np.linalg.pinv(surface_design(*_centred(iy, ix, blocks)))


def _sample_step(n):
    """The step between the blocks sampled along an axis of ``n`` blocks:
    ``n // SAMPLE_BLOCKS``, at least 1."""
    return max(n // SAMPLE_BLOCKS, 1)


def _centred(iy, ix, blocks):
    """Blocks ``iy``, ``ix`` (broadcast) as floats from the centre of a
    grid of ``blocks`` (its shape): the coordinates of the map's plane,
    whose terms are ``1, iy - cy, ix - cx`` (`surface_design`)."""
    iy, ix = np.broadcast_arrays(np.asarray(iy, dtype=float),
                                 np.asarray(ix, dtype=float))
    return iy - (blocks[0] - 1) / 2.0, ix - (blocks[1] - 1) / 2.0


def _interpolated_variance(noise, uy, ux, blocks):
    """The variance of the bilinearly interpolated map (`_interpolated`)
    at block coordinates ``uy``, ``ux`` (broadcast) from the cell moments
    ``noise`` of `_map_noise`."""
    (i0, i1, j0, j1), (a, b, c, d) = _corners(blocks, noise['var'].shape,
                                              uy, ux)
    var, right, down = noise['var'], noise['right'], noise['down']
    total = (a * a * var[i0, j0] + b * b * var[i0, j1]
             + c * c * var[i1, j0] + d * d * var[i1, j1]
             + 2 * (a * b * right[i0, j0] + c * d * right[i1, j0]
                    + a * c * down[i0, j0] + b * d * down[i0, j1]
                    + a * d * noise['diagonal'][i0, j0]
                    + b * c * noise['anti'][i0, j0]))
    return np.maximum(total, 0.0)


def _binned(frame, usable):
    """Mean (NaN where empty; float32, divided by the returned power of
    two, `power_of_two_scale`) and count of usable pixels per block
    (sources not masked), and that scale. Sets ``usable.all_finite``."""
    ny, nx = frame.shape
    by, bx = -(-ny // MASK_BIN), -(-nx // MASK_BIN)
    sums = np.empty((by, bx))
    counts = np.empty((by, bx), dtype=np.float32)  # at most MASK_BIN**2
    cols = np.arange(0, nx, MASK_BIN)
    widths = np.diff(np.append(cols, nx)).astype(np.float32)
    finite = True
    plain = frame.mask is None and frame.uncertainty is None
    for lo, hi in usable.bands():  # bands start on a block row
        rows = np.arange(0, hi - lo, MASK_BIN)
        out = slice(lo // MASK_BIN, lo // MASK_BIN + rows.size)
        data = frame.data[lo:hi]
        block = None
        if plain:
            # the block rows summed in reduceat's order, without a copy;
            # a NaN or inf pixel makes its block's sum so
            block = _block_sums(data, 0)
            if not np.isfinite(block).all():
                block = None
        if block is not None:
            heights = np.diff(np.append(rows, hi - lo)).astype(np.float32)
            counts[out] = heights[:, None] * widths
        else:
            good = usable.rows(lo, hi)
            finite = finite and bool(np.isfinite(data).all())
            block = np.add.reduceat(np.where(good, data, 0.0), rows, axis=0)
            counts[out] = np.add.reduceat(
                np.add.reduceat(good, rows, axis=0, dtype=np.float32),
                cols, axis=1)
        sums[out] = _block_sums(block, 1)
    usable.all_finite = finite
    with np.errstate(invalid='ignore', divide='ignore'):
        sums /= counts
    scale = power_of_two_scale(sums)  # float32 ends at 3.4e38
    if scale != 1.0:
        sums /= scale
    return sums.astype(np.float32), counts, scale


def _variation(coarse, scale, shape, counts, cell_std=None, cell_dof=0,
               *, curved=False, lift_error=None):
    """The `BackgroundVariation` of a coarse background ``coarse``
    (`_cell_map`'s map of block means and its surface) divided by
    ``scale`` (in float64 when scaled, so that the scaled-back values
    fit), ``counts`` usable pixels per block, and the pixel noise
    ``cell_std`` (divided by ``scale``) its cells imply (`_cell_scatter`)
    with its ``cell_dof``; ``curved`` as `_cells_curved` found;
    ``lift_error`` the cells' errors of their lifts (`_lift_error`, None:
    none). The map keeps its surface: it is read at each position, not at
    its block."""
    local, (cells, terms, raw) = coarse
    if scale != 1.0:
        local = local.astype(np.float64) * scale
        cells = cells.astype(np.float64) * scale
        raw = raw.astype(np.float64) * scale
        terms = None if terms is None else (terms[0] * scale,
                                            terms[1] * scale)
        cell_std = None if cell_std is None else cell_std * scale
    out = BackgroundVariation(local, shape, counts=counts,
                              cell_std=cell_std, cell_dof=cell_dof,
                              curved=curved)
    out._surface = (cells, terms, raw)
    if lift_error is not None and np.any(lift_error > 0):
        out._lift_error = lift_error * scale
    return out


def _cells_curved(cells, counts):
    """
    Whether a grid of fewer than `QUADRATIC_MIN_CELLS` (and at least
    `PLANE_MIN_CELLS`) cells a side shows the curvature of its sky: the
    cells' levels ``cells`` (`_cell_levels`), weighted by their noise
    (`_cell_noise` of the block ``counts``), fitted by their least-squares
    plane and quadratic surface; the variance ratio of the three
    curvature terms to the scatter about the quadratic surface (its own
    measure of the cells' noise, which unmasked stars widen) beyond the F
    distribution's `CURVATURE_P`. False on other grids (a larger one is
    filtered about its quadratic surface in any case, a smaller one has
    too few cells to tell).
    """
    from scipy.stats import f as f_distribution  # slow to import

    if not PLANE_MIN_CELLS <= min(cells.shape) < QUADRATIC_MIN_CELLS:
        return False
    noise = _cell_noise(counts)
    good = np.isfinite(cells) & (noise > 0)
    yy, xx = np.nonzero(good)
    dof = yy.size - 6
    if dof < 3:
        return False
    cy, cx = _centred(yy, xx, cells.shape)
    weights = 1.0 / noise[good]
    values = cells[good].astype(np.float64)
    chi2 = []
    for quadratic in (False, True):
        design = surface_design(cy, cx, quadratic=quadratic)
        coef = weighted_lstsq(design, values, weights)
        chi2.append(float(np.sum(((values - design @ coef) * weights) ** 2)))
    plane, surface = chi2
    if not surface > 0:
        return plane > 0
    ratio = (plane - surface) / 3.0 / (surface / dof)
    return bool(ratio > f_distribution.isf(CURVATURE_P, 3, dof))


def _cell_scatter(cells, counts, far=None):
    """
    The pixel noise (data unit) that the scatter of the cells' levels
    ``cells`` (`_cell_levels`) about their weighted
    least-squares quadratic surface implies, each cell's residual over its
    noise for a pixel noise of 1 (`_cell_noise` of the block ``counts``),
    root-mean-square over the degrees of freedom (a residual beyond
    `SCATTER_CLIP` robust standard deviations counted at that distance),
    and those degrees of freedom; None and 0 for fewer than
    `SCATTER_MIN_CELLS` cells. The cells ``far`` (off their filtered
    levels beyond `TAKEN_NSIGMA` times the noise their distances imply,
    `_taken_out`: a glow over a few cells, which the map judges by its
    own, `BackgroundVariation.filtered_out`) are left out: a glow of 10
    ADU and 25 px over 4 of 16 cells made the scatter 3 to 4.6 times the
    pixel noise, and the glow's distances under `TAKEN_NSIGMA` times it.
    """
    grid = cells.astype(np.float64)
    noise = _cell_noise(counts)
    good = np.isfinite(grid) & (noise > 0)
    if far is not None:
        good &= ~far
    n_cells = int(np.count_nonzero(good))
    if n_cells < SCATTER_MIN_CELLS:
        return None, 0
    yy, xx = np.nonzero(good)
    design = surface_design(yy - yy.mean(), xx - xx.mean(), quadratic=True)
    weights = 1.0 / noise[good]
    coef = np.linalg.lstsq(design * weights[:, None], grid[good] * weights,
                           rcond=None)[0]
    z = (grid[good] - design @ coef) * weights
    dof = n_cells - design.shape[1]
    # a cell far off the others (an extended source, which the map's
    # median filter passes over) counts at SCATTER_CLIP robust standard
    # deviations; the stars' lifts, whose spread the error needs, whole
    centre = float(np.median(z))
    width = MAD_TO_STD * float(np.median(np.abs(z - centre)))
    z = np.clip(z, centre - SCATTER_CLIP * width,
                centre + SCATTER_CLIP * width)
    return math.sqrt(float(np.sum(z * z)) / dof), dof


def _scaled(frame, scale):
    """``frame`` with its data and uncertainty divided by ``scale``."""
    return dataclasses.replace(
        frame, data=frame.data / scale,
        uncertainty=(None if frame.uncertainty is None
                     else frame.uncertainty / scale))


def _scaled_back(out, meta, scale):
    """The statistics of a frame divided by ``scale``, in the frame's
    unit."""
    out['level'] *= scale
    out['std'] *= scale
    if out['propagated'] is not None:
        out['propagated'] *= scale
    if 'clip_bounds' in meta:
        meta['clip_bounds'] = tuple(b * scale for b in meta['clip_bounds'])


def _block_sums(data, axis):
    """
    ``np.add.reduceat(data, np.arange(0, n, MASK_BIN), axis=axis)`` of a
    2-D ``data`` (groups of `MASK_BIN` rows, ``axis=0``, or columns, the
    last group maybe shorter), the same bits, without its slow generic
    loop: the first of each group plus the sum of the others, as
    reduceat adds them (numpy's pairwise sum, a plain loop for fewer than
    8 values), on strided views. Half floats: groups of columns keep
    reduceat (which accumulates them in single precision), groups of rows
    are summed in half precision, as before.
    """
    if axis == 1 and data.dtype.itemsize < 4:
        return np.add.reduceat(data, np.arange(0, data.shape[1], MASK_BIN),
                               axis=1)
    n = data.shape[axis]
    whole = n // MASK_BIN

    def part(start, stop=whole * MASK_BIN, step=MASK_BIN):
        index = [slice(None), slice(None)]
        index[axis] = slice(start, stop, step)
        return data[tuple(index)]

    shape = list(data.shape)
    shape[axis] = -(-n // MASK_BIN)
    out = np.empty(shape, dtype=data.dtype)
    head = [slice(None), slice(None)]
    head[axis] = slice(0, whole)
    rest = part(1).copy()
    for i in range(2, MASK_BIN):
        rest += part(i)
    np.add(part(0), rest, out=out[tuple(head)])
    if whole * MASK_BIN < n:
        head[axis] = slice(whole, None)
        out[tuple(head)] = np.add.reduceat(part(whole * MASK_BIN, None, None),
                                           [0], axis=axis)
    return out


def _local_background(mean, *, about_plane=False):
    """
    Median of the block means in cells of `MESH` x `MESH` blocks (the last
    row and column of cells may be smaller), median filtered over 3 x 3
    cells (scipy, ``mode='nearest'``; ``about_plane``: about their surface,
    `_median_filtered`, as the `BackgroundVariation` kept) and
    interpolated bilinearly between cell centres (a coarse Background2D),
    so that gradients are not taken for sources.
    """
    return _cell_map(_cell_levels(mean), mean.shape, about_plane=about_plane)


def _cell_map(grid, shape, *, about_plane=False, quadratic=False,
              surface=False):
    """The cell levels ``grid`` (`_cell_levels`; a cell without any, NaN,
    is filled from the others, `_fill_empty`, in place) median filtered as
    `_local_background` says (``quadratic``: about the quadratic surface
    on any grid, `_median_filtered`) and interpolated onto ``shape``
    blocks; ``surface`` (with ``about_plane``): also the filtered cells
    and the chord's terms (`_chord_terms`, None where no chord is added),
    whose `_cell_map_at` is the map at any position."""
    quadratic = about_plane and (quadratic
                                 or min(grid.shape) >= QUADRATIC_MIN_CELLS)
    if np.isnan(grid).any():
        _fill_empty(grid, np.isnan(grid), quadratic=quadratic)
    if not about_plane:
        grid = ndimage.median_filter(grid, size=3, mode='nearest')
        return _bilinear(grid, shape)
    filtered = _median_filtered(grid, quadratic=quadratic)
    out = _bilinear(filtered, shape)
    terms = None
    if quadratic:
        out += _chord(grid, shape)
        terms = _chord_terms(grid)
    return (out, (filtered, terms, grid.copy())) if surface else out


def _fill_empty(grids, empty, *, quadratic=False):
    """
    Give the cells ``empty`` of ``grids`` (the last two axes, in place)
    the least-squares plane of the others' levels (``quadratic``: their
    quadratic surface, as the map's filter takes them, `_median_filtered`;
    the plane where too few cells are left for it, their median where
    fewer than 3 not on a line): a cell without usable pixels (or covered
    by the source mask) given the median of the others was off by the
    sky's gradient (a tilt of 0.3 ADU per pixel: up to 38 ADU on a 256 x
    256 frame), or by a vignetted frame's curvature.
    """
    full = ~empty
    yy, xx = np.nonzero(full)
    ey, ex = np.nonzero(empty)
    centre = (np.array(empty.shape) - 1) / 2.0
    for curved in ((True, False) if quadratic else (False,)):
        design = surface_design(yy - centre[0], xx - centre[1],
                                quadratic=curved)
        if (yy.size >= design.shape[1]
                and np.linalg.matrix_rank(design) == design.shape[1]):
            fill = (surface_design(ey - centre[0], ex - centre[1],
                                   quadratic=curved)
                    @ np.linalg.pinv(design))
            grids[..., empty] = grids[..., full] @ fill.T
            return
    grids[..., empty] = np.median(grids[..., full], axis=-1)[..., None]


def _cell_map_at(surface, blocks, uy, ux):
    """The map of a `_cell_map` ``surface`` (filtered cells, chord terms)
    over ``blocks`` blocks at block coordinates ``uy``, ``ux``: the
    cells' bilinear interpolation (`_interpolated`) plus the chord
    (`_bend`), as `_cell_map` made each block's value."""
    cells, terms = surface[:2]
    out = _interpolated(cells, blocks, uy, ux)
    if terms is not None:
        out = (out + terms[0] * _bend(blocks[0], cells.shape[0], uy)
               + terms[1] * _bend(blocks[1], cells.shape[1], ux))
    return out


def _chord(grid, shape):
    """
    The cells' least-squares quadratic surface ``grid`` at each of
    ``shape`` blocks less its bilinear interpolation between the cell
    centres (`_bilinear`): what interpolating a curved sky's cells leaves
    out (between cell centres of 64 pixels a bowl's chord lies below it;
    beyond the outer centres the extrapolated line above it), added back
    to the map. The surface's coordinates are the cells' indices, a block
    ``b`` at ``(b + 1/2) / MESH - 1/2``; the interpolation is exact for
    its plane and its cross term, so only its squares are left, one axis
    at a time (float32; `_bend` of `_chord_terms`).
    """
    quad_y, quad_x = _chord_terms(grid)
    out = (quad_y * _bend(shape[0], grid.shape[0])).astype(np.float32)
    return out[:, None] + (quad_x * _bend(shape[1], grid.shape[1])).astype(
        np.float32)


def _chord_terms(grid):
    """The coefficients of the squares of the cells' least-squares
    quadratic surface (`_chord`), along y and x."""
    my, mx = grid.shape
    design = surface_design(*_centred(*np.mgrid[:my, :mx], (my, mx)),
                            quadratic=True)
    coef = np.linalg.pinv(design) @ grid.ravel().astype(np.float64)
    return float(coef[3]), float(coef[4])


def _bend(n_blocks, n_cells, pos=None):
    """The square of the cell coordinate less its linear interpolation
    between cell centres (`_axis_weights`), at each of ``n_blocks``
    blocks along an axis of ``n_cells`` cells (``pos``: at these block
    coordinates)."""
    centre = (n_cells - 1) / 2.0
    at_blocks = np.arange(n_blocks, dtype=float) if pos is None else pos
    u = (at_blocks + 0.5) / MESH - 0.5 - centre
    i0, i1, frac = _axis_weights(n_blocks, n_cells, pos)
    at = (np.arange(n_cells) - centre) ** 2
    return u ** 2 - (at[i0] * (1 - frac) + at[i1] * frac)


def _cell_levels(mean):
    """The median of the block means ``mean`` in each cell of `MESH` x
    `MESH` blocks (the last row and column of cells may be smaller; NaN
    where a cell has no finite block), float32."""
    by, bx = mean.shape
    my, mx = -(-by // MESH), -(-bx // MESH)
    padded = np.full((my * MESH, mx * MESH), np.nan, dtype=np.float32)
    padded[:by, :bx] = mean
    cells = padded.reshape(my, MESH, mx, MESH).transpose(0, 2, 1, 3)
    cells = cells.reshape(my, mx, -1)
    whole = np.all(np.isfinite(cells), axis=-1)
    grid = np.empty((my, mx), dtype=np.float32)
    if whole.all():
        grid[...] = median(cells, axis=-1)
    else:
        grid[whole] = np.median(cells[whole], axis=-1)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN cells
            grid[~whole] = np.nanmedian(cells[~whole], axis=-1)
    return grid


def _median_filtered(grids, *, quadratic=False):
    """
    The cell levels ``grids`` (the last two axes; float32) median filtered
    over 3 x 3 cells about their least-squares surface: the surface plus
    the filtered residuals from it (scipy's ``median_filter``,
    ``mode='nearest'``). A cell far off its neighbours is replaced, and the
    surface is kept whole: filtered directly, a diagonal gradient is
    flattened by a cell's step at the frame's corners, and on a grid of
    2 x 2 cells, whose every window holds all four, entirely; filtered
    about their plane, a vignetted frame's curvature is cut to about two
    thirds (the filter takes the middle of each window, short of its
    peak). The surface is quadratic on a grid of at least
    `QUADRATIC_MIN_CELLS` cells a side or where ``quadratic`` (a smaller
    grid's cells show their sky's curvature, `_cells_curved`), else the
    plane.
    """
    my, mx = grids.shape[-2:]
    design = surface_design(*_centred(*np.mgrid[:my, :mx], (my, mx)),
                            quadratic=(quadratic
                                       or min(my, mx) >= QUADRATIC_MIN_CELLS))
    values = grids.reshape(-1, my * mx).astype(np.float64)
    plane = (values @ np.linalg.pinv(design).T) @ design.T
    size = (1,) * (grids.ndim - 2) + (3, 3)
    residual = (values - plane).reshape(grids.shape)
    out = ndimage.median_filter(residual, size=size, mode='nearest')
    out += plane.reshape(grids.shape)
    return out.astype(grids.dtype)


def _cell_sums_of(values):
    """The sums of ``values`` (blocks) over each cell of `MESH` x `MESH`
    blocks."""
    by, bx = values.shape
    my, mx = -(-by // MESH), -(-bx // MESH)
    if (by, bx) != (my * MESH, mx * MESH):
        padded = np.zeros((my * MESH, mx * MESH), dtype=values.dtype)
        padded[:by, :bx] = values
        values = padded
    return values.reshape(my, MESH, mx, MESH).sum(axis=(1, 3),
                                                  dtype=np.float64)


def _axis_weights(n_out, n_in, pos=None, mesh=MESH):
    """The cells (``i0``, ``i1``) and the weight of the second (float32)
    for each of ``n_out`` blocks along an axis of ``n_in`` cells of
    ``mesh`` blocks: linear between cell centres, extrapolated beyond the
    outer ones. ``pos``: at these block coordinates instead (floats,
    block ``b`` at ``b``; float64 weights), the map between the blocks
    (``mesh=1``: between block centres)."""
    starts = np.arange(n_in) * mesh
    centres = (starts + np.minimum(starts + mesh, n_out) - 1) / 2.0
    exact = pos is not None
    pos = np.arange(n_out, dtype=float) if pos is None else pos
    i0 = np.clip(np.searchsorted(centres, pos) - 1, 0, max(n_in - 2, 0))
    i1 = np.minimum(i0 + 1, n_in - 1)
    span = np.where(i1 > i0, centres[i1] - centres[i0], 1.0)
    frac = np.where(i1 > i0, (pos - centres[i0]) / span, 0.0)
    return i0, i1, (frac if exact else frac.astype(np.float32))


def _corners(blocks, cells, uy, ux, mesh=MESH):
    """The four cells about block coordinates ``uy``, ``ux`` (broadcast
    float arrays, `BackgroundVariation._block_coordinates`) of a grid of
    ``cells`` cells of ``mesh`` blocks over ``blocks`` blocks, and their
    bilinear weights (`_axis_weights` along each axis): ``(i0, i1, j0,
    j1)`` and ``(a, b, c, d)`` for cells ``(i0, j0), (i0, j1), (i1, j0),
    (i1, j1)``."""
    i0, i1, v = _axis_weights(blocks[0], cells[0], uy, mesh)
    j0, j1, u = _axis_weights(blocks[1], cells[1], ux, mesh)
    return (i0, i1, j0, j1), ((1 - v) * (1 - u), (1 - v) * u,
                              v * (1 - u), v * u)


def _interpolated(grid, blocks, uy, ux, mesh=MESH):
    """The bilinear interpolation of cell values ``grid`` (cells of
    ``mesh`` blocks over ``blocks`` blocks) at block coordinates ``uy``,
    ``ux`` (`_corners`): `_bilinear` at any position."""
    (i0, i1, j0, j1), (a, b, c, d) = _corners(blocks, grid.shape, uy, ux,
                                              mesh)
    grid = np.asarray(grid, dtype=float)
    return (a * grid[i0, j0] + b * grid[i0, j1] + c * grid[i1, j0]
            + d * grid[i1, j1])


def _bilinear(grid, shape):
    """Interpolate cell-centre values ``grid`` onto ``shape`` blocks,
    linearly between cell centres and extrapolated beyond the outer ones
    (`_axis_weights`)."""
    y0, y1, fy = _axis_weights(shape[0], grid.shape[0])
    x0, x1, fx = _axis_weights(shape[1], grid.shape[1])
    rows = grid[y0] * (1 - fy[:, None]) + grid[y1] * fy[:, None]
    # (take: C-ordered, so that the map and the block means line up)
    return rows.take(x0, axis=1) * (1 - fx) + rows.take(x1, axis=1) * fx


def _segments(found, seeds, avoid=None, faint=None, npixels=MASK_NPIXELS):
    """The 8-connected segments of ``found`` of at least ``npixels``
    blocks that hold a ``seeds`` block (and no ``avoid`` block); with
    ``faint`` (a significance map), also the number of those whose
    brightest block there is below `FAINT_PEAK`."""
    labels, n_found = ndimage.label(found, structure=np.ones((3, 3), bool))
    n_faint = 0
    if n_found:
        # (the background, label 0, is dropped last: seeds and avoided
        # blocks outside ``found`` fall on it)
        on = labels[found] if npixels > 1 or faint is not None else None
        keep = np.zeros(n_found + 1, dtype=bool)
        keep[labels[seeds]] = True
        if npixels > 1:
            keep &= np.bincount(on, minlength=n_found + 1) >= npixels
        if avoid is not None:
            keep[labels[avoid]] = False
        keep[0] = False
        if faint is not None and keep.any():
            # the brightest block of each segment, from its blocks alone
            # (in the map's precision: numpy's fast path for ufunc.at)
            peaks = np.full(n_found + 1, -np.inf, dtype=faint.dtype)
            np.maximum.at(peaks, on, faint[found])
            n_faint = int(np.count_nonzero(peaks[keep] < FAINT_PEAK))
        found = keep[labels]  # (take would copy labels as intp)
    return found if faint is None else (found, n_faint)


def global_sky(frame, *, method, sigma, maxiters, mask_sources,
               third_moment=False, known=None):
    """
    Level, scatter and error of the level of a whole frame.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame (checked).
    method : {'sigma_clip', 'mean', 'median'}
        The estimator.
    sigma : float
        The clip's threshold (standard deviations).
    maxiters : int or None
        The clip's most iterations.
    mask_sources : bool
        Mask the sources (`source_blocks`, `matched_blocks`) first.
    third_moment : bool, optional
        A large frame's clip also sums the third moment of its pixels
        (`~ccdphot_ext.background.estimators.third_window`; the pixels of
        a smaller frame are kept in any case).
    known : tuple, optional
        The source mask's blocks, `BackgroundVariation` and faint-source
        density of an earlier estimate of this frame, used instead of
        searching again (the level measured again with more pixels
        masked); None (default): searched.

    Returns
    -------
    out : dict
        ``level``, ``std``, ``n_pix``, ``propagated``
        (``sqrt(sum(sigma_i**2)) / n`` of the pixels used when an
        uncertainty map is given, else None), ``efficiency``, ``n_bad``,
        ``meta``, ``variation`` (a `BackgroundVariation`, or None),
        ``mask_warned`` and ``usable``.

    Raises
    ------
    ValueError
        When the frame has no finite, unmasked pixel.
    """
    usable = _Usable(frame)
    n_total = frame.data.size
    warned = False
    mean, counts, scale = _binned(frame, usable)
    n_bad = n_total - int(counts.sum(dtype=np.int64))
    if n_bad == n_total:
        raise ValueError('data has no finite, unmasked pixel to estimate '
                         'the sky from')
    meta = {'method': method, 'n_excluded_bad': n_bad,
            'mask_sources': bool(mask_sources)}
    variation = None
    if mask_sources:
        blocks, variation, density = known or _frame_blocks(
            frame, usable, mean, counts, scale, meta)
        mean = None  # (overwritten: freed before the faint light's filter)
        n_masked = _mask_sources(frame, usable, blocks, counts, n_bad, meta)
        warned = usable.blocks is None  # said: the mask was dropped
        meta['faint_source_density'] = density
        # (measured again without apertures: the stars measured are left
        # out of the faint light by their positions, `faint_light_beside`)
        light = None if warned or known else faint_light(
            frame, usable, blocks, counts, scale)
        store_light(meta, light)
        if not (warned or known):
            unseen = unseen_sky_note(light, blocks, density)
            if unseen is not None:
                meta[UNSEEN_SKY_KEY] = unseen
    else:
        n_masked = 0
        variation = _sky_map(mean, counts, frame.data.shape, scale)
    del mean
    n_usable = n_total - n_bad - n_masked
    given = frame
    tiny = scale < 1.0
    if tiny:  # the squares of the scatter would underflow
        usable.frame = frame = _scaled(frame, scale)
    if method == 'sigma_clip' and n_usable > SUBSAMPLE_PIXELS:
        n_sub = min(SUBSAMPLE_PIXELS,
                    max(int(n_usable * SUBSAMPLE_FRACTION), SUBSAMPLE_MIN))
        out = _clip_large(frame, usable, sigma, maxiters, meta, n_sub,
                          third_moment)
    else:
        out = _exact(frame, usable, method, sigma, maxiters, meta)
    if variation is not None and usable.blocks is not None:
        # (before the scale comes back: the frame's std, the frame's unit)
        variation.noise = _noise_variation(frame, usable, out['std'])
    if variation is not None and not variation._plane_is_map:
        # the offsets from the level: the map's mean over its pixels
        variation = variation.centred_on(
            counts if usable.blocks is None else counts * ~usable.blocks)
    if tiny:
        _scaled_back(out, meta, scale)
    if n_masked > (1 - MIN_UNMASKED_FRACTION) * (n_total - n_bad):
        # the mask's own warning then says that sources bias the level
        warned = _check_coverage(given, out, n_masked, n_total - n_bad,
                                 meta) or warned
    if UNSEEN_SKY_KEY in meta and not warned:
        warnings.warn(meta[UNSEEN_SKY_KEY], AstropyUserWarning, stacklevel=4)
        warned = True
    out.update(n_bad=n_bad, meta=meta, variation=variation,
               mask_warned=warned, usable=usable)
    return out


def _noise_variation(frame, usable, std):
    """The `NoiseVariation` of a frame without an uncertainty map (None
    for one with: its map gives each pixel its noise) from its usable
    pixels off the sources, band by band."""
    if frame.uncertainty is not None or not std > 0:
        return None
    acc = NoiseAccumulator(frame.shape, std)
    for lo, hi in usable.bands():
        acc.add(lo, frame.data[lo:hi], usable.rows(lo, hi))
    return acc.result()


def _frame_blocks(frame, usable, mean, counts, scale, meta, *,
                  with_map=True):
    """The binned source mask of a frame (`source_blocks`, searched again
    with the matched filter when crowded), its `BackgroundVariation`
    (`_sky_map` of the blocks off the mask, `MAP_MASK_DILATE`, the
    extended light's kept; None without ``with_map``) and its
    faint-source density; ``meta['matched_filter']`` says when the
    matched filter ran. ``mean`` is overwritten."""
    raw = mean.copy() if with_map else None
    blocks, deeper, density, trimmed, extended, sigma = source_blocks(
        mean, counts)
    nsigma = MATCHED_NSIGMA
    if trimmed is not None:
        meta['source_mask_growth'] = (
            f'the segments grown by {MASK_DILATE} blocks covered '
            f'{np.mean(blocks):.0%} of the frame, they themselves less than '
            f'{OVERGROWN_SEGMENTS:.1%}: grown by {GROW_BLOCKS} blocks below '
            f'a peak of {GROW_PEAKS} binned sigma instead')
    if _searched_deeper(blocks):
        if trimmed is not None:
            blocks, nsigma = trimmed, TRIMMED_MATCHED_NSIGMA
        blocks = matched_blocks(frame, usable, blocks, scale, nsigma=nsigma)
        meta['matched_filter'] = (
            f'crowded: searched again on 2x2-pixel cells filtered with '
            f'a Gaussian of {MATCHED_SIGMA} px, at {nsigma} '
            f'sigma with a cell above {MATCHED_SEED}, dilated by '
            f'{MATCHED_DILATE} block')
    elif trimmed is not None:
        blocks = trimmed
    variation = None
    if with_map:
        compact = ~_dilated(~(blocks & ~extended),
                            MASK_DILATE - MAP_MASK_DILATE)
        variation = _sky_map(
            raw, counts, frame.data.shape, scale,
            scatter=sigma if deeper else None,
            mask=compact if np.any(counts * ~compact > 0) else None)
    return blocks, variation, density


def _sky_map(mean, counts, shape, scale, *, scatter=None, mask=None):
    """
    The `BackgroundVariation` of a frame's block means ``mean`` (NaN
    where a block has no usable pixel, ``counts`` of them; divided by
    ``scale``, `_binned`): the median of each cell's blocks
    (`_cell_levels`), filtered about their surface (`_cell_map`,
    quadratic where `_cells_curved`); None where no block holds a usable
    pixel. ``scatter`` (the pixel noise, `source_blocks`' ``sigma``): the
    cells' scatter about their quadratic surface (`_cell_scatter`) is
    kept for the map's error (a crowded frame, whose stars left by the
    mask lift the cells unequally), the cells off their filtered levels
    beyond `TAKEN_NSIGMA` times the larger of that noise and the one
    their distances imply (`_taken_out`) left out (a glow, which the map
    judges by its own, `BackgroundVariation.filtered_out`).

    With a source ``mask`` (blocks; not all of them: the compact
    sources', not the extended light's, `EXTENDED_BLOCKS`) each cell's
    level is that of its blocks off the mask (`_masked_cells`; a cell
    without any takes its level of all its blocks less the median lift
    of the cells that have both): a cell's median over all its blocks is
    lifted by the wings of the stars in it, so that the map read high at
    the stars (on 256 x 256 frames tilted by 0.3 and 0.1 ADU per pixel
    with 40 stars, by 0.6 of its error on average; 0.01 now). That median
    lift is not the covered cell's own (the crowdest cells are the ones
    covered, and lifted most): the map's error there holds the lifts'
    spread (`_lift_error`).
    """
    if not np.isfinite(mean).any():
        return None
    cells = _cell_levels(mean)
    counts_all = counts
    lift_error = None
    # whether the sky is curved, from all the blocks (twice as many as
    # the mask leaves a crowded frame: a vignetting of 1% at the edge
    # midpoints of 256 x 256 frames with a grid of stars was found on 1
    # of 4 frames from the blocks off the mask, on all 4 from all)
    curved = _cells_curved(cells, counts)
    if mask is not None:
        off = _masked_cells(mean, mask, cells.copy())
        lifted = np.isnan(off) & np.isfinite(cells)
        both = np.isfinite(off) & np.isfinite(cells)
        counts = counts * ~mask
        if lifted.any() and both.any():
            # a cell the mask covers: its level of all its blocks less the
            # median lift of those blocks over the blocks off the mask in
            # the cells that have both, known as a whole cell (given the
            # plane of the others, a cluster's unresolved light left the
            # map: 0.6 ADU on astropy's M13 frame where it read 21.8)
            lift = cells[both] - off[both]
            off[lifted] = cells[lifted] - np.median(lift)
            by, bx = mask.shape
            whole = np.repeat(np.repeat(lifted, MESH, axis=0), MESH,
                              axis=1)[:by, :bx]
            counts = np.where(whole, counts_all, counts)
            lift_error = _lift_error(lifted, lift)
        cells = off
    coarse = _cell_map(cells.copy(), mean.shape, about_plane=True,
                       quadratic=curved, surface=True)
    spread = ()
    if scatter is not None:
        # (the distances imply less than the pixel noise where the filter
        # kept many cells, at 0: with that alone 8 of 64 cells of a
        # crowded frame were left out, and the map's offsets spread 1.47
        # times its error)
        _, z, implied = _taken_out(cells, coarse[1][0], _cell_noise(counts))
        with np.errstate(invalid='ignore'):
            far = np.abs(z) > TAKEN_NSIGMA * np.fmax(implied, scatter)
        spread = _cell_scatter(cells, counts, far=far)
    return _variation(coarse, scale, shape, counts, *spread, curved=curved,
                      lift_error=lift_error)


def _lift_error(lifted, lift):
    """
    The error of the level of each cell the source mask covers
    (``lifted``: `_sky_map` takes its level of all its blocks less the
    median ``lift`` of the cells that have blocks on and off the mask),
    the root-mean-square of those lifts about their median (0 elsewhere;
    None for fewer than 2 lifts): a covered cell's own lift is not known,
    and the most crowded cells, lifted most, are the ones covered. It is
    added to the map's own noise where it reads those cells
    (`BackgroundVariation.error`), not carried through its median filter:
    the covered cells are neighbours, lifted together. (Flat 256 x 256
    frames with 200 stars of 10**3 to 10**4.5 ADU, gain 1: one frame in
    ten had its four most crowded cells covered, lifted 1.8 to 2.4 ADU
    where the median lift was 0.67 and the lifts' spread 0.86, and 14
    rows read 4 to 6 map errors off the flat sky.)
    """
    lift = np.asarray(lift, dtype=np.float64)
    if lift.size < 2:
        return None
    spread = math.sqrt(float(np.mean((lift - np.median(lift)) ** 2)))
    return np.where(lifted, spread, 0.0)


def _masked_cells(mean, mask, grid):
    """
    The level of each cell from its blocks' means ``mean`` off the source
    ``mask`` (NaN where it has none): the median of their residuals from
    the least-squares surface of all the blocks' cell levels ``grid``
    (`_cell_levels`; quadratic on a grid of at least `PLANE_MIN_CELLS`
    cells a side, else
    the plane) plus that surface's median over the cell's blocks. The
    median of the blocks left alone would move with the sky's gradient
    where the mask leaves one side of a cell (on a sky tilted by 0.3 ADU
    per pixel, 19 ADU across a cell); for a plane the surface's median is
    its value at the cell's centre. (The surface, not the cells'
    interpolation: the cells of all the blocks are lifted unequally by
    their stars, which the interpolation would put back into the residuals
    of a crowded frame's few blocks left.)
    """
    if np.isnan(grid).any():
        _fill_empty(grid, np.isnan(grid))
    my, mx = grid.shape
    # (a quadratic surface through the 9 cells of a 3 x 3 grid follows
    # their noise: a flat 192 x 192 frame's map read 4.1 errors off)
    quadratic = min(my, mx) >= PLANE_MIN_CELLS
    design = surface_design(*_centred(*np.mgrid[:my, :mx], (my, mx)),
                            quadratic=quadratic)
    coef = np.linalg.pinv(design) @ grid.ravel().astype(np.float64)
    by, bx = mean.shape
    # block b at cell coordinate (b + 1/2) / MESH - 1/2 (`_chord`); the
    # terms 1, u, v (u**2, v**2, u v) of `surface_design`, by rows and
    # columns (no design matrix over the blocks)
    uy = (np.arange(by) + 0.5) / MESH - 0.5 - (my - 1) / 2.0
    ux = (np.arange(bx) + 0.5) / MESH - 0.5 - (mx - 1) / 2.0
    rows, cols = coef[0] + coef[1] * uy, coef[2] * ux
    if quadratic:
        rows, cols = rows + coef[3] * uy ** 2, cols + coef[4] * ux ** 2
    surface = np.add.outer(rows.astype(np.float32), cols.astype(np.float32))
    if quadratic:
        surface += np.multiply.outer((coef[5] * uy).astype(np.float32),
                                     ux.astype(np.float32))
    surface[np.isnan(mean)] = np.nan  # (the blocks with usable pixels)
    level = _cell_levels(surface)
    np.subtract(mean, surface, out=surface)  # the residuals, in place
    surface[mask] = np.nan
    return _cell_levels(surface) + level


#: The frames analysed while `one_analysis` is open: ``id(frame)`` ->
#: ``(frame, _Analysis)`` (the frame kept, so that its id is not reused).
_ANALYSES = contextvars.ContextVar('frame_analyses', default=None)


@contextlib.contextmanager
def one_analysis():
    """
    Within this context each frame (the same object) has its whole-frame
    source mask, map and faint light found once, whichever of
    `source_pixels`, `frame_variation` and `faint_light_beside` asks for
    them (the sky rules of one photometry call: with a Background2D sky
    the mask was otherwise found by each); the same numbers. Nested
    contexts share the outer one's analyses; on leaving the outermost
    they are dropped (a frame's data changed later is analysed again).
    """
    token = _ANALYSES.set({}) if _ANALYSES.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _ANALYSES.reset(token)


class _Analysis:
    """A frame's whole-frame source mask (`_frame_blocks`): its `_Usable`,
    block ``counts``, ``scale``, ``blocks`` (None without a usable
    pixel), ``variation`` (None without the map) and faint-source
    ``density``; `light` found when first asked for."""

    def __init__(self, frame, with_map):
        self.frame = frame
        self.usable = usable = _Usable(frame)
        mean, self.counts, self.scale = _binned(frame, usable)
        self.blocks, self.variation, self.density = None, None, 0.0
        if np.any(self.counts > 0):
            self.blocks, self.variation, self.density = _frame_blocks(
                frame, usable, mean, self.counts, self.scale, {},
                with_map=with_map)
        self._light = ()

    @property
    def light(self):
        """`faint_light` off the mask (None without a usable pixel)."""
        if self._light == ():
            self._light = None if self.blocks is None else faint_light(
                self.frame, self.usable, self.blocks, self.counts,
                self.scale)
        return self._light


def _frame_analysis(frame, *, with_map=True):
    """The `_Analysis` of a frame: the one kept by an open `one_analysis`
    (made with the map), else a new one (with the map if ``with_map``)."""
    kept = _ANALYSES.get()
    if kept is None:
        return _Analysis(frame, with_map)
    hit = kept.get(id(frame))
    if hit is None or hit[0] is not frame:
        hit = kept[id(frame)] = (frame, _Analysis(frame, True))
    return hit[1]


def source_pixels(frame):
    """
    The whole-frame sky's source mask of a frame, per pixel.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.

    Returns
    -------
    sources : 2-D `~numpy.ndarray` of bool
        The frame's shape: True on the pixels of the blocks the mask covers
        (see the module docstring).
    usable : 2-D `~numpy.ndarray` of bool
        The finite, unmasked pixels with a finite uncertainty, sources
        included.
    density : float
        The faint sources found per `MASK_BIN` x `MASK_BIN` block (as
        ``meta['faint_source_density']``).
    light : tuple of float or None
        The light of the faint sources off the mask and its error
        (`faint_light`, for `crowding_bias`).
    """
    found = _frame_analysis(frame, with_map=False)
    if found.blocks is None:
        return (np.zeros(frame.shape, dtype=bool),
                np.zeros(frame.shape, dtype=bool), 0.0, None)
    ny, nx = frame.shape
    light = found.light
    good = found.usable.rows(0, ny)
    sources = np.repeat(np.repeat(found.blocks, MASK_BIN, axis=0), MASK_BIN,
                        axis=1)[:ny, :nx]
    return sources, good, found.density, light


#: The window, in blocks of `MASK_BIN` x `MASK_BIN` pixels a side, about
#: an aperture in which `local_residual` measures the frame's pixels less
#: a background map (36 pixels: a feature of a few tens of pixels, which
#: a cell of 64 pixels dilutes, is seen at about its height).
LOCAL_BLOCKS = 9


def frame_variation(frame):
    """
    The `BackgroundVariation` the whole-frame sky of a frame keeps
    (`_frame_blocks`' map: the cells of the blocks off the source mask),
    about the map's median rather than a level, and the source mask's
    blocks.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.

    Returns
    -------
    variation : `BackgroundVariation` or None
        None when no block holds a usable pixel.
    blocks : 2-D `~numpy.ndarray` of bool or None
        The binned source mask (`_frame_blocks`, as `source_pixels`).
    """
    found = _frame_analysis(frame)
    return found.variation, found.blocks


def local_residual(frame, level, blocks, x, y, *, avoid=None):
    """
    The frame's pixels less a background map about each position: the
    median of the block means of ``frame - level`` in a window of
    `LOCAL_BLOCKS` blocks a side about the position's block (moved
    inside the frame at its edges), and its
    error for a pixel noise of 1 (as a cell's, `_cell_noise`).

    The median passes over a few blocks holding a star, as a cell's
    does; the source mask's segments no larger than a cell (stars) are
    left out, a larger one (a glow, a large galaxy, which the mask takes
    for a source) kept, and with ``avoid`` the blocks whose
    centres are within that many pixels of any position (the stars
    measured, whose light reaches beyond their segments).

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    level : 2-D `~numpy.ndarray`
        The background map (the frame's shape).
    blocks : 2-D `~numpy.ndarray` of bool
        The binned source mask (`frame_variation`).
    x, y : array_like
        Pixel positions (broadcast).
    avoid : float or array_like, optional
        Per position, the radius (pixels) left out about it; None
        (default): none.

    Returns
    -------
    residual : float or `~numpy.ndarray`
        The median (data unit per pixel; NaN where the window holds no
        usable block left).
    noise : float or `~numpy.ndarray`
        Its error for a pixel noise of 1.
    """
    less = dataclasses.replace(frame, data=np.asarray(frame.data, dtype=float)
                               - level)
    mean, counts, scale = _binned(less, _Usable(less))
    mean = mean.astype(float) * scale
    labels, n_segments = ndimage.label(blocks)
    sizes = np.bincount(labels.ravel(), minlength=n_segments + 1)
    left_out = blocks & (sizes[labels] <= MESH ** 2)
    x, y, reach = np.broadcast_arrays(
        np.asarray(x, dtype=float), np.asarray(y, dtype=float),
        np.asarray(0.0 if avoid is None else avoid, dtype=float))
    cy = (np.arange(mean.shape[0]) + 0.5) * MASK_BIN - 0.5
    cx = (np.arange(mean.shape[1]) + 0.5) * MASK_BIN - 0.5
    for px, py, rad in zip(x.ravel(), y.ravel(), reach.ravel(),
                           strict=True):
        if not (np.isfinite(px) and np.isfinite(py) and rad > 0):
            continue
        iy = np.abs(cy - py) <= rad
        ix = np.abs(cx - px) <= rad
        if iy.any() and ix.any():
            left_out[np.ix_(iy, ix)] |= ((cy[iy, None] - py) ** 2
                                         + (cx[None, ix] - px) ** 2
                                         <= rad * rad)
    use = ~left_out & (counts > 0) & np.isfinite(mean)
    ny, nx = mean.shape

    def window(i0, j0):
        # the median of the blocks kept in the window from block (i0, j0)
        # (moved inside the frame at its edges: as many blocks), and its
        # noise; NaN for none
        i0 = max(min(i0, ny - LOCAL_BLOCKS), 0)
        j0 = max(min(j0, nx - LOCAL_BLOCKS), 0)
        part = (slice(i0, i0 + LOCAL_BLOCKS), slice(j0, j0 + LOCAL_BLOCKS))
        kept = use[part]
        if not kept.any():
            return np.nan, np.nan
        return (float(np.median(mean[part][kept])),
                float(_median_of_means_noise(
                    np.count_nonzero(kept),
                    np.sum(np.sqrt(counts[part][kept], dtype=float)))))

    residual = np.full(x.shape, np.nan)
    noise = np.full(x.shape, np.nan)
    half = LOCAL_BLOCKS // 2
    for k in np.ndindex(x.shape):
        if not (np.isfinite(x[k]) and np.isfinite(y[k])):
            continue
        i = int(np.floor(y[k] + 0.5)) // MASK_BIN
        j = int(np.floor(x[k] + 0.5)) // MASK_BIN
        level_k, noise_k = window(min(max(i, 0), ny - 1) - half,
                                  min(max(j, 0), nx - 1) - half)
        residual[k], noise[k] = level_k, noise_k
    return residual[()], noise[()]


def faint_light_beside(frame, x, y, blocks=None):
    """
    `faint_light` of a frame, the stars measured left out.

    A star measured is neither a faint star the mask missed nor evidence
    of one: the regions holding the block of an aperture's position are
    not counted.

    Parameters
    ----------
    frame : `~ccdphot_ext.utils.inputs.Frame`
        The frame.
    x, y : array_like
        The apertures' positions (pixels).
    blocks : 2-D `~numpy.ndarray` of bool, optional
        The binned source mask; None (default): that of `source_pixels`.

    Returns
    -------
    light : tuple of float or None
        As `faint_light`.
    """
    if blocks is None:
        found = _frame_analysis(frame, with_map=False)
        usable, counts, scale = found.usable, found.counts, found.scale
        blocks = found.blocks
    else:
        usable = _Usable(frame)
        mean, counts, scale = _binned(frame, usable)
        del mean
    if blocks is None or not np.any(counts > 0):
        return None
    x = np.atleast_1d(np.asarray(x, dtype=float)).ravel()
    y = np.atleast_1d(np.asarray(y, dtype=float)).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    by = np.clip(np.floor(y[keep] + 0.5) // MASK_BIN, 0,
                 blocks.shape[0] - 1).astype(np.intp)
    bx = np.clip(np.floor(x[keep] + 0.5) // MASK_BIN, 0,
                 blocks.shape[1] - 1).astype(np.intp)
    measured = np.zeros(blocks.shape, dtype=bool)
    measured[by, bx] = True
    return faint_light(frame, usable, blocks, counts, scale,
                       avoid=measured)


def is_crowded(sources, usable=None):
    """
    Whether the sources crowd a frame: their mask covers at least
    `CROWDED_FRACTION` of its usable pixels (or blocks).

    The one definition of a crowded frame by its source mask: the
    whole-frame sky searches such a frame again with the matched filter
    (`matched_blocks`), and a Background2D map of one is tied to its blank
    sky. (`CROWDED_LIGHT_FRACTION` is another measure, of the sources'
    light rather than their mask, for the warning that the unmasked sky
    is doubtful.)

    Parameters
    ----------
    sources : `~numpy.ndarray` of bool
        The source mask (pixels or binned blocks).
    usable : `~numpy.ndarray` of bool, optional
        The usable pixels (``sources``' shape), sources included; None
        (default): all of them.

    Returns
    -------
    crowded : bool
        False where no pixel is usable.
    """
    if usable is None:
        n_usable, n_masked = sources.size, np.count_nonzero(sources)
    else:
        n_usable = np.count_nonzero(usable)
        n_masked = np.count_nonzero(sources & usable)
    return bool(n_usable > 0 and n_masked >= CROWDED_FRACTION * n_usable)


def _searched_deeper(blocks):
    """True for a binned source mask ``blocks`` that the matched filters
    search again: crowded (`is_crowded`), of at least `FILTER_MIN_BLOCKS`
    blocks a side."""
    return min(blocks.shape) >= FILTER_MIN_BLOCKS and is_crowded(blocks)


def store_light(meta, light):
    """Record `faint_light`'s ``light`` (None: nothing) in a sky's
    ``meta``: ``'faint_light'``, ``'faint_light_error'``,
    ``'faint_light_below'`` (the extrapolated lift), ``'faint_slope'``,
    ``'wing_light'`` and ``'wing_light_error'`` (the masked stars' wings
    past the mask), ``'faint_light_bound'`` (the largest lift below the
    reach the sources at it allow), each left out where it is NaN (the
    light where the
    frame is not crowded, the slope where too few sources fit it, the
    wings where too few stars show them)."""
    if light is None:
        return
    for key, value in zip(LIGHT_KEYS, light, strict=False):
        if math.isfinite(value):  # (no slope fitted: too few sources)
            meta[key] = float(value)


def stored_light(meta):
    """`faint_light`'s light as `store_light` recorded it in ``meta``
    (NaN for what it left out), or None."""
    if not any(key in meta for key in LIGHT_KEYS):
        return None
    return tuple(float(meta.get(key, math.nan)) for key in LIGHT_KEYS)


#: The ``meta`` keys of `faint_light`'s light, in its order.
LIGHT_KEYS = ('faint_light', 'faint_light_error', 'faint_light_below',
              'faint_slope', 'wing_light', 'wing_light_error',
              'faint_light_bound')


#: The ``meta`` key of `unseen_sky_note`'s note on a sky.
UNSEEN_SKY_KEY = 'faint_light_unmeasured'
#: The ``meta`` key of `_check_coverage`'s warning on a sky: a source mask
#: that left the level too few pixels, or a crowded frame's.
SPARSE_SKY_KEY = 'sparse_sky'
#: `unseen_sky_note` takes a frame for one of faint stars from this many
#: faint sources per `MASK_BIN` x `MASK_BIN` block (``meta
#: ['faint_source_density']``): 512 x 512 frames of a luminosity function
#: rising to the mask's reach (4000-20000 stars, skies of 50-2000 e-, PSFs
#: of 1-2.5 px) 0.0061-0.0076, astropy's M13 0.0055; grids of bright
#: stars (300 to 10**5 e-, 24 px apart on 384 x 384), whose mask's growth
#: covers 89-92% of the frame and whose level is right (flux pulls -0.03
#: to +0.09), 0.0013-0.0020.
UNSEEN_MIN_DENSITY = 0.004
#: Where the light was measured but the source mask of such a frame
#: covers at least this fraction of its blocks (``1 -
#: MIN_UNMASKED_FRACTION``) and the light of the stars below the reach
#: is extrapolated (`_below_reach`), that extrapolation rests on the few
#: sources at the reach their masked neighbours leave in view (15-43% of
#: the frame shows one): on 29 frames of 512 x 512 of the steep
#: luminosity function, 80-94% masked (2000 to 6000 stars, skies of 200
#: to 2000 e-, PSFs of 1.2 to 2.2 px), ``crowding_bias`` was 0.44-2.2
#: times the lift (geometric mean 0.88; 0.54-3.4, 1.21, on 36 less
#: masked ones), so every row is flagged. (Before the hidden sources were
#: allowed for it was 0 to 0.88 of it, median 0.35, on 13 such frames,
#: rows unflagged at pulls -0.34 and -0.60.) Frames of 300 stars as many
#: per decade (58-64%) and the real frames whose light is measured (at
#: most 62%) are less masked; grids of stars of 300 to 10**4 ADU (nothing
#: fainter) on 256 x 256 and 384 x 384, 73-82% masked, extrapolate
#: nothing (slopes 0.1-1.3 fitted; raised, less their errors, at most
#: 1.16).
UNSEEN_MAX_MASKED = 1.0 - MIN_UNMASKED_FRACTION


def unseen_sky_note(light, blocks, density):
    """
    The note of a crowded frame whose source mask leaves too little sky to
    measure the light of the stars too faint for it, or None.

    `faint_light` measures that light (and `crowding_bias` the lift it
    gives the level) on the sky off the mask; where the mask leaves too
    little (fewer than `MATCHED_MIN_PIXELS` pixels on its sampling grid,
    every second row and column of a 512 x 512 frame) it cannot, and
    ``crowding_bias`` would be 0 for want of a measurement: 512 x 512
    frames of a luminosity function rising to the mask's reach, 94-98%
    masked, read 7 to 43 of the level's errors high, their fluxes 0.4 to
    3.5 errors low, with flags 0 (a Background2D map tied to their blank
    sky: 1.0 low). Such a frame shows no blank sky to call its level
    unbiased (a whole-frame level, or a map tied to that sky): the note
    says so, and every row measured against the level is flagged
    (`~ccdphot_ext.photometry.residual.SkyNoteRule`). A frame with few
    faint sources (under `UNSEEN_MIN_DENSITY`: a grid of bright stars
    whose grown masks leave a little sky between them, where the level is
    right) gets none.

    Where the light was measured but the mask covers at least
    `UNSEEN_MAX_MASKED` of the blocks of such a frame, and the light of
    the stars below the reach is extrapolated (`faint_light`: the sources
    at the reach rise towards it), that extrapolation rests on the few
    sources at the reach that their masked neighbours leave in view, and
    may fall short of the lift by half: the note says so too.

    Parameters
    ----------
    light : tuple of float or None
        `faint_light` of the frame.
    blocks : 2-D `~numpy.ndarray` of bool
        The binned source mask.
    density : float
        The faint sources found per block (`source_blocks`).

    Returns
    -------
    note : str or None
        None where the light was measured on a mask covering less than
        `UNSEEN_MAX_MASKED` of the frame or with nothing extrapolated below
        the reach (a luminosity function that does not rise towards it, or
        too few sources to tell), the frame is not crowded
        (`is_crowded`), has fewer than `FILTER_MIN_BLOCKS` blocks a side
        (where `faint_light` does not run) or few faint sources.
    """
    if (min(blocks.shape) < FILTER_MIN_BLOCKS or not is_crowded(blocks)
            or not density >= UNSEEN_MIN_DENSITY):
        return None
    covered = float(np.mean(blocks))
    if light is None:
        return (f'crowded frame: the source mask covers {covered:.0%} of '
                'it and leaves too little sky to measure the light of the '
                'stars too faint to be masked, which lifts the level by an '
                'unknown amount: fluxes measured against it may read low '
                '(a local sky holds that light too)')
    below = float(light[2]) if len(light) > 2 else 0.0
    if covered < UNSEEN_MAX_MASKED or not below > 0:
        return None
    return (f'crowded frame: the source mask covers {covered:.0%} of it; '
            'the light of the stars too faint to be masked is extrapolated '
            "from the few sources at the mask's reach that their masked "
            'neighbours leave in view, and may fall short of their lift of '
            'the level by half: fluxes measured against it may read low (a '
            'local sky holds that light too)')


def crowding_bias(light):
    """
    How far the light of stars too faint for the source mask lifts a
    level measured on the unmasked pixels.

    Parameters
    ----------
    light : tuple of float or None
        The light of the faint sources off the mask, per unmasked pixel,
        and its error, then (optional) the lift extrapolated below the
        reach, the slope, and the masked stars' wing light past the mask
        and its error (`faint_light`, data unit).

    Returns
    -------
    bias : float
        The larger of `CROWDING_DEPTH` times that light, where it exceeds
        `FAINT_LIGHT_NSIGMA` times its error, and the extrapolated lift,
        plus the wing light where it exceeds `WING_NSIGMA` times its error
        (data unit per pixel); 0 where none shows, or without ``light``:
        the frame shows no light of stars too faint to be masked, nor
        wings past the mask.
    """
    if light is None:
        return 0.0
    value, error = (float(v) for v in light[:2])
    below = float(light[2]) if len(light) > 2 else 0.0
    found = CROWDING_DEPTH * value if value > FAINT_LIGHT_NSIGMA * error \
        else 0.0
    return max(found, below if below > 0 else 0.0) + _wings(light)


def crowding_bound(light):
    """
    The largest lift of a level that the light of stars too faint for the
    source mask may give, as far as the frame shows.

    Parameters
    ----------
    light : tuple of float or None
        As `crowding_bias` (``light[6]``, where given, the largest lift
        below the reach that the sources at it allow: `_below_reach`).

    Returns
    -------
    bound : float
        The larger of `crowding_bias` and that lift plus the wing light
        `crowding_bias` counts (data unit per pixel); 0 without ``light``.
    """
    if light is None:
        return 0.0
    bias = crowding_bias(light)
    bound = float(light[6]) if len(light) > 6 else 0.0
    if not bound > 0:  # (NaN: not recorded)
        return bias
    return max(bias, bound + _wings(light))


def bound_note(light, bound, error_on_mean):
    """The words of the largest lift ``bound`` (`crowding_bound`) of a
    sky whose `crowding_bias` is within its ``error_on_mean``: ``light``
    as `faint_light`."""
    return (f'crowded frame: the stars too faint to be masked may lift the '
            f'sky by up to {bound:.2g} per pixel, {bound / error_on_mean:.1f}'
            ' times its error, were they to continue below the mask\'s reach '
            'as the sources at it, whose number rises towards it as '
            f'F**-{float(light[3]):.2f}, allow; the frame does not show how '
            'far they go (the level is not corrected, and its error does not '
            "include this: meta['crowding_bias_bound']): fluxes of large "
            'apertures measured against it may read low (a local sky holds '
            'their light too)')


def _wings(light):
    """The masked stars' wing light of ``light`` (`faint_light`) where it
    exceeds `WING_NSIGMA` times its error, else 0."""
    wing, error = (float(v) for v in (tuple(light[4:6]) + (0.0, 0.0))[:2])
    return wing if wing > WING_NSIGMA * error and wing > 0 else 0.0


def crowding_note(light, bias, error_on_mean=None):
    """The words of the faint stars' lift of a sky: ``light`` (value,
    error, then optionally the lift extrapolated below the reach, the
    slope and the masked stars' wing light and its error) as
    `faint_light`, ``bias`` as `crowding_bias`, and the level's
    ``error_on_mean`` (None: not said)."""
    value, error = light[:2]
    times = ('' if error_on_mean is None else
             f', {bias / float(error_on_mean):.1f} times its error')
    wing = _wings(light)
    wings = (f'the wings of the masked stars reach past the source mask: '
             f'their light there, {wing:.2g} per pixel, from the profile of '
             "the frame's brightest isolated stars")
    if not bias - wing > 0:
        return (f'{wings}, lifts the sky by about {bias:.2g} per pixel'
                f'{times} (the level is not corrected), and fluxes measured '
                'against it read low (a local sky holds their light too)')
    if wing > 0:
        times = (f'{times}, with {wing:.2g} from the masked stars\' wings, '
                 f'which reach past the mask')
    bias_faint = bias - wing
    below = float(light[2]) if len(light) > 2 else 0.0
    if below > 0 and below >= bias_faint:
        how = (f'extrapolated from the sources at the mask\'s reach, whose '
               f'number rises towards it as F**-{float(light[3]):.2f}: '
               'less where the stars stop soon below it, which the frame '
               'does not show')
    else:
        how = (f'{CROWDING_DEPTH:g} times that: more where the stars '
               'continue far below the mask\'s reach, less where they stop '
               'near it, which the frame does not show')
    held = (f'hold {value:.2g} +- {error:.2g} per unmasked pixel in the '
            'regions a deeper search finds off the source mask'
            if math.isfinite(value) else 'are many')
    return (f'crowded frame: the stars too faint to be masked {held}; their '
            f'light lifts the sky by about {bias:.2g} per pixel{times} '
            f'({how}; the level is not corrected), and fluxes measured '
            'against it read low (a local sky holds their light too)')


def check_crowding(meta, std, error_on_mean, *, warn=True, stacklevel=3):
    """
    Record, and warn about, the bias of a whole-frame level from the light
    of stars too faint to be masked.

    Sets ``meta['crowding_bias']`` to `crowding_bias` of the faint light
    measured off the source mask (``meta['faint_light']`` and
    ``meta['faint_light_error']``, `faint_light`): an estimate of how far
    that light lifts the level (data unit per pixel; 0 where the frame
    shows none beyond its noise), and ``meta['crowding_bias_bound']`` to
    `crowding_bound`, the largest lift the frame allows (the stars below
    the reach continued as the sources at it, their slope one error
    steeper: the level's error does not include it). When the estimate,
    or else the bound, exceeds `CROWDING_NSIGMA` times ``error_on_mean``,
    ``meta['crowding_note']`` says so and, with ``warn``, an
    `~astropy.utils.exceptions.AstropyUserWarning` too. The level is not
    changed. Nothing is done without ``meta['faint_source_density']`` (no
    source mask).

    Parameters
    ----------
    meta : dict
        The sky's ``meta`` (updated in place).
    std : float
        The sky's standard deviation per pixel.
    error_on_mean : float
        The error of the level.
    warn : bool, optional
        False when another warning already said that the sources bias the
        level (default True).
    stacklevel : int, optional
        As in `warnings.warn`.
    """
    if meta.get('faint_source_density') is None:
        return
    light = stored_light(meta)
    bias = crowding_bias(light)
    bound = crowding_bound(light)
    meta['crowding_bias'] = bias
    meta['crowding_bias_bound'] = bound
    limit = CROWDING_NSIGMA * float(error_on_mean)
    if bias > limit:
        note = crowding_note(light, bias, error_on_mean)
    elif bound > limit:
        note = bound_note(light, bound, float(error_on_mean))
    else:
        return
    meta['crowding_note'] = note
    if warn:
        warnings.warn(note, AstropyUserWarning, stacklevel=stacklevel)


def _mask_sources(frame, usable, blocks, counts, n_bad, meta):
    """Set ``usable.blocks`` to the source ``blocks``; return the usable
    pixels they mask (``counts``: usable pixels per block)."""
    usable.blocks = blocks
    n_masked = int(counts[blocks].sum(dtype=np.int64))
    n_usable = frame.data.size - n_bad
    if n_masked == n_usable:
        usable.blocks = None
        warnings.warn('the source mask covers the whole frame: the sky is '
                      'estimated without it', AstropyUserWarning,
                      stacklevel=4)
        meta['source_mask'] = 'dropped: it covered every usable pixel'
        meta['source_mask_dropped'] = (
            'the source mask covered the whole frame: the whole-frame sky '
            'was estimated without it, from pixels that hold the sources\' '
            'light: the fluxes measured against it may read low; use an '
            'annulus sky or a background map')
        return 0
    meta['source_mask'] = (
        f'8-connected segments on the {MASK_BIN}x{MASK_BIN}-binned '
        f'frame at {MASK_NSIGMA} binned sigma with a block above '
        f'{MASK_SEED}, npixels={MASK_NPIXELS}, '
        f'dilated by {MASK_DILATE} blocks (as many low segments masked, '
        f'but those of {LOW_SKY_BLOCKS} blocks or more: the sky\'s own)')
    meta['n_masked_sources'] = n_masked
    return n_masked


def _check_coverage(frame, out, n_masked, n_usable, meta):
    """
    Warn that a source mask leaving less than `MIN_UNMASKED_FRACTION` of
    the ``n_usable`` pixels leaves the level too few pixels (fewer than
    `MIN_SKY_PIXELS`) or a crowded frame's (`CROWDED_LIGHT_FRACTION` of
    the pixels hold the sources' light, ``meta['source_light_fraction']``);
    True when it warned (the warning of too few pixels kept as
    ``meta[SPARSE_SKY_KEY]``). A
    mask grown around isolated stars leaves good sky between them, however
    little: no warning.
    """
    light = _light_fraction(frame, float(out['level']), float(out['std']))
    meta['source_light_fraction'] = light
    n_sky = n_usable - n_masked
    share = f'sources cover {n_masked / n_usable:.0%} of the frame'
    if light >= CROWDED_LIGHT_FRACTION:
        message = (f'{share} and their light {light:.0%} of its pixels (over '
                   f'{CROWDED_NSIGMA:g} sky standard deviations above the '
                   f'level): the global sky rests on the {n_sky} pixels '
                   'between crowded sources and may be biased by their '
                   'light')
    elif n_sky < MIN_SKY_PIXELS:
        message = (f'{share}: the global sky rests on {n_sky} pixels, too '
                   f'few for its clip and scatter (fewer than '
                   f'{MIN_SKY_PIXELS})')
        # (kept for the rows: the level of a small frame rests on too few
        # pixels to be checked; a crowded frame's light is warned alone)
        meta[SPARSE_SKY_KEY] = (f'{message}; consider a local sky (annuli) '
                                'or a background map')
    else:
        return False
    message = f'{message}; consider a local sky (annuli) or a background map'
    warnings.warn(message, AstropyUserWarning, stacklevel=4)
    return True


def _light_fraction(frame, level, std):
    """The fraction of the frame's usable pixels (sources included) more
    than `CROWDED_NSIGMA` ``std`` above ``level``, less the normal tail's
    share: the pixels the sources' light covers. One pass, in bands."""
    usable = _Usable(frame)  # no source mask
    bound = level + CROWDED_NSIGMA * std
    above = total = 0
    for lo, hi in usable.bands():
        good = usable.rows(lo, hi)
        total += int(np.count_nonzero(good))
        above += int(np.count_nonzero(frame.data[lo:hi][good] > bound))
    tail = 0.5 * math.erfc(CROWDED_NSIGMA / math.sqrt(2.0))
    return above / max(total, 1) - tail


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
    raw, values = values, values.astype(np.float64, copy=False)
    keep = None
    if method == 'sigma_clip':
        keep = _clip_keep(values, raw, sigma, maxiters)
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
    propagated = None
    if unc is not None:
        if keep is not None:
            unc = unc[keep]
        propagated = (math.sqrt(np.sum(unc.astype(np.float64) ** 2))
                      / unc.size)
    return {'level': level, 'std': std, 'n_pix': n_pix,
            'propagated': propagated, 'efficiency': k,
            'pixels': (raw, keep)}


def _clip_keep(values, raw, sigma, maxiters):
    """
    The pixels ``sigma_clip(values, cenfunc='median', stdfunc='std')``
    keeps: by the sorted clip of `clip_rows` (``raw`` sorted in its own
    precision, the same order), or by astropy itself when a pixel lies
    within rounding of a bound.
    """
    rows = values[None, :]
    clip = clip_rows(rows, sigma, maxiters, ordered=np.sort(raw)[None, :],
                     n=np.array([values.size]), resolve=False)
    if clip.doubt[0]:
        clipped = sigma_clip(values, sigma=sigma, maxiters=maxiters,
                             cenfunc='median', stdfunc='std', masked=True,
                             copy=False)
        return ~np.ma.getmaskarray(clipped)
    return clip.keep(rows)[0]


def _bounds_in(dtype, lo, hi):
    """
    Clip bounds ``lo``, ``hi`` (float64) in the pixels' precision, so that
    comparing a band with them converts no pixel: for float32 pixels the
    smallest float32 at or above ``lo`` and the largest at or below ``hi``
    (they keep exactly the pixels ``lo <= x <= hi`` keeps); other dtypes
    keep the bounds as given.
    """
    if dtype != np.float32:
        return lo, hi
    with np.errstate(over='ignore'):  # beyond float32: +-inf
        low, high = np.float32(lo), np.float32(hi)
    if low < lo:
        low = np.nextafter(low, np.float32(np.inf))
    if high > hi:
        high = np.nextafter(high, np.float32(-np.inf))
    return low, high


def _clip_large(frame, usable, sigma, maxiters, meta, n_target,
                third_moment=False):
    """Bounds from a clipped subsample of about ``n_target`` pixels, then
    one pass over the frame (with ``third_moment``, also the sums of the
    third moment in the window of `third_window`, from the subsample's
    clip)."""
    values, _, stride = _subsample(usable, n_target)
    clipped, lo, hi = sigma_clip(values, sigma=sigma, maxiters=maxiters,
                                 cenfunc='median', stdfunc='std',
                                 masked=False, return_bounds=True)
    clipped = clipped[np.isfinite(clipped)]  # clipped pixels are NaN
    centre = float(median(clipped))
    low, high = _bounds_in(frame.data.dtype, lo, hi)
    n = s1 = s2 = su = 0.0
    third = None
    if third_moment:  # the window and the sums of the cubes in it
        third = [*third_window(window_statistics(
            (lo, hi), float(np.mean(clipped)), float(np.var(clipped)),
            clipped.size, is_digitised(values)), sigma), 0.0, 0.0, 0.0, 0.0]
    for top, bottom in usable.bands():
        data = frame.data[top:bottom]
        if usable.all_finite and frame.mask is None and \
                frame.uncertainty is None:  # only the sources to mask
            keep = data >= low
            if usable.blocks is not None:
                _clear_blocks(keep, usable.blocks, top)
        else:
            keep = usable.rows(top, bottom)
            keep &= data >= low
        keep &= data <= high
        if usable.all_finite:  # (x - centre) * 0 is 0: no masked copy
            d = np.subtract(data, centre, dtype=np.float64)
            d *= keep
        else:
            d = np.subtract(data, centre, dtype=np.float64, where=keep,
                            out=np.zeros(data.shape))
        n += np.count_nonzero(keep)
        if third is not None:
            _third_sums(third, data, usable, top, bottom, centre)
        s1 += float(np.sum(d))
        np.multiply(d, d, out=d)
        s2 += float(np.sum(d))
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
    error_on_mean = math.sqrt(std_kept ** 2 / n + centre_var)
    k = error_on_mean * math.sqrt(n) / std if std > 0 else 1.0
    meta.update(sigma=sigma, maxiters=maxiters, std_factor=std_factor,
                n_clipped=int(frame.data.size - meta['n_excluded_bad']
                              - meta.get('n_masked_sources', 0) - n),
                clip_bounds=(float(lo), float(hi)), n_subsample=n_sub,
                subsample=f'every {stride}th row and column '
                          f'({n_sub} pixels kept) for the clip bounds')
    stats = window_statistics((lo, hi), centre + mean, std_kept ** 2,
                              n + meta['n_clipped'], is_digitised(values),
                              n_window=n)
    if third is not None:  # the cubes about the kept pixels' mean
        w0, w1, w2, w3 = third[2:]
        stats.update(window3=tuple(third[:2]), m3=(
            w3 - 3.0 * mean * w2 + 3.0 * mean ** 2 * w1 - mean ** 3 * w0)
            / w0 if w0 else 0.0)
    return {'level': centre + mean, 'std': std, 'n_pix': int(n),
            'propagated': (math.sqrt(su) / n if frame.uncertainty is not None
                           else None),
            'efficiency': k, 'window': stats}


def _third_sums(third, data, usable, top, bottom, centre):
    """Add to ``third`` (the window's bounds, then the sums of 1 and of the
    first three powers of the deviations from ``centre``) the usable
    pixels of rows ``top:bottom`` (``data``) inside the window."""
    inside = usable.rows(top, bottom)
    inside &= (data >= third[0]) & (data <= third[1])
    d = np.subtract(data[inside], centre, dtype=np.float64)
    third[2] += d.size
    third[3] += float(np.sum(d))
    d2 = d * d
    third[4] += float(np.sum(d2))
    third[5] += float(np.dot(d2, d))
