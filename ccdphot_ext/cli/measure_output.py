# Licensed under a 3-clause BSD style license - see LICENSE
"""
What ``ccdphot measure`` prints and writes besides its table: the header
lines (frame, sky and detector with units), the capped table or the
summary, DS9 regions and the figures.
"""

import math

from .common import CLIError, level_text, print_capped

__all__ = []


#: Columns printed by ``ccdphot measure`` and their formats.
_PRINT_COLUMNS = {'id': None, 'x_center': '.2f', 'y_center': '.2f',
                  'n_pix': '.1f', 'sky': '.2f', 'aperture_sum': '.1f',
                  'aperture_sum_err': '.1f', 'snr': '.1f', 'mag': '.4f',
                  'mag_err': '.4f', 'flags': None}


def _unit_text(unit):
    return 'no unit' if unit is None else unit.to_string()


def _sky_line(sky, unit):
    """The sky summary, with the data unit on every number."""
    import numpy as np

    un = '' if unit is None else f' {unit.to_string()}'
    if sky.is_map:
        box = sky.meta.get('box_size')
        filt = sky.meta.get('filter_size')
        mesh = (f', box {box[0]}x{box[1]}, filter {filt[0]}x{filt[1]}'
                if box and filt else '')
        if sky.meta.get('n_excluded_meshes'):
            mesh += (f', exclude_percentile '
                     f'{sky.meta.get("exclude_percentile", 10):g} (meshes '
                     f'left out: {sky.meta["n_excluded_meshes"]})')
        note = sky.meta.get('mesh_note')
        return (f'sky       Background2D map{mesh}: median '
                f'{level_text(np.median(sky.value))}{un}, median rms '
                f'{level_text(np.median(sky.std))}{un} per pixel'
                + (f'\nnote      {note}' if note else ''))
    if sky.is_global:
        return (f'sky       {sky.method}: {level_text(sky.value)}{un} +/- '
                f'{sky.error_on_mean:.3g}{un}, std {level_text(sky.std)}{un}'
                f' per pixel ({sky.n_pix} pixels)')
    return (f'sky       annulus, one level per aperture (median '
            f'{level_text(np.nanmedian(sky.value))}{un})')


def _gain_unit(unit):
    """The unit of a gain for data in ``unit``: e-/ADU for counts in ADU,
    else electrons per data unit."""
    import astropy.units as u

    if unit is None or unit in (u.adu, u.DN, u.count):
        return 'e-/ADU'
    name = unit.to_string()
    return f'e- / ({name})' if ' ' in name else f'e-/{name}'


def _uncertainty_text(frame):
    if frame.variance_arrays:
        return 'variance arrays ' + ', '.join(frame.variance_arrays)
    return ('uncertainty map: '
            + ('yes' if frame.uncertainty is not None else 'no'))


def print_header(table, args, frame, sky, out, *, dq=None):
    """The frame, its masked DQ pixels, the sky, the detector (the gain in
    electrons per data unit) and the notes."""
    meta = table.meta
    ny, nx = frame.data.shape
    hdu = frame.meta.get('SCIHDU', '0')  # an extension: file[SCI,1]
    where = args.image if hdu == '0' else f'{args.image}[{hdu}]'
    print(f'image     {where} ({ny} x {nx}, {_unit_text(frame.unit)}, '
          f'{_uncertainty_text(frame)})', file=out)
    if dq is not None:
        from ..io.dq import describe_dq_bits, dq_convention, dq_mask

        bits = int(frame.meta['DQMASK'])
        convention = dq_convention(frame.meta)
        print(f'dq        {int(dq_mask(dq, bits).sum())} pixel(s) masked '
              f'(DQ bits {describe_dq_bits(bits, convention)}: '
              f'{frame.meta["DQRULE"]})', file=out)
    print(_sky_line(sky, frame.unit), file=out)

    def show(name, unit_text):
        value = meta.get(name)
        source = meta.get(f'{name}_source')
        text = 'unknown' if value is None else f'{value:g} {unit_text}'
        return text + (f' ({source})' if source else '')

    gain = ('not used (the budget takes the variance arrays)'
            if meta.get('variance_arrays') else
            show('gain', _gain_unit(frame.unit)))
    print(f'detector  gain {gain}, exptime '
          f'{show("exptime", "s")}, read noise {show("read_noise", "e-")}',
          file=out)
    if args.threshold is not None:
        print(f'threshold {args.threshold:g} sigma', file=out)
    if 'find_n_rejected_artifacts' in meta:
        print(f'find      {meta["find_n_rejected_artifacts"]} detection(s) '
              'left out as rings or spikes of brighter stars', file=out)
    if meta.get('find_kept_artifacts'):
        print('find      rings and spikes of brighter stars kept '
              '(--keep-artifacts)', file=out)
    for note in meta.get('notes', ()):
        print(f'note      {note}', file=out)


def print_rows(table, out, max_rows):
    """The table (its first ``max_rows`` rows when capped); sums in a flux
    density or surface brightness with significant digits, not decimals."""
    from ..io.fluxdensity import unit_family

    view = table[list(_PRINT_COLUMNS)]
    physical = unit_family(getattr(table['aperture_sum'], 'unit', None)) in (
        'flux density', 'surface brightness')
    for name, fmt in _PRINT_COLUMNS.items():
        if physical and name in ('sky', 'aperture_sum', 'aperture_sum_err'):
            fmt = '.5g'
        if fmt:
            view[name].info.format = fmt
    print(file=out)
    print_capped(view, out, max_rows)


def print_summary(table, out):
    """Rows, flag counts and the median SNR (units on the numbers)."""
    import numpy as np

    from ..flags import decode_flags

    flags = np.asarray(table['flags'])
    snr = np.asarray(table['snr'], dtype=float)
    good = np.isfinite(snr)
    median = f'{np.median(snr[good]):.1f}' if good.any() else 'n/a'
    unit = getattr(table['aperture_sum'], 'unit', None)
    flux = np.asarray(getattr(table['aperture_sum'], 'value',
                              table['aperture_sum']), dtype=float)
    fin = np.isfinite(flux)
    med_flux = (f', median flux {np.median(flux[fin]):.4g} '
                f'{_unit_text(unit)}' if fin.any() else '')
    print(f'rows      {len(table)}: {int(np.sum(flags == 0))} unflagged, '
          f'median SNR {median}{med_flux}', file=out)
    counts = {}
    for value in flags[flags > 0]:
        for text in decode_flags(value):
            counts[text] = counts.get(text, 0) + 1
    for text, count in counts.items():
        print(f'flagged   {count} row(s): {text}', file=out)


def write_regions(path, per_row, table):
    """DS9 regions of the apertures: ids as labels, flagged ones red; none
    for a row without a pixel position (a sky position on the far side of
    the sky: its aperture stands at a made-up place off the frame)."""
    import numpy as np

    from ..aperture.regions import write_ds9

    placed = np.isfinite(np.asarray(table['x_center'], dtype=float))
    rows = np.flatnonzero(placed)
    try:
        write_ds9([per_row[i] for i in rows], path,
                  labels=[str(table['id'][i]) for i in rows],
                  flags=[int(table['flags'][i]) for i in rows],
                  overwrite=True)
    except OSError as exc:
        raise CLIError(f'--regions {path}: cannot write ({exc})') from exc


def _star_sky(sky, row, index):
    """One level for a star's page: the row's (for a map, its level and
    scatter under the aperture, as the photometry used)."""
    import numpy as np

    from ..background.sky import SkyEstimate
    from ..visualization._base import _plain, _scalar_sky

    if not sky.is_map:
        return _scalar_sky(sky, index)
    value, std, error_on_mean = (float(_plain(row[name])) for name in
                       ('sky', 'sky_std', 'sky_error_on_mean'))
    n_mesh = float(np.median(sky.n_pix))  # pixels behind one mesh level
    return SkyEstimate(value, std, n_mesh, error_on_mean=error_on_mean,
                       method='Background2D under the aperture',
                       unit=sky.unit)


def check_plot_names(plot_dir, files):
    """
    Refuse, before any work, a file of ``files`` (``(path, label)``, path
    None when not given) that a figure written to ``plot_dir`` would
    replace: ``overview.png``, ``budget.png`` or ``star_ID.png`` there.
    """
    import os
    import re

    for path, label in files:
        if path is None:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if (os.path.isdir(plot_dir) and os.path.samefile(folder, plot_dir)
                and re.fullmatch(r'(overview|budget|star_.+)\.png',
                                 os.path.basename(path))):
            raise CLIError(f'{label} {path} would be replaced by a figure of '
                           f'--plot {plot_dir}; give another name or folder')


def measure_plots(table, frame, per_row, sky, threshold, args):
    import numpy as np
    from matplotlib.figure import Figure

    from ..visualization._base import _frame_figsize
    from ..visualization.budget import budget_from_row, plot_budget_overview
    from ..visualization.figures import save_figures
    from ..visualization.frame import plot_frame
    from ..visualization.star import plot_star_summary

    figures = {}
    fig = Figure(figsize=_frame_figsize(frame.shape, 10.0), layout='tight')
    plot_frame(frame, per_row, ids=list(table['id']), ax=fig.add_subplot(),
               priority=np.asarray(table['snr'], dtype=float),
               priority_name='SNR')
    figures['overview'] = fig
    shown = min(len(table), 40)
    figures['budget'] = plot_budget_overview(
        table, max_rows=40,
        fig=Figure(figsize=(14, max(4.5, 1.2 + 0.3 * shown)), layout='tight'))
    snr = np.nan_to_num(np.asarray(table['snr'], dtype=float), nan=-np.inf)
    order = np.argsort(-snr, kind='stable')[:args.plot_stars]
    for i in order:
        row = table[i]
        if not math.isfinite(float(snr[i])):
            continue
        fig = Figure(figsize=(16, 9), layout='tight')
        plot_star_summary(frame, per_row[i], _star_sky(sky, row, i),
                          budget=budget_from_row(row), threshold=threshold,
                          gain=table.meta['gain'], fig=fig,
                          title=f'id {row["id"]} at ({row["x_center"]:.1f}, '
                                f'{row["y_center"]:.1f})')
        figures[f'star_{row["id"]}'] = fig
    return save_figures(figures, args.plot)
