# Licensed under a 3-clause BSD style license - see LICENSE
"""
Are the error bars right beyond the CCD equation? Pulls before and after.

Four more regimes than `~ccdphot_ext.analysis.calibration` (same frames:
a grid of isolated stars with the sample frame's PSF), each with the pulls
``(measured - true) / reported error`` *before* (the naive treatment) and
*after* (the package's):

``'threshold_2000'``, ``'threshold_20000'``
    2-sigma threshold masks on 2000 / 20,000 ADU stars, against the true
    flux inside the reported mask: before, the notebook's
    ``selection='pixel'`` mask (biased high); after, the default smoothed
    selection with its ``selection`` term.
``'correlated'``, ``'white'``
    15 x 15 boxes on 3 x 3 boxcar-correlated (or white) Gaussian noise:
    before, ``n_pix * sigma**2``; after, ``noise=`` an
    `~ccdphot_ext.ApertureNoise` measured on the frame itself.
``'background2d'``
    15 x 15 boxes with a `~photutils.background.Background2D` sky whose
    meshes are mostly excluded (20% of their pixels masked in 56 of 64):
    before, the level error from the excluded meshes' own pixel counts
    (``k f rms / sqrt(n)``); after, the propagated error. (Three of every
    four mesh columns have 20% of their pixels masked.)

The test suite (``tests/test_calibration.py``) and the documentation
(:ref:`calibration`) run the same code.
"""

import math
import warnings

import numpy as np
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from scipy.ndimage import uniform_filter

from ..aperture.box import BoxAperture
from ..background.maps import BACKGROUND2D_EFFICIENCY
from ..background.noise import ApertureNoise
from ..background.sky import SkyEstimate
from ..background.threshold import SigmaThreshold
from ..datasets.sample import SAMPLE_PARAMETERS, render_stars, simulate_frame
from ..photometry.measurement import measure
from ..photometry.table import photometer
from ..utils.numbers import check_choice, positive_integer, random_generator

__all__ = ['EXTRA_REGIMES', 'run_before_after', 'plot_before_after']

#: The regimes: label and star flux [ADU].
EXTRA_REGIMES = {
    'threshold_2000': ('2-sigma mask, 2000 ADU', 2000.0),
    'threshold_20000': ('2-sigma mask, 20,000 ADU', 20000.0),
    'correlated': ('15x15 boxes, 3x3-correlated noise', 3000.0),
    'white': ('15x15 boxes, white noise', 3000.0),
    'background2d': ('Background2D, 56 of 64 meshes excluded', 3000.0),
}
_GAIN = SAMPLE_PARAMETERS['gain']
_SKY = 1035.0
_N_SIDE = 4
_SPACING = 32


def _stars(rng, n_side=_N_SIDE, flux=2000.0):
    grid = (np.arange(n_side) + 0.5) * _SPACING - 0.5
    gx, gy = np.meshgrid(grid, grid)
    x = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    y = gy.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    return Table({'x': x, 'y': y, 'flux': np.full(x.size, flux)})


def _threshold_frame(rng, flux):
    """Pulls of the pixel and smoothed masks for one frame."""
    stars = _stars(rng, flux=flux)
    side = _N_SIDE * _SPACING
    data, _, model = simulate_frame(
        (side, side + 64), _SKY, stars, gain=_GAIN,
        read_noise=SAMPLE_PARAMETERS['read_noise'],
        psf_sigma=SAMPLE_PARAMETERS['psf_sigma'],
        trail=SAMPLE_PARAMETERS['trail'], seed=rng)
    star = model - _SKY
    sky = SkyEstimate.from_image(data[:, -64:])
    out = {'before': [], 'after': []}
    for key, selection in (('before', 'pixel'), ('after', 'smoothed')):
        thr = SigmaThreshold(2.0, selection=selection)
        for x, y in zip(np.round(stars['x']), np.round(stars['y']),
                        strict=True):
            res = measure(data, BoxAperture((x, y), 15, 15), sky, gain=_GAIN,
                          threshold=thr)
            true = float(np.sum(res.mask * star[res.slices]))
            out[key].append((res.flux - true) / res.flux_err)
    return out


def _box_frame(rng, regime, flux):
    """Pulls of 15x15 boxes before and after, for one frame."""
    stars = _stars(rng, flux=flux)
    side = _N_SIDE * _SPACING + 64
    shape = (side, side)
    stars['x'] += 32
    stars['y'] += 32
    image = render_stars(shape, stars['x'], stars['y'], stars['flux'],
                         sigma=SAMPLE_PARAMETERS['psf_sigma'])
    if regime == 'correlated':
        noise = uniform_filter(rng.normal(0.0, 60.0, shape), 3)
    else:
        noise = rng.normal(0.0, 20.0, shape)
    data = 100.0 + image + noise
    centres = np.column_stack([np.round(stars['x']), np.round(stars['y'])])
    boxes = BoxAperture(centres, 15, 15)
    true = np.array([image[int(y) - 7:int(y) + 8, int(x) - 7:int(x) + 8].sum()
                     for x, y in centres])
    if regime == 'background2d':
        return _background2d_pulls(rng, data, boxes, true, image > 1.0)
    sky = SkyEstimate(100.0, float(np.std(noise)), data.size)
    model = ApertureNoise.from_blank_apertures(data, sky, seed=rng)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the correlated-noise warning
        before = photometer(data, boxes, sky)
    after = photometer(data, boxes, sky, noise=model)
    return {k: list((np.asarray(t['aperture_sum']) - true)
                    / np.asarray(t['aperture_sum_err']))
            for k, t in (('before', before), ('after', after))}


def _background2d_pulls(rng, data, boxes, true, stars):
    from photutils.background import Background2D

    meshes = np.ones((data.shape[0] // 16, data.shape[1] // 16), bool)
    meshes[:, ::4] = False  # a few measured columns
    mask = (np.kron(meshes, np.ones((16, 16), bool))
            & (rng.random(data.shape) < 0.2)) | stars
    bkg = Background2D(data, 16, mask=mask, filter_size=3)
    with warnings.catch_warnings():
        # Gaussian noise: no Poisson bias for the unknown gain to leave
        warnings.filterwarnings('ignore', 'gain=None', AstropyUserWarning)
        after = SkyEstimate.from_background2d(bkg)
    k = BACKGROUND2D_EFFICIENCY['SExtractorBackground']
    naive = (k * math.sqrt(math.pi / 18) * after.std
             / np.sqrt(bkg.n_pixels_map))
    before = SkyEstimate.from_maps(after.value, after.std,
                                   error_on_mean=naive)
    out = {}
    for key, sky in (('before', before), ('after', after)):
        t = photometer(data, boxes, sky, engine='general')
        out[key] = list((np.asarray(t['aperture_sum']) - true)
                        / np.asarray(t['aperture_sum_err']))
    return out


def run_before_after(regime, *, n_frames=25, seed=2024):
    """
    Compute the pulls of one of `EXTRA_REGIMES`, before and after.

    Each frame holds 16 stars (a 4 x 4 grid); ``n_frames`` frames are
    simulated and measured both ways.

    Parameters
    ----------
    regime : str
        A key of `EXTRA_REGIMES`.
    n_frames : int, optional
        The number of simulated frames (default 25: 400 stars).
    seed : int, optional
        The seed of the simulation (default 2024): the same seed gives the
        same pulls.

    Returns
    -------
    pulls : dict
        ``'before'`` (the naive error) and ``'after'`` (the package's): 1-D
        arrays of ``(measured - true) / reported error``, one per star.

    Raises
    ------
    ValueError
        If ``regime`` is not a key of `EXTRA_REGIMES` or ``n_frames`` is
        not a positive integer.
    """
    check_choice(regime, 'regime', tuple(EXTRA_REGIMES))
    n_frames = positive_integer(n_frames, 'n_frames')
    rng = random_generator(seed)
    flux = EXTRA_REGIMES[regime][1]
    out = {'before': [], 'after': []}
    for _ in range(int(n_frames)):
        part = (_threshold_frame(rng, flux) if regime.startswith('threshold')
                else _box_frame(rng, regime, flux))
        for key in out:
            out[key] += part[key]
    return {k: np.asarray(v) for k, v in out.items()}


def plot_before_after(results, *, fig=None, bins=40):
    """
    Plot histograms of the pulls before and after, one panel per regime.

    Parameters
    ----------
    results : dict
        The pulls of each regime, keyed by a name of `EXTRA_REGIMES`: the
        dictionaries `run_before_after` returns (one panel each, in
        order).
    fig : `~matplotlib.figure.Figure`, optional
        The figure to draw in (it should be empty); None (default): a new
        one, 3.6 x 3.4 inches per panel.
    bins : int, optional
        The number of histogram bins over pulls -8 to 8 (default 40).

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        The figure, one axes per regime, over a unit Gaussian.
    """
    import matplotlib.pyplot as plt

    n = len(results)
    if fig is None:
        fig = plt.figure(figsize=(3.6 * n, 3.4))
    axes = fig.subplots(1, n, squeeze=False)[0]
    edges = np.linspace(-8, 8, bins + 1)
    grid = np.linspace(-8, 8, 400)
    for ax, (name, pulls) in zip(axes, results.items(), strict=True):
        for key, style in (('before', {'histtype': 'step', 'lw': 1.5}),
                           ('after', {'alpha': 0.6})):
            p = pulls[key]
            ax.hist(p, bins=edges, density=True,
                    label=f'{key}: mean {np.mean(p):+.2f} std '
                          f'{np.std(p, ddof=1):.2f}', **style)
        ax.plot(grid, np.exp(-0.5 * grid ** 2) / math.sqrt(2 * math.pi),
                'k-', lw=1)
        ax.set_title(EXTRA_REGIMES[name][0], fontsize=9)
        ax.set_xlabel('pull')
        ax.legend(fontsize=7, loc='upper left')
    fig.tight_layout()
    return fig
