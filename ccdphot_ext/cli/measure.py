# Licensed under a 3-clause BSD style license - see LICENSE
"""
``ccdphot measure`` and ``ccdphot find`` (registered by `ccdphot_ext.cli`).
"""

import argparse
import math
import os
import sys

import numpy as np

from ..detection.findstars import find_stars
from .common import (
    _FORMATS,
    SKY_CHOICES,
    CLIError,
    _box,
    _check_output,
    _epilog,
    _non_negative,
    _number,
    _output_format,
    _pair,
    _positive,
    _positive_int,
    _prepare_dir,
    _read_image,
    _read_positions,
    _size,
    _write_table,
)

__all__ = ['add_parsers']

#: Columns printed by ``ccdphot measure`` and their formats.
_PRINT_COLUMNS = {'id': None, 'x_center': '.2f', 'y_center': '.2f',
                  'n_pix': '.1f', 'sky': '.2f', 'aperture_sum': '.1f',
                  'aperture_sum_err': '.1f', 'snr': '.1f', 'mag': '.4f',
                  'mag_err': '.4f', 'flags': None}


# -- measure ---------------------------------------------------------------

def _check_box(slices, shape, text):
    ny, nx = shape
    (y0, y1), (x0, x1) = ((s.start, s.stop) for s in slices)
    if y0 >= ny or x0 >= nx:
        raise CLIError(f'--box {text}: lies outside the {ny} x {nx} image')
    if y1 > ny or x1 > nx:
        raise CLIError(f'--box {text}: extends past the {ny} x {nx} image '
                       f'(rows 0:{ny}, columns 0:{nx})')


def _box_text(slices):
    return (f'{slices[0].start}:{slices[0].stop},'
            f'{slices[1].start}:{slices[1].stop}')


def _apertures(args, frame, sky_for_find):
    """The apertures (list) and a one-position aperture per row."""
    from ..aperture.box import BoxAperture

    apertures, per_row = [], []
    for slices in args.box or ():
        _check_box(slices, frame.shape, _box_text(slices))
        box = BoxAperture.from_slices(slices)
        apertures.append(box)
        per_row.append(box)
    width, height = args.size or (20.0, 20.0)
    if args.positions:
        xy = _read_positions(args.positions)
        apertures.append(BoxAperture(xy, width, height))
        per_row.extend(BoxAperture(p, width, height) for p in xy)
    if args.find:
        from ..detection.findstars import star_boxes

        found = find_stars(frame, sky_for_find, n_sigma=args.find_nsigma)
        if len(found) == 0:
            raise CLIError(f'--find: no star found above {args.find_nsigma:g}'
                           ' sigma')
        if args.size is None:  # the box find_stars suggests for each star
            boxes = star_boxes(found)
        else:
            boxes = BoxAperture(np.column_stack([found['x_center'],
                                                 found['y_center']]),
                                width, height)
        apertures.append(boxes)
        per_row.extend(boxes[i] for i in range(len(found)))
    if not apertures:
        raise CLIError('no apertures: give --box, --positions or --find')
    return apertures, per_row


def _sky(args, frame, per_row):
    """The sky for the photometry: the whole frame's, or annuli."""
    from ..background.sky import SkyEstimate

    if args.sky == 'annulus':
        return _annulus_sky(args, frame, per_row)
    if args.annulus is not None:
        raise CLIError('--annulus needs --sky annulus')
    return SkyEstimate.from_image(frame, method=args.sky)


def _annulus_sky(args, frame, per_row):
    from photutils.aperture import CircularAnnulus

    from ..background.sky import SkyEstimate

    if not hasattr(SkyEstimate, 'from_annulus'):  # pragma: no cover
        raise CLIError('--sky annulus needs SkyEstimate.from_annulus, which '
                       'this installation lacks')
    positions = np.array([ap.positions[0] for ap in per_row])
    if args.annulus is not None:
        r_in, r_out = args.annulus
    else:
        half_diag = max(math.hypot(ap.width, ap.height) / 2 for ap in per_row)
        r_in = math.ceil(half_diag) + 2.0
        r_out = r_in + 10.0
    annulus = CircularAnnulus(positions, r_in, r_out)
    return SkyEstimate.from_annulus(frame, annulus)


def _print_measure(table, args, frame, sky, out):
    from ..flags import decode_flags

    meta = table.meta
    ny, nx = frame.data.shape
    unit = frame.unit if frame.unit is not None else 'no unit'
    has_map = frame.uncertainty is not None
    print(f'image     {args.image} ({ny} x {nx}, {unit}, uncertainty map: '
          f'{"yes" if has_map else "no"})', file=out)
    if sky.isscalar:
        print(f'sky       {sky.method}: {sky.value:.3f} +/- '
              f'{sky.error_on_mean:.3g}, std {sky.std:.3f} per pixel '
              f'({sky.n_pix} pixels)', file=out)
    else:
        print(f'sky       annulus, one level per aperture (median '
              f'{np.median(sky.value):.3f})', file=out)

    def show(name, unit_text):
        value = meta.get(name)
        source = meta.get(f'{name}_source')
        text = 'unknown' if value is None else f'{value:g} {unit_text}'
        return text + (f' ({source})' if source else '')

    print(f'detector  gain {show("gain", "e-/ADU")}, exptime '
          f'{show("exptime", "s")}, read noise {show("read_noise", "e-")}',
          file=out)
    if args.threshold is not None:
        print(f'threshold {args.threshold:g} sigma', file=out)
    for note in meta.get('notes', ()):
        print(f'note      {note}', file=out)
    view = table[list(_PRINT_COLUMNS)]
    for name, fmt in _PRINT_COLUMNS.items():
        if fmt:
            view[name].info.format = fmt
    print(file=out)
    for line in view.pformat(max_lines=-1, max_width=-1):
        print(line, file=out)
    flags = np.asarray(table['flags'])
    counts = {}
    for value in flags[flags > 0]:
        for text in decode_flags(value):
            counts[text] = counts.get(text, 0) + 1
    for text, count in counts.items():
        print(f'flagged   {count} row(s): {text}', file=out)


def _cmd_measure(args):
    from ..background.sky import SkyEstimate
    from ..background.threshold import SigmaThreshold
    from ..photometry.table import photometer
    from ..utils.inputs import as_frame

    if args.output:
        _check_output(args.output)
    if args.plot:
        _prepare_dir(args.plot, '--plot')
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CLIError('--plot needs matplotlib: pip install '
                           '"ccdphot_ext[plot]"') from None
    frame = as_frame(_read_image(args.image, uncertainty=args.uncertainty))
    sky_for_find = SkyEstimate.from_image(frame) if args.find else None
    apertures, per_row = _apertures(args, frame, sky_for_find)
    sky = _sky(args, frame, per_row)
    threshold = (SigmaThreshold(args.threshold) if args.threshold is not None
                 else None)
    table = photometer(frame, apertures, sky, gain=args.gain,
                       threshold=threshold, saturation=args.saturation,
                       read_noise=args.read_noise, exptime=args.exptime,
                       zeropoint=args.zeropoint)
    table.meta['image'] = os.path.abspath(args.image)
    if args.uncertainty:
        table.meta['uncertainty_file'] = os.path.abspath(args.uncertainty)
    table.meta['sky_option'] = args.sky
    done = []  # files first: a closed stdout (| head) must not lose them
    if args.output:
        fmt = _output_format(args.output, args.format)
        _write_table(table, args.output, fmt)
        done.append(f'wrote     {args.output} ({fmt}, {len(table)} rows)')
    if args.plot:
        paths = _measure_plots(table, frame, per_row, sky, threshold, args)
        done.append(f'wrote     {len(paths)} figures to {args.plot}')
    _print_measure(table, args, frame, sky, sys.stdout)
    for line in done:
        print(line)
    return 0


def _measure_plots(table, frame, per_row, sky, threshold, args):
    from matplotlib.figure import Figure

    from ..visualization.figures import (
        _frame_figsize,
        _scalar_sky,
        budget_from_row,
        plot_budget_table,
        plot_frame,
        plot_star_summary,
        save_figures,
    )

    figures = {}
    fig = Figure(figsize=_frame_figsize(frame.shape, 10.0), layout='tight')
    plot_frame(frame, per_row, ids=list(table['id']), ax=fig.add_subplot())
    figures['overview'] = fig
    fig = Figure(figsize=(8, max(3.0, 1.2 + 0.3 * min(len(table), 40))),
                 layout='tight')
    plot_budget_table(table, ax=fig.add_subplot())
    figures['budget'] = fig
    snr = np.nan_to_num(np.asarray(table['snr'], dtype=float), nan=-np.inf)
    order = np.argsort(-snr, kind='stable')[:args.plot_stars]
    for i in order:
        row = table[i]
        if not math.isfinite(float(snr[i])):
            continue
        fig = Figure(figsize=(16, 9), layout='tight')
        plot_star_summary(frame, per_row[i], _scalar_sky(sky, i),
                          budget=budget_from_row(row), threshold=threshold,
                          gain=table.meta['gain'], fig=fig,
                          title=f'id {row["id"]} at ({row["x_center"]:.1f}, '
                                f'{row["y_center"]:.1f})')
        figures[f'star_{row["id"]}'] = fig
    return save_figures(figures, args.plot)


# -- find ------------------------------------------------------------------

def _cmd_find(args):
    from ..background.sky import SkyEstimate
    from ..utils.inputs import as_frame

    if args.output:
        _check_output(args.output)
    frame = as_frame(_read_image(args.image))
    sky = SkyEstimate.from_image(frame, method=args.sky)
    found = find_stars(frame, sky, n_sigma=args.nsigma,
                       n_pixels=args.npixels, deblend=args.deblend)
    found.meta['image'] = os.path.abspath(args.image)
    done = []
    if args.output:
        fmt = _output_format(args.output, args.format)
        _write_table(found, args.output, fmt)
        done.append(f'wrote     {args.output} ({fmt}, {len(found)} rows)')
    print(f'image     {args.image}: {len(found)} star(s) above '
          f'{args.nsigma:g} sigma (sky {sky.method} {sky.value:.3f}, std '
          f'{sky.std:.3f})')
    view = found.copy()
    for name in view.colnames:
        if view[name].dtype.kind == 'f':
            view[name].info.format = '.2f'
    for line in [*view.pformat(max_lines=-1, max_width=-1), *done]:
        print(line)
    return 0


def _add_output(parser):
    parser.add_argument('-o', '--output', metavar='OUT',
                        help='write the table here (written atomically)')
    parser.add_argument('--format', choices=tuple(_FORMATS),
                        help='output format (default from the OUT '
                             'extension: .csv is csv, else ecsv)')


def _add_measure(sub, common):
    p = sub.add_parser(
        'measure', parents=[common],
        help='photometry of boxes, a positions table or found stars',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Aperture photometry with the full error budget, as '
                    'ccdphot_ext.photometer(): one row per aperture. Gain, '
                    'read noise, exposure time and saturation come from the '
                    'header (GAIN/EGAIN, RDNOISE, EXPTIME, SATURATE) unless '
                    'given. The UNCERT and MASK extensions of IMAGE are '
                    'used.',
        epilog=_epilog('''\
            examples:
              ccdphot measure frame.fits --box 158:178,492:512
              ccdphot measure frame.fits --box 158:178,492:512 \\
                  --box 240:260,325:345 --threshold 2 -o stars.ecsv
              ccdphot measure frame.fits --positions stars.csv --size 15 \\
                  --sky annulus --annulus 12,20 --gain 2.23 -o out.csv
              ccdphot measure frame.fits --find --plot figures/

            --box Y0:Y1,X0:X1 is numpy's image[Y0:Y1, X0:X1] (0-based, stop
            excluded). Boxes from --positions (x_center/y_center or x/y
            columns, 0-based pixels) and --find are centred on each star
            with --size W[,H] (default 20 pixels; --find uses the suggested
            box of each star unless --size is given).
            '''))
    p.add_argument('image', metavar='IMAGE', help='processed FITS frame')
    p.add_argument('--uncertainty', metavar='FILE',
                   help='FITS per-pixel 1-sigma map (wins over UNCERT)')
    p.add_argument('--box', metavar='Y0:Y1,X0:X1', type=_box,
                   action='append', help='a box (repeat for more)')
    p.add_argument('--positions', metavar='TABLE',
                   help='ECSV/CSV/FITS table of star positions')
    p.add_argument('--size', metavar='W[,H]', type=_size,
                   help='box size for --positions/--find (default 20)')
    p.add_argument('--find', action='store_true',
                   help='find the stars (ccdphot_ext.find_stars)')
    p.add_argument('--find-nsigma', metavar='N', type=_positive, default=5.0,
                   help='detection threshold for --find (default 5)')
    p.add_argument('--sky', choices=SKY_CHOICES, default='sigma_clip',
                   help='sky estimate (default sigma_clip over the frame)')
    p.add_argument('--annulus', metavar='RIN,ROUT', type=_pair,
                   help='annulus radii for --sky annulus (default: 2 '
                        'pixels beyond the box corner, 10 pixels wide)')
    p.add_argument('--threshold', metavar='NSIG', type=_positive,
                   help='keep only pixels above NSIG sky sigma')
    p.add_argument('--gain', metavar='G', type=_positive,
                   help='e-/ADU (default: header)')
    p.add_argument('--read-noise', metavar='RN', type=_non_negative,
                   help='e- (default: header)')
    p.add_argument('--exptime', metavar='T', type=_positive,
                   help='seconds (default: header)')
    p.add_argument('--saturation', metavar='S', type=_positive,
                   help='saturation level in the data unit (default: '
                        'header)')
    p.add_argument('--zeropoint', metavar='ZP', type=_number,
                   help='magnitude zero point (default 0)')
    _add_output(p)
    p.add_argument('--plot', metavar='DIR',
                   help='write PNG figures here (needs matplotlib)')
    p.add_argument('--plot-stars', metavar='N', type=_positive_int,
                   default=5, help='one-page figures for the N rows of '
                                   'highest SNR (default 5)')
    p.set_defaults(func=_cmd_measure)


def _add_find(sub, common):
    p = sub.add_parser(
        'find', parents=[common], help='list the stars in a frame',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Find stars (ccdphot_ext.find_stars) and list their '
                    'positions and suggested boxes.',
        epilog=_epilog('''\
            examples:
              ccdphot find frame.fits
              ccdphot find frame.fits --nsigma 10 -o stars.ecsv
              ccdphot measure frame.fits --positions stars.ecsv
            '''))
    p.add_argument('image', metavar='IMAGE', help='processed FITS frame')
    p.add_argument('--nsigma', metavar='N', type=_positive, default=5.0,
                   help='detection threshold in sky sigma (default 5)')
    p.add_argument('--npixels', metavar='N', type=_positive_int, default=5,
                   help='minimum connected pixels above the threshold '
                        '(default 5)')
    p.add_argument('--deblend', action='store_true',
                   help='split blended stars (photutils deblend_sources)')
    p.add_argument('--sky', choices=SKY_CHOICES[:3], default='sigma_clip',
                   help='sky estimate (default sigma_clip)')
    _add_output(p)
    p.set_defaults(func=_cmd_find)


def add_parsers(sub, common):
    """Add the ``measure`` and ``find`` subcommands to ``sub``."""
    _add_measure(sub, common)
    _add_find(sub, common)
