# Licensed under a 3-clause BSD style license - see LICENSE
"""
The ``ccdphot`` command.

Exit codes: 0 success, 2 bad input or usage, 1 any other failure. Errors are
one line on stderr naming the problem; ``--debug`` shows the traceback.
"""

import argparse
import sys
import textwrap

import astropy.units as u

__all__ = ['main', 'CLIError']


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


_BAD_INPUT = (CLIError, ValueError, TypeError, u.UnitsError, OSError,
              KeyError)


def _cmd_demo(args):
    from .demo import run_demo
    worst = run_demo(sys.stdout, outdir=args.outdir)
    if worst > 1e-10:
        raise RuntimeError(f'package and numpy disagree by {worst:.1e}')
    return 0


def build_parser():
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog='ccdphot',
        description='CCD aperture photometry with a term-by-term error '
                    'budget.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent('''\
            examples:
              ccdphot demo
              ccdphot demo --outdir demo_out
            '''))
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback on errors')
    from . import __version__
    parser.add_argument('--version', action='version',
                        version=f'ccdphot_ext {__version__}')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')

    demo = sub.add_parser(
        'demo', help='the notebook walk-through on the bundled sample frame',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Walk the photometry notebook on the bundled sample '
                    'frame, printing each number beside plain numpy.',
        epilog=textwrap.dedent('''\
            examples:
              ccdphot demo
              ccdphot demo --outdir demo_out   # also write FITS/ECSV files
            '''))
    demo.add_argument('--outdir', metavar='DIR',
                      help='write the sample frame and tables here')
    demo.set_defaults(func=_cmd_demo)
    return parser




def main(argv=None):
    """Run the ``ccdphot`` command; return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors exit 2, --help 0
        return exc.code if isinstance(exc.code, int) else 2
    if getattr(args, 'func', None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print('ccdphot: interrupted', file=sys.stderr)
        return 1
    except _BAD_INPUT as exc:
        if args.debug:
            raise
        print(f'ccdphot {args.command}: error: {exc}', file=sys.stderr)
        return 2
    except Exception as exc:
        if args.debug:
            raise
        print(f'ccdphot {args.command}: failed: {type(exc).__name__}: {exc}',
              file=sys.stderr)
        return 1


if __name__ == '__main__':  # pragma: no cover
    sys.exit(main())
