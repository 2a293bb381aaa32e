# Licensed under a 3-clause BSD style license - see LICENSE
"""
Sky (background) level, its per-pixel scatter, and the error of the level.

Estimators and the factor ``k`` in ``error_on_mean = k * std / sqrt(n_pix)``
(the asymptotic efficiency for Gaussian noise; ``n_pix`` counts the pixels
that entered the estimate):

``'mean'``
    plain mean and standard deviation (``ddof=0``, as the notebook's
    ``.mean()`` and ``.std()``); ``k = 1``.
``'median'``
    median; ``std`` is the robust ``1.4826 * MAD`` (median absolute
    deviation), so that stars in the sky region inflate neither the level
    nor the scatter; ``k = sqrt(pi / 2)``
    ≈ 1.2533.
``'sigma_clip'`` (default)
    `astropy.stats.sigma_clip` (``sigma=3``, median centre, 10 iterations),
    then the mean of the kept pixels. The standard deviation of a sample
    clipped at ±c sigma underestimates sigma; ``std`` is corrected by
    ``1 / sqrt(1 - 2 c phi(c) / P)`` with ``P = 2 Phi(c) - 1`` (1.0136 at
    c = 3), and ``k = sqrt(P / (P - 2 c phi(c)))`` (1.0136 at c = 3), the
    variance of a re-centred clipped mean.

When a per-pixel uncertainty map is given, ``error_on_mean`` is instead the
propagated ``sqrt(sum(sigma_i**2)) / n_pix`` of the notebook's Q1, while
``std`` stays the measured scatter.

Four ways to get a sky:

`SkyEstimate.from_image`
    one level for the whole frame (the notebook).
`SkyEstimate.from_annulus`
    one level per aperture, from the whole pixels (``method='center'``) of
    any photutils annulus (circular, elliptical or rectangular), with the
    same estimators and factors ``k``. A small annulus gives a large
    ``error_on_mean``, and the ``sky_mean`` term ``n_pix**2 * sigma_B**2``
    of the error budget carries it into the flux error (photutils'
    ``sum_err`` and Source Extractor leave it out; IRAF ``phot``,
    AstroImageJ and SEP's ``bkgann`` keep it).
`SkyEstimate.from_background2d`
    a 2-D map from photutils' `~photutils.background.Background2D`.
`SkyEstimate.from_maps`
    2-D background and RMS maps made elsewhere (e.g. Source Extractor's
    BACKGROUND and BACKGROUND_RMS check images).

For a map (`SkyEstimate.is_map`) the error of the level and how it enters
the budget are described in `ccdphot_ext.background.maps`.
"""

import math
import warnings

import numpy as np
from astropy.utils.exceptions import AstropyUserWarning
from photutils.aperture import (
    CircularAnnulus,
    EllipticalAnnulus,
    RectangularAnnulus,
)

from ..utils.inputs import as_frame, positive_scalar
from .annulus import annulus_statistics
from .clipping import clip_factors
from .globalsky import global_sky
from .maps import BACKGROUND2D_EFFICIENCY, background2d_parts, maps_parts

__all__ = ['SkyEstimate', 'SKY_METHODS', 'BACKGROUND2D_EFFICIENCY']

SKY_METHODS = ('sigma_clip', 'mean', 'median')



_ANNULUS_TYPES = (CircularAnnulus, EllipticalAnnulus, RectangularAnnulus)


class SkyEstimate:
    """
    A sky level with its per-pixel scatter and its own error.

    Usually made with `from_image` (one level for the frame),
    `from_annulus` (one level per aperture), `from_background2d` or
    `from_maps` (a 2-D map). Values may be scalars, 1-D arrays with one
    entry per aperture, or 2-D maps the shape of the frame.

    Parameters
    ----------
    value : float or array_like
        Sky level per pixel (data unit): a scalar, one per aperture (1-D)
        or a map (2-D).
    std : float or array_like
        Per-pixel standard deviation of the background (data unit), shaped
        like ``value``.
    n_pix : int or array_like, optional
        Number of pixels that entered the estimate (for a map: per mesh,
        scalar or 2-D). Required unless ``value`` is a map.
    error_on_mean : float or array_like, optional
        Error of ``value``; default ``efficiency * std / sqrt(n_pix)``
        (0 for a map without ``n_pix``: the level is then taken as exact).
    method : str, optional
        How the level was measured (for the record).
    n_rejected : int or array_like, optional
        Pixels excluded (masked, NaN/inf, clipped).
    efficiency : float, optional
        The factor ``k`` used for ``error_on_mean``.
    meta : dict, optional
        Provenance (method parameters, pixels excluded).
    unit : `~astropy.units.Unit`, optional
        Unit of ``value`` and ``std`` (the data unit).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext import SkyEstimate
    >>> img = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> sky = SkyEstimate.from_image(img, method='mean', mask_sources=False)
    >>> float(sky.value), float(sky.std), int(sky.n_pix)
    (2.5, 1.118033988749895, 4)
    >>> print(f'{sky.error_on_mean:.6f}')
    0.559017
    """

    def __init__(self, value, std, n_pix=None, *, error_on_mean=None,
                 method='user', n_rejected=0, efficiency=1.0, meta=None,
                 unit=None):
        value = np.asarray(value, dtype=float)
        std = np.asarray(std, dtype=float)
        if value.ndim > 2:
            raise ValueError('value must be a scalar, a 1-D array (one level '
                             'per aperture) or a 2-D map, got shape '
                             f'{value.shape}')
        is_map = value.ndim == 2
        if is_map and std.shape != value.shape:
            raise ValueError(f'std must be a map of the shape of value '
                             f'{value.shape}, got {std.shape}')
        if n_pix is None and not is_map:
            raise TypeError('n_pix (pixels in the estimate) is required '
                            'unless value is a 2-D map')
        # one level per aperture: an aperture whose sky had no usable pixel
        # has n_pix 0 and a NaN level (its row is NaN and flagged)
        unmeasured = (np.asarray(n_pix) == 0 if n_pix is not None
                      and value.ndim == 1 else np.zeros(value.shape, bool))
        if not np.all(np.isfinite(value) | unmeasured):
            raise ValueError('value (sky level) must be finite')
        if (not np.all(np.isfinite(std) | unmeasured)
                or np.any(std[~unmeasured] < 0)):
            raise ValueError('std must be finite and non-negative')
        if n_pix is not None:
            n_pix = np.asarray(n_pix)
            if np.any(n_pix < 0) or np.all(n_pix == 0):
                raise ValueError('n_pix must be positive (no sky pixels)')
            n_pix = n_pix[()]
        self.value = value[()]
        self.std = std[()]
        self.n_pix = n_pix
        self.method = method
        self.n_rejected = np.asarray(n_rejected)[()]
        self.efficiency = float(efficiency)
        if error_on_mean is None:
            with np.errstate(divide='ignore', invalid='ignore'):
                error_on_mean = (0.0 if n_pix is None else np.where(
                    unmeasured, np.nan, self.efficiency * std
                    / np.sqrt(n_pix)))
        eom = np.asarray(error_on_mean, dtype=float)
        unmeasured_eom = (unmeasured if eom.shape == unmeasured.shape
                          else np.zeros(eom.shape, bool))
        if (not np.all(np.isfinite(eom) | unmeasured_eom)
                or np.any(eom[~unmeasured_eom] < 0)):
            raise ValueError('error_on_mean must be finite and non-negative')
        if is_map and eom.ndim not in (0, 2):
            raise ValueError('error_on_mean of a map must be a scalar or a '
                             f'map, got shape {eom.shape}')
        if is_map and eom.ndim == 2 and eom.shape != value.shape:
            raise ValueError(f'error_on_mean map shape {eom.shape} does not '
                             f'match value {value.shape}')
        self.error_on_mean = eom[()]
        self.meta = dict(meta or {})
        self.unit = unit

    @classmethod
    def from_image(cls, data, *, method='sigma_clip', mask=None,
                   uncertainty=None, sigma=3.0, maxiters=10,
                   mask_sources=True):
        """
        One sky level for the whole frame.

        Parameters
        ----------
        data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
            The frame. An NDData's ``mask`` and ``uncertainty`` are used.
        method : {'sigma_clip', 'mean', 'median'}, optional
            The estimator (see the module docstring for each one's
            ``error_on_mean`` factor).
        mask : array_like of bool, optional
            True for pixels to exclude (e.g. stars).
        uncertainty : array_like or `~astropy.nddata.NDUncertainty`, optional
            Per-pixel 1-sigma map; gives the propagated ``error_on_mean``.
        sigma, maxiters : float, int, optional
            Clipping parameters for ``'sigma_clip'``.
        mask_sources : bool, optional
            Exclude the stars and their faint wings, found on a binned copy
            of the frame, before the statistic (default True; ``meta``
            records the mask and ``meta['n_masked_sources']`` the pixels
            it took out). The wings of many stars bias a whole-frame level
            high, and the fluxes measured against it low, even after a
            sigma clip. ``mask_sources=False`` gives the plain whole-frame
            statistic (``method='mean'``: the notebook's ``image.mean()``
            and ``image.std()``).

        Returns
        -------
        sky : `SkyEstimate`

        Notes
        -----
        On frames of more than a million usable pixels the ``'sigma_clip'``
        bounds come from a strided subsample and the statistics from one
        pass over the frame, so a 64-megapixel frame is neither sorted nor
        copied; the error of the level includes the subsample's share (see
        :ref:`performance`).
        """
        if method not in SKY_METHODS:
            raise ValueError(f'method must be one of {SKY_METHODS}, got '
                             f'{method!r}')
        sigma = positive_scalar(sigma, 'sigma', allow_none=False)
        frame = as_frame(data, uncertainty=uncertainty, mask=mask)
        res = global_sky(frame, method=method, sigma=sigma,
                         maxiters=maxiters, mask_sources=bool(mask_sources))
        if res['n_bad']:
            warnings.warn(f"{res['n_bad']} masked/NaN/inf pixels excluded "
                          'from the sky estimate', AstropyUserWarning,
                          stacklevel=2)
        meta = res['meta']
        meta['error_on_mean_from'] = ('measured std' if res['eom'] is None
                                      else 'uncertainty map')
        return cls(res['level'], res['std'], res['n_pix'],
                   error_on_mean=res['eom'], method=method,
                   n_rejected=frame.data.size - res['n_pix'],
                   efficiency=res['efficiency'], meta=meta, unit=frame.unit)

    @classmethod
    def from_annulus(cls, data, annulus, *, method='sigma_clip', mask=None,
                     uncertainty=None, sigma=3.0, maxiters=10, exclude=None):
        """
        One sky level per aperture, from a photutils annulus.

        The statistics use the annulus' whole pixels: its mask with
        ``method='center'`` (a pixel belongs to the annulus when its centre
        does), the convention of photutils' `~photutils.aperture.ApertureStats`
        for everything but sums. NaN/inf and masked pixels are excluded and
        counted; the estimators and the factors ``k`` of ``error_on_mean``
        are those of `from_image` (see the module docstring). Circular
        annuli are measured for many positions at once (no mask per
        position).

        Give the measured apertures as ``exclude`` (as ``ccdphot measure
        --sky annulus`` does): every pixel one of them touches is left out
        of every annulus, the star's own aperture and its neighbours'. An
        annulus that its own aperture reaches into, or that keeps fewer than
        half of its pixels, is doubtful: ``meta['flags']`` has
        `~ccdphot_ext.flags.FLAG_SKY_ANNULUS` for it, `photometer` copies
        that flag to its row, and an
        `~astropy.utils.exceptions.AstropyUserWarning` says how many.

        Parameters
        ----------
        data : array_like, `~astropy.units.Quantity`, `~astropy.nddata.NDData`
            The frame. An NDData's ``mask`` and ``uncertainty`` are used.
        annulus : photutils annulus aperture
            A `~photutils.aperture.CircularAnnulus`,
            `~photutils.aperture.EllipticalAnnulus` or
            `~photutils.aperture.RectangularAnnulus`, one or many positions;
            one sky level per position, in order.
        method : {'sigma_clip', 'mean', 'median'}, optional
            The estimator.
        mask : array_like of bool, optional
            True for pixels to exclude (e.g. neighbouring stars).
        uncertainty : array_like or `~astropy.nddata.NDUncertainty`, optional
            Per-pixel 1-sigma map; gives the propagated
            ``error_on_mean = sqrt(sum(sigma_i**2)) / n`` over the pixels used.
        sigma, maxiters : float, int, optional
            Clipping parameters for ``'sigma_clip'``.
        exclude : `BoxAperture`, photutils aperture or list, optional
            Apertures whose pixels are left out of the annuli; when their
            positions are the annuli's (in order), each annulus is also
            checked against its own aperture.

        Returns
        -------
        sky : `SkyEstimate`
            ``value``, ``std``, ``n_pix``, ``error_on_mean`` and
            ``n_rejected`` are 1-D arrays with one entry per annulus position
            (also for a single position, so that it cannot be taken for a
            global sky). ``meta['n_excluded_bad']``,
            ``meta['n_excluded_apertures']`` and ``meta['n_clipped']``
            count the pixels excluded per position, ``meta['n_own_overlap']``
            the annulus pixels its own aperture touches, and
            ``meta['flags']`` holds the flag of each position.

        Raises
        ------
        ValueError
            If no annulus holds a finite, unmasked pixel. A single annulus
            without one gets a NaN level, ``n_pix`` 0 and flag
            ``FLAG_SKY_ANNULUS`` (its photometry row is NaN and flagged),
            with a warning.

        Examples
        --------
        >>> import numpy as np
        >>> from photutils.aperture import CircularAnnulus
        >>> from ccdphot_ext import SkyEstimate
        >>> img = np.random.default_rng(0).normal(100.0, 5.0, (60, 60))
        >>> ann = CircularAnnulus([(20, 20), (40, 35)], r_in=6, r_out=9)
        >>> sky = SkyEstimate.from_annulus(img, ann, method='mean')
        >>> sky.n_pix.tolist()
        [140, 140]
        >>> bool(np.allclose(sky.error_on_mean, sky.std / np.sqrt(140)))
        True
        """
        if method not in SKY_METHODS:
            raise ValueError(f'method must be one of {SKY_METHODS}, got '
                             f'{method!r}')
        if not isinstance(annulus, _ANNULUS_TYPES):
            raise TypeError('annulus must be a photutils CircularAnnulus, '
                            'EllipticalAnnulus or RectangularAnnulus, got '
                            f'{type(annulus).__name__}')
        sigma = positive_scalar(sigma, 'sigma', allow_none=False)
        frame = as_frame(data, uncertainty=uncertainty, mask=mask)
        res = annulus_statistics(frame, annulus, exclude, method=method,
                                 sigma=sigma, maxiters=maxiters)
        k = {'mean': 1.0, 'median': math.sqrt(math.pi / 2.0)}.get(
            method, clip_factors(sigma)[1])
        meta = res['meta']
        meta.update(method=method, annulus=type(annulus).__name__,
                    overlap='center', annulus_aperture=annulus)
        if method == 'sigma_clip':
            meta.update(sigma=sigma, maxiters=maxiters,
                        std_factor=clip_factors(sigma)[0])
        meta['error_on_mean_from'] = ('measured std' if res['eom'] is None
                                      else 'uncertainty map')
        rejected = (meta['n_excluded_bad'] + meta['n_clipped']
                    + meta['n_excluded_apertures'])
        return cls(res['level'], res['std'], res['n_pix'],
                   error_on_mean=res['eom'], method=method,
                   n_rejected=rejected, efficiency=k, meta=meta,
                   unit=frame.unit)

    @classmethod
    def from_background2d(cls, bkg, *, efficiency=None):
        """
        A 2-D sky map from photutils' `~photutils.background.Background2D`.

        ``value`` is ``bkg.background``, ``std`` is ``bkg.background_rms``
        corrected for photutils' sigma clipping (as `from_image`;
        ``meta['rms_clip_factor']``) and ``error_on_mean`` is the map
        ``k_est * f_filter * rms / sqrt(n_mesh)`` described in the module
        docstring (an approximation: see there how close it is). Meshes
        that photutils excluded (``exclude_percentile``) and filled by
        interpolation are never given an error from their own pixel
        counts: when there are any, every mesh's error is propagated from
        the measured meshes through photutils' interpolation and filter by
        a seeded Monte Carlo on the mesh grid, and ``meta['n_mesh_note']``
        says how many were excluded.

        Parameters
        ----------
        bkg : `~photutils.background.Background2D`
            The background of the frame to be measured.
        efficiency : float, optional
            ``k_est``; default from `BACKGROUND2D_EFFICIENCY` by the class of
            ``bkg.bkg_estimator`` (the median's for estimators not listed).

        Returns
        -------
        sky : `SkyEstimate`
            A map (`is_map` True); ``n_pix`` is the ``n_pixels_map``.

        Examples
        --------
        >>> import numpy as np
        >>> from photutils.background import Background2D, MeanBackground
        >>> from ccdphot_ext import SkyEstimate
        >>> img = np.random.default_rng(3).normal(50.0, 4.0, (64, 64))
        >>> bkg = Background2D(img, 16, filter_size=1,
        ...                    bkg_estimator=MeanBackground())
        >>> sky = SkyEstimate.from_background2d(bkg)
        >>> sky.is_map, sky.shape, sky.efficiency
        (True, (64, 64), 1.0)
        """
        level, rms, n_mesh, eom, efficiency, meta, unit = background2d_parts(
            bkg, efficiency)
        return cls(level, rms, n_mesh, error_on_mean=eom,
                   method='Background2D', efficiency=efficiency, meta=meta,
                   unit=unit)

    @classmethod
    def from_maps(cls, background, rms, *, error_on_mean=None, n_pix=None,
                  efficiency=1.0):
        """
        A 2-D sky map from background and RMS maps made elsewhere.

        Parameters
        ----------
        background, rms : 2-D array_like or `~astropy.units.Quantity`
            Background level and per-pixel background noise, the shape of the
            frame (e.g. Source Extractor's BACKGROUND and BACKGROUND_RMS
            check images).
        error_on_mean : float or 2-D array_like, optional
            The error of the background level (scalar or map).
        n_pix : float or 2-D array_like, optional
            Pixels per mesh that made the level; without ``error_on_mean``
            it gives ``efficiency * rms / sqrt(n_pix)``. With neither, the
            level is taken as exact (``error_on_mean`` 0, so the ``sky_mean``
            term is 0) and ``meta`` says so.
        efficiency : float, optional
            ``k`` for ``n_pix`` (e.g. 2.1372 for Source Extractor's mode
            estimator, see `BACKGROUND2D_EFFICIENCY`).

        Returns
        -------
        sky : `SkyEstimate`
            A map (`is_map` True).

        Examples
        --------
        >>> import numpy as np
        >>> from ccdphot_ext import SkyEstimate
        >>> sky = SkyEstimate.from_maps(np.full((8, 8), 100.0),
        ...                             np.full((8, 8), 5.0), n_pix=64 * 64)
        >>> print(f'{sky.error_on_mean.max():.5f}')
        0.07812
        """
        level, rms, error_on_mean, efficiency, meta, unit = maps_parts(
            background, rms, error_on_mean, n_pix, efficiency)
        return cls(level, rms, n_pix, error_on_mean=error_on_mean,
                   method='maps', efficiency=efficiency, meta=meta, unit=unit)

    @property
    def is_map(self):
        """True when the level is a 2-D map (`from_maps`, `from_background2d`)."""
        return np.ndim(self.value) == 2

    @property
    def shape(self):
        """Shape of a map (None for levels)."""
        return np.shape(self.value) if self.is_map else None

    @property
    def isscalar(self):
        """
        True for a single sky level (as ``numpy.isscalar``); False for one
        level per aperture and for a 2-D map (see `is_map`, `is_global`).
        """
        return np.ndim(self.value) == 0

    @property
    def is_global(self):
        """
        True when one estimate serves every aperture: a single level or a
        2-D map; False for one level per aperture.
        """
        return np.ndim(self.value) in (0, 2)

    def __len__(self):
        if self.is_global:
            raise TypeError('a global SkyEstimate (one level or a map) has no '
                            'len()')
        return len(self.value)

    def at(self, index):
        """Level, std, n_pix and error_on_mean for aperture ``index``."""
        if self.is_map:
            raise TypeError('a sky map has no single level; use '
                            'SkyEstimate.cutout(slices) for its pixels')

        def pick(v):
            return float(v) if np.ndim(v) == 0 else float(np.asarray(v)[index])
        return (pick(self.value), pick(self.std), pick(self.n_pix),
                pick(self.error_on_mean))

    def cutout(self, slices):
        """
        Level, RMS and error-of-level pixels of a map under ``slices``.

        Returns
        -------
        level, rms, error_on_mean : 2-D ndarrays
            Each shaped like ``map[slices]``.
        """
        if not self.is_map:
            raise TypeError('cutout() needs a sky map (is_map True)')
        level = self.value[slices]
        eom = self.error_on_mean
        eom = (np.full(level.shape, float(eom)) if np.ndim(eom) == 0
               else eom[slices])
        return level, self.std[slices], eom

    def summarize(self, slices, weights):
        """
        A map's level, RMS and error of the level over weighted pixels.

        Returns ``sum(w * level) / sum(w)``, ``sqrt(sum(w * rms**2) /
        sum(w))`` and ``sum(w * sigma_B) / sum(w)``, so that for ``n_pix =
        sum(w)`` the ``sky`` term ``n_pix * std**2`` is ``sum(w * rms**2)``
        and the ``sky_mean`` term ``n_pix**2 * sigma_B**2`` is
        ``(sum(w * sigma_B))**2``. NaN when the weights sum to 0.
        """
        level, rms, eom = self.cutout(slices)
        total = float(np.sum(weights))
        if total <= 0:
            return math.nan, math.nan, math.nan
        return (float(np.sum(weights * level)) / total,
                math.sqrt(float(np.sum(weights * rms ** 2)) / total),
                float(np.sum(weights * eom)) / total)

    def _repr_html_(self):
        """The estimate as a compact HTML table (Jupyter)."""
        from ..utils.html import html_table

        un = '' if self.unit is None else f' [{self.unit}]'
        if self.is_map:
            rows = [('shape', str(self.shape)),
                    (f'median level{un}', float(np.median(self.value))),
                    (f'median std per pixel{un}', float(np.median(self.std))),
                    *((key, str(self.meta[key])) for key in
                      ('bkg_estimator', 'box_size', 'filter_size')
                      if key in self.meta)]
        elif self.isscalar:
            rows = [(f'level{un}', self.value),
                    (f'std per pixel{un}', self.std),
                    ('pixels', self.n_pix),
                    (f'error of the level{un}', self.error_on_mean)]
        else:
            rows = [('apertures', len(self)),
                    (f'median level{un}', float(np.nanmedian(self.value))),
                    (f'median std per pixel{un}',
                     float(np.nanmedian(self.std))),
                    (f'median error of the level{un}',
                     float(np.nanmedian(self.error_on_mean)))]
        return html_table(f'SkyEstimate ({self.method})',
                          ('quantity', 'value'), rows)

    def __repr__(self):
        if self.is_map:
            return (f'<SkyEstimate method={self.method!r} map shape='
                    f'{self.shape} median={np.median(self.value):.6g}>')
        if self.isscalar:
            return (f'<SkyEstimate method={self.method!r} value={self.value:.6g}'
                    f' std={self.std:.6g} n_pix={self.n_pix} '
                    f'error_on_mean={self.error_on_mean:.3g}>')
        return (f'<SkyEstimate method={self.method!r} per-aperture '
                f'(n={len(self)})>')

