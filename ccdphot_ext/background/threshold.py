# Licensed under a 3-clause BSD style license - see LICENSE
"""
Threshold masks: keep only the pixels of an aperture that hold signal.

Two selections:

``'smoothed'`` (default, unbiased)
    A pixel is kept when the *other* pixels around it, weighted by a
    Gaussian of ``fwhm`` pixels (a matched filter with its centre left
    out), are above ``n_sigma`` times their own noise: the leave-one-out
    signal-to-noise ratio ``sum_j k_ij x_j / (sigma * sqrt(sum_j k_ij**2))``
    (``j != i``) exceeds ``n_sigma``. Whether a pixel is selected then does
    not depend on that pixel's own noise, so the sum over the mask is an
    unbiased estimate of the true flux inside the mask, and
    ``n_pix * sigma**2`` its variance (calibrated by Monte Carlo: see
    :ref:`calibration`).
``'pixel'`` (the notebook's mask, biased)
    ``mask = cutout > n_sigma * sigma``: each pixel against its own noisy
    value, *strictly* greater, found with photutils'
    `~photutils.segmentation.detect_sources` (``n_pixels=1``). Noise that
    happens to be positive is preferentially summed: with ``n_sigma=2``
    the flux comes out high by several error bars for a faint star (see
    `PIXEL_SELECTION_BIAS`).
"""

import functools
import math
import warnings
from functools import cached_property

import numpy as np
from photutils.utils import NoDetectionsWarning
from scipy.ndimage import correlate1d

from ..utils.inputs import positive_scalar
from ..utils.numbers import check_choice

__all__ = ['SigmaThreshold']

_SEGMENTS = ('all', 'central')
#: The pixel selections of `SigmaThreshold`.
SELECTIONS = ('smoothed', 'pixel')

#: Measured bias of ``selection='pixel'`` (``n_sigma=2``, 15x15 box, the
#: calibration frames of :ref:`calibration`): mean pull of the masked flux
#: against the true flux inside the reported mask, by star flux [ADU].
PIXEL_SELECTION_BIAS = {2000.0: 5.1, 20000.0: 2.3}

#: Cutouts up to this side are convolved by banded matrix products (BLAS),
#: larger ones by scipy's separable filter.
MATMUL_SIDE = 48

#: Width, in units of the noise of the smoothed signal, of the kernel that
#: estimates threshold-crossing densities in `SigmaThreshold.selection_variance`.
KDE_WIDTH = 0.5

#: Share of the mask-growth adjustment (`SigmaThreshold.selection_variance`
#: with ``segment='all'``) applied: the share that centres the pulls of
#: faint stars (100-2000 ADU), measured over ten regimes of sky (100-2000
#: ADU), gain (1-4) and PSF width (1-2.5 px; :ref:`calibration`). The
#: growth is computed with the kernel's crossing densities, which are too
#: high away from the threshold: the full share over-corrects (+0.02 to
#: +0.03, spreads up to 1.07), two thirds under-correct (-0.02 to -0.03,
#: spreads down to 0.94).
GROWTH_SHARE = 0.8

#: The adjustment's standardized residual (the masked sum's excess over the
#: profile fit, in units of its noise) is clipped at this many standard
#: deviations: a neighbour star or a profile far from a Gaussian at the
#: aperture centre moves the error bar by a bounded amount.
GROWTH_CLIP = 3.0

#: Widths, in units of the standard deviation of the selection's Gaussian
#: filter, of the Gaussian profiles tried by the adjustment (the one of the
#: highest matched-filter signal-to-noise ratio is used).
GROWTH_WIDTHS = np.exp(np.linspace(np.log(0.5), np.log(4.0), 16))

#: The adjustment is applied in full where the pull bias the mask's growth
#: predicts (``sigma**4 D / (2 e**3)``, ``e**2`` the sky and selection
#: terms) reaches this, in proportion below: bright stars, whose pulls it
#: barely moves, keep their error bars.
GROWTH_BIAS = 0.05

#: The sky and selection terms together are never below this share of the
#: sky term (a floor the adjustment reaches only on odd cutouts).
GROWTH_FLOOR = 0.5

_PIXEL_NOTE = ("selection='pixel' threshold mask: pixels chosen on their own "
               'noisy values, so the flux is biased high (about +5 sigma at '
               'SNR ~ 10, +2 sigma at SNR ~ 60 for n_sigma=2); use the '
               "default selection='smoothed' for an unbiased sum")


class SigmaThreshold:
    """
    Select the aperture pixels that hold signal, ``n_sigma`` above the noise.

    Parameters
    ----------
    n_sigma : float, optional
        The threshold in units of the noise of the selection statistic
        (default 2; positive): of the leave-one-out smoothed image for
        ``selection='smoothed'``, of one pixel (the sky standard
        deviation) for ``selection='pixel'``.
    segment : {'all', 'central'}, optional
        ``'all'`` (default) keeps every selected pixel (the notebook);
        ``'central'`` keeps only the connected segment holding the star: the
        segment under the aperture centre, or, if the centre pixel is not
        selected, the segment with the largest summed signal (of the
        smoothed image for ``'smoothed'``).
    connectivity : {4, 8}, optional
        The pixel connectivity of segments (default 8, photutils').
    selection : {'smoothed', 'pixel'}, optional
        ``'smoothed'`` (default): unbiased, the selection of a pixel never
        uses that pixel's own value. ``'pixel'``: the notebook's
        ``cutout > n_sigma * sigma``, biased high (kept to reproduce the
        notebook).
    fwhm : float, optional
        The FWHM in pixels of the Gaussian filter of ``'smoothed'`` (about
        the PSF's; default 3, positive); the filter extends to
        ``ceil(fwhm)`` pixels each side. Unused by ``'pixel'``.

    Raises
    ------
    ValueError
        If ``segment``, ``connectivity`` or ``selection`` is not one of its
        choices, or ``n_sigma`` or ``fwhm`` is not positive and finite.

    Notes
    -----
    Both selections look only at the aperture's own pixels (outside pixels,
    masked and NaN pixels count as absent, not as zero signal), so a mask
    depends on the aperture and the sky alone.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SigmaThreshold
    >>> cut = np.array([[0., 5., 0.], [0., 30., 12.], [9., 0., 0.]])
    >>> SigmaThreshold(2.0, selection='pixel').select(cut, 5.0).astype(int)
    array([[0, 0, 0],
           [0, 1, 1],
           [0, 0, 0]])
    >>> star = np.zeros((7, 7))
    >>> star[2:5, 2:5] = 20.0
    >>> SigmaThreshold(3.0).select(star, 5.0).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 1, 1, 0, 0],
           [0, 1, 1, 1, 1, 1, 0],
           [0, 1, 1, 1, 1, 1, 0],
           [0, 1, 1, 1, 1, 1, 0],
           [0, 0, 1, 1, 1, 0, 0],
           [0, 0, 0, 0, 0, 0, 0]])
    """

    def __init__(self, n_sigma=2.0, *, segment='all', connectivity=8,
                 selection='smoothed', fwhm=3.0):
        self.n_sigma = positive_scalar(n_sigma, 'n_sigma', allow_none=False)
        check_choice(segment, 'segment', _SEGMENTS)
        check_choice(connectivity, 'connectivity', (4, 8))
        check_choice(selection, 'selection', SELECTIONS)
        self.fwhm = positive_scalar(fwhm, 'fwhm', allow_none=False)
        self.segment = segment
        self.connectivity = connectivity
        self.selection = selection

    def __repr__(self):
        extra = (f', fwhm={self.fwhm:g}' if self.selection == 'smoothed'
                 else '')
        return (f'SigmaThreshold(n_sigma={self.n_sigma}, '
                f'segment={self.segment!r}, selection={self.selection!r}'
                f'{extra})')

    @property
    def biased(self):
        """True for the notebook's ``selection='pixel'``."""
        return self.selection == 'pixel'

    @property
    def note(self):
        """What the budget should say about this mask (or None)."""
        return _PIXEL_NOTE if self.biased else None

    @cached_property
    def kernel_1d(self):
        """The 1-D Gaussian of the smoothed selection (peak 1)."""
        radius = max(int(math.ceil(self.fwhm)), 1)
        s = self.fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        x = np.arange(-radius, radius + 1, dtype=float)
        return np.exp(-0.5 * (x / s) ** 2)

    def significance(self, cutouts, valid):
        """
        Compute the leave-one-out matched-filter signal of each pixel.

        The same elementwise operations for one cutout or a stack of them,
        so every engine selects the same pixels bit for bit. The noise of a
        stack with every pixel valid depends on its shape alone: it is
        computed once per shape (a read-only broadcast view).

        Parameters
        ----------
        cutouts : array_like
            Sky-subtracted cutouts, ``(..., ny, nx)``: one 2-D cutout or a
            stack of them (data unit).
        valid : array_like of bool
            The pixels allowed, shaped like ``cutouts`` (inside the
            aperture, finite and unmasked; a NaN marked valid voids its
            whole cutout's signal).

        Returns
        -------
        signal : `~numpy.ndarray`
            ``sum_j k_ij x_j`` over the valid pixels ``j != i`` (``k`` the
            Gaussian filter of peak 1), shaped like ``cutouts``.
        noise : `~numpy.ndarray`
            ``sqrt(sum_j k_ij**2)`` over the same pixels: the noise of
            ``signal`` in units of the per-pixel sigma.
        """
        g = self.kernel_1d
        valid = np.asarray(valid, dtype=bool)
        x = np.where(valid, cutouts, 0.0)
        signal = _convolve(x, g)
        k0 = g[g.size // 2] ** 2
        if k0 != 1.0:  # the kernel's peak is 1: nothing to scale
            x *= k0
        signal -= x
        if valid.all():
            noise = np.broadcast_to(self._full_noise(valid.shape[-2:]),
                                    valid.shape)
        else:
            noise = _leave_one_out_noise(valid, g)
        return signal, noise

    def _full_noise(self, shape):
        """`significance`'s noise of an all-valid ``shape`` cutout."""
        cache = self.__dict__.setdefault('_noise_cache', {})
        if shape not in cache:
            noise = _leave_one_out_noise(np.ones(shape, dtype=bool),
                                         self.kernel_1d)
            noise.flags.writeable = False
            cache[shape] = noise
        return cache[shape]

    def select_stack(self, cutouts, valid, sky_std):
        """
        Select the pixels of a stack of cutouts (as ``segment='all'``).

        Parameters
        ----------
        cutouts : array_like
            Sky-subtracted cutouts, ``(..., ny, nx)``: one 2-D cutout or a
            stack of them (data unit).
        valid : array_like of bool
            The pixels allowed, shaped like ``cutouts`` (inside the
            aperture, finite and unmasked; a NaN marked valid voids its
            whole cutout's signal).
        sky_std : float or array_like
            The per-pixel sky standard deviation (data unit, non-negative):
            one for all cutouts, or one per cutout (shape
            ``cutouts.shape[:-2]``).

        Returns
        -------
        selected : `~numpy.ndarray` of bool
            True for the valid pixels above the threshold, shaped like
            ``cutouts``.
        """
        valid = np.asarray(valid, dtype=bool)
        std = _per_cutout(sky_std)
        if self.selection == 'pixel':
            return valid & (np.where(valid, cutouts, 0.0)
                            > self.n_sigma * std)
        signal, noise = self.significance(cutouts, valid)
        return self._select(signal, noise, valid, std)

    def _select(self, signal, noise, valid, std):
        above = signal > self.n_sigma * std * noise
        if not valid.all():
            above &= valid
        return above

    def select_with_variance(self, cutouts, valid, sky_std, *,
                             weights=None, centre=None):
        """
        Select the pixels of a stack of cutouts and give their extra variance.

        `select_stack` and `selection_variance` from one `significance`
        (the box engine's route; the same numbers as the two calls).

        Parameters
        ----------
        cutouts : array_like
            Sky-subtracted cutouts, ``(..., ny, nx)``: one 2-D cutout or a
            stack of them (data unit).
        valid : array_like of bool
            The pixels allowed, shaped like ``cutouts`` (inside the
            aperture, finite and unmasked; a NaN marked valid voids its
            whole cutout's signal).
        sky_std : float or array_like
            The per-pixel sky standard deviation (data unit, non-negative):
            one for all cutouts, or one per cutout (shape
            ``cutouts.shape[:-2]``).
        weights : array_like, optional
            The pixel weights of the masked sum, shaped like ``cutouts``;
            None (default): 1 for the valid pixels.
        centre : array_like, optional
            The ``(row, col)`` of each aperture centre in its cutout
            (shape ``cutouts.shape[:-2] + (2,)``), for the mask-growth
            adjustment; None (default): the middle of each cutout.

        Returns
        -------
        selected : `~numpy.ndarray` of bool
            As `select_stack`.
        variance : `~numpy.ndarray`
            As `selection_variance` with ``selected`` (one per cutout; 0
            for ``'pixel'``).
        """
        valid = np.asarray(valid, dtype=bool)
        if self.biased:
            return (self.select_stack(cutouts, valid, sky_std),
                    np.zeros(np.shape(cutouts)[:-2]))
        std = _per_cutout(sky_std)
        signal, noise = self.significance(cutouts, valid)
        selected = self._select(signal, noise, valid, std)
        variance = self._variance(signal, noise, valid, sky_std,
                                  weights=weights, near=None)
        if self.segment == 'all':
            variance = self._with_growth(
                variance, cutouts, signal, noise, valid, sky_std, selected,
                weights, centre)
        return selected, variance

    def selection_variance(self, cutouts, valid, sky_std, *, weights=None,
                           near=None, selected=None, centre=None):
        """
        Compute the variance the smoothed selection adds to the masked sum.

        For a stack of sky-subtracted cutouts ``(..., ny, nx)``; 0 for
        ``'pixel'``.

        The selection of pixel *i* does not use its own noise ``n_i``, so
        the masked sum is unbiased, but it uses its neighbours' noise: with
        ``s_i`` the selection, Stein's identity gives the extra variance
        ``sigma**4 * sum_{i != j} w_i w_j k_ij**2 E[delta(S_i - t_i)
        delta(S_j - t_j)]`` (``S_i`` the leave-one-out signal, ``t_i`` its
        threshold). The threshold-crossing densities are estimated from the
        data with a Gaussian kernel of width `KDE_WIDTH` times the noise of
        ``S_i``, and the sum is multiplied by ``sqrt(1 + KDE_WIDTH**2)``,
        which undoes that kernel's dilution of a crossing.

        With ``selected`` (the mask) and ``segment='all'``, the term also
        takes out the share of the sky term that follows the mask's growth
        with the star's own noise (the mask-growth adjustment; it may make
        the term negative). The mask is unbiased, but it grows when its
        pixels rise together, so an error bar from the realised mask is
        larger where the masked noise is positive: faint stars' pulls come
        out low (Stein's identity gives their mean as ``-sigma**2 E[sum_i
        d(sigma_F) / d x_i / sigma_F**2]`` over the masked pixels ``i``).
        The adjustment is a control variate with that growth: ``-c
        sigma**2 D k``, where ``D = sum_j rho_j w_j**2 sum_{i in mask}
        w_i k_ij`` is the mask's growth (``rho_j`` the threshold-crossing
        density of pixel ``j``, as above, undiluted), and ``k`` the
        masked sum's excess over a profile fit (a Gaussian at the aperture
        centre, of the width of highest matched-filter signal-to-noise
        ratio among `GROWTH_WIDTHS`, and a constant), in units of its
        noise (clipped at `GROWTH_CLIP`) over the root of the pixel count
        that fit leaves free: ``r . x / (r . r)`` for ``r`` the weights of
        the masked sum less their least-squares projection on the profile
        and the constant. ``k`` rises with the masked pixels as the growth
        does, and has no mean where the profile fits, so the adjusted
        error bar no longer follows the mask's noise; ``c`` is
        `GROWTH_SHARE`. It is applied in full where the pull bias the
        growth predicts, ``sigma**4 D / (2 e**3)`` (``e**2`` the sky and
        selection terms), reaches `GROWTH_BIAS`, in proportion below (a
        bright star keeps its error bar). The sky and selection terms
        together are kept at least `GROWTH_FLOOR` of the sky term.

        Parameters
        ----------
        cutouts : array_like
            Sky-subtracted cutouts, ``(..., ny, nx)``: one 2-D cutout or a
            stack of them (data unit).
        valid : array_like of bool
            The pixels allowed, shaped like ``cutouts`` (inside the
            aperture, finite and unmasked; a NaN marked valid voids its
            whole cutout's signal).
        sky_std : float or array_like
            The per-pixel sky standard deviation (data unit, non-negative):
            one for all cutouts, or one per cutout (shape
            ``cutouts.shape[:-2]``).
        weights : array_like, optional
            The pixel weights of the masked sum, shaped like ``cutouts``;
            None (default): 1 for the valid pixels.
        near : array_like of bool, optional
            The pixels whose threshold crossings count, shaped like
            ``cutouts`` (the central segment and its neighbours for
            ``segment='central'``); None (default): every valid pixel.
        selected : array_like of bool, optional
            The mask, shaped like ``cutouts``: with ``segment='all'``, the
            mask-growth adjustment is included; None (default): not.
        centre : array_like, optional
            The ``(row, col)`` of each aperture centre in its cutout
            (shape ``cutouts.shape[:-2] + (2,)``), for the adjustment;
            None (default): the middle of each cutout.

        Returns
        -------
        variance : `~numpy.ndarray`
            The extra variance of each cutout's masked sum (data unit
            squared), shape ``cutouts.shape[:-2]``.
        """
        valid = np.asarray(valid, dtype=bool)
        if self.biased:
            return np.zeros(np.shape(cutouts)[:-2])
        signal, noise = self.significance(cutouts, valid)
        variance = self._variance(signal, noise, valid, sky_std,
                                  weights=weights, near=near)
        if selected is not None and self.segment == 'all':
            variance = self._with_growth(
                variance, cutouts, signal, noise, valid, sky_std,
                np.asarray(selected, dtype=bool), weights, centre)
        return variance

    def _with_growth(self, variance, cutouts, signal, noise, valid, sky_std,
                     selected, weights, centre):
        """``variance`` plus the mask-growth adjustment of
        `selection_variance` (elementwise per cutout, so one cutout and a
        stack give the same bits)."""
        std = np.broadcast_to(np.asarray(sky_std, dtype=float),
                              variance.shape)
        h = KDE_WIDTH
        b = self._crossing_density(signal, noise, std)
        b[~valid | ~np.isfinite(b)] = 0.0
        w = valid.astype(float) if weights is None else np.where(
            valid, weights, 0.0)
        u = np.where(selected, w, 0.0)
        g = self.kernel_1d
        k0 = g[g.size // 2] ** 2
        grow = _convolve(u, g)
        grow -= u if k0 == 1.0 else u * k0
        flat = u.shape[:-2] + (-1,)
        b *= w
        b *= w
        growth = np.vecdot(b.reshape(flat), grow.reshape(flat))
        growth *= math.sqrt(1.0 + h * h)
        x = np.where(valid & np.isfinite(cutouts), cutouts, 0.0)
        excess, free = _profile_excess(x, valid.astype(float), u, centre,
                                       self.fwhm)
        with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
            r = excess / (std * np.sqrt(free))
            k = np.clip(r, -GROWTH_CLIP, GROWTH_CLIP) / np.sqrt(free)
            adjust = -GROWTH_SHARE * std * std * growth * k
        sky = std * std * np.vecdot(u.reshape(flat), u.reshape(flat))
        with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
            # the pull bias the growth predicts, sigma**4 D / (2 e**3), with
            # the sky and selection terms for e**2: in full from
            # GROWTH_BIAS up, in proportion below
            bias = (std ** 3 * growth
                    / (2.0 * (sky + np.maximum(variance, 0.0)) ** 1.5))
            adjust *= np.minimum(bias / GROWTH_BIAS, 1.0)
        ok = np.isfinite(adjust) & (free > 0) & (std > 0)
        adjust = np.where(ok, adjust, 0.0)
        return np.maximum(variance + adjust, -GROWTH_FLOOR * sky)

    def _variance(self, signal, noise, valid, sky_std, *, weights, near):
        """`selection_variance` from the `significance` of the cutouts
        (elementwise in place, the noise's factors cached per shape)."""
        std = np.asarray(sky_std, dtype=float)
        h = KDE_WIDTH
        b = self._crossing_density(signal, noise, std)
        # b is 0 where the noise is 0 (density 0); non-finite b (NaN or
        # inf data marked valid) is dropped below
        if near is not None or not valid.all():
            keep = valid if near is None else (valid & near)
            b[~keep] = 0.0
        if weights is not None:
            b *= weights
        total = self._pair_sum(b)
        bad = ~np.isfinite(total)
        if bad.any():  # redo those cutouts without their non-finite b
            redo = b[bad]
            redo[~np.isfinite(redo)] = 0.0
            total[bad] = self._pair_sum(redo)
        return math.sqrt(1.0 + h * h) * std * std * total

    def _crossing_density(self, signal, noise, std):
        """Per pixel, the kernel estimate of the density of the smoothed
        statistic at the threshold: ``exp(-z**2 / 2) / (sqrt(2 pi) h
        noise)`` with ``z = (S / (sigma * noise) - n_sigma) / h`` (``S``
        the leave-one-out ``signal``, ``h`` `KDE_WIDTH`); 0 where the noise
        is 0, non-finite where the data are."""
        inv_hn, density = self._kde_factors(noise)
        with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
            b = np.multiply(signal, inv_hn)
            b /= _per_cutout(std)
            b -= self.n_sigma / KDE_WIDTH
            np.square(b, out=b)
            b *= -0.5
            np.exp(b, out=b)
            b *= density
        return b

    def _pair_sum(self, b):
        """``sum_{i != j} b_i k_ij**2 b_j`` of each cutout."""
        g2 = self.kernel_1d ** 2
        conv = _convolve(b, g2)
        k0 = g2[g2.size // 2] ** 2
        conv -= b if k0 == 1.0 else b * k0
        flat = b.shape[:-2] + (-1,)
        return np.vecdot(conv.reshape(flat), b.reshape(flat))

    def _kde_factors(self, noise):
        """``1 / (h noise)`` and ``1 / (sqrt(2 pi) h noise)``, 0 where the
        noise is 0; cached with the all-valid noise of a shape."""
        shape = noise.shape[-2:]
        full = self.__dict__.get('_noise_cache', {}).get(shape)
        cached = full is not None and np.shares_memory(noise, full)
        cache = self.__dict__.setdefault('_kde_cache', {})
        if cached and shape in cache:
            return cache[shape]
        h = KDE_WIDTH
        base = full if cached else noise
        with np.errstate(divide='ignore'):
            inv_hn = np.where(base > 0, 1.0 / (h * base), 0.0)
            density = np.where(base > 0, 1.0 / (math.sqrt(2.0 * math.pi)
                                                * h * base), 0.0)
        if cached:
            cache[shape] = (inv_hn, density)
        return inv_hn, density

    def segmentation(self, cutout, sky_std, *, valid=None):
        """
        Segment the selected pixels of a sky-subtracted cutout.

        Parameters
        ----------
        cutout : 2-D array_like
            Data minus sky over the aperture's pixels (data unit).
        sky_std : float
            The per-pixel sky standard deviation (data unit,
            non-negative).
        valid : 2-D array_like of bool, optional
            The pixels allowed (inside the aperture, unmasked); None
            (default): every finite pixel.

        Returns
        -------
        segm : `~photutils.segmentation.SegmentationImage` or None
            The connected segments of the selected pixels (with this
            threshold's ``connectivity``), or None when nothing is
            selected.

        Raises
        ------
        ValueError
            If ``sky_std`` is negative or not finite.
        """
        cutout = np.asarray(cutout, dtype=float)
        sky_std = positive_scalar(sky_std, 'sky_std', allow_none=False,
                                  allow_zero=True)
        bad = ~np.isfinite(cutout)
        if valid is not None:
            bad |= ~np.asarray(valid, dtype=bool)
        if self.selection == 'pixel':
            level = self.n_sigma * sky_std
            image = np.where(bad, level, cutout)  # never above the threshold
        else:
            image = self.select_stack(np.where(bad, 0.0, cutout), ~bad,
                                      sky_std).astype(float)
            level = 0.5
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', NoDetectionsWarning)
            from photutils.segmentation import detect_sources  # slow

            return detect_sources(image, level, n_pixels=1,
                                  connectivity=self.connectivity,
                                  mask=bad if bad.any() else None)

    def select(self, cutout, sky_std, *, valid=None, center=None):
        """
        Select the pixels of a sky-subtracted cutout.

        Parameters
        ----------
        cutout : 2-D array_like
            Data minus sky over the aperture's pixels (data unit).
        sky_std : float
            The per-pixel sky standard deviation (data unit,
            non-negative).
        valid : 2-D array_like of bool, optional
            The pixels allowed (inside the aperture and unmasked); None
            (default): every finite pixel.
        center : tuple of int, optional
            The ``(row, col)`` cutout pixel of the aperture centre, for
            ``segment='central'``; None (default): the middle of the
            cutout.

        Returns
        -------
        mask : 2-D `~numpy.ndarray` of bool
            True for the selected pixels (only the star's segment with
            ``segment='central'``).

        Raises
        ------
        ValueError
            If ``sky_std`` is negative or not finite.
        """
        cutout = np.asarray(cutout, dtype=float)
        ok = np.isfinite(cutout)
        if valid is not None:
            ok &= np.asarray(valid, dtype=bool)
        if self.segment == 'all':
            positive_scalar(sky_std, 'sky_std', allow_none=False,
                            allow_zero=True)
            return self.select_stack(np.where(ok, cutout, 0.0), ok, sky_std)
        segm = self.segmentation(cutout, sky_std, valid=ok)
        if segm is None:
            return np.zeros(cutout.shape, dtype=bool)
        labels = segm.data
        if center is None:
            center = (labels.shape[0] // 2, labels.shape[1] // 2)
        label = labels[center]
        if label == 0:
            signal = (cutout if self.biased else
                      self.significance(np.where(ok, cutout, 0.0), ok)[0])
            sums = np.bincount(labels.ravel(), weights=np.where(
                labels > 0, signal, 0.0).ravel())
            sums[0] = -np.inf
            label = int(np.argmax(sums))
        return labels == label


def _profile_excess(x, v, u, centre, fwhm):
    """
    The masked sum's excess over a fit of a Gaussian profile and a
    constant, and the pixel count the fit leaves free, of each cutout
    (`SigmaThreshold.selection_variance`'s mask-growth adjustment).

    ``x`` the cutouts (0 where not valid), ``v`` the valid pixels (1 or
    0), ``u`` the weights of the masked sum (0 outside the mask);
    ``centre`` the ``(row, col)`` of each profile's centre (None: the
    middle). Every sum is over the valid pixels, with the constant
    projected out (``a' = a - sum(a) sum(b) / n``). The profile of each
    cutout is the Gaussian of `GROWTH_WIDTHS` (times the filter's
    standard deviation, ``fwhm / 2.3548``) whose matched filter gives the
    highest signal-to-noise ratio ``A / sqrt(B)`` (``A = p' . x``, ``B =
    p' . p'``). Returns ``S - A E / B`` and ``U - E**2 / B`` (``S = u' .
    x``, ``U = u' . u'``, ``E = p' . u'``): separable sums (banded
    products and `numpy.vecdot`), the same bits for one cutout and a
    stack.
    """
    ny, nx = x.shape[-2:]
    lead = x.shape[:-2]
    if centre is None:
        cy = np.full(lead, (ny - 1) / 2.0)
        cx = np.full(lead, (nx - 1) / 2.0)
    else:
        centre = np.asarray(centre, dtype=float)
        cy, cx = centre[..., 0], centre[..., 1]
    dy2 = (np.arange(ny) - cy[..., None]) ** 2
    dx2 = (np.arange(nx) - cx[..., None]) ** 2
    base = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    flat = lead + (-1,)
    # the constant: the sums of the valid pixels, of x and of u
    n1 = np.vecdot(v.reshape(flat), v.reshape(flat))
    with np.errstate(divide='ignore', invalid='ignore'):
        inv1 = np.where(n1 > 0, 1.0 / n1, 0.0)
    x1 = np.vecdot(v.reshape(flat), x.reshape(flat))
    u1 = np.vecdot(v.reshape(flat), u.reshape(flat))
    best = np.full(lead, -np.inf)
    a_best, b_best, e_best = (np.zeros(lead), np.ones(lead), np.zeros(lead))
    for width in GROWTH_WIDTHS * base:
        gy = np.exp(-0.5 * dy2 / (width * width))
        gx = np.exp(-0.5 * dx2 / (width * width))
        p1 = np.vecdot(gy, np.matmul(v, gx[..., None])[..., 0])
        # the profile's sums less their constant part (fitted with it)
        a = np.vecdot(gy, np.matmul(x, gx[..., None])[..., 0])
        a -= p1 * x1 * inv1
        b = np.vecdot(gy * gy, np.matmul(v, (gx * gx)[..., None])[..., 0])
        b -= p1 * p1 * inv1
        e = np.vecdot(gy, np.matmul(u, gx[..., None])[..., 0])
        e -= p1 * u1 * inv1
        with np.errstate(divide='ignore', invalid='ignore'):
            snr = a / np.sqrt(b)
        take = snr > best
        best = np.where(take, snr, best)
        a_best = np.where(take, a, a_best)
        b_best = np.where(take, b, b_best)
        e_best = np.where(take, e, e_best)
    total = np.vecdot(u.reshape(flat), x.reshape(flat)) - u1 * x1 * inv1
    squares = np.vecdot(u.reshape(flat), u.reshape(flat)) - u1 * u1 * inv1
    with np.errstate(divide='ignore', invalid='ignore'):
        excess = total - a_best * e_best / b_best
        free = squares - e_best * e_best / b_best
    return excess, np.where(free > 1e-9 * squares, free, 0.0)


def _per_cutout(sky_std):
    """``sky_std`` shaped to broadcast over ``(..., ny, nx)`` cutouts."""
    std = np.asarray(sky_std, dtype=float)
    return std.reshape(std.shape + (1, 1)) if std.ndim else std


def _leave_one_out_noise(valid, g):
    """``sqrt(sum_j k_ij**2)`` over the valid pixels ``j != i``."""
    v = np.asarray(valid, dtype=float)
    k0 = g[g.size // 2] ** 2
    noise2 = _convolve(v, g * g) - (k0 * k0) * v
    return np.sqrt(np.maximum(noise2, 0.0))


def _convolve(a, g):
    """
    Zero-padded separable convolution of the last two axes of ``a`` with
    the symmetric ``g`` (odd length), the same output shape.

    Small cutouts (both sides up to `MATMUL_SIDE`) are multiplied by the
    banded (Toeplitz) matrices of ``g`` on each side, one BLAS product per
    cutout; larger ones go through scipy's line-by-line filter. The route
    depends on the shape alone, so one cutout and a stack of them give the
    same bits.
    """
    a = np.asarray(a, dtype=np.float64)
    ny, nx = a.shape[-2:]
    if max(ny, nx) <= MATMUL_SIDE:
        key = g.tobytes()
        return np.matmul(np.matmul(_band(ny, key), a), _band(nx, key))
    rows = correlate1d(a, g, axis=-1, mode='constant', cval=0.0)
    return correlate1d(rows, g, axis=-2, mode='constant', cval=0.0)


@functools.lru_cache(maxsize=64)
def _band(n, key):
    """The ``n x n`` symmetric banded matrix of the kernel ``key`` (bytes
    of a float64 array): ``M[i, j] = g[j - i + r]`` within the band."""
    g = np.frombuffer(key, dtype=np.float64)
    r = g.size // 2
    d = np.arange(n)[None, :] - np.arange(n)[:, None]
    band = np.where(np.abs(d) <= r, g[np.clip(d + r, 0, 2 * r)], 0.0)
    band.flags.writeable = False
    return band
