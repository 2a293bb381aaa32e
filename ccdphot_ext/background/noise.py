# Licensed under a 3-clause BSD style license - see LICENSE
"""
Empirical aperture noise from blank-sky apertures (correlated noise).

``n_pix * sigma**2`` is the variance of a sum of ``n_pix`` pixels only if
the pixels' noise is independent. Resampled, stacked, drizzled, smoothed or
scanned frames (and, mildly, many raw CCD frames) have pixel-to-pixel
correlated noise, and the variance of an aperture sum then grows faster
than ``n_pix``. `ApertureNoise.from_blank_apertures` measures it the way
deep-field photometry does ("empty" or "random" apertures): many square
apertures of several sizes are placed at random on source-free sky, the
robust scatter of their sky-subtracted sums is measured at each size, and

    ``sigma(N) = sigma_1 * alpha * N**beta``

is fitted (``sigma_1`` the per-pixel scatter; white noise has
``alpha = 1, beta = 0.5``).

**The sky route.** The blank apertures are measured against the same
local sky the photometry uses, read from the `SkyEstimate` given: one
level for the frame (route ``'global'``), a 2-D map such as
``Background2D``'s (``'map'``), or one level per aperture from an annulus
(``'annulus'``: every blank aperture gets its own annulus of the same
shape and estimator, and its sum is measured against that annulus' level).
On the whole-frame route a significant large-scale trend of the blank sky
(a gradient, a vignetted frame's curvature: the quadratic surface fitted
to its blank pixels, `trend_surface`) is taken out of the blank sums too
(`ApertureNoise.trend_removed`; the share of it the blank sums of each
size carry, `ApertureNoise.trend_carried`): it biases a flux by the
aperture's position, it is not noise, and the photometry flags the rows
the whole-frame sky's background variation map shows biased (flag 32).
Structure on scales larger than the local sky removes and that no
quadratic follows (the light of unresolved stars, a glow) stays noise for
the route that keeps it. The route is recorded (`ApertureNoise.route`),
and `~ccdphot_ext.measure` and `~ccdphot_ext.photometer` warn when a
model measured one way is used with a sky of another.

For the annulus route the scatter of the sums holds the error of the
annulus level too; that part, ``N**2`` times the level's variance, is
measured separately (two halves of every annulus, in opposite quadrants,
against each other) and taken out, so that the budget's ``sky`` term is the
aperture's own noise and its ``sky_mean`` term the level's, each star with
its own annulus. `ApertureNoise.level_scale` is the factor by which
correlated noise inflates the error of a sky level, for the ``sky_mean``
term with ``noise=``.

**Variance arrays.** On a frame whose uncertainty is variance arrays,
each blank sum is also measured against its own arrays' variance sum
(`ApertureNoise.array_ratio`), and with ``noise=`` the budget keeps the
arrays, multiplied by the correlation ratio
`ApertureNoise.variance_ratio`: each aperture keeps its depth, and the
model adds the covariance per-pixel variances leave out.

**Correlated or white.** Each size's scatter has an error that counts only
as many apertures as fit side by side in the blank sky the apertures
covered (random, overlapping apertures are not independent). The noise is
`~ApertureNoise.correlated` when the points of all sizes together depart
from the white-noise line ``sigma_1 * sqrt(N)`` (a chi-square with one
degree of freedom per size, beyond its 0.1% tail) by more than 5% at a
size where that departure is itself significant. Then calling the model
gives a smooth (cubic in log-log) curve through the points, weighted by
their errors, which follows the flattening of the ratio to white noise at
large ``N`` that a single power law cannot (the power law stays as the
summary); beyond the largest aperture that could be placed it grows as
the blank sky's pixel-pair covariance summed over the aperture does
(`pair_covariance`, `ApertureNoise.pair_sigma`; without it, with the local
slope, 0.5 to 1), and `noise_variance` warns how far and which estimator
gives the value there. That pair sum, measured on every blank pixel,
also bounds the model from below (at every size on the whole-frame
route, beyond the largest aperture on the others) and, on the
whole-frame route, takes the place of the points that rest on few
apertures where they read low.
Noise not significantly correlated gets exactly the white
``sigma_1 * sqrt(N)``, so that an empirical model never inflates the
errors of a white-noise frame.

``background.noisecheck.pixel_correlation`` is the cheap check
`~ccdphot_ext.measure` and `~ccdphot_ext.photometer` run without
``noise=``: a significant correlation of neighbouring pixels is warned
about, whether the ``sky`` term comes from the pixel scatter or from the
frame's uncertainty (whose per-pixel variances hold no covariance).
"""

import math
import warnings
from functools import cached_property

import astropy.units as u
import numpy as np
from astropy.utils.exceptions import AstropyUserWarning

from ..utils.inputs import as_frame, positive_scalar
from ..utils.numbers import (
    check_choice,
    finite_number,
    positive_integer,
    random_generator,
    scale_array,
)
from ..utils.stats import (
    frame_surface,
    surface_design,
    unit_coordinates,
    weighted_lstsq,
)
from .annulus import pixel_centroid, row_statistics
from .estimators import estimator_efficiency
from .noisecheck import is_correlated, pixel_correlation, warn_if_correlated

__all__ = ['ApertureNoise']

#: Default square aperture sides [pixels] of `ApertureNoise.from_blank_apertures`.
DEFAULT_SIZES = (1, 2, 3, 4, 5, 7, 9, 11, 15, 21)
#: Default number of apertures per size.
DEFAULT_N_APERTURES = 1000
#: Fewest apertures of one size whose scatter is used.
MIN_APERTURES = 20
#: The scatter of the sums is their standard deviation clipped at
#: ``CLIP_SIGMA``; its relative error from n values is
#: ``CLIP_SPREAD / sqrt(n)`` (Gaussian values).
CLIP_SIGMA = 3.0
CLIP_SPREAD = 0.765
#: The most iterations of that clip.
CLIP_MAXITERS = 10
#: The local-sky routes a model can be measured with.
ROUTES = ('global', 'annulus', 'map')
#: Chance (for white noise) of the chi-square of all sizes against the
#: white line beyond which the noise counts as correlated.
CORRELATION_P = 1e-3
#: Least relative departure from the white line (at a size where it is
#: significant) for the noise to count as correlated.
TOLERANCE = 0.05
#: A rise of the sizes beyond one pixel above the white line by this many
#: of their errors on average, with their chi-square beyond its `RISE_P`
#: tail and one size above it by `TOLERANCE` and 2 errors, also counts as
#: correlated noise (`ApertureNoise.correlated`).
RISE_MEAN = 1.0
RISE_P = 0.1
#: A size whose ratio to the white line falls below the highest ratio of
#: the smaller sizes by more than this many of their combined errors is
#: taken at that ratio in the model's curve (`ApertureNoise.raised_sizes`).
#: Noise whose pixels are not anti-correlated cannot scatter less, over its
#: pixel count, in a larger square than in a smaller one; the blank corners
#: large apertures fit into on a crowded frame are few, and are where the
#: source mask found no positive fluctuation.
DIP_NSIGMA = 2.0
#: A blank annulus keeps at least this fraction of its pixels and
#: `MIN_ANNULUS_PIXELS` of them (as a photometry annulus that is not flagged).
MIN_ANNULUS_FRACTION = 0.5
MIN_ANNULUS_PIXELS = 5
#: Blank annuli whose usable pixels' centroid lies at least this many
#: pixels off their box's centre (cut by the frame's edge, a NaN border or
#: a mask) measure the offset variance of the annulus route
#: (`annulus_offset_variance`), in this many passes (the noise of each
#: size measured again with the offsets' shares taken out).
OFFSET_MIN = 0.5
OFFSET_ITERATIONS = 3
#: The variance array the correlation ratio leaves as it is (the flat
#: field's error); the others are noise the ratio scales.
FLAT_ARRAY = 'VAR_FLAT'
#: `warn_thin_aperture` warns when the model over-predicts an aperture's
#: noise by more than this (the ratio of sigmas).
THIN_FACTOR = 0.9
#: The pixel noise near the sources against the blank sky's
#: (`noise_near_sources`): blocks of ``NEAR_BLOCK`` pixels a side, those
#: less than ``NEAR_BLANK`` masked counting as blank sky, those more than
#: ``NEAR_SOURCES`` masked as among the sources (at least ``NEAR_MIN``
#: blocks of each; at most ``NEAR_MAX_BLOCKS`` blocks, spread over a large
#: frame). Above ``NEAR_LIMIT`` the model is warned about: the Source
#: Extractor ESO frame, ccdproc's SAAO frame, drizzled mosaics, white
#: frames with stars and crowded synthetic frames (1000 stars on 300 x 300)
#: read 0.96-1.20, astropy's M13, whose unresolved cluster light adds
#: noise among its stars, 1.46.
NEAR_BLOCK = 16
NEAR_BLANK = 0.2
NEAR_SOURCES = 0.5
NEAR_MIN = 4
NEAR_MAX_BLOCKS = 4096
NEAR_LIMIT = 1.3

#: On the map route, how far the blank pixels' scatter in units of the
#: map's ``std`` may be from 1 before the model warns that the map's level
#: error, which its ``std`` gave, is doubtful (`_check_map_std`).
MAP_STD_TOLERANCE = 0.2
#: The local pixel noise (`ApertureNoise.local_noise`): the same blocks
#: over the whole frame, each against the pixel noise where the blank
#: apertures lay; a block counts as noisier when it exceeds that by more
#: than ``LOCAL_TOLERANCE`` and ``LOCAL_SIGMA`` of its own errors (else it
#: reads 1, and apertures near it keep the model's sky term bit for bit).
LOCAL_TOLERANCE = 0.1
LOCAL_SIGMA = 3.0
#: The blank apertures' source mask (`_source_mask`) takes the photutils
#: segments above ``BRIGHT_NSIGMA`` pixel standard deviations in at least
#: ``BRIGHT_NPIXELS`` pixels, grown by ``BRIGHT_GROW`` pixels (the wings
#: of bright stars; lower, the peaks of correlated noise itself would be
#: masked and its scatter underestimated).
BRIGHT_NSIGMA = 4.0
BRIGHT_NPIXELS = 5
BRIGHT_GROW = 5
#: On the whole-frame route a large-scale trend of the blank sky (a
#: gradient, a vignetted frame's curvature) is no noise: the quadratic
#: surface fitted to the means of the blank pixels in blocks of
#: ``TREND_BLOCK`` pixels (`trend_surface`; at least ``TREND_MIN_BLOCKS``
#: of them, blocks beyond ``TREND_CLIP`` times their scatter left out) is
#: taken out of the blank sums when its terms are significant (beyond the
#: `CORRELATION_P` tail). When its variance over the blank pixels is more
#: than ``TREND_MIN`` of the sky's ``std**2``, which holds it, ``sigma1``
#: is the clipped scatter of at most ``TREND_PIXELS`` of those pixels
#: about it instead.
TREND_BLOCK = 16
TREND_MIN_BLOCKS = 24
TREND_CLIP = 3.0
TREND_MIN = 0.005
TREND_PIXELS = 1_000_000
#: The sum of the blank sky's pixel-pair covariances over an aperture's
#: pairs (`pair_covariance`, `ApertureNoise.pair_sigma`), which bounds the
#: model and continues it beyond the largest blank aperture: lags up to
#: ``PAIR_LAG`` pixels, measured in tiles of at most ``PAIR_TILE`` pixels
#: a side (at most ``PAIR_TILES`` of them, spread over a large frame:
#: 0.4-0.6 s on 4096 x 4096 pixels), the blank pixels more than
#: ``PAIR_CLIP`` pixel noises off their mean left out with their
#: neighbours.
PAIR_LAG = 12
PAIR_TILE = 256
PAIR_TILES = 16
PAIR_CLIP = 5.0
#: A measured point whose relative error exceeds ``PAIR_FEW`` (fewer than
#: about 60 independent apertures: the largest sizes on a crowded frame)
#: is combined with the pair sums in the model's curve (`_with_pairs`).
PAIR_FEW = 0.1
#: The pixel-pair covariance holds the lags of each group (along the rows,
#: the columns, off both) up to the first distance ``max(|dy|, |dx|)``
#: whose sum there is within this many of its errors off 0 (`_tapered`).
TAPER_NSIGMA = 1.5
#: On the annulus and map routes, the least share of a size's blank-sum
#: variance the model keeps as the aperture's own noise; where the sky
#: levels' share would take out more, that share (and the photometry's
#: ``sky_mean`` term with it) is lowered (`_lowered_share`).
OWN_FLOOR = 0.25


def sky_route(sky):
    """The local-sky route of a `SkyEstimate`: ``'map'`` for a 2-D map,
    ``'global'`` for one level, ``'annulus'`` for one level per aperture."""
    if sky.is_map:
        return 'map'
    return 'global' if sky.isscalar else 'annulus'


class ApertureNoise:
    """
    Noise of an aperture sum against its pixel count, measured on blank sky.

    Use `from_blank_apertures`; calling the object gives ``sigma(n_pix)``.

    Parameters
    ----------
    sigma1 : float
        The per-pixel noise (data unit, positive): the sky's ``std`` (less
        the large-scale trend's share, see `trend_removed`), and the
        white-noise scale of the fit
        ``sigma(N) = sigma1 * alpha * N**beta``.
    alpha : float
        The fit's factor (positive; 1 for white noise).
    beta : float
        The fit's power of ``N`` (0.5 for white noise).
    n_pix : 1-D array_like
        The pixels per aperture of the measured points, in increasing
        order.
    sigma : 1-D array_like
        The robust scatter of the blank aperture sums at each size (data
        unit).
    sigma_err : 1-D array_like
        The statistical error of ``sigma`` (counting the independent
        apertures only).
    n_apertures : 1-D array_like of int
        The apertures placed at each size.
    n_independent : 1-D array_like, optional
        How many of them count as independent (overlapping apertures are
        not): the area the apertures of a size covered, in apertures.
        None (default): ``n_apertures``.
    route : {'global', 'annulus', 'map'}, optional
        The local sky the blank apertures were measured against (default
        ``'global'``).
    level_factor : float, optional
        Annulus route: the measured ratio of the error of an annulus level
        to its white-noise error (see `level_scale`); None (default): not
        measured.
    array_ratio : 1-D array_like, optional
        Measured on a frame with variance arrays: at each size, the scatter
        of the blank sums over the square root of their arrays' variance
        sum (1 where the arrays hold the noise, white and correctly
        scaled); see `variance_ratio`. None (default): not measured.
    array_ratio_err : 1-D array_like, optional
        The statistical error of ``array_ratio`` (required with it).
    local_noise : 2-D array_like, optional
        The local pixel noise over that of the blank sky the model was
        measured on, in blocks of 16 x 16 pixels of the frame (the first
        block's centre at pixel 7.5; at least 1, and exactly 1 where it is
        not significantly higher): see `local_ratio`. None (default): not
        measured (every aperture keeps the model's sky term).
    shape : tuple of int, optional
        The shape of the frame the model was measured on (required with
        ``local_noise`` or ``local_level``, whose blocks it must fit).
    local_level : 2-D array_like, optional
        The frame's level (data unit) in the same blocks as
        ``local_noise``: the clipped mean of each block's pixels outside
        the detected sources. With a gain and a whole-frame sky
        `local_ratio` takes the photon noise of the light above the sky
        level out of the local noise. None (default): not measured (the
        local noise is taken whole).
    pair_covariance : 2-D array_like, optional
        The covariance of the blank sky's pixels against their separation
        in rows and columns (`pair_covariance`: shaped ``(2 L + 1, 2 L +
        1)``, lag 0 at the centre; data unit squared), the lower bound of
        the model beyond its largest aperture (`pair_sigma`). None
        (default): not measured (the curve continues alone).
    meta : dict, optional
        Provenance (copied); None (default): empty.

    Raises
    ------
    ValueError
        If ``sigma1`` or ``alpha`` is not positive and finite, ``beta`` not
        finite, ``n_apertures`` not whole positive numbers,
        ``level_factor`` is not positive, ``route`` is not one of its
        choices, ``local_noise`` is not a 2-D array of finite values
        of at least 1 whose blocks fit ``shape``, or ``local_level`` is
        not a 2-D array of finite values whose blocks fit ``shape``, or
        ``pair_covariance`` is not a finite square array of an odd side.
    """

    def __init__(self, sigma1, alpha, beta, *, n_pix, sigma, sigma_err,
                 n_apertures, n_independent=None, route='global',
                 level_factor=None, array_ratio=None, array_ratio_err=None,
                 local_noise=None, shape=None, local_level=None,
                 pair_covariance=None, meta=None):
        self.sigma1 = positive_scalar(sigma1, 'sigma1', allow_none=False)
        self.alpha = positive_scalar(alpha, 'alpha', allow_none=False)
        self.beta = finite_number(beta, 'beta')
        self.n_pix = np.asarray(n_pix, dtype=float)
        self.sigma = np.asarray(sigma, dtype=float)
        self.sigma_err = np.asarray(sigma_err, dtype=float)
        self.n_apertures = np.array(
            [positive_integer(n, 'n_apertures')
             for n in np.atleast_1d(n_apertures)], dtype=int).reshape(
                 np.shape(n_apertures))
        self.n_independent = np.asarray(
            self.n_apertures if n_independent is None else n_independent,
            dtype=float)
        self.route = check_choice(route, 'route', ROUTES)
        self.level_factor = positive_scalar(level_factor, 'level_factor')
        if (array_ratio is None) != (array_ratio_err is None):
            raise ValueError('array_ratio and array_ratio_err go together: '
                             'give both or neither')
        self.array_ratio = (None if array_ratio is None
                            else np.asarray(array_ratio, dtype=float))
        self.array_ratio_err = (None if array_ratio_err is None
                                else np.asarray(array_ratio_err, dtype=float))
        self.local_noise, self.shape = _check_local_noise(local_noise, shape)
        self.local_level = _check_local_level(local_level, self.shape)
        self.pair_covariance = _check_pair_covariance(pair_covariance)
        self.meta = dict(meta or {})

    @classmethod
    def from_blank_apertures(cls, data, sky, *, mask=None, sizes=None,
                             n_apertures=None, seed=None):
        """
        Measure ``sigma(N)`` from random square apertures on blank sky.

        Parameters
        ----------
        data : array_like, `~astropy.units.Quantity` or `~astropy.nddata.NDData`
            The 2-D frame (its mask and NaN/inf pixels are avoided).
        sky : `~ccdphot_ext.SkyEstimate`
            The sky the photometry uses, which decides the route: one level
            (subtracted from every blank aperture, and, for a sky with a
            background variation map, the blank sky's large-scale trend
            with it where that is significant: `trend_removed`), a 2-D map
            (subtracted pixel by pixel) or the levels of
            `SkyEstimate.from_annulus` (each blank aperture is measured
            against an annulus of the same shape and estimator around
            it). Its ``std`` is ``sigma1`` (less the trend's share).
            On a frame whose uncertainty is variance arrays
            (`~ccdphot_ext.VarianceArrays`) every blank sum is also measured
            against its arrays' variance sum (`array_ratio`).
        mask : array_like of bool, optional
            True for pixels holding sources or otherwise unusable. None
            (default): photutils segmentation of the sky-subtracted frame
            (pixels 4 sigma above the sky in groups of 5, grown by 5
            pixels) and the fainter stars a matched filter finds (the
            frame filtered with a Gaussian of 1.8 pixels, regions above 2
            of its standard deviations holding a pixel above 4, grown by
            2 pixels).
        sizes : sequence of int, optional
            Square aperture sides in pixels, at least two different ones;
            None (default): 1, 2, 3, 4, 5, 7, 9, 11, 15 and 21, those up to
            a quarter of the frame's shorter side (for the annulus route
            those that stay inside the annulus' hole).
        n_apertures : int, optional
            Apertures per size (default 1000, at least 20; fewer where the
            blank sky has no room). Overlapping apertures are not
            independent: the error of each size's scatter counts only as
            many apertures as fit side by side in the area they covered.
        seed : int or `numpy.random.Generator`, optional
            The seed of the random positions (deterministic when given; a
            generator is used as is); None (default): fresh entropy.

        Returns
        -------
        noise : `ApertureNoise`
            The measured points, the fit and the route.

        Raises
        ------
        TypeError
            If ``sky`` is not a `~ccdphot_ext.SkyEstimate`.
        ValueError
            If ``sizes`` or ``n_apertures`` is out of range, or the blank
            sky has no room for the apertures.

        Warns
        -----
        AstropyUserWarning
            When the pixel noise among the masked sources is more than 1.3
            times the blank sky's (`noise_near_sources`): the model is too
            small there.

        Examples
        --------
        >>> import numpy as np
        >>> from ccdphot_ext import ApertureNoise, SkyEstimate
        >>> img = np.random.default_rng(0).normal(100.0, 5.0, (300, 300))
        >>> sky = SkyEstimate(100.0, 5.0, img.size)
        >>> noise = ApertureNoise.from_blank_apertures(img, sky, seed=1)
        >>> noise.correlated, noise.route, abs(noise.beta - 0.5) < 0.05
        (False, 'global', True)
        >>> print(f'{noise(225) / (5.0 * 15):.2f}')  # white: sqrt(N) sigma
        1.00
        """
        from .sky import check_sky

        check_sky(sky)
        frame = as_frame(data, mask=mask)
        sizes = _check_sizes(sizes, frame.shape)
        n_ap = _check_n_apertures(n_apertures, frame.shape)
        rng = random_generator(seed)
        route = sky_route(sky)
        resid, sigma1, bad, unusable = _blank_sky(data, frame, sky, mask,
                                                  route)
        # (the sources found against the level: a cluster's glow, which a
        # quadratic follows in part, stays no blank sky); only for a sky
        # with a background variation map, which flags the rows a trend
        # biases (without it, a trend is part of every row's error)
        sigma1, trend, trend_share, trend_cum = _take_trend(
            resid, bad, sigma1,
            route == 'global' and _flags_trend(sky, frame.shape))
        annuli = (_BlankAnnuli(sky, resid, unusable) if route == 'annulus'
                  else None)
        meta = {'method': 'blank apertures', 'route': route,
                'mask': 'given' if mask is not None else 'segmentation',
                'sky_method': sky.method, 'seed': seed,
                'sky_std': float(np.nanmedian(np.atleast_1d(
                    np.asarray(sky.std, dtype=float)))),
                'trend_removed': trend is not None,
                'trend': None if trend is None else [float(c) for c in trend],
                'pair_lag': PAIR_LAG}
        sizes = sizes if annuli is None else annuli.fitting(sizes)
        var_cum = _array_variance_integral(frame, bad)
        map_cum = None
        if route == 'map':
            map_cum = _map_error_integral(sky, bad)
            _check_map_std(resid, sky, bad, meta)
        points = [_blank_point(resid, bad, side, n_ap, rng, annuli, var_cum,
                               map_cum, trend_cum)
                  for side in sizes]
        local, level = _source_noise(frame, resid, sigma1, bad, unusable,
                                     points, meta)
        # (the photometry scales the sky term by the local noise: the
        # model is the noise where it is not higher)
        scaled = local if route == 'global' and var_cum is None else None
        _sums_over_local(points, scaled, meta)
        pairs, meta['pair_pixels'] = pair_covariance(
            _pair_residual(resid, bad, route, scaled), bad, sigma1)
        level_factor, share_factor = _level_shares(
            cls, sky, sigma1, sizes, points, annuli, map_cum, meta)
        n_pix, sig, sig_err, counts, n_eff, lowered = _size_scatter(
            sizes, points, share_factor)
        if lowered < 1.0:
            # the levels' share lowered (`_lowered_share`): the sky_mean
            # term of photometry with this model is lowered with it
            meta['level_share_scale'] = lowered
            share_factor *= lowered
            if route == 'map':
                meta['map_level_scale'] = share_factor
        if annuli is not None:
            meta.update(annuli.edge_spread(points, n_pix, sig,
                                           level_factor * lowered))
        if trend is not None:
            sig = _trend_given_back(sig, n_pix, points, trend_share, meta)
        meta['sizes'] = [round(math.sqrt(n)) for n in n_pix]
        meta['sizes_not_placed'] = [s for s in sizes
                                    if s * s not in set(n_pix.tolist())]
        alpha, beta = _fit(n_pix, sig, sig_err, sigma1)
        ratio = ratio_err = None
        if var_cum is not None:
            ratio, ratio_err = _array_scatter(points, share_factor)
        noise = cls(sigma1, alpha, beta, n_pix=n_pix, sigma=sig,
                    sigma_err=sig_err, n_apertures=counts,
                    n_independent=n_eff, route=route,
                    level_factor=level_factor, array_ratio=ratio,
                    array_ratio_err=ratio_err, local_noise=local,
                    shape=frame.shape, local_level=level,
                    pair_covariance=pairs, meta=meta)
        noise.meta['sizes_raised'] = [round(math.sqrt(n))
                                      for n in noise.raised_sizes]
        if pairs is not None:
            noise.meta['pair_ratio'] = [
                round(float(r), 4) for r in noise.pair_sigma(n_pix)
                / noise.white]
        return noise

    def __call__(self, n_pix):
        """
        Give ``sigma(n_pix)`` of a sum of ``n_pix`` pixels.

        White ``sigma1 * sqrt(n_pix)`` unless the noise is `correlated`,
        else the smooth curve through the measured points.

        Parameters
        ----------
        n_pix : float or array_like
            The aperture's pixel count (positive and finite).

        Returns
        -------
        sigma : float or `~numpy.ndarray`
            Shaped like ``n_pix`` (data unit).

        Raises
        ------
        ValueError
            If ``n_pix`` is not positive, is NaN or infinite (or beyond
            the range whose square is a float).
        TypeError
            If it is not a number or an array of numbers.
        """
        return self._sigma(scale_array(n_pix, 'n_pix'))

    def _sigma(self, n_pix):
        """`__call__` without its check: 0 for 0 pixels, NaN for NaN (the
        budget's empty and absent rows)."""
        n = np.maximum(np.asarray(n_pix, dtype=float), 0.0)
        white = self.sigma1 * np.sqrt(n)
        if not self.correlated:
            return float(white) if white.ndim == 0 else white
        out = white * self._ratio(n)
        return float(out) if out.ndim == 0 else out

    @cached_property
    def _curve_points(self):
        """The ratios to the white line the curve goes through, their
        errors and which were raised (`_raised`); on the whole-frame
        route each combined with `pair_sigma` first (`_with_pairs`)."""
        ratio, err = self.sigma / self.white, self.sigma_err / self.white
        if self.pair_covariance is not None and self.route == 'global':
            ratio, err = _with_pairs(
                ratio, err, self._pair_ratio(self.n_pix) * self.pair_scale,
                self.n_pix, self.meta.get('pair_pixels'))
        return _raised(ratio, err)

    @property
    def raised_sizes(self):
        """
        The pixel counts of the measured points the model's curve raises.

        A point whose ratio ``sigma / (sigma1 sqrt(N))`` falls below the
        highest ratio of the smaller sizes by more than `DIP_NSIGMA` of
        their combined errors: noise whose neighbouring pixels are not
        anti-correlated does not scatter less, for its pixel count, in a
        larger aperture, and on a crowded frame the few blank corners that
        hold a large aperture are where the source mask found no positive
        fluctuation, so that size reads low (the largest sizes on
        astropy's M13 frame, 0.46-0.72 of the exact value on 3 x 3
        correlated crowded frames). The curve takes such a point at that
        highest ratio (a lower bound); ``sigma``, `chi2` and `correlated`
        keep the measured values. An empty array when none is raised.
        """
        return self.n_pix[self._curve_points[2]]

    @cached_property
    def _curve(self):
        """Coefficients of the cubic in log-log through the points
        (weighted by their errors; of lower degree for fewer than five
        points, a line for two or three), significant dips raised
        (`raised_sizes`)."""
        ratio, err, _ = self._curve_points
        return _log_curve(self.n_pix, ratio, ratio / err)

    def _ratio(self, n):
        """sigma / (sigma1 sqrt(N)): the log-log fit, beyond `n_max`
        grown as `pair_sigma`, and at least `pair_sigma` times
        `pair_scale` (`_pair_parts`)."""
        out = _curve_value(self._curve, self.n_pix, n)
        if self.pair_covariance is None:
            return out
        grown, bound = self._pair_parts(n)
        return np.maximum(np.where(n > self.n_max, grown, out), bound)

    def _pair_parts(self, n):
        """Beyond `n_max`, the curve's value there times the growth of
        `pair_sigma`'s ratio to the white noise from there (the curve's own
        continuation with its local slope rests on the few largest
        apertures); and `pair_sigma`'s ratio times `pair_scale` (beyond
        `n_max` at least 1) where it bounds the model (0 elsewhere): at
        every size on the whole-frame route, only beyond `n_max` on the
        others (the annuli follow structure the pairs keep, and the pairs
        hold the map's error, which the blank sums leave to the
        ``sky_mean`` term). Beyond `n_max` no point says how far the blank
        sums would read below the pairs, and wholly blank boxes read low
        (the source mask, grown from the sources' regions above a
        threshold, leaves their sky where the noise is not up): on 3 x
        3-correlated crowded frames of 1000 stars on 300 x 300 pixels
        (16 frames) the model at 15 pixels was 0.80-1.13 of the exact
        scatter with the pairs scaled down, 0.84-1.17 with them whole:
        sums of pure noise would scatter 1.035 and 1.004 times their
        error."""
        n = np.asarray(n, dtype=float)
        pairs = self._pair_ratio(n)
        last = _curve_value(self._curve, self.n_pix, self.n_max)
        grown = last * pairs / self._pair_ratio(self.n_max)
        beyond = n > self.n_max
        bound = pairs * np.where(beyond, max(self.pair_scale, 1.0),
                                 self.pair_scale)
        if self.route != 'global':
            bound = np.where(beyond, bound, 0.0)
        return grown, bound

    def _pair_ratio(self, n):
        """`pair_sigma` over the white noise (1 at no pixel)."""
        n = np.asarray(n, dtype=float)
        with np.errstate(invalid='ignore', divide='ignore'):
            out = self.pair_sigma(n) / (self.sigma1 * np.sqrt(n))
        return np.where(n > 0, out, 1.0)

    def extrapolation(self, n_pix, arrays=False):
        """
        Say how the model is continued beyond the largest blank aperture.

        Parameters
        ----------
        n_pix : float
            An aperture's pixel count beyond `n_max`.
        arrays : bool, optional
            For the correlation ratio of the variance arrays
            (`variance_ratio` with `array_ratio`), which continues its
            curve alone (default False: the model's ``sigma(N)``).

        Returns
        -------
        how : str
            ``'continues the measured curve with its local slope'``
            without `pair_covariance` (or for the arrays), else how the
            pixel-pair sums (`pair_sigma`) continue it at ``n_pix``.
        """
        if arrays or self.pair_covariance is None:
            return 'continues the measured curve with its local slope'
        grown, bound = (float(v) for v in self._pair_parts(float(n_pix)))
        lag = self.pair_covariance.shape[0] // 2
        if bound > grown:
            return ('is the blank sky\'s pixel-pair covariance summed over '
                    f'the aperture (lags up to {lag} pixels), '
                    f'{bound / grown:.2f} times the measured curve grown as '
                    'that sum grows')
        return ('grows from the measured curve as the blank sky\'s '
                'pixel-pair covariance summed over the aperture does (lags '
                f'up to {lag} pixels)')

    @cached_property
    def pair_scale(self):
        """
        The measured points over `pair_sigma` at their sizes: the mean of
        the logarithms of their ratios weighted by the points' own
        precision (so the small apertures, hundreds of them independent,
        set it), None without `pair_covariance`. The pair sums count
        every blank pixel as it is, the blank sums are clipped, and the
        light of stars too faint for the source mask enters both (before
        the mask's matched filter read its thresholds without the bright
        sources, it made the pairs 4-13% higher than the points on 3 x
        3-correlated frames of 1000 stars on 300 x 300 pixels; 0-5% now):
        the bound is the pairs' growth with ``N`` at the level of the
        points (beyond the largest blank aperture not below the pairs
        themselves, `_pair_parts`).
        """
        if self.pair_covariance is None:
            return None
        pairs = np.asarray(self.pair_sigma(self.n_pix), dtype=float)
        good = pairs > 0
        if not good.any():
            return 1.0
        weight = (self.sigma[good] / self.sigma_err[good]) ** 2
        return float(np.exp(np.average(
            np.log(self.sigma[good] / pairs[good]), weights=weight)))

    def pair_sigma(self, n_pix):
        """
        Give ``sigma(N)`` from the blank sky's pixel-pair covariance.

        The square root of the sum of `pair_covariance` over the pixel
        pairs of a square of ``n_pix`` pixels (`pair_variance`): measured
        on every blank pixel, so that it does not depend on the few blank
        corners a large aperture fits into on a crowded frame, but blind
        to covariance beyond its largest lag (``meta['pair_lag']``,
        structure on larger scales, which the blank apertures hold).
        Beyond the largest blank aperture (`n_max`) the model of a
        `correlated` noise is at least this: on 3 x 3 and 5 x 5-correlated
        frames of 1000 stars on 300 x 300 pixels, whose largest blank
        apertures were 9 or 11 pixels, the curve's continuation alone gave
        0.62-0.86 of the exact scatter of 21-pixel boxes at 5 of 10 frames.

        Parameters
        ----------
        n_pix : float or array_like
            The aperture's pixel count (a square of side ``sqrt(n_pix)``).

        Returns
        -------
        sigma : float, `~numpy.ndarray` or None
            Shaped like ``n_pix`` (data unit); None when the covariance
            was not measured.
        """
        if self.pair_covariance is None:
            return None
        var = pair_variance(self.pair_covariance, n_pix)
        out = np.sqrt(np.maximum(var, 0.0))
        return float(out) if out.ndim == 0 else out

    @cached_property
    def _array_curve(self):
        """`_curve` of the `array_ratio` points (their dips raised as
        `_curve`'s are)."""
        ratio, err, _ = _raised(self.array_ratio, self.array_ratio_err)
        return _log_curve(self.n_pix, ratio, ratio / err)

    @cached_property
    def arrays_correlated(self):
        """
        True when the `array_ratio` points depart significantly from 1 (the
        test of `correlated`, against the arrays instead of the white
        line); None when the model has no `array_ratio`.
        """
        if self.array_ratio is None:
            return None
        return _departs(self.array_ratio - 1.0, self.array_ratio_err,
                        self.array_ratio - 1.0)

    def variance_ratio(self, n_pix):
        """
        Give how much more a sum of ``n_pix`` pixels scatters than white noise.

        ``R(N) = sigma(N)**2 / (N sigma1**2)``: the inflation of the
        variance of an aperture sum over the sum of its pixels' variances,
        which multiplies a frame's variance arrays with ``noise=``. From
        the `array_ratio` points when the model has them (each blank sum
        against its own arrays' variance sum: right on a frame of uneven
        depth, and it takes up a wrong scale of the arrays too), else from
        the model's own curve (``sigma1`` from the same frame); exactly 1
        when the points do not depart significantly from 1 (from white
        noise). Beyond the largest blank aperture the model's own ratio
        grows as `pair_sigma` does (`extrapolation`); the arrays' curve
        continues with its local slope.

        Parameters
        ----------
        n_pix : float or array_like
            The aperture's (weighted) pixel count.

        Returns
        -------
        ratio : float or `~numpy.ndarray`
            ``R(N)``, shaped like ``n_pix``.

        Examples
        --------
        >>> import numpy as np
        >>> from ccdphot_ext import ApertureNoise, SkyEstimate
        >>> img = np.random.default_rng(0).normal(100.0, 5.0, (300, 300))
        >>> sky = SkyEstimate(100.0, 5.0, img.size)
        >>> noise = ApertureNoise.from_blank_apertures(img, sky, seed=1)
        >>> noise.variance_ratio(49.0)  # white noise
        1.0
        """
        n = np.maximum(np.asarray(n_pix, dtype=float), 0.0)
        if self.array_ratio is not None:
            out = (_curve_value(self._array_curve, self.n_pix, n) ** 2
                   if self.arrays_correlated else np.ones(n.shape))
        elif self.correlated:
            out = self._ratio(n) ** 2
        else:
            out = np.ones(n.shape)
        return float(out) if out.ndim == 0 else out

    def variance(self, n_pix, noise_pix=None):
        """
        Give the budget's ``sky`` term of an aperture of ``n_pix`` pixels.

        ``sigma(n_pix)**2``. With fractional pixels (``noise_pix`` the sum
        of the squared weights, ``n_pix`` being the sum of the weights) the
        pixels' own variances follow the squared weights and their
        covariances the weights: ``sigma(n_pix)**2 - sigma1**2 * (n_pix -
        noise_pix)`` where the model is above the white line (correlated
        noise), else ``sigma(n_pix)**2 * noise_pix / n_pix``; on white
        noise either is the ``sum(w**2) * sigma1**2`` of a weighted sum of
        independent pixels. Scaling the whole of a correlated model by
        ``noise_pix / n_pix`` scaled the covariances too: r = 1.5 circles
        on 3 x 3-correlated noise had pulls spreading 1.07.

        Parameters
        ----------
        n_pix : float or array_like
            The aperture's (weighted) pixel count, ``sum(w)``.
        noise_pix : float or array_like, optional
            The sum of the squared weights, ``sum(w**2)``; None (default):
            whole pixels (``noise_pix = n_pix``).

        Returns
        -------
        variance : float or `~numpy.ndarray`
            The ``sky`` term (data unit squared), shaped like ``n_pix``.

        Raises
        ------
        ValueError
            If ``n_pix`` or ``noise_pix`` is negative, infinite or beyond
            the range whose square is a float (NaN gives NaN), if
            ``noise_pix`` exceeds ``n_pix`` (weights are at most 1), or if
            the term overflows (beyond the largest float).
        TypeError
            If either is not a number or an array of numbers.
        """
        n = scale_array(n_pix, 'n_pix', allow_zero=True, allow_nan=True)
        sigma = np.asarray(self._sigma(n))
        with np.errstate(over='ignore'):
            var = sigma ** 2
        if np.any(var == np.inf):
            raise ValueError(f'n_pix: the sky term of an aperture of up to '
                             f'{np.nanmax(n):.6g} pixels overflows (beyond '
                             'the largest float)')
        if noise_pix is None:
            return float(var) if var.ndim == 0 else var
        noise_pix = scale_array(noise_pix, 'noise_pix', allow_zero=True,
                                allow_nan=True)
        if np.any(noise_pix > n * (1 + 1e-12)):
            raise ValueError('noise_pix (sum of squared weights) cannot '
                             'exceed n_pix: weights are at most 1')
        with np.errstate(invalid='ignore', divide='ignore'):
            scale = np.where(n > 0, noise_pix / n, 1.0)
        out = var * scale
        if self.correlated:
            # the pixels' own variances follow the squared weights, their
            # covariances (the excess over white noise) the weights
            excess = var - self.sigma1 ** 2 * n
            out = np.where(excess > 0.0,
                           self.sigma1 ** 2 * noise_pix + excess, out)
        return float(out) if np.ndim(out) == 0 else out

    def level_scale(self, n_sky):
        """
        Give how much the noise inflates the error of a sky level.

        The factor for a level measured from ``n_sky`` pixels (1 for white
        noise).

        Annulus route: the measured `level_factor` (the two halves of each
        blank annulus against each other), when it is significant or the
        noise is `correlated`. Other routes: ``sigma(N) / (sigma1 *
        sqrt(N))`` of a correlated model at ``N = n_sky`` (the level is the
        mean of ``n_sky`` pixels), not extrapolated beyond the largest
        blank aperture (larger scales are the sky's own structure, which
        the blank apertures measured against that sky already hold), else 1.

        Parameters
        ----------
        n_sky : float or array_like
            The pixels behind the sky level.

        Returns
        -------
        scale : float or `~numpy.ndarray`
            The factor, shaped like ``n_sky``.
        """
        n = np.asarray(n_sky, dtype=float)
        if self.route == 'annulus' and self.level_factor is not None:
            k = self.level_factor
            err = k * CLIP_SPREAD / math.sqrt(max(
                self.meta.get('n_level_pairs', 1), 1))
            significant = k - 1.0 > max(3.0 * err, TOLERANCE)
            one = k if (self.correlated or significant) else 1.0
            return np.full(n.shape, one)[()] if n.ndim else one
        if not self.correlated:
            return np.ones(n.shape)[()] if n.ndim else 1.0
        out = self._ratio(np.clip(n, 1.0, self.n_max))
        return float(out) if out.ndim == 0 else out

    def local_ratio(self, x, y, shape=None, *, gain=None, sky=None):
        """
        Give the local pixel noise over the blank sky's at positions.

        The `local_noise` blocks interpolated (bilinearly between block
        centres, the edge blocks' values beyond them) at ``(x, y)``: how
        much noisier the sky there is than the blank sky whose apertures
        the model was measured on. With ``noise=`` the ``sky`` term of an
        aperture centred there is multiplied by its square (the model's
        correlation shape kept), where it is above 1. Exactly 1 where the
        surrounding blocks are not significantly noisier, where the model
        has no `local_noise`, or for a frame of another ``shape`` than the
        model's.

        With a ``gain`` and a whole-frame ``sky`` (one level), part of a
        higher local noise is the photon noise of light above that level
        (a cluster's or a galaxy's unresolved glow), which the flux of an
        aperture there holds and the budget's ``source`` term (flux over
        gain) counts already. That part, the `local_level` above the sky's
        level over the gain (``dmu / g``, data unit squared), is taken out
        of the local variance: the ratio squared becomes
        ``max(1, ratio**2 - dmu / (g * sigma1**2))``. An annulus or a map
        subtracts the glow, whose photon noise then is in no flux: its
        ratio is kept whole, as it is without a gain.

        Parameters
        ----------
        x : float or array_like
            The apertures' centre columns (pixels, zero-based).
        y : float or array_like
            Their rows (pixels, zero-based), broadcast with ``x``.
        shape : tuple of int, optional
            The shape of the frame measured; None (default): the model's.
        gain : float, optional
            Electrons per data unit of the frame measured (positive); None
            (default): the local noise is taken whole.
        sky : `~ccdphot_ext.SkyEstimate`, optional
            The sky subtracted; only a whole-frame level (one value, not a
            map) has the light's photon noise taken out. None (default):
            taken whole.

        Returns
        -------
        ratio : `~numpy.ndarray`
            At least 1, shaped like ``x``.

        Raises
        ------
        ValueError
            If ``gain`` is not positive and finite.

        Examples
        --------
        >>> import warnings
        >>> import numpy as np
        >>> from ccdphot_ext import ApertureNoise, SkyEstimate
        >>> rng = np.random.default_rng(0)
        >>> img = rng.normal(100.0, 5.0, (320, 320))
        >>> img[:, 160:] += rng.normal(0.0, 10.0, (320, 160))  # noisier ...
        >>> img[6::12, 166::12] += 3000.0  # ... among many sources
        >>> sky = SkyEstimate(100.0, 5.0, img.size)
        >>> with warnings.catch_warnings(record=True) as said:
        ...     warnings.simplefilter('always')
        ...     noise = ApertureNoise.from_blank_apertures(img, sky, seed=1)
        >>> str(said[0].message)[:60]
        'the pixel noise among the masked sources is 2.2 times that o'
        >>> noise.local_ratio([50.0, 250.0], [100.0, 100.0]).round(1)
        array([1., 2.])

        A model of ``sigma1 = 5`` whose right half is 1.5 times noisier
        and 50 ADU brighter than the sky level: with a gain of 2, 25 ADU**2
        of that noise is the light's own photon noise, and the ratio
        squared drops from 2.25 to 1.25:

        >>> level = np.where(np.arange(4) < 2, 100.0, 150.0) * np.ones((4, 1))
        >>> glow = ApertureNoise(5.0, 1.0, 0.5, n_pix=[9, 25],
        ...                      sigma=[15.0, 25.0], sigma_err=[0.5, 0.8],
        ...                      n_apertures=[100, 100], shape=(64, 64),
        ...                      local_noise=np.where(level > 100, 1.5, 1.0),
        ...                      local_level=level)
        >>> glow.local_ratio([8.0, 56.0], [8.0, 8.0])
        array([1. , 1.5])
        >>> glow.local_ratio([8.0, 56.0], [8.0, 8.0], gain=2.0,
        ...                  sky=SkyEstimate(100.0, 5.0, 4096)).round(3)
        array([1.   , 1.118])
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if gain is not None:
            gain = positive_scalar(gain, 'gain', allow_none=False)
        ones = np.ones(np.broadcast(x, y).shape)
        if self.local_noise is None or (
                shape is not None and tuple(shape) != self.shape):
            return ones
        y, x = y * ones, x * ones
        ratio = block_values(self.local_noise, y, x)
        # interpolation between blocks of 1 may round off 1
        ratio = np.where(ratio > 1.0 + 1e-9, ratio, 1.0)
        if (gain is None or sky is None or self.local_level is None
                or sky_route(sky) != 'global' or not np.any(ratio > 1.0)):
            return ratio
        # the light above the sky level: its photon noise is in the source
        # term of a flux against that level
        excess = block_values(self.local_level, y, x)
        excess = np.maximum(excess - float(sky.value), 0.0)
        photon = excess / (gain * self.sigma1 * self.sigma1)
        return np.where(ratio > 1.0, np.sqrt(np.maximum(
            ratio * ratio - photon, 1.0)), 1.0)

    @property
    def white(self):
        """
        The white-noise prediction ``sigma1 * sqrt(n_pix)`` at the measured
        points.
        """
        return self.sigma1 * np.sqrt(self.n_pix)

    @property
    def n_max(self):
        """
        The largest measured aperture [pixels]: beyond it the model is
        extrapolated.
        """
        return float(self.n_pix[-1])

    @property
    def chi2(self):
        """
        ``(chi2, dof)`` of the measured points against the white line
        ``sigma1 * sqrt(N)``: one degree of freedom per size.
        """
        z = (self.sigma - self.white) / self.sigma_err
        return float(np.sum(z * z)), int(z.size)

    @cached_property
    def correlated(self):
        """
        True when the measured points depart significantly from white noise.

        The points of all sizes against ``sigma1 * sqrt(N)`` (see `chi2`),
        with at least one size departing from it by more than 5% and more
        than 2 sigma; or the sizes beyond one pixel rising above it
        together (`RISE_MEAN` of their errors on average, chi-square beyond
        its `RISE_P` tail, one of them more than 5% and 2 sigma above): the
        sizes are measured on the same pixels, so their departures move
        together and the chi-square of independent points misses a rise of
        each by 1-2 errors.
        """
        diff, relative = self.sigma - self.white, self.sigma / self.white - 1.0
        return (_departs(diff, self.sigma_err, relative)
                or _rises(diff, self.sigma_err, relative, self.n_pix))

    @property
    def trend_removed(self):
        """
        True when the blank sums were measured against the whole-frame
        level plus the blank sky's large-scale trend (``meta['trend_removed']``;
        the share of it they carry, `trend_carried`).

        On the whole-frame route, the quadratic surface fitted to the blank
        pixels (`~ccdphot_ext.background.noise.trend_surface`) when its
        terms beyond the constant are significant: a gradient is a bias of
        each flux by its position, which the photometry flags (flag 32,
        from the whole-frame sky's background variation map), not noise.
        Read as noise, white noise with a gradient of +-0.4 sigma across
        256 x 256 pixels came out correlated, its model 1.6, 2.7 and 5.9
        times the white noise at 5, 11 and 25 pixels a side, and the
        unflagged rows' pulls spread 0.68, 0.45 and 0.31. ``sigma1`` is
        then the blank pixels' scatter about the surface where the trend
        holds more than 0.5% of the sky's ``std**2``. False on the other
        routes (their local sky follows such a trend), for a whole-frame
        sky without a background variation map of the frame (one built by
        hand: nothing flags the rows a trend biases, so it stays part of
        their error) and on a frame without a significant trend.
        """
        return bool(self.meta.get('trend_removed', False))

    def trend_carried(self, n_pix):
        """
        The share of the blank sky's large-scale trend (`trend_removed`) an
        aperture sum carries.

        Measured at each blank aperture size (``meta['trend_carried']``:
        the slope of the blank sums against the whole-frame level on the
        trend's sums over the same apertures, at most 1; the model's
        points are the sums' scatter about that share of the trend) and
        interpolated in ``log N`` between them (the nearest size's beyond
        them). The photometry's ``sky_offset`` term is that share of the
        trend at the aperture
        (`~ccdphot_ext.photometry.residual.sky_offset_variance`).

        Parameters
        ----------
        n_pix : float or array_like
            The aperture's pixel count.

        Returns
        -------
        share : float or `~numpy.ndarray`
            Shaped like ``n_pix``; 1 where no trend was taken out (and for
            a model without one share per measured size: made by hand).
        """
        n = np.maximum(np.asarray(n_pix, dtype=float), 1.0)
        carried = self.meta.get('trend_carried')
        if (not self.trend_removed or not carried
                or len(carried) != self.n_pix.size):
            out = np.ones(n.shape)
        else:
            out = np.interp(np.log(n), np.log(self.n_pix),
                            np.asarray(carried, dtype=float))
        return float(out) if out.ndim == 0 else out

    @property
    def noise_near_sources(self):
        """
        The pixel noise among the masked sources over the blank sky's
        (``meta['noise_near_sources']``), None when not measured. Above
        1.3 the model under-predicts the noise of
        apertures among the sources: `from_blank_apertures` warns and
        `note` says so.
        """
        return self.meta.get('noise_near_sources')

    @property
    def note(self):
        """What the budget says about its ``sky`` term."""
        near = self.noise_near_sources
        raised = self.raised_sizes
        local = (self.local_noise is not None
                 and bool(np.any(self.local_noise > 1.0)))
        return (f'sky term from blank-sky apertures ({self.route} sky'
                + (' less its large-scale trend' if self.trend_removed
                   else '') + '): '
                f'sigma(N) = {self.sigma1:.4g} * {self.alpha:.3f} * '
                f'N**{self.beta:.3f}'
                + (' (correlated noise)' if self.correlated else '')
                + (f'; the pixel noise among the sources is {near:.2g} '
                   'times the blank sky\'s'
                   if near is not None and near > NEAR_LIMIT else '')
                + ('; scaled by the local pixel noise where it is higher '
                   f'(up to {float(np.max(self.local_noise)):.2g} times)'
                   if local else '')
                + (f'; the {_sides(raised)} pixel blank apertures, which '
                   'read low, taken at a smaller size\'s ratio to white '
                   'noise' if raised.size and self.correlated else ''))

    def __repr__(self):
        return (f'<ApertureNoise sigma1={self.sigma1:.4g} '
                f'alpha={self.alpha:.3f} beta={self.beta:.3f} '
                f'route={self.route!r} correlated={self.correlated}>')

    def _repr_html_(self):
        from ..utils.html import html_table

        rows = [(int(n), int(c), s, e, w, s / w) for n, c, s, e, w in zip(
            self.n_pix, self.n_apertures, self.sigma, self.sigma_err,
            self.white, strict=True)]
        stat, dof = self.chi2
        notes = [('correlated noise' if self.correlated
                  else 'consistent with white noise')
                 + f' (chi2 {stat:.1f} for {dof} sizes)',
                 f'measured against the {self.route} sky'
                 + (' less its large-scale trend' if self.trend_removed
                    else '')]
        if self.level_factor is not None:
            notes.append(f'annulus level error {self.level_factor:.2f} x '
                         'its white-noise value')
        return html_table(
            f'ApertureNoise: sigma(N) = {self.sigma1:.4g} * {self.alpha:.3f}'
            f' * N^{self.beta:.3f}',
            ['N pixels', 'apertures', 'sigma', '+/-', 'white sigma',
             'ratio'], rows, notes=notes)


def _departs(diff, err, relative):
    """True when points ``diff`` off a line, with errors ``err``, depart
    from it significantly: their chi-square (one degree of freedom per
    point) beyond its `CORRELATION_P` tail, and at least one point off by
    more than `TOLERANCE` (``relative``) and 2 of its errors."""
    from scipy.stats import chi2 as chi2_distribution  # slow to import

    z = diff / err
    if not chi2_distribution.sf(float(np.sum(z * z)), z.size) < CORRELATION_P:
        return False
    return bool(np.any((np.abs(relative) > TOLERANCE) & (np.abs(z) > 2.0)))


def _rises(diff, err, relative, n_pix):
    """True when points ``diff`` off a line, with errors ``err``, rise
    above it together: the points beyond one pixel ``n_pix`` (the 1 pixel
    point is the pixels' own scatter, ``sigma1``) above it by `RISE_MEAN`
    of their errors on average, the chi-square of all points (one degree
    of freedom per point) beyond its `RISE_P` tail and at least one point
    above it by more than `TOLERANCE` (``relative``) and 2 of its errors.

    The scatters of the sizes are measured on the same pixels: on white
    frames of 44 x 62 to 512 x 512 pixels neighbouring sizes' departures
    correlate 0.5-0.9, and their errors (counting only the apertures that
    fit side by side) exceed their scatter (0.6-0.9 of an error), so a
    rise by 1-2 errors at every size falls short of the `CORRELATION_P`
    tail although white noise does not make it: on HST STIS's raw 44 x 62
    frame of astropy's test data (row offsets), 1.06, 1.22, 1.42 and 1.50
    times the white noise at 3, 7, 9 and 11 pixels a side, chi-square 20.9
    for 8 (a chance of 0.007 for independent points), whose blank sums
    then scattered 1.35 and 1.45 times their white errors at 7 and 11
    pixels. White frames pass this test 0-2% of the time."""
    from scipy.stats import chi2 as chi2_distribution  # slow to import

    z = diff / err
    upper = np.asarray(n_pix) > 1.0
    if not upper.any() or not np.mean(z[upper]) > RISE_MEAN:
        return False
    if not chi2_distribution.sf(float(np.sum(z * z)), z.size) < RISE_P:
        return False
    return bool(np.any((relative > TOLERANCE) & (z > 2.0)))


def _sides(n_pix):
    """``'15 and 21'``: the square sides of pixel counts ``n_pix``."""
    sides = [str(round(math.sqrt(n))) for n in n_pix]
    return ', '.join(sides[:-1]) + (' and ' if len(sides) > 1 else '') + (
        sides[-1])


def _raised(ratio, err):
    """``ratio`` and ``err`` (points in increasing pixel count) with every
    point below the highest ratio of the smaller sizes by more than
    `DIP_NSIGMA` combined errors taken at that ratio and its error, and a
    boolean array of the points so raised."""
    ratio = np.array(ratio, dtype=float)
    err = np.array(err, dtype=float)
    raised = np.zeros(ratio.shape, dtype=bool)
    if ratio.size == 0:
        return ratio, err, raised
    top, top_err = ratio[0], err[0]
    for k in range(1, ratio.size):
        if top - ratio[k] > DIP_NSIGMA * math.hypot(top_err, err[k]):
            ratio[k], err[k], raised[k] = top, top_err, True
        elif ratio[k] > top:
            top, top_err = ratio[k], err[k]
    return ratio, err, raised


def _with_pairs(ratio, err, pairs, n_pix, n_paired):
    """The measured ratios ``ratio`` (errors ``err``) whose relative error
    exceeds `PAIR_FEW` (the few independent apertures of the largest sizes
    on a crowded frame) taken with the pair sums' ``pairs``
    (`ApertureNoise.pair_sigma` times its `~ApertureNoise.pair_scale`,
    over the white noise): a point below them at theirs (the few blank
    corners such apertures fit into are where the source mask found no
    positive fluctuation, see `DIP_NSIGMA`), one above them combined with
    them, weighted by their errors (the pairs' that of a scatter of as
    many apertures as the ``n_paired`` blank pixels hold), where they
    agree within `DIP_NSIGMA` combined errors, else kept (it holds
    structure beyond their lags); with the combination's error where
    combined, else its own: a point taken at the pairs still stands for
    its few apertures in the curve (with the pairs' error it bent the
    curve at the well-measured sizes below it toward the pairs' growth:
    astropy's M13, 5.37 times the white noise at 11 pixels, whose point
    read 5.01, rather than 5.27; the pairs bound the model anyway, see
    `ApertureNoise.pair_scale`). The other points keep theirs."""
    if not n_paired:
        return ratio, err
    pair_err = pairs * math.sqrt(0.5) / np.sqrt(n_paired / n_pix)
    w, pw = 1.0 / err ** 2, 1.0 / pair_err ** 2
    mean = (ratio * w + pairs * pw) / (w + pw)
    agree = ratio - pairs <= DIP_NSIGMA * np.hypot(err, pair_err)
    few = err > PAIR_FEW * ratio
    low = ratio < pairs
    return (np.where(few, np.where(low, pairs, np.where(agree, mean, ratio)),
                     ratio),
            np.where(few & ~low & agree, 1.0 / np.sqrt(w + pw), err))


def _log_curve(n_pix, ratio, weight):
    """Coefficients of the cubic in log-log of ``ratio`` against
    ``n_pix`` (weighted; of lower degree for fewer than five points, a
    line for two or three)."""
    x = np.log(n_pix)
    degree = min(3, max(x.size - 2, 1))
    return np.polyfit(x, np.log(ratio), degree, w=weight)


def _curve_value(coef, n_pix, n):
    """The `_log_curve` at ``n`` pixels: clipped to the measured range
    below it, continued with its local slope (0 to 0.5) beyond it."""
    x = np.log(n_pix)
    lo, hi = x[0], x[-1]
    xn = np.log(np.maximum(n, 1e-300))
    inside = np.polyval(coef, np.clip(xn, lo, hi))
    slope = np.clip(np.polyval(np.polyder(coef), hi), 0.0, 0.5)
    return np.exp(inside + slope * np.maximum(xn - hi, 0.0))


def _residual(frame, sky, route):
    """The frame minus the sky: its level, its map, or (annulus route, for
    the source mask and the sums, each measured against its own annulus
    afterwards) the median of its levels."""
    if (sky.unit is not None and frame.unit is not None
            and sky.unit != frame.unit):
        raise u.UnitsError(f'sky unit {sky.unit} differs from the data unit '
                           f'{frame.unit}')
    data = frame.data.astype(np.float64, copy=False)
    if route == 'map':
        if sky.shape != frame.shape:
            raise ValueError(f'sky map shape {sky.shape} does not match the '
                             f'frame shape {frame.shape}')
        return data - np.asarray(sky.value, dtype=float)
    if route == 'annulus':
        level = np.asarray(sky.value, dtype=float)
        if not np.isfinite(level).any():
            raise ValueError('sky: no finite annulus level')
        return data - float(np.nanmedian(level))
    return data - float(sky.value)


def _flags_trend(sky, shape):
    """True when a whole-frame ``sky`` has a background variation map of a
    frame of ``shape``, by which the photometry flags the rows a
    large-scale trend biases (flag 32)."""
    variation = getattr(sky, 'background_variation', None)
    if variation is None:
        return False
    made_on = getattr(variation, 'shape', None)
    return made_on is None or tuple(made_on) == tuple(shape)


def trend_surface(resid, bad):
    """
    The large-scale trend of a frame's blank sky about its level.

    The quadratic surface in ``x, y`` (six terms) fitted by weighted least
    squares to the means of the blank pixels of ``resid`` (the frame less
    its whole-frame level; not ``bad``) in blocks of `TREND_BLOCK` pixels
    (those with at least a quarter of their pixels blank, weighted by
    them; a block beyond `TREND_CLIP` times the blocks' scatter about the
    surface left out, once). It is the trend when its five terms beyond
    the constant are significant against that scatter (their F statistic
    beyond its `CORRELATION_P` tail): block means hold the noise however
    it is correlated on scales smaller than a block, so that correlated
    noise on a flat frame does not make a trend of itself. A gradient
    across the frame is then no noise of the blank sums (the photometry
    flags the rows it biases, flag 32). The surface is fitted to the blank
    sky itself rather than read from the whole-frame sky's background
    variation map, whose cells on a crowded frame hold the unresolved
    light of its stars (1000 stars on 300 x 300 pixels: -6 to +12 data
    units against a pixel noise of 3.3).

    Parameters
    ----------
    resid : 2-D `~numpy.ndarray`
        The frame less its level.
    bad : 2-D `~numpy.ndarray` of bool
        The pixels that are not blank sky (unusable or sources).

    Returns
    -------
    trend : tuple or None
        The surface's six coefficients (`trend_image`) and the variance
        per pixel of the noise its five terms beyond the constant took
        from the blank sky (their variance over the blank blocks, from the
        blocks' scatter: a sum of ``N`` pixels less the surface scatters
        less than the sum by ``N**2`` times it, which the blank sums get
        back); None when the terms are not significant (or fewer than
        `TREND_MIN_BLOCKS` blocks are blank enough).
    """
    from scipy.stats import f as f_distribution  # slow to import

    ny, nx = resid.shape
    good = ~bad & np.isfinite(resid)
    by, bx = -(-ny // TREND_BLOCK), -(-nx // TREND_BLOCK)
    iy, ix = np.nonzero(good)
    block = (iy // TREND_BLOCK) * bx + ix // TREND_BLOCK
    u, v = unit_coordinates(resid.shape, np.arange(nx), np.arange(ny))
    count = np.bincount(block, minlength=by * bx).astype(float)
    use = count >= TREND_BLOCK * TREND_BLOCK / 4.0
    if np.count_nonzero(use) < TREND_MIN_BLOCKS:
        return None
    with np.errstate(invalid='ignore', divide='ignore'):
        mean = np.bincount(block, resid[iy, ix], by * bx) / count
        bu = np.bincount(block, u[ix], by * bx) / count
        bv = np.bincount(block, v[iy], by * bx) / count
    mean, bu, bv, w = mean[use], bu[use], bv[use], count[use]
    design = surface_design(bu, bv, quadratic=True)
    keep = np.ones(mean.size, dtype=bool)
    for _ in range(2):
        coef = weighted_lstsq(design[keep], mean[keep], np.sqrt(w[keep]))
        off = (mean - design @ coef) * np.sqrt(w)  # (pixel-noise units)
        keep = np.abs(off) <= TREND_CLIP * _robust_std(off)
    dof = int(np.count_nonzero(keep)) - coef.size
    if dof < coef.size:
        return None
    # the five terms' F statistic against the blocks' own scatter
    a = design[keep] * np.sqrt(w[keep])[:, None]
    scatter = float(np.sum(off[keep] ** 2)) / dof
    try:
        cov = np.linalg.inv(a.T @ a)[1:, 1:] * scatter
        stat = float(coef[1:] @ np.linalg.solve(cov, coef[1:])) / (
            coef.size - 1)
    except np.linalg.LinAlgError:
        return None
    if not f_distribution.sf(stat, coef.size - 1, dof) < CORRELATION_P:
        return None
    # the noise the surface's terms took from the blank pixels, per pixel
    # (their variance over the blank blocks): a sum of N pixels less the
    # surface scatters less than the sum by N**2 times it
    d = design[keep][:, 1:]
    share = float(np.average(np.einsum('ij,jk,ik->i', d, cov, d),
                             weights=w[keep]))
    return coef, share


def _take_trend(resid, bad, sigma1, fit):
    """Take the blank sky's large-scale trend (`trend_surface`, when
    ``fit``) out of ``resid`` in place; returns ``sigma1`` (about the
    trend, `_detrended_sigma1`), the trend's coefficients, the noise share
    its terms took per pixel and the summed-area table of the trend over
    the blank pixels (not ``bad``), for the share of it the blank sums
    carry (`_trend_carried`); ``sigma1`` and three None without one."""
    trend = trend_surface(resid, bad) if fit else None
    if trend is None:
        return sigma1, None, None, None
    coef, share = trend
    surface = trend_image(coef, resid.shape)
    resid -= surface
    return (_detrended_sigma1(resid, bad, surface, sigma1), coef, share,
            _integral(np.where(bad, 0.0, surface)))


def _detrended_sigma1(resid, bad, surface, sigma1):
    """The whole-frame sky's ``std`` (``sigma1``), which holds the trend's
    variance too, or, where that variance over the blank pixels (not
    ``bad``) is more than `TREND_MIN` of ``sigma1**2``, the clipped scatter
    (`_robust_std`) of the blank pixels of ``resid`` (the frame less its
    level and the trend ``surface``; at most `TREND_PIXELS` of them, evenly
    spaced)."""
    good = ~bad & np.isfinite(resid)
    if not float(np.var(surface[good])) > TREND_MIN * sigma1 * sigma1:
        return sigma1
    values = resid[good]
    return _robust_std(values[::max(values.size // TREND_PIXELS, 1)]) or sigma1


def trend_image(coef, shape):
    """
    The quadratic surface of `trend_surface` at every pixel of a frame.

    Parameters
    ----------
    coef : sequence of float
        Its six coefficients: of 1, ``u``, ``v``, ``u**2``, ``v**2`` and
        ``u v`` (`~ccdphot_ext.utils.stats.surface_terms`), where ``u`` and
        ``v`` run from -1 to 1 over the columns and the rows of the frame
        (`~ccdphot_ext.utils.stats.unit_coordinates`).
    shape : tuple of int
        The frame's shape.

    Returns
    -------
    surface : 2-D `~numpy.ndarray`
        Shaped ``shape``.
    """
    return frame_surface(coef, shape)


def pair_covariance(resid, bad, sigma1, lag=PAIR_LAG):
    """
    The covariance of the blank sky's pixels against their separation.

    ``C(dy, dx)``: the mean product of the blank pixels of ``resid`` (not
    ``bad``; less their mean) ``dy`` rows and ``dx`` columns apart, over
    the pairs of blank pixels at that lag (the mask's own pair count, so
    that the gaps of a crowded frame do not bias it), for lags up to
    ``lag``. The pixels more than `PAIR_CLIP` times ``sigma1`` off the
    mean (a cosmic ray, a star the mask missed) are left out with their
    eight neighbours. Subtracting the mean biases every lag by minus the
    variance of that mean, ``sum(pairs(d) C(d)) / n**2`` over ``n`` blank
    pixels, which is added back. Measured by FFT in tiles of `PAIR_TILE`
    pixels (pairs across tiles are not counted), at most `PAIR_TILES` of
    them spread evenly over the frame's tiles that hold blank sky.

    The variance of the sum of an aperture's pixels is the sum of ``C``
    over its pixel pairs (`pair_variance`): from the same blank pixels as
    the blank apertures, at any size, and not from the few blank corners
    a large aperture fits into on a crowded frame. It leaves out the
    covariance beyond ``lag`` (structure on larger scales), which only
    the blank apertures measure: beyond the largest of them it is a lower
    bound of the model (`ApertureNoise.pair_sigma`). Lags it does not hold
    significantly are set to 0 (`_tapered`).

    Parameters
    ----------
    resid : 2-D `~numpy.ndarray`
        The frame less its sky.
    bad : 2-D `~numpy.ndarray` of bool
        The pixels that are not blank sky.
    sigma1 : float
        The pixel noise (of the clip).
    lag : int, optional
        The largest lag in rows and columns (default `PAIR_LAG`).

    Returns
    -------
    covariance : 2-D `~numpy.ndarray` or None
        ``C`` shaped ``(2 lag + 1, 2 lag + 1)``, ``C[lag + dy, lag + dx]``
        at lag ``(dy, dx)`` (symmetric about the centre; 0 at a lag no
        pair has or that `_tapered` cut), the variance of a blank pixel
        at the centre; None when the tiles hold fewer than ``(2 lag +
        1)**2`` blank pixels.
    n_pixels : int
        The blank pixels it was measured on.
    """
    from scipy import fft
    from scipy.ndimage import binary_dilation

    good = ~bad & np.isfinite(resid)
    ny, nx = resid.shape
    # equal tiles of at most PAIR_TILE pixels a side covering the frame
    edges = [np.linspace(0, m, -(-m // PAIR_TILE) + 1).round().astype(int)
             for m in (ny, nx)]
    hy, hx = (int(np.max(np.diff(e))) for e in edges)
    corners = [(y, x) for y in edges[0][:-1] for x in edges[1][:-1]]
    if len(corners) > PAIR_TILES:  # spread over the frame
        step = 8  # (blank pixels counted on a grid)
        count = np.add.reduceat(np.add.reduceat(
            good[::step, ::step], edges[0][:-1] // step, axis=0,
            dtype=np.int64), edges[1][:-1] // step, axis=1).ravel()
        held = np.flatnonzero(count > 0)
        corners = [corners[k] for k in held[np.unique(np.linspace(
            0, held.size - 1, PAIR_TILES).round().astype(int))]]
    blank = np.zeros((len(corners), hy, hx), dtype=bool)
    values = np.zeros((len(corners), hy, hx))
    for k, (y, x) in enumerate(corners):
        part = good[y:y + hy, x:x + hx]
        blank[k, :part.shape[0], :part.shape[1]] = part
        values[k, :part.shape[0], :part.shape[1]] = np.where(
            part, resid[y:y + hy, x:x + hx], 0.0)
    mean = float(values[blank].mean()) if blank.any() else 0.0
    far = blank & (np.abs(values - mean) > PAIR_CLIP * sigma1)
    if far.any():
        blank &= ~binary_dilation(far, np.ones((1, 3, 3), dtype=bool))
    n = int(np.count_nonzero(blank))
    if n < (2 * lag + 1) ** 2:
        return None, n
    mean = float(values[blank].mean())
    values = np.where(blank, values - mean, 0.0)
    size = (fft.next_fast_len(hy + lag, real=True),
            fft.next_fast_len(hx + lag, real=True))
    index = np.ix_(np.arange(-lag, lag + 1) % size[0],
                   np.arange(-lag, lag + 1) % size[1])

    def pair_sums(a):
        f = fft.rfft2(a, s=size, axes=(1, 2))
        f = fft.irfft2(f * np.conj(f), s=size, axes=(1, 2))
        return f.sum(axis=0)[index]

    pairs = np.round(pair_sums(blank.astype(float)))
    products = pair_sums(values)
    with np.errstate(invalid='ignore', divide='ignore'):
        cov = np.where(pairs > 0, products / pairs, 0.0)
    # the mean's variance, by which the mean's subtraction lowers every
    # lag: v = sum(pairs (cov + v)) / n**2
    held_pairs = pairs.sum()
    if n * float(n) > held_pairs:
        cov = cov + float(np.sum(pairs * cov)) / (n * float(n) - held_pairs)
    return _tapered(np.where(pairs > 0, cov, 0.0), pairs), n


def _tapered(cov, pairs):
    """
    The pixel-pair covariance ``cov`` (`pair_covariance`) with the lags it
    does not hold significantly set to 0.

    The lags of one distance ``r = max(|dy|, |dx|)`` (a ring, from 1 on)
    fall into three groups: along the rows (``dy = 0``), along the columns
    (``dx = 0``; row and column offsets of a raw frame correlate its pixels
    there only) and the rest. A group holds its covariance at ``r`` when
    its sum there is more than `TAPER_NSIGMA` times its statistical error
    off 0 and it held it at every ring within; from the first ring it does
    not, its lags are 0. The error is that of Gaussian noise whose
    covariance is the lags held within ``r`` (0 beyond): a lag's mean
    product over ``P`` pixel pairs varies by, and covaries with another
    lag ``delta`` away by, the sum over ``k`` of ``C(k) C(k + delta)``
    over ``P``; summed over the group's pairs of lags (each lag with its
    mirror), ``P`` the group's mean pair count there.

    A lag far beyond the noise's correlation is no 0 but the mean product
    of a few thousand blank pixels, and `pair_variance` weights it by the
    pixel pairs of a square at that lag (tens of thousands for a 15 pixel
    square): chance alone moved the sums of large squares by tens of
    percent. On 3 x 3-correlated crowded frames of 1000 stars on 300 x 300
    pixels (16 frames), whose covariance ends at 2 pixels, the model at
    15 pixels (beyond the largest blank aperture: `ApertureNoise.pair_sigma`)
    was 0.84-1.16 times the exact scatter (spread 0.076), 0.95-1.11 cut
    (0.032). Covariance that holds over many lags stays: astropy's M13,
    whose cluster glow holds lags out to 12 pixels, reads 5.96 times the
    white noise at 21 pixels either way. HST STIS's raw frame keeps its
    row lags to 3 pixels (9, 5.2 and 3.5 errors; 0.1 at 4, about 0
    beyond).

    Parameters
    ----------
    cov : 2-D `~numpy.ndarray`
        ``C`` shaped ``(2 L + 1, 2 L + 1)``, lag 0 at the centre.
    pairs : 2-D `~numpy.ndarray`
        The pixel pairs each lag was measured on.

    Returns
    -------
    cov : 2-D `~numpy.ndarray`
        ``C`` with the lags not held at 0.
    """
    from scipy.signal import fftconvolve

    lag = cov.shape[0] // 2
    d = np.arange(-lag, lag + 1)
    ring = np.maximum.outer(np.abs(d), np.abs(d))
    rows = np.broadcast_to((d == 0)[:, None], ring.shape)
    groups = [rows, rows.T, ~(rows | rows.T)]
    held = ring == 0
    alive = [True] * len(groups)
    for r in range(1, lag + 1):
        # f(delta): the autocorrelation of the covariance held so far
        products = fftconvolve(np.where(held, cov, 0.0), cov[::-1, ::-1]
                               * held[::-1, ::-1], mode='full')
        at_ring = ring == r
        for k, group in enumerate(groups):
            at = at_ring & group
            count = float(np.mean(pairs[at]))
            if not alive[k] or not count > 0:
                alive[k] = False
                continue
            lags = fftconvolve(at.astype(float), at[::-1, ::-1].astype(
                float), mode='full')
            var = 2.0 * float(np.sum(lags * products)) / count
            alive[k] = abs(float(np.sum(cov[at]))) > TAPER_NSIGMA * (
                math.sqrt(max(var, 0.0)))
            held |= at & alive[k]
        if not any(alive):
            break
    return np.where(held, cov, 0.0)


def pair_variance(covariance, n_pix):
    """
    The variance of the sum of a square of ``n_pix`` pixels from the
    pixel-pair covariance ``covariance`` (`pair_covariance`): the sum of
    ``C(dy, dx) (s - |dy|) (s - |dx|)`` over the lags (``s = sqrt(n_pix)``
    the side, taken as it comes for a pixel count that is not a square;
    the pairs of a lag in the square, none beyond its side).
    """
    covariance = np.asarray(covariance, dtype=float)
    lag = covariance.shape[0] // 2
    d = np.abs(np.arange(-lag, lag + 1, dtype=float))
    side = np.sqrt(np.maximum(np.asarray(n_pix, dtype=float), 0.0))
    w = np.maximum(side[..., None] - d, 0.0)
    return np.einsum('...i,ij,...j->...', w, covariance, w)


def _source_mask(resid, sigma1, bad):
    """Sources by photutils segmentation (`BRIGHT_NSIGMA` in
    `BRIGHT_NPIXELS`, grown by `BRIGHT_GROW` pixels), and the fainter
    stars the matched filter finds
    (`~ccdphot_ext.background.globalsky.matched_pixels`, whose thresholds
    scale with the filtered noise, correlated or not), grown by
    ``MATCHED_GROW`` pixels: a star of a few times the sky noise at its
    peak, missed pixel by pixel, would put its light into the blank sums
    and make white noise look correlated. The matched filter runs twice,
    the second time with the bright segments grown left out: on a
    crowded frame they held the lower half of the filtered sky its
    thresholds are read from (1000 stars on 300 x 300 pixels of 3 x
    3-correlated noise: a scatter of 18.5 where the filtered noise's is
    2.1), and stars of 4-8 times the pixel noise at their peak were
    missed (7-13% of them; 1-6% now), their light counted as noise by
    the blank sums and the pixel pairs."""
    return _grown(*_source_cores(resid, sigma1, bad))


def _sharp_pixels(resid, sigma1, unusable):
    """The pixels sharper than the frame's stars (cosmic rays, hot pixels:
    `~ccdphot_ext.background.outliers.SharpPixels`, against the larger of
    ``sigma1`` and the pixel-difference noise), which the blank apertures
    leave out as they leave out the sources: a raw frame's hits would be
    measured as the sky's noise."""
    from .outliers import SharpPixels, pixel_noise

    sigma = pixel_noise(resid, unusable)
    if math.isfinite(sigma1) and not sigma1 <= sigma:
        sigma = sigma1
    return SharpPixels.from_image(resid, unusable=unusable,
                                  sigma=sigma).mask


def _local_cores(resid, sigma1, unusable):
    """`_source_cores` (both kinds) found against a local background
    (`~ccdphot_ext.background.maps.frame_background2d` of ``resid``;
    ``resid`` itself where it cannot be made): the stars on a cluster's
    unresolved light, not the light itself."""
    from .maps import frame_background2d

    local = resid
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            bkg, _ = frame_background2d(np.where(unusable, np.nan, resid))
        local = resid - bkg.background
    except ValueError:  # no mesh with half of its pixels usable
        pass
    return np.logical_or(*_source_cores(local, sigma1, unusable))


def _grown(bright, faint):
    """The `_source_mask` of its `_source_cores`."""
    from scipy.ndimage import binary_dilation

    from .globalsky import MATCHED_GROW

    mask = binary_dilation(faint, structure=np.ones((3, 3), dtype=bool),
                           iterations=MATCHED_GROW)
    if bright.any():
        mask |= binary_dilation(bright, iterations=BRIGHT_GROW)
    return mask


def _source_cores(resid, sigma1, bad):
    """The sources of `_source_mask` before they are grown: the
    `BRIGHT_NSIGMA` segments and the matched filter's regions (two bool
    arrays)."""
    from photutils.segmentation import detect_sources
    from photutils.utils import NoDetectionsWarning

    from .globalsky import matched_pixels

    clean = np.where(bad, 0.0, resid)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NoDetectionsWarning)
        segm = detect_sources(clean, BRIGHT_NSIGMA * sigma1,
                              n_pixels=BRIGHT_NPIXELS,
                              mask=bad if bad.any() else None)
    bright = (np.zeros(resid.shape, dtype=bool) if segm is None
              else segm.data > 0)
    faint = matched_pixels(resid, bad, grow=0)
    if bright.any():
        from scipy.ndimage import binary_dilation

        # the filtered sky's level and scatter again without the bright
        # sources grown: on a crowded frame they held its lower half
        faint |= matched_pixels(
            resid, bad | binary_dilation(bright, iterations=BRIGHT_GROW),
            grow=0)
    return bright, faint


def noise_near_sources(resid, unusable, sources, cores):
    """
    The pixel noise among the sources over that of the blank sky.

    The frame in blocks of `NEAR_BLOCK` pixels (at most `NEAR_MAX_BLOCKS`,
    every k-th block row and column of a large frame): in each, the
    clipped standard deviation of the differences of pixels two columns
    apart (a smooth sky cancels), over ``sqrt(2)``, of the pixels outside
    the detected sources themselves (``cores``: their light is not sky
    noise) and not ``unusable``. The median over the blocks mostly masked
    (``sources``: more than `NEAR_SOURCES` of their pixels) over the
    median over the blank blocks (less than `NEAR_BLANK`).

    Parameters
    ----------
    resid : 2-D `~numpy.ndarray`
        The frame less its sky.
    unusable : 2-D `~numpy.ndarray` of bool
        The pixels that may not enter (not finite, masked).
    sources : 2-D `~numpy.ndarray` of bool
        The source mask, grown (`_source_mask`): the share of a block it
        covers sorts the block.
    cores : 2-D `~numpy.ndarray` of bool
        The detected sources themselves (`_source_cores`), left out.

    Returns
    -------
    ratio : float or None
        None when either kind of block has fewer than `NEAR_MIN` blocks
        with a quarter of their pairs.
    """
    by, bx = resid.shape[0] // NEAR_BLOCK, resid.shape[1] // NEAR_BLOCK
    step = max(1, math.ceil(math.sqrt(by * bx / NEAR_MAX_BLOCKS)))
    std, _, ok = _block_scatter(
        _block_differences(resid, unusable | cores, step))
    if not ok.any():
        return None
    share = _blocks(sources, step).mean(axis=(1, 3))
    blank = std[ok & (share < NEAR_BLANK)]
    among = std[ok & (share > NEAR_SOURCES)]
    if blank.size < NEAR_MIN or among.size < NEAR_MIN:
        return None
    return float(np.median(among) / np.median(blank))


def local_noise_map(resid, unusable, cores, centres):
    """
    The local pixel noise of the frame over that where the blank apertures
    lay (`ApertureNoise.local_noise`); None when it cannot be measured.

    In every block of `NEAR_BLOCK` pixels (the estimator of
    `noise_near_sources`: the clipped scatter of differences of pixels
    two columns apart, over ``sqrt(2)``, leaving out ``unusable`` pixels
    and the detected sources, ``cores``), over the blank sky's: the root
    mean square of the blocks' scatter at the blank apertures' centres
    (``centres``: ``(y, x)`` arrays per aperture size). A block whose
    ratio is not above 1 by more than `LOCAL_TOLERANCE` and `LOCAL_SIGMA`
    of its error reads 1 (the error of a clipped scatter of ``pairs / 2``
    independent differences), and so does a noisier block none of whose 8
    neighbours is noisier (chance, mostly on correlated noise, whose
    neighbouring differences share their noise; noisier sky spans
    blocks); a block with too few pixels takes the value of the nearest
    measured one.

    Parameters
    ----------
    resid : 2-D `~numpy.ndarray`
        The frame less its sky.
    unusable : 2-D `~numpy.ndarray` of bool
        The pixels that may not enter.
    cores : 2-D `~numpy.ndarray` of bool
        The detected sources (`_source_cores`), left out.
    centres : list of tuple
        The blank apertures' centres, ``(y, x)`` arrays per aperture size.

    Returns
    -------
    ratio : 2-D `~numpy.ndarray` or None
        One value (at least 1) per `NEAR_BLOCK` block; None when the frame
        is smaller than a block or no block can be measured.
    """
    from scipy.ndimage import (
        convolve,
        distance_transform_edt,
        map_coordinates,
    )

    b = NEAR_BLOCK
    if min(resid.shape) < b:
        return None
    std, pairs, _ = _block_scatter(
        _block_differences(resid, unusable | cores))
    if not np.isfinite(std).any():
        return None
    missing = ~np.isfinite(std)
    if missing.any():
        nearest = tuple(distance_transform_edt(
            missing, return_distances=False, return_indices=True))
        std, pairs = std[nearest], pairs[nearest]
    y = np.concatenate([c[0] for c in centres])
    x = np.concatenate([c[1] for c in centres])
    half = (b - 1) / 2.0
    at_blank = map_coordinates(std, [(y - half) / b, (x - half) / b],
                               order=1, mode='nearest')
    reference = math.sqrt(float(np.mean(at_blank ** 2))) if y.size else 0.0
    if not reference > 0:
        return None
    ratio = std / reference
    err = CLIP_SPREAD / np.sqrt(np.maximum(pairs, 2.0) / 2.0)
    noisier = ratio - 1.0 > np.maximum(LOCAL_SIGMA * err, LOCAL_TOLERANCE)
    # noisier sky (a cluster, a galaxy, a deep stretch) spans blocks; a
    # block alone among the 8 around it is taken as chance
    around = convolve(noisier.astype(int), np.ones((3, 3), dtype=int),
                      mode='constant') - noisier
    return np.where(noisier & (around > 0), ratio, 1.0)


def local_level_map(data, unusable, cores):
    """
    The frame's level in the blocks of `local_noise_map`
    (`ApertureNoise.local_level`, data unit): each block's clipped mean
    (`CLIP_SIGMA`) of its pixels outside ``unusable`` ones and the
    detected sources (``cores``: a star's own light is not the glow around
    it); a block with fewer than a quarter of its pixels takes the value
    of the nearest measured one. None when no block can be measured.
    """
    from scipy.ndimage import distance_transform_edt

    values = np.where(_blocks(unusable | cores), np.nan,
                      _blocks(np.asarray(data, dtype=np.float64)))
    by, bx = values.shape[0], values.shape[2]
    rows = values.transpose(0, 2, 1, 3).reshape(by * bx, -1)
    ok = np.count_nonzero(np.isfinite(rows), axis=1) >= rows.shape[1] // 4
    if not ok.any():
        return None
    level = np.full(by * bx, np.nan)
    level[ok] = row_statistics(rows[ok], 'sigma_clip', CLIP_SIGMA, 10)[0]
    level = level.reshape(by, bx)
    missing = ~np.isfinite(level)
    if missing.any():
        level = level[tuple(distance_transform_edt(
            missing, return_distances=False, return_indices=True))]
    return level


def _blocks(a, step=1):
    """The whole `NEAR_BLOCK` x `NEAR_BLOCK` blocks of a 2-D array ``a``,
    every ``step``-th block row and column, as a view shaped ``(by,
    NEAR_BLOCK, bx, NEAR_BLOCK)``."""
    b = NEAR_BLOCK
    by, bx = a.shape[0] // b, a.shape[1] // b
    return a[:by * b, :bx * b].reshape(by, b, bx, b)[::step, :, ::step]


def _block_differences(resid, excluded, step=1):
    """
    The pair-difference noise estimate's differences, block by block.

    Parameters
    ----------
    resid : 2-D `~numpy.ndarray`
        The frame less its sky.
    excluded : 2-D `~numpy.ndarray` of bool
        The pixels to leave out (unusable, or a source's).
    step : int, optional
        Take every ``step``-th block row and column (default 1: all).

    Returns
    -------
    diff : `~numpy.ndarray`
        In the blocks of `_blocks`, the differences of pixels two columns
        apart (a smooth sky cancels; neighbours, whose noise a resampled
        frame correlates, are not paired) over ``sqrt(2)``, so that white
        noise of ``sigma`` gives differences of ``sigma``; NaN where
        either pixel is excluded. Shaped ``(by, NEAR_BLOCK, bx,
        NEAR_BLOCK - 2)``.
    """
    values = np.where(_blocks(excluded, step), np.nan, _blocks(resid, step))
    return (values[..., 2:] - values[..., :-2]) / math.sqrt(2.0)


def _block_scatter(diff):
    """The clipped scatter of each block's differences (``diff`` shaped
    ``(by, rows, bx, columns)``, `_block_differences`; NaN for a block
    with fewer than a quarter of them finite), their number and whether
    the block had enough, all ``(by, bx)``."""
    by, bx = diff.shape[0], diff.shape[2]
    rows = diff.transpose(0, 2, 1, 3).reshape(by * bx,
                                              diff.shape[1] * diff.shape[3])
    pairs = np.count_nonzero(np.isfinite(rows), axis=1)
    ok = pairs >= rows.shape[1] // 4
    std = np.full(rows.shape[0], np.nan)
    if ok.any():
        std[ok] = row_statistics(rows[ok], 'sigma_clip', CLIP_SIGMA,
                                 CLIP_MAXITERS)[1]
    return (std.reshape(by, bx), pairs.reshape(by, bx).astype(float),
            ok.reshape(by, bx))


def _check_local_noise(local_noise, shape):
    """``(local_noise, shape)`` of `ApertureNoise` checked: a 2-D array of
    finite values of at least 1 whose `NEAR_BLOCK` blocks fit the frame
    ``shape`` (a tuple of two positive whole numbers), or both None."""
    if local_noise is None:
        if shape is not None:
            shape = tuple(positive_integer(n, 'shape') for n in shape)
        return None, shape
    if shape is None:
        raise ValueError('local_noise needs shape, the shape of the frame '
                         'it was measured on')
    shape = tuple(positive_integer(n, 'shape') for n in shape)
    ratio = np.array(local_noise, dtype=float)
    blocks = tuple(n // NEAR_BLOCK for n in shape)
    if len(shape) != 2 or ratio.shape != blocks:
        raise ValueError(f'local_noise must hold the {blocks} blocks of '
                         f'{NEAR_BLOCK} pixels of a frame of shape {shape}, '
                         f'got shape {ratio.shape}')
    if not np.all(np.isfinite(ratio) & (ratio >= 1.0)):
        raise ValueError('local_noise must be finite and at least 1')
    return ratio, shape


def _check_local_level(local_level, shape):
    """``local_level`` of `ApertureNoise` checked: None, or a 2-D array
    of finite values holding the `NEAR_BLOCK` blocks of a frame of
    ``shape`` (required with it)."""
    if local_level is None:
        return None
    if shape is None:
        raise ValueError('local_level needs shape, the shape of the frame '
                         'it was measured on')
    level = np.array(local_level, dtype=float)
    blocks = tuple(n // NEAR_BLOCK for n in shape)
    if level.shape != blocks:
        raise ValueError(f'local_level must hold the {blocks} blocks of '
                         f'{NEAR_BLOCK} pixels of a frame of shape {shape}, '
                         f'got shape {level.shape}')
    if not np.all(np.isfinite(level)):
        raise ValueError('local_level must be finite')
    return level


def _pair_residual(resid, bad, route, local=None):
    """``resid`` for `pair_covariance`: on the annulus route less the
    blank sky's quadratic trend where it is significant (`trend_surface`;
    the annuli follow it, it is no noise of their sums); with ``local``
    (the `ApertureNoise.local_noise` blocks the blank sums were divided
    by, `_sums_over_local`) over that ratio at every pixel where it is
    above 1, as the sums."""
    if local is not None and np.any(local > 1.0):
        ratio = _block_image(local, resid.shape)
        return np.where(ratio > 1.0 + 1e-9, resid / ratio, resid)
    if route != 'annulus':
        return resid
    trend = trend_surface(resid, bad)
    return resid if trend is None else resid - trend_image(trend[0],
                                                            resid.shape)


def _check_pair_covariance(covariance):
    """``pair_covariance`` of `ApertureNoise` checked: None, or a finite
    square 2-D array of an odd side."""
    if covariance is None:
        return None
    cov = np.array(covariance, dtype=float)
    if (cov.ndim != 2 or cov.shape[0] != cov.shape[1]
            or cov.shape[0] % 2 != 1):
        raise ValueError('pair_covariance must be a square 2-D array of an '
                         f'odd side (lag 0 at its centre), got shape '
                         f'{cov.shape}')
    if not np.all(np.isfinite(cov)):
        raise ValueError('pair_covariance must be finite')
    return cov


def _check_sizes(sizes, shape):
    if sizes is None:
        return [s for s in DEFAULT_SIZES if s <= min(shape) // 4]
    values = [positive_integer(s, 'sizes') for s in np.atleast_1d(sizes)]
    sizes = sorted(set(values))
    if len(sizes) < 2:
        raise ValueError('sizes must hold at least two different sides, '
                         f'got {values}')
    if max(sizes) > min(shape):
        raise ValueError(f'sizes: {max(sizes)} exceeds the frame '
                         f'{shape}')
    return sizes


def _check_n_apertures(n_apertures, shape):
    """``n_apertures`` checked: a count of at least `MIN_APERTURES`, at
    most the pixels of the frame of ``shape`` (no two apertures of a size
    share a position)."""
    if n_apertures is None:
        return DEFAULT_N_APERTURES
    n = positive_integer(n_apertures, 'n_apertures',
                         maximum=math.prod(shape),
                         bound_note=f'the pixels of the {shape} frame')
    if n < MIN_APERTURES:
        raise ValueError(f'n_apertures must be a whole number of at least '
                         f'{MIN_APERTURES} (a scatter needs them), got '
                         f'{n_apertures!r}')
    return n


def _blank_corners(bad, side, n_ap, rng):
    """Corners ``(y0, x0)`` of up to ``n_ap`` random ``side``-square boxes
    free of bad pixels (summed-area table; no two identical positions)."""
    ny, nx = bad.shape
    cum_bad = _integral(bad.astype(np.int64))
    n_try = 30 * n_ap
    y0 = rng.integers(0, ny - side + 1, n_try)
    x0 = rng.integers(0, nx - side + 1, n_try)
    key = np.unique(y0 * nx + x0, return_index=True)[1]
    y0, x0 = y0[np.sort(key)], x0[np.sort(key)]
    ok = _box_sum(cum_bad, y0, x0, side) == 0
    return y0[ok][:n_ap], x0[ok][:n_ap]


def _blank_sums(resid, bad, side, n_ap, rng):
    """Sums of up to ``n_ap`` random ``side``-square apertures free of bad
    pixels."""
    y0, x0 = _blank_corners(bad, side, n_ap, rng)
    return _box_sum(_integral(np.where(bad, 0.0, resid)), y0, x0, side)


def _integral(a):
    out = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=a.dtype)
    np.cumsum(np.cumsum(a, axis=0), axis=1, out=out[1:, 1:])
    return out


def _box_sum(cum, y0, x0, side):
    y1, x1 = y0 + side, x0 + side
    return cum[y1, x1] - cum[y0, x1] - cum[y1, x0] + cum[y0, x0]


def _covered_apertures(shape, y0, x0, side):
    """The area the boxes cover together, in boxes: how many independent
    boxes their scatter is worth (overlapping boxes share their noise)."""
    if y0.size == 0:
        return 0.0
    edges = np.zeros((shape[0] + 1, shape[1] + 1), dtype=np.int32)
    for dy, dx, step in ((0, 0, 1), (side, 0, -1), (0, side, -1),
                         (side, side, 1)):
        np.add.at(edges, (y0 + dy, x0 + dx), step)
    cover = np.cumsum(np.cumsum(edges, axis=0), axis=1)
    return float(np.count_nonzero(cover)) / (side * side)


def _robust_std(values):
    """The 3-sigma clipped standard deviation of ``values`` (corrected for
    the clipping, as a sky's): robust to the odd source left in a blank
    aperture, and not quantised on integer data as a median absolute
    deviation is."""
    rows = np.array(values, dtype=float, ndmin=2)
    return float(row_statistics(rows, 'sigma_clip', CLIP_SIGMA,
                                CLIP_MAXITERS)[1][0])


def _fit(n_pix, sigma, sigma_err, sigma1):
    """Weighted least squares of ``log sigma = log(sigma1 alpha) + beta log
    N``; returns ``alpha, beta``."""
    x = np.log(n_pix)
    y = np.log(sigma / sigma1)
    w = (sigma / sigma_err) ** 2
    a = np.vstack([np.ones_like(x), x]).T * np.sqrt(w)[:, None]
    coef = np.linalg.lstsq(a, y * np.sqrt(w), rcond=None)[0]
    return math.exp(coef[0]), float(coef[1])


def check_noise(noise, frame, apertures=(), sky=None):
    """
    Validate ``noise=`` of `measure`/`photometer`; without it run the cheap
    correlated-noise check (also on a frame with an uncertainty: per-pixel
    variances hold no covariance). With it, warn about each of
    ``apertures`` too thin for the model (`warn_thin_aperture`) and about
    a model measured on a sky of another pixel noise than ``sky``'s
    (`warn_other_noise`).
    """
    if noise is None:
        warn_if_correlated(frame)
        return
    if not isinstance(noise, ApertureNoise):
        raise TypeError('noise must be an ApertureNoise (from '
                        'ApertureNoise.from_blank_apertures) or None, got '
                        f'{type(noise).__name__}')
    for aperture in apertures:
        warn_thin_aperture(noise, aperture, frame.shape)
    if sky is not None:
        warn_other_noise(noise, sky)
    if (noise.local_noise is not None and np.any(noise.local_noise > 1.0)
            and noise.shape != tuple(frame.shape)):
        warnings.warn(
            f'noise was measured on a frame of shape {noise.shape}, whose '
            f'sky is noisier in places, but this frame is {frame.shape}: '
            'the sky terms are not scaled by the local pixel noise, and '
            'are too small where the sky is noisier; measure the model on '
            'this frame', AstropyUserWarning, stacklevel=3)


#: A model is warned about when the pixel noise of the sky it was
#: measured against and that of the sky it is used with differ by more
#: than this factor (either way).
OTHER_NOISE_FACTOR = 1.25


def warn_other_noise(noise, sky):
    """
    Warn (`~astropy.utils.exceptions.AstropyUserWarning`) when ``noise``
    was measured against a sky whose pixel noise (the median of its
    ``std``, ``noise.meta['sky_std']``) differs from ``sky``'s by more than
    `OTHER_NOISE_FACTOR`: a model of another frame (another exposure, a
    frame in other units or scaled) gives sky terms off by that ratio
    squared.
    """
    measured = noise.meta.get('sky_std')
    if measured is None or not np.isfinite(sky.pixel_std):
        return
    ratio = sky.pixel_std / measured
    if not (1.0 / OTHER_NOISE_FACTOR <= ratio <= OTHER_NOISE_FACTOR):
        warnings.warn(
            f'noise was measured against a sky of pixel noise {measured:.4g}'
            f' but this sky\'s is {ratio * measured:.4g} ({ratio:.3g} times):'
            ' a model of another frame (or of this frame in other units) '
            'scales the sky terms wrongly; measure it with '
            'ApertureNoise.from_blank_apertures(data, sky) on this frame',
            AstropyUserWarning, stacklevel=3)


def aperture_extent(weights):
    """
    The width and length (pixels) of an aperture's pixel ``weights``: the
    length ``sqrt(12 lambda)`` of the largest eigenvalue ``lambda`` of
    their second moments (a uniform ``w x L`` box: ``L``, for ``L >= w``;
    a circle of radius r: ``sqrt(3) r``), the width their sum (the area)
    over the length (the box: ``w``; the circle: ``1.81 r``).
    """
    w = np.asarray(weights, dtype=float)
    area = float(w.sum())
    yy, xx = np.indices(w.shape, dtype=float)
    cy, cx = float((w * yy).sum()) / area, float((w * xx).sum()) / area
    dy, dx = yy - cy, xx - cx
    cov = np.array([[(w * dy * dy).sum(), (w * dy * dx).sum()],
                    [(w * dy * dx).sum(), (w * dx * dx).sum()]]) / area
    length = math.sqrt(12.0 * (float(np.linalg.eigvalsh(cov)[-1]) + 1 / 12))
    return area / length, length


def thin_factor(noise, width, length):
    """
    How far ``noise``'s sky term of an aperture ``width`` x ``length``
    pixels over-predicts its noise (the ratio of sigmas, at most 1): the
    model holds the covariance of a compact aperture of as many pixels,
    ``R(w L)`` (`ApertureNoise.variance_ratio`); a thin one holds, for a
    covariance separable in x and y, ``sqrt(R(w**2) R(L**2))``. On
    drizzled mosaics it gives 0.85 for 1 x 40 boxes (their blank sums
    scatter 0.76-0.84 of the prediction) and 0.94-0.97 for 2 x 30 (0.99-
    1.03). 1 for a white model.
    """
    r = noise.variance_ratio(np.array([width * length, width ** 2,
                                       length ** 2]))
    return float(min(math.sqrt(math.sqrt(r[1] * r[2]) / r[0]), 1.0))


def warn_thin_aperture(noise, aperture, shape):
    """
    Warn (`~astropy.utils.exceptions.AstropyUserWarning`, naming the
    aperture) when an aperture is so thin that ``noise``, measured with
    square blank apertures, over-predicts its sky term by more than
    `THIN_FACTOR` (`thin_factor`; only correlated noise): a thin aperture
    holds less of the pixels' covariance than a compact one of as many
    pixels, and its error bars are too large. The aperture's first
    position wholly on the frame (of its first 10) is measured.
    """
    from ..aperture.utils import aperture_weights, n_positions

    if not np.any(noise.variance_ratio(noise.n_pix) != 1.0):
        return  # white: the sky term does not depend on the shape
    for index in range(min(n_positions(aperture), 10)):
        slc, weights, truncated = aperture_weights(aperture, shape,
                                                   index=index)
        if slc is not None and not truncated:
            break
    else:
        return
    width, length = aperture_extent(weights)
    factor = thin_factor(noise, width, length)
    if factor < THIN_FACTOR:
        warnings.warn(
            f'{type(aperture).__name__} of {width:.1f} x {length:.1f} '
            'pixels is much thinner than the square blank apertures the '
            'correlated noise model was measured with: it holds less of '
            'the pixels\' covariance, and its sky term is about '
            f'{1.0 / factor:.2f} times too large (error bars too large; '
            'measure blank apertures of its shape for exact errors)',
            AstropyUserWarning, stacklevel=3)


def noise_variance(noise, n_pix, noise_pix=None, local=None):
    """
    The ``sky`` term of an `ApertureNoise` (`ApertureNoise.variance`), the
    same bits for one aperture or an array of them, times the square of
    ``local`` (`ApertureNoise.local_ratio` at the apertures; None: 1)
    where it is above 1; warns
    (`~astropy.utils.exceptions.AstropyUserWarning`) when an aperture is
    larger than the largest blank aperture measured, saying how far the
    model was extrapolated.
    """
    _warn_extrapolated(noise, n_pix, noise.correlated, 'the sky term')
    if noise_pix is None:
        sigma = noise._sigma(n_pix)
        var = sigma * sigma
    else:
        var = noise.variance(n_pix, noise_pix)
    if local is None or not np.any(np.asarray(local) > 1.0):
        return var
    local = np.asarray(local, dtype=float)
    out = np.where(local > 1.0, var * local * local, var)
    return float(out) if out.ndim == 0 else out


def _warn_extrapolated(noise, n_pix, correlated, what, arrays=False):
    """Warn when an aperture is larger than the largest blank aperture
    measured and the model is not white there, saying how far."""
    n = np.asarray(n_pix, dtype=float)
    far = float(np.nanmax(n, initial=0.0)) / noise.n_max
    if far > 1.0 and correlated:
        warnings.warn(
            f'aperture noise extrapolated: apertures of up to '
            f'{np.nanmax(n):.0f} pixels, {far:.1f} times the largest blank '
            f'aperture measured ({noise.n_max:.0f} pixels); {what} '
            f'{noise.extrapolation(np.nanmax(n), arrays=arrays)}',
            AstropyUserWarning, stacklevel=3)


def noise_ratios(noise, frame, n_pix):
    """
    The correlation ratios ``noise=`` applies to a frame's variance arrays:
    ``(ratio, source_ratio)`` per row, `ApertureNoise.variance_ratio` of
    the apertures' pixel counts for the background arrays; for the
    photon-noise array's source share, where neighbouring pixels' noise is
    correlated (`~ccdphot_ext.background.noisecheck.is_correlated`: a
    resampled frame, whose resampling correlates the source's photon noise
    as it does the sky's), the ratio of an aperture twice as wide (four
    times the pixels, at most the largest blank aperture): a star's photon
    noise lies well inside its aperture, where a pixel's covariance with
    its neighbours is whole, as for the inner pixels of a larger aperture;
    else 1. Warns, as `noise_variance`, when the ratio is extrapolated.
    """
    ratio = np.atleast_1d(np.asarray(noise.variance_ratio(n_pix), float))
    white = bool(np.all(ratio == 1.0))
    _warn_extrapolated(noise, n_pix, not white, 'the correlation ratio',
                       arrays=noise.array_ratio is not None)
    if white or not is_correlated(
            *pixel_correlation(frame.data, mask=frame.mask)):
        return ratio, np.ones(ratio.shape)
    inner = noise.variance_ratio(np.minimum(
        4.0 * np.atleast_1d(np.asarray(n_pix, float)), noise.n_max))
    return ratio, np.maximum(ratio, inner)


def noise_level_scale(noise, sky):
    """
    The factor by which the noise model inflates the error of ``sky``'s
    level (`ApertureNoise.level_scale` of the pixels behind it); warns
    (`~astropy.utils.exceptions.AstropyUserWarning`) when the model was
    measured against another route than ``sky``'s, or without the blank
    sky's large-scale trend (`ApertureNoise.trend_removed`) for a
    whole-frame sky without a background variation map (whose rows that
    trend biases are not flagged).
    """
    route = sky_route(sky)
    if route != noise.route:
        effect = {('global', 'annulus'): 'over-predicts',
                  ('global', 'map'): 'over-predicts',
                  ('annulus', 'global'): 'under-predicts',
                  ('map', 'global'): 'under-predicts'}.get(
                      (noise.route, route), 'mis-predicts')
        if noise.trend_removed:  # (no gradient; other structure, maybe)
            effect = 'mis-predicts'
        warnings.warn(
            f'noise was measured against the {noise.route} sky but the '
            f'photometry uses the {route} sky: the model {effect} the noise '
            'where the background varies on large scales; measure it with '
            'ApertureNoise.from_blank_apertures(data, sky) with this sky',
            AstropyUserWarning, stacklevel=3)
    elif (route == 'global' and noise.trend_removed
          and getattr(sky, 'background_variation', None) is None):
        warnings.warn(
            'noise was measured without the blank sky\'s large-scale trend '
            '(ApertureNoise.trend_removed), which biases each flux by its '
            'position, but this whole-frame sky has no background variation '
            'map to flag the rows it biases (flag 32): their error bars '
            'leave that bias out; use the SkyEstimate.from_image result of '
            'this frame, or a local sky', AstropyUserWarning, stacklevel=3)
    return sky_level_scale(noise, sky)


def sky_level_scale(noise, sky):
    """
    The factor by which the noise model inflates the error of ``sky``'s
    level: `ApertureNoise.level_scale` of the pixels behind it, over the
    factor the level's error already holds for the frame's correlated
    noise (``sky.meta['noise_correlation_factor']``, a whole-frame sky of
    a frame whose neighbouring pixels are correlated), which the model
    replaces; for a model measured on ``sky``'s route whose blank sums
    scatter less than the levels' share, lowered as that share was
    (``meta['level_share_scale']``, `_lowered_share`).
    """
    route = sky_route(sky)
    # the levels' share the model lowered (`_lowered_share`), on its route
    lowered = (noise.meta.get('level_share_scale', 1.0)
               if route == noise.route else 1.0)
    if sky.meta.get('map_miss') is not None:
        # the map's error was measured on the blank sky's means about it
        # (`~ccdphot_ext.background.maps.checked_map_error`): it holds the
        # pixels' correlation on the mesh scale already
        return lowered
    n_sky = np.nanmedian(np.atleast_1d(np.asarray(sky.n_pix, dtype=float)))
    held = sky.meta.get('noise_correlation_factor', 1.0)
    scale = float(noise.level_scale(n_sky)) / math.sqrt(held)
    if noise.route == 'map' and route == 'map':
        scale = estimator_level_scale(scale, sky.efficiency)
    return scale * lowered


def estimator_level_scale(scale, efficiency):
    """
    The factor correlated noise inflates the error of a level read by an
    estimator of ``efficiency`` ``k`` (its white-noise error ``k`` times
    the mean's), from the factor ``scale`` it inflates a plain mean's.

    The estimator is the mean plus its excess over the mean (a median's
    or a mode's ``2.5 median - 1.5 mean`` less the mean), which is
    uncorrelated with the mean and carries ``k**2 - 1`` of the white
    variance. Correlated noise moves the mean (by ``scale``) and, with it,
    the whole sample: the excess, a matter of each pixel's place in the
    sample's shape (for Gaussian noise of correlation ``rho`` between two
    pixels, their excesses covary by ``arcsin(rho) - rho``, ``rho**3 /
    6`` for small ``rho``), stays white. So the factor is
    ``sqrt(1 + (scale**2 - 1) / k**2)``: 1.26 rather than 1.91 for Source
    Extractor's mode (``k = 2.14``) on a drizzled mosaic whose 32 x 32
    pixel mean scatters 1.9 times as white noise's.

    Parameters
    ----------
    scale : float
        The factor for the mean of the level's pixels (at least 1 where
        the noise is correlated).
    efficiency : float
        ``k``, at least 1.

    Returns
    -------
    scale : float
        The factor for the estimator (``scale`` itself for ``k = 1`` or
        ``scale <= 1``).
    """
    k = max(float(efficiency), 1.0)
    if not scale > 1.0:
        return scale
    return math.sqrt(1.0 + (scale * scale - 1.0) / (k * k))


def _frame_mask(frame):
    return (np.zeros(frame.shape, dtype=bool) if frame.mask is None
            else frame.mask)


def _blank_residual(frame, sky, mask, route):
    """The sky-subtracted frame, ``sigma1`` and the pixels apertures must
    avoid (bad or masked; the caller adds the sources)."""
    resid = _residual(frame, sky, route)
    sigma1 = sky.pixel_std
    if not sigma1 > 0:
        raise ValueError('sky.std must be positive to scale the noise')
    bad = ~np.isfinite(resid)
    if frame.mask is not None:
        bad |= frame.mask
    if bad.all():
        raise ValueError('data has no finite, unmasked pixel: no blank '
                         'sky to place apertures on')
    return resid, sigma1, bad


def _map_error_integral(sky, bad):
    """The summed-area table of a sky map's level error
    (``sky.error_on_mean``, 0 on ``bad`` pixels), for the map's share of
    each blank sum; None when the map has no error."""
    error = getattr(sky, 'error_on_mean', None)
    if error is None:
        return None
    error = np.broadcast_to(np.asarray(error, dtype=float), bad.shape)
    if not np.any(error > 0):
        return None
    return _integral(np.where(bad | ~np.isfinite(error), 0.0, error))


def _check_map_std(resid, sky, bad, meta):
    """Record the robust scatter of the blank pixels against a sky map in
    units of its ``std`` (``meta['map_std_ratio']``, 1 for a map whose
    ``std`` is the pixels' noise) and warn
    (`~astropy.utils.exceptions.AstropyUserWarning`) when it is further
    from 1 than `MAP_STD_TOLERANCE`: the map's ``error_on_mean`` was read
    from that ``std``, so the ``sky_mean`` term is doubtful."""
    std = np.broadcast_to(np.asarray(sky.std, dtype=float), resid.shape)
    use = ~bad & np.isfinite(std) & (std > 0)
    if np.count_nonzero(use) < MIN_APERTURES:
        return
    z = resid[use] / std[use]
    ratio = _robust_std(z[::max(z.size // 200_000, 1)])
    meta['map_std_ratio'] = ratio
    if abs(ratio - 1.0) > MAP_STD_TOLERANCE:
        meta['map_std_note'] = (
            f'the blank pixels scatter {ratio:.3g} times the sky map\'s '
            'std about it: the map\'s level error (error_on_mean), read '
            'from that std, is doubtful, and with it the sky_mean term of '
            'photometry against this map (the sky term, measured on the '
            'blank apertures, is not)')
        warnings.warn(meta['map_std_note'], AstropyUserWarning, stacklevel=3)


def _array_variance_integral(frame, bad):
    """The summed-area table of the frame's variance arrays but
    `FLAT_ARRAY` (0 on ``bad`` pixels), for each blank sum's own variance;
    None for a frame without variance arrays."""
    arrays = frame.variance_arrays or {}
    noise = [v for name, v in arrays.items() if name != FLAT_ARRAY]
    if not noise:
        return None
    total = np.sum([np.asarray(v, dtype=float) for v in noise], axis=0)
    return _integral(np.where(bad | ~np.isfinite(total), 0.0, total))


def _blank_sky(data, frame, sky, mask, route):
    """The sky-subtracted frame, ``sigma1``, the pixels blank apertures
    must avoid (bad, masked, sources and sharp pixels) and the pixels a
    photometry annulus would not use (bad or masked, sources included)."""
    resid, sigma1, bad = _blank_residual(frame, sky, mask, route)
    unusable = ~np.isfinite(resid)
    if mask is not None:
        unusable |= _frame_mask(as_frame(data))
    elif frame.mask is not None:
        unusable |= frame.mask
    bright, faint = _source_cores(resid, sigma1, unusable)
    # (hits are no sky, whatever the mask)
    bad |= _sharp_pixels(resid, sigma1, unusable) | (
        _grown(bright, faint) if mask is None else False)
    return resid, sigma1, bad, unusable


def _level_shares(cls, sky, sigma1, sizes, points, annuli, map_cum, meta):
    """The annulus route's ``level_factor`` and the factor the sky level's
    own share of the blank sums is taken out at (the map's or the
    annuli's; None for one whole-frame level), recorded in ``meta``."""
    level_factor = share_factor = None
    if map_cum is not None:
        # the map's own error in the blank sums is the photometry's
        # sky_mean term: left out of the noise, as the annulus levels'
        # share, at the factor the photometry inflates it by
        share_factor = _map_share_factor(cls, sky, sigma1, sizes, points)
        meta['map_level_scale'] = share_factor
        meta['map_error_removed'] = True
    if annuli is not None:
        level_factor = share_factor = annuli.level_factor(points)
        meta.update(annuli.meta)
        meta['level_factor'] = level_factor
    return level_factor, share_factor


def _source_noise(frame, resid, sigma1, bad, unusable, points, meta):
    """The local noise and level maps around the masked sources
    (`local_noise_map`, `local_level_map`; None where the sources leave
    no room), with ``meta['noise_near_sources']``; warns
    (`~astropy.utils.exceptions.AstropyUserWarning`) when the pixel noise
    among the sources exceeds the blank sky's by more than `NEAR_LIMIT`."""
    cores = _local_cores(resid, sigma1, unusable)
    near = noise_near_sources(resid, unusable, bad & ~unusable, cores)
    meta['noise_near_sources'] = near
    local = local_noise_map(
        resid, unusable, cores,
        [p['centres'] for p in points if p['sums'].size >= MIN_APERTURES])
    level = (None if local is None
             else local_level_map(frame.data, unusable, cores))
    if near is not None and near > NEAR_LIMIT:
        meta['noise_near_sources_note'] = (
            f'the pixel noise among the masked sources is {near:.2g} '
            'times that of the blank sky the model was measured on (a '
            'cluster or a galaxy whose unresolved light adds noise, or '
            'an uneven depth): photometry with this model scales the '
            'sky term of an aperture where the local pixel noise is '
            'significantly higher by that ratio squared '
            '(ApertureNoise.local_ratio, in blocks of '
            f'{NEAR_BLOCK} pixels); measured with a mask that leaves '
            'blank sky among the sources, the model itself holds it')
        warnings.warn(meta['noise_near_sources_note'],
                      AstropyUserWarning, stacklevel=3)
    return local, level


def _sums_over_local(points, local, meta):
    """Divide the blank sums of ``points`` in place by the local noise
    ratio at their centres (`block_values` of ``local``, the
    `ApertureNoise.local_noise` blocks; at least 1), and record the share
    of the apertures so divided (``meta['blank_local_share']``; nothing
    without ``local``).

    The photometry scales the sky term of an aperture by that ratio
    squared (`ApertureNoise.local_ratio`), so the model is the noise where
    the ratio is 1: blank sums taken whole in the noisier blocks among
    the sources counted their extra noise twice, in the model and in the
    scaling (astropy's M13, whole-frame level: blank boxes where the
    ratio is 1 scattered 0.86 of the model, a third of them lie where it
    is higher). Whole-frame route only: the levels of the other routes
    carry errors of their own in the sums, which the ratio does not
    scale."""
    if local is None:
        return
    divided = total = 0
    for p in points:
        if not p['sums'].size:
            continue
        ratio = block_values(local, *p['centres'])
        ratio = np.where(ratio > 1.0 + 1e-9, ratio, 1.0)
        p['sums'] = p['sums'] / ratio
        divided += int(np.count_nonzero(ratio > 1.0))
        total += ratio.size
    meta['blank_local_share'] = round(divided / max(total, 1), 4)


def block_values(blocks, y, x):
    """
    Values of `NEAR_BLOCK` blocks (``local_noise``, ``local_level``)
    interpolated at pixel positions ``(y, x)``: bilinearly between the
    block centres (the first at pixel 7.5), the edge blocks' values
    beyond them.
    """
    from scipy.ndimage import map_coordinates

    y, x = np.broadcast_arrays(np.asarray(y, dtype=float),
                               np.asarray(x, dtype=float))
    half = (NEAR_BLOCK - 1) / 2.0
    return map_coordinates(blocks, [np.ravel(y - half) / NEAR_BLOCK,
                                    np.ravel(x - half) / NEAR_BLOCK],
                           order=1, mode='nearest').reshape(y.shape)


def _block_image(blocks, shape):
    """`block_values` at every pixel of a frame of ``shape`` (bilinear
    interpolation is separable: along the rows, then the columns)."""
    half = (NEAR_BLOCK - 1) / 2.0
    by, bx = blocks.shape
    gy, gx = ((np.arange(n) - half) / NEAR_BLOCK for n in shape)
    cols = np.array([np.interp(gy, np.arange(by), blocks[:, j])
                     for j in range(bx)])
    return np.array([np.interp(gx, np.arange(bx), row) for row in cols.T])


def _blank_point(resid, bad, side, n_ap, rng, annuli, var_cum=None,
                 map_cum=None, trend_cum=None):
    """One size's blank apertures: their sums (against their annuli on the
    annulus route), the independent count, on the annulus route the
    white-noise variance of their levels and their two half-levels, on
    the map route (``map_cum``, `_map_error_integral`) the variance of the
    map's level over each aperture, with ``var_cum``
    (`_array_variance_integral`) each sum's variance from the arrays, and
    with ``trend_cum`` (the summed-area table of the trend ``resid`` is
    less) the share of the trend the sums carry (`_trend_carried`: the
    sums are then less that share only)."""
    y0, x0 = _blank_corners(bad, side, n_ap, rng)
    sums = _box_sum(_integral(np.where(bad, 0.0, resid)), y0, x0, side)
    point = {'side': side, 'sums': sums, 'level_var': 0.0, 'halves': None}
    if trend_cum is not None:
        trend = _box_sum(trend_cum, y0, x0, side)
        carried = _trend_carried(sums + trend, trend)
        point['sums'] = sums = sums + (1.0 - carried) * trend
        point['trend_carried'] = carried
    if var_cum is not None:
        point['var_sums'] = _box_sum(var_cum, y0, x0, side)
        point['level_z'] = 0.0
    if map_cum is not None and sums.size:
        # the map's error over the aperture, taken as fully correlated
        # there (as the photometry's sky_mean term takes it)
        error = _box_sum(map_cum, y0, x0, side) / (side * side)
        # each blank sum its own share, as each row's sky_mean term
        point['level_errors'] = error
        if var_cum is not None:
            with np.errstate(invalid='ignore', divide='ignore'):
                share = (side * side * error) ** 2 / point['var_sums']
            good = np.isfinite(share)
            point['level_z'] = (float(np.mean(share[good])) if good.any()
                                else 0.0)
    if annuli is not None:
        keep, level, error_on_mean, halves = annuli.levels(side, y0, x0)
        y0, x0 = y0[keep], x0[keep]
        point['sums'] = sums[keep] - side * side * level
        point['level_var'] = (float(np.mean(error_on_mean ** 2))
                              if error_on_mean.size else 0.0)
        # each blank annulus' own white error: the photometry's sky_mean
        # term of an aperture is its own annulus' (annulus_level_variance)
        point['level_errors'] = error_on_mean
        point['cut'] = annuli.cut
        point['halves'] = halves
        if var_cum is not None:
            var_sums = point['var_sums'] = point['var_sums'][keep]
            with np.errstate(invalid='ignore', divide='ignore'):
                share = (side * side * error_on_mean) ** 2 / var_sums
            good = np.isfinite(share)
            point['level_z'] = (float(np.mean(share[good])) if good.any()
                                else 0.0)
            point['level_zs'] = share
    half = (side - 1) / 2.0
    point['centres'] = (y0 + half, x0 + half)
    point['n_eff'] = min(float(y0.size),
                         _covered_apertures(bad.shape, y0, x0, side))
    return point


def _trend_given_back(sig, n_pix, points, share, meta):
    """The scatter ``sig`` of the blank sums at ``n_pix`` (those of the
    ``points`` with enough apertures) with the noise the trend's terms
    took out of them given back (``share`` per pixel, `trend_surface`;
    of the share of the trend they carry, ``meta['trend_carried']``,
    recorded here)."""
    carried = np.array([p['trend_carried'] for p in points
                        if p['sums'].size >= MIN_APERTURES])
    meta['trend_carried'] = [round(float(b), 4) for b in carried]
    return np.sqrt(sig * sig + n_pix * n_pix * share * carried * carried)


def _trend_carried(sums, trend):
    """
    The share of the blank sky's large-scale trend that blank sums carry.

    The slope of the sums (against the whole-frame level, trend and all)
    on the trend's own sums over the same apertures (least squares, sums
    off the line by more than `CLIP_SIGMA` of their clipped scatter left
    out, as in the scatter itself), at most 1 and at least 0 (1 where the
    trend does not vary over the apertures). A quadratic surface fitted
    to the blank blocks can overshoot the background where the apertures
    of a size fit: on astropy's M13 frame, whose cluster glow is peaked
    (no quadratic), the blank sums of 7 to 15 pixels a side carry 0.80-0.82
    of it (the smallest ones 0.91-1.0); sky gradients are carried whole
    (ccdproc's SAAO frame 0.94-1.0). The term the photometry adds for the
    trend (``sky_offset``) is that share of it, and the noise is the sums'
    scatter about it: with the whole trend, the part of it the sums do
    not carry was counted twice, in the term and, with the opposite sign,
    in their scatter about it (all rows of M13's blank sums scattered 0.84
    and 0.83 times their errors at 7 and 11 pixels). Where the sums carry
    more than the surface, the rest stays in their scatter (noise at every
    aperture). Where the trend hardly varies over the apertures against
    their noise (the smallest ones, a gentle gradient: single tilted
    frames read down to 0.55 at one pixel) the share is noisy, but the
    term it scales is small there.

    Parameters
    ----------
    sums : 1-D `~numpy.ndarray`
        The blank sums against the level (the trend in them).
    trend : 1-D `~numpy.ndarray`
        The trend's sums over the same apertures.

    Returns
    -------
    share : float
        In ``[0, 1]``.
    """
    keep = np.ones(trend.shape, dtype=bool)
    share = 1.0
    for _ in range(CLIP_MAXITERS):
        if np.count_nonzero(keep) < MIN_APERTURES:
            break
        t = trend[keep] - np.mean(trend[keep])
        spread = float(np.sum(t * t))
        if not spread > 0:
            break
        share = float(np.sum(t * sums[keep])) / spread
        off = sums - share * trend
        off = off - np.mean(off[keep])
        again = np.abs(off) <= CLIP_SIGMA * _robust_std(off)
        if np.array_equal(again, keep):
            break
        keep = again
    return min(max(share, 0.0), 1.0)


def _map_share_factor(cls, sky, sigma1, sizes, points):
    """The factor by which the photometry inflates the error of the sky
    map ``sky`` with the model the blank ``points`` give
    (`sky_level_scale`), so that the map's share taken out of the blank
    sums is the ``sky_mean`` term added back: read from the model
    measured with the map's error as given (factor 1), one pass."""
    n_pix, sig, sig_err, counts, n_eff, _ = _size_scatter(
        sizes, points, 1.0, lower=False)
    alpha, beta = _fit(n_pix, sig, sig_err, sigma1)
    trial = cls(sigma1, alpha, beta, n_pix=n_pix, sigma=sig,
                sigma_err=sig_err, n_apertures=counts, n_independent=n_eff,
                route='map')
    return sky_level_scale(trial, sky)


def _size_scatter(sizes, points, level_factor, lower=True):
    """Per aperture size with enough blank apertures: pixels, robust
    scatter of the sums (less the sky levels' share: the annuli's, or the
    map's error), its error, the count, the independent count, and the
    factor the levels' share was lowered by (`_lowered_share`; 1 where it
    was not, or without a share)."""
    keep = [p for p in points if p['sums'].size >= MIN_APERTURES]
    if len(keep) < 2:
        raise ValueError('data: not enough blank sky for apertures of '
                         'two sizes (mask too large or frame too small)')
    n_pix = np.array([p['side'] ** 2 for p in keep], dtype=float)
    sig = np.array([_robust_std(p['sums']) for p in keep])
    if not np.all(sig > 0):
        raise ValueError('data: the blank-sky aperture sums do not '
                         'scatter (a constant frame?), so no aperture '
                         'noise can be measured')
    counts = np.array([p['sums'].size for p in keep])
    n_eff = np.array([max(p['n_eff'], 1.0) for p in keep])
    sig_err = sig * CLIP_SPREAD / np.sqrt(n_eff)
    lowered = 1.0
    if level_factor is not None:
        # the sky level's share is the photometry's sky_mean term
        own = np.array([_own_share(p, n, level_factor)
                        for p, n in zip(keep, n_pix, strict=True)])
        floored = ~(own > OWN_FLOOR * sig ** 2)
        if floored.any() and lower:
            lowered = _lowered_share(keep, n_pix, sig, level_factor,
                                     floored)
            own = np.array([_own_share(p, n, level_factor, lowered)
                            for p, n in zip(keep, n_pix, strict=True)])
            _warn_level_share(n_pix[floored], level_factor, lowered)
        # (the bisections' last bits)
        own = np.maximum(own, OWN_FLOOR * sig ** 2)
        sig_err = sig_err * sig / np.sqrt(own)
        sig = np.sqrt(own)
    return n_pix, sig, sig_err, counts, n_eff, lowered


def _level_share(point, n_pix, level_factor, lowered=1.0):
    """Each blank sum's own sky level share: ``(n_pix k e)**2`` for the
    level error ``e`` over the aperture (an annulus' white error,
    `annulus_level_variance`, with its offset's share; the map's
    ``error_on_mean``) at the level factor ``k``, the level's part lowered
    by ``lowered`` (not the offset's, `annulus_offset_variance`, which the
    photometry adds whole)."""
    share = annulus_level_variance(n_pix, point['level_errors'],
                                   level_factor)
    if lowered != 1.0:
        white = annulus_level_variance(
            n_pix, point.get('white_errors', point['level_errors']),
            level_factor)
        share = share - (1.0 - lowered * lowered) * white
    return share


def _own_share(point, n_pix, level_factor, lowered=1.0):
    """The variance of one size's blank sums beyond each one's own sky
    level share (`_level_share`, `_own_variance`)."""
    return _own_variance(point['sums'], _level_share(
        point, n_pix, level_factor, lowered))


def _lowered_share(points, n_pix, sigma, level_factor, floored):
    """
    The factor (below 1) the sky levels' share of the blank sums is
    lowered by where it would take out more than ``1 - OWN_FLOOR`` of
    their variance at a size (``floored``).

    The blank sums against their local sky scatter by the aperture's own
    noise and the level's error together, and so do a star's: the
    photometry adds the level's share back as the ``sky_mean`` term. Where
    the level's error (a map's ``error_on_mean``, an annulus' white error
    times the level factor) exceeds what the sums scatter, that error is
    overestimated for these apertures (or the aperture's noise and its
    level's are correlated, a smooth frame: they partly cancel). Keeping
    `OWN_FLOOR` of the variance as the aperture's own noise and adding the
    level's full share back counted the level twice: astropy's NGC 1316
    scan against its Background2D map, whose level error makes up nearly
    the whole scatter of its blank sums, had its 11-pixel blank sums
    scatter 0.79 of their predicted error. The share is lowered, at every
    size, by the largest factor that leaves each size `OWN_FLOOR` of its
    variance as its own (bisection on the factor: the sums over the
    square root of that own variance plus their lowered shares scatter
    by 1), and the photometry's ``sky_mean`` term is lowered by the same
    factor (`sky_level_scale`): at each size the model and the term add
    up to the sums' scatter.
    """
    factor = 1.0
    for i in np.flatnonzero(floored):
        p, n = points[i], n_pix[i]
        own = OWN_FLOOR * sigma[i] ** 2

        def spread(f, p=p, n=n, own=own):
            with np.errstate(divide='ignore', invalid='ignore'):
                return _robust_std(p['sums'] / np.sqrt(
                    own + _level_share(p, n, level_factor, f)))

        lo, hi = 0.0, factor
        if spread(hi) >= 1.0:
            continue
        for _ in range(24):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if spread(mid) >= 1.0 else (lo, mid)
        factor = lo
    return factor


def annulus_level_variance(n_pix, white_error, level_factor):
    """
    The ``sky_mean`` term of an aperture of ``n_pix`` pixels whose annulus
    level has the white-noise error ``white_error`` (its estimator's
    efficiency times the annulus' ``std`` over the square root of its
    pixel count), under a noise model of annulus `level_factor` ``k``:
    ``(n_pix k white_error)**2``. `ApertureNoise.from_blank_apertures`
    takes it out of each blank aperture's sum, the photometry adds it
    back to each aperture (its ``error_on_mean`` over the frame's
    correlation factor, times `sky_level_scale`): the same quantity.
    """
    return (n_pix * level_factor * np.asarray(white_error, dtype=float)) ** 2


def annulus_offset_variance(n_pix, offset, offset_variance):
    """
    The variance an annulus off its aperture adds to the aperture's flux:
    ``n_pix**2 (g_x d_x**2 + g_y d_y**2)`` for an annulus whose usable
    pixels' centroid lies ``offset`` ``(d_x, d_y)`` pixels from the
    aperture's centre (cut by the frame's edge, a NaN border or a mask),
    under a noise model whose blank annuli measured ``(g_x, g_y)``
    (``meta['annulus_offset_variance']``, data unit squared per pixel
    squared: the square of the sky's gradient along each axis, as the
    blank annuli off their boxes read it).
    `ApertureNoise.from_blank_apertures` takes it out of each blank sum
    with the annulus' level share (`annulus_level_variance`), the
    photometry adds it back to each row (the ``sky_offset`` term,
    `annulus_offset_term`): the same quantity.

    Parameters
    ----------
    n_pix : float or array_like
        The apertures' pixel counts.
    offset : array_like
        ``(..., 2)``: the offsets along x and y (pixels; NaN counts 0).
    offset_variance : array_like
        ``(g_x, g_y)``.

    Returns
    -------
    variance : `~numpy.ndarray`
        Per aperture.
    """
    d = np.nan_to_num(np.asarray(offset, dtype=float))
    g = np.asarray(offset_variance, dtype=float)
    return np.asarray(n_pix, dtype=float) ** 2 * (
        g[0] * d[..., 0] ** 2 + g[1] * d[..., 1] ** 2)


def annulus_offset_term(sky, x, y, n_pix, noise):
    """
    The ``sky_offset`` term of the rows of an annulus sky
    (`annulus_offset_variance`): each row's annulus centroid
    (``sky.meta['annulus_centroid']``) off the row's centre, under the
    annulus model ``noise``.

    Parameters
    ----------
    sky : `~ccdphot_ext.SkyEstimate`
        One level per aperture (`~ccdphot_ext.SkyEstimate.from_annulus`).
    x, y, n_pix : float or array_like
        The rows' centres and pixel counts, one row per level (or one
        row).
    noise : `ApertureNoise` or None
        The noise model.

    Returns
    -------
    variance : `~numpy.ndarray` or None
        Per row; None without an annulus model that measured an offset
        variance, or without the annuli's centroids.
    """
    g = (None if noise is None or noise.route != 'annulus'
         else noise.meta.get('annulus_offset_variance'))
    centroid = sky.meta.get('annulus_centroid')
    if g is None or not np.any(np.asarray(g) > 0) or centroid is None:
        return None
    x, y, n_pix = np.broadcast_arrays(np.asarray(x, dtype=float),
                                      np.asarray(y, dtype=float),
                                      np.asarray(n_pix, dtype=float))
    centroid = np.asarray(centroid, dtype=float).reshape(-1, 2)
    if len(centroid) not in (1, x.size):
        return None
    row = np.arange(x.size) % len(centroid)
    offset = np.stack([centroid[row, 0].reshape(x.shape) - x,
                       centroid[row, 1].reshape(x.shape) - y], axis=-1)
    return annulus_offset_variance(n_pix, offset, g)


def _own_variance(values, share):
    """The variance ``v`` of the blank sums ``values`` beyond each one's
    own level ``share`` (both in the data unit squared): the one for which
    ``values / sqrt(v + share)`` scatter by 1 (robust), so that the model
    with each aperture's share added back predicts the sums' scatter; 0
    when the shares alone scatter them by less (the share is not
    measured)."""
    values = np.asarray(values, dtype=float)
    share = np.asarray(share, dtype=float)

    def spread(v):
        with np.errstate(divide='ignore', invalid='ignore'):
            return _robust_std(values / np.sqrt(v + share))

    return _spread_to_one(spread, _robust_std(values) ** 2)


def _spread_to_one(spread, start):
    """The variance ``v >= 0`` at which the decreasing robust ``spread(v)``
    of some blank sums over their errors comes down to 1 (bisection,
    bracketed by doubling from ``start``); 0 when ``spread(0)`` is
    already at most 1 (nothing left to add)."""
    if not spread(0.0) > 1.0:
        return 0.0
    lo, hi = 0.0, start
    while spread(hi) > 1.0:
        lo, hi = hi, 2.0 * hi
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spread(mid) > 1.0 else (lo, mid)
    return 0.5 * (lo + hi)


def _warn_level_share(n_pix, level_factor, lowered):
    """Warn that the sky levels' share (`level_factor`) would take out at
    least ``1 - OWN_FLOOR`` of the blank sums' variance at ``n_pix``, and
    by how much it was lowered (`_lowered_share`)."""
    sides = ', '.join(f'{math.sqrt(n):.0f}' for n in n_pix)
    warnings.warn(
        'the sky levels\' error exceeds the blank sums\' scatter: their '
        f'share (level factor {level_factor:.3g}) would take out at least '
        f'{1.0 - OWN_FLOOR:.0%} of the sums\' variance at sides {sides} px '
        '(a level error overestimated, or an aperture and its level whose '
        'noise correlates); the share and the photometry\'s sky_mean term '
        f'with this model are lowered by a factor {lowered:.3g}, so that '
        'the two add up to the blank sums\' scatter',
        AstropyUserWarning, stacklevel=3)


def _array_scatter(points, level_factor):
    """Per size with enough blank apertures (as `_size_scatter`): the
    robust scatter of the sums over the square root of their arrays'
    variance sums (less the annulus levels' share), and its error."""
    ratio, err = [], []
    for p in points:
        if p['sums'].size < MIN_APERTURES:
            continue
        var = p['var_sums']
        good = np.isfinite(var) & (var > 0)
        if np.count_nonzero(good) < MIN_APERTURES:
            raise ValueError('data: its variance arrays are not positive '
                             'on the blank sky, so the noise cannot be '
                             'measured against them')
        values = p['sums'][good] / np.sqrt(var[good])
        s = _robust_std(values)
        own = s * s
        if level_factor is not None:
            if 'level_zs' in p:  # each annulus its own share
                own = _own_variance(values, level_factor ** 2 * np.nan_to_num(
                    p['level_zs'][good]))
            else:
                own = own - level_factor ** 2 * p['level_z']
            own = max(own, 0.25 * s * s)
        ratio.append(math.sqrt(own))
        err.append(s * CLIP_SPREAD / math.sqrt(max(p['n_eff'], 1.0))
                   * s / math.sqrt(own))
    return np.array(ratio), np.array(err)


def _offset_variance(parts, own, k, g, axis):
    """The offset variance along ``axis`` (`_BlankAnnuli._offset_shares`)
    for which the sums of the boxes whose annulus lies at least
    `OFFSET_MIN` off along it scatter by 1 over their error (``own``
    noise of their size, their level share and their offset share,
    `annulus_offset_variance`, ``g`` along the other axis); 0 where they
    scatter less without it, or fewer than `MIN_APERTURES` are off."""
    values, fixed, reach = [], [], []
    unit = np.zeros(2)
    unit[axis] = 1.0
    other = np.array(g, dtype=float)
    other[axis] = 0.0
    for (p, n, d), v in zip(parts, own, strict=True):
        off = np.abs(np.nan_to_num(d[:, axis])) >= OFFSET_MIN
        values.append(p['sums'][off])
        fixed.append(v + annulus_level_variance(n, p['white_errors'][off], k)
                     + annulus_offset_variance(n, d[off], other))
        reach.append(annulus_offset_variance(n, d[off], unit))
    values, fixed = np.concatenate(values), np.concatenate(fixed)
    reach = np.concatenate(reach)
    if values.size < MIN_APERTURES:
        return 0.0

    def spread(gamma):
        with np.errstate(divide='ignore', invalid='ignore'):
            return _robust_std(values / np.sqrt(fixed + gamma * reach))

    return _spread_to_one(spread, float(np.median(values * values / reach)))


class _BlankAnnuli:
    """Annuli of the photometry's shape and estimator around blank
    apertures: their levels, white-noise errors and two half-levels. As a
    photometry annulus, one uses every finite, unmasked pixel (sources in
    it are left to the estimator's clipping)."""

    def __init__(self, sky, resid, bad):
        annulus = sky.meta.get('annulus_aperture')
        if annulus is None:
            raise ValueError(
                'sky: one level per aperture without its annulus; give the '
                'SkyEstimate.from_annulus result the photometry uses, so '
                'that blank apertures are measured against annuli of the '
                'same shape')
        self.annulus = annulus
        self.method = sky.method
        self.sigma = float(sky.meta.get('sigma', 3.0))
        self.maxiters = sky.meta.get('maxiters', 10)
        self.efficiency = estimator_efficiency(self.method, self.sigma)
        self.values = np.where(bad, np.nan, resid)
        self.meta = {'annulus': repr(annulus)}
        self.offsets = {}

    def _offsets(self, side):
        """Rows, columns (from a box's corner) of the annulus pixels around
        a ``side`` box, and their quadrant halves."""
        half = (side - 1) / 2.0
        whole = math.floor(half)
        ann = self.annulus.copy()
        ann.positions = (half - whole, half - whole)
        amask = ann.to_mask(method='center')
        amask = amask[0] if isinstance(amask, list) else amask
        iy, ix = np.nonzero(amask.data > 0)
        dy = iy + amask.bbox.iymin + whole
        dx = ix + amask.bbox.ixmin + whole
        angle = np.arctan2(dy - half, dx - half)
        quadrant = np.floor(angle / (math.pi / 2.0)).astype(int) % 4
        return dy, dx, quadrant % 2 == 0

    def fitting(self, sizes):
        """The sizes whose box stays out of the annulus."""
        out = []
        for side in sizes:
            dy, dx, _ = self._offsets(side)
            if not np.any((dy >= 0) & (dy < side) & (dx >= 0)
                          & (dx < side)):
                out.append(side)
        if len(out) < 2:
            raise ValueError(
                f'sky: the annulus ({self.meta["annulus"]}) leaves room '
                f'for fewer than two of the aperture sizes {list(sizes)} '
                'inside its hole')
        return out

    def _statistics(self, rows):
        level, std, keep, _ = row_statistics(rows, self.method, self.sigma,
                                             self.maxiters)
        n = keep.sum(axis=1)
        with np.errstate(invalid='ignore', divide='ignore'):
            error_on_mean = self.efficiency * std / np.sqrt(n)
        return level, error_on_mean, n

    def levels(self, side, y0, x0):
        """Which boxes have a usable annulus, its level and white error,
        and the two half-levels with their errors."""
        dy, dx, first = self._offsets(side)
        ny, nx = self.values.shape
        ys, xs = y0[:, None] + dy, x0[:, None] + dx
        inside = (ys >= 0) & (ys < ny) & (xs >= 0) & (xs < nx)
        rows = self.values[np.clip(ys, 0, ny - 1), np.clip(xs, 0, nx - 1)]
        rows = np.where(inside, rows, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)
            warnings.simplefilter('ignore', AstropyUserWarning)
            halves = [self._statistics(np.where(part, rows, np.nan))
                      for part in (first, ~first)]
            level, error_on_mean, n = self._statistics(rows)
        keep = (np.isfinite(level) & (n >= MIN_ANNULUS_PIXELS)
                & (n >= MIN_ANNULUS_FRACTION * dy.size) & (error_on_mean > 0))
        ok = keep & np.isfinite(halves[0][0]) & np.isfinite(halves[1][0])
        ok &= (halves[0][2] >= MIN_ANNULUS_PIXELS) & (
            halves[1][2] >= MIN_ANNULUS_PIXELS)
        pulls = ((halves[0][0] - halves[1][0])
                 / np.hypot(halves[0][1], halves[1][1]))[ok]
        self.cut = ~inside.all(axis=1)[keep]  # (by the frame's edge)
        # each annulus' centroid off its box's centre (cut by the frame's
        # edge or a NaN border: read beside the box, not around it)
        centroid = pixel_centroid(ys, xs, np.isfinite(rows))
        half = (side - 1) / 2.0
        self.offsets[side] = np.stack([centroid[:, 0] - x0 - half,
                                       centroid[:, 1] - y0 - half],
                                      axis=-1)[keep]
        return keep, level[keep], error_on_mean[keep], pulls

    def edge_spread(self, points, n_pix, sigma, level_factor):
        """The robust spread of the blank sums over the model's error
        (``sigma`` at ``n_pix`` with each annulus' share,
        `annulus_level_variance`), pooled over the sizes, for the annuli
        the frame's edge cuts and for the whole ones, with the fraction
        cut (``meta['annuli_cut_spread']``; returns the annuli's meta): a
        model measured on both holds their mixture, and on a smooth frame
        an annulus cut by the edge, no longer around its aperture, errs
        more."""
        own = dict(zip(n_pix.tolist(), sigma.tolist(), strict=True))
        pulls, cut = [], []
        for p in points:
            n = float(p['side'] ** 2)
            if n in own:
                pulls.append(p['sums'] / np.sqrt(own[n] ** 2 + (
                    annulus_level_variance(n, p['level_errors'],
                                           level_factor))))
                cut.append(p['cut'])
        pulls, cut = np.concatenate(pulls), np.concatenate(cut)
        out = {'fraction_cut': round(float(cut.mean()), 3)}
        for name, part in (('whole', ~cut), ('cut', cut)):
            out[name] = (round(_robust_std(pulls[part]), 3)
                         if np.count_nonzero(part) >= MIN_APERTURES
                         else None)
        self.meta['annuli_cut_spread'] = out
        return self.meta

    def level_factor(self, points):
        """The error of an annulus level over its white-noise error, from
        the differences of the two halves of the blank annuli."""
        pulls = np.concatenate([p['halves'] for p in points])
        self.meta['n_level_pairs'] = int(pulls.size)
        if pulls.size < MIN_APERTURES:
            raise ValueError('data: not enough blank sky for the annuli of '
                             'the blank apertures')
        k = max(_robust_std(pulls), 1e-3)
        self._offset_shares(points, k)
        return k

    def _offset_shares(self, points, k):
        """
        Measure the offset variance ``(g_x, g_y)`` of the annuli off their
        boxes (`annulus_offset_variance`) and give each blank annulus its
        share.

        The boxes whose annulus' centroid lies at least `OFFSET_MIN`
        pixels off their centre along an axis scatter, beyond the noise
        of their size (`_own_variance`, measured on all the boxes with
        every one's shares taken out), by their level share and their
        offset's: ``g_x`` is the one for which the sums of those off
        along x scatter by 1 over that error (robust, pooled over the
        sizes; 0 where they scatter less without it, or fewer than
        `MIN_APERTURES` are off), ``g_y`` the same along y, in
        `OFFSET_ITERATIONS` passes. Each point's ``level_errors`` then
        become ``sqrt(w**2 + offset share / (N k)**2)``, so that the share
        `annulus_level_variance` takes out is the level's and the
        offset's (``white_errors`` keeps ``w``);
        ``meta['annulus_offset_variance']`` records ``[g_x, g_y]``.
        """
        parts = []
        for p in points:
            if p['sums'].size >= MIN_APERTURES and p['side'] in self.offsets:
                p['white_errors'] = p['level_errors']
                parts.append((p, float(p['side'] ** 2),
                              self.offsets[p['side']]))
        g = [0.0, 0.0]
        for _ in range(OFFSET_ITERATIONS if parts else 0):
            for axis in (0, 1):
                own = [_own_variance(p['sums'], annulus_level_variance(
                    n, p['white_errors'], k) + annulus_offset_variance(
                        n, d, g)) for p, n, d in parts]
                g[axis] = _offset_variance(parts, own, k, g, axis)
        self.meta['annulus_offset_variance'] = [float(v) for v in g]
        for p, n, d in parts:
            p['level_errors'] = np.sqrt(
                p['white_errors'] ** 2
                + annulus_offset_variance(n, d, g) / (n * k) ** 2)
