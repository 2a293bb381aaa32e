# Licensed under a 3-clause BSD style license - see LICENSE
"""
``ccdphot measure`` and ``ccdphot find`` (registered by `ccdphot_ext.cli`).
"""

import argparse
import math
import os
import sys
import warnings

from .common import (
    SKY_CHOICES,
    CLIError,
    add_detector_options,
    add_fractional_variance_option,
    add_frame_options,
    add_keep_artifacts_option,
    add_output_options,
    add_positions_format,
    add_sky_with_apertures_option,
    add_uncertainty_model_option,
    blank_noise,
    box_type,
    budget_options,
    check_output_path,
    detector_from_args,
    format_epilog,
    mesh_type,
    naming,
    output_format,
    output_locks,
    pair_type,
    path_type,
    positions_flags,
    positive_int_type,
    positive_type,
    prepare_dir,
    read_image,
    read_positions_table,
    size_type,
    sky_frame_type,
    to_write,
    write_table,
)

__all__ = ['add_parsers']


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


def _shaped(args, xy):
    """Apertures of the chosen shape (--radius circles, else --size boxes)
    at ``xy``: one aperture of all and one per row."""
    if args.radius is not None:
        from photutils.aperture import CircularAperture

        return (CircularAperture(xy, args.radius),
                [CircularAperture(p, args.radius) for p in xy])
    from ..aperture.box import BoxAperture

    width, height = args.size or (20.0, 20.0)
    return (BoxAperture(xy, width, height),
            [BoxAperture(p, width, height) for p in xy])


def _fits_frame(aperture, shape, option):
    """Refuse an aperture far larger than the frame, naming its option."""
    from ..aperture.utils import check_extent

    try:
        check_extent(aperture, shape, option)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _suggested_boxes(stars):
    """The suggested boxes of a find_stars table, one per row, and the
    flag of a box that failed find_stars' curve-of-growth check."""
    from ..detection.findstars import box_flags, star_boxes

    boxes = star_boxes(stars)
    return boxes, [boxes[i] for i in range(len(stars))], box_flags(stars)


def _warn_not_star_like(found):
    """Warn, naming them, of the --find detections that are not star-like
    and not saturated (sharper than a star, elongated, or wider or
    narrower than the stars): they are measured with the rest, their rows
    flagged 512 (`star_like_flags`)."""
    import warnings

    from astropy.utils.exceptions import AstropyUserWarning

    from ..detection.findstars import not_star_like

    parts = []
    for reason, ids in not_star_like(found).items():
        shown = ', '.join(str(i) for i in ids[:10])
        more = f' and {len(ids) - 10} more' if len(ids) > 10 else ''
        parts.append(f'{len(ids)} {reason}: id {shown}{more}')
    if parts:
        warnings.warn('--find: detection(s) not like a star measured with '
                      'the rest, flagged 512: ' + '; '.join(parts)
                      + ' (ccdphot find lists their fwhm, roundness, '
                      'sharpness and star_like)', AstropyUserWarning,
                      stacklevel=2)


def _apertures(args, frame, sky_for_find):
    """The apertures (list), a one-position aperture per row, the ids, the
    flags found stars add to their rows (a failed box check, a detection
    not like a star) and the number of --find
    detections left out as rings or spikes (None without --find)."""
    import numpy as np

    from ..aperture.box import BoxAperture
    from ..detection.findstars import box_flags, star_like_flags

    apertures, per_row, ids, flags = [], [], [], []
    n_artifacts = None
    unplaced = {}  # rows of sky positions with no pixel position
    # a shape far larger than the frame is refused before any work
    own_shape = args.size is not None or args.radius is not None
    if own_shape:
        _fits_frame(_shaped(args, np.zeros((1, 2)))[0], frame.shape,
                    f'--radius {args.radius:g}' if args.radius is not None
                    else f'--size {args.size[0]:g},{args.size[1]:g}')
    for slices in args.box or ():
        _check_box(slices, frame.shape, _box_text(slices))
        box = BoxAperture.from_slices(slices)
        apertures.append(box)
        per_row.append(box)
        ids.append(len(ids) + 1)
        flags.append(0)
    # a table's (or find's) suggested boxes unless a shape is given
    if args.positions:
        pos = read_positions_table(args.positions, frame=frame,
                                   image=args.image,
                                   format=args.positions_format,
                                   sky_frame=args.positions_frame,
                                   keep_unplaced=True)
        xy = np.column_stack([pos['x_center'], pos['y_center']])
        lost = pos.meta.pop('unplaced')
        if lost:
            xy = _off_frame(args, xy, lost)
            unplaced.update({len(ids) + row: c for row, c in lost.items()})
        suggested = 'box_x0' in pos.colnames and not own_shape
        if suggested:
            ap, rows, _ = _suggested_boxes(pos)
            _fits_frame(ap, frame.shape, f'--positions {args.positions} '
                        '(its suggested boxes)')
        else:
            ap, rows = _shaped(args, xy)
        # the table's own flags, as ccdphot batch gives them
        bits = positions_flags(pos, suggested_boxes=suggested)
        apertures.append(ap)
        per_row.extend(rows)
        ids.extend(pos['id'].tolist())
        flags.extend(bits.tolist())
    if args.find:
        from ..detection.findstars import find_stars

        # a square --size of whole pixels is checked like a suggested box
        side = (args.size or (None, None))[0]
        checked = (args.radius is None and args.size is not None
                   and args.size[0] == args.size[1]
                   and float(side).is_integer())
        found = find_stars(frame, sky_for_find, n_sigma=args.find_n_sigma,
                           box_side=int(side) if checked else None,
                           reject_artifacts=not args.keep_artifacts)
        n_artifacts = found.meta['n_rejected_artifacts']
        if len(found) == 0:
            raise CLIError(f'--find: no star found above {args.find_n_sigma:g}'
                           ' sigma')
        _warn_not_star_like(found)
        if own_shape:
            ap, rows = _shaped(args, np.column_stack([found['x_center'],
                                                      found['y_center']]))
            bits = box_flags(found) if checked else np.zeros(len(found), int)
        else:
            ap, rows, bits = _suggested_boxes(found)
        bits = bits | star_like_flags(found)
        apertures.append(ap)
        per_row.extend(rows)
        ids.extend(found['id'].tolist())
        flags.extend(bits.tolist())
    if not apertures:
        raise CLIError('no apertures: give --box, --positions or --find')
    if len(set(ids)) != len(ids):  # e.g. --box with --positions: renumber
        import warnings

        from astropy.utils.exceptions import AstropyUserWarning

        warnings.warn('the ids of the --box, --positions and --find rows '
                      'collide: rows numbered 1 to N instead',
                      AstropyUserWarning, stacklevel=2)
        ids = list(range(1, len(ids) + 1))
    return apertures, per_row, ids, flags, n_artifacts, unplaced


def _off_frame(args, xy, lost):
    """``xy`` with the rows ``lost`` (sky positions with no pixel position:
    the far side of the sky) just off the frame, where their apertures sum
    nothing (a NaN row with flag 1, as photometer gives such a sky
    aperture), with a warning naming them."""
    import warnings

    from astropy.utils.exceptions import AstropyUserWarning

    from ..aperture.skybox import sky_position

    rows = sorted(lost)
    extent = (2 * args.radius if args.radius is not None
              else max(args.size or (20.0, 20.0)))
    xy = xy.copy()
    xy[rows] = -2.0 - math.ceil(extent)  # the whole aperture below -0.5
    shown = ', '.join(str(r + 1) for r in rows[:5]) + (
        ', ...' if len(rows) > 5 else '')
    warnings.warn(f'--positions {args.positions}: row(s) {shown} (the '
                  f'first: {sky_position(lost[rows[0]])}) have no pixel '
                  'position in the WCS (the far side of the sky for its '
                  'projection): measured as off the frame (NaN, flag 1)',
                  AstropyUserWarning, stacklevel=2)
    return xy


def _sky(args, frame, per_row, detector):
    """The sky for the photometry: the whole frame's, or annuli, with the
    gain of the photometry's ``detector`` (``--gain`` or the header: a
    median or clipped mean loses its bias on a Poisson sky)."""
    from ..batch.worker import whole_frame_sky

    if args.sky != 'background2d' and (args.box_size or args.filter_size):
        raise CLIError('--box-size and --filter-size need --sky background2d')
    if args.sky == 'annulus':
        return _annulus_sky(args, frame, per_row, detector)
    if args.annulus is not None:
        raise CLIError('--annulus needs --sky annulus')
    if args.sky == 'background2d':
        return _background2d_sky(args, frame, detector)
    return whole_frame_sky(frame, args.sky, detector)


def _background2d_sky(args, frame, detector):
    """A photutils Background2D map (SExtractor's estimator, 3-sigma
    clipped meshes) on a mesh that fits the frame (`frame_background2d`),
    the frame's mask and non-finite pixels excluded, with the gain of
    ``detector``, less the light of the frame's sources that the clip
    keeps (``data=``)."""
    from ..background.estimators import check_mesh_box
    from ..background.maps import frame_background2d
    from ..background.sky import SkyEstimate
    from ..batch.worker import sky_gain

    ny, nx = frame.shape
    box = args.box_size
    if box is not None:
        try:
            check_mesh_box(box, name='--box-size')
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        if box[0] > ny or box[1] > nx:
            raise CLIError(f'--box-size {box[0]},{box[1]}: larger than the '
                           f'{ny} x {nx} image')
    data = _infinite_as_nan(frame.data)
    try:
        bkg, note = frame_background2d(data, mask=frame.mask, box_size=box,
                                       filter_size=args.filter_size)
    except ValueError as exc:
        raise CLIError(f'--sky background2d: {exc}'.replace(
            '(box_size)', '(--box-size)')) from exc
    sky = SkyEstimate.from_background2d(bkg, gain=sky_gain(frame, detector),
                                        data=data, mask=frame.mask)
    if note is not None:
        sky.meta['mesh_note'] = note
    return sky


def _infinite_as_nan(data):
    """``data`` with its +-inf pixels NaN, as the Background2D map leaves
    them out (no numpy warning of inf - inf), said in one warning; the
    data themselves when none is."""
    import numpy as np
    from astropy.utils.exceptions import AstropyUserWarning

    infinite = np.isinf(data)
    n_inf = int(np.count_nonzero(infinite))
    if not n_inf:
        return data
    warnings.warn(f'{n_inf} pixel(s) of the frame are +-inf: left out of '
                  'the Background2D map as NaN pixels are (the apertures '
                  'holding them are flagged 2)', AstropyUserWarning,
                  stacklevel=2)
    return np.where(infinite, np.nan, data)


def _annulus_sky(args, frame, per_row, detector):
    """Annuli around the apertures (`AnnulusSky`, as ``batch --sky
    annulus``), with the gain of ``detector``."""
    from photutils.aperture import CircularAnnulus

    from ..batch.worker import AnnulusSky

    if args.annulus is not None:
        r_in, r_out = args.annulus
        _fits_frame(CircularAnnulus((0.0, 0.0), r_in, r_out), frame.shape,
                    f'--annulus {r_in:g},{r_out:g}')
    else:
        half_diag = max(getattr(ap, 'r', None)
                        or math.hypot(ap.width, ap.height) / 2
                        for ap in per_row)
        r_in = math.ceil(half_diag) + 2.0
        r_out = r_in + 10.0
    # no aperture light in any annulus: the star's own nor its neighbours'
    return AnnulusSky(r_in, r_out)(frame, per_row, detector=detector)


def _cmd_measure(args):
    if args.output:
        check_output_path(args.output, inputs=[
            (args.image, 'IMAGE'), (args.uncertainty, '--uncertainty'),
            (args.positions, '--positions')])
        output_format(args.output, args.format)  # refuse a mismatch now
    if args.regions:
        check_output_path(args.regions, '--regions', inputs=[
            (args.image, 'IMAGE'), (args.uncertainty, '--uncertainty'),
            (args.positions, '--positions'), (args.output, '-o')])
        try:
            import regions  # noqa: F401
        except ImportError:
            raise CLIError('--regions needs the regions package: pip install '
                           '"ccdphot_ext[regions]"') from None
    if args.plot:
        prepare_dir(args.plot, '--plot')
        from .measure_output import check_plot_names

        check_plot_names(args.plot, [
            (args.output, '-o'), (args.regions, '--regions'),
            (args.image, 'IMAGE'), (args.uncertainty, '--uncertainty'),
            (args.positions, '--positions')])
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise CLIError('--plot needs matplotlib: pip install '
                           '"ccdphot_ext[plot]"') from None
    with output_locks(args.output, args.regions), naming(args.image):
        return _measure(args)


def _measure(args):
    """Measure IMAGE and write what was asked (the outputs checked and
    locked)."""
    import numpy as np

    from ..aperture.skybox import mark_unplaced
    from ..background.sky import SkyEstimate
    from ..background.threshold import SigmaThreshold
    from ..io.header import detector_with_gain
    from ..photometry.table import photometer
    from ..utils.inputs import as_frame
    from .measure_output import (
        measure_plots,
        print_header,
        print_rows,
        print_summary,
        write_regions,
    )

    ccd = read_image(args.image, uncertainty=args.uncertainty, hdu=args.hdu,
                     unit=args.unit, dq_bits=args.dq_bits)
    frame = as_frame(ccd)
    sky_for_find = SkyEstimate.from_image(frame) if args.find else None
    apertures, per_row, ids, box_bits, n_artifacts, unplaced = _apertures(
        args, frame, sky_for_find)
    detector = detector_with_gain(detector_from_args(args), args.gain)
    sky = _sky(args, frame, per_row, detector)
    threshold = (SigmaThreshold(args.threshold) if args.threshold is not None
                 else None)
    table = photometer(
        frame, apertures, sky,
        noise=blank_noise(frame, sky) if args.blank_noise else None,
        threshold=threshold, detector=detector,
        budget=budget_options(args),
        zeropoint=args.zeropoint, flux_unit=args.flux_unit,
        sky_without_apertures=not args.sky_with_apertures)
    mark_unplaced(table, unplaced)
    table['id'] = ids  # the positions' own ids
    table['flags'] |= np.asarray(box_bits, dtype=table['flags'].dtype)
    table.meta['image'] = os.path.abspath(args.image)
    table.meta['hdu'] = frame.meta.get('SCIHDU', '0')  # the HDU measured
    if args.uncertainty:
        table.meta['uncertainty_file'] = os.path.abspath(args.uncertainty)
    table.meta['sky_option'] = args.sky
    if n_artifacts is not None:  # --find: how many left out, or none
        key = ('find_kept_artifacts' if args.keep_artifacts
               else 'find_n_rejected_artifacts')
        table.meta[key] = True if args.keep_artifacts else n_artifacts
    if args.sky == 'background2d':  # the mesh chosen, and why
        table.meta['sky_mesh'] = {
            key: sky.meta[key] for key in (
                'box_size', 'filter_size', 'exclude_percentile',
                'n_excluded_meshes', 'mesh_note', 'source_lift')
            if key in sky.meta}
    done = []  # files first: a closed stdout (| head) must not lose them
    if args.output:
        written, fmt = to_write(table, args.output, args.format)
        note = write_table(written, args.output, fmt)
        done.append(f'wrote     {args.output} ({fmt}, {len(table)} rows'
                    f'{note})')
    if args.regions:
        write_regions(args.regions, per_row, table)
        done.append(f'wrote     {args.regions} (DS9 regions, flagged '
                    'apertures in red)')
    if args.plot:
        paths = measure_plots(table, frame, per_row, sky, threshold, args)
        done.append(f'wrote     {len(paths)} figures to {args.plot}')
    print_header(table, args, frame, sky, sys.stdout, dq=ccd.flags)
    if not args.output:  # with -o the file holds the table
        print_rows(table, sys.stdout, args.max_rows)
    print_summary(table, sys.stdout)
    for line in done:
        print(line)
    return 0


_MEASURE_EPILOG = format_epilog('''\
            examples:
              ccdphot measure frame.fits --box 158:178,492:512
              ccdphot measure frame.fits --box 158:178,492:512 \\
                  --box 240:260,325:345 --threshold 2 -o stars.ecsv
              ccdphot measure frame.fits --positions stars.csv --size 15 \\
                  --sky annulus --annulus 12,20 --gain 2.23 -o out.csv
              ccdphot measure frame.fits --positions image.cat --radius 5 \\
                  --sky background2d --box-size 64 --filter-size 3
              ccdphot measure mef.fits --hdu SCI --unit electron --find
              ccdphot measure frame.fits --find --plot figures/
              ccdphot measure frame.fits --find --regions stars.reg

            --box Y0:Y1,X0:X1 is numpy's image[Y0:Y1, X0:X1] (0-based, stop
            excluded). --positions reads photutils (x_centroid, xcentroid,
            x_center, xcenter, x), Source Extractor/SEP (X_IMAGE, 1-based),
            AstroImageJ (X(FITS), 1-based) or RA/Dec columns (with the
            image's WCS); its id column is kept. Stars from --positions
            and --find get boxes of --size W[,H] (default 20 pixels) or
            circles of --radius R; the suggested boxes of a ccdphot find
            table (and of --find) are used unless --size/--radius is given.
            With -o, stdout gets a summary (rows, flags, median SNR), not
            the table.
            ''')


def _add_sky_options(p):
    """--sky and the options of its annulus and Background2D choices."""
    p.add_argument('--sky', choices=(*SKY_CHOICES, 'background2d'),
                   default='sigma_clip',
                   help='sky estimate (default sigma_clip over the frame; '
                        'background2d: a photutils Background2D map)')
    p.add_argument('--annulus', metavar='RIN,ROUT', type=pair_type,
                   help='annulus radii for --sky annulus (default: 2 '
                        'pixels beyond the aperture corner, 10 pixels wide)')
    p.add_argument('--box-size', metavar='N[,NX]', type=mesh_type,
                   help='--sky background2d: mesh size in pixels, one '
                        'side or NY,NX (default 64, cut to the frame)')
    p.add_argument('--filter-size', metavar='N[,NX]', type=mesh_type,
                   help='--sky background2d: median filter of the mesh, '
                        'in meshes (default 3)')
    add_sky_with_apertures_option(p)


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
        epilog=_MEASURE_EPILOG)
    p.add_argument('image', metavar='IMAGE', help='processed FITS frame')
    add_frame_options(p)
    p.add_argument('--uncertainty', metavar='FILE', type=path_type,
                   help='FITS per-pixel uncertainty map (wins over UNCERT): '
                        'a 1-sigma map, or a variance by its UTYPE card or '
                        'a BUNIT of the data unit squared; in the data '
                        'unit (its BUNIT, if any, is checked)')
    add_uncertainty_model_option(p)
    p.add_argument('--box', metavar='Y0:Y1,X0:X1', type=box_type,
                   action='append', help='a box (repeat for more)')
    p.add_argument('--positions', metavar='TABLE', type=path_type,
                   help='table of star positions (ECSV, CSV, FITS, Source '
                        'Extractor .cat, AstroImageJ, VOTable ...)')
    add_positions_format(p)
    p.add_argument('--positions-frame', metavar='FRAME', type=sky_frame_type,
                   help='celestial frame of the longitude/latitude columns '
                        'of --positions (an astropy frame: icrs, fk5, '
                        'galactic, supergalactic, ...; default from the '
                        'column names or UCDs: ra/dec ICRS, l/b and '
                        'GLON/GLAT galactic)')
    shape = p.add_mutually_exclusive_group()
    shape.add_argument('--size', metavar='W[,H]', type=size_type,
                       help='box size for --positions/--find (default 20)')
    shape.add_argument('--radius', metavar='R', type=positive_type,
                       help='circular apertures of radius R pixels for '
                            '--positions/--find')
    p.add_argument('--find', action='store_true',
                   help='find the stars (ccdphot_ext.find_stars)')
    p.add_argument('--find-n-sigma', metavar='N', type=positive_type,
                   default=5.0, help='detection threshold for --find '
                                     '(default 5)')
    add_keep_artifacts_option(p)
    _add_sky_options(p)
    p.add_argument('--threshold', metavar='NSIG', type=positive_type,
                   help='keep only pixels above NSIG sky sigma')
    p.add_argument('--blank-noise', action='store_true',
                   help='sky term from blank-sky apertures (for correlated '
                        'noise; see ApertureNoise)')
    add_fractional_variance_option(p)
    add_detector_options(p)
    add_output_options(p)
    p.add_argument('--regions', metavar='OUT.reg', type=path_type,
                   help='write the apertures as DS9 regions: ids as labels, '
                        'unflagged green, flagged red with their flags')
    p.add_argument('--plot', metavar='DIR', type=path_type,
                   help='write PNG figures here (needs matplotlib)')
    p.add_argument('--plot-stars', metavar='N', type=positive_int_type,
                   default=5, help='one-page figures for the N rows of '
                                   'highest SNR (default 5)')
    p.set_defaults(func=_cmd_measure)


def add_parsers(sub, common):
    """
    Add the ``measure`` and ``find`` subcommands to ``sub``.

    Parameters
    ----------
    sub : argparse subparsers action
        What ``add_subparsers`` of the ``ccdphot`` parser returned.
    common : `argparse.ArgumentParser`
        A parent parser holding the options every subcommand takes
        (``--debug``).
    """
    from .find import add_parser as _add_find

    _add_measure(sub, common)
    _add_find(sub, common)
