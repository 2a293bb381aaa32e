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
import re
import tempfile
import textwrap
from contextlib import ExitStack, contextmanager
from functools import partial

from ..utils.numbers import finite_number, positive_integer, positive_scalar

__all__ = ['CLIError', 'SKY_CHOICES']


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


#: ``--sky`` choices of the subcommands that measure (annulus: local sky).
SKY_CHOICES = ('sigma_clip', 'mean', 'median', 'annulus')



def bad_input_types():
    """The exceptions that mean bad input (exit code 2): `CLIError`, and
    what readers and checks raise on a bad file or value."""
    import astropy.units as u

    return (CLIError, ValueError, TypeError, u.UnitsError, OSError, KeyError)

_FORMATS = {'ecsv': 'ascii.ecsv', 'csv': 'ascii.csv', 'fits': 'fits'}

#: A word starting with a minus and a digit (``-5:10,-5:10``, ``-1,5``,
#: ``-2``) is an option's value, never an option: no option starts so.
NEGATIVE_VALUE = re.compile(r'^-\.?\d')


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump), exit code 2, and
    option values that start with a minus and a digit taken as values
    (``--box -5:10,-5:10`` reaches the box's own check of its negative
    index: argparse alone takes only plain negative numbers so)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_VALUE

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message}\n')


# -- argument types (their messages name the problem; argparse adds the
# -- option name) ------------------------------------------------------------

def level_text(value):
    """
    A sky level or scatter for the summary lines: three decimals, as
    ``1034.802``, unless that would print a frame scaled far from 1 as
    ``0.000`` (or a huge one as a long row of digits): then four
    significant digits, as ``7.532e-30``.

    Examples
    --------
    >>> from ccdphot_ext.cli.common import level_text
    >>> level_text(1034.8017), level_text(7.5318e-30), level_text(0.0)
    ('1034.802', '7.532e-30', '0.000')
    """
    value = float(value)
    if value == 0.0 or not math.isfinite(value) or (
            LEVEL_DECIMALS_RANGE[0] <= abs(value) < LEVEL_DECIMALS_RANGE[1]):
        return f'{value:.3f}'
    return f'{value:.4g}'


#: The magnitudes `level_text` prints with three decimals.
LEVEL_DECIMALS_RANGE = (0.01, 1.0e9)


def _argument(check, parse=float, kind='a number'):
    """An argparse type: the text read by ``parse`` (else "not
    ``kind``"), then ``check``, a rule of `ccdphot_ext.utils.numbers`
    whose message becomes argparse's."""
    def convert(text):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'not {kind}: {text!r}') from None
        try:
            return check(value)
        except (TypeError, ValueError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


number_type = _argument(finite_number)
positive_type = _argument(partial(positive_scalar, name=None, allow_none=False))
non_negative_type = _argument(partial(positive_scalar, name=None,
                                  allow_none=False, allow_zero=True))
positive_int_type = _argument(partial(positive_integer, name=None), parse=int,
                          kind='an integer')
non_negative_int_type = _argument(
    lambda value: int(positive_scalar(value, None, allow_none=False,
                                      allow_zero=True)),
    parse=int, kind='an integer')


def path_type(text):
    """A file or folder name: an empty one is refused (it was taken as
    the option not given: ``-o ''`` printed the table and wrote nothing,
    ``--positions ''`` measured no star)."""
    if not text:
        raise argparse.ArgumentTypeError('an empty path (give a file name)')
    return text


def box_type(text):
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


def size_type(text):
    parts = text.split(',')
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f'{text!r} is not W or W,H')
    values = [positive_type(p) for p in parts]
    return (values[0], values[-1])


def mesh_type(text):
    """``N`` or ``NY,NX`` positive integers (photutils' (ny, nx) order)."""
    parts = text.split(',')
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f'{text!r} is not N or NY,NX')
    values = [positive_int_type(p) for p in parts]
    return (values[0], values[-1])


def pair_type(text):
    """``RIN,ROUT`` annulus radii: 0 < RIN < ROUT."""
    parts = text.split(',')
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f'{text!r} is not RIN,ROUT')
    try:
        r_in, r_out = (positive_type(p) for p in parts)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(
            f'{text!r}: {exc} (RIN and ROUT are radii, 0 < RIN < ROUT)'
        ) from None
    if r_out <= r_in:
        raise argparse.ArgumentTypeError(
            f'{text!r}: ROUT must exceed RIN')
    return r_in, r_out


# -- files -----------------------------------------------------------------

def hdu_type(text):
    """``--hdu``: an index (``1``), a name (``SCI``) or NAME,VER."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError('empty HDU')
    if text.isdigit():
        return int(text)
    name, _, ver = text.partition(',')
    if ver:
        if not ver.strip().isdigit():
            raise argparse.ArgumentTypeError(
                f'{text!r} is not INDEX, NAME or NAME,VERSION')
        return (name.strip(), int(ver))
    return text


def unit_type(text):
    """``--unit``, ``--flux-unit``: an astropy unit string (adu, electron,
    adu / s, MJy / sr, Jy ...)."""
    from ..io.units import parse_unit

    try:
        return parse_unit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def data_unit_type(text):
    """``--unit``: a data unit read as a header's BUNIT is, and as
    ``read_frame(unit=...)`` reads it (one reader,
    ``ccdphot_ext.io.header.read_data_unit``: ``ELECTRONS/S``, ``adu``,
    ``counts s-1``), whose values add up into light."""
    from ..io.header import read_data_unit

    name = f'--unit {text!r}'  # for the warnings
    try:
        return read_data_unit(text, 'data unit', as_written=name)
    except ValueError as exc:  # argparse names the option itself
        raise argparse.ArgumentTypeError(
            str(exc).replace(name, repr(text), 1)) from None


def gain_type(text):
    """``--gain``: a number (e-/ADU) or a quantity in electrons per data
    unit (``'31.3 electron / (MJy / sr)'``)."""
    import astropy.units as u

    from ..io.units import parse_quantity

    try:
        value = parse_quantity(text)
    except ValueError as exc:
        if 'start with a number' in str(exc):
            raise argparse.ArgumentTypeError(
                f'not a number: {text!r} (nor a quantity such as '
                "'31.3 electron / (MJy / sr)')") from None
        raise argparse.ArgumentTypeError(str(exc)) from None
    number = value.value if isinstance(value, u.Quantity) else value
    try:
        positive_scalar(number, None, allow_none=False)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def dq_bits_type(text):
    """``--dq-bits``: bit values and DQ flag names joined by + or ,
    (``DO_NOT_USE+SATURATED``; names read by each file's mission), 0 or
    all."""
    from ..io.dq import dq_bits_spec

    try:
        return dq_bits_spec(text.strip() if not text.strip().isdigit()
                            else int(text))
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(
            str(exc).replace('dq_bits=', '')) from None


def read_image(path, what='IMAGE', *, uncertainty=None, hdu=None,
               unit=None, dq_bits=None):
    """
    Read a 2-D FITS frame with `ccdphot_ext.io.fits.read_frame` (its UNCERT and
    MASK extensions included), from HDU ``hdu`` (default the first 2-D
    image), in ``unit`` (default BUNIT), its DQ extension read with
    ``dq_bits`` (default: the file's mission's). ``uncertainty``, a FITS file holding
    the uncertainty map, wins over the extensions: read by `read_frame` as
    its ``uncertainty=`` (its BUNIT checked against the data unit, a
    variance told by its UTYPE card or a BUNIT of the data unit squared).
    Every problem with a file is a one-line `CLIError`, naming
    ``--uncertainty`` when the map is at fault.
    """
    from ..io.fits import FrameReadError, read_frame

    try:
        frame = read_frame(path, hdu=hdu, unit=unit, uncertainty=uncertainty,
                           dq_bits=dq_bits)
    except FrameReadError as exc:
        first = str(exc).splitlines()[0]
        if uncertainty is not None and _blames_map(first, uncertainty):
            first = first.removeprefix(f'{path}: ')
            raise CLIError(f'--uncertainty {uncertainty}: {first}') from exc
        raise CLIError(f'{what} {first}') from exc
    if uncertainty is not None:
        from ..utils.inputs import check_uncertainty_values

        try:
            # nothing usable (all zero, NaN or inf): named by the option,
            # not as the image's uncertainty
            check_uncertainty_values(frame.uncertainty.array,
                                     f'--uncertainty {uncertainty}')
        except ValueError as exc:
            raise CLIError(str(exc)) from exc
    return frame


def _blames_map(message, uncertainty):
    """Whether a `read_frame` error is about the ``--uncertainty`` file
    (its own read, shape, values or unit), not IMAGE."""
    return (message.startswith(str(uncertainty))
            or 'uncertainty' in message.split(':', 1)[-1])


def read_positions_table(path, *, frame=None, image=None, format=None,
                         sky_frame=None, without_wcs=None,
                         keep_unplaced=False):
    """The positions table of ``--positions`` (`read_positions`): ``id``,
    0-based ``x_center``/``y_center`` and any suggested box columns; sky
    positions placed with the WCS of ``frame`` (IMAGE ``image``), which
    must hold at least one of them. ``format`` and ``sky_frame`` are
    ``--positions-format`` and ``--positions-frame``; ``without_wcs``, the
    message for sky positions when the command has no WCS to place them
    with (None: `read_positions`' own). With ``keep_unplaced``, sky
    positions with no pixel position (the far side of the sky) are kept,
    with NaN pixel positions, and listed in ``meta['unplaced']`` (``{row:
    SkyCoord}``), else refused."""
    from ..io.positions import (
        NoWCSError,
        OffFrameError,
        positions_and_unplaced,
    )

    try:
        table, unplaced = positions_and_unplaced(
            path, wcs=frame, columns=None, format=format, frame=sky_frame,
            keep_unplaced=keep_unplaced)
    except (ValueError, TypeError, OSError) as exc:
        text = str(exc).replace(f'positions {path}', '', 1).lstrip(': ')
        if isinstance(exc, OffFrameError) and image is not None:
            text = text.replace(' frame:', f' frame IMAGE {image}:', 1)
        if isinstance(exc, NoWCSError) and without_wcs is not None:
            text = without_wcs
        raise CLIError(f'--positions {path}: {text}') from exc
    if keep_unplaced:
        table.meta['unplaced'] = unplaced
    return table


def positions_flags(pos, *, suggested_boxes=False):
    """
    The flags a ``--positions`` table gives its rows before any pixel is
    measured, one per row (int32): `FLAG_NOT_STAR_LIKE` (512) at the
    detections of a ``ccdphot find`` table that are not like a star (its
    ``star_like`` column, `~ccdphot_ext.star_like_flags`), and, when the
    table's ``suggested_boxes`` are the apertures, the flag of a box that
    failed ``find_stars``' check (`~ccdphot_ext.box_flags`). ``ccdphot
    measure`` and ``ccdphot batch`` both OR it into their rows.
    """
    import numpy as np

    from ..detection.starflags import star_like_flags

    bits = np.zeros(len(pos), np.int32)
    if suggested_boxes:  # measure only (it loads the star finder anyway)
        from ..detection.findstars import box_flags

        bits = bits | box_flags(pos)
    if 'star_like' in pos.colnames:  # a ccdphot find table's doubt
        bits = bits | star_like_flags(pos)
    return bits


def sky_frame_type(text):
    """A celestial frame name astropy knows (``--positions-frame``)."""
    from ..io.positions import check_frame

    try:
        return check_frame(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_positions_format(parser):
    """``--positions-format``: the astropy table format of --positions."""
    parser.add_argument(
        '--positions-format', metavar='FORMAT',
        help='astropy table format of --positions (e.g. votable, fits, '
             'ascii.csv; default from the extension, else as astropy '
             'identifies or guesses it)')


def check_output_path(path, option='-o', inputs=(), *,
                      light_curve_ok=False):
    """
    Fail early (before any work) if ``path`` cannot be written or would
    destroy something: an input (``(path, option)`` pairs, compared by
    inode), a directory, a FIFO or a device, or a ``ccdphot batch``
    light-curve table (`check_not_light_curve`) unless ``light_curve_ok``
    (a batch's own ``-o``, which a run of the same command replaces with
    a note or ``--resume`` continues).
    """
    from ..utils.files import check_output

    try:
        target = check_output(path, inputs=inputs, label=option)
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    if not light_curve_ok:
        check_not_light_curve(path, option)
    folder = os.path.dirname(target)
    if os.path.exists(target) and not os.access(target, os.W_OK):
        raise CLIError(f'{option} {path}: file is not writable')
    try:  # the real test: can a file be created beside it?
        fd, probe = tempfile.mkstemp(prefix='.ccdphot-probe.', dir=folder)
    except OSError as exc:
        raise CLIError(f'{option} {path}: folder {folder} is not writable '
                       f'({exc.strerror})') from exc
    os.close(fd)
    os.unlink(probe)
    return target


@contextmanager
def output_locks(*paths):
    """
    Hold the output lock of each output path given (None skipped), as a
    batch holds its output's (`~ccdphot_ext.batch.output_lock`): another
    command writing the same file stops at once, naming the holder, and the
    temporary files a killed writer left beside it are removed.
    """
    from ..batch.lock import output_lock

    with ExitStack() as stack:
        for path in paths:
            if path is not None:
                stack.enter_context(output_lock(path))
        yield


@contextmanager
def naming(path):
    """
    Errors of the block whose message names no file and no option get
    ``path:`` in front: every message says what it is about (a sky level
    that overflows, an aperture off the frame, ... in IMAGE).
    """
    import astropy.units as u

    try:
        yield
    except CLIError:
        raise
    except (ValueError, TypeError, u.UnitsError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if os.fspath(path) in text or text.startswith('--'):
            raise
        raise CLIError(f'{os.fspath(path)}: {text}') from exc


def output_format(path, fmt):
    fits_name = path.lower().endswith(('.fits', '.fit', '.fts'))
    if fmt is None:
        fmt = 'fits' if fits_name else (
            'csv' if path.lower().endswith('.csv') else 'ecsv')
    if fits_name != (fmt == 'fits'):
        raise CLIError(f'-o {path}: --format {fmt} does not match the file '
                       'name (FITS tables go to .fits, text to other names)')
    return fmt


def replacing_note(path):
    """What the summary line says of an output that replaces a file (a
    file is never replaced silently), else ''."""
    return '; replaced the existing file' if os.path.exists(path) else ''


def is_light_curve(path):
    """True when ``path`` is an existing ``ccdphot batch`` light-curve
    table (an ECSV file whose header records a run's ``parameters``,
    ``n_frames`` and the ``status`` column): another run's measurements,
    which ``--resume`` reads back."""
    try:
        with open(path, encoding='utf-8', errors='replace') as fh:
            header = []
            for line in fh:
                if not line.startswith('#'):
                    break
                header.append(line)
    except OSError:
        return False
    if not header or not header[0].startswith('# %ECSV'):
        return False
    text = ''.join(header)
    return all(key in text for key in ('# - parameters:', 'n_frames:',
                                       'name: status'))


def check_not_light_curve(path, option):
    """Refuse an output ``path`` of ``option`` that would replace a
    ``ccdphot batch`` light-curve table (`is_light_curve`): a table of
    another kind never replaces one."""
    if os.path.exists(path) and is_light_curve(path):
        raise CLIError(f'{option} {path}: is the light-curve table of a '
                       'ccdphot batch run (its measurements, which --resume '
                       'reads); give another name, or move it away')


def write_table(table, path, fmt, option='-o'):
    """Write ``table`` atomically (mode of an existing file kept); return
    `replacing_note` of ``path`` as it was."""
    from ..utils.files import write_table_atomic

    note = replacing_note(path)
    write_table_atomic(table, path, format=_FORMATS[fmt], label=option)
    return note


def prepare_dir(path, option):
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


def format_epilog(text):
    return textwrap.dedent(text)


# -- options shared by the subcommands that read one frame -------------------

def add_frame_options(parser):
    """``--hdu``, ``--unit`` and ``--dq-bits``: which image of IMAGE, in
    what unit, which data-quality bits mask a pixel."""
    parser.add_argument('--hdu', metavar='HDU', type=hdu_type,
                        help='image HDU: index, name or NAME,VER (default '
                             'the first 2-D image)')
    add_unit_option(parser)
    add_dq_bits_option(parser, 'IMAGE has')


def add_unit_option(parser):
    """``--unit``: the data unit, instead of the header's BUNIT."""
    parser.add_argument('--unit', metavar='UNIT', type=data_unit_type,
                        help='data unit when the header has no BUNIT (or '
                             'to override it), read as BUNIT is (any case): '
                             'adu, electron, adu / s, ELECTRONS/S ...')


def add_dq_bits_option(parser, whose):
    """``--dq-bits``: which data-quality bits mask a pixel of a frame with
    a DQ extension (``whose``: e.g. ``'IMAGE has'``)."""
    parser.add_argument('--dq-bits', metavar='BITS', type=dq_bits_type,
                        help=f'DQ bits that mask a pixel when {whose} a DQ '
                             'extension: bit values and flag names of the '
                             "file's mission joined by + (default: the "
                             "mission's, DO_NOT_USE on JWST, unusable "
                             'pixels on HST ACS/WFC3, every bit on others; '
                             '0 none, all any)')


#: ``--uncertainty-model`` choices: `~ccdphot_ext.BudgetOptions`'
#: ``uncertainty_model`` (kept here so that parsing a command line imports
#: no photometry).
UNCERTAINTY_MODEL_CHOICES = ('background', 'total')


def add_uncertainty_model_option(parser):
    """``--uncertainty-model``: how an uncertainty map enters the error
    budget, as `~ccdphot_ext.BudgetOptions` ``uncertainty_model``; the one
    definition of ``measure`` and ``batch``."""
    parser.add_argument('--uncertainty-model', metavar='MODEL',
                        default='background',
                        choices=UNCERTAINTY_MODEL_CHOICES,
                        help="how the uncertainty map enters the budget: "
                             "'background' (default: the background noise, "
                             "the source term added from the gain; a map "
                             "that holds the sources' photon noise is found "
                             "and taken as total, with a warning) or "
                             "'total' (the whole per-pixel error, as "
                             "ccdproc's create_deviation)")


#: ``--fractional-variance`` choices: `~ccdphot_ext.BudgetOptions`'
#: ``fractional_variance`` (kept here so that parsing a command line
#: imports no photometry).
FRACTIONAL_VARIANCE_CHOICES = ('squared', 'linear')


def add_fractional_variance_option(parser):
    """``--fractional-variance``: how a pixel partly inside an aperture adds
    to the sky variance, as `~ccdphot_ext.BudgetOptions`
    ``fractional_variance``; the one definition of ``measure`` and
    ``batch``."""
    parser.add_argument('--fractional-variance', metavar='RULE',
                        default='squared',
                        choices=FRACTIONAL_VARIANCE_CHOICES,
                        help="how a pixel partly inside an aperture adds to "
                             "the sky variance: 'squared' (w**2 sigma**2, "
                             "default) or 'linear' (w sigma**2, as photutils "
                             "and Source Extractor)")


def add_sky_with_apertures_option(parser):
    """``--sky-with-apertures``: keep the measured stars' own light in a
    whole-frame sky, as ``sky_without_apertures=False`` of
    `~ccdphot_ext.photometer`; the one definition of ``measure`` and
    ``batch``."""
    parser.add_argument('--sky-with-apertures', action='store_true',
                        help='keep the measured stars\' own light in a '
                             'whole-frame sky (default: the level is '
                             'measured again without it where it lifts the '
                             'level by more than a tenth of its error)')


def budget_options(args, **options):
    """The `~ccdphot_ext.BudgetOptions` of ``--uncertainty-model`` and
    ``--fractional-variance`` (``options``: other or overriding
    `~ccdphot_ext.BudgetOptions` fields)."""
    from ..photometry.terms import BudgetOptions

    options.setdefault('fractional_variance', args.fractional_variance)
    return BudgetOptions(uncertainty_model=args.uncertainty_model, **options)


def add_keep_artifacts_option(parser):
    """``--keep-artifacts``: keep the detections that are rings or spikes
    of a brighter star (`~ccdphot_ext.find_stars` ``reject_artifacts``)."""
    parser.add_argument('--keep-artifacts', action='store_true',
                        help='keep the detections that are rings or spikes '
                             'of a brighter star (left out by default)')


def add_detector_options(parser):
    """``--gain``, ``--read-noise``, ``--exptime``, ``--saturation`` and
    ``--zeropoint``: each overrides the header of every frame measured."""
    parser.add_argument('--gain', metavar='G', type=gain_type,
                        help='electrons per data unit: e-/ADU for counts '
                             '(default: the header\'s GAIN/EGAIN/CCDGAIN); '
                             'for other data with its unit, e.g. '
                             '"31.3 electron / (MJy / sr)"')
    parser.add_argument('--read-noise', metavar='RN', type=non_negative_type,
                        help='e- (default: the header\'s RDNOISE)')
    parser.add_argument('--exptime', metavar='T', type=positive_type,
                        help='seconds (default: the header\'s EXPTIME)')
    parser.add_argument('--saturation', metavar='S', type=positive_type,
                        help='saturation level in the data unit (default: '
                             'the header\'s SATURATE)')
    parser.add_argument('--zeropoint', metavar='ZP', type=number_type,
                        help='magnitude zero point of counts and rates '
                             '(default: the header\'s PHOTFLAM/PHOTPLAM, '
                             'PHOTZPT or PHOTMJSR, else 0; flux densities '
                             'get AB magnitudes)')
    parser.add_argument('--flux-unit', metavar='UNIT', type=unit_type,
                        help='unit of aperture_sum for surface-brightness '
                             'or flux-density data (default Jy for MJy/sr '
                             'and the like; a surface brightness such as '
                             '"MJy / sr" gives the mean inside each '
                             'aperture)')


def detector_from_args(args):
    """The `~ccdphot_ext.DetectorParameters` of ``--read-noise``,
    ``--exptime`` and ``--saturation`` (``--gain`` travels as ``gain=``)."""
    from ..io.header import DetectorParameters

    return DetectorParameters(read_noise=args.read_noise,
                              exptime=args.exptime,
                              saturation=args.saturation)


def add_output_options(parser):
    """``-o``, ``--format`` and ``--max-rows``."""
    parser.add_argument('-o', '--output', metavar='OUT', type=path_type,
                        help='write the table here (written atomically); '
                             'stdout then gets a summary, not the table')
    parser.add_argument('--format', choices=tuple(_FORMATS),
                        help='output format (default from the OUT '
                             'extension: .csv is csv, else ecsv)')
    parser.add_argument('--max-rows', metavar='N', type=non_negative_int_type,
                        default=50,
                        help='without -o, print at most N rows (default '
                             '50; 0 prints all)')


def print_capped(table, out, max_rows):
    """Print ``table``, its first ``max_rows`` rows only when capped."""
    shown = len(table) if max_rows <= 0 else min(max_rows, len(table))
    for line in table[:shown].pformat(max_lines=-1, max_width=-1):
        print(line, file=out)
    if shown < len(table):
        print(f'... {len(table) - shown} more rows not shown (--max-rows N; '
              '-o OUT writes them all)', file=out)


def to_write(table, path, fmt):
    """The table as written to ``path`` and its format: CSV gets ``ra`` and
    ``dec`` columns (deg) instead of a packed ``sky_centroid``."""
    import astropy.units as u

    fmt = output_format(path, fmt)
    if fmt == 'csv' and 'sky_centroid' in table.colnames:
        coords = table['sky_centroid']
        index = table.colnames.index('sky_centroid')
        table = table.copy(copy_data=False)
        table.remove_column('sky_centroid')
        if not hasattr(coords, 'ra'):  # e.g. galactic: write ICRS
            coords = coords.icrs
        table.add_column(coords.ra.to(u.deg), name='ra', index=index)
        table.add_column(coords.dec.to(u.deg), name='dec', index=index + 1)
    return table, fmt


def blank_noise(frame, sky):
    """``--blank-noise``: the aperture noise measured on blank sky against
    the sky the photometry uses (the whole-frame level, the map, or an
    annulus of the same shape around each blank aperture)."""
    from ..background.noise import ApertureNoise

    try:
        return ApertureNoise.from_blank_apertures(frame, sky, seed=0)
    except ValueError as exc:
        raise CLIError(f'--blank-noise: {exc}') from None
