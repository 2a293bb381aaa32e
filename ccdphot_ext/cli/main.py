# Licensed under a 3-clause BSD style license - see LICENSE
"""
The ``ccdphot`` command.

Exit codes: 0 success, 2 bad input or usage, 1 any other failure. Errors are
one line on stderr naming the problem; ``--debug`` shows the traceback.
Output files are written atomically (a temporary file in the same folder,
then renamed), so a failed run never leaves a half-written or lost file.
"""

import argparse
import errno
import os
import sys
import warnings

from . import batch as _cli_batch
from . import measure as _cli_measure
from .common import (
    CLIError,
    Parser,
    bad_input_types,
    format_epilog,
    path_type,
    prepare_dir,
)

__all__ = ['main', 'CLIError']


# -- demo ------------------------------------------------------------------

def _cmd_demo(args):
    from .demo import run_demo
    if args.outdir is not None:
        prepare_dir(args.outdir, '--outdir')
    worst = run_demo(sys.stdout, outdir=args.outdir)
    if worst > 1e-10:
        raise RuntimeError(f'package and numpy disagree by {worst:.1e}')
    return 0


# -- parser ----------------------------------------------------------------

def build_parser():
    """The argument parser with every subcommand."""
    parser = Parser(
        prog='ccdphot',
        description='CCD aperture photometry with a term-by-term error '
                    'budget.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=format_epilog('''\
            examples:
              ccdphot demo
              ccdphot demo --outdir demo_out
              ccdphot measure frame.fits --box 158:178,492:512 -o out.ecsv
              ccdphot find frame.fits -o stars.ecsv
              ccdphot measure frame.fits --positions stars.ecsv -o phot.ecsv
              ccdphot measure image.fits --positions image.cat --radius 5 \\
                  --sky background2d --regions stars.reg
              ccdphot measure mef.fits --hdu SCI --unit electron --find

            exit codes: 0 success, 2 bad input or usage, 1 other failure
            (a full disk included).
            '''))
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback on errors')
    from ..utils.provenance import PACKAGE_VERSION
    parser.add_argument('--version', action='version',
                        version=f'ccdphot_ext {PACKAGE_VERSION}')
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--debug', action='store_true',
                        default=argparse.SUPPRESS,
                        help='show the full traceback on errors')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')

    demo = sub.add_parser(
        'demo', parents=[common],
        help='the notebook walk-through on the bundled sample frame',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Walk the photometry notebook on the bundled sample '
                    'frame, printing each number beside plain numpy.',
        epilog=format_epilog('''\
            examples:
              ccdphot demo
              ccdphot demo --outdir demo_out   # also FITS/ECSV files, PNGs
            '''))
    demo.add_argument('--outdir', metavar='DIR', type=path_type,
                      help='write the sample frame, tables and figures here')
    demo.set_defaults(func=_cmd_demo)
    _cli_measure.add_parsers(sub, common)
    _cli_batch.add_parser(sub, common)
    return parser


def _one_line_warnings(command):
    """A ``showwarning`` printing each distinct warning once, on one
    line (a header problem seen by every step is said once)."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message).replace('\n', ' ')
        if text in seen:
            return
        seen.add(text)
        try:
            print(f'ccdphot {command}: warning: {text}', file=sys.stderr)
        except (OSError, ValueError):  # stderr closed: the work goes on
            pass
    return show


#: Errors of the machine, not of the input: a full disk or quota, a file
#: too large for the file system, an I/O error. The command fails (exit 1).
_FAILURE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG,
                             errno.EIO})


def _silence_stdout():
    """Point stdout at /dev/null so the exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file
        pass


def _memory_note(args):
    """' on IMAGE (its size)' for an out-of-memory message."""
    from ..io.fitsfile import frame_size

    image = getattr(args, 'image', None)
    if image is None:
        return ''
    size = frame_size(image)
    return f' on {image}' + (f' ({size})' if size else '')


def main(argv=None):
    """
    Run the ``ccdphot`` command.

    Warnings are printed one line each, once, on standard error; errors are
    printed as ``ccdphot COMMAND: error: ...`` (a bad input) or
    ``... failed: ...`` (anything else) instead of a traceback, unless
    ``--debug`` is given.

    Parameters
    ----------
    argv : list of str, optional
        The command-line arguments after the program name, e.g.
        ``['measure', 'frame.fits', '--box', '158:178,492:512']``; None
        (default): ``sys.argv[1:]``.

    Returns
    -------
    code : int
        The exit status: 0 on success (and for ``--help``), 1 when the
        work failed or was interrupted, 2 for a usage error or a bad input
        (a subcommand may return its own status).

    Examples
    --------
    A usage error returns 2 (argparse's message goes to standard error):

    >>> from ccdphot_ext.cli.main import main
    >>> main(['measure'])
    2
    """
    # astropy's logger replaces warnings.showwarning when first imported:
    # import it (every subcommand needs it) before installing ours.
    import astropy  # noqa: F401
    parser = build_parser()
    # what reading an option warns (--unit MJY/SR) is said with the rest
    with warnings.catch_warnings(record=True) as early:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # argparse: usage errors exit 2, --help 0
            return exc.code if isinstance(exc.code, int) else 2
    if getattr(args, 'func', None) is None:
        parser.print_help(sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warnings(args.command)
        for said in early:
            warnings.showwarning(said.message, said.category, said.filename,
                                 said.lineno)
        try:
            code = args.func(args)
            sys.stdout.flush()  # a closed pipe shows here, not at exit
            return code
        except KeyboardInterrupt:
            print('ccdphot: interrupted', file=sys.stderr)
            return 1
        except BrokenPipeError:  # stdout closed by the reader (| head)
            _silence_stdout()
            return 0
        except bad_input_types() as exc:
            if args.debug:
                raise
            text = str(exc).splitlines()[0] if str(exc) else type(
                exc).__name__
            if getattr(exc, 'errno', None) in _FAILURE_ERRNOS:
                # the machine failed (a full disk), not the input
                print(f'ccdphot {args.command}: failed: {text}',
                      file=sys.stderr)
                return 1
            print(f'ccdphot {args.command}: error: {text}', file=sys.stderr)
            return 2
        except MemoryError:
            if args.debug:
                raise
            print(f'ccdphot {args.command}: failed: out of memory'
                  f'{_memory_note(args)}', file=sys.stderr)
            return 1
        except Exception as exc:
            if args.debug:
                raise
            text = str(exc).splitlines()[0] if str(exc) else ''
            print(f'ccdphot {args.command}: failed: {type(exc).__name__}: '
                  f'{text}', file=sys.stderr)
            return 1


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
