# Licensed under a 3-clause BSD style license - see LICENSE
"""
``ccdphot find`` (registered by `ccdphot_ext.cli`).
"""

import argparse
import os
import sys

from .common import (
    SKY_CHOICES,
    add_frame_options,
    add_keep_artifacts_option,
    add_output_options,
    check_output_path,
    format_epilog,
    level_text,
    naming,
    output_format,
    output_locks,
    positive_int_type,
    positive_type,
    print_capped,
    read_image,
    to_write,
    write_table,
)

__all__ = ['add_parser', 'artifacts_line']


def _cmd_find(args):
    if args.output:
        check_output_path(args.output, inputs=[(args.image, 'IMAGE')])
        output_format(args.output, args.format)  # refuse a mismatch now
    with output_locks(args.output), naming(args.image):
        return _find(args)


def _find(args):
    """Find the stars of IMAGE and write them (the output checked and
    locked)."""
    from ..background.sky import SkyEstimate
    from ..detection.findstars import find_stars
    from ..utils.inputs import as_frame

    frame = as_frame(read_image(args.image, hdu=args.hdu, unit=args.unit,
                                dq_bits=args.dq_bits))
    sky = SkyEstimate.from_image(frame, method=args.sky)
    found = find_stars(frame, sky, n_sigma=args.n_sigma,
                       n_pixels=args.npixels, deblend=args.deblend,
                       reject_artifacts=not args.keep_artifacts)
    found.meta['image'] = os.path.abspath(args.image)
    done = []
    if args.output:
        table, fmt = to_write(found, args.output, args.format)
        note = write_table(table, args.output, fmt)
        done.append(f'wrote     {args.output} ({fmt}, {len(found)} rows'
                    f'{note})')
    un = '' if frame.unit is None else f' {frame.unit.to_string()}'
    print(f'image     {args.image}: {len(found)} star(s) above '
          f'{args.n_sigma:g} sigma (sky {sky.method} '
          f'{level_text(sky.value)}{un}, std {level_text(sky.std)}{un} per '
          'pixel)')
    print(artifacts_line(found.meta))
    if len(found):
        print(_box_line(found.meta))
    if not args.output:
        view = found.copy()
        for name in view.colnames:
            if view[name].dtype.kind == 'f':
                view[name].info.format = '.2f'
        print_capped(view, sys.stdout, args.max_rows)
    for line in done:
        print(line)
    return 0


def artifacts_line(meta):
    """
    How many detections were left out as rings or spikes of brighter
    stars (or that none were looked for).

    Parameters
    ----------
    meta : dict
        The ``meta`` of a `~ccdphot_ext.find_stars` table.

    Returns
    -------
    line : str
        The ``rejected`` line of the command's summary.
    """
    if not meta.get('reject_artifacts'):
        return ('rejected  none: rings and spikes of bright stars kept '
                '(--keep-artifacts)')
    n = meta['n_rejected_artifacts']
    return (f'rejected  {n} detection(s) as rings or spikes of brighter '
            'stars')


def _box_line(meta):
    """The suggested box, where its size came from and its check."""
    check = meta.get('box_check') or {}
    psf = meta.get('psf_fwhm')
    origin = (f'PSF FWHM {psf:.2f} px from {meta["n_star_like"]} star-like '
              'source(s)' if psf is not None else 'no star-like source')
    if check.get('fraction') is None:
        verdict = check.get('note', 'not checked')
    else:
        verdict = (f'holds {check["fraction"]:.0%} of the curve-of-growth '
                   f'plateau of {check["n_stars"]} bright isolated star(s)'
                   + ('' if check['passed'] else ' (too small: flag 128)'))
    return f'boxes     {meta["box_side"]} px ({origin}); {verdict}'


def add_parser(sub, common):
    """
    Add the ``find`` subcommand to ``sub``.

    Parameters
    ----------
    sub : argparse subparsers action
        What ``add_subparsers`` of the ``ccdphot`` parser returned.
    common : `argparse.ArgumentParser`
        A parent parser holding the options every subcommand takes
        (``--debug``).

    Returns
    -------
    parser : `argparse.ArgumentParser`
        The ``find`` subcommand's parser.
    """
    p = sub.add_parser(
        'find', parents=[common], help='list the stars in a frame',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Find stars (ccdphot_ext.find_stars) and list their '
                    'positions (0-based pixels), area (pix2), FWHM (pix) '
                    'and suggested boxes.',
        epilog=format_epilog('''\
            examples:
              ccdphot find frame.fits
              ccdphot find frame.fits --n-sigma 10 -o stars.ecsv
              ccdphot find mef.fits --hdu SCI --unit electron -o stars.ecsv
              ccdphot measure frame.fits --positions stars.ecsv

            measure --positions uses the suggested boxes of a find table
            (unless --size or --radius is given), so find then measure
            gives the same numbers as measure --find.
            '''))
    p.add_argument('image', metavar='IMAGE', help='processed FITS frame')
    add_frame_options(p)
    p.add_argument('--n-sigma', metavar='N', type=positive_type, default=5.0,
                   help='detection threshold in sky sigma (default 5)')
    p.add_argument('--npixels', metavar='N', type=positive_int_type, default=5,
                   help='minimum connected pixels above the threshold '
                        '(default 5)')
    p.add_argument('--deblend', action='store_true',
                   help='split blended stars (photutils deblend_sources)')
    add_keep_artifacts_option(p)
    p.add_argument('--sky', choices=SKY_CHOICES[:3], default='sigma_clip',
                   help='sky estimate (default sigma_clip)')
    add_output_options(p)
    p.set_defaults(func=_cmd_find)
    return p
