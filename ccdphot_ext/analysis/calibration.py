# Licensed under a 3-clause BSD style license - see LICENSE
"""
Are the error bars right? A known-truth experiment.

Frames are simulated with `ccdphot_ext.datasets.sample.simulate_frame` (photon noise
of sky and stars in electrons with gain 2.23 e-/ADU, Gaussian read noise of
12 e-), holding a grid of isolated stars of known flux at random sub-pixel
positions, with a star-free strip on the right. Each star is measured with
`~ccdphot_ext.photometer` in a pixel-aligned box centred on its nearest
pixel, and compared with the *noise-free star flux inside that box* (the
stars are integrated exactly over pixels, so the comparison is like with
like). If the reported errors are right, the pulls
``(measured - true) / reported error`` have a standard deviation of 1.

`REGIMES` are the three cases an error budget must get right:

``'sky'``
    a faint star on a bright sky: the ``sky`` term dominates; the global sky
    is the sigma-clipped level of the star-free strip.
``'source'``
    a bright star on a faint sky: the ``source`` term (``F / g``) dominates.
``'annulus'``
    the sky of each star from a small `~photutils.aperture.RectangularAnnulus`
    of 64 pixels around a box of 121: the ``sky_mean`` term
    ``n_pix**2 * error_on_mean**2`` dominates.

For each, `run_calibration` also gives the spread the pulls would have with
the errors photometry codes commonly report instead: without the gain (no
source term), with the notebook's gain of 1 (ADU taken as electrons) and
without the ``sky_mean`` term (photutils' ``sum_err``, Source Extractor).

The same code makes the test (``tests/test_calibration.py``) and the figure
and table of the documentation, so they cannot drift apart.
"""

import math
from dataclasses import dataclass, field

import numpy as np
from astropy.table import QTable, Table
from photutils.aperture import RectangularAnnulus

from ..aperture.box import BoxAperture
from ..background.sky import SkyEstimate
from ..datasets.sample import SAMPLE_PARAMETERS, simulate_frame
from ..photometry.table import photometer
from ..utils.numbers import check_choice, positive_integer, random_generator

__all__ = ['REGIMES', 'CalibrationResult', 'run_calibration',
           'calibration_table', 'plot_calibration', 'simulate_regime_frame']

#: Gain [e-/ADU] and read noise [e-] of the experiment (the sample frame's).
GAIN = SAMPLE_PARAMETERS['gain']
READ_NOISE = SAMPLE_PARAMETERS['read_noise']

#: The three regimes: star flux and sky [ADU], box side, and the sky used.
REGIMES = {
    'sky': {'label': 'sky-dominated faint star', 'flux': 2000.0,
            'sky': 1035.0, 'box': 15, 'sky_from': 'strip'},
    'source': {'label': 'source-dominated bright star', 'flux': 5.0e5,
               'sky': 200.0, 'box': 15, 'sky_from': 'strip'},
    'annulus': {'label': 'small annulus (sky_mean dominates)',
                'flux': 3000.0, 'sky': 1035.0, 'box': 11,
                'sky_from': 'annulus', 'annulus': (15, 17)},
}

_SPACING = 32     # pixels between stars
_STRIP = 64       # width of the star-free strip [pixels]


@dataclass
class CalibrationResult:
    """
    The pulls of one regime of the known-truth experiment.

    Built by `run_calibration`; each parameter is an attribute of the same
    name.

    Parameters
    ----------
    name : str
        The regime's key in `REGIMES` (``'sky'``, ``'source'`` or
        ``'annulus'``).
    label : str
        The regime's description, for tables and figure titles.
    pulls : `~numpy.ndarray`
        ``(measured - true) / reported error``, one per star.
    alternatives : dict, optional
        The pulls with another error, by name: ``'no_gain'`` (no source
        term), ``'gain_1'`` (ADU taken as electrons) and ``'no_sky_mean'``
        (no ``sky_mean`` term); each an array like ``pulls``. Default
        empty.
    fractions : dict, optional
        The median share of the variance of each budget term, by term
        (``'sky'``, ``'source'``, ``'sky_mean'``), each in [0, 1]. Default
        empty.
    mean_error : float, optional
        The mean reported error of the stars' fluxes, in ADU (default NaN:
        not recorded).
    """

    name: str
    label: str
    pulls: np.ndarray
    alternatives: dict = field(default_factory=dict)
    fractions: dict = field(default_factory=dict)
    mean_error: float = math.nan

    @property
    def n(self):
        """Number of stars measured."""
        return len(self.pulls)

    @property
    def std(self):
        """Standard deviation of the pulls (1 when the errors are right)."""
        return float(np.std(self.pulls, ddof=1))

    @property
    def std_err(self):
        """
        Statistical error of `std` for Gaussian pulls,
        ``std / sqrt(2 (n - 1))``.
        """
        return self.std / math.sqrt(2.0 * (self.n - 1))

    @property
    def mean(self):
        """Mean pull (0 when the fluxes are unbiased)."""
        return float(np.mean(self.pulls))

    def alternative_std(self, name):
        """
        Compute the standard deviation of the pulls with an alternative error.

        Parameters
        ----------
        name : str
            A key of `alternatives`: ``'no_gain'``, ``'gain_1'`` or
            ``'no_sky_mean'``.

        Returns
        -------
        std : float
            The sample standard deviation (``ddof=1``) of those pulls.
        """
        return float(np.std(self.alternatives[name], ddof=1))


def simulate_regime_frame(regime, *, n_side=8, seed=None):
    """
    Simulate one frame of a regime: ``n_side**2`` stars and a sky strip.

    The stars sit on a grid 32 pixels apart at random sub-pixel offsets;
    a 64-pixel star-free strip on the right holds only sky. The noise is
    the sample frame's (gain 2.23 e-/ADU, read noise 12 e-).

    Parameters
    ----------
    regime : str or dict
        A key of `REGIMES`, or a dictionary like its values (``flux`` and
        ``sky`` in ADU, ``box`` side in pixels).
    n_side : int, optional
        The number of stars per side of the grid (default 8: 64 stars on
        a 256 x 320 pixel frame).
    seed : int, `~numpy.random.Generator` or None, optional
        The seed of the noise and the sub-pixel offsets (a generator is
        used as is); None (default): fresh entropy, a different frame each
        call.

    Returns
    -------
    data : 2-D ndarray
        The noisy frame [ADU], sky not subtracted.
    stars : `~astropy.table.Table`
        True ``x``, ``y``, ``flux`` and the noise-free ``true_in_box``.
    boxes : `~ccdphot_ext.BoxAperture`
        One pixel-aligned box per star.
    """
    spec = (REGIMES[check_choice(regime, 'regime', tuple(REGIMES))]
            if isinstance(regime, str) else regime)
    rng = random_generator(seed)
    n_side = positive_integer(n_side, 'n_side')
    side = n_side * _SPACING
    shape = (side, side + _STRIP)
    grid = (np.arange(n_side) + 0.5) * _SPACING - 0.5
    gx, gy = np.meshgrid(grid, grid)
    x = gx.ravel() + rng.uniform(-0.5, 0.5, gx.size)
    y = gy.ravel() + rng.uniform(-0.5, 0.5, gy.size)
    stars = Table({'x': x, 'y': y, 'flux': np.full(x.size, spec['flux'])})
    data, _, model = simulate_frame(
        shape, spec['sky'], stars, gain=GAIN, read_noise=READ_NOISE,
        psf_sigma=SAMPLE_PARAMETERS['psf_sigma'],
        trail=SAMPLE_PARAMETERS['trail'], seed=rng)
    star_image = model - spec['sky']
    centres = np.column_stack([np.round(x), np.round(y)])
    boxes = BoxAperture(centres, spec['box'], spec['box'])
    half = spec['box'] // 2
    stars['true_in_box'] = [
        star_image[int(cy) - half:int(cy) + half + 1,
                   int(cx) - half:int(cx) + half + 1].sum()
        for cx, cy in centres]
    return data, stars, boxes


def _sky(spec, data, boxes):
    if spec['sky_from'] == 'strip':
        return SkyEstimate.from_image(data[:, -_STRIP:])
    w_in, w_out = spec['annulus']
    annulus = RectangularAnnulus(boxes.positions, w_in, w_out, w_out)
    return SkyEstimate.from_annulus(data, annulus)


def run_calibration(regimes=None, *, n_frames=40, n_side=8, seed=2024):
    """
    Run the known-truth experiment.

    Parameters
    ----------
    regimes : sequence of str, optional
        Keys of `REGIMES`; None (default): all three.
    n_frames : int, optional
        The number of noise realisations (frames) per regime (default 40).
    n_side : int, optional
        Stars per frame are ``n_side**2`` (default 8: 64 per frame, 2560
        stars per regime with 40 frames, so the standard deviation of the
        pulls is known to 1.4%).
    seed : int, optional
        The seed of the experiment (default 2024): the same seed gives the
        same numbers.

    Returns
    -------
    results : dict
        One `CalibrationResult` per regime, keyed by regime name, in the
        order of ``regimes``.

    Raises
    ------
    ValueError
        If a regime is not a key of `REGIMES`, ``n_frames`` or ``n_side``
        is not a positive integer, or ``seed`` is negative.
    """
    names = list(REGIMES) if regimes is None else list(regimes)
    for name in names:
        check_choice(name, 'regimes', tuple(REGIMES))
    n_frames = positive_integer(n_frames, 'n_frames')
    n_side = positive_integer(n_side, 'n_side')
    seeds = random_generator(seed).bit_generator.seed_seq.spawn(len(names))
    results = {}
    for name, ss in zip(names, seeds, strict=True):
        spec = REGIMES[name]
        rng = np.random.default_rng(ss)
        diff, err, var = [], [], {'sky': [], 'source': [], 'sky_mean': []}
        for _ in range(int(n_frames)):
            data, stars, boxes = simulate_regime_frame(
                spec, n_side=int(n_side), seed=rng)
            table = photometer(data, boxes, _sky(spec, data, boxes),
                               gain=GAIN)
            diff.append(np.asarray(table['aperture_sum'])
                        - np.asarray(stars['true_in_box']))
            err.append(np.asarray(table['aperture_sum_err']))
            for term in var:
                var[term].append(np.asarray(table[f'var_{term}']))
        diff = np.concatenate(diff)
        err = np.concatenate(err)
        v = {k: np.concatenate(a) for k, a in var.items()}
        total = v['sky'] + v['source'] + v['sky_mean']
        alternatives = {
            'no_gain': diff / np.sqrt(v['sky'] + v['sky_mean']),
            'gain_1': diff / np.sqrt(v['sky'] + GAIN * v['source']
                                     + v['sky_mean']),
            'no_sky_mean': diff / np.sqrt(v['sky'] + v['source']),
        }
        results[name] = CalibrationResult(
            name=name, label=spec['label'], pulls=diff / err,
            alternatives=alternatives,
            fractions={k: float(np.median(a / total)) for k, a in v.items()},
            mean_error=float(np.mean(err)))
    return results


def calibration_table(results):
    """
    Tabulate the numbers of `run_calibration`.

    Parameters
    ----------
    results : dict
        The `CalibrationResult` of each regime, as `run_calibration`
        returns them.

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per regime, with columns ``regime``, ``n`` (stars), the
        median variance shares ``f_sky``, ``f_source``, ``f_sky_mean``,
        the pull ``mean`` and ``std`` with its statistical error
        ``std_err``, and the pull spread with the alternative errors
        ``std_no_gain``, ``std_gain_1``, ``std_no_sky_mean``; the gain and
        read noise of the experiment in ``meta``.
    """
    rows = []
    for r in results.values():
        rows.append((r.name, r.n, r.fractions['sky'], r.fractions['source'],
                     r.fractions['sky_mean'], r.mean, r.std, r.std_err,
                     r.alternative_std('no_gain'),
                     r.alternative_std('gain_1'),
                     r.alternative_std('no_sky_mean')))
    table = QTable(rows=rows, names=(
        'regime', 'n', 'f_sky', 'f_source', 'f_sky_mean', 'mean', 'std',
        'std_err', 'std_no_gain', 'std_gain_1', 'std_no_sky_mean'))
    for name in table.colnames[2:]:
        table[name].info.format = '.3f'
    table.meta['gain'] = GAIN
    table.meta['read_noise'] = READ_NOISE
    return table


def plot_calibration(results, *, fig=None, bins=40):
    """
    Plot histograms of the pulls, one panel per regime, over a unit Gaussian.

    Each panel also draws the pulls with the ``sky_mean`` term or the gain
    left out (whichever spreads them most), to show what they are for.

    Parameters
    ----------
    results : dict
        The `CalibrationResult` of each regime, as `run_calibration`
        returns them (one panel each, in order).
    fig : `~matplotlib.figure.Figure`, optional
        The figure to draw in (it should be empty); None (default): a new
        one, 4.2 x 3.8 inches per panel.
    bins : int, optional
        The number of histogram bins over pulls -5 to 5 (default 40).

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
        The figure, one axes per regime.
    """
    import matplotlib.pyplot as plt

    n = len(results)
    if fig is None:
        fig = plt.figure(figsize=(4.2 * n, 3.8))
    axes = fig.subplots(1, n, squeeze=False)[0]
    edges = np.linspace(-5, 5, bins + 1)
    grid = np.linspace(-5, 5, 400)
    for ax, r in zip(axes, results.values(), strict=True):
        worst = max(('no_gain', 'no_sky_mean'), key=r.alternative_std)
        what = {'no_gain': 'without gain',
                'no_sky_mean': 'without sky_mean'}[worst]
        # densities over all pulls, also those beyond the plotted range
        weight = 1.0 / (r.n * (edges[1] - edges[0]))
        ax.hist(r.pulls, bins=edges, weights=np.full(r.n, weight), alpha=0.6,
                label=f'budget: std {r.std:.3f}')
        ax.hist(r.alternatives[worst], bins=edges,
                weights=np.full(r.n, weight), histtype='step', lw=1.5,
                label=f'{what}: std {r.alternative_std(worst):.2f}')
        ax.plot(grid, np.exp(-0.5 * grid ** 2) / math.sqrt(2 * math.pi),
                'k-', lw=1, label='unit Gaussian')
        ax.set_title(r.label, fontsize=10)
        ax.set_xlabel('(measured - true) / reported error')
        ax.legend(fontsize=8, loc='upper left')
    axes[0].set_ylabel('density')
    fig.tight_layout()
    return fig
