# Licensed under a 3-clause BSD style license - see LICENSE
"""
``ccdphot batch``: light curves over many frames (registered by
`ccdphot_ext.cli`).

Exit codes: 0 every frame measured; 1 the output was written but some
frames failed (their rows have ``status == 'failed'``; ``--resume`` retries
them); 2 bad input or usage (nothing written).
"""

import argparse
import atexit
import gc
import logging
import os
import sys
import textwrap
import warnings
from contextlib import contextmanager

from .batch_config import (
    aperture_layout,
    batch_sky,
    check_first_frame,
    measuring_config,
    pixel_positions,
)
from .common import (
    SKY_CHOICES,
    CLIError,
    add_detector_options,
    add_dq_bits_option,
    add_fractional_variance_option,
    add_positions_format,
    add_sky_with_apertures_option,
    add_uncertainty_model_option,
    add_unit_option,
    check_output_path,
    hdu_type,
    output_locks,
    pair_type,
    path_type,
    positive_int_type,
    positive_type,
    replacing_note,
    size_type,
    write_table,
)

__all__ = ['add_parser']


def _ids(text):
    try:
        ids = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a comma-separated list of star ids') from None
    if not ids:
        raise argparse.ArgumentTypeError('no star id given')
    return ids


def _frame_paths(args):
    paths = list(args.frames)
    if args.frame_list is not None:
        paths += _frame_list(args.frame_list)
    if not paths:
        raise CLIError('no frames given (FRAME arguments or --frame-list)')
    return paths


def _frame_list(path):
    """The frame paths of a ``--frame-list`` file (or pipe): one per line,
    UTF-8 (a byte-order mark is dropped), blank lines and ``#`` comments
    skipped; a binary file (or a FITS frame given by mistake) is refused."""
    option = f'--frame-list {path}'
    try:
        with open(path, 'rb') as fh:
            content = fh.read()
    except OSError as exc:
        raise CLIError(f'{option}: cannot read ({exc.strerror})') from exc
    if content.startswith(b'SIMPLE  ='):
        raise CLIError(f'{option}: is a FITS file, not a list of frame '
                       'paths (give the frames as FRAME arguments)')
    if b'\0' in content:
        raise CLIError(f'{option}: holds NUL bytes (a binary file?), not a '
                       'list of frame paths, one per line')
    try:
        text = content.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        raise CLIError(f'{option}: not a UTF-8 text file (the byte at '
                       f'offset {exc.start} is not UTF-8); give one frame '
                       'path per line') from None
    lines = [ln.strip() for ln in text.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith('#')]








def _check_star_ids(args, ids):
    """--targets and --comparisons name stars of --positions, once each."""
    known = {int(i) for i in ids}
    for option, chosen in (('--targets', args.targets),
                           ('--comparisons', args.comparisons)):
        unknown = sorted(set(chosen) - known)
        if unknown:
            raise CLIError(f'{option}: no star with id '
                           f'{", ".join(map(str, unknown))} in --positions '
                           f'{args.positions}')
        if len(set(chosen)) != len(chosen):
            raise CLIError(f'{option}: an id is given twice')
    both = sorted(set(args.targets) & set(args.comparisons))
    if both:
        raise CLIError(f'--comparisons must not include the targets (id '
                       f'{", ".join(map(str, both))})')






def _cmd_batch(args):
    from .batch_early import early_tasks

    if args.differential is not None and args.targets is None:
        raise CLIError('--differential needs --targets and --comparisons '
                       '(the stars of the differential table)')
    frames = _frame_paths(args)
    # on a running cluster, the frames go out now, and are measured while
    # this process imports the rest and checks every argument
    with _quiet_dask(args), early_tasks(args, frames) as early:
        return _checked_run(args, frames, early)


def _checked_run(args, frames, early):
    """Check every argument (``early``: the tasks already sent, cancelled
    when one is refused), then run."""
    import numpy as np

    pos = pixel_positions(args)
    xy = np.column_stack([pos['x_center'], pos['y_center']])
    ids = np.asarray(pos['id'])
    inputs = [(f, 'FRAME') for f in frames] + [
        (args.positions, '--positions'), (args.frame_list, '--frame-list')]
    check_output_path(args.output, inputs=inputs, light_curve_ok=True)
    sky = batch_sky(args)
    layout = aperture_layout(args, xy)
    check_first_frame(args, frames[0], layout, sky)
    diff_out = None
    if args.targets is not None or args.comparisons is not None:
        if args.targets is None or args.comparisons is None:
            raise CLIError('--targets and --comparisons go together')
        _check_star_ids(args, ids)
        diff_out = args.differential or (
            os.path.splitext(args.output)[0] + '_diff.ecsv')
        check_output_path(diff_out, '--differential',
                          inputs=[*inputs, (args.output, '-o')])
    resume = None
    if args.resume:
        if os.path.exists(args.output):
            resume = args.output
        else:
            print(f'ccdphot batch: {args.output} does not exist yet; '
                  'measuring every frame', file=sys.stderr)
    _no_collection_at_exit()
    with output_locks(diff_out):
        return _run(args, frames, layout, sky, pos, resume, diff_out,
                    early)


_EXIT_FREEZE = []


def _no_collection_at_exit():
    """
    At the process's exit, move every object out of the garbage
    collector's reach (`gc.freeze`) before Python's last collections: with
    numpy, astropy, photutils (and Dask) imported, those walk hundreds of
    thousands of objects, 0.3-0.5 s after the output is written, for
    memory the process gives back anyway. Registered once, and run only
    when the process ends (a program that runs the command in-process
    keeps its collector).
    """
    if not _EXIT_FREEZE:
        atexit.register(gc.freeze)
        _EXIT_FREEZE.append(True)


@contextmanager
def _quiet_dask(args):
    """
    No log lines from Dask on stderr while the frames run on it: a lost
    scheduler or worker is reported by the run (the frames it cost fail
    with the reason; one line here), not by tracebacks from
    ``distributed``.
    """
    if args.workers is None and args.scheduler is None:
        yield
        return
    try:
        import distributed  # noqa: F401  (its loggers exist once imported)
    except ImportError:  # photometer_frames says what to install
        yield
        return
    names = ['distributed', 'tornado', 'asyncio'] + [
        name for name in logging.root.manager.loggerDict
        if name.startswith('distributed.')]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.CRITICAL + 10)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _run(args, frames, layout, sky, pos, resume, diff_out, early):
    """Measure the frames (every option checked) and write the tables."""
    from ..batch import FramesNotMeasuredWarning

    # a previous table not resumed is replaced: the summary line says so
    replaced = '' if resume else replacing_note(args.output)
    with warnings.catch_warnings():
        # said once, with its reason, in the summary line below
        warnings.simplefilter('ignore', FramesNotMeasuredWarning)
        table = _measure(args, frames, layout, sky, pos, resume, early)
    meta = table.meta
    run = meta['last_run']
    print(f'ccdphot batch: {meta["n_frames"]} frames, {len(table)} rows -> '
          f'{args.output} ({run["frames_measured"]} measured now, '
          f'{run["execution"]}, {run["seconds"]:.1f} s{replaced})')
    if diff_out is not None:
        from ..analysis.differential import differential_photometry
        diff = differential_photometry(table, args.targets, args.comparisons,
                                       weighting=args.weighting)
        # replaced with a note, as -o (write_table: the one policy)
        replaced = write_table(diff, diff_out, 'ecsv',
                               option='--differential')
        print(f'ccdphot batch: differential photometry of {args.targets} '
              f'against {args.comparisons} -> {diff_out}{replaced}')
    if meta['n_failed']:
        print(f'ccdphot batch: {meta["n_failed"]} of {meta["n_frames"]} '
              f"frames failed{_common_reason(meta)} (status 'failed' in the "
              "table); --resume retries them", file=sys.stderr)
        return 1
    return 0


def _common_reason(meta):
    """': N not measured: REASON' when the execution stopped (the Dask
    scheduler died, no worker was left): no other line says it."""
    stopped = [entry['error'] for entry in meta['failures']
               if entry['error'].startswith(('lost the Dask scheduler',
                                             'no Dask worker left'))]
    if not stopped:
        return ''
    return f'; {len(stopped)} not measured: {stopped[0]}'



#: How the errors of `photometer_frames` about ``resume_from`` begin.
RESUME_PREFIX = 'resume_from: '


def _measure(args, frames, layout, sky, pos, resume, early):
    """`photometer_frames` with the options of the command line at the
    positions ``pos`` (its frames sent already when ``early`` holds their
    tasks)."""
    from ..batch import BatchExecution
    from ..batch.frames import check_frames, measure_configured

    frames, names = check_frames(frames)
    config, ids = measuring_config(args, layout, sky, pos)
    try:
        return measure_configured(
            frames, names, config, ids, output=args.output,
            resume_from=resume, execution=BatchExecution(
                workers=args.workers, scheduler=args.scheduler,
                timeout=args.dask_timeout,
                checkpoint_interval=args.checkpoint,
                progress=False if args.quiet else None,
                frame_timeout=args.frame_timeout),
            submitted=early)
    except ValueError as exc:  # the API's parameter is the command's flag
        if not str(exc).startswith(RESUME_PREFIX):
            raise
        raise CLIError(f'--resume: {str(exc)[len(RESUME_PREFIX):]}') from None




def add_parser(subparsers, common=None):
    """
    Register ``ccdphot batch`` on the ``ccdphot`` subparsers.

    Parameters
    ----------
    subparsers : argparse subparsers action
        What ``add_subparsers`` of the ``ccdphot`` parser returned.
    common : `argparse.ArgumentParser`, optional
        A parent parser holding the options every subcommand takes
        (``--debug``); None (default): none.

    Returns
    -------
    parser : `argparse.ArgumentParser`
        The ``batch`` subcommand's parser.
    """
    p = subparsers.add_parser(
        'batch', parents=[common] if common is not None else [],
        help='light curves: the same apertures on many frames',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(
            'Measure the same stars on many FITS frames (serially, on a '
            'local Dask cluster, or on a running one) into one light-curve '
            'table: frame, time (MJD-OBS or DATE-OBS), star id and every '
            'photometry column. A bad frame is reported and never stops the '
            'run; the output is written atomically and checkpointed, and '
            '--resume continues an interrupted run.', 79),
        epilog=textwrap.dedent('''\
            examples:
              ccdphot batch night1/*.fits --positions stars.ecsv --size 15 \\
                  -o lc.ecsv
              ccdphot batch --frame-list frames.txt --positions stars.ecsv \\
                  --radius 6 --sky annulus --annulus 10,16 --recenter \\
                  --workers 2 -o lc.ecsv --resume
              ccdphot batch *.fits --positions stars.ecsv --size 15,15 \\
                  --scheduler tcp://10.0.0.5:8786 -o lc.ecsv \\
                  --targets 1 --comparisons 2,3,4

            exit codes: 0 all frames measured, 1 some frames failed (the
            output is written) or the output could not be written (a full
            disk: the last checkpoint is kept; rerun with --resume), 2 bad
            input or usage.
            '''))
    _add_inputs(p)
    _add_run_options(p)
    _add_measure_options(p)
    p.set_defaults(func=_cmd_batch)
    return p


def _add_inputs(p):
    """Frames, positions, output, apertures, sky and recentring."""
    p.add_argument('frames', nargs='*', metavar='FRAME',
                   help='FITS frames (a 2-D image; UNCERT/MASK extensions '
                        'are used)')
    p.add_argument('--frame-list', metavar='FILE', type=path_type,
                   help='a text file with one frame path per line')
    p.add_argument('--positions', metavar='TABLE', required=True, type=path_type,
                   help='positions table (photutils, ccdphot find, Source '
                        'Extractor, AstroImageJ ... columns) and optional id')
    add_positions_format(p)
    p.add_argument('-o', '--output', metavar='OUT.ecsv', required=True, type=path_type,
                   help='the light-curve table (ECSV)')
    shape = p.add_mutually_exclusive_group(required=True)
    shape.add_argument('--size', metavar='W[,H]', type=size_type,
                       help='box apertures W x H pixels')
    shape.add_argument('--radius', metavar='R', type=positive_type,
                       help='circular apertures of radius R pixels')
    p.add_argument('--sky', choices=SKY_CHOICES, default='sigma_clip',
                   help='sky per frame: whole-frame estimator or annulus '
                        '(default sigma_clip)')
    p.add_argument('--annulus', metavar='RIN,ROUT', type=pair_type,
                   help='annulus radii for --sky annulus')
    add_sky_with_apertures_option(p)
    p.add_argument('--recenter', nargs='?', const='com',
                   choices=('com', '2dg'),
                   help='re-centre each aperture on each frame (centroid '
                        'method, default com)')
    p.add_argument('--recenter-box', metavar='N', type=positive_int_type,
                   default=11, help='centroid box side (default 11)')


def _add_run_options(p):
    """Where the frames run (Dask), resume and checkpoints."""
    run = p.add_mutually_exclusive_group()
    run.add_argument('--workers', metavar='N', type=positive_int_type,
                     help='start a local Dask cluster of N processes')
    run.add_argument('--scheduler', metavar='ADDRESS',
                     help='use a running Dask scheduler (tcp://host:port)')
    p.add_argument('--resume', action='store_true',
                   help='keep the frames already measured in OUT.ecsv')
    p.add_argument('--dask-timeout', metavar='SECONDS', type=positive_type,
                   default=60.0,
                   help='with --workers/--scheduler: wait this long for the '
                        'scheduler, or for a worker when none is left, '
                        'before the frames not yet measured fail (default '
                        '60)')
    p.add_argument('--checkpoint', metavar='SECONDS', type=positive_type,
                   default=60.0,
                   help='rewrite OUT.ecsv this often while running '
                        '(default 60)')
    p.add_argument('--frame-timeout', metavar='SECONDS',
                   type=positive_type, default=600.0,
                   help='a frame not read and measured in this time fails '
                        '(and the run goes on; default 600)')


def _add_measure_options(p):
    """Detector, threshold and differential-photometry options."""
    p.add_argument('--hdu', metavar='HDU', type=hdu_type,
                   help='image HDU (index or name; default the first image)')
    add_unit_option(p)
    add_dq_bits_option(p, 'a frame has')
    add_detector_options(p)
    add_uncertainty_model_option(p)
    add_fractional_variance_option(p)
    p.add_argument('--threshold', type=positive_type, metavar='NSIG',
                   help='sum only pixels above NSIG sky sigmas')
    p.add_argument('--targets', type=_ids, metavar='IDS',
                   help='differential photometry: target star ids (1,5)')
    p.add_argument('--comparisons', type=_ids, metavar='IDS',
                   help='differential photometry: comparison star ids')
    p.add_argument('--weighting', choices=('sum', 'inverse_variance'),
                   default='sum', help='ensemble weighting (default sum)')
    p.add_argument('--differential', metavar='OUT.ecsv', type=path_type,
                   help='differential table (default OUT_diff.ecsv)')
    p.add_argument('-q', '--quiet', action='store_true',
                   help='no progress lines')
