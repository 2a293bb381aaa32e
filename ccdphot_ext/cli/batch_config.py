# Licensed under a 3-clause BSD style license - see LICENSE
"""
The measuring configuration of a ``ccdphot batch`` command line: its
positions, apertures, sky and options checked and built into the
`~ccdphot_ext.batch.worker.FrameConfig` every frame is measured with.
The command builds it, and so do the Dask workers that measure the
frames ``ccdphot batch --scheduler`` sends before its own checks
(`ccdphot_ext.cli.batch_early`).
"""

from .common import (
    CLIError,
    budget_options,
    detector_from_args,
    positions_flags,
    read_positions_table,
)

__all__ = []  # internal module


def pixel_positions(args):
    """The --positions table, in pixels: a batch places the same x/y on
    every frame, so a table of sky positions is refused saying how to
    convert it."""
    return read_positions_table(
        args.positions, format=args.positions_format, without_wcs=(
            'the table gives sky positions, but ccdphot batch measures the '
            'same pixel positions (x, y) on every frame: convert them with '
            'the WCS of a reference frame first (the x_center/y_center '
            'columns of ccdphot measure FRAME --positions TABLE -o '
            'pixels.ecsv)'))


def batch_sky(args):
    """The sky of ``--sky`` (and ``--annulus``)."""
    from ..batch import AnnulusSky

    if args.sky == 'annulus':
        if args.annulus is None:
            raise CLIError('--sky annulus needs --annulus RIN,ROUT')
        return AnnulusSky(*args.annulus)
    if args.annulus is not None:
        raise CLIError('--annulus needs --sky annulus')
    return args.sky


def aperture_layout(args, xy):
    """The layout of the command line's circles or boxes at ``xy``: built
    (photutils) only where this process measures frames."""
    from ..batch.layout import ApertureLayout

    if args.radius is not None:
        return ApertureLayout.circles(xy, args.radius)
    width, height = args.size
    return ApertureLayout.boxes(xy, width, height)


def check_first_frame(args, first, layout, sky):
    """A --hdu the first frame lacks, apertures or annuli far larger than
    that frame, are refused before any work, naming their option (when
    that frame can be read)."""
    from ..io.fitsfile import hdu_problem, image_shape

    problem = hdu_problem(first, args.hdu)
    if problem:  # every frame would fail the same way
        raise CLIError(f'--hdu {args.hdu}: {problem} (the first frame)')
    shape = image_shape(first, hdu=args.hdu)
    if shape is None:
        return
    option = (f'--radius {args.radius:g}' if args.radius is not None
              else f'--size {args.size[0]:g},{args.size[1]:g}')
    try:
        layout.check_extent(shape, option)
        if args.sky == 'annulus':
            sky.check_extent(shape)
    except ValueError as exc:
        text = str(exc)
        if args.sky == 'annulus':
            text = text.replace('sky annulus', f'--annulus {args.annulus[0]:g}'
                                f',{args.annulus[1]:g}')
        raise CLIError(f'{text} (the first frame, {first})') from None


def measuring_config(args, layout, sky, pos):
    """`photometer_frames`' measuring arguments from the command line,
    checked: the `~ccdphot_ext.batch.worker.FrameConfig` and the ids
    (those of the positions table ``pos``, whose own flags every frame's
    rows get, as ``ccdphot measure`` gives them: `positions_flags`).
    The threshold's and the re-centring's modules (which import
    photutils) are loaded only when those options are given."""
    from dataclasses import replace

    import numpy as np

    from ..batch import FrameReading
    from ..batch.frames import configure

    threshold = recenter = None
    if args.threshold is not None:
        from ..background.threshold import SigmaThreshold

        threshold = SigmaThreshold(args.threshold)
    if args.recenter is not None:
        from ..detection.recenter import Recentering

        recenter = Recentering(centroid=args.recenter,
                               box_size=args.recenter_box)
    ids = np.asarray(pos['id'])
    config, ids = configure(
        layout, sky, ids, gain=args.gain, threshold=threshold,
        detector=detector_from_args(args), budget=budget_options(args),
        zeropoint=args.zeropoint, flux_unit=args.flux_unit,
        recenter=recenter,
        sky_without_apertures=not args.sky_with_apertures,
        reading=FrameReading(hdu=args.hdu, unit=args.unit,
                             dq_bits=args.dq_bits))
    flags = positions_flags(pos)
    return replace(config, row_flags=tuple(flags.tolist())
                   if flags.any() else (),
                   frame_timeout=args.frame_timeout), ids


def frame_configuration(args, first):
    """
    The `~ccdphot_ext.batch.worker.FrameConfig` every frame of the command
    line ``args`` is measured with, and the star ids: what a Dask worker
    builds for the tasks ``ccdphot batch --scheduler`` sends before its own
    checks (`ccdphot_ext.cli.batch_early`), as the command builds it. What
    the command refuses before measuring with it (an HDU that frame
    ``first`` lacks, apertures far larger than it) is refused here too.
    """
    import numpy as np

    pos = pixel_positions(args)
    xy = np.column_stack([pos['x_center'], pos['y_center']])
    sky = batch_sky(args)
    layout = aperture_layout(args, xy)
    check_first_frame(args, first, layout, sky)
    return measuring_config(args, layout, sky, pos)
