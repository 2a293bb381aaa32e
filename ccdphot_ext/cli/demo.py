# Licensed under a 3-clause BSD style license - see LICENSE
"""
The notebook walk-through on the bundled sample frame (``ccdphot demo``).

Every step prints the package's number beside the plain-numpy number the
notebook computed by hand on the same pixels.
"""

import math
import os
import sys
import warnings

import numpy as np
from astropy.table import QTable
from astropy.utils.exceptions import AstropyUserWarning

from ..aperture.box import BoxAperture
from ..background.sky import SkyEstimate
from ..background.threshold import SigmaThreshold
from ..datasets.sample import NOTEBOOK_BOXES, sample_frame
from ..flags import FLAG_SKY_ANNULUS
from ..photometry.budget import ErrorBudget
from ..photometry.measurement import measure
from ..photometry.terms import BudgetOptions
from ..utils.files import atomic_write, write_table_atomic

__all__ = ['run_demo', 'notebook_star_table']

#: The notebook took the sky level as exact (no error of the sky level).
_NOTEBOOK = BudgetOptions(include_sky_mean=False)
#: The notebook's naive 2-sigma mask (biased high: pixels picked on their
#: own noisy values).
_MASK = SigmaThreshold(2.0, selection='pixel')


class _Printer:
    """Prints the walk-through; keeps the worst package-vs-numpy difference."""

    def __init__(self, out):
        self.out = out
        self.worst = 0.0

    def section(self, title):
        print(f'\n== {title} ==', file=self.out)

    def text(self, msg):
        print(msg, file=self.out)

    def pair(self, label, ours, numpy_value, fmt='.6f'):
        diff = abs(ours - numpy_value)
        rel = diff / abs(numpy_value) if numpy_value else diff
        print(f'  {label:<38s} ccdphot {ours:>16{fmt}}   numpy '
              f'{numpy_value:>16{fmt}}   rel.diff {rel:.1e}', file=self.out)
        self.worst = max(self.worst, rel)
        return rel


def notebook_star_table(ccd, sky, *, gain, n_sigma=2.0):
    """
    Box and mask photometry of the notebook's four stars, one row each.

    Every star is measured on the *sky-subtracted* frame with its own box
    (the notebook summed stars 3 and 4 before subtracting the sky, and its
    function call for star 1 reused another cutout).

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        The notebook's frame (the bundled sample frame).
    sky : `~ccdphot_ext.SkyEstimate`
        The sky subtracted from every star, in the frame's unit.
    gain : float or None
        Gain in e-/ADU (None: no source term in the errors).
    n_sigma : float, optional
        The threshold of the masks in sky sigma (default 2, the
        notebook's), with the notebook's pixel selection.

    Returns
    -------
    table : `~astropy.table.QTable`
        One row per star: ``star``, its ``box`` (``y0:y1,x0:x1``), the
        box's ``n_pix``, ``box_flux``, ``box_err`` and ``box_snr``, the
        mask's ``mask_n_pix``, ``mask_flux``, ``mask_err`` and
        ``mask_snr``, and the ``flags`` of both; ``meta`` records
        ``gain``, ``sky_method`` and ``n_sigma``.
    """
    rows = []
    threshold = SigmaThreshold(n_sigma, selection='pixel')
    for name, slices in NOTEBOOK_BOXES.items():
        box = BoxAperture.from_slices(slices)
        full = measure(ccd, box, sky, gain=gain)
        masked = measure(ccd, box, sky, gain=gain, threshold=threshold)
        rows.append((name, f'{slices[0].start}:{slices[0].stop},'
                     f'{slices[1].start}:{slices[1].stop}',
                     full.n_pix, full.flux, full.flux_err, full.snr,
                     masked.n_pix, masked.flux, masked.flux_err, masked.snr,
                     full.flags | masked.flags))
    names = ('star', 'box', 'n_pix', 'box_flux', 'box_err', 'box_snr',
             'mask_n_pix', 'mask_flux', 'mask_err', 'mask_snr', 'flags')
    table = QTable(rows=rows, names=names)
    for col in ('box_flux', 'box_err', 'mask_flux', 'mask_err'):
        table[col].info.format = '.1f'
    for col in ('box_snr', 'mask_snr'):
        table[col].info.format = '.1f'
    table.meta['gain'] = gain
    table.meta['sky_method'] = sky.method
    table.meta['n_sigma'] = n_sigma
    return table


def run_demo(out=None, *, outdir=None):
    """
    Print the notebook walk-through; return the worst relative difference
    between the package and plain numpy.

    The sections are named by step: the processed frame, sky level, box
    sum, the star's Poisson noise, magnitude error, error budget, 2-sigma
    mask, residual background, several stars, local sky, systematics and
    optimal extraction.

    Parameters
    ----------
    out : file-like, optional
        Where to print (default ``sys.stdout``).
    outdir : str, optional
        If given, write ``sample.fits``, ``stars.ecsv`` and ``budget.ecsv``
        there.

    Returns
    -------
    worst : float
        The largest relative difference between a number of the package
        and the same number computed with plain numpy (a few times 1e-16
        when they agree).
    """
    with warnings.catch_warnings():
        # the notebook's global sky is biased by the frame's gradient on
        # purpose: the systematics step measures and explains it
        warnings.filterwarnings('ignore', message='the background varies '
                                'across the frame', category=AstropyUserWarning)
        return _run_demo(out, outdir)


def _run_demo(out, outdir):
    p = _Printer(out or sys.stdout)
    ccd = sample_frame()
    image = ccd.data
    gain = float(ccd.header['EGAIN'])
    p.section('The processed frame')
    p.text(f'  bundled sample: {image.shape[0]} x {image.shape[1]} pixels, '
           f'EGAIN {gain} e-/ADU, EXPTIME {ccd.header["EXPTIME"]} s, '
           f'unit {ccd.unit}')
    sky = _sky_level(p, image, ccd.uncertainty.array)
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    cutout = image[158:178, 492:512] - sky.value
    r_sky = _box_sum(p, image, box, sky, cutout)
    r_g1, r_g = _poisson_noise(p, image, box, sky, cutout, gain)
    full = _error_budget(p, image, box, sky, cutout, r_g, gain)
    r_m = _two_sigma_mask(p, image, box, sky, cutout, r_sky, r_g1)
    _residual_background(p, image, sky, cutout, r_sky, r_m)
    p.section('Several stars, each on the sky-subtracted frame')
    table = notebook_star_table(ccd, SkyEstimate.from_image(ccd), gain=gain)
    p.text(f'  (sky: sigma-clipped, gain {gain}, 2-sigma masks)')
    for line in table.pformat(max_width=-1, max_lines=-1):
        p.text('  ' + line)
    _local_sky_systematics_optimal(p, ccd, gain)
    p.section('Summary')
    p.text(f'  worst relative difference ccdphot vs numpy: {p.worst:.1e}')
    if outdir is not None:
        os.makedirs(outdir, exist_ok=True)
        atomic_write(os.path.join(outdir, 'sample.fits'),
                     lambda tmp: ccd.write(tmp, format='fits',
                                           overwrite=True))
        write_table_atomic(table, os.path.join(outdir, 'stars.ecsv'))
        write_table_atomic(full.budget.to_table(),
                           os.path.join(outdir, 'budget.ecsv'))
        p.text(f'  wrote sample.fits, stars.ecsv, budget.ecsv to {outdir}')
        p.text('  ' + _write_figures(image, sky, gain, outdir))
    return p.worst


def _sky_level(p, image, sigma_map):
    """Sky level of the whole frame (mean, median) and its uncertainty."""
    p.section('Sky level: mean and median of the whole frame')
    sky = SkyEstimate.from_image(image, method='mean', uncertainty=sigma_map,
                                 mask_sources=False)
    sky_median = SkyEstimate.from_image(image, method='median',
                                        mask_sources=False)
    p.pair('sky mean', sky.value, image.mean())
    p.pair('sky median', sky_median.value, np.median(image))
    p.pair('sky std (per pixel)', sky.std, image.std())

    p.section('Sky level: its uncertainty')
    n = image.size
    p.pair('sigma/sqrt(N) from the measured std',
           sky.std / math.sqrt(sky.n_pix), image.std() / math.sqrt(n))
    p.pair('sqrt(sum sigma_i^2)/N from the map', sky.error_on_mean,
           (sigma_map ** 2).sum() ** 0.5 / n)
    p.text(f'  -> sky = {sky.value:.2f} +/- {sky.error_on_mean:.3f} ADU '
           f'(SNR {sky.value / sky.error_on_mean:.2g})')
    return sky


def _box_sum(p, image, box, sky, cutout):
    """Sum of the sky-subtracted box and its error from sky noise only."""
    p.section('Box sum: the sky-subtracted box image[158:178, 492:512]')
    r_sky = measure(image, box, sky, budget=_NOTEBOOK)
    p.pair('box flux', r_sky.flux, cutout.sum(), '.4f')
    p.pair('error from sky noise only sqrt(N) sigma', r_sky.flux_err,
           (cutout.size * image.std() ** 2) ** 0.5, '.4f')
    p.pair('SNR (sky noise only)', r_sky.snr,
           cutout.sum() / (cutout.size * image.std() ** 2) ** 0.5, '.4f')
    return r_sky


def _poisson_noise(p, image, box, sky, cutout, gain):
    """The error with the star's photon noise, gain 1 and the header's."""
    p.section('Box error: adding the star\'s Poisson noise')
    r_g1 = measure(image, box, sky, gain=1.0, budget=_NOTEBOOK)
    p.pair('gain 1 (the notebook, ADU as e-)', r_g1.flux_err,
           ((cutout + image.std() ** 2).sum()) ** 0.5, '.4f')
    r_g = measure(image, box, sky, gain=gain, budget=_NOTEBOOK)
    p.pair(f'gain {gain} (EGAIN, correct)', r_g.flux_err,
           (cutout.sum() / gain + cutout.size * image.std() ** 2) ** 0.5,
           '.4f')
    return r_g1, r_g


def _error_budget(p, image, box, sky, cutout, r_g, gain):
    """Magnitude error and each term's share of the variance."""
    p.section('Magnitude error')
    b = r_g.budget
    p.text(f'  SNR {b.snr:.2f}: 1/SNR = {1 / b.snr:.4f}, exact '
           f'2.5/ln10/SNR = {b.mag_err:.4f} (+{b.mag_err_faint:.4f} fainter,'
           f' -{b.mag_err_bright:.4f} brighter)')
    p.section(f'Error budget: each term\'s share of the variance (gain '
              f'{gain:g})')
    for name, frac in b.fractions.items():
        p.text(f'  {name:<8s} {100 * frac:6.2f} %')
    peak = float(cutout.max())
    p.text(f'  brightest pixel {peak:.0f} ADU above a sky of {sky.value:.0f} '
           'ADU: the star adds little photon noise next to the sky\'s.')
    full = measure(image, box, sky, gain=gain)
    p.text('  with the sky level\'s own error added (package default):')
    p.text('  ' + repr(full.budget).replace('\n', '\n  '))
    return full


def _two_sigma_mask(p, image, box, sky, cutout, r_sky, r_g1):
    """The notebook's 2-sigma mask: sum, pixels, error, SNR."""
    p.section('2-sigma mask')
    r_m = measure(image, box, sky, gain=1.0, threshold=_MASK, budget=_NOTEBOOK)
    mask = cutout > 2 * image.std()
    np_masked = cutout[mask].sum()
    p.pair('masked flux', r_m.flux, np_masked, '.4f')
    p.pair('pixels in the mask', r_m.n_pix, float(mask.sum()), '.1f')
    p.pair('masked error (gain 1)', r_m.flux_err,
           (np_masked + image.std() ** 2 * mask.sum()) ** 0.5, '.4f')
    p.text(f'  SNR {r_g1.snr:.1f} (box) -> {r_m.snr:.1f} (mask); the mask '
           f'sum is {100 * (1 - r_m.flux / r_sky.flux):.1f}% below the box '
           'sum')
    return r_m


def _residual_background(p, image, sky, cutout, r_sky, r_m):
    """Systematics: what the box holds outside the mask."""
    p.section('Systematic errors: residual background outside the mask')
    mask = cutout > 2 * image.std()
    resid_sum = r_sky.flux - r_m.flux
    resid_n = r_sky.n_pix - r_m.n_pix
    p.pair('sum of unmasked box pixels', resid_sum, cutout[~mask].sum(),
           '.3f')
    p.pair('mean of unmasked box pixels', resid_sum / resid_n,
           cutout[~mask].mean(), '.4f')
    sig = ErrorBudget.from_aperture(resid_sum, resid_n, sky.std)
    p.text(f'  {resid_n:.0f} pixels, {resid_sum / sig.error:.1f} sigma '
           'from zero: a gradient the global sky missed.')


def _write_figures(image, sky, gain, outdir):
    """The notebook's figures for star 1 as PNG files (needs matplotlib)."""
    from ..visualization.figures import notebook_figures, save_figures
    try:
        figures = notebook_figures(
            image, NOTEBOOK_BOXES['star1'], sky, gain=gain,
            overview=[BoxAperture.from_slices(s)
                      for s in NOTEBOOK_BOXES.values()],
            ids=list(NOTEBOOK_BOXES))
    except ImportError as exc:
        return f'figures skipped: {exc}'
    names = [os.path.basename(path) for path in save_figures(figures, outdir)]
    return f'wrote {", ".join(names)} to {outdir}'


def _local_sky_systematics_optimal(p, ccd, gain):
    """Local sky for the four stars, systematics of star 1, optimal SNR."""
    from photutils.aperture import RectangularAnnulus

    from ..analysis.systematics import systematics_report
    from ..datasets.sample import SAMPLE_PARAMETERS, render_stars, sample_truth
    from ..photometry.optimal import compare_extractions

    p.section('Local sky: a rectangular annulus 10-20 pixels around each box')
    truth = sample_truth()
    local = {}
    for name, slices in NOTEBOOK_BOXES.items():
        box = BoxAperture.from_slices(slices)
        ann = RectangularAnnulus(box.positions, box.width + 20,
                                 box.width + 40, box.height + 40)
        local[name] = SkyEstimate.from_annulus(ccd, ann)
        res = measure(ccd, box, local[name], gain=gain)
        star = truth[truth['name'] == name][0]
        true_in_box = render_stars(
            ccd.shape, [star['x']], [star['y']], [star['flux']],
            sigma=SAMPLE_PARAMETERS['psf_sigma'],
            trail=SAMPLE_PARAMETERS['trail'])[slices].sum()
        p.text(f'  {name}: sky {local[name].value[0]:.1f} +/- '
               f'{local[name].error_on_mean[0]:.2f}, box flux {res.flux:.0f} '
               f'+/- {res.flux_err:.0f} (true {true_in_box:.0f}), sky_mean '
               f'{100 * res.budget.fractions["sky_mean"]:.1f}% of the variance')

    p.section('Systematics of star 1 with the global mean sky')
    box = BoxAperture.from_slices(NOTEBOOK_BOXES['star1'])
    global_sky = SkyEstimate.from_image(ccd.data, method='mean',
                                        mask_sources=False)
    rep = systematics_report(ccd.data, box, global_sky, gain=gain)
    r, g = rep.residual, rep.gradient
    p.text(f'  residual outside the 2-sigma mask: {r.sum:.0f} ADU over '
           f'{r.n_pix:.0f} pixels (mean {r.mean:.1f}, {r.significance:.1f} '
           f'sigma); the mask holds {100 * (1 - r.lost_fraction):.1f}% of the '
           f'box sum; flags {rep.flags}')
    p.text(f'  frame gradient ({g.gx:.3f}, {g.gy:.3f}) ADU/pixel: a global '
           f'sky is safe only for apertures under {g.max_safe_n_pix:.0f} '
           'pixels')
    with warnings.catch_warnings():
        # the curve of growth's largest boxes reach into the annulus: said
        # below, from the flags of its rows
        warnings.filterwarnings('ignore', message='.* reach into their own '
                                'aperture', category=AstropyUserWarning)
        rep_local = systematics_report(ccd, box, local['star1'], gain=gain,
                                       gradient=False)
    p.text(f'  with the local sky: residual {rep_local.residual.mean:.2f} '
           f'ADU/pixel ({rep_local.residual.significance:.1f} sigma), '
           f'aperture correction {rep_local.aperture_correction:.3f} +/- '
           f'{rep_local.aperture_correction_err:.3f}, flags {rep_local.flags}')
    curve = rep_local.curve_of_growth
    reach = curve['scale'][(curve['flags'] & FLAG_SKY_ANNULUS) > 0]
    if len(reach):
        p.text(f'  (the curve-of-growth boxes of {", ".join(f"{s:g}" for s in reach)}'
               ' times the size reach into the annulus: those rows have '
               f'flag {FLAG_SKY_ANNULUS}, and the aperture correction taken '
               'from them is doubtful)')

    p.section('Optimal extraction of star 1 (PSF known), local sky')
    psf = render_stars((31, 31), [15.0], [15.0], [1.0],
                       sigma=SAMPLE_PARAMETERS['psf_sigma'],
                       trail=SAMPLE_PARAMETERS['trail'])
    star = truth[truth['name'] == 'star1'][0]
    table = compare_extractions(ccd, box, psf, local['star1'], gain=gain,
                                position=(star['x'], star['y']))
    for row in table:
        p.text(f'  {row["method"]:<8s} flux {row["flux"]:8.0f} +/- '
               f'{row["flux_err"]:5.0f}  SNR {row["snr"]:6.1f}  '
               f'(x{row["snr_gain"]:.2f} the box)')
    p.text(f'  optimal over the 2-sigma mask: x{table.meta["snr_gain_mask"]:.2f}'
           ' in SNR')
