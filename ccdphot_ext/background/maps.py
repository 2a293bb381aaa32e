# Licensed under a 3-clause BSD style license - see LICENSE
"""
Sky maps (internal): `SkyEstimate.from_background2d` and
`SkyEstimate.from_maps`.

For a map (`SkyEstimate.is_map`), photometry subtracts the background pixel
by pixel, the ``sky`` term is ``sum(w_i * rms_i**2)`` and the ``sky_mean``
term is ``(sum(w_i * error_on_mean_i))**2``: the map's level is smooth on the
scale of an aperture, so its errors at the aperture's pixels are taken as
fully correlated. For `~photutils.background.Background2D` the error of
the level is that of each mesh,

    ``k_est * rms / sqrt(n_mesh)``

with ``n_mesh`` the pixels that entered the mesh (``n_pixels_mesh``) and
``k_est`` the efficiency of the mesh estimator for Gaussian noise
(`BACKGROUND2D_EFFICIENCY`: mean 1, median 1.2533, Source Extractor's
``2.5 median - 1.5 mean`` 2.1372, MMM's ``3 median - 2 mean`` 2.4773),
put through photutils' own steps by a small, seeded Monte Carlo on the
mesh grid (`filtered_noise_error`): its median filter (the window cut at
the grid's edges) and its interpolator, pixel by pixel (`pixel_scatter`).
Between mesh centres photutils' spline averages neighbouring meshes and
the level scatters less than at the centres (0.6 of it midway between
four meshes without a filter); at the grid's edges the filter's window
holds fewer meshes and it scatters more. One error per mesh,
``k_est sqrt(pi / (2 m)) rms / sqrt(n_mesh)`` for a filter over ``m``
meshes, left the level pulls of flat frames spread 0.87 without a filter
and 1.13 with a 5 x 5 one (0.5 to 1.8 of their errors pixel by pixel).

**Excluded meshes.** photutils leaves out of its low-resolution map every
mesh with too few unmasked pixels (``exclude_percentile``) and fills it by
inverse-distance interpolation of the measured meshes (then median-filters
the grid), but still reports the unmasked pixel count of the excluded mesh. An error
``rms / sqrt(n)`` from that count describes a measurement that was never
made, and the filter gain ``sqrt(pi / (2 m))`` holds only for ``m`` meshes
measured independently. When meshes were excluded, the error of every
mesh's level is therefore propagated through photutils' own steps by a
small, seeded Monte Carlo on the mesh grid: each measured mesh gets Gaussian
noise of ``k_est * rms / sqrt(n_mesh)``, the excluded ones are filled with
photutils' `~photutils.utils.ShepardIDWInterpolator` (10 neighbours, power
1, as photutils), the grid is median-filtered (NaN outside, as photutils)
and the scatter of the result is the error of that mesh's level. On a
sloped or curved sky the fitted surface (below), put through that
filling, takes the filling's misfit of it from the level; the error of
the excluded meshes is then the filling's misfit of what the surface
leaves (`_with_interpolation_error`) and the surface's variance there.
With ``data=`` the excluded meshes' sources' lift is the one photutils'
filling carried in from the measured meshes; where the measured meshes
leave the sky's surface unknown over the excluded ones (a curved
surface, whose peak they may surround, or too few of them to fit one)
the excluded meshes, read without their sources, enter the fit
(`_fitted_with_unmeasured_meshes`: a quartic where the meshes allow,
its own variance there in the level's error), and any misfit they still
show is added to the level's error (`_checked_unmeasured_meshes`).

**A sloped sky.** The filter's gain holds for meshes that differ only
by their noise. Where the sky changes from mesh to mesh by more than that, the
median of a window is its middle mesh's level (no gain from the filter),
and at the grid's edges, where photutils cuts the window to the meshes
inside, a level half a mesh step towards the interior (a slope of ±3 sigma
across a frame put edge meshes 46 of their errors off). A quadratic
surface is fitted to the measured mesh levels, and when it explains them
beyond their noise (chi-square at 1%), the surface with each mesh's noise
is put through photutils' filter by a seeded Monte Carlo: the scatter is
the level's error, and the offset of the result from the surface, as
photutils' own interpolator puts the filtered grid's expectation between
mesh centres (its cubic spline carries the flattened edge meshes into the
next ones and bends at the grid's edges), is taken from the level
(``meta['slope_offset']``, its largest), with a warning where it exceeds
the level's error. The mesh levels are the estimator's readings of the
curved sky over each box, not the sky at the mesh centres: the surface
is fitted to them less that reading (`mesh_estimator_response`, the
estimator applied to the fitted sky plus noise), weighted by the
estimator's noise on that sky; where the quadratic leaves the meshes
scattered beyond their noise, surfaces of higher degree are tried (up to
a quartic, a vignetted sky), and where none explains them
(``meta['slope_fits']`` False: sources lifting meshes) their noise is
scaled to that scatter. The error of the fitted surface's offset is in
the level's error. With excluded meshes the surface is put through
photutils' filling of them as well, and the larger of that error and the
propagated one is kept, pixel by pixel.

On such a sky a mesh holds pixels of different levels: photutils' rms
holds their spread (``(g**2 (b**2 - 1)) / 12`` for a gradient ``g`` per
pixel over ``b`` pixels, ``meta['slope_spread_rms']``), which leaves the
rms, and on a Poisson sky the bright pixels scatter more, which skews the
mesh's distribution (`estimator_skew_bias`). With ``data=`` each mesh is
measured as it reads without its stars, their pixels given the map's level
and noise drawn from the mesh's other pixels in place
(`replaced_mesh_levels`; the cores photutils' clip removes lie at one place
on the slope, the wings it keeps at others): the difference is the
sources' lift (`source_lift`), and the rms of the meshes so measured
leaves photutils' rms its stars' wings. The crowded frame's blank sky
(below) is then compared between the outer mesh centres, and does not
move the map.

**A crowded frame** (``data=`` given, the whole-frame source mask
covering `~ccdphot_ext.background.globalsky.CROWDED_FRACTION` of it or
more). The mask leaves each mesh few pixels, and a star it misses lifts
that mesh's level. The map, less the sources' lift, is compared with the
frame's blank sky (the clipped mean of the frame less the map outside the
mask and outside the faint stars a matched filter finds): that mean holds
the light of stars too faint to find and so bounds the sky from above; a
map above it by more than its error is moved down to it. The level's
error there is the meshes' noise, each grown by the pixels the mask left
it, put through photutils' median filter (`filtered_variance_factor`).

The per-pixel rms is corrected for sigma clipping as in
`SkyEstimate.from_image` (a Gaussian clipped at ``+-c`` sigma has a smaller
standard deviation).
"""

import contextlib
import dataclasses
import math
import warnings

import astropy.units as u
import numpy as np
from astropy.nddata import block_replicate
from astropy.utils.exceptions import AstropyUserWarning, AstropyWarning
from numpy.lib.stride_tricks import sliding_window_view
from photutils.background import (
    Background2D,
    MedianBackground,
    SExtractorBackground,
)
from photutils.utils import ShepardIDWInterpolator
from scipy.ndimage import uniform_filter

from ..utils.inputs import positive_scalar, power_of_two_scale, strip_unit
from ..utils.stats import (
    MAD_TO_STD,
    MEDIAN_EFFICIENCY,
    skew_ratio,
    surface_design,
    surface_terms,
    weighted_lstsq,
)
from .estimators import (
    check_mesh_box,
    checked_gain,
    clip_factors,
    clipped_median_skew_factor,
    combination_efficiency,
    poisson_skew_ratio,
    skew_bias_factor,
)

__all__ = ['BACKGROUND2D_EFFICIENCY']

#: ``k_est`` per photutils background estimator (class name), for
#: `SkyEstimate.from_background2d`; other estimators get the median's.
BACKGROUND2D_EFFICIENCY = {
    'MeanBackground': 1.0,
    'MedianBackground': MEDIAN_EFFICIENCY,
    'SExtractorBackground': combination_efficiency(2.5, 1.5),
    'MMMBackground': combination_efficiency(3.0, 2.0),
}

#: Noise realisations of the mesh-grid Monte Carlo (3.5% on each error).
N_REALISATIONS = 400
#: Draws of a fitted sky surface from its coefficients' covariance, to
#: find the error of the filter's offset taken from the level (18% on
#: that part of the error)
N_SURFACE_DRAWS = 16


@dataclasses.dataclass(frozen=True, eq=False)
class MeshStatistics:
    """
    How a photutils `~photutils.background.Background2D` measured its
    meshes, so that they can be measured again on other pixels of the same
    frame (a `~ccdphot_ext.SkyEstimate` from
    `~ccdphot_ext.SkyEstimate.from_background2d` keeps one for the
    photometry's check of the sources' light in the map, `source_lift`).

    Parameters
    ----------
    estimator : photutils background estimator
        ``bkg.bkg_estimator``.
    sigma_clip : `~astropy.stats.SigmaClip` or None
        ``bkg.sigma_clip``.
    box_size : tuple of int
        The mesh (ny, nx).
    filter_size : tuple of int
        The median filter of the mesh grid (meshes).
    shape : tuple of int
        The frame's shape.
    n_pixels : 2-D `~numpy.ndarray`
        The pixels each mesh kept (``bkg.n_pixels_mesh``: unmasked and
        within the clip), to tell whether measuring again reproduces
        photutils' pixels.

    Examples
    --------
    >>> import numpy as np
    >>> from photutils.background import Background2D
    >>> from ccdphot_ext.background.maps import MeshStatistics
    >>> img = np.random.default_rng(0).normal(10.0, 1.0, (64, 64))
    >>> meshes = MeshStatistics.of(Background2D(img, 32))
    >>> levels, kept = meshes.levels(img, np.zeros(img.shape, dtype=bool))
    >>> levels.shape, bool(np.all(kept == meshes.n_pixels))
    ((2, 2), True)
    """

    estimator: object
    sigma_clip: object
    box_size: tuple
    filter_size: tuple
    shape: tuple
    n_pixels: np.ndarray
    rms_estimator: object = None

    @classmethod
    def of(cls, bkg):
        """The `MeshStatistics` of a Background2D ``bkg``."""
        return cls(bkg.bkg_estimator, bkg.sigma_clip,
                   tuple(int(b) for b in bkg.box_size),
                   tuple(int(f) for f in bkg.filter_size),
                   tuple(int(n) for n in np.shape(bkg.background_rms)),
                   np.asarray(bkg.n_pixels_mesh, dtype=float),
                   bkg.bkg_rms_estimator)

    def reproduced(self, kept):
        """True when the pixels ``kept`` per mesh (`levels`) are
        photutils' (to one pixel in a thousand, for a clip bound that
        single and double precision place on either side of a pixel): a
        mask given to Background2D and not here would differ."""
        return bool(np.all(np.abs(kept - self.n_pixels)
                           <= 1.0 + 1e-3 * self.n_pixels))

    def levels_of(self, frame):
        """
        The mesh levels measured again on ``frame`` (a
        `~ccdphot_ext.utils.inputs.Frame` of the map's shape) by
        photutils' steps (`levels`), its non-finite and masked pixels left
        out; None where the pixels each mesh kept are not photutils'
        (`reproduced`: Background2D was given a mask the frame does not
        hold).
        """
        levels, kept = self.levels(*self._pixels(frame))
        return levels if self.reproduced(kept) else None

    def rms_of(self, frame):
        """The rms of each mesh measured again on ``frame`` as in
        `levels_of` (photutils' ``rms_estimator`` after its clip, before
        its filter); None where `levels_of` is, or without an rms
        estimator."""
        if self.rms_estimator is None:
            return None
        boxes = self._clipped(self._boxes(*self._pixels(frame)))
        if not self.reproduced(np.count_nonzero(~np.isnan(boxes), axis=-1)):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            warnings.simplefilter('ignore', RuntimeWarning)  # empty meshes
            return np.asarray(self.rms_estimator(boxes, axis=-1),
                              dtype=float)

    @staticmethod
    def _pixels(frame):
        """A frame's pixels and those to leave out (non-finite or
        masked)."""
        pixels = np.asarray(frame.data, dtype=float)
        leave_out = ~np.isfinite(pixels)
        if frame.mask is not None:
            leave_out |= np.asarray(frame.mask, dtype=bool)
        return pixels, leave_out

    def _boxes(self, values, leave_out):
        """``values`` (the frame's shape) as one row of pixels per mesh,
        NaN on the ``leave_out`` pixels and beyond the frame."""
        (by, bx), (ny, nx) = self.box_size, self.shape
        my, mx = -(-ny // by), -(-nx // bx)
        boxes = np.full((my * by, mx * bx), np.nan)
        boxes[:ny, :nx] = np.where(leave_out, np.nan, values)
        return boxes.reshape(my, by, mx, bx).swapaxes(1, 2).reshape(
            my, mx, by * bx)

    def _clipped(self, boxes):
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            warnings.simplefilter('ignore', RuntimeWarning)  # empty meshes
            if self.sigma_clip is not None:
                boxes = self.sigma_clip(boxes, axis=-1, masked=False,
                                        copy=False)
        return boxes

    def kept_mean(self, data, leave_out, values):
        """The mean of ``values`` (the frame's shape) over the pixels of
        each mesh of ``data`` that photutils' clip keeps without the
        ``leave_out`` pixels (NaN where a mesh keeps none)."""
        kept = ~np.isnan(self._clipped(self._boxes(data, leave_out)))
        with np.errstate(invalid='ignore', divide='ignore'):
            return (np.nansum(np.where(kept, self._boxes(values, leave_out),
                                       0.0), axis=-1)
                    / np.count_nonzero(kept, axis=-1))

    def estimate(self, boxes):
        """The level and the rms of each mesh of ``boxes`` (one row of
        pixels per mesh, NaN for pixels left out, as `levels` lays them
        out) by photutils' clip and estimators (the rms NaN without
        ``rms_estimator``)."""
        boxes = self._clipped(boxes)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            warnings.simplefilter('ignore', RuntimeWarning)  # empty meshes
            level = np.asarray(self.estimator(boxes, axis=-1), dtype=float)
            rms = (np.full(level.shape, np.nan)
                   if self.rms_estimator is None else np.asarray(
                       self.rms_estimator(boxes, axis=-1), dtype=float))
        return level, rms

    def levels(self, data, leave_out):
        """The level of each mesh of ``data`` (the frame's shape) without
        the ``leave_out`` pixels, by photutils' steps: the sigma clip, then
        the estimator (partial meshes at the top and right take the pixels
        they hold; NaN where a mesh keeps none), and the pixels each
        kept."""
        boxes = self._clipped(self._boxes(data, leave_out))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', AstropyUserWarning)
            warnings.simplefilter('ignore', RuntimeWarning)  # empty meshes
            return (np.asarray(self.estimator(boxes, axis=-1), dtype=float),
                    np.count_nonzero(~np.isnan(boxes), axis=-1).astype(float))


def source_lift(level, meshes, data, sources, usable, *,
                mesh_noise=None, sloped=False, rms=None, fill=False,
                bkg=None, excluded=None, cache=None):
    """
    How far the light of the sources found lifts a Background2D map's
    level, per pixel (data unit), by how much its variance grows without
    them (a factor, per pixel), by how much their wings widen its rms
    (a factor of at most 1, per pixel: 1 but on a sloped sky), and which
    meshes were filled from their neighbours (the mesh grid, bool; see
    ``fill`` below).

    photutils' sigma clip removes the cores of stars but keeps their wings
    and the faint stars, which lift each mesh's level (median and mean
    alike). Each mesh is measured again by photutils' own steps
    (`MeshStatistics.levels`) on all ``usable`` pixels and without the
    ``sources`` pixels (the whole-frame sky's source mask,
    `~ccdphot_ext.background.globalsky.source_pixels`), both on the frame
    less the map's ``level`` (on a sloped sky a mask that covers one side
    of a mesh would otherwise move its level along the slope): the
    difference is the mesh's lift. The mesh levels without it go through
    photutils' median filter as the measured ones did (on a slope the
    filter takes each window's middle mesh, and so its lift), and the
    difference of the two filtered grids is the lift of the map,
    interpolated linearly between mesh centres. A mesh's level from
    ``n_clean`` of its ``n_all`` pixels has ``n_all / n_clean`` times the
    variance (the factor averaged over the filter window); meshes the
    mask leaves empty keep their level. With ``mesh_noise`` (each mesh's
    error before the mask, a grid; only its relative values matter) the
    factor is that of the filtered level instead: each mesh's noise
    grown by ``sqrt(n_all / n_clean)`` and put through photutils' median
    filter by a seeded Monte Carlo (`filtered_variance_factor`). None
    when the meshes measured again do not keep photutils' pixels
    (`MeshStatistics.reproduced`: a mask that Background2D was given and
    ``usable`` does not hold).

    With ``fill`` (or ``bkg``; both given for meshes under `FILL_MESH`
    pixels), a mesh the mask leaves fewer than `FILL_CLEAN_FRACTION` of
    its pixels, a mesh not much larger than a star, takes its level
    without the sources from the meshes around it (`_filled_lift`):
    measured on the few pixels left, or kept, it held the star's light.
    With ``bkg`` (the Background2D) the meshes photutils excluded are
    taken at the level it filled them with (`_photutils_filled`), and
    the lift is put through its interpolator (`_lift_map`) rather than
    spread linearly between mesh centres: on meshes of a star's size the
    map is the spline's bump under the star, which a linear spread of
    the lift left in part.

    ``cache`` (a dict, empty the first time) keeps the mesh statistics
    that do not depend on ``sources`` for the next call with the same
    ``level``, ``data`` and ``usable`` (the map measured again without
    more pixels, `MapSources`).

    On a ``sloped`` sky (``rms``, the map's noise per pixel, given) each
    mesh is measured instead as it would read without its sources
    (`replaced_mesh_levels`): the source pixels are given the map's level
    plus noise drawn from the mesh's other pixels, and the lift is the
    mesh's level less that. The stars' cores that photutils' clip removes
    lie at one place on the slope and the wings it keeps at others, and
    photutils' estimator weighs them by rules of its own (the Source
    Extractor mode falls back to the median on a skewed mesh): measured
    so, the lift holds all of that. Where the whole-frame mask leaves a
    mesh fewer than `MIN_CLEAN_FRACTION` of its pixels (stars closer than
    the mask's growth merge it into one region), the sources are the
    tighter `light_sources` instead. The rms of the meshes so measured,
    over photutils' rms of them, is the factor of the rms (the stars'
    wings widened it by 4% on the frames below). A mesh so measured
    rests on the ``n_clean`` pixels outside the sources (the others are
    drawn from them): its variance is ``n_all / n_clean`` times that of
    the mesh measured on all its pixels (the readings of meshes half
    masked, less those of the same frame without its stars, scattered
    0.91 to 1.2 times ``k_est rms sqrt(1 / n_clean - 1 / n_all)``). The
    factor is put through photutils' filter, and its filling of the
    ``excluded`` meshes, by the seeded Monte Carlo of
    `filtered_variance_factor` (``mesh_noise`` given); it is the factor
    of the meshes' noise, not of the fitted surface's part of the
    level's error (`_without_sources`).
    (49 stars of 1.5e3 and 1e5 e- 32 px apart, each on the bright side of
    a 32 px mesh, on a sky rising from 50 to 250 e- across 256 pixels: the
    mask emptied every inner mesh, and the mean of the map over the pixels
    the clip kept, less its mean over the mesh, taken as the lift there,
    left the level 0.15 e- low, 0.19 of its error; at 50 to 150 e- 0.07
    high.)
    """
    cache = {} if cache is None else cache

    def known(key, measure):
        """``measure()``, kept in ``cache`` under ``key``."""
        if key not in cache:
            cache[key] = measure()
        return cache[key]

    raw, kept = known('levels', lambda: meshes.levels(data, ~usable))
    if not meshes.reproduced(kept):
        return None
    (by, bx), (ny, nx) = meshes.box_size, meshes.shape
    my, mx = raw.shape
    flat = data - level
    if sloped and rms is not None:
        sources = _sources_leaving_pixels(sources, usable, flat,
                                          meshes.box_size)
        replaced, replaced_rms = replaced_mesh_levels(
            meshes, data, level, usable, sources, rms)
        lift = raw - replaced
        mesh_rms = known('rms', lambda: meshes.estimate(
            meshes._boxes(data, ~usable))[1])
        with np.errstate(invalid='ignore', divide='ignore'):
            rms_factor = replaced_rms / mesh_rms
        rms_factor = np.where(np.isfinite(rms_factor),
                              np.minimum(rms_factor, 1.0), 1.0)
        rms_factor = _spread(rms_factor, meshes.box_size, meshes.shape)
    else:
        lift = (known('flat', lambda: meshes.levels(flat, ~usable)[0])
                - meshes.levels(flat, ~usable | sources)[0])
        rms_factor = np.ones(meshes.shape)
    counts = np.zeros((my * by, mx * bx))
    counts[:ny, :nx] = usable & ~sources
    n_clean = counts.reshape(my, by, mx, bx).sum(axis=(1, 3))
    counts[:ny, :nx] = usable
    n_usable = counts.reshape(my, by, mx, bx).sum(axis=(1, 3))
    with np.errstate(divide='ignore', invalid='ignore'):
        ratio = meshes.n_pixels / n_clean
    if sloped and rms is not None and excluded is not None:
        # photutils filled the meshes it excluded from the measured ones
        ratio = np.where(excluded & (n_clean > 0), 1.0, ratio)
    filled = np.zeros(raw.shape, dtype=bool)
    if fill or bkg is not None:
        lift, filled = _filled_lift(raw, lift, n_clean, n_usable)
        ratio[filled] = 1.0
    if bkg is not None:
        # photutils' grid holds the meshes it excluded as filled from the
        # others: their lift is that level less the one without sources
        grid = _photutils_filled(raw, excluded_meshes(bkg))
        lift = lift + (grid - raw)
        raw = grid
    elif excluded is not None and np.any(excluded):
        # photutils filled the meshes it excluded from the measured ones:
        # their lift is the one its filling carried in from those
        grid = _photutils_filled(raw, excluded)
        lift = grid - _photutils_filled(raw - lift, excluded)
        raw = grid
    unknown = ~np.isfinite(lift) | ~np.isfinite(ratio) | ~np.isfinite(raw)
    lift[unknown], ratio[unknown] = 0.0, 1.0
    if sloped and rms is None:  # where the clip kept pixels
        shift = (meshes.kept_mean(data, ~usable, level)
                 - _mesh_means(level, usable, meshes.box_size, raw.shape))
        lift += np.where(np.isfinite(shift) & np.isfinite(raw), shift, 0.0)
    raw = np.where(np.isfinite(raw), raw, 0.0)
    filtered = _median_filtered(np.stack([raw, raw - lift]),
                                meshes.filter_size)
    lift = filtered[0] - filtered[1]
    if mesh_noise is None:
        ratio = np.maximum(_window_mean(ratio, meshes.filter_size), 1.0)
    else:
        ratio = filtered_variance_factor(
            mesh_noise, np.maximum(ratio, 1.0), meshes.filter_size,
            excluded=excluded if sloped and rms is not None else None)
    return (_lift_map(lift, bkg, meshes),
            _spread(ratio, meshes.box_size, meshes.shape), rms_factor,
            filled)


def _photutils_filled(raw, excluded):
    """The mesh levels ``raw`` with the ``excluded`` meshes filled as
    photutils fills them: the inverse-distance mean (10 neighbours, power
    1) of the others."""
    measured = ~excluded & np.isfinite(raw)
    holes = excluded & np.isfinite(raw)
    if not np.any(holes) or not np.any(measured):
        return raw
    grid = np.array(raw, dtype=float)
    grid[holes] = ShepardIDWInterpolator(
        np.column_stack(np.nonzero(measured)), raw[measured])(
        np.column_stack(np.nonzero(holes)), n_neighbors=10, power=1.0)
    return grid


def _lift_map(lift, bkg, meshes):
    """The lift of the (filtered) mesh grid ``lift`` per pixel: the map
    photutils' interpolator makes of ``bkg``'s final grid less the one it
    makes of that grid less ``lift`` (its spline over meshes of a star's
    size overshoots between them, which a linear spread of the lift left
    in the level: 0.75 ADU under a 5000 ADU star in 8 px meshes); linear
    between mesh centres (`_spread`) without ``bkg``."""
    interpolator = getattr(bkg, 'interpolator', None)
    kwargs = getattr(bkg, '_interp_kwargs', None)
    if interpolator is not None and kwargs is not None and np.any(lift):
        grid = getattr(bkg, 'background_mesh', None)
        grid = np.asarray(getattr(grid, 'value', grid), dtype=float)
        if grid.shape == lift.shape:
            kwargs = dict(kwargs, dtype=float)
            with contextlib.suppress(TypeError, ValueError):
                out = (np.asarray(interpolator(grid, **kwargs), dtype=float)
                       - np.asarray(interpolator(grid - lift, **kwargs),
                                    dtype=float))
                if out.shape == tuple(meshes.shape):
                    return out
    return _spread(lift, meshes.box_size, meshes.shape)


#: `source_lift`: a mesh that the whole-frame source mask leaves fewer than
#: this fraction of its usable pixels (a mesh not much larger than a star's
#: footprint) is not measured on the few it leaves: its level without the
#: sources is interpolated from the meshes it leaves more (`_filled_lift`).
FILL_CLEAN_FRACTION = 0.25
#: ... on meshes (their shorter side) under this many pixels: the whole-frame
#: source mask grows a star's segment by 3 blocks of 4 px on every side, so
#: that one star can empty such a mesh. Larger meshes are emptied only by
#: many stars (a crowded frame, tied to its blank sky instead) and keep
#: their level measured on the pixels left.
FILL_MESH = 32


def _filled_lift(raw, lift, n_clean, n_usable):
    """
    The sources' lift of each mesh, with the meshes the source mask (all
    but) empties filled from their neighbours.

    A mesh left fewer than `FILL_CLEAN_FRACTION` of its ``n_usable``
    pixels outside the sources (``n_clean``) lies within a star's
    footprint: measured on the few pixels the mask leaves (or kept as it
    is, with none), its level keeps the star's light, which on a mesh of
    the star's size is most of the map there (a 5000 ADU star in 3 px
    meshes lifted the map under it from 100 to 250 ADU). Its level
    without the sources is instead the inverse-distance mean of the
    levels without the sources (``raw - lift``) of the 10 nearest meshes
    the mask leaves more (power 1, as photutils fills the meshes it
    excludes), and its lift the measured level ``raw`` less that.

    Returns
    -------
    lift : 2-D `~numpy.ndarray`
        The mesh grid (a copy).
    filled : 2-D `~numpy.ndarray` of bool
        The meshes filled.
    """
    lift = np.array(lift, dtype=float)
    with np.errstate(invalid='ignore'):
        filled = (n_usable > 0) & (n_clean < FILL_CLEAN_FRACTION * n_usable)
        good = ~filled & (n_clean > 0) & np.isfinite(lift) & np.isfinite(raw)
    if not np.any(filled) or not np.any(good):
        return lift, np.zeros(lift.shape, dtype=bool)
    filled &= np.isfinite(raw)
    clean = raw - lift
    lift[filled] = raw[filled] - ShepardIDWInterpolator(
        np.column_stack(np.nonzero(good)), clean[good])(
        np.column_stack(np.nonzero(filled)), n_neighbors=10, power=1.0)
    return lift, filled


#: `source_lift` on a sloped sky: a mesh that the whole-frame source mask
#: leaves fewer than this fraction of its usable pixels is measured without
#: the tighter `light_sources` instead.
MIN_CLEAN_FRACTION = 0.25
#: Draws of `replaced_mesh_levels` (the mesh levels are their mean).
N_REPLACED = 8


def light_sources(flat, usable):
    """
    A source mask of a frame less its sky that leaves the sky between
    close stars: its segments grown by one block instead of the
    whole-frame mask's `~ccdphot_ext.background.globalsky.MASK_DILATE`.

    The frame ``flat`` (the data less the map, so that a slope does not
    stand out) is averaged in blocks of
    `~ccdphot_ext.background.globalsky.MASK_BIN` pixels over the
    ``usable`` ones; segments of at least
    `~ccdphot_ext.background.globalsky.MASK_NPIXELS` connected blocks
    beyond `~ccdphot_ext.background.globalsky.MASK_NSIGMA` binned
    standard deviations (robust), holding a block beyond
    `~ccdphot_ext.background.globalsky.MASK_SEED`, are found above and, as
    many on pure noise, below the level, and grown by one block. A block
    beyond the growth did not make the segment, whatever its noise: the
    pixels left are unbiased sky (where the stars' light has fallen below
    the noise of a block within one block of the segment; the light of a
    star's far wings stays).

    Parameters
    ----------
    flat : 2-D `~numpy.ndarray`
        The frame less its sky level.
    usable : 2-D `~numpy.ndarray` of bool
        The pixels to use.

    Returns
    -------
    sources : 2-D `~numpy.ndarray` of bool
        The frame's shape.
    """
    from scipy import ndimage

    from .globalsky import MASK_BIN, MASK_NPIXELS, MASK_NSIGMA, MASK_SEED

    ny, nx = flat.shape
    my, mx = -(-ny // MASK_BIN), -(-nx // MASK_BIN)
    sums = np.zeros((my * MASK_BIN, mx * MASK_BIN))
    counts = np.zeros(sums.shape)
    sums[:ny, :nx] = np.where(usable, flat, 0.0)
    counts[:ny, :nx] = usable
    sums = sums.reshape(my, MASK_BIN, mx, MASK_BIN).sum(axis=(1, 3))
    counts = counts.reshape(my, MASK_BIN, mx, MASK_BIN).sum(axis=(1, 3))
    with np.errstate(invalid='ignore', divide='ignore'):
        significance = sums / np.sqrt(counts)
    finite = np.isfinite(significance)
    found = np.zeros(significance.shape, dtype=bool)
    if np.count_nonzero(finite) < 2:
        return np.zeros(flat.shape, dtype=bool)
    centre = np.median(significance[finite])
    scale = 1.4826 * np.median(np.abs(significance[finite] - centre))
    if not scale > 0:
        return np.zeros(flat.shape, dtype=bool)
    z = np.where(finite, (significance - centre) / scale, 0.0)
    eight = np.ones((3, 3), dtype=bool)
    for above, seeds in ((z > MASK_NSIGMA, z > MASK_SEED),
                         (z < -MASK_NSIGMA, z < -MASK_SEED)):
        labels, n_found = ndimage.label(above, structure=eight)
        if not n_found:
            continue
        keep = np.zeros(n_found + 1, dtype=bool)
        keep[labels[seeds]] = True
        keep &= np.bincount(labels.ravel(),
                            minlength=n_found + 1) >= MASK_NPIXELS
        keep[0] = False
        found |= keep[labels]
    found = ndimage.binary_dilation(found, structure=eight)
    return np.repeat(np.repeat(found, MASK_BIN, axis=0), MASK_BIN,
                     axis=1)[:ny, :nx]


def _sources_leaving_pixels(sources, usable, flat, box_size):
    """The whole-frame source mask ``sources``, with `light_sources` in
    the meshes where it leaves fewer than `MIN_CLEAN_FRACTION` of their
    usable pixels."""
    (by, bx), (ny, nx) = box_size, sources.shape
    my, mx = -(-ny // by), -(-nx // bx)

    def per_mesh(pixels):
        grid = np.zeros((my * by, mx * bx))
        grid[:ny, :nx] = pixels
        return grid.reshape(my, by, mx, bx).sum(axis=(1, 3))

    n_usable = per_mesh(usable)
    emptied = per_mesh(usable & ~sources) < MIN_CLEAN_FRACTION * n_usable
    if not np.any(emptied & (n_usable > 0)):
        return sources
    light = light_sources(flat, usable)
    emptied = np.repeat(np.repeat(emptied, by, axis=0), bx,
                        axis=1)[:ny, :nx]
    return np.where(emptied, light, sources)


def replaced_mesh_levels(meshes, data, level, usable, sources, rms, *,
                         seed=0):
    """
    The level of each mesh of ``data`` without its ``sources``, by
    photutils' steps, on the mesh's own place on the sky.

    The ``sources`` pixels of each mesh are given the map's ``level``
    there plus the residual ``data - level`` of a pixel drawn (with
    replacement, seeded) from the mesh's other usable pixels, scaled by the
    ratio of the map's noise ``rms`` at the two pixels (on a Poisson sky
    the bright side of a mesh scatters more); the mesh is then measured by
    photutils' clip and estimator (`MeshStatistics.levels`), and the levels
    are averaged over `N_REPLACED` draws. Unlike measuring the mesh
    without the source pixels, the pixels keep their places on a sloped
    sky and the mesh its size, so that photutils' clip and estimator act
    as they did on the frame, less the sources' light.

    Parameters
    ----------
    meshes : `MeshStatistics`
        How the map measured its meshes.
    data, level, rms : 2-D `~numpy.ndarray`
        The frame, the map's level and its noise per pixel.
    usable, sources : 2-D `~numpy.ndarray` of bool
        The pixels to use, and those of the sources among them.
    seed : int, optional
        The draws' seed (default 0).

    Returns
    -------
    levels, rms : 2-D `~numpy.ndarray`
        The mesh grid of the levels and of the rms (by photutils' rms
        estimator, NaN without it); NaN where a mesh has no usable pixel
        outside the sources.
    """
    (by, bx), (ny, nx) = meshes.box_size, meshes.shape
    my, mx = -(-ny // by), -(-nx // bx)

    def boxes(values, fill):
        grid = np.full((my * by, mx * bx), fill,
                       dtype=np.asarray(values).dtype)
        grid[:ny, :nx] = values
        return grid.reshape(my, by, mx, bx).swapaxes(1, 2).reshape(
            my, mx, by * bx)

    replace = boxes(usable & sources, False)
    clean = boxes(usable & ~sources, False)
    n_clean = np.count_nonzero(clean, axis=-1)
    pixels = boxes(np.where(usable, data, np.nan), np.nan)
    under = boxes(np.asarray(level, dtype=float), np.nan)
    flat = pixels - under
    noise = boxes(np.broadcast_to(np.asarray(rms, dtype=float),
                                  data.shape), np.nan)
    # the clean pixels of each mesh first, so that a draw of 0 ..
    # n_clean - 1 picks one of them
    order = np.argsort(~clean, axis=-1, kind='stable')
    top = np.maximum(n_clean, 1)[..., None]
    rng = np.random.default_rng(seed)
    levels, spreads = [], []
    for _ in range(N_REPLACED):
        pick = np.minimum((rng.random(pixels.shape) * top).astype(int),
                          top - 1)
        index = np.take_along_axis(order, pick, axis=-1)
        with np.errstate(invalid='ignore', divide='ignore'):
            scale = noise / np.take_along_axis(noise, index, axis=-1)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        drawn = np.where(replace, under + np.take_along_axis(
            flat, index, axis=-1) * scale, pixels)
        mesh_level, mesh_rms = meshes.estimate(drawn)
        levels.append(mesh_level)
        spreads.append(mesh_rms)
    levels = np.mean(levels, axis=0)
    rms = np.mean(spreads, axis=0)
    levels[n_clean == 0] = np.nan
    rms[n_clean == 0] = np.nan
    return levels, rms


def _mesh_means(values, keep, box_size, grid_shape):
    """The mean of ``values`` over the ``keep`` pixels of each mesh (NaN
    where a mesh keeps none)."""
    (by, bx), (my, mx) = box_size, grid_shape
    ny, nx = values.shape
    sums, counts = np.zeros((my * by, mx * bx)), np.zeros((my * by, mx * bx))
    sums[:ny, :nx] = np.where(keep, values, 0.0)
    counts[:ny, :nx] = keep
    with np.errstate(invalid='ignore', divide='ignore'):
        return (sums.reshape(my, by, mx, bx).sum(axis=(1, 3))
                / counts.reshape(my, by, mx, bx).sum(axis=(1, 3)))


def filtered_variance_factor(noise, ratio, filter_size, *, seed=0,
                             excluded=None):
    """
    How much the variance of photutils' median-filtered mesh levels grows
    when each mesh's variance grows by ``ratio`` (a grid, at least 1).
    With ``excluded`` (a bool grid) those meshes are filled in each
    realisation from the others as photutils fills them (inverse-distance
    weights of the 10 nearest, power 1) before the filter.

    The meshes' ``noise`` (a grid) and ``noise * sqrt(ratio)`` are put
    through photutils' median filter (`_median_filtered`) in the same
    seeded Gaussian realisations (`N_REALISATIONS`); the factor is the
    ratio of the filtered levels' variances, mesh by mesh (``ratio`` itself
    without a filter). The median passes over a mesh that kept few pixels,
    which the window's mean of ``ratio`` counts in full: on a crowded
    frame (256 stars on 384 x 384 pixels, 92% of it masked) that mean made
    the level's error 1.7 times its scatter.
    """
    fy, fx = (int(f) for f in filter_size)
    fill = excluded is not None and np.any(excluded) and not np.all(excluded)
    if fy * fx == 1 and not fill:
        return ratio
    draws = np.random.default_rng(seed).normal(
        0.0, 1.0, (N_REALISATIONS,) + np.shape(noise)) * noise

    def filled(grids):
        if fill:
            yx = np.column_stack(np.nonzero(~excluded)).astype(float)
            weights = np.array([_idw_weights(yx, hole) for hole in
                                np.argwhere(excluded).astype(float)])
            grids = np.array(grids)
            grids[:, excluded] = grids[:, ~excluded] @ weights.T
        return _median_filtered(grids, filter_size)

    before = np.var(filled(draws), axis=0)
    draws *= np.sqrt(ratio)
    after = np.var(filled(draws), axis=0)
    with np.errstate(divide='ignore', invalid='ignore'):
        factor = after / before
    return np.where(np.isfinite(factor), np.maximum(factor, 1.0), 1.0)


#: `pixel_error` evaluates photutils' spline at most this many points per
#: mesh along each axis and interpolates the variance linearly between them
#: (the variance changes smoothly across a mesh: from its centre, where the
#: spline takes that mesh's level, to the points between centres, where it
#: averages neighbours).
PIXEL_SAMPLES = 8
#: `pixel_error` takes fewer points per mesh where the realisations'
#: spline would cost more than this many multiplications (a grid of
#: 64 x 64 meshes gets 1, each pixel its mesh's scatter, in a fraction
#: of a second instead of half a minute).
PIXEL_WORK = 3e8


def pixel_error(bkg, grids):
    """The scatter, per pixel, of photutils' map made from mesh ``grids``
    (`pixel_scatter`)."""
    return pixel_scatter(bkg, grids)[0]


def pixel_scatter(bkg, grids):
    """
    The scatter, per pixel, of photutils' map made from mesh grids, and
    the shift of its mean from the map of their mean grid.

    Parameters
    ----------
    bkg : `~photutils.background.Background2D`
        The map (its interpolator, box size and shape are used).
    grids : 3-D `~numpy.ndarray`
        Realisations of the final mesh grid (after photutils' filling of
        excluded meshes and its median filter), one per row.

    Returns
    -------
    error : 2-D `~numpy.ndarray`
        The frame's shape: the standard deviation over the realisations of
        the map photutils' interpolator makes of them. For its spline
        (``scipy.ndimage.zoom``, photutils' default) the spline is
        evaluated at up to `PIXEL_SAMPLES` points per mesh along each axis
        (with its clip to the grid's range) and the variance interpolated
        linearly to the pixels (fewer points on a large grid,
        `PIXEL_WORK`); for another interpolator with its arguments at
        hand, each realisation is interpolated at every pixel; on a grid
        too large for either, or otherwise, each pixel gets its mesh's
        scatter.
    shift : 2-D `~numpy.ndarray`
        The mean of those maps less the map of the realisations' mean
        grid (0 where not known): photutils clips its spline to the
        range of each grid, and on a sloped sky the pixels beyond the
        outer mesh centres take the lowest (or highest) of the noisy
        edge meshes, below the mean grid's lowest (0.1 ADU, 1.3 of the
        level's errors, for a slope of +-3 sigma across 512 pixels).

    Notes
    -----
    The map between mesh centres averages the neighbouring meshes, and
    the scatter there is lower than at the centres (about 0.6 of it
    midway between four meshes without a filter); at the grid's edges
    the median filter's window is cut to fewer meshes and the scatter is
    higher (up to 1.5 times the interior's at a corner with a 3 x 3
    filter). One error per mesh, ``k_est sqrt(pi / (2 m)) rms /
    sqrt(n)``, left the level pulls of flat frames with a spread of 0.87
    (no filter) to 1.13 (5 x 5 filter), and 0.5 to 1.8 pixel by pixel.
    """
    from scipy.ndimage import zoom

    shape = tuple(np.shape(bkg.background_rms))
    box = tuple(int(b) for b in bkg.box_size)
    interpolator = getattr(bkg, 'interpolator', None)
    kwargs = getattr(bkg, '_interp_kwargs', None)
    order = getattr(interpolator, 'order', None)
    mean_grid = np.mean(grids, axis=0)
    n_real, my, mx = grids.shape
    per_mesh = PIXEL_SAMPLES
    while per_mesh > 1 and (n_real * per_mesh * my * mx
                            * (my + per_mesh * mx)) > PIXEL_WORK:
        per_mesh -= 1
    if per_mesh > 1 and order is not None and hasattr(
            interpolator, 'mode') and (
            type(interpolator).__name__.endswith('BkgZoomInterpolator')):
        samples = tuple(min(b, per_mesh) for b in box)
        mode, cval = interpolator.mode, getattr(interpolator, 'cval', 0.0)
        clip = getattr(interpolator, 'clip', False)
        if mode == 'constant' and cval != 0:  # affine, not linear
            def sampled(stack):
                return np.array([zoom(grid, samples, order=order,
                                      mode=mode, cval=cval, grid_mode=True)
                                 for grid in stack])
        else:
            # the spline is separable and linear in the grid: its weights
            # along each axis are the zoom of the identity
            wy, wx = (zoom(np.eye(m), (s, 1), order=order, mode=mode,
                           grid_mode=True)
                      for m, s in zip(grids.shape[1:], samples,
                                      strict=True))

            def sampled(stack):
                return np.matmul(np.matmul(wy, stack), wx.T)

        def clipped(stack):
            out = sampled(stack)
            if clip:
                out = np.clip(out, np.min(stack, axis=(1, 2))[:, None, None],
                              np.max(stack, axis=(1, 2))[:, None, None])
            return out

        centre = clipped(mean_grid[None])[0]
        total, squares = np.zeros(centre.shape), np.zeros(centre.shape)
        # a few million samples at a time (a 4096-pixel frame in 64-pixel
        # meshes has 512 x 512 of them per realisation)
        step = max(1, int(4e6 // centre.size))
        for start in range(0, grids.shape[0], step):
            part = clipped(grids[start:start + step]) - centre
            total += part.sum(axis=0)
            squares += (part * part).sum(axis=0)
        n = grids.shape[0]
        both = np.array([squares / n - (total / n) ** 2, total / n])
        # the sample k lies at mesh coordinate (k + 0.5) / s - 0.5, the
        # pixel p at (p + 0.5) / box - 0.5
        for axis in (0, 1):
            s, b, n = samples[axis], box[axis], shape[axis]
            m = both.shape[axis + 1]
            at = np.clip((np.arange(n) + 0.5) * s / b - 0.5, 0.0, m - 1.0)
            lo = (np.minimum(np.floor(at).astype(int), m - 2) if m > 1
                  else np.zeros(n, dtype=int))
            frac = at - lo
            hi = np.minimum(lo + 1, m - 1)
            if axis == 0:
                both = (both[:, lo] * (1.0 - frac)[None, :, None]
                        + both[:, hi] * frac[None, :, None])
            else:
                both = (both[:, :, lo] * (1.0 - frac)[None, None, :]
                        + both[:, :, hi] * frac[None, None, :])
        return np.sqrt(np.maximum(both[0], 0.0)), both[1]
    if per_mesh > 1 and interpolator is not None and kwargs is not None:
        def interpolated(grid):
            return np.asarray(interpolator(grid, **dict(kwargs,
                                                        dtype=float)),
                              dtype=float)

        centre = interpolated(mean_grid)
        if centre.shape == shape:
            total, squares = np.zeros(shape), np.zeros(shape)
            for grid in grids:
                part = interpolated(grid) - centre
                total += part
                squares += part * part
            n = grids.shape[0]
            return (np.sqrt(np.maximum(squares / n - (total / n) ** 2, 0.0)),
                    total / n)
    return (block_replicate(np.std(grids, axis=0), box,
                            conserve_sum=False)[:shape[0], :shape[1]],
            np.zeros(shape))


def filtered_noise_error(bkg, noise, *, seed=0):
    """
    The error, per pixel, of the level of a Background2D whose meshes
    were all measured: each mesh's ``noise`` (a grid, `_mesh_noise`) put
    through photutils' median filter and interpolator in `N_REALISATIONS`
    seeded Gaussian realisations (`pixel_error`).
    """
    draws = np.random.default_rng(seed).normal(
        0.0, 1.0, (N_REALISATIONS,) + np.shape(noise)) * noise
    return pixel_error(bkg, _median_filtered(draws, bkg.filter_size))


def _spread(grid, box_size, shape):
    """A mesh grid interpolated linearly between mesh centres onto the
    frame's pixels (the nearest mesh's value beyond the outer centres)."""
    from scipy.ndimage import zoom

    if grid.size == 1:
        return np.full(shape, float(grid.ravel()[0]))
    out = zoom(grid, box_size, order=1, mode='nearest', grid_mode=True)
    return out[:shape[0], :shape[1]]


def _window_mean(grid, filter_size):
    """The mean of ``grid`` over a ``filter_size`` window, the window cut
    at the grid's edges (as photutils' median filter)."""
    fy, fx = (int(f) for f in filter_size)
    if fy * fx == 1:
        return grid
    pad = np.pad(grid, ((fy // 2, (fy - 1) // 2), (fx // 2, (fx - 1) // 2)),
                 constant_values=np.nan)
    return np.nanmean(sliding_window_view(pad, (fy, fx)), axis=(-2, -1))


def background2d_parts(bkg, efficiency, gain=None, data=None, mask=None):
    """Level, rms, n_mesh, error of the level, efficiency, meta and unit of
    a photutils Background2D (see `SkyEstimate.from_background2d`)."""
    if not isinstance(bkg, Background2D):
        raise TypeError('bkg must be a photutils Background2D, got '
                        f'{type(bkg).__name__}')
    check_mesh_box(bkg.box_size, name='bkg.box_size')
    # photutils frees its measured mesh levels once its maps are made
    lattice_note = None
    if data is not None:
        bkg, lattice_note = on_lattice(bkg, data, mask)
    raw_levels, raw_from = _measured_mesh_levels(bkg, data, mask)
    name = estimator_name(bkg.bkg_estimator)
    meta = {'method': 'Background2D', 'bkg_estimator': name,
            'box_size': tuple(int(b) for b in bkg.box_size),
            'filter_size': tuple(int(f) for f in bkg.filter_size),
            'exclude_percentile': float(bkg.exclude_percentile),
            'mesh_levels_from': raw_from}
    if lattice_note is not None:
        meta['lattice_note'] = lattice_note
    level = bkg.background
    rms = bkg.background_rms
    unit = getattr(level, 'unit', None)
    level = np.asarray(getattr(level, 'value', level), dtype=float)
    rms, clip = clip_corrected_rms(
        bkg, np.asarray(getattr(rms, 'value', rms), dtype=float),
        clip_factors)
    n_mesh = np.asarray(bkg.n_pixels_map, dtype=float)
    efficiency = _mesh_efficiency(bkg, efficiency, meta, data, mask, clip)
    error_on_mean, n_excluded = propagated_mesh_error(bkg, efficiency, clip)
    meta.update(rms_clip_factor=clip, n_excluded_meshes=n_excluded,
                error_on_mean_from=(
                    "k_est * rms / sqrt(n_mesh) per mesh through photutils' "
                    'median filter and interpolator, pixel by pixel'))
    measured = None if error_on_mean is None else ~excluded_meshes(bkg)
    pixel_noise = None if data is None else _frame_pixel_noise(
        bkg, data, mask, meta)
    slope = _sloped_surface(bkg, raw_levels, efficiency * clip, measured,
                            pixel_noise)
    if data is not None and measured is not None:
        slope = _fitted_with_unmeasured_meshes(
            bkg, data, mask, raw_levels, measured, slope, efficiency * clip,
            pixel_noise, meta)
    if slope is not None and slope['response'] is not None:
        meta['mesh_bend_response'] = float(np.median(slope['response']))
    if (slope is not None and raw_from == 'filtered grid'
            and np.prod(bkg.filter_size) > 1):
        warnings.warn(
            "Background2D: photutils has freed its measured mesh levels "
            '(bkg.background and bkg.background_rms were read), so the '
            "sky's slope is fitted to the median-filtered mesh grid, which "
            'flattens it at the edges: the level and its error there are '
            'approximate. Give from_background2d the frame (data=, and '
            'the mask given to Background2D), or call it before reading '
            "the maps", AstropyUserWarning, stacklevel=3)
    if error_on_mean is None:
        error_on_mean = filtered_noise_error(
            bkg, _mesh_noise(bkg, efficiency * clip))
        noise_error = error_on_mean
        error_on_mean, offset = _with_filter_error(bkg, slope,
                                                   error_on_mean, meta)
    else:
        noise_error = error_on_mean
        meta['error_on_mean_from'] = ('mesh errors propagated through '
                                      "photutils' interpolation and filter"
                                      ', with the interpolation error')
        meta['n_mesh_note'] = (
            f'{n_excluded} of {np.size(bkg.n_pixels_mesh)} meshes '
            'excluded by photutils (exclude_percentile='
            f'{bkg.exclude_percentile:g}) and filled by interpolation: '
            'the level error there is propagated from the measured '
            'meshes, not taken from their own pixel counts, and holds '
            'the interpolation error (meta["interpolation_error"])')
        # on a sloped or curved sky the surface, put through photutils'
        # filling, takes the filling's misfit of it from the level: what
        # is left is the surface's own misfit where no mesh was measured
        error_on_mean = _with_interpolation_error(
            bkg, raw_levels, error_on_mean, efficiency * clip, meta,
            slope=slope)
        error_on_mean, offset = _with_filter_error(
            bkg, slope, error_on_mean, meta, measured=measured)
    spread = slope_spread_variance(bkg, slope)
    if slope is not None:
        if data is None:
            _warn_unmeasured_noise(rms, spread, meta)
        # the level's spread over each mesh is in photutils' rms
        rms = np.sqrt(np.maximum(rms * rms - spread, 0.25 * rms * rms))
        if slope['sigma'] is not None:
            # photutils' filter takes the rms of meshes where a curved sky
            # spreads most to their neighbours: at most the pixels' noise
            # found in each mesh beside that sky
            rms = np.minimum(rms, _spread(
                slope['sigma'], tuple(int(b) for b in bkg.box_size),
                rms.shape))
        meta['slope_spread_rms'] = float(np.sqrt(np.max(spread)))
        meta['slope_offset'] = float(np.max(np.abs(offset)))
        meta['slope_fits'] = slope['fits']
        level = level - offset
    gain = checked_gain(gain, getattr(data, 'unit', None),
                        getattr(data, 'meta', None))
    level, bias = _given_gain_bias(bkg, level, rms, gain, spread, meta)
    record = None
    if data is not None:
        record = MapSources.of(
            bkg, data, mask, unit, level, rms, error_on_mean, meta,
            gain=gain, bias=bias, spread=spread,
            n_measured=(np.size(raw_levels) if measured is None
                        else int(np.count_nonzero(measured))),
            noise_error=noise_error)
        if gain is None:
            _with_frame_skew(record, rms, spread)
        level, rms, error_on_mean, meta = _without_sources(
            record, np.asarray(record.frame.data, dtype=float))
        record.frame = None  # the photometry gives the frame again
    elif gain is None:
        _warn_unknown_gain(bkg, level, rms, error_on_mean, meta)
    return level, rms, n_mesh, error_on_mean, efficiency, meta, unit, record


def _mesh_efficiency(bkg, efficiency, meta, data, mask, clip):
    """``k_est`` of a Background2D's estimator: ``efficiency`` as given,
    else `BACKGROUND2D_EFFICIENCY`'s (a ``ModeEstimatorBackground``'s from
    its factors; the median's for an estimator not listed, said in
    ``meta``), or with ``data`` on a coarse lattice the one
    `lattice_efficiency` measures (said in ``meta``)."""
    if efficiency is not None:
        return positive_scalar(efficiency, 'efficiency', allow_none=False)
    name = estimator_name(bkg.bkg_estimator)
    if name == 'ModeEstimatorBackground':
        est = bkg.bkg_estimator
        return combination_efficiency(est.median_factor, est.mean_factor)
    efficiency = BACKGROUND2D_EFFICIENCY.get(name, MEDIAN_EFFICIENCY)
    if name not in BACKGROUND2D_EFFICIENCY:
        meta['efficiency_note'] = ("estimator not listed: the median's k "
                                   'assumed')
        return efficiency
    found = None if data is None else lattice_efficiency(bkg, data, mask,
                                                         clip)
    if found is None:
        return efficiency
    meta['efficiency_note'] = (
        f'digitised frame, its noise under {LATTICE_COARSE:g} steps: the '
        "estimator's k measured on the meshes' own pixels (their influence "
        f'on the interpolated median and the mean; {efficiency:.4f} on '
        'continuous Gaussian noise)')
    return found


def _frame_pixel_noise(bkg, data, mask, meta):
    """`mesh_pixel_noise` of the frame, the lag of its differences in
    ``meta['pixel_noise_lag']`` where that is beyond 1."""
    noise, lag = _lagged_pixel_noise(bkg, data, mask)
    if lag is not None and lag > 1:
        meta['pixel_noise_lag'] = int(lag)
    return noise


def _given_gain_bias(bkg, level, rms, gain, spread, meta):
    """The ``level`` less its estimator's Poisson bias at the ``gain``
    given (`estimator_skew_bias`; recorded in ``meta``), and that bias
    (None without a gain or known estimator weights)."""
    if gain is None:
        return level, None
    bias, note = estimator_skew_bias(bkg, level, rms, gain, spread=spread)
    if bias is None:
        return level, None
    meta['estimator_bias'] = float(np.median(bias))
    meta['estimator_bias_note'] = note
    return level - bias, bias


#: Without the frame (``data=``) the pixels' noise of a Background2D map on
#: a sloped or curved sky is photutils' rms less the sky's spread over each
#: mesh (`slope_spread_variance`); where that spread is more than this share
#: of photutils' variance, `_warn_unmeasured_noise` warns. A deep stack
#: (noise 1 on a sky of 100 dropping by 20% to the edge midpoints, 64 px
#: meshes: a share of 0.95) had its noise found 0 to 1.9 times the true one
#: (flux pulls std 1.46); a sky of 150 ADU (gain 2) under the same vignette
#: (0.4) within 6%.
UNMEASURED_NOISE_SHARE = 0.75


def _warn_unmeasured_noise(rms, spread, meta, stacklevel=4):
    """Warn (and note in ``meta['pixel_noise_note']``) where the sky's
    spread over a mesh (``spread``, a variance per pixel) is more than
    `UNMEASURED_NOISE_SHARE` of photutils' variance (``rms`` squared):
    the pixels' noise left is then a small difference of two large
    numbers, and a map made without the frame cannot measure it
    (`mesh_pixel_noise`). ``stacklevel`` as in `warnings.warn`, counted
    from here."""
    with np.errstate(invalid='ignore', divide='ignore'):
        share = np.where(rms > 0, spread / (rms * rms), 0.0)
    share = np.where(np.isfinite(share), share, 0.0)
    worst = float(np.max(share))
    if not worst > UNMEASURED_NOISE_SHARE:
        return
    where = float(np.mean(share > UNMEASURED_NOISE_SHARE))
    meta['pixel_noise_note'] = (
        f"the sky's spread over a mesh is up to {worst:.0%} of photutils' "
        f'variance ({where:.0%} of the frame): the pixels\' noise is '
        'photutils\' rms less that spread, not measured')
    warnings.warn(
        "Background2D: the sky's slope or curve spreads its level over a "
        f"mesh by up to {worst:.0%} of photutils' variance there "
        f'({where:.0%} of the frame), so the pixels\' noise, photutils\' rms '
        'less that spread, is not known (and with it the level\'s error '
        'and the flux errors: a deep stack under a vignette had it from 0 '
        'to twice the true noise). Give SkyEstimate.from_background2d the '
        'frame (data=, and the mask given to Background2D), which measures '
        'the noise from neighbouring pixels', AstropyUserWarning,
        stacklevel=stacklevel)


#: A Background2D map of fewer measured meshes than `QUADRATIC_MIN_MESHES`
#: cannot follow a curved sky between them (one mesh is a flat level, two
#: by two a plane): `check_coarse_map` compares it with the frame's
#: unmasked pixels in cells of this many pixels a side at least, at most
#: `COARSE_CELLS` across the frame's shorter side.
COARSE_CELL_MIN = 16
COARSE_CELLS = 8
#: `check_coarse_map` flags the map when the cells' offsets from it are
#: this unlikely from their noise and its error (chi-square).
COARSE_P = 1e-4
#: `check_coarse_map` averages each sub-cell's pixels between these
#: percentiles (and their complement to 100).
COARSE_TRIM = 10.0
#: `check_coarse_map` needs this many second differences of the cells'
#: offsets (their noise) to judge them.
COARSE_MIN_BENDS = 8
#: `check_coarse_map` fits the cells' offsets with a quadratic surface
#: (this many terms), leaving out cells beyond `COARSE_CLIP` of their
#: standard errors from it (a bright star's cell).
COARSE_TERMS = 6
COARSE_CLIP = 4.0


def check_coarse_map(data, mask, level, error_on_mean, meta, n_measured):
    """
    Check a map of few meshes against the frame's own pixels.

    The frame less the map is cut into square cells (`COARSE_CELL_MIN`
    pixels a side at least, `COARSE_CELLS` across the shorter side at
    most), each into 4 x 4 sub-cells. A cell's offset from the map is the
    median of its sub-cells' trimmed means (`COARSE_TRIM`; a star lifts
    a few sub-cells, not that median), less the median offset (an
    estimator's shift on a skewed sky is the same in every cell). The
    offsets' noise is measured from their second differences along each
    axis (a robust scatter over the square root of 6: a quadratic sky
    leaves them constant; correlated noise, as in a drizzled frame, and
    faint stars' light are in it), the map's own error added. A quadratic
    surface is fitted to the offsets (weighted; cells beyond `COARSE_CLIP`
    standard errors from it, a bright star's, left out). When the
    chi-square it explains is beyond `COARSE_P` for its `COARSE_TERMS`
    terms, the map does not follow the sky:
    ``meta['coarse_map']`` says so (the photometry flags every row
    measured against it, `~ccdphot_ext.flags.FLAG_RESIDUAL_BACKGROUND`,
    and warns) and ``meta['coarse_map_offset']`` holds the surface's
    largest departure from its median.

    Parameters
    ----------
    data, mask
        The frame and the mask given to Background2D.
    level, error_on_mean : `~numpy.ndarray`
        The map and its error.
    meta : dict
        The sky's ``meta`` (updated in place).
    n_measured : int
        The meshes measured.
    """
    from scipy.stats import chi2 as chi2_distribution  # slow to import

    from ..utils.inputs import as_frame
    from ..utils.stats import MAD_TO_STD

    frame = as_frame(data, mask=mask)
    residual = np.asarray(frame.data, dtype=float) - level
    if frame.mask is not None:
        residual = np.where(frame.mask, np.nan, residual)
    sub = max(COARSE_CELL_MIN, min(residual.shape) // COARSE_CELLS) // 4
    side = 4 * sub
    ny, nx = (n // side for n in residual.shape)
    if ny * nx < 2 or sub < 2:
        return

    def cells(a):
        """(ny, nx, 16, sub * sub): the sub-cells' pixels of each cell."""
        a = a[:ny * side, :nx * side].reshape(ny, 4, sub, nx, 4, sub)
        return a.transpose(0, 3, 1, 4, 2, 5).reshape(ny, nx, 16, sub * sub)

    values = cells(residual)
    filled = np.sum(np.isfinite(values), axis=-1) >= sub * sub / 2
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # empty sub-cells
        # each sub-cell's mean between its 10% and 90% points: no median's
        # steps on integer data, little of a star's light
        low, high = np.nanpercentile(values, [COARSE_TRIM, 100 - COARSE_TRIM],
                                     axis=-1, keepdims=True)
        inside = (values >= low) & (values <= high)
        means = np.where(filled, np.nanmean(np.where(inside, values, np.nan),
                                            axis=-1), np.nan)
        n_sub = np.sum(filled, axis=-1)
        offset = np.where(n_sub >= 8, np.nanmedian(means, axis=-1), np.nan)
        # the estimator's own shift on a skewed (Poisson) sky is the same
        # in every cell: only the cells' differences tell the map's misfit
        offset = offset - np.nanmedian(offset)
        # the offsets' noise from their second differences along each
        # axis, which a quadratic sky leaves constant: a robust scatter
        # about their median, over sqrt(6)
        bends = np.concatenate([
            (offset[2:] - 2.0 * offset[1:-1] + offset[:-2]).ravel(),
            (offset[:, 2:] - 2.0 * offset[:, 1:-1]
             + offset[:, :-2]).ravel()])
        bends = bends[np.isfinite(bends)]
        if bends.size < COARSE_MIN_BENDS:
            return
        noise = MAD_TO_STD * np.median(np.abs(bends - np.median(bends)))
        noise /= math.sqrt(6.0)
        own = np.nanmean(cells(np.where(np.isfinite(residual),
                                        error_on_mean, np.nan)),
                         axis=(-2, -1))
    with np.errstate(invalid='ignore', divide='ignore'):
        weight = 1.0 / (noise ** 2 + own ** 2)
    good = np.isfinite(offset) & np.isfinite(weight)
    if np.count_nonzero(good) < 2 * COARSE_TERMS:
        return
    # a quadratic surface through the offsets, cells it leaves beyond
    # `COARSE_CLIP` standard errors (a star's or two) left out, twice
    yy, xx = np.nonzero(good)
    design = surface_design(yy - ny / 2.0, xx - nx / 2.0, quadratic=True)
    values, w = offset[good], np.sqrt(weight[good])
    kept = np.ones(values.size, dtype=bool)
    for _ in range(3):
        surface = design @ weighted_lstsq(design, values,
                                          np.where(kept, w, 0.0))
        kept = np.abs(values - surface) * w < COARSE_CLIP
    # the chi-square the surface explains, against its terms' count
    chi2 = float(np.sum(((values * w) ** 2 - ((values - surface) * w) ** 2)
                        [kept]))
    if not chi2 > chi2_distribution.isf(COARSE_P, COARSE_TERMS):
        return
    largest = float(np.max(np.abs(surface - np.median(surface))))
    meta['coarse_map_offset'] = largest
    meta['coarse_map'] = (
        f'Background2D: the map of {n_measured} measured mesh(es) does '
        'not follow the sky between them (the frame\'s pixels '
        f'differ from it by a smooth surface of up to {largest:.3g} per '
        f'pixel, its chi-square {chi2:.3g} in {int(kept.sum())} '
        f'{side}-pixel cells): every flux measured against it may '
        'be biased; use a smaller box_size, an annulus sky or the '
        'whole-frame sky')


@dataclasses.dataclass(eq=False)
class MapSources:
    """
    A Background2D map before the light of the frame's sources was taken
    out of it, and the frame's source mask: what measuring its meshes
    again without more of the frame's pixels needs
    (`~ccdphot_ext.SkyEstimate.from_background2d` with ``data=`` keeps
    one, for `~ccdphot_ext.SkyEstimate.without_apertures`, which adds the
    measured apertures' discs to the mask).

    ``level``, ``rms`` and ``error_on_mean`` are the maps and ``meta`` the
    record before the sources' lift; ``mask`` the frame's pixels left out
    (the one given to Background2D and the frame's own); ``sources``,
    ``usable``, ``density`` and ``light`` the whole-frame sky's source
    mask of the frame and the faint light off it
    (`~ccdphot_ext.background.globalsky.source_pixels`), ``crowded``
    whether it crowds the frame; ``gain``, ``bias`` and ``spread`` the
    estimator's Poisson correction (`estimator_skew_bias`),
    ``n_measured`` the meshes photutils measured; ``sample`` a strided
    sample of the frame's pixels, which tells the frame again;
    ``apertures`` the measured apertures' discs already taken out with the
    sources (None before `~ccdphot_ext.SkyEstimate.without_apertures`).
    """

    bkg: object
    meshes: MeshStatistics
    mask: object
    level: np.ndarray
    rms: np.ndarray
    error_on_mean: np.ndarray
    meta: dict
    gain: object
    bias: object
    spread: object
    n_measured: int
    sources: np.ndarray
    usable: np.ndarray
    density: float
    crowded: bool
    sample: np.ndarray
    apertures: np.ndarray = None  # discs already out (without_apertures)
    light: object = None  # the faint light off the source mask, its error
    #: the level's error from the meshes' noise alone, per pixel: the part
    #: the sources' pixels grow (`_without_sources`)
    noise_error: object = None
    frame: object = None  # while the map is made
    #: `source_lift`'s mesh statistics that do not depend on the mask
    cache: dict = dataclasses.field(default_factory=dict)
    #: the noise the frame's skewness was read with, where it gave the
    #: gain (`frame_skew_gain`; None where the gain was given)
    skew_rms: object = None

    @classmethod
    def of(cls, bkg, data, mask, unit, level, rms, error_on_mean, meta, *,
           gain, bias, spread, n_measured, noise_error=None):
        """The record of the map of ``bkg`` made from ``data`` (with
        ``mask``, as given to Background2D): its source mask found."""
        from ..utils.inputs import as_frame
        from .globalsky import is_crowded, source_pixels
        from .skylift import frame_sample

        frame = as_frame(data, mask=mask)
        if frame.data.shape != level.shape:
            raise ValueError(f'data: shape {frame.data.shape} does not '
                             f'match the Background2D map {level.shape}')
        if (unit is not None and frame.unit is not None
                and frame.unit != unit):
            raise u.UnitsError(f'data is in {frame.unit} but the '
                               f'Background2D map in {unit}')
        detect = frame
        if 'slope_offset' in meta:
            # the mask's blocks stand out from one level: on a sloped sky
            # the bright side would be taken for sources (78% of a frame
            # whose sky rises from 50 to 250 e-), so they are found on the
            # flattened frame
            detect = dataclasses.replace(frame, data=frame.data - level
                                         + float(np.nanmedian(level)))
        sources, usable, density, light = source_pixels(detect)
        return cls(bkg=bkg, meshes=MeshStatistics.of(bkg), mask=frame.mask,
                   level=level, rms=rms, error_on_mean=error_on_mean,
                   meta=dict(meta), gain=gain, bias=bias, spread=spread,
                   n_measured=n_measured, sources=sources,
                   usable=usable, density=density, light=light,
                   crowded=is_crowded(sources, usable),
                   sample=frame_sample(frame.data),
                   noise_error=noise_error, frame=frame)


def _without_sources(record, pixels, extra=None):
    """The map of ``record`` (`MapSources`) less the lift of the frame's
    sources (`source_lift`; with ``extra``, a bool array of the frame's
    shape, of those pixels too), the rms less their wings (on a sloped
    sky, `replaced_mesh_levels`) and the level's error, that of the level
    on the pixels outside the source mask; on a crowded frame, tied to its
    blank sky (`_tied_to_blank_sky`); the estimator's Poisson correction
    taken again for the rms so measured, and a map of few meshes checked
    against the frame (`check_coarse_map`). Returns the level, rms, error
    and ``meta`` (a copy of the record's, which records the lift and the
    faint stars' share left in). ``pixels`` is the frame's data."""
    from .globalsky import (
        MASK_BIN,
        UNSEEN_SKY_KEY,
        crowding_bias,
        store_light,
        unseen_sky_note,
    )

    bkg, meta = record.bkg, dict(record.meta)
    level, rms = record.level, record.rms
    error_on_mean = record.error_on_mean
    sources, usable = record.sources, record.usable
    for more in (record.apertures, extra):
        if more is not None:
            sources = sources | more
    gain, bias, rebias = record.gain, record.bias, None
    if record.skew_rms is not None and sources is not record.sources:
        gain, bias = _skew_without(record, pixels, sources, meta)
        # the sources' lift is found about the record's level (its cache)
        rebias = _bias_or_0(record.bias) - _bias_or_0(bias)
    sloped = 'slope_offset' in meta
    mesh_noise = _mesh_noise(bkg) if record.crowded or sloped else None
    lift = source_lift(level, record.meshes, pixels, sources,
                       usable, mesh_noise=mesh_noise,
                       sloped=sloped, rms=rms,
                       bkg=bkg if min(bkg.box_size) < FILL_MESH else None,
                       excluded=(excluded_meshes(bkg)
                                 if 'slope_offset' in meta else None),
                       cache=record.cache)
    if lift is None:
        raise ValueError(
            'data, mask: the meshes measured on these pixels keep other '
            'pixels than bkg (its n_pixels_mesh): give the frame bkg was '
            'made from and the mask it was given')
    lift, ratio, rms_factor, filled = lift
    if np.any(filled):
        meta['filled_meshes'] = tuple(
            (int(i), int(j)) for i, j in np.argwhere(filled))
        meta['filled_meshes_note'] = (
            f'{int(np.count_nonzero(filled))} meshes (meta["filled_meshes"],'
            ' row and column of the mesh grid) lie in the source mask, '
            'which leaves them fewer than '
            f'{FILL_CLEAN_FRACTION:.0%} of their pixels: their level '
            'without the sources is interpolated from the meshes around '
            'them, and its error is that of one mesh')
    noise_error = record.noise_error
    if np.any(rms_factor < 1.0):
        # photutils' rms of a mesh holds the wings of its stars, and the
        # level's error is in proportion to it
        rms = rms * rms_factor
        error_on_mean = error_on_mean * rms_factor
        if noise_error is not None:
            noise_error = noise_error * rms_factor
        meta['source_rms_factor'] = float(np.min(rms_factor))
    meta['source_lift'] = float(np.median(lift))
    meta['source_lift_max'] = float(np.max(np.abs(lift)))
    meta['source_mask_fraction'] = float(np.mean(record.sources))
    meta['faint_source_density'] = record.density
    store_light(meta, record.light)
    meta['crowding_bias'] = crowding_bias(record.light)
    unseen = unseen_sky_note(record.light,
                             record.sources[::MASK_BIN, ::MASK_BIN],
                             record.density)
    if unseen is not None:
        meta[UNSEEN_SKY_KEY] = unseen
    meta['source_lift_note'] = (
        "the light of the sources photutils' clip kept (the whole-frame "
        "sky's source mask, each mesh measured again without it) removed "
        'from the level; the light of stars too faint for the mask stays '
        'in it (all of their mean light: the frame cannot tell it from '
        'the sky), about meta["crowding_bias"] (from the light of the '
        'faint stars a deeper search finds off the mask, '
        'meta["faint_light"]; 0 where it finds none beyond the noise)')
    level = level - lift
    if rebias is not None:
        level = level + rebias
    if noise_error is not None:
        # the meshes read without their sources rest on the pixels the
        # mask leaves them: their noise grows by ``ratio``, the rest of
        # the level's error (the fitted surface's, the filter's offset,
        # the interpolation's error over the meshes photutils excluded)
        # does not (grown too, an interpolation error measured on a
        # drizzled mosaic's wandering meshes put the error of a map that
        # 800 blank apertures left 12% of its pixels at 1.8 times its
        # scatter)
        error_on_mean = np.sqrt(error_on_mean ** 2 + noise_error ** 2
                                * (ratio - 1.0))
    else:
        error_on_mean = error_on_mean * np.sqrt(ratio)
    if record.crowded:
        compared = usable
        if 'slope_offset' in meta:
            # beyond the outer mesh centres the map of a sloped sky is
            # photutils' extrapolation: its offset there is not the map's
            # under the stars
            compared = usable & _between_mesh_centres(bkg.box_size,
                                                      pixels.shape)
        level, error_on_mean = _tied_to_blank_sky(
            pixels, level, error_on_mean, sources, compared, bkg.box_size,
            meta, move='slope_offset' not in meta)
    if bias is not None and 'source_rms_factor' in meta:
        # the meshes, measured without their stars, are skewed over the
        # sky's noise, not over the noise their wings widened
        again, _ = estimator_skew_bias(bkg, level + bias, rms, gain,
                                       spread=record.spread)
        level = level + bias - again
        meta['estimator_bias'] = float(np.median(again))
    if 'slope_offset' in meta:
        error_on_mean = _checked_unmeasured_meshes(
            record, pixels, sources, level, rms, error_on_mean, meta)
    if record.n_measured < QUADRATIC_MIN_MESHES:
        check_coarse_map(pixels, record.mask, level, error_on_mean, meta,
                         record.n_measured)
    floor = (np.zeros_like(error_on_mean) if noise_error is None
             else noise_error * np.sqrt(ratio))
    # (the blank pixels once a map: its source mask is the frame's)
    if 'blank' not in record.cache:
        record.cache['blank'] = _blank_pixels(pixels, level, rms, usable)
    error_on_mean = checked_map_error(
        pixels, level, error_on_mean, floor, record.cache['blank'],
        bkg.box_size, meta, rms=rms)
    check_rms_against_blank(pixels, level, rms, record.cache['blank'],
                            bkg.box_size, meta)
    return level, rms, error_on_mean, meta


#: `_without_sources` checks a map's level error against its blank sky
#: (`checked_map_error`) where it is beyond the error from the meshes'
#: noise by this factor somewhere (an interpolation or filter error).
MISS_BEYOND_FLOOR = 1.5
#: `checked_map_error` compares a map with the frame's blank pixels in
#: its meshes holding at least this many of them ...
MISS_MIN_PIXELS = 16
#: ... and needs at least this many such meshes.
MISS_MIN_MESHES = 8
#: ... It takes the level's error as too large where more of those
#: meshes' blank means lie within its median reach than chance allows
#: at this probability ...
MISS_P = 1e-3
_CHI2_1_MEDIAN = 0.454936423119572
#: ... and then reads the map's miss at each mesh from the blank means of
#: the meshes in a window of this many meshes a side about it.
MISS_WINDOW = 3


def _blank_pixels(data, level, rms, usable):
    """The ``usable`` pixels off the sources the blank apertures of
    `~ccdphot_ext.ApertureNoise` avoid (its source mask, found about the
    map ``level`` at the median of ``rms``): the whole-frame sky's mask,
    in blocks, covers most of a galaxy's halo, where the map's miss is
    largest."""
    from .noise import _source_mask

    resid = np.where(usable, data - level, np.nan)
    return usable & ~_source_mask(resid, float(np.nanmedian(rms)),
                                  ~usable)


def checked_map_error(data, level, error_on_mean, floor, blank, box_size,
                      meta, *, rms=None):
    """
    The error of a map's level checked against what the map misses of
    the frame's blank sky.

    The interpolation error of excluded meshes (the measured meshes
    predicted from each other) and the filter's error on a sky no surface
    follows (the meshes' noise scaled to their scatter about it) read
    the sky's own structure, which the map follows mesh by mesh, as the
    map's error: on a smoothed scan with a galaxy's halo (astropy's NGC
    1316 frame) they put the error at 9.6 per pixel where the map missed
    the blank sky by 2.1, and blank sums scattered 0.3 to 0.4 of their
    errors. Here each mesh's blank pixels (``blank``: usable and off the
    source mask) are averaged about the map; where the level's error
    (the mean of its squares over those pixels) is too large for those
    means (of the meshes holding `MISS_MIN_PIXELS` blank pixels, more
    have their blank mean within the median reach of their error, the
    median of chi-square of one degree of freedom, than half of them by
    chance, at `MISS_P`), the error is taken
    down to the root mean square of the blank means of the meshes in a
    `MISS_WINDOW` window about each mesh (which hold the map's miss, the
    pixels' noise and its correlation on the mesh scale), never below
    ``floor`` (the level's error from the meshes' noise), nor above the
    error as it was, and only where the error is beyond
    `MISS_BEYOND_FLOOR` times ``floor``. ``meta['map_miss']`` records
    the median root mean square (None where not taken down) and
    ``meta['map_miss_ratio']``
    the error over the blank means' typical miss (the root of the median
    of their squared ratio, times that median: 1 where the error is
    right).

    The other way, where the map misses the blank sky by more than its
    error (a sky that curves between the meshes, whose peaks photutils'
    median filter flattens and whose bends its interpolation cuts: a
    sine of 6 ADU over four meshes left level errors 18 times too
    small), the error is raised (`raised_map_error`).

    Parameters
    ----------
    data, level, error_on_mean, floor : 2-D `~numpy.ndarray`
        The frame, the map, its error and the error's lower bound.
    blank : 2-D `~numpy.ndarray` of bool
        The blank pixels.
    box_size : tuple of int
        The meshes' size (rows, columns).
    meta : dict
        Updated as above.
    rms : 2-D `~numpy.ndarray`, optional
        The pixels' noise (the blank means' own noise, which the misses
        hold, is taken from them where the error is raised; without it
        the error is not raised).

    Returns
    -------
    error_on_mean : 2-D `~numpy.ndarray`
        The level's error, checked.
    """
    meta['map_miss'] = None
    means = _blank_mesh_means(data, level, error_on_mean, blank, box_size,
                              rms)
    if means is None:
        return error_on_mean
    kept, miss, said, _ = means
    from scipy.stats import binom

    n_kept = int(np.count_nonzero(kept))
    # a mesh whose blank mean lies within its error's median reach (the
    # median of chi-square with one degree of freedom): half of them
    # where the error is right, more where the sky's structure, which
    # the map follows, was taken for its error (a few meshes the map
    # misses widely say nothing about the others)
    within = int(np.count_nonzero(miss[kept] ** 2 < _CHI2_1_MEDIAN
                                  * said[kept]))
    with np.errstate(divide='ignore'):
        meta['map_miss_ratio'] = float(np.sqrt(_CHI2_1_MEDIAN * np.median(
            said[kept] / miss[kept] ** 2)))
    # only where the error holds more than the meshes' noise: a map
    # without photutils' filter is each mesh's own level, whose blank
    # mean shares its noise
    beyond = error_on_mean > MISS_BEYOND_FLOOR * floor
    if binom.sf(within - 1, n_kept, 0.5) < MISS_P and np.any(beyond):
        local = _local_miss(kept, miss ** 2, box_size, np.shape(level))
        meta['map_miss'] = float(np.median(local[np.isfinite(local)]))
        meta['map_miss_note'] = (
            "the level's error (its interpolation and filter errors) was "
            f"{meta['map_miss_ratio']:.3g} times the scatter of the "
            "meshes' blank pixels about the map: taken down to that "
            'scatter about each mesh (meta["map_miss"], its median), '
            "never below the error from the meshes' noise")
        error_on_mean = np.where(
            beyond, np.minimum(error_on_mean, np.maximum(floor, local)),
            error_on_mean)
        # (the error so taken down may miss the blank sky where it bends
        # within the window)
        means = _blank_mesh_means(data, level, error_on_mean, blank,
                                  box_size, rms)
    return raised_map_error(data, level, error_on_mean, blank, rms, means,
                            box_size, meta)


def _blank_mesh_means(data, level, error_on_mean, blank, box_size, rms):
    """Per mesh of ``box_size``: whether it holds `MISS_MIN_PIXELS` blank
    pixels, their mean about the map ``level``, the mean of the squared
    error there and the variance of that blank mean from the pixels'
    white noise ``rms`` (0 without it); None where fewer than
    `MISS_MIN_MESHES` meshes hold enough blank pixels or the error is
    not positive in all of them."""
    shape = np.shape(level)
    by, bx = (int(b) for b in box_size)
    gy, gx = -(-shape[0] // by), -(-shape[1] // bx)

    def meshes(values):
        grid = np.zeros((gy * by, gx * bx))
        grid[:shape[0], :shape[1]] = np.where(blank, values, 0.0)
        return grid.reshape(gy, by, gx, bx).sum(axis=(1, 3))

    with np.errstate(invalid='ignore'):
        count = meshes(np.ones(shape))
        kept = count >= MISS_MIN_PIXELS
        if np.count_nonzero(kept) < MISS_MIN_MESHES:
            return None
        n = np.maximum(count, 1)
        miss = np.where(kept, meshes(data - level) / n, 0.0)
        said = np.where(kept, meshes(error_on_mean ** 2) / n, 0.0)
        own = (np.zeros(kept.shape) if rms is None else
               np.where(kept, meshes(np.asarray(rms, dtype=float) ** 2)
                        / (n * n), 0.0))
    if not np.all(said[kept] > 0):
        return None
    return kept, miss, said, own


def _local_miss(kept, squares, box_size, shape):
    """The root of the mean of ``squares`` over the ``kept`` meshes in a
    `MISS_WINDOW` window about each mesh, per pixel of ``shape``
    (infinite about a mesh that is not kept or has fewer kept meshes
    about it than half of one)."""
    weight = uniform_filter(kept.astype(float), MISS_WINDOW, mode='nearest')
    squares = uniform_filter(np.where(kept, squares, 0.0), MISS_WINDOW,
                             mode='nearest')
    with np.errstate(invalid='ignore', divide='ignore'):
        # only a mesh with blank pixels of its own: where the source
        # mask covers a mesh (a galaxy's core), the map's miss there is
        # not seen
        local = np.where(kept & (weight > 0.5 / MISS_WINDOW ** 2),
                         np.maximum(squares, 0.0) / weight, np.inf)
    by, bx = (int(b) for b in box_size)
    return np.sqrt(block_replicate(local, (by, bx), conserve_sum=False)[
        :shape[0], :shape[1]])


#: `check_rms_against_blank` warns where the blank pixels' scatter about
#: the map is further from its rms than three of its errors and this
#: share of it.
RMS_TOLERANCE = 0.05
#: ... reading the scatter in meshes holding this many blank pixels.
RMS_MIN_PIXELS = 64


def check_rms_against_blank(data, level, rms, blank, box_size, meta):
    """
    Compare the map's rms, the pixels' noise the photometry's sky term
    uses, with the scatter of the frame's blank pixels about the map.

    Each mesh of ``box_size`` holding `RMS_MIN_PIXELS` of the ``blank``
    pixels gives the 3-sigma clipped standard deviation (corrected for
    the clip) of its pixels about the map (less the map's miss there,
    `_sliding_miss`'s mean) over ``rms``; their median is recorded as
    ``meta['blank_scatter_ratio']`` and its error (from the meshes'
    spread) as ``meta['blank_scatter_ratio_error']``. Where that ratio is
    further from 1 than three errors and `RMS_TOLERANCE`, warns
    (`~astropy.utils.exceptions.AstropyUserWarning`, the note in
    ``meta['blank_scatter_note']``): photutils' rms of a mesh holds the
    sky's structure over it (a halo of 60 ADU over noise 5 read 4.67
    where the blank pixels scatter 5.1), and on a smoothed frame it holds
    less than the pixels' scatter (astropy's NGC 1316 scan: 0.8 of it).
    The rms is kept: the flux errors' sky term is that much off where
    the blank pixels are right.

    Parameters
    ----------
    data, level, rms : 2-D `~numpy.ndarray`
        The frame, the map and its rms.
    blank : 2-D `~numpy.ndarray` of bool
        The blank pixels.
    box_size : tuple of int
        The meshes' size (rows, columns).
    meta : dict
        Updated as above.
    """
    shape = np.shape(level)
    by, bx = (int(b) for b in box_size)
    gy, gx = -(-shape[0] // by), -(-shape[1] // bx)
    resid = data - level - _sliding_miss(data, level, blank, None, box_size,
                                         signed=True)
    with np.errstate(invalid='ignore', divide='ignore'):
        z = np.where(blank & (rms > 0), resid / rms, np.nan)
    grid = np.full((gy * by, gx * bx), np.nan)
    grid[:shape[0], :shape[1]] = z
    grid = grid.reshape(gy, by, gx, bx).transpose(0, 2, 1, 3).reshape(
        gy * gx, by * bx)
    kept = np.count_nonzero(np.isfinite(grid), axis=1) >= RMS_MIN_PIXELS
    if np.count_nonzero(kept) < MISS_MIN_MESHES:
        return
    from .annulus import row_statistics
    from .noise import CLIP_MAXITERS, CLIP_SIGMA

    # (a clipped std, corrected for the clip: a median absolute deviation
    # is quantised on digitised frames, 0.91 of the rms on one)
    ratios = row_statistics(grid[kept], 'sigma_clip', CLIP_SIGMA,
                            CLIP_MAXITERS)[1]
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size < MISS_MIN_MESHES:
        return
    ratio = float(np.median(ratios))
    error = float(math.sqrt(math.pi / 2.0) * np.std(ratios)
                  / math.sqrt(ratios.size))
    meta['blank_scatter_ratio'] = ratio
    meta['blank_scatter_ratio_error'] = error
    if not abs(ratio - 1.0) > max(3.0 * error, RMS_TOLERANCE):
        return
    meta['blank_scatter_note'] = (
        f"the frame's blank pixels scatter {ratio:.3g} +- {error:.2g} times "
        "Background2D's rms about the map (each mesh's miss taken out): "
        "the photometry's sky term uses the rms (SkyEstimate.std), which "
        f"{'over' if ratio < 1.0 else 'under'}-predicts the blank pixels' "
        "noise by that factor (photutils' rms holds the sky's structure "
        'over a mesh, and less than the pixels\' scatter on a smoothed '
        'frame); ApertureNoise.from_blank_apertures(data, sky) measures '
        "the apertures' noise on the blank sky")
    warnings.warn('Background2D: ' + meta['blank_scatter_note'],
                  AstropyUserWarning, stacklevel=5)


#: `blank_mean_noise_factor` splits each mesh's rows (columns) into two
#: sets of bands this many pixels wide, one in the middle of each
#: period of four bands, the other at its ends: their means' difference
#: holds the pixels' noise and their correlation over fewer pixels than
#: this, not a sloped sky.
BAND_WIDTH = 4


def blank_mean_noise_factor(resid, blank, rms, box_size):
    """
    The factor by which the noise of a mean of a mesh's blank pixels
    exceeds what the pixels' white noise ``rms`` gives it (at least 1).

    Each mesh's blank pixels of ``resid`` (the frame about the map) are
    split, by rows and again by columns, into the bands of `BAND_WIDTH`
    pixels at the middle and at the ends of each period of four bands:
    the two sets share their mean position (a linear sky cancels), and
    the square of their means' difference, summed over the meshes, is
    compared with the variance white noise gives it (a drizzled mosaic's
    neighbours correlate: its blank means scatter 2 to 4 times the white
    variance about the map, though the map misses nothing).

    Parameters
    ----------
    resid : 2-D `~numpy.ndarray`
        The frame less the map.
    blank : 2-D `~numpy.ndarray` of bool
        The blank pixels.
    rms : 2-D `~numpy.ndarray`
        The pixels' white noise.
    box_size : tuple of int
        The meshes' size (rows, columns).

    Returns
    -------
    factor : float
        The ratio of the variances, at least 1 (1 where fewer than
        `MISS_MIN_MESHES` meshes hold `MISS_MIN_PIXELS` blank pixels in
        either set).
    """
    shape = np.shape(resid)
    by, bx = (int(b) for b in box_size)
    gy, gx = -(-shape[0] // by), -(-shape[1] // bx)
    var = np.asarray(rms, dtype=float) ** 2

    def meshes(values, where):
        grid = np.zeros((gy * by, gx * bx))
        grid[:shape[0], :shape[1]] = np.where(where, values, 0.0)
        return grid.reshape(gy, by, gx, bx).sum(axis=(1, 3))

    yy, xx = np.indices(shape)
    seen, expected = 0.0, 0.0
    for index in (yy, xx):
        ends = np.isin((index // BAND_WIDTH) % 4, (0, 3))
        parts = []
        for side in (blank & ends, blank & ~ends):
            count = meshes(np.ones(shape), side)
            n = np.maximum(count, 1.0)
            parts.append((count, meshes(resid, side) / n,
                          meshes(var, side) / (n * n)))
        (n_a, m_a, v_a), (n_b, m_b, v_b) = parts
        used = (n_a >= MISS_MIN_PIXELS) & (n_b >= MISS_MIN_PIXELS)
        if np.count_nonzero(used) < MISS_MIN_MESHES:
            return 1.0
        seen += float(np.sum((m_a - m_b)[used] ** 2))
        expected += float(np.sum((v_a + v_b)[used]))
    if not expected > 0:
        return 1.0
    return max(seen / expected, 1.0)


def _sliding_miss(data, level, blank, rms, box_size, *, signed=False):
    """The map's miss of the blank sky about each pixel: the blank
    pixels' mean about the map ``level`` in a mesh of ``box_size``
    centred on each pixel, squared, less its own white noise (from
    ``rms``; none without it), averaged over such a mesh and rooted (0
    where fewer than `MISS_MIN_PIXELS` blank pixels are about it); with
    ``signed``, the mean itself."""
    size = tuple(int(b) for b in box_size)
    weight = uniform_filter(blank.astype(float), size, mode='nearest')
    n_box = float(np.prod(size))
    with np.errstate(invalid='ignore', divide='ignore'):
        count = weight * n_box
        ok = count >= MISS_MIN_PIXELS
        mean = np.where(ok, uniform_filter(
            np.where(blank, data - level, 0.0), size, mode='nearest')
            / weight, 0.0)
        own = (0.0 if rms is None else np.where(ok, uniform_filter(
            np.where(blank, np.asarray(rms, dtype=float) ** 2, 0.0), size,
            mode='nearest') / weight / count, 0.0))
        if signed:
            return mean
        square = np.where(ok, np.maximum(mean * mean - own, 0.0), 0.0)
        found = uniform_filter(ok.astype(float), size, mode='nearest')
        square = np.where(found > 0, uniform_filter(
            square, size, mode='nearest') / found, 0.0)
    return np.sqrt(square)


#: `raised_map_error` takes a map's error as too small where more of the
#: meshes' blank means than this share lie beyond its reach (their error
#: and their own noise) at `MISS_BEYOND_CHI2` ...
MISS_BEYOND_SHARE = 0.05
MISS_BEYOND_CHI2 = 3.841458820694124  # chi-square(1) at 0.95


def raised_map_error(data, level, error_on_mean, blank, rms, means,
                     box_size, meta):
    """
    A map's level error raised to what the map misses of the blank sky,
    where that is more than the error holds.

    A sky that curves on the scale of a few meshes is flattened at its
    peaks by photutils' median filter and cut at its bends by the
    interpolation between mesh centres: the level misses it by more than
    the meshes' noise, which is all its error holds where no mesh was
    excluded (a sine of 6 ADU with a period of four 32 px meshes over
    noise 5: level errors 0.15, the map off by 2.8, blank sums 2 to 4
    times their errors). The map's miss about each pixel is
    `_sliding_miss`'s, with the blank means' own noise from the pixels'
    correlation (`blank_mean_noise_factor`, in
    ``meta['map_miss_noise_factor']``). Where more of the meshes' blank
    means than `MISS_BEYOND_SHARE` lie beyond `MISS_BEYOND_CHI2` times
    their variance (the error's mean square there and their own noise),
    more than chance allows at `MISS_P`, the error is raised to that miss
    wherever it is the larger (never lowered; kept where no blank pixels
    are about a pixel). Nothing is raised where a few places only are
    missed (a halo's edge beyond the source mask, a frame's corners the
    map extrapolates: raising it there was tried, and upset the
    residual-background flag of a glow on the ESO frame), nor where the
    frame's neighbours correlate as far as the bands
    (``meta['pixel_noise_lag']`` at least `BAND_WIDTH`).
    ``meta['map_miss_raised']`` records the median factor
    over the raised pixels (None where none) and ``meta['map_miss']``
    the median miss where it was not set by `checked_map_error`.

    Parameters
    ----------
    data, level : 2-D `~numpy.ndarray`
        The frame and the map.
    error_on_mean : 2-D `~numpy.ndarray`
        The level's error.
    blank : 2-D `~numpy.ndarray` of bool
        The blank pixels.
    rms : 2-D `~numpy.ndarray` or None
        The pixels' noise (None: nothing raised, the blank means' own
        noise unknown).
    means : tuple
        The meshes' blank means (`_blank_mesh_means`): kept, miss, the
        mean square error and the means' own white noise variance.
    box_size : tuple of int
        The meshes' size (rows, columns).
    meta : dict
        Updated as above.

    Returns
    -------
    error_on_mean : 2-D `~numpy.ndarray`
        The level's error, raised where the map misses more.
    """
    from scipy.stats import binom

    kept, miss, said, own = means
    meta['map_miss_raised'] = None
    if rms is None:
        return error_on_mean
    if meta.get('pixel_noise_lag', 1) >= BAND_WIDTH:
        # neighbours correlate beyond the bands, which then share their
        # noise: the blank means' own noise is not known (astropy's NGC
        # 1316 scan, a smoothed frame, would have its error raised
        # where its blank 11 px sums scatter 0.77 of it)
        meta['map_miss_raised_note'] = (
            'the pixels correlate beyond the bands that measure the blank '
            "means' own noise (meta['pixel_noise_lag']): the error is not "
            'raised to the map\'s miss')
        return error_on_mean
    # the blank means' own noise, with the pixels' correlation
    factor = blank_mean_noise_factor(data - level, blank, rms, box_size)
    own = own * factor
    rms = np.asarray(rms, dtype=float) * math.sqrt(factor)
    meta['map_miss_noise_factor'] = factor
    n_kept = int(np.count_nonzero(kept))
    far = int(np.count_nonzero(miss[kept] ** 2 > MISS_BEYOND_CHI2
                               * (said[kept] + own[kept])))
    if not binom.sf(far - 1, n_kept, MISS_BEYOND_SHARE) < MISS_P:
        return error_on_mean
    local = _sliding_miss(data, level, blank, rms, box_size)
    raised = local > error_on_mean
    if not np.any(raised):
        return error_on_mean
    meta['map_miss_raised'] = float(np.median(local[raised]
                                              / error_on_mean[raised]))
    if meta['map_miss'] is None:
        meta['map_miss'] = float(np.median(local[local > 0]))
    meta['map_miss_raised_note'] = (
        f"{far} of {n_kept} meshes' blank pixels lie beyond the level's "
        'error about the map (the sky curves between the meshes): the '
        'error raised to their root mean square miss about each mesh, '
        f"{meta['map_miss_raised']:.3g} times over "
        f'{np.mean(raised):.0%} of the frame')
    return np.where(raised, np.maximum(error_on_mean, local),
                    error_on_mean)


#: `_checked_unmeasured_meshes` reads an excluded mesh without its sources
#: when they leave it at least this many usable pixels.
UNMEASURED_MIN_PIXELS = 64
#: ... and judges the map there from at least this many such meshes.
UNMEASURED_MIN_MESHES = 3
#: ... where their mean or their chi-square is this unlikely from their
#: noise.
UNMEASURED_P = 0.01


def _unmeasured_readings(bkg, frame, level, raw, measured):
    """
    The meshes photutils excluded, read without their sources on the
    scale of the measured mesh levels ``raw``: the mesh grid of the
    levels (``raw`` where not read), the meshes so known (``measured``
    and those read) and the pixels behind each level; None where fewer
    than `UNMEASURED_MIN_MESHES` excluded meshes (or measured ones to
    compare) leave `UNMEASURED_MIN_PIXELS` pixels outside the sources.

    The sources are the whole-frame sky's source mask of the ``frame``
    (a `~ccdphot_ext.utils.inputs.Frame`) less the sky ``level`` (per
    pixel; `~ccdphot_ext.background.globalsky.source_pixels`, with the
    tighter `light_sources` in the meshes it all but empties,
    `_sources_leaving_pixels`); each mesh is read with its sources'
    pixels replaced in place (`replaced_mesh_levels`), which keeps the
    mesh's pixels at their places on the curved sky, so that its reading
    is the estimator's on it as a measured mesh's is. The measured
    meshes, read so, lose their sources' light: the readings are put back
    on their scale by the median of ``raw`` less them over the measured
    meshes. A ``level`` that misses the sky over the excluded meshes
    lowers their readings: the blocks it leaves high are taken for
    sources more readily, and the pixels left are the low ones
    (photutils' filling of a vignetted peak from the meshes around it,
    several ADU low, left them 0.2 to 0.5 ADU below those of the
    measured meshes; the sky itself, or the sky 1 ADU low there, 0.0 to
    0.1).
    """
    from .globalsky import source_pixels

    excluded = ~measured
    shape = tuple(np.shape(bkg.background_rms))
    rms, _ = clip_corrected_rms(bkg, np.asarray(getattr(
        bkg.background_rms, 'value', bkg.background_rms), dtype=float),
        clip_factors)
    pixels = np.asarray(frame.data, dtype=float)
    # the mask's blocks stand out from one level: found on the flattened
    # frame (as `MapSources` finds them on a sloped sky)
    sources, usable, _, _ = source_pixels(dataclasses.replace(
        frame, data=pixels - level + float(np.nanmedian(level))))
    meshes = MeshStatistics.of(bkg)
    sources = _sources_leaving_pixels(sources, usable, pixels - level,
                                      meshes.box_size)
    read, _ = replaced_mesh_levels(meshes, pixels, level, usable, sources,
                                   rms)
    (by, bx), (my, mx) = meshes.box_size, measured.shape
    counts = np.zeros((my * by, mx * bx))
    counts[:shape[0], :shape[1]] = usable & ~sources
    n_clean = counts.reshape(my, by, mx, bx).sum(axis=(1, 3))
    known = np.isfinite(read) & (n_clean >= UNMEASURED_MIN_PIXELS)
    reference = known & measured & np.isfinite(raw)
    # a mesh cut by the frame's edge reads the sky over its part inside,
    # not about its centre as the surface takes it
    whole = np.zeros((my, mx), dtype=bool)
    whole[:shape[0] // by, :shape[1] // bx] = True
    readable = known & excluded & whole
    if (np.count_nonzero(reference) < UNMEASURED_MIN_MESHES
            or np.count_nonzero(readable) < UNMEASURED_MIN_MESHES):
        return None
    shift = float(np.median(raw[reference] - read[reference]))
    return (np.where(readable, read + shift, raw), measured | readable,
            np.where(readable, n_clean, np.asarray(bkg.n_pixels_mesh,
                                                    dtype=float)))


def _surface_map(slope, box_size, shape):
    """The sky of a fitted surface (``slope``, `_sloped_surface`) at
    each pixel of a frame of ``shape`` on meshes of ``box_size``."""
    (by, bx) = box_size
    # pixel p lies at mesh coordinate (p - (box - 1) / 2) / box
    y = ((np.arange(shape[0]) - (by - 1) / 2.0) / by)[:, None]
    x = ((np.arange(shape[1]) - (bx - 1) / 2.0) / bx)[None, :]
    return _surface_at(slope['coef'], slope['n_terms'], y, x)


def _fitted_with_unmeasured_meshes(bkg, data, mask, raw, measured, slope,
                                   k_rms, pixel_noise, meta):
    """
    The sky's surface (`_sloped_surface`) of a Background2D with excluded
    meshes, fitted to the excluded meshes read without their sources as
    well (`_unmeasured_readings`) where the measured meshes alone leave
    it unknown there: a curved surface (a vignetted sky whose peak
    photutils excluded: the surface through the ring of measured meshes
    missed the peak by 0.45 to 0.87 ADU, 2.5 to 4.9 of the level's
    errors, on a cos**4 sky of 150 ADU 30% down to the corners with 120
    stars in the central 240 of 384 pixels), or none where too few meshes
    were measured to fit one (a vignetted sky crowded by stars: the map
    was photutils' filling of the peak from the frame's edges, 1.7 ADU
    low at the stars). ``slope`` is the fit to the measured meshes;
    a flat sky, or a plane, is left as it is. Records
    ``meta['unmeasured_meshes_fitted']`` (the meshes read and fitted).
    """
    ny, nx = measured.shape
    if slope is None:
        # a quadratic from twice its terms (`_sloped_surface`)
        if (ny * nx < QUADRATIC_MIN_MESHES
                or np.count_nonzero(measured) >= 12):
            return slope
    elif slope['n_terms'] <= 3:
        return slope
    if np.count_nonzero(~measured) < UNMEASURED_MIN_MESHES:
        return slope
    from ..utils.inputs import as_frame

    frame = as_frame(data, mask=mask)
    shape = tuple(np.shape(bkg.background_rms))
    if frame.data.shape != shape:
        return slope
    box = tuple(int(b) for b in bkg.box_size)
    # the sources are found, and the meshes read, about the fitted sky;
    # without one, about photutils' map first, then about the surface
    # those readings give
    fitted, about = None, slope
    for _ in range(1 if slope is not None else 2):
        level = (np.asarray(getattr(bkg.background, 'value',
                                    bkg.background), dtype=float)
                 if about is None else _surface_map(about, box, shape))
        readings = _unmeasured_readings(bkg, frame, level, raw, measured)
        if readings is None:
            break
        grid, known, counts = readings
        again = _sloped_surface(bkg, grid, k_rms, known, pixel_noise,
                                counts=counts,
                                min_degree=MAX_SURFACE_DEGREE)
        if again is None:
            break
        fitted = about = again
    if fitted is None:
        return slope
    meta['unmeasured_meshes_fitted'] = int(np.count_nonzero(known
                                                            & ~measured))
    return fitted


def _checked_unmeasured_meshes(record, pixels, sources, level, rms,
                               error_on_mean, meta):
    """
    The level's error on a sloped or curved sky, with the misfit of the
    map where photutils measured no mesh that those meshes' own pixels
    show.

    photutils fills each mesh it excluded (``exclude_percentile``: the
    meshes holding most stars) from the measured ones, and the fitted
    surface through that filling sets the map there: where the excluded
    meshes lie together about a vignetted sky's peak, the surface through
    the ring of measured meshes misses it (a quadratic through the outer
    ring of a cos**4 sky of 150 ADU, 30% down to the corners, 0.9 ADU
    below the peak, 4.8 times the level's error, flags 0), and the
    measured meshes, which it fits, cannot show it. Each excluded mesh
    is read again by photutils' steps with its ``sources`` pixels
    replaced in place (`replaced_mesh_levels`) and compared with the
    mean of the map ``level`` over it, less the median of the same
    difference over the measured meshes (the estimator's own reading of
    the sky, the same everywhere); its noise is the estimator's on the
    pixels left (`BACKGROUND2D_EFFICIENCY` times the map's ``rms`` over
    the root of their count) with the map's error, scaled up to the
    scatter the measured meshes show. Where those differences show a
    misfit (their weighted mean or their chi-square beyond
    `UNMEASURED_P`), each one's variance beyond its noise is added to the
    level's error (through photutils' filter window, as the
    interpolation error), ``meta['unmeasured_mesh_misfit']`` records the
    largest and ``'unmeasured_mesh_offset'`` their weighted mean, and an
    `~astropy.utils.exceptions.AstropyUserWarning` says so. The level is
    not moved: in meshes the sources crowd the readings are not reliable
    enough (on a flat sky of 200 stars on 384 x 384 pixels they read up
    to 0.5 ADU below the sky).
    """
    from scipy.stats import chi2 as chi2_distribution  # slow to import

    bkg, meshes, usable = record.bkg, record.meshes, record.usable
    excluded = excluded_meshes(bkg)
    if np.count_nonzero(excluded) < UNMEASURED_MIN_MESHES:
        return error_on_mean
    box, grid_shape = meshes.box_size, excluded.shape
    sources = _sources_leaving_pixels(sources, usable, pixels - record.level,
                                      box)
    read, _ = replaced_mesh_levels(meshes, pixels, record.level, usable,
                                   sources, rms)
    clean = usable & ~sources
    (by, bx), (my, mx) = box, grid_shape
    counts = np.zeros((my * by, mx * bx))
    counts[:pixels.shape[0], :pixels.shape[1]] = clean
    n_clean = counts.reshape(my, by, mx, bx).sum(axis=(1, 3))
    offset = read - _mesh_means(level, usable, box, grid_shape)
    known = np.isfinite(offset) & (n_clean >= UNMEASURED_MIN_PIXELS)
    reference = offset[known & ~excluded]
    judged = known & excluded
    if reference.size < UNMEASURED_MIN_MESHES or (
            np.count_nonzero(judged) < UNMEASURED_MIN_MESHES):
        return error_on_mean
    k_est = BACKGROUND2D_EFFICIENCY.get(estimator_name(bkg.bkg_estimator),
                                        MEDIAN_EFFICIENCY)
    with np.errstate(invalid='ignore', divide='ignore'):
        read2 = np.where(known, k_est ** 2 * _mesh_means(
            rms ** 2, usable, box, grid_shape) / n_clean, 0.0)
    noise2 = np.where(known, read2 + _mesh_means(
        error_on_mean ** 2, usable, box, grid_shape), 1.0)
    # the readings' noise as the measured meshes show it (about the map
    # that they made), where more than the estimator's on their pixels
    scaled = ((reference - np.median(reference))
              / np.sqrt(noise2[known & ~excluded]))
    scale = max(MAD_TO_STD * float(np.median(np.abs(scaled))), 1.0) ** 2
    read2, noise2 = read2 * scale, noise2 * scale
    misfit = np.where(judged, offset - np.median(reference), 0.0)
    weights = 1.0 / noise2[judged]
    mean = float(np.sum(weights * misfit[judged]) / np.sum(weights))
    # a misfit shared by the excluded meshes (a peak missed) shows in
    # their weighted mean, one scattered over them in their chi-square
    if not (abs(mean) * math.sqrt(np.sum(weights))
            > chi2_distribution.isf(UNMEASURED_P, 1) ** 0.5
            or _chi2(misfit[judged] ** 2, noise2[judged])
            > chi2_distribution.isf(UNMEASURED_P, weights.size)):
        return error_on_mean
    # each excluded mesh's misfit beyond its noise, mixed over photutils'
    # filter window as the interpolation error
    extra, largest = _mesh_variance_map(bkg, np.where(
        judged, np.maximum(misfit ** 2 - noise2, 0.0), 0.0))
    meta['unmeasured_mesh_misfit'] = largest
    meta['unmeasured_mesh_offset'] = mean
    meta['unmeasured_mesh_note'] = (
        f'{int(np.count_nonzero(judged))} meshes photutils excluded, read '
        'without their sources, differ from the map beyond their noise '
        f'(mean {mean:+.3g}): their misfit (up to {largest:.3g}) added to '
        "the level's error there")
    warnings.warn(
        f'Background2D: the {int(np.count_nonzero(judged))} meshes '
        'photutils excluded and filled from the others read, without their '
        f'sources, {mean:+.3g} per pixel from the map on average: the map '
        'may not follow the sky where no mesh was measured (a curved sky '
        'whose peak was filled from the meshes around it); that misfit (up '
        f'to {largest:.3g}) is added to the level\'s error there '
        '(meta["unmeasured_mesh_misfit"]). Smaller meshes (box_size), or '
        'a source mask given to Background2D, leave more of them measured',
        AstropyUserWarning, stacklevel=5)
    return np.sqrt(error_on_mean ** 2 + extra ** 2)


def _between_mesh_centres(box_size, shape):
    """True for the pixels between the centres of the outer meshes (the
    span over which photutils interpolates its mesh grid; all of them for
    a grid one mesh wide or high)."""
    inside = np.ones(shape, dtype=bool)
    for axis, (box, n) in enumerate(zip(box_size, shape, strict=True)):
        n_mesh = -(-n // box)
        if n_mesh < 2:
            continue
        centre = np.arange(n) - (box - 1) / 2.0
        last = (n_mesh - 1) * box
        keep = (centre >= 0) & (centre <= last)
        inside &= keep[:, None] if axis == 0 else keep[None, :]
    return inside


#: `_tied_to_blank_sky` clips the blank pixels at this many standard
#: deviations (a cosmic ray or a hot pixel left in would move the mean; a
#: Poisson sky's clipped mean reads low by 0.003 of its third moment over
#: its variance, 0.001 ADU on a sky of 100 e- at 2 e-/ADU).
BLANK_CLIP = 4.0
#: Fewest blank pixels to check a crowded frame's map against.
BLANK_MIN_PIXELS = 1000
#: A crowded frame's map is moved to its blank sky when it sits above or
#: below it by more than this many errors of the blank-sky mean.
BLANK_MOVE = 1.0
#: `_tied_to_blank_sky` warns when the map moved by more than this many
#: errors of the blank-sky mean and this fraction of the level's error.
BLANK_NSIGMA = 3.0
BLANK_WARN_FRACTION = 0.25


def _tied_to_blank_sky(data, level, error_on_mean, sources, usable,
                       box_size, meta, *, move=True):
    """
    A crowded frame's map, less the lift of the sources found, checked
    against its blank sky, and moved to it.

    The blank sky is the clipped mean (`BLANK_CLIP`) of ``data - level``
    over the usable pixels outside the source mask and outside the faint
    stars a matched filter finds between its segments
    (`~ccdphot_ext.background.globalsky.matched_pixels`); its error is the
    larger of the white ``std / sqrt(n)`` and the one the scatter of the
    meshes' blank means gives (correlated noise, the map's own wander).
    A map above it by more than `BLANK_MOVE` errors is lifted by the light
    of stars its meshes kept, and is moved down to it; a map below it by
    as much is moved up to it (its error added to the level's in quadrature
    either way). The map's own noise, which the blank pixels' mean does
    not share, scatters it about the blank sky both ways: a map moved down
    only, never up, read low (30 frames of 225 positions of 316 to 10**4
    ADU, 30% of them blank, on a flat sky of 150 ADU, 64 px meshes: the
    map sat -0.005 ADU on average from the blank sky, scattered 0.12; moved
    down only, the level read 0.17 of its error low, every flux pull
    +0.06 to +0.11 with flags 0; moved both ways, -0.03 +- 0.03).
    ``meta`` records ``'blank_sky_offset'`` (the map less the blank sky,
    per pixel, before any move), its error, the pixels and what was done;
    an `~astropy.utils.exceptions.AstropyUserWarning` says when the move
    is significant (`BLANK_NSIGMA`) and not small beside the level's
    error (`BLANK_WARN_FRACTION`). With fewer than `BLANK_MIN_PIXELS`
    blank pixels the map is kept and ``meta['blank_sky_note']`` says it
    was not checked.

    On such a frame the mask leaves each mesh a few hundred pixels, and a
    star it misses (one of 560 ADU on a 384 x 384 frame of 256 stars)
    lifts its mesh: 10 frames of 256 stars of 300 to 10**5 e- 24 px apart
    read the level half its error high, every flux pull -0.11 with flags
    0 (now -0.02).

    With ``move`` False (a sloped sky, whose meshes were measured without
    their sources in place, `replaced_mesh_levels`) the map is compared,
    and a warning says where it sits significantly above the blank sky,
    but it is not moved: there the blank pixels lie where the mask leaves
    sky, between the stars' regions and towards the frame's edges, where
    the map's offset is not the one under the stars (49 stars 32 px apart
    on a sky rising from 50 to 250 e-: the map read 0.10 e- high at the
    blank pixels and 0.02 e- under the stars; the move, taken where the
    map sat one error above, left it 0.10 e- low there).
    """
    from astropy.stats import sigma_clip

    from .globalsky import matched_pixels

    residual = data - level
    outside = usable & ~sources
    blank = outside & ~matched_pixels(residual, ~outside)
    n_blank = int(np.count_nonzero(blank))
    meta['blank_sky_pixels'] = n_blank
    if n_blank < BLANK_MIN_PIXELS:
        meta['blank_sky_note'] = (
            f'crowded frame: {n_blank} blank pixels, too few to check the '
            f'level against (fewer than {BLANK_MIN_PIXELS}): not checked')
        return level, error_on_mean
    values = residual[blank]
    kept = ~sigma_clip(values, BLANK_CLIP, masked=True).mask
    values = values[kept]
    offset = float(np.mean(values))
    error = float(np.std(values)) / math.sqrt(values.size)
    # the meshes' blank means about the frame's, weighted by their pixels
    by, bx = (int(b) for b in box_size)
    ys, xs = np.nonzero(blank)
    mesh = (ys[kept] // by) * (-(-data.shape[1] // bx)) + xs[kept] // bx
    n_mesh = np.bincount(mesh)
    sums = np.bincount(mesh, weights=values - offset)
    n_meshes = int(np.count_nonzero(n_mesh))
    if n_meshes >= 4:
        spread = math.sqrt(float(np.sum(sums ** 2)) * n_meshes
                           / (n_meshes - 1)) / values.size
        error = max(error, spread)
    meta['blank_sky_offset'] = -offset
    meta['blank_sky_offset_error'] = error
    blank_sky = (f'the blank sky (the clipped mean of the frame less the '
                 f'map over {values.size} pixels outside the source mask '
                 'and the faint stars a matched filter finds)')
    typical = float(np.median(error_on_mean))
    if not move:
        meta['blank_sky_note'] = (
            f'crowded frame on a sloped sky: the map compared with '
            f'{blank_sky} between the outer mesh centres, not moved')
        if (-offset > BLANK_NSIGMA * error
                and -offset > BLANK_WARN_FRACTION * typical):
            warnings.warn(
                f'Background2D: on this crowded frame the map sits '
                f'{-offset:.3g} per pixel ({-offset / typical:.2g} times '
                'its error) above the blank sky (pixels outside the source '
                'mask and the faint stars a matched filter finds), perhaps '
                'from the light of stars too faint for the mask; on a '
                'sloped sky the level is not moved '
                '(meta["blank_sky_offset"]). Give Background2D a source '
                'mask (and from_background2d the same mask=), or use an '
                'annulus sky', AstropyUserWarning, stacklevel=5)
        return level, error_on_mean
    if not abs(offset) > BLANK_MOVE * error:
        meta['blank_sky_note'] = (
            f'crowded frame: the map is within {BLANK_MOVE:g} error of '
            f'{blank_sky}: kept')
        return level, error_on_mean
    side, way = ('above', 'down') if offset < 0 else ('below', 'up')
    meta['blank_sky_note'] = (
        f'crowded frame: the map, less the sources\' lift, sat {side} '
        f'{blank_sky}: moved {way} to it, its error added to the level\'s')
    if (-offset > BLANK_NSIGMA * error
            and -offset > BLANK_WARN_FRACTION * typical):
        # a map above its blank sky: the light of stars its meshes kept
        warnings.warn(
            f'Background2D: on this crowded frame the map sat '
            f'{-offset:.3g} per pixel ({-offset / typical:.2g} '
            f'times its error) above the blank sky (pixels outside the '
            'source mask and the faint stars a matched filter finds), '
            "from the light of stars photutils' sigma clip kept in its "
            'meshes; the level was moved to the blank sky '
            '(meta["blank_sky_offset"]). Give Background2D a source mask '
            '(and from_background2d the same mask=), or use '
            'SkyEstimate.from_image or an annulus sky',
            AstropyUserWarning, stacklevel=5)
    return level + offset, np.sqrt(error_on_mean ** 2 + error ** 2)


#: The weights ``(a, b)`` of the median and the mean in photutils' mode-type
#: estimators (the level is ``a * median - b * mean``).
ESTIMATOR_WEIGHTS = {'MeanBackground': (0.0, -1.0),
                     'MedianBackground': (1.0, 0.0),
                     'SExtractorBackground': (2.5, 1.5),
                     'MMMBackground': (3.0, 2.0)}


def estimator_name(estimator):
    """The name of a photutils background estimator's class, or of the
    first of its bases that `BACKGROUND2D_EFFICIENCY` lists (a
    `LatticeSExtractorBackground` is Source Extractor's estimator)."""
    for cls in type(estimator).__mro__:
        if cls.__name__ in BACKGROUND2D_EFFICIENCY:
            return cls.__name__
    return type(estimator).__name__


def estimator_weights(bkg):
    """The weights ``(a, b)`` of a Background2D's estimator, ``a *
    median - b * mean`` (`ESTIMATOR_WEIGHTS`, or a
    ``ModeEstimatorBackground``'s factors); None for another one."""
    estimator = bkg.bkg_estimator
    name = estimator_name(estimator)
    if name == 'ModeEstimatorBackground':
        return (float(estimator.median_factor),
                float(estimator.mean_factor))
    return ESTIMATOR_WEIGHTS.get(name)


def estimator_skew_factor(bkg):
    """
    ``a * b_median - b * b_mean``: how far a Background2D's estimator
    (``a * median - b * mean``, `estimator_weights`) reads a sky below its
    mean per unit of its third moment over its variance, with ``b_median``
    `clipped_median_skew_factor` and ``b_mean`` `skew_bias_factor`
    ``('sigma_clip')`` at its clip's ``sigma`` (1/6 and 0 without a
    clip); and how it clips. ``(None, None)`` for an estimator without
    known weights.
    """
    weights = estimator_weights(bkg)
    if weights is None:
        return None, None
    clip = bkg.sigma_clip
    lower = None if clip is None else clip.sigma_lower
    if clip is not None and lower is not None and lower == clip.sigma_upper:
        b_median = clipped_median_skew_factor(float(lower))
        b_mean = skew_bias_factor('sigma_clip', float(lower))
        how = f'after its {float(lower):g}-sigma clip'
    else:
        b_median, b_mean = 1.0 / 6.0, 0.0
        how = 'unclipped'
    return weights[0] * b_median - weights[1] * b_mean, how


def estimator_skew_bias(bkg, level, rms, gain, *, spread=0.0):
    """
    The bias of a Background2D's estimator on a Poisson sky (None for an
    estimator without known weights), and a note saying how it was found.

    ``a * median - b * mean`` of each mesh's pixels, after photutils'
    sigma clip, lies ``(a * b_median - b * b_mean) mu3 / sigma**2`` below
    the sky's mean (first order in the skewness; the factor is
    `estimator_skew_factor`'s). For sky photons of ``level`` data units
    and a gain ``g``, ``mu3 = level / g**2`` (read noise and dark add no
    skewness), with ``sigma = rms`` and ``level`` the estimator's once
    corrected (the reading is low by up to 10% on a faint sky).

    On a sloped sky the level spreads over a mesh's pixels by the
    variance ``spread`` (`slope_spread_variance`, per pixel) and the
    pixels on the bright side, with more photons, scatter more: the
    mesh's pixels are a mixture whose third moment gains ``3 spread / g``
    (three times the covariance of the pixels' level and their variance,
    which grows by ``1 / g`` per data unit of level), and whose variance
    is ``rms**2 + spread`` (``rms`` the noise). On a sky rising from 50
    to 250 e- across 256 pixels, 32-pixel meshes read 0.5 to 0.7 e- low,
    2.2 times what the photons' skewness alone gives.

    The skew of a curved sky's bend over the mesh (a tail of low pixels
    on a vignetted sky's flanks) is not here: the estimator's reading of
    the bent sky over its box, noise included, is
    `mesh_estimator_response`'s.
    """
    name = estimator_name(bkg.bkg_estimator)
    factor, how = estimator_skew_factor(bkg)
    if factor is None:
        return None, None
    note = (f'{name} ({how}) reads a Poisson sky low by {factor:.4f} times '
            'its third moment over its variance (level / (gain**2 '
            'rms**2), the level once corrected); removed from the level')
    # the third moment is the sky's, not the low reading's: one more pass
    ratio = poisson_skew_ratio(level, rms, gain)
    ratio = poisson_skew_ratio(level + factor * ratio, rms, gain)
    flat = ratio
    if np.any(np.asarray(spread) > 0):
        total = rms * rms + spread
        with np.errstate(invalid='ignore', divide='ignore'):
            ratio = np.where(total > 0, (ratio * rms * rms + 3.0 * spread
                                         / gain) / total, 0.0)
        note += ('; on the sloped sky the mixture of pixels along the '
                 'slope adds 3 spread / gain to that third moment '
                 '(meta["slope_spread_rms"])')
    exact = digitised_estimator_bias(bkg, level, rms, gain)
    if exact is not None:
        note = (f'{name} ({how}, its median interpolated within the '
                'step) reads a Poisson sky of few electrons a pixel off by '
                'the exact distribution of its digitised pixels (photons '
                'plus Gaussian read noise, over the gain, in whole steps); '
                'removed from the level' + note[note.find(';'):]
                if ';' in note else
                f'{name} ({how}, its median interpolated within the step) '
                'reads a Poisson sky of few electrons a pixel off by the '
                'exact distribution of its digitised pixels (photons plus '
                'Gaussian read noise, over the gain, in whole steps); '
                'removed from the level')
        # the slope's mixture, to first order, on top
        return exact - factor * (ratio - flat), note
    return -factor * ratio, note


#: On a map whose estimator interpolates the median within a lattice
#: (`LatticeSExtractorBackground`, `LatticeMedianBackground`), the
#: estimator's Poisson bias is taken from the exact distribution of the
#: pixels (`digitised_estimator_bias`) where the photons' skewness at the
#: map's level, ``lam / (lam + r**2)**1.5`` (``lam`` photo-electrons and
#: ``r`` electrons of read noise a pixel), is at least this: a Poisson sky
#: of 3 counts (skewness 0.58) read 0.018 counts high after the
#: first-order correction (0.4 of the level's error on 32 px meshes), one
#: of 10 counts (0.32) 0.006; a sky of 80 e- under 5 e- of read noise
#: (0.07) keeps the first order.
EXACT_SKEW_MIN = 0.1
#: The levels (photo-electrons) `digitised_estimator_bias` solves the
#: exact distribution at, spread over the map's range; between them its
#: bias is interpolated.
N_EXACT_LEVELS = 9


def digitised_estimator_reading(model, weights, sextractor, sigma,
                                maxiters, n_pixels=None):
    """
    What a Background2D estimator ``a * median - b * mean`` (``weights``;
    its median the grouped one, `grouped_median`), after photutils' sigma
    clip (``sigma`` about the plain median, over the standard deviation,
    at most ``maxiters`` rounds), reads on many pixels of a digitised sky
    whose whole values are distributed as ``model``
    (`~ccdphot_ext.background.estimators.PoissonSkyModel`, ``digitised``)
    in data units; with ``sextractor``, Source Extractor's rules (the
    median where the mean lies 0.3 standard deviations or more from it,
    the mean where the deviation is 0).

    With ``n_pixels`` (a mesh's), the reading is averaged over the
    clip's bounds as the standard deviation of so many pixels scatters
    them (relative ``sqrt((kurtosis - 1) / (4 n))``, 7-point
    Gauss-Hermite): where a bound lies near a whole value, meshes keep it
    or not by their own scatter (a Poisson sky of 3 counts, 1024 pixels:
    the reading moves by 0.0045, 0.1 of the level's error).
    """
    if n_pixels is not None:
        nodes, weights_z = np.polynomial.hermite_e.hermegauss(7)
        weights_z = weights_z / np.sum(weights_z)
        kurtosis = _kept_kurtosis(model, sigma, maxiters)
        spread = math.sqrt(max(kurtosis - 1.0, 0.0) / (4.0 * n_pixels))
        return float(sum(
            w * digitised_estimator_reading(
                model, weights, sextractor, sigma * (1.0 + spread * z),
                maxiters) for z, w in zip(nodes, weights_z, strict=True)))
    values, q = _clipped_distribution(model, sigma, maxiters)
    cum = np.cumsum(q)
    k = int(np.searchsorted(cum, 0.5))
    below = cum[k - 1] if k > 0 else 0.0
    median = values[k] - 0.5 + (0.5 - below) / q[k]
    mean = float(np.sum(q * values))
    std = math.sqrt(float(np.sum(q * (values - mean) ** 2)))
    if sextractor:
        if std == 0:
            return mean
        if abs(mean - median) / std >= 0.3:
            return median
    return weights[0] * median - weights[1] * mean


def _kept_kurtosis(model, sigma, maxiters):
    """The kurtosis of the pixels of ``model`` photutils' clip keeps
    (`_clipped_distribution`)."""
    values, q = _clipped_distribution(model, sigma, maxiters)
    mean = float(np.sum(q * values))
    var = float(np.sum(q * (values - mean) ** 2))
    return float(np.sum(q * (values - mean) ** 4)) / var ** 2 if var > 0 \
        else 3.0


def _clipped_distribution(model, sigma, maxiters):
    """The whole values of ``model`` (digitised) and their shares among
    the pixels photutils' ``sigma`` clip keeps (about the plain median,
    over the standard deviation, at most ``maxiters`` rounds)."""
    scale = model.scale
    first = math.floor(float(model.centres[0]) - 10.0 * scale - 1.0)
    last = math.ceil(float(model.centres[-1]) + 10.0 * scale + 1.0)
    values = np.arange(first, last + 1, dtype=float)
    p = np.diff(model.cdf(np.append(first - 1.0, values)))
    keep = p > 0
    for _ in range(maxiters if maxiters is not None else 100):
        q = np.where(keep, p, 0.0)
        q = q / np.sum(q)
        centre = values[np.searchsorted(np.cumsum(q), 0.5)]
        mean = float(np.sum(q * values))
        std = math.sqrt(float(np.sum(q * (values - mean) ** 2)))
        kept = (p > 0) & (values >= centre - sigma * std) & (
            values <= centre + sigma * std)
        if np.array_equal(kept, keep):
            break
        keep = kept
    q = np.where(keep, p, 0.0)
    return values, q / np.sum(q)


def digitised_estimator_bias(bkg, level, rms, gain):
    """
    The Poisson bias of a Background2D map's estimator on a digitised sky
    from the exact distribution of its pixels, or None where the first
    order of `estimator_skew_bias` is kept.

    For a map whose estimator interpolates its median within the frame's
    lattice (`LatticeSExtractorBackground`, `LatticeMedianBackground`,
    offset 0), photutils' clip and the estimator are applied to the
    distribution of the pixels
    (`~ccdphot_ext.background.estimators.PoissonSkyModel`: ``lam``
    photo-electrons plus Gaussian read noise, over the ``gain``, in whole
    steps; `digitised_estimator_reading`), and the reading less
    ``lam / gain`` is the bias. The read noise is the map's (median)
    variance less the photons' and the step's ``1/12``; ``lam`` is solved
    from each map ``level`` (the reading) in two passes, the bias
    interpolated between `N_EXACT_LEVELS` levels over the map's range.
    Kept to the first order (None) where the photons' skewness at the
    map's median level is under `EXACT_SKEW_MIN`, for a clip other than
    photutils' (a symmetric one about the median over the standard
    deviation), a lattice with an offset, or a level not above 0.
    """
    from .estimators import MIN_MODEL_READ_NOISE, PoissonSkyModel

    estimator = bkg.bkg_estimator
    if not isinstance(estimator, (LatticeSExtractorBackground,
                                  LatticeMedianBackground)):
        return None
    if estimator.offset != 0.0:
        return None
    clip = bkg.sigma_clip
    if clip is None:
        sigma, maxiters = math.inf, 1
    else:
        if (clip.sigma_lower != clip.sigma_upper
                or getattr(clip, 'cenfunc', 'median') not in ('median',)
                or getattr(clip, 'stdfunc', 'std') not in ('std',)
                or getattr(clip, 'grow', False)):
            return None
        sigma, maxiters = float(clip.sigma_lower), clip.maxiters
    step = estimator.step
    weights = estimator_weights(bkg)
    sextractor = isinstance(estimator, SExtractorBackground)
    g = gain * step  # electrons a step
    units = np.asarray(level, dtype=float) / step
    lam = units * g
    finite = np.isfinite(lam) & np.isfinite(rms)
    if not np.any(finite) or not np.all(lam[finite] > 0):
        return None
    factor, _ = estimator_skew_factor(bkg)
    # the levels read low by about factor steps (first order): the photons
    lam = lam + factor
    var = (np.asarray(rms, dtype=float) / step) ** 2 - 1.0 / 12.0
    read2 = float(np.median((g * g * var - lam)[finite]))
    read2 = max(read2, MIN_MODEL_READ_NOISE ** 2)
    middle = float(np.median(lam[finite]))
    if middle / (middle + read2) ** 1.5 < EXACT_SKEW_MIN:
        return None
    lo = float(np.min(lam[finite]))
    hi = float(np.max(lam[finite]))
    # the levels read low by about factor electrons: their photons above
    grid = np.linspace(max(lo - 0.1 * lo - factor, 1e-3),
                       hi + 0.1 * hi + factor, N_EXACT_LEVELS)
    read = math.sqrt(read2)
    n_pixels = float(np.median(bkg.n_pixels_mesh))
    bias = np.array([
        digitised_estimator_reading(
            PoissonSkyModel(x, read, g, True), weights, sextractor, sigma,
            maxiters, n_pixels if clip is not None else None) - x / g
        for x in grid])
    if not np.all(np.isfinite(bias)):
        return None
    truth = units + factor / g  # the first order: a start
    for _ in range(2):
        truth = units - np.interp(truth * g, grid, bias)
    return step * np.where(finite, units - truth, 0.0)


#: `frame_skew_gain` reads the third moment of a frame's sky pixels within
#: this many of the map's rms of its level: 0.956 of the moment
#: (`window_skew_response`), its relative noise 2.52 / sqrt(n) for ``n``
#: pixels (2.45 with no window); a wider window lets in more of the light
#: of the faint stars and cosmic rays the source mask misses, which
#: weighs with its cube.
SKEW_WINDOW = 4.0
#: ... from at least this many pixels off the source mask (a 64 x 64
#: mesh).
SKEW_MIN_PIXELS = 4096
#: Without the gain and without the frame (whose third moment would give
#: it), `from_background2d` warns where its estimator's Poisson bias,
#: were the sky's noise all photons, would reach this share of the
#: level's error (median over the map).
UNKNOWN_GAIN_SHARE = 1.0


def window_skew_response(c, factor):
    """
    The third central moment, over ``sigma**3`` and per unit skewness
    ``mu3 / sigma**3``, of the pixels within ``+-c`` sigma of an
    estimator's reading ``factor`` times ``mu3 / sigma**2`` below the mean
    (`estimator_skew_factor`), to first order in the skewness
    (Gram-Charlier): the window cuts the tails' share of the moment
    (0.956 of it at ``c = 4``) and its offset from the mean tilts what is
    left (by ``-0.0139 factor`` at ``c = 4``).

    Examples
    --------
    >>> from ccdphot_ext.background.maps import window_skew_response
    >>> print(f'{window_skew_response(4.0, 0.0):.4f}')
    0.9561
    """
    phi = math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
    # the window's moments of the unit Gaussian, x**0 .. x**6
    i0 = math.erf(c / math.sqrt(2.0))
    i2 = i0 - 2.0 * c * phi
    i4 = 3.0 * i2 - 2.0 * c ** 3 * phi
    i6 = 5.0 * i4 - 2.0 * c ** 5 * phi
    s2 = i2 / i0
    cut = ((i6 - 3.0 * i4) - 3.0 * s2 * (i4 - 3.0 * i2)) / (6.0 * i0)
    tilt = 2.0 * c * phi * (c * c - 3.0 * s2) / i0
    return cut - factor * tilt


def frame_skew_gain(pixels, clean, level, rms, factor):
    """
    The gain of a Background2D map's frame found from the third moment of
    its sky: a dict of ``gain`` (None where that moment is not above 0,
    or the level not), ``skew`` and ``skew_error`` (the noise's
    ``mu3 / sigma**3`` and its standard error) and ``n`` (the pixels
    read); None with fewer than `SKEW_MIN_PIXELS`.

    The frame's ``pixels`` where ``clean`` (off its source mask) less the
    map's ``level``, over its noise ``rms``, are read within
    `SKEW_WINDOW` of 0; their third central moment is that skewness
    times `window_skew_response` (the estimator's ``factor``), read as a
    whole-frame level's (``ccdphot_ext.utils.stats.skew_ratio``). A sky of
    photons at a gain ``g`` (data units: level ``L``, noise ``sigma``) is
    skewed by ``L / (g**2 sigma**3)``, so ``g**2`` is the mean of ``L /
    sigma**3`` over the skewness: on a flat sky the Poisson bias so found,
    ``factor * skew * sigma``, needs no photon level (a pedestal or a sky
    already subtracted gives the same); on a varying one the bias follows
    the level as photons would.
    """
    sd = rms[clean]
    lv = level[clean]
    z = np.asarray(pixels, dtype=float)[clean] - lv
    with np.errstate(invalid='ignore', divide='ignore'):
        z = z / sd
    keep = (sd > 0) & (np.abs(z) < SKEW_WINDOW)
    n = int(np.count_nonzero(keep))
    if n < SKEW_MIN_PIXELS:
        return None
    z = z[keep]
    z -= np.mean(z)
    s2 = float(np.mean(z * z))
    m3 = float(np.mean(z ** 3))
    spread = float(np.std(z ** 3 - 3.0 * s2 * z))
    # standardised pixels: the moment over a variance of 1
    skew, error = skew_ratio(m3, 1.0, n,
                             response=window_skew_response(SKEW_WINDOW,
                                                           factor),
                             spread=spread)
    photons = float(np.mean(lv[keep] / sd[keep] ** 3))
    gain = (math.sqrt(photons / skew) if skew > 0.0 and photons > 0.0
            else None)
    return {'gain': gain, 'skew': skew, 'skew_error': error, 'n': n}


def _with_frame_skew(record, rms, spread):
    """
    ``record`` (`MapSources`) of a map given no gain, its level less the
    estimator's Poisson bias at the gain `frame_skew_gain` finds
    (``record.gain``, ``record.bias``; ``record.skew_rms`` the noise it
    was read with), and that gain's uncertainty in the level's error
    (``factor * skew_error * rms``, the same for every mesh); where the
    frame cannot tell it, the warning of `_warn_unknown_gain`. ``spread``
    is `slope_spread_variance`'s.
    """
    bkg = record.bkg
    factor, _ = estimator_skew_factor(bkg)
    if factor is None:
        return
    found = frame_skew_gain(record.frame.data,
                            record.usable & ~record.sources, record.level,
                            rms, factor)
    if found is None or (found['gain'] is None
                         and found['skew'] > 2.0 * found['skew_error']):
        _warn_unknown_gain(bkg, record.level, rms, record.error_on_mean,
                           record.meta, stacklevel=5)
        return
    error = factor * found['skew_error'] * rms
    record.error_on_mean = np.sqrt(record.error_on_mean ** 2 + error ** 2)
    record.skew_rms = rms
    record.gain, record.bias = _skew_bias(record, found, record.level,
                                          record.meta, spread=spread)
    if record.bias is not None:
        record.level = record.level - record.bias


def _skew_bias(record, found, level, meta, *, spread=None):
    """The gain and the estimator's bias (None without one) that the
    skewness ``found`` (`frame_skew_gain`) gives the map ``level``
    (before that bias) of ``record``, recorded in ``meta``."""
    spread = record.spread if spread is None else spread
    meta.update(skew_gain=found['gain'], skew=found['skew'],
                skew_error=found['skew_error'],
                skew_gain_note=(
                    "no gain given: the sky's skewness "
                    f"({found['skew']:.4g} +- {found['skew_error']:.2g}, "
                    f"from {found['n']} pixels off the source mask within "
                    f'{SKEW_WINDOW:g} rms of the map) gives the gain its '
                    "photons would have (meta['skew_gain']); the "
                    'uncertainty of the bias it gives is in the level\'s '
                    'error'))
    if found['gain'] is None:
        meta.update(estimator_bias=0.0, estimator_bias_note=(
            'no skewness above 0: no Poisson bias removed'))
        return None, None
    bias, note = estimator_skew_bias(record.bkg, level, record.skew_rms,
                                     found['gain'], spread=spread)
    meta['estimator_bias'] = float(np.median(bias))
    meta['estimator_bias_note'] = (note + ", at the gain the sky's "
                                   "skewness gives (meta['skew_gain'])")
    return found['gain'], bias


def _skew_without(record, pixels, sources, meta):
    """The gain and the bias of the map of ``record`` (`MapSources`, its
    gain read from the frame's skewness), that skewness read again off
    ``sources`` (which hold more pixels than the record's: the measured
    apertures' discs, whose stars' light skews the sky)."""
    base = record.level + _bias_or_0(record.bias)
    factor, _ = estimator_skew_factor(record.bkg)
    found = frame_skew_gain(pixels, record.usable & ~sources, base,
                            record.skew_rms, factor)
    if found is None:
        return record.gain, record.bias
    return _skew_bias(record, found, base, meta)


def _bias_or_0(bias):
    """An estimator's bias (`estimator_skew_bias`), 0 for None."""
    return 0.0 if bias is None else bias


def _warn_unknown_gain(bkg, level, rms, error_on_mean, meta, stacklevel=4):
    """
    Warn, naming ``gain``, where a map's estimator reads a Poisson sky
    low by up to `UNKNOWN_GAIN_SHARE` of the level's error or more, were
    the sky's noise all its photons (the largest bias a level of photons
    allows: ``factor * rms**2 / level``), and note that bound (its median
    over the map) in ``meta['estimator_bias_bound']``.
    """
    factor, _ = estimator_skew_factor(bkg)
    if factor is None:
        return
    with np.errstate(invalid='ignore', divide='ignore'):
        bound = np.where(level > 0, factor * rms * rms / level, np.inf)
    bound = float(np.median(bound))
    share = bound / float(np.median(error_on_mean))
    meta['estimator_bias_bound'] = bound
    if not share >= UNKNOWN_GAIN_SHARE:
        return
    what = ('its level is not above 0' if not math.isfinite(bound) else
            f'up to {bound:.3g} ({share:.2g} of its error) were its noise '
            'all photons')
    warnings.warn(
        f'gain=None: {estimator_name(bkg.bkg_estimator)} reads a Poisson '
        f'sky low, here {what}, and no gain is known (the data have '
        'neither a unit nor a header that gives one) nor can be read from '
        "the frame's skewness (data= not given, or too few sky pixels): "
        'the level is not corrected. Give gain= (electrons per data unit) '
        'or data=', AstropyUserWarning, stacklevel=stacklevel)


#: the relative rounding error of a mesh level and of its interpolation
_ROUNDING = 16 * np.finfo(float).eps
#: `_with_filter_error` fits a quadratic surface to a grid of at least
#: this many meshes (twice its six terms), a plane to a smaller one
QUADRATIC_MIN_MESHES = 12
#: Where the quadratic surface leaves the meshes scattered beyond their
#: noise, `_sloped_surface` tries polynomial surfaces of higher degree,
#: up to this one, on a grid of at least twice their terms (a vignetted
#: sky's ``(1 + a r**2)**-2`` is a quartic on the mesh scale)
MAX_SURFACE_DEGREE = 4


def _with_interpolation_error(bkg, grid, error_on_mean, k_rms, meta, *,
                              slope=None):
    """
    The level error of a Background2D with excluded meshes, with the error
    of photutils' interpolation itself added in quadrature where the level
    was interpolated.

    photutils fills an excluded mesh with Shepard inverse-distance weights
    of its 10 nearest measured meshes (power 1): for a sky ``a + g . p``
    that misses by ``g . d``, ``d`` the weighted mean position of the
    neighbours less the mesh's. Each measured mesh is predicted from the
    other measured ones the same way; the gradient ``g`` is fitted to those
    prediction errors, and what the gradient and the meshes' noise leave
    unexplained is a further, position-independent interpolation variance
    (each kept only when the prediction errors show it at 1%
    significance).
    An excluded mesh gets ``(g . d)**2`` plus that variance; the median
    filter mixes them over its window. Warns when the result dominates the
    level error.

    With the sky's fitted surface (``slope``, of `_sloped_surface`, whose
    fill and filter `_with_filter_error` put through photutils and whose
    offset it takes from the level) the analysis is of the measured
    meshes less that surface: the interpolation's miss of the surface is
    taken from the level already, and what remains is its miss of what
    the surface leaves, and the surface's own variance at the excluded
    meshes (from its coefficients' covariance, `_surface_variance`). Of
    the raw levels, a curved sky's own misses were counted: the second
    row of 64 px meshes of a 2000 x 100 frame vignetted by 5% to its
    ends, excluded (it hangs over the frame's edge), took 3 to 5 ADU from
    the measured meshes' misses of the vignetting where the level's error
    was 0.6 (level pulls std 0.27, flux pulls 0.82); on a vignetted sky
    of 150 ADU, 20% down to the corners, with 150 stars on 384 x 384
    pixels (15 to 20 of 36 meshes excluded), about 3 ADU (level pulls
    std 0.14, flux pulls 0.73).
    """
    excluded = excluded_meshes(bkg)
    measured = ~excluded
    yx = np.column_stack(np.nonzero(measured)).astype(float)
    if yx.shape[0] < 4:
        meta['interpolation_error'] = None
        return error_on_mean
    values = grid[measured]
    noise = _mesh_noise(bkg, k_rms)[measured]
    # meshes of zero rms (a constant or coarsely digitised sky) still
    # have the rounding of their levels: the interpolation's own rounding
    # is no evidence of a gradient
    noise = np.maximum(noise, _ROUNDING * np.max(np.abs(values)))
    if slope is not None:  # its misses are taken from the level
        values = values - slope['surface'][measured]
    residual, shift, explained = [], [], []
    for j in range(yx.shape[0]):
        others = np.arange(yx.shape[0]) != j
        weights = _idw_weights(yx[others], yx[j])
        residual.append(float(weights @ values[others]) - values[j])
        shift.append(weights @ yx[others] - yx[j])
        explained.append(noise[j] ** 2 + float(weights ** 2
                                               @ noise[others] ** 2))
    residual, shift = np.asarray(residual), np.asarray(shift)
    explained = np.asarray(explained)
    # a gradient and a further variance only where the prediction errors
    # show them beyond the meshes' noise (chi-square at 1%)
    gradient = np.linalg.lstsq(shift, residual, rcond=None)[0]
    left = residual - shift @ gradient
    gain_chi2 = _chi2(residual ** 2 - left ** 2, explained)
    from scipy.stats import chi2 as chi2_distribution  # slow to import

    if not gain_chi2 > chi2_distribution.isf(0.01, 2):
        gradient, left = np.zeros(2), residual
    chi2 = _chi2(left ** 2, explained)
    var = 0.0
    if chi2 > chi2_distribution.isf(0.01, left.size):
        var = max(float(np.mean(left ** 2) - np.mean(explained)), 0.0)
    holes = np.column_stack(np.nonzero(excluded)).astype(float)
    error2 = np.zeros(excluded.shape)
    error2[excluded] = var + np.array(
        [float((_idw_weights(yx, h) @ yx - h) @ gradient) ** 2
         for h in holes])
    if slope is not None:
        error2[excluded] += _surface_variance(slope)[excluded]
    meta['interpolation_gradient'] = tuple(float(g) for g in gradient)
    return _added_interpolation_error(bkg, error2, error_on_mean, meta)


def _added_interpolation_error(bkg, error2, error_on_mean, meta):
    """``error_on_mean`` with the interpolation variance ``error2`` of
    the excluded meshes (`_mesh_variance_map`); records
    ``meta['interpolation_error']`` and warns where it dominates."""
    extra, largest = _mesh_variance_map(bkg, error2)
    meta['interpolation_error'] = largest
    dominated = extra > error_on_mean
    if np.any(dominated):
        warnings.warn(
            'Background2D: the interpolation error of the excluded meshes '
            f'(up to {meta["interpolation_error"]:.3g} per pixel, from the '
            'measured meshes predicted from each other) dominates the sky '
            f'level error over {np.mean(dominated):.0%} of the frame; more '
            'measured meshes (a smaller mask or box_size) would pin the sky '
            'down', AstropyUserWarning, stacklevel=5)
    return np.sqrt(error_on_mean ** 2 + extra ** 2)


def _mesh_variance_map(bkg, error2):
    """A variance per mesh (the grid ``error2``) mixed over photutils'
    filter window, as a standard deviation per pixel, and its largest
    value."""
    fy, fx = (int(f) for f in bkg.filter_size)
    # the filter's running sums leave rounding below 0 (-1e-15) beside
    # the meshes of no added variance
    error2 = np.maximum(uniform_filter(error2, size=(fy, fx),
                                       mode='nearest'), 0.0)
    shape = np.shape(bkg.background_rms)
    extra = np.sqrt(block_replicate(error2, bkg.box_size,
                                    conserve_sum=False)[:shape[0],
                                                        :shape[1]])
    return extra, float(np.sqrt(np.max(error2)))


def _surface_variance(slope):
    """The variance of a fitted surface (``slope``, `_sloped_surface`)
    at each mesh centre from its coefficients' covariance."""
    ny, nx = np.shape(slope['surface'])
    design = surface_design(*np.mgrid[:ny, :nx].astype(float),
                            degree=surface_degree(slope['n_terms']))
    return np.einsum('ij,jk,ik->i', design, slope['cov'],
                     design).reshape(ny, nx)


def _chi2(squares, explained):
    """``sum(squares / explained)``, a term ``0 / 0`` (a sky of zeros,
    noiseless and predicted exactly) counted as 0."""
    with np.errstate(invalid='ignore'):
        return float(np.sum(np.where(squares == 0, 0.0,
                                     squares / explained)))


@contextlib.contextmanager
def kept_mesh_levels(bkg):
    """
    Put photutils' measured mesh levels back after the block.

    photutils frees them (its ``_bkg_stats``) once both of its mesh grids
    are made, which reading ``bkg.background`` and ``bkg.background_rms``
    does; `SkyEstimate.from_background2d` reads them, and a second call on
    the same ``bkg`` then fitted a sloped sky to the median-filtered grid
    (its level up to 1.5 of its errors off). ``bkg`` is left as it came.
    """
    stats = getattr(bkg, '_bkg_stats', None)
    try:
        yield
    finally:
        if stats is not None and getattr(bkg, '_bkg_stats', None) is None:
            bkg._bkg_stats = stats


def _measured_mesh_levels(bkg, data=None, mask=None):
    """
    The mesh levels photutils measured, before its interpolation and
    filter, and where they came from.

    photutils keeps them (its ``_bkg_stats``) only until its mesh grid is
    made: once ``bkg.background`` (or ``background_mesh``) has been read
    they are gone. They are then measured again on ``data`` (with
    ``mask``, as given to Background2D) by photutils' steps
    (`MeshStatistics.levels`), which reproduces them exactly; without
    ``data`` (or when the pixels kept differ from photutils') the final,
    median-filtered grid stands in, and the fit of a sloped sky to it
    (`_sloped_surface`) sees a flattened, smoothed slope.

    Returns
    -------
    levels : 2-D `~numpy.ndarray`
        The mesh grid.
    source : str
        ``'photutils'``, ``'measured again'`` or ``'filtered grid'``.
    """
    raw = getattr(bkg, '_bkg_stats', None)
    if raw is not None and np.shape(raw) == np.shape(bkg.n_pixels_mesh):
        return np.asarray(getattr(raw, 'value', raw), dtype=float), \
            'photutils'
    if data is not None:
        from ..utils.inputs import as_frame

        frame = as_frame(data, mask=mask)
        if frame.data.shape == tuple(np.shape(bkg.background_rms)):
            levels = MeshStatistics.of(bkg).levels_of(frame)
            if levels is not None:
                return levels, 'measured again'
    raw = bkg.background_mesh
    return np.asarray(getattr(raw, 'value', raw), dtype=float), \
        'filtered grid'


#: `mesh_pixel_noise` takes the differences of pixels up to this many
#: columns apart, where its neighbours' differences are too narrow for the
#: pixels' noise (a resampled frame: neighbouring pixels share their input
#: pixels' noise).
MAX_NOISE_LAG = 8
#: ... and stops at the lag whose second differences the next lag's
#: exceed by no more than this share (the differences' noise no longer
#: growing: the pixels beyond the noise's correlation).
NOISE_LAG_PLATEAU = 0.02


def mesh_pixel_noise(bkg, data, mask=None, *, lag=None):
    """
    The pixels' noise in each mesh of a Background2D, from the
    differences of pixels along rows (their median absolute deviation
    over the root of 2, as a Gaussian sigma): a sky's slope or curvature
    over the mesh, which photutils' rms holds, barely enters them. NaN
    where a mesh holds too few pairs; None when ``data`` does not match
    the map.

    The differences are those of neighbouring pixels where their noise is
    independent. On a resampled frame (a drizzled mosaic) neighbouring
    pixels share the noise of their input pixels, and their differences
    are narrower than the noise, by up to 2.6 times (drizzled at 0.45 to
    0.5 of the input pixel, pixfrac 0.7 and 1: photutils' rms, hence the
    map's std on a sloped sky, was taken down to 0.38 to 0.72 of the
    pixels' scatter): there the pixels are taken further apart, one column
    more at a time (up to `MAX_NOISE_LAG`), until the median of the
    meshes' noise grows by no more than `NOISE_LAG_PLATEAU`, judged on
    second differences, which a sky's slope does not enter (`_noise_lag`;
    ``meta['pixel_noise_lag']`` of the map where that is beyond 1).

    On a digitised frame (`lattice_step`) the differences are whole
    steps, and so would their median absolute deviation be: a noise of
    0.7 to 1.3 data units read 1.05 throughout (flux pulls std 0.71 to
    1.20). There each difference is taken as spread evenly over its step
    (`_grouped_mad`), and the spread's variance, ``step**2 / 12`` per
    difference beyond the pixels' own rounding, taken out (Sheppard's
    correction): the noise found is that of the digitised pixels,
    ``sqrt(sigma**2 + step**2 / 12)``.

    ``lag`` (a positive int) takes the differences of pixels that many
    columns apart; None (default): as above.
    """
    noise, _ = _lagged_pixel_noise(bkg, data, mask, lag)
    return noise


def _lagged_pixel_noise(bkg, data, mask=None, lag=None):
    """`mesh_pixel_noise` and the lag of the differences it took (None
    with the noise)."""
    from ..utils.inputs import as_frame

    frame = as_frame(data, mask=mask)
    if frame.data.shape != tuple(np.shape(bkg.background_rms)):
        return None, None
    meshes = MeshStatistics.of(bkg)
    pixels, leave_out = meshes._pixels(frame)
    if lag is not None:
        lag = positive_scalar(lag, 'lag', allow_none=False)
        if lag != int(lag) or not lag < pixels.shape[1]:
            raise ValueError('lag must be a whole number of columns under '
                             f'the frame\'s width, got {lag!r}')
        lag = int(lag)
    else:
        lag = _noise_lag(meshes, pixels, leave_out)
    return _noise_at_lag(meshes, pixels, leave_out, lag)[0], lag


def _noise_lag(meshes, pixels, leave_out):
    """
    The lag of the differences `mesh_pixel_noise` takes: the first whose
    noise the next lag's exceeds by no more than `NOISE_LAG_PLATEAU`
    (the median over the meshes), judged on second differences (``p(x +
    L) - 2 p(x) + p(x - L)``, over the root of 6), which a sky's slope does
    not enter and its curvature barely (a glow of 20 times the noise, 25
    px wide, on the ESO frame widened first differences two columns apart
    by 2%): correlated noise narrows them as it does the first
    differences, and they widen to the noise as the pixels leave its
    correlation.
    """
    lattice, last, lag = None, None, 1
    for lag in range(1, min(MAX_NOISE_LAG, (pixels.shape[1] - 1) // 2) + 1):
        noise, lattice = _noise_at_lag(meshes, pixels, leave_out, lag,
                                       lattice, second=True)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)  # none known
            level = float(np.nanmedian(noise))
        if not np.isfinite(level):
            return 1 if last is None else lag - 1
        if last is not None and not level > last * (1.0 + NOISE_LAG_PLATEAU):
            return lag - 1
        last = level
    return lag


def _noise_at_lag(meshes, pixels, leave_out, lag, lattice=None, *,
                  second=False):
    """The pixels' noise of each mesh (`mesh_pixel_noise`) from the
    differences of pixels ``lag`` columns apart (``second``: the second
    differences, ``p(x + lag) - 2 p(x) + p(x - lag)``, over the root of 6,
    Sheppard's correction left out), and the differences' lattice (found
    at the first call, ``lattice`` None; False where there is none)."""
    from ..utils.stats import difference_noise, lagged_differences

    step, bad, terms = lagged_differences(pixels, leave_out, lag,
                                          second=second)
    if lattice is None:
        # (the differences' lattice: a curved sky's range does not enter
        # it)
        lattice = lattice_step(np.where(bad, np.nan, step)) or False
    boxes = meshes._boxes(step, bad | ~np.isfinite(step))
    enough = np.count_nonzero(np.isfinite(boxes), axis=-1) >= 16
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # empty meshes
        if lattice:
            width = lattice[0]
            spread = MAD_TO_STD * _grouped_mad(boxes, width)
            noise = (spread / math.sqrt(terms) if second else np.sqrt(
                np.maximum(spread ** 2 / 2.0 - width ** 2 / 24.0, 0.0)))
            return np.where(enough, noise, np.nan), lattice
    return np.where(enough, difference_noise(boxes, terms, axis=-1),
                    np.nan), lattice


def _grouped_mad(values, step, n_steps=30, reach=64):
    """
    The median absolute deviation, along the last axis, of values on a
    lattice of ``step`` (offset 0; NaN left out), each taken as spread
    evenly over its step: the deviation ``m`` from the grouped median
    (`LatticeSExtractorBackground`) within which half of that spread
    lies, found by bisection (``n_steps`` halvings) on its piecewise
    linear share, from the counts at each lattice value within ``reach``
    steps of the median (those beyond are counted at ``reach``).
    """
    shape = values.shape[:-1]
    flat = values.reshape(-1, values.shape[-1]) / step
    centre = LatticeSExtractorBackground(1.0)._median(flat)
    finite = np.isfinite(flat)
    n = np.count_nonzero(finite, axis=-1)
    base = np.where(np.isfinite(centre), np.round(centre), 0.0)
    width = 2 * reach + 1
    offset = np.clip(np.round(np.where(finite, flat, 0.0) - base[:, None]),
                     -reach, reach).astype(np.intp) + reach
    index = np.arange(flat.shape[0])[:, None] * width + offset
    counts = np.bincount(index[finite], minlength=flat.shape[0] * width)
    counts = counts.reshape(flat.shape[0], width).astype(float)
    # each lattice value's distance from the median, in steps
    apart = np.arange(-reach, reach + 1.0)[None, :] + (base - centre)[:, None]

    def share(m):  # of the spread within the median -+ m
        upper = np.clip(m[:, None] - apart + 0.5, 0.0, 1.0)
        lower = np.clip(-m[:, None] - apart + 0.5, 0.0, 1.0)
        return np.sum(counts * (upper - lower), axis=-1) / np.maximum(n, 1)

    lo = np.zeros(flat.shape[0])
    hi = np.full(flat.shape[0], reach + 1.0)
    for _ in range(n_steps):
        mid = 0.5 * (lo + hi)
        below = share(mid) < 0.5
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    mad = np.where((n > 0) & np.isfinite(centre), 0.5 * (lo + hi) * step,
                   np.nan)
    return mad.reshape(shape)


def _idw_weights(points, target, n_neighbors=10, power=1.0):
    """Shepard inverse-distance weights of ``points`` at ``target`` (the
    ``n_neighbors`` nearest, as photutils' interpolation of meshes)."""
    dist = np.hypot(*(points - target).T)
    order = np.argsort(dist)[:n_neighbors]
    weights = np.zeros(points.shape[0])
    if dist[order[0]] == 0:
        weights[order[0]] = 1.0
        return weights
    w = 1.0 / dist[order] ** power
    weights[order] = w / w.sum()
    return weights


def maps_parts(background, rms, error_on_mean, n_pix, efficiency):
    """Level, rms, error of the level, efficiency, meta and unit of
    background and rms maps (see `SkyEstimate.from_maps`)."""
    unit = background.unit if isinstance(background, u.Quantity) else None
    level = _as_map(strip_unit(background, unit, 'background'),
                    'background')
    rms = _as_map(strip_unit(rms, unit, 'rms'), 'rms')
    if rms.shape != level.shape:
        raise ValueError(f'rms shape {rms.shape} does not match '
                         f'background shape {level.shape}')
    efficiency = positive_scalar(efficiency, 'efficiency',
                                 allow_none=False)
    meta = {'method': 'maps'}
    if error_on_mean is not None:
        error_on_mean = np.asarray(
            strip_unit(error_on_mean, unit, 'error_on_mean'), dtype=float)
        meta['error_on_mean_from'] = 'given'
    elif n_pix is not None:
        meta['error_on_mean_from'] = 'efficiency * rms / sqrt(n_pix)'
    else:
        meta['error_on_mean_from'] = ('not given: the level is taken as '
                                      'exact')
    return level, rms, error_on_mean, efficiency, meta, unit


def _as_map(value, name):
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f'{name} must be a 2-D numeric array')
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f'{name} must be a 2-D map, got shape {arr.shape}')
    return arr


def _mesh_noise(bkg, factor=1.0, counts=None):
    """
    The noise of each mesh level of a Background2D.

    Parameters
    ----------
    bkg : `~photutils.background.Background2D`
        The map.
    factor : float, optional
        The estimator's efficiency times any correction of the clipped rms
        (default 1: the rms over the root of the pixels).
    counts : 2-D `~numpy.ndarray`, optional
        The pixels behind each mesh's level (the mesh grid); None
        (default): ``n_pixels_mesh``.

    Returns
    -------
    noise : 2-D `~numpy.ndarray`
        ``factor * rms / sqrt(n)`` per mesh, ``rms`` its
        ``background_rms_mesh`` and ``n`` its ``n_pixels_mesh`` (or
        ``counts``; at least 1).
    """
    rms = np.asarray(getattr(bkg.background_rms_mesh, 'value',
                             bkg.background_rms_mesh), dtype=float)
    n_good = np.maximum(np.asarray(
        bkg.n_pixels_mesh if counts is None else counts, dtype=float), 1.0)
    return factor * rms / np.sqrt(n_good)


def excluded_meshes(bkg):
    """
    The meshes photutils left out and filled by interpolation.

    Parameters
    ----------
    bkg : `~photutils.background.Background2D`
        The map.

    Returns
    -------
    excluded : 2-D `~numpy.ndarray` of bool
        The mesh grid: True where a mesh kept too few unmasked pixels
        (``exclude_percentile``) or none.
    """
    n_good = np.asarray(bkg.n_pixels_mesh, dtype=float)
    limit = (1.0 - bkg.exclude_percentile / 100.0) * np.prod(bkg.box_size)
    return (n_good <= limit) | (n_good == 0)


def propagated_mesh_error(bkg, efficiency, rms_factor=1.0, *, seed=0):
    """
    Per-pixel error of the level of a Background2D with excluded meshes,
    propagated through photutils' interpolation and filter (see the module
    docstring), in `N_REALISATIONS` seeded realisations.

    Parameters
    ----------
    bkg : `~photutils.background.Background2D`
        The map.
    efficiency : float
        The mesh estimator's efficiency.
    rms_factor : float, optional
        The correction of the meshes' clipped rms (default 1).
    seed : int, optional
        The realisations' seed (default 0).

    Returns
    -------
    error : 2-D `~numpy.ndarray` or None
        The frame's shape; None when no mesh was excluded (the analytic
        formula holds).
    n_excluded : int
        The excluded meshes.

    Raises
    ------
    ValueError
        When photutils measured no mesh.
    """
    excluded = excluded_meshes(bkg)
    if not np.any(excluded):
        return None, 0
    measured = ~excluded
    if not np.any(measured):
        raise ValueError('bkg: photutils measured no mesh (every mesh was '
                         'excluded); the sky level has no error to give')
    # (a measured mesh kept a pixel at least: `excluded_meshes`)
    sigma = _mesh_noise(bkg, efficiency * rms_factor)[measured]
    rng = np.random.default_rng(seed)
    yx = np.column_stack(np.nonzero(measured))
    holes = np.column_stack(np.nonzero(excluded))
    grids = np.empty((N_REALISATIONS,) + excluded.shape)
    for grid in grids:
        values = rng.normal(0.0, sigma)
        grid[measured] = values
        grid[excluded] = ShepardIDWInterpolator(yx, values)(
            holes, n_neighbors=10, power=1.0)
    return (pixel_error(bkg, _median_filtered(grids, bkg.filter_size)),
            int(excluded.sum()))


def _median_filtered(grids, filter_size):
    """photutils' median filter of mesh grids (a stack), NaN outside the
    grid (a window at the edge holds fewer meshes)."""
    fy, fx = (int(f) for f in filter_size)
    if fy * fx == 1:
        return grids
    pad = np.pad(grids, ((0, 0), (fy // 2, (fy - 1) // 2),
                         (fx // 2, (fx - 1) // 2)), constant_values=np.nan)
    windows = sliding_window_view(pad, (fy, fx), axis=(1, 2))
    return _nanmedian_last(windows.reshape(windows.shape[:-2] + (fy * fx,)))


def _nanmedian_last(values):
    """`numpy.nanmedian` along the last axis, NaN where all are NaN (the
    same numbers, without numpy's one-row-at-a-time path for NaNs)."""
    ordered = np.sort(values, axis=-1)  # NaN last
    n = np.count_nonzero(~np.isnan(ordered), axis=-1)
    low = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[..., None],
                             axis=-1)[..., 0]
    high = np.take_along_axis(ordered, np.maximum(n // 2, 0)[..., None],
                              axis=-1)[..., 0]
    middle = np.where(n % 2 == 1, low, (low + high) / 2.0)
    return np.where(n > 0, middle, np.nan)


def _sloped_surface(bkg, grid, k_rms, measured=None, pixel_noise=None,
                    counts=None, min_degree=2):
    """
    The quadratic surface (a plane for fewer than `QUADRATIC_MIN_MESHES`
    meshes) fitted to the measured mesh levels ``grid``, weighted by each
    mesh's noise (`_mesh_noise` times ``k_rms``), when it explains them
    beyond that noise (chi-square at 1%); else None (a flat sky).

    A curved sky's surface is fitted to the mesh levels less the
    estimator's reading of it over each box (`mesh_estimator_response`),
    weighted by the estimator's noise on it (``pixel_noise``, the pixels'
    noise in each mesh, `mesh_pixel_noise`, NaN or None where unknown);
    where the quadratic leaves the meshes scattered beyond that noise,
    surfaces of higher degree are tried in turn (`MAX_SURFACE_DEGREE`),
    the first that explains them kept (none doing so, the one that leaves
    the least scatter per degree of freedom). ``counts`` (a mesh grid)
    are the pixels behind each level where they are not photutils'
    ``n_pixels_mesh`` (meshes read without their sources); with
    ``min_degree`` the lower degrees are passed over where the meshes
    allow that one.

    Returns
    -------
    slope : dict or None
        ``coef`` and ``n_terms`` (the sky's surface, of
        `~ccdphot_ext.utils.stats.surface_design` in mesh coordinates: 3
        a plane, 6 a quadratic, more a higher degree),
        ``response`` (the estimator's reading of that curved sky over
        each mesh above its centre, `mesh_estimator_response`; None for
        a plane), ``sigma`` (the pixels' noise in each mesh found
        beside that curved sky; None for a plane), ``surface`` (the mesh
        grid the estimator reads: the sky's surface at the mesh centres
        plus ``response``), ``noise_measured`` (whether the pixels' noise
        was measured, ``pixel_noise``), ``noise`` (the meshes' noise, times the root
        of the fit's chi-square per degree of freedom when it does not
        fit) and ``fits`` (False when the surface leaves the meshes
        scattered beyond their noise, chi-square at 1%: a sky that no
        surface tried follows on the mesh scale, or sources lifting some
        meshes).
    """
    noise = _mesh_noise(bkg, k_rms, counts)
    if measured is not None:
        grid = np.where(measured, grid, 0.0)
    noise = np.maximum(noise, _ROUNDING * np.max(np.abs(grid)))
    if not np.all(noise > 0):  # a sky of zeros: no slope to propagate
        return None
    ny, nx = grid.shape
    design = surface_design(*np.mgrid[:ny, :nx].astype(float),
                            quadratic=ny * nx >= QUADRATIC_MIN_MESHES)
    n_terms = design.shape[1]
    w = 1.0 / noise.ravel()
    if measured is not None:
        w = np.where(measured.ravel(), w, 0.0)
        if np.count_nonzero(measured) < 2 * n_terms:
            return None
    coef = weighted_lstsq(design, grid.ravel(), w)
    surface = (design @ coef).reshape(grid.shape)
    weight = noise ** -2.0 if measured is None else noise ** -2.0 * measured
    flat = np.sum(((grid - np.average(grid, weights=weight)) / noise) ** 2
                  * (1 if measured is None else measured))
    left = np.sum(((grid - surface) / noise) ** 2
                  * (1 if measured is None else measured))
    from scipy.stats import chi2 as chi2_distribution  # slow to import

    if not flat - left > chi2_distribution.isf(0.01, n_terms - 1):
        return None
    n_used = grid.size if measured is None else int(np.count_nonzero(
        measured))
    used = 1 if measured is None else measured
    if n_terms == 3:
        return _scaled_to_misfit({
            'surface': surface, 'coef': coef, 'n_terms': n_terms,
            'noise': noise, 'response': None, 'sigma': None,
            'noise_measured': False}, grid, used,
            n_used, left)
    _, clip = clip_corrected_rms(bkg, 1.0, clip_factors)
    n_good = np.maximum(np.asarray(
        bkg.n_pixels_mesh if counts is None else counts, dtype=float), 1.0)
    chosen = None
    for degree in range(2, MAX_SURFACE_DEGREE + 1):
        n_terms = (degree + 1) * (degree + 2) // 2
        if n_used < 2 * n_terms:
            break
        if degree < min_degree and n_used >= (min_degree + 1) * (
                min_degree + 2):
            continue
        design = surface_design(*np.mgrid[:ny, :nx].astype(float),
                                degree=degree)
        coef = weighted_lstsq(design, grid.ravel(), w)
        for _ in range(2):
            # the mesh levels are the estimator's readings of the curved
            # sky over each box: the sky's surface is fitted to them less
            # that reading's excess over the centre, each weighted by the
            # estimator's noise on that sky (photutils' rms holds the
            # sky's spread over the box, not noise)
            response, sigma, factor = mesh_estimator_response(
                bkg, coef, n_terms, pixel_noise)
            curved_noise = np.maximum(
                k_rms / clip * sigma * factor / np.sqrt(n_good),
                0.25 * noise)
            weights = np.where(used, 1.0 / curved_noise, 0.0).ravel()
            coef = weighted_lstsq(design, (grid - response).ravel(),
                                  weights)
        surface = (design @ coef).reshape(grid.shape) + response
        left = np.sum(((grid - surface) / curved_noise) ** 2 * used)
        candidate = {'surface': surface, 'coef': coef, 'n_terms': n_terms,
                     'noise': curved_noise, 'response': response,
                     'sigma': sigma}
        # none fitting, the one that leaves the least scatter per degree
        # of freedom (a vignetted sky on a deep stack: the quartic)
        if (chosen is None or _fits(left, n_used, n_terms)
                or left / (n_used - n_terms) < chosen[1] / (
                    n_used - chosen[0]['n_terms'])):
            chosen = (candidate, left)
        if _fits(left, n_used, n_terms):
            break
    chosen[0]['noise_measured'] = pixel_noise is not None
    return _scaled_to_misfit(chosen[0], grid, used, n_used, chosen[1])


def _fits(left, n_used, n_terms):
    """Whether a surface of ``n_terms`` terms leaves ``n_used`` meshes
    within their noise (their chi-square ``left``, at 1%)."""
    from scipy.stats import chi2 as chi2_distribution  # slow to import

    return bool(left <= chi2_distribution.isf(0.01, max(n_used - n_terms,
                                                         1)))


def _scaled_to_misfit(slope, grid, used, n_used, left):
    """``slope`` with ``fits`` set, and where the meshes scatter about its
    surface beyond their noise (a sky that no surface tried follows,
    sources lifting some meshes) that noise scaled by the root of their
    chi-square per degree of freedom: the level's error holds that
    scatter (``noise_of_meshes`` keeps the noise before it, which the
    filter's offset follows, `_offset_noise`). ``cov`` is the covariance
    of its coefficients."""
    slope['fits'] = _fits(left, n_used, slope['n_terms'])
    slope['noise_of_meshes'] = slope['noise']
    if not slope['fits']:
        slope['noise'] = slope['noise'] * math.sqrt(
            left / max(n_used - slope['n_terms'], 1))
    ny, nx = np.shape(grid)
    design = surface_design(*np.mgrid[:ny, :nx].astype(float),
                            degree=surface_degree(slope['n_terms']))
    weights = (np.where(used, 1.0, 0.0) / slope['noise'] ** 2).ravel()
    slope['cov'] = np.linalg.pinv(design.T @ (design * weights[:, None]))
    return slope


def slope_spread_variance(bkg, slope):
    """
    The variance, per pixel, of a sloped sky's level over the pixels of a
    mesh: ``(g_y**2 (b_y**2 - 1) + g_x**2 (b_x**2 - 1)) / 12`` for the
    fitted surface's gradient ``g`` (data units per pixel) at each mesh
    centre and meshes of ``b_y x b_x`` pixels, interpolated linearly
    between mesh centres; 0 without a slope (``slope`` None, see
    `_sloped_surface`).

    photutils' rms of a mesh holds it (the spread of the level is not
    noise), and on a Poisson sky the pixels on the mesh's bright side
    scatter more, which skews the mesh's pixel distribution
    (`estimator_skew_bias`).
    """
    shape = np.shape(bkg.background_rms)
    if slope is None:
        return np.zeros(shape)
    coef, surface, n_terms = slope['coef'], slope['surface'], slope['n_terms']
    u, v = np.mgrid[:surface.shape[0], :surface.shape[1]].astype(float)
    step = 1e-3  # mesh units: exact for a quadratic
    gu = (_surface_at(coef, n_terms, u + step, v)
          - _surface_at(coef, n_terms, u - step, v)) / (2.0 * step)
    gv = (_surface_at(coef, n_terms, u, v + step)
          - _surface_at(coef, n_terms, u, v - step)) / (2.0 * step)
    by, bx = (float(b) for b in bkg.box_size)
    spread = ((gu / by) ** 2 * (by * by - 1.0)
              + (gv / bx) ** 2 * (bx * bx - 1.0)) / 12.0
    return _spread(np.broadcast_to(spread, surface.shape),
                   tuple(int(b) for b in bkg.box_size), shape)


#: `mesh_estimator_response` samples the fitted sky at this many points a
#: side of each mesh (its pixels, when it has fewer a side) ...
RESPONSE_POINTS = 24
#: ... each with this many quantiles of the pixels' Gaussian noise
RESPONSE_QUANTILES = 16
#: `mesh_estimator_response` applies the estimator to this many meshes
#: at a time (its sample of a mesh holds some 9000 values)
_RESPONSE_CHUNK = 128


def surface_degree(n_terms):
    """The degree of a polynomial surface of ``n_terms`` terms
    (`~ccdphot_ext.utils.stats.surface_terms`: 3 a plane, 6 a quadratic,
    10 a cubic, 15 a quartic)."""
    degree = int(round((math.sqrt(8.0 * n_terms + 1.0) - 3.0) / 2.0))
    if (degree + 1) * (degree + 2) // 2 != n_terms:
        raise ValueError(f'n_terms {n_terms} is not a polynomial surface\'s')
    return degree


def _surface_at(coef, n_terms, u, v):
    """The polynomial surface ``coef`` (of ``n_terms`` terms) at mesh
    coordinates ``u, v``."""
    terms = surface_terms(u, v, degree=surface_degree(n_terms))
    return sum(c * t for c, t in zip(coef, terms, strict=True)) + 0.0 * u


def _box_offsets(box, n_points):
    """``n_points`` offsets across a mesh of ``box`` pixels, in mesh
    units from its centre: its pixels' offsets when ``n_points`` is
    ``box``, else evenly spread with the pixels' second moment."""
    t = (np.arange(n_points) + 0.5) / n_points - 0.5
    if n_points < box:
        t = t * math.sqrt((1.0 - box ** -2.0) / (1.0 - n_points ** -2.0))
    return t


def mesh_estimator_response(bkg, coef, n_terms, pixel_noise=None):
    """
    What a Background2D's clip and estimator read on a curved sky, per
    mesh, above the sky at the mesh centre.

    photutils' filter and spline take each mesh level for the sky at its
    centre. A mesh's mean lies ``b**2 f'' / 24`` along each axis (a box of
    ``b`` pixels, second derivative ``f''``) from it; a median-based
    estimator reads nearer the centre where the level's spread over the
    box is large against the pixels' noise (on the flank of a vignetted
    sky, on a bright or stacked sky), the mean's value where it is small.
    Each mesh's clip and estimator are applied to a deterministic sample
    of the fitted surface over its box (`RESPONSE_POINTS` a side) plus
    `RESPONSE_QUANTILES` quantiles of Gaussian noise per point, the
    noise's sigma that at which the sample's clipped rms is photutils'
    (``bkg.background_rms_mesh``; one pass of correction).

    Parameters
    ----------
    bkg : `~photutils.background.Background2D`
        The map.
    coef : `~numpy.ndarray`
        The quadratic surface (`~ccdphot_ext.utils.stats.surface_design`'s
        six terms in mesh coordinates) fitted to the mesh levels.
    n_terms : int
        Its terms: a plane (3) reads its centre with every estimator (0).
    pixel_noise : 2-D `~numpy.ndarray`, optional
        The pixels' noise in each mesh (`mesh_pixel_noise`; NaN where
        unknown); else, and where NaN, found from photutils' rms
        (``bkg.background_rms_mesh``).

    Returns
    -------
    response : 2-D `~numpy.ndarray`
        The mesh grid: the estimator's expected reading less the surface
        at each mesh centre (data units).
    sigma : 2-D `~numpy.ndarray` or None
        The pixels' noise found in each mesh (None for a plane).
    factor : 2-D `~numpy.ndarray`
        The estimator's noise on the curved sky over its noise on a flat
        one of that ``sigma`` (an ``a * median - b * mean`` estimator,
        `estimator_weights`; 1 otherwise): a median reads a sky that
        spreads much beyond the noise over the box with a larger error.
    """
    rms = np.asarray(getattr(bkg.background_rms_mesh, 'value',
                             bkg.background_rms_mesh), dtype=float)
    grid_shape = rms.shape
    rms = rms.ravel()
    if n_terms <= 3:
        return np.zeros(grid_shape), None, np.ones(grid_shape)
    meshes = MeshStatistics.of(bkg)
    (by, bx) = meshes.box_size
    ty = _box_offsets(by, min(by, RESPONSE_POINTS))[:, None]
    tx = _box_offsets(bx, min(bx, RESPONSE_POINTS))[None, :]
    u, v = (a.ravel() for a in np.mgrid[:grid_shape[0], :grid_shape[1]]
            .astype(float))
    # the sky over each box less its centre: (meshes, points)
    sky = (_surface_at(coef, n_terms, u[:, None] + np.broadcast_to(
        ty, (ty.size, tx.size)).ravel(), v[:, None] + np.broadcast_to(
            tx, (ty.size, tx.size)).ravel())
           - _surface_at(coef, n_terms, u, v)[:, None])
    # each point's noise quantiles, offset along a golden-ratio sequence
    # so that the sample's noise is stratified finely as a whole
    shift = (np.arange(sky.shape[1]) * 0.6180339887498949 + 0.5) % 1.0
    from scipy.special import ndtri  # slow to import

    z = ndtri((np.arange(RESPONSE_QUANTILES)[None, :] + shift[:, None])
              / RESPONSE_QUANTILES).ravel()
    clip, _ = clip_corrected_rms(bkg, 1.0, clip_factors)
    sigma = np.sqrt(np.maximum((clip * rms) ** 2 - np.var(sky, axis=1),
                               0.0))

    def read(sigma):
        level, spread, median = (np.empty(u.size) for _ in range(3))
        for start in range(0, u.size, _RESPONSE_CHUNK):
            part = slice(start, start + _RESPONSE_CHUNK)
            values = (np.repeat(sky[part], RESPONSE_QUANTILES, axis=1)
                      + sigma[part, None] * z[None, :])
            median[part] = np.median(values, axis=1)
            level[part], spread[part] = meshes.estimate(values)
        return level, spread, median

    known = (np.zeros(u.size, dtype=bool) if pixel_noise is None
             else np.isfinite(np.ravel(pixel_noise)))
    if np.any(known):
        sigma = np.where(known, np.ravel(pixel_noise), sigma)
    level, spread, median = read(sigma)
    if not np.all(known) and np.all(np.isfinite(spread)):
        sigma = np.where(known, sigma, np.sqrt(np.maximum(
            sigma * sigma + rms * rms - spread * spread, 0.0)))
        level, _, median = read(sigma)
    factor = np.ones(u.size)
    weights = estimator_weights(bkg)
    if weights is not None:
        a, b = weights
        # the median's variance over the mean's (sigma**2 / n) on the
        # mixture of the box's levels and Gaussian noise: sum Phi (1 -
        # Phi) / (n p)**2 (p its density at the median), and their
        # covariance sigma**2 / n (influence functions; the clip left out)
        from scipy.special import ndtr  # slow to import

        with np.errstate(invalid='ignore', divide='ignore'):
            t = (median[:, None] - sky) / sigma[:, None]
            density = np.mean(np.exp(-0.5 * t * t), axis=1) / math.sqrt(
                2.0 * math.pi)
            cdf = ndtr(t)
            ratio = np.mean(cdf * (1.0 - cdf), axis=1) / density ** 2
            flat = a * a * math.pi / 2.0 + b * b - 2.0 * a * b
            curved = a * a * ratio + b * b - 2.0 * a * b
            factor = np.where(np.isfinite(curved) & (sigma > 0),
                              np.sqrt(np.maximum(curved, 0.0) / flat), 1.0)
    return (level.reshape(grid_shape), sigma.reshape(grid_shape),
            factor.reshape(grid_shape))


def _with_filter_error(bkg, slope, error_on_mean, meta, *, measured=None,
                       seed=0):
    """
    The level error of a Background2D whose median filter meets a sloped
    sky, and the filter's and interpolation's offset from that sky (per
    pixel, to be taken from the level).

    The filter's gain holds for meshes that differ only by noise. On a sky that
    changes by more than the noise from mesh to mesh the median of a window
    is its middle mesh's level (no gain from the filter), and at the
    grid's edges, where the window is cut to the meshes inside, it is a
    level nearer the interior (the slope flattened). The fitted surface
    (``slope``, `_sloped_surface`), with each mesh's noise, is put through
    photutils' filter in a seeded Monte Carlo: the scatter of the result
    is the error of the filtered level, and its mean's offset from the
    surface, as photutils interpolates it, is a bias that the level
    sheds. Where the surface does not explain the meshes (``slope['fits']``
    False) their noise is scaled to their scatter about it
    (`_sloped_surface`) for the error, the offset found with their own
    noise (`_offset_noise`), and a warning says so.

    With excluded meshes (``measured``: False for them) the excluded ones
    are filled in each realisation as photutils fills them
    (`ShepardIDWInterpolator`, 10 neighbours, power 1), and the larger of
    ``error_on_mean`` (the propagated and interpolation error) and this
    one is kept, pixel by pixel. Without a slope (``slope`` None) the
    error is unchanged and the offset 0.
    """
    if slope is None:
        return error_on_mean, 0.0
    surface, coef, n_terms = slope['surface'], slope['coef'], slope['n_terms']
    noise = slope['noise']
    if measured is not None:
        error, offset = _filled_filter_error(
            bkg, surface, noise, measured, coef, n_terms, meta, seed,
            slope['fits'], slope.get('cov'), _offset_noise(slope))
        return np.maximum(error_on_mean, error), offset
    if np.prod(bkg.filter_size) == 1:  # no filter: only the spline's bend
        if slope['noise_measured'] or not slope['fits']:
            # photutils' rms held the curved sky's spread over each mesh
            error_on_mean = filtered_noise_error(bkg, noise)
        between = _interpolated_offset(bkg, surface, coef, n_terms)
        if between is None:  # an interpolator whose steps are not known
            between = _per_mesh_offset(bkg, surface, coef, n_terms)
        meta['interpolation_offset'] = float(np.max(np.abs(between)))
        meta['error_on_mean_from'] += (
            "; photutils' interpolation's offset from the fitted sloped "
            'sky taken from the level')
        return error_on_mean, between
    rng = np.random.default_rng(seed)
    draws = rng.normal(0.0, 1.0, (N_REALISATIONS,) + surface.shape)
    grids = surface + draws * noise
    meta['error_on_mean_from'] = (
        "mesh errors on the fitted sloped sky propagated through photutils'"
        ' median filter; its offset from that sky taken from the level')
    own = _offset_noise(slope)
    if own is not None:
        own = _median_filtered(surface + draws * own, bkg.filter_size)
    return _realised_error(bkg, _median_filtered(grids, bkg.filter_size),
                           surface, coef, n_terms, meta, slope['fits'],
                           stacklevel=6, refilter=lambda shift: (
                               _median_filtered(grids + shift,
                                                bkg.filter_size)),
                           cov=slope.get('cov'), offset_from=own)


def _realised_error(bkg, filtered, surface, coef, n_terms, meta, fits,
                    stacklevel, refilter=None, cov=None, offset_from=None):
    """
    The level error, per pixel, of a map whose mesh grids ``filtered``
    are realisations of the fitted sloped ``surface`` (``coef``, of
    ``n_terms`` terms) through photutils' filter (their scatter), and
    their mean's offset from the surface as photutils interpolates it
    between mesh centres (`_interpolated_offset`; where its steps are not
    known, each mesh's own offset). A warning says where the offset
    dominates (`_warn_flattened`, ``stacklevel`` counted from there;
    ``fits`` False: the surface does not explain the meshes). Records
    ``meta['filter_error']`` (and ``'interpolation_offset'``).

    The offset rests on the fitted surface, known to its coefficients'
    covariance ``cov``: the surface is moved by `N_SURFACE_DRAWS` seeded
    draws from it and put through the filter again (``refilter``, of a
    change of the mesh grid), and the variance of the offset so found
    (`_offset_variance`) is added to the error. With ``offset_from``
    (realisations of the meshes' own noise, `_offset_noise`) the offset
    is theirs.
    """
    centred = filtered if offset_from is None else offset_from
    offset = np.mean(centred, axis=0) - surface
    meta['filter_error'] = float(np.max(np.abs(offset)))
    shape = np.shape(bkg.background_rms)
    error, shift = pixel_scatter(bkg, filtered)
    if offset_from is not None:
        shift = pixel_scatter(bkg, offset_from)[1]
    variance = error ** 2
    # beyond the outer mesh centres the level rests on the offset taken
    # from it (the filter's flattening, the spline's clip to the grid's
    # range: 75 of its errors at the edge of a +-3 sigma slope), known
    # to a few per cent: there the error is at least its mesh's scatter
    # (the spline's own, 0.8 of it, left the pixels a quarter mesh
    # beyond the outer centres 1.5 of their errors off)
    outside = ~_between_mesh_centres(bkg.box_size, shape)
    if np.any(outside):
        per_mesh = block_replicate(np.var(filtered, axis=0), bkg.box_size,
                                   conserve_sum=False)[:shape[0], :shape[1]]
        variance = np.where(outside, np.maximum(variance, per_mesh),
                            variance)
    between = _interpolated_offset(bkg, np.mean(centred, axis=0), coef,
                                   n_terms)
    if between is None:  # an interpolator whose steps are not known
        between = _per_mesh_offset(bkg, np.mean(centred, axis=0), coef,
                                   n_terms)
    else:
        # the spline's clip to each grid's range: the mean map is not the
        # map of the mean grid beyond the outer mesh centres
        between = between + shift
        meta['interpolation_offset'] = float(np.max(np.abs(between)))
        if refilter is not None and cov is not None:
            variance = variance + _offset_variance(
                bkg, refilter, filtered, n_terms, cov)
    _warn_flattened(bkg, offset, filtered, meta, fits,
                    stacklevel=stacklevel)
    if not fits:
        meta['error_on_mean_from'] += (
            ' (the meshes\' noise scaled to their scatter about the fitted '
            'surface, which does not explain them)')
    return np.sqrt(variance), between


def _offset_variance(bkg, refilter, filtered, n_terms, cov, *, seed=1):
    """The variance, per pixel, of the filter's offset from a fitted
    surface (of ``n_terms`` terms) over `N_SURFACE_DRAWS` draws of the
    surface from its coefficients' covariance ``cov``: each draw's change
    of the filtered grids' mean (``filtered`` before) less its change of
    the surface, at the mesh centres, spread linearly between them
    (`_realised_error`)."""
    grid_shape = np.shape(filtered)[1:]
    ny, nx = grid_shape
    design = surface_design(*np.mgrid[:ny, :nx].astype(float),
                            degree=surface_degree(n_terms))
    draws = np.random.default_rng(seed).multivariate_normal(
        np.zeros(n_terms), cov, N_SURFACE_DRAWS, method='eigh')
    before = np.mean(filtered, axis=0)
    offsets = []
    for delta in draws:
        moved = (design @ delta).reshape(grid_shape)
        offsets.append(np.mean(refilter(moved), axis=0) - before - moved)
    return _spread(np.var(offsets, axis=0, ddof=1),
                   tuple(int(b) for b in bkg.box_size),
                   np.shape(bkg.background_rms))


def _warn_flattened(bkg, offset, filtered, meta, fits, stacklevel=5):
    """Warn where the filter's ``offset`` from the fitted sloped sky
    exceeds the scatter of the ``filtered`` realisations (``stacklevel``
    as in `warnings.warn`, counted from here): taken from the level where
    the fitted surface explains the meshes (``fits``) or not (then the
    level's error holds the meshes' scatter about it)."""
    shape = np.shape(bkg.background_rms)
    dominated = block_replicate(np.abs(offset) > np.sqrt(
        np.var(filtered, axis=0)), bkg.box_size,
        conserve_sum=False)[:shape[0], :shape[1]]
    if not np.any(dominated):
        return
    head = ("Background2D: photutils' median filter of the mesh grid "
            "flattens the sky's slope at the grid's edges (up to "
            f'{meta["filter_error"]:.3g} per pixel off the fitted sky, more '
            f'than the level\'s error over {np.mean(dominated):.0%} of the '
            'frame)')
    if fits:
        tail = ('; that offset, from the surface fitted to the '
                'meshes, is taken from the level (meta["slope_offset"])')
    else:
        tail = ('; that offset, from the surface fitted to the '
                'meshes, is taken from the level, but the meshes scatter '
                'about that surface beyond their noise (a sky that no '
                'surface tried follows on the mesh scale, or sources '
                'lifting meshes), '
                'so the level\'s error holds that scatter')
    warnings.warn(head + tail, AstropyUserWarning, stacklevel=stacklevel)


def _filled_filter_error(bkg, surface, noise, measured, coef, n_terms,
                         meta, seed, fits, cov=None, offset_noise=None):
    """The error of a Background2D level on the fitted sloped ``surface``
    with excluded meshes (``measured`` False), filled as photutils fills
    them, then filtered and interpolated, and the offset of the result
    from the surface (`_with_filter_error`; with ``offset_noise``, the
    offset of realisations of that noise, `_offset_noise`)."""
    rng = np.random.default_rng(seed)
    draws = rng.normal(0.0, 1.0, (N_REALISATIONS,) + surface.shape)
    grids = surface + draws * noise
    yx = np.column_stack(np.nonzero(measured))
    holes = np.column_stack(np.nonzero(~measured))
    def filled(grid):
        grid[~measured] = ShepardIDWInterpolator(yx, grid[measured])(
            holes, n_neighbors=10, power=1.0)
        return grid

    for grid in grids:
        filled(grid)
    own = None
    if offset_noise is not None:
        own = surface + draws * offset_noise
        for grid in own:
            filled(grid)
        own = _median_filtered(own, bkg.filter_size)
    meta['error_on_mean_from'] += (
        ', or (where larger) the mesh errors on the fitted sloped sky '
        "through photutils' filling, filter and interpolation; their "
        'offset from that sky taken from the level')
    return _realised_error(bkg, _median_filtered(grids, bkg.filter_size),
                           surface, coef, n_terms, meta, fits, stacklevel=7,
                           refilter=lambda shift: _median_filtered(
                               grids + filled(np.array(shift, dtype=float)),
                               bkg.filter_size), cov=cov, offset_from=own)


def _offset_noise(slope):
    """
    The meshes' noise with which photutils' filter's offset from a fitted
    surface (``slope``, `_sloped_surface`) is found: their noise where
    the surface does not explain them, else None (that of the error).

    Where the meshes scatter about the surface beyond their noise, the
    level's error holds that scatter (``slope['noise']`` scaled to it),
    but the filter's offset does not follow it. Where meshes of about one
    level meet (the peak of a vignetted sky, where the 3 x 3 median is
    the highest of the four meshes around the centre) the median of a
    window is an order statistic of their noise; the misfit of a smooth
    sky is shared by meshes placed alike, and moves no order. Realised
    with the misfit as noise, the offset at the peak of a cos**4
    vignette on a deep stack (sky 100, pixel noise 1, 30% down at the
    edge midpoints, 64 px meshes) was overstated: the level within a
    third of the half-width of the centre read 3.6 of its errors low on
    average, 2.5 with the meshes' own noise (the rest is the quartic's
    misfit at the peak, between the mesh centres).
    """
    if slope['fits']:
        return None
    return slope['noise_of_meshes']


def _per_mesh_offset(bkg, grid, coef, n_terms):
    """Each mesh's offset of the mesh ``grid`` from the fitted surface
    (``coef`` of ``n_terms`` terms) at its centre, over its pixels."""
    ny, nx = np.shape(grid)
    sky = surface_design(*np.mgrid[:ny, :nx].astype(float),
                         degree=surface_degree(n_terms)) @ coef
    shape = np.shape(bkg.background_rms)
    return block_replicate(grid - sky.reshape(ny, nx), bkg.box_size,
                           conserve_sum=False)[:shape[0], :shape[1]]


def _interpolated_offset(bkg, grid, coef, n_terms):
    """
    The offset, per pixel, of photutils' interpolation of the filtered mesh
    ``grid`` (its expectation) from the fitted surface (``coef`` of
    `_with_filter_error`'s plane or quadratic in mesh coordinates),
    evaluated at each pixel: between mesh centres the interpolation
    bends where the grid does (a cubic spline through meshes that the
    filter flattened at the edges, or mirrored at the grid's edges), which
    the meshes' own offsets do not show. None when photutils' arguments to
    its interpolator are not at hand.
    """
    kwargs = getattr(bkg, '_interp_kwargs', None)
    if kwargs is None:
        return None
    shape = np.shape(bkg.background_rms)
    interpolated = np.asarray(bkg.interpolator(
        grid, **dict(kwargs, dtype=float)), dtype=float)
    if interpolated.shape != shape:
        return None
    by, bx = (int(b) for b in bkg.box_size)
    # pixel p lies at mesh coordinate (p - (box - 1) / 2) / box, as
    # photutils places the mesh centres
    y = ((np.arange(shape[0]) - (by - 1) / 2.0) / by)[:, None]
    x = ((np.arange(shape[1]) - (bx - 1) / 2.0) / bx)[None, :]
    surface = _surface_at(coef, n_terms, y, x)
    return interpolated - surface


def clip_corrected_rms(bkg, rms, clip_factors):
    """
    The rms map corrected for photutils' sigma clipping (``StdBackgroundRMS``
    of clipped pixels underestimates sigma), and the factor used (1 when
    there is no symmetric clipping or another rms estimator).
    """
    clip = bkg.sigma_clip
    name = type(bkg.bkg_rms_estimator).__name__
    if clip is None or name != 'StdBackgroundRMS':
        return rms, 1.0
    lower, upper = clip.sigma_lower, clip.sigma_upper
    if lower is None or upper is None or lower != upper:
        return rms, 1.0
    factor = clip_factors(float(lower))[0]
    return rms * factor, factor


#: The mesh side `frame_background2d` chooses (Source Extractor's and
#: photutils' usual 64 pixels), at most the frame's side.
DEFAULT_MESH = 64
#: The ``exclude_percentile`` values `frame_background2d` tries in turn:
#: photutils' 10 (a mesh needs 90% of its pixels unmasked and unclipped),
#: then Source Extractor's rule that a mesh needs half of them.
EXCLUDE_PERCENTILES = (10.0, 50.0)


#: `lattice_step` takes a frame for digitised where its values lie on a
#: lattice whose step is at least this fraction of their scatter (the
#: ulps of float32 data are far below it).
LATTICE_MIN_STEP = 0.02
#: The pixels `lattice_step` looks at (evenly spaced over the frame).
LATTICE_SAMPLE = 2 ** 18


def lattice_step(data):
    """
    The step and offset of the lattice a frame's finite values lie on
    (whole data units: 1 and 0; whole electrons in electron/s: the gain
    over the exposure time), or None where they do not lie on one or its
    step is under `LATTICE_MIN_STEP` times their scatter.

    Parameters
    ----------
    data : array_like
        The frame.

    Returns
    -------
    lattice : tuple of float or None
        ``(step, offset)``: every value is ``offset + k * step``.
    """
    sample = np.asarray(data, dtype=float).ravel()
    sample = sample[::max(1, sample.size // LATTICE_SAMPLE)]
    sample = sample[np.isfinite(sample)]
    values = np.unique(sample)
    if values.size:
        # Values of a scaled unit (whole ADU times 0.02, 0.1 ...) that
        # differ by rounding only are one lattice point, not a tiny step.
        tolerance = 1e-9 * float(np.max(np.abs(values)))
        values = values[np.concatenate([[True], np.diff(values) > tolerance])]
    if values.size < 3:
        return None
    step = float(np.min(np.diff(values)))
    units = (values - values[0]) / step
    if not np.all(np.abs(units - np.round(units)) <= 1e-6):
        return None
    centre = np.median(sample)
    scatter = MAD_TO_STD * float(np.median(np.abs(sample - centre)))
    if not step >= LATTICE_MIN_STEP * scatter:
        return None
    return step, float(values[0] % step)


def grouped_median(data, step, offset=0.0):
    """
    The grouped median along the last axis of ``data`` (NaN left out),
    whose values lie on the lattice ``offset + k * step``: ``k - step / 2
    + step (n / 2 - n_below) / n_at`` (``k`` the median's lattice value,
    ``n_below`` the values below its step and ``n_at`` those in it), the
    median of the values each spread evenly over its step, which follows
    the median of the continuous values between the lattice's points.

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext.background.maps import grouped_median
    >>> print(grouped_median(np.array([3.0, 4.0, 4.0, 5.0, 6.0]), 1.0))
    4.25
    """
    z = (np.asarray(data, dtype=float) - offset) / step
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all NaN
        k = np.floor(np.nanmedian(z, axis=-1, keepdims=True) + 0.5)
    n = np.count_nonzero(np.isfinite(z), axis=-1)[..., None]
    below = np.count_nonzero(z < k - 0.5, axis=-1)[..., None]
    at = np.count_nonzero(np.abs(z - k) <= 0.5, axis=-1)[..., None]
    with np.errstate(invalid='ignore', divide='ignore'):
        grouped = np.where(at > 0, k - 0.5 + (0.5 * n - below) / at,
                           np.nan)
    return grouped[..., 0] * step + offset


class LatticeSExtractorBackground(SExtractorBackground):
    """
    Source Extractor's background estimator, ``2.5 median - 1.5 mean``
    (photutils' `~photutils.background.SExtractorBackground`, the same
    rules for a skewed or constant mesh), whose median is interpolated
    within the step of digitised data.

    The median of pixels in whole data units is itself a whole unit (or a
    half): with a sky of 40.4 ADU and a noise of 5 ADU, photutils' meshes
    read 0.9 ADU low, its median's 0.4 unit times 2.5. Here the median is
    the grouped-data one, ``k - step / 2 + step (n / 2 - n_below) /
    n_at`` (``k`` the median's lattice value, ``n_below`` the pixels below
    its step and ``n_at`` those in it), which follows the sky's median
    between the lattice's values.

    Parameters
    ----------
    step : float
        The lattice's step (`lattice_step`).
    offset : float, optional
        Its offset: the values are ``offset + k * step``.
    sigma_clip : `~astropy.stats.SigmaClip` or None, optional
        As photutils' (Background2D sets it to None and clips itself).
    """

    def __init__(self, step, offset=0.0, sigma_clip=None):
        super().__init__(sigma_clip=sigma_clip)
        self.step, self.offset = float(step), float(offset)

    def _median(self, data):
        """The grouped median along the last axis of ``data`` (NaN
        left out; `grouped_median`)."""
        return grouped_median(data, self.step, self.offset)

    def calc_background(self, data, axis=None, masked=False):
        """The level of ``data`` along ``axis`` (as photutils')."""
        data = _clipped_rows(self.sigma_clip, data, axis)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)
            median = np.atleast_1d(self._median(data))
            mean = np.atleast_1d(np.nanmean(data, axis=-1))
            std = np.atleast_1d(np.nanstd(data, axis=-1))
            result = 2.5 * median - 1.5 * mean
            flat = std == 0
            result[flat] = mean[flat]
            with np.errstate(invalid='ignore', divide='ignore'):
                skewed = (np.abs(mean - median) / std >= 0.3) & ~flat
            result[skewed] = median[skewed]
        return _as_photutils_result(result, axis, masked)


def _clipped_rows(sigma_clip, data, axis):
    """``data`` as a lattice estimator reads it: clipped by ``sigma_clip``
    (rejected pixels NaN; a masked array's masked pixels NaN without
    one), as floats with ``axis`` last (``axis`` None: flattened)."""
    if sigma_clip is not None:
        data = sigma_clip(data, axis=axis, masked=False)
    elif isinstance(data, np.ma.MaskedArray):
        data = data.filled(np.nan)
    data = np.asarray(data, dtype=float)
    return data.ravel() if axis is None else np.moveaxis(data, axis, -1)


def _as_photutils_result(result, axis, masked):
    """A lattice estimator's levels as photutils' estimators return them:
    one float for ``axis`` None, else the array (masked where NaN when
    ``masked``)."""
    if axis is None:
        return float(np.ravel(result)[0])
    if masked:
        return np.ma.masked_where(np.isnan(result), result)
    return result


class LatticeMedianBackground(MedianBackground):
    """
    photutils' median estimator (`~photutils.background.MedianBackground`)
    whose median is interpolated within the step of digitised data
    (`grouped_median`), as in `LatticeSExtractorBackground`.

    Parameters
    ----------
    step : float
        The lattice's step (`lattice_step`).
    offset : float, optional
        Its offset: the values are ``offset + k * step``.
    sigma_clip : `~astropy.stats.SigmaClip` or None, optional
        As photutils' (Background2D sets it to None and clips itself).
    """

    def __init__(self, step, offset=0.0, sigma_clip=None):
        super().__init__(sigma_clip=sigma_clip)
        self.step, self.offset = float(step), float(offset)

    def calc_background(self, data, axis=None, masked=False):
        """The grouped median of ``data`` along ``axis`` (as photutils')."""
        data = _clipped_rows(self.sigma_clip, data, axis)
        return _as_photutils_result(
            grouped_median(data, self.step, self.offset), axis, masked)


def lattice_estimator(estimator, lattice):
    """
    The estimator that measures a map's meshes as photutils' median-based
    ``estimator`` does, its median interpolated within the ``lattice``
    (``(step, offset)``, `lattice_step`) of digitised data:
    `LatticeSExtractorBackground` for photutils'
    `~photutils.background.SExtractorBackground`,
    `LatticeMedianBackground` for its
    `~photutils.background.MedianBackground`; None for another one (or
    one that interpolates already).
    """
    if isinstance(estimator, (LatticeSExtractorBackground,
                              LatticeMedianBackground)):
        return None
    if type(estimator) is SExtractorBackground:
        return LatticeSExtractorBackground(*lattice)
    if type(estimator) is MedianBackground:
        return LatticeMedianBackground(*lattice)
    return None


def on_lattice(bkg, data, mask=None):
    """
    The Background2D ``bkg`` of a digitised frame ``data`` (with ``mask``,
    as given to Background2D) made again with its median interpolated
    within the frame's lattice (`lattice_estimator`), and a note saying
    so; ``bkg`` and None where the frame is not digitised, the estimator
    interpolates already or is not median-based.

    The median of values in whole steps is itself on the lattice (or half
    way): photutils' Source Extractor estimator, ``2.5 median - 1.5
    mean``, reads each mesh up to 1.25 steps off the sky, by how far the
    sky's median lies from a lattice point (a Poisson sky of 3.5 counts
    read 1.1 counts low, one of exactly 3 counts 0.05 high), and its
    median's jumps between lattice points add noise the map's error does
    not hold (the meshes of a Poisson sky of 50 counts scattered 0.72
    counts against 0.45 for the interpolated median). The map made again
    measures each mesh on the same pixels (photutils' clip, mask and
    exclusions), its median the grouped one (`grouped_median`), which
    reads the digitised sky as its continuous twin (the same frame plus
    uniform noise over the step) is read. Where it does not keep the same
    pixels per mesh as ``bkg`` (a mask given to Background2D and not
    here), or for an estimator `lattice_estimator` has no twin for,
    `check_digitised_medians` warns instead and ``bkg`` is returned.
    """
    weights = estimator_weights(bkg)
    if (weights is None or weights[0] == 0
            or isinstance(bkg.bkg_estimator, (LatticeSExtractorBackground,
                                              LatticeMedianBackground))):
        return bkg, None
    from ..utils.inputs import as_frame

    frame = as_frame(data, mask=mask)
    values = np.asarray(frame.data, dtype=float)
    if frame.mask is not None:
        values = np.where(frame.mask, np.nan, values)
    lattice = lattice_step(values)
    if lattice is None:
        return bkg, None
    estimator = lattice_estimator(bkg.bkg_estimator, lattice)
    remade = None
    if estimator is not None and values.shape == tuple(
            np.shape(bkg.background_rms)):
        # photutils' own interpolator is its default (passing one is
        # deprecated); another one the user gave is passed on
        given = ({} if type(bkg.interpolator).__name__ == '_BkgZoomInterpolator'
                 and getattr(bkg.interpolator, 'order', 3) == 3
                 else {'interpolator': bkg.interpolator})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore', AstropyWarning)
                remade = Background2D(
                    data, bkg.box_size, mask=mask,
                    coverage_mask=bkg.coverage_mask,
                    fill_value=bkg.fill_value,
                    exclude_percentile=bkg.exclude_percentile,
                    filter_size=bkg.filter_size,
                    filter_threshold=bkg.filter_threshold,
                    sigma_clip=bkg.sigma_clip, bkg_estimator=estimator,
                    bkg_rms_estimator=bkg.bkg_rms_estimator, **given)
        except (TypeError, ValueError):
            remade = None
        if remade is not None and not (
                np.array_equal(np.asarray(remade.n_pixels_mesh),
                               np.asarray(bkg.n_pixels_mesh))
                and getattr(remade, '_unit', None)
                == getattr(bkg, '_unit', None)):
            remade = None  # not photutils' pixels: not the same map
    if remade is None:
        check_digitised_medians(bkg, data, mask, stacklevel=5)
        return bkg, None
    return remade, (
        f"the frame's values lie on steps of {lattice[0]:.4g} (digitised "
        f'data): the map was made again with '
        f'{type(estimator).__name__}, the median of each mesh '
        'interpolated within the step (photutils\' median lies on the '
        'steps)')


#: `lattice_efficiency` measures the estimator's ``k`` on a digitised
#: frame whose noise (photutils' rms, the median over the map) is under
#: this many steps of its lattice: the interpolated median of whole
#: values scatters less than the median of continuous ones (Source
#: Extractor's estimator: ``k`` 1.81, 1.94 and 2.04 on Poisson skies of
#: 3, 10 and 50 counts, 1.67 and 2.07 on Gaussian noise of 1 and 8 steps,
#: against 2.14; its level pulls spread 0.82 to 0.94 with 2.14).
LATTICE_COARSE = 8.0
#: ... from the meshes with at least this many pixels kept.
LATTICE_MIN_PIXELS = 64


def lattice_efficiency(bkg, data, mask, clip):
    """
    The ``k`` of a Background2D map's estimator whose median is
    interpolated within the lattice of a digitised frame
    (`LatticeSExtractorBackground`, `LatticeMedianBackground`): the
    estimator's scatter over the kept pixels' standard deviation times
    ``clip`` (`clip_corrected_rms`' factor), per mesh from its own pixels,
    the median over the meshes; None for another estimator, a lattice
    finer than `LATTICE_COARSE` steps of the noise, or no mesh of
    `LATTICE_MIN_PIXELS`.

    Each kept pixel's influence on the grouped median (`grouped_median`,
    ``k - 1/2 + (1/2 - F) / P`` in steps, ``F`` the share of the pixels
    below the median's step and ``P`` of those in it) is ``-(1(below) -
    F) / P - (1/2 - F) / P**2 (1(at) - P)`` steps, on the mean its
    deviation from the mean; the estimator's, ``a`` times the first less
    ``b`` times the second, has the variance of the level times the
    pixels (measured on 3000 meshes of 1024 pixels: within 3% of the
    levels' scatter for Poisson skies of 3 to 50 counts and Gaussian
    noise of 1 to 8 steps).
    """
    estimator = bkg.bkg_estimator
    if not isinstance(estimator, (LatticeSExtractorBackground,
                                  LatticeMedianBackground)):
        return None
    rms = np.asarray(getattr(bkg.background_rms, 'value',
                             bkg.background_rms), dtype=float)
    if not float(np.nanmedian(rms)) < LATTICE_COARSE * estimator.step:
        return None
    from ..utils.inputs import as_frame

    frame = as_frame(data, mask=mask)
    if frame.data.shape != rms.shape:
        return None
    meshes = MeshStatistics.of(bkg)
    boxes = meshes._clipped(meshes._boxes(*meshes._pixels(frame)))
    z = (boxes - estimator.offset) / estimator.step
    finite = np.isfinite(z)
    n = np.count_nonzero(finite, axis=-1)
    use = n >= LATTICE_MIN_PIXELS
    if not np.any(use):
        return None
    z, finite, n = z[use], finite[use], n[use][:, None]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        k = np.floor(np.nanmedian(z, axis=-1, keepdims=True) + 0.5)
        below = z < k - 0.5
        at = np.abs(z - k) <= 0.5
        share_below = np.count_nonzero(below, axis=-1)[:, None] / n
        share_at = np.count_nonzero(at, axis=-1)[:, None] / n
        mean = np.nanmean(z, axis=-1, keepdims=True)
        std = np.nanstd(z, axis=-1)
        median = (-(below - share_below) / share_at
                  - (0.5 - share_below) / share_at ** 2 * (at - share_at))
        a, b = estimator_weights(bkg)
        influence = np.where(finite, a * median - b * (z - mean), np.nan)
        ratio = np.sqrt(np.nanmean(influence ** 2, axis=-1)) / (clip * std)
    ratio = ratio[np.isfinite(ratio) & (std > 0)]
    return float(np.median(ratio)) if ratio.size else None


def check_digitised_medians(bkg, data, mask=None, *, stacklevel=4):
    """
    Warn where a Background2D's estimator takes the median of a digitised
    frame's pixels on the values' own lattice.

    The median of values in whole steps is itself on the lattice (or half
    way), so an estimator ``a * median - b * mean`` reads up to ``a *
    step / 2`` off the sky, alike over the frame, where the median's own
    scatter is smaller than the step (`lattice_step`).
    `LatticeSExtractorBackground` interpolates the median within the step.

    Parameters
    ----------
    bkg : `~photutils.background.Background2D`
        The map.
    data : array_like or `~astropy.nddata.NDData`
        The frame it was made from.
    mask : array_like of bool, optional
        The pixels it left out.
    stacklevel : int, optional
        As in `warnings.warn`, counted from here.

    Returns
    -------
    lattice : tuple of float or None
        ``(step, offset)`` where the warning was given, else None.
    """
    weights = estimator_weights(bkg)
    if (weights is None or weights[0] == 0
            or isinstance(bkg.bkg_estimator, LatticeSExtractorBackground)):
        return None
    from ..utils.inputs import as_frame

    frame = as_frame(data, mask=mask)
    values = np.asarray(frame.data, dtype=float)
    if frame.mask is not None:
        values = np.where(frame.mask, np.nan, values)
    lattice = lattice_step(values)
    if lattice is None:
        return None
    step = lattice[0]
    warnings.warn(
        f"Background2D: the frame's values lie on steps of {step:.4g} "
        f'(digitised data), so the median in photutils\' '
        f'{estimator_name(bkg.bkg_estimator)} lies on them too and its '
        f'level can be up to {abs(weights[0]) * step / 2:.3g} off the '
        'sky, alike over the frame; make the map with bkg_estimator='
        'LatticeSExtractorBackground(*lattice_step(data)) '
        '(ccdphot_ext.background.maps), which interpolates the median '
        'within the step', AstropyUserWarning, stacklevel=stacklevel)
    return lattice


def frame_background2d(data, *, mask=None, box_size=None, filter_size=None):
    """
    A photutils `~photutils.background.Background2D` of a frame, on a mesh
    that fits it, and a note saying what was chosen and why.

    The mesh is ``box_size``, else `DEFAULT_MESH` pixels cut to the frame's
    size (a frame of 40 x 1000 pixels gets meshes of 40 x 64). photutils
    leaves out of its map every mesh with more than ``exclude_percentile``
    percent of its pixels masked, NaN or sigma clipped; on a crowded or
    nebulous frame clipping alone passes photutils' 10% in every mesh and
    it gives up. `EXCLUDE_PERCENTILES` are then tried in turn: with 50, a
    mesh needs half of its pixels, as in Source Extractor.

    Parameters
    ----------
    data : 2-D `~numpy.ndarray`
        The frame (float; NaN and inf pixels are masked).
    mask : 2-D bool array, optional
        True for pixels to leave out.
    box_size : int or (int, int), optional
        The mesh in pixels (ny, nx); must fit in the frame.
    filter_size : int or (int, int), optional
        The median filter of the mesh grid, in meshes (default 3 x 3).

    Returns
    -------
    bkg : `~photutils.background.Background2D`
    note : str or None
        Why ``exclude_percentile`` is not photutils' 10, else None.

    Raises
    ------
    ValueError
        ``box_size`` of fewer than
        `~ccdphot_ext.background.estimators.MIN_SKY_PIXELS` pixels
        (`~ccdphot_ext.background.estimators.check_mesh_box`) or larger
        than the frame, no mesh with half of its pixels usable (the
        message names the mesh and the frame), or pixel values too small
        to square (near 1e-200).

    Examples
    --------
    >>> import numpy as np
    >>> from ccdphot_ext.background.maps import frame_background2d
    >>> img = np.random.default_rng(0).normal(100.0, 5.0, (40, 300))
    >>> bkg, note = frame_background2d(img)
    >>> tuple(int(b) for b in bkg.box_size), bkg.background_mesh.shape, note
    ((40, 64), (1, 5), None)
    """
    data = np.asarray(data, dtype=float)
    ny, nx = data.shape
    if power_of_two_scale(data, high=math.inf) < 1.0:
        # photutils' clipped meshes would keep no pixel (std 0)
        raise ValueError('data: its pixel values are too small for a '
                         'background map (the squares of their scatter '
                         'underflow to 0); scale the frame by a power of ten')
    if box_size is None:
        box = (min(DEFAULT_MESH, ny), min(DEFAULT_MESH, nx))
    else:
        box = check_mesh_box(box_size, (ny, nx))
    filter_size = (3, 3) if filter_size is None else filter_size
    bad = ~np.isfinite(data)
    if mask is not None:
        bad |= np.asarray(mask, dtype=bool)
    lattice = lattice_step(np.where(bad, np.nan, data))
    estimator = (None if lattice is None
                 else LatticeSExtractorBackground(*lattice))
    for k, percentile in enumerate(EXCLUDE_PERCENTILES):
        try:
            bkg = Background2D(data, box, filter_size=filter_size,
                               mask=bad if bad.any() else None,
                               exclude_percentile=percentile,
                               bkg_estimator=estimator)
        except ValueError as exc:  # photutils: every mesh left out
            if 'exclude_percentile' not in str(exc):
                raise
            continue
        note = None if k == 0 else (
            f'every {box[0]} x {box[1]} mesh has more than '
            f'{EXCLUDE_PERCENTILES[0]:g}% of its pixels masked, NaN or '
            'sigma clipped (sources, nebulosity): meshes with more than '
            f'{percentile:g}% left out instead (exclude_percentile '
            f'{percentile:g})')
        return bkg, note
    raise ValueError(
        f'no {box[0]} x {box[1]} mesh of the {ny} x {nx} frame has half of '
        'its pixels unmasked, finite and within the sigma clipping: a '
        'background map cannot be made here; give another mesh '
        '(box_size) or use a local sky (annuli)')
