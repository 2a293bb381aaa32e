# Licensed under a 3-clause BSD style license - see LICENSE
"""The figure of an `~ccdphot_ext.ApertureNoise`: sigma(N) against N."""

import numpy as np

from ._base import _axes

__all__ = ['plot_aperture_noise']


def plot_aperture_noise(noise, *, ax=None):
    """
    Plot the scatter of blank-sky aperture sums against the aperture's pixels.

    The measured points (with their errors), the model used for the budget
    and the white-noise line ``sigma1 * sqrt(N)``, log-log.

    Parameters
    ----------
    noise : `~ccdphot_ext.ApertureNoise`
        The aperture-noise model, e.g. from
        `ApertureNoise.from_blank_apertures
        <ccdphot_ext.ApertureNoise.from_blank_apertures>`.
    ax : `~matplotlib.axes.Axes`, optional
        The axes to draw in; None (default): a new 5.5 x 4.2 inch pyplot
        figure.

    Returns
    -------
    ax : `~matplotlib.axes.Axes`
        The points, the model and the white-noise line, with a legend.

    Raises
    ------
    TypeError
        If ``noise`` is not an `~ccdphot_ext.ApertureNoise`.
    """
    from ..background.noise import ApertureNoise

    if not isinstance(noise, ApertureNoise):
        raise TypeError('noise must be an ApertureNoise, got '
                        f'{type(noise).__name__}')
    ax = _axes(ax, figsize=(5.5, 4.2))
    grid = np.geomspace(1.0, noise.n_pix[-1] * 1.5, 200)
    ax.errorbar(noise.n_pix, noise.sigma, yerr=noise.sigma_err, fmt='o',
                ms=4, label='blank-sky apertures')
    ax.plot(grid, noise(grid), '-', label=(
        f'model: {noise.sigma1:.3g} x {noise.alpha:.2f} '
        f'N^{noise.beta:.2f}' + ('' if noise.correlated else ' (white)')))
    ax.plot(grid, noise.sigma1 * np.sqrt(grid), 'k--', lw=1,
            label='white noise: sigma1 sqrt(N)')
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('pixels per aperture N')
    ax.set_ylabel('scatter of the sums sigma(N)')
    ax.legend(fontsize=8)
    return ax
