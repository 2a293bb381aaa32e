# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How the pixel noise of a frame varies across it.

A whole-frame sky (`~ccdphot_ext.SkyEstimate.from_image`) gives every
aperture the same per-pixel scatter, ``std``. On a frame whose depth is
uneven (a mosaic of unequal exposures, a flat-fielded frame with vignetted
corners, the unresolved light of a cluster) that scatter holds nowhere: an
aperture where the noise is higher gets too small an error, one where it
is lower too large. `NoiseVariation` measures the noise in cells of
`NOISE_CELL` x `NOISE_CELL` pixels from the differences of neighbouring
pixels that the sky's source mask leaves (a difference cancels the
background and its gradients), relative to the whole frame's, so that
the photometry can flag the rows measured where the frame's ``std`` does
not hold.
"""

import math

import numpy as np

from ..flags import FLAG_SKY_ANNULUS
from .skyrules import SkyRowRule, first_message, no_rows

__all__ = ['NoiseVariation', 'check_sky_noise']

#: The side of the cells (pixels) whose noise is compared.
NOISE_CELL = 64
#: A row is flagged where its cell's noise differs from the whole frame's
#: by more than this fraction (its error bar's sky term wrong by as much),
#: the 3 x 3 cells about it (pooled) by more than half of it on the same
#: side (one cell of few usable pixels, crowded or masked, is not enough),
#: and either of them by more than `NOISE_NSIGMA` of its own error.
NOISE_TOLERANCE = 0.1
NOISE_NSIGMA = 4.0
#: Differences beyond this many of the frame's ``std`` (a star's edge, a
#: cosmic ray the mask missed) are left out.
NOISE_CLIP = 4.0
#: Cells with fewer pixel pairs have no ratio of their own (NaN): not
#: judged.
NOISE_MIN_PAIRS = 32


class NoiseVariation:
    """
    The pixel noise of each cell of a frame over the whole frame's.

    Made by the whole-frame sky (`~ccdphot_ext.SkyEstimate.from_image`),
    which keeps it in ``meta['noise_variation']``; `measure` makes one from
    any frame. Each cell's noise is the root mean square of the
    differences of horizontal pairs of usable pixels (columns ``2k`` and
    ``2k + 1``, both finite, unmasked and off the sources), over
    :math:`\\sqrt{2}`, those beyond `NOISE_CLIP` times the frame's ``std``
    left out; its ratio to the same over the whole frame has a relative
    error of :math:`1 / \\sqrt{2 n}` for ``n`` pairs (white noise).

    Parameters
    ----------
    squares : 2-D array_like
        Per cell, the sum of the squared half-differences kept.
    pairs : 2-D array_like
        Per cell, the number of pairs kept (the shape of ``squares``).
    shape : tuple of int
        The frame's shape.

    Attributes
    ----------
    ratio : `~numpy.ndarray`
        Each cell's noise over the whole frame's (NaN for a cell of fewer
        than `NOISE_MIN_PAIRS` pairs).
    error : `~numpy.ndarray`
        The ratio's error (NaN likewise).
    shape : tuple of int
        As given.

    Examples
    --------
    A frame twice as noisy on its right half:

    >>> import numpy as np
    >>> from ccdphot_ext.background.noisevariation import NoiseVariation
    >>> rng = np.random.default_rng(3)
    >>> img = rng.normal(0.0, [[1.0] * 128 + [2.0] * 128], (256, 256))
    >>> noise = NoiseVariation.measure(img, std=1.6)
    >>> halves = noise.ratio[:, :2].mean(), noise.ratio[:, 2:].mean()
    >>> np.round(halves, 1).tolist()  # 1 and 2 over sqrt((1 + 4) / 2)
    [0.6, 1.3]
    >>> noise.doubtful([30.0, 130.0, 250.0], [100.0, 100.0, 100.0]).tolist()
    [True, True, True]
    """

    def __init__(self, squares, pairs, shape):
        squares = np.asarray(squares, dtype=float)
        pairs = np.asarray(pairs, dtype=float)
        if squares.ndim != 2 or squares.shape != pairs.shape:
            raise ValueError('squares and pairs must be 2-D arrays of one '
                             f'shape, got {squares.shape} and {pairs.shape}')
        self.shape = tuple(int(n) for n in shape)
        total = float(np.sum(pairs))
        whole = math.sqrt(float(np.sum(squares)) / total) if total else 0.0
        judged = pairs >= NOISE_MIN_PAIRS
        with np.errstate(invalid='ignore', divide='ignore'):
            self.ratio = np.where(judged, np.sqrt(squares / pairs) / whole,
                                  np.nan)
            self.error = np.where(judged, self.ratio / np.sqrt(2.0 * pairs),
                                  np.nan)
            pooled_pairs = _pooled(pairs)
            pooled = np.where(pooled_pairs >= NOISE_MIN_PAIRS, np.sqrt(
                _pooled(squares) / pooled_pairs) / whole, np.nan)
            self._pooled = (pooled, pooled / np.sqrt(2.0 * pooled_pairs))
        if not whole > 0:
            self.ratio[:] = np.nan
            self.error[:] = np.nan

    def _judged(self, iy, ix):
        """
        `doubtful` of cells given by index.

        Parameters
        ----------
        iy, ix : int or `~numpy.ndarray` of int
            The cells' row and column indices (broadcast).

        Returns
        -------
        doubtful : `~numpy.ndarray` of bool
            Per cell.
        """
        off = self.ratio[iy, ix] - 1.0
        pooled = self._pooled[0][iy, ix] - 1.0
        with np.errstate(invalid='ignore'):
            return ((np.abs(off) > NOISE_TOLERANCE)
                    & (np.abs(pooled) > NOISE_TOLERANCE / 2)
                    & (np.sign(pooled) == np.sign(off))
                    & ((np.abs(off) > NOISE_NSIGMA * self.error[iy, ix])
                       | (np.abs(pooled)
                          > NOISE_NSIGMA * self._pooled[1][iy, ix])))

    @classmethod
    def measure(cls, data, *, std, usable=None):
        """
        Measure the noise variation of a frame.

        Parameters
        ----------
        data : 2-D array_like
            The frame.
        std : float
            The frame's per-pixel noise (its sky's ``std``): differences
            beyond `NOISE_CLIP` times it are left out.
        usable : 2-D array_like of bool, optional
            The pixels that may enter (finite, unmasked, off the sources);
            None (default): every finite pixel.

        Returns
        -------
        noise : `NoiseVariation`
        """
        data = np.asarray(data)
        good = np.isfinite(data) if usable is None else np.asarray(usable)
        acc = NoiseAccumulator(data.shape, std)
        acc.add(0, data, good)
        return acc.result()

    def _cells(self, x, y):
        """
        The cells holding pixel positions.

        Parameters
        ----------
        x, y : float or array_like
            Pixel positions (beyond the frame: the nearest cell's).

        Returns
        -------
        iy, ix : `~numpy.ndarray` of int
            The cells' row and column indices.
        """
        ny, nx = self.ratio.shape
        iy = np.clip(np.floor(np.asarray(y, dtype=float) + 0.5)
                     // NOISE_CELL, 0, ny - 1).astype(int)
        ix = np.clip(np.floor(np.asarray(x, dtype=float) + 0.5)
                     // NOISE_CELL, 0, nx - 1).astype(int)
        return iy, ix

    def doubtful(self, x, y):
        """
        True where the noise of the cell holding a position differs from
        the whole frame's by more than `NOISE_TOLERANCE` and `NOISE_NSIGMA`
        times the ratio's error.

        Parameters
        ----------
        x, y : float or array_like
            Pixel positions (broadcast; beyond the frame, the nearest
            cell's).

        Returns
        -------
        doubtful : bool or `~numpy.ndarray` of bool
        """
        return self._judged(*self._cells(x, y))[()]

    @property
    def uneven(self):
        """True when a cell's noise is doubtful (`doubtful`)."""
        return bool(np.any(self._judged(*np.indices(self.ratio.shape))))

    @property
    def extremes(self):
        """The smallest and largest cell ratio (NaN, NaN for none)."""
        if not np.isfinite(self.ratio).any():
            return math.nan, math.nan
        return float(np.nanmin(self.ratio)), float(np.nanmax(self.ratio))

    def __repr__(self):
        lo, hi = self.extremes
        return (f'<NoiseVariation cells={self.ratio.shape} '
                f'ratio={lo:.3g}..{hi:.3g}>')


def _pooled(grid):
    """
    The sums of a grid over the 3 x 3 cells about each cell.

    Parameters
    ----------
    grid : `~numpy.ndarray`
        Per-cell values (2-D).

    Returns
    -------
    pooled : `~numpy.ndarray`
        Per cell, the sum over it and its neighbours on the grid.
    """
    padded = np.pad(grid, 1)
    ny, nx = grid.shape
    return sum(padded[i:i + ny, j:j + nx] for i in range(3) for j in range(3))


class NoiseAccumulator:
    """
    Sums of squared half-differences and pair counts per cell, band of
    rows by band of rows (`add`), then the `NoiseVariation` (`result`).

    Parameters
    ----------
    shape : tuple of int
        The frame's shape.
    std : float
        The frame's per-pixel noise: differences beyond `NOISE_CLIP`
        times it are left out.
    """

    def __init__(self, shape, std):
        self.shape = shape
        ny, nx = shape
        self.cells = (-(-ny // NOISE_CELL), -(-nx // NOISE_CELL))
        self.squares = np.zeros(self.cells)
        self.pairs = np.zeros(self.cells)
        self.clip = NOISE_CLIP * float(std)

    def add(self, lo, data, good):
        """
        Add a band of the frame's rows.

        Parameters
        ----------
        lo : int
            The band's first row in the frame.
        data : 2-D `~numpy.ndarray`
            The rows ``lo:lo + len(data)``.
        good : 2-D `~numpy.ndarray` of bool
            Their usable pixels.
        """
        width = data.shape[1] // 2 * 2
        if width == 0 or data.shape[0] == 0:
            return
        half = np.subtract(data[:, 1:width:2], data[:, 0:width:2],
                           dtype=np.result_type(data.dtype, np.float32))
        half *= 1.0 / math.sqrt(2.0)
        keep = good[:, 1:width:2] & good[:, 0:width:2]
        with np.errstate(invalid='ignore'):
            keep &= np.abs(half) <= self.clip
        np.multiply(half, half, out=half)
        half[~keep] = 0.0
        # per cell column, then per cell row (the band's rows in cells);
        # a last column of one pixel (a frame 64 k + 1 wide) has no pair
        # and its cells keep no pairs
        starts = np.arange(0, half.shape[1], NOISE_CELL // 2)
        rows = np.flatnonzero(np.diff((lo + np.arange(data.shape[0]))
                                      // NOISE_CELL, prepend=-1))
        cell_rows = (lo + rows) // NOISE_CELL
        for total, values in ((self.squares, half),
                              (self.pairs, keep.astype(np.float32))):
            by_column = np.add.reduceat(values, starts, axis=1,
                                        dtype=np.float64)
            total[cell_rows, :starts.size] += np.add.reduceat(
                by_column, rows, axis=0)

    def result(self):
        """
        The noise variation of the rows added.

        Returns
        -------
        noise : `NoiseVariation`
        """
        return NoiseVariation(self.squares, self.pairs, self.shape)


def check_sky_noise(sky, frame, x, y, *, scaled=None, stacklevel=3):
    """
    Which photometry rows one whole-frame ``std`` serves wrongly, and a
    warning naming them.

    Where the frame's pixel noise (the `NoiseVariation` its whole-frame
    sky keeps) differs from the whole frame's by more than
    `NOISE_TOLERANCE`, beyond its own error, a row's sky term is wrong by
    as much: the photometry engines set
    `~ccdphot_ext.flags.FLAG_SKY_ANNULUS` (the sky doubtful there) on
    those rows, and an `~astropy.utils.exceptions.AstropyUserWarning`
    says how many and what to do. Nothing is checked for a frame with an
    uncertainty map (each pixel's own noise enters), a sky of one level
    per aperture or a map, or a sky estimated on another frame.

    Parameters
    ----------
    sky, frame, x, y
        The sky subtracted, the frame measured and the apertures' centres,
        as in `~ccdphot_ext.background.skyrules.SkyRowRule.doubt`.
    scaled : float or array_like, optional
        Per aperture, how much an empirical noise model (``noise=``,
        `~ccdphot_ext.ApertureNoise.local_ratio`) scaled its sky term
        for the local noise: rows scaled (above 1) follow the local noise
        already and are not judged. None (default): none scaled.
    stacklevel : int, optional
        As in `warnings.warn`, counted from the caller of this function.

    Returns
    -------
    doubtful : bool or `~numpy.ndarray` of bool
        Per aperture: True where the frame's noise differs from its
        ``std`` (and the row's sky term was not scaled for it).
    message : str or None
        The warning said, or None.
    """
    return first_message(SKY_NOISE.check(sky, frame, x, y, None, None,
                                         scaled=scaled,
                                         stacklevel=stacklevel + 1))


class SkyNoiseRule(SkyRowRule):
    """`check_sky_noise`'s rule: a whole-frame ``std`` off the frame's
    local pixel noise (flag 64; it reads neither ``n_pix`` nor
    ``flux_err``)."""

    flag = FLAG_SKY_ANNULUS

    def doubt(self, sky, frame, x, y, n_pix, flux_err, *, scaled=None):
        none = no_rows(x, y)
        variation = sky.background_variation if sky.isscalar else None
        noise = getattr(variation, 'noise', None)
        if (noise is None or frame.uncertainty is not None
                or tuple(frame.data.shape) != noise.shape):
            return none, None
        doubtful = noise.doubtful(x, y)
        if scaled is not None:
            doubtful = (doubtful & ~(np.asarray(scaled) > 1.0))[()]
        return doubtful, noise

    def message(self, rows, n_bad, context):
        lo, hi = context.extremes
        return (
            f'the pixel noise varies across the frame ({lo:.2f} to '
            f'{hi:.2f} times the whole frame\'s in cells of {NOISE_CELL} '
            f'pixels): for {n_bad} of {np.size(rows)} aperture(s) the '
            f'sky\'s one std is off by more than {NOISE_TOLERANCE:.0%}, and '
            f'so is their error bar (flagged {FLAG_SKY_ANNULUS}). Give the '
            'frame\'s uncertainty (e.g. ccdproc.create_deviation, or a '
            'weight map), or measure with a sky annulus, whose scatter is '
            'local')


SKY_NOISE = SkyNoiseRule()
