# Licensed under a 3-clause BSD style license - see LICENSE
"""
The error of a `~photutils.background.Background2D` level when photutils
excluded meshes (internal; `SkyEstimate.from_background2d` uses it).

photutils leaves out of its low-resolution map every mesh with too few
unmasked pixels (``exclude_percentile``) and fills it by inverse-distance
interpolation of the measured meshes (then median-filters the grid), but
still reports the unmasked pixel count of the excluded mesh. An error
``rms / sqrt(n)`` from that count describes a measurement that was never
made, and the filter gain ``sqrt(pi / (2 m))`` holds only for ``m`` meshes
measured independently. When meshes were excluded, the error of every
mesh's level is therefore propagated through photutils' own steps by a
small, seeded Monte Carlo on the mesh grid: each measured mesh gets Gaussian
noise of ``k_est * rms / sqrt(n_mesh)``, the excluded ones are filled with
photutils' `~photutils.utils.ShepardIDWInterpolator` (10 neighbours, power
1, as photutils), the grid is median-filtered (NaN outside, as photutils)
and the scatter of the result is the error of that mesh's level.

The per-pixel rms is corrected for sigma clipping as in
`SkyEstimate.from_image` (a Gaussian clipped at ``+-c`` sigma has a smaller
standard deviation).
"""

import numpy as np
from astropy.nddata import block_replicate
from numpy.lib.stride_tricks import sliding_window_view
from photutils.utils import ShepardIDWInterpolator

__all__ = []  # internal module

#: Noise realisations of the mesh-grid Monte Carlo (3.5% on each error).
N_REALISATIONS = 400


def excluded_meshes(bkg):
    """Boolean mesh grid: True for meshes photutils left out and filled by
    interpolation (too few unmasked pixels, ``exclude_percentile``)."""
    n_good = np.asarray(bkg.n_pixels_mesh, dtype=float)
    limit = (1.0 - bkg.exclude_percentile / 100.0) * np.prod(bkg.box_size)
    return (n_good <= limit) | (n_good == 0)


def propagated_mesh_error(bkg, efficiency, rms_factor=1.0, *, seed=0):
    """
    Per-pixel error of the level of a Background2D with excluded meshes,
    propagated through photutils' interpolation and filter (see the module
    docstring); None when no mesh was excluded (the analytic formula
    holds). Also returns the number of excluded meshes.
    """
    excluded = excluded_meshes(bkg)
    if not np.any(excluded):
        return None, 0
    measured = ~excluded
    if not np.any(measured):
        raise ValueError('bkg: photutils measured no mesh (every mesh was '
                         'excluded); the sky level has no error to give')
    n_good = np.asarray(bkg.n_pixels_mesh, dtype=float)
    rms = np.asarray(getattr(bkg.background_rms_mesh, 'value',
                             bkg.background_rms_mesh), dtype=float)
    sigma = efficiency * rms_factor * rms[measured] / np.sqrt(
        n_good[measured])
    rng = np.random.default_rng(seed)
    yx = np.column_stack(np.nonzero(measured))
    holes = np.column_stack(np.nonzero(excluded))
    grids = np.empty((N_REALISATIONS,) + excluded.shape)
    for grid in grids:
        values = rng.normal(0.0, sigma)
        grid[measured] = values
        grid[excluded] = ShepardIDWInterpolator(yx, values)(
            holes, n_neighbors=10, power=1.0)
    fy, fx = (int(f) for f in bkg.filter_size)
    if fy * fx > 1:
        pad = np.pad(grids, ((0, 0), (fy // 2, (fy - 1) // 2),
                             (fx // 2, (fx - 1) // 2)),
                     constant_values=np.nan)
        grids = np.nanmedian(sliding_window_view(pad, (fy, fx),
                                                 axis=(1, 2)), axis=(-2, -1))
    error = np.std(grids, axis=0)
    shape = np.shape(bkg.background_rms)
    return (block_replicate(error, bkg.box_size,
                            conserve_sum=False)[:shape[0], :shape[1]],
            int(excluded.sum()))


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
