# Licensed under a 3-clause BSD style license - see LICENSE
"""
Shared pieces of the ``ccdphot`` subcommands: errors, argument types,
reading inputs and writing outputs.

Exit codes: 0 success, 2 bad input or usage, 1 any other failure. Errors are
one line on stderr naming the problem; ``--debug`` shows the traceback.
Output files are written atomically (a temporary file in the same folder,
then renamed), so a failed run never leaves a half-written or lost file.
"""

import argparse
import math
import os
import tempfile
import textwrap
import warnings

import astropy.units as u
import numpy as np
from astropy.nddata import StdDevUncertainty

__all__ = ['CLIError', 'SKY_CHOICES']


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


#: ``--sky`` choices of the subcommands that measure (annulus: local sky).
SKY_CHOICES = ('sigma_clip', 'mean', 'median', 'annulus')

_BAD_INPUT = (CLIError, ValueError, TypeError, u.UnitsError, OSError,
              KeyError)

_FORMATS = {'ecsv': 'ascii.ecsv', 'csv': 'ascii.csv'}

class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit code 2."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message}\n')


# -- argument types (their messages name the problem; argparse adds the
# -- option name) ------------------------------------------------------------

def _number(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}') from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be finite, got {text!r}')
    return value


def _positive(text):
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be positive, got {text!r}')
    return value


def _non_negative(text):
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(
            f'must be zero or positive, got {text!r}')
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'not an integer: {text!r}') from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be positive, got {text!r}')
    return value


def _box(text):
    """``Y0:Y1,X0:X1`` -> ``np.s_[y0:y1, x0:x1]`` (frame checked later)."""
    parts = text.split(',')
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not Y0:Y1,X0:X1 (two ranges separated by a comma)')
    slices = []
    for axis, part in zip('yx', parts, strict=True):
        bounds = part.split(':')
        if len(bounds) == 3:
            raise argparse.ArgumentTypeError(
                f'{text!r}: a step ({part!r}) is not allowed; a box is '
                'every pixel of Y0:Y1,X0:X1')
        if len(bounds) != 2:
            raise argparse.ArgumentTypeError(
                f'{text!r}: the {axis} range {part!r} is not START:STOP')
        try:
            start, stop = (int(b) for b in bounds)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'{text!r}: the {axis} range {part!r} needs integer pixel '
                'indices') from None
        if start < 0 or stop < 0:
            raise argparse.ArgumentTypeError(
                f'{text!r}: negative pixel index in the {axis} range')
        if stop <= start:
            raise argparse.ArgumentTypeError(
                f'{text!r}: the {axis} range {part!r} is empty or reversed '
                '(STOP must exceed START)')
        slices.append(slice(start, stop))
    return tuple(slices)


def _size(text):
    parts = text.split(',')
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f'{text!r} is not W or W,H')
    values = [_positive(p) for p in parts]
    return (values[0], values[-1])


def _pair(text):
    parts = text.split(',')
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f'{text!r} is not RIN,ROUT')
    r_in, r_out = (_non_negative(p) for p in parts)
    if r_out <= r_in:
        raise argparse.ArgumentTypeError(
            f'{text!r}: ROUT must exceed RIN')
    return r_in, r_out


# -- files -----------------------------------------------------------------

def _read_image(path, what='IMAGE', *, uncertainty=None):
    """
    Read a 2-D FITS frame with `ccdphot_ext.io.fits.read_frame` (its UNCERT and
    MASK extensions included). ``uncertainty``, a FITS file holding a 1-sigma
    map, wins over them. Every problem with a file is a one-line `CLIError`.
    """
    from ..io.fits import FrameReadError, read_frame

    sigma = None
    if uncertainty is not None:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='.*BUNIT')
            sigma = _read_image(uncertainty, '--uncertainty').data
    try:
        frame = read_frame(path)
    except FrameReadError as exc:
        raise CLIError(f'{what} {str(exc).splitlines()[0]}') from exc
    if sigma is not None:
        if sigma.shape != frame.shape:
            raise CLIError(f'--uncertainty {uncertainty}: shape {sigma.shape}'
                           f' does not match the image shape {frame.shape}')
        frame.uncertainty = StdDevUncertainty(np.asarray(sigma, dtype=float))
    return frame


def _read_positions(path):
    """x, y arrays from an ECSV/CSV/FITS table (x_center/y_center or x/y)."""
    from astropy.table import Table

    label = f'--positions {path}'
    if not os.path.exists(path):
        raise CLIError(f'{label}: no such file')
    if os.path.isdir(path) or os.path.getsize(path) == 0:
        raise CLIError(f'{label}: not a table (empty file or a directory)')
    ext = os.path.splitext(path)[1].lower()
    fmt = {'.ecsv': 'ascii.ecsv', '.csv': 'ascii.csv', '.fits': 'fits',
           '.fit': 'fits'}.get(ext, 'ascii')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            table = Table.read(path, format=fmt)
    except Exception as exc:  # astropy raises many kinds for bad tables
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CLIError(f'{label}: cannot read the table ({reason})') from exc
    for xname, yname in (('x_center', 'y_center'), ('x', 'y'),
                         ('xcentroid', 'ycentroid')):
        if xname in table.colnames and yname in table.colnames:
            break
    else:
        raise CLIError(f'{label}: needs x_center/y_center or x/y columns, '
                       f'found {table.colnames}')
    if len(table) == 0:
        raise CLIError(f'{label}: the table has no rows')
    try:
        xy = np.column_stack([np.asarray(getattr(table[n], 'value', table[n]),
                                         dtype=float)
                              for n in (xname, yname)])
    except (TypeError, ValueError) as exc:
        raise CLIError(f'{label}: {xname}/{yname} are not numbers') from exc
    if not np.all(np.isfinite(xy)):
        raise CLIError(f'{label}: {xname}/{yname} hold NaN or inf')
    return xy


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_output(path, option='-o'):
    """Fail early (before any work) if ``path`` cannot be written."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CLIError(f'{option} {path}: is a directory')
    if not os.path.isdir(folder):
        raise CLIError(f'{option} {path}: folder {folder} does not exist')
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CLIError(f'{option} {path}: file is not writable')
    try:  # the real test: can a file be created beside it?
        fd, probe = tempfile.mkstemp(prefix='.ccdphot-probe.', dir=folder)
    except OSError as exc:
        raise CLIError(f'{option} {path}: folder {folder} is not writable '
                       f'({exc.strerror})') from exc
    os.close(fd)
    os.unlink(probe)


def _output_format(path, fmt):
    if fmt is not None:
        return fmt
    return 'csv' if path.lower().endswith('.csv') else 'ecsv'


def _write_table(table, path, fmt, option='-o'):
    """Write ``table`` atomically: a temporary file, then `os.replace`."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'.{os.path.basename(path)}.',
                                   suffix='.tmp', dir=folder)
    except OSError as exc:
        raise CLIError(f'{option} {path}: cannot write in {folder} '
                       f'({exc.strerror})') from exc
    try:
        os.close(fd)
        table.write(tmp, format=_FORMATS[fmt], overwrite=True)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise CLIError(f'{option} {path}: cannot write ({exc})') from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _prepare_dir(path, option):
    """Create the output folder ``path`` or fail with a one-line error."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise CLIError(f'{option} {path}: exists and is not a directory')
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise CLIError(f'{option} {path}: cannot create the folder '
                       f'({exc.strerror})') from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise CLIError(f'{option} {path}: folder is not writable')


def _epilog(text):
    return textwrap.dedent(text)
